//! Attempt handles and their state changes (§9).

use std::any::Any;
use std::sync::Arc;

use async_trait::async_trait;
use deadpool_postgres::GenericClient;
use tokio_postgres::Row;

use super::error::db;
use super::work_spec::{upsert_unit, PgWorkSpec};
use super::work_unit::PgWorkUnit;
use super::worker::PgWorker;
use super::{
    attempt_status, col, data_map, execute, json, query_opt, status_code, text, Scope, Shared,
};
use crate::api::{Attempt, AttemptRef, WorkUnitRef, WorkerRef};
use crate::clock::checked_add;
use crate::error::{Error, Result};
use crate::model::{AttemptStatus, DataMap, Duration, Time};
use crate::rules::chained_units;

/// The columns [`attempt_from_row`] reads, and the joins they need; a macro
/// so statements can `concat!` it.
macro_rules! attempt_columns {
    () => {
        "a.id, u.id, u.name, s.id, s.name, s.namespace_id, w.id, w.name, w.namespace_id
         FROM attempt a JOIN work_unit u ON u.id = a.work_unit_id
         JOIN work_spec s ON s.id = u.work_spec_id JOIN worker w ON w.id = a.worker_id"
    };
}
pub(crate) use attempt_columns;

/// An attempt handle from a row of [`attempt_columns!`].
pub(crate) fn attempt_from_row(shared: &Arc<Shared>, row: &Row) -> Result<AttemptRef> {
    let spec = Arc::new(PgWorkSpec::new(
        shared.clone(),
        col(row, 5)?,
        col(row, 3)?,
        text(row, 4)?,
    ));
    let unit = Arc::new(PgWorkUnit::new(spec, col(row, 1)?, text(row, 2)?));
    let worker = Arc::new(PgWorker::new(
        shared.clone(),
        col(row, 8)?,
        col(row, 6)?,
        text(row, 7)?,
    ));
    Ok(Arc::new(PgAttempt::new(unit, worker, col(row, 0)?)))
}

/// An attempt row.
#[derive(Debug)]
pub(crate) struct PgAttempt {
    unit: Arc<PgWorkUnit>,
    worker: Arc<PgWorker>,
    id: i64,
}

/// The attempt's state, its unit's link to it and its spec's chaining
/// target, with the attempt and unit rows locked for the change.
const LOCK: &str = "SELECT a.status, COALESCE(u.active_attempt_id = a.id, false),
        s.next_work_spec_name, s.namespace_id
    FROM attempt a JOIN work_unit u ON u.id = a.work_unit_id
    JOIN work_spec s ON s.id = u.work_spec_id
    WHERE a.id = $1
    FOR UPDATE OF a, u";

/// complete(S, data) of §9.2: status, end time, data if given, and off the
/// worker's active list.
const COMPLETE: &str = "UPDATE attempt SET status = $2, end_time = $3,
        data = COALESCE($4, data), on_active_list = false
    WHERE id = $1";

/// Clears unit `$1`'s active link if it is attempt `$2`.
const CLEAR_LINK: &str =
    "UPDATE work_unit SET active_attempt_id = NULL WHERE id = $1 AND active_attempt_id = $2";

/// The common `finish` in one statement: a pending attempt whose finish
/// cannot chain (its spec has no `then`, or it is not the active attempt)
/// is completed as Finished. Anything else changes nothing here and takes
/// the general path. Answers nothing for a missing attempt, else whether
/// it finished.
const FINISH_SIMPLE: &str = "WITH cur AS (
        SELECT a.id, a.status, COALESCE(u.active_attempt_id = a.id, false) AS active,
            length(s.next_work_spec_name) = 0 AS no_chain
        FROM attempt a JOIN work_unit u ON u.id = a.work_unit_id
        JOIN work_spec s ON s.id = u.work_spec_id
        WHERE a.id = $1
        FOR UPDATE OF a, u),
    done AS (
        UPDATE attempt SET status = 2, end_time = $2, data = COALESCE($3, attempt.data),
            on_active_list = false
        FROM cur
        WHERE attempt.id = cur.id AND cur.status = 0 AND (cur.no_chain OR NOT cur.active)
        RETURNING attempt.id)
    SELECT EXISTS (SELECT 1 FROM done) FROM cur";

