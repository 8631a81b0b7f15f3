//! `test-vectors/ffi-receipts-v2.json`: fails when the file drifts from what the generator
//! derives, and checks every case with `tolldns-receipts` directly, so that the vectors stand
//! on their own.

use tolldns_core::{BackendId, DeploymentId, OperatorId, Role, WindowId, WindowLen};
use tolldns_receipts::{
    AuditAnswer, AuditSample, AuditSeed, Deployment, Leaf, LeafProof, MerkleProof,
    OperatorRegistry, OperatorStatus, PolicyRegistry, Receipt, ReceiptLedger, TicketCheck,
    TicketStatus, Verifier,
};

use crate::check_committed;
use crate::receipts_v2_gen::{self, Batch, ReceiptV2Vectors};

pub(crate) fn file() -> ReceiptV2Vectors {
    let text = std::fs::read_to_string(receipts_v2_gen::VECTORS_PATH).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn bytes(hex_text: &str) -> Vec<u8> {
    hex::decode(hex_text).unwrap()
}

fn array32(hex_text: &str) -> [u8; 32] {
    bytes(hex_text).try_into().unwrap()
}

/// The registries every case assumes (see the file's comment).
struct Assumed;

impl OperatorRegistry for Assumed {
    fn operator_status(&self, _: &OperatorId, role: Role, _: WindowId) -> OperatorStatus {
        if role == Role::EdgeIngress {
            OperatorStatus::Active
        } else {
            OperatorStatus::Unregistered
        }
    }

    fn backend_registered(&self, _: &OperatorId, backend: &BackendId) -> bool {
        backend.as_str() == receipts_v2_gen::BACKEND_ID
    }
}

impl PolicyRegistry for Assumed {
    fn is_valid_policy(&self, version: u32, _: WindowId, _: WindowLen) -> bool {
        version == receipts_v2_gen::POLICY_VERSION
    }
}

impl ReceiptLedger for Assumed {
    fn contains(&self, _: &OperatorId, _: &BackendId, _: WindowId) -> bool {
        false
    }

    fn overlaps(&self, _: &OperatorId, _: u64, _: u64) -> bool {
        false
    }
}

impl TicketCheck for Assumed {
    fn ticket_status(&self, _: &[u8; 16]) -> TicketStatus {
        TicketStatus::Valid
    }
}

fn leaf_proof(b: &Batch, i: u64) -> LeafProof {
    LeafProof {
        leaf: Leaf::from_bytes(&bytes(&b.leaves_hex[i as usize])).unwrap(),
        proof: MerkleProof::from_bytes(&bytes(&b.proofs_hex[i as usize])).unwrap(),
    }
}

/// The answers an operator gives for the batch's sample.
pub(crate) fn answers(b: &Batch) -> Vec<AuditAnswer> {
    let n = b.leaves_hex.len() as u64;
    b.sample
        .iter()
        .map(|&i| AuditAnswer {
            leaf: leaf_proof(b, i),
            next: (i + 1 < n).then(|| leaf_proof(b, i + 1)),
        })
        .collect()
}

#[test]
fn file_matches_the_generator() {
    check_committed(
        std::path::Path::new(receipts_v2_gen::VECTORS_PATH),
        &receipts_v2_gen::render(),
        receipts_v2_gen::REGENERATE,
    );
}

#[test]
fn every_case_checks_out_with_the_receipts_crate() {
    let v = file();
    assert_eq!(
        array32(&v.deployment_id),
        DeploymentId::derive(&array32(&v.program_id), &array32(&v.genesis_hash)).0
    );
    let window_len = WindowLen::new(v.window_len_s).unwrap();
    let seed = AuditSeed {
        slot: v.audit.seed_slot,
        hash: array32(&v.audit.seed_hash),
    };
    let mut seen = std::collections::BTreeSet::new();
    for case in &v.cases {
        let b = v.batches.iter().find(|b| b.name == case.batch).unwrap();
        let receipt = Receipt::from_bytes(&bytes(&b.receipt_hex)).unwrap();
        assert_eq!(receipt.body.version(), 2, "{}", case.comment);
        let id = match case.deployment.as_str() {
            "main" => &v.deployment_id,
            "other" => &v.other_deployment_id,
            other => panic!("unknown deployment {other}"),
        };
        let deployment = Deployment::new(DeploymentId(array32(id)), window_len)
            .with_max_delay_ms(v.max_delay_ms)
            .with_max_repeat_permille(v.max_repeat_permille);
        let verifier = Verifier::new(deployment, &Assumed, &Assumed, &Assumed)
            .with_skew_ms(v.skew_ms)
            .with_tickets(&Assumed);
        let got = match case.check.as_str() {
            "verify" => verifier.verify(&receipt, case.received_ms),
            "audit" => {
                let i = &receipt.body.integrity;
                let sample = AuditSample::at_fixed_slot(
                    &seed,
                    v.audit.receipt_slot,
                    v.audit.delay_slots,
                    &i.merkle_root,
                    i.leaf_count,
                    b.k,
                )
                .unwrap();
                assert_eq!(sample.indices(), &b.sample[..], "{}", case.comment);
                // The audited receipt itself passes the rules without leaves.
                verifier.verify(&receipt, case.received_ms).unwrap();
                verifier
                    .check_audit(&receipt, &sample, &answers(b))
                    .map(|_| ())
            }
            other => panic!("unknown check {other}"),
        };
        match got {
            Ok(()) => assert_eq!(case.expected, "ok", "{}", case.comment),
            Err(e) => {
                assert_eq!(e.name(), case.expected, "{}", case.comment);
                assert_eq!(e.code(), case.code, "{}", case.comment);
            }
        }
        seen.insert(case.expected.clone());
    }
    let expected = [
        "ok",
        "arrived_too_late",
        "wrong_deployment",
        "bytes_exceed_maximum",
        "too_many_repeats",
        "leaves_out_of_order",
        "repeat_mismatch",
    ];
    assert_eq!(seen, expected.iter().map(|s| s.to_string()).collect());
}

#[test]
fn the_honest_batch_is_what_the_builder_writes() {
    let v = file();
    let honest = v.batches.iter().find(|b| b.name == "honest").unwrap();
    let sealed = receipts_v2_gen::honest();
    assert_eq!(hex::encode(sealed.receipt().to_bytes()), honest.receipt_hex);
    // Any arrival order gives the same batch.
    let mut leaves = receipts_v2_gen::input_leaves();
    leaves.reverse();
    let mut config = tolldns_receipts::BuilderConfig::new(
        receipts_v2_gen::deployment_id(),
        BackendId::new(receipts_v2_gen::BACKEND_ID).unwrap(),
        WindowLen::new(v.window_len_s).unwrap(),
    );
    config.shards = 1;
    let builder = tolldns_receipts::BatchBuilder::new(config);
    for l in leaves {
        builder.add(l).unwrap();
    }
    let batch = builder
        .close(
            WindowId(v.window_id),
            array32(&v.name_key_commitment),
            v.receipt_timestamp_ms,
            &receipts_v2_gen::signing_key(),
        )
        .unwrap();
    assert_eq!(hex::encode(batch.receipt().to_bytes()), honest.receipt_hex);
}
