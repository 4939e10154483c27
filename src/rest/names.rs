//! Names in URL path segments.
//!
//! A name travels verbatim when it is non-empty, does not start with `-`,
//! consists only of `A–Z a–z 0–9 - . _ :` and is not `.` or `..` (which URL
//! normalisation would rewrite). Every other name becomes `-` followed by the
//! unpadded URL-safe base64 of its UTF-8 bytes, so a segment starting with
//! `-` is always an encoded name and decoding is total.
//!
//! A server percent-decodes a segment first ([`percent_decode`]), then
//! applies [`decode_segment`]; a client percent-encodes the encoded name
//! ([`expand_path_variable`]) when it fills a URI template.

use std::borrow::Cow;

use base64::alphabet::URL_SAFE;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, URL_SAFE_NO_PAD};
use base64::engine::DecodePaddingMode;
use base64::Engine as _;
use percent_encoding::{percent_decode_str, utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

use crate::model::Time;

/// A path segment or query value that does not decode to a name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    /// The segment starts with `-` but the rest is not unpadded URL-safe base64.
    #[error("invalid name encoding {segment:?}: {reason}")]
    BadBase64 {
        /// The segment as received (after percent-decoding).
        segment: String,
        /// The decoder's explanation.
        reason: String,
    },
    /// The decoded bytes are not UTF-8; names in this crate are strings.
    #[error("name in segment {0:?} is not valid UTF-8")]
    NotUtf8(String),
    /// A `%` not followed by two hexadecimal digits.
    #[error("invalid percent-encoding in {0:?}")]
    BadPercent(String),
}

/// True if `c` may appear in a name kept verbatim.
fn is_safe_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_' | ':')
}

/// True if `name` travels verbatim in a path segment.
pub fn is_verbatim(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with('-')
        && name != "."
        && name != ".."
        && name.chars().all(is_safe_char)
}

/// The path segment for `name` (before any percent-encoding).
pub fn encode_segment(name: &str) -> Cow<'_, str> {
    if is_verbatim(name) {
        Cow::Borrowed(name)
    } else {
        Cow::Owned(format!("-{}", URL_SAFE_NO_PAD.encode(name.as_bytes())))
    }
}

/// The decoder of encoded names: the URL-safe alphabet without padding,
/// as the API requires, and lenient about the unused bits of the last
/// character, as the reference server is (`-LR` is `-LQ`).
const NAME_DECODER: GeneralPurpose = GeneralPurpose::new(
    &URL_SAFE,
    GeneralPurposeConfig::new()
        .with_decode_padding_mode(DecodePaddingMode::RequireNone)
        .with_decode_allow_trailing_bits(true),
);

/// The name a (percent-decoded) path segment carries.
pub fn decode_segment(segment: &str) -> Result<String, NameError> {
    let Some(encoded) = segment.strip_prefix('-') else {
        return Ok(segment.to_owned());
    };
    let bytes = NAME_DECODER
        .decode(encoded)
        .map_err(|e| NameError::BadBase64 {
            segment: segment.to_owned(),
            reason: e.to_string(),
        })?;
    String::from_utf8(bytes).map_err(|_| NameError::NotUtf8(segment.to_owned()))
}

/// Percent-decodes one raw path segment; every `%` must start an escape
/// (`%` and two hexadecimal digits), and the result must be UTF-8.
pub fn percent_decode(raw: &str) -> Result<String, NameError> {
    let bytes = raw.as_bytes();
    let escapes_are_whole = bytes.iter().enumerate().all(|(i, &b)| {
        b != b'%'
            || bytes
                .get(i + 1..i + 3)
                .is_some_and(|hex| hex.iter().all(u8::is_ascii_hexdigit))
    });
    if !escapes_are_whole {
        return Err(NameError::BadPercent(raw.to_owned()));
    }
    percent_decode_str(raw)
        .decode_utf8()
        .map(Cow::into_owned)
        .map_err(|_| NameError::NotUtf8(raw.to_owned()))
}

/// Percent-decodes a raw path segment, then decodes the name it carries.
pub fn decode_raw_segment(raw: &str) -> Result<String, NameError> {
    decode_segment(&percent_decode(raw)?)
}

