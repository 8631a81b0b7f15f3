//! Upstream resolver pool: where cache misses go.
//!
//! [`UpstreamPool`] forwards a [`Question`] to the configured recursive resolvers over UDP
//! (retried over TCP when truncated), TCP, DNS over TLS or DNS over HTTPS, and returns the first
//! response that passes every check against the question: ID, QR bit, opcode, the question
//! section (case-insensitive name, type, class), a usable RCODE (NOERROR or NXDOMAIN), no
//! truncation on streams, and answer records that belong to the query name or its alias chain.
//! Only such answers may be cached.
//!
//! * **Never an open relay**: the pool sends only to the IP literals of
//!   [`UpstreamConfig::upstreams`]; nothing in a question or a response can add a destination.
//! * **Spoofing resistance**: UDP queries go out on one of 16 connected sockets per upstream,
//!   each on a random OS-chosen source port and replaced by a fresh one after 1,000 queries, with
//!   a random 16-bit ID (thread-local CSPRNG) unique among the queries waiting on that socket;
//!   non-matching datagrams are dropped and counted ([`UpstreamStatus::dropped_responses`]).
//! * **Latency-aware failover**: upstreams are tried healthy-first in order of smoothed RTT
//!   (EWMA, 1/8 gain); a small [`exploration`](UpstreamConfig::exploration) share of queries goes
//!   first to another healthy upstream so every estimate stays fresh. Timeouts, network errors,
//!   SERVFAIL, REFUSED and mismatching responses move on to the next upstream.
//! * **Health checks**: [`UpstreamPool::spawn_health_checks`] probes every upstream; consecutive
//!   failures mark it down, a success marks it up, and down upstreams are probed with
//!   exponential backoff.
//! * **Injected time and randomness**: round-trip times, probe schedules and backoff read the
//!   [`Clock`] given to [`UpstreamPool::with_clock_and_rng`], and the exploration share draws from
//!   the seedable RNG given there ([`UpstreamPool::new`]: the system clock and an RNG seeded from
//!   the OS). Query IDs and source ports are not affected: they always come from the thread-local
//!   CSPRNG and the OS.
//! * **Quorum mode** ([`UpstreamConfig::quorum`]): several upstreams are asked in parallel and
//!   the answers graded: identical answers from the quorum give [`Confidence::High`] (TTL cap
//!   [`HIGH_TTL_CAP`]), overlapping answers [`Confidence::Medium`] ([`MEDIUM_TTL_CAP`]), anything
//!   else the fastest answer with [`Confidence::Low`] ([`LOW_TTL_CAP`]); NXDOMAIN is capped at
//!   [`NXDOMAIN_TTL_CAP`].
//!
//! * **Connection reuse**: TCP and DoT upstreams (and the TCP retry of a truncated UDP answer)
//!   use a small pool of persistent connections per upstream
//!   ([`pool_size`](UpstreamConfig::pool_size)) with RFC 7766 pipelining: up to
//!   [`max_in_flight`](UpstreamConfig::max_in_flight) queries at once per connection, each with a
//!   random ID unique on its connection, responses matched by ID in any order and still checked
//!   against their question. Idle connections close after
//!   [`idle_timeout`](UpstreamConfig::idle_timeout); a query whose connection fails is retried
//!   once on a new connection. DoH multiplexes every request on one HTTP/2 connection per
//!   upstream.

mod config;
mod quorum;
mod transport;
mod wire;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use hickory_proto::op::Message;
use portable_atomic::AtomicU64;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rustls::ClientConfig;
use rustls::pki_types::ServerName;
use tokio::task::{JoinHandle, JoinSet};
use tolldns_cache::CheckedAnswer;

