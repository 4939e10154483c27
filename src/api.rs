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
//! # Handles and identity
//!
//! A handle refers to the object that existed when it was obtained, not to
//! its name. Two lookups of the same live object observe the same state. If
//! an object is deleted and another is later created under the same name,
//! old handles keep referring to the deleted one; only a fresh lookup
//! answers the new object.
//!
//! # Deleted objects
//!
//! Deleting an object (destroying a namespace or spec, deleting units)
//! deletes everything beneath it, and every handle to any of those is
//! *dead*: its plain getters still answer, and every fallible method fails
//! with [`Error::Gone`](crate::Error::Gone), except [`Namespace::destroy`],
//! which succeeds and does nothing. Deleted attempts vanish from every
//! worker's lists. A durable backend, which only notices a deletion when a
//! row is missing, may answer differently where a caller cannot tell the
//! difference: name lookups inside a deleted parent fail with
//! `NoSuchWorkSpec`/`NoSuchWorkUnit` (and a dead spec or unit handle may
//! report those for its own name); list, map, count and summary reads
//! under a dead parent answer an empty result; priority changes on a dead
//! spec may do nothing. Reads and writes of one object (data, metas,
//! statuses, adding a unit, every attempt method, `make_attempt`) always
//! fail with `Gone`. [`Cache`](crate::Cache) over a durable backend may
//! answer `Gone` where the backend alone answers an empty result: when
//! it knows of the deletion (made through it, or reported by its change
//! feed), it answers as an in-process backend does.
//!
//! # Lazy expiry
//!
//! An attempt whose lease has run out is not expired at that instant but
//! by the next *expiry check* over its spec: every Pending active attempt
//! with `expiration_time` strictly before now becomes Expired (its end time
//! is now; it leaves its worker's active list) and its unit loses its
//! active attempt (Available, or Delayed by `not_before`). The methods that
//! run a check say so; the others (notably `data`, `start_time`, the attempt
//! state changes, the worker lists and `meta(false)`) do not, so an attempt
//! past its deadline can still be renewed or finished until a check runs.
//! Attempts that are Pending but no longer active are never expired
//! automatically. A backend may check a wider scope than a method names.
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
//! - names are `&str`, durations [`Duration`], instants [`Time`]. A
//!   `std::time::Duration` converts with `.into()`
//!   (`attempt.renew(std::time::Duration::from_secs(60).into(), None)`),
//!   saturating at [`Duration::MAX`], which then gets the operation's usual
//!   range error rather than a panic.

use std::any::Any;
use std::collections::BTreeMap;
use std::fmt::Debug;
use std::future::Future;
use std::sync::Arc;

use async_trait::async_trait;

