//! The one error type of the crate.

use std::fmt;

/// A backend's own failure (I/O, database, encoding), kept with its source so
/// callers can log the whole chain.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Every error a Coordinate operation can answer.
///
/// Each variant says when it is answered. Callers are expected to match on them (`Gone` in particular), so layers such as
/// [`Cache`](crate::cache::Cache) pass them through unchanged.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A work spec definition lacks a usable `"name"` (absent, null or empty).
    #[error("work spec definition has no name")]
    NoWorkSpecName,
    /// The `"name"` of a work spec definition is present but not a string.
    #[error("work spec name is not a string")]
    BadWorkSpecName,
    /// A recognised work spec key has a value of an unusable type.
    #[error("invalid work spec data: {0}")]
    InvalidWorkSpecData(String),
    /// `set_data` was given a definition with a different name.
    #[error("cannot change the name of a work spec")]
    ChangedName,
    /// `renew` was called on an attempt that is no longer its unit's active attempt.
    #[error("attempt is no longer the active attempt of its work unit")]
    LostLease,
    /// An attempt state change was requested from a state that forbids it.
    #[error("attempt is not pending")]
    NotPending,
    /// Reserved for compatibility with other Coordinate implementations;
    /// never returned.
    #[error("work spec cannot become continuous")]
    CannotBecomeContinuous,
    /// An object of another backend was passed where one of this backend is required.
    #[error("object belongs to a different backend")]
    WrongBackend,
    /// The scheduler found nothing to run (only from [`rules::schedule`](crate::rules::schedule)).
    #[error("no work to do")]
    NoWork,
    /// The object behind a handle, or one of its ancestors, no longer exists.
    #[error("object is gone")]
    Gone,
    /// A lookup by name found no work spec.
    #[error("no such work spec: {name:?}")]
    NoSuchWorkSpec {
        /// The requested name.
        name: String,
    },
    /// A lookup by name found no work unit.
    #[error("no such work unit: {name:?}")]
    NoSuchWorkUnit {
        /// The requested name.
        name: String,
    },
    /// Output parsing: an item is neither a string nor an array.
    #[error("work unit output item is not a list")]
    WorkUnitNotList,
    /// Output parsing: an array item has fewer than two elements.
    #[error("work unit output item is too short")]
    WorkUnitTooShort,
    /// Output parsing: the fourth element of an item is not a float; or a
    /// priority is NaN or infinite, or an adjustment overflows (see the
    /// crate's `# Limits`).
    #[error("work unit priority is not a finite float")]
    BadPriority,
    /// Output parsing: an item's name, data or options have the wrong type.
    #[error("bad work unit output item: {0}")]
    BadOutputItem(String),
    /// A time, or an instant computed from a duration argument, lies outside
    /// [`MIN_TIME`](crate::rules::limits::MIN_TIME) ..=
    /// [`MAX_TIME`](crate::rules::limits::MAX_TIME) (for example
    /// `now + Duration::MAX`).
    #[error("time out of range: {0}")]
    TimeOutOfRange(String),
    /// A namespace, work spec, work unit or worker name is longer than
    /// [`MAX_NAME_BYTES`](crate::rules::limits::MAX_NAME_BYTES).
    #[error("name is longer than {limit} bytes")]
    NameTooLong {
        /// The limit, in bytes.
        limit: usize,
    },
    /// A data map nests deeper than
    /// [`MAX_DATA_DEPTH`](crate::rules::limits::MAX_DATA_DEPTH); nothing
    /// was stored.
    #[error("data nests deeper than {limit} levels")]
    DataTooDeep {
        /// The limit, in levels.
        limit: usize,
    },
    /// A failure of the backend itself, with its source.
    #[error("backend error: {0}")]
    Backend(#[source] BoxError),
}

impl Error {
    /// Wraps a backend's own failure.
    pub fn backend(source: impl Into<BoxError>) -> Self {
        Error::Backend(source.into())
    }

    /// True for [`Error::Gone`].
    pub fn is_gone(&self) -> bool {
        matches!(self, Error::Gone)
    }
}

/// `NoSuchWorkSpec` and `NoSuchWorkUnit` compare equal when their names are
/// equal; a `Backend` error equals another when their messages do (sources
/// are opaque).
impl PartialEq for Error {
    fn eq(&self, other: &Self) -> bool {
        use Error::*;
        match (self, other) {
            (InvalidWorkSpecData(a), InvalidWorkSpecData(b)) => a == b,
            (NoSuchWorkSpec { name: a }, NoSuchWorkSpec { name: b }) => a == b,
            (NoSuchWorkUnit { name: a }, NoSuchWorkUnit { name: b }) => a == b,
            (TimeOutOfRange(a), TimeOutOfRange(b)) => a == b,
            (BadOutputItem(a), BadOutputItem(b)) => a == b,
            (NameTooLong { limit: a }, NameTooLong { limit: b }) => a == b,
            (DataTooDeep { limit: a }, DataTooDeep { limit: b }) => a == b,
            (Backend(a), Backend(b)) => a.to_string() == b.to_string(),
            (a, b) => std::mem::discriminant(a) == std::mem::discriminant(b),
        }
    }
}

/// The result type of every fallible operation.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A status text conversion failed; the message
/// text is part of the contract.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StatusConversionError {
    /// An ordinal with no status: `invalid status (marshal, N)`.
    Marshal(i64),
    /// Unknown text: `invalid status (unmarshal, T)`.
    Unmarshal(String),
}

impl fmt::Display for StatusConversionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StatusConversionError::Marshal(n) => write!(f, "invalid status (marshal, {n})"),
            StatusConversionError::Unmarshal(t) => write!(f, "invalid status (unmarshal, {t})"),
        }
    }
}

impl std::error::Error for StatusConversionError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_such_errors_compare_by_name() {
        let a = Error::NoSuchWorkSpec { name: "x".into() };
        assert_eq!(a, Error::NoSuchWorkSpec { name: "x".into() });
        assert_ne!(a, Error::NoSuchWorkSpec { name: "y".into() });
        assert_ne!(a, Error::NoSuchWorkUnit { name: "x".into() });
        assert_eq!(Error::Gone, Error::Gone);
        assert_ne!(Error::Gone, Error::NotPending);
    }

    #[test]
    fn backend_error_keeps_its_source() {
        let io = std::io::Error::other("disk on fire");
        let err = Error::backend(io);
        let source = std::error::Error::source(&err).map(ToString::to_string);
        assert_eq!(source.as_deref(), Some("disk on fire"));
    }

    #[test]
    fn status_conversion_messages_are_exact() {
        assert_eq!(
            StatusConversionError::Marshal(9).to_string(),
            "invalid status (marshal, 9)"
        );
        assert_eq!(
            StatusConversionError::Unmarshal("bogus".into()).to_string(),
            "invalid status (unmarshal, bogus)"
        );
    }
}
