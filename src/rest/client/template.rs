//! Expansion of the URI templates a server publishes: the subset of
//! RFC 6570 the API uses, simple `{var}` path expressions and form-style
//! `{?a*,b,…}` query expressions.
//!
//! Path variables carry names, which get the name encoding before
//! percent-encoding; query values are only percent-encoded (the `previous`
//! value is prepared by the caller). A variable without a value is left
//! out, and a query expression without any value expands to nothing. A
//! value the template has no variable for is an error, not dropped: a
//! query whose names or limit a server's template cannot carry would
//! otherwise select, and delete or change, every unit of the spec.

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

impl Var<'_> {
    /// Whether the variable has a value to expand.
    fn is_given(self) -> bool {
        !matches!(self, Var::List(items) if items.is_empty())
    }
}

/// A template the client cannot expand for a request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum TemplateError {
    /// An expression that is not of the two supported forms.
    #[error("unsupported URI template {template:?}")]
    Unsupported { template: String },
    /// A value the request needs, and the template has no variable for.
    #[error("URI template {template:?} has no variable {variable:?}, which the request needs")]
    Lacks { template: String, variable: String },
}

/// Expands `template` with `vars` (looked up by variable name); every
/// given value must have its variable in the template.
pub(crate) fn expand(template: &str, vars: &[(&str, Var<'_>)]) -> Result<String, TemplateError> {
    let bad = || TemplateError::Unsupported {
        template: template.to_owned(),
    };
    let used = std::cell::RefCell::new(vec![false; vars.len()]);
    // A value counts as used only where its kind can be expanded: a list
    // in a path expression would vanish from the request.
    let lookup = |name: &str, expandable: fn(Var<'_>) -> bool| {
        let at = vars.iter().position(|(n, _)| *n == name)?;
        let value = vars[at].1;
        if !expandable(value) {
            return None;
        }
        used.borrow_mut()[at] = true;
        Some(value)
    };
    let mut out = String::with_capacity(template.len() + 16);
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let close = after.find('}').ok_or_else(bad)?;
        let expression = &after[..close];
        rest = &after[close + 1..];
        if let Some(query) = expression.strip_prefix('?') {
            expand_query(&mut out, query, |name| lookup(name, |_| true));
        } else if expression
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_')
        {
            match lookup(expression, |value| !matches!(value, Var::List(_))) {
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
    let used = used.into_inner();
    match vars
        .iter()
        .zip(used)
        .find(|((_, value), used)| value.is_given() && !used)
    {
        Some(((variable, _), _)) => Err(TemplateError::Lacks {
            template: template.to_owned(),
            variable: (*variable).to_owned(),
        }),
        None => Ok(out),
    }
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
    fn a_value_without_its_variable_is_an_error() {
        let names = vec!["a".to_string()];
        let none: Vec<String> = Vec::new();
        let lacks = |t: &str, vars: &[(&str, Var<'_>)], variable: &str| {
            assert_eq!(
                expand(t, vars),
                Err(TemplateError::Lacks {
                    template: t.to_owned(),
                    variable: variable.to_owned(),
                })
            );
        };
        lacks("/s/work_unit", &[("name", Var::List(&names))], "name");
        lacks(
            "/s/work_unit{?name*}",
            &[("limit", Var::Text("5"))],
            "limit",
        );
        lacks("/n/work_spec", &[("spec", Var::Name("x"))], "spec");
        // A list has no path form: a `{name}` segment cannot carry it.
        lacks(
            "/s/work_unit/{name}",
            &[("name", Var::List(&names))],
            "name",
        );
        // An empty list is no value.
        assert_eq!(
            expand("/s/work_unit{?limit}", &[("name", Var::List(&none))]).unwrap(),
            "/s/work_unit"
        );
    }

    #[test]
    fn malformed_templates_are_errors() {
        for t in ["/a/{unclosed", "/a/b}", "/a/{x y}", "/a/{+path}"] {
            assert!(expand(t, &[]).is_err(), "{t:?}");
        }
    }
}
