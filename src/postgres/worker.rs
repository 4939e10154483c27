//! Worker handles, including requesting work (§10).

use std::any::Any;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use async_trait::async_trait;
use deadpool_postgres::GenericClient;
use tokio_postgres::Row;

use super::attempt::{attempt_columns, attempt_from_row, PgAttempt};
use super::error::db;
use super::work_spec::{read_counted_meta, PgWorkSpec};
use super::work_unit::PgWorkUnit;
use super::{col, data_map, execute, json, meta_columns, query, query_opt, text, Scope, Shared};
use crate::api::{AttemptRef, WorkUnit, Worker, WorkerRef};
use crate::clock::checked_add;
use crate::error::{Error, Result};
use crate::model::{AttemptRequest, DataMap, Duration, Time, WorkSpecMeta};
use crate::rules;

/// A worker row.
#[derive(Debug)]
pub(crate) struct PgWorker {
    pub(crate) shared: Arc<Shared>,
    pub(crate) namespace_id: i64,
    pub(crate) id: i64,
    pub(crate) name: String,
}

/// Counted metas of every spec of a namespace for the scheduler: exact
/// pending counts; "available" is only 0 or 1, which is all the scheduler
/// distinguishes (`> 0`, `== 0`), and spares counting every idle unit.
const REQUEST_METAS: &str = concat!(
    "SELECT s.id, s.name, ",
    meta_columns!(),
    ", (EXISTS (SELECT 1 FROM work_unit u WHERE u.work_spec_id = s.id
            AND u.active_attempt_id IS NULL AND (u.not_before IS NULL OR u.not_before <= $2)))::int::int8,
        (SELECT count(*) FROM attempt a JOIN work_unit u
            ON u.id = a.work_unit_id AND u.active_attempt_id = a.id
            WHERE a.work_spec_id = s.id AND a.status = 0)
    FROM work_spec s WHERE s.namespace_id = $1"
);

/// [`REQUEST_METAS`] for the one chosen spec, read again under its lock.
const REQUEST_META: &str = concat!(
    "SELECT s.id, s.name, ",
    meta_columns!(),
    ", (EXISTS (SELECT 1 FROM work_unit u WHERE u.work_spec_id = s.id
            AND u.active_attempt_id IS NULL AND (u.not_before IS NULL OR u.not_before <= $2)))::int::int8,
        (SELECT count(*) FROM attempt a JOIN work_unit u
            ON u.id = a.work_unit_id AND u.active_attempt_id = a.id
            WHERE a.work_spec_id = s.id AND a.status = 0)
    FROM work_spec s WHERE s.id = $1"
);

/// Serialises hand-outs of one spec across processes, so `max_running` and
/// continuous generation see every earlier hand-out. `NO KEY UPDATE` does
/// not block the key-share locks of inserting units and attempts.
const LOCK_SPEC: &str = "SELECT 1 FROM work_spec WHERE id = $1 FOR NO KEY UPDATE";

/// Takes up to `$3` available units of spec `$1` in execution order
/// (priority descending, name ascending), skipping units another
/// transaction holds, gives each a pending attempt of worker `$4`, and
/// answers attempt id, unit id, unit name and (when `$6`) how many attempts
/// the unit has now, in that order.
const PICK: &str = "WITH picked AS (
        SELECT u.id, u.name, u.data, u.priority FROM work_unit u
        WHERE u.work_spec_id = $1 AND u.active_attempt_id IS NULL
          AND (u.not_before IS NULL OR u.not_before <= $2)
        ORDER BY u.priority DESC, u.name
        LIMIT $3
        FOR UPDATE SKIP LOCKED),
    created AS (
        INSERT INTO attempt (work_unit_id, work_spec_id, worker_id, status, data, start_time,
            expiration_time, on_active_list)
        SELECT p.id, $1, $4, 0, p.data, $2, $5, true FROM picked p
        RETURNING id, work_unit_id),
    linked AS (
        UPDATE work_unit u SET active_attempt_id = c.id FROM created c
        WHERE u.id = c.work_unit_id)
    SELECT c.id, p.id, p.name,
        CASE WHEN $6 THEN (SELECT count(*) FROM attempt x WHERE x.work_unit_id = p.id) + 1
             ELSE 0 END
    FROM created c JOIN picked p ON p.id = c.work_unit_id
    ORDER BY p.priority DESC, p.name";

