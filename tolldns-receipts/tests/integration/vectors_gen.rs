//! Builds `test-vectors/receipts.json` (format v1, kept byte-identical: v1 stays verifiable)
//! from fixed inputs. Shared by the `gen_vectors` example
//! (which writes the file) and the integration test (which checks the file has not drifted).

use ed25519_dalek::SigningKey;
use serde_json::{Value, json};
use tolldns_core::{BackendId, DeploymentId, NameKey, NormalizedName, Role, WindowId, WindowLen};
use tolldns_receipts::*;

/// Where the vectors live, relative to the crate.
pub(crate) const VECTORS_PATH: &str =
    concat!(env!("CARGO_MANIFEST_DIR"), "/../test-vectors/receipts.json");

/// The receipt-signing key seed: bytes 0x00, 0x01, ..., 0x1f.
pub(crate) fn signing_key() -> SigningKey {
    let mut seed = [0u8; 32];
    for (i, b) in seed.iter_mut().enumerate() {
        *b = i as u8;
    }
    SigningKey::from_bytes(&seed)
}

/// The epoch name key: 32 bytes of 0x5a.
pub(crate) fn name_key() -> NameKey {
    NameKey([0x5a; 32])
}

pub(crate) const WINDOW_LEN_S: u32 = 60;
pub(crate) const WINDOW_ID: u64 = 29_333_335; // starts at 1_760_000_100_000 ms
pub(crate) const WINDOW_START_MS: u64 = 1_760_000_100_000;
pub(crate) const RECEIPT_TIMESTAMP_MS: u64 = 1_760_000_160_000;
pub(crate) const AUDIT_SEED: [u8; 32] = [0xa5; 32];

/// The v1 batch header. v1 has no deployment id; the header's is not written by `seal_v1`.
pub(crate) fn header() -> BatchHeader {
    let mut h = BatchHeader::new(
        DeploymentId([0; 32]),
        BackendId::new("edge-ingress").unwrap(),
        WindowLen::new(WINDOW_LEN_S).unwrap(),
        WindowId(WINDOW_ID),
    );
    h.receipt_type = ReceiptType::Batch;
    h.operator_role = Role::EdgeIngress;
    h.policy_version = 7;
    h
}

/// The names behind the seven leaves (never in a leaf; only their keyed hashes are).
pub(crate) const NAMES: [&str; 7] = [
    "example.com",
    "www.example.org",
    "example.com",
    "nonexistent.example",
    "mail.example.net",
    "b\u{fc}cher.example",
    "slow.example.com",
];

/// Seven leaves (an odd count, so the tree carries a node up).
pub(crate) fn leaves() -> Vec<Leaf> {
    let key = name_key();
    let spec: [(Transport, u16, RcodeClass, WorkClass, u8, u64, u32); 7] = [
        (
            Transport::Udp,
            1,
            RcodeClass::NoError,
            WorkClass::CacheHit,
            0x01,
            2,
            61,
        ),
        (
            Transport::Doh,
            28,
            RcodeClass::NoError,
            WorkClass::CacheMiss,
            0x00,
            40,
            312,
        ),
        (
            Transport::Dot,
            1,
            RcodeClass::NoError,
            WorkClass::CacheHit,
            0x03,
            1,
            61,
        ),
        (
            Transport::Tcp,
            1,
            RcodeClass::Nxdomain,
            WorkClass::DnsRecursionLight,
            0x00,
            90,
            120,
        ),
        (
            Transport::Udp,
            15,
            RcodeClass::Servfail,
            WorkClass::DnsRecursionHeavy,
            0x00,
            1500,
            40,
        ),
        (
            Transport::Doq,
            65,
            RcodeClass::NoError,
            WorkClass::CacheMiss,
            0x04,
            300,
            2100,
        ),
        (
            Transport::Udp,
            16,
            RcodeClass::Nodata,
            WorkClass::DnsRecursionLight,
            0x00,
            700,
            90,
        ),
    ];
    spec.iter()
        .zip(NAMES)
        .enumerate()
        .map(
            |(i, (&(transport, qtype, rcode_class, work_class, flags, latency_ms, size), name))| {
                let mut ticket = [0u8; 16];
                if i % 2 == 0 {
                    // Even leaves carry a toll ticket id; odd ones have none (zero).
                    ticket = [i as u8 + 1; 16];
                }
                Leaf {
                    timestamp_ms: WINDOW_START_MS + 1_000 * i as u64 + 17,
                    transport,
                    qtype,
                    rcode_class,
                    work_class,
                    flags: LeafFlags::from_bits(flags).unwrap(),
                    latency: LatencyBucket::from_millis(latency_ms),
                    response_bytes: size,
                    name_hash: key.name_hash(&NormalizedName::new(name).unwrap()),
                    ticket,
                    response_summary_hash: Leaf::response_summary_hash(
                        format!("{} qtype={qtype} size={size}", rcode_class).as_bytes(),
                    ),
                    repeat: 0,
                }
            },
        )
        .collect()
}

