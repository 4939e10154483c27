//! The REST API: one handler that routes, negotiates, resolves the path's
//! names, reads the body and runs the operation, in that order (which
//! decides which error wins: a bad body beats a wrong method).

use std::borrow::Cow;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use coordinate::rest::names::{split_attempt_segment, start_second};
use coordinate::rest::wire::{
    self, codes, AttemptActionBody, AttemptRequestBody, AttemptRequestResult, CountsDocument,
    DeletedDocument, MakeAttemptBody, NamespaceBody, NamespaceList, PriorityBody, SelectAction,
    WorkSpecBody, WorkSpecList, WorkSpecMetaBody, WorkSpecMetaDocument, WorkUnitBody, WorkUnitList,
    WorkUnitSelectBody, WorkUnitUpdateBody, WorkerList, WorkerUpdateBody,
};
use coordinate::rules::limits;
use coordinate::{
    AttemptRef, Backend, Error, NamespaceRef, WorkSpecRef, WorkUnitQuery, WorkUnitRef, WorkerRef,
};
use serde::de::{DeserializeOwned, IgnoredAny};
use serde::Serialize;

use crate::body_budget::{BodyBudget, BodyError, BufferedBody};
use crate::completion::to_completion;
use crate::connections::Peer;
use crate::documents;
use crate::links;
use crate::negotiate::{check_content_type, declared_content_type, negotiated, negotiated_or_v1};
use crate::path::{self, Action, PathNames, Resource, Segment, Target};
use crate::problem::Problem;
use crate::unread_body;
use coordinate::detached::Unclaimed;

/// The route template a request matched, for metrics: a request
/// extension the tracking middleware inserts and the handler sets as soon
/// as it knows its route, so that a request answered by the timeout or the
/// panic handler, or dropped when its client went away, still counts under
/// it.
#[derive(Debug, Clone, Default)]
pub struct RouteTemplate(Arc<OnceLock<&'static str>>);

impl RouteTemplate {
    /// Records `template`; the first one set stays.
    pub fn set(&self, template: &'static str) {
        // A second route for one request cannot happen; the first stays.
        let _ = self.0.set(template);
    }

    /// Sets `template` on the request's template, if it is tracked.
    pub fn claim(tracked: Option<Extension<RouteTemplate>>, template: &'static str) {
        if let Some(Extension(tracked)) = tracked {
            tracked.set(template);
        }
    }

    /// The template set, or [`UNMATCHED`].
    pub fn get(&self) -> &'static str {
        self.0.get().copied().unwrap_or(UNMATCHED)
    }
}

/// The template recorded for paths that match no resource.
pub const UNMATCHED: &str = "unmatched";

/// Whether a request's body is being waited for, shared between the
/// request timeout (which answers `408` rather than `503` while it is) and
/// the body's reader; and whether the client hung up before it was whole.
#[derive(Debug, Clone, Default)]
pub struct BodyArrival(Arc<ArrivalState>);

#[derive(Debug, Default)]
struct ArrivalState {
    arriving: AtomicBool,
    cut_off: AtomicBool,
}

impl BodyArrival {
    /// True while the body is being read: from the start of the read until
    /// it ends; a read cut off by the timeout stays marked.
    pub fn is_arriving(&self) -> bool {
        self.0.arriving.load(Ordering::Acquire)
    }

    fn set(&self, arriving: bool) {
        self.0.arriving.store(arriving, Ordering::Release);
    }

    fn cut_off(&self) {
        self.0.cut_off.store(true, Ordering::Release);
    }

    /// True once the connection ended before the whole body arrived: the
    /// answer has nobody to go to.
    pub fn was_cut_off(&self) -> bool {
        self.0.cut_off.load(Ordering::Acquire)
    }
}

/// What the API handler needs: the backend and the bodies' bounds.
#[derive(Debug, Clone)]
pub struct Api {
    backend: Arc<dyn Backend>,
    bodies: BodyBudget,
}

impl Api {
    /// The API over `backend`, reading bodies up to `max_body_bytes` each,
    /// within a [`BodyBudget`] for all.
    pub fn new(backend: Arc<dyn Backend>, max_body_bytes: usize) -> Self {
        Api {
            backend,
            bodies: BodyBudget::new(max_body_bytes),
        }
    }
}

/// A successful answer.
enum Reply {
    /// `200` with a body.
    Ok(Vec<u8>),
    /// `201` with `Location` and a body.
    Created(String, Vec<u8>),
    /// `204`.
    NoContent,
}

fn json<T: Serialize>(value: &T) -> Result<Vec<u8>, Problem> {
    serde_json::to_vec(value).map_err(|e| Problem::operation(Error::backend(e)))
}

fn ok<T: Serialize>(value: &T) -> Result<Reply, Problem> {
    json(value).map(Reply::Ok)
}

