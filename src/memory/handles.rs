//! The memory backend's handles: an id plus the shared state; every method
//! takes the lock once, reads the clock, and runs one state operation.

use std::any::Any;
use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Weak};

use async_trait::async_trait;

use crate::api::{
    Attempt, AttemptRef, Namespace, NamespaceRef, WorkSpec, WorkSpecRef, WorkUnit, WorkUnitRef,
    Worker, WorkerRef,
};
use crate::error::{Error, ObjectKind, Result};
use crate::feed::{ChangeEvent, DeletedUnits};
use crate::model::{
    AttemptRequest, AttemptSnapshot, AttemptStatus, DataMap, Duration, NewWorkUnit, Summary, Time,
    WorkSpecMeta, WorkUnitMeta, WorkUnitQuery, WorkUnitSnapshot, WorkUnitStatus,
};
use crate::rules::limits;

use super::state::{
    AttemptId, AttemptParts, NamespaceId, ScopedName, SpecId, State, UnitId, UnitName, UnitParts,
    WorkerId,
};
use super::Shared;

pub(crate) struct MemNamespace {
    shared: Arc<Shared>,
    id: NamespaceId,
    name: Arc<str>,
}

pub(crate) struct MemWorkSpec {
    shared: Arc<Shared>,
    id: SpecId,
    name: ScopedName,
    /// This handle, for the unit handles it makes to share.
    me: Weak<MemWorkSpec>,
}

/// Holds its name as the state does (a copy when short, else shared) and
/// shares its spec's handle, through which it reaches the backend, with the
/// units found through that handle: a unit handle is one small allocation.
pub(crate) struct MemWorkUnit {
    id: UnitId,
    name: UnitName,
    spec: Arc<MemWorkSpec>,
}

pub(crate) struct MemWorker {
    shared: Arc<Shared>,
    id: WorkerId,
    name: ScopedName,
}

pub(crate) struct MemAttempt {
    shared: Arc<Shared>,
    id: AttemptId,
    unit: Arc<MemWorkUnit>,
    worker: Arc<MemWorker>,
}

/// `Debug` shows identity, never data.
macro_rules! debug_handle {
    ($($ty:ident => $label:literal),+) => {$(
        impl fmt::Debug for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_struct($label).field("id", &self.id.0).finish_non_exhaustive()
            }
        }
    )+};
}
debug_handle!(
    MemNamespace => "MemNamespace",
    MemWorkSpec => "MemWorkSpec",
    MemWorkUnit => "MemWorkUnit",
    MemWorker => "MemWorker",
    MemAttempt => "MemAttempt"
);

pub(crate) fn namespace_handle(shared: &Arc<Shared>, id: NamespaceId, name: &str) -> NamespaceRef {
    Arc::new(MemNamespace {
        shared: shared.clone(),
        id,
        name: name.into(),
    })
}

fn spec_handle(shared: &Arc<Shared>, id: SpecId, name: ScopedName) -> Arc<MemWorkSpec> {
    Arc::new_cyclic(|me| MemWorkSpec {
        shared: shared.clone(),
        id,
        name,
        me: me.clone(),
    })
}

/// A handle on the unit `id`, named `name`, in `spec` (its spec's handle).
fn unit_handle(spec: &Arc<MemWorkSpec>, id: UnitId, name: UnitName) -> Arc<MemWorkUnit> {
    Arc::new(MemWorkUnit {
        id,
        name,
        spec: Arc::clone(spec),
    })
}

/// A handle on the unit `parts` describes, with a handle of its own spec.
fn lone_unit_handle(shared: &Arc<Shared>, parts: UnitParts) -> Arc<MemWorkUnit> {
    let spec = spec_handle(shared, parts.spec, parts.spec_name);
    unit_handle(&spec, parts.id, parts.name)
}

fn worker_handle(shared: &Arc<Shared>, id: WorkerId, name: ScopedName) -> Arc<MemWorker> {
    Arc::new(MemWorker {
        shared: shared.clone(),
        id,
        name,
    })
}

fn attempt_handle(shared: &Arc<Shared>, parts: AttemptParts) -> AttemptRef {
    Arc::new(MemAttempt {
        shared: shared.clone(),
        id: parts.id,
        unit: lone_unit_handle(shared, parts.unit),
        worker: worker_handle(shared, parts.worker, parts.worker_name),
    })
}

