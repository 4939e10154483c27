//! HTTPS on both sides: `coordinated` serving TLS with the certificate it
//! is given, and `RestBackend` checking a server's certificate against the
//! system's authorities, or those given, and the host name.

mod support;

use std::sync::Arc;
use std::time::Duration;

use coordinate::cache::Cache;
use coordinate::error::error_chain;
use coordinate::memory::MemoryBackend;
use coordinate::rest::client::{
    is_server_failure, IdentityError, RestBackend, RootCertificatesError,
};
use coordinate::{data, Backend, BackendExt, Error, WorkUnitMeta};
use coordinated::ConnectionOptions;
use support::tls::{Certificates, Scratch};
use support::Server;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::oneshot;

/// `coordinated` over memory in this process, serving `https` with a
/// certificate for `localhost`: the certificates, its port and its stop.
async fn https_server(options: ConnectionOptions) -> (Certificates, u16, oneshot::Sender<()>) {
    let certificates = Certificates::new();
    let options = ConnectionOptions {
        tls: Some(certificates.server_tls()),
        ..options
    };
    let backend: Arc<dyn Backend> = Arc::new(MemoryBackend::new());
    let router = coordinated::router(backend, &coordinated::ServerOptions::default());
    let (url, stop) = support::in_process::serve_with(router, options).await;
    let port = url
        .strip_prefix("https://127.0.0.1:")
        .and_then(|port| port.parse().ok())
        .unwrap_or_else(|| panic!("an https URL: {url}"));
    (certificates, port, stop)
}

/// A client of `localhost:port` that trusts `certificates`' authority.
async fn client(certificates: &Certificates, port: u16) -> coordinate::Result<RestBackend> {
    RestBackend::builder(format!("https://localhost:{port}/"))
        .root_certificates(&certificates.authority)
        .connect()
        .await
}

/// Whether `error` is [`Error::Backend`] of an `E`.
fn is_backend_error<E: std::error::Error + 'static>(error: &Error) -> bool {
    matches!(error, Error::Backend(source) if source.downcast_ref::<E>().is_some())
}

/// Whether the server closes `stream` within `limit`, reading (and
/// dropping) whatever it sends first.
async fn closed_within(stream: &mut TcpStream, limit: Duration) -> bool {
    let mut buffer = [0; 1024];
    tokio::time::timeout(limit, async {
        while matches!(stream.read(&mut buffer).await, Ok(read) if read > 0) {}
    })
    .await
    .is_ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_works_through_an_https_server() -> coordinate::Result<()> {
    let (certificates, port, _stop) = https_server(ConnectionOptions::default()).await;
    let cached = Cache::new(client(&certificates, port).await?);
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
    let (_, port, _stop) = https_server(ConnectionOptions::default()).await;
    let error = RestBackend::connect(format!("https://localhost:{port}/"))
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
    let (certificates, port, _stop) = https_server(ConnectionOptions::default()).await;
    // The certificate names `localhost`, not the address.
    let error = RestBackend::builder(format!("https://127.0.0.1:{port}/"))
        .root_certificates(&certificates.authority)
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
        assert!(
            is_backend_error::<RootCertificatesError>(&error),
            "{error:?}"
        );
    }
}

/// Makes spec `s` of namespace `p` through the proxy `proxy` (off the
/// runtime's threads: its client blocks), which must answer `201`.
async fn spec_made_through(proxy: Server) {
    let made = tokio::task::spawn_blocking(move || {
        proxy.send_json(
            "POST",
            "/namespace/p/work_spec",
            r#"{"data": {"name": "s"}}"#,
        )
    })
    .await
    .expect("the request");
    assert_eq!(made.status, 201, "{}", made.text());
}

