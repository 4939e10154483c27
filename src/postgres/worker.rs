//! Worker handles, including requesting work.

use std::any::Any;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use async_trait::async_trait;
use tokio_postgres::types::FromSqlOwned;
use tokio_postgres::types::ToSql;
use tokio_postgres::Row;

use super::attempt::{attempt_from_row, worker_attempts, PgAttempt};
use super::work_spec::PgWorkSpec;
use super::work_unit::PgWorkUnit;
use super::{
    col, data_map, expirable, json, meta_columns, query, query_opt, read_meta, text, Scope, Shared,
    META_WIDTH,
};
use crate::api::{AttemptRef, WorkUnitRef, Worker, WorkerRef};
use crate::clock::checked_add;
use crate::detached::handed_out;
use crate::error::{Error, ObjectKind, Result};
use crate::model::{AttemptRequest, DataMap, Duration, Time, WorkSpecMeta};
use crate::rules;

/// What a call on this handle answers when its row (or an ancestor's) is gone.
const GONE: Error = Error::Gone {
    kind: ObjectKind::Worker,
};

/// A worker row.
#[derive(Debug)]
pub(crate) struct PgWorker {
    pub(crate) shared: Arc<Shared>,
    pub(crate) namespace_id: i64,
    pub(crate) namespace_name: String,
    pub(crate) id: i64,
    pub(crate) name: String,
}

/// Counted metas of every spec in the namespace of worker `$1` for the
/// scheduler, as of an expiry check at `$2`, read-only: no row when the
/// worker is gone, one whose spec columns are NULL when its namespace has
/// no spec, so that one statement answers both; exact pending counts; "available" is
/// only 0 or 1, which is all the scheduler distinguishes (`> 0`, `== 0`),
/// and spares counting every idle unit; last, whether the check would
/// expire anything in the spec. The first ready unit is looked up in the
/// ready index's order, so that the plan walks that index rather than
/// scanning the table for a match (an `EXISTS` would let it, and a spec
/// whose units sit behind a large one's would pay for the large one);
/// waiting units whose time has come are a range of the waiting index. The
/// pending count is the spec's counter less the attempts past their
/// deadline; an attempt's unit is fetched by key in a subquery of its own.
pub(crate) const REQUEST_METAS: &str = concat!(
    "SELECT s.id, s.name, ",
    meta_columns!(),
    ", ((SELECT u.id FROM work_unit u WHERE u.work_spec_id = s.id
            AND u.state = 0 AND (u.not_before IS NULL OR u.not_before <= $2)
            ORDER BY u.priority DESC, u.name LIMIT 1) IS NOT NULL
        OR EXISTS (SELECT 1 FROM work_unit u WHERE u.work_spec_id = s.id
            AND u.state = 4 AND u.not_before <= $2)
        OR EXISTS (SELECT 1 FROM attempt a
            WHERE a.work_spec_id = s.id AND a.status = 0 AND a.expiration_time < $2
              AND (SELECT u.not_before IS NULL OR u.not_before <= $2 FROM work_unit u
                   WHERE u.id = a.work_unit_id AND u.active_attempt_id = a.id)))::int::int8,
        (SELECT COALESCE(sum(k.pending), 0)::int8 FROM work_unit_count k
            WHERE k.work_spec_id = s.id)
        - (SELECT count(*) FROM attempt a
            WHERE a.work_spec_id = s.id AND a.status = 0 AND a.expiration_time < $2
              AND (SELECT u.active_attempt_id FROM work_unit u WHERE u.id = a.work_unit_id)
                  = a.id), ",
    expirable!("x.work_spec_id = s.id", "$2"),
    " FROM worker w LEFT JOIN work_spec s ON s.namespace_id = w.namespace_id WHERE w.id = $1"
);

/// A row if worker `$1` exists.
const WORKER_EXISTS: &str = "SELECT 1 FROM worker WHERE id = $1";

