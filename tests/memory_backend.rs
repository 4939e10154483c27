//! Behaviour of `MemoryBackend` beyond the shared conformance suite: its
//! indexes stay consistent through every kind of transition.

use coordinate::memory::MemoryBackend;
use coordinate::ObjectKind;
use coordinate::{
    data, AttemptRequest, AttemptStatus, Backend, Clock, Duration, Error, MockClock, WorkUnitMeta,
    WorkUnitQuery, WorkUnitStatus,
};

mod common {
    pub mod chaining;
    pub mod gone;
    pub mod scheduling;
}

use common::chaining::chained_specs;
use common::gone::gone;
use common::scheduling::{request, unit_names};

#[tokio::test]
async fn smoke_lifecycle_through_every_index() {
    let clock = MockClock::new();
    let backend = MemoryBackend::with_clock(clock.clone());
    let ns = backend.namespace("n").await.unwrap();
    let (spec, next) = chained_specs(&ns, "s", "t").await;
    for (name, prio) in [("b", 0.0), ("a", 0.0), ("c", 5.0)] {
        spec.add_work_unit(name, data!({}), WorkUnitMeta::with_priority(prio))
            .await
            .unwrap();
    }
    let worker = ns.worker("w").await.unwrap();
    let got = request(&worker, AttemptRequest::units(2)).await;
    let names = unit_names(&got);
    assert_eq!(names, ["c", "a"]);
    let counts = spec.count_work_unit_status().await.unwrap();
    assert_eq!(counts[&WorkUnitStatus::Pending], 2);
    assert_eq!(counts[&WorkUnitStatus::Available], 1);

    got[0]
        .finish(Some(data!({"output": ["x", ["y", {"k": 1}]]})))
        .await
        .unwrap();
    assert_eq!(
        next.work_units(&WorkUnitQuery::all()).await.unwrap().len(),
        2
    );
    got[1].retry(None, Duration::seconds(60)).await.unwrap();
    assert_eq!(
        got[1].work_unit().status().await.unwrap(),
        WorkUnitStatus::Delayed
    );
    clock.advance(Duration::seconds(60));
    assert_eq!(
        got[1].work_unit().status().await.unwrap(),
        WorkUnitStatus::Available
    );

    let again = request(&worker, AttemptRequest::units(5)).await;
    assert_eq!(again.len(), 2);
    clock.advance(Duration::minutes(16));
    assert_eq!(again[0].status().await.unwrap(), AttemptStatus::Expired);
    assert_eq!(again[0].finish(None).await, Err(Error::NotPending));
    assert!(worker.active_attempts().await.unwrap().is_empty());
    let meta = spec.meta(true).await.unwrap();
    assert_eq!((meta.available_count, meta.pending_count), (2, 0));

    assert_eq!(
        spec.delete_work_units(&WorkUnitQuery::all()).await.unwrap(),
        3
    );
    assert_eq!(again[0].status().await, Err(gone(ObjectKind::Attempt)));
    assert!(spec.count_work_unit_status().await.unwrap().is_empty());
    ns.destroy().await.unwrap();
    assert_eq!(
        spec.meta(false).await.unwrap_err(),
        gone(ObjectKind::WorkSpec)
    );
}

/// Specs are found by hash, yet every summary lists its records sorted
/// (namespace, spec, status), as PostgreSQL's do.
#[tokio::test]
async fn summaries_come_sorted() {
    let clock = MockClock::new();
    let backend = MemoryBackend::with_clock(clock.clone());
    for ns_name in ["n2", "n1"] {
        let ns = backend.namespace(ns_name).await.unwrap();
        for i in (0..20).rev() {
            let spec = ns
                .set_work_spec(data!({"name": format!("s{i:02}")}))
                .await
                .unwrap();
            spec.add_work_unit("u", data!({}), WorkUnitMeta::default())
                .await
                .unwrap();
            let later = WorkUnitMeta {
                not_before: Some(clock.now() + Duration::hours(1)),
                ..WorkUnitMeta::default()
            };
            spec.add_work_unit("v", data!({}), later).await.unwrap();
        }
    }
    let all = backend.summarize().await.unwrap();
    assert_eq!(all.len(), 80);
    let mut sorted = all.clone();
    sorted.sort();
    assert_eq!(all, sorted);
    let one = backend
        .namespace("n2")
        .await
        .unwrap()
        .summarize()
        .await
        .unwrap();
    assert_eq!(one.len(), 40);
    assert!(one.windows(2).all(|w| w[0] < w[1]), "{one:?}");
}