/// The v1 batch: the seven leaves in the given order, v1 encoding and signing tag.
pub(crate) fn batch() -> ClosedBatch {
    ClosedBatch::seal_v1(
        &header(),
        leaves(),
        name_key().commitment(),
        RECEIPT_TIMESTAMP_MS,
        &signing_key(),
    )
    .unwrap()
}

fn h(b: impl AsRef<[u8]>) -> String {
    hex::encode(b)
}

/// The group order L of ed25519, little-endian.
pub(crate) const ED25519_L: [u8; 32] = [
    0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x10,
];

/// `S + L` for the second half of a signature (little-endian add): the same point equation,
/// a non-canonical encoding that strict verification refuses.
pub(crate) fn malleate(sig: &[u8; 64]) -> [u8; 64] {
    let mut out = *sig;
    let mut carry = 0u16;
    for i in 0..32 {
        let v = u16::from(sig[32 + i]) + u16::from(ED25519_L[i]) + carry;
        out[32 + i] = v as u8;
        carry = v >> 8;
    }
    out
}

/// Re-sign a body changed by `f` with the vector key, so that only the changed rule fails.
fn resigned(f: impl FnOnce(&mut ReceiptBody)) -> Receipt {
    let mut body = batch().receipt().body.clone();
    f(&mut body);
    body.sign(&signing_key()).unwrap()
}

