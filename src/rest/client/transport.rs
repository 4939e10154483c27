//! One pooled HTTP client and the request/response conventions of the API:
//! JSON bodies of the v1 media type, error documents turned back into
//! typed errors, and links resolved against the base URL.

use std::borrow::Cow;
use std::fmt;

use bytes::{Bytes, BytesMut};
use reqwest::header::{HeaderValue, ACCEPT, CONTENT_TYPE, LOCATION};
use reqwest::{Method, StatusCode, Url};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::{Error, ObjectKind};
use crate::rest::names;
use crate::rest::wire::{
    codes, from_json_slice_lossy, json_media_type, ErrorDocument, RemoteError, MEDIA_TYPE_V1,
};

/// A request that failed: the HTTP status when the server answered, and
/// the error it means.
#[derive(Debug)]
pub(crate) struct Failure {
    /// `None` when no response arrived (connection, timeout).
    pub(crate) status: Option<StatusCode>,
    pub(crate) error: Error,
    /// The body of a success refused for its media type, read whole: what
    /// a hand-out made may still be found in it.
    pub(crate) refused: Option<Bytes>,
}

impl Failure {
    fn local(error: Error) -> Self {
        Failure {
            status: None,
            error,
            refused: None,
        }
    }
}

/// A failure of the HTTP exchange itself, outside the API's error
/// documents: a response that is not what the API specifies.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProtocolError {
    /// A non-2xx answer without the API's error document, one with an
    /// error code (a proxy's or a router's page, say, JSON or not).
    #[error("HTTP {status} from {url}: {body}")]
    Status {
        /// The status line's code.
        status: StatusCode,
        /// The request URL.
        url: String,
        /// The start of the body, for diagnosis.
        body: String,
    },
    /// A 2xx answer whose body is not the expected JSON document.
    #[error("unexpected response from {url}: {reason}")]
    Body {
        /// The request URL.
        url: String,
        /// What was wrong with it.
        reason: String,
    },
    /// A response body longer than the client's limit (see
    /// [`RestBackendBuilder::max_response_bytes`](super::RestBackendBuilder::max_response_bytes)).
    #[error("response from {url} is over the limit of {limit} bytes")]
    TooLarge {
        /// The request URL.
        url: String,
        /// The limit, in bytes.
        limit: usize,
    },
    /// A link or template in a representation that is missing or cannot
    /// be used.
    #[error("unusable link {link:?}: {reason}")]
    Link {
        /// The link as the server sent it.
        link: String,
        /// Why it cannot be followed.
        reason: String,
    },
    /// A request, its redirects and its answer's body together took longer
    /// than the client's timeout (see
    /// [`RestBackendBuilder::timeout`](super::RestBackendBuilder::timeout)).
    #[error("no whole answer from {url} within {timeout:?}")]
    Timeout {
        /// The request URL.
        url: String,
        /// The timeout.
        timeout: std::time::Duration,
    },
}

/// What a request's success answer is read for.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Answer {
    /// A JSON document (or nothing): any other body is refused.
    Document,
    /// Nothing: any `2xx` is success, as for the API's reference client,
    /// whatever its body.
    Ignored,
}

/// The HTTP client of one backend: a connection pool and the base URL
/// every link is resolved against.
pub(crate) struct Transport {
    http: reqwest::Client,
    base: Url,
    /// `base` as shown, without its credentials.
    shown_base: String,
    max_response_bytes: usize,
    /// Limit on one request, its redirects and its answer's body together.
    timeout: std::time::Duration,
}

impl fmt::Debug for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Transport")
            .field("base", &self.shown_base)
            .finish_non_exhaustive()
    }
}

/// What stands for the user information of a URL wherever one is shown.
pub(crate) const HIDDEN_USERINFO: &str = "***";

/// Puts `user`, without a password, in place of the credentials of `url`
/// (its user name and password, which `reqwest` sends as basic
/// authentication), if it has any.
fn replace_credentials(url: &mut Url, user: &str) {
    if !url.username().is_empty() || url.password().is_some() {
        // Setting fails only for a URL that cannot have a host, which
        // has no credentials.
        let _ = url.set_password(None);
        let _ = url.set_username(user);
    }
}

/// Hides the credentials of `url` behind [`HIDDEN_USERINFO`].
fn redact(url: &mut Url) {
    replace_credentials(url, HIDDEN_USERINFO);
}

