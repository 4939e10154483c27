//! Coordinate: a job-queue model for job servers, with an in-memory and a
//! PostgreSQL backend and a name-identity caching layer.
//!
//! # The model
//!
//! A [`Backend`] holds **namespaces**, each an isolated application. A
//! namespace holds **work specs**: families of jobs, each defined by a JSON
//! map with a `"name"` from which its scheduling [`WorkSpecMeta`] is derived.
//! A work spec holds **work units**, potentially millions: a name, a JSON
//! data map and a [`WorkUnitMeta`] (priority, not-before time). **Workers**
//! ask for work with [`Worker::request_attempts`]; the scheduler picks a spec
//! by priority and weight and hands out **attempts**, each a lease of one
//! unit to one worker that ends finished, failed, retryable or expired.
//! Finishing an attempt can *chain* new units into the spec named by the
//! definition's `"then"`.
//!
//! Every object is reached through a cheap shared handle (`Arc<dyn …>`, see
//! [`NamespaceRef`] and friends). A handle of the memory or PostgreSQL
//! backend names one object: once the object is deleted, the handle answers
//! [`Error::Gone`], even if a new object with the same name appears later.
//! [`Cache`] handles, and the handles of the REST client, name a *name*
//! instead: they act on whatever object has that name now (see [`cache`]).
//!
//! ```
//! use coordinate::memory::MemoryBackend;
//! use coordinate::{data, AttemptRequest, Backend, WorkUnitMeta, WorkUnitStatus};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> coordinate::Result<()> {
//! let backend = MemoryBackend::new();
//! let spec = backend.namespace("app").await?.set_work_spec(data!({"name": "resize"})).await?;
//! let unit = spec.add_work_unit("img-1", data!({"w": 640}), WorkUnitMeta::default()).await?;
//! let worker = backend.namespace("app").await?.worker("host-1").await?;
//! let attempts = worker.request_attempts(&AttemptRequest::default()).await?;
//! attempts[0].finish(None).await?;
//! assert_eq!(unit.status().await?, WorkUnitStatus::Finished);
//! # Ok(())
//! # }
//! ```
//!
//! # Backends
//!
//! - [`MemoryBackend`]: the reference implementation, the embedded
//!   default; everything in one process.
//! - `PostgresBackend` (feature `postgres`): the real deployment,
//!   several job servers sharing one database.
//! - `RestBackend` (feature `rest`): a client of a job server's REST API.
//!
//! Each is re-exported here from its module ([`memory`], `postgres`,
//! `rest::client`), which holds its builder, errors and details.
//!
//! The memory and PostgreSQL backends take an injected [`Clock`]; tests use
//! [`MockClock`] to drive lease expiry, delays and continuous intervals
//! without sleeping. Over REST, times are the server's.
//!
//! # Time
//!
//! Instants are [`Time`] (UTC) and spans of time [`Duration`], a signed
//! span that reads like chrono's `TimeDelta` and converts from a
//! `std::time::Duration` with `.into()`, so leases, renewals and delays can
//! come from either:
//!
//! ```
//! use coordinate::{AttemptRequest, Duration};
//!
//! let request = AttemptRequest {
//!     lifetime: std::time::Duration::from_secs(600).into(),
//!     ..AttemptRequest::units(4)
//! };
//! assert_eq!(request.effective_lifetime(), Duration::minutes(10));
//! ```
//!
//! Durations and their arithmetic saturate instead of panicking; an
//! operation given a span that reaches past the stored time range answers
//! a typed error (see [Limits](#limits)). The behaviour
//! every backend must have is checked by the generic conformance suite
//! (feature `conformance`), which third-party backends can run too.
//!
//! # The cache
//!
//! A job server answers stateless requests ("finish the attempt of unit U
//! in spec S of namespace N"), so every request resolves names to handles,
//! and against a database each resolution is a round trip. The [`cache`]
//! module's `Cache` wraps any backend, implements the same traits, and
//! memoizes namespace, work spec, work unit and worker handles by name
//! ([`Cache`], re-exported here).
//!
//! # Limits
//!
//! Every backend accepts exactly the same input, so every stack gives the
//! same answer. What a caller stores is checked before anything is stored,
//! by the functions of [`rules::limits`]:
//!
//! | What | Limit | Beyond it |
//! |---|---|---|
//! | namespace, work spec, work unit and worker names | at most [`MAX_NAME_BYTES`](rules::limits::MAX_NAME_BYTES) = 1,024 bytes of UTF-8 | [`Error::NameTooLong`]; a lookup finds nothing; a chained output item is skipped |
//! | nesting of data maps (definitions, unit, attempt and worker data) | at most [`MAX_DATA_DEPTH`](rules::limits::MAX_DATA_DEPTH) = 100 levels, the map itself being level 1; a number `-0.0` in a map is stored as `0.0` | [`Error::DataTooDeep`] |
//! | length of data maps (the same), checked once their nesting passes | at most [`MAX_DATA_BYTES`](rules::limits::MAX_DATA_BYTES) = 4 MiB (4,194,304 bytes) of compact JSON, as `serde_json::to_vec` writes it (escapes counted as written, `-0.0` as `0.0`) but for floats, counted in plain notation, as PostgreSQL stores them (`1e300` as 301 digits and `.0`; [`data_len`](rules::limits::data_len)) | [`Error::DataTooLarge`] |
//! | a worker's mode (`update`) | at most [`MAX_MODE_BYTES`](rules::limits::MAX_MODE_BYTES) = 1,024 bytes of UTF-8 | [`Error::ModeTooLong`] |
//! | continuous `interval` (definition and `set_meta`) | `0 ..=` [`MAX_INTERVAL`](rules::limits::MAX_INTERVAL) = 100 years of 365.25 days, whole microseconds | [`Error::InvalidWorkSpecData`] |
//! | every time a caller gives or makes with a duration (`not_before`, worker `update` times, `next_continuous`, leases, renewals, retry and output delays) | [`MIN_TIME`](rules::limits::MIN_TIME) = 0001-01-01T00:00:00Z `..=` [`MAX_TIME`](rules::limits::MAX_TIME) = 9999-12-31T23:59:59.999999Z, whole microseconds (finer parts are dropped; a leap second, 23:59:60.5, is read as 00:00:00.5 of the next minute) | [`Error::TimeOutOfRange`]; a chained output item is skipped |
//! | the clock's now, wherever a backend records it (start, end and expiry times, chained units' times) | whole microseconds, held inside `MIN_TIME ..= MAX_TIME` ([`stored_now`](rules::limits::stored_now)) | — |
//! | work unit priorities (`add_work_unit`, `set_meta`, `set_priority`, `set_work_unit_priorities`, `adjust_work_unit_priorities` and its sums) | finite; `-0.0` is stored as `0.0` | [`Error::BadPriority`], nothing changed |
//! | a work spec's `min_memory_gb` (definition key `min_gb`, and `set_meta`) | finite; `-0.0` is stored as `0.0` | [`Error::InvalidWorkSpecData`] |
//! | attempts one `request_attempts` hands out | at most [`MAX_ATTEMPTS_PER_REQUEST`](rules::limits::MAX_ATTEMPTS_PER_REQUEST) = 1,000, whatever number of units it asks for | fewer are handed out |
//!
//! Why these values: PostgreSQL cannot index a row over about 2,700 bytes,
//! and 1 KiB leaves room for indexes over a name and its parent; its client
//! decodes `jsonb` with serde_json, which reads at most 127 levels, and 100
//! leaves a margin; `jsonb` refuses a string or container over 256 MiB, and
//! `coordinated` reads request bodies up to 32 MiB by default, so 4 MiB of
//! JSON stays far inside the first even in `jsonb`'s longer binary form and
//! fits the second with the request around it even written six times
//! longer (JSON with `<`, `>` and `&` escaped; a worker's update with a mode
//! of 1 KiB, far more than a label needs, included); the time range is
//! the one of RFC 3339 and most languages' date types, well inside both PostgreSQL's
//! `timestamptz` and chrono; priorities and memory figures must order the
//! same in Rust and SQL, where NaN and the sign of zero do not, and JSON
//! carries no NaN or infinity. A request's `available_gb` needs no limit:
//! NaN and any amount not above zero mean the worker did not say, and
//! infinity fits every spec. Depth is checked without recursion and data
//! over the limit is dismantled without recursion, so no input overflows
//! the stack; length is measured once depth has passed, by counting the
//! encoding as it is written and stopping past the limit, so it holds no
//! copy of the data, and only for data that a bound taken while checking
//! depth cannot already place within the limit. A continuous spec's next
//! time is `now + interval` saturated at `MAX_TIME`, so one spec's interval
//! never fails a request. The injected [`Clock`] is trusted to stay inside
//! the time range.
//!
//! The limits are judged before the object a call is on is looked at, with
//! one exception: a lease, renewal or retry delay is measured from the
//! store's now, so a call on an object that no longer exists answers
//! [`Error::Gone`] (or a `NoSuch…`) before such a duration is judged. The
//! REST client and `Cache` check every other limit, and that a definition
//! can be read, themselves before they send a request or re-resolve a
//! handle whose object is gone, and leave these durations to the store,
//! whose clock they depend on, so they answer as the store does and a
//! refused call brings back nothing.
//!
//! One bound is the REST client's own: it reads a response up to
//! `DEFAULT_MAX_RESPONSE_BYTES` (256 MiB, settable on its builder), so that
//! a server that never stops sending cannot exhaust its memory. A list
//! longer than that (about two million units with short names, some 30,000
//! with names at the name limit) is an [`Error::Backend`] over HTTP where
//! an in-process backend answers it; such lists are read in pages
//! (`WorkUnitQuery`'s `previous_name` and `limit`). And a work unit query
//! too long for one request (over 8 KiB as a URL to a server without the
//! select extension, over 4 MiB to one with it; see `rest::client`) goes
//! to the server in parts, each atomic but not the whole: a delete or
//! priority change that fails part-way (a priority sum past the largest
//! float, say) may have changed the units of the parts before, where an
//! in-process backend changes nothing.
//!
//! # Errors
//!
//! Every fallible operation returns [`Result`] with the one [`Error`] enum;
//! bad input is a typed error, never a panic. Layers pass errors through
//! unchanged, so callers can always match on [`Error::Gone`].
//!
//! # Callers that stop waiting
//!
//! Any call may be dropped at any `.await` (a timeout, a client that
//! hangs up). The attempts a hand-out made for a caller gone by its end
//! are expired at once rather than held for their lease, by tasks no
//! caller waits for (while the runtime runs; see [`detached`]). A job
//! server awaits [`detached::settled`] before its runtime stops, so that
//! none is cut off, and runs its own changes of
//! several calls through [`detached::spawn`], so that a dropped request
//! leaves none half-applied.

