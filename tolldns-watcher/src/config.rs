//! The watcher's configuration file (`config.toml`): every key, its default, and how it is
//! read.
//!
//! Every section denies unknown keys, so a typo is an error that names the key. Relative paths
//! are relative to the working directory the watcher was started in. With no file at all the
//! watcher runs on the defaults: data in `./tolldns-watcher-data`, a generated watcher key, a
//! SQLite store in the data directory, a local chain RPC node and loopback listeners.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

use serde::Deserialize;
use tolldns_service::config::ConfigError::Invalid;

pub use tolldns_service::config::{ConfigFile, KeyHint, LogLevel};

/// The default data directory, relative to the working directory.
pub const DEFAULT_DATA_DIR: &str = "./tolldns-watcher-data";

/// The whole configuration file.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Data directory: the watcher key, the SQLite store, probe tokens.
    pub data_dir: PathBuf,
    /// Log level: `error`, `warn`, `info`, `debug` or `trace`. Reloaded on SIGHUP.
    pub log_level: LogLevel,
    /// `[identity]`: the watcher key.
    pub identity: IdentityConfig,
    /// `[store]`: where receipts, verdicts, audits, probes and reports are kept.
    pub store: StoreConfig,
    /// `[chain]`: the chain RPC node the registry and the score program are read from.
    pub chain: ChainConfig,
    /// `[deployment]`: the network's receipt rules.
    pub deployment: DeploymentConfig,
    /// `[audit]`: audits of accepted batches.
    pub audit: AuditConfig,
    /// `[probe]`: probes of every registered miner.
    pub probe: ProbeConfig,
    /// `[tickets]`: the toll-ticket issuer keys and challenge audited tokens must match.
    pub tickets: TicketsConfig,
    /// `[settle]`: reporting stats to the score program and finalizing epochs.
    pub settle: SettleConfig,
    /// `[api]`: the HTTP API (ingest and publication).
    pub api: ApiConfig,
    /// `[metrics]`: the Prometheus endpoint.
    pub metrics: MetricsConfig,
}

/// `[identity]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IdentityConfig {
    /// The watcher key (solana-keygen JSON, mode 0600): it signs audit requests and the
    /// score program's report transactions. Empty: `<data_dir>/keys/watcher.json`, generated
    /// on first start.
    pub key_file: Option<PathBuf>,
}

/// `[store]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreConfig {
    /// `sqlite://PATH` or `postgres://USER@HOST/DB`. Empty: `sqlite://<data_dir>/watcher.db`.
    pub url: String,
}

/// `[chain]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ChainConfig {
    /// Solana JSON-RPC endpoint (`http://` or `https://`).
    pub rpc_url: String,
    /// Commitment of reads: `processed`, `confirmed` or `finalized`.
    pub commitment: String,
    /// PEM CA certificates trusted for an `https://` RPC endpoint (default: none, so an
    /// `https://` endpoint needs this).
    pub ca_file: Option<PathBuf>,
    /// How often the current slot is read, in milliseconds.
    pub slot_poll_ms: u64,
    /// How often the registry snapshot (operators, stakes, score config) is refreshed, in
    /// seconds.
    pub registry_refresh_secs: u64,
}

/// `[deployment]`: the same knobs as the miner's `[receipts]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DeploymentConfig {
    /// The network receipts are signed for: 64 hex digits. Empty: the local development
    /// deployment.
    pub id: String,
    /// The deployment's receipt window length in seconds.
    pub window_secs: u32,
    /// How long after its window ends a receipt may arrive, in milliseconds.
    pub max_delay_ms: u64,
    /// Whether every leaf must carry a toll ticket.
    pub require_tickets: bool,
    /// Whether v1 receipts are still accepted.
    pub accept_v1: bool,
    /// Tolerated clock skew of a receipt's timestamp and arrival, in milliseconds.
    pub skew_ms: u64,
}

