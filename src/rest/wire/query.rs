//! Work unit queries in a query string.

use crate::model::{WorkUnitQuery, WorkUnitStatus};

/// A query parameter that cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueryError {
    /// A `status` value that names no status.
    #[error("invalid status {0:?}")]
    BadStatus(String),
    /// A `limit` that is not a decimal integer.
    #[error("invalid limit {0:?}")]
    BadLimit(String),
}

/// Reads a work unit query from a raw query string (form-urlencoded; empty
/// components and unknown parameters ignored; `previous` and `limit`: first
/// wins; `previous` name-decoded when it starts with `-` and decodes).
pub fn parse_work_unit_query(raw: &str) -> Result<WorkUnitQuery, QueryError> {
    let mut query = WorkUnitQuery::default();
    let (mut previous, mut limit) = (None, None);
    for (key, value) in form_urlencoded::parse(raw.as_bytes()) {
        match key.as_ref() {
            "name" => query.names.push(value.into_owned()),
            "status" => query.statuses.push(parse_status(&value)?),
            "previous" if previous.is_none() => previous = Some(value.into_owned()),
            "limit" if limit.is_none() => {
                limit = Some(
                    value
                        .trim()
                        .parse::<i64>()
                        .map_err(|_| QueryError::BadLimit(value.clone().into_owned()))?,
                )
            }
            _ => {}
        }
    }
    if let Some(previous) = previous {
        query.previous_name = crate::rest::names::decode_previous(&previous);
    }
    query.limit = limit.unwrap_or(0).max(0);
    Ok(query)
}

/// A `status` value: a status's name (case-sensitive) or `any`.
pub(super) fn parse_status(value: &str) -> Result<WorkUnitStatus, QueryError> {
    value
        .parse()
        .map_err(|_| QueryError::BadStatus(value.to_owned()))
}

/// The query string (without `?`) that selects what `query` selects; empty
/// for the query of every unit.
pub fn work_unit_query_string(query: &WorkUnitQuery) -> String {
    use crate::rest::names::{encode_previous, percent_encode};
    let mut parts = Vec::new();
    for name in &query.names {
        parts.push(format!("name={}", percent_encode(name)));
    }
    for status in &query.statuses {
        parts.push(format!("status={}", status.as_str()));
    }
    if !query.previous_name.is_empty() {
        parts.push(format!(
            "previous={}",
            percent_encode(&encode_previous(&query.previous_name))
        ));
    }
    if query.limit > 0 {
        parts.push(format!("limit={}", query.limit));
    }
    parts.join("&")
}

/// Reads the `counts` parameter of a meta query: `1 t y true on yes` (any
/// case) are true, anything else false.
pub fn parse_counts_flag(raw: &str) -> bool {
    parameter_is_one_of(raw, "counts", &["1", "t", "y", "true", "on", "yes"])
}

/// The query of a work unit or attempt `GET` that asks for the document
/// without an expiry check ([`UncheckedWorkUnitDocument`](super::UncheckedWorkUnitDocument),
/// [`UncheckedAttemptDocument`](super::UncheckedAttemptDocument)): an
/// extension of this server, which other servers ignore.
pub const UNCHECKED_QUERY: &str = "check=false";

/// True when a work unit or attempt `GET`'s query asks to skip the expiry
/// check: a `check` parameter of `0 f n false off no` (any case).
pub fn parse_unchecked(raw: &str) -> bool {
    parameter_is_one_of(raw, "check", &["0", "f", "n", "false", "off", "no"])
}

/// True when the first `key` parameter of the query `raw` is one of
/// `words` (any case).
fn parameter_is_one_of(raw: &str, key: &str, words: &[&str]) -> bool {
    form_urlencoded::parse(raw.as_bytes())
        .find(|(k, _)| k == key)
        .is_some_and(|(_, v)| words.iter().any(|w| v.eq_ignore_ascii_case(w)))
}
