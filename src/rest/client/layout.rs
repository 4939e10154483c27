//! What the API's URL layout tells about an object's URL.

use reqwest::Url;

use crate::rest::names;

/// The namespace an object URL names in the API's URL layout
/// (`…/namespace/{namespace}/{collection}/{name}`, `collection` being
/// `worker` or `work_spec`), decoded; empty for a URL laid out otherwise,
/// which names no namespace this client can tell.
pub(crate) fn namespace_in(url: &Url, collection: &str) -> String {
    let Some(segments) = url.path_segments() else {
        return String::new();
    };
    let tail: Vec<&str> = segments.rev().take(4).collect();
    match tail.as_slice() {
        [_, kind, namespace, "namespace"] if *kind == collection => {
            names::decode_raw_segment(namespace).unwrap_or_default()
        }
        _ => String::new(),
    }
}

/// The spec and unit names a work unit URL in the API's layout gives
/// (`…/work_spec/{spec}/work_unit/{unit}`), decoded; none for a URL laid
/// out otherwise.
pub(crate) fn spec_and_unit_in(url: &Url) -> Option<(String, String)> {
    let segments: Vec<&str> = url.path_segments()?.rev().take(4).collect();
    match segments.as_slice() {
        [unit, "work_unit", spec, "work_spec"] => Some((
            names::decode_raw_segment(spec).ok()?,
            names::decode_raw_segment(unit).ok()?,
        )),
        _ => None,
    }
}

/// Whether `spec` is the URL of the work spec of the work unit at `unit`,
/// a URL in the API's layout (`spec` followed by `/work_unit/{unit}`),
/// each segment compared decoded.
pub(crate) fn is_spec_of_unit(spec: &Url, unit: &Url) -> bool {
    let decoded = |url: &Url| -> Option<Vec<String>> {
        let segments = url.path_segments()?;
        Some(
            segments
                .map(|s| names::decode_raw_segment(s).unwrap_or_else(|_| s.to_owned()))
                .collect(),
        )
    };
    let (Some(spec_path), Some(mut unit_path)) = (decoded(spec), decoded(unit)) else {
        return false;
    };
    unit_path.truncate(unit_path.len().saturating_sub(2));
    spec.origin() == unit.origin() && spec_path == unit_path
}

/// The name a worker URL in the API's layout gives (`…/worker/{name}`),
/// decoded; none for a URL laid out otherwise.
pub(crate) fn worker_in(url: &Url) -> Option<String> {
    let segments: Vec<&str> = url.path_segments()?.rev().take(2).collect();
    match segments.as_slice() {
        [worker, "worker"] => names::decode_raw_segment(worker).ok(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ns(url: &str, collection: &str) -> String {
        namespace_in(&Url::parse(url).expect("a test URL"), collection)
    }

    #[test]
    fn the_namespace_comes_from_the_url_decoded() {
        assert_eq!(ns("http://h/namespace/prod/worker/w", "worker"), "prod");
        assert_eq!(
            ns("http://h/mount/namespace/a%20b/worker/w", "worker"),
            "a b"
        );
        assert_eq!(
            ns("http://h/namespace/prod/work_spec/s", "work_spec"),
            "prod"
        );
        // A name the API encodes (here one starting with `-`).
        let encoded = names::encode_segment("-x");
        let url = format!("http://h/namespace/{encoded}/work_spec/s");
        assert_eq!(ns(&url, "work_spec"), "-x");
    }

    #[test]
    fn unit_and_worker_urls_give_their_names_decoded() {
        let url = |text| Url::parse(text).expect("a test URL");
        let unit = url("http://h/namespace/p/work_spec/a%20b/work_unit/-LQ");
        assert_eq!(
            spec_and_unit_in(&unit),
            Some(("a b".to_owned(), "-".to_owned()))
        );
        assert_eq!(spec_and_unit_in(&url("http://h/units/u")), None);
        assert_eq!(
            worker_in(&url("http://h/namespace/p/worker/w%3A1")),
            Some("w:1".to_owned())
        );
        assert_eq!(worker_in(&url("http://h/namespace/p/workers/w")), None);
    }

    #[test]
    fn a_units_spec_is_its_url_less_two_segments() {
        let url = |text| Url::parse(text).expect("a test URL");
        let unit = url("http://h/m/namespace/p/work_spec/-LQ/work_unit/u");
        let spec_of = |text| is_spec_of_unit(&url(text), &unit);
        assert!(spec_of("http://h/m/namespace/p/work_spec/-LQ"));
        // The same name, encoded otherwise.
        assert!(spec_of("http://h/m/namespace/p/work_spec/%2DLQ"));
        assert!(!spec_of("http://h/m/namespace/q/work_spec/-LQ"));
        assert!(!spec_of("http://h/namespace/p/work_spec/-LQ"));
        assert!(!spec_of("http://other/m/namespace/p/work_spec/-LQ"));
    }

    #[test]
    fn a_url_laid_out_otherwise_names_no_namespace() {
        assert_eq!(ns("http://h/workers/w", "worker"), "");
        assert_eq!(ns("http://h/namespace/prod/work_spec/w", "worker"), "");
        assert_eq!(ns("http://h/namespace/prod/worker/w", "work_spec"), "");
        let url = "http://h/namespace/prod/worker/w/active_attempts";
        assert_eq!(ns(url, "worker"), "");
        let url = "http://h/namespace/p/work_spec/s/work_unit/u";
        assert_eq!(ns(url, "work_spec"), "");
    }
}
