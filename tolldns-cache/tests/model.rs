//! Model-based tests: the cache against a plain `HashMap` model with explicit time, written
//! straight from the TTL rules in the crate documentation; and the byte bound under eviction.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use hickory_proto::op::{Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::rdata::{A, SOA};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use proptest::prelude::*;
use tolldns_cache::{Cache, CacheConfig, CacheKey, InsertError, Lookup};

const NAMES: [&str; 3] = ["a.example.", "b.example.", "c.example."];

fn name(s: &str) -> Name {
    Name::from_ascii(s).expect("test name")
}

#[derive(Debug, Clone)]
enum Answer {
    Positive(Vec<u32>),
    NxDomain { soa_ttl: u32, minimum: u32 },
    ServFail,
    WrongName,
}

fn encode(qname: &str, answer: &Answer) -> Vec<u8> {
    let rcode = match answer {
        Answer::Positive(_) | Answer::WrongName => ResponseCode::NoError,
        Answer::NxDomain { .. } => ResponseCode::NXDomain,
        Answer::ServFail => ResponseCode::ServFail,
    };
    let qname = if matches!(answer, Answer::WrongName) {
        "elsewhere.example."
    } else {
        qname
    };
    let mut m = Message::new();
    m.set_id(1)
        .set_message_type(MessageType::Response)
        .set_op_code(OpCode::Query)
        .set_response_code(rcode)
        .add_query(Query::query(name(qname), RecordType::A));
    match answer {
        Answer::Positive(ttls) => {
            for (i, &ttl) in ttls.iter().enumerate() {
                let ip = A::new(198, 51, 100, u8::try_from(i).expect("few records"));
                m.add_answer(Record::from_rdata(name(qname), ttl, RData::A(ip)));
            }
        }
        Answer::NxDomain { soa_ttl, minimum } => {
            let soa = SOA::new(
                name("ns.example."),
                name("h.example."),
                1,
                2,
                3,
                4,
                *minimum,
            );
            m.add_name_server(Record::from_rdata(
                name("example."),
                *soa_ttl,
                RData::SOA(soa),
            ));
        }
        Answer::ServFail => {}
        Answer::WrongName => {
            m.add_answer(Record::from_rdata(
                name(qname),
                60,
                RData::A(A::new(192, 0, 2, 9)),
            ));
        }
    }
    m.to_vec().expect("encode")
}

#[derive(Debug, Clone)]
enum Op {
    Insert(usize, Answer),
    Lookup(usize, u16),
    LookupStale(usize, u16),
    Advance(u64),
    SetAttack(Option<u32>),
}

fn answer_strategy() -> impl Strategy<Value = Answer> {
    prop_oneof![
        6 => prop::collection::vec(0u32..2_000, 1..4).prop_map(Answer::Positive),
        2 => (0u32..1_000, 0u32..1_000).prop_map(|(soa_ttl, minimum)| Answer::NxDomain { soa_ttl, minimum }),
        1 => Just(Answer::ServFail),
        1 => Just(Answer::WrongName),
    ]
}

fn op_strategy() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (0usize..6, answer_strategy()).prop_map(|(k, a)| Op::Insert(k, a)),
        5 => (0usize..6, any::<u16>()).prop_map(|(k, id)| Op::Lookup(k, id)),
        2 => (0usize..6, any::<u16>()).prop_map(|(k, id)| Op::LookupStale(k, id)),
        4 => (0u64..120_000).prop_map(Op::Advance),
        1 => prop::option::of(0u32..400).prop_map(Op::SetAttack),
    ]
}

const MIN_TTL: u32 = 0;
const MAX_TTL: u32 = 1_000;
const NEG_MAX: u32 = 300;
const STALE_WINDOW_MS: u64 = 200_000;
const STALE_TTL: u32 = 30;
const PREFETCH_HITS: u64 = 2;
const PREFETCH_PCT: u64 = 20;

