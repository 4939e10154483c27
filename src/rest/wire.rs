//! The JSON shapes of the REST API, written once for server and client.
//!
//! Conventions every type here follows:
//!
//! * times are RFC 3339 strings in UTC with up to nine fractional digits
//!   (trailing zeros removed); "unset" is the zero instant
//!   `0001-01-01T00:00:00Z` on output, and `null`, absent or the zero
//!   instant on input ([`time`], [`opt_time`]);
//! * durations are integer nanoseconds ([`duration`]);
//! * integer fields accept an exponent form (`1e3`) but no fraction;
//! * lists accept `null` for empty; data maps accept a JSON object or a
//!   base64 CBOR string ([`data`]);
//! * request bodies ignore unknown fields, and every field is optional.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::Error;
use crate::model::{
    AttemptRequest, AttemptStatus, DataMap, Duration, SummaryRecord, Time, WorkSpecMeta,
    WorkUnitMeta, WorkUnitQuery, WorkUnitStatus,
};

/// The canonical media type of every representation.
pub const MEDIA_TYPE_V1: &str = "application/vnd.diffeo.coordinate.v1+json";
/// "The latest JSON version": today the same content as v1.
pub const MEDIA_TYPE_LATEST: &str = "application/vnd.diffeo.coordinate+json";
/// Plain JSON: the same content.
pub const MEDIA_TYPE_JSON: &str = "application/json";
/// Plain JSON under its old name: the same content.
pub const MEDIA_TYPE_TEXT_JSON: &str = "text/json";
/// The four media types that carry the JSON representation.
pub const JSON_MEDIA_TYPES: [&str; 4] = [
    MEDIA_TYPE_V1,
    MEDIA_TYPE_LATEST,
    MEDIA_TYPE_JSON,
    MEDIA_TYPE_TEXT_JSON,
];

/// The known JSON media type a `Content-Type` value names (parameters and
/// case ignored), if any.
pub fn json_media_type(content_type: &str) -> Option<&'static str> {
    let essence = content_type.split(';').next().unwrap_or("").trim();
    JSON_MEDIA_TYPES
        .into_iter()
        .find(|known| known.eq_ignore_ascii_case(essence))
}

// ---------------------------------------------------------------------------
// Scalars

/// The instant that means "unset": `0001-01-01T00:00:00Z`.
pub fn zero_time() -> Time {
    chrono::NaiveDate::from_ymd_opt(1, 1, 1)
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| t.and_utc())
        .unwrap_or(Time::MIN_UTC)
}

/// Formats a time: RFC 3339 in UTC, fractional seconds without trailing
/// zeros. Years beyond 9999 (outside every backend's range, but a caller
/// may ask) carry a `+` and five or more digits, as ISO 8601 extends them.
pub fn format_time(t: Time) -> String {
    let mut out = t.format("%Y-%m-%dT%H:%M:%S").to_string();
    let nanos = t.timestamp_subsec_nanos() % 1_000_000_000;
    if nanos != 0 {
        let digits = format!("{nanos:09}");
        out.push('.');
        out.push_str(digits.trim_end_matches('0'));
    }
    out.push('Z');
    out
}

/// Parses an RFC 3339 time with any offset (and the extended years
/// [`format_time`] writes).
pub fn parse_time(text: &str) -> Result<Time, String> {
    chrono::DateTime::parse_from_rfc3339(text)
        .or_else(|e| {
            if text.starts_with(['+', '-']) {
                chrono::DateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f%#z")
            } else {
                Err(e)
            }
        })
        .map(|t| t.to_utc())
        .map_err(|e| format!("invalid time {text:?}: {e}"))
}

/// Serde adapter for a [`Time`] that is always present.
pub mod time {
    use super::*;

    /// Writes the time as RFC 3339.
    pub fn serialize<S: Serializer>(t: &Time, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format_time(*t))
    }

    /// Reads RFC 3339; `null` is the zero instant.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Time, D::Error> {
        match Option::<String>::deserialize(d)? {
            None => Ok(zero_time()),
            Some(text) => parse_time(&text).map_err(serde::de::Error::custom),
        }
    }
}

/// Serde adapter for an optional [`Time`]: `None` is the zero instant.
///
/// The zero instant is also a real time (the earliest a backend keeps), so
/// `Some` of it is written `0001-01-01T00:00:00+00:00`: every reader takes
/// that for the same instant, and this module reads back only the canonical
/// `0001-01-01T00:00:00Z` (and `null`, and absence) as `None`.
pub mod opt_time {
    use super::*;

    /// The spelling of `None`.
    const UNSET: &str = "0001-01-01T00:00:00Z";
    /// The spelling of `Some` of the zero instant.
    const ZERO: &str = "0001-01-01T00:00:00+00:00";

    /// Writes the time, or the zero instant for `None`.
    pub fn serialize<S: Serializer>(t: &Option<Time>, s: S) -> Result<S::Ok, S::Error> {
        match t {
            None => s.serialize_str(UNSET),
            Some(t) if *t == zero_time() => s.serialize_str(ZERO),
            Some(t) => s.serialize_str(&format_time(*t)),
        }
    }

