//! The error catalogue: one scenario per error an API method can
//! return, and bad input (odd names, wrongly typed keys, zero, negative and
//! huge durations) — each followed by a check that earlier data is intact.

use serde_json::{json, Value};

use AttemptStatus as A;
use WorkUnitStatus as U;

use super::{each_named, Run, TestBackend};
use crate::api::{NamespaceRef, WorkSpecRef};
use crate::data;
use crate::error::Error;
use crate::model::{
    AttemptRequest, AttemptStatus, DataMap, Duration, Time, WorkUnitMeta, WorkUnitQuery,
    WorkUnitStatus,
};

/// A namespace with a spec `keep` holding unit `u`, for "nothing lost" checks.
async fn keeper(r: &Run, ns: &str) -> (NamespaceRef, WorkSpecRef, DataMap) {
    let ns = r.ns(ns).await;
    let def = data!({"name": "keep", "min_gb": 0.5, "priority": 3, "extra": [1, {"a": []}]});
    let spec = r.spec(&ns, def.clone()).await;
    r.unit(&spec, "u", data!({"k": "v"})).await;
    (ns, spec, def)
}

/// Asserts `keep` and its unit are exactly as [`keeper`] made them and no
/// other spec exists.
async fn intact(r: &Run, ns: &NamespaceRef, spec: &WorkSpecRef, def: &DataMap, step: &str) {
    let listed = r.ok(ns.work_spec_names().await, step);
    check_eq!(r, listed, vec!["keep".to_string()], "{step}: spec names");
    check_eq!(
        r,
        &r.ok(spec.data().await, step),
        def,
        "{step}: definition intact"
    );
    let meta = r.ok(spec.meta(false).await, step);
    check_eq!(r, meta.priority, 3, "{step}: meta intact");
    let fresh = r.ok(ns.work_spec("keep").await, step);
    check_eq!(
        r,
        &r.ok(fresh.data().await, step),
        def,
        "{step}: definition via lookup"
    );
    let unit = r.ok(spec.work_unit("u").await, step);
    check_eq!(
        r,
        r.ok(unit.data().await, step),
        data!({"k": "v"}),
        "{step}: unit data intact"
    );
}

/// `NoWorkSpecName`: `"name"` absent, null or empty — from `set_work_spec`
/// and `set_data`, checked before every other key.
pub async fn no_work_spec_name(t: TestBackend) {
    let r = Run::new("no_work_spec_name", t);
    let (ns, spec, def) = keeper(&r, "no_work_spec_name").await;
    let bad = [
        data!({}),
        data!({"name": null}),
        data!({"name": ""}),
        data!({"min_gb": 1}),
        data!({"name": null, "priority": "high"}),
        data!({"name": "", "continuous": 1}),
    ];
    for d in bad {
        refused(&r, &ns, &spec, d, "NoWorkSpecName", |e| {
            matches!(e, Error::NoWorkSpecName)
        })
        .await;
    }
    intact(&r, &ns, &spec, &def, "after NoWorkSpecName").await;
}

/// `set_work_spec(d)` and `set_data(d)` both fail with the error `pred`
/// accepts (`what` names it).
async fn refused(
    r: &Run,
    ns: &NamespaceRef,
    spec: &WorkSpecRef,
    d: DataMap,
    what: &str,
    pred: impl Fn(&Error) -> bool,
) {
    let step = format!("set_work_spec({d:?})");
    r.fails_like(ns.set_work_spec(d.clone()).await, &pred, what, &step);
    let step = format!("set_data({d:?})");
    r.fails_like(spec.set_data(d).await, &pred, what, &step);
}

/// `BadWorkSpecName`: `"name"` present but not a string, from
/// `set_work_spec` and `set_data`, checked before other keys.
pub async fn bad_work_spec_name(t: TestBackend) {
    let r = Run::new("bad_work_spec_name", t);
    let (ns, spec, def) = keeper(&r, "bad_work_spec_name").await;
    let names = [
        json!(4),
        json!(1.5),
        json!(true),
        json!([]),
        json!(["keep"]),
        json!({}),
    ];
    for name in names {
        for extra in [None, Some(("priority", json!("x")))] {
            let mut d = DataMap::new();
            d.insert("name".into(), name.clone());
            if let Some((k, v)) = &extra {
                d.insert((*k).into(), v.clone());
            }
            refused(&r, &ns, &spec, d, "BadWorkSpecName", |e| {
                matches!(e, Error::BadWorkSpecName)
            })
            .await;
        }
    }
    intact(&r, &ns, &spec, &def, "after BadWorkSpecName").await;
}

