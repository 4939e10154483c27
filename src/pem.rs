//! PEM files of certificates and private keys, as TLS settings name them
//! (`sslrootcert`, `sslcert` and `sslkey` of a PostgreSQL connection
//! string; a job server's certificate and key): read whole, with errors
//! that name the file and say in words what is wrong with it.
//!
//! ```
//! use coordinate::pem::{certificates, PemFileError};
//!
//! let missing = std::path::Path::new("/no/such/ca.pem");
//! let error = certificates(missing).unwrap_err();
//! assert!(matches!(error, PemFileError::Read { .. }));
//! assert!(error.to_string().starts_with("cannot read /no/such/ca.pem: "));
//! ```

use std::path::{Path, PathBuf};

use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// A PEM file that cannot be used. Each names the file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PemFileError {
    /// The file cannot be read.
    #[error("cannot read {}: {error}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        error: std::io::Error,
    },
    /// The file is not well-formed PEM.
    #[error("{} is not well-formed PEM: {reason}", path.display())]
    Malformed {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The file holds no certificate.
    #[error("{} holds no PEM certificate", path.display())]
    NoCertificate {
        /// The file.
        path: PathBuf,
    },
    /// The file holds no private key.
    #[error("{} holds no PEM private key (PKCS #8, PKCS #1 or SEC1)", path.display())]
    NoKey {
        /// The file.
        path: PathBuf,
    },
    /// The file's private key is encrypted, which is not supported.
    #[error(
        "{} holds an encrypted private key: give it decrypted (`openssl pkey -in KEY -out PLAIN`)",
        path.display()
    )]
    EncryptedKey {
        /// The file.
        path: PathBuf,
    },
}

/// The certificates of the PEM file at `path`, in their order; at least
/// one.
pub fn certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, PemFileError> {
    let found = CertificateDer::pem_slice_iter(&read(path)?)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| malformed(path, &e))?;
    if found.is_empty() {
        return Err(PemFileError::NoCertificate {
            path: path.to_owned(),
        });
    }
    Ok(found)
}

/// The first private key of the PEM file at `path`.
pub fn private_key(path: &Path) -> Result<PrivateKeyDer<'static>, PemFileError> {
    let text = read(path)?;
    // Both spellings of an encrypted key: PKCS #8's own section, and the
    // legacy headers of an encrypted PKCS #1 or SEC1 one.
    let encrypted = [
        &b"-----BEGIN ENCRYPTED PRIVATE KEY-----"[..],
        b"Proc-Type: 4,ENCRYPTED",
    ];
    if encrypted
        .iter()
        .any(|marker| text.windows(marker.len()).any(|w| w == *marker))
    {
        return Err(PemFileError::EncryptedKey {
            path: path.to_owned(),
        });
    }
    PrivateKeyDer::from_pem_slice(&text).map_err(|e| match e {
        pem::Error::NoItemsFound => PemFileError::NoKey {
            path: path.to_owned(),
        },
        e => malformed(path, &e),
    })
}

fn read(path: &Path) -> Result<Vec<u8>, PemFileError> {
    std::fs::read(path).map_err(|error| PemFileError::Read {
        path: path.to_owned(),
        error,
    })
}

/// [`PemFileError::Malformed`], its reason in words (the parser's own
/// shows a section's lines as lists of byte values).
fn malformed(path: &Path, error: &pem::Error) -> PemFileError {
    let reason = match error {
        pem::Error::MissingSectionEnd { end_marker } => format!(
            "a {} section has no END line",
            String::from_utf8_lossy(end_marker)
        ),
        pem::Error::IllegalSectionStart { line } => format!(
            "a section's first line is malformed ({})",
            String::from_utf8_lossy(line)
        ),
        pem::Error::Base64Decode(e) => format!("a section is not base64: {e}"),
        e => e.to_string(),
    };
    PemFileError::Malformed {
        path: path.to_owned(),
        reason,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Writes `text` to a file of its own; calls `check` with its path.
    fn with_file(name: &str, text: &str, check: impl FnOnce(&Path)) {
        let dir =
            std::env::temp_dir().join(format!("coordinate-pem-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("file.pem");
        std::fs::write(&path, text).unwrap();
        check(&path);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn errors_name_the_file_and_say_what_is_wrong() {
        let truncated = "-----BEGIN CERTIFICATE-----\nMIIB\n";
        with_file("truncated", truncated, |path| {
            let error = certificates(path).unwrap_err().to_string();
            assert!(error.contains(&path.display().to_string()), "{error}");
            assert!(
                error.contains("a CERTIFICATE section has no END line"),
                "{error}"
            );
        });
        let not_base64 = "-----BEGIN CERTIFICATE-----\n!!!\n-----END CERTIFICATE-----\n";
        with_file("base64", not_base64, |path| {
            let error = certificates(path).unwrap_err().to_string();
            assert!(error.contains("not base64"), "{error}");
        });
        with_file("empty", "", |path| {
            assert!(matches!(
                certificates(path),
                Err(PemFileError::NoCertificate { .. })
            ));
            assert!(matches!(private_key(path), Err(PemFileError::NoKey { .. })));
        });
        let pkcs8 =
            "-----BEGIN ENCRYPTED PRIVATE KEY-----\nMIIB\n-----END ENCRYPTED PRIVATE KEY-----\n";
        let legacy = "-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\n\
                      DEK-Info: AES-256-CBC,00\n\nMIIB\n-----END RSA PRIVATE KEY-----\n";
        for (name, text) in [("pkcs8", pkcs8), ("legacy", legacy)] {
            with_file(name, text, |path| {
                let error = private_key(path).unwrap_err();
                assert!(
                    matches!(error, PemFileError::EncryptedKey { .. }),
                    "{name}: {error}"
                );
            });
        }
        let dir = std::env::temp_dir();
        assert!(matches!(certificates(&dir), Err(PemFileError::Read { .. })));
    }
}
