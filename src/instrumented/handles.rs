//! The instrumented handles: count, then forward to the wrapped handle.

use std::any::Any;
use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;

use super::{Op, Probe};
use crate::api::{
    Attempt, AttemptRef, Namespace, NamespaceRef, WorkSpec, WorkSpecRef, WorkUnit, WorkUnitRef,
    Worker, WorkerRef,
};
use crate::error::Result;
use crate::model::{
    AttemptRequest, AttemptStatus, DataMap, Duration, NewWorkUnit, Summary, Time, WorkSpecMeta,
    WorkUnitMeta, WorkUnitQuery, WorkUnitSnapshot, WorkUnitStatus,
};

macro_rules! handle {
    ($name:ident, $inner:ty) => {
        pub(crate) struct $name {
            inner: $inner,
            probe: Arc<Probe>,
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_tuple(stringify!($name)).field(&self.inner).finish()
            }
        }
    };
}

handle!(InstNamespace, NamespaceRef);
handle!(InstWorkSpec, WorkSpecRef);
handle!(InstWorkUnit, WorkUnitRef);
handle!(InstWorker, WorkerRef);
handle!(InstAttempt, AttemptRef);

impl InstNamespace {
    pub(crate) fn wrap(probe: &Arc<Probe>, inner: NamespaceRef) -> NamespaceRef {
        Arc::new(InstNamespace {
            inner,
            probe: Arc::clone(probe),
        })
    }
}

fn spec(probe: &Arc<Probe>, inner: WorkSpecRef) -> WorkSpecRef {
    Arc::new(InstWorkSpec {
        inner,
        probe: Arc::clone(probe),
    })
}

fn unit(probe: &Arc<Probe>, inner: WorkUnitRef) -> WorkUnitRef {
    Arc::new(InstWorkUnit {
        inner,
        probe: Arc::clone(probe),
    })
}

fn worker(probe: &Arc<Probe>, inner: WorkerRef) -> WorkerRef {
    Arc::new(InstWorker {
        inner,
        probe: Arc::clone(probe),
    })
}

fn attempt(probe: &Arc<Probe>, inner: AttemptRef) -> AttemptRef {
    Arc::new(InstAttempt {
        inner,
        probe: Arc::clone(probe),
    })
}

fn attempts(probe: &Arc<Probe>, all: Vec<AttemptRef>) -> Vec<AttemptRef> {
    all.into_iter().map(|a| attempt(probe, a)).collect()
}

#[deny(clippy::missing_trait_methods)]
#[async_trait]
impl Namespace for InstNamespace {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    async fn destroy(&self) -> Result<()> {
        self.probe.enter(Op::DestroyNamespace).await;
        self.inner.destroy().await
    }

    async fn set_work_spec(&self, definition: DataMap) -> Result<WorkSpecRef> {
        self.probe.enter(Op::SetWorkSpec).await;
        Ok(spec(
            &self.probe,
            self.inner.set_work_spec(definition).await?,
        ))
    }

    async fn work_spec(&self, name: &str) -> Result<WorkSpecRef> {
        self.probe.enter(Op::WorkSpec).await;
        Ok(spec(&self.probe, self.inner.work_spec(name).await?))
    }

    async fn destroy_work_spec(&self, name: &str) -> Result<()> {
        self.probe.enter(Op::DestroyWorkSpec).await;
        self.inner.destroy_work_spec(name).await
    }

    async fn work_spec_names(&self) -> Result<Vec<String>> {
        self.probe.enter(Op::WorkSpecNames).await;
        self.inner.work_spec_names().await
    }

    async fn worker(&self, name: &str) -> Result<WorkerRef> {
        self.probe.enter(Op::Worker).await;
        Ok(worker(&self.probe, self.inner.worker(name).await?))
    }

    async fn workers(&self) -> Result<BTreeMap<String, WorkerRef>> {
        self.probe.enter(Op::Workers).await;
        let all = self.inner.workers().await?;
        Ok(all
            .into_iter()
            .map(|(name, w)| (name, worker(&self.probe, w)))
            .collect())
    }

    async fn summarize(&self) -> Result<Summary> {
        self.probe.enter(Op::NamespaceSummarize).await;
        self.inner.summarize().await
    }
}

#[deny(clippy::missing_trait_methods)]
#[async_trait]
impl WorkSpec for InstWorkSpec {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn namespace_name(&self) -> &str {
        self.inner.namespace_name()
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    async fn data(&self) -> Result<DataMap> {
        self.probe.enter(Op::SpecData).await;
        self.inner.data().await
    }

    async fn set_data(&self, definition: DataMap) -> Result<()> {
        self.probe.enter(Op::SpecSetData).await;
        self.inner.set_data(definition).await
    }

    async fn meta(&self, with_counts: bool) -> Result<WorkSpecMeta> {
        self.probe.enter(Op::SpecMeta).await;
        self.inner.meta(with_counts).await
    }

    async fn set_meta(&self, meta: WorkSpecMeta) -> Result<()> {
        self.probe.enter(Op::SpecSetMeta).await;
        self.inner.set_meta(meta).await
    }

