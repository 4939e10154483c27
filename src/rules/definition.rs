//! Validating a work spec definition and deriving its meta.

use serde_json::Value;

use super::limits::{check_name, checked_data, checked_interval, checked_min_memory};
use crate::error::{Error, Result};
use crate::model::{DataMap, Duration, WorkSpecMeta};

/// A validated definition: the spec's name and the meta it implies.
#[derive(Debug, Clone, PartialEq)]
pub struct ParsedDefinition {
    /// The non-empty `"name"`.
    pub name: String,
    /// The meta derived from the definition, counts zero.
    pub meta: WorkSpecMeta,
}

/// Validates `definition` and derives its meta.
///
/// Errors, in this order: `"name"` absent or null → `NoWorkSpecName`; not a
/// string → `BadWorkSpecName`; empty → `NoWorkSpecName`; longer than
/// [`MAX_NAME_BYTES`](super::limits::MAX_NAME_BYTES) → `NameTooLong`; any
/// other recognised key with an unusable type, or an `interval` outside
/// `0..=`[`MAX_INTERVAL`](super::limits::MAX_INTERVAL) seconds →
/// `InvalidWorkSpecData`. The nesting and length of the definition are the
/// caller's to check ([`checked_data`](super::limits::checked_data)), since
/// only an owner can drop rejected data safely.
///
/// ```
/// use coordinate::{data, rules::parse_definition};
/// let parsed = parse_definition(&data!({"name": "s", "nice": 3, "then": "t"})).unwrap();
/// assert_eq!(parsed.meta.weight, 17);
/// assert_eq!(parsed.meta.next_work_spec_name, "t");
/// ```
pub fn parse_definition(definition: &DataMap) -> Result<ParsedDefinition> {
    let name = match present(definition, "name") {
        None => return Err(Error::NoWorkSpecName),
        Some(Value::String(s)) if s.is_empty() => return Err(Error::NoWorkSpecName),
        Some(Value::String(s)) => s.clone(),
        Some(_) => return Err(Error::BadWorkSpecName),
    };
    check_name(&name)?;

    let priority = integer(definition, "priority")?.unwrap_or(0);
    let explicit_weight = integer(definition, "weight")?.unwrap_or(0);
    let nice = integer(definition, "nice")?.unwrap_or(0);
    let mut weight = if explicit_weight == 0 {
        20i64.saturating_sub(nice)
    } else {
        explicit_weight
    };
    if weight <= 0 {
        weight = 1;
    }
    let continuous = boolean(definition, "continuous")?.unwrap_or(false);
    let interval_seconds = integer(definition, "interval")?.unwrap_or(0);
    let interval = Duration::try_seconds(interval_seconds)
        .ok_or_else(|| {
            Error::InvalidWorkSpecData(format!("interval {interval_seconds} s is out of range"))
        })
        .and_then(checked_interval)?;

    let meta = WorkSpecMeta {
        priority,
        weight,
        paused: boolean(definition, "disabled")?.unwrap_or(false),
        continuous,
        can_be_continuous: continuous,
        min_memory_gb: checked_min_memory(float(definition, "min_gb")?.unwrap_or(0.0))?,
        interval,
        next_continuous: None,
        max_running: integer(definition, "max_running")?.unwrap_or(0),
        max_attempts_returned: integer(definition, "max_getwork")?.unwrap_or(0),
        max_retries: integer(definition, "max_retries")?.unwrap_or(0),
        next_work_spec_name: string(definition, "then")?.unwrap_or_default(),
        available_count: 0,
        pending_count: 0,
        runtime: string(definition, "runtime")?.unwrap_or_default(),
    };
    Ok(ParsedDefinition { name, meta })
}

/// `definition` once [`checked_data`] and then [`parse_definition`] accept
/// it, with the error of the first that refuses it: what a layer that
/// forwards definitions (a cache, a client) checks before anything else,
/// so that it refuses what the store would, as the store would, before
/// looking up the object the call is on.
///
/// ```
/// use coordinate::{data, rules::checked_definition, Error};
/// assert!(checked_definition(data!({"name": "s", "priority": 2})).is_ok());
/// assert_eq!(checked_definition(data!({"name": 7})), Err(Error::BadWorkSpecName));
/// ```
pub fn checked_definition(definition: DataMap) -> Result<DataMap> {
    let definition = checked_data(definition)?;
    parse_definition(&definition)?;
    Ok(definition)
}

