//! Admission control ("toll booth"): hierarchical token buckets per source prefix in bounded
//! tables.
//!
//! Sans-IO: every operation takes an explicit `now`. The async shell owns the clock.
//!
//! * **Hierarchy.** A query takes one token from its prefix (IPv4 /24, IPv6 /56 by default)
//!   *and* from every enclosing prefix (IPv4 /16; IPv6 /48 and /32), whose buckets are
//!   [`AdmissionConfig::parent_factor`] and [`AdmissionConfig::top_factor`] times larger. A
//!   parent bounds the sum of its children: a /48 cannot collect 256 independent /56 budgets.
//! * **Keyed shards.** The shard of a prefix is chosen by SipHash with a random key drawn when
//!   the limiter is built, so a spoofed flood cannot aim at one shard.
//! * **No shared overflow bucket; eviction favours established prefixes.** Every prefix gets its
//!   own bucket. A full table makes room by evicting: a new prefix enters *on probation*; a
//!   prefix seen again once it is [known](AdmissionConfig::known_prefix_after_secs) is
//!   *protected*. A newcomer evicts the oldest entry on probation (newcomers only ever evict
//!   newcomers); protected entries are evicted only when nothing is on probation, youngest
//!   first, and at most [`AdmissionConfig::protected_pct`] of the table is protected (a
//!   promotion past it sends the youngest protected entry back to probation). A flood of
//!   spoofed one-shot sources therefore churns the probation segment and never displaces the
//!   clients that were established before it.
//! * **Offenders.** A prefix (at any level) that runs out of tokens is marked *offending* for a
//!   while; the engine applies the attack-mode treatment to offending prefixes only, instead of
//!   switching the whole edge into an attack mode.

use std::collections::hash_map::RandomState;
use std::collections::{HashMap, VecDeque};
use std::hash::BuildHasher;
use std::net::IpAddr;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde::Deserialize;

/// A token bucket over an explicit clock. Tokens are kept in billionths so that refills at any
/// rate stay exact integers.
#[derive(Debug, Clone, Copy)]
pub struct TokenBucket {
    nano_tokens: u64,
    last: Instant,
}

const NANO: u64 = 1_000_000_000;

impl TokenBucket {
    /// A full bucket of `burst` tokens at `now`.
    pub fn full(burst: u32, now: Instant) -> Self {
        Self {
            nano_tokens: u64::from(burst).saturating_mul(NANO),
            last: now,
        }
    }

    /// Refill at `rate` tokens per second up to `burst` (no token taken).
    pub fn refill(&mut self, now: Instant, rate: u32, burst: u32) {
        let cap = u64::from(burst.max(1)).saturating_mul(NANO);
        let elapsed = now.saturating_duration_since(self.last);
        // Clamp the elapsed time so the product cannot overflow (an hour refills any bucket).
        let ns = u64::try_from(elapsed.min(Duration::from_secs(3600)).as_nanos()).unwrap_or(0);
        let add = ns.saturating_mul(u64::from(rate));
        self.nano_tokens = self.nano_tokens.saturating_add(add).min(cap);
        if now > self.last {
            self.last = now;
        }
    }

    /// Whether a whole token is available (after the last refill).
    pub const fn has_token(&self) -> bool {
        self.nano_tokens >= NANO
    }

    /// Take one token if there is one.
    pub fn take(&mut self) -> bool {
        if self.has_token() {
            self.nano_tokens = self.nano_tokens.saturating_sub(NANO);
            true
        } else {
            false
        }
    }

    /// Refill at `rate` tokens per second up to `burst`, then take one token if there is one.
    pub fn try_take(&mut self, now: Instant, rate: u32, burst: u32) -> bool {
        self.refill(now, rate, burst);
        self.take()
    }

    /// Whether the bucket would be full at `now` (its entry carries no state worth keeping).
    pub fn is_full_at(&self, now: Instant, rate: u32, burst: u32) -> bool {
        let mut probe = *self;
        let cap = u64::from(burst.max(1)).saturating_mul(NANO);
        probe.refill(now, rate, burst);
        probe.nano_tokens >= cap
    }
}

/// A client prefix: the source address with its host bits cleared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Prefix {
    /// IPv4 network (address bits, masked).
    V4(u32),
    /// IPv6 network (address bits, masked).
    V6(u128),
}

