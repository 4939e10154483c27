//! A certificate authority for tests of TLS to PostgreSQL: a cluster of
//! the harness shows the certificate it signs for `localhost`.

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

/// A cluster listening on loopback TCP with TLS on, its certificate for
/// `localhost` signed by a new authority; and that authority's PEM
/// certificate.
pub fn cluster_with_tls() -> (TestCluster, String) {
    let (signer, signer_key) = authority("coordinate test authority");
    let key = KeyPair::generate().expect("a key");
    let server = CertificateParams::new(vec!["localhost".to_owned()])
        .expect("a name")
        .signed_by(&key, &signer, &signer_key)
        .expect("a certificate");
    let cluster = TestCluster::start_with_tls(&server.pem(), &key.serialize_pem())
        .unwrap_or_else(|e| panic!("no cluster with TLS: {e}"));
    (cluster, signer.pem())
}
