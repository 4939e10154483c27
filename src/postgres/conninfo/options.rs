//! The libpq options of a connection string that the driver lacks, taken
//! out before it reads the rest.
//!
//! The driver knows `sslmode` `disable`, `prefer` and `require` only, and
//! refuses every option it does not know, `sslrootcert`, `sslcert`,
//! `sslkey` and `passfile` among them. Both
//! forms of connection string are read here as the driver reads them — a
//! URL's query (`?k=v&…`, percent-encoded) or `key=value` pairs separated by
//! white space, a value quoted in `'…'` or not, `\` escaping the character
//! after it — and these options are cut out of the string handed on.

use std::borrow::Cow;
use std::ops::Range;

use percent_encoding::percent_decode_str;

use crate::postgres::PostgresError;

/// A value of `sslmode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    Disable,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

impl Mode {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Mode::Disable => "disable",
            Mode::Prefer => "prefer",
            Mode::Require => "require",
            Mode::VerifyCa => "verify-ca",
            Mode::VerifyFull => "verify-full",
        }
    }

    fn named(name: &str) -> Result<Mode, PostgresError> {
        Ok(match name {
            "disable" => Mode::Disable,
            "prefer" => Mode::Prefer,
            "require" => Mode::Require,
            "verify-ca" => Mode::VerifyCa,
            "verify-full" => Mode::VerifyFull,
            _ => {
                return Err(PostgresError::Tls(format!(
                    "sslmode={name} is not supported: use disable, prefer, require, verify-ca \
                     or verify-full"
                )))
            }
        })
    }
}

/// The options a connection string gave that the driver lacks; each
/// `None` when absent.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Options {
    /// `sslmode`.
    pub(crate) mode: Option<Mode>,
    /// `sslrootcert`: a file of PEM certificates of the authorities trusted
    /// to sign the server's.
    pub(crate) root_cert: Option<String>,
    /// `sslcert`: a file of the client's PEM certificate (then any
    /// intermediates), shown to a server that asks for one.
    pub(crate) cert: Option<String>,
    /// `sslkey`: a file of `sslcert`'s PEM private key.
    pub(crate) key: Option<String>,
    /// `passfile`: the password file, in place of `PGPASSFILE`'s or
    /// `~/.pgpass` (empty: in place of `PGPASSFILE`'s only).
    pub(crate) passfile: Option<String>,
}

/// `conninfo` without the options the driver lacks, and those options; the last of an
/// option given twice counts, as for the driver's options.
pub(crate) fn take(conninfo: &str) -> Result<(Cow<'_, str>, Options), PostgresError> {
    let mut options = Options::default();
    let rest = if conninfo.starts_with("postgres://") || conninfo.starts_with("postgresql://") {
        from_url(conninfo, &mut options)?
    } else {
        from_pairs(conninfo, &mut options)?
    };
    Ok((rest, options))
}

/// Notes `key`'s `value` if it is an option the driver lacks; answers
/// whether it was.
fn note(options: &mut Options, key: &str, value: String) -> Result<bool, PostgresError> {
    match key {
        "sslmode" => options.mode = Some(Mode::named(&value)?),
        // An empty file name is none, as for libpq.
        "sslrootcert" => options.root_cert = Some(value).filter(|v| !v.is_empty()),
        "sslcert" => options.cert = Some(value).filter(|v| !v.is_empty()),
        "sslkey" => options.key = Some(value).filter(|v| !v.is_empty()),
        // Kept empty: an empty one leaves the environment's unread.
        "passfile" => options.passfile = Some(value),
        _ => return Ok(false),
    }
    Ok(true)
}

fn from_url<'a>(url: &'a str, options: &mut Options) -> Result<Cow<'a, str>, PostgresError> {
    // As the driver reads it: the user name and password end at the first
    // `@`, and may hold a `?`.
    let after_credentials = url.find('@').unwrap_or(0);
    let Some(start) = url[after_credentials..].find('?') else {
        return Ok(Cow::Borrowed(url));
    };
    let (base, query) = (
        &url[..after_credentials + start],
        &url[after_credentials + start + 1..],
    );
    let mut kept = Vec::new();
    for pair in query.split('&') {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let key = percent_decode_str(key).decode_utf8_lossy();
        let value = percent_decode_str(value).decode_utf8_lossy().into_owned();
        if !note(options, &key, value)? {
            kept.push(pair);
        }
    }
    if kept.len() == query.split('&').count() {
        return Ok(Cow::Borrowed(url));
    }
    Ok(Cow::Owned(match kept.is_empty() {
        true => base.to_owned(),
        false => format!("{base}?{}", kept.join("&")),
    }))
}

