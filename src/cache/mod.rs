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
mod feed;
mod inflight;
mod key;
mod link;
mod namespace;
mod stats;
mod store;
mod work_spec;
mod work_unit;
mod worker;

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::sync::Arc;

use arc_swap::{ArcSwap, ArcSwapOption};
use async_trait::async_trait;
use futures::future::FutureExt;

pub use builder::{
    CacheBuilder, DEFAULT_NAMESPACES, DEFAULT_WORKERS, DEFAULT_WORK_SPECS, DEFAULT_WORK_UNITS,
};
pub use feed::FeedStats;
pub use stats::{CacheStats, KindStats};

use crate::api::{Backend, NamespaceRef};
use crate::error::{Error, Result};
use crate::feed::ChangeFeed;
use crate::model::Summary;
use key::{Key, KeyRef, ROOT_SCOPE};
use link::Link;
use namespace::CachedNamespace;
use stats::{Counters, KindCounters};
use store::Store;
use work_spec::CachedWorkSpec;
use work_unit::CachedWorkUnit;
use worker::CachedWorker;

/// How many times one call re-resolves its handle after `Gone`. Two, so a
/// handle whose replacement was itself replaced behind the cache's back
/// still converges; calls whose `Gone` may be about an argument
/// (`make_attempt`, `set_parent`) retry once.
const MAX_RECOVERIES: u32 = 2;

/// The four moka caches. Entries hold their handles, and handles reach the
/// caches through [`Shared`], so [`Cache`]'s `Drop` detaches them to break
/// the cycle.
pub(crate) struct Caches {
    namespaces: Store<CachedNamespace>,
    work_specs: Store<CachedWorkSpec>,
    work_units: Store<CachedWorkUnit>,
    workers: Store<CachedWorker>,
}

impl Caches {
    fn run_pending_tasks(&self) {
        self.namespaces.run_pending_tasks();
        self.work_specs.run_pending_tasks();
        self.work_units.run_pending_tasks();
        self.workers.run_pending_tasks();
    }
}

/// State shared by a cache and every handle it gave out.
pub(crate) struct Shared {
    backend: Arc<dyn Backend>,
    caches: ArcSwapOption<Caches>,
    counters: Arc<Counters>,
    /// The change-feed subscription's state (see `feed.rs`).
    feed: Arc<feed::FeedControl>,
}

/// A cached handle kind: its upstream trait object, its link, and where its
/// entries and counters live.
pub(crate) trait Handle: Send + Sync + Sized + 'static {
    /// The wrapped backend's handle type.
    type Up: ?Sized + Send + Sync + 'static;

    /// The current link to the upstream object.
    fn link_cell(&self) -> &ArcSwap<Link<Self::Up>>;

    /// The entries (and loads in flight) of this kind.
    fn store(caches: &Caches) -> &Store<Self>;

    /// The counters of this kind.
    fn counters(counters: &Counters) -> &KindCounters;

    /// Resolves this handle's name again, through its (cached) parent: the
    /// handle now cached under the name. Parents are never created; a
    /// namespace handle re-runs its own get-or-create lookup if `create`.
    fn resolve(&self, create: bool) -> impl Future<Output = Result<Arc<Self>>> + Send;
}

impl Shared {
    fn counters<W: Handle>(&self) -> &KindCounters {
        W::counters(&self.counters)
    }

    /// The cached handle, if any: the hit path of the lookup methods.
    ///
    /// No liveness check: an entry is removed when its object is known to
    /// be deleted (by the delete, or by the recovery that learns it), and the
    /// children of a known-dead parent are never looked up (the parent
    /// re-resolves first).
    fn hit<W: Handle>(&self, scope: u64, name: &str) -> Option<Arc<W>> {
        if !self.feed.coherent() {
            // The change feed has a gap: an entry may be stale, none is served.
            return None;
        }
        let caches = self.caches.load();
        let hit = W::store(caches.as_ref()?).hit(KeyRef { scope, name })?;
        self.counters::<W>().hits.inc();
        Some(hit)
    }

