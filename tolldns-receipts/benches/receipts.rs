//! Receipt pipeline benchmarks. Run:
//! `cargo bench -p tolldns-receipts -- --warm-up-time 1 --measurement-time 3`
//! (`-- v2/` for the format-v2 benchmarks alone).

use std::hint::black_box;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use ed25519_dalek::SigningKey;
use tolldns_core::{BackendId, DeploymentId, OperatorId, Role, WindowId, WindowLen};
use tolldns_receipts::merkle::{MerkleTree, RootBuilder};
use tolldns_receipts::*;

const WINDOW_START: u64 = 1_760_000_100_000;
const MILLION: u64 = 1_000_000;

/// SplitMix64: cheap, well-mixed name hashes and tickets for a million leaves.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Leaf `i` of a busy window: 60,000 distinct milliseconds, 100,000 distinct names, 10,000
/// tokens, 9 in 10 leaves ticketed, and every 50th answer sent twice in the same millisecond
/// (a client retry, numbered by `repeat` when the window is sealed).
fn leaf(i: u64) -> Leaf {
    let j = if i % 50 == 1 { i - 1 } else { i };
    let mut name_hash = [0u8; 16];
    name_hash[..8].copy_from_slice(&mix(j % 100_000).to_le_bytes());
    name_hash[8..].copy_from_slice(&mix(!(j % 100_000)).to_le_bytes());
    let mut ticket = [0u8; 16];
    if j % 10 != 0 {
        ticket[..8].copy_from_slice(&mix(1 + j % 10_000).to_le_bytes());
    }
    Leaf {
        timestamp_ms: WINDOW_START + mix(j) % 60_000,
        transport: Transport::Udp,
        qtype: 1,
        rcode_class: if j % 20 == 0 {
            RcodeClass::Servfail
        } else {
            RcodeClass::NoError
        },
        work_class: WorkClass::CacheHit,
        flags: LeafFlags {
            cache_hit: true,
            ..LeafFlags::default()
        },
        latency: LatencyBucket::Lt25,
        response_bytes: 80 + (j % 400) as u32,
        name_hash,
        ticket,
        response_summary_hash: [0x22; 16],
        repeat: 0,
    }
}

fn deployment() -> Deployment {
    Deployment::new(DeploymentId::derive(&[1; 32], &[2; 32]), WindowLen::DEFAULT)
}

fn header() -> BatchHeader {
    BatchHeader::new(
        deployment().id,
        BackendId::new("edge-ingress").unwrap(),
        WindowLen::DEFAULT,
        WindowId::containing(WINDOW_START, WindowLen::DEFAULT),
    )
}

struct Everyone;
impl OperatorRegistry for Everyone {
    fn operator_status(&self, _: &OperatorId, _: Role, _: WindowId) -> OperatorStatus {
        OperatorStatus::Active
    }
    fn backend_registered(&self, _: &OperatorId, _: &BackendId) -> bool {
        true
    }
}
impl PolicyRegistry for Everyone {
    fn is_valid_policy(&self, _: u32, _: WindowId, _: WindowLen) -> bool {
        true
    }
}
impl ReceiptLedger for Everyone {
    fn contains(&self, _: &OperatorId, _: &BackendId, _: WindowId) -> bool {
        false
    }
    fn overlaps(&self, _: &OperatorId, _: u64, _: u64) -> bool {
        false
    }
}
impl TicketCheck for Everyone {
    fn ticket_status(&self, _: &[u8; 16]) -> TicketStatus {
        TicketStatus::Valid
    }
}

fn leaves(c: &mut Criterion) {
    let l = leaf(7);
    let mut g = c.benchmark_group("leaf");
    g.throughput(Throughput::Elements(1));
    g.bench_function("encode", |b| b.iter(|| black_box(black_box(&l).to_bytes())));
    g.bench_function("encode_and_hash", |b| {
        b.iter(|| black_box(black_box(&l).hash()))
    });
    let bytes = l.to_bytes();
    g.bench_function("decode", |b| {
        b.iter(|| black_box(Leaf::from_bytes(black_box(&bytes))))
    });
    g.finish();
}

fn merkle(c: &mut Criterion) {
    let all: Vec<Leaf> = (0..MILLION).map(leaf).collect();
    let mut g = c.benchmark_group("merkle_1m");
    g.sample_size(10);
    g.throughput(Throughput::Elements(MILLION));
    // Leaf to root: encode and hash every leaf, stream the hashes into the root.
    g.bench_function("leaf_to_root_streaming", |b| {
        b.iter(|| {
            let mut rb = RootBuilder::new();
            for l in &all {
                rb.push(l.hash());
            }
            black_box(rb.finish())
        })
    });
    // Leaf to root keeping every level, as a closed batch does to serve proofs.
    g.bench_function("leaf_to_tree_levels", |b| {
        b.iter(|| {
            black_box(MerkleTree::from_leaf_hashes(all.iter().map(Leaf::hash).collect()).root())
        })
    });
    g.finish();

    let tree = MerkleTree::from_leaf_hashes(all.iter().map(Leaf::hash).collect());
    let root = tree.root();
    let mut g = c.benchmark_group("proof_1m");
    g.throughput(Throughput::Elements(1));
    let mut i = 0u64;
    g.bench_function("generate", |b| {
        b.iter(|| {
            i = (i + 7_919) % MILLION;
            black_box(tree.proof(i).unwrap())
        })
    });
    let proof = tree.proof(123_456).unwrap();
    let h = all[123_456].hash();
    g.bench_function("verify", |b| {
        b.iter(|| black_box(proof.verify(black_box(&h), &root)))
    });
    g.finish();
}

