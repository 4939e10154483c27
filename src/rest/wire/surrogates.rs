//! Lone surrogate escapes in JSON text. JSON's grammar allows `\ud800`
//! alone (Python writes one for a string holding an unpaired surrogate),
//! but no Rust string can hold it, and serde refuses it. The API's
//! reference implementation reads each such escape as U+FFFD, the
//! replacement character, and so do `coordinated` and `RestBackend`: the
//! escape is rewritten as `\ufffd` before the text is decoded, its length
//! unchanged.

use std::borrow::Cow;

use serde::de::DeserializeOwned;

/// `json` (valid JSON text) with each lone surrogate escape in its strings
/// rewritten as `\ufffd`; borrowed, not copied, when it has none.
///
/// ```
/// use coordinate::rest::wire::with_lone_surrogates_replaced;
///
/// let fixed = with_lone_surrogates_replaced(br#"{"a": "\ud800\ud83d\ude00"}"#);
/// let value: serde_json::Value = serde_json::from_slice(&fixed).unwrap();
/// assert_eq!(value["a"], "\u{fffd}\u{1f600}");
/// ```
pub fn with_lone_surrogates_replaced(json: &[u8]) -> Cow<'_, [u8]> {
    let may_have_one = [b"\\ud", b"\\uD"]
        .iter()
        .any(|escape| memchr::memmem::find(json, *escape).is_some());
    if !may_have_one {
        return Cow::Borrowed(json);
    }
    let mut copy = json.to_vec();
    if replace_lone_surrogates(&mut copy) {
        Cow::Owned(copy)
    } else {
        Cow::Borrowed(json)
    }
}

/// `json` decoded as a `T`, each lone surrogate escape in its strings
/// read as U+FFFD: decoded as it is first, and rewritten only if that
/// fails.
///
/// ```
/// use coordinate::rest::wire::from_json_slice_lossy;
///
/// let text: String = from_json_slice_lossy(br#""a\udc00""#).unwrap();
/// assert_eq!(text, "a\u{fffd}");
/// assert!(from_json_slice_lossy::<String>(b"\"a").is_err());
/// ```
pub fn from_json_slice_lossy<T: DeserializeOwned>(json: &[u8]) -> serde_json::Result<T> {
    serde_json::from_slice(json).or_else(|e| match with_lone_surrogates_replaced(json) {
        Cow::Owned(replaced) => serde_json::from_slice(&replaced),
        Cow::Borrowed(_) => Err(e),
    })
}

/// Rewrites each lone surrogate escape in the strings of `json` (valid
/// JSON text) as `\ufffd`; a surrogate pair's escapes are kept. Answers
/// whether any was rewritten.
fn replace_lone_surrogates(json: &mut [u8]) -> bool {
    let mut replaced = false;
    let mut in_string = false;
    let mut i = 0;
    while i < json.len() {
        match (in_string, json[i]) {
            (false, b'"') => in_string = true,
            (true, b'"') => in_string = false,
            (true, b'\\') if json.get(i + 1) == Some(&b'u') => {
                let escape = i + 2..i + 6;
                match json.get(escape.clone()).and_then(hex) {
                    Some(0xD800..=0xDBFF) if low_surrogate_at(json, i + 6) => i += 6,
                    Some(0xD800..=0xDFFF) => {
                        json[escape].copy_from_slice(b"fffd");
                        replaced = true;
                    }
                    _ => {}
                }
                i += 5;
            }
            // Any other escape is two bytes; the second is never a quote
            // that ends the string.
            (true, b'\\') => i += 1,
            _ => {}
        }
        i += 1;
    }
    replaced
}

/// Whether `json` holds the escape of a low surrogate at `at`.
fn low_surrogate_at(json: &[u8], at: usize) -> bool {
    json.get(at..at + 2) == Some(b"\\u")
        && matches!(
            json.get(at + 2..at + 6).and_then(hex),
            Some(0xDC00..=0xDFFF)
        )
}

/// The value of four hexadecimal digits.
fn hex(digits: &[u8]) -> Option<u16> {
    let text = std::str::from_utf8(digits).ok()?;
    u16::from_str_radix(text, 16).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn replaced(json: &str) -> (String, bool) {
        let mut bytes = json.as_bytes().to_vec();
        let any = replace_lone_surrogates(&mut bytes);
        (String::from_utf8(bytes).unwrap(), any)
    }

    #[test]
    fn lone_surrogates_become_the_replacement_character() {
        let cases = [
            (r#"{"a":"\ud800"}"#, r#"{"a":"\ufffd"}"#),
            (r#"{"a":"\uDC00x"}"#, r#"{"a":"\ufffdx"}"#),
            (r#"{"a":"\ud800\u0041"}"#, r#"{"a":"\ufffd\u0041"}"#),
            (r#"{"\udbff":1}"#, r#"{"\ufffd":1}"#),
            // A high surrogate before a pair: only the first is alone.
            (r#"["\ud800\ud800\udc00"]"#, r#"["\ufffd\ud800\udc00"]"#),
            // Two low surrogates in a row.
            (r#"["\udc00\udc00"]"#, r#"["\ufffd\ufffd"]"#),
        ];
        for (json, expected) in cases {
            assert_eq!(replaced(json), (expected.to_owned(), true), "{json}");
            let decoded: serde_json::Value = serde_json::from_str(expected).unwrap();
            assert!(decoded.to_string().contains('\u{fffd}'), "{json}");
        }
    }

    #[test]
    fn pairs_other_escapes_and_text_outside_strings_are_kept() {
        for json in [
            r#"{"a":"\ud83d\ude00"}"#,
            r#"{"a":"\\ud800"}"#,
            r#"{"a":"\"\ud83d\ude00\\"}"#,
            r#"{"a":"\u00e9\n\t"}"#,
            r#"{"a":[1,2.5e3,true,null],"b":"ud800"}"#,
            r#""\\\\ud800""#,
        ] {
            assert_eq!(replaced(json), (json.to_owned(), false), "{json}");
        }
    }
}
