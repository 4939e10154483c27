//! The cached namespace handle, and the namespace lookups of the cache
//! itself (the root of every name).

use std::any::Any;
use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use futures::FutureExt;

use super::changes::{Fence, Path};
use super::handle::{kind_tables, Cached, Kind};
use super::key::ROOT_SCOPE;
use super::link::Link;
use super::recover::{forward, run, run_with_budget};
use super::shared::{Caches, Shared};
use super::stats::{Counters, KindCounters};
use super::store::Store;
use super::work_spec::{CachedWorkSpec, WorkSpecKind};
use super::worker::{CachedWorker, WorkerKind};
use crate::api::{Namespace, NamespaceRef, WorkSpecRef, Worker, WorkerRef};
use crate::error::{Error, ObjectKind, Result};
use crate::model::{DataMap, Summary};
use crate::rules::{self, limits};

/// The namespace kind of [`Cached`] handle.
pub(crate) enum NamespaceKind {}

/// A namespace of a [`Cache`](super::Cache): the namespace that now has this
/// name.
pub(crate) type CachedNamespace = Cached<NamespaceKind>;

impl Kind for NamespaceKind {
    kind_tables!(Namespace, namespaces, (), has_children: true);

    fn path(handle: &CachedNamespace) -> Path<'_> {
        Path::root(handle.name())
    }

    async fn resolve(handle: &CachedNamespace, create: bool) -> Result<Arc<CachedNamespace>> {
        if create {
            CachedNamespace::lookup(&handle.shared, handle.name()).await
        } else {
            CachedNamespace::existing(&handle.shared, handle.name()).await
        }
    }
}

impl CachedNamespace {
    /// `Backend::namespace`: get-or-create, cached.
    pub(super) async fn lookup(shared: &Arc<Shared>, name: &str) -> Result<Arc<Self>> {
        let for_load = Arc::clone(shared);
        shared
            .get_or_load(ROOT_SCOPE, name, move |name| async move {
                let up = for_load.backend.namespace(&name).await?;
                Ok(Cached::new(&for_load, (), ROOT_SCOPE, Link::new(up, None)))
            })
            .await
    }

    /// The live namespace called `name`, never creating one: a cached
    /// handle's recovery must not bring a destroyed namespace back.
    pub(super) async fn existing(shared: &Arc<Shared>, name: &str) -> Result<Arc<Self>> {
        if let Some(hit) = shared.cached::<CachedNamespace>(ROOT_SCOPE, name) {
            return Ok(hit);
        }
        let shared_for_find = Arc::clone(shared);
        shared
            .find(ROOT_SCOPE, name, move |name| async move {
                let shared = shared_for_find;
                shared.counters::<CachedNamespace>().loads.inc();
                let fence = shared.fence();
                let up = shared
                    .backend
                    .namespaces()
                    .await?
                    .remove(&*name)
                    .ok_or(Error::Gone {
                        kind: ObjectKind::Namespace,
                    })?;
                Ok(Self::adopt_root(&shared, up, fence).await)
            })
            .await
    }

    /// The namespace a child of this handle re-resolves its name in: this
    /// handle while it serves children, else the live one now under its
    /// name (never creating one). A child's recovery never binds this
    /// handle anew (see `recover::rebind`), and goes through the handle the
    /// cache now holds, whose children stay cached for the next one.
    pub(super) async fn current(&self) -> Result<Arc<Self>> {
        if self.live_scope().is_some() {
            return self.me();
        }
        Self::existing(&self.shared, self.name()).await
    }

    /// The cached handle for `up`, a spec or worker the backend returned
    /// while answering for this namespace: adopted here, or in its own
    /// namespace (`home` answers its name) if that is another, as a
    /// worker's parent, children and attempts may be. So no namespace
    /// caches another's object under its name.
    pub(super) async fn adopt_home<C>(
        &self,
        up: Arc<C::Up>,
        home: fn(&C::Up) -> &str,
        fence: Fence,
    ) -> Result<Arc<Cached<C>>>
    where
        C: Kind<Parent = Arc<Self>>,
    {
        let home = home(&up);
        if home == self.name() {
            return self.adopt_here::<C>(up, fence).await;
        }
        // Found for an answer, not looked up: no hit is counted (a load,
        // if one is needed, counts its miss, as every load does).
        let namespace = match self.shared.live_entry::<Self>(ROOT_SCOPE, home) {
            Some(namespace) => namespace,
            None => Self::existing(&self.shared, home).await?,
        };
        namespace.adopt_here::<C>(up, fence).await
    }

