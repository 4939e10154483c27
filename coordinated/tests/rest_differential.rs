//! The library's differential test (`tests/common/differential.rs`) over
//! HTTP: `RestBackend` and `Cache<RestBackend>` against an in-process
//! `coordinated` over a `MemoryBackend`, and `RestBackend` against one over
//! `Cache<PostgresBackend>` as deployed, each against a plain
//! `MemoryBackend`. The server reads the case's mock clock.

use std::sync::Arc;

use coordinate::cache::Cache;
use coordinate::memory::MemoryBackend;
use coordinate::postgres::testing::TestCluster;
use coordinate::rest::client::RestBackend;
use coordinate::{Backend, MockClock};
use proptest::prelude::*;
use tokio::sync::oneshot;

mod support;

#[path = "../../tests/common/random_ops.rs"]
mod random_ops;

#[path = "../../tests/common/differential.rs"]
mod differential;

use differential::{block_on, case, compare, config};

/// A client of a fresh in-process server over `backend`, and the sender
/// whose drop stops the server.
async fn client(backend: Arc<dyn Backend>) -> (RestBackend, oneshot::Sender<()>) {
    let app = coordinated::router(backend, &coordinated::ServerOptions::default());
    let (url, stop) = support::in_process::serve(app).await;
    let rest = RestBackend::connect(format!("{url}/"))
        .await
        .unwrap_or_else(|e| panic!("cannot connect to the in-process server: {e}"));
    (rest, stop)
}

proptest! {
    #![proptest_config(config(40))]

    #[test]
    fn rest_matches_the_reference_backend((start, ops) in case()) {
        block_on(async {
            let clock = MockClock::starting_at(start);
            let (rest, _server) = client(Arc::new(MemoryBackend::with_clock(clock.clone()))).await;
            compare(&ops, &rest, clock).await;
        });
    }

    #[test]
    fn cached_rest_matches_the_reference_backend((start, ops) in case()) {
        block_on(async {
            let clock = MockClock::starting_at(start);
            let (rest, _server) = client(Arc::new(MemoryBackend::with_clock(clock.clone()))).await;
            compare(&ops, &Cache::new(rest), clock).await;
        });
    }
}

proptest! {
    // Fewer cases: each answer crosses HTTP and PostgreSQL, and the
    // library's own test already runs PostgreSQL's with more.
    #![proptest_config(config(16))]

    #[test]
    fn rest_over_cached_postgres_matches_the_reference_backend((start, ops) in case()) {
        block_on(async {
            let clock = MockClock::starting_at(start);
            let (postgres, _lease) = TestCluster::shared_or_panic()
                .lease_backend(clock.clone())
                .await
                .unwrap();
            let (rest, _server) = client(Arc::new(Cache::new(postgres))).await;
            compare(&ops, &rest, clock).await;
        });
    }
}
