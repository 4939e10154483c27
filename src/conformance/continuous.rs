//! Continuous work spec scenarios: generation per request, intervals,
//! generated names and the `next_continuous` gate.

use super::{at_secs, names, Run, TestBackend};
use crate::api::{WorkSpecRef, WorkerRef};
use crate::data;
use crate::model::{AttemptRequest, DataMap, Duration, WorkUnitMeta, WorkUnitStatus};

use WorkUnitStatus::{Delayed, Failed, Pending};

/// Namespace `ns` holding the continuous spec `spec` (with the
/// `interval` given, if any), and a worker.
async fn fixture(r: &Run, ns: &str, interval: Option<i64>) -> (WorkSpecRef, WorkerRef) {
    let ns = r.ns(ns).await;
    let mut definition = data!({"name": "spec", "continuous": true});
    if let Some(interval) = interval {
        definition.insert("interval".into(), interval.into());
    }
    let spec = r.spec(&ns, definition).await;
    (spec, r.worker(&ns, "worker").await)
}

/// **Continuous.** In the empty-named namespace a continuous spec yields one
/// attempt per request; `continuous = false` stops it, `true` resumes.
pub async fn continuous(t: TestBackend) {
    let r = Run::new("continuous", t);
    let (spec, worker) = fixture(&r, "", None).await;
    for round in 0..2 {
        r.advance_secs(5);
        let a = r
            .request_one(&worker, format_args!("request {round}"))
            .await;
        let Some(a) = a else {
            panic!("[continuous] request {round}: no continuous unit")
        };
        r.ok(a.finish(None).await, "finish");
    }
    let mut meta = r.ok(spec.meta(false).await, "meta");
    meta.continuous = false;
    r.ok(spec.set_meta(meta).await, "set_meta(continuous = false)");
    r.advance_secs(5);
    r.request_none(&worker, "request while not continuous")
        .await;
    let mut meta = r.ok(spec.meta(false).await, "meta");
    meta.continuous = true;
    r.ok(spec.set_meta(meta).await, "set_meta(continuous = true)");
    r.advance_secs(5);
    let a = r.request_one(&worker, "request after resuming").await;
    let Some(a) = a else {
        panic!("[continuous] no unit after resuming")
    };
    r.ok(a.finish(None).await, "finish");
    let units = r.unit_names(&spec, "units").await;
    check_eq!(
        r,
        units,
        names(["5.000", "10.000", "20.000"]),
        "generated unit names"
    );
}

/// **ContinuousInterval.** `next_continuous = t0 + I`; nothing before it;
/// one at it; after a long wait exactly one (no catch-up).
pub async fn continuous_interval(t: TestBackend) {
    let r = Run::new("continuous_interval", t);
    let (spec, worker) = fixture(&r, "continuous_interval", Some(60)).await;
    r.advance_secs(100);
    let t0 = r.now();
    let got = r
        .request(&worker, AttemptRequest::units(5), "request at t0")
        .await;
    check_eq!(r, got.len(), 1, "attempts at t0");
    check_eq!(r, got[0].work_unit().name(), "100.000", "generated name");
    r.ok(got[0].finish(None).await, "finish");
    let meta = r.ok(spec.meta(false).await, "meta");
    check_eq!(
        r,
        meta.next_continuous,
        Some(t0 + Duration::seconds(60)),
        "next_continuous"
    );
    r.advance_secs(30);
    r.request_none(&worker, "at t0 + I/2").await;
    r.advance_secs(30);
    let a = r.request_unit(&worker, "160.000", "at t0 + I").await;
    r.ok(a.finish(None).await, "finish");
    r.advance_secs(150);
    let got = r
        .request(&worker, AttemptRequest::units(5), "after a long wait")
        .await;
    check_eq!(r, got.len(), 1, "one attempt after a long wait");
    r.ok(got[0].finish(None).await, "finish");
    r.request_none(&worker, "immediately after (no catch-up)")
        .await;
    let meta = r.ok(spec.meta(false).await, "meta");
    check_eq!(
        r,
        meta.next_continuous,
        Some(at_secs(370)),
        "next_continuous from now"
    );
}