/// The meta `set_meta(given)` stores over `stored`: the settable
/// fields come from `given`; `can_be_continuous`, `next_work_spec_name` and
/// `runtime` are kept; counts are not stored; `continuous` is forced off
/// unless the spec can be continuous.
pub fn merge_set_meta(stored: &WorkSpecMeta, given: &WorkSpecMeta) -> WorkSpecMeta {
    WorkSpecMeta {
        priority: given.priority,
        weight: given.weight,
        paused: given.paused,
        continuous: given.continuous && stored.can_be_continuous,
        can_be_continuous: stored.can_be_continuous,
        min_memory_gb: given.min_memory_gb,
        interval: given.interval,
        next_continuous: given.next_continuous,
        max_running: given.max_running,
        max_attempts_returned: given.max_attempts_returned,
        max_retries: given.max_retries,
        next_work_spec_name: stored.next_work_spec_name.clone(),
        available_count: 0,
        pending_count: 0,
        runtime: stored.runtime.clone(),
    }
}

/// The value of `key`, treating null as absent.
fn present<'a>(definition: &'a DataMap, key: &str) -> Option<&'a Value> {
    definition.get(key).filter(|v| !v.is_null())
}

fn invalid(key: &str, value: &Value, expected: &str) -> Error {
    Error::InvalidWorkSpecData(format!("{key} must be {expected}, not {value}"))
}

/// An integer or float key, floats truncated toward zero (saturating).
fn integer(definition: &DataMap, key: &str) -> Result<Option<i64>> {
    match present(definition, key) {
        None => Ok(None),
        Some(Value::Number(n)) => Ok(Some(match n.as_i64() {
            Some(i) => i,
            // `as` truncates toward zero and saturates; NaN cannot occur in JSON.
            None => n.as_f64().map_or(i64::MAX, |f| f.trunc() as i64),
        })),
        Some(v) => Err(invalid(key, v, "a number")),
    }
}

fn float(definition: &DataMap, key: &str) -> Result<Option<f64>> {
    match present(definition, key) {
        None => Ok(None),
        Some(Value::Number(n)) => Ok(n.as_f64()),
        Some(v) => Err(invalid(key, v, "a number")),
    }
}

fn boolean(definition: &DataMap, key: &str) -> Result<Option<bool>> {
    match present(definition, key) {
        None => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(v) => Err(invalid(key, v, "a boolean")),
    }
}

