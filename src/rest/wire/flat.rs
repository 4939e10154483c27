//! The documents that nest groups of fields (a unit's head, an attempt's
//! summary and links), read as the flat objects they are on the wire.
//!
//! A derived reader of a `flatten`ed group first copies every field it
//! meets — the data map, and any field it does not know — into a buffer
//! of its own, several times the size of their text, and only then reads
//! the group from it. These readers take each field as it comes, and skip
//! unknown ones unread. One reader serves a document and its unchecked
//! form: the fields only the whole document has are optional here, and
//! required when it is built.

use serde::{Deserialize, Deserializer};

use super::documents::{
    AttemptActionLinks, AttemptDocument, AttemptNames, AttemptSummary, UncheckedAttemptDocument,
    UncheckedWorkUnitDocument, WorkUnitDocument, WorkUnitHead, WorkUnitMetaDocument,
};
use super::{attempt_status, data, opt_time, time, unit_status};
use crate::model::{AttemptStatus, DataMap, Time, WorkUnitStatus};

/// The fields of both work unit documents.
#[derive(Deserialize)]
pub(super) struct WorkUnitFields {
    #[serde(default)]
    name: String,
    #[serde(default)]
    url: String,
    #[serde(default, with = "data::answer")]
    data: Option<DataMap>,
    meta: WorkUnitMetaDocument,
    #[serde(default, deserialize_with = "some_unit_status")]
    status: Option<WorkUnitStatus>,
    #[serde(default)]
    work_spec_url: String,
    #[serde(default)]
    attempts_url: String,
    #[serde(default)]
    active_attempt_url: String,
}

impl WorkUnitFields {
    fn head(&mut self) -> WorkUnitHead {
        WorkUnitHead {
            name: std::mem::take(&mut self.name),
            url: std::mem::take(&mut self.url),
            data: self.data.take(),
            meta: self.meta,
        }
    }
}

impl TryFrom<WorkUnitFields> for WorkUnitDocument {
    type Error = MissingField;

    fn try_from(mut f: WorkUnitFields) -> Result<Self, MissingField> {
        Ok(WorkUnitDocument {
            head: f.head(),
            status: f.status.ok_or(MissingField("status"))?,
            work_spec_url: f.work_spec_url,
            attempts_url: f.attempts_url,
            active_attempt_url: f.active_attempt_url,
        })
    }
}

impl From<WorkUnitFields> for UncheckedWorkUnitDocument {
    fn from(mut f: WorkUnitFields) -> Self {
        UncheckedWorkUnitDocument {
            head: f.head(),
            work_spec_url: f.work_spec_url,
            attempts_url: f.attempts_url,
        }
    }
}

/// The fields of an attempt in a list and of both attempt documents.
#[derive(Deserialize)]
pub(super) struct AttemptFields {
    #[serde(default)]
    url: String,
    #[serde(default)]
    work_unit_url: String,
    #[serde(default)]
    worker_url: String,
    #[serde(with = "time")]
    start_time: Time,
    #[serde(default)]
    work_spec_url: Option<String>,
    #[serde(default)]
    work_spec_name: Option<String>,
    #[serde(default)]
    work_unit_name: Option<String>,
    #[serde(default)]
    worker_name: Option<String>,
    #[serde(default, deserialize_with = "some_attempt_status")]
    status: Option<AttemptStatus>,
    #[serde(default, with = "data::answer")]
    data: Option<DataMap>,
    #[serde(default, with = "opt_time")]
    end_time: Option<Time>,
    #[serde(default, deserialize_with = "some_time")]
    expiration_time: Option<Time>,
    #[serde(default)]
    renew_url: String,
    #[serde(default)]
    expire_url: String,
    #[serde(default)]
    finish_url: String,
    #[serde(default)]
    fail_url: String,
    #[serde(default)]
    retry_url: String,
}

impl AttemptFields {
    fn summary(&mut self) -> AttemptSummary {
        AttemptSummary {
            url: std::mem::take(&mut self.url),
            work_unit_url: std::mem::take(&mut self.work_unit_url),
            worker_url: std::mem::take(&mut self.worker_url),
            start_time: self.start_time,
            names: AttemptNames {
                work_spec_url: self.work_spec_url.take(),
                work_spec_name: self.work_spec_name.take(),
                work_unit_name: self.work_unit_name.take(),
                worker_name: self.worker_name.take(),
            },
        }
    }

    fn actions(self) -> AttemptActionLinks {
        AttemptActionLinks {
            renew_url: self.renew_url,
            expire_url: self.expire_url,
            finish_url: self.finish_url,
            fail_url: self.fail_url,
            retry_url: self.retry_url,
        }
    }
}

impl From<AttemptFields> for AttemptSummary {
    fn from(mut f: AttemptFields) -> Self {
        f.summary()
    }
}

impl TryFrom<AttemptFields> for AttemptDocument {
    type Error = MissingField;

    fn try_from(mut f: AttemptFields) -> Result<Self, MissingField> {
        Ok(AttemptDocument {
            summary: f.summary(),
            status: f.status.ok_or(MissingField("status"))?,
            data: f.data.take(),
            end_time: f.end_time,
            expiration_time: f.expiration_time.ok_or(MissingField("expiration_time"))?,
            actions: f.actions(),
        })
    }
}

impl From<AttemptFields> for UncheckedAttemptDocument {
    fn from(mut f: AttemptFields) -> Self {
        UncheckedAttemptDocument {
            summary: f.summary(),
            data: f.data.take(),
            actions: f.actions(),
        }
    }
}

/// A field a document requires, absent.
#[derive(Debug)]
pub(super) struct MissingField(&'static str);

impl std::fmt::Display for MissingField {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "missing field `{}`", self.0)
    }
}

fn some_unit_status<'de, D: Deserializer<'de>>(d: D) -> Result<Option<WorkUnitStatus>, D::Error> {
    unit_status::deserialize(d).map(Some)
}

fn some_attempt_status<'de, D: Deserializer<'de>>(d: D) -> Result<Option<AttemptStatus>, D::Error> {
    attempt_status::deserialize(d).map(Some)
}

fn some_time<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Time>, D::Error> {
    time::deserialize(d).map(Some)
}
