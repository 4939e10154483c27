//! The state of a memory backend and every operation on it, synchronous and
//! behind the backend's one lock.
//!
//! Objects live in flat maps keyed by ids that are never reused, so a
//! handle whose id is missing is `Gone`, and a same-named object created
//! later has a new id: old handles stay dead. Deleting an object
//! removes its descendants from the maps too.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ops::Bound;
use std::sync::Arc;

use crate::clock::checked_add;
use crate::error::{Error, ObjectKind, Result};
use crate::model::{
    AttemptRequest, AttemptStatus, DataMap, Duration, Summary, SummaryRecord, Time, WorkSpecMeta,
    WorkUnitMeta, WorkUnitQuery, WorkUnitStatus, DEFAULT_LIFETIME,
};
use crate::rules;

use super::index::{Counts, SpecIndex, UnitClass};

macro_rules! ids {
    ($($name:ident),+) => {$(
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub(crate) struct $name(pub(crate) u64);
    )+};
}
ids!(NamespaceId, SpecId, UnitId, AttemptId, WorkerId);

#[derive(Debug)]
struct NamespaceState {
    name: String,
    specs: HashMap<String, SpecId>,
    workers: HashMap<String, WorkerId>,
}

#[derive(Debug)]
struct SpecState {
    namespace: NamespaceId,
    name: String,
    definition: DataMap,
    meta: WorkSpecMeta,
    units: BTreeMap<Arc<str>, UnitId>,
    index: SpecIndex,
}

#[derive(Debug)]
struct UnitState {
    spec: SpecId,
    name: Arc<str>,
    data: DataMap,
    meta: WorkUnitMeta,
    active: Option<AttemptId>,
    attempts: Vec<AttemptId>,
}

#[derive(Debug)]
struct AttemptState {
    unit: UnitId,
    worker: WorkerId,
    /// Kept so the attempt's handle can be built even if the worker is gone.
    worker_name: Arc<str>,
    status: AttemptStatus,
    data: DataMap,
    start: Time,
    end: Option<Time>,
    expiration: Time,
}

#[derive(Debug)]
struct WorkerState {
    namespace: NamespaceId,
    name: Arc<str>,
    parent: Option<WorkerId>,
    children: BTreeSet<WorkerId>,
    active: bool,
    mode: String,
    data: DataMap,
    expiration: Time,
    last_update: Time,
    /// Ids grow with creation, so set order is the order attempts were added.
    active_attempts: BTreeSet<AttemptId>,
    all_attempts: BTreeSet<AttemptId>,
}

/// Where an attempt stands, for building its handle.
#[derive(Debug, Clone)]
pub(crate) struct AttemptParts {
    pub(crate) id: AttemptId,
    pub(crate) unit: UnitParts,
    pub(crate) worker: WorkerId,
    pub(crate) worker_name: Arc<str>,
}

/// Where a unit stands, for building its handle.
#[derive(Debug, Clone)]
pub(crate) struct UnitParts {
    pub(crate) id: UnitId,
    pub(crate) name: Arc<str>,
    pub(crate) spec: SpecId,
    pub(crate) spec_name: String,
}

/// Sizes, for `Debug`.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Sizes {
    pub(crate) namespaces: usize,
    pub(crate) work_specs: usize,
    pub(crate) work_units: usize,
    pub(crate) attempts: usize,
    pub(crate) workers: usize,
}

/// Everything a memory backend stores.
#[derive(Debug, Default)]
pub(crate) struct State {
    next_id: u64,
    namespace_names: HashMap<String, NamespaceId>,
    namespaces: HashMap<NamespaceId, NamespaceState>,
    specs: HashMap<SpecId, SpecState>,
    units: HashMap<UnitId, UnitState>,
    attempts: HashMap<AttemptId, AttemptState>,
    workers: HashMap<WorkerId, WorkerState>,
}

impl State {
    fn next_id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    pub(crate) fn sizes(&self) -> Sizes {
        Sizes {
            namespaces: self.namespaces.len(),
            work_specs: self.specs.len(),
            work_units: self.units.len(),
            attempts: self.attempts.len(),
            workers: self.workers.len(),
        }
    }

    // ----- lookups that answer Gone -------------------------------------

    fn ns(&self, id: NamespaceId) -> Result<&NamespaceState> {
        self.namespaces.get(&id).ok_or(Error::Gone {
            kind: ObjectKind::Namespace,
        })
    }

    fn ns_mut(&mut self, id: NamespaceId) -> Result<&mut NamespaceState> {
        self.namespaces.get_mut(&id).ok_or(Error::Gone {
            kind: ObjectKind::Namespace,
        })
    }

    fn spec(&self, id: SpecId) -> Result<&SpecState> {
        self.specs.get(&id).ok_or(Error::Gone {
            kind: ObjectKind::WorkSpec,
        })
    }

    fn spec_mut(&mut self, id: SpecId) -> Result<&mut SpecState> {
        self.specs.get_mut(&id).ok_or(Error::Gone {
            kind: ObjectKind::WorkSpec,
        })
    }

