//! The statements whose cost must not grow with a spec's units keep
//! index-driven plans in their generic form (what a pooled connection
//! uses after a few executions), on a loaded and analysed table. A plan
//! that reads the whole unit table shows as a sequential scan of it.

use super::selection::{Selection, Shape, UnitChange};
use super::testing::TestCluster;
use super::work_spec::COUNTED_META;
use super::work_unit::SNAPSHOT;
use super::worker::REQUEST_METAS;
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

/// The queries `coordinate_spec_counts` runs (migration 9), each as a
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
    assert_eq!(queries.len(), 3, "the function's queries: {queries:?}");
    queries
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_spec_statements_stay_index_driven_as_generic_plans() {
    let cluster = TestCluster::shared().unwrap_or_else(|e| panic!("no PostgreSQL cluster: {e}"));
    let db = cluster.fresh_database().await.unwrap();
    let clock = MockClock::new();
    let backend = PostgresBackend::builder(cluster.url())
        .database(&db)
        .clock(clock.clone())
        .build()
        .await
        .unwrap();
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

    let (sql, connection) =
        tokio_postgres::connect(&cluster.database_url(&db), tokio_postgres::NoTls)
            .await
            .unwrap();
    tokio::spawn(connection);
    sql.batch_execute("VACUUM ANALYZE").await.unwrap();
    sql.batch_execute("SET plan_cache_mode = force_generic_plan")
        .await
        .unwrap();
    let spec_id: i64 = sql
        .query_one("SELECT id FROM work_spec WHERE name = 'big'::bytea", &[])
        .await
        .unwrap()
        .get(0);
    let ns_id: i64 = sql
        .query_one(
            "SELECT namespace_id FROM work_spec WHERE id = $1",
            &[&spec_id],
        )
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
        (REQUEST_METAS.into(), format!("{ns_id}, {now}")),
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