/// What a state change found under its locks.
struct Locked {
    status: AttemptStatus,
    active: bool,
    next_spec: String,
    namespace_id: i64,
}

/// A state-changing call (§9.2).
#[derive(Debug, Clone, Copy)]
enum Change {
    Renew(Duration),
    Expire,
    Finish,
    Fail,
    Retry(Duration),
}

impl PgAttempt {
    pub(crate) fn new(unit: Arc<PgWorkUnit>, worker: Arc<PgWorker>, id: i64) -> Self {
        PgAttempt { unit, worker, id }
    }

    fn shared(&self) -> &Arc<Shared> {
        self.unit.shared()
    }

    /// One value of this attempt's row, optionally after an expiry check.
    async fn field(&self, sql: &str, expire: bool) -> Result<Row> {
        if expire {
            self.shared()
                .expire_now(Scope::Spec(self.unit.spec.id))
                .await?;
        }
        let client = self.shared().client().await?;
        query_opt(&client, sql, &[&self.id])
            .await?
            .ok_or(Error::Gone)
    }

    /// Runs `change` in one transaction, retried on deadlock.
    async fn change(&self, change: Change, data: Option<DataMap>) -> Result<()> {
        let shared = self.shared();
        shared
            .retrying(|| self.change_once(change, data.as_ref()))
            .await
    }

    async fn change_once(&self, change: Change, data: Option<&DataMap>) -> Result<()> {
        let shared = self.shared();
        let now = shared.now();
        let mut client = shared.client().await?;
        let tx = client.transaction().await.map_err(db)?;
        let row = query_opt(&tx, LOCK, &[&self.id])
            .await?
            .ok_or(Error::Gone)?;
        let locked = Locked {
            status: attempt_status(&row, 0)?,
            active: col(&row, 1)?,
            next_spec: text(&row, 2)?,
            namespace_id: col(&row, 3)?,
        };
        use AttemptStatus::*;
        // *live*: pending, or expired while still active (§9.2).
        let live = locked.status == Pending || (locked.status == Expired && locked.active);
        let outcome = match change {
            Change::Renew(extend) => {
                if !matches!(locked.status, Pending | Expired) {
                    return Err(Error::NotPending);
                }
                if locked.active {
                    let expiration = checked_add(now, extend)?;
                    execute(
                        &tx,
                        "UPDATE attempt SET expiration_time = $2, status = 0,
                             data = COALESCE($3, data)
                         WHERE id = $1",
                        &[&self.id, &expiration, &data.map(json)],
                    )
                    .await?;
                    Ok(())
                } else {
                    self.complete(&tx, Expired, now, data).await?;
                    Err(Error::LostLease)
                }
            }
            Change::Expire => match locked.status {
                Expired => Ok(()),
                Pending => {
                    self.complete(&tx, Expired, now, data).await?;
                    if locked.active {
                        execute(&tx, CLEAR_LINK, &[&self.unit.id, &self.id]).await?;
                    }
                    Ok(())
                }
                _ => return Err(Error::NotPending),
            },
            Change::Finish => {
                if !(live || locked.status == Failed) {
                    return Err(Error::NotPending);
                }
                self.complete(&tx, Finished, now, data).await?;
                if locked.active {
                    self.chain(&tx, &locked, data, now).await?;
                }
                Ok(())
            }
            Change::Fail => {
                if !live {
                    return Err(Error::NotPending);
                }
                self.complete(&tx, Failed, now, data).await?;
                Ok(())
            }
            Change::Retry(delay) => {
                if !live {
                    return Err(Error::NotPending);
                }
                let not_before = checked_add(now, delay)?;
                self.complete(&tx, Retryable, now, data).await?;
                execute(
                    &tx,
                    "UPDATE work_unit SET not_before = $3,
                         active_attempt_id = CASE WHEN active_attempt_id = $2 THEN NULL
                                                  ELSE active_attempt_id END
                     WHERE id = $1",
                    &[&self.unit.id, &self.id, &not_before],
                )
                .await?;
                Ok(())
            }
        };
        tx.commit().await.map_err(db)?;
        outcome
    }

