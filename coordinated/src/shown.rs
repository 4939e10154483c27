//! A `--backend` value as it may be shown (logged, or quoted in an error):
//! without the credentials it may carry.

/// What stands in for a hidden credential.
const HIDDEN: &str = "***";

/// `backend` with its credentials hidden. A URL (`scheme://…`) loses its
/// user information (as the client hides it, with whatever an unescaped
/// `/`, `?` or `#` in a password spilled past where the authority seems to
/// end: everything between the scheme and the last `@`) and the value of a
/// `password` query parameter; a `key=value` connection string, after a
/// prefix (`postgres:`, or a misspelling of it) or without one, loses the
/// value of `password`.
///
/// ```
/// use coordinated::shown::backend_shown;
///
/// assert_eq!(backend_shown("postgres://app:s3cret@db/jobs"), "postgres://***@db/jobs");
/// assert_eq!(
///     backend_shown("postgres://db/jobs?user=app&password=s3cret"),
///     "postgres://db/jobs?user=app&password=***"
/// );
/// assert_eq!(
///     backend_shown("postgres:host=db password='s 3' user=app"),
///     "postgres:host=db password=*** user=app"
/// );
/// assert_eq!(backend_shown("memory"), "memory");
/// ```
pub fn backend_shown(backend: &str) -> String {
    if let Some(start) = url_authority_start(backend) {
        let userinfo_hidden = match backend[start..].rfind('@') {
            Some(at) => format!("{}{HIDDEN}{}", &backend[..start], &backend[start + at..]),
            None => backend.to_owned(),
        };
        return query_password_hidden(&userinfo_hidden);
    }
    match backend.split_once(':') {
        Some((scheme, settings)) if is_scheme(scheme) => {
            format!("{scheme}:{}", password_hidden(settings))
        }
        _ => password_hidden(backend),
    }
}

/// True for a URL scheme: a letter, then letters, digits, `+`, `-`, `.`.
fn is_scheme(text: &str) -> bool {
    let mut chars = text.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
}

/// Where the authority of `text` starts, if `text` is a URL: just after
/// its `scheme://`.
fn url_authority_start(text: &str) -> Option<usize> {
    let (scheme, _) = text.split_once("://")?;
    is_scheme(scheme).then_some(scheme.len() + 3)
}

/// `url` with the value of each `password` query parameter hidden.
fn query_password_hidden(url: &str) -> String {
    let Some((before, query)) = url.split_once('?') else {
        return url.to_owned();
    };
    let (query, fragment) = match query.split_once('#') {
        Some((query, fragment)) => (query, Some(fragment)),
        None => (query, None),
    };
    let pairs: Vec<String> = query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some(("password", _)) => format!("password={HIDDEN}"),
            _ => pair.to_owned(),
        })
        .collect();
    let mut shown = format!("{before}?{}", pairs.join("&"));
    if let Some(fragment) = fragment {
        shown.push('#');
        shown.push_str(fragment);
    }
    shown
}

/// A libpq `key=value` connection string with the value of `password`
/// hidden. Values are read as libpq reads them: single-quoted (with `\`
/// escaping a quote or a backslash), or up to the next whitespace.
fn password_hidden(settings: &str) -> String {
    let mut shown = String::with_capacity(settings.len());
    let mut rest = settings;
    while !rest.is_empty() {
        let key_end = rest
            .find(|c: char| c == '=' || c.is_whitespace())
            .unwrap_or(rest.len());
        let key = &rest[..key_end];
        shown.push_str(key);
        rest = &rest[key_end..];
        // Whitespace, then `=` and the whitespace after it, when there is one.
        let after_space = rest.trim_start();
        shown.push_str(&rest[..rest.len() - after_space.len()]);
        rest = after_space;
        let Some(value) = rest.strip_prefix('=') else {
            continue;
        };
        let value_start = value.trim_start();
        shown.push_str(&rest[..rest.len() - value_start.len()]);
        let value_len = value_length(value_start);
        if key == "password" {
            shown.push_str(HIDDEN);
        } else {
            shown.push_str(&value_start[..value_len]);
        }
        rest = &value_start[value_len..];
    }
    shown
}

/// The length in bytes of the value `text` starts with: through its
/// closing quote when quoted (the whole text when unterminated), else up
/// to the next whitespace; a backslash escapes the character after it.
fn value_length(text: &str) -> usize {
    let quoted = text.starts_with('\'');
    let mut chars = text.char_indices().skip(usize::from(quoted));
    while let Some((at, c)) = chars.next() {
        match c {
            '\\' => {
                chars.next();
            }
            '\'' if quoted => return at + 1,
            c if !quoted && c.is_whitespace() => return at,
            _ => {}
        }
    }
    text.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_credentials_are_hidden() {
        assert_eq!(
            backend_shown("http://alice:s3cret@127.0.0.1:5980/"),
            "http://***@127.0.0.1:5980/"
        );
        assert_eq!(
            backend_shown("postgresql://u@h/db"),
            "postgresql://***@h/db"
        );
        // A password with an unescaped `/` or `@`: everything up to the last `@`.
        assert_eq!(
            backend_shown("postgres://u:pa/s@w@h/db"),
            "postgres://***@h/db"
        );
        assert_eq!(backend_shown("http://h:1/p"), "http://h:1/p");
    }

    #[test]
    fn a_connection_strings_password_is_hidden_however_written() {
        for (given, shown) in [
            ("host=h password=pw user=u", "host=h password=*** user=u"),
            ("password = pw dbname=d", "password = *** dbname=d"),
            ("password='a b\\' c' user=u", "password=*** user=u"),
            ("password=a\\ b user=u", "password=*** user=u"),
            ("user=u password='unterminated", "user=u password=***"),
            ("host='/tmp/a b' port=5432", "host='/tmp/a b' port=5432"),
            ("dbname=password password=x", "dbname=password password=***"),
            ("password=", "password=***"),
            ("nonsense password", "nonsense password"),
            ("", ""),
        ] {
            assert_eq!(
                backend_shown(&format!("postgres:{given}")),
                format!("postgres:{shown}"),
                "{given}"
            );
        }
    }

    #[test]
    fn a_url_query_password_is_hidden() {
        assert_eq!(
            backend_shown("postgres://u@h:5/db?password=s3cret"),
            "postgres://***@h:5/db?password=***"
        );
        assert_eq!(
            backend_shown("postgresql://h/db?sslmode=disable&password=a%26b&user=u#x"),
            "postgresql://h/db?sslmode=disable&password=***&user=u#x"
        );
    }

    #[test]
    fn a_connection_string_is_not_read_as_a_url() {
        // A password holding `://`, or a string without the prefix.
        assert_eq!(
            backend_shown("postgres:host=h password=pa://s3cret@x"),
            "postgres:host=h password=***"
        );
        assert_eq!(
            backend_shown("host=db password=s3cret"),
            "host=db password=***"
        );
    }

    #[test]
    fn other_values_are_shown_as_given_but_a_password() {
        assert_eq!(backend_shown("memory"), "memory");
        assert_eq!(backend_shown("postgre:password=x"), "postgre:password=***");
    }
}
