//! Hit path (lookup + copy + ID/TTL patch) and insert (full parse + checks + store).
//!
//! Run: `cargo bench -p tolldns-cache --bench cache`

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use tolldns_cache::{Cache, CacheConfig, CacheKey, CheckedAnswer, Lookup};

/// A NOERROR answer for `www.example.com`/A with `n` A records (TTL 300), owners compressed.
fn answer(n: u8) -> Vec<u8> {
    let mut m = vec![0, 1, 0x81, 0x80, 0, 1, 0, n, 0, 0, 0, 0];
    m.extend_from_slice(b"\x03www\x07example\x03com\x00\x00\x01\x00\x01");
    for i in 0..n {
        m.extend_from_slice(&[0xC0, 0x0C, 0, 1, 0, 1, 0, 0, 1, 0x2C, 0, 4, 192, 0, 2, i]);
    }
    m
}

fn bench(c: &mut Criterion) {
    let cache = Cache::new(CacheConfig::default());
    let key = CacheKey::new(b"www.example.com", 1, 1, false, false);
    let t0 = Instant::now();
    let later = t0 + Duration::from_secs(10);
    let mut out = [0u8; 4096];

    for n in [1u8, 8] {
        let wire = answer(n);
        cache
            .insert(&key, &wire, t0)
            .expect("bench answer is cacheable");
        c.bench_function(&format!("hit_{n}_records ({} bytes)", wire.len()), |b| {
            b.iter(|| {
                let r = cache.lookup(black_box(&key), 0x4242, later, &mut out);
                debug_assert!(matches!(r, Lookup::Hit { .. }));
                black_box(r)
            })
        });
    }

    let query = b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\
                  \x03www\x07example\x03com\x00\x00\x01\x00\x01";
    c.bench_function("key_from_query + hit_1_record", |b| {
        cache.insert(&key, &answer(1), t0).expect("cacheable");
        b.iter(|| {
            let (k, id) = CacheKey::from_query(black_box(query)).expect("valid query");
            black_box(cache.lookup(&k, id, later, &mut out))
        })
    });

    let miss_key = CacheKey::new(b"absent.example.com", 1, 1, false, false);
    c.bench_function("miss", |b| {
        b.iter(|| black_box(cache.lookup(black_box(&miss_key), 1, later, &mut out)))
    });

    for n in [1u8, 8] {
        let wire = answer(n);
        c.bench_function(&format!("insert_{n}_records"), |b| {
            b.iter(|| black_box(cache.insert(black_box(&key), black_box(&wire), t0)))
        });
        // The miss path's insert: the caller already parsed the answer in full.
        let checked = CheckedAnswer {
            rcode: 0,
            ttl_cap: None,
        };
        c.bench_function(&format!("insert_checked_{n}_records"), |b| {
            b.iter(|| {
                black_box(cache.insert_checked(black_box(&key), black_box(&wire), checked, t0))
            })
        });
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
