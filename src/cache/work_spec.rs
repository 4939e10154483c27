//! The cached work spec handle.

use std::any::Any;
use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Weak};

use arc_swap::ArcSwap;
use async_trait::async_trait;

use super::link::{parent, Link};
use super::namespace::CachedNamespace;
use super::stats::{Counters, KindCounters};
use super::work_unit::CachedWorkUnit;
use super::{run, Caches, Handle, Shared, Store};
use crate::api::{WorkSpec, WorkUnitRef};
use crate::error::{Error, Result};
use crate::model::{
    DataMap, NewWorkUnit, Summary, WorkSpecMeta, WorkUnitMeta, WorkUnitQuery, WorkUnitStatus,
};

/// A work spec of a [`Cache`](super::Cache): the spec that now has this name
/// in its namespace.
pub(crate) struct CachedWorkSpec {
    pub(super) shared: Arc<Shared>,
    me: Weak<CachedWorkSpec>,
    pub(super) namespace: Arc<CachedNamespace>,
    name: Arc<str>,
    pub(super) link: ArcSwap<Link<dyn WorkSpec>>,
}

impl CachedWorkSpec {
    pub(super) fn new(
        namespace: &Arc<CachedNamespace>,
        name: Arc<str>,
        link: Arc<Link<dyn WorkSpec>>,
    ) -> Arc<Self> {
        Arc::new_cyclic(|me| CachedWorkSpec {
            shared: Arc::clone(&namespace.shared),
            me: me.clone(),
            namespace: Arc::clone(namespace),
            name,
            link: ArcSwap::new(link),
        })
    }

    fn me(&self) -> Result<Arc<Self>> {
        self.me.upgrade().ok_or(Error::Gone)
    }

    /// The scope of child entries, unless this spec is known deleted or its
    /// link outdated (see [`Shared::serves_children`]).
    fn live_scope(&self) -> Option<u64> {
        let link = self.link.load();
        self.shared.serves_children(&link).then(|| link.scope())
    }

    /// A live cached unit handle, without calling the backend.
    async fn cached_unit(&self, name: &str) -> Option<Arc<CachedWorkUnit>> {
        let scope = self.live_scope()?;
        self.shared.cached::<CachedWorkUnit>(scope, name)
    }

    /// `work_unit(name)`, cached.
    pub(super) async fn lookup_unit(&self, name: &str) -> Result<Arc<CachedWorkUnit>> {
        if let Some(hit) = self.cached_unit(name).await {
            return Ok(hit);
        }
        // The miss path's state is large: boxing it keeps the hit path's
        // future (which the trait boxes anyway) small.
        Box::pin(self.load_unit(name)).await
    }

    async fn load_unit(&self, name: &str) -> Result<Arc<CachedWorkUnit>> {
        let me = self.me()?;
        run(&self.shared, self, |link| {
            let me = Arc::clone(&me);
            async move {
                let scope = link.scope();
                self.shared
                    .get_or_load(scope, name, move |name| async move {
                        let up = link.upstream.work_unit(&name).await?;
                        Ok(CachedWorkUnit::new(
                            &me,
                            name,
                            Link::new(up, Some(parent(&link))),
                        ))
                    })
                    .await
            }
        })
        .await
    }

    /// The cached handle for a unit handle the backend returned under `link`.
    pub(super) async fn adopt_unit(
        &self,
        link: &Arc<Link<dyn WorkSpec>>,
        up: WorkUnitRef,
    ) -> Result<Arc<CachedWorkUnit>> {
        let me = self.me()?;
        let name: Arc<str> = Arc::from(up.name());
        Ok(self
            .shared
            .adopt(
                self.shared.serves_children(link).then(|| link.scope()),
                name,
                |name| CachedWorkUnit::new(&me, name, Link::new(up, Some(parent(link)))),
            )
            .await)
    }

    /// `adopt_unit` under the current link, for an attempt's unit.
    pub(super) async fn adopt_unit_here(&self, up: WorkUnitRef) -> Result<Arc<CachedWorkUnit>> {
        let link = self.link.load_full();
        self.adopt_unit(&link, up).await
    }
}

impl Handle for CachedWorkSpec {
    type Up = dyn WorkSpec;

    fn link_cell(&self) -> &ArcSwap<Link<dyn WorkSpec>> {
        &self.link
    }

    fn store(caches: &Caches) -> &Store<Self> {
        &caches.work_specs
    }

    fn counters(counters: &Counters) -> &KindCounters {
        &counters.work_specs
    }

    async fn resolve(&self, _create: bool) -> Result<Arc<Self>> {
        // Never through get-or-create: a spec must not bring its namespace back.
        self.namespace.lookup_spec(&self.name, false).await
    }
}

impl fmt::Debug for CachedWorkSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CachedWorkSpec")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