fn from_pairs<'a>(conninfo: &'a str, options: &mut Options) -> Result<Cow<'a, str>, PostgresError> {
    let mut kept = String::new();
    let mut cut = false;
    let mut pairs = Pairs {
        text: conninfo,
        at: 0,
    };
    loop {
        let from = pairs.at;
        let Some((key, value, span)) = pairs.next_pair() else {
            // The end, or where the string stops being well formed: what
            // is left is handed on for the driver to refuse.
            let tail = &conninfo[from..];
            if !tail.trim().is_empty() {
                kept.push(' ');
                kept.push_str(tail);
            }
            break;
        };
        if note(options, key, value)? {
            cut = true;
        } else {
            kept.push(' ');
            kept.push_str(&conninfo[span]);
        }
    }
    Ok(match cut {
        true => Cow::Owned(kept),
        false => Cow::Borrowed(conninfo),
    })
}

/// The `key=value` pairs of a connection string, each with its span.
struct Pairs<'a> {
    text: &'a str,
    at: usize,
}

impl<'a> Pairs<'a> {
    /// The next pair; `None` at the end, and where the string stops being
    /// well formed.
    fn next_pair(&mut self) -> Option<(&'a str, String, Range<usize>)> {
        self.skip_white_space();
        let start = self.at;
        let key = self.take_while(|c| !c.is_whitespace() && c != '=');
        if key.is_empty() {
            return None;
        }
        self.skip_white_space();
        if !self.eat('=') {
            return None;
        }
        self.skip_white_space();
        let value = if self.eat('\'') {
            let value = self.value(|c| c == '\'');
            self.eat('\'').then_some(value)?
        } else {
            Some(self.value(char::is_whitespace)).filter(|v| !v.is_empty())?
        };
        Some((key, value, start..self.at))
    }

