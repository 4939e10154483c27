//! TLS to the server, as a libpq connection string asks for it (see the
//! `postgres` module docs' `# TLS`): the driver knows `sslmode` `disable`,
//! `prefer` and `require` only, and checks no certificate itself.

mod options;
mod verify;

use std::future::{ready, Future};
use std::io;
use std::pin::Pin;
use std::str::FromStr;
use std::sync::Arc;

use rustls::client::danger::ServerCertVerifier;
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, InvalidDnsNameError};
use rustls::{ClientConfig, RootCertStore};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_postgres::config::{Host, SslMode};
use tokio_postgres::tls::{MakeTlsConnect, TlsConnect};
use tokio_postgres::Config;
use tokio_postgres_rustls::MakeRustlsConnect;

use super::PostgresError;

/// A value of `sslmode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    Disable,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

impl Mode {
    fn named(name: &str) -> Result<Mode, PostgresError> {
        Ok(match name {
            "disable" => Mode::Disable,
            "prefer" => Mode::Prefer,
            "require" => Mode::Require,
            "verify-ca" => Mode::VerifyCa,
            "verify-full" => Mode::VerifyFull,
            _ => {
                return Err(PostgresError::Tls(format!(
                    "sslmode={name} is not supported: use disable, prefer, require, verify-ca \
                     or verify-full"
                )))
            }
        })
    }
}

/// The driver's settings a connection string gives, and the maker of its
/// TLS sessions.
pub(crate) fn configure(conninfo: &str) -> Result<(Config, MakeTls), PostgresError> {
    let (rest, options) = options::take(conninfo)?;
    let mut config = Config::from_str(&rest).map_err(PostgresError::Config)?;
    let mode = options.mode.unwrap_or(Mode::Prefer);
    let unix_only = config
        .get_hosts()
        .iter()
        .all(|h| matches!(h, Host::Unix(_)));
    config.ssl_mode(match mode {
        _ if unix_only => SslMode::Disable,
        Mode::Disable => SslMode::Disable,
        Mode::Prefer => SslMode::Prefer,
        Mode::Require | Mode::VerifyCa | Mode::VerifyFull => SslMode::Require,
    });
    // ring offers no post-quantum key exchange, hence the deprecation;
    // aws-lc-rs, which does, needs cmake to build.
    #[allow(deprecated)]
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let roots = options.root_cert.as_deref().map(roots).transpose()?;
    let verifier: Arc<dyn ServerCertVerifier> = match (mode, roots) {
        (Mode::VerifyCa | Mode::VerifyFull, None) => {
            return Err(PostgresError::Tls(format!(
                "sslmode={} needs sslrootcert=FILE, the PEM certificates of the authorities \
                 that sign the server's",
                if mode == Mode::VerifyCa {
                    "verify-ca"
                } else {
                    "verify-full"
                }
            )))
        }
        (_, None) => Arc::new(verify::AnyCertificate(Arc::clone(&provider))),
        (Mode::VerifyFull, Some(roots)) => chain_verifier(roots, &provider)?,
        (_, Some(roots)) => Arc::new(verify::AnyHost(chain_verifier(roots, &provider)?)),
    };
    let tls = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| PostgresError::Tls(e.to_string()))?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    Ok((config, MakeTls(MakeRustlsConnect::new(tls))))
}

/// The certificates of the file `sslrootcert` names.
fn roots(path: &str) -> Result<RootCertStore, PostgresError> {
    let refused = |why: String| PostgresError::Tls(format!("sslrootcert {path:?}: {why}"));
    if path == "system" {
        return Err(refused(
            "the system's store is not supported: name a file of PEM certificates".into(),
        ));
    }
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(path).map_err(|e| refused(e.to_string()))? {
        let cert = cert.map_err(|e| refused(e.to_string()))?;
        roots.add(cert).map_err(|e| refused(e.to_string()))?;
    }
    if roots.is_empty() {
        return Err(refused("the file holds no PEM certificate".into()));
    }
    Ok(roots)
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

/// Makes the TLS session of each connection, and of each cancel request.
#[derive(Clone)]
pub(crate) struct MakeTls(MakeRustlsConnect);

/// rustls's session maker for a connection to a host.
type HostTls<S> = <MakeRustlsConnect as MakeTlsConnect<S>>::TlsConnect;

impl<S> MakeTlsConnect<S> for MakeTls
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
pub(crate) struct TlsSession<S>(Option<HostTls<S>>)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static;

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
                "TLS needs the server's host name (`host`) to check its certificate against",
            )))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(conninfo: &str) -> SslMode {
        configure(conninfo).expect(conninfo).0.get_ssl_mode()
    }

    #[test]
    fn the_driver_gets_the_mode_it_knows() {
        assert_eq!(mode("host=h"), SslMode::Prefer);
        assert_eq!(mode("host=h sslmode=disable"), SslMode::Disable);
        assert_eq!(mode("postgres://h/d?sslmode=require"), SslMode::Require);
    }

    #[test]
    fn a_unix_domain_socket_is_never_encrypted() {
        assert_eq!(
            mode("host=/run/postgresql sslmode=require"),
            SslMode::Disable
        );
        assert_eq!(
            mode("host=/run/postgresql,db sslmode=require"),
            SslMode::Require
        );
    }
}
