//! Retry scenarios: retry delays and the `max_retries` limit.

use super::{Run, TestBackend};
use crate::api::{WorkSpecRef, WorkerRef};
use crate::data;
use crate::model::{
    AttemptRequest, AttemptStatus, DataMap, Duration, WorkUnitMeta, WorkUnitQuery, WorkUnitStatus,
};

use AttemptStatus as A;
use WorkUnitStatus as U;

/// **RetryDelay.** A retried unit is Delayed until the delay has elapsed.
pub async fn retry_delay(t: TestBackend) {
    let (r, _ns, spec, worker) = Run::with_basic("retry_delay", t, "spec").await;
    let unit = r.unit(&spec, "u", DataMap::new()).await;
    let a = r.request_unit(&worker, "u", "request").await;
    r.ok(a.retry(None, Duration::seconds(60)).await, "retry(60 s)");
    r.ok_eq(
        unit.meta().await.map(|v| v.not_before),
        Some(r.now() + Duration::seconds(60)),
        "not_before",
    );
    r.advance_secs(30);
    r.ok_eq(unit.status().await, U::Delayed, "before the delay");
    r.request_none(&worker, "before the delay").await;
    r.advance_secs(30);
    r.ok_eq(unit.status().await, U::Available, "after the delay");
    r.drain(&worker, &["u"], "drain").await;
}

/// Lets the single unit of `spec` be handed out `times` times, each
/// attempt left to expire (the clock passes the lease).
async fn expire_repeatedly(r: &Run, worker: &WorkerRef, unit: &str, times: usize) {
    for i in 0..times {
        r.request_unit(worker, unit, format_args!("hand-out {i}"))
            .await;
        r.advance(Duration::minutes(20));
    }
}

/// **MaxRetries.** After `R` expired attempts the next one fails the unit
/// with a `too many retries` traceback.
pub async fn max_retries(t: TestBackend) {
    let (r, ns) = Run::with_ns("max_retries", t).await;
    let spec = r.spec(&ns, data!({"name": "spec", "max_retries": 3})).await;
    let worker = r.worker(&ns, "worker").await;
    let unit = r.unit(&spec, "u", data!({"k": "v"})).await;
    expire_repeatedly(&r, &worker, "u", 3).await;
    r.request_none(&worker, "request over the limit").await;
    r.ok_eq(unit.status().await, U::Failed, "unit failed");
    let expected = data!({"traceback": "too many retries"});
    r.ok_eq(unit.data().await, expected, "traceback");
    r.ok_eq(unit.num_attempts().await, 4, "attempts");
    let active = r.ok(unit.active_attempt().await, "active");
    let Some(active) = active else {
        panic!("[max_retries] failed unit has no active attempt")
    };
    r.ok_eq(active.status().await, A::Failed, "last attempt");
    r.ok_eq(active.end_time().await, Some(r.now()), "end time");
    r.ok_empty(
        worker.active_attempts().await,
        "failed attempt on worker's active list",
    );
}

/// A spec handing out two units a request, each tried at most once, holding
/// `units`; and a worker.
async fn one_retry_batches(r: &Run, ns: &str, units: &[&str]) -> (WorkSpecRef, WorkerRef) {
    let ns = r.ns(ns).await;
    let definition = data!({"name": "spec", "max_getwork": 2, "max_retries": 1});
    let spec = r.spec(&ns, definition).await;
    let worker = r.worker(&ns, "worker").await;
    r.units(&spec, units).await;
    (spec, worker)
}

/// **MaxRetriesMulti.** A partially failed batch is returned short,
/// without topping up.
pub async fn max_retries_multi(t: TestBackend) {
    let r = Run::new("max_retries_multi", t);
    let (spec, worker) = one_retry_batches(&r, "max_retries_multi", &["a", "b", "c", "d"]).await;
    let got = r
        .request(&worker, AttemptRequest::units(10), "first batch")
        .await;
    let got_names = super::unit_names_of(&got);
    check_eq!(r, got_names, vec!["a", "b"], "first batch");
    r.ok(got[0].finish(None).await, "finish a");
    r.advance(Duration::minutes(20));
    let got = r
        .request(&worker, AttemptRequest::units(10), "second batch")
        .await;
    let got_names = super::unit_names_of(&got);
    check_eq!(r, got_names, vec!["c"], "second batch, not topped up");
    let b = r.ok(spec.work_unit("b").await, "lookup b");
    r.ok_eq(b.status().await, U::Failed, "b failed");
    let d = r.ok(spec.work_unit("d").await, "lookup d");
    r.ok_eq(d.status().await, U::Available, "d untouched");
}