pub use config::{
    DEFAULT_DOH_PATH, DEFAULT_IDLE_TIMEOUT, DEFAULT_MAX_IN_FLIGHT, DEFAULT_POOL_SIZE,
    ParseUpstreamError, UpstreamConfig, UpstreamConfigError, UpstreamProto, UpstreamSpec,
};
pub use quorum::{Confidence, HIGH_TTL_CAP, LOW_TTL_CAP, MEDIUM_TTL_CAP, NXDOMAIN_TTL_CAP};
pub use wire::{AttemptError, Checked, Mismatch, Question, build_query, check_response};

use crate::clock::{Clock, SystemClock};
use crate::metrics::Metrics;
use quorum::Candidate;
use transport::{ConnCounters, Connector, DohConn, DohTarget, Response, StreamLimits, StreamPool};

/// A checked upstream response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamAnswer {
    /// The response as received, with the upstream's message ID (0 for DoH): the caller rewrites
    /// the ID (and TTLs) before answering its client.
    pub message: Vec<u8>,
    /// Index of the answering upstream in [`UpstreamConfig::upstreams`].
    pub upstream: usize,
    /// Time from sending the query to the checked response (including a TCP retry).
    pub rtt: Duration,
    /// Agreement among upstreams. Outside quorum mode always [`Confidence::Low`]: one upstream
    /// vouches for the answer.
    pub confidence: Confidence,
    /// TTL cap in seconds to apply before caching; `None` outside quorum mode (no cap from the
    /// pool).
    pub ttl_cap: Option<u32>,
    /// The response code (with the EDNS extended bits) the pool's check of
    /// [`message`](Self::message) found ([`Checked::rcode`]).
    pub rcode: u16,
}

impl UpstreamAnswer {
    /// What the pool's checks established about the answer, for
    /// [`Cache::insert_checked`](tolldns_cache::Cache::insert_checked): the answer is stored
    /// without being parsed again, and its TTLs capped by [`ttl_cap`](Self::ttl_cap).
    pub fn checked(&self) -> CheckedAnswer {
        CheckedAnswer {
            rcode: self.rcode,
            ttl_cap: self.ttl_cap,
        }
    }
}

/// Why [`UpstreamPool::resolve`] produced no answer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum UpstreamError {
    /// Every attempt failed; the last failure is kept.
    #[error("{attempts} upstream attempt(s) failed; last from upstream {upstream}: {last}")]
    AllFailed {
        /// Attempts made.
        attempts: usize,
        /// Index of the upstream of the last attempt.
        upstream: usize,
        /// The last attempt's failure.
        #[source]
        last: AttemptError,
    },
    /// Every attempt timed out.
    #[error("every upstream attempt timed out")]
    Timeout,
    /// Quorum mode: none of the upstreams asked gave a usable answer.
    #[error("no usable answer from the {asked} upstream(s) asked in quorum mode")]
    NoQuorum {
        /// Upstreams asked in parallel.
        asked: usize,
    },
}

/// Per-upstream health and counters, for metrics.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct UpstreamStatus {
    /// The upstream.
    pub spec: UpstreamSpec,
    /// Whether it is currently considered up.
    pub healthy: bool,
    /// Smoothed round-trip time, once measured.
    pub srtt: Option<Duration>,
    /// Queries sent on behalf of clients (health probes excluded).
    pub queries: u64,
    /// Client queries that failed (timeout, network, mismatch, error RCODE).
    pub failures: u64,
    /// Responses dropped because they matched no outstanding query: UDP datagrams that failed
    /// the checks, and stream responses whose ID is not outstanding on their connection.
    pub dropped_responses: u64,
    /// Truncated UDP answers retried over TCP.
    pub tcp_retries: u64,
    /// Health probes sent.
    pub probes: u64,
    /// TCP, DoT and DoH connections opened to this upstream.
    pub connections_opened: u64,
    /// Queries sent on an already open TCP, DoT or DoH connection.
    pub connections_reused: u64,
    /// TCP or DoT connections open now (DoH connections are not counted here).
    pub open_connections: usize,
}