/// `InvalidWorkSpecData`: every recognised key with a value of a wrong
/// type, from `set_work_spec` (nothing created) and `set_data` (nothing
/// changed).
pub async fn invalid_work_spec_data(t: TestBackend) {
    let r = Run::new("invalid_work_spec_data", t);
    let (ns, spec, def) = keeper(&r, "invalid_work_spec_data").await;
    let numeric = [
        "priority",
        "weight",
        "nice",
        "max_running",
        "max_getwork",
        "max_retries",
        "min_gb",
        "interval",
    ];
    let mut cases: Vec<(&str, Value)> = Vec::new();
    for key in numeric {
        for v in [json!("1"), json!(true), json!([1]), json!({"n": 1})] {
            cases.push((key, v));
        }
    }
    for key in ["disabled", "continuous"] {
        for v in [json!(1), json!("true"), json!([]), json!({})] {
            cases.push((key, v));
        }
    }
    for key in ["then", "runtime"] {
        for v in [json!(1), json!(false), json!(["x"]), json!({"x": 1})] {
            cases.push((key, v));
        }
    }
    for (key, value) in cases {
        for name in ["new", "keep"] {
            let mut d = data!({"name": name});
            d.insert(key.into(), value.clone());
            let step = format!("set_work_spec({d:?})");
            r.invalid_data(ns.set_work_spec(d.clone()).await, &step);
            if name == "keep" {
                let step = format!("set_data({d:?})");
                r.invalid_data(spec.set_data(d).await, &step);
            }
        }
    }
    intact(&r, &ns, &spec, &def, "after InvalidWorkSpecData").await;
}

/// `ChangedName`: `set_data` with another (valid) name — including one
/// differing only in case — after validation; nothing changes and no spec
/// is created.
pub async fn changed_name(t: TestBackend) {
    let r = Run::new("changed_name", t);
    let (ns, spec, def) = keeper(&r, "changed_name").await;
    for other in ["other", "Keep", "keep ", "ke\u{0}ep"] {
        let step = format!("set_data(name = {other:?})");
        r.fails(
            spec.set_data(data!({"name": other, "priority": 9})).await,
            Error::ChangedName,
            &step,
        );
    }
    // Validation comes first: a wrongly typed key wins over the name change.
    r.invalid_data(
        spec.set_data(data!({"name": "other", "priority": "x"}))
            .await,
        "set_data(other name, bad priority)",
    );
    intact(&r, &ns, &spec, &def, "after ChangedName").await;
}

/// `LostLease`: renewing an attempt that is no longer active
/// (cleared, or superseded by another worker's attempt) expires it (end
/// time now, data replaced) and fails; the unit and its actual active
/// attempt are left alone; renewing again fails again.
pub async fn lost_lease(t: TestBackend) {
    let (r, _ns, spec, worker) = Run::with_basic("lost_lease", t, "spec").await;
    let ns = r.ns("lost_lease").await;
    let other = r.worker(&ns, "other").await;
    let unit = r.unit(&spec, "u", data!({"k": "v"})).await;
    let a = r.request_unit(&worker, "u", "request").await;
    r.ok(unit.clear_active_attempt().await, "clear");
    r.advance_secs(5);
    r.fails(
        a.renew(Duration::minutes(5), Some(data!({"renewed": 1})))
            .await,
        Error::LostLease,
        "renew after clear",
    );
    r.ok_eq(a.status().await, A::Expired, "expired by renew");
    r.ok_eq(a.end_time().await, Some(r.now()), "end time");
    r.ok_eq(a.data().await, data!({"renewed": 1}), "data replaced");
    r.ok_empty(
        worker.active_attempts().await,
        "lost attempt still on the active list",
    );
    r.ok_eq(unit.status().await, U::Available, "unit untouched");
    r.advance_secs(5);
    r.fails(
        a.renew(Duration::minutes(5), None).await,
        Error::LostLease,
        "renew again",
    );
    r.ok_eq(a.end_time().await, Some(r.now()), "end time again");

    let b = r.request_unit(&other, "u", "request by other").await;
    let b_exp = r.ok(b.expiration_time().await, "b expiration");
    let c = r.ok(worker.make_attempt(&unit, Duration::zero()).await, "make");
    r.ok(unit.clear_active_attempt().await, "clear c");
    let b2 = r.ok(other.make_attempt(&unit, Duration::zero()).await, "make b2");
    r.advance_secs(5);
    r.fails(
        c.renew(Duration::minutes(1), None).await,
        Error::LostLease,
        "renew superseded",
    );
    r.active_is(&unit, Some(&b2), "active attempt kept").await;
    r.ok_eq(b.status().await, A::Pending, "b untouched");
    r.ok_eq(b.expiration_time().await, b_exp, "b's lease untouched");
    r.ok_eq(unit.data().await, data!({"k": "v"}), "unit data");
}