/// Continuous unit names are `secs.mmm` of now; a generated name
/// that already exists reuses that unit.
pub async fn continuous_unit_name(t: TestBackend) {
    let r = Run::new("continuous_unit_name", t);
    let (spec, worker) = fixture(&r, "continuous_unit_name", None).await;
    r.advance(Duration::seconds(1_400_000_000) + Duration::milliseconds(5));
    let a = r.request_unit(&worker, "1400000000.005", "request").await;
    r.ok(a.finish(None).await, "finish");
    let unit = a.work_unit();
    r.ok_eq(unit.data().await, DataMap::new(), "generated unit data");
    let meta = r.ok(unit.meta().await, "meta");
    check_eq!(r, meta, WorkUnitMeta::default(), "generated unit meta");
    // A unit with the next generated name already exists (finished): it is
    // reused and handed out again.
    let next = "1400000001.250";
    let existing = r.unit(&spec, next, data!({"k": 1})).await;
    let old = r.ok(
        worker.make_attempt(&existing, Duration::zero()).await,
        "make",
    );
    r.ok(old.finish(None).await, "finish pre-existing");
    let mut meta = r.ok(spec.meta(false).await, "spec meta");
    meta.next_continuous = None;
    r.ok(spec.set_meta(meta).await, "set_meta");
    r.advance(Duration::milliseconds(1245));
    let a = r.request_unit(&worker, next, "request at .250").await;
    r.ok_eq(existing.num_attempts().await, 2, "existing unit reused");
    r.ok(a.finish(None).await, "finish");
}

/// One request never yields more than one continuous unit, whatever the
/// number asked for; none while a unit is available or pending.
pub async fn continuous_one_per_request(t: TestBackend) {
    let r = Run::new("continuous_one_per_request", t);
    let (spec, worker) = fixture(&r, "continuous_one_per_request", None).await;
    r.advance_secs(1);
    let got = r.request(&worker, AttemptRequest::units(10), "first").await;
    check_eq!(r, got.len(), 1, "one continuous unit");
    r.advance_secs(1);
    let got2 = r
        .request(&worker, AttemptRequest::units(10), "while pending")
        .await;
    check!(r, got2.is_empty(), "generated while one is pending");
    r.ok(got[0].finish(None).await, "finish");
    r.unit(&spec, "real", DataMap::new()).await;
    r.advance_secs(1);
    let got = r
        .request(&worker, AttemptRequest::units(10), "with a real unit")
        .await;
    check_eq!(r, got.len(), 1, "only the real unit");
    check_eq!(r, got[0].work_unit().name(), "real", "real unit first");
}

/// `next_continuous` from `set_meta` gates generation: a future
/// value blocks it until reached; clearing it allows it at once.
pub async fn continuous_next_gate(t: TestBackend) {
    let r = Run::new("continuous_next_gate", t);
    let (spec, worker) = fixture(&r, "continuous_next_gate", None).await;
    let mut meta = r.ok(spec.meta(false).await, "meta");
    meta.next_continuous = Some(at_secs(100));
    r.ok(spec.set_meta(meta.clone()).await, "set_meta(next = 100 s)");
    r.advance(Duration::seconds(100) - Duration::milliseconds(1));
    r.request_none(&worker, "1 ms before next_continuous").await;
    r.advance(Duration::milliseconds(1));
    let a = r
        .request_unit(&worker, "100.000", "at next_continuous")
        .await;
    r.ok(a.finish(None).await, "finish");
    meta.next_continuous = Some(at_secs(10_000));
    r.ok(spec.set_meta(meta.clone()).await, "set_meta(next far)");
    r.advance_secs(1);
    r.request_none(&worker, "before the far next_continuous")
        .await;
    meta.next_continuous = None;
    r.ok(spec.set_meta(meta).await, "set_meta(next unset)");
    r.request_unit(&worker, "101.000", "after clearing next_continuous")
        .await;
}

