//! [`RestBackend`]: the Coordinate API over HTTP, against any server of the
//! Coordinate REST API (version 1).
//!
//! The backend is configured with one base URL. It reads the root
//! document once, when it connects, and from then on only follows the links
//! and URI templates the server publishes; it never builds a URL itself.
//! All requests share one pooled HTTP/1.1 client, so connections are
//! reused.
//!
//! # Handles and identity
//!
//! A handle keeps the URL of its object. URLs name objects by name, so a
//! handle follows its *name*: after an object is deleted and a new one is
//! created under the same name, an old handle acts on the new object (the
//! identity rule of [`Cache`](crate::cache::Cache)). A handle whose object
//! no longer exists answers [`Error::Gone`]; namespace and worker
//! handles never do, because the API creates namespaces and workers when
//! it resolves their URLs. A server may create them for any request whose
//! URL names them, failing ones included (the original Coordinate job
//! server does, and so does `coordinated`), so a call on a spec, unit or
//! attempt handle of a destroyed namespace answers `Gone` and leaves an
//! empty namespace of that name behind. An attempt is addressed by its
//! unit, worker and start time, so an attempt handle stays dead once its
//! unit is deleted. Destroying a namespace is a `DELETE` of its name, so
//! a namespace handle whose namespace another client destroyed destroys
//! the namespace that has the name now: nothing in the API tells the two
//! apart. (A handle that made the destroy itself does nothing when called
//! again; the in-process backends, and `Cache` over them, never destroy a
//! newer namespace.)
//!
//! # Expiry checks
//!
//! In the API every work unit and attempt document carries a status, and
//! computing a status is the lazy expiry check. Reads that are no check in
//! process — a unit's data and meta, an attempt's data and start time, the
//! handles built for an attempt list — and `make_attempt`, whose answer is
//! an attempt document, therefore ask for the document with the query
//! `check=false`, an extension under which a server answers without the
//! status and runs no check. A server without the extension ignores the
//! query and answers the whole document, so the client works with it
//! unchanged, with that server's checks. One call is a check over REST that
//! is none in process: a unit's `set_priority`, which the API carries as a
//! priority change of the units a query naming it selects.
//!
//! # Attempts
//!
//! The API's attempt documents link to their work unit and worker, so the
//! handles a hand-out or an attempt list answers are made by reading those
//! objects' documents (each distinct one once per call, several at a
//! time). A server that also names them in the attempt document
//! ([`AttemptNames`](crate::rest::wire::AttemptNames), an extension
//! `coordinated` serves) saves those reads: a hand-out is then one request
//! whatever the number of units.
//!
//! A hand-out's attempts exist on the server before the client builds their
//! handles. So `request_attempts` hands back handles for all of them or
//! answers an error and leaves none pending: attempts past the number asked
//! for, and all of them when the answer, received whole, does not decode
//! (or is not JSON by its media type) or their handles cannot be built, are
//! expired on the server (best effort) before the call answers, which makes
//! their units available again instead of held for a whole lease. An
//! answer cut off on its way (the connection lost, or the request's timeout
//! passing while its body arrives) names no attempt the client could
//! release: those are expired by the server if it saw the client go before
//! it answered (`coordinated` does), and otherwise stay pending until
//! their lease ends.
//!
//! # Work unit queries
//!
//! The API carries a work unit query in its URL. A query whose names do
//! not fit one URL of 8 KiB (the request-line limit of common servers and
//! proxies) goes instead in the body of one `POST` to the work spec's
//! `work_unit_select_url`, an extension `coordinated` serves
//! ([`WorkUnitSelectBody`](crate::rest::wire::WorkUnitSelectBody)), so it
//! stays one atomic operation. To a server without that link, or when the
//! query is over 4 MiB (some 150,000 names of 20 bytes, an eighth
//! of `coordinated`'s default body bound), it is sent in parts, each naming
//! some of its names: a list merges the parts'
//! pages (keeping the first `limit` names of them all), and a delete or
//! priority change with a limit first lists what it selects. Each part is
//! then atomic on the server, but the whole is not: a call that fails or
//! is dropped part-way may have acted on some parts (a priority
//! adjustment that overflows in one part answers `BadPriority` with the
//! parts before it applied). A name longer than
//! any stored name is sent cut to just past the limit, which selects the
//! same units.
//!
//! A hand-out's `work_specs` and `runtimes` filters travel in its body. The
//! client leaves out entries no spec can pass (names longer than a name,
//! runtimes longer than a definition, repeats) and, for a filter still
//! over 1 MiB, reads the namespace's specs first and sends only what they
//! can pass: specs made between that read and the hand-out are left out,
//! as a hand-out made just before them would leave them.
//!
//! # Workers of other namespaces
//!
//! A worker's parent or children may belong to another namespace. Their
//! handles take the namespace's name from their URL, in the API's layout
//! (`…/namespace/{namespace}/worker/{worker}`), and a parent of another
//! namespace is set by URL, with the `parent_url` extension of the worker
//! `PUT` (a server without it leaves the parent as it was, yet answers
//! success).
//!
//! Every handle takes its namespace's name from its URL so: the API's
//! documents do not name an object's namespace. The layout is the
//! one `coordinated` and the original Coordinate job server serve; against
//! a server with another, namespace names come out empty, so a worker's
//! `make_attempt` on another namespace's unit names no namespace, and
//! [`Cache`](crate::cache::Cache) cannot file the specs a hand-out returns
//! and fails it.
//!
//! The API sets a parent with the worker update's body, whose `active`
//! field the client sends as `false`. `coordinated` leaves the worker's
//! active flag alone then, as a backend in process does; a server that
//! behaves as the original Coordinate job server does deactivates the worker, so
//! over it a worker sets its parent before it first updates itself.
//!
//! # The original server's own ways
//!
//! The original Coordinate job server spells the names `.` and `..`
//! verbatim in its links, where URL resolution would take them for dot
//! segments; the client reads such a segment of a link as that name
//! ([`dot_names_encoded`](crate::rest::names::dot_names_encoded)). That
//! server also compares a query's `previous` literally, where `coordinated`
//! decodes a value starting with `-`. The client sends `previous` plain
//! wherever both read it alike, and encoded only where a decoding server
//! would read the plain spelling as another name (`-YiBi` reads as `b b`):
//! for such a name no spelling serves both kinds of server
//! ([`encode_previous`](crate::rest::names::encode_previous)).
//!
//! That server keeps byte strings in data as they are, and answers a data
//! map holding a tuple in the CBOR form. A byte string in it that is not
//! UTF-8 reads as the base64 text the JSON form would have given it
//! ([`data::answer`](crate::rest::wire::data::answer)), rather than making
//! the whole answer unreadable.
//!
//! # Errors
//!
//! A base URL the client cannot use — not a URL, or neither `http` nor
//! `https` — is refused by [`connect`](RestBackendBuilder::connect) with a
//! [`BaseUrlError`]. An `https` server's certificate must be signed by an
//! authority of the system's store (`SSL_CERT_FILE`, a file of PEM
//! certificates, replaces it when set) or one given to
//! [`root_certificates`](RestBackendBuilder::root_certificates), and name
//! the host (certificates given that hold no PEM certificate are refused
//! by `connect` with a [`RootCertificatesError`]). To a server that asks
//! for a client certificate, the client shows the one given to
//! [`identity`](RestBackendBuilder::identity), if any (an identity that
//! is not a PEM certificate and key is refused by `connect` with an
//! [`IdentityError`]). A base URL's user name
//! and password are sent as basic authentication on every request to the
//! base URL's origin (links and redirects spelled as absolute URLs of it
//! included, never to another origin) and never shown: error messages and
//! `Debug` output show `***` instead.
//!
//! The server's error documents come back as the typed errors they name
//! (`NoSuchWorkSpec`, `NotPending`, `LostLease`, …), whatever their
//! status, and read as the original client reads them (see
//! [`ErrorDocument`](crate::rest::wire::ErrorDocument)); a `404` without
//! one (a router's page) to a lookup of a work spec by name is
//! `NoSuchWorkSpec` too, as the original client reads it. A change
//! answered `2xx` is done, whatever the body with it. A lone surrogate
//! escape in an answer reads as U+FFFD. Every limit of the
//! crate's `# Limits` that does not depend on the server's clock is
//! checked before a request is sent, in the order the stores check them,
//! and data maps nested deeper than the server may store are refused
//! ([`Error::DataTooDeep`]) without recursion, so no depth of input can
//! exhaust the stack. Anything else — a
//! connection failure, a timeout, a response the API does not specify or
//! longer than the client reads ([`max_response_bytes`](RestBackendBuilder::max_response_bytes))
//! — is [`Error::Backend`] with the cause as its source ([`ProtocolError`]
//! for unexpected responses). The client goes where the server's links
//! lead, but checks what an answer says of itself: a document read for a
//! handle, or answered for a unit or spec just made, that names another
//! object, an attempt made that is on another unit than the one asked
//! for, and an attempt whose names are not those of its links, are
//! [`ProtocolError::Body`]; a page longer than its limit is cut
//! to it. Reads follow up to ten redirects; any other
//! request answered with a redirect fails with its status (followed, it
//! would be re-sent as a read, and a change would seem made that was not).
//!
//! # Example
//!
//! A worker process wraps the backend in a [`Cache`](crate::cache::Cache),
//! so that resolving names costs no round trip after the first time:
//!
//! ```no_run
//! use std::time::Duration;
//! use coordinate::cache::Cache;
//! use coordinate::rest::client::RestBackend;
//! use coordinate::{AttemptRequest, Backend, BackendExt};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> coordinate::Result<()> {
//! let rest = RestBackend::builder("http://127.0.0.1:5980/")
//!     .timeout(Duration::from_secs(10))
//!     .connect()
//!     .await?;
//! let backend = Cache::new(rest);
//! let worker = backend.worker_at("app", "host-1").await?;
//! for attempt in worker.request_attempts(&AttemptRequest::units(10)).await? {
//!     // … do the work named by attempt.work_unit() …
//!     attempt.finish(None).await?;
//! }
//! # Ok(())
//! # }
//! ```

