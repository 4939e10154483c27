//! The cached worker handle.

use std::any::Any;
use std::sync::Arc;

use async_trait::async_trait;

use super::attempt::{released_unless_wrapped, wrap_attempt};
use super::changes::{Fence, Path};
use super::handle::{kind_tables, Cached, Handle, Kind};
use super::namespace::CachedNamespace;
use super::recover::{forward, live_link, recover, run, run_asking_first, MAX_RECOVERIES};
use super::shared::Caches;
use super::stats::{Counters, KindCounters};
use super::store::Store;
use super::work_unit::CachedWorkUnit;
use crate::api::{AttemptRef, WorkUnitRef, Worker, WorkerRef};
use crate::error::{Error, ObjectKind, Result};
use crate::model::{AttemptRequest, DataMap, Duration, Time};
use crate::rules::limits;

/// The worker kind of [`Cached`] handle.
pub(crate) enum WorkerKind {}

/// A worker of a [`Cache`](super::Cache): the worker that now has this name
/// in its namespace.
pub(crate) type CachedWorker = Cached<WorkerKind>;

impl Kind for WorkerKind {
    kind_tables!(Worker, workers, Arc<CachedNamespace>, has_children: false);

    fn path(handle: &CachedWorker) -> Path<'_> {
        handle.parent.path().child(handle.name())
    }

    async fn resolve(handle: &CachedWorker, _create: bool) -> Result<Arc<CachedWorker>> {
        let lost = handle.link.load_full();
        let namespace = handle.parent.current().await?;
        namespace.existing_worker(handle.name(), lost).await
    }
}

/// The cached handle for a worker the backend returned while answering for
/// `namespace` in a call started after `fence`, adopted in its own
/// namespace (see [`CachedNamespace::adopt_home`]).
pub(super) async fn adopt_worker(
    namespace: &CachedNamespace,
    up: WorkerRef,
    fence: Fence,
) -> Result<Arc<CachedWorker>> {
    namespace
        .adopt_home::<WorkerKind>(up, <dyn Worker>::namespace_name, fence)
        .await
}

impl CachedWorker {
    /// Wraps attempts the backend returned for this worker (or its
    /// children) in a call started after `fence`. From a list (`listed`),
    /// one whose unit's namespace is gone by the time its handles are made
    /// is left out: it went with that namespace, as a list made now would
    /// say. Attempts just made all reach the caller or the error.
    async fn wrap_all(
        &self,
        all: &[AttemptRef],
        fence: Fence,
        listed: bool,
    ) -> Result<Vec<AttemptRef>> {
        let me = self.me()?;
        let mut out = Vec::with_capacity(all.len());
        for up in all {
            let up = Arc::clone(up);
            match wrap_attempt(up, &self.parent, None, Some(&me), fence).await {
                Ok(attempt) => out.push(attempt),
                Err(Error::Gone {
                    kind: ObjectKind::Namespace,
                }) if listed => {}
                Err(other) => return Err(other),
            }
        }
        Ok(out)
    }

    /// `make_attempt` with a unit of this cache, unwrapped.
    async fn make_attempt_cached(
        &self,
        unit: &CachedWorkUnit,
        lifetime: Duration,
    ) -> Result<AttemptRef> {
        let me = self.me()?;
        let unit = unit.me()?;
        let fence = self.shared.fence();
        let up = self
            .with_argument(&unit, |worker, up_unit| async move {
                worker.make_attempt(&up_unit, lifetime).await
            })
            .await?;
        let wrapping = wrap_attempt(Arc::clone(&up), &self.parent, Some(&unit), Some(&me), fence);
        released_unless_wrapped(&[up], wrapping).await
    }

    /// Runs `call` on this worker's upstream object with `argument`'s, a
    /// handle of this cache. A `Gone` may be about either, and which is
    /// unknown (a re-resolved argument is a new upstream handle even when
    /// its object is the same): the argument and this worker are
    /// re-resolved in turn, the argument first, each at most
    /// [`MAX_RECOVERIES`] times, as a call on either alone would.
    async fn with_argument<K, T, F, Fut>(&self, argument: &Cached<K>, call: F) -> Result<T>
    where
        K: Kind,
        F: Fn(WorkerRef, Arc<K::Up>) -> Fut,
        Fut: std::future::Future<Output = Result<T>>,
    {
        let mut budget = MAX_RECOVERIES;
        let mut link = live_link(&self.shared, self, &mut budget, false).await?;
        let mut argument_link = argument.link_for_call().await?;
        let mut refreshes = MAX_RECOVERIES;
        let mut argument_next = true;
        loop {
            let upstream = Arc::clone(&link.upstream);
            let answer = call(upstream, Arc::clone(&argument_link.upstream)).await;
            if let Err(Error::Gone { .. }) = answer {
                if refreshes > 0 && (argument_next || budget == 0) {
                    refreshes -= 1;
                    argument_next = false;
                    argument_link = argument.refresh(&argument_link).await?;
                    continue;
                }
                if budget > 0 {
                    budget -= 1;
                    argument_next = true;
                    link = recover(&self.shared, self, &link, false).await?;
                    continue;
                }
            }
            return answer.map_err(|e| e.on(ObjectKind::Worker));
        }
    }
}

#[deny(clippy::missing_trait_methods)]
#[async_trait]
impl Worker for CachedWorker {
    fn name(&self) -> &str {
        Cached::name(self)
    }

