//! Time scenarios: not-before delays, delayed chained output and a clock
//! that moves backwards.

use super::{at_secs, Run, TestBackend};
use crate::data;
use crate::model::{
    AttemptRequest, AttemptStatus, DataMap, Duration, Time, WorkUnitMeta, WorkUnitStatus,
};

use WorkUnitStatus::{Available, Delayed, Finished};

/// **NotBeforeDelayedStatus.** Delayed until the not-before time; Available
/// from exactly that instant on.
pub async fn not_before_delayed_status(t: TestBackend) {
    let (r, ns) = Run::with_ns("not_before_delayed_status", t).await;
    let spec = r.named_spec(&ns, "spec").await;
    r.advance_secs(100);
    let meta = WorkUnitMeta {
        priority: 0.0,
        not_before: Some(at_secs(110)),
    };
    let unit = r.unit_meta(&spec, "u", DataMap::new(), meta).await;
    r.ok_eq(unit.status().await, Delayed, "before not_before");
    r.ok_eq(unit.meta().await, meta, "meta reported");
    r.advance(Duration::seconds(10) - Duration::milliseconds(1));
    r.ok_eq(unit.status().await, Delayed, "1 ms before not_before");
    r.advance(Duration::milliseconds(1));
    r.ok_eq(unit.status().await, Available, "at not_before");
    r.advance_secs(1);
    r.ok_eq(unit.status().await, Available, "after not_before");
}

/// **NotBeforeAttempt.** A delayed unit is not handed out until its time.
pub async fn not_before_attempt(t: TestBackend) {
    let (r, _ns, spec, worker) = Run::with_basic("not_before_attempt", t, "spec").await;
    let meta = WorkUnitMeta {
        priority: 0.0,
        not_before: Some(r.now() + Duration::seconds(60)),
    };
    r.unit_meta(&spec, "u", DataMap::new(), meta).await;
    r.drain(&worker, &[], "drain while delayed").await;
    r.advance_secs(120);
    r.drain(&worker, &["u"], "drain after the delay").await;
}

/// **NotBeforePriority.** A delayed high-priority unit does not block an
/// available low-priority one.
pub async fn not_before_priority(t: TestBackend) {
    let (r, _ns, spec, worker) = Run::with_basic("not_before_priority", t, "spec").await;
    r.unit_priority(&spec, "low", 0.0).await;
    let meta = WorkUnitMeta {
        priority: 10.0,
        not_before: Some(r.now() + Duration::seconds(60)),
    };
    r.unit_meta(&spec, "high", DataMap::new(), meta).await;
    r.drain(&worker, &["low"], "drain now").await;
    r.advance_secs(60);
    r.drain(&worker, &["high"], "drain after the delay").await;
}

/// **DelayedOutput.** A chained item with a delay creates a Delayed unit
/// that runs once the delay has passed.
pub async fn delayed_output(t: TestBackend) {
    let (r, ns) = Run::with_ns("delayed_output", t).await;
    let one = r.spec(&ns, data!({"name": "one", "then": "two"})).await;
    let two = r.named_spec(&ns, "two").await;
    let worker = r.worker(&ns, "worker").await;
    r.unit(&one, "u", DataMap::new()).await;
    r.advance_secs(10);
    let a = r.request_unit(&worker, "u", "request").await;
    let output = data!({"output": [["later", {"x": 1}, {"delay": 90.7}]]});
    r.ok(a.finish(Some(output)).await, "finish with delayed output");
    let later = r.ok(two.work_unit("later").await, "chained unit");
    let meta = r.ok(later.meta().await, "chained meta");
    check_eq!(
        r,
        meta.not_before,
        Some(at_secs(100)),
        "not_before = now + 90 s"
    );
    r.ok_eq(later.status().await, Delayed, "chained unit status");
    r.ok_eq(later.data().await, data!({"x": 1}), "chained data");
    r.advance_secs(5);
    r.request_none(&worker, "shortly after").await;
    r.advance_secs(85);
    r.drain(&worker, &["later"], "drain after the delay").await;
}

