//! Every verification rule, each failing on its own.

use tolldns_core::{NameKey, NormalizedName, WindowLen};
use tolldns_receipts::*;

use crate::common::*;
use crate::vectors_gen::{self, NAMES, batch, signing_key};

fn verify(r: &Receipt) -> Result<(), VerifyError> {
    Verifier::new(&active(), &policy7(), &Ledger::default()).verify(r)
}

fn resign(f: impl FnOnce(&mut ReceiptBody)) -> Receipt {
    let mut body = batch().receipt().body.clone();
    f(&mut body);
    body.sign(&signing_key()).unwrap()
}

#[test]
fn genuine_receipt_passes_every_rule() {
    let b = batch();
    assert_eq!(verify(b.receipt()), Ok(()));
    let k = sample_size(0.99, 0.10, b.receipt().body.integrity.leaf_count).unwrap();
    assert_eq!(k, 7);
    let root = b.receipt().body.integrity.merkle_root;
    let sample = AuditSample::new(&[1; 32], &root, 7, k);
    let proofs = b.answer(&sample).unwrap();
    let (registry, policies) = (active(), policy7());
    let ledger_ = Ledger::default();
    let v = Verifier::new(&registry, &policies, &ledger_);
    assert_eq!(v.verify_with_audit(b.receipt(), &sample, &proofs), Ok(()));
}

#[test]
fn registry_rules() {
    let r = batch().receipt().clone();
    let ledger = Ledger::default();
    let unreg = Registry {
        status: OperatorStatus::Unregistered,
    };
    let unstaked = Registry {
        status: OperatorStatus::NotStaked,
    };
    assert_eq!(
        Verifier::new(&unreg, &policy7(), &ledger).verify(&r),
        Err(VerifyError::UnregisteredOperator)
    );
    assert_eq!(
        Verifier::new(&unstaked, &policy7(), &ledger).verify(&r),
        Err(VerifyError::OperatorNotStaked)
    );
    assert_eq!(
        Verifier::new(&active(), &Policies { valid: vec![6, 8] }, &ledger).verify(&r),
        Err(VerifyError::InvalidPolicyVersion { policy_version: 7 })
    );
    let (registry, policies) = (active(), policy7());
    let v = Verifier::new(&registry, &policies, &ledger);
    assert_eq!(v.verify(&r), Ok(()));
    ledger.record(&r.body.operator_id, &r.body.backend_id, r.body.window_id);
    assert_eq!(v.verify(&r), Err(VerifyError::DuplicateReceipt));
}

#[test]
fn signature_rules() {
    let r = batch().receipt().clone();
    // Any changed body byte.
    let mut changed = r.clone();
    changed.body.policy_version = 8;
    assert_eq!(
        Verifier::new(&active(), &Policies { valid: vec![8] }, &Ledger::default()).verify(&changed),
        Err(VerifyError::Signature(SignatureError::Invalid))
    );
    // S + L: same equation, non-canonical S.
    let mut m = r.clone();
    m.signature = vectors_gen::malleate(&r.signature);
    assert_ne!(m.signature, r.signature);
    assert_eq!(
        verify(&m),
        Err(VerifyError::Signature(SignatureError::Invalid))
    );
    // A small-order public key (the identity point, y = 1) with a signature made of the
    // identity R and S = 0: valid under the cofactored equation, refused strictly.
    let mut weak = r.clone();
    let mut identity = [0u8; 32];
    identity[0] = 1;
    weak.body.operator_id = tolldns_core::OperatorId(identity);
    let mut sig = [0u8; 64];
    sig[0] = 1;
    weak.signature = sig;
    assert_eq!(
        verify(&weak),
        Err(VerifyError::Signature(SignatureError::InvalidKey))
    );
    // A non-canonical key encoding (y + p for a small y that is on the curve): refused.
    let mut non_canonical = 0;
    for y in 2u8..=18 {
        let mut bytes = [0xffu8; 32];
        bytes[0] = 0xed + y;
        bytes[31] = 0x7f;
        let Ok(k) = ed25519_dalek::VerifyingKey::from_bytes(&bytes) else {
            continue;
        };
        if k.is_weak() {
            continue;
        }
        non_canonical += 1;
        let mut nc = r.clone();
        nc.body.operator_id = tolldns_core::OperatorId(bytes);
        assert_eq!(
            verify(&nc),
            Err(VerifyError::Signature(SignatureError::InvalidKey))
        );
    }
    assert!(non_canonical > 0);
    // Signing with another key than operator_id.
    assert_eq!(
        r.body
            .sign(&ed25519_dalek::SigningKey::from_bytes(&[9; 32])),
        Err(SignatureError::KeyMismatch)
    );
}

