//! Every verification rule, each failing on its own: v2 receipts (what the crate writes) under
//! the v2 rules, v1 receipts under the v1 rules.

use tolldns_core::{NameKey, NormalizedName, WindowId, WindowLen};
use tolldns_receipts::*;

use crate::common::*;
use crate::vectors_gen;
use crate::vectors_v2_gen::{
    self, Forged, NAMES, RECEIVED_MS, WINDOW_END_MS, WINDOW_START_MS, batch, tickets,
};

fn verify(r: &Receipt) -> Result<(), VerifyError> {
    verify_under(deployment(), r)
}

fn verify_under(d: Deployment, r: &Receipt) -> Result<(), VerifyError> {
    Verifier::new(d, &active(), &policy7(), &Ledger::default()).verify(r, RECEIVED_MS)
}

fn resign(f: impl FnOnce(&mut ReceiptBody)) -> Receipt {
    let mut body = batch().receipt().body.clone();
    f(&mut body);
    body.sign(&vectors_gen::signing_key()).unwrap()
}

fn v2_of(b: &mut ReceiptBody) -> &mut V2Commitments {
    b.v2.as_mut().unwrap()
}

#[test]
fn genuine_receipt_passes_every_rule() {
    let b = batch();
    let r = b.receipt();
    assert_eq!(r.body.version(), RECEIPT_VERSION);
    assert_eq!(verify(r), Ok(()));
    let k = sample_size(0.99, 0.10, r.body.integrity.leaf_count).unwrap();
    assert_eq!(k, 10);
    let root = r.body.integrity.merkle_root;
    let sample = AuditSample::new(&[1; 32], &root, 10, k);
    let answers = b.answer(&sample).unwrap();
    let (registry, policies) = (active(), policy7());
    let ledger = Ledger::default();
    let lookup = TicketCheckDouble::valid(tickets());
    let v = Verifier::new(deployment(), &registry, &policies, &ledger).with_tickets(&lookup);
    let report = v
        .verify_with_audit(r, RECEIVED_MS, &sample, &answers)
        .unwrap();
    assert_eq!(report.sampled, 10);
    assert_eq!(report.neighbours, 9);
    assert_eq!(report.ticketed, 9);
    // Recorded, the same receipt (or any overlapping one) is refused.
    ledger.accept(r);
    assert_eq!(
        v.verify(r, RECEIVED_MS),
        Err(VerifyError::OverlappingReceipt)
    );
}

#[test]
fn registry_and_deployment_rules() {
    let r = batch().receipt().clone();
    let ledger = Ledger::default();
    let unreg = Registry {
        status: OperatorStatus::Unregistered,
        backends: None,
    };
    let unstaked = Registry {
        status: OperatorStatus::NotStaked,
        backends: None,
    };
    let d = deployment();
    assert_eq!(
        Verifier::new(d, &unreg, &policy7(), &ledger).verify(&r, RECEIVED_MS),
        Err(VerifyError::UnregisteredOperator)
    );
    assert_eq!(
        Verifier::new(d, &unstaked, &policy7(), &ledger).verify(&r, RECEIVED_MS),
        Err(VerifyError::OperatorNotStaked)
    );
    assert_eq!(
        Verifier::new(d, &active(), &Policies { valid: vec![6, 8] }, &ledger)
            .verify(&r, RECEIVED_MS),
        Err(VerifyError::InvalidPolicyVersion { policy_version: 7 })
    );
    let other = Deployment::new(other_deployment_id(), WindowLen::new(60).unwrap());
    assert_eq!(
        Verifier::new(other, &active(), &policy7(), &ledger).verify(&r, RECEIVED_MS),
        Err(VerifyError::WrongDeployment)
    );
    let longer = Deployment::new(deployment_id(), WindowLen::new(120).unwrap());
    assert_eq!(
        Verifier::new(longer, &active(), &policy7(), &ledger).verify(&r, RECEIVED_MS),
        Err(VerifyError::WindowLenNotDeployment { window_len_s: 60 })
    );
    let no_backend = Registry {
        status: OperatorStatus::Active,
        backends: Some(vec!["edge-ingress-2".into()]),
    };
    assert_eq!(
        Verifier::new(d, &no_backend, &policy7(), &ledger).verify(&r, RECEIVED_MS),
        Err(VerifyError::UnregisteredBackend)
    );
    // Arrival: up to max_delay_ms after the window's end inclusive.
    let (registry, policies) = (active(), policy7());
    let v = Verifier::new(d, &registry, &policies, &ledger);
    let last = WINDOW_END_MS + Deployment::DEFAULT_MAX_DELAY_MS;
    assert_eq!(v.verify(&r, last), Ok(()));
    assert_eq!(
        v.verify(&r, last + 1),
        Err(VerifyError::ArrivedTooLate {
            received_ms: last + 1
        })
    );
    let strict = Verifier::new(d.with_max_delay_ms(0), &registry, &policies, &ledger);
    assert_eq!(strict.verify(&r, WINDOW_END_MS), Ok(()));
    assert_eq!(
        strict.verify(&r, WINDOW_END_MS + 1),
        Err(VerifyError::ArrivedTooLate {
            received_ms: WINDOW_END_MS + 1
        })
    );
    // The v2 ledger rule: any overlap, on any backend; adjacent windows do not overlap.
    ledger.record_range(&r.body.operator_id, WINDOW_END_MS, WINDOW_END_MS + 60_000);
    ledger.record_range(&r.body.operator_id, 0, WINDOW_START_MS);
    ledger.record_range(&tolldns_core::OperatorId([9; 32]), 0, u64::MAX);
    assert_eq!(v.verify(&r, RECEIVED_MS), Ok(()));
    ledger.record_range(&r.body.operator_id, WINDOW_END_MS - 1, WINDOW_END_MS);
    assert_eq!(
        v.verify(&r, RECEIVED_MS),
        Err(VerifyError::OverlappingReceipt)
    );
}