/// How an upstream is reached, resolved once at construction.
#[derive(Debug)]
enum Target {
    /// UDP; `tcp` carries the retries of truncated answers.
    Udp {
        sockets: transport::UdpSockets,
        tcp: StreamPool,
    },
    Tcp(StreamPool),
    Tls(StreamPool),
    Https {
        name: ServerName<'static>,
        uri: http::Uri,
        tls: Arc<ClientConfig>,
        conn: DohConn,
    },
}

#[derive(Debug)]
struct Dynamic {
    srtt: Option<Duration>,
    consecutive_failures: u32,
    backoff_level: u32,
    next_probe: Instant,
}

#[derive(Debug)]
struct Upstream {
    spec: UpstreamSpec,
    target: Target,
    healthy: AtomicBool,
    queries: AtomicU64,
    failures: AtomicU64,
    dropped: AtomicU64,
    tcp_retries: AtomicU64,
    probes: AtomicU64,
    conns: Arc<ConnCounters>,
    dynamic: Mutex<Dynamic>,
}

impl Upstream {
    fn dynamic(&self) -> MutexGuard<'_, Dynamic> {
        self.dynamic.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn healthy(&self) -> bool {
        self.healthy.load(Ordering::Relaxed)
    }
}

#[derive(Debug)]
struct Inner {
    upstreams: Vec<Upstream>,
    timeout: Duration,
    max_attempts: usize,
    quorum: Option<usize>,
    quorum_fanout: usize,
    health_interval: Duration,
    health_max_backoff: Duration,
    unhealthy_after: u32,
    health_probe: Question,
    exploration: f64,
    edns_payload: u16,
    idle_timeout: Duration,
    metrics: Arc<OnceLock<Metrics>>,
    clock: Arc<dyn Clock>,
    /// Draws of the exploration share (never used for anything an attacker must not guess).
    rng: Mutex<StdRng>,
}

/// The pool of upstream resolvers. Cheap to clone and share (`Arc` inside).
#[derive(Debug, Clone)]
pub struct UpstreamPool {
    inner: Arc<Inner>,
}

/// Smoothed RTT update with a 1/8 gain (as TCP's SRTT).
fn ewma(old: Option<Duration>, sample: Duration) -> Duration {
    match old {
        None => sample,
        Some(old) => (old.saturating_mul(7) / 8).saturating_add(sample / 8),
    }
}

fn server_name(name: &str) -> Result<ServerName<'static>, UpstreamConfigError> {
    ServerName::try_from(name.to_owned())
        .map_err(|_| UpstreamConfigError::InvalidServerName(name.to_owned()))
}

fn doh_uri(spec: &UpstreamSpec, path: &str, name: &str) -> Result<http::Uri, UpstreamConfigError> {
    if !path.starts_with('/') {
        return Err(UpstreamConfigError::InvalidPath(path.to_owned()));
    }
    let authority = match name.parse::<std::net::IpAddr>() {
        Ok(ip) => std::net::SocketAddr::new(ip, spec.addr.port()).to_string(),
        Err(_) => format!("{name}:{}", spec.addr.port()),
    };
    format!("https://{authority}{path}")
        .parse()
        .map_err(|_| UpstreamConfigError::InvalidPath(path.to_owned()))
}

impl UpstreamPool {
    /// Checks the configuration and builds the pool, on the system clock and with an
    /// exploration RNG seeded from the OS. No packet is sent until the first
    /// [`resolve`](Self::resolve) or health probe.
    ///
    /// # Errors
    ///
    /// [`UpstreamConfigError`] for an empty or duplicated upstream list, an unusable address, an
    /// impossible quorum, a zero timeout, TLS upstreams without trust anchors, or an invalid
    /// server name or DoH path.
    pub fn new(cfg: UpstreamConfig) -> Result<Self, UpstreamConfigError> {
        Self::with_clock_and_rng(cfg, Arc::new(SystemClock), StdRng::from_entropy())
    }