impl Prefix {
    /// The prefix of `ip` at `/v4_len` or `/v6_len`. IPv4-mapped IPv6 addresses count as IPv4.
    pub fn of(ip: IpAddr, v4_len: u8, v6_len: u8) -> Self {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 @ IpAddr::V4(_) => v4,
        };
        match ip {
            IpAddr::V4(v4) => {
                let len = u32::from(v4_len.min(32));
                let mask = u32::MAX.checked_shl(32u32.saturating_sub(len)).unwrap_or(0);
                Self::V4(u32::from(v4) & mask)
            }
            IpAddr::V6(v6) => {
                let len = u32::from(v6_len.min(128));
                let mask = u128::MAX
                    .checked_shl(128u32.saturating_sub(len))
                    .unwrap_or(0);
                Self::V6(u128::from(v6) & mask)
            }
        }
    }

    /// Whether this is an IPv4 prefix.
    pub const fn is_v4(&self) -> bool {
        matches!(self, Self::V4(_))
    }
}

/// Admission settings.
///
/// Every key has a default chosen for a public edge; `docs/ABUSE.md` explains each one.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AdmissionConfig {
    /// Sustained queries per second allowed to one source prefix in NORMAL mode (default
    /// 2 000).
    pub rate_per_prefix: u32,
    /// Burst (bucket size) per source prefix in NORMAL mode (default 4 000).
    pub burst_per_prefix: u32,
    /// Prefix length grouping IPv4 sources (default 24).
    pub ipv4_prefix_len: u8,
    /// Prefix length grouping IPv6 sources (default 56).
    pub ipv6_prefix_len: u8,
    /// Length of the IPv4 parent prefix whose bucket bounds the sum of its children (default
    /// 16; 0 turns the level off).
    pub ipv4_parent_prefix_len: u8,
    /// Length of the IPv6 parent prefix (default 48; 0 turns the level off).
    pub ipv6_parent_prefix_len: u8,
    /// Length of the IPv6 top prefix above the parent (default 32; 0 turns the level off).
    pub ipv6_top_prefix_len: u8,
    /// Rate and burst of a parent bucket (IPv4 /16, IPv6 /48), in multiples of the per-prefix
    /// values (default 8: a /16 or /48 gets eight prefixes' worth, not 256).
    pub parent_factor: u32,
    /// Rate and burst of an IPv6 top bucket (/32), in multiples of the per-prefix values
    /// (default 32).
    pub top_factor: u32,
    /// Most prefixes tracked at once per level (default 100 000). A full table evicts (see the
    /// module documentation): never into a shared bucket.
    pub max_prefixes: usize,
    /// Share (percent) of each table that established (*known*) prefixes may hold; the rest is
    /// the probation segment newcomers churn through (default 75).
    pub protected_pct: u8,
    /// Queries waiting on an upstream at once, over all transports. Past it, SERVFAIL (default
    /// 10 000).
    pub max_in_flight: usize,
    /// Largest response sent over TCP, DoT or DoH (bytes, at most 65535; default 65 535).
    pub max_response_size: usize,
    /// Upper bound on the UDP payload size honoured from a client's EDNS (bytes; default
    /// 1 232).
    pub max_udp_response_size: usize,
    /// Seconds a prefix must have been seen before it counts as *known* (default 60). Attack
    /// treatment may serve unknown prefixes TC=1 or from the cache only; known prefixes are
    /// protected from eviction.
    pub known_prefix_after_secs: u64,
    /// Seconds without a query after which a known prefix is forgotten (default 3 600).
    pub known_prefix_idle_secs: u64,
    /// Response-rate limiting: identical UDP responses per second to one client prefix
    /// (default 100; 0 turns it off). Identical means same question name and type for
    /// positive answers, same parent name for negative answers, any error for errors.
    pub rrl_responses_per_sec: u32,
    /// Burst of identical UDP responses to one prefix (default 500).
    pub rrl_burst: u32,
    /// Of the UDP responses over the RRL rate, every `slip`-th is sent as an empty TC=1 reply
    /// (a real client retries over TCP), the others are dropped (default 2; 0 drops all, 1
    /// truncates all).
    pub rrl_slip: u32,
    /// Amplification bound over UDP: the bytes answered to a client prefix never exceed this
    /// many times the bytes it sent (default 3; 0 turns the bound off). An answer that does not
    /// fit is replaced by an empty TC=1 reply (the client retries over TCP).
    pub max_amplification: u32,
    /// Most unspent answer credit a prefix can accumulate under the amplification bound (bytes,
    /// default 16 384).
    pub amplification_credit_bytes: u32,
    /// Response-rate-limiting entries tracked at once (identities and prefix budgets; default
    /// 200 000). Oldest first out: an evicted entry starts again full, never stricter.
    pub rrl_max_entries: usize,
}

