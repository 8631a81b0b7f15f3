//! The cache itself: configuration, entries, lookups and inserts.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::{Duration, Instant};

use hickory_proto::ProtoError;
use hickory_proto::op::Message;
use portable_atomic::AtomicU64;

use crate::key::CacheKey;
use crate::wire::{
    self, FLAG_QR, FLAG_TC, HEADER_LEN, Header, MAX_NAME_LEN, TYPE_ANY, TYPE_OPT, TYPE_SOA,
};

/// Largest DNS message (the TCP length prefix is 16 bits); TTL offsets are stored as `u16`.
const MAX_MESSAGE_LEN: usize = u16::MAX as usize;
/// Bytes charged per entry beyond its wire answer and TTL table: the key, the entry header,
/// the `Arc` counts and the cache's own slot bookkeeping (an estimate, kept conservative).
const ENTRY_OVERHEAD: usize =
    size_of::<CacheKey>() + size_of::<Entry>() + 2 * size_of::<usize>() + 64;
/// NOERROR and NXDOMAIN, the cacheable response codes.
const RCODE_NOERROR: u16 = 0;
const RCODE_NXDOMAIN: u16 = 3;
/// No attack clamp set.
const NO_CLAMP: u32 = u32::MAX;
/// A shard should hold at least this many bytes before the cache is split further.
const MIN_SHARD_BYTES: usize = 256 * 1024;
/// Upper bound on the number of shards.
const MAX_SHARDS: usize = 64;
/// Assumed average entry weight, for quick_cache's item-count estimate.
const TYPICAL_ENTRY_BYTES: usize = 512;

/// Cache configuration. All TTLs are in seconds.
///
/// [`Cache::new`] normalizes inconsistent values rather than failing: `min_ttl` is lowered to
/// `max_ttl`, `stale_ttl` to `min(max_ttl, negative_max_ttl)`, and `prefetch_fraction_pct` to
/// 100.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheConfig {
    /// Memory bound in bytes (the weight of all entries; see [`Cache::bytes`]). Default 64 MiB.
    pub max_bytes: usize,
    /// Record TTLs below this are raised to it when stored. Default 0 (TTL-0 answers are not
    /// cached, as RFC 1035 intends).
    pub min_ttl: u32,
    /// Record TTLs above this are lowered to it when stored. Default 86 400 (one day).
    pub max_ttl: u32,
    /// Upper clamp for negative answers (RFC 2308 §5 suggests one to three hours).
    /// Default 3 600.
    pub negative_max_ttl: u32,
    /// How long after expiry an entry may still be served by [`Cache::lookup_stale`]
    /// (RFC 8767 §5 suggests one to three days at most). Default one hour.
    pub stale_window: Duration,
    /// TTL put on every record of a stale answer (RFC 8767 §4 recommends 30). Default 30.
    pub stale_ttl: u32,
    /// Hits an entry needs (counting the current one) before a lookup reports prefetch due.
    /// Default 5.
    pub prefetch_min_hits: u32,
    /// A hit reports prefetch due when the remaining TTL is at most this percentage of the
    /// entry's TTL. 0 disables prefetch hints. Default 10.
    pub prefetch_fraction_pct: u8,
}

impl Default for CacheConfig {
    fn default() -> Self {
        Self {
            max_bytes: 64 * 1024 * 1024,
            min_ttl: 0,
            max_ttl: 86_400,
            negative_max_ttl: 3_600,
            stale_window: Duration::from_secs(3_600),
            stale_ttl: 30,
            prefetch_min_hits: 5,
            prefetch_fraction_pct: 10,
        }
    }
}

impl CacheConfig {
    fn normalized(mut self) -> Self {
        self.min_ttl = self.min_ttl.min(self.max_ttl);
        self.stale_ttl = self.stale_ttl.min(self.max_ttl).min(self.negative_max_ttl);
        self.prefetch_fraction_pct = self.prefetch_fraction_pct.min(100);
        self
    }
}

/// The outcome of a lookup.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lookup {
    /// A fresh answer was written to `out[..len]`, with the query's ID and counted-down TTLs.
    Hit {
        /// Length of the answer written.
        len: usize,
        /// The smallest TTL in the served answer (for DoH `Cache-Control: max-age`); at least 1.
        min_ttl: u32,
        /// The entry is popular and close to expiry: refresh it in the background. Reported
        /// once per stored answer (a new insert under the key re-arms it).
        prefetch: bool,
    },
    /// An expired answer, within the stale window, was written to `out[..len]` with every
    /// TTL set to [`Cache::stale_ttl`] (RFC 8767). Only [`Cache::lookup_stale`] returns this.
    Stale {
        /// Length of the answer written.
        len: usize,
    },
    /// Nothing servable under this key.
    Miss,
    /// An answer exists but `out` is shorter than it; nothing was written or counted.
    BufferTooSmall {
        /// Length of the answer.
        needed: usize,
    },
}

/// What kind of answer an entry holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AnswerKind {
    /// NOERROR with records of the question's type (or any records for qtype ANY).
    Positive,
    /// NXDOMAIN (RFC 2308 name error), cached for the SOA-derived negative TTL.
    NxDomain,
    /// NOERROR without records of the question's type (RFC 2308 NODATA).
    NoData,
}

/// A successful insert.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Inserted {
    /// The answer's kind.
    pub kind: AnswerKind,
    /// The entry's TTL in seconds (the smallest stored record TTL, after clamps).
    pub ttl: u32,
    /// The bytes the entry is charged against [`CacheConfig::max_bytes`].
    pub bytes: usize,
}

/// What a caller that already checked an answer (with hickory-proto as [`Cache::insert`] does,
/// or with the [`wire`](crate::wire) walker as the edge's upstream pool does) hands to
/// [`Cache::insert_checked`], so the answer is stored without being parsed again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CheckedAnswer {
    /// The response code the caller's check found: the header RCODE with the EDNS extended
    /// bits (as `u16::from(message.response_code())` gives it).
    pub rcode: u16,
    /// A cap on every stored TTL in seconds, applied before the configured clamps (an upstream
    /// quorum's trust cap); `None` for none.
    pub ttl_cap: Option<u32>,
}