/// The binary serves `https` with `--tls-cert` and `--tls-key`, and a
/// proxy in front of it trusts the authorities of `SSL_CERT_FILE` in place
/// of the system's, as every `RestBackend` does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_proxy_serves_an_https_server_whose_authority_is_in_ssl_cert_file() {
    let scratch = Scratch::new("tls-proxy");
    let certificates = Certificates::new();
    let (certificate, key) = certificates.write_server_files(&scratch.0);
    let authority = scratch.0.join("authority.pem");
    std::fs::write(&authority, &certificates.authority).expect("the authority's file");
    let (upstream, proxy) = tokio::task::spawn_blocking(move || {
        let upstream = Server::start(&[
            "--tls-cert",
            &certificate.display().to_string(),
            "--tls-key",
            &key.display().to_string(),
        ]);
        let base = format!("https://localhost:{}/", upstream.addr.port());
        let proxy = Server::start_with_env(
            &["--backend", &base],
            &[("SSL_CERT_FILE", &authority.display().to_string())],
        );
        (upstream, proxy)
    })
    .await
    .expect("the servers");
    spec_made_through(proxy).await;
    let specs = client(&certificates, upstream.addr.port())
        .await
        .expect("a client of the upstream server")
        .namespace("p")
        .await
        .expect("the namespace")
        .work_spec_names()
        .await
        .expect("its specs");
    assert_eq!(specs, ["s"], "the spec is the upstream server's");
}

