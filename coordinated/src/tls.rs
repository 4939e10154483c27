//! Serving HTTPS: the server's certificate chain and private key, read
//! from PEM files once at start, and the TLS settings connections are
//! accepted with (TLS 1.2 and 1.3, HTTP/1.1 by ALPN). Client certificates
//! may be required: then only a client whose certificate an authority of
//! the given ones signed completes its handshake, which is how a server
//! that anyone can reach admits only its own workers.
//!
//! A renewed certificate is taken without a restart: on `SIGHUP` (see
//! [`reload_on_hangup`]) the files are read again, and the connections
//! accepted after that use what they hold; connections open keep what
//! they were accepted with. Files that cannot be used leave the settings
//! before in use.

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use coordinate::pem::{self, PemFileError};
use tokio::sync::watch;
use tokio_rustls::rustls::crypto::CryptoProvider;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::server::WebPkiClientVerifier;
use tokio_rustls::rustls::{self, RootCertStore, ServerConfig};
use tokio_rustls::TlsAcceptor;

/// The TLS a server accepts its connections with. Its clones share it:
/// [`replace`](Self::replace) on one changes them all.
#[derive(Clone)]
pub struct ServerTls {
    current: Arc<watch::Sender<TlsAcceptor>>,
}

impl fmt::Debug for ServerTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ServerTls")
    }
}

/// Why the server's certificate or key cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ServerTlsError {
    /// A file cannot be used: unreadable, not PEM, or without what it
    /// should hold.
    #[error(transparent)]
    File(#[from] PemFileError),
    /// A client authority's certificate cannot be used to check clients'.
    #[error("a client authority cannot be used: {0}")]
    ClientAuthority(String),
    /// TLS refused the pair: the key is of a kind it does not support, or
    /// it is not the key of the chain's first certificate.
    #[error("the certificate and key cannot serve TLS: {0}")]
    Refused(rustls::Error),
}

impl ServerTls {
    /// Reads the certificate chain (the server's certificate first, then
    /// the intermediates a client needs) from `certificates` and the
    /// private key from `key`, both PEM files; and, if given, the PEM
    /// certificates of the authorities whose clients are admitted from
    /// `client_authorities` (see [`requiring_clients`](Self::requiring_clients)).
    pub fn from_pem_files(
        certificates: &Path,
        key: &Path,
        client_authorities: Option<&Path>,
    ) -> Result<Self, ServerTlsError> {
        let chain = pem::certificates(certificates)?;
        let key = pem::private_key(key)?;
        match client_authorities {
            None => Self::new(chain, key),
            Some(path) => {
                Self::requiring_clients(chain, key, pem::certificates(path)?).map_err(|e| match e {
                    ServerTlsError::ClientAuthority(why) => {
                        ServerTlsError::ClientAuthority(format!("{}: {why}", path.display()))
                    }
                    e => e,
                })
            }
        }
    }

    /// TLS with `chain` (the server's certificate first) and its `key`;
    /// any client may connect.
    pub fn new(
        chain: Vec<CertificateDer<'static>>,
        key: PrivateKeyDer<'static>,
    ) -> Result<Self, ServerTlsError> {
        let provider = provider();
        let config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(ServerTlsError::Refused)?
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .map_err(ServerTlsError::Refused)?;
        Ok(Self::serving(config))
    }

    /// TLS with `chain` and `key` as [`new`](Self::new)'s, that admits
    /// only clients showing a certificate that one of `authorities` signed
    /// (directly or through intermediates the client sends), valid now and
    /// for client authentication. A client without one fails its
    /// handshake, before any request is read.
    pub fn requiring_clients(
        chain: Vec<CertificateDer<'static>>,
        key: PrivateKeyDer<'static>,
        authorities: Vec<CertificateDer<'static>>,
    ) -> Result<Self, ServerTlsError> {
        let provider = provider();
        let mut roots = RootCertStore::empty();
        for authority in authorities {
            roots
                .add(authority)
                .map_err(|e| ServerTlsError::ClientAuthority(e.to_string()))?;
        }
        let verifier =
            WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
                .build()
                .map_err(|e| ServerTlsError::ClientAuthority(e.to_string()))?;
        let config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(ServerTlsError::Refused)?
            .with_client_cert_verifier(verifier)
            .with_single_cert(chain, key)
            .map_err(ServerTlsError::Refused)?;
        Ok(Self::serving(config))
    }

    /// Serves HTTP/1.1 with `config`.
    fn serving(mut config: ServerConfig) -> Self {
        // The one protocol served; a client offering only others is
        // refused in the handshake rather than misread after it.
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        ServerTls {
            current: Arc::new(watch::Sender::new(TlsAcceptor::from(Arc::new(config)))),
        }
    }

    /// Accepts the connections to come with `with`'s certificate and
    /// settings, here and in every clone; connections accepted before
    /// keep theirs.
    pub fn replace(&self, with: &ServerTls) {
        self.current.send_replace(with.acceptor());
    }

    /// What the next connection is accepted with.
    pub(crate) fn acceptor(&self) -> TlsAcceptor {
        self.current.borrow().clone()
    }
}

