//! Which failures mean that the object behind a held handle is gone.
//!
//! Every URL a handle keeps names its object by name, so a request on a
//! deleted object reaches the server, which answers that the name is
//! unknown (`NoSuchWorkSpec`, `NoSuchWorkUnit`, or for an attempt a plain
//! `404`). For a lookup that is the answer; for a handle's own object it
//! is `Gone`.

use crate::error::{Error, ObjectKind};
use crate::rest::wire::{codes, RemoteError};

use super::transport::Failure;

/// The handle a request was made for.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Owner<'a> {
    /// A namespace or worker handle (or the backend itself), which names no
    /// URL of its own object: errors pass through as the server gave them,
    /// a `Gone` naming this kind.
    Lookup(ObjectKind),
    /// A work spec handle's own object.
    Spec(&'a str),
    /// A work unit handle's own object (in its spec).
    Unit {
        /// The unit's spec.
        spec: &'a str,
        /// The unit.
        unit: &'a str,
    },
    /// An attempt handle's own object (of this unit).
    Attempt {
        /// The unit's spec.
        spec: &'a str,
        /// The attempt's unit.
        unit: &'a str,
    },
}

impl Owner<'_> {
    /// The kind of the handle the request was made for.
    fn kind(self) -> ObjectKind {
        match self {
            Owner::Lookup(kind) => kind,
            Owner::Spec(_) => ObjectKind::WorkSpec,
            Owner::Unit { .. } => ObjectKind::WorkUnit,
            Owner::Attempt { .. } => ObjectKind::Attempt,
        }
    }
}

impl Failure {
    /// The error this failure means for `owner`; a `Gone` names the kind of
    /// `owner`'s handle.
    pub(crate) fn error_for(self, owner: Owner<'_>) -> Error {
        let gone = match (&self.error, owner) {
            (_, Owner::Lookup(_)) => false,
            (Error::NoSuchWorkSpec { name }, Owner::Spec(spec)) => name == spec,
            (
                Error::NoSuchWorkSpec { name },
                Owner::Unit { spec, .. } | Owner::Attempt { spec, .. },
            ) => name == spec,
            (
                Error::NoSuchWorkUnit { name },
                Owner::Unit { unit, .. } | Owner::Attempt { unit, .. },
            ) => name == unit,
            (_, Owner::Attempt { .. }) => {
                self.status == Some(reqwest::StatusCode::NOT_FOUND) && self.says_no_such_attempt()
            }
            _ => false,
        };
        if gone {
            Error::Gone { kind: owner.kind() }
        } else {
            self.error.on(owner.kind())
        }
    }

    /// True if the server's error document has the API's code for a
    /// missing attempt (`error`). A 404 without one says nothing of the
    /// attempt: a proxy's page, a gateway's JSON page whose `error` is its
    /// status text, a body cut off or over the limit; and a typed code
    /// (`ErrNotPending`, say) says what failed instead, whatever the status.
    fn says_no_such_attempt(&self) -> bool {
        matches!(
            &self.error,
            Error::Backend(source) if source
                .downcast_ref::<RemoteError>()
                .is_some_and(|remote| remote.code == codes::ERROR)
        )
    }

    /// The error of a request made for a namespace or worker handle (or the
    /// backend itself) of `kind`.
    pub(crate) fn lookup(self, kind: ObjectKind) -> Error {
        self.error_for(Owner::Lookup(kind))
    }
}

#[cfg(test)]
mod tests {
    use reqwest::StatusCode;

    use super::*;
    use crate::rest::client::ProtocolError;

    fn failure(status: u16, error: Error) -> Failure {
        Failure {
            status: StatusCode::from_u16(status).ok(),
            error,
            refused: None,
        }
    }

    fn no_spec(name: &str) -> Error {
        Error::NoSuchWorkSpec { name: name.into() }
    }

    fn no_unit(name: &str) -> Error {
        Error::NoSuchWorkUnit { name: name.into() }
    }

    #[test]
    fn own_names_mean_gone_other_names_pass() {
        let unit = Owner::Unit {
            spec: "s",
            unit: "u",
        };
        assert_eq!(
            failure(404, no_spec("s")).error_for(Owner::Spec("s")),
            Error::Gone {
                kind: ObjectKind::WorkSpec
            }
        );
        assert_eq!(
            failure(404, no_spec("t")).error_for(Owner::Spec("s")),
            no_spec("t")
        );
        let unit_gone = Error::Gone {
            kind: ObjectKind::WorkUnit,
        };
        assert_eq!(failure(404, no_spec("s")).error_for(unit), unit_gone);
        assert_eq!(failure(400, no_unit("u")).error_for(unit), unit_gone);
        assert_eq!(failure(400, no_unit("v")).error_for(unit), no_unit("v"));
        assert_eq!(
            failure(400, no_unit("u")).lookup(ObjectKind::Namespace),
            no_unit("u")
        );
        assert_eq!(
            failure(400, no_unit("u")).error_for(Owner::Spec("s")),
            no_unit("u")
        );
    }

    #[test]
    fn a_missing_attempt_is_gone_only_for_its_handle() {
        let attempt = Owner::Attempt {
            spec: "s",
            unit: "u",
        };
        let missing = || {
            failure(
                404,
                Error::backend(RemoteError {
                    code: "error".into(),
                    message: "no such attempt".into(),
                    status: Some(404),
                }),
            )
        };
        assert_eq!(
            missing().error_for(attempt),
            Error::Gone {
                kind: ObjectKind::Attempt
            }
        );
        assert!(matches!(
            missing().lookup(ObjectKind::Worker),
            Error::Backend(_)
        ));
        let spec = Owner::Spec("s");
        assert!(matches!(missing().error_for(spec), Error::Backend(_)));
        let timeout = Failure {
            status: None,
            error: Error::backend(std::io::Error::other("timed out")),
            refused: None,
        };
        assert!(matches!(timeout.error_for(attempt), Error::Backend(_)));
        // A 404 that is not the API's answer: a proxy's page, or a body
        // that could not be read.
        for unread in [
            Error::backend(ProtocolError::Status {
                status: StatusCode::NOT_FOUND,
                url: "http://proxy/".into(),
                body: "Not Found".into(),
            }),
            Error::backend(std::io::Error::other("body timed out")),
            Error::backend(RemoteError {
                code: "Not Found".into(),
                message: String::new(),
                status: Some(404),
            }),
        ] {
            assert!(matches!(
                failure(404, unread).error_for(attempt),
                Error::Backend(_)
            ));
        }
        // A typed code is what failed, whatever the status.
        for status in [500, 404] {
            for typed in [Error::NotPending, Error::LostLease] {
                assert_eq!(failure(status, typed.clone()).error_for(attempt), typed);
            }
        }
    }
}
