//! Representations: the documents the server answers with.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::bodies::WorkSpecMetaBody;
use super::data::data_is_empty;
use super::flat::{AttemptFields, WorkUnitFields};
use super::scalars::{is_empty_str, null_as_default};
use super::{attempt_status, data, int, opt_time, priority, time, unit_status};
use crate::model::{
    AttemptStatus, DataMap, SummaryRecord, Time, WorkSpecMeta, WorkUnitMeta, WorkUnitStatus,
};

/// The root document: the entry point of the API.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct RootDocument {
    /// Always empty.
    pub url: String,
    /// The summary of every namespace.
    pub summary_url: String,
    /// The namespace list.
    pub namespaces_url: String,
    /// Template with `{namespace}`.
    pub namespace_url: String,
}

/// A named object in a list: namespaces, work specs and work units.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct NamedLink {
    /// The object's name.
    pub name: String,
    /// The object's URL.
    pub url: String,
}

/// The namespace list.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct NamespaceList {
    /// Every namespace, unordered.
    #[serde(default, deserialize_with = "null_as_default")]
    pub namespaces: Vec<NamedLink>,
}

/// A namespace.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct NamespaceDocument {
    /// Its name.
    pub name: String,
    /// Its URL.
    pub url: String,
    /// Its summary.
    pub summary_url: String,
    /// Its work spec list (`GET`) and creation (`POST`).
    pub work_specs_url: String,
    /// Template with `{spec}`.
    pub work_spec_url: String,
    /// The worker collection (no methods).
    pub workers_url: String,
    /// Template with `{worker}`.
    pub worker_url: String,
}

/// The work spec list.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct WorkSpecList {
    /// Every work spec, unordered.
    #[serde(default, deserialize_with = "null_as_default")]
    pub work_specs: Vec<NamedLink>,
}

/// A work spec.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct WorkSpecDocument {
    /// Its name.
    pub name: String,
    /// Its URL.
    pub url: String,
    /// Its definition; `null` when none.
    #[serde(with = "data::answer")]
    pub data: Option<DataMap>,
    /// Its summary.
    pub summary_url: String,
    /// Its units: `GET` lists all, `POST` creates.
    pub work_units_url: String,
    /// Template with `{unit}`.
    pub work_unit_url: String,
    /// Template with `{?name*,status*,previous,limit}`: `GET` and `DELETE`.
    pub work_unit_query_url: String,
    /// Status counts.
    pub work_unit_counts_url: String,
    /// Query template: `POST` sets priorities.
    pub work_unit_change_url: String,
    /// Query template: `POST` adds to priorities.
    pub work_unit_adjust_url: String,
    /// An extension `coordinated` serves: `POST` a
    /// [`WorkUnitSelectBody`](super::WorkUnitSelectBody) to list, delete or
    /// re-prioritise the units its query selects in one request. Empty from
    /// a server without it.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub work_unit_select_url: String,
    /// Template with `{?counts}` (the key is `meta`, not `meta_url`).
    pub meta: String,
}

/// A work spec's meta: the fields `set_meta` sets (read back from a `PUT`
/// as [`WorkSpecMetaBody`]), and those only read.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct WorkSpecMetaDocument {
    /// Priority, weight, limits and the continuous settings.
    #[serde(flatten)]
    pub settable: WorkSpecMetaBody,
    /// Whether the definition allows `continuous` (ignored on input).
    pub can_be_continuous: bool,
    /// The spec finished units chain to (ignored on input).
    pub next_work_spec_name: String,
    /// Available units, when counts were asked for (ignored on input).
    #[serde(with = "int")]
    pub available_count: i64,
    /// Pending units, when counts were asked for (ignored on input).
    #[serde(with = "int")]
    pub pending_count: i64,
    /// Required worker runtime (ignored on input).
    pub runtime: String,
}

impl From<WorkSpecMeta> for WorkSpecMetaDocument {
    fn from(meta: WorkSpecMeta) -> Self {
        WorkSpecMetaDocument {
            can_be_continuous: meta.can_be_continuous,
            available_count: meta.available_count,
            pending_count: meta.pending_count,
            next_work_spec_name: meta.next_work_spec_name.clone(),
            runtime: meta.runtime.clone(),
            settable: WorkSpecMetaBody::from(meta),
        }
    }
}

impl From<WorkSpecMetaDocument> for WorkSpecMeta {
    fn from(document: WorkSpecMetaDocument) -> Self {
        WorkSpecMeta {
            can_be_continuous: document.can_be_continuous,
            next_work_spec_name: document.next_work_spec_name,
            available_count: document.available_count,
            pending_count: document.pending_count,
            runtime: document.runtime,
            ..WorkSpecMeta::from(document.settable)
        }
    }
}

