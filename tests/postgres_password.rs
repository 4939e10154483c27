//! A password the connection string leaves out, found in the password
//! file its `passfile` names, against a cluster of its own that asks every
//! user but its superuser `postgres` for one.
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
}

use common::fixture::spec_with_unit;

fn cluster() -> &'static TestCluster {
    static CLUSTER: OnceLock<TestCluster> = OnceLock::new();
    CLUSTER
        .get_or_init(|| TestCluster::start_requiring_passwords().unwrap_or_else(|e| panic!("{e}")))
}

/// Makes `user` a superuser who logs in with `password`; answers the
/// connection string of a fresh database as that user, without it.
async fn user_with_password(user: &str, password: &str) -> String {
    let cluster = cluster();
    let db = cluster
        .fresh_database()
        .await
        .unwrap_or_else(|e| panic!("no fresh database: {e}"));
    // The names and passwords are the tests' own, quoted as literals.
    admin()
        .await
        .batch_execute(&format!(
            "CREATE ROLE {user} LOGIN SUPERUSER PASSWORD '{}'",
            password.replace('\'', "''")
        ))
        .await
        .expect("a user with a password");
    format!("{} user={user} dbname={db}", cluster.url())
}

/// A password file of `lines` in the cluster's directory, only its owner
/// may read.
fn password_file(name: &str, lines: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let path = cluster().dir().expect("a cluster of ours").join(name);
    std::fs::write(&path, lines).expect("write the password file");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).expect("owner only");
    path
}

/// The line of the cluster's socket directory: the file names a socket
/// outside the default directories by its path.
fn line(user: &str, password: &str) -> String {
    let socket = cluster()
        .dir()
        .expect("a cluster of ours")
        .display()
        .to_string();
    format!("{socket}:5432:*:{user}:{password}\n")
}

async fn connect(conninfo: &str) -> coordinate::Result<PostgresBackend> {
    PostgresBackend::builder(conninfo)
        .connect_timeout(StdDuration::from_secs(10))
        .build()
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_password_file_the_string_names_logs_in() -> coordinate::Result<()> {
    let conninfo = user_with_password("from_file", "pass:word\\here").await;
    let file = password_file(
        "from_file.pgpass",
        &format!(
            "# first the wrong one for another user\n{}{}",
            line("someone_else", "wrong"),
            line("from_file", "pass\\:word\\\\here")
        ),
    );
    let conninfo = format!("{conninfo} passfile={}", file.display());
    let backend = connect(&conninfo).await?;
    spec_with_unit(&backend).await?;
    let names: Vec<String> = backend.namespaces().await?.into_keys().collect();
    assert_eq!(names, ["n"]);
    // The change feed's own session logs in with it too.
    let mut events = backend.change_feed().expect("a feed").subscribe().await?;
    connect(&conninfo)
        .await?
        .namespace("n")
        .await?
        .destroy()
        .await?;
    let destroyed = async {
        loop {
            match events.recv().await {
                Ok(ChangeEvent::NamespaceDestroyed { namespace }) => break namespace,
                Ok(_) => {}
                Err(gap) => panic!("{gap:?}"),
            }
        }
    };
    let namespace = tokio::time::timeout(StdDuration::from_secs(5), destroyed)
        .await
        .expect("the event in time");
    assert_eq!(namespace, "n");
    Ok(())
}

#[tokio::test]
async fn without_the_password_the_server_refuses() {
    let conninfo = user_with_password("refused", "right").await;
    let missing = format!("{conninfo} passfile=/no/such/pgpass");
    let wrong = password_file("refused.pgpass", &line("refused", "wrong"));
    let wrong = format!("{conninfo} passfile={}", wrong.display());
    for conninfo in [missing, wrong] {
        let error = connect(&conninfo).await.expect_err(&conninfo);
        assert!(
            matches!(&error, Error::Backend(source)
                if matches!(source.downcast_ref::<PostgresError>(), Some(PostgresError::Connect(_)))),
            "{error:?}"
        );
        assert!(
            error_chain(&error).contains("password"),
            "{}",
            error_chain(&error)
        );
    }
}

#[tokio::test]
async fn a_password_given_comes_before_the_file() -> coordinate::Result<()> {
    let conninfo = user_with_password("given", "it's-this").await;
    let file = password_file("given.pgpass", &line("given", "not-this"));
    let backend = connect(&format!(
        "{conninfo} password='it\\'s-this' passfile={}",
        file.display()
    ))
    .await?;
    spec_with_unit(&backend).await?;
    Ok(())
}

/// The password file is read for every new session, as libpq reads it: a
/// password changed in the database and the file is used by the sessions
/// made after it, without a restart.
#[tokio::test]
async fn a_changed_password_is_used_by_sessions_made_after_it() -> coordinate::Result<()> {
    let conninfo = user_with_password("rotated", "first").await;
    let file = password_file("rotated.pgpass", &line("rotated", "first"));
    let backend = one_session(&format!("{conninfo} passfile={}", file.display())).await?;
    spec_with_unit(&backend).await?;
    admin()
        .await
        .batch_execute("ALTER ROLE rotated PASSWORD 'second'")
        .await
        .expect("a new password");
    password_file("rotated.pgpass", &line("rotated", "second"));
    end_sessions_of("rotated").await;
    assert_eq!(next_session(&backend).await, None);
    Ok(())
}

/// A file that gives no password at the moment a session is made (being
/// rewritten, or briefly open to others) leaves the last one found in use.
#[tokio::test]
async fn a_file_giving_no_password_for_a_moment_leaves_the_last_one_in_use(
) -> coordinate::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let conninfo = user_with_password("halfway", "secret").await;
    let file = password_file("halfway.pgpass", &line("halfway", "secret"));
    let backend = one_session(&format!("{conninfo} passfile={}", file.display())).await?;
    spec_with_unit(&backend).await?;

    password_file("halfway.pgpass", "");
    end_sessions_of("halfway").await;
    assert_eq!(next_session(&backend).await, None, "an empty file");

    password_file("halfway.pgpass", &line("halfway", "secret"));
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).expect("open");
    end_sessions_of("halfway").await;
    assert_eq!(next_session(&backend).await, None, "a file open to others");
    Ok(())
}

