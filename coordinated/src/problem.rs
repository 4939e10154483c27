//! Failed requests: a status code and the API's error document.

use crate::metrics::CLIENT_CLOSED;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use coordinate::rest::client::gateway_status;
use coordinate::rest::wire::{ErrorDocument, MEDIA_TYPE_V1};
use coordinate::Error;

/// A request that failed: what to answer.
#[derive(Debug)]
pub struct Problem {
    /// The status code.
    pub status: StatusCode,
    /// The body (boxed: results carrying a `Problem` stay small).
    pub document: Box<ErrorDocument>,
}

impl Problem {
    /// A generic failure with this status.
    pub fn generic(status: StatusCode, message: impl Into<String>) -> Self {
        Problem {
            status,
            document: Box::new(ErrorDocument::generic(message)),
        }
    }

    /// `400`: the request cannot be read.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::generic(StatusCode::BAD_REQUEST, message)
    }

    /// `404` with a message.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::generic(StatusCode::NOT_FOUND, message)
    }

    /// `406`: no acceptable representation.
    pub fn not_acceptable() -> Self {
        Self::generic(
            StatusCode::NOT_ACCEPTABLE,
            "No acceptable representation for response",
        )
    }

    /// `415`: the body is not declared as JSON.
    pub fn unsupported_media_type(content_type: &str) -> Self {
        Self::generic(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!("Unsupported Content-Type {content_type:?}"),
        )
    }

    /// The client hung up before its answer was ready: nobody reads this
    /// one, whose status is [`CLIENT_CLOSED`] so that it is counted so.
    pub fn client_gone() -> Self {
        let status = StatusCode::from_bytes(CLIENT_CLOSED.as_bytes())
            .unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
        Self::generic(status, "the client closed the connection")
    }

    /// `405`: the resource has no handler for the method.
    pub fn method_not_allowed(method: &str) -> Self {
        Self::generic(
            StatusCode::METHOD_NOT_ALLOWED,
            format!("Method {method} not allowed"),
        )
    }

    /// A Coordinate error with an explicit status. The backend's own
    /// failure is logged too, so that the operator learns of it from the
    /// server rather than from its clients; the API's other errors answered
    /// `500` (`NotPending`, `LostLease`, …) are outcomes of the requests,
    /// and are not, nor is a client's error a server behind answered.
    pub fn with_status(status: StatusCode, err: &Error) -> Self {
        if matches!(err, Error::Backend(_)) && status.is_server_error() {
            tracing::error!("request failed with {status}: {err}");
        }
        Problem {
            status,
            document: Box::new(ErrorDocument::from_error(err)),
        }
    }

    /// An error of the operation itself: `500` with the mapped code, as the
    /// reference server answers; but input this crate rejects and the
    /// reference has no code for (see `is_bad_input`) is the client's
    /// mistake, `400` on every route; the failure of a server behind this
    /// one with the status a gateway gives it ([`gateway_status`]).
    pub fn operation(err: Error) -> Self {
        let status = if is_bad_input(&err) {
            StatusCode::BAD_REQUEST
        } else {
            backend_status(&err)
        };
        Self::with_status(status, &err)
    }

    /// An error while resolving the names of the path: a missing work spec
    /// is `404`, the backend's own failure `500` (that of a server behind:
    /// see [`gateway_status`]), anything else `400`.
    pub fn resolving(err: Error) -> Self {
        let status = match err {
            Error::NoSuchWorkSpec { .. } => StatusCode::NOT_FOUND,
            Error::Backend(_) => backend_status(&err),
            _ => StatusCode::BAD_REQUEST,
        };
        Self::with_status(status, &err)
    }

    /// The response, with the negotiated media type.
    pub fn respond(mut self, media_type: &'static str) -> Response {
        shorten(&mut self.document.message);
        shorten(&mut self.document.stack);
        let body = serde_json::to_vec(&*self.document).unwrap_or_default();
        let mut response = (self.status, body).into_response();
        response
            .headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(media_type));
        response
    }
}

/// The longest message (or stack) an error document carries, in bytes:
/// what a message quotes of the request (a URL, a serde message's value, a
/// name) is cut there, so an answer never grows with what the client sent.
/// The `value` field, which clients read back into typed errors, stays
/// whole.
const MAX_MESSAGE_BYTES: usize = 1024;

/// Cuts `text` to [`MAX_MESSAGE_BYTES`] at a character boundary, marking
/// the cut with `…`.
fn shorten(text: &mut String) {
    if text.len() <= MAX_MESSAGE_BYTES {
        return;
    }
    let mut end = MAX_MESSAGE_BYTES - '…'.len_utf8();
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text.truncate(end);
    text.push('…');
}