    async fn add_work_unit(
        &self,
        name: &str,
        data: DataMap,
        meta: WorkUnitMeta,
    ) -> Result<WorkUnitRef> {
        self.probe.enter(Op::AddWorkUnit).await;
        Ok(unit(
            &self.probe,
            self.inner.add_work_unit(name, data, meta).await?,
        ))
    }

    async fn add_work_units(&self, units: Vec<NewWorkUnit>) -> Result<Vec<WorkUnitRef>> {
        self.probe.enter(Op::AddWorkUnits).await;
        let added = self.inner.add_work_units(units).await?;
        Ok(added.into_iter().map(|u| unit(&self.probe, u)).collect())
    }

    async fn work_unit(&self, name: &str) -> Result<WorkUnitRef> {
        self.probe.enter(Op::WorkUnit).await;
        Ok(unit(&self.probe, self.inner.work_unit(name).await?))
    }

    async fn work_units(&self, query: &WorkUnitQuery) -> Result<BTreeMap<String, WorkUnitRef>> {
        self.probe.enter(Op::WorkUnits).await;
        let all = self.inner.work_units(query).await?;
        Ok(all
            .into_iter()
            .map(|(name, u)| (name, unit(&self.probe, u)))
            .collect())
    }

    async fn count_work_unit_status(&self) -> Result<BTreeMap<WorkUnitStatus, u64>> {
        self.probe.enter(Op::CountWorkUnitStatus).await;
        self.inner.count_work_unit_status().await
    }

    async fn set_work_unit_priorities(&self, query: &WorkUnitQuery, priority: f64) -> Result<()> {
        self.probe.enter(Op::SetWorkUnitPriorities).await;
        self.inner.set_work_unit_priorities(query, priority).await
    }

    async fn adjust_work_unit_priorities(&self, query: &WorkUnitQuery, delta: f64) -> Result<()> {
        self.probe.enter(Op::AdjustWorkUnitPriorities).await;
        self.inner.adjust_work_unit_priorities(query, delta).await
    }

    async fn delete_work_units(&self, query: &WorkUnitQuery) -> Result<u64> {
        self.probe.enter(Op::DeleteWorkUnits).await;
        self.inner.delete_work_units(query).await
    }

    async fn summarize(&self) -> Result<Summary> {
        self.probe.enter(Op::SpecSummarize).await;
        self.inner.summarize().await
    }
}

#[deny(clippy::missing_trait_methods)]
#[async_trait]
impl WorkUnit for InstWorkUnit {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn work_spec(&self) -> WorkSpecRef {
        spec(&self.probe, self.inner.work_spec())
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    async fn data(&self) -> Result<DataMap> {
        self.probe.enter(Op::UnitData).await;
        self.inner.data().await
    }

    async fn status(&self) -> Result<WorkUnitStatus> {
        self.probe.enter(Op::UnitStatus).await;
        self.inner.status().await
    }

    async fn meta(&self) -> Result<WorkUnitMeta> {
        self.probe.enter(Op::UnitMeta).await;
        self.inner.meta().await
    }

    async fn snapshot(&self) -> Result<WorkUnitSnapshot> {
        self.probe.enter(Op::UnitSnapshot).await;
        self.inner.snapshot().await
    }

    async fn set_meta(&self, meta: WorkUnitMeta) -> Result<()> {
        self.probe.enter(Op::UnitSetMeta).await;
        self.inner.set_meta(meta).await
    }

    async fn priority(&self) -> Result<f64> {
        self.probe.enter(Op::UnitPriority).await;
        self.inner.priority().await
    }

    async fn set_priority(&self, priority: f64) -> Result<()> {
        self.probe.enter(Op::UnitSetPriority).await;
        self.inner.set_priority(priority).await
    }

    async fn active_attempt(&self) -> Result<Option<AttemptRef>> {
        self.probe.enter(Op::ActiveAttempt).await;
        Ok(self
            .inner
            .active_attempt()
            .await?
            .map(|a| attempt(&self.probe, a)))
    }

    async fn clear_active_attempt(&self) -> Result<()> {
        self.probe.enter(Op::ClearActiveAttempt).await;
        self.inner.clear_active_attempt().await
    }

    async fn attempts(&self) -> Result<Vec<AttemptRef>> {
        self.probe.enter(Op::UnitAttempts).await;
        Ok(attempts(&self.probe, self.inner.attempts().await?))
    }

    async fn num_attempts(&self) -> Result<u64> {
        self.probe.enter(Op::NumAttempts).await;
        self.inner.num_attempts().await
    }
}

#[deny(clippy::missing_trait_methods)]
#[async_trait]
impl Worker for InstWorker {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn namespace_name(&self) -> &str {
        self.inner.namespace_name()
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    async fn parent(&self) -> Result<Option<WorkerRef>> {
        self.probe.enter(Op::WorkerParent).await;
        Ok(self.inner.parent().await?.map(|w| worker(&self.probe, w)))
    }