#[test]
fn v1_rules_still_apply_to_v1_receipts() {
    let r = vectors_gen::batch().receipt().clone();
    let ledger = Ledger::default();
    let (registry, policies) = (active(), policy7());
    // Refused unless the deployment still accepts v1, before any other rule.
    let unreg = Registry {
        status: OperatorStatus::Unregistered,
        backends: None,
    };
    assert_eq!(
        Verifier::new(deployment(), &unreg, &policies, &ledger).verify(&r, 0),
        Err(VerifyError::V1NotAccepted)
    );
    // No deployment, no arrival bound, no backend registration in v1.
    let other = Deployment::new(other_deployment_id(), WindowLen::new(120).unwrap()).with_v1(true);
    let no_backend = Registry {
        status: OperatorStatus::Active,
        backends: Some(vec![]),
    };
    let v = Verifier::new(other, &no_backend, &policies, &ledger);
    assert_eq!(v.verify(&r, u64::MAX), Ok(()));
    // The v1 ledger key, not time ranges.
    ledger.record_range(&r.body.operator_id, 0, u64::MAX);
    assert_eq!(v.verify(&r, 0), Ok(()));
    ledger.record(&r.body.operator_id, &r.body.backend_id, r.body.window_id);
    assert_eq!(v.verify(&r, 0), Err(VerifyError::DuplicateReceipt));
    // A v1 body does not get the v2 byte bound.
    let mut body = r.body.clone();
    body.service_summary.bytes_served_total = u64::MAX;
    let big = body.sign(&vectors_gen::signing_key()).unwrap();
    let fresh = Ledger::default();
    assert_eq!(
        Verifier::new(deployment().with_v1(true), &registry, &policies, &fresh).verify(&big, 0),
        Ok(())
    );
    // v1 leaves under a v1 root; a v1 answer with a non-zero repeat is refused.
    let b = vectors_gen::batch();
    let sample = AuditSample::new(&[3; 32], &r.body.integrity.merkle_root, 7, 7);
    let mut answers = b.answer(&sample).unwrap();
    let v = Verifier::new(deployment().with_v1(true), &registry, &policies, &fresh);
    assert!(v.verify_with_audit(&r, 0, &sample, &answers).is_ok());
    answers[0].leaf.leaf.repeat = 1;
    assert_eq!(
        v.verify_with_audit(&r, 0, &sample, &answers),
        Err(VerifyError::InvalidProof {
            index: sample.indices()[0],
            error: ProofError::RootMismatch
        })
    );
}