/// Sub-second times: a `set_meta` interval of 1.5 s
/// reads back exactly and moves `next_continuous` by exactly 1.5 s; a
/// continuous unit's name truncates now to whole milliseconds (65 s +
/// 999 µs is `65.000`, 66.999999 s is `66.999`).
pub async fn continuous_sub_second(t: TestBackend) {
    let r = Run::new("continuous_sub_second", t);
    let (spec, worker) = fixture(&r, "continuous_sub_second", None).await;
    let first = at_secs(65) + Duration::microseconds(999);
    r.t.clock.set(first);
    let a = r
        .request_unit(&worker, "65.000", "request at 65 s + 999 µs")
        .await;
    r.ok(a.finish(None).await, "finish 65.000");
    let mut meta = r.ok(spec.meta(false).await, "meta");
    check_eq!(
        r,
        meta.next_continuous,
        Some(first),
        "next_continuous after a zero interval"
    );
    let interval = Duration::milliseconds(1500);
    meta.interval = interval;
    r.ok(spec.set_meta(meta).await, "set_meta(interval = 1.5 s)");
    r.ok_eq(
        spec.meta(false).await.map(|m| m.interval),
        interval,
        "interval read back",
    );
    let second = at_secs(66) + Duration::microseconds(999_999);
    r.t.clock.set(second);
    let a = r
        .request_unit(&worker, "66.999", "request at 66.999999 s")
        .await;
    r.ok(a.finish(None).await, "finish 66.999");
    let next = second + interval;
    r.ok_eq(
        spec.meta(false).await.map(|m| m.next_continuous),
        Some(next),
        "next_continuous = now + 1.5 s",
    );
    r.t.clock.set(next - Duration::microseconds(1));
    r.request_none(&worker, "1 µs before next_continuous").await;
    r.t.clock.set(next);
    r.request_unit(&worker, "68.499", "at next_continuous")
        .await;
}

/// A paused continuous spec generates nothing and keeps no gate; unpaused,
/// it generates. A unit already named as the generated one is used, in
/// whatever state: here a failed one gets a new attempt.
pub async fn continuous_paused_and_reused(t: TestBackend) {
    let r = Run::new("continuous_paused_and_reused", t);
    let ns = r.ns("continuous_paused_and_reused").await;
    let spec = r
        .spec(
            &ns,
            data!({"name": "spec", "continuous": true, "disabled": true}),
        )
        .await;
    let worker = r.worker(&ns, "worker").await;
    r.advance_secs(5);
    r.request_none(&worker, "paused").await;
    r.ok_eq(
        spec.meta(false).await.map(|m| m.next_continuous),
        None,
        "no gate while paused",
    );
    r.advance_secs(5);
    let mut meta = r.ok(spec.meta(false).await, "meta");
    meta.paused = false;
    r.ok(spec.set_meta(meta).await, "unpause");
    let first = r.request_unit(&worker, "10.000", "unpaused").await;
    r.ok(first.finish(None).await, "finish");

    let taken = r.unit(&spec, "20.000", DataMap::new()).await;
    let failed = r.ok(
        worker.make_attempt(&taken, Duration::zero()).await,
        "make_attempt(20.000)",
    );
    r.ok(failed.fail(None).await, "fail 20.000");
    r.advance_secs(10);
    let again = r
        .request_unit(&worker, "20.000", "the generated name exists")
        .await;
    r.ok_eq(taken.num_attempts().await, 2, "a second attempt on it");
    r.ok_eq(
        again.status().await,
        crate::model::AttemptStatus::Pending,
        "the new attempt",
    );
    let units = r.unit_names(&spec, "units").await;
    check_eq!(r, units, names(["10.000", "20.000"]), "no other unit made");
}