    fn unit(&self, id: UnitId) -> Result<&UnitState> {
        self.units.get(&id).ok_or(Error::Gone {
            kind: ObjectKind::WorkUnit,
        })
    }

    fn unit_mut(&mut self, id: UnitId) -> Result<&mut UnitState> {
        self.units.get_mut(&id).ok_or(Error::Gone {
            kind: ObjectKind::WorkUnit,
        })
    }

    fn attempt(&self, id: AttemptId) -> Result<&AttemptState> {
        self.attempts.get(&id).ok_or(Error::Gone {
            kind: ObjectKind::Attempt,
        })
    }

    fn attempt_mut(&mut self, id: AttemptId) -> Result<&mut AttemptState> {
        self.attempts.get_mut(&id).ok_or(Error::Gone {
            kind: ObjectKind::Attempt,
        })
    }

    fn worker(&self, id: WorkerId) -> Result<&WorkerState> {
        self.workers.get(&id).ok_or(Error::Gone {
            kind: ObjectKind::Worker,
        })
    }

    fn worker_mut(&mut self, id: WorkerId) -> Result<&mut WorkerState> {
        self.workers.get_mut(&id).ok_or(Error::Gone {
            kind: ObjectKind::Worker,
        })
    }

    pub(crate) fn unit_parts(&self, id: UnitId) -> Result<UnitParts> {
        let unit = self.unit(id)?;
        Ok(UnitParts {
            id,
            name: unit.name.clone(),
            spec: unit.spec,
            spec_name: self.spec(unit.spec)?.name.clone(),
        })
    }

    pub(crate) fn attempt_parts(&self, id: AttemptId) -> Result<AttemptParts> {
        let attempt = self.attempt(id)?;
        Ok(AttemptParts {
            id,
            unit: self.unit_parts(attempt.unit)?,
            worker: attempt.worker,
            worker_name: attempt.worker_name.clone(),
        })
    }

    pub(crate) fn worker_name(&self, id: WorkerId) -> Result<Arc<str>> {
        Ok(self.worker(id)?.name.clone())
    }

    // ----- the unit index -------------------------------------------------

    fn class(&self, id: UnitId) -> Option<UnitClass> {
        let unit = self.units.get(&id)?;
        let active = unit
            .active
            .and_then(|a| self.attempts.get(&a).map(|s| (a, s.status, s.expiration)));
        Some(UnitClass {
            id,
            name: unit.name.clone(),
            priority: unit.meta.priority,
            not_before: unit.meta.not_before,
            active,
        })
    }

    /// Runs `change` on a unit, keeping its spec's index in step.
    fn reindex<R>(
        &mut self,
        id: UnitId,
        now: Time,
        change: impl FnOnce(&mut Self) -> Result<R>,
    ) -> Result<R> {
        let before = self.class(id).ok_or(Error::Gone {
            kind: ObjectKind::WorkUnit,
        })?;
        let spec = self.unit(id)?.spec;
        self.spec_mut(spec)?.index.remove(&before);
        let result = change(self);
        if let Some(after) = self.class(id) {
            if let Some(spec) = self.specs.get_mut(&spec) {
                spec.index.insert(&after, now);
            }
        }
        result
    }

    /// Lazy expiry over one spec, then refiling units by their
    /// not-before time.
    fn expire_spec(&mut self, spec: SpecId, now: Time) -> Result<()> {
        for attempt in self.spec(spec)?.index.expired(now) {
            let Some(unit) = self.attempts.get(&attempt).map(|a| a.unit) else {
                continue;
            };
            self.reindex(unit, now, |st| {
                st.complete(attempt, AttemptStatus::Expired, None, now)?;
                st.unit_mut(unit)?.active = None;
                Ok(())
            })?;
        }
        self.spec_mut(spec)?.index.refile(now);
        Ok(())
    }

    fn expire_namespace(&mut self, ns: NamespaceId, now: Time) -> Result<()> {
        let specs: Vec<SpecId> = self.ns(ns)?.specs.values().copied().collect();
        for spec in specs {
            self.expire_spec(spec, now)?;
        }
        Ok(())
    }

    fn counts(&mut self, spec: SpecId, now: Time) -> Result<Counts> {
        self.expire_spec(spec, now)?;
        Ok(self.spec(spec)?.index.counts())
    }

    fn unit_status_at(&self, id: UnitId, now: Time) -> Result<WorkUnitStatus> {
        let unit = self.unit(id)?;
        let active = unit
            .active
            .and_then(|a| self.attempts.get(&a))
            .map(|a| a.status);
        Ok(rules::unit_status(active, unit.meta.not_before, now))
    }

    // ----- backend and namespaces ----------------------------------------