    fn namespace_name(&self) -> &str {
        self.parent.name()
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    /// The parent's handle is made after the call, outside its recovery: a
    /// parent whose namespace went meanwhile went with it (`None`), which is
    /// no reason for this worker to re-resolve.
    async fn parent(&self) -> Result<Option<WorkerRef>> {
        let (up, fence) = run(&self.shared, self, |link| async move {
            let fence = self.shared.fence();
            Ok((link.upstream.parent().await?, fence))
        })
        .await?;
        let Some(up) = up else {
            return Ok(None);
        };
        match adopt_worker(&self.parent, up, fence).await {
            Ok(parent) => Ok(Some(parent as WorkerRef)),
            Err(Error::Gone {
                kind: ObjectKind::Namespace,
            }) => Ok(None),
            Err(other) => Err(other),
        }
    }

    /// A parent from this cache is unwrapped to its current upstream worker;
    /// any other goes to the backend as given (it answers `WrongBackend`
    /// for a foreign worker). No parent is as any other call: a worker
    /// known to be gone is `Gone`, not asked of a backend that might make
    /// it again (one over REST, resolving its URL).
    async fn set_parent(&self, parent: Option<&WorkerRef>) -> Result<()> {
        let Some(parent) = parent else {
            return forward!(self, set_parent(None));
        };
        let ours = parent
            .as_any()
            .downcast_ref::<CachedWorker>()
            .filter(|p| Arc::ptr_eq(&p.shared, &self.shared));
        let Some(ours) = ours else {
            return run_asking_first(&self.shared, self, |link| async move {
                link.upstream.set_parent(Some(parent)).await
            })
            .await;
        };
        self.with_argument(ours, |worker, up_parent| async move {
            worker.set_parent(Some(&up_parent)).await
        })
        .await
    }

    /// As `parent`: a child whose namespace went meanwhile is left out.
    async fn children(&self) -> Result<Vec<WorkerRef>> {
        let (all, fence) = run(&self.shared, self, |link| async move {
            let fence = self.shared.fence();
            Ok((link.upstream.children().await?, fence))
        })
        .await?;
        let mut out = Vec::with_capacity(all.len());
        for up in all {
            match adopt_worker(&self.parent, up, fence).await {
                Ok(child) => out.push(child as WorkerRef),
                Err(Error::Gone {
                    kind: ObjectKind::Namespace,
                }) => {}
                Err(other) => return Err(other),
            }
        }
        Ok(out)
    }

    async fn active(&self) -> Result<bool> {
        forward!(self, active())
    }

    async fn deactivate(&self) -> Result<()> {
        forward!(self, deactivate())
    }

    async fn mode(&self) -> Result<String> {
        forward!(self, mode())
    }

    async fn data(&self) -> Result<DataMap> {
        forward!(self, data())
    }

    async fn expiration(&self) -> Result<Time> {
        forward!(self, expiration())
    }

    async fn last_update(&self) -> Result<Time> {
        forward!(self, last_update())
    }

    async fn update(&self, data: DataMap, now: Time, expiration: Time, mode: &str) -> Result<()> {
        let (data, now, expiration) = limits::checked_worker_update(data, now, expiration, mode)?;
        run(&self.shared, self, |link| {
            let data = data.clone();
            async move { link.upstream.update(data, now, expiration, mode).await }
        })
        .await
    }

    async fn request_attempts(&self, request: &AttemptRequest) -> Result<Vec<AttemptRef>> {
        let fence = self.shared.fence();
        let made = forward!(self, request_attempts(request))?;
        released_unless_wrapped(&made, self.wrap_all(&made, fence, false)).await
    }

    /// A unit from this cache is unwrapped; on `Gone` it is re-resolved and
    /// the call retried once. Anything else goes to the backend as given,
    /// and on `Gone` this worker is re-resolved and the call retried once
    /// (the `Gone` may be about the unit, which the cache cannot follow).
    async fn make_attempt(&self, unit: &WorkUnitRef, lifetime: Duration) -> Result<AttemptRef> {
        let ours = unit
            .as_any()
            .downcast_ref::<CachedWorkUnit>()
            .filter(|u| Arc::ptr_eq(&u.shared, &self.shared));
        if let Some(ours) = ours {
            // A `Gone` about the unit is the worker call's `Gone`.
            return self
                .make_attempt_cached(ours, lifetime)
                .await
                .map_err(|e| e.on(Self::KIND));
        }
        let me = self.me()?;
        let fence = self.shared.fence();
        let up = run_asking_first(&self.shared, self, |link| async move {
            link.upstream.make_attempt(unit, lifetime).await
        })
        .await?;
        let wrapping = wrap_attempt(Arc::clone(&up), &self.parent, None, Some(&me), fence);
        released_unless_wrapped(&[up], wrapping).await
    }

    async fn active_attempts(&self) -> Result<Vec<AttemptRef>> {
        let fence = self.shared.fence();
        let all = forward!(self, active_attempts())?;
        self.wrap_all(&all, fence, true).await
    }

    async fn all_attempts(&self) -> Result<Vec<AttemptRef>> {
        let fence = self.shared.fence();
        let all = forward!(self, all_attempts())?;
        self.wrap_all(&all, fence, true).await
    }

    async fn child_attempts(&self) -> Result<Vec<AttemptRef>> {
        let fence = self.shared.fence();
        let all = forward!(self, child_attempts())?;
        self.wrap_all(&all, fence, true).await
    }
}
