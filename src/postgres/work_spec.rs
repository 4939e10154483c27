//! Work spec handles.

use std::any::Any;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use async_trait::async_trait;
use tokio_postgres::types::ToSql;

use super::bulk::{WrittenUnits, CREATE_STAGED, STAGE_UNITS, UPSERT_STAGED, UPSERT_UNITS};
use super::conn::Session;
use super::counts::{spec_counts, SpecCounts};
use super::selection::{Selection, UnitChange};
use super::work_unit::PgWorkUnit;
use super::{
    col, data_map, decode, execute, json, meta_columns, micros, query, query_opt, read_meta, text,
    Scope, Shared, META_WIDTH,
};
use crate::api::{WorkSpec, WorkUnitRef};
use crate::error::{Error, ObjectKind, Result};
use crate::model::{
    DataMap, NewWorkUnit, Summary, Time, WorkSpecMeta, WorkUnitMeta, WorkUnitQuery, WorkUnitStatus,
};
use crate::rules::{limits, merge_set_meta, parse_definition};

/// What a call on this handle answers when its row (or an ancestor's) is gone.
const GONE: Error = Error::Gone {
    kind: ObjectKind::WorkSpec,
};

/// A work spec row.
#[derive(Debug)]
pub(crate) struct PgWorkSpec {
    pub(crate) shared: Arc<Shared>,
    pub(crate) namespace_id: i64,
    pub(crate) namespace_name: String,
    pub(crate) id: i64,
    pub(crate) name: String,
}

/// The columns a spec definition sets besides its name and the definition
/// itself, bound in the order `priority, weight, paused, continuous,
/// can_be_continuous, min_memory_gb, interval_us, max_running,
/// max_attempts_returned, max_retries, next_work_spec_name, runtime`.
pub(crate) struct DefinedColumns<'a> {
    meta: &'a WorkSpecMeta,
    interval_us: i64,
    next_work_spec_name: &'a [u8],
    runtime: &'a [u8],
}

impl<'a> DefinedColumns<'a> {
    pub(crate) fn new(meta: &'a WorkSpecMeta) -> Result<Self> {
        Ok(DefinedColumns {
            meta,
            interval_us: micros(meta.interval)?,
            next_work_spec_name: meta.next_work_spec_name.as_bytes(),
            runtime: meta.runtime.as_bytes(),
        })
    }

    /// The statement parameters, after those `before` them.
    pub(crate) fn params<'p>(
        &'p self,
        before: &[&'p (dyn ToSql + Sync)],
    ) -> Vec<&'p (dyn ToSql + Sync)> {
        let m = self.meta;
        let mut params = before.to_vec();
        params.extend_from_slice(&[
            &m.priority,
            &m.weight,
            &m.paused,
            &m.continuous,
            &m.can_be_continuous,
            &m.min_memory_gb,
            &self.interval_us,
            &m.max_running,
            &m.max_attempts_returned,
            &m.max_retries,
            &self.next_work_spec_name,
            &self.runtime,
        ]);
        params
    }
}

/// Creates a unit or replaces its data and meta, in one statement
/// (see the migration's `coordinate_upsert_unit`); concurrent adders of one
/// name all succeed. Answers the unit's id.
const UPSERT_UNIT: &str = "SELECT coordinate_upsert_unit($1, $2, $3, $4, $5)";

/// The counted meta of one spec as of an expiry check at `$2`, from its
/// counters (see the `counts` module).
pub(crate) const COUNTED_META: &str = concat!(
    "SELECT ",
    meta_columns!(),
    ", c.* FROM work_spec s, ",
    spec_counts!("s.id", "$2"),
    " WHERE s.id = $1"
);

/// Reads a meta followed by its counts; also answers whether an expiry
/// check would expire anything.
fn read_counted_meta(row: &tokio_postgres::Row) -> Result<(WorkSpecMeta, bool)> {
    let mut meta = read_meta(row, 0)?;
    let counts = SpecCounts::from_row(row, META_WIDTH)?;
    meta.available_count = counts.available();
    meta.pending_count = counts.pending();
    Ok((meta, counts.stale()))
}

impl PgWorkSpec {
    pub(crate) fn new(
        shared: Arc<Shared>,
        (namespace_id, namespace_name): (i64, String),
        id: i64,
        name: String,
    ) -> Self {
        PgWorkSpec {
            shared,
            namespace_id,
            namespace_name,
            id,
            name,
        }
    }

    fn unit(self: &Arc<Self>, id: i64, name: String) -> WorkUnitRef {
        Arc::new(PgWorkUnit::new(self.clone(), id, name))
    }

