//! Limits and races under concurrency on PostgreSQL: `max_running`,
//! `max_attempts_returned` and continuous generation stay exact when many
//! requests of two job servers run at once (the spec's row is not locked
//! on the common path), a `max_running` set while a request is taking
//! units counts them, and `add_work_unit` racing with `finish` on one unit
//! ends as one of the two orders would, in every interleaving, as does a
//! `finish` chaining into a spec whose destroy is in flight (one with no
//! units to chain does not wait for that destroy). A request whose
//! chosen spec concurrent requests emptied gets another spec's work (one
//! that only failed units on their retry limit answers nothing), and a
//! namespace destroy unlinks a unit elsewhere its worker took meanwhile, and
//! waits for a hand-out by its worker without a deadlock. A read that finds
//! an attempt past its deadline answers a finish that committed before its
//! expiry could. A continuous unit generated while the spec's interval
//! changed sets the next time by the new interval, and a finish chains no
//! output a renew took away between its two calls, and locks the units it
//! chains in the order a bulk add does. A pending attempt that loses its
//! unit's link (to a clear, a newer attempt or a continuous unit of its
//! name) while the call taking it waited for the unit is stored detached.
//! Two expiry checks of one spec, and a hand-out under a `max_running` that
//! expires leases beside another hand-out of its spec, end without a
//! deadlock.
#![cfg(feature = "testing")]

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration as StdDuration, Instant};

use coordinate::postgres::PostgresBackend;
use coordinate::{
    data, AttemptRef, AttemptRequest, AttemptStatus, Backend, BackendExt, Clock, MockClock,
    NamespaceRef, WorkSpecRef, WorkUnitMeta, WorkUnitQuery, WorkUnitRef, WorkUnitStatus,
};
use tokio::sync::Barrier;
use tokio::task::JoinHandle;

mod common {
    pub mod postgres;
    pub mod scheduling;
}

use common::postgres::{lock_waiters, Database};
use common::scheduling::{request, unit_names};

/// Two backends (two pools, like two job-server processes) on one fresh
/// database, sharing a clock; and the database.
async fn two_servers() -> (Vec<PostgresBackend>, Database, MockClock) {
    let db = Database::fresh().await;
    let clock = MockClock::new();
    let servers = vec![db.server(&clock, None).await, db.server(&clock, None).await];
    (servers, db, clock)
}

async fn spec_with_units(
    ns: &NamespaceRef,
    definition: coordinate::DataMap,
    units: usize,
) -> WorkSpecRef {
    let spec = ns.set_work_spec(definition).await.unwrap();
    for i in 0..units {
        spec.add_work_unit(&format!("u{i:04}"), data!({}), WorkUnitMeta::default())
            .await
            .unwrap();
    }
    spec
}

