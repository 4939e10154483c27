//! Work that must end even when its caller stops waiting.
//!
//! Any future may be dropped at any `.await`: a timeout fires, a client
//! disconnects. A change of several steps must not stop half-applied, and
//! attempts made for a caller who is gone must not hold their units until
//! their leases run out. Two tools do it, each with a task the caller does
//! not wait for:
//!
//! * [`spawn`] runs a future in a task of its own, to its end;
//! * [`Unclaimed`] holds attempts made for a caller until they are
//!   [claimed](Unclaimed::claim), and expires them (as a lease running out
//!   would) if dropped before.
//!
//! The backends use them for their own hand-outs: one whose backend call
//! may end after its caller stopped waiting (a statement already sent, a
//! request already on the wire) runs to its end, and its attempts are
//! either answered or expired; one whose caller stopped waiting before its
//! task started makes none. [`settled`] waits for every such task, the
//! library's and those started through [`spawn`], and every [`Unclaimed`]
//! still held: a server shutting down awaits it before its runtime stops,
//! so that the runtime does not cut them off.
//!
//! Best effort: the tasks run only while their runtime does. One dropped
//! with a runtime that has stopped (or outside any runtime, where an
//! `Unclaimed` has none to run on) leaves its attempts to their leases.
//! The count is the process's, so `settled` also waits for the work of
//! other runtimes in it.

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
#[cfg(any(feature = "postgres", feature = "rest"))]
use std::sync::Arc;

use tokio::sync::Notify;
use tokio::task::JoinHandle;

use crate::api::AttemptRef;
#[cfg(any(feature = "postgres", feature = "rest"))]
use crate::error::{Error, Result};

/// Detached tasks running, process-wide, and a signal when the count
/// drops to zero.
static DETACHED: Detached = Detached {
    running: AtomicUsize::new(0),
    ended: Notify::const_new(),
};

struct Detached {
    running: AtomicUsize,
    ended: Notify,
}

/// One detached task, counted while it lives.
#[derive(Debug)]
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

/// Runs `work` in a task of its own on the current runtime, counted by
/// [`settled`] until it ends. Dropping the handle does not stop it.
///
/// # Panics
///
/// Outside a tokio runtime, as [`tokio::spawn`] does.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let (done, mut ended) = tokio::sync::oneshot::channel();
/// let handle = coordinate::detached::spawn(async move {
///     tokio::task::yield_now().await;
///     let _ = done.send(());
/// });
/// drop(handle); // its caller stops waiting; the task goes on
/// coordinate::detached::settled().await;
/// assert_eq!(ended.try_recv(), Ok(()));
/// # }
/// ```
pub fn spawn<T: Send + 'static>(work: impl Future<Output = T> + Send + 'static) -> JoinHandle<T> {
    let running = Running::start();
    tokio::spawn(async move {
        let _running = running;
        work.await
    })
}

