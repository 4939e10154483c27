//! TLS to the server, as a libpq connection string asks for it (see the
//! `postgres` module docs' `# TLS`): the driver knows `sslmode` `disable`,
//! `prefer` and `require` only, and checks no certificate itself.

mod verify;

use std::future::{ready, Future};
use std::io;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;

use rustls::client::danger::ServerCertVerifier;
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, InvalidDnsNameError, PrivateKeyDer};
use rustls::{ClientConfig, RootCertStore};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_postgres::tls::{MakeTlsConnect, TlsConnect};
use tokio_postgres_rustls::MakeRustlsConnect;

use super::conninfo::options::{self, Mode};
use super::PostgresError;

impl PostgresTls {
    /// The TLS a libpq connection string asks for (see
    /// [`connection_config`](super::connection_config)), reading the authorities' certificates of
    /// its `sslrootcert`.
    pub fn new(conninfo: &str) -> Result<PostgresTls, PostgresError> {
        let (_, options) = options::take(conninfo)?;
        let mode = options.mode.unwrap_or(Mode::Prefer);
        let roots = match mode {
            // No certificate is checked, nor its file read, as with libpq.
            Mode::Disable => None,
            _ => options.root_cert.as_deref().map(roots).transpose()?,
        };
        // ring offers no post-quantum key exchange, hence the deprecation;
        // aws-lc-rs, which does, needs cmake to build.
        #[allow(deprecated)]
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let verifier: Arc<dyn ServerCertVerifier> = match (mode, roots) {
            (Mode::VerifyCa | Mode::VerifyFull, None) => {
                return Err(PostgresError::Tls(format!(
                    "sslmode={} needs sslrootcert=FILE, the PEM certificates of the \
                     authorities that sign the server's",
                    mode.name()
                )))
            }
            (_, None) => Arc::new(verify::AnyCertificate(Arc::clone(&provider))),
            (Mode::VerifyFull, Some(roots)) => chain_verifier(roots, &provider)?,
            (_, Some(roots)) => Arc::new(verify::AnyHost(chain_verifier(roots, &provider)?)),
        };
        let verified = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| PostgresError::Tls(e.to_string()))?
            .dangerous()
            .with_custom_certificate_verifier(verifier);
        let mut tls = match (mode, options.cert, options.key) {
            // Nothing is shown, nor its files read, as with libpq.
            (Mode::Disable, _, _) | (_, None, None) => verified.with_no_client_auth(),
            (_, Some(cert), Some(key)) => {
                let refused = |e: rustls::Error| {
                    PostgresError::Tls(format!("sslcert {cert:?} with sslkey {key:?}: {e}"))
                };
                verified
                    .with_client_auth_cert(client_chain(&cert)?, client_key(&key)?)
                    .map_err(refused)?
            }
            (_, Some(_), None) => return Err(PostgresError::Tls("sslcert needs sslkey".into())),
            (_, None, Some(_)) => return Err(PostgresError::Tls("sslkey needs sslcert".into())),
        };
        // The protocol's name, as libpq 17 sends it: a server of that
        // version or later requires it of a direct TLS connection
        // (`sslnegotiation=direct`).
        tls.alpn_protocols = vec![b"postgresql".to_vec()];
        Ok(PostgresTls(MakeRustlsConnect::new(tls)))
    }
}

/// The certificates of the file `sslrootcert` names.
fn roots(path: &str) -> Result<RootCertStore, PostgresError> {
    if path == "system" {
        return Err(PostgresError::Tls(format!(
            "sslrootcert {path:?}: the system's store is not supported: name a file of PEM \
             certificates"
        )));
    }
    let refused = |why: String| PostgresError::Tls(format!("sslrootcert: {why}"));
    let mut roots = RootCertStore::empty();
    for cert in crate::pem::certificates(Path::new(path)).map_err(|e| refused(e.to_string()))? {
        roots
            .add(cert)
            .map_err(|e| refused(format!("{path}: {e}")))?;
    }
    Ok(roots)
}

/// The client's certificate chain in the file `sslcert` names.
fn client_chain(path: &str) -> Result<Vec<CertificateDer<'static>>, PostgresError> {
    crate::pem::certificates(Path::new(path))
        .map_err(|e| PostgresError::Tls(format!("sslcert: {e}")))
}

/// The client's private key in the file `sslkey` names.
fn client_key(path: &str) -> Result<PrivateKeyDer<'static>, PostgresError> {
    crate::pem::private_key(Path::new(path)).map_err(|e| PostgresError::Tls(format!("sslkey: {e}")))
}

/// Checks a certificate's chain to `roots`, and the host it names.
fn chain_verifier(
    roots: RootCertStore,
    provider: &Arc<CryptoProvider>,
) -> Result<Arc<WebPkiServerVerifier>, PostgresError> {
    WebPkiServerVerifier::builder_with_provider(Arc::new(roots), Arc::clone(provider))
        .build()
        .map_err(|e| PostgresError::Tls(e.to_string()))
}

/// Makes the TLS session of each connection to PostgreSQL, and of each
/// cancel request, as a connection string asks (see
/// [`connection_config`](super::connection_config)).
#[derive(Clone)]
pub struct PostgresTls(MakeRustlsConnect);

impl std::fmt::Debug for PostgresTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PostgresTls")
    }
}

/// rustls's session maker for a connection to a host.
type HostTls<S> = <MakeRustlsConnect as MakeTlsConnect<S>>::TlsConnect;

impl<S> MakeTlsConnect<S> for PostgresTls
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Stream = <HostTls<S> as TlsConnect<S>>::Stream;
    type TlsConnect = TlsSession<S>;
    type Error = InvalidDnsNameError;

    fn make_tls_connect(&mut self, host: &str) -> Result<TlsSession<S>, InvalidDnsNameError> {
        // The driver asks before it knows whether TLS is wanted, with no
        // host name for a Unix-domain socket, over which it never is.
        if host.is_empty() {
            return Ok(TlsSession(None));
        }
        MakeTlsConnect::<S>::make_tls_connect(&mut self.0, host).map(|tls| TlsSession(Some(tls)))
    }
}

/// One connection's TLS session, to be; `None` without a host name.
/// Public only because [`PostgresTls`]'s impl of the driver's trait names
/// it.
pub struct TlsSession<S>(Option<HostTls<S>>)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static;

impl<S> std::fmt::Debug for TlsSession<S>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TlsSession")
    }
}

impl<S> TlsConnect<S> for TlsSession<S>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Stream = <HostTls<S> as TlsConnect<S>>::Stream;
    type Error = io::Error;
    type Future = Pin<Box<dyn Future<Output = io::Result<Self::Stream>> + Send>>;

    fn connect(self, stream: S) -> Self::Future {
        match self.0 {
            Some(tls) => Box::pin(tls.connect(stream)),
            None => Box::pin(ready(Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "no host name to make a TLS session for",
            )))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn disabled_reads_no_root_certificate() {
        let conninfo = "host=h sslmode=disable sslrootcert=/no/such/file.pem";
        assert!(PostgresTls::new(conninfo).is_ok());
        let preferred = "host=h sslrootcert=/no/such/file.pem";
        let error = PostgresTls::new(preferred)
            .expect_err(preferred)
            .to_string();
        assert!(error.contains("/no/such/file.pem"), "{error}");
    }
}
