//! The state of a memory backend and every operation on it, synchronous and
//! behind the backend's one lock.
//!
//! Objects live in flat maps keyed by ids that are never reused, so a
//! handle whose id is missing is `Gone`, and a same-named object created
//! later has a new id: old handles stay dead. Deleting an object
//! removes its descendants from the maps too.
//!
//! Work units, the objects there are millions of, live in a slab instead
//! (see `slab.rs`): a unit's id holds its slot, so a handle reaches its
//! record without hashing, and each spec finds its units by name through a
//! hash table of slots (see `names.rs`).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use crate::error::{Error, ObjectKind, Result};
use crate::model::{AttemptStatus, DataMap, Time, WorkSpecMeta, WorkUnitMeta, WorkUnitStatus};
use crate::rules;

use super::compact::CompactData;
use super::index::{Counts, SpecIndex, UnitClass};
use super::slab::Slab;
use names::NameIndex;

mod attempts;
mod names;
mod namespaces;
mod scheduler;
mod specs;
#[cfg(test)]
mod tests;
mod units;
mod workers;

macro_rules! ids {
    ($($name:ident),+) => {$(
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub(crate) struct $name(pub(crate) u64);
    )+};
}
ids!(NamespaceId, SpecId, UnitId, AttemptId, WorkerId);

/// A work unit's name as the backend keeps it: inline up to 23 bytes, else
/// one shared allocation. A short name is then compared and copied where
/// the record, index key or handle holding it already is, with no read of
/// memory elsewhere: at a million units, each such read is a cache miss.
pub(crate) type UnitName = smol_str::SmolStr;

#[derive(Debug)]
struct NamespaceState {
    /// Shared with the handles of its workers.
    name: Arc<str>,
    specs: HashMap<String, SpecId>,
    workers: HashMap<String, WorkerId>,
}

#[derive(Debug)]
struct SpecState {
    namespace: NamespaceId,
    /// Shared with the handles of its units.
    name: Arc<str>,
    definition: DataMap,
    meta: WorkSpecMeta,
    units: NameIndex,
    index: SpecIndex,
}

#[derive(Debug)]
struct UnitState {
    spec: SpecId,
    name: UnitName,
    data: CompactData,
    meta: WorkUnitMeta,
    active: Option<AttemptId>,
    attempts: Vec<AttemptId>,
}

#[derive(Debug)]
struct AttemptState {
    unit: UnitId,
    worker: WorkerId,
    /// Kept so building the attempt's handle reads no worker state.
    worker_name: ScopedName,
    status: AttemptStatus,
    data: CompactData,
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
    pub(crate) worker_name: ScopedName,
}

/// A spec's or worker's namespace and own name, for building its handle.
#[derive(Debug, Clone)]
pub(crate) struct ScopedName {
    pub(crate) namespace: Arc<str>,
    pub(crate) name: Arc<str>,
}

/// Where a unit stands, for building its handle.
#[derive(Debug, Clone)]
pub(crate) struct UnitParts {
    pub(crate) id: UnitId,
    pub(crate) name: UnitName,
    pub(crate) spec: SpecId,
    pub(crate) spec_name: ScopedName,
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

/// A map keyed by id. Ids are small integers no caller chooses, so a fast
/// hash suffices.
type IdMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

/// Everything a memory backend stores.
#[derive(Debug, Default)]
pub(crate) struct State {
    next_id: u64,
    namespace_names: HashMap<String, NamespaceId>,
    namespaces: IdMap<NamespaceId, NamespaceState>,
    specs: IdMap<SpecId, SpecState>,
    units: Slab<UnitState>,
    attempts: IdMap<AttemptId, AttemptState>,
    workers: IdMap<WorkerId, WorkerState>,
}

/// Lookups by id that answer `Gone` for an id that is not (or no longer)
/// stored: `$get` and `$get_mut` over the map `$map`.
macro_rules! lookups {
    ($($get:ident, $get_mut:ident: $map:ident[$id:ty] => $state:ty, $kind:ident;)+) => {
        impl State {$(
            fn $get(&self, id: $id) -> Result<&$state> {
                self.$map.get(&id).ok_or(Error::Gone { kind: ObjectKind::$kind })
            }

            fn $get_mut(&mut self, id: $id) -> Result<&mut $state> {
                self.$map.get_mut(&id).ok_or(Error::Gone { kind: ObjectKind::$kind })
            }
        )+}
    };
}
lookups! {
    ns, ns_mut: namespaces[NamespaceId] => NamespaceState, Namespace;
    spec, spec_mut: specs[SpecId] => SpecState, WorkSpec;
    attempt, attempt_mut: attempts[AttemptId] => AttemptState, Attempt;
    worker, worker_mut: workers[WorkerId] => WorkerState, Worker;
}

impl State {
    fn unit(&self, id: UnitId) -> Result<&UnitState> {
        self.units.get(id.0).ok_or(Error::Gone {
            kind: ObjectKind::WorkUnit,
        })
    }