fn attempt_handles(
    shared: &Arc<Shared>,
    state: &State,
    ids: Vec<AttemptId>,
) -> Result<Vec<AttemptRef>> {
    ids.into_iter()
        .map(|id| Ok(attempt_handle(shared, state.attempt_parts(id)?)))
        .collect()
}

fn worker_handles(
    shared: &Arc<Shared>,
    state: &State,
    ids: Vec<WorkerId>,
) -> Result<Vec<WorkerRef>> {
    ids.into_iter()
        .map(|id| Ok(worker_handle(shared, id, state.worker_name(id)?) as WorkerRef))
        .collect()
}

/// Recognises a handle of this very backend instance.
fn own<'a, T: HasShared + 'static>(shared: &Arc<Shared>, handle: &'a dyn Any) -> Result<&'a T> {
    match handle.downcast_ref::<T>() {
        Some(h) if Arc::ptr_eq(h.shared(), shared) => Ok(h),
        _ => Err(Error::WrongBackend),
    }
}

trait HasShared {
    fn shared(&self) -> &Arc<Shared>;
}

impl HasShared for MemWorkUnit {
    fn shared(&self) -> &Arc<Shared> {
        &self.spec.shared
    }
}

impl HasShared for MemWorker {
    fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }
}

impl MemNamespace {
    /// `name` in this namespace, for a spec's or worker's handle.
    fn scoped(&self, name: &str) -> ScopedName {
        ScopedName {
            namespace: Arc::clone(&self.name),
            name: name.into(),
        }
    }
}

#[async_trait]
impl Namespace for MemNamespace {
    fn name(&self) -> &str {
        &self.name
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    async fn destroy(&self) -> Result<()> {
        self.shared.run(|st, now| {
            let existed = st.namespace_name(self.id).is_some();
            let orphans = st.destroy_namespace(self.id, now);
            self.shared.announce(|| {
                existed.then(|| ChangeEvent::NamespaceDestroyed {
                    namespace: self.name.to_string(),
                })
            });
            // Workers elsewhere whose parent went: their parent changed.
            for (namespace, worker) in orphans {
                self.shared
                    .announce(|| Some(ChangeEvent::WorkerChanged { namespace, worker }));
            }
        });
        Ok(())
    }

    async fn set_work_spec(&self, definition: DataMap) -> Result<WorkSpecRef> {
        let definition = limits::checked_data(definition)?;
        self.shared.run_on(ObjectKind::Namespace, |st, _| {
            let existed = self.shared.feed.wanted()
                && definition
                    .get("name")
                    .and_then(|n| n.as_str())
                    .is_some_and(|n| st.work_spec(self.id, n).is_ok());
            let (id, name) = st.set_work_spec(self.id, definition)?;
            if existed {
                self.shared.feed.publish(ChangeEvent::WorkSpecRedefined {
                    namespace: self.name.to_string(),
                    work_spec: name.clone(),
                });
            }
            Ok(spec_handle(&self.shared, id, self.scoped(&name)) as WorkSpecRef)
        })
    }

    async fn work_spec(&self, name: &str) -> Result<WorkSpecRef> {
        self.shared.run_on(ObjectKind::Namespace, |st, _| {
            let id = st.work_spec(self.id, name)?;
            Ok(spec_handle(&self.shared, id, self.scoped(name)) as WorkSpecRef)
        })
    }

    async fn destroy_work_spec(&self, name: &str) -> Result<()> {
        self.shared.run_on(ObjectKind::Namespace, |st, _| {
            st.destroy_work_spec(self.id, name)?;
            self.shared.announce(|| {
                Some(ChangeEvent::WorkSpecDestroyed {
                    namespace: self.name.to_string(),
                    work_spec: name.to_string(),
                })
            });
            Ok(())
        })
    }

    async fn work_spec_names(&self) -> Result<Vec<String>> {
        self.shared
            .run_on(ObjectKind::Namespace, |st, _| st.work_spec_names(self.id))
    }

    async fn worker(&self, name: &str) -> Result<WorkerRef> {
        limits::check_name(name)?;
        self.shared.run_on(ObjectKind::Namespace, |st, now| {
            let id = st.worker_named(self.id, name, now)?;
            Ok(worker_handle(&self.shared, id, self.scoped(name)) as WorkerRef)
        })
    }

    async fn workers(&self) -> Result<BTreeMap<String, WorkerRef>> {
        self.shared.run_on(ObjectKind::Namespace, |st, _| {
            Ok(st
                .workers_of(self.id)?
                .into_iter()
                .map(|(name, id)| {
                    let handle = worker_handle(&self.shared, id, self.scoped(&name));
                    (name, handle as WorkerRef)
                })
                .collect())
        })
    }

    async fn summarize(&self) -> Result<Summary> {
        self.shared.run_on(ObjectKind::Namespace, |st, now| {
            st.summarize_namespace(self.id, now)
        })
    }
}

impl MemWorkSpec {
    /// This handle as an `Arc`. Handles are only ever made inside one, so
    /// the upgrade succeeds while `self` is borrowed; should it not, a new
    /// handle on the same spec serves as well.
    fn handle(&self) -> Arc<MemWorkSpec> {
        self.me
            .upgrade()
            .unwrap_or_else(|| spec_handle(&self.shared, self.id, self.name.clone()))
    }
}

#[async_trait]
impl WorkSpec for MemWorkSpec {
    fn name(&self) -> &str {
        &self.name.name
    }

