//! Work unit handles.

use std::any::Any;
use std::sync::Arc;

use async_trait::async_trait;
use tokio_postgres::types::ToSql;
use tokio_postgres::Row;

use super::attempt::PgAttempt;
use super::work_spec::PgWorkSpec;
use super::worker::PgWorker;
use super::{
    attempt_status_opt, col, data_map, decode, expirable, live_status, query_opt, text, Scope,
    Shared,
};
use crate::api::{AttemptRef, WorkSpecRef, WorkUnit};
use crate::error::{Error, ObjectKind, Result};
use crate::model::{DataMap, Time, WorkUnitMeta, WorkUnitSnapshot, WorkUnitStatus};
use crate::rules::{limits, unit_status};

/// What a call on this handle answers when its row (or an ancestor's) is gone.
const GONE: Error = Error::Gone {
    kind: ObjectKind::WorkUnit,
};

/// A checked read of a unit (id `$1`, now `$2`, spec id `$3`) and its active
/// attempt, selecting `$columns` after those [`PgWorkUnit::checked_read`]
/// reads: the attempt's status as of an expiry check at now, `not_before`,
/// and whether that check over the spec would expire anything.
macro_rules! checked_select {
    ($columns:literal) => {
        concat!(
            "SELECT ",
            live_status!("a", "$2"),
            ", u.not_before, ",
            expirable!("x.work_spec_id = $3", "$2"),
            $columns,
            " FROM work_unit u LEFT JOIN attempt a ON a.id = u.active_attempt_id WHERE u.id = $1"
        )
    };
}

/// [`WorkUnit::status`]'s statement.
const STATUS: &str = checked_select!("");

/// [`WorkUnit::snapshot`]'s statement: `status`'s, also reading the data as
/// of that expiry check (an attempt it would expire no longer shows its
/// data) and the priority.
pub(crate) const SNAPSHOT: &str = checked_select!(
    ", COALESCE(CASE WHEN a.status = 0 AND a.expiration_time < $2 THEN NULL
         ELSE a.data END, u.data), u.priority"
);

/// A work unit row.
#[derive(Debug)]
pub(crate) struct PgWorkUnit {
    pub(crate) spec: Arc<PgWorkSpec>,
    pub(crate) id: i64,
    pub(crate) name: String,
}

impl PgWorkUnit {
    pub(crate) fn new(spec: Arc<PgWorkSpec>, id: i64, name: String) -> Self {
        PgWorkUnit { spec, id, name }
    }

    /// Runs `sql`, a [`checked_select!`]: the unit's status and `not_before`
    /// as of now, with the row for the columns after them. An expiry the
    /// check found due is applied before answering, as every checking read
    /// does.
    async fn checked_read(&self, sql: &str) -> Result<(WorkUnitStatus, Option<Time>, Row)> {
        let shared = self.shared();
        let now = shared.now();
        shared
            .checked(Scope::Spec(self.spec.id), now, || async {
                let row = shared
                    .row_or(GONE, sql, &[&self.id, &now, &self.spec.id])
                    .await?;
                let not_before: Option<Time> = col(&row, 1)?;
                let status = unit_status(attempt_status_opt(&row, 0)?, not_before, now);
                let stale = col(&row, 2)?;
                Ok(((status, not_before, row), stale))
            })
            .await
    }

    pub(crate) fn shared(&self) -> &Arc<Shared> {
        &self.spec.shared
    }

    /// Runs `sql`, which changes this unit's row: `$1` is its id, `values`
    /// are `$2` on.
    async fn change(&self, sql: &str, values: &[&(dyn ToSql + Sync)]) -> Result<()> {
        self.shared().change_of(GONE, sql, self.id, values).await
    }

    /// An attempt handle on this unit from its id and worker row.
    /// Reads `a.id, w.id, w.name, w.namespace_id` and the worker's
    /// namespace's name from `at` on.
    fn attempt(self: &Arc<Self>, row: &tokio_postgres::Row, at: usize) -> Result<AttemptRef> {
        let worker = Arc::new(PgWorker::new(
            self.shared().clone(),
            (col(row, at + 3)?, text(row, at + 4)?),
            col(row, at + 1)?,
            text(row, at + 2)?,
        ));
        Ok(Arc::new(PgAttempt::new(
            self.clone(),
            worker,
            col(row, at)?,
        )))
    }

    pub(crate) fn clone_handle(&self) -> Arc<Self> {
        Arc::new(PgWorkUnit::new(
            self.spec.clone(),
            self.id,
            self.name.clone(),
        ))
    }
}

#[async_trait]
impl WorkUnit for PgWorkUnit {
    fn name(&self) -> &str {
        &self.name
    }