#[test]
fn signature_rules() {
    let r = batch().receipt().clone();
    // Any changed body byte.
    let mut changed = r.clone();
    changed.body.policy_version = 8;
    assert_eq!(
        Verifier::new(
            deployment(),
            &active(),
            &Policies { valid: vec![8] },
            &Ledger::default()
        )
        .verify(&changed, RECEIVED_MS),
        Err(VerifyError::Signature(SignatureError::Invalid))
    );
    // The deployment id is signed.
    let mut moved = r.clone();
    moved.body.v2.as_mut().unwrap().deployment_id = other_deployment_id();
    let other = Deployment::new(other_deployment_id(), WindowLen::new(60).unwrap());
    assert_eq!(
        Verifier::new(other, &active(), &policy7(), &Ledger::default()).verify(&moved, RECEIVED_MS),
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
            resign(|b| b.service_summary.served_from_cache_count = 11),
            VerifyError::CacheExceedsRequests,
        ),
        (
            resign(|b| {
                b.service_summary.work_class_counts =
                    ClassCounts::from_pairs([(WorkClass::Other, 9)]).unwrap()
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
            resign(|b| b.integrity.leaf_count = 9),
            VerifyError::LeafCountMismatch,
        ),
        (
            resign(|b| b.receipt_type = ReceiptType::PerRequest),
            VerifyError::PerRequestNotSingle,
        ),
        (
            resign(|b| b.service_summary.bytes_served_total = 10 * 65_535 + 1),
            VerifyError::BytesExceedMaximum,
        ),
        (
            resign(|b| v2_of(b).ticketed_leaf_count = 11),
            VerifyError::TicketedExceedsLeaves,
        ),
        (
            resign(|b| v2_of(b).name_sketch = NameSketch::new()),
            VerifyError::SketchInconsistent,
        ),
        (
            resign(|b| v2_of(b).ticketed_leaf_count = 0),
            VerifyError::SketchInconsistent,
        ),
        (
            resign(|b| v2_of(b).ticketed_repeat_count = 10),
            VerifyError::RepeatsExceedTicketed,
        ),
        (
            resign(|b| b.timestamp_ms = WINDOW_END_MS + 30_000),
            VerifyError::TimestampOutsideWindow {
                timestamp_ms: 1_760_000_190_000,
            },
        ),
        (
            resign(|b| b.timestamp_ms = WINDOW_START_MS - 30_001),
            VerifyError::TimestampOutsideWindow {
                timestamp_ms: 1_760_000_069_999,
            },
        ),
        (
            resign(|b| b.window_id = WindowId(u64::MAX)),
            VerifyError::WindowOutOfRange,
        ),
    ];
    for (i, (r, e)) in cases.iter().enumerate() {
        assert_eq!(verify(r), Err(*e), "case {i}");
        // Every error has its stable name and code.
        assert!(!e.name().is_empty() && (1..=44).contains(&e.code()));
    }
    // The repeat bounds are set by the deployment, both inclusive, and a receipt is refused
    // only above both: 2 ticketed repeats of 9 ticketed leaves = 222.2 permille.
    let r = batch().receipt().clone();
    assert_eq!(r.body.v2.as_ref().unwrap().ticketed_repeat_count, 2);
    assert_eq!(r.body.v2.as_ref().unwrap().ticketed_leaf_count, 9);
    let strict = deployment().with_repeat_allowance(0);
    assert_eq!(
        verify_under(strict.with_max_repeat_permille(223), &r),
        Ok(())
    );
    assert_eq!(
        verify_under(strict.with_max_repeat_permille(222), &r),
        Err(VerifyError::TooManyRepeats)
    );
    assert_eq!(
        verify_under(
            strict.with_max_repeat_permille(0).with_repeat_allowance(2),
            &r
        ),
        Ok(())
    );
    assert_eq!(
        verify_under(
            strict.with_max_repeat_permille(0).with_repeat_allowance(1),
            &r
        ),
        Err(VerifyError::TooManyRepeats)
    );
    // Under the defaults (100 permille, 16 per receipt) a small window's count is covered by
    // the allowance.
    let six = resign(|b| v2_of(b).ticketed_repeat_count = 6);
    assert_eq!(verify(&six), Ok(()));
    assert_eq!(verify_under(strict, &six), Err(VerifyError::TooManyRepeats));
    // Absent work classes are not checked; the byte bound is inclusive; skew edges are
    // inclusive at the start.
    assert_eq!(
        verify(&resign(
            |b| b.service_summary.work_class_counts = ClassCounts::new()
        )),
        Ok(())
    );
    assert_eq!(
        verify(&resign(
            |b| b.service_summary.bytes_served_total = 10 * 65_535
        )),
        Ok(())
    );
    assert_eq!(
        verify(&resign(|b| b.timestamp_ms = WINDOW_START_MS - 30_000)),
        Ok(())
    );
}

#[test]
fn error_names_and_codes_are_distinct() {
    use std::collections::BTreeSet;
    let all = [
        VerifyError::V1NotAccepted,
        VerifyError::UnregisteredOperator,
        VerifyError::OperatorNotStaked,
        VerifyError::Signature(SignatureError::Invalid),
        VerifyError::WrongDeployment,
        VerifyError::WindowLenNotDeployment { window_len_s: 1 },
        VerifyError::UnregisteredBackend,
        VerifyError::InvalidPolicyVersion { policy_version: 1 },
        VerifyError::SuccessPlusErrorExceedsRequests,
        VerifyError::CacheExceedsRequests,
        VerifyError::WorkClassSumMismatch,
        VerifyError::ErrorClassSumExceedsErrors,
        VerifyError::LeafCountMismatch,
        VerifyError::PerRequestNotSingle,
        VerifyError::BytesExceedMaximum,
        VerifyError::TicketedExceedsLeaves,
        VerifyError::SketchInconsistent,
        VerifyError::RepeatsExceedTicketed,
        VerifyError::TooManyRepeats,
        VerifyError::WindowOutOfRange,
        VerifyError::TimestampOutsideWindow { timestamp_ms: 0 },
        VerifyError::ArrivedTooLate { received_ms: 0 },
        VerifyError::DuplicateReceipt,
        VerifyError::OverlappingReceipt,
        VerifyError::SampleNotForReceipt,
        VerifyError::ProofCountMismatch {
            expected: 1,
            actual: 0,
        },
        VerifyError::ProofForWrongLeaf { index: 0 },
        VerifyError::InvalidProof {
            index: 0,
            error: ProofError::RootMismatch,
        },
        VerifyError::LeafOutsideWindow { index: 0 },
        VerifyError::MissingNeighbour { index: 0 },
        VerifyError::NeighbourForWrongLeaf { index: 0 },
        VerifyError::InvalidNeighbourProof {
            index: 0,
            error: ProofError::RootMismatch,
        },
        VerifyError::LeavesOutOfOrder { index: 0 },
        VerifyError::RepeatMismatch { index: 0 },
        VerifyError::SketchUnderstates { index: 0 },
        VerifyError::TicketNotChecked { index: 0 },
        VerifyError::TicketNotRedeemed { index: 0 },
        VerifyError::TokenInvalid { index: 0 },
        VerifyError::UnticketedLeaf { index: 0 },
        VerifyError::SummaryDisagrees {
            stat: SummaryStat::Success,
        },
        VerifyError::NotV2,
        VerifyError::WitnessMismatch { register: 0 },
        VerifyError::TicketLeafMismatch { index: 0 },
        VerifyError::TicketOverQuota { leaves: 2 },
    ];
    let names: BTreeSet<&str> = all.iter().map(VerifyError::name).collect();
    let mut codes: Vec<u16> = all.iter().map(VerifyError::code).collect();
    assert_eq!(names.len(), all.len());
    // Codes 1..=41 follow the check order of the first release; later rules get new codes
    // (a code is never reused).
    assert_eq!(codes[1..17], (1..=16).collect::<Vec<u16>>());
    assert_eq!(
        [codes[0], codes[17], codes[18]],
        [42, 43, 44],
        "V1NotAccepted, RepeatsExceedTicketed, TooManyRepeats"
    );
    codes.sort_unstable();
    assert_eq!(codes, (1..=44).collect::<Vec<u16>>());
    for e in &all {
        assert!(
            e.name()
                .bytes()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'_')
        );
        assert!(!e.to_string().is_empty());
    }
}

