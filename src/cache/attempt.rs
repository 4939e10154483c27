//! The cached attempt handle: not memoized itself, but its unit and worker
//! are the cache's handles.

use std::any::Any;
use std::fmt;
use std::future::Future;
use std::sync::Arc;

use async_trait::async_trait;

use super::changes::Fence;
use super::namespace::CachedNamespace;
use super::work_spec::WorkSpecKind;
use super::work_unit::{CachedWorkUnit, WorkUnitKind};
use super::worker::{adopt_worker, CachedWorker};
use crate::api::{Attempt, AttemptRef, WorkSpec, WorkUnitRef, WorkerRef};
use crate::detached::Unclaimed;
use crate::error::Result;
use crate::model::{AttemptSnapshot, AttemptStatus, DataMap, Duration, Time};

/// An attempt of a [`Cache`](super::Cache). Every call passes straight
/// through: an attempt has no name to re-resolve, so a `Gone` is final.
pub(crate) struct CachedAttempt {
    upstream: AttemptRef,
    work_unit: Arc<CachedWorkUnit>,
    worker: Arc<CachedWorker>,
}

impl CachedAttempt {
    pub(super) fn handle(
        upstream: AttemptRef,
        work_unit: Arc<CachedWorkUnit>,
        worker: Arc<CachedWorker>,
    ) -> AttemptRef {
        Arc::new(CachedAttempt {
            upstream,
            work_unit,
            worker,
        })
    }
}

/// Wraps an attempt the backend returned in `namespace`, in a call started
/// after `fence`, using `unit` and `worker` when they are the attempt's own
/// and the cached handles (adopted without a backend call) otherwise.
pub(super) async fn wrap_attempt(
    upstream: AttemptRef,
    namespace: &CachedNamespace,
    unit: Option<&Arc<CachedWorkUnit>>,
    worker: Option<&Arc<CachedWorker>>,
    fence: Fence,
) -> Result<AttemptRef> {
    let up_unit = upstream.work_unit();
    let work_unit = match unit {
        Some(u) if u.name() == up_unit.name() => Arc::clone(u),
        _ => {
            let spec = namespace
                .adopt_home::<WorkSpecKind>(
                    up_unit.work_spec(),
                    <dyn WorkSpec>::namespace_name,
                    fence,
                )
                .await?;
            spec.adopt_here::<WorkUnitKind>(up_unit, fence).await?
        }
    };
    let up_worker = upstream.worker();
    let worker = match worker {
        // A child may have its parent's name in another namespace.
        Some(w)
            if w.name() == up_worker.name() && w.parent.name() == up_worker.namespace_name() =>
        {
            Arc::clone(w)
        }
        _ => adopt_worker(namespace, up_worker, fence).await?,
    };
    Ok(CachedAttempt::handle(upstream, work_unit, worker))
}

/// `wrapping`, the cache's handles for attempts the backend has just made
/// (`made`). If they could not all be made, the attempts are released
/// (expired, as when a lease runs out) before the error is answered; if
/// the caller stops waiting first, they are released all the same (see
/// [`Unclaimed`]). So their units are available at once rather than held
/// for a whole lease by attempts nobody got. Best effort: an attempt that
/// cannot be expired waits for its lease to run out.
pub(super) async fn released_unless_wrapped<T>(
    made: &[AttemptRef],
    wrapping: impl Future<Output = Result<T>>,
) -> Result<T> {
    let unclaimed = Unclaimed::new(made.to_vec());
    let wrapped = wrapping.await;
    if wrapped.is_err() {
        for attempt in made {
            let _ = attempt.expire(None).await;
        }
    }
    unclaimed.claim();
    wrapped
}

impl fmt::Debug for CachedAttempt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CachedAttempt")
            .field("work_unit", &self.work_unit)
            .field("worker", &self.worker)
            .finish_non_exhaustive()
    }
}

#[deny(clippy::missing_trait_methods)]
#[async_trait]
impl Attempt for CachedAttempt {
    fn work_unit(&self) -> WorkUnitRef {
        Arc::clone(&self.work_unit) as WorkUnitRef
    }

    fn worker(&self) -> WorkerRef {
        Arc::clone(&self.worker) as WorkerRef
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    fn id(&self) -> Option<u64> {
        self.upstream.id()
    }

    async fn status(&self) -> Result<AttemptStatus> {
        self.upstream.status().await
    }

    async fn data(&self) -> Result<DataMap> {
        self.upstream.data().await
    }

    async fn start_time(&self) -> Result<Time> {
        self.upstream.start_time().await
    }

    async fn end_time(&self) -> Result<Option<Time>> {
        self.upstream.end_time().await
    }

    async fn expiration_time(&self) -> Result<Time> {
        self.upstream.expiration_time().await
    }

    async fn snapshot(&self) -> Result<AttemptSnapshot> {
        self.upstream.snapshot().await
    }

    async fn renew(&self, extend: Duration, data: Option<DataMap>) -> Result<()> {
        self.upstream.renew(extend, data).await
    }

    async fn expire(&self, data: Option<DataMap>) -> Result<()> {
        self.upstream.expire(data).await
    }

    async fn finish(&self, data: Option<DataMap>) -> Result<()> {
        self.upstream.finish(data).await
    }

    async fn fail(&self, data: Option<DataMap>) -> Result<()> {
        self.upstream.fail(data).await
    }

    async fn retry(&self, data: Option<DataMap>, delay: Duration) -> Result<()> {
        self.upstream.retry(data, delay).await
    }
}