    pub(crate) fn namespace(&mut self, name: &str) -> NamespaceId {
        if let Some(id) = self.namespace_names.get(name) {
            return *id;
        }
        let id = NamespaceId(self.next_id());
        self.namespace_names.insert(name.to_string(), id);
        self.namespaces.insert(
            id,
            NamespaceState {
                name: name.to_string(),
                specs: HashMap::new(),
                workers: HashMap::new(),
            },
        );
        id
    }

    pub(crate) fn namespaces(&self) -> Vec<(String, NamespaceId)> {
        self.namespaces
            .iter()
            .map(|(id, ns)| (ns.name.clone(), *id))
            .collect()
    }

    pub(crate) fn destroy_namespace(&mut self, id: NamespaceId) {
        let Some(ns) = self.namespaces.remove(&id) else {
            return;
        };
        self.namespace_names.remove(&ns.name);
        for spec in ns.specs.into_values() {
            self.remove_spec(spec);
        }
        for worker in ns.workers.into_values() {
            self.remove_worker(worker);
        }
    }

    fn remove_spec(&mut self, id: SpecId) {
        if let Some(spec) = self.specs.remove(&id) {
            for unit in spec.units.into_values() {
                self.remove_unit(unit);
            }
        }
    }

    /// Removes a unit and its attempts (the spec's maps are the caller's).
    fn remove_unit(&mut self, id: UnitId) {
        let Some(unit) = self.units.remove(&id) else {
            return;
        };
        for attempt in unit.attempts {
            if let Some(a) = self.attempts.remove(&attempt) {
                if let Some(worker) = self.workers.get_mut(&a.worker) {
                    worker.active_attempts.remove(&attempt);
                    worker.all_attempts.remove(&attempt);
                }
            }
        }
    }

    /// Removes a worker, unlinking it from its parent and children (which
    /// may live in other namespaces).
    fn remove_worker(&mut self, id: WorkerId) {
        let Some(worker) = self.workers.remove(&id) else {
            return;
        };
        if let Some(parent) = worker.parent.and_then(|p| self.workers.get_mut(&p)) {
            parent.children.remove(&id);
        }
        for child in worker.children {
            if let Some(child) = self.workers.get_mut(&child) {
                child.parent = None;
            }
        }
        // Its attempts die with their units; the worker's own lists go with it.
    }

    pub(crate) fn set_work_spec(
        &mut self,
        ns: NamespaceId,
        definition: DataMap,
    ) -> Result<(SpecId, String)> {
        let parsed = rules::parse_definition(&definition)?;
        let existing = self.ns(ns)?.specs.get(&parsed.name).copied();
        if let Some(id) = existing {
            let spec = self.spec_mut(id)?;
            spec.definition = definition;
            spec.meta = parsed.meta;
            return Ok((id, parsed.name));
        }
        let id = SpecId(self.next_id());
        self.ns_mut(ns)?.specs.insert(parsed.name.clone(), id);
        self.specs.insert(
            id,
            SpecState {
                namespace: ns,
                name: parsed.name.clone(),
                definition,
                meta: parsed.meta,
                units: BTreeMap::new(),
                index: SpecIndex::default(),
            },
        );
        Ok((id, parsed.name))
    }

    pub(crate) fn work_spec(&self, ns: NamespaceId, name: &str) -> Result<SpecId> {
        self.ns(ns)?
            .specs
            .get(name)
            .copied()
            .ok_or_else(|| Error::NoSuchWorkSpec { name: name.into() })
    }

    pub(crate) fn destroy_work_spec(&mut self, ns: NamespaceId, name: &str) -> Result<()> {
        let id = self
            .ns_mut(ns)?
            .specs
            .remove(name)
            .ok_or_else(|| Error::NoSuchWorkSpec { name: name.into() })?;
        self.remove_spec(id);
        Ok(())
    }

    pub(crate) fn work_spec_names(&self, ns: NamespaceId) -> Result<Vec<String>> {
        Ok(self.ns(ns)?.specs.keys().cloned().collect())
    }

    pub(crate) fn worker_named(
        &mut self,
        ns: NamespaceId,
        name: &str,
        now: Time,
    ) -> Result<WorkerId> {
        if let Some(id) = self.ns(ns)?.workers.get(name) {
            return Ok(*id);
        }
        let expiration = checked_add(now, DEFAULT_LIFETIME)?;
        let id = WorkerId(self.next_id());
        self.ns_mut(ns)?.workers.insert(name.to_string(), id);
        self.workers.insert(
            id,
            WorkerState {
                namespace: ns,
                name: name.into(),
                parent: None,
                children: BTreeSet::new(),
                active: true,
                mode: String::new(),
                data: DataMap::new(),
                expiration,
                last_update: now,
                active_attempts: BTreeSet::new(),
                all_attempts: BTreeSet::new(),
            },
        );
        Ok(id)
    }

    pub(crate) fn workers_of(&self, ns: NamespaceId) -> Result<Vec<(String, WorkerId)>> {
        Ok(self
            .ns(ns)?
            .workers
            .iter()
            .map(|(name, id)| (name.clone(), *id))
            .collect())
    }