/// `url` as a request body carries it, naming an object to the server:
/// without the credentials of the base URL it was made from, which travel
/// in the authorization header only.
pub(crate) fn linked(url: &Url) -> String {
    let mut url = url.clone();
    replace_credentials(&mut url, "");
    url.into()
}

/// `url` as error messages and `Debug` show it: without its credentials.
pub(crate) fn shown(url: &Url) -> String {
    let mut url = url.clone();
    redact(&mut url);
    url.into()
}

/// A failure of the HTTP client, the URL it names shown without its
/// credentials.
pub(crate) fn http_error(mut error: reqwest::Error) -> Error {
    if let Some(url) = error.url_mut() {
        redact(url);
    }
    Error::backend(error)
}

/// `error`, with `status` recorded when it is a [`RemoteError`] (an error
/// document's code this crate has no error of its own for).
fn with_status(error: Error, status: StatusCode) -> Error {
    match std::error::Error::source(&error).and_then(|s| s.downcast_ref::<RemoteError>()) {
        Some(remote) => Error::backend(RemoteError {
            status: Some(status.as_u16()),
            ..remote.clone()
        }),
        None => error,
    }
}

/// What a call's error says of the server it was made to, when it says
/// anything: the one classification [`gateway_status`] and
/// [`is_server_failure`] each read their answer from.
enum Upstream {
    /// An error document whose code this crate has no error for, with the
    /// status it came with; `the_apis` if the code is one of the API's
    /// (`error`, `panic`, …), not a gateway's page that happens to be JSON.
    Document { status: Option<u16>, the_apis: bool },
    /// An answer that is not the API's: a page (with its status), or a body
    /// that is not JSON, too long, or with a link that cannot be followed.
    NotTheApis { status: Option<StatusCode> },
    /// No whole answer within the client's timeout.
    Timeout,
    /// The connection was not made, broke, or cut the answer off.
    Connection,
    /// The server refused this client's certificate in the TLS handshake
    /// (or its want of one): a setting to put right, not a failure to
    /// wait out.
    ClientCertificateRefused,
    /// The HTTP client's own failure (a request it could not build).
    Local,
}

/// The [`Upstream`] of `error`, if it is a [`RestBackend`](super::RestBackend)
/// call's failure.
fn upstream(error: &Error) -> Option<Upstream> {
    let Error::Backend(source) = error else {
        return None;
    };
    if let Some(remote) = source.downcast_ref::<RemoteError>() {
        let the_apis = [
            codes::ERROR,
            codes::PANIC,
            codes::NO_WORK,
            codes::CANNOT_BECOME_CONTINUOUS,
        ]
        .contains(&remote.code.as_str());
        return Some(Upstream::Document {
            status: remote.status,
            the_apis,
        });
    }
    if let Some(protocol) = source.downcast_ref::<ProtocolError>() {
        return Some(match protocol {
            ProtocolError::Timeout { .. } => Upstream::Timeout,
            ProtocolError::Status { status, .. } => Upstream::NotTheApis {
                status: Some(*status),
            },
            _ => Upstream::NotTheApis { status: None },
        });
    }
    let http = source.downcast_ref::<reqwest::Error>()?;
    // A body cut off mid-answer is a decoding error to `reqwest`; this
    // client decodes no body through it.
    Some(if http.is_timeout() {
        Upstream::Timeout
    } else if client_certificate_refused(http) {
        Upstream::ClientCertificateRefused
    } else if http.is_connect() || http.is_request() || http.is_body() || http.is_decode() {
        Upstream::Connection
    } else {
        Upstream::Local
    })
}

/// Whether `error` carries a TLS alert by which the server refused the
/// client's certificate: one it does not trust, has no use for, or found
/// expired or revoked, or the want of one.
fn client_certificate_refused(error: &reqwest::Error) -> bool {
    use rustls::AlertDescription as Alert;
    let mut next: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(cause) = next {
        // An I/O error hides the TLS error it wraps from `source`.
        let tls = cause.downcast_ref::<rustls::Error>().or_else(|| {
            cause
                .downcast_ref::<std::io::Error>()
                .and_then(std::io::Error::get_ref)
                .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        });
        if let Some(rustls::Error::AlertReceived(alert)) = tls {
            return matches!(
                alert,
                Alert::CertificateRequired
                    | Alert::BadCertificate
                    | Alert::UnsupportedCertificate
                    | Alert::CertificateRevoked
                    | Alert::CertificateExpired
                    | Alert::CertificateUnknown
                    | Alert::UnknownCA
                    | Alert::AccessDenied
            );
        }
        next = cause.source();
    }
    false
}