    /// A live cached handle, if there is one. Entries whose object is known
    /// to be deleted, or cached before the last flush (see
    /// [`outdated`](Self::outdated)), are dropped instead of returned (the
    /// path recoveries take, racing with the removal).
    fn cached<W: Handle>(&self, scope: u64, name: &str) -> Option<Arc<W>> {
        if !self.feed.coherent() {
            return None;
        }
        let caches = self.caches.load();
        let store = W::store(caches.as_ref()?);
        let key = KeyRef { scope, name };
        let hit = store.peek(key)?;
        if !self.serves_children(&hit.link_cell().load()) {
            store.remove(key);
            return None;
        }
        self.counters::<W>().hits.inc();
        Some(hit)
    }

    /// True if child entries may be served through `link`: its object is
    /// not known to be deleted, and it was cached in the current generation
    /// (since the last flush), so change events reach its children.
    fn serves_children<T: ?Sized>(&self, link: &Link<T>) -> bool {
        !link.is_dead() && link.generation() == self.feed.generation()
    }

    /// True if a handle on `link` must re-resolve its name before use: the
    /// cache serves from its entries, and the link was not cached in the
    /// current generation — it was cached before a flush (a change-feed gap:
    /// events may have missed it), or never (it was loaded during a gap, or
    /// its load was superseded). Re-resolving makes the handle share the
    /// link of the entry now cached, which events reach.
    fn outdated<T: ?Sized>(&self, link: &Link<T>) -> bool {
        link.generation() != self.feed.generation()
            && self.feed.coherent()
            && self.caches.load().is_some()
    }

    /// The cached handle for `name`, loading it with `load` on a miss.
    /// Concurrent misses of one name share one load; its error is every
    /// waiter's error. Cancel-safe (see [`Store::get_or_load`]).
    async fn get_or_load<W, F, Fut>(&self, scope: u64, name: &str, load: F) -> Result<Arc<W>>
    where
        W: Handle,
        F: FnOnce(Arc<str>) -> Fut,
        Fut: Future<Output = Result<Arc<W>>> + Send + 'static,
    {
        if let Some(hit) = self.cached::<W>(scope, name) {
            return Ok(hit);
        }
        let counters = self.counters::<W>();
        counters.misses.inc();
        // One copy of the name, shared by the key and the handle.
        let name: Arc<str> = Arc::from(name);
        let Some(caches) = self.caches.load_full().filter(|_| self.feed.coherent()) else {
            // Detached (the `Cache` was dropped), or bypassed during a change
            // feed gap: handles keep working, uncached.
            counters.loads.inc();
            let loaded = load(name).await;
            if loaded.is_ok() {
                self.feed.backend_answered();
            }
            return loaded;
        };
        let key = Key {
            scope,
            name: Arc::clone(&name),
        };
        W::store(&caches)
            .get_or_load(
                key,
                || {
                    counters.loads.inc();
                    load(name).map(|r| r.map_err(Arc::new)).boxed()
                },
                |handle| {
                    // Under the in-flight lock, which a flush takes before it
                    // moves to the next generation.
                    handle.link_cell().load().cached_in(self.feed.generation());
                },
            )
            .await
            .map_err(unshare)
    }

    /// The cached handle for `name` if there is a live one, else `make()`'s,
    /// which is cached. For handles the backend just returned (lists,
    /// upserts, an attempt's unit and worker): no backend call. `scope` is
    /// `None` if the parent's link serves no children (see
    /// [`serves_children`](Self::serves_children)): the handle is then not
    /// cached, and re-resolves its name on first use.
    async fn adopt<W: Handle>(
        &self,
        scope: Option<u64>,
        name: Arc<str>,
        make: impl FnOnce(Arc<str>) -> Arc<W>,
    ) -> Arc<W> {
        let Some(scope) = scope else {
            return make(name);
        };
        if let Some(hit) = self.cached::<W>(scope, &name) {
            return hit;
        }
        match self.caches.load_full().filter(|_| self.feed.coherent()) {
            Some(caches) => {
                let key = Key {
                    scope,
                    name: Arc::clone(&name),
                };
                // Read before the insert: if a flush comes between, the
                // handle is of the old generation, hence outdated.
                let generation = self.feed.generation();
                W::store(&caches).get_with(key, || {
                    let handle = make(name);
                    handle.link_cell().load().cached_in(generation);
                    handle
                })
            }
            None => make(name),
        }
    }