impl Default for AdmissionConfig {
    fn default() -> Self {
        Self {
            rate_per_prefix: 2_000,
            burst_per_prefix: 4_000,
            ipv4_prefix_len: 24,
            ipv6_prefix_len: 56,
            ipv4_parent_prefix_len: 16,
            ipv6_parent_prefix_len: 48,
            ipv6_top_prefix_len: 32,
            parent_factor: 8,
            top_factor: 32,
            max_prefixes: 100_000,
            protected_pct: 75,
            max_in_flight: 10_000,
            max_response_size: 65_535,
            max_udp_response_size: 1_232,
            known_prefix_after_secs: 60,
            known_prefix_idle_secs: 3_600,
            rrl_responses_per_sec: 100,
            rrl_burst: 500,
            rrl_slip: 2,
            max_amplification: 3,
            amplification_credit_bytes: 16_384,
            rrl_max_entries: 200_000,
        }
    }
}

/// Which bucket of the hierarchy refused a query.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Level {
    /// The source's own prefix (/24, /56).
    Prefix = 0,
    /// The parent prefix (/16, /48).
    Parent = 1,
    /// The IPv6 top prefix (/32).
    Top = 2,
}

impl Level {
    /// Lower-case name (`prefix`, `parent`, `top`).
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Prefix => "prefix",
            Self::Parent => "parent",
            Self::Top => "top",
        }
    }
}

/// The limits of one check (the mode's scaled rate and burst, and the offender policy).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Per-prefix tokens per second.
    pub rate: u32,
    /// Per-prefix bucket size.
    pub burst: u32,
    /// Rate and burst of an offending prefix, in thousandths of `rate` and `burst`.
    pub offender_permille: u32,
    /// How long a prefix stays offending after its last refused query.
    pub offender_for: Duration,
    /// The current attack-mode tick (distinct offenders are counted once per tick).
    pub tick: u64,
}

impl Limits {
    /// Plain limits: no offender scaling, offenders marked for a minute.
    pub const fn new(rate: u32, burst: u32) -> Self {
        Self {
            rate,
            burst,
            offender_permille: 1000,
            offender_for: Duration::from_secs(60),
            tick: 0,
        }
    }
}

/// What the limiter says about one query.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verdict {
    /// A token was available at every level.
    pub allowed: bool,
    /// The prefix was first seen at least `known_prefix_after_secs` ago.
    pub known: bool,
    /// The prefix, or a prefix enclosing it, is offending (refused recently).
    pub offending: bool,
    /// The level that refused the query, when it was refused.
    pub limited_by: Option<Level>,
    /// This refusal is the first of its prefix in the current tick (a distinct offender).
    pub new_offender: bool,
}

impl Verdict {
    /// An admitted, known, non-offending query (ticketed queries).
    pub const fn trusted() -> Self {
        Self {
            allowed: true,
            known: true,
            offending: false,
            limited_by: None,
            new_offender: false,
        }
    }
}

/// A table key: the prefix, and whether the queries it counts came over a transport that
/// proves the source address (TCP, DoT, DoH, DoQ). Proven and unproven traffic of a prefix have
/// separate buckets, so a spoofed UDP flood can exhaust the UDP budget of a victim's prefix but
/// never the budget its clients fall back to over TCP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct Key {
    proven: bool,
    prefix: Prefix,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Segment {
    Probation,
    Protected,
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    bucket: TokenBucket,
    first_seen: Instant,
    last_seen: Instant,
    offending_until: Option<Instant>,
    limited_tick: Option<u64>,
    segment: Segment,
    stamp: u64,
}

impl Entry {
    fn offending(&self, now: Instant) -> bool {
        self.offending_until.is_some_and(|t| now < t)
    }
}

#[derive(Debug, Default)]
struct Shard {
    map: HashMap<Key, Entry>,
    /// Probation entries, oldest first (stale pairs skipped lazily).
    probation: VecDeque<(Key, u64)>,
    /// Protected entries in promotion order, youngest last (stale pairs skipped lazily).
    protected: VecDeque<(Key, u64)>,
    protected_len: usize,
    next_stamp: u64,
}

impl Shard {
    fn stamp(&mut self) -> u64 {
        self.next_stamp = self.next_stamp.wrapping_add(1);
        self.next_stamp
    }

    fn live(&self, p: &Key, stamp: u64, segment: Segment) -> bool {
        self.map
            .get(p)
            .is_some_and(|e| e.stamp == stamp && e.segment == segment)
    }

