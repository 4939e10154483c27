//! Lossless storage of data maps holding U+0000 in `jsonb`.
//!
//! PostgreSQL's `jsonb` refuses the character U+0000 in strings and keys,
//! but data maps may hold any string. Before storing, every string
//! and key containing U+0000 or the escape character U+E000 (a private-use
//! code point) is rewritten: U+0000 → U+E000 `0`, U+E000 → U+E000 U+E000.
//! Reading reverses it. The mapping is injective, so every map round-trips
//! exactly; maps without either character (nearly all) are stored as they
//! are, without a copy. No SQL of this backend looks inside data maps, so
//! nothing else sees the escaped form.

use std::borrow::Cow;

use serde_json::Value;

use crate::model::DataMap;

const ESCAPE: char = '\u{E000}';

fn needs_escape(s: &str) -> bool {
    s.contains(['\0', ESCAPE])
}

fn value_needs_escape(v: &Value) -> bool {
    match v {
        Value::String(s) => needs_escape(s),
        Value::Array(a) => a.iter().any(value_needs_escape),
        Value::Object(m) => map_needs_escape(m),
        _ => false,
    }
}

fn map_needs_escape(m: &DataMap) -> bool {
    m.iter()
        .any(|(k, v)| needs_escape(k) || value_needs_escape(v))
}

fn escape_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 4);
    for c in s.chars() {
        match c {
            '\0' => {
                out.push(ESCAPE);
                out.push('0');
            }
            ESCAPE => {
                out.push(ESCAPE);
                out.push(ESCAPE);
            }
            c => out.push(c),
        }
    }
    out
}

fn unescape_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != ESCAPE {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('0') => out.push('\0'),
            Some(ESCAPE) => out.push(ESCAPE),
            // Not written by this code; keep what is there.
            Some(other) => {
                out.push(ESCAPE);
                out.push(other);
            }
            None => out.push(ESCAPE),
        }
    }
    out
}

fn map_value(v: &Value, f: fn(&str) -> String) -> Value {
    match v {
        Value::String(s) => Value::String(f(s)),
        Value::Array(a) => Value::Array(a.iter().map(|x| map_value(x, f)).collect()),
        Value::Object(m) => Value::Object(map_map(m, f)),
        other => other.clone(),
    }
}

fn map_map(m: &DataMap, f: fn(&str) -> String) -> DataMap {
    m.iter().map(|(k, v)| (f(k), map_value(v, f))).collect()
}

/// The form of `map` to store.
pub(crate) fn escape(map: &DataMap) -> Cow<'_, DataMap> {
    if map_needs_escape(map) {
        Cow::Owned(map_map(map, escape_str))
    } else {
        Cow::Borrowed(map)
    }
}

fn has_escape(v: &Value) -> bool {
    match v {
        Value::String(s) => s.contains(ESCAPE),
        Value::Array(a) => a.iter().any(has_escape),
        Value::Object(m) => m.iter().any(|(k, v)| k.contains(ESCAPE) || has_escape(v)),
        _ => false,
    }
}

/// The map a stored map stands for.
pub(crate) fn unescape(map: DataMap) -> DataMap {
    if map.iter().any(|(k, v)| k.contains(ESCAPE) || has_escape(v)) {
        map_map(&map, unescape_str)
    } else {
        map
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data;

    #[test]
    fn round_trips_nul_and_the_escape_character() {
        let tricky = [
            "",
            "\0",
            "a\0b",
            "\u{E000}",
            "\u{E000}0",
            "\0\u{E000}\0",
            "\u{E000}\u{E000}0",
        ];
        for s in tricky {
            let map = data!({ s: [s, {s: s}], "plain": 1 });
            let stored = escape(&map).into_owned();
            assert!(!serde_json::to_string(&stored).unwrap().contains("\\u0000"));
            assert_eq!(unescape(stored), map, "{s:?}");
        }
    }

    #[test]
    fn plain_maps_are_not_copied() {
        let map = data!({"a": ["b", {"c": 1}]});
        assert!(matches!(escape(&map), Cow::Borrowed(_)));
    }

    #[test]
    fn escaping_is_injective_on_neighbours() {
        let a = data!({"k": "\0"});
        let b = data!({"k": "\u{E000}0"});
        assert_ne!(escape(&a).into_owned(), escape(&b).into_owned());
    }
}