pub(crate) fn generate() -> Value {
    let batch = batch();
    let receipt = batch.receipt();
    let key = signing_key();
    let nk = name_key();
    let leaves: Vec<Value> = batch
        .leaves()
        .iter()
        .zip(NAMES)
        .map(|(l, name)| {
            json!({
                "name": name,
                "canonical_name": NormalizedName::new(name).unwrap().as_str(),
                "timestamp_ms": l.timestamp_ms,
                "transport": l.transport.to_string(),
                "qtype": l.qtype,
                "rcode_class": l.rcode_class.to_string(),
                "work_class": l.work_class.to_string(),
                "flags": l.flags.bits(),
                "latency_bucket": l.latency.to_string(),
                "response_bytes": l.response_bytes,
                "size_bucket": l.size_bucket().to_string(),
                "name_hash": h(l.name_hash),
                "ticket": h(l.ticket),
                "response_summary_hash": h(l.response_summary_hash),
                "leaf_hex": h(l.to_bytes_v1()),
                "leaf_hash": h(l.hash_v1()),
            })
        })
        .collect();
    let proofs: Vec<Value> = [0u64, 3, 6]
        .iter()
        .map(|&i| {
            let p = batch.proof(i).unwrap();
            json!({
                "comment": format!("RFC 6962 audit path of leaf {i} in the 7-leaf tree (ClosedBatch::proof), siblings from the leaf level up; proof_hex is its Borsh encoding"),
                "leaf_index": i,
                "tree_size": p.tree_size,
                "path": p.path.iter().map(h).collect::<Vec<_>>(),
                "proof_hex": h(p.to_bytes()),
            })
        })
        .collect();
    let sample = AuditSample::new(
        &AUDIT_SEED,
        &receipt.body.integrity.merkle_root,
        receipt.body.integrity.leaf_count,
        3,
    );

    let p3 = batch.proof(3).unwrap();
    let mut tampered = batch.leaves()[3].to_bytes_v1();
    tampered[40] ^= 0x01; // inside the ticket
    let mut wrong_root = receipt.body.integrity.merkle_root;
    wrong_root[31] ^= 0x01;
    let mut malleated = receipt.clone();
    malleated.signature = malleate(&receipt.signature);

    let negatives = json!([
        {
            "comment": "Tampered leaf: leaf 3 with bit 0 of byte 40 (inside `ticket`) flipped, checked with leaf 3's genuine proof against the genuine root.",
            "kind": "proof",
            "leaf_hex": h(tampered),
            "proof_hex": h(p3.to_bytes()),
            "root": h(receipt.body.integrity.merkle_root),
            "expected_error": "RootMismatch",
        },
        {
            "comment": "Wrong root: leaf 3 and its genuine proof, checked against the genuine root with bit 0 of its last byte flipped.",
            "kind": "proof",
            "leaf_hex": h(batch.leaves()[3].to_bytes_v1()),
            "proof_hex": h(p3.to_bytes()),
            "root": h(wrong_root),
            "expected_error": "RootMismatch",
        },
        {
            "comment": "Malleated signature: the genuine receipt with S replaced by S + L (L = ed25519 group order, little-endian addition). Lax verifiers that reduce S accept it; strict verification must refuse it.",
            "kind": "receipt",
            "receipt_hex": h(malleated.to_bytes()),
            "expected_error": "Signature(Invalid)",
        },
        {
            "comment": "Bad counts: success_count raised by 1 (success + error > request), re-signed with the vector key so that only the count rule fails.",
            "kind": "receipt",
            "receipt_hex": h(resigned(|b| b.service_summary.success_count += 1).to_bytes()),
            "expected_error": "SuccessPlusErrorExceedsRequests",
        },
        {
            "comment": "Bad counts: served_from_cache_count set to request_count + 1, re-signed.",
            "kind": "receipt",
            "receipt_hex": h(resigned(|b| b.service_summary.served_from_cache_count = b.service_summary.request_count + 1).to_bytes()),
            "expected_error": "CacheExceedsRequests",
        },
        {
            "comment": "Bad counts: leaf_count raised by 1 (leaf_count != request_count for a batch), re-signed.",
            "kind": "receipt",
            "receipt_hex": h(resigned(|b| b.integrity.leaf_count += 1).to_bytes()),
            "expected_error": "LeafCountMismatch",
        },
        {
            "comment": "Bad counts: CACHE_HIT work-class count raised by 1 (work classes no longer sum to request_count), re-signed.",
            "kind": "receipt",
            "receipt_hex": h(resigned(|b| {
                let counts = b.service_summary.work_class_counts.entries().iter().map(|&(c, n)| (c, if c == WorkClass::CacheHit { n + 1 } else { n }));
                b.service_summary.work_class_counts = ClassCounts::from_pairs(counts).unwrap();
            }).to_bytes()),
            "expected_error": "WorkClassSumMismatch",
        },
        {
            "comment": "Wrong name key: an auditor given 32 bytes of 0x5b instead of the committed key; the commitment check fails before any name is compared.",
            "kind": "name_audit",
            "name_key": h([0x5b; 32]),
            "leaf_index": 0,
            "name": NAMES[0],
            "expected_error": "WrongKey",
        },
    ]);

    json!({
        "comment": "TollDNS receipt format v1 test vectors. Generated by `cargo run -p tolldns-receipts --example gen_vectors` from fixed inputs: signing-key seed = bytes 0x00..=0x1f, name key = 32 x 0x5a, window_len_s = 60, window_id = 29333335, seven leaves (field values below, names hashed with the name key), sealed in the given order with ClosedBatch::seal at timestamp_ms 1760000160000. Audit seed = 32 x 0xa5. The test `vectors` fails when this file and the code disagree. Byte layouts: docs/RECEIPTS.md.",
        "signing_key_seed": h(key.to_bytes()),
        "operator_id": bs58::encode(key.verifying_key().as_bytes()).into_string(),
        "operator_id_hex": h(key.verifying_key().as_bytes()),
        "name_key": h(nk.to_bytes()),
        "name_key_commitment": h(nk.commitment()),
        "window_len_s": WINDOW_LEN_S,
        "window_id": WINDOW_ID,
        "leaves": leaves,
        "merkle_root": h(receipt.body.integrity.merkle_root),
        "body_borsh_hex": h(receipt.body.to_bytes()),
        "signing_message_hex": h(receipt.body.signing_message()),
        "signature_hex": h(receipt.signature),
        "receipt_borsh_hex": h(receipt.to_bytes()),
        "receipt_json": receipt.to_json(),
        "proofs": proofs,
        "audit": {
            "comment": "k = 3 distinct indices drawn from the audit seed and the root (sample_size(0.99, 0.10, 7) would clamp to all 7).",
            "seed": h(AUDIT_SEED),
            "k": 3,
            "first_draws": (0..4).map(|c| audit_draw(&AUDIT_SEED, &receipt.body.integrity.merkle_root, c).to_string()).collect::<Vec<_>>(),
            "indices": sample.indices(),
        },
        "negative": negatives,
    })
}

/// The file's exact text.
pub(crate) fn render() -> String {
    let mut s = serde_json::to_string_pretty(&generate()).unwrap();
    s.push('\n');
    s
}