/// `NoSuchWorkSpec { name }`: lookups and destroys of missing names
/// (empty, control characters, wrong case); an unknown name in a request's
/// `work_specs` is not an error.
pub async fn no_such_work_spec(t: TestBackend) {
    let r = Run::new("no_such_work_spec", t);
    let (ns, spec, def) = keeper(&r, "no_such_work_spec").await;
    let worker = r.worker(&ns, "worker").await;
    for name in ["missing", "", "\u{0}\n", "Keep", "keep "] {
        let expected = || Error::NoSuchWorkSpec { name: name.into() };
        r.fails(
            ns.work_spec(name).await,
            expected(),
            format_args!("work_spec({name:?})"),
        );
        r.fails(
            ns.destroy_work_spec(name).await,
            expected(),
            format_args!("destroy_work_spec({name:?})"),
        );
    }
    let req = AttemptRequest {
        work_specs: vec!["missing".into()],
        ..Default::default()
    };
    r.request_nothing(&worker, req, "request for missing spec")
        .await;
    intact(&r, &ns, &spec, &def, "after NoSuchWorkSpec").await;
}

/// `NoSuchWorkUnit { name }`: lookups of missing names, of a unit of
/// another spec, and of a deleted unit; missing names in a query are
/// ignored.
pub async fn no_such_work_unit(t: TestBackend) {
    let r = Run::new("no_such_work_unit", t);
    let (ns, spec, def) = keeper(&r, "no_such_work_unit").await;
    let other = r.named_spec(&ns, "other").await;
    r.unit(&other, "elsewhere", DataMap::new()).await;
    r.unit(&spec, "doomed", DataMap::new()).await;
    r.ok(
        spec.delete_work_units(&WorkUnitQuery::names(["doomed"]))
            .await,
        "delete doomed",
    );
    for name in ["missing", "", "\u{1}", "U", "elsewhere", "doomed"] {
        r.fails(
            spec.work_unit(name).await,
            Error::NoSuchWorkUnit { name: name.into() },
            format_args!("work_unit({name:?})"),
        );
    }
    let units = r.ok(
        spec.work_units(&WorkUnitQuery::names(["missing", "u"]))
            .await,
        "query",
    );
    check_eq!(
        r,
        units.keys().collect::<Vec<_>>(),
        vec!["u"],
        "missing names ignored"
    );
    r.ok(ns.destroy_work_spec("other").await, "destroy other");
    intact(&r, &ns, &spec, &def, "after NoSuchWorkUnit").await;
}