fn signatures(c: &mut Criterion) {
    let key = SigningKey::from_bytes(&[7; 32]);
    let all: Vec<Leaf> = (0..MILLION).map(leaf).collect();
    let batch = ClosedBatch::seal(&header(), all, [9; 32], WINDOW_START + 60_000, &key).unwrap();
    let receipt = batch.receipt().clone();
    let mut g = c.benchmark_group("receipt");
    g.throughput(Throughput::Elements(1));
    g.bench_function("sign", |b| {
        b.iter_batched(
            || receipt.body.clone(),
            |body| black_box(body.sign(&key)),
            BatchSize::SmallInput,
        )
    });
    g.bench_function("verify_signature", |b| {
        b.iter(|| black_box(receipt.verify_signature()))
    });
    let bytes = receipt.to_bytes();
    g.bench_function("decode", |b| {
        b.iter(|| black_box(Receipt::from_bytes(black_box(&bytes))))
    });
    let v = Verifier::new(deployment(), &Everyone, &Everyone, &Everyone).with_tickets(&Everyone);
    let received_ms = WINDOW_START + 61_000;
    let root = receipt.body.integrity.merkle_root;
    let k = sample_size(0.99, 0.10, MILLION).unwrap();
    let sample = AuditSample::new(&[5; 32], &root, MILLION, k);
    let answers = batch.answer(&sample).unwrap();
    g.bench_function("audit_sample_k44", |b| {
        b.iter(|| black_box(AuditSample::new(&[5; 32], &root, MILLION, k)))
    });
    // Batch verify: receipt rules, strict signature, and the v2 audit of 44 sampled leaves of
    // a 1M-leaf batch (each with its right neighbour: 88 proofs, order, tickets, summary).
    g.bench_function("batch_verify_k44_1m", |b| {
        b.iter(|| black_box(v.verify_with_audit(&receipt, received_ms, &sample, &answers)))
    });
    g.finish();
}

/// Format v2: sealing a million-leaf window (strict order with repeats, sketch, tree,
/// signature) and its parts, and the whole audit of 44 leaves.
fn v2(c: &mut Criterion) {
    let key = SigningKey::from_bytes(&[7; 32]);
    let all: Vec<Leaf> = (0..MILLION).map(leaf).collect();
    let mut g = c.benchmark_group("v2");
    g.sample_size(10);
    g.throughput(Throughput::Elements(MILLION));
    // Everything `ClosedBatch::seal` does to 10^6 leaves in arrival order.
    g.bench_function("seal_1m", |b| {
        b.iter_batched(
            || all.clone(),
            |leaves| {
                black_box(
                    ClosedBatch::seal(&header(), leaves, [9; 32], WINDOW_START + 60_000, &key)
                        .unwrap(),
                )
            },
            BatchSize::LargeInput,
        )
    });
    // The v2 parts of it: the strict order (sort, repeats) and the name sketch.
    g.bench_function("order_leaves_1m", |b| {
        b.iter_batched(
            || all.clone(),
            |mut leaves| {
                order_leaves(&mut leaves).unwrap();
                black_box(leaves)
            },
            BatchSize::LargeInput,
        )
    });
    let mut ordered = all.clone();
    order_leaves(&mut ordered).unwrap();
    g.bench_function("sketch_1m", |b| {
        b.iter(|| black_box(sketch_with_witnesses(black_box(&ordered))))
    });
    // The v1 seal of the same leaves, for comparison (no order, no sketch).
    g.bench_function("seal_v1_1m", |b| {
        b.iter_batched(
            || all.clone(),
            |leaves| {
                black_box(
                    ClosedBatch::seal_v1(&header(), leaves, [9; 32], WINDOW_START + 60_000, &key)
                        .unwrap(),
                )
            },
            BatchSize::LargeInput,
        )
    });
    g.finish();

    let batch = ClosedBatch::seal(&header(), all, [9; 32], WINDOW_START + 60_000, &key).unwrap();
    let receipt = batch.receipt().clone();
    let v2 = receipt.body.v2.as_ref().unwrap();
    assert!(v2.ticketed_repeat_count > 0 && v2.ticketed_leaf_count > 0);
    let v = Verifier::new(deployment(), &Everyone, &Everyone, &Everyone).with_tickets(&Everyone);
    let received_ms = WINDOW_START + 61_000;
    let root = receipt.body.integrity.merkle_root;
    let sample = AuditSample::new(&[5; 32], &root, MILLION, 44);
    let answers = batch.answer(&sample).unwrap();
    let report = v
        .verify_with_audit(&receipt, received_ms, &sample, &answers)
        .unwrap();
    assert_eq!(report.sampled, 44);
    let mut g = c.benchmark_group("v2_audit");
    g.throughput(Throughput::Elements(1));
    // The auditor's whole check of one receipt: receipt rules, strict signature, 44 sampled
    // leaves and their right neighbours (88 proofs of a 10^6-leaf tree), strict order, repeats,
    // sketch cells, token lookups and the summary bound.
    g.bench_function("verify_with_audit_k44_1m", |b| {
        b.iter(|| black_box(v.verify_with_audit(&receipt, received_ms, &sample, &answers)))
    });
    // The audit rules alone (a receipt already verified at ingest).
    g.bench_function("check_audit_k44_1m", |b| {
        b.iter(|| black_box(v.check_audit(&receipt, &sample, &answers)))
    });
    // What the operator does per audit request: 44 leaves with proofs and neighbours.
    g.bench_function("answer_k44_1m", |b| {
        b.iter(|| black_box(batch.answer(&sample).unwrap()))
    });
    g.finish();
}

