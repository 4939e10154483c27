//! Work spec handles.

use std::any::Any;
use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use deadpool_postgres::GenericClient;

use super::work_unit::PgWorkUnit;
use super::{
    attempt_status_opt, col, data_map, decode, derived_status, execute, expirable, json,
    live_status, meta_columns, micros, query, query_opt, read_meta, text, Scope, Shared,
    META_WIDTH,
};
use crate::api::{WorkSpec, WorkUnitRef};
use crate::error::{Error, ObjectKind, Result};
use crate::model::{
    DataMap, Summary, Time, WorkSpecMeta, WorkUnitMeta, WorkUnitQuery, WorkUnitStatus,
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
    pub(crate) id: i64,
    pub(crate) name: String,
}

/// Creates a unit or replaces its data and meta, in one statement
/// (see the migration's `coordinate_upsert_unit`); concurrent adders of one
/// name all succeed. Answers the unit's id.
const UPSERT_UNIT: &str = "SELECT coordinate_upsert_unit($1, $2, $3, $4, $5)";

/// The counted meta of one spec as of an expiry check at `$2`: available
/// units (no active attempt, or one that check would expire, and not
/// delayed), pending ones (active attempt pending, not past its deadline),
/// and whether the check would expire anything.
const COUNTED_META: &str = concat!(
    "SELECT ",
    meta_columns!(),
    ", (SELECT count(*) FROM work_unit u WHERE u.work_spec_id = s.id
            AND u.active_attempt_id IS NULL AND (u.not_before IS NULL OR u.not_before <= $2))
        + (SELECT count(*) FROM attempt a JOIN work_unit u
            ON u.id = a.work_unit_id AND u.active_attempt_id = a.id
            WHERE a.work_spec_id = s.id AND a.status = 0 AND a.expiration_time < $2
              AND (u.not_before IS NULL OR u.not_before <= $2)),
        (SELECT count(*) FROM attempt a JOIN work_unit u
            ON u.id = a.work_unit_id AND u.active_attempt_id = a.id
            WHERE a.work_spec_id = s.id AND a.status = 0 AND a.expiration_time >= $2), ",
    expirable!("x.work_spec_id = s.id", "$2"),
    " FROM work_spec s WHERE s.id = $1"
);

/// Reads a meta followed by its available and pending counts.
pub(crate) fn read_counted_meta(row: &tokio_postgres::Row, at: usize) -> Result<WorkSpecMeta> {
    let mut meta = read_meta(row, at)?;
    meta.available_count = col(row, at + META_WIDTH)?;
    meta.pending_count = col(row, at + META_WIDTH + 1)?;
    Ok(meta)
}

/// Units of a spec with their status inputs as of an expiry check at `$5`,
/// by name, for queries; joined to a one-row flag saying whether that
/// check would expire anything, so it is answered even when no unit is.
const SELECT_UNITS: &str = concat!(
    "SELECT r.*, f.stale FROM (SELECT ",
    expirable!("x.work_spec_id = $1", "$5"),
    ") f(stale) LEFT JOIN (SELECT u.id, u.name, ",
    live_status!("a", "$5"),
    ", u.not_before
        FROM work_unit u LEFT JOIN attempt a ON a.id = u.active_attempt_id
        WHERE u.work_spec_id = $1
          AND (cardinality($2::bytea[]) = 0 OR u.name = ANY($2::bytea[]))
          AND (length($3::bytea) = 0 OR u.name > $3::bytea)
        ORDER BY u.name LIMIT $4) r ON true
    ORDER BY r.name"
);

impl PgWorkSpec {
    pub(crate) fn new(shared: Arc<Shared>, namespace_id: i64, id: i64, name: String) -> Self {
        PgWorkSpec {
            shared,
            namespace_id,
            id,
            name,
        }
    }

    fn unit(self: &Arc<Self>, id: i64, name: String) -> WorkUnitRef {
        Arc::new(PgWorkUnit::new(self.clone(), id, name))
    }

