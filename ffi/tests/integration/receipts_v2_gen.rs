//! Builds `test-vectors/ffi-receipts-v2.json`: receipt format v2 material for the C API, from
//! fixed inputs. Shared by the `gen_receipt_v2_vectors` example (which writes the file) and
//! the integration test (which checks that the file has not drifted).
//!
//! Everything is derived with `tolldns-receipts` itself: the honest batch is sealed with
//! `ClosedBatch::seal`; the tampered batches take its leaves (in Merkle order), change their
//! order or `repeat` as an adversarial operator would, and are re-committed (Merkle root,
//! service summary, ticketed count and name sketch recomputed, body re-signed under the same
//! key), so that each one breaks exactly one rule.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tolldns_core::{BackendId, DeploymentId, NameKey, NormalizedName, WindowId, WindowLen};
use tolldns_receipts::ed25519_dalek::SigningKey;
use tolldns_receipts::{
    AuditSample, AuditSeed, BatchHeader, ClosedBatch, LatencyBucket, Leaf, LeafFlags, MerkleProof,
    MerkleTree, RcodeClass, Receipt, Transport, VerifyError, WorkClass, order_leaves,
    sketch_with_witnesses, summarize,
};

/// Where the vectors live.
pub(crate) const VECTORS_PATH: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../test-vectors/ffi-receipts-v2.json"
);

/// How to regenerate the file.
pub(crate) const REGENERATE: &str = "cargo run -p tolldns-ffi --example gen_receipt_v2_vectors";

pub(crate) const SIGNING_KEY_SEED: [u8; 32] = {
    let mut k = [0u8; 32];
    let mut i = 0;
    while i < 32 {
        k[i] = 0x40 + i as u8;
        i += 1;
    }
    k
};
pub(crate) const NAME_KEY: [u8; 32] = [0x33; 32];
pub(crate) const PROGRAM_ID: [u8; 32] = [0x01; 32];
pub(crate) const GENESIS_HASH: [u8; 32] = [0x02; 32];
/// Another cluster's genesis hash: the deployment a receipt must not verify on.
pub(crate) const OTHER_GENESIS_HASH: [u8; 32] = [0x03; 32];
pub(crate) const BACKEND_ID: &str = "edge-ingress";
pub(crate) const POLICY_VERSION: u32 = 1;
pub(crate) const WINDOW_LEN_S: u32 = 60;
pub(crate) const WINDOW_ID: u64 = 29_333_335;
pub(crate) const WINDOW_START_MS: u64 = WINDOW_ID * 60_000;
pub(crate) const WINDOW_END_MS: u64 = WINDOW_START_MS + 60_000;
pub(crate) const RECEIPT_TIMESTAMP_MS: u64 = WINDOW_END_MS;
pub(crate) const MAX_DELAY_MS: u64 = 600_000;
pub(crate) const SKEW_MS: u64 = 30_000;
pub(crate) const MAX_REPEAT_PERMILLE: u32 =
    tolldns_receipts::Deployment::DEFAULT_MAX_REPEAT_PERMILLE;
pub(crate) const RECEIPT_SLOT: u64 = 1_000;
/// The verifier's fixed delay between recording a receipt and the slot of its audit seed.
pub(crate) const AUDIT_DELAY_SLOTS: u64 = 32;
pub(crate) const AUDIT_SEED_SLOT: u64 = RECEIPT_SLOT + AUDIT_DELAY_SLOTS;
pub(crate) const AUDIT_SEED_HASH: [u8; 32] = [0xa5; 32];

