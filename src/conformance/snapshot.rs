//! `WorkUnit::snapshot` and `WorkUnit::data_and_meta`: status, data and
//! meta in one read, equal to the separate reads in every state, lazy
//! expiry and deletion included; and `Attempt::snapshot`, likewise.

use super::{Dead, Identity, Run, TestBackend};
use crate::api::{AttemptRef, WorkSpecRef, WorkUnitRef, WorkerRef};
use crate::data;
use crate::model::{
    AttemptSnapshot, AttemptStatus, DataMap, Duration, WorkUnitMeta, WorkUnitQuery,
    WorkUnitSnapshot, WorkUnitStatus,
};

use AttemptStatus as A;
use WorkUnitStatus as U;

/// The unit's snapshot, which must equal `status`, `data` and `meta` read
/// right after it (the snapshot's expiry check has run by then, so the
/// separate reads see what it saw).
async fn snapshot_matches(r: &Run, unit: &WorkUnitRef, step: &str) -> WorkUnitSnapshot {
    let snapshot = r.ok(unit.snapshot().await, format_args!("{step}: snapshot"));
    let separate = WorkUnitSnapshot::new(
        r.ok(unit.status().await, format_args!("{step}: status")),
        r.ok(unit.data().await, format_args!("{step}: data")),
        r.ok(unit.meta().await, format_args!("{step}: meta")),
    );
    check_eq!(r, snapshot, separate, "{step}: snapshot vs separate reads");
    let both = r.ok(
        unit.data_and_meta().await,
        format_args!("{step}: data_and_meta"),
    );
    check_eq!(
        r,
        both,
        (separate.data.clone(), separate.meta),
        "{step}: data_and_meta vs separate reads"
    );
    snapshot
}

/// The unit's snapshot must equal `want`, and the separate reads.
async fn snapshot_is(
    r: &Run,
    unit: &WorkUnitRef,
    status: WorkUnitStatus,
    data: DataMap,
    meta: WorkUnitMeta,
    step: &str,
) {
    let got = snapshot_matches(r, unit, step).await;
    check_eq!(r, got, WorkUnitSnapshot::new(status, data, meta), "{step}");
}

/// A unit with its own data `{"own": name}` and an attempt of `worker`
/// with a one-hour lease.
async fn attempted(
    r: &Run,
    spec: &WorkSpecRef,
    worker: &WorkerRef,
    name: &str,
) -> (WorkUnitRef, AttemptRef) {
    let unit = r.unit(spec, name, data!({ "own": name })).await;
    let attempt = r.ok(
        worker.make_attempt(&unit, Duration::hours(1)).await,
        format_args!("make_attempt({name})"),
    );
    (unit, attempt)
}

