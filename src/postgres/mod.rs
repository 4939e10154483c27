//! [`PostgresBackend`]: the durable backend, on PostgreSQL (feature `postgres`).
//!
//! # Client and pool
//!
//! The backend speaks to PostgreSQL through **tokio-postgres** with a
//! **deadpool-postgres** pool:
//!
//! * tokio-postgres is the native asynchronous client of the tokio ecosystem
//!   (no blocking thread pool, no C library), supports the extended protocol
//!   with binary parameters — `jsonb`, `timestamptz`, `bytea` and `bigint`
//!   go over the wire without text formatting — and pipelines requests on
//!   one connection.
//! * deadpool-postgres adds a small, lock-light pool with a per-connection
//!   prepared-statement cache (`prepare_cached`), so every statement is
//!   parsed and planned once per connection and then runs in one round trip.
//!   Its "fast" recycling drops connections the server has closed, which is
//!   what makes the pool reconnect by itself after a server restart without a
//!   health-check query on every checkout.
//! * not sqlx: its compile-time query checking needs a database at build
//!   time, and its pool and statement cache add overhead per query that
//!   this latency-bound backend does not need.
//!
//! Every statement is a constant string with `$n` parameters; no SQL is ever
//! built from caller data.
//!
//! # TLS
//!
//! The connection string's `sslmode` says whether connections are
//! encrypted (with rustls) and what the server's certificate must prove;
//! `sslrootcert` names a file of PEM certificates of the authorities
//! trusted to sign it:
//!
//! | `sslmode` | encrypted | the server's certificate |
//! |---|---|---|
//! | `disable` | never | — |
//! | `prefer` (the default) | when the server offers TLS | any; with `sslrootcert`, signed by one of its authorities |
//! | `require` | always | the same |
//! | `verify-ca` | always | signed by an authority of `sslrootcert` (needed) |
//! | `verify-full` | always | that, and naming the host connected to |
//!
//! To a server that asks for a client certificate (`cert`
//! authentication, or `clientcert` in `pg_hba.conf`), every session shows
//! the one of the PEM files `sslcert` (the certificate, then any
//! intermediates) and `sslkey` (its private key) name.
//!
//! As with libpq, a connection over a Unix-domain socket is never
//! encrypted, whatever the mode (the server offers no TLS there), and
//! `prefer` and `require` without `sslrootcert` encrypt without
//! authenticating the server. Unlike libpq:
//!
//! * no certificate or key file is read unless named (libpq's defaults
//!   are `root.crt`, `postgresql.crt` and `postgresql.key` in
//!   `~/.postgresql/`), so the `verify-` modes need `sslrootcert`,
//!   `sslcert` and `sslkey` are given together or not at all, and a file
//!   named must be readable, whatever the mode but `disable`; the key
//!   file's permissions are not checked;
//! * the system's store of authorities (`sslrootcert=system`) is not
//!   supported, nor is an encrypted key (`sslpassword`);
//! * `prefer` does not try again in clear after a TLS handshake fails;
//! * the driver has one mode for all the hosts a `host` list names, so
//!   `require` and the `verify-` modes refuse a list that mixes
//!   Unix-domain sockets with TCP hosts;
//! * the driver makes TLS sessions only for a host name: with `hostaddr`
//!   and no `host`, `prefer` connects in clear and the other modes are
//!   refused (name the server in `host` beside the address, as its
//!   certificate does).
//!
//! Settings that cannot be used fail [`PostgresBuilder::build`] with
//! [`PostgresError::Tls`]; a certificate refused fails it with
//! [`PostgresError::Connect`], saying why.
//! [`connection_config`] and [`PostgresTls`] open a session of one's own
//! with the same settings.
//!
//! ```text
//! postgres://app@db.internal/jobs?sslmode=verify-full&sslrootcert=/etc/coordinate/db-ca.pem
//! ```
//!
//! As libpq does, the backend reads the files the string names (these and
//! the password file, below) again for every new session: a pooled
//! connection, the change feed's listening connection, a cancel request.
//! A renewed certificate, key or authority file is used by the sessions
//! made after it, without a restart; those open keep theirs. Files that
//! cannot be used at that moment (half-written by their renewal, say) are
//! logged, and the last settings that could be used are kept; so is the
//! last password found, where none is found at that moment.
//!
//! # Passwords
//!
//! A password need not be in the connection string, where a command line
//! would show it to every user of the host: one the string leaves out (or
//! gives empty) is found as libpq finds it, in `PGPASSWORD`, else in the
//! password file — the one the string's `passfile` names, else
//! `PGPASSFILE`'s, else `$HOME/.pgpass`. Its lines read
//! `host:port:database:user:password`; `*` alone in one of the first four
//! fields matches anything, `\` makes the character after it literal (a
//! `:` or `\`), and `#` starts a comment line. The first line that matches
//! the connection gives the password: its host (a Unix-domain socket's
//! directory; `hostaddr` without `host`), port (5432 unless given), user
//! (the one running the process, if unset or empty) and database (the
//! user's name, if unset or empty). A missing file gives none; one that
//! is not a plain file or that its group or others may access is ignored
//! with a warning, as libpq ignores it. The environment and the file are read for
//! every new session, as the TLS files are. Unlike libpq:
//!
//! * the driver sends one password to every host of a list, where libpq
//!   finds one for each: a file giving the hosts of one string different
//!   passwords fails [`PostgresBuilder::build`] with
//!   [`PostgresError::PasswordFile`];
//! * the socket directories of both common libpq builds, `/tmp` and
//!   `/var/run/postgresql`, are looked up as `localhost` (one libpq build
//!   so looks up its own only);
//! * a port is looked up as its number is written plainly (`05432` as
//!   `5432`), and a `hostaddr` address in its standard form
//!   (`0:0:0:0:0:0:0:1` as `::1`), where libpq takes them as the string
//!   writes them.
//!
//! # Storage
//!
//! The schema ([`SCHEMA_VERSION`]) is created and migrated by
//! [`PostgresBackend::connect`] itself, in one transaction under an advisory
//! lock (see the `schema` module); a database migrated by newer code is
//! refused with [`PostgresError::SchemaTooNew`], and one whose encoding is
//! not UTF-8 with [`PostgresError::NotUtf8`], before anything is written
//! to it (another encoding cannot hold every string the other backends
//! store, or in `SQL_ASCII` does not check it). In the tables, data maps
//! are `jsonb`; names are `bytea`, so they sort byte-wise and
//! may contain any character; durations are integer microseconds; unset times
//! are `NULL`. PostgreSQL's `jsonb` cannot hold the character U+0000, so
//! strings and keys holding it are stored escaped, losslessly (the `nul`
//! module).
//!
//! # Identity and `Gone`
//!
//! Handles carry row ids, never names: once an object is deleted, every old
//! handle answers `Gone` (or the `NoSuch…` error naming the object, a
//! variation the conformance suite permits) even after an object of the
//! same name is created again, because the new row has a new id. A unit's
//! and a worker's lists (attempts, parent, children) answer `Gone` too, the
//! object's row joined to its items in one statement; a namespace's and a
//! spec's lists, counts, bulk deletes and priority changes may answer as for
//! an empty one, the other variation permitted. Handles of another
//! backend, including another `PostgresBackend` instance, are refused with
//! [`Error::WrongBackend`].
//!
//! # Time
//!
//! Every "now" is read from the injected [`Clock`] and sent as a statement
//! parameter; the database's own clock (`now()`) is never used.
//!
//! # One round trip per operation
//!
//! In its common case every operation is one statement, so one round trip,
//! and opens no transaction from the client (only a spec's `set_meta`, which
//! locks the spec row for its check and update, and an `add_work_units`
//! batch sent in parts do; and a unit query naming more names than a
//! statement carries (16 MiB, far inside the 1 GiB PostgreSQL takes; the
//! `budget` module) runs as one statement per part of its names, in name order: a read in one snapshot, a change
//! in one transaction, so that it answers as one statement would).
//! Operations that change
//! several rows (the attempt state changes with chaining, adding a unit,
//! handing out work, expiry) are PL/pgSQL functions installed by the
//! migrations and called by one statement; the query-selected unit changes
//! (deletes and priority changes) are one plain SQL statement per query
//! shape, built here (the `selection` module).
//! `request_attempts` takes two (the scheduler's counts, then the
//! hand-out); `finish` without data whose stored data chains takes two (the
//! stored output is parsed here, by the rules every backend shares); and
//! name lookups that create (`namespace`, `worker`) take two on creation.
//!
//! # Cost at scale
//!
//! Counts, counted metas and summaries read per-spec counters that
//! statement triggers keep in every changing transaction, plus three small
//! index ranges for what depends on now (ready units whose not-before time
//! is ahead, waiting units whose time has come, pending attempts past their
//! deadline), each read only when the counters say it can hold something
//! (the `counts` module), so they cost O(specs), not O(units); those
//! queries run in a function with their generic plans
//! (migrations 6, 8, 9 and 12), which each connection makes once, since a
//! custom plan costs more to make than the query to run. Queries by status read a
//! `(spec, state, name)` index with the limit in SQL, and each query shape
//! is its own statement, so no generic plan made for one shape serves
//! another (the `selection` module). `add_work_units` stores a whole batch
//! in one statement (a batch of over 16 MiB of names and data, a margin far
//! inside PostgreSQL's 1 GiB message limit, is first sent in parts to a temporary
//! table in the same transaction; the `bulk` module), and checks (and
//! locks against deletion) the batch's
//! spec once rather than once per unit: a unit's spec is enforced by
//! statement triggers instead of a foreign key (migration 5). A unit
//! without an active attempt whose not-before time was set is *waiting*
//! (a state of its own) until an expiry check finds its time has come and
//! makes it ready, so requests take ready units in execution order from an
//! index of those alone: units delayed by retries cost a request nothing
//! (migration 12). A pending attempt that stops being its unit's active one
//! (cleared, or superseded by `make_attempt`) is stored with a status of
//! its own that reads as Pending, so the index of pending attempts by
//! deadline, which every expiry check reads, holds only attempts a check
//! can expire: attempts left pending that way cost expiry checks nothing
//! (migration 22).
//!
//! # Expiry without writes on reads
//!
//! Reads that perform an expiry check (`status`, `active_attempt`,
//! the attempt's times, `meta(true)`, `work_units`, counts, summaries)
//! compute their answer as of that check inside one read-only statement: a
//! pending active attempt past its deadline counts as expired, its unit as
//! without an active attempt, and a waiting unit whose time has come as
//! Available. The same statement says whether the check would change
//! anything; only then is the expiry written, by a second statement, so
//! that a later `finish` or `renew` — from this job server or another —
//! finds the attempt Expired, and the read made again by a third, so that
//! it answers what the store holds after the expiry: a `finish` from a
//! server whose clock had not reached the deadline, committed between the
//! first read and the expiry, is answered rather than contradicted. With
//! no lease past its deadline (the usual state of a healthy job server)
//! reads write nothing and make one statement. `request_attempts` reads
//! the namespace's counts the same way and applies a due expiry inside its
//! hand-out statement.
//!
//! # Concurrency
//!
//! `request_attempts` takes units with `FOR UPDATE SKIP LOCKED`, so no unit
//! is ever handed to two workers and concurrent requests take different
//! units without waiting. A ready unit another transaction holds locked at
//! that moment (changing its priority, re-adding it, chaining into it) is
//! skipped too: a request made while such changes hold every ready unit of
//! a spec gets none from it, as if the spec were drained, and finds them
//! again once the changes commit. The spec's row is locked only where a
//! limit needs it: under a `max_running` (the running attempts are counted
//! under the lock, so concurrent requests never exceed it) and to generate a
//! continuous unit (its conditions, and the interval that sets the next
//! one's time, are read again under the lock, so one interval makes one
//! unit). A change of a spec's definition or meta waits for the hand-outs
//! in progress from it, and the hand-outs after the change wait for it to
//! commit (a transaction-scoped advisory lock of the spec, shared by
//! hand-outs, taken before either reads the spec): a `max_running` set
//! while a request without one is taking units counts that request's
//! units. Each of these re-reads relies on every statement seeing what
//! committed before it started, so every pooled connection runs at read
//! committed, whatever the database's or role's default. Every function
//! locks a unit's row before an attempt of it, and a unit's row before its
//! spec's counters (a destroy too: it deletes the units, then the
//! counters), and units of one spec in name order (bulk adds, and the units
//! a finish chains); an expiry check expires only the units it locked, in
//! id order, and a hand-out under a `max_running` locks its spec before the
//! expiry it applies; so the common paths do not deadlock with each other.
//! Some rarer pairs still can, each needing two transactions to meet on the
//! same rows at once: a finish that chains into an existing unit, already
//! holding the counter stripe its own change wrote, while a hand-out of
//! that unit by a connection of the same stripe waits for it; a delete or
//! priority change by query (which locks units in id order) against a bulk
//! add of the same units; a namespace destroy against a finish chaining
//! within it or a `make_attempt` on its unit elsewhere; the expiry a read
//! or hand-out applies (which locks the units of leases past their deadline
//! in id order, then due waiting units) against a finish chaining into such
//! a unit, or against a delete or priority change by query. PostgreSQL
//! breaks such a deadlock after its `deadlock_timeout` (1 s by default) and
//! the call is retried. Adding a unit reads the unit's state (its active
//! attempt's status) under the unit's row lock, so a `finish` racing with
//! it is either seen (the unit runs again) or comes after (the unit ends
//! Finished). A delete or priority change by query with a `limit` picks its
//! units as it starts and judges each again once locked: one whose status
//! another transaction changed meanwhile (handed out, say) is left alone
//! and not replaced, so the call may change fewer than `limit` units while
//! more match. That judgement reads the unit's active attempt as of the
//! statement's start: a renew committed while the statement waited, of a
//! lease whose deadline fell between the renew's clock reading and the
//! statement's, is not seen, and a status filter may then take the renewed
//! unit for Available. Statements failing with a serialization failure or a
//! deadlock are retried a bounded number of times. A backend and its
//! handles belong to the tokio runtime they were created on (the pool's
//! connections run there).
//!
//! # Cancellation
//!
//! A caller may drop an operation's future at any `.await`: a timeout
//! fires, an HTTP client disconnects. Each statement is atomic, so a
//! dropped operation leaves each of its statements applied whole or not at
//! all. A statement still running when its future is dropped gets 20 ms
//! to end, and its connection then goes back to the pool. One that runs
//! on (or any inside a transaction, which the server then rolls back) is
//! cancelled on the server, so it stops holding locks and commits nothing,
//! and its connection is closed once idle: the next caller never waits
//! behind abandoned work, nor meets a cancel meant for it.

