//! Expiry scenarios: leases that run out, applied lazily and exactly at
//! the boundary.

use super::{at_secs, Run, TestBackend};
use crate::api::{AttemptRef, WorkUnitRef};
use crate::data;
use crate::error::Error;
use crate::model::{
    AttemptRequest, AttemptStatus, DataMap, Duration, WorkUnitQuery, WorkUnitStatus,
};

use AttemptStatus as A;
use WorkUnitStatus as U;

/// **AttemptExpiration.** Past the default lifetime the attempt is Expired,
/// counts show it available, and it is handed out again.
pub async fn attempt_expiration(t: TestBackend) {
    let (r, _ns, spec, worker) = Run::with_basic("attempt_expiration", t, "spec").await;
    let unit = r.unit(&spec, "u", DataMap::new()).await;
    let a = r.request_unit(&worker, "u", "request").await;
    r.ok_eq(a.status().await, A::Pending, "fresh attempt");
    r.request_none(&worker, "second request").await;
    r.advance(Duration::minutes(15) + Duration::seconds(1));
    r.ok_eq(a.status().await, A::Expired, "after the lease");
    let meta = r.ok(spec.meta(true).await, "meta(true)");
    check_eq!(
        r,
        (meta.available_count, meta.pending_count),
        (1, 0),
        "counts"
    );
    r.ok_eq(unit.status().await, U::Available, "unit available");
    let again = r.request_unit(&worker, "u", "request again").await;
    r.ok_eq(again.status().await, A::Pending, "new attempt");
}

/// Lazy expiry: without an expiry check, an attempt past its deadline can
/// still be renewed and finished; reads of data, meta, priorities, names
/// and attempt lists run no check.
pub async fn lazy_expiry_finish_before_check(t: TestBackend) {
    let (r, ns, spec, worker) = Run::with_basic("lazy_expiry_finish_before_check", t, "spec").await;
    let unit = r.unit(&spec, "u", DataMap::new()).await;
    let other = r.unit(&spec, "v", DataMap::new()).await;
    let a = r.ok(
        worker.make_attempt(&unit, Duration::seconds(10)).await,
        "make",
    );
    r.advance_secs(20);
    // Calls that perform no expiry check.
    r.ok(
        worker.make_attempt(&other, Duration::seconds(10)).await,
        "make another attempt in the spec",
    );
    r.ok_eq(a.data().await, DataMap::new(), "attempt data");
    r.ok(a.start_time().await, "start_time");
    r.ok(unit.data().await, "unit data");
    r.ok(spec.meta(false).await, "meta(false)");
    r.ok(worker.active_attempts().await, "worker active list");
    r.ok(worker.all_attempts().await, "worker's attempts");
    r.ok(worker.child_attempts().await, "worker's child attempts");
    r.ok(unit.meta().await, "unit meta");
    r.ok(unit.data_and_meta().await, "unit data and meta");
    r.ok(unit.priority().await, "unit priority");
    r.ok(unit.attempts().await, "unit attempts");
    r.ok(unit.num_attempts().await, "unit attempt count");
    r.ok(spec.work_unit("u").await, "unit lookup");
    r.ok(ns.work_spec_names().await, "spec names");
    r.ok(ns.workers().await, "workers");
    r.ok(
        a.renew(Duration::seconds(5), None).await,
        "renew past the deadline",
    );
    r.advance_secs(20);
    r.ok(
        a.finish(Some(data!({"done": true}))).await,
        "finish past the deadline",
    );
    r.ok_eq(a.status().await, A::Finished, "attempt finished");
    r.ok_eq(unit.status().await, U::Finished, "unit finished");
}