/// `Debug` for a handle whose shared part (`self.0`) has a name and a URL.
macro_rules! debug_name_and_url {
    ($handle:ident) => {
        impl std::fmt::Debug for $handle {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_struct(stringify!($handle))
                    .field("name", &self.0.name)
                    .field("url", &$crate::rest::client::transport::shown(&self.0.url))
                    .finish()
            }
        }
    };
}

mod attempt;
mod filters;
mod layout;
mod namespace;
mod owner;
mod resolve;
mod template;
mod transport;
mod work_spec;
mod work_unit;
mod worker;

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration as StdDuration;

use async_trait::async_trait;
use reqwest::{Method, Url};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::api::{Backend, NamespaceRef};
use crate::error::{error_chain, Error, ObjectKind, Result};
use crate::model::Summary;
use crate::rest::wire::{NamedLink, NamespaceList, RootDocument, SummaryDocument, UNCHECKED_QUERY};
use crate::rules::limits::check_name;

pub use transport::{gateway_status, is_server_failure, ProtocolError};

use namespace::RestNamespace;
use owner::Owner;
use template::Var;
use transport::Transport;

/// Default limit on one whole request (connect, send, receive).
pub const DEFAULT_TIMEOUT: StdDuration = StdDuration::from_secs(30);
/// Default limit on establishing a connection.
pub const DEFAULT_CONNECT_TIMEOUT: StdDuration = StdDuration::from_secs(5);
/// Default time an idle pooled connection is kept: less than the 30 s after
/// which `coordinated` closes a connection without a request, so that a
/// request is not sent on a connection the server is closing.
pub const DEFAULT_POOL_IDLE_TIMEOUT: StdDuration = StdDuration::from_secs(20);
/// Default limit on one response body: room for a list of about two
/// million short-named work units, while a server that never stops
/// sending cannot exhaust the client's memory.
pub const DEFAULT_MAX_RESPONSE_BYTES: usize = 256 << 20;

