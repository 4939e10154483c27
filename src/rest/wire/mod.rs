//! The JSON shapes of the REST API, written once for server and client.
//!
//! Conventions every type here follows:
//!
//! * times are RFC 3339 strings in UTC with up to nine fractional digits
//!   (trailing zeros removed); "unset" is the zero instant
//!   `0001-01-01T00:00:00Z` on output, and `null`, absent or the zero
//!   instant on input ([`time`], [`opt_time`]);
//! * durations are integer nanoseconds ([`duration`]);
//! * integer fields accept an exponent form (`1e3`) but no fraction;
//! * lists accept `null` for empty; data maps accept a JSON object or a
//!   base64 CBOR string ([`data`]);
//! * request bodies ignore unknown fields, and every field is optional.

/// `From` both ways between a model type and its wire form, which hold the
/// same fields under the same names (only their serde differs).
macro_rules! same_fields {
    ($model:ident <=> $wire:ident { $($field:ident),+ $(,)? }) => {
        impl From<$model> for $wire {
            fn from(m: $model) -> Self {
                $wire { $($field: m.$field),+ }
            }
        }

        impl From<$wire> for $model {
            fn from(w: $wire) -> Self {
                $model { $($field: w.$field),+ }
            }
        }
    };
}

mod bodies;
pub mod data;
mod documents;
mod errors;
mod flat;
mod query;
mod scalars;
mod surrogates;
#[cfg(test)]
mod tests;

pub use bodies::*;
pub use documents::*;
pub use errors::*;
pub use query::*;
pub use scalars::*;
pub use surrogates::{from_json_slice_lossy, with_lone_surrogates_replaced};

/// The canonical media type of every representation.
pub const MEDIA_TYPE_V1: &str = "application/vnd.diffeo.coordinate.v1+json";
/// "The latest JSON version": today the same content as v1.
pub const MEDIA_TYPE_LATEST: &str = "application/vnd.diffeo.coordinate+json";
/// Plain JSON: the same content.
pub const MEDIA_TYPE_JSON: &str = "application/json";
/// Plain JSON under its old name: the same content.
pub const MEDIA_TYPE_TEXT_JSON: &str = "text/json";
/// The four media types that carry the JSON representation.
pub const JSON_MEDIA_TYPES: [&str; 4] = [
    MEDIA_TYPE_V1,
    MEDIA_TYPE_LATEST,
    MEDIA_TYPE_JSON,
    MEDIA_TYPE_TEXT_JSON,
];

/// The known JSON media type a `Content-Type` value names (parameters and
/// case ignored), if any.
pub fn json_media_type(content_type: &str) -> Option<&'static str> {
    let essence = content_type.split(';').next().unwrap_or("").trim();
    JSON_MEDIA_TYPES
        .into_iter()
        .find(|known| known.eq_ignore_ascii_case(essence))
}
