//! DOCS_PLACEHOLDER

mod attempt;
mod builder;
mod feed;
mod key;
mod link;
mod namespace;
mod stats;
mod work_spec;
mod work_unit;
mod worker;

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::sync::Arc;

use arc_swap::{ArcSwap, ArcSwapOption};
use async_trait::async_trait;

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
use work_spec::CachedWorkSpec;
use work_unit::CachedWorkUnit;
use worker::CachedWorker;

/// How many times one call re-resolves its handle after `Gone`. Two, so a
/// handle whose replacement was itself replaced behind the cache's back
/// still converges; calls whose `Gone` may be about an argument
/// (`make_attempt`, `set_parent`) retry once.
const MAX_RECOVERIES: u32 = 2;

/// One moka cache of handles of one kind.
pub(crate) type Moka<W> = moka::future::Cache<Key, Arc<W>>;

/// The four moka caches. Entries hold their handles, and handles reach the
/// caches through [`Shared`], so [`Cache`]'s `Drop` detaches them to break
/// the cycle.
pub(crate) struct Caches {
    namespaces: Moka<CachedNamespace>,
    work_specs: Moka<CachedWorkSpec>,
    work_units: Moka<CachedWorkUnit>,
    workers: Moka<CachedWorker>,
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

    /// The moka cache of this kind.
    fn moka(caches: &Caches) -> &Moka<Self>;

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

    /// A live cached handle, if there is one. Entries whose object is known
    /// to be deleted are dropped instead of returned.
    async fn cached<W: Handle>(&self, scope: u64, name: &str) -> Option<Arc<W>> {
        if !self.feed.coherent() {
            // The feed has a gap: an entry may be stale, so none is served.
            return None;
        }
        let caches = self.caches.load();
        let moka = W::moka(caches.as_ref()?);
        let key = KeyRef { scope, name };
        let hit = moka.get(&key).await?;
        if hit.link_cell().load().is_dead() {
            moka.invalidate(&key).await;
            return None;
        }
        self.counters::<W>().hits.inc();
        Some(hit)
    }

    /// The cached handle for `name`, loading it with `load` on a miss.
    /// Concurrent misses of one name share one load; its error is every
    /// waiter's error.
    async fn get_or_load<W, F>(&self, scope: u64, name: &str, load: F) -> Result<Arc<W>>
    where
        W: Handle,
        F: Future<Output = Result<Arc<W>>> + Send,
    {
        if let Some(hit) = self.cached::<W>(scope, name).await {
            return Ok(hit);
        }
        let counters = self.counters::<W>();
        counters.misses.inc();
        let load = async {
            counters.loads.inc();
            load.await
        };
        let caches = self.caches.load_full().filter(|_| self.feed.coherent());
        match caches {
            Some(caches) => W::moka(&caches)
                .try_get_with(Key::new(scope, name), load)
                .await
                .map_err(unshare),
            // Detached (the `Cache` was dropped), or bypassed during a feed
            // gap: handles keep working, uncached.
            None => {
                let loaded = load.await;
                if loaded.is_ok() {
                    self.feed.backend_answered();
                }
                loaded
            }
        }
    }

    /// The cached handle for `name` if there is a live one, else `make()`'s,
    /// which is cached. For handles the backend just returned (lists,
    /// upserts, an attempt's unit and worker): no backend call.
    async fn adopt<W: Handle>(
        &self,
        scope: u64,
        name: &str,
        make: impl FnOnce() -> Arc<W>,
    ) -> Arc<W> {
        if let Some(hit) = self.cached::<W>(scope, name).await {
            return hit;
        }
        match self.caches.load_full().filter(|_| self.feed.coherent()) {
            Some(caches) => {
                W::moka(&caches)
                    .get_with(Key::new(scope, name), async { make() })
                    .await
            }
            None => make(),
        }
    }

