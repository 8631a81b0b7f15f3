//! TLS configurations from PEM files: rustls with the ring provider, TLS 1.3 and 1.2.
//!
//! - [`server_config`]: a certificate chain and its private key, no client authentication. The
//!   key file must be an owner-only regular file (see [`crate::files`]); its bytes are zeroed
//!   after parsing. ALPN is left empty for the caller to set.
//! - [`client_config`]: trusting only the root certificates of a PEM file (a `--ca` option): no
//!   system or bundled roots are built in.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::files::{FileError, read_private_file};

/// Why TLS could not be set up.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// Reading a file failed, or the key file is readable by group or others.
    #[error(transparent)]
    File(#[from] FileError),
    /// A PEM file has no certificate or no private key.
    #[error("{path}: no {what} found in PEM file")]
    Empty {
        /// The file.
        path: PathBuf,
        /// "certificate" or "private key".
        what: &'static str,
    },
    /// rustls refused a root certificate.
    #[error("{path}: unusable certificate: {error}")]
    Certificate {
        /// The file.
        path: PathBuf,
        /// Why.
        error: rustls::Error,
    },
    /// rustls refused the certificate or key.
    #[error("TLS configuration: {0}")]
    Rustls(#[from] rustls::Error),
}

/// Builds a rustls server configuration (ring, TLS 1.3 and 1.2, no ALPN) from a PEM
/// certificate chain and a PEM private key. The key file must not be readable by group or
/// others.
///
/// # Errors
///
/// Any [`TlsError`], naming the file.
pub fn server_config(cert: &Path, key: &Path) -> Result<rustls::ServerConfig, TlsError> {
    let key_pem = read_private_file(key, u64::MAX)?;
    let cert_pem = std::fs::read(cert).map_err(FileError::io(cert))?;
    let certs = rustls_pemfile::certs(&mut cert_pem.as_slice())
        .collect::<Result<Vec<_>, _>>()
        .map_err(FileError::io(cert))?;
    if certs.is_empty() {
        return Err(TlsError::Empty {
            path: cert.to_owned(),
            what: "certificate",
        });
    }
    let private = rustls_pemfile::private_key(&mut key_pem.as_slice())
        .map_err(FileError::io(key))?
        .ok_or_else(|| TlsError::Empty {
            path: key.to_owned(),
            what: "private key",
        })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
        .with_no_client_auth()
        .with_single_cert(certs, private)?)
}

/// Builds a rustls client configuration (ring, TLS 1.3 and 1.2) that trusts the certificates
/// of the PEM file `ca` and nothing else, offering the ALPN protocols `alpn`.
///
/// # Errors
///
/// [`TlsError::File`] when the file cannot be read or a PEM section is malformed,
/// [`TlsError::Empty`] when it holds no certificate, [`TlsError::Certificate`] when rustls
/// refuses one.
pub fn client_config(ca: &Path, alpn: &[&[u8]]) -> Result<rustls::ClientConfig, TlsError> {
    let pem = std::fs::read(ca).map_err(FileError::io(ca))?;
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_pemfile::certs(&mut pem.as_slice()) {
        let cert = cert.map_err(FileError::io(ca))?;
        roots.add(cert).map_err(|error| TlsError::Certificate {
            path: ca.to_owned(),
            error,
        })?;
    }
    if roots.is_empty() {
        return Err(TlsError::Empty {
            path: ca.to_owned(),
            what: "certificate",
        });
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loads_and_names_missing_empty_and_open_files() {
        let dir = std::env::temp_dir().join(format!("tolldns-service-tls-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        crate::files::create_private_dir(&dir).unwrap();
        let cert = dir.join("cert.pem");
        let key = dir.join("key.pem");
        crate::files::write_private_file(&key, b"").unwrap();
        std::fs::write(&cert, b"").unwrap();
        let e = server_config(&cert, &key).unwrap_err().to_string();
        assert!(
            e.contains("cert.pem") && e.contains("no certificate"),
            "{e}"
        );
        let e = server_config(&cert, &dir.join("nope.pem"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("nope.pem"), "{e}");

        let generated = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
        std::fs::write(&cert, generated.cert.pem()).unwrap();
        let e = server_config(&cert, &key).unwrap_err().to_string();
        assert!(e.contains("key.pem") && e.contains("no private key"), "{e}");
        std::fs::remove_file(&key).unwrap();
        crate::files::write_private_file(&key, generated.signing_key.serialize_pem().as_bytes())
            .unwrap();
        let config = server_config(&cert, &key).unwrap();
        assert!(config.alpn_protocols.is_empty());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
            let e = server_config(&cert, &key).unwrap_err().to_string();
            assert!(e.contains("key.pem") && e.contains("chmod 600"), "{e}");
        }
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn client_config_trusts_only_the_pem_roots() {
        let dir =
            std::env::temp_dir().join(format!("tolldns-service-tls-client-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        crate::files::create_private_dir(&dir).unwrap();
        let ca = dir.join("ca.pem");
        let e = client_config(&ca, &[]).unwrap_err().to_string();
        assert!(e.contains("ca.pem"), "{e}");
        std::fs::write(&ca, b"not pem\n").unwrap();
        let e = client_config(&ca, &[]).unwrap_err().to_string();
        assert!(e.contains("ca.pem") && e.contains("no certificate"), "{e}");
        let generated = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
        // A certificate that is not DER inside valid PEM armour.
        std::fs::write(
            &ca,
            b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
        )
        .unwrap();
        let e = client_config(&ca, &[]).unwrap_err().to_string();
        assert!(
            e.contains("ca.pem") && e.contains("unusable certificate"),
            "{e}"
        );
        std::fs::write(&ca, generated.cert.pem()).unwrap();
        let config = client_config(&ca, &[b"h2", b"http/1.1"]).unwrap();
        assert_eq!(
            config.alpn_protocols,
            vec![b"h2".to_vec(), b"http/1.1".to_vec()]
        );
        assert!(client_config(&ca, &[]).unwrap().alpn_protocols.is_empty());
        std::fs::remove_dir_all(dir).unwrap();
    }
}
