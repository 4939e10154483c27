//! The lock-free map in front of moka that answers hits.
//!
//! A front lives as long as the cache's shared state, and a hit reads it
//! without loading the detachable entry stores (see [`Shared`]): it holds
//! *weak* references to the handles moka holds, so neither it nor the
//! entries its epoch-based reclamation retires keep a handle (and through
//! it the shared state) alive. An entry is keyed by a 64-bit hash of its
//! key (scope and name), and a hit checks the handle's own key: two keys
//! with one hash share an entry, and a collision is a miss, never a wrong
//! handle.
//!
//! Each store of entries opens its kind's front for itself, and a cache
//! that detaches its stores closes the fronts: each is emptied, and an
//! insert by a store that did not open the front now is refused (an insert
//! and an open or close exclude each other). So a closed front stays empty,
//! and a reopened one holds only what its new store holds. A store's clear
//! excludes inserts too, from its moka clear to its front clear (see
//! [`clear_after`](Front::clear_after)).
//!
//! [`Shared`]: super::shared::Shared

use std::hash::{BuildHasher, BuildHasherDefault, Hasher};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};

use parking_lot::{RwLock, RwLockReadGuard};

use super::key::{KeyRef, Keyed};

/// A front entry's key: a hash of the cache key (so an entry is as small
/// as a pair of pointers).
type Slot = u64;

/// Hashes a [`Slot`] as itself: it already is a hash.
#[derive(Default)]
struct SlotHasher(u64);

impl Hasher for SlotHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Only slots are hashed; any other input still spreads.
        for &byte in bytes {
            self.0 = (self.0 ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3);
        }
    }

    fn write_u64(&mut self, slot: u64) {
        self.0 = slot;
    }
}

/// Which store may add entries to a front.
#[derive(Default)]
struct Gate {
    /// The epoch of the store that opened the front last.
    epoch: u64,
    open: bool,
}

/// The live entries of one handle kind, weakly.
pub(crate) struct Front<W> {
    map: papaya::HashMap<Slot, Weak<W>, BuildHasherDefault<SlotHasher>>,
    /// Hashes cache keys into slots.
    keys: foldhash::fast::RandomState,
    /// The store whose entries may be added: taken shared by inserts,
    /// exclusively by [`open`](Self::open), [`close`](Self::close) and
    /// [`clear_after`](Self::clear_after).
    gate: RwLock<Gate>,
    /// Whether hits are sampled for moka (see `store.rs`): set once its
    /// store is half full, cleared when the front is emptied.
    sampling: AtomicBool,
}

impl<W: Keyed> Front<W> {
    /// An empty front, closed until a store opens it.
    pub(crate) fn new() -> Arc<Self> {
        Arc::new(Front {
            map: papaya::HashMap::builder()
                .hasher(BuildHasherDefault::default())
                .build(),
            keys: foldhash::fast::RandomState::default(),
            gate: RwLock::default(),
            sampling: AtomicBool::new(false),
        })
    }

    fn slot(&self, key: KeyRef<'_>) -> Slot {
        self.keys.hash_one(key)
    }

    /// The live handle cached under `key`.
    pub(crate) fn get(&self, key: KeyRef<'_>) -> Option<Arc<W>> {
        self.map
            .pin()
            .get(&self.slot(key))
            .and_then(Weak::upgrade)
            .filter(|handle| handle.key() == key)
    }

    /// Files `handle` under its key, if the store that opened the front in
    /// `epoch` may still add entries. No clear starts until the answer is
    /// dropped: an insert keeps it until its put into moka has landed.
    pub(crate) fn insert(&self, handle: &Arc<W>, epoch: u64) -> Filed<'_> {
        let gate = self.gate.read();
        if gate.open && gate.epoch == epoch {
            self.map
                .pin()
                .insert(self.slot(handle.key()), Arc::downgrade(handle));
        }
        Filed { _gate: gate }
    }

    /// Takes out `handle`'s entry, unless the front holds another handle
    /// under its key: for entries moka dropped.
    pub(crate) fn remove_handle(&self, handle: &Arc<W>) {
        let _ = self
            .map
            .pin()
            .remove_if(&self.slot(handle.key()), |_, held| {
                std::ptr::eq(held.as_ptr(), Arc::as_ptr(handle))
            });
    }

    /// Every live handle.
    pub(crate) fn handles(&self) -> Vec<Arc<W>> {
        self.map.pin().values().filter_map(Weak::upgrade).collect()
    }

    /// Runs `clear_store` (the store's moka clear), then drops every entry,
    /// with inserts held off across both. An insert files its entry here
    /// before its put into moka lands, and moka keeps a put that lands after
    /// its clear: a clear between the two would leave moka an entry the
    /// front never holds again, and the name uncached (a miss finds the
    /// entry in moka and files nothing).
    pub(crate) fn clear_after(&self, clear_store: impl FnOnce()) {
        let _gate = self.gate.write();
        clear_store();
        self.clear();
    }

    /// Drops every entry.
    fn clear(&self) {
        self.sampling.store(false, Ordering::Relaxed);
        self.map.pin().clear();
    }

    /// Empties the front and refuses entries until a store opens it.
    pub(crate) fn close(&self) {
        let mut gate = self.gate.write();
        gate.open = false;
        self.clear();
    }

    /// Empties the front and lets only the store opening it now add
    /// entries, with the epoch answered.
    pub(crate) fn open(&self) -> u64 {
        let mut gate = self.gate.write();
        self.clear();
        gate.epoch += 1;
        gate.open = true;
        gate.epoch
    }

    /// True while a clear holds the gate or waits for inserts to leave it
    /// (a waiting writer already holds the lock's writer bit): for tests
    /// that pause an insert.
    #[cfg(test)]
    pub(crate) fn clear_waiting(&self) -> bool {
        self.gate.is_locked_exclusive()
    }

    /// Whether hits are sampled for moka.
    pub(crate) fn sampling(&self) -> bool {
        self.sampling.load(Ordering::Relaxed)
    }

    /// Hits are sampled for moka from now on.
    pub(crate) fn start_sampling(&self) {
        if !self.sampling() {
            self.sampling.store(true, Ordering::Relaxed);
        }
    }
}