/// Completes once no detached task is running and no [`Unclaimed`] is
/// held, those started meanwhile included: the tasks of [`spawn`], the
/// attempts not claimed yet, and the expiries of those dropped.
pub async fn settled() {
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

/// Attempts made for a caller: expired when dropped before
/// [`claim`](Self::claim).
///
/// A job server holds the attempts it hands out in one until its answer
/// naming them is ready; a request dropped before (its client gone, its
/// timeout answered) gives their units back at once.
///
/// ```
/// # use coordinate::{data, AttemptRequest, Backend, MemoryBackend, WorkUnitMeta, WorkUnitStatus};
/// # use coordinate::detached::{settled, Unclaimed};
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> coordinate::Result<()> {
/// let ns = MemoryBackend::new().namespace("n").await?;
/// let spec = ns.set_work_spec(data!({"name": "s"})).await?;
/// let unit = spec.add_work_unit("u", data!({}), WorkUnitMeta::default()).await?;
/// let worker = ns.worker("w").await?;
/// let made = worker.request_attempts(&AttemptRequest::units(1)).await?;
/// drop(Unclaimed::new(made)); // nobody got them
/// settled().await;
/// assert_eq!(unit.status().await?, WorkUnitStatus::Available);
/// # Ok(())
/// # }
/// ```
///
/// It counts for [`settled`] from the start, not only once dropped: one
/// that ends up in a task's output, which tokio drops after the task has
/// ended, is still waited for.
#[derive(Debug)]
pub struct Unclaimed {
    attempts: Vec<AttemptRef>,
    running: Option<Running>,
}

impl Unclaimed {
    /// Holds `attempts` for their caller.
    pub fn new(attempts: Vec<AttemptRef>) -> Self {
        let running = (!attempts.is_empty()).then(Running::start);
        Unclaimed { attempts, running }
    }

    /// The attempts are the caller's now: dropping no longer expires them.
    pub fn claim(mut self) {
        self.attempts.clear();
        self.running = None;
    }
}

impl Drop for Unclaimed {
    fn drop(&mut self) {
        let attempts = std::mem::take(&mut self.attempts);
        let running = self.running.take();
        if attempts.is_empty() {
            return;
        }
        // Outside a runtime nothing can be expired: the leases run out.
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                let _running = running;
                for attempt in attempts {
                    // One already over (finished meanwhile, its unit
                    // deleted) has nothing to give back.
                    let _ = attempt.expire(None).await;
                }
            });
        }
    }
}

#[cfg(any(feature = "postgres", feature = "rest"))]
/// What a hand-out answers: one attempt or several.
pub(crate) trait Made: Send + 'static {
    /// The attempts made, shared.
    fn attempts(&self) -> Vec<AttemptRef>;
}

#[cfg(any(feature = "postgres", feature = "rest"))]
impl Made for Vec<AttemptRef> {
    fn attempts(&self) -> Vec<AttemptRef> {
        self.clone()
    }
}

#[cfg(any(feature = "postgres", feature = "rest"))]
impl Made for AttemptRef {
    fn attempts(&self) -> Vec<AttemptRef> {
        vec![Arc::clone(self)]
    }
}

