//! The entries of one handle kind.
//!
//! moka is the authority: it holds every entry and decides capacity,
//! eviction, expiry and admission. Hits are answered by a *front* (see
//! `front.rs`), a lock-free map holding the same live entries: a hit reads
//! it without locks and writes no shared cache line of ours. Once the
//! store is half full, one lookup in [`SAMPLE`] per thread, hit or miss,
//! is also made on moka, so its policy (admission by frequency, LRU order)
//! sees an unbiased sample of the access stream and keeps about the hit
//! ratio it would have if it answered every lookup. Below half its
//! capacity moka keeps no frequencies and evicts nothing; the recency
//! order it keeps meanwhile is the order of inserts.
//!
//! The two agree by construction: an entry is put in the front before moka,
//! and taken out of moka before the front; a clear of both waits for inserts
//! between the two puts; moka's removal listener takes out
//! of the front whatever moka drops on its own (size eviction, admission
//! refusal), and a sampled hit that moka no longer has removes it from the
//! front too (under the key's lock, so an insert whose put has not
//! landed yet keeps it). So an entry moka dropped is never served once its
//! removal has returned. With a time-to-live or time-to-idle there is no front (moka
//! expires entries lazily, unseen by a front); hits then read moka itself.

use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;

use super::front::{Filed, Front};
use super::inflight::Loads;
use super::key::{Entry, KeyRef, Keyed};
use super::key_locks::KeyLocks;
use super::sweep::{Scopes, Sweep};

/// One lookup in this many, per thread, is made on moka too. At 8 the hit
/// ratio on a skewed workload fell 1.3 points below moka alone's; at 4 it
/// is within 0.6 (`report: hit ratio` of `benches/cache.rs`).
const SAMPLE: u32 = 4;

/// The entries of one handle kind, and the loads in flight for it.
pub(crate) struct Store<W> {
    entries: moka::sync::Cache<Entry<W>, Arc<W>>,
    /// The kind's front, and the epoch in which this store opened it.
    front: Option<(Arc<Front<W>>, u64)>,
    /// Hits reach moka (sampled) from this many entries on.
    sample_from: u64,
    pub(super) loads: Loads<W>,
    /// Held by each step that reads an entry and then writes it: inserts,
    /// conditional removals and sampled hits that moka missed.
    locks: KeyLocks,
    /// The cache's sweep, which counts this store's inserts.
    sweep: Arc<Sweep>,
    /// Entries a sweep found unreachable, not yet removed (see
    /// [`drop_doomed`](Self::drop_doomed)), and how many.
    doomed: Mutex<Vec<Arc<W>>>,
    doomed_len: AtomicUsize,
}

#[cfg(test)]
thread_local! {
    /// Run by this thread's next insert once its entry is in the front and
    /// its put into moka is still to come: where tests pause an insert.
    static BEFORE_PUT: Cell<Option<Box<dyn FnOnce()>>> = const { Cell::new(None) };
}

/// True once every [`SAMPLE`] calls on this thread.
pub(crate) fn sampled() -> bool {
    thread_local! {
        static HITS: Cell<u32> = const { Cell::new(0) };
    }
    HITS.with(|hits| {
        let n = hits.get().wrapping_add(1);
        hits.set(n);
        n % SAMPLE == 0
    })
}

impl<W: Keyed> Store<W> {
    /// A store over `entries`, with `front` if they never expire (opened
    /// for this store), counting its inserts into `sweep`.
    pub(crate) fn new(
        entries: moka::sync::Cache<Entry<W>, Arc<W>>,
        front: Option<Arc<Front<W>>>,
        sweep: Arc<Sweep>,
    ) -> Self {
        let sample_from = entries.policy().max_capacity().map_or(0, |c| c / 2);
        Store {
            entries,
            front: front.map(|front| {
                let epoch = front.open();
                (front, epoch)
            }),
            sample_from,
            loads: Loads::default(),
            locks: KeyLocks::default(),
            sweep,
            doomed: Mutex::default(),
            doomed_len: AtomicUsize::new(0),
        }
    }

    /// A sampled hit: `found` in the front, checked against moka, which
    /// counts the access. An entry moka no longer has leaves the front.
    pub(crate) fn sample(&self, key: KeyRef<'_>, found: Option<Arc<W>>) -> Option<Arc<W>> {
        match (found, self.entries.get(&key)) {
            (Some(hit), None) => {
                // Either moka dropped it and its listener has not run yet,
                // or an insert filed it in the front and its put has not
                // landed: told apart under the key's lock, which that
                // insert holds until it has.
                let _locked = self.locks.lock(key);
                let held = self.held(key);
                if held.is_none() {
                    if let Some((front, _)) = &self.front {
                        front.remove_handle(&hit);
                    }
                }
                held
            }
            (found, held) => found.or(held),
        }
    }

    /// The entry for `key`, without counting as an access when there is a
    /// front (the lookup already counted on a hit).
    pub(crate) fn peek(&self, key: KeyRef<'_>) -> Option<Arc<W>> {
        match &self.front {
            Some((front, _)) => front.get(key),
            None => self.entries.get(&key),
        }
    }

