//! The per-spec unit counters of the PostgreSQL backend stay exact: after
//! many concurrent mixed operations from two job servers (hand-outs,
//! finishes with chaining, failures, retries, expiry, upserts, bulk adds,
//! deletes, meta changes), counts, counted metas and summaries equal a full
//! recount of the unit rows, and so do the stored counters and unit states;
//! and a database of the previous schema version migrates to counters that
//! match its units. Counting an update of many units, and handing many out,
//! stay linear on a session whose plans were made for one unit.
#![cfg(feature = "testing")]

use std::collections::BTreeMap;

use coordinate::postgres::testing::TestCluster;
use coordinate::postgres::PostgresBackend;
use coordinate::{
    data, AttemptRef, AttemptRequest, Backend, Clock, Duration, Error, MockClock, NewWorkUnit,
    Time, WorkSpecRef, WorkUnitMeta, WorkUnitQuery, WorkUnitStatus,
};
use futures::future::poll_fn;
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver};
use tokio_postgres::{AsyncMessage, Client, NoTls};

mod common {
    pub mod postgres;
}

use common::postgres::Database;

/// The statuses of spec `spec` of namespace "n" as of `now` by a plain
/// `GROUP BY` over every unit and its active attempt.
async fn recount(sql: &Client, spec: &str, now: Time) -> BTreeMap<WorkUnitStatus, u64> {
    let rows = sql
        .query(
            "SELECT CASE WHEN a.status = 0 AND a.expiration_time >= $2 THEN 2
                         WHEN a.status = 2 THEN 3 WHEN a.status = 3 THEN 4
                         WHEN u.not_before > $2 THEN 5 ELSE 1 END::int8, count(*)
             FROM work_unit u JOIN work_spec s ON s.id = u.work_spec_id
             JOIN namespace n ON n.id = s.namespace_id
             LEFT JOIN attempt a ON a.id = u.active_attempt_id
             WHERE n.name = 'n' AND s.name = $1 GROUP BY 1",
            &[&spec.as_bytes(), &now],
        )
        .await
        .unwrap();
    rows.iter()
        .map(|r| {
            let status = WorkUnitStatus::from_ordinal(r.get(0)).unwrap();
            (status, u64::try_from(r.get::<_, i64>(1)).unwrap())
        })
        .collect()
}