    /// Drops the entry for `name` after a delete through the cache; with
    /// `deleted`, also records that its object is known to be deleted.
    async fn invalidate<W: Handle>(&self, scope: u64, name: &str, deleted: bool) {
        let Some(caches) = self.caches.load_full() else {
            return;
        };
        let moka = W::moka(&caches);
        let key = KeyRef { scope, name };
        if let Some(gone) = moka.remove(&key).await {
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
        let moka = W::moka(&caches);
        let key = KeyRef { scope, name };
        if let Some(entry) = moka.get(&key).await {
            if Arc::ptr_eq(&entry.link_cell().load_full(), link) {
                moka.invalidate(&key).await;
                self.counters::<W>().invalidations.inc();
            }
        }
    }
}

/// The current link of `handle`, re-resolved first if its object is known
/// to be deleted.
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
    dead.mark_dead();
    current.mark_dead();
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

/// PLACEHOLDER
pub struct Cache<B> {
    inner: Arc<B>,
    shared: Arc<Shared>,
}

impl<B: Backend + 'static> Cache<B> {
    /// A cache over `backend` with the default capacities and no expiry
    /// (see [`CacheBuilder`]).
    pub fn new(backend: B) -> Self {
        CacheBuilder::new().build(backend)
    }

    fn from_parts(backend: B, caches: Caches, counters: Arc<Counters>) -> Self {
        let inner = Arc::new(backend);
        let shared = Arc::new(Shared {
            backend: Arc::clone(&inner) as Arc<dyn Backend>,
            caches: ArcSwapOption::from_pointee(caches),
            counters,
            feed: Arc::default(),
        });
        feed::start(&shared);
        Cache { inner, shared }
    }
}

impl Cache<()> {
    /// A builder for capacities and expiry; `build(backend)` picks the
    /// backend type.
    pub fn builder() -> CacheBuilder {
        CacheBuilder::new()
    }
}

impl<B> Cache<B> {
    /// The wrapped backend.
    pub fn get_ref(&self) -> &B {
        &self.inner
    }

    /// The wrapped backend. It is shared with the handles this cache gave
    /// out (they keep working, uncached, after the cache is gone), hence the
    /// `Arc`; `Arc::try_unwrap` yields the backend itself once they are
    /// dropped.
    pub fn into_inner(self) -> Arc<B> {
        Arc::clone(&self.inner)
    }

    /// Counters per handle kind.
    pub fn stats(&self) -> CacheStats {
        let c = &self.shared.counters;
        let caches = self.shared.caches.load();
        let count = |f: fn(&Caches) -> u64| caches.as_ref().map_or(0, |c| f(c));
        CacheStats {
            namespaces: c.namespaces.snapshot(count(|c| c.namespaces.entry_count())),
            work_specs: c.work_specs.snapshot(count(|c| c.work_specs.entry_count())),
            work_units: c.work_units.snapshot(count(|c| c.work_units.entry_count())),
            workers: c.workers.snapshot(count(|c| c.workers.entry_count())),
            feed: self.shared.feed.snapshot(),
        }
    }

    /// Runs moka's pending maintenance (evictions, expiry, entry counts) now
    /// instead of on a later call; useful before reading [`stats`](Self::stats).
    pub async fn run_pending_tasks(&self) {
        if let Some(caches) = self.shared.caches.load_full() {
            caches.namespaces.run_pending_tasks().await;
            caches.work_specs.run_pending_tasks().await;
            caches.work_units.run_pending_tasks().await;
            caches.workers.run_pending_tasks().await;
        }
    }
}

impl<B> Drop for Cache<B> {
    fn drop(&mut self) {
        // Entries hold handles and handles hold `Shared`: detaching the caches
        // frees them. Handles still held elsewhere keep working, uncached.
        self.shared.caches.store(None);
        self.shared.feed.stop();
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
        let ns = self.shared.lookup_namespace(name).await?;
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
        self.get_or_load(ROOT_SCOPE, name, async {
            let up = self.backend.namespace(name).await?;
            Ok(CachedNamespace::new(self, name, Link::new(up, None)))
        })
        .await
    }

    /// The live namespace called `name`, never creating one: a cached
    /// handle's recovery must not bring a destroyed namespace back.
    async fn existing_namespace(self: &Arc<Self>, name: &str) -> Result<Arc<CachedNamespace>> {
        if let Some(hit) = self.cached::<CachedNamespace>(ROOT_SCOPE, name).await {
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
        self.adopt(ROOT_SCOPE, &name, || {
            CachedNamespace::new(self, &name, Link::new(up, None))
        })
        .await
    }
}