    fn evict_oldest_probation(&mut self) -> bool {
        while let Some((p, stamp)) = self.probation.pop_front() {
            if self.live(&p, stamp, Segment::Probation) {
                self.map.remove(&p);
                return true;
            }
        }
        false
    }

    fn pop_youngest_protected(&mut self) -> Option<Key> {
        while let Some((p, stamp)) = self.protected.pop_back() {
            if self.live(&p, stamp, Segment::Protected) {
                self.protected_len = self.protected_len.saturating_sub(1);
                return Some(p);
            }
        }
        None
    }

    /// Make room for one entry.
    fn evict_one(&mut self) {
        if self.evict_oldest_probation() {
            return;
        }
        if let Some(p) = self.pop_youngest_protected() {
            self.map.remove(&p);
        }
    }

    fn promote(&mut self, p: Key, protected_cap: usize) {
        if self.protected_len >= protected_cap {
            // The youngest protected entry goes back to probation (bucket kept).
            if let Some(young) = self.pop_youngest_protected() {
                let stamp = self.stamp();
                if let Some(e) = self.map.get_mut(&young) {
                    e.segment = Segment::Probation;
                    e.stamp = stamp;
                }
                self.probation.push_back((young, stamp));
            }
        }
        let stamp = self.stamp();
        if let Some(e) = self.map.get_mut(&p) {
            e.segment = Segment::Protected;
            e.stamp = stamp;
            self.protected.push_back((p, stamp));
            self.protected_len = self.protected_len.saturating_add(1);
        }
    }

    /// Drop stale queue pairs once the queues grow past `bound`.
    fn compact(&mut self, bound: usize) {
        if self.probation.len() > bound {
            let map = &self.map;
            self.probation.retain(|(p, s)| {
                map.get(p)
                    .is_some_and(|e| e.stamp == *s && e.segment == Segment::Probation)
            });
        }
        if self.protected.len() > bound {
            let map = &self.map;
            self.protected.retain(|(p, s)| {
                map.get(p)
                    .is_some_and(|e| e.stamp == *s && e.segment == Segment::Protected)
            });
        }
    }
}

const SHARDS: usize = 16;

/// One level of the hierarchy: a bounded, sharded table.
#[derive(Debug)]
struct Table {
    shards: Vec<Mutex<Shard>>,
    per_shard: usize,
    protected_cap: usize,
    /// Rate and burst multiplier of this level.
    factor: u32,
    v4_len: u8,
    v6_len: u8,
    level: Level,
}

/// The state of one level's entry after a refill, before any token is taken.
#[derive(Debug, Clone, Copy)]
struct Probe {
    has_token: bool,
    known: bool,
    offending: bool,
}

impl Table {
    fn new(level: Level, cfg: &AdmissionConfig, factor: u32, v4_len: u8, v6_len: u8) -> Self {
        let per_shard = cfg.max_prefixes.div_ceil(SHARDS).max(2);
        let protected_cap = (per_shard * usize::from(cfg.protected_pct.min(100)) / 100)
            .min(per_shard.saturating_sub(1));
        Self {
            shards: (0..SHARDS).map(|_| Mutex::new(Shard::default())).collect(),
            per_shard,
            protected_cap,
            factor: factor.max(1),
            v4_len,
            v6_len,
            level,
        }
    }

    /// Whether this level applies to the address family of `leaf`.
    const fn applies(&self, leaf: &Prefix) -> bool {
        match leaf {
            Prefix::V4(_) => self.v4_len > 0,
            Prefix::V6(_) => self.v6_len > 0,
        }
    }

    fn shard(&self, hasher: &RandomState, p: &Key) -> &Mutex<Shard> {
        let h = hasher.hash_one((self.level as u8, p));
        let i = usize::try_from(h % SHARDS as u64).unwrap_or(0);
        // `i < SHARDS == shards.len()`.
        self.shards.get(i).unwrap_or(&self.shards[0])
    }

    fn scaled(&self, v: u32) -> u32 {
        v.saturating_mul(self.factor)
    }