/// The Coordinate API over HTTP (see the [module docs](self)).
///
/// Cheap to clone; clones share the connection pool.
#[derive(Clone)]
pub struct RestBackend {
    shared: Arc<Shared>,
}

/// What every handle of one backend shares: the transport and the root
/// document.
pub(crate) struct Shared {
    transport: Transport,
    root: RootDocument,
}

impl Shared {
    /// The absolute URL of a plain link.
    pub(crate) fn resolve(&self, link: &str) -> Result<Url> {
        self.transport.resolve(link)
    }

    /// Refuses a document fetched for the object named `asked` that names
    /// another (a gateway's page, or a server answering for the wrong
    /// object): a handle made from it would go by the wrong name, and a
    /// cache would keep it under the right one.
    pub(crate) fn check_named(url: &Url, asked: &str, answered: &str) -> Result<()> {
        if asked == answered {
            return Ok(());
        }
        Err(Error::backend(ProtocolError::Body {
            url: transport::shown(url),
            reason: format!("the document of {asked:?} names {answered:?}"),
        }))
    }

    /// The URL of a fetched document: its own `url` link, or the URL it
    /// was fetched from when the server left that link empty.
    pub(crate) fn document_url(&self, own: &str, fetched_from: Url) -> Result<Url> {
        if own.is_empty() {
            Ok(fetched_from)
        } else {
            self.resolve(own)
        }
    }