    /// Reads RFC 3339; `null` and the canonical zero instant are `None`.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Time>, D::Error> {
        match Option::<String>::deserialize(d)? {
            None => Ok(None),
            Some(text) if text == UNSET => Ok(None),
            Some(text) => parse_time(&text)
                .map(Some)
                .map_err(serde::de::Error::custom),
        }
    }
}

/// Serde adapter for a priority: a JSON number, or for the values JSON
/// numbers cannot hold the strings `"NaN"`, `"Infinity"` and `"-Infinity"`
/// (so a backend, not the encoder, answers that they are bad priorities).
pub mod priority {
    use super::*;

    /// Writes the number, or its string for a non-finite one.
    pub fn serialize<S: Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
        if v.is_nan() {
            s.serialize_str("NaN")
        } else if v.is_infinite() {
            s.serialize_str(if *v > 0.0 { "Infinity" } else { "-Infinity" })
        } else {
            s.serialize_f64(*v)
        }
    }

    /// Reads a number or one of the three strings.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Wire {
            Number(f64),
            Text(String),
        }
        match Wire::deserialize(d)? {
            Wire::Number(v) => Ok(v),
            Wire::Text(t) => match t.as_str() {
                "NaN" => Ok(f64::NAN),
                "Infinity" => Ok(f64::INFINITY),
                "-Infinity" => Ok(f64::NEG_INFINITY),
                _ => Err(serde::de::Error::custom(format!("invalid priority {t:?}"))),
            },
        }
    }
}

/// An integer that may be written with an exponent (`1e3`) but not with a
/// fraction.
fn lenient_i64<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    struct Visitor;
    impl serde::de::Visitor<'_> for Visitor {
        type Value = i64;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("an integer")
        }
        fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<i64, E> {
            Ok(v)
        }
        fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<i64, E> {
            i64::try_from(v).map_err(|_| E::custom(format!("integer {v} out of range")))
        }
        fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<i64, E> {
            // The bounds are exact powers of two, so the comparison is exact.
            if v.fract() == 0.0 && v >= -(2f64.powi(63)) && v < 2f64.powi(63) {
                Ok(v as i64)
            } else {
                Err(E::custom(format!("{v} is not an integer")))
            }
        }
    }
    d.deserialize_any(Visitor)
}

/// Serde adapter for an integer field (see the module conventions).
pub mod int {
    use super::*;

    /// Writes the integer.
    pub fn serialize<S: Serializer>(v: &i64, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_i64(*v)
    }

    /// Reads an integer, exponent form allowed.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
        lenient_i64(d)
    }
}

/// Serde adapter for a [`Duration`] as integer nanoseconds.
///
/// A span beyond 64-bit nanoseconds (about 292 years) is written as a
/// string of its decimal nanoseconds: a JSON decoder reads integers that
/// large as floats and would round them. Numeric strings are read for any
/// duration, as the reference decoder does.
pub mod duration {
    use super::*;

    const NANOS_PER_SECOND: i128 = 1_000_000_000;

    /// Exact nanoseconds (beyond 64 bits for spans over about 292 years).
    pub fn to_nanos(d: Duration) -> i128 {
        i128::from(d.num_seconds()) * NANOS_PER_SECOND + i128::from(d.subsec_nanos())
    }

    /// The duration of `nanos` nanoseconds, saturating at the ends of the
    /// representable range (so an overflowing request reaches the backend,
    /// which answers `TimeOutOfRange`, instead of failing to decode).
    pub fn from_nanos(nanos: i128) -> Duration {
        let seconds = nanos.div_euclid(NANOS_PER_SECOND);
        let rest = nanos.rem_euclid(NANOS_PER_SECOND);
        i64::try_from(seconds)
            .ok()
            .and_then(Duration::try_seconds)
            .and_then(|s| s.checked_add(&Duration::nanoseconds(rest as i64)))
            .unwrap_or(if nanos < 0 {
                Duration::MIN
            } else {
                Duration::MAX
            })
    }

    /// Writes integer nanoseconds.
    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        let nanos = to_nanos(*d);
        match i64::try_from(nanos) {
            Ok(n) => s.serialize_i64(n),
            Err(_) => s.serialize_str(&nanos.to_string()),
        }
    }

    /// Reads integer nanoseconds (exponent form allowed, no fraction).
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = Duration;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an integer number of nanoseconds")
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Duration, E> {
                Ok(from_nanos(i128::from(v)))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Duration, E> {
                Ok(from_nanos(i128::from(v)))
            }
            fn visit_i128<E: serde::de::Error>(self, v: i128) -> Result<Duration, E> {
                Ok(from_nanos(v))
            }
            fn visit_u128<E: serde::de::Error>(self, v: u128) -> Result<Duration, E> {
                Ok(from_nanos(i128::try_from(v).unwrap_or(i128::MAX)))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Duration, E> {
                v.trim()
                    .parse::<i128>()
                    .map(from_nanos)
                    .map_err(|_| E::custom(format!("{v:?} is not an integer")))
            }
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Duration, E> {
                // Integers beyond 64 bits arrive as floats; `as` saturates.
                if v.is_finite() && v.fract() == 0.0 {
                    Ok(from_nanos(v as i128))
                } else {
                    Err(E::custom(format!("{v} is not an integer")))
                }
            }
        }
        d.deserialize_any(Visitor)
    }
}