/// **WorkUnitSnapshot.** `snapshot()` answers what `status()`, `data()`
/// and `meta()` answer, in every state a unit reaches: available (with a
/// priority), pending (the attempt's data), finished and failed (the
/// attempt's data), retried with and without a delay (the unit's own data,
/// `not_before` set), an active attempt past its lease (expired by the
/// snapshot's own check, which takes it off its worker's active list, so
/// the unit's own data shows), and deleted (the same error as `status()`).
/// `data_and_meta()` answers what `data()` and `meta()` answer in each of
/// those states, runs no expiry check (past the lease, before the
/// snapshot, it shows the attempt's data and leaves the attempt active),
/// and fails as `data()` does.
pub async fn work_unit_snapshot(t: TestBackend) {
    let (r, ns, spec, worker) = Run::with_basic("work_unit_snapshot", t, "spec").await;
    let own = |name: &str| data!({ "own": name });
    let hour = Duration::hours(1);

    let available = r
        .unit_meta(
            &spec,
            "available",
            own("available"),
            WorkUnitMeta::with_priority(2.5),
        )
        .await;
    let (pending, a) = attempted(&r, &spec, &worker, "pending").await;
    r.ok(
        a.renew(hour, Some(data!({"progress": 1}))).await,
        "renew with data",
    );
    let (finished, a) = attempted(&r, &spec, &worker, "finished").await;
    r.ok(a.finish(Some(data!({"result": "ok"}))).await, "finish");
    let (failed, a) = attempted(&r, &spec, &worker, "failed").await;
    r.ok(a.fail(Some(data!({"error": "boom"}))).await, "fail");
    let (retried, a) = attempted(&r, &spec, &worker, "retried").await;
    r.ok(
        a.retry(Some(data!({"retry": 0})), Duration::zero()).await,
        "retry now",
    );
    let retried_at = r.now();
    let (delayed, a) = attempted(&r, &spec, &worker, "delayed").await;
    r.ok(
        a.retry(Some(data!({"retry": 1})), hour).await,
        "retry with delay",
    );

    snapshot_is(
        &r,
        &available,
        U::Available,
        own("available"),
        WorkUnitMeta::with_priority(2.5),
        "available",
    )
    .await;
    let plain = WorkUnitMeta::default();
    let progress = data!({"progress": 1});
    snapshot_is(&r, &pending, U::Pending, progress, plain, "pending").await;
    let result = data!({"result": "ok"});
    snapshot_is(&r, &finished, U::Finished, result, plain, "finished").await;
    let error = data!({"error": "boom"});
    snapshot_is(&r, &failed, U::Failed, error, plain, "failed").await;
    let now = WorkUnitMeta {
        not_before: Some(retried_at),
        ..plain
    };
    snapshot_is(&r, &retried, U::Available, own("retried"), now, "retried").await;
    let later = WorkUnitMeta {
        not_before: Some(retried_at + hour),
        ..plain
    };
    snapshot_is(&r, &delayed, U::Delayed, own("delayed"), later, "delayed").await;

    // A lease that runs out: in a spec of its own, so no other read's
    // expiry check reaches it before the snapshot's.
    let lapsing_spec = r.named_spec(&ns, "lapsing").await;
    let lapsing = r.unit(&lapsing_spec, "lapsing", own("lapsing")).await;
    let lapsing_worker = r.worker(&ns, "lapsing worker").await;
    let a = r.ok(
        lapsing_worker
            .make_attempt(&lapsing, Duration::seconds(10))
            .await,
        "make_attempt(lapsing)",
    );
    r.ok(
        a.renew(Duration::seconds(10), Some(data!({"partial": true})))
            .await,
        "renew lapsing with data",
    );
    r.advance_secs(20);
    let listed = r.ok(lapsing_worker.active_attempts().await, "active list");
    check_eq!(r, listed.len(), 1, "no expiry check before the snapshot");
    let unchecked = r.ok(
        lapsing.data_and_meta().await,
        "data_and_meta past the lease",
    );
    check_eq!(
        r,
        unchecked,
        (data!({"partial": true}), plain),
        "data_and_meta past the lease: the attempt's data, no expiry"
    );
    let listed = r.ok(lapsing_worker.active_attempts().await, "active list");
    check_eq!(r, listed.len(), 1, "no expiry check by data_and_meta");
    let expired = r.ok(lapsing.snapshot().await, "snapshot past the lease");
    let want = WorkUnitSnapshot::new(U::Available, own("lapsing"), plain);
    check_eq!(r, expired, want, "snapshot past the lease");
    // Before any other read: the snapshot's check expired the attempt.
    r.ok_empty(
        lapsing_worker.active_attempts().await,
        "active list after the snapshot's expiry check",
    );
    snapshot_is(&r, &lapsing, U::Available, own("lapsing"), plain, "expired").await;

    // Deleted: whatever `status` answers.
    r.ok(
        spec.delete_work_units(&WorkUnitQuery::names(["available"]))
            .await,
        "delete available",
    );
    let dead = Dead::unit("spec", "available");
    let snapshot = r.err(available.snapshot().await, "snapshot of a deleted unit");
    let status = r.err(available.status().await, "status of a deleted unit");
    check_eq!(r, snapshot, status, "deleted unit: snapshot's error");
    let both = r.err(
        available.data_and_meta().await,
        "data_and_meta of a deleted unit",
    );
    let data = r.err(available.data().await, "data of a deleted unit");
    check_eq!(r, both, data, "deleted unit: data_and_meta's error");
    r.gone(Err::<(), _>(snapshot), dead, "deleted unit");

    r.unit(&spec, "available", own("again")).await;
    match r.identity() {
        Identity::Object => {
            r.gone(available.snapshot().await, dead, "old handle, recreated");
        }
        Identity::Name => {
            snapshot_is(
                &r,
                &available,
                U::Available,
                own("again"),
                plain,
                "old handle, recreated",
            )
            .await;
        }
    }

    r.ok(ns.destroy_work_spec("spec").await, "destroy spec");
    let snapshot = r.err(pending.snapshot().await, "snapshot in a destroyed spec");
    let status = r.err(pending.status().await, "status in a destroyed spec");
    check_eq!(r, snapshot, status, "destroyed spec: snapshot's error");
    r.gone(
        Err::<(), _>(snapshot),
        Dead::unit("spec", "pending"),
        "destroyed spec",
    );
}