/// Why an answer was not cached. Every refusal is counted in [`CacheStats::inserts_refused`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum InsertError {
    /// The key is invalid ([`CacheKey::is_valid`]).
    #[error("cache key is invalid")]
    InvalidKey,
    /// The answer does not parse as a DNS message.
    #[error("answer does not parse as a DNS message")]
    Parse(#[source] ProtoError),
    /// The answer's structure could not be walked (records run past the end).
    #[error("answer is malformed")]
    Malformed,
    /// The QR bit is clear or the opcode is not QUERY.
    #[error("answer is not a response to a standard query")]
    NotAResponse,
    /// The answer's question is not the key's question (name, type or class differ, or the
    /// answer does not carry exactly one question).
    #[error("answer's question does not match the key")]
    QuestionMismatch,
    /// The TC bit is set; a truncated answer is never cached.
    #[error("answer is truncated (TC set)")]
    Truncated,
    /// The response code is neither NOERROR nor NXDOMAIN (e.g. SERVFAIL, REFUSED, FORMERR).
    #[error("response code {0} is not cacheable")]
    Rcode(u16),
    /// A negative answer without an SOA in the authority section (RFC 2308 §5: not cached).
    #[error("negative answer without an SOA record")]
    NegativeWithoutSoa,
    /// After clamps the answer's TTL is zero.
    #[error("answer has a zero TTL")]
    ZeroTtl,
    /// The entry would be heavier than one entry may be.
    #[error("entry of {size} bytes exceeds the {max}-byte limit")]
    TooLarge {
        /// The entry's weight (or message length when over 65 535).
        size: usize,
        /// The limit.
        max: usize,
    },
}

/// A snapshot of the cache's counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct CacheStats {
    /// Fresh answers served (by `lookup` or `lookup_stale`).
    pub hits: u64,
    /// `lookup` calls that found nothing fresh (`lookup_stale` misses are not counted again).
    pub misses: u64,
    /// Stale answers served.
    pub stale_served: u64,
    /// Prefetch hints reported.
    pub prefetches: u64,
    /// Entries evicted to stay within the byte bound.
    pub evictions: u64,
    /// Answers stored.
    pub inserts: u64,
    /// Answers refused (every [`InsertError`]).
    pub inserts_refused: u64,
    /// Entries held now.
    pub entries: usize,
    /// Bytes charged now.
    pub bytes: usize,
}

/// One record's TTL field in the stored answer.
#[derive(Debug, Clone, Copy)]
struct TtlSlot {
    offset: u16,
    /// The record's TTL after clamps, at insert time.
    ttl: u32,
}

/// One cached answer ("generation": replaced wholesale by the next insert under its key).
#[derive(Debug)]
struct Entry {
    wire: Box<[u8]>,
    slots: Box<[TtlSlot]>,
    /// The smallest stored record TTL: the entry is fresh while its age is below this.
    ttl: u32,
    inserted: Instant,
    weight: usize,
    hits: AtomicU64,
    prefetch_reported: AtomicBool,
}

impl Entry {
    /// Writes the answer into `out` with `id` and each TTL produced by `ttl_of`.
    fn write(&self, out: &mut [u8], id: u16, ttl_of: impl Fn(u32) -> u32) -> Option<usize> {
        let len = self.wire.len();
        let dst = out.get_mut(..len)?;
        dst.copy_from_slice(&self.wire);
        if let Some(id_field) = dst.get_mut(..2) {
            id_field.copy_from_slice(&id.to_be_bytes());
        }
        for slot in self.slots.iter() {
            let at = usize::from(slot.offset);
            if let Some(field) = dst.get_mut(at..at + 4) {
                field.copy_from_slice(&ttl_of(slot.ttl).to_be_bytes());
            }
        }
        Some(len)
    }
}

#[derive(Debug, Clone, Copy)]
struct EntryWeighter;

impl quick_cache::Weighter<CacheKey, Arc<Entry>> for EntryWeighter {
    fn weight(&self, _key: &CacheKey, val: &Arc<Entry>) -> u64 {
        val.weight as u64
    }
}

/// Collects what an insert pushed out, so evictions can be told from replacements (quick_cache
/// reports both) and the old values are dropped after the shard lock is released.
#[derive(Debug, Clone, Copy)]
struct Evictions;

impl quick_cache::Lifecycle<CacheKey, Arc<Entry>> for Evictions {
    type RequestState = Vec<(CacheKey, Arc<Entry>)>;

    fn begin_request(&self) -> Self::RequestState {
        Vec::new()
    }

    fn on_evict(&self, state: &mut Self::RequestState, key: CacheKey, val: Arc<Entry>) {
        state.push((key, val));
    }
}

type Store = quick_cache::sync::Cache<
    CacheKey,
    Arc<Entry>,
    EntryWeighter,
    quick_cache::DefaultHashBuilder,
    Evictions,
>;

#[derive(Debug, Default)]
struct Counters {
    hits: AtomicU64,
    misses: AtomicU64,
    stale_served: AtomicU64,
    prefetches: AtomicU64,
    inserts: AtomicU64,
    inserts_refused: AtomicU64,
    evictions: AtomicU64,
}

/// A byte-bounded, packet-level DNS answer cache. `Send + Sync`; share it through an `Arc`.
///
/// See the [crate documentation](crate) for the semantics.
#[derive(Debug)]
pub struct Cache {
    store: Store,
    cfg: CacheConfig,
    attack_max_ttl: AtomicU32,
    max_entry_bytes: usize,
    counters: Counters,
}

impl Cache {
    /// Creates an empty cache. The configuration is normalized (see [`CacheConfig`]).
    pub fn new(cfg: CacheConfig) -> Self {
        let cfg = cfg.normalized();
        let shards = (cfg.max_bytes / MIN_SHARD_BYTES)
            .clamp(1, MAX_SHARDS)
            .next_power_of_two()
            .min(MAX_SHARDS);
        // A multiple of the shard count, so per-shard capacities sum to at most `max_bytes`
        // even if quick_cache halves the shard count.
        let capacity = cfg.max_bytes / shards * shards;
        let options = quick_cache::OptionsBuilder::new()
            .shards(shards)
            .estimated_items_capacity((capacity / TYPICAL_ENTRY_BYTES).max(shards * 32))
            .weight_capacity(capacity as u64)
            .build();
        let store = match options {
            Ok(options) => Store::with_options(
                options,
                EntryWeighter,
                quick_cache::DefaultHashBuilder::default(),
                Evictions,
            ),
            // Unreachable: both required options are set above. Fall back to an equivalent cache.
            Err(_) => Store::with(
                (capacity / TYPICAL_ENTRY_BYTES).max(1),
                capacity as u64,
                EntryWeighter,
                quick_cache::DefaultHashBuilder::default(),
                Evictions,
            ),
        };
        // quick_cache does not admit an item heavier than its shard's hot target (97 % of the
        // shard); keep a clear margin below that.
        let max_entry_bytes = usize::try_from(store.shard_capacity() / 2).unwrap_or(usize::MAX);
        Self {
            store,
            cfg,
            attack_max_ttl: AtomicU32::new(NO_CLAMP),
            max_entry_bytes,
            counters: Counters::default(),
        }
    }