#![forbid(unsafe_code)]
#![warn(
    missing_docs,
    missing_debug_implementations,
    unreachable_pub,
    rustdoc::broken_intra_doc_links
)]

pub mod api;
pub mod cache;
pub mod clock;
#[cfg(feature = "conformance")]
pub mod conformance;
pub mod detached;
mod duration;
pub mod error;
pub mod feed;
pub mod instrumented;
pub mod memory;
pub mod model;
#[cfg(feature = "postgres")]
pub mod pem;
#[cfg(feature = "postgres")]
pub mod postgres;
#[cfg(feature = "rest")]
pub mod rest;
pub mod rules;

/// For [`data!`]: a crate using the macro need not depend on `serde_json`.
#[doc(hidden)]
pub use serde_json as __serde_json;

pub use api::{
    Attempt, AttemptRef, Backend, BackendExt, Namespace, NamespaceRef, WorkSpec, WorkSpecRef,
    WorkUnit, WorkUnitRef, Worker, WorkerRef,
};
pub use cache::Cache;
pub use clock::{Clock, MockClock, SharedClock, SystemClock};
pub use error::{BoxError, Error, ErrorKind, ObjectKind, Result, StatusConversionError};
pub use memory::MemoryBackend;
pub use model::{
    AttemptRequest, AttemptSnapshot, AttemptStatus, DataMap, Duration, NegativeDurationError,
    NewWorkUnit, Summary, SummaryRecord, Time, WorkSpecMeta, WorkUnitMeta, WorkUnitQuery,
    WorkUnitSnapshot, WorkUnitStatus, DEFAULT_LIFETIME,
};
#[cfg(feature = "postgres")]
pub use postgres::PostgresBackend;
#[cfg(feature = "rest")]
pub use rest::client::RestBackend;

/// The README's Rust examples, compiled and run as doc-tests (but for the
/// worker, which needs a running server and is only shown).
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
