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
    /// `[chain]`: credit buyers from their on-chain ticket purchases; `None` without the
    /// section (only `credit` fills the ledger then).
    pub chain: Option<ChainConfig>,
}

/// The registry program (`programs/tolldns-registry`) whose `TicketQuota` accounts record
/// ticket purchases.
pub const DEFAULT_REGISTRY_PROGRAM: &str = "AL2GUFuDigxfttMgEH82cTR8CKwvY6MSxaSEj5umaZTg";
/// The default `chain.sync_interval_secs`.
pub const DEFAULT_SYNC_INTERVAL_SECS: u64 = 10;
/// The default `chain.request_timeout_secs`.
pub const DEFAULT_REQUEST_TIMEOUT_SECS: u64 = 10;

/// `[chain]`: where the chain sync ([`crate::chain`]) reads ticket purchases.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChainConfig {
    /// Solana JSON-RPC endpoint: `https://…` (with `ca_file`), or `http://` to a loopback
    /// address (a local validator or RPC proxy).
    pub rpc_url: String,
    /// The wallet (base58 ed25519 public key) of the operator this issuer registered with the
    /// issuer role: the sync reads and credits only the quotas bought from it
    /// (`["ticket_quota", buyer, issuer_wallet]`). Required.
    pub issuer_wallet: String,
    /// The registry program id (base58).
    #[serde(default = "default_registry_program")]
    pub registry_program: String,
    /// Seconds between two syncs (at least 1).
    #[serde(default = "default_sync_interval")]
    pub sync_interval_secs: u64,
    /// Seconds one `getProgramAccounts` exchange may take (at least 1).
    #[serde(default = "default_request_timeout")]
    pub request_timeout_secs: u64,
    /// PEM file of the certificate authorities trusted for an `https://` `rpc_url`
    /// (required for https: the issuer ships no system trust store).
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
}

fn default_registry_program() -> String {
    DEFAULT_REGISTRY_PROGRAM.to_owned()
}

const fn default_sync_interval() -> u64 {
    DEFAULT_SYNC_INTERVAL_SECS
}

const fn default_request_timeout() -> u64 {
    DEFAULT_REQUEST_TIMEOUT_SECS
}

impl ChainConfig {
    /// `[chain]` with `rpc_url`, `issuer_wallet` and every other key at its default.
    pub fn new(rpc_url: impl Into<String>, issuer_wallet: impl Into<String>) -> Self {
        Self {
            rpc_url: rpc_url.into(),
            issuer_wallet: issuer_wallet.into(),
            registry_program: default_registry_program(),
            sync_interval_secs: DEFAULT_SYNC_INTERVAL_SECS,
            request_timeout_secs: DEFAULT_REQUEST_TIMEOUT_SECS,
            ca_file: None,
        }
    }

    /// The registry program id, decoded.
    ///
    /// # Errors
    ///
    /// [`ConfigError::Invalid`] naming `chain.registry_program`.
    pub fn registry_program_id(&self) -> Result<[u8; 32], ConfigError> {
        bs58::decode(self.registry_program.trim())
            .into_vec()
            .ok()
            .and_then(|v| <[u8; 32]>::try_from(v).ok())
            .ok_or_else(|| ConfigError::Invalid {
                key: "chain.registry_program",
                reason: format!(
                    "`{}` is not a base58 program id (32 bytes)",
                    self.registry_program
                ),
            })
    }

    /// The issuer wallet, decoded: a valid, non-weak ed25519 public key.
    ///
    /// # Errors
    ///
    /// [`ConfigError::Invalid`] naming `chain.issuer_wallet`.
    pub fn issuer_wallet_key(&self) -> Result<[u8; 32], ConfigError> {
        crate::ledger::parse_buyer(&self.issuer_wallet)
            .map(|k| k.0)
            .map_err(|_| ConfigError::Invalid {
                key: "chain.issuer_wallet",
                reason: format!(
                    "`{}` is not a base58 ed25519 public key (the wallet of the operator this \
                     issuer registered with the issuer role)",
                    self.issuer_wallet
                ),
            })
    }

