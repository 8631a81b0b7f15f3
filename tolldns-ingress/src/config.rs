//! [`EdgeConfig`]: everything an edge needs, deserializable (TOML, JSON, …) with every field
//! defaulted and unknown fields refused.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;
use tolldns_cache::CacheConfig;

use crate::admission::AdmissionConfig;
use crate::attack::AttackConfig;
use crate::error::EdgeError;
use crate::receipts::ReceiptsConfig;
use crate::tickets::TicketsConfig;
use crate::upstream::{UpstreamConfig, UpstreamSpec};

/// Configuration of an [`Edge`](crate::Edge).
///
/// ```
/// let cfg: tolldns_ingress::EdgeConfig = toml::from_str(r#"
///     [listen]
///     udp = ["127.0.0.1:5400"]
///     tcp = ["127.0.0.1:5400"]
///     [upstream]
///     servers = ["127.0.0.1:5301"]
/// "#)?;
/// assert_eq!(cfg.listen.doh_path, "/dns-query");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EdgeConfig {
    /// Listening addresses.
    pub listen: ListenConfig,
    /// Certificate and key files for DoT and DoH (PEM), used when no rustls configuration is
    /// passed to [`Edge::start`](crate::Edge::start).
    pub tls: TlsFiles,
    /// TCP, DoT and DoH connection handling.
    pub streams: StreamConfig,
    /// The answer cache.
    pub cache: CacheSettings,
    /// Admission control.
    pub admission: AdmissionConfig,
    /// The attack-mode state machine.
    pub attack: AttackConfig,
    /// Upstream resolvers (the only destinations the edge ever forwards to).
    pub upstream: UpstreamSettings,
    /// Receipt recording.
    pub receipts: ReceiptsConfig,
    /// Toll tickets: per-listener policy, accepted issuer keys, quotas.
    pub tickets: TicketsConfig,
}

/// Listening addresses. Port 0 picks a free port (see
/// [`EdgeHandle::local_addrs`](crate::EdgeHandle::local_addrs)).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ListenConfig {
    /// DNS over UDP.
    pub udp: Vec<SocketAddr>,
    /// DNS over TCP (RFC 7766).
    pub tcp: Vec<SocketAddr>,
    /// DNS over TLS (RFC 7858). Needs TLS material.
    pub dot: Vec<SocketAddr>,
    /// DNS over HTTPS (RFC 8484). Needs TLS material.
    pub doh: Vec<SocketAddr>,
    /// Path of DoH requests.
    pub doh_path: String,
    /// UDP sockets (SO_REUSEPORT) and serving tasks per UDP address; 0 means one per core.
    pub udp_workers: usize,
}

impl Default for ListenConfig {
    fn default() -> Self {
        Self {
            udp: vec![SocketAddr::from(([127, 0, 0, 1], 5353))],
            tcp: vec![SocketAddr::from(([127, 0, 0, 1], 5353))],
            dot: Vec::new(),
            doh: Vec::new(),
            doh_path: "/dns-query".to_owned(),
            udp_workers: 0,
        }
    }
}

/// PEM files for DoT and DoH.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TlsFiles {
    /// Certificate chain (PEM).
    pub cert: Option<PathBuf>,
    /// Private key (PEM: PKCS#8, PKCS#1 or SEC1).
    pub key: Option<PathBuf>,
}

/// Connection handling for TCP, DoT and DoH.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StreamConfig {
    /// Idle time (ms) after which a connection with no query in progress is closed; also the
    /// limit for reading one message once its first byte arrived.
    pub idle_timeout_millis: u64,
    /// Open TCP + DoT + DoH connections at most; further connections are closed at once.
    pub max_connections: usize,
    /// Queries of one connection being resolved at once (pipelining); reading pauses past it.
    pub max_pipelined: usize,
    /// Time limit (ms) for a TLS handshake.
    pub tls_handshake_timeout_millis: u64,
    /// Largest DoH POST body (bytes); larger gets 413.
    pub doh_max_body: usize,
}

impl Default for StreamConfig {
    fn default() -> Self {
        Self {
            idle_timeout_millis: 10_000,
            max_connections: 10_000,
            max_pipelined: 64,
            tls_handshake_timeout_millis: 5_000,
            doh_max_body: 65_535,
        }
    }
}