mod attempt;
mod budget;
mod bulk;
mod conn;
mod connector;
mod conninfo;
mod counts;
mod error;
mod jsonb;
#[cfg(all(test, feature = "testing"))]
mod name_parts_tests;
mod namespace;
mod notify;
mod nul;
#[cfg(all(test, feature = "testing"))]
mod plan_tests;
mod schema;
mod selection;
#[cfg(feature = "testing")]
pub mod testing;
mod tls;
mod work_spec;
mod work_unit;
mod worker;

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use deadpool_postgres::{
    GenericClient, Hook, HookError, Manager, ManagerConfig, Pool, RecyclingMethod, Runtime,
};
use tokio_postgres::types::{FromSql, Json, ToSql};
use tokio_postgres::Row;

use self::conn::{Conn, GivenUp, Session};
use self::connector::{Connector, PoolConnect};
use self::jsonb::Jsonb;

pub use conninfo::{connection_config, connection_config_as_written};
pub use error::PostgresError;
pub use schema::SCHEMA_VERSION;
pub use tls::PostgresTls;

use crate::api::{Backend, NamespaceRef};
use crate::clock::{Clock, SharedClock, SystemClock};
use crate::error::{Error, Result};
use crate::model::{AttemptStatus, DataMap, Duration, Summary, SummaryRecord, Time, WorkSpecMeta};