    /// [`new`](Self::new) reading time from `clock` (round-trip times, probe schedules, backoff)
    /// and drawing the exploration share from `rng`. Timeouts still run on Tokio's timer.
    ///
    /// # Errors
    ///
    /// As [`new`](Self::new).
    pub fn with_clock_and_rng(
        cfg: UpstreamConfig,
        clock: Arc<dyn Clock>,
        rng: StdRng,
    ) -> Result<Self, UpstreamConfigError> {
        if cfg.upstreams.is_empty() {
            return Err(UpstreamConfigError::NoUpstreams);
        }
        if cfg.timeout.is_zero() {
            return Err(UpstreamConfigError::ZeroTimeout);
        }
        if let Some(q) = cfg.quorum {
            if q == 0 || usize::from(q) > cfg.upstreams.len() {
                return Err(UpstreamConfigError::BadQuorum {
                    quorum: q,
                    upstreams: cfg.upstreams.len(),
                });
            }
        }
        let needs_tls = cfg.upstreams.iter().any(|u| {
            matches!(
                u.proto,
                UpstreamProto::Tls { .. } | UpstreamProto::Https { .. }
            )
        });
        let tls = if needs_tls {
            if cfg.tls_roots.is_empty() {
                return Err(UpstreamConfigError::MissingTlsRoots);
            }
            let provider = Arc::new(rustls::crypto::ring::default_provider());
            let dot = ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()?
                .with_root_certificates(cfg.tls_roots.clone())
                .with_no_client_auth();
            let mut doh = dot.clone();
            doh.alpn_protocols = vec![b"h2".to_vec()];
            Some((Arc::new(dot), Arc::new(doh)))
        } else {
            None
        };
        let now = clock.now();
        let metrics = Arc::new(OnceLock::new());
        let limits = StreamLimits {
            pool_size: cfg.pool_size,
            max_in_flight: cfg.max_in_flight,
            idle_timeout: cfg.idle_timeout,
        };
        let mut upstreams: Vec<Upstream> = Vec::with_capacity(cfg.upstreams.len());
        for spec in cfg.upstreams {
            let ip = spec.addr.ip();
            if ip.is_unspecified() || ip.is_multicast() || spec.addr.port() == 0 {
                return Err(UpstreamConfigError::BadAddress(spec.addr));
            }
            if upstreams.iter().any(|u| u.spec == spec) {
                return Err(UpstreamConfigError::Duplicate(spec.to_string()));
            }
            let conns = Arc::new(ConnCounters::new(Arc::clone(&metrics)));
            let stream =
                |connector| StreamPool::new(spec.addr, connector, limits, Arc::clone(&conns));
            let target = match (&spec.proto, &tls) {
                (UpstreamProto::Udp, _) => Target::Udp {
                    sockets: transport::UdpSockets::new(spec.addr, Arc::clone(&conns)),
                    tcp: stream(Connector::Tcp),
                },
                (UpstreamProto::Tcp, _) => Target::Tcp(stream(Connector::Tcp)),
                (UpstreamProto::Tls { server_name: name }, Some((dot, _))) => {
                    Target::Tls(stream(Connector::Tls {
                        name: server_name(name)?,
                        tls: Arc::clone(dot),
                    }))
                }
                (
                    UpstreamProto::Https {
                        path,
                        server_name: name,
                    },
                    Some((_, doh)),
                ) => Target::Https {
                    name: server_name(name)?,
                    uri: doh_uri(&spec, path, name)?,
                    tls: Arc::clone(doh),
                    conn: DohConn::default(),
                },
                (_, None) => return Err(UpstreamConfigError::MissingTlsRoots),
            };
            upstreams.push(Upstream {
                spec,
                target,
                healthy: AtomicBool::new(true),
                queries: AtomicU64::new(0),
                failures: AtomicU64::new(0),
                dropped: AtomicU64::new(0),
                tcp_retries: AtomicU64::new(0),
                probes: AtomicU64::new(0),
                conns,
                dynamic: Mutex::new(Dynamic {
                    srtt: None,
                    consecutive_failures: 0,
                    backoff_level: 0,
                    next_probe: now,
                }),
            });
        }
        let exploration = if (0.0..=1.0).contains(&cfg.exploration) {
            cfg.exploration
        } else {
            0.0
        };
        Ok(Self {
            inner: Arc::new(Inner {
                upstreams,
                timeout: cfg.timeout,
                max_attempts: cfg.max_attempts.max(1),
                quorum: cfg.quorum.map(usize::from),
                quorum_fanout: cfg.quorum_fanout,
                health_interval: cfg.health_interval.max(Duration::from_millis(10)),
                health_max_backoff: cfg.health_max_backoff,
                unhealthy_after: cfg.unhealthy_after.max(1),
                health_probe: cfg.health_probe,
                exploration,
                edns_payload: cfg.edns_payload,
                idle_timeout: cfg.idle_timeout.max(Duration::from_millis(1)),
                metrics,
                clock,
                rng: Mutex::new(rng),
            }),
        })
    }

