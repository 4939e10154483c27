//! [`Cache`]: name-identity caching over any [`Backend`].
//!
//! A job server answers stateless requests, so every request resolves a
//! namespace, a work spec and a work unit by name. Wrapped in a [`Cache`],
//! a backend answers repeated resolutions from memory, without ever acting
//! on the wrong object or looping on a dead one.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> coordinate::Result<()> {
//! use coordinate::cache::Cache;
//! use coordinate::memory::MemoryBackend;
//! use coordinate::{data, Backend, BackendExt, WorkUnitMeta};
//! use std::sync::Arc;
//!
//! let backend: Arc<dyn Backend> = Arc::new(Cache::new(MemoryBackend::new()));
//! let spec = backend.namespace("app").await?.set_work_spec(data!({"name": "jobs"})).await?;
//! spec.add_work_unit("u1", data!({}), WorkUnitMeta::default()).await?;
//! // Every later request resolves the chain from memory.
//! let a = backend.work_unit_at("app", "jobs", "u1").await?;
//! let b = backend.work_unit_at("app", "jobs", "u1").await?;
//! assert!(Arc::ptr_eq(&a, &b));
//! # Ok(())
//! # }
//! ```
//!
//! See [`Cache`] for what is cached, the identity rule, the caveats and the
//! concurrency guarantees; [`CacheBuilder`] for capacities and expiry.

mod attempt;
mod builder;
mod changes;
mod feed;
mod front;
mod handle;
mod inflight;
mod key;
mod key_locks;
mod lifecycle;
mod link;
mod namespace;
mod recover;
mod shared;
mod stats;
mod store;
mod sweep;
mod work_spec;
mod work_unit;
mod worker;

use async_trait::async_trait;
use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

pub use builder::{
    CacheBuilder, DEFAULT_NAMESPACES, DEFAULT_WORKERS, DEFAULT_WORK_SPECS, DEFAULT_WORK_UNITS,
    MAX_EXPIRY,
};
pub use feed::FeedStats;
pub use stats::{CacheStats, KindStats};

use crate::api::{Backend, NamespaceRef};
use crate::error::Result;
use crate::feed::ChangeFeed;
use crate::model::Summary;
use key::ROOT_SCOPE;
use lifecycle::Detach;
use namespace::CachedNamespace;
use shared::{Caches, Shared};
use stats::Counters;