/// The names a path resolved to.
#[derive(Default)]
struct Resolved {
    namespace: Option<NamespaceRef>,
    work_spec: Option<WorkSpecRef>,
    work_unit: Option<WorkUnitRef>,
    worker: Option<WorkerRef>,
    attempt: Option<AttemptRef>,
}

/// A path component the route guarantees; its absence is a server bug.
fn need<T>(value: Option<T>, what: &str) -> Result<T, Problem> {
    value.ok_or_else(|| {
        Problem::generic(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("route has no {what}"),
        )
    })
}

/// Finds the attempt a path names: the first, in creation order, of the
/// unit's attempts by a worker of that name, of any namespace, that
/// started in that second and, when the segment carries an attempt
/// identifier, has it. Any RFC 3339 spelling of the second is accepted.
async fn find_attempt(
    unit: &WorkUnitRef,
    worker: &str,
    segment: &str,
) -> Result<Option<AttemptRef>, Problem> {
    let (start, id) = split_attempt_segment(segment);
    let Ok(wanted) = wire::parse_time(start).map(start_second) else {
        return Ok(None);
    };
    for attempt in unit.attempts().await.map_err(Problem::resolving)? {
        if attempt.worker().name() != worker || (id.is_some() && attempt.id() != id) {
            continue;
        }
        let started = attempt.start_time().await.map_err(Problem::resolving)?;
        if start_second(started) == wanted {
            return Ok(Some(attempt));
        }
    }
    Ok(None)
}

impl Api {
    /// Resolves the path's names in order, each decoded just before it is
    /// looked up, so the first bad name decides the error: namespaces and
    /// workers are created when missing (but not an attempt's worker), a
    /// missing work spec is `404`, a missing unit `400`, a missing attempt
    /// `404`.
    async fn resolve(&self, names: &PathNames) -> Result<Resolved, Problem> {
        let mut r = Resolved::default();
        let Some(ns) = &names.namespace else {
            return Ok(r);
        };
        let ns = self
            .backend
            .namespace(&ns.decode()?)
            .await
            .map_err(Problem::resolving)?;
        if let Some(spec) = &names.work_spec {
            let spec = ns
                .work_spec(&spec.decode()?)
                .await
                .map_err(Problem::resolving)?;
            if let Some(unit) = &names.work_unit {
                r.work_unit = Some(
                    spec.work_unit(&unit.decode()?)
                        .await
                        .map_err(Problem::resolving)?,
                );
            }
            r.work_spec = Some(spec);
        }
        match (&names.worker, &names.start) {
            // An attempt's worker may live in another namespace than its
            // unit, the path's: it is known by name among the unit's
            // attempts, and no worker is made in the path's namespace.
            (Some(worker), Some(start)) => {
                let unit = need(r.work_unit.as_ref(), "work unit")?;
                let attempt = find_attempt(unit, &worker.decode()?, &start.decode()?).await?;
                r.attempt = Some(attempt.ok_or_else(|| Problem::not_found("no such attempt"))?);
            }
            (Some(worker), None) => {
                let worker = ns.worker(&worker.decode()?).await;
                r.worker = Some(worker.map_err(Problem::resolving)?);
            }
            (None, _) => {}
        }
        r.namespace = Some(ns);
        Ok(r)
    }

    /// The answer to an operation that failed because an object was gone
    /// (see [`vanished`]): one the path names may have been deleted after
    /// its name was resolved, or before, by another job server whose delete
    /// this server's cache has not heard of yet. The failed call has dropped
    /// the stale entry, so resolving the names again answers what a request
    /// made after the delete gets: the missing name's `404`/`400`. If every
    /// name resolves (the object was made again, or the error was about
    /// another object, such as one a body names), it stands.
    async fn settle_gone(&self, names: &PathNames, gone: Problem) -> Problem {
        match self.resolve(names).await {
            Err(missing) => missing,
            Ok(_) => gone,
        }
    }

    /// Reads a `PUT`/`POST` body as JSON: `415` unless declared JSON, `413`
    /// beyond the bound, `400` unless valid JSON. `arrival` marks the time
    /// spent waiting for it. A body declared longer than the bound is still
    /// read up to it: a client that sends it whole, without waiting for
    /// `100 Continue`, would otherwise find the connection closed under its
    /// writes and never see the `413`. One that asks for `100 Continue`
    /// first has sent none of it: it is answered `413` at once, and sends
    /// nothing. What is not read of `body` is left in it for
    /// [`unread_body`]: all of it when its headers are refused, the rest of
    /// one over the bound.
    async fn read_body(
        &self,
        headers: &HeaderMap,
        body: &mut Option<Body>,
        arrival: Option<&BodyArrival>,
    ) -> Result<JsonBody, Problem> {
        check_content_type(declared_content_type(headers)?)?;
        let too_large = || {
            Problem::generic(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!(
                    "request body exceeds {} bytes",
                    self.bodies.max_body_bytes()
                ),
            )
        };
        if waits_to_send_more_than(headers, self.bodies.max_body_bytes()) {
            return Err(too_large());
        }
        let mark = |arriving| {
            if let Some(arrival) = arrival {
                arrival.set(arriving);
            }
        };
        mark(true);
        let mut reading = body.take().unwrap_or_default();
        let read = self.bodies.read(&mut reading).await;
        mark(false);
        let read = match read {
            Ok(read) => read,
            Err(BodyError::TooLarge) => {
                *body = Some(reading);
                return Err(too_large());
            }
            Err(BodyError::Read(e)) => {
                let cause = e.into_inner();
                if let (true, Some(arrival)) = (ended_early(&*cause), arrival) {
                    arrival.cut_off();
                }
                return Err(Problem::bad_request("request body could not be read"));
            }
        };
        JsonBody::checked(read)
    }
}