/// The status a server in front of a [`RestBackend`](super::RestBackend)
/// (a proxy) answers for `error`, one of that backend's errors, when it is
/// the failure of the server behind rather than an answer of the API:
///
/// * an error document of an API code this crate has no error of its own
///   for (`error`, `panic`, `ErrNoWork`, `ErrCannotBecomeContinuous`): the
///   status it came with (a body over that server's limit stays `413`);
/// * no whole answer within the client's timeout: `504`;
/// * the server behind not reached (this client's certificate refused
///   included), or answering with something other than the API's
///   documents (another code included): `502`.
///
/// `None` for every other error: the API's own, or one of this process.
pub fn gateway_status(error: &Error) -> Option<u16> {
    Some(match upstream(error)? {
        Upstream::Document {
            status: Some(status),
            the_apis: true,
        } if (400..=599).contains(&status) => status,
        Upstream::Timeout => 504,
        _ => 502,
    })
}

/// True if `error`, one of a [`RestBackend`](super::RestBackend) call's
/// errors, says the server failed rather than answered the request: it
/// could not be reached (its TLS certificate refused included), the
/// connection broke, no whole answer came in time, or it answered a server
/// error (`5xx`, a gateway's included). Such a call is worth making again
/// later; one refused with a `4xx` (a body over the server's limit, a
/// gateway refusing credentials) is not, nor is one whose TLS handshake
/// refused this client's certificate (see
/// [`identity`](super::RestBackendBuilder::identity)).
pub fn is_server_failure(error: &Error) -> bool {
    match upstream(error) {
        Some(Upstream::Document { status, .. }) => status.is_some_and(|status| status >= 500),
        Some(Upstream::NotTheApis { status }) => status.is_some_and(|s| s.is_server_error()),
        Some(Upstream::Timeout | Upstream::Connection) => true,
        Some(Upstream::Local | Upstream::ClientCertificateRefused) | None => false,
    }
}

/// Media type of every request body, and the only one the client asks for.
const V1: HeaderValue = HeaderValue::from_static(MEDIA_TYPE_V1);

/// How many redirects a `GET` follows.
const MAX_REDIRECTS: usize = 10;

/// Where a redirect response sends its request, if it is one.
fn redirect_target(response: &reqwest::Response, url: &Url) -> Option<Url> {
    if !response.status().is_redirection() {
        return None;
    }
    let location = response.headers().get(LOCATION)?.to_str().ok()?;
    url.join(location).ok()
}

/// How many times the client's response limit an answer may be read past
/// it when the request made objects the answer must report.
const MAX_ALLOWANCE: usize = 16;

/// How much of an unexpected body an error keeps.
const BODY_EXCERPT: usize = 200;

impl Transport {
    pub(crate) fn new(
        http: reqwest::Client,
        base: Url,
        max_response_bytes: usize,
        timeout: std::time::Duration,
    ) -> Self {
        Transport {
            http,
            shown_base: shown(&base),
            base,
            max_response_bytes,
            timeout,
        }
    }

    pub(crate) fn base(&self) -> &Url {
        &self.base
    }

    /// The base URL as shown, without its credentials.
    pub(crate) fn shown_base(&self) -> &str {
        &self.shown_base
    }

    /// The absolute URL of a link (an absolute path or an absolute URL),
    /// its `.` and `..` segments read as names (see
    /// [`names::dot_names_encoded`]).
    /// An empty link is refused: it is what a field the server left out
    /// decodes to, and resolved it would be the base URL, whose root
    /// document reads as an empty instance of most documents. (Callers
    /// that give an empty link a meaning check for it first.)
    pub(crate) fn resolve(&self, link: &str) -> Result<Url, Error> {
        if link.is_empty() {
            return Err(Error::backend(ProtocolError::Link {
                link: String::new(),
                reason: "missing from the server's document".to_owned(),
            }));
        }
        let mut url = self
            .base
            .join(&names::dot_names_encoded(link))
            .map_err(|e| {
                Error::backend(ProtocolError::Link {
                    link: link.to_owned(),
                    reason: e.to_string(),
                })
            })?;
        self.lend_credentials(&mut url);
        Ok(url)
    }

