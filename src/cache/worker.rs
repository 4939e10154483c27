//! The cached worker handle.

use std::any::Any;
use std::fmt;
use std::sync::{Arc, Weak};

use arc_swap::ArcSwap;
use async_trait::async_trait;

use super::attempt::wrap_attempt;
use super::link::Link;
use super::namespace::CachedNamespace;
use super::stats::{Counters, KindCounters};
use super::work_unit::CachedWorkUnit;
use super::{live_link, run, run_with_budget, Caches, Handle, Shared, Store};
use crate::api::{AttemptRef, WorkUnitRef, Worker, WorkerRef};
use crate::error::{Error, Result};
use crate::model::{AttemptRequest, DataMap, Duration, Time};

/// A worker of a [`Cache`](super::Cache): the worker that now has this name
/// in its namespace.
pub(crate) struct CachedWorker {
    pub(super) shared: Arc<Shared>,
    me: Weak<CachedWorker>,
    pub(super) namespace: Arc<CachedNamespace>,
    name: Arc<str>,
    pub(super) link: ArcSwap<Link<dyn Worker>>,
}

impl CachedWorker {
    pub(super) fn new(
        namespace: &Arc<CachedNamespace>,
        name: Arc<str>,
        link: Arc<Link<dyn Worker>>,
    ) -> Arc<Self> {
        Arc::new_cyclic(|me| CachedWorker {
            shared: Arc::clone(&namespace.shared),
            me: me.clone(),
            namespace: Arc::clone(namespace),
            name,
            link: ArcSwap::new(link),
        })
    }

    fn me(&self) -> Result<Arc<Self>> {
        self.me.upgrade().ok_or(Error::Gone)
    }

    /// Wraps attempts the backend returned for this worker (or its children).
    async fn wrap_all(&self, all: Vec<AttemptRef>) -> Result<Vec<AttemptRef>> {
        let me = self.me()?;
        let mut out = Vec::with_capacity(all.len());
        for up in all {
            out.push(wrap_attempt(up, &self.namespace, None, Some(&me)).await?);
        }
        Ok(out)
    }

    /// `make_attempt` with a unit of this cache: the unit is unwrapped, and
    /// on `Gone` (which may be about the unit) re-resolved and retried once.
    async fn make_attempt_cached(
        &self,
        unit: &CachedWorkUnit,
        lifetime: Duration,
    ) -> Result<AttemptRef> {
        let me = self.me()?;
        let unit = unit.me()?;
        let mut budget = 1;
        let link = live_link(&self.shared, self, &mut budget, false).await?;
        let up_unit = unit.upstream_for_call().await?;
        let up = match link.upstream.make_attempt(&up_unit, lifetime).await {
            Err(Error::Gone) => {
                let up_unit = unit.refresh().await?;
                link.upstream.make_attempt(&up_unit, lifetime).await?
            }
            other => other?,
        };
        wrap_attempt(up, &self.namespace, Some(&unit), Some(&me)).await
    }
}

impl Handle for CachedWorker {
    type Up = dyn Worker;

    fn link_cell(&self) -> &ArcSwap<Link<dyn Worker>> {
        &self.link
    }

    fn store(caches: &Caches) -> &Store<Self> {
        &caches.workers
    }

    fn counters(counters: &Counters) -> &KindCounters {
        &counters.workers
    }

    async fn resolve(&self, _create: bool) -> Result<Arc<Self>> {
        self.namespace.existing_worker(&self.name).await
    }
}

impl fmt::Debug for CachedWorker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CachedWorker")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

