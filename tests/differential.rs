//! The differential test of `tests/common/differential.rs`: `Cache` over
//! the reference backend, `PostgresBackend`, and `Cache` over
//! `PostgresBackend`, each against a plain `MemoryBackend`.
#![cfg(feature = "testing")]

use coordinate::cache::Cache;
use coordinate::memory::MemoryBackend;
use coordinate::postgres::testing::{DatabaseLease, TestCluster};
use coordinate::postgres::PostgresBackend;
use coordinate::MockClock;
use proptest::prelude::*;

mod common {
    pub mod differential;
    pub mod random_ops;
}

use common::differential::{block_on, case, compare, config};

/// A backend on a database of its own (while the lease lives), on `clock`.
async fn postgres(clock: &MockClock) -> (PostgresBackend, DatabaseLease) {
    TestCluster::shared_or_panic()
        .lease_backend(clock.clone())
        .await
        .unwrap()
}

proptest! {
    #![proptest_config(config(40))]

    #[test]
    fn cache_over_memory_matches_the_reference_backend((start, ops) in case()) {
        block_on(async {
            let clock = MockClock::starting_at(start);
            let cached = Cache::new(MemoryBackend::with_clock(clock.clone()));
            compare(&ops, &cached, clock).await;
        });
    }

    #[test]
    fn postgres_matches_the_reference_backend((start, ops) in case()) {
        block_on(async {
            let clock = MockClock::starting_at(start);
            let (postgres, _lease) = postgres(&clock).await;
            compare(&ops, &postgres, clock).await;
        });
    }

    #[test]
    fn cache_over_postgres_matches_the_reference_backend((start, ops) in case()) {
        block_on(async {
            let clock = MockClock::starting_at(start);
            let (postgres, _lease) = postgres(&clock).await;
            compare(&ops, &Cache::new(postgres), clock).await;
        });
    }
}
