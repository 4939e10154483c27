//! Coherence across job servers: the cache's subscription to its backend's
//! change feed (see [`crate::feed`]).
//!
//! A cache built inside a tokio runtime over a backend with a feed spawns
//! one task. The task holds only a `Weak` to the cache's state and stops when
//! the [`Cache`] is dropped. It applies every event to exactly the entries
//! it names. When the feed reports a gap the cache stops serving from its
//! entries (lookups go to the backend and nothing is cached), flushes, and
//! resubscribes with exponential backoff and jitter; once subscribed again
//! it flushes once more and serves from the cache again. Each flush starts a
//! new generation of entries: handles given out in an earlier one (which
//! events may have missed) re-resolve their name before their next use.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration as StdDuration;

use futures::FutureExt;
use tokio::sync::Notify;

use super::changes::Path;
use super::key::ROOT_SCOPE;
use super::namespace::CachedNamespace;
use super::shared::{Caches, Shared};
use super::work_spec::CachedWorkSpec;
use super::work_unit::CachedWorkUnit;
use super::worker::CachedWorker;
use super::Cache;
use crate::api::Backend;
use crate::error::{Error, Result};
use crate::feed::{ChangeEvent, ChangeFeed, DeletedUnits, PurgeScope};

/// The first pause before resubscribing (before jitter).
const FIRST_RETRY: StdDuration = StdDuration::from_millis(50);
/// The longest pause between two subscription attempts.
const MAX_RETRY: StdDuration = StdDuration::from_secs(30);

/// The feed state a cache shares with its subscription task.
#[derive(Debug, Default)]
pub(crate) struct FeedControl {
    /// True while the cache has a feed but is not subscribed to it (not yet
    /// connected, after a gap, or after the subscription task ended): no
    /// entry is then served or stored, every lookup goes to the backend.
    /// False while subscribed, or when the cache has no feed at all (then it
    /// serves entries as a cache without a feed does).
    incoherent: AtomicBool,
    /// The generation of entries, one more after each flush: a handle whose
    /// link was cached in an earlier one may have missed events.
    generation: AtomicU64,
    /// True once a subscription task runs.
    subscribed: AtomicBool,
    stopped: AtomicBool,
    stop: Notify,
    /// Cuts a resubscription pause short: the backend answered a lookup.
    wake: Notify,
    events: AtomicU64,
    flushes: AtomicU64,
    reconnects: AtomicU64,
    gaps: AtomicU64,
}

impl FeedControl {
    /// True if entries may be served and stored.
    pub(crate) fn coherent(&self) -> bool {
        !self.incoherent.load(Ordering::Acquire)
    }

    /// The current generation of entries.
    pub(crate) fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Starts a new generation of entries: a flush, counted.
    pub(crate) fn next_generation(&self) {
        self.advance_generation();
        self.flushes.fetch_add(1, Ordering::Relaxed);
    }

    /// Starts a new generation of entries without counting a flush: the
    /// second step of one (see `Shared::flush`).
    pub(crate) fn advance_generation(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
    }

    fn set_coherent(&self, coherent: bool) {
        self.incoherent.store(!coherent, Ordering::Release);
    }

    /// A lookup bypassing the cache was answered by the backend: if the
    /// feed is down, the server is evidently reachable again, so retry
    /// subscribing now rather than at the end of the backoff pause.
    pub(crate) fn backend_answered(&self) {
        if !self.coherent() && self.subscribed.load(Ordering::Relaxed) {
            self.wake.notify_one();
        }
    }

    /// Ends the subscription task (the cache was dropped).
    pub(crate) fn stop(&self) {
        self.stopped.store(true, Ordering::Release);
        self.stop.notify_waiters();
    }

    async fn stopped(&self) {
        loop {
            // Created before the check, so a concurrent `stop` wakes it.
            let notified = self.stop.notified();
            if self.stopped.load(Ordering::Acquire) {
                return;
            }
            notified.await;
        }
    }

    pub(crate) fn snapshot(&self) -> FeedStats {
        FeedStats {
            subscribed: self.subscribed.load(Ordering::Relaxed) && self.coherent(),
            events_applied: self.events.load(Ordering::Relaxed),
            flushes: self.flushes.load(Ordering::Relaxed),
            gaps: self.gaps.load(Ordering::Relaxed),
            reconnects: self.reconnects.load(Ordering::Relaxed),
        }
    }
}

/// Counters of a cache's change-feed subscription, in
/// [`CacheStats::feed`](super::CacheStats::feed).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct FeedStats {
    /// True while the cache is subscribed to its backend's feed and serves
    /// from its entries; false without a feed, and during a gap.
    pub subscribed: bool,
    /// Feed events applied (each drops the entries it names).
    pub events_applied: u64,
    /// Times every entry was dropped: on a gap, on resubscribing, on a purge
    /// of everything (the first subscription, before which nothing was
    /// cached, is none).
    pub flushes: u64,
    /// Gaps seen: the subscription fell behind or lost its connection.
    pub gaps: u64,
    /// Successful resubscriptions after a gap.
    pub reconnects: u64,
}

