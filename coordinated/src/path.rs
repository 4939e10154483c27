//! Request paths: cleaning, routing and the names they carry.
//!
//! The whole path is percent-decoded first (so `job%3A1` is `job:1`, and a
//! `%2F` splits a segment, as in the reference server); a path with empty
//! or dot segments redirects to its cleaned form; then the path's shape
//! picks the resource. The names it carries stay in the name encoding
//! until resolution reaches each one: a path of no known shape is `404`
//! whatever its names, and a badly encoded name does not hide an error
//! about a name before it.

use coordinate::rest::names::{self, percent_encode, NameError};

use crate::problem::Problem;

/// One of the five attempt actions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Extend the lease.
    Renew,
    /// Give the unit up.
    Expire,
    /// Complete successfully.
    Finish,
    /// Complete unsuccessfully.
    Fail,
    /// Complete unsuccessfully, runnable again later.
    Retry,
}

/// Every resource of the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resource {
    /// `/`
    Root,
    /// `/summary`
    Summary,
    /// `/namespace`
    Namespaces,
    /// `/namespace/{namespace}`
    Namespace,
    /// `…/summary`
    NamespaceSummary,
    /// `…/work_spec`
    WorkSpecs,
    /// `…/worker` (`GET` lists the workers, an extension)
    Workers,
    /// `…/worker/{worker}`
    Worker,
    /// `…/worker/{worker}/request_attempts`
    RequestAttempts,
    /// `…/worker/{worker}/make_attempt`
    MakeAttempt,
    /// `…/worker/{worker}/active_attempts`
    ActiveAttempts,
    /// `…/worker/{worker}/all_attempts`
    AllAttempts,
    /// `…/worker/{worker}/child_attempts`
    ChildAttempts,
    /// `…/work_spec/{spec}`
    WorkSpec,
    /// `…/work_spec/{spec}/meta`
    WorkSpecMeta,
    /// `…/work_spec/{spec}/counts`
    WorkSpecCounts,
    /// `…/work_spec/{spec}/change`
    WorkSpecChange,
    /// `…/work_spec/{spec}/adjust`
    WorkSpecAdjust,
    /// `…/work_spec/{spec}/select` (an extension: a work unit query in the body)
    WorkSpecSelect,
    /// `…/work_spec/{spec}/summary`
    WorkSpecSummary,
    /// `…/work_spec/{spec}/work_unit`
    WorkUnits,
    /// `…/work_unit/{unit}`
    WorkUnit,
    /// `…/work_unit/{unit}/attempts`
    UnitAttempts,
    /// `…/work_unit/{unit}/num-attempts`
    NumAttempts,
    /// `…/work_unit/{unit}/attempt` (no methods)
    AttemptCollection,
    /// `…/work_unit/{unit}/attempt/{worker}/{start}`
    Attempt,
    /// `…/attempt/{worker}/{start}/{action}`
    AttemptAction(Action),
}

