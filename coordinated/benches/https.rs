//! What TLS adds to a request to `coordinated`: a work spec's document
//! read over a kept-alive connection, and over a new connection each time
//! (a TCP connect and, with TLS, a full handshake), over `http` and over
//! `https` (TLS 1.3, the server's certificate checked), by a `reqwest`
//! client in this process from a server in this process (memory backend,
//! cache on). Compare the two schemes of one kind as a ratio.
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

/// A client of `localhost` at `address` that trusts `certificates`'
/// authority; with a new connection for every request if `kept_alive` is
/// false.
fn client(address: SocketAddr, certificates: &Certificates, kept_alive: bool) -> reqwest::Client {
    let authority =
        reqwest::Certificate::from_pem(certificates.authority.as_bytes()).expect("the authority");
    let builder = reqwest::Client::builder()
        .resolve("localhost", address)
        .add_root_certificate(authority);
    let builder = if kept_alive {
        builder
    } else {
        builder.pool_max_idle_per_host(0)
    };
    builder.build().expect("a client")
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
    for (connection, kept_alive) in [("kept_alive", true), ("new_connection", false)] {
        for (scheme, address) in [("http", plain), ("https", secured)] {
            let client = client(address, &certificates, kept_alive);
            let url = format!(
                "{scheme}://localhost:{}/namespace/n/work_spec/s",
                address.port()
            );
            group.bench_function(format!("{connection}/{scheme}"), |b| {
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
