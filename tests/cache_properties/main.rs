//! The laws of `Cache`, as property tests.
//!
//! Each property states its law in its doc comment. Every property runs 256
//! cases from a fixed seed (so CI is deterministic) and shrinks a failure to
//! a short, readable sequence of named operations.
//!
//! Vocabulary: a *cached handle* is one obtained through the cache; the
//! *plain backend* is the same `MemoryBackend` used directly; a change
//! *behind the cache's back* is one made on the plain backend.

mod bound;
mod coalescing;
mod deleted_name;
mod handles;
mod held_handles;
mod identity;
mod names;
mod recreated_name;
mod transparency;

use proptest::test_runner::{Config, RngAlgorithm, RngSeed, TestCaseError};

type Fallible = Result<(), TestCaseError>;

fn config() -> Config {
    Config {
        cases: 256,
        rng_algorithm: RngAlgorithm::ChaCha,
        rng_seed: RngSeed::Fixed(0xCAC4E),
        failure_persistence: None,
        ..Config::default()
    }
}

fn block_on<F: std::future::Future<Output = Fallible>>(f: F) -> Fallible {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| TestCaseError::fail(e.to_string()))?
        .block_on(f)
}

/// Turns a setup failure into a test failure.
fn ok<T>(r: coordinate::Result<T>) -> Result<T, TestCaseError> {
    r.map_err(|e| TestCaseError::fail(format!("unexpected error: {e:?}")))
}
