//! The runtime the benches run on.

use tokio::runtime::Runtime;

/// A two-worker multi-thread runtime, like a small job server's.
pub fn runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime")
}
