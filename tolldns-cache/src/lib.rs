//! A byte-bounded, packet-level DNS answer cache for TollDNS edges.
//!
//! The edge's ingress looks every query up here before forwarding it upstream. The entry point
//! is [`Cache`], shared between listener tasks through an `Arc`; queries are keyed by
//! [`CacheKey`], built cheaply from a raw query with [`CacheKey::from_query`].
//!
//! ```
//! use std::time::{Duration, Instant};
//! use tolldns_cache::{Cache, CacheConfig, CacheKey, Lookup};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // A query for www.example.com/A (ID 0x1234) and the upstream's answer (ID 0x0001): one A
//! // record, TTL 300, its owner compressed to the question name.
//! let query = b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\
//!               \x03www\x07example\x03com\x00\x00\x01\x00\x01";
//! let mut answer = b"\x00\x01\x81\x80\x00\x01\x00\x01\x00\x00\x00\x00\
//!                    \x03www\x07example\x03com\x00\x00\x01\x00\x01".to_vec();
//! answer.extend_from_slice(b"\xc0\x0c\x00\x01\x00\x01\x00\x00\x01\x2c\x00\x04\xc0\x00\x02\x01");
//!
//! let cache = Cache::new(CacheConfig::default());
//! let (key, id) = CacheKey::from_query(query)?;
//! let t0 = Instant::now();
//! let mut out = [0u8; 512];
//! assert_eq!(cache.lookup(&key, id, t0, &mut out), Lookup::Miss);
//!
//! // On a miss the ingress asks an upstream, then stores the checked answer.
//! cache.insert(&key, &answer, t0)?;
//!
//! // 100.5 s later: the answer is served with the query's ID and the TTL counted down.
//! let later = t0 + Duration::from_millis(100_500);
//! let Lookup::Hit { len, min_ttl, prefetch } = cache.lookup(&key, id, later, &mut out) else {
//!     panic!("expected a hit");
//! };
//! assert_eq!((len, min_ttl, prefetch), (answer.len(), 200, false));
//! assert_eq!(&out[..2], &[0x12, 0x34]);
//! assert_eq!(&out[len - 10..len - 6], &200u32.to_be_bytes());
//! assert_eq!(cache.stats().hits, 1);
//! # Ok(())
//! # }
//! ```
//!
//! # Packet-level entries
//!
//! An entry is the upstream's whole answer in wire form plus a table of each record's TTL
//! offset, recorded at insert time. A hit copies the stored bytes into a buffer the caller
//! owns, writes the query's message ID and rewrites each TTL in place: no parse, no allocation
//! (the lookup clones an `Arc`). The cost moves to the miss path, where [`Cache::insert`]
//! parses the answer fully with hickory-proto and checks it before storing it. The flags in
//! the header are served as the upstream set them; only the ID changes. An OPT record that
//! ends the answer is kept (so DO and the payload size survive) but its options (cookies,
//! padding, client subnet) are dropped, since they belong to the upstream exchange.
//!
//! # Keys
//!
//! A [`CacheKey`] is the question name (ASCII letters lowercased, RFC 4343), type and class,
//! plus the EDNS DO bit and the CD bit, which both change what an answer contains. The key
//! is stored inline (no heap). An answer is inserted only if it parses and its question
//! equals the key's; the caller inserts under the key of the query it actually sent.
//!
//! # Wire walker
//!
//! [`wire`] is the hand-written, non-allocating DNS walker of the hot path, public so that the
//! edge's ingress parses client queries with the same code: [`wire::walk_query`] applies one
//! set of rules (one question, an uncompressed name of at most 255 octets with the root label's
//! length octet, no answer or authority records, at most one OPT record and nothing else in the
//! additional section, EDNS version 0), and [`CacheKey::from_query`] is built on it. Its
//! module documentation states the rules.
//!
//! # TTLs
//!
//! At insert, each record's TTL is clamped to `[min_ttl, max_ttl]` (negative answers: to
//! `negative_max_ttl`) and stored; the entry's TTL is the smallest stored record TTL. TTLs
//! with the top bit set count as 0 (RFC 2181 §8). An entry whose TTL is 0 is not stored.
//!
//! At a lookup at time `now`, the age is the whole seconds since the insert. With `C` the
//! attack-mode clamp ([`Cache::set_attack_max_ttl`], unbounded when unset), the entry is fresh
//! while `age < min(entry TTL, C)`, and each record is served with
//! `min(stored TTL, C) - age`, at least 1. [`Lookup::Hit::min_ttl`](Lookup::Hit) is
//! `min(entry TTL, C) - age`, the value for DoH `Cache-Control: max-age`. The attack clamp is
//! an atomic: setting it takes effect on the next lookup, shortening both what clients cache
//! and how long entries stay fresh here.
//!
//! `now` is always a parameter; the crate never reads a clock.
//!
//! # Negative caching (RFC 2308)
//!
//! NXDOMAIN, and NOERROR without a record of the question's type (NODATA), are cached only
//! with an SOA in the authority section. The SOA's stored TTL is `min(SOA TTL, SOA MINIMUM)`
//! clamped to `negative_max_ttl`, which usually makes it the entry's TTL; it counts down when
//! served like any other record.
//!
//! # Serve-stale (RFC 8767)
//!
//! Expired entries stay until evicted. After its upstreams failed, the ingress calls
//! [`Cache::lookup_stale`]: an entry that expired less than
//! [`stale_window`](CacheConfig::stale_window) ago is served with every TTL set to
//! [`stale_ttl`](CacheConfig::stale_ttl) (30 s by default, capped by the attack clamp) and
//! counted in [`CacheStats::stale_served`].
//!
//! # Prefetch
//!
//! A fresh hit reports `prefetch: true` when the entry has had at least
//! [`prefetch_min_hits`](CacheConfig::prefetch_min_hits) hits (this one included) and at most
//! [`prefetch_fraction_pct`](CacheConfig::prefetch_fraction_pct) percent of its TTL remains.
//! This happens at most once per stored answer, so exactly one caller refreshes it in the
//! background; the refreshed insert re-arms the hint.
//!
//! # Memory and counters
//!
//! The byte bound is enforced by quick_cache with a weighter: each entry weighs its wire
//! length, its TTL table and a fixed overhead for the key and bookkeeping
//! ([`Cache::bytes`] never exceeds [`CacheConfig::max_bytes`]). An entry heavier than
//! [`Cache::max_entry_bytes`] is refused. [`Cache::stats`] snapshots atomic counters for
//! hits, misses, stale answers, prefetch hints, evictions, inserts and refused inserts.
//!
//! # Cargo features
//!
//! None. The crate needs `std` (atomics, `Instant`, quick_cache) and always validates answers
//! with hickory-proto.

#![forbid(unsafe_code)]
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::indexing_slicing))]

mod cache;
mod key;
pub mod wire;

pub use cache::{
    AnswerKind, Cache, CacheConfig, CacheStats, CheckedAnswer, InsertError, Inserted, Lookup,
};
pub use key::{CacheKey, KeyError};
