//! TLS to PostgreSQL, as the connection string's `sslmode`,
//! `sslrootcert`, `sslcert` and `sslkey` ask: against a cluster of its own
//! that listens on loopback TCP with TLS on, showing a certificate for
//! `localhost` signed by a test authority (and, for client certificates,
//! another that requires them).
#![cfg(feature = "testing")]

use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Duration as StdDuration;

use coordinate::error::error_chain;
use coordinate::feed::ChangeEvent;
use coordinate::postgres::testing::TestCluster;
use coordinate::postgres::{PostgresBackend, PostgresError};
use coordinate::{Backend, Error};

mod common {
    pub mod fixture;
    pub mod tls_authority;
}

use common::fixture::spec_with_unit;
use common::tls_authority::{authority, cluster_with_tls, LocalhostCertificate};
use rcgen::KeyPair;

/// The cluster, and the files of the authority that signed its certificate
/// and of another.
struct Tls {
    cluster: TestCluster,
    signer: PathBuf,
    stranger: PathBuf,
}

fn tls() -> &'static Tls {
    static TLS: OnceLock<Tls> = OnceLock::new();
    TLS.get_or_init(|| {
        let (cluster, signer) = cluster_with_tls();
        // In the cluster's directory, removed with it.
        let dir = cluster.dir().expect("a cluster of ours").to_owned();
        let write = |name: &str, pem: &str| {
            let path = dir.join(name);
            std::fs::write(&path, pem).expect("an authority's file");
            path
        };
        Tls {
            signer: write("signer.pem", &signer),
            stranger: write("stranger.pem", &authority("another authority").0.pem()),
            cluster,
        }
    })
}

/// A fresh database's URL over TCP to `host`, with `options` (`k=v&…`).
async fn url(host: &str, options: &str) -> String {
    let tls = tls();
    let db = tls
        .cluster
        .fresh_database()
        .await
        .unwrap_or_else(|e| panic!("no fresh database: {e}"));
    let port = tls.cluster.tcp_port().expect("a TCP port");
    format!("postgres://postgres@{host}:{port}/{db}?{options}")
}

/// The database a URL of [`url`] names.
fn database(url: &str) -> &str {
    let path = url.rsplit_once('/').map_or("", |(_, path)| path);
    path.split('?').next().unwrap_or(path)
}

async fn connect(url: &str) -> coordinate::Result<PostgresBackend> {
    PostgresBackend::builder(url)
        .connect_timeout(StdDuration::from_secs(10))
        .build()
        .await
}

/// A plain session on the cluster's administrative database, over its
/// unix socket.
async fn admin() -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(tls().cluster.url(), tokio_postgres::NoTls)
        .await
        .expect("an admin session");
    tokio::spawn(connection);
    client
}

/// Whether the session of process `pid` is encrypted.
async fn encrypted(admin: &tokio_postgres::Client, pid: i32) -> bool {
    admin
        .query_one("SELECT ssl FROM pg_stat_ssl WHERE pid = $1", &[&pid])
        .await
        .expect("the session's TLS state")
        .get(0)
}

/// The TCP sessions of the database `url` names, and how many of them
/// are encrypted.
async fn tcp_sessions(admin: &tokio_postgres::Client, url: &str) -> (i64, i64) {
    let db = database(url);
    let row = admin
        .query_one(
            "SELECT count(*), count(*) FILTER (WHERE s.ssl)
             FROM pg_stat_activity a JOIN pg_stat_ssl s USING (pid)
             WHERE a.datname = $1 AND a.client_addr IS NOT NULL",
            &[&db],
        )
        .await
        .expect("the sessions");
    (row.get(0), row.get(1))
}