    // ----- summaries --------------------------------------------------------

    pub(crate) fn summarize_spec(&mut self, id: SpecId, now: Time) -> Result<Summary> {
        let counts = self.counts(id, now)?;
        let spec = self.spec(id)?;
        let namespace = self.ns(spec.namespace)?.name.clone();
        Ok(counts_by_status(&counts)
            .into_iter()
            .map(|(status, count)| SummaryRecord {
                namespace: namespace.clone(),
                work_spec: spec.name.clone(),
                status,
                count,
            })
            .collect())
    }

    pub(crate) fn summarize_namespace(&mut self, ns: NamespaceId, now: Time) -> Result<Summary> {
        let specs: Vec<SpecId> = self.ns(ns)?.specs.values().copied().collect();
        let mut summary = Summary::new();
        for spec in specs {
            summary.extend(self.summarize_spec(spec, now)?);
        }
        Ok(summary)
    }

    pub(crate) fn summarize_all(&mut self, now: Time) -> Result<Summary> {
        let namespaces: Vec<NamespaceId> = self.namespaces.keys().copied().collect();
        let mut summary = Summary::new();
        for ns in namespaces {
            summary.extend(self.summarize_namespace(ns, now)?);
        }
        Ok(summary)
    }

    // ----- work specs ---------------------------------------------------------

    pub(crate) fn spec_data(&self, id: SpecId) -> Result<DataMap> {
        Ok(self.spec(id)?.definition.clone())
    }

    pub(crate) fn set_spec_data(&mut self, id: SpecId, definition: DataMap) -> Result<()> {
        let parsed = rules::parse_definition(&definition)?;
        let spec = self.spec_mut(id)?;
        if parsed.name != spec.name {
            return Err(Error::ChangedName);
        }
        spec.definition = definition;
        spec.meta = parsed.meta;
        Ok(())
    }

    pub(crate) fn spec_meta(
        &mut self,
        id: SpecId,
        with_counts: bool,
        now: Time,
    ) -> Result<WorkSpecMeta> {
        if !with_counts {
            return Ok(self.spec(id)?.meta.clone());
        }
        self.expire_spec(id, now)?;
        Ok(counted_meta(self.spec(id)?))
    }

    pub(crate) fn set_spec_meta(&mut self, id: SpecId, meta: &WorkSpecMeta) -> Result<()> {
        let spec = self.spec_mut(id)?;
        spec.meta = rules::merge_set_meta(&spec.meta, meta);
        Ok(())
    }

    pub(crate) fn add_work_unit(
        &mut self,
        spec: SpecId,
        name: &str,
        data: DataMap,
        meta: WorkUnitMeta,
        now: Time,
    ) -> Result<UnitId> {
        let existing = self.spec(spec)?.units.get(name).copied();
        if let Some(id) = existing {
            // Status before the replacement, without running expiry.
            let status = self.unit_status_at(id, now)?;
            self.reindex(id, now, |st| {
                let unit = st.unit_mut(id)?;
                unit.data = data;
                unit.meta = meta;
                if matches!(status, WorkUnitStatus::Finished | WorkUnitStatus::Failed) {
                    unit.active = None;
                }
                Ok(())
            })?;
            return Ok(id);
        }
        let id = UnitId(self.next_id());
        let name: Arc<str> = name.into();
        self.units.insert(
            id,
            UnitState {
                spec,
                name: name.clone(),
                data,
                meta,
                active: None,
                attempts: Vec::new(),
            },
        );
        let class = self.class(id).ok_or(Error::Gone {
            kind: ObjectKind::WorkUnit,
        })?;
        let spec = self.spec_mut(spec)?;
        spec.units.insert(name, id);
        spec.index.insert(&class, now);
        Ok(id)
    }

    pub(crate) fn work_unit(&self, spec: SpecId, name: &str) -> Result<UnitId> {
        self.spec(spec)?
            .units
            .get(name)
            .copied()
            .ok_or_else(|| Error::NoSuchWorkUnit { name: name.into() })
    }

    /// The units a query selects, in ascending name order, after expiry.
    pub(crate) fn select(
        &mut self,
        spec: SpecId,
        query: &WorkUnitQuery,
        now: Time,
    ) -> Result<Vec<(Arc<str>, UnitId)>> {
        self.expire_spec(spec, now)?;
        let state = self.spec(spec)?;
        let limit = query.limit().unwrap_or(usize::MAX);
        let admitted = |name: &str, id: UnitId| {
            query.admits_name(name)
                && (!query.filters_status()
                    || self
                        .unit_status_at(id, now)
                        .is_ok_and(|s| query.admits_status(s)))
        };
        let selected = if query.names.is_empty() {
            let start = match query.previous_name.as_str() {
                "" => Bound::Unbounded,
                previous => Bound::Excluded(previous),
            };
            state
                .units
                .range::<str, _>((start, Bound::Unbounded))
                .filter(|(name, id)| admitted(name, **id))
                .take(limit)
                .map(|(name, id)| (name.clone(), *id))
                .collect()
        } else {
            let mut named: Vec<(Arc<str>, UnitId)> = query
                .names
                .iter()
                .collect::<BTreeSet<_>>()
                .into_iter()
                .filter_map(|name| state.units.get_key_value(name.as_str()))
                .filter(|(name, id)| admitted(name, **id))
                .map(|(name, id)| (name.clone(), *id))
                .collect();
            // The names came out of a set, so they are already in byte order.
            named.truncate(limit);
            named
        };
        Ok(selected)
    }