    /// The ids and names of the units `query` selects at `now`, with
    /// statuses as of an expiry check at now, and whether that check would
    /// expire anything; read-only.
    async fn select_units<C: GenericClient>(
        &self,
        client: &C,
        query: &WorkUnitQuery,
        now: Time,
    ) -> Result<(Vec<(i64, String)>, bool)> {
        let names: Vec<&[u8]> = query.names.iter().map(|n| n.as_bytes()).collect();
        let filters_status = query.filters_status();
        // With a status filter the limit applies after it, so in Rust.
        let sql_limit: Option<i64> = match query.limit() {
            Some(limit) if !filters_status => Some(i64::try_from(limit).unwrap_or(i64::MAX)),
            _ => None,
        };
        let previous = query.previous_name.as_bytes();
        let rows = super::query(
            client,
            SELECT_UNITS,
            &[&self.id, &names, &previous, &sql_limit, &now],
        )
        .await?;
        let mut selected = Vec::with_capacity(rows.len());
        let mut stale = false;
        for row in &rows {
            stale = col(row, 4)?;
            let id: Option<i64> = col(row, 0)?;
            let Some(id) = id else { continue };
            if filters_status {
                let not_before: Option<Time> = col(row, 3)?;
                let status =
                    crate::rules::unit_status(attempt_status_opt(row, 2)?, not_before, now);
                if !query.admits_status(status) {
                    continue;
                }
            }
            if query.limit().is_some_and(|l| selected.len() >= l) {
                continue;
            }
            selected.push((id, text(row, 1)?));
        }
        Ok((selected, stale))
    }

    /// Runs `change` on the units `query` selects, after an expiry check,
    /// in one statement; answers how many were selected.
    async fn change_units(&self, query: &WorkUnitQuery, change: UnitChange) -> Result<u64> {
        const CHANGE: &str = "SELECT coordinate_change_units($1, $2, $3, $4, $5, $6, $7, $8)";
        let names: Vec<&[u8]> = query.names.iter().map(|n| n.as_bytes()).collect();
        let statuses: Option<Vec<i16>> = query.filters_status().then(|| {
            query
                .statuses
                .iter()
                .map(|s| i16::try_from(s.ordinal()).unwrap_or(i16::MAX))
                .collect()
        });
        let limit: Option<i64> = query.limit().map(|l| i64::try_from(l).unwrap_or(i64::MAX));
        let (kind, value): (i16, f64) = match change {
            UnitChange::SetPriority(p) => (0, p),
            UnitChange::AdjustPriority(d) => (1, d),
            UnitChange::Delete => (2, 0.0),
        };
        let shared = &self.shared;
        let selected: i64 = shared
            .retrying(|| async {
                let now = shared.now();
                let client = shared.client().await?;
                let row = query_opt(
                    &client,
                    CHANGE,
                    &[
                        &self.id,
                        &names,
                        &query.previous_name.as_bytes(),
                        &limit,
                        &statuses,
                        &now,
                        &kind,
                        &value,
                    ],
                )
                .await
                // An adjustment past float8's range is a bad priority.
                .map_err(super::error::priority_overflow)?
                .ok_or_else(|| decode("a unit change answered no row"))?;
                col(&row, 0)
            })
            .await?;
        u64::try_from(selected).map_err(decode)
    }
}

/// A change applied to the units a query selects.
#[derive(Debug, Clone, Copy)]
enum UnitChange {
    SetPriority(f64),
    AdjustPriority(f64),
    Delete,
}