    /// Expands a URI template and resolves the result.
    pub(crate) fn expand(&self, template: &str, vars: &[(&str, Var<'_>)]) -> Result<Url> {
        let link = template::expand(template, vars).map_err(|e| {
            Error::backend(ProtocolError::Link {
                link: template.to_owned(),
                reason: e.to_string(),
            })
        })?;
        self.resolve(&link)
    }

    /// The URL of a work unit's or attempt's document read without an
    /// expiry check (an extension other servers ignore: they answer the
    /// whole document, which performs the check there).
    pub(crate) fn unchecked(url: &Url) -> Url {
        let mut url = url.clone();
        match url.query() {
            Some(query) if !query.is_empty() => {
                let query = format!("{query}&{UNCHECKED_QUERY}");
                url.set_query(Some(&query));
            }
            _ => url.set_query(Some(UNCHECKED_QUERY)),
        }
        url
    }

    pub(crate) fn transport(&self) -> &Transport {
        &self.transport
    }

    /// `GET` the document at `url`; a failure is the error a call on
    /// `owner` answers.
    pub(crate) async fn get<T: DeserializeOwned>(&self, url: &Url, owner: Owner<'_>) -> Result<T> {
        let answer = self.transport.get(url).await;
        answer.map_err(|f| f.error_for(owner))
    }

    /// A `method` request with `body` whose answer is a JSON document; a
    /// failure is the error a call on `owner` answers.
    pub(crate) async fn exchange<B: Serialize + ?Sized, T: DeserializeOwned>(
        &self,
        method: Method,
        url: &Url,
        body: Option<&B>,
        owner: Owner<'_>,
    ) -> Result<T> {
        self.exchange_allowing(method, url, body, owner, 0).await
    }

    /// [`exchange`](Self::exchange), reading an answer of up to `at_least`
    /// bytes when that is more than the client's limit.
    pub(crate) async fn exchange_allowing<B: Serialize + ?Sized, T: DeserializeOwned>(
        &self,
        method: Method,
        url: &Url,
        body: Option<&B>,
        owner: Owner<'_>,
        at_least: usize,
    ) -> Result<T> {
        let answer = self
            .transport
            .exchange_allowing(method, url, body, at_least)
            .await;
        answer.map_err(|f| f.error_for(owner))
    }

    /// `POST` `body` to the collection at `url`: the created object's name
    /// and resolved URL; a failure is the error a call on `owner` answers.
    pub(crate) async fn create<B: Serialize + ?Sized>(
        &self,
        url: &Url,
        body: &B,
        owner: Owner<'_>,
    ) -> Result<(String, Url)> {
        let created: NamedLink = self.exchange(Method::POST, url, Some(body), owner).await?;
        Ok((created.name, self.resolve(&created.url)?))
    }

    /// A `method` request with `body` whose answer carries nothing needed; a
    /// failure is the error a call on `owner` answers.
    pub(crate) async fn call<B: Serialize + ?Sized>(
        &self,
        method: Method,
        url: &Url,
        body: Option<&B>,
        owner: Owner<'_>,
    ) -> Result<()> {
        let answer = self.transport.call(method, url, body).await;
        answer.map_err(|f| f.error_for(owner))
    }

    /// Handles by name for the links of a list document, each made by
    /// `handle` from its name and resolved URL.
    pub(crate) fn named<H>(
        &self,
        items: Vec<NamedLink>,
        handle: impl Fn(String, Url) -> H,
    ) -> Result<BTreeMap<String, H>> {
        items
            .into_iter()
            .map(|item| {
                let url = self.resolve(&item.url)?;
                Ok((item.name.clone(), handle(item.name, url)))
            })
            .collect()
    }

    /// True if `other` talks to the same server (the same store).
    pub(crate) fn same_store(&self, other: &Shared) -> bool {
        self.transport.base() == other.transport.base()
    }
}

/// Configures and connects a [`RestBackend`].
#[derive(Clone)]
pub struct RestBackendBuilder {
    base_url: String,
    timeout: StdDuration,
    connect_timeout: StdDuration,
    pool_idle_timeout: StdDuration,
    max_idle_per_host: usize,
    max_response_bytes: usize,
    /// PEM certificates of authorities trusted beside the system's.
    root_certificates: Vec<u8>,
    /// The PEM certificate chain and private key shown to servers that
    /// ask for one.
    identity: Option<Vec<u8>>,
}

impl fmt::Debug for RestBackendBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RestBackendBuilder")
            .field("base_url", &shown_text(&self.base_url))
            .field("timeout", &self.timeout)
            .field("connect_timeout", &self.connect_timeout)
            .field("pool_idle_timeout", &self.pool_idle_timeout)
            .field("max_idle_per_host", &self.max_idle_per_host)
            .field("max_response_bytes", &self.max_response_bytes)
            .field("root_certificates", &self.root_certificates.len())
            .field("identity", &self.identity.is_some())
            .finish()
    }
}

