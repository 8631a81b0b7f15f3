//! The miner's configuration file (`config.toml`): every key, its default, and how it is read.
//!
//! Every section denies unknown keys, so a typo is an error that names the key. Relative paths
//! are relative to the working directory the miner was started in.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use serde::Deserialize;
use tolldns_service::config::ConfigError::Invalid;

pub use tolldns_service::config::{ConfigFile, KeyHint, LogLevel};

/// The default data directory, relative to the working directory.
pub const DEFAULT_DATA_DIR: &str = "./tolldns-data";
/// Where upstream resolvers are read from when `upstreams` is not set.
pub const RESOLV_CONF: &str = "/etc/resolv.conf";

/// The whole configuration file.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Data directory: keys, TLS certificate, receipt journal.
    pub data_dir: PathBuf,
    /// Log level: `error`, `warn`, `info`, `debug` or `trace`. Reloaded on SIGHUP.
    pub log_level: LogLevel,
    /// Upstream resolvers (`IP` or `IP:port`); empty means "read `/etc/resolv.conf`".
    pub upstreams: Vec<String>,
    /// Listening addresses of the DNS edge.
    pub listen: ListenConfig,
    /// TLS for DoT and DoH.
    pub tls: TlsConfig,
    /// The hot receipt-signing key.
    pub identity: IdentityConfig,
    /// Receipt windows and batch receipts.
    pub receipts: ReceiptsConfig,
    /// The on-disk receipt journal.
    pub journal: JournalConfig,
    /// The operator agent that submits batches to watchers.
    pub agent: AgentConfig,
    /// The HTTP API: `/metrics`, `/healthz` and the audit API.
    pub api: ApiConfig,
    /// Tuning of the DNS edge (tolldns-ingress): streams, cache, admission, attack mode,
    /// upstream exchanges.
    pub edge: EdgeTuning,
    /// `[tickets]`: toll tickets (Privacy Pass tokens): per-transport policy, accepted issuer
    /// keys, the query quota of a token and the session limits (tolldns-ingress
    /// `TicketsConfig`, passed through unchanged).
    pub tickets: tolldns_ingress::TicketsConfig,
}

/// `[edge]`: the tolldns-ingress settings the miner passes through unchanged.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EdgeTuning {
    /// UDP sockets (SO_REUSEPORT) per UDP address; 0 means one per core.
    pub udp_workers: usize,
    /// `[edge.streams]`: TCP, DoT and DoH connection handling.
    pub streams: tolldns_ingress::StreamConfig,
    /// `[edge.cache]`: the answer cache.
    pub cache: tolldns_ingress::CacheSettings,
    /// `[edge.admission]`: per-prefix rate limits and global limits.
    pub admission: tolldns_ingress::AdmissionConfig,
    /// `[edge.attack]`: the attack-mode state machine.
    pub attack: tolldns_ingress::AttackConfig,
    /// `[edge.upstream]`: upstream exchanges (the servers come from `upstreams`).
    pub upstream: tolldns_ingress::UpstreamSettings,
}

/// `[listen]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ListenConfig {
    /// DNS over UDP.
    pub udp: SocketAddr,
    /// DNS over TCP.
    pub tcp: SocketAddr,
    /// DNS over TLS.
    pub dot: SocketAddr,
    /// DNS over HTTPS: `127.0.0.1:8443` unless set. Builds without the `doh` feature have no
    /// DoH listener (`None` by default) and refuse the key.
    pub doh: Option<SocketAddr>,
    /// DNS over QUIC (RFC 9250, UDP); off unless set.
    pub doq: Option<SocketAddr>,
    /// The DoH request path.
    pub doh_path: String,
}

/// `[tls]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TlsConfig {
    /// PEM certificate chain; empty means the self-signed `<data_dir>/tls/cert.pem`.
    pub cert_file: Option<PathBuf>,
    /// PEM private key; empty means the generated `<data_dir>/tls/key.pem`.
    pub key_file: Option<PathBuf>,
    /// Names (and IP addresses) the generated self-signed certificate is valid for.
    pub self_signed_names: Vec<String>,
}

/// `[identity]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IdentityConfig {
    /// The hot receipt-signing key (solana-keygen JSON); empty means
    /// `<data_dir>/keys/receipt-signing.json`, generated on first start.
    pub signing_key_file: Option<PathBuf>,
}