/// Subscribes a freshly built cache to its backend's feed, if there is one
/// and a tokio runtime to run the subscription on. Without a runtime the
/// cache is not subscribed and behaves as a cache without a feed.
pub(crate) fn start(shared: &Arc<Shared>) {
    let Some(feed) = shared.backend.change_feed() else {
        return;
    };
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        tracing::debug!("cache built outside a tokio runtime: not subscribed to the change feed");
        return;
    };
    let control = Arc::clone(&shared.feed);
    // An in-process feed subscribes at once, so the cache serves from the
    // first lookup; a remote one connects in the task, and until then
    // lookups bypass the cache.
    let first = feed.subscribe().now_or_never().and_then(Result::ok);
    control.set_coherent(first.is_some());
    control.subscribed.store(true, Ordering::Relaxed);
    if first.is_some() {
        tracing::debug!("cache subscribed to the change feed");
    }
    // Made before the task is spawned: a task dropped before its first
    // poll (its runtime shut down first) drops it too.
    let unfollowed = Unfollowed(Arc::clone(&control));
    runtime.spawn(follow(
        unfollowed,
        Arc::downgrade(shared),
        control,
        feed,
        first,
    ));
}

/// Exponential backoff with full jitter over `[d/2, d]`.
struct Backoff {
    next: StdDuration,
}

impl Backoff {
    fn new() -> Self {
        Backoff { next: FIRST_RETRY }
    }

    fn reset(&mut self) {
        self.next = FIRST_RETRY;
    }

    fn pause(&mut self) -> StdDuration {
        let d = self.next;
        self.next = (d * 2).min(MAX_RETRY);
        let half = d.as_micros() as u64 / 2;
        StdDuration::from_micros(half + fastrand::u64(0..=half))
    }
}

/// Ends the cache's service from its entries if the subscription task is
/// dropped without being stopped (its runtime shut down): no event would
/// reach them any more, so the cache bypasses itself from then on.
struct Unfollowed(Arc<FeedControl>);

impl Drop for Unfollowed {
    fn drop(&mut self) {
        if !self.0.stopped.load(Ordering::Acquire) {
            self.0.set_coherent(false);
            self.0.subscribed.store(false, Ordering::Relaxed);
        }
    }
}

/// The subscription task: applies events, handles gaps, resubscribes.
/// `_unfollowed` goes with it, however it ends.
async fn follow(
    _unfollowed: Unfollowed,
    shared: Weak<Shared>,
    control: Arc<FeedControl>,
    feed: Arc<dyn ChangeFeed>,
    mut subscription: Option<crate::feed::Subscription>,
) {
    let mut backoff = Backoff::new();
    // A first subscription made here (a remote feed) is no reconnect.
    let mut had_one = subscription.is_some();
    // Whether an answered lookup may cut a pause short. Not after such a
    // retry failed: the feed's own connection is what fails (the server
    // refuses more connections, say), and every answered lookup would
    // otherwise retry it at once, tens of times a second.
    let mut wakes_honoured = true;
    loop {
        let mut sub = match subscription.take() {
            Some(sub) => sub,
            None => {
                let pause = backoff.pause();
                let started = tokio::time::Instant::now();
                let mut woken = false;
                tokio::select! {
                    () = control.stopped() => return,
                    () = tokio::time::sleep(pause) => {}
                    () = control.wake.notified(), if wakes_honoured => {
                        woken = true;
                        // Never faster than the first retry, even when woken.
                        tokio::time::sleep_until(started + FIRST_RETRY / 2).await;
                    }
                }
                let attempt = tokio::select! {
                    () = control.stopped() => return,
                    attempt = feed.subscribe() => attempt,
                };
                let Some(cache) = shared.upgrade() else {
                    return;
                };
                match attempt {
                    Ok(sub) => {
                        // Whatever was loaded while unsubscribed may be stale.
                        if had_one {
                            cache.flush();
                        } else {
                            cache.first_generation();
                        }
                        control.set_coherent(true);
                        if had_one {
                            control.reconnects.fetch_add(1, Ordering::Relaxed);
                        }
                        had_one = true;
                        backoff.reset();
                        wakes_honoured = true;
                        tracing::info!(
                            "cache resubscribed to the change feed; serving from cache again"
                        );
                        sub
                    }
                    Err(error) => {
                        tracing::warn!(%error, "cache cannot subscribe to the change feed; retrying");
                        wakes_honoured &= !woken;
                        continue;
                    }
                }
            }
        };
        loop {
            let message = tokio::select! {
                () = control.stopped() => return,
                message = sub.recv() => message,
            };
            let Some(cache) = shared.upgrade() else {
                return;
            };
            match message {
                Ok(event) => {
                    apply(&cache, &event).await;
                    control.events.fetch_add(1, Ordering::Relaxed);
                }
                Err(gap) => {
                    control.set_coherent(false);
                    cache.flush();
                    control.gaps.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(%gap, "cache change feed gap: flushed, bypassing the cache until resubscribed");
                    break;
                }
            }
        }
    }
}

