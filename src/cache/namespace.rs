//! The cached namespace handle.

use std::any::Any;
use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Weak};

use arc_swap::ArcSwap;
use async_trait::async_trait;

use super::key::ROOT_SCOPE;
use super::link::{parent, Link};
use super::stats::{Counters, KindCounters};
use super::work_spec::CachedWorkSpec;
use super::worker::CachedWorker;
use super::{run, run_with_budget, Caches, Handle, Shared, Store, MAX_RECOVERIES};
use crate::api::{Namespace, WorkSpecRef, WorkerRef};
use crate::error::{Error, ObjectKind, Result};
use crate::model::{DataMap, Summary};

/// A namespace of a [`Cache`](super::Cache): the namespace that now has this
/// name.
pub(crate) struct CachedNamespace {
    pub(super) shared: Arc<Shared>,
    me: Weak<CachedNamespace>,
    name: Arc<str>,
    pub(super) link: ArcSwap<Link<dyn Namespace>>,
}

impl CachedNamespace {
    pub(super) fn new(
        shared: &Arc<Shared>,
        name: Arc<str>,
        link: Arc<Link<dyn Namespace>>,
    ) -> Arc<Self> {
        Arc::new_cyclic(|me| CachedNamespace {
            shared: Arc::clone(shared),
            me: me.clone(),
            name,
            link: ArcSwap::new(link),
        })
    }

    fn me(&self) -> Result<Arc<Self>> {
        self.me.upgrade().ok_or(Error::Gone { kind: Self::KIND })
    }

    /// The scope of child entries, unless this namespace is known deleted
    /// or its link outdated (see [`Shared::serves_children`]).
    fn live_scope(&self) -> Option<u64> {
        let link = self.link.load();
        self.shared.serves_children(&link).then(|| link.scope())
    }

    /// `work_spec(name)`, cached; `create` as in [`Handle::resolve`]
    /// (false when a spec re-resolves itself).
    pub(super) async fn lookup_spec(
        &self,
        name: &str,
        create: bool,
    ) -> Result<Arc<CachedWorkSpec>> {
        if let Some(hit) = self.cached_spec(name).await {
            return Ok(hit);
        }
        Box::pin(self.load_spec(name, create)).await
    }

    async fn cached_spec(&self, name: &str) -> Option<Arc<CachedWorkSpec>> {
        let scope = self.live_scope()?;
        self.shared.cached::<CachedWorkSpec>(scope, name)
    }

    /// The hit path of the `worker` and `work_spec` trait methods.
    async fn hit<W: Handle>(&self, name: &str) -> Option<Arc<W>> {
        let scope = self.live_scope()?;
        self.shared.hit::<W>(scope, name)
    }

    /// The miss path of [`lookup_spec`](Self::lookup_spec), boxed there so
    /// the hit path's future stays small.
    async fn load_spec(&self, name: &str, create: bool) -> Result<Arc<CachedWorkSpec>> {
        let me = self.me()?;
        run_with_budget(&self.shared, self, MAX_RECOVERIES, create, |link| {
            let me = Arc::clone(&me);
            async move {
                let scope = link.scope();
                self.shared
                    .get_or_load(scope, name, move |name| async move {
                        let up = link.upstream.work_spec(&name).await?;
                        Ok(CachedWorkSpec::new(
                            &me,
                            name,
                            Link::new(up, Some(parent(&link))),
                        ))
                    })
                    .await
            }
        })
        .await
    }

    /// `worker(name)` (get-or-create), cached.
    pub(super) async fn lookup_worker(&self, name: &str) -> Result<Arc<CachedWorker>> {
        let me = self.me()?;
        run(&self.shared, self, |link| {
            let me = Arc::clone(&me);
            async move {
                let scope = link.scope();
                self.shared
                    .get_or_load(scope, name, move |name| async move {
                        let up = link.upstream.worker(&name).await?;
                        Ok(CachedWorker::new(
                            &me,
                            name,
                            Link::new(up, Some(parent(&link))),
                        ))
                    })
                    .await
            }
        })
        .await
    }

    /// The existing worker called `name`, never creating one (`Gone` if
    /// there is none): a cached worker's recovery.
    pub(super) async fn existing_worker(&self, name: &str) -> Result<Arc<CachedWorker>> {
        if let Some(scope) = self.live_scope() {
            if let Some(hit) = self.shared.cached::<CachedWorker>(scope, name) {
                return Ok(hit);
            }
        }
        let (link, up) = run_with_budget(
            &self.shared,
            self,
            MAX_RECOVERIES,
            false,
            |link| async move {
                self.shared.counters::<CachedWorker>().loads.inc();
                let mut all = link.upstream.workers().await?;
                Ok((Arc::clone(&link), all.remove(name)))
            },
        )
        .await?;
        let up = up.ok_or(Error::Gone {
            kind: ObjectKind::Worker,
        })?;
        self.adopt_worker(&link, up).await
    }

