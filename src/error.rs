//! The one error type of the crate.

use std::fmt;
use std::sync::Arc;

/// A backend's own failure (I/O, database, encoding), kept with its source so
/// callers can log the whole chain.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// The kind of object a handle stands for: what a [`Error::Gone`] is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ObjectKind {
    /// A namespace.
    Namespace,
    /// A work spec.
    WorkSpec,
    /// A work unit.
    WorkUnit,
    /// A worker.
    Worker,
    /// An attempt.
    Attempt,
}

impl fmt::Display for ObjectKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ObjectKind::Namespace => "namespace",
            ObjectKind::WorkSpec => "work spec",
            ObjectKind::WorkUnit => "work unit",
            ObjectKind::Worker => "worker",
            ObjectKind::Attempt => "attempt",
        })
    }
}

/// Every error a Coordinate operation can answer.
///
/// Each variant says when it is answered. Callers are expected to match on
/// them (`Gone` in particular), so layers such as
/// [`Cache`](crate::cache::Cache) pass them through unchanged.
///
/// Errors are cheap to clone: a backend's own failure is shared behind an
/// `Arc`, so every clone keeps the original source and its chain. Two errors
/// are equal when their [`kind`](Error::kind) and structured fields (names,
/// limits, object kind, the argument of a data error) are; a `Backend`
/// message is never compared.
///
/// ```
/// use coordinate::memory::MemoryBackend;
/// use coordinate::{data, Backend, Error, ErrorKind, ObjectKind};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> coordinate::Result<()> {
/// let app = MemoryBackend::new().namespace("app").await?;
/// let spec = app.set_work_spec(data!({"name": "resize"})).await?;
/// app.destroy_work_spec("resize").await?;
///
/// let err = spec.meta(false).await.unwrap_err();
/// assert!(err.is_gone());
/// assert_eq!(err, Error::Gone { kind: ObjectKind::WorkSpec });
/// assert_eq!(err.kind(), ErrorKind::Gone);
/// assert_eq!(app.work_spec("resize").await.unwrap_err().kind(), ErrorKind::NoSuchWorkSpec);
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Error {
    /// A work spec definition lacks a usable `"name"` (absent, null or empty).
    NoWorkSpecName,
    /// The `"name"` of a work spec definition is present but not a string.
    BadWorkSpecName,
    /// A recognised work spec key has a value of an unusable type.
    InvalidWorkSpecData(String),
    /// `set_data` was given a definition with a different name.
    ChangedName,
    /// `renew` was called on an attempt that is no longer its unit's active attempt.
    LostLease,
    /// An attempt state change was requested from a state that forbids it.
    NotPending,
    /// An object of another backend was passed where one of this backend is required.
    WrongBackend,
    /// The object behind a handle, or one of its ancestors, no longer exists.
    Gone {
        /// The kind of the handle the call was made on (not necessarily
        /// the ancestor that was deleted).
        kind: ObjectKind,
    },
    /// A lookup by name found no work spec.
    NoSuchWorkSpec {
        /// The requested name.
        name: String,
    },
    /// A lookup by name found no work unit.
    NoSuchWorkUnit {
        /// The requested name.
        name: String,
    },
    /// Output parsing: an item is neither a string nor an array.
    WorkUnitNotList,
    /// Output parsing: an array item has fewer than two elements.
    WorkUnitTooShort,
    /// Output parsing: the fourth element of an item is not a float; or a
    /// priority is NaN or infinite, or an adjustment overflows (see the
    /// crate's `# Limits`).
    BadPriority,
    /// Output parsing: an item's name, data or options have the wrong type.
    BadOutputItem(String),
    /// A time, or an instant computed from a duration argument, lies outside
    /// [`MIN_TIME`](crate::rules::limits::MIN_TIME) ..=
    /// [`MAX_TIME`](crate::rules::limits::MAX_TIME) (for example
    /// `now + Duration::MAX`).
    TimeOutOfRange(String),
    /// A namespace, work spec, work unit or worker name is longer than
    /// [`MAX_NAME_BYTES`](crate::rules::limits::MAX_NAME_BYTES).
    NameTooLong {
        /// The limit, in bytes.
        limit: usize,
    },
    /// A data map nests deeper than
    /// [`MAX_DATA_DEPTH`](crate::rules::limits::MAX_DATA_DEPTH); nothing
    /// was stored.
    DataTooDeep {
        /// The limit, in levels.
        limit: usize,
    },
    /// A data map's compact JSON encoding is longer than
    /// [`MAX_DATA_BYTES`](crate::rules::limits::MAX_DATA_BYTES); nothing
    /// was stored.
    DataTooLarge {
        /// The limit, in bytes.
        limit: usize,
    },
    /// A worker's mode is longer than
    /// [`MAX_MODE_BYTES`](crate::rules::limits::MAX_MODE_BYTES); nothing
    /// was stored.
    ModeTooLong {
        /// The limit, in bytes.
        limit: usize,
    },
    /// A change-feed operation on a backend that has no change feed.
    NoChangeFeed,
    /// A failure of the backend itself, with its source (shared by clones).
    Backend(Arc<dyn std::error::Error + Send + Sync + 'static>),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::NoWorkSpecName => f.write_str("work spec definition has no name"),
            Error::BadWorkSpecName => f.write_str("work spec name is not a string"),
            Error::InvalidWorkSpecData(what) => write!(f, "invalid work spec data: {what}"),
            Error::ChangedName => f.write_str("cannot change the name of a work spec"),
            Error::LostLease => {
                f.write_str("attempt is no longer the active attempt of its work unit")
            }
            Error::NotPending => f.write_str("attempt is not pending"),
            Error::WrongBackend => f.write_str("object belongs to a different backend"),
            Error::Gone { kind } => write!(f, "{kind} is gone"),
            Error::NoSuchWorkSpec { name } => write!(f, "no such work spec: {name:?}"),
            Error::NoSuchWorkUnit { name } => write!(f, "no such work unit: {name:?}"),
            Error::WorkUnitNotList => f.write_str("work unit output item is not a list"),
            Error::WorkUnitTooShort => f.write_str("work unit output item is too short"),
            Error::BadPriority => f.write_str("work unit priority is not a finite float"),
            Error::BadOutputItem(what) => write!(f, "bad work unit output item: {what}"),
            Error::TimeOutOfRange(what) => write!(f, "time out of range: {what}"),
            Error::NameTooLong { limit } => write!(f, "name is longer than {limit} bytes"),
            Error::DataTooDeep { limit } => write!(f, "data nests deeper than {limit} levels"),
            Error::DataTooLarge { limit } => {
                write!(f, "data is longer than {limit} bytes as JSON")
            }
            Error::ModeTooLong { limit } => write!(f, "worker mode is longer than {limit} bytes"),
            Error::NoChangeFeed => f.write_str("this backend has no change feed"),
            Error::Backend(source) => write!(f, "backend error: {source}"),
        }
    }
}

