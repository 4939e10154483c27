//! The error of a call on a handle whose object is gone.

use coordinate::{Error, ObjectKind};

/// What a call on a handle of `kind` answers once its object is gone.
pub fn gone(kind: ObjectKind) -> Error {
    Error::Gone { kind }
}
