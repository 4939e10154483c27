//! Rules where two others meet: the calls that run no expiry check acting
//! on a lease past its deadline, what a re-add keeps, chaining read at
//! finish time, limits under concurrent requests, not-before times across
//! attempt ends, and names with NUL and escape look-alikes chained.

use super::{Run, TestBackend};
use crate::data;
use crate::error::Result;
use crate::model::{
    AttemptRequest, AttemptStatus, DataMap, Duration, NewWorkUnit, WorkUnitMeta, WorkUnitQuery,
    WorkUnitStatus,
};

use AttemptStatus as A;
use WorkUnitStatus as U;

/// `add_work_unit` judges the unit's status without running expiry: a unit
/// whose lease lapsed, with no expiry check since, is Pending, so re-adding
/// it keeps its attempt active (and renewable); the same for
/// `add_work_units`.
pub async fn upsert_judges_a_lapsed_lease_unexpired(t: TestBackend) {
    let (r, _ns, spec, worker) =
        Run::with_basic("upsert_judges_a_lapsed_lease_unexpired", t, "spec").await;
    for bulk in [false, true] {
        let name = if bulk { "bulk" } else { "single" };
        let unit = r.unit(&spec, name, data!({"old": 1})).await;
        let a = r.ok(
            worker.make_attempt(&unit, Duration::seconds(10)).await,
            "make",
        );
        r.advance_secs(20);
        if bulk {
            let entry = NewWorkUnit::new(name, data!({"new": 1}));
            r.ok(spec.add_work_units(vec![entry]).await, "add_work_units");
        } else {
            r.unit(&spec, name, data!({"new": 1})).await;
        }
        r.ok(
            a.renew(Duration::seconds(60), None).await,
            format_args!("{name}: renew after the re-add (no expiry check ran)"),
        );
        r.ok_eq(
            unit.status().await,
            U::Pending,
            format_args!("{name}: status"),
        );
        r.active_is(&unit, Some(&a), format_args!("{name}: active attempt"))
            .await;
        r.ok_eq(
            unit.data().await,
            data!({"old": 1}),
            format_args!("{name}: visible data"),
        );
        r.ok(unit.clear_active_attempt().await, "clear");
        r.ok_eq(
            unit.data().await,
            data!({"new": 1}),
            format_args!("{name}: own data"),
        );
    }
}

/// `expire`, `fail` and `retry` run no expiry check: on an active attempt
/// past its deadline that no check has expired yet, they act on a Pending
/// attempt (its data replaced, ended now).
pub async fn lapsed_lease_ends_as_pending(t: TestBackend) {
    let (r, _ns, spec, worker) = Run::with_basic("lapsed_lease_ends_as_pending", t, "spec").await;
    for (name, want) in [
        ("expire", A::Expired),
        ("fail", A::Failed),
        ("retry", A::Retryable),
    ] {
        let unit = r.unit(&spec, name, data!({"own": 1})).await;
        let a = r.ok(
            worker.make_attempt(&unit, Duration::seconds(10)).await,
            "make",
        );
        r.advance_secs(20);
        let given = Some(data!({ "by": name }));
        let res = match name {
            "expire" => a.expire(given).await,
            "fail" => a.fail(given).await,
            _ => a.retry(given, Duration::zero()).await,
        };
        r.ok(res, format_args!("{name} past the deadline"));
        r.ok_eq(
            a.data().await,
            data!({ "by": name }),
            format_args!("{name}: data replaced"),
        );
        r.ok_eq(a.status().await, want, format_args!("{name}: status"));
        r.ok_eq(
            a.end_time().await,
            Some(r.now()),
            format_args!("{name}: end"),
        );
    }
}

/// `make_attempt` runs no expiry check: a lapsed (unchecked) active attempt
/// it supersedes keeps its Pending status and its place on its worker's
/// active list.
pub async fn make_attempt_leaves_a_lapsed_lease_pending(t: TestBackend) {
    let (r, ns, spec, worker) =
        Run::with_basic("make_attempt_leaves_a_lapsed_lease_pending", t, "spec").await;
    let other = r.worker(&ns, "other").await;
    let unit = r.unit(&spec, "u", DataMap::new()).await;
    let a = r.ok(
        worker.make_attempt(&unit, Duration::seconds(10)).await,
        "make a",
    );
    r.advance_secs(20);
    let b = r.ok(other.make_attempt(&unit, Duration::zero()).await, "make b");
    r.ok_eq(unit.status().await, U::Pending, "unit pending under b");
    r.active_is(&unit, Some(&b), "b active").await;
    r.ok_eq(a.status().await, A::Pending, "a superseded, still pending");
    r.ok_eq(
        a.end_time().await,
        None::<crate::model::Time>,
        "a not ended",
    );
    let listed = r.ok(worker.active_attempts().await, "worker's active list");
    check_eq!(r, listed.len(), 1, "a still listed");
}

