//! Attempt handles and their state changes.

use std::any::Any;
use std::borrow::Cow;
use std::sync::Arc;

use async_trait::async_trait;
use tokio_postgres::types::FromSqlOwned;
use tokio_postgres::types::Json;
use tokio_postgres::Row;

use super::jsonb::Jsonb;
use super::work_spec::PgWorkSpec;
use super::work_unit::PgWorkUnit;
use super::worker::PgWorker;
use super::{
    attempt_status, col, data_map, decode, expirable, json, query_opt, status_code, text, Scope,
    Shared, MAX_TRIES,
};
use crate::api::{Attempt, AttemptRef, WorkUnitRef, WorkerRef};
use crate::clock::checked_add;
use crate::error::{Error, ObjectKind, Result};
use crate::model::{AttemptSnapshot, AttemptStatus, DataMap, Duration, Time};
use crate::rules::chained_units;

/// What a call on this handle answers when its row (or an ancestor's) is gone.
const GONE: Error = Error::Gone {
    kind: ObjectKind::Attempt,
};

/// A `SELECT` of the columns [`attempt_from_row`] reads, of the attempts of
/// one worker: `$from` joins its row `o` (`$1` its id) to the workers whose
/// attempts count, `$on` picks their attempts; by attempt id. A macro so
/// the statement is one constant string. Rows come as
/// [`Shared::owned_rows`](super::Shared::owned_rows) reads them: none when
/// the worker is gone, one without an attempt when it has none.
macro_rules! worker_attempts {
    ($from:literal, $on:literal) => {
        concat!(
            "SELECT a.id, u.id, u.name, s.id, s.name, s.namespace_id, w.id, w.name, w.namespace_id, wn.name,
            sn.name
         FROM worker o",
            $from,
            " LEFT JOIN (attempt a JOIN work_unit u ON u.id = a.work_unit_id
         JOIN work_spec s ON s.id = u.work_spec_id JOIN namespace sn ON sn.id = s.namespace_id
         JOIN worker w ON w.id = a.worker_id JOIN namespace wn ON wn.id = w.namespace_id) ON ",
            $on,
            " WHERE o.id = $1 ORDER BY a.id"
        )
    };
}
pub(crate) use worker_attempts;

