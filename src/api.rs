//! The Coordinate API: object-safe async traits, used as shared trait objects.
//!
//! A [`Backend`] holds [`Namespace`]s; a namespace holds [`WorkSpec`]s and
//! [`Worker`]s; a work spec holds [`WorkUnit`]s; a worker does a work unit
//! through an [`Attempt`]. Every handle is a cheap `Arc<dyn …>` (see the
//! aliases [`NamespaceRef`] and friends) usable from many tasks at once.
//!
//! Immutable facts (names, a unit's work spec, an attempt's unit and worker)
//! are plain getters that never fail; everything that reads or writes state
//! is `async` and returns a [`Result`]. What callers store is bounded by the
//! crate's [Limits](crate#limits), the same on every backend.
//!
//! # Passing arguments
//!
//! One convention holds for every method:
//!
//! - requests and queries, which the backend only reads, are passed by
//!   reference: [`Worker::request_attempts`] takes `&AttemptRequest`,
//!   [`WorkSpec::work_units`] `&WorkUnitQuery`;
//! - data the backend stores is passed by value: definitions, data maps,
//!   metas, the units of a bulk add;
//! - handles are passed as the shared aliases, by reference:
//!   [`Worker::make_attempt`] takes `&WorkUnitRef`, [`Worker::set_parent`]
//!   `Option<&WorkerRef>`, exactly what lookups return;
//! - names are `&str`, durations [`Duration`], instants [`Time`].

use std::any::Any;
use std::collections::BTreeMap;
use std::fmt::Debug;
use std::sync::Arc;

use async_trait::async_trait;

use crate::error::Result;
use crate::feed::ChangeFeed;
use crate::model::{
    AttemptRequest, AttemptStatus, DataMap, Duration, NewWorkUnit, Summary, Time, WorkSpecMeta,
    WorkUnitMeta, WorkUnitQuery, WorkUnitStatus,
};

/// A shared namespace handle.
pub type NamespaceRef = Arc<dyn Namespace>;
/// A shared work spec handle.
pub type WorkSpecRef = Arc<dyn WorkSpec>;
/// A shared work unit handle.
pub type WorkUnitRef = Arc<dyn WorkUnit>;
/// A shared worker handle.
pub type WorkerRef = Arc<dyn Worker>;
/// A shared attempt handle.
pub type AttemptRef = Arc<dyn Attempt>;

/// The root of a Coordinate store: a set of namespaces.
#[async_trait]
pub trait Backend: Send + Sync + Debug {
    /// The live namespace with this name, created empty if there is none.
    async fn namespace(&self, name: &str) -> Result<NamespaceRef>;

    /// Every live namespace, by name.
    async fn namespaces(&self) -> Result<BTreeMap<String, NamespaceRef>>;

    /// Summary of every live namespace.
    async fn summarize(&self) -> Result<Summary>;

    /// The backend's change feed, if it has one (see [`crate::feed`]).
    /// Optional: the default is `None`, and wrappers must forward it.
    fn change_feed(&self) -> Option<Arc<dyn ChangeFeed>> {
        None
    }
}

/// Forwards [`Backend`] through a smart pointer, so `Arc<dyn Backend>`,
/// `Box<dyn Backend>` and `Cache<Arc<dyn Backend>>` all work.
macro_rules! forward_backend {
    ($ptr:ident) => {
        #[async_trait]
        impl<T: Backend + ?Sized> Backend for $ptr<T> {
            async fn namespace(&self, name: &str) -> Result<NamespaceRef> {
                (**self).namespace(name).await
            }

            async fn namespaces(&self) -> Result<BTreeMap<String, NamespaceRef>> {
                (**self).namespaces().await
            }

            async fn summarize(&self) -> Result<Summary> {
                (**self).summarize().await
            }

            fn change_feed(&self) -> Option<Arc<dyn ChangeFeed>> {
                (**self).change_feed()
            }
        }
    };
}

forward_backend!(Arc);
forward_backend!(Box);

