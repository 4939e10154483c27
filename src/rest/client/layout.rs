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