/// Lazy expiry: once an expiry check has run, `finish`/`fail`/`retry` fail
/// with
/// `NotPending` and `renew` with `LostLease`; the expired attempt keeps its
/// expiration time, ends at the check, and leaves the worker's list. Every
/// listed operation performs the check.
pub async fn lazy_expiry_after_check(t: TestBackend) {
    let (r, ns, spec, worker) = Run::with_basic("lazy_expiry_after_check", t, "spec").await;
    // One unit per checking operation; each gets a 10 s lease.
    let checks = OBJECT_CHECKS.into_iter().chain([
        "spec.meta(true)",
        "spec.work_units",
        "spec.count_work_unit_status",
        "spec.summarize",
        "namespace.summarize",
        "backend.summarize",
        "worker.request_attempts",
    ]);
    for check in checks {
        let unit = r.unit(&spec, check, DataMap::new()).await;
        let a = r.ok(
            worker.make_attempt(&unit, Duration::seconds(10)).await,
            "make",
        );
        let deadline = r.ok(a.expiration_time().await, "expiration");
        r.advance_secs(11);
        let check_time = r.now();
        match check {
            _ if OBJECT_CHECKS.contains(&check) => check_by_read(&r, check, &unit, &a).await,
            "spec.meta(true)" => drop(r.ok(spec.meta(true).await, check)),
            "spec.work_units" => drop(r.ok(spec.work_units(&WorkUnitQuery::all()).await, check)),
            "spec.count_work_unit_status" => drop(r.ok(spec.count_work_unit_status().await, check)),
            "spec.summarize" => drop(r.ok(spec.summarize().await, check)),
            "namespace.summarize" => drop(r.ok(ns.summarize().await, check)),
            "backend.summarize" => drop(r.ok(r.backend().summarize().await, check)),
            _ => {
                // The spec is paused so the request itself takes nothing.
                let mut meta = r.ok(spec.meta(false).await, "meta");
                meta.paused = true;
                r.ok(spec.set_meta(meta.clone()).await, "pause");
                r.request_none(&worker, check).await;
                meta.paused = false;
                r.ok(spec.set_meta(meta).await, "unpause");
            }
        }
        r.advance_secs(1);
        // The check ended the attempt: a later read does not end it again.
        r.ok_eq(
            a.end_time().await,
            Some(check_time),
            format_args!("end time after {check}"),
        );
        r.fails(
            a.finish(None).await,
            Error::NotPending,
            format_args!("finish after {check}"),
        );
        r.fails(
            a.fail(None).await,
            Error::NotPending,
            format_args!("fail after {check}"),
        );
        r.fails(
            a.retry(None, Duration::zero()).await,
            Error::NotPending,
            format_args!("retry after {check}"),
        );
        r.fails(
            a.renew(Duration::minutes(1), None).await,
            Error::LostLease,
            format_args!("renew after {check}"),
        );
        r.ok_eq(
            a.status().await,
            A::Expired,
            format_args!("status after {check}"),
        );
        let exp = r.ok(a.expiration_time().await, "expiration");
        check_eq!(r, exp, deadline, "expiration kept after {check}");
        r.active_is(&unit, None, "active cleared after {check}")
            .await;
        r.ok_eq(
            unit.status().await,
            U::Available,
            format_args!("after {check}"),
        );
        r.ok_empty(
            worker.active_attempts().await,
            format_args!("expired attempt on the worker's list after {check}"),
        );
    }
}

/// The three query mutators apply lazy expiry before filtering by status:
/// a lapsed lease's unit is Available to them, not Pending.
pub async fn lazy_expiry_in_query_mutators(t: TestBackend) {
    let (r, _ns, spec, worker) = Run::with_basic("lazy_expiry_in_query_mutators", t, "spec").await;
    let by_status = |status: U| WorkUnitQuery {
        statuses: vec![status],
        ..Default::default()
    };
    let lapse = |unit: WorkUnitRef| {
        let (r, worker) = (&r, &worker);
        async move {
            r.ok(
                worker.make_attempt(&unit, Duration::seconds(10)).await,
                "make",
            );
            r.advance_secs(11);
            unit
        }
    };

    let kept = lapse(r.unit(&spec, "kept", DataMap::new()).await).await;
    r.ok(
        spec.set_work_unit_priorities(&by_status(U::Pending), 5.0)
            .await,
        "set priorities of pending units",
    );
    r.ok(
        spec.adjust_work_unit_priorities(&by_status(U::Pending), 5.0)
            .await,
        "adjust priorities of pending units",
    );
    r.ok_eq(kept.priority().await, 0.0, "a lapsed unit is not pending");
    r.ok(
        spec.set_work_unit_priorities(&by_status(U::Available), 5.0)
            .await,
        "set priorities of available units",
    );
    r.ok_eq(kept.priority().await, 5.0, "a lapsed unit is available");

    let adjusted = lapse(r.unit(&spec, "adjusted", DataMap::new()).await).await;
    r.ok(
        spec.adjust_work_unit_priorities(&by_status(U::Available), 2.0)
            .await,
        "adjust priorities of available units",
    );
    r.ok_eq(adjusted.priority().await, 2.0, "adjusted once expired");

    lapse(r.unit(&spec, "deleted", DataMap::new()).await).await;
    r.ok_eq(
        spec.delete_work_units(&by_status(U::Pending)).await,
        0,
        "delete pending units",
    );
    r.ok_eq(
        spec.delete_work_units(&WorkUnitQuery {
            names: vec!["deleted".into()],
            statuses: vec![U::Available],
            ..Default::default()
        })
        .await,
        1,
        "delete the lapsed unit as available",
    );
    r.units_are(&spec, ["adjusted", "kept"], "what is left")
        .await;
}

