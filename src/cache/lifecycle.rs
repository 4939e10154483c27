//! How a cache ends: dropped (its entries detached from the handles it gave
//! out) or taken apart for its backend.

use std::sync::{Arc, Weak};

use super::builder::CacheBuilder;
use super::shared::Shared;
use super::Cache;

/// Detaches a cache's entries and stops its feed subscription when the cache
/// is dropped. Entries hold handles and handles hold [`Shared`]: detaching
/// the entries frees them; handles still held elsewhere keep working,
/// uncached. A guard field rather than `Drop` on [`Cache`], so that
/// [`Cache::into_inner`] can take the cache apart.
pub(super) struct Detach(pub(super) Weak<Shared>);

impl Drop for Detach {
    fn drop(&mut self) {
        if let Some(shared) = self.0.upgrade() {
            shared.caches.store(None);
            shared.fronts.close();
            shared.feed.stop();
        }
    }
}

impl<B> Cache<B> {
    /// The wrapped backend, by value, or the cache back if the backend is
    /// still shared.
    ///
    /// The backend is shared with every handle this cache gave out (they
    /// keep working, uncached, after the cache is gone), so it can only be
    /// taken while none is alive. Either way the cache's entries are dropped
    /// first (they hold handles too): an `Err` gives back a working but
    /// empty cache, which reloads names on demand.
    ///
    /// moka frees what it drops (and copies when it grows) through
    /// epoch-based reclamation, so a handle the cache let go of can outlive
    /// it briefly. `into_inner` pushes that reclamation along on the calling
    /// thread; garbage another thread made and has not yet handed over can
    /// still hold the backend, and the call then gives the cache back: a
    /// later call succeeds.
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
        shared.fronts.close();
        reclaim_dropped_entries(&shared);
        match Arc::try_unwrap(shared) {
            Err(shared) => {
                reopen(&shared, &settings);
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
}

/// Gives `shared` empty stores again after a failed `into_inner`, in a new
/// generation: a call that took its fence while there were none saw no
/// change event in that time (there was nothing to drop), so what it read
/// then must not be cached now.
fn reopen<B>(shared: &Shared, settings: &CacheBuilder<B>) {
    let caches = settings.caches(&shared.counters, &shared.fronts);
    shared.caches.store(Some(Arc::new(caches)));
    shared.flush();
}

/// How many times [`reclaim_dropped_entries`] pushes reclamation along: as
/// often as moka itself does when a cache is dropped.
const RECLAIM_ROUNDS: usize = 128;

/// Runs moka's deferred frees until `shared` has no co-owner or
/// [`RECLAIM_ROUNDS`] have passed. Each round hands this thread's garbage to
/// the global queue and tries to advance the epoch, which waits for threads
/// inside moka at that moment: yielding lets them leave.
fn reclaim_dropped_entries(shared: &Arc<Shared>) {
    for _ in 0..RECLAIM_ROUNDS {
        if Arc::strong_count(shared) == 1 {
            return;
        }
        crossbeam_epoch::pin().flush();
        std::thread::yield_now();
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration as StdDuration;

    use super::*;
    use crate::cache::handle::Handle;
    use crate::cache::namespace::CachedNamespace;
    use crate::instrumented::{Instrumented, Op};
    use crate::memory::MemoryBackend;
    use crate::Backend;

    /// A lookup whose load starts while `into_inner` drops the stores, and
    /// answers once a failed `into_inner` has given them back, is not
    /// current: what it cached went with the dropped stores.
    #[tokio::test]
    async fn a_load_started_as_the_stores_go_is_outdated_once_they_are_back() -> crate::Result<()> {
        let slow = StdDuration::from_millis(50);
        let cache = Cache::new(Instrumented::with_latency(
            MemoryBackend::new(),
            slow,
            |op| op == Op::Namespace,
        ));
        while !cache.stats().feed.subscribed {
            tokio::time::sleep(StdDuration::from_millis(1)).await;
        }
        // `into_inner`'s first step, a lookup slipping in before the next.
        cache.shared.flush();
        let mut lookup = Box::pin(cache.namespace("n"));
        assert!(futures::poll!(&mut lookup).is_pending());
        cache.shared.caches.store(None);
        reopen(&cache.shared, &cache.settings);
        let namespace = lookup.await?;
        let namespace = namespace
            .as_any()
            .downcast_ref::<CachedNamespace>()
            .ok_or(crate::Error::WrongBackend)?;
        assert!(cache
            .shared
            .outdated::<CachedNamespace>(&namespace.link_cell().load()));
        Ok(())
    }

    /// A fence taken while `into_inner` held no stores is outdated once the
    /// cache is given back.
    #[tokio::test]
    async fn a_cache_given_back_outdates_fences_taken_without_stores() -> crate::Result<()> {
        let cache = Cache::new(MemoryBackend::new());
        let held = cache.namespace("n").await?;
        let cache = cache.into_inner().expect_err("a handle is alive");
        cache.shared.caches.store(None);
        let fence = cache.shared.fence();
        reopen(&cache.shared, &cache.settings);
        assert_ne!(fence.generation, cache.shared.feed.generation());
        drop(held);
        Ok(())
    }
}
