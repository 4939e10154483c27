//! The Coordinate REST API (version 1): its wire format, shared by the
//! `coordinated` server and the HTTP client backend.
//!
//! The API is hypermedia-driven: a client knows one base URL, reads the root
//! document there and follows the links and URI templates of every
//! representation. Every body is JSON ([`wire::MEDIA_TYPE_V1`]); object
//! names in URL path segments use the encoding of [`names`]; failures carry
//! an [`wire::ErrorDocument`] whose symbolic code maps back to the typed
//! [`Error`](crate::Error).

pub mod client;
pub mod names;
pub mod wire;

pub use names::NameError;
pub use wire::{ErrorDocument, RemoteError, MEDIA_TYPE_V1};