    /// The ids and names of the units `parts` (a query's
    /// [`Selection::parts`]) select at `now`, with statuses as of an expiry
    /// check at now, and whether that check would expire anything;
    /// read-only. Parts beyond the first are read in one snapshot, as one
    /// statement would.
    async fn select_units(
        &self,
        parts: &[Selection],
        now: Time,
    ) -> Result<(Vec<(i64, String)>, bool)> {
        let mut client = self.shared.client().await?;
        if let [whole] = parts {
            return self
                .select_part(&client, whole, &whole.limit_after(0), now)
                .await;
        }
        let tx = client.transaction().await?;
        tx.batch_execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            .await?;
        let (mut selected, mut stale) = (Vec::new(), false);
        for part in parts {
            let limit = part.limit_after(selected.len() as u64);
            if limit == Some(0) {
                break;
            }
            let (more, part_stale) = self.select_part(&tx, part, &limit, now).await?;
            selected.extend(more);
            stale |= part_stale;
        }
        tx.commit().await?;
        Ok((selected, stale))
    }

    /// What [`select_units`](Self::select_units) reads of one part, up to
    /// `limit` units.
    async fn select_part<S: Session>(
        &self,
        client: &S,
        part: &Selection,
        limit: &Option<i64>,
        now: Time,
    ) -> Result<(Vec<(i64, String)>, bool)> {
        let params = part.params(&self.id, &now, limit);
        let rows = super::query(client, part.read_sql(), &params).await?;
        let mut selected = Vec::with_capacity(rows.len());
        let mut stale = false;
        for row in &rows {
            stale = col(row, 2)?;
            if let Some(id) = col::<Option<i64>>(row, 0)? {
                selected.push((id, text(row, 1)?));
            }
        }
        Ok((selected, stale))
    }

    /// Runs `change` on the units `query` selects, in one statement (and
    /// the expiry check it found due in a second), or, for a query naming
    /// more than a statement carries, one per part in one transaction;
    /// answers how many were selected.
    async fn change_units(&self, query: &WorkUnitQuery, change: UnitChange) -> Result<u64> {
        let parts = Selection::new(query).parts(self.shared.statement_bytes);
        let shared = &self.shared;
        let (selected, stale, now) = shared
            .retrying(|| async {
                let now = shared.now();
                let mut client = shared.client().await?;
                if let [whole] = parts.as_slice() {
                    let limit = whole.limit_after(0);
                    let (selected, stale) = self
                        .change_part(&client, whole, change, &limit, now)
                        .await?;
                    return Ok((selected, stale, now));
                }
                // Every part or none, as one statement.
                let tx = client.transaction().await?;
                let (mut selected, mut stale) = (0, false);
                for part in &parts {
                    let limit = part.limit_after(selected);
                    if limit == Some(0) {
                        break;
                    }
                    let (more, part_stale) =
                        self.change_part(&tx, part, change, &limit, now).await?;
                    selected += more;
                    stale |= part_stale;
                }
                tx.commit().await?;
                Ok((selected, stale, now))
            })
            .await?;
        shared.settle(Scope::Spec(self.id), now, stale).await?;
        Ok(selected)
    }

    /// Runs `change` on up to `limit` units `part` selects; answers how
    /// many it selected, and whether an expiry check is due.
    async fn change_part<S: Session>(
        &self,
        client: &S,
        part: &Selection,
        change: UnitChange,
        limit: &Option<i64>,
        now: Time,
    ) -> Result<(u64, bool)> {
        let mut params = part.params(&self.id, &now, limit);
        if let Some(value) = change.value() {
            params.push(value);
        }
        let row = query_opt(client, part.change_sql(change), &params)
            .await
            // An adjustment past float8's range is a bad priority.
            .map_err(super::error::priority_overflow)?
            .ok_or_else(|| decode("a unit change answered no row"))?;
        let selected: i64 = col(&row, 0)?;
        Ok((u64::try_from(selected).map_err(decode)?, col(&row, 1)?))
    }