    fn namespace_name(&self) -> &str {
        &self.name.namespace
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    async fn data(&self) -> Result<DataMap> {
        self.shared
            .run_on(ObjectKind::WorkSpec, |st, _| st.spec_data(self.id))
    }

    async fn set_data(&self, definition: DataMap) -> Result<()> {
        let definition = limits::checked_data(definition)?;
        self.shared.run_on(ObjectKind::WorkSpec, |st, _| {
            st.set_spec_data(self.id, definition)?;
            self.shared.announce(|| {
                let (namespace, work_spec) = st.spec_path(self.id)?;
                Some(ChangeEvent::WorkSpecRedefined {
                    namespace,
                    work_spec,
                })
            });
            Ok(())
        })
    }

    async fn meta(&self, with_counts: bool) -> Result<WorkSpecMeta> {
        self.shared.run_on(ObjectKind::WorkSpec, |st, now| {
            st.spec_meta(self.id, with_counts, now)
        })
    }

    async fn set_meta(&self, meta: WorkSpecMeta) -> Result<()> {
        let meta = limits::checked_spec_meta(meta)?;
        self.shared.run_on(ObjectKind::WorkSpec, |st, _| {
            st.set_spec_meta(self.id, &meta)
        })
    }

    async fn add_work_unit(
        &self,
        name: &str,
        data: DataMap,
        meta: WorkUnitMeta,
    ) -> Result<WorkUnitRef> {
        let (data, meta) = limits::checked_new_unit(name, data, meta)?;
        let spec = self.handle();
        self.shared.run_on(ObjectKind::WorkSpec, |st, now| {
            let id = st.add_work_unit(self.id, name, data, meta, now)?;
            Ok(unit_handle(&spec, id, st.unit_name(id)?) as WorkUnitRef)
        })
    }

    /// The whole batch under one lock acquisition: stored all at once.
    async fn add_work_units(&self, units: Vec<NewWorkUnit>) -> Result<Vec<WorkUnitRef>> {
        let units = limits::checked_new_units(units)?;
        let added = self.shared.run_on(ObjectKind::WorkSpec, |st, now| {
            st.add_work_units(self.id, units, now)
        })?;
        let spec = self.handle();
        Ok(added
            .into_iter()
            .map(|(id, name)| unit_handle(&spec, id, name) as WorkUnitRef)
            .collect())
    }

    async fn work_unit(&self, name: &str) -> Result<WorkUnitRef> {
        let spec = self.handle();
        self.shared.run_on(ObjectKind::WorkSpec, |st, _| {
            let id = st.work_unit(self.id, name)?;
            Ok(unit_handle(&spec, id, st.unit_name(id)?) as WorkUnitRef)
        })
    }

    async fn work_units(&self, query: &WorkUnitQuery) -> Result<BTreeMap<String, WorkUnitRef>> {
        let spec = self.handle();
        self.shared.run_on(ObjectKind::WorkSpec, |st, now| {
            let selected = st.select(self.id, query, now)?;
            Ok(selected
                .into_iter()
                .map(|(name, id)| {
                    let key = name.to_string();
                    (key, unit_handle(&spec, id, name) as WorkUnitRef)
                })
                .collect())
        })
    }

    async fn count_work_unit_status(&self) -> Result<BTreeMap<WorkUnitStatus, u64>> {
        self.shared.run_on(ObjectKind::WorkSpec, |st, now| {
            st.count_work_unit_status(self.id, now)
        })
    }

    async fn set_work_unit_priorities(&self, query: &WorkUnitQuery, priority: f64) -> Result<()> {
        let priority = limits::checked_priority(priority)?;
        self.shared.run_on(ObjectKind::WorkSpec, |st, now| {
            st.change_priorities(self.id, query, now, |_| Ok(priority))
        })
    }

    async fn adjust_work_unit_priorities(&self, query: &WorkUnitQuery, delta: f64) -> Result<()> {
        let delta = limits::checked_priority(delta)?;
        self.shared.run_on(ObjectKind::WorkSpec, |st, now| {
            st.change_priorities(self.id, query, now, |p| limits::adjusted_priority(p, delta))
        })
    }

    async fn delete_work_units(&self, query: &WorkUnitQuery) -> Result<u64> {
        self.shared.run_on(ObjectKind::WorkSpec, |st, now| {
            let deleted = st.delete_work_units(self.id, query, now)?;
            self.shared.announce(|| {
                let (namespace, work_spec) = st.spec_path(self.id)?;
                (!deleted.is_empty()).then(|| ChangeEvent::WorkUnitsDeleted {
                    namespace,
                    work_spec,
                    units: DeletedUnits::Names(deleted.iter().map(|n| n.to_string()).collect()),
                })
            });
            Ok(deleted.len() as u64)
        })
    }

    async fn summarize(&self) -> Result<Summary> {
        self.shared.run_on(ObjectKind::WorkSpec, |st, now| {
            st.summarize_spec(self.id, now)
        })
    }
}

#[async_trait]
impl WorkUnit for MemWorkUnit {
    fn name(&self) -> &str {
        &self.name
    }