/// An isolated application state: work specs and workers.
#[async_trait]
pub trait Namespace: Send + Sync + Debug {
    /// The namespace's name.
    fn name(&self) -> &str;

    /// The concrete handle, for backends to recognise their own objects.
    fn as_any(&self) -> &dyn Any;

    /// Deletes the namespace and everything in it. Succeeds and does nothing
    /// on an already destroyed handle.
    async fn destroy(&self) -> Result<()>;

    /// Creates the work spec the definition names, or replaces the
    /// definition of the existing one (`set_data`).
    async fn set_work_spec(&self, definition: DataMap) -> Result<WorkSpecRef>;

    /// The work spec with this name, or `NoSuchWorkSpec`.
    async fn work_spec(&self, name: &str) -> Result<WorkSpecRef>;

    /// Deletes the work spec with this name, its units and their attempts.
    async fn destroy_work_spec(&self, name: &str) -> Result<()>;

    /// The names of every work spec, in no particular order.
    async fn work_spec_names(&self) -> Result<Vec<String>>;

    /// The worker with this name, created with the defaults if there is none.
    async fn worker(&self, name: &str) -> Result<WorkerRef>;

    /// Every worker of the namespace, by name.
    async fn workers(&self) -> Result<BTreeMap<String, WorkerRef>>;

    /// Summary of this namespace.
    async fn summarize(&self) -> Result<Summary>;
}

/// A family of jobs: a definition, its meta, and its work units.
#[async_trait]
pub trait WorkSpec: Send + Sync + Debug {
    /// The spec's name (the definition's `"name"`).
    fn name(&self) -> &str;

    /// The concrete handle, for backends to recognise their own objects.
    fn as_any(&self) -> &dyn Any;

    /// The definition exactly as last stored.
    async fn data(&self) -> Result<DataMap>;

    /// Replaces the definition and re-derives the whole meta from it.
    async fn set_data(&self, definition: DataMap) -> Result<()>;

    /// The meta; with counts, after lazy expiry.
    async fn meta(&self, with_counts: bool) -> Result<WorkSpecMeta>;

    /// Overwrites the settable fields of the meta.
    async fn set_meta(&self, meta: WorkSpecMeta) -> Result<()>;

    /// Creates or replaces (upsert) the unit with this name.
    async fn add_work_unit(
        &self,
        name: &str,
        data: DataMap,
        meta: WorkUnitMeta,
    ) -> Result<WorkUnitRef>;

    /// Creates or replaces many units, with the answer `add_work_unit`
    /// would give called once per entry, in order: one handle per entry
    /// (entries with the same name answer the same unit, holding the last
    /// entry's data and meta).
    ///
    /// Every entry is checked against the [Limits](crate#limits) before
    /// anything is stored: if one breaks a limit, that error is answered
    /// and no unit is added or changed. The in-memory and PostgreSQL
    /// backends store a batch all at once (one round trip on PostgreSQL);
    /// this default stores it one `add_work_unit` at a time, so a backend
    /// failure half-way leaves the units before it stored.
    async fn add_work_units(&self, units: Vec<NewWorkUnit>) -> Result<Vec<WorkUnitRef>> {
        let units = crate::rules::limits::checked_new_units(units)?;
        let mut added = Vec::with_capacity(units.len());
        for unit in units {
            added.push(self.add_work_unit(&unit.name, unit.data, unit.meta).await?);
        }
        Ok(added)
    }

    /// The unit with this name, or `NoSuchWorkUnit`.
    async fn work_unit(&self, name: &str) -> Result<WorkUnitRef>;

    /// The units the query selects, by name.
    async fn work_units(&self, query: &WorkUnitQuery) -> Result<BTreeMap<String, WorkUnitRef>>;

    /// Units per status; only non-zero counts appear.
    async fn count_work_unit_status(&self) -> Result<BTreeMap<WorkUnitStatus, u64>>;

