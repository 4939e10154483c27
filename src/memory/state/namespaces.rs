//! Namespaces and the specs and workers they name.

use std::collections::{BTreeSet, HashMap};

use crate::clock::checked_add;
use crate::error::{Error, Result};
use crate::model::{DataMap, Time, DEFAULT_LIFETIME};
use crate::rules;

use super::*;

impl State {
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
                name: name.into(),
                specs: HashMap::new(),
                workers: HashMap::new(),
            },
        );
        id
    }

    pub(crate) fn namespaces(&self) -> Vec<(String, NamespaceId)> {
        self.namespaces
            .iter()
            .map(|(id, ns)| (ns.name.to_string(), *id))
            .collect()
    }

    /// Removes a namespace and everything in it; its workers' attempts on
    /// other namespaces' units go too. Answers the workers of other
    /// namespaces that lost their parent, by namespace and worker name.
    pub(crate) fn destroy_namespace(
        &mut self,
        id: NamespaceId,
        now: Time,
    ) -> Vec<(String, String)> {
        let Some(ns) = self.namespaces.remove(&id) else {
            return Vec::new();
        };
        self.namespace_names.remove(&*ns.name);
        for spec in ns.specs.into_values() {
            self.remove_spec(spec);
        }
        let mut orphans = Vec::new();
        for worker in ns.workers.into_values() {
            orphans.extend(self.remove_worker(worker, now));
        }
        orphans
            .into_iter()
            .filter_map(|child| self.worker_path(child))
            .collect()
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
                name: parsed.name.as_str().into(),
                definition,
                meta: parsed.meta,
                units: NameIndex::default(),
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
}