/// Whether the client waits for `100 Continue` before sending a body it
/// declares longer than `limit` bytes.
fn waits_to_send_more_than(headers: &HeaderMap, limit: usize) -> bool {
    let waits = unread_body::waits_for_continue(headers);
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|length| length.to_str().ok()?.parse::<u64>().ok());
    waits && declared.is_some_and(|length| length > u64::try_from(limit).unwrap_or(u64::MAX))
}

/// Whether a body's read failed because the connection ended before the
/// whole body arrived: an end of input or a reset, somewhere in the chain
/// of causes (hyper reports a body cut short as an unexpected end of file).
pub(crate) fn ended_early(cause: &(dyn std::error::Error + 'static)) -> bool {
    use std::io::ErrorKind::{ConnectionAborted, ConnectionReset, UnexpectedEof};
    std::iter::successors(Some(cause), |e| e.source()).any(|e| {
        e.downcast_ref::<std::io::Error>().is_some_and(|e| {
            matches!(
                e.kind(),
                UnexpectedEof | ConnectionReset | ConnectionAborted
            )
        })
    })
}

/// A body that does not decode: `400`, and `DataTooDeep` when it holds
/// data nested deeper than the decoders read, beyond the deepest data map a
/// backend stores, which is the answer to any data over that limit.
fn undecodable(e: serde_json::Error) -> Problem {
    if wire::data::is_too_deep(&e) {
        let too_deep = Error::DataTooDeep {
            limit: limits::MAX_DATA_DEPTH,
        };
        Problem::with_status(StatusCode::BAD_REQUEST, &too_deep)
    } else if wire::data::is_too_large(&e) {
        let too_large = Error::DataTooLarge {
            limit: limits::MAX_DATA_BYTES,
        };
        Problem::with_status(StatusCode::BAD_REQUEST, &too_large)
    } else {
        Problem::bad_request(e.to_string())
    }
}

/// A request body known to be one JSON value, not decoded yet: each
/// operation decodes only the fields it reads, and skips the others without
/// building them, so a body costs about its own size in memory whatever
/// else it carries.
/// It holds its room in the [`BodyBudget`] until dropped.
pub(crate) struct JsonBody(BufferedBody);

impl JsonBody {
    /// `body` if it is UTF-8 text of one JSON object. The check builds
    /// nothing and nests without recursion; escapes, the range of numbers
    /// and the depth of nesting are checked in the fields an operation
    /// reads, so a field the API ignores is ignored whatever it holds.
    ///
    /// Every body is a document, so an object, whether or not the resource
    /// has the method: the body is checked before the method is (serde's
    /// derived decoders would also read an array, field by field in order).
    ///
    /// A lone surrogate escape is read as U+FFFD
    /// ([`wire::with_lone_surrogates_replaced`]).
    fn checked(mut body: BufferedBody) -> Result<Self, Problem> {
        let text = std::str::from_utf8(&body.bytes)
            .map_err(|e| Problem::bad_request(format!("the request body is not UTF-8: {e}")))?;
        serde_json::from_str::<IgnoredAny>(text).map_err(undecodable)?;
        let first = text
            .bytes()
            .find(|b| !matches!(b, b' ' | b'\t' | b'\n' | b'\r'));
        if first != Some(b'{') {
            return Err(not_an_object(first));
        }
        if let Cow::Owned(replaced) = wire::with_lone_surrogates_replaced(&body.bytes) {
            body.bytes = replaced.into();
        }
        Ok(JsonBody(body))
    }
}

/// Decodes a body into the operation's type. A field the operation reads
/// given twice is refused.
fn decode<T: DeserializeOwned>(body: Option<JsonBody>) -> Result<T, Problem> {
    let body = body.ok_or_else(|| not_an_object(None))?;
    serde_json::from_slice(&body.0.bytes).map_err(undecodable)
}

/// A body that is not a JSON object, whose value starts with `first`.
fn not_an_object(first: Option<u8>) -> Problem {
    Problem::bad_request(format!(
        "the request body must be a JSON object, not {}",
        json_kind(first)
    ))
}

/// The kind of a JSON value starting with `first` (none: no body), for
/// messages.
fn json_kind(first: Option<u8>) -> &'static str {
    match first {
        None | Some(b'n') => "null",
        Some(b't' | b'f') => "a boolean",
        Some(b'"') => "a string",
        Some(b'[') => "an array",
        Some(b'{') => "an object",
        Some(_) => "a number",
    }
}