/// A clock that moves backwards (skew) never makes an operation panic or
/// fail: attempts started "in the future" stay pending, times are reported
/// as the clock said, and work continues.
pub async fn clock_skew(t: TestBackend) {
    let (r, ns, spec, worker) = Run::with_basic("clock_skew", t, "spec").await;
    let unit = r.unit(&spec, "u", DataMap::new()).await;
    r.advance_secs(1000);
    let a = r.request_unit(&worker, "u", "request at 1000 s").await;
    r.advance_secs(-2000);
    r.ok_eq(a.status().await, AttemptStatus::Pending, "after going back");
    r.ok(
        a.renew(Duration::seconds(10), None).await,
        "renew in the past",
    );
    r.ok_eq(
        a.expiration_time().await,
        at_secs(-990),
        "deadline from now",
    );
    r.ok(a.finish(None).await, "finish before the start");
    r.ok_eq(
        a.end_time().await,
        Some(at_secs(-1000)),
        "end as the clock said",
    );
    r.ok_eq(unit.status().await, Finished, "finished");
    let late = r.worker(&ns, "late").await;
    r.ok_eq(late.last_update().await, at_secs(-1000), "worker time");
    let meta = WorkUnitMeta {
        priority: 0.0,
        not_before: Some(at_secs(-999)),
    };
    r.unit_meta(&spec, "v", DataMap::new(), meta).await;
    let looked_up = r.ok(spec.work_unit("v").await, "v");
    r.ok_eq(looked_up.status().await, Delayed, "v");
    r.advance_secs(2);
    r.drain(&late, &["v"], "drain after the skew").await;
}

/// An unset time is distinct from every real instant, the Unix epoch
/// included. With the clock at the epoch: a unit's `not_before`
/// set to the epoch (by `set_meta` or `add_work_unit`), a spec's
/// `next_continuous` set to the epoch or generated as now + a zero
/// interval, the `not_before` of a zero-delay retry and the `end_time` of
/// a finish all read back as the epoch, never as unset.
pub async fn epoch_is_not_unset(t: TestBackend) {
    let (r, ns) = Run::with_ns("epoch_is_not_unset", t).await;
    let epoch = Time::UNIX_EPOCH;
    check_eq!(r, r.now(), epoch, "the mock clock starts at the epoch");
    let spec = r.named_spec(&ns, "spec").await;
    let worker = r.worker(&ns, "worker").await;
    let at_epoch = WorkUnitMeta {
        priority: 0.0,
        not_before: Some(epoch),
    };
    let unit = r.unit(&spec, "set", DataMap::new()).await;
    r.ok(
        unit.set_meta(at_epoch).await,
        "set_meta(not_before = epoch)",
    );
    r.ok_eq(unit.meta().await, at_epoch, "not_before set to the epoch");
    let fresh = r.ok(spec.work_unit("set").await, "lookup set");
    r.ok_eq(fresh.meta().await, at_epoch, "not_before via a lookup");
    r.ok_eq(unit.status().await, Available, "not_before = now");
    let added = r.unit_meta(&spec, "added", DataMap::new(), at_epoch).await;
    r.ok_eq(added.meta().await, at_epoch, "not_before given when added");

    let retried = r.unit(&spec, "retried", DataMap::new()).await;
    let a = r.ok(
        worker.make_attempt(&retried, Duration::zero()).await,
        "make",
    );
    r.ok(a.retry(None, Duration::zero()).await, "retry with no delay");
    r.ok_eq(retried.meta().await, at_epoch, "not_before after the retry");
    r.ok_eq(retried.status().await, Available, "retried unit");

    let finished = r.unit(&spec, "finished", DataMap::new()).await;
    let a = r.ok(
        worker.make_attempt(&finished, Duration::zero()).await,
        "make",
    );
    r.ok_eq(a.end_time().await, None, "end_time while pending");
    r.ok(a.finish(None).await, "finish");
    r.ok_eq(a.end_time().await, Some(epoch), "end_time of the finish");

    let mut meta = r.ok(spec.meta(false).await, "spec meta");
    check_eq!(r, meta.next_continuous, None, "next_continuous at first");
    meta.next_continuous = Some(epoch);
    r.ok(
        spec.set_meta(meta).await,
        "set_meta(next_continuous = epoch)",
    );
    r.ok_eq(
        spec.meta(false).await.map(|m| m.next_continuous),
        Some(epoch),
        "next_continuous set to the epoch",
    );

    let generating = r
        .spec(&ns, data!({"name": "generating", "continuous": true}))
        .await;
    let request = AttemptRequest {
        work_specs: vec!["generating".into()],
        ..AttemptRequest::default()
    };
    r.request_units(&worker, request, &["0.000"], "generate at the epoch")
        .await;
    r.ok_eq(
        generating.meta(false).await.map(|m| m.next_continuous),
        Some(epoch),
        "next_continuous = the epoch + a zero interval",
    );
}
