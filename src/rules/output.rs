//! Parsing a finished attempt's `output` into units of the next spec.

use std::collections::hash_map::{Entry, HashMap};

use serde_json::Value;

use super::limits::{check_name, checked_priority};
use crate::clock::checked_add;
use crate::error::{Error, Result};
use crate::model::{DataMap, Duration, Time, WorkUnitMeta};

/// A work unit to add (upsert) to the next spec of a chain.
#[derive(Debug, Clone, PartialEq)]
pub struct NewUnit {
    /// The unit's name.
    pub name: String,
    /// Its data.
    pub data: DataMap,
    /// Its priority and not-before time.
    pub meta: WorkUnitMeta,
}

/// The units chaining creates from an attempt's effective data: nothing
/// unless it has an `"output"` key.
pub fn chained_units(effective_data: &DataMap, now: Time) -> Vec<NewUnit> {
    effective_data
        .get("output")
        .map(|output| parse_output(output, now))
        .unwrap_or_default()
}

/// Parses an `output` value. Bad items of an array are skipped; one
/// bad entry of an object voids the whole object (a name longer than
/// [`MAX_NAME_BYTES`](super::limits::MAX_NAME_BYTES) makes an item or entry
/// bad, and priorities are normalised as
/// [`checked_priority`](super::limits::checked_priority) does); when two items name the
/// same unit the later one wins (in the position of the first).
///
/// ```
/// use coordinate::{rules::parse_output, Time};
/// let units = parse_output(&serde_json::json!(["a", ["b", {"x": 1}], ["c"]]), Time::UNIX_EPOCH);
/// let names: Vec<_> = units.iter().map(|u| u.name.as_str()).collect();
/// assert_eq!(names, ["a", "b"]);
/// ```
pub fn parse_output(output: &Value, now: Time) -> Vec<NewUnit> {
    match output {
        Value::Object(entries) => {
            let mut units = Vec::with_capacity(entries.len());
            for (name, value) in entries {
                if check_name(name).is_err() {
                    return Vec::new();
                }
                let data = match value {
                    Value::Object(map) => map.clone(),
                    Value::Null => DataMap::new(),
                    _ => return Vec::new(),
                };
                units.push(NewUnit {
                    name: name.clone(),
                    data,
                    meta: WorkUnitMeta::default(),
                });
            }
            units
        }
        Value::Array(items) => {
            let mut units: Vec<NewUnit> = Vec::with_capacity(items.len());
            // Where each name first appeared: an output may name
            // hundreds of thousands of units, and backends parse it under
            // their locks, so no pass per item.
            let mut first: HashMap<String, usize> = HashMap::with_capacity(items.len());
            for unit in items.iter().filter_map(|item| parse_item(item, now).ok()) {
                match first.entry(unit.name.clone()) {
                    Entry::Occupied(at) => units[*at.get()] = unit,
                    Entry::Vacant(at) => {
                        at.insert(units.len());
                        units.push(unit);
                    }
                }
            }
            units
        }
        _ => Vec::new(),
    }
}

