//! Attempt scenarios: an attempt's life, its metadata and data, and
//! `make_attempt`.

use super::{at_secs, each_named, Dead, Run, TestBackend};
use crate::data;
use crate::model::{AttemptStatus, DataMap, Duration, WorkUnitMeta, WorkUnitStatus};

use AttemptStatus as A;
use WorkUnitStatus as U;

/// **AttemptLifetime.** A unit and its attempt through request, finish with
/// list-valued data and `clear_active_attempt`.
pub async fn attempt_lifetime(t: TestBackend) {
    let (r, _ns, spec, worker) = Run::with_basic("attempt_lifetime", t, "spec").await;
    let unit = r.unit(&spec, "u", DataMap::new()).await;
    r.ok_eq(unit.status().await, U::Available, "initial status");
    r.ok_eq(unit.data().await, DataMap::new(), "initial data");
    r.advance_secs(5);
    let a = r.request_unit(&worker, "u", "request").await;
    let key = r.key(&a).await;
    r.ok_eq(unit.status().await, U::Pending, "unit pending");
    r.ok_eq(a.status().await, A::Pending, "attempt pending");
    r.active_is(&unit, Some(&a), "unit's active attempt").await;
    let active = r.ok(worker.active_attempts().await, "worker active");
    check_eq!(
        r,
        r.keys(&active).await,
        vec![key.clone()],
        "worker's active attempts"
    );
    r.ok_eq(unit.data().await, DataMap::new(), "data while pending");

    let result = data!({"outputs": ["not", "chained"], "n": 1});
    r.ok(a.finish(Some(result.clone())).await, "finish");
    r.ok_eq(unit.status().await, U::Finished, "unit finished");
    r.ok_eq(a.status().await, A::Finished, "attempt finished");
    r.active_is(&unit, Some(&a), "still active").await;
    let active = r.ok(worker.active_attempts().await, "worker active");
    check!(
        r,
        active.is_empty(),
        "worker active list not empty after finish"
    );
    let history = r.ok(unit.attempts().await, "unit attempts");
    check_eq!(r, r.keys(&history).await, vec![key.clone()], "unit history");
    let all = r.ok(worker.all_attempts().await, "worker all");
    check_eq!(
        r,
        r.keys(&all).await,
        vec![key.clone()],
        "worker all attempts"
    );
    r.ok_eq(unit.data().await, result, "unit data is the finish data");

    r.ok(unit.clear_active_attempt().await, "clear_active_attempt");
    r.ok_eq(unit.status().await, U::Available, "available after clear");
    r.ok_eq(unit.data().await, DataMap::new(), "own data after clear");
    r.active_is(&unit, None, "no active attempt after clear")
        .await;
    let history = r.ok(unit.attempts().await, "unit attempts");
    check_eq!(
        r,
        r.keys(&history).await,
        vec![key.clone()],
        "history after clear"
    );
    let all = r.ok(worker.all_attempts().await, "worker all");
    check_eq!(r, r.keys(&all).await, vec![key], "worker all after clear");
    r.ok_eq(a.status().await, A::Finished, "attempt keeps status");
}

/// **AttemptMetadata.** Start, data, end and expiration through renew and finish.
pub async fn attempt_metadata(t: TestBackend) {
    let (r, _ns, spec, worker) = Run::with_basic("attempt_metadata", t, "spec").await;
    let unit_data = data!({"from": "unit", "list": [1, 2]});
    r.unit(&spec, "u", unit_data.clone()).await;
    r.advance_secs(10);
    let start = r.now();
    let a = r.request_unit(&worker, "u", "request").await;
    r.ok_eq(a.start_time().await, start, "start time");
    r.ok_eq(a.data().await, unit_data.clone(), "attempt data snapshot");
    r.ok_eq(a.end_time().await, None, "end time unset");
    let exp = r.ok(a.expiration_time().await, "expiration");
    check_eq!(r, exp, start + Duration::minutes(15), "default lifetime");

    r.advance_secs(60);
    let renewed = data!({"from": "renew"});
    r.ok(
        a.renew(Duration::minutes(3), Some(renewed.clone())).await,
        "renew",
    );
    r.ok_eq(a.start_time().await, start, "start after renew");
    r.ok_eq(a.data().await, renewed, "data after renew");
    r.ok_eq(a.end_time().await, None, "end after renew");
    let exp = r.ok(a.expiration_time().await, "expiration");
    check_eq!(
        r,
        exp,
        at_secs(70) + Duration::minutes(3),
        "expiration after renew"
    );

    r.advance_secs(60);
    let finished = data!({"from": "finish"});
    r.ok(a.finish(Some(finished.clone())).await, "finish");
    r.ok_eq(a.start_time().await, start, "start after finish");
    r.ok_eq(a.data().await, finished.clone(), "data after finish");
    let end = r.ok(a.end_time().await, "end");
    check_eq!(r, end, Some(at_secs(130)), "end time after finish");
    check!(r, end > Some(start), "end after start");
    let unit = a.work_unit();
    let own = r.ok(spec.work_unit("u").await, "lookup");
    r.ok_eq(unit.data().await, finished, "visible data");
    r.ok(own.clear_active_attempt().await, "clear");
    r.ok_eq(own.data().await, unit_data, "unit's own data untouched");
}