/// A priority change that fails changes nothing, not even the expiry its
/// selection runs: a lapsed lease the change would select as Available
/// stays pending, active and renewable.
pub async fn failed_priority_change_expires_nothing(t: TestBackend) {
    let (r, _ns, spec, worker) =
        Run::with_basic("failed_priority_change_expires_nothing", t, "spec").await;
    let unit = r.unit(&spec, "top", DataMap::new()).await;
    r.ok(unit.set_priority(f64::MAX).await, "the largest priority");
    let attempt = r.ok(
        worker.make_attempt(&unit, Duration::seconds(10)).await,
        "make",
    );
    r.advance_secs(11);
    let queries = [
        WorkUnitQuery::all(),
        WorkUnitQuery::names(["top"]),
        WorkUnitQuery {
            statuses: vec![U::Available],
            limit: 10,
            ..Default::default()
        },
    ];
    for query in &queries {
        r.fails(
            spec.adjust_work_unit_priorities(query, f64::MAX).await,
            Error::BadPriority,
            format_args!("adjust {query:?} past the largest priority"),
        );
    }
    r.ok_eq(
        worker.active_attempts().await.map(|a| a.len()),
        1,
        "the lapsed attempt is still active",
    );
    r.ok(
        attempt.renew(Duration::seconds(60), None).await,
        "renew the lapsed lease",
    );
    r.ok_eq(unit.status().await, U::Pending, "renewed");
    r.ok_eq(unit.priority().await, f64::MAX, "priority unchanged");
}

/// The expiry boundary: an attempt is expired only when its
/// deadline is strictly earlier than now.
pub async fn expiry_boundary(t: TestBackend) {
    let (r, _ns, spec, worker) = Run::with_basic("expiry_boundary", t, "spec").await;
    let unit = r.unit(&spec, "u", DataMap::new()).await;
    let a = r.ok(
        worker.make_attempt(&unit, Duration::seconds(30)).await,
        "make",
    );
    r.advance_secs(30);
    r.ok_eq(a.status().await, A::Pending, "at the deadline");
    r.ok_eq(unit.status().await, U::Pending, "unit at the deadline");
    r.advance(Duration::milliseconds(1));
    r.ok_eq(a.status().await, A::Expired, "1 ms past the deadline");
    r.ok_eq(a.end_time().await, Some(r.now()), "end time");
    r.ok_eq(a.expiration_time().await, at_secs(30), "expiration kept");
}

/// The reads of one unit or attempt that perform an expiry check.
const OBJECT_CHECKS: [&str; 5] = [
    "unit.status",
    "unit.active_attempt",
    "attempt.status",
    "attempt.end_time",
    "attempt.expiration_time",
];

/// Performs the read `check` (one of [`OBJECT_CHECKS`]) on `unit` or its
/// `attempt`.
async fn check_by_read(r: &Run, check: &str, unit: &WorkUnitRef, attempt: &AttemptRef) {
    match check {
        "unit.status" => drop(r.ok(unit.status().await, check)),
        "unit.active_attempt" => drop(r.ok(unit.active_attempt().await, check)),
        "attempt.status" => drop(r.ok(attempt.status().await, check)),
        "attempt.end_time" => drop(r.ok(attempt.end_time().await, check)),
        _ => drop(r.ok(attempt.expiration_time().await, check)),
    }
}

/// An expiry check covers at least its scope: a read of one unit or
/// attempt expires every lapsed lease of its spec, a request every lapsed
/// lease of the worker's namespace whatever its filters; a lease expired
/// by a check keeps the attempt's data.
pub async fn expiry_check_scope(t: TestBackend) {
    let (r, ns, spec, worker) = Run::with_basic("expiry_check_scope", t, "spec").await;
    for check in OBJECT_CHECKS {
        let x = r.unit(&spec, &format!("{check} x"), DataMap::new()).await;
        let y = r.unit(&spec, &format!("{check} y"), DataMap::new()).await;
        let ax = r.ok(worker.make_attempt(&x, Duration::seconds(10)).await, "x");
        let ay = r.ok(worker.make_attempt(&y, Duration::seconds(10)).await, "y");
        r.ok(
            ay.renew(Duration::seconds(10), Some(data!({"p": 1}))).await,
            "y's data",
        );
        r.advance_secs(11);
        let check_time = r.now();
        check_by_read(&r, check, &x, &ax).await;
        r.advance_secs(1);
        r.ok_eq(
            ay.end_time().await,
            Some(check_time),
            format_args!("the other unit's lease, ended by {check}"),
        );
        r.ok_eq(
            ay.data().await,
            data!({"p": 1}),
            format_args!("data kept after {check}"),
        );
    }

    // A request restricted to another spec, by name or by runtime.
    let other = r.spec(&ns, data!({"name": "other", "runtime": "go"})).await;
    r.units(&other, &["o1", "o2"]).await;
    let filters = [
        AttemptRequest {
            work_specs: vec!["other".into()],
            ..AttemptRequest::default()
        },
        AttemptRequest {
            runtimes: vec!["go".into()],
            ..AttemptRequest::default()
        },
    ];
    for (round, request) in filters.into_iter().enumerate() {
        let unit = r
            .unit(&spec, &format!("lapsed {round}"), DataMap::new())
            .await;
        let lapsed = r.ok(
            worker.make_attempt(&unit, Duration::seconds(10)).await,
            "make",
        );
        r.advance_secs(11);
        let check_time = r.now();
        let got = r
            .request(&worker, request, format_args!("request {round}"))
            .await;
        check_eq!(r, got.len(), 1, "request {round} got its unit");
        r.advance_secs(1);
        r.ok_eq(
            lapsed.end_time().await,
            Some(check_time),
            format_args!("a lease of a spec request {round} left out"),
        );
    }
}