    pub(crate) fn count_work_unit_status(
        &mut self,
        spec: SpecId,
        now: Time,
    ) -> Result<BTreeMap<WorkUnitStatus, u64>> {
        let counts = self.counts(spec, now)?;
        Ok(counts_by_status(&counts).into_iter().collect())
    }

    pub(crate) fn change_priorities(
        &mut self,
        spec: SpecId,
        query: &WorkUnitQuery,
        now: Time,
        change: impl Fn(f64) -> Result<f64>,
    ) -> Result<()> {
        // Every new priority first: one that fails changes nothing.
        let mut changed = Vec::new();
        for (_, id) in self.select(spec, query, now)? {
            changed.push((id, change(self.unit(id)?.meta.priority)?));
        }
        for (id, priority) in changed {
            self.reindex(id, now, |st| {
                st.unit_mut(id)?.meta.priority = priority;
                Ok(())
            })?;
        }
        Ok(())
    }

    /// Deletes the selected units; answers their names (for the change feed).
    pub(crate) fn delete_work_units(
        &mut self,
        spec: SpecId,
        query: &WorkUnitQuery,
        now: Time,
    ) -> Result<Vec<Arc<str>>> {
        let selected = self.select(spec, query, now)?;
        for (name, id) in &selected {
            if let Some(class) = self.class(*id) {
                let spec = self.spec_mut(spec)?;
                spec.index.remove(&class);
                spec.units.remove(name);
            }
            self.remove_unit(*id);
        }
        Ok(selected.into_iter().map(|(name, _)| name).collect())
    }

    // ----- names, for the change feed ------------------------------------------

    /// The name of a live namespace.
    pub(crate) fn namespace_name(&self, id: NamespaceId) -> Option<&str> {
        self.namespaces.get(&id).map(|ns| ns.name.as_str())
    }

    /// The namespace and spec names of a live spec.
    pub(crate) fn spec_path(&self, id: SpecId) -> Option<(&str, &str)> {
        let spec = self.specs.get(&id)?;
        Some((self.namespace_name(spec.namespace)?, spec.name.as_str()))
    }

    /// The namespace and worker names of a live worker.
    pub(crate) fn worker_path(&self, id: WorkerId) -> Option<(&str, &str)> {
        let worker = self.workers.get(&id)?;
        Some((self.namespace_name(worker.namespace)?, &worker.name))
    }

    // ----- work units ---------------------------------------------------------

    pub(crate) fn unit_data(&self, id: UnitId) -> Result<DataMap> {
        let unit = self.unit(id)?;
        match unit.active.and_then(|a| self.attempts.get(&a)) {
            Some(attempt) => Ok(attempt.data.clone()),
            None => Ok(unit.data.clone()),
        }
    }

    pub(crate) fn unit_status(&mut self, id: UnitId, now: Time) -> Result<WorkUnitStatus> {
        self.expire_spec(self.unit(id)?.spec, now)?;
        self.unit_status_at(id, now)
    }

    pub(crate) fn unit_meta(&self, id: UnitId) -> Result<WorkUnitMeta> {
        Ok(self.unit(id)?.meta)
    }

    pub(crate) fn set_unit_meta(
        &mut self,
        id: UnitId,
        now: Time,
        change: impl FnOnce(&mut WorkUnitMeta),
    ) -> Result<()> {
        self.reindex(id, now, |st| {
            change(&mut st.unit_mut(id)?.meta);
            Ok(())
        })
    }

    pub(crate) fn active_attempt(&mut self, id: UnitId, now: Time) -> Result<Option<AttemptId>> {
        self.expire_spec(self.unit(id)?.spec, now)?;
        Ok(self.unit(id)?.active)
    }

    pub(crate) fn clear_active_attempt(&mut self, id: UnitId, now: Time) -> Result<()> {
        self.reindex(id, now, |st| {
            st.unit_mut(id)?.active = None;
            Ok(())
        })
    }

    pub(crate) fn unit_attempts(&self, id: UnitId) -> Result<Vec<AttemptId>> {
        Ok(self.unit(id)?.attempts.clone())
    }

    // ----- workers --------------------------------------------------------------

    pub(crate) fn parent(&self, id: WorkerId) -> Result<Option<WorkerId>> {
        Ok(self.worker(id)?.parent)
    }