/// Serde adapter for a work unit status as its text (`any` included).
pub mod unit_status {
    use super::*;

    /// Writes the status text.
    pub fn serialize<S: Serializer>(v: &WorkUnitStatus, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(v.as_str())
    }

    /// Reads a status text.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<WorkUnitStatus, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// Serde adapter for an attempt status as its text.
pub mod attempt_status {
    use super::*;

    /// Writes the status text.
    pub fn serialize<S: Serializer>(v: &AttemptStatus, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(v.as_str())
    }

    /// Reads a status text.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<AttemptStatus, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// A list that may arrive as `null`.
fn null_as_empty<'de, D, T>(d: D) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Ok(Option::<Vec<T>>::deserialize(d)?.unwrap_or_default())
}

fn is_empty_str(s: &str) -> bool {
    s.is_empty()
}

fn is_zero_f64(v: &f64) -> bool {
    *v == 0.0
}

// ---------------------------------------------------------------------------
// Data maps

/// Serde adapter for an optional data map in either wire form.
///
/// Output is always the JSON-object form. Input is a JSON object, `null`
/// (`None`), or a string holding the standard base64 (padded) of a CBOR
/// map. CBOR tuples (tag 128) become arrays, UUIDs (tag 37) their canonical
/// text, byte strings text when they are UTF-8; anything JSON cannot hold
/// (other tags, non-UTF-8 bytes, non-finite floats, huge integers) is an error.
pub mod data {
    use base64::engine::general_purpose::STANDARD;
    use base64::Engine as _;
    use ciborium::value::Value as Cbor;
    use serde_json::Value as Json;

    use super::*;

    /// Writes the map as a JSON object, or `null`.
    pub fn serialize<S: Serializer>(v: &Option<DataMap>, s: S) -> Result<S::Ok, S::Error> {
        v.serialize(s)
    }

    /// Reads either form.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<DataMap>, D::Error> {
        match Json::deserialize(d)? {
            Json::Null => Ok(None),
            Json::Object(map) => Ok(Some(map)),
            Json::String(text) => from_cbor_base64(&text)
                .map(Some)
                .map_err(serde::de::Error::custom),
            _ => Err(serde::de::Error::custom(
                "data must be an object or a base64 CBOR string",
            )),
        }
    }

    /// Decodes the base64 CBOR form of a data map.
    pub fn from_cbor_base64(text: &str) -> Result<DataMap, String> {
        let bytes = STANDARD
            .decode(text)
            .map_err(|e| format!("data is not base64: {e}"))?;
        let value: Cbor = ciborium::from_reader(bytes.as_slice())
            .map_err(|e| format!("data is not CBOR: {e}"))?;
        match to_json(value)? {
            Json::Object(map) => Ok(map),
            _ => Err("CBOR data is not a map".to_owned()),
        }
    }

    fn text_of_bytes(bytes: Vec<u8>) -> Result<String, String> {
        String::from_utf8(bytes).map_err(|_| "CBOR byte string is not UTF-8".to_owned())
    }

    fn to_json(value: Cbor) -> Result<Json, String> {
        Ok(match value {
            Cbor::Null => Json::Null,
            Cbor::Bool(b) => Json::Bool(b),
            Cbor::Text(s) => Json::String(s),
            Cbor::Bytes(b) => Json::String(text_of_bytes(b)?),
            Cbor::Integer(i) => {
                let i = i128::from(i);
                if let Ok(v) = i64::try_from(i) {
                    Json::from(v)
                } else if let Ok(v) = u64::try_from(i) {
                    Json::from(v)
                } else {
                    return Err(format!("CBOR integer {i} out of range"));
                }
            }
            Cbor::Float(f) => serde_json::Number::from_f64(f)
                .map(Json::Number)
                .ok_or_else(|| format!("CBOR float {f} has no JSON form"))?,
            Cbor::Array(items) => {
                Json::Array(items.into_iter().map(to_json).collect::<Result<_, _>>()?)
            }
            Cbor::Map(entries) => {
                let mut map = DataMap::new();
                for (key, value) in entries {
                    let key = match key {
                        Cbor::Text(s) => s,
                        Cbor::Bytes(b) => text_of_bytes(b)?,
                        _ => return Err("CBOR map key is not a string".to_owned()),
                    };
                    map.insert(key, to_json(value)?);
                }
                Json::Object(map)
            }
            Cbor::Tag(128, inner) => match *inner {
                Cbor::Array(items) => to_json(Cbor::Array(items))?,
                _ => return Err("CBOR tuple (tag 128) does not wrap an array".to_owned()),
            },
            Cbor::Tag(37, inner) => match *inner {
                Cbor::Bytes(b) if b.len() == 16 => Json::String(uuid_text(&b)),
                _ => return Err("CBOR UUID (tag 37) is not 16 bytes".to_owned()),
            },
            Cbor::Tag(tag, _) => return Err(format!("unsupported CBOR tag {tag}")),
            _ => return Err("unsupported CBOR value".to_owned()),
        })
    }