    /// Reports connection reuse to the edge's metrics from now on (once; later calls are
    /// ignored).
    pub(crate) fn attach_metrics(&self, metrics: Metrics) {
        let _already = self.inner.metrics.set(metrics);
    }

    /// Resolves `question` through the upstreams and returns the first checked answer (or, in
    /// quorum mode, the graded one).
    ///
    /// Each query has a fresh random ID (0 for DoH), RD=1, and EDNS with the question's DO bit;
    /// CD is copied too. Outside quorum mode, up to
    /// [`max_attempts`](UpstreamConfig::max_attempts) upstreams are tried in order of health and
    /// smoothed RTT.
    ///
    /// # Errors
    ///
    /// [`UpstreamError::Timeout`] if every attempt timed out, [`UpstreamError::AllFailed`] with
    /// the last failure otherwise, [`UpstreamError::NoQuorum`] in quorum mode when no upstream
    /// gave a usable answer.
    pub async fn resolve(&self, question: &Question) -> Result<UpstreamAnswer, UpstreamError> {
        match self.inner.quorum {
            Some(quorum) => self.resolve_quorum(question, quorum).await,
            None => self.resolve_first(question).await,
        }
    }

    async fn resolve_first(&self, question: &Question) -> Result<UpstreamAnswer, UpstreamError> {
        let order = self.inner.order();
        let mut last = None;
        let mut all_timeouts = true;
        let mut attempts = 0;
        for idx in order.into_iter().take(self.inner.max_attempts) {
            attempts += 1;
            match self.inner.exchange(idx, question, false).await {
                Ok((response, rtt)) => {
                    return Ok(UpstreamAnswer {
                        rcode: response.checked.rcode(),
                        message: response.wire,
                        upstream: idx,
                        rtt,
                        confidence: Confidence::Low,
                        ttl_cap: None,
                    });
                }
                Err(e) => {
                    all_timeouts &= matches!(e, AttemptError::Timeout);
                    last = Some((idx, e));
                }
            }
        }
        match last {
            Some((upstream, last)) if !all_timeouts => Err(UpstreamError::AllFailed {
                attempts,
                upstream,
                last,
            }),
            _ => Err(UpstreamError::Timeout),
        }
    }