#[test]
fn audit_rules() {
    let b = batch();
    let r = b.receipt();
    let root = r.body.integrity.merkle_root;
    let (registry, policies) = (active(), policy7());
    let ledger = Ledger::default();
    let lookup = TicketCheckDouble::valid(tickets());
    let v = Verifier::new(deployment(), &registry, &policies, &ledger).with_tickets(&lookup);
    let sample = AuditSample::new(&[3; 32], &root, 10, 3);
    let good = b.answer(&sample).unwrap();
    assert!(v.verify_with_audit(r, RECEIVED_MS, &sample, &good).is_ok());
    // check_audit alone gives the same report.
    assert_eq!(
        v.check_audit(r, &sample, &good),
        v.verify_with_audit(r, RECEIVED_MS, &sample, &good)
    );

    let other = AuditSample::new(&[3; 32], &[0; 32], 10, 3);
    assert_eq!(
        v.verify_with_audit(r, RECEIVED_MS, &other, &good),
        Err(VerifyError::SampleNotForReceipt)
    );
    let fewer = AuditSample::new(&[3; 32], &root, 9, 3);
    assert_eq!(
        v.check_audit(r, &fewer, &good),
        Err(VerifyError::SampleNotForReceipt)
    );
    assert_eq!(
        v.verify_with_audit(r, RECEIVED_MS, &sample, &good[..2]),
        Err(VerifyError::ProofCountMismatch {
            expected: 3,
            actual: 2
        })
    );
    let first = sample.indices()[0];
    let mut swapped = good.clone();
    swapped.swap(0, 1);
    assert_eq!(
        v.verify_with_audit(r, RECEIVED_MS, &sample, &swapped),
        Err(VerifyError::ProofForWrongLeaf { index: first })
    );
    let mut tampered = good.clone();
    tampered[0].leaf.leaf.qtype ^= 1;
    assert_eq!(
        v.verify_with_audit(r, RECEIVED_MS, &sample, &tampered),
        Err(VerifyError::InvalidProof {
            index: first,
            error: ProofError::RootMismatch
        })
    );
    // A proof for the right index of a tree of another size.
    let mut resized = good.clone();
    resized[0].leaf.proof.tree_size += 1;
    assert_eq!(
        v.verify_with_audit(r, RECEIVED_MS, &sample, &resized),
        Err(VerifyError::ProofForWrongLeaf { index: first })
    );

    // Neighbours.
    let not_last = sample.indices().iter().position(|&i| i + 1 < 10).unwrap();
    let idx = sample.indices()[not_last];
    let mut missing = good.clone();
    missing[not_last].next = None;
    assert_eq!(
        v.verify_with_audit(r, RECEIVED_MS, &sample, &missing),
        Err(VerifyError::MissingNeighbour { index: idx })
    );
    let mut wrong = good.clone();
    wrong[not_last].next = Some(b.leaf_proof((idx + 2) % 10).unwrap());
    assert_eq!(
        v.verify_with_audit(r, RECEIVED_MS, &sample, &wrong),
        Err(VerifyError::NeighbourForWrongLeaf { index: idx })
    );
    let mut bad = good;
    bad[not_last].next.as_mut().unwrap().leaf.qtype ^= 1;
    assert_eq!(
        v.verify_with_audit(r, RECEIVED_MS, &sample, &bad),
        Err(VerifyError::InvalidNeighbourProof {
            index: idx,
            error: ProofError::RootMismatch
        })
    );
    // The last leaf has no neighbour; giving one is refused.
    let last = AuditSample::new(&[0; 32], &root, 10, 10);
    let mut all = b.answer(&last).unwrap();
    let at = last.indices().iter().position(|&i| i == 9).unwrap();
    assert!(all[at].next.is_none());
    all[at].next = Some(b.leaf_proof(8).unwrap());
    assert_eq!(
        v.verify_with_audit(r, RECEIVED_MS, &last, &all),
        Err(VerifyError::NeighbourForWrongLeaf { index: 9 })
    );

    // A batch whose leaf lies outside the window: `seal` refuses to make one, so build the
    // receipt by hand from a tree that contains such a leaf.
    let key = vectors_gen::signing_key();
    let mut leaves = b.leaves().to_vec();
    leaves[0].timestamp_ms = WINDOW_START_MS - 1;
    assert_eq!(
        ClosedBatch::seal(
            &vectors_v2_gen::header(),
            leaves.clone(),
            [0; 32],
            vectors_gen::RECEIPT_TIMESTAMP_MS,
            &key
        )
        .err(),
        Some(SealError::LeafOutsideWindow { index: 0 })
    );
    let forged = Forged::new(&vectors_v2_gen::header(), leaves, &key, |_| {});
    let sample = forged.sample(&[3; 32], 10);
    assert_eq!(
        v.verify_with_audit(
            &forged.receipt,
            RECEIVED_MS,
            &sample,
            &forged.answer(&sample)
        ),
        Err(VerifyError::LeafOutsideWindow { index: 0 })
    );
}