/// The base URL given to the builder cannot be used; refused by
/// [`connect`](RestBackendBuilder::connect) before any request. Each
/// carries the URL as given, its credentials hidden behind `***`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BaseUrlError {
    /// Not a URL.
    #[error("invalid base URL {url:?}: {reason}")]
    Invalid {
        /// The URL as given, credentials hidden.
        url: String,
        /// Why it does not parse.
        reason: String,
    },
    /// A URL of a scheme other than `http` and `https`.
    #[error("base URL {url:?} is not an http:// or https:// URL")]
    NotHttp {
        /// The URL as given, credentials hidden.
        url: String,
    },
}

/// The certificates given to
/// [`root_certificates`](RestBackendBuilder::root_certificates) cannot be
/// used; refused by [`connect`](RestBackendBuilder::connect) before any
/// request.
#[derive(Debug, thiserror::Error)]
#[error("root certificates: {reason}")]
pub struct RootCertificatesError {
    /// What is wrong with them.
    pub reason: String,
}

/// The identity given to [`identity`](RestBackendBuilder::identity)
/// cannot be used; refused by [`connect`](RestBackendBuilder::connect)
/// before any request.
#[derive(Debug, thiserror::Error)]
#[error("client identity: {reason}")]
pub struct IdentityError {
    /// What is wrong with it.
    pub reason: String,
}

