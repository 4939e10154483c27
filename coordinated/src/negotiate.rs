//! Content negotiation: which JSON media type answers a request (`Accept`),
//! and whether a request body is JSON (`Content-Type`).

use axum::http::{header, HeaderMap, HeaderValue};
use coordinate::rest::wire::{
    json_media_type, JSON_MEDIA_TYPES, MEDIA_TYPE_TEXT_JSON, MEDIA_TYPE_V1,
};

use crate::problem::Problem;

/// One parsed media range: lower-cased `type/subtype` and its `q`.
#[derive(Debug, PartialEq)]
struct MediaRange {
    essence: String,
    q: f64,
}

fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// `text` split at each `delimiter` outside quoted strings (RFC 9110's
/// quoted-string: `"…"`, in which `\` escapes the next character), so a quoted
/// parameter value may hold `;` and `,`.
fn split_unquoted(text: &str, delimiter: u8) -> impl Iterator<Item = &str> {
    // Every request negotiates, so the parts are found lazily, unallocated.
    let mut rest = Some(text);
    std::iter::from_fn(move || {
        let part = rest?;
        let (mut quoted, mut escaped) = (false, false);
        for (i, b) in part.bytes().enumerate() {
            if escaped {
                escaped = false;
            } else if quoted && b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                quoted = !quoted;
            } else if !quoted && b == delimiter {
                // An ASCII delimiter: `i` and `i + 1` are character boundaries.
                rest = Some(&part[i + 1..]);
                return Some(&part[..i]);
            }
        }
        rest = None;
        Some(part)
    })
}

/// True for a whole quoted string: `"`, characters with `"` and `\` only
/// escaped, `"`.
fn is_quoted_string(s: &str) -> bool {
    let Some(inner) = s.strip_prefix('"').and_then(|s| s.strip_suffix('"')) else {
        return false;
    };
    let mut escaped = false;
    for b in inner.bytes() {
        match b {
            _ if escaped => escaped = false,
            b'\\' => escaped = true,
            b'"' => return false,
            _ => {}
        }
    }
    !escaped
}

/// The text of a parameter value: a quoted string without its quotes and
/// escapes, a token as it is.
fn unquoted(value: &str) -> std::borrow::Cow<'_, str> {
    let Some(inner) = value.strip_prefix('"').and_then(|v| v.strip_suffix('"')) else {
        return value.into();
    };
    let mut text = String::with_capacity(inner.len());
    let mut escaped = false;
    for c in inner.chars() {
        if !escaped && c == '\\' {
            escaped = true;
        } else {
            escaped = false;
            text.push(c);
        }
    }
    text.into()
}

/// Parses `type/subtype *(; name=value)` into the lower-cased essence and
/// the parameters; `None` when malformed, a parameter given twice (names
/// compared without regard to case) included, as the reference server's
/// parser reads it. A bare token without a subtype is well-formed, as that
/// parser reads it too, and names no type this server knows: Java's
/// default `Accept` lists `*` so.
fn parse_media_type(text: &str) -> Option<(String, Vec<(&str, &str)>)> {
    let mut parts = split_unquoted(text, b';');
    let essence = parts.next()?.trim();
    let well_formed = match essence.split_once('/') {
        Some((kind, subtype)) => is_token(kind) && is_token(subtype),
        None => is_token(essence),
    };
    if !well_formed {
        return None;
    }
    let mut parameters = Vec::new();
    for param in parts {
        let param = param.trim();
        if param.is_empty() {
            continue;
        }
        let (name, value) = param.split_once('=')?;
        let (name, value) = (name.trim(), value.trim());
        if !is_token(name) || !(is_quoted_string(value) || is_token(value)) {
            return None;
        }
        if parameters
            .iter()
            .any(|(seen, _): &(&str, &str)| seen.eq_ignore_ascii_case(name))
        {
            return None;
        }
        parameters.push((name, value));
    }
    Some((essence.to_ascii_lowercase(), parameters))
}

/// Parses an `Accept` entry; `None` when malformed or its `q` (quoted or
/// not) is not a number in `[0, 1]`.
fn parse_media_range(entry: &str) -> Option<MediaRange> {
    let (essence, parameters) = parse_media_type(entry)?;
    let mut q = 1.0;
    for (name, value) in parameters {
        if name.eq_ignore_ascii_case("q") {
            q = unquoted(value)
                .parse::<f64>()
                .ok()
                .filter(|q| (0.0..=1.0).contains(q))?;
        }
    }
    Some(MediaRange { essence, q })
}

