//! Work unit queries in a query string.

use std::borrow::Cow;

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
    /// A parameter (as received) whose name or value, percent-decoded, is
    /// not UTF-8; names in this crate are strings.
    #[error("query parameter {0:?} is not valid UTF-8")]
    NotUtf8(String),
}

/// The parameters of a raw query string, read as
/// `application/x-www-form-urlencoded` (`&`-separated, empty components
/// skipped, `+` a space, a `%` without two hexadecimal digits kept as it
/// is) but strictly: a name or value whose bytes are not UTF-8 is an error,
/// where form decoding would put U+FFFD in their place and so name
/// something else.
fn parameters(raw: &str) -> Result<Vec<(String, String)>, QueryError> {
    let decode = |part: &str, component: &str| {
        // Most parts hold no `+`: only those are copied to respell it.
        let spaced: Cow<'_, str> = if part.contains('+') {
            Cow::Owned(part.replace('+', " "))
        } else {
            Cow::Borrowed(part)
        };
        percent_encoding::percent_decode_str(&spaced)
            .decode_utf8()
            .map(|text| text.into_owned())
            .map_err(|_| QueryError::NotUtf8(component.to_owned()))
    };
    raw.split('&')
        .filter(|component| !component.is_empty())
        .map(|component| {
            let (name, value) = component.split_once('=').unwrap_or((component, ""));
            Ok((decode(name, component)?, decode(value, component)?))
        })
        .collect()
}

/// Reads a work unit query from a raw query string (form-urlencoded, every
/// parameter UTF-8; empty components and unknown parameters ignored;
/// `previous` and `limit`: first wins; `previous` name-decoded when it
/// starts with `-` and decodes; an empty `limit` is no limit).
pub fn parse_work_unit_query(raw: &str) -> Result<WorkUnitQuery, QueryError> {
    let mut query = WorkUnitQuery::default();
    let (mut previous, mut limit) = (None, None);
    for (key, value) in parameters(raw)? {
        match key.as_str() {
            "name" => query.names.push(value),
            "status" => query.statuses.push(parse_status(&value)?),
            "previous" if previous.is_none() => previous = Some(value),
            // Empty is no limit, as in the reference server.
            "limit" if limit.is_none() && value.is_empty() => limit = Some(0),
            "limit" if limit.is_none() => {
                limit = Some(
                    value
                        .parse::<i64>()
                        .map_err(|_| QueryError::BadLimit(value.clone()))?,
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

/// The statuses to send for `query`: each once (a list repeating them
/// selects the same units, and would not fit a URL), and none when it
/// filters no status — the reference server's `any` matches nothing.
pub(crate) fn sent_statuses(query: &WorkUnitQuery) -> Vec<WorkUnitStatus> {
    let mut distinct: Vec<WorkUnitStatus> = Vec::new();
    if query.filters_status() {
        for status in &query.statuses {
            if !distinct.contains(status) {
                distinct.push(*status);
            }
        }
    }
    distinct
}

/// The query string (without `?`) that selects what `query` selects; empty
/// for the query of every unit. Each status goes once, and none when the
/// list holds `AnyStatus` (the reference server's `any` matches nothing).
pub fn work_unit_query_string(query: &WorkUnitQuery) -> String {
    use crate::rest::names::{encode_previous, percent_encode};
    let mut parts = Vec::new();
    for name in &query.names {
        parts.push(format!("name={}", percent_encode(name)));
    }
    for status in sent_statuses(query) {
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
/// case) are true, anything else false; a query with a parameter that is
/// not UTF-8 is an error.
pub fn parse_counts_flag(raw: &str) -> Result<bool, QueryError> {
    parameter_is_one_of(raw, "counts", &["1", "t", "y", "true", "on", "yes"])
}

/// The query of a work unit or attempt `GET` that asks for the document
/// without an expiry check ([`UncheckedWorkUnitDocument`](super::UncheckedWorkUnitDocument),
/// [`UncheckedAttemptDocument`](super::UncheckedAttemptDocument)): an
/// extension of this server, which other servers ignore.
pub const UNCHECKED_QUERY: &str = "check=false";

/// True when a work unit or attempt `GET`'s query asks to skip the expiry
/// check: a `check` parameter of `0 f n false off no` (any case); a query
/// with a parameter that is not UTF-8 is an error.
pub fn parse_unchecked(raw: &str) -> Result<bool, QueryError> {
    parameter_is_one_of(raw, "check", &["0", "f", "n", "false", "off", "no"])
}

/// True when the first `key` parameter of the query `raw` is one of
/// `words` (any case).
fn parameter_is_one_of(raw: &str, key: &str, words: &[&str]) -> Result<bool, QueryError> {
    Ok(parameters(raw)?
        .into_iter()
        .find(|(k, _)| k == key)
        .is_some_and(|(_, v)| words.iter().any(|w| v.eq_ignore_ascii_case(w))))
}
