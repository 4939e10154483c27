//! Coordinate: a job-queue model for job servers, with an in-memory and a
//! PostgreSQL backend and a name-identity caching layer.
//!
//! (Crate documentation is completed as the modules land.)

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
pub mod error;
pub mod instrumented;
pub mod memory;
pub mod model;
#[cfg(feature = "postgres")]
pub mod postgres;
pub mod rules;

pub use api::{
    Attempt, AttemptRef, Backend, BackendExt, Namespace, NamespaceRef, WorkSpec, WorkSpecRef,
    WorkUnit, WorkUnitRef, Worker, WorkerRef,
};
pub use clock::{Clock, MockClock, SharedClock, SystemClock};
pub use error::{BoxError, Error, Result, StatusConversionError};
pub use model::{
    sort_summary, AttemptRequest, AttemptStatus, DataMap, Duration, Summary, SummaryRecord, Time,
    WorkSpecMeta, WorkUnitMeta, WorkUnitQuery, WorkUnitStatus, DEFAULT_LIFETIME,
};
