//! Creating attempts: by hand and by the scheduler.

use std::collections::BTreeMap;

use crate::clock::checked_add;
use crate::error::Result;
use crate::model::{
    AttemptRequest, AttemptStatus, DataMap, Duration, Time, WorkSpecMeta, WorkUnitMeta,
};
use crate::rules;

use super::specs::counted_meta;
use super::*;

impl State {
    /// Creates an attempt of `unit` for `worker`, superseding any
    /// previous active attempt.
    pub(super) fn create_attempt(
        &mut self,
        worker: WorkerId,
        unit: UnitId,
        expiration: Time,
        now: Time,
    ) -> Result<AttemptId> {
        let worker_name = self.worker_name(worker)?;
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
        self.worker(worker)?;
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
        let choice = rules::SpecChoice::of(request);
        for (name, spec) in &self.ns(ns)?.specs {
            let state = self.spec(*spec)?;
            if choice.admits(name, &state.meta.runtime) {
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
    pub(super) fn continuous_unit(
        &mut self,
        spec: SpecId,
        meta: &WorkSpecMeta,
        now: Time,
    ) -> Result<UnitId> {
        let next = rules::limits::next_continuous(now, meta.interval);
        let name = rules::continuous_unit_name(now);
        let existing = self.spec(spec)?.units.get(&self.units, &name);
        let unit = match existing {
            Some(unit) => unit,
            None => {
                self.add_work_unit(spec, &name, DataMap::new(), WorkUnitMeta::default(), now)?
            }
        };
        self.spec_mut(spec)?.meta.next_continuous = Some(next);
        Ok(unit)
    }
}