    async fn set_parent(&self, parent: Option<&WorkerRef>) -> Result<()> {
        self.probe.enter(Op::WorkerSetParent).await;
        // Our own handles are unwrapped; anything else is the backend's call.
        let parent = parent.map(|p| match p.as_any().downcast_ref::<InstWorker>() {
            Some(ours) => &ours.inner,
            None => p,
        });
        self.inner.set_parent(parent).await
    }

    async fn children(&self) -> Result<Vec<WorkerRef>> {
        self.probe.enter(Op::WorkerChildren).await;
        let all = self.inner.children().await?;
        Ok(all.into_iter().map(|w| worker(&self.probe, w)).collect())
    }

    async fn active(&self) -> Result<bool> {
        self.probe.enter(Op::WorkerActive).await;
        self.inner.active().await
    }

    async fn deactivate(&self) -> Result<()> {
        self.probe.enter(Op::WorkerDeactivate).await;
        self.inner.deactivate().await
    }

    async fn mode(&self) -> Result<String> {
        self.probe.enter(Op::WorkerMode).await;
        self.inner.mode().await
    }

    async fn data(&self) -> Result<DataMap> {
        self.probe.enter(Op::WorkerData).await;
        self.inner.data().await
    }

    async fn expiration(&self) -> Result<Time> {
        self.probe.enter(Op::WorkerExpiration).await;
        self.inner.expiration().await
    }

    async fn last_update(&self) -> Result<Time> {
        self.probe.enter(Op::WorkerLastUpdate).await;
        self.inner.last_update().await
    }

    async fn update(&self, data: DataMap, now: Time, expiration: Time, mode: &str) -> Result<()> {
        self.probe.enter(Op::WorkerUpdate).await;
        self.inner.update(data, now, expiration, mode).await
    }

    async fn request_attempts(&self, request: &AttemptRequest) -> Result<Vec<AttemptRef>> {
        self.probe.enter(Op::RequestAttempts).await;
        Ok(attempts(
            &self.probe,
            self.inner.request_attempts(request).await?,
        ))
    }

    async fn make_attempt(&self, unit: &WorkUnitRef, lifetime: Duration) -> Result<AttemptRef> {
        self.probe.enter(Op::MakeAttempt).await;
        let unit = match unit.as_any().downcast_ref::<InstWorkUnit>() {
            Some(ours) => &ours.inner,
            None => unit,
        };
        Ok(attempt(
            &self.probe,
            self.inner.make_attempt(unit, lifetime).await?,
        ))
    }

    async fn active_attempts(&self) -> Result<Vec<AttemptRef>> {
        self.probe.enter(Op::ActiveAttempts).await;
        Ok(attempts(&self.probe, self.inner.active_attempts().await?))
    }

    async fn all_attempts(&self) -> Result<Vec<AttemptRef>> {
        self.probe.enter(Op::AllAttempts).await;
        Ok(attempts(&self.probe, self.inner.all_attempts().await?))
    }

    async fn child_attempts(&self) -> Result<Vec<AttemptRef>> {
        self.probe.enter(Op::ChildAttempts).await;
        Ok(attempts(&self.probe, self.inner.child_attempts().await?))
    }
}

#[deny(clippy::missing_trait_methods)]
#[async_trait]
impl Attempt for InstAttempt {
    fn work_unit(&self) -> WorkUnitRef {
        unit(&self.probe, self.inner.work_unit())
    }

    fn worker(&self) -> WorkerRef {
        worker(&self.probe, self.inner.worker())
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    fn id(&self) -> Option<u64> {
        self.inner.id()
    }

    async fn status(&self) -> Result<AttemptStatus> {
        self.probe.enter(Op::AttemptStatus).await;
        self.inner.status().await
    }

    async fn data(&self) -> Result<DataMap> {
        self.probe.enter(Op::AttemptData).await;
        self.inner.data().await
    }

    async fn start_time(&self) -> Result<Time> {
        self.probe.enter(Op::AttemptStartTime).await;
        self.inner.start_time().await
    }

    async fn end_time(&self) -> Result<Option<Time>> {
        self.probe.enter(Op::AttemptEndTime).await;
        self.inner.end_time().await
    }

    async fn expiration_time(&self) -> Result<Time> {
        self.probe.enter(Op::AttemptExpirationTime).await;
        self.inner.expiration_time().await
    }

    async fn renew(&self, extend: Duration, data: Option<DataMap>) -> Result<()> {
        self.probe.enter(Op::Renew).await;
        self.inner.renew(extend, data).await
    }

    async fn expire(&self, data: Option<DataMap>) -> Result<()> {
        self.probe.enter(Op::Expire).await;
        self.inner.expire(data).await
    }

    async fn finish(&self, data: Option<DataMap>) -> Result<()> {
        self.probe.enter(Op::Finish).await;
        self.inner.finish(data).await
    }

    async fn fail(&self, data: Option<DataMap>) -> Result<()> {
        self.probe.enter(Op::Fail).await;
        self.inner.fail(data).await
    }

    async fn retry(&self, data: Option<DataMap>, delay: Duration) -> Result<()> {
        self.probe.enter(Op::Retry).await;
        self.inner.retry(data, delay).await
    }
}
