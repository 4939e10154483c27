//! The limits on what callers store, checked the same way by every backend
//! before anything is stored (see the crate's [`# Limits`](crate#limits)
//! section).
//!
//! Each check answers a typed error for input beyond a limit and
//! normalises what two backends would otherwise store differently
//! (`-0.0` in priorities and data, sub-microsecond times and intervals).

use std::io;

use serde::Serialize;
use serde_json::ser::{CompactFormatter, Formatter};
use serde_json::Value;

use crate::error::{Error, Result};
use crate::model::{DataMap, Duration, NewWorkUnit, Time, WorkSpecMeta, WorkUnitMeta};

/// The longest name, in UTF-8 bytes, of a namespace, work spec, work unit
/// or worker.
///
/// PostgreSQL cannot index a row over about 2,700 bytes; 1 KiB leaves room
/// for indexes over a name and its parent's id (or two names).
pub const MAX_NAME_BYTES: usize = 1024;

/// The deepest nesting of a data map: the map itself is level 1, and each
/// object or array inside adds a level (`{"a": [1]}` is 2 deep).
///
/// PostgreSQL's client decodes `jsonb` with serde_json, whose recursion
/// limit lets it read a map at most 127 levels deep; 100 leaves a margin,
/// so everything stored reads back.
pub const MAX_DATA_DEPTH: usize = 100;

/// The longest data map, in bytes of its compact JSON encoding (as
/// `serde_json::to_vec` writes it, but for floats, counted in plain
/// notation: `1e300` as its 301 digits and `.0`, `1e-300` as `0.` and 300
/// decimals, as PostgreSQL's `jsonb`, whose numbers are never written with
/// an exponent, stores and answers them).
///
/// PostgreSQL's `jsonb` refuses a string or container over 256 MiB, and
/// `coordinated` reads request bodies up to 32 MiB by default: 4 MiB keeps
/// any data far inside the first, even in `jsonb`'s binary form (several
/// times longer than the JSON for an array of two million zeros), and
/// inside the second even in the longest form clients write, up to six
/// times longer (`<`, `>` and `&` escaped as `\u003c` and the like).
/// Floats count as written out because that is how PostgreSQL answers
/// them: counted as serde_json writes them, 4 MiB of `1e300` would be read
/// back as 200 MB of text.
pub const MAX_DATA_BYTES: usize = 4 << 20;

/// The longest worker mode, in UTF-8 bytes.
///
/// A mode is a short label (`"RUN"`, `"IDLE"`); 1 KiB is far more than one
/// needs and keeps a worker's update with data at [`MAX_DATA_BYTES`]
/// inside `coordinated`'s request body limit.
pub const MAX_MODE_BYTES: usize = 1024;

/// The longest continuous `interval` of a work spec: 100 years of 365.25
/// days. Intervals are never negative.
pub const MAX_INTERVAL: Duration = Duration::seconds(3_155_760_000);

/// The most attempts one `request_attempts` hands out, whatever number of
/// units it asks for (fewer than asked is always a valid answer).
///
/// Each attempt handed out is a row locked in one PostgreSQL statement and
/// a document in one REST answer; a request for millions would hold a
/// spec's units and a server's memory for one worker that cannot work
/// through them before their leases end.
pub const MAX_ATTEMPTS_PER_REQUEST: i64 = 1_000;

/// The number of attempts a request for `requested` units may get before
/// the spec's own bounds: at least one, at most
/// [`MAX_ATTEMPTS_PER_REQUEST`].
pub fn requested_attempts(requested: i64) -> i64 {
    requested.clamp(1, MAX_ATTEMPTS_PER_REQUEST)
}

/// The earliest instant a caller may store: 0001-01-01T00:00:00Z.
pub const MIN_TIME: Time = match Time::from_timestamp(-62_135_596_800, 0) {
    Some(t) => t,
    None => panic!("0001-01-01 is a valid instant"),
};

/// The latest instant a caller may store: 9999-12-31T23:59:59.999999Z.
pub const MAX_TIME: Time = match Time::from_timestamp(253_402_300_799, 999_999_000) {
    Some(t) => t,
    None => panic!("9999-12-31 is a valid instant"),
};

/// True if `name` is at most [`MAX_NAME_BYTES`] long: a longer one names
/// no object, so a lookup of it finds nothing.
pub fn fits_name(name: &str) -> bool {
    name.len() <= MAX_NAME_BYTES
}

/// `name`, or, when it is longer than [`MAX_NAME_BYTES`], its shortest
/// prefix (at a character boundary) that is still longer. No stored name
/// equals either, and every stored name orders against both alike (they
/// differ only past its length), so a work unit query's `previous_name`
/// or names select the same units in the cut form, of bounded length.
pub fn bounded_name(name: &str) -> &str {
    if fits_name(name) {
        return name;
    }
    let mut end = MAX_NAME_BYTES + 1;
    while !name.is_char_boundary(end) {
        end += 1;
    }
    &name[..end]
}