impl StreamConfig {
    pub(crate) fn idle(&self) -> Duration {
        Duration::from_millis(self.idle_timeout_millis.max(1))
    }
}

/// Cache settings (see `tolldns_cache::CacheConfig`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CacheSettings {
    /// Memory bound in bytes.
    pub max_bytes: usize,
    /// Record TTLs below this are raised to it when stored.
    pub min_ttl: u32,
    /// Record TTLs above this are lowered to it when stored.
    pub max_ttl: u32,
    /// Upper clamp for negative answers.
    pub negative_max_ttl: u32,
    /// Seconds after expiry an answer may still be served when every upstream fails (RFC 8767).
    pub stale_window_secs: u64,
    /// TTL of stale answers.
    pub stale_ttl: u32,
    /// Hits an entry needs before it is refreshed in the background near expiry.
    pub prefetch_min_hits: u32,
    /// An entry is refreshed when its remaining TTL is at most this percentage of its TTL;
    /// 0 turns prefetch off.
    pub prefetch_fraction_pct: u8,
    /// Background refreshes running at once at most; due refreshes past it are skipped
    /// (counted). 0 turns prefetch off.
    pub max_prefetches: usize,
}

impl Default for CacheSettings {
    fn default() -> Self {
        let d = CacheConfig::default();
        Self {
            max_bytes: d.max_bytes,
            min_ttl: d.min_ttl,
            max_ttl: d.max_ttl,
            negative_max_ttl: d.negative_max_ttl,
            stale_window_secs: d.stale_window.as_secs(),
            stale_ttl: d.stale_ttl,
            prefetch_min_hits: d.prefetch_min_hits,
            prefetch_fraction_pct: d.prefetch_fraction_pct,
            max_prefetches: 16,
        }
    }
}

impl CacheSettings {
    pub(crate) fn to_cache_config(&self) -> CacheConfig {
        CacheConfig {
            max_bytes: self.max_bytes,
            min_ttl: self.min_ttl,
            max_ttl: self.max_ttl,
            negative_max_ttl: self.negative_max_ttl,
            stale_window: Duration::from_secs(self.stale_window_secs),
            stale_ttl: self.stale_ttl,
            prefetch_min_hits: self.prefetch_min_hits,
            prefetch_fraction_pct: self.prefetch_fraction_pct,
        }
    }
}

/// Upstream resolvers.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct UpstreamSettings {
    /// The allow-list of upstreams: `udp://ip:port`, `tcp://…`, `tls://ip:853#name`,
    /// `https://ip:443/dns-query#name`, or a bare `ip:port` (UDP). IP literals only.
    pub servers: Vec<String>,
    /// Time limit (ms) for one exchange with one upstream.
    pub timeout_millis: u64,
    /// Upstreams tried per query before giving up.
    pub max_attempts: usize,
    /// Quorum mode: answers count as confirmed when this many upstreams agree.
    pub quorum: Option<u8>,
    /// PEM bundle of trust anchors for DoT and DoH upstreams.
    pub ca_file: Option<PathBuf>,
    /// Seconds between health probes of a healthy upstream.
    pub health_interval_secs: u64,
}

impl Default for UpstreamSettings {
    fn default() -> Self {
        Self {
            servers: Vec::new(),
            timeout_millis: 2_000,
            max_attempts: 3,
            quorum: None,
            ca_file: None,
            health_interval_secs: 5,
        }
    }
}

impl UpstreamSettings {
    pub(crate) fn to_upstream_config(&self) -> Result<UpstreamConfig, EdgeError> {
        let mut upstreams = Vec::with_capacity(self.servers.len());
        for s in &self.servers {
            upstreams.push(s.parse::<UpstreamSpec>().map_err(EdgeError::UpstreamSpec)?);
        }
        let mut cfg = UpstreamConfig {
            upstreams,
            timeout: Duration::from_millis(self.timeout_millis.max(1)),
            max_attempts: self.max_attempts.max(1),
            quorum: self.quorum,
            health_interval: Duration::from_secs(self.health_interval_secs.max(1)),
            ..UpstreamConfig::default()
        };
        if let Some(path) = &self.ca_file {
            let pem = std::fs::read(path).map_err(|source| EdgeError::File {
                path: path.clone(),
                source,
            })?;
            cfg.add_ca_pem(&pem).map_err(EdgeError::Upstream)?;
        }
        Ok(cfg)
    }
}
