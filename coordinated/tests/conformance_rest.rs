//! The whole conformance suite over HTTP: `RestBackend` against an
//! in-process `coordinated`, plain and with `Cache` in front of the client.
//! The server serves a `MemoryBackend`, or, as deployed, `Cache` over a
//! `PostgresBackend` on a database leased from the crate's throwaway
//! cluster. The server reads the scenario's mock clock, so expiry and
//! delays are driven exactly as in-process. One more stack strips the
//! server's attempt names, as other servers of the API send none, so the
//! client's way of following attempt links runs every scenario too; and one
//! puts a proxy between client and server, a server whose backend is the
//! client of another.
//!
//! Handles over the REST API name objects by URL, and URLs by name, so both
//! stacks follow the name-identity rule of the suite. A parent in another
//! namespace goes by URL (the `parent_url` extension of a worker `PUT`).

use std::sync::Arc;

use std::any::Any;

use coordinate::cache::Cache;
use coordinate::memory::MemoryBackend;
use coordinate::postgres::testing::TestCluster;
use coordinate::{Backend, MockClock};
use tokio::sync::oneshot;

mod support;

/// Keeps the server running; dropping it shuts the server down.
struct Server {
    _stop: oneshot::Sender<()>,
}

/// Serves `backend`; answers the base URL.
async fn start(backend: Arc<dyn Backend>) -> (String, Server) {
    let app = coordinated::router(backend, &coordinated::ServerOptions::default());
    let (url, stop) = support::in_process::serve(app).await;
    (format!("{url}/"), Server { _stop: stop })
}

/// A client of a fresh server over `backend`.
async fn client(backend: Arc<dyn Backend>) -> (coordinate::rest::client::RestBackend, Server) {
    let (url, server) = start(backend).await;
    let rest = coordinate::rest::client::RestBackend::connect(url)
        .await
        .unwrap_or_else(|e| panic!("cannot connect to the in-process server: {e}"));
    (rest, server)
}

/// A client of a fresh server over a memory backend on `clock`.
async fn memory_client(clock: &MockClock) -> (coordinate::rest::client::RestBackend, Server) {
    client(Arc::new(MemoryBackend::with_clock(clock.clone()))).await
}

/// A client of a fresh server over a memory backend on `clock` whose
/// documents lack this server's extensions (attempt names, the select
/// URL), as other servers' do.
async fn plain_client(clock: &MockClock) -> (coordinate::rest::client::RestBackend, Server) {
    let backend: Arc<dyn Backend> = Arc::new(MemoryBackend::with_clock(clock.clone()));
    let app = coordinated::router(backend, &coordinated::ServerOptions::default());
    let (url, stop) = support::in_process::serve(support::plain::without_extensions(app)).await;
    let rest = coordinate::rest::client::RestBackend::connect(format!("{url}/"))
        .await
        .unwrap_or_else(|e| panic!("cannot connect to the in-process server: {e}"));
    (rest, Server { _stop: stop })
}

/// A client of a fresh server over `Cache<PostgresBackend>` on `clock`, a
/// database of its own, and what keeps both alive (server first).
async fn postgres_client(
    clock: &MockClock,
) -> (
    coordinate::rest::client::RestBackend,
    impl Any + Send + Sync,
) {
    let cluster = TestCluster::shared().unwrap_or_else(|e| panic!("{e}"));
    let (backend, lease) = cluster
        .lease_backend(clock.clone())
        .await
        .unwrap_or_else(|e| panic!("cannot make a PostgreSQL backend: {e}"));
    let (rest, server) = client(Arc::new(Cache::new(backend))).await;
    (rest, (server, lease))
}

/// A client of a proxy: a fresh server over `Cache<RestBackend>`, the
/// client of a fresh server over a memory backend on `clock`, as
/// `coordinated --backend http://…` serves another server of the API.
async fn proxy_client(
    clock: &MockClock,
) -> (
    coordinate::rest::client::RestBackend,
    impl Any + Send + Sync,
) {
    let (upstream, behind) = memory_client(clock).await;
    let (rest, proxy) = client(Arc::new(Cache::new(upstream))).await;
    (rest, (proxy, behind))
}

/// The conformance suite as module `$module`, against the client
/// `$client` makes, wrapped in `$wrap`.
macro_rules! suite {
    ($(#[$doc:meta])* $module:ident: $client:ident, $wrap:expr) => {
        $(#[$doc])*
        mod $module {
            use std::sync::Arc;

            use coordinate::conformance::TestBackend;
            use coordinate::MockClock;

            coordinate::conformance_tests!(|| async {
                let clock = MockClock::new();
                let (rest, guard) = super::$client(&clock).await;
                TestBackend::name_identity(Arc::new($wrap(rest)), clock).with_guard(guard)
            });
        }
    };
}

suite!(rest: memory_client, std::convert::identity);

suite!(
    /// What a worker process runs: `Cache<RestBackend>`.
    cached_rest: memory_client,
    coordinate::cache::Cache::new
);

suite!(
    /// `RestBackend` against a server without this server's extensions,
    /// as the API's other servers: handles come from following the
    /// attempts' links, and long queries go in parts.
    rest_plain: plain_client,
    std::convert::identity
);

suite!(
    /// `RestBackend` against a server deployed as `coordinated` runs it:
    /// `Cache<PostgresBackend>` behind the HTTP API.
    rest_postgres: postgres_client,
    std::convert::identity
);

suite!(
    /// A worker process's `Cache<RestBackend>` against that server.
    cached_rest_postgres: postgres_client,
    coordinate::cache::Cache::new
);

suite!(
    /// `RestBackend` against a proxy: a server whose backend is another
    /// server of the API, through `Cache<RestBackend>`.
    rest_proxy: proxy_client,
    std::convert::identity
);
