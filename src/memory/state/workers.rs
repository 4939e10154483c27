//! Worker state and the worker tree.

use crate::error::Result;
use crate::model::{DataMap, Time};

use super::*;

impl State {
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
}