/// Parses one item of an `output` array.
///
/// ```
/// use coordinate::{rules::parse_item, Error, Time};
/// let unit = parse_item(&serde_json::json!(["eps", {}, {"priority": 1}, 7.5]), Time::UNIX_EPOCH).unwrap();
/// assert_eq!(unit.meta.priority, 7.5);
/// assert_eq!(parse_item(&serde_json::json!(["eta"]), Time::UNIX_EPOCH), Err(Error::WorkUnitTooShort));
/// ```
pub fn parse_item(item: &Value, now: Time) -> Result<NewUnit> {
    let elements = match item {
        Value::String(name) => {
            check_name(name).map_err(long_name)?;
            return Ok(NewUnit {
                name: name.clone(),
                data: DataMap::new(),
                meta: WorkUnitMeta::default(),
            });
        }
        Value::Array(elements) => elements,
        _ => return Err(Error::WorkUnitNotList),
    };
    if elements.len() < 2 {
        return Err(Error::WorkUnitTooShort);
    }
    let name = match &elements[0] {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => return Err(bad_item(format!("name {other} is not a string"))),
    };
    check_name(&name).map_err(long_name)?;
    let data = match &elements[1] {
        Value::Object(map) => map.clone(),
        Value::Null => DataMap::new(),
        other => return Err(bad_item(format!("data {other} is not an object"))),
    };
    let mut meta = WorkUnitMeta::default();
    match elements.get(2) {
        None | Some(Value::Null) => {}
        Some(Value::Object(options)) => {
            if let Some(priority) = option_number(options, "priority")? {
                meta.priority = checked_priority(priority)?;
            }
            if let Some(delay) = option_number(options, "delay")? {
                let seconds = delay.trunc();
                if seconds > 0.0 {
                    // Saturating `as`, then a checked conversion: a huge delay is skipped, not a panic.
                    let delay = Duration::try_seconds(seconds as i64)
                        .ok_or_else(|| bad_item(format!("delay {seconds} s is out of range")))?;
                    meta.not_before = Some(checked_add(now, delay)?);
                }
            }
        }
        Some(other) => return Err(bad_item(format!("options {other} are not an object"))),
    }
    match elements.get(3) {
        None | Some(Value::Null) => {}
        Some(Value::Number(n)) if n.is_f64() => {
            meta.priority = checked_priority(n.as_f64().unwrap_or_default())?
        }
        Some(_) => return Err(Error::BadPriority),
    }
    Ok(NewUnit { name, data, meta })
}

fn option_number(options: &DataMap, key: &str) -> Result<Option<f64>> {
    match options.get(key) {
        None => Ok(None),
        Some(Value::Number(n)) => Ok(n.as_f64()),
        Some(other) => Err(bad_item(format!("{key} {other} is not a number"))),
    }
}

/// An item whose name is longer than the limit, like any bad item, is skipped.
fn long_name(e: Error) -> Error {
    bad_item(e.to_string())
}

