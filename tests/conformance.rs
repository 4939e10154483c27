//! The conformance suite (`coordinate::conformance`) against every backend:
//! one `#[tokio::test]` per scenario and backend module.

mod memory {
    use std::sync::Arc;

    use coordinate::conformance::{DeadLists, TestBackend};
    use coordinate::memory::MemoryBackend;
    use coordinate::{Backend, MockClock};

    coordinate::conformance_tests!(|| async {
        let clock = MockClock::new();
        let backend: Arc<dyn Backend> = Arc::new(MemoryBackend::with_clock(clock.clone()));
        TestBackend::object(backend, clock).with_dead_lists(DeadLists::Gone)
    });
}

/// `Cache` over the memory backend, with name identity: a cached handle
/// follows its name across delete-and-recreate.
mod cached_memory {
    use std::sync::Arc;

    use coordinate::cache::Cache;
    use coordinate::conformance::TestBackend;
    use coordinate::memory::MemoryBackend;
    use coordinate::{Backend, MockClock};

    coordinate::conformance_tests!(|| async {
        let clock = MockClock::new();
        let inner: Arc<dyn Backend> = Arc::new(MemoryBackend::with_clock(clock.clone()));
        TestBackend::name_identity(Arc::new(Cache::new(inner)), clock)
    });
}

/// A PostgreSQL backend on a database leased from the shared throwaway
/// cluster. No skipping inside the generated tests: without a server they
/// fail, saying how to install PostgreSQL.
#[cfg(feature = "testing")]
async fn leased_postgres(
    clock: coordinate::MockClock,
) -> (
    coordinate::postgres::PostgresBackend,
    coordinate::postgres::testing::DatabaseLease,
) {
    let cluster =
        coordinate::postgres::testing::TestCluster::shared().unwrap_or_else(|e| panic!("{e}"));
    cluster
        .lease_backend(clock)
        .await
        .unwrap_or_else(|e| panic!("cannot make a PostgreSQL backend: {e}"))
}

#[cfg(feature = "testing")]
mod postgres {
    use std::sync::Arc;

    use coordinate::conformance::TestBackend;
    use coordinate::MockClock;

    coordinate::conformance_tests!(|| async {
        let clock = MockClock::new();
        let (backend, lease) = super::leased_postgres(clock.clone()).await;
        TestBackend::object(Arc::new(backend), clock).with_guard(lease)
    });
}

#[cfg(feature = "testing")]
mod cached_postgres {
    use std::sync::Arc;

    use coordinate::cache::Cache;
    use coordinate::conformance::TestBackend;
    use coordinate::MockClock;

    coordinate::conformance_tests!(|| async {
        let clock = MockClock::new();
        let (backend, lease) = super::leased_postgres(clock.clone()).await;
        TestBackend::name_identity(Arc::new(Cache::new(backend)), clock).with_guard(lease)
    });
}