    /// Stores `units` (checked, names distinct) all at once, in one
    /// statement (see the `bulk` module); answers each name's unit id.
    async fn upsert_units(&self, mut units: Vec<NewWorkUnit>) -> Result<HashMap<String, i64>> {
        // Name order, so that concurrent batches lock shared units in one
        // order and never deadlock.
        units.sort_unstable_by(|a, b| a.name.as_bytes().cmp(b.name.as_bytes()));
        let written = WrittenUnits::new(&units)?;
        let chunks = written.chunks(self.shared.statement_bytes);
        let shared = &self.shared;
        let rows = shared
            .retrying(|| async {
                let mut client = shared.client().await?;
                if let [all] = chunks.as_slice() {
                    let params = written.params(all.clone());
                    return query(&client, UPSERT_UNITS, &params.with_spec(&self.id)).await;
                }
                let tx = client.transaction().await?;
                tx.batch_execute(CREATE_STAGED).await?;
                for chunk in &chunks {
                    let params = written.params(chunk.clone());
                    execute(&tx, STAGE_UNITS, &params.alone()).await?;
                }
                let rows = query(&tx, UPSERT_STAGED, &[&self.id]).await?;
                tx.commit().await?;
                Ok(rows)
            })
            .await?;
        rows.iter()
            .map(|row| Ok((text(row, 1)?, col(row, 0)?)))
            .collect()
    }
}

#[async_trait]
impl WorkSpec for PgWorkSpec {
    fn name(&self) -> &str {
        &self.name
    }

