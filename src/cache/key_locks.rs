//! Locks by key, for a store's read-then-write steps on one key (insert
//! where no entry is, remove only a given handle).
//!
//! A fixed set of mutexes, picked by the key's hash. moka's own per-key
//! compute would serve too, but it files a waiter per key in a table that
//! keeps memory for every key it has seen: about 75 bytes per cached
//! handle at a million. Two keys sharing a lock wait for each other for one
//! moka insert at most, never for a backend call: no lock is held across
//! an `.await`.

use std::hash::BuildHasher;

use parking_lot::{Mutex, MutexGuard};

use super::key::KeyRef;

/// Enough that two threads rarely share one, few enough to cost nothing.
const LOCKS: usize = 64;

pub(crate) struct KeyLocks {
    locks: Box<[Mutex<()>]>,
    hasher: foldhash::fast::RandomState,
}

impl Default for KeyLocks {
    fn default() -> Self {
        KeyLocks {
            locks: (0..LOCKS).map(|_| Mutex::new(())).collect(),
            hasher: foldhash::fast::RandomState::default(),
        }
    }
}

impl KeyLocks {
    /// Holds `key`'s lock until the guard is dropped.
    pub(crate) fn lock(&self, key: KeyRef<'_>) -> MutexGuard<'_, ()> {
        // The upper bits: foldhash mixes them best.
        let index = (self.hasher.hash_one(key) >> 32) as usize % self.locks.len();
        self.locks[index].lock()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    fn key(name: &str) -> KeyRef<'_> {
        KeyRef { scope: 1, name }
    }

    /// The lock `name` takes, checking it is the only one held.
    fn lock_of(locks: &KeyLocks, name: &str) -> usize {
        let _held = locks.lock(key(name));
        let held: Vec<usize> = (0..LOCKS).filter(|&i| locks.locks[i].is_locked()).collect();
        assert_eq!(held.len(), 1);
        held[0]
    }

    #[test]
    fn one_key_has_one_lock() {
        let locks = KeyLocks::default();
        assert_eq!(lock_of(&locks, "u"), lock_of(&locks, "u"));
        assert!(locks.locks.iter().all(|lock| !lock.is_locked()));
    }

    #[test]
    fn keys_spread_over_every_lock() {
        let locks = KeyLocks::default();
        let used: HashSet<usize> = (0..2_000)
            .map(|i| lock_of(&locks, &format!("unit-{i}")))
            .collect();
        assert_eq!(used.len(), LOCKS);
    }
}