/// Every byte outside RFC 3986's unreserved set `A–Z a–z 0–9 - . _ ~`.
const NOT_UNRESERVED: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Percent-encodes every byte outside the unreserved set, as RFC 6570
/// simple-string expansion does (used for query values too).
pub fn percent_encode(value: &str) -> String {
    utf8_percent_encode(value, NOT_UNRESERVED).to_string()
}

/// The value of a path variable (`{namespace}`, `{spec}`, `{unit}`,
/// `{worker}`) in an expanded URI template: the name encoding, then
/// percent-encoding.
pub fn expand_path_variable(name: &str) -> String {
    percent_encode(&encode_segment(name))
}

/// The `previous` query parameter's value as sent: plain wherever a
/// decoding server reads the plain spelling as the name itself (every name
/// that does not start with `-`, and those that do but do not decode
/// cleanly, such as `-c`), which every server reads right; the others go
/// through the name encoding, which a decoding server reads right and a
/// server comparing literally cannot (no spelling serves both).
///
/// ```
/// use coordinate::rest::names::{decode_previous, encode_previous};
/// assert_eq!(encode_previous("b b"), "b b");
/// assert_eq!(encode_previous("-c"), "-c");
/// // `-YiBi` decodes as `b b`, so the name `-YiBi` must be encoded.
/// assert_eq!(encode_previous("-YiBi"), "-LVlpQmk");
/// assert_eq!(decode_previous(&encode_previous("-YiBi")), "-YiBi");
/// ```
pub fn encode_previous(name: &str) -> Cow<'_, str> {
    if decode_previous(name) == name {
        Cow::Borrowed(name)
    } else {
        encode_segment(name)
    }
}

/// The name a received `previous` query value means: decoded with the name
/// encoding when it starts with `-` and decodes cleanly, literal otherwise.
pub fn decode_previous(value: &str) -> String {
    match value.strip_prefix('-') {
        Some(_) => decode_segment(value).unwrap_or_else(|_| value.to_owned()),
        None => value.to_owned(),
    }
}

/// `link`, a server's absolute path or absolute URL, with every path
/// segment `.` or `..` (percent-encoded or not) spelled as the name
/// encoding spells those names. In such a link a dot segment can only be a
/// name a server emitted verbatim, as the reference server does; resolved
/// as a dot segment it would address another object. Segments end at `/`
/// or `\`, as in an `http` URL. A relative-path link, which the API does
/// not allow, is left as it is.
pub fn dot_names_encoded(link: &str) -> Cow<'_, str> {
    let Some(path_start) = path_start(link) else {
        return Cow::Borrowed(link);
    };
    let path_end = link[path_start..]
        .find(['?', '#'])
        .map_or(link.len(), |end| path_start + end);
    let path = &link[path_start..path_end];
    if !path
        .split(SEPARATORS)
        .any(|segment| dot_name(segment).is_some())
    {
        return Cow::Borrowed(link);
    }
    let mut read = String::with_capacity(link.len() + 8);
    read.push_str(&link[..path_start]);
    for piece in path.split_inclusive(SEPARATORS) {
        let segment = piece.trim_end_matches(SEPARATORS);
        match dot_name(segment) {
            Some(name) => read.push_str(&encode_segment(name)),
            None => read.push_str(segment),
        }
        read.push_str(&piece[segment.len()..]);
    }
    read.push_str(&link[path_end..]);
    Cow::Owned(read)
}

/// What ends a path segment of an `http` URL.
const SEPARATORS: [char; 2] = ['/', '\\'];

/// Where the path of an absolute path (`/…`), network-path (`//host/…`) or
/// absolute URL (`scheme://host/…`, or `scheme:/…` on the base's host)
/// link starts; `None` for anything else.
fn path_start(link: &str) -> Option<usize> {
    let after_scheme = match link.split_once(':') {
        Some((scheme, _)) if is_scheme(scheme) => scheme.len() + 1,
        _ => 0,
    };
    let rest = &link[after_scheme..];
    let mut separators = rest.chars().take_while(|c| SEPARATORS.contains(c));
    match (separators.next(), separators.next()) {
        (Some(_), Some(_)) => {
            let authority = after_scheme + 2;
            let end = link[authority..].find(['/', '\\', '?', '#']);
            Some(end.map_or(link.len(), |end| authority + end))
        }
        (Some(_), None) => Some(after_scheme),
        _ => None,
    }
}