    pub(crate) fn set_parent(&mut self, id: WorkerId, parent: Option<WorkerId>) -> Result<()> {
        if let Some(p) = parent {
            self.worker(p)?;
        }
        let old = std::mem::replace(&mut self.worker_mut(id)?.parent, parent);
        if let Some(old) = old.and_then(|o| self.workers.get_mut(&o)) {
            old.children.remove(&id);
        }
        if let Some(new) = parent {
            self.worker_mut(new)?.children.insert(id);
        }
        Ok(())
    }

    pub(crate) fn children(&self, id: WorkerId) -> Result<Vec<WorkerId>> {
        Ok(self.worker(id)?.children.iter().copied().collect())
    }

    pub(crate) fn worker_active(&self, id: WorkerId) -> Result<bool> {
        Ok(self.worker(id)?.active)
    }

    pub(crate) fn deactivate(&mut self, id: WorkerId) -> Result<()> {
        self.worker_mut(id)?.active = false;
        Ok(())
    }

    pub(crate) fn worker_mode(&self, id: WorkerId) -> Result<String> {
        Ok(self.worker(id)?.mode.clone())
    }

    pub(crate) fn worker_data(&self, id: WorkerId) -> Result<DataMap> {
        Ok(self.worker(id)?.data.clone())
    }

    pub(crate) fn worker_expiration(&self, id: WorkerId) -> Result<Time> {
        Ok(self.worker(id)?.expiration)
    }

    pub(crate) fn worker_last_update(&self, id: WorkerId) -> Result<Time> {
        Ok(self.worker(id)?.last_update)
    }

    pub(crate) fn update_worker(
        &mut self,
        id: WorkerId,
        data: DataMap,
        now: Time,
        expiration: Time,
        mode: &str,
    ) -> Result<()> {
        let worker = self.worker_mut(id)?;
        worker.active = true;
        worker.data = data;
        worker.last_update = now;
        worker.expiration = expiration;
        worker.mode = mode.to_string();
        Ok(())
    }

    pub(crate) fn active_attempts(&self, id: WorkerId) -> Result<Vec<AttemptId>> {
        Ok(self.worker(id)?.active_attempts.iter().copied().collect())
    }

    pub(crate) fn all_attempts(&self, id: WorkerId) -> Result<Vec<AttemptId>> {
        Ok(self.worker(id)?.all_attempts.iter().copied().collect())
    }

    pub(crate) fn child_attempts(&self, id: WorkerId) -> Result<Vec<AttemptId>> {
        let worker = self.worker(id)?;
        Ok(worker
            .children
            .iter()
            .filter_map(|c| self.workers.get(c))
            .flat_map(|c| c.active_attempts.iter().copied())
            .collect())
    }

    /// Creates an attempt of `unit` for `worker`, superseding any
    /// previous active attempt.
    fn create_attempt(
        &mut self,
        worker: WorkerId,
        unit: UnitId,
        expiration: Time,
        now: Time,
    ) -> Result<AttemptId> {
        let worker_name = self.worker(worker)?.name.clone();
        let id = AttemptId(self.next_id());
        self.reindex(unit, now, |st| {
            let state = st.unit_mut(unit)?;
            state.active = Some(id);
            state.attempts.push(id);
            let data = state.data.clone();
            st.attempts.insert(
                id,
                AttemptState {
                    unit,
                    worker,
                    worker_name,
                    status: AttemptStatus::Pending,
                    data,
                    start: now,
                    end: None,
                    expiration,
                },
            );
            let worker = st.worker_mut(worker)?;
            worker.active_attempts.insert(id);
            worker.all_attempts.insert(id);
            Ok(())
        })?;
        Ok(id)
    }

    pub(crate) fn make_attempt(
        &mut self,
        worker: WorkerId,
        unit: UnitId,
        lifetime: Duration,
        now: Time,
    ) -> Result<AttemptId> {
        self.unit(unit)?;
        let expiration = checked_add(now, rules::make_attempt_lifetime(lifetime))?;
        self.create_attempt(worker, unit, expiration, now)
    }