/// Hands out units of the chosen spec (see the migration's
/// `coordinate_hand_out`): the expiry check when one is due, `max_running`,
/// `max_attempts_returned`, `max_retries` and continuous generation, in one
/// statement. A row without an attempt says every unit taken was over its
/// retry limit.
pub(crate) const REQUEST: &str = "SELECT attempt_id, unit_id, unit_name
    FROM coordinate_hand_out($1, $2, $3, $4, $5, $6, $7, $8)";

/// Gives unit `$1` a new pending attempt of worker `$2` (start `$3`,
/// deadline `$4`) and makes it the active one, detaching the one it
/// supersedes (migration 22); answers the attempt id, NULL without the unit.
pub(crate) const MAKE_ATTEMPT: &str = "SELECT coordinate_make_attempt($1, $2, $3, $4)";

impl PgWorker {
    /// A handle on worker `id`, named `name`, of namespace
    /// `namespace_name` (`namespace_id`).
    pub(crate) fn new(
        shared: Arc<Shared>,
        (namespace_id, namespace_name): (i64, String),
        id: i64,
        name: String,
    ) -> Self {
        PgWorker {
            shared,
            namespace_id,
            namespace_name,
            id,
            name,
        }
    }

    fn clone_handle(&self) -> Arc<Self> {
        Arc::new(PgWorker::new(
            self.shared.clone(),
            (self.namespace_id, self.namespace_name.clone()),
            self.id,
            self.name.clone(),
        ))
    }

    /// Reads `id, name, namespace_id`, the namespace's name of a worker row
    /// from `at` on.
    fn worker_from_row(&self, row: &Row, at: usize) -> Result<WorkerRef> {
        Ok(Arc::new(PgWorker::new(
            self.shared.clone(),
            (col(row, at + 2)?, text(row, at + 3)?),
            col(row, at)?,
            text(row, at + 1)?,
        )))
    }

    /// One value of this worker's row, decoded by `read`.
    async fn field<T>(&self, sql: &str, read: fn(&Row, usize) -> Result<T>) -> Result<T> {
        self.shared.field_of(GONE, sql, self.id, read).await
    }

    /// One value of this worker's row that decodes as it is stored.
    async fn value<T: FromSqlOwned>(&self, sql: &str) -> Result<T> {
        self.field(sql, |row, i| col(row, i)).await
    }

    /// Runs `sql`, which changes this worker's row: `$1` is its id,
    /// `values` are `$2` on.
    async fn change(&self, sql: &str, values: &[&(dyn ToSql + Sync)]) -> Result<()> {
        self.shared.change_of(GONE, sql, self.id, values).await
    }

    /// Attempts of this worker selected by `sql` (by [`worker_attempts!`]).
    async fn attempt_list(&self, sql: &str) -> Result<Vec<AttemptRef>> {
        let rows = self.shared.owned_rows(GONE, sql, &[&self.id]).await?;
        rows.iter()
            .map(|row| attempt_from_row(&self.shared, row))
            .collect()
    }

    /// `request_attempts`, run to its end.
    async fn hand_out(&self, request: &AttemptRequest) -> Result<Vec<AttemptRef>> {
        let result = self.shared.retrying(|| self.request_once(request)).await;
        self.shared
            .gone_before_range(result, GONE, WORKER_EXISTS, &[&self.id])
            .await
            .map_err(|e| e.on(ObjectKind::Worker))
    }

