//! [`Instrumented`]: a decorator backend that counts every call, per
//! operation, and can add latency to name lookups or to any operations.
//!
//! It measures what a layer above it costs the backend: the cache's tests
//! assert exact call counts for hits, misses, invalidations and coalesced
//! misses; the benchmarks use its latency to stand in for a database round
//! trip; the `coordbench` example reports backend calls per request.
//!
//! Every handle it returns is instrumented too, so calls made through
//! handles (a unit's `status`, an attempt's `finish`) are counted as well.
//! Handles passed back in (`make_attempt`, `set_parent`) are unwrapped.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> coordinate::Result<()> {
//! use coordinate::instrumented::{Instrumented, Op};
//! use coordinate::memory::MemoryBackend;
//! use coordinate::Backend;
//!
//! let backend = Instrumented::new(MemoryBackend::new());
//! let ns = backend.namespace("n").await?;
//! ns.work_spec_names().await?;
//! let calls = backend.calls();
//! assert_eq!(calls.get(Op::Namespace), 1);
//! assert_eq!(calls.get(Op::WorkSpecNames), 1);
//! assert_eq!(calls.lookups(), 1);
//! assert_eq!(calls.total(), 2);
//! # Ok(())
//! # }
//! ```

mod handles;

use std::collections::BTreeMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration as StdDuration;

use async_trait::async_trait;

use crate::api::{Backend, NamespaceRef};
use crate::error::Result;
use crate::model::Summary;
use handles::InstNamespace;

