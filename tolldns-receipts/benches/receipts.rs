//! Receipt pipeline benchmarks. Run:
//! `cargo bench -p tolldns-receipts -- --warm-up-time 1 --measurement-time 3`

use std::hint::black_box;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use ed25519_dalek::SigningKey;
use tolldns_core::{BackendId, OperatorId, Role, WindowId, WindowLen};
use tolldns_receipts::merkle::{MerkleTree, RootBuilder};
use tolldns_receipts::*;

const WINDOW_START: u64 = 1_760_000_100_000;
const MILLION: u64 = 1_000_000;

fn leaf(i: u64) -> Leaf {
    let mut ticket = [0u8; 16];
    ticket[..8].copy_from_slice(&i.to_le_bytes());
    Leaf {
        timestamp_ms: WINDOW_START + i % 60_000,
        transport: Transport::Udp,
        qtype: 1,
        rcode_class: RcodeClass::NoError,
        work_class: WorkClass::CacheHit,
        flags: LeafFlags {
            cache_hit: true,
            ..LeafFlags::default()
        },
        latency: LatencyBucket::Lt25,
        response_bytes: 80 + (i % 400) as u32,
        name_hash: [0x11; 16],
        ticket,
        response_summary_hash: [0x22; 16],
    }
}

fn header() -> BatchHeader {
    BatchHeader {
        receipt_type: ReceiptType::Batch,
        operator_role: Role::EdgeIngress,
        backend_id: BackendId::new("edge-ingress").unwrap(),
        policy_version: 1,
        window_len: WindowLen::DEFAULT,
        window_id: WindowId::containing(WINDOW_START, WindowLen::DEFAULT),
    }
}

struct Everyone;
impl OperatorRegistry for Everyone {
    fn operator_status(&self, _: &OperatorId, _: Role, _: WindowId) -> OperatorStatus {
        OperatorStatus::Active
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
    let v = Verifier::new(&Everyone, &Everyone, &Everyone);
    let root = receipt.body.integrity.merkle_root;
    let k = sample_size(0.99, 0.10, MILLION).unwrap();
    let sample = AuditSample::new(&[5; 32], &root, MILLION, k);
    let proofs = batch.answer(&sample).unwrap();
    g.bench_function("audit_sample_k44", |b| {
        b.iter(|| black_box(AuditSample::new(&[5; 32], &root, MILLION, k)))
    });
    // Batch verify: receipt rules, strict signature, and 44 sampled proofs of a 1M-leaf batch.
    g.bench_function("batch_verify_k44_1m", |b| {
        b.iter(|| black_box(v.verify_with_audit(&receipt, &sample, &proofs)))
    });
    g.finish();
}

fn builder(c: &mut Criterion) {
    let key = SigningKey::from_bytes(&[7; 32]);
    let mut g = c.benchmark_group("builder");
    g.sample_size(10);
    g.throughput(Throughput::Elements(MILLION));
    // The whole window: 1M adds (one thread), close (sort, summarize, tree, sign).
    g.bench_function("add_and_close_1m", |b| {
        b.iter(|| {
            let builder = BatchBuilder::new(BuilderConfig {
                operator_role: Role::EdgeIngress,
                backend_id: BackendId::new("edge-ingress").unwrap(),
                policy_version: 1,
                window_len: WindowLen::DEFAULT,
                shards: 2,
                max_leaves_per_window: 2_000_000,
            });
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
    g.finish();
}

criterion_group!(benches, leaves, merkle, signatures, builder);
criterion_main!(benches);
