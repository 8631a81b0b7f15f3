//! TLS server configuration from PEM files: rustls with the ring provider, TLS 1.3 and 1.2, no
//! client authentication. The key file must be owner-only (see [`crate::files`]); its bytes are
//! zeroed after parsing. ALPN is left empty for the caller to set.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use zeroize::Zeroizing;

use crate::files::{FileError, check_private_mode};

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
    check_private_mode(key)?;
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
    let key_pem = Zeroizing::new(std::fs::read(key).map_err(FileError::io(key))?);
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
}
