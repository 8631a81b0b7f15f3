//! Streamed windows: the receipt of a window fed in chunks is the receipt of the window sealed
//! at once, and a batch rebuilt from a receipt and its stored leaves serves the same audits.

use ed25519_dalek::SigningKey;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tolldns_core::{BackendId, WindowId, WindowLen};
use tolldns_receipts::*;

use crate::common::*;

const WINDOW: WindowId = WindowId(29_333_335);

fn header() -> BatchHeader {
    let mut h = BatchHeader::new(
        deployment_id(),
        BackendId::new("edge-ingress").unwrap(),
        WindowLen::new(60).unwrap(),
        WINDOW,
    );
    h.policy_version = 7;
    h
}

/// Random leaves of the window: few distinct values per field so that shared tickets and
/// shared names are frequent.
fn random_leaves(rng: &mut StdRng, n: usize, again: f64) -> Vec<Leaf> {
    let start = WINDOW.start_ms(WindowLen::new(60).unwrap()).unwrap();
    let span = if rng.gen_bool(0.5) { 60_000 } else { 5 };
    let tickets: Vec<[u8; 16]> = (0..4).map(|i| [i * 17; 16]).collect();
    let mut leaves: Vec<Leaf> = (0..n)
        .map(|_| Leaf {
            timestamp_ms: start + rng.gen_range(0..span),
            transport: [Transport::Udp, Transport::Doh][rng.gen_range(0..2)],
            qtype: [1, 28][rng.gen_range(0..2)],
            rcode_class: [
                RcodeClass::NoError,
                RcodeClass::Servfail,
                RcodeClass::Nxdomain,
            ][rng.gen_range(0..3)],
            work_class: [WorkClass::CacheHit, WorkClass::CacheMiss][rng.gen_range(0..2)],
            flags: LeafFlags {
                cache_hit: rng.gen_bool(0.5),
                ..LeafFlags::default()
            },
            latency: LatencyBucket::from_millis(rng.gen_range(0..2_000)),
            response_bytes: rng.gen_range(0..=MAX_RESPONSE_BYTES),
            name_hash: {
                let mut h = [0u8; 16];
                if rng.gen_bool(0.5) {
                    rng.fill(&mut h);
                } else {
                    h[0] = rng.gen_range(0..4);
                }
                h
            },
            ticket: tickets[rng.gen_range(0..tickets.len())],
            response_summary_hash: [rng.gen_range(0..2); 16],
            repeat: rng.r#gen(),
        })
        .collect();
    // A share `again` of the answers sent again (same query, same millisecond): repeats.
    for i in 1..n {
        if rng.gen_bool(again) {
            let j = rng.gen_range(0..i);
            leaves[i] = Leaf {
                repeat: rng.r#gen(),
                ..leaves[j]
            };
        }
    }
    leaves
}

#[test]
fn streamed_receipt_equals_the_receipt_sealed_at_once() {
    let mut rng = StdRng::seed_from_u64(0x005e_ed13);
    let key = SigningKey::from_bytes(&[0x42; 32]);
    let mut with_repeats = 0;
    for round in 0..200 {
        let n = match round % 4 {
            0 => rng.gen_range(0..4),
            1 => rng.gen_range(0..64),
            _ => rng.gen_range(0..3_000),
        };
        let leaves = random_leaves(&mut rng, n, 0.3);
        let at_once =
            ClosedBatch::seal(&header(), leaves.clone(), [9; 32], 1_760_000_200_000, &key).unwrap();
        let ordered = at_once.leaves().to_vec();
        if ordered.iter().any(|l| l.repeat > 0) {
            with_repeats += 1;
        }
        // Random split points, including empty chunks.
        let mut cuts: Vec<usize> = (0..rng.gen_range(0..8))
            .map(|_| rng.gen_range(0..=n))
            .collect();
        cuts.push(0);
        cuts.push(n);
        cuts.sort_unstable();
        let mut stream = WindowStream::new(header());
        for c in cuts.windows(2) {
            assert_eq!(stream.len(), c[0] as u64);
            stream.append(&ordered[c[0]..c[1]]).unwrap();
        }
        assert_eq!(stream.len(), n as u64);
        assert_eq!(stream.root(), at_once.receipt().body.integrity.merkle_root);
        let sealed = stream.seal([9; 32], 1_760_000_200_000, &key).unwrap();
        assert_eq!(sealed.receipt, *at_once.receipt(), "round {round}");
        assert_eq!(sealed.receipt.to_bytes(), at_once.receipt().to_bytes());
        assert_eq!(
            &sealed.witnesses,
            at_once.sketch_witnesses(),
            "round {round}"
        );
        // The leaves stored with the streamed receipt make the same batch.
        let rebuilt = ClosedBatch::from_parts(sealed.receipt, ordered).unwrap();
        assert_eq!(rebuilt.tree(), at_once.tree());
        assert_eq!(rebuilt.sketch_witnesses(), at_once.sketch_witnesses());
    }
    assert!(with_repeats > 50, "{with_repeats} rounds had repeats");
}

