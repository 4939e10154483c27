//! A `--backend` value as it may be shown (logged, or quoted in an error):
//! without the credentials it may carry.

/// What stands in for a hidden credential.
const HIDDEN: &str = "***";

/// `backend` with its credentials hidden: a URL's user information (and,
/// as the client hides it, whatever an unescaped `/`, `?` or `#` in a
/// password spilled past where the authority seems to end: everything
/// between the scheme and the last `@`), or the value of `password` in a
/// `key=value` connection string after a prefix (`postgres:`, or a
/// misspelling of it).
///
/// ```
/// use coordinated::shown::backend_shown;
///
/// assert_eq!(backend_shown("postgres://app:s3cret@db/jobs"), "postgres://***@db/jobs");
/// assert_eq!(
///     backend_shown("postgres:host=db password='s 3' user=app"),
///     "postgres:host=db password=*** user=app"
/// );
/// assert_eq!(backend_shown("memory"), "memory");
/// ```
pub fn backend_shown(backend: &str) -> String {
    if let Some(scheme) = backend.find("://") {
        let start = scheme + 3;
        return match backend[start..].rfind('@') {
            Some(at) => format!("{}{HIDDEN}{}", &backend[..start], &backend[start + at..]),
            None => backend.to_owned(),
        };
    }
    match backend.split_once(':') {
        Some((scheme, settings)) => format!("{scheme}:{}", password_hidden(settings)),
        None => backend.to_owned(),
    }
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
    fn other_values_are_shown_as_given_but_a_password() {
        assert_eq!(backend_shown("memory"), "memory");
        assert_eq!(backend_shown("postgre:password=x"), "postgre:password=***");
    }
}
