//! Adding, selecting, changing and deleting work units.

use std::collections::btree_map::Entry;
use std::collections::BTreeSet;
use std::ops::Bound;
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::model::{DataMap, NewWorkUnit, Time, WorkUnitMeta, WorkUnitQuery, WorkUnitStatus};

use super::super::index::STATUSES;
use super::*;

impl State {
    pub(crate) fn add_work_unit(
        &mut self,
        spec: SpecId,
        name: &str,
        data: DataMap,
        meta: WorkUnitMeta,
        now: Time,
    ) -> Result<UnitId> {
        let data = CompactData::encode(&data)?;
        Ok(self.upsert_unit(spec, name, data, meta, now)?.0)
    }

    /// Adds or replaces every unit of a batch in order, as `add_work_unit`
    /// once per entry would. Once the spec is found nothing can fail (the
    /// entries were encoded before), so the batch is stored whole.
    pub(crate) fn add_work_units(
        &mut self,
        spec: SpecId,
        units: Vec<NewWorkUnit>,
        now: Time,
    ) -> Result<Vec<UnitParts>> {
        let spec_name = self.spec(spec)?.name.clone();
        let mut buffer = Vec::new();
        let encoded = units
            .into_iter()
            .map(|unit| {
                let data = CompactData::encode_with(&unit.data, &mut buffer)?;
                Ok((unit.name, data, unit.meta))
            })
            .collect::<Result<Vec<_>>>()?;
        self.units.reserve(encoded.len());
        encoded
            .into_iter()
            .map(|(name, data, meta)| {
                let (id, name) = self.upsert_unit(spec, &name, data, meta, now)?;
                Ok(UnitParts {
                    id,
                    name,
                    spec,
                    spec_name: spec_name.clone(),
                })
            })
            .collect()
    }

    /// The upsert behind both adds: answers the unit's id and shared name.
    /// The spec's name map is searched once, for the new and the existing.
    fn upsert_unit(
        &mut self,
        spec: SpecId,
        name: &str,
        data: CompactData,
        meta: WorkUnitMeta,
        now: Time,
    ) -> Result<(UnitId, Arc<str>)> {
        // The next id, taken only if the name is new.
        let id = UnitId(self.next_id + 1);
        let spec_state = self.spec_mut(spec)?;
        let name = match spec_state.units.entry(Arc::from(name)) {
            Entry::Occupied(entry) => {
                let (name, id) = (entry.key().clone(), *entry.get());
                return self.replace_unit(id, name, data, meta, now);
            }
            Entry::Vacant(entry) => {
                let name = entry.key().clone();
                entry.insert(id);
                name
            }
        };
        let class = UnitClass {
            id,
            name: name.clone(),
            priority: meta.priority,
            not_before: meta.not_before,
            active: None,
        };
        spec_state.index.insert(&class, now);
        self.next_id = id.0;
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
        Ok((id, name))
    }

    /// A new data and meta for an existing unit, which becomes available
    /// again unless it is pending.
    fn replace_unit(
        &mut self,
        id: UnitId,
        name: Arc<str>,
        data: CompactData,
        meta: WorkUnitMeta,
        now: Time,
    ) -> Result<(UnitId, Arc<str>)> {
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
        Ok((id, name))
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
        let start = match query.previous_name.as_str() {
            "" => Bound::Unbounded,
            previous => Bound::Excluded(previous),
        };
        let selected = if query.names.is_empty() && query.filters_status() {
            // The first `limit` names of each admitted status, merged: the
            // page reads only what it may return.
            let mut page = BTreeSet::new();
            for status in STATUSES.into_iter().filter(|s| query.admits_status(*s)) {
                page.extend(state.index.names(status, start).take(limit));
            }
            page.into_iter()
                .take(limit)
                .filter_map(|name| state.units.get_key_value(&**name))
                .map(|(name, id)| (name.clone(), *id))
                .collect()
        } else if query.names.is_empty() {
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

    // ----- work units ---------------------------------------------------------

    pub(crate) fn unit_data(&self, id: UnitId) -> Result<DataMap> {
        let unit = self.unit(id)?;
        match unit.active.and_then(|a| self.attempts.get(&a)) {
            Some(attempt) => attempt.data.decode(),
            None => unit.data.decode(),
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
}