use self::error::{db, decode, is_retryable, pool};
use self::namespace::PgNamespace;

/// How often a transaction failing with a serialization failure or deadlock
/// is tried in all.
const MAX_TRIES: u32 = 8;

/// The default limit on establishing one connection (socket and handshake).
const DEFAULT_CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);
/// How often the change feed's listening connection is probed.
const DEFAULT_FEED_HEARTBEAT: std::time::Duration = std::time::Duration::from_secs(10);

/// Run on every pooled connection when it opens. Every statement of this
/// backend that locks a row and then reads it again relies on each
/// statement's snapshot being taken when it starts, as under PostgreSQL's
/// default isolation level: a database or role whose default is stricter
/// would have those statements fail on every conflict instead.
const READ_COMMITTED: &str = "SET default_transaction_isolation TO 'read committed'";

/// The default number of pooled connections.
const DEFAULT_MAX_CONNECTIONS: usize = 16;

/// The largest pool [`PostgresBuilder::max_connections`] takes: the most
/// connections a PostgreSQL server accepts (its `max_connections` setting
/// goes no higher). The pool sets aside room for every connection it may
/// open, so a larger number only wastes memory, or aborts the process.
pub const MAX_CONNECTIONS: usize = 262_143;

/// The Coordinate backend on PostgreSQL.
///
/// Cheap to clone; clones share the pool and are the same backend.
///
/// ```no_run
/// # async fn demo() -> coordinate::Result<()> {
/// use coordinate::{postgres::PostgresBackend, Backend, MockClock};
/// let backend =
///     PostgresBackend::connect_with_clock("host=/tmp user=postgres dbname=jobs", MockClock::new())
///         .await?;
/// let ns = backend.namespace("app").await?;
/// ns.set_work_spec(coordinate::data!({"name": "crawl"})).await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct PostgresBackend {
    shared: Arc<Shared>,
}