impl Resource {
    /// The route template, as a metrics label.
    pub fn template(self) -> &'static str {
        use Resource::*;
        const NS: &str = "/namespace/{namespace}";
        match self {
            Root => "/",
            Summary => "/summary",
            Namespaces => "/namespace",
            Namespace => NS,
            NamespaceSummary => "/namespace/{namespace}/summary",
            WorkSpecs => "/namespace/{namespace}/work_spec",
            Workers => "/namespace/{namespace}/worker",
            Worker => "/namespace/{namespace}/worker/{worker}",
            RequestAttempts => "/namespace/{namespace}/worker/{worker}/request_attempts",
            MakeAttempt => "/namespace/{namespace}/worker/{worker}/make_attempt",
            ActiveAttempts => "/namespace/{namespace}/worker/{worker}/active_attempts",
            AllAttempts => "/namespace/{namespace}/worker/{worker}/all_attempts",
            ChildAttempts => "/namespace/{namespace}/worker/{worker}/child_attempts",
            WorkSpec => "/namespace/{namespace}/work_spec/{spec}",
            WorkSpecMeta => "/namespace/{namespace}/work_spec/{spec}/meta",
            WorkSpecCounts => "/namespace/{namespace}/work_spec/{spec}/counts",
            WorkSpecChange => "/namespace/{namespace}/work_spec/{spec}/change",
            WorkSpecAdjust => "/namespace/{namespace}/work_spec/{spec}/adjust",
            WorkSpecSelect => "/namespace/{namespace}/work_spec/{spec}/select",
            WorkSpecSummary => "/namespace/{namespace}/work_spec/{spec}/summary",
            WorkUnits => "/namespace/{namespace}/work_spec/{spec}/work_unit",
            WorkUnit => "/namespace/{namespace}/work_spec/{spec}/work_unit/{unit}",
            UnitAttempts => "/namespace/{namespace}/work_spec/{spec}/work_unit/{unit}/attempts",
            NumAttempts => "/namespace/{namespace}/work_spec/{spec}/work_unit/{unit}/num-attempts",
            AttemptCollection => {
                "/namespace/{namespace}/work_spec/{spec}/work_unit/{unit}/attempt"
            }
            Attempt => "/namespace/{namespace}/work_spec/{spec}/work_unit/{unit}/attempt/{worker}/{start}",
            AttemptAction(Action::Renew) => "/namespace/{namespace}/work_spec/{spec}/work_unit/{unit}/attempt/{worker}/{start}/renew",
            AttemptAction(Action::Expire) => "/namespace/{namespace}/work_spec/{spec}/work_unit/{unit}/attempt/{worker}/{start}/expire",
            AttemptAction(Action::Finish) => "/namespace/{namespace}/work_spec/{spec}/work_unit/{unit}/attempt/{worker}/{start}/finish",
            AttemptAction(Action::Fail) => "/namespace/{namespace}/work_spec/{spec}/work_unit/{unit}/attempt/{worker}/{start}/fail",
            AttemptAction(Action::Retry) => "/namespace/{namespace}/work_spec/{spec}/work_unit/{unit}/attempt/{worker}/{start}/retry",
        }
    }
}

/// A name segment of a path, percent-decoded but still in the name
/// encoding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segment(String);

impl Segment {
    /// The name: `400` if the segment is not in the name encoding.
    pub fn decode(&self) -> Result<String, Problem> {
        names::decode_segment(&self.0).map_err(|e| Problem::bad_request(e.to_string()))
    }
}

/// The names a path carries, each still encoded.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PathNames {
    /// The namespace, if the path names one.
    pub namespace: Option<Segment>,
    /// The work spec, if the path names one.
    pub work_spec: Option<Segment>,
    /// The work unit, if the path names one.
    pub work_unit: Option<Segment>,
    /// The worker, if the path names one.
    pub worker: Option<Segment>,
    /// The attempt's start-second text, if the path names an attempt.
    pub start: Option<Segment>,
}

/// A routed request path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// Which resource.
    pub resource: Resource,
    /// The names along the path.
    pub names: PathNames,
}

/// Where a request path leads.
#[derive(Debug, PartialEq, Eq)]
pub enum Target {
    /// A resource of the API.
    Route(Route),
    /// A non-canonical path: redirect to this (encoded) path.
    Redirect(String),
    /// No such resource.
    NotFound,
}

/// Cleans a decoded path as `path.Clean` does, keeping a trailing slash.
fn clean(path: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    for segment in path.split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                out.pop();
            }
            s => out.push(s),
        }
    }
    let mut cleaned = format!("/{}", out.join("/"));
    if path.ends_with('/') && cleaned != "/" {
        cleaned.push('/');
    }
    cleaned
}

/// A path segment that carries a name, kept encoded until it is resolved.
fn name(segment: &str) -> Segment {
    Segment(segment.to_owned())
}