/// **AttemptFractionalStart.** An attempt starting at a fractional second
/// works normally, and its times keep the fraction.
pub async fn attempt_fractional_start(t: TestBackend) {
    let (r, _ns, spec, worker) = Run::with_basic("attempt_fractional_start", t, "spec").await;
    r.unit(&spec, "u", DataMap::new()).await;
    r.advance(Duration::milliseconds(1_234));
    let start = r.now();
    let a = r.request_unit(&worker, "u", "request").await;
    r.ok_eq(a.start_time().await, start, "fractional start kept");
    r.advance(Duration::milliseconds(1_001));
    r.ok(a.finish(None).await, "finish");
    r.ok_eq(a.end_time().await, Some(r.now()), "fractional end kept");
    // A clock finer than the stored resolution: every stack records its
    // time in whole microseconds.
    r.unit(&spec, "v", DataMap::new()).await;
    r.advance(Duration::nanoseconds(2_000_789));
    let start = r.now() - Duration::nanoseconds(789);
    let b = r
        .request_unit(&worker, "v", "request at a sub-microsecond time")
        .await;
    r.ok_eq(b.start_time().await, start, "start in whole microseconds");
    r.advance(Duration::nanoseconds(1_000_300));
    r.ok(b.finish(None).await, "finish at a sub-microsecond time");
    let end = r.now() - Duration::nanoseconds(89);
    r.ok_eq(b.end_time().await, Some(end), "end in whole microseconds");
}

/// **AttemptGone.** `status()` on an attempt of a deleted unit fails with
/// `Gone` (or a `NoSuch…`).
pub async fn attempt_gone(t: TestBackend) {
    let (r, _ns, spec, worker) = Run::with_basic("attempt_gone", t, "spec").await;
    r.unit(&spec, "u", DataMap::new()).await;
    let a = r.request_unit(&worker, "u", "request").await;
    r.delete_all(&spec).await;
    r.gone(
        a.status().await,
        Dead::unit("spec", "u"),
        "status of attempt of deleted unit",
    );
}

/// `make_attempt`: no state checks (it restarts a finished unit of a
/// paused spec), supersedes the previous active attempt, which keeps its
/// status and stays on its worker's active list; a zero lifetime is 15
/// minutes.
pub async fn make_attempt_semantics(t: TestBackend) {
    let (r, ns) = Run::with_ns("make_attempt_semantics", t).await;
    let spec = r.spec(&ns, data!({"name": "spec", "disabled": true})).await;
    let [one, two] = each_named(["one", "two"], |n| r.worker(&ns, n)).await;
    let meta = WorkUnitMeta {
        priority: 0.0,
        not_before: Some(r.now() + Duration::hours(1)),
    };
    let unit = r.unit_meta(&spec, "u", data!({"v": 1}), meta).await;
    let first = r.ok(
        one.make_attempt(&unit, Duration::zero()).await,
        "make (delayed)",
    );
    r.ok_eq(
        first.expiration_time().await,
        r.now() + Duration::minutes(15),
        "zero lifetime means 15 minutes",
    );
    r.ok(first.finish(None).await, "finish");
    r.advance_secs(1);
    let second = r.ok(
        two.make_attempt(&unit, Duration::seconds(60)).await,
        "restart",
    );
    r.ok_eq(unit.status().await, U::Pending, "restarted");
    r.advance_secs(1);
    let third = r.ok(
        one.make_attempt(&unit, Duration::seconds(60)).await,
        "supersede",
    );
    r.active_is(&unit, Some(&third), "newest is active").await;
    r.ok_eq(second.status().await, A::Pending, "superseded status");
    let two_active = r.ok(two.active_attempts().await, "two's active list");
    check_eq!(
        r,
        r.keys(&two_active).await,
        vec![r.key(&second).await],
        "superseded listed"
    );
    r.ok_eq(unit.num_attempts().await, 3, "history");
    let history = r.ok(unit.attempts().await, "attempts");
    let expected = vec![
        r.key(&first).await,
        r.key(&second).await,
        r.key(&third).await,
    ];
    check_eq!(
        r,
        r.keys_ordered(&history).await,
        expected,
        "history in creation order"
    );
    // A superseded pending attempt is not subject to automatic expiry.
    r.advance_secs(120);
    r.ok_eq(second.status().await, A::Pending, "not auto-expired");
    r.ok_eq(third.status().await, A::Expired, "active one expired");
}

/// An empty map is a real replacement, `None` keeps the old data:
/// `renew`, `finish` and `fail` with `Some({})` empty the
/// attempt's data (and the unit's visible data), `None` keeps it.
pub async fn empty_map_replaces_data(t: TestBackend) {
    let (r, _ns, spec, worker) = Run::with_basic("empty_map_replaces_data", t, "spec").await;
    let full = data!({"k": "v"});
    let mut units = Vec::new();
    for name in ["renew", "finish", "fail", "expire"] {
        units.push(r.unit(&spec, name, full.clone()).await);
    }
    for unit in &units {
        let name = unit.name();
        let a = r.ok(worker.make_attempt(unit, Duration::zero()).await, "make");
        match name {
            "renew" => {
                r.ok(a.renew(Duration::minutes(1), None).await, "renew(None)");
                r.ok_eq(a.data().await, full.clone(), "renew(None) keeps data");
                r.ok(
                    a.renew(Duration::minutes(1), Some(DataMap::new())).await,
                    "renew({})",
                );
            }
            "finish" => r.ok(a.finish(Some(DataMap::new())).await, "finish({})"),
            "fail" => r.ok(a.fail(Some(DataMap::new())).await, "fail({})"),
            _ => r.ok(a.expire(Some(DataMap::new())).await, "expire({})"),
        }
        r.ok_eq(
            a.data().await,
            DataMap::new(),
            format_args!("{name}: attempt data"),
        );
        if name != "expire" {
            r.ok_eq(
                unit.data().await,
                DataMap::new(),
                format_args!("{name}: visible"),
            );
        }
        r.ok(unit.clear_active_attempt().await, "clear");
        r.ok_eq(
            unit.data().await,
            full.clone(),
            format_args!("{name}: unit's own data"),
        );
    }
}