/// `[receipts]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReceiptsConfig {
    /// Whether receipts are signed (the default). `false` is the ingress + cache role (routers):
    /// no leaves are recorded, no window is signed, the journal is not opened and nothing is
    /// delivered; the audit endpoints (`/v1/...`) answer `404` with
    /// [`RECEIPTS_OFF`]. Toll tickets are not looked at (they pay for leaves).
    pub enabled: bool,
    /// Receipt window length in seconds.
    pub window_secs: u32,
    /// Backend id carried in every batch receipt (at most 32 ASCII bytes).
    pub backend_id: String,
    /// Routing policy version carried in every batch receipt.
    pub policy_version: u32,
    /// Length of a name-key epoch in seconds (a new name key per epoch).
    pub name_key_epoch_secs: u64,
    /// Most leaves held in memory at once, not yet streamed to the journal (all windows
    /// together); answers past it are counted as lost leaves. Leaves are held for about
    /// `watermark_ms + flush_interval_ms`, whatever the window length.
    pub max_pending_leaves: usize,
    /// The key of earlier versions (a cap on the leaves of one window, which no longer
    /// exists). Deprecated (logged at start): when only it is set, the bound on held leaves
    /// is the smaller of it and [`ReceiptsConfig::max_pending_leaves`], so that a file that
    /// lowered it for a small device keeps its memory bound and the 4,000,000 written by
    /// earlier `init`s does not raise the default. Setting both is refused.
    #[serde(rename = "max_leaves_per_window")]
    pub deprecated_max_leaves_per_window: Option<usize>,
    /// Milliseconds a leaf waits in memory before it is streamed to the journal.
    pub watermark_ms: u64,
    /// Milliseconds between two streams of leaves to the journal (one journal transaction
    /// each).
    pub flush_interval_ms: u64,
    /// Milliseconds after a window's end before it is sealed (answers still in flight).
    pub close_grace_ms: u64,
    /// The network receipts are signed for: 64 hex digits (`DeploymentId::derive` of the
    /// score program id and the cluster's genesis hash). Empty: the local development
    /// deployment.
    pub deployment_id: String,
}

/// The error message of the audit endpoints when `receipts.enabled = false`.
pub const RECEIPTS_OFF: &str = "receipts are off on this node";

/// The default of `receipts.max_pending_leaves`.
pub const DEFAULT_MAX_PENDING_LEAVES: usize = 1 << 20;

impl ReceiptsConfig {
    /// The bound on leaves held in memory: `max_pending_leaves`, lowered by the deprecated
    /// `max_leaves_per_window` when that one is set to less.
    pub fn pending_leaves(&self) -> usize {
        self.deprecated_max_leaves_per_window
            .map_or(self.max_pending_leaves, |old| {
                old.min(self.max_pending_leaves)
            })
    }
}

/// `[journal]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct JournalConfig {
    /// How long the leaves of a batch are kept to answer audits, in seconds.
    pub audit_window_secs: u64,
    /// Bound on the bytes of stored leaves; signed receipts are never deleted.
    pub max_leaf_bytes: u64,
    /// How often the count of accepted-but-unjournaled leaves is persisted, in milliseconds.
    pub checkpoint_interval_ms: u64,
    /// The journal database's page cache in bytes (redb's would be 1 GiB); the largest
    /// share of the miner's memory once the journal has grown.
    pub cache_bytes: u64,
}

/// `[agent]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AgentConfig {
    /// Watcher endpoints (`http://` or `https://`) that receive every signed batch (POST, JSON).
    /// Reloaded on SIGHUP.
    pub watchers: Vec<String>,
    /// PEM file of CA certificates trusted for `https://` watchers.
    pub ca_file: Option<PathBuf>,
    /// First retry delay in milliseconds.
    pub retry_initial_ms: u64,
    /// Largest retry delay in milliseconds.
    pub retry_max_ms: u64,
    /// Per-request timeout in milliseconds.
    pub request_timeout_ms: u64,
}

/// `[api]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ApiConfig {
    /// Address of `/metrics`, `/healthz` and `/v1/...`.
    pub listen: SocketAddr,
    /// Auditor public keys (base58) allowed to request name keys. Reloaded on SIGHUP.
    pub auditor_keys: Vec<String>,
    /// Largest accepted clock difference for signed auditor requests, in seconds.
    pub max_request_age_secs: u64,
    /// Largest `k` an audit request may ask for.
    pub max_audit_k: u64,
    /// Audit requests (audits, ticket lookups, sketch witnesses, tokens, name keys) each
    /// auditor may make per second, on average.
    pub audit_rate_per_sec: u32,
    /// Audit requests an auditor may make in a burst.
    pub audit_burst: u32,
    /// Audit requests served at once, over all auditors (more get `503` + `Retry-After`).
    pub audit_concurrency: u32,
    /// Audit requests served at once for one auditor.
    pub audit_concurrency_per_auditor: u32,
    /// Seconds a client has to send its request headers, and a request to be answered.
    pub request_timeout_secs: u64,
}

fn loopback(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

impl Default for Config {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from(DEFAULT_DATA_DIR),
            log_level: LogLevel::Info,
            upstreams: Vec::new(),
            listen: ListenConfig::default(),
            tls: TlsConfig::default(),
            identity: IdentityConfig::default(),
            receipts: ReceiptsConfig::default(),
            journal: JournalConfig::default(),
            agent: AgentConfig::default(),
            api: ApiConfig::default(),
            edge: EdgeTuning::default(),
            tickets: tolldns_ingress::TicketsConfig::default(),
        }
    }
}

impl Default for ListenConfig {
    fn default() -> Self {
        Self {
            udp: loopback(5353),
            tcp: loopback(5353),
            dot: loopback(8853),
            doh: cfg!(feature = "doh").then(|| loopback(8443)),
            doq: None,
            doh_path: "/dns-query".to_owned(),
        }
    }
}

impl Default for TlsConfig {
    fn default() -> Self {
        Self {
            cert_file: None,
            key_file: None,
            self_signed_names: vec!["localhost".to_owned(), "127.0.0.1".to_owned()],
        }
    }
}

