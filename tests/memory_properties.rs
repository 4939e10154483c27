//! Random operation sequences against `MemoryBackend`.
//!
//! **Law:** whatever sequence of operations callers make — including bad
//! input, operations on deleted objects and arbitrary clock moves — the
//! backend never panics, and afterwards:
//!
//! 1. every unit's status agrees with its active attempt (Pending ⇔ a
//!    pending active attempt; Finished/Failed ⇔ a finished/failed one) and
//!    that attempt is one of the unit's own attempts;
//! 2. `count_work_unit_status`, `meta(true)` and `summarize` agree with the
//!    statuses of the units one by one;
//! 3. once an expiry check has run, a worker's active attempts are pending
//!    attempts of that worker, and every pending unit's active attempt is on
//!    its worker's active list.

use std::collections::BTreeMap;

use coordinate::memory::MemoryBackend;
use coordinate::{data, AttemptStatus, MockClock, WorkUnitQuery, WorkUnitStatus};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, RngSeed};

mod common {
    pub mod random_ops;
}

use common::random_ops::{apply, op, world, World};

async fn check_invariants(w: &World) {
    // Worker lists do not run expiry checks; summarizing the
    // namespace does, over every spec, so lists and statuses agree.
    w.ns.summarize().await.unwrap();
    let units = w.spec.work_units(&WorkUnitQuery::all()).await.unwrap();
    let mut by_status: BTreeMap<WorkUnitStatus, u64> = BTreeMap::new();
    for (name, unit) in &units {
        let status = unit.status().await.unwrap();
        *by_status.entry(status).or_default() += 1;
        let active = unit.active_attempt().await.unwrap();
        let active_status = match &active {
            Some(a) => Some(a.status().await.unwrap()),
            None => None,
        };
        let expected = match active_status {
            Some(AttemptStatus::Pending) => Some(WorkUnitStatus::Pending),
            Some(AttemptStatus::Finished) => Some(WorkUnitStatus::Finished),
            Some(AttemptStatus::Failed) => Some(WorkUnitStatus::Failed),
            Some(other) => panic!("unit {name}: active attempt is {other}"),
            None => None,
        };
        match expected {
            Some(s) => assert_eq!(status, s, "unit {name}"),
            None => assert!(
                matches!(status, WorkUnitStatus::Available | WorkUnitStatus::Delayed),
                "unit {name} has no active attempt but is {status}"
            ),
        }
        if let Some(a) = active {
            let history = unit.attempts().await.unwrap();
            let start = a.start_time().await.unwrap();
            let mut found = false;
            for h in &history {
                found |= h.start_time().await.unwrap() == start
                    && h.worker().name() == a.worker().name();
            }
            assert!(found, "unit {name}: active attempt not in its history");
            if status == WorkUnitStatus::Pending {
                let on_list = a.worker().active_attempts().await.unwrap();
                assert!(
                    on_list
                        .iter()
                        .any(|x| x.work_unit().name() == name.as_str()),
                    "unit {name}: pending attempt missing from its worker's active list"
                );
            }
        }
    }
    assert_eq!(w.spec.count_work_unit_status().await.unwrap(), by_status);
    let meta = w.spec.meta(true).await.unwrap();
    let count = |s| by_status.get(&s).copied().unwrap_or(0) as i64;
    assert_eq!(meta.available_count, count(WorkUnitStatus::Available));
    assert_eq!(meta.pending_count, count(WorkUnitStatus::Pending));
    let summary: BTreeMap<WorkUnitStatus, u64> = w
        .spec
        .summarize()
        .await
        .unwrap()
        .into_iter()
        .map(|r| (r.status, r.count))
        .collect();
    assert_eq!(summary, by_status);

    for worker in &w.workers {
        for a in worker.active_attempts().await.unwrap() {
            assert_eq!(a.worker().name(), worker.name());
            assert_eq!(a.status().await.unwrap(), AttemptStatus::Pending);
        }
    }
}

fn config() -> Config {
    Config {
        cases: 256,
        rng_algorithm: RngAlgorithm::ChaCha,
        rng_seed: RngSeed::Fixed(0xC00D),
        failure_persistence: None,
        ..Config::default()
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn random_operations_keep_invariants(ops in proptest::collection::vec(op(i8::MIN..=i8::MAX), 1..60)) {
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        rt.block_on(async {
            let clock = MockClock::new();
            let backend = MemoryBackend::with_clock(clock.clone());
            let mut w = world(&backend, clock, data!({"name": "next"})).await;
            for op in &ops {
                apply(&mut w, op).await;
                check_invariants(&w).await;
            }
        });
    }
}