    /// The cached handle for a namespace handle the backend returned in a
    /// call started after `fence`.
    pub(super) async fn adopt_root(
        shared: &Arc<Shared>,
        up: NamespaceRef,
        fence: Fence,
    ) -> Arc<Self> {
        shared
            .adopt(Some(ROOT_SCOPE), Path::root(up.name()), fence, || {
                Cached::new(shared, (), ROOT_SCOPE, Link::new(Arc::clone(&up), None))
            })
            .await
    }

    /// `work_spec(name)`, cached; `create` as in
    /// [`Handle::resolve`](super::handle::Handle::resolve) (false when a
    /// spec re-resolves itself).
    pub(super) async fn lookup_spec(
        &self,
        name: &str,
        create: bool,
    ) -> Result<Arc<CachedWorkSpec>> {
        if let Some(hit) = self.cached::<WorkSpecKind>(name) {
            return Ok(hit);
        }
        Box::pin(self.load_spec(name, create)).await
    }

    async fn load_spec(&self, name: &str, create: bool) -> Result<Arc<CachedWorkSpec>> {
        self.load::<WorkSpecKind, _>(name, create, |up, name| {
            async move { up.work_spec(&name).await }.boxed()
        })
        .await
    }

    /// The existing worker called `name`, never creating one (`Gone` if
    /// there is none): the recovery of a cached worker whose link, `lost`,
    /// lost its object.
    ///
    /// A worker is only ever deleted with its namespace, so one missing
    /// from the list of the namespace object it was made in means that
    /// object is gone (a durable backend lists nothing under a destroyed
    /// one rather than failing): the namespace handle is re-resolved and
    /// the worker looked for once more, in the namespace that now has the
    /// name. Missing from a newer namespace object, it is simply gone.
    pub(super) async fn existing_worker(
        &self,
        name: &str,
        lost: Arc<Link<dyn Worker>>,
    ) -> Result<Arc<CachedWorker>> {
        if let Some(hit) = self.cached::<WorkerKind>(name) {
            return Ok(hit);
        }
        let me = self.me()?;
        let scope = self.link.load().scope();
        self.shared
            .find(scope, name, move |name| async move {
                me.find_worker(&name, &lost).await
            })
            .await
    }

    /// [`existing_worker`](Self::existing_worker)'s backend calls. Every
    /// worker listed is adopted, not only the one looked for: handles held
    /// across a feed gap all re-resolve at once, and the first listing then
    /// serves the others.
    async fn find_worker(&self, name: &str, lost: &Link<dyn Worker>) -> Result<Arc<CachedWorker>> {
        let counters = self.shared.counters::<CachedWorker>();
        let mut retry = false;
        let (link, listed, fence) = run_with_budget(&self.shared, self, 1, false, |link| {
            // After this namespace's recovery: the name looked up again.
            if std::mem::replace(&mut retry, true) {
                counters.misses.inc();
            }
            counters.loads.inc();
            async move {
                let fence = self.shared.fence();
                let listed = link.upstream.workers().await?;
                if !listed.contains_key(name) && lost.is_under(link.as_ref()) {
                    return Err(Error::Gone {
                        kind: ObjectKind::Namespace,
                    });
                }
                Ok((Arc::clone(&link), listed, fence))
            }
        })
        .await
        .map_err(|e| match e {
            Error::Gone { .. } => Error::Gone {
                kind: ObjectKind::Worker,
            },
            other => other,
        })?;
        let mut found = None;
        for (listed_name, up) in listed {
            let worker = self.adopt(&link, up, fence).await?;
            if listed_name == name {
                found = Some(worker);
            }
        }
        found.ok_or(Error::Gone {
            kind: ObjectKind::Worker,
        })
    }
}

