//! `test-vectors/receipts.json` (format v1): read it, check every value, and fail when it
//! drifts from what the code produces (regenerate with
//! `cargo run -p tolldns-receipts --example gen_vectors`). v1 receipts stay verifiable: they
//! go through the v2 [`Verifier`], which applies the v1 rules to them (no deployment, no
//! arrival bound, so any `received_ms` passes).

use serde_json::Value;
use tolldns_core::{NameKey, NormalizedName};
use tolldns_receipts::*;

use crate::common::*;
use crate::vectors_gen;

/// v1 receipts have no arrival bound: a year after the window they still verify.
const RECEIVED_LONG_AFTER_MS: u64 = vectors_gen::RECEIPT_TIMESTAMP_MS + 365 * 86_400_000;

fn file() -> Value {
    let text = std::fs::read_to_string(vectors_gen::VECTORS_PATH).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn bytes(v: &Value) -> Vec<u8> {
    hex::decode(v.as_str().unwrap()).unwrap()
}

fn arr32(v: &Value) -> [u8; 32] {
    bytes(v).try_into().unwrap()
}

#[test]
fn file_matches_the_generator() {
    let text = std::fs::read_to_string(vectors_gen::VECTORS_PATH).unwrap();
    assert!(
        text == vectors_gen::render(),
        "test-vectors/receipts.json drifted; run `cargo run -p tolldns-receipts --example gen_vectors` and review the diff"
    );
}

#[test]
fn positive_vectors_check_out() {
    let v = file();
    let receipt_bytes = bytes(&v["receipt_borsh_hex"]);
    let r = Receipt::from_bytes(&receipt_bytes).unwrap();
    assert_eq!(r.to_bytes(), receipt_bytes);
    assert_eq!(r.body.to_bytes(), bytes(&v["body_borsh_hex"]));
    let mut msg = b"TOLLDNS-RECEIPT-V1\0".to_vec();
    msg.extend_from_slice(&bytes(&v["body_borsh_hex"]));
    assert_eq!(msg, bytes(&v["signing_message_hex"]));
    assert_eq!(r.signature.to_vec(), bytes(&v["signature_hex"]));
    assert_eq!(r.verify_signature(), Ok(()));
    // JSON round trip to the same bytes.
    let json = v["receipt_json"].as_str().unwrap();
    assert_eq!(Receipt::from_json(json).unwrap().to_bytes(), receipt_bytes);
    assert_eq!(r.to_json(), json);
    // The receipt passes verification.
    let (registry, policies) = (active(), policy7());
    let ledger_ = Ledger::default();
    let verifier = Verifier::new(deployment().with_v1(true), &registry, &policies, &ledger_);
    for received_ms in [0, RECEIVED_LONG_AFTER_MS, u64::MAX] {
        assert_eq!(verifier.verify(&r, received_ms), Ok(()));
    }
    assert_eq!(r.body.version(), 1);
    assert!(r.body.v2.is_none());
    // A deployment that switched to v2 refuses it outright.
    let v2_only = Verifier::new(deployment(), &registry, &policies, &ledger_);
    assert_eq!(v2_only.verify(&r, 0), Err(VerifyError::V1NotAccepted));

    // Leaves: encoding, hash, name hash; the root over them.
    let name_key = NameKey(arr32(&v["name_key"]));
    assert_eq!(name_key.commitment(), arr32(&v["name_key_commitment"]));
    assert_eq!(r.body.integrity.name_key_commitment, name_key.commitment());
    let leaves: Vec<Leaf> = v["leaves"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            let leaf_bytes = bytes(&l["leaf_hex"]);
            assert_eq!(leaf_bytes.len(), LEAF_LEN_V1);
            let leaf = Leaf::from_bytes_v1(&leaf_bytes).unwrap();
            assert_eq!(Leaf::from_bytes_any(&leaf_bytes), Ok(leaf));
            assert_eq!(leaf.repeat, 0);
            assert_eq!(leaf.hash_v1().to_vec(), bytes(&l["leaf_hash"]));
            assert_eq!(leaf.hash_for(1).to_vec(), bytes(&l["leaf_hash"]));
            assert_eq!(leaf.timestamp_ms, l["timestamp_ms"].as_u64().unwrap());
            assert_eq!(leaf.transport.to_string(), l["transport"].as_str().unwrap());
            assert_eq!(
                u64::from(leaf.response_bytes),
                l["response_bytes"].as_u64().unwrap()
            );
            let name = NormalizedName::new(l["name"].as_str().unwrap()).unwrap();
            assert_eq!(name.as_str(), l["canonical_name"].as_str().unwrap());
            assert_eq!(name_key.name_hash(&name).to_vec(), bytes(&l["name_hash"]));
            leaf
        })
        .collect();
    let hashes: Vec<[u8; 32]> = leaves.iter().map(Leaf::hash_v1).collect();
    assert_eq!(merkle::root(&hashes), arr32(&v["merkle_root"]));
    assert_eq!(r.body.integrity.merkle_root, arr32(&v["merkle_root"]));
    assert_eq!(summarize(&leaves).unwrap(), r.body.service_summary);

    // Proofs.
    for p in v["proofs"].as_array().unwrap() {
        let proof = MerkleProof::from_bytes(&bytes(&p["proof_hex"])).unwrap();
        let i = p["leaf_index"].as_u64().unwrap();
        assert_eq!(proof.leaf_index, i);
        let path: Vec<[u8; 32]> = p["path"].as_array().unwrap().iter().map(arr32).collect();
        assert_eq!(proof.path, path);
        assert_eq!(
            proof.verify(&hashes[i as usize], &r.body.integrity.merkle_root),
            Ok(())
        );
    }

    // Audit sample.
    let a = &v["audit"];
    let sample = AuditSample::new(
        &arr32(&a["seed"]),
        &r.body.integrity.merkle_root,
        7,
        a["k"].as_u64().unwrap(),
    );
    let expected: Vec<u64> = a["indices"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap())
        .collect();
    assert_eq!(sample.indices(), expected.as_slice());

    // A v1 audit through the v2 verifier: v1 rules (no neighbours, no summary bound).
    let batch = vectors_gen::batch();
    assert_eq!(batch.receipt(), &r);
    let answers = batch.answer(&sample).unwrap();
    assert!(answers.iter().all(|a| a.next.is_none()));
    let report = verifier
        .verify_with_audit(&r, RECEIVED_LONG_AFTER_MS, &sample, &answers)
        .unwrap();
    assert_eq!(report.sampled, 3);
    assert_eq!(report.neighbours, 0);
}

