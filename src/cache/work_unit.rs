//! The cached work unit handle.

use std::any::Any;
use std::sync::Arc;

use async_trait::async_trait;

use super::attempt::wrap_attempt;
use super::changes::Path;
use super::handle::{kind_tables, Cached, Kind};
use super::recover::{forward, run};
use super::shared::Caches;
use super::stats::{Counters, KindCounters};
use super::store::Store;
use super::work_spec::CachedWorkSpec;
use crate::api::{AttemptRef, WorkSpecRef, WorkUnit};
use crate::error::{ObjectKind, Result};
use crate::model::{DataMap, WorkUnitMeta, WorkUnitSnapshot, WorkUnitStatus};
use crate::rules::limits;

/// The work unit kind of [`Cached`] handle.
pub(crate) enum WorkUnitKind {}

/// A work unit of a [`Cache`](super::Cache): the unit that now has this name
/// in its work spec.
pub(crate) type CachedWorkUnit = Cached<WorkUnitKind>;

impl Kind for WorkUnitKind {
    kind_tables!(WorkUnit, work_units, Arc<CachedWorkSpec>, has_children: false);

    fn path(handle: &CachedWorkUnit) -> Path<'_> {
        handle.parent.path().child(handle.name())
    }

    async fn resolve(handle: &CachedWorkUnit, _create: bool) -> Result<Arc<CachedWorkUnit>> {
        handle.parent.lookup_unit(handle.name()).await
    }
}

#[deny(clippy::missing_trait_methods)]
#[async_trait]
impl WorkUnit for CachedWorkUnit {
    fn name(&self) -> &str {
        Cached::name(self)
    }

    fn work_spec(&self) -> WorkSpecRef {
        Arc::clone(&self.parent) as WorkSpecRef
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    async fn data(&self) -> Result<DataMap> {
        forward!(self, data())
    }

    async fn status(&self) -> Result<WorkUnitStatus> {
        forward!(self, status())
    }

    async fn meta(&self) -> Result<WorkUnitMeta> {
        forward!(self, meta())
    }

    async fn snapshot(&self) -> Result<WorkUnitSnapshot> {
        forward!(self, snapshot())
    }

    async fn data_and_meta(&self) -> Result<(DataMap, WorkUnitMeta)> {
        forward!(self, data_and_meta())
    }

    async fn set_meta(&self, meta: WorkUnitMeta) -> Result<()> {
        let meta = limits::checked_unit_meta(meta)?;
        forward!(self, set_meta(meta))
    }

    async fn priority(&self) -> Result<f64> {
        forward!(self, priority())
    }

    async fn set_priority(&self, priority: f64) -> Result<()> {
        let priority = limits::checked_priority(priority)?;
        forward!(self, set_priority(priority))
    }

    async fn active_attempt(&self) -> Result<Option<AttemptRef>> {
        let me = self.me()?;
        run(&self.shared, self, |link| {
            let me = Arc::clone(&me);
            async move {
                let fence = me.shared.fence();
                match link.upstream.active_attempt().await? {
                    Some(up) => Ok(Some(
                        wrap_attempt(up, &me.parent.parent, Some(&me), None, fence).await?,
                    )),
                    None => Ok(None),
                }
            }
        })
        .await
    }

    async fn clear_active_attempt(&self) -> Result<()> {
        forward!(self, clear_active_attempt())
    }

    async fn attempts(&self) -> Result<Vec<AttemptRef>> {
        let me = self.me()?;
        run(&self.shared, self, |link| {
            let me = Arc::clone(&me);
            async move {
                let fence = me.shared.fence();
                let all = link.upstream.attempts().await?;
                let mut out = Vec::with_capacity(all.len());
                for up in all {
                    out.push(wrap_attempt(up, &me.parent.parent, Some(&me), None, fence).await?);
                }
                Ok(out)
            }
        })
        .await
    }

    async fn num_attempts(&self) -> Result<u64> {
        forward!(self, num_attempts())
    }
}