/// `[audit]`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuditConfig {
    /// Audit accepted batches.
    pub enabled: bool,
    /// Leaves sampled per batch. Unset: from `confidence` and `fake_fraction`.
    pub k: Option<u64>,
    /// Probability of catching a batch with `fake_fraction` invented leaves.
    pub confidence: f64,
    /// The smallest fraction of invented leaves to catch with `confidence`.
    pub fake_fraction: f64,
    /// How often pending audits are looked for, in milliseconds.
    pub interval_ms: u64,
    /// Slots after the recorded arrival slot whose hash seeds a batch's sample.
    pub seed_delay_slots: u64,
    /// Per-request timeout of audit requests, in milliseconds.
    pub timeout_ms: u64,
    /// PEM CA certificates trusted for `https://` audit APIs.
    pub ca_file: Option<PathBuf>,
}

/// `[probe]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProbeConfig {
    /// Probe every registered miner on every registered transport.
    pub enabled: bool,
    /// Seconds between two probe rounds (one probe per miner and transport per round).
    pub interval_secs: u64,
    /// The watcher's own upstream resolvers (`IP` or `IP:port`) that answers are compared
    /// with.
    pub upstreams: Vec<String>,
    /// Names probed, in turn.
    pub names: Vec<String>,
    /// The probe issuer's base URL (`http://` or `https://`) probe tokens are bought from.
    /// Empty: probes carry no token.
    pub issuer_url: String,
    /// The wallet key file that pays for probe tokens.
    pub wallet_file: Option<PathBuf>,
    /// PEM CA certificates trusted for DoT, DoH and the issuer.
    pub ca_file: Option<PathBuf>,
    /// Per-probe timeout in milliseconds.
    pub timeout_ms: u64,
}

/// `[tickets]`: which tokens behind ticketed leaves verify (the miners' `[tickets]`
/// challenge and issuer keys).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TicketsConfig {
    /// The token challenge's issuer name.
    pub issuer_name: String,
    /// The token challenge's deployment name.
    pub deployment: String,
    /// Accepted issuer public keys: base64url of the RSASSA-PSS SPKI (the issuer directory's
    /// `token-key`).
    pub issuer_keys: Vec<String>,
}

impl Default for TicketsConfig {
    fn default() -> Self {
        Self {
            issuer_name: "issuer.tolldns.invalid".to_owned(),
            deployment: "tolldns-local".to_owned(),
            issuer_keys: Vec::new(),
        }
    }
}

/// Decodes base64url, padded or not.
pub fn decode_base64url(s: &str) -> Option<Vec<u8>> {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(s.trim().trim_end_matches('='))
        .ok()
}

impl TicketsConfig {
    /// The token verifier of audits.
    ///
    /// # Errors
    ///
    /// A message naming the key that does not parse.
    pub fn verifier(&self) -> Result<tolldns_tickets::TokenVerifier, String> {
        let mut keys = Vec::new();
        for k in &self.issuer_keys {
            let spki = decode_base64url(k).ok_or_else(|| format!("`{k}` is not base64url"))?;
            let key = tolldns_tickets::IssuerPublicKey::from_spki(&spki)
                .map_err(|e| format!("`{k}` is not an issuer key: {e}"))?;
            keys.push(tolldns_tickets::AcceptedKey {
                key,
                not_before: 0,
                not_after: None,
            });
        }
        let digest =
            tolldns_tickets::TokenChallenge::deployment(&self.issuer_name, &self.deployment)
                .digest()
                .map_err(|e| e.to_string())?;
        Ok(tolldns_tickets::TokenVerifier::new(keys, digest))
    }
}

/// `[settle]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SettleConfig {
    /// Report each miner's epoch stats to the score program.
    pub enabled: bool,
    /// Slots after an epoch's end before it is closed and reported (late receipts, audits).
    pub report_after_slots: u64,
    /// Slots before the reporting deadline after which no report is attempted.
    pub deadline_margin_slots: u64,
    /// Finalize epochs whose reporting deadline has passed (permissionless).
    pub finalize: bool,
    /// How often the settlement loop runs, in milliseconds.
    pub interval_ms: u64,
    /// Timeout of one fetch of another watcher's probe tickets, in milliseconds.
    pub peer_timeout_ms: u64,
    /// Slots after an epoch's end during which an unreachable watcher's probe tickets are
    /// retried (the epoch's close waits for them); then they are given up.
    pub peer_wait_slots: u64,
}