#[test]
fn count_rules() {
    let cases: Vec<(Receipt, VerifyError)> = vec![
        (
            resign(|b| b.service_summary.success_count += 1),
            VerifyError::SuccessPlusErrorExceedsRequests,
        ),
        (
            resign(|b| b.service_summary.error_count = u64::MAX),
            VerifyError::SuccessPlusErrorExceedsRequests,
        ),
        (
            resign(|b| b.service_summary.served_from_cache_count = 8),
            VerifyError::CacheExceedsRequests,
        ),
        (
            resign(|b| {
                b.service_summary.work_class_counts =
                    ClassCounts::from_pairs([(WorkClass::Other, 6)]).unwrap()
            }),
            VerifyError::WorkClassSumMismatch,
        ),
        (
            resign(|b| {
                b.service_summary.error_class_counts =
                    ClassCounts::from_pairs([(ErrorClass::Other, 4)]).unwrap()
            }),
            VerifyError::ErrorClassSumExceedsErrors,
        ),
        (
            resign(|b| b.integrity.leaf_count = 6),
            VerifyError::LeafCountMismatch,
        ),
        (
            resign(|b| b.receipt_type = ReceiptType::PerRequest),
            VerifyError::PerRequestNotSingle,
        ),
        (
            resign(|b| b.timestamp_ms = b.window_id.end_ms(b.window_len).unwrap() + 30_000),
            VerifyError::TimestampOutsideWindow {
                timestamp_ms: 1_760_000_190_000,
            },
        ),
        (
            resign(|b| b.timestamp_ms = b.window_id.start_ms(b.window_len).unwrap() - 30_001),
            VerifyError::TimestampOutsideWindow {
                timestamp_ms: 1_760_000_069_999,
            },
        ),
        (
            resign(|b| b.window_len = WindowLen::new(u32::MAX).unwrap()),
            VerifyError::WindowOutOfRange,
        ),
    ];
    for (i, (r, e)) in cases.iter().enumerate() {
        assert_eq!(verify(r), Err(*e), "case {i}");
    }
    // Absent work classes are not checked; skew edges are inclusive at the start.
    assert_eq!(
        verify(&resign(
            |b| b.service_summary.work_class_counts = ClassCounts::new()
        )),
        Ok(())
    );
    assert_eq!(
        verify(&resign(
            |b| b.timestamp_ms = b.window_id.start_ms(b.window_len).unwrap() - 30_000
        )),
        Ok(())
    );
}