/// What every handle of one backend shares.
pub(crate) struct Shared {
    pool: Pool,
    /// What calls given up mid-statement cost.
    given_up: Arc<GivenUp>,
    /// The change feed and its listening connection (outside the pool).
    feed: Arc<notify::PgFeed>,
    clock: SharedClock,
    /// Distinguishes this backend's handles from another instance's.
    instance: u64,
    /// See [`budget::STATEMENT_BYTES`].
    statement_bytes: usize,
}

impl fmt::Debug for Shared {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let status = self.pool.status();
        f.debug_struct("PostgresBackend")
            .field("instance", &self.instance)
            .field("connections", &status.size)
            .field("idle", &status.available)
            .finish()
    }
}

impl fmt::Debug for PostgresBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.shared.fmt(f)
    }
}

/// The state of a [`PostgresBackend`]'s connection pool, from
/// [`PostgresBackend::pool_status`]. The listening connection of the change
/// feed is outside the pool and not counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct PoolStatus {
    /// Most connections the pool opens.
    pub max_size: usize,
    /// Connections open.
    pub size: usize,
    /// Open connections not in use.
    pub idle: usize,
    /// Calls waiting for a connection.
    pub waiting: usize,
    /// Statements the backend asked the server to cancel since it was
    /// built, because their callers gave up on them (dropped the call's
    /// future) inside a transaction or they ran on (see the module docs'
    /// `# Cancellation`). One may have ended before its cancel arrived.
    pub cancelled: u64,
    /// Connections closed since the backend was built rather than given
    /// back to the pool: each one a statement was cancelled on, and those
    /// given up when no runtime was left to wait for their statements.
    pub closed: u64,
}

/// Settings for [`PostgresBackend`]; made by [`PostgresBackend::builder`].
#[derive(Debug)]
#[must_use]
pub struct PostgresBuilder {
    url: String,
    clock: SharedClock,
    database: Option<String>,
    max_connections: usize,
    connect_timeout: std::time::Duration,
    feed_heartbeat: std::time::Duration,
    /// See [`budget::STATEMENT_BYTES`].
    statement_bytes: usize,
}

impl PostgresBuilder {
    /// Splits batches and name queries into statements of this many bytes,
    /// so that tests reach the parts with a few units.
    #[cfg(test)]
    pub(crate) fn statement_bytes(mut self, bytes: usize) -> Self {
        self.statement_bytes = bytes;
        self
    }

    /// Connects to this database instead of the one the URL names.
    pub fn database(mut self, name: &str) -> Self {
        self.database = Some(name.to_string());
        self
    }