#[cfg(any(feature = "postgres", feature = "rest"))]
/// Runs `hand_out` to its end in a detached task, even if the caller stops
/// waiting; the attempts it made for a caller gone by then are expired. A
/// caller gone before the task starts has it start nothing: no attempt is
/// made, and no try of a unit spent, for nobody. A panic in it is the
/// caller's.
pub(crate) async fn handed_out<T, F>(hand_out: F) -> Result<T>
where
    T: Made,
    F: Future<Output = Result<T>> + Send + 'static,
{
    // Held by the caller's future: dropped with it.
    let waiting = Arc::new(());
    let still_waiting = Arc::downgrade(&waiting);
    let task = spawn(async move {
        if still_waiting.strong_count() == 0 {
            return Err(Error::backend(std::io::Error::other(
                "the caller stopped waiting before the hand-out started",
            )));
        }
        let made = hand_out.await?;
        let unclaimed = Unclaimed::new(made.attempts());
        Ok((made, unclaimed))
    });
    let answer = task.await;
    drop(waiting);
    match answer {
        Ok(answer) => answer.map(|(made, unclaimed)| {
            unclaimed.claim();
            made
        }),
        Err(failed) => match failed.try_into_panic() {
            Ok(panic) => std::panic::resume_unwind(panic),
            Err(_) => Err(Error::backend(std::io::Error::other(
                "the runtime shut down during a hand-out",
            ))),
        },
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration as StdDuration;

    use super::*;
    use crate::memory::MemoryBackend;
    use crate::{data, AttemptRequest, Backend, WorkSpecRef, WorkUnitMeta, WorkUnitStatus};

    /// Attempts on units "a" and "b" of a fresh spec.
    async fn made() -> (WorkSpecRef, Vec<AttemptRef>) {
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

    async fn pending(spec: &WorkSpecRef) -> u64 {
        let counts = spec.count_work_unit_status().await.unwrap();
        counts.get(&WorkUnitStatus::Pending).copied().unwrap_or(0)
    }

    /// Waits up to a second for `spec` to have no pending unit.
    async fn released(spec: &WorkSpecRef) -> bool {
        for _ in 0..100 {
            if pending(spec).await == 0 {
                return true;
            }
            tokio::time::sleep(StdDuration::from_millis(10)).await;
        }
        false
    }

    #[tokio::test]
    async fn dropped_unclaimed_attempts_are_expired() {
        let (spec, attempts) = made().await;
        drop(Unclaimed::new(attempts));
        assert!(released(&spec).await);
    }

    #[tokio::test]
    async fn settled_waits_for_the_expiry_of_dropped_attempts() {
        let (spec, attempts) = made().await;
        drop(Unclaimed::new(attempts));
        settled().await;
        assert_eq!(pending(&spec).await, 0);
    }

    #[tokio::test]
    async fn settled_waits_for_spawned_work_whose_caller_left() {
        let (go, wait) = tokio::sync::oneshot::channel::<()>();
        let (done, mut ended) = tokio::sync::oneshot::channel();
        let handle = spawn(async move {
            let _ = wait.await;
            tokio::task::yield_now().await;
            let _ = done.send(());
        });
        drop(handle);
        go.send(()).unwrap();
        settled().await;
        assert_eq!(ended.try_recv(), Ok(()));
    }

    /// A task's output is dropped by tokio after the task has ended: an
    /// `Unclaimed` in it still counts until its attempts are expired.
    #[test]
    fn settled_waits_for_unclaimed_attempts_in_an_abandoned_output() {
        /// Holds up the drop of the output it is in.
        struct SlowDrop;
        impl Drop for SlowDrop {
            fn drop(&mut self) {
                std::thread::sleep(StdDuration::from_millis(100));
            }
        }
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let (spec, attempts) = made().await;
            let (go, wait) = tokio::sync::oneshot::channel::<()>();
            let handle = spawn(async move {
                let _ = wait.await;
                (SlowDrop, Unclaimed::new(attempts))
            });
            drop(handle);
            go.send(()).unwrap();
            settled().await;
            assert_eq!(pending(&spec).await, 0);
        });
    }

    #[tokio::test]
    async fn claimed_attempts_stay() {
        let (spec, attempts) = made().await;
        Unclaimed::new(attempts.clone()).claim();
        settled().await;
        assert_eq!(pending(&spec).await, 2);
        assert_eq!(attempts.len(), 2);
    }

    #[cfg(any(feature = "postgres", feature = "rest"))]
    #[tokio::test]
    async fn a_hand_out_whose_caller_left_releases_its_attempts() {
        let (spec, attempts) = made().await;
        let (go, wait) = tokio::sync::oneshot::channel::<()>();
        let hand_out = handed_out(async move {
            // Ends only after its caller has stopped waiting.
            let _ = wait.await;
            Ok(attempts)
        });
        let given_up = tokio::time::timeout(StdDuration::from_millis(20), hand_out).await;
        assert!(given_up.is_err());
        assert_eq!(pending(&spec).await, 2);
        go.send(()).unwrap();
        assert!(released(&spec).await);
    }

    #[cfg(any(feature = "postgres", feature = "rest"))]
    #[tokio::test]
    async fn a_waited_for_hand_out_answers_its_attempts() {
        let (spec, attempts) = made().await;
        let answered = handed_out(async move { Ok(attempts) }).await.unwrap();
        assert_eq!(answered.len(), 2);
        assert_eq!(pending(&spec).await, 2);
    }

    #[cfg(any(feature = "postgres", feature = "rest"))]
    #[tokio::test]
    #[should_panic(expected = "hand-out bug")]
    async fn a_panic_in_a_hand_out_is_the_callers() {
        fn bug() -> Result<Vec<AttemptRef>> {
            panic!("hand-out bug")
        }
        let _ = handed_out(async { bug() }).await;
    }
}