#[test]
fn audit_rules() {
    let b = batch();
    let r = b.receipt();
    let root = r.body.integrity.merkle_root;
    let (registry, policies) = (active(), policy7());
    let ledger_ = Ledger::default();
    let v = Verifier::new(&registry, &policies, &ledger_);
    let sample = AuditSample::new(&[3; 32], &root, 7, 3);
    let good = b.answer(&sample).unwrap();
    assert_eq!(v.verify_with_audit(r, &sample, &good), Ok(()));

    let other = AuditSample::new(&[3; 32], &[0; 32], 7, 3);
    assert_eq!(
        v.verify_with_audit(r, &other, &good),
        Err(VerifyError::SampleNotForReceipt)
    );
    assert_eq!(
        v.verify_with_audit(r, &sample, &good[..2]),
        Err(VerifyError::ProofCountMismatch {
            expected: 3,
            actual: 2
        })
    );
    let first = sample.indices()[0];
    let mut swapped = good.clone();
    swapped.swap(0, 1);
    assert_eq!(
        v.verify_with_audit(r, &sample, &swapped),
        Err(VerifyError::ProofForWrongLeaf { index: first })
    );
    let mut tampered = good;
    tampered[0].leaf.qtype ^= 1;
    assert_eq!(
        v.verify_with_audit(r, &sample, &tampered),
        Err(VerifyError::InvalidProof {
            index: first,
            error: ProofError::RootMismatch
        })
    );

    // A batch whose leaf lies outside the window: `seal` refuses to make one, so build the
    // receipt by hand from a tree that contains such a leaf.
    let key = signing_key();
    let mut leaves = vectors_gen::leaves();
    leaves[2].timestamp_ms = vectors_gen::WINDOW_START_MS - 1;
    assert_eq!(
        ClosedBatch::seal(
            &vectors_gen::header(),
            leaves.clone(),
            [0; 32],
            vectors_gen::RECEIPT_TIMESTAMP_MS,
            &key
        )
        .err(),
        Some(SealError::LeafOutsideWindow { index: 2 })
    );
    let tree = MerkleTree::from_leaf_hashes(leaves.iter().map(Leaf::hash).collect());
    let mut body = r.body.clone();
    body.integrity.merkle_root = tree.root();
    let forged = body.sign(&key).unwrap();
    let sample = AuditSample::new(&[3; 32], &tree.root(), 7, 7);
    let proofs: Vec<LeafProof> = sample
        .indices()
        .iter()
        .map(|&i| LeafProof {
            leaf: leaves[i as usize],
            proof: tree.proof(i).unwrap(),
        })
        .collect();
    assert_eq!(
        v.verify_with_audit(&forged, &sample, &proofs),
        Err(VerifyError::LeafOutsideWindow { index: 2 })
    );
}

#[test]
fn name_privacy() {
    let b = batch();
    let r = b.receipt();
    let commitment = r.body.integrity.name_key_commitment;
    let key = vectors_gen::name_key();
    assert_eq!(commitment, key.commitment());
    for (leaf, name) in b.leaves().iter().zip(NAMES) {
        let name = NormalizedName::new(name).unwrap();
        assert_eq!(leaf.audit_name(&name, &key, &commitment), Ok(()));
        // The key is right, the name is not.
        let wrong = NormalizedName::new("other.example").unwrap();
        assert_eq!(
            leaf.audit_name(&wrong, &key, &commitment),
            Err(NameAuditError::NameMismatch)
        );
        // A wrong key is caught by the commitment, whatever the name.
        assert_eq!(
            leaf.audit_name(&name, &NameKey([0x5b; 32]), &commitment),
            Err(NameAuditError::WrongKey)
        );
    }
    // Without the key, the leaf bytes do not contain the name.
    let bytes = b.leaves()[0].to_bytes();
    assert!(!bytes.windows(7).any(|w| w == b"example"));
}

#[test]
fn per_request_receipt() {
    let mut header = vectors_gen::header();
    header.receipt_type = ReceiptType::PerRequest;
    let key = signing_key();
    let leaves = vectors_gen::leaves();
    assert_eq!(
        ClosedBatch::seal(
            &header,
            leaves.clone(),
            [0; 32],
            vectors_gen::RECEIPT_TIMESTAMP_MS,
            &key
        )
        .err(),
        Some(SealError::PerRequestNeedsOneLeaf)
    );
    let one = ClosedBatch::seal(
        &header,
        leaves[..1].to_vec(),
        [0; 32],
        vectors_gen::RECEIPT_TIMESTAMP_MS,
        &key,
    )
    .unwrap();
    let r = one.receipt();
    assert_eq!(r.body.integrity.merkle_root, leaves[0].hash());
    let sample = AuditSample::new(&[0; 32], &r.body.integrity.merkle_root, 1, 44);
    assert_eq!(sample.indices(), &[0]);
    let (registry, policies) = (active(), policy7());
    let ledger_ = Ledger::default();
    let v = Verifier::new(&registry, &policies, &ledger_);
    assert_eq!(
        v.verify_with_audit(r, &sample, &one.answer(&sample).unwrap()),
        Ok(())
    );
}