#[test]
fn a_streamed_batch_passes_verification_and_audit() {
    let mut rng = StdRng::seed_from_u64(7);
    let key = SigningKey::from_bytes(&[0x43; 32]);
    let mut leaves = random_leaves(&mut rng, 5_000, 0.0);
    order_leaves(&mut leaves).unwrap();
    let mut stream = WindowStream::new(header());
    for chunk in leaves.chunks(777) {
        stream.append(chunk).unwrap();
    }
    let end = WINDOW.end_ms(WindowLen::new(60).unwrap()).unwrap();
    let sealed = stream.seal([9; 32], end + 1_000, &key).unwrap();
    let batch = ClosedBatch::from_parts(sealed.receipt, leaves).unwrap();
    let (registry, policies, ledger) = (active(), policy7(), Ledger::default());
    let v =
        Verifier::new(deployment(), &registry, &policies, &ledger).with_tickets(&AcceptAllTickets);
    let r = batch.receipt();
    let sample = AuditSample::new(&[8; 32], &r.body.integrity.merkle_root, 5_000, 44);
    let report = v
        .verify_with_audit(r, end + 2_000, &sample, &batch.answer(&sample).unwrap())
        .unwrap();
    assert_eq!(report.sampled, 44);
    for j in 0..SKETCH_REGISTERS {
        if r.body.v2.as_ref().unwrap().name_sketch.register(j) != 0 {
            let w = batch.sketch_witness(j).unwrap();
            assert_eq!(w.leaf.sketch_cell().0, j);
        }
    }
}

#[test]
fn from_parts_refuses_leaves_that_are_not_the_receipts() {
    let mut rng = StdRng::seed_from_u64(8);
    let key = SigningKey::from_bytes(&[0x44; 32]);
    let batch = ClosedBatch::seal(
        &header(),
        random_leaves(&mut rng, 100, 0.3),
        [0; 32],
        0,
        &key,
    )
    .unwrap();
    let (receipt, mut leaves) = batch.into_parts();
    leaves.pop();
    assert_eq!(
        ClosedBatch::from_parts(receipt.clone(), leaves.clone()).err(),
        Some(SealError::LeafCountMismatch {
            receipt: 100,
            leaves: 99
        })
    );
    leaves.push(leaves[0]);
    assert_eq!(
        ClosedBatch::from_parts(receipt, leaves).err(),
        Some(SealError::RootMismatch)
    );
}

/// A window far larger than the builder may hold loses nothing when it is drained while it
/// fills, and its streamed receipt is the receipt of all its leaves.
#[test]
fn draining_while_filling_keeps_every_leaf_under_a_small_cap() {
    let mut config = BuilderConfig::new(
        deployment_id(),
        BackendId::new("edge-ingress").unwrap(),
        WindowLen::new(60).unwrap(),
    );
    config.policy_version = 7;
    config.shards = 4;
    config.max_pending_leaves = 1_000;
    let builder = BatchBuilder::new(config);
    let key = SigningKey::from_bytes(&[0x45; 32]);
    let start = WINDOW.start_ms(WindowLen::new(60).unwrap()).unwrap();
    let mut rng = StdRng::seed_from_u64(9);
    let mut stream = WindowStream::new(header());
    let mut all = Vec::new();
    let mut floor = start;
    for step in 0..60u64 {
        for mut l in random_leaves(&mut rng, 900, 0.3) {
            // This second's leaves, some from the second before (late answers).
            l.timestamp_ms = start + (step * 1_000 + l.timestamp_ms % 1_000).saturating_sub(700);
            builder.add(l).unwrap();
        }
        let before = start + step * 1_000 + 500;
        let chunk = builder.drain(WINDOW, before, floor).unwrap();
        stream.append(&chunk).unwrap();
        all.extend_from_slice(&chunk);
        floor = before;
    }
    let chunk = builder.drain(WINDOW, u64::MAX, floor).unwrap();
    stream.append(&chunk).unwrap();
    all.extend_from_slice(&chunk);
    assert_eq!(builder.dropped().total(), 0);
    assert_eq!(all.len(), 60 * 900);
    assert!(builder.clamped() > 0);
    let sealed = stream.seal([1; 32], 5, &key).unwrap();
    let at_once = ClosedBatch::seal(&header(), all, [1; 32], 5, &key).unwrap();
    assert_eq!(sealed.receipt, *at_once.receipt());
}
