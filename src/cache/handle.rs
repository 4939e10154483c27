//! The cached handle: one generic type for namespaces, work specs, work
//! units and workers. What differs between them is a [`Kind`]; each kind's
//! file implements its Coordinate trait on `Cached<ItsKind>`.

use std::fmt;
use std::future::Future;
use std::sync::{Arc, Weak};

use compact_str::CompactString;
use futures::future::BoxFuture;

use super::changes::{Fence, Path};
use super::front::Front;
use super::key::{KeyRef, Keyed};
use super::link::{parent, Link, LinkCell};
use super::recover::{live_link, recover, run_with_budget, MAX_RECOVERIES};
use super::shared::{Caches, Fronts, Shared};
use super::stats::{Counters, KindCounters};
use super::store::Store;
use crate::error::{Error, ObjectKind, Result};

/// What the cache's machinery needs of a handle: its upstream trait object,
/// its link, and where its entries and counters live.
pub(crate) trait Handle: Keyed + Sized {
    /// The wrapped backend's handle type.
    type Up: ?Sized + Send + Sync + 'static;

    /// The kind of object this handle stands for: what its `Gone` names.
    const KIND: ObjectKind;

    /// Whether entries are cached under this kind's links (namespaces have
    /// specs and workers, specs have units).
    const HAS_CHILDREN: bool;

    /// The current link to the upstream object.
    fn link_cell(&self) -> &LinkCell<Self::Up>;

    /// The entries (and loads in flight) of this kind.
    fn store(caches: &Caches) -> &Store<Self>;

    /// The front of this kind, if its entries never expire.
    fn front(fronts: &Fronts) -> Option<&Arc<Front<Self>>>;

    /// The counters of this kind.
    fn counters(counters: &Counters) -> &KindCounters;

    /// Resolves this handle's name again, through its (cached) parent: the
    /// handle now cached under the name. Parents are never created; a
    /// namespace handle re-runs its own get-or-create lookup if `create`.
    fn resolve(&self, create: bool) -> impl Future<Output = Result<Arc<Self>>> + Send;
}

/// One kind of cached handle: what [`Cached`] needs to know of it.
pub(crate) trait Kind: Send + Sync + Sized + 'static {
    /// The wrapped backend's handle type.
    type Up: ?Sized + Send + Sync + 'static;
    /// The cached parent handle (`()` for a namespace).
    type Parent: Send + Sync + 'static;
    /// The kind of object, for `Gone`.
    const OBJECT: ObjectKind;
    /// [`Handle::HAS_CHILDREN`] for this kind.
    const HAS_CHILDREN: bool;
    /// The name `Debug` shows.
    const NAME: &'static str;

    /// The entries (and loads in flight) of this kind.
    fn store(caches: &Caches) -> &Store<Cached<Self>>;

    /// The front of this kind, if its entries never expire.
    fn front(fronts: &Fronts) -> Option<&Arc<Front<Cached<Self>>>>;

    /// The counters of this kind.
    fn counters(counters: &Counters) -> &KindCounters;

    /// The name of an upstream handle.
    fn up_name(up: &Self::Up) -> &str;

    /// The names of a handle's object from its namespace down.
    fn path(handle: &Cached<Self>) -> Path<'_>;

    /// [`Handle::resolve`] for this kind.
    fn resolve(
        handle: &Cached<Self>,
        create: bool,
    ) -> impl Future<Output = Result<Arc<Cached<Self>>>> + Send;
}

/// The items of a [`Kind`] impl that only name things: the upstream trait
/// object `dyn $object` (also the [`ObjectKind`] variant and, after
/// `Cached`, the handle's name), the field of [`Caches`] and [`Counters`]
/// that holds this kind's entries and counters, and the parent handle.
macro_rules! kind_tables {
    ($object:ident, $field:ident, $parent:ty, has_children: $children:literal) => {
        type Up = dyn $object;
        type Parent = $parent;
        const OBJECT: ObjectKind = ObjectKind::$object;
        const HAS_CHILDREN: bool = $children;
        const NAME: &'static str = concat!("Cached", stringify!($object));

        fn store(caches: &Caches) -> &Store<Cached<Self>> {
            &caches.$field
        }

        fn front(
            fronts: &super::shared::Fronts,
        ) -> Option<&std::sync::Arc<super::front::Front<Cached<Self>>>> {
            fronts.$field.as_ref()
        }

        fn counters(counters: &Counters) -> &KindCounters {
            &counters.$field
        }

        fn up_name(up: &dyn $object) -> &str {
            up.name()
        }
    };
}
pub(super) use kind_tables;

/// A handle of a [`Cache`](super::Cache): the object of kind `K` that now
/// has this name under its parent.
///
/// The handle is the key of its own entry ([`Keyed`]): it holds the scope
/// it is cached under and its name (the name of the upstream handle it was
/// made with, which every link it swaps to has too), so neither its moka
/// entry nor the front keeps a copy of the key. The name is stored inline
/// up to 24 bytes: a hit compares it without following a pointer.
pub(crate) struct Cached<K: Kind> {
    pub(super) shared: Arc<Shared>,
    me: Weak<Cached<K>>,
    pub(super) parent: K::Parent,
    /// The scope of the parent link this handle was made under: its key's.
    scope: u64,
    name: CompactString,
    pub(super) link: LinkCell<K::Up>,
}

impl<K: Kind> Cached<K> {
    /// A handle on `link`, to be cached under `scope` (its parent link's).
    pub(super) fn new(
        shared: &Arc<Shared>,
        parent: K::Parent,
        scope: u64,
        link: Arc<Link<K::Up>>,
    ) -> Arc<Self> {
        Arc::new_cyclic(|me| Cached {
            shared: Arc::clone(shared),
            me: me.clone(),
            parent,
            scope,
            name: CompactString::from(K::up_name(&link.upstream)),
            link: LinkCell::new(link),
        })
    }