    /// The entry for `key`, for a change to its children. In a store whose
    /// entries expire, one that has expired but is still held is removed
    /// first: moka runs its listener, which outdates the handles kept on
    /// it, only at its next maintenance otherwise, and until then those
    /// handles serve children the change no longer reaches.
    pub(crate) fn live(&self, key: KeyRef<'_>) -> Option<Arc<W>> {
        let found = self.peek(key);
        if found.is_none() && self.front.is_none() {
            // A successor inserted meanwhile goes too: one more lookup.
            self.entries.remove(&key);
        }
        found
    }

    /// The entry for `key`, from moka itself (events, conditional removal).
    pub(crate) fn get(&self, key: KeyRef<'_>) -> Option<Arc<W>> {
        self.entries.get(&key)
    }

    /// The entry moka holds for `key`, counted as an access only if there
    /// is one: the miss a load follows was counted by its lookup already,
    /// and counting it twice skews moka's admission towards new names.
    fn held(&self, key: KeyRef<'_>) -> Option<Arc<W>> {
        if self.entries.contains_key(&key) {
            self.entries.get(&key)
        } else {
            None
        }
    }

    /// Files `handle` in the front, which samples hits once the store is
    /// half full; no clear starts while the answer is held.
    fn front_insert(&self, handle: &Arc<W>) -> Option<Filed<'_>> {
        let (front, epoch) = self.front.as_ref()?;
        let filed = front.insert(handle, *epoch);
        if self.entries.entry_count() >= self.sample_from {
            front.start_sampling();
        }
        Some(filed)
    }

    /// The entry under `handle`'s key, else `handle`, cached after
    /// `inserting` saw it. An entry is never replaced: whoever holds it
    /// keeps the handle the cache answers, whose children the cache finds.
    /// Under the key's lock, as [`remove_handle`](Self::remove_handle) is,
    /// so the two never interleave on one key.
    pub(crate) fn get_with(&self, handle: Arc<W>, inserting: impl FnOnce(&Arc<W>)) -> Arc<W> {
        let _locked = self.locks.lock(handle.key());
        if let Some(held) = self.held(handle.key()) {
            return held;
        }
        inserting(&handle);
        // Held from the front insert until the put has landed, so that a
        // clear comes wholly before or after the two (see `Front::clear_after`).
        let filed = self.front_insert(&handle);
        #[cfg(test)]
        if let Some(pause) = BEFORE_PUT.take() {
            pause();
        }
        self.entries
            .insert(Entry(Arc::clone(&handle)), Arc::clone(&handle));
        drop(filed);
        self.sweep.inserted();
        handle
    }

    /// Drops the entry for `key`, answering it. The front loses that
    /// handle only: a successor being inserted under the key (in the front
    /// before moka) stays.
    pub(crate) fn remove(&self, key: KeyRef<'_>) -> Option<Arc<W>> {
        let gone = self.entries.remove(&key);
        if let (Some(gone), Some((front, _))) = (&gone, &self.front) {
            front.remove_handle(gone);
        }
        gone
    }

    /// Drops the entry of `handle` if it is still cached, and not another
    /// handle under its key; answers whether it was.
    pub(crate) fn remove_handle(&self, handle: &Arc<W>) -> bool {
        let key = handle.key();
        let removed = {
            let _locked = self.locks.lock(key);
            // Only inserts put entries, under this lock: what is removed
            // here is what was found.
            self.held(key)
                .is_some_and(|held| Arc::ptr_eq(&held, handle))
                && self.entries.remove(&key).is_some()
        };
        if let (true, Some((front, _))) = (removed, &self.front) {
            front.remove_handle(handle);
        }
        removed
    }

    /// Queues every entry cached under one of `scopes` for removal by
    /// [`drop_doomed`](Self::drop_doomed).
    pub(crate) fn doom_under(&self, scopes: &Scopes) {
        let under = |handle: &Arc<W>| scopes.contains(&handle.key().scope);
        let found: Vec<Arc<W>> = match &self.front {
            Some((front, _)) => front.handles().into_iter().filter(under).collect(),
            None => self
                .entries
                .iter()
                .map(|(_, handle)| handle)
                .filter(under)
                .collect(),
        };
        let mut doomed = self.doomed.lock();
        doomed.extend(found);
        self.doomed_len.store(doomed.len(), Ordering::Relaxed);
    }

    /// Removes up to `max` of the queued entries; answers how many were
    /// still cached. Each removal is a moka write, a few microseconds.
    pub(crate) fn drop_doomed(&self, max: usize) -> u64 {
        if self.doomed_len.load(Ordering::Relaxed) == 0 {
            return 0;
        }
        let batch = {
            let mut doomed = self.doomed.lock();
            let keep = doomed.len().saturating_sub(max);
            let batch = doomed.split_off(keep);
            self.doomed_len.store(doomed.len(), Ordering::Relaxed);
            batch
        };
        // Each one only if still cached: a successor under its key stays.
        batch
            .iter()
            .filter(|handle| self.remove_handle(handle))
            .count() as u64
    }

    /// Drops every entry.
    pub(crate) fn clear(&self) {
        self.doomed.lock().clear();
        self.doomed_len.store(0, Ordering::Relaxed);
        match &self.front {
            Some((front, _)) => front.clear_after(|| self.entries.invalidate_all()),
            None => self.entries.invalidate_all(),
        }
    }

    /// moka's estimate of the number of entries.
    pub(crate) fn entry_count(&self) -> u64 {
        self.entries.entry_count()
    }

    /// Runs moka's pending maintenance now.
    pub(crate) fn run_pending_tasks(&self) {
        self.entries.run_pending_tasks();
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicBool;
    use std::sync::mpsc;
    use std::thread;
    use std::time::Duration;

    use futures::FutureExt;

    use super::*;
    use crate::cache::key::Key;

    struct Value;

    impl Keyed for Value {
        fn key(&self) -> KeyRef<'_> {
            KEY
        }
    }

    const KEY: KeyRef<'static> = KeyRef {
        scope: 1,
        name: "u",
    };

    fn store() -> Arc<Store<Value>> {
        Arc::new(Store::new(
            moka::sync::Cache::new(16),
            Some(Front::new()),
            Arc::default(),
        ))
    }

    fn served(store: &Store<Value>, handle: &Arc<Value>) -> bool {
        let front = store.peek(KEY).is_some_and(|h| Arc::ptr_eq(&h, handle));
        let moka = store.get(KEY).is_some_and(|h| Arc::ptr_eq(&h, handle));
        front && moka
    }

    /// A sampled hit that finds an entry in the front whose put into moka
    /// has not landed waits for it, and leaves the entry in both.
    #[test]
    fn a_sampled_hit_during_an_insert_keeps_the_entry() {
        let store = store();
        let handle = Arc::new(Value);
        let (filed, in_front) = mpsc::channel();
        let (release, released) = mpsc::channel::<()>();
        let inserter = thread::spawn({
            let (store, handle) = (Arc::clone(&store), Arc::clone(&handle));
            move || {
                store.get_with(handle, |handle| {
                    // Where the insert stands once it has filed the entry
                    // in the front, its put still to come.
                    if let Some((front, epoch)) = &store.front {
                        front.insert(handle, *epoch);
                    }
                    filed.send(()).unwrap();
                    released.recv().unwrap();
                })
            }
        });
        in_front.recv().unwrap();
        let sampler = thread::spawn({
            let store = Arc::clone(&store);
            move || store.sample(KEY, store.peek(KEY)).is_some()
        });
        // Time for a sampler that does not wait to finish first.
        thread::sleep(Duration::from_millis(100));
        release.send(()).unwrap();
        inserter.join().unwrap();
        assert!(sampler.join().unwrap(), "the sampled hit missed");
        assert!(served(&store, &handle));
    }

    /// A clear that meets an insert between its front insert and its put
    /// leaves moka and the front agreeing, so the name is served from the
    /// front again after one load at most.
    #[test]
    fn a_clear_during_an_insert_leaves_the_name_cached() {
        let store = store();
        let (filed, in_front) = mpsc::channel();
        let (release, released) = mpsc::channel::<()>();
        let inserter = thread::spawn({
            let store = Arc::clone(&store);
            move || {
                BEFORE_PUT.set(Some(Box::new(move || {
                    filed.send(()).unwrap();
                    released.recv().unwrap();
                })));
                store.get_with(Arc::new(Value), |_| {});
            }
        });
        in_front.recv().unwrap();
        let cleared = Arc::new(AtomicBool::new(false));
        let clearer = thread::spawn({
            let (store, cleared) = (Arc::clone(&store), Arc::clone(&cleared));
            move || {
                store.clear();
                cleared.store(true, Ordering::SeqCst);
            }
        });
        // The put comes once the clear has either finished or is waiting
        // for the insert.
        let (front, _) = store.front.as_ref().unwrap();
        while !cleared.load(Ordering::SeqCst) && !front.clear_waiting() {
            thread::yield_now();
        }
        release.send(()).unwrap();
        inserter.join().unwrap();
        clearer.join().unwrap();

        let loads = AtomicUsize::new(0);
        let lookup = || {
            let load = || {
                loads.fetch_add(1, Ordering::SeqCst);
                futures::future::ready(Ok(Arc::new(Value))).boxed()
            };
            futures::executor::block_on(store.get_or_load(
                Key::new(KEY.scope, KEY.name),
                load,
                Some(|_: &Arc<Value>| {}),
            ))
            .unwrap()
        };
        let first = lookup();
        let second = lookup();
        assert_eq!(loads.load(Ordering::SeqCst), 1, "the name stayed uncached");
        assert!(Arc::ptr_eq(&first, &second));
        assert!(served(&store, &second));
    }

    #[test]
    fn a_removal_takes_the_entry_out_of_both() {
        let store = store();
        let held = store.get_with(Arc::new(Value), |_| {});
        let gone = store.remove(KEY).expect("cached");
        assert!(Arc::ptr_eq(&gone, &held));
        assert!(store.peek(KEY).is_none() && store.get(KEY).is_none());
        assert!(store.remove(KEY).is_none());
    }
}