macro_rules! ops {
    ($($(#[$doc:meta])* $op:ident),+ $(,)?) => {
        /// One operation of the API (a fallible trait method).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        #[non_exhaustive]
        pub enum Op {
            $($(#[$doc])* $op),+
        }

        impl Op {
            /// Every operation.
            pub const ALL: &'static [Op] = &[$(Op::$op),+];
        }
    };
}

ops! {
    /// `Backend::namespace` (a lookup).
    Namespace,
    /// `Backend::namespaces`.
    Namespaces,
    /// `Backend::summarize`.
    Summarize,
    /// `Backend::ping`.
    Ping,
    /// `Namespace::destroy`.
    DestroyNamespace,
    /// `Namespace::set_work_spec`.
    SetWorkSpec,
    /// `Namespace::work_spec` (a lookup).
    WorkSpec,
    /// `Namespace::destroy_work_spec`.
    DestroyWorkSpec,
    /// `Namespace::work_spec_names`.
    WorkSpecNames,
    /// `Namespace::worker` (a lookup).
    Worker,
    /// `Namespace::workers`.
    Workers,
    /// `Namespace::summarize`.
    NamespaceSummarize,
    /// `WorkSpec::data`.
    SpecData,
    /// `WorkSpec::set_data`.
    SpecSetData,
    /// `WorkSpec::meta`.
    SpecMeta,
    /// `WorkSpec::set_meta`.
    SpecSetMeta,
    /// `WorkSpec::add_work_unit`.
    AddWorkUnit,
    /// `WorkSpec::add_work_units`.
    AddWorkUnits,
    /// `WorkSpec::work_unit` (a lookup).
    WorkUnit,
    /// `WorkSpec::work_units`.
    WorkUnits,
    /// `WorkSpec::count_work_unit_status`.
    CountWorkUnitStatus,
    /// `WorkSpec::set_work_unit_priorities`.
    SetWorkUnitPriorities,
    /// `WorkSpec::adjust_work_unit_priorities`.
    AdjustWorkUnitPriorities,
    /// `WorkSpec::delete_work_units`.
    DeleteWorkUnits,
    /// `WorkSpec::summarize`.
    SpecSummarize,
    /// `WorkUnit::data`.
    UnitData,
    /// `WorkUnit::status`.
    UnitStatus,
    /// `WorkUnit::meta`.
    UnitMeta,
    /// `WorkUnit::snapshot`.
    UnitSnapshot,
    /// `WorkUnit::data_and_meta`.
    UnitDataAndMeta,
    /// `WorkUnit::set_meta`.
    UnitSetMeta,
    /// `WorkUnit::priority`.
    UnitPriority,
    /// `WorkUnit::set_priority`.
    UnitSetPriority,
    /// `WorkUnit::active_attempt`.
    ActiveAttempt,
    /// `WorkUnit::clear_active_attempt`.
    ClearActiveAttempt,
    /// `WorkUnit::attempts`.
    UnitAttempts,
    /// `WorkUnit::num_attempts`.
    NumAttempts,
    /// `Worker::parent`.
    WorkerParent,
    /// `Worker::set_parent`.
    WorkerSetParent,
    /// `Worker::children`.
    WorkerChildren,
    /// `Worker::active`.
    WorkerActive,
    /// `Worker::deactivate`.
    WorkerDeactivate,
    /// `Worker::mode`.
    WorkerMode,
    /// `Worker::data`.
    WorkerData,
    /// `Worker::expiration`.
    WorkerExpiration,
    /// `Worker::last_update`.
    WorkerLastUpdate,
    /// `Worker::update`.
    WorkerUpdate,
    /// `Worker::request_attempts`.
    RequestAttempts,
    /// `Worker::make_attempt`.
    MakeAttempt,
    /// `Worker::active_attempts`.
    ActiveAttempts,
    /// `Worker::all_attempts`.
    AllAttempts,
    /// `Worker::child_attempts`.
    ChildAttempts,
    /// `Attempt::status`.
    AttemptStatus,
    /// `Attempt::data`.
    AttemptData,
    /// `Attempt::start_time`.
    AttemptStartTime,
    /// `Attempt::end_time`.
    AttemptEndTime,
    /// `Attempt::expiration_time`.
    AttemptExpirationTime,
    /// `Attempt::snapshot`.
    AttemptSnapshot,
    /// `Attempt::renew`.
    Renew,
    /// `Attempt::expire`.
    Expire,
    /// `Attempt::finish`.
    Finish,
    /// `Attempt::fail`.
    Fail,
    /// `Attempt::retry`.
    Retry,
}

impl Op {
    /// True for the name lookups a cache answers: `namespace`, `work_spec`,
    /// `worker` and `work_unit`.
    pub fn is_lookup(self) -> bool {
        matches!(
            self,
            Op::Namespace | Op::WorkSpec | Op::Worker | Op::WorkUnit
        )
    }
}

/// The counters and settings every handle of one [`Instrumented`] shares.
pub(crate) struct Probe {
    counts: Vec<AtomicU64>,
    latency: Option<Latency>,
}

/// How long the operations a function picks wait before they run.
type Latency = (StdDuration, fn(Op) -> bool);

/// The operations [`Instrumented::with_lookup_latency`] delays.
fn finds_by_name(op: Op) -> bool {
    op.is_lookup() || matches!(op, Op::Namespaces | Op::Workers)
}

impl Probe {
    /// Counts `op`, and waits the latency if it is one of the delayed.
    pub(crate) async fn enter(&self, op: Op) {
        if let Some(slot) = self.counts.get(op as usize) {
            slot.fetch_add(1, Ordering::Relaxed);
        }
        if let Some((latency, delayed)) = self.latency {
            if delayed(op) {
                // tokio's timer ticks in whole milliseconds (a 1 ms sleep
                // takes about 2 ms); a thread sleep on the blocking pool is
                // precise to tens of microseconds and still lets concurrent
                // lookups wait in parallel, as round trips on a pool would.
                let _ = tokio::task::spawn_blocking(move || std::thread::sleep(latency)).await;
            }
        }
    }

    fn snapshot(&self) -> Calls {
        Calls {
            counts: Op::ALL
                .iter()
                .map(|op| {
                    let n = self
                        .counts
                        .get(*op as usize)
                        .map_or(0, |c| c.load(Ordering::Relaxed));
                    (*op, n)
                })
                .filter(|(_, n)| *n > 0)
                .collect(),
        }
    }

    fn reset(&self) {
        for c in &self.counts {
            c.store(0, Ordering::Relaxed);
        }
    }
}

/// A snapshot of call counts.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Calls {
    counts: BTreeMap<Op, u64>,
}

impl Calls {
    /// Calls of `op`.
    pub fn get(&self, op: Op) -> u64 {
        self.counts.get(&op).copied().unwrap_or(0)
    }

    /// Calls of every operation.
    pub fn total(&self) -> u64 {
        self.counts.values().sum()
    }

    /// Name lookups (see [`Op::is_lookup`]).
    pub fn lookups(&self) -> u64 {
        self.counts
            .iter()
            .filter(|(op, _)| op.is_lookup())
            .map(|(_, n)| n)
            .sum()
    }

    /// The operations called at least once, with their counts.
    pub fn iter(&self) -> impl Iterator<Item = (Op, u64)> + '_ {
        self.counts.iter().map(|(op, n)| (*op, *n))
    }
}

impl fmt::Debug for Calls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.counts.iter()).finish()
    }
}

