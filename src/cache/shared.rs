//! The state a cache shares with every handle it gave out, and the entry
//! operations on it: hits, coalesced loads, adoption, invalidation, flush.

use std::fmt;
use std::future::Future;
use std::sync::Arc;

use arc_swap::ArcSwapOption;
use futures::future::FutureExt;

use super::changes::{Changes, Fence, Mark, Path};
use super::feed::FeedControl;
use super::front::Front;
use super::handle::Handle;
use super::key::{Key, KeyRef, ROOT_SCOPE};
use super::link::Link;
use super::namespace::CachedNamespace;
use super::stats::{CacheStats, Counters, KindCounters, KindStats};
use super::store::{sampled, Store};
use super::sweep::Sweep;
use super::work_spec::CachedWorkSpec;
use super::work_unit::CachedWorkUnit;
use super::worker::CachedWorker;
use crate::api::{Backend, WorkSpec};
use crate::error::{ObjectKind, Result};

/// The four moka caches, one per kind, keyed by (parent scope, name). One
/// cache per parent would make dropping a parent's children as trivial, but
/// cost a moka instance (kilobytes and a housekeeper) per spec and give no
/// global bound on units.
///
/// Entries hold their handles, and handles reach the caches through
/// [`Shared`], so [`Cache`](super::Cache)'s `Drop` detaches them to break
/// the cycle.
pub(crate) struct Caches {
    pub(super) namespaces: Store<CachedNamespace>,
    pub(super) work_specs: Store<CachedWorkSpec>,
    pub(super) work_units: Store<CachedWorkUnit>,
    pub(super) workers: Store<CachedWorker>,
    /// Scopes whose entries no lookup reaches, to be swept (see `sweep.rs`).
    pub(super) sweep: Arc<Sweep>,
}

impl Caches {
    /// The scope of the children of the namespace now cached as `name`,
    /// for a change to them (see [`Store::live`]).
    pub(super) fn namespace_scope(&self, name: &str) -> Option<u64> {
        let key = KeyRef {
            scope: ROOT_SCOPE,
            name,
        };
        Some(self.namespaces.live(key)?.link.load().scope())
    }

    /// The spec now cached as `spec` of namespace `ns`, for a change to its
    /// units (see [`Store::live`]).
    pub(super) fn spec(&self, ns: &str, spec: &str) -> Option<Arc<CachedWorkSpec>> {
        let scope = self.namespace_scope(ns)?;
        self.work_specs.live(KeyRef { scope, name: spec })
    }

    /// The scope the children of the object at `path` are now cached
    /// under: its cached entry's, for a namespace or a spec.
    fn children_scope(&self, path: Path<'_>) -> Option<u64> {
        match path.parent() {
            None => self.namespace_scope(path.name()),
            Some(ns) => Some(self.spec(ns.name(), path.name())?.link.load().scope()),
        }
    }
}

/// The fronts of the four kinds, one per kind whose entries never expire
/// (see `store.rs`). They live as long as the shared state, so a hit
/// reads one without loading the detachable [`Caches`]; each store of the
/// kind shares it.
#[derive(Default)]
pub(crate) struct Fronts {
    pub(super) namespaces: Option<Arc<Front<CachedNamespace>>>,
    pub(super) work_specs: Option<Arc<Front<CachedWorkSpec>>>,
    pub(super) work_units: Option<Arc<Front<CachedWorkUnit>>>,
    pub(super) workers: Option<Arc<Front<CachedWorker>>>,
}

impl Fronts {
    /// A front for every kind, or none (entries that expire).
    pub(super) fn new(enabled: bool) -> Self {
        if !enabled {
            return Fronts::default();
        }
        Fronts {
            namespaces: Some(Front::new()),
            work_specs: Some(Front::new()),
            work_units: Some(Front::new()),
            workers: Some(Front::new()),
        }
    }

