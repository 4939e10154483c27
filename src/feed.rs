//! Change feeds: how a backend tells every cache over it that objects were
//! deleted or changed, so that caches in several job servers stay coherent.
//!
//! A feed is an optional capability of a [`Backend`](crate::Backend):
//! [`Backend::change_feed`](crate::Backend::change_feed) answers `None` by
//! default, and a cache over a backend without a feed relies on `Gone`
//! recovery alone (see [`cache`](crate::cache)). A backend
//! with one publishes a [`ChangeEvent`] for every delete (and for the few
//! changes a cache must know of), to every [`Subscription`], including
//! subscriptions in other processes when the backend is shared (PostgreSQL).
//!
//! A subscription reports a [`FeedGap`] when it may have missed events (it
//! fell behind, or its connection was lost). After a gap the subscriber must
//! assume anything may have changed, and subscribe again.
//!
//! Events are *hints about names*: "the unit called U in spec S of
//! namespace N was deleted". Between the delete and its event a same-named
//! object may already have been created again; subscribers must treat an
//! event as "forget what you know about this name", never as "this name no
//! longer exists".
//!
//! # Backends
//!
//! - `MemoryBackend`: an in-process broadcast channel; every change made
//!   through the backend or a clone of it, cache or no cache, is published
//!   under the state lock, so in order.
//! - `PostgresBackend`: `LISTEN`/`NOTIFY`. Triggers notify from the deleting
//!   statement's own transaction, so an event is sent on commit and never on
//!   rollback, whoever deleted (this crate, another job server, an
//!   administrator in `psql`, whose renames and moves count as deletes of
//!   the old names; `TRUNCATE` makes everyone flush). Payloads stay
//!   under 7000 bytes (names hex-encoded): a delete of more than 200 units
//!   of a spec, or of fewer whose names do not fit, is one spec-wide event,
//!   and of more than 200 specs of a namespace one namespace-wide event. Each backend listens on one connection of its own,
//!   outside the pool; losing it ends every subscription with a gap, and
//!   so does its not answering a periodic probe in time (see
//!   `PostgresBuilder::feed_heartbeat`).
//!   Sessions running with `session_replication_role = replica` skip
//!   triggers, and so the feed.
//!
//! # Caches
//!
//! [`Cache`](crate::cache::Cache) subscribes to its backend's feed; what it
//! then guarantees across job servers, and what it does not, is written
//! once, in its [caveats](crate::cache::Cache#caveats).

use std::fmt;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;

use crate::error::Result;

/// Which work units a [`ChangeEvent::WorkUnitsDeleted`] names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum DeletedUnits {
    /// Exactly these units (by name) were deleted.
    Names(Vec<String>),
    /// Some or all units of the spec were deleted; which ones is not said
    /// (a large delete, kept within the transport's message size).
    All,
}

/// What a purge request covers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum PurgeScope {
    /// Everything cached.
    Everything,
    /// A namespace and everything under it.
    Namespace {
        /// The namespace.
        namespace: String,
    },
    /// A work spec and its units.
    WorkSpec {
        /// The spec's namespace.
        namespace: String,
        /// The spec.
        work_spec: String,
    },
    /// One work unit.
    WorkUnit {
        /// The unit's namespace.
        namespace: String,
        /// The unit's spec.
        work_spec: String,
        /// The unit.
        work_unit: String,
    },
    /// One worker.
    Worker {
        /// The worker's namespace.
        namespace: String,
        /// The worker.
        worker: String,
    },
}