/// A lapsed lease on a unit whose not-before time is ahead leaves it
/// Delayed, not Available, for every query that filters by status, the
/// first read of its spec included.
pub async fn lapsed_lease_not_before_ahead_is_delayed(t: TestBackend) {
    let (r, ns) = Run::with_ns("lapsed_lease_not_before_ahead_is_delayed", t).await;
    let worker = r.worker(&ns, "worker").await;
    let delayed = WorkUnitQuery {
        statuses: vec![U::Delayed],
        ..Default::default()
    };
    let later = r.now() + Duration::hours(1);
    let mut specs = Vec::new();
    for i in 0..7 {
        let spec = r.named_spec(&ns, &format!("s{i}")).await;
        let lapsed = r.unit(&spec, "lapsed", DataMap::new()).await;
        let attempt = r.ok(
            worker.make_attempt(&lapsed, Duration::seconds(10)).await,
            "make",
        );
        r.ok(
            lapsed
                .set_meta(crate::model::WorkUnitMeta {
                    priority: 0.0,
                    not_before: Some(later),
                })
                .await,
            "not before an hour ahead, while running",
        );
        r.unit(&spec, "idle", DataMap::new()).await;
        r.unit_meta(
            &spec,
            "waiting",
            DataMap::new(),
            crate::model::WorkUnitMeta {
                priority: 0.0,
                not_before: Some(later),
            },
        )
        .await;
        specs.push((spec, attempt));
    }
    r.advance_secs(11);
    let listed = |spec: &crate::api::WorkSpecRef, query: WorkUnitQuery| {
        let spec = spec.clone();
        async move {
            spec.work_units(&query)
                .await
                .map(|m| m.into_keys().collect::<Vec<_>>())
        }
    };
    let (s, _) = &specs[0];
    r.ok_eq(
        listed(s, delayed.clone()).await,
        vec!["lapsed", "waiting"],
        "delayed",
    );
    let (s, _) = &specs[1];
    let available = WorkUnitQuery {
        statuses: vec![U::Available],
        ..Default::default()
    };
    r.ok_eq(listed(s, available).await, vec!["idle"], "available");
    let (s, _) = &specs[2];
    let named = WorkUnitQuery {
        names: vec!["lapsed".into(), "idle".into()],
        ..delayed.clone()
    };
    r.ok_eq(listed(s, named).await, vec!["lapsed"], "delayed, by name");
    let (s, _) = &specs[3];
    let first = WorkUnitQuery {
        limit: 1,
        ..delayed.clone()
    };
    r.ok_eq(listed(s, first).await, vec!["lapsed"], "the first delayed");
    let (s, _) = &specs[4];
    r.ok(
        s.set_work_unit_priorities(&delayed, 7.0).await,
        "set priorities",
    );
    for (unit, priority) in [("lapsed", 7.0), ("idle", 0.0), ("waiting", 7.0)] {
        let unit = r.ok(s.work_unit(unit).await, "lookup");
        r.ok_eq(
            unit.priority().await,
            priority,
            format_args!("{} priority", unit.name()),
        );
    }
    let (s, _) = &specs[5];
    r.ok_eq(s.delete_work_units(&delayed).await, 2, "delete the delayed");
    r.units_are(s, ["idle"], "left").await;
    let (s, _) = &specs[6];
    r.counts_are(s, [(U::Available, 1), (U::Delayed, 2)], "counts")
        .await;
    let checked = r.now();
    // Spec 5's lapsed unit, and its attempt, were deleted.
    for (i, (_, attempt)) in specs.iter().enumerate().filter(|(i, _)| *i != 5) {
        r.ok_eq(
            attempt.end_time().await,
            Some(checked),
            format_args!("spec {i}: the lease expired by its first read"),
        );
    }
}