    /// Empties every front and keeps it empty (see [`Front::close`]).
    pub(super) fn close(&self) {
        if let Some(front) = &self.namespaces {
            front.close();
        }
        if let Some(front) = &self.work_specs {
            front.close();
        }
        if let Some(front) = &self.work_units {
            front.close();
        }
        if let Some(front) = &self.workers {
            front.close();
        }
    }
}

/// State shared by a cache and every handle it gave out.
pub(crate) struct Shared {
    pub(super) backend: Arc<dyn Backend>,
    pub(super) caches: ArcSwapOption<Caches>,
    pub(super) fronts: Fronts,
    pub(super) counters: Arc<Counters>,
    /// The change-feed subscription's state (see `feed.rs`).
    pub(super) feed: Arc<FeedControl>,
    /// Marks of dropped entries, which fence adoptions (see `changes.rs`).
    changes: Changes,
}

impl Caches {
    /// Runs moka's pending maintenance on every kind.
    pub(super) fn run_pending_tasks(&self) {
        self.namespaces.run_pending_tasks();
        self.work_specs.run_pending_tasks();
        self.work_units.run_pending_tasks();
        self.workers.run_pending_tasks();
    }

    /// After an insert or a retirement: removes a few entries an earlier
    /// sweep found unreachable, and sweeps if one is due (see `sweep.rs`).
    pub(super) fn sweep_if_due(&self, counters: &Counters) {
        counters
            .work_units
            .swept
            .add(self.work_units.drop_doomed(REMOVALS_PER_INSERT));
        let Some(sweep) = self.sweep.start() else {
            return;
        };
        let parents = sweep.take();
        self.work_specs.doom_under(&parents);
        self.workers.doom_under(&parents);
        // Specs and workers are few: removed at once, so that the removed
        // specs' scopes are retired before the units are looked at.
        counters
            .work_specs
            .swept
            .add(self.work_specs.drop_doomed(usize::MAX));
        counters
            .workers
            .swept
            .add(self.workers.drop_doomed(usize::MAX));
        let mut scopes = sweep.take();
        scopes.extend(parents);
        self.work_units.doom_under(&scopes);
        let entries = self.work_specs.entry_count()
            + self.workers.entry_count()
            + self.work_units.entry_count();
        sweep.finish(entries);
    }
}

/// How many unreachable units an insert removes, at most: each removal is
/// a moka write of a few microseconds, so a swept namespace of 100,000
/// units costs each of the next inserts a fraction of a millisecond instead
/// of one insert a third of a second.
const REMOVALS_PER_INSERT: usize = 64;

impl Shared {
    pub(super) fn new(
        backend: Arc<dyn Backend>,
        fronts: Fronts,
        caches: Caches,
        counters: Arc<Counters>,
    ) -> Arc<Self> {
        Arc::new(Shared {
            backend,
            caches: ArcSwapOption::from_pointee(caches),
            fronts,
            counters,
            feed: Arc::default(),
            changes: Changes::default(),
        })
    }

    /// The counters and entry counts of every kind.
    pub(super) fn stats(&self) -> CacheStats {
        fn kind<W: Handle>(caches: Option<&Caches>, counters: &KindCounters) -> KindStats {
            let (entries, in_flight) = caches.map_or((0, 0), |c| {
                let store = W::store(c);
                (store.entry_count(), store.in_flight() as u64)
            });
            counters.snapshot(entries, in_flight)
        }
        let c = &self.counters;
        let caches = self.caches.load();
        let caches = caches.as_deref();
        CacheStats {
            namespaces: kind::<CachedNamespace>(caches, &c.namespaces),
            work_specs: kind::<CachedWorkSpec>(caches, &c.work_specs),
            work_units: kind::<CachedWorkUnit>(caches, &c.work_units),
            workers: kind::<CachedWorker>(caches, &c.workers),
            feed: self.feed.snapshot(),
        }
    }

    pub(super) fn counters<W: Handle>(&self) -> &KindCounters {
        W::counters(&self.counters)
    }

