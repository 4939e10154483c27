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
//! 1. waits up to [`CANCEL_AFTER`] for the statement to end, as most do,
//!    and then gives the connection back to the pool;
//! 2. otherwise (at once inside a transaction) asks the server to cancel
//!    the statement, again every [`CANCEL_AGAIN_AFTER`] until the
//!    connection is idle or [`IDLE_AFTER_CANCEL`] has passed, and then
//!    closes the connection.
//!
//! A cancel request is a message to the server on a connection of its own,
//! acted on a moment after it is sent, and only while a statement runs: one
//! that arrives before its statement has started is lost (hence the
//! repeats), and one that arrives after its statement has ended could
//! cancel the next statement on the connection. So a connection a cancel
//! was sent for is never used again. It is closed only once idle, keeping
//! its place in the pool until then, so the server never holds more
//! sessions than the pool's bound while they wind down.
//!
//! A statement cancelled before it ended changes nothing, as one that
//! failed; one that ended first was applied whole. An open transaction is
//! rolled back.

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use deadpool_postgres::{Client, GenericClient, Object, Transaction};
use tokio::time::Instant;
use tokio_postgres::error::SqlState;

use super::connector::Connector;
use super::error::db;
use crate::error::Result;

/// How long a statement whose caller gave up may go on before it is
/// cancelled: longer than most statements take, so that a dropped call
/// costs a cancel request (a new server process) only when it would
/// otherwise hold the connection.
const CANCEL_AFTER: Duration = Duration::from_millis(20);

/// How long a cancel request may go unanswered before it is sent again.
const CANCEL_AGAIN_AFTER: Duration = Duration::from_millis(100);

/// How long a connection may take to become idle after the first cancel
/// request; it is closed then, idle or not.
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
/// built, and how their cancel requests connect.
pub(crate) struct GivenUp {
    /// Statements cancelled: those a cancel request was sent for.
    cancelled: AtomicU64,
    /// Connections closed rather than given back to the pool.
    closed: AtomicU64,
    /// How a cancel request connects, as its connection did.
    connector: Arc<Connector>,
}

impl GivenUp {
    /// Nothing given up yet; cancel requests made by `connector`.
    pub(crate) fn new(connector: Arc<Connector>) -> Self {
        GivenUp {
            cancelled: AtomicU64::new(0),
            closed: AtomicU64::new(0),
            connector,
        }
    }

    /// Statements cancelled, and connections closed.
    pub(crate) fn counts(&self) -> (u64, u64) {
        (
            self.cancelled.load(Ordering::Relaxed),
            self.closed.load(Ordering::Relaxed),
        )
    }
}

/// What is under way on a connection.
#[derive(Debug, Default)]
pub(crate) struct Flight {
    /// Statements sent whose answers were not read yet (a count, so that
    /// one ending does not hide another on the same connection).
    statements: AtomicUsize,
    /// A transaction is open.
    transaction: AtomicBool,
}

impl Flight {
    /// Runs `work`, one exchange with the server, noting it as in flight
    /// until it ends; a dropped `work` stays noted.
    pub(crate) async fn run<T>(&self, work: impl Future<Output = T>) -> T {
        self.statements.fetch_add(1, Ordering::Relaxed);
        let out = work.await;
        self.statements.fetch_sub(1, Ordering::Relaxed);
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
        if self.flight.statements.load(Ordering::Relaxed) == 0 {
            return; // idle: the client goes back to the pool as it is
        }
        let Some(client) = self.client.take() else {
            return;
        };
        let in_transaction = self.flight.transaction.load(Ordering::Relaxed);
        let closing = Closing {
            client: Some(client),
            given_up: Arc::clone(self.given_up),
        };
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => drop(runtime.spawn(give_up(closing, in_transaction))),
            // Nothing can wait for the statement: close the connection.
            Err(_) => drop(closing),
        }
    }
}

/// Waits for, or cancels, the statement a dropped [`Conn`] left in flight,
/// then gives the connection back to the pool or closes it.
async fn give_up(closing: Closing, in_transaction: bool) {
    if !in_transaction && idle_within(closing.client(), CANCEL_AFTER).await {
        closing.keep();
        return;
    }
    let deadline = Instant::now() + IDLE_AFTER_CANCEL;
    let mut sent = false;
    let tls = closing.given_up.connector.tls();
    // A connection already broken has nothing left to cancel.
    while !closing.client().is_closed() {
        match closing
            .client()
            .cancel_token()
            .cancel_query(tls.clone())
            .await
        {
            Ok(()) if !sent => {
                sent = true;
                closing.given_up.cancelled.fetch_add(1, Ordering::Relaxed);
            }
            Ok(()) => {}
            Err(error) => tracing::debug!(%error, "cannot cancel a statement whose caller gave up"),
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() || idle_within(closing.client(), CANCEL_AGAIN_AFTER.min(left)).await {
            break;
        }
    }
    drop(closing); // closes the connection
}

/// A connection a dropped [`Conn`] left busy: closed when dropped, unless
/// [kept](Closing::keep). A give-up dropped before it ends, as when its
/// runtime shuts down, therefore closes its connection too (a statement
/// already running then ends on the server as it would have).
struct Closing {
    /// Taken only by `keep` and `drop`.
    client: Option<Client>,
    given_up: Arc<GivenUp>,
}

impl Closing {
    fn client(&self) -> &Client {
        match &self.client {
            Some(client) => client,
            None => unreachable!("{DROPPED}"),
        }
    }

    /// Gives the connection back to the pool.
    fn keep(mut self) {
        drop(self.client.take());
    }
}

impl Drop for Closing {
    fn drop(&mut self) {
        if let Some(client) = self.client.take() {
            drop(Object::take(client));
            self.given_up.closed.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Whether the connection answers an empty statement within `limit`, that
/// is, every statement sent before has ended. An answer that it was
/// cancelled counts too: it came after theirs.
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
