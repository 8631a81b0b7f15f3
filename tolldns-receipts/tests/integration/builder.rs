//! The batch builder under several threads.

use std::sync::Arc;

use ed25519_dalek::SigningKey;
use tolldns_core::{BackendId, WindowId, WindowLen};
use tolldns_receipts::*;

use crate::common::*;

fn config(cap: usize) -> BuilderConfig {
    let mut c = BuilderConfig::new(
        deployment_id(),
        BackendId::new("edge-ingress").unwrap(),
        WindowLen::new(60).unwrap(),
    );
    c.policy_version = 7;
    c.shards = 4;
    c.max_pending_leaves = cap;
    c
}

fn leaf(thread: u64, i: u64) -> Leaf {
    let mut ticket = [0u8; 16];
    ticket[..8].copy_from_slice(&(thread + 1).to_le_bytes());
    ticket[8..].copy_from_slice(&i.to_le_bytes());
    Leaf {
        timestamp_ms: 60_000 + (i % 60_000),
        transport: Transport::Udp,
        qtype: 1,
        rcode_class: if i % 10 == 0 {
            RcodeClass::Servfail
        } else {
            RcodeClass::NoError
        },
        work_class: if i % 2 == 0 {
            WorkClass::CacheHit
        } else {
            WorkClass::CacheMiss
        },
        flags: LeafFlags {
            cache_hit: i % 2 == 0,
            ..LeafFlags::default()
        },
        latency: LatencyBucket::from_millis(i % 120),
        response_bytes: (i % 700) as u32,
        name_hash: [1; 16],
        ticket,
        response_summary_hash: [2; 16],
        repeat: 0,
    }
}

#[test]
fn many_threads_lose_nothing_and_the_summary_adds_up() {
    let builder = Arc::new(BatchBuilder::new(config(1 << 20)));
    let threads = 4u64;
    let per_thread = 25_000u64;
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let b = Arc::clone(&builder);
            std::thread::spawn(move || {
                for i in 0..per_thread {
                    b.add(leaf(t, i)).unwrap();
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    assert_eq!(builder.dropped().total(), 0);
    let key = SigningKey::from_bytes(&[4; 32]);
    let batch = builder.close(WindowId(1), [0; 32], 120_000, &key).unwrap();
    let r = batch.receipt();
    let s = &r.body.service_summary;
    let n = threads * per_thread;
    assert_eq!(s.request_count, n);
    assert_eq!(r.body.integrity.leaf_count, n);
    assert_eq!(s.error_count, n / 10);
    assert_eq!(s.success_count, n - n / 10);
    assert_eq!(s.error_class_counts.get(ErrorClass::Servfail), n / 10);
    assert_eq!(s.served_from_cache_count, n / 2);
    assert_eq!(s.work_class_counts.get(WorkClass::CacheHit), n / 2);
    let bytes: u64 = (0..threads)
        .flat_map(|_| 0..per_thread)
        .map(|i| i % 700)
        .sum();
    assert_eq!(s.bytes_served_total, bytes);
    // Latencies are 0..120 ms uniformly: 95 % are below 200 ms, fewer below 100 ms.
    assert_eq!(s.latency_p95_bucket, LatencyBucket::Lt200);
    assert_eq!(s.response_size_p95_bucket, SizeBucket::Lt1024);
    // A v2 receipt: every leaf ticketed, one distinct name.
    let v2 = r.body.v2.as_ref().unwrap();
    assert_eq!(v2.deployment_id, deployment_id());
    assert_eq!(v2.ticketed_leaf_count, n);
    assert_eq!(v2.name_sketch.estimate(), 1);
    // Every leaf is there exactly once, in strict order (distinct tickets: no repeats).
    let mut tickets: Vec<[u8; 16]> = batch.leaves().iter().map(|l| l.ticket).collect();
    assert!(
        batch
            .leaves()
            .windows(2)
            .all(|w| w[0].order(&w[1]) == std::cmp::Ordering::Less)
    );
    assert!(batch.leaves().iter().all(|l| l.repeat == 0));
    tickets.sort_unstable();
    tickets.dedup();
    assert_eq!(tickets.len() as u64, n);
    // The receipt verifies, and so does an audit of a sample.
    let (registry, policies) = (active(), policy7());
    let ledger = Ledger::default();
    let v =
        Verifier::new(deployment(), &registry, &policies, &ledger).with_tickets(&AcceptAllTickets);
    let sample = AuditSample::new(&[8; 32], &r.body.integrity.merkle_root, n, 44);
    let report = v
        .verify_with_audit(r, 120_000, &sample, &batch.answer(&sample).unwrap())
        .unwrap();
    assert_eq!((report.sampled, report.ticketed), (44, 44));
}

/// The same answer to the same query in the same millisecond, from several threads: every copy
/// is kept (no honest work is dropped by strict order), numbered by `repeat`.
#[test]
fn identical_answers_from_many_threads_are_all_kept() {
    let builder = Arc::new(BatchBuilder::new(config(1 << 16)));
    let handles: Vec<_> = (0..4u64)
        .map(|_| {
            let b = Arc::clone(&builder);
            std::thread::spawn(move || {
                for i in 0..250u64 {
                    let mut l = leaf(0, i % 5);
                    l.ticket = [7; 16];
                    b.add(l).unwrap();
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    let key = SigningKey::from_bytes(&[4; 32]);
    let batch = builder.close(WindowId(1), [0; 32], 120_000, &key).unwrap();
    assert_eq!(batch.leaves().len(), 1_000);
    // Five distinct answers, each 200 times: repeat 0..=199 for each.
    for w in batch.leaves().windows(2) {
        assert_eq!(w[0].order(&w[1]), std::cmp::Ordering::Less);
    }
    let max: Vec<u16> = batch
        .leaves()
        .windows(2)
        .filter(|w| !w[0].same_answer(&w[1]))
        .map(|w| w[0].repeat)
        .collect();
    assert_eq!(max, vec![199; 4]);
    assert_eq!(batch.leaves().last().unwrap().repeat, 199);
}

#[test]
fn bounded_capacity_counts_every_refusal() {
    let builder = Arc::new(BatchBuilder::new(config(1_000)));
    let handles: Vec<_> = (0..4u64)
        .map(|t| {
            let b = Arc::clone(&builder);
            std::thread::spawn(move || (0..500).filter(|&i| b.add(leaf(t, i)).is_ok()).count())
        })
        .collect();
    let accepted: usize = handles.into_iter().map(|h| h.join().unwrap()).sum();
    assert_eq!(accepted, 1_000);
    assert_eq!(builder.dropped().full, 1_000);
    assert_eq!(builder.pending(WindowId(1)), 1_000);
}