    /// `make_attempt` on one of this backend's units, run to its end.
    async fn make_attempt_on(
        &self,
        unit: Arc<PgWorkUnit>,
        lifetime: Duration,
    ) -> Result<AttemptRef> {
        let shared = &self.shared;
        let made = shared
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
                .ok_or(GONE)?;
                col::<Option<i64>>(&row, 0)?.ok_or(GONE)
            })
            .await;
        let id = shared
            .gone_before_range(
                made,
                GONE,
                "SELECT 1 FROM work_unit u, worker w WHERE u.id = $1 AND w.id = $2",
                &[&unit.id, &self.id],
            )
            .await
            .map_err(|e| e.on(ObjectKind::Worker))?;
        Ok(Arc::new(PgAttempt::new(unit, self.clone_handle(), id)))
    }

    /// One try of `request_attempts`, in two statements: the
    /// schedulable specs' counts as of an expiry check, read-only; then the
    /// hand-out from the spec the scheduler chose, which also applies that
    /// expiry check when it found anything to expire. A spec that concurrent
    /// requests emptied after the counts were read yields nothing: the
    /// scheduler then chooses again from the counts without it, one more
    /// statement per such spec.
    async fn request_once(&self, request: &AttemptRequest) -> Result<Vec<AttemptRef>> {
        let shared = &self.shared;
        let now = shared.now();
        let expiration = checked_add(now, request.effective_lifetime())?;
        let client = shared.client().await?;

        let rows = query(&client, REQUEST_METAS, &[&self.id, &now]).await?;
        if rows.is_empty() {
            return Err(GONE);
        }
        let mut metas: BTreeMap<String, WorkSpecMeta> = BTreeMap::new();
        let mut ids: HashMap<String, i64> = HashMap::new();
        let mut stale = false;
        let choice = rules::SpecChoice::of(request);
        for row in &rows {
            let Some(spec_id) = col::<Option<i64>>(row, 0)? else {
                // The worker's namespace has no spec.
                continue;
            };
            stale |= col::<bool>(row, 4 + META_WIDTH)?;
            let name = text(row, 1)?;
            let mut meta = read_meta(row, 2)?;
            if !choice.admits(&name, &meta.runtime) {
                continue;
            }
            meta.available_count = col(row, 2 + META_WIDTH)?;
            meta.pending_count = col(row, 3 + META_WIDTH)?;
            ids.insert(name.clone(), spec_id);
            metas.insert(name, meta);
        }
        let (chosen, spec_id, made) = loop {
            let Some(chosen) = rules::schedule(&metas, now, request.available_gb) else {
                drop(client);
                shared
                    .settle(Scope::Namespace(self.namespace_id), now, stale)
                    .await?;
                return Ok(Vec::new());
            };
            let (Some(spec_id), Some(meta)) = (ids.get(&chosen).copied(), metas.remove(&chosen))
            else {
                return Err(super::decode("scheduler chose an unknown spec"));
            };
            let continuous_name =
                rules::can_start_continuous(&meta, now).then(|| rules::continuous_unit_name(now));
            let made = query(
                &client,
                REQUEST,
                &[
                    &spec_id,
                    &self.id,
                    &rules::limits::requested_attempts(request.number_of_work_units),
                    &now,
                    &expiration,
                    &json(&rules::too_many_retries_data()),
                    &continuous_name.as_deref().map(str::as_bytes),
                    &stale.then_some(self.namespace_id),
                ],
            )
            .await?;
            // The hand-out applied the expiry check.
            stale = false;
            // A chosen spec yields no row only when concurrent requests took
            // its units after the counts were read; had they run first, the
            // choice would have been among the other specs.
            if !made.is_empty() {
                break (chosen, spec_id, made);
            }
        };
        drop(client);

        let spec = Arc::new(PgWorkSpec::new(
            shared.clone(),
            (self.namespace_id, self.namespace_name.clone()),
            spec_id,
            chosen,
        ));
        let me = self.clone_handle();
        let mut attempts = Vec::with_capacity(made.len());
        for row in &made {
            // The row without an attempt, when the units were all over their
            // retry limit.
            let Some(attempt_id) = col::<Option<i64>>(row, 0)? else {
                continue;
            };
            let unit = Arc::new(PgWorkUnit::new(spec.clone(), col(row, 1)?, text(row, 2)?));
            attempts.push(Arc::new(PgAttempt::new(unit, me.clone(), attempt_id)) as AttemptRef);
        }
        Ok(attempts)
    }
}

#[async_trait]
impl Worker for PgWorker {
    fn name(&self) -> &str {
        &self.name
    }

