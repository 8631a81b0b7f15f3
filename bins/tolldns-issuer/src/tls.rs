//! Optional TLS for the listener: the PEM certificate chain and key of `[tls]` (rustls with the
//! ring provider, TLS 1.3 and 1.2, ALPN `http/1.1`).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::keys::{KeyError, check_private_mode};

/// Why TLS could not be set up.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// Reading a file failed.
    #[error("{path}: {error}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        error: std::io::Error,
    },
    /// The key file is readable by group or others.
    #[error(transparent)]
    Key(#[from] KeyError),
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

/// Builds the rustls server configuration from PEM files. The key file must not be readable
/// by group or others.
///
/// # Errors
///
/// Any [`TlsError`].
pub fn server_config(cert: &Path, key: &Path) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    let io = |path: &Path| {
        let path = path.to_owned();
        move |error| TlsError::Io { path, error }
    };
    check_private_mode(key)?;
    let cert_pem = std::fs::read(cert).map_err(io(cert))?;
    let certs = rustls_pemfile::certs(&mut cert_pem.as_slice())
        .collect::<Result<Vec<_>, _>>()
        .map_err(io(cert))?;
    if certs.is_empty() {
        return Err(TlsError::Empty {
            path: cert.to_owned(),
            what: "certificate",
        });
    }
    let key_pem = zeroize::Zeroizing::new(std::fs::read(key).map_err(io(key))?);
    let private = rustls_pemfile::private_key(&mut key_pem.as_slice())
        .map_err(io(key))?
        .ok_or_else(|| TlsError::Empty {
            path: key.to_owned(),
            what: "private key",
        })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
        .with_no_client_auth()
        .with_single_cert(certs, private)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_and_empty_files_are_named() {
        let dir = std::env::temp_dir().join(format!("tolldns-issuer-tls-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        crate::keys::create_private_dir(&dir).unwrap();
        let cert = dir.join("cert.pem");
        let key = dir.join("key.pem");
        crate::keys::write_private_file(&key, b"").unwrap();
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