/// Accepts a name at most [`MAX_NAME_BYTES`] long; a longer one is
/// [`Error::NameTooLong`].
pub fn check_name(name: &str) -> Result<()> {
    if !fits_name(name) {
        return Err(Error::NameTooLong {
            limit: MAX_NAME_BYTES,
        });
    }
    Ok(())
}

/// `data` if it nests at most [`MAX_DATA_DEPTH`] levels, else
/// [`Error::DataTooDeep`], and then if its JSON is at most
/// [`MAX_DATA_BYTES`] long, else [`Error::DataTooLarge`]; a number `-0.0`
/// anywhere in it becomes `0.0` (PostgreSQL's `jsonb` has no negative
/// zero), before its length is measured.
///
/// Depth is checked without recursion, and rejected data is taken apart
/// without recursion too, so no depth of input can overflow the stack;
/// the length is measured only then, since serializing recurses, and only
/// when the depth pass's bound on it (every string byte taken as a
/// six-byte escape, every number as the longest) is over the limit, so
/// data of ordinary size is never serialized here.
pub fn checked_data(mut data: DataMap) -> Result<DataMap> {
    let scan = scan(&data, MAX_DATA_DEPTH);
    if scan.too_deep {
        dismantle(data);
        return Err(Error::DataTooDeep {
            limit: MAX_DATA_DEPTH,
        });
    }
    if scan.negative_zero {
        positive_zeros(&mut data);
    }
    // Most data is far shorter than the limit even counted at its worst,
    // and needs no exact measure.
    if scan.json_bound > MAX_DATA_BYTES && json_len(&data, MAX_DATA_BYTES)?.is_none() {
        return Err(Error::DataTooLarge {
            limit: MAX_DATA_BYTES,
        });
    }
    Ok(data)
}

/// The length of `map` as [`MAX_DATA_BYTES`] counts it: its compact JSON,
/// with every float in plain notation.
///
/// ```
/// use coordinate::data;
/// use coordinate::rules::limits::data_len;
///
/// assert_eq!(data_len(&data!({"a": [1, "b", 2.5]})), r#"{"a":[1,"b",2.5]}"#.len());
/// // 1e20 as 100000000000000000000.0
/// assert_eq!(data_len(&data!({"a": 1e20})), r#"{"a":}"#.len() + 23);
/// ```
pub fn data_len(map: &DataMap) -> usize {
    // The sink has no limit, and a map of JSON values always serializes.
    json_len(map, usize::MAX)
        .ok()
        .flatten()
        .unwrap_or(usize::MAX)
}

/// The length of `map`'s compact JSON encoding with floats in plain
/// notation ([`PlainFloats`]), or `None` once it passes `limit`: the
/// encoding is counted as it is written, never held, and writing stops at
/// the first byte past the limit.
fn json_len(map: &DataMap, limit: usize) -> Result<Option<usize>> {
    let mut sink = CountingSink { len: 0, limit };
    let written = map.serialize(&mut serde_json::Serializer::with_formatter(
        &mut sink,
        PlainFloats,
    ));
    match written {
        Ok(()) => Ok(Some(sink.len)),
        Err(_) if sink.len > limit => Ok(None),
        // Not reached: a map of JSON values always serializes, and the
        // sink fails only past the limit.
        Err(e) => Err(Error::backend(e)),
    }
}

/// serde_json's compact output with every float in plain notation, as
/// `jsonb` answers it (the PostgreSQL backend writes its parameters so
/// too): a float serde_json would write with an exponent is written as its
/// shortest digits with the zeros the exponent stands for (`1e20` as
/// `100000000000000000000.0`, `1.5e-7` as `0.00000015`), and a whole one
/// keeps its `.0`, so it reads back as a float.
pub(crate) struct PlainFloats;

impl Formatter for PlainFloats {
    fn write_f64<W: ?Sized + io::Write>(&mut self, writer: &mut W, value: f64) -> io::Result<()> {
        // serde_json's form takes at most 24 bytes: written on the stack.
        let mut buffer = [0u8; 32];
        let mut compact = io::Cursor::new(&mut buffer[..]);
        CompactFormatter.write_f64(&mut compact, value)?;
        let written = usize::try_from(compact.position()).unwrap_or(usize::MAX);
        let compact = compact.into_inner().get(..written).unwrap_or_default();
        if !compact.contains(&b'e') {
            return writer.write_all(compact);
        }
        // `Display` writes the shortest digits that read back as `value`,
        // never with an exponent.
        let plain = value.to_string();
        let point = if plain.contains('.') { "" } else { ".0" };
        write!(writer, "{plain}{point}")
    }
}

/// Counts the bytes written to it, failing once they pass `limit`.
struct CountingSink {
    len: usize,
    limit: usize,
}