    /// The normalized configuration in use.
    pub fn config(&self) -> &CacheConfig {
        &self.cfg
    }

    /// The heaviest entry (in [`Cache::bytes`] units) an insert accepts.
    pub fn max_entry_bytes(&self) -> usize {
        self.max_entry_bytes
    }

    /// Looks `key` up at time `now`. On a fresh hit, writes the answer into `out` with the
    /// message ID set to `query_id` and every TTL counted down by the entry's age (whole
    /// seconds) and clamped by the attack clamp. Does not allocate.
    pub fn lookup(&self, key: &CacheKey, query_id: u16, now: Instant, out: &mut [u8]) -> Lookup {
        let found = if key.is_valid() {
            self.store.get(key)
        } else {
            None
        };
        let Some(entry) = found else {
            self.counters.misses.fetch_add(1, Ordering::Relaxed);
            return Lookup::Miss;
        };
        let clamp = self.attack_max_ttl.load(Ordering::Relaxed);
        let age = age_secs(&entry, now);
        match self.serve_fresh(&entry, clamp, age, query_id, out) {
            Some(result) => result,
            None => {
                self.counters.misses.fetch_add(1, Ordering::Relaxed);
                Lookup::Miss
            }
        }
    }

    /// Looks `key` up for RFC 8767 serve-stale, to be called only after the upstreams failed.
    ///
    /// A fresh entry is served as by [`Cache::lookup`] (a [`Lookup::Hit`]). An expired entry
    /// whose expiry lies less than [`CacheConfig::stale_window`] before `now` is served with
    /// every TTL set to [`Cache::stale_ttl`] ([`Lookup::Stale`], counted in
    /// [`CacheStats::stale_served`]). Otherwise [`Lookup::Miss`], not counted as a miss.
    pub fn lookup_stale(
        &self,
        key: &CacheKey,
        query_id: u16,
        now: Instant,
        out: &mut [u8],
    ) -> Lookup {
        if !key.is_valid() {
            return Lookup::Miss;
        }
        let Some(entry) = self.store.get(key) else {
            return Lookup::Miss;
        };
        let clamp = self.attack_max_ttl.load(Ordering::Relaxed);
        let age = age_secs(&entry, now);
        if let Some(result) = self.serve_fresh(&entry, clamp, age, query_id, out) {
            return result;
        }
        let expired_for = now
            .saturating_duration_since(entry.inserted)
            .saturating_sub(Duration::from_secs(u64::from(entry.ttl.min(clamp))));
        if expired_for >= self.cfg.stale_window {
            return Lookup::Miss;
        }
        let stale_ttl = self.cfg.stale_ttl.min(clamp);
        match entry.write(out, query_id, |_| stale_ttl) {
            Some(len) => {
                self.counters.stale_served.fetch_add(1, Ordering::Relaxed);
                Lookup::Stale { len }
            }
            None => Lookup::BufferTooSmall {
                needed: entry.wire.len(),
            },
        }
    }

    /// Serves `entry` if it is fresh; `None` if it has expired.
    fn serve_fresh(
        &self,
        entry: &Entry,
        clamp: u32,
        age: u64,
        query_id: u16,
        out: &mut [u8],
    ) -> Option<Lookup> {
        let ttl = u64::from(entry.ttl.min(clamp));
        if age >= ttl {
            return None;
        }
        let remaining = ttl - age;
        // Fresh: every stored TTL is >= entry.ttl, so each served TTL is >= remaining >= 1.
        let Some(len) = entry.write(out, query_id, |t| {
            u32::try_from(u64::from(t.min(clamp)).saturating_sub(age)).unwrap_or(u32::MAX)
        }) else {
            return Some(Lookup::BufferTooSmall {
                needed: entry.wire.len(),
            });
        };
        self.counters.hits.fetch_add(1, Ordering::Relaxed);
        let hits = entry.hits.fetch_add(1, Ordering::Relaxed).saturating_add(1);
        let prefetch = hits >= u64::from(self.cfg.prefetch_min_hits)
            && remaining * 100 <= ttl * u64::from(self.cfg.prefetch_fraction_pct)
            && !entry.prefetch_reported.load(Ordering::Relaxed)
            && !entry.prefetch_reported.swap(true, Ordering::Relaxed);
        if prefetch {
            self.counters.prefetches.fetch_add(1, Ordering::Relaxed);
        }
        Some(Lookup::Hit {
            len,
            min_ttl: u32::try_from(remaining).unwrap_or(u32::MAX),
            prefetch,
        })
    }

    /// Stores `answer` under `key` at time `now`, replacing any previous answer (which also
    /// re-arms the prefetch hint).
    ///
    /// The answer is fully parsed (hickory-proto) and checked: it must be a response to a
    /// standard query, not truncated, NOERROR or NXDOMAIN, and carry exactly the key's
    /// question (name compared case-insensitively, type, class). Negative answers (NXDOMAIN,
    /// NODATA) need an SOA in the authority section. An OPT record at the end of the answer
    /// is kept but its options (cookies, padding, client subnet) are dropped.
    ///
    /// # Errors
    ///
    /// [`InsertError`] says why the answer was refused; nothing is stored then.
    pub fn insert(
        &self,
        key: &CacheKey,
        answer: &[u8],
        now: Instant,
    ) -> Result<Inserted, InsertError> {
        let result = self.try_insert(key, answer, now);
        self.count_insert(result)
    }

    /// Stores `answer` under `key` at time `now` as [`Cache::insert`] does, for a caller that has
    /// already parsed the answer in full and hands over what the parse found (`checked`): the
    /// answer is not parsed with hickory-proto again. Every other check of [`Cache::insert`] is
    /// made (key, size, QR, opcode, TC, RCODE, question, record structure, SOA of negative
    /// answers, zero TTL, entry weight) and refusals are counted the same way. The stored TTLs
    /// are also capped by [`CheckedAnswer::ttl_cap`].
    ///
    /// # Errors
    ///
    /// [`InsertError`] says why the answer was refused; nothing is stored then.
    pub fn insert_checked(
        &self,
        key: &CacheKey,
        answer: &[u8],
        checked: CheckedAnswer,
        now: Instant,
    ) -> Result<Inserted, InsertError> {
        let result =
            Self::check_size(key, answer).and_then(|()| self.try_store(key, answer, checked, now));
        self.count_insert(result)
    }

