//! The statements whose cost must not grow with a spec's units keep
//! index-driven plans in their generic form (what a pooled connection
//! uses after a few executions), on a loaded and analysed table. A plan
//! that reads the whole unit table shows as a sequential scan of it.

use super::selection::{Selection, Shape, UnitChange};
use super::testing::TestCluster;
use super::work_spec::COUNTED_META;
use super::work_unit::SNAPSHOT;
use super::worker::{REQUEST, REQUEST_METAS};
use super::PostgresBackend;
use crate::api::Backend;
use crate::clock::{Clock, MockClock};
use crate::model::{
    AttemptRequest, Duration, NewWorkUnit, WorkUnitMeta, WorkUnitQuery, WorkUnitStatus,
};

/// Units in the loaded spec: enough that a scan of them costs more than
/// any index path.
const UNITS: usize = 30_000;

/// A SQL literal of a byte string.
fn bytea(b: &[u8]) -> String {
    let hex: String = b.iter().map(|c| format!("{c:02x}")).collect();
    format!("'\\x{hex}'::bytea")
}

/// True if an `EXPLAIN` plan reads the unit table whole: a sequential
/// scan of it, or a scan of one of its indexes without an index condition.
fn reads_every_unit(plan: &[String]) -> bool {
    plan.iter().enumerate().any(|(i, line)| {
        let line = line.trim_start().trim_start_matches("->  ");
        if line.starts_with("Seq Scan on work_unit ") {
            return true;
        }
        let scans_unit_index = (line.starts_with("Index Scan using work_unit")
            || line.starts_with("Index Only Scan using work_unit"))
            && !line.contains("work_unit_count");
        scans_unit_index
            && !plan
                .get(i + 1)
                .is_some_and(|next| next.contains("Index Cond"))
    })
}

#[test]
fn whole_table_reads_are_recognised() {
    let plan = |lines: &[&str]| lines.iter().map(|l| l.to_string()).collect::<Vec<_>>();
    assert!(reads_every_unit(&plan(&[
        "Seq Scan on work_unit u  (cost=0.00..1.00)"
    ])));
    assert!(reads_every_unit(&plan(&[
        "  ->  Index Scan using work_unit_pkey on work_unit y  (cost=0.29..1209.21)",
        "  ->  Sort",
    ])));
    assert!(!reads_every_unit(&plan(&[
        "  ->  Index Scan using work_unit_pkey on work_unit y  (cost=0.29..8.31)",
        "        Index Cond: (id = x.work_unit_id)",
        "Seq Scan on work_unit_count k  (cost=0.00..1.01)",
    ])));
}

