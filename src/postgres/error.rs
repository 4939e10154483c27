//! The PostgreSQL backend's own failures, carried inside
//! [`Error::Backend`](crate::Error::Backend).

use crate::error::{error_chain, Error, ObjectKind};

/// A failure of the PostgreSQL backend itself.
///
/// Coordinate operations report it as [`Error::Backend`]; callers who need
/// the detail downcast the source:
///
/// ```
/// use coordinate::{postgres::PostgresError, Error};
/// fn schema_too_new(err: &Error) -> bool {
///     matches!(err, Error::Backend(source)
///         if matches!(source.downcast_ref::<PostgresError>(),
///                     Some(PostgresError::SchemaTooNew { .. })))
/// }
/// # assert!(!schema_too_new(&Error::NotPending));
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PostgresError {
    /// The connection string could not be parsed.
    #[error("invalid PostgreSQL connection string: {0}")]
    Config(#[source] tokio_postgres::Error),
    /// The connection string's TLS settings (`sslmode`, `sslrootcert`)
    /// cannot be used.
    #[error("PostgreSQL TLS settings: {0}")]
    Tls(String),
    /// The password file cannot give the connection string's hosts their
    /// password.
    #[error("PostgreSQL password file: {0}")]
    PasswordFile(String),
    /// The connection pool could not be built.
    #[error("cannot build the PostgreSQL connection pool: {0}")]
    Pool(String),
    /// No connection could be made (or taken from the pool) in time.
    #[error("cannot connect to PostgreSQL: {}", error_chain(.0))]
    Connect(#[source] deadpool_postgres::PoolError),
    /// The change feed's listening connection was not made, or did not
    /// start listening, within the connect timeout.
    #[error("the change feed's connection did not answer within {0:?}")]
    FeedTimeout(std::time::Duration),
    /// A statement failed.
    #[error("PostgreSQL error: {}", describe(.0))]
    Database(#[source] tokio_postgres::Error),
    /// The database was migrated by a newer version of this crate.
    #[error(
        "the database schema is at version {found}, newer than the latest this code knows \
         ({supported}); upgrade the coordinate crate"
    )]
    SchemaTooNew {
        /// The version recorded in the database.
        found: i32,
        /// The latest version this code can migrate to.
        supported: i32,
    },
    /// The database's encoding is not UTF-8: text and data with characters
    /// it cannot hold would fail (or, in `SQL_ASCII`, go unchecked) where
    /// every other backend stores them.
    #[error(
        "the database's encoding is {encoding}, not UTF8; create it with \
         ENCODING 'UTF8' (and TEMPLATE template0 if the cluster's default differs)"
    )]
    NotUtf8 {
        /// The database's `server_encoding`.
        encoding: String,
    },
    /// The database holds a value this code cannot read back.
    #[error("unreadable value in the database: {0}")]
    Decode(String),
}

/// tokio-postgres displays a server error as just "db error"; show the
/// server's message, SQLSTATE and detail instead.
fn describe(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => {
            let mut text = format!("{} ({})", db.message(), db.code().code());
            if let Some(detail) = db.detail() {
                text.push_str(": ");
                text.push_str(detail);
            }
            text
        }
        None => e.to_string(),
    }
}

impl PostgresError {
    /// The SQLSTATE of a database error, if this is one.
    pub fn sql_state(&self) -> Option<&tokio_postgres::error::SqlState> {
        match self {
            PostgresError::Database(e) => e.code(),
            _ => None,
        }
    }
}

impl From<PostgresError> for Error {
    fn from(e: PostgresError) -> Self {
        Error::backend(e)
    }
}

/// Converts a statement failure: a foreign-key violation means a parent row
/// vanished under us, so the caller's handle is `Gone` — the handle of that
/// parent, which is the handle the call was made on wherever a row is
/// inserted (a worker's calls that insert under a unit retag it);
/// everything else is a backend error.
pub(crate) fn db(e: tokio_postgres::Error) -> Error {
    use tokio_postgres::error::SqlState;
    if e.code() == Some(&SqlState::FOREIGN_KEY_VIOLATION) {
        let constraint = e.as_db_error().and_then(|d| d.constraint()).unwrap_or("");
        return Error::Gone {
            kind: referenced_kind(constraint),
        };
    }
    PostgresError::Database(e).into()
}

/// The kind of object a foreign-key constraint of the schema references,
/// from its column (`work_unit_work_spec_id_fkey` references a work spec).
fn referenced_kind(constraint: &str) -> ObjectKind {
    if constraint.contains("work_spec_id") {
        ObjectKind::WorkSpec
    } else if constraint.contains("work_unit_id") {
        ObjectKind::WorkUnit
    } else if constraint.contains("worker_id") || constraint.contains("parent_id") {
        ObjectKind::Worker
    } else {
        ObjectKind::Namespace
    }
}

/// Converts a failure to get a pooled connection.
pub(crate) fn pool(e: deadpool_postgres::PoolError) -> Error {
    PostgresError::Connect(e).into()
}

/// A value read back from the database has an unexpected shape.
pub(crate) fn decode(what: impl std::fmt::Display) -> Error {
    PostgresError::Decode(what.to_string()).into()
}

/// A priority sum that overflowed `float8` (SQLSTATE 22003) is
/// [`Error::BadPriority`], as [`adjusted_priority`](crate::rules::limits::adjusted_priority)
/// answers; the transaction rolls back, so nothing changed.
pub(crate) fn priority_overflow(e: Error) -> Error {
    use tokio_postgres::error::SqlState;
    let overflow = matches!(&e, Error::Backend(source)
        if source
            .downcast_ref::<PostgresError>()
            .and_then(PostgresError::sql_state)
            == Some(&SqlState::NUMERIC_VALUE_OUT_OF_RANGE));
    if overflow {
        Error::BadPriority
    } else {
        e
    }
}

/// True for failures worth retrying the whole transaction for:
/// serialization failures and deadlocks.
pub(crate) fn is_retryable(e: &Error) -> bool {
    use tokio_postgres::error::SqlState;
    match e {
        Error::Backend(source) => source
            .downcast_ref::<PostgresError>()
            .and_then(PostgresError::sql_state)
            .is_some_and(|c| {
                *c == SqlState::T_R_SERIALIZATION_FAILURE || *c == SqlState::T_R_DEADLOCK_DETECTED
            }),
        _ => false,
    }
}