/// A query that cannot be read is a malformed request, `400` (for a bad
/// status or limit the reference server answers `500`; no client depends
/// on it).
fn bad_query(e: wire::QueryError) -> Problem {
    Problem::bad_request(e.to_string())
}

/// The work unit query of a request.
fn query(raw: &str) -> Result<WorkUnitQuery, Problem> {
    wire::parse_work_unit_query(raw).map_err(bad_query)
}

/// Whether a request's query asks for a document without the expiry check.
fn unchecked(raw: &str) -> Result<bool, Problem> {
    wire::parse_unchecked(raw).map_err(bad_query)
}

/// Hands `unanswered` attempts to the answer about to be sent, unless its
/// client has hung up meanwhile (a hand-out can take long without waiting
/// for anything, and so without hyper noticing): then nobody would read of
/// them, so they are expired instead and the answer is
/// [`Problem::client_gone`].
fn claim_unless_gone(unanswered: Unclaimed, peer: Option<&Peer>) -> Result<(), Problem> {
    if peer.is_some_and(Peer::has_hung_up) {
        return Err(Problem::client_gone());
    }
    unanswered.claim();
    Ok(())
}

/// The API handler: every request outside `/metrics`, `/healthz`, `/readyz`.
pub async fn handle(State(api): State<Api>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let mut body = Some(body);
    let response = answer(&api, &parts, &mut body).await;
    match body {
        Some(unread) => unread_body::answer_after(&parts.headers, unread, response).await,
        None => response,
    }
}

/// The answer to a request; takes `body` if it reads it.
async fn answer(api: &Api, parts: &Parts, body: &mut Option<Body>) -> Response {
    // The router answers first, as in the reference server: a redirect or
    // an unknown path does not depend on `Accept`.
    let route = match path::route(parts.uri.path()) {
        Ok(Target::Route(route)) => route,
        Ok(Target::Redirect(to)) => {
            let location = match parts.uri.query() {
                Some(q) => format!("{to}?{q}"),
                None => to,
            };
            return redirect(&location);
        }
        Ok(Target::NotFound) => {
            let problem = Problem::not_found(format!("no resource at {}", parts.uri.path()));
            return problem.respond(negotiated_or_v1(&parts.headers));
        }
        Err(problem) => return problem.respond(negotiated_or_v1(&parts.headers)),
    };
    if let Some(template) = parts.extensions.get::<RouteTemplate>() {
        template.set(route.resource.template());
    }
    let media = match negotiated(&parts.headers) {
        Ok(media) => media,
        Err(problem) => return problem.into_response(),
    };
    let arrival = parts.extensions.get::<BodyArrival>();
    let peer = parts.extensions.get::<Peer>();
    let result = async {
        let resolved = api.resolve(&route.names).await?;
        let body = match parts.method {
            Method::PUT | Method::POST => Some(api.read_body(&parts.headers, body, arrival).await?),
            _ => None,
        };
        let query = parts.uri.query().unwrap_or("");
        match api
            .operate(route.resource, &parts.method, resolved, query, body, peer)
            .await
        {
            Err(problem) if vanished(&problem) => Err(api.settle_gone(&route.names, problem).await),
            done => done,
        }
    }
    .await;
    if arrival.is_some_and(BodyArrival::was_cut_off) {
        return Problem::client_gone().respond(media);
    }
    match result {
        Ok(reply) => respond(reply, media),
        Err(problem) => problem.respond(media),
    }
}

/// Whether an operation failed because an object it reached was gone: a
/// handle's `Gone`, or a spec or unit its name no longer finds (a spec
/// destroyed by another request between the path's resolution and the
/// destroy, say).
fn vanished(problem: &Problem) -> bool {
    [
        codes::GONE,
        codes::NO_SUCH_WORK_SPEC,
        codes::NO_SUCH_WORK_UNIT,
    ]
    .contains(&problem.document.error.as_str())
}

fn redirect(location: &str) -> Response {
    let mut response = StatusCode::MOVED_PERMANENTLY.into_response();
    if let Ok(value) = HeaderValue::from_str(location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    response
}

fn respond(reply: Reply, media: &'static str) -> Response {
    let mut response = match reply {
        Reply::Ok(body) => (StatusCode::OK, body).into_response(),
        Reply::Created(location, body) => {
            let mut response = (StatusCode::CREATED, body).into_response();
            if let Ok(value) = HeaderValue::from_str(&location) {
                response.headers_mut().insert(header::LOCATION, value);
            }
            response
        }
        Reply::NoContent => StatusCode::NO_CONTENT.into_response(),
    };
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(media));
    response
}