    fn work_spec(&self) -> WorkSpecRef {
        Arc::clone(&self.spec) as WorkSpecRef
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    async fn data(&self) -> Result<DataMap> {
        self.shared()
            .run_on(ObjectKind::WorkUnit, |st, _| st.unit_data(self.id))
    }

    async fn status(&self) -> Result<WorkUnitStatus> {
        self.shared()
            .run_on(ObjectKind::WorkUnit, |st, now| st.unit_status(self.id, now))
    }

    async fn meta(&self) -> Result<WorkUnitMeta> {
        self.shared()
            .run_on(ObjectKind::WorkUnit, |st, _| st.unit_meta(self.id))
    }

    async fn snapshot(&self) -> Result<WorkUnitSnapshot> {
        self.shared().run_on(ObjectKind::WorkUnit, |st, now| {
            let status = st.unit_status(self.id, now)?;
            Ok(WorkUnitSnapshot::new(
                status,
                st.unit_data(self.id)?,
                st.unit_meta(self.id)?,
            ))
        })
    }

    async fn data_and_meta(&self) -> Result<(DataMap, WorkUnitMeta)> {
        self.shared().run_on(ObjectKind::WorkUnit, |st, _| {
            Ok((st.unit_data(self.id)?, st.unit_meta(self.id)?))
        })
    }

    async fn set_meta(&self, meta: WorkUnitMeta) -> Result<()> {
        let meta = limits::checked_unit_meta(meta)?;
        self.shared().run_on(ObjectKind::WorkUnit, |st, now| {
            st.set_unit_meta(self.id, now, |m| *m = meta)
        })
    }

    async fn priority(&self) -> Result<f64> {
        self.shared().run_on(ObjectKind::WorkUnit, |st, _| {
            Ok(st.unit_meta(self.id)?.priority)
        })
    }

    async fn set_priority(&self, priority: f64) -> Result<()> {
        let priority = limits::checked_priority(priority)?;
        self.shared().run_on(ObjectKind::WorkUnit, |st, now| {
            st.set_unit_meta(self.id, now, |m| m.priority = priority)
        })
    }

    async fn active_attempt(&self) -> Result<Option<AttemptRef>> {
        self.shared().run_on(ObjectKind::WorkUnit, |st, now| {
            st.active_attempt(self.id, now)?
                .map(|id| Ok(attempt_handle(self.shared(), st.attempt_parts(id)?)))
                .transpose()
        })
    }

    async fn clear_active_attempt(&self) -> Result<()> {
        self.shared().run_on(ObjectKind::WorkUnit, |st, now| {
            st.clear_active_attempt(self.id, now)
        })
    }

    async fn attempts(&self) -> Result<Vec<AttemptRef>> {
        self.shared().run_on(ObjectKind::WorkUnit, |st, _| {
            let ids = st.unit_attempts(self.id)?;
            attempt_handles(self.shared(), st, ids)
        })
    }

    async fn num_attempts(&self) -> Result<u64> {
        self.shared().run_on(ObjectKind::WorkUnit, |st, _| {
            Ok(st.unit_attempts(self.id)?.len() as u64)
        })
    }
}

#[async_trait]
impl Worker for MemWorker {
    fn name(&self) -> &str {
        &self.name.name
    }

