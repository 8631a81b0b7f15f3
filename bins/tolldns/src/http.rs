//! The HTTP client of the CLI: [`tolldns_service::http`] (shared with the watcher), plus the
//! CLI's argument-naming wrappers (`--issuer`, `--api`, `--ca`, `--tls-name` in errors).

use std::path::Path;
use std::sync::Arc;

use anyhow::Context as _;
use rustls::pki_types::ServerName;

pub(crate) use tolldns_service::http::*;

use crate::error::CliError;

/// A TLS client configuration trusting only the certificates of the PEM file `ca` (a `--ca`
/// option; no system or bundled roots are built in), offering `alpn`
/// ([`tolldns_service::tls::client_config`]).
///
/// # Errors
///
/// When the file cannot be read, holds no certificate, or rustls refuses one.
pub(crate) fn client_config(
    ca: &Path,
    alpn: &[&[u8]],
) -> anyhow::Result<Arc<rustls::ClientConfig>> {
    let config = tolldns_service::tls::client_config(ca, alpn).context("reading the CA file")?;
    Ok(Arc::new(config))
}

/// The name a server certificate must carry (a DNS name or an IP address).
///
/// # Errors
///
/// When `name` is neither.
pub(crate) fn server_name(name: &str) -> anyhow::Result<ServerName<'static>> {
    tolldns_service::http::server_name(name).ok_or_else(|| {
        anyhow::Error::from(CliError::field(
            "--tls-name",
            format!("{name:?} is not a DNS name or IP address"),
        ))
    })
}

/// Parses the origin URL of argument `what` ([`Origin::parse`]).
///
/// # Errors
///
/// [`CliError::BadField`] naming `what`.
pub(crate) fn parse_origin(what: &str, url: &str) -> Result<Origin, CliError> {
    Origin::parse(url).map_err(|e| CliError::field(what, e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_parse_with_default_ports() {
        let o = parse_origin("--issuer", "http://127.0.0.1:8080").unwrap();
        assert_eq!(
            (o.https, o.host.as_str(), o.port),
            (false, "127.0.0.1", 8080)
        );
        assert_eq!(o.to_string(), "http://127.0.0.1:8080");
        for bad in [
            "ftp://x",
            "127.0.0.1:80",
            "http://x/path",
            "http://u@x",
            "http://x/?q",
        ] {
            let err = parse_origin("--issuer", bad).unwrap_err().to_string();
            assert!(err.starts_with("--issuer: "), "{bad}: {err}");
        }
    }
}
