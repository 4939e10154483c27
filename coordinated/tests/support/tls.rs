//! Certificates for the TLS tests (a server certificate for `localhost`,
//! signed by a test authority: `Certificates`), and what a server or a
//! binary takes them as.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use coordinated::ServerTls;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::{ClientConfig, RootCertStore};

#[path = "../../../tests/common/tls_authority.rs"]
mod authority;

pub use authority::LocalhostCertificate as Certificates;

impl Certificates {
    /// The TLS a server accepts connections with, with this certificate.
    pub fn server_tls(&self) -> ServerTls {
        let chain = CertificateDer::pem_slice_iter(self.certificate.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .expect("the certificate");
        let key = PrivateKeyDer::from_pem_slice(self.key.as_bytes()).expect("the key");
        ServerTls::new(chain, key).expect("a server's TLS")
    }

    /// A TLS client configuration that trusts this certificate's
    /// authority.
    pub fn client_config(&self) -> ClientConfig {
        let mut roots = RootCertStore::empty();
        roots
            .add(CertificateDer::from_pem_slice(self.authority.as_bytes()).expect("the authority"))
            .expect("a root");
        #[allow(deprecated)]
        let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
        ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("protocol versions")
            .with_root_certificates(roots)
            .with_no_client_auth()
    }

    /// Writes the certificate and its key into `dir`: their paths.
    pub fn write_server_files(&self, dir: &Path) -> (PathBuf, PathBuf) {
        let certificate = dir.join("server.pem");
        let key = dir.join("server.key");
        std::fs::write(&certificate, &self.certificate).expect("the certificate's file");
        std::fs::write(&key, &self.key).expect("the key's file");
        (certificate, key)
    }
}

/// A fresh directory for a test's files, removed when dropped.
pub struct Scratch(pub PathBuf);

impl Scratch {
    /// A directory named after `test` and this process.
    pub fn new(test: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!("coordinated-{test}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("a directory");
        Scratch(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A client's certificate signed by a new authority: that authority's
/// PEM certificate, and the client's identity (its certificate and key in
/// one PEM text, as `RestBackendBuilder::identity` takes it).
pub fn client_identity(name: &str) -> (String, String) {
    use rcgen::{CertificateParams, DnType, ExtendedKeyUsagePurpose, KeyPair};
    let (signer, signer_key) = authority::authority(&format!("authority of {name}"));
    let key = KeyPair::generate().expect("a key");
    let mut params = CertificateParams::default();
    params.distinguished_name.push(DnType::CommonName, name);
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let certificate = params
        .signed_by(&key, &signer, &signer_key)
        .expect("a client certificate");
    (
        signer.pem(),
        format!("{}{}", certificate.pem(), key.serialize_pem()),
    )
}
