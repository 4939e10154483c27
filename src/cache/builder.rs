//! Configuration of a [`Cache`]: per-kind capacities and optional expiry.

use std::fmt;
use std::marker::PhantomData;
use std::sync::{Arc, Weak};
use std::time::Duration as StdDuration;

use moka::notification::RemovalCause;

use super::front::Front;
use super::handle::Handle;
use super::key::Entry;
use super::shared::Fronts;
use super::stats::{Counters, KindCounters};
use super::store::Store;
use super::sweep::Sweep;
use super::{Cache, Caches};
use crate::api::Backend;

/// Default capacity for namespace handles: job servers use a handful.
pub const DEFAULT_NAMESPACES: u64 = 1_024;
/// Default capacity for work spec handles: dozens of specs per namespace.
pub const DEFAULT_WORK_SPECS: u64 = 16_384;
/// Default capacity for work unit handles: a job server may address millions
/// of units, but only the ones in flight are looked up repeatedly. Each
/// cached work unit handle costs about 583 bytes beyond the backend's own
/// handle (BENCHMARKS.md has the measurement), plus the name's length if it
/// is longer than 24 bytes, so a full default capacity holds about 58 MB.
pub const DEFAULT_WORK_UNITS: u64 = 100_000;
/// Default capacity for worker handles: one per executing process.
pub const DEFAULT_WORKERS: u64 = 16_384;
/// The longest time to idle or to live: 1,000 years of 365 days, the
/// longest moka keeps an entry for.
pub const MAX_EXPIRY: StdDuration = StdDuration::from_secs(1_000 * 365 * 24 * 3_600);

/// Builds a [`Cache`] over a backend of type `B` with chosen capacities and
/// expiry; made by [`Cache::builder`].
///
/// Capacities count handles (entries) per kind; moka evicts the least useful
/// entries (TinyLFU admission, LRU eviction) once a kind is full. No expiry is
/// set by default: correctness never depends on it, because a stale handle
/// re-resolves its name on `Gone` (see [`Cache`]). A time-to-live or
/// time-to-idle bounds how long a delete made *behind the cache's back*
/// can go unnoticed by lookups (without a change feed). Each namespace or
/// spec entry that leaves the cache makes the handles kept on it, and the
/// spec handles kept under it, re-resolve their names once, and its cached
/// children be looked up again: a time-to-idle shorter than the gaps
/// between lookups of a namespace by name costs that much every period.
///
/// ```
/// # use coordinate::cache::Cache;
/// # use coordinate::memory::MemoryBackend;
/// use std::time::Duration;
/// let cache = Cache::builder()
///     .work_units(10_000)
///     .time_to_idle(Duration::from_secs(300))
///     .build(MemoryBackend::new());
/// # drop(cache);
/// ```
#[must_use = "a builder does nothing until `build` is called"]
pub struct CacheBuilder<B> {
    namespaces: u64,
    work_specs: u64,
    work_units: u64,
    workers: u64,
    time_to_idle: Option<StdDuration>,
    time_to_live: Option<StdDuration>,
    /// The backend type is only named, never held: the builder stays `Send`,
    /// `Sync` and `Clone` whatever `B` is.
    backend: PhantomData<fn(B) -> Cache<B>>,
}

impl<B> Default for CacheBuilder<B> {
    fn default() -> Self {
        CacheBuilder {
            namespaces: DEFAULT_NAMESPACES,
            work_specs: DEFAULT_WORK_SPECS,
            work_units: DEFAULT_WORK_UNITS,
            workers: DEFAULT_WORKERS,
            time_to_idle: None,
            time_to_live: None,
            backend: PhantomData,
        }
    }
}

impl<B> Clone for CacheBuilder<B> {
    fn clone(&self) -> Self {
        CacheBuilder { ..*self }
    }
}

impl<B> fmt::Debug for CacheBuilder<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CacheBuilder")
            .field("namespaces", &self.namespaces)
            .field("work_specs", &self.work_specs)
            .field("work_units", &self.work_units)
            .field("workers", &self.workers)
            .field("time_to_idle", &self.time_to_idle)
            .field("time_to_live", &self.time_to_live)
            .finish()
    }
}