    fn namespace_name(&self) -> &str {
        &self.name.namespace
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    async fn parent(&self) -> Result<Option<WorkerRef>> {
        self.shared.run_on(ObjectKind::Worker, |st, _| {
            st.parent(self.id)?
                .map(|id| Ok(worker_handle(&self.shared, id, st.worker_name(id)?) as WorkerRef))
                .transpose()
        })
    }

    async fn set_parent(&self, parent: Option<&WorkerRef>) -> Result<()> {
        let parent = parent
            .map(|p| own::<MemWorker>(&self.shared, p.as_any()).map(|p| p.id))
            .transpose()?;
        self.shared.run_on(ObjectKind::Worker, |st, _| {
            st.set_parent(self.id, parent)?;
            self.shared.announce(|| {
                let (namespace, worker) = st.worker_path(self.id)?;
                Some(ChangeEvent::WorkerChanged { namespace, worker })
            });
            Ok(())
        })
    }

    async fn children(&self) -> Result<Vec<WorkerRef>> {
        self.shared.run_on(ObjectKind::Worker, |st, _| {
            let ids = st.children(self.id)?;
            worker_handles(&self.shared, st, ids)
        })
    }

    async fn active(&self) -> Result<bool> {
        self.shared
            .run_on(ObjectKind::Worker, |st, _| st.worker_active(self.id))
    }

    async fn deactivate(&self) -> Result<()> {
        self.shared
            .run_on(ObjectKind::Worker, |st, _| st.deactivate(self.id))
    }

    async fn mode(&self) -> Result<String> {
        self.shared
            .run_on(ObjectKind::Worker, |st, _| st.worker_mode(self.id))
    }

    async fn data(&self) -> Result<DataMap> {
        self.shared
            .run_on(ObjectKind::Worker, |st, _| st.worker_data(self.id))
    }

    async fn expiration(&self) -> Result<Time> {
        self.shared
            .run_on(ObjectKind::Worker, |st, _| st.worker_expiration(self.id))
    }

    async fn last_update(&self) -> Result<Time> {
        self.shared
            .run_on(ObjectKind::Worker, |st, _| st.worker_last_update(self.id))
    }

    async fn update(&self, data: DataMap, now: Time, expiration: Time, mode: &str) -> Result<()> {
        let (data, now, expiration) = limits::checked_worker_update(data, now, expiration, mode)?;
        self.shared.run_on(ObjectKind::Worker, |st, _| {
            st.update_worker(self.id, data, now, expiration, mode)
        })
    }

    async fn request_attempts(&self, request: &AttemptRequest) -> Result<Vec<AttemptRef>> {
        self.shared.run_on(ObjectKind::Worker, |st, now| {
            let ids = st.request_attempts(self.id, request, now)?;
            attempt_handles(&self.shared, st, ids)
        })
    }

    async fn make_attempt(&self, unit: &WorkUnitRef, lifetime: Duration) -> Result<AttemptRef> {
        let unit = own::<MemWorkUnit>(&self.shared, unit.as_any())?.id;
        self.shared.run_on(ObjectKind::Worker, |st, now| {
            let id = st.make_attempt(self.id, unit, lifetime, now)?;
            Ok(attempt_handle(&self.shared, st.attempt_parts(id)?))
        })
    }

    async fn active_attempts(&self) -> Result<Vec<AttemptRef>> {
        self.shared.run_on(ObjectKind::Worker, |st, _| {
            let ids = st.active_attempts(self.id)?;
            attempt_handles(&self.shared, st, ids)
        })
    }

    async fn all_attempts(&self) -> Result<Vec<AttemptRef>> {
        self.shared.run_on(ObjectKind::Worker, |st, _| {
            let ids = st.all_attempts(self.id)?;
            attempt_handles(&self.shared, st, ids)
        })
    }

    async fn child_attempts(&self) -> Result<Vec<AttemptRef>> {
        self.shared.run_on(ObjectKind::Worker, |st, _| {
            let ids = st.child_attempts(self.id)?;
            attempt_handles(&self.shared, st, ids)
        })
    }
}

#[async_trait]
impl Attempt for MemAttempt {
    fn work_unit(&self) -> WorkUnitRef {
        self.unit.clone()
    }