    /// Drops the entry for `name` after a delete through the cache; with
    /// `deleted`, also records that its object is known to be deleted.
    async fn invalidate<W: Handle>(&self, scope: u64, name: &str, deleted: bool) {
        let Some(caches) = self.caches.load_full() else {
            return;
        };
        let key = KeyRef { scope, name };
        if let Some(gone) = W::store(&caches).remove(key) {
            if deleted {
                gone.link_cell().load().mark_dead();
            }
            self.counters::<W>().invalidations.inc();
        }
    }

    /// Drops the entry for `name` only if it is still `handle`, e.g. after
    /// `destroy` on a handle that may have been superseded.
    async fn invalidate_if<W: Handle>(&self, scope: u64, name: &str, link: &Arc<Link<W::Up>>) {
        let Some(caches) = self.caches.load_full() else {
            return;
        };
        let store = W::store(&caches);
        let key = KeyRef { scope, name };
        if let Some(entry) = store.get(key) {
            if Arc::ptr_eq(&entry.link_cell().load_full(), link) {
                store.remove(key);
                self.counters::<W>().invalidations.inc();
            }
        }
    }
}

/// The current link of `handle`, re-resolved first if its object is known
/// to be deleted or the link is outdated.
async fn live_link<W: Handle>(
    shared: &Shared,
    handle: &W,
    budget: &mut u32,
    create: bool,
) -> Result<Arc<Link<W::Up>>> {
    let link = handle.link_cell().load_full();
    if link.is_dead() && *budget > 0 {
        *budget -= 1;
        return recover(shared, handle, &link, create).await;
    }
    if shared.outdated(&link) {
        tracing::debug!(
            kind = std::any::type_name::<W>(),
            "handle from before a cache flush; re-resolving its name"
        );
        return rebind(handle, create).await;
    }
    Ok(link)
}

/// Runs `op` on the upstream object; on `Gone`, re-resolves the handle's
/// name and retries, at most [`MAX_RECOVERIES`] times in all.
async fn run<W, T, F, Fut>(shared: &Shared, handle: &W, op: F) -> Result<T>
where
    W: Handle,
    F: FnMut(Arc<Link<W::Up>>) -> Fut,
    Fut: Future<Output = Result<T>>,
{
    run_with_budget(shared, handle, MAX_RECOVERIES, true, op).await
}

/// [`run`] with at most `budget` re-resolutions; `create` as in
/// [`Handle::resolve`].
async fn run_with_budget<W, T, F, Fut>(
    shared: &Shared,
    handle: &W,
    mut budget: u32,
    create: bool,
    mut op: F,
) -> Result<T>
where
    W: Handle,
    F: FnMut(Arc<Link<W::Up>>) -> Fut,
    Fut: Future<Output = Result<T>>,
{
    let mut link = live_link(shared, handle, &mut budget, create).await?;
    loop {
        match op(Arc::clone(&link)).await {
            Err(Error::Gone) if budget > 0 => {
                budget -= 1;
                link = recover(shared, handle, &link, create).await?;
            }
            other => return other,
        }
    }
}

/// Swaps `handle` to the object that now has its name. `Gone` if there is
/// none (the stale entry has been dropped by then).
async fn recover<W: Handle>(
    shared: &Shared,
    handle: &W,
    dead: &Arc<Link<W::Up>>,
    create: bool,
) -> Result<Arc<Link<W::Up>>> {
    let current = handle.link_cell().load_full();
    if !Arc::ptr_eq(&current, dead) && !current.is_dead() {
        // Another caller already recovered this handle.
        return Ok(current);
    }
    shared.counters::<W>().recoveries.inc();
    tracing::debug!(
        kind = std::any::type_name::<W>(),
        "cached handle lost its object; re-resolving its name"
    );
    dead.mark_dead();
    current.mark_dead();
    rebind(handle, create).await
}

