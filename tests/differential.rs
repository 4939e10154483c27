//! The differential test of `tests/common/differential.rs`: `Cache` over
//! the reference backend, `PostgresBackend`, and `Cache` over
//! `PostgresBackend`, each against a plain `MemoryBackend`.
#![cfg(feature = "testing")]

use coordinate::cache::Cache;
use coordinate::memory::MemoryBackend;
use coordinate::postgres::testing::TestCluster;
use coordinate::MockClock;
use proptest::prelude::*;

mod common {
    pub mod differential;
    pub mod random_ops;
}

use common::differential::{case, compare, config};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

proptest! {
    #![proptest_config(config(40))]

    #[test]
    fn cache_over_memory_matches_the_reference_backend((start, ops) in case()) {
        runtime().block_on(async {
            let clock = MockClock::starting_at(start);
            let cached = Cache::new(MemoryBackend::with_clock(clock.clone()));
            compare(&ops, &cached, clock).await;
        });
    }

    #[test]
    fn postgres_matches_the_reference_backend((start, ops) in case()) {
        runtime().block_on(async {
            let clock = MockClock::starting_at(start);
            let (postgres, _lease) = TestCluster::shared_or_panic()
                .lease_backend(clock.clone())
                .await
                .unwrap();
            compare(&ops, &postgres, clock).await;
        });
    }

    #[test]
    fn cache_over_postgres_matches_the_reference_backend((start, ops) in case()) {
        runtime().block_on(async {
            let clock = MockClock::starting_at(start);
            let (postgres, _lease) = TestCluster::shared_or_panic()
                .lease_backend(clock.clone())
                .await
                .unwrap();
            compare(&ops, &Cache::new(postgres), clock).await;
        });
    }
}
