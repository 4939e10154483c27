//! Helpers shared by the test crates under `tests/`.

pub mod random_ops;