impl RestBackendBuilder {
    /// Limit on each whole request, its redirects and its answer's body
    /// included; a request that takes longer fails with
    /// [`Error::Backend`].
    #[must_use]
    pub fn timeout(mut self, timeout: StdDuration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Limit on establishing one connection.
    #[must_use]
    pub fn connect_timeout(mut self, timeout: StdDuration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// How long an idle pooled connection is kept for reuse.
    #[must_use]
    pub fn pool_idle_timeout(mut self, timeout: StdDuration) -> Self {
        self.pool_idle_timeout = timeout;
        self
    }

    /// How many idle connections the pool keeps (default: unbounded).
    #[must_use]
    pub fn max_idle_connections(mut self, max: usize) -> Self {
        self.max_idle_per_host = max;
        self
    }

    /// Limit on one response body (default [`DEFAULT_MAX_RESPONSE_BYTES`]);
    /// a longer response fails with [`Error::Backend`] carrying
    /// [`ProtocolError::TooLarge`], and is not read further. The answers to
    /// `request_attempts` and `make_attempt` are the exception: their
    /// attempts are made before they are sent, so they are read up to what the units asked for can make it (their data at most
    /// `MAX_DATA_BYTES` each, and 128 KiB of links each), so that attempts
    /// made are not lost to the limit, though never past sixteen times the
    /// limit, which a hand-out of hundreds of units at the data limit
    /// reaches.
    #[must_use]
    pub fn max_response_bytes(mut self, max: usize) -> Self {
        self.max_response_bytes = max;
        self
    }

    /// Trusts the authorities whose certificates `pem` holds (PEM, one or
    /// more), beside the system's, to sign an `https` server's certificate:
    /// a server with a certificate of a private authority. Adds to those
    /// given before.
    #[must_use]
    pub fn root_certificates(mut self, pem: impl AsRef<[u8]>) -> Self {
        self.root_certificates.extend_from_slice(pem.as_ref());
        self.root_certificates.push(b'\n');
        self
    }

    /// Shows `pem` to an `https` server that asks for a client
    /// certificate (mutual TLS): the client's certificate, then any
    /// intermediates, and its private key (PKCS #8, PKCS #1 or SEC1), in
    /// one PEM text. Replaces an identity given before. An identity that
    /// cannot be used (not PEM, a key that is not the certificate's) is
    /// refused by [`connect`](Self::connect) with an [`IdentityError`];
    /// one the server refuses fails each call, not as a
    /// [server failure](is_server_failure).
    #[must_use]
    pub fn identity(mut self, pem: impl AsRef<[u8]>) -> Self {
        self.identity = Some(pem.as_ref().to_vec());
        self
    }

    /// Builds the HTTP client and reads the root document.
    pub async fn connect(self) -> Result<RestBackend> {
        let base = base_url(&self.base_url)?;
        let mut http = reqwest::Client::builder();
        if !self.root_certificates.is_empty() {
            let refused = |reason: String| Error::backend(RootCertificatesError { reason });
            let roots = reqwest::Certificate::from_pem_bundle(&self.root_certificates)
                .map_err(|e| refused(error_chain(&e)))?;
            if roots.is_empty() {
                return Err(refused("no PEM certificate given".into()));
            }
            for root in roots {
                http = http.add_root_certificate(root);
            }
        }
        if let Some(pem) = &self.identity {
            let identity = reqwest::Identity::from_pem(pem).map_err(|e| {
                Error::backend(IdentityError {
                    reason: error_chain(&e),
                })
            })?;
            http = http.identity(identity);
        }
        // The timeout is `Transport`'s, over a request and its redirects.
        let http = http
            .connect_timeout(self.connect_timeout)
            .pool_idle_timeout(self.pool_idle_timeout)
            .pool_max_idle_per_host(self.max_idle_per_host)
            .tcp_nodelay(true)
            .no_proxy()
            // `Transport` follows redirects itself, for reads only.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| match &self.identity {
                // The identity's key and certificate are first checked
                // against each other here.
                Some(_) => Error::backend(IdentityError {
                    reason: error_chain(&e),
                }),
                None => transport::http_error(e),
            })?;
        let transport = Transport::new(http, base, self.max_response_bytes, self.timeout);
        let root: RootDocument = transport
            .get(transport.base())
            .await
            .map_err(|f| f.lookup(ObjectKind::Namespace))?;
        check_root(&transport, &root)?;
        Ok(RestBackend {
            shared: Arc::new(Shared { transport, root }),
        })
    }
}

