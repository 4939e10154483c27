//! Databases on the crate's throwaway PostgreSQL cluster.

use coordinate::postgres::testing::TestCluster;

/// A fresh database on the shared test cluster: its `--backend` value and
/// its name. Fails (never skips) when no cluster can be started.
pub fn fresh_database(runtime: &tokio::runtime::Runtime) -> (String, String) {
    let cluster = TestCluster::shared().expect("a PostgreSQL test cluster");
    let name = runtime
        .block_on(cluster.fresh_database())
        .expect("a fresh database");
    let url = cluster.database_url(&name);
    let backend = if url.contains("://") {
        url
    } else {
        format!("postgres:{url}")
    };
    (backend, name)
}