/// Whether `result` failed on the server's certificate.
fn refused_certificate<T>(result: coordinate::Result<T>) -> bool {
    match result {
        Ok(_) => false,
        Err(e) => {
            let text = format!("{e}");
            assert!(text.contains("certificate"), "{text}");
            true
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_over_tcp_are_encrypted_unless_disabled() -> coordinate::Result<()> {
    let admin = admin().await;
    for (options, encrypted) in [
        ("", true),
        ("sslmode=prefer", true),
        ("sslmode=require", true),
        ("sslmode=disable", false),
    ] {
        let url = url("localhost", options).await;
        let backend = connect(&url).await?;
        spec_with_unit(&backend).await?;
        let (sessions, with_tls) = tcp_sessions(&admin, &url).await;
        assert!(sessions > 0, "{options:?}: no session");
        let expected = if encrypted { sessions } else { 0 };
        assert_eq!(with_tls, expected, "{options:?}: of {sessions} sessions");
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_verify_modes_check_the_authority_and_the_host() -> coordinate::Result<()> {
    let Tls {
        signer, stranger, ..
    } = tls();
    let (signer, stranger) = (signer.display(), stranger.display());

    let full = url(
        "localhost",
        &format!("sslmode=verify-full&sslrootcert={signer}"),
    )
    .await;
    connect(&full).await?;
    // The certificate names `localhost`, not the address.
    let by_address = url(
        "127.0.0.1",
        &format!("sslmode=verify-full&sslrootcert={signer}"),
    )
    .await;
    assert!(refused_certificate(connect(&by_address).await));
    let ca_only = url(
        "127.0.0.1",
        &format!("sslmode=verify-ca&sslrootcert={signer}"),
    )
    .await;
    connect(&ca_only).await?;

    // Signed by an authority not trusted.
    for mode in ["verify-full", "verify-ca", "require", "prefer"] {
        let url = url(
            "localhost",
            &format!("sslmode={mode}&sslrootcert={stranger}"),
        )
        .await;
        assert!(refused_certificate(connect(&url).await), "{mode}");
    }
    // Without `sslrootcert`, `require` encrypts without authenticating.
    connect(&url("localhost", "sslmode=require").await).await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_change_feed_listens_over_tls() -> coordinate::Result<()> {
    let url = url(
        "localhost",
        &format!("sslmode=verify-full&sslrootcert={}", tls().signer.display()),
    )
    .await;
    let (one, two) = (connect(&url).await?, connect(&url).await?);
    let feed = one.change_feed().expect("a feed");
    let mut events = feed.subscribe().await?;
    let pid = one.feed_listener_pid().await.expect("a listening session");
    assert!(encrypted(&admin().await, pid).await);

    two.namespace("n").await?.destroy().await?;
    let event = tokio::time::timeout(StdDuration::from_secs(5), events.recv())
        .await
        .expect("an event in time")
        .expect("no gap");
    assert!(
        matches!(&event, ChangeEvent::NamespaceDestroyed { namespace } if namespace == "n"),
        "{event:?}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_statement_given_up_is_cancelled_over_tls() -> coordinate::Result<()> {
    let url = url("localhost", "sslmode=require").await;
    let backend = connect(&url).await?;
    let unit = spec_with_unit(&backend).await?.work_unit("u").await?;
    let (locker, connection) = tokio_postgres::connect(
        &tls().cluster.database_url(database(&url)),
        tokio_postgres::NoTls,
    )
    .await
    .map_err(Error::backend)?;
    tokio::spawn(connection);
    locker
        .batch_execute("BEGIN; LOCK TABLE work_unit IN ACCESS EXCLUSIVE MODE")
        .await
        .map_err(Error::backend)?;

    let given_up =
        tokio::time::timeout(StdDuration::from_millis(200), unit.set_priority(5.0)).await;
    assert!(given_up.is_err(), "the change finished under the lock");
    let mut cancelled = 0;
    for _ in 0..500 {
        cancelled = backend.pool_status().cancelled;
        if cancelled > 0 {
            break;
        }
        tokio::time::sleep(StdDuration::from_millis(10)).await;
    }
    assert_eq!(cancelled, 1, "no cancel request reached the server");
    locker
        .batch_execute("COMMIT")
        .await
        .map_err(Error::backend)?;
    assert_eq!(
        unit.priority().await?,
        0.0,
        "the cancelled change was applied"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_settings_that_cannot_be_used_are_refused_before_connecting() {
    let missing = std::env::temp_dir().join("coordinate-tls-no-such-file.pem");
    let not_pem = std::env::temp_dir().join(format!("coordinate-tls-{}.txt", std::process::id()));
    std::fs::write(&not_pem, "not a certificate\n").expect("a file");
    for (conninfo, says) in [
        ("host=h sslmode=verify-full".to_owned(), "needs sslrootcert"),
        (
            "host=h sslmode=allow".to_owned(),
            "sslmode=allow is not supported",
        ),
        (
            format!("host=h sslmode=verify-ca sslrootcert={}", missing.display()),
            "coordinate-tls-no-such-file.pem",
        ),
        (
            format!("postgres://h/d?sslrootcert={}", not_pem.display()),
            "holds no PEM certificate",
        ),
        ("host=h sslrootcert=system".to_owned(), "system's store"),
        (
            format!("host=h sslcert={}", not_pem.display()),
            "sslcert needs sslkey",
        ),
        (
            format!("host=h sslkey={}", not_pem.display()),
            "sslkey needs sslcert",
        ),
        (
            format!(
                "host=h sslcert={} sslkey={}",
                missing.display(),
                not_pem.display()
            ),
            "coordinate-tls-no-such-file.pem",
        ),
        (
            format!(
                "host=h sslcert={} sslkey={}",
                not_pem.display(),
                not_pem.display()
            ),
            "holds no PEM certificate",
        ),
    ] {
        let error = PostgresBackend::builder(&conninfo)
            .build()
            .await
            .expect_err(&conninfo);
        let Error::Backend(source) = &error else {
            panic!("{conninfo}: {error:?}")
        };
        assert!(
            matches!(source.downcast_ref(), Some(PostgresError::Tls(_))),
            "{conninfo}: {error:?}"
        );
        assert!(error.to_string().contains(says), "{conninfo}: {error}");
    }
    let _ = std::fs::remove_file(not_pem);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_by_address_is_checked_against_the_name_beside_it() -> coordinate::Result<()> {
    let url = url("localhost", "").await;
    let db = database(&url);
    let port = tls().cluster.tcp_port().expect("a TCP port");
    let signer = tls().signer.display();
    let by_address = |options: String| {
        format!("hostaddr=127.0.0.1 port={port} user=postgres dbname={db} {options}")
    };
    connect(&by_address(format!(
        "host=localhost sslmode=verify-full sslrootcert={signer}"
    )))
    .await?;
    let named_otherwise = by_address(format!(
        "host=db.invalid sslmode=verify-full sslrootcert={signer}"
    ));
    assert!(refused_certificate(connect(&named_otherwise).await));
    Ok(())
}

/// A certificate for the user `postgres` (`cert` authentication: its
/// name is the user's) that `authority` signs, with `serial`; and its
/// private key. In PEM.
fn client_certificate(authority: &(rcgen::Certificate, KeyPair), serial: u64) -> (String, String) {
    let key = KeyPair::generate().expect("a key");
    let mut params = rcgen::CertificateParams::default();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "postgres");
    params.serial_number = Some(serial.into());
    let certificate = params
        .signed_by(&key, &authority.0, &authority.1)
        .expect("a client certificate");
    (certificate.pem(), key.serialize_pem())
}

/// A cluster that admits TCP clients only with a certificate
/// `client_authority` signs, the URL of a fresh database on it
/// (`verify-full`, no client certificate yet), and the database's name.
async fn cluster_requiring_client_certificates(
    client_authority: &rcgen::Certificate,
) -> (TestCluster, String, String) {
    let server = LocalhostCertificate::new();
    let cluster = TestCluster::start_requiring_client_certificates(
        &server.certificate,
        &server.key,
        &client_authority.pem(),
    )
    .unwrap_or_else(|e| panic!("no cluster: {e}"));
    let root = cluster.dir().expect("a cluster of ours").join("root.pem");
    std::fs::write(&root, &server.authority).expect("the server's authority");
    let db = cluster
        .fresh_database()
        .await
        .unwrap_or_else(|e| panic!("no fresh database: {e}"));
    let port = cluster.tcp_port().expect("a TCP port");
    let url = format!(
        "postgres://postgres@localhost:{port}/{db}?sslmode=verify-full&sslrootcert={}",
        root.display()
    );
    (cluster, url, db)
}

/// `sslcert` and `sslkey`: a cluster that admits TCP clients only with a
/// certificate of its client authority (`cert` authentication) admits the
/// backend's sessions, its change feed's among them, with the one they
/// name, and no session without it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_certificate_is_shown_by_every_session() -> coordinate::Result<()> {
    let client_authority = authority("coordinate test client authority");
    let (cluster, base, _) = cluster_requiring_client_certificates(&client_authority.0).await;
    let dir = cluster.dir().expect("a cluster of ours").to_owned();
    let write = |name: &str, pem: &str| {
        let path = dir.join(name);
        std::fs::write(&path, pem).expect("a file");
        path.display().to_string()
    };
    let (client, client_key) = client_certificate(&client_authority, 1);
    let cert = write("client.crt", &client);
    let key = write("client.key", &client_key);

    let error = connect(&base)
        .await
        .expect_err("a session without a certificate");
    assert!(
        error_chain(&error).contains("certificate"),
        "{}",
        error_chain(&error)
    );

    let url = format!("{base}&sslcert={cert}&sslkey={key}");
    let (one, two) = (connect(&url).await?, connect(&url).await?);
    let mut events = one.change_feed().expect("a feed").subscribe().await?;
    spec_with_unit(&two).await?;
    two.namespace("n").await?.destroy().await?;
    let destroyed = tokio::time::timeout(StdDuration::from_secs(10), async {
        loop {
            match events.recv().await {
                Ok(ChangeEvent::NamespaceDestroyed { namespace }) if namespace == "n" => break,
                Ok(_) => {}
                Err(gap) => panic!("a gap in the feed: {gap:?}"),
            }
        }
    })
    .await;
    assert!(destroyed.is_ok(), "no event through the listening session");
    Ok(())
}

/// The files are read for every new session, as libpq reads them: a
/// renewed client certificate is shown by the sessions made after it, and
/// files that cannot be used at that moment leave the ones before in use.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_renewed_client_certificate_is_shown_by_sessions_made_after_it() -> coordinate::Result<()>
{
    let client_authority = authority("coordinate test client authority");
    let (cluster, base, db) = cluster_requiring_client_certificates(&client_authority.0).await;
    let dir = cluster.dir().expect("a cluster of ours");
    let (cert, key) = (dir.join("renewed.crt"), dir.join("renewed.key"));
    let issue = |serial| {
        let (certificate, private_key) = client_certificate(&client_authority, serial);
        std::fs::write(&cert, certificate).expect("the certificate");
        std::fs::write(&key, private_key).expect("its key");
    };
    issue(1);
    let url = format!("{base}&sslcert={}&sslkey={}", cert.display(), key.display());
    let backend = PostgresBackend::builder(&url)
        .max_connections(1)
        .connect_timeout(StdDuration::from_secs(10))
        .build()
        .await?;
    spec_with_unit(&backend).await?;
    let (admin, connection) = tokio_postgres::connect(cluster.url(), tokio_postgres::NoTls)
        .await
        .expect("an admin session");
    tokio::spawn(connection);
    let db = db.as_str();
    assert_eq!(client_serials(&admin, db).await, ["1"]);

    issue(2);
    // The session open keeps the certificate it showed.
    backend.namespace("n").await?;
    assert_eq!(client_serials(&admin, db).await, ["1"]);
    reconnect(&admin, db, &backend).await;
    assert_eq!(client_serials(&admin, db).await, ["2"]);

    std::fs::write(&key, "half a key").expect("a broken key file");
    reconnect(&admin, db, &backend).await;
    assert_eq!(client_serials(&admin, db).await, ["2"]);
    Ok(())
}

/// The serial numbers of the certificates the sessions of database `db`
/// showed, in order, once each.
async fn client_serials(admin: &tokio_postgres::Client, db: &str) -> Vec<String> {
    let rows = admin
        .query(
            "SELECT DISTINCT s.client_serial::text FROM pg_stat_ssl s \
             JOIN pg_stat_activity a USING (pid) WHERE a.datname = $1 ORDER BY 1",
            &[&db],
        )
        .await
        .expect("the sessions' certificates");
    rows.iter().map(|row| row.get(0)).collect()
}

/// Ends the sessions of database `db`, and waits until `backend` has made
/// a new one.
async fn reconnect(admin: &tokio_postgres::Client, db: &str, backend: &PostgresBackend) {
    admin
        .execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE datname = $1 AND pid <> pg_backend_pid()",
            &[&db],
        )
        .await
        .expect("sessions ended");
    // The pool finds its connection closed on its next checkout, or the
    // call on it fails; the next call makes a new one.
    for _ in 0..100 {
        if backend.namespace("n").await.is_ok() {
            return;
        }
        tokio::time::sleep(StdDuration::from_millis(50)).await;
    }
    panic!("no new session");
}