    fn namespace_name(&self) -> &str {
        &self.namespace_name
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    async fn data(&self) -> Result<DataMap> {
        const DEFINITION: &str = "SELECT definition FROM work_spec WHERE id = $1";
        data_map(&self.shared.row_or(GONE, DEFINITION, &[&self.id]).await?, 0)
    }

    async fn set_data(&self, definition: DataMap) -> Result<()> {
        // The definition lock before the row's (migration 24).
        const SET: &str = "UPDATE work_spec SET definition = $2, priority = $3, weight = $4,
                paused = $5, continuous = $6, can_be_continuous = $7, min_memory_gb = $8,
                interval_us = $9, next_continuous = NULL, max_running = $10,
                max_attempts_returned = $11, max_retries = $12, next_work_spec_name = $13,
                runtime = $14
            FROM coordinate_lock_spec_definition($1) AS definition_locked WHERE id = $1";
        let definition = limits::checked_data(definition)?;
        let parsed = parse_definition(&definition)?;
        if parsed.name != self.name {
            // A renaming is refused only for a spec that still exists.
            self.exists().await?;
            return Err(Error::ChangedName);
        }
        let columns = DefinedColumns::new(&parsed.meta)?;
        let definition = json(&definition);
        let params = columns.params(&[&self.id, &definition]);
        self.shared.change_or(GONE, SET, &params).await
    }

    async fn meta(&self, with_counts: bool) -> Result<WorkSpecMeta> {
        const PLAIN: &str = concat!(
            "SELECT ",
            meta_columns!(),
            " FROM work_spec s WHERE s.id = $1"
        );
        if with_counts {
            let now = self.shared.now();
            self.shared
                .checked(Scope::Spec(self.id), now, || async {
                    read_counted_meta(
                        &self
                            .shared
                            .row_or(GONE, COUNTED_META, &[&self.id, &now])
                            .await?,
                    )
                })
                .await
        } else {
            read_meta(&self.shared.row_or(GONE, PLAIN, &[&self.id]).await?, 0)
        }
    }

    async fn set_meta(&self, meta: WorkSpecMeta) -> Result<()> {
        // The definition lock before the row's (migration 24).
        const LOCK: &str = concat!(
            "SELECT ",
            meta_columns!(),
            " FROM work_spec s, coordinate_lock_spec_definition($1) AS definition_locked",
            " WHERE s.id = $1 FOR NO KEY UPDATE OF s"
        );
        const SET: &str = "UPDATE work_spec SET priority = $2, weight = $3, paused = $4,
                continuous = $5, min_memory_gb = $6, interval_us = $7, next_continuous = $8,
                max_running = $9, max_attempts_returned = $10, max_retries = $11
            WHERE id = $1";
        let meta = limits::checked_spec_meta(meta)?;
        let shared = &self.shared;
        shared
            .retrying(|| async {
                let mut client = shared.client().await?;
                let tx = client.transaction().await?;
                let row = query_opt(&tx, LOCK, &[&self.id]).await?.ok_or(GONE)?;
                let m = merge_set_meta(&read_meta(&row, 0)?, &meta);
                let interval = micros(m.interval)?;
                execute(
                    &tx,
                    SET,
                    &[
                        &self.id,
                        &m.priority,
                        &m.weight,
                        &m.paused,
                        &m.continuous,
                        &m.min_memory_gb,
                        &interval,
                        &m.next_continuous,
                        &m.max_running,
                        &m.max_attempts_returned,
                        &m.max_retries,
                    ],
                )
                .await?;
                tx.commit().await
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
        let shared = &self.shared;
        let row = shared
            .row_retrying(
                || GONE,
                UPSERT_UNIT,
                &[
                    &self.id,
                    &name.as_bytes(),
                    &json(&data),
                    &meta.priority,
                    &meta.not_before,
                ],
            )
            .await?;
        let id = col::<i64>(&row, 0)?;
        Ok(Arc::new(PgWorkUnit::new(
            Arc::new(self.clone_handle()),
            id,
            name.to_string(),
        )))
    }

    async fn add_work_units(&self, units: Vec<NewWorkUnit>) -> Result<Vec<WorkUnitRef>> {
        let units = limits::checked_new_units(units)?;
        let order: Vec<String> = units.iter().map(|u| u.name.clone()).collect();
        // The last entry of a name wins.
        let mut last: HashMap<String, NewWorkUnit> = HashMap::with_capacity(units.len());
        for unit in units {
            last.insert(unit.name.clone(), unit);
        }
        let ids = if last.is_empty() {
            // Nothing to store, but a deleted spec is still `Gone`.
            self.exists().await?;
            HashMap::new()
        } else {
            self.upsert_units(last.into_values().collect()).await?
        };
        let me = Arc::new(self.clone_handle());
        order
            .into_iter()
            .map(|name| match ids.get(&name) {
                Some(id) => Ok(me.unit(*id, name)),
                None => Err(decode(format!("unit {name:?} was not stored"))),
            })
            .collect()
    }

    async fn work_unit(&self, name: &str) -> Result<WorkUnitRef> {
        // One round trip that also tells a deleted spec (no row: `Gone`)
        // from a missing unit (a row without a unit), so a cache holding
        // this spec's handle knows to re-resolve the spec itself.
        const FIND: &str = "SELECT u.id FROM work_spec s
            LEFT JOIN work_unit u ON u.work_spec_id = s.id AND u.name = $2
            WHERE s.id = $1";
        match self.shared.child_id(GONE, FIND, self.id, name).await? {
            Some(id) => Ok(Arc::new(self.clone_handle()).unit(id, name.to_string())),
            None => Err(Error::NoSuchWorkUnit {
                name: name.to_string(),
            }),
        }
    }

    async fn work_units(&self, query: &WorkUnitQuery) -> Result<BTreeMap<String, WorkUnitRef>> {
        let parts = Selection::new(query).parts(self.shared.statement_bytes);
        let now = self.shared.now();
        let selected = self
            .shared
            .checked(Scope::Spec(self.id), now, || self.select_units(&parts, now))
            .await?;
        let me = Arc::new(self.clone_handle());
        Ok(selected
            .into_iter()
            .map(|(id, name)| (name.clone(), me.unit(id, name)))
            .collect())
    }

    async fn count_work_unit_status(&self) -> Result<BTreeMap<WorkUnitStatus, u64>> {
        const COUNT: &str = concat!("SELECT c.* FROM ", spec_counts!("$1", "$2"));
        let now = self.shared.now();
        let counts = self
            .shared
            .checked(Scope::Spec(self.id), now, || async {
                let client = self.shared.client().await?;
                let row = query_opt(&client, COUNT, &[&self.id, &now])
                    .await?
                    .ok_or_else(|| decode("a count answered no row"))?;
                let counts = SpecCounts::from_row(&row, 0)?;
                let stale = counts.stale();
                Ok((counts, stale))
            })
            .await?;
        counts.statuses()
    }

    async fn set_work_unit_priorities(&self, query: &WorkUnitQuery, priority: f64) -> Result<()> {
        let priority = limits::checked_priority(priority)?;
        self.change_units(query, UnitChange::SetPriority(priority))
            .await
            .map(drop)
    }

    async fn adjust_work_unit_priorities(&self, query: &WorkUnitQuery, delta: f64) -> Result<()> {
        let delta = limits::checked_priority(delta)?;
        self.change_units(query, UnitChange::AdjustPriority(delta))
            .await
            .map(drop)
    }

    async fn delete_work_units(&self, query: &WorkUnitQuery) -> Result<u64> {
        self.change_units(query, UnitChange::Delete).await
    }

    async fn summarize(&self) -> Result<Summary> {
        self.shared.summarize(Scope::Spec(self.id)).await
    }
}

impl PgWorkSpec {
    /// Another handle to the same spec row.
    pub(crate) fn clone_handle(&self) -> Self {
        PgWorkSpec::new(
            self.shared.clone(),
            (self.namespace_id, self.namespace_name.clone()),
            self.id,
            self.name.clone(),
        )
    }

    /// `Gone` unless the spec's row is still there.
    async fn exists(&self) -> Result<()> {
        const EXISTS: &str = "SELECT 1 FROM work_spec WHERE id = $1";
        self.shared
            .row_or(GONE, EXISTS, &[&self.id])
            .await
            .map(drop)
    }
}