impl<B: Backend + 'static> CacheBuilder<B> {
    /// A builder with the default capacities and no expiry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Maximum number of cached namespace handles (default [`DEFAULT_NAMESPACES`]).
    pub fn namespaces(mut self, capacity: u64) -> Self {
        self.namespaces = capacity;
        self
    }

    /// Maximum number of cached work spec handles (default [`DEFAULT_WORK_SPECS`]).
    pub fn work_specs(mut self, capacity: u64) -> Self {
        self.work_specs = capacity;
        self
    }

    /// Maximum number of cached work unit handles (default [`DEFAULT_WORK_UNITS`]).
    pub fn work_units(mut self, capacity: u64) -> Self {
        self.work_units = capacity;
        self
    }

    /// Maximum number of cached worker handles (default [`DEFAULT_WORKERS`]).
    pub fn workers(mut self, capacity: u64) -> Self {
        self.workers = capacity;
        self
    }

    /// Drops an entry that has not been looked up for this long (at most
    /// [`MAX_EXPIRY`]; a longer time counts as that). A namespace's or
    /// spec's entry is also used by each change to its children that the
    /// cache applies (a delete through it, a change-feed event), which
    /// keeps it as a lookup does.
    pub fn time_to_idle(mut self, idle: StdDuration) -> Self {
        self.time_to_idle = Some(idle.min(MAX_EXPIRY));
        self
    }

    /// Drops an entry this long after it was loaded, however often it is
    /// used (at most [`MAX_EXPIRY`]; a longer time counts as that).
    pub fn time_to_live(mut self, live: StdDuration) -> Self {
        self.time_to_live = Some(live.min(MAX_EXPIRY));
        self
    }

    /// The cache over `backend`.
    pub fn build(self, backend: B) -> Cache<B> {
        Cache::from_parts(backend, self)
    }
}

impl<B> CacheBuilder<B> {
    /// The fronts for these settings: one per kind unless entries expire
    /// (moka expires them lazily, unseen by a front).
    pub(super) fn fronts(&self) -> Fronts {
        Fronts::new(self.time_to_idle.is_none() && self.time_to_live.is_none())
    }

    /// Empty entry stores with these settings, counting into `counters`,
    /// each opening its kind's front in `fronts`.
    pub(super) fn caches(&self, counters: &Arc<Counters>, fronts: &Fronts) -> Caches {
        let sweep = Arc::new(Sweep::default());
        Caches {
            namespaces: self.store(self.namespaces, counters, &sweep, &fronts.namespaces, |c| {
                &c.namespaces
            }),
            work_specs: self.store(self.work_specs, counters, &sweep, &fronts.work_specs, |c| {
                &c.work_specs
            }),
            work_units: self.store(self.work_units, counters, &sweep, &fronts.work_units, |c| {
                &c.work_units
            }),
            workers: self.store(self.workers, counters, &sweep, &fronts.workers, |c| {
                &c.workers
            }),
            sweep,
        }
    }

    fn store<W: Handle>(
        &self,
        capacity: u64,
        counters: &Arc<Counters>,
        sweep: &Arc<Sweep>,
        front: &Option<Arc<Front<W>>>,
        kind: fn(&Counters) -> &KindCounters,
    ) -> Store<W> {
        // The listener holds the counters, the sweep and (weakly) the front,
        // never the cache, so entries and listener form no reference cycle.
        let counters = Arc::clone(counters);
        let listener_sweep = Arc::clone(sweep);
        let listener_front = front.as_ref().map(Arc::downgrade);
        let mut builder = moka::sync::Cache::builder()
            .max_capacity(capacity)
            .eviction_listener(move |_: Arc<Entry<W>>, handle: Arc<W>, cause| {
                if let Some(front) = listener_front.as_ref().and_then(Weak::upgrade) {
                    front.remove_handle(&handle);
                }
                if cause.was_evicted() {
                    kind(&counters).evictions.inc();
                }
                if cause != RemovalCause::Replaced {
                    // Change events reach children only through a cached
                    // parent: the link this handle was cached with drops its
                    // children, and handles kept on it (or under it)
                    // re-resolve their name before use, so that they never
                    // cache children that events cannot reach. The link it
                    // was cached with: removed late (after a flush, or by a
                    // sweep), the handle may have rebound to the link of the
                    // entry that succeeded it, whose children stay.
                    let link = handle.link_cell().first();
                    let unreachable = link.rescope();
                    if W::HAS_CHILDREN {
                        link.uncache();
                        listener_sweep.retire(unreachable);
                    }
                }
            });
        if let Some(idle) = self.time_to_idle {
            builder = builder.time_to_idle(idle);
        }
        if let Some(live) = self.time_to_live {
            builder = builder.time_to_live(live);
        }
        Store::new(builder.build(), front.clone(), Arc::clone(sweep))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory::MemoryBackend;

    #[test]
    fn expiry_past_a_thousand_years_counts_as_a_thousand() {
        let builder = CacheBuilder::<MemoryBackend>::new()
            .time_to_idle(StdDuration::MAX)
            .time_to_live(StdDuration::MAX);
        assert_eq!(builder.time_to_idle, Some(MAX_EXPIRY));
        assert_eq!(builder.time_to_live, Some(MAX_EXPIRY));
        let cache = builder.build(MemoryBackend::new());
        let looked_up = futures::executor::block_on(async {
            cache.namespace("n").await?;
            cache.namespace("n").await
        });
        assert!(looked_up.is_ok());
        assert_eq!(cache.stats().namespaces.hits, 1);
    }
}
