//! TLS for DoT and DoH: the configured certificate, or a self-signed one generated on first
//! start (rcgen) in `<data_dir>/tls/`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::keys::{KeyError, check_private_mode, write_private_file};

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
    /// Writing or checking the key file failed.
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
    /// Generating the self-signed certificate failed.
    #[error("generating the self-signed certificate: {0}")]
    Generate(#[from] rcgen::Error),
    /// rustls refused the certificate or key.
    #[error("TLS configuration: {0}")]
    Rustls(#[from] rustls::Error),
    /// Only one of `tls.cert_file` and `tls.key_file` is set.
    #[error("set both `tls.cert_file` and `tls.key_file`, or neither")]
    HalfConfigured,
}

/// The certificate and key files in use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// PEM certificate chain.
    pub cert: PathBuf,
    /// PEM private key.
    pub key: PathBuf,
    /// Whether they were generated now.
    pub generated: bool,
}

/// Returns the configured files, or the self-signed pair in `<data_dir>/tls/`, generating it
/// when missing.
///
/// # Errors
///
/// Any [`TlsError`].
pub fn ensure_files(
    data_dir: &Path,
    cert_file: Option<&Path>,
    key_file: Option<&Path>,
    names: &[String],
) -> Result<TlsFiles, TlsError> {
    match (cert_file, key_file) {
        (Some(cert), Some(key)) => {
            return Ok(TlsFiles {
                cert: cert.to_owned(),
                key: key.to_owned(),
                generated: false,
            });
        }
        (None, None) => {}
        _ => return Err(TlsError::HalfConfigured),
    }
    let dir = data_dir.join("tls");
    let cert = dir.join("cert.pem");
    let key = dir.join("key.pem");
    if cert.exists() && key.exists() {
        return Ok(TlsFiles {
            cert,
            key,
            generated: false,
        });
    }
    let generated = rcgen::generate_simple_self_signed(names.to_vec())?;
    // A half-written pair from an interrupted first start is replaced.
    let _ = std::fs::remove_file(&key);
    let _ = std::fs::remove_file(&cert);
    write_private_file(&key, generated.signing_key.serialize_pem().as_bytes())?;
    write_private_file(&cert, generated.cert.pem().as_bytes())?;
    Ok(TlsFiles {
        cert,
        key,
        generated: true,
    })
}

/// Builds the rustls server configuration (TLS 1.2 and 1.3, ring) from PEM files. The key file
/// must not be readable by group or others.
///
/// # Errors
///
/// Any [`TlsError`].
pub fn server_config(files: &TlsFiles) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    let io = |path: &Path| {
        let path = path.to_owned();
        move |error| TlsError::Io { path, error }
    };
    check_private_mode(&files.key)?;
    let cert_pem = std::fs::read(&files.cert).map_err(io(&files.cert))?;
    let certs = rustls_pemfile::certs(&mut cert_pem.as_slice())
        .collect::<Result<Vec<_>, _>>()
        .map_err(io(&files.cert))?;
    if certs.is_empty() {
        return Err(TlsError::Empty {
            path: files.cert.clone(),
            what: "certificate",
        });
    }
    let key_pem = zeroize::Zeroizing::new(std::fs::read(&files.key).map_err(io(&files.key))?);
    let key = rustls_pemfile::private_key(&mut key_pem.as_slice())
        .map_err(io(&files.key))?
        .ok_or_else(|| TlsError::Empty {
            path: files.key.clone(),
            what: "private key",
        })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
        .with_no_client_auth()
        .with_single_cert(certs, key)?;
    Ok(Arc::new(config))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generates_once_and_loads() {
        let dir = std::env::temp_dir().join(format!("tolldns-miner-tls-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let names = vec!["localhost".to_owned(), "127.0.0.1".to_owned()];
        let a = ensure_files(&dir, None, None, &names).unwrap();
        assert!(a.generated);
        let b = ensure_files(&dir, None, None, &names).unwrap();
        assert!(!b.generated);
        assert_eq!(
            std::fs::read(&a.cert).unwrap(),
            std::fs::read(&b.cert).unwrap()
        );
        server_config(&b).unwrap();
        assert!(matches!(
            ensure_files(&dir, Some(&a.cert), None, &names),
            Err(TlsError::HalfConfigured)
        ));
        std::fs::remove_dir_all(dir).unwrap();
    }
}