#[allow(clippy::derivable_impls)]
impl Default for IdentityConfig {
    fn default() -> Self {
        Self {
            signing_key_file: None,
        }
    }
}

impl Default for ReceiptsConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            window_secs: 60,
            backend_id: "edge-ingress".to_owned(),
            policy_version: 1,
            name_key_epoch_secs: 86_400,
            max_pending_leaves: DEFAULT_MAX_PENDING_LEAVES,
            deprecated_max_leaves_per_window: None,
            watermark_ms: 1_000,
            flush_interval_ms: 250,
            deployment_id: String::new(),
            close_grace_ms: 2_000,
        }
    }
}

impl Default for JournalConfig {
    fn default() -> Self {
        Self {
            audit_window_secs: 7 * 86_400,
            max_leaf_bytes: 1 << 30,
            checkpoint_interval_ms: 1_000,
            cache_bytes: 64 << 20,
        }
    }
}

impl Default for AgentConfig {
    fn default() -> Self {
        Self {
            watchers: Vec::new(),
            ca_file: None,
            retry_initial_ms: 1_000,
            retry_max_ms: 300_000,
            request_timeout_ms: 10_000,
        }
    }
}

impl Default for ApiConfig {
    fn default() -> Self {
        Self {
            listen: loopback(9153),
            auditor_keys: Vec::new(),
            max_request_age_secs: 300,
            max_audit_k: 1_024,
            audit_rate_per_sec: 5,
            audit_burst: 20,
            audit_concurrency: 4,
            audit_concurrency_per_auditor: 2,
            request_timeout_secs: 10,
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
    /// No upstream resolver is configured and none could be read from the resolver file.
    #[error(
        "no usable `nameserver` line in {path}; set `upstreams = [\"IP\", ...]` in the config file"
    )]
    NoUpstreams {
        /// The resolver file that was read.
        path: PathBuf,
    },
    /// The resolver file could not be read.
    #[error("cannot read {path} ({error}); set `upstreams = [\"IP\", ...]` in the config file")]
    ResolvConf {
        /// The resolver file.
        path: PathBuf,
        /// The cause.
        error: std::io::Error,
    },
}

impl ConfigFile for Config {
    type Error = ConfigError;

    /// Checks values that parse but cannot work.
    ///
    /// # Errors
    ///
    /// [`tolldns_service::config::ConfigError::Invalid`] naming the key.
    fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |key, reason: &str| {
            Err(Invalid {
                key,
                reason: reason.to_owned(),
            }
            .into())
        };
        if tolldns_core::WindowLen::new(self.receipts.window_secs).is_err() {
            return invalid(
                "receipts.window_secs",
                "must be a valid window length (>= 1)",
            );
        }
        if !self.receipts.deployment_id.is_empty()
            && self
                .receipts
                .deployment_id
                .parse::<tolldns_core::DeploymentId>()
                .is_err()
        {
            return invalid("receipts.deployment_id", "must be empty or 64 hex digits");
        }
        if tolldns_core::BackendId::new(&self.receipts.backend_id).is_err() {
            return invalid(
                "receipts.backend_id",
                "must be 1 to 32 printable ASCII bytes",
            );
        }
        if self.receipts.name_key_epoch_secs < u64::from(self.receipts.window_secs) {
            return invalid(
                "receipts.name_key_epoch_secs",
                "must be at least one receipt window",
            );
        }
        if self.receipts.deprecated_max_leaves_per_window.is_some()
            && self.receipts.max_pending_leaves != DEFAULT_MAX_PENDING_LEAVES
        {
            return invalid(
                "receipts.max_leaves_per_window",
                "is the deprecated name of receipts.max_pending_leaves; set only max_pending_leaves",
            );
        }
        if self.receipts.pending_leaves() == 0 {
            return invalid("receipts.max_pending_leaves", "must be positive");
        }
        if self.receipts.flush_interval_ms < 10 {
            return invalid("receipts.flush_interval_ms", "must be at least 10");
        }
        if !self.listen.doh_path.starts_with('/') {
            return invalid("listen.doh_path", "must start with `/`");
        }
        if !cfg!(feature = "doh") && self.listen.doh.is_some() {
            return invalid("listen.doh", "this build has no DoH support (feature doh)");
        }
        if !cfg!(feature = "doq") && self.listen.doq.is_some() {
            return invalid("listen.doq", "this build has no DoQ support (feature doq)");
        }
        if self.journal.checkpoint_interval_ms == 0 {
            return invalid("journal.checkpoint_interval_ms", "must be positive");
        }
        if self.agent.retry_initial_ms == 0 || self.agent.retry_max_ms < self.agent.retry_initial_ms
        {
            return invalid(
                "agent.retry_initial_ms",
                "must be positive and at most agent.retry_max_ms",
            );
        }
        if self.agent.request_timeout_ms == 0 {
            return invalid("agent.request_timeout_ms", "must be positive");
        }
        for w in &self.agent.watchers {
            if crate::agent::WatcherUrl::parse(w).is_err() {
                return Err(Invalid {
                    key: "agent.watchers",
                    reason: format!("`{w}` is not an http:// or https:// URL"),
                }
                .into());
            }
        }
        for k in &self.api.auditor_keys {
            if crate::keys::parse_public_key(k).is_err() {
                return Err(Invalid {
                    key: "api.auditor_keys",
                    reason: format!("`{k}` is not a base58 ed25519 public key"),
                }
                .into());
            }
        }
        if !self.edge.upstream.servers.is_empty() {
            return invalid(
                "edge.upstream.servers",
                "set the top-level `upstreams` instead",
            );
        }
        for u in &self.upstreams {
            if parse_upstream(u).is_none() {
                return Err(Invalid {
                    key: "upstreams",
                    reason: format!("`{u}` is not an IP address or IP:port"),
                }
                .into());
            }
        }
        if !self.receipts.enabled {
            return self.validate_receipts_off();
        }
        self.validate_tickets()
    }

    fn data_dir_mut(&mut self) -> &mut PathBuf {
        &mut self.data_dir
    }
}