/// Binds `handle` to the link of the handle now cached under its name.
/// `Gone` if there is none. Cancel-safe: cancelled, the handle keeps its
/// link, and its next call re-resolves again.
async fn rebind<W: Handle>(handle: &W, create: bool) -> Result<Arc<Link<W::Up>>> {
    let fresh = handle.resolve(create).await.map_err(|e| match e {
        Error::NoSuchWorkSpec { .. } | Error::NoSuchWorkUnit { .. } => Error::Gone,
        other => other,
    })?;
    let link = fresh.link_cell().load_full();
    if link.is_dead() {
        return Err(Error::Gone);
    }
    handle.link_cell().store(Arc::clone(&link));
    Ok(link)
}

/// The error of a shared (coalesced) load: the original if this caller is
/// the last holder, else an equal copy.
fn unshare(e: Arc<Error>) -> Error {
    Arc::try_unwrap(e).unwrap_or_else(|shared| copy_error(&shared))
}

/// An equal copy of an error. Exhaustive on purpose: a new variant must
/// decide how it is copied.
fn copy_error(e: &Arc<Error>) -> Error {
    use Error::*;
    match &**e {
        NoWorkSpecName => NoWorkSpecName,
        BadWorkSpecName => BadWorkSpecName,
        InvalidWorkSpecData(d) => InvalidWorkSpecData(d.clone()),
        ChangedName => ChangedName,
        LostLease => LostLease,
        NotPending => NotPending,
        CannotBecomeContinuous => CannotBecomeContinuous,
        WrongBackend => WrongBackend,
        NoWork => NoWork,
        Gone => Gone,
        NoSuchWorkSpec { name } => NoSuchWorkSpec { name: name.clone() },
        NoSuchWorkUnit { name } => NoSuchWorkUnit { name: name.clone() },
        WorkUnitNotList => WorkUnitNotList,
        WorkUnitTooShort => WorkUnitTooShort,
        BadPriority => BadPriority,
        BadOutputItem(d) => BadOutputItem(d.clone()),
        TimeOutOfRange(d) => TimeOutOfRange(d.clone()),
        NameTooLong { limit } => NameTooLong { limit: *limit },
        DataTooDeep { limit } => DataTooDeep { limit: *limit },
        Backend(_) => Backend(Box::new(SharedSource(Arc::clone(e)))),
    }
}

/// The source of a backend error seen by several coalesced callers: same
/// message, same source chain.
#[derive(Debug)]
struct SharedSource(Arc<Error>);

impl fmt::Display for SharedSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &*self.0 {
            Error::Backend(source) => fmt::Display::fmt(source, f),
            other => fmt::Display::fmt(other, f),
        }
    }
}

impl std::error::Error for SharedSource {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &*self.0 {
            Error::Backend(source) => source.source(),
            _ => None,
        }
    }
}

