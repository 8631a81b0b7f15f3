//! Response-rate limiting and the amplification bound for UDP (sans-IO).
//!
//! A UDP source address can be spoofed, so every UDP answer is also a packet the edge may be
//! made to send to a victim. Two limits apply to every UDP response, per client prefix (the
//! admission prefix, /24 and /56 by default); TCP, DoT and DoH prove the address and are exempt:
//!
//! * **Response-rate limiting (RRL).** Identical responses to one prefix (same question name and
//!   type for answers, same parent name for negative answers, any error for errors) pass at
//!   [`AdmissionConfig::rrl_responses_per_sec`]; past it, every
//!   [`slip`](AdmissionConfig::rrl_slip)-th one is replaced by an empty TC=1 reply (a real client
//!   retries over TCP) and the others are dropped.
//! * **Amplification bound.** Each UDP query from a prefix earns it
//!   [`max_amplification`](AdmissionConfig::max_amplification) × its size in answer credit
//!   (capped at [`amplification_credit_bytes`](AdmissionConfig::amplification_credit_bytes));
//!   every UDP response spends its size. An answer the credit does not cover is replaced by an
//!   empty TC=1 reply (no larger than the query), or dropped when even that is not covered. The
//!   bytes sent to a prefix therefore never exceed `max_amplification` times the bytes received
//!   from it, whatever the timing.
//!
//! Entries live in bounded tables keyed by SipHash with a random per-process key; when full,
//! the oldest entry goes. An evicted entry starts again full (RRL) or empty (credit): eviction
//! never makes a limit looser than the bound above.

use std::collections::hash_map::RandomState;
use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasher, BuildHasherDefault, Hasher};
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Instant;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;

use crate::admission::{AdmissionConfig, Level, Prefix, TokenBucket};
use crate::metric_types::{Counter, Gauge};

/// What kind of response is being limited (part of its RRL identity).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ResponseCategory {
    /// An answer (NOERROR with records): identity is the question name and type.
    Answer,
    /// NXDOMAIN or NODATA: identity is the parent of the question name (one per zone-ish).
    Negative,
    /// Any error (REFUSED, SERVFAIL, FORMERR, …) or a TC=1 reply: one identity per prefix.
    Error,
}

/// One UDP response, as the limits see it.
#[derive(Debug, Clone, Copy)]
pub struct UdpResponse<'a> {
    /// Its kind.
    pub category: ResponseCategory,
    /// The question type.
    pub qtype: u16,
    /// The question name, lowercase wire form.
    pub name: &'a [u8],
    /// Its size in bytes.
    pub len: usize,
    /// The size of its empty TC=1 replacement.
    pub tc_len: usize,
    /// Size of the query to credit first (0 when it was credited with
    /// [`earn`](ResponseLimiter::earn) already).
    pub earned: usize,
}

/// What to do with one UDP response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResponseAction {
    /// Send it.
    Send,
    /// Send an empty TC=1 reply instead.
    Slip(LimitReason),
    /// Send nothing.
    Drop(LimitReason),
}

/// Which limit changed a response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitReason {
    /// Over the identical-response rate.
    Rrl,
    /// Over the prefix's amplification credit.
    Amplification,
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    bucket: TokenBucket,
    limited: u32,
    credit: u64,
}

/// Table keys are already keyed SipHash outputs (unpredictable to a client): the map uses them
/// as they are instead of hashing them again.
#[derive(Debug, Default, Clone, Copy)]
struct KeyHasher(u64);

impl Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

#[derive(Debug, Default)]
struct Shard {
    map: HashMap<u64, Entry, BuildHasherDefault<KeyHasher>>,
    order: VecDeque<u64>,
}

impl Shard {
    fn entry(&mut self, key: u64, cap: usize, fresh: Entry) -> &mut Entry {
        if !self.map.contains_key(&key) {
            while self.map.len() >= cap {
                match self.order.pop_front() {
                    Some(old) => {
                        self.map.remove(&old);
                    }
                    None => break,
                }
            }
            self.order.push_back(key);
        }
        self.map.entry(key).or_insert(fresh)
    }
}

const SHARDS: usize = 16;

/// The UDP response limiter.
#[derive(Debug)]
pub struct ResponseLimiter {
    hasher: RandomState,
    shards: Vec<Mutex<Shard>>,
    per_shard: usize,
    v4_len: u8,
    v6_len: u8,
    rate: u32,
    burst: u32,
    slip: u32,
    factor: u64,
    credit_max: u64,
}