#[deny(clippy::missing_trait_methods)]
#[async_trait]
impl WorkSpec for CachedWorkSpec {
    fn name(&self) -> &str {
        &self.name
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    async fn data(&self) -> Result<DataMap> {
        run(&self.shared, self, |link| async move {
            link.upstream.data().await
        })
        .await
    }

    async fn set_data(&self, definition: DataMap) -> Result<()> {
        // Checked before the clone below, which would recurse once per level.
        let definition = crate::rules::limits::checked_data(definition)?;
        run(&self.shared, self, |link| {
            let definition = definition.clone();
            async move { link.upstream.set_data(definition).await }
        })
        .await
    }

    async fn meta(&self, with_counts: bool) -> Result<WorkSpecMeta> {
        run(&self.shared, self, |link| async move {
            link.upstream.meta(with_counts).await
        })
        .await
    }

    async fn set_meta(&self, meta: WorkSpecMeta) -> Result<()> {
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
        // Checked before the clone below, which would recurse once per level.
        let data = crate::rules::limits::checked_data(data)?;
        run(&self.shared, self, |link| {
            let data = data.clone();
            async move {
                let up = link.upstream.add_work_unit(name, data, meta).await?;
                let unit: WorkUnitRef = self.adopt_unit(&link, up).await?;
                Ok(unit)
            }
        })
        .await
    }

    async fn add_work_units(&self, units: Vec<NewWorkUnit>) -> Result<Vec<WorkUnitRef>> {
        // Checked before the clone below, which would recurse once per level.
        let units = crate::rules::limits::checked_new_units(units)?;
        run(&self.shared, self, |link| {
            let units = units.clone();
            async move {
                let ups = link.upstream.add_work_units(units).await?;
                let mut adopted = Vec::with_capacity(ups.len());
                for up in ups {
                    let unit: WorkUnitRef = self.adopt_unit(&link, up).await?;
                    adopted.push(unit);
                }
                Ok(adopted)
            }
        })
        .await
    }

    async fn work_unit(&self, name: &str) -> Result<WorkUnitRef> {
        let hit = match self.live_scope() {
            Some(scope) => self.shared.hit::<CachedWorkUnit>(scope, name),
            None => None,
        };
        if let Some(hit) = hit {
            return Ok(hit);
        }
        let unit = Box::pin(self.load_unit(name)).await?;
        Ok(unit)
    }

    async fn work_units(&self, query: &WorkUnitQuery) -> Result<BTreeMap<String, WorkUnitRef>> {
        run(&self.shared, self, |link| async move {
            let units = link.upstream.work_units(query).await?;
            let mut out = BTreeMap::new();
            for (name, up) in units {
                let unit: WorkUnitRef = self.adopt_unit(&link, up).await?;
                out.insert(name, unit);
            }
            Ok(out)
        })
        .await
    }

    async fn count_work_unit_status(&self) -> Result<BTreeMap<WorkUnitStatus, u64>> {
        run(&self.shared, self, |link| async move {
            link.upstream.count_work_unit_status().await
        })
        .await
    }

    async fn set_work_unit_priorities(&self, query: &WorkUnitQuery, priority: f64) -> Result<()> {
        run(&self.shared, self, |link| async move {
            link.upstream
                .set_work_unit_priorities(query, priority)
                .await
        })
        .await
    }

    async fn adjust_work_unit_priorities(&self, query: &WorkUnitQuery, delta: f64) -> Result<()> {
        run(&self.shared, self, |link| async move {
            link.upstream
                .adjust_work_unit_priorities(query, delta)
                .await
        })
        .await
    }

    /// Deletes through the backend, then drops what it may have removed: the
    /// named entries if the query names units, else every cached unit of
    /// this spec (which units a status or paging query removed is unknown,
    /// and asking first would race with other writers).
    async fn delete_work_units(&self, query: &WorkUnitQuery) -> Result<u64> {
        run(&self.shared, self, |link| async move {
            let deleted = link.upstream.delete_work_units(query).await?;
            if deleted > 0 {
                if query.names.is_empty() {
                    link.rescope();
                    self.shared.counters::<CachedWorkUnit>().invalidations.inc();
                } else {
                    // A names-only query deletes every named unit that exists.
                    let exact = query.statuses.is_empty()
                        && query.previous_name.is_empty()
                        && query.limit <= 0;
                    let scope = link.scope();
                    for name in &query.names {
                        self.shared
                            .invalidate::<CachedWorkUnit>(scope, name, exact)
                            .await;
                    }
                }
            }
            Ok(deleted)
        })
        .await
    }

    async fn summarize(&self) -> Result<Summary> {
        run(&self.shared, self, |link| async move {
            link.upstream.summarize().await
        })
        .await
    }
}