/// The file.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct ReceiptV2Vectors {
    pub(crate) comment: String,
    pub(crate) signing_key_seed: String,
    pub(crate) operator_id: String,
    pub(crate) name_key: String,
    pub(crate) name_key_commitment: String,
    pub(crate) program_id: String,
    pub(crate) genesis_hash: String,
    /// `SHA256("TOLLDNS-DEPLOYMENT-V1\0" || program_id || genesis_hash)`.
    pub(crate) deployment_id: String,
    /// The deployment of the same program on the cluster `OTHER_GENESIS_HASH`.
    pub(crate) other_deployment_id: String,
    pub(crate) backend_id: String,
    pub(crate) policy_version: u32,
    pub(crate) window_len_s: u32,
    pub(crate) window_id: u64,
    pub(crate) window_end_ms: u64,
    pub(crate) receipt_timestamp_ms: u64,
    pub(crate) max_delay_ms: u64,
    pub(crate) skew_ms: u64,
    /// The deployment's bound on repeated ticketed leaves, in thousandths of the ticketed
    /// leaves (the library's default when the file was made).
    pub(crate) max_repeat_permille: u32,
    pub(crate) audit: Audit,
    pub(crate) batches: Vec<Batch>,
    pub(crate) cases: Vec<Case>,
}

/// Where audit seeds come from.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Audit {
    pub(crate) comment: String,
    /// The chain slot at which the verifier recorded every receipt.
    pub(crate) receipt_slot: u64,
    /// The verifier's fixed delay: the seed is the hash of slot `receipt_slot + delay_slots`.
    pub(crate) delay_slots: u64,
    pub(crate) seed_slot: u64,
    pub(crate) seed_hash: String,
}

/// One signed receipt and (unless it is checked without leaves) every leaf with its proof.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Batch {
    pub(crate) name: String,
    pub(crate) comment: String,
    pub(crate) receipt_hex: String,
    /// The leaves in Merkle order (71-byte v2 encoding); empty for a receipt-only batch.
    pub(crate) leaves_hex: Vec<String>,
    /// The inclusion proof of each leaf.
    pub(crate) proofs_hex: Vec<String>,
    /// The audit size: every leaf.
    pub(crate) k: u64,
    /// `AuditSample::at_fixed_slot(seed, receipt_slot, delay_slots, root, leaf_count, k)`, in
    /// draw order.
    pub(crate) sample: Vec<u64>,
}

/// One check of one batch.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Case {
    pub(crate) comment: String,
    pub(crate) batch: String,
    /// `"verify"` (the rules without leaves) or `"audit"` (the answers for the sample).
    pub(crate) check: String,
    /// `"main"` (`deployment_id`) or `"other"` (`other_deployment_id`).
    pub(crate) deployment: String,
    /// When the receipt arrived (Unix ms); read by `"verify"` only.
    pub(crate) received_ms: u64,
    /// `"ok"` or the `VerifyError::name()` of the first rule that fails.
    pub(crate) expected: String,
    /// `VerifyError::code()` (0 for `"ok"`); the C result is 900 + this.
    pub(crate) code: u16,
}

fn hex32(b: &[u8; 32]) -> String {
    hex::encode(b)
}

/// A deterministic 16-byte value for the vectors only: `SHA256(label || i)[..16]`.
fn bytes16(label: &str, i: u64) -> [u8; 16] {
    let mut h = Sha256::new();
    h.update(b"TOLLDNS-FFI-V2-VECTORS\0");
    h.update(label.as_bytes());
    h.update(i.to_le_bytes());
    let d = h.finalize();
    let mut out = [0u8; 16];
    out.copy_from_slice(&d[..16]);
    out
}

pub(crate) fn deployment_id() -> DeploymentId {
    DeploymentId::derive(&PROGRAM_ID, &GENESIS_HASH)
}

pub(crate) fn other_deployment_id() -> DeploymentId {
    DeploymentId::derive(&PROGRAM_ID, &OTHER_GENESIS_HASH)
}

