//! A query naming more units than one statement carries runs in parts,
//! and answers as one statement would: as the in-memory backend does.
//! The parts here are a few names each, so that a small spec has many.

use super::testing::TestCluster;
use super::PostgresBackend;
use crate::api::{Backend, WorkSpecRef};
use crate::clock::MockClock;
use crate::error::Error;
use crate::memory::MemoryBackend;
use crate::model::{AttemptRequest, NewWorkUnit, WorkUnitQuery, WorkUnitStatus};

/// Bytes of names per part: two of the test's names (3 bytes and a
/// length word of 4 each).
const PART_BYTES: usize = 14;

/// Spec `s` of 40 units `u00`…`u39`, 5 of them handed out, in `backend`.
async fn loaded(backend: &dyn Backend) -> WorkSpecRef {
    let ns = backend.namespace("parts").await.unwrap();
    let spec = ns.set_work_spec(crate::data!({"name": "s"})).await.unwrap();
    let units = (0..40)
        .map(|i| NewWorkUnit::new(format!("u{i:02}"), crate::data!({})))
        .collect();
    spec.add_work_units(units).await.unwrap();
    let worker = ns.worker("w").await.unwrap();
    let handed = worker
        .request_attempts(&AttemptRequest::units(5))
        .await
        .unwrap();
    assert_eq!(handed.len(), 5);
    spec
}

/// The names `query` selects in `spec`.
async fn selected(spec: &WorkSpecRef, query: &WorkUnitQuery) -> Vec<String> {
    spec.work_units(query).await.unwrap().into_keys().collect()
}

/// Every unit's name and priority.
async fn priorities(spec: &WorkSpecRef) -> Vec<(String, f64)> {
    let mut all = Vec::new();
    for (name, unit) in spec.work_units(&WorkUnitQuery::all()).await.unwrap() {
        all.push((name, unit.meta().await.unwrap().priority));
    }
    all
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queries_over_a_statements_names_answer_as_one_statement() {
    let cluster = TestCluster::shared().unwrap_or_else(|e| panic!("no PostgreSQL cluster: {e}"));
    let db = cluster.fresh_database().await.unwrap();
    let clock = MockClock::new();
    let postgres = PostgresBackend::builder(cluster.url())
        .database(&db)
        .clock(clock.clone())
        .statement_bytes(PART_BYTES)
        .build()
        .await
        .unwrap();
    let memory = MemoryBackend::with_clock(clock);
    let (pg, mem) = (loaded(&postgres).await, loaded(&memory).await);

    // Every name and ten absent ones, backwards: 25 parts.
    let mut names: Vec<String> = (0..50).map(|i| format!("u{i:02}")).collect();
    names.reverse();
    let named = |limit: i64, previous: &str, statuses: &[WorkUnitStatus]| WorkUnitQuery {
        names: names.clone(),
        statuses: statuses.to_vec(),
        previous_name: previous.to_string(),
        limit,
    };
    for query in [
        named(0, "", &[]),
        named(7, "u05", &[]),
        named(3, "", &[WorkUnitStatus::Available]),
        named(0, "", &[WorkUnitStatus::Pending]),
        named(30, "u35", &[]),
    ] {
        let expected = selected(&mem, &query).await;
        assert!(!expected.is_empty(), "{query:?}");
        assert_eq!(selected(&pg, &query).await, expected, "{query:?}");
    }

    // A change past float8's range in a late part changes nothing at all.
    for spec in [&pg, &mem] {
        let last = WorkUnitQuery::names(["u39"]);
        spec.set_work_unit_priorities(&last, f64::MAX)
            .await
            .unwrap();
        let refused = spec
            .adjust_work_unit_priorities(&named(0, "", &[]), f64::MAX)
            .await;
        assert!(matches!(refused, Err(Error::BadPriority)), "{refused:?}");
        spec.adjust_work_unit_priorities(&named(4, "u10", &[]), 1.5)
            .await
            .unwrap();
    }
    assert_eq!(priorities(&pg).await, priorities(&mem).await);
    let raised: Vec<(String, f64)> = priorities(&pg)
        .await
        .into_iter()
        .filter(|(_, p)| *p == 1.5)
        .collect();
    assert_eq!(raised.len(), 4, "{raised:?}");

    // Deletes across parts, up to a limit.
    let delete = named(9, "u20", &[]);
    assert_eq!(pg.delete_work_units(&delete).await.unwrap(), 9);
    assert_eq!(mem.delete_work_units(&delete).await.unwrap(), 9);
    let all = WorkUnitQuery::all();
    assert_eq!(selected(&pg, &all).await, selected(&mem, &all).await);
    assert_eq!(selected(&pg, &all).await.len(), 31);
}