/// An attempt handle from a row of [`worker_attempts!`] with an attempt.
pub(crate) fn attempt_from_row(shared: &Arc<Shared>, row: &Row) -> Result<AttemptRef> {
    let spec = Arc::new(PgWorkSpec::new(
        shared.clone(),
        (col(row, 5)?, text(row, 10)?),
        col(row, 3)?,
        text(row, 4)?,
    ));
    let unit = Arc::new(PgWorkUnit::new(spec, col(row, 1)?, text(row, 2)?));
    let worker = Arc::new(PgWorker::new(
        shared.clone(),
        (col(row, 8)?, text(row, 9)?),
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

/// A read of attempt `$1` (now `$2`, spec id `$3`): its status, end and
/// expiration times, whether an expiry check at `$2` would expire it, and
/// whether such a check over its spec would expire anything; then
/// `$columns`.
macro_rules! checked_attempt {
    ($columns:literal) => {
        concat!(
            "SELECT a.status, a.end_time, a.expiration_time,
                a.status = 0 AND a.expiration_time < $2
                AND u.active_attempt_id IS NOT DISTINCT FROM a.id, ",
            expirable!("x.work_spec_id = $3", "$2"),
            $columns,
            " FROM attempt a JOIN work_unit u ON u.id = a.work_unit_id WHERE a.id = $1"
        )
    };
}

/// The status, end and expiration times.
const STATE: &str = checked_attempt!("");

/// [`Attempt::snapshot`]'s statement: [`STATE`]'s, then the data and the
/// start time.
const SNAPSHOT: &str = checked_attempt!(", a.data, a.start_time");

/// renew, expire, fail and retry, in one statement (the function's codes
/// for them are the attempt statuses they lead to, renew 0).
const CHANGE: &str = "SELECT coordinate_change($1, $2, $3, $4, $5)";

/// finish, including chaining, in one statement.
const FINISH: &str =
    "SELECT outcome, stored FROM coordinate_finish($1, $2, $3, $4, $5, $6, $7, $8)";

/// A state-changing call.
#[derive(Debug, Clone, Copy)]
enum Change {
    Renew(Duration),
    Expire,
    Fail,
    Retry(Duration),
}

/// What the state-changing functions answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Done,
    Gone,
    NotPending,
    LostLease,
    /// Chaining needs the units parsed from the stored data.
    NeedsUnits,
}

impl Outcome {
    fn from_code(code: i16) -> Result<Self> {
        match code {
            0 => Ok(Outcome::Done),
            1 => Ok(Outcome::Gone),
            2 => Ok(Outcome::NotPending),
            3 => Ok(Outcome::LostLease),
            4 => Ok(Outcome::NeedsUnits),
            _ => Err(decode(format!("unknown state change outcome {code}"))),
        }
    }

    fn into_result(self) -> Result<()> {
        match self {
            Outcome::Done => Ok(()),
            Outcome::Gone => Err(GONE),
            Outcome::NotPending => Err(Error::NotPending),
            Outcome::LostLease => Err(Error::LostLease),
            Outcome::NeedsUnits => Err(decode("chaining asked for units it was given")),
        }
    }
}

/// Units for chaining, as the columns `coordinate_finish` takes.
#[derive(Debug, Default)]
struct Chained {
    names: Vec<Vec<u8>>,
    datas: Vec<Jsonb<'static>>,
    priorities: Vec<f64>,
    not_befores: Vec<Option<Time>>,
}

impl Chained {
    /// The units `effective` chains at `now`, NUL-escaped for storage, in
    /// name order: the order `add_work_units` locks units in, so that a
    /// finish and a bulk add (or two finishes) that touch the same units
    /// never wait for each other both ways. Names are distinct.
    fn parse(effective: &DataMap, now: Time) -> Self {
        let mut chained = Chained::default();
        let mut units = chained_units(effective, now);
        units.sort_unstable_by(|a, b| a.name.as_bytes().cmp(b.name.as_bytes()));
        for unit in units {
            chained.names.push(unit.name.into_bytes());
            chained.datas.push(Jsonb(Cow::Owned(
                super::nul::escape(&unit.data).into_owned(),
            )));
            chained.priorities.push(unit.meta.priority);
            chained.not_befores.push(unit.meta.not_before);
        }
        chained
    }
}

impl PgAttempt {
    pub(crate) fn new(unit: Arc<PgWorkUnit>, worker: Arc<PgWorker>, id: i64) -> Self {
        PgAttempt { unit, worker, id }
    }

    fn shared(&self) -> &Arc<Shared> {
        self.unit.shared()
    }

    /// One value of this attempt's row that needs no expiry check, decoded
    /// by `read`.
    async fn field<T>(&self, sql: &str, read: fn(&Row, usize) -> Result<T>) -> Result<T> {
        self.shared().field_of(GONE, sql, self.id, read).await
    }

    /// One such value that decodes as it is stored.
    async fn value<T: FromSqlOwned>(&self, sql: &str) -> Result<T> {
        self.field(sql, |row, i| col(row, i)).await
    }

    /// Status, end time and expiration time after an expiry check, and
    /// the row of `sql`, a [`checked_attempt!`] read, for its columns after
    /// them.
    async fn checked_read(&self, sql: &str) -> Result<(AttemptStatus, Option<Time>, Time, Row)> {
        let shared = self.shared();
        let spec = self.unit.spec.id;
        let now = shared.now();
        shared
            .checked(Scope::Spec(spec), now, || async {
                let row = shared.row_or(GONE, sql, &[&self.id, &now, &spec]).await?;
                let expired: bool = col(&row, 3)?;
                let (status, end) = if expired {
                    (AttemptStatus::Expired, Some(now))
                } else {
                    (attempt_status(&row, 0)?, col(&row, 1)?)
                };
                let (expiration, stale) = (col(&row, 2)?, col(&row, 4)?);
                Ok(((status, end, expiration, row), stale))
            })
            .await
    }

    /// Status, end time and expiration time after an expiry check.
    async fn state(&self) -> Result<(AttemptStatus, Option<Time>, Time)> {
        let (status, end, expiration, _) = self.checked_read(STATE).await?;
        Ok((status, end, expiration))
    }

    /// Runs `change` in one statement, retried on deadlock.
    async fn change(&self, change: Change, data: Option<DataMap>) -> Result<()> {
        let shared = self.shared();
        let data = data.as_ref().map(json);
        let code = shared
            .retrying(|| async {
                let now = shared.now();
                let (kind, until) = match change {
                    Change::Renew(extend) => (0, Some(checked_add(now, extend)?)),
                    Change::Expire => (status_code(AttemptStatus::Expired), None),
                    Change::Fail => (status_code(AttemptStatus::Failed), None),
                    Change::Retry(delay) => (
                        status_code(AttemptStatus::Retryable),
                        Some(checked_add(now, delay)?),
                    ),
                };
                let client = shared.client().await?;
                let row = query_opt(&client, CHANGE, &[&self.id, &kind, &now, &data, &until])
                    .await?
                    .ok_or_else(|| decode("a state change answered no row"))?;
                col::<i16>(&row, 0)
            })
            .await;
        let code = shared
            .gone_before_range(
                code,
                GONE,
                "SELECT 1 FROM attempt WHERE id = $1",
                &[&self.id],
            )
            .await?;
        Outcome::from_code(code)?.into_result()
    }

    /// finish and chaining in one statement. Units to chain
    /// are parsed here from the finishing data; without data, and only if
    /// chaining would happen, the function first answers the stored data to
    /// parse and is called again with its units.
    async fn finish_chaining(&self, data: Option<DataMap>) -> Result<()> {
        let shared = self.shared();
        let escaped = data.as_ref().map(json);
        let mut parsed: Option<Json<serde_json::Value>> = None;
        let mut chained = Chained::default();
        // One instant for the whole finish: the end time and the chained
        // units' delays, whichever call parses them.
        let now = shared.now();
        for _ in 0..MAX_TRIES {
            if let Some(d) = &data {
                chained = Chained::parse(d, now);
            }
            let row = shared
                .row_retrying(
                    || decode("finish answered no row"),
                    FINISH,
                    &[
                        &self.id,
                        &now,
                        &escaped,
                        &parsed,
                        &chained.names,
                        &chained.datas,
                        &chained.priorities,
                        &chained.not_befores,
                    ],
                )
                .await?;
            let outcome = Outcome::from_code(col(&row, 0)?)?;
            if outcome != Outcome::NeedsUnits {
                return outcome.into_result();
            }
            // The stored data has an `output` to chain: parse it, and have
            // the function check that it is still the stored data.
            let Json(stored): Json<serde_json::Value> = col(&row, 1)?;
            let serde_json::Value::Object(map) = &stored else {
                return Err(decode("attempt data is not an object"));
            };
            chained = Chained::parse(&super::nul::unescape(map.clone()), now);
            parsed = Some(Json(stored));
        }
        Err(decode(
            "the attempt's data kept changing while it was finished",
        ))
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

    fn id(&self) -> Option<u64> {
        u64::try_from(self.id).ok()
    }

    async fn status(&self) -> Result<AttemptStatus> {
        Ok(self.state().await?.0)
    }

    async fn data(&self) -> Result<DataMap> {
        self.field("SELECT data FROM attempt WHERE id = $1", data_map)
            .await
    }

    async fn start_time(&self) -> Result<Time> {
        self.value("SELECT start_time FROM attempt WHERE id = $1")
            .await
    }

    async fn end_time(&self) -> Result<Option<Time>> {
        Ok(self.state().await?.1)
    }

    async fn expiration_time(&self) -> Result<Time> {
        Ok(self.state().await?.2)
    }

    /// One read-only statement, [`SNAPSHOT`], while nothing needs expiring.
    async fn snapshot(&self) -> Result<AttemptSnapshot> {
        let (status, end, expiration, row) = self.checked_read(SNAPSHOT).await?;
        Ok(AttemptSnapshot::new(
            status,
            data_map(&row, 5)?,
            col(&row, 6)?,
            end,
            expiration,
        ))
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
        self.finish_chaining(data).await
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