    /// The cached handle for a spec handle the backend returned under `link`.
    pub(super) async fn adopt_spec(
        &self,
        link: &Arc<Link<dyn Namespace>>,
        up: WorkSpecRef,
    ) -> Result<Arc<CachedWorkSpec>> {
        let me = self.me()?;
        let name: Arc<str> = Arc::from(up.name());
        Ok(self
            .shared
            .adopt(
                self.shared.serves_children(link).then(|| link.scope()),
                name,
                |name| CachedWorkSpec::new(&me, name, Link::new(up, Some(parent(link)))),
            )
            .await)
    }

    /// The cached handle for a worker handle the backend returned under `link`.
    pub(super) async fn adopt_worker(
        &self,
        link: &Arc<Link<dyn Namespace>>,
        up: WorkerRef,
    ) -> Result<Arc<CachedWorker>> {
        let me = self.me()?;
        let name: Arc<str> = Arc::from(up.name());
        Ok(self
            .shared
            .adopt(
                self.shared.serves_children(link).then(|| link.scope()),
                name,
                |name| CachedWorker::new(&me, name, Link::new(up, Some(parent(link)))),
            )
            .await)
    }

    /// `adopt_worker` under the current link, for handles found in lists.
    pub(super) async fn adopt_worker_here(&self, up: WorkerRef) -> Result<Arc<CachedWorker>> {
        let link = self.link.load_full();
        self.adopt_worker(&link, up).await
    }

    /// `adopt_spec` under the current link, for an attempt's unit's spec.
    pub(super) async fn adopt_spec_here(&self, up: WorkSpecRef) -> Result<Arc<CachedWorkSpec>> {
        let link = self.link.load_full();
        self.adopt_spec(&link, up).await
    }
}

impl Handle for CachedNamespace {
    const KIND: ObjectKind = ObjectKind::Namespace;
    type Up = dyn Namespace;

    fn link_cell(&self) -> &ArcSwap<Link<dyn Namespace>> {
        &self.link
    }

    fn store(caches: &Caches) -> &Store<Self> {
        &caches.namespaces
    }

    fn counters(counters: &Counters) -> &KindCounters {
        &counters.namespaces
    }

    async fn resolve(&self, create: bool) -> Result<Arc<Self>> {
        if create {
            self.shared.lookup_namespace(&self.name).await
        } else {
            self.shared.existing_namespace(&self.name).await
        }
    }
}

impl fmt::Debug for CachedNamespace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CachedNamespace")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

#[deny(clippy::missing_trait_methods)]
#[async_trait]
impl Namespace for CachedNamespace {
    fn name(&self) -> &str {
        &self.name
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
        self.shared
            .invalidate_if::<CachedNamespace>(ROOT_SCOPE, &self.name, &link)
            .await;
        Ok(())
    }

    async fn set_work_spec(&self, definition: DataMap) -> Result<WorkSpecRef> {
        // Checked before the clone below, which would recurse once per level.
        let definition = crate::rules::limits::checked_data(definition)?;
        run(&self.shared, self, |link| {
            let definition = definition.clone();
            async move {
                let up = link.upstream.set_work_spec(definition).await?;
                let spec: WorkSpecRef = self.adopt_spec(&link, up).await?;
                Ok(spec)
            }
        })
        .await
    }

    async fn work_spec(&self, name: &str) -> Result<WorkSpecRef> {
        if let Some(hit) = self.hit::<CachedWorkSpec>(name).await {
            return Ok(hit);
        }
        let spec = Box::pin(self.load_spec(name, true)).await?;
        Ok(spec)
    }

    async fn destroy_work_spec(&self, name: &str) -> Result<()> {
        run(&self.shared, self, |link| async move {
            let result = link.upstream.destroy_work_spec(name).await;
            if matches!(result, Ok(()) | Err(Error::NoSuchWorkSpec { .. })) {
                // Gone either way: drop the entry and mark its object dead,
                // which also cuts off its cached units.
                self.shared
                    .invalidate::<CachedWorkSpec>(link.scope(), name, true)
                    .await;
            }
            result
        })
        .await
    }

    async fn work_spec_names(&self) -> Result<Vec<String>> {
        run(&self.shared, self, |link| async move {
            link.upstream.work_spec_names().await
        })
        .await
    }

    async fn worker(&self, name: &str) -> Result<WorkerRef> {
        if let Some(hit) = self.hit::<CachedWorker>(name).await {
            return Ok(hit);
        }
        let worker = Box::pin(self.lookup_worker(name)).await?;
        Ok(worker)
    }

    async fn workers(&self) -> Result<BTreeMap<String, WorkerRef>> {
        run(&self.shared, self, |link| async move {
            let all = link.upstream.workers().await?;
            let mut out = BTreeMap::new();
            for (name, up) in all {
                let worker: WorkerRef = self.adopt_worker(&link, up).await?;
                out.insert(name, worker);
            }
            Ok(out)
        })
        .await
    }

    async fn summarize(&self) -> Result<Summary> {
        run(&self.shared, self, |link| async move {
            link.upstream.summarize().await
        })
        .await
    }
}