    fn unit_mut(&mut self, id: UnitId) -> Result<&mut UnitState> {
        self.units.get_mut(id.0).ok_or(Error::Gone {
            kind: ObjectKind::WorkUnit,
        })
    }

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

    /// A unit's name, as its record holds it.
    pub(crate) fn unit_name(&self, id: UnitId) -> Result<UnitName> {
        Ok(self.unit(id)?.name.clone())
    }

    pub(crate) fn unit_parts(&self, id: UnitId) -> Result<UnitParts> {
        let unit = self.unit(id)?;
        Ok(UnitParts {
            id,
            name: unit.name.clone(),
            spec: unit.spec,
            spec_name: self.spec_name(unit.spec)?,
        })
    }

    pub(crate) fn spec_name(&self, id: SpecId) -> Result<ScopedName> {
        let spec = self.spec(id)?;
        self.scoped(spec.namespace, &spec.name, ObjectKind::WorkSpec)
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

    pub(crate) fn worker_name(&self, id: WorkerId) -> Result<ScopedName> {
        let worker = self.worker(id)?;
        self.scoped(worker.namespace, &worker.name, ObjectKind::Worker)
    }

    /// `name` in namespace `ns`; `Gone` (about a `kind`) if `ns` is.
    fn scoped(&self, ns: NamespaceId, name: &Arc<str>, kind: ObjectKind) -> Result<ScopedName> {
        let namespace = self.namespaces.get(&ns).ok_or(Error::Gone { kind })?;
        Ok(ScopedName {
            namespace: namespace.name.clone(),
            name: name.clone(),
        })
    }

    // ----- the unit index -------------------------------------------------

    fn class(&self, id: UnitId) -> Option<UnitClass> {
        let unit = self.units.get(id.0)?;
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
                spec.index.insert(after, now);
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

    fn remove_spec(&mut self, id: SpecId) {
        if let Some(spec) = self.specs.remove(&id) {
            let units: Vec<UnitId> = spec.units.ids(&self.units).collect();
            for unit in units {
                self.remove_unit(unit);
            }
        }
    }

    /// Removes a unit and its attempts (the spec's maps are the caller's).
    fn remove_unit(&mut self, id: UnitId) {
        let Some(unit) = self.units.remove(id.0) else {
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
    /// may live in other namespaces), and its attempts: a unit whose active
    /// attempt goes has none, as after `clear_active_attempt`. Answers the
    /// children still live that it unlinked.
    fn remove_worker(&mut self, id: WorkerId, now: Time) -> Vec<WorkerId> {
        let Some(worker) = self.workers.remove(&id) else {
            return Vec::new();
        };
        if let Some(parent) = worker.parent.and_then(|p| self.workers.get_mut(&p)) {
            parent.children.remove(&id);
        }
        let mut orphans = Vec::new();
        for child in worker.children {
            if let Some(state) = self.workers.get_mut(&child) {
                state.parent = None;
                orphans.push(child);
            }
        }
        // By unit, so that a unit with many of them is unlinked in one
        // pass over its attempts, not one per attempt.
        let mut by_unit: BTreeMap<UnitId, Vec<AttemptId>> = BTreeMap::new();
        for attempt in worker.all_attempts {
            if let Some(a) = self.attempts.get(&attempt) {
                // In id order: `all_attempts` is ordered.
                by_unit.entry(a.unit).or_default().push(attempt);
            }
        }
        for (unit, gone) in by_unit {
            let going = |a: &AttemptId| gone.binary_search(a).is_ok();
            let detached = self.reindex(unit, now, |st| {
                for attempt in &gone {
                    st.attempts.remove(attempt);
                }
                let unit = st.unit_mut(unit)?;
                unit.attempts.retain(|a| !going(a));
                if unit.active.as_ref().is_some_and(going) {
                    unit.active = None;
                }
                Ok(())
            });
            // Units outlive their attempts; were one missing, its attempts
            // still go.
            if detached.is_err() {
                for attempt in &gone {
                    self.attempts.remove(attempt);
                }
            }
        }
        orphans
    }

    // ----- names, for the change feed ------------------------------------------

    /// The name of a live namespace.
    pub(crate) fn namespace_name(&self, id: NamespaceId) -> Option<&str> {
        self.namespaces.get(&id).map(|ns| &*ns.name)
    }

    /// The namespace and spec names of a live spec.
    pub(crate) fn spec_path(&self, id: SpecId) -> Option<(String, String)> {
        let spec = self.specs.get(&id)?;
        Some((
            self.namespace_name(spec.namespace)?.into(),
            spec.name.to_string(),
        ))
    }

    /// The namespace and worker names of a live worker.
    pub(crate) fn worker_path(&self, id: WorkerId) -> Option<(String, String)> {
        let worker = self.workers.get(&id)?;
        Some((
            self.namespace_name(worker.namespace)?.into(),
            worker.name.to_string(),
        ))
    }
}