    fn work_spec(&self) -> WorkSpecRef {
        self.spec.clone()
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    async fn data(&self) -> Result<DataMap> {
        const DATA: &str = "SELECT COALESCE(a.data, u.data) FROM work_unit u
             LEFT JOIN attempt a ON a.id = u.active_attempt_id WHERE u.id = $1";
        let row = self.shared().row_or(GONE, DATA, &[&self.id]).await?;
        data_map(&row, 0)
    }

    async fn data_and_meta(&self) -> Result<(DataMap, WorkUnitMeta)> {
        const DATA_AND_META: &str = "SELECT COALESCE(a.data, u.data), u.priority, u.not_before
             FROM work_unit u LEFT JOIN attempt a ON a.id = u.active_attempt_id WHERE u.id = $1";
        let row = self
            .shared()
            .row_or(GONE, DATA_AND_META, &[&self.id])
            .await?;
        let meta = WorkUnitMeta {
            priority: col(&row, 1)?,
            not_before: col(&row, 2)?,
        };
        Ok((data_map(&row, 0)?, meta))
    }

    async fn status(&self) -> Result<WorkUnitStatus> {
        let (status, _, _) = self.checked_read(STATUS).await?;
        Ok(status)
    }

    async fn meta(&self) -> Result<WorkUnitMeta> {
        const META: &str = "SELECT priority, not_before FROM work_unit WHERE id = $1";
        let row = self.shared().row_or(GONE, META, &[&self.id]).await?;
        Ok(WorkUnitMeta {
            priority: col(&row, 0)?,
            not_before: col(&row, 1)?,
        })
    }

    /// One read-only statement, [`SNAPSHOT`], while nothing needs expiring.
    async fn snapshot(&self) -> Result<WorkUnitSnapshot> {
        let (status, not_before, row) = self.checked_read(SNAPSHOT).await?;
        let meta = WorkUnitMeta {
            priority: col(&row, 4)?,
            not_before,
        };
        Ok(WorkUnitSnapshot::new(status, data_map(&row, 3)?, meta))
    }

    async fn set_meta(&self, meta: WorkUnitMeta) -> Result<()> {
        let meta = limits::checked_unit_meta(meta)?;
        self.change(
            "UPDATE work_unit SET priority = $2, not_before = $3 WHERE id = $1",
            &[&meta.priority, &meta.not_before],
        )
        .await
    }

    async fn priority(&self) -> Result<f64> {
        const PRIORITY: &str = "SELECT priority FROM work_unit WHERE id = $1";
        col(&self.shared().row_or(GONE, PRIORITY, &[&self.id]).await?, 0)
    }

    async fn set_priority(&self, priority: f64) -> Result<()> {
        let priority = limits::checked_priority(priority)?;
        self.change(
            "UPDATE work_unit SET priority = $2 WHERE id = $1",
            &[&priority],
        )
        .await
    }

    async fn active_attempt(&self) -> Result<Option<AttemptRef>> {
        // The flag row makes the answer say whether anything needs
        // expiring, and whether the unit exists, even when it has no
        // active attempt: the unit's row, read once, joins it.
        const ACTIVE: &str = concat!(
            "SELECT a.id, w.id, w.name, w.namespace_id, n.name, f.stale, u.id IS NOT NULL
             FROM (SELECT ",
            expirable!("x.work_spec_id = $3", "$2"),
            ") f(stale) LEFT JOIN work_unit u ON u.id = $1
             LEFT JOIN (attempt a JOIN worker w ON w.id = a.worker_id
                 JOIN namespace n ON n.id = w.namespace_id)
             ON a.id = u.active_attempt_id AND NOT (a.status = 0 AND a.expiration_time < $2)"
        );
        let shared = self.shared();
        let now = shared.now();
        shared
            .checked(Scope::Spec(self.spec.id), now, || async {
                let client = shared.client().await?;
                let row = query_opt(&client, ACTIVE, &[&self.id, &now, &self.spec.id])
                    .await?
                    .ok_or_else(|| decode("the flag row is missing"))?;
                drop(client);
                if !col::<bool>(&row, 6)? {
                    return Err(GONE);
                }
                let id: Option<i64> = col(&row, 0)?;
                let active = match id {
                    Some(_) => Some(self.clone_handle().attempt(&row, 0)?),
                    None => None,
                };
                Ok((active, col(&row, 5)?))
            })
            .await
    }

    async fn clear_active_attempt(&self) -> Result<()> {
        // A pending attempt cleared away is detached (see migration 22).
        let row = self
            .shared()
            .row_retrying(|| GONE, "SELECT coordinate_clear_active($1)", &[&self.id])
            .await?;
        if !col::<bool>(&row, 0)? {
            return Err(GONE);
        }
        Ok(())
    }

    async fn attempts(&self) -> Result<Vec<AttemptRef>> {
        const ATTEMPTS: &str = "SELECT a.id, w.id, w.name, w.namespace_id, n.name
            FROM work_unit o LEFT JOIN (attempt a JOIN worker w ON w.id = a.worker_id
            JOIN namespace n ON n.id = w.namespace_id) ON a.work_unit_id = o.id
            WHERE o.id = $1 ORDER BY a.id";
        let rows = self
            .shared()
            .owned_rows(GONE, ATTEMPTS, &[&self.id])
            .await?;
        let me = self.clone_handle();
        rows.iter().map(|row| me.attempt(row, 0)).collect()
    }

    async fn num_attempts(&self) -> Result<u64> {
        const COUNT: &str = "SELECT (SELECT count(*) FROM attempt WHERE work_unit_id = o.id)
            FROM work_unit o WHERE o.id = $1";
        let row = self.shared().row_or(GONE, COUNT, &[&self.id]).await?;
        let n: i64 = col(&row, 0)?;
        u64::try_from(n).map_err(decode)
    }
}
