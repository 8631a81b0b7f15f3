//! Cache operation sequences: arbitrary answers (raw bytes, or structured ones that parse and
//! match), lookups, stale lookups, time steps and clamp changes. The cache must never panic,
//! must stay within its byte bound, and must never serve a TTL above the clamps in force.
#![no_main]

use std::time::{Duration, Instant};

use arbitrary::Arbitrary;
use hickory_proto::op::Message;
use libfuzzer_sys::fuzz_target;
use tolldns_cache::{Cache, CacheConfig, CacheKey, Lookup};

const NAMES: [&[u8]; 4] = [
    b"\x01a\x07example\x00",
    b"\x01B\x07example\x00",
    b"example",
    b".",
];

#[derive(Debug, Arbitrary)]
enum Op {
    InsertRaw {
        key: u8,
        bytes: Vec<u8>,
    },
    /// A response built from fields, so it usually parses and matches the key.
    InsertBuilt {
        key: u8,
        flags: u16,
        rcode_soa: bool,
        records: Vec<(u32, u8)>,
        soa: (u32, u32),
    },
    Lookup {
        key: u8,
        id: u16,
        buf: u16,
    },
    LookupStale {
        key: u8,
        id: u16,
    },
    Advance {
        ms: u32,
    },
    Attack(Option<u32>),
}

#[derive(Debug, Arbitrary)]
struct Input {
    max_bytes: u16,
    min_ttl: u16,
    max_ttl: u32,
    negative_max_ttl: u32,
    stale_ttl: u8,
    ops: Vec<Op>,
}

fn key(i: u8) -> CacheKey {
    let name = NAMES[usize::from(i) % NAMES.len()];
    CacheKey::new(
        name,
        if i & 0x10 != 0 { 28 } else { 1 },
        1,
        i & 0x20 != 0,
        i & 0x40 != 0,
    )
}

fn built(
    key: &CacheKey,
    flags: u16,
    negative: bool,
    records: &[(u32, u8)],
    soa: (u32, u32),
) -> Vec<u8> {
    let answers = if negative { 0 } else { records.len().min(20) };
    let mut m = vec![0, 0];
    m.extend_from_slice(&((flags & 0x79F0) | 0x8000 | if negative { 3 } else { 0 }).to_be_bytes());
    m.extend_from_slice(&1u16.to_be_bytes());
    m.extend_from_slice(&(answers as u16).to_be_bytes());
    m.extend_from_slice(&1u16.to_be_bytes());
    m.extend_from_slice(&0u16.to_be_bytes());
    m.extend_from_slice(key.qname_wire());
    m.extend_from_slice(&key.qtype().to_be_bytes());
    m.extend_from_slice(&key.qclass().to_be_bytes());
    for &(ttl, b) in records.iter().take(answers) {
        m.extend_from_slice(&[0xC0, 12]);
        m.extend_from_slice(&key.qtype().to_be_bytes());
        m.extend_from_slice(&1u16.to_be_bytes());
        m.extend_from_slice(&ttl.to_be_bytes());
        let rdata: &[u8] = if key.qtype() == 28 { &[b; 16] } else { &[b; 4] };
        m.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
        m.extend_from_slice(rdata);
    }
    // Authority: an SOA owned by the root (mname ".", rname ".").
    m.extend_from_slice(&[0, 0, 6, 0, 1]);
    m.extend_from_slice(&soa.0.to_be_bytes());
    m.extend_from_slice(&22u16.to_be_bytes());
    m.extend_from_slice(&[0, 0]);
    for v in [1u32, 2, 3, 4, soa.1] {
        m.extend_from_slice(&v.to_be_bytes());
    }
    m
}

fuzz_target!(|input: Input| {
    let cfg = CacheConfig {
        max_bytes: usize::from(input.max_bytes) * 16,
        min_ttl: u32::from(input.min_ttl),
        max_ttl: input.max_ttl,
        negative_max_ttl: input.negative_max_ttl,
        stale_window: Duration::from_secs(600),
        stale_ttl: u32::from(input.stale_ttl),
        prefetch_min_hits: 2,
        prefetch_fraction_pct: 10,
    };
    let cache = Cache::new(cfg.clone());
    let max_clamp = cfg.max_ttl.max(cfg.negative_max_ttl);
    let t0 = Instant::now();
    let mut now = t0;
    let mut out = vec![0u8; 65_535];
    for op in input.ops.into_iter().take(64) {
        match op {
            Op::InsertRaw { key: k, bytes } => {
                let _ = cache.insert(&key(k), &bytes, now);
            }
            Op::InsertBuilt {
                key: k,
                flags,
                rcode_soa,
                records,
                soa,
            } => {
                let k = key(k);
                let _ = cache.insert(&k, &built(&k, flags, rcode_soa, &records, soa), now);
            }
            Op::Lookup { key: k, id, buf } => {
                let clamp = cache.attack_max_ttl().unwrap_or(u32::MAX).min(max_clamp);
                let buf = &mut out[..usize::from(buf).min(65_535)];
                match cache.lookup(&key(k), id, now, buf) {
                    Lookup::Hit { len, min_ttl, .. } => {
                        assert!(
                            min_ttl >= 1 && min_ttl <= clamp,
                            "min_ttl {min_ttl} clamp {clamp}"
                        );
                        check_served(&buf[..len], id, clamp);
                    }
                    Lookup::BufferTooSmall { needed } => assert!(needed > buf.len()),
                    Lookup::Miss => {}
                    Lookup::Stale { .. } => panic!("lookup never serves stale"),
                }
            }
            Op::LookupStale { key: k, id } => {
                let clamp = cache.attack_max_ttl().unwrap_or(u32::MAX).min(max_clamp);
                match cache.lookup_stale(&key(k), id, now, &mut out) {
                    Lookup::Hit { len, .. } => check_served(&out[..len], id, clamp),
                    Lookup::Stale { len } => {
                        check_served(&out[..len], id, clamp.min(cfg.stale_ttl));
                    }
                    Lookup::Miss | Lookup::BufferTooSmall { .. } => {}
                }
            }
            Op::Advance { ms } => now += Duration::from_millis(u64::from(ms)),
            Op::Attack(c) => cache.set_attack_max_ttl(c),
        }
        assert!(
            cache.bytes() <= cfg.max_bytes,
            "{} > {}",
            cache.bytes(),
            cfg.max_bytes
        );
    }
    let s = cache.stats();
    assert_eq!(s.entries, cache.len());
});

/// The served answer parses, carries the query's ID, and no record TTL exceeds `clamp`.
fn check_served(wire: &[u8], id: u16, clamp: u32) {
    let m = Message::from_vec(wire).expect("a served answer always parses");
    assert_eq!(m.id(), id);
    for r in m
        .answers()
        .iter()
        .chain(m.name_servers())
        .chain(m.additionals())
    {
        assert!(
            r.ttl() <= clamp,
            "served TTL {} above clamp {clamp}",
            r.ttl()
        );
    }
}