/// The window's answered queries, in arrival order (the builder orders them).
pub(crate) fn input_leaves() -> Vec<Leaf> {
    let key = NameKey(NAME_KEY);
    let names = [
        "example.com",
        "www.example.org",
        "mail.example.net",
        "a.b.example.com",
        "tolldns.example",
    ];
    // (offset ms, name, transport, rcode, cache hit, bytes, ticketed)
    #[rustfmt::skip]
    let rows: [(u64, usize, Transport, RcodeClass, bool, u32, bool); 15] = [
        (50_000, 0, Transport::Udp, RcodeClass::NoError, true, 80, true),
        (1_000, 1, Transport::Doh, RcodeClass::NoError, false, 310, true),
        (20_000, 2, Transport::Dot, RcodeClass::Nxdomain, false, 120, false),
        (3_500, 3, Transport::Udp, RcodeClass::NoError, true, 96, false),
        (3_500, 4, Transport::Tcp, RcodeClass::NoError, false, 1_400, true),
        (41_000, 1, Transport::Udp, RcodeClass::Servfail, false, 60, false),
        (12_000, 0, Transport::Doh, RcodeClass::NoError, true, 88, true),
        (59_999, 4, Transport::Doq, RcodeClass::NoError, false, 512, true),
        (27_000, 2, Transport::Udp, RcodeClass::NoError, false, 240, false),
        (8_000, 3, Transport::Dot, RcodeClass::NoError, true, 130, true),
        // The same query answered the same way under the same ticket in the same millisecond
        // as the row above: an honest duplicate, kept with `repeat` = 1.
        (8_000, 3, Transport::Dot, RcodeClass::NoError, true, 130, true),
        (15_000, 2, Transport::Doh, RcodeClass::NoError, false, 204, true),
        (33_000, 4, Transport::Udp, RcodeClass::NoError, true, 72, true),
        (45_500, 0, Transport::Dot, RcodeClass::Nxdomain, false, 110, true),
        (57_000, 1, Transport::Doh, RcodeClass::NoError, false, 260, true),
    ];
    rows.iter()
        .enumerate()
        .map(
            |(i, &(offset, name, transport, rcode, cache, bytes, ticketed))| {
                let name = NormalizedName::new(names[name]).expect("valid name");
                // The duplicate shares its original's ticket (one client, one token).
                let ticket_index = if i == 10 { 9 } else { i as u64 };
                Leaf {
                    timestamp_ms: WINDOW_START_MS + offset,
                    transport,
                    qtype: if ticket_index % 3 == 0 { 28 } else { 1 },
                    rcode_class: rcode,
                    work_class: if cache {
                        WorkClass::CacheHit
                    } else {
                        WorkClass::CacheMiss
                    },
                    flags: LeafFlags {
                        cache_hit: cache,
                        ..LeafFlags::default()
                    },
                    latency: LatencyBucket::from_millis(if cache { 2 } else { 40 }),
                    response_bytes: bytes,
                    name_hash: key.name_hash(&name),
                    ticket: if ticketed {
                        bytes16("ticket", ticket_index)
                    } else {
                        [0; 16]
                    },
                    response_summary_hash: Leaf::response_summary_hash(
                        format!("{rcode:?} {bytes}").as_bytes(),
                    ),
                    repeat: 0,
                }
            },
        )
        .collect()
}

fn header() -> BatchHeader {
    let mut h = BatchHeader::new(
        deployment_id(),
        BackendId::new(BACKEND_ID).expect("backend id"),
        WindowLen::new(WINDOW_LEN_S).expect("window length"),
        WindowId(WINDOW_ID),
    );
    h.policy_version = POLICY_VERSION;
    h
}

pub(crate) fn signing_key() -> SigningKey {
    SigningKey::from_bytes(&SIGNING_KEY_SEED)
}

/// The honest batch, sealed by the library.
pub(crate) fn honest() -> ClosedBatch {
    ClosedBatch::seal(
        &header(),
        input_leaves(),
        NameKey(NAME_KEY).commitment(),
        RECEIPT_TIMESTAMP_MS,
        &signing_key(),
    )
    .expect("seal")
}

