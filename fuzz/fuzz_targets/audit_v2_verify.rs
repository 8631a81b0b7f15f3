//! Arbitrary audit answers against a fixed valid v2 receipt: the sample comes from the input's
//! seed and size, the operator's genuine answers are changed by a list of arbitrary edits
//! (answers dropped, swapped, duplicated, replaced by other leaves, neighbours removed or
//! replaced, leaf and path bytes flipped, indices and tree sizes changed, or whole answers made
//! up). Verification never panics; the genuine answers always pass; any answers that pass are
//! the genuine ones (a leaf and its path are bound to the root). Sketch witnesses and ticket
//! lookups are edited and checked the same way.
#![no_main]

use std::collections::BTreeSet;
use std::sync::OnceLock;

use arbitrary::Arbitrary;
use ed25519_dalek::SigningKey;
use libfuzzer_sys::fuzz_target;
use tolldns_core::{BackendId, DeploymentId, OperatorId, Role, WindowId, WindowLen};
use tolldns_receipts::{
    AuditAnswer, AuditSample, BatchHeader, ClosedBatch, Deployment, LatencyBucket, Leaf, LeafFlags,
    LeafProof, MerkleProof, OperatorRegistry, OperatorStatus, PolicyRegistry, RcodeClass,
    ReceiptLedger, SketchWitnessSample, TicketCheck, TicketStatus, Transport, Verifier,
    VerifyError, WorkClass, verify_ticket_leaves,
};

const WINDOW_START_MS: u64 = 1_760_000_100_000;
const N: u64 = 200;

fn deployment() -> Deployment {
    Deployment::new(
        DeploymentId::derive(&[0xd1; 32], &[0xd2; 32]),
        WindowLen::new(60).expect("non-zero"),
    )
}

/// A valid v2 window of 200 leaves: 8 tokens, every fifth leaf unticketed, some answers
/// repeated in the same millisecond, 40 distinct names.
fn batch() -> &'static ClosedBatch {
    static B: OnceLock<ClosedBatch> = OnceLock::new();
    B.get_or_init(|| {
        let d = deployment();
        let header = BatchHeader::new(
            d.id,
            BackendId::new("edge-ingress").expect("valid backend id"),
            d.window_len,
            WindowId::containing(WINDOW_START_MS, d.window_len),
        );
        let leaves: Vec<Leaf> = (0..N)
            .map(|i| {
                let j = if i % 17 == 3 { i - 1 } else { i };
                let b = (j % 256) as u8;
                let mut name_hash = [0u8; 16];
                name_hash[0] = (j % 40) as u8 * 6;
                name_hash[1] = 0x80 >> (j % 7);
                Leaf {
                    timestamp_ms: WINDOW_START_MS + (j * 7_919) % 60_000,
                    transport: Transport::Udp,
                    qtype: 1,
                    rcode_class: if j % 9 == 0 {
                        RcodeClass::Servfail
                    } else {
                        RcodeClass::NoError
                    },
                    work_class: WorkClass::CacheMiss,
                    flags: LeafFlags {
                        cache_hit: j % 3 == 0,
                        ..LeafFlags::default()
                    },
                    latency: LatencyBucket::Lt50,
                    response_bytes: 40 + (j as u32 * 13) % 900,
                    name_hash,
                    ticket: if j % 5 == 0 {
                        [0; 16]
                    } else {
                        [1 + (j % 8) as u8; 16]
                    },
                    response_summary_hash: [b; 16],
                    repeat: 0,
                }
            })
            .collect();
        ClosedBatch::seal(
            &header,
            leaves,
            [0x5a; 32],
            WINDOW_START_MS + 60_000,
            &SigningKey::from_bytes(&[7; 32]),
        )
        .expect("valid window")
    })
}

struct World;

impl OperatorRegistry for World {
    fn operator_status(&self, _: &OperatorId, _: Role, _: WindowId) -> OperatorStatus {
        OperatorStatus::Active
    }
    fn backend_registered(&self, _: &OperatorId, b: &BackendId) -> bool {
        b.as_str() == "edge-ingress"
    }
}

impl PolicyRegistry for World {
    fn is_valid_policy(&self, v: u32, _: WindowId, _: WindowLen) -> bool {
        v == 1
    }
}

impl ReceiptLedger for World {
    fn contains(&self, _: &OperatorId, _: &BackendId, _: WindowId) -> bool {
        false
    }
    fn overlaps(&self, _: &OperatorId, _: u64, _: u64) -> bool {
        false
    }
}

/// Token lookup: the window's 8 tokens are valid, ticket 9 has an invalid token, any other
/// ticket has none.
impl TicketCheck for World {
    fn ticket_status(&self, t: &[u8; 16]) -> TicketStatus {
        match t {
            [1..=8, ..] if t.iter().all(|b| *b == t[0]) => TicketStatus::Valid,
            [9, ..] => TicketStatus::Invalid,
            _ => TicketStatus::Unknown,
        }
    }
}

