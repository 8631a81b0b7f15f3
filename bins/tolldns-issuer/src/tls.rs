//! Optional TLS for the listener: the PEM certificate chain and key of `[tls]` (rustls with the
//! ring provider, TLS 1.3 and 1.2, ALPN `http/1.1`), loaded by [`tolldns_service::tls`].

use std::path::Path;
use std::sync::Arc;

pub use tolldns_service::tls::TlsError;

/// Builds the rustls server configuration from PEM files. The key file must not be readable
/// by group or others.
///
/// # Errors
///
/// Any [`TlsError`].
pub fn server_config(cert: &Path, key: &Path) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    let mut config = tolldns_service::tls::server_config(cert, key)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}