    /// The cached handle, if any: the hit path of the lookup methods.
    ///
    /// No liveness check: an entry is removed when its object is known to
    /// be deleted (by the delete, or by the recovery that learns it), and the
    /// children of a known-dead parent are never looked up (the parent
    /// re-resolves first).
    pub(super) fn hit<W: Handle>(&self, scope: u64, name: &str) -> Option<Arc<W>> {
        if !self.feed.coherent() {
            // The change feed has a gap: an entry may be stale, none is served.
            return None;
        }
        let key = KeyRef { scope, name };
        let hit = match W::front(&self.fronts) {
            // Once the store is half full, one lookup in a few also reaches
            // moka, for its policy (see `store.rs`).
            Some(front) if front.sampling() && sampled() => {
                let found = front.get(key);
                W::store(self.caches.load().as_ref()?).sample(key, found)?
            }
            _ => self.peek(key)?,
        };
        self.counters::<W>().hits.inc();
        Some(hit)
    }

    /// The entry for `key`: from the kind's front, else (entries that
    /// expire) from moka.
    fn peek<W: Handle>(&self, key: KeyRef<'_>) -> Option<Arc<W>> {
        match W::front(&self.fronts) {
            Some(front) => front.get(key),
            None => W::store(self.caches.load().as_ref()?).get(key),
        }
    }

    /// The link of the entry cached for `name` under `scope`, taken before
    /// a delete of the name: whatever the backend then answers (deleted,
    /// or no such object), the object this link is bound to no longer has
    /// the name, so [`invalidate`](Self::invalidate) marks it dead. An entry
    /// cached after the snapshot may be a newer object's and is only
    /// dropped.
    pub(super) fn link_before_delete<W: Handle>(
        &self,
        scope: u64,
        name: &str,
    ) -> Option<Arc<Link<W::Up>>> {
        let entry = self.peek::<W>(KeyRef { scope, name })?;
        Some(entry.link_cell().load_full())
    }

    /// A live cached handle, if there is one. Entries whose object is known
    /// to be deleted, or whose link or an ancestor's is not cached in the
    /// current generation (see [`serves_children`](Self::serves_children)),
    /// are dropped instead of returned (the path recoveries take, racing
    /// with the removal).
    pub(super) fn cached<W: Handle>(&self, scope: u64, name: &str) -> Option<Arc<W>> {
        let hit = self.live_entry::<W>(scope, name)?;
        self.counters::<W>().hits.inc();
        Some(hit)
    }

    /// [`cached`](Self::cached) without counting a hit: for handles a
    /// call answered, which are no lookups.
    pub(super) fn live_entry<W: Handle>(&self, scope: u64, name: &str) -> Option<Arc<W>> {
        if !self.feed.coherent() {
            return None;
        }
        let key = KeyRef { scope, name };
        let hit = self.peek::<W>(key)?;
        if !self.serves_children(&hit.link_cell().load()) {
            if let Some(caches) = self.caches.load().as_ref() {
                // Only this entry: another may have succeeded it meanwhile.
                W::store(caches).remove_handle(&hit);
            }
            return None;
        }
        Some(hit)
    }

    /// True if child entries may be served through `link`: its object is
    /// not known to be deleted, and it and its ancestors are cached in the
    /// current generation (since the last flush), so change events reach
    /// its children.
    pub(super) fn serves_children<T: ?Sized>(&self, link: &Link<T>) -> bool {
        !link.is_dead() && link.is_current(self.feed.generation())
    }

