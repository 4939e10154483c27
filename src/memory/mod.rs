//! [`MemoryBackend`]: the reference backend, kept entirely in memory.
//!
//! It implements every behaviour the API traits document and is the
//! embedded default: fast,
//! thread-safe, and gone when the process ends.
//!
//! # Design
//!
//! All state sits behind one `parking_lot` mutex (each operation only has to
//! be atomic, and every operation is short and synchronous: no lock is ever
//! held across an `.await`). Objects live in flat maps under ids that are never
//! reused, so a handle to a deleted object answers `Gone` even after a
//! same-named object is created (object identity).
//!
//! Work units sit in a slab (see `slab.rs`) under ids that hold their
//! slot, so a unit handle reaches its record by index; each work spec finds
//! its units by name through a hash table of slots (see `state/names.rs`).
//! Each work spec also keeps indexes (see `index.rs`): idle units by
//! priority then name, delayed units by not-before, pending attempts by
//! expiration, and unit names per status, which give name order to pages.
//! A lookup by name and `status` therefore cost the same in a spec of any
//! size, and `request_attempts`, counts, pages and lazy expiry a few
//! `O(log n)` steps, not a scan of the spec (see `benches/memory.rs` and
//! the `coordscale` example).
//!
//! Unit and attempt data are stored as JSON text (see `compact.rs`) and
//! converted at the API boundary; `add_work_units` stores a whole batch
//! under one lock acquisition.

mod compact;
mod feed;
mod handles;
mod index;
mod slab;
mod state;

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use parking_lot::Mutex;

use crate::api::{Backend, NamespaceRef};
use crate::clock::{Clock, SharedClock, SystemClock};
use crate::error::{ObjectKind, Result};
use crate::feed::{ChangeEvent, ChangeFeed};
use crate::model::{Summary, Time};

use state::State;

/// The in-memory reference backend.
///
/// Clones share one store.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> coordinate::Result<()> {
/// use coordinate::{data, Backend, MockClock, WorkUnitMeta, WorkUnitStatus};
/// use coordinate::memory::MemoryBackend;
///
/// let backend = MemoryBackend::with_clock(MockClock::new());
/// let ns = backend.namespace("demo").await?;
/// let spec = ns.set_work_spec(data!({"name": "jobs"})).await?;
/// let unit = spec.add_work_unit("u1", data!({"n": 1}), WorkUnitMeta::default()).await?;
/// assert_eq!(unit.status().await?, WorkUnitStatus::Available);
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct MemoryBackend {
    shared: Arc<Shared>,
}

/// The state and clock every handle of one backend shares.
pub(crate) struct Shared {
    state: Mutex<State>,
    clock: SharedClock,
    feed: Arc<feed::MemoryFeed>,
}

impl Shared {
    /// Runs one operation under the lock, with the clock's now (at the
    /// stored resolution), read under the lock: operations apply in the
    /// order of their nows, so none sees a change made at a later instant.
    fn run<R>(&self, operation: impl FnOnce(&mut State, Time) -> R) -> R {
        let mut state = self.state.lock();
        let now = crate::rules::limits::stored_now(self.clock.now());
        operation(&mut state, now)
    }

    /// Publishes the event `event` builds, if anyone listens (events are
    /// only built then).
    fn announce(&self, event: impl FnOnce() -> Option<ChangeEvent>) {
        if self.feed.wanted() {
            if let Some(event) = event() {
                self.feed.publish(event);
            }
        }
    }

    /// [`run`](Self::run) for a call on a handle of `kind`: a `Gone` names
    /// that kind, whichever object was found missing.
    fn run_on<R>(
        &self,
        kind: ObjectKind,
        operation: impl FnOnce(&mut State, Time) -> Result<R>,
    ) -> Result<R> {
        self.run(operation).map_err(|e| e.on(kind))
    }
}

impl MemoryBackend {
    /// An empty backend on the system clock.
    pub fn new() -> Self {
        Self::with_clock(SystemClock)
    }

    /// An empty backend reading time from `clock`.
    pub fn with_clock(clock: impl Clock + 'static) -> Self {
        Self::with_shared_clock(Arc::new(clock))
    }

    /// An empty backend reading time from a shared clock.
    pub fn with_shared_clock(clock: SharedClock) -> Self {
        Self::with_feed_capacity(clock, feed::DEFAULT_FEED_CAPACITY)
    }

    /// An empty backend whose change feed lets a subscriber fall at most
    /// `capacity` events behind before it sees a gap (default 4096).
    pub fn with_feed_capacity(clock: SharedClock, capacity: usize) -> Self {
        MemoryBackend {
            shared: Arc::new(Shared {
                state: Mutex::new(State::default()),
                clock,
                feed: Arc::new(feed::MemoryFeed::new(capacity)),
            }),
        }
    }
}

impl Default for MemoryBackend {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for MemoryBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sizes = self.shared.state.lock().sizes();
        f.debug_struct("MemoryBackend")
            .field("namespaces", &sizes.namespaces)
            .field("work_specs", &sizes.work_specs)
            .field("work_units", &sizes.work_units)
            .field("attempts", &sizes.attempts)
            .field("workers", &sizes.workers)
            .finish()
    }
}

#[async_trait]
impl Backend for MemoryBackend {
    async fn namespace(&self, name: &str) -> Result<NamespaceRef> {
        crate::rules::limits::check_name(name)?;
        let id = self.shared.run(|st, _| st.namespace(name));
        Ok(handles::namespace_handle(&self.shared, id, name))
    }

    async fn namespaces(&self) -> Result<BTreeMap<String, NamespaceRef>> {
        let all = self.shared.run(|st, _| st.namespaces());
        Ok(all
            .into_iter()
            .map(|(name, id)| {
                let handle = handles::namespace_handle(&self.shared, id, &name);
                (name, handle)
            })
            .collect())
    }

    async fn summarize(&self) -> Result<Summary> {
        self.shared.run(|st, now| st.summarize_all(now))
    }

    /// Always ready: the store is this process's memory.
    async fn ping(&self) -> Result<()> {
        Ok(())
    }

    /// An in-process feed: every delete made through this backend (or a
    /// clone) reaches every subscriber, caches included.
    fn change_feed(&self) -> Option<Arc<dyn ChangeFeed>> {
        Some(Arc::clone(&self.shared.feed) as Arc<dyn ChangeFeed>)
    }
}
