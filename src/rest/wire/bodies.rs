//! Request bodies.

use serde::{Deserialize, Serialize};

use super::documents::{AttemptDocument, WorkUnitMetaDocument};
use super::query::parse_status;
use super::scalars::{is_zero_f64, is_zero_i64, null_as_default, optional_object};
use super::QueryError;
use super::{data, duration, int, opt_time, priority};
use crate::model::{AttemptRequest, DataMap, Duration, Time, WorkSpecMeta, WorkUnitQuery};

/// `POST` to the namespace list: get or create a namespace.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct NamespaceBody {
    /// The name; absent or `null` is the empty name.
    #[serde(deserialize_with = "null_as_default")]
    pub name: String,
}

/// `POST` to the work spec list and `PUT` on a work spec: only `data` is read.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct WorkSpecBody {
    /// The definition; `None` when absent or `null`.
    #[serde(with = "data")]
    pub data: Option<DataMap>,
}

/// `POST` to the work unit collection (upsert), and the body of the bulk
/// priority operations (of which only `meta.priority` is read).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct WorkUnitBody {
    /// The unit's name; absent or `null` is the empty name.
    #[serde(deserialize_with = "null_as_default")]
    pub name: String,
    /// The unit's data; `None` when absent or `null`.
    #[serde(with = "data", skip_serializing_if = "Option::is_none")]
    pub data: Option<DataMap>,
    /// Priority and not-before; `None` when absent or `null`.
    #[serde(
        deserialize_with = "optional_object",
        skip_serializing_if = "Option::is_none"
    )]
    pub meta: Option<WorkUnitMetaDocument>,
}

/// The body of the bulk priority operations (`change` and `adjust`): of a
/// work-unit-shaped document only `meta.priority` is read; every other
/// field, and `meta`'s, is skipped unread, whatever it holds.
#[derive(Debug, Clone, Copy, PartialEq, Default, Deserialize)]
#[serde(default)]
pub struct PriorityBody {
    /// The priority to set or add; `None` when `meta` is absent or `null`
    /// (the call then does nothing).
    #[serde(deserialize_with = "optional_object")]
    pub meta: Option<PriorityOnly>,
}

/// A work unit meta of which only the priority is read.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct PriorityOnly {
    /// The priority; absent is 0.
    #[serde(with = "priority")]
    pub priority: f64,
}

/// `PUT` on a work spec's meta: the fields `set_meta` sets. The meta
/// document's other fields (`can_be_continuous`, `next_work_spec_name`,
/// the counts, `runtime`) are skipped unread, whatever they hold; an
/// absent field is zero.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct WorkSpecMetaBody {
    /// Absolute priority.
    #[serde(with = "int")]
    pub priority: i64,
    /// Relative weight.
    #[serde(with = "int")]
    pub weight: i64,
    /// Never scheduled while paused.
    #[serde(deserialize_with = "null_as_default")]
    pub paused: bool,
    /// Generates units when idle.
    #[serde(deserialize_with = "null_as_default")]
    pub continuous: bool,
    /// Memory hint; omitted when 0.
    #[serde(
        deserialize_with = "null_as_default",
        skip_serializing_if = "is_zero_f64"
    )]
    pub min_memory_gb: f64,
    /// Time between generated continuous units.
    #[serde(with = "duration")]
    pub interval: Duration,
    /// Earliest next continuous unit.
    #[serde(with = "opt_time")]
    pub next_continuous: Option<Time>,
    /// Maximum pending units; 0 is unlimited.
    #[serde(with = "int")]
    pub max_running: i64,
    /// Maximum attempts per request; 0 is unlimited.
    #[serde(with = "int")]
    pub max_attempts_returned: i64,
    /// Maximum attempts per unit; 0 is unlimited.
    #[serde(with = "int")]
    pub max_retries: i64,
}

