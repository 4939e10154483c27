//! Per-kind counters of the cache, cheap enough to bump on every hit.

mod counter;

use std::fmt;

use counter::Counter;

/// The live counters of one handle kind.
#[derive(Default)]
pub(crate) struct KindCounters {
    pub(crate) hits: Counter,
    pub(crate) misses: Counter,
    pub(crate) loads: Counter,
    pub(crate) recoveries: Counter,
    pub(crate) invalidations: Counter,
    pub(crate) evictions: Counter,
    pub(crate) swept: Counter,
}

impl KindCounters {
    pub(crate) fn snapshot(&self, entries: u64, loads_in_flight: u64) -> KindStats {
        KindStats {
            hits: self.hits.get(),
            misses: self.misses.get(),
            backend_loads: self.loads.get(),
            gone_recoveries: self.recoveries.get(),
            invalidations: self.invalidations.get(),
            evictions: self.evictions.get(),
            swept: self.swept.get(),
            entries,
            loads_in_flight,
        }
    }
}

/// The counters of every kind.
#[derive(Default)]
pub(crate) struct Counters {
    pub(crate) namespaces: KindCounters,
    pub(crate) work_specs: KindCounters,
    pub(crate) work_units: KindCounters,
    pub(crate) workers: KindCounters,
}

/// Counters of one handle kind, as returned by
/// [`Cache::stats`](crate::cache::Cache::stats).
///
/// Every counter only grows; compare two snapshots to measure an interval.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct KindStats {
    /// Lookups answered from the cache.
    pub hits: u64,
    /// Lookups not answered from the cache: each leads to a load, or waits
    /// for a concurrent load of the same name, and every load follows one.
    /// The cache's own lookups count too: a `Gone` recovery's, each retry
    /// of a lookup after one, and that of the namespace under which an
    /// object of another namespace in an answer is filed.
    pub misses: u64,
    /// Backend lookups made to fill the cache (concurrent misses of one name
    /// share one load).
    pub backend_loads: u64,
    /// Times a handle of this kind re-resolved its name after a `Gone` (or
    /// after learning through the cache that its object was deleted).
    pub gone_recoveries: u64,
    /// Entries dropped because their object was deleted or changed — by a
    /// delete made through the cache, a change-feed event or a purge: one
    /// per named entry, one per bulk drop of a parent's children.
    pub invalidations: u64,
    /// Entries evicted by the size bound or by expiry.
    pub evictions: u64,
    /// Entries dropped because no lookup could reach them any more: their
    /// parent was deleted or evicted, or its units deleted by a query.
    pub swept: u64,
    /// Approximate number of entries held (moka's estimate; it includes
    /// entries no lookup reaches until they are swept).
    pub entries: u64,
    /// Loads in flight now, each awaited by at least one lookup or `Gone`
    /// recovery (one given up, its future dropped, leaves none behind):
    /// zero whenever none of this kind is running. Loads during a
    /// change-feed gap are counted too (shared, but filling no entry); a
    /// load forgotten because its name was deleted or changed meanwhile
    /// is not (it answers its waiters but fills no entry).
    pub loads_in_flight: u64,
}

/// Counters of the whole cache, per handle kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct CacheStats {
    /// Namespace handles.
    pub namespaces: KindStats,
    /// Work spec handles.
    pub work_specs: KindStats,
    /// Work unit handles.
    pub work_units: KindStats,
    /// Worker handles.
    pub workers: KindStats,
    /// The change-feed subscription (coherence across job servers).
    pub feed: super::FeedStats,
}

impl fmt::Debug for Counters {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Counters")
            .field("namespaces", &self.namespaces.snapshot(0, 0))
            .field("work_specs", &self.work_specs.snapshot(0, 0))
            .field("work_units", &self.work_units.snapshot(0, 0))
            .field("workers", &self.workers.snapshot(0, 0))
            .finish()
    }
}
