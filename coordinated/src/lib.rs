//! The `coordinated` job server.