impl io::Write for CountingSink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.len = self.len.saturating_add(buf.len());
        if self.len > self.limit {
            return Err(io::Error::other("longer than the limit"));
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// [`checked_data`] of optional data.
pub fn checked_optional_data(data: Option<DataMap>) -> Result<Option<DataMap>> {
    data.map(checked_data).transpose()
}

/// What one pass over a data map found.
struct Scan {
    too_deep: bool,
    negative_zero: bool,
    /// At least the length of the map's compact JSON (see [`json_bound`]).
    json_bound: usize,
}

/// The longest JSON text serde_json writes for an integer
/// (`-9223372036854775808`, `18446744073709551615`).
const MAX_INTEGER_LEN: usize = 20;

/// At least the length of the number `n` as [`PlainFloats`] writes it: a
/// float's shortest digits (at most 17) and the zeros its decimal exponent
/// adds before or after them, with a point, a sign and a spare digit for
/// the exponent's rounding.
fn number_bound(n: &serde_json::Number) -> usize {
    let Some(value) = n.as_f64().filter(|_| n.is_f64()) else {
        return MAX_INTEGER_LEN;
    };
    let magnitude = value.abs();
    if magnitude == 0.0 {
        return 4;
    }
    let exponent = magnitude.log10();
    // Saturating casts: the exponent lies within ±324.
    let zeros = if exponent < 0.0 {
        (-exponent).ceil() as usize
    } else {
        exponent.floor() as usize + 1
    };
    zeros.max(17) + 20
}

/// At least the length of `value`'s compact JSON, not counting what is
/// inside a container: a string may escape each byte as six
/// (`\u001f`), a number takes at most [`number_bound`], and a container
/// its brackets, a comma per element and, for an object, each key (as a
/// string) and its colon.
fn json_bound(value: &Value) -> usize {
    match value {
        Value::Null | Value::Bool(_) => 5,
        Value::Number(n) => number_bound(n),
        Value::String(s) => string_bound(s),
        Value::Array(items) => items.len().saturating_add(2),
        Value::Object(map) => object_bound(map),
    }
}

fn string_bound(s: &str) -> usize {
    s.len().saturating_mul(6).saturating_add(2)
}

fn object_bound(map: &DataMap) -> usize {
    map.keys().fold(map.len().saturating_add(2), |sum, key| {
        sum.saturating_add(string_bound(key)).saturating_add(1)
    })
}

/// Walks `map` with an explicit stack of containers, stopping at the first
/// level past `limit`.
fn scan(map: &DataMap, limit: usize) -> Scan {
    let mut found = Scan {
        too_deep: limit == 0,
        negative_zero: false,
        json_bound: object_bound(map),
    };
    // Each container with its own level; the map itself is level 1.
    let mut stack: Vec<(&Value, usize)> = Vec::new();
    visit(map.values(), 2, &mut stack, &mut found);
    while let Some((value, level)) = stack.pop() {
        if level > limit {
            found.too_deep = true;
            return found;
        }
        found.json_bound = found.json_bound.saturating_add(json_bound(value));
        match value {
            Value::Array(items) => visit(items.iter(), level + 1, &mut stack, &mut found),
            Value::Object(map) => visit(map.values(), level + 1, &mut stack, &mut found),
            _ => {}
        }
    }
    found
}

/// Stacks the containers among `children` at `level`; notes a `-0.0`.
fn visit<'a>(
    children: impl Iterator<Item = &'a Value>,
    level: usize,
    stack: &mut Vec<(&'a Value, usize)>,
    found: &mut Scan,
) {
    for child in children {
        match child {
            Value::Array(_) | Value::Object(_) => stack.push((child, level)),
            Value::Number(n) => {
                found.negative_zero |= is_negative_zero(n);
                found.json_bound = found.json_bound.saturating_add(number_bound(n));
            }
            leaf => found.json_bound = found.json_bound.saturating_add(json_bound(leaf)),
        }
    }
}

fn is_negative_zero(n: &serde_json::Number) -> bool {
    n.as_f64()
        .is_some_and(|f| f == 0.0 && f.is_sign_negative() && n.is_f64())
}

/// Replaces every `-0.0` of `map` by `0.0`, without recursion.
fn positive_zeros(map: &mut DataMap) {
    let mut stack: Vec<&mut Value> = map.values_mut().collect();
    while let Some(value) = stack.pop() {
        match value {
            Value::Array(items) => stack.extend(items.iter_mut()),
            Value::Object(map) => stack.extend(map.values_mut()),
            Value::Number(n) if is_negative_zero(n) => *value = Value::from(0.0),
            _ => {}
        }
    }
}

/// Drops `map` one container at a time: the drop glue of a deeply nested
/// `Value` recurses once per level and would overflow the stack.
pub fn dismantle(map: DataMap) {
    let mut stack: Vec<Value> = map.into_iter().map(|(_, v)| v).collect();
    while let Some(value) = stack.pop() {
        match value {
            Value::Array(items) => stack.extend(items),
            Value::Object(map) => stack.extend(map.into_iter().map(|(_, v)| v)),
            _ => {}
        }
    }
}

/// `time` if it lies in [`MIN_TIME`]`..=`[`MAX_TIME`], else
/// [`Error::TimeOutOfRange`]; truncated to whole microseconds, the
/// resolution every backend stores. A leap second (`23:59:60`, which
/// chrono keeps as a second more than a second's nanoseconds) becomes the
/// instant as far into the next second, as PostgreSQL stores it.
pub fn checked_time(time: Time) -> Result<Time> {
    let out_of_range =
        || Error::TimeOutOfRange(format!("{time} is outside {MIN_TIME} ..= {MAX_TIME}"));
    let (mut seconds, mut nanos) = (time.timestamp(), time.timestamp_subsec_nanos());
    if nanos >= 1_000_000_000 {
        seconds += 1;
        nanos -= 1_000_000_000;
    }
    // Judged as the instant it is read as, so that the leap second just
    // before MIN_TIME counts as in range and the one ending MAX_TIME's
    // second does not.
    let time = Time::from_timestamp(seconds, nanos - nanos % 1_000).ok_or_else(out_of_range)?;
    if !(MIN_TIME..=MAX_TIME).contains(&time) {
        return Err(out_of_range());
    }
    Ok(time)
}

/// A clock's `now` as every backend records it: truncated to whole
/// microseconds like [`checked_time`] and held inside [`MIN_TIME`]`..=`
/// [`MAX_TIME`], so start and end times read the same from every backend
/// whatever the clock's resolution.
pub fn stored_now(now: Time) -> Time {
    checked_time(now.clamp(MIN_TIME, MAX_TIME)).unwrap_or(MIN_TIME)
}

/// [`checked_time`] of an optional time.
pub fn checked_optional_time(time: Option<Time>) -> Result<Option<Time>> {
    time.map(checked_time).transpose()
}

/// `time + by` if it lies in [`MIN_TIME`]`..=`[`MAX_TIME`], else
/// [`Error::TimeOutOfRange`] (never the panic of `+`); truncated to whole
/// microseconds like [`checked_time`].
pub fn time_after(time: Time, by: Duration) -> Result<Time> {
    time.checked_add_signed(by.into())
        .ok_or_else(|| Error::TimeOutOfRange(format!("{time} + {by}")))
        .and_then(checked_time)
}

/// The next continuous time of a spec that generated a unit at `now`:
/// `now + interval`, saturating at [`MAX_TIME`] (or [`MIN_TIME`]) so that one
/// spec's interval can never fail a request.
pub fn next_continuous(now: Time, interval: Duration) -> Time {
    (now + interval).clamp(MIN_TIME, MAX_TIME)
}

/// A work unit priority: finite, with `-0.0` stored as `0.0`; NaN and
/// infinities are [`Error::BadPriority`].
pub fn checked_priority(priority: f64) -> Result<f64> {
    if !priority.is_finite() {
        return Err(Error::BadPriority);
    }
    // -0.0 == 0.0, so this maps both zeros to +0.0.
    Ok(if priority == 0.0 { 0.0 } else { priority })
}

/// `priority + delta` for `adjust_work_unit_priorities`: a sum that is not
/// finite (it overflowed) is [`Error::BadPriority`].
pub fn adjusted_priority(priority: f64, delta: f64) -> Result<f64> {
    checked_priority(priority + delta)
}

/// A work unit meta with a [`checked_priority`] and a [`checked_time`].
pub fn checked_unit_meta(meta: WorkUnitMeta) -> Result<WorkUnitMeta> {
    Ok(WorkUnitMeta {
        priority: checked_priority(meta.priority)?,
        not_before: checked_optional_time(meta.not_before)?,
    })
}

/// The data and meta of a new or replaced work unit, checked in this
/// order: data depth and length, name length, priority, not-before time.
pub fn checked_new_unit(
    name: &str,
    data: DataMap,
    meta: WorkUnitMeta,
) -> Result<(DataMap, WorkUnitMeta)> {
    let data = checked_data(data)?;
    check_name(name)?;
    Ok((data, checked_unit_meta(meta)?))
}

/// Every entry of a bulk add checked as [`checked_new_unit`] checks one,
/// in order; the first failure is the answer. The entries after it, not
/// checked, are taken apart without recursion, as data too deep is.
pub fn checked_new_units(units: Vec<NewWorkUnit>) -> Result<Vec<NewWorkUnit>> {
    let mut checked = Vec::with_capacity(units.len());
    let mut rest = units.into_iter();
    for unit in rest.by_ref() {
        match checked_new_unit(&unit.name, unit.data, unit.meta) {
            Ok((data, meta)) => checked.push(NewWorkUnit {
                name: unit.name,
                data,
                meta,
            }),
            Err(e) => {
                rest.for_each(|unit| dismantle(unit.data));
                return Err(e);
            }
        }
    }
    Ok(checked)
}

/// A continuous interval: whole microseconds in `0..=`[`MAX_INTERVAL`],
/// else [`Error::InvalidWorkSpecData`].
pub fn checked_interval(interval: Duration) -> Result<Duration> {
    if interval < Duration::zero() || interval > MAX_INTERVAL {
        return Err(Error::InvalidWorkSpecData(format!(
            "interval {interval} is outside 0 ..= {MAX_INTERVAL}"
        )));
    }
    let nanos = interval.subsec_nanos();
    Ok(interval - Duration::nanoseconds(i64::from(nanos % 1_000)))
}

/// A work spec's `min_memory_gb`: finite, with `-0.0` stored as `0.0`,
/// else [`Error::InvalidWorkSpecData`].
pub fn checked_min_memory(gb: f64) -> Result<f64> {
    if !gb.is_finite() {
        return Err(Error::InvalidWorkSpecData(format!(
            "min_memory_gb {gb} is not a finite number"
        )));
    }
    Ok(if gb == 0.0 { 0.0 } else { gb })
}

/// The meta given to a work spec's `set_meta`: a [`checked_interval`]
/// and a [`checked_min_memory`] (`InvalidWorkSpecData`), and a
/// [`checked_time`] `next_continuous` (`TimeOutOfRange`), in that order.
pub fn checked_spec_meta(meta: WorkSpecMeta) -> Result<WorkSpecMeta> {
    Ok(WorkSpecMeta {
        interval: checked_interval(meta.interval)?,
        min_memory_gb: checked_min_memory(meta.min_memory_gb)?,
        next_continuous: checked_optional_time(meta.next_continuous)?,
        ..meta
    })
}

/// The arguments of a worker's `update`, checked in this order: data
/// depth and length, `now`, `expiration`, then `mode` at most
/// [`MAX_MODE_BYTES`] long, else [`Error::ModeTooLong`].
pub fn checked_worker_update(
    data: DataMap,
    now: Time,
    expiration: Time,
    mode: &str,
) -> Result<(DataMap, Time, Time)> {
    let data = checked_data(data)?;
    let times = (checked_time(now)?, checked_time(expiration)?);
    if mode.len() > MAX_MODE_BYTES {
        return Err(Error::ModeTooLong {
            limit: MAX_MODE_BYTES,
        });
    }
    Ok((data, times.0, times.1))
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use proptest::test_runner::{Config as ProptestConfig, RngAlgorithm, RngSeed};

    use super::*;
    use crate::data;

    #[test]
    fn a_bounded_name_selects_and_orders_as_the_name() {
        let limit = MAX_NAME_BYTES;
        // A long name, one cut inside a two-byte character, and stored
        // names around both.
        let long = "u".repeat(1 << 16);
        let straddling = format!("{}é{}", "u".repeat(limit), "z".repeat(10));
        for name in [long.as_str(), straddling.as_str()] {
            let cut = bounded_name(name);
            assert!(cut.len() > limit && cut.len() <= limit + 4, "{}", cut.len());
            assert!(name.starts_with(cut));
            let stored = [
                String::new(),
                "u".repeat(limit),
                format!("{}v", "u".repeat(limit - 1)),
                format!("{}t", "u".repeat(limit - 1)),
                "é".into(),
            ];
            for s in &stored {
                assert_eq!(s.as_str().cmp(cut), s.as_str().cmp(name), "{s:?}");
            }
        }
        assert_eq!(bounded_name("short"), "short");
        assert_eq!(bounded_name(&"a".repeat(limit)).len(), limit);
    }

    /// A map whose key `"d"` holds arrays nested so the map is `depth` deep.
    fn nested(depth: usize) -> DataMap {
        let mut value = Value::Null;
        for _ in 1..depth {
            value = Value::Array(vec![value]);
        }
        let mut map = DataMap::new();
        map.insert("d".into(), value);
        map
    }

    #[test]
    fn a_leap_second_is_the_start_of_the_next_second() {
        let leap = |text: &str| {
            let time = chrono::DateTime::parse_from_rfc3339(text).unwrap();
            checked_time(time.with_timezone(&chrono::Utc)).map(|t| t.to_rfc3339())
        };
        assert_eq!(
            leap("2016-12-31T23:59:60Z"),
            Ok("2017-01-01T00:00:00+00:00".into())
        );
        assert_eq!(
            leap("2024-05-06T07:08:60.5+01:00"),
            Ok("2024-05-06T06:09:00.500+00:00".into())
        );
        assert_eq!(
            leap("2024-05-06T07:08:60.1234567Z"),
            Ok("2024-05-06T07:09:00.123456+00:00".into())
        );
        // The last second's leap second would end past MAX_TIME: refused.
        let last = Time::from_timestamp(253_402_300_799, 1_500_000_000).unwrap();
        assert!(matches!(checked_time(last), Err(Error::TimeOutOfRange(_))));
        // The one before MIN_TIME ends inside the range: kept.
        assert_eq!(
            leap("0000-12-31T23:59:60.5Z"),
            Ok("0001-01-01T00:00:00.500+00:00".into())
        );
    }

    #[test]
    fn limits_are_what_the_docs_say() {
        assert_eq!(MIN_TIME.to_rfc3339(), "0001-01-01T00:00:00+00:00");
        assert_eq!(MAX_TIME.to_rfc3339(), "9999-12-31T23:59:59.999999+00:00");
        assert_eq!(MAX_INTERVAL, Duration::days(36_525));
        assert_eq!(MAX_DATA_BYTES, 4 * 1024 * 1024);
    }

    /// `{"s":"…"}`, `len` bytes long as JSON: `fill`, which encodes as
    /// `fill_len` bytes, repeated, then as many `x` as make up the rest.
    fn sized(len: usize, fill: &str, fill_len: usize) -> DataMap {
        let room = len - r#"{"s":""}"#.len();
        let text = fill.repeat(room / fill_len) + &"x".repeat(room % fill_len);
        let mut map = DataMap::new();
        map.insert("s".into(), text.into());
        map
    }

    fn too_large() -> Result<DataMap> {
        Err(Error::DataTooLarge {
            limit: MAX_DATA_BYTES,
        })
    }

    #[test]
    fn data_as_long_as_the_limit_passes_and_a_byte_more_is_rejected() {
        let longest = sized(MAX_DATA_BYTES, "x", 1);
        assert_eq!(serde_json::to_vec(&longest).unwrap().len(), MAX_DATA_BYTES);
        assert_eq!(checked_data(longest.clone()), Ok(longest));
        assert_eq!(checked_data(sized(MAX_DATA_BYTES + 1, "x", 1)), too_large());
        assert_eq!(checked_data(sized(64 << 20, "x", 1)), too_large());
    }

    #[test]
    fn escaped_characters_count_as_written() {
        let map = data!({"s": "\"\\\n\u{1}é"});
        // `"\"\\\n\u0001é"`: 2 + 2 + 2 + 6 + 2 bytes between the quotes.
        assert_eq!(json_len(&map, usize::MAX), Ok(Some(8 + 14)));
        // Counted as characters, each would be far below the limit.
        for (fill, fill_len) in [("\"", 2), ("\\", 2), ("\n", 2), ("\u{1}", 6)] {
            let longest = sized(MAX_DATA_BYTES, fill, fill_len);
            assert_eq!(json_len(&longest, usize::MAX), Ok(Some(MAX_DATA_BYTES)));
            assert!(checked_data(longest).is_ok(), "{fill:?}");
            let over = sized(MAX_DATA_BYTES + 1, fill, fill_len);
            assert_eq!(checked_data(over), too_large(), "{fill:?}");
        }
    }

    #[test]
    fn a_negative_zero_is_measured_as_stored() {
        // `-0.0` is four bytes, and stored as the three of `0.0`.
        let mut map = sized(MAX_DATA_BYTES - r#","z":0.0"#.len(), "x", 1);
        map.insert("z".into(), Value::from(-0.0));
        assert_eq!(serde_json::to_vec(&map).unwrap().len(), MAX_DATA_BYTES + 1);
        let stored = checked_data(map).unwrap();
        assert_eq!(serde_json::to_vec(&stored).unwrap().len(), MAX_DATA_BYTES);
    }

    #[test]
    fn the_bound_holds_for_the_longest_encodings() {
        let map = data!({
            "\u{1}": ["\u{1f}\u{0}", -2.225_073_858_507_201_4e-308, u64::MAX, i64::MIN],
            "b": [false, null, true, [], {}, [[{"\u{7}": -0.0}]]],
        });
        let written = plain(&map).len();
        assert!(scan(&map, MAX_DATA_DEPTH).json_bound >= written);
        let longest = [i64::MIN.to_string(), u64::MAX.to_string()];
        assert_eq!(longest.map(|n| n.len()), [MAX_INTEGER_LEN; 2]);
    }

    /// `map` written as [`json_len`] counts it.
    fn plain(map: &DataMap) -> String {
        let mut out = Vec::new();
        let mut writer = serde_json::Serializer::with_formatter(&mut out, PlainFloats);
        map.serialize(&mut writer).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn floats_count_in_plain_notation() {
        for (value, written) in [
            (1e20, "100000000000000000000.0".to_owned()),
            (-1.5e-7, "-0.00000015".to_owned()),
            (1e300, format!("1{}.0", "0".repeat(300))),
            (5e-324, format!("0.{}5", "0".repeat(323))),
            (2.5, "2.5".to_owned()),
            (1e15, "1000000000000000.0".to_owned()),
        ] {
            let map = data!({ "f": value });
            assert_eq!(plain(&map), format!(r#"{{"f":{written}}}"#));
            assert_eq!(written.parse::<f64>(), Ok(value), "{written}");
            assert!(scan(&map, MAX_DATA_DEPTH).json_bound >= plain(&map).len());
        }
        // 4 MiB of exponents, far longer written out.
        let floats = vec![Value::from(1e300); MAX_DATA_BYTES / 10];
        let map = data!({ "f": floats });
        assert!(serde_json::to_vec(&map).unwrap().len() < MAX_DATA_BYTES);
        assert_eq!(checked_data(map), too_large());
    }

    #[test]
    fn measuring_stops_just_past_the_limit() {
        let mut map = DataMap::new();
        for i in 0..100_000 {
            map.insert(format!("k{i}"), Value::from("v".repeat(100)));
        }
        let mut sink = CountingSink {
            len: 0,
            limit: 1000,
        };
        assert!(serde_json::to_writer(&mut sink, &map).is_err());
        // Stopped at the write that crossed the limit, not at the end.
        assert!(sink.len <= 1000 + 100, "{}", sink.len);
        assert_eq!(json_len(&map, 1000), Ok(None));
    }

    fn json_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            (i64::MAX as u64..=u64::MAX).prop_map(Value::from),
            any::<f64>().prop_map(Value::from),
            any::<String>().prop_map(Value::from),
        ];
        leaf.prop_recursive(4, 64, 6, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                proptest::collection::vec((any::<String>(), inner), 0..6)
                    .prop_map(|entries| Value::Object(entries.into_iter().collect())),
            ]
        })
    }

    fn config() -> ProptestConfig {
        ProptestConfig {
            cases: 256,
            rng_algorithm: RngAlgorithm::ChaCha,
            rng_seed: RngSeed::Fixed(0x512E),
            failure_persistence: None,
            ..ProptestConfig::default()
        }
    }

    proptest! {
        #![proptest_config(config())]

        /// The length counted is the length of the encoding, which passes
        /// a limit one byte shorter.
        #[test]
        fn the_length_counted_is_the_length_written(
            entries in proptest::collection::vec((any::<String>(), json_value()), 0..8)
        ) {
            let map: DataMap = entries.into_iter().collect();
            let written = plain(&map).len();
            // Only floats are written otherwise than serde_json writes them,
            // and as the same numbers.
            let back: DataMap = serde_json::from_str(&plain(&map)).unwrap();
            prop_assert_eq!(back, map.clone());
            prop_assert_eq!(json_len(&map, usize::MAX), Ok(Some(written)));
            prop_assert_eq!(json_len(&map, written), Ok(Some(written)));
            prop_assert_eq!(json_len(&map, written - 1), Ok(None));
            prop_assert!(scan(&map, MAX_DATA_DEPTH).json_bound >= written);
        }
    }

    fn depth_exceeds(map: &DataMap, limit: usize) -> bool {
        scan(map, limit).too_deep
    }

    #[test]
    fn depth_counts_the_map_as_one() {
        assert!(!depth_exceeds(&DataMap::new(), 1));
        assert!(!depth_exceeds(&data!({"a": 1}), 1));
        assert!(depth_exceeds(&data!({"a": []}), 1));
        assert!(!depth_exceeds(&data!({"a": [{"b": 1}]}), 3));
        assert!(depth_exceeds(&data!({"a": [{"b": {}}]}), 3));
        assert!(!depth_exceeds(&nested(MAX_DATA_DEPTH), MAX_DATA_DEPTH));
        assert!(depth_exceeds(&nested(MAX_DATA_DEPTH + 1), MAX_DATA_DEPTH));
    }

    #[test]
    fn data_at_the_limit_passes_and_deeper_is_rejected() {
        assert!(checked_data(nested(MAX_DATA_DEPTH)).is_ok());
        assert_eq!(
            checked_data(nested(MAX_DATA_DEPTH + 1)),
            Err(Error::DataTooDeep {
                limit: MAX_DATA_DEPTH
            })
        );
    }

    #[test]
    fn very_deep_data_is_rejected_and_dropped_without_recursion() {
        // Recursion over 1,000,000 levels would overflow any test stack.
        assert!(matches!(
            checked_data(nested(1_000_000)),
            Err(Error::DataTooDeep { .. })
        ));
    }

    #[test]
    fn a_refused_batch_drops_the_entries_after_its_error_without_recursion() {
        let units = vec![
            NewWorkUnit::new("x".repeat(MAX_NAME_BYTES + 1), DataMap::new()),
            NewWorkUnit::new("b", nested(1_000_000)),
        ];
        assert_eq!(
            checked_new_units(units).map(|units| units.len()),
            Err(Error::NameTooLong {
                limit: MAX_NAME_BYTES
            })
        );
    }

    #[test]
    fn data_at_the_limit_reads_back_through_serde_json() {
        let map = nested(MAX_DATA_DEPTH);
        let text = serde_json::to_vec(&map).unwrap();
        let back: DataMap = serde_json::from_slice(&text).unwrap();
        assert_eq!(back, map);
    }

    #[test]
    fn negative_zeros_in_data_become_positive() {
        let data = checked_data(data!({"a": -0.0, "b": [{"c": -0.0}], "d": 0, "e": -1.5})).unwrap();
        assert_eq!(data["a"].as_f64().map(f64::to_bits), Some(0));
        assert_eq!(data["b"][0]["c"].as_f64().map(f64::to_bits), Some(0));
        assert_eq!(data["d"], 0);
        assert_eq!(data["e"], -1.5);
    }

    #[test]
    fn names_up_to_the_limit_pass() {
        assert!(check_name(&"é".repeat(MAX_NAME_BYTES / 2)).is_ok());
        assert_eq!(
            check_name(&"x".repeat(MAX_NAME_BYTES + 1)),
            Err(Error::NameTooLong {
                limit: MAX_NAME_BYTES
            })
        );
    }

    #[test]
    fn priorities_are_finite_and_zero_has_one_sign() {
        assert_eq!(checked_priority(-0.0).map(f64::to_bits), Ok(0));
        assert_eq!(checked_priority(-1.5), Ok(-1.5));
        for bad in [f64::NAN, -f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
            assert_eq!(checked_priority(bad), Err(Error::BadPriority), "{bad}");
        }
        assert_eq!(
            adjusted_priority(f64::MAX, f64::MAX),
            Err(Error::BadPriority)
        );
        assert_eq!(adjusted_priority(1.0, -1.0).map(f64::to_bits), Ok(0));
    }

    #[test]
    fn times_outside_the_range_are_rejected_and_inside_truncated() {
        assert_eq!(checked_time(MIN_TIME), Ok(MIN_TIME));
        assert_eq!(checked_time(MAX_TIME), Ok(MAX_TIME));
        let before = MIN_TIME - Duration::nanoseconds(1);
        assert!(matches!(
            checked_time(before),
            Err(Error::TimeOutOfRange(_))
        ));
        assert!(matches!(
            checked_time(Time::MAX_UTC),
            Err(Error::TimeOutOfRange(_))
        ));
        let fine = Time::UNIX_EPOCH - Duration::nanoseconds(1_500);
        assert_eq!(
            checked_time(fine),
            Ok(Time::UNIX_EPOCH - Duration::microseconds(2))
        );
    }

    #[test]
    fn time_after_stays_in_range() {
        assert!(time_after(MAX_TIME, Duration::microseconds(1)).is_err());
        assert!(time_after(Time::UNIX_EPOCH, Duration::MAX).is_err());
        assert_eq!(
            time_after(Time::UNIX_EPOCH, Duration::seconds(2)),
            Ok(Time::UNIX_EPOCH + Duration::seconds(2))
        );
    }

    #[test]
    fn time_after_drops_sub_microseconds() {
        assert_eq!(
            time_after(Time::UNIX_EPOCH, Duration::nanoseconds(-1)),
            Ok(Time::UNIX_EPOCH - Duration::microseconds(1))
        );
    }

    #[test]
    fn stored_now_is_whole_microseconds_in_range() {
        let fine = Time::UNIX_EPOCH + Duration::nanoseconds(1_234_567);
        assert_eq!(
            stored_now(fine),
            Time::UNIX_EPOCH + Duration::microseconds(1_234)
        );
        assert_eq!(stored_now(MAX_TIME + Duration::days(1)), MAX_TIME);
        assert_eq!(stored_now(MIN_TIME - Duration::days(1)), MIN_TIME);
    }

    #[test]
    fn next_continuous_saturates() {
        assert_eq!(next_continuous(MAX_TIME, MAX_INTERVAL), MAX_TIME);
        assert_eq!(next_continuous(Time::MAX_UTC, Duration::MAX), MAX_TIME);
        assert_eq!(next_continuous(Time::MIN_UTC, Duration::zero()), MIN_TIME);
        let now = Time::UNIX_EPOCH;
        assert_eq!(
            next_continuous(now, Duration::hours(1)),
            now + Duration::hours(1)
        );
    }

    #[test]
    fn intervals_are_bounded_and_whole_microseconds() {
        assert_eq!(checked_interval(MAX_INTERVAL), Ok(MAX_INTERVAL));
        for bad in [
            MAX_INTERVAL + Duration::microseconds(1),
            Duration::seconds(-1),
            Duration::MAX,
        ] {
            assert!(matches!(
                checked_interval(bad),
                Err(Error::InvalidWorkSpecData(_))
            ));
        }
        assert_eq!(
            checked_interval(Duration::nanoseconds(1_999)),
            Ok(Duration::microseconds(1))
        );
    }

    #[test]
    fn a_memory_figure_is_finite_and_its_zero_unsigned() {
        assert_eq!(
            checked_min_memory(-0.0).map(f64::to_bits),
            Ok(0.0f64.to_bits())
        );
        assert_eq!(checked_min_memory(1.5), Ok(1.5));
        for bad in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
            assert!(matches!(
                checked_min_memory(bad),
                Err(Error::InvalidWorkSpecData(_))
            ));
        }
    }
}