    async fn resolve_quorum(
        &self,
        question: &Question,
        quorum: usize,
    ) -> Result<UpstreamAnswer, UpstreamError> {
        let inner = &self.inner;
        let asked = inner.quorum_fanout.max(quorum).min(inner.upstreams.len());
        let mut set = JoinSet::new();
        for idx in inner.order().into_iter().take(asked) {
            let inner = Arc::clone(inner);
            let question = question.clone();
            set.spawn(async move { (idx, inner.exchange(idx, &question, false).await) });
        }
        let mut candidates = Vec::with_capacity(asked);
        let mut wires = Vec::with_capacity(asked);
        while let Some(joined) = set.join_next().await {
            let Ok((idx, Ok((response, rtt)))) = joined else {
                continue;
            };
            // Grading compares canonical RDATA (names decompressed and lowercased), which needs
            // a full parse; quorum mode is off the default hot path.
            let Ok(message) = Message::from_vec(&response.wire) else {
                continue;
            };
            candidates.push(Candidate::new(idx, rtt, &message, question.qtype));
            wires.push((response.wire, response.checked.rcode()));
            if quorum::quorum_reached(&candidates, quorum) {
                // More answers cannot raise the confidence; the rest are cancelled.
                break;
            }
        }
        drop(set);
        let verdict =
            quorum::grade(&candidates, quorum).ok_or(UpstreamError::NoQuorum { asked })?;
        let chosen = candidates
            .get(verdict.chosen)
            .ok_or(UpstreamError::NoQuorum { asked })?;
        let (upstream, rtt) = (chosen.upstream, chosen.rtt);
        let (message, rcode) = wires
            .into_iter()
            .nth(verdict.chosen)
            .ok_or(UpstreamError::NoQuorum { asked })?;
        Ok(UpstreamAnswer {
            message,
            rcode,
            upstream,
            rtt,
            confidence: verdict.confidence,
            ttl_cap: Some(verdict.ttl_cap),
        })
    }

    /// Starts the periodic health probe of every upstream (see
    /// [`UpstreamConfig::health_probe`]): a [`probe_due`](Self::probe_due) round every
    /// [`health_interval`](UpstreamConfig::health_interval). The task ends when the last clone of
    /// the pool is dropped, or when the handle is aborted.
    ///
    /// # Panics
    ///
    /// Must be called from within a Tokio runtime.
    pub fn spawn_health_checks(&self) -> JoinHandle<()> {
        let weak = Arc::downgrade(&self.inner);
        let period = self.inner.health_interval;
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(period);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let Some(inner) = weak.upgrade() else { break };
                let (mut probes, _) = Inner::start_probes(&inner);
                drop(inner);
                while probes.join_next().await.is_some() {}
            }
        })
    }

    /// One round of health probes at the pool clock's current time: every healthy upstream, and
    /// every down one whose backoff has run out, is probed once (in parallel). Down upstreams
    /// wait [`health_interval`](UpstreamConfig::health_interval) after the failed probe that took
    /// them down, doubling after each further failed probe up to
    /// [`health_max_backoff`](UpstreamConfig::health_max_backoff). Returns the number of probes
    /// sent, once all of them are done.
    ///
    /// # Panics
    ///
    /// Must be called from within a Tokio runtime.
    pub async fn probe_due(&self) -> usize {
        let (mut probes, sent) = Inner::start_probes(&self.inner);
        while probes.join_next().await.is_some() {}
        sent
    }

    /// Health and counters of every upstream, in configuration order.
    pub fn stats(&self) -> Vec<UpstreamStatus> {
        self.inner
            .upstreams
            .iter()
            .map(|u| UpstreamStatus {
                spec: u.spec.clone(),
                healthy: u.healthy(),
                srtt: u.dynamic().srtt,
                queries: u.queries.load(Ordering::Relaxed),
                failures: u.failures.load(Ordering::Relaxed),
                dropped_responses: u.dropped.load(Ordering::Relaxed)
                    + u.conns.dropped.load(Ordering::Relaxed),
                tcp_retries: u.tcp_retries.load(Ordering::Relaxed),
                probes: u.probes.load(Ordering::Relaxed),
                connections_opened: u.conns.opened.load(Ordering::Relaxed),
                connections_reused: u.conns.reused.load(Ordering::Relaxed),
                open_connections: match &u.target {
                    Target::Udp { tcp: pool, .. } | Target::Tcp(pool) | Target::Tls(pool) => {
                        pool.open_connections()
                    }
                    Target::Https { .. } => 0,
                },
            })
            .collect()
    }

    /// The configured upstreams, in configuration order.
    pub fn upstreams(&self) -> Vec<UpstreamSpec> {
        self.inner
            .upstreams
            .iter()
            .map(|u| u.spec.clone())
            .collect()
    }
}

