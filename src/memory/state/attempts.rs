//! The attempt lifecycle: expiry, renewal, finish, fail, retry, chaining.

use crate::clock::checked_add;
use crate::error::{Error, Result};
use crate::model::{AttemptStatus, DataMap, Duration, Time};
use crate::rules;

use super::*;

impl State {
    // ----- attempts -------------------------------------------------------------

    /// Ends attempt `id` with `status`: sets the status, end time and data
    /// (`None` keeps the old data) and takes it off the worker's active
    /// list. The caller handles the unit's index.
    pub(super) fn complete(
        &mut self,
        id: AttemptId,
        status: AttemptStatus,
        data: Option<DataMap>,
        now: Time,
    ) -> Result<()> {
        let data = data.as_ref().map(CompactData::encode).transpose()?;
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

    pub(super) fn is_active(&self, id: AttemptId) -> Result<bool> {
        let unit = self.attempt(id)?.unit;
        Ok(self.unit(unit)?.active == Some(id))
    }

    /// The attempt's unit, or `Gone` if the attempt or its unit is gone.
    pub(super) fn attempt_unit(&self, id: AttemptId) -> Result<UnitId> {
        let unit = self.attempt(id)?.unit;
        self.unit(unit)?;
        Ok(unit)
    }

    pub(crate) fn attempt_status(&mut self, id: AttemptId, now: Time) -> Result<AttemptStatus> {
        self.expire_for(id, now)?;
        Ok(self.attempt(id)?.status)
    }

    pub(super) fn expire_for(&mut self, id: AttemptId, now: Time) -> Result<()> {
        let unit = self.attempt_unit(id)?;
        self.expire_spec(self.unit(unit)?.spec, now)
    }

    pub(crate) fn attempt_data(&self, id: AttemptId) -> Result<DataMap> {
        self.attempt(id)?.data.decode()
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
        // A gone attempt is `Gone` before its lease is judged against the
        // time range, which depends on the clock (the crate's `# Limits`).
        let unit = self.attempt_unit(id)?;
        let expiration = checked_add(now, extend)?;
        let status = self.attempt(id)?.status;
        if !matches!(status, AttemptStatus::Pending | AttemptStatus::Expired) {
            return Err(Error::NotPending);
        }
        if !self.is_active(id)? {
            self.complete(id, AttemptStatus::Expired, data, now)?;
            return Err(Error::LostLease);
        }
        let data = data.as_ref().map(CompactData::encode).transpose()?;
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

    pub(super) fn clear_if_active(&mut self, unit: UnitId, attempt: AttemptId) -> Result<()> {
        let unit = self.unit_mut(unit)?;
        if unit.active == Some(attempt) {
            unit.active = None;
        }
        Ok(())
    }

    /// True if `finish`, `fail` and `retry` accept the attempt (`finish`
    /// also accepts a Failed one): Pending, or Expired and still active.
    pub(super) fn is_live(&self, id: AttemptId) -> Result<bool> {
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
    pub(super) fn chain(&mut self, attempt: AttemptId, now: Time) -> Result<()> {
        let unit = self.attempt(attempt)?.unit;
        let spec = self.spec(self.unit(unit)?.spec)?;
        let next = &spec.meta.next_work_spec_name;
        if next.is_empty() {
            return Ok(());
        }
        let Some(next_spec) = self.ns(spec.namespace)?.specs.get(next).copied() else {
            return Ok(());
        };
        for new in rules::chained_units(&self.attempt(attempt)?.data.decode()?, now) {
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
        let unit = self.attempt_unit(id)?;
        let not_before = checked_add(now, delay)?;
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