/// Checks the stored side: each unit's state is its active attempt's (a
/// unit without one ready or, with a not-before time, waiting), and each
/// spec's counters are the units per state.
async fn assert_stored_counters_exact(sql: &Client) {
    let wrong_states: i64 = sql
        .query_one(
            "SELECT count(*) FROM work_unit u LEFT JOIN attempt a ON a.id = u.active_attempt_id
             WHERE CASE WHEN u.state = 4 AND u.not_before IS NOT NULL THEN 0 ELSE u.state END
                   <> CASE WHEN a.status = 0 THEN 1 WHEN a.status IN (2, 3)
                           THEN a.status ELSE 0 END",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(wrong_states, 0, "unit states differ from their attempts'");
    let mismatches: i64 = sql
        .query_one(
            "WITH counted AS (
                 SELECT work_spec_id, sum(idle) AS idle, sum(pending) AS pending,
                     sum(finished) AS finished, sum(failed) AS failed, sum(waiting) AS waiting
                 FROM work_unit_count GROUP BY work_spec_id),
             recounted AS (
                 SELECT s.id AS work_spec_id,
                     count(u.id) FILTER (WHERE u.state = 0) AS idle,
                     count(u.id) FILTER (WHERE u.state = 1) AS pending,
                     count(u.id) FILTER (WHERE u.state = 2) AS finished,
                     count(u.id) FILTER (WHERE u.state = 3) AS failed,
                     count(u.id) FILTER (WHERE u.state = 4) AS waiting
                 FROM work_spec s LEFT JOIN work_unit u ON u.work_spec_id = s.id GROUP BY s.id)
             SELECT count(*) FROM recounted r LEFT JOIN counted c USING (work_spec_id)
             WHERE (COALESCE(c.idle, 0), COALESCE(c.pending, 0), COALESCE(c.finished, 0),
                    COALESCE(c.failed, 0), COALESCE(c.waiting, 0))
                   <> (r.idle, r.pending, r.finished, r.failed, r.waiting)",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(mismatches, 0, "counters differ from a recount");
}

/// Checks every counted answer of the backend against the recount.
async fn assert_answers_exact(backend: &PostgresBackend, sql: &Client, now: Time) {
    let ns = backend.namespace("n").await.unwrap();
    let mut summary = BTreeMap::new();
    for record in ns.summarize().await.unwrap() {
        summary.insert((record.work_spec.clone(), record.status), record.count);
    }
    for name in ["a", "b"] {
        let expected = recount(sql, name, now).await;
        let spec = ns.work_spec(name).await.unwrap();
        assert_eq!(spec.count_work_unit_status().await.unwrap(), expected);
        let meta = spec.meta(true).await.unwrap();
        let of = |s| i64::try_from(expected.get(&s).copied().unwrap_or(0)).unwrap();
        assert_eq!(meta.available_count, of(WorkUnitStatus::Available));
        assert_eq!(meta.pending_count, of(WorkUnitStatus::Pending));
        let summarized: BTreeMap<WorkUnitStatus, u64> = summary
            .iter()
            .filter(|((spec, _), _)| spec == name)
            .map(|((_, status), n)| (*status, *n))
            .collect();
        assert_eq!(summarized, expected);
        for status in [
            WorkUnitStatus::Available,
            WorkUnitStatus::Pending,
            WorkUnitStatus::Finished,
            WorkUnitStatus::Failed,
            WorkUnitStatus::Delayed,
        ] {
            let listed = spec
                .work_units(&WorkUnitQuery::statuses([status]))
                .await
                .unwrap();
            assert_eq!(
                listed.len() as u64,
                expected.get(&status).copied().unwrap_or(0)
            );
        }
    }
}

/// Errors a racing operation may rightly meet; anything else fails the test.
fn tolerated(result: coordinate::Result<()>) {
    if let Err(e) = result {
        assert!(
            matches!(
                e,
                Error::NotPending
                    | Error::LostLease
                    | Error::Gone { .. }
                    | Error::NoSuchWorkUnit { .. }
            ),
            "unexpected error: {e:?}"
        );
    }
}

fn unit_name(rng: &mut fastrand::Rng) -> String {
    format!("u{:03}", rng.usize(0..300))
}

/// One task's share of the mixed load.
async fn mixed_load(backend: PostgresBackend, clock: MockClock, task: u64) {
    let mut rng = fastrand::Rng::with_seed(task);
    let ns = backend.namespace("n").await.unwrap();
    let a = ns.work_spec("a").await.unwrap();
    let worker = ns.worker(&format!("w{task}")).await.unwrap();
    let mut held: Vec<AttemptRef> = Vec::new();
    for step in 0..80 {
        let later = clock.now() + Duration::minutes(30);
        let meta = WorkUnitMeta {
            priority: rng.f64(),
            not_before: rng.bool().then_some(later),
        };
        let pick = |rng: &mut fastrand::Rng, held: &mut Vec<AttemptRef>| {
            (!held.is_empty()).then(|| held.swap_remove(rng.usize(0..held.len())))
        };
        match rng.u8(0..14) {
            0..=3 => {
                let request = AttemptRequest {
                    number_of_work_units: rng.i64(1..5),
                    lifetime: Duration::minutes(5),
                    ..AttemptRequest::default()
                };
                held.extend(worker.request_attempts(&request).await.unwrap());
            }
            4 | 5 => {
                if let Some(attempt) = pick(&mut rng, &mut held) {
                    let output = data!({"output": [format!("c{task}-{step}")]});
                    tolerated(attempt.finish(rng.bool().then_some(output)).await);
                }
            }
            6 => {
                if let Some(attempt) = pick(&mut rng, &mut held) {
                    tolerated(attempt.fail(None).await);
                }
            }
            7 => {
                if let Some(attempt) = pick(&mut rng, &mut held) {
                    let delay = Duration::minutes(rng.i64(0..2) * 10);
                    tolerated(attempt.retry(None, delay).await);
                }
            }
            8 => {
                if let Some(attempt) = pick(&mut rng, &mut held) {
                    if rng.bool() {
                        tolerated(attempt.expire(None).await);
                    } else {
                        tolerated(attempt.renew(Duration::minutes(5), None).await);
                        held.push(attempt);
                    }
                }
            }
            9 => {
                let name = unit_name(&mut rng);
                a.add_work_unit(&name, data!({"again": step}), meta)
                    .await
                    .unwrap();
            }
            10 => {
                let units = (0..20)
                    .map(|_| NewWorkUnit {
                        name: unit_name(&mut rng),
                        data: data!({}),
                        meta,
                    })
                    .collect();
                a.add_work_units(units).await.unwrap();
            }
            11 => {
                let query = if rng.bool() {
                    WorkUnitQuery::names((0..5).map(|_| unit_name(&mut rng)))
                } else {
                    WorkUnitQuery {
                        statuses: vec![WorkUnitStatus::Finished, WorkUnitStatus::Failed],
                        limit: 3,
                        ..WorkUnitQuery::default()
                    }
                };
                a.delete_work_units(&query).await.unwrap();
            }
            12 => {
                if let Ok(unit) = a.work_unit(&unit_name(&mut rng)).await {
                    if rng.bool() {
                        tolerated(unit.set_meta(meta).await);
                    } else {
                        tolerated(unit.clear_active_attempt().await);
                    }
                }
            }
            _ => {
                if task == 0 {
                    clock.advance(Duration::minutes(3));
                } else {
                    let query = WorkUnitQuery::statuses([WorkUnitStatus::Available]);
                    a.adjust_work_unit_priorities(&query, 1.0).await.unwrap();
                }
            }
        }
    }
}

async fn two_specs(backend: &PostgresBackend) -> (WorkSpecRef, WorkSpecRef) {
    let ns = backend.namespace("n").await.unwrap();
    let a = ns
        .set_work_spec(data!({"name": "a", "then": "b", "max_retries": 4}))
        .await
        .unwrap();
    let b = ns.set_work_spec(data!({"name": "b"})).await.unwrap();
    (a, b)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn counters_equal_a_recount_after_concurrent_mixed_operations() {
    let db = Database::fresh().await;
    let clock = MockClock::new();
    let servers = [
        db.server(&clock, Some(4)).await,
        db.server(&clock, Some(4)).await,
    ];
    let (a, _) = two_specs(&servers[0]).await;
    let units = (0..300)
        .map(|i| NewWorkUnit {
            name: format!("u{i:03}"),
            data: data!({"i": i}),
            meta: WorkUnitMeta::default(),
        })
        .collect();
    a.add_work_units(units).await.unwrap();

    let mut tasks = Vec::new();
    for task in 0..8u64 {
        let backend = servers[usize::try_from(task % 2).unwrap()].clone();
        tasks.push(tokio::spawn(mixed_load(backend, clock.clone(), task)));
    }
    for task in tasks {
        task.await.unwrap();
    }

    let sql = db.sql().await;
    assert_stored_counters_exact(&sql).await;
    // Leases run out, so the answers must correct for attempts past their
    // deadline that no expiry has written yet.
    clock.advance(Duration::minutes(4));
    assert_answers_exact(&servers[1], &sql, clock.now()).await;
    assert_stored_counters_exact(&sql).await;
    let b_units = recount(&sql, "b", clock.now()).await;
    assert!(
        !b_units.is_empty(),
        "chaining never ran: the load is too thin"
    );
}

#[tokio::test]
async fn a_previous_version_database_migrates_to_exact_counters() {
    let db = Database::fresh().await;
    let clock = MockClock::new();
    let backend = db.server(&clock, Some(4)).await;
    let (a, _) = two_specs(&backend).await;
    let ns = backend.namespace("n").await.unwrap();
    for i in 0..20 {
        let meta = WorkUnitMeta {
            not_before: (i % 5 == 0).then(|| clock.now() + Duration::hours(1)),
            ..WorkUnitMeta::default()
        };
        a.add_work_unit(&format!("u{i:03}"), data!({}), meta)
            .await
            .unwrap();
    }
    let worker = ns.worker("w").await.unwrap();
    let attempts = worker
        .request_attempts(&AttemptRequest::units(9))
        .await
        .unwrap();
    attempts[0].finish(None).await.unwrap();
    attempts[1].fail(None).await.unwrap();
    attempts[2].retry(None, Duration::hours(2)).await.unwrap();
    attempts[3].expire(None).await.unwrap();
    attempts[4]
        .finish(Some(data!({"output": ["x", "y"]})))
        .await
        .unwrap();
    drop(backend);

    // Back to version 3: the unit's spec by foreign key again, its
    // functions, no counters, no states, no functions of later versions.
    let sql = db.sql().await;
    let previous = include_str!("../src/postgres/migrations/0003_one_statement_operations.sql")
        .replace("CREATE FUNCTION", "CREATE OR REPLACE FUNCTION");
    sql.batch_execute(&format!(
        "BEGIN;
         DROP FUNCTION coordinate_hand_out(bigint, bigint, bigint, timestamptz, timestamptz,
             jsonb, bytea, timestamptz, bigint);
         DROP FUNCTION coordinate_hand_out(bigint, bigint, bigint, timestamptz, timestamptz,
             jsonb, bytea, bigint);
         DROP FUNCTION coordinate_continuous(bigint, timestamptz, bytea);
         DROP FUNCTION coordinate_clear_active(bigint);
         DROP FUNCTION coordinate_make_attempt(bigint, bigint, timestamptz, timestamptz);
         DROP TRIGGER coordinate_feed_namespace_moved ON namespace;
         DROP TRIGGER coordinate_feed_work_spec_moved ON work_spec;
         DROP TRIGGER coordinate_feed_work_unit_moved ON work_unit;
         DROP TRIGGER coordinate_feed_worker_moved ON worker;
         DROP FUNCTION coordinate_feed_namespace_moved();
         DROP FUNCTION coordinate_feed_member_moved();
         DROP FUNCTION coordinate_feed_work_unit_moved();
         DROP FUNCTION coordinate_destroy_namespace(bigint);
         DROP TRIGGER coordinate_unit_waits_insert ON work_unit;
         DROP TRIGGER coordinate_unit_waits_update ON work_unit;
         DROP FUNCTION coordinate_unit_waits();
         CREATE INDEX work_unit_idle ON work_unit (work_spec_id, priority DESC, name)
             WHERE active_attempt_id IS NULL;
         DROP FUNCTION coordinate_spec_counts(bigint, timestamptz);
         DROP TRIGGER coordinate_check_unit_spec ON work_unit;
         DROP TRIGGER coordinate_unit_spec_fixed ON work_unit;
         DROP TRIGGER coordinate_unit_spec_cascade ON work_spec;
         DROP TRIGGER coordinate_unit_spec_truncate ON work_spec;
         DROP FUNCTION coordinate_unit_spec_check();
         DROP FUNCTION coordinate_unit_spec_fixed();
         DROP FUNCTION coordinate_unit_spec_cascade();
         DROP FUNCTION coordinate_unit_spec_truncate();
         ALTER TABLE work_unit ADD CONSTRAINT work_unit_work_spec_id_fkey
             FOREIGN KEY (work_spec_id) REFERENCES work_spec (id) ON DELETE CASCADE;
         DROP TRIGGER coordinate_count_insert ON work_unit;
         DROP TRIGGER coordinate_count_update ON work_unit;
         DROP TRIGGER coordinate_count_delete ON work_unit;
         DROP FUNCTION coordinate_count_units();
         DROP TABLE work_unit_count;
         ALTER TABLE work_unit DROP COLUMN state;
         {previous}
         UPDATE coordinate_schema SET version = 3;
         COMMIT;"
    ))
    .await
    .unwrap();

    let backend = db.server(&clock, Some(4)).await;
    assert_stored_counters_exact(&sql).await;
    clock.advance(Duration::minutes(20));
    assert_answers_exact(&backend, &sql, clock.now()).await;
}

/// A fresh database whose spec "a" of namespace "n" holds 200 units and
/// whose namespace has worker "w", and a plain SQL session on it that
/// `auto_explain` sends the plan of every statement, nested ones included,
/// as a notice arriving on the returned channel.
async fn explained_session() -> (Database, Client, UnboundedReceiver<String>) {
    let db = Database::fresh().await;
    let backend = db.server(&MockClock::new(), Some(1)).await;
    let (a, _) = two_specs(&backend).await;
    let units = (0..200)
        .map(|i| NewWorkUnit::new(format!("u{i:03}"), data!({})))
        .collect();
    a.add_work_units(units).await.unwrap();
    backend
        .namespace("n")
        .await
        .unwrap()
        .worker("w")
        .await
        .unwrap();

    let url = TestCluster::shared_or_panic().database_url(&db.name);
    let (client, mut connection) = tokio_postgres::connect(&url, NoTls).await.unwrap();
    let (notices, received) = unbounded_channel();
    tokio::spawn(async move {
        while let Some(Ok(message)) = poll_fn(|cx| connection.poll_message(cx)).await {
            if let AsyncMessage::Notice(notice) = message {
                let _ = notices.send(notice.message().to_owned());
            }
        }
    });
    client
        .batch_execute(
            "LOAD 'auto_explain';
             SET auto_explain.log_min_duration = 0;
             SET auto_explain.log_nested_statements = on;
             SET auto_explain.log_level = notice;",
        )
        .await
        .unwrap();
    (db, client, received)
}

/// A session keeps the plan of each statement of the counters trigger,
/// made after a few one-unit updates for one row on each side. An update of
/// many units must still be counted in linear time: the statement counting
/// an update joins nothing (a join planned for one row a side is a nested
/// loop, every old row against every new one). Read from the plans
/// `auto_explain` sends the session.
#[tokio::test]
async fn counting_an_update_of_many_units_joins_nothing() {
    let (_db, sql, mut notices) = explained_session().await;
    for _ in 0..8 {
        sql.batch_execute("UPDATE work_unit SET priority = priority + 1 WHERE name = 'u000'")
            .await
            .unwrap();
    }
    sql.batch_execute("UPDATE work_unit SET priority = priority + 1")
        .await
        .unwrap();
    sql.batch_execute("SELECT 1").await.unwrap();

    let mut counted = 0;
    while let Ok(plan) = notices.try_recv() {
        if plan.contains("INSERT INTO work_unit_count") && plan.contains("old_rows") {
            counted += 1;
            assert!(
                !plan.contains("Join") && !plan.contains("Nested Loop"),
                "{plan}"
            );
        }
    }
    assert_eq!(counted, 9, "one counting statement per update");
}

/// The hand-out's statement, planned (and kept) for the one unit most
/// requests want, must not compare the units it took with the attempts it
/// made pair by pair when a request wants many: it reads the units it took
/// once. Read from the plans `auto_explain` sends the session.
#[tokio::test]
async fn a_hand_out_of_many_units_reads_the_units_it_took_once() {
    let (_db, sql, mut notices) = explained_session().await;
    let request = |wanted: u32| {
        format!(
            "SELECT count(*) FROM coordinate_hand_out(
                 (SELECT id FROM work_spec WHERE name = 'a'),
                 (SELECT id FROM worker WHERE name = 'w'), {wanted},
                 '3000-01-01T00:00:00Z', '3000-01-01T01:00:00Z', '{{}}', NULL, NULL)"
        )
    };
    for _ in 0..8 {
        sql.batch_execute(&request(1)).await.unwrap();
    }
    sql.batch_execute(&request(100)).await.unwrap();

    let mut hand_outs = 0;
    while let Ok(plan) = notices.try_recv() {
        if plan.contains("CTE picked") {
            hand_outs += 1;
            assert_eq!(plan.matches("CTE Scan on picked").count(), 1, "{plan}");
        }
    }
    assert_eq!(hand_outs, 9, "one hand-out statement per request");
}