/// A [`Backend`] that memoizes namespace, work spec, work unit and worker
/// handles by name.
///
/// `Cache<B>` implements [`Backend`] itself, so it stacks and erases:
/// `Cache<Cache<B>>`, `Cache<Arc<dyn Backend>>` and an `Arc<dyn Backend>`
/// holding a `Cache` all work. Every handle it gives out — from lookups,
/// upserts, lists, an attempt's `work_unit()` and `worker()` — is one of its
/// own wrappers, so a caller never mixes cached and uncached objects.
///
/// # Object identity
///
/// A plain handle names one *object*: once deleted it answers `Gone`, even
/// if a new object takes its name. A cached
/// handle names a *name*: it stands for **the object that now has that
/// name**. It is bound to one object at a time; when the backend answers
/// `Gone` (or the cache knows the object was deleted), the handle resolves
/// its name again through its cached parent, swaps to the object found,
/// and retries — at most twice per call, never in a loop.
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
/// * **Same handle while cached.** Repeated lookups of a name return the
///   same `Arc` (`Arc::ptr_eq`) while its entry stays cached; after an
///   invalidation the next lookup returns a fresh handle. Attempts are not
///   memoized (they have no name), but their unit and worker are.
/// * A `Gone` that may be about an argument (`make_attempt` with a deleted
///   unit, `set_parent`) comes back as `Gone` after at most one retry, with
///   the argument re-resolved if it is one of this cache's handles.
///
/// The law of a recreated name, on a unit deleted behind the cache's back:
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> coordinate::Result<()> {
/// use coordinate::cache::Cache;
/// use coordinate::memory::MemoryBackend;
/// use coordinate::{data, Backend, BackendExt, Error, WorkUnitMeta, WorkUnitQuery};
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
/// assert_eq!(plain.data().await.err(), Some(Error::Gone)); // bound to the object
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
/// use coordinate::{data, Backend, Error, WorkUnitMeta};
///
/// let memory = MemoryBackend::new();
/// let cache = Cache::new(memory.clone());
/// let ns = cache.namespace("n").await?;
/// let spec = ns.set_work_spec(data!({"name": "s"})).await?;
/// let unit = spec.add_work_unit("u", data!({}), WorkUnitMeta::default()).await?;
///
/// ns.destroy().await?;
/// assert_eq!(spec.meta(false).await.err(), Some(Error::Gone));
/// assert_eq!(unit.status().await.err(), Some(Error::Gone));
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
/// | `namespaces`, `workers`, `work_units`, `children`, `parent`, `request_attempts`, `make_attempt`, `active_attempt`, `attempts`, `active_attempts`, `all_attempts`, `child_attempts` | pass through; every handle in the result is the cache's (looked up or adopted into the cache, with no extra backend call) |
/// | `Namespace::destroy` | pass through, then **invalidates** the namespace and, through it, every cached spec, unit and worker under it |
/// | `destroy_work_spec(name)` | pass through, then **invalidates** the spec and its units (also when the backend answers `NoSuchWorkSpec`) |
/// | `delete_work_units(query)` | pass through, then **invalidates**: the named units if the query names units; otherwise every cached unit of the spec, since which units a status or paging query removed is unknown (running the query first would race with other writers, and a lookup per surviving unit is cheaper than a wrong answer) |
/// | `make_attempt(unit)`, `set_parent(worker)` | the cache's handles passed in are **unwrapped** to the backend's; others go to the backend as given (`WrongBackend` if foreign) |
/// | every other method (data, meta, status, set_*, summaries, counts, priorities, attempt state changes, …) | **passes through** unchanged, results and errors alike; only `Gone` triggers the recovery above |
///
/// Errors are never re-wrapped: callers match on them as on the backend's.
/// (A backend failure shared by several coalesced callers reaches each of
/// them as an equal `Error::Backend` with the same message and source chain.)
///
/// # Caveats
///
/// Coherence across job servers (details and measurements in
/// [`crate::feed`] and `BENCHMARKS.md#cross-server-cache-invalidation`):
///
/// * **With a change feed** (a backend whose
///   [`change_feed`](crate::Backend::change_feed) is `Some` —
///   `MemoryBackend`, `PostgresBackend` — and a cache built inside a tokio
///   runtime): deletes made behind the cache's back (on the inner backend,
///   by another job server, by hand in SQL) reach the cache as events, and
///   each event drops exactly the entries it names. *Guaranteed:* once the
///   event is applied (p99 ≈ 6 ms on a local PostgreSQL) no lookup answers
///   from an entry the delete made stale; a rolled-back delete changes
///   nothing; after a gap (fell behind, connection lost) the cache flushes,
///   serves and stores nothing until it has subscribed again (backoff with
///   jitter from ~50 ms to 30 s, cut short by the first lookup the backend
///   answers), then flushes again — a possibly stale entry is never served.
///   [`purge`](Cache::purge) drops entries here,
///   [`broadcast_purge`](Cache::broadcast_purge) in every subscribed cache of
///   the database; [`CacheStats::feed`] counts events, flushes, gaps and
///   reconnects. *Not guaranteed:* invalidation is asynchronous, so in the
///   milliseconds between a commit elsewhere and its event a lookup can
///   still return the deleted object's handle (its first fallible call then
///   re-resolves, as below). A lookup already loading when the event is
///   applied returns what it read but does not cache it. Handles given out
///   before a gap (or during it) re-resolve their name on their first use
///   once the cache is subscribed again, and from then on share the link of
///   the entry now cached: events reach them, and a lookup through a handle
///   kept across a gap never answers from an entry the gap may have made
///   stale.
/// * **Without a feed** (a third-party backend without one, or a cache built
///   outside a tokio runtime, which does not subscribe): deletes behind the
///   cache's back are invisible to lookups until a handle notices them: a
///   lookup may return a cached handle whose object is gone. Its first
///   fallible call then re-resolves the name — acting on a recreated object,
///   or answering `Gone` and evicting the entry. A time-to-live or
///   time-to-idle ([`CacheBuilder`]) bounds how long such entries live.
/// * Either way, correctness of operations never depends on the feed or on
///   expiry: a handle whose object is gone answers `Gone` or follows its
///   name. A namespace handle held across its namespace's destruction
///   recreates it on its next operation (get-or-create, above).
/// * A handle kept after its own entry was evicted keeps working and keeps
///   following its name, but child handles looked up through it are cached
///   apart from those of the handle now cached under the same name, and
///   feed events do not reach them (they still recover on `Gone`).
/// * Attempts pass straight through: an attempt of a deleted unit answers
///   `Gone`, even if a unit of the same name exists again.
/// * Entries made unreachable by a bulk invalidation (a destroyed namespace
///   or spec, a query delete) stay in moka, counted in `entries`, until the
///   eviction policy drops them; they are never returned.
///
/// # Concurrency
///
/// * Hits take no lock. Each kind's entries live in a `moka::sync::Cache`,
///   the authority for capacity, eviction, admission and expiry, and — when
///   no time-to-live or time-to-idle is set — also in a lock-free front map
///   (papaya, foldhash) that answers hits: an entry enters the front before
///   moka and leaves moka before the front, moka's removal listener takes
///   out of the front what moka drops on its own, so no entry is served
///   after its eviction or invalidation has returned. One lookup in 4 per
///   thread, hit or miss, is also made on moka, so its policy sees an
///   unbiased sample of the accesses (and the lookup detects an entry moka
///   dropped whose listener has not run yet). A hit adds lock-free `arc_swap` loads of the parent's
///   link; statistics use striped counters, so hits on different threads
///   share no written cache line of ours. With expiry set, hits read moka
///   directly (it expires entries lazily, unseen by a front).
/// * Concurrent misses of one name make exactly one backend call: the first
///   registers its load in a per-kind in-flight map (a `parking_lot` mutex
///   held only to look up, insert or remove, never across an `.await`) and
///   the others await that same shared future, result or error. This is
///   moka's `try_get_with` for an asynchronous load over a synchronous
///   cache. A finished load publishes its entry before leaving the map, so
///   a later miss finds one or the other. Misses of different names proceed
///   in parallel, and hits never wait for a miss in flight.
/// * **Cancellation.** Any lookup may be cancelled — its future dropped at
///   an `.await`, as a job server does when a client disconnects or a
///   timeout fires. A load belongs to the lookups awaiting it and to nothing
///   else: when the last of them is dropped, the load leaves the in-flight
///   map and its future is dropped at once, with whatever it holds (a pooled
///   connection, a statement in progress). Nothing is parked for a later
///   lookup to resume, and no runtime or spawned task is needed to clean up
///   (a cache works the same outside tokio). So the in-flight map is empty
///   whenever no lookup is running ([`KindStats::loads_in_flight`]), memory
///   stays bounded by the capacities however many lookups are given up, and
///   a load whose every waiter gave up costs the next lookup a new backend
///   call, exactly as without a cache.
/// * **How old an answer can be.** A lookup receives the answer of a
///   backend call started by itself or by a concurrent lookup of the same
///   name at most 1 s before it: a miss arriving later than that after a
///   load started does not join it but starts its own, which replaces the
///   older one in the map (the older load still answers its own waiters but
///   is not cached). So whatever was committed 1 s before a lookup began
///   — a unit created on another server, say — is in its answer. The window
///   is far above a healthy round trip, so concurrent misses still share a
///   call; while a backend stalls (a lock, a failover), a name looked up
///   without pause costs at most one extra load per window.
/// * Every other step that awaits is cancel-safe too. A `Gone` recovery
///   cancelled midway leaves the handle bound to its dead object, so its
///   next call recovers again; adopting returned handles never awaits; the
///   change-feed task is only cancelled by the cache's drop or its runtime's
///   shutdown, and in the latter case the cache stops serving from its
///   entries (as during a gap) rather than serve entries no event reaches.
///   A delete through the cache (`destroy`, `destroy_work_spec`,
///   `delete_work_units`) cancelled while the backend runs it may still be
///   applied by the backend; the cache then learns of it as of a delete
///   behind its back (the feed's event, or the handle's next `Gone`).
/// * A recovery swaps the handle's upstream link atomically (`ArcSwap`);
///   no lock is ever held across an `.await`.
/// * Entries live in one moka cache per kind, keyed by (parent scope, name):
///   one global bound per kind however many parents there are (dozens of
///   specs, millions of units), and a whole parent's children are dropped at
///   once by giving the parent a new scope. One moka cache per parent would
///   make that drop trivial too, but cost a moka instance (kilobytes and a
///   housekeeper) per spec and give no global bound on units.
pub struct Cache<B> {
    /// First, so it runs while `shared` is still held (fields drop in order).
    detach: Detach,
    inner: Arc<B>,
    shared: Arc<Shared>,
    /// What the entry stores were built with, to build them anew.
    settings: CacheBuilder<B>,
}

/// Detaches a cache's entries and stops its feed subscription when the cache
/// is dropped. Entries hold handles and handles hold [`Shared`]: detaching
/// the entries frees them; handles still held elsewhere keep working,
/// uncached. A guard field rather than `Drop` on [`Cache`], so that
/// [`Cache::into_inner`] can take the cache apart.
struct Detach(std::sync::Weak<Shared>);

impl Drop for Detach {
    fn drop(&mut self) {
        if let Some(shared) = self.0.upgrade() {
            shared.caches.store(None);
            shared.feed.stop();
        }
    }
}

impl<B: Backend + 'static> Cache<B> {
    /// A cache over `backend` with the default capacities and no expiry
    /// (see [`CacheBuilder`]).
    pub fn new(backend: B) -> Self {
        CacheBuilder::new().build(backend)
    }

    fn from_parts(backend: B, settings: CacheBuilder<B>) -> Self {
        let counters = Arc::new(Counters::default());
        let caches = settings.caches(&counters);
        let inner = Arc::new(backend);
        let shared = Arc::new(Shared {
            backend: Arc::clone(&inner) as Arc<dyn Backend>,
            caches: ArcSwapOption::from_pointee(caches),
            counters,
            feed: Arc::default(),
        });
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

    /// The wrapped backend, by value, or the cache back if the backend is
    /// still shared.
    ///
    /// The backend is shared with every handle this cache gave out (they
    /// keep working, uncached, after the cache is gone), so it can only be
    /// taken while none is alive. Either way the cache's entries are dropped
    /// first (they hold handles too): an `Err` gives back a working but
    /// empty cache, which reloads names on demand.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> coordinate::Result<()> {
    /// use coordinate::{Backend, Cache, MemoryBackend};
    /// let cache = Cache::new(MemoryBackend::new());
    /// let namespace = cache.namespace("app").await?;
    /// let cache = cache.into_inner().expect_err("a handle is alive");
    /// drop(namespace);
    /// let memory: MemoryBackend = cache.into_inner().expect("no handle is alive");
    /// assert!(memory.namespaces().await?.contains_key("app"));
    /// # Ok(())
    /// # }
    /// ```
    pub fn into_inner(self) -> Result<B, Self> {
        let Cache {
            detach,
            inner,
            shared,
            settings,
        } = self;
        // Loads in flight are forgotten and handles outdated, as on a feed
        // gap; dropping the stores drops their entries at once.
        shared.flush();
        shared.caches.store(None);
        match Arc::try_unwrap(shared) {
            Err(shared) => {
                let caches = settings.caches(&shared.counters);
                shared.caches.store(Some(Arc::new(caches)));
                Err(Cache {
                    detach,
                    inner,
                    shared,
                    settings,
                })
            }
            Ok(shared) => {
                shared.feed.stop();
                drop(shared);
                // The shared state held the only other reference to the
                // backend: `from_parts` gives it to nothing else.
                Ok(Arc::into_inner(inner).expect("the cache's shared state was its only co-owner"))
            }
        }
    }

    /// Counters per handle kind.
    pub fn stats(&self) -> CacheStats {
        let c = &self.shared.counters;
        let caches = self.shared.caches.load();
        fn kind<W: Handle>(caches: Option<&Caches>, counters: &KindCounters) -> KindStats {
            let (entries, in_flight) = caches.map_or((0, 0), |c| {
                let store = W::store(c);
                (store.entry_count(), store.in_flight() as u64)
            });
            counters.snapshot(entries, in_flight)
        }
        let caches = caches.as_deref();
        CacheStats {
            namespaces: kind::<CachedNamespace>(caches, &c.namespaces),
            work_specs: kind::<CachedWorkSpec>(caches, &c.work_specs),
            work_units: kind::<CachedWorkUnit>(caches, &c.work_units),
            workers: kind::<CachedWorker>(caches, &c.workers),
            feed: self.shared.feed.snapshot(),
        }
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

impl fmt::Debug for Shared {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Shared")
            .field("counters", &self.counters)
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
        let ns = Box::pin(self.shared.lookup_namespace(name)).await?;
        Ok(ns)
    }

    async fn namespaces(&self) -> Result<BTreeMap<String, NamespaceRef>> {
        let all = self.inner.namespaces().await?;
        let mut out = BTreeMap::new();
        for (name, up) in all {
            let ns = self.shared.adopt_namespace(up).await;
            out.insert(name, ns as NamespaceRef);
        }
        Ok(out)
    }

    async fn summarize(&self) -> Result<Summary> {
        self.inner.summarize().await
    }

    fn change_feed(&self) -> Option<Arc<dyn ChangeFeed>> {
        self.inner.change_feed()
    }
}

impl Shared {
    /// `Backend::namespace`: get-or-create, cached.
    async fn lookup_namespace(self: &Arc<Self>, name: &str) -> Result<Arc<CachedNamespace>> {
        let shared = Arc::clone(self);
        self.get_or_load(ROOT_SCOPE, name, move |name| async move {
            let up = shared.backend.namespace(&name).await?;
            Ok(CachedNamespace::new(&shared, name, Link::new(up, None)))
        })
        .await
    }

    /// The live namespace called `name`, never creating one: a cached
    /// handle's recovery must not bring a destroyed namespace back.
    async fn existing_namespace(self: &Arc<Self>, name: &str) -> Result<Arc<CachedNamespace>> {
        if let Some(hit) = self.cached::<CachedNamespace>(ROOT_SCOPE, name) {
            return Ok(hit);
        }
        self.counters::<CachedNamespace>().loads.inc();
        let up = self
            .backend
            .namespaces()
            .await?
            .remove(name)
            .ok_or(Error::Gone)?;
        Ok(self.adopt_namespace(up).await)
    }

    /// The cached handle for a namespace handle the backend returned.
    async fn adopt_namespace(self: &Arc<Self>, up: NamespaceRef) -> Arc<CachedNamespace> {
        let name: Arc<str> = Arc::from(up.name());
        self.adopt(Some(ROOT_SCOPE), name, |name| {
            CachedNamespace::new(self, name, Link::new(up, None))
        })
        .await
    }
}
