//! The HTTP server: the API, `/metrics`, `/healthz` and `/readyz` behind
//! request tracking, a per-request timeout and panic recovery, served until
//! a shutdown signal and then drained within a deadline.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::body::HttpBody as _;
use axum::extract::{Request, State};
use axum::http::{header, Method, StatusCode, Version};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use axum::{Extension, Json, Router};
use coordinate::rest::wire::{codes, ErrorDocument};
use coordinate::rules::limits::MAX_DATA_BYTES;
use coordinate::Backend;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::trace::{DefaultMakeSpan, DefaultOnResponse, TraceLayer};
use tracing::Level;

use crate::api::{self, Api, BodyArrival, RouteTemplate};
use crate::connections::Peer;
use crate::metrics::{self, CacheStatsFn, MetricsState, PoolStatusFn};
use crate::negotiate::negotiated_or_v1;
use crate::problem::Problem;
use crate::unread_body;

/// The default bound on a request body, 32 MiB: it holds any data map
/// within [`MAX_DATA_BYTES`] with the request around it, in the longest
/// form a client writes, JSON whose `<`, `>` and `&` are escaped (six
/// bytes each, as some encoders write them for HTML's sake), up to six
/// times the compact JSON. Escaped non-ASCII text and the base64 CBOR form
/// take at most three times.
pub const DEFAULT_MAX_BODY_BYTES: usize = 8 * MAX_DATA_BYTES;

/// Everything about the server but its backend and address.
#[derive(Clone)]
pub struct ServerOptions {
    /// Longest time one request may take: then it is answered `408` if its
    /// body was still arriving, else `503`.
    pub request_timeout: Duration,
    /// Largest request body accepted (default [`DEFAULT_MAX_BODY_BYTES`]);
    /// bodies being read share a [`BodyBudget`](crate::body_budget::BodyBudget)
    /// of eight times that.
    pub max_body_bytes: usize,
    /// Log every request through `tracing`.
    pub log_requests: bool,
    /// How long `/readyz` waits for the backend.
    pub readiness_timeout: Duration,
    /// The cache's counters for `/metrics`, when the cache is on.
    pub cache_stats: Option<CacheStatsFn>,
    /// The connection pool's state for `/metrics`, when the backend is
    /// PostgreSQL.
    pub pool_status: Option<PoolStatusFn>,
}

impl Default for ServerOptions {
    fn default() -> Self {
        ServerOptions {
            request_timeout: Duration::from_secs(30),
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            log_requests: false,
            readiness_timeout: Duration::from_secs(2),
            cache_stats: None,
            pool_status: None,
        }
    }
}

impl std::fmt::Debug for ServerOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerOptions")
            .field("request_timeout", &self.request_timeout)
            .field("max_body_bytes", &self.max_body_bytes)
            .field("log_requests", &self.log_requests)
            .field("readiness_timeout", &self.readiness_timeout)
            .field("cache", &self.cache_stats.is_some())
            .field("pool", &self.pool_status.is_some())
            .finish()
    }
}

/// The whole application over `backend`, to be served at the root of its
/// host: the links in its documents are absolute paths from `/`, so a
/// program that nests it under a path prefix would hand out links outside
/// that prefix.
pub fn router(backend: Arc<dyn Backend>, options: &ServerOptions) -> Router {
    let metrics_state = MetricsState {
        handle: metrics::recorder(),
        cache_stats: options.cache_stats.clone(),
        pool_status: options.pool_status.clone(),
    };
    let readiness = Readiness {
        backend: Arc::clone(&backend),
        timeout: options.readiness_timeout,
    };
    // Other methods are `wrong_method`'s, through `any` so that their `405`
    // has no `Allow` header, as the API's has none.
    let app = Router::new()
        .route(
            "/metrics",
            any(wrong_method("/metrics"))
                .get(metrics::render)
                .with_state(metrics_state),
        )
        .route("/healthz", any(wrong_method("/healthz")).get(healthz))
        .route(
            "/readyz",
            any(wrong_method("/readyz"))
                .get(readyz)
                .with_state(readiness),
        )
        .fallback(api::handle)
        .with_state(Api::new(backend, options.max_body_bytes));
    let timeout = options.request_timeout;
    let app = app
        .layer(CatchPanicLayer::custom(panic_response))
        .layer(middleware::from_fn(require_one_host))
        .layer(middleware::from_fn(move |req, next| {
            with_timeout(timeout, req, next)
        }))
        .layer(middleware::from_fn(metrics::track));
    if options.log_requests {
        // One line per request at INFO, the level the binary logs by default.
        app.layer(
            TraceLayer::new_for_http()
                .make_span_with(DefaultMakeSpan::new().level(Level::INFO))
                .on_response(DefaultOnResponse::new().level(Level::INFO)),
        )
    } else {
        app
    }
}

/// Answers when the request takes longer than `timeout`: `408` if its body
/// was still arriving (the client's delay), else `503`, as the negotiated
/// type. The request's future is dropped: backend work it has not started
/// is not made, a change of several backend calls (a unit's or a worker's
/// `PUT`) is still applied whole, and attempts made for it are expired, as
/// when its client goes away.
async fn with_timeout(timeout: Duration, mut request: Request, next: Next) -> Response {
    // A request whose negotiation fails is answered before any timeout.
    let media = negotiated_or_v1(request.headers());
    // Only the methods whose body the API reads wait for one.
    let arrival = matches!(*request.method(), Method::PUT | Method::POST).then(|| {
        let arrival = BodyArrival::default();
        request.extensions_mut().insert(arrival.clone());
        arrival
    });
    // A body the dropped request may have left unread ends the connection.
    let has_body = !request.body().is_end_stream();
    let late = match tokio::time::timeout(timeout, next.run(request)).await {
        Ok(response) => return response,
        Err(_) if arrival.is_some_and(|a| a.is_arriving()) => Problem::generic(
            StatusCode::REQUEST_TIMEOUT,
            format!("the request body did not arrive within {timeout:?}"),
        )
        .respond(media),
        Err(_) => Problem::generic(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("request took longer than {timeout:?}"),
        )
        .respond(media),
    };
    if has_body {
        unread_body::closing(late)
    } else {
        late
    }
}

