//! Requests for work, as the backends' test crates make them: a worker
//! asks for units and the test looks at which it got.

use coordinate::{AttemptRef, AttemptRequest, WorkerRef};

/// The attempts `worker` gets for `request`.
pub async fn request(worker: &WorkerRef, request: AttemptRequest) -> Vec<AttemptRef> {
    worker
        .request_attempts(&request)
        .await
        .unwrap_or_else(|e| panic!("{request:?}: {e}"))
}

/// The names of the units `attempts` are for, in their order.
pub fn unit_names(attempts: &[AttemptRef]) -> Vec<String> {
    attempts
        .iter()
        .map(|a| a.work_unit().name().to_string())
        .collect()
}