    /// Uses this clock for every "now" (default: the system clock).
    pub fn clock(mut self, clock: impl Clock + 'static) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// Uses this already shared clock.
    pub fn shared_clock(mut self, clock: SharedClock) -> Self {
        self.clock = clock;
        self
    }

    /// The most connections the pool opens (default 16; zero counts as
    /// one). Over [`MAX_CONNECTIONS`], [`build`](Self::build) fails.
    pub fn max_connections(mut self, n: usize) -> Self {
        self.max_connections = n.max(1);
        self
    }

    /// The limit on making one connection, handshake included (default
    /// 10 s; a `connect_timeout` in the URL is kept if shorter). Operations
    /// that cannot get a connection fail after at most about twice this.
    pub fn connect_timeout(mut self, timeout: std::time::Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// How often the change feed's listening connection is probed (default
    /// 10 s; zero, never). A probe not answered within the connect timeout
    /// ends every subscription with a gap, as a lost connection does: a
    /// connection that died without closing (a failover, an idle connection
    /// dropped by the network) holds caches on stale entries for at most
    /// this plus the connect timeout.
    pub fn feed_heartbeat(mut self, every: std::time::Duration) -> Self {
        self.feed_heartbeat = every;
        self
    }

    /// Connects, creates or migrates the schema, and answers the backend.
    ///
    /// Fails with [`Error::Backend`] holding a [`PostgresError`]: `Config`
    /// for a bad URL, `Tls` for TLS settings or files that cannot be used,
    /// `PasswordFile` for a password file giving the URL's hosts different
    /// passwords, `Pool` for a pool over [`MAX_CONNECTIONS`], `Connect`
    /// when the server cannot be reached in time, `NotUtf8` for a database
    /// whose encoding is not UTF-8, `SchemaTooNew` for a database of a
    /// newer version of this crate.
    pub async fn build(self) -> Result<PostgresBackend> {
        if self.max_connections > MAX_CONNECTIONS {
            return Err(PostgresError::Pool(format!(
                "{} connections is over the limit of {MAX_CONNECTIONS}",
                self.max_connections
            ))
            .into());
        }
        let connector = Arc::new(Connector::new(
            self.url,
            self.connect_timeout,
            self.database,
        )?);
        let first = connector.last();
        let timeout = first
            .config
            .get_connect_timeout()
            .copied()
            .unwrap_or(self.connect_timeout);
        let manager = Manager::from_connect(
            first.config,
            PoolConnect(Arc::clone(&connector)),
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .post_create(Hook::async_fn(|client, _| {
                Box::pin(async move {
                    client
                        .batch_execute(READ_COMMITTED)
                        .await
                        .map_err(HookError::Backend)
                })
            }))
            .max_size(self.max_connections)
            .runtime(Runtime::Tokio1)
            .create_timeout(Some(timeout))
            .recycle_timeout(Some(timeout))
            .wait_timeout(Some(timeout))
            .build()
            .map_err(|e| PostgresError::Pool(e.to_string()))?;
        static INSTANCES: AtomicU64 = AtomicU64::new(1);
        let given_up = Arc::new(GivenUp::new(Arc::clone(&connector)));
        let feed = Arc::new(notify::PgFeed::new(
            notify::Listening {
                connector,
                heartbeat: self.feed_heartbeat,
                timeout,
            },
            pool.clone(),
            Arc::clone(&given_up),
        ));
        let shared = Arc::new(Shared {
            pool,
            given_up,
            feed,
            clock: self.clock,
            instance: INSTANCES.fetch_add(1, Ordering::Relaxed),
            statement_bytes: self.statement_bytes,
        });
        schema::migrate(&mut shared.client().await?).await?;
        Ok(PostgresBackend { shared })
    }
}

impl PostgresBackend {
    /// Connects with the system clock (see [`PostgresBuilder::build`]).
    ///
    /// `url` is a libpq-style connection string, as a URL
    /// (`postgresql://user@host/db`) or as `key=value` pairs
    /// (`host=/run/postgresql dbname=jobs`); a `host` starting with `/` is a
    /// unix-socket directory. Its `sslmode` and `sslrootcert` set TLS (see
    /// the module docs' `# TLS`).
    pub async fn connect(url: &str) -> Result<Self> {
        Self::builder(url).build().await
    }

    /// Connects with an injected clock (see [`PostgresBuilder::build`]).
    pub async fn connect_with_clock(url: &str, clock: impl Clock + 'static) -> Result<Self> {
        Self::builder(url).clock(clock).build().await
    }

    /// A builder for finer settings (pool size, timeouts, clock).
    pub fn builder(url: &str) -> PostgresBuilder {
        PostgresBuilder {
            url: url.to_string(),
            clock: Arc::new(SystemClock),
            database: None,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            feed_heartbeat: DEFAULT_FEED_HEARTBEAT,
            statement_bytes: budget::STATEMENT_BYTES,
        }
    }

    /// The server process id of this backend's change-feed listening
    /// connection, if it is connected (for diagnostics and fault tests,
    /// e.g. `pg_terminate_backend`).
    pub async fn feed_listener_pid(&self) -> Option<i32> {
        self.shared.feed.listener_pid().await
    }

    /// The connection pool's state now: for monitoring, and to check that
    /// no call (finished or cancelled) keeps a connection.
    pub fn pool_status(&self) -> PoolStatus {
        let status = self.shared.pool.status();
        let (cancelled, closed) = self.shared.given_up.counts();
        PoolStatus {
            max_size: status.max_size,
            size: status.size,
            idle: status.available,
            waiting: status.waiting,
            cancelled,
            closed,
        }
    }

    /// Answers a namespace handle from its row.
    fn namespace_handle(&self, id: i64, name: String) -> NamespaceRef {
        Arc::new(PgNamespace::new(self.shared.clone(), id, name))
    }
}

#[async_trait]
impl Backend for PostgresBackend {
    async fn namespace(&self, name: &str) -> Result<NamespaceRef> {
        const FIND: &str = "SELECT id FROM namespace WHERE name = $1";
        const CREATE: &str =
            "INSERT INTO namespace (name) VALUES ($1) ON CONFLICT (name) DO NOTHING RETURNING id";
        crate::rules::limits::check_name(name)?;
        let client = self.shared.client().await?;
        // Usually one round trip; a racing creator makes us look again.
        for _ in 0..MAX_TRIES {
            if let Some(row) = query_opt(&client, FIND, &[&name.as_bytes()]).await? {
                return Ok(self.namespace_handle(col(&row, 0)?, name.to_string()));
            }
            if let Some(row) = query_opt(&client, CREATE, &[&name.as_bytes()]).await? {
                return Ok(self.namespace_handle(col(&row, 0)?, name.to_string()));
            }
        }
        Err(decode(format!(
            "namespace {name:?} keeps vanishing while being created"
        )))
    }

    async fn namespaces(&self) -> Result<BTreeMap<String, NamespaceRef>> {
        let rows = self
            .shared
            .rows("SELECT id, name FROM namespace", &[])
            .await?;
        by_name(&rows, |id, name| self.namespace_handle(id, name))
    }

    async fn summarize(&self) -> Result<Summary> {
        self.shared.summarize(Scope::All).await
    }

    /// A pooled connection answers `SELECT 1`.
    async fn ping(&self) -> Result<()> {
        let client = self.shared.client().await?;
        execute(&client, "SELECT 1", &[]).await.map(drop)
    }

    /// `LISTEN`/`NOTIFY`: deletes committed by any job server (or by hand)
    /// on this database reach every subscriber (see the `notify` module).
    fn change_feed(&self) -> Option<Arc<dyn crate::feed::ChangeFeed>> {
        Some(Arc::clone(&self.shared.feed) as Arc<dyn crate::feed::ChangeFeed>)
    }
}

/// Which specs an expiry check or summary covers.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Scope {
    /// Every spec of the database.
    All,
    /// Every spec of one namespace.
    Namespace(i64),
    /// One spec.
    Spec(i64),
}

impl Shared {
    /// A pooled connection, which cancels a statement its caller gave up
    /// on (see the `conn` module).
    pub(crate) async fn client(&self) -> Result<Conn<'_>> {
        let client = self.pool.get().await.map_err(pool)?;
        Ok(Conn::new(client, &self.given_up))
    }

    /// Now, by the injected clock, at the stored resolution.
    pub(crate) fn now(&self) -> Time {
        crate::rules::limits::stored_now(self.clock.now())
    }

    /// The rows `sql` answers on a pooled connection.
    pub(crate) async fn rows(&self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<Vec<Row>> {
        let client = self.client().await?;
        query(&client, sql, params).await
    }

    /// The items `sql` lists of one object, whose row it left-joins to
    /// them: `gone` when it answers no row (the object's row is missing);
    /// rows whose first column (the item's id) is NULL, those of the
    /// object's row alone, are not items.
    pub(crate) async fn owned_rows(
        &self,
        gone: Error,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<Row>> {
        let rows = self.rows(sql, params).await?;
        if rows.is_empty() {
            return Err(gone);
        }
        let mut items = Vec::with_capacity(rows.len());
        for row in rows {
            if col::<Option<i64>>(&row, 0)?.is_some() {
                items.push(row);
            }
        }
        Ok(items)
    }

    /// The only row `sql` answers on a pooled connection, or `gone` when it
    /// answers none: the handle's row (or an ancestor's) no longer exists.
    /// One statement, run again if it was a deadlock's victim (see
    /// [`retrying`](Self::retrying)).
    pub(crate) async fn row_or(
        &self,
        gone: Error,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Row> {
        let row = self
            .retrying(|| async {
                let client = self.client().await?;
                query_opt(&client, sql, params).await
            })
            .await?;
        row.ok_or(gone)
    }

    /// `result`, unless it is a `TimeOutOfRange` and `exists` (a query
    /// of `params`) finds no row: then `gone`. A lease or delay is judged
    /// against the clock only for an object that still exists, as the
    /// crate's `# Limits` section says; the check runs only on that error.
    pub(crate) async fn gone_before_range<T>(
        &self,
        result: Result<T>,
        gone: Error,
        exists: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<T> {
        match result {
            Err(e @ Error::TimeOutOfRange(_)) => {
                self.row_or(gone, exists, params).await?;
                Err(e)
            }
            other => other,
        }
    }

    /// One value of row `id` selected by `sql` (`$1` the id), decoded by
    /// `read`; `gone` if there is no such row.
    pub(crate) async fn field_of<T>(
        &self,
        gone: Error,
        sql: &str,
        id: i64,
        read: fn(&Row, usize) -> Result<T>,
    ) -> Result<T> {
        read(&self.row_or(gone, sql, &[&id]).await?, 0)
    }

    /// Runs `sql`, which changes row `id` (`$1`; `values` are `$2` on);
    /// `gone` if no row matched.
    pub(crate) async fn change_of(
        &self,
        gone: Error,
        sql: &str,
        id: i64,
        values: &[&(dyn ToSql + Sync)],
    ) -> Result<()> {
        let params: Vec<&(dyn ToSql + Sync)> = std::iter::once(&id as _)
            .chain(values.iter().copied())
            .collect();
        self.change_or(gone, sql, &params).await
    }

    /// The id of child `name` of row `parent`, found by `sql`: one row
    /// while the parent exists (`gone` otherwise) holding the child's id or
    /// NULL, so one round trip tells a missing child from a gone parent.
    pub(crate) async fn child_id(
        &self,
        gone: Error,
        sql: &str,
        parent: i64,
        name: &str,
    ) -> Result<Option<i64>> {
        let row = self.row_or(gone, sql, &[&parent, &name.as_bytes()]).await?;
        col(&row, 0)
    }

    /// Runs `sql`, which changes the handle's own row, on a pooled
    /// connection (again if it was a deadlock's victim); `gone` when it
    /// changed no row.
    pub(crate) async fn change_or(
        &self,
        gone: Error,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<()> {
        match self.execute_retrying(sql, params).await? {
            0 => Err(gone),
            _ => Ok(()),
        }
    }

    /// Runs `sql` through [`Shared::retrying`], on a fresh pooled connection
    /// each try; the number of rows it changed.
    pub(crate) async fn execute_retrying(
        &self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<u64> {
        self.retrying(|| async {
            let client = self.client().await?;
            execute(&client, sql, params).await
        })
        .await
    }

    /// The only row `sql` answers, run through [`Shared::retrying`] on a
    /// fresh pooled connection each try; `missing()` when it answers none.
    pub(crate) async fn row_retrying(
        &self,
        missing: impl Fn() -> Error,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Row> {
        self.retrying(|| async {
            let client = self.client().await?;
            query_opt(&client, sql, params).await?.ok_or_else(&missing)
        })
        .await
    }

    /// True if `other` is a handle's view of this same backend.
    pub(crate) fn same(&self, other: &Shared) -> bool {
        self.instance == other.instance
    }

    /// Runs `op` again while it fails with a serialization failure or a
    /// deadlock, a bounded number of times, with a short random pause.
    pub(crate) async fn retrying<T, F, Fut>(&self, mut op: F) -> Result<T>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        let mut tries = 1;
        loop {
            match op().await {
                Err(e) if tries < MAX_TRIES && is_retryable(&e) => {
                    tries += 1;
                    let pause = fastrand::u64(1..=(2u64 << tries.min(6)));
                    tokio::time::sleep(std::time::Duration::from_millis(pause)).await;
                }
                result => return result,
            }
        }
    }

    /// Lazy expiry over `scope` at `now`, in one statement: every
    /// active, pending attempt whose deadline is strictly before now
    /// becomes Expired and leaves its worker's active list, and its unit's
    /// active link is cleared.
    pub(crate) async fn expire<S: Session>(
        &self,
        client: &S,
        scope: Scope,
        now: Time,
    ) -> Result<()> {
        const EXPIRE: &str = "SELECT coordinate_expire($1, $2, $3)";
        let (namespace, spec) = match scope {
            Scope::All => (None, None),
            Scope::Namespace(id) => (Some(id), None),
            Scope::Spec(id) => (None, Some(id)),
        };
        execute(client, EXPIRE, &[&namespace, &spec, &now]).await?;
        Ok(())
    }

    /// Makes an expiry check durable: when a read or change found an
    /// attempt to expire at `now` (`stale`), the expiry is applied here, so
    /// that every later call, on any job server, sees the attempt Expired.
    /// Nothing to expire (the usual case) costs nothing.
    pub(crate) async fn settle(&self, scope: Scope, now: Time, stale: bool) -> Result<()> {
        if !stale {
            return Ok(());
        }
        self.retrying(|| async {
            let client = self.client().await?;
            self.expire(&client, scope, now).await
        })
        .await
    }

    /// A checking read made durable: `read` answers as of expiry at
    /// `now`, without writing, and says whether it found an attempt to
    /// expire. When it did, the expiry is applied (see [`Shared::settle`])
    /// and the read made again, so that the answer is what the store holds
    /// after the expiry: a change that committed between the first read and
    /// the expiry (a finish from a server whose clock had not reached the
    /// deadline) is answered, not contradicted. Nothing to expire (the usual
    /// case) costs one statement.
    pub(crate) async fn checked<T, F, Fut>(&self, scope: Scope, now: Time, mut read: F) -> Result<T>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<(T, bool)>>,
    {
        let (mut answer, mut stale) = read().await?;
        // Again only if a lease came due meanwhile: one handed out by a
        // server whose clock lags, with a deadline already before now.
        for _ in 0..MAX_TRIES {
            if !stale {
                return Ok(answer);
            }
            self.settle(scope, now, true).await?;
            (answer, stale) = read().await?;
        }
        self.settle(scope, now, stale).await?;
        Ok(answer)
    }

    /// The summary of `scope` as of an expiry check at now: one
    /// read-only statement over the specs' counters (see [`Shared::settle`]
    /// and the `counts` module).
    pub(crate) async fn summarize(&self, scope: Scope) -> Result<Summary> {
        macro_rules! per_spec {
            ($filter:literal) => {
                concat!(
                    "SELECT n.name, s.name, c.* FROM work_spec s",
                    " JOIN namespace n ON n.id = s.namespace_id CROSS JOIN LATERAL ",
                    counts::spec_counts!("s.id", "$1"),
                    $filter
                )
            };
        }
        const ALL: &str = per_spec!("");
        const NAMESPACE: &str = per_spec!(" WHERE s.namespace_id = $2");
        const SPEC: &str = per_spec!(" WHERE s.id = $2");
        let now = self.now();
        let mut summary = self
            .checked(scope, now, || async {
                let client = self.client().await?;
                let rows = match scope {
                    Scope::All => query(&client, ALL, &[&now]).await?,
                    Scope::Namespace(id) => query(&client, NAMESPACE, &[&now, &id]).await?,
                    Scope::Spec(id) => query(&client, SPEC, &[&now, &id]).await?,
                };
                drop(client);
                let mut summary = Vec::new();
                let mut stale = false;
                for row in &rows {
                    let counts = counts::SpecCounts::from_row(row, 2)?;
                    stale |= counts.stale();
                    let (namespace, work_spec) = (text(row, 0)?, text(row, 1)?);
                    for (status, count) in counts.statuses()? {
                        summary.push(SummaryRecord {
                            namespace: namespace.clone(),
                            work_spec: work_spec.clone(),
                            status,
                            count,
                        });
                    }
                }
                Ok((summary, stale))
            })
            .await?;
        summary.sort();
        Ok(summary)
    }
}

// ---- statement helpers -------------------------------------------------

/// A function that runs a cached prepared statement through the
/// [`GenericClient`] method of the same name, noted as in flight on its
/// connection while it runs.
macro_rules! prepared {
    ($(#[$doc:meta])* $method:ident -> $answer:ty) => {
        $(#[$doc])*
        pub(crate) async fn $method<S: Session>(
            session: &S,
            sql: &str,
            params: &[&(dyn ToSql + Sync)],
        ) -> Result<$answer> {
            let (client, flight) = session.parts();
            flight
                .run(async {
                    let stmt = client.prepare_cached(sql).await.map_err(db)?;
                    client.$method(&stmt, params).await.map_err(db)
                })
                .await
        }
    };
}

prepared!(
    /// Runs a cached prepared statement and answers its rows.
    query -> Vec<Row>
);
prepared!(
    /// Runs a cached prepared statement and answers its only row, if any.
    query_opt -> Option<Row>
);
prepared!(
    /// Runs a cached prepared statement and answers how many rows it changed.
    execute -> u64
);

// ---- row decoding (never panics on what the database holds) -------------

/// Column `i` of `row`.
pub(crate) fn col<'a, T: FromSql<'a>>(row: &'a Row, i: usize) -> Result<T> {
    row.try_get(i).map_err(decode)
}

/// A `bytea` name column as a string.
pub(crate) fn text(row: &Row, i: usize) -> Result<String> {
    let bytes: &[u8] = col(row, i)?;
    std::str::from_utf8(bytes)
        .map(str::to_owned)
        .map_err(decode)
}

/// A `jsonb` data map column.
pub(crate) fn data_map(row: &Row, i: usize) -> Result<DataMap> {
    let Json(map): Json<DataMap> = col(row, i)?;
    Ok(nul::unescape(map))
}

/// Handles keyed by name from rows of `(id, name)`.
pub(crate) fn by_name<T>(
    rows: &[Row],
    handle: impl Fn(i64, String) -> T,
) -> Result<BTreeMap<String, T>> {
    rows.iter()
        .map(|row| {
            let name = text(row, 1)?;
            Ok((name.clone(), handle(col(row, 0)?, name)))
        })
        .collect()
}

/// The stored status of a pending attempt that is no longer its unit's
/// active one (cleared or superseded): kept apart from Pending's ordinal so
/// that the index of pending attempts, which every expiry check reads by
/// deadline, holds only attempts an expiry check can expire (migration 22).
pub(crate) const DETACHED_PENDING: i16 = 5;

/// The attempt status stored as `code`.
fn stored_status(code: i16) -> Result<AttemptStatus> {
    if code == DETACHED_PENDING {
        return Ok(AttemptStatus::Pending);
    }
    AttemptStatus::from_ordinal(i64::from(code)).map_err(decode)
}

/// An attempt status column.
pub(crate) fn attempt_status(row: &Row, i: usize) -> Result<AttemptStatus> {
    stored_status(col(row, i)?)
}

/// A nullable attempt status column (from an outer join).
pub(crate) fn attempt_status_opt(row: &Row, i: usize) -> Result<Option<AttemptStatus>> {
    let code: Option<i16> = col(row, i)?;
    code.map(stored_status).transpose()
}

/// The stored form of an attempt status.
pub(crate) fn status_code(status: AttemptStatus) -> i16 {
    // Ordinals are 0..=4.
    i16::try_from(status.ordinal()).unwrap_or(i16::MAX)
}

/// A duration as integer microseconds.
pub(crate) fn micros(d: Duration) -> Result<i64> {
    d.num_microseconds()
        .ok_or_else(|| Error::TimeOutOfRange(format!("duration {d} in microseconds")))
}

/// A data map as a `jsonb` parameter (see the `nul` and `jsonb` modules).
pub(crate) fn json(map: &DataMap) -> Jsonb<'_> {
    Jsonb(nul::escape(map))
}

/// SQL: the status of active attempt `$a` (an alias of `attempt`) as an
/// expiry check at `$now` would leave it: a pending attempt past its
/// deadline is expired, and an expired attempt is no longer active, so the
/// unit has none (NULL). A macro so statements can `concat!` it.
macro_rules! live_status {
    ($a:literal, $now:literal) => {
        concat!(
            "CASE WHEN ",
            $a,
            ".status = 0 AND ",
            $a,
            ".expiration_time < ",
            $now,
            " THEN NULL ELSE ",
            $a,
            ".status END"
        )
    };
}
pub(crate) use live_status;

/// SQL: true if an expiry check at `$now` over the specs that `$scope`
/// admits (a condition on `x.work_spec_id`) would change anything: expire
/// an attempt `x` (an active, pending attempt past its deadline) or make a
/// unit `x` waiting for its not-before time ready. The attempt's unit is
/// looked up by a subquery of its own, so the plan fetches it by key rather
/// than joining every unit.
macro_rules! expirable {
    ($scope:literal, $now:literal) => {
        concat!(
            "(EXISTS (SELECT 1 FROM attempt x WHERE ",
            $scope,
            " AND x.status = 0 AND x.expiration_time < ",
            $now,
            " AND (SELECT y.active_attempt_id FROM work_unit y WHERE y.id = x.work_unit_id) = x.id)",
            " OR EXISTS (SELECT 1 FROM work_unit x WHERE ",
            $scope,
            " AND x.state = 4 AND x.not_before <= ",
            $now,
            "))"
        )
    };
}
pub(crate) use expirable;

/// The meta columns of `work_spec` (alias `s`), in the order [`read_meta`]
/// reads them; a macro so statements can `concat!` it.
macro_rules! meta_columns {
    () => {
        "s.priority, s.weight, s.paused, s.continuous, s.can_be_continuous, s.min_memory_gb, \
         s.interval_us, s.next_continuous, s.max_running, s.max_attempts_returned, \
         s.max_retries, s.next_work_spec_name, s.runtime"
    };
}
pub(crate) use meta_columns;

/// The number of columns of [`meta_columns!`].
pub(crate) const META_WIDTH: usize = 13;

/// Reads [`meta_columns!`] starting at column `at`; counts are zero.
pub(crate) fn read_meta(row: &Row, at: usize) -> Result<WorkSpecMeta> {
    Ok(WorkSpecMeta {
        priority: col(row, at)?,
        weight: col(row, at + 1)?,
        paused: col(row, at + 2)?,
        continuous: col(row, at + 3)?,
        can_be_continuous: col(row, at + 4)?,
        min_memory_gb: col(row, at + 5)?,
        interval: Duration::microseconds(col(row, at + 6)?),
        next_continuous: col(row, at + 7)?,
        max_running: col(row, at + 8)?,
        max_attempts_returned: col(row, at + 9)?,
        max_retries: col(row, at + 10)?,
        next_work_spec_name: text(row, at + 11)?,
        available_count: 0,
        pending_count: 0,
        runtime: text(row, at + 12)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_status_codes_match_the_sql() {
        // The SQL of this module spells these ordinals out.
        assert_eq!(status_code(AttemptStatus::Pending), 0);
        assert_eq!(status_code(AttemptStatus::Expired), 1);
        assert_eq!(status_code(AttemptStatus::Finished), 2);
        assert_eq!(status_code(AttemptStatus::Failed), 3);
        assert_eq!(status_code(AttemptStatus::Retryable), 4);
    }

    #[test]
    fn meta_columns_match_their_width() {
        assert_eq!(meta_columns!().split(',').count(), META_WIDTH);
    }

    /// On a database whose default isolation level is stricter, the
    /// backend's statements still run at read committed.
    #[cfg(feature = "testing")]
    #[tokio::test]
    async fn pooled_connections_run_at_read_committed() {
        let cluster = testing::TestCluster::shared_or_panic();
        let db = cluster.fresh_database().await.unwrap();
        let (admin, connection) =
            tokio_postgres::connect(&cluster.database_url(&db), tokio_postgres::NoTls)
                .await
                .unwrap();
        tokio::spawn(connection);
        admin
            .batch_execute(&format!(
                "ALTER DATABASE {db} SET default_transaction_isolation = 'serializable'"
            ))
            .await
            .unwrap();
        let backend = PostgresBackend::builder(cluster.url())
            .database(&db)
            .build()
            .await
            .unwrap();
        let rows = backend
            .shared
            .rows("SHOW transaction_isolation", &[])
            .await
            .unwrap();
        assert_eq!(rows[0].get::<_, String>(0), "read committed");
    }
}