/// `WrongBackend`: a worker of one backend given a unit of another backend
/// instance by `make_attempt`; nothing is created on either side, and a
/// destroyed worker answers the same.
pub async fn wrong_backend_make_attempt(t: TestBackend, other: TestBackend) {
    let r = Run::new("wrong_backend_make_attempt", t);
    let o = Run::new("wrong_backend_make_attempt (second backend)", other);
    let (_ns, spec, _worker) = r.basic("wrong_backend", "spec").await;
    let unit = r.unit(&spec, "u", data!({"k": "v"})).await;
    let (ons, _ospec, foreign) = o.basic("wrong_backend", "spec").await;
    r.fails(
        foreign.make_attempt(&unit, Duration::zero()).await,
        Error::WrongBackend,
        "make_attempt with a foreign unit",
    );
    r.ok_eq(unit.num_attempts().await, 0, "no attempt on the unit");
    r.ok_eq(unit.status().await, U::Available, "unit status");
    let listed = o.ok(foreign.all_attempts().await, "foreign worker's attempts");
    check!(r, listed.is_empty(), "foreign worker got an attempt");
    r.ok_eq(unit.data().await, data!({"k": "v"}), "unit data intact");
    // The foreign unit is refused first, even by a worker that is gone.
    o.ok(ons.destroy().await, "destroy the worker's namespace");
    let _ = foreign.mode().await;
    r.fails(
        foreign.make_attempt(&unit, Duration::zero()).await,
        Error::WrongBackend,
        "make_attempt with a foreign unit by a destroyed worker",
    );
}

/// `WrongBackend`: `set_parent` with a worker of another backend instance;
/// the previous parent is kept, and a destroyed worker answers the same.
pub async fn wrong_backend_set_parent(t: TestBackend, other: TestBackend) {
    let r = Run::new("wrong_backend_set_parent", t);
    let o = Run::new("wrong_backend_set_parent (second backend)", other);
    let ns = r.ns("wrong_backend").await;
    let [child, parent] = each_named(["child", "parent"], |n| r.worker(&ns, n)).await;
    r.ok(
        child.set_parent(Some(&parent)).await,
        "set_parent(same backend)",
    );
    let ons = o.ns("wrong_backend").await;
    let foreign = o.worker(&ons, "parent").await;
    r.fails(
        child.set_parent(Some(&foreign)).await,
        Error::WrongBackend,
        "set_parent(foreign worker)",
    );
    let p = r.ok(child.parent().await, "parent()");
    check_eq!(
        r,
        p.map(|p| p.name().to_string()),
        Some("parent".to_string()),
        "parent kept"
    );
    let kids = r.ok(parent.children().await, "children");
    check_eq!(r, kids.len(), 1, "old parent keeps the child");
    let foreign_kids = o.ok(foreign.children().await, "foreign children");
    check!(
        r,
        foreign_kids.is_empty(),
        "foreign worker adopted the child"
    );
    // The foreign worker is refused first, even by a child that is gone.
    r.ok(ns.destroy().await, "destroy");
    let _ = child.parent().await;
    r.fails(
        child.set_parent(Some(&foreign)).await,
        Error::WrongBackend,
        "set_parent(foreign worker) of a destroyed child",
    );
}

/// Zero and negative `make_attempt` lifetimes: zero is 15 minutes; a
/// negative lifetime is used as given and the attempt expires at the next
/// expiry check. Requests with a negative lifetime get 15 minutes.
pub async fn zero_and_negative_lifetimes(t: TestBackend) {
    let (r, _ns, spec, worker) = Run::with_basic("zero_and_negative_lifetimes", t, "spec").await;
    let unit = r.unit(&spec, "u", data!({"k": "v"})).await;
    r.advance_secs(100);
    let a = r.ok(
        worker.make_attempt(&unit, Duration::zero()).await,
        "make(0)",
    );
    let exp = r.ok(a.expiration_time().await, "expiration");
    check_eq!(r, exp, r.now() + Duration::minutes(15), "zero lifetime");
    r.ok(a.expire(None).await, "expire");
    let b = r.ok(
        worker.make_attempt(&unit, Duration::seconds(-5)).await,
        "make(-5 s)",
    );
    r.ok_eq(b.start_time().await, r.now(), "start time");
    // expiration_time performs the check itself, so read the status first.
    r.ok_eq(b.status().await, A::Expired, "negative lifetime");
    let exp = r.ok(b.expiration_time().await, "expiration");
    check_eq!(
        r,
        exp,
        r.now() - Duration::seconds(5),
        "negative lifetime stored as given"
    );
    r.ok_eq(unit.status().await, U::Available, "unit available");
    let req = AttemptRequest {
        lifetime: Duration::seconds(-60),
        ..Default::default()
    };
    let got = r
        .request(&worker, req, "request with negative lifetime")
        .await;
    check_eq!(r, got.len(), 1, "request");
    let exp = r.ok(got[0].expiration_time().await, "expiration");
    check_eq!(
        r,
        exp,
        r.now() + Duration::minutes(15),
        "default request lifetime"
    );
    r.ok_eq(unit.data().await, data!({"k": "v"}), "data intact");
}

