//! The error document and the symbolic codes it carries.

use std::fmt;

use serde::de::{Deserializer, IgnoredAny, MapAccess, Visitor};
use serde::{Deserialize, Serialize};

use crate::error::{Error, ObjectKind};

/// The symbolic codes of the error document.
pub mod codes {
    /// Anything without a code of its own.
    pub const ERROR: &str = "error";
    /// An internal failure of the server.
    pub const PANIC: &str = "panic";
    /// `Error::NoWorkSpecName`.
    pub const NO_WORK_SPEC_NAME: &str = "ErrNoWorkSpecName";
    /// `Error::BadWorkSpecName`.
    pub const BAD_WORK_SPEC_NAME: &str = "ErrBadWorkSpecName";
    /// `Error::ChangedName`.
    pub const CHANGED_NAME: &str = "ErrChangedName";
    /// `Error::LostLease`.
    pub const LOST_LEASE: &str = "ErrLostLease";
    /// `Error::NotPending`.
    pub const NOT_PENDING: &str = "ErrNotPending";
    /// Sent by other Coordinate servers for a work spec that cannot become
    /// continuous; this crate never answers it and reads it as a backend
    /// error carrying a [`RemoteError`](super::RemoteError).
    pub const CANNOT_BECOME_CONTINUOUS: &str = "ErrCannotBecomeContinuous";
    /// `Error::WrongBackend`.
    pub const WRONG_BACKEND: &str = "ErrWrongBackend";
    /// Sent by other Coordinate servers when there is no work; this crate
    /// answers an empty list instead, and reads it as a backend error
    /// carrying a [`RemoteError`](super::RemoteError).
    pub const NO_WORK: &str = "ErrNoWork";
    /// `Error::WorkUnitNotList`.
    pub const WORK_UNIT_NOT_LIST: &str = "ErrWorkUnitNotList";
    /// `Error::WorkUnitTooShort`.
    pub const WORK_UNIT_TOO_SHORT: &str = "ErrWorkUnitTooShort";
    /// `Error::BadPriority`.
    pub const BAD_PRIORITY: &str = "ErrBadPriority";
    /// `Error::Gone`.
    pub const GONE: &str = "ErrGone";
    /// `Error::NoSuchWorkSpec` (the name in `value`).
    pub const NO_SUCH_WORK_SPEC: &str = "ErrNoSuchWorkSpec";
    /// `Error::NoSuchWorkUnit` (the name in `value`).
    pub const NO_SUCH_WORK_UNIT: &str = "ErrNoSuchWorkUnit";
}

/// Kinds of this crate's errors that have no symbolic code, carried in the
/// error document's `kind` field so a client of this server restores them.
mod kinds {
    pub(super) const INVALID_WORK_SPEC_DATA: &str = "InvalidWorkSpecData";
    pub(super) const BAD_OUTPUT_ITEM: &str = "BadOutputItem";
    pub(super) const TIME_OUT_OF_RANGE: &str = "TimeOutOfRange";
    pub(super) const NAME_TOO_LONG: &str = "NameTooLong";
    pub(super) const DATA_TOO_DEEP: &str = "DataTooDeep";
    pub(super) const DATA_TOO_LARGE: &str = "DataTooLarge";
    pub(super) const MODE_TOO_LONG: &str = "ModeTooLong";
}

/// The body of every error response.
///
/// Read as the API's reference client reads it: a field absent is empty,
/// `null` leaves a field as it was, a field given twice is its last value,
/// and fields it does not know are skipped.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct ErrorDocument {
    /// The symbolic code ([`codes`]).
    pub error: String,
    /// Human-readable text.
    pub message: String,
    /// The name carried by the two "no such" errors.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub value: String,
    /// Diagnostic text of an internal failure.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub stack: String,
    /// For `error`-coded errors of this crate that have a kind of their own
    /// (invalid work spec data, a bad output item, a time out of range, a
    /// name, data or mode over its limit): the kind; `value` then holds its
    /// argument. Other clients ignore it.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub kind: String,
}

impl<'de> Deserialize<'de> for ErrorDocument {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(ErrorDocumentFields)
    }
}

/// Reads an [`ErrorDocument`]'s fields in any order, each as often as
/// given.
struct ErrorDocumentFields;

impl<'de> Visitor<'de> for ErrorDocumentFields {
    type Value = ErrorDocument;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an error document")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<ErrorDocument, A::Error> {
        let mut document = ErrorDocument::default();
        while let Some(key) = map.next_key::<String>()? {
            let field = match key.as_str() {
                "error" => &mut document.error,
                "message" => &mut document.message,
                "value" => &mut document.value,
                "stack" => &mut document.stack,
                "kind" => &mut document.kind,
                _ => {
                    map.next_value::<IgnoredAny>()?;
                    continue;
                }
            };
            if let Some(text) = map.next_value::<Option<String>>()? {
                *field = text;
            }
        }
        Ok(document)
    }
}

