//! TLS for DoT and DoH: the configured certificate, or a self-signed one generated on first
//! start (rcgen) in `<data_dir>/tls/`. Loading the PEM files is [`tolldns_service::tls`].

use std::path::{Path, PathBuf};
use std::sync::Arc;

use tolldns_service::files::{FileError, write_private_file};

/// Why TLS could not be set up.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// Reading the PEM files failed, the key file is readable by group or others, a file
    /// holds no certificate or key, or rustls refused them.
    #[error(transparent)]
    Load(#[from] tolldns_service::tls::TlsError),
    /// Writing the generated key or certificate failed.
    #[error(transparent)]
    Key(#[from] FileError),
    /// Generating the self-signed certificate failed.
    #[error("generating the self-signed certificate: {0}")]
    Generate(#[from] rcgen::Error),
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
/// [`TlsError::Load`].
pub fn server_config(files: &TlsFiles) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    Ok(Arc::new(tolldns_service::tls::server_config(
        &files.cert,
        &files.key,
    )?))
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