/// The attempt's snapshot, which must equal the five separate reads made
/// right after it (the snapshot's expiry check has run by then).
async fn attempt_snapshot_matches(r: &Run, attempt: &AttemptRef, step: &str) -> AttemptSnapshot {
    let snapshot = r.ok(attempt.snapshot().await, format_args!("{step}: snapshot"));
    let separate = AttemptSnapshot::new(
        r.ok(attempt.status().await, format_args!("{step}: status")),
        r.ok(attempt.data().await, format_args!("{step}: data")),
        r.ok(attempt.start_time().await, format_args!("{step}: start")),
        r.ok(attempt.end_time().await, format_args!("{step}: end")),
        r.ok(
            attempt.expiration_time().await,
            format_args!("{step}: expiration"),
        ),
    );
    check_eq!(r, snapshot, separate, "{step}: snapshot vs separate reads");
    snapshot
}

/// **AttemptSnapshot.** `snapshot()` answers what `status()`, `data()`,
/// `start_time()`, `end_time()` and `expiration_time()` answer: pending
/// (renewed data and lease), finished and failed (ended now), past its
/// lease (expired by the snapshot's own check, which ends it at the check,
/// keeps its expiration time and takes it off its worker's active list),
/// and on a deleted unit (the same error as `status()`).
pub async fn attempt_snapshot(t: TestBackend) {
    let (r, ns, spec, worker) = Run::with_basic("attempt_snapshot", t, "spec").await;
    let hour = Duration::hours(1);
    let start = r.now();
    let (_, pending) = attempted(&r, &spec, &worker, "pending").await;
    r.advance_secs(5);
    let progress = data!({"progress": 1});
    r.ok(pending.renew(hour, Some(progress.clone())).await, "renew");
    let want = AttemptSnapshot::new(A::Pending, progress, start, None, r.now() + hour);
    let got = attempt_snapshot_matches(&r, &pending, "pending").await;
    check_eq!(r, got, want, "pending");

    let (_, finished) = attempted(&r, &spec, &worker, "finished").await;
    let made = r.now();
    r.advance_secs(5);
    let result = data!({"result": "ok"});
    r.ok(finished.finish(Some(result.clone())).await, "finish");
    let want = AttemptSnapshot::new(A::Finished, result, made, Some(r.now()), made + hour);
    let got = attempt_snapshot_matches(&r, &finished, "finished").await;
    check_eq!(r, got, want, "finished");

    let (_, failed) = attempted(&r, &spec, &worker, "failed").await;
    r.ok(failed.fail(None).await, "fail");
    let got = attempt_snapshot_matches(&r, &failed, "failed").await;
    check_eq!(
        r,
        (got.status, got.end_time),
        (A::Failed, Some(r.now())),
        "failed"
    );

    // A lease that runs out, in a spec of its own, so no other read's
    // expiry check reaches it before the snapshot's.
    let lapsing_spec = r.named_spec(&ns, "lapsing").await;
    let lapsing = r.unit(&lapsing_spec, "lapsing", DataMap::new()).await;
    let lapsing_worker = r.worker(&ns, "lapsing worker").await;
    let made = r.now();
    let a = r.ok(
        lapsing_worker
            .make_attempt(&lapsing, Duration::seconds(10))
            .await,
        "make_attempt(lapsing)",
    );
    r.advance_secs(20);
    let got = r.ok(a.snapshot().await, "snapshot past the lease");
    let want = AttemptSnapshot::new(
        A::Expired,
        DataMap::new(),
        made,
        Some(r.now()),
        made + Duration::seconds(10),
    );
    check_eq!(r, got, want, "snapshot past the lease");
    r.ok_empty(
        lapsing_worker.active_attempts().await,
        "active list after the snapshot's expiry check",
    );
    attempt_snapshot_matches(&r, &a, "expired").await;

    r.ok(
        spec.delete_work_units(&WorkUnitQuery::names(["pending"]))
            .await,
        "delete pending",
    );
    let snapshot = r.err(
        pending.snapshot().await,
        "snapshot of a deleted unit's attempt",
    );
    let status = r.err(pending.status().await, "status of a deleted unit's attempt");
    check_eq!(r, snapshot, status, "deleted unit: snapshot's error");
}