    fn worker(&self) -> WorkerRef {
        self.worker.clone()
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    fn id(&self) -> Option<u64> {
        Some(self.id.0)
    }

    async fn status(&self) -> Result<AttemptStatus> {
        self.shared.run_on(ObjectKind::Attempt, |st, now| {
            st.attempt_status(self.id, now)
        })
    }

    async fn data(&self) -> Result<DataMap> {
        self.shared
            .run_on(ObjectKind::Attempt, |st, _| st.attempt_data(self.id))
    }

    async fn start_time(&self) -> Result<Time> {
        self.shared
            .run_on(ObjectKind::Attempt, |st, _| st.attempt_start(self.id))
    }

    async fn end_time(&self) -> Result<Option<Time>> {
        self.shared
            .run_on(ObjectKind::Attempt, |st, now| st.attempt_end(self.id, now))
    }

    async fn expiration_time(&self) -> Result<Time> {
        self.shared.run_on(ObjectKind::Attempt, |st, now| {
            st.attempt_expiration(self.id, now)
        })
    }

    async fn snapshot(&self) -> Result<AttemptSnapshot> {
        self.shared.run_on(ObjectKind::Attempt, |st, now| {
            let status = st.attempt_status(self.id, now)?;
            Ok(AttemptSnapshot::new(
                status,
                st.attempt_data(self.id)?,
                st.attempt_start(self.id)?,
                st.attempt_end(self.id, now)?,
                st.attempt_expiration(self.id, now)?,
            ))
        })
    }

    async fn renew(&self, extend: Duration, data: Option<DataMap>) -> Result<()> {
        let data = limits::checked_optional_data(data)?;
        self.shared.run_on(ObjectKind::Attempt, |st, now| {
            st.renew(self.id, extend, data, now)
        })
    }

    async fn expire(&self, data: Option<DataMap>) -> Result<()> {
        let data = limits::checked_optional_data(data)?;
        self.shared
            .run_on(ObjectKind::Attempt, |st, now| st.expire(self.id, data, now))
    }

    async fn finish(&self, data: Option<DataMap>) -> Result<()> {
        let data = limits::checked_optional_data(data)?;
        self.shared
            .run_on(ObjectKind::Attempt, |st, now| st.finish(self.id, data, now))
    }

    async fn fail(&self, data: Option<DataMap>) -> Result<()> {
        let data = limits::checked_optional_data(data)?;
        self.shared
            .run_on(ObjectKind::Attempt, |st, now| st.fail(self.id, data, now))
    }

    async fn retry(&self, data: Option<DataMap>, delay: Duration) -> Result<()> {
        let data = limits::checked_optional_data(data)?;
        self.shared.run_on(ObjectKind::Attempt, |st, now| {
            st.retry(self.id, data, delay, now)
        })
    }
}