/// Checks that the root document has the links the client follows from
/// it, so that a server without one is refused at connect rather than at
/// the first call that needs it.
fn check_root(transport: &Transport, root: &RootDocument) -> Result<()> {
    let missing = |field: &str, link: &str, needs: &str| {
        Error::backend(ProtocolError::Link {
            link: link.to_owned(),
            reason: format!("the root document's {field} {needs}"),
        })
    };
    for (field, link) in [
        ("summary_url", &root.summary_url),
        ("namespaces_url", &root.namespaces_url),
    ] {
        if link.is_empty() {
            return Err(missing(field, link, "is missing"));
        }
        transport.resolve(link)?;
    }
    if !root.namespace_url.contains("{namespace}") {
        let needs = "is not a template with {namespace}";
        return Err(missing("namespace_url", &root.namespace_url, needs));
    }
    Ok(())
}

/// The root URL: the base as given, with the trailing slash of a root.
fn base_url(text: &str) -> Result<Url> {
    let mut url = Url::parse(text).map_err(|e| {
        Error::backend(BaseUrlError::Invalid {
            url: shown_text(text),
            reason: e.to_string(),
        })
    })?;
    // A password holding `/`, `?` or `#` unescaped parses as a host, a
    // port and a path: such a URL would send the password as the path.
    if url.path().contains('@') || url.query().is_some_and(|q| q.contains('@')) {
        return Err(Error::backend(BaseUrlError::Invalid {
            url: shown_text(text),
            reason: "`@` after the host: percent-encode a `/`, `?` or `#` in the password".into(),
        }));
    }
    match url.scheme() {
        "http" | "https" => {}
        _ => {
            let url = shown_text(text);
            return Err(Error::backend(BaseUrlError::NotHttp { url }));
        }
    }
    if !url.path().ends_with('/') {
        let path = format!("{}/", url.path());
        url.set_path(&path);
    }
    Ok(url)
}

/// A URL as given, which may not parse, shown with everything between its
/// scheme and its last `@` hidden: the user information, and whatever a
/// password with an unescaped `/`, `?` or `#` spilled past where the
/// authority seems to end. Hiding too much of a broken URL is harmless.
fn shown_text(text: &str) -> String {
    let start = text.find("://").map_or(0, |scheme| scheme + 3);
    match text[start..].rfind('@') {
        Some(at) => format!(
            "{}{}{}",
            &text[..start],
            transport::HIDDEN_USERINFO,
            &text[start + at..]
        ),
        None => text.to_owned(),
    }
}

impl RestBackend {
    /// A builder for a server whose root document is at `base_url`
    /// (`http://host:port/` or `https://…`, or under a path prefix).
    pub fn builder(base_url: impl Into<String>) -> RestBackendBuilder {
        RestBackendBuilder {
            base_url: base_url.into(),
            timeout: DEFAULT_TIMEOUT,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            pool_idle_timeout: DEFAULT_POOL_IDLE_TIMEOUT,
            max_idle_per_host: usize::MAX,
            max_response_bytes: DEFAULT_MAX_RESPONSE_BYTES,
            root_certificates: Vec::new(),
            identity: None,
        }
    }

