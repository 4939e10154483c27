//! The loads in flight of one handle kind.
//!
//! Concurrent misses of one name share one load. A load is owned by the
//! lookups awaiting it and nothing else: each waiter is counted in the
//! in-flight map, and when the last one goes away — finished or cancelled
//! (its future dropped, as a job server does when a client disconnects) —
//! the map entry is removed and the load future is dropped with whatever
//! it holds (a pooled connection, a statement in progress). No load is ever
//! parked, so the map is empty whenever no lookup is running, and nothing
//! needs a runtime to clean up after a cancelled lookup.
//!
//! A waiter that leaves before the answer wakes the others. A shared
//! future wakes the waiters registered when its own wakeup fires; one that
//! joins while another waiter is polling it registers too late for that
//! wakeup and counts on the poller to poll again, which a cancelled poller
//! never does. Woken, one of the others polls the load in its place.

use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::future::poll_fn;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::Waker;
use std::time::Duration as StdDuration;

use futures::future::{BoxFuture, FutureExt, Shared};
use parking_lot::Mutex;
use tokio::time::Instant;

use super::key::{Key, Keyed};
use super::store::Store;
use crate::error::Error;

/// How long after a load started a miss of the same name may still join
/// it. Far above a healthy round trip, and above the scheduling stalls of
/// an overloaded machine (at 250 ms, concurrent misses released together
/// on a 2-core machine at load 15 were occasionally split into several
/// loads), so concurrent misses share one backend call; short enough that
/// no lookup receives an answer read long before it started. A miss
/// arriving later starts a load of its own, which replaces the older one in
/// the map (the older one still answers its own waiters, but is not
/// cached). While a backend stalls, a name looked up without pause costs at
/// most one extra load per window.
pub(crate) const JOIN_WINDOW: StdDuration = StdDuration::from_secs(1);

/// The answer of a load, cloned for each of its waiters (an error's clones
/// share its backend source).
pub(crate) type Answer<W> = std::result::Result<Arc<W>, Error>;

/// A load's future, polled by every waiter.
type Load<W> = Shared<BoxFuture<'static, Answer<W>>>;

/// The wakers of a load's waiters, by waiter.
type Wakers = Arc<Mutex<HashMap<u64, Waker>>>;

/// A load in flight.
struct Pending<W> {
    load: Load<W>,
    wakers: Wakers,
    /// Lookups awaiting it; the entry goes when this drops to zero.
    waiters: usize,
    started: Instant,
}

/// The loads in flight of one kind, by key.
pub(crate) struct Loads<W>(Mutex<HashMap<Key, Pending<W>>>);

impl<W> Default for Loads<W> {
    fn default() -> Self {
        Loads(Mutex::new(HashMap::new()))
    }
}

impl<W: Keyed> Store<W> {
    /// Loads in flight: zero whenever no lookup of this kind is running.
    pub(crate) fn in_flight(&self) -> usize {
        self.loads.0.lock().len()
    }

    /// Forgets the load of `key`, if any: it still answers its waiters but
    /// is not cached (it may have read the name before a change).
    pub(crate) fn forget(&self, key: &Key) {
        let forgotten = self.loads.0.lock().remove(key);
        // Dropped outside the lock (its waiters still hold the load).
        drop(forgotten);
    }

    /// Forgets every load in flight (see [`forget`](Self::forget)).
    pub(crate) fn forget_all(&self) {
        let forgotten = std::mem::take(&mut *self.loads.0.lock());
        drop(forgotten);
    }