impl Api {
    /// Runs the operation `method` names on `resource`; `peer` is asked,
    /// before attempts are handed out, whether anyone awaits them.
    async fn operate(
        &self,
        resource: Resource,
        method: &Method,
        r: Resolved,
        raw_query: &str,
        body: Option<JsonBody>,
        peer: Option<&Peer>,
    ) -> Result<Reply, Problem> {
        use Resource::*;
        // `HEAD` runs the `GET` handler; a refusal names what was asked.
        let asked = method;
        let method = if method == Method::HEAD {
            &Method::GET
        } else {
            method
        };
        let ns_name = r.namespace.as_ref().map(|n| n.name().to_owned());
        let ns_name = ns_name.as_deref().unwrap_or("");
        match (resource, method.as_str()) {
            (Root, "GET") => ok(&documents::root()),
            (Summary, "GET") => ok(&documents::summary(self.backend.summarize().await?)),
            (Namespaces, "GET") => {
                let namespaces = self.backend.namespaces().await?;
                ok(&NamespaceList {
                    namespaces: documents::named_all(namespaces.keys(), links::namespace),
                })
            }
            (Namespaces, "POST") => {
                let body: NamespaceBody = decode(body)?;
                let ns = self.backend.namespace(&body.name).await?;
                let doc = documents::namespace(ns.name());
                Ok(Reply::Created(doc.url.clone(), json(&doc)?))
            }
            (Namespace, "GET") => ok(&documents::namespace(ns_name)),
            (Namespace, "DELETE") => {
                need(r.namespace, "namespace")?.destroy().await?;
                Ok(Reply::NoContent)
            }
            (NamespaceSummary, "GET") => {
                let ns = need(r.namespace, "namespace")?;
                ok(&documents::summary(ns.summarize().await?))
            }
            (WorkSpecs, "GET") => {
                let ns = need(r.namespace, "namespace")?;
                let names = ns.work_spec_names().await?;
                ok(&WorkSpecList {
                    work_specs: documents::named_all(&names, |n| links::work_spec(ns_name, n)),
                })
            }
            (WorkSpecs, "POST") => {
                let body: WorkSpecBody = decode(body)?;
                let data = body
                    .data
                    .ok_or_else(|| Problem::bad_request("Missing data"))?;
                let ns = need(r.namespace, "namespace")?;
                let spec = ns.set_work_spec(data).await.map_err(|e| match e {
                    Error::NoWorkSpecName | Error::BadWorkSpecName => {
                        Problem::with_status(StatusCode::BAD_REQUEST, &e)
                    }
                    e => Problem::operation(e),
                })?;
                let url = links::work_spec(ns_name, spec.name());
                let doc = documents::named(spec.name(), url.clone());
                Ok(Reply::Created(url, json(&doc)?))
            }
            (WorkSpec, "GET") => {
                let spec = need(r.work_spec, "work spec")?;
                ok(&documents::work_spec(ns_name, &*spec).await?)
            }
            (WorkSpec, "PUT") => {
                let body: WorkSpecBody = decode(body)?;
                if let Some(data) = body.data {
                    need(r.work_spec, "work spec")?.set_data(data).await?;
                }
                Ok(Reply::NoContent)
            }
            (WorkSpec, "DELETE") => {
                let spec = need(r.work_spec, "work spec")?;
                need(r.namespace, "namespace")?
                    .destroy_work_spec(spec.name())
                    .await?;
                Ok(Reply::NoContent)
            }
            (WorkSpecMeta, "GET") => {
                let spec = need(r.work_spec, "work spec")?;
                let counts = wire::parse_counts_flag(raw_query).map_err(bad_query)?;
                let meta = spec.meta(counts).await?;
                ok(&WorkSpecMetaDocument::from(meta))
            }
            (WorkSpecMeta, "PUT") => {
                let body: WorkSpecMetaBody = decode(body)?;
                need(r.work_spec, "work spec")?
                    .set_meta(body.into())
                    .await?;
                Ok(Reply::NoContent)
            }
            (WorkSpecCounts, "GET") => {
                let counts = need(r.work_spec, "work spec")?
                    .count_work_unit_status()
                    .await?;
                let doc: CountsDocument = counts
                    .into_iter()
                    .map(|(status, n)| (status.as_str().to_owned(), n))
                    .collect();
                ok(&doc)
            }
            (WorkSpecChange | WorkSpecAdjust, "POST") => {
                let query = query(raw_query)?;
                let body: PriorityBody = decode(body)?;
                if let Some(meta) = body.meta {
                    let spec = need(r.work_spec, "work spec")?;
                    if resource == WorkSpecChange {
                        spec.set_work_unit_priorities(&query, meta.priority).await?;
                    } else {
                        spec.adjust_work_unit_priorities(&query, meta.priority)
                            .await?;
                    }
                }
                Ok(Reply::NoContent)
            }
            (WorkSpecSelect, "POST") => {
                let mut body: WorkUnitSelectBody = decode(body)?;
                let (action, meta) = (body.action, body.meta.take());
                let query = body.into_query().map_err(bad_query)?;
                let spec = need(r.work_spec, "work spec")?;
                match (action, meta) {
                    (SelectAction::List, _) => unit_list(ns_name, &spec, &query).await,
                    (SelectAction::Delete, _) => delete_units(&spec, &query).await,
                    (SelectAction::Change, Some(meta)) => {
                        spec.set_work_unit_priorities(&query, meta.priority).await?;
                        Ok(Reply::NoContent)
                    }
                    (SelectAction::Adjust, Some(meta)) => {
                        spec.adjust_work_unit_priorities(&query, meta.priority)
                            .await?;
                        Ok(Reply::NoContent)
                    }
                    (SelectAction::Change | SelectAction::Adjust, None) => Ok(Reply::NoContent),
                }
            }
            (WorkSpecSummary, "GET") => {
                let spec = need(r.work_spec, "work spec")?;
                ok(&documents::summary(spec.summarize().await?))
            }
            (WorkUnits, "GET") => {
                unit_list(
                    ns_name,
                    &need(r.work_spec, "work spec")?,
                    &query(raw_query)?,
                )
                .await
            }
            (WorkUnits, "DELETE") => {
                delete_units(&need(r.work_spec, "work spec")?, &query(raw_query)?).await
            }
            (WorkUnits, "POST") => {
                let body: WorkUnitBody = decode(body)?;
                let spec = need(r.work_spec, "work spec")?;
                let unit = spec
                    .add_work_unit(
                        &body.name,
                        body.data.unwrap_or_default(),
                        body.meta.map(Into::into).unwrap_or_default(),
                    )
                    .await?;
                let url = links::work_unit(ns_name, spec.name(), unit.name());
                let doc = documents::named(unit.name(), url.clone());
                Ok(Reply::Created(url, json(&doc)?))
            }
            (WorkUnit, "GET") => {
                let unit = need(r.work_unit, "work unit")?;
                if unchecked(raw_query)? {
                    ok(&documents::unchecked_work_unit(ns_name, &*unit).await?)
                } else {
                    ok(&documents::work_unit(ns_name, &*unit).await?)
                }
            }
            (WorkUnit, "PUT") => {
                let body: WorkUnitUpdateBody = decode(body)?;
                let unit = need(r.work_unit, "work unit")?;
                // Checked first: a rejected meta leaves the attempt too.
                let meta = body.meta.map(|m| limits::checked_unit_meta(m.into()));
                let meta = meta.transpose()?;
                let clear = body.active_attempt_url.as_deref()
                    == Some(WorkUnitUpdateBody::CLEAR_ACTIVE_ATTEMPT);
                to_completion(async move {
                    if clear {
                        unit.clear_active_attempt().await?;
                    }
                    if let Some(meta) = meta {
                        unit.set_meta(meta).await?;
                    }
                    Ok(())
                })
                .await?;
                Ok(Reply::NoContent)
            }
            (UnitAttempts, "GET") => {
                let attempts = need(r.work_unit, "work unit")?.attempts().await?;
                ok(&documents::attempt_list(&attempts).await?)
            }
            (NumAttempts, "GET") => ok(&need(r.work_unit, "work unit")?.num_attempts().await?),
            (Attempt, "GET") => {
                let attempt = need(r.attempt, "attempt")?;
                if unchecked(raw_query)? {
                    ok(&documents::unchecked_attempt(&*attempt).await?)
                } else {
                    ok(&documents::attempt(&*attempt).await?)
                }
            }
            (AttemptAction(action), "POST") => {
                let body: AttemptActionBody = decode(body)?;
                let attempt = need(r.attempt, "attempt")?;
                match action {
                    Action::Renew => attempt.renew(body.extend_duration, body.data).await?,
                    Action::Expire => attempt.expire(body.data).await?,
                    Action::Finish => attempt.finish(body.data).await?,
                    Action::Fail => attempt.fail(body.data).await?,
                    Action::Retry => attempt.retry(body.data, body.delay).await?,
                }
                Ok(Reply::NoContent)
            }
            (Workers, "GET") => {
                let workers = need(r.namespace, "namespace")?.workers().await?;
                ok(&WorkerList {
                    workers: documents::named_all(workers.keys(), |n| links::worker(ns_name, n)),
                })
            }
            (Worker, "GET") => {
                let worker = need(r.worker, "worker")?;
                ok(&documents::worker(ns_name, &*worker).await?)
            }
            (Worker, "PUT") => {
                let body: WorkerUpdateBody = decode(body)?;
                let ns = need(r.namespace, "namespace")?;
                let worker = need(r.worker, "worker")?;
                let parent_at = parent_by_url(&body)?;
                let backend = Arc::clone(&self.backend);
                to_completion(async move {
                    update_worker(&*backend, &ns, &worker, parent_at, body).await
                })
                .await?;
                Ok(Reply::NoContent)
            }
            (RequestAttempts, "POST") => {
                let body: AttemptRequestBody = decode(body)?;
                let granted = need(r.worker, "worker")?
                    .request_attempts(&body.into())
                    .await?;
                let unanswered = Unclaimed::new(granted.clone());
                let attempts = documents::granted_attempts(&granted).await?;
                let work_spec_url = granted
                    .first()
                    .filter(|_| !attempts.is_empty())
                    .map(|a| a.work_unit().work_spec())
                    .map(|spec| links::work_spec(spec.namespace_name(), spec.name()));
                let reply = ok(&AttemptRequestResult {
                    work_spec_url,
                    attempts,
                })?;
                claim_unless_gone(unanswered, peer)?;
                Ok(reply)
            }
            (MakeAttempt, "POST") => {
                let body: MakeAttemptBody = decode(body)?;
                // Read first: a query refused after the attempt is made
                // would leave it made.
                let unchecked = unchecked(raw_query)?;
                let ns = need(r.namespace, "namespace")?;
                let unit = unit_to_attempt(&*self.backend, &ns, &body).await?;
                let attempt = need(r.worker, "worker")?
                    .make_attempt(&unit, body.lifetime)
                    .await?;
                let unanswered = Unclaimed::new(vec![Arc::clone(&attempt)]);
                let reply = if unchecked {
                    ok(&documents::unchecked_attempt(&*attempt).await?)
                } else {
                    ok(&documents::attempt(&*attempt).await?)
                }?;
                claim_unless_gone(unanswered, peer)?;
                Ok(reply)
            }
            (ActiveAttempts | AllAttempts | ChildAttempts, "GET") => {
                let worker = need(r.worker, "worker")?;
                let attempts = match resource {
                    ActiveAttempts => worker.active_attempts().await?,
                    AllAttempts => worker.all_attempts().await?,
                    _ => worker.child_attempts().await?,
                };
                ok(&documents::attempt_list(&attempts).await?)
            }
            _ => Err(Problem::method_not_allowed(asked.as_str())),
        }
    }
}