    /// Hands out work.
    pub(crate) fn request_attempts(
        &mut self,
        worker: WorkerId,
        request: &AttemptRequest,
        now: Time,
    ) -> Result<Vec<AttemptId>> {
        let ns = self.worker(worker)?.namespace;
        let expiration = checked_add(now, request.effective_lifetime())?;
        self.expire_namespace(ns, now)?;
        let mut metas = BTreeMap::new();
        for (name, spec) in &self.ns(ns)?.specs {
            let state = self.spec(*spec)?;
            let wanted = request.work_specs.is_empty() || request.work_specs.contains(name);
            let runtime_ok =
                request.runtimes.is_empty() || request.runtimes.contains(&state.meta.runtime);
            if wanted && runtime_ok {
                metas.insert(name.clone(), counted_meta(state));
            }
        }
        let Some(chosen) = rules::schedule(&metas, now, request.available_gb) else {
            return Ok(Vec::new());
        };
        let (Some(meta), Some(spec)) = (
            metas.remove(&chosen),
            self.ns(ns)?.specs.get(&chosen).copied(),
        ) else {
            return Ok(Vec::new());
        };
        let count =
            usize::try_from(rules::attempt_count(request.number_of_work_units, &meta)).unwrap_or(0);
        let continuous = rules::can_start_continuous(&meta, now);
        let mut created_any = false;
        loop {
            let units: Vec<UnitId> = self.spec(spec)?.index.ready().take(count).collect();
            let mut attempts = Vec::with_capacity(units.len());
            for unit in units {
                attempts.push(self.create_attempt(worker, unit, expiration, now)?);
            }
            if attempts.is_empty() && !created_any && continuous {
                let unit = self.continuous_unit(spec, &meta, now)?;
                attempts.push(self.create_attempt(worker, unit, expiration, now)?);
            }
            if attempts.is_empty() {
                return Ok(attempts);
            }
            created_any = true;
            if meta.max_retries <= 0 {
                return Ok(attempts);
            }
            let max_retries = usize::try_from(meta.max_retries).unwrap_or(usize::MAX);
            let mut survivors = Vec::with_capacity(attempts.len());
            for attempt in attempts {
                let unit = self.attempt(attempt)?.unit;
                if self.unit(unit)?.attempts.len() > max_retries {
                    self.reindex(unit, now, |st| {
                        st.complete(
                            attempt,
                            AttemptStatus::Failed,
                            Some(rules::too_many_retries_data()),
                            now,
                        )
                    })?;
                } else {
                    survivors.push(attempt);
                }
            }
            if !survivors.is_empty() {
                return Ok(survivors);
            }
        }
    }

    /// The unit a continuous spec generates now, existing or new.
    fn continuous_unit(&mut self, spec: SpecId, meta: &WorkSpecMeta, now: Time) -> Result<UnitId> {
        let next = rules::limits::next_continuous(now, meta.interval);
        let name = rules::continuous_unit_name(now);
        let existing = self.spec(spec)?.units.get(name.as_str()).copied();
        let unit = match existing {
            Some(unit) => unit,
            None => {
                self.add_work_unit(spec, &name, DataMap::new(), WorkUnitMeta::default(), now)?
            }
        };
        self.spec_mut(spec)?.meta.next_continuous = Some(next);
        Ok(unit)
    }

    // ----- attempts -------------------------------------------------------------

    /// Ends attempt `id` with `status`: sets the status, end time and data
    /// (`None` keeps the old data) and takes it off the worker's active
    /// list. The caller handles the unit's index.
    fn complete(
        &mut self,
        id: AttemptId,
        status: AttemptStatus,
        data: Option<DataMap>,
        now: Time,
    ) -> Result<()> {
        let attempt = self.attempt_mut(id)?;
        attempt.status = status;
        attempt.end = Some(now);
        if let Some(data) = data {
            attempt.data = data;
        }
        let worker = attempt.worker;
        if let Some(worker) = self.workers.get_mut(&worker) {
            worker.active_attempts.remove(&id);
        }
        Ok(())
    }

    fn is_active(&self, id: AttemptId) -> Result<bool> {
        let unit = self.attempt(id)?.unit;
        Ok(self.unit(unit)?.active == Some(id))
    }

    /// The attempt's unit, or `Gone` if the attempt or its unit is gone.
    fn attempt_unit(&self, id: AttemptId) -> Result<UnitId> {
        let unit = self.attempt(id)?.unit;
        self.unit(unit)?;
        Ok(unit)
    }

    pub(crate) fn attempt_status(&mut self, id: AttemptId, now: Time) -> Result<AttemptStatus> {
        self.expire_for(id, now)?;
        Ok(self.attempt(id)?.status)
    }

    fn expire_for(&mut self, id: AttemptId, now: Time) -> Result<()> {
        let unit = self.attempt_unit(id)?;
        self.expire_spec(self.unit(unit)?.spec, now)
    }

    pub(crate) fn attempt_data(&self, id: AttemptId) -> Result<DataMap> {
        Ok(self.attempt(id)?.data.clone())
    }

    pub(crate) fn attempt_start(&self, id: AttemptId) -> Result<Time> {
        Ok(self.attempt(id)?.start)
    }

    pub(crate) fn attempt_end(&mut self, id: AttemptId, now: Time) -> Result<Option<Time>> {
        self.expire_for(id, now)?;
        Ok(self.attempt(id)?.end)
    }

    pub(crate) fn attempt_expiration(&mut self, id: AttemptId, now: Time) -> Result<Time> {
        self.expire_for(id, now)?;
        Ok(self.attempt(id)?.expiration)
    }