    fn uuid_text(b: &[u8]) -> String {
        let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
        format!(
            "{}-{}-{}-{}-{}",
            &hex[0..8],
            &hex[8..12],
            &hex[12..16],
            &hex[16..20],
            &hex[20..32]
        )
    }
}

/// True when a data map is absent or empty (such fields are omitted).
fn data_is_empty(v: &Option<DataMap>) -> bool {
    v.as_ref().map_or(true, |m| m.is_empty())
}

// ---------------------------------------------------------------------------
// Representations

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
    #[serde(default, deserialize_with = "null_as_empty")]
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
    #[serde(default, deserialize_with = "null_as_empty")]
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
    #[serde(with = "data")]
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
    /// Template with `{?counts}` (the key is `meta`, not `meta_url`).
    pub meta: String,
}

/// A work spec's meta; as a `PUT` body every absent field is zero.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct WorkSpecMetaDocument {
    /// Absolute priority.
    #[serde(with = "int")]
    pub priority: i64,
    /// Relative weight.
    #[serde(with = "int")]
    pub weight: i64,
    /// Never scheduled while paused.
    pub paused: bool,
    /// Generates units when idle.
    pub continuous: bool,
    /// Whether the definition allows `continuous` (ignored on input).
    pub can_be_continuous: bool,
    /// Memory hint; omitted when 0.
    #[serde(skip_serializing_if = "is_zero_f64")]
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
    fn from(m: WorkSpecMeta) -> Self {
        WorkSpecMetaDocument {
            priority: m.priority,
            weight: m.weight,
            paused: m.paused,
            continuous: m.continuous,
            can_be_continuous: m.can_be_continuous,
            min_memory_gb: m.min_memory_gb,
            interval: m.interval,
            next_continuous: m.next_continuous,
            max_running: m.max_running,
            max_attempts_returned: m.max_attempts_returned,
            max_retries: m.max_retries,
            next_work_spec_name: m.next_work_spec_name,
            available_count: m.available_count,
            pending_count: m.pending_count,
            runtime: m.runtime,
        }
    }
}

impl From<WorkSpecMetaDocument> for WorkSpecMeta {
    fn from(m: WorkSpecMetaDocument) -> Self {
        WorkSpecMeta {
            priority: m.priority,
            weight: m.weight,
            paused: m.paused,
            continuous: m.continuous,
            can_be_continuous: m.can_be_continuous,
            min_memory_gb: m.min_memory_gb,
            interval: m.interval,
            next_continuous: m.next_continuous,
            max_running: m.max_running,
            max_attempts_returned: m.max_attempts_returned,
            max_retries: m.max_retries,
            next_work_spec_name: m.next_work_spec_name,
            available_count: m.available_count,
            pending_count: m.pending_count,
            runtime: m.runtime,
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

impl From<WorkUnitMeta> for WorkUnitMetaDocument {
    fn from(m: WorkUnitMeta) -> Self {
        WorkUnitMetaDocument {
            priority: m.priority,
            not_before: m.not_before,
        }
    }
}

impl From<WorkUnitMetaDocument> for WorkUnitMeta {
    fn from(m: WorkUnitMetaDocument) -> Self {
        WorkUnitMeta {
            priority: m.priority,
            not_before: m.not_before,
        }
    }
}

/// The work unit list.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct WorkUnitList {
    /// The selected units, unordered.
    #[serde(default, deserialize_with = "null_as_empty")]
    pub work_units: Vec<NamedLink>,
}

/// A work unit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkUnitDocument {
    /// Its name.
    #[serde(default)]
    pub name: String,
    /// Its URL.
    #[serde(default)]
    pub url: String,
    /// Its visible data; omitted when empty.
    #[serde(default, with = "data", skip_serializing_if = "data_is_empty")]
    pub data: Option<DataMap>,
    /// Priority and not-before time; always present.
    pub meta: WorkUnitMetaDocument,
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

/// An attempt in a list.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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
}

/// An attempt list.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct AttemptList {
    /// The attempts.
    #[serde(default, deserialize_with = "null_as_empty")]
    pub attempts: Vec<AttemptSummary>,
}

/// An attempt.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AttemptDocument {
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
    /// Its status.
    #[serde(with = "attempt_status")]
    pub status: AttemptStatus,
    /// Its data; omitted when empty.
    #[serde(default, with = "data", skip_serializing_if = "data_is_empty")]
    pub data: Option<DataMap>,
    /// When it left pending; unset while pending.
    #[serde(default, with = "opt_time")]
    pub end_time: Option<Time>,
    /// When its lease runs out.
    #[serde(with = "time")]
    pub expiration_time: Time,
    /// `POST` renews.
    #[serde(default)]
    pub renew_url: String,
    /// `POST` expires.
    #[serde(default)]
    pub expire_url: String,
    /// `POST` finishes.
    #[serde(default)]
    pub finish_url: String,
    /// `POST` fails.
    #[serde(default)]
    pub fail_url: String,
    /// `POST` retries.
    #[serde(default)]
    pub retry_url: String,
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
        deserialize_with = "null_as_empty",
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
    #[serde(default, with = "data")]
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