/// `[api]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ApiConfig {
    /// Address of `POST /v1/receipts`, `GET /v1/epochs/...`, `/v1/objects/...`, `/v1/status`.
    pub listen: SocketAddr,
    /// Largest accepted request body in bytes.
    pub max_body_bytes: usize,
    /// Seconds a client has to send its request, and a request to be answered.
    pub request_timeout_secs: u64,
}

/// `[metrics]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsConfig {
    /// Address of `GET /metrics`.
    pub listen: SocketAddr,
}

fn loopback(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

impl Default for Config {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from(DEFAULT_DATA_DIR),
            log_level: LogLevel::Info,
            identity: IdentityConfig::default(),
            store: StoreConfig::default(),
            chain: ChainConfig::default(),
            deployment: DeploymentConfig::default(),
            audit: AuditConfig::default(),
            probe: ProbeConfig::default(),
            tickets: TicketsConfig::default(),
            settle: SettleConfig::default(),
            api: ApiConfig::default(),
            metrics: MetricsConfig::default(),
        }
    }
}

impl Default for ChainConfig {
    fn default() -> Self {
        Self {
            rpc_url: "http://127.0.0.1:8899".to_owned(),
            commitment: "confirmed".to_owned(),
            ca_file: None,
            slot_poll_ms: 400,
            registry_refresh_secs: 10,
        }
    }
}

impl Default for DeploymentConfig {
    fn default() -> Self {
        Self {
            id: String::new(),
            window_secs: 60,
            max_delay_ms: tolldns_receipts::Deployment::DEFAULT_MAX_DELAY_MS,
            require_tickets: false,
            accept_v1: false,
            skew_ms: 30_000,
        }
    }
}

impl Default for AuditConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            k: None,
            confidence: 0.99,
            fake_fraction: 0.10,
            interval_ms: 1_000,
            seed_delay_slots: 2,
            timeout_ms: 10_000,
            ca_file: None,
        }
    }
}

impl Default for ProbeConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            interval_secs: 30,
            upstreams: Vec::new(),
            names: vec!["example.com.".to_owned()],
            issuer_url: String::new(),
            wallet_file: None,
            ca_file: None,
            timeout_ms: 5_000,
        }
    }
}

impl Default for SettleConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            report_after_slots: 8,
            deadline_margin_slots: 4,
            finalize: true,
            interval_ms: 2_000,
            peer_timeout_ms: 5_000,
            peer_wait_slots: 16,
        }
    }
}

impl Default for ApiConfig {
    fn default() -> Self {
        Self {
            listen: loopback(9160),
            max_body_bytes: 1 << 20,
            request_timeout_secs: 10,
        }
    }
}

impl Default for MetricsConfig {
    fn default() -> Self {
        Self {
            listen: loopback(9161),
        }
    }
}

/// Why a configuration could not be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read or parsed, or a value in it is not acceptable (naming the
    /// key).
    #[error(transparent)]
    File(#[from] tolldns_service::config::ConfigError),
}

fn invalid(key: &'static str, reason: impl Into<String>) -> Result<(), ConfigError> {
    Err(Invalid {
        key,
        reason: reason.into(),
    }
    .into())
}

fn is_http_url(s: &str) -> bool {
    s.parse::<http::Uri>().is_ok_and(|u| {
        matches!(u.scheme_str(), Some("http" | "https")) && u.host().is_some_and(|h| !h.is_empty())
    })
}

impl ConfigFile for Config {
    type Error = ConfigError;