    /// Gives `url`, if it has none, the base URL's credentials when it is
    /// of the base's origin: a link or redirect spelled as an absolute URL
    /// goes to the same server as an absolute path does, and needs them as
    /// much. A URL of another origin never gets them.
    fn lend_credentials(&self, url: &mut Url) {
        let bare = url.username().is_empty() && url.password().is_none();
        if bare && url.origin() == self.base.origin() {
            // Setting fails only for a URL that cannot have a host.
            let _ = url.set_username(self.base.username());
            let _ = url.set_password(self.base.password());
        }
    }

    /// `GET url`, decoding the JSON answer.
    pub(crate) async fn get<T: DeserializeOwned>(&self, url: &Url) -> Result<T, Failure> {
        self.exchange(Method::GET, url, None::<&()>).await
    }

    /// A request whose answer carries a JSON document.
    pub(crate) async fn exchange<B: Serialize + ?Sized, T: DeserializeOwned>(
        &self,
        method: Method,
        url: &Url,
        body: Option<&B>,
    ) -> Result<T, Failure> {
        self.exchange_allowing(method, url, body, 0).await
    }

    /// [`exchange`](Self::exchange), reading an answer of up to `at_least`
    /// bytes when that is more than the client's limit, but
    /// never more than [`MAX_ALLOWANCE`] times the limit.
    pub(crate) async fn exchange_allowing<B: Serialize + ?Sized, T: DeserializeOwned>(
        &self,
        method: Method,
        url: &Url,
        body: Option<&B>,
        at_least: usize,
    ) -> Result<T, Failure> {
        let bytes = self.fetch_allowing(method, url, body, at_least).await?;
        Self::decode(url, &bytes)
    }

    /// The JSON answer's bytes, up to `at_least` as for
    /// [`exchange_allowing`](Self::exchange_allowing), for a caller that
    /// reads them again when they fail to decode.
    pub(crate) async fn fetch_allowing<B: Serialize + ?Sized>(
        &self,
        method: Method,
        url: &Url,
        body: Option<&B>,
        at_least: usize,
    ) -> Result<Bytes, Failure> {
        let most = self.max_response_bytes.saturating_mul(MAX_ALLOWANCE);
        let limit = self.max_response_bytes.max(at_least.min(most));
        self.send(method, url, body, limit, Answer::Document).await
    }

    /// `bytes`, the answer from `url`, decoded.
    pub(crate) fn decode<T: DeserializeOwned>(url: &Url, bytes: &[u8]) -> Result<T, Failure> {
        from_json_slice_lossy(bytes).map_err(|e| {
            Failure::local(Error::backend(ProtocolError::Body {
                url: shown(url),
                reason: e.to_string(),
            }))
        })
    }

    /// A request whose answer has no body that matters (`204`).
    pub(crate) async fn call<B: Serialize + ?Sized>(
        &self,
        method: Method,
        url: &Url,
        body: Option<&B>,
    ) -> Result<(), Failure> {
        let limit = self.max_response_bytes;
        self.send(method, url, body, limit, Answer::Ignored)
            .await
            .map(drop)
    }

    /// The whole body of `response`, unless it is over `limit` bytes: then
    /// nothing more is read (dropping the response closes its connection).
    async fn body(
        mut response: reqwest::Response,
        url: &Url,
        limit: usize,
    ) -> Result<Bytes, Error> {
        let too_large = || {
            Error::backend(ProtocolError::TooLarge {
                url: shown(url),
                limit,
            })
        };
        let announced = response.content_length().unwrap_or(0);
        if usize::try_from(announced).map_or(true, |n| n > limit) {
            return Err(too_large());
        }
        // Most bodies arrive as one chunk, which is kept without a copy.
        let (mut first, mut joined, mut len) = (Bytes::new(), None::<BytesMut>, 0);
        while let Some(chunk) = response.chunk().await.map_err(http_error)? {
            if chunk.len() > limit - len {
                return Err(too_large());
            }
            len += chunk.len();
            if let Some(joined) = &mut joined {
                joined.extend_from_slice(&chunk);
            } else if first.is_empty() {
                first = chunk;
            } else {
                let mut both = BytesMut::with_capacity(len);
                both.extend_from_slice(&first);
                both.extend_from_slice(&chunk);
                joined = Some(both);
            }
        }
        Ok(joined.map_or(first, BytesMut::freeze))
    }