/// True if `text` is a URL scheme: a letter, then letters, digits, `+`,
/// `-` or `.`.
fn is_scheme(text: &str) -> bool {
    text.starts_with(|c: char| c.is_ascii_alphabetic())
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
}

/// The name `.` or `..` a path segment spells, percent-encoded or not
/// (without allocating: every link a client follows goes through here).
fn dot_name(segment: &str) -> Option<&'static str> {
    let spells = |spellings: &[&str]| spellings.iter().any(|s| segment.eq_ignore_ascii_case(s));
    if spells(&[".", "%2e"]) {
        Some(".")
    } else if spells(&["..", ".%2e", "%2e.", "%2e%2e"]) {
        Some("..")
    } else {
        None
    }
}

/// An attempt's start time as the (unencoded) text of its URL segment:
/// RFC 3339 in UTC, truncated to whole seconds.
pub fn start_second(start: Time) -> String {
    start.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// An attempt's start time as its path segment (name-encoded, though the
/// UTC form is always verbatim).
pub fn start_segment(start: Time) -> String {
    encode_segment(&start_second(start)).into_owned()
}

/// An attempt's path segment: its start second and, when the backend
/// identifies attempts ([`Attempt::id`](crate::Attempt::id)), `_` and that
/// identifier, so that attempts of one unit by one worker started in the
/// same second have distinct URLs. Clients only follow these links.
pub fn attempt_segment(start: Time, id: Option<u64>) -> String {
    match id {
        Some(id) => encode_segment(&format!("{}_{id}", start_second(start))).into_owned(),
        None => start_segment(start),
    }
}

/// The start time text and the attempt identifier a (decoded) attempt
/// segment carries; a segment without a well-formed identifier is all
/// start time.
pub fn split_attempt_segment(segment: &str) -> (&str, Option<u64>) {
    match segment.rsplit_once('_') {
        Some((start, id)) => match id.parse() {
            Ok(id) => (start, Some(id)),
            Err(_) => (segment, None),
        },
        None => (segment, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Names and their path segments: plain, escaped, base64 and empty.
    const EXAMPLES: &[(&str, &str)] = &[
        ("foo", "foo"),
        ("host-a.1", "host-a.1"),
        ("job:1", "job:1"),
        ("", "-"),
        ("-", "-LQ"),
        ("-c", "-LWM"),
        ("my spec", "-bXkgc3BlYw"),
        ("new ns", "-bmV3IG5z"),
        ("a/b", "-YS9i"),
        ("x+y", "-eCt5"),
        ("~tilde", "-fnRpbGRl"),
        ("é", "-w6k"),
        ("\0", "-AA"),
        ("\u{1}\u{2}\u{3}\u{4}", "-AQIDBA"),
        ("2024-05-06T07:08:09Z", "2024-05-06T07:08:09Z"),
        (
            "2024-05-06T07:08:09+05:30",
            "-MjAyNC0wNS0wNlQwNzowODowOSswNTozMA",
        ),
    ];

    #[test]
    fn worked_examples_encode_and_decode() {
        for (name, segment) in EXAMPLES {
            assert_eq!(encode_segment(name), *segment, "encoding {name:?}");
            assert_eq!(
                decode_segment(segment).as_deref(),
                Ok(*name),
                "decoding {segment:?}"
            );
        }
    }

    #[test]
    fn dot_names_are_encoded() {
        assert_eq!(encode_segment("."), "-Lg");
        assert_eq!(encode_segment(".."), "-Li4");
        assert_eq!(decode_segment("-Li4").as_deref(), Ok(".."));
        assert_eq!(encode_segment("..."), "...");
    }

    #[test]
    fn dot_segments_of_links_are_read_as_names() {
        for (link, read) in [
            ("/namespace/./work_spec", "/namespace/-Lg/work_spec"),
            ("/namespace/n/worker/..", "/namespace/n/worker/-Li4"),
            ("/a/%2e/b/%2E%2e/c?x=/./#/../", "/a/-Lg/b/-Li4/c?x=/./#/../"),
            ("http://h:1/./..?q", "http://h:1/-Lg/-Li4?q"),
            ("//h/p/..", "//h/p/-Li4"),
            ("/namespace/.../-Lg", "/namespace/.../-Lg"),
            ("../relative/.", "../relative/."),
            ("http://h", "http://h"),
            ("/a\\.\\b/..\\", "/a\\-Lg\\b/-Li4\\"),
            ("http:/a/./b", "http:/a/-Lg/b"),
            ("http://u:p@[::1]:8/n/./w", "http://u:p@[::1]:8/n/-Lg/w"),
            ("/namespace/job:1/.", "/namespace/job:1/-Lg"),
            ("a:b/./c", "a:b/./c"),
        ] {
            assert_eq!(dot_names_encoded(link), read, "{link}");
        }
    }

    #[test]
    fn raw_segments_are_percent_decoded_first() {
        assert_eq!(decode_raw_segment("job%3A1").as_deref(), Ok("job:1"));
        assert_eq!(decode_raw_segment("new%20ns").as_deref(), Ok("new ns"));
        assert_eq!(decode_raw_segment("%C3%A9").as_deref(), Ok("é"));
        assert_eq!(decode_raw_segment("-bXkgc3BlYw").as_deref(), Ok("my spec"));
        assert!(decode_raw_segment("%FF").is_err());
    }

    #[test]
    fn bad_base64_is_an_error() {
        for bad in ["-!!", "-LQ==", "-a+b/", "-A"] {
            assert!(
                matches!(decode_segment(bad), Err(NameError::BadBase64 { .. })),
                "{bad:?}"
            );
        }
        // The unused bits of the last character need not be zero.
        for (lenient, name) in [("-LR", "-"), ("-LWN", "-c"), ("-w6l", "é")] {
            assert_eq!(decode_segment(lenient).as_deref(), Ok(name), "{lenient}");
        }
        // 0xFF 0xFE is valid base64 but not UTF-8.
        assert_eq!(
            decode_segment("-__4"),
            Err(NameError::NotUtf8("-__4".into()))
        );
    }

    #[test]
    fn path_variables_are_percent_encoded_after_name_encoding() {
        assert_eq!(expand_path_variable("job:1"), "job%3A1");
        assert_eq!(expand_path_variable("my spec"), "-bXkgc3BlYw");
        for (raw, encoded) in [
            ("b b", "b%20b"),
            ("f+g", "f%2Bg"),
            ("é", "%C3%A9"),
            ("-c~", "-c~"),
        ] {
            assert_eq!(percent_encode(raw), encoded, "{raw:?}");
        }
    }

    #[test]
    fn previous_is_plain_unless_a_decoding_server_reads_another_name() {
        // Both directions for what the encoder writes.
        for (previous, wire) in [
            ("b b", "b b"),
            ("-c", "-c"),
            ("-!", "-!"),
            ("-YiBi", "-LVlpQmk"),
            ("-", "-LQ"),
        ] {
            assert_eq!(encode_previous(previous), wire);
            assert_eq!(decode_previous(wire), previous);
        }
        assert_eq!(decode_previous("-YiBi"), "b b");
        assert_eq!(decode_previous("-!"), "-!");
    }

    #[test]
    fn start_segment_truncates_to_utc_seconds() {
        let t = chrono::DateTime::parse_from_rfc3339("2024-05-06T09:08:09.999+02:00")
            .unwrap()
            .to_utc();
        assert_eq!(start_segment(t), "2024-05-06T07:08:09Z");
        assert_eq!(attempt_segment(t, None), "2024-05-06T07:08:09Z");
        assert_eq!(attempt_segment(t, Some(17)), "2024-05-06T07:08:09Z_17");
        assert_eq!(
            split_attempt_segment("2024-05-06T07:08:09Z_17"),
            ("2024-05-06T07:08:09Z", Some(17))
        );
        assert_eq!(
            split_attempt_segment("2024-05-06T07:08:09Z"),
            ("2024-05-06T07:08:09Z", None)
        );
        assert_eq!(split_attempt_segment("x_y"), ("x_y", None));
    }
}