/// Gives unit `$1` a new pending attempt of worker `$2` (§1.6) and makes it
/// the active one; answers the attempt id and the unit's attempt count.
pub(crate) const MAKE_ATTEMPT: &str = "WITH target AS (
        SELECT id, work_spec_id, data FROM work_unit WHERE id = $1 FOR UPDATE),
    created AS (
        INSERT INTO attempt (work_unit_id, work_spec_id, worker_id, status, data, start_time,
            expiration_time, on_active_list)
        SELECT t.id, t.work_spec_id, $2, 0, t.data, $3, $4, true FROM target t
        RETURNING id, work_unit_id),
    linked AS (
        UPDATE work_unit u SET active_attempt_id = c.id FROM created c
        WHERE u.id = c.work_unit_id)
    SELECT c.id, (SELECT count(*) FROM attempt x WHERE x.work_unit_id = c.work_unit_id) + 1
    FROM created c";

/// The generated unit of a continuous spec (§10.4); an existing unit of
/// that name is used as it is.
const CONTINUOUS_UNIT: &str = "INSERT INTO work_unit (work_spec_id, name, data, priority,
        not_before, active_attempt_id)
    VALUES ($1, $2, '{}', 0, NULL, NULL)
    ON CONFLICT (work_spec_id, name) DO UPDATE SET name = EXCLUDED.name
    RETURNING id";

/// One attempt made by a request: attempt id, unit id, unit name, attempts
/// of the unit including this one.
type Made = (i64, i64, String, i64);

impl PgWorker {
    pub(crate) fn new(shared: Arc<Shared>, namespace_id: i64, id: i64, name: String) -> Self {
        PgWorker {
            shared,
            namespace_id,
            id,
            name,
        }
    }

    fn clone_handle(&self) -> Arc<Self> {
        Arc::new(PgWorker::new(
            self.shared.clone(),
            self.namespace_id,
            self.id,
            self.name.clone(),
        ))
    }

    /// Reads `id, name, namespace_id` of a worker row from `at` on.
    fn worker_from_row(&self, row: &Row, at: usize) -> Result<WorkerRef> {
        Ok(Arc::new(PgWorker::new(
            self.shared.clone(),
            col(row, at + 2)?,
            col(row, at)?,
            text(row, at + 1)?,
        )))
    }

    /// One value of this worker's row.
    async fn field(&self, sql: &str) -> Result<Row> {
        let client = self.shared.client().await?;
        query_opt(&client, sql, &[&self.id])
            .await?
            .ok_or(Error::Gone)
    }

    /// Attempts of this worker's row selected by `sql` (in [`attempt_columns!`]).
    async fn attempt_list(&self, sql: &str) -> Result<Vec<AttemptRef>> {
        let client = self.shared.client().await?;
        let rows = query(&client, sql, &[&self.id]).await?;
        rows.iter()
            .map(|row| attempt_from_row(&self.shared, row))
            .collect()
    }