    fn validate(&self) -> Result<(), ConfigError> {
        let url = &self.store.url;
        let known = ["sqlite:", "postgres://", "postgresql://"];
        if !url.is_empty() && !known.iter().any(|k| url.starts_with(k)) {
            return invalid(
                "store.url",
                format!("`{url}` is neither sqlite://PATH nor postgres://…"),
            );
        }
        if !is_http_url(&self.chain.rpc_url) {
            return invalid(
                "chain.rpc_url",
                format!("`{}` is not an http:// or https:// URL", self.chain.rpc_url),
            );
        }
        if !matches!(
            self.chain.commitment.as_str(),
            "processed" | "confirmed" | "finalized"
        ) {
            return invalid(
                "chain.commitment",
                "must be `processed`, `confirmed` or `finalized`",
            );
        }
        if self.chain.slot_poll_ms == 0 {
            return invalid("chain.slot_poll_ms", "must be positive");
        }
        if self.chain.registry_refresh_secs == 0 {
            return invalid("chain.registry_refresh_secs", "must be positive");
        }
        if !self.deployment.id.is_empty()
            && self
                .deployment
                .id
                .parse::<tolldns_core::DeploymentId>()
                .is_err()
        {
            return invalid("deployment.id", "must be empty or 64 hex digits");
        }
        if tolldns_core::WindowLen::new(self.deployment.window_secs).is_err() {
            return invalid(
                "deployment.window_secs",
                "must be a valid window length (>= 1)",
            );
        }
        if let Some(0) = self.audit.k {
            return invalid("audit.k", "must be positive (or unset)");
        }
        if tolldns_receipts::sample_size(self.audit.confidence, self.audit.fake_fraction, 1)
            .is_err()
        {
            return invalid(
                "audit.confidence",
                "audit.confidence and audit.fake_fraction must both lie strictly between 0 and 1",
            );
        }
        if self.audit.interval_ms == 0 {
            return invalid("audit.interval_ms", "must be positive");
        }
        if self.audit.seed_delay_slots == 0 {
            return invalid("audit.seed_delay_slots", "must be positive");
        }
        if self.audit.timeout_ms == 0 {
            return invalid("audit.timeout_ms", "must be positive");
        }
        if self.probe.interval_secs == 0 {
            return invalid("probe.interval_secs", "must be positive");
        }
        if self.probe.timeout_ms == 0 {
            return invalid("probe.timeout_ms", "must be positive");
        }
        for u in &self.probe.upstreams {
            if parse_upstream(u).is_none() {
                return invalid(
                    "probe.upstreams",
                    format!("`{u}` is not an IP address or IP:port"),
                );
            }
        }
        if self.probe.enabled && self.probe.names.is_empty() {
            return invalid("probe.names", "must name at least one name to probe");
        }
        for n in &self.probe.names {
            if hickory_proto::rr::Name::from_ascii(n).is_err() {
                return invalid("probe.names", format!("`{n}` is not a domain name"));
            }
        }
        if !self.probe.issuer_url.is_empty() {
            if !is_http_url(&self.probe.issuer_url) {
                return invalid(
                    "probe.issuer_url",
                    format!(
                        "`{}` is not an http:// or https:// URL",
                        self.probe.issuer_url
                    ),
                );
            }
            if self.probe.wallet_file.is_none() {
                return invalid(
                    "probe.wallet_file",
                    "must be set when probe.issuer_url is (the wallet pays for probe tokens)",
                );
            }
        }
        if let Err(e) = self.tickets.verifier() {
            return invalid("tickets.issuer_keys", e);
        }
        if self.settle.interval_ms == 0 {
            return invalid("settle.interval_ms", "must be positive");
        }
        if self.settle.peer_timeout_ms == 0 {
            return invalid("settle.peer_timeout_ms", "must be positive");
        }
        if self.api.max_body_bytes < 1024 {
            return invalid("api.max_body_bytes", "must be at least 1024");
        }
        if self.api.request_timeout_secs == 0 {
            return invalid("api.request_timeout_secs", "must be positive");
        }
        Ok(())
    }

    fn data_dir_mut(&mut self) -> &mut PathBuf {
        &mut self.data_dir
    }
}

impl Config {
    /// The watcher key file.
    pub fn key_path(&self) -> PathBuf {
        self.identity
            .key_file
            .clone()
            .unwrap_or_else(|| self.data_dir.join("keys").join("watcher.json"))
    }

    /// The store URL: `store.url`, or the SQLite file in the data directory.
    pub fn store_url(&self) -> String {
        if self.store.url.is_empty() {
            format!("sqlite://{}", self.data_dir.join("watcher.db").display())
        } else {
            self.store.url.clone()
        }
    }