/// Zero and negative `renew` extensions: the deadline becomes
/// `now + extend`; the attempt expires once the clock is strictly past it.
pub async fn zero_and_negative_renew(t: TestBackend) {
    let (r, _ns, spec, worker) = Run::with_basic("zero_and_negative_renew", t, "spec").await;
    let unit = r.unit(&spec, "u", data!({"k": "v"})).await;
    let a = r.request_unit(&worker, "u", "request").await;
    r.advance_secs(10);
    r.ok(a.renew(Duration::zero(), None).await, "renew(0)");
    r.ok_eq(a.status().await, A::Pending, "at the new deadline");
    r.ok_eq(a.expiration_time().await, r.now(), "deadline = now");
    r.ok_eq(
        a.data().await,
        data!({"k": "v"}),
        "data kept by renew(None)",
    );
    r.advance(Duration::milliseconds(1));
    r.ok_eq(a.status().await, A::Expired, "just past the deadline");
    let b = r.request_unit(&worker, "u", "request again").await;
    r.ok(b.renew(Duration::seconds(-30), None).await, "renew(-30 s)");
    r.ok_eq(b.status().await, A::Expired, "negative extension");
    r.ok_eq(unit.status().await, U::Available, "unit available");
    r.ok_eq(unit.data().await, data!({"k": "v"}), "unit data intact");
}

/// Zero and negative `retry` delays: `not_before = now + delay`
/// (now or in the past), so the unit is Available at once.
pub async fn zero_and_negative_retry_delay(t: TestBackend) {
    let (r, _ns, spec, worker) = Run::with_basic("zero_and_negative_retry_delay", t, "spec").await;
    let unit = r.unit(&spec, "u", data!({"k": "v"})).await;
    r.advance_secs(100);
    for delay in [Duration::zero(), Duration::seconds(-30)] {
        let a = r
            .request_unit(&worker, "u", format_args!("request before retry({delay})"))
            .await;
        r.ok(a.retry(None, delay).await, format_args!("retry({delay})"));
        let meta = r.ok(unit.meta().await, "meta");
        check_eq!(
            r,
            meta.not_before,
            Some(r.now() + delay),
            "not_before after retry({delay})"
        );
        r.ok_eq(
            unit.status().await,
            U::Available,
            format_args!("after retry({delay})"),
        );
    }
    r.drain(&worker, &["u"], "drain").await;
    r.ok_eq(unit.data().await, data!({"k": "v"}), "snapshot finished");
    r.ok(unit.clear_active_attempt().await, "clear");
    r.ok_eq(unit.data().await, data!({"k": "v"}), "own data intact");
}

fn out_of_range(e: &Error) -> bool {
    matches!(e, Error::TimeOutOfRange(_))
}

/// A `make_attempt` lifetime that overflows the time range answers
/// `TimeOutOfRange` (no panic, no attempt); a very long valid one works.
pub async fn huge_make_attempt_lifetime(t: TestBackend) {
    let (r, _ns, spec, worker) = Run::with_basic("huge_make_attempt_lifetime", t, "spec").await;
    let unit = r.unit(&spec, "u", data!({"k": "v"})).await;
    for lifetime in [Duration::MAX, Duration::MIN] {
        r.fails_like(
            worker.make_attempt(&unit, lifetime).await,
            out_of_range,
            "TimeOutOfRange",
            format_args!("make_attempt({lifetime})"),
        );
    }
    r.ok_eq(unit.num_attempts().await, 0, "no attempt created");
    r.ok_empty(worker.all_attempts().await, "worker got an attempt");
    r.ok_eq(unit.status().await, U::Available, "unit status");
    let long = Duration::days(365 * 1000);
    let a = r.ok(
        worker.make_attempt(&unit, long).await,
        "make_attempt(1000 years)",
    );
    r.ok_eq(a.expiration_time().await, r.now() + long, "long lifetime");
    r.ok_eq(unit.data().await, data!({"k": "v"}), "data intact");
}