    fn count_insert(&self, result: Result<Inserted, InsertError>) -> Result<Inserted, InsertError> {
        let counter = match result {
            Ok(_) => &self.counters.inserts,
            Err(_) => &self.counters.inserts_refused,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        result
    }

    fn check_size(key: &CacheKey, answer: &[u8]) -> Result<(), InsertError> {
        if !key.is_valid() {
            return Err(InsertError::InvalidKey);
        }
        if answer.len() > MAX_MESSAGE_LEN {
            return Err(InsertError::TooLarge {
                size: answer.len(),
                max: MAX_MESSAGE_LEN,
            });
        }
        Ok(())
    }

    fn try_insert(
        &self,
        key: &CacheKey,
        answer: &[u8],
        now: Instant,
    ) -> Result<Inserted, InsertError> {
        Self::check_size(key, answer)?;
        let msg = Message::from_vec(answer).map_err(InsertError::Parse)?;
        let checked = CheckedAnswer {
            rcode: u16::from(msg.response_code()),
            ttl_cap: None,
        };
        self.try_store(key, answer, checked, now)
    }

    /// Everything [`Cache::insert`] does after the full parse.
    fn try_store(
        &self,
        key: &CacheKey,
        answer: &[u8],
        checked: CheckedAnswer,
        now: Instant,
    ) -> Result<Inserted, InsertError> {
        let header = Header::parse(answer).map_err(|_| InsertError::Malformed)?;
        if header.flags & FLAG_QR == 0 || header.opcode() != 0 {
            return Err(InsertError::NotAResponse);
        }
        if header.flags & FLAG_TC != 0 {
            return Err(InsertError::Truncated);
        }
        let nxdomain = match checked.rcode {
            RCODE_NOERROR => false,
            RCODE_NXDOMAIN => true,
            other => return Err(InsertError::Rcode(other)),
        };
        if header.qdcount != 1 {
            return Err(InsertError::QuestionMismatch);
        }
        let mut qname = [0u8; MAX_NAME_LEN];
        let (after_name, name_len) = wire::read_plain_name(answer, HEADER_LEN, &mut qname)
            .map_err(|_| InsertError::QuestionMismatch)?;
        let qtype = wire::read_u16(answer, after_name).ok_or(InsertError::Malformed)?;
        let qclass = wire::read_u16(answer, after_name + 2).ok_or(InsertError::Malformed)?;
        if qname.get(..name_len) != Some(key.qname_wire())
            || qtype != key.qtype()
            || qclass != key.qclass()
        {
            return Err(InsertError::QuestionMismatch);
        }

        // Walk every record: TTL offsets, the first authority SOA, answers of the query type.
        let answers = usize::from(header.ancount);
        let authorities = usize::from(header.nscount);
        let total = answers + authorities + usize::from(header.arcount);
        let mut pos = after_name + 4;
        let mut raw: Vec<(usize, u32, u16)> = Vec::with_capacity(total);
        let mut soa: Option<(usize, u32)> = None; // (index in raw, min(SOA TTL, MINIMUM))
        let mut has_qtype_answer = false;
        let mut trailing_opt: Option<usize> = None; // rdata start of an OPT that ends the message
        for i in 0..total {
            let (rr, next) = wire::read_record(answer, pos).map_err(|_| InsertError::Malformed)?;
            pos = next;
            if rr.rtype == TYPE_OPT {
                trailing_opt = (i + 1 == total).then_some(rr.rdata.start);
                continue;
            }
            if i < answers && (rr.rtype == qtype || qtype == TYPE_ANY) {
                has_qtype_answer = true;
            }
            let ttl = effective_wire_ttl(rr.ttl);
            if (answers..answers + authorities).contains(&i)
                && rr.rtype == TYPE_SOA
                && soa.is_none()
            {
                // MINIMUM is the last field of the SOA RDATA (RFC 1035 §3.3.13).
                let minimum = rr
                    .rdata
                    .end
                    .checked_sub(4)
                    .filter(|&at| at >= rr.rdata.start)
                    .and_then(|at| wire::read_u32(answer, at))
                    .ok_or(InsertError::Malformed)?;
                soa = Some((raw.len(), ttl.min(effective_wire_ttl(minimum))));
            }
            raw.push((rr.ttl_offset, ttl, rr.rtype));
        }
        let kind = if nxdomain {
            AnswerKind::NxDomain
        } else if has_qtype_answer {
            AnswerKind::Positive
        } else {
            AnswerKind::NoData
        };

        let (low, high) = match kind {
            AnswerKind::Positive => (self.cfg.min_ttl, self.cfg.max_ttl),
            AnswerKind::NxDomain | AnswerKind::NoData => {
                let high = self.cfg.negative_max_ttl;
                (self.cfg.min_ttl.min(high), high)
            }
        };
        let negative_soa = match kind {
            AnswerKind::Positive => None,
            _ => Some(soa.ok_or(InsertError::NegativeWithoutSoa)?),
        };
        let mut slots = Vec::with_capacity(raw.len());
        let mut entry_ttl = u32::MAX;
        for (i, &(offset, ttl, _)) in raw.iter().enumerate() {
            let ttl = match negative_soa {
                // RFC 2308 §5: the negative answer lives for min(SOA TTL, SOA MINIMUM).
                Some((soa_index, negative_ttl)) if soa_index == i => negative_ttl,
                _ => ttl,
            };
            let stored = checked
                .ttl_cap
                .map_or(ttl, |cap| ttl.min(cap))
                .clamp(low, high);
            entry_ttl = entry_ttl.min(stored);
            let offset = u16::try_from(offset).map_err(|_| InsertError::Malformed)?;
            slots.push(TtlSlot {
                offset,
                ttl: stored,
            });
        }
        if slots.is_empty() || entry_ttl == 0 {
            return Err(InsertError::ZeroTtl);
        }

        let mut stored_wire = answer.get(..pos).ok_or(InsertError::Malformed)?.to_vec();
        if let Some(rdata_start) = trailing_opt {
            stored_wire.truncate(rdata_start);
            if let Some(rdlen) = stored_wire.get_mut(rdata_start.saturating_sub(2)..) {
                rdlen.copy_from_slice(&[0, 0]);
            }
        }
        let weight = stored_wire.len() + slots.len() * size_of::<TtlSlot>() + ENTRY_OVERHEAD;
        if weight > self.max_entry_bytes {
            return Err(InsertError::TooLarge {
                size: weight,
                max: self.max_entry_bytes,
            });
        }
        let entry = Entry {
            wire: stored_wire.into_boxed_slice(),
            slots: slots.into_boxed_slice(),
            ttl: entry_ttl,
            inserted: now,
            weight,
            hits: AtomicU64::new(0),
            prefetch_reported: AtomicBool::new(false),
        };
        let pushed_out = self
            .store
            .insert_with_lifecycle(key.clone(), Arc::new(entry));
        // The previous answer under this key, if any, is a replacement, not an eviction.
        let evicted = pushed_out.iter().filter(|(k, _)| k != key).count();
        if evicted > 0 {
            self.counters
                .evictions
                .fetch_add(evicted as u64, Ordering::Relaxed);
        }
        drop(pushed_out);
        Ok(Inserted {
            kind,
            ttl: entry_ttl,
            bytes: weight,
        })
    }

    /// Sets (or, with `None`, lifts) the attack-mode TTL clamp. Takes effect on the next
    /// lookup without locking: served TTLs, entry freshness and the stale TTL are all capped
    /// by it. `Some(0)` makes every lookup miss (and stale answers carry TTL 0).
    pub fn set_attack_max_ttl(&self, clamp: Option<u32>) {
        self.attack_max_ttl
            .store(clamp.unwrap_or(NO_CLAMP), Ordering::Relaxed);
    }

    /// The attack-mode clamp in force, if any.
    pub fn attack_max_ttl(&self) -> Option<u32> {
        let v = self.attack_max_ttl.load(Ordering::Relaxed);
        (v != NO_CLAMP).then_some(v)
    }

    /// The TTL a stale answer is served with now: `stale_ttl`, capped by the attack clamp.
    pub fn stale_ttl(&self) -> u32 {
        self.cfg
            .stale_ttl
            .min(self.attack_max_ttl.load(Ordering::Relaxed))
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> CacheStats {
        let c = &self.counters;
        CacheStats {
            hits: c.hits.load(Ordering::Relaxed),
            misses: c.misses.load(Ordering::Relaxed),
            stale_served: c.stale_served.load(Ordering::Relaxed),
            prefetches: c.prefetches.load(Ordering::Relaxed),
            evictions: c.evictions.load(Ordering::Relaxed),
            inserts: c.inserts.load(Ordering::Relaxed),
            inserts_refused: c.inserts_refused.load(Ordering::Relaxed),
            entries: self.len(),
            bytes: self.bytes(),
        }
    }

    /// Bytes charged by all entries: each entry's wire answer, its TTL table and a fixed
    /// per-entry overhead for the key and bookkeeping. Never above [`CacheConfig::max_bytes`].
    pub fn bytes(&self) -> usize {
        usize::try_from(self.store.weight()).unwrap_or(usize::MAX)
    }

    /// Number of entries (fresh, stale or dead-but-not-yet-evicted).
    pub fn len(&self) -> usize {
        self.store.len()
    }

    /// Whether the cache holds no entry.
    pub fn is_empty(&self) -> bool {
        self.store.is_empty()
    }

    /// Removes the entry under `key`; returns whether there was one.
    pub fn remove(&self, key: &CacheKey) -> bool {
        self.store.remove(key).is_some()
    }

    /// Removes every entry.
    pub fn clear(&self) {
        self.store.clear();
    }
}

/// The entry's age in whole seconds (0 if `now` precedes the insert).
fn age_secs(entry: &Entry, now: Instant) -> u64 {
    now.saturating_duration_since(entry.inserted).as_secs()
}

/// RFC 2181 §8: a TTL with the top bit set is treated as zero.
fn effective_wire_ttl(ttl: u32) -> u32 {
    if ttl > i32::MAX as u32 { 0 } else { ttl }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::op::{Edns, MessageType, OpCode, Query, ResponseCode};
    use hickory_proto::rr::rdata::{A, CNAME, SOA};
    use hickory_proto::rr::{Name, RData, Record, RecordType};

    fn name(s: &str) -> Name {
        Name::from_ascii(s).expect("test name")
    }

    fn response(qname: &str, qtype: RecordType, rcode: ResponseCode) -> Message {
        let mut m = Message::new();
        m.set_id(7)
            .set_message_type(MessageType::Response)
            .set_op_code(OpCode::Query)
            .set_recursion_desired(true)
            .set_recursion_available(true)
            .set_response_code(rcode)
            .add_query(Query::query(name(qname), qtype));
        m
    }

    fn a_answer(qname: &str, ttls: &[u32]) -> Vec<u8> {
        let mut m = response(qname, RecordType::A, ResponseCode::NoError);
        for (i, &ttl) in ttls.iter().enumerate() {
            let ip = A::new(192, 0, 2, u8::try_from(i).expect("few records"));
            m.add_answer(Record::from_rdata(name(qname), ttl, RData::A(ip)));
        }
        m.to_vec().expect("encode")
    }

    fn soa(ttl: u32, minimum: u32) -> Record {
        let rdata = SOA::new(
            name("ns.example."),
            name("host.example."),
            1,
            2,
            3,
            4,
            minimum,
        );
        Record::from_rdata(name("example."), ttl, RData::SOA(rdata))
    }

    fn negative(qname: &str, rcode: ResponseCode, soa_ttl: u32, minimum: u32) -> Vec<u8> {
        let mut m = response(qname, RecordType::A, rcode);
        m.add_name_server(soa(soa_ttl, minimum));
        m.to_vec().expect("encode")
    }

    fn key(qname: &str) -> CacheKey {
        CacheKey::new(qname.as_bytes(), 1, 1, false, false)
    }

    fn served_ttls(out: &[u8]) -> Vec<u32> {
        let m = Message::from_vec(out).expect("served answer parses");
        m.answers()
            .iter()
            .chain(m.name_servers())
            .map(Record::ttl)
            .collect()
    }

    fn secs(t0: Instant, s: u64) -> Instant {
        t0 + Duration::from_secs(s)
    }

    #[test]
    fn hit_patches_id_and_counts_ttls_down() {
        let cache = Cache::new(CacheConfig::default());
        let t0 = Instant::now();
        let answer = a_answer("www.example.com.", &[300, 120]);
        let ins = cache
            .insert(&key("WWW.example.com"), &answer, t0)
            .expect("insert");
        assert_eq!((ins.kind, ins.ttl), (AnswerKind::Positive, 120));
        let mut out = [0u8; 512];
        let hit = cache.lookup(
            &key("www.example.com"),
            0xBEEF,
            secs(t0, 20) + Duration::from_millis(999),
            &mut out,
        );
        assert_eq!(
            hit,
            Lookup::Hit {
                len: answer.len(),
                min_ttl: 100,
                prefetch: false
            }
        );
        assert_eq!(&out[..2], &[0xBE, 0xEF]);
        assert_eq!(served_ttls(&out[..answer.len()]), vec![280, 100]);
        // Everything but the ID and TTLs is the upstream answer.
        assert_eq!(&out[2..answer.len() - 30], &answer[2..answer.len() - 30]);
        assert_eq!(
            cache.lookup(&key("www.example.com"), 1, secs(t0, 120), &mut out),
            Lookup::Miss
        );
        let s = cache.stats();
        assert_eq!((s.hits, s.misses, s.inserts, s.entries), (1, 1, 1, 1));
    }

    #[test]
    fn buffer_too_small_writes_nothing() {
        let cache = Cache::new(CacheConfig::default());
        let t0 = Instant::now();
        let answer = a_answer("a.example.", &[60]);
        cache
            .insert(&key("a.example"), &answer, t0)
            .expect("insert");
        let mut out = vec![0u8; answer.len() - 1];
        assert_eq!(
            cache.lookup(&key("a.example"), 1, t0, &mut out),
            Lookup::BufferTooSmall {
                needed: answer.len()
            }
        );
        assert!(out.iter().all(|&b| b == 0));
        assert_eq!(cache.stats().hits, 0);
    }

    #[test]
    fn clamps_apply_at_insert_and_attack_clamp_at_lookup() {
        let cfg = CacheConfig {
            min_ttl: 10,
            max_ttl: 600,
            ..CacheConfig::default()
        };
        let cache = Cache::new(cfg);
        let t0 = Instant::now();
        let answer = a_answer("c.example.", &[2, 90_000]);
        assert_eq!(
            cache
                .insert(&key("c.example"), &answer, t0)
                .expect("insert")
                .ttl,
            10
        );
        let mut out = [0u8; 512];
        assert!(matches!(
            cache.lookup(&key("c.example"), 1, t0, &mut out),
            Lookup::Hit { min_ttl: 10, .. }
        ));
        assert_eq!(served_ttls(&out[..answer.len()]), vec![10, 600]);

        cache.set_attack_max_ttl(Some(5));
        assert_eq!(cache.attack_max_ttl(), Some(5));
        assert!(matches!(
            cache.lookup(&key("c.example"), 1, secs(t0, 1), &mut out),
            Lookup::Hit { min_ttl: 4, .. }
        ));
        assert_eq!(served_ttls(&out[..answer.len()]), vec![4, 4]);
        assert_eq!(
            cache.lookup(&key("c.example"), 1, secs(t0, 5), &mut out),
            Lookup::Miss
        );
        cache.set_attack_max_ttl(None);
        assert!(matches!(
            cache.lookup(&key("c.example"), 1, secs(t0, 5), &mut out),
            Lookup::Hit { min_ttl: 5, .. }
        ));
    }

    #[test]
    fn negative_answers_live_for_min_of_soa_ttl_and_minimum() {
        let cache = Cache::new(CacheConfig {
            negative_max_ttl: 900,
            ..CacheConfig::default()
        });
        let t0 = Instant::now();
        let nx = negative("nx.example.", ResponseCode::NXDomain, 3600, 300);
        let ins = cache.insert(&key("nx.example"), &nx, t0).expect("nxdomain");
        assert_eq!((ins.kind, ins.ttl), (AnswerKind::NxDomain, 300));
        let nodata = negative("nd.example.", ResponseCode::NoError, 200, 7200);
        let ins = cache
            .insert(&key("nd.example"), &nodata, t0)
            .expect("nodata");
        assert_eq!((ins.kind, ins.ttl), (AnswerKind::NoData, 200));
        let big = negative("big.example.", ResponseCode::NXDomain, 86_400, 86_400);
        assert_eq!(
            cache
                .insert(&key("big.example"), &big, t0)
                .expect("clamped")
                .ttl,
            900
        );

        let mut out = [0u8; 512];
        assert!(matches!(
            cache.lookup(&key("nx.example"), 9, secs(t0, 100), &mut out),
            Lookup::Hit { min_ttl: 200, .. }
        ));
        let served = Message::from_vec(&out[..nx.len()]).expect("parses");
        assert_eq!(served.response_code(), ResponseCode::NXDomain);
        assert_eq!(
            served.name_servers()[0].ttl(),
            200,
            "SOA TTL counts down from 300"
        );
        assert_eq!(
            cache.lookup(&key("nx.example"), 9, secs(t0, 300), &mut out),
            Lookup::Miss
        );

        let mut no_soa = response("x.example.", RecordType::A, ResponseCode::NXDomain);
        no_soa.set_id(1);
        let no_soa = no_soa.to_vec().expect("encode");
        assert!(matches!(
            cache.insert(&key("x.example"), &no_soa, t0),
            Err(InsertError::NegativeWithoutSoa)
        ));
    }

    #[test]
    fn cname_without_the_type_is_nodata() {
        let cache = Cache::new(CacheConfig::default());
        let mut m = response("alias.example.", RecordType::A, ResponseCode::NoError);
        m.add_answer(Record::from_rdata(
            name("alias.example."),
            50,
            RData::CNAME(CNAME(name("t.example."))),
        ));
        m.add_name_server(soa(40, 60));
        let ins = cache
            .insert(
                &key("alias.example"),
                &m.to_vec().expect("encode"),
                Instant::now(),
            )
            .expect("insert");
        assert_eq!((ins.kind, ins.ttl), (AnswerKind::NoData, 40));
    }

    #[test]
    fn unusable_answers_are_refused_and_counted() {
        let cache = Cache::new(CacheConfig::default());
        let t0 = Instant::now();
        let k = key("r.example");
        for rcode in [
            ResponseCode::ServFail,
            ResponseCode::Refused,
            ResponseCode::FormErr,
        ] {
            let m = response("r.example.", RecordType::A, rcode)
                .to_vec()
                .expect("encode");
            let err = cache.insert(&k, &m, t0).expect_err("uncacheable rcode");
            assert!(
                matches!(err, InsertError::Rcode(c) if c == u16::from(rcode)),
                "{err}"
            );
        }
        let mut tc = response("r.example.", RecordType::A, ResponseCode::NoError);
        tc.set_truncated(true);
        assert!(matches!(
            cache.insert(&k, &tc.to_vec().expect("encode"), t0),
            Err(InsertError::Truncated)
        ));
        let other = a_answer("other.example.", &[60]);
        assert!(matches!(
            cache.insert(&k, &other, t0),
            Err(InsertError::QuestionMismatch)
        ));
        let aaaa_key = CacheKey::new(b"r.example", 28, 1, false, false);
        assert!(matches!(
            cache.insert(&aaaa_key, &a_answer("r.example.", &[60]), t0),
            Err(InsertError::QuestionMismatch)
        ));
        let mut query = a_answer("r.example.", &[60]);
        query[2] &= 0x7F; // clear QR
        assert!(matches!(
            cache.insert(&k, &query, t0),
            Err(InsertError::NotAResponse)
        ));
        assert!(matches!(
            cache.insert(&k, &[1, 2, 3], t0),
            Err(InsertError::Parse(_))
        ));
        assert!(matches!(
            cache.insert(&k, &a_answer("r.example.", &[0]), t0),
            Err(InsertError::ZeroTtl)
        ));
        let bad_key = CacheKey::new(b"a..b", 1, 1, false, false);
        assert!(matches!(
            cache.insert(&bad_key, &other, t0),
            Err(InsertError::InvalidKey)
        ));
        let s = cache.stats();
        assert_eq!((s.inserts, s.inserts_refused, s.entries), (0, 10, 0));
    }

    /// What a caller's full parse hands to `insert_checked`.
    fn checked_of(answer: &[u8], ttl_cap: Option<u32>) -> CheckedAnswer {
        let m = Message::from_vec(answer).expect("caller's parse");
        CheckedAnswer {
            rcode: u16::from(m.response_code()),
            ttl_cap,
        }
    }

    #[test]
    fn checked_inserts_store_what_inserts_store() {
        let t0 = Instant::now();
        let mut alias = response("alias.example.", RecordType::A, ResponseCode::NoError);
        alias.add_answer(Record::from_rdata(
            name("alias.example."),
            50,
            RData::CNAME(CNAME(name("t.example."))),
        ));
        alias.add_name_server(soa(40, 60));
        let cases = [
            ("a.example", a_answer("a.example.", &[300, 60, 7200])),
            (
                "nx.example",
                negative("nx.example.", ResponseCode::NXDomain, 3600, 300),
            ),
            (
                "nd.example",
                negative("nd.example.", ResponseCode::NoError, 200, 7200),
            ),
            ("alias.example", alias.to_vec().expect("encode")),
        ];
        for (qname, answer) in &cases {
            let (plain, checked) = (
                Cache::new(CacheConfig::default()),
                Cache::new(CacheConfig::default()),
            );
            let k = key(qname);
            let a = plain.insert(&k, answer, t0).expect("insert");
            let b = checked
                .insert_checked(&k, answer, checked_of(answer, None), t0)
                .expect("insert_checked");
            assert_eq!(a, b, "{qname}");
            let (mut out_a, mut out_b) = ([0u8; 512], [0u8; 512]);
            let later = secs(t0, 20);
            assert_eq!(
                plain.lookup(&k, 9, later, &mut out_a),
                checked.lookup(&k, 9, later, &mut out_b),
                "{qname}"
            );
            assert_eq!(out_a, out_b, "{qname}");
            assert_eq!(checked.stats().inserts, 1);
        }
    }

    #[test]
    fn checked_inserts_apply_the_ttl_cap() {
        let cache = Cache::new(CacheConfig {
            min_ttl: 10,
            ..CacheConfig::default()
        });
        let t0 = Instant::now();
        let answer = a_answer("cap.example.", &[300, 20, 5]);
        let k = key("cap.example");
        let ins = cache
            .insert_checked(&k, &answer, checked_of(&answer, Some(30)), t0)
            .expect("insert");
        // 300 is capped to 30, 20 stays, 5 is raised to the configured minimum.
        assert_eq!(ins.ttl, 10);
        let mut out = [0u8; 512];
        let Lookup::Hit { len, .. } = cache.lookup(&k, 1, t0, &mut out) else {
            panic!("expected a hit");
        };
        assert_eq!(served_ttls(&out[..len]), vec![30, 20, 10]);
        let nx = negative("nx.example.", ResponseCode::NXDomain, 3600, 300);
        let ins = cache
            .insert_checked(&key("nx.example"), &nx, checked_of(&nx, Some(30)), t0)
            .expect("insert");
        assert_eq!((ins.kind, ins.ttl), (AnswerKind::NxDomain, 30));
    }

    #[test]
    fn checked_inserts_refuse_and_count_what_inserts_refuse() {
        let cache = Cache::new(CacheConfig::default());
        let t0 = Instant::now();
        let k = key("r.example");
        let refused = |answer: &[u8], checked: CheckedAnswer| {
            cache
                .insert_checked(&k, answer, checked, t0)
                .expect_err("refused")
        };
        for rcode in [
            ResponseCode::ServFail,
            ResponseCode::Refused,
            ResponseCode::FormErr,
        ] {
            let m = response("r.example.", RecordType::A, rcode)
                .to_vec()
                .expect("encode");
            let err = refused(&m, checked_of(&m, None));
            assert!(
                matches!(err, InsertError::Rcode(c) if c == u16::from(rcode)),
                "{err}"
            );
        }
        let mut tc = response("r.example.", RecordType::A, ResponseCode::NoError);
        tc.set_truncated(true);
        let tc = tc.to_vec().expect("encode");
        assert!(matches!(
            refused(&tc, checked_of(&tc, None)),
            InsertError::Truncated
        ));
        let other = a_answer("other.example.", &[60]);
        assert!(matches!(
            refused(&other, checked_of(&other, None)),
            InsertError::QuestionMismatch
        ));
        let mut query = a_answer("r.example.", &[60]);
        query[2] &= 0x7F; // clear QR
        assert!(matches!(
            refused(&query, checked_of(&query, None)),
            InsertError::NotAResponse
        ));
        let ok = CheckedAnswer {
            rcode: 0,
            ttl_cap: None,
        };
        // Bytes that no parse accepted are still refused by the walk.
        assert!(matches!(refused(&[1, 2, 3], ok), InsertError::Malformed));
        let cut = a_answer("r.example.", &[60]);
        assert!(matches!(
            refused(&cut[..cut.len() - 3], ok),
            InsertError::Malformed
        ));
        let zero = a_answer("r.example.", &[0]);
        assert!(matches!(
            refused(&zero, checked_of(&zero, None)),
            InsertError::ZeroTtl
        ));
        let capped_to_zero = a_answer("r.example.", &[60]);
        assert!(matches!(
            refused(&capped_to_zero, checked_of(&capped_to_zero, Some(0))),
            InsertError::ZeroTtl
        ));
        let no_soa = response("r.example.", RecordType::A, ResponseCode::NXDomain)
            .to_vec()
            .expect("encode");
        assert!(matches!(
            refused(&no_soa, checked_of(&no_soa, None)),
            InsertError::NegativeWithoutSoa
        ));
        let bad_key = CacheKey::new(b"a..b", 1, 1, false, false);
        assert!(matches!(
            cache.insert_checked(&bad_key, &other, ok, t0),
            Err(InsertError::InvalidKey)
        ));
        let huge = vec![0u8; MAX_MESSAGE_LEN + 1];
        assert!(matches!(refused(&huge, ok), InsertError::TooLarge { .. }));
        let s = cache.stats();
        assert_eq!((s.inserts, s.inserts_refused, s.entries), (0, 13, 0));
    }

    #[test]
    fn oversize_entries_are_refused() {
        let cache = Cache::new(CacheConfig {
            max_bytes: 4096,
            ..CacheConfig::default()
        });
        assert_eq!(cache.max_entry_bytes(), 2048);
        let many: Vec<u32> = vec![60; 100];
        let answer = a_answer("big.example.", &many);
        let err = cache
            .insert(&key("big.example"), &answer, Instant::now())
            .expect_err("too big");
        assert!(
            matches!(err, InsertError::TooLarge { max: 2048, .. }),
            "{err}"
        );
        assert!(cache.is_empty());
    }

    #[test]
    fn opt_options_are_dropped_but_opt_kept() {
        let cache = Cache::new(CacheConfig::default());
        let mut m = response("e.example.", RecordType::A, ResponseCode::NoError);
        m.add_answer(Record::from_rdata(
            name("e.example."),
            60,
            RData::A(A::new(192, 0, 2, 1)),
        ));
        let mut edns = Edns::new();
        edns.set_max_payload(1232).set_dnssec_ok(true);
        edns.options_mut()
            .insert(hickory_proto::rr::rdata::opt::EdnsOption::Unknown(
                10,
                vec![1; 16],
            ));
        m.set_edns(edns);
        let answer = m.to_vec().expect("encode");
        let k = CacheKey::new(b"e.example", 1, 1, true, false);
        let ins = cache.insert(&k, &answer, Instant::now()).expect("insert");
        let mut out = [0u8; 512];
        let Lookup::Hit { len, .. } = cache.lookup(&k, 3, Instant::now(), &mut out) else {
            panic!("expected a hit");
        };
        assert_eq!(
            len,
            answer.len() - 20,
            "16 option bytes and their 4-byte header dropped"
        );
        assert!(ins.bytes > len);
        let served = Message::from_vec(&out[..len]).expect("parses");
        let edns = served.extensions().as_ref().expect("OPT kept");
        assert!(edns.flags().dnssec_ok);
        assert_eq!(edns.max_payload(), 1232);
        assert_eq!(edns.options().as_ref().len(), 0);
    }

    #[test]
    fn serve_stale_within_window_only() {
        let cfg = CacheConfig {
            stale_window: Duration::from_secs(100),
            stale_ttl: 30,
            ..CacheConfig::default()
        };
        let cache = Cache::new(cfg);
        let t0 = Instant::now();
        let answer = a_answer("s.example.", &[60, 600]);
        cache
            .insert(&key("s.example"), &answer, t0)
            .expect("insert");
        let mut out = [0u8; 512];
        assert!(matches!(
            cache.lookup_stale(&key("s.example"), 1, secs(t0, 10), &mut out),
            Lookup::Hit { min_ttl: 50, .. }
        ));
        assert_eq!(
            cache.lookup(&key("s.example"), 1, secs(t0, 60), &mut out),
            Lookup::Miss
        );
        let stale = cache.lookup_stale(&key("s.example"), 0x1234, secs(t0, 159), &mut out);
        assert_eq!(stale, Lookup::Stale { len: answer.len() });
        assert_eq!(&out[..2], &[0x12, 0x34]);
        assert_eq!(served_ttls(&out[..answer.len()]), vec![30, 30]);
        assert_eq!(
            cache.lookup_stale(&key("s.example"), 1, secs(t0, 160), &mut out),
            Lookup::Miss
        );
        cache.set_attack_max_ttl(Some(7));
        assert_eq!(cache.stale_ttl(), 7);
        let s = cache.stats();
        assert_eq!((s.hits, s.misses, s.stale_served), (1, 1, 1));
    }

    #[test]
    fn prefetch_is_reported_once_per_generation() {
        let cfg = CacheConfig {
            prefetch_min_hits: 3,
            prefetch_fraction_pct: 10,
            ..CacheConfig::default()
        };
        let cache = Cache::new(cfg);
        let t0 = Instant::now();
        let k = key("p.example");
        let answer = a_answer("p.example.", &[100]);
        cache.insert(&k, &answer, t0).expect("insert");
        let mut out = [0u8; 512];
        let mut prefetch = |at: u64| match cache.lookup(&k, 1, secs(t0, at), &mut out) {
            Lookup::Hit { prefetch, .. } => prefetch,
            other => panic!("expected a hit, got {other:?}"),
        };
        // Near expiry but only the first and second hits: not popular enough yet.
        assert!(!prefetch(95));
        assert!(!prefetch(95));
        // Third hit, but 11 s remain (> 10 %).
        assert!(!prefetch(89));
        assert!(prefetch(90));
        assert!(!prefetch(91), "reported once");
        // A fresh insert re-arms it.
        cache.insert(&k, &answer, secs(t0, 91)).expect("refresh");
        for at in [92, 93, 94] {
            assert!(!prefetch(at));
        }
        assert!(prefetch(181));
        assert_eq!(cache.stats().prefetches, 2);
    }

    #[test]
    fn flags_in_key_keep_answers_apart() {
        let cache = Cache::new(CacheConfig::default());
        let t0 = Instant::now();
        cache
            .insert(&key("f.example"), &a_answer("f.example.", &[60]), t0)
            .expect("insert");
        let mut out = [0u8; 512];
        let do_key = CacheKey::new(b"f.example", 1, 1, true, false);
        assert_eq!(cache.lookup(&do_key, 1, t0, &mut out), Lookup::Miss);
        assert!(matches!(
            cache.lookup(&key("F.EXAMPLE."), 1, t0, &mut out),
            Lookup::Hit { .. }
        ));
    }

    #[test]
    fn cache_is_send_and_sync() {
        fn check<T: Send + Sync>() {}
        check::<Cache>();
    }
}
