//! The whole conformance suite over HTTP: `RestBackend` against an
//! in-process `coordinated` serving a `MemoryBackend`, plain and with
//! `Cache` in front of the client. The server reads the scenario's mock
//! clock, so expiry and delays are driven exactly as in-process.
//!
//! Handles over the REST API name objects by URL, and URLs by name, so both
//! stacks follow the name-identity rule of the suite. A parent in another
//! namespace goes by URL (the `parent_url` extension of a worker `PUT`).

use std::sync::Arc;

use coordinate::memory::MemoryBackend;
use coordinate::{Backend, MockClock};
use tokio::sync::oneshot;

mod support;

/// Keeps the server running; dropping it shuts the server down.
struct Server {
    _stop: oneshot::Sender<()>,
}

/// Serves a memory backend on the scenario's clock; answers the base URL.
async fn start(clock: &MockClock) -> (String, Server) {
    let backend: Arc<dyn Backend> = Arc::new(MemoryBackend::with_clock(clock.clone()));
    let app = coordinated::router(backend, &coordinated::ServerOptions::default());
    let (url, stop) = support::in_process::serve(app).await;
    (format!("{url}/"), Server { _stop: stop })
}

/// A client of a fresh server.
async fn client(clock: &MockClock) -> (coordinate::rest::client::RestBackend, Server) {
    let (url, server) = start(clock).await;
    let rest = coordinate::rest::client::RestBackend::connect(url)
        .await
        .unwrap_or_else(|e| panic!("cannot connect to the in-process server: {e}"));
    (rest, server)
}

mod rest {
    use std::sync::Arc;

    use coordinate::conformance::TestBackend;
    use coordinate::MockClock;

    coordinate::conformance_tests!(|| async {
        let clock = MockClock::new();
        let (rest, server) = super::client(&clock).await;
        TestBackend::name_identity(Arc::new(rest), clock).with_guard(server)
    });
}

/// What a worker process runs: `Cache<RestBackend>`.
mod cached_rest {
    use std::sync::Arc;

    use coordinate::cache::Cache;
    use coordinate::conformance::TestBackend;
    use coordinate::MockClock;

    coordinate::conformance_tests!(|| async {
        let clock = MockClock::new();
        let (rest, server) = super::client(&clock).await;
        TestBackend::name_identity(Arc::new(Cache::new(rest)), clock).with_guard(server)
    });
}