#[derive(Arbitrary, Debug)]
struct RawProof {
    leaf: [u8; 32],
    leaf_more: [u8; 32],
    leaf_tail: [u8; 7],
    leaf_index: u64,
    tree_size: u64,
    path: Vec<[u8; 32]>,
}

impl RawProof {
    fn get(&self) -> Option<LeafProof> {
        let mut bytes = Vec::with_capacity(71);
        bytes.extend_from_slice(&self.leaf);
        bytes.extend_from_slice(&self.leaf_more);
        bytes.extend_from_slice(&self.leaf_tail);
        Some(LeafProof {
            leaf: Leaf::from_bytes(&bytes).ok()?,
            proof: MerkleProof {
                leaf_index: self.leaf_index,
                tree_size: self.tree_size,
                path: self.path.clone(),
            },
        })
    }
}

#[derive(Arbitrary, Debug)]
enum Edit {
    Drop(u8),
    Swap(u8, u8),
    Duplicate(u8),
    ClearNext(u8),
    NextFrom(u8, u16),
    LeafFrom(u8, u16),
    FlipLeaf(u8, u8, u8),
    FlipNextLeaf(u8, u8, u8),
    FlipPath(u8, u8, u8, u8),
    SetIndex(u8, u64),
    SetTreeSize(u8, u64),
    TruncatePath(u8),
    PushPath(u8, [u8; 32]),
    SetRepeat(u8, u16),
    Raw(u8, RawProof),
    RawNext(u8, RawProof),
}

#[derive(Arbitrary, Debug)]
struct Input {
    seed: [u8; 32],
    k: u8,
    edits: Vec<Edit>,
    witness_k: u8,
    witness_edits: Vec<(u8, u16)>,
    ticket: u8,
    lookup_edits: Vec<(u8, u16)>,
    max_leaves: u8,
}

/// Flip byte `at` of a leaf's v2 encoding by `x`; keep the leaf unchanged when the result does
/// not decode (the verifier takes decoded leaves).
fn flip_leaf(l: &mut Leaf, at: u8, x: u8) {
    let mut b = l.to_bytes();
    let i = usize::from(at) % b.len();
    b[i] ^= x;
    if let Ok(changed) = Leaf::from_bytes(&b) {
        *l = changed;
    }
}

fn apply(answers: &mut Vec<AuditAnswer>, edit: &Edit, batch: &ClosedBatch) {
    let n = answers.len();
    let pick = |i: u8| (n > 0).then(|| usize::from(i) % n);
    let other = |j: u16| batch.leaf_proof(u64::from(j) % N).ok();
    match edit {
        Edit::Drop(i) => {
            if let Some(i) = pick(*i) {
                answers.remove(i);
            }
        }
        Edit::Swap(i, j) => {
            if let (Some(i), Some(j)) = (pick(*i), pick(*j)) {
                answers.swap(i, j);
            }
        }
        Edit::Duplicate(i) => {
            if let Some(i) = pick(*i) {
                let a = answers[i].clone();
                answers.insert(i, a);
            }
        }
        Edit::ClearNext(i) => {
            if let Some(i) = pick(*i) {
                answers[i].next = None;
            }
        }
        Edit::NextFrom(i, j) => {
            if let Some(i) = pick(*i) {
                answers[i].next = other(*j);
            }
        }
        Edit::LeafFrom(i, j) => {
            if let (Some(i), Some(lp)) = (pick(*i), other(*j)) {
                answers[i].leaf = lp;
            }
        }
        Edit::FlipLeaf(i, at, x) => {
            if let Some(i) = pick(*i) {
                flip_leaf(&mut answers[i].leaf.leaf, *at, *x);
            }
        }
        Edit::FlipNextLeaf(i, at, x) => {
            if let Some(next) = pick(*i).and_then(|i| answers[i].next.as_mut()) {
                flip_leaf(&mut next.leaf, *at, *x);
            }
        }
        Edit::FlipPath(i, p, at, x) => {
            if let Some(i) = pick(*i) {
                let path = &mut answers[i].leaf.proof.path;
                if !path.is_empty() {
                    let p = usize::from(*p) % path.len();
                    path[p][usize::from(*at) % 32] ^= *x;
                }
            }
        }
        Edit::SetIndex(i, v) => {
            if let Some(i) = pick(*i) {
                answers[i].leaf.proof.leaf_index = *v;
            }
        }
        Edit::SetTreeSize(i, v) => {
            if let Some(i) = pick(*i) {
                answers[i].leaf.proof.tree_size = *v;
            }
        }
        Edit::TruncatePath(i) => {
            if let Some(i) = pick(*i) {
                answers[i].leaf.proof.path.pop();
            }
        }
        Edit::PushPath(i, h) => {
            if let Some(i) = pick(*i) {
                answers[i].leaf.proof.path.push(*h);
            }
        }
        Edit::SetRepeat(i, r) => {
            if let Some(i) = pick(*i) {
                answers[i].leaf.leaf.repeat = *r;
            }
        }
        Edit::Raw(i, raw) => {
            if let (Some(i), Some(lp)) = (pick(*i), raw.get()) {
                answers[i].leaf = lp;
            }
        }
        Edit::RawNext(i, raw) => {
            if let Some(i) = pick(*i) {
                answers[i].next = raw.get();
            }
        }
    }
}