/// A `renew` extension that overflows answers `TimeOutOfRange` and changes
/// nothing (status, data and deadline kept).
pub async fn huge_renew_extend(t: TestBackend) {
    let (r, _ns, spec, worker) = Run::with_basic("huge_renew_extend", t, "spec").await;
    let unit = r.unit(&spec, "u", data!({"k": "v"})).await;
    let a = r.request_unit(&worker, "u", "request").await;
    let exp = r.ok(a.expiration_time().await, "exp");
    for extend in [Duration::MAX, Duration::MIN] {
        r.fails_like(
            a.renew(extend, Some(data!({"lost": true}))).await,
            out_of_range,
            "TimeOutOfRange",
            format_args!("renew({extend})"),
        );
    }
    r.ok_eq(a.status().await, A::Pending, "still pending");
    r.ok_eq(a.expiration_time().await, exp, "deadline kept");
    r.ok_eq(a.data().await, data!({"k": "v"}), "data kept");
    r.ok(
        a.renew(Duration::minutes(1), None).await,
        "a valid renew afterwards",
    );
    r.ok(a.finish(None).await, "finish");
    r.ok_eq(unit.status().await, U::Finished, "unit finished");
}

/// A `retry` delay that overflows answers `TimeOutOfRange` and changes
/// nothing; a valid retry works afterwards.
pub async fn huge_retry_delay(t: TestBackend) {
    let (r, _ns, spec, worker) = Run::with_basic("huge_retry_delay", t, "spec").await;
    let unit = r.unit(&spec, "u", data!({"k": "v"})).await;
    let a = r.request_unit(&worker, "u", "request").await;
    for delay in [Duration::MAX, Duration::MIN] {
        r.fails_like(
            a.retry(Some(data!({"lost": true})), delay).await,
            out_of_range,
            "TimeOutOfRange",
            format_args!("retry({delay})"),
        );
    }
    r.ok_eq(a.status().await, A::Pending, "still pending");
    r.ok_eq(unit.status().await, U::Pending, "unit pending");
    r.ok_eq(
        unit.meta().await.map(|v| v.not_before),
        None,
        "not_before kept",
    );
    r.ok_eq(a.data().await, data!({"k": "v"}), "data kept");
    let active = r.ok(worker.active_attempts().await, "active list");
    check_eq!(r, active.len(), 1, "still on the active list");
    r.ok(
        a.retry(None, Duration::seconds(1)).await,
        "a valid retry afterwards",
    );
    r.ok_eq(a.status().await, A::Retryable, "retried");
}

/// Out-of-range numbers in a definition never panic: a huge `interval`
/// either is rejected with a typed error or works; huge priorities and
/// weights saturate and still schedule.
pub async fn huge_definition_values(t: TestBackend) {
    let r = Run::new("huge_definition_values", t);
    let (ns, keep, def) = keeper(&r, "huge_definition_values").await;
    let worker = r.worker(&ns, "worker").await;
    let huge = data!({"name": "huge", "continuous": true, "interval": 1e300});
    match ns.set_work_spec(huge).await {
        Ok(spec) => {
            // Accepted: requesting from it must not panic either.
            let req = AttemptRequest {
                work_specs: vec!["huge".into()],
                ..Default::default()
            };
            match worker.request_attempts(&req).await {
                Ok(got) => {
                    for a in got {
                        r.ok(a.finish(None).await, "finish huge-interval unit");
                    }
                }
                Err(e) => check!(r, out_of_range(&e), "request from huge interval: {e:?}"),
            }
            r.ok(ns.destroy_work_spec(spec.name()).await, "destroy huge");
        }
        Err(e) => check!(
            r,
            matches!(e, Error::InvalidWorkSpecData(_) | Error::TimeOutOfRange(_)),
            "huge interval: {e:?}"
        ),
    }
    let big = r
        .spec(
            &ns,
            data!({"name": "big", "priority": 1e300, "weight": 1e300, "max_retries": 1e300}),
        )
        .await;
    let small = r
        .spec(
            &ns,
            data!({"name": "small", "priority": -1e300, "weight": 1}),
        )
        .await;
    let meta = r.ok(big.meta(false).await, "big meta");
    check!(
        r,
        meta.priority > 1_000_000 && meta.weight > 1_000_000,
        "saturated: {meta:?}"
    );
    r.unit(&big, "b", DataMap::new()).await;
    r.unit(&small, "s", DataMap::new()).await;
    let mut keep_meta = r.ok(keep.meta(false).await, "keep meta");
    keep_meta.paused = true;
    r.ok(keep.set_meta(keep_meta).await, "pause keep");
    let req = AttemptRequest::units(5);
    let got = r
        .request(&worker, req, "request with saturated priorities")
        .await;
    let got_names = super::unit_names_of(&got);
    check_eq!(r, got_names, vec!["b"], "highest priority first");
    r.ok(ns.destroy_work_spec("big").await, "destroy big");
    r.ok(ns.destroy_work_spec("small").await, "destroy small");
    let mut keep_meta = r.ok(keep.meta(false).await, "keep meta");
    keep_meta.paused = false;
    r.ok(keep.set_meta(keep_meta).await, "unpause keep");
    intact(&r, &ns, &keep, &def, "after huge definitions").await;
}