/// The list of the units `query` selects in `spec`.
async fn unit_list(ns: &str, spec: &WorkSpecRef, query: &WorkUnitQuery) -> Result<Reply, Problem> {
    let units = spec.work_units(query).await?;
    ok(&WorkUnitList {
        work_units: documents::named_all(units.keys(), |n| links::work_unit(ns, spec.name(), n)),
    })
}

/// Deletes the units `query` selects in `spec`, answering how many.
async fn delete_units(spec: &WorkSpecRef, query: &WorkUnitQuery) -> Result<Reply, Problem> {
    ok(&DeletedDocument {
        deleted: spec.delete_work_units(query).await?,
    })
}

/// The names a URL of this server (an absolute path or URL), given as the
/// body's `field`, carries for a `resource`; `400` for any other URL.
fn names_in_url(url: &str, field: &str, resource: Resource) -> Result<PathNames, Problem> {
    let uri: axum::http::Uri = url
        .parse()
        .map_err(|_| Problem::bad_request(format!("{field} {url:?} is no URL")))?;
    match path::route(uri.path())? {
        Target::Route(route) if route.resource == resource => Ok(route.names),
        _ => Err(Problem::bad_request(format!(
            "{field} {url:?} names no {resource:?}"
        ))),
    }
}

/// The name a body's URL carries: `400` if it is missing or badly encoded.
fn url_name(
    segment: Option<Segment>,
    field: &str,
    url: &str,
    what: &str,
) -> Result<String, Problem> {
    match segment {
        Some(segment) => segment.decode(),
        None => Err(Problem::bad_request(format!(
            "{field} {url:?} names no {what}"
        ))),
    }
}