/// `requests` requests of `per_request` units each, released at once by a
/// barrier, alternately on the two servers; answers each one's attempts.
async fn requests_at_once(
    servers: &[PostgresBackend],
    requests: usize,
    per_request: i64,
) -> Vec<Vec<AttemptRef>> {
    let barrier = Arc::new(Barrier::new(requests));
    let tasks: Vec<_> = (0..requests)
        .map(|i| {
            let backend = servers[i % servers.len()].clone();
            let barrier = barrier.clone();
            tokio::spawn(async move {
                let worker = backend.worker_at("n", &format!("w{i}")).await.unwrap();
                barrier.wait().await;
                request(&worker, AttemptRequest::units(per_request)).await
            })
        })
        .collect();
    let mut answers = Vec::new();
    for task in tasks {
        answers.push(task.await.unwrap());
    }
    answers
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn max_running_is_never_exceeded_by_concurrent_requests() {
    let (servers, _db, _clock) = two_servers().await;
    let ns = servers[0].namespace("n").await.unwrap();
    spec_with_units(&ns, data!({"name": "s", "max_running": 5}), 400).await;
    for round in 0..15 {
        // Nothing runs: 16 requests for 3 units each must share exactly 5.
        let answers = requests_at_once(&servers, 16, 3).await;
        let granted: usize = answers.iter().map(Vec::len).sum();
        assert_eq!(granted, 5, "round {round}: {granted} attempts running");
        // One more request while they run gets nothing.
        assert!(requests_at_once(&servers, 1, 3).await[0].is_empty());
        for attempt in answers.into_iter().flatten() {
            attempt.finish(None).await.unwrap();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn max_attempts_returned_caps_every_concurrent_request() {
    let (servers, _db, _clock) = two_servers().await;
    let ns = servers[0].namespace("n").await.unwrap();
    spec_with_units(&ns, data!({"name": "s", "max_getwork": 2}), 30).await;
    let answers = requests_at_once(&servers, 12, 10).await;
    assert!(
        answers.iter().all(|a| a.len() <= 2),
        "a request got more than 2"
    );
    let mut names: Vec<String> = answers.iter().flat_map(|a| unit_names(a)).collect();
    let total = names.len();
    names.sort();
    names.dedup();
    assert_eq!(names.len(), total, "a unit was handed out twice");
    // 12 requests of at most 2 from 30 units: all 24 are handed out,
    // since units are taken with SKIP LOCKED and no request waits for another.
    assert_eq!(total, 24);
}

/// How a spec's `max_running` is changed while a hand-out is in progress.
#[derive(Debug, Clone, Copy)]
enum LimitChange {
    /// `set_work_spec` of the namespace.
    Definition,
    /// `set_data` of the spec.
    Data,
    /// `set_meta` of the spec.
    Meta,
}

/// A hand-out from a spec without `max_running` takes five units and waits
/// on the worker's row before it commits; meanwhile another server sets
/// `max_running` to 2 and then asks for work. The change waits for the
/// hand-out, and the request after it counts its five units: it gets none,
/// as if the three ran one after the other.
async fn limit_set_during_a_hand_out(change: LimitChange) {
    let (servers, db, _clock) = two_servers().await;
    let ns = servers[0].namespace("n").await.unwrap();
    let spec = spec_with_units(&ns, data!({"name": "s"}), 10).await;
    let first_worker = ns.worker("w1").await.unwrap();
    let second_worker = servers[1].worker_at("n", "w2").await.unwrap();
    let other_ns = servers[1].namespace("n").await.unwrap();
    let other_spec = other_ns.work_spec("s").await.unwrap();

    let admin = db.sql().await;
    let holder = held(&db, "SELECT 1 FROM worker WHERE name = 'w1' FOR UPDATE").await;
    let first = tokio::spawn(async move { request(&first_worker, AttemptRequest::units(5)).await });
    wait_for_waiters(&admin, 1).await;
    let limit = tokio::spawn(async move {
        match change {
            LimitChange::Definition => other_ns
                .set_work_spec(data!({"name": "s", "max_running": 2}))
                .await
                .map(drop),
            LimitChange::Data => {
                other_spec
                    .set_data(data!({"name": "s", "max_running": 2}))
                    .await
            }
            LimitChange::Meta => {
                let mut meta = other_spec.meta(false).await?;
                meta.max_running = 2;
                other_spec.set_meta(meta).await
            }
        }
    });
    queued_or_done(&admin, 2, &limit).await;
    let second =
        tokio::spawn(async move { request(&second_worker, AttemptRequest::units(5)).await });
    queued_or_done(&admin, 3, &second).await;
    holder.batch_execute("COMMIT").await.unwrap();

    assert_eq!(first.await.unwrap().len(), 5, "{change:?}");
    limit.await.unwrap().unwrap();
    assert_eq!(second.await.unwrap().len(), 0, "{change:?}: second request");
    let counts = spec.count_work_unit_status().await.unwrap();
    assert_eq!(
        counts.get(&WorkUnitStatus::Pending),
        Some(&5),
        "{change:?}: {counts:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_limit_defined_during_a_hand_out_counts_its_units() {
    limit_set_during_a_hand_out(LimitChange::Definition).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_limit_set_in_the_data_during_a_hand_out_counts_its_units() {
    limit_set_during_a_hand_out(LimitChange::Data).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_limit_set_in_the_meta_during_a_hand_out_counts_its_units() {
    limit_set_during_a_hand_out(LimitChange::Meta).await;
}

/// Namespace "n" of `backend` and its continuous spec "c" of `interval`
/// seconds.
async fn continuous_spec(backend: &PostgresBackend, interval: i64) -> (NamespaceRef, WorkSpecRef) {
    let ns = backend.namespace("n").await.unwrap();
    let spec = ns
        .set_work_spec(data!({"name": "c", "continuous": true, "interval": interval}))
        .await
        .unwrap();
    (ns, spec)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_continuous_unit_per_interval_under_concurrent_requests() {
    let (servers, _db, clock) = two_servers().await;
    let (_, spec) = continuous_spec(&servers[0], 60).await;
    for interval in 0..5 {
        let answers = requests_at_once(&servers, 10, 1).await;
        let granted: Vec<&AttemptRef> = answers.iter().flatten().collect();
        assert_eq!(
            granted.len(),
            1,
            "interval {interval}: {} units",
            granted.len()
        );
        granted[0].finish(None).await.unwrap();
        // Within the interval nothing more is generated.
        assert!(requests_at_once(&servers, 4, 1)
            .await
            .iter()
            .all(Vec::is_empty));
        clock.advance(coordinate::Duration::seconds(61));
    }
    let units = spec
        .work_units(&coordinate::WorkUnitQuery::all())
        .await
        .unwrap();
    assert_eq!(units.len(), 5);
}

/// A continuous unit generated while a new interval was being stored
/// (after the request read the old one) sets the next unit's time by the
/// interval the spec has once it generates, as if the change came first.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_next_continuous_time_follows_an_interval_changed_during_the_request() {
    let (servers, db, clock) = two_servers().await;
    let (ns, spec) = continuous_spec(&servers[0], 86_400).await;
    let worker = ns.worker("w").await.unwrap();

    let admin = db.sql().await;
    let change = held(
        &db,
        "UPDATE work_spec SET interval_us = 60000000 WHERE name = 'c'::bytea",
    )
    .await;
    let granted = tokio::spawn(async move { request(&worker, AttemptRequest::units(1)).await });
    wait_for_waiters(&admin, 1).await;
    change.batch_execute("COMMIT").await.unwrap();

    assert_eq!(granted.await.unwrap().len(), 1);
    let meta = spec.meta(false).await.unwrap();
    assert_eq!(meta.interval, coordinate::Duration::seconds(60));
    assert_eq!(
        meta.next_continuous,
        Some(clock.now() + coordinate::Duration::seconds(60))
    );
}

async fn wait_for_waiters(admin: &tokio_postgres::Client, n: i64) {
    queued_unless(admin, n, || false).await;
}

/// Waits until `n` sessions queue on a lock or `task` has ended, whichever
/// comes first: a call that is to queue on a lock, but may also pass it.
async fn queued_or_done<T>(admin: &tokio_postgres::Client, n: i64, task: &JoinHandle<T>) {
    queued_unless(admin, n, || task.is_finished()).await;
}

/// Waits until `n` sessions queue on a lock, or `done`.
async fn queued_unless(admin: &tokio_postgres::Client, n: i64, done: impl Fn() -> bool) {
    let started = Instant::now();
    while !done() && lock_waiters(admin).await < n {
        assert!(
            started.elapsed() < StdDuration::from_secs(10),
            "{n} sessions never queued on the lock"
        );
        tokio::time::sleep(StdDuration::from_millis(5)).await;
    }
}

/// A plain SQL session of `db` in a transaction that has run `sql` and
/// holds what it locked until the test sends `COMMIT` or `ROLLBACK`.
async fn held(db: &Database, sql: &str) -> tokio_postgres::Client {
    let session = db.sql().await;
    session
        .batch_execute(&format!("BEGIN; {sql}"))
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    session
}

/// `finish` or `add_work_unit`, as a task to spawn.
type Call = Pin<Box<dyn Future<Output = coordinate::Result<()>> + Send>>;

/// Which of `finish` and `add_work_unit` reaches the unit first.
#[derive(Debug, Clone, Copy)]
enum First {
    Finish,
    Add,
}

/// Spec "s" of namespace "n" with unit "u" (data `{"v": "old"}`), and an
/// attempt of worker "w" on it.
async fn pending_unit(backend: &PostgresBackend) -> (WorkSpecRef, WorkUnitRef, AttemptRef) {
    let ns = backend.namespace("n").await.unwrap();
    let spec = spec_with_units(&ns, data!({"name": "s"}), 0).await;
    let unit = spec
        .add_work_unit("u", data!({"v": "old"}), WorkUnitMeta::default())
        .await
        .unwrap();
    (spec, unit, first_attempt(&ns).await)
}

/// Queues `finish` and `add_work_unit` of one pending unit behind a lock
/// held on the unit's row, in the order `first` says, releases the lock,
/// and answers the unit's status, the attempt's status and the unit's
/// visible data once both are done.
async fn race(first: First) -> (WorkUnitStatus, AttemptStatus, coordinate::DataMap) {
    let (servers, db, _clock) = two_servers().await;
    let (_, unit, attempt) = pending_unit(&servers[0]).await;

    let admin = db.sql().await;
    let mut blocker = db.sql().await;
    let hold = blocker.transaction().await.unwrap();
    hold.execute(
        "SELECT 1 FROM work_unit WHERE name = 'u'::bytea FOR NO KEY UPDATE",
        &[],
    )
    .await
    .unwrap();

    let finish: Call = {
        let attempt = attempt.clone();
        Box::pin(async move { attempt.finish(Some(data!({"v": "finished"}))).await })
    };
    let add: Call = {
        let other = servers[1].namespace("n").await.unwrap();
        let spec = other.work_spec("s").await.unwrap();
        Box::pin(async move {
            spec.add_work_unit("u", data!({"v": "added"}), WorkUnitMeta::default())
                .await
                .map(drop)
        })
    };
    let (early, late) = match first {
        First::Finish => (finish, add),
        First::Add => (add, finish),
    };
    // Each one queues on the lock before the next one starts.
    let early = tokio::spawn(early);
    wait_for_waiters(&admin, 1).await;
    let late = tokio::spawn(late);
    wait_for_waiters(&admin, 2).await;
    hold.commit().await.unwrap();
    early.await.unwrap().unwrap();
    late.await.unwrap().unwrap();
    (
        unit.status().await.unwrap(),
        attempt.status().await.unwrap(),
        unit.data().await.unwrap(),
    )
}

/// Asserts that after [`race`] the attempt is finished and the unit has
/// status `unit` and data `{"v": v}`.
async fn assert_race_ends(first: First, unit: WorkUnitStatus, v: &str) {
    let (unit_status, attempt_status, unit_data) = race(first).await;
    assert_eq!(attempt_status, AttemptStatus::Finished);
    assert_eq!(unit_status, unit);
    assert_eq!(unit_data, data!({ "v": v }));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn add_after_a_racing_finish_makes_the_unit_run_again() {
    // finish, then add: the add finds the unit Finished and clears the link.
    assert_race_ends(First::Finish, WorkUnitStatus::Available, "added").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn finish_after_a_racing_add_leaves_the_unit_finished() {
    // add, then finish: the add keeps the pending attempt, which finishes.
    assert_race_ends(First::Add, WorkUnitStatus::Finished, "finished").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn add_and_finish_in_sequence_match_the_reference() {
    for add_first in [false, true] {
        let (servers, _db, _clock) = two_servers().await;
        let ns = servers[0].namespace("n").await.unwrap();
        let spec = spec_with_units(&ns, data!({"name": "s"}), 1).await;
        let worker = ns.worker("w").await.unwrap();
        let attempt = request(&worker, AttemptRequest::units(1))
            .await
            .pop()
            .unwrap();
        let readd = || spec.add_work_unit("u0000", data!({"v": 2}), WorkUnitMeta::default());
        let unit = if add_first {
            let unit = readd().await.unwrap();
            attempt.finish(None).await.unwrap();
            unit
        } else {
            attempt.finish(None).await.unwrap();
            readd().await.unwrap()
        };
        let expected = if add_first {
            WorkUnitStatus::Finished
        } else {
            WorkUnitStatus::Available
        };
        assert_eq!(
            unit.status().await.unwrap(),
            expected,
            "add first: {add_first}"
        );
    }
}

/// A delete by status that waited for a unit's row judges the unit as the
/// change it waited for left it: a unit re-added meanwhile (Finished, then
/// Available with new data) is not deleted as Finished, as it is not in
/// either order of the two calls.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_delete_by_status_spares_a_unit_whose_status_changed_while_it_waited() {
    let (servers, db, _clock) = two_servers().await;
    let (spec, unit, attempt) = pending_unit(&servers[0]).await;
    attempt.finish(None).await.unwrap();

    // The re-add, as `add_work_unit` makes it, held uncommitted.
    let admin = db.sql().await;
    let mut other = db.sql().await;
    let readd = other.transaction().await.unwrap();
    readd
        .execute(
            "SELECT coordinate_upsert_unit(
                 (SELECT id FROM work_spec WHERE name = 's'::bytea), 'u'::bytea,
                 '{\"v\": \"added\"}'::jsonb, 0, NULL)",
            &[],
        )
        .await
        .unwrap();
    let delete = tokio::spawn({
        let spec = spec.clone();
        async move {
            let finished = WorkUnitQuery::statuses([WorkUnitStatus::Finished]);
            spec.delete_work_units(&finished).await
        }
    });
    wait_for_waiters(&admin, 1).await;
    readd.commit().await.unwrap();
    assert_eq!(delete.await.unwrap().unwrap(), 0);
    assert_eq!(unit.status().await.unwrap(), WorkUnitStatus::Available);
    assert_eq!(unit.data().await.unwrap(), data!({"v": "added"}));
}

/// Spec "s" of namespace "n", whose units chain into spec "t", with one
/// unit; "t"; and an attempt of worker "w" on the unit.
async fn chaining_attempt(backend: &PostgresBackend) -> (WorkSpecRef, WorkSpecRef, AttemptRef) {
    let ns = backend.namespace("n").await.unwrap();
    let next = spec_with_units(&ns, data!({"name": "t"}), 0).await;
    let spec = spec_with_units(&ns, data!({"name": "s", "then": "t"}), 1).await;
    (spec, next, first_attempt(&ns).await)
}

/// The attempt worker "w" of `ns` gets when it requests one unit.
async fn first_attempt(ns: &NamespaceRef) -> AttemptRef {
    let worker = ns.worker("w").await.unwrap();
    request(&worker, AttemptRequest::units(1))
        .await
        .pop()
        .unwrap()
}

/// A finish without data is two calls when its spec chains: the first
/// answers the stored data, whose `output` the caller parses, the second
/// finishes with the parsed units. When a renew replaced the data in
/// between, the second call answers the new data to parse rather than
/// chain units the attempt no longer has, even when the new data has no
/// `output` at all.
#[tokio::test]
async fn a_finish_chains_no_output_a_renew_took_away_between_its_calls() {
    let (servers, db, _clock) = two_servers().await;
    let (_, next, attempt) = chaining_attempt(&servers[0]).await;
    attempt
        .renew(coordinate::Duration::minutes(1), Some(data!({})))
        .await
        .unwrap();

    // The second call of a finish whose first call read
    // `{"output": ["child"]}`, before the renew.
    let second_call = "SELECT outcome FROM coordinate_finish((SELECT id FROM attempt), now(),
        NULL, '{\"output\": [\"child\"]}', ARRAY['child'::bytea], ARRAY['{}'::jsonb],
        ARRAY[0.0::float8], ARRAY[NULL::timestamptz])";
    let outcome: i16 = db
        .sql()
        .await
        .query_one(second_call, &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(outcome, 4, "the changed data is answered to parse again");
    let all = WorkUnitQuery::default();
    assert!(next.work_units(&all).await.unwrap().is_empty());

    attempt.finish(None).await.unwrap();
    assert_eq!(attempt.status().await.unwrap(), AttemptStatus::Finished);
    assert!(next.work_units(&all).await.unwrap().is_empty());
}

#[tokio::test]
async fn a_finish_chaining_into_a_spec_being_destroyed_still_finishes() {
    let (servers, db, _clock) = two_servers().await;
    let (spec, next, attempt) = chaining_attempt(&servers[0]).await;

    // The destroy of "t", as `destroy_work_spec` makes it, held uncommitted.
    let admin = db.sql().await;
    let destroy = held(&db, "DELETE FROM work_spec WHERE name = 't'::bytea").await;
    let finish = tokio::spawn({
        let attempt = attempt.clone();
        async move { attempt.finish(Some(data!({"output": ["child"]}))).await }
    });
    wait_for_waiters(&admin, 1).await;
    destroy.batch_execute("COMMIT").await.unwrap();

    // Ordered after the destroy, the finish has no spec to chain into.
    finish.await.unwrap().unwrap();
    assert_eq!(attempt.status().await.unwrap(), AttemptStatus::Finished);
    let unit = spec.work_unit("u0000").await.unwrap();
    assert_eq!(unit.status().await.unwrap(), WorkUnitStatus::Finished);
    assert!(matches!(
        next.data().await,
        Err(coordinate::Error::Gone { .. })
    ));
}

#[tokio::test]
async fn a_request_whose_chosen_spec_was_emptied_meanwhile_gets_another_specs_work() {
    request_while_the_chosen_spec_is_emptied(data!({"name": "a", "priority": 1})).await;
}

/// With a retry limit, an empty hand-out could also mean every unit taken
/// was over it; here none was taken, so the scheduler still chooses again.
#[tokio::test]
async fn a_request_whose_chosen_spec_with_a_retry_limit_was_emptied_gets_another_specs_work() {
    request_while_the_chosen_spec_is_emptied(data!({"name": "a", "priority": 1, "max_retries": 2}))
        .await;
}

/// A request that takes only units over their retry limit answers nothing,
/// as the reference does, though another spec has work.
#[tokio::test]
async fn a_request_that_fails_every_unit_it_takes_on_its_retry_limit_answers_nothing() {
    let (servers, _db, _clock) = two_servers().await;
    let ns = servers[0].namespace("n").await.unwrap();
    let spec = spec_with_units(
        &ns,
        data!({"name": "a", "priority": 1, "max_retries": 1}),
        1,
    )
    .await;
    spec_with_units(&ns, data!({"name": "b"}), 1).await;
    let worker = ns.worker("w").await.unwrap();
    let first = request(&worker, AttemptRequest::units(1)).await;
    assert_eq!(first[0].work_unit().work_spec().name(), "a");
    first[0]
        .retry(None, coordinate::Duration::zero())
        .await
        .unwrap();

    assert!(request(&worker, AttemptRequest::units(1)).await.is_empty());
    let unit = spec.work_unit("u0000").await.unwrap();
    assert_eq!(unit.status().await.unwrap(), WorkUnitStatus::Failed);
}

/// A request of one unit of worker "w", made while a concurrent request,
/// uncommitted, holds the only unit of spec "a" (`definition`, which
/// outranks "b"), gets "b"'s unit.
async fn request_while_the_chosen_spec_is_emptied(definition: coordinate::DataMap) {
    let (servers, db, _clock) = two_servers().await;
    let ns = servers[0].namespace("n").await.unwrap();
    spec_with_units(&ns, definition, 1).await;
    spec_with_units(&ns, data!({"name": "b"}), 1).await;
    let worker = ns.worker("w").await.unwrap();

    let mut other = db.sql().await;
    let taker = other.transaction().await.unwrap();
    taker
        .execute(
            "SELECT 1 FROM work_unit u JOIN work_spec s ON s.id = u.work_spec_id
             WHERE s.name = 'a'::bytea FOR UPDATE OF u",
            &[],
        )
        .await
        .unwrap();
    let got = request(&worker, AttemptRequest::units(1)).await;
    taker.rollback().await.unwrap();

    assert_eq!(got.len(), 1);
    assert_eq!(got[0].work_unit().work_spec().name(), "b");
}

#[tokio::test]
async fn a_namespace_destroy_unlinks_a_unit_its_worker_took_while_it_waited() {
    let (servers, db, _clock) = two_servers().await;
    let (spec, unit, _) = pending_unit(&servers[0]).await;
    unit.clear_active_attempt().await.unwrap();
    let doomed = servers[1].namespace("doomed").await.unwrap();
    doomed.worker("leaving").await.unwrap();

    // The doomed namespace's worker takes the unit of "n", as `make_attempt`
    // does, held uncommitted.
    let admin = db.sql().await;
    let mut other = db.sql().await;
    let make = other.transaction().await.unwrap();
    make.execute(
        "WITH created AS (
             INSERT INTO attempt (work_unit_id, work_spec_id, worker_id, status, data,
                 start_time, expiration_time, on_active_list)
             SELECT u.id, u.work_spec_id, w.id, 0, u.data, now(), now(), true
             FROM work_unit u, worker w
             WHERE u.name = 'u'::bytea AND w.name = 'leaving'::bytea
             RETURNING id, work_unit_id)
         UPDATE work_unit u SET active_attempt_id = c.id, state = 1 FROM created c
         WHERE u.id = c.work_unit_id",
        &[],
    )
    .await
    .unwrap();
    let destroy = tokio::spawn(async move { doomed.destroy().await });
    wait_for_waiters(&admin, 1).await;
    make.commit().await.unwrap();
    destroy.await.unwrap().unwrap();

    assert_eq!(unit.status().await.unwrap(), WorkUnitStatus::Available);
    let counts = spec.count_work_unit_status().await.unwrap();
    assert_eq!(counts, [(WorkUnitStatus::Available, 1)].into());
}

#[tokio::test]
async fn a_request_waits_for_a_concurrent_check_making_units_ready_and_takes_them() {
    let (servers, db, clock) = two_servers().await;
    let ns = servers[0].namespace("n").await.unwrap();
    let spec = spec_with_units(&ns, data!({"name": "s"}), 0).await;
    let later = WorkUnitMeta {
        priority: 1.0,
        not_before: Some(clock.now() + coordinate::Duration::minutes(1)),
    };
    for name in ["a", "b"] {
        spec.add_work_unit(name, data!({}), later).await.unwrap();
    }
    spec.add_work_unit("c", data!({}), WorkUnitMeta::default())
        .await
        .unwrap();
    let worker = ns.worker("w").await.unwrap();
    clock.advance(coordinate::Duration::minutes(2));

    // Another job server's expiry check, making "a" and "b" ready, held
    // uncommitted.
    let admin = db.sql().await;
    let mut other = db.sql().await;
    let check = other.transaction().await.unwrap();
    check
        .execute(
            "SELECT coordinate_expire(NULL, (SELECT id FROM work_spec WHERE name = 's'::bytea), $1)",
            &[&clock.now()],
        )
        .await
        .unwrap();
    let requested = tokio::spawn(async move { request(&worker, AttemptRequest::units(1)).await });
    wait_for_waiters(&admin, 1).await;
    check.commit().await.unwrap();

    let got = requested.await.unwrap();
    let names: Vec<String> = got
        .iter()
        .map(|a| a.work_unit().name().to_string())
        .collect();
    assert_eq!(names, ["a"], "the first unit in execution order");
}

#[tokio::test]
async fn a_finish_without_units_to_chain_does_not_wait_for_a_destroy_of_the_next_spec() {
    let (servers, db, _clock) = two_servers().await;
    let (_, _, attempt) = chaining_attempt(&servers[0]).await;

    let destroy = held(&db, "DELETE FROM work_spec WHERE name = 't'::bytea").await;
    let finish = tokio::time::timeout(StdDuration::from_secs(10), attempt.finish(None));
    let finished = finish.await;
    destroy.batch_execute("ROLLBACK").await.unwrap();
    finished
        .expect("the finish waited for the destroy")
        .unwrap();
    assert_eq!(attempt.status().await.unwrap(), AttemptStatus::Finished);
}

#[tokio::test]
async fn a_namespace_destroy_waits_for_a_hand_out_by_its_worker_without_deadlock() {
    let (servers, db, _clock) = two_servers().await;
    let (_spec, _unit, attempt) = pending_unit(&servers[0]).await;
    attempt.expire(None).await.unwrap();
    let ns = servers[1].namespace("n").await.unwrap();

    // A hand-out by worker "w", as `request_attempts` makes it: the unit
    // taken, its attempt not yet made.
    let admin = db.sql().await;
    let mut other = db.sql().await;
    let hand_out = other.transaction().await.unwrap();
    // Were there a deadlock, this session would detect it, and fail.
    hand_out
        .batch_execute(
            "SET LOCAL deadlock_timeout = '10ms';
             SELECT 1 FROM work_unit WHERE name = 'u'::bytea FOR UPDATE",
        )
        .await
        .unwrap();
    let destroy = tokio::spawn(async move { ns.destroy().await });
    wait_for_waiters(&admin, 1).await;
    hand_out
        .execute(
            "INSERT INTO attempt (work_unit_id, work_spec_id, worker_id, status, data,
                 start_time, expiration_time, on_active_list)
             SELECT u.id, u.work_spec_id, w.id, 0, u.data, now(), now(), true
             FROM work_unit u, worker w WHERE u.name = 'u'::bytea AND w.name = 'w'::bytea",
            &[],
        )
        .await
        .expect("the hand-out is not a deadlock victim");
    hand_out.commit().await.unwrap();
    destroy.await.unwrap().unwrap();
    assert!(servers[0].namespaces().await.unwrap().is_empty());
}

/// What one read on a job server whose clock is past a pending attempt's
/// deadline answers, and the attempt's status once everything is done,
/// when a finish from a server whose clock has not reached the deadline
/// commits between that read and the expiry the read makes durable: the
/// finish queues on a lock held on the unit's row, the read finds the
/// attempt due and queues its expiry behind the finish, and the lock goes.
async fn read_racing_a_finish_before_the_deadline<T, F, Fut>(read: F) -> (T, AttemptStatus)
where
    F: FnOnce(WorkSpecRef, WorkUnitRef, AttemptRef) -> Fut,
    Fut: Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    let db = Database::fresh().await;
    let (behind, ahead) = (MockClock::new(), MockClock::new());
    let (slow, fast) = (
        db.server(&behind, None).await,
        db.server(&ahead, None).await,
    );
    let (_, _, attempt) = pending_unit(&slow).await;
    ahead.advance(coordinate::Duration::days(1));
    let spec = fast.namespace("n").await.unwrap().work_spec("s").await;
    let spec = spec.unwrap();
    let unit = spec.work_unit("u").await.unwrap();
    let seen = unit.attempts().await.unwrap().pop().unwrap();

    let admin = db.sql().await;
    let blocker = held(
        &db,
        "SELECT 1 FROM work_unit WHERE name = 'u'::bytea FOR SHARE",
    )
    .await;
    let finish = tokio::spawn({
        let attempt = attempt.clone();
        async move { attempt.finish(None).await }
    });
    wait_for_waiters(&admin, 1).await;
    let read = tokio::spawn(read(spec, unit, seen));
    wait_for_waiters(&admin, 2).await;
    blocker.batch_execute("COMMIT").await.unwrap();
    finish.await.unwrap().unwrap();
    (read.await.unwrap(), attempt.status().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_attempt_read_as_due_answers_the_finish_that_beat_its_expiry() {
    let (seen, last) =
        read_racing_a_finish_before_the_deadline(|_, _, a| async move { a.status().await }).await;
    assert_eq!(last, AttemptStatus::Finished);
    assert_eq!(seen.unwrap(), AttemptStatus::Finished);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_unit_read_as_due_answers_the_finish_that_beat_its_expiry() {
    let (seen, _) =
        read_racing_a_finish_before_the_deadline(|_, u, _| async move { u.status().await }).await;
    assert_eq!(seen.unwrap(), WorkUnitStatus::Finished);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn counts_read_as_due_answer_the_finish_that_beat_the_expiry() {
    let (seen, _) = read_racing_a_finish_before_the_deadline(|s, _, _| async move {
        s.count_work_unit_status().await
    })
    .await;
    let finished = [(WorkUnitStatus::Finished, 1)].into_iter().collect();
    assert_eq!(seen.unwrap(), finished);
}

/// A one-statement change chosen as a deadlock's victim runs again:
/// clearing a waiting unit's not-before time locks the unit, then its
/// spec's counter, and a session holding the counters that then asks for
/// the unit makes a cycle, which PostgreSQL breaks by failing the change.
#[tokio::test]
async fn a_unit_change_chosen_as_a_deadlock_victim_is_run_again() {
    // The change looks for a deadlock once, this long after it began to
    // wait: by then the cycle below is closed, however slow the machine.
    let db = finding_deadlocks_after("3s").await;
    let clock = MockClock::new();
    let server = db.server(&clock, None).await;
    let ns = server.namespace("n").await.unwrap();
    let spec = spec_with_units(&ns, data!({"name": "s"}), 0).await;
    let later = WorkUnitMeta {
        priority: 0.0,
        not_before: Some(clock.now() + coordinate::Duration::hours(1)),
    };
    let unit = spec.add_work_unit("u", data!({}), later).await.unwrap();

    let admin = db.sql().await;
    // Every counter stripe of the spec, made or locked, by a session that
    // waits long before it looks for a deadlock: the change is the victim.
    let counters = held(
        &db,
        "SET LOCAL deadlock_timeout = '20s';
         INSERT INTO work_unit_count AS c
             (work_spec_id, stripe, idle, pending, finished, failed, waiting)
         SELECT s.id, g, 0, 0, 0, 0, 0
         FROM work_spec s, generate_series(0, 15) g WHERE s.name = 's'::bytea
         ON CONFLICT (work_spec_id, stripe) DO UPDATE SET idle = c.idle",
    )
    .await;
    let change = tokio::spawn({
        let unit = unit.clone();
        async move { unit.set_meta(WorkUnitMeta::default()).await }
    });
    wait_for_waiters(&admin, 1).await;
    counters
        .batch_execute("SELECT 1 FROM work_unit WHERE name = 'u'::bytea FOR UPDATE")
        .await
        .expect("the change, not this session, is the victim");
    counters.batch_execute("ROLLBACK").await.unwrap();
    change.await.unwrap().expect("the change ran again");
    assert_eq!(unit.meta().await.unwrap(), WorkUnitMeta::default());
    assert_eq!(unit.status().await.unwrap(), WorkUnitStatus::Available);
}

/// A spec destroy whose delete waits for a unit held by another writer
/// (here, a session that locked unit "u0000"); answers the destroy's task.
async fn destroy_waiting_for_a_held_unit(
    servers: &[PostgresBackend],
    db: &Database,
) -> (
    tokio_postgres::Client,
    tokio::task::JoinHandle<coordinate::Result<()>>,
) {
    let ns = servers[0].namespace("n").await.unwrap();
    spec_with_units(&ns, data!({"name": "s"}), 2).await;
    let holder = held(
        db,
        "SELECT 1 FROM work_unit WHERE name = 'u0000'::bytea FOR UPDATE",
    )
    .await;
    let destroy = tokio::spawn(async move { ns.destroy_work_spec("s").await });
    wait_for_waiters(&db.sql().await, 1).await;
    (holder, destroy)
}

/// A writer that took a unit of a spec being destroyed and then adds to
/// the spec's counters (as every unit change does, after its units) is not
/// a deadlock's victim: the destroy takes the counters after the units.
#[tokio::test]
async fn a_unit_change_finishes_before_a_destroy_of_its_spec_without_deadlock() {
    let (servers, db, _clock) = two_servers().await;
    let (holder, destroy) = destroy_waiting_for_a_held_unit(&servers, &db).await;
    // Were there a deadlock, this session would detect it, and fail.
    holder
        .batch_execute(
            "SET LOCAL deadlock_timeout = '10ms';
             INSERT INTO work_unit_count AS c
                 (work_spec_id, stripe, idle, pending, finished, failed, waiting)
             SELECT id, 0, 0, 0, 0, 0, 0 FROM work_spec WHERE name = 's'::bytea
             ON CONFLICT (work_spec_id, stripe) DO UPDATE SET idle = c.idle",
        )
        .await
        .expect("the unit's writer is not a deadlock victim");
    holder.batch_execute("COMMIT").await.unwrap();
    destroy.await.unwrap().unwrap();
    let left = db.sql().await;
    let counters = left
        .query_one("SELECT count(*) FROM work_unit_count", &[])
        .await
        .unwrap();
    assert_eq!(counters.get::<_, i64>(0), 0, "a destroyed spec's counters");
}

/// A unit added to a spec being destroyed waits for the destroy and then
/// fails as an add to a spec that does not exist, not as a deadlock: it
/// checks its spec before it adds to the counters.
#[tokio::test]
async fn a_unit_add_racing_a_destroy_of_its_spec_fails_without_deadlock() {
    let (servers, db, _clock) = two_servers().await;
    let ns = servers[0].namespace("n").await.unwrap();
    spec_with_units(&ns, data!({"name": "s"}), 0).await;
    // A counter row for every stripe, so the add's is one the destroy
    // deletes.
    db.sql()
        .await
        .batch_execute(
            "INSERT INTO work_unit_count
                 (work_spec_id, stripe, idle, pending, finished, failed, waiting)
             SELECT id, g, 0, 0, 0, 0, 0 FROM work_spec, generate_series(0, 15) g
             ON CONFLICT DO NOTHING",
        )
        .await
        .unwrap();
    let (holder, destroy) = destroy_waiting_for_a_held_unit(&servers, &db).await;
    let adder = db.sql().await;
    let add = tokio::spawn(async move {
        adder
            .batch_execute(
                "BEGIN; SET LOCAL deadlock_timeout = '10ms';
                 INSERT INTO work_unit (work_spec_id, name, data, priority)
                 SELECT id, 'new'::bytea, '{}', 0 FROM work_spec WHERE name = 's'::bytea;
                 COMMIT",
            )
            .await
    });
    wait_for_waiters(&db.sql().await, 2).await;
    holder.batch_execute("ROLLBACK").await.unwrap();
    destroy.await.unwrap().unwrap();
    let refused = add.await.unwrap().expect_err("an add to a destroyed spec");
    assert_eq!(
        refused.code(),
        Some(&tokio_postgres::error::SqlState::FOREIGN_KEY_VIOLATION),
        "{refused}"
    );
}

/// Deadlocks this database has seen.
async fn deadlocks(admin: &tokio_postgres::Client) -> i64 {
    admin
        .query_one(
            "SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()",
            &[],
        )
        .await
        .unwrap()
        .get(0)
}

/// A finish chaining units that exist into the next spec locks them in
/// name order, as `add_work_units` does, whatever the order of its
/// `output`: queued one after the other behind a lock on "y", a finish
/// chaining `["y", "x"]` and a bulk add of `["x", "y"]` both go through,
/// without a deadlock.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_finish_chains_units_in_the_order_a_bulk_add_locks_them() {
    let (servers, db, _clock) = two_servers().await;
    let (_, next, attempt) = chaining_attempt(&servers[0]).await;
    for name in ["x", "y"] {
        next.add_work_unit(name, data!({}), WorkUnitMeta::default())
            .await
            .unwrap();
    }
    let admin = db.sql().await;
    let before = deadlocks(&admin).await;
    let holder = held(
        &db,
        "SELECT 1 FROM work_unit WHERE name = 'y'::bytea FOR UPDATE",
    )
    .await;
    let finish = tokio::spawn({
        let attempt = attempt.clone();
        async move {
            let output = data!({"output": [["y", {"by": "finish"}], ["x", {"by": "finish"}]]});
            attempt.finish(Some(output)).await
        }
    });
    wait_for_waiters(&admin, 1).await;
    let add = tokio::spawn({
        let next = servers[1].work_spec_at("n", "t").await.unwrap();
        async move {
            let units =
                ["x", "y"].map(|name| coordinate::NewWorkUnit::new(name, data!({"by": "add"})));
            next.add_work_units(units.into()).await.map(drop)
        }
    });
    wait_for_waiters(&admin, 2).await;
    holder.batch_execute("COMMIT").await.unwrap();
    finish.await.unwrap().unwrap();
    add.await.unwrap().unwrap();
    assert_eq!(deadlocks(&admin).await, before);
    // The add came second on both units.
    for name in ["x", "y"] {
        let unit = next.work_unit(name).await.unwrap();
        assert_eq!(unit.data().await.unwrap(), data!({"by": "add"}), "{name}");
    }
}

/// The statuses stored for the attempts of unit `unit`, oldest first.
async fn stored_statuses(sql: &tokio_postgres::Client, unit: &str) -> Vec<i16> {
    sql.query(
        "SELECT a.status FROM attempt a JOIN work_unit u ON u.id = a.work_unit_id
         WHERE u.name = $1 ORDER BY a.id",
        &[&unit.as_bytes()],
    )
    .await
    .unwrap()
    .iter()
    .map(|row| row.get(0))
    .collect()
}

/// A pending attempt that loses its unit's link is stored apart from the
/// active ones (status 5, which reads as Pending) even when it was made
/// while the call taking the link away waited for the unit's lock: an
/// attempt that call's statement could not see when it started.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_attempt_made_while_its_link_was_being_taken_is_detached() {
    let (servers, db, _clock) = two_servers().await;
    let ns = servers[0].namespace("n").await.unwrap();
    let spec = spec_with_units(&ns, data!({"name": "s"}), 2).await;
    let worker = ns.worker("w").await.unwrap();
    let other_worker = servers[1].worker_at("n", "w").await.unwrap();
    let other_spec = servers[1].work_spec_at("n", "s").await.unwrap();
    let admin = db.sql().await;

    for (unit, takes) in [("u0000", "a clear"), ("u0001", "a newer attempt")] {
        let mine = spec.work_unit(unit).await.unwrap();
        let theirs = other_spec.work_unit(unit).await.unwrap();
        let lock = held(
            &db,
            &format!("SELECT 1 FROM work_unit WHERE name = '{unit}'::bytea FOR UPDATE"),
        )
        .await;
        let worker = worker.clone();
        let made = tokio::spawn(async move {
            worker
                .make_attempt(&mine, coordinate::Duration::minutes(1))
                .await
                .map(drop)
        });
        wait_for_waiters(&admin, 1).await;
        let other_worker = other_worker.clone();
        let taken = tokio::spawn(async move {
            if unit == "u0000" {
                theirs.clear_active_attempt().await
            } else {
                other_worker
                    .make_attempt(&theirs, coordinate::Duration::minutes(1))
                    .await
                    .map(drop)
            }
        });
        wait_for_waiters(&admin, 2).await;
        lock.batch_execute("COMMIT").await.unwrap();
        made.await.unwrap().unwrap();
        taken.await.unwrap().unwrap();
        let expected = if unit == "u0000" { vec![5] } else { vec![5, 0] };
        assert_eq!(
            stored_statuses(&admin, unit).await,
            expected,
            "{unit}: the first attempt, made while {takes} waited, is detached"
        );
    }
}

/// A continuous unit generated over a unit of its name whose `make_attempt`
/// committed while the generation waited for it takes a new attempt, and
/// the one it supersedes is detached.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_continuous_unit_generated_over_a_new_attempt_detaches_it() {
    let (servers, db, clock) = two_servers().await;
    let (ns, spec) = continuous_spec(&servers[0], 60).await;
    let name = coordinate::rules::continuous_unit_name(clock.now());
    spec.add_work_unit(&name, data!({}), WorkUnitMeta::default())
        .await
        .unwrap();
    let worker = ns.worker("w").await.unwrap();
    let done = worker
        .request_attempts(&AttemptRequest::units(1))
        .await
        .unwrap();
    assert_eq!(done[0].work_unit().name(), name);
    done[0].finish(None).await.unwrap();

    let admin = db.sql().await;
    let lock = held(
        &db,
        &format!(
            "SELECT coordinate_make_attempt(u.id, w.id, now(), now() + interval '1 hour')
             FROM work_unit u, worker w WHERE u.name = '{name}'::bytea"
        ),
    )
    .await;
    let other = servers[1].worker_at("n", "w").await.unwrap();
    let generated =
        tokio::spawn(async move { other.request_attempts(&AttemptRequest::units(1)).await });
    wait_for_waiters(&admin, 1).await;
    lock.batch_execute("COMMIT").await.unwrap();
    let generated = generated.await.unwrap().unwrap();
    assert_eq!(generated.len(), 1);
    assert_eq!(generated[0].work_unit().name(), name);
    assert_eq!(stored_statuses(&admin, &name).await, vec![2, 5, 0]);
}

/// A fresh database whose sessions look for a deadlock only `timeout`
/// after they began to wait.
async fn finding_deadlocks_after(timeout: &str) -> Database {
    let db = Database::fresh().await;
    db.sql()
        .await
        .batch_execute(&format!(
            "ALTER DATABASE \"{}\" SET deadlock_timeout = '{timeout}'",
            db.name
        ))
        .await
        .unwrap();
    db
}

/// Two expiry checks of one spec on two servers, the first queued on an
/// overdue unit another session holds, the second on that unit too after
/// locking a unit that became overdue since the first read: once the
/// holder lets go, both end, the first expiring only the unit it locked
/// (a second read of its own, taking the other unit too, closed a cycle).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_expiry_checks_of_a_spec_end_without_deadlock() {
    // A deadlock would show as a wait far longer than any other here.
    let db = finding_deadlocks_after("20s").await;
    let clock = MockClock::new();
    let servers = [db.server(&clock, None).await, db.server(&clock, None).await];
    let ns = servers[0].namespace("n").await.unwrap();
    let spec = spec_with_units(&ns, data!({"name": "s"}), 2).await;
    let worker = ns.worker("w").await.unwrap();
    let [u1, u2] = ["u0000", "u0001"].map(|name| {
        let spec = spec.clone();
        async move { spec.work_unit(name).await.unwrap() }
    });
    let (u1, u2) = (u1.await, u2.await);
    let overdue = coordinate::Duration::minutes(-1);
    worker.make_attempt(&u2, overdue).await.unwrap();

    let admin = db.sql().await;
    let holder = held(
        &db,
        "SELECT 1 FROM work_unit WHERE name = 'u0001'::bytea FOR UPDATE",
    )
    .await;
    let started = Instant::now();
    let first = tokio::spawn({
        let spec = spec.clone();
        async move { spec.count_work_unit_status().await }
    });
    wait_for_waiters(&admin, 1).await;
    worker.make_attempt(&u1, overdue).await.unwrap();
    let other_unit = servers[1].work_unit_at("n", "s", "u0000").await.unwrap();
    let second = tokio::spawn(async move { other_unit.status().await });
    wait_for_waiters(&admin, 2).await;
    holder.batch_execute("COMMIT").await.unwrap();
    let counts = first.await.unwrap().unwrap();
    let status = second.await.unwrap().unwrap();
    assert!(
        started.elapsed() < StdDuration::from_secs(10),
        "a deadlock held the checks for {:?}",
        started.elapsed()
    );
    assert_eq!(status, WorkUnitStatus::Available);
    let available = [(WorkUnitStatus::Available, 2)].into_iter().collect();
    assert_eq!(counts, available);
    assert_eq!(u1.status().await.unwrap(), WorkUnitStatus::Available);
}

/// A hand-out from a spec with `max_running` that has leases to expire
/// locks the spec before it expires them: while another hand-out holds the
/// spec and then adds to the counter stripe the first would write, the
/// first holds nothing that one waits for (expiring first, it did, and the
/// two deadlocked).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_limited_hand_out_locks_its_spec_before_it_expires() {
    let (servers, db, clock) = two_servers().await;
    let ns = servers[0].namespace("n").await.unwrap();
    let spec = spec_with_units(&ns, data!({"name": "lim", "max_running": 3}), 2).await;
    let worker = ns.worker("w").await.unwrap();
    let first = spec.work_unit("u0000").await.unwrap();
    worker
        .make_attempt(&first, coordinate::Duration::minutes(1))
        .await
        .unwrap();
    clock.advance(coordinate::Duration::minutes(2));

    let admin = db.sql().await;
    // Were there a deadlock, this session would detect it, and fail.
    let other = held(
        &db,
        "SET LOCAL deadlock_timeout = '10ms';
         SELECT 1 FROM work_spec WHERE name = 'lim'::bytea FOR NO KEY UPDATE",
    )
    .await;
    let requester = servers[1].worker_at("n", "w").await.unwrap();
    let request =
        tokio::spawn(async move { requester.request_attempts(&AttemptRequest::units(1)).await });
    wait_for_waiters(&admin, 1).await;
    let pid: i32 = admin
        .query_one(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database()
             AND wait_event_type = 'Lock' AND query LIKE '%coordinate_hand_out%'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    other
        .execute(
            "INSERT INTO work_unit_count AS c
                 (work_spec_id, stripe, idle, pending, finished, failed, waiting)
             SELECT id, $1, 0, 0, 0, 0, 0 FROM work_spec WHERE name = 'lim'::bytea
             ON CONFLICT (work_spec_id, stripe) DO UPDATE SET idle = c.idle",
            &[&i16::try_from(pid % 16).unwrap()],
        )
        .await
        .expect("the other hand-out is not a deadlock victim");
    other.batch_execute("COMMIT").await.unwrap();
    let got = request.await.unwrap().unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(first.status().await.unwrap(), WorkUnitStatus::Pending);
}