/// Extreme but representable times and priorities in work unit meta and
/// worker updates are stored and reported exactly.
pub async fn huge_work_unit_times(t: TestBackend) {
    let (r, _ns, spec, worker) = Run::with_basic("huge_work_unit_times", t, "spec").await;
    let far = Time::UNIX_EPOCH + Duration::days(365 * 8000);
    let meta = WorkUnitMeta {
        priority: f64::MAX,
        not_before: Some(far),
    };
    let unit = r.unit_meta(&spec, "far", data!({"k": "v"}), meta).await;
    r.ok_eq(unit.meta().await, meta, "extreme meta round-trips");
    r.ok_eq(unit.status().await, U::Delayed, "delayed for millennia");
    r.unit_priority(&spec, "low", -f64::MAX).await;
    r.unit_priority(&spec, "tiny", f64::MIN_POSITIVE).await;
    r.drain(&worker, &["tiny", "low"], "drain").await;
    let expiration = Time::UNIX_EPOCH + Duration::days(365 * 5000);
    let past = Time::UNIX_EPOCH - Duration::days(365 * 1000);
    r.ok(
        worker
            .update(data!({"w": 1}), past, expiration, "far")
            .await,
        "update",
    );
    r.ok_eq(worker.last_update().await, past, "last_update");
    r.ok_eq(worker.expiration().await, expiration, "expiration");
    r.ok_eq(unit.data().await, data!({"k": "v"}), "data intact");
}

/// Integer extremes in spec meta: `set_meta` stores
/// priorities `i64::MIN` and `i64::MAX`, and `i64::MAX` as weight,
/// `max_running`, `max_attempts_returned` and `max_retries`, exactly (no
/// clamping). The `i64::MAX` priority comes first; two specs of it with
/// weight `i64::MAX` each (whose sum is past `i64::MAX`) take turns, as
/// the one with a unit more pending scores 0, until all their units are
/// out; only then does the `i64::MIN` spec get requests.
pub async fn extreme_spec_meta_integers(t: TestBackend) {
    let (r, ns) = Run::with_ns("extreme_spec_meta_integers", t).await;
    let worker = r.worker(&ns, "worker").await;
    for (name, priority) in [("low", i64::MIN), ("top-a", i64::MAX), ("top-b", i64::MAX)] {
        let spec = r.named_spec(&ns, name).await;
        let mut meta = r.ok(spec.meta(false).await, format_args!("meta of {name}"));
        meta.priority = priority;
        meta.weight = i64::MAX;
        meta.max_running = i64::MAX;
        meta.max_attempts_returned = i64::MAX;
        meta.max_retries = i64::MAX;
        r.ok(
            spec.set_meta(meta.clone()).await,
            format_args!("set_meta of {name}"),
        );
        r.ok_eq(
            spec.meta(false).await,
            meta,
            format_args!("meta of {name} read back"),
        );
        for i in 0..3 {
            r.unit(&spec, &format!("{name}-{i}"), DataMap::new()).await;
        }
    }
    let mut handed = std::collections::BTreeMap::<String, usize>::new();
    for i in 1..=6 {
        let attempt = r.request_one(&worker, format_args!("request {i}")).await;
        let Some(attempt) = attempt else {
            panic!("[{}] request {i}: no attempt", r.name)
        };
        let spec = attempt.work_unit().work_spec().name().to_string();
        check!(
            r,
            spec != "low",
            "request {i}: the lowest priority came first"
        );
        *handed.entry(spec).or_default() += 1;
        if i % 2 == 0 {
            check_eq!(
                r,
                handed.values().copied().collect::<Vec<_>>(),
                vec![i / 2, i / 2],
                "request {i}: turns of the top specs"
            );
        }
    }
    for i in 0..3 {
        let unit = format!("low-{i}");
        r.request_unit(&worker, &unit, format_args!("request {unit}"))
            .await;
    }
    r.request_none(&worker, "all handed out").await;
}