/// Routes a raw (still percent-encoded) request path: `400` only if it is
/// not percent-encoded properly.
pub fn route(raw_path: &str) -> Result<Target, Problem> {
    let path = names::percent_decode(raw_path).map_err(|e| match e {
        NameError::NotUtf8(_) => Problem::bad_request(format!(
            "the path {raw_path:?} is not UTF-8 once percent-decoded"
        )),
        e => Problem::bad_request(e.to_string()),
    })?;
    if !path.starts_with('/') {
        return Ok(Target::NotFound);
    }
    let cleaned = clean(&path);
    if cleaned != path {
        let encoded: Vec<String> = cleaned.split('/').map(percent_encode).collect();
        return Ok(Target::Redirect(encoded.join("/")));
    }
    if path == "/" {
        return Ok(found(Resource::Root, PathNames::default()));
    }
    let segments: Vec<&str> = path[1..].split('/').collect();
    if segments.contains(&"") {
        // Only a trailing slash can leave an empty segment after cleaning.
        return Ok(Target::NotFound);
    }
    let mut names = PathNames::default();
    use Resource::*;
    let resource = match segments.as_slice() {
        ["summary"] => Summary,
        ["namespace"] => Namespaces,
        ["namespace", ns, rest @ ..] => {
            names.namespace = Some(name(ns));
            match rest {
                [] => Namespace,
                ["summary"] => NamespaceSummary,
                ["work_spec"] => WorkSpecs,
                ["worker"] => Workers,
                ["worker", worker, rest @ ..] => {
                    let resource = match rest {
                        [] => Worker,
                        ["request_attempts"] => RequestAttempts,
                        ["make_attempt"] => MakeAttempt,
                        ["active_attempts"] => ActiveAttempts,
                        ["all_attempts"] => AllAttempts,
                        ["child_attempts"] => ChildAttempts,
                        _ => return Ok(Target::NotFound),
                    };
                    names.worker = Some(name(worker));
                    resource
                }
                ["work_spec", spec, rest @ ..] => {
                    names.work_spec = Some(name(spec));
                    match rest {
                        [] => WorkSpec,
                        ["meta"] => WorkSpecMeta,
                        ["counts"] => WorkSpecCounts,
                        ["change"] => WorkSpecChange,
                        ["adjust"] => WorkSpecAdjust,
                        ["select"] => WorkSpecSelect,
                        ["summary"] => WorkSpecSummary,
                        ["work_unit"] => WorkUnits,
                        ["work_unit", unit, rest @ ..] => {
                            let resource = match rest {
                                [] => WorkUnit,
                                ["attempts"] => UnitAttempts,
                                ["num-attempts"] => NumAttempts,
                                ["attempt"] => AttemptCollection,
                                ["attempt", _, _] => Attempt,
                                ["attempt", _, _, action] => AttemptAction(match *action {
                                    "renew" => Action::Renew,
                                    "expire" => Action::Expire,
                                    "finish" => Action::Finish,
                                    "fail" => Action::Fail,
                                    "retry" => Action::Retry,
                                    _ => return Ok(Target::NotFound),
                                }),
                                _ => return Ok(Target::NotFound),
                            };
                            names.work_unit = Some(name(unit));
                            if let ["attempt", worker, start, ..] = rest {
                                names.worker = Some(name(worker));
                                names.start = Some(name(start));
                            }
                            resource
                        }
                        _ => return Ok(Target::NotFound),
                    }
                }
                _ => return Ok(Target::NotFound),
            }
        }
        _ => return Ok(Target::NotFound),
    };
    Ok(found(resource, names))
}