    /// Sends a request and answers its response and the URL that gave it.
    /// A `GET` follows up to [`MAX_REDIRECTS`] redirects, as the API's
    /// reference client does; for any other method a redirect is the
    /// answer, hence a failure (followed, it would become a `GET`, and a
    /// change would seem made that was not).
    async fn respond<'u, B: Serialize + ?Sized>(
        &self,
        method: Method,
        url: &'u Url,
        body: Option<&B>,
    ) -> Result<(reqwest::Response, Cow<'u, Url>), Failure> {
        let json = body
            .map(serde_json::to_vec)
            .transpose()
            .map_err(|e| Failure::local(Error::backend(e)))?
            .map(Bytes::from);
        let mut url = Cow::Borrowed(url);
        let mut hops = 0;
        loop {
            let mut request = self
                .http
                .request(method.clone(), Url::clone(&url))
                .header(ACCEPT, V1);
            if let Some(json) = &json {
                request = request.header(CONTENT_TYPE, V1).body(json.clone());
            }
            let response = request
                .send()
                .await
                .map_err(|e| Failure::local(http_error(e)))?;
            if method == Method::GET && hops < MAX_REDIRECTS {
                if let Some(mut next) = redirect_target(&response, &url) {
                    self.lend_credentials(&mut next);
                    hops += 1;
                    url = Cow::Owned(next);
                    continue;
                }
            }
            return Ok((response, url));
        }
    }

    /// Sends one request and answers the body of a 2xx response, of at
    /// most `limit` bytes; any other status becomes the error its document
    /// names. The whole exchange, redirects included, has the client's
    /// timeout.
    async fn send<B: Serialize + ?Sized>(
        &self,
        method: Method,
        url: &Url,
        body: Option<&B>,
        limit: usize,
        answer: Answer,
    ) -> Result<Bytes, Failure> {
        let exchange = self.send_untimed(method, url, body, limit, answer);
        match tokio::time::timeout(self.timeout, exchange).await {
            Ok(answer) => answer,
            Err(_) => Err(Failure::local(Error::backend(ProtocolError::Timeout {
                url: shown(url),
                timeout: self.timeout,
            }))),
        }
    }

    /// [`send`](Self::send) without its timeout.
    async fn send_untimed<B: Serialize + ?Sized>(
        &self,
        method: Method,
        url: &Url,
        body: Option<&B>,
        limit: usize,
        answer: Answer,
    ) -> Result<Bytes, Failure> {
        let (response, url) = self.respond(method, url, body).await?;
        let url: &Url = &url;
        let status = response.status();
        if status.is_success() && answer == Answer::Ignored {
            // Done, whatever follows. The body is read (up to the limit,
            // within the timeout) only so that the connection can serve
            // another request: on a task of its own, as a slow one must
            // not turn the change's success into a timeout.
            let (url, timeout) = (url.clone(), self.timeout);
            tokio::spawn(async move {
                let _ = tokio::time::timeout(timeout, Self::body(response, &url, limit)).await;
            });
            return Ok(Bytes::new());
        }
        let is_json = response
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(json_media_type)
            .is_some();
        let bytes = Self::body(response, url, limit)
            .await
            .map_err(|error| Failure {
                status: Some(status),
                error,
                refused: None,
            })?;
        if status.is_success() {
            if !bytes.is_empty() && !is_json {
                return Err(Failure {
                    status: Some(status),
                    error: Error::backend(ProtocolError::Body {
                        url: shown(url),
                        reason: "not a JSON media type".to_owned(),
                    }),
                    refused: Some(bytes),
                });
            }
            return Ok(bytes);
        }
        // Only a document with a code is the API's error document: a
        // gateway's JSON page (`{"message": "Not Found"}`) reads as one
        // with every field empty, and says nothing of what failed.
        let document = is_json
            .then(|| from_json_slice_lossy::<ErrorDocument>(&bytes).ok())
            .flatten()
            .filter(|document| !document.error.is_empty());
        let error = match document {
            // The wire names no object kind: every caller turns the
            // failure into its error with `error_for`, which sets the kind
            // of the handle the request was made for.
            Some(document) => with_status(document.into_error(ObjectKind::Namespace), status),
            None => Error::backend(ProtocolError::Status {
                status,
                url: shown(url),
                body: String::from_utf8_lossy(&bytes[..bytes.len().min(BODY_EXCERPT)]).into_owned(),
            }),
        };
        Err(Failure {
            status: Some(status),
            error,
            refused: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn remote(status: Option<u16>) -> Error {
        Error::backend(RemoteError {
            code: "error".into(),
            message: "request body exceeds 2000 bytes".into(),
            status,
        })
    }

    #[test]
    fn a_server_behinds_failures_have_a_gateways_status() {
        assert_eq!(gateway_status(&remote(Some(413))), Some(413));
        assert_eq!(gateway_status(&remote(Some(503))), Some(503));
        // Not an error status, or none known: the answer was not the API's.
        assert_eq!(gateway_status(&remote(Some(200))), Some(502));
        assert_eq!(gateway_status(&remote(None)), Some(502));
        let timeout = ProtocolError::Timeout {
            url: "http://behind/".into(),
            timeout: std::time::Duration::from_secs(1),
        };
        assert_eq!(gateway_status(&Error::backend(timeout)), Some(504));
        let page = ProtocolError::Status {
            status: StatusCode::BAD_GATEWAY,
            url: "http://behind/".into(),
            body: "<html>".into(),
        };
        assert_eq!(gateway_status(&Error::backend(page)), Some(502));
        // A gateway's own JSON page refusing this server's credentials.
        let refused = Error::backend(RemoteError {
            code: "Unauthorized".into(),
            message: String::new(),
            status: Some(401),
        });
        assert_eq!(gateway_status(&refused), Some(502));
        // A crash of the server behind, in the API's document.
        let crashed = Error::backend(RemoteError {
            code: codes::PANIC.into(),
            message: "index out of bounds".into(),
            status: Some(500),
        });
        assert_eq!(gateway_status(&crashed), Some(500));
    }

    #[test]
    fn server_failures_are_told_from_refusals() {
        assert!(is_server_failure(&remote(Some(503))));
        assert!(is_server_failure(&remote(Some(500))));
        assert!(!is_server_failure(&remote(Some(413))));
        assert!(!is_server_failure(&remote(None)));
        let refused = Error::backend(RemoteError {
            code: "Unauthorized".into(),
            message: String::new(),
            status: Some(401),
        });
        assert!(!is_server_failure(&refused));
        let page = |status| {
            Error::backend(ProtocolError::Status {
                status,
                url: "http://behind/".into(),
                body: "<html>".into(),
            })
        };
        assert!(is_server_failure(&page(StatusCode::BAD_GATEWAY)));
        assert!(!is_server_failure(&page(StatusCode::FORBIDDEN)));
        let timeout = ProtocolError::Timeout {
            url: "http://behind/".into(),
            timeout: std::time::Duration::from_secs(1),
        };
        assert!(is_server_failure(&Error::backend(timeout)));
        assert!(!is_server_failure(&Error::NotPending));
        assert!(!is_server_failure(&Error::backend(std::io::Error::other(
            "local"
        ))));
    }

    #[tokio::test]
    async fn an_unreachable_server_is_a_server_failure() {
        let refused = reqwest::Client::new()
            .get("http://127.0.0.1:1/")
            .send()
            .await
            .map(drop);
        let error = http_error(refused.expect_err("nothing listens on port 1"));
        assert!(is_server_failure(&error), "{error}");
        assert_eq!(gateway_status(&error), Some(502));
    }

    #[tokio::test]
    async fn an_answer_cut_off_is_a_server_failure() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("address");
        tokio::spawn(async move {
            if let Ok((mut socket, _)) = listener.accept().await {
                // The request first: an answer before it is no answer.
                let _ = socket.read(&mut [0; 4096]).await;
                let head = "HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n{\"a\"";
                let _ = socket.write_all(head.as_bytes()).await;
                // Dropped: the connection closes 96 bytes short.
            }
        });
        let response = reqwest::Client::new()
            .get(format!("http://{addr}/"))
            .send()
            .await
            .expect("a head");
        let cut = response.bytes().await.map(drop);
        let error = http_error(cut.expect_err("the body was cut off"));
        assert!(is_server_failure(&error), "{error}");
    }

    #[test]
    fn other_errors_have_no_gateways_status() {
        assert_eq!(gateway_status(&Error::NotPending), None);
        let local = Error::backend(std::io::Error::other("disk on fire"));
        assert_eq!(gateway_status(&local), None);
    }

    #[test]
    fn an_error_document_without_a_code_of_the_apis_keeps_its_status() {
        let document = ErrorDocument::generic("too big");
        let error = with_status(
            document.into_error(ObjectKind::Namespace),
            StatusCode::PAYLOAD_TOO_LARGE,
        );
        assert_eq!(gateway_status(&error), Some(413));
        let typed = ErrorDocument::from_error(&Error::LostLease);
        let error = with_status(typed.into_error(ObjectKind::Namespace), StatusCode::OK);
        assert_eq!(error, Error::LostLease);
    }
}
