//! A pooled connection checked out for one operation, which gives up on the
//! server when its caller gives up.
//!
//! A caller may drop an operation's future at any `.await`: a timeout
//! fires, an HTTP client disconnects. A statement already sent then goes on
//! running on the server. It keeps its locks, it may still commit a change
//! nobody is waiting for, and its connection, back in the pool, makes the
//! next caller wait behind it.
//!
//! [`Conn`] therefore notes when a statement is in flight. Dropped with
//! one, it keeps the connection out of the pool and, from a task of its
//! own:
//!
//! 1. waits up to [`CANCEL_AFTER`] for the statement to end, as most do;
//! 2. otherwise asks the server to cancel it, and waits up to
//!    [`IDLE_AFTER_CANCEL`] for the connection to be idle;
//! 3. gives the connection back to the pool once it is idle, and closes it
//!    when it is not idle in time or was inside a transaction (the server
//!    then rolls the transaction back).
//!
//! A cancelled statement changes nothing, as one that failed. The server
//! acts on a cancel request only while a statement runs, so the cancel
//! cannot reach a later caller's statement: the connection goes back to
//! the pool only after a statement sent after the cancel has ended.

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use deadpool_postgres::{Client, GenericClient, Object, Transaction};
use tokio_postgres::error::SqlState;
use tokio_postgres::NoTls;

use super::error::db;
use crate::error::Result;

/// How long a statement whose caller gave up may go on before it is
/// cancelled: longer than most statements take, so that a dropped call
/// costs a cancel request (a new server process) only when it would
/// otherwise hold the connection.
const CANCEL_AFTER: Duration = Duration::from_millis(20);

/// How long a connection may take to become idle after a cancel request
/// before it is closed instead.
const IDLE_AFTER_CANCEL: Duration = Duration::from_secs(5);

/// `Conn::client` is taken only by `drop`, after which nothing can borrow
/// the connection.
const DROPPED: &str = "a connection used after it was dropped";

/// A pooled connection; see the [module docs](self).
pub(crate) struct Conn<'a> {
    /// Taken only by `drop`, to hand the connection to the task that
    /// waits for it.
    client: Option<Client>,
    flight: Flight,
    given_up: &'a Arc<GivenUp>,
}

/// What statements whose callers gave up cost a backend, since it was
/// built.
#[derive(Debug, Default)]
pub(crate) struct GivenUp {
    /// Cancel requests sent.
    cancelled: AtomicU64,
    /// Connections closed rather than given back to the pool.
    closed: AtomicU64,
}

impl GivenUp {
    /// Cancel requests sent, and connections closed.
    pub(crate) fn counts(&self) -> (u64, u64) {
        (
            self.cancelled.load(Ordering::Relaxed),
            self.closed.load(Ordering::Relaxed),
        )
    }

    /// Takes `client` out of the pool and closes it.
    fn close(&self, client: Client) {
        drop(Object::take(client));
        self.closed.fetch_add(1, Ordering::Relaxed);
    }
}

/// What is under way on a connection.
#[derive(Debug, Default)]
pub(crate) struct Flight {
    /// A statement was sent and its answer not yet read.
    statement: AtomicBool,
    /// A transaction is open.
    transaction: AtomicBool,
}

impl Flight {
    /// Runs `work`, one exchange with the server, noting it as in flight
    /// until it ends; a dropped `work` stays noted.
    pub(crate) async fn run<T>(&self, work: impl Future<Output = T>) -> T {
        self.statement.store(true, Ordering::Relaxed);
        let out = work.await;
        self.statement.store(false, Ordering::Relaxed);
        out
    }
}

/// A connection or a transaction on one, for the statement helpers.
pub(crate) trait Session: Sync {
    /// What runs the statements.
    type Client: GenericClient + Sync;
    /// The client and the connection's [`Flight`].
    fn parts(&self) -> (&Self::Client, &Flight);
}

impl<'a> Conn<'a> {
    /// `client`, whose give-ups count in `given_up`.
    pub(crate) fn new(client: Client, given_up: &'a Arc<GivenUp>) -> Self {
        Conn {
            client: Some(client),
            flight: Flight::default(),
            given_up,
        }
    }

    /// Opens a transaction; dropped without [`ConnTx::commit`], it is
    /// rolled back.
    pub(crate) async fn transaction(&mut self) -> Result<ConnTx<'_>> {
        let Conn { client, flight, .. } = self;
        let Some(client) = client.as_mut() else {
            unreachable!("{DROPPED}")
        };
        flight.transaction.store(true, Ordering::Relaxed);
        let tx = flight.run(client.transaction()).await.map_err(db)?;
        Ok(ConnTx { tx, flight })
    }
}

impl Session for Conn<'_> {
    type Client = Client;

    fn parts(&self) -> (&Client, &Flight) {
        match &self.client {
            Some(client) => (client, &self.flight),
            None => unreachable!("{DROPPED}"),
        }
    }
}

impl Drop for Conn<'_> {
    fn drop(&mut self) {
        if !self.flight.statement.load(Ordering::Relaxed) {
            return; // idle: the client goes back to the pool as it is
        }
        let Some(client) = self.client.take() else {
            return;
        };
        let in_transaction = self.flight.transaction.load(Ordering::Relaxed);
        let given_up = Arc::clone(self.given_up);
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => drop(runtime.spawn(give_up(client, in_transaction, given_up))),
            // Nothing can wait for the statement: close the connection.
            Err(_) => given_up.close(client),
        }
    }
}

/// Waits for, or cancels, the statement a dropped [`Conn`] left in flight,
/// then gives the connection back to the pool or closes it.
async fn give_up(client: Client, in_transaction: bool, given_up: Arc<GivenUp>) {
    if !in_transaction && idle_within(&client, CANCEL_AFTER).await {
        return;
    }
    let cancelled = client.cancel_token().cancel_query(NoTls).await;
    match &cancelled {
        Ok(()) => {
            given_up.cancelled.fetch_add(1, Ordering::Relaxed);
        }
        Err(error) => tracing::debug!(%error, "cannot cancel a statement whose caller gave up"),
    }
    if cancelled.is_ok() && !in_transaction && idle_within(&client, IDLE_AFTER_CANCEL).await {
        return;
    }
    given_up.close(client);
}

/// Whether the connection answers an empty statement within `limit`, that
/// is, every statement sent before has ended. An answer that it was
/// cancelled counts: the cancel request was then spent on it.
async fn idle_within(client: &Client, limit: Duration) -> bool {
    match tokio::time::timeout(limit, client.simple_query("")).await {
        Ok(Ok(_)) => true,
        Ok(Err(e)) => e.code() == Some(&SqlState::QUERY_CANCELED),
        Err(_) => false,
    }
}

/// A transaction on a [`Conn`].
pub(crate) struct ConnTx<'a> {
    tx: Transaction<'a>,
    flight: &'a Flight,
}

impl ConnTx<'_> {
    /// Runs `sql`, statements without parameters.
    pub(crate) async fn batch_execute(&self, sql: &str) -> Result<()> {
        self.flight
            .run(self.tx.batch_execute(sql))
            .await
            .map_err(db)
    }

    /// Commits the transaction.
    pub(crate) async fn commit(self) -> Result<()> {
        let ConnTx { tx, flight } = self;
        let committed = flight.run(tx.commit()).await;
        flight.transaction.store(false, Ordering::Relaxed);
        committed.map_err(db)
    }
}

impl<'a> Session for ConnTx<'a> {
    type Client = Transaction<'a>;

    fn parts(&self) -> (&Transaction<'a>, &Flight) {
        (&self.tx, self.flight)
    }
}
