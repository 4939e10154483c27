//! How each session with the server is made.
//!
//! A connection string may name files: `sslrootcert`, `sslcert`, `sslkey`
//! and the password file. As libpq does, they are read again for every new
//! session — a pooled connection, the change feed's listening connection, a
//! cancel request — so a renewed certificate or a changed password is used
//! by the sessions made after it, without a restart, while those open keep
//! theirs. Settings that cannot be used at that moment (a file half-written
//! by its renewal, say) are logged, and the last ones that could are kept;
//! so is the last password found, where none is found at that moment.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio_postgres::{Client, Config, Error};

use super::conninfo::connection_config_for;
use super::tls::PostgresTls;
use super::PostgresError;

/// The settings of one session.
#[derive(Clone)]
pub(crate) struct Settings {
    pub(crate) config: Config,
    pub(crate) tls: PostgresTls,
}

/// Makes each session's [`Settings`] from the connection string.
pub(crate) struct Connector {
    conninfo: String,
    /// The builder's limit on making one connection (the string's own
    /// `connect_timeout` is kept if shorter).
    connect_timeout: Duration,
    /// The builder's database, in place of the string's.
    database: Option<String>,
    /// The last settings that could be used.
    last: parking_lot::Mutex<Settings>,
}

impl Connector {
    /// Reads the settings once, failing as the backend's build must for
    /// settings that cannot be used.
    pub(crate) fn new(
        conninfo: String,
        connect_timeout: Duration,
        database: Option<String>,
    ) -> Result<Connector, PostgresError> {
        let settings = read(&conninfo, connect_timeout, database.as_deref())?;
        Ok(Connector {
            conninfo,
            connect_timeout,
            database,
            last: parking_lot::Mutex::new(settings),
        })
    }

    /// The settings of a session made now: the connection string's files
    /// read again, or, where they cannot be used, the last settings that
    /// could.
    pub(crate) fn settings(&self) -> Settings {
        match read(
            &self.conninfo,
            self.connect_timeout,
            self.database.as_deref(),
        ) {
            Ok(mut settings) => {
                let mut last = self.last.lock();
                let found = |settings: &Settings| {
                    settings
                        .config
                        .get_password()
                        .filter(|password| !password.is_empty())
                        .map(<[u8]>::to_vec)
                };
                if let (None, Some(password)) = (found(&settings), found(&last)) {
                    tracing::warn!(
                        "no PostgreSQL password found for a new session (a password file \
                         being rewritten?); using the last one found"
                    );
                    settings.config.password(password);
                }
                *last = settings.clone();
                settings
            }
            Err(error) => {
                unusable(&error);
                self.last.lock().clone()
            }
        }
    }

    /// The TLS of a cancel request made now, which sends no password: its
    /// files read again, or, where they cannot be used, the last TLS that
    /// could.
    pub(crate) fn tls(&self) -> PostgresTls {
        match PostgresTls::new(&self.conninfo) {
            Ok(tls) => tls,
            Err(error) => {
                unusable(&error);
                self.last.lock().tls.clone()
            }
        }
    }

    /// The last settings that could be used, without reading anything.
    pub(crate) fn last(&self) -> Settings {
        self.last.lock().clone()
    }
}

/// Logs settings that cannot be used now, the last usable ones going on.
fn unusable(error: &PostgresError) {
    let error: &(dyn std::error::Error + 'static) = error;
    tracing::warn!(
        error,
        "the PostgreSQL connection settings cannot be used now; \
         connecting with the last ones that could"
    );
}

/// The settings `conninfo` gives now, with the builder's.
fn read(
    conninfo: &str,
    connect_timeout: Duration,
    database: Option<&str>,
) -> Result<Settings, PostgresError> {
    let mut config = connection_config_for(conninfo, database)?;
    let tls = PostgresTls::new(conninfo)?;
    match config.get_connect_timeout() {
        Some(shorter) if *shorter < connect_timeout => {}
        _ => {
            config.connect_timeout(connect_timeout);
        }
    }
    if config.get_application_name().is_none() {
        config.application_name("coordinate");
    }
    Ok(Settings { config, tls })
}

/// The pool's way of making a connection: with the settings of the
/// moment.
pub(crate) struct PoolConnect(pub(crate) Arc<Connector>);

impl deadpool_postgres::Connect for PoolConnect {
    fn connect(
        &self,
        _: &Config,
    ) -> Pin<Box<dyn Future<Output = Result<(Client, JoinHandle<()>), Error>> + Send + '_>> {
        let Settings { config, tls } = self.0.settings();
        Box::pin(async move {
            let (client, connection) = config.connect(tls).await?;
            let task = tokio::spawn(async move {
                if let Err(error) = connection.await {
                    tracing::warn!(%error, "PostgreSQL connection lost");
                }
            });
            Ok((client, task))
        })
    }
}