    fn rest(&self) -> &'a str {
        &self.text[self.at..]
    }

    fn skip_white_space(&mut self) {
        self.take_while(char::is_whitespace);
    }

    fn take_while(&mut self, keep: impl Fn(char) -> bool) -> &'a str {
        let rest = self.rest();
        let len = rest.find(|c| !keep(c)).unwrap_or(rest.len());
        self.at += len;
        &rest[..len]
    }

    fn eat(&mut self, wanted: char) -> bool {
        let found = self.rest().starts_with(wanted);
        if found {
            self.at += wanted.len_utf8();
        }
        found
    }

    /// The value up to the first unescaped character `ends` accepts (not
    /// taken) or the end of the string, unescaped.
    fn value(&mut self, ends: impl Fn(char) -> bool) -> String {
        let mut value = String::new();
        let mut chars = self.rest().chars();
        loop {
            let before = chars.as_str();
            match chars.next() {
                Some(c) if ends(c) => {
                    self.at = self.text.len() - before.len();
                    return value;
                }
                Some('\\') => value.extend(chars.next()),
                Some(c) => value.push(c),
                None => {
                    self.at = self.text.len();
                    return value;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn taken(conninfo: &str) -> (String, Options) {
        let (rest, options) = take(conninfo).expect("well formed");
        (rest.into_owned(), options)
    }

    #[test]
    fn a_url_loses_its_tls_options_and_keeps_the_rest() {
        let (rest, options) =
            taken("postgres://u:p%3F@h:5432/db?sslmode=verify-full&application_name=a&sslrootcert=%2Fca%20dir%2Fca.pem");
        assert_eq!(rest, "postgres://u:p%3F@h:5432/db?application_name=a");
        assert_eq!(options.mode, Some(Mode::VerifyFull));
        assert_eq!(options.root_cert.as_deref(), Some("/ca dir/ca.pem"));

        // A `?` in the password is the password's.
        let (rest, options) = taken("postgres://u:p?sslmode=x@h/db?sslmode=require");
        assert_eq!(rest, "postgres://u:p?sslmode=x@h/db");
        assert_eq!(options.mode, Some(Mode::Require));
        let (rest, options) = taken("postgres://u:p?w@h/db");
        assert_eq!(
            (rest.as_str(), options),
            ("postgres://u:p?w@h/db", Options::default())
        );

        let (rest, options) = taken("postgresql://h/db?sslmode=require");
        assert_eq!(
            (rest.as_str(), options.mode),
            ("postgresql://h/db", Some(Mode::Require))
        );
        let (rest, options) = taken("postgres://h/db?connect_timeout=3");
        assert_eq!(
            (rest.as_str(), options),
            ("postgres://h/db?connect_timeout=3", Options::default())
        );
    }

    #[test]
    fn pairs_lose_their_tls_options_quoted_or_escaped() {
        let (rest, options) = taken(
            r"host=h  sslmode = 'verify-ca' user='a b' sslrootcert=/ca\ dir/it\'s.pem dbname=d",
        );
        assert_eq!(rest, " host=h user='a b' dbname=d");
        assert_eq!(options.mode, Some(Mode::VerifyCa));
        assert_eq!(options.root_cert.as_deref(), Some("/ca dir/it's.pem"));

        let (rest, options) = taken(r"sslrootcert='/a \'b\'.pem' host=h");
        assert_eq!(rest, " host=h");
        assert_eq!(options.root_cert.as_deref(), Some("/a 'b'.pem"));
    }

    #[test]
    fn a_client_certificate_and_key_are_taken_from_both_forms() {
        let (rest, options) = taken("host=h sslcert=/c/me.crt user=u sslkey='/c/my key.pem'");
        assert_eq!(rest, " host=h user=u");
        assert_eq!(options.cert.as_deref(), Some("/c/me.crt"));
        assert_eq!(options.key.as_deref(), Some("/c/my key.pem"));
        let (rest, options) = taken("postgres://h/d?sslkey=%2Fk.pem&sslcert=%2Fc.pem&user=u");
        assert_eq!(rest, "postgres://h/d?user=u");
        assert_eq!(options.cert.as_deref(), Some("/c.pem"));
        assert_eq!(options.key.as_deref(), Some("/k.pem"));
    }

    #[test]
    fn an_empty_file_name_is_none_and_unsets_one_given_before() {
        for conninfo in [
            "host=h sslrootcert=/r.pem sslrootcert='' sslcert='' sslkey=''",
            "postgres://h/d?sslrootcert=%2Fr.pem&sslrootcert=&sslcert=&sslkey=",
        ] {
            let (_, options) = taken(conninfo);
            assert_eq!(options, Options::default(), "{conninfo}");
        }
    }

    #[test]
    fn the_last_of_an_option_given_twice_counts() {
        let (_, options) = taken("host=h sslmode=disable sslmode=require");
        assert_eq!(options.mode, Some(Mode::Require));
        let (_, options) = taken("postgres://h/d?sslmode=require&sslmode=prefer");
        assert_eq!(options.mode, Some(Mode::Prefer));
    }

    #[test]
    fn a_malformed_string_is_handed_on_whole_for_the_driver_to_refuse() {
        for conninfo in ["host=h dbname", "host='h", "host= ", "=x"] {
            let (rest, options) = taken(conninfo);
            assert_eq!((rest.as_str(), options), (conninfo, Options::default()));
        }
        // The pairs before the fault are read all the same, and the fault
        // handed on.
        let (rest, options) = taken("sslmode=require host='h");
        assert_eq!(rest, "  host='h");
        assert_eq!(options.mode, Some(Mode::Require));
    }

    #[test]
    fn an_unknown_mode_is_refused_in_words() {
        for conninfo in ["sslmode=allow", "postgres://h/d?sslmode=verify_full"] {
            let error = take(conninfo).expect_err(conninfo).to_string();
            assert!(
                error.contains("disable, prefer, require, verify-ca or verify-full"),
                "{error}"
            );
        }
    }
}
