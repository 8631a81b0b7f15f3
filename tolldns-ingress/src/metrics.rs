//! Prometheus metrics (prometheus-client), registered into the caller's registry.
//!
//! Labels are closed sets (transport, outcome class, decision, mode): never names, addresses,
//! tickets or keys. Histograms use fixed buckets. Handles for every label value are created up
//! front so that the hot path only bumps atomics.
//!
//! Privacy (DESIGN.md §8): label values come from the closed sets above, never from who asked or
//! what for, so every series aggregates all clients and the set of series is fixed. A small count says that some query of a class
//! happened, never whose. There is no minimum-count suppression of small buckets; see
//! `docs/INGRESS.md` ("Metrics") for the reasoning and the residual case of an edge with very
//! few clients.

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use tolldns_receipts::{RcodeClass, Transport};

use crate::attack::Mode;
use crate::metric_types::{Counter, Gauge};

/// Transport label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, EncodeLabelValue)]
#[allow(non_camel_case_types)]
enum TransportLabel {
    udp,
    tcp,
    dot,
    doh,
    doq,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct TransportSet {
    transport: TransportLabel,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct ResponseSet {
    transport: TransportLabel,
    rcode: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct ResultSet {
    result: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct DecisionSet {
    decision: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct ReasonSet {
    reason: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct ModeSet {
    mode: &'static str,
}

/// Admission decisions, as counted in `tolldns_ingress_admission`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(usize)]
pub enum Decision {
    /// Admitted.
    Allowed = 0,
    /// Over the prefix's rate.
    RateLimited = 1,
    /// Over the global in-flight limit.
    InFlightLimited = 2,
    /// ANY answered per RFC 8482.
    Any = 3,
    /// FORMERR/NOTIMP/BADVERS answered.
    Malformed = 4,
    /// Not even a header: dropped.
    Dropped = 5,
    /// Sent TC=1 (attack mode, unknown prefix over UDP) or oversize for UDP.
    Truncated = 6,
    /// Cache-only policy refused an unknown prefix.
    CacheOnlyRefused = 7,
    /// Refused (class not IN, or no upstream answer allowed).
    Refused = 8,
}

/// Outcomes of a prefetch, as counted in `tolldns_ingress_cache_prefetches`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(usize)]
pub(crate) enum Prefetch {
    /// A refresh was started.
    Started = 0,
    /// A started refresh got no usable answer.
    Failed = 1,
    /// Due, but the bound on concurrent refreshes was reached (or prefetch is off).
    Skipped = 2,
}

const DECISIONS: [&str; 9] = [
    "allowed",
    "rate_limited",
    "in_flight_limited",
    "any",
    "malformed",
    "dropped",
    "truncated",
    "cache_only_refused",
    "refused",
];

const RCODES: [&str; 11] = [
    "unknown",
    "noerror",
    "servfail",
    "refused",
    "nxdomain",
    "nodata",
    "invalid_sig",
    "malformed",
    "upstream_fail",
    "policy_blocked",
    "other",
];

fn transport_index(t: Transport) -> usize {
    match t {
        Transport::Udp => 0,
        Transport::Tcp => 1,
        Transport::Dot => 2,
        Transport::Doq => 4,
        _ => 3,
    }
}

const TRANSPORTS: [TransportLabel; 5] = [
    TransportLabel::udp,
    TransportLabel::tcp,
    TransportLabel::dot,
    TransportLabel::doh,
    TransportLabel::doq,
];

/// Latency buckets in seconds (fixed).
const LATENCY_BUCKETS: [f64; 12] = [
    0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.1, 0.5, 2.0,
];

/// The edge's metric handles.
#[derive(Debug, Clone)]
pub struct Metrics {
    queries: [Counter; 5],
    responses: Vec<[Counter; 11]>,
    latency: [Histogram; 5],
    cache: [Counter; 3],
    prefetches: [Counter; 3],
    upstream: [Counter; 2],
    upstream_rtt: Histogram,
    upstream_connections: [Counter; 2],
    admission: [Counter; 9],
    mode: Gauge,
    transitions: [Counter; 5],
    leaves_recorded: Counter,
    leaves_dropped: Counter,
    batches: Counter,
    leaves_lost: Family<ReasonSet, Counter>,
    leaves_clamped: Counter,
    tcp_connections: Gauge,
    ticket_refusals: [Counter; 12],
    tickets_redeemed: Counter,
    ticketed_queries: Counter,
    ticket_sessions: Gauge,
    tokens_lost: Counter,
    /// Abuse defences: rate limiting by level, UDP response limits, offenders, quorum.
    pub(crate) abuse: crate::rrl::AbuseMetrics,
}

impl Metrics {
    /// Create the metrics and register them under `tolldns_ingress_*`.
    pub fn register(registry: &mut Registry) -> Self {
        let reg = registry.sub_registry_with_prefix("tolldns_ingress");
        let queries_f = Family::<TransportSet, Counter>::default();
        reg.register(
            "queries",
            "Queries received, by transport",
            queries_f.clone(),
        );
        let responses_f = Family::<ResponseSet, Counter>::default();
        reg.register(
            "responses",
            "Responses sent, by transport and outcome class",
            responses_f.clone(),
        );
        let latency_f = Family::<TransportSet, Histogram>::new_with_constructor(|| {
            Histogram::new(LATENCY_BUCKETS)
        });
        reg.register(
            "response_latency_seconds",
            "Time from query receipt to response, by transport",
            latency_f.clone(),
        );
        let cache_f = Family::<ResultSet, Counter>::default();
        reg.register("cache_lookups", "Cache lookups by result", cache_f.clone());
        let prefetch_f = Family::<ResultSet, Counter>::default();
        reg.register(
            "cache_prefetches",
            "Background refreshes of popular entries near expiry: started, failed, or skipped \
             because the concurrency bound was reached",
            prefetch_f.clone(),
        );
        let upstream_f = Family::<ResultSet, Counter>::default();
        reg.register(
            "upstream_queries",
            "Upstream resolutions by result",
            upstream_f.clone(),
        );
        let upstream_rtt = Histogram::new(LATENCY_BUCKETS);
        reg.register(
            "upstream_rtt_seconds",
            "Round-trip time of successful upstream resolutions",
            upstream_rtt.clone(),
        );
        let upstream_conn_f = Family::<ResultSet, Counter>::default();
        reg.register(
            "upstream_connections",
            "TCP, DoT and DoH upstream connections: opened, or reused by a query",
            upstream_conn_f.clone(),
        );
        let upstream_connections = ["opened", "reused"].map(|r| {
            upstream_conn_f
                .get_or_create(&ResultSet { result: r })
                .clone()
        });
        let admission_f = Family::<DecisionSet, Counter>::default();
        reg.register("admission", "Admission decisions", admission_f.clone());
        let mode = Gauge::default();
        reg.register(
            "attack_mode",
            "Attack mode: 0 NORMAL, 1 SUSPICIOUS, 2 UNDER_ATTACK, 3 ISOLATED, 4 RECOVERY",
            mode.clone(),
        );
        let transitions_f = Family::<ModeSet, Counter>::default();
        reg.register(
            "attack_mode_transitions",
            "Attack-mode transitions, by mode entered",
            transitions_f.clone(),
        );
        let leaves_recorded = Counter::default();
        reg.register(
            "receipt_leaves_recorded",
            "Receipt leaves recorded",
            leaves_recorded.clone(),
        );
        let leaves_dropped = Counter::default();
        reg.register(
            "receipt_leaves_dropped",
            "Answered queries whose receipt leaf could not be recorded",
            leaves_dropped.clone(),
        );
        let batches = Counter::default();
        reg.register(
            "receipt_batches",
            "Receipt windows closed into signed batches",
            batches.clone(),
        );
        let leaves_lost = Family::<ReasonSet, Counter>::default();
        reg.register(
            "receipt_leaves_lost",
            "Receipt leaves lost, by reason: refused when recorded (full, late, too_many_windows, invalid) or streamed into a window the sink gave up (abandoned)",
            leaves_lost.clone(),
        );
        let leaves_clamped = Counter::default();
        reg.register(
            "receipt_leaves_clamped",
            "Receipt leaves recorded later than the streaming watermark, given the watermark's time",
            leaves_clamped.clone(),
        );
        let tcp_connections = Gauge::default();
        reg.register(
            "stream_connections",
            "Open TCP, DoT, DoH and DoQ connections",
            tcp_connections.clone(),
        );

        let refusals_f = Family::<ReasonSet, Counter>::default();
        reg.register(
            "ticket_refusals",
            "Toll tickets and session tickets refused, by reason",
            refusals_f.clone(),
        );
        let tickets_redeemed = Counter::default();
        reg.register(
            "tickets_redeemed",
            "Toll-ticket tokens verified and redeemed",
            tickets_redeemed.clone(),
        );
        let ticketed_queries = Counter::default();
        reg.register(
            "ticketed_queries",
            "Queries charged to a toll-ticket session",
            ticketed_queries.clone(),
        );
        let ticket_sessions = Gauge::default();
        reg.register(
            "ticket_sessions",
            "Open toll-ticket sessions",
            ticket_sessions.clone(),
        );
        let tokens_lost = Counter::default();
        reg.register(
            "tickets_tokens_lost",
            "Redeemed tokens that could not be handed to the receipt store",
            tokens_lost.clone(),
        );
        let ticket_refusals = tolldns_tickets::Refusal::ALL.map(|r| {
            refusals_f
                .get_or_create(&ReasonSet { reason: r.name() })
                .clone()
        });
        let queries = TRANSPORTS.map(|t| {
            queries_f
                .get_or_create(&TransportSet { transport: t })
                .clone()
        });
        let latency = TRANSPORTS.map(|t| {
            latency_f
                .get_or_create(&TransportSet { transport: t })
                .clone()
        });
        let responses = TRANSPORTS
            .iter()
            .map(|&t| {
                RCODES.map(|r| {
                    responses_f
                        .get_or_create(&ResponseSet {
                            transport: t,
                            rcode: r,
                        })
                        .clone()
                })
            })
            .collect();
        let cache = ["hit", "stale", "miss"]
            .map(|r| cache_f.get_or_create(&ResultSet { result: r }).clone());
        let prefetches = ["started", "failed", "skipped"]
            .map(|r| prefetch_f.get_or_create(&ResultSet { result: r }).clone());
        let upstream =
            ["ok", "error"].map(|r| upstream_f.get_or_create(&ResultSet { result: r }).clone());
        let admission = DECISIONS.map(|d| {
            admission_f
                .get_or_create(&DecisionSet { decision: d })
                .clone()
        });
        let transitions = Mode::ALL.map(|m| {
            transitions_f
                .get_or_create(&ModeSet { mode: m.as_str() })
                .clone()
        });
        let abuse = crate::rrl::AbuseMetrics::register(reg);
        Self {
            queries,
            responses,
            latency,
            cache,
            prefetches,
            upstream,
            upstream_rtt,
            upstream_connections,
            admission,
            mode,
            transitions,
            leaves_recorded,
            leaves_dropped,
            batches,
            leaves_lost,
            leaves_clamped,
            tcp_connections,
            ticket_refusals,
            tickets_redeemed,
            ticketed_queries,
            ticket_sessions,
            tokens_lost,
            abuse,
        }
    }

    /// Metrics registered nowhere (tests, fuzzing).
    pub fn unregistered() -> Self {
        Self::register(&mut Registry::default())
    }

    pub(crate) fn query(&self, t: Transport) {
        if let Some(c) = self.queries.get(transport_index(t)) {
            c.inc();
        }
    }

    pub(crate) fn response(&self, t: Transport, rcode: RcodeClass, latency_s: f64) {
        let i = transport_index(t);
        if let Some(c) = self
            .responses
            .get(i)
            .and_then(|r| r.get(usize::from(rcode as u8)))
        {
            c.inc();
        }
        if let Some(h) = self.latency.get(i) {
            h.observe(latency_s);
        }
    }

    pub(crate) fn cache(&self, hit: bool, stale: bool) {
        let i = if hit {
            0
        } else if stale {
            1
        } else {
            2
        };
        if let Some(c) = self.cache.get(i) {
            c.inc();
        }
    }

    pub(crate) fn prefetch(&self, outcome: Prefetch) {
        if let Some(c) = self.prefetches.get(outcome as usize) {
            c.inc();
        }
    }

    pub(crate) fn upstream(&self, ok: bool, rtt_s: f64) {
        if ok {
            self.upstream_rtt.observe(rtt_s);
        }
        if let Some(c) = self.upstream.get(usize::from(!ok)) {
            c.inc();
        }
    }

    /// An upstream connection was opened (`reused` false) or a query reused an open one.
    pub(crate) fn upstream_connection(&self, reused: bool) {
        if let Some(c) = self.upstream_connections.get(usize::from(reused)) {
            c.inc();
        }
    }

    pub(crate) fn admission(&self, d: Decision) {
        if let Some(c) = self.admission.get(d as usize) {
            c.inc();
        }
    }

    pub(crate) fn mode(&self, m: Mode) {
        self.mode.set(m as i64);
        if let Some(c) = self.transitions.get(m.index()) {
            c.inc();
        }
    }

    pub(crate) fn leaf(&self, recorded: bool) {
        if recorded {
            self.leaves_recorded.inc();
        } else {
            self.leaves_dropped.inc();
        }
    }

    pub(crate) fn batch(&self) {
        self.batches.inc();
    }

    /// Bring the receipt loss counters up to the recorder's totals (never reset, so the
    /// difference is what happened since the last call).
    pub(crate) fn receipt_totals(&self, losses: &crate::receipts::LeafLosses, clamped: u64) {
        for (reason, n) in losses.by_reason() {
            let c = self.leaves_lost.get_or_create(&ReasonSet { reason });
            c.inc_by(n.saturating_sub(c.get()));
        }
        self.leaves_clamped
            .inc_by(clamped.saturating_sub(self.leaves_clamped.get()));
    }

    pub(crate) fn ticket_refused(&self, reason: tolldns_tickets::Refusal) {
        if let Some(c) = self
            .ticket_refusals
            .get(usize::from(reason.code()).saturating_sub(1))
        {
            c.inc();
        }
    }

    pub(crate) fn ticket_redeemed(&self) {
        self.tickets_redeemed.inc();
    }

    pub(crate) fn ticketed_query(&self) {
        self.ticketed_queries.inc();
    }

    pub(crate) fn ticket_sessions(&self, n: usize) {
        self.ticket_sessions
            .set(i64::try_from(n).unwrap_or(i64::MAX));
    }

    pub(crate) fn token_lost(&self) {
        self.tokens_lost.inc();
    }

    pub(crate) fn connection(&self, open: bool) {
        if open {
            self.tcp_connections.inc();
        } else {
            self.tcp_connections.dec();
        }
    }
}