    /// The name this handle follows.
    pub(super) fn name(&self) -> &str {
        &self.name
    }

    /// The names of this handle's object from its namespace down.
    pub(super) fn path(&self) -> Path<'_> {
        K::path(self)
    }

    /// This handle as an `Arc`, to hand to its children.
    pub(super) fn me(&self) -> Result<Arc<Self>> {
        self.me.upgrade().ok_or(Error::Gone { kind: K::OBJECT })
    }

    /// The link whose upstream object goes to the backend as an argument
    /// (a unit to `make_attempt`), after re-resolving if it is known to be
    /// deleted.
    pub(super) async fn link_for_call(&self) -> Result<Arc<Link<K::Up>>> {
        let mut budget = 1;
        live_link(&self.shared, self, &mut budget, false).await
    }

    /// Re-resolves after a `Gone` that may be about this object, answered
    /// to a call through `used`: if another call recovered it meanwhile,
    /// that recovery's link is taken as it is.
    pub(super) async fn refresh(&self, used: &Arc<Link<K::Up>>) -> Result<Arc<Link<K::Up>>> {
        recover(&self.shared, self, used, false).await
    }

    /// The scope of child entries, unless this object is known deleted or
    /// its link outdated (see [`Shared::serves_children`]).
    pub(super) fn live_scope(&self) -> Option<u64> {
        let link = self.link.load();
        self.shared.serves_children(&link).then(|| link.scope())
    }

    /// The hit path of a child lookup (see [`Shared::hit`]).
    pub(super) fn hit<C: Kind>(&self, name: &str) -> Option<Arc<Cached<C>>> {
        let scope = self.live_scope()?;
        self.shared.hit::<Cached<C>>(scope, name)
    }

    /// A live cached child, without calling the backend (see
    /// [`Shared::cached`]).
    pub(super) fn cached<C: Kind>(&self, name: &str) -> Option<Arc<Cached<C>>> {
        let scope = self.live_scope()?;
        self.shared.cached::<Cached<C>>(scope, name)
    }

    /// The miss path of a child lookup: `fetch` on this handle's upstream
    /// object, one load shared by concurrent misses, the answer cached;
    /// this handle recovers on `Gone` (`create` as in [`Handle::resolve`]).
    /// Callers box it, so their hit path's future stays small.
    pub(super) async fn load<C, F>(
        &self,
        name: &str,
        create: bool,
        fetch: F,
    ) -> Result<Arc<Cached<C>>>
    where
        C: Kind<Parent = Arc<Self>>,
        F: Fn(Arc<K::Up>, Arc<str>) -> BoxFuture<'static, Result<Arc<C::Up>>>
            + Copy
            + Send
            + 'static,
    {
        let me = self.me()?;
        run_with_budget(&self.shared, self, MAX_RECOVERIES, create, |link| {
            let me = Arc::clone(&me);
            async move {
                let scope = link.scope();
                self.shared
                    .get_or_load(scope, name, move |name| async move {
                        let up = fetch(Arc::clone(&link.upstream), name).await?;
                        let shared = Arc::clone(&me.shared);
                        let link = Link::new(up, Some(parent(&link)));
                        Ok(Cached::new(&shared, me, scope, link))
                    })
                    .await
            }
        })
        .await
    }

    /// The cached handle for a child handle the backend returned under
    /// `link` (no backend call) in a call started after `fence`.
    pub(super) async fn adopt<C>(
        &self,
        link: &Arc<Link<K::Up>>,
        up: Arc<C::Up>,
        fence: Fence,
    ) -> Result<Arc<Cached<C>>>
    where
        C: Kind<Parent = Arc<Self>>,
    {
        let me = self.me()?;
        let scope = link.scope();
        let serves = self.shared.serves_children(link);
        let path = self.path().child(C::up_name(&up));
        let handle = self
            .shared
            .adopt(serves.then_some(scope), path, fence, || {
                let child = Link::new(Arc::clone(&up), Some(parent(link)));
                Cached::new(&self.shared, me, scope, child)
            })
            .await;
        Ok(handle)
    }

    /// [`adopt`](Self::adopt) under the current link, for handles found in
    /// lists and attempts.
    pub(super) async fn adopt_here<C>(&self, up: Arc<C::Up>, fence: Fence) -> Result<Arc<Cached<C>>>
    where
        C: Kind<Parent = Arc<Self>>,
    {
        let link = self.link.load_full();
        self.adopt(&link, up, fence).await
    }
}

impl<K: Kind> Keyed for Cached<K> {
    fn key(&self) -> KeyRef<'_> {
        KeyRef {
            scope: self.scope,
            name: self.name(),
        }
    }
}

impl<K: Kind> Handle for Cached<K> {
    type Up = K::Up;
    const KIND: ObjectKind = K::OBJECT;
    const HAS_CHILDREN: bool = K::HAS_CHILDREN;

    fn link_cell(&self) -> &LinkCell<K::Up> {
        &self.link
    }

    fn store(caches: &Caches) -> &Store<Self> {
        K::store(caches)
    }

    fn front(fronts: &Fronts) -> Option<&Arc<Front<Self>>> {
        K::front(fronts)
    }

    fn counters(counters: &Counters) -> &KindCounters {
        K::counters(counters)
    }

    fn resolve(&self, create: bool) -> impl Future<Output = Result<Arc<Self>>> + Send {
        K::resolve(self, create)
    }
}

impl<K: Kind> fmt::Debug for Cached<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct(K::NAME)
            .field("name", &self.name())
            .finish_non_exhaustive()
    }
}
