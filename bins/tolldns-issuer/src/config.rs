//! The issuer's configuration file (`config.toml`): every key, its default, and how it is read.
//!
//! The file is optional: `tolldns-issuer run` works on the defaults. Every section denies
//! unknown keys, so a typo is an error that names the key. Relative paths are relative to the
//! working directory the issuer was started in. Reading and parsing are
//! [`tolldns_service::config`].

use std::net::SocketAddr;
use std::path::PathBuf;

use serde::Deserialize;

pub use tolldns_service::config::{ConfigError, ConfigFile, KeyHint, LogLevel};

/// The default data directory, relative to the working directory.
pub const DEFAULT_DATA_DIR: &str = "./tolldns-issuer-data";
/// The default listening address.
pub const DEFAULT_LISTEN: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 8480);

/// The whole configuration file.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Data directory: issuer keys and the prepaid ledger.
    pub data_dir: PathBuf,
    /// Log level: `error`, `warn`, `info`, `debug` or `trace`.
    pub log_level: LogLevel,
    /// Address of the HTTP (or HTTPS, with `[tls]`) listener.
    pub listen: SocketAddr,
    /// The public URL of the issuance endpoint, published in the directory as
    /// `issuer-request-uri`; unset means `http(s)://<listen address>/token-request`.
    pub issuer_request_uri: Option<String>,
    /// Size in bits of generated issuer keys: 2048 (interoperable), 3072 or 4096.
    pub key_bits: usize,
    /// `Cache-Control: max-age` of the directory, in seconds.
    pub directory_max_age_secs: u64,
    /// TLS for the listener.
    pub tls: TlsConfig,
}

/// `[tls]`: both or neither.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TlsConfig {
    /// PEM certificate chain.
    pub cert: Option<PathBuf>,
    /// PEM private key (mode 0600).
    pub key: Option<PathBuf>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from(DEFAULT_DATA_DIR),
            log_level: LogLevel::Info,
            listen: DEFAULT_LISTEN,
            issuer_request_uri: None,
            key_bits: 2048,
            directory_max_age_secs: 3600,
            tls: TlsConfig::default(),
        }
    }
}

impl ConfigFile for Config {
    type Error = ConfigError;

    /// Checks values that parse but cannot work.
    ///
    /// # Errors
    ///
    /// [`ConfigError::Invalid`] naming the key.
    fn validate(&self) -> Result<(), ConfigError> {
        if !tolldns_tickets::SUPPORTED_NK.contains(&(self.key_bits / 8)) || self.key_bits % 8 != 0 {
            return Err(ConfigError::Invalid {
                key: "key_bits",
                reason: format!("{} is not 2048, 3072 or 4096", self.key_bits),
            });
        }
        if let Some(uri) = &self.issuer_request_uri {
            check_request_uri(uri).map_err(|reason| ConfigError::Invalid {
                key: "issuer_request_uri",
                reason: format!("`{uri}` {reason}"),
            })?;
        }
        if self.tls.cert.is_some() != self.tls.key.is_some() {
            return Err(ConfigError::Invalid {
                key: "tls",
                reason: "set both `tls.cert` and `tls.key`, or neither".to_owned(),
            });
        }
        Ok(())
    }

    fn data_dir_mut(&mut self) -> &mut PathBuf {
        &mut self.data_dir
    }
}

impl Config {
    /// Whether the listener speaks TLS.
    pub const fn tls_enabled(&self) -> bool {
        self.tls.cert.is_some()
    }

    /// The prepaid ledger file.
    pub fn ledger_path(&self) -> PathBuf {
        self.data_dir.join(crate::ledger::LEDGER_FILE)
    }

    /// The published issuance URL: `issuer_request_uri`, or the one derived from the address
    /// actually bound (`http(s)://<addr>/token-request`).
    pub fn request_uri(&self, bound: SocketAddr) -> String {
        match &self.issuer_request_uri {
            Some(uri) => uri.clone(),
            None => format!(
                "{}://{bound}{}",
                if self.tls_enabled() { "https" } else { "http" },
                tolldns_tickets::ISSUE_PATH
            ),
        }
    }
}

/// `scheme://authority` of an absolute URL such as `issuer_request_uri`.
pub fn origin(uri: &str) -> &str {
    let after_scheme = uri.find("://").map_or(0, |i| i + 3);
    let end = uri[after_scheme..]
        .find(['/', '?', '#'])
        .map_or(uri.len(), |i| after_scheme + i);
    &uri[..end]
}