/// The namespace and worker names of a `parent_url`.
fn worker_named_by(url: &str) -> Result<(String, String), Problem> {
    let names = names_in_url(url, "parent_url", Resource::Worker)?;
    let name = |segment| url_name(segment, "parent_url", url, "worker");
    Ok((name(names.namespace)?, name(names.worker)?))
}

/// The namespace and name of the parent a worker `PUT` names by
/// `parent_url`: the URL decides when `parent` is absent, or names the
/// worker it names (as in a worker document put back whole, which keeps a
/// parent in another namespace); a `parent` the URL disagrees with
/// decides, as the API reads it. An empty URL is one the client does not
/// know.
fn parent_by_url(body: &WorkerUpdateBody) -> Result<Option<(String, String)>, Problem> {
    let Some(url) = body.parent_url.as_deref().filter(|url| !url.is_empty()) else {
        return Ok(None);
    };
    match body.parent.as_deref() {
        None => worker_named_by(url).map(Some),
        Some(name) => Ok(worker_named_by(url).ok().filter(|(_, named)| named == name)),
    }
}

/// The unit a `make_attempt` body names: by name in the worker's
/// namespace `ns`, or, when both names are empty, by `work_unit_url` in
/// any namespace.
async fn unit_to_attempt(
    backend: &dyn Backend,
    ns: &NamespaceRef,
    body: &MakeAttemptBody,
) -> Result<WorkUnitRef, Problem> {
    // An empty URL is one the client does not know; names given decide.
    let by_url = body.work_spec.is_empty() && body.work_unit.is_empty();
    let Some(url) = body
        .work_unit_url
        .as_deref()
        .filter(|url| by_url && !url.is_empty())
    else {
        let spec = ns.work_spec(&body.work_spec).await?;
        return Ok(spec.work_unit(&body.work_unit).await?);
    };
    let names = names_in_url(url, "work_unit_url", Resource::WorkUnit)?;
    let name = |segment| url_name(segment, "work_unit_url", url, "work unit");
    let (namespace, spec, unit) = (
        name(names.namespace)?,
        name(names.work_spec)?,
        name(names.work_unit)?,
    );
    if namespace == ns.name() {
        return Ok(ns.work_spec(&spec).await?.work_unit(&unit).await?);
    }
    // Only the path's namespace is made if missing: a namespace the body
    // names is looked up, so a refused request leaves none behind.
    let far = backend.namespaces().await?.remove(&namespace);
    let far = far.ok_or(Error::NoSuchWorkSpec { name: spec.clone() })?;
    Ok(far.work_spec(&spec).await?.work_unit(&unit).await?)
}