#[async_trait]
impl WorkSpec for PgWorkSpec {
    fn name(&self) -> &str {
        &self.name
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    async fn data(&self) -> Result<DataMap> {
        let client = self.shared.client().await?;
        let row = query_opt(
            &client,
            "SELECT definition FROM work_spec WHERE id = $1",
            &[&self.id],
        )
        .await?
        .ok_or(GONE)?;
        data_map(&row, 0)
    }

    async fn set_data(&self, definition: DataMap) -> Result<()> {
        const SET: &str = "UPDATE work_spec SET definition = $2, priority = $3, weight = $4,
                paused = $5, continuous = $6, can_be_continuous = $7, min_memory_gb = $8,
                interval_us = $9, next_continuous = NULL, max_running = $10,
                max_attempts_returned = $11, max_retries = $12, next_work_spec_name = $13,
                runtime = $14
            WHERE id = $1";
        let definition = limits::checked_data(definition)?;
        let parsed = parse_definition(&definition)?;
        if parsed.name != self.name {
            return Err(Error::ChangedName);
        }
        let m = &parsed.meta;
        let interval = micros(m.interval)?;
        let client = self.shared.client().await?;
        let changed = execute(
            &client,
            SET,
            &[
                &self.id,
                &json(&definition),
                &m.priority,
                &m.weight,
                &m.paused,
                &m.continuous,
                &m.can_be_continuous,
                &m.min_memory_gb,
                &interval,
                &m.max_running,
                &m.max_attempts_returned,
                &m.max_retries,
                &m.next_work_spec_name.as_bytes(),
                &m.runtime.as_bytes(),
            ],
        )
        .await?;
        if changed == 0 {
            return Err(GONE);
        }
        Ok(())
    }

    async fn meta(&self, with_counts: bool) -> Result<WorkSpecMeta> {
        const PLAIN: &str = concat!(
            "SELECT ",
            meta_columns!(),
            " FROM work_spec s WHERE s.id = $1"
        );
        if with_counts {
            let now = self.shared.now();
            let client = self.shared.client().await?;
            let row = query_opt(&client, COUNTED_META, &[&self.id, &now])
                .await?
                .ok_or(GONE)?;
            drop(client);
            let meta = read_counted_meta(&row, 0)?;
            let stale = col(&row, META_WIDTH + 2)?;
            self.shared.settle(Scope::Spec(self.id), now, stale).await?;
            Ok(meta)
        } else {
            let client = self.shared.client().await?;
            let row = query_opt(&client, PLAIN, &[&self.id]).await?.ok_or(GONE)?;
            read_meta(&row, 0)
        }
    }

    async fn set_meta(&self, meta: WorkSpecMeta) -> Result<()> {
        const LOCK: &str = concat!(
            "SELECT ",
            meta_columns!(),
            " FROM work_spec s WHERE s.id = $1 FOR NO KEY UPDATE"
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
                let tx = client.transaction().await.map_err(super::error::db)?;
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
                tx.commit().await.map_err(super::error::db)
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
        let id = shared
            .retrying(|| async {
                let client = shared.client().await?;
                let row = query_opt(
                    &client,
                    UPSERT_UNIT,
                    &[
                        &self.id,
                        &name.as_bytes(),
                        &json(&data),
                        &meta.priority,
                        &meta.not_before,
                    ],
                )
                .await?
                .ok_or(GONE)?;
                col::<i64>(&row, 0)
            })
            .await?;
        Ok(Arc::new(PgWorkUnit::new(
            Arc::new(self.clone_handle()),
            id,
            name.to_string(),
        )))
    }

    async fn work_unit(&self, name: &str) -> Result<WorkUnitRef> {
        // One round trip that also tells a deleted spec (no row: `Gone`)
        // from a missing unit (a row without a unit), so a cache holding
        // this spec's handle knows to re-resolve the spec itself.
        const FIND: &str = "SELECT u.id FROM work_spec s
            LEFT JOIN work_unit u ON u.work_spec_id = s.id AND u.name = $2
            WHERE s.id = $1";
        let client = self.shared.client().await?;
        let row = query_opt(&client, FIND, &[&self.id, &name.as_bytes()])
            .await?
            .ok_or(GONE)?;
        match col::<Option<i64>>(&row, 0)? {
            Some(id) => Ok(Arc::new(self.clone_handle()).unit(id, name.to_string())),
            None => Err(Error::NoSuchWorkUnit {
                name: name.to_string(),
            }),
        }
    }

    async fn work_units(&self, query: &WorkUnitQuery) -> Result<BTreeMap<String, WorkUnitRef>> {
        let now = self.shared.now();
        let client = self.shared.client().await?;
        let (selected, stale) = self.select_units(&client, query, now).await?;
        drop(client);
        self.shared.settle(Scope::Spec(self.id), now, stale).await?;
        let me = Arc::new(self.clone_handle());
        Ok(selected
            .into_iter()
            .map(|(id, name)| (name.clone(), me.unit(id, name)))
            .collect())
    }

    async fn count_work_unit_status(&self) -> Result<BTreeMap<WorkUnitStatus, u64>> {
        const COUNT: &str = concat!(
            "SELECT g.*, f.stale FROM (SELECT ",
            expirable!("x.work_spec_id = $1", "$2"),
            ") f(stale) LEFT JOIN (SELECT ",
            live_status!("a", "$2"),
            ", COALESCE(u.not_before > $2, false), count(*)
                FROM work_unit u LEFT JOIN attempt a ON a.id = u.active_attempt_id
                WHERE u.work_spec_id = $1 GROUP BY 1, 2) g ON true"
        );
        let now = self.shared.now();
        let client = self.shared.client().await?;
        let rows = query(&client, COUNT, &[&self.id, &now]).await?;
        drop(client);
        let mut counts = BTreeMap::new();
        let mut stale = false;
        for row in &rows {
            stale = col(row, 3)?;
            let n: Option<i64> = col(row, 2)?;
            let Some(n) = n else { continue };
            let status = derived_status(attempt_status_opt(row, 0)?, col(row, 1)?, now);
            *counts.entry(status).or_default() += u64::try_from(n).map_err(decode)?;
        }
        self.shared.settle(Scope::Spec(self.id), now, stale).await?;
        Ok(counts)
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
            self.namespace_id,
            self.id,
            self.name.clone(),
        )
    }
}