fn config() -> CacheConfig {
    CacheConfig {
        max_bytes: 16 * 1024 * 1024,
        min_ttl: MIN_TTL,
        max_ttl: MAX_TTL,
        negative_max_ttl: NEG_MAX,
        stale_window: Duration::from_millis(STALE_WINDOW_MS),
        stale_ttl: STALE_TTL,
        prefetch_min_hits: 2,
        prefetch_fraction_pct: 20,
    }
}

/// The model's entry: stored per-record TTLs (answer then authority), insert time in ms.
#[derive(Debug)]
struct ModelEntry {
    inserted_ms: u64,
    stored: Vec<u32>,
    len: usize,
    hits: u64,
    reported: bool,
}

impl ModelEntry {
    fn ttl(&self) -> u32 {
        self.stored.iter().copied().min().unwrap_or(0)
    }
}

/// What the model says an answer is stored as, or `None` when it must be refused.
fn model_store(answer: &Answer) -> Option<Vec<u32>> {
    let stored = match answer {
        Answer::Positive(ttls) => ttls.iter().map(|t| (*t).clamp(MIN_TTL, MAX_TTL)).collect(),
        Answer::NxDomain { soa_ttl, minimum } => {
            vec![(*soa_ttl).min(*minimum).clamp(MIN_TTL, NEG_MAX)]
        }
        Answer::ServFail | Answer::WrongName => return None,
    };
    (stored.iter().min() != Some(&0)).then_some(stored)
}

fn served_ttls(out: &[u8], id: u16) -> Vec<u32> {
    let m = Message::from_vec(out).expect("served answer parses");
    assert_eq!(m.id(), id);
    m.answers()
        .iter()
        .chain(m.name_servers())
        .map(Record::ttl)
        .collect()
}

#[derive(Debug, Default)]
struct Counts {
    hits: u64,
    misses: u64,
    stale: u64,
    prefetches: u64,
    inserts: u64,
    refused: u64,
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn cache_matches_model(ops in prop::collection::vec(op_strategy(), 1..80)) {
        let cache = Cache::new(config());
        let t0 = Instant::now();
        let keys: Vec<CacheKey> = (0..6)
            .map(|i| CacheKey::new(NAMES[i % 3].as_bytes(), 1, 1, i >= 3, false))
            .collect();
        let mut model: HashMap<usize, ModelEntry> = HashMap::new();
        let mut now_ms = 0u64;
        let mut attack: Option<u32> = None;
        let mut counts = Counts::default();
        let mut out = vec![0u8; 4096];

        for op in ops {
            let now = t0 + Duration::from_millis(now_ms);
            match op {
                Op::Advance(ms) => now_ms += ms,
                Op::SetAttack(c) => {
                    attack = c;
                    cache.set_attack_max_ttl(c);
                }
                Op::Insert(k, answer) => {
                    let wire = encode(NAMES[k % 3], &answer);
                    let got = cache.insert(&keys[k], &wire, now);
                    match model_store(&answer) {
                        Some(stored) => {
                            let ins = got.expect("model says cacheable");
                            prop_assert_eq!(ins.ttl, stored.iter().copied().min().unwrap_or(0));
                            counts.inserts += 1;
                            model.insert(k, ModelEntry { inserted_ms: now_ms, stored, len: wire.len(), hits: 0, reported: false });
                        }
                        None => {
                            let err = got.expect_err("model says refused");
                            let expected_kind = match answer {
                                Answer::ServFail => matches!(err, InsertError::Rcode(2)),
                                Answer::WrongName => matches!(err, InsertError::QuestionMismatch),
                                _ => matches!(err, InsertError::ZeroTtl),
                            };
                            prop_assert!(expected_kind, "{:?}", err);
                            counts.refused += 1;
                        }
                    }
                }
                Op::Lookup(k, id) | Op::LookupStale(k, id) => {
                    let stale_allowed = matches!(op, Op::LookupStale(..));
                    let got = if stale_allowed {
                        cache.lookup_stale(&keys[k], id, now, &mut out)
                    } else {
                        cache.lookup(&keys[k], id, now, &mut out)
                    };
                    let clamp = attack.unwrap_or(u32::MAX);
                    let expected = model.get_mut(&k).and_then(|e| {
                        let age_ms = now_ms - e.inserted_ms;
                        let age = age_ms / 1000;
                        let eff = u64::from(e.ttl().min(clamp));
                        if age < eff {
                            e.hits += 1;
                            let remaining = eff - age;
                            let prefetch = !e.reported && e.hits >= PREFETCH_HITS && remaining * 100 <= eff * PREFETCH_PCT;
                            e.reported |= prefetch;
                            let ttls = e.stored.iter().map(|&t| u32::try_from(u64::from(t.min(clamp)) - age).expect("small")).collect();
                            Some((Lookup::Hit { len: e.len, min_ttl: u32::try_from(remaining).expect("small"), prefetch }, ttls))
                        } else if stale_allowed && age_ms - eff * 1000 < STALE_WINDOW_MS {
                            Some((Lookup::Stale { len: e.len }, vec![STALE_TTL.min(clamp); e.stored.len()]))
                        } else {
                            None
                        }
                    });
                    match expected {
                        Some((want, ttls)) => {
                            prop_assert_eq!(got, want);
                            match want {
                                Lookup::Hit { len, prefetch, .. } => {
                                    counts.hits += 1;
                                    counts.prefetches += u64::from(prefetch);
                                    prop_assert_eq!(served_ttls(&out[..len], id), ttls);
                                }
                                Lookup::Stale { len } => {
                                    counts.stale += 1;
                                    prop_assert_eq!(served_ttls(&out[..len], id), ttls);
                                }
                                _ => unreachable!("the model only predicts hits and stale answers"),
                            }
                        }
                        None => {
                            prop_assert_eq!(got, Lookup::Miss);
                            counts.misses += u64::from(!stale_allowed);
                        }
                    }
                }
            }
        }
        let s = cache.stats();
        prop_assert_eq!(
            (s.hits, s.misses, s.stale_served, s.prefetches, s.inserts, s.inserts_refused, s.evictions),
            (counts.hits, counts.misses, counts.stale, counts.prefetches, counts.inserts, counts.refused, 0)
        );
        prop_assert_eq!(s.entries, model.len());
    }