    /// True if a handle of `W` on `link` must re-resolve its name before
    /// use: the cache serves from its entries, and the link is not cached
    /// in the current generation — cached before a flush (a change-feed
    /// gap: events may have missed it), never cached (loaded during a gap,
    /// or its load was superseded), or, for a namespace or spec, its entry
    /// left the cache (see `builder.rs`), for a unit, a change dropped it
    /// (see [`drop_entry`](Self::drop_entry)). A namespace or spec handle also
    /// re-resolves when an ancestor's link is outdated: the children it
    /// looks up must be cached where events reach them. A unit or worker
    /// handle has no children, and its calls go to its object, so its
    /// ancestors do not matter. Re-resolving makes the handle share the
    /// link of the entry now cached, which events reach.
    pub(super) fn outdated<W: Handle>(&self, link: &Link<W::Up>) -> bool {
        let generation = self.feed.generation();
        let current = if W::HAS_CHILDREN {
            link.is_current(generation)
        } else {
            link.generation() == generation
        };
        !current && self.feed.coherent() && self.caches.load().is_some()
    }

    /// The cached handle for `name`, loading it with `load` on a miss.
    /// Concurrent misses of one name share one load; its error is every
    /// waiter's error. Cancel-safe (see [`Store::get_or_load`]).
    pub(super) async fn get_or_load<W, F, Fut>(
        &self,
        scope: u64,
        name: &str,
        load: F,
    ) -> Result<Arc<W>>
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
        let Some(caches) = self.caches.load_full() else {
            // Detached (the `Cache` was dropped): handles keep working,
            // uncached.
            counters.loads.inc();
            return load(name).await;
        };
        // Bypassed during a change-feed gap (or before the first
        // subscription): loads are still shared, but not cached.
        let coherent = self.feed.coherent();
        // The generation of the stores this load may publish into: were
        // they dropped meanwhile (`Cache::into_inner`), an answer cached
        // there must not pass for current in the stores that follow.
        let generation = self.feed.generation();
        let key = Key {
            scope,
            name: Arc::clone(&name),
        };
        let loaded = W::store(&caches)
            .get_or_load(
                key,
                || {
                    counters.loads.inc();
                    load(name).boxed()
                },
                coherent.then_some(|handle: &Arc<W>| {
                    // Under the in-flight lock, which a flush takes before it
                    // moves to the next generation (and forgets the load).
                    handle.link_cell().load().cached_in(generation);
                }),
            )
            .await;
        if coherent {
            caches.sweep_if_due(&self.counters);
        } else if loaded.is_ok() {
            self.feed.backend_answered();
        }
        loaded
    }

    /// The existing object `name` under `scope`, found by `find` (which
    /// caches what it finds, by adoption), never created: concurrent finds
    /// of one name share one backend call, apart from lookups of it (see
    /// [`Key::finding`]). Counts a miss: callers look in the cache first.
    /// Cancel-safe, as [`get_or_load`](Self::get_or_load).
    pub(super) async fn find<W, F, Fut>(&self, scope: u64, name: &str, find: F) -> Result<Arc<W>>
    where
        W: Handle,
        F: FnOnce(Arc<str>) -> Fut,
        Fut: Future<Output = Result<Arc<W>>> + Send + 'static,
    {
        self.counters::<W>().misses.inc();
        let Some(caches) = self.caches.load_full() else {
            return find(Arc::from(name)).await;
        };
        let key = Key::finding(scope, name);
        let name = Arc::clone(&key.name);
        let publish: Option<fn(&Arc<W>)> = None;
        W::store(&caches)
            .get_or_load(key, || find(name).boxed(), publish)
            .await
    }

    /// A fence for an adoption whose backend call starts now (see
    /// `changes.rs`).
    pub(super) fn fence(&self) -> Fence {
        Fence {
            seq: self.changes.seq(),
            generation: self.feed.generation(),
        }
    }

    /// True if the object of `W` at `path` may have been dropped, or the
    /// cache flushed, after `fence`.
    fn changed_since<W: Handle>(&self, path: Path<'_>, fence: Fence) -> bool {
        // The marks first: their read is fenced, so a flush seen there is
        // seen in the generation too.
        self.changes.since(W::KIND, path, fence.seq) || fence.generation != self.feed.generation()
    }

    /// Marks the object of `W` at `path` dropped, and everything under it
    /// if it has children (see `changes.rs`).
    fn mark_dropped<W: Handle>(&self, path: Path<'_>) {
        self.changes.mark(&Mark::Object(W::KIND, path));
        if W::HAS_CHILDREN {
            self.changes.mark(&Mark::Under(path));
        }
    }

    /// The cached handle for the object at `path` if there is a live one,
    /// else `make()`'s (a handle of that name under `scope`), which is
    /// cached. For handles
    /// the backend just returned (lists, upserts, an attempt's unit and
    /// worker): no backend call. `scope` is `None` if the parent's link
    /// serves no children (see [`serves_children`](Self::serves_children)):
    /// the handle is then not cached, and re-resolves its name on first use.
    /// Nor is it cached if its entry was dropped after `fence`, taken before
    /// the backend call that answered it: the answer may be from before a
    /// delete (see `changes.rs`).
    pub(super) async fn adopt<W: Handle>(
        &self,
        scope: Option<u64>,
        path: Path<'_>,
        fence: Fence,
        make: impl FnOnce() -> Arc<W>,
    ) -> Arc<W> {
        let Some(scope) = scope else {
            return make();
        };
        if let Some(hit) = self.live_entry::<W>(scope, path.name()) {
            return hit;
        }
        let caches = self.caches.load_full().filter(|_| self.feed.coherent());
        let Some(caches) = caches.filter(|_| !self.changed_since::<W>(path, fence)) else {
            return make();
        };
        let store = W::store(&caches);
        let mut inserted = false;
        let handle = store.get_with(make(), |handle| {
            // If a flush came since the fence, the handle is of the old
            // generation, hence outdated.
            handle.link_cell().load().cached_in(fence.generation);
            inserted = true;
        });
        if inserted && self.changed_since::<W>(path, fence) {
            // A drop marked since the check above may have found no entry
            // to remove yet: this one is taken back out.
            store.remove_handle(&handle);
            handle.link_cell().load().uncache();
        }
        caches.sweep_if_due(&self.counters);
        handle
    }

    /// Drops the entry for the object at `path` after a delete through the
    /// cache, under `scope` (that of the parent handle the delete went
    /// through), and marks `deleted` (the link
    /// [`link_before_delete`](Self::link_before_delete) took) dead; and
    /// drops the entry under the scope of the parent entry now cached, if
    /// that is another: the handle's own entry may have been evicted or
    /// purged while it was held, and the entry that succeeded it must not
    /// keep serving the deleted child. Whether that entry's child is the
    /// object deleted is not known (its parent may be a newer object of the
    /// same name), so it only costs its next lookup.
    pub(super) async fn invalidate<W: Handle>(
        &self,
        scope: u64,
        path: Path<'_>,
        deleted: Option<Arc<Link<W::Up>>>,
    ) {
        if let Some(deleted) = deleted {
            deleted.mark_dead();
        }
        let Some(caches) = self.caches.load_full() else {
            return;
        };
        self.drop_entry::<W>(&caches, Some(scope), path).await;
        let current = path.parent().and_then(|p| caches.children_scope(p));
        if let Some(current) = current.filter(|current| *current != scope) {
            self.drop_entry::<W>(&caches, Some(current), path).await;
        }
    }

    /// Drops every cached unit of the spec at `path`, for deletes whose
    /// units are unknown: those cached under `link` (the link of the
    /// handle the delete went through, or of the spec's cached entry) and
    /// under the link of the entry now cached for the spec, if that is
    /// another (see [`invalidate`](Self::invalidate)), become unreachable
    /// at once and are swept later, and adoptions in flight cache none
    /// (see `changes.rs`).
    pub(super) fn drop_units_of(&self, link: Option<&Link<dyn WorkSpec>>, path: Path<'_>) {
        self.changes.mark(&Mark::Under(path));
        let caches = self.caches.load_full();
        let current = caches.as_deref().and_then(|caches| {
            let ns = path.parent()?;
            caches.spec(ns.name(), path.name())
        });
        let current = current.as_ref().map(|spec| spec.link.load_full());
        let current = current
            .as_deref()
            .filter(|current| !matches!(link, Some(link) if std::ptr::eq(*current, link)));
        let mut dropped = false;
        for link in link.into_iter().chain(current) {
            let unreachable = link.rescope();
            if let Some(caches) = caches.as_deref() {
                caches.sweep.retire(unreachable);
                caches.sweep_if_due(&self.counters);
            }
            dropped = true;
        }
        // A spec never cached has no units to drop.
        if dropped {
            self.counters::<CachedWorkUnit>().invalidations.inc();
        }
    }

    /// Drops every entry of every kind, and outdates every handle given out
    /// so far: each re-resolves its name on its next use. Counted in the
    /// feed's stats.
    pub(crate) fn flush(&self) {
        self.drop_everything(FeedControl::next_generation);
    }

    /// As [`flush`](Self::flush), but no flush to count: the first
    /// subscription to a feed, before which nothing was served or stored,
    /// still outdates the handles given out uncached until then.
    pub(crate) fn first_generation(&self) {
        self.drop_everything(FeedControl::advance_generation);
    }

    /// The steps of a flush; `next_generation` starts the first new
    /// generation, counted as a flush or not.
    fn drop_everything(&self, next_generation: fn(&FeedControl)) {
        if let Some(caches) = self.caches.load_full() {
            // Loads in flight first, so none publishes a pre-flush answer.
            caches.namespaces.forget_all();
            caches.work_specs.forget_all();
            caches.work_units.forget_all();
            caches.workers.forget_all();
            // Before the entries go: an adoption that inserts after the
            // clear then finds its fence outdated (see `adopt`).
            next_generation(&self.feed);
            std::sync::atomic::fence(std::sync::atomic::Ordering::SeqCst);
            caches.namespaces.clear();
            caches.work_specs.clear();
            caches.work_units.clear();
            caches.workers.clear();
            // Once more after the clears: an insert between the first new
            // generation and its kind's clear was cached in it and then
            // dropped, so its handles would count as cached where no change
            // event reaches them.
            self.feed.advance_generation();
            caches.sweep.clear();
        } else {
            next_generation(&self.feed);
        }
    }

    /// Drops the entry of `W` at `path`, cached under `scope` (`None`: its
    /// parent is not cached, so neither is it, and only adoptions in flight
    /// are kept from caching it); its link loses its children (the removal
    /// listener, which moka runs before `remove` returns, gives it a fresh
    /// scope and, for a namespace or spec, outdates it). The entry may be
    /// a newer object's than the change is about, so it is not marked dead.
    pub(super) async fn drop_entry<W: Handle>(
        &self,
        caches: &Caches,
        scope: Option<u64>,
        path: Path<'_>,
    ) {
        let store = W::store(caches);
        let name = path.name();
        // A load of this name in flight may have read the object before the
        // change: forgetting it here means it is never published (its
        // waiters still get its answer, as if they had looked up first).
        if let Some(scope) = scope {
            store.forget(&Key::new(scope, name));
            store.forget(&Key::finding(scope, name));
        }
        // Likewise for an adoption whose backend call is in flight.
        self.mark_dropped::<W>(path);
        let Some(scope) = scope else {
            return;
        };
        let key = KeyRef { scope, name };
        if let Some(gone) = store.remove(key) {
            if W::KIND == ObjectKind::WorkUnit {
                // A unit's name is dropped only when it was deleted (or
                // renamed by hand): a kept handle resolves it again rather
                // than go on with an object that may have another name now.
                // A worker's also drops when its parent changes, and its
                // handle keeps its object: resolving a worker's name again
                // lists its namespace's workers. One deleted answers `Gone`.
                gone.link_cell().load().uncache();
            }
            self.counters::<W>().invalidations.inc();
        }
    }
}

impl fmt::Debug for Shared {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Shared")
            .field("counters", &self.counters)
            .finish_non_exhaustive()
    }
}