/// Written by hand rather than derived: the source of a `Backend` error is
/// the shared error itself, not the `Arc` around it, so callers can
/// `downcast_ref` it.
impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Backend(source) => Some(&**source),
            _ => None,
        }
    }
}

/// What an [`Error`] is, without its fields: for matching and counting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// [`Error::NoWorkSpecName`].
    NoWorkSpecName,
    /// [`Error::BadWorkSpecName`].
    BadWorkSpecName,
    /// [`Error::InvalidWorkSpecData`].
    InvalidWorkSpecData,
    /// [`Error::ChangedName`].
    ChangedName,
    /// [`Error::LostLease`].
    LostLease,
    /// [`Error::NotPending`].
    NotPending,
    /// [`Error::WrongBackend`].
    WrongBackend,
    /// [`Error::Gone`].
    Gone,
    /// [`Error::NoSuchWorkSpec`].
    NoSuchWorkSpec,
    /// [`Error::NoSuchWorkUnit`].
    NoSuchWorkUnit,
    /// [`Error::WorkUnitNotList`].
    WorkUnitNotList,
    /// [`Error::WorkUnitTooShort`].
    WorkUnitTooShort,
    /// [`Error::BadPriority`].
    BadPriority,
    /// [`Error::BadOutputItem`].
    BadOutputItem,
    /// [`Error::TimeOutOfRange`].
    TimeOutOfRange,
    /// [`Error::NameTooLong`].
    NameTooLong,
    /// [`Error::DataTooDeep`].
    DataTooDeep,
    /// [`Error::DataTooLarge`].
    DataTooLarge,
    /// [`Error::ModeTooLong`].
    ModeTooLong,
    /// [`Error::NoChangeFeed`].
    NoChangeFeed,
    /// [`Error::Backend`].
    Backend,
}

impl Error {
    /// Wraps a backend's own failure.
    pub fn backend(source: impl Into<BoxError>) -> Self {
        Error::Backend(Arc::from(source.into()))
    }

    /// True for [`Error::Gone`], whatever its object kind.
    pub fn is_gone(&self) -> bool {
        matches!(self, Error::Gone { .. })
    }

    /// This error as answered by a call on a handle of `kind`: a `Gone`
    /// names the handle's kind, whichever object (it or an ancestor, or an
    /// argument) was found missing.
    pub(crate) fn on(self, kind: ObjectKind) -> Self {
        match self {
            Error::Gone { .. } => Error::Gone { kind },
            other => other,
        }
    }