/// One cached name an event or a purge drops.
enum Named<'a> {
    Namespace(&'a str),
    WorkSpec(&'a str, &'a str),
    WorkUnit(&'a str, &'a str, &'a str),
    Worker(&'a str, &'a str),
}

/// Drops the entry of `named`, if its parents are cached, and keeps
/// adoptions in flight from caching it (see `changes.rs`). Its object is
/// not marked deleted: the event may be older than the object now cached
/// under the name (see `crate::feed`). Handles kept on a dropped namespace,
/// spec or unit re-resolve their name before use all the same (see
/// `builder.rs` and [`Shared::drop_entry`]); a kept worker handle learns of
/// a delete from the backend's `Gone`.
async fn drop_named(shared: &Shared, caches: &Caches, named: Named<'_>) {
    match named {
        Named::Namespace(namespace) => {
            let path = Path::root(namespace);
            shared
                .drop_entry::<CachedNamespace>(caches, Some(ROOT_SCOPE), path)
                .await;
        }
        Named::WorkSpec(namespace, work_spec) => {
            let scope = caches.namespace_scope(namespace);
            let path = Path::root(namespace).child(work_spec);
            shared
                .drop_entry::<CachedWorkSpec>(caches, scope, path)
                .await;
        }
        Named::WorkUnit(namespace, work_spec, work_unit) => {
            let spec = caches.spec(namespace, work_spec);
            let scope = spec.map(|spec| spec.link.load().scope());
            let path = Path::root(namespace).child(work_spec).child(work_unit);
            shared
                .drop_entry::<CachedWorkUnit>(caches, scope, path)
                .await;
        }
        Named::Worker(namespace, worker) => {
            let scope = caches.namespace_scope(namespace);
            let path = Path::root(namespace).child(worker);
            shared.drop_entry::<CachedWorker>(caches, scope, path).await;
        }
    }
}

/// Applies one feed event (or a local purge) to exactly what it names.
pub(crate) async fn apply(shared: &Shared, event: &ChangeEvent) {
    let Some(caches) = shared.caches.load_full() else {
        return;
    };
    let caches = &*caches;
    match event {
        ChangeEvent::NamespaceDestroyed { namespace } => {
            drop_named(shared, caches, Named::Namespace(namespace)).await;
        }
        ChangeEvent::WorkSpecDestroyed {
            namespace,
            work_spec,
        } => {
            let named = Named::WorkSpec(namespace, work_spec);
            drop_named(shared, caches, named).await;
        }
        // Same object, new definition: the cached handle stays right
        // (the cache keeps no definition), and dropping it would orphan
        // every cached unit of the spec. Nothing to do.
        ChangeEvent::WorkSpecRedefined { .. } => {}
        ChangeEvent::WorkUnitsDeleted {
            namespace,
            work_spec,
            units,
        } => {
            let spec_path = Path::root(namespace).child(work_spec);
            let spec = caches.spec(namespace, work_spec);
            let link = spec.map(|spec| spec.link.load_full());
            match units {
                DeletedUnits::Names(names) => {
                    let scope = link.map(|link| link.scope());
                    for name in names {
                        let path = spec_path.child(name);
                        shared
                            .drop_entry::<CachedWorkUnit>(caches, scope, path)
                            .await;
                    }
                }
                // Which units is unknown: drop every unit of the spec.
                DeletedUnits::All => shared.drop_units_of(link.as_deref(), spec_path),
            }
        }
        ChangeEvent::WorkerChanged { namespace, worker } => {
            drop_named(shared, caches, Named::Worker(namespace, worker)).await;
        }
        ChangeEvent::Purge { scope, reason } => {
            tracing::info!(?scope, %reason, "cache purge");
            purge(shared, caches, scope).await;
        }
    }
}

async fn purge(shared: &Shared, caches: &Caches, scope: &PurgeScope) {
    let named = match scope {
        PurgeScope::Namespace { namespace } => Named::Namespace(namespace),
        PurgeScope::WorkSpec {
            namespace,
            work_spec,
        } => Named::WorkSpec(namespace, work_spec),
        PurgeScope::WorkUnit {
            namespace,
            work_spec,
            work_unit,
        } => Named::WorkUnit(namespace, work_spec, work_unit),
        PurgeScope::Worker { namespace, worker } => Named::Worker(namespace, worker),
        PurgeScope::Everything => return shared.flush(),
    };
    drop_named(shared, caches, named).await;
}

impl<B> Cache<B> {
    /// Drops, in this cache only, every entry `scope` covers. The next
    /// lookup of a dropped name asks the backend.
    pub async fn purge(&self, scope: &PurgeScope) {
        if let Some(caches) = self.shared.caches.load_full() {
            purge(&self.shared, &caches, scope).await;
        }
    }

    /// Drops every entry `scope` covers here, and asks every cache
    /// subscribed to the same backend (every job server on the same
    /// database) to do the same. `reason` is logged by each of them.
    ///
    /// This cache drops its entries before the call returns, and again
    /// when its own request comes back on the feed (its stats count both):
    /// entries loaded in between are dropped too.
    ///
    /// Fails with [`Error::NoChangeFeed`] if the backend has no change feed
    /// (this cache's entries are dropped all the same).
    pub async fn broadcast_purge(&self, scope: PurgeScope, reason: &str) -> Result<()>
    where
        B: Backend,
    {
        self.purge(&scope).await;
        match self.inner.change_feed() {
            Some(feed) => feed.broadcast_purge(scope, reason).await,
            None => Err(Error::NoChangeFeed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::WorkUnitRef;
    use crate::cache::changes::Fence;
    use crate::cache::work_spec::WorkSpecKind;
    use crate::cache::work_unit::WorkUnitKind;
    use crate::memory::MemoryBackend;
    use crate::{data, Backend, WorkUnitMeta};

    /// Adopts spec `s` of `n` and its unit `u` as an attempt's are, in a
    /// call started after `fence`; answers whether the unit was cached.
    async fn adopt_unit(cache: &Cache<MemoryBackend>, fence: Fence) -> Result<bool> {
        let ns = CachedNamespace::lookup(&cache.shared, "n").await?;
        let up_spec = cache.get_ref().namespace("n").await?.work_spec("s").await?;
        let up_unit: WorkUnitRef = up_spec.work_unit("u").await?;
        let spec = ns.adopt_here::<WorkSpecKind>(up_spec, fence).await?;
        let unit = spec.adopt_here::<WorkUnitKind>(up_unit, fence).await?;
        let cached = spec.cached::<WorkUnitKind>("u");
        Ok(cached.is_some_and(|hit| Arc::ptr_eq(&hit, &unit)))
    }

    /// An event about a spec this cache never looked up marks its units
    /// all the same: an adoption whose backend call it overtook, which
    /// caches the spec only then, does not cache the deleted unit.
    #[tokio::test]
    async fn an_event_whose_parent_is_not_cached_fences_adoptions() -> Result<()> {
        let memory = MemoryBackend::new();
        let spec = memory
            .namespace("n")
            .await?
            .set_work_spec(data!({"name": "s"}))
            .await?;
        spec.add_work_unit("u", data!({}), WorkUnitMeta::default())
            .await?;
        for units in [DeletedUnits::Names(vec!["u".into()]), DeletedUnits::All] {
            let cache = Cache::new(memory.clone());
            let fence = cache.shared.fence();
            let event = ChangeEvent::WorkUnitsDeleted {
                namespace: "n".into(),
                work_spec: "s".into(),
                units: units.clone(),
            };
            apply(&cache.shared, &event).await;
            assert!(!adopt_unit(&cache, fence).await?, "{units:?}");
            // A call started after the event caches what it adopts.
            let fresh = Cache::new(memory.clone());
            apply(&fresh.shared, &event).await;
            assert!(adopt_unit(&fresh, fresh.shared.fence()).await?, "{units:?}");
        }
        Ok(())
    }

    /// A bulk drop counts as an invalidation only where the spec's units
    /// were cached.
    #[tokio::test]
    async fn deletes_in_a_spec_never_cached_invalidate_nothing() -> Result<()> {
        let memory = MemoryBackend::new();
        let cache = Cache::new(memory.clone());
        let event = |spec: &str| ChangeEvent::WorkUnitsDeleted {
            namespace: "n".into(),
            work_spec: spec.into(),
            units: DeletedUnits::All,
        };
        apply(&cache.shared, &event("elsewhere")).await;
        assert_eq!(cache.stats().work_units.invalidations, 0);
        memory
            .namespace("n")
            .await?
            .set_work_spec(data!({"name": "s"}))
            .await?;
        cache.namespace("n").await?.work_spec("s").await?;
        apply(&cache.shared, &event("s")).await;
        assert_eq!(cache.stats().work_units.invalidations, 1);
        Ok(())
    }
}