impl Inner {
    /// Spawns the probes due now; returns them and how many there are.
    fn start_probes(inner: &Arc<Self>) -> (JoinSet<()>, usize) {
        let now = inner.clock.now();
        let mut probes = JoinSet::new();
        let mut sent = 0;
        for (idx, up) in inner.upstreams.iter().enumerate() {
            if up.healthy() || up.dynamic().next_probe <= now {
                let inner = Arc::clone(inner);
                sent += 1;
                probes.spawn(async move {
                    let question = inner.health_probe.clone();
                    // The outcome is recorded by the exchange itself.
                    let _outcome = inner.exchange(idx, &question, true).await;
                });
            }
        }
        (probes, sent)
    }

    /// Upstream indices in the order to try them: healthy first, then by smoothed RTT
    /// (unmeasured first, so they get measured), with an occasional exploration pick.
    fn order(&self) -> Vec<usize> {
        let mut keyed: Vec<(bool, Duration, usize)> = self
            .upstreams
            .iter()
            .enumerate()
            .map(|(i, u)| (!u.healthy(), u.dynamic().srtt.unwrap_or(Duration::ZERO), i))
            .collect();
        keyed.sort();
        let mut order: Vec<usize> = keyed.iter().map(|k| k.2).collect();
        let healthy = keyed.iter().filter(|k| !k.0).count();
        if healthy >= 2 && self.exploration > 0.0 {
            let mut rng = self.rng.lock().unwrap_or_else(PoisonError::into_inner);
            if rng.gen_bool(self.exploration) {
                let pick = rng.gen_range(1..healthy);
                let explored = order.remove(pick);
                order.insert(0, explored);
            }
        }
        order
    }

    /// One exchange with upstream `idx`, with the outcome recorded in its health and counters.
    async fn exchange(
        &self,
        idx: usize,
        question: &Question,
        probe: bool,
    ) -> Result<(Response, Duration), AttemptError> {
        let up = self.upstreams.get(idx).ok_or(AttemptError::Timeout)?;
        if probe {
            up.probes.fetch_add(1, Ordering::Relaxed);
        } else {
            up.queries.fetch_add(1, Ordering::Relaxed);
        }
        let start = self.clock.now();
        let result = self.send(up, question).await;
        let rtt = self.clock.now().saturating_duration_since(start);
        match &result {
            Ok(_) => self.record_success(up, rtt),
            Err(e) => self.record_failure(up, e, probe),
        }
        result.map(|r| (r, rtt))
    }

    async fn send(&self, up: &Upstream, q: &Question) -> Result<Response, AttemptError> {
        let addr = up.spec.addr;
        let timeout = self.timeout;
        match &up.target {
            Target::Udp { sockets, tcp } => {
                let response = sockets
                    .exchange(q, self.edns_payload, timeout, &up.dropped)
                    .await?;
                if !response.checked.truncated() {
                    return Ok(response);
                }
                up.tcp_retries.fetch_add(1, Ordering::Relaxed);
                // Boxed here and below: a connection's set-up (TCP connect, TLS handshake, HTTP/2)
                // is kilobytes of future state, and inline it would make every UDP miss's task
                // that large, copied on each spawn.
                Box::pin(tcp.exchange(q, self.edns_payload, timeout)).await
            }
            Target::Tcp(pool) | Target::Tls(pool) => {
                Box::pin(pool.exchange(q, self.edns_payload, timeout)).await
            }
            Target::Https {
                name,
                uri,
                tls,
                conn,
            } => {
                let query = build_query(q, 0, self.edns_payload);
                let target = DohTarget {
                    addr,
                    server_name: name.clone(),
                    uri,
                    tls: Arc::clone(tls),
                    conn,
                    idle_timeout: self.idle_timeout,
                    counters: &up.conns,
                };
                Box::pin(transport::doh(target, &query, q, timeout)).await
            }
        }
    }