/// Integer extremes in definitions and requests:
/// `nice` of `i64::MIN` gives the largest weight (`20 − nice`, saturated
/// at `i64::MAX`), `nice` of `i64::MAX` or `u64::MAX` and `weight` of
/// `i64::MIN` give 1. `u64::MAX` is an Integer, so it is accepted for
/// every integer key, kept verbatim in the definition and saturated at
/// `i64::MAX` in the meta, as a huge float is; as an `interval` it is
/// past `MAX_INTERVAL` and refused. A request for `i64::MAX` units hands
/// out every available unit; one for `i64::MIN` hands out one.
pub async fn extreme_definition_integers(t: TestBackend) {
    let (r, ns) = Run::with_ns("extreme_definition_integers", t).await;
    let cases = [
        (data!({"name": "nice-min", "nice": i64::MIN}), i64::MAX),
        (data!({"name": "nice-max", "nice": i64::MAX}), 1),
        (data!({"name": "nice-u64", "nice": u64::MAX}), 1),
        (data!({"name": "weight-min", "weight": i64::MIN}), 1),
    ];
    for (def, weight) in cases {
        let step = format!("set_work_spec({def:?})");
        let spec = r.ok(ns.set_work_spec(def.clone()).await, &step);
        r.ok_eq(spec.meta(false).await.map(|m| m.weight), weight, &step);
        r.ok_eq(spec.data().await, def, format_args!("{step}: definition"));
    }
    r.invalid_data(
        ns.set_work_spec(data!({"name": "bad", "continuous": true, "interval": u64::MAX}))
            .await,
        "interval u64::MAX",
    );
    let def = data!({
        "name": "huge", "min_gb": 0.1, "priority": u64::MAX, "weight": u64::MAX,
        "max_running": u64::MAX, "max_getwork": u64::MAX, "max_retries": u64::MAX,
    });
    let spec = r.spec(&ns, def.clone()).await;
    r.ok_eq(spec.data().await, def, "definition with u64::MAX kept");
    let meta = r.ok(spec.meta(false).await, "meta of huge");
    check_eq!(
        r,
        (
            meta.priority,
            meta.weight,
            meta.max_running,
            meta.max_attempts_returned,
            meta.max_retries
        ),
        (i64::MAX, i64::MAX, i64::MAX, i64::MAX, i64::MAX),
        "u64::MAX saturated in the meta"
    );
    let listed = r.ok(ns.work_spec_names().await, "names");
    check!(
        r,
        !listed.iter().any(|n| n == "bad"),
        "refused spec created: {listed:?}"
    );

    r.units(&spec, &["u2", "u0", "u1"]).await;
    let worker = r.worker(&ns, "worker").await;
    r.request_units(
        &worker,
        AttemptRequest::units(i64::MAX),
        &["u0", "u1", "u2"],
        "request i64::MAX units",
    )
    .await;
    r.units(&spec, &["v0", "v1"]).await;
    r.request_units(
        &worker,
        AttemptRequest::units(i64::MIN),
        &["v0"],
        "request i64::MIN units",
    )
    .await;
}
