//! Admission control ("toll booth"): token buckets per source prefix in a bounded table.
//!
//! Sans-IO: every operation takes an explicit `now`. The async shell owns the clock.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
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

    /// Refill at `rate` tokens per second up to `burst`, then take one token if there is one.
    pub fn try_take(&mut self, now: Instant, rate: u32, burst: u32) -> bool {
        let cap = u64::from(burst.max(1)).saturating_mul(NANO);
        let elapsed = now.saturating_duration_since(self.last);
        // Clamp the elapsed time so the product cannot overflow (an hour refills any bucket).
        let ns = u64::try_from(elapsed.min(Duration::from_secs(3600)).as_nanos()).unwrap_or(0);
        let add = ns.saturating_mul(u64::from(rate));
        self.nano_tokens = self.nano_tokens.saturating_add(add).min(cap);
        if now > self.last {
            self.last = now;
        }
        if self.nano_tokens >= NANO {
            self.nano_tokens = self.nano_tokens.saturating_sub(NANO);
            true
        } else {
            false
        }
    }

    /// Whether the bucket would be full at `now` (its entry carries no state worth keeping).
    pub fn is_full_at(&self, now: Instant, rate: u32, burst: u32) -> bool {
        let mut probe = *self;
        let cap = u64::from(burst.max(1)).saturating_mul(NANO);
        let _ = probe.try_take(now, rate, burst);
        probe.nano_tokens.saturating_add(NANO) >= cap
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
}

/// Admission settings.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AdmissionConfig {
    /// Sustained queries per second allowed to one source prefix in NORMAL mode.
    pub rate_per_prefix: u32,
    /// Burst (bucket size) per source prefix in NORMAL mode.
    pub burst_per_prefix: u32,
    /// Prefix length grouping IPv4 sources (24 by default).
    pub ipv4_prefix_len: u8,
    /// Prefix length grouping IPv6 sources (56 by default).
    pub ipv6_prefix_len: u8,
    /// Most prefixes tracked at once. When the table is full, new prefixes share one overflow
    /// bucket (so a spoofed-source flood cannot grow memory).
    pub max_prefixes: usize,
    /// Queries waiting on an upstream at once, over all transports. Past it, SERVFAIL.
    pub max_in_flight: usize,
    /// Largest response sent over TCP, DoT or DoH (bytes, at most 65535).
    pub max_response_size: usize,
    /// Upper bound on the UDP payload size honoured from a client's EDNS (bytes).
    pub max_udp_response_size: usize,
    /// Seconds a prefix must have been seen before it counts as *known* (attack modes may serve
    /// unknown prefixes from the cache only).
    pub known_prefix_after_secs: u64,
}

impl Default for AdmissionConfig {
    fn default() -> Self {
        Self {
            rate_per_prefix: 2_000,
            burst_per_prefix: 4_000,
            ipv4_prefix_len: 24,
            ipv6_prefix_len: 56,
            max_prefixes: 100_000,
            max_in_flight: 10_000,
            max_response_size: 65_535,
            max_udp_response_size: 1_232,
            known_prefix_after_secs: 60,
        }
    }
}

/// What the limiter says about one query.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verdict {
    /// A token was available.
    pub allowed: bool,
    /// The prefix was first seen at least `known_prefix_after_secs` ago.
    pub known: bool,
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    bucket: TokenBucket,
    first_seen: Instant,
}

#[derive(Debug)]
struct Shard {
    map: HashMap<Prefix, Entry>,
    overflow: TokenBucket,
}

const SHARDS: usize = 16;

/// Token buckets per source prefix in a bounded, sharded table.
#[derive(Debug)]
pub struct PrefixLimiter {
    shards: Vec<Mutex<Shard>>,
    per_shard: usize,
    v4_len: u8,
    v6_len: u8,
    known_after: Duration,
}