impl Config {
    /// `receipts.enabled = false`: nothing may need receipts. Watchers would never get a batch,
    /// and a listener that requires toll tickets would redeem tokens that earn nothing and are
    /// forgotten at restart (the redeemed set lives in the journal).
    fn validate_receipts_off(&self) -> Result<(), ConfigError> {
        if !self.agent.watchers.is_empty() {
            return Err(Invalid {
                key: "agent.watchers",
                reason: "must be empty when receipts.enabled = false (no batch is signed)"
                    .to_owned(),
            }
            .into());
        }
        let t = &self.tickets;
        if [t.udp, t.tcp, t.dot, t.doh, t.doq].contains(&tolldns_ingress::TicketPolicy::Required) {
            return Err(Invalid {
                key: "tickets",
                reason: "no listener may require toll tickets when receipts.enabled = false \
                         (tickets pay for receipt leaves)"
                    .to_owned(),
            }
            .into());
        }
        Ok(())
    }

    /// `[tickets]`: the issuer keys and the issuer directory must read, and a `required`
    /// listener needs at least one of them (the edge checks the same at start; here the
    /// error comes before anything is started, and on SIGHUP).
    fn validate_tickets(&self) -> Result<(), ConfigError> {
        let t = &self.tickets;
        if !t.enabled() {
            return Ok(());
        }
        // Each source on its own, so that the error names the key it comes from.
        let keys_only = tolldns_ingress::TicketsConfig {
            issuer_directory: None,
            ..t.clone()
        };
        let directory_only = tolldns_ingress::TicketsConfig {
            issuer_keys: Vec::new(),
            ..t.clone()
        };
        let mut keys = keys_only.accepted_keys().map_err(|e| Invalid {
            key: "tickets.issuer_keys",
            reason: e.to_string(),
        })?;
        keys.extend(directory_only.accepted_keys().map_err(|e| Invalid {
            key: "tickets.issuer_directory",
            reason: e.to_string(),
        })?);
        let required =
            [t.udp, t.tcp, t.dot, t.doh, t.doq].contains(&tolldns_ingress::TicketPolicy::Required);
        if keys.is_empty() && required {
            return Err(Invalid {
                key: "tickets.issuer_keys",
                reason: "a listener requires tickets but no issuer key is configured \
                         (tickets.issuer_keys or tickets.issuer_directory)"
                    .to_owned(),
            }
            .into());
        }
        if t.queries_per_token == 0 {
            return Err(Invalid {
                key: "tickets.queries_per_token",
                reason: "must be positive".to_owned(),
            }
            .into());
        }
        Ok(())
    }

    /// The path of the signing key file.
    pub fn signing_key_path(&self) -> PathBuf {
        self.identity
            .signing_key_file
            .clone()
            .unwrap_or_else(|| self.data_dir.join("keys").join("receipt-signing.json"))
    }

    /// The path of the receipt journal database.
    pub fn journal_path(&self) -> PathBuf {
        self.data_dir.join("journal.redb")
    }

    /// The upstream resolvers: the configured ones, or the `nameserver` lines of `resolv_conf`.
    ///
    /// # Errors
    ///
    /// [`ConfigError::NoUpstreams`] or [`ConfigError::ResolvConf`], naming the file and the key.
    pub fn resolve_upstreams(&self, resolv_conf: &Path) -> Result<Vec<SocketAddr>, ConfigError> {
        if !self.upstreams.is_empty() {
            return Ok(self
                .upstreams
                .iter()
                .filter_map(|u| parse_upstream(u))
                .collect());
        }
        let text =
            std::fs::read_to_string(resolv_conf).map_err(|error| ConfigError::ResolvConf {
                path: resolv_conf.to_owned(),
                error,
            })?;
        let found = parse_resolv_conf(&text);
        if found.is_empty() {
            return Err(ConfigError::NoUpstreams {
                path: resolv_conf.to_owned(),
            });
        }
        Ok(found)
    }
}

/// `IP` (port 53) or `IP:port` (`[v6]:port` for IPv6).
pub fn parse_upstream(s: &str) -> Option<SocketAddr> {
    s.parse::<SocketAddr>()
        .ok()
        .or_else(|| s.parse::<IpAddr>().ok().map(|ip| SocketAddr::new(ip, 53)))
}