    /// The deployment the receipts are checked against.
    pub fn deployment(&self) -> tolldns_receipts::Deployment {
        let id = if self.deployment.id.is_empty() {
            tolldns_core::DeploymentId::local()
        } else {
            self.deployment
                .id
                .parse()
                .unwrap_or_else(|_| tolldns_core::DeploymentId::local())
        };
        let window_len = tolldns_core::WindowLen::new(self.deployment.window_secs)
            .unwrap_or(tolldns_core::WindowLen::DEFAULT);
        tolldns_receipts::Deployment::new(id, window_len)
            .with_max_delay_ms(self.deployment.max_delay_ms)
            .with_require_tickets(self.deployment.require_tickets)
            .with_v1(self.deployment.accept_v1)
    }

    /// The probes' own upstream resolvers.
    pub fn probe_upstreams(&self) -> Vec<SocketAddr> {
        self.probe
            .upstreams
            .iter()
            .filter_map(|u| parse_upstream(u))
            .collect()
    }
}

/// `IP` (port 53) or `IP:port` (`[v6]:port` for IPv6).
pub fn parse_upstream(s: &str) -> Option<SocketAddr> {
    s.parse::<SocketAddr>()
        .ok()
        .or_else(|| s.parse::<IpAddr>().ok().map(|ip| SocketAddr::new(ip, 53)))
}

/// The commented `config.toml` written by `tolldns-watcher init`: every key with its default.
pub const TEMPLATE: &str = r#"# TollDNS watcher configuration. Every key is shown with its default value.
# Unknown keys are errors. Relative paths are relative to the working directory.

# Data directory: keys/, watcher.db (the SQLite store), probe tokens.
data_dir = "./tolldns-watcher-data"

# error | warn | info | debug | trace (reloaded on SIGHUP).
log_level = "info"

[identity]
# The watcher key (solana-keygen JSON, mode 0600): signs audit requests and report
# transactions, and must be on the score program's watcher list. When unset,
# <data_dir>/keys/watcher.json, generated on first start.
# key_file = "/etc/tolldns/watcher.json"

[store]
# sqlite://PATH or postgres://USER:PASSWORD@HOST/DB (same schema, migrations run at start).
# Empty: sqlite://<data_dir>/watcher.db.
url = ""

[chain]
# Solana JSON-RPC endpoint the registry and score program accounts are read from and report
# transactions are sent to.
rpc_url = "http://127.0.0.1:8899"
# processed | confirmed | finalized
commitment = "confirmed"
# PEM CA certificates trusted for an https:// rpc_url.
# ca_file = "/etc/tolldns/rpc-ca.pem"
# How often the current slot is read (ms), and the registry snapshot refreshed (s).
slot_poll_ms = 400
registry_refresh_secs = 10

[deployment]
# The network receipts are signed for: 64 hex digits (the miners' receipts.deployment_id).
# Empty: the local development deployment.
id = ""
# The deployment's receipt window (the miners' receipts.window_secs).
window_secs = 60
# Receipts arriving later than this after their window ends are refused (ms).
max_delay_ms = 600000
# Refuse batches with a sampled unticketed leaf.
require_tickets = false
# Accept v1 receipts (under the v1 rules).
accept_v1 = false
# Tolerated clock skew of receipt timestamps and arrivals (ms).
skew_ms = 30000

[audit]
enabled = true
# Leaves sampled per batch; unset: enough to catch fake_fraction invented leaves with
# the given confidence.
# k = 44
confidence = 0.99
fake_fraction = 0.1
# How often pending audits are looked for (ms).
interval_ms = 1000
# The sample's seed is the hash of the slot this many slots after the batch's arrival slot.
seed_delay_slots = 2
timeout_ms = 10000
# PEM CA certificates trusted for https:// audit APIs.
# ca_file = "/etc/tolldns/audit-ca.pem"

