//! How a cache ends: dropped (its entries detached from the handles it gave
//! out) or taken apart for its backend.

use std::sync::{Arc, Weak};

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
}