/// An insert's hold on its front's gate (see [`Front::insert`]).
pub(crate) struct Filed<'a> {
    _gate: RwLockReadGuard<'a, Gate>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use parking_lot::Mutex;

    /// A handle whose name can change, to put a handle under a slot its
    /// key no longer hashes to, as a hash collision would.
    struct Named(Mutex<&'static str>);

    impl Keyed for Named {
        fn key(&self) -> KeyRef<'_> {
            KeyRef {
                scope: 1,
                name: *self.0.lock(),
            }
        }
    }

    fn named(name: &'static str) -> Arc<Named> {
        Arc::new(Named(Mutex::new(name)))
    }

    fn key(name: &str) -> KeyRef<'_> {
        KeyRef { scope: 1, name }
    }

    fn opened() -> (Arc<Front<Named>>, u64) {
        let front = Front::new();
        let epoch = front.open();
        (front, epoch)
    }

    #[test]
    fn a_filed_handle_is_found_by_its_key_only() {
        let (front, epoch) = opened();
        let a = named("a");
        front.insert(&a, epoch);
        assert!(Arc::ptr_eq(&front.get(key("a")).expect("filed"), &a));
        assert!(front.get(key("b")).is_none());
        assert!(front
            .get(KeyRef {
                scope: 2,
                name: "a"
            })
            .is_none());
    }

    #[test]
    fn entries_are_weak() {
        let (front, epoch) = opened();
        let a = named("a");
        front.insert(&a, epoch);
        assert_eq!(Arc::strong_count(&a), 1);
        drop(a);
        assert!(front.get(key("a")).is_none());
        assert!(front.handles().is_empty());
    }

    #[test]
    fn a_handle_whose_key_differs_from_its_slots_is_a_miss_and_stays() {
        let (front, epoch) = opened();
        let a = named("a");
        front.insert(&a, epoch);
        *a.0.lock() = "z";
        // The slot of "a" holds a handle now keyed "z": not an answer for "a".
        assert!(front.get(key("a")).is_none());
        // Removing another handle named "a" leaves the live handle keyed
        // "z"; removing that handle under its own key takes it out.
        front.remove_handle(&named("a"));
        assert_eq!(front.handles().len(), 1);
        *a.0.lock() = "a";
        front.remove_handle(&a);
        assert!(front.handles().is_empty());
    }

    #[test]
    fn remove_handle_takes_out_that_handle_only() {
        let (front, epoch) = opened();
        let (a, b) = (named("a"), named("b"));
        front.insert(&a, epoch);
        front.insert(&b, epoch);
        front.remove_handle(&a);
        assert!(front.get(key("a")).is_none());
        assert!(front.get(key("b")).is_some());
        // A successor under a's key is not taken out with a.
        let successor = named("a");
        front.insert(&successor, epoch);
        front.remove_handle(&a);
        assert!(front.get(key("a")).is_some());
    }

    #[test]
    fn a_closed_front_is_empty_and_refuses_entries_until_reopened() {
        let (front, epoch) = opened();
        let (a, b) = (named("a"), named("b"));
        front.insert(&a, epoch);
        front.close();
        assert!(front.get(key("a")).is_none());
        front.insert(&a, epoch);
        assert!(front.get(key("a")).is_none());
        // Reopened for a new store: the old store's inserts stay refused.
        let next = front.open();
        assert_ne!(next, epoch);
        front.insert(&a, epoch);
        front.insert(&b, next);
        assert!(front.get(key("a")).is_none());
        assert!(front.get(key("b")).is_some());
    }

    #[test]
    fn opening_empties_and_clearing_stops_sampling() {
        let (front, epoch) = opened();
        let a = named("a");
        front.insert(&a, epoch);
        front.start_sampling();
        assert!(front.sampling());
        front.open();
        assert!(front.get(key("a")).is_none());
        assert!(!front.sampling());
    }
}