#[deny(clippy::missing_trait_methods)]
#[async_trait]
impl Worker for CachedWorker {
    fn name(&self) -> &str {
        &self.name
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    async fn parent(&self) -> Result<Option<WorkerRef>> {
        run(&self.shared, self, |link| async move {
            match link.upstream.parent().await? {
                Some(up) => {
                    let parent: WorkerRef = self.namespace.adopt_worker_here(up).await?;
                    Ok(Some(parent))
                }
                None => Ok(None),
            }
        })
        .await
    }

    /// A parent from this cache is unwrapped to its current upstream worker;
    /// anything else goes to the backend as given (it answers `WrongBackend`
    /// for a foreign worker).
    async fn set_parent(&self, parent: Option<&WorkerRef>) -> Result<()> {
        let ours = parent
            .and_then(|p| p.as_any().downcast_ref::<CachedWorker>())
            .filter(|p| Arc::ptr_eq(&p.shared, &self.shared));
        let unwrapped = ours.map(|p| Arc::clone(&p.link.load().upstream));
        // A `Gone` here may be about the parent: one retry at most.
        run_with_budget(&self.shared, self, 1, false, |link| {
            let parent = match &unwrapped {
                Some(up) => Some(up),
                None => parent,
            };
            async move { link.upstream.set_parent(parent).await }
        })
        .await
    }

    async fn children(&self) -> Result<Vec<WorkerRef>> {
        run(&self.shared, self, |link| async move {
            let all = link.upstream.children().await?;
            let mut out = Vec::with_capacity(all.len());
            for up in all {
                let child: WorkerRef = self.namespace.adopt_worker_here(up).await?;
                out.push(child);
            }
            Ok(out)
        })
        .await
    }

    async fn active(&self) -> Result<bool> {
        run(&self.shared, self, |link| async move {
            link.upstream.active().await
        })
        .await
    }

    async fn deactivate(&self) -> Result<()> {
        run(&self.shared, self, |link| async move {
            link.upstream.deactivate().await
        })
        .await
    }

    async fn mode(&self) -> Result<String> {
        run(&self.shared, self, |link| async move {
            link.upstream.mode().await
        })
        .await
    }

    async fn data(&self) -> Result<DataMap> {
        run(&self.shared, self, |link| async move {
            link.upstream.data().await
        })
        .await
    }

    async fn expiration(&self) -> Result<Time> {
        run(&self.shared, self, |link| async move {
            link.upstream.expiration().await
        })
        .await
    }

    async fn last_update(&self) -> Result<Time> {
        run(&self.shared, self, |link| async move {
            link.upstream.last_update().await
        })
        .await
    }

    async fn update(&self, data: DataMap, now: Time, expiration: Time, mode: &str) -> Result<()> {
        // Checked before the clone below, which would recurse once per level.
        let data = crate::rules::limits::checked_data(data)?;
        run(&self.shared, self, |link| {
            let data = data.clone();
            async move { link.upstream.update(data, now, expiration, mode).await }
        })
        .await
    }

    async fn request_attempts(&self, request: &AttemptRequest) -> Result<Vec<AttemptRef>> {
        let all = run(&self.shared, self, |link| async move {
            link.upstream.request_attempts(request).await
        })
        .await?;
        self.wrap_all(all).await
    }

    /// A unit from this cache is unwrapped; on `Gone` it is re-resolved and
    /// the call retried once. Anything else goes to the backend as given.
    async fn make_attempt(&self, unit: &WorkUnitRef, lifetime: Duration) -> Result<AttemptRef> {
        let ours = unit
            .as_any()
            .downcast_ref::<CachedWorkUnit>()
            .filter(|u| Arc::ptr_eq(&u.shared, &self.shared));
        if let Some(ours) = ours {
            return self.make_attempt_cached(ours, lifetime).await;
        }
        let me = self.me()?;
        let mut budget = 1;
        let link = live_link(&self.shared, self, &mut budget, false).await?;
        let up = link.upstream.make_attempt(unit, lifetime).await?;
        wrap_attempt(up, &self.namespace, None, Some(&me)).await
    }

    async fn active_attempts(&self) -> Result<Vec<AttemptRef>> {
        let all = run(&self.shared, self, |link| async move {
            link.upstream.active_attempts().await
        })
        .await?;
        self.wrap_all(all).await
    }

    async fn all_attempts(&self) -> Result<Vec<AttemptRef>> {
        let all = run(&self.shared, self, |link| async move {
            link.upstream.all_attempts().await
        })
        .await?;
        self.wrap_all(all).await
    }

    async fn child_attempts(&self) -> Result<Vec<AttemptRef>> {
        let all = run(&self.shared, self, |link| async move {
            link.upstream.child_attempts().await
        })
        .await?;
        self.wrap_all(all).await
    }
}