fn string(definition: &DataMap, key: &str) -> Result<Option<String>> {
    match present(definition, key) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(v) => Err(invalid(key, v, "a string")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data;

    fn weight_of(def: DataMap) -> i64 {
        parse_definition(&def).unwrap().meta.weight
    }

    #[test]
    fn a_negative_zero_memory_figure_reads_as_zero() {
        let parsed = parse_definition(&data!({"name": "s", "min_gb": -0.0})).unwrap();
        assert!(parsed.meta.min_memory_gb.is_sign_positive());
    }

    #[test]
    fn name_errors_in_order() {
        assert_eq!(parse_definition(&data!({})), Err(Error::NoWorkSpecName));
        assert_eq!(
            parse_definition(&data!({"name": null})),
            Err(Error::NoWorkSpecName)
        );
        assert_eq!(
            parse_definition(&data!({"name": 7, "priority": "x"})),
            Err(Error::BadWorkSpecName)
        );
        assert_eq!(
            parse_definition(&data!({"name": "", "priority": "x"})),
            Err(Error::NoWorkSpecName)
        );
        assert!(matches!(
            parse_definition(&data!({"name": "s", "priority": "x"})),
            Err(Error::InvalidWorkSpecData(_))
        ));
    }

    #[test]
    fn every_recognised_key_checks_its_type() {
        for (key, bad) in [
            ("priority", data!({"v": "1"})),
            ("weight", data!({"v": true})),
            ("nice", data!({"v": [1]})),
            ("max_running", data!({"v": {}})),
            ("max_getwork", data!({"v": "2"})),
            ("max_retries", data!({"v": false})),
            ("min_gb", data!({"v": "1"})),
            ("interval", data!({"v": "60"})),
            ("disabled", data!({"v": 1})),
            ("continuous", data!({"v": "yes"})),
            ("then", data!({"v": 3})),
            ("runtime", data!({"v": []})),
        ] {
            let mut def = data!({"name": "s"});
            def.insert(key.into(), bad["v"].clone());
            assert!(
                matches!(parse_definition(&def), Err(Error::InvalidWorkSpecData(_))),
                "{key}"
            );
        }
    }

    #[test]
    fn null_keys_are_absent_and_unknown_keys_ignored() {
        let p = parse_definition(&data!({"name": "s", "priority": null, "color": [1, 2]})).unwrap();
        assert_eq!(p.meta, WorkSpecMeta::default());
        assert_eq!(p.name, "s");
    }

    #[test]
    fn weight_rule_examples() {
        assert_eq!(weight_of(data!({"name": "s"})), 20);
        assert_eq!(weight_of(data!({"name": "s", "nice": 3})), 17);
        assert_eq!(weight_of(data!({"name": "s", "nice": 40})), 1);
        assert_eq!(weight_of(data!({"name": "s", "nice": -10})), 30);
        assert_eq!(weight_of(data!({"name": "s", "weight": 7, "nice": 3})), 7);
        assert_eq!(weight_of(data!({"name": "s", "weight": 0, "nice": 2})), 18);
        assert_eq!(weight_of(data!({"name": "s", "weight": -5})), 1);
        assert_eq!(weight_of(data!({"name": "s", "weight": 2.9})), 2);
        assert_eq!(weight_of(data!({"name": "s", "nice": i64::MIN})), i64::MAX);
    }

    #[test]
    fn every_key_derives_its_field() {
        let p = parse_definition(&data!({
            "name": "s", "priority": 5.7, "weight": 3, "disabled": true, "continuous": true,
            "min_gb": 1.5, "interval": 1.9, "max_running": 4, "max_getwork": 2,
            "max_retries": 6, "then": "next", "runtime": "go"
        }))
        .unwrap();
        let m = p.meta;
        assert_eq!(m.priority, 5);
        assert_eq!(m.weight, 3);
        assert!(m.paused && m.continuous && m.can_be_continuous);
        assert_eq!(m.min_memory_gb, 1.5);
        assert_eq!(m.interval, Duration::seconds(1));
        assert_eq!(m.next_continuous, None);
        assert_eq!(
            (m.max_running, m.max_attempts_returned, m.max_retries),
            (4, 2, 6)
        );
        assert_eq!(m.next_work_spec_name, "next");
        assert_eq!(m.runtime, "go");
        assert_eq!((m.available_count, m.pending_count), (0, 0));
    }

    #[test]
    fn huge_interval_is_an_error_not_a_panic() {
        assert!(matches!(
            parse_definition(&data!({"name": "s", "interval": 1e300})),
            Err(Error::InvalidWorkSpecData(_))
        ));
        let week = parse_definition(&data!({"name": "s", "interval": 604800})).unwrap();
        assert_eq!(week.meta.interval, Duration::days(7));
    }

    #[test]
    fn long_names_and_out_of_range_intervals_are_rejected() {
        let long = "x".repeat(super::super::limits::MAX_NAME_BYTES + 1);
        assert!(matches!(
            parse_definition(&data!({ "name": long })),
            Err(Error::NameTooLong { .. })
        ));
        for interval in [serde_json::json!(-1), serde_json::json!(9.2e12)] {
            assert!(matches!(
                parse_definition(&data!({"name": "s", "interval": interval})),
                Err(Error::InvalidWorkSpecData(_))
            ));
        }
    }

    #[test]
    fn merge_set_meta_keeps_unsettable_fields() {
        let stored = parse_definition(
            &data!({"name": "s", "continuous": true, "then": "t", "runtime": "r"}),
        )
        .unwrap()
        .meta;
        let given = WorkSpecMeta {
            priority: 9,
            continuous: false,
            can_be_continuous: false,
            next_work_spec_name: "other".into(),
            runtime: "other".into(),
            available_count: 5,
            pending_count: 6,
            ..WorkSpecMeta::default()
        };
        let merged = merge_set_meta(&stored, &given);
        assert_eq!(merged.priority, 9);
        assert!(!merged.continuous && merged.can_be_continuous);
        assert_eq!(merged.next_work_spec_name, "t");
        assert_eq!(merged.runtime, "r");
        assert_eq!((merged.available_count, merged.pending_count), (0, 0));

        let plain = WorkSpecMeta::default();
        let asked = WorkSpecMeta {
            continuous: true,
            ..WorkSpecMeta::default()
        };
        assert!(!merge_set_meta(&plain, &asked).continuous);
    }
}
