//! Ctrl-C as the end of one step of an example program, so that the
//! program can still remove what the step made before it exits.

use std::future::Future;

/// Runs `step` to its end, or until Ctrl-C is pressed: then `step` is
/// dropped and the answer is an error naming `what`. Where Ctrl-C cannot
/// be watched, `step` just runs.
pub async fn unless_interrupted<T>(
    what: &str,
    step: impl Future<Output = Result<T, String>>,
) -> Result<T, String> {
    tokio::select! {
        outcome = step => outcome,
        Ok(()) = tokio::signal::ctrl_c() => Err(format!("{what}: interrupted")),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn ctrl_c_ends_the_step() {
        let step = async {
            // Ctrl-C is watched from the first poll on.
            tokio::task::yield_now().await;
            let sent = std::process::Command::new("kill")
                .args(["-INT", &std::process::id().to_string()])
                .status();
            assert!(sent.as_ref().is_ok_and(|s| s.success()), "{sent:?}");
            std::future::pending::<Result<(), String>>().await
        };
        let outcome = tokio::time::timeout(Duration::from_secs(30), unless_interrupted("s", step));
        assert_eq!(outcome.await, Ok(Err("s: interrupted".to_owned())));
    }

    #[tokio::test]
    async fn a_step_that_ends_answers_its_outcome() {
        assert_eq!(unless_interrupted("s", async { Ok(7) }).await, Ok(7));
    }
}