/// The status counts of a work spec: status text → count, zero counts absent.
pub type CountsDocument = BTreeMap<String, u64>;

/// A work unit's meta.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct WorkUnitMetaDocument {
    /// Higher runs first.
    #[serde(with = "priority")]
    pub priority: f64,
    /// Not handed out before this instant.
    #[serde(with = "opt_time")]
    pub not_before: Option<Time>,
}

same_fields!(WorkUnitMeta <=> WorkUnitMetaDocument {
    priority,
    not_before,
});

/// The work unit list.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct WorkUnitList {
    /// The selected units, unordered.
    #[serde(default, deserialize_with = "null_as_default")]
    pub work_units: Vec<NamedLink>,
}

/// The first fields of both work unit documents.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkUnitHead {
    /// Its name.
    #[serde(default)]
    pub name: String,
    /// Its URL.
    #[serde(default)]
    pub url: String,
    /// Its visible data; omitted when empty.
    #[serde(default, with = "data::answer", skip_serializing_if = "data_is_empty")]
    pub data: Option<DataMap>,
    /// Priority and not-before time; always present.
    pub meta: WorkUnitMetaDocument,
}

/// A work unit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "WorkUnitFields")]
pub struct WorkUnitDocument {
    /// Its name, URL, data and meta.
    #[serde(flatten)]
    pub head: WorkUnitHead,
    /// Its status.
    #[serde(with = "unit_status")]
    pub status: WorkUnitStatus,
    /// The owning work spec.
    #[serde(default)]
    pub work_spec_url: String,
    /// Its attempt list.
    #[serde(default)]
    pub attempts_url: String,
    /// Its active attempt; omitted when there is none.
    #[serde(default, skip_serializing_if = "is_empty_str")]
    pub active_attempt_url: String,
}

/// A work unit read without an expiry check: the answer to
/// `GET <unit url>?check=false`, an extension of this server. It is the
/// work unit document without `status` and `active_attempt_url`, whose
/// computation is the expiry check; a server without the extension
/// ignores the query and answers the whole document, which reads as this
/// one too.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(from = "WorkUnitFields")]
pub struct UncheckedWorkUnitDocument {
    /// Its name, URL, data and meta.
    #[serde(flatten)]
    pub head: WorkUnitHead,
    /// The owning work spec.
    #[serde(default)]
    pub work_spec_url: String,
    /// Its attempt list.
    #[serde(default)]
    pub attempts_url: String,
}

/// An attempt in a list.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(from = "AttemptFields")]
pub struct AttemptSummary {
    /// The attempt's URL.
    #[serde(default)]
    pub url: String,
    /// Its work unit.
    #[serde(default)]
    pub work_unit_url: String,
    /// Its worker.
    #[serde(default)]
    pub worker_url: String,
    /// When it started (full precision).
    #[serde(with = "time")]
    pub start_time: Time,
    /// The names behind the links, an extension of this server.
    #[serde(flatten)]
    pub names: AttemptNames,
}

/// The names of an attempt's spec, unit and worker and its spec's URL: an
/// extension of this server, absent from other servers' documents (the API
/// tells clients to ignore fields they do not know). With all four, a
/// client makes handles for the attempt's unit and worker without
/// following their links.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct AttemptNames {
    /// Its work spec's URL.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub work_spec_url: Option<String>,
    /// Its work spec's name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub work_spec_name: Option<String>,
    /// Its work unit's name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub work_unit_name: Option<String>,
    /// Its worker's name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub worker_name: Option<String>,
}

impl AttemptNames {
    /// The spec's URL and the spec's, unit's and worker's names, if all four
    /// are present: enough to make the handles.
    pub fn all(&self) -> Option<(&str, &str, &str, &str)> {
        match self {
            AttemptNames {
                work_spec_url: Some(spec_url),
                work_spec_name: Some(spec),
                work_unit_name: Some(unit),
                worker_name: Some(worker),
            } => Some((spec_url, spec, unit, worker)),
            _ => None,
        }
    }
}

/// An attempt list.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct AttemptList {
    /// The attempts.
    #[serde(default, deserialize_with = "null_as_default")]
    pub attempts: Vec<AttemptSummary>,
}