impl From<SummaryRecord> for SummaryRecordDocument {
    fn from(r: SummaryRecord) -> Self {
        SummaryRecordDocument {
            namespace: r.namespace,
            work_spec: r.work_spec,
            status: r.status,
            count: r.count,
        }
    }
}

impl From<SummaryRecordDocument> for SummaryRecord {
    fn from(r: SummaryRecordDocument) -> Self {
        SummaryRecord {
            namespace: r.namespace,
            work_spec: r.work_spec,
            status: r.status,
            count: r.count,
        }
    }
}

/// A summary: a JSON array (`null` read as empty).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SummaryDocument(
    #[serde(deserialize_with = "null_as_empty")] pub Vec<SummaryRecordDocument>,
);

/// The worker list: `GET` on a namespace's `workers_url`. An extension of
/// this server (the reference server has no method there); items are short
/// forms, like the other lists.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct WorkerList {
    /// Every worker of the namespace, unordered.
    #[serde(default, deserialize_with = "null_as_empty")]
    pub workers: Vec<NamedLink>,
}

/// The answer of a work unit query `DELETE`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct DeletedDocument {
    /// How many units were deleted.
    #[serde(rename = "Deleted", default)]
    pub deleted: u64,
}

// ---------------------------------------------------------------------------
// Request bodies

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
    #[serde(skip_serializing_if = "Option::is_none")]
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
    #[serde(skip_serializing_if = "Option::is_none")]
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

impl From<AttemptRequestBody> for AttemptRequest {
    fn from(b: AttemptRequestBody) -> Self {
        AttemptRequest {
            available_gb: b.available_gb,
            lifetime: b.lifetime,
            number_of_work_units: b.number_of_work_units,
            work_specs: b.work_specs,
            runtimes: b.runtimes,
        }
    }
}

impl From<AttemptRequest> for AttemptRequestBody {
    fn from(r: AttemptRequest) -> Self {
        AttemptRequestBody {
            available_gb: r.available_gb,
            lifetime: r.lifetime,
            number_of_work_units: r.number_of_work_units,
            work_specs: r.work_specs,
            runtimes: r.runtimes,
        }
    }
}

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
    /// The work spec's name.
    pub work_spec: String,
    /// The work unit's name.
    pub work_unit: String,
    /// Lease; 0 is the default.
    #[serde(with = "duration")]
    pub lifetime: Duration,
}

// ---------------------------------------------------------------------------
// Work unit queries

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
            "status" => query.statuses.push(
                value
                    .parse()
                    .map_err(|_| QueryError::BadStatus(value.clone().into_owned()))?,
            ),
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
        query.previous_name = super::names::decode_previous(&previous);
    }
    query.limit = limit.unwrap_or(0).max(0);
    Ok(query)
}

/// The query string (without `?`) that selects what `query` selects; empty
/// for the query of every unit.
pub fn work_unit_query_string(query: &WorkUnitQuery) -> String {
    use super::names::{encode_previous, percent_encode};
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
    form_urlencoded::parse(raw.as_bytes())
        .find(|(k, _)| k == "counts")
        .is_some_and(|(_, v)| {
            ["1", "t", "y", "true", "on", "yes"]
                .iter()
                .any(|yes| v.eq_ignore_ascii_case(yes))
        })
}

// ---------------------------------------------------------------------------
// Errors

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
    /// `Error::CannotBecomeContinuous`.
    pub const CANNOT_BECOME_CONTINUOUS: &str = "ErrCannotBecomeContinuous";
    /// `Error::WrongBackend`.
    pub const WRONG_BACKEND: &str = "ErrWrongBackend";
    /// `Error::NoWork`.
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
}

/// The body of every error response.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
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
    /// (invalid work spec data, bad output item, time out of range): the
    /// kind; `value` then holds its argument. Other clients ignore it.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub kind: String,
}