    fn namespace_name(&self) -> &str {
        &self.namespace_name
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    async fn parent(&self) -> Result<Option<WorkerRef>> {
        const PARENT: &str = "SELECT p.id, p.name, p.namespace_id, n.name FROM worker o
            LEFT JOIN (worker p JOIN namespace n ON n.id = p.namespace_id) ON p.id = o.parent_id
            WHERE o.id = $1";
        let rows = self.shared.owned_rows(GONE, PARENT, &[&self.id]).await?;
        rows.first().map(|r| self.worker_from_row(r, 0)).transpose()
    }

    async fn set_parent(&self, parent: Option<&WorkerRef>) -> Result<()> {
        let parent_id = match parent {
            None => None,
            Some(p) => match p.as_any().downcast_ref::<PgWorker>() {
                Some(p) if p.shared.same(&self.shared) => Some(p.id),
                _ => return Err(Error::WrongBackend),
            },
        };
        self.change(
            "UPDATE worker SET parent_id = $2 WHERE id = $1",
            &[&parent_id],
        )
        .await
    }

    async fn children(&self) -> Result<Vec<WorkerRef>> {
        const CHILDREN: &str = "SELECT c.id, c.name, c.namespace_id, n.name FROM worker o
            LEFT JOIN (worker c JOIN namespace n ON n.id = c.namespace_id) ON c.parent_id = o.id
            WHERE o.id = $1";
        let rows = self.shared.owned_rows(GONE, CHILDREN, &[&self.id]).await?;
        rows.iter().map(|r| self.worker_from_row(r, 0)).collect()
    }

    async fn active(&self) -> Result<bool> {
        self.value("SELECT active FROM worker WHERE id = $1").await
    }

    async fn deactivate(&self) -> Result<()> {
        self.change("UPDATE worker SET active = false WHERE id = $1", &[])
            .await
    }

    async fn mode(&self) -> Result<String> {
        self.field("SELECT mode FROM worker WHERE id = $1", text)
            .await
    }

    async fn data(&self) -> Result<DataMap> {
        self.field("SELECT data FROM worker WHERE id = $1", data_map)
            .await
    }

    async fn expiration(&self) -> Result<Time> {
        self.value("SELECT expiration FROM worker WHERE id = $1")
            .await
    }

    async fn last_update(&self) -> Result<Time> {
        self.value("SELECT last_update FROM worker WHERE id = $1")
            .await
    }

    async fn update(&self, data: DataMap, now: Time, expiration: Time, mode: &str) -> Result<()> {
        let (data, now, expiration) =
            rules::limits::checked_worker_update(data, now, expiration, mode)?;
        const UPDATE: &str = "UPDATE worker SET active = true, data = $2, last_update = $3,
                 expiration = $4, mode = $5
             WHERE id = $1";
        self.change(UPDATE, &[&json(&data), &now, &expiration, &mode.as_bytes()])
            .await
    }

    /// In a task of its own: its statement ends even if the caller stops
    /// waiting, and the attempts of a caller gone by then are expired.
    async fn request_attempts(&self, request: &AttemptRequest) -> Result<Vec<AttemptRef>> {
        let (me, request) = (self.clone_handle(), request.clone());
        handed_out(async move { me.hand_out(&request).await }).await
    }

    /// In a task of its own, as `request_attempts`.
    async fn make_attempt(&self, unit: &WorkUnitRef, lifetime: Duration) -> Result<AttemptRef> {
        let unit = match unit.as_any().downcast_ref::<PgWorkUnit>() {
            Some(u) if u.shared().same(&self.shared) => u.clone_handle(),
            _ => return Err(Error::WrongBackend),
        };
        let me = self.clone_handle();
        handed_out(async move { me.make_attempt_on(unit, lifetime).await }).await
    }

    async fn active_attempts(&self) -> Result<Vec<AttemptRef>> {
        self.attempt_list(worker_attempts!(
            "",
            "a.worker_id = o.id AND a.on_active_list"
        ))
        .await
    }

    async fn all_attempts(&self) -> Result<Vec<AttemptRef>> {
        self.attempt_list(worker_attempts!("", "a.worker_id = o.id"))
            .await
    }

    async fn child_attempts(&self) -> Result<Vec<AttemptRef>> {
        self.attempt_list(worker_attempts!(
            " LEFT JOIN worker c ON c.parent_id = o.id",
            "a.worker_id = c.id AND a.on_active_list"
        ))
        .await
    }
}
