//! `coordinated` over PostgreSQL (the crate's throwaway test cluster): many
//! requests whose clients hang up leave the pool idle, a request over its
//! timeout stops its work in the database, two servers over one
//! database see each other's deletes through the change feed, and the
//! database password is taken from the environment.

mod support;

use std::io::Write;
use std::net::TcpStream;
use std::time::{Duration, Instant};

use coordinate::postgres::testing::TestCluster;
use serde_json::json;
use support::postgres::fresh_database;
use support::{eventually, metric, request, Server};

/// Connections of database `name` that are not idle (running a statement or
/// holding a transaction open), and all of its connections.
fn activity(runtime: &tokio::runtime::Runtime, name: &str) -> (i64, i64) {
    let cluster = TestCluster::shared().expect("a PostgreSQL test cluster");
    runtime.block_on(async {
        let row = session(cluster.url())
            .await
            .query_one(
                "SELECT count(*) FILTER (WHERE state <> 'idle'), count(*) \
                 FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
                &[&name],
            )
            .await
            .expect("query pg_stat_activity");
        (row.get(0), row.get(1))
    })
}

/// A plain session on the server `url` names, its connection driven by a
/// task of its own until the session is dropped.
async fn session(url: &str) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .expect("a session");
    tokio::spawn(connection);
    client
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

/// Writes a whole request and hangs up without reading the answer, after
/// `linger` (so some requests are cut before, some during the backend work).
fn abort_request(server: &Server, raw: &str, linger: Duration) {
    let Ok(mut stream) = TcpStream::connect(server.addr) else {
        return;
    };
    let _ = stream.write_all(raw.as_bytes());
    std::thread::sleep(linger);
    drop(stream);
}

