//! Cache keys: a scope (the link the entry was resolved under) and a name.
//!
//! A cached handle is its own key: it records the scope it was cached
//! under and answers its name, so an entry stores no copy of either.
//! [`Entry`] wraps a handle as the key of the moka cache (the front keys
//! its entries by a hash of the key, see `front.rs`).
//! Lookups on a hit never allocate: [`KeyRef`] borrows the name and is
//! [`Equivalent`](moka::Equivalent) to an [`Entry`], with the same hash.
//! A load in flight has no handle yet; it is keyed by an owned [`Key`].

use std::hash::{Hash, Hasher};
use std::sync::Arc;

/// The scope of namespace entries: the backend itself never changes.
pub(crate) const ROOT_SCOPE: u64 = 0;

/// What is cached: something that knows the key it is cached under.
pub(crate) trait Keyed: Send + Sync + 'static {
    /// The parent scope this was cached under, and its name.
    fn key(&self) -> KeyRef<'_>;
}

/// A cached handle as the key of its own entry.
pub(crate) struct Entry<W>(pub(crate) Arc<W>);

/// An owned key, for a load in flight: the parent link's scope and the
/// child's name.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Key {
    pub(crate) scope: u64,
    pub(crate) name: Arc<str>,
}

/// A borrowed cache key, for allocation-free hits.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) struct KeyRef<'a> {
    pub(crate) scope: u64,
    pub(crate) name: &'a str,
}

/// Marks the in-flight keys of loads that only find an existing object
/// (see [`Key::finding`]). Scopes come from a counter that never gets there.
const FINDING: u64 = 1 << 63;

impl Key {
    pub(crate) fn new(scope: u64, name: &str) -> Self {
        Key {
            scope,
            name: Arc::from(name),
        }
    }

    /// The in-flight key of a load that finds the existing object `name`
    /// under `scope`, never creating one (a recovery's): apart from the
    /// lookups' keys, since a lookup may create what such a load answers
    /// is gone. Never the key of an entry.
    pub(crate) fn finding(scope: u64, name: &str) -> Self {
        Key::new(scope | FINDING, name)
    }

    pub(crate) fn as_ref(&self) -> KeyRef<'_> {
        KeyRef {
            scope: self.scope,
            name: &self.name,
        }
    }
}

// `Key`, `KeyRef` and `Entry` must hash identically: all hash as (scope, name).
impl Hash for Key {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_ref().hash(state);
    }
}

impl Hash for KeyRef<'_> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.scope.hash(state);
        self.name.hash(state);
    }
}

impl<W: Keyed> Hash for Entry<W> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.0.key().hash(state);
    }
}

impl<W: Keyed> PartialEq for Entry<W> {
    fn eq(&self, other: &Self) -> bool {
        self.0.key() == other.0.key()
    }
}

impl<W: Keyed> Eq for Entry<W> {}

impl<W> Clone for Entry<W> {
    fn clone(&self) -> Self {
        Entry(Arc::clone(&self.0))
    }
}

impl<W: Keyed> moka::Equivalent<Entry<W>> for KeyRef<'_> {
    fn equivalent(&self, entry: &Entry<W>) -> bool {
        *self == entry.0.key()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::hash_map::DefaultHasher;

    fn hash_of(h: impl Hash) -> u64 {
        let mut s = DefaultHasher::new();
        h.hash(&mut s);
        s.finish()
    }

    struct Named(Key);

    impl Keyed for Named {
        fn key(&self) -> KeyRef<'_> {
            self.0.as_ref()
        }
    }

    #[test]
    fn borrowed_and_owned_keys_agree() {
        let owned = Key::new(7, "unit");
        let entry = Entry(Arc::new(Named(owned.clone())));
        let borrowed = KeyRef {
            scope: 7,
            name: "unit",
        };
        assert_eq!(hash_of(&owned), hash_of(borrowed));
        assert_eq!(hash_of(&entry), hash_of(borrowed));
        assert!(moka::Equivalent::equivalent(&borrowed, &entry));
        let other = KeyRef {
            scope: 8,
            name: "unit",
        };
        assert!(!moka::Equivalent::equivalent(&other, &entry));
    }
}
