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
    AttemptRequest, AttemptSnapshot, AttemptStatus, DataMap, Duration, NewWorkUnit, Summary, Time,
    WorkSpecMeta, WorkUnitMeta, WorkUnitQuery, WorkUnitSnapshot, WorkUnitStatus,
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

/// Counts `$op`, then forwards the call to the wrapped handle.
macro_rules! counted {
    ($self:ident, $op:ident, $method:ident($($arg:expr),*)) => {{
        $self.probe.enter(Op::$op).await;
        $self.inner.$method($($arg),*).await
    }};
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
        counted!(self, DestroyNamespace, destroy())
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
        counted!(self, DestroyWorkSpec, destroy_work_spec(name))
    }

    async fn work_spec_names(&self) -> Result<Vec<String>> {
        counted!(self, WorkSpecNames, work_spec_names())
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
        counted!(self, NamespaceSummarize, summarize())
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
        counted!(self, SpecData, data())
    }

    async fn set_data(&self, definition: DataMap) -> Result<()> {
        counted!(self, SpecSetData, set_data(definition))
    }

    async fn meta(&self, with_counts: bool) -> Result<WorkSpecMeta> {
        counted!(self, SpecMeta, meta(with_counts))
    }

    async fn set_meta(&self, meta: WorkSpecMeta) -> Result<()> {
        counted!(self, SpecSetMeta, set_meta(meta))
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
        counted!(self, CountWorkUnitStatus, count_work_unit_status())
    }

    async fn set_work_unit_priorities(&self, query: &WorkUnitQuery, priority: f64) -> Result<()> {
        counted!(
            self,
            SetWorkUnitPriorities,
            set_work_unit_priorities(query, priority)
        )
    }

    async fn adjust_work_unit_priorities(&self, query: &WorkUnitQuery, delta: f64) -> Result<()> {
        counted!(
            self,
            AdjustWorkUnitPriorities,
            adjust_work_unit_priorities(query, delta)
        )
    }

    async fn delete_work_units(&self, query: &WorkUnitQuery) -> Result<u64> {
        counted!(self, DeleteWorkUnits, delete_work_units(query))
    }

    async fn summarize(&self) -> Result<Summary> {
        counted!(self, SpecSummarize, summarize())
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
        counted!(self, UnitData, data())
    }

    async fn status(&self) -> Result<WorkUnitStatus> {
        counted!(self, UnitStatus, status())
    }

    async fn meta(&self) -> Result<WorkUnitMeta> {
        counted!(self, UnitMeta, meta())
    }

    async fn snapshot(&self) -> Result<WorkUnitSnapshot> {
        counted!(self, UnitSnapshot, snapshot())
    }

    async fn data_and_meta(&self) -> Result<(DataMap, WorkUnitMeta)> {
        counted!(self, UnitDataAndMeta, data_and_meta())
    }

    async fn set_meta(&self, meta: WorkUnitMeta) -> Result<()> {
        counted!(self, UnitSetMeta, set_meta(meta))
    }

    async fn priority(&self) -> Result<f64> {
        counted!(self, UnitPriority, priority())
    }

    async fn set_priority(&self, priority: f64) -> Result<()> {
        counted!(self, UnitSetPriority, set_priority(priority))
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
        counted!(self, ClearActiveAttempt, clear_active_attempt())
    }

    async fn attempts(&self) -> Result<Vec<AttemptRef>> {
        self.probe.enter(Op::UnitAttempts).await;
        Ok(attempts(&self.probe, self.inner.attempts().await?))
    }

    async fn num_attempts(&self) -> Result<u64> {
        counted!(self, NumAttempts, num_attempts())
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
        counted!(self, WorkerActive, active())
    }

    async fn deactivate(&self) -> Result<()> {
        counted!(self, WorkerDeactivate, deactivate())
    }

    async fn mode(&self) -> Result<String> {
        counted!(self, WorkerMode, mode())
    }

    async fn data(&self) -> Result<DataMap> {
        counted!(self, WorkerData, data())
    }

    async fn expiration(&self) -> Result<Time> {
        counted!(self, WorkerExpiration, expiration())
    }

    async fn last_update(&self) -> Result<Time> {
        counted!(self, WorkerLastUpdate, last_update())
    }

    async fn update(&self, data: DataMap, now: Time, expiration: Time, mode: &str) -> Result<()> {
        counted!(self, WorkerUpdate, update(data, now, expiration, mode))
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
        counted!(self, AttemptStatus, status())
    }

    async fn data(&self) -> Result<DataMap> {
        counted!(self, AttemptData, data())
    }

    async fn start_time(&self) -> Result<Time> {
        counted!(self, AttemptStartTime, start_time())
    }

    async fn end_time(&self) -> Result<Option<Time>> {
        counted!(self, AttemptEndTime, end_time())
    }

    async fn expiration_time(&self) -> Result<Time> {
        counted!(self, AttemptExpirationTime, expiration_time())
    }

    async fn snapshot(&self) -> Result<AttemptSnapshot> {
        counted!(self, AttemptSnapshot, snapshot())
    }

    async fn renew(&self, extend: Duration, data: Option<DataMap>) -> Result<()> {
        counted!(self, Renew, renew(extend, data))
    }

    async fn expire(&self, data: Option<DataMap>) -> Result<()> {
        counted!(self, Expire, expire(data))
    }

    async fn finish(&self, data: Option<DataMap>) -> Result<()> {
        counted!(self, Finish, finish(data))
    }

    async fn fail(&self, data: Option<DataMap>) -> Result<()> {
        counted!(self, Fail, fail(data))
    }

    async fn retry(&self, data: Option<DataMap>, delay: Duration) -> Result<()> {
        counted!(self, Retry, retry(data, delay))
    }
}
