//! Work spec definitions, metas, counts and summaries.

use std::collections::BTreeMap;

use crate::error::{Error, Result};
use crate::model::{DataMap, Summary, SummaryRecord, Time, WorkSpecMeta, WorkUnitStatus};
use crate::rules;

use super::*;

impl State {
    // ----- summaries --------------------------------------------------------

    pub(crate) fn summarize_spec(&mut self, id: SpecId, now: Time) -> Result<Summary> {
        let counts = self.counts(id, now)?;
        let spec = self.spec(id)?;
        let namespace = self.ns(spec.namespace)?.name.to_string();
        Ok(counts_by_status(&counts)
            .into_iter()
            .map(|(status, count)| SummaryRecord {
                namespace: namespace.clone(),
                work_spec: spec.name.to_string(),
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
        // The specs are hashed by name: sorted, every run and every backend
        // of the crate list the records alike.
        summary.sort();
        Ok(summary)
    }

    pub(crate) fn summarize_all(&mut self, now: Time) -> Result<Summary> {
        let namespaces: Vec<NamespaceId> = self.namespaces.keys().copied().collect();
        let mut summary = Summary::new();
        for ns in namespaces {
            summary.extend(self.summarize_namespace(ns, now)?);
        }
        summary.sort();
        Ok(summary)
    }

    // ----- work specs ---------------------------------------------------------

    pub(crate) fn spec_data(&self, id: SpecId) -> Result<DataMap> {
        Ok(self.spec(id)?.definition.clone())
    }

    pub(crate) fn set_spec_data(&mut self, id: SpecId, definition: DataMap) -> Result<()> {
        let parsed = rules::parse_definition(&definition)?;
        let spec = self.spec_mut(id)?;
        if *parsed.name != *spec.name {
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

    pub(crate) fn count_work_unit_status(
        &mut self,
        spec: SpecId,
        now: Time,
    ) -> Result<BTreeMap<WorkUnitStatus, u64>> {
        let counts = self.counts(spec, now)?;
        Ok(counts_by_status(&counts).into_iter().collect())
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
pub(super) fn counted_meta(spec: &SpecState) -> WorkSpecMeta {
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