/// On `SIGHUP` the binary reads its certificate and key again: new
/// connections are served with the new certificate, one kept alive keeps
/// the old, and files it cannot use leave the certificate before in use.
#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_serves_the_certificate_in_the_files_now() {
    let scratch = Scratch::new("tls-reload");
    let first = Certificates::new();
    let (certificate, key) = first.write_server_files(&scratch.0);
    let flags = [certificate.clone(), key.clone()].map(|path| path.display().to_string());
    let server = tokio::task::spawn_blocking(move || {
        Server::start(&["--tls-cert", &flags[0], "--tls-key", &flags[1]])
    })
    .await
    .expect("the server");
    let port = server.addr.port();
    let kept_alive = client(&first, port).await.expect("served with the first");

    // Serves `certificates`' certificate, once a reload has read it.
    let serves = |certificates: Certificates| async move {
        for _ in 0..500 {
            if client(&certificates, port).await.is_ok() {
                return certificates;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("the new certificate is not served");
    };
    let second = Certificates::new();
    second.write_server_files(&scratch.0);
    server.signal("HUP");
    let second = serves(second).await;
    // Its authority has the first's name, but not its key.
    let error = client(&first, port).await.expect_err("the old certificate");
    assert!(error_chain(&error).contains("BadSignature"), "{error}");
    kept_alive
        .namespace("n")
        .await
        .expect("a connection open keeps its certificate");

    // A key that is not the certificate's is not used; the loop serves on.
    std::fs::write(&key, Certificates::new().key).expect("a wrong key");
    server.signal("HUP");
    tokio::time::sleep(Duration::from_millis(200)).await;
    client(&second, port).await.expect("the certificate before");
    let third = Certificates::new();
    third.write_server_files(&scratch.0);
    server.signal("HUP");
    let third = serves(third).await;
    let metrics = https_get(&third, port, "/metrics").await;
    for counted in [
        r#"coordinated_tls_reloads_total{outcome="used"} 2"#,
        r#"coordinated_tls_reloads_total{outcome="refused"} 1"#,
    ] {
        assert!(metrics.contains(counted), "{counted} in {metrics}");
    }
    drop(server);
}

/// The answer to `GET path` from `localhost:port` over TLS, trusting
/// `certificates`' authority, as text.
async fn https_get(certificates: &Certificates, port: u16, path: &str) -> String {
    let connector = tokio_rustls::TlsConnector::from(Arc::new(certificates.client_config()));
    let socket = TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("a connection");
    let name = "localhost".try_into().expect("a server name");
    let mut stream = connector.connect(name, socket).await.expect("a handshake");
    let request = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.expect("sent");
    let mut answer = Vec::new();
    // The server may close without a TLS close_notify: what came is kept.
    let _ = stream.read_to_end(&mut answer).await;
    String::from_utf8_lossy(&answer).into_owned()
}

/// A `SIGHUP` while the server starts (here, while its backend keeps it
/// waiting) does not stop it: the signal is listened for from the start.
#[cfg(unix)]
#[test]
fn sighup_while_starting_does_not_stop_the_server() {
    use std::os::unix::process::ExitStatusExt;
    let scratch = Scratch::new("tls-reload-start");
    let (certificate, key) = Certificates::new().write_server_files(&scratch.0);
    // A backend that accepts the connection and says nothing.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").expect("a listener");
    let backend = format!("http://{}/", silent.local_addr().expect("its address"));
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_coordinated"))
        .args(["--http", "127.0.0.1:0", "--backend", &backend])
        .arg("--tls-cert")
        .arg(&certificate)
        .arg("--tls-key")
        .arg(&key)
        .env("RUST_LOG", "off")
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("start coordinated");
    let (connection, _) = silent.accept().expect("the server connects");
    let status = std::process::Command::new("sh")
        .args(["-c", "kill -s HUP \"$0\"", &child.id().to_string()])
        .status()
        .expect("run sh");
    assert!(status.success());
    std::thread::sleep(Duration::from_millis(200));
    // The backend goes away unanswered: the server stops on that.
    drop((connection, silent));
    let exited = child.wait().expect("exited");
    assert_eq!(exited.signal(), None, "{exited}");
    assert_eq!(exited.code(), Some(1), "{exited}");
}

#[test]
fn the_binary_refuses_a_certificate_without_its_key_and_files_it_cannot_use() {
    let scratch = Scratch::new("tls-flags");
    let certificates = Certificates::new();
    let (certificate, key) = certificates.write_server_files(&scratch.0);
    let certificate = certificate.display().to_string();
    let key = key.display().to_string();
    let missing = scratch.0.join("missing.pem").display().to_string();
    let run = |args: &[&str]| {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_coordinated"))
            .args(["--http", "127.0.0.1:0"])
            .args(args)
            .env("RUST_LOG", "error")
            .output()
            .expect("run coordinated");
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        (output.status.code(), stderr)
    };
    // One without the other is a usage error, as the parser's others.
    for args in [["--tls-cert", &certificate], ["--tls-key", &key]] {
        let (code, stderr) = run(&args);
        assert_eq!(code, Some(2), "{stderr}");
    }
    // Files it cannot use stop it before it listens, naming the file.
    let (code, stderr) = run(&["--tls-cert", &missing, "--tls-key", &key]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains(&missing), "{stderr}");
    let (code, stderr) = run(&["--tls-cert", &key, "--tls-key", &key]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("no PEM certificate"), "{stderr}");
    let (code, stderr) = run(&["--tls-cert", &certificate, "--tls-key", &certificate]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("no PEM private key"), "{stderr}");
    // Client authorities need a certificate of the server's own.
    let (code, stderr) = run(&["--tls-client-ca", &certificate]);
    assert_eq!(code, Some(2), "{stderr}");
    let with_client_authorities = |authorities: &str| {
        run(&[
            "--tls-cert",
            &certificate,
            "--tls-key",
            &key,
            "--tls-client-ca",
            authorities,
        ])
    };
    let (code, stderr) = with_client_authorities(&key);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("holds no PEM certificate"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plain_request_to_an_https_server_is_closed_and_the_server_serves_on() {
    let (certificates, port, _stop) = https_server(ConnectionOptions::default()).await;
    let mut plain = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    plain
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .unwrap();
    assert!(closed_within(&mut plain, Duration::from_secs(10)).await);
    let namespaces = client(&certificates, port)
        .await
        .expect("a client")
        .namespaces()
        .await
        .expect("the namespaces");
    assert!(namespaces.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_never_finishes_its_handshake_is_closed_after_the_idle_timeout() {
    let idle_timeout = Duration::from_millis(300);
    let options = ConnectionOptions {
        idle_timeout,
        ..ConnectionOptions::default()
    };
    let (_, port, _stop) = https_server(options).await;
    let mut silent = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    // The first bytes of a ClientHello, and no more.
    let mut trickling = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    trickling
        .write_all(&[0x16, 0x03, 0x01, 0x02])
        .await
        .unwrap();
    for stream in [&mut silent, &mut trickling] {
        assert!(closed_within(stream, Duration::from_secs(10)).await);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_closes_a_connection_part_way_through_its_handshake() {
    let certificates = Certificates::new();
    let options = ConnectionOptions {
        tls: Some(certificates.server_tls()),
        shutdown_deadline: Duration::from_secs(60),
        idle_timeout: Duration::from_secs(60),
        ..ConnectionOptions::default()
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let router = coordinated::router(
        Arc::new(MemoryBackend::new()),
        &coordinated::ServerOptions::default(),
    );
    let (stop, stopped) = oneshot::channel::<()>();
    let serving = tokio::spawn(coordinated::serve(
        listener,
        router,
        async move {
            let _ = stopped.await;
        },
        options,
    ));
    let mut silent = TcpStream::connect(addr).await.unwrap();
    // Served: its connection's task has begun the handshake.
    let served = client(&certificates, addr.port()).await.expect("a client");
    served.namespaces().await.expect("the namespaces");
    drop(served);
    let _ = stop.send(());
    let ended = tokio::time::timeout(Duration::from_secs(10), serving).await;
    assert!(
        matches!(ended, Ok(Ok(Ok(())))),
        "the server waits for a handshake: {ended:?}"
    );
    assert!(closed_within(&mut silent, Duration::from_secs(1)).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_in_its_handshake_is_closed_for_a_client_waiting_at_the_bound() {
    let options = ConnectionOptions {
        max_connections: 1,
        idle_timeout: Duration::from_secs(60),
        ..ConnectionOptions::default()
    };
    let (certificates, port, _stop) = https_server(options).await;
    let mut silent = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let namespaces = tokio::time::timeout(Duration::from_secs(20), async {
        client(&certificates, port).await?.namespaces().await
    })
    .await
    .expect("served once the silent connection is closed for it");
    assert!(namespaces.expect("the namespaces").is_empty());
    assert!(closed_within(&mut silent, Duration::from_secs(1)).await);
}

/// The binary serving `certificates` in `scratch`, admitting only clients
/// whose certificate a new authority signed; the identity (certificate and
/// key) of one.
async fn requiring_client_certificates(
    scratch: &Scratch,
    certificates: &Certificates,
) -> (Server, String) {
    let (certificate, key) = certificates.write_server_files(&scratch.0);
    let (client_authority, identity) = support::tls::client_identity("worker-1");
    let client_authorities = scratch.0.join("clients.pem");
    std::fs::write(&client_authorities, client_authority).expect("the authorities' file");
    let server = tokio::task::spawn_blocking(move || {
        Server::start(&[
            "--tls-cert",
            &certificate.display().to_string(),
            "--tls-key",
            &key.display().to_string(),
            "--tls-client-ca",
            &client_authorities.display().to_string(),
        ])
    })
    .await
    .expect("the server");
    (server, identity)
}

/// `--tls-client-ca`: only clients whose certificate one of its
/// authorities signed complete their handshake.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_requiring_client_certificates_admits_only_those_its_authorities_signed() {
    let scratch = Scratch::new("tls-clients");
    let certificates = Certificates::new();
    let (server, identity) = requiring_client_certificates(&scratch, &certificates).await;
    let (_, stranger) = support::tls::client_identity("stranger");
    let base = format!("https://localhost:{}/", server.addr.port());
    let connect = |identity: Option<&str>| {
        let mut builder = RestBackend::builder(&base).root_certificates(&certificates.authority);
        if let Some(identity) = identity {
            builder = builder.identity(identity);
        }
        builder.connect()
    };

    let admitted = connect(Some(&identity)).await.expect("a client it admits");
    assert!(admitted
        .namespaces()
        .await
        .expect("the namespaces")
        .is_empty());
    // Under TLS 1.3 the client's side of the handshake ends before the
    // server refuses its certificate, so the refusal may reach the client
    // as its connection closing before the request went out, which says
    // nothing of why (a server failure, tried again); a later try reads the
    // server's alert.
    for (who, identity) in [("no certificate", None), ("a stranger", Some(&*stranger))] {
        let mut chains = Vec::new();
        for _ in 0..5 {
            let error = connect(identity).await.expect_err(who);
            assert!(matches!(error, Error::Backend(_)), "{who}: {error:?}");
            let chain = error_chain(&error);
            if chain.contains("received fatal alert") {
                // A setting to put right, not a server to wait for.
                assert!(!is_server_failure(&error), "{who}: {chain}");
                chains.clear();
                break;
            }
            chains.push(chain);
        }
        assert!(chains.is_empty(), "{who}: no alert in {chains:?}");
    }
}

#[tokio::test]
async fn an_identity_that_is_not_a_pem_certificate_and_key_is_refused_before_any_request() {
    let certificates = Certificates::new();
    let (_, identity) = support::tls::client_identity("worker-1");
    let another_key = Certificates::new().key;
    let mismatched = identity
        .split_inclusive("-----END CERTIFICATE-----\n")
        .next()
        .expect("the certificate")
        .to_owned()
        + &another_key;
    for pem in [
        "",
        "not an identity",
        &certificates.certificate,
        &certificates.key,
        &mismatched,
    ] {
        let error = RestBackend::builder("https://localhost:1/")
            .identity(pem)
            .connect()
            .await
            .expect_err(pem);
        assert!(is_backend_error::<IdentityError>(&error), "{error:?}");
    }
}

/// A proxy in front of a server requiring client certificates shows the
/// one `--backend-identity` holds, trusting `--backend-ca`'s authority;
/// without one, or with files it cannot read, it does not start.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_proxy_shows_its_backend_identity_to_a_server_requiring_one() {
    let scratch = Scratch::new("tls-proxy-identity");
    let certificates = Certificates::new();
    let (upstream, identity) = requiring_client_certificates(&scratch, &certificates).await;
    let authority = scratch.0.join("authority.pem");
    std::fs::write(&authority, &certificates.authority).expect("the authority's file");
    let identity_file = scratch.0.join("proxy-identity.pem");
    std::fs::write(&identity_file, identity).expect("the identity's file");
    let backend = format!("https://localhost:{}/", upstream.addr.port());
    let [authority, identity_file, missing] =
        [authority, identity_file, scratch.0.join("missing.pem")]
            .map(|path| path.display().to_string());

    let flags = [
        "--backend",
        &backend,
        "--backend-ca",
        &authority,
        "--backend-identity",
        &identity_file,
    ]
    .map(str::to_owned);
    let proxy =
        tokio::task::spawn_blocking(move || Server::start(&flags.each_ref().map(String::as_str)))
            .await
            .expect("the proxy");
    spec_made_through(proxy).await;

    // Its stderr, once it has stopped as it should: in a failure.
    let refused = |flags: Vec<&str>| {
        let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_coordinated"))
            .args(["--http", "127.0.0.1:0"])
            .args(flags)
            .env("RUST_LOG", "error")
            .kill_on_drop(true)
            .output();
        async {
            let output = tokio::time::timeout(Duration::from_secs(30), output)
                .await
                .expect("stopped")
                .expect("run coordinated");
            assert_eq!(output.status.code(), Some(1));
            String::from_utf8_lossy(&output.stderr).into_owned()
        }
    };
    let without_identity = refused(vec!["--backend", &backend, "--backend-ca", &authority]).await;
    // Refused in the handshake: the server's alert, or (TLS 1.3) the
    // connection closed before the request went out.
    assert!(without_identity.contains(&backend), "{without_identity}");
    let unreadable = refused(vec![
        "--backend",
        &backend,
        "--backend-ca",
        &authority,
        "--backend-identity",
        &missing,
    ])
    .await;
    assert!(unreadable.contains(&missing), "{unreadable}");
    let not_http = refused(vec!["--backend-ca", &authority]).await;
    assert!(not_http.contains("http(s)"), "{not_http}");
}