/// The `nameserver` addresses of a resolv.conf text, port 53; lines that are not IP addresses
/// (including scoped IPv6 like `fe80::1%eth0`) are skipped.
pub fn parse_resolv_conf(text: &str) -> Vec<SocketAddr> {
    text.lines()
        .filter_map(|line| {
            let line = line.split(['#', ';']).next().unwrap_or("");
            let mut words = line.split_whitespace();
            if words.next() != Some("nameserver") {
                return None;
            }
            words.next()?.parse::<IpAddr>().ok()
        })
        .map(|ip| SocketAddr::new(ip, 53))
        .collect()
}

/// The commented `config.toml` written by `tolldns-miner init`: every key with its default.
pub const TEMPLATE: &str = r#"# TollDNS miner configuration. Every key is shown with its default value.
# Unknown keys are errors. Relative paths are relative to the working directory.

# Data directory: keys/, tls/, journal.redb.
data_dir = "./tolldns-data"

# error | warn | info | debug | trace (reloaded on SIGHUP).
log_level = "info"

# Upstream resolvers, "IP" or "IP:port". Empty: the `nameserver` lines of /etc/resolv.conf.
upstreams = []

[listen]
# Unprivileged loopback ports by default; use 0.0.0.0 / [::] to serve others.
udp = "127.0.0.1:5353"
tcp = "127.0.0.1:5353"
dot = "127.0.0.1:8853"
# DNS over HTTPS: on by default at 127.0.0.1:8443. Builds without the `doh` feature (the
# router build) have no DoH listener and refuse this key.
# doh = "127.0.0.1:8443"
doh_path = "/dns-query"
# DNS over QUIC (RFC 9250, ALPN "doq", UDP; the DoT certificate): off unless set, e.g.
# doq = "127.0.0.1:8853"

[tls]
# PEM certificate chain and key for DoT and DoH. When unset, a self-signed certificate is
# generated on first start in <data_dir>/tls/ for the names below.
# cert_file = "/etc/tolldns/cert.pem"
# key_file = "/etc/tolldns/key.pem"
self_signed_names = ["localhost", "127.0.0.1"]

[identity]
# The hot receipt-signing key (solana-keygen JSON, mode 0600). When unset,
# <data_dir>/keys/receipt-signing.json, generated on first start. The wallet key is never here.
# signing_key_file = "/etc/tolldns/receipt-signing.json"

[receipts]
# Sign proof-of-serving receipts: one leaf per answer, one signed batch per window, journaled,
# delivered to the watchers and audited. false is the ingress + cache role (routers): no
# leaves, no journal (journal.redb is not opened; [journal] is not used), no deliveries, and
# the audit API (/v1/...) answers 404 {"error":"receipts are off on this node"}; /metrics and
# /healthz are served. Toll tickets are then ignored; agent.watchers must be empty and no
# [tickets] listener may be "required".
enabled = true
# Receipt window length in seconds (one signed batch receipt per window).
window_secs = 60
# Backend id in every batch receipt (at most 32 ASCII bytes).
backend_id = "edge-ingress"
# Routing policy version in every batch receipt.
policy_version = 1
# A new name key (for leaf name hashes) every this many seconds.
name_key_epoch_secs = 86400
# Leaves stream to the journal while their window is open: every flush_interval_ms, the
# leaves older than watermark_ms are appended to the journal (one transaction each), so memory
# does not grow with the window or the query rate, and no window has a leaf cap.
# Most leaves held in memory at once, not yet streamed (about 80 bytes each); answers beyond
# it are counted in tolldns_receipt_leaves_lost_total. (`max_leaves_per_window`, the key of
# earlier versions, is still read, with a warning: it can only lower this bound.)
max_pending_leaves = 1048576
# Milliseconds a leaf waits in memory before it is streamed (answers finishing out of order).
watermark_ms = 1000
# Milliseconds between two streams of leaves to the journal.
flush_interval_ms = 250
# Milliseconds after a window ends before it is sealed and signed (answers still in flight).
close_grace_ms = 2000
# The network receipts are signed for (receipts v2 carry it in their signed bytes, so they
# never count on another network): 64 hex digits, SHA256("TOLLDNS-DEPLOYMENT-V1\0" ||
# score program id || cluster genesis hash). Empty: the local development deployment.
deployment_id = ""

[journal]
# Leaves are kept this long after their batch was signed, to answer audits (7 days).
audit_window_secs = 604800
# Bound on stored leaf bytes (1 GiB). When exceeded, the leaves of the oldest batches are
# deleted first, even inside their audit window. Signed receipts are never deleted.
max_leaf_bytes = 1073741824
# How often the count of accepted but not yet journaled leaves is persisted (ms).
checkpoint_interval_ms = 1000
# The journal database's page cache (64 MiB): most of the miner's memory once the journal
# has grown. Audits read only the chunks they prove, so a small cache costs little.
cache_bytes = 67108864

[agent]
# Watchers that receive every signed batch receipt (HTTP POST, JSON). Reloaded on SIGHUP.
watchers = []
# PEM CA certificates trusted for https:// watchers.
# ca_file = "/etc/tolldns/watchers-ca.pem"
# Retry with exponential backoff and jitter, from retry_initial_ms up to retry_max_ms.
retry_initial_ms = 1000
retry_max_ms = 300000
request_timeout_ms = 10000