    /// Sets the priority of every selected unit.
    async fn set_work_unit_priorities(&self, query: &WorkUnitQuery, priority: f64) -> Result<()>;

    /// Adds `delta` to the priority of every selected unit.
    async fn adjust_work_unit_priorities(&self, query: &WorkUnitQuery, delta: f64) -> Result<()>;

    /// Deletes every selected unit with its attempts; answers how many.
    async fn delete_work_units(&self, query: &WorkUnitQuery) -> Result<u64>;

    /// Summary of this spec.
    async fn summarize(&self) -> Result<Summary>;
}

/// One job: a name, data and meta, and its attempts.
#[async_trait]
pub trait WorkUnit: Send + Sync + Debug {
    /// The unit's name.
    fn name(&self) -> &str;

    /// The spec the unit belongs to.
    fn work_spec(&self) -> WorkSpecRef;

    /// The concrete handle, for backends to recognise their own objects.
    fn as_any(&self) -> &dyn Any;

    /// The active attempt's data if there is one, else the unit's own.
    async fn data(&self) -> Result<DataMap>;

    /// The status, after lazy expiry (an active attempt whose lease ran
    /// out is expired first, leaving the unit Available or Delayed).
    async fn status(&self) -> Result<WorkUnitStatus>;

    /// Priority and not-before time.
    async fn meta(&self) -> Result<WorkUnitMeta>;

    /// Replaces priority and not-before time.
    async fn set_meta(&self, meta: WorkUnitMeta) -> Result<()>;

    /// The priority.
    async fn priority(&self) -> Result<f64>;

    /// Changes only the priority.
    async fn set_priority(&self, priority: f64) -> Result<()>;

    /// The active attempt, after lazy expiry.
    async fn active_attempt(&self) -> Result<Option<AttemptRef>>;

    /// Removes the active-attempt link; the attempt itself is untouched.
    async fn clear_active_attempt(&self) -> Result<()>;

    /// Every attempt ever made for this unit, in creation order.
    async fn attempts(&self) -> Result<Vec<AttemptRef>>;

    /// The number of attempts ever made for this unit.
    async fn num_attempts(&self) -> Result<u64>;
}

/// An executing process, or a supervisor of such.
#[async_trait]
pub trait Worker: Send + Sync + Debug {
    /// The worker's name.
    fn name(&self) -> &str;

    /// The concrete handle, for backends to recognise their own objects.
    fn as_any(&self) -> &dyn Any;

    /// The parent worker, if any.
    async fn parent(&self) -> Result<Option<WorkerRef>>;

    /// Changes (or, with `None`, clears) the parent; `WrongBackend` for a
    /// worker of another backend.
    async fn set_parent(&self, parent: Option<&WorkerRef>) -> Result<()>;

    /// Workers whose parent is this one.
    async fn children(&self) -> Result<Vec<WorkerRef>>;

    /// The active flag.
    async fn active(&self) -> Result<bool>;

    /// Clears the active flag.
    async fn deactivate(&self) -> Result<()>;

    /// The mode string.
    async fn mode(&self) -> Result<String>;

    /// The worker's data.
    async fn data(&self) -> Result<DataMap>;

    /// The (informational) expiration instant.
    async fn expiration(&self) -> Result<Time>;

    /// The time of the last update, as the caller said.
    async fn last_update(&self) -> Result<Time>;

    /// Sets active and stores data, the caller's `now`, expiration and mode.
    async fn update(&self, data: DataMap, now: Time, expiration: Time, mode: &str) -> Result<()>;

    /// Asks for work: the scheduler ([`crate::rules::schedule`]) picks one
    /// spec of this namespace, and up to the requested number of its
    /// Available units (highest priority first, then by name; capped by
    /// the spec's `max_attempts_returned` and `max_running`) get a new
    /// attempt of this worker. A continuous spec with nothing to do may
    /// generate one unit instead. All attempts returned are of one spec;
    /// two concurrent requests are never handed the same unit.
    async fn request_attempts(&self, request: &AttemptRequest) -> Result<Vec<AttemptRef>>;

