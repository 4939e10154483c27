//! Certificates for TLS tests: authorities, and a certificate signed for
//! `localhost`, which a cluster of the harness (or a `coordinated`) shows.

use coordinate::postgres::testing::TestCluster;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};

/// A certificate authority: its certificate and key.
pub fn authority(name: &str) -> (rcgen::Certificate, KeyPair) {
    let mut params = CertificateParams::default();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    let key = KeyPair::generate().expect("a key");
    (params.self_signed(&key).expect("a CA"), key)
}

/// A server certificate for `localhost` and the new authority that
/// signed it, all in PEM.
pub struct LocalhostCertificate {
    /// The authority's certificate, which clients are to trust.
    pub authority: String,
    /// The server's certificate.
    pub certificate: String,
    /// The server certificate's private key (PKCS #8).
    pub key: String,
}

impl LocalhostCertificate {
    /// Makes a new authority, and a certificate it signs for `localhost`.
    pub fn new() -> LocalhostCertificate {
        let (signer, signer_key) = authority("coordinate test authority");
        let key = KeyPair::generate().expect("a key");
        let certificate = CertificateParams::new(vec!["localhost".to_owned()])
            .expect("a name")
            .signed_by(&key, &signer, &signer_key)
            .expect("a certificate");
        LocalhostCertificate {
            authority: signer.pem(),
            certificate: certificate.pem(),
            key: key.serialize_pem(),
        }
    }
}

/// A cluster listening on loopback TCP with TLS on, its certificate for
/// `localhost` signed by a new authority; and that authority's PEM
/// certificate.
pub fn cluster_with_tls() -> (TestCluster, String) {
    let signed = LocalhostCertificate::new();
    let cluster = TestCluster::start_with_tls(&signed.certificate, &signed.key)
        .unwrap_or_else(|e| panic!("no cluster with TLS: {e}"));
    (cluster, signed.authority)
}
