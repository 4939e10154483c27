//! The cached work spec handle.

use std::any::Any;
use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use futures::FutureExt;

use super::changes::Path;
use super::handle::{kind_tables, Cached, Kind};
use super::namespace::CachedNamespace;
use super::recover::{forward, run};
use super::shared::Caches;
use super::stats::{Counters, KindCounters};
use super::store::Store;
use super::work_unit::{CachedWorkUnit, WorkUnitKind};
use crate::api::{WorkSpec, WorkUnitRef};
use crate::error::{ObjectKind, Result};
use crate::model::{
    DataMap, NewWorkUnit, Summary, WorkSpecMeta, WorkUnitMeta, WorkUnitQuery, WorkUnitStatus,
};
use crate::rules::{self, limits};

/// The work spec kind of [`Cached`] handle.
pub(crate) enum WorkSpecKind {}

/// A work spec of a [`Cache`](super::Cache): the spec that now has this name
/// in its namespace.
pub(crate) type CachedWorkSpec = Cached<WorkSpecKind>;

impl Kind for WorkSpecKind {
    kind_tables!(WorkSpec, work_specs, Arc<CachedNamespace>, has_children: true);

    fn path(handle: &CachedWorkSpec) -> Path<'_> {
        handle.parent.path().child(handle.name())
    }

    async fn resolve(handle: &CachedWorkSpec, _create: bool) -> Result<Arc<CachedWorkSpec>> {
        // Never through get-or-create: a spec must not bring its namespace back.
        let namespace = handle.parent.current().await?;
        namespace.lookup_spec(handle.name(), false).await
    }
}

impl CachedWorkSpec {
    /// `work_unit(name)`, cached.
    pub(super) async fn lookup_unit(&self, name: &str) -> Result<Arc<CachedWorkUnit>> {
        if let Some(hit) = self.cached::<WorkUnitKind>(name) {
            return Ok(hit);
        }
        Box::pin(self.load_unit(name)).await
    }

    async fn load_unit(&self, name: &str) -> Result<Arc<CachedWorkUnit>> {
        self.load::<WorkUnitKind, _>(name, true, |up, name| {
            async move { up.work_unit(&name).await }.boxed()
        })
        .await
    }
}

#[deny(clippy::missing_trait_methods)]
#[async_trait]
impl WorkSpec for CachedWorkSpec {
    fn name(&self) -> &str {
        Cached::name(self)
    }

    fn namespace_name(&self) -> &str {
        self.parent.name()
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    async fn data(&self) -> Result<DataMap> {
        forward!(self, data())
    }

    async fn set_data(&self, definition: DataMap) -> Result<()> {
        let definition = rules::checked_definition(definition)?;
        run(&self.shared, self, |link| {
            let definition = definition.clone();
            async move { link.upstream.set_data(definition).await }
        })
        .await
    }

    async fn meta(&self, with_counts: bool) -> Result<WorkSpecMeta> {
        forward!(self, meta(with_counts))
    }

    async fn set_meta(&self, meta: WorkSpecMeta) -> Result<()> {
        let meta = limits::checked_spec_meta(meta)?;
        run(&self.shared, self, |link| {
            let meta = meta.clone();
            async move { link.upstream.set_meta(meta).await }
        })
        .await
    }

    async fn add_work_unit(
        &self,
        name: &str,
        data: DataMap,
        meta: WorkUnitMeta,
    ) -> Result<WorkUnitRef> {
        let (data, meta) = limits::checked_new_unit(name, data, meta)?;
        run(&self.shared, self, |link| {
            let data = data.clone();
            async move {
                let fence = self.shared.fence();
                let up = link.upstream.add_work_unit(name, data, meta).await?;
                let unit: WorkUnitRef = self.adopt::<WorkUnitKind>(&link, up, fence).await?;
                Ok(unit)
            }
        })
        .await
    }

    async fn add_work_units(&self, units: Vec<NewWorkUnit>) -> Result<Vec<WorkUnitRef>> {
        let units = limits::checked_new_units(units)?;
        run(&self.shared, self, |link| {
            let units = units.clone();
            async move {
                let fence = self.shared.fence();
                let ups = link.upstream.add_work_units(units).await?;
                let mut adopted = Vec::with_capacity(ups.len());
                for up in ups {
                    let unit: WorkUnitRef = self.adopt::<WorkUnitKind>(&link, up, fence).await?;
                    adopted.push(unit);
                }
                Ok(adopted)
            }
        })
        .await
    }

    async fn work_unit(&self, name: &str) -> Result<WorkUnitRef> {
        if let Some(hit) = self.hit::<WorkUnitKind>(name) {
            return Ok(hit);
        }
        let unit = Box::pin(self.load_unit(name)).await?;
        Ok(unit)
    }

    async fn work_units(&self, query: &WorkUnitQuery) -> Result<BTreeMap<String, WorkUnitRef>> {
        run(&self.shared, self, |link| async move {
            let fence = self.shared.fence();
            let units = link.upstream.work_units(query).await?;
            let mut out = BTreeMap::new();
            for (name, up) in units {
                let unit: WorkUnitRef = self.adopt::<WorkUnitKind>(&link, up, fence).await?;
                out.insert(name, unit);
            }
            Ok(out)
        })
        .await
    }

    async fn count_work_unit_status(&self) -> Result<BTreeMap<WorkUnitStatus, u64>> {
        forward!(self, count_work_unit_status())
    }

    async fn set_work_unit_priorities(&self, query: &WorkUnitQuery, priority: f64) -> Result<()> {
        let priority = limits::checked_priority(priority)?;
        forward!(self, set_work_unit_priorities(query, priority))
    }

    async fn adjust_work_unit_priorities(&self, query: &WorkUnitQuery, delta: f64) -> Result<()> {
        let delta = limits::checked_priority(delta)?;
        forward!(self, adjust_work_unit_priorities(query, delta))
    }

    /// Deletes through the backend, then drops what it may have removed: the
    /// named entries if the query names units, else every cached unit of
    /// this spec (which units a status or paging query removed is unknown,
    /// and asking first would race with other writers). A failed delete
    /// drops them too, as it may have been made.
    async fn delete_work_units(&self, query: &WorkUnitQuery) -> Result<u64> {
        run(&self.shared, self, |link| async move {
            let scope = link.scope();
            // A names-only query deletes every named unit that exists, so
            // the units cached under those names before it are gone after.
            let exact =
                query.statuses.is_empty() && query.previous_name.is_empty() && query.limit <= 0;
            let before: Vec<_> = query
                .names
                .iter()
                .map(|name| {
                    exact
                        .then(|| {
                            self.shared
                                .link_before_delete::<CachedWorkUnit>(scope, name)
                        })
                        .flatten()
                })
                .collect();
            let deleted = link.upstream.delete_work_units(query).await;
            // A failed call may have deleted them all the same (its answer
            // lost on the way, say): only none deleted keeps the entries.
            if !matches!(deleted, Ok(0)) {
                if query.names.is_empty() {
                    self.shared.drop_units_of(Some(&link), self.path());
                } else {
                    for (name, before) in query.names.iter().zip(before) {
                        let path = self.path().child(name);
                        self.shared
                            .invalidate::<CachedWorkUnit>(scope, path, before)
                            .await;
                    }
                }
            }
            deleted
        })
        .await
    }

    async fn summarize(&self) -> Result<Summary> {
        forward!(self, summarize())
    }
}
