//! The swappable connection of a cached handle to its upstream object.
//!
//! A [`Link`] is one upstream handle, i.e. one *object* of the wrapped backend.
//! A cached handle holds its current link in a [`LinkCell`]: reading it is a
//! lock-free load, and a `Gone` recovery swaps in the link to the object that
//! now has the handle's name. Links are shared: a handle that recovers adopts
//! the link of the handle currently cached under its name, so both see the
//! same object and the same child entries.
//!
//! A link also records the cache generation in which it was last cached (see
//! `Shared::outdated`): a held handle whose link is from an earlier
//! generation — cached before a flush, so change events may have missed it —
//! re-resolves its name before it is used. So does a handle whose link of a
//! namespace or spec left the cache, or is under one that did: change
//! events reach children only through the parent entry now cached.

use std::ops::Deref;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use arc_swap::{ArcSwap, Guard};

/// What a child link asks of its parent: whether the object behind it (or
/// one of its ancestors) is known to be deleted, or left the cache.
pub(crate) trait Liveness: Send + Sync {
    /// True once the object or an ancestor is known to be deleted.
    fn is_dead(&self) -> bool;

    /// True if this link and every ancestor are cached in `generation`.
    fn is_current(&self, generation: u64) -> bool;
}

/// One upstream object, with what the cache knows about it.
pub(crate) struct Link<T: ?Sized> {
    /// The wrapped backend's handle.
    pub(crate) upstream: Arc<T>,
    /// Set when the cache learns the object was deleted (through the cache,
    /// or by a `Gone` answer); never cleared, since deletion is final.
    dead: AtomicBool,
    /// The scope of this object's child entries. Changing it drops every
    /// child entry at once (they become unreachable; see `sweep.rs`).
    scope: AtomicU64,
    /// The link of the parent object this one was resolved under.
    parent: Option<Arc<dyn Liveness>>,
    /// The cache generation in which this link was cached, or
    /// [`UNCACHED`].
    generation: AtomicU64,
}

/// The generation of a link never cached: outdated in every generation.
const UNCACHED: u64 = u64::MAX;

/// A process-wide source of scopes, so no two links ever share one.
fn fresh_scope() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

impl<T: ?Sized> Link<T> {
    /// A live link to `upstream`, resolved under `parent`.
    pub(crate) fn new(upstream: Arc<T>, parent: Option<Arc<dyn Liveness>>) -> Arc<Self> {
        Arc::new(Link {
            upstream,
            dead: AtomicBool::new(false),
            scope: AtomicU64::new(fresh_scope()),
            parent,
            generation: AtomicU64::new(UNCACHED),
        })
    }

    /// The current scope of child entries.
    pub(crate) fn scope(&self) -> u64 {
        self.scope.load(Ordering::Acquire)
    }

    /// Drops every child entry: answers the old scope, whose entries no
    /// lookup reaches any more (to be swept, see `sweep.rs`).
    pub(crate) fn rescope(&self) -> u64 {
        self.scope.swap(fresh_scope(), Ordering::AcqRel)
    }

    /// The cache generation in which this link was last cached.
    pub(crate) fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Records that this link is cached in `generation`.
    pub(crate) fn cached_in(&self, generation: u64) {
        self.generation.store(generation, Ordering::Release);
    }

    /// Records that this link is not cached (any more): handles on it, or
    /// on links under it, re-resolve their name before use.
    pub(crate) fn uncache(&self) {
        self.generation.store(UNCACHED, Ordering::Release);
    }

    /// Records that the object is deleted.
    pub(crate) fn mark_dead(&self) {
        self.dead.store(true, Ordering::Release);
    }

    /// True if this link was resolved under `parent`.
    pub(crate) fn is_under<P: ?Sized>(&self, parent: &Link<P>) -> bool {
        self.parent
            .as_ref()
            .is_some_and(|p| std::ptr::addr_eq(Arc::as_ptr(p), parent))
    }

    /// True once the object or an ancestor is known to be deleted.
    pub(crate) fn is_dead(&self) -> bool {
        self.dead.load(Ordering::Acquire) || self.parent.as_ref().is_some_and(|p| p.is_dead())
    }

    /// True if this link and every ancestor are cached in `generation`.
    pub(crate) fn is_current(&self, generation: u64) -> bool {
        self.generation() == generation
            && self
                .parent
                .as_ref()
                .map_or(true, |p| p.is_current(generation))
    }
}

impl<T: ?Sized + Send + Sync> Liveness for Link<T> {
    fn is_dead(&self) -> bool {
        Link::is_dead(self)
    }