/// Status, counts, status-filtered queries and the hand-out agree after
/// not-before changes around attempt ends (expire, clear, re-add,
/// `set_meta`, `set_priority`, retry, `make_attempt`), with the request as
/// the first call after the clock moves.
pub async fn not_before_paths_agree(t: TestBackend) {
    let (r, ns, spec, worker) = Run::with_basic("not_before_paths_agree", t, "spec").await;
    let other = r.worker(&ns, "other").await;
    r.advance_secs(100);
    let past = Some(r.now() - Duration::seconds(50));
    let future = Some(r.now() + Duration::hours(1));
    let nb = |not_before| WorkUnitMeta {
        priority: 0.0,
        not_before,
    };
    let make = |u: crate::api::WorkUnitRef| {
        let w = worker.clone();
        async move { w.make_attempt(&u, Duration::hours(2)).await }
    };
    let mut want = Vec::new();
    for (name, nbv, how) in [
        ("p1", past, "expire"),
        ("p2", future, "expire"),
        ("p8", future, "clear"),
        ("p9", past, "clear"),
    ] {
        let u = r.unit(&spec, name, DataMap::new()).await;
        let a = r.ok(make(u.clone()).await, "make");
        r.ok(u.set_meta(nb(nbv)).await, "set_meta while pending");
        match how {
            "expire" => r.ok(a.expire(None).await, "expire"),
            _ => r.ok(u.clear_active_attempt().await, "clear"),
        }
        want.push((
            name,
            if nbv == past {
                U::Available
            } else {
                U::Delayed
            },
        ));
    }
    for (name, nbv, fail) in [("p3", past, true), ("p4", future, false)] {
        let u = r.unit(&spec, name, DataMap::new()).await;
        let a = r.ok(make(u.clone()).await, "make");
        let ended = if fail {
            a.fail(None).await
        } else {
            a.finish(None).await
        };
        r.ok(ended, "end");
        r.unit_meta(&spec, name, DataMap::new(), nb(nbv)).await;
        want.push((name, if fail { U::Available } else { U::Delayed }));
    }
    for (name, then) in [
        ("p5", "priority"),
        ("p6", "readd"),
        ("p7", "past"),
        ("p14", "wait"),
    ] {
        let delay = if then == "wait" {
            Duration::seconds(5)
        } else {
            Duration::hours(1)
        };
        let u = r.unit(&spec, name, DataMap::new()).await;
        let a = r.ok(make(u.clone()).await, "make");
        r.ok(a.retry(None, delay).await, "retry");
        match then {
            "priority" => r.ok(u.set_priority(5.0).await, "set_priority"),
            "readd" => drop(r.unit(&spec, name, DataMap::new()).await),
            "past" => r.ok(u.set_meta(nb(past)).await, "set_meta past"),
            _ => {}
        }
        want.push((
            name,
            if then == "priority" {
                U::Delayed
            } else {
                U::Available
            },
        ));
    }
    let u = r.unit(&spec, "p10", DataMap::new()).await;
    let a = r.ok(make(u.clone()).await, "make");
    r.ok(
        other.make_attempt(&u, Duration::hours(2)).await,
        "supersede",
    );
    r.ok(
        a.retry(None, Duration::zero()).await,
        "retry the superseded one",
    );
    want.push(("p10", U::Pending));
    let u = r.unit(&spec, "p11", DataMap::new()).await;
    let a = r.ok(make(u.clone()).await, "make");
    r.ok(a.finish(None).await, "finish");
    let a = r.ok(make(u.clone()).await, "restart");
    r.ok(a.expire(None).await, "expire restarted");
    want.push(("p11", U::Available));
    let u = r.unit_meta(&spec, "p12", DataMap::new(), nb(future)).await;
    let a = r.ok(make(u.clone()).await, "make delayed");
    r.ok(a.finish(None).await, "finish");
    r.unit_meta(&spec, "p12", DataMap::new(), nb(future)).await;
    want.push(("p12", U::Delayed));

    r.advance_secs(10);
    let mut available: Vec<&str> = want
        .iter()
        .filter(|w| w.1 == U::Available)
        .map(|w| w.0)
        .collect();
    available.sort();
    r.request_units(
        &worker,
        AttemptRequest::units(100),
        &available,
        "first call: request",
    )
    .await;
    let mut tally = std::collections::BTreeMap::new();
    for (name, st) in &want {
        let st = if *st == U::Available { U::Pending } else { *st };
        *tally.entry(st).or_insert(0u64) += 1;
        let u = r.ok(spec.work_unit(name).await, "lookup");
        r.ok_eq(
            u.status().await,
            st,
            format_args!("{name} after the request"),
        );
        let q = WorkUnitQuery {
            statuses: vec![st],
            ..WorkUnitQuery::all()
        };
        let listed = r.ok(spec.work_units(&q).await, "work_units");
        check!(r, listed.contains_key(*name), "{name} listed under {st:?}");
    }
    let counts = r.ok(spec.count_work_unit_status().await, "counts");
    check_eq!(r, counts, tally, "counts");
    let m = r.ok(spec.meta(true).await, "meta(true)");
    let pending = i64::try_from(tally[&U::Pending]).unwrap_or(i64::MAX);
    check_eq!(
        r,
        (m.available_count, m.pending_count),
        (0, pending),
        "meta"
    );
}