fn check_request_uri(uri: &str) -> Result<(), &'static str> {
    let parsed: http::Uri = uri.parse().map_err(|_| "is not a URL")?;
    match parsed.scheme_str() {
        Some("http" | "https") => {}
        _ => return Err("must start with https:// (or http://)"),
    }
    if parsed.authority().is_none_or(|a| a.host().is_empty()) {
        return Err("has no host");
    }
    if !parsed.path().starts_with('/') || parsed.path() == "/" {
        return Err("needs the path of the issuance endpoint (the issuer serves /token-request)");
    }
    Ok(())
}

/// The commented `config.toml` written by `tolldns-issuer init`: every key with its default.
pub const TEMPLATE: &str = r#"# TollDNS ticket issuer configuration. Every key is shown with its default value.
# Unknown keys are errors. Relative paths are relative to the working directory.

# Data directory (mode 0700): issuer-key.pem, issuer-keys/, ledger.redb.
data_dir = "./tolldns-issuer-data"

# error | warn | info | debug | trace.
log_level = "info"

# The HTTP listener (HTTPS when [tls] is set). Loopback by default: put a TLS-terminating
# proxy in front, or set [tls] and a public address such as "0.0.0.0:8480".
listen = "127.0.0.1:8480"

# The public URL of the issuance endpoint, published in the directory
# (/.well-known/private-token-issuer-directory) as issuer-request-uri. When unset it is
# derived from the listen address: http://127.0.0.1:8480/token-request (https:// with [tls]).
# issuer_request_uri = "https://issuer.example/token-request"

# Size in bits of generated issuer keys (first start and `key rotate`): 2048 (what RFC 9578
# clients expect), 3072 or 4096.
key_bits = 2048

# Cache-Control max-age of the directory, in seconds. Clients refetch it this often: keep it
# short enough that a rotated key reaches them before the old one is unpublished.
directory_max_age_secs = 3600

[tls]
# PEM certificate chain and private key (the key file must be mode 0600). Both or neither.
# cert = "/etc/tolldns-issuer/cert.pem"
# key = "/etc/tolldns-issuer/key.pem"
"#;

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    #[test]
    fn template_is_the_defaults() {
        let c = Config::parse(TEMPLATE, Path::new("config.toml")).unwrap();
        assert_eq!(c, Config::default());
        assert_eq!(
            Config::parse("", Path::new("x")).unwrap(),
            Config::default()
        );
        // The commented-out keys are real keys.
        let uncommented = TEMPLATE
            .replace("# issuer_request_uri", "issuer_request_uri")
            .replace("# cert", "cert")
            .replace("# key =", "key =");
        let c = Config::parse(&uncommented, Path::new("config.toml")).unwrap();
        assert_eq!(
            c.issuer_request_uri.as_deref(),
            Some("https://issuer.example/token-request")
        );
        assert!(c.tls_enabled());
    }

    #[test]
    fn unknown_and_bad_keys_are_named() {
        let e = Config::parse("[tls]\ncert = \"a\"\ncertt = \"b\"\n", Path::new("c.toml"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("key `tls.certt`"), "{e}");
        let e = Config::parse("listen_addr = \"127.0.0.1:1\"\n", Path::new("c.toml"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("key `listen_addr`"), "{e}");
        let e = Config::parse("listen = \"nowhere\"\n", Path::new("c.toml"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("key `listen`"), "{e}");
        let e = Config::parse("key_bits = 1024\n", Path::new("c.toml"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("`key_bits`"), "{e}");
        for bad in ["ftp://x/token-request", "https:///x", "https://x", "x"] {
            let e = Config::parse(
                &format!("issuer_request_uri = \"{bad}\"\n"),
                Path::new("c.toml"),
            )
            .unwrap_err()
            .to_string();
            assert!(e.contains("`issuer_request_uri`"), "{bad}: {e}");
        }
        let e = Config::parse("[tls]\ncert = \"a\"\n", Path::new("c.toml"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("both"), "{e}");
    }

    #[test]
    fn request_uri_and_origin() {
        let mut c = Config::default();
        let bound: SocketAddr = "127.0.0.1:4000".parse().unwrap();
        assert_eq!(c.request_uri(bound), "http://127.0.0.1:4000/token-request");
        c.tls.cert = Some("c".into());
        c.tls.key = Some("k".into());
        assert_eq!(c.request_uri(bound), "https://127.0.0.1:4000/token-request");
        c.issuer_request_uri = Some("https://issuer.example:8443/t?x".into());
        assert_eq!(c.request_uri(bound), "https://issuer.example:8443/t?x");
        assert_eq!(
            origin("https://issuer.example:8443/t?x"),
            "https://issuer.example:8443"
        );
        assert_eq!(origin("http://[::1]:80/a/b"), "http://[::1]:80");
    }
}