[api]
# /metrics, /healthz and the audit API (/v1/...). Loopback by default.
listen = "127.0.0.1:9153"
# Base58 ed25519 public keys of the auditors (watchers) allowed to use the audit endpoints:
# audits, ticket lookups, sketch witnesses, tokens and (HPKE-encrypted) name keys. Every such
# request carries `Authorization: TollDNS-Auditor key=…, ts=…, nonce=…, sig=…`. Reloaded on
# SIGHUP. Receipts themselves (/v1/batches) are public.
auditor_keys = []
# Signed auditor requests older or newer than this are refused (seconds); a nonce is
# accepted once within it.
max_request_age_secs = 300
# Largest number of sampled leaves one audit request may ask for.
max_audit_k = 1024
# Per auditor: requests per second on average, and in a burst.
audit_rate_per_sec = 5
audit_burst = 20
# Audit requests served at once (all auditors, and per auditor); more get 503 + Retry-After.
audit_concurrency = 4
audit_concurrency_per_auditor = 2
# Seconds to send request headers, and to answer a request.
request_timeout_secs = 10

[tickets]
# Toll tickets: Privacy Pass tokens (RFC 9578 type 2) that pay for queries. A client presents
# a token once (EDNS option 65002, or DoH `Authorization: PrivateToken`), gets a 16-byte
# session ticket (EDNS option 65001, DoH header TollDNS-Session) and sends it with later
# queries; their leaves carry the token's ticket id and earn. Redeemed tokens are journaled
# (served at /v1/tokens/{ticket_id}); a token is never accepted twice, across restarts too.
# Policy per transport: "off" (tickets ignored), "optional" (unticketed queries are answered
# per admission and earn nothing), "required" (unticketed queries are REFUSED, DoH 401).
udp = "optional"
tcp = "optional"
dot = "optional"
doh = "optional"
doq = "optional"
# The deployment's token challenge: tokens must be issued for this issuer name and
# deployment (origin info); others are refused as wrong_challenge.
issuer_name = "issuer.tolldns.invalid"
deployment = "tolldns-local"
# Accepted issuer public keys: base64url of the RSASSA-PSS SPKI (the `token-key` of the
# issuer directory). With no key at all every token is refused as wrong_issuer.
issuer_keys = []
# An issuer directory JSON file (RFC 9578 section 4) whose keys are accepted too.
# issuer_directory = "/etc/tolldns/issuer-directory.json"
# Queries one token pays for, the redeeming query included (a deployment parameter).
queries_per_token = 1000
# Most tokens remembered as redeemed; when full, redemptions are refused (capacity).
max_redeemed = 1000000
# Most open sessions.
max_sessions = 262144
# Sustained queries per second, and burst, of one session.
session_rate = 200
session_burst = 400
# Seconds between session-key rotations; a session ticket of the previous key is renewed,
# older ones expire.
session_key_rotation_secs = 3600

# Tuning of the DNS edge (tolldns-ingress). The defaults are shown commented out; uncomment
# a section header and the keys to change. The upstream servers come from `upstreams` above.
# [edge]
# udp_workers = 0               # UDP sockets per address (SO_REUSEPORT); 0 = one per core
#
# [edge.streams]
# idle_timeout_ms = 10000
# max_connections = 10000
# max_pipelined = 64
# tls_handshake_timeout_ms = 5000
# doh_max_body = 65535
#
# [edge.cache]
# max_bytes = 67108864
# min_ttl = 0
# max_ttl = 86400
# negative_max_ttl = 3600
# stale_window_secs = 3600
# stale_ttl = 30
# prefetch_min_hits = 5
# prefetch_fraction_pct = 10
# max_prefetches = 16
#
# [edge.admission]
# rate_per_prefix = 2000
# burst_per_prefix = 4000
# ipv4_prefix_len = 24
# ipv6_prefix_len = 56
# max_prefixes = 100000
# max_in_flight = 10000
# max_response_size = 65535
# max_udp_response_size = 1232
# known_prefix_after_secs = 60
# known_prefix_idle_secs = 3600
# ipv4_parent_prefix_len = 16   # parent buckets bound the sum of their children (docs/ABUSE.md)
# ipv6_parent_prefix_len = 48
# ipv6_top_prefix_len = 32
# parent_factor = 8             # a parent's rate and burst, in per-prefix units
# top_factor = 32
# protected_pct = 75            # table share kept for established (known) prefixes
# rrl_responses_per_sec = 100   # identical UDP responses per prefix; 0 turns RRL off
# rrl_burst = 500
# rrl_slip = 2                  # every 2nd limited response is an empty TC=1, the rest dropped
# max_amplification = 3         # UDP bytes answered <= 3 x bytes received per prefix; 0: off
# amplification_credit_bytes = 16384
# rrl_max_entries = 200000
#
# [edge.upstream]
# timeout_ms = 2000
# max_attempts = 3
# quorum = 2                    # unset by default: no quorum
# ca_file = "/etc/tolldns/upstream-ca.pem"
# health_interval_ms = 5000
# pool_size = 4                 # persistent connections per TCP/DoT upstream
# max_in_flight = 100           # queries pipelined at once on one upstream connection
# idle_timeout_ms = 10000       # an upstream connection with nothing in flight is closed
#
# [edge.attack]   thresholds and per-mode knobs: tolldns-ingress `AttackConfig`, docs/OPERATOR.md
"#;

