//! Request bodies.

use serde::{Deserialize, Serialize};

use super::documents::{AttemptDocument, WorkUnitMetaDocument};
use super::scalars::{null_as_empty, optional_object};
use super::{data, duration, int, opt_time};
use crate::model::{AttemptRequest, DataMap, Duration, Time};

/// `POST` to the namespace list: get or create a namespace.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct NamespaceBody {
    /// The name; absent is the empty name.
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
    /// The unit's name; absent is the empty name.
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
    /// another namespace (`parent` names one of the worker's own); takes
    /// precedence over `parent`. An extension: servers without it ignore
    /// the field and leave the parent as it was.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parent_url: Option<String>,
    /// `true`: update with the fields below and mark active; otherwise an
    /// active worker is deactivated.
    pub active: bool,
    /// The worker's data (update only).
    #[serde(with = "data")]
    pub data: Option<DataMap>,
    /// The mode (update only).
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
    pub available_gb: f64,
    /// Lease of the returned attempts; 0 is the default.
    #[serde(with = "duration")]
    pub lifetime: Duration,
    /// How many attempts are wanted; below 1 means 1.
    #[serde(with = "int")]
    pub number_of_work_units: i64,
    /// Only these specs, if any.
    #[serde(deserialize_with = "null_as_empty")]
    pub work_specs: Vec<String>,
    /// Only these runtimes, if any.
    #[serde(deserialize_with = "null_as_empty")]
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
    #[serde(default, deserialize_with = "null_as_empty")]
    pub attempts: Vec<AttemptDocument>,
}

/// `POST` to a worker's `make_attempt`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct MakeAttemptBody {
    /// The work spec's name, in the worker's namespace.
    pub work_spec: String,
    /// The work unit's name.
    pub work_unit: String,
    /// The URL of the work unit, which may belong to another namespace
    /// (`work_spec` and `work_unit` name one of the worker's own); takes
    /// precedence over them. An extension: a client sends it with empty
    /// names, so a server without it fails instead of choosing the worker
    /// namespace's namesake.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub work_unit_url: Option<String>,
    /// Lease; 0 is the default.
    #[serde(with = "duration")]
    pub lifetime: Duration,
}