/// The action endpoints of an attempt, the last fields of both attempt
/// documents.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct AttemptActionLinks {
    /// `POST` renews.
    pub renew_url: String,
    /// `POST` expires.
    pub expire_url: String,
    /// `POST` finishes.
    pub finish_url: String,
    /// `POST` fails.
    pub fail_url: String,
    /// `POST` retries.
    pub retry_url: String,
}

/// An attempt.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "AttemptFields")]
pub struct AttemptDocument {
    /// Its URL, its unit's and worker's, and its start.
    #[serde(flatten)]
    pub summary: AttemptSummary,
    /// Its status.
    #[serde(with = "attempt_status")]
    pub status: AttemptStatus,
    /// Its data; omitted when empty.
    #[serde(default, with = "data::answer", skip_serializing_if = "data_is_empty")]
    pub data: Option<DataMap>,
    /// When it left pending; unset while pending.
    #[serde(default, with = "opt_time")]
    pub end_time: Option<Time>,
    /// When its lease runs out.
    #[serde(with = "time")]
    pub expiration_time: Time,
    /// Its action endpoints.
    #[serde(flatten)]
    pub actions: AttemptActionLinks,
}

/// An attempt read without an expiry check: the answer to
/// `GET <attempt url>?check=false` and to `POST <make_attempt url>?check=false`,
/// an extension of this server. It is the
/// attempt document without `status`, `end_time` and `expiration_time`,
/// whose computation is the expiry check; a whole attempt document reads
/// as this one too.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(from = "AttemptFields")]
pub struct UncheckedAttemptDocument {
    /// Its URL, its unit's and worker's, and its start.
    #[serde(flatten)]
    pub summary: AttemptSummary,
    /// Its data; omitted when empty.
    #[serde(default, with = "data::answer", skip_serializing_if = "data_is_empty")]
    pub data: Option<DataMap>,
    /// Its action endpoints.
    #[serde(flatten)]
    pub actions: AttemptActionLinks,
}

/// A worker.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkerDocument {
    /// Its name.
    #[serde(default)]
    pub name: String,
    /// Its URL.
    #[serde(default)]
    pub url: String,
    /// The parent's name; omitted when there is none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<String>,
    /// The parent's URL; present exactly when `parent` is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_url: Option<String>,
    /// The children's URLs; omitted when none.
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub child_urls: Vec<String>,
    /// The active flag.
    #[serde(default)]
    pub active: bool,
    /// The mode string.
    #[serde(default)]
    pub mode: String,
    /// Its data; `null` when it has none.
    #[serde(default, with = "data::answer")]
    pub data: Option<DataMap>,
    /// Informational expiration.
    #[serde(with = "time")]
    pub expiration: Time,
    /// The last update, as the worker said.
    #[serde(with = "time")]
    pub last_update: Time,
    /// `POST` asks for work.
    #[serde(default)]
    pub request_attempts_url: String,
    /// `POST` makes an attempt for a named unit.
    #[serde(default)]
    pub make_attempt_url: String,
    /// Its active attempts.
    #[serde(default)]
    pub active_attempts_url: String,
    /// All its attempts.
    #[serde(default)]
    pub all_attempts_url: String,
    /// Its children's active attempts.
    #[serde(default)]
    pub child_attempts_url: String,
}

/// One record of a summary (capitalised keys on the wire).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SummaryRecordDocument {
    /// Namespace name.
    #[serde(rename = "Namespace", default)]
    pub namespace: String,
    /// Work spec name.
    #[serde(rename = "WorkSpec", default)]
    pub work_spec: String,
    /// The status.
    #[serde(rename = "Status", with = "unit_status")]
    pub status: WorkUnitStatus,
    /// How many units have it.
    #[serde(rename = "Count", default)]
    pub count: u64,
}

same_fields!(SummaryRecord <=> SummaryRecordDocument {
    namespace,
    work_spec,
    status,
    count,
});

/// A summary: a JSON array (`null` read as empty).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SummaryDocument(
    #[serde(deserialize_with = "null_as_default")] pub Vec<SummaryRecordDocument>,
);

/// The worker list: `GET` on a namespace's `workers_url`. An extension of
/// this server (the reference server has no method there); items are short
/// forms, like the other lists.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct WorkerList {
    /// Every worker of the namespace, unordered.
    #[serde(default, deserialize_with = "null_as_default")]
    pub workers: Vec<NamedLink>,
}

/// The answer of a work unit query `DELETE`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct DeletedDocument {
    /// How many units were deleted (required: an answer without it says
    /// nothing of what was deleted).
    #[serde(rename = "Deleted")]
    pub deleted: u64,
}