#[test]
fn name_privacy() {
    let b = batch();
    let r = b.receipt();
    let commitment = r.body.integrity.name_key_commitment;
    let key = vectors_gen::name_key();
    assert_eq!(commitment, key.commitment());
    let names: Vec<NormalizedName> = NAMES
        .iter()
        .map(|n| NormalizedName::new(n).unwrap())
        .collect();
    for leaf in b.leaves() {
        let name = names
            .iter()
            .find(|n| key.name_hash(n) == leaf.name_hash)
            .unwrap();
        assert_eq!(leaf.audit_name(name, &key, &commitment), Ok(()));
        // The key is right, the name is not.
        let wrong = NormalizedName::new("other.example").unwrap();
        assert_eq!(
            leaf.audit_name(&wrong, &key, &commitment),
            Err(NameAuditError::NameMismatch)
        );
        // A wrong key is caught by the commitment, whatever the name.
        assert_eq!(
            leaf.audit_name(name, &NameKey([0x5b; 32]), &commitment),
            Err(NameAuditError::WrongKey)
        );
    }
    // Without the key, the leaf bytes do not contain the name.
    let bytes = b.leaves()[0].to_bytes();
    assert!(!bytes.windows(7).any(|w| w == b"example"));
}

#[test]
fn per_request_receipt() {
    let mut header = vectors_v2_gen::header();
    header.receipt_type = ReceiptType::PerRequest;
    let key = vectors_gen::signing_key();
    let leaves = vectors_v2_gen::input_leaves();
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
    let answers = one.answer(&sample).unwrap();
    assert!(answers[0].next.is_none());
    let (registry, policies) = (active(), policy7());
    let ledger = Ledger::default();
    let lookup = TicketCheckDouble::valid(tickets());
    let v = Verifier::new(deployment(), &registry, &policies, &ledger).with_tickets(&lookup);
    assert!(
        v.verify_with_audit(r, RECEIVED_MS, &sample, &answers)
            .is_ok()
    );
}