    /// Creates an attempt for exactly this unit, whatever its state; a zero
    /// lifetime is the 15-minute default.
    async fn make_attempt(&self, unit: &WorkUnitRef, lifetime: Duration) -> Result<AttemptRef>;

    /// Attempts on this worker's active list, in the order they were added.
    async fn active_attempts(&self) -> Result<Vec<AttemptRef>>;

    /// Every attempt given to this worker whose unit still exists.
    async fn all_attempts(&self) -> Result<Vec<AttemptRef>>;

    /// The active attempts of this worker's direct children.
    async fn child_attempts(&self) -> Result<Vec<AttemptRef>>;
}

/// One worker doing one work unit.
#[async_trait]
pub trait Attempt: Send + Sync + Debug {
    /// The unit being done.
    fn work_unit(&self) -> WorkUnitRef;

    /// The worker doing it.
    fn worker(&self) -> WorkerRef;

    /// The concrete handle, for backends to recognise their own objects.
    fn as_any(&self) -> &dyn Any;

    /// An identifier unique among the backend's attempts and never reused,
    /// if the backend has one. A server that addresses attempts by URL
    /// uses it to tell apart attempts of one unit by one worker that
    /// started in the same instant. Wrappers must forward it.
    fn id(&self) -> Option<u64> {
        None
    }

    /// The status, after lazy expiry.
    async fn status(&self) -> Result<AttemptStatus>;

    /// The attempt's own data.
    async fn data(&self) -> Result<DataMap>;

    /// When the attempt was made.
    async fn start_time(&self) -> Result<Time>;

    /// When it left Pending; `None` while pending. After lazy expiry.
    async fn end_time(&self) -> Result<Option<Time>>;

    /// When its lease runs out. After lazy expiry.
    async fn expiration_time(&self) -> Result<Time>;

    /// Extends the lease to now + `extend`, optionally replacing the data.
    async fn renew(&self, extend: Duration, data: Option<DataMap>) -> Result<()>;

    /// Gives the unit up (→ Expired).
    async fn expire(&self, data: Option<DataMap>) -> Result<()>;

    /// Completes successfully (→ Finished). If the attempt is still its
    /// unit's active one, the `"output"` of its data then adds (upserts)
    /// units to the spec named by the unit's spec's `then`
    /// ([`WorkSpecMeta::next_work_spec_name`]) in the same namespace; a
    /// missing target spec or unparseable output creates nothing and does
    /// not fail the call (see [`crate::rules::chained_units`]).
    async fn finish(&self, data: Option<DataMap>) -> Result<()>;

    /// Completes unsuccessfully (→ Failed).
    async fn fail(&self, data: Option<DataMap>) -> Result<()>;

    /// Completes unsuccessfully but runnable again after `delay` (→ Retryable).
    async fn retry(&self, data: Option<DataMap>, delay: Duration) -> Result<()>;
}

/// Conveniences over [`Backend`], implemented once for every backend.
#[async_trait]
pub trait BackendExt: Backend {
    /// Resolves `namespace` → `work_spec`, as a stateless job server does
    /// for every request.
    async fn work_spec_at(&self, namespace: &str, work_spec: &str) -> Result<WorkSpecRef> {
        self.namespace(namespace).await?.work_spec(work_spec).await
    }

    /// Resolves `namespace` → `work_spec` → `work_unit`.
    async fn work_unit_at(
        &self,
        namespace: &str,
        work_spec: &str,
        work_unit: &str,
    ) -> Result<WorkUnitRef> {
        self.work_spec_at(namespace, work_spec)
            .await?
            .work_unit(work_unit)
            .await
    }

    /// Resolves `namespace` → `worker`.
    async fn worker_at(&self, namespace: &str, worker: &str) -> Result<WorkerRef> {
        self.namespace(namespace).await?.worker(worker).await
    }
}

impl<T: Backend + ?Sized> BackendExt for T {}
