//! Fences for adoptions: which names changed while a backend call ran.
//!
//! A handle the backend returns from a list, an upsert or an attempt is
//! cached without a lookup (it is *adopted*). If its name was deleted
//! through the cache, or a change event dropped it, after the backend read
//! the object but before the adoption, caching that answer would make the
//! name answer as present until a call on it met `Gone`. So every drop of
//! an entry first *marks* its key with a fresh sequence number (and a
//! dropped set of children marks the scope they are dropped to), and an
//! adoption takes a [`Fence`] before its backend call: what was marked
//! after the fence is not cached. The adopted handle is then returned
//! uncached, and re-resolves its name on first use.
//!
//! A drop marks before it removes, and an adoption checks after it
//! inserts, so one of the two always sees the other: either the adoption
//! sees the mark and takes its entry back out, or the drop's removal comes
//! after the insert and removes it.
//!
//! Marks live in a fixed table of stripes, each the latest sequence number
//! of the keys hashing to it: a key that shares a stripe with a changed
//! one only costs an adoption its caching, never a wrong answer (so the
//! hash needs no random seed: names chosen to collide cost lookups only).

use std::hash::{BuildHasher, Hash};
use std::sync::atomic::{AtomicU64, Ordering};

use super::key::KeyRef;
use crate::error::ObjectKind;

/// Stripes of the mark table: 8 KiB, so unrelated deletes rarely keep an
/// adoption out of the cache.
const STRIPES: usize = 1024;

/// What a mark is about.
#[derive(Hash)]
pub(crate) enum Mark<'a> {
    /// The entry of one name of one kind.
    Entry(ObjectKind, KeyRef<'a>),
    /// Every child entry of one scope: a parent's children are dropped by
    /// moving them to a fresh scope, which is marked before the move.
    Children(u64),
}

/// The point after which an adoption's answer may be stale: the change
/// sequence and the cache generation (a flush moves to the next one) when
/// its backend call started.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Fence {
    pub(super) seq: u64,
    pub(super) generation: u64,
}

/// The mark table of one cache.
pub(crate) struct Changes {
    seq: AtomicU64,
    stripes: Box<[AtomicU64]>,
    hasher: foldhash::fast::FixedState,
}

impl Default for Changes {
    fn default() -> Self {
        Changes {
            seq: AtomicU64::new(0),
            stripes: (0..STRIPES).map(|_| AtomicU64::new(0)).collect(),
            hasher: foldhash::fast::FixedState::default(),
        }
    }
}

impl Changes {
    fn stripe(&self, mark: &Mark<'_>) -> &AtomicU64 {
        // Lossless on 64-bit targets; the modulo picks a stripe either way.
        let i = self.hasher.hash_one(mark) as usize % self.stripes.len();
        &self.stripes[i]
    }

    /// The sequence number a [`Fence`] taken now starts after.
    pub(crate) fn seq(&self) -> u64 {
        self.seq.load(Ordering::SeqCst)
    }

    /// Records that `mark`'s entries change now: fenced adoptions that
    /// started before will not cache them.
    pub(crate) fn mark(&self, mark: &Mark<'_>) {
        let seq = self.seq.fetch_add(1, Ordering::SeqCst) + 1;
        self.stripe(mark).fetch_max(seq, Ordering::SeqCst);
    }

    /// True if `mark`'s entries may have changed after sequence number `seq`.
    pub(crate) fn since(&self, mark: &Mark<'_>, seq: u64) -> bool {
        self.stripe(mark).load(Ordering::SeqCst) > seq
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unit(scope: u64, name: &str) -> Mark<'_> {
        Mark::Entry(ObjectKind::WorkUnit, KeyRef { scope, name })
    }

    #[test]
    fn a_mark_fences_only_what_started_before_it() {
        let changes = Changes::default();
        let before = changes.seq();
        changes.mark(&unit(1, "u"));
        let after = changes.seq();
        assert!(changes.since(&unit(1, "u"), before));
        assert!(!changes.since(&unit(1, "u"), after));
    }

    #[test]
    fn marks_tell_kinds_scopes_and_names_apart() {
        let changes = Changes::default();
        let before = changes.seq();
        changes.mark(&unit(1, "u"));
        changes.mark(&Mark::Children(7));
        let spec = Mark::Entry(
            ObjectKind::WorkSpec,
            KeyRef {
                scope: 1,
                name: "u",
            },
        );
        // The hash is fixed, so which keys share a stripe is too: none of
        // these shares one with a mark.
        let others = [
            unit(2, "u"),
            unit(1, "v"),
            spec,
            Mark::Children(1),
            Mark::Children(8),
        ];
        for other in &others {
            assert!(!changes.since(other, before));
        }
        assert!(changes.since(&Mark::Children(7), before));
    }
}