/// A receipt over `leaves` exactly as given (no ordering, `repeat` as given), re-committed
/// and re-signed like the honest one.
pub(crate) fn forge(leaves: &[Leaf]) -> (Receipt, MerkleTree) {
    let tree = MerkleTree::from_leaf_hashes(leaves.iter().map(Leaf::hash).collect());
    let mut body = honest().receipt().body.clone();
    body.service_summary = summarize(leaves).expect("summary");
    body.integrity.leaf_count = leaves.len() as u64;
    body.integrity.merkle_root = tree.root();
    let v2 = body.v2.as_mut().expect("v2");
    v2.ticketed_leaf_count = leaves.iter().filter(|l| l.is_ticketed()).count() as u64;
    v2.ticketed_repeat_count = leaves
        .iter()
        .filter(|l| l.repeat != 0 && l.is_ticketed())
        .count() as u64;
    v2.name_sketch = sketch_with_witnesses(leaves).0;
    (body.sign(&signing_key()).expect("sign"), tree)
}

fn sample(receipt: &Receipt, k: u64) -> Vec<u64> {
    let seed = AuditSeed {
        slot: AUDIT_SEED_SLOT,
        hash: AUDIT_SEED_HASH,
    };
    let i = &receipt.body.integrity;
    AuditSample::at_fixed_slot(
        &seed,
        RECEIPT_SLOT,
        AUDIT_DELAY_SLOTS,
        &i.merkle_root,
        i.leaf_count,
        k,
    )
    .expect("seed at the fixed slot")
    .indices()
    .to_vec()
}

fn batch(
    name: &str,
    comment: &str,
    receipt: &Receipt,
    leaves: &[Leaf],
    tree: &MerkleTree,
) -> Batch {
    let n = receipt.body.integrity.leaf_count;
    let proofs: Vec<MerkleProof> = (0..leaves.len() as u64)
        .map(|i| tree.proof(i).expect("proof"))
        .collect();
    Batch {
        name: name.to_owned(),
        comment: comment.to_owned(),
        receipt_hex: hex::encode(receipt.to_bytes()),
        leaves_hex: leaves.iter().map(|l| hex::encode(l.to_bytes())).collect(),
        proofs_hex: proofs.iter().map(|p| hex::encode(p.to_bytes())).collect(),
        k: n,
        sample: sample(receipt, n),
    }
}

fn case(
    comment: &str,
    batch: &str,
    check: &str,
    deployment: &str,
    received_ms: u64,
    expected: Option<VerifyError>,
) -> Case {
    Case {
        comment: comment.to_owned(),
        batch: batch.to_owned(),
        check: check.to_owned(),
        deployment: deployment.to_owned(),
        received_ms,
        expected: expected.map_or("ok", |e| e.name()).to_owned(),
        code: expected.map_or(0, |e| e.code()),
    }
}

/// The index, in Merkle order, of the first of two adjacent leaves that differ in timestamp,
/// both outside the duplicate pair: where the tampered batches change the order.
fn tamper_point(leaves: &[Leaf]) -> usize {
    (1..leaves.len() - 2)
        .find(|&i| {
            leaves[i].timestamp_ms < leaves[i + 1].timestamp_ms
                && leaves[i - 1].timestamp_ms < leaves[i].timestamp_ms
                && leaves[i + 1].timestamp_ms < leaves[i + 2].timestamp_ms
                && !leaves[i].same_answer(&leaves[i + 1])
        })
        .expect("a tamper point")
}

