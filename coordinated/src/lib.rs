//! `coordinated`: a Coordinate job server.
//!
//! It serves the Coordinate REST API, version 1 — the protocol of the
//! original Coordinate job server, called the reference server below, whose
//! clients work with this one unchanged; `coordinate::rest` holds its wire
//! format — over any [`Backend`](coordinate::Backend), normally with
//! [`Cache`](coordinate::cache::Cache) in front, plus Prometheus metrics
//! (`/metrics`), liveness (`/healthz`) and readiness (`/readyz`).
//!
//! It serves plain HTTP, or HTTPS with the certificate it is given
//! ([`ServerTls`]; `--tls-cert` and `--tls-key`), and may admit only
//! clients with a certificate its authorities signed (`--tls-client-ca`);
//! on `SIGHUP` it reads those files again, to take a renewed certificate
//! ([`tls::reload_on_hangup`]).
//!
//! The binary is configured by [`Config`]; tests and embedding programs
//! build the application with [`router`] and run it with [`serve`]:
//!
//! ```no_run
//! # async fn run() -> std::io::Result<()> {
//! use std::sync::Arc;
//! use coordinate::memory::MemoryBackend;
//!
//! let app = coordinated::router(Arc::new(MemoryBackend::new()), &Default::default());
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! coordinated::serve(listener, app, coordinated::shutdown_signal(), Default::default()).await
//! # }
//! ```
//!
//! # Extensions
//!
//! Beyond the API's version 1, which existing clients use unchanged, the
//! server answers requests those clients never make:
//!
//! * `GET` on a namespace's `workers_url` lists its workers
//!   ([`WorkerList`](coordinate::rest::wire::WorkerList)).
//! * `GET` of a work unit or an attempt with the query `check=false`
//!   answers the document without the fields whose computation is the
//!   expiry check (the status; a unit's active attempt; an attempt's end
//!   and expiration times), and runs no check: reading a unit's or an
//!   attempt's data, meta or start time then expires nothing, as in
//!   process ([`UncheckedWorkUnitDocument`](coordinate::rest::wire::UncheckedWorkUnitDocument),
//!   [`UncheckedAttemptDocument`](coordinate::rest::wire::UncheckedAttemptDocument)).
//!   A `make_attempt` `POST` with that query answers the attempt it made
//!   in that form, so that making an attempt expires nothing either.
//! * A worker `PUT` with `parent_url` (the URL of a worker of any
//!   namespace) makes that worker the parent, unless the body's `parent`
//!   gives another name; `parent` names one of the worker's own namespace
//!   only. So a worker document put back whole keeps its parent, and one
//!   with `parent` changed is read as the API says
//!   ([`WorkerUpdateBody`](coordinate::rest::wire::WorkerUpdateBody)). A
//!   worker document's `parent_url` and `child_urls` then link into the
//!   other namespace, while `parent` carries the bare name. A `PUT` that
//!   sets or clears the parent (any `parent`, the current one and `""`
//!   included, or a non-empty `parent_url`) leaves the worker's active
//!   flag alone, as `set_parent` does in process, whose body over REST
//!   says `"active": false` too; the reference server also deactivates
//!   the worker.
//! * A `make_attempt` body with `work_unit_url` (the URL of a work unit of
//!   any namespace) and empty names makes the attempt on that unit;
//!   `work_spec` and `work_unit` name one of the worker's own namespace
//!   only, and decide when given
//!   ([`MakeAttemptBody`](coordinate::rest::wire::MakeAttemptBody)). Every
//!   attempt's links name its unit in the unit's namespace and its worker
//!   in the worker's. The attempt's own URL lies under its unit's and
//!   names the worker by name alone. Resolving it finds the attempt among
//!   the unit's by a worker of that name, of any namespace, and makes no
//!   worker, where the reference server makes the named worker in the
//!   URL's namespace: for an attempt by a worker of another namespace that
//!   would be an unrelated namesake, and for a URL that names no attempt, a
//!   worker nobody asked for. Attempts of one unit by namesakes are told
//!   apart by the attempt identifier in the URL's last segment; over a
//!   backend without identifiers, two started in the same second share a
//!   URL, which finds the earlier, as the API specifies for one worker.
//! * Every attempt document, whole or in a list, also names what its links
//!   point at: `work_spec_url`, `work_spec_name`, `work_unit_name` and
//!   `worker_name` ([`AttemptNames`](coordinate::rest::wire::AttemptNames)),
//!   so that a client can make handles for them without following the
//!   links.
//! * Every work spec document links `work_unit_select_url`
//!   (`…/work_spec/{spec}/select`): a `POST` there carries a work unit
//!   query in its body instead of the URL, with what to do with the units
//!   it selects: list, delete, or set or adjust their priorities
//!   ([`WorkUnitSelectBody`](coordinate::rest::wire::WorkUnitSelectBody)).
//!   The answers are those of the query URLs, and so are the errors. A
//!   query too long for a URL is then still one request, and so one
//!   atomic operation.
//!
//! # Status codes
//!
//! As the API specifies, with five departures that no client depends on.
//! An unknown path (a trailing slash included) is `404` with an error
//! document (code `error`), where the reference router answers plain text;
//! like a redirect, it does not depend on `Accept`, and comes in the
//! negotiated type or, when `Accept` names none, the v1 type. The other
//! four change only a status (clients read the error document's code,
//! not the status): a bad `status` or `limit` query value is `400`, not
//! `500`; a failure of the backend itself while the path's names are
//! resolved (the database out of reach, say) is `500`, where the reference
//! answers `400` for every failure of that step, since the fault is the
//! server's, not the request's (a proxy's answers it as the next departure
//! says); input over one of the crate's limits
//! (the length of names and worker modes, the nesting and length of data,
//! times and priorities; the values are under `coordinate`'s `# Limits`),
//! a work spec definition it cannot read, or a path segment or query
//! parameter that is not UTF-8 once percent-decoded (names are strings
//! here; a route that reads no query ignores it) is `400` on every route,
//! where the reference has no such check; and a server whose backend is
//! another server of the API (a proxy) answers that server's failures,
//! on any route, as a gateway does: an error document of one of the API's
//! codes that has no typed error (`error`, `panic`, …) with the status it
//! came with (a body over that server's limit stays `413`), `502` when that server cannot be reached or does
//! not answer with the API's documents, `504` when its answer did not
//! come within the client's timeout. The error document's `kind`
//! names the error (`NameTooLong`, `DataTooDeep`, `DataTooLarge`,
//! `ModeTooLong`, `TimeOutOfRange`, `InvalidWorkSpecData`), and its
//! `value`, which the API gives only the two "no such" errors, then
//! carries the error's argument (the limit crossed, say), so that
//! `RestBackend` answers the typed error a backend would; a priority
//! `adjust` would take past the largest float is `ErrBadPriority`. A
//! request body that is not a JSON object is `400`, like any body of the
//! wrong type, and so is one that is not UTF-8 or gives a field the
//! operation reads twice; fields the operation does not read are skipped
//! unread, whatever they hold. A lone surrogate escape (`"\ud800"`), which
//! no Rust string holds, reads as U+FFFD, as in the reference server. A
//! failure of the backend itself answered with a server error is also
//! logged (at `error`, through `tracing`), with the text the error
//! document carries. A request the HTTP layer cannot read as one (a
//! request line with a raw byte that is not ASCII, a target over 65,534
//! bytes, headers over its buffer) never reaches the API: it is answered
//! `400`, `414` or `431` with no body and no `Content-Type`, and the
//! connection closed.

#![forbid(unsafe_code)]
#![warn(missing_docs, missing_debug_implementations)]

pub mod api;
pub mod body_budget;
mod completion;
pub mod config;
pub mod connections;
pub mod documents;
pub mod links;
pub mod metrics;
pub mod negotiate;
pub mod path;
pub mod problem;
pub mod server;
pub mod shown;
pub mod tls;
mod unread_body;

pub use config::Config;
pub use connections::{serve, ConnectionOptions, DEFAULT_MAX_CONNECTIONS};
pub use server::{router, shutdown_signal, ServerOptions, DEFAULT_MAX_BODY_BYTES};
pub use tls::{ServerTls, ServerTlsError};