/// Concurrent requests never run more units of a spec at once than its
/// `max_running`.
pub async fn concurrent_requests_respect_max_running(t: TestBackend) {
    let (r, ns) = Run::with_ns("concurrent_requests_respect_max_running", t).await;
    let spec = r.spec(&ns, data!({"name": "spec", "max_running": 3})).await;
    for i in 0..40 {
        r.unit(&spec, &format!("u{i:02}"), DataMap::new()).await;
    }
    let mut tasks = Vec::new();
    for i in 0..8 {
        let w = r.worker(&ns, &format!("w{i}")).await;
        tasks.push(tokio::spawn(async move {
            let mut got = 0;
            for _ in 0..2 {
                got += w.request_attempts(&AttemptRequest::units(5)).await?.len();
            }
            Result::Ok(got)
        }));
    }
    let mut total = 0;
    for task in tasks {
        total += r.ok(task.await.expect("task"), "concurrent request");
    }
    check_eq!(r, total, 3, "attempts handed out under max_running 3");
    let m = r.ok(spec.meta(true).await, "meta(true)");
    check_eq!(r, m.pending_count, 3, "pending");
}

/// Concurrent requests to an idle continuous spec at one instant generate
/// exactly one unit and one attempt.
pub async fn concurrent_requests_generate_one_continuous_unit(t: TestBackend) {
    let (r, ns) = Run::with_ns("concurrent_requests_generate_one_continuous_unit", t).await;
    let spec = r
        .spec(&ns, data!({"name": "spec", "continuous": true}))
        .await;
    r.advance_secs(7);
    let mut tasks = Vec::new();
    for i in 0..8 {
        let w = r.worker(&ns, &format!("w{i}")).await;
        tasks.push(tokio::spawn(async move {
            Result::Ok(w.request_attempts(&AttemptRequest::units(3)).await?.len())
        }));
    }
    let mut total = 0;
    for task in tasks {
        total += r.ok(task.await.expect("task"), "concurrent request");
    }
    check_eq!(r, total, 1, "attempts handed out");
    r.units_are(&spec, ["7.000"], "one generated unit").await;
    let u = r.ok(spec.work_unit("7.000").await, "lookup");
    r.ok_eq(u.num_attempts().await, 1, "one attempt");
}

/// Chaining reads the finishing unit's spec's `then` as it is at `finish`,
/// not as it was when the attempt started; a `then` removed meanwhile
/// chains nothing.
pub async fn chaining_reads_then_at_finish(t: TestBackend) {
    let r = Run::new("chaining_reads_then_at_finish", t);
    let (ns, a, b, worker) = r.chain_fixture("chaining_reads_then_at_finish").await;
    let c = r.spec(&ns, data!({"name": "c", "disabled": true})).await;
    r.unit(&a, "u", DataMap::new()).await;
    let att = r.request_unit(&worker, "u", "request u").await;
    r.ok(
        a.set_data(data!({"name": "a", "then": "c"})).await,
        "then c",
    );
    r.ok(att.finish(Some(data!({"output": ["x"]}))).await, "finish u");
    r.units_are(&b, [], "old target").await;
    r.units_are(&c, ["x"], "new target").await;
    r.unit(&a, "v", DataMap::new()).await;
    let att = r.request_unit(&worker, "v", "request v").await;
    r.ok(a.set_data(data!({"name": "a"})).await, "no then");
    r.ok(att.finish(Some(data!({"output": ["y"]}))).await, "finish v");
    r.units_are(&b, [], "b after v").await;
    r.units_are(&c, ["x"], "c after v").await;
}