/// What the best entry so far was, for the tie-breaking rules.
#[derive(Clone, Copy, PartialEq)]
enum Best {
    AnyType,
    AnySubtype(&'static str),
    Known(&'static str),
}

/// The media type to answer with, given the request's `Accept` header
/// (absent is `*/*`): the first known type at the highest quality, where a
/// known type beats a wildcard of equal quality. Malformed → `400`, nothing
/// acceptable → `406`.
pub fn negotiate(accept: Option<&str>) -> Result<&'static str, Problem> {
    let accept = accept
        .map(str::trim)
        .filter(|a| !a.is_empty())
        .unwrap_or("*/*");
    let mut best: Option<(Best, f64)> = None;
    let entries = split_unquoted(accept, b',').map(str::trim);
    for entry in entries.filter(|e| !e.is_empty()) {
        let range = parse_media_range(entry)
            .ok_or_else(|| Problem::bad_request(format!("Invalid Accept: header {accept:?}")))?;
        let best_q = best.map_or(0.0, |(_, q)| q);
        if range.q < best_q {
            continue;
        }
        let higher = range.q > best_q;
        let best_is_wildcard = matches!(best, Some((Best::AnyType | Best::AnySubtype(_), _)));
        let candidate = match range.essence.as_str() {
            "*/*" if higher => Best::AnyType,
            "application/*" if higher || matches!(best, Some((Best::AnyType, _))) => {
                Best::AnySubtype(MEDIA_TYPE_V1)
            }
            "text/*" if higher || matches!(best, Some((Best::AnyType, _))) => {
                Best::AnySubtype(MEDIA_TYPE_TEXT_JSON)
            }
            other => match JSON_MEDIA_TYPES.into_iter().find(|t| *t == other) {
                Some(known) if higher || best_is_wildcard => Best::Known(known),
                _ => continue,
            },
        };
        best = Some((candidate, range.q));
    }
    match best {
        Some((_, q)) if q > 0.0 => Ok(match best.map(|(b, _)| b) {
            Some(Best::AnySubtype(t) | Best::Known(t)) => t,
            _ => MEDIA_TYPE_V1,
        }),
        _ => Err(Problem::not_acceptable()),
    }
}

/// [`negotiate`] on a request's headers. Several `Accept` lines are one
/// list, as if joined by commas (HTTP's rule for list headers); a line
/// that is not text is malformed.
pub fn negotiated(headers: &HeaderMap) -> Result<&'static str, Problem> {
    fn text(line: &HeaderValue) -> Result<&str, Problem> {
        line.to_str()
            .map_err(|_| Problem::bad_request("Invalid Accept: header"))
    }
    let mut lines = headers.get_all(header::ACCEPT).iter();
    let Some(first) = lines.next() else {
        return negotiate(None);
    };
    let first = text(first)?;
    let Some(second) = lines.next() else {
        return negotiate(Some(first));
    };
    let mut joined = first.to_owned();
    for line in std::iter::once(second).chain(lines) {
        joined.push_str(", ");
        joined.push_str(text(line)?);
    }
    negotiate(Some(&joined))
}

/// A request's `Content-Type`, if it has one; `400` if it is not text or
/// given more than once (a body has one type).
pub fn declared_content_type(headers: &HeaderMap) -> Result<Option<&str>, Problem> {
    let mut lines = headers.get_all(header::CONTENT_TYPE).iter();
    let Some(line) = lines.next() else {
        return Ok(None);
    };
    if lines.next().is_some() {
        return Err(Problem::bad_request(
            "a request must have at most one Content-Type header",
        ));
    }
    line.to_str()
        .map(Some)
        .map_err(|_| Problem::bad_request("Invalid Content-Type: header"))
}

/// The media type of an answer that does not wait for negotiation (the
/// router's, a timeout's): the negotiated one, else the v1 type.
pub fn negotiated_or_v1(headers: &HeaderMap) -> &'static str {
    negotiated(headers).unwrap_or(MEDIA_TYPE_V1)
}