/// A [`Backend`] that memoizes namespace, work spec, work unit and worker
/// handles by name.
///
/// `Cache<B>` implements [`Backend`] itself, so it stacks and erases:
/// `Cache<Cache<B>>`, `Cache<Arc<dyn Backend>>` and an `Arc<dyn Backend>`
/// holding a `Cache` all work. (Over a backend with a change feed, stack
/// no caches: each level follows the feed on its own, and an outer level
/// that applies an event before the inner one may reload the inner level's
/// stale entry and keep it.) Every handle it gives out — from lookups,
/// upserts, lists, an attempt's `work_unit()` and `worker()` — is one of its
/// own wrappers, so a caller never mixes cached and uncached objects.
///
/// # Object identity
///
/// A plain handle names one *object*: once deleted it answers `Gone`, even if
/// a new object takes its name. A cached handle names a *name*: it stands for
/// **the object that now has that name**. It is bound to one object at a time;
/// when the backend answers `Gone` (or the cache knows the object was deleted),
/// the handle resolves its name again through its cached parent, swaps to the
/// object found, and retries — at most twice per call, never in a loop.
///
/// * **Recreated name.** After an object is deleted and a new one is
///   created under its name (through the cache or not), the cached handle
///   acts on the new object and does not answer `Gone`.
/// * **Deleted name.** If no object has the name any more, the entry is
///   evicted and the caller gets the backend's answer: `Gone` from a handle
///   method, `NoSuchWorkSpec` / `NoSuchWorkUnit` from a lookup.
/// * **Recovery creates nothing.** Re-resolving a work spec, unit or worker
///   never creates its namespace or itself: a cached spec whose namespace
///   was destroyed answers `Gone`, and the namespace stays destroyed.
/// * **Namespaces are get-or-create.** `Backend::namespace(name)` creates
///   the namespace if it is missing, and a cached namespace handle stands
///   for that call: after its namespace is destroyed, its operations act on
///   a new, empty namespace of the same name, exactly as a fresh
///   `namespace(name)` would. Its `destroy` never re-resolves, though: on a
///   handle whose namespace is already gone it is a no-op (as on any
///   backend), so an old handle cannot destroy a newer namespace by accident.
///   That includes the handle a lookup answers from a stale entry: after a
///   namespace was destroyed and made again behind the cache's back, and
///   before the change feed drops the entry (or, without a feed, before a
///   call through it finds its namespace gone and follows the name),
///   `namespace(name).destroy()` destroys nothing.
///   Its specs and workers follow their names into the newer namespace
///   without binding it there: only its own calls do.
/// * **Same handle while cached.** Repeated lookups of a name return the
///   same `Arc` (`Arc::ptr_eq`) while its entry stays cached; after an
///   invalidation the next lookup returns a fresh handle. Attempts are not
///   memoized (they have no name), but their unit and worker are.
/// * A `Gone` that may be about an argument (`make_attempt`'s unit,
///   `set_parent`'s worker) re-resolves the argument, if it is one of this
///   cache's handles, and retries; still `Gone`, it re-resolves the worker
///   the call was made on and retries; then the argument again, then the
///   worker, each at most twice, as a call on either alone would. A `Gone`
///   after that comes back to the caller. An argument that is not one of this cache's
///   handles goes to the backend first, even on a handle known to be dead,
///   so a foreign one is refused (`WrongBackend`) as the backend refuses it.
/// * **Limits first.** Every call checks its input against the crate's
///   [Limits](crate#limits) (and reads a definition) before anything else,
///   with the functions the backends use: bad input gets the backend's
///   error, never a `Gone` from a handle known to be dead, and re-creates
///   no destroyed namespace; and data nested too deep is refused before
///   the cache clones it, which would recurse once per level. A dead
///   handle is re-resolved without first asking its dead object, so these
///   checks cannot be left to the backend.
///
/// The law of a recreated name, on a unit deleted behind the cache's back:
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> coordinate::Result<()> {
/// use coordinate::cache::Cache;
/// use coordinate::memory::MemoryBackend;
/// use coordinate::{data, Backend, BackendExt, Error, ObjectKind, WorkUnitMeta, WorkUnitQuery};
///
/// let memory = MemoryBackend::new();
/// let cache = Cache::new(memory.clone());
/// let spec = cache.namespace("n").await?.set_work_spec(data!({"name": "s"})).await?;
/// spec.add_work_unit("u", data!({"v": 1}), WorkUnitMeta::default()).await?;
/// let cached = cache.work_unit_at("n", "s", "u").await?;
/// let plain = memory.work_unit_at("n", "s", "u").await?;
///
/// // Deleted and recreated directly on the backend.
/// let direct = memory.work_spec_at("n", "s").await?;
/// direct.delete_work_units(&WorkUnitQuery::all()).await?;
/// direct.add_work_unit("u", data!({"v": 2}), WorkUnitMeta::default()).await?;
///
/// assert_eq!(cached.data().await?, data!({"v": 2})); // follows the name
/// let gone = Error::Gone { kind: ObjectKind::WorkUnit };
/// assert_eq!(plain.data().await.err(), Some(gone)); // bound to the object
/// # Ok(())
/// # }
/// ```
///
/// The law of a deleted name:
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> coordinate::Result<()> {
/// use coordinate::cache::Cache;
/// use coordinate::memory::MemoryBackend;
/// use coordinate::{data, Backend, Error, ObjectKind, WorkUnitMeta};
///
/// let memory = MemoryBackend::new();
/// let cache = Cache::new(memory.clone());
/// let ns = cache.namespace("n").await?;
/// let spec = ns.set_work_spec(data!({"name": "s"})).await?;
/// let unit = spec.add_work_unit("u", data!({}), WorkUnitMeta::default()).await?;
///
/// ns.destroy().await?;
/// let gone = |kind| Some(Error::Gone { kind });
/// assert_eq!(spec.meta(false).await.err(), gone(ObjectKind::WorkSpec));
/// assert_eq!(unit.status().await.err(), gone(ObjectKind::WorkUnit));
/// // The spec's recovery did not bring its namespace back…
/// assert!(!memory.namespaces().await?.contains_key("n"));
/// // …but the namespace handle is get-or-create: it gets a new, empty one.
/// assert!(ns.work_spec_names().await?.is_empty());
/// assert_eq!(
///     ns.work_spec("s").await.err(),
///     Some(Error::NoSuchWorkSpec { name: "s".into() })
/// );
/// # Ok(())
/// # }
/// ```
///
/// # Operation behavior
///
/// | Operation | Behaviour |
/// |---|---|
/// | `Backend::namespace`, `Namespace::work_spec`, `Namespace::worker`, `WorkSpec::work_unit` | **cached**: a hit answers from memory; a miss makes one backend lookup (shared by concurrent misses of the name) and caches the handle. Failed lookups are not cached. |
/// | `set_work_spec`, `add_work_unit` | pass through; the returned handle is **cached** (or the cached one returned) |
/// | `namespaces`, `workers`, `work_units`, `children`, `parent`, `request_attempts`, `make_attempt`, `active_attempt`, `attempts`, `active_attempts`, `all_attempts`, `child_attempts` | pass through; every handle in the result is the cache's (looked up or adopted into the cache, with no extra backend call); attempts `request_attempts` or `make_attempt` made but the cache could not make handles for (a read it needs for another namespace's unit failing) are expired before the error is answered |
/// | `Namespace::destroy` | pass through, then **invalidates** the namespace and, through it, every cached spec, unit and worker under it |
/// | `destroy_work_spec(name)` | pass through, then **invalidates** the spec and its units (also when the backend answers `NoSuchWorkSpec`, or fails itself: the spec may be gone all the same) |
/// | `delete_work_units(query)` | pass through, then **invalidates** unless it deleted nothing (a failure may have deleted units all the same): the named units if the query names units; otherwise every cached unit of the spec, since which units a status or paging query removed is unknown (running the query first would race with other writers, and a lookup per surviving unit is cheaper than a wrong answer) |
/// | `make_attempt(unit)`, `set_parent(worker)` | the cache's handles passed in are **unwrapped** to the backend's; others go to the backend as given (`WrongBackend` if foreign) |
/// | every other method (data, meta, status, set_*, summaries, counts, priorities, attempt state changes, …) | **passes through** unchanged, results and errors alike; only `Gone` triggers the recovery above |
///
/// Errors are never re-wrapped: callers match on them as on the backend's.
/// (A backend failure shared by several coalesced callers reaches each of
/// them as a clone of the same `Error::Backend`: the original source, which
/// each can `downcast_ref`.)
///
/// # Caveats
///
/// Coherence across job servers: with a change feed (a backend whose
/// [`change_feed`](crate::Backend::change_feed) is `Some`, and a cache
/// built inside a tokio runtime), deletes made behind the cache's back reach
/// it as events, each dropping exactly the entries it names, and after a
/// feed gap a possibly stale entry is never served (until subscribed
/// again, every lookup goes to the backend, concurrent misses of one name
/// still sharing one call); without one, such
/// deletes are noticed only when a handle answers `Gone`, and a
/// time-to-live or time-to-idle ([`CacheBuilder`]) bounds how long stale
/// entries live. [`crate::feed`] states what is and is not guaranteed;
/// [`purge`](Cache::purge) and [`broadcast_purge`](Cache::broadcast_purge)
/// drop entries by hand, and [`CacheStats::feed`] counts events, flushes,
/// gaps and reconnects.
///
/// * Either way, single-object reads and writes never depend on the feed
///   or on expiry: a handle whose object is gone answers `Gone` or follows
///   its name (a namespace handle recreates its namespace, as above). A
///   backend that only finds a deletion when a row is missing may answer a
///   call under a deleted parent with an empty result instead of `Gone`
///   (the model permits it for lists, counts, bulk deletes and priority
///   changes, and lookups by name; the PostgreSQL backend does so for a
///   namespace's and a spec's, while a unit's and a worker's own lists
///   answer `Gone`): over such a backend, those calls on a handle whose
///   object was deleted behind the cache's back answer that empty result
///   until the feed drops its entry (a unit's by its name: after a delete
///   by status, or of its spec, a kept unit handle learns of it from a
///   `Gone`), or until a single-object call on it answers `Gone` and it
///   follows its name.
/// * Feed events reach children only through the parent entry now cached.
///   So a namespace or spec handle kept after its entry left the cache
///   (evicted, expired, purged, or dropped by an event), or kept under a
///   namespace whose entry did, re-resolves its name on its next use and
///   from then on shares the entry now cached: a delete behind the cache
///   reaches the children it looks up. Re-resolving a name without
///   creating its object costs a lookup through the cache, or on a miss a
///   listing of the namespaces (the API has no "existing namespace"
///   lookup). A unit or worker handle has no children: kept after its
///   entry (or a parent's) left, it keeps working on its object and
///   recovers on `Gone`; a unit handle kept after an event dropped its
///   entry re-resolves its name on its next use. So a kept unit handle
///   whose spec (or worker handle whose namespace) an administrator
///   renamed in the database — which this crate never does — goes on
///   acting on its object under the new name, and so does a kept worker
///   handle whose worker was renamed so; lookups of the old name find it
///   gone.
/// * Attempts pass straight through: an attempt of a deleted unit answers
///   `Gone`, even if a unit of the same name exists again.
/// * A bulk invalidation (a destroyed namespace or spec, a query delete, a
///   parent's eviction) makes the children unreachable at once; a sweep
///   after later inserts finds them, and the inserts after it drop them a
///   few at a time ([`KindStats::swept`]). Until then they take room.
///
/// # Concurrency
///
/// * Hits take no lock. Each kind's entries live in a `moka::sync::Cache`
///   (the authority for capacity, eviction, admission and expiry) and,
///   without expiry, in a lock-free front map that answers hits and never
///   serves an entry after its eviction or invalidation has returned; once
///   a kind is half full, one lookup in 4 per thread also reaches moka, so
///   its policy sees an unbiased sample. The front lives as long as the
///   cache's shared state and holds weak references, so a hit reaches it
///   without taking a reference to the detachable entry stores. Each
///   counting thread owns a counter stripe (a plain store): threads share
///   no written cache line of ours.
/// * Concurrent misses of one name make exactly one backend call: the
///   others await the same shared future, result or error, through a
///   per-kind in-flight map whose mutex is never held across an `.await`.
///   So do concurrent recoveries of one name after `Gone` (each of which
///   finds the existing object, never creating one, so they share calls
///   with each other, not with lookups). Misses of different names proceed
///   in parallel, and hits never wait for a miss in flight.
/// * **Cancellation.** Any lookup may be cancelled (its future dropped, as
///   when a client disconnects). A load belongs to the lookups awaiting it:
///   when the last of them is dropped, the load leaves the in-flight map and
///   its future is dropped at once, with whatever it holds (a pooled
///   connection, say); no spawned task cleans up. So the in-flight map is
///   empty whenever no lookup runs ([`KindStats::loads_in_flight`]), and a
///   load every waiter gave up costs the next lookup a new backend call.
/// * **How old an answer can be.** A lookup receives the answer of a
///   backend call started at most 1 s before it (a later miss starts a load
///   of its own, which replaces the older one): whatever was committed 1 s
///   before a lookup began is in its answer. The same holds for a `Gone`
///   recovery, whose answer may be `Gone` again: an object made under the
///   name within that second may be missed, and the call answers `Gone`.
///   While a backend stalls, a name looked up without pause costs at most
///   one extra load per second.
/// * **Adoptions and deletes.** A handle a list, an upsert or an attempt
///   returns is cached without a lookup, unless its name was dropped (a
///   delete through the cache, a change event, a query delete of its
///   spec's units) while that call ran: the answer may then be from
///   before the delete, and the handle is returned uncached, to re-resolve
///   its name on first use.
/// * Every other step that awaits is cancel-safe too. A `Gone` recovery
///   cancelled midway leaves the handle bound to its dead object, so its
///   next call recovers again (a recovery swaps the link atomically); if
///   the runtime running the change-feed task shuts down, the cache stops
///   serving entries, as during a gap. A delete through the cache cancelled
///   while the backend runs it may still be applied; the cache then learns
///   of it as of a delete behind its back.
/// * Entries live in one moka cache per kind, keyed by (parent scope, name):
///   one global bound per kind however many parents there are, and a whole
///   parent's children are dropped at once by giving the parent a new scope.
pub struct Cache<B> {
    /// First, so it runs while `shared` is still held (fields drop in order).
    detach: Detach,
    inner: Arc<B>,
    shared: Arc<Shared>,
    /// What the entry stores were built with, to build them anew.
    settings: CacheBuilder<B>,
}

impl<B: Backend + 'static> Cache<B> {
    /// A cache over `backend` with the default capacities and no expiry
    /// (see [`CacheBuilder`]).
    pub fn new(backend: B) -> Self {
        CacheBuilder::new().build(backend)
    }

    fn from_parts(backend: B, settings: CacheBuilder<B>) -> Self {
        let counters = Arc::new(Counters::default());
        let fronts = settings.fronts();
        let caches = settings.caches(&counters, &fronts);
        let inner = Arc::new(backend);
        let shared = Shared::new(
            Arc::clone(&inner) as Arc<dyn Backend>,
            fronts,
            caches,
            counters,
        );
        feed::start(&shared);
        Cache {
            detach: Detach(Arc::downgrade(&shared)),
            inner,
            shared,
            settings,
        }
    }

    /// A builder for capacities and expiry; its `build(backend)` makes the
    /// cache.
    ///
    /// ```
    /// use coordinate::{Cache, MemoryBackend};
    /// let cache: Cache<MemoryBackend> = Cache::builder().work_units(10_000).build(MemoryBackend::new());
    /// # drop(cache);
    /// ```
    pub fn builder() -> CacheBuilder<B> {
        CacheBuilder::new()
    }
}

impl<B> Cache<B> {
    /// The wrapped backend.
    pub fn get_ref(&self) -> &B {
        &self.inner
    }

    /// Counters per handle kind.
    pub fn stats(&self) -> CacheStats {
        self.shared.stats()
    }

    /// Runs moka's pending maintenance (evictions, expiry, entry counts) now
    /// instead of on a later call; useful before reading [`stats`](Self::stats).
    pub async fn run_pending_tasks(&self) {
        if let Some(caches) = self.shared.caches.load_full() {
            caches.run_pending_tasks();
        }
    }
}

impl<B> fmt::Debug for Cache<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cache")
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

#[deny(clippy::missing_trait_methods)]
#[async_trait]
impl<B: Backend + 'static> Backend for Cache<B> {
    async fn namespace(&self, name: &str) -> Result<NamespaceRef> {
        if let Some(hit) = self.shared.hit::<CachedNamespace>(ROOT_SCOPE, name) {
            return Ok(hit);
        }
        Ok(Box::pin(CachedNamespace::lookup(&self.shared, name)).await?)
    }

    async fn namespaces(&self) -> Result<BTreeMap<String, NamespaceRef>> {
        let fence = self.shared.fence();
        let all = self.inner.namespaces().await?;
        let mut out = BTreeMap::new();
        for (name, up) in all {
            let ns = CachedNamespace::adopt_root(&self.shared, up, fence).await;
            out.insert(name, ns as NamespaceRef);
        }
        Ok(out)
    }

    async fn summarize(&self) -> Result<Summary> {
        self.inner.summarize().await
    }

    async fn ping(&self) -> Result<()> {
        self.inner.ping().await
    }

    fn change_feed(&self) -> Option<Arc<dyn ChangeFeed>> {
        self.inner.change_feed()
    }
}
