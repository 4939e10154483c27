//! The cached work unit handle.

use std::any::Any;
use std::fmt;
use std::sync::{Arc, Weak};

use arc_swap::ArcSwap;
use async_trait::async_trait;

use super::attempt::wrap_attempt;
use super::link::Link;
use super::stats::{Counters, KindCounters};
use super::work_spec::CachedWorkSpec;
use super::{run, Caches, Handle, Shared, Store};
use crate::api::{AttemptRef, WorkSpecRef, WorkUnit};
use crate::error::{Error, ObjectKind, Result};
use crate::model::{DataMap, WorkUnitMeta, WorkUnitStatus};

/// A work unit of a [`Cache`](super::Cache): the unit that now has this name
/// in its work spec.
pub(crate) struct CachedWorkUnit {
    pub(super) shared: Arc<Shared>,
    me: Weak<CachedWorkUnit>,
    pub(super) work_spec: Arc<CachedWorkSpec>,
    name: Arc<str>,
    pub(super) link: ArcSwap<Link<dyn WorkUnit>>,
}

impl CachedWorkUnit {
    pub(super) fn new(
        work_spec: &Arc<CachedWorkSpec>,
        name: Arc<str>,
        link: Arc<Link<dyn WorkUnit>>,
    ) -> Arc<Self> {
        Arc::new_cyclic(|me| CachedWorkUnit {
            shared: Arc::clone(&work_spec.shared),
            me: me.clone(),
            work_spec: Arc::clone(work_spec),
            name,
            link: ArcSwap::new(link),
        })
    }

    pub(super) fn me(&self) -> Result<Arc<Self>> {
        self.me.upgrade().ok_or(Error::Gone { kind: Self::KIND })
    }

    /// The upstream unit to hand to the backend (`make_attempt`), after
    /// re-resolving if it is known to be deleted.
    pub(super) async fn upstream_for_call(&self) -> Result<Arc<dyn WorkUnit>> {
        let mut budget = 1;
        let link = super::live_link(&self.shared, self, &mut budget, false).await?;
        Ok(Arc::clone(&link.upstream))
    }

    /// Re-resolves after a `Gone` that may be about this unit.
    pub(super) async fn refresh(&self) -> Result<Arc<dyn WorkUnit>> {
        let link = self.link.load_full();
        let link = super::recover(&self.shared, self, &link, false).await?;
        Ok(Arc::clone(&link.upstream))
    }
}

impl Handle for CachedWorkUnit {
    const KIND: ObjectKind = ObjectKind::WorkUnit;
    type Up = dyn WorkUnit;

    fn link_cell(&self) -> &ArcSwap<Link<dyn WorkUnit>> {
        &self.link
    }

    fn store(caches: &Caches) -> &Store<Self> {
        &caches.work_units
    }

    fn counters(counters: &Counters) -> &KindCounters {
        &counters.work_units
    }

    async fn resolve(&self, _create: bool) -> Result<Arc<Self>> {
        self.work_spec.lookup_unit(&self.name).await
    }
}

impl fmt::Debug for CachedWorkUnit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CachedWorkUnit")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

#[deny(clippy::missing_trait_methods)]
#[async_trait]
impl WorkUnit for CachedWorkUnit {
    fn name(&self) -> &str {
        &self.name
    }

    fn work_spec(&self) -> WorkSpecRef {
        Arc::clone(&self.work_spec) as WorkSpecRef
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    async fn data(&self) -> Result<DataMap> {
        run(&self.shared, self, |link| async move {
            link.upstream.data().await
        })
        .await
    }

    async fn status(&self) -> Result<WorkUnitStatus> {
        run(&self.shared, self, |link| async move {
            link.upstream.status().await
        })
        .await
    }

    async fn meta(&self) -> Result<WorkUnitMeta> {
        run(&self.shared, self, |link| async move {
            link.upstream.meta().await
        })
        .await
    }

    async fn set_meta(&self, meta: WorkUnitMeta) -> Result<()> {
        run(&self.shared, self, |link| async move {
            link.upstream.set_meta(meta).await
        })
        .await
    }

    async fn priority(&self) -> Result<f64> {
        run(&self.shared, self, |link| async move {
            link.upstream.priority().await
        })
        .await
    }

    async fn set_priority(&self, priority: f64) -> Result<()> {
        run(&self.shared, self, |link| async move {
            link.upstream.set_priority(priority).await
        })
        .await
    }

    async fn active_attempt(&self) -> Result<Option<AttemptRef>> {
        let me = self.me()?;
        run(&self.shared, self, |link| {
            let me = Arc::clone(&me);
            async move {
                match link.upstream.active_attempt().await? {
                    Some(up) => Ok(Some(
                        wrap_attempt(up, &me.work_spec.namespace, Some(&me), None).await?,
                    )),
                    None => Ok(None),
                }
            }
        })
        .await
    }

    async fn clear_active_attempt(&self) -> Result<()> {
        run(&self.shared, self, |link| async move {
            link.upstream.clear_active_attempt().await
        })
        .await
    }

    async fn attempts(&self) -> Result<Vec<AttemptRef>> {
        let me = self.me()?;
        run(&self.shared, self, |link| {
            let me = Arc::clone(&me);
            async move {
                let all = link.upstream.attempts().await?;
                let mut out = Vec::with_capacity(all.len());
                for up in all {
                    out.push(wrap_attempt(up, &me.work_spec.namespace, Some(&me), None).await?);
                }
                Ok(out)
            }
        })
        .await
    }

    async fn num_attempts(&self) -> Result<u64> {
        run(&self.shared, self, |link| async move {
            link.upstream.num_attempts().await
        })
        .await
    }
}