#[cfg(test)]
mod tests {
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
    fn commented_edge_defaults_are_the_defaults() {
        let start = TEMPLATE.find("# [edge]").unwrap();
        let uncommented: String = TEMPLATE[start..]
            .lines()
            .filter(|l| {
                !l.contains("quorum") && !l.contains("ca_file") && !l.contains("[edge.attack]")
            })
            .map(|l| l.strip_prefix("# ").unwrap_or(l))
            .map(|l| l.split('#').next().unwrap_or(""))
            .collect::<Vec<_>>()
            .join("\n");
        let text = format!("{}\n{uncommented}", &TEMPLATE[..start]);
        let c = Config::parse(&text, Path::new("config.toml")).unwrap();
        assert_eq!(c, Config::default());
        assert!(text.contains("[edge.cache]\nmax_bytes = 67108864"));
    }

    #[test]
    fn template_tickets_section_is_the_ingress_defaults() {
        let c = Config::parse(TEMPLATE, Path::new("config.toml")).unwrap();
        assert_eq!(c.tickets, tolldns_ingress::TicketsConfig::default());
        // Every key is shown, each under a comment.
        let start = TEMPLATE.find("\n[tickets]\n").unwrap();
        let end = TEMPLATE.find("# [edge]").unwrap();
        let section = &TEMPLATE[start..end];
        for key in [
            "udp",
            "tcp",
            "dot",
            "doh",
            "doq",
            "issuer_name",
            "deployment",
            "issuer_keys",
            "issuer_directory",
            "queries_per_token",
            "max_redeemed",
            "max_sessions",
            "session_rate",
            "session_burst",
            "session_key_rotation_secs",
        ] {
            assert!(
                section
                    .lines()
                    .any(|l| l.trim_start_matches("# ").starts_with(&format!("{key} = "))),
                "{key} missing from the template's [tickets]"
            );
        }
    }

