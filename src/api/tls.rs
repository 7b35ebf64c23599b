//! HTTPS when asked (`[server.tls]`): rustls with its default provider, aws-lc-rs (post-quantum key exchange included), the certificate chain
//! and key read once at start-up from PEM files. Only HTTP/1.1 is offered (ALPN), as the plain
//! server speaks; TLS 1.2 and 1.3 with rustls's safe defaults.
//!
//! A bad file stops start-up with a message naming the file and what is wrong with it; a
//! certificate whose public key is not the key's is refused here, not at the first client.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::rustls::crypto::aws_lc_rs;

/// Why the certificate or key could not be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file that cannot be read, or holds no PEM of the kind expected.
    #[error("{what} {path}: {reason}")]
    File {
        /// `the certificate file` or `the key file`.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The files read, but rustls refused them together (the key is not the certificate's).
    #[error("the certificate and key cannot be used together: {0}")]
    Refused(String),
}

/// The acceptor for `cert` (a PEM chain, leaf first) and `key` (a PEM private key).
///
/// # Errors
/// [`TlsError`] naming the file and the problem.
pub fn acceptor(cert: &Path, key: &Path) -> Result<TlsAcceptor, TlsError> {
    let file_error = |what, path: &Path, reason: String| TlsError::File {
        what,
        path: path.to_owned(),
        reason,
    };
    let chain = CertificateDer::pem_file_iter(cert)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| file_error("the certificate file", cert, e.to_string()))?;
    if chain.is_empty() {
        return Err(file_error(
            "the certificate file",
            cert,
            "no PEM certificate (-----BEGIN CERTIFICATE-----) in it".to_owned(),
        ));
    }
    let key_der = PrivateKeyDer::from_pem_file(key).map_err(|e| {
        file_error(
            "the key file",
            key,
            format!("{e} (expected a PEM private key: PKCS#8, PKCS#1 or SEC1)"),
        )
    })?;
    let mut config = ServerConfig::builder_with_provider(Arc::new(aws_lc_rs::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Refused(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(chain, key_der)
        .map_err(|e| TlsError::Refused(e.to_string()))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    #[test]
    fn a_certificate_and_its_key_make_an_acceptor() {
        let dir = tempfile::tempdir().unwrap();
        let made = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
        let cert = write(dir.path(), "cert.pem", &made.cert.pem());
        let key = write(dir.path(), "key.pem", &made.signing_key.serialize_pem());
        assert!(acceptor(&cert, &key).is_ok());
    }

    #[test]
    fn bad_files_are_named_with_what_is_wrong() {
        let dir = tempfile::tempdir().unwrap();
        let made = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
        let other = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
        let cert = write(dir.path(), "cert.pem", &made.cert.pem());
        let key = write(dir.path(), "key.pem", &made.signing_key.serialize_pem());
        let other_key = write(dir.path(), "other.pem", &other.signing_key.serialize_pem());
        let empty = write(dir.path(), "empty.pem", "not pem\n");
        let missing = dir.path().join("missing.pem");

        let message = |result: Result<TlsAcceptor, TlsError>| match result {
            Ok(_) => panic!("accepted"),
            Err(error) => error.to_string(),
        };
        let text = message(acceptor(&missing, &key));
        assert!(
            text.starts_with("the certificate file") && text.contains("missing.pem"),
            "{text}"
        );
        let text = message(acceptor(&empty, &key));
        assert!(text.contains("no PEM certificate"), "{text}");
        let text = message(acceptor(&cert, &empty));
        assert!(
            text.starts_with("the key file") && text.contains("expected a PEM private key"),
            "{text}"
        );
        let text = message(acceptor(&key, &cert));
        assert!(text.contains("no PEM certificate"), "{text}");
        let text = message(acceptor(&cert, &other_key));
        assert!(text.contains("cannot be used together"), "{text}");
    }
}