fuzz_target!(|input: Input| {
    let batch = batch();
    let receipt = batch.receipt();
    let world = World;
    let v = Verifier::new(deployment(), &world, &world, &world).with_tickets(&world);
    let received_ms = WINDOW_START_MS + 61_000;
    let root = receipt.body.integrity.merkle_root;

    // The audit.
    let k = u64::from(input.k % 64);
    let sample = AuditSample::new(&input.seed, &root, N, k);
    let genuine = batch.answer(&sample).expect("sample of this batch");
    let report = v
        .verify_with_audit(receipt, received_ms, &sample, &genuine)
        .expect("genuine answers pass");
    assert_eq!(report.sampled, k);
    let mut answers = genuine.clone();
    for e in input.edits.iter().take(16) {
        apply(&mut answers, e, batch);
    }
    let checked = v.check_audit(receipt, &sample, &answers);
    assert_eq!(
        v.verify_with_audit(receipt, received_ms, &sample, &answers),
        checked
    );
    if checked.is_ok() {
        assert_eq!(answers, genuine, "changed answers passed the audit");
    } else if let Err(e) = checked {
        assert!(!e.name().is_empty());
    }
    // Answers for a sample drawn over another root never pass.
    let mut other_root = root;
    other_root[0] ^= 1;
    let other = AuditSample::new(&input.seed, &other_root, N, k);
    assert_eq!(
        v.check_audit(receipt, &other, &answers),
        Err(VerifyError::SampleNotForReceipt)
    );

    // Sketch witnesses: any that pass are ticketed leaves of the tree with the drawn cells.
    let sketch = &receipt.body.v2.as_ref().expect("v2").name_sketch;
    let ws = SketchWitnessSample::new(&input.seed, &root, sketch, u64::from(input.witness_k % 48));
    let mut witnesses: Vec<LeafProof> = ws
        .registers()
        .iter()
        .map(|&j| batch.sketch_witness(j).expect("filled register"))
        .collect();
    assert_eq!(v.check_sketch_witnesses(receipt, &ws, &witnesses), Ok(()));
    for (i, j) in input.witness_edits.iter().take(8) {
        if witnesses.is_empty() {
            break;
        }
        let at = usize::from(*i) % witnesses.len();
        witnesses[at] = batch.leaf_proof(u64::from(*j) % N).expect("in range");
    }
    if v.check_sketch_witnesses(receipt, &ws, &witnesses).is_ok() {
        for (w, &j) in witnesses.iter().zip(ws.registers()) {
            assert!(w.leaf.is_ticketed());
            assert_eq!(w.leaf.sketch_cell(), (j, sketch.register(j)));
            assert_eq!(batch.leaves()[w.proof.leaf_index as usize], w.leaf);
        }
    }

    // Ticket lookups: any that pass hold only leaves of the ticket, in ascending order.
    let ticket = [1 + input.ticket % 8; 16];
    let mut found = batch.ticket_leaves(&ticket);
    let count = found.len() as u64;
    assert_eq!(
        verify_ticket_leaves(receipt, &ticket, &found, count),
        Ok(count)
    );
    for (i, j) in input.lookup_edits.iter().take(8) {
        let lp = batch.leaf_proof(u64::from(*j) % N).expect("in range");
        if found.is_empty() || i % 2 == 0 {
            found.insert(usize::from(*i) % (found.len() + 1), lp);
        } else {
            let at = usize::from(*i) % found.len();
            found[at] = lp;
        }
    }
    let max = u64::from(input.max_leaves);
    if let Ok(n) = verify_ticket_leaves(receipt, &ticket, &found, max) {
        assert!(n <= max);
        assert!(found.iter().all(|lp| lp.leaf.ticket == ticket));
        let indices: Vec<u64> = found.iter().map(|lp| lp.proof.leaf_index).collect();
        let distinct: BTreeSet<u64> = indices.iter().copied().collect();
        assert_eq!(distinct.len(), indices.len());
        assert!(indices.windows(2).all(|w| w[0] < w[1]));
    }
});
