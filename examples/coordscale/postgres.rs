//! The PostgreSQL server measured: the crate's throwaway test cluster
//! (feature `testing`), or a server given by connection string.

use std::time::Duration;

#[cfg(feature = "testing")]
use coordinate::postgres::testing::TestCluster;
use coordinate::postgres::{connection_config, PostgresBackend, PostgresTls};
use coordinate::{Backend, MockClock};

use crate::footprint::Footprint;

/// Where the PostgreSQL stores are made.
#[derive(Debug)]
pub enum Server {
    /// A cluster this process starts and removes at exit: a fresh
    /// database per size. With `POSTGRES_URL` set, the harness makes the
    /// databases on that server instead, and they stay there.
    #[cfg(feature = "testing")]
    Harness(&'static TestCluster),
    /// A database given by connection string: a namespace of its own per
    /// size, destroyed afterwards.
    Database(String),
}

/// One size's store on the server.
#[derive(Debug)]
pub struct Store {
    /// One pooled connection, so that every statement, repeated or not,
    /// runs on the same session.
    pub backend: PostgresBackend,
    /// A separate connection for `VACUUM` and table sizes.
    pub footprint: Footprint,
    /// The namespace to load.
    pub namespace: String,
}

impl Server {
    /// `harness` or a `postgres://` connection string, once the server has
    /// been reached.
    pub async fn open(backend: &str) -> Result<Server, String> {
        let server = if backend == "harness" {
            Self::harness().await?
        } else {
            Server::Database(backend.to_string())
        };
        let url = match &server {
            #[cfg(feature = "testing")]
            Server::Harness(cluster) => cluster.url(),
            Server::Database(url) => url,
        };
        match tokio::time::timeout(Duration::from_secs(15), session(url)).await {
            Ok(Ok(_)) => Ok(server),
            Ok(Err(e)) => Err(format!("cannot connect to the server: {e}")),
            Err(_) => Err("cannot reach the server within 15 s".into()),
        }
    }

    #[cfg(feature = "testing")]
    async fn harness() -> Result<Server, String> {
        let cluster = tokio::task::spawn_blocking(TestCluster::shared)
            .await
            .map_err(|e| format!("starting the cluster: {e}"))?
            .map_err(|e| e.to_string())?;
        Ok(Server::Harness(cluster))
    }

    #[cfg(not(feature = "testing"))]
    async fn harness() -> Result<Server, String> {
        Err("`--backend harness` needs the test cluster: run with `--features testing`".into())
    }

    /// A store for one size.
    pub async fn store(&self, size: usize) -> Result<Store, String> {
        let (url, namespace) = match self {
            #[cfg(feature = "testing")]
            Server::Harness(cluster) => {
                let db = cluster.fresh_database().await.map_err(|e| e.to_string())?;
                (cluster.database_url(&db), "coordscale".to_string())
            }
            Server::Database(url) => (
                url.clone(),
                format!("coordscale-{size}-{}", std::process::id()),
            ),
        };
        let backend = PostgresBackend::builder(&url)
            .clock(MockClock::new())
            .max_connections(1)
            .build()
            .await
            .map_err(|e| format!("cannot connect: {e}"))?;
        let client = session(&url)
            .await
            .map_err(|e| format!("cannot connect: {e}"))?;
        Ok(Store {
            backend,
            footprint: Footprint::Postgres(client),
            namespace,
        })
    }

    /// Removes what a store of a given database holds; a harness
    /// database goes with the cluster (or stays, on `POSTGRES_URL`).
    pub async fn clean(&self, store: Store) -> Result<(), String> {
        if let Server::Database(_) = self {
            let ns = store
                .backend
                .namespace(&store.namespace)
                .await
                .map_err(|e| format!("namespace failed: {e}"))?;
            ns.destroy()
                .await
                .map_err(|e| format!("cannot remove {}: {e}", store.namespace))?;
        }
        Ok(())
    }
}

/// A plain SQL session on `url`, with the TLS the backend's sessions have.
async fn session(url: &str) -> Result<tokio_postgres::Client, String> {
    let config = connection_config(url).map_err(|e| e.to_string())?;
    let tls = PostgresTls::new(url).map_err(|e| e.to_string())?;
    let (client, connection) = config.connect(tls).await.map_err(|e| e.to_string())?;
    tokio::spawn(connection);
    Ok(client)
}