/// `500`, unless `err` is the failure of a server behind this one (the
/// backend of a proxy, a `RestBackend`): then the status it answered an
/// error document of an API code without a typed error with (its `413`
/// for a body over its limit stays a `413`), `502` when it could not be reached or did
/// not answer with the API's documents, `504` when it did not answer in
/// time ([`gateway_status`]).
fn backend_status(err: &Error) -> StatusCode {
    gateway_status(err)
        .and_then(|status| StatusCode::from_u16(status).ok())
        .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

/// True for the errors of input over one of the crate's documented limits
/// (a name too long, data nested too deep or too long, a worker mode too
/// long, a time out of range,
/// a priority that is not finite) or a work spec definition it cannot read:
/// checks of this crate's own, which the reference API never makes on an
/// operation, whichever operation found them.
fn is_bad_input(err: &Error) -> bool {
    matches!(
        err,
        Error::NameTooLong { .. }
            | Error::DataTooDeep { .. }
            | Error::DataTooLarge { .. }
            | Error::ModeTooLong { .. }
            | Error::TimeOutOfRange(_)
            | Error::InvalidWorkSpecData(_)
            | Error::BadPriority
    )
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        self.respond(MEDIA_TYPE_V1)
    }
}

impl From<Error> for Problem {
    fn from(err: Error) -> Self {
        Problem::operation(err)
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::sync::{Arc, Mutex};

    use coordinate::rest::client::ProtocolError;
    use coordinate::rest::RemoteError;
    use coordinate::ObjectKind;

    use super::*;

    /// Log output, kept for a test to read.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl Write for Captured {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_backend_failure_is_logged_and_a_client_mistake_is_not() {
        let logs = Captured::default();
        let writer = logs.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            Problem::operation(Error::backend(std::io::Error::other("disk on fire")));
            Problem::operation(Error::NameTooLong { limit: 1024 });
            Problem::operation(Error::LostLease);
            Problem::resolving(Error::NoSuchWorkSpec { name: "s".into() });
        });
        let logged = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
        assert!(
            logged.contains("500") && logged.contains("disk on fire"),
            "{logged}"
        );
        assert_eq!(logged.lines().count(), 1, "{logged}");
    }

    #[test]
    fn messages_are_cut_values_kept() {
        let name = "é".repeat(100_000);
        let problem = Problem::resolving(Error::NoSuchWorkUnit { name: name.clone() });
        let body = axum::body::to_bytes(problem.respond(MEDIA_TYPE_V1).into_body(), usize::MAX);
        let body = futures::executor::block_on(body).expect("body");
        let document: ErrorDocument = serde_json::from_slice(&body).expect("document");
        assert_eq!(document.value, name);
        let cut = document.message.len();
        assert!(
            (MAX_MESSAGE_BYTES - 4..=MAX_MESSAGE_BYTES).contains(&cut),
            "{cut}"
        );
        assert!(document.message.ends_with("é…"), "{}", document.message);

        let short = Problem::bad_request("short").respond(MEDIA_TYPE_V1);
        let body = futures::executor::block_on(axum::body::to_bytes(short.into_body(), 1000));
        let document: ErrorDocument = serde_json::from_slice(&body.expect("body")).expect("doc");
        assert_eq!(document.message, "short");
    }

    #[test]
    fn resolving_answers_404_for_a_spec_500_for_the_backend_and_400_otherwise() {
        let status = |err: Error| Problem::resolving(err).status;
        let spec = Error::NoSuchWorkSpec { name: "s".into() };
        assert_eq!(status(spec), StatusCode::NOT_FOUND);
        let unit = Error::NoSuchWorkUnit { name: "u".into() };
        assert_eq!(status(unit), StatusCode::BAD_REQUEST);
        let gone = Error::Gone {
            kind: ObjectKind::WorkSpec,
        };
        assert_eq!(status(gone), StatusCode::BAD_REQUEST);
        let down = Error::backend(std::io::Error::other("connection refused"));
        assert_eq!(status(down), StatusCode::INTERNAL_SERVER_ERROR);
    }

    #[test]
    fn a_server_behinds_failure_keeps_a_gateways_status() {
        let too_large = || {
            Error::backend(RemoteError {
                code: "error".into(),
                message: "request body exceeds 2000 bytes".into(),
                status: Some(413),
            })
        };
        assert_eq!(
            Problem::operation(too_large()).status,
            StatusCode::PAYLOAD_TOO_LARGE
        );
        assert_eq!(
            Problem::resolving(too_large()).status,
            StatusCode::PAYLOAD_TOO_LARGE
        );
        let slow = Error::backend(ProtocolError::Timeout {
            url: "http://behind/".into(),
            timeout: std::time::Duration::from_secs(1),
        });
        assert_eq!(Problem::operation(slow).status, StatusCode::GATEWAY_TIMEOUT);
    }
}