    /// The entry for `key`, else the answer of the load for it: joined if
    /// one started within [`JOIN_WINDOW`], else started by `start`. With
    /// `publish`, the first waiter to see a load finish caches a successful
    /// answer (after `publish`, under the in-flight lock) unless the load
    /// was forgotten or replaced, or an entry for `key` was made,
    /// meanwhile; without, the load is shared but its answer not cached.
    /// Cancel-safe: dropping the returned future leaves the load to its
    /// other waiters, or drops it if there are none.
    pub(crate) async fn get_or_load(
        &self,
        key: Key,
        start: impl FnOnce() -> BoxFuture<'static, Answer<W>>,
        publish: Option<impl FnOnce(&Arc<W>)>,
    ) -> Answer<W> {
        let replaced;
        let (mut waiter, load) = {
            let mut inflight = self.loads.0.lock();
            // A load that finished since the caller's miss published its
            // entry before leaving the map, so one of the two has it.
            // (Entries are not served while answers are not cached.)
            if let Some(hit) = publish.as_ref().and_then(|_| self.peek(key.as_ref())) {
                return Ok(hit);
            }
            let now = Instant::now();
            let (load, wakers) = match inflight
                .get_mut(&key)
                .filter(|p| now.saturating_duration_since(p.started) <= JOIN_WINDOW)
            {
                Some(pending) => {
                    pending.waiters += 1;
                    replaced = None;
                    (pending.load.clone(), Arc::clone(&pending.wakers))
                }
                None => {
                    let load = start().shared();
                    let wakers = Wakers::default();
                    let pending = Pending {
                        load: load.clone(),
                        wakers: Arc::clone(&wakers),
                        waiters: 1,
                        started: now,
                    };
                    replaced = inflight.insert(key.clone(), pending);
                    (load, wakers)
                }
            };
            static WAITERS: AtomicU64 = AtomicU64::new(0);
            let waiter = Waiter {
                store: self,
                key,
                load: Some(load.clone()),
                id: WAITERS.fetch_add(1, Ordering::Relaxed),
                wakers,
            };
            (waiter, load)
        };
        drop(replaced);
        let mut load = load;
        let answer = poll_fn(|cx| {
            waiter.watch(cx.waker());
            load.poll_unpin(cx)
        })
        .await;
        match (waiter.finish(&answer, publish), answer) {
            (Some(held), Ok(_)) => Ok(held),
            (_, answer) => answer,
        }
    }
}

/// One lookup's share of a load. Dropping it unfinished (the lookup was
/// cancelled) removes the lookup from the load's waiters.
struct Waiter<'a, W: Keyed> {
    store: &'a Store<W>,
    key: Key,
    /// Taken when the waiter leaves.
    load: Option<Load<W>>,
    /// This waiter's key among the load's wakers.
    id: u64,
    wakers: Wakers,
}

impl<W: Keyed> Waiter<'_, W> {
    /// Keeps `waker` as this waiter's, for a waiter that leaves to wake.
    fn watch(&self, waker: &Waker) {
        match self.wakers.lock().entry(self.id) {
            Entry::Occupied(mut kept) => {
                if !kept.get().will_wake(waker) {
                    kept.insert(waker.clone());
                }
            }
            Entry::Vacant(slot) => {
                slot.insert(waker.clone());
            }
        }
    }

    /// The load answered: the first waiter to see it caches a success (if
    /// it may `publish`) and takes the load out of the map (later waiters
    /// find it gone). Answers the handle the cache holds for a success it
    /// may publish: the answer, or the entry made for its name meanwhile
    /// (from a list or an upsert), which every lookup must then return.
    fn finish(
        &mut self,
        answer: &Answer<W>,
        publish: Option<impl FnOnce(&Arc<W>)>,
    ) -> Option<Arc<W>> {
        let load = self.load.take()?;
        let (Ok(handle), Some(publish)) = (answer, publish) else {
            self.leave(&load);
            return None;
        };
        let (held, done) = {
            let mut inflight = self.store.loads.0.lock();
            if !inflight
                .get(&self.key)
                .is_some_and(|p| p.load.ptr_eq(&load))
            {
                // Published by an earlier waiter, or forgotten or replaced:
                // whatever is cached for the name now is its handle.
                drop(inflight);
                return self.store.peek(self.key.as_ref());
            }
            // Not over an entry made meanwhile: the answer then stays
            // unpublished, and that entry is answered instead.
            let held = self.store.get_with(Arc::clone(handle), publish);
            (held, inflight.remove(&self.key))
        };
        drop(done);
        Some(held)
    }

    /// Leaves `load` without publishing: the first waiter to see it
    /// answered takes it out of the map.
    fn leave(&self, load: &Load<W>) {
        let done = {
            let mut inflight = self.store.loads.0.lock();
            match inflight.get(&self.key) {
                Some(p) if p.load.ptr_eq(load) => inflight.remove(&self.key),
                _ => None,
            }
        };
        drop(done);
    }
}