    fn is_current(&self, generation: u64) -> bool {
        Link::is_current(self, generation)
    }
}

/// A link as the parent of child links.
pub(crate) fn parent<T: ?Sized + Send + Sync + 'static>(link: &Arc<Link<T>>) -> Arc<dyn Liveness> {
    Arc::clone(link) as Arc<dyn Liveness>
}

/// A handle's current link. Most handles keep the link they were made with
/// for life, and every child lookup reads it: until the first swap, a read
/// is a plain load of a flag, not the reference-counting protocol of an
/// [`ArcSwap`], which holds the link from the first swap on. The first link
/// stays referenced for the cell's life, so a handle that recovered keeps
/// its first upstream handle too.
pub(crate) struct LinkCell<T: ?Sized> {
    first: Arc<Link<T>>,
    /// Set, after `current` is, on the first swap; never cleared.
    swapped: AtomicBool,
    current: ArcSwap<Link<T>>,
}

/// A read of a [`LinkCell`].
pub(crate) enum LinkGuard<'a, T: ?Sized> {
    First(&'a Arc<Link<T>>),
    Swapped(Guard<Arc<Link<T>>>),
}

impl<T: ?Sized> Deref for LinkGuard<'_, T> {
    type Target = Arc<Link<T>>;

    fn deref(&self) -> &Arc<Link<T>> {
        match self {
            LinkGuard::First(link) => link,
            LinkGuard::Swapped(guard) => guard,
        }
    }
}

impl<T: ?Sized> LinkCell<T> {
    pub(crate) fn new(link: Arc<Link<T>>) -> Self {
        LinkCell {
            first: Arc::clone(&link),
            swapped: AtomicBool::new(false),
            current: ArcSwap::new(link),
        }
    }

    /// The current link, borrowed.
    pub(crate) fn load(&self) -> LinkGuard<'_, T> {
        if self.swapped.load(Ordering::Acquire) {
            LinkGuard::Swapped(self.current.load())
        } else {
            LinkGuard::First(&self.first)
        }
    }

    /// The link the cell was made with: the one its handle was cached
    /// with, if it was (only new handles are cached), whatever it has
    /// rebound to since.
    pub(crate) fn first(&self) -> &Arc<Link<T>> {
        &self.first
    }

    /// The current link.
    pub(crate) fn load_full(&self) -> Arc<Link<T>> {
        Arc::clone(&self.load())
    }

    /// Makes `link` the current link.
    pub(crate) fn store(&self, link: Arc<Link<T>>) {
        self.current.store(link);
        self.swapped.store(true, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn death_propagates_to_children_and_scopes_are_unique() {
        let parent = Link::new(Arc::new(1u8), None);
        let child = Link::new(Arc::new(2u8), Some(parent.clone() as Arc<dyn Liveness>));
        assert_ne!(parent.scope(), child.scope());
        let before = child.scope();
        assert_eq!(child.rescope(), before);
        assert_ne!(before, child.scope());
        assert!(!child.is_dead());
        parent.mark_dead();
        assert!(child.is_dead());
    }

    #[test]
    fn a_cell_reads_its_first_link_until_a_swap_and_the_latest_after() {
        let (first, second, third) = (
            Link::new(Arc::new(1u8), None),
            Link::new(Arc::new(2u8), None),
            Link::new(Arc::new(3u8), None),
        );
        let cell = LinkCell::new(Arc::clone(&first));
        assert!(Arc::ptr_eq(&cell.load(), &first));
        cell.store(Arc::clone(&second));
        assert!(Arc::ptr_eq(&cell.load(), &second));
        assert!(Arc::ptr_eq(&cell.load_full(), &second));
        cell.store(Arc::clone(&third));
        assert!(Arc::ptr_eq(&cell.load(), &third));
    }

    #[test]
    fn a_link_is_of_no_generation_until_cached() {
        let link = Link::new(Arc::new(1u8), None);
        assert_ne!(link.generation(), 0);
        link.cached_in(3);
        assert_eq!(link.generation(), 3);
        link.uncache();
        assert_ne!(link.generation(), 3);
    }

    #[test]
    fn a_link_is_current_only_while_its_ancestors_are() {
        let parent = Link::new(Arc::new(1u8), None);
        let child = Link::new(Arc::new(2u8), Some(parent.clone() as Arc<dyn Liveness>));
        parent.cached_in(3);
        child.cached_in(3);
        assert!(child.is_current(3));
        assert!(!child.is_current(4));
        parent.uncache();
        assert!(!child.is_current(3));
    }
}