    /// Find or create the entry of `p` (evicting when full), refill it and report its state.
    fn probe(
        &self,
        s: &mut Shard,
        p: Key,
        now: Instant,
        lim: &Limits,
        known_after: Duration,
    ) -> Probe {
        if !s.map.contains_key(&p) {
            while s.map.len() >= self.per_shard {
                let before = s.map.len();
                s.evict_one();
                if s.map.len() == before {
                    break;
                }
            }
            let stamp = s.stamp();
            s.map.insert(
                p,
                Entry {
                    bucket: TokenBucket::full(self.scaled(lim.burst), now),
                    first_seen: now,
                    last_seen: now,
                    offending_until: None,
                    limited_tick: None,
                    segment: Segment::Probation,
                    stamp,
                },
            );
            s.probation.push_back((p, stamp));
            s.compact(self.per_shard.saturating_mul(4));
        }
        let Some(e) = s.map.get_mut(&p) else {
            return Probe {
                has_token: false,
                known: false,
                offending: false,
            };
        };
        let offending = e.offending(now);
        let (rate, burst) = rate_burst(
            self.scaled(lim.rate),
            self.scaled(lim.burst),
            offending,
            lim,
        );
        e.bucket.refill(now, rate, burst);
        e.last_seen = now;
        let known = now.saturating_duration_since(e.first_seen) >= known_after;
        let promote = known && e.segment == Segment::Probation;
        let probe = Probe {
            has_token: e.bucket.has_token(),
            known,
            offending,
        };
        if promote {
            s.promote(p, self.protected_cap);
        }
        probe
    }

    /// Mark `p` offending; true when this is its first refusal in the tick.
    fn mark(s: &mut Shard, p: &Key, now: Instant, lim: &Limits) -> bool {
        let Some(e) = s.map.get_mut(p) else {
            return false;
        };
        e.offending_until = Some(now + lim.offender_for);
        let first = e.limited_tick != Some(lim.tick);
        e.limited_tick = Some(lim.tick);
        first
    }

    fn sweep(
        &self,
        now: Instant,
        lim: &Limits,
        idle_new: Duration,
        idle_known: Duration,
    ) -> (usize, usize) {
        let mut offending = 0usize;
        let mut tracked = 0usize;
        for shard in &self.shards {
            let mut s = shard
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let (rate, burst) = (self.scaled(lim.rate), self.scaled(lim.burst));
            s.map.retain(|_, e| {
                if e.offending(now) {
                    return true;
                }
                match e.segment {
                    // A newcomer is kept while it may still become known.
                    Segment::Probation => {
                        !e.bucket.is_full_at(now, rate, burst)
                            || now.saturating_duration_since(e.last_seen) < idle_new
                    }
                    Segment::Protected => now.saturating_duration_since(e.last_seen) < idle_known,
                }
            });
            s.protected_len = s
                .map
                .values()
                .filter(|e| e.segment == Segment::Protected)
                .count();
            offending += s.map.values().filter(|e| e.offending(now)).count();
            tracked += s.map.len();
            s.compact(0);
        }
        (tracked, offending)
    }

    fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().map_or(0, |s| s.map.len()))
            .sum()
    }

    fn contains(&self, hasher: &RandomState, p: &Key) -> Option<bool> {
        let s = self
            .shard(hasher, p)
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        s.map.get(p).map(|e| e.segment == Segment::Protected)
    }
}

fn rate_burst(rate: u32, burst: u32, offending: bool, lim: &Limits) -> (u32, u32) {
    if offending {
        (
            permille(rate, lim.offender_permille),
            permille(burst, lim.offender_permille),
        )
    } else {
        (rate.max(1), burst.max(1))
    }
}

fn permille(v: u32, permille: u32) -> u32 {
    let s = u64::from(v).saturating_mul(u64::from(permille)) / 1000;
    u32::try_from(s).unwrap_or(u32::MAX).max(1)
}

/// What a sweep found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SweepReport {
    /// Entries kept, over every level.
    pub tracked: usize,
    /// Entries currently offending, over every level.
    pub offending: usize,
}

/// Hierarchical token buckets per source prefix in bounded, keyed-hash sharded tables.
#[derive(Debug)]
pub struct PrefixLimiter {
    hasher: RandomState,
    levels: [Table; 3],
    v4_len: u8,
    v6_len: u8,
    known_after: Duration,
    idle_known: Duration,
}

impl PrefixLimiter {
    /// Empty tables with a fresh random shard key.
    pub fn new(config: &AdmissionConfig, _now: Instant) -> Self {
        let v4 = config.ipv4_prefix_len.min(32);
        let v6 = config.ipv6_prefix_len.min(128);
        // A parent only makes sense strictly above its child.
        let v4p = if config.ipv4_parent_prefix_len < v4 {
            config.ipv4_parent_prefix_len
        } else {
            0
        };
        let v6p = if config.ipv6_parent_prefix_len < v6 {
            config.ipv6_parent_prefix_len
        } else {
            0
        };
        let v6_above = if v6p > 0 { v6p } else { v6 };
        let v6t = if config.ipv6_top_prefix_len < v6_above {
            config.ipv6_top_prefix_len
        } else {
            0
        };
        Self {
            hasher: RandomState::new(),
            levels: [
                Table::new(Level::Prefix, config, 1, v4, v6),
                Table::new(Level::Parent, config, config.parent_factor, v4p, v6p),
                Table::new(Level::Top, config, config.top_factor, 0, v6t),
            ],
            v4_len: v4,
            v6_len: v6,
            known_after: Duration::from_secs(config.known_prefix_after_secs),
            idle_known: Duration::from_secs(config.known_prefix_idle_secs.max(1)),
        }
    }