    async fn complete<C: GenericClient>(
        &self,
        tx: &C,
        status: AttemptStatus,
        now: Time,
        data: Option<&DataMap>,
    ) -> Result<()> {
        execute(
            tx,
            COMPLETE,
            &[&self.id, &status_code(status), &now, &data.map(json)],
        )
        .await?;
        Ok(())
    }

    /// Work unit chaining (§11) after a successful finish of the active
    /// attempt, in the finishing transaction.
    async fn chain<C: GenericClient>(
        &self,
        tx: &C,
        locked: &Locked,
        data: Option<&DataMap>,
        now: Time,
    ) -> Result<()> {
        if locked.next_spec.is_empty() {
            return Ok(());
        }
        let effective = match data {
            Some(d) => d.clone(),
            None => {
                let row = query_opt(tx, "SELECT data FROM attempt WHERE id = $1", &[&self.id])
                    .await?
                    .ok_or(Error::Gone)?;
                data_map(&row, 0)?
            }
        };
        let units = chained_units(&effective, now);
        if units.is_empty() {
            return Ok(());
        }
        let Some(row) = query_opt(
            tx,
            "SELECT id FROM work_spec WHERE namespace_id = $1 AND name = $2",
            &[&locked.namespace_id, &locked.next_spec.as_bytes()],
        )
        .await?
        else {
            return Ok(());
        };
        let next_id: i64 = col(&row, 0)?;
        for unit in &units {
            upsert_unit(tx, next_id, &unit.name, &unit.data, &unit.meta).await?;
        }
        Ok(())
    }
}

#[async_trait]
impl Attempt for PgAttempt {
    fn work_unit(&self) -> WorkUnitRef {
        self.unit.clone()
    }

    fn worker(&self) -> WorkerRef {
        self.worker.clone()
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    async fn status(&self) -> Result<AttemptStatus> {
        attempt_status(
            &self
                .field("SELECT status FROM attempt WHERE id = $1", true)
                .await?,
            0,
        )
    }

    async fn data(&self) -> Result<DataMap> {
        data_map(
            &self
                .field("SELECT data FROM attempt WHERE id = $1", false)
                .await?,
            0,
        )
    }

    async fn start_time(&self) -> Result<Time> {
        col(
            &self
                .field("SELECT start_time FROM attempt WHERE id = $1", false)
                .await?,
            0,
        )
    }

    async fn end_time(&self) -> Result<Option<Time>> {
        col(
            &self
                .field("SELECT end_time FROM attempt WHERE id = $1", true)
                .await?,
            0,
        )
    }

    async fn expiration_time(&self) -> Result<Time> {
        col(
            &self
                .field("SELECT expiration_time FROM attempt WHERE id = $1", true)
                .await?,
            0,
        )
    }

    async fn renew(&self, extend: Duration, data: Option<DataMap>) -> Result<()> {
        let data = crate::rules::limits::checked_optional_data(data)?;
        self.change(Change::Renew(extend), data).await
    }

    async fn expire(&self, data: Option<DataMap>) -> Result<()> {
        let data = crate::rules::limits::checked_optional_data(data)?;
        self.change(Change::Expire, data).await
    }

    async fn finish(&self, data: Option<DataMap>) -> Result<()> {
        let data = crate::rules::limits::checked_optional_data(data)?;
        let shared = self.shared();
        let finished: bool = shared
            .retrying(|| async {
                let now = shared.now();
                let client = shared.client().await?;
                let row = query_opt(
                    &client,
                    FINISH_SIMPLE,
                    &[&self.id, &now, &data.as_ref().map(json)],
                )
                .await?
                .ok_or(Error::Gone)?;
                col(&row, 0)
            })
            .await?;
        if finished {
            return Ok(());
        }
        self.change(Change::Finish, data).await
    }

    async fn fail(&self, data: Option<DataMap>) -> Result<()> {
        let data = crate::rules::limits::checked_optional_data(data)?;
        self.change(Change::Fail, data).await
    }

    async fn retry(&self, data: Option<DataMap>, delay: Duration) -> Result<()> {
        let data = crate::rules::limits::checked_optional_data(data)?;
        self.change(Change::Retry(delay), data).await
    }
}
