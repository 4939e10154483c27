//! A fresh database of the shared PostgreSQL test cluster, for the test
//! crates of the PostgreSQL backend: the job servers on it and a plain SQL
//! session beside them.

use coordinate::postgres::testing::TestCluster;
use coordinate::postgres::PostgresBackend;
use coordinate::MockClock;
use tokio_postgres::Client;

/// An empty, migrated database of the shared test cluster.
pub struct Database {
    pub name: String,
}

impl Database {
    /// A new database; fails the test without a server.
    pub async fn fresh() -> Database {
        let name = TestCluster::shared_or_panic()
            .fresh_database()
            .await
            .unwrap_or_else(|e| panic!("no fresh database: {e}"));
        Database { name }
    }

    /// One job server on this database: a backend with its own pool of at
    /// most `pool` connections (the backend's default for `None`), on
    /// `clock`. Servers made from one clock move in step.
    pub async fn server(&self, clock: &MockClock, pool: Option<usize>) -> PostgresBackend {
        let builder = PostgresBackend::builder(TestCluster::shared_or_panic().url())
            .database(&self.name)
            .clock(clock.clone());
        match pool {
            Some(pool) => builder.max_connections(pool),
            None => builder,
        }
        .build()
        .await
        .unwrap_or_else(|e| panic!("no backend on {}: {e}", self.name))
    }

    /// A plain SQL session on this database, beside the backends (see
    /// [`lock_waiters`]).
    pub async fn sql(&self) -> Client {
        let url = TestCluster::shared_or_panic().database_url(&self.name);
        let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
            .await
            .unwrap_or_else(|e| panic!("no SQL session on {}: {e}", self.name));
        tokio::spawn(connection);
        client
    }
}

/// How many other sessions of `admin`'s database wait for a lock.
#[allow(dead_code)] // only the test crates that queue calls behind a lock use it
pub async fn lock_waiters(admin: &Client) -> i64 {
    fresh_activity(admin).await;
    admin
        .query_one(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()
             AND pid <> pg_backend_pid() AND wait_event_type = 'Lock'",
            &[],
        )
        .await
        .unwrap_or_else(|e| panic!("cannot read pg_stat_activity: {e}"))
        .get(0)
}

/// Makes `admin`'s next read of `pg_stat_activity` current: inside a
/// transaction, the server answers the first read's snapshot until it ends.
#[allow(dead_code)] // only the test crates that read pg_stat_activity use it
pub async fn fresh_activity(admin: &Client) {
    admin
        .batch_execute("SELECT pg_stat_clear_snapshot()")
        .await
        .unwrap_or_else(|e| panic!("cannot clear the statistics snapshot: {e}"));
}