    /// One try of `request_attempts`, in one transaction (§10.3).
    async fn request_once(&self, request: &AttemptRequest) -> Result<Vec<AttemptRef>> {
        let shared = &self.shared;
        let now = shared.now();
        let wanted = request.number_of_work_units.max(1);
        let expiration = checked_add(now, request.effective_lifetime())?;
        let mut client = shared.client().await?;
        let tx = client.transaction().await.map_err(db)?;
        shared
            .expire(&tx, Scope::Namespace(self.namespace_id), now)
            .await?;

        let rows = query(&tx, REQUEST_METAS, &[&self.namespace_id, &now]).await?;
        let mut metas: BTreeMap<String, WorkSpecMeta> = BTreeMap::new();
        let mut ids: HashMap<String, i64> = HashMap::new();
        for row in &rows {
            let name = text(row, 1)?;
            if !request.work_specs.is_empty() && !request.work_specs.contains(&name) {
                continue;
            }
            let meta = read_counted_meta(row, 2)?;
            if !request.runtimes.is_empty() && !request.runtimes.contains(&meta.runtime) {
                continue;
            }
            ids.insert(name.clone(), col(row, 0)?);
            metas.insert(name, meta);
        }
        let chosen = match rules::schedule(&metas, now, request.available_gb) {
            Ok(name) => name,
            Err(Error::NoWork) => {
                tx.commit().await.map_err(db)?;
                return Ok(Vec::new());
            }
            Err(e) => return Err(e),
        };
        let spec_id = *ids
            .get(&chosen)
            .ok_or_else(|| super::decode("scheduler chose an unknown spec"))?;

        // Under the spec's lock, read its counts again: another process
        // may have handed out work since the scheduler's snapshot.
        let meta = match query_opt(&tx, LOCK_SPEC, &[&spec_id]).await? {
            Some(_) => match query_opt(&tx, REQUEST_META, &[&spec_id, &now]).await? {
                Some(row) => Some(read_counted_meta(&row, 2)?),
                None => None,
            },
            None => None,
        };
        let meta = match meta {
            Some(m) if rules::can_do_work(&m, now) => m,
            _ => {
                tx.commit().await.map_err(db)?;
                return Ok(Vec::new());
            }
        };
        let count = rules::attempt_count(wanted, &meta);
        let continuous = rules::can_start_continuous(&meta, now);
        let want_tries = meta.max_retries > 0;

        let mut created_any = false;
        let mut made: Vec<Made> = Vec::new();
        if count <= 0 {
            tx.commit().await.map_err(db)?;
            return Ok(Vec::new());
        }
        loop {
            let mut batch = Vec::new();
            for row in query(
                &tx,
                PICK,
                &[&spec_id, &now, &count, &self.id, &expiration, &want_tries],
            )
            .await?
            {
                batch.push((col(&row, 0)?, col(&row, 1)?, text(&row, 2)?, col(&row, 3)?));
            }
            if batch.is_empty() {
                if created_any || !continuous {
                    break;
                }
                batch.push(
                    self.make_continuous(&tx, spec_id, &meta, now, expiration)
                        .await?,
                );
            }
            created_any = true;
            if !want_tries {
                made = batch;
                break;
            }
            let (over, under): (Vec<Made>, Vec<Made>) =
                batch.into_iter().partition(|m| m.3 > meta.max_retries);
            if !over.is_empty() {
                let failed: Vec<i64> = over.iter().map(|m| m.0).collect();
                execute(
                    &tx,
                    "UPDATE attempt SET status = 3, data = $2, end_time = $3,
                         on_active_list = false
                     WHERE id = ANY($1)",
                    &[&failed, &json(&rules::too_many_retries_data()), &now],
                )
                .await?;
            }
            if !under.is_empty() {
                made = under;
                break;
            }
            // Every unit taken was over its retry limit and is now failed:
            // take the next ones of the same spec (§10.3 step 7).
        }
        tx.commit().await.map_err(db)?;

        let spec = Arc::new(PgWorkSpec::new(
            shared.clone(),
            self.namespace_id,
            spec_id,
            chosen,
        ));
        let me = self.clone_handle();
        Ok(made
            .into_iter()
            .map(|(attempt_id, unit_id, unit_name, _)| {
                let unit = Arc::new(PgWorkUnit::new(spec.clone(), unit_id, unit_name));
                Arc::new(PgAttempt::new(unit, me.clone(), attempt_id)) as AttemptRef
            })
            .collect())
    }

    /// Generates the continuous unit of a spec and its attempt (§10.4).
    async fn make_continuous<C: GenericClient>(
        &self,
        tx: &C,
        spec_id: i64,
        meta: &WorkSpecMeta,
        now: Time,
        expiration: Time,
    ) -> Result<Made> {
        let name = rules::continuous_unit_name(now);
        let row = query_opt(tx, CONTINUOUS_UNIT, &[&spec_id, &name.as_bytes()])
            .await?
            .ok_or(Error::Gone)?;
        let unit_id: i64 = col(&row, 0)?;
        let next = rules::limits::next_continuous(now, meta.interval);
        execute(
            tx,
            "UPDATE work_spec SET next_continuous = $2 WHERE id = $1",
            &[&spec_id, &next],
        )
        .await?;
        let row = query_opt(tx, MAKE_ATTEMPT, &[&unit_id, &self.id, &now, &expiration])
            .await?
            .ok_or(Error::Gone)?;
        Ok((col(&row, 0)?, unit_id, name, col(&row, 1)?))
    }
}