[probe]
enabled = true
# Seconds between probe rounds: each round probes every Active miner on every registered
# transport (UDP, TCP, DoT, DoH) once.
interval_secs = 30
# The watcher's own resolvers ("IP" or "IP:port") answers are compared with.
upstreams = []
# Names probed, in turn.
names = ["example.com."]
# The probe issuer's base URL probe tokens are bought from; empty: probes carry no token.
issuer_url = ""
# The wallet key that pays for probe tokens (required with issuer_url).
# wallet_file = "/etc/tolldns/probe-wallet.json"
# PEM CA certificates trusted for DoT, DoH and the issuer.
# ca_file = "/etc/tolldns/probe-ca.pem"
timeout_ms = 5000

[tickets]
# The toll-ticket challenge and issuer keys that the tokens behind audited ticketed leaves must
# match (the miners' [tickets] issuer_name, deployment and issuer_keys).
issuer_name = "issuer.tolldns.invalid"
deployment = "tolldns-local"
# base64url of the issuer's RSASSA-PSS SPKI (the directory's token-key). With no key, every
# audited ticketed leaf fails (token_invalid).
issuer_keys = []

[settle]
# Report each miner's epoch stats to the score program.
enabled = true
# Close an epoch this many slots after it ends (late receipts, pending audits).
report_after_slots = 8
# Stop trying to report this many slots before the reporting deadline.
deadline_margin_slots = 4
# Finalize epochs whose reporting deadline has passed (anyone may).
finalize = true
interval_ms = 2000
# Other watchers' probe tickets (GET /v1/epochs/{e}/probe-tickets at the API origin each
# registered as endpoint transport 6) are fetched after an epoch ends, and the leaves this
# watcher finds under them at the miner are not counted as client work. Per fetch:
peer_timeout_ms = 5000
# An unreachable watcher is retried for this many slots after the epoch's end; then its
# probes are not discounted (metric tolldns_watcher_peer_fetches_total{outcome="gave_up"}).
peer_wait_slots = 16

[api]
# POST /v1/receipts, GET /v1/epochs/{e}/inputs, /v1/epochs/{e}/report, /v1/objects/{sha256},
# /v1/status. Loopback by default.
listen = "127.0.0.1:9160"
# Largest request body (1 MiB).
max_body_bytes = 1048576
request_timeout_secs = 10

[metrics]
# GET /metrics (Prometheus text, or OpenMetrics on request).
listen = "127.0.0.1:9161"
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
    }

    #[test]
    fn errors_name_the_key() {
        let e = |t: &str| {
            Config::parse(t, Path::new("c.toml"))
                .unwrap_err()
                .to_string()
        };
        assert!(e("[store]\nurl = \"mysql://x\"\n").contains("store.url"));
        assert!(e("[store]\nuri = \"x\"\n").contains("key `store.uri`"));
        assert!(e("[chain]\nrpc_url = \"ftp://x\"\n").contains("chain.rpc_url"));
        assert!(e("[chain]\ncommitment = \"max\"\n").contains("chain.commitment"));
        assert!(e("[deployment]\nid = \"zz\"\n").contains("deployment.id"));
        assert!(e("[audit]\nconfidence = 1.5\n").contains("audit.confidence"));
        assert!(e("[audit]\nk = 0\n").contains("audit.k"));
        assert!(e("[probe]\nupstreams = [\"nope\"]\n").contains("probe.upstreams"));
        assert!(e("[probe]\nissuer_url = \"http://127.0.0.1:1\"\n").contains("probe.wallet_file"));
        assert!(e("[api]\nlisten = \"nope\"\n").contains("key `api.listen`"));
        let c = Config::parse(
            "[store]\nurl = \"postgres://u@127.0.0.1/w\"\n[audit]\nk = 8\n",
            Path::new("c.toml"),
        )
        .unwrap();
        assert_eq!(c.store_url(), "postgres://u@127.0.0.1/w");
        assert_eq!(c.audit.k, Some(8));
    }

    #[test]
    fn defaults_derive_paths() {
        let c = Config::default();
        assert_eq!(
            c.store_url(),
            format!(
                "sqlite://{}",
                Path::new(DEFAULT_DATA_DIR).join("watcher.db").display()
            )
        );
        assert!(c.key_path().ends_with("keys/watcher.json"));
        assert_eq!(c.deployment().id, tolldns_core::DeploymentId::local());
    }
}
