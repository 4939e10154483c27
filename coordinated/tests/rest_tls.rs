//! `RestBackend` over `https`: the server's certificate is checked against
//! the system's authorities, or those given, and the host name.

mod support;

use std::sync::Arc;

use coordinate::cache::Cache;
use coordinate::error::error_chain;
use coordinate::memory::MemoryBackend;
use coordinate::rest::client::{is_server_failure, RestBackend, RootCertificatesError};
use coordinate::{data, Backend, BackendExt, Error, WorkUnitMeta};
use support::tls::{front, TlsFront};
use support::Server;

/// `coordinated` over memory in this process, behind an `https` front.
async fn https_server() -> (TlsFront, tokio::sync::oneshot::Sender<()>) {
    let backend: Arc<dyn Backend> = Arc::new(MemoryBackend::new());
    let router = coordinated::router(backend, &coordinated::ServerOptions::default());
    let (plain, stop) = support::in_process::serve(router).await;
    let upstream = plain
        .trim_start_matches("http://")
        .parse()
        .expect("an address");
    (front(upstream).await, stop)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_works_through_an_https_server() -> coordinate::Result<()> {
    let (server, _stop) = https_server().await;
    let rest = RestBackend::builder(format!("https://localhost:{}/", server.port))
        .root_certificates(&server.authority)
        .connect()
        .await?;
    let cached = Cache::new(rest);
    let spec = cached
        .namespace("n")
        .await?
        .set_work_spec(data!({"name": "s"}))
        .await?;
    spec.add_work_unit("u", data!({"k": 1}), WorkUnitMeta::default())
        .await?;
    let unit = cached.work_unit_at("n", "s", "u").await?;
    assert_eq!(unit.data().await?, data!({"k": 1}));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_of_an_authority_not_trusted_is_refused() {
    let (server, _stop) = https_server().await;
    let error = RestBackend::connect(format!("https://localhost:{}/", server.port))
        .await
        .expect_err("an authority nobody trusts");
    assert!(
        error_chain(&error).contains("UnknownIssuer"),
        "{}",
        error_chain(&error)
    );
    // As a server that cannot be reached: worth trying again later, once
    // its certificate is put right.
    assert!(is_server_failure(&error));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_for_another_host_is_refused() {
    let (server, _stop) = https_server().await;
    // The certificate names `localhost`, not the address.
    let error = RestBackend::builder(format!("https://127.0.0.1:{}/", server.port))
        .root_certificates(&server.authority)
        .connect()
        .await
        .expect_err("a certificate for another name");
    assert!(
        error_chain(&error).contains("not valid for name"),
        "{}",
        error_chain(&error)
    );
}

#[tokio::test]
async fn root_certificates_that_are_not_pem_are_refused_before_any_request() {
    for pem in ["", "not a certificate"] {
        let error = RestBackend::builder("https://localhost:1/")
            .root_certificates(pem)
            .connect()
            .await
            .expect_err(pem);
        let Error::Backend(source) = &error else {
            panic!("{error:?}")
        };
        assert!(
            source.downcast_ref::<RootCertificatesError>().is_some(),
            "{error:?}"
        );
    }
}

/// A proxy trusts the authorities of `SSL_CERT_FILE` in place of the
/// system's, as every `RestBackend` does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_proxy_serves_an_https_server_whose_authority_is_in_ssl_cert_file() {
    let upstream = Server::start(&[]);
    let front = front(upstream.addr).await;
    let dir = std::env::temp_dir().join(format!("coordinated-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a directory");
    let authority = dir.join("authority.pem");
    std::fs::write(&authority, &front.authority).expect("the authority's file");
    let base = format!("https://localhost:{}/", front.port);
    let authority_file = authority.display().to_string();

    let proxy = tokio::task::spawn_blocking(move || {
        Server::start_with_env(&["--backend", &base], &[("SSL_CERT_FILE", &authority_file)])
    })
    .await
    .expect("the proxy");
    let made = tokio::task::spawn_blocking(move || {
        let made = proxy.send_json(
            "POST",
            "/namespace/p/work_spec",
            r#"{"data": {"name": "s"}}"#,
        );
        (
            made.status,
            made.text(),
            upstream.get("/namespace/p/work_spec/s").status,
        )
    })
    .await
    .expect("the requests");
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(made.0, 201, "{}", made.1);
    assert_eq!(made.2, 200, "the spec is the upstream server's");
}