/// The file's contents.
pub(crate) fn render() -> String {
    let honest = honest();
    let leaves = honest.leaves().to_vec();
    let n = leaves.len();
    let dup = leaves
        .iter()
        .position(|l| l.repeat == 1)
        .expect("the duplicate pair");
    let p = tamper_point(&leaves);

    let mut batches = vec![batch(
        "honest",
        "ClosedBatch::seal of the fifteen input leaves: strict order, the duplicate numbered \
         repeat = 1; ten distinct ticketed leaves plus the duplicate (1 of 11 ticketed \
         leaves a repeat, within max_repeat_permille)",
        honest.receipt(),
        &leaves,
        honest.tree(),
    )];

    let mut over = honest.receipt().body.clone();
    over.service_summary.bytes_served_total = 65_535 * over.service_summary.request_count + 1;
    let over = over.sign(&signing_key()).expect("sign");
    batches.push(Batch {
        name: "bytes_over_maximum".to_owned(),
        comment: "the honest body with bytes_served_total = 65535 x request_count + 1, \
                  re-signed (receipt only)"
            .to_owned(),
        receipt_hex: hex::encode(over.to_bytes()),
        leaves_hex: Vec::new(),
        proofs_hex: Vec::new(),
        k: 0,
        sample: Vec::new(),
    });

    let mut tripled: Vec<Leaf> = leaves.iter().flat_map(|l| [*l; 3]).collect();
    order_leaves(&mut tripled).expect("order");
    let tripled_ticketed = tripled.iter().filter(|l| l.is_ticketed()).count();
    let tripled_repeats = tripled
        .iter()
        .filter(|l| l.is_ticketed() && l.repeat != 0)
        .count();
    let (r, _) = forge(&tripled);
    batches.push(Batch {
        name: "tripled".to_owned(),
        comment: "every honest leaf committed three times, in strict order and numbered by \
                  repeat as honest duplicates would be, re-committed (receipt only)"
            .to_owned(),
        receipt_hex: hex::encode(r.to_bytes()),
        leaves_hex: Vec::new(),
        proofs_hex: Vec::new(),
        k: 0,
        sample: Vec::new(),
    });

    let mut swapped = leaves.clone();
    swapped.swap(p, p + 1);
    let (r, t) = forge(&swapped);
    batches.push(batch(
        "out_of_order",
        &format!(
            "the honest leaves with leaves {p} and {} swapped, re-committed",
            p + 1
        ),
        &r,
        &swapped,
        &t,
    ));

    let mut duplicated = leaves.clone();
    duplicated.insert(p + 1, leaves[p]);
    let (r, t) = forge(&duplicated);
    batches.push(batch(
        "duplicated",
        &format!(
            "the honest leaves with leaf {p} committed twice (an exact copy inserted after it, \
             the v1 inflation), re-committed"
        ),
        &r,
        &duplicated,
        &t,
    ));

    let mut skipped = leaves;
    skipped[dup].repeat = 2;
    let (r, t) = forge(&skipped);
    batches.push(batch(
        "repeat_skipped",
        &format!(
            "the honest leaves with the duplicate (leaf {dup}) numbered repeat = 2 instead of \
             1, re-committed"
        ),
        &r,
        &skipped,
        &t,
    ));

    let on_time = WINDOW_END_MS + 1_000;
    let last = WINDOW_END_MS + MAX_DELAY_MS;
    let cases = vec![
        case(
            "honest receipt, arrived 1 s after its window",
            "honest",
            "verify",
            "main",
            on_time,
            None,
        ),
        case(
            "honest receipt, arrived exactly max_delay_ms after its window (inclusive)",
            "honest",
            "verify",
            "main",
            last,
            None,
        ),
        case(
            "honest receipt, arrived max_delay_ms + 1 ms after its window",
            "honest",
            "verify",
            "main",
            last + 1,
            Some(VerifyError::ArrivedTooLate {
                received_ms: last + 1,
            }),
        ),
        case(
            "honest receipt checked by a verifier of another deployment (replay across networks)",
            "honest",
            "verify",
            "other",
            on_time,
            Some(VerifyError::WrongDeployment),
        ),
        case(
            "bytes_served_total one byte above 65535 per request",
            "bytes_over_maximum",
            "verify",
            "main",
            on_time,
            Some(VerifyError::BytesExceedMaximum),
        ),
        case(
            &format!(
                "every leaf committed three times (numbered by repeat): {tripled_repeats} of \
                 {tripled_ticketed} ticketed leaves are repeats, above {MAX_REPEAT_PERMILLE} \
                 permille"
            ),
            "tripled",
            "verify",
            "main",
            on_time,
            Some(VerifyError::TooManyRepeats),
        ),
        case(
            "honest audit: every leaf sampled, each with its right neighbour",
            "honest",
            "audit",
            "main",
            on_time,
            None,
        ),
        case(
            "the out-of-order receipt passes every rule without leaves",
            "out_of_order",
            "verify",
            "main",
            on_time,
            None,
        ),
        case(
            "the audit of the out-of-order receipt: a sampled leaf after its neighbour",
            "out_of_order",
            "audit",
            "main",
            on_time,
            Some(VerifyError::LeavesOutOfOrder { index: p as u64 }),
        ),
        case(
            "the receipt with a leaf committed twice passes every rule without leaves",
            "duplicated",
            "verify",
            "main",
            on_time,
            None,
        ),
        case(
            "the audit of the receipt with a leaf committed twice: equal neighbours",
            "duplicated",
            "audit",
            "main",
            on_time,
            Some(VerifyError::LeavesOutOfOrder { index: p as u64 }),
        ),
        case(
            "the audit of the receipt with a skipped repeat number",
            "repeat_skipped",
            "audit",
            "main",
            on_time,
            Some(VerifyError::RepeatMismatch {
                index: dup as u64 - 1,
            }),
        ),
    ];
    assert_eq!(n, 15);

    let operator = signing_key().verifying_key().to_bytes();
    let file = ReceiptV2Vectors {
        comment: format!(
            "TollDNS receipt format v2 vectors for the C API (tolldns_receipt_verify_v2, \
             tolldns_receipt_audit_v2). `{REGENERATE}` derives everything from fixed inputs \
             (ffi/tests/integration/receipts_v2_gen.rs) with tolldns-receipts: the honest batch \
             is ClosedBatch::seal of fifteen leaves on deployment_id, window_id of \
             window_len_s, at receipt_timestamp_ms; each tampered batch changes the honest \
             leaves as an adversarial operator would and re-commits and re-signs them. Every \
             case assumes: the operator is registered and staked for the role, backend_id is \
             registered to it, policy_version is valid, the ledger holds no receipt, every \
             ticket's token is valid, tickets are not required, at most max_repeat_permille \
             thousandths of the ticketed leaves may be repeats, skew_ms of clock skew. An audit draws k indices with \
             AuditSample::at_fixed_slot(seed, receipt_slot, delay_slots) and gets, per \
             sampled index in draw order, the leaf and its proof and (unless it is the last \
             leaf) leaf index + 1 and its proof. expected is \"ok\" or the VerifyError name \
             of the first rule that fails, code its VerifyError code (the C result is 900 + \
             code). The test `receipts_v2` fails when this file and the code disagree."
        ),
        signing_key_seed: hex32(&SIGNING_KEY_SEED),
        operator_id: hex32(&operator),
        name_key: hex32(&NAME_KEY),
        name_key_commitment: hex32(&NameKey(NAME_KEY).commitment()),
        program_id: hex32(&PROGRAM_ID),
        genesis_hash: hex32(&GENESIS_HASH),
        deployment_id: hex32(deployment_id().as_bytes()),
        other_deployment_id: hex32(other_deployment_id().as_bytes()),
        backend_id: BACKEND_ID.to_owned(),
        policy_version: POLICY_VERSION,
        window_len_s: WINDOW_LEN_S,
        window_id: WINDOW_ID,
        window_end_ms: WINDOW_END_MS,
        receipt_timestamp_ms: RECEIPT_TIMESTAMP_MS,
        max_delay_ms: MAX_DELAY_MS,
        skew_ms: SKEW_MS,
        max_repeat_permille: MAX_REPEAT_PERMILLE,
        audit: Audit {
            comment: "seeds post-date the receipts: the seed is the hash of slot \
                      receipt_slot + delay_slots, a delay fixed in advance"
                .to_owned(),
            receipt_slot: RECEIPT_SLOT,
            delay_slots: AUDIT_DELAY_SLOTS,
            seed_slot: AUDIT_SEED_SLOT,
            seed_hash: hex32(&AUDIT_SEED_HASH),
        },
        batches,
        cases,
    };
    let mut text = serde_json::to_string_pretty(&file).expect("serialize");
    text.push('\n');
    text
}