/// A backend that counts every call made through it and its handles.
///
/// Clones share the counters (and the inner backend, if `B: Clone` shares).
pub struct Instrumented<B> {
    inner: B,
    probe: Arc<Probe>,
}

impl<B: Clone> Clone for Instrumented<B> {
    fn clone(&self) -> Self {
        Instrumented {
            inner: self.inner.clone(),
            probe: Arc::clone(&self.probe),
        }
    }
}

impl<B> Instrumented<B> {
    /// Counts the calls made to `inner`.
    pub fn new(inner: B) -> Self {
        Self::delaying(inner, None)
    }

    fn delaying(inner: B, latency: Option<Latency>) -> Self {
        Instrumented {
            inner,
            probe: Arc::new(Probe {
                counts: Op::ALL.iter().map(|_| AtomicU64::new(0)).collect(),
                latency,
            }),
        }
    }

    /// Also waits `latency` in every name lookup, and in the lists a cache
    /// finds existing objects in (`namespaces`, `workers`), like a database
    /// round trip. Each waiting lookup occupies a thread of tokio's blocking pool
    /// for that time (for precision: tokio's timer rounds up to whole
    /// milliseconds), so concurrent lookups wait in parallel.
    pub fn with_lookup_latency(inner: B, latency: StdDuration) -> Self {
        Self::delaying(inner, Some((latency, finds_by_name)))
    }

    /// Also waits `latency` before every operation `delayed` picks, as
    /// [`with_lookup_latency`](Self::with_lookup_latency) does before
    /// lookups: a slow backend, for what its callers do while they wait
    /// (time out, give up, go on elsewhere).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> coordinate::Result<()> {
    /// use std::time::Duration;
    /// use coordinate::instrumented::{Instrumented, Op};
    /// use coordinate::memory::MemoryBackend;
    /// use coordinate::Backend;
    ///
    /// let slow_specs = Instrumented::with_latency(
    ///     MemoryBackend::new(),
    ///     Duration::from_millis(50),
    ///     |op| op == Op::SetWorkSpec,
    /// );
    /// let ns = slow_specs.namespace("n").await?;
    /// let gave_up = tokio::time::timeout(
    ///     Duration::from_millis(10),
    ///     ns.set_work_spec(coordinate::data!({"name": "s"})),
    /// )
    /// .await;
    /// assert!(gave_up.is_err());
    /// assert!(ns.work_spec_names().await?.is_empty());
    /// # Ok(())
    /// # }
    /// ```
    pub fn with_latency(inner: B, latency: StdDuration, delayed: fn(Op) -> bool) -> Self {
        Self::delaying(inner, Some((latency, delayed)))
    }

    /// The calls counted so far.
    pub fn calls(&self) -> Calls {
        self.probe.snapshot()
    }

    /// Sets every count back to zero.
    pub fn reset(&self) {
        self.probe.reset();
    }

    /// The wrapped backend.
    pub fn get_ref(&self) -> &B {
        &self.inner
    }

    /// The wrapped backend.
    pub fn into_inner(self) -> B {
        self.inner
    }
}

impl<B> fmt::Debug for Instrumented<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Instrumented")
            .field("calls", &self.calls())
            .finish_non_exhaustive()
    }
}

#[deny(clippy::missing_trait_methods)]
#[async_trait]
impl<B: Backend> Backend for Instrumented<B> {
    async fn namespace(&self, name: &str) -> Result<NamespaceRef> {
        self.probe.enter(Op::Namespace).await;
        let up = self.inner.namespace(name).await?;
        Ok(InstNamespace::wrap(&self.probe, up))
    }

    async fn namespaces(&self) -> Result<BTreeMap<String, NamespaceRef>> {
        self.probe.enter(Op::Namespaces).await;
        let all = self.inner.namespaces().await?;
        Ok(all
            .into_iter()
            .map(|(name, up)| (name, InstNamespace::wrap(&self.probe, up)))
            .collect())
    }

    async fn summarize(&self) -> Result<Summary> {
        self.probe.enter(Op::Summarize).await;
        self.inner.summarize().await
    }

    async fn ping(&self) -> Result<()> {
        self.probe.enter(Op::Ping).await;
        self.inner.ping().await
    }

    /// The inner backend's feed, uncounted (it is not an API operation).
    fn change_feed(&self) -> Option<Arc<dyn crate::feed::ChangeFeed>> {
        self.inner.change_feed()
    }
}