#[test]
fn seal_rules() {
    let key = vectors_gen::signing_key();
    let mut leaves = vectors_v2_gen::input_leaves();
    leaves[4].response_bytes = 65_536;
    assert_eq!(
        ClosedBatch::seal(&vectors_v2_gen::header(), leaves, [0; 32], 0, &key).err(),
        Some(SealError::ResponseTooLarge { index: 4 })
    );
    // 65,536 identical answers in one millisecond fit (repeat 0..=65535); one more does not.
    let same = vec![vectors_v2_gen::input_leaves()[0]; 65_537];
    let mut ordered = same[..65_536].to_vec();
    order_leaves(&mut ordered).unwrap();
    assert_eq!(ordered.last().unwrap().repeat, u16::MAX);
    let mut over = same;
    assert_eq!(order_leaves(&mut over), Err(SealError::RepeatOverflow));
    // seal_v1 keeps the given order and ignores repeat.
    let mut v1_leaves = vectors_v2_gen::input_leaves();
    v1_leaves[0].repeat = 5;
    let v1 = ClosedBatch::seal_v1(
        &vectors_v2_gen::header(),
        v1_leaves,
        [0; 32],
        vectors_gen::RECEIPT_TIMESTAMP_MS,
        &key,
    )
    .unwrap();
    assert_eq!(v1.receipt().body.version(), RECEIPT_VERSION_V1);
    assert!(v1.receipt().body.v2.is_none());
    assert_eq!(v1.leaves()[0].repeat, 0);
    assert_eq!(
        v1.leaves()
            .iter()
            .map(|l| l.timestamp_ms)
            .collect::<Vec<_>>(),
        vectors_v2_gen::input_leaves()
            .iter()
            .map(|l| l.timestamp_ms)
            .collect::<Vec<_>>()
    );
    let hashes: Vec<Hash> = v1.leaves().iter().map(Leaf::hash_v1).collect();
    assert_eq!(
        v1.receipt().body.integrity.merkle_root,
        merkle::root(&hashes)
    );
}
