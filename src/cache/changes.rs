//! Fences for adoptions: which names changed while a backend call ran.
//!
//! A handle the backend returns from a list, an upsert or an attempt is
//! cached without a lookup (it is *adopted*). If its name was deleted
//! through the cache, or a change event dropped it, after the backend read
//! the object but before the adoption, caching that answer would make the
//! name answer as present until a call on it met `Gone`. So every drop
//! first *marks* the names it drops with a fresh sequence number: an
//! object by its path of names from its namespace down, a parent's whole
//! set of children by the parent's path. Marks go by names, not by the
//! scopes entries are cached under, so a drop whose parent is not cached
//! (an event about a spec this cache never looked up) marks all the same.
//! An adoption takes a [`Fence`] before its backend call: what was marked
//! after the fence is not cached. The adopted handle is then returned
//! uncached, and re-resolves its name on first use.
//!
//! A drop marks before it removes, and an adoption checks after it
//! inserts (a sequentially consistent fence on each side), so one of the
//! two always sees the other: either the adoption sees the mark and takes
//! its entry back out, or the drop's removal comes after the insert and
//! removes it.
//!
//! Marks live in a fixed table of stripes, each the latest sequence number
//! of the keys hashing to it: a key that shares a stripe with a changed
//! one only costs an adoption its caching, never a wrong answer (so the
//! hash needs no random seed: names chosen to collide cost lookups only).

use std::hash::{BuildHasher, Hash};
use std::sync::atomic::{fence, AtomicU64, Ordering};

use crate::error::ObjectKind;

/// Stripes of the mark table: 8 KiB, so unrelated deletes rarely keep an
/// adoption out of the cache.
const STRIPES: usize = 1024;

/// The names of an object from its namespace down: a namespace, a spec or
/// worker in it, a unit in a spec.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct Path<'a> {
    names: [&'a str; 3],
    len: usize,
}

impl<'a> Path<'a> {
    /// The path of namespace `name`.
    pub(crate) fn root(name: &'a str) -> Self {
        Path {
            names: [name, "", ""],
            len: 1,
        }
    }

    /// The path of `name` under this object. A unit is the deepest object:
    /// a child of one is its own path again (never asked for).
    pub(crate) fn child(self, name: &'a str) -> Self {
        let mut names = self.names;
        let Some(slot) = names.get_mut(self.len) else {
            return self;
        };
        *slot = name;
        Path {
            names,
            len: self.len + 1,
        }
    }

    /// The object's own name: the last of the path.
    pub(crate) fn name(&self) -> &'a str {
        self.names[self.len - 1]
    }

    /// The path of this object's parent; none for a namespace.
    pub(crate) fn parent(self) -> Option<Path<'a>> {
        self.ancestors().last()
    }

    /// The paths of this object's ancestors, from its namespace down.
    fn ancestors(self) -> impl Iterator<Item = Path<'a>> {
        (1..self.len).map(move |len| Path {
            names: match len {
                1 => [self.names[0], "", ""],
                _ => [self.names[0], self.names[1], ""],
            },
            len,
        })
    }
}

/// What a mark is about.
#[derive(Hash)]
pub(crate) enum Mark<'a> {
    /// One object of one kind.
    Object(ObjectKind, Path<'a>),
    /// Every object under one parent, at any depth.
    Under(Path<'a>),
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
    /// started before will not cache them. The caller removes entries only
    /// after this returns.
    pub(crate) fn mark(&self, mark: &Mark<'_>) {
        let seq = self.seq.fetch_add(1, Ordering::SeqCst) + 1;
        self.stripe(mark).fetch_max(seq, Ordering::SeqCst);
        // Orders the mark before the removal that follows, which moka
        // makes with weaker orderings of its own.
        fence(Ordering::SeqCst);
    }

    /// True if an object of `kind` at `path` may have been dropped after
    /// sequence number `seq`: itself, or everything under an ancestor.
    pub(crate) fn since(&self, kind: ObjectKind, path: Path<'_>, seq: u64) -> bool {
        // Orders an adoption's insert, just made, before these reads.
        fence(Ordering::SeqCst);
        let marked = |mark: &Mark<'_>| self.stripe(mark).load(Ordering::SeqCst) > seq;
        marked(&Mark::Object(kind, path)) || path.ancestors().any(|up| marked(&Mark::Under(up)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const UNIT: ObjectKind = ObjectKind::WorkUnit;

    fn unit<'a>(ns: &'a str, spec: &'a str, name: &'a str) -> Path<'a> {
        Path::root(ns).child(spec).child(name)
    }

    #[test]
    fn a_mark_fences_only_what_started_before_it() {
        let changes = Changes::default();
        let before = changes.seq();
        changes.mark(&Mark::Object(UNIT, unit("n", "s", "u")));
        let after = changes.seq();
        assert!(changes.since(UNIT, unit("n", "s", "u"), before));
        assert!(!changes.since(UNIT, unit("n", "s", "u"), after));
    }

    #[test]
    fn marks_tell_kinds_and_paths_apart() {
        let changes = Changes::default();
        let before = changes.seq();
        changes.mark(&Mark::Object(UNIT, unit("n", "s", "u")));
        // The hash is fixed, so which keys share a stripe is too: none of
        // these shares one with the mark.
        for (kind, path) in [
            (UNIT, unit("n", "s", "v")),
            (UNIT, unit("n", "t", "u")),
            (UNIT, unit("m", "s", "u")),
            (ObjectKind::WorkSpec, Path::root("n").child("s")),
            (ObjectKind::Worker, Path::root("n").child("u")),
        ] {
            assert!(!changes.since(kind, path, before), "{kind:?} {path:?}");
        }
    }

    #[test]
    fn a_parent_marked_fences_everything_under_it() {
        let changes = Changes::default();
        let before = changes.seq();
        changes.mark(&Mark::Under(Path::root("n").child("s")));
        assert!(changes.since(UNIT, unit("n", "s", "u"), before));
        assert!(!changes.since(UNIT, unit("n", "t", "u"), before));
        assert!(!changes.since(ObjectKind::WorkSpec, Path::root("n").child("s"), before));
        changes.mark(&Mark::Under(Path::root("m")));
        assert!(changes.since(UNIT, unit("m", "s", "u"), before));
        assert!(changes.since(ObjectKind::Worker, Path::root("m").child("w"), before));
        assert!(!changes.since(ObjectKind::Namespace, Path::root("m"), before));
    }

    #[test]
    fn paths_stop_at_three_names() {
        let deepest = unit("n", "s", "u");
        assert_eq!(deepest.child("x"), deepest);
        let ancestors: Vec<_> = deepest.ancestors().collect();
        assert_eq!(ancestors, [Path::root("n"), Path::root("n").child("s")]);
    }
}