/// A failure the server reported without a code this crate knows.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("server error ({code}): {message}")]
pub struct RemoteError {
    /// The error document's code.
    pub code: String,
    /// The error document's message.
    pub message: String,
    /// The HTTP status it came with, when `RestBackend` received it.
    pub status: Option<u16>,
}

impl ErrorDocument {
    /// A generic (`error`-coded) document.
    pub fn generic(message: impl Into<String>) -> Self {
        ErrorDocument {
            error: codes::ERROR.to_owned(),
            message: message.into(),
            ..Self::default()
        }
    }

    /// The document describing `err`.
    pub fn from_error(err: &Error) -> Self {
        use codes::*;
        let code = match err {
            Error::NoWorkSpecName => NO_WORK_SPEC_NAME,
            Error::BadWorkSpecName => BAD_WORK_SPEC_NAME,
            Error::ChangedName => CHANGED_NAME,
            Error::LostLease => LOST_LEASE,
            Error::NotPending => NOT_PENDING,
            Error::WrongBackend => WRONG_BACKEND,
            Error::WorkUnitNotList => WORK_UNIT_NOT_LIST,
            Error::WorkUnitTooShort => WORK_UNIT_TOO_SHORT,
            Error::BadPriority => BAD_PRIORITY,
            Error::Gone { .. } => GONE,
            Error::NoSuchWorkSpec { .. } => NO_SUCH_WORK_SPEC,
            Error::NoSuchWorkUnit { .. } => NO_SUCH_WORK_UNIT,
            _ => ERROR,
        };
        let (value, kind) = match err {
            Error::NoSuchWorkSpec { name } | Error::NoSuchWorkUnit { name } => {
                (name.clone(), String::new())
            }
            Error::InvalidWorkSpecData(arg) => (arg.clone(), kinds::INVALID_WORK_SPEC_DATA.into()),
            Error::BadOutputItem(arg) => (arg.clone(), kinds::BAD_OUTPUT_ITEM.into()),
            Error::TimeOutOfRange(arg) => (arg.clone(), kinds::TIME_OUT_OF_RANGE.into()),
            Error::NameTooLong { limit } => (limit.to_string(), kinds::NAME_TOO_LONG.into()),
            Error::DataTooDeep { limit } => (limit.to_string(), kinds::DATA_TOO_DEEP.into()),
            Error::DataTooLarge { limit } => (limit.to_string(), kinds::DATA_TOO_LARGE.into()),
            Error::ModeTooLong { limit } => (limit.to_string(), kinds::MODE_TOO_LONG.into()),
            _ => (String::new(), String::new()),
        };
        ErrorDocument {
            error: code.to_owned(),
            message: err.to_string(),
            value,
            stack: String::new(),
            kind,
        }
    }

    /// The error this document describes: the typed error for a known code
    /// or kind, else a backend error carrying a [`RemoteError`]. `ErrGone`
    /// names no object kind on the wire; it becomes a `Gone` of `gone`, the
    /// kind of the handle the request was made for.
    pub fn into_error(self, gone: ObjectKind) -> Error {
        use codes::*;
        match self.error.as_str() {
            NO_WORK_SPEC_NAME => return Error::NoWorkSpecName,
            BAD_WORK_SPEC_NAME => return Error::BadWorkSpecName,
            CHANGED_NAME => return Error::ChangedName,
            LOST_LEASE => return Error::LostLease,
            NOT_PENDING => return Error::NotPending,
            WRONG_BACKEND => return Error::WrongBackend,
            WORK_UNIT_NOT_LIST => return Error::WorkUnitNotList,
            WORK_UNIT_TOO_SHORT => return Error::WorkUnitTooShort,
            BAD_PRIORITY => return Error::BadPriority,
            GONE => return Error::Gone { kind: gone },
            NO_SUCH_WORK_SPEC => return Error::NoSuchWorkSpec { name: self.value },
            NO_SUCH_WORK_UNIT => return Error::NoSuchWorkUnit { name: self.value },
            _ => {}
        }
        let limit = self.value.parse::<usize>();
        match (self.kind.as_str(), limit) {
            (kinds::INVALID_WORK_SPEC_DATA, _) => Error::InvalidWorkSpecData(self.value),
            (kinds::BAD_OUTPUT_ITEM, _) => Error::BadOutputItem(self.value),
            (kinds::TIME_OUT_OF_RANGE, _) => Error::TimeOutOfRange(self.value),
            (kinds::NAME_TOO_LONG, Ok(limit)) => Error::NameTooLong { limit },
            (kinds::DATA_TOO_DEEP, Ok(limit)) => Error::DataTooDeep { limit },
            (kinds::DATA_TOO_LARGE, Ok(limit)) => Error::DataTooLarge { limit },
            (kinds::MODE_TOO_LONG, Ok(limit)) => Error::ModeTooLong { limit },
            _ => Error::backend(RemoteError {
                code: self.error,
                message: self.message,
                status: None,
            }),
        }
    }
}