impl PrefixLimiter {
    /// An empty table.
    pub fn new(config: &AdmissionConfig, now: Instant) -> Self {
        let per_shard = config.max_prefixes.div_ceil(SHARDS).max(1);
        Self {
            shards: (0..SHARDS)
                .map(|_| {
                    Mutex::new(Shard {
                        map: HashMap::new(),
                        overflow: TokenBucket::full(config.burst_per_prefix, now),
                    })
                })
                .collect(),
            per_shard,
            v4_len: config.ipv4_prefix_len,
            v6_len: config.ipv6_prefix_len,
            known_after: Duration::from_secs(config.known_prefix_after_secs),
        }
    }

    fn shard_of(&self, p: &Prefix) -> &Mutex<Shard> {
        let h = match *p {
            Prefix::V4(v) => u64::from(v >> 8) ^ u64::from(v >> 16),
            Prefix::V6(v) => ((v >> 72) ^ (v >> 80) ^ (v >> 96)) as u64,
        };
        let i = usize::try_from(h % SHARDS as u64).unwrap_or(0);
        self.shards.get(i).unwrap_or_else(|| {
            // `i < SHARDS == shards.len()`.
            &self.shards[0]
        })
    }

    /// Take a token for a query from `ip` at `now` with the mode's `rate` and `burst`.
    pub fn check(&self, ip: IpAddr, now: Instant, rate: u32, burst: u32) -> Verdict {
        let prefix = Prefix::of(ip, self.v4_len, self.v6_len);
        let shard = self.shard_of(&prefix);
        let mut s = shard
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let len = s.map.len();
        if let Some(e) = s.map.get_mut(&prefix) {
            let allowed = e.bucket.try_take(now, rate, burst);
            let known = now.saturating_duration_since(e.first_seen) >= self.known_after;
            return Verdict { allowed, known };
        }
        if len >= self.per_shard {
            let allowed = s.overflow.try_take(now, rate, burst);
            return Verdict {
                allowed,
                known: false,
            };
        }
        let mut bucket = TokenBucket::full(burst, now);
        let allowed = bucket.try_take(now, rate, burst);
        s.map.insert(
            prefix,
            Entry {
                bucket,
                first_seen: now,
            },
        );
        Verdict {
            allowed,
            known: self.known_after.is_zero(),
        }
    }

    /// Forget prefixes idle long enough that their bucket is full again, except those that
    /// are already *known* (so a flood does not erase who the regular clients are) unless the
    /// table is over half full.
    pub fn sweep(&self, now: Instant, rate: u32, burst: u32) {
        for shard in &self.shards {
            let mut s = shard
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let crowded = s.map.len() > self.per_shard / 2;
            let known_after = self.known_after;
            s.map.retain(|_, e| {
                let idle = e.bucket.is_full_at(now, rate, burst);
                let known = now.saturating_duration_since(e.first_seen) >= known_after;
                !idle || (known && !crowded)
            });
        }
    }

    /// Prefixes tracked.
    pub fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().map_or(0, |s| s.map.len()))
            .sum()
    }

    /// Whether no prefix is tracked.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn table_is_bounded_and_one_prefix_cannot_starve_another() {
        let cfg = AdmissionConfig {
            max_prefixes: 32,
            known_prefix_after_secs: 0,
            ..AdmissionConfig::default()
        };
        let t0 = Instant::now();
        let lim = PrefixLimiter::new(&cfg, t0);
        let flood: IpAddr = "192.0.2.1".parse().unwrap();
        let good: IpAddr = "198.51.100.1".parse().unwrap();
        let mut allowed = 0;
        for _ in 0..1000 {
            allowed += usize::from(lim.check(flood, t0, 10, 20).allowed);
        }
        assert_eq!(allowed, 20);
        assert!(lim.check(good, t0, 10, 20).allowed);
        for i in 0..10_000u32 {
            let ip = IpAddr::V4(std::net::Ipv4Addr::from(i << 8));
            let _ = lim.check(ip, t0, 10, 20);
        }
        assert!(lim.len() <= 32 + SHARDS);
        lim.sweep(t0 + Duration::from_secs(10), 10, 20);
        assert!(lim.len() < 32);
    }
}