/// Checks that a `PUT`/`POST` body is declared as one of the JSON types:
/// absent (or empty, as the reference server reads it) or another type →
/// `415`, malformed → `400`. Parameters are ignored, whatever they say
/// (a `q` means nothing here, and the body is JSON, so UTF-8, whatever
/// the `charset`), once well-formed.
pub fn check_content_type(content_type: Option<&str>) -> Result<(), Problem> {
    let Some(content_type) = content_type.filter(|t| !t.trim().is_empty()) else {
        return Err(Problem::unsupported_media_type("application/octet-stream"));
    };
    if parse_media_type(content_type.trim()).is_none() {
        return Err(Problem::bad_request(format!(
            "Invalid Content-Type: header {content_type:?}"
        )));
    }
    match json_media_type(content_type) {
        Some(_) => Ok(()),
        None => Err(Problem::unsupported_media_type(content_type)),
    }
}

#[cfg(test)]
mod tests {
    use axum::http::StatusCode;
    use coordinate::rest::wire::{MEDIA_TYPE_JSON, MEDIA_TYPE_LATEST};

    use super::*;

    fn status(r: Result<&'static str, Problem>) -> StatusCode {
        r.err().map(|p| p.status).unwrap_or(StatusCode::OK)
    }

    /// Each `Accept` header negotiates its media type.
    fn negotiates(cases: &[(Option<&str>, &str)]) {
        for &(accept, want) in cases {
            assert_eq!(negotiate(accept).ok(), Some(want), "{accept:?}");
        }
    }

    /// Each `Accept` header is refused with its status.
    fn refuses(cases: &[(&str, StatusCode)]) {
        for &(accept, want) in cases {
            assert_eq!(status(negotiate(Some(accept))), want, "{accept:?}");
        }
    }

