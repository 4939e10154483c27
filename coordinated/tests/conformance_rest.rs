//! The whole conformance suite over HTTP: `RestBackend` against an
//! in-process `coordinated` serving a `MemoryBackend`, plain and with
//! `Cache` in front of the client. The server reads the scenario's mock
//! clock, so expiry and delays are driven exactly as in-process.
//!
//! Handles over the REST API name objects by URL, and URLs by name, so both
//! stacks follow the name-identity rule of the suite. A parent in another
//! namespace goes by URL (the `parent_url` extension of a worker `PUT`).

use std::sync::Arc;
use std::time::Duration;

use coordinate::memory::MemoryBackend;
use coordinate::{Backend, MockClock};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

/// Keeps the server running; dropping it shuts the server down.
struct Server {
    _stop: oneshot::Sender<()>,
}

/// Serves a memory backend on the scenario's clock; answers the base URL.
async fn start(clock: &MockClock) -> (String, Server) {
    let backend: Arc<dyn Backend> = Arc::new(MemoryBackend::with_clock(clock.clone()));
    let app = coordinated::router(backend, &coordinated::ServerOptions::default());
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap_or_else(|e| panic!("cannot listen on 127.0.0.1: {e}"));
    let addr = listener
        .local_addr()
        .unwrap_or_else(|e| panic!("no local address: {e}"));
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(async move {
        let shutdown = async move {
            let _ = stopped.await;
        };
        if let Err(e) = coordinated::serve(listener, app, shutdown, Duration::from_secs(5)).await {
            panic!("server failed: {e}");
        }
    });
    (format!("http://{addr}/"), Server { _stop: stop })
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