impl From<WorkSpecMeta> for WorkSpecMetaBody {
    fn from(meta: WorkSpecMeta) -> Self {
        WorkSpecMetaBody {
            priority: meta.priority,
            weight: meta.weight,
            paused: meta.paused,
            continuous: meta.continuous,
            min_memory_gb: meta.min_memory_gb,
            interval: meta.interval,
            next_continuous: meta.next_continuous,
            max_running: meta.max_running,
            max_attempts_returned: meta.max_attempts_returned,
            max_retries: meta.max_retries,
        }
    }
}

impl From<WorkSpecMetaBody> for WorkSpecMeta {
    fn from(body: WorkSpecMetaBody) -> Self {
        WorkSpecMeta {
            priority: body.priority,
            weight: body.weight,
            paused: body.paused,
            continuous: body.continuous,
            min_memory_gb: body.min_memory_gb,
            interval: body.interval,
            next_continuous: body.next_continuous,
            max_running: body.max_running,
            max_attempts_returned: body.max_attempts_returned,
            max_retries: body.max_retries,
            ..WorkSpecMeta::default()
        }
    }
}

/// What a `POST` to a work spec's `work_unit_select_url` does with the units
/// its query selects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SelectAction {
    /// Answer them, as a work unit list (the query `GET`).
    #[default]
    List,
    /// Delete them, answering `{"Deleted": n}` (the query `DELETE`).
    Delete,
    /// Set their priority to `meta.priority` (the `change` `POST`).
    Change,
    /// Add `meta.priority` to their priority (the `adjust` `POST`).
    Adjust,
}

/// `POST` to a work spec's `work_unit_select_url`, an extension
/// `coordinated` serves: a work unit query carried in the body, so that a
/// query of any size is one request, and so one atomic operation. The
/// fields are the query parameters, read the same way, except that names
/// and `previous` are plain JSON strings.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct WorkUnitSelectBody {
    /// What to do with the selected units.
    pub action: SelectAction,
    /// Select only units of these names (any unit when empty).
    #[serde(
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub name: Vec<String>,
    /// Select only units of these statuses (any status when empty).
    #[serde(
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub status: Vec<String>,
    /// Select only names strictly greater than this one.
    #[serde(
        deserialize_with = "null_as_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub previous: String,
    /// At most this many units, the first in name order; 0 or less is no
    /// limit.
    #[serde(with = "int", skip_serializing_if = "is_zero_i64")]
    pub limit: i64,
    /// For `change` and `adjust`, the priority (the rest of a meta is
    /// skipped unread); without it they do nothing.
    #[serde(
        deserialize_with = "optional_object",
        skip_serializing_if = "Option::is_none"
    )]
    pub meta: Option<PriorityOnly>,
}

impl WorkUnitSelectBody {
    /// The body that does `action` to the units `query` selects.
    pub fn new(action: SelectAction, query: &WorkUnitQuery) -> Self {
        WorkUnitSelectBody {
            action,
            name: query.names.clone(),
            status: query
                .statuses
                .iter()
                .map(|s| s.as_str().to_owned())
                .collect(),
            previous: query.previous_name.clone(),
            limit: query.limit.max(0),
            meta: None,
        }
    }

    /// The query it carries.
    pub fn into_query(self) -> Result<WorkUnitQuery, QueryError> {
        let statuses = self
            .status
            .iter()
            .map(|s| parse_status(s))
            .collect::<Result<_, _>>()?;
        Ok(WorkUnitQuery {
            names: self.name,
            statuses,
            previous_name: self.previous,
            limit: self.limit.max(0),
        })
    }
}

/// `PUT` on a work unit: clear the active attempt and/or replace the meta.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct WorkUnitUpdateBody {
    /// Exactly `"-"` clears the active attempt.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub active_attempt_url: Option<String>,
    /// A new meta (priority and not-before), if present.
    #[serde(
        deserialize_with = "optional_object",
        skip_serializing_if = "Option::is_none"
    )]
    pub meta: Option<WorkUnitMetaDocument>,
}

