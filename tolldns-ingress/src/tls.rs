//! TLS server configuration for DoT and DoH (rustls with the ring provider, TLS 1.2 and 1.3).

use std::path::Path;
use std::sync::Arc;

use rustls::ServerConfig;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::error::EdgeError;

/// ALPN protocols offered by the DoH listener.
pub const DOH_ALPN: [&[u8]; 2] = [b"h2", b"http/1.1"];
/// ALPN protocol of DoT (RFC 7858 as registered).
pub const DOT_ALPN: &[u8] = b"dot";

fn read(path: &Path) -> Result<Vec<u8>, EdgeError> {
    std::fs::read(path).map_err(|source| EdgeError::File {
        path: path.to_owned(),
        source,
    })
}

/// Build a server configuration from a PEM certificate chain and a PEM private key.
///
/// # Errors
///
/// [`EdgeError::File`] when a file cannot be read, [`EdgeError::Tls`] when it holds no
/// certificate or key, [`EdgeError::Rustls`] when rustls refuses them.
pub fn server_config_from_pem(
    cert_pem: &[u8],
    key_pem: &[u8],
) -> Result<Arc<ServerConfig>, EdgeError> {
    let certs: Vec<CertificateDer<'static>> = rustls_pemfile::certs(&mut &cert_pem[..])
        .collect::<Result<_, _>>()
        .map_err(|_| EdgeError::Tls("certificate file is not valid PEM"))?;
    if certs.is_empty() {
        return Err(EdgeError::Tls("no certificate in the certificate file"));
    }
    let key: PrivateKeyDer<'static> = rustls_pemfile::private_key(&mut &key_pem[..])
        .map_err(|_| EdgeError::Tls("key file is not valid PEM"))?
        .ok_or(EdgeError::Tls("no private key in the key file"))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
        .with_no_client_auth()
        .with_single_cert(certs, key)?;
    Ok(Arc::new(config))
}

/// [`server_config_from_pem`] from files.
///
/// # Errors
///
/// As [`server_config_from_pem`].
pub fn server_config_from_files(cert: &Path, key: &Path) -> Result<Arc<ServerConfig>, EdgeError> {
    server_config_from_pem(&read(cert)?, &read(key)?)
}

/// Copies of `base` with the ALPN lists of DoT and DoH.
pub(crate) fn per_protocol(base: &ServerConfig) -> (Arc<ServerConfig>, Arc<ServerConfig>) {
    let mut dot = base.clone();
    // DoT clients may or may not offer "dot": an empty list accepts both.
    dot.alpn_protocols = Vec::new();
    let mut doh = base.clone();
    doh.alpn_protocols = DOH_ALPN.iter().map(|p| p.to_vec()).collect();
    (Arc::new(dot), Arc::new(doh))
}