    /// Connects with the default timeouts.
    pub async fn connect(base_url: impl Into<String>) -> Result<Self> {
        Self::builder(base_url).connect().await
    }

    /// The root URL this backend talks to, as shown: its credentials, if
    /// it has any, are hidden behind `***`.
    pub fn base_url(&self) -> &str {
        self.shared.transport.shown_base()
    }
}

impl fmt::Debug for RestBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RestBackend")
            .field("base_url", &self.base_url())
            .finish()
    }
}

#[async_trait]
impl Backend for RestBackend {
    async fn namespace(&self, name: &str) -> Result<NamespaceRef> {
        check_name(name)?;
        let url = self.shared.expand(
            &self.shared.root.namespace_url,
            &[("namespace", Var::Name(name))],
        )?;
        let ns = RestNamespace::fetch(&self.shared, url, name).await?;
        Ok(Arc::new(ns))
    }

    async fn namespaces(&self) -> Result<BTreeMap<String, NamespaceRef>> {
        let url = self.shared.resolve(&self.shared.root.namespaces_url)?;
        let list: NamespaceList = self
            .shared
            .get(&url, Owner::Lookup(ObjectKind::Namespace))
            .await?;
        self.shared.named(list.namespaces, |name, url| {
            Arc::new(RestNamespace::new(&self.shared, name, url, None)) as NamespaceRef
        })
    }

    async fn summarize(&self) -> Result<Summary> {
        let url = self.shared.resolve(&self.shared.root.summary_url)?;
        summary_at(&self.shared, &url, Owner::Lookup(ObjectKind::Namespace)).await
    }

    /// The server answers its root document (which touches no store).
    async fn ping(&self) -> Result<()> {
        let transport = &self.shared.transport;
        let _: RootDocument = transport
            .get(transport.base())
            .await
            .map_err(|f| f.lookup(ObjectKind::Namespace))?;
        Ok(())
    }
}

/// `GET` a summary document.
pub(crate) async fn summary_at(shared: &Shared, url: &Url, owner: Owner<'_>) -> Result<Summary> {
    let doc: SummaryDocument = shared.get(url, owner).await?;
    Ok(doc.0.into_iter().map(Into::into).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_urls_get_the_root_slash() {
        let root = |s| base_url(s).map(|u| u.to_string());
        assert_eq!(
            root("http://127.0.0.1:5980").unwrap(),
            "http://127.0.0.1:5980/"
        );
        assert_eq!(root("http://h/api").unwrap(), "http://h/api/");
        assert_eq!(root("http://h/api/").unwrap(), "http://h/api/");
        assert!(root("ftp://h/").is_err());
        assert!(root("not a url").is_err());
        // A password with an unescaped `/` reads as a port and a path.
        for spilled in ["http://u:123/abc@h/", "http://h/?p=a@b"] {
            let refused = root(spilled).map_err(|e| e.to_string());
            assert!(
                refused
                    .as_ref()
                    .is_err_and(|e| !e.contains("abc") && e.contains("`@`")),
                "{refused:?}"
            );
        }
    }

    #[test]
    fn credentials_in_a_url_as_given_are_hidden() {
        for (given, shown) in [
            ("http://u:p@h:1/x", "http://***@h:1/x"),
            ("http://u@h/", "http://***@h/"),
            ("http://h/", "http://h/"),
            ("http://u:p@@h?a@b", "http://***@b"),
            ("u:p@h:1/x@y", "***@y"),
            ("http://u:p/ss@h/", "http://***@h/"),
            ("http://u:123/abc@h/", "http://***@h/"),
            ("http://u:p@h:bad", "http://***@h:bad"),
        ] {
            assert_eq!(shown_text(given), shown, "{given}");
        }
    }
}