/// The builder's database, not the string's, is the one the password is
/// looked up for.
#[tokio::test]
async fn the_password_is_the_one_for_the_builders_database() -> coordinate::Result<()> {
    let conninfo = user_with_password("elsewhere", "secret").await;
    let other = cluster()
        .fresh_database()
        .await
        .unwrap_or_else(|e| panic!("no fresh database: {e}"));
    let socket = cluster()
        .dir()
        .expect("a cluster of ours")
        .display()
        .to_string();
    let file = password_file(
        "elsewhere.pgpass",
        &format!("{socket}:5432:{other}:elsewhere:secret\n"),
    );
    let backend = PostgresBackend::builder(&format!("{conninfo} passfile={}", file.display()))
        .database(&other)
        .connect_timeout(StdDuration::from_secs(10))
        .build()
        .await?;
    spec_with_unit(&backend).await?;
    Ok(())
}

/// A backend over a pool of one session.
async fn one_session(conninfo: &str) -> coordinate::Result<PostgresBackend> {
    PostgresBackend::builder(conninfo)
        .max_connections(1)
        .connect_timeout(StdDuration::from_secs(10))
        .build()
        .await
}

/// A session of the cluster's superuser.
async fn admin() -> tokio_postgres::Client {
    let (admin, connection) = tokio_postgres::connect(cluster().url(), tokio_postgres::NoTls)
        .await
        .expect("an admin session");
    tokio::spawn(connection);
    admin
}

/// Ends the sessions of `user`.
async fn end_sessions_of(user: &str) {
    admin()
        .await
        .execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1",
            &[&user],
        )
        .await
        .expect("the sessions ended");
}

/// `None` once `backend` has made a new session and used it; else the
/// last error, after a few seconds of tries. The pool finds its connection
/// closed on its next checkout, or the call on it fails; the next call
/// makes a new one.
async fn next_session(backend: &PostgresBackend) -> Option<String> {
    let mut last = None;
    for _ in 0..60 {
        match backend.namespace("n").await {
            Ok(_) => return None,
            Err(error) => last = Some(error_chain(&error)),
        }
        tokio::time::sleep(StdDuration::from_millis(50)).await;
    }
    last
}