impl ResponseLimiter {
    /// Empty tables with a fresh random key.
    pub fn new(cfg: &AdmissionConfig) -> Self {
        Self {
            hasher: RandomState::new(),
            shards: (0..SHARDS).map(|_| Mutex::new(Shard::default())).collect(),
            per_shard: cfg.rrl_max_entries.div_ceil(SHARDS).max(1),
            v4_len: cfg.ipv4_prefix_len,
            v6_len: cfg.ipv6_prefix_len,
            rate: cfg.rrl_responses_per_sec,
            burst: cfg.rrl_burst.max(cfg.rrl_responses_per_sec).max(1),
            slip: cfg.rrl_slip,
            factor: u64::from(cfg.max_amplification),
            credit_max: u64::from(cfg.amplification_credit_bytes),
        }
    }

    /// Whether any limit is on.
    pub const fn enabled(&self) -> bool {
        self.rate > 0 || self.factor > 0
    }

    fn shard(&self, key: u64) -> &Mutex<Shard> {
        // Bits the maps do not use for bucket index (low bits) nor tag (top seven bits).
        let i = usize::try_from((key >> 32) % SHARDS as u64).unwrap_or(0);
        self.shards.get(i).unwrap_or(&self.shards[0])
    }

    fn budget_key(&self, ip: IpAddr) -> u64 {
        self.hasher
            .hash_one((0u8, Prefix::of(ip, self.v4_len, self.v6_len)))
    }

    fn fresh(&self, now: Instant) -> Entry {
        Entry {
            bucket: TokenBucket::full(self.burst, now),
            limited: 0,
            credit: 0,
        }
    }

    /// A UDP query of `len` bytes arrived from `ip`: credit its prefix.
    pub fn earn(&self, ip: IpAddr, len: usize, now: Instant) {
        if self.factor == 0 {
            return;
        }
        let key = self.budget_key(ip);
        let mut s = self
            .shard(key)
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let fresh = self.fresh(now);
        let e = s.entry(key, self.per_shard, fresh);
        let add = u64::try_from(len)
            .unwrap_or(u64::MAX)
            .saturating_mul(self.factor);
        e.credit = e.credit.saturating_add(add).min(self.credit_max);
    }