/// A failure the server reported without a code this crate knows.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("server error ({code}): {message}")]
pub struct RemoteError {
    /// The error document's code.
    pub code: String,
    /// The error document's message.
    pub message: String,
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
            Error::CannotBecomeContinuous => CANNOT_BECOME_CONTINUOUS,
            Error::WrongBackend => WRONG_BACKEND,
            Error::NoWork => NO_WORK,
            Error::WorkUnitNotList => WORK_UNIT_NOT_LIST,
            Error::WorkUnitTooShort => WORK_UNIT_TOO_SHORT,
            Error::BadPriority => BAD_PRIORITY,
            Error::Gone => GONE,
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
    /// or kind, else a backend error carrying a [`RemoteError`].
    pub fn into_error(self) -> Error {
        use codes::*;
        match self.error.as_str() {
            NO_WORK_SPEC_NAME => return Error::NoWorkSpecName,
            BAD_WORK_SPEC_NAME => return Error::BadWorkSpecName,
            CHANGED_NAME => return Error::ChangedName,
            LOST_LEASE => return Error::LostLease,
            NOT_PENDING => return Error::NotPending,
            CANNOT_BECOME_CONTINUOUS => return Error::CannotBecomeContinuous,
            WRONG_BACKEND => return Error::WrongBackend,
            NO_WORK => return Error::NoWork,
            WORK_UNIT_NOT_LIST => return Error::WorkUnitNotList,
            WORK_UNIT_TOO_SHORT => return Error::WorkUnitTooShort,
            BAD_PRIORITY => return Error::BadPriority,
            GONE => return Error::Gone,
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
            _ => Error::backend(RemoteError {
                code: self.error,
                message: self.message,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn t(text: &str) -> Time {
        parse_time(text).unwrap()
    }

    #[test]
    fn times_format_in_utc_without_trailing_zeros() {
        assert_eq!(
            format_time(t("2024-05-06T07:08:09.5Z")),
            "2024-05-06T07:08:09.5Z"
        );
        assert_eq!(
            format_time(t("2024-05-06T07:08:09Z")),
            "2024-05-06T07:08:09Z"
        );
        assert_eq!(
            format_time(t("2024-05-06T09:08:09.123456789+02:00")),
            "2024-05-06T07:08:09.123456789Z"
        );
        assert_eq!(
            format_time(t("2024-05-06T07:08:09.120000Z")),
            "2024-05-06T07:08:09.12Z"
        );
        assert_eq!(format_time(zero_time()), "0001-01-01T00:00:00Z");
    }

    #[test]
    fn unset_times_are_the_zero_instant_or_null() {
        let meta: WorkUnitMetaDocument =
            serde_json::from_value(json!({"priority": 1, "not_before": "0001-01-01T00:00:00Z"}))
                .unwrap();
        assert_eq!(meta.not_before, None);
        let meta: WorkUnitMetaDocument =
            serde_json::from_value(json!({"not_before": null})).unwrap();
        assert_eq!(meta.not_before, None);
        let meta: WorkUnitMetaDocument = serde_json::from_value(json!({})).unwrap();
        assert_eq!(meta, WorkUnitMetaDocument::default());
        assert_eq!(
            serde_json::to_value(meta).unwrap(),
            json!({"priority": 0.0, "not_before": "0001-01-01T00:00:00Z"})
        );
        let meta: WorkUnitMetaDocument =
            serde_json::from_value(json!({"not_before": "2024-05-06T07:08:09+05:30"})).unwrap();
        assert_eq!(meta.not_before, Some(t("2024-05-06T01:38:09Z")));
        assert!(
            serde_json::from_value::<WorkUnitMetaDocument>(json!({"not_before": "yesterday"}))
                .is_err()
        );
    }

    #[test]
    fn the_zero_instant_as_a_real_time_keeps_a_spelling_of_its_own() {
        let set = WorkUnitMetaDocument {
            priority: 1.0,
            not_before: Some(zero_time()),
        };
        let v = serde_json::to_value(set).unwrap();
        assert_eq!(v["not_before"], "0001-01-01T00:00:00+00:00");
        assert_eq!(
            serde_json::from_value::<WorkUnitMetaDocument>(v).unwrap(),
            set
        );
        let far = parse_time("+10000-01-01T00:00:00Z").unwrap();
        assert_eq!(format_time(far), "+10000-01-01T00:00:00Z");
        let before = zero_time() - Duration::microseconds(1);
        assert_eq!(parse_time(&format_time(before)).unwrap(), before);
    }

    #[test]
    fn non_finite_priorities_travel_as_strings() {
        for p in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY, -0.5, f64::MAX] {
            let doc = WorkUnitMetaDocument {
                priority: p,
                not_before: None,
            };
            let back: WorkUnitMetaDocument =
                serde_json::from_str(&serde_json::to_string(&doc).unwrap()).unwrap();
            assert!(back.priority.total_cmp(&p).is_eq() || (p.is_nan() && back.priority.is_nan()));
        }
        assert!(
            serde_json::from_value::<WorkUnitMetaDocument>(json!({"priority": "high"})).is_err()
        );
        assert_eq!(
            serde_json::to_value(WorkUnitMetaDocument::default()).unwrap()["priority"],
            json!(0.0)
        );
    }

    #[test]
    fn durations_are_integer_nanoseconds() {
        let body: AttemptActionBody =
            serde_json::from_value(json!({"extend_duration": 900000000000i64, "delay": 1e3}))
                .unwrap();
        assert_eq!(body.extend_duration, Duration::minutes(15));
        assert_eq!(body.delay, Duration::nanoseconds(1000));
        assert!(serde_json::from_value::<AttemptActionBody>(json!({"delay": 1.5})).is_err());
        let body: AttemptActionBody = serde_json::from_value(json!({"delay": "5"})).unwrap();
        assert_eq!(body.delay, Duration::nanoseconds(5));
        assert!(serde_json::from_value::<AttemptActionBody>(json!({"delay": "5.5"})).is_err());
        let out = serde_json::to_value(AttemptActionBody {
            data: None,
            extend_duration: Duration::seconds(-1),
            delay: Duration::zero(),
        })
        .unwrap();
        assert_eq!(out, json!({"extend_duration": -1000000000i64, "delay": 0}));
        // Spans beyond 64-bit nanoseconds travel exactly; beyond the
        // representable range they saturate.
        let millennium = Duration::days(365_000);
        let out = serde_json::to_string(&AttemptActionBody {
            data: None,
            extend_duration: millennium,
            delay: Duration::MAX,
        })
        .unwrap();
        assert!(
            out.contains(r#""extend_duration":"31536000000000000000","#),
            "{out}"
        );
        let back: AttemptActionBody = serde_json::from_str(&out).unwrap();
        assert_eq!(back.extend_duration, millennium);
        assert_eq!(back.delay, Duration::MAX);
        let exact = -Duration::days(719_162) - Duration::microseconds(1);
        let back: AttemptActionBody = serde_json::from_str(
            &serde_json::to_string(&AttemptActionBody {
                delay: exact,
                ..Default::default()
            })
            .unwrap(),
        )
        .unwrap();
        assert_eq!(back.delay, exact);
        let back: AttemptActionBody =
            serde_json::from_value(json!({"delay": -1e40, "extend_duration": 1e40})).unwrap();
        assert_eq!(back.delay, Duration::MIN);
        assert_eq!(back.extend_duration, Duration::MAX);
    }

    #[test]
    fn action_data_distinguishes_absent_null_and_empty() {
        let read = |v| serde_json::from_value::<AttemptActionBody>(v).unwrap().data;
        assert_eq!(read(json!({})), None);
        assert_eq!(read(json!({"data": null})), None);
        assert_eq!(read(json!({"data": {}})), Some(DataMap::new()));
    }

    #[test]
    fn cbor_data_decodes_tuples_uuids_and_bytes() {
        let body: WorkUnitBody =
            serde_json::from_value(json!({"data": "oWRwYWly2ICCYWEB"})).unwrap();
        assert_eq!(body.data, Some(crate::data!({"pair": ["a", 1]})));
        let body: WorkUnitBody =
            serde_json::from_value(json!({"data": "oWJpZNglUA9OSyqMHU5Vmgs8LR4Pmos="})).unwrap();
        assert_eq!(
            body.data,
            Some(crate::data!({"id": "0f4e4b2a-8c1d-4e55-9a0b-3c2d1e0f9a8b"}))
        );
        // {"k": bytes 01 02 03 04}: valid UTF-8 control bytes become text.
        let body: WorkUnitBody = serde_json::from_value(json!({"data": "oWFrRAECAwQ="})).unwrap();
        assert_eq!(body.data, Some(crate::data!({"k": "\u{1}\u{2}\u{3}\u{4}"})));
        for bad in ["not base64!", "AQID", "gQE=", "oWFrQv/+"] {
            assert!(
                serde_json::from_value::<WorkUnitBody>(json!({ "data": bad })).is_err(),
                "{bad}"
            );
        }
        assert!(serde_json::from_value::<WorkUnitBody>(json!({"data": 3})).is_err());
    }

    #[test]
    fn work_unit_document_omits_empty_data_and_active_attempt() {
        let doc = WorkUnitDocument {
            name: "u".into(),
            url: "/u".into(),
            data: Some(DataMap::new()),
            meta: WorkUnitMetaDocument::default(),
            status: WorkUnitStatus::Available,
            work_spec_url: "/s".into(),
            attempts_url: "/u/attempts".into(),
            active_attempt_url: String::new(),
        };
        let v = serde_json::to_value(&doc).unwrap();
        assert!(v.get("data").is_none());
        assert!(v.get("active_attempt_url").is_none());
        assert_eq!(v["status"], "available");
        assert_eq!(v["meta"]["not_before"], "0001-01-01T00:00:00Z");
        let back: WorkUnitDocument = serde_json::from_value(v).unwrap();
        assert_eq!(back.data, None);
    }

    #[test]
    fn spec_meta_omits_zero_memory_and_reads_absent_as_zero() {
        let v = serde_json::to_value(WorkSpecMetaDocument::from(WorkSpecMeta::default())).unwrap();
        assert!(v.get("min_memory_gb").is_none());
        assert_eq!(v["weight"], 20);
        assert_eq!(v["interval"], 0);
        assert_eq!(v["next_continuous"], "0001-01-01T00:00:00Z");
        let m: WorkSpecMetaDocument = serde_json::from_value(json!({"priority": 5})).unwrap();
        assert_eq!(m.weight, 0);
        assert_eq!(m.priority, 5);
        assert!(serde_json::from_value::<WorkSpecMetaDocument>(json!({"priority": 1.5})).is_err());
    }

    #[test]
    fn lists_accept_null() {
        let l: WorkUnitList = serde_json::from_value(json!({"work_units": null})).unwrap();
        assert!(l.work_units.is_empty());
        let s: SummaryDocument = serde_json::from_value(json!(null)).unwrap();
        assert!(s.0.is_empty());
        let r: AttemptRequestResult = serde_json::from_value(json!({"attempts": null})).unwrap();
        assert!(r.attempts.is_empty());
    }

    #[test]
    fn summary_and_deleted_keys_are_capitalised() {
        let s = SummaryDocument(vec![SummaryRecordDocument {
            namespace: "prod".into(),
            work_spec: "crawl".into(),
            status: WorkUnitStatus::Pending,
            count: 3,
        }]);
        assert_eq!(
            serde_json::to_value(&s).unwrap(),
            json!([{"Namespace": "prod", "WorkSpec": "crawl", "Status": "pending", "Count": 3}])
        );
        assert_eq!(
            serde_json::to_value(DeletedDocument { deleted: 2 }).unwrap(),
            json!({"Deleted": 2})
        );
    }

    #[test]
    fn error_documents_round_trip_typed_errors() {
        let cases = [
            Error::NoWorkSpecName,
            Error::BadWorkSpecName,
            Error::ChangedName,
            Error::LostLease,
            Error::NotPending,
            Error::CannotBecomeContinuous,
            Error::WrongBackend,
            Error::NoWork,
            Error::WorkUnitNotList,
            Error::WorkUnitTooShort,
            Error::BadPriority,
            Error::Gone,
            Error::NoSuchWorkSpec { name: "s".into() },
            Error::NoSuchWorkUnit { name: "".into() },
            Error::InvalidWorkSpecData("priority".into()),
            Error::BadOutputItem("x".into()),
            Error::TimeOutOfRange("y".into()),
            Error::NameTooLong { limit: 1024 },
            Error::DataTooDeep { limit: 100 },
        ];
        for err in cases {
            let doc = ErrorDocument::from_error(&err);
            let json = serde_json::to_string(&doc).unwrap();
            let back: ErrorDocument = serde_json::from_str(&json).unwrap();
            assert_eq!(back.into_error(), err, "{json}");
        }
        let doc = ErrorDocument::from_error(&Error::NoSuchWorkSpec {
            name: "crawl2".into(),
        });
        assert_eq!(doc.error, "ErrNoSuchWorkSpec");
        assert_eq!(doc.value, "crawl2");
        let v = serde_json::to_value(ErrorDocument::generic("boom")).unwrap();
        assert_eq!(v, json!({"error": "error", "message": "boom"}));
        let other: ErrorDocument = serde_json::from_value(json!({})).unwrap();
        assert!(matches!(other.into_error(), Error::Backend(_)));
    }

    #[test]
    fn queries_parse_form_encoding_and_tolerate_empty_components() {
        let q = parse_work_unit_query("name=a&&name=b%20b&name=f+g&status=available&status=any&previous=-YiBi&previous=z&limit=5&limit=9&x=1").unwrap();
        assert_eq!(q.names, ["a", "b b", "f g"]);
        assert_eq!(
            q.statuses,
            [WorkUnitStatus::Available, WorkUnitStatus::AnyStatus]
        );
        assert_eq!(q.previous_name, "b b");
        assert_eq!(q.limit, 5);
        assert_eq!(parse_work_unit_query("").unwrap(), WorkUnitQuery::all());
        assert_eq!(parse_work_unit_query("limit=-3").unwrap().limit, 0);
        assert_eq!(
            parse_work_unit_query("status=Available"),
            Err(QueryError::BadStatus("Available".into()))
        );
        assert_eq!(
            parse_work_unit_query("limit=1.5"),
            Err(QueryError::BadLimit("1.5".into()))
        );
    }

    #[test]
    fn query_strings_round_trip() {
        let q = WorkUnitQuery {
            names: vec!["b b".into(), "-c".into(), "é".into()],
            statuses: vec![WorkUnitStatus::Pending],
            previous_name: "-c".into(),
            limit: 7,
        };
        let s = work_unit_query_string(&q);
        assert_eq!(
            s,
            "name=b%20b&name=-c&name=%C3%A9&status=pending&previous=-LWM&limit=7"
        );
        assert_eq!(parse_work_unit_query(&s).unwrap(), q);
        assert_eq!(work_unit_query_string(&WorkUnitQuery::all()), "");
    }

    #[test]
    fn counts_flag_spellings() {
        for yes in [
            "counts=1",
            "counts=T",
            "counts=yes",
            "counts=On",
            "counts=true",
        ] {
            assert!(parse_counts_flag(yes), "{yes}");
        }
        for no in ["", "counts=0", "counts=false", "counts=maybe", "count=true"] {
            assert!(!parse_counts_flag(no), "{no}");
        }
    }

    #[test]
    fn media_types_match_case_insensitively_with_parameters() {
        assert_eq!(
            json_media_type("Application/JSON; charset=utf-8"),
            Some(MEDIA_TYPE_JSON)
        );
        assert_eq!(json_media_type(MEDIA_TYPE_V1), Some(MEDIA_TYPE_V1));
        assert_eq!(json_media_type("text/html"), None);
    }
}