impl WorkUnitUpdateBody {
    /// The `active_attempt_url` value that clears the active attempt.
    pub const CLEAR_ACTIVE_ATTEMPT: &'static str = "-";
}

/// `POST` to an attempt action (renew, expire, finish, fail, retry).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct AttemptActionBody {
    /// Replacement data; absent or `null` keeps the current data, `{}`
    /// replaces it with an empty map.
    #[serde(with = "data", skip_serializing_if = "Option::is_none")]
    pub data: Option<DataMap>,
    /// `renew`: the new expiration is now plus this.
    #[serde(with = "duration")]
    pub extend_duration: Duration,
    /// `retry`: the unit's not-before is now plus this.
    #[serde(with = "duration")]
    pub delay: Duration,
}

/// `PUT` on a worker: set or clear the parent, then update or deactivate.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct WorkerUpdateBody {
    /// A parent name different from the current one changes the parent;
    /// `""` clears it; absent or `null` leaves it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parent: Option<String>,
    /// The URL of the worker to make the parent, which may belong to
    /// another namespace (`parent` names one of the worker's own); read
    /// when `parent` is absent or names the same worker name, so that a
    /// worker document put back whole keeps its parent and one with
    /// `parent` changed is read as the API says. An extension: servers
    /// without it ignore the field and leave the parent as it was.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parent_url: Option<String>,
    /// `true`: update with the fields below and mark active; otherwise an
    /// active worker is deactivated.
    #[serde(deserialize_with = "null_as_default")]
    pub active: bool,
    /// The worker's data (update only).
    #[serde(with = "data")]
    pub data: Option<DataMap>,
    /// The mode (update only).
    #[serde(deserialize_with = "null_as_default")]
    pub mode: String,
    /// The expiration (update only).
    #[serde(with = "opt_time")]
    pub expiration: Option<Time>,
    /// The worker's "now" (update only).
    #[serde(with = "opt_time")]
    pub last_update: Option<Time>,
}

/// `POST` to a worker's `request_attempts`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct AttemptRequestBody {
    /// The worker's memory; if positive, only specs needing at most this.
    #[serde(
        deserialize_with = "null_as_default",
        serialize_with = "super::scalars::finite_gb"
    )]
    pub available_gb: f64,
    /// Lease of the returned attempts; 0 is the default.
    #[serde(with = "duration")]
    pub lifetime: Duration,
    /// How many attempts are wanted; below 1 means 1.
    #[serde(with = "int")]
    pub number_of_work_units: i64,
    /// Only these specs, if any.
    #[serde(deserialize_with = "null_as_default")]
    pub work_specs: Vec<String>,
    /// Only these runtimes, if any.
    #[serde(deserialize_with = "null_as_default")]
    pub runtimes: Vec<String>,
}

same_fields!(AttemptRequest <=> AttemptRequestBody {
    available_gb,
    lifetime,
    number_of_work_units,
    work_specs,
    runtimes,
});

/// The answer of `request_attempts`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct AttemptRequestResult {
    /// The work spec of every returned attempt; omitted when there are none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub work_spec_url: Option<String>,
    /// Complete attempt documents (`null` read as none).
    #[serde(default, deserialize_with = "null_as_default")]
    pub attempts: Vec<AttemptDocument>,
}

/// `POST` to a worker's `make_attempt`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct MakeAttemptBody {
    /// The work spec's name, in the worker's namespace.
    #[serde(deserialize_with = "null_as_default")]
    pub work_spec: String,
    /// The work unit's name.
    #[serde(deserialize_with = "null_as_default")]
    pub work_unit: String,
    /// The URL of the work unit, which may belong to another namespace
    /// (`work_spec` and `work_unit` name one of the worker's own); read
    /// only when both names are empty. An extension: a client sends it with
    /// empty names, so a server without it fails instead of choosing the
    /// worker namespace's namesake.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub work_unit_url: Option<String>,
    /// Lease; 0 is the default.
    #[serde(with = "duration")]
    pub lifetime: Duration,
}