#[test]
fn aborted_requests_leave_the_pool_idle() {
    let rt = runtime();
    let (backend, name) = fresh_database(&rt);
    let server = Server::start(&[
        "--backend",
        &backend,
        "--cache",
        "off",
        "--postgres-max-connections",
        "4",
    ]);
    let spec = "/namespace/abort/work_spec/s";
    server.send_json(
        "POST",
        "/namespace/abort/work_spec",
        r#"{"data": {"name": "s"}}"#,
    );
    for i in 0..100 {
        let body = json!({"name": format!("u{i:03}"), "data": {"i": i}}).to_string();
        assert_eq!(
            server
                .send_json("POST", &format!("{spec}/work_unit"), &body)
                .status,
            201
        );
    }

    let post = |path: &str, body: &str| {
        format!(
            "POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
    };
    let requests = [
        format!("GET {spec}/work_unit HTTP/1.1\r\nHost: x\r\n\r\n"),
        "GET /summary HTTP/1.1\r\nHost: x\r\n\r\n".to_owned(),
        post(
            "/namespace/abort/worker/w/request_attempts",
            r#"{"number_of_work_units": 5, "lifetime": 60000000000}"#,
        ),
        post(&format!("{spec}/change"), r#"{"meta": {"priority": 2.0}}"#),
        format!("DELETE {spec}/work_unit?name=nobody HTTP/1.1\r\nHost: x\r\n\r\n"),
    ];
    std::thread::scope(|scope| {
        for t in 0..8u64 {
            let requests = &requests;
            let server = &server;
            scope.spawn(move || {
                for i in 0..40u64 {
                    let raw = &requests[((t + i) % requests.len() as u64) as usize];
                    abort_request(server, raw, Duration::from_micros((t * 7 + i * 13) % 3000));
                }
            });
        }
    });

    // Nothing is left running or holding a transaction, within the pool bound.
    // (A connection closed after a cancel may still be on its way out.)
    eventually(Duration::from_secs(10), || {
        let (busy, total) = activity(&rt, &name);
        (busy == 0 && total <= 4).then_some(())
    });
    // The server's own view of its pool says the same.
    let pool = |exposition: &str, name: &str| {
        metric(exposition, name).unwrap_or_else(|| panic!("no {name} in:\n{exposition}"))
    };
    let exposition = eventually(Duration::from_secs(10), || {
        let text = server.get("/metrics").text();
        let busy = pool(
            &text,
            r#"coordinate_postgres_pool_connections{state="busy"}"#,
        );
        (busy == 0.0 && pool(&text, "coordinate_postgres_pool_waiting") == 0.0).then_some(text)
    });
    let idle = pool(
        &exposition,
        r#"coordinate_postgres_pool_connections{state="idle"}"#,
    );
    assert!(idle <= 4.0, "{idle} idle connections");
    // Connections are closed only when a statement was cancelled on them.
    assert_eq!(
        pool(&exposition, "coordinate_postgres_connections_closed_total"),
        pool(
            &exposition,
            "coordinate_postgres_statements_cancelled_total"
        ),
        "{exposition}"
    );
    assert_eq!(
        pool(&exposition, "coordinate_postgres_pool_max_connections"),
        4.0
    );

    // And the server still answers, with every unit accounted for.
    let counts = server.get(&format!("{spec}/counts"));
    assert_eq!(counts.status, 200, "{}", counts.text());
    let total_units: u64 = counts
        .json()
        .as_object()
        .expect("counts object")
        .values()
        .map(|v| v.as_u64().unwrap_or(0))
        .sum();
    assert_eq!(total_units, 100);
    let work = server.send_json(
        "POST",
        "/namespace/abort/worker/w2/request_attempts",
        r#"{"number_of_work_units": 1}"#,
    );
    assert_eq!(work.status, 200, "{}", work.text());
    assert_eq!(server.get("/readyz").status, 200);
}

#[test]
fn a_request_over_its_timeout_stops_its_work_in_the_database() {
    let rt = runtime();
    let (backend, name) = fresh_database(&rt);
    // Long enough to resolve the names on a busy machine; the change waits
    // for the lock for ever.
    let server = Server::start(&["--backend", &backend, "--request-timeout", "2s"]);
    let spec = "/namespace/timeout/work_spec/s";
    server.send_json(
        "POST",
        "/namespace/timeout/work_spec",
        r#"{"data": {"name": "s"}}"#,
    );
    let unit = server.send_json(
        "POST",
        &format!("{spec}/work_unit"),
        r#"{"name": "u", "data": {}}"#,
    );
    assert_eq!(unit.status, 201, "{}", unit.text());

    // Another session holds the unit table, so a priority change waits.
    let cluster = TestCluster::shared().expect("a PostgreSQL test cluster");
    let admin = rt.block_on(async {
        let admin = session(&cluster.database_url(&name)).await;
        admin
            .batch_execute("BEGIN; LOCK TABLE work_unit IN ACCESS EXCLUSIVE MODE")
            .await
            .expect("lock the unit table");
        admin
    });
    let change = server.send_json(
        "POST",
        &format!("{spec}/change"),
        r#"{"meta": {"priority": 5.0}}"#,
    );
    assert_eq!(change.status, 503, "{}", change.text());

    // With the lock still held, the change stops waiting for it...
    let waiting = |admin: &tokio_postgres::Client| {
        rt.block_on(async {
            // In a transaction the server answers the first read's snapshot.
            admin
                .batch_execute("SELECT pg_stat_clear_snapshot()")
                .await
                .expect("clear the statistics snapshot");
            let row = admin
                .query_one(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() \
                     AND wait_event_type = 'Lock'",
                    &[],
                )
                .await
                .expect("query pg_stat_activity");
            row.get::<_, i64>(0)
        })
    };
    eventually(Duration::from_secs(10), || {
        (waiting(&admin) == 0).then_some(())
    });
    // The server counts the cancel, and closes the connection it was sent
    // for once idle.
    eventually(Duration::from_secs(10), || {
        let text = server.get("/metrics").text();
        let cancelled = metric(&text, "coordinate_postgres_statements_cancelled_total");
        let closed = metric(&text, "coordinate_postgres_connections_closed_total");
        (cancelled == Some(1.0) && closed == Some(1.0)).then_some(())
    });
    // ...and, the lock released, it never happens.
    rt.block_on(admin.batch_execute("COMMIT"))
        .expect("release the lock");
    let unit = server.get(&format!("{spec}/work_unit/u"));
    assert_eq!(unit.status, 200, "{}", unit.text());
    assert_eq!(unit.json()["meta"]["priority"], 0.0, "{}", unit.text());
}

/// How long B may take to subscribe to its feed and to apply an event
/// before the test fails: a liveness bound, far above what
/// `benches/feed_e2e.rs` measures, so a loaded machine cannot fail it.
const LIVENESS: Duration = Duration::from_secs(30);

#[test]
fn a_delete_through_one_server_reaches_the_other() {
    let rt = runtime();
    let (backend, _name) = fresh_database(&rt);
    let a = Server::start(&["--backend", &backend]);
    let b = Server::start(&["--backend", &backend]);
    let specs = "/namespace/feed/work_spec";
    let spec = "/namespace/feed/work_spec/s";
    assert_eq!(
        a.send_json("POST", specs, r#"{"data": {"name": "s"}}"#)
            .status,
        201
    );
    for unit in ["u1", "u2"] {
        let body = json!({"name": unit}).to_string();
        assert_eq!(
            a.send_json("POST", &format!("{spec}/work_unit"), &body)
                .status,
            201
        );
    }
    // B hears of deletes only once its feed listener is up, which a loaded
    // machine may delay past the server's start.
    eventually(LIVENESS, || {
        let metrics = b.get("/metrics").text();
        metrics
            .contains("coordinate_cache_feed_subscribed 1")
            .then_some(())
    });
    // B resolves (and caches) the names first.
    for path in [format!("{spec}/work_unit/u1"), spec.to_owned()] {
        assert_eq!(b.get(&path).status, 200, "{path}");
        assert_eq!(b.get(&path).status, 200, "{path}");
    }

    let deleted = request(
        a.addr,
        "DELETE",
        &format!("{spec}/work_unit?name=u1"),
        &[],
        None,
    );
    assert_eq!(deleted.json(), json!({"Deleted": 1}));
    // B's answer does not wait for its feed: a stale entry's read finds the
    // row gone, and B answers as for a name it never had.
    let gone = b.get(&format!("{spec}/work_unit/u1"));
    assert_eq!(gone.status, 400, "{}", gone.text());
    assert_eq!(gone.error_code(), "ErrNoSuchWorkUnit");

    let deleted = request(a.addr, "DELETE", spec, &[], None);
    assert_eq!(deleted.status, 204);
    let gone = b.get(spec);
    assert_eq!(gone.status, 404, "{}", gone.text());
    assert_eq!(gone.error_code(), "ErrNoSuchWorkSpec");

    // Both deletes reach B's cache as feed events. How soon is measured by
    // `benches/feed_e2e.rs`; here they only have to come.
    let since = Instant::now();
    let metrics = eventually(LIVENESS, || {
        let metrics = b.get("/metrics").text();
        let events = metric(&metrics, "coordinate_cache_feed_events_total").unwrap_or(0.0);
        (events >= 2.0).then_some(metrics)
    });
    eprintln!("B applied both events within {:?}", since.elapsed());
    assert!(
        metrics.contains("coordinate_cache_feed_subscribed 1"),
        "{metrics}"
    );
}

/// The database password stays off the command line, where every user of
/// the host can read it: the server finds it in `PGPASSWORD`, or in the
/// password file `PGPASSFILE` names, as libpq's programs do.
#[test]
fn the_database_password_comes_from_the_environment() {
    use std::os::unix::fs::PermissionsExt;
    let rt = runtime();
    let cluster =
        TestCluster::start_requiring_passwords().expect("a cluster that asks for passwords");
    let name = rt
        .block_on(cluster.fresh_database())
        .expect("a fresh database");
    rt.block_on(async {
        session(cluster.url())
            .await
            .batch_execute("CREATE ROLE app LOGIN SUPERUSER PASSWORD 'kept-secret'")
            .await
            .expect("a user with a password");
    });
    let dir = cluster.dir().expect("a cluster of ours");
    let file = dir.join("pgpass");
    std::fs::write(&file, format!("{}:5432:*:app:kept-secret\n", dir.display()))
        .expect("write the password file");
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).expect("owner only");
    let file = file.display().to_string();
    let backend = format!("postgres:{} user=app dbname={name}", cluster.url());
    for (variable, value) in [("PGPASSWORD", "kept-secret"), ("PGPASSFILE", &file)] {
        let server = Server::start_with_env(&["--backend", &backend], &[(variable, value)]);
        let made = server.send_json("POST", "/namespace", &json!({"name": variable}).to_string());
        assert_eq!(made.status, 201, "{variable}: {}", made.text());
    }
}