    /// The clock's now plus `wait` (now, if that would overflow).
    fn after(&self, wait: Duration) -> Instant {
        let now = self.clock.now();
        now.checked_add(wait).unwrap_or(now)
    }

    fn record_success(&self, up: &Upstream, rtt: Duration) {
        {
            let mut d = up.dynamic();
            d.srtt = Some(ewma(d.srtt, rtt));
            d.consecutive_failures = 0;
            d.backoff_level = 0;
            d.next_probe = self.after(self.health_interval);
        }
        if !up.healthy.swap(true, Ordering::Relaxed) {
            tracing::info!(upstream = %up.spec, "upstream is up again");
        }
    }

    /// An error RCODE from a client query says more about the name than the upstream, so it does
    /// not count towards marking the upstream down; everything else does.
    fn record_failure(&self, up: &Upstream, err: &AttemptError, probe: bool) {
        if !probe {
            up.failures.fetch_add(1, Ordering::Relaxed);
        }
        let counts = probe || !matches!(err, AttemptError::Rcode(_));
        let mut d = up.dynamic();
        if matches!(err, AttemptError::Timeout) {
            d.srtt = Some(ewma(d.srtt, self.timeout));
        }
        if counts {
            d.consecutive_failures = d.consecutive_failures.saturating_add(1);
            if d.consecutive_failures >= self.unhealthy_after
                && up.healthy.swap(false, Ordering::Relaxed)
            {
                tracing::warn!(upstream = %up.spec, error = %err, "upstream marked down");
            }
        }
        if probe && !up.healthy() {
            let factor = 1u32 << d.backoff_level.min(16);
            let wait = self
                .health_interval
                .saturating_mul(factor)
                .min(self.health_max_backoff);
            d.backoff_level = d.backoff_level.saturating_add(1);
            d.next_probe = self.after(wait);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ewma_smooths() {
        let a = ewma(None, Duration::from_millis(80));
        assert_eq!(a, Duration::from_millis(80));
        let b = ewma(Some(a), Duration::from_millis(160));
        assert_eq!(b, Duration::from_millis(90));
    }

    #[test]
    fn rejects_bad_configs() {
        let up = |s: &str| s.parse::<UpstreamSpec>().unwrap();
        let cfg = |ups: Vec<UpstreamSpec>| UpstreamConfig {
            upstreams: ups,
            ..UpstreamConfig::default()
        };
        assert!(matches!(
            UpstreamPool::new(cfg(vec![])),
            Err(UpstreamConfigError::NoUpstreams)
        ));
        assert!(matches!(
            UpstreamPool::new(cfg(vec![up("0.0.0.0:53")])),
            Err(UpstreamConfigError::BadAddress(_))
        ));
        assert!(matches!(
            UpstreamPool::new(cfg(vec![up("127.0.0.1:53"), up("127.0.0.1:53")])),
            Err(UpstreamConfigError::Duplicate(_))
        ));
        assert!(matches!(
            UpstreamPool::new(cfg(vec![up("tls://127.0.0.1:853#dns.test")])),
            Err(UpstreamConfigError::MissingTlsRoots)
        ));
        let mut c = cfg(vec![up("127.0.0.1:53")]);
        c.quorum = Some(2);
        assert!(matches!(
            UpstreamPool::new(c),
            Err(UpstreamConfigError::BadQuorum { .. })
        ));
        assert!(UpstreamPool::new(cfg(vec![up("127.0.0.1:53"), up("tcp://127.0.0.1:53")])).is_ok());
    }
}