    #[test]
    fn bad_ticket_settings_are_named() {
        let e = Config::parse("[tickets]\nudp = \"maybe\"\n", Path::new("c.toml"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("key `tickets.udp`"), "{e}");
        let e = Config::parse("[tickets]\nudpp = \"off\"\n", Path::new("c.toml"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("key `tickets.udpp`"), "{e}");
        let e = Config::parse("[tickets]\nissuer_keys = [\"!!\"]\n", Path::new("c.toml"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("tickets.issuer_keys"), "{e}");
        let e = Config::parse(
            "[tickets]\nissuer_directory = \"/nonexistent/dir.json\"\n",
            Path::new("c.toml"),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("tickets.issuer_directory"), "{e}");
        let e = Config::parse("[tickets]\ndoh = \"required\"\n", Path::new("c.toml"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("tickets.issuer_keys"), "{e}");
        // Keys are not checked when every listener ignores tickets.
        let c = Config::parse(
            "[tickets]\nudp = \"off\"\ntcp = \"off\"\ndot = \"off\"\ndoh = \"off\"\ndoq = \"off\"\n\
             issuer_keys = [\"!!\"]\n",
            Path::new("c.toml"),
        )
        .unwrap();
        assert!(!c.tickets.enabled());
    }

    #[test]
    fn listeners_left_out_of_the_build_are_refused() {
        let doh = Config::parse("[listen]\ndoh = \"127.0.0.1:8443\"\n", Path::new("c.toml"));
        let doq = Config::parse("[listen]\ndoq = \"127.0.0.1:8853\"\n", Path::new("c.toml"));
        if cfg!(feature = "doh") {
            assert_eq!(doh.unwrap().listen.doh, Some(loopback(8443)));
            assert_eq!(Config::default().listen.doh, Some(loopback(8443)));
        } else {
            let e = doh.unwrap_err().to_string();
            assert!(e.contains("listen.doh"), "{e}");
            assert!(
                e.contains("this build has no DoH support (feature doh)"),
                "{e}"
            );
            assert_eq!(Config::default().listen.doh, None);
        }
        if cfg!(feature = "doq") {
            assert_eq!(doq.unwrap().listen.doq, Some(loopback(8853)));
        } else {
            let e = doq.unwrap_err().to_string();
            assert!(e.contains("listen.doq"), "{e}");
            assert!(
                e.contains("this build has no DoQ support (feature doq)"),
                "{e}"
            );
        }
    }

    #[test]
    fn unknown_key_is_named() {
        let e = Config::parse(
            "[listen]\nudp = \"127.0.0.1:1\"\nudpp = 3\n",
            Path::new("c.toml"),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("udpp"), "{e}");
        assert!(e.contains("key `listen.udpp`"), "{e}");
    }

    #[test]
    fn bad_value_is_named() {
        let e = Config::parse("[receipts]\nwindow_secs = \"x\"\n", Path::new("c.toml"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("key `receipts.window_secs`"), "{e}");
        let e = Config::parse("[agent]\nwatchers = [\"ftp://x\"]\n", Path::new("c.toml"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("agent.watchers"), "{e}");
        let e = Config::parse("log_level = \"loud\"\n", Path::new("c.toml"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("key `log_level`"), "{e}");
    }

    #[test]
    fn the_old_per_window_cap_can_only_lower_the_pending_bound() {
        let c = Config::parse(
            "[receipts]\nmax_pending_leaves = 5000\n",
            Path::new("c.toml"),
        )
        .unwrap();
        assert_eq!(c.receipts.pending_leaves(), 5000);
        // A file written by an earlier `init` keeps working, with the default bound.
        let c = Config::parse(
            "[receipts]\nmax_leaves_per_window = 4000000\nclose_grace_ms = 2000\n",
            Path::new("c.toml"),
        )
        .unwrap();
        assert_eq!(c.receipts.pending_leaves(), DEFAULT_MAX_PENDING_LEAVES);
        assert_eq!(c.receipts.deprecated_max_leaves_per_window, Some(4_000_000));
        // A lowered old cap (a small device) keeps its memory bound.
        let c = Config::parse(
            "[receipts]\nmax_leaves_per_window = 20000\n",
            Path::new("c.toml"),
        )
        .unwrap();
        assert_eq!(c.receipts.pending_leaves(), 20_000);
        // Both: refused, naming the new key.
        let e = Config::parse(
            "[receipts]\nmax_leaves_per_window = 10\nmax_pending_leaves = 20\n",
            Path::new("c.toml"),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("receipts.max_pending_leaves"), "{e}");
        let e = Config::parse("[receipts]\nmax_pending_leaves = 0\n", Path::new("c.toml"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("receipts.max_pending_leaves"), "{e}");
        let e = Config::parse("[receipts]\nflush_interval_ms = 1\n", Path::new("c.toml"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("receipts.flush_interval_ms"), "{e}");
    }

    #[test]
    fn receipts_off_is_the_ingress_and_cache_role() {
        let c = Config::parse("[receipts]\nenabled = false\n", Path::new("c.toml")).unwrap();
        assert!(!c.receipts.enabled);
        assert!(Config::default().receipts.enabled);
        // Optional tickets (the default) are ignored; the issuer keys are not even read.
        let c = Config::parse(
            "[receipts]\nenabled = false\n[tickets]\nissuer_keys = [\"!!\"]\n",
            Path::new("c.toml"),
        )
        .unwrap();
        assert!(!c.receipts.enabled);
        // Contradictions are refused, naming the key.
        let e = Config::parse(
            "[receipts]\nenabled = false\n[agent]\nwatchers = [\"http://127.0.0.1:1/\"]\n",
            Path::new("c.toml"),
        )
        .unwrap_err();
        assert!(
            matches!(&e, ConfigError::File(Invalid { key, .. }) if *key == "agent.watchers"),
            "{e}"
        );
        let e = Config::parse(
            "[receipts]\nenabled = false\n[tickets]\ndot = \"required\"\n",
            Path::new("c.toml"),
        )
        .unwrap_err();
        assert!(
            matches!(&e, ConfigError::File(Invalid { key, .. }) if *key == "tickets"),
            "{e}"
        );
        assert!(e.to_string().contains("receipts.enabled = false"), "{e}");
        let e = Config::parse("[receipts]\nenabled = \"no\"\n", Path::new("c.toml"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("key `receipts.enabled`"), "{e}");
    }

    #[test]
    fn the_router_example_is_valid_in_both_roles() {
        let text = include_str!("../examples/router.toml");
        let c = Config::parse(text, Path::new("router.toml")).unwrap();
        assert!(c.receipts.enabled);
        assert_eq!(c.journal.cache_bytes, 4 << 20);
        assert_eq!(c.edge.cache.max_bytes, 8 << 20);
        let off = text.replacen("[receipts]\n", "[receipts]\nenabled = false\n", 1);
        let c = Config::parse(&off, Path::new("router.toml")).unwrap();
        assert!(!c.receipts.enabled);
    }

    #[test]
    fn resolv_conf_lines() {
        let text = "# comment\nsearch example\nnameserver 10.0.0.1\nnameserver fe80::1%eth0\n\
                    nameserver bogus\nnameserver 2001:db8::1 # v6\noptions ndots:1\n";
        let got = parse_resolv_conf(text);
        assert_eq!(
            got,
            vec![
                "10.0.0.1:53".parse().unwrap(),
                "[2001:db8::1]:53".parse().unwrap()
            ]
        );
    }

    #[test]
    fn missing_upstreams_name_file_and_key() {
        let dir = std::env::temp_dir().join(format!("tolldns-miner-rc-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let rc = dir.join("resolv.conf");
        std::fs::write(&rc, "nameserver not-an-ip\n").unwrap();
        let e = Config::default()
            .resolve_upstreams(&rc)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains(rc.to_str().unwrap()) && e.contains("upstreams"),
            "{e}"
        );
        let c = Config {
            upstreams: vec!["192.0.2.1".into(), "192.0.2.2:5300".into()],
            ..Config::default()
        };
        assert_eq!(
            c.resolve_upstreams(&rc).unwrap(),
            vec![
                "192.0.2.1:53".parse().unwrap(),
                "192.0.2.2:5300".parse().unwrap()
            ]
        );
        std::fs::remove_dir_all(dir).unwrap();
    }
}