/// An item whose elements have the wrong types; like the catalogue's
/// output errors it only ever makes the item skipped.
fn bad_item(detail: String) -> Error {
    Error::BadOutputItem(detail)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data;
    use serde_json::json;

    fn t0() -> Time {
        Time::UNIX_EPOCH + Duration::seconds(1000)
    }

    fn item(v: Value) -> Result<NewUnit> {
        parse_item(&v, t0())
    }

    #[test]
    fn spec_examples() {
        let alpha = item(json!("alpha")).unwrap();
        assert_eq!((alpha.name.as_str(), alpha.data.len()), ("alpha", 0));
        assert_eq!(
            item(json!(["beta", {"x": 1}])).unwrap().data,
            data!({"x": 1})
        );
        assert_eq!(
            item(json!(["gamma", {}, {"priority": 5}]))
                .unwrap()
                .meta
                .priority,
            5.0
        );
        assert_eq!(
            item(json!(["delta", {}, {"delay": 30.9}]))
                .unwrap()
                .meta
                .not_before,
            Some(t0() + Duration::seconds(30))
        );
        assert_eq!(
            item(json!(["eps", {}, {"priority": 1}, 7.5]))
                .unwrap()
                .meta
                .priority,
            7.5
        );
        assert_eq!(item(json!(["zeta", {}, {}, 7])), Err(Error::BadPriority));
        assert_eq!(item(json!(["eta"])), Err(Error::WorkUnitTooShort));
        assert_eq!(item(json!({"k": "v"})), Err(Error::WorkUnitNotList));
        let ctl = item(json!(["\u{0001}\u{0002}", null, null])).unwrap();
        assert_eq!(ctl.name, "\u{1}\u{2}");
        assert!(ctl.data.is_empty());
    }

    #[test]
    fn bad_elements_invalidate_the_item() {
        assert!(item(json!([1, {}])).is_err());
        assert!(item(json!(["a", "data"])).is_err());
        assert!(item(json!(["a", {}, "opts"])).is_err());
        assert!(item(json!(["a", {}, {"priority": "high"}])).is_err());
        assert!(item(json!(["a", {}, {"delay": "soon"}])).is_err());
        assert!(item(json!(["a", {}, {"delay": 1e300}])).is_err());
        assert_eq!(item(json!([null, null])).unwrap().name, "");
        assert_eq!(item(json!(7)), Err(Error::WorkUnitNotList));
    }

    #[test]
    fn long_names_are_bad_items_and_negative_zero_is_zero() {
        let long = "x".repeat(super::super::limits::MAX_NAME_BYTES + 1);
        assert!(item(json!(long.clone())).is_err());
        assert!(item(json!([long.clone(), {}])).is_err());
        assert!(parse_output(&json!({ long: {}, "a": {} }), t0()).is_empty());
        let zero = item(json!(["a", {}, {"priority": -0.0}])).unwrap();
        assert_eq!(zero.meta.priority.to_bits(), 0);
        let zero = item(json!(["a", {}, null, -0.0])).unwrap();
        assert_eq!(zero.meta.priority.to_bits(), 0);
    }

    #[test]
    fn zero_or_negative_delay_sets_no_not_before() {
        assert_eq!(
            item(json!(["a", {}, {"delay": 0.9}]))
                .unwrap()
                .meta
                .not_before,
            None
        );
        assert_eq!(
            item(json!(["a", {}, {"delay": -5}]))
                .unwrap()
                .meta
                .not_before,
            None
        );
    }

    #[test]
    fn extra_elements_and_option_keys_are_ignored() {
        let u = item(json!(["a", {}, {"priority": 2, "color": "red"}, null, "extra"])).unwrap();
        assert_eq!(u.meta.priority, 2.0);
    }

    #[test]
    fn list_of_names() {
        let units = parse_output(&json!(["a", "b"]), t0());
        assert_eq!(units.len(), 2);
        assert!(units
            .iter()
            .all(|u| u.data.is_empty() && u.meta == WorkUnitMeta::default()));
    }

    #[test]
    fn map_form() {
        let units = parse_output(&json!({"a": {"x": 1}, "b": null}), t0());
        assert_eq!(units[0].data, data!({"x": 1}));
        assert!(units[1].data.is_empty());
        assert!(parse_output(&json!({"a": {}, "b": 3}), t0()).is_empty());
        assert!(parse_output(&json!({}), t0()).is_empty());
    }

    #[test]
    fn list_of_lists_later_duplicate_wins() {
        let units = parse_output(
            &json!(["a", ["a", {"k": 1}, {"priority": 1}, 2.5], ["b", {}]]),
            t0(),
        );
        assert_eq!(units.len(), 2);
        assert_eq!(units[0].name, "a");
        assert_eq!(units[0].data, data!({"k": 1}));
        assert_eq!(units[0].meta.priority, 2.5);
    }

    #[test]
    fn many_names_keep_first_positions_and_last_values() {
        let mut items: Vec<Value> = (0..10_000).map(|i| json!(format!("u{i}"))).collect();
        items.extend(
            (0..10_000)
                .rev()
                .map(|i| json!([format!("u{i}"), {"i": i}])),
        );
        let units = parse_output(&Value::Array(items), t0());
        assert_eq!(units.len(), 10_000);
        for (i, unit) in units.iter().enumerate() {
            assert_eq!(unit.name, format!("u{i}"));
            assert_eq!(unit.data, data!({"i": i}));
        }
    }

    #[test]
    fn scalars_produce_nothing() {
        for v in [json!(null), json!("a"), json!(3), json!(true)] {
            assert!(parse_output(&v, t0()).is_empty());
        }
    }

    #[test]
    fn chaining_needs_the_output_key() {
        assert!(chained_units(&data!({"outputs": ["a"]}), t0()).is_empty());
        assert_eq!(chained_units(&data!({"output": ["a"]}), t0()).len(), 1);
    }
}