#[async_trait]
impl Worker for PgWorker {
    fn name(&self) -> &str {
        &self.name
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    async fn parent(&self) -> Result<Option<WorkerRef>> {
        let client = self.shared.client().await?;
        let row = query_opt(
            &client,
            "SELECT p.id, p.name, p.namespace_id FROM worker w JOIN worker p ON p.id = w.parent_id
             WHERE w.id = $1",
            &[&self.id],
        )
        .await?;
        row.map(|r| self.worker_from_row(&r, 0)).transpose()
    }

    async fn set_parent(&self, parent: Option<&dyn Worker>) -> Result<()> {
        let parent_id = match parent {
            None => None,
            Some(p) => match p.as_any().downcast_ref::<PgWorker>() {
                Some(p) if p.shared.same(&self.shared) => Some(p.id),
                _ => return Err(Error::WrongBackend),
            },
        };
        let client = self.shared.client().await?;
        let changed = execute(
            &client,
            "UPDATE worker SET parent_id = $2 WHERE id = $1",
            &[&self.id, &parent_id],
        )
        .await?;
        if changed == 0 {
            return Err(Error::Gone);
        }
        Ok(())
    }

    async fn children(&self) -> Result<Vec<WorkerRef>> {
        let client = self.shared.client().await?;
        let rows = query(
            &client,
            "SELECT id, name, namespace_id FROM worker WHERE parent_id = $1",
            &[&self.id],
        )
        .await?;
        rows.iter().map(|r| self.worker_from_row(r, 0)).collect()
    }

    async fn active(&self) -> Result<bool> {
        col(
            &self
                .field("SELECT active FROM worker WHERE id = $1")
                .await?,
            0,
        )
    }

    async fn deactivate(&self) -> Result<()> {
        let client = self.shared.client().await?;
        let changed = execute(
            &client,
            "UPDATE worker SET active = false WHERE id = $1",
            &[&self.id],
        )
        .await?;
        if changed == 0 {
            return Err(Error::Gone);
        }
        Ok(())
    }

    async fn mode(&self) -> Result<String> {
        text(
            &self.field("SELECT mode FROM worker WHERE id = $1").await?,
            0,
        )
    }

    async fn data(&self) -> Result<DataMap> {
        data_map(
            &self.field("SELECT data FROM worker WHERE id = $1").await?,
            0,
        )
    }

    async fn expiration(&self) -> Result<Time> {
        col(
            &self
                .field("SELECT expiration FROM worker WHERE id = $1")
                .await?,
            0,
        )
    }

    async fn last_update(&self) -> Result<Time> {
        col(
            &self
                .field("SELECT last_update FROM worker WHERE id = $1")
                .await?,
            0,
        )
    }

    async fn update(&self, data: DataMap, now: Time, expiration: Time, mode: &str) -> Result<()> {
        let (data, now, expiration) = rules::limits::checked_worker_update(data, now, expiration)?;
        let client = self.shared.client().await?;
        let changed = execute(
            &client,
            "UPDATE worker SET active = true, data = $2, last_update = $3, expiration = $4,
                 mode = $5
             WHERE id = $1",
            &[&self.id, &json(&data), &now, &expiration, &mode.as_bytes()],
        )
        .await?;
        if changed == 0 {
            return Err(Error::Gone);
        }
        Ok(())
    }

    async fn request_attempts(&self, request: AttemptRequest) -> Result<Vec<AttemptRef>> {
        self.shared.retrying(|| self.request_once(&request)).await
    }

    async fn make_attempt(&self, unit: &dyn WorkUnit, lifetime: Duration) -> Result<AttemptRef> {
        let unit = match unit.as_any().downcast_ref::<PgWorkUnit>() {
            Some(u) if u.shared().same(&self.shared) => u,
            _ => return Err(Error::WrongBackend),
        };
        let shared = &self.shared;
        let id: i64 = shared
            .retrying(|| async {
                let now = shared.now();
                let expiration = checked_add(now, rules::make_attempt_lifetime(lifetime))?;
                let client = shared.client().await?;
                let row = query_opt(
                    &client,
                    MAKE_ATTEMPT,
                    &[&unit.id, &self.id, &now, &expiration],
                )
                .await?
                .ok_or(Error::Gone)?;
                col(&row, 0)
            })
            .await?;
        let unit = Arc::new(PgWorkUnit::new(
            unit.spec.clone(),
            unit.id,
            unit.name.clone(),
        ));
        Ok(Arc::new(PgAttempt::new(unit, self.clone_handle(), id)))
    }

    async fn active_attempts(&self) -> Result<Vec<AttemptRef>> {
        const SQL: &str = concat!(
            "SELECT ",
            attempt_columns!(),
            " WHERE a.worker_id = $1 AND a.on_active_list ORDER BY a.id"
        );
        self.attempt_list(SQL).await
    }

    async fn all_attempts(&self) -> Result<Vec<AttemptRef>> {
        const SQL: &str = concat!(
            "SELECT ",
            attempt_columns!(),
            " WHERE a.worker_id = $1 ORDER BY a.id"
        );
        self.attempt_list(SQL).await
    }

    async fn child_attempts(&self) -> Result<Vec<AttemptRef>> {
        const SQL: &str = concat!(
            "SELECT ",
            attempt_columns!(),
            " WHERE a.worker_id IN (SELECT id FROM worker WHERE parent_id = $1)
                AND a.on_active_list ORDER BY a.id"
        );
        self.attempt_list(SQL).await
    }
}
