//! TLS client set-up for `https://` issuers, DoT and DoH: rustls with the ring provider,
//! TLS 1.3 and 1.2, trusting only the roots of a PEM file (`--ca`): no system or bundled
//! roots are built in.

use std::path::Path;
use std::sync::Arc;

use anyhow::Context as _;
use rustls::pki_types::ServerName;

/// A client configuration trusting the certificates of the PEM file `ca`, offering `alpn`.
///
/// # Errors
///
/// When the file cannot be read, holds no certificate, or rustls refuses one.
pub(crate) fn client_config(
    ca: &Path,
    alpn: &[&[u8]],
) -> anyhow::Result<Arc<rustls::ClientConfig>> {
    let pem = std::fs::read(ca).with_context(|| format!("reading the CA file {}", ca.display()))?;
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_pemfile::certs(&mut pem.as_slice()) {
        let cert = cert.with_context(|| format!("reading the CA file {}", ca.display()))?;
        roots
            .add(cert)
            .with_context(|| format!("CA file {}: unusable certificate", ca.display()))?;
    }
    if roots.is_empty() {
        anyhow::bail!("CA file {}: no PEM certificate found", ca.display());
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .context("TLS configuration")?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Ok(Arc::new(config))
}

/// The name a server certificate must carry (a DNS name or an IP address).
///
/// # Errors
///
/// When `name` is neither.
pub(crate) fn server_name(name: &str) -> anyhow::Result<ServerName<'static>> {
    ServerName::try_from(name.to_owned()).map_err(|_| {
        anyhow::Error::from(crate::error::CliError::field(
            "--tls-name",
            format!("{name:?} is not a DNS name or IP address"),
        ))
    })
}
