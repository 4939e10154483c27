//! What TLS adds to a request to `coordinated`: a work spec's document
//! read over a kept-alive connection, and over a new connection each time
//! (a TCP connect and, with TLS, a handshake), over `http` and over
//! `https` (TLS 1.3, the server's certificate checked), by a `reqwest`
//! client in this process from a server in this process (memory backend,
//! cache on). A new `https` connection resumes the session of an earlier
//! one (no certificate sent or checked), as `reqwest`, and so
//! `RestBackend`, does by default; `full_handshake` makes every one a full
//! handshake, as a client's first is. Compare the two schemes of one kind
//! as a ratio.
//!
//! Run: `cargo bench -p coordinated --bench https`.

#[path = "../tests/support/mod.rs"]
mod support;

use std::net::SocketAddr;
use std::sync::Arc;

use coordinate::cache::Cache;
use coordinate::memory::MemoryBackend;
use coordinate::{data, Backend};
use coordinated::{ConnectionOptions, ServerOptions};
use criterion::{criterion_group, criterion_main, Criterion};
use support::tls::Certificates;
use tokio_rustls::rustls::client::Resumption;
use tokio_rustls::rustls::ClientConfig;

/// A server over memory, cache on, holding work spec `s` of namespace
/// `n`: its address.
async fn server(options: ConnectionOptions) -> SocketAddr {
    let backend = Cache::new(MemoryBackend::new());
    backend
        .namespace("n")
        .await
        .expect("a namespace")
        .set_work_spec(data!({"name": "s"}))
        .await
        .expect("a work spec");
    let backend: Arc<dyn Backend> = Arc::new(backend);
    let router = coordinated::router(backend, &ServerOptions::default());
    let (url, stop) = support::in_process::serve_with(router, options).await;
    // Served as long as the bench runs.
    std::mem::forget(stop);
    let address = url.rsplit("://").next().expect("an address");
    address.parse().expect("an address")
}

/// How a client connects.
#[derive(Clone, Copy)]
enum Connection {
    /// One connection, kept alive.
    KeptAlive,
    /// A new connection for each request, resuming an earlier TLS session.
    New,
    /// A new connection for each request, with a full TLS handshake.
    FullHandshake,
}

/// A client of `localhost` at `address` that trusts `certificates`'
/// authority, connecting as `connection` says.
fn client(
    address: SocketAddr,
    certificates: &Certificates,
    connection: Connection,
) -> reqwest::Client {
    let builder = reqwest::Client::builder().resolve("localhost", address);
    let builder = match connection {
        Connection::KeptAlive => builder,
        Connection::New | Connection::FullHandshake => builder.pool_max_idle_per_host(0),
    };
    let builder = match connection {
        Connection::KeptAlive | Connection::New => builder.add_root_certificate(
            reqwest::Certificate::from_pem(certificates.authority.as_bytes())
                .expect("the authority"),
        ),
        Connection::FullHandshake => {
            builder.use_preconfigured_tls(without_resumption(certificates))
        }
    };
    builder.build().expect("a client")
}

/// A TLS client configuration that trusts `certificates`' authority and
/// never resumes a session.
fn without_resumption(certificates: &Certificates) -> ClientConfig {
    let mut config = certificates.client_config();
    config.resumption = Resumption::disabled();
    config
}

fn bench(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let certificates = Certificates::new();
    let tls = ConnectionOptions {
        tls: Some(certificates.server_tls()),
        ..ConnectionOptions::default()
    };
    let plain = runtime.block_on(server(ConnectionOptions::default()));
    let secured = runtime.block_on(server(tls));
    let mut group = c.benchmark_group("https");
    for (name, connection) in [
        ("kept_alive", Connection::KeptAlive),
        ("new_connection", Connection::New),
        ("new_connection_full_handshake", Connection::FullHandshake),
    ] {
        for (scheme, address) in [("http", plain), ("https", secured)] {
            let client = client(address, &certificates, connection);
            let url = format!(
                "{scheme}://localhost:{}/namespace/n/work_spec/s",
                address.port()
            );
            group.bench_function(format!("{name}/{scheme}"), |b| {
                b.to_async(&runtime).iter(|| async {
                    let response = client.get(&url).send().await.expect("an answer");
                    assert!(response.status().is_success(), "{}", response.status());
                    response.bytes().await.expect("a body")
                });
            });
        }
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