/// **MaxRetriesMultiBatch.** A batch of only over-limit units is failed and
/// the next batch is returned instead.
pub async fn max_retries_multi_batch(t: TestBackend) {
    let r = Run::new("max_retries_multi_batch", t);
    let (spec, worker) =
        one_retry_batches(&r, "max_retries_multi_batch", &["a", "b", "c", "d", "e"]).await;
    let got = r
        .request(&worker, AttemptRequest::units(10), "first batch")
        .await;
    check_eq!(r, got.len(), 2, "first batch size");
    r.advance(Duration::minutes(20));
    let got = r
        .request(&worker, AttemptRequest::units(10), "second batch")
        .await;
    let got_names = super::unit_names_of(&got);
    check_eq!(r, got_names, vec!["c", "d"], "next batch");
    let counts = r.ok(spec.count_work_unit_status().await, "counts");
    let expected = [(U::Failed, 2), (U::Pending, 2), (U::Available, 1)]
        .into_iter()
        .collect();
    check_eq!(r, counts, expected, "status counts");
}

/// Without `max_retries` (0, unlimited) a unit is handed out again after
/// any number of expiries.
pub async fn max_retries_unlimited(t: TestBackend) {
    let (r, _ns, spec, worker) = Run::with_basic("max_retries_unlimited", t, "spec").await;
    let unit = r.unit(&spec, "u", DataMap::new()).await;
    expire_repeatedly(&r, &worker, "u", 6).await;
    let a = r.request_unit(&worker, "u", "seventh").await;
    r.ok_eq(a.status().await, A::Pending, "still handed out");
    r.ok_eq(unit.num_attempts().await, 7, "attempts");
}

/// `max_retries` set through `set_meta` applies to the next request, and
/// counts every attempt (including `make_attempt` ones).
pub async fn max_retries_set_meta(t: TestBackend) {
    let (r, _ns, spec, worker) = Run::with_basic("max_retries_set_meta", t, "spec").await;
    let unit = r.unit(&spec, "u", DataMap::new()).await;
    let a = r.ok(worker.make_attempt(&unit, Duration::zero()).await, "make");
    r.ok(a.expire(None).await, "expire");
    let a = r.ok(worker.make_attempt(&unit, Duration::zero()).await, "make");
    r.ok(a.retry(None, Duration::zero()).await, "retry");
    let mut meta = r.ok(spec.meta(false).await, "meta");
    meta.max_retries = 2;
    r.ok(spec.set_meta(meta).await, "set_meta(max_retries = 2)");
    r.request_none(&worker, "third attempt exceeds the limit")
        .await;
    r.ok_eq(unit.status().await, U::Failed, "unit failed");
    r.ok_eq(unit.num_attempts().await, 3, "attempts");
}

/// A delayed unit whose not-before time is moved to one already past, or
/// cleared, is Available at once: counted, listed and handed out so.
pub async fn not_before_moved_into_the_past(t: TestBackend) {
    let (r, _ns, spec, worker) = Run::with_basic("not_before_moved_into_the_past", t, "spec").await;
    let later = r.now() + Duration::hours(1);
    let earlier = r.now() - Duration::seconds(1);
    for (name, moved_to) in [("past", Some(earlier)), ("cleared", None)] {
        let unit = r
            .unit_meta(
                &spec,
                name,
                DataMap::new(),
                WorkUnitMeta {
                    priority: 0.0,
                    not_before: Some(later),
                },
            )
            .await;
        r.ok_eq(
            unit.status().await,
            U::Delayed,
            format_args!("{name}: waits"),
        );
        r.request_none(&worker, format_args!("{name}: nothing to hand out"))
            .await;
        r.ok(
            unit.set_meta(WorkUnitMeta {
                priority: 0.0,
                not_before: moved_to,
            })
            .await,
            format_args!("{name}: move its not-before time"),
        );
        r.counts_are(&spec, [(U::Available, 1)], format_args!("{name}: counted"))
            .await;
        let available = WorkUnitQuery {
            statuses: vec![U::Available],
            ..Default::default()
        };
        let listed = r.ok(spec.work_units(&available).await, "list available");
        check_eq!(
            r,
            listed.into_keys().collect::<Vec<_>>(),
            vec![name.to_string()],
            "{name}: listed available"
        );
        let attempt = r
            .request_unit(&worker, name, format_args!("{name}: handed out"))
            .await;
        r.ok(attempt.finish(None).await, format_args!("{name}: finish"));
        r.ok(
            spec.delete_work_units(&WorkUnitQuery::all()).await,
            "empty the spec",
        );
    }
}