impl<W: Keyed> Drop for Waiter<'_, W> {
    fn drop(&mut self) {
        let Some(load) = self.load.take() else {
            return;
        };
        let orphaned = {
            let mut inflight = self.store.loads.0.lock();
            match inflight.get_mut(&self.key) {
                Some(pending) if pending.load.ptr_eq(&load) => {
                    pending.waiters -= 1;
                    if pending.waiters == 0 {
                        inflight.remove(&self.key)
                    } else {
                        None
                    }
                }
                _ => None,
            }
        };
        // The last waiter's copies of the load are dropped here, outside
        // the lock: dropping the load may release a connection.
        drop(orphaned);
        if load.peek().is_none() {
            // This waiter may have been the one to poll the load next.
            let others: Vec<Waker> = {
                let mut wakers = self.wakers.lock();
                wakers.remove(&self.id);
                wakers.values().cloned().collect()
            };
            others.into_iter().for_each(Waker::wake);
        }
        drop(load);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::key::KeyRef;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use tokio::time::{sleep, timeout};

    const SECOND: StdDuration = StdDuration::from_secs(1);

    /// A store and counters of the loads started and dropped.
    #[derive(Default)]
    struct Probe {
        started: AtomicUsize,
        dropped: Arc<AtomicUsize>,
        published: AtomicUsize,
    }

    /// Counts its drop: whether a load's future was dropped.
    struct OnDrop(Arc<AtomicUsize>);

    impl Drop for OnDrop {
        fn drop(&mut self) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    impl Probe {
        /// A load answering `value` after `after` (paused tokio time).
        fn load(&self, value: &str, after: StdDuration) -> BoxFuture<'static, Answer<Value>> {
            self.started.fetch_add(1, Ordering::SeqCst);
            let guard = OnDrop(Arc::clone(&self.dropped));
            let value = value.to_string();
            async move {
                let _guard = guard;
                sleep(after).await;
                Ok(Arc::new(Value(value)))
            }
            .boxed()
        }

        async fn lookup(
            &self,
            store: &Store<Value>,
            value: &str,
            after: StdDuration,
        ) -> Answer<Value> {
            self.lookup_caching(store, value, after, true).await
        }

        /// [`lookup`](Self::lookup) while answers are not cached.
        async fn lookup_uncached(
            &self,
            store: &Store<Value>,
            value: &str,
            after: StdDuration,
        ) -> Answer<Value> {
            self.lookup_caching(store, value, after, false).await
        }

        async fn lookup_caching(
            &self,
            store: &Store<Value>,
            value: &str,
            after: StdDuration,
            caching: bool,
        ) -> Answer<Value> {
            let publish = |_: &Arc<Value>| {
                self.published.fetch_add(1, Ordering::SeqCst);
            };
            store
                .get_or_load(
                    key(),
                    || self.load(value, after),
                    caching.then_some(publish),
                )
                .await
        }

        fn counts(&self) -> (usize, usize, usize) {
            (
                self.started.load(Ordering::SeqCst),
                self.dropped.load(Ordering::SeqCst),
                self.published.load(Ordering::SeqCst),
            )
        }
    }

    fn key() -> Key {
        Key::new(1, "u")
    }

    /// A loaded value, cached under [`key`].
    struct Value(String);

    impl Keyed for Value {
        fn key(&self) -> KeyRef<'_> {
            KeyRef {
                scope: 1,
                name: "u",
            }
        }
    }

    fn store() -> Store<Value> {
        Store::new(
            moka::sync::Cache::new(16),
            Some(super::super::front::Front::new()),
            std::sync::Arc::default(),
        )
    }

    fn cached(store: &Store<Value>) -> Option<String> {
        store.get(key().as_ref()).map(|v| v.0.clone())
    }

    fn value(answer: Answer<Value>) -> String {
        answer
            .map(|v| v.0.clone())
            .unwrap_or_else(|e| e.to_string())
    }

    #[tokio::test(start_paused = true)]
    async fn a_load_nobody_awaits_is_dropped_at_once() {
        let (store, probe) = (store(), Probe::default());
        let cancelled = timeout(SECOND, probe.lookup(&store, "v", 10 * SECOND)).await;
        assert!(cancelled.is_err());
        // Dropped with its last waiter, not parked until the next lookup.
        assert_eq!(probe.counts(), (1, 1, 0));
        assert_eq!(store.in_flight(), 0);
        // The next lookup starts afresh and caches its answer.
        assert_eq!(value(probe.lookup(&store, "w", SECOND).await), "w");
        assert_eq!(probe.counts(), (2, 2, 1));
        assert_eq!(cached(&store).as_deref(), Some("w"));
        assert_eq!(store.in_flight(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn loads_not_cached_are_still_shared() {
        let (store, probe) = (store(), Probe::default());
        let (first, second) = tokio::join!(
            probe.lookup_uncached(&store, "v", SECOND),
            probe.lookup_uncached(&store, "other", SECOND),
        );
        assert_eq!((value(first), value(second)), ("v".into(), "v".into()));
        assert_eq!(probe.counts(), (1, 1, 0));
        assert_eq!(cached(&store), None);
        assert_eq!(store.in_flight(), 0);
        // An entry is not served either while answers are not cached.
        assert_eq!(value(probe.lookup(&store, "w", SECOND).await), "w");
        let again = probe.lookup_uncached(&store, "x", SECOND).await;
        assert_eq!(value(again), "x");
    }

    #[tokio::test(start_paused = true)]
    async fn a_load_outlives_a_cancelled_waiter_while_another_waits() {
        let (store, probe) = (store(), Probe::default());
        let (first, second) = tokio::join!(
            timeout(SECOND, probe.lookup(&store, "v", 2 * SECOND)),
            probe.lookup(&store, "other", SECOND),
        );
        assert!(first.is_err());
        assert_eq!(value(second), "v");
        assert_eq!(probe.counts(), (1, 1, 1));
        assert_eq!(cached(&store).as_deref(), Some("v"));
        assert_eq!(store.in_flight(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn misses_join_a_load_only_within_the_window() {
        let (store, probe) = (store(), Probe::default());
        let after = |delay: StdDuration, value: &'static str| {
            let (store, probe) = (&store, &probe);
            async move {
                sleep(delay).await;
                probe.lookup(store, value, SECOND).await
            }
        };
        let (old, joined, fresh) = tokio::join!(
            probe.lookup(&store, "old", 3 * SECOND),
            after(JOIN_WINDOW - StdDuration::from_millis(1), "joined"),
            after(JOIN_WINDOW + StdDuration::from_millis(1), "fresh"),
        );
        // A miss just under a window after the first joined its load, one
        // later than a window started its own, whose answer replaces the
        // older load's in the cache: the older load's waiters, answered
        // last, return the handle cached by then, as any lookup would.
        assert_eq!(value(old), "fresh");
        assert_eq!(value(joined), "fresh");
        assert_eq!(value(fresh), "fresh");
        assert_eq!(probe.counts(), (2, 2, 1));
        assert_eq!(cached(&store).as_deref(), Some("fresh"));
        assert_eq!(store.in_flight(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn a_forgotten_load_answers_but_is_not_cached() {
        let (store, probe) = (store(), Probe::default());
        let forget = async {
            sleep(StdDuration::from_millis(10)).await;
            store.forget(&key());
        };
        let (answer, ()) = tokio::join!(probe.lookup(&store, "v", SECOND), forget);
        assert_eq!(value(answer), "v");
        assert_eq!(cached(&store), None);
        let (answer, ()) = tokio::join!(probe.lookup(&store, "w", SECOND), async {
            sleep(StdDuration::from_millis(10)).await;
            store.forget_all();
        });
        assert_eq!(value(answer), "w");
        assert_eq!(cached(&store), None);
        assert_eq!(probe.counts(), (2, 2, 0));
    }

    /// Counts its wakes.
    #[derive(Default)]
    struct Wakes(AtomicUsize);

    impl std::task::Wake for Wakes {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    /// A lookup that joins a load while another lookup is polling it, just
    /// after the load's wakeup fired, is woken when that lookup is
    /// cancelled before it polls again.
    #[test]
    fn a_cancelled_poller_wakes_the_lookups_left_waiting() {
        use std::future::Future;
        use std::task::{Context, Poll};
        let store: &'static Store<Value> = Box::leak(Box::new(store()));
        let publish = Some(|_: &Arc<Value>| {});
        let joining: BoxFuture<'static, Answer<Value>> = store
            .get_or_load(key(), || futures::future::pending().boxed(), publish)
            .boxed();
        let joining = Arc::new(Mutex::new(joining));
        let (first_wakes, joining_wakes) = (Arc::new(Wakes::default()), Arc::new(Wakes::default()));
        let joining_waker = Waker::from(Arc::clone(&joining_wakes));
        let load = {
            let (joining, joining_waker) = (Arc::clone(&joining), joining_waker.clone());
            let mut polls = 0;
            move || {
                futures::future::poll_fn(move |cx| {
                    polls += 1;
                    if polls > 1 {
                        return Poll::Ready(Ok(Arc::new(Value("v".to_string()))));
                    }
                    // The answer arrives during this poll...
                    cx.waker().wake_by_ref();
                    // ...and another lookup joins the load meanwhile.
                    let mut joined = Context::from_waker(&joining_waker);
                    assert!(joining.lock().as_mut().poll(&mut joined).is_pending());
                    Poll::Pending
                })
                .boxed()
            }
        };
        let mut first = Box::pin(store.get_or_load(key(), load, publish));
        let first_waker = Waker::from(Arc::clone(&first_wakes));
        assert!(first
            .as_mut()
            .poll(&mut Context::from_waker(&first_waker))
            .is_pending());
        assert_eq!(first_wakes.0.load(Ordering::SeqCst), 1);
        drop(first);
        assert_eq!(joining_wakes.0.load(Ordering::SeqCst), 1);
        let answered = joining
            .lock()
            .as_mut()
            .poll(&mut Context::from_waker(&joining_waker));
        assert!(matches!(answered, Poll::Ready(Ok(v)) if v.0 == "v"));
        assert_eq!(store.in_flight(), 0);
    }

    #[test]
    fn needs_no_runtime() {
        let store = store();
        let published = AtomicBool::new(false);
        let answer = futures::executor::block_on(store.get_or_load(
            key(),
            || futures::future::ready(Ok(Arc::new(Value("v".to_string())))).boxed(),
            Some(|_: &Arc<Value>| published.store(true, Ordering::SeqCst)),
        ));
        assert_eq!(value(answer), "v");
        assert!(published.load(Ordering::SeqCst));
        assert_eq!(cached(&store).as_deref(), Some("v"));
        assert_eq!(store.in_flight(), 0);
    }
}