/// The `next_continuous` gate holds back generation only: a continuous
/// spec's own units are handed out whenever they are available.
pub async fn continuous_gate_spares_real_units(t: TestBackend) {
    let r = Run::new("continuous_gate_spares_real_units", t);
    let (spec, worker) = fixture(&r, "continuous_gate_spares_real_units", Some(3600)).await;
    r.advance_secs(5);
    let generated = r.request_unit(&worker, "5.000", "generated").await;
    r.ok(generated.finish(None).await, "finish the generated unit");
    r.unit(&spec, "real", DataMap::new()).await;
    r.advance_secs(5);
    let real = r.request_unit(&worker, "real", "inside the interval").await;
    r.ok(real.finish(None).await, "finish real");
    r.request_none(&worker, "nothing more inside the interval")
        .await;
}

/// A continuous spec whose generated unit still runs cannot start another,
/// so it is no candidate: specs of lower priority get the requests.
pub async fn continuous_running_yields_to_lower_priority(t: TestBackend) {
    let (r, ns) = Run::with_ns("continuous_running_yields_to_lower_priority", t).await;
    r.spec(
        &ns,
        data!({"name": "cont", "continuous": true, "priority": 5}),
    )
    .await;
    let plain = r.named_spec(&ns, "plain").await;
    r.units(&plain, &["p0", "p1"]).await;
    let worker = r.worker(&ns, "worker").await;
    r.advance_secs(1);
    let generated = r.request_unit(&worker, "1.000", "generated first").await;
    r.request_unit(&worker, "p0", "then the lower priority")
        .await;
    r.request_unit(&worker, "p1", "and again").await;
    r.request_none(&worker, "nothing left").await;
    r.ok(generated.finish(None).await, "finish the generated unit");
    r.advance_secs(1);
    r.request_unit(&worker, "2.000", "generated again").await;
}

/// Delayed units do not hold back generation: a continuous spec whose
/// only units wait for a not-before time generates one, and once their time
/// has come they are handed out instead.
pub async fn continuous_beside_delayed_units(t: TestBackend) {
    let r = Run::new("continuous_beside_delayed_units", t);
    let (spec, worker) = fixture(&r, "continuous_beside_delayed_units", None).await;
    let later = r.now() + Duration::hours(1);
    let waiting = r
        .unit_meta(
            &spec,
            "later",
            DataMap::new(),
            WorkUnitMeta {
                priority: 0.0,
                not_before: Some(later),
            },
        )
        .await;
    r.advance_secs(5);
    let got = r
        .request_units(
            &worker,
            AttemptRequest::units(10),
            &["5.000"],
            "beside a waiting unit",
        )
        .await;
    r.ok(got[0].finish(None).await, "finish 5.000");
    r.ok_eq(
        waiting.status().await,
        crate::model::WorkUnitStatus::Delayed,
        "later waits",
    );
    let held = r.unit(&spec, "held", DataMap::new()).await;
    let tried = r.ok(
        worker.make_attempt(&held, Duration::zero()).await,
        "try held",
    );
    r.ok(
        tried.retry(None, Duration::hours(1)).await,
        "retry held in an hour",
    );
    r.advance_secs(5);
    let got = r
        .request_units(
            &worker,
            AttemptRequest::units(10),
            &["10.000"],
            "beside a retried unit",
        )
        .await;
    r.ok(got[0].finish(None).await, "finish 10.000");
    r.advance(Duration::hours(1));
    r.request_units(
        &worker,
        AttemptRequest::units(10),
        &["held", "later"],
        "their time has come",
    )
    .await;
}