    /// What this error is, without its fields.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::NoWorkSpecName => ErrorKind::NoWorkSpecName,
            Error::BadWorkSpecName => ErrorKind::BadWorkSpecName,
            Error::InvalidWorkSpecData(_) => ErrorKind::InvalidWorkSpecData,
            Error::ChangedName => ErrorKind::ChangedName,
            Error::LostLease => ErrorKind::LostLease,
            Error::NotPending => ErrorKind::NotPending,
            Error::WrongBackend => ErrorKind::WrongBackend,
            Error::Gone { .. } => ErrorKind::Gone,
            Error::NoSuchWorkSpec { .. } => ErrorKind::NoSuchWorkSpec,
            Error::NoSuchWorkUnit { .. } => ErrorKind::NoSuchWorkUnit,
            Error::WorkUnitNotList => ErrorKind::WorkUnitNotList,
            Error::WorkUnitTooShort => ErrorKind::WorkUnitTooShort,
            Error::BadPriority => ErrorKind::BadPriority,
            Error::BadOutputItem(_) => ErrorKind::BadOutputItem,
            Error::TimeOutOfRange(_) => ErrorKind::TimeOutOfRange,
            Error::NameTooLong { .. } => ErrorKind::NameTooLong,
            Error::DataTooDeep { .. } => ErrorKind::DataTooDeep,
            Error::DataTooLarge { .. } => ErrorKind::DataTooLarge,
            Error::ModeTooLong { .. } => ErrorKind::ModeTooLong,
            Error::NoChangeFeed => ErrorKind::NoChangeFeed,
            Error::Backend(_) => ErrorKind::Backend,
        }
    }
}

/// Equal kinds with equal structured fields; `Backend` errors are all equal
/// (their sources are opaque, and messages are not compared).
impl PartialEq for Error {
    fn eq(&self, other: &Self) -> bool {
        use Error::*;
        match (self, other) {
            (InvalidWorkSpecData(a), InvalidWorkSpecData(b)) => a == b,
            (Gone { kind: a }, Gone { kind: b }) => a == b,
            (NoSuchWorkSpec { name: a }, NoSuchWorkSpec { name: b }) => a == b,
            (NoSuchWorkUnit { name: a }, NoSuchWorkUnit { name: b }) => a == b,
            (TimeOutOfRange(a), TimeOutOfRange(b)) => a == b,
            (BadOutputItem(a), BadOutputItem(b)) => a == b,
            (NameTooLong { limit: a }, NameTooLong { limit: b }) => a == b,
            (DataTooDeep { limit: a }, DataTooDeep { limit: b }) => a == b,
            (DataTooLarge { limit: a }, DataTooLarge { limit: b }) => a == b,
            (ModeTooLong { limit: a }, ModeTooLong { limit: b }) => a == b,
            (a, b) => a.kind() == b.kind(),
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

/// `e` and the errors it came from ([`source`](std::error::Error::source),
/// and its source, …) as one line, each said once: layers often repeat
/// their source's text in their own, and some say only that something
/// failed, leaving why to their source (a driver's "error performing TLS
/// handshake").
///
/// ```
/// # use coordinate::error::error_chain;
/// #[derive(Debug, thiserror::Error)]
/// #[error("cannot connect")]
/// struct Connect(#[source] std::io::Error);
///
/// let refused = std::io::Error::other("connection refused");
/// assert_eq!(error_chain(&Connect(refused)), "cannot connect: connection refused");
/// ```
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let said = c.to_string();
        if !text.contains(&said) {
            text.push_str(": ");
            text.push_str(&said);
        }
        cause = c.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_such_errors_compare_by_name() {
        let a = Error::NoSuchWorkSpec { name: "x".into() };
        assert_eq!(a, Error::NoSuchWorkSpec { name: "x".into() });
        assert_ne!(a, Error::NoSuchWorkSpec { name: "y".into() });
        assert_ne!(a, Error::NoSuchWorkUnit { name: "x".into() });
        let unit_gone = Error::Gone {
            kind: ObjectKind::WorkUnit,
        };
        assert_eq!(unit_gone, unit_gone.clone());
        assert_ne!(
            unit_gone,
            Error::Gone {
                kind: ObjectKind::WorkSpec
            }
        );
        assert_ne!(unit_gone, Error::NotPending);
        assert!(unit_gone.is_gone());
        assert_eq!(unit_gone.kind(), ErrorKind::Gone);
    }

    #[test]
    fn backend_errors_compare_by_kind_not_message() {
        let a = Error::backend(std::io::Error::other("one"));
        let b = Error::backend(std::io::Error::other("two"));
        assert_eq!(a, b);
        assert_ne!(a, Error::NoChangeFeed);
        assert_eq!(a.kind(), ErrorKind::Backend);
    }

    #[test]
    fn clones_share_the_original_source() {
        let err = Error::backend(std::io::Error::new(std::io::ErrorKind::TimedOut, "slow"));
        let copy = err.clone();
        for e in [&err, &copy] {
            let source =
                std::error::Error::source(e).and_then(|s| s.downcast_ref::<std::io::Error>());
            assert_eq!(
                source.map(std::io::Error::kind),
                Some(std::io::ErrorKind::TimedOut)
            );
        }
        assert_eq!(copy.to_string(), "backend error: slow");
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

    #[derive(Debug, thiserror::Error)]
    #[error("outer")]
    struct Outer(#[source] std::io::Error);

    #[test]
    fn an_error_chain_says_each_source_once() {
        let inner = std::io::Error::other("refused");
        assert_eq!(error_chain(&Outer(inner)), "outer: refused");
        let repeated = std::io::Error::other("outer");
        assert_eq!(error_chain(&Outer(repeated)), "outer");
    }
}
