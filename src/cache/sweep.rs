//! Dropping the entries no lookup can reach any more.
//!
//! Child entries are keyed by their parent link's scope. Dropping all of a
//! parent's children at once — its namespace or spec destroyed, a query
//! delete, the parent's own entry evicted — gives the parent's link a fresh
//! scope ([`Link::rescope`](super::link::Link::rescope)) rather than finding
//! each child: the invalidation costs O(1) and holds at once, since no
//! lookup uses the old scope again. The children stay in moka, though:
//! they take capacity, and the access frequencies moka's admission keeps
//! for them would turn new entries away until they age.
//!
//! So every scope retired that way is recorded here, and once inserts and
//! retirements amounting to half of what the cache holds (at least
//! [`MIN_INSERTS`]) have happened since the last sweep, the caller whose
//! insert or query delete made it due walks the entries and finds those
//! under a retired scope (so a cache that mostly hits while units are
//! deleted keeps a bounded record of retired scopes too): specs and
//! workers first, removed at once (they are few), then units, including
//! those of the specs just removed. A walk visits every entry once (about
//! 8 ms for 100,000), so walks cost about two visits per insert or
//! retirement, amortized.
//! The units found are removed a few per insert by the inserts that follow
//! (each removal is a moka write of a few microseconds). The walk is
//! synchronous — a dropped future never leaves one half-done — and runs on
//! one thread at a time.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use parking_lot::Mutex;

/// Scopes, hashed cheaply (they are counters, not attacker-chosen).
pub(crate) type Scopes = HashSet<u64, foldhash::fast::RandomState>;

/// The fewest inserts between two sweeps, so that a small cache does not
/// sweep on every other insert.
pub(crate) const MIN_INSERTS: u64 = 1_024;

/// The retired scopes of one cache, and when to sweep them.
#[derive(Debug)]
pub(crate) struct Sweep {
    retired: Mutex<Scopes>,
    /// Whether `retired` may be non-empty: read without the lock.
    any_retired: AtomicBool,
    /// Inserts and retirements since the last sweep.
    inserts: AtomicU64,
    /// Inserts after which the next sweep is due.
    due_at: AtomicU64,
    running: AtomicBool,
}

impl Default for Sweep {
    fn default() -> Self {
        Sweep {
            retired: Mutex::default(),
            any_retired: AtomicBool::new(false),
            inserts: AtomicU64::new(0),
            due_at: AtomicU64::new(MIN_INSERTS),
            running: AtomicBool::new(false),
        }
    }
}

/// The right to run a sweep, held by one caller at a time.
pub(crate) struct Running<'a>(&'a Sweep);

impl Sweep {
    /// Records that no lookup reaches entries under `scope` any more; it
    /// counts toward the next sweep as an insert does.
    pub(crate) fn retire(&self, scope: u64) {
        self.retired.lock().insert(scope);
        self.any_retired.store(true, Ordering::Release);
        self.inserted();
    }

    /// Counts one insert.
    pub(crate) fn inserted(&self) {
        self.inserts.fetch_add(1, Ordering::Relaxed);
    }

    /// The right to sweep, if a sweep is due and no other caller runs one.
    pub(crate) fn start(&self) -> Option<Running<'_>> {
        if self.inserts.load(Ordering::Relaxed) < self.due_at.load(Ordering::Relaxed)
            || !self.any_retired.load(Ordering::Acquire)
        {
            return None;
        }
        self.running
            .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
            .ok()
            .map(|_| Running(self))
    }

    /// Forgets every retired scope: for when every entry is dropped anyway.
    pub(crate) fn clear(&self) {
        let mut retired = self.retired.lock();
        retired.clear();
        self.any_retired.store(false, Ordering::Release);
    }
}

impl Running<'_> {
    /// Takes the scopes retired so far, including those retired by the
    /// sweep's own removals.
    pub(crate) fn take(&self) -> Scopes {
        let mut retired = self.0.retired.lock();
        self.0.any_retired.store(false, Ordering::Release);
        std::mem::take(&mut *retired)
    }

    /// Ends the sweep; the next is due after half of `entries` more inserts.
    pub(crate) fn finish(self, entries: u64) {
        self.0.inserts.store(0, Ordering::Relaxed);
        self.0
            .due_at
            .store((entries / 2).max(MIN_INSERTS), Ordering::Relaxed);
    }
}

impl Drop for Running<'_> {
    fn drop(&mut self) {
        self.0.running.store(false, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn insert(sweep: &Sweep, n: u64) {
        (0..n).for_each(|_| sweep.inserted());
    }

    #[test]
    fn a_sweep_is_due_after_enough_inserts_with_a_retired_scope() {
        let sweep = Sweep::default();
        insert(&sweep, MIN_INSERTS);
        assert!(sweep.start().is_none(), "nothing retired, nothing to sweep");
        sweep.retire(7);
        let running = sweep.start().expect("due");
        assert!(sweep.start().is_none(), "one sweep at a time");
        assert_eq!(running.take().into_iter().collect::<Vec<_>>(), [7]);
        running.finish(10 * MIN_INSERTS);
        // The retirement counts as one insert.
        sweep.retire(8);
        insert(&sweep, 5 * MIN_INSERTS - 2);
        assert!(sweep.start().is_none(), "due after half the entries");
        sweep.inserted();
        assert!(sweep.start().is_some());
    }

    #[test]
    fn retirements_alone_make_a_sweep_due() {
        let sweep = Sweep::default();
        (1..MIN_INSERTS).for_each(|scope| sweep.retire(scope));
        assert!(sweep.start().is_none());
        sweep.retire(MIN_INSERTS);
        let running = sweep.start().expect("due");
        assert_eq!(running.take().len() as u64, MIN_INSERTS);
    }

    #[test]
    fn cleared_scopes_need_no_sweep() {
        let sweep = Sweep::default();
        sweep.retire(1);
        sweep.clear();
        insert(&sweep, MIN_INSERTS);
        assert!(sweep.start().is_none());
    }
}