    pub(crate) fn renew(
        &mut self,
        id: AttemptId,
        extend: Duration,
        data: Option<DataMap>,
        now: Time,
    ) -> Result<()> {
        // Bad input is refused before the attempt is looked at, as the
        // PostgreSQL backend does.
        let expiration = checked_add(now, extend)?;
        let unit = self.attempt_unit(id)?;
        let status = self.attempt(id)?.status;
        if !matches!(status, AttemptStatus::Pending | AttemptStatus::Expired) {
            return Err(Error::NotPending);
        }
        if !self.is_active(id)? {
            self.complete(id, AttemptStatus::Expired, data, now)?;
            return Err(Error::LostLease);
        }
        self.reindex(unit, now, |st| {
            let attempt = st.attempt_mut(id)?;
            attempt.expiration = expiration;
            attempt.status = AttemptStatus::Pending;
            if let Some(data) = data {
                attempt.data = data;
            }
            Ok(())
        })
    }

    pub(crate) fn expire(&mut self, id: AttemptId, data: Option<DataMap>, now: Time) -> Result<()> {
        let unit = self.attempt_unit(id)?;
        match self.attempt(id)?.status {
            AttemptStatus::Expired => Ok(()),
            AttemptStatus::Pending => self.reindex(unit, now, |st| {
                st.complete(id, AttemptStatus::Expired, data, now)?;
                st.clear_if_active(unit, id)
            }),
            _ => Err(Error::NotPending),
        }
    }

    fn clear_if_active(&mut self, unit: UnitId, attempt: AttemptId) -> Result<()> {
        let unit = self.unit_mut(unit)?;
        if unit.active == Some(attempt) {
            unit.active = None;
        }
        Ok(())
    }

    /// True if `finish`, `fail` and `retry` accept the attempt (`finish`
    /// also accepts a Failed one): Pending, or Expired and still active.
    fn is_live(&self, id: AttemptId) -> Result<bool> {
        Ok(match self.attempt(id)?.status {
            AttemptStatus::Pending => true,
            AttemptStatus::Expired => self.is_active(id)?,
            _ => false,
        })
    }

    pub(crate) fn finish(&mut self, id: AttemptId, data: Option<DataMap>, now: Time) -> Result<()> {
        let unit = self.attempt_unit(id)?;
        if !(self.is_live(id)? || self.attempt(id)?.status == AttemptStatus::Failed) {
            return Err(Error::NotPending);
        }
        self.reindex(unit, now, |st| {
            st.complete(id, AttemptStatus::Finished, data, now)
        })?;
        if self.is_active(id)? {
            self.chain(id, now)?;
        }
        Ok(())
    }

    /// Work unit chaining after `attempt` finished as the active one.
    fn chain(&mut self, attempt: AttemptId, now: Time) -> Result<()> {
        let unit = self.attempt(attempt)?.unit;
        let spec = self.spec(self.unit(unit)?.spec)?;
        let next = &spec.meta.next_work_spec_name;
        if next.is_empty() {
            return Ok(());
        }
        let Some(next_spec) = self.ns(spec.namespace)?.specs.get(next).copied() else {
            return Ok(());
        };
        for new in rules::chained_units(&self.attempt(attempt)?.data, now) {
            self.add_work_unit(next_spec, &new.name, new.data, new.meta, now)?;
        }
        Ok(())
    }

    pub(crate) fn fail(&mut self, id: AttemptId, data: Option<DataMap>, now: Time) -> Result<()> {
        let unit = self.attempt_unit(id)?;
        if !self.is_live(id)? {
            return Err(Error::NotPending);
        }
        self.reindex(unit, now, |st| {
            st.complete(id, AttemptStatus::Failed, data, now)
        })
    }

    pub(crate) fn retry(
        &mut self,
        id: AttemptId,
        data: Option<DataMap>,
        delay: Duration,
        now: Time,
    ) -> Result<()> {
        let not_before = checked_add(now, delay)?;
        let unit = self.attempt_unit(id)?;
        if !self.is_live(id)? {
            return Err(Error::NotPending);
        }
        self.reindex(unit, now, |st| {
            st.complete(id, AttemptStatus::Retryable, data, now)?;
            st.clear_if_active(unit, id)?;
            st.unit_mut(unit)?.meta.not_before = Some(not_before);
            Ok(())
        })
    }
}

/// Non-zero counts in status order.
fn counts_by_status(counts: &Counts) -> Vec<(WorkUnitStatus, u64)> {
    [
        (WorkUnitStatus::Available, counts.available),
        (WorkUnitStatus::Pending, counts.pending),
        (WorkUnitStatus::Finished, counts.finished),
        (WorkUnitStatus::Failed, counts.failed),
        (WorkUnitStatus::Delayed, counts.delayed),
    ]
    .into_iter()
    .filter(|(_, n)| *n > 0)
    .collect()
}

/// A spec's meta with its available and pending counts, as they stand
/// (the caller runs the expiry check first).
fn counted_meta(spec: &SpecState) -> WorkSpecMeta {
    let counts = spec.index.counts();
    WorkSpecMeta {
        available_count: saturating_i64(counts.available),
        pending_count: saturating_i64(counts.pending),
        ..spec.meta.clone()
    }
}

fn saturating_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}
