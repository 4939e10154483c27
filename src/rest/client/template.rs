//! Expansion of the URI templates a server publishes: the subset of
//! RFC 6570 the API uses, simple `{var}` path expressions and form-style
//! `{?a*,b,…}` query expressions.
//!
//! Path variables carry names, which get the name encoding before
//! percent-encoding; query values are only percent-encoded (the `previous`
//! value is prepared by the caller). A variable without a value is left
//! out, and a query expression without any value expands to nothing.

use std::borrow::Cow;

use super::super::names::{expand_path_variable, percent_encode};

/// The value of one template variable.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Var<'a> {
    /// A name in a path segment (`{namespace}`, `{spec}`, `{unit}`, `{worker}`).
    Name(&'a str),
    /// A plain text value (query parameters).
    Text(&'a str),
    /// A list, exploded in a query (`?name=a&name=b`); empty means absent.
    List(&'a [String]),
}

/// A template expression that is not of the two supported forms.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unsupported URI template {template:?}")]
pub(crate) struct TemplateError {
    template: String,
}

/// Expands `template` with `vars` (looked up by variable name).
pub(crate) fn expand(template: &str, vars: &[(&str, Var<'_>)]) -> Result<String, TemplateError> {
    let bad = || TemplateError {
        template: template.to_owned(),
    };
    let lookup = |name: &str| vars.iter().find(|(n, _)| *n == name).map(|(_, v)| *v);
    let mut out = String::with_capacity(template.len() + 16);
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let close = after.find('}').ok_or_else(bad)?;
        let expression = &after[..close];
        rest = &after[close + 1..];
        if let Some(query) = expression.strip_prefix('?') {
            expand_query(&mut out, query, lookup);
        } else if expression
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_')
        {
            match lookup(expression) {
                Some(Var::Name(name)) => out.push_str(&expand_path_variable(name)),
                Some(Var::Text(text)) => out.push_str(&percent_encode(text)),
                Some(Var::List(_)) | None => {}
            }
        } else {
            return Err(bad());
        }
    }
    if rest.contains('}') {
        return Err(bad());
    }
    out.push_str(rest);
    Ok(out)
}

/// Appends the form-style query expression with variable list `spec`.
fn expand_query<'a>(out: &mut String, spec: &str, lookup: impl Fn(&str) -> Option<Var<'a>>) {
    let mut separator = '?';
    let mut pair = |out: &mut String, key: &str, value: Cow<'_, str>| {
        out.push(separator);
        separator = '&';
        out.push_str(key);
        out.push('=');
        out.push_str(&value);
    };
    for variable in spec.split(',') {
        let key = variable.trim_end_matches('*');
        match lookup(key) {
            Some(Var::List(items)) => {
                for item in items {
                    pair(out, key, Cow::Owned(percent_encode(item)));
                }
            }
            Some(Var::Text(text)) => pair(out, key, Cow::Owned(percent_encode(text))),
            Some(Var::Name(name)) => pair(out, key, Cow::Owned(expand_path_variable(name))),
            None => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const QUERY: &str = "/ns/work_spec/crawl/work_unit{?name*,status*,previous,limit}";

    #[test]
    fn path_variables_are_name_encoded_then_percent_encoded() {
        let t = "/namespace/{namespace}";
        let cases = [
            ("prod", "/namespace/prod"),
            ("", "/namespace/-"),
            ("my spec", "/namespace/-bXkgc3BlYw"),
            ("job:1", "/namespace/job%3A1"),
            (".", "/namespace/-Lg"),
            ("..", "/namespace/-Li4"),
            ("-c", "/namespace/-LWM"),
        ];
        for (name, want) in cases {
            assert_eq!(expand(t, &[("namespace", Var::Name(name))]).unwrap(), want);
        }
    }

    #[test]
    fn query_lists_explode_and_absent_values_vanish() {
        let names = vec!["a".to_string(), "b b".to_string(), "f+g".to_string()];
        let statuses = vec!["available".to_string()];
        let got = expand(
            QUERY,
            &[
                ("name", Var::List(&names)),
                ("status", Var::List(&statuses)),
                ("limit", Var::Text("5")),
            ],
        )
        .unwrap();
        assert_eq!(
            got,
            "/ns/work_spec/crawl/work_unit?name=a&name=b%20b&name=f%2Bg&status=available&limit=5"
        );
        assert_eq!(expand(QUERY, &[]).unwrap(), "/ns/work_spec/crawl/work_unit");
        let empty: Vec<String> = Vec::new();
        let got = expand(
            QUERY,
            &[("name", Var::List(&empty)), ("previous", Var::Text("é"))],
        )
        .unwrap();
        assert_eq!(got, "/ns/work_spec/crawl/work_unit?previous=%C3%A9");
    }

    #[test]
    fn boolean_query_and_plain_links() {
        let t = "/x/meta{?counts}";
        assert_eq!(
            expand(t, &[("counts", Var::Text("true"))]).unwrap(),
            "/x/meta?counts=true"
        );
        assert_eq!(expand(t, &[]).unwrap(), "/x/meta");
        assert_eq!(expand("/plain/link", &[]).unwrap(), "/plain/link");
    }

    #[test]
    fn malformed_templates_are_errors() {
        for t in ["/a/{unclosed", "/a/b}", "/a/{x y}", "/a/{+path}"] {
            assert!(expand(t, &[]).is_err(), "{t:?}");
        }
    }
}