    fn headers(lines: &[(header::HeaderName, &'static str)]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (name, value) in lines {
            headers.append(name, HeaderValue::from_static(value));
        }
        headers
    }

    #[test]
    fn several_accept_lines_are_one_list() {
        let accept = |value| (header::ACCEPT, value);
        let two = headers(&[accept("text/html"), accept("application/json")]);
        assert_eq!(negotiated(&two).ok(), Some(MEDIA_TYPE_JSON));
        let malformed = headers(&[accept("application/json"), accept("a b")]);
        assert_eq!(status(negotiated(&malformed)), StatusCode::BAD_REQUEST);
        let none = headers(&[accept("text/html"), accept("image/png")]);
        assert_eq!(status(negotiated(&none)), StatusCode::NOT_ACCEPTABLE);
    }

    #[test]
    fn a_body_has_one_content_type() {
        let json = (header::CONTENT_TYPE, "application/json");
        assert_eq!(
            declared_content_type(&headers(std::slice::from_ref(&json))).ok(),
            Some(Some("application/json"))
        );
        assert_eq!(declared_content_type(&HeaderMap::new()).ok(), Some(None));
        for second in ["text/plain", "application/json"] {
            let twice = headers(&[json.clone(), (header::CONTENT_TYPE, second)]);
            let refused = declared_content_type(&twice).err().map(|p| p.status);
            assert_eq!(refused, Some(StatusCode::BAD_REQUEST), "{second}");
        }
    }

    #[test]
    fn the_worked_examples() {
        negotiates(&[
            (None, MEDIA_TYPE_V1),
            (Some(""), MEDIA_TYPE_V1),
            (Some("application/json"), MEDIA_TYPE_JSON),
            (Some("text/*"), MEDIA_TYPE_TEXT_JSON),
            (Some("application/*;q=0.5, text/json;q=0.4"), MEDIA_TYPE_V1),
        ]);
        refuses(&[
            ("text/html", StatusCode::NOT_ACCEPTABLE),
            ("application/json;q=2", StatusCode::BAD_REQUEST),
        ]);
    }

    #[test]
    fn a_bare_token_is_an_unknown_type() {
        // Java's `HttpURLConnection` sends this by default.
        let java = "text/html, image/gif, image/jpeg, *; q=.2, */*; q=.2";
        negotiates(&[(Some(java), MEDIA_TYPE_V1)]);
    }

    #[test]
    fn known_types_beat_wildcards_and_the_first_wins() {
        negotiates(&[
            (
                Some("text/html,application/xhtml+xml,*/*;q=0.8"),
                MEDIA_TYPE_V1,
            ),
            (
                Some("*/*, Application/Vnd.Diffeo.Coordinate+JSON"),
                MEDIA_TYPE_LATEST,
            ),
            (Some("text/json, application/json"), MEDIA_TYPE_TEXT_JSON),
            (Some("*/*, text/*"), MEDIA_TYPE_TEXT_JSON),
            (Some("application/json; charset=utf-8"), MEDIA_TYPE_JSON),
        ]);
    }

    #[test]
    fn quoted_parameter_values_may_hold_delimiters() {
        negotiates(&[
            (Some(r#"application/json; ext="x,y""#), MEDIA_TYPE_JSON),
            (
                Some(r#"text/html; p="a,\"b\";c", application/json"#),
                MEDIA_TYPE_JSON,
            ),
        ]);
        assert!(check_content_type(Some(r#"application/json; profile="a;b""#)).is_ok());
        for bad in [
            r#"application/json; p="open"#,
            r#"application/json; p="a"b""#,
            r#"application/json; p="a\""#,
        ] {
            refuses(&[(bad, StatusCode::BAD_REQUEST)]);
            let refused = check_content_type(Some(bad)).err().map(|p| p.status);
            assert_eq!(refused, Some(StatusCode::BAD_REQUEST), "{bad}");
        }
    }

    #[test]
    fn zero_quality_and_garbage() {
        refuses(&[
            ("application/json;q=0", StatusCode::NOT_ACCEPTABLE),
            ("image/*", StatusCode::NOT_ACCEPTABLE),
            ("json", StatusCode::NOT_ACCEPTABLE),
        ]);
        for bad in [
            "a/b;q=x",
            "a/b;q=-0.1",
            r#"a/b;q="x""#,
            "application/json;q=0.5;q=0.9",
            "application/json;q=0.5;Q=0.5",
            "application/json;v=1;V=2",
            "/json",
            "json/",
            "a/b;=1",
            "a b/c",
            "a b",
        ] {
            refuses(&[(bad, StatusCode::BAD_REQUEST)]);
        }
    }

    #[test]
    fn content_types() {
        assert!(check_content_type(Some(MEDIA_TYPE_V1)).is_ok());
        assert!(check_content_type(Some("text/json; charset=utf-8")).is_ok());
        let code = |ct| check_content_type(ct).err().map(|p| p.status);
        assert_eq!(code(None), Some(StatusCode::UNSUPPORTED_MEDIA_TYPE));
        assert_eq!(
            code(Some("text/plain")),
            Some(StatusCode::UNSUPPORTED_MEDIA_TYPE)
        );
        assert_eq!(
            code(Some("garbage")),
            Some(StatusCode::UNSUPPORTED_MEDIA_TYPE)
        );
        assert_eq!(code(Some("a b")), Some(StatusCode::BAD_REQUEST));
        // Empty reads as absent; parameters, `q` included, mean nothing.
        for absent in ["", "  "] {
            assert_eq!(
                code(Some(absent)),
                Some(StatusCode::UNSUPPORTED_MEDIA_TYPE),
                "{absent:?}"
            );
        }
        for json in [
            "application/json; q=5",
            "application/json;q=x",
            "application/json; charset=latin1",
            "Application/JSON; Charset=\"UTF-8\"; v=1",
        ] {
            assert!(check_content_type(Some(json)).is_ok(), "{json}");
        }
        assert_eq!(
            code(Some("application/json; =x")),
            Some(StatusCode::BAD_REQUEST)
        );
        assert_eq!(
            code(Some("application/json; charset=a; Charset=b")),
            Some(StatusCode::BAD_REQUEST)
        );
    }

    #[test]
    fn a_quoted_quality_is_read_as_its_text() {
        negotiates(&[
            (Some(r#"application/json;q="0.5""#), MEDIA_TYPE_JSON),
            (
                Some(r#"text/json;q="0.4", application/json;q="0.5""#),
                MEDIA_TYPE_JSON,
            ),
            (Some(r#"text/json;q="\1""#), MEDIA_TYPE_TEXT_JSON),
        ]);
        refuses(&[(r#"application/json;q="0""#, StatusCode::NOT_ACCEPTABLE)]);
    }
}