#[deny(clippy::missing_trait_methods)]
#[async_trait]
impl Namespace for CachedNamespace {
    fn name(&self) -> &str {
        Cached::name(self)
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    /// Destroys the object this handle is bound to. Never re-resolves: on a
    /// handle whose namespace is already gone this is the spec's no-op, so
    /// an old handle cannot destroy a newer namespace of the same name.
    async fn destroy(&self) -> Result<()> {
        let link = self.link.load_full();
        link.upstream.destroy().await?;
        link.mark_dead();
        // Whatever is cached under the name goes: another link to the
        // destroyed namespace (one a racing lookup cached, say) must not
        // stay, and a newer namespace's entry costs one lookup. Only this
        // link is known dead.
        self.shared
            .invalidate::<CachedNamespace>(ROOT_SCOPE, self.path(), None)
            .await;
        Ok(())
    }

    async fn set_work_spec(&self, definition: DataMap) -> Result<WorkSpecRef> {
        let definition = rules::checked_definition(definition)?;
        run(&self.shared, self, |link| {
            let definition = definition.clone();
            async move {
                let fence = self.shared.fence();
                let up = link.upstream.set_work_spec(definition).await?;
                let spec: WorkSpecRef = self.adopt::<WorkSpecKind>(&link, up, fence).await?;
                Ok(spec)
            }
        })
        .await
    }

    async fn work_spec(&self, name: &str) -> Result<WorkSpecRef> {
        if let Some(hit) = self.hit::<WorkSpecKind>(name) {
            return Ok(hit);
        }
        // Found nowhere, before a dead namespace is re-resolved.
        if !limits::fits_name(name) {
            return Err(Error::NoSuchWorkSpec { name: name.into() });
        }
        let spec = Box::pin(self.load_spec(name, true)).await?;
        Ok(spec)
    }

    async fn destroy_work_spec(&self, name: &str) -> Result<()> {
        if !limits::fits_name(name) {
            return Err(Error::NoSuchWorkSpec { name: name.into() });
        }
        run(&self.shared, self, |link| async move {
            let before = self
                .shared
                .link_before_delete::<CachedWorkSpec>(link.scope(), name);
            let result = link.upstream.destroy_work_spec(name).await;
            // A backend failure may have destroyed it all the same (its
            // answer lost on the way, say).
            if matches!(
                result,
                Ok(()) | Err(Error::NoSuchWorkSpec { .. } | Error::Backend(_))
            ) {
                // Gone (or maybe gone): drop the entry and mark the object
                // cached before dead, which also cuts off its cached units;
                // a spec still there is looked up again.
                self.shared
                    .invalidate::<CachedWorkSpec>(link.scope(), self.path().child(name), before)
                    .await;
            }
            result
        })
        .await
    }

    async fn work_spec_names(&self) -> Result<Vec<String>> {
        forward!(self, work_spec_names())
    }

    async fn worker(&self, name: &str) -> Result<WorkerRef> {
        if let Some(hit) = self.hit::<WorkerKind>(name) {
            return Ok(hit);
        }
        // Refused before a dead namespace is re-resolved (and re-created).
        limits::check_name(name)?;
        let load = self.load::<WorkerKind, _>(name, true, |up, name| {
            async move { up.worker(&name).await }.boxed()
        });
        let worker = Box::pin(load).await?;
        Ok(worker)
    }

    async fn workers(&self) -> Result<BTreeMap<String, WorkerRef>> {
        run(&self.shared, self, |link| async move {
            let fence = self.shared.fence();
            let all = link.upstream.workers().await?;
            let mut out = BTreeMap::new();
            for (name, up) in all {
                let worker: WorkerRef = self.adopt::<WorkerKind>(&link, up, fence).await?;
                out.insert(name, worker);
            }
            Ok(out)
        })
        .await
    }

    async fn summarize(&self) -> Result<Summary> {
        forward!(self, summarize())
    }
}
