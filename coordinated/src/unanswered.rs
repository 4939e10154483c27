//! What a request changes must not depend on whether its answer is waited
//! for: the server drops a request's future when its client goes away or
//! its timeout answers, at whatever `.await` it is.
//!
//! * [`Unanswered`] holds attempts made for a request until its answer is
//!   ready; if the request ends first (dropped, or failed after making
//!   them), they are expired, so their units go back to work at once
//!   instead of staying pending, held by a worker that never learned of
//!   them, until their leases run out.
//! * [`to_completion`] runs a change of several backend calls in a task of
//!   its own, so that a request dropped between two of them leaves none
//!   half-applied.
//!
//! Both run detached from the request; [`settled`] waits for them, so that
//! a server shutting down lets them end rather than cutting them off with
//! its runtime.

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};

use coordinate::{AttemptRef, Error};
use tokio::sync::Notify;

/// Work running detached from the requests that started it, process-wide.
static DETACHED: Detached = Detached {
    running: AtomicUsize::new(0),
    ended: Notify::const_new(),
};

struct Detached {
    running: AtomicUsize,
    ended: Notify,
}

/// One piece of detached work, counted while it lives.
struct Running;

impl Running {
    fn start() -> Self {
        DETACHED.running.fetch_add(1, Ordering::AcqRel);
        Running
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if DETACHED.running.fetch_sub(1, Ordering::AcqRel) == 1 {
            DETACHED.ended.notify_waiters();
        }
    }
}

/// Spawns `work` detached on `runtime`, counted until it ends.
fn spawn_detached<T: Send + 'static>(
    runtime: &tokio::runtime::Handle,
    work: impl Future<Output = T> + Send + 'static,
) -> tokio::task::JoinHandle<T> {
    let running = Running::start();
    runtime.spawn(async move {
        let _running = running;
        work.await
    })
}

/// Completes once no detached work is running (work started meanwhile
/// included).
pub(crate) async fn settled() {
    loop {
        let ended = DETACHED.ended.notified();
        let mut ended = std::pin::pin!(ended);
        // Registered before the count is read, so an end in between wakes it.
        ended.as_mut().enable();
        if DETACHED.running.load(Ordering::Acquire) == 0 {
            return;
        }
        ended.await;
    }
}

/// Attempts made for a request not answered yet: expired when dropped
/// before [`answered`](Self::answered).
pub(crate) struct Unanswered(Vec<AttemptRef>);

impl Unanswered {
    /// Holds `attempts` until the request's answer is ready.
    pub(crate) fn new(attempts: Vec<AttemptRef>) -> Self {
        Unanswered(attempts)
    }

    /// The answer naming the attempts is ready: they are the client's.
    pub(crate) fn answered(mut self) {
        self.0.clear();
    }
}

impl Drop for Unanswered {
    fn drop(&mut self) {
        let attempts = std::mem::take(&mut self.0);
        if attempts.is_empty() {
            return;
        }
        // Requests are served on a runtime; outside one (never in the
        // server) the attempts are left to their leases.
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            spawn_detached(&runtime, async move {
                for attempt in attempts {
                    // An attempt already over (its unit deleted or made
                    // again meanwhile) has nothing to give back.
                    let _ = attempt.expire(None).await;
                }
            });
        }
    }
}

/// Runs `change` to its end even if the caller stops waiting for it. A
/// panic in it is a server bug, answered as an error.
pub(crate) async fn to_completion<T: Send + 'static>(
    change: impl Future<Output = Result<T, Error>> + Send + 'static,
) -> Result<T, Error> {
    spawn_detached(&tokio::runtime::Handle::current(), change)
        .await
        .map_err(|e| Error::backend(std::io::Error::other(format!("change failed: {e}"))))?
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use coordinate::memory::MemoryBackend;
    use coordinate::{data, AttemptRequest, Backend, WorkUnitMeta, WorkUnitStatus};

    use super::*;

    /// Two units of "n"/"s" granted to a worker.
    async fn granted() -> (coordinate::WorkSpecRef, Vec<AttemptRef>) {
        let backend = MemoryBackend::new();
        let ns = backend.namespace("n").await.unwrap();
        let spec = ns.set_work_spec(data!({"name": "s"})).await.unwrap();
        for unit in ["a", "b"] {
            spec.add_work_unit(unit, data!({}), WorkUnitMeta::default())
                .await
                .unwrap();
        }
        let worker = ns.worker("w").await.unwrap();
        let attempts = worker
            .request_attempts(&AttemptRequest::units(2))
            .await
            .unwrap();
        assert_eq!(attempts.len(), 2);
        (spec, attempts)
    }

    async fn statuses(spec: &coordinate::WorkSpecRef) -> Vec<WorkUnitStatus> {
        let mut out = Vec::new();
        for unit in ["a", "b"] {
            out.push(spec.work_unit(unit).await.unwrap().status().await.unwrap());
        }
        out
    }

    #[tokio::test]
    async fn dropped_unanswered_attempts_are_expired() {
        let (spec, attempts) = granted().await;
        drop(Unanswered::new(attempts));
        let mut released = false;
        for _ in 0..100 {
            if statuses(&spec).await == [WorkUnitStatus::Available; 2] {
                released = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(released, "{:?}", statuses(&spec).await);
    }

    #[tokio::test]
    async fn answered_attempts_stay_pending() {
        let (spec, attempts) = granted().await;
        Unanswered::new(attempts).answered();
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(statuses(&spec).await, [WorkUnitStatus::Pending; 2]);
    }

    #[tokio::test]
    async fn a_change_goes_on_when_its_caller_stops_waiting() {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let waited = tokio::time::timeout(
            Duration::from_millis(10),
            to_completion(async move {
                tokio::time::sleep(Duration::from_millis(50)).await;
                let _ = tx.send(());
                Ok(())
            }),
        )
        .await;
        assert!(waited.is_err());
        assert_eq!(rx.await, Ok(()));
    }

    #[tokio::test]
    async fn settled_waits_for_detached_work() {
        let (tx, mut rx) = tokio::sync::oneshot::channel();
        let change = tokio::spawn(to_completion(async move {
            tokio::time::sleep(Duration::from_millis(50)).await;
            let _ = tx.send(());
            Ok(())
        }));
        tokio::time::sleep(Duration::from_millis(10)).await;
        change.abort();
        settled().await;
        assert_eq!(rx.try_recv(), Ok(()));
    }

    #[tokio::test]
    async fn a_panicking_change_is_an_error() {
        let answer = to_completion(async { panic!("a bug") }).await;
        let answer: Result<(), Error> = answer;
        assert!(matches!(answer, Err(Error::Backend(_))), "{answer:?}");
    }
}