    /// Decide about one UDP response to `ip`.
    pub fn check(&self, ip: IpAddr, r: &UdpResponse<'_>, now: Instant) -> ResponseAction {
        let (category, qtype, name, len, tc_len) = (r.category, r.qtype, r.name, r.len, r.tc_len);
        let mut action = ResponseAction::Send;
        if self.rate > 0 {
            let prefix = Prefix::of(ip, self.v4_len, self.v6_len);
            let key = match category {
                ResponseCategory::Answer => self.hasher.hash_one((1u8, prefix, qtype, name)),
                ResponseCategory::Negative => self.hasher.hash_one((2u8, prefix, parent(name))),
                ResponseCategory::Error => self.hasher.hash_one((3u8, prefix)),
            };
            let mut s = self
                .shard(key)
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let fresh = self.fresh(now);
            let e = s.entry(key, self.per_shard, fresh);
            if !e.bucket.try_take(now, self.rate, self.burst) {
                e.limited = e.limited.wrapping_add(1);
                action = if self.slip > 0 && e.limited % self.slip == 0 {
                    ResponseAction::Slip(LimitReason::Rrl)
                } else {
                    ResponseAction::Drop(LimitReason::Rrl)
                };
            }
        }
        if self.factor == 0 {
            return action;
        }
        let key = self.budget_key(ip);
        let mut s = self
            .shard(key)
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let fresh = self.fresh(now);
        let e = s.entry(key, self.per_shard, fresh);
        if r.earned > 0 {
            let add = u64::try_from(r.earned)
                .unwrap_or(u64::MAX)
                .saturating_mul(self.factor);
            e.credit = e.credit.saturating_add(add).min(self.credit_max);
        }
        if matches!(action, ResponseAction::Drop(_)) {
            return action;
        }
        let tc = u64::try_from(tc_len).unwrap_or(u64::MAX);
        let cost = match action {
            ResponseAction::Send => u64::try_from(len).unwrap_or(u64::MAX),
            _ => tc,
        };
        if e.credit >= cost {
            e.credit -= cost;
            return action;
        }
        if e.credit >= tc {
            e.credit -= tc;
            return ResponseAction::Slip(LimitReason::Amplification);
        }
        ResponseAction::Drop(LimitReason::Amplification)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct LimitSet {
    limit: &'static str,
    action: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct LevelSet {
    level: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct QuorumSet {
    result: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct CookieSet {
    result: &'static str,
}

/// Metrics of the abuse defences (registered with the edge's other metrics).
#[derive(Debug, Clone)]
pub(crate) struct AbuseMetrics {
    rate_limited: [Counter; 3],
    udp_limited: [Counter; 4],
    quorum: [Counter; 2],
    cookies: [Counter; 3],
    offenders: Gauge,
}

impl AbuseMetrics {
    pub(crate) fn register(reg: &mut Registry) -> Self {
        let levels = Family::<LevelSet, Counter>::default();
        reg.register(
            "rate_limited",
            "Queries refused for a prefix's rate, by the level of the hierarchy that refused \
             (prefix: /24 or /56, parent: /16 or /48, top: /32)",
            levels.clone(),
        );
        let limits = Family::<LimitSet, Counter>::default();
        reg.register(
            "udp_response_limited",
            "UDP responses not sent as answered: replaced by an empty TC=1 reply (slipped) or \
             not sent (dropped), by limit (rrl: identical responses, amplification: answer \
             credit)",
            limits.clone(),
        );
        let quorum = Family::<QuorumSet, Counter>::default();
        reg.register(
            "quorum_answers",
            "Quorum-mode answers: agreed (cached) or disagreed (answered, not cached)",
            quorum.clone(),
        );
        let cookies = Family::<CookieSet, Counter>::default();
        reg.register(
            "udp_cookies",
            "UDP queries with a DNS cookie, by what it showed: client_only (first contact), \
             valid (a server cookie issued to this address: exempt from the UDP response \
             limits), invalid (forged, expired or for another address: limited as usual)",
            cookies.clone(),
        );
        let offenders = Gauge::default();
        reg.register(
            "offending_prefixes",
            "Prefixes (any level) currently given the offender treatment, as of the last sweep",
            offenders.clone(),
        );
        Self {
            rate_limited: [Level::Prefix, Level::Parent, Level::Top].map(|l| {
                levels
                    .get_or_create(&LevelSet { level: l.as_str() })
                    .clone()
            }),
            udp_limited: [
                ("rrl", "slipped"),
                ("rrl", "dropped"),
                ("amplification", "slipped"),
                ("amplification", "dropped"),
            ]
            .map(|(limit, action)| limits.get_or_create(&LimitSet { limit, action }).clone()),
            quorum: ["agreed", "disagreed"]
                .map(|r| quorum.get_or_create(&QuorumSet { result: r }).clone()),
            cookies: ["client_only", "valid", "invalid"]
                .map(|r| cookies.get_or_create(&CookieSet { result: r }).clone()),
            offenders,
        }
    }

    pub(crate) fn rate_limited(&self, level: Level) {
        if let Some(c) = self.rate_limited.get(level as usize) {
            c.inc();
        }
    }

    pub(crate) fn udp_limited(&self, action: ResponseAction) {
        let i = match action {
            ResponseAction::Send => return,
            ResponseAction::Slip(LimitReason::Rrl) => 0,
            ResponseAction::Drop(LimitReason::Rrl) => 1,
            ResponseAction::Slip(LimitReason::Amplification) => 2,
            ResponseAction::Drop(LimitReason::Amplification) => 3,
        };
        if let Some(c) = self.udp_limited.get(i) {
            c.inc();
        }
    }

    pub(crate) fn cookie(&self, check: crate::cookies::CookieCheck) {
        use crate::cookies::CookieCheck;
        let i = match check {
            CookieCheck::None => return,
            CookieCheck::ClientOnly => 0,
            CookieCheck::Valid => 1,
            CookieCheck::Invalid => 2,
        };
        if let Some(c) = self.cookies.get(i) {
            c.inc();
        }
    }

    pub(crate) fn quorum(&self, agreed: bool) {
        if let Some(c) = self.quorum.get(usize::from(!agreed)) {
            c.inc();
        }
    }

    pub(crate) fn offenders(&self, n: usize) {
        self.offenders.set(i64::try_from(n).unwrap_or(i64::MAX));
    }
}

/// The name without its first label (the root stays the root).
fn parent(name: &[u8]) -> &[u8] {
    match name.first() {
        Some(&n) if n > 0 => name.get(usize::from(n) + 1..).unwrap_or(&[]),
        _ => name,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    const NAME: &[u8] = b"\x03www\x04test\x00";

    /// An A answer of `len` bytes to `NAME`, its TC=1 form `tc_len` bytes, `earned` query
    /// bytes credited first.
    fn answer(len: usize, tc_len: usize, earned: usize) -> UdpResponse<'static> {
        UdpResponse {
            category: ResponseCategory::Answer,
            qtype: 1,
            name: NAME,
            len,
            tc_len,
            earned,
        }
    }

    #[test]
    fn identical_responses_slip_and_drop() {
        let cfg = AdmissionConfig {
            rrl_responses_per_sec: 5,
            rrl_burst: 5,
            rrl_slip: 2,
            max_amplification: 0,
            ..AdmissionConfig::default()
        };
        let l = ResponseLimiter::new(&cfg);
        let t0 = Instant::now();
        let a = ip("192.0.2.1");
        let mut counts = [0u32; 3];
        for _ in 0..105 {
            let i = match l.check(a, &answer(100, 30, 0), t0) {
                ResponseAction::Send => 0,
                ResponseAction::Slip(LimitReason::Rrl) => 1,
                _ => 2,
            };
            counts[i] += 1;
        }
        assert_eq!(counts, [5, 50, 50]);
        // Another name, another prefix: their own budgets.
        let other = b"\x01b\x04test\x00";
        assert_eq!(
            l.check(
                a,
                &UdpResponse {
                    category: ResponseCategory::Answer,
                    qtype: 1,
                    name: other,
                    len: 100,
                    tc_len: 30,
                    earned: 0,
                },
                t0
            ),
            ResponseAction::Send
        );
        assert_eq!(
            l.check(ip("192.0.3.1"), &answer(100, 30, 0), t0),
            ResponseAction::Send
        );
        // Same /24: same budget.
        assert_ne!(
            l.check(ip("192.0.2.77"), &answer(100, 30, 0), t0),
            ResponseAction::Send
        );
    }

    #[test]
    fn bytes_sent_never_exceed_the_factor_times_bytes_received() {
        let cfg = AdmissionConfig {
            rrl_responses_per_sec: 0,
            max_amplification: 3,
            ..AdmissionConfig::default()
        };
        let l = ResponseLimiter::new(&cfg);
        let t0 = Instant::now();
        let victim = ip("198.51.100.9");
        let (mut received, mut sent, mut slipped) = (0u64, 0u64, 0u32);
        for i in 0..1000u32 {
            let q = 30 + (i % 7) as usize;
            l.earn(victim, q, t0);
            received += q as u64;
            match l.check(
                victim,
                &UdpResponse {
                    category: ResponseCategory::Answer,
                    qtype: 16,
                    name: NAME,
                    len: 1200,
                    tc_len: q,
                    earned: 0,
                },
                t0,
            ) {
                ResponseAction::Send => sent += 1200,
                ResponseAction::Slip(_) => {
                    sent += q as u64;
                    slipped += 1;
                }
                ResponseAction::Drop(_) => {}
            }
            assert!(sent <= 3 * received);
        }
        assert!(slipped > 500, "large answers went TC ({slipped})");
        // Small answers within the factor all go out.
        let client = ip("203.0.113.5");
        for _ in 0..100 {
            l.earn(client, 40, t0);
            assert_eq!(
                l.check(client, &answer(100, 40, 0), t0),
                ResponseAction::Send
            );
        }
    }

    #[test]
    fn a_query_credited_with_its_answer_pays_for_it() {
        let l = ResponseLimiter::new(&AdmissionConfig::default());
        let t0 = Instant::now();
        let r = |earned| UdpResponse {
            category: ResponseCategory::Answer,
            qtype: 1,
            name: NAME,
            len: 100,
            tc_len: 40,
            earned,
        };
        // No credit yet: the 100-byte answer is not covered, nor its TC reply.
        let fresh = ip("192.0.2.200");
        assert_eq!(
            l.check(fresh, &r(0), t0),
            ResponseAction::Drop(LimitReason::Amplification)
        );
        // Credited with its 40-byte query (120 bytes): sent.
        let other = ip("198.51.100.200");
        assert_eq!(l.check(other, &r(40), t0), ResponseAction::Send);
    }

    #[test]
    fn negative_answers_share_the_parent_identity() {
        assert_eq!(parent(NAME), b"\x04test\x00");
        assert_eq!(parent(b"\x00"), b"\x00");
        assert_eq!(parent(b"\x09ab"), b"");
    }
}