/// The queries `coordinate_spec_counts` runs (migration 12), each as a
/// statement of the function's two parameters with its `INTO` clause
/// dropped: their generic plans are the ones the function uses.
async fn spec_counts_queries(sql: &tokio_postgres::Client) -> Vec<String> {
    let source: String = sql
        .query_one(
            "SELECT prosrc FROM pg_proc WHERE proname = 'coordinate_spec_counts'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    let queries: Vec<String> = source
        .split(';')
        .filter_map(|statement| {
            let query = &statement[statement.find("SELECT")?..];
            let into = query
                .find(" INTO ")
                .expect("each query reads into variables");
            let from = into
                + query[into..]
                    .find(" FROM ")
                    .expect("each query reads a table");
            let query = format!("{}{}", &query[..into], &query[from..]);
            Some(
                query
                    .replace("p_spec", "$1")
                    .replace("p_now", "$2::timestamptz"),
            )
        })
        .collect();
    assert_eq!(queries.len(), 4, "the function's queries: {queries:?}");
    queries
}

/// The shared cluster, a fresh database on it, a mock clock and a backend
/// on that database with that clock.
async fn fresh_backend() -> (&'static TestCluster, String, MockClock, PostgresBackend) {
    let cluster = TestCluster::shared().unwrap_or_else(|e| panic!("no PostgreSQL cluster: {e}"));
    let db = cluster.fresh_database().await.unwrap();
    let clock = MockClock::new();
    let backend = PostgresBackend::builder(cluster.url())
        .database(&db)
        .clock(clock.clone())
        .build()
        .await
        .unwrap();
    (cluster, db, clock, backend)
}

/// A plain SQL session on `db` of `cluster`, once `maintenance` (`ANALYZE`
/// or `VACUUM ANALYZE`) has run.
async fn session(cluster: &TestCluster, db: &str, maintenance: &str) -> tokio_postgres::Client {
    let (sql, connection) =
        tokio_postgres::connect(&cluster.database_url(db), tokio_postgres::NoTls)
            .await
            .unwrap();
    tokio::spawn(connection);
    sql.batch_execute(maintenance).await.unwrap();
    sql
}

/// The ids of spec "s", its namespace and that namespace's worker "w".
async fn ids_of_s_and_w(sql: &tokio_postgres::Client) -> (i64, i64, i64) {
    let ids = sql
        .query_one(
            "SELECT s.namespace_id, s.id, w.id FROM work_spec s
             JOIN worker w ON w.namespace_id = s.namespace_id
             WHERE s.name = 's'::bytea AND w.name = 'w'::bytea",
            &[],
        )
        .await
        .unwrap();
    (ids.get(0), ids.get(1), ids.get(2))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_spec_statements_stay_index_driven_as_generic_plans() {
    let (cluster, db, clock, backend) = fresh_backend().await;
    let ns = backend.namespace("n").await.unwrap();
    let spec = ns
        .set_work_spec(crate::data!({"name": "big"}))
        .await
        .unwrap();
    ns.set_work_spec(crate::data!({"name": "small"}))
        .await
        .unwrap();
    let later = clock.now() + Duration::hours(1);
    let units = (0..UNITS)
        .map(|i| NewWorkUnit {
            name: format!("u{i:06}"),
            data: crate::data!({"i": i}),
            meta: WorkUnitMeta {
                priority: 0.0,
                not_before: (i % 50 == 0).then_some(later),
            },
        })
        .collect();
    spec.add_work_units(units).await.unwrap();
    let worker = ns.worker("w").await.unwrap();
    let attempts = worker
        .request_attempts(&AttemptRequest::units(100))
        .await
        .unwrap();
    for attempt in attempts.iter().take(50) {
        attempt.finish(None).await.unwrap();
    }

    let sql = session(cluster, &db, "VACUUM ANALYZE").await;
    sql.batch_execute("SET plan_cache_mode = force_generic_plan")
        .await
        .unwrap();
    let spec_id: i64 = sql
        .query_one("SELECT id FROM work_spec WHERE name = 'big'::bytea", &[])
        .await
        .unwrap()
        .get(0);
    let worker_id: i64 = sql
        .query_one("SELECT id FROM worker WHERE name = 'w'::bytea", &[])
        .await
        .unwrap()
        .get(0);
    let now = format!("'{}'::timestamptz", clock.now().to_rfc3339());
    let names: Vec<String> = (0..1000)
        .map(|i| bytea(format!("u{:06}", i * 7).as_bytes()))
        .collect();
    let names = format!("ARRAY[{}]", names.join(", "));

    let mut statements: Vec<(String, String)> = vec![
        (COUNTED_META.into(), format!("{spec_id}, {now}")),
        (SNAPSHOT.into(), format!("1, {now}, {spec_id}")),
        (REQUEST_METAS.into(), format!("{worker_id}, {now}")),
    ];
    for query in spec_counts_queries(&sql).await {
        // The counters' read has no time.
        let params = if query.contains("$2") {
            format!("{spec_id}, {now}")
        } else {
            spec_id.to_string()
        };
        statements.push((query, params));
    }
    let pending = WorkUnitQuery {
        statuses: vec![WorkUnitStatus::Pending],
        limit: 100,
        ..WorkUnitQuery::default()
    };
    let available = WorkUnitQuery {
        statuses: vec![WorkUnitStatus::Available, WorkUnitStatus::Delayed],
        limit: 100,
        ..WorkUnitQuery::default()
    };
    let page = WorkUnitQuery {
        previous_name: "u012345".into(),
        limit: 100,
        ..WorkUnitQuery::default()
    };
    let named = WorkUnitQuery::names(["u000007"]);
    for query in [&pending, &available, &page, &named] {
        let selection = Selection::new(query);
        let shape_params = match &selection.shape {
            Shape::All => String::new(),
            Shape::Named(..) => format!(", {names}, '{{1,2,3,4,5}}'::int2[]"),
            Shape::ByStatus(flags) => {
                let flags: Vec<String> = flags.iter().map(bool::to_string).collect();
                format!(", {}", flags.join(", "))
            }
        };
        let common = format!("{spec_id}, ''::bytea, 100, {now}{shape_params}");
        statements.push((selection.read_sql().into(), common.clone()));
        statements.push((
            selection.change_sql(UnitChange::Delete).into(),
            common.clone(),
        ));
        statements.push((
            selection.change_sql(UnitChange::SetPriority(1.0)).into(),
            format!("{common}, 1.0"),
        ));
    }

    for (i, (statement, params)) in statements.iter().enumerate() {
        sql.batch_execute(&format!("PREPARE p{i} AS {statement}"))
            .await
            .unwrap();
        let plan: Vec<String> = sql
            .query(&format!("EXPLAIN EXECUTE p{i}({params})"), &[])
            .await
            .unwrap()
            .iter()
            .map(|row| row.get(0))
            .collect();
        assert!(
            !reads_every_unit(&plan),
            "statement {statement}\nreads every unit:\n{}",
            plan.join("\n")
        );
    }
}

/// Unit rows the transaction `sql` has fetched so far, by index or by
/// sequential scan.
async fn unit_rows_read(sql: &tokio_postgres::Transaction<'_>) -> i64 {
    sql.query_one(
        "SELECT COALESCE(idx_tup_fetch, 0) + seq_tup_read FROM pg_stat_xact_user_tables
         WHERE relname = 'work_unit'",
        &[],
    )
    .await
    .unwrap()
    .get(0)
}

/// The rows of a hand-out (`REQUEST`) by worker `ids.1` from spec `ids.0`
/// of `wanted` units at `now`, with the expiry check of namespace
/// `expire_in` first if given.
async fn hand_out(
    tx: &tokio_postgres::Transaction<'_>,
    (spec_id, worker_id): (i64, i64),
    wanted: i64,
    now: crate::Time,
    expire_in: Option<i64>,
) -> Vec<tokio_postgres::Row> {
    let expiration = now + Duration::minutes(15);
    let no_name: Option<&[u8]> = None;
    tx.query(
        REQUEST,
        &[
            &spec_id,
            &worker_id,
            &wanted,
            &now,
            &expiration,
            &serde_json::json!({}),
            &no_name,
            &expire_in,
        ],
    )
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_reads_no_unit_waiting_for_its_time() {
    const WAITING: usize = 5_000;
    let (cluster, db, clock, backend) = fresh_backend().await;
    let ns = backend.namespace("n").await.unwrap();
    let spec = ns.set_work_spec(crate::data!({"name": "s"})).await.unwrap();
    // Waiting units first in execution order (higher priority), then one
    // ready unit.
    let later = clock.now() + Duration::hours(1);
    let mut units: Vec<NewWorkUnit> = (0..WAITING)
        .map(|i| NewWorkUnit {
            name: format!("w{i:05}"),
            data: crate::data!({}),
            meta: WorkUnitMeta {
                priority: 1.0,
                not_before: Some(later),
            },
        })
        .collect();
    units.push(NewWorkUnit::new("ready", crate::data!({})));
    spec.add_work_units(units).await.unwrap();
    ns.worker("w").await.unwrap();

    let mut sql = session(cluster, &db, "ANALYZE").await;
    let (ns_id, spec_id, worker_id) = ids_of_s_and_w(&sql).await;

    // Before the units' time: the counts and the hand-out read a handful of
    // rows, not the waiting ones.
    let tx = sql.transaction().await.unwrap();
    let now = clock.now();
    let metas = tx.query(REQUEST_METAS, &[&worker_id, &now]).await.unwrap();
    assert_eq!(metas.len(), 1);
    let made = hand_out(&tx, (spec_id, worker_id), 10, now, None).await;
    let names: Vec<Vec<u8>> = made.iter().map(|r| r.get(2)).collect();
    assert_eq!(names, vec![b"ready".to_vec()]);
    let read = unit_rows_read(&tx).await;
    assert!(read < 100, "{read} unit rows read for a request");
    tx.rollback().await.unwrap();

    // Once their time has come, the counts call for an expiry check, which
    // the hand-out makes first; then they run first, by priority then name.
    clock.advance(Duration::hours(2));
    let tx = sql.transaction().await.unwrap();
    let now = clock.now();
    let metas = tx.query(REQUEST_METAS, &[&worker_id, &now]).await.unwrap();
    let stale: bool = metas[0].get(metas[0].len() - 1);
    assert!(stale, "due waiting units call for an expiry check");
    let made = hand_out(&tx, (spec_id, worker_id), 2, now, Some(ns_id)).await;
    let names: Vec<Vec<u8>> = made.iter().map(|r| r.get(2)).collect();
    assert_eq!(names, vec![b"w00000".to_vec(), b"w00001".to_vec()]);
    tx.rollback().await.unwrap();
}

/// Index entries of `attempt_pending` the transaction `sql` has read so far.
async fn pending_entries_read(sql: &tokio_postgres::Transaction<'_>) -> i64 {
    sql.query_one(
        "SELECT pg_stat_get_xact_tuples_returned('attempt_pending'::regclass)",
        &[],
    )
    .await
    .unwrap()
    .get(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expiry_checks_read_no_pending_attempt_that_is_not_active() {
    const CLEARED: usize = 600;
    const SUPERSEDED: usize = 400;
    let (cluster, db, clock, backend) = fresh_backend().await;
    let ns = backend.namespace("n").await.unwrap();
    let spec = ns.set_work_spec(crate::data!({"name": "s"})).await.unwrap();
    let units = spec
        .add_work_units(
            (0..CLEARED + SUPERSEDED + 10)
                .map(|i| NewWorkUnit::new(format!("u{i:04}"), crate::data!({})))
                .collect(),
        )
        .await
        .unwrap();
    let worker = ns.worker("w").await.unwrap();
    // Pending attempts that are no longer active, all past their deadline
    // once the clock moves: cleared ones, and ones a newer attempt
    // superseded (which stays pending, its deadline ahead).
    let short = Duration::minutes(1);
    for unit in &units[..CLEARED] {
        let attempt = worker.make_attempt(unit, short).await.unwrap();
        unit.clear_active_attempt().await.unwrap();
        assert_eq!(
            attempt.status().await.unwrap(),
            crate::model::AttemptStatus::Pending
        );
    }
    for unit in &units[CLEARED..CLEARED + SUPERSEDED] {
        let first = worker.make_attempt(unit, short).await.unwrap();
        worker.make_attempt(unit, Duration::hours(1)).await.unwrap();
        assert_eq!(
            first.status().await.unwrap(),
            crate::model::AttemptStatus::Pending
        );
    }
    clock.advance(Duration::minutes(10));

    // Vacuumed: an attempt's entry from before it was detached is gone,
    // as autovacuum would have it.
    let mut sql = session(cluster, &db, "VACUUM ANALYZE").await;
    let (ns_id, spec_id, worker_id) = ids_of_s_and_w(&sql).await;
    let unit_id: i64 = sql
        .query_one("SELECT id FROM work_unit WHERE name = 'u0000'::bytea", &[])
        .await
        .unwrap()
        .get(0);
    let now = clock.now();

    let tx = sql.transaction().await.unwrap();
    tx.query(COUNTED_META, &[&spec_id, &now]).await.unwrap();
    tx.query(SNAPSHOT, &[&unit_id, &now, &spec_id])
        .await
        .unwrap();
    let metas = tx.query(REQUEST_METAS, &[&worker_id, &now]).await.unwrap();
    let stale: bool = metas[0].get(metas[0].len() - 1);
    assert!(!stale, "no active attempt is past its deadline");
    // Available units include those whose active attempt is past its
    // deadline, read from the pending attempts.
    let available = Selection::new(&WorkUnitQuery {
        statuses: vec![WorkUnitStatus::Available],
        limit: 100,
        ..WorkUnitQuery::default()
    });
    let read = tx
        .query(
            available.read_sql(),
            &[
                &spec_id,
                &&b""[..],
                &100i64,
                &now,
                &true,
                &false,
                &false,
                &false,
                &false,
            ],
        )
        .await
        .unwrap();
    assert_eq!(read.len(), 100);
    // A hand-out that runs the namespace's expiry check first.
    let made = hand_out(&tx, (spec_id, worker_id), 1, now, Some(ns_id)).await;
    assert_eq!(made.len(), 1);
    let entries = pending_entries_read(&tx).await;
    assert!(
        entries < 50,
        "{entries} pending-attempt index entries read by expiry checks"
    );
    tx.rollback().await.unwrap();
}
