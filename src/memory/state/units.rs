//! Adding, selecting, changing and deleting work units.

use std::collections::{BTreeSet, HashSet};
use std::ops::Bound;

use crate::error::{Error, Result};
use crate::model::{DataMap, NewWorkUnit, Time, WorkUnitMeta, WorkUnitQuery, WorkUnitStatus};

use super::super::index::{StatusSet, STATUSES};
use super::names::NameEntry;
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
    /// once per entry would; answers each entry's unit and name.
    /// Once the spec is found nothing can fail (the entries were encoded
    /// before), so the batch is stored whole.
    pub(crate) fn add_work_units(
        &mut self,
        spec: SpecId,
        units: Vec<NewWorkUnit>,
        now: Time,
    ) -> Result<Vec<(UnitId, UnitName)>> {
        let mut buffer = Vec::new();
        let encoded = units
            .into_iter()
            .map(|unit| {
                let data = CompactData::encode_with(&unit.data, &mut buffer)?;
                Ok((unit.name, data, unit.meta))
            })
            .collect::<Result<Vec<_>>>()?;
        self.spec_mut(spec)?.units.reserve(encoded.len());
        self.units.reserve(encoded.len());
        encoded
            .into_iter()
            .map(|(name, data, meta)| self.upsert_unit(spec, &name, data, meta, now))
            .collect()
    }

    /// The upsert behind both adds: answers the unit's id and name.
    fn upsert_unit(
        &mut self,
        spec: SpecId,
        name: &str,
        data: CompactData,
        meta: WorkUnitMeta,
        now: Time,
    ) -> Result<(UnitId, UnitName)> {
        let spec_state = self.specs.get_mut(&spec).ok_or(Error::Gone {
            kind: ObjectKind::WorkSpec,
        })?;
        let vacant = match spec_state.units.entry(&self.units, name) {
            NameEntry::Vacant(vacant) => vacant,
            NameEntry::Filed(id) => {
                let name = self.unit(id)?.name.clone();
                return self.replace_unit(id, name, data, meta, now);
            }
        };
        let name = UnitName::new(name);
        let id = UnitId(
            self.units
                .insert(UnitState {
                    spec,
                    name: name.clone(),
                    data,
                    meta,
                    active: None,
                    attempts: Vec::new(),
                })
                .map_err(Error::backend)?,
        );
        spec_state.index.insert(
            UnitClass {
                id,
                name: name.clone(),
                priority: meta.priority,
                not_before: meta.not_before,
                active: None,
            },
            now,
        );
        // Last: the write to the table is usually a cache miss, which the
        // record and index writes above would otherwise wait for.
        vacant.insert(id);
        Ok((id, name))
    }

    /// A new data and meta for an existing unit, which becomes available
    /// again unless it is pending.
    fn replace_unit(
        &mut self,
        id: UnitId,
        name: UnitName,
        data: CompactData,
        meta: WorkUnitMeta,
        now: Time,
    ) -> Result<(UnitId, UnitName)> {
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
            .get(&self.units, name)
            .ok_or_else(|| Error::NoSuchWorkUnit { name: name.into() })
    }

    /// The units a query selects, in ascending name order, after expiry.
    /// Without names, the page is read from the per-status name sets of
    /// the statuses it admits, merged: it reads only what it may return.
    pub(crate) fn select(
        &mut self,
        spec: SpecId,
        query: &WorkUnitQuery,
        now: Time,
    ) -> Result<Vec<(UnitName, UnitId)>> {
        self.expire_spec(spec, now)?;
        self.selected(spec, query, now, &HashSet::new())
    }

    /// The units whose active attempt an expiry check at `now` would
    /// expire (pending, past its deadline).
    pub(super) fn overdue(&self, spec: SpecId, now: Time) -> Result<HashSet<UnitId>> {
        Ok(self
            .spec(spec)?
            .index
            .expired(now)
            .into_iter()
            .filter_map(|attempt| self.attempts.get(&attempt).map(|a| a.unit))
            .collect())
    }

    /// [`select`](Self::select)'s answer as an expiry check at `now` leaves
    /// the spec, where the units in `overdue` have not been expired yet
    /// (they count as without an active attempt) and the index is refiled
    /// at `now`.
    pub(super) fn selected(
        &self,
        spec: SpecId,
        query: &WorkUnitQuery,
        now: Time,
        overdue: &HashSet<UnitId>,
    ) -> Result<Vec<(UnitName, UnitId)>> {
        let state = self.spec(spec)?;
        let limit = query.limit().unwrap_or(usize::MAX);
        let with_name = |id: UnitId| self.units.get(id.0).map(|unit| (unit.name.clone(), id));
        // Decided once per status, not per unit: a caller's status list
        // may be long.
        let admitted = StatusSet::of(query);
        let admits = |id: UnitId| {
            let status = if overdue.contains(&id) {
                self.unit(id)
                    .map(|unit| rules::unit_status(None, unit.meta.not_before, now))
            } else {
                self.unit_status_at(id, now)
            };
            status.is_ok_and(|s| admitted.contains(s))
        };
        let after_previous =
            |name: &str| query.previous_name.is_empty() || name > query.previous_name.as_str();
        let selected = if query.names.is_empty() {
            let start = match query.previous_name.as_str() {
                "" => Bound::Unbounded,
                previous => Bound::Excluded(previous),
            };
            let statuses = STATUSES.into_iter().filter(|s| admitted.contains(*s));
            let mut page: Vec<_> = state
                .index
                .names(statuses, start)
                .filter_map(|name| state.units.get(&self.units, name))
                .filter(|id| !overdue.contains(id))
                .take(limit)
                .filter_map(with_name)
                .collect();
            if !overdue.is_empty() {
                // Filed as pending still: merged in by the status they
                // would have.
                page.extend(
                    overdue
                        .iter()
                        .filter(|id| admits(**id))
                        .filter_map(|id| with_name(*id))
                        .filter(|(name, _)| after_previous(name)),
                );
                page.sort_unstable_by(|a, b| a.0.cmp(&b.0));
                page.truncate(limit);
            }
            page
        } else {
            // A set, so the names come out once each and in byte order.
            query
                .names
                .iter()
                .map(String::as_str)
                .filter(|name| after_previous(name))
                .collect::<BTreeSet<&str>>()
                .into_iter()
                .filter_map(|name| state.units.get(&self.units, name))
                .filter(|id| admitted.is_all() || admits(*id))
                .take(limit)
                .filter_map(with_name)
                .collect()
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
        // Every new priority first: one that fails changes nothing, not
        // even the expiry the selection runs, so with attempts to expire
        // the units are first selected as that expiry will leave them.
        let overdue = self.overdue(spec, now)?;
        if !overdue.is_empty() {
            self.spec_mut(spec)?.index.refile(now);
            for (_, id) in self.selected(spec, query, now, &overdue)? {
                change(self.unit(id)?.meta.priority)?;
            }
        }
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
    ) -> Result<Vec<UnitName>> {
        let selected = self.select(spec, query, now)?;
        for (name, id) in &selected {
            if let Some(class) = self.class(*id) {
                let spec = self.specs.get_mut(&spec).ok_or(Error::Gone {
                    kind: ObjectKind::WorkSpec,
                })?;
                spec.index.remove(&class);
                spec.units.remove(*id, name);
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
