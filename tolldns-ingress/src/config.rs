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
    /// Certificate and key files for DoT, DoH and DoQ (PEM), used when no rustls configuration is
    /// passed to [`Edge::start`](crate::Edge::start).
    pub tls: TlsFiles,
    /// TCP, DoT, DoH and DoQ connection handling.
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
    /// DNS over QUIC (RFC 9250), UDP. Needs TLS material (TLS 1.3); none by default.
    pub doq: Vec<SocketAddr>,
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
            doq: Vec::new(),
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

/// Connection handling for TCP, DoT, DoH and DoQ.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StreamConfig {
    /// Idle time (ms) after which a connection with no query in progress is closed; also the
    /// limit for reading one message once its first byte arrived. (Earlier name
    /// `idle_timeout_millis`, still accepted.)
    #[serde(alias = "idle_timeout_millis")]
    pub idle_timeout_ms: u64,
    /// Open TCP + DoT + DoH + DoQ connections at most; further connections are closed at once.
    pub max_connections: usize,
    /// Queries of one connection being resolved at once (pipelining); reading pauses past it.
    /// For DoQ, the streams a client may have open at once.
    pub max_pipelined: usize,
    /// Time limit (ms) for a TLS (or QUIC) handshake. (Earlier name
    /// `tls_handshake_timeout_millis`, still accepted.)
    #[serde(alias = "tls_handshake_timeout_millis")]
    pub tls_handshake_timeout_ms: u64,
    /// Largest DoH POST body (bytes); larger gets 413.
    pub doh_max_body: usize,
}

impl Default for StreamConfig {
    fn default() -> Self {
        Self {
            idle_timeout_ms: 10_000,
            max_connections: 10_000,
            max_pipelined: 64,
            tls_handshake_timeout_ms: 5_000,
            doh_max_body: 65_535,
        }
    }
}

impl StreamConfig {
    pub(crate) fn idle(&self) -> Duration {
        Duration::from_millis(self.idle_timeout_ms.max(1))
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
    /// Time limit (ms) for one exchange with one upstream (`timeout_millis` is accepted as
    /// an older name).
    #[serde(alias = "timeout_millis")]
    pub timeout_ms: u64,
    /// Upstreams tried per query before giving up.
    pub max_attempts: usize,
    /// Quorum mode: answers count as confirmed when this many upstreams agree.
    pub quorum: Option<u8>,
    /// PEM bundle of trust anchors for DoT and DoH upstreams.
    pub ca_file: Option<PathBuf>,
    /// Time (ms) between health probes of a healthy upstream.
    pub health_interval_ms: u64,
    /// Deprecated: the same in seconds; when given, it overrides `health_interval_ms`.
    pub health_interval_secs: Option<u64>,
    /// Persistent connections per TCP or DoT upstream (RFC 7766 reuse), at least 1.
    pub pool_size: usize,
    /// Queries in flight at once on one TCP or DoT upstream connection (pipelining).
    pub max_in_flight: usize,
    /// Time (ms) after which an upstream connection with nothing in flight is closed.
    pub idle_timeout_ms: u64,
}

impl Default for UpstreamSettings {
    fn default() -> Self {
        Self {
            servers: Vec::new(),
            timeout_ms: 2_000,
            max_attempts: 3,
            quorum: None,
            ca_file: None,
            health_interval_ms: 5_000,
            health_interval_secs: None,
            pool_size: crate::upstream::DEFAULT_POOL_SIZE,
            max_in_flight: crate::upstream::DEFAULT_MAX_IN_FLIGHT,
            idle_timeout_ms: 10_000,
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
            timeout: Duration::from_millis(self.timeout_ms.max(1)),
            max_attempts: self.max_attempts.max(1),
            quorum: self.quorum,
            health_interval: match self.health_interval_secs {
                Some(secs) => Duration::from_secs(secs.max(1)),
                None => Duration::from_millis(self.health_interval_ms.max(10)),
            },
            pool_size: self.pool_size.max(1),
            max_in_flight: self.max_in_flight.clamp(1, 32_768),
            idle_timeout: Duration::from_millis(self.idle_timeout_ms.max(1)),
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

#[cfg(test)]
mod tests {
    use super::EdgeConfig;

    #[test]
    fn durations_are_in_ms_and_the_earlier_millis_names_still_parse() {
        let new: EdgeConfig = toml::from_str(
            "[streams]\nidle_timeout_ms = 7\ntls_handshake_timeout_ms = 8\n[attack]\ntick_ms = 9\n",
        )
        .unwrap();
        let old: EdgeConfig = toml::from_str(
            "[streams]\nidle_timeout_millis = 7\ntls_handshake_timeout_millis = 8\n\
             [attack]\ntick_millis = 9\n",
        )
        .unwrap();
        for c in [&new, &old] {
            assert_eq!(c.streams.idle_timeout_ms, 7);
            assert_eq!(c.streams.tls_handshake_timeout_ms, 8);
            assert_eq!(c.attack.tick_ms, 9);
        }
        // Both names at once is a duplicate key, not a silent pick.
        assert!(
            toml::from_str::<EdgeConfig>(
                "[streams]\nidle_timeout_ms = 7\nidle_timeout_millis = 8\n"
            )
            .is_err()
        );
    }
}