/// A continuous spec that cannot start a unit — inside its interval, or
/// before a `next_continuous` set ahead — is no candidate, whatever its
/// priority: a lower-priority spec's units are handed out meanwhile, and
/// generation resumes once the gate opens.
pub async fn continuous_gated_yields_to_lower_priority(t: TestBackend) {
    let (r, ns) = Run::with_ns("continuous_gated_yields_to_lower_priority", t).await;
    let definition = data!({"name": "cont", "continuous": true, "interval": 60, "priority": 10});
    let cont = r.spec(&ns, definition).await;
    let low = r.named_spec(&ns, "low").await;
    r.units(&low, &["u", "v"]).await;
    let worker = r.worker(&ns, "worker").await;
    r.advance_secs(100);
    let a = r
        .request_unit(&worker, "100.000", "the continuous spec first")
        .await;
    r.ok(a.finish(None).await, "finish 100.000");
    r.advance_secs(10);
    r.request_unit(&worker, "u", "inside the interval").await;
    let mut meta = r.ok(cont.meta(false).await, "meta");
    meta.next_continuous = Some(at_secs(10_000));
    r.ok(cont.set_meta(meta).await, "set_meta(next = 10,000 s)");
    r.advance_secs(60);
    r.request_unit(&worker, "v", "past the interval, before next_continuous")
        .await;
    r.t.clock.set(at_secs(10_000));
    r.request_unit(&worker, "10000.000", "at next_continuous")
        .await;
}

/// A generated name held by a unit that waits for its not-before time:
/// that unit is used, whatever its state, and the attempt (for the
/// request's lifetime) makes it Pending; no other unit is made.
pub async fn continuous_reuses_a_delayed_unit(t: TestBackend) {
    let r = Run::new("continuous_reuses_a_delayed_unit", t);
    let (spec, worker) = fixture(&r, "continuous_reuses_a_delayed_unit", None).await;
    let waiting = WorkUnitMeta {
        priority: 0.0,
        not_before: Some(at_secs(3_600)),
    };
    let held = r.unit_meta(&spec, "20.000", data!({"k": 1}), waiting).await;
    r.ok_eq(held.status().await, Delayed, "the unit waits");
    r.advance_secs(20);
    let request = AttemptRequest {
        lifetime: Duration::seconds(90),
        ..AttemptRequest::default()
    };
    let got = r
        .request_units(&worker, request, &["20.000"], "the generated name exists")
        .await;
    r.ok_eq(held.status().await, Pending, "the waiting unit runs");
    r.ok_eq(
        got[0].expiration_time().await,
        at_secs(20 + 90),
        "the request's lifetime",
    );
    r.ok_eq(got[0].data().await, data!({"k": 1}), "the unit's own data");
    let units = r.unit_names(&spec, "units").await;
    check_eq!(r, units, names(["20.000"]), "no other unit made");
}

/// A request whose every taken unit fails over `max_retries` generates no
/// continuous unit in the same call, though that leaves the spec with none
/// available or pending; the next request does.
pub async fn continuous_not_generated_after_retries_fail(t: TestBackend) {
    let r = Run::new("continuous_not_generated_after_retries_fail", t);
    let ns = r.ns("continuous_not_generated_after_retries_fail").await;
    let definition = data!({"name": "spec", "continuous": true, "max_retries": 1});
    let spec = r.spec(&ns, definition).await;
    let worker = r.worker(&ns, "worker").await;
    let unit = r.unit(&spec, "u", DataMap::new()).await;
    let first = r.ok(
        worker.make_attempt(&unit, Duration::zero()).await,
        "make_attempt",
    );
    r.ok(first.expire(None).await, "expire");
    r.advance_secs(5);
    r.request_nothing(&worker, AttemptRequest::units(10), "u over its retries")
        .await;
    r.ok_eq(unit.status().await, Failed, "u failed");
    let units = r.unit_names(&spec, "units").await;
    check_eq!(r, units, names(["u"]), "nothing generated");
    r.ok_eq(
        spec.meta(false).await.map(|m| m.next_continuous),
        None,
        "the gate untouched",
    );
    r.request_unit(&worker, "5.000", "the next request").await;
}
