//! The URLs of every resource, as absolute paths with encoded names.
//!
//! Every link to a resource is spelled by one function here, so a resource
//! has one URL everywhere (clients compare link strings).

use coordinate::rest::names::{attempt_segment, encode_segment};
use coordinate::Time;

/// The query template of the work unit query, change and adjust links.
const QUERY_TEMPLATE: &str = "{?name*,status*,previous,limit}";

/// `/namespace/{ns}`
pub fn namespace(ns: &str) -> String {
    format!("/namespace/{}", encode_segment(ns))
}

/// `/namespace/{ns}/worker/{worker}`
pub fn worker(ns: &str, worker: &str) -> String {
    format!("{}/worker/{}", namespace(ns), encode_segment(worker))
}

/// `/namespace/{ns}/work_spec/{spec}`
pub fn work_spec(ns: &str, spec: &str) -> String {
    format!("{}/work_spec/{}", namespace(ns), encode_segment(spec))
}

/// `…/work_spec/{spec}/work_unit/{unit}`
pub fn work_unit(ns: &str, spec: &str, unit: &str) -> String {
    format!("{}/work_unit/{}", work_spec(ns, spec), encode_segment(unit))
}

/// `…/work_unit/{unit}/attempt/{worker}/{start second}[_{id}]`
pub fn attempt(unit_url: &str, worker: &str, start: Time, id: Option<u64>) -> String {
    format!(
        "{unit_url}/attempt/{}/{}",
        encode_segment(worker),
        attempt_segment(start, id)
    )
}

/// The query link of a work spec collection (`work_unit`, `change`, `adjust`).
pub fn query_template(spec_url: &str, collection: &str) -> String {
    format!("{spec_url}/{collection}{QUERY_TEMPLATE}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_encoded_and_dots_too() {
        assert_eq!(
            work_unit("", "-", "my spec"),
            "/namespace/-/work_spec/-LQ/work_unit/-bXkgc3BlYw"
        );
        assert_eq!(worker(".", ".."), "/namespace/-Lg/worker/-Li4");
        let start = coordinate::rest::wire::parse_time("2024-05-06T07:08:09.25Z").unwrap();
        assert_eq!(
            attempt("/u", "host-a.1", start, None),
            "/u/attempt/host-a.1/2024-05-06T07:08:09Z"
        );
        assert_eq!(
            attempt("/u", "w", start, Some(3)),
            "/u/attempt/w/2024-05-06T07:08:09Z_3"
        );
    }
}