fn builder(c: &mut Criterion) {
    let key = SigningKey::from_bytes(&[7; 32]);
    let mut g = c.benchmark_group("builder");
    g.sample_size(10);
    g.throughput(Throughput::Elements(MILLION));
    // The whole window: 1M adds (one thread), close (order, summarize, sketch, tree, sign).
    g.bench_function("add_and_close_1m", |b| {
        b.iter(|| {
            let mut config = BuilderConfig::new(
                deployment().id,
                BackendId::new("edge-ingress").unwrap(),
                WindowLen::DEFAULT,
            );
            config.shards = 2;
            config.max_pending_leaves = 2_000_000;
            let builder = BatchBuilder::new(config);
            for i in 0..MILLION {
                builder.add(leaf(i)).unwrap();
            }
            let w = WindowId::containing(WINDOW_START, WindowLen::DEFAULT);
            black_box(
                builder
                    .close(w, [9; 32], WINDOW_START + 60_000, &key)
                    .unwrap(),
            )
        })
    });
    // Streamed: 1M adds drained every 10,000 leaves (as the edge's pump does every flush
    // interval) into a `WindowStream`, then the seal of the already computed root.
    g.bench_function("add_drain_stream_1m", |b| {
        b.iter(|| {
            let mut config = BuilderConfig::new(
                deployment().id,
                BackendId::new("edge-ingress").unwrap(),
                WindowLen::DEFAULT,
            );
            config.shards = 2;
            let builder = BatchBuilder::new(config);
            let w = WindowId::containing(WINDOW_START, WindowLen::DEFAULT);
            let mut stream = WindowStream::new(header());
            let mut floor = WINDOW_START;
            // Leaves in arrival order: timestamps grow with `i`.
            for i in 0..MILLION {
                let mut l = leaf(i);
                l.timestamp_ms = WINDOW_START + i * 60_000 / MILLION;
                builder.add(l).unwrap();
                if i % 10_000 == 9_999 {
                    let before = l.timestamp_ms;
                    stream
                        .append(&builder.drain(w, before, floor).unwrap())
                        .unwrap();
                    floor = before;
                }
            }
            stream
                .append(&builder.drain(w, u64::MAX, floor).unwrap())
                .unwrap();
            black_box(stream.seal([9; 32], WINDOW_START + 60_000, &key).unwrap())
        })
    });
    g.finish();
}

/// `WindowStream::append` alone: leaves already in strict order, in chunks of 10,000.
fn stream(c: &mut Criterion) {
    let mut leaves: Vec<Leaf> = (0..MILLION).map(leaf).collect();
    order_leaves(&mut leaves).unwrap();
    let mut g = c.benchmark_group("stream");
    g.sample_size(10);
    g.throughput(Throughput::Elements(MILLION));
    g.bench_function("append_1m", |b| {
        b.iter(|| {
            let mut stream = WindowStream::new(header());
            for chunk in leaves.chunks(10_000) {
                stream.append(chunk).unwrap();
            }
            black_box(stream.root())
        })
    });
    // The same with the chunk roots handed out (what the edge's pump gives its sink).
    g.bench_function("append_streamed_1m", |b| {
        let mut roots = Vec::new();
        b.iter(|| {
            let mut stream = WindowStream::new(header());
            for chunk in leaves.chunks(10_000) {
                black_box(stream.append_streamed(chunk, &mut roots).unwrap());
            }
            black_box(stream.root())
        })
    });
    g.finish();
}

criterion_group!(benches, leaves, merkle, signatures, v2, builder, stream);
criterion_main!(benches);