    fn validate(&self) -> Result<(), ConfigError> {
        self.registry_program_id()?;
        self.issuer_wallet_key()?;
        crate::chain::RpcEndpoint::parse(&self.rpc_url, self.ca_file.is_some())
            .map_err(|e| e.for_url(&self.rpc_url))?;
        if self.sync_interval_secs == 0 {
            return Err(ConfigError::Invalid {
                key: "chain.sync_interval_secs",
                reason: "must be at least 1".to_owned(),
            });
        }
        if self.request_timeout_secs == 0 {
            return Err(ConfigError::Invalid {
                key: "chain.request_timeout_secs",
                reason: "must be at least 1".to_owned(),
            });
        }
        Ok(())
    }
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
            chain: None,
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
        if let Some(chain) = &self.chain {
            chain.validate()?;
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

# On-chain ticket purchases. Without this section only `tolldns-issuer credit` fills the
# ledger. With it the issuer reads the registry program's TicketQuota accounts of this
# issuer (getProgramAccounts, commitment "finalized") every sync_interval_secs and credits
# each buyer with the tickets it bought from this issuer since the last sync
# (`tolldns-issuer chain-sync` does one sync by hand). A purchase is credited once, and by one
# issuer only: the quota names the issuer it was bought from, and the ledger remembers how
# many tickets of each quota it has credited.
# [chain]
# Solana JSON-RPC endpoint: https:// (needs ca_file), or http:// to a loopback address only
# (a local validator, or a local proxy that speaks TLS to the node).
# rpc_url = "http://127.0.0.1:8899"
# Required: the wallet (base58 ed25519 public key) of the operator this issuer registered
# with the issuer role. Buyers name it in buy_tickets; only the quotas bought from it are
# credited here.
# issuer_wallet = "<base58 wallet of your issuer operator>"
# The registry program id (base58).
# registry_program = "AL2GUFuDigxfttMgEH82cTR8CKwvY6MSxaSEj5umaZTg"
# Seconds between two syncs (at least 1), and the time one RPC exchange may take.
# sync_interval_secs = 10
# request_timeout_secs = 10
# PEM file of the certificate authorities trusted for an https:// rpc_url.
# ca_file = "/etc/tolldns-issuer/rpc-ca.pem"
"#;

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    /// A valid issuer wallet: the ed25519 key of the seed `[0x43; 32]`.
    fn wallet() -> String {
        bs58::encode(
            ed25519_dalek::SigningKey::from_bytes(&[0x43; 32])
                .verifying_key()
                .as_bytes(),
        )
        .into_string()
    }

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
        assert_eq!(c.chain, None);
        // The [chain] keys are shown with their defaults; issuer_wallet has none, and its
        // placeholder is refused.
        let chain = TEMPLATE
            .replace("# [chain]", "[chain]")
            .replace("# rpc_url", "rpc_url")
            .replace("# issuer_wallet", "issuer_wallet")
            .replace("# registry_program", "registry_program")
            .replace("# sync_interval_secs", "sync_interval_secs")
            .replace("# request_timeout_secs", "request_timeout_secs");
        let e = Config::parse(&chain, Path::new("config.toml"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("`chain.issuer_wallet`"), "{e}");
        let chain = chain.replace("<base58 wallet of your issuer operator>", &wallet());
        let c = Config::parse(&chain, Path::new("config.toml")).unwrap();
        assert_eq!(
            c.chain,
            Some(ChainConfig::new("http://127.0.0.1:8899", wallet()))
        );
        let with_ca = chain.replace("# ca_file", "ca_file");
        let c = Config::parse(&with_ca, Path::new("config.toml")).unwrap();
        assert_eq!(
            c.chain.unwrap().ca_file,
            Some(PathBuf::from("/etc/tolldns-issuer/rpc-ca.pem"))
        );
    }

    #[test]
    fn chain_section_is_checked() {
        let w = format!("issuer_wallet = \"{}\"\n", wallet());
        let parse = |body: &str| Config::parse(&format!("[chain]\n{body}"), Path::new("c.toml"));
        let with_wallet = |body: &str| parse(&format!("{w}{body}"));
        let c = with_wallet("rpc_url = \"http://localhost:8899/\"\n").unwrap();
        let chain = c.chain.unwrap();
        assert_eq!(
            chain.issuer_wallet_key().unwrap(),
            ed25519_dalek::SigningKey::from_bytes(&[0x43; 32])
                .verifying_key()
                .to_bytes()
        );
        assert_eq!(chain.sync_interval_secs, 10);
        assert_eq!(chain.request_timeout_secs, 10);
        assert_eq!(
            bs58::encode(chain.registry_program_id().unwrap()).into_string(),
            DEFAULT_REGISTRY_PROGRAM
        );
        with_wallet("rpc_url = \"http://[::1]:8899\"\nsync_interval_secs = 1\n").unwrap();
        with_wallet("rpc_url = \"https://rpc.example/?api-key=s3cret\"\nca_file = \"ca.pem\"\n")
            .unwrap();
        // issuer_wallet is required, and must be an ed25519 public key.
        let e = parse("rpc_url = \"http://127.0.0.1:1\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("`issuer_wallet`"), "{e}");
        let off_curve = (2u8..=255)
            .map(|y| {
                let mut k = [0u8; 32];
                k[0] = y;
                k
            })
            .find(|k| ed25519_dalek::VerifyingKey::from_bytes(k).is_err())
            .unwrap();
        let mut identity = [0u8; 32];
        identity[0] = 1;
        for bad in [
            "0OIl".to_owned(),
            "3yZe7d".to_owned(),
            String::new(),
            bs58::encode(off_curve).into_string(),
            bs58::encode(identity).into_string(),
        ] {
            let e = parse(&format!(
                "rpc_url = \"http://127.0.0.1:1\"\nissuer_wallet = \"{bad}\"\n"
            ))
            .unwrap_err()
            .to_string();
            assert!(e.contains("`chain.issuer_wallet`"), "{bad}: {e}");
        }
        let cases = [
            ("", "`rpc_url`"),
            (
                "rpc_url = \"http://127.0.0.1:8899\"\nrpc = 1\n",
                "key `chain.rpc`",
            ),
            ("rpc_url = \"ftp://127.0.0.1\"\n", "`chain.rpc_url`"),
            ("rpc_url = \"http://rpc.example:8899\"\n", "`chain.rpc_url`"),
            ("rpc_url = \"http://10.0.0.1:8899\"\n", "`chain.rpc_url`"),
            (
                "rpc_url = \"https://rpc.example/?api-key=s3cret\"\n",
                "`chain.ca_file`",
            ),
            ("rpc_url = \"nothing\"\n", "`chain.rpc_url`"),
            (
                "rpc_url = \"http://127.0.0.1:1\"\nregistry_program = \"0OIl\"\n",
                "`chain.registry_program`",
            ),
            (
                "rpc_url = \"http://127.0.0.1:1\"\nregistry_program = \"3yZe7d\"\n",
                "`chain.registry_program`",
            ),
            (
                "rpc_url = \"http://127.0.0.1:1\"\nsync_interval_secs = 0\n",
                "`chain.sync_interval_secs`",
            ),
            (
                "rpc_url = \"http://127.0.0.1:1\"\nrequest_timeout_secs = 0\n",
                "`chain.request_timeout_secs`",
            ),
        ];
        for (body, want) in cases {
            let e = with_wallet(body).unwrap_err().to_string();
            assert!(e.contains(want), "{body}: {e}");
            // The URL's query (API keys) is never echoed.
            assert!(!e.contains("s3cret"), "{e}");
        }
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
