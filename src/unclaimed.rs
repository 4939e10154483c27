//! Attempts made for a caller who stopped waiting.
//!
//! A hand-out (`request_attempts`, `make_attempt`) makes attempts and then
//! answers them. Its caller may drop the future at any `.await` (a timeout
//! fires, a client disconnects), and attempts made by then reach nobody:
//! their units would stay pending, held by a worker that never learned of
//! them, until their leases ran out. So the attempts a hand-out made are
//! [`Unclaimed`] until answered, and expired (as a lease running out would
//! expire them) if dropped before. A hand-out made by a backend call that
//! may end after its caller stopped waiting (a statement already sent, a
//! request already on the wire) runs through [`handed_out`], in a task of
//! its own: its attempts are either answered or expired, never left held.

#[cfg(any(feature = "postgres", feature = "rest"))]
use std::future::Future;
#[cfg(any(feature = "postgres", feature = "rest"))]
use std::sync::Arc;

use crate::api::AttemptRef;
#[cfg(any(feature = "postgres", feature = "rest"))]
use crate::error::{Error, Result};

/// Attempts made for a caller: expired when dropped before
/// [`claim`](Self::claim).
pub(crate) struct Unclaimed(Vec<AttemptRef>);

impl Unclaimed {
    pub(crate) fn new(attempts: Vec<AttemptRef>) -> Self {
        Unclaimed(attempts)
    }

    /// The attempts are the caller's now.
    pub(crate) fn claim(mut self) {
        self.0.clear();
    }
}

impl Drop for Unclaimed {
    fn drop(&mut self) {
        let attempts = std::mem::take(&mut self.0);
        if attempts.is_empty() {
            return;
        }
        // Outside a runtime nothing can be expired: the leases run out.
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
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
/// Runs `hand_out` to its end in a task of its own, even if the caller
/// stops waiting; the attempts it made for a caller gone by then are
/// expired. A panic in it is the caller's.
pub(crate) async fn handed_out<T, F>(hand_out: F) -> Result<T>
where
    T: Made,
    F: Future<Output = Result<T>> + Send + 'static,
{
    let task = tokio::spawn(async move {
        let made = hand_out.await?;
        let unclaimed = Unclaimed::new(made.attempts());
        Ok((made, unclaimed))
    });
    match task.await {
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
    async fn claimed_attempts_stay() {
        let (spec, attempts) = made().await;
        Unclaimed::new(attempts.clone()).claim();
        tokio::time::sleep(StdDuration::from_millis(50)).await;
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
