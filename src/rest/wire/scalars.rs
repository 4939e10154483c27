//! Scalars: times, priorities, integers, durations and statuses.

use serde::{Deserialize, Deserializer, Serializer};

use crate::model::{AttemptStatus, Duration, Time, WorkUnitStatus};

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

    /// Reads a number or one of the three strings (`null` as zero); anything else is
    /// refused at its first byte, unread.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
        d.deserialize_any(Wire)
    }

    struct Wire;

    impl serde::de::Visitor<'_> for Wire {
        type Value = f64;

        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a number, \"NaN\", \"Infinity\" or \"-Infinity\"")
        }

        fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<f64, E> {
            Ok(v)
        }

        fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<f64, E> {
            Ok(v as f64)
        }

        fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<f64, E> {
            Ok(v as f64)
        }

        /// `null`, read as zero, as the reference decoder reads it.
        fn visit_unit<E: serde::de::Error>(self) -> Result<f64, E> {
            Ok(0.0)
        }

        fn visit_str<E: serde::de::Error>(self, t: &str) -> Result<f64, E> {
            match t {
                "NaN" => Ok(f64::NAN),
                "Infinity" => Ok(f64::INFINITY),
                "-Infinity" => Ok(f64::NEG_INFINITY),
                _ => Err(E::custom(format!("invalid priority {t:?}"))),
            }
        }
    }
}

/// Writes a request's `available_gb` as a number JSON carries that selects
/// the same specs: NaN and minus infinity (the worker did not say, as zero
/// says) as `0`, infinity (every spec fits, as with the largest float,
/// since a spec's `min_memory_gb` is finite) as `f64::MAX`.
pub(super) fn finite_gb<S: Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
    let v = match *v {
        v if v.is_nan() || v == f64::NEG_INFINITY => 0.0,
        f64::INFINITY => f64::MAX,
        v => v,
    };
    s.serialize_f64(v)
}

/// An integer that may be written with an exponent (`1e3`) but not with a
/// fraction; `null` is zero.
pub(super) fn lenient_i64<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    struct Visitor;
    impl serde::de::Visitor<'_> for Visitor {
        type Value = i64;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("an integer")
        }
        fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<i64, E> {
            Ok(v)
        }
        fn visit_unit<E: serde::de::Error>(self) -> Result<i64, E> {
            Ok(0)
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
            .and_then(|s| s.checked_add(Duration::nanoseconds(rest as i64)))
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

    /// Reads integer nanoseconds (exponent form allowed, no fraction);
    /// `null` is zero.
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
            fn visit_unit<E: serde::de::Error>(self) -> Result<Duration, E> {
                Ok(Duration::zero())
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

/// A serde adapter module for a status written as its text.
macro_rules! status_text {
    ($(#[$doc:meta])* $module:ident: $status:ty) => {
        $(#[$doc])*
        pub mod $module {
            use super::*;

            /// Writes the status text.
            pub fn serialize<S: Serializer>(v: &$status, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(v.as_str())
            }

            /// Reads a status text.
            pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<$status, D::Error> {
                let text = String::deserialize(d)?;
                text.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

status_text!(
    /// Serde adapter for a work unit status as its text (`any` included).
    unit_status: WorkUnitStatus
);

status_text!(
    /// Serde adapter for an attempt status as its text.
    attempt_status: AttemptStatus
);

/// A list or scalar that may arrive as `null`: read as empty or zero, as
/// the reference decoder reads `null` into any field that is not a
/// pointer.
pub(super) fn null_as_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// An optional document field that must be a JSON object (or `null`):
/// serde's derived decoders would also read a struct from an array, field
/// by field in order, which the wire format does not allow. The object is
/// decoded as it is read, so the fields `T` does not know are skipped
/// unbuilt, whatever they hold, and a field it knows given twice is
/// refused, as in the body around it.
pub(super) fn optional_object<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    struct ObjectOrNull<T>(std::marker::PhantomData<T>);

    impl<'de, T: Deserialize<'de>> serde::de::Visitor<'de> for ObjectOrNull<T> {
        type Value = Option<T>;

        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a JSON object or null")
        }

        fn visit_none<E: serde::de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }

        fn visit_unit<E: serde::de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }

        fn visit_some<D2: Deserializer<'de>>(self, d: D2) -> Result<Self::Value, D2::Error> {
            d.deserialize_map(self)
        }

        fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
            T::deserialize(serde::de::value::MapAccessDeserializer::new(map)).map(Some)
        }
    }

    d.deserialize_option(ObjectOrNull(std::marker::PhantomData))
}

pub(super) fn is_empty_str(s: &str) -> bool {
    s.is_empty()
}

pub(super) fn is_zero_f64(v: &f64) -> bool {
    *v == 0.0
}

pub(super) fn is_zero_i64(v: &i64) -> bool {
    *v == 0
}
