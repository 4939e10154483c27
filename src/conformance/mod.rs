//! The generic conformance suite: every behaviour the [`Backend`] traits
//! document, as plain `pub async fn`s runnable against any backend.
//!
//! Each scenario takes a fresh [`TestBackend`] (a backend, the
//! [`MockClock`] it reads, and the [`Identity`] rule its handles follow) and
//! panics with `[scenario] step: …` when the backend misbehaves. Scenarios
//! never share state, so a test harness may run them in parallel.
//!
//! The [`conformance_tests!`](crate::conformance_tests) macro turns the whole
//! list into one `#[tokio::test]` per scenario for a factory expression:
//!
//! ```no_run
//! mod memory {
//!     use std::sync::Arc;
//!     use coordinate::{conformance::TestBackend, memory::MemoryBackend, MockClock};
//!     coordinate::conformance_tests!(|| async {
//!         let clock = MockClock::new();
//!         TestBackend::object(Arc::new(MemoryBackend::with_clock(clock.clone())), clock)
//!     });
//! }
//! ```
//!
//! The test crate needs `tokio` with the `macros` and `rt-multi-thread`
//! features. Scenarios that need two independent backends (the
//! `WrongBackend` checks) call the factory twice.
//!
//! # Permitted variations
//!
//! Every scenario accepts these variations of a durable backend (a
//! `NoSuchWorkSpec` /
//! `NoSuchWorkUnit` naming the object instead of `Gone`, empty lists under a
//! dead parent), so the durable backend runs the same suite unchanged. A
//! backend held to the reference behaviour
//! ([`TestBackend::with_dead_lists`] with [`DeadLists::Gone`]) must fail
//! every call of a dead handle, list calls included, with `Gone` alone.

use std::any::Any;
use std::fmt::{self, Debug};
use std::sync::Arc;

use crate::api::Backend;
use crate::clock::MockClock;

/// `assert_eq!` that names the scenario and the step.
macro_rules! check_eq {
    ($r:expr, $left:expr, $right:expr, $($arg:tt)+) => {
        assert_eq!($left, $right, "[{}] {}", $r.name, format_args!($($arg)+))
    };
}

/// `assert!` that names the scenario and the step.
macro_rules! check {
    ($r:expr, $cond:expr, $($arg:tt)+) => {
        assert!($cond, "[{}] {}", $r.name, format_args!($($arg)+))
    };
}

mod run;
mod suite;

mod attempts;
mod available_memory;
mod bulk;
mod chaining;
mod concurrency;
mod continuous;
mod edges;
mod errors;
mod expiry;
mod identity;
mod limits;
mod namespaces;
mod retries;
mod scheduler;
mod snapshot;
mod specs;
mod summaries;
mod time;
mod transitions;
mod units;
mod workers;

pub use attempts::*;
pub use available_memory::*;
pub use bulk::*;
pub use chaining::*;
pub use concurrency::*;
pub use continuous::*;
pub use edges::*;
pub use errors::*;
pub use expiry::*;
pub use identity::*;
pub use limits::*;
pub use namespaces::*;
pub use retries::*;
pub use scheduler::*;
pub use snapshot::*;
pub use specs::*;
pub use summaries::*;
pub use time::*;
pub use transitions::*;
pub use units::*;
pub use workers::*;

pub(crate) use run::{at_secs, each_named, names, unit_names_of, AttemptKey, Dead, Run, SEVEN};

/// Which rule a backend's handles follow after an object is deleted and a
/// new one with the same name is created.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Identity {
    /// Plain backends: a handle is bound to the object it
    /// was obtained for; after delete-and-recreate the old handle stays dead
    /// (`Gone`) and only a fresh lookup reaches the new object.
    Object,
    /// The `Cache` layer: a handle means "the object that now has this
    /// name", so after delete-and-recreate an old handle acts on the new
    /// object. Attempts have no name and stay dead in both modes.
    Name,
}

/// What calls on a dead handle answer, list and count calls (`work_units`,
/// `work_spec_names`, `summarize`, `attempts`, …) above all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeadLists {
    /// `Gone`, from every fallible call on the handle, lists included: the
    /// reference behaviour.
    Gone,
    /// `Gone`, the `NoSuch…` error naming the object, or (from a list or
    /// count call) an empty result: the permitted variations of a backend
    /// that notices a deletion only when a row it looks for is missing.
    GoneOrEmpty,
}

/// A fresh backend for one scenario, with the mock clock it reads.
pub struct TestBackend {
    /// The backend under test.
    pub backend: Arc<dyn Backend>,
    /// The clock the backend reads; the scenario advances it.
    pub clock: MockClock,
    /// The identity rule the backend's handles follow.
    pub identity: Identity,
    /// What the backend's calls on dead handles must answer
    /// ([`DeadLists::GoneOrEmpty`] unless set).
    pub dead_lists: DeadLists,
    /// Anything that must live as long as the backend (a throwaway database
    /// cluster, say); dropped when the scenario ends.
    pub guard: Option<Box<dyn Any + Send + Sync>>,
}

impl TestBackend {
    /// A backend whose handles follow [`Identity::Object`].
    pub fn object(backend: Arc<dyn Backend>, clock: MockClock) -> Self {
        Self::new(backend, clock, Identity::Object)
    }

    /// A backend whose handles follow [`Identity::Name`] (the cache).
    pub fn name_identity(backend: Arc<dyn Backend>, clock: MockClock) -> Self {
        Self::new(backend, clock, Identity::Name)
    }

    /// A backend with the given identity rule.
    pub fn new(backend: Arc<dyn Backend>, clock: MockClock, identity: Identity) -> Self {
        TestBackend {
            backend,
            clock,
            identity,
            dead_lists: DeadLists::GoneOrEmpty,
            guard: None,
        }
    }

    /// Holds the backend to `answer` on calls of dead handles.
    #[must_use]
    pub fn with_dead_lists(mut self, answer: DeadLists) -> Self {
        self.dead_lists = answer;
        self
    }

    /// Keeps `guard` alive as long as the backend.
    #[must_use]
    pub fn with_guard(mut self, guard: impl Any + Send + Sync) -> Self {
        self.guard = Some(Box::new(guard));
        self
    }
}

impl Debug for TestBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TestBackend")
            .field("backend", &self.backend)
            .field("clock", &self.clock)
            .field("identity", &self.identity)
            .field("guard", &self.guard.is_some())
            .finish()
    }
}