/// Re-adding a unit keeps its attempt history, so a unit failed for too
/// many retries fails again on its next request.
pub async fn retry_limit_outlives_a_readd(t: TestBackend) {
    let (r, ns) = Run::with_ns("retry_limit_outlives_a_readd", t).await;
    let spec = r.spec(&ns, data!({"name": "spec", "max_retries": 1})).await;
    let worker = r.worker(&ns, "worker").await;
    let unit = r.unit(&spec, "u", DataMap::new()).await;
    r.request_unit(&worker, "u", "first").await;
    r.advance(Duration::minutes(16));
    r.request_none(&worker, "second attempt is over the limit")
        .await;
    r.ok_eq(unit.status().await, U::Failed, "failed");
    r.unit(&spec, "u", data!({"again": true})).await;
    r.ok_eq(unit.status().await, U::Available, "re-added");
    r.request_none(&worker, "third attempt is over the limit too")
        .await;
    r.ok_eq(unit.status().await, U::Failed, "failed again");
    r.ok_eq(unit.num_attempts().await, 3, "history kept");
    let traceback = data!({"traceback": "too many retries"});
    r.ok_eq(unit.data().await, traceback, "traceback");
}

/// Chained names and data keep U+0000 and escape look-alikes exactly,
/// whether the output comes with `finish` or from the attempt's stored
/// data (put there by `renew`, or the unit's own).
pub async fn chaining_keeps_nul_and_escape_look_alikes(t: TestBackend) {
    let r = Run::new("chaining_keeps_nul_and_escape_look_alikes", t);
    let (_ns, a, b, worker) = r
        .chain_fixture("chaining_keeps_nul_and_escape_look_alikes")
        .await;
    let out = |tag: &str| {
        let mut d = DataMap::new();
        d.insert(
            "output".into(),
            serde_json::json!([
                [format!("{tag}-a\u{0}b"), {"k\u{0}": "\u{E000}0", "e": "x\u{E000}\u{E000}"}],
                format!("{tag}-\u{E000}0"),
                format!("{tag}-\u{E000}"),
            ]),
        );
        d
    };
    for how in ["finish", "renew", "own"] {
        let own = if how == "own" {
            out(how)
        } else {
            DataMap::new()
        };
        r.unit(&a, how, own).await;
        let att = r.request_unit(&worker, how, "request").await;
        match how {
            "finish" => r.ok(att.finish(Some(out(how))).await, "finish"),
            "renew" => {
                r.ok(
                    att.renew(Duration::minutes(1), Some(out(how))).await,
                    "renew",
                );
                r.ok(att.finish(None).await, "finish")
            }
            _ => r.ok(att.finish(None).await, "finish"),
        }
        let names = [
            format!("{how}-a\u{0}b"),
            format!("{how}-\u{E000}0"),
            format!("{how}-\u{E000}"),
        ];
        for n in &names {
            r.ok(b.work_unit(n).await, format_args!("lookup {n:?}"));
        }
        let u = r.ok(b.work_unit(&names[0]).await, "lookup");
        let want = data!({"k\u{0}": "\u{E000}0", "e": "x\u{E000}\u{E000}"});
        r.ok_eq(u.data().await, want, format_args!("{how}: chained data"));
    }
    check_eq!(
        r,
        r.unit_names(&b, "b").await.len(),
        9,
        "nine chained units"
    );
}

/// `set_work_spec` on an existing name replaces the definition: every
/// `set_meta` change (`next_continuous` included) is discarded, so the meta
/// equals that of a spec freshly defined the same way.
pub async fn set_work_spec_rederives_the_whole_meta(t: TestBackend) {
    let (r, ns) = Run::with_ns("set_work_spec_rederives_the_whole_meta", t).await;
    let def = data!({"name": "spec", "continuous": true, "interval": 30, "min_gb": 1,
                     "max_running": 2, "max_getwork": 3, "max_retries": 4, "then": "x",
                     "runtime": "rt", "priority": 5, "nice": 2});
    let spec = r.spec(&ns, def.clone()).await;
    let fresh = r.ok(spec.meta(false).await, "fresh meta");
    let mut meta = fresh.clone();
    meta.priority = 9;
    meta.weight = 3;
    meta.paused = true;
    meta.continuous = false;
    meta.min_memory_gb = 7.0;
    meta.interval = Duration::seconds(99);
    meta.next_continuous = Some(r.now() + Duration::hours(5));
    meta.max_running = 20;
    meta.max_attempts_returned = 30;
    meta.max_retries = 40;
    r.ok(spec.set_meta(meta).await, "set_meta");
    r.advance_secs(5);
    r.ok(ns.set_work_spec(def).await, "set_work_spec again");
    r.ok_eq(spec.meta(false).await, fresh, "meta re-derived whole");
}
