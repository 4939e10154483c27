//! Changes of several backend calls run to their end.
//!
//! The server drops a request's future when its client goes away or its
//! timeout answers, at whatever `.await` it is; what the request changes
//! must not depend on that. [`to_completion`] runs such a change in a
//! detached task ([`coordinate::detached::spawn`]), so that a request
//! dropped between two of its calls leaves none half-applied; the
//! attempts a hand-out makes are held in [`coordinate::detached::Unclaimed`]
//! until its answer is ready. Shutdown waits for both through
//! [`coordinate::detached::settled`].

use std::future::Future;

use coordinate::Error;

/// Runs `change` to its end even if the caller stops waiting for it. A
/// panic in it is a server bug, answered as an error.
pub(crate) async fn to_completion<T: Send + 'static>(
    change: impl Future<Output = Result<T, Error>> + Send + 'static,
) -> Result<T, Error> {
    coordinate::detached::spawn(change)
        .await
        .map_err(|e| Error::backend(std::io::Error::other(format!("change failed: {e}"))))?
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

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
    async fn shutdown_waits_for_a_change_whose_request_was_dropped() {
        let (started, has_started) = tokio::sync::oneshot::channel();
        let (go, wait) = tokio::sync::oneshot::channel::<()>();
        let (tx, mut rx) = tokio::sync::oneshot::channel();
        let change = tokio::spawn(to_completion(async move {
            let _ = started.send(());
            let _ = wait.await;
            let _ = tx.send(());
            Ok(())
        }));
        has_started.await.unwrap();
        change.abort();
        let _ = change.await;
        go.send(()).unwrap();
        coordinate::detached::settled().await;
        assert_eq!(rx.try_recv(), Ok(()));
    }

    #[tokio::test]
    async fn a_panicking_change_is_an_error() {
        let answer = to_completion(async { panic!("a bug") }).await;
        let answer: Result<(), Error> = answer;
        assert!(matches!(answer, Err(Error::Backend(_))), "{answer:?}");
    }
}