/// On each `SIGHUP` of `hangups`, reads the TLS settings again with `read`
/// (off the runtime's threads: it reads files) and
/// [replaces](ServerTls::replace) `tls`'s with them; settings that cannot
/// be read are logged, and those before kept. Each reload counts in
/// `coordinated_tls_reloads_total{outcome="used"|"refused"}`, so a failed
/// one can be alerted on. Listen for `hangups` first thing (so that a
/// `SIGHUP` sent while the server starts does not stop it); one sent
/// before this runs is a reload once it does. Runs forever.
#[cfg(unix)]
pub async fn reload_on_hangup<F>(mut hangups: tokio::signal::unix::Signal, tls: ServerTls, read: F)
where
    F: Fn() -> Result<ServerTls, ServerTlsError> + Clone + Send + 'static,
{
    let reloads = |outcome: &'static str| metrics::counter!("coordinated_tls_reloads_total", "outcome" => outcome);
    // Both series from the start, at zero.
    let (used, refused) = (reloads("used"), reloads("refused"));
    used.increment(0);
    refused.increment(0);
    while hangups.recv().await.is_some() {
        match tokio::task::spawn_blocking(read.clone()).await {
            Ok(Ok(read)) => {
                tls.replace(&read);
                used.increment(1);
                tracing::info!("SIGHUP: TLS certificate and key read again");
            }
            Ok(Err(e)) => {
                refused.increment(1);
                let error: &(dyn std::error::Error + 'static) = &e;
                tracing::error!(
                    error,
                    "SIGHUP: TLS files not used; serving with those before"
                );
            }
            Err(e) => {
                refused.increment(1);
                tracing::error!(error = %e, "SIGHUP: reading the TLS files failed");
            }
        }
    }
}

/// Logs each `SIGHUP` of `hangups` as having nothing to read again: a
/// server without TLS files keeps serving on one (a reload sent to every
/// daemon on a host, say) rather than taking the signal's default action,
/// which ends the process. Runs forever.
#[cfg(unix)]
pub async fn ignore_hangups(mut hangups: tokio::signal::unix::Signal) {
    while hangups.recv().await.is_some() {
        tracing::info!("SIGHUP: no TLS files to read again; nothing reloaded");
    }
}

/// ring, as the PostgreSQL backend's and the client's TLS.
fn provider() -> Arc<CryptoProvider> {
    #[allow(deprecated)]
    Arc::new(rustls::crypto::ring::default_provider())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A self-signed certificate for `localhost` and its key, in PEM.
    fn self_signed() -> (String, String) {
        let key = rcgen::KeyPair::generate().unwrap();
        let certificate = rcgen::CertificateParams::new(vec!["localhost".to_owned()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        (certificate.pem(), key.serialize_pem())
    }

    /// Writes `files` into a fresh directory; calls `check` with their
    /// paths.
    fn with_files(test: &str, files: [&str; 2], check: impl FnOnce(&Path, &Path)) {
        let dir = std::env::temp_dir().join(format!("coordinated-{test}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let certificates = dir.join("certificates.pem");
        let key = dir.join("key.pem");
        std::fs::write(&certificates, files[0]).unwrap();
        std::fs::write(&key, files[1]).unwrap();
        check(&certificates, &key);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_certificate_and_its_key_serve() {
        let (certificate, key) = self_signed();
        with_files("tls-serve", [&certificate, &key], |certificates, key| {
            ServerTls::from_pem_files(certificates, key, None).unwrap();
        });
    }

    #[test]
    fn files_that_cannot_serve_say_which_and_why() {
        let (certificate, key) = self_signed();
        let (_, other_key) = self_signed();
        let garbled = "-----BEGIN CERTIFICATE-----\n!!!\n-----END CERTIFICATE-----\n";
        let cases: [([&str; 2], &str); 4] = [
            ([&key, &key], "no PEM certificate"),
            ([&certificate, &certificate], "no PEM private key"),
            ([garbled, &key], "is not well-formed PEM"),
            ([&certificate, &other_key], "cannot serve TLS"),
        ];
        for (files, expected) in cases {
            with_files("tls-refused", files, |certificates, key| {
                let error = ServerTls::from_pem_files(certificates, key, None).unwrap_err();
                let message = error.to_string();
                assert!(message.contains(expected), "{message}");
                if !matches!(error, ServerTlsError::Refused(_)) {
                    let named = if expected.contains("key") {
                        key
                    } else {
                        certificates
                    };
                    assert!(message.contains(&named.display().to_string()), "{message}");
                }
            });
        }
        // PEM, but no certificate inside.
        let not_der = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
        with_files(
            "tls-authority",
            [&certificate, &key],
            |certificates, key| {
                let dir = certificates.parent().unwrap();
                let authorities = dir.join("authorities.pem");
                std::fs::write(&authorities, not_der).unwrap();
                let error =
                    ServerTls::from_pem_files(certificates, key, Some(&authorities)).unwrap_err();
                assert!(
                    matches!(error, ServerTlsError::ClientAuthority(_)),
                    "{error}"
                );
                assert!(
                    error
                        .to_string()
                        .contains(&authorities.display().to_string()),
                    "{error}"
                );
            },
        );
        let missing = std::env::temp_dir().join("coordinated-tls-no-such-file.pem");
        let error = ServerTls::from_pem_files(&missing, &missing, None).unwrap_err();
        assert!(
            matches!(error, ServerTlsError::File(PemFileError::Read { .. })),
            "{error}"
        );
        assert!(error.to_string().contains(&missing.display().to_string()));
    }
}