    #[test]
    fn byte_bound_holds_under_eviction(
        max_bytes in 4_096usize..300_000,
        sizes in prop::collection::vec(1usize..40, 20..300),
    ) {
        let cache = Cache::new(CacheConfig { max_bytes, ..CacheConfig::default() });
        let t0 = Instant::now();
        let mut stored = HashSet::new();
        let mut refused = 0u64;
        for (i, n) in sizes.iter().enumerate() {
            let qname = format!("n{i}.example.");
            let wire = encode(&qname, &Answer::Positive(vec![300; *n]));
            let key = CacheKey::new(qname.as_bytes(), 1, 1, false, false);
            match cache.insert(&key, &wire, t0) {
                Ok(ins) => {
                    prop_assert!(ins.bytes <= cache.max_entry_bytes());
                    stored.insert(i);
                }
                Err(InsertError::TooLarge { size, max }) => {
                    prop_assert!(size > max);
                    refused += 1;
                }
                Err(e) => prop_assert!(false, "unexpected refusal: {}", e),
            }
            prop_assert!(cache.bytes() <= max_bytes, "{} > {}", cache.bytes(), max_bytes);
        }
        let s = cache.stats();
        // Every stored entry is either still resident or was counted as evicted.
        prop_assert_eq!(s.evictions + s.entries as u64, stored.len() as u64);
        prop_assert_eq!(s.inserts_refused, refused);
        // Whatever is resident still serves the right answer.
        let mut out = vec![0u8; 4096];
        let mut resident = 0;
        for &i in &stored {
            let qname = format!("n{i}.example.");
            let key = CacheKey::new(qname.as_bytes(), 1, 1, false, false);
            if let Lookup::Hit { len, .. } = cache.lookup(&key, 5, t0, &mut out) {
                let m = Message::from_vec(&out[..len]).expect("parses");
                prop_assert_eq!(m.queries()[0].name(), &name(&qname));
                prop_assert_eq!(m.answers().len(), sizes[i]);
                resident += 1;
            }
        }
        prop_assert_eq!(resident, s.entries);
    }
}