/// `400` for an HTTP/1.1 request off a connection without a `Host` header
/// or with several, as HTTP/1.1 requires of a server; the API never reads
/// the header. Requests handed to the router by other means (a test's
/// `oneshot`, another server) are not checked.
async fn require_one_host(request: Request, next: Next) -> Response {
    if request.extensions().get::<Peer>().is_some() {
        if let Some(hosts) = hosts_refused(&request) {
            let message = if hosts == 0 {
                "an HTTP/1.1 request must have a Host header".to_owned()
            } else {
                format!("a request must have one Host header, not {hosts}")
            };
            return Problem::bad_request(message).respond(negotiated_or_v1(request.headers()));
        }
    }
    next.run(request).await
}

/// The number of `Host` headers of an HTTP/1.1 request that has other
/// than one, which [`require_one_host`] refuses.
pub(crate) fn hosts_refused<B>(request: &axum::http::Request<B>) -> Option<usize> {
    let hosts = request.headers().get_all(header::HOST).iter().count();
    (request.version() == Version::HTTP_11 && hosts != 1).then_some(hosts)
}

/// An internal crash: `500` with the `panic` code.
fn panic_response(payload: Box<dyn std::any::Any + Send + 'static>) -> Response {
    let text = payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| (*s).to_owned()))
        .unwrap_or_else(|| "internal error".to_owned());
    tracing::error!("request handler panicked: {text}");
    Problem {
        status: StatusCode::INTERNAL_SERVER_ERROR,
        document: Box::new(ErrorDocument {
            error: codes::PANIC.to_owned(),
            message: text.clone(),
            stack: text,
            ..ErrorDocument::default()
        }),
    }
    .into_response()
}

/// The route template [`router`] counts a request for `path` off a
/// connection under, worked out from the path alone, as for one that never
/// started: unless [`hosts_refused`] refuses it, which is unmatched.
pub(crate) fn route_template(path: &str) -> &'static str {
    match path {
        "/metrics" => "/metrics",
        "/healthz" => "/healthz",
        "/readyz" => "/readyz",
        _ => match crate::path::route(path) {
            Ok(crate::path::Target::Route(route)) => route.resource.template(),
            _ => api::UNMATCHED,
        },
    }
}

/// The handler of any method but `GET`/`HEAD` on the operational
/// endpoint at `template`, counted under it.
fn wrong_method(
    template: &'static str,
) -> impl Fn(Method, Option<Extension<RouteTemplate>>) -> std::future::Ready<Response> + Clone {
    move |method, tracked| {
        RouteTemplate::claim(tracked, template);
        std::future::ready(Problem::method_not_allowed(method.as_str()).into_response())
    }
}

/// `GET /healthz`: the process answers.
async fn healthz(template: Option<Extension<RouteTemplate>>) -> Response {
    RouteTemplate::claim(template, "/healthz");
    Json(serde_json::json!({"status": "ok"})).into_response()
}

#[derive(Clone)]
struct Readiness {
    backend: Arc<dyn Backend>,
    timeout: Duration,
}

/// `GET /readyz`: the backend answers a ping in time.
async fn readyz(
    State(r): State<Readiness>,
    template: Option<Extension<RouteTemplate>>,
) -> Response {
    RouteTemplate::claim(template, "/readyz");
    match tokio::time::timeout(r.timeout, r.backend.ping()).await {
        Ok(Ok(_)) => Json(serde_json::json!({"status": "ready"})).into_response(),
        Ok(Err(e)) => {
            Problem::generic(StatusCode::SERVICE_UNAVAILABLE, e.to_string()).into_response()
        }
        Err(_) => Problem::generic(
            StatusCode::SERVICE_UNAVAILABLE,
            "backend did not answer in time",
        )
        .into_response(),
    }
}

/// Completes on SIGINT or SIGTERM received after the call.
///
/// The signals are this process's from the call on, not from the first
/// poll: a server that says where it listens after the call cannot be
/// killed by a signal sent at once instead of stopping. Must be called
/// within a Tokio runtime.
pub fn shutdown_signal() -> impl Future<Output = ()> + Send + 'static {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let streams = [SignalKind::interrupt(), SignalKind::terminate()].map(signal);
        async move {
            match streams {
                [Ok(mut interrupt), Ok(mut term)] => {
                    tokio::select! {
                        _ = interrupt.recv() => {}
                        _ = term.recv() => {}
                    }
                }
                [interrupt, term] => {
                    for e in [interrupt.as_ref().err(), term.as_ref().err()]
                        .into_iter()
                        .flatten()
                    {
                        tracing::warn!("cannot listen for a shutdown signal: {e}");
                    }
                    // What can still be listened for; nothing if neither.
                    match (interrupt, term) {
                        (Ok(mut one), _) | (_, Ok(mut one)) => {
                            one.recv().await;
                        }
                        _ => std::future::pending::<()>().await,
                    }
                }
            }
        }
    }
    #[cfg(not(unix))]
    {
        async {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