/// One change a cache must hear of. Plain data; names are the objects'
/// names, never backend ids.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum ChangeEvent {
    /// The namespace and everything in it were deleted — or much in it
    /// changed at once (a delete of more than 200 of its specs, a rename):
    /// forget everything under the name.
    NamespaceDestroyed {
        /// The namespace.
        namespace: String,
    },
    /// The work spec and its units were deleted.
    WorkSpecDestroyed {
        /// The spec's namespace.
        namespace: String,
        /// The spec.
        work_spec: String,
    },
    /// The work spec's definition was replaced (the spec itself remains).
    WorkSpecRedefined {
        /// The spec's namespace.
        namespace: String,
        /// The spec.
        work_spec: String,
    },
    /// Work units of the spec were deleted.
    WorkUnitsDeleted {
        /// The spec's namespace.
        namespace: String,
        /// The spec.
        work_spec: String,
        /// Which units.
        units: DeletedUnits,
    },
    /// The worker was deleted or its parent changed.
    WorkerChanged {
        /// The worker's namespace.
        namespace: String,
        /// The worker.
        worker: String,
    },
    /// Someone asked every cache to drop what `scope` covers.
    Purge {
        /// What to drop.
        scope: PurgeScope,
        /// Why, for the logs.
        reason: String,
    },
}

/// Why a subscription may have missed events.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum FeedGap {
    /// The subscriber fell behind and this many events were dropped.
    Lagged(u64),
    /// The feed ended: its connection was lost or the backend went away.
    Closed,
}

impl fmt::Display for FeedGap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FeedGap::Lagged(n) => write!(f, "the subscriber fell behind by {n} events"),
            FeedGap::Closed => f.write_str("the change feed was closed"),
        }
    }
}

impl std::error::Error for FeedGap {}

/// A live subscription to a change feed: every event published after it was
/// made, in order, until a [`FeedGap`].
#[derive(Debug)]
pub struct Subscription {
    rx: broadcast::Receiver<ChangeEvent>,
}

impl Subscription {
    /// A subscription reading a broadcast channel; a lagging receiver is a
    /// [`FeedGap::Lagged`], a closed channel a [`FeedGap::Closed`].
    pub fn new(rx: broadcast::Receiver<ChangeEvent>) -> Self {
        Subscription { rx }
    }

    /// The next event, or the gap that ends this subscription.
    pub async fn recv(&mut self) -> std::result::Result<ChangeEvent, FeedGap> {
        match self.rx.recv().await {
            Ok(event) => Ok(event),
            Err(broadcast::error::RecvError::Lagged(n)) => Err(FeedGap::Lagged(n)),
            Err(broadcast::error::RecvError::Closed) => Err(FeedGap::Closed),
        }
    }
}

/// A backend's change feed (see the [module docs](self)).
///
/// ```
/// use coordinate::feed::{ChangeEvent, DeletedUnits};
/// use coordinate::memory::MemoryBackend;
/// use coordinate::{data, Backend, WorkUnitMeta, WorkUnitQuery};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> coordinate::Result<()> {
/// let backend = MemoryBackend::new();
/// let spec = backend.namespace("app").await?.set_work_spec(data!({"name": "resize"})).await?;
/// spec.add_work_unit("img-1", data!({}), WorkUnitMeta::default()).await?;
///
/// let feed = backend.change_feed().expect("the memory backend has a feed");
/// let mut events = feed.subscribe().await?;
/// spec.delete_work_units(&WorkUnitQuery::names(["img-1"])).await?;
/// assert_eq!(
///     events.recv().await,
///     Ok(ChangeEvent::WorkUnitsDeleted {
///         namespace: "app".into(),
///         work_spec: "resize".into(),
///         units: DeletedUnits::Names(vec!["img-1".into()]),
///     })
/// );
/// # Ok(())
/// # }
/// ```
#[async_trait]
pub trait ChangeFeed: Send + Sync + fmt::Debug {
    /// A new subscription; events published once this returns reach it.
    async fn subscribe(&self) -> Result<Subscription>;

    /// Publishes a [`ChangeEvent::Purge`] to every subscriber of this feed
    /// (in every process sharing the backend).
    async fn broadcast_purge(&self, scope: PurgeScope, reason: &str) -> Result<()>;
}