#[test]
fn negative_vectors_fail_as_documented() {
    let v = file();
    let (registry, policies) = (active(), policy7());
    let ledger_ = Ledger::default();
    let verifier = Verifier::new(deployment().with_v1(true), &registry, &policies, &ledger_);
    let negatives = v["negative"].as_array().unwrap();
    assert!(negatives.len() >= 5);
    for n in negatives {
        assert!(!n["comment"].as_str().unwrap().is_empty());
        let expected = n["expected_error"].as_str().unwrap();
        let got = match n["kind"].as_str().unwrap() {
            "proof" => {
                let leaf = Leaf::from_bytes_v1(&bytes(&n["leaf_hex"])).unwrap();
                let proof = MerkleProof::from_bytes(&bytes(&n["proof_hex"])).unwrap();
                format!(
                    "{:?}",
                    proof
                        .verify(&leaf.hash_v1(), &arr32(&n["root"]))
                        .unwrap_err()
                )
            }
            "receipt" => {
                let r = Receipt::from_bytes(&bytes(&n["receipt_hex"])).unwrap();
                format!(
                    "{:?}",
                    verifier.verify(&r, RECEIVED_LONG_AFTER_MS).unwrap_err()
                )
            }
            "name_audit" => {
                let leaf = Leaf::from_bytes_v1(&bytes(&v["leaves"][0]["leaf_hex"])).unwrap();
                let name = NormalizedName::new(n["name"].as_str().unwrap()).unwrap();
                let key = NameKey(arr32(&n["name_key"]));
                format!(
                    "{:?}",
                    leaf.audit_name(&name, &key, &arr32(&v["name_key_commitment"]))
                        .unwrap_err()
                )
            }
            other => panic!("unknown kind {other}"),
        };
        assert_eq!(got, expected, "{}", n["comment"]);
    }
}