use crate::error::Result;
use crate::feed::ChangeFeed;
use crate::model::{
    AttemptRequest, AttemptSnapshot, AttemptStatus, DataMap, Duration, NewWorkUnit, Summary, Time,
    WorkSpecMeta, WorkUnitMeta, WorkUnitQuery, WorkUnitSnapshot, WorkUnitStatus,
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
///
/// ```
/// use coordinate::memory::MemoryBackend;
/// use coordinate::Backend;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> coordinate::Result<()> {
/// let backend = MemoryBackend::new();
/// let app = backend.namespace("app").await?;
/// assert_eq!(backend.namespaces().await?.len(), 1);
///
/// // A destroyed namespace is never revived: the name gets a new one.
/// app.destroy().await?;
/// assert!(backend.namespaces().await?.is_empty());
/// let again = backend.namespace("app").await?;
/// assert!(again.work_spec_names().await?.is_empty());
/// assert!(app.work_spec_names().await.unwrap_err().is_gone());
/// # Ok(())
/// # }
/// ```
#[async_trait]
pub trait Backend: Send + Sync + Debug {
    /// The live namespace with this name, created empty if there is none
    /// (a destroyed one is never revived: the name gets a new namespace).
    /// Fails only with a backend error.
    async fn namespace(&self, name: &str) -> Result<NamespaceRef>;

    /// Every live namespace, by name; destroyed ones are absent.
    async fn namespaces(&self) -> Result<BTreeMap<String, NamespaceRef>>;

    /// One record per (namespace, spec, status) with a non-zero count, over
    /// every live namespace, after an expiry check; in no particular order
    /// (a durable backend may skip the check, so counts may lag). This
    /// crate's backends answer them sorted, in
    /// [`SummaryRecord`](crate::model::SummaryRecord) order.
    async fn summarize(&self) -> Result<Summary>;

    /// Answers once the backend can serve calls, for readiness checks: the
    /// cheapest round trip to its store, reading and writing nothing (a
    /// query of `SELECT 1` on PostgreSQL, the root document over REST).
    /// The default lists the namespaces; a backend with a cheaper way to
    /// reach its store overrides it.
    async fn ping(&self) -> Result<()> {
        self.namespaces().await.map(drop)
    }

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

            async fn ping(&self) -> Result<()> {
                (**self).ping().await
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
///
/// Every method but `name` and `destroy` fails on a destroyed namespace
/// (see [deleted objects](self#deleted-objects)).
///
/// ```
/// use coordinate::memory::MemoryBackend;
/// use coordinate::{data, Backend, Error};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> coordinate::Result<()> {
/// let app = MemoryBackend::new().namespace("app").await?;
/// let spec = app.set_work_spec(data!({"name": "resize", "priority": 5})).await?;
/// assert_eq!(spec.meta(false).await?.priority, 5);
/// assert_eq!(app.work_spec_names().await?, ["resize"]);
///
/// // A definition without a name is refused, and nothing is created.
/// assert!(matches!(app.set_work_spec(data!({"priority": 1})).await, Err(Error::NoWorkSpecName)));
///
/// app.destroy_work_spec("resize").await?;
/// assert!(matches!(
///     app.work_spec("resize").await,
///     Err(Error::NoSuchWorkSpec { name }) if name == "resize"
/// ));
///
/// // Looking a worker up creates it.
/// let worker = app.worker("host-1").await?;
/// assert!(worker.active().await?);
/// assert!(app.workers().await?.contains_key("host-1"));
/// # Ok(())
/// # }
/// ```
#[async_trait]
pub trait Namespace: Send + Sync + Debug {
    /// The namespace's name.
    fn name(&self) -> &str;

    /// The concrete handle, for backends to recognise their own objects.
    fn as_any(&self) -> &dyn Any;

    /// Deletes the namespace and everything in it: specs, units, attempts
    /// and workers. Its workers' attempts on other namespaces' units go too:
    /// such a unit loses them from its history and, if one was its active
    /// attempt, has none (as after [`WorkUnit::clear_active_attempt`]).
    /// Succeeds and does nothing on an already destroyed handle, and never
    /// touches a newer namespace of the same name (except over the REST
    /// API, which names a namespace only by its name: see `RestBackend`).
    async fn destroy(&self) -> Result<()>;

    /// Creates the work spec the definition names, with meta derived from
    /// the definition, or replaces the definition of the existing one
    /// exactly as [`WorkSpec::set_data`] does, keeping its identity.
    ///
    /// The definition is checked first, in this order, and on an error
    /// nothing is created or changed: `"name"` absent or null →
    /// `NoWorkSpecName`; not a string → `BadWorkSpecName`; empty →
    /// `NoWorkSpecName`; another recognised key with an unusable value →
    /// `InvalidWorkSpecData`.
    async fn set_work_spec(&self, definition: DataMap) -> Result<WorkSpecRef>;

    /// The work spec with this name, or `NoSuchWorkSpec` carrying the name.
    async fn work_spec(&self, name: &str) -> Result<WorkSpecRef>;

    /// Deletes the work spec with this name, its units and their attempts
    /// (which leave every worker's lists); `NoSuchWorkSpec` if there is
    /// none, including on a second destroy of the same name.
    async fn destroy_work_spec(&self, name: &str) -> Result<()>;

    /// The names of every work spec, in no particular order; empty if none.
    async fn work_spec_names(&self) -> Result<Vec<String>>;

    /// The worker with this name, created if there is none: active, no
    /// parent, empty data and mode, last updated now and expiring 15
    /// minutes later. Looking up an existing worker changes nothing.
    async fn worker(&self, name: &str) -> Result<WorkerRef>;

    /// Every worker of the namespace (parents, children, active or not), by
    /// name.
    async fn workers(&self) -> Result<BTreeMap<String, WorkerRef>>;

    /// [`Backend::summarize`] for this namespace only.
    async fn summarize(&self) -> Result<Summary>;
}

/// A family of jobs: a definition, its meta, and its work units.
///
/// Every method but `name` fails once the spec or its namespace is
/// destroyed (see [deleted objects](self#deleted-objects)).
///
/// ```
/// use coordinate::memory::MemoryBackend;
/// use coordinate::{data, Backend, NewWorkUnit, WorkUnitQuery, WorkUnitStatus};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> coordinate::Result<()> {
/// let app = MemoryBackend::new().namespace("app").await?;
/// let spec = app.set_work_spec(data!({"name": "resize"})).await?;
/// let units = (1..=5).map(|i| NewWorkUnit::new(format!("img-{i}"), data!({"w": i * 100})));
/// spec.add_work_units(units.collect()).await?;
///
/// // Pages come in name order.
/// let page = WorkUnitQuery { limit: 2, ..WorkUnitQuery::statuses([WorkUnitStatus::Available]) };
/// let names: Vec<String> = spec.work_units(&page).await?.into_keys().collect();
/// assert_eq!(names, ["img-1", "img-2"]);
///
/// assert_eq!(spec.delete_work_units(&WorkUnitQuery::names(["img-1", "img-9"])).await?, 1);
/// let counts = spec.count_work_unit_status().await?;
/// assert_eq!(counts[&WorkUnitStatus::Available], 4);
/// assert_eq!(spec.meta(true).await?.available_count, 4);
/// # Ok(())
/// # }
/// ```
#[async_trait]
pub trait WorkSpec: Send + Sync + Debug {
    /// The spec's name (the definition's `"name"`).
    fn name(&self) -> &str;

    /// The name of the namespace the spec belongs to. A worker's attempts
    /// may be on units of other namespaces (see [`Worker::make_attempt`]
    /// and [`Worker::child_attempts`]); this says which. Like
    /// [`name`](Self::name), it is fixed when the handle is made and never
    /// reads the backend.
    fn namespace_name(&self) -> &str;

    /// The concrete handle, for backends to recognise their own objects.
    fn as_any(&self) -> &dyn Any;

    /// The definition exactly as last stored, unrecognised keys included.
    async fn data(&self) -> Result<DataMap>;

    /// Replaces the definition and re-derives the whole meta from it,
    /// discarding every earlier [`set_meta`](WorkSpec::set_meta) and
    /// resetting `next_continuous` (so a continuous spec may generate a unit
    /// at once). Units and attempts are untouched. The definition is checked
    /// as by [`Namespace::set_work_spec`], and a different name fails with
    /// `ChangedName`; on any error nothing changes.
    async fn set_data(&self, definition: DataMap) -> Result<()>;

    /// The meta. With `with_counts`, after an expiry check over the spec,
    /// `available_count` and `pending_count` count the Available (not
    /// Delayed) and Pending units; without, both are 0.
    async fn meta(&self, with_counts: bool) -> Result<WorkSpecMeta>;

    /// Overwrites the settable fields of the meta (priority, weight, paused,
    /// continuous, memory, interval, `next_continuous` and the limits) and
    /// ignores the derived ones. `continuous` stays false on a spec that
    /// cannot be continuous; field values never make the call fail. Read,
    /// modify and write back, since `next_continuous` is taken as given.
    async fn set_meta(&self, meta: WorkSpecMeta) -> Result<()>;

    /// Creates or replaces (upsert) the unit with this name, answering its
    /// handle. A replaced unit keeps its identity and attempts and takes the
    /// new data and whole meta; if it was Finished or Failed its active
    /// attempt is cleared (the attempt keeps its status), so it becomes
    /// Available or Delayed, while an Available, Pending or Delayed unit
    /// keeps its state. Concurrent adds of one name all succeed.
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
    /// backends store a batch all at once (on PostgreSQL in one
    /// transaction, of one round trip unless the batch is very large);
    /// this default stores it one `add_work_unit` at a time, so a backend
    /// failure half-way leaves the units before it stored. An empty batch
    /// stores nothing, and answers `Gone` for a deleted spec as any call
    /// on its handle does (this default reads the spec's meta to tell).
    async fn add_work_units(&self, units: Vec<NewWorkUnit>) -> Result<Vec<WorkUnitRef>> {
        let units = crate::rules::limits::checked_new_units(units)?;
        if units.is_empty() {
            self.meta(false).await?;
        }
        let mut added = Vec::with_capacity(units.len());
        for unit in units {
            added.push(self.add_work_unit(&unit.name, unit.data, unit.meta).await?);
        }
        Ok(added)
    }

    /// The unit with this name, or `NoSuchWorkUnit` carrying the name.
    async fn work_unit(&self, name: &str) -> Result<WorkUnitRef>;

    /// The units the query selects, by name, after an expiry check over the
    /// spec (see [`WorkUnitQuery`] for the selection and paging rules).
    async fn work_units(&self, query: &WorkUnitQuery) -> Result<BTreeMap<String, WorkUnitRef>>;

    /// Units per status after an expiry check; only non-zero counts appear.
    async fn count_work_unit_status(&self) -> Result<BTreeMap<WorkUnitStatus, u64>>;

    /// Sets the priority of every selected unit (after an expiry check).
    async fn set_work_unit_priorities(&self, query: &WorkUnitQuery, priority: f64) -> Result<()>;

    /// Adds `delta` to the priority of every selected unit (after an expiry
    /// check).
    async fn adjust_work_unit_priorities(&self, query: &WorkUnitQuery, delta: f64) -> Result<()>;

    /// Deletes every selected unit with its attempts (after an expiry check);
    /// answers how many, 0 if none matched. The deleted attempts leave every
    /// worker's lists; their workers are not told otherwise. The default
    /// query deletes every unit.
    async fn delete_work_units(&self, query: &WorkUnitQuery) -> Result<u64>;

    /// [`Backend::summarize`] for this spec only.
    async fn summarize(&self) -> Result<Summary>;
}

/// One job: a name, data and meta, and its attempts.
///
/// Every method but `name` and `work_spec` fails once the unit is deleted
/// or its spec or namespace destroyed (see
/// [deleted objects](self#deleted-objects)).
///
/// ```
/// use coordinate::memory::MemoryBackend;
/// use coordinate::{data, Backend, WorkUnitMeta, WorkUnitStatus};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> coordinate::Result<()> {
/// let spec = MemoryBackend::new().namespace("app").await?.set_work_spec(data!({"name": "resize"})).await?;
/// let unit = spec.add_work_unit("img-1", data!({"w": 640}), WorkUnitMeta::with_priority(2.0)).await?;
/// assert_eq!(unit.work_spec().name(), "resize");
///
/// let snapshot = unit.snapshot().await?;
/// assert_eq!(snapshot.status, WorkUnitStatus::Available);
/// assert_eq!(snapshot.data, data!({"w": 640}));
/// assert_eq!(snapshot.meta.priority, 2.0);
///
/// unit.set_priority(-1.0).await?;
/// assert_eq!(unit.priority().await?, -1.0);
/// assert_eq!(unit.num_attempts().await?, 0);
/// assert!(unit.active_attempt().await?.is_none());
/// # Ok(())
/// # }
/// ```
#[async_trait]
pub trait WorkUnit: Send + Sync + Debug {
    /// The unit's name.
    fn name(&self) -> &str;

    /// The spec the unit belongs to.
    fn work_spec(&self) -> WorkSpecRef;

    /// The concrete handle, for backends to recognise their own objects.
    fn as_any(&self) -> &dyn Any;

    /// The active attempt's data if there is one (whatever its status),
    /// else the unit's own. No expiry check.
    async fn data(&self) -> Result<DataMap>;

    /// The status, after an expiry check over the spec (an active attempt
    /// whose lease ran out is expired first, leaving the unit Available or
    /// Delayed).
    async fn status(&self) -> Result<WorkUnitStatus>;

    /// Priority (higher runs first) and not-before time (`None`: no
    /// restriction).
    async fn meta(&self) -> Result<WorkUnitMeta>;

    /// The status, data and meta together: what [`status`](Self::status)
    /// followed by [`data`](Self::data) and [`meta`](Self::meta) would
    /// answer if all three ran at one instant. So the expiry check is
    /// `status`'s: an active attempt whose lease ran out is expired first,
    /// and the data is then the unit's own. Fails wherever those calls
    /// fail, with the same errors (`Gone` on a deleted unit, or the
    /// `NoSuch…` a durable backend may answer instead).
    ///
    /// The in-memory, PostgreSQL and REST backends read all three at once
    /// (one lock, one statement, one request); this default makes the three
    /// calls, `status` first, so it is only as consistent as they are with
    /// concurrent writers.
    async fn snapshot(&self) -> Result<WorkUnitSnapshot> {
        let status = self.status().await?;
        let (data, meta) = futures::try_join!(self.data(), self.meta())?;
        Ok(WorkUnitSnapshot::new(status, data, meta))
    }

    /// The data and meta together: what [`data`](Self::data) and
    /// [`meta`](Self::meta) would answer if both ran at one instant. No
    /// expiry check, so an active attempt past its lease still shows its
    /// data. Fails wherever `data` fails, with the same error.
    ///
    /// The in-memory, PostgreSQL and REST backends read both at once (one
    /// lock, one statement, one request); this default makes the two
    /// calls.
    async fn data_and_meta(&self) -> Result<(DataMap, WorkUnitMeta)> {
        futures::try_join!(self.data(), self.meta())
    }

    /// Replaces priority and not-before time (`None` lifts the restriction).
    async fn set_meta(&self, meta: WorkUnitMeta) -> Result<()>;

    /// The priority.
    async fn priority(&self) -> Result<f64>;

    /// Changes only the priority.
    async fn set_priority(&self, priority: f64) -> Result<()>;

    /// The active attempt, after an expiry check over the spec. A finished
    /// or failed attempt stays active; after expiry or retry there is none.
    async fn active_attempt(&self) -> Result<Option<AttemptRef>>;

    /// Removes the active-attempt link, so the unit is Available or Delayed
    /// and shows its own data. The attempt itself is untouched: it keeps its
    /// status (even Pending), its place in the history and on its worker's
    /// active list.
    async fn clear_active_attempt(&self) -> Result<()>;

    /// Every attempt ever made for this unit, the active one included, in
    /// creation order.
    async fn attempts(&self) -> Result<Vec<AttemptRef>>;

    /// The number of attempts ever made for this unit.
    async fn num_attempts(&self) -> Result<u64>;
}

/// An executing process, or a supervisor of such.
///
/// ```
/// use coordinate::memory::MemoryBackend;
/// use coordinate::{data, AttemptRequest, Backend, Duration, WorkUnitMeta};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> coordinate::Result<()> {
/// let app = MemoryBackend::new().namespace("app").await?;
/// let spec = app.set_work_spec(data!({"name": "resize"})).await?;
/// for name in ["a", "b", "c"] {
///     spec.add_work_unit(name, data!({}), WorkUnitMeta::default()).await?;
/// }
///
/// let parent = app.worker("supervisor").await?;
/// let worker = app.worker("host-1").await?;
/// worker.set_parent(Some(&parent)).await?;
///
/// let request = AttemptRequest { lifetime: Duration::minutes(5), ..AttemptRequest::units(2) };
/// let attempts = worker.request_attempts(&request).await?;
/// let units: Vec<String> = attempts.iter().map(|a| a.work_unit().name().to_owned()).collect();
/// assert_eq!(units, ["a", "b"]);
/// assert_eq!(worker.active_attempts().await?.len(), 2);
/// // A supervisor sees its children's attempts.
/// assert_eq!(parent.child_attempts().await?.len(), 2);
/// # Ok(())
/// # }
/// ```
#[async_trait]
pub trait Worker: Send + Sync + Debug {
    /// The worker's name.
    fn name(&self) -> &str;

    /// The name of the namespace the worker belongs to, which may differ
    /// from its parent's and its children's (see
    /// [`set_parent`](Self::set_parent)). Like [`name`](Self::name), it is
    /// fixed when the handle is made and never reads the backend.
    fn namespace_name(&self) -> &str;

    /// The concrete handle, for backends to recognise their own objects.
    fn as_any(&self) -> &dyn Any;

    /// The parent worker, if any (none is not an error).
    async fn parent(&self) -> Result<Option<WorkerRef>>;

    /// Changes (or, with `None`, clears) the parent: the worker leaves the
    /// old parent's children and joins the new one's; the same parent again
    /// changes nothing. Any worker of this backend may be the parent (no
    /// cycle or namespace check); `WrongBackend` for one of another backend.
    async fn set_parent(&self, parent: Option<&WorkerRef>) -> Result<()>;

    /// Workers whose parent is this one, in no particular order.
    async fn children(&self) -> Result<Vec<WorkerRef>>;

    /// The active flag. Neither it, nor mode or expiration, has any effect
    /// on scheduling: an inactive worker can still request attempts.
    async fn active(&self) -> Result<bool>;

    /// Clears the active flag.
    async fn deactivate(&self) -> Result<()>;

    /// The mode string.
    async fn mode(&self) -> Result<String>;

    /// The worker's data.
    async fn data(&self) -> Result<DataMap>;

    /// The expiration instant: informational only, nothing deactivates a
    /// worker when it passes.
    async fn expiration(&self) -> Result<Time>;

    /// The time of the last update, as the caller said.
    async fn last_update(&self) -> Result<Time>;

    /// Sets active and stores data, the caller's `now` (the clock is not
    /// read), expiration and mode.
    async fn update(&self, data: DataMap, now: Time, expiration: Time, mode: &str) -> Result<()>;

    /// Asks for work: the scheduler ([`crate::rules::schedule`]) picks one
    /// spec of this namespace, and up to the requested number of its
    /// Available units (highest priority first, then by name; capped by
    /// the spec's `max_attempts_returned` and `max_running`) get a new
    /// attempt of this worker. A continuous spec with nothing to do may
    /// generate one unit instead. All attempts returned are of one spec;
    /// two concurrent requests are never handed the same unit.
    ///
    /// Runs an expiry check over every spec of the namespace first. Delayed
    /// units are never taken; paused specs are never chosen, nor, when
    /// `available_gb` is positive, specs whose `min_memory_gb` exceeds it. A zero or
    /// negative lifetime is the 15-minute default. With the spec's
    /// `max_retries` set, a new attempt whose unit now has more attempts
    /// than that is failed at once with data `{"traceback": "too many
    /// retries"}` and left out (the rest are answered without topping up;
    /// if all were failed, more units are taken). Answers the attempts in
    /// the order made, or an empty list when there is nothing to do.
    ///
    /// Cancel-safe: a call dropped before it answers (a timeout around it,
    /// a client gone) expires the attempts it made, from a task of its own
    /// when the backend made them after the caller left, so that no unit
    /// stays held for a whole lease by an attempt nobody got. Such an
    /// attempt stays in its unit's history, as any expired one: it counts
    /// toward the spec's `max_retries`.
    async fn request_attempts(&self, request: &AttemptRequest) -> Result<Vec<AttemptRef>>;

    /// Creates an attempt for exactly this unit, whatever its state, pause,
    /// limits or not-before, expiring `lifetime` from now (zero is the
    /// 15-minute default; a negative one expires at the next check). It
    /// becomes the unit's active attempt; a previous one keeps its status
    /// and its place on its worker's active list. `WrongBackend` for a unit
    /// of another backend. Meant for tests and debugging. Cancel-safe as
    /// [`request_attempts`](Self::request_attempts) is.
    async fn make_attempt(&self, unit: &WorkUnitRef, lifetime: Duration) -> Result<AttemptRef>;

    /// Attempts on this worker's active list, in the order they were added.
    /// An attempt is on it from creation until it leaves Pending or is
    /// deleted; clearing or superseding it does not remove it.
    async fn active_attempts(&self) -> Result<Vec<AttemptRef>>;

    /// Every attempt given to this worker whose unit still exists, in
    /// creation order.
    async fn all_attempts(&self) -> Result<Vec<AttemptRef>>;

    /// The active attempts of this worker's direct children (not its own,
    /// not grandchildren's), in no particular order.
    async fn child_attempts(&self) -> Result<Vec<AttemptRef>>;
}

/// One worker doing one work unit.
///
/// An attempt is *active* while it is its unit's active attempt. Every
/// fallible method fails once its unit is deleted or its spec or namespace
/// destroyed (see [deleted objects](self#deleted-objects)). A state change
/// that completes the attempt sets its status, sets its end time to now,
/// replaces its data if data is given (an empty map is a replacement), and
/// takes it off its worker's active list. None of them changes the unit's
/// own data, and none runs an expiry check. The allowed changes, with
/// anything else failing with `NotPending`:
///
/// | from \ call | renew | expire | finish | fail | retry |
/// |---|---|---|---|---|---|
/// | Pending, active | stays Pending | Expired | Finished, chains | Failed | Retryable |
/// | Pending, not active | Expired, `LostLease` | Expired | Finished | Failed | Retryable |
/// | Expired | Expired, `LostLease` | no-op | | | |
/// | Failed | | | Finished | | |
///
/// ```
/// use coordinate::memory::MemoryBackend;
/// use coordinate::{data, AttemptRequest, AttemptStatus, Backend, Duration, Error};
/// use coordinate::{WorkUnitMeta, WorkUnitStatus};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> coordinate::Result<()> {
/// let app = MemoryBackend::new().namespace("app").await?;
/// let spec = app.set_work_spec(data!({"name": "resize"})).await?;
/// let unit = spec.add_work_unit("img-1", data!({}), WorkUnitMeta::default()).await?;
/// let worker = app.worker("host-1").await?;
///
/// let attempt = worker.request_attempts(&AttemptRequest::default()).await?.remove(0);
/// attempt.renew(Duration::minutes(10), Some(data!({"progress": 0.5}))).await?;
/// attempt.fail(Some(data!({"error": "disk full"}))).await?;
/// assert_eq!(unit.status().await?, WorkUnitStatus::Failed);
///
/// // A failed attempt may still finish; nothing else changes it.
/// assert!(matches!(attempt.renew(Duration::minutes(1), None).await, Err(Error::NotPending)));
/// attempt.finish(None).await?;
/// assert_eq!(attempt.status().await?, AttemptStatus::Finished);
/// assert_eq!(unit.status().await?, WorkUnitStatus::Finished);
/// # Ok(())
/// # }
/// ```
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

    /// The status, after an expiry check over the spec.
    async fn status(&self) -> Result<AttemptStatus>;

    /// The attempt's own data: a snapshot of the unit's at creation, or
    /// whatever last replaced it. No expiry check.
    async fn data(&self) -> Result<DataMap>;

    /// When the attempt was made.
    async fn start_time(&self) -> Result<Time>;

    /// When it left Pending; `None` while pending. After an expiry check.
    async fn end_time(&self) -> Result<Option<Time>>;

    /// When its lease runs out (left as it was when the attempt expires).
    /// After an expiry check.
    async fn expiration_time(&self) -> Result<Time>;

    /// The status, data and times together: what [`status`](Self::status),
    /// [`data`](Self::data), [`start_time`](Self::start_time),
    /// [`end_time`](Self::end_time) and
    /// [`expiration_time`](Self::expiration_time) would answer if all ran
    /// at one instant, with `status`'s expiry check. Fails wherever those
    /// calls fail, with the same errors.
    ///
    /// The in-memory, PostgreSQL and REST backends read all five at once
    /// (one lock, one statement, one request); this default makes the five
    /// calls, `status` first.
    async fn snapshot(&self) -> Result<AttemptSnapshot> {
        let status = self.status().await?;
        let (data, start_time, end_time, expiration_time) = futures::try_join!(
            self.data(),
            self.start_time(),
            self.end_time(),
            self.expiration_time()
        )?;
        Ok(AttemptSnapshot::new(
            status,
            data,
            start_time,
            end_time,
            expiration_time,
        ))
    }

    /// Extends the lease to now + `extend` (not from the old deadline; zero
    /// or negative expires at the next check after that), optionally
    /// replacing the data. An attempt that is Pending or Expired but no
    /// longer active is completed as Expired instead (data replaced if
    /// given) and the call fails with `LostLease`; any other status fails
    /// with `NotPending`.
    ///
    /// ```
    /// use coordinate::{data, AttemptRequest, Backend, MemoryBackend, MockClock, WorkUnitMeta};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> coordinate::Result<()> {
    /// let clock = MockClock::new();
    /// let ns = MemoryBackend::with_clock(clock.clone()).namespace("app").await?;
    /// let spec = ns.set_work_spec(data!({"name": "resize"})).await?;
    /// spec.add_work_unit("img-1", data!({}), WorkUnitMeta::default()).await?;
    /// let worker = ns.worker("host-1").await?;
    /// let attempt = worker.request_attempts(&AttemptRequest::default()).await?.remove(0);
    ///
    /// attempt.renew(std::time::Duration::from_secs(60).into(), None).await?;
    /// assert_eq!(attempt.expiration_time().await?.timestamp(), 60);
    /// # Ok(())
    /// # }
    /// ```
    async fn renew(&self, extend: Duration, data: Option<DataMap>) -> Result<()>;

    /// Gives the unit up (Pending → Expired, clearing the unit's active
    /// attempt if it is this one). On an Expired attempt, succeeds and
    /// changes nothing (the data is not replaced); otherwise `NotPending`.
    async fn expire(&self, data: Option<DataMap>) -> Result<()>;

    /// Completes successfully (→ Finished) from Pending, or from Failed;
    /// otherwise `NotPending`. An active attempt stays active, so its unit
    /// is Finished and shows the attempt's data. If the attempt is still its
    /// unit's active one, the `"output"` of its data then adds (upserts)
    /// units to the spec named by the unit's spec's `then`
    /// ([`WorkSpecMeta::next_work_spec_name`]) in the same namespace; a
    /// missing target spec or unparseable output creates nothing and does
    /// not fail the call (see [`crate::rules::chained_units`]).
    async fn finish(&self, data: Option<DataMap>) -> Result<()>;

    /// Completes unsuccessfully (Pending → Failed; otherwise `NotPending`).
    /// An active attempt stays active, so its unit is Failed.
    async fn fail(&self, data: Option<DataMap>) -> Result<()>;

    /// Completes unsuccessfully but runnable again (Pending → Retryable;
    /// otherwise `NotPending`), clearing the unit's active attempt if it is
    /// this one. The unit's `not_before` becomes now + `delay`, even for a
    /// zero delay and even if the attempt was not active.
    async fn retry(&self, data: Option<DataMap>, delay: Duration) -> Result<()>;
}

/// Conveniences over [`Backend`], implemented once for every backend.
///
/// Their futures are not boxed (the trait is never a trait object): a
/// resolution pays only for the trait calls it makes.
///
/// ```
/// use coordinate::memory::MemoryBackend;
/// use coordinate::{data, Backend, BackendExt, WorkUnitMeta};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> coordinate::Result<()> {
/// let backend = MemoryBackend::new();
/// let spec = backend.namespace("app").await?.set_work_spec(data!({"name": "resize"})).await?;
/// spec.add_work_unit("img-1", data!({"w": 640}), WorkUnitMeta::default()).await?;
///
/// let unit = backend.work_unit_at("app", "resize", "img-1").await?;
/// assert_eq!(unit.data().await?, data!({"w": 640}));
/// # Ok(())
/// # }
/// ```
pub trait BackendExt: Backend {
    /// Resolves `namespace` → `work_spec`, as a stateless job server does
    /// for every request.
    fn work_spec_at(
        &self,
        namespace: &str,
        work_spec: &str,
    ) -> impl Future<Output = Result<WorkSpecRef>> + Send {
        async move { self.namespace(namespace).await?.work_spec(work_spec).await }
    }

    /// Resolves `namespace` → `work_spec` → `work_unit`.
    fn work_unit_at(
        &self,
        namespace: &str,
        work_spec: &str,
        work_unit: &str,
    ) -> impl Future<Output = Result<WorkUnitRef>> + Send {
        async move {
            let spec = self.work_spec_at(namespace, work_spec).await?;
            spec.work_unit(work_unit).await
        }
    }

    /// Resolves `namespace` → `worker`.
    fn worker_at(
        &self,
        namespace: &str,
        worker: &str,
    ) -> impl Future<Output = Result<WorkerRef>> + Send {
        async move { self.namespace(namespace).await?.worker(worker).await }
    }
}

impl<T: Backend + ?Sized> BackendExt for T {}