    /// Take a token for a query from `ip` at `now` from its prefix and every enclosing prefix,
    /// or none when any of them is empty (the one that refused is marked offending).
    ///
    /// `proven` says the query came over a transport that proves its source address (TCP,
    /// DoT, DoH, DoQ): such queries are counted in separate buckets from UDP's, so a spoofed UDP
    /// flood in a client's name cannot take away its TCP fallback.
    pub fn check(&self, ip: IpAddr, proven: bool, now: Instant, lim: &Limits) -> Verdict {
        let leaf = Prefix::of(ip, self.v4_len, self.v6_len);
        let mut keys: [Option<Key>; 3] = [None; 3];
        for (k, t) in keys.iter_mut().zip(&self.levels) {
            if t.applies(&leaf) {
                *k = Some(Key {
                    proven,
                    prefix: Prefix::of(ip, t.v4_len, t.v6_len),
                });
            }
        }
        // Locks in level order (prefix, parent, top): a fixed order, no deadlock.
        let mut guards: [Option<(Key, &Table, MutexGuard<'_, Shard>)>; 3] = [None, None, None];
        for ((g, k), t) in guards.iter_mut().zip(&keys).zip(&self.levels) {
            if let Some(p) = k {
                *g = Some((
                    *p,
                    t,
                    t.shard(&self.hasher, p)
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner),
                ));
            }
        }
        let mut verdict = Verdict {
            allowed: true,
            known: false,
            offending: false,
            limited_by: None,
            new_offender: false,
        };
        for (i, (p, t, s)) in guards.iter_mut().flatten().enumerate() {
            let probe = t.probe(s, *p, now, lim, self.known_after);
            if i == 0 {
                verdict.known = probe.known;
            }
            verdict.offending |= probe.offending;
            if verdict.allowed && !probe.has_token {
                verdict.allowed = false;
                verdict.limited_by = Some(t.level);
                verdict.new_offender = Table::mark(s, p, now, lim);
                verdict.offending = true;
            }
        }
        if verdict.allowed {
            for (p, _, s) in guards.iter_mut().flatten() {
                if let Some(e) = s.map.get_mut(p) {
                    e.bucket.take();
                }
            }
        }
        verdict
    }

    /// Forget entries that carry nothing worth keeping: prefixes on probation whose bucket is
    /// full again and that were not seen for `known_prefix_after_secs` (they could not become
    /// known anyway), and known prefixes idle for `known_prefix_idle_secs`. Offending entries stay
    /// until their mark expires.
    pub fn sweep(&self, now: Instant, lim: &Limits) -> SweepReport {
        let mut r = SweepReport::default();
        for t in &self.levels {
            let (tracked, offending) = t.sweep(now, lim, self.known_after, self.idle_known);
            r.tracked += tracked;
            r.offending += offending;
        }
        r
    }

    /// Source prefixes tracked (the first level only).
    pub fn len(&self) -> usize {
        self.levels[0].len()
    }

    /// Whether no source prefix is tracked.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether the prefix of `ip` is tracked for `proven` (see [`check`](Self::check)) traffic,
    /// and if so whether it is protected (known).
    pub fn tracked(&self, ip: IpAddr, proven: bool) -> Option<bool> {
        let prefix = Prefix::of(ip, self.v4_len, self.v6_len);
        self.levels[0].contains(&self.hasher, &Key { proven, prefix })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    #[test]
    fn bucket_refills_at_rate() {
        let t0 = Instant::now();
        let mut b = TokenBucket::full(3, t0);
        assert!(b.try_take(t0, 10, 3));
        assert!(b.try_take(t0, 10, 3));
        assert!(b.try_take(t0, 10, 3));
        assert!(!b.try_take(t0, 10, 3));
        assert!(!b.try_take(t0 + Duration::from_millis(50), 10, 3));
        assert!(b.try_take(t0 + Duration::from_millis(100), 10, 3));
        // Never above the burst.
        let later = t0 + Duration::from_secs(100);
        for _ in 0..3 {
            assert!(b.try_take(later, 10, 3));
        }
        assert!(!b.try_take(later, 10, 3));
    }

    #[test]
    fn prefixes_group_sources() {
        let a = Prefix::of("10.1.2.3".parse().unwrap(), 24, 56);
        let b = Prefix::of("10.1.2.200".parse().unwrap(), 24, 56);
        let c = Prefix::of("10.1.3.1".parse().unwrap(), 24, 56);
        let m = Prefix::of("::ffff:10.1.2.9".parse().unwrap(), 24, 56);
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_eq!(a, m);
        let x = Prefix::of("2001:db8:0:100::1".parse().unwrap(), 24, 56);
        let y = Prefix::of("2001:db8:0:1ff::2".parse().unwrap(), 24, 56);
        let z = Prefix::of("2001:db8:0:200::1".parse().unwrap(), 24, 56);
        assert_eq!(x, y);
        assert_ne!(x, z);
    }

    fn v4(i: u32) -> IpAddr {
        IpAddr::V4(Ipv4Addr::from(i))
    }

    #[test]
    fn table_is_bounded_and_one_prefix_cannot_starve_another() {
        let cfg = AdmissionConfig {
            max_prefixes: 32,
            ..AdmissionConfig::default()
        };
        let t0 = Instant::now();
        let lim = PrefixLimiter::new(&cfg, t0);
        let l = Limits::new(10, 20);
        let flood: IpAddr = "192.0.2.1".parse().unwrap();
        let good: IpAddr = "198.51.100.1".parse().unwrap();
        let mut allowed = 0;
        for _ in 0..1000 {
            allowed += usize::from(lim.check(flood, false, t0, &l).allowed);
        }
        assert_eq!(allowed, 20);
        assert!(lim.check(good, false, t0, &l).allowed);
        for i in 0..10_000u32 {
            let _ = lim.check(v4(i << 8), false, t0, &l);
        }
        assert!(lim.len() <= 2 * SHARDS + 32);
        lim.sweep(t0 + Duration::from_secs(61), &l);
        assert!(lim.len() < 32);
    }

    #[test]
    fn a_spoofed_flood_never_evicts_an_established_prefix() {
        // 10 000 one-shot /24s through tables of 64: every newcomer evicts a newcomer; the
        // established prefixes keep their entries (and their "known" status).
        let cfg = AdmissionConfig {
            max_prefixes: 1024,
            known_prefix_after_secs: 5,
            ..AdmissionConfig::default()
        };
        let t0 = Instant::now();
        let lim = PrefixLimiter::new(&cfg, t0);
        let l = Limits::new(100, 100);
        let good: Vec<IpAddr> = (0..8u32).map(|i| v4(0x0A00_0000 | (i << 8) | 1)).collect();
        for g in &good {
            assert!(lim.check(*g, false, t0, &l).allowed);
        }
        let t1 = t0 + Duration::from_secs(6);
        for g in &good {
            let v = lim.check(*g, false, t1, &l);
            assert!(v.allowed && v.known);
        }
        for i in 0..10_000u32 {
            let ip = v4(0xC000_0000 | (i << 8) | 7);
            let v = lim.check(ip, false, t1, &l);
            assert!(
                v.allowed,
                "a newcomer gets its own bucket, never a shared one"
            );
            assert!(!v.known);
        }
        for g in &good {
            assert_eq!(
                lim.tracked(*g, false),
                Some(true),
                "{g} was evicted by the flood"
            );
            let v = lim.check(*g, false, t1, &l);
            assert!(v.allowed && v.known);
        }
        assert!(lim.len() <= 1024 + SHARDS);
    }

    #[test]
    fn promoted_spoofed_prefixes_only_displace_each_other() {
        // Even sources that come back (and get promoted) cannot push out older protected ones:
        // a promotion past the protected share demotes the youngest protected entry.
        let cfg = AdmissionConfig {
            max_prefixes: 64,
            known_prefix_after_secs: 0,
            ..AdmissionConfig::default()
        };
        let t0 = Instant::now();
        let lim = PrefixLimiter::new(&cfg, t0);
        let l = Limits::new(100, 100);
        let good = v4(0x0A01_0203);
        assert!(lim.check(good, false, t0, &l).known);
        for round in 0..3u32 {
            for i in 0..5_000u32 {
                let ip = v4(0xC000_0000 | (i << 8) | round);
                let _ = lim.check(ip, false, t0, &l);
            }
        }
        assert_eq!(lim.tracked(good, false), Some(true));
    }

    #[test]
    fn a_parent_bounds_the_sum_of_its_children() {
        // IPv4: 256 /24s of one /16 share the /16's 8 × burst.
        let cfg = AdmissionConfig::default();
        let t0 = Instant::now();
        let lim = PrefixLimiter::new(&cfg, t0);
        let l = Limits::new(10, 10);
        let mut allowed = 0;
        for child in 0..256u32 {
            for _ in 0..10 {
                let ip = v4(0x0A07_0000 | (child << 8) | 1);
                allowed += u32::from(lim.check(ip, false, t0, &l).allowed);
            }
        }
        assert_eq!(allowed, 80, "the /16 allows 8 × burst in all");
        // Another /16 is untouched.
        assert!(lim.check(v4(0x0A08_0001), false, t0, &l).allowed);
    }

    #[test]
    fn an_ipv6_48_cannot_exceed_its_parent_budget_via_many_56s() {
        let cfg = AdmissionConfig::default();
        let t0 = Instant::now();
        let lim = PrefixLimiter::new(&cfg, t0);
        let l = Limits::new(10, 10);
        let base: u128 = u128::from(Ipv6Addr::new(0x2001, 0xdb8, 0xffff, 0, 0, 0, 0, 1));
        let base2: u128 = u128::from(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1));
        let mut allowed = 0u32;
        let mut by_parent = 0u32;
        // 256 /56s of 2001:db8:ffff::/48, ten queries each: independently 2 560 would pass.
        for sub in 0..256u128 {
            for _ in 0..10 {
                let ip = IpAddr::V6(Ipv6Addr::from(base | (sub << 72)));
                let v = lim.check(ip, false, t0, &l);
                allowed += u32::from(v.allowed);
                by_parent += u32::from(v.limited_by == Some(Level::Parent));
            }
        }
        assert_eq!(
            allowed, 80,
            "a /48 gets parent_factor (8) × burst, not 256 ×"
        );
        assert_eq!(by_parent, 2560 - 80);
        // Other /48s of the same /32 share the /32's 32 × burst (320 in all, 80 used).
        let mut more = 0u32;
        for p48 in 1..=64u128 {
            for sub in 0..4u128 {
                for _ in 0..10 {
                    let ip = IpAddr::V6(Ipv6Addr::from(base2 | (p48 << 80) | (sub << 72)));
                    more += u32::from(lim.check(ip, false, t0, &l).allowed);
                }
            }
        }
        assert_eq!(more, 320 - 80, "the /32 bounds the sum of its /48s");
        // A different /32 is untouched.
        let other = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb9, 0, 0, 0, 0, 0, 1));
        assert!(lim.check(other, false, t0, &l).allowed);
    }

    #[test]
    fn a_udp_flood_leaves_the_tcp_budget_alone() {
        let cfg = AdmissionConfig::default();
        let t0 = Instant::now();
        let lim = PrefixLimiter::new(&cfg, t0);
        let l = Limits::new(10, 10);
        let victim = v4(0x0A09_0001);
        let udp: u32 = (0..1000)
            .map(|_| u32::from(lim.check(victim, false, t0, &l).allowed))
            .sum();
        assert_eq!(udp, 10);
        let v = lim.check(victim, true, t0, &l);
        assert!(v.allowed && !v.offending, "the proven bucket is separate");
        assert_eq!(lim.tracked(victim, true), Some(false));
    }

    #[test]
    fn refusals_mark_offenders_once_per_tick() {
        let cfg = AdmissionConfig::default();
        let t0 = Instant::now();
        let lim = PrefixLimiter::new(&cfg, t0);
        let mut l = Limits::new(10, 2);
        l.offender_permille = 500;
        let ip = v4(0x0A00_0001);
        assert!(lim.check(ip, false, t0, &l).allowed);
        assert!(!lim.check(ip, false, t0, &l).offending);
        let v = lim.check(ip, false, t0, &l);
        assert!(!v.allowed && v.offending && v.new_offender);
        assert_eq!(v.limited_by, Some(Level::Prefix));
        let v = lim.check(ip, false, t0, &l);
        assert!(!v.allowed && !v.new_offender);
        l.tick = 1;
        assert!(lim.check(ip, false, t0, &l).new_offender);
        // Offending: half the rate (5/s) for a minute.
        let t1 = t0 + Duration::from_millis(200);
        let v = lim.check(ip, false, t1, &l);
        assert!(v.allowed && v.offending);
        let later = t0 + Duration::from_secs(120);
        let v = lim.check(ip, false, later, &l);
        assert!(v.allowed && !v.offending);
        // Another prefix is not affected.
        assert!(!lim.check(v4(0x0B00_0001), false, t0, &l).offending);
    }
}