fn found(resource: Resource, names: PathNames) -> Target {
    Target::Route(Route { resource, names })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn routed(path: &str) -> Route {
        match route(path) {
            Ok(Target::Route(r)) => r,
            other => panic!("{path}: {other:?}"),
        }
    }

    fn decoded(segment: &Option<Segment>) -> Option<String> {
        segment.as_ref().and_then(|s| s.decode().ok())
    }

    #[test]
    fn routes_and_names() {
        assert_eq!(routed("/").resource, Resource::Root);
        let r = routed("/namespace/-/work_spec/-LQ/work_unit/-bXkgc3BlYw");
        assert_eq!(r.resource, Resource::WorkUnit);
        assert_eq!(decoded(&r.names.namespace).as_deref(), Some(""));
        assert_eq!(decoded(&r.names.work_spec).as_deref(), Some("-"));
        assert_eq!(decoded(&r.names.work_unit).as_deref(), Some("my spec"));
        let r = routed("/namespace/job%3A1/worker/new%20ns/all_attempts");
        assert_eq!(r.resource, Resource::AllAttempts);
        assert_eq!(decoded(&r.names.namespace).as_deref(), Some("job:1"));
        assert_eq!(decoded(&r.names.worker).as_deref(), Some("new ns"));
        let r =
            routed("/namespace/p/work_spec/s/work_unit/u/attempt/w/2024-05-06T07:08:09Z/finish");
        assert_eq!(r.resource, Resource::AttemptAction(Action::Finish));
        assert_eq!(
            decoded(&r.names.start).as_deref(),
            Some("2024-05-06T07:08:09Z")
        );
        assert_eq!(decoded(&r.names.worker).as_deref(), Some("w"));
    }

    #[test]
    fn a_path_not_utf8_once_decoded_is_named_as_the_path() {
        let message = |path| match route(path) {
            Err(problem) => problem.document.message,
            other => panic!("{path}: {other:?}"),
        };
        assert_eq!(
            message("/namespace/%FF"),
            r#"the path "/namespace/%FF" is not UTF-8 once percent-decoded"#
        );
        assert!(message("/namespace/%F").contains("percent-encoding"));
    }

    #[test]
    fn unknown_paths_and_trailing_slashes_are_not_found() {
        for path in [
            "/namespace/",
            "/namespace/-/",
            "/nope",
            "/namespace/a/work_spec/b/bogus",
            "/namespace/a%2Fb",
            "/namespace/x/work_spec/s/work_unit/u/attempt/w/t/jump",
            "relative",
            // The shape is checked before any name is decoded.
            "/namespace/-!!/bogus",
            "/namespace/-!!/work_spec/-!!/work_unit/-!!/attempt/-!!",
            "/namespace/-!!/worker/-!!/jump",
        ] {
            assert_eq!(route(path).ok(), Some(Target::NotFound), "{path}");
        }
    }

    #[test]
    fn non_canonical_paths_redirect() {
        assert_eq!(
            route("//namespace").ok(),
            Some(Target::Redirect("/namespace".into()))
        );
        assert_eq!(
            route("/namespace/./x").ok(),
            Some(Target::Redirect("/namespace/x".into()))
        );
        assert_eq!(
            route("/namespace/a/../b/").ok(),
            Some(Target::Redirect("/namespace/b/".into()))
        );
        assert_eq!(
            route("/namespace/%2E%2E").ok(),
            Some(Target::Redirect("/".into()))
        );
    }

    #[test]
    fn bad_percent_encodings_are_bad_requests() {
        for path in [
            "/namespace/%FF",
            "/namespace/%",
            "/namespace/%4",
            "/namespace/%zz/worker/w",
            "/namespace/a%2/work_spec",
        ] {
            let err = route(path).err().map(|p| p.status.as_u16());
            assert_eq!(err, Some(400), "{path}");
        }
    }

    #[test]
    fn bad_name_encodings_route_and_fail_when_decoded() {
        for (path, bad) in [
            ("/namespace/-!!", "-!!"),
            ("/namespace/-__4/summary", "-__4"),
            ("/namespace/n/work_spec/s/work_unit/-!!", "-!!"),
        ] {
            let names = routed(path).names;
            let last = [
                names.namespace,
                names.work_spec,
                names.work_unit,
                names.worker,
                names.start,
            ]
            .into_iter()
            .flatten()
            .last();
            assert_eq!(last, Some(Segment(bad.to_owned())), "{path}");
            let status = last.and_then(|s| s.decode().err()).map(|p| p.status);
            assert_eq!(status.map(|s| s.as_u16()), Some(400), "{path}");
        }
    }
}