/// `PUT` on a worker: first the parent (`parent_at`, the namespace and
/// name [`parent_by_url`] reads, sets that worker; else a name different
/// from the current parent's sets that worker of the namespace, `""`
/// clears it), then update (`active: true`) or deactivate an active worker —
/// unless the body has `parent` (`""` included) or `parent_at`: setting or
/// clearing the parent leaves the worker's state alone, as `set_parent`
/// does in process (clients' parent bodies say `active: false`, and
/// `RestBackend`'s `set_parent(None)` sends `"parent": ""`).
/// The update's data and times are checked before anything changes.
async fn update_worker(
    backend: &dyn Backend,
    ns: &NamespaceRef,
    worker: &WorkerRef,
    parent_at: Option<(String, String)>,
    body: WorkerUpdateBody,
) -> Result<(), Error> {
    let zero = wire::zero_time();
    let update = body
        .active
        .then(|| {
            limits::checked_worker_update(
                body.data.unwrap_or_default(),
                body.last_update.unwrap_or(zero),
                body.expiration.unwrap_or(zero),
                &body.mode,
            )
        })
        .transpose()?;
    let names_parent = parent_at.is_some() || body.parent.is_some();
    if let Some((parent_ns, parent)) = parent_at {
        let parent = backend.namespace(&parent_ns).await?.worker(&parent).await?;
        worker.set_parent(Some(&parent)).await?;
    } else if let Some(parent) = body.parent {
        let current = worker.parent().await?;
        // The current parent may be another namespace's namesake; `""`
        // clears any parent, even a worker named `""` (set by URL).
        let unchanged = match &current {
            None => parent.is_empty(),
            Some(p) => !parent.is_empty() && p.name() == parent && p.namespace_name() == ns.name(),
        };
        if !unchanged {
            if parent.is_empty() {
                worker.set_parent(None).await?;
            } else {
                let parent = ns.worker(&parent).await?;
                worker.set_parent(Some(&parent)).await?;
            }
        }
    }
    match update {
        Some((data, now, expiration)) => worker.update(data, now, expiration, &body.mode).await,
        None if !names_parent && worker.active().await? => worker.deactivate().await,
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use coordinate::memory::MemoryBackend;
    use coordinate::rest::wire::ErrorDocument;

    use super::*;

    /// The error document of the request's answer, straight from the
    /// handler (a server sends no body with a `HEAD` answer).
    async fn refusal(method: Method, path: &str) -> (StatusCode, ErrorDocument) {
        let api = Api::new(Arc::new(MemoryBackend::new()), 1 << 10);
        let request = Request::builder()
            .method(method)
            .uri(path)
            .body(Body::empty())
            .expect("a valid request");
        let response = handle(State(api), request).await;
        let status = response.status();
        let body = axum::body::to_bytes(response.into_body(), 1 << 16)
            .await
            .expect("a body");
        let document = serde_json::from_slice(&body).expect("an error document");
        (status, document)
    }

    #[tokio::test]
    async fn a_refused_head_names_head() {
        for path in [
            "/namespace/n/worker/w/make_attempt",
            "/namespace/n/worker/w/request_attempts",
        ] {
            let (status, document) = refusal(Method::HEAD, path).await;
            assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED, "{path}");
            assert_eq!(document.message, "Method HEAD not allowed", "{path}");
        }
    }
}
