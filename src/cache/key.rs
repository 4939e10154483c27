//! Cache keys: a scope (the link the entry was resolved under) and a name.
//!
//! Lookups on a hit never allocate: [`KeyRef`] borrows the name and is
//! [`Equivalent`](moka::Equivalent) to the owned [`Key`], with the same hash.

use std::hash::{Hash, Hasher};
use std::sync::Arc;

/// The scope of namespace entries: the backend itself never changes.
pub(crate) const ROOT_SCOPE: u64 = 0;

/// An owned cache key: the parent link's current scope and the child's name.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Key {
    pub(crate) scope: u64,
    pub(crate) name: Arc<str>,
}

/// A borrowed cache key, for allocation-free hits.
#[derive(Clone, Copy)]
pub(crate) struct KeyRef<'a> {
    pub(crate) scope: u64,
    pub(crate) name: &'a str,
}

impl Key {
    #[cfg(test)]
    pub(crate) fn new(scope: u64, name: &str) -> Self {
        Key {
            scope,
            name: Arc::from(name),
        }
    }

    pub(crate) fn as_ref(&self) -> KeyRef<'_> {
        KeyRef {
            scope: self.scope,
            name: &self.name,
        }
    }
}

// `Key` and `KeyRef` must hash identically: both hash as (scope, name).
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

impl moka::Equivalent<Key> for KeyRef<'_> {
    fn equivalent(&self, key: &Key) -> bool {
        self.scope == key.scope && self.name == &*key.name
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

    #[test]
    fn borrowed_and_owned_keys_agree() {
        let owned = Key::new(7, "unit");
        let borrowed = KeyRef {
            scope: 7,
            name: "unit",
        };
        assert_eq!(hash_of(&owned), hash_of(borrowed));
        assert!(moka::Equivalent::equivalent(&borrowed, &owned));
        let other = KeyRef {
            scope: 8,
            name: "unit",
        };
        assert!(!moka::Equivalent::equivalent(&other, &owned));
    }
}
