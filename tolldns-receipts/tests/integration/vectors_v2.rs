//! `test-vectors/receipts-v2.json`: read it, check every value from the file alone, run every
//! negative case, and fail when it drifts from what the code produces (regenerate with
//! `cargo run -p tolldns-receipts --example gen_vectors`).

use std::collections::BTreeSet;

use serde_json::Value;
use tolldns_core::{DeploymentId, NameKey, NormalizedName};
use tolldns_receipts::*;

use crate::vectors_v2_gen::{self, Env, answers_of, evaluate};

fn file() -> Value {
    let text = std::fs::read_to_string(vectors_v2_gen::V2_VECTORS_PATH).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn bytes(v: &Value) -> Vec<u8> {
    hex::decode(v.as_str().unwrap()).unwrap()
}

fn arr<const N: usize>(v: &Value) -> [u8; N] {
    bytes(v).try_into().unwrap()
}

fn u(v: &Value) -> u64 {
    v.as_u64().unwrap()
}

/// The sketch's estimate capped at the ticketed leaves (the count a score may use).
fn sketch_estimate_capped(v: &Value, ticketed: u64) -> u64 {
    u(&v["name_sketch_estimate"]).min(ticketed)
}

fn leaf_proof(v: &Value) -> LeafProof {
    LeafProof {
        leaf: Leaf::from_bytes(&bytes(&v["leaf_hex"])).unwrap(),
        proof: MerkleProof::from_bytes(&bytes(&v["proof_hex"])).unwrap(),
    }
}

#[test]
fn file_matches_the_generator() {
    let text = std::fs::read_to_string(vectors_v2_gen::V2_VECTORS_PATH).unwrap();
    assert!(
        text == vectors_v2_gen::render(),
        "test-vectors/receipts-v2.json drifted; run `cargo run -p tolldns-receipts --example gen_vectors` and review the diff"
    );
}

#[test]
#[allow(clippy::too_many_lines)]
fn positive_vectors_check_out() {
    let v = file();
    // The deployment id from its inputs.
    let d = &v["deployment"];
    let deployment_id = DeploymentId::derive(&arr(&d["program_id"]), &arr(&d["genesis_hash"]));
    assert_eq!(deployment_id.0, arr::<32>(&d["deployment_id"]));
    assert_eq!(v["verifier"]["deployment_id"], d["deployment_id"]);

    // The receipt: bytes, body, signing message, signature, JSON.
    let receipt_bytes = bytes(&v["receipt_borsh_hex"]);
    let r = Receipt::from_bytes(&receipt_bytes).unwrap();
    assert_eq!(r.to_bytes(), receipt_bytes);
    assert_eq!(r.body.version(), 2);
    let body = bytes(&v["body_borsh_hex"]);
    assert_eq!(r.body.to_bytes(), body);
    assert_eq!(body[0], 2);
    assert_eq!(&body[1..33], deployment_id.as_bytes());
    let mut msg = b"TOLLDNS-RECEIPT-V2\0".to_vec();
    msg.extend_from_slice(&body);
    assert_eq!(msg, bytes(&v["signing_message_hex"]));
    assert_eq!(r.body.signing_message(), msg);
    assert_eq!(r.signature.to_vec(), bytes(&v["signature_hex"]));
    assert_eq!(r.verify_signature(), Ok(()));
    let json = v["receipt_json"].as_str().unwrap();
    assert_eq!(Receipt::from_json(json).unwrap().to_bytes(), receipt_bytes);
    assert_eq!(r.to_json(), json);
    let v2 = r.body.v2.as_ref().unwrap();
    assert_eq!(v2.deployment_id, deployment_id);

    // The receipt passes verification in the file's verifier world.
    let env = Env::from_json(&v["verifier"]);
    let verifier = env.verifier();
    assert_eq!(verifier.verify(&r, env.received_ms), Ok(()));

    // Leaves: v2 encoding, hash, name hash, sketch cell, strict order, repeats.
    let name_key = NameKey(arr(&v["name_key"]));
    assert_eq!(name_key.commitment(), arr::<32>(&v["name_key_commitment"]));
    assert_eq!(r.body.integrity.name_key_commitment, name_key.commitment());
    let leaves: Vec<Leaf> = v["leaves"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            let b = bytes(&l["leaf_hex"]);
            assert_eq!(b.len(), LEAF_LEN);
            assert_eq!(b[0], 2);
            let leaf = Leaf::from_bytes(&b).unwrap();
            assert_eq!(Leaf::from_bytes_any(&b), Ok(leaf));
            assert_eq!(leaf.to_bytes().to_vec(), b);
            assert_eq!(leaf.hash().to_vec(), bytes(&l["leaf_hash"]));
            assert_eq!(leaf.hash_for(2), leaf.hash());
            assert_eq!(u64::from(leaf.repeat), u(&l["repeat"]));
            assert_eq!(&b[69..], &leaf.repeat.to_le_bytes());
            assert_eq!(leaf.timestamp_ms, u(&l["timestamp_ms"]));
            assert_eq!(leaf.transport.to_string(), l["transport"].as_str().unwrap());
            assert_eq!(u64::from(leaf.response_bytes), u(&l["response_bytes"]));
            let name = NormalizedName::new(l["name"].as_str().unwrap()).unwrap();
            assert_eq!(name.as_str(), l["canonical_name"].as_str().unwrap());
            assert_eq!(name_key.name_hash(&name).to_vec(), bytes(&l["name_hash"]));
            let (j, rank) = leaf.sketch_cell();
            assert_eq!(j as u64, u(&l["sketch_register"]));
            assert_eq!(u64::from(rank), u(&l["sketch_rank"]));
            leaf
        })
        .collect();
    for w in leaves.windows(2) {
        assert_eq!(w[0].order(&w[1]), std::cmp::Ordering::Less);
        let expected = if w[0].same_answer(&w[1]) {
            w[0].repeat + 1
        } else {
            0
        };
        assert_eq!(w[1].repeat, expected);
    }
    // Three honest identical answers are all kept, numbered 0, 1, 2.
    assert_eq!(leaves.iter().map(|l| l.repeat).max(), Some(2));
    // Sorting the arrival order gives the Merkle order.
    let mut input: Vec<Leaf> = v["input_leaves_hex"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| Leaf::from_bytes(&bytes(x)).unwrap())
        .collect();
    assert_ne!(input, leaves);
    order_leaves(&mut input).unwrap();
    assert_eq!(input, leaves);

    // Root, summary, ticketed count, sketch.
    let hashes: Vec<[u8; 32]> = leaves.iter().map(Leaf::hash).collect();
    assert_eq!(merkle::root(&hashes), arr::<32>(&v["merkle_root"]));
    assert_eq!(r.body.integrity.merkle_root, arr::<32>(&v["merkle_root"]));
    assert_eq!(summarize(&leaves).unwrap(), r.body.service_summary);
    let ticketed = leaves.iter().filter(|l| l.is_ticketed()).count() as u64;
    assert_eq!(ticketed, u(&v["ticketed_leaf_count"]));
    assert_eq!(v2.ticketed_leaf_count, ticketed);
    let repeats = leaves
        .iter()
        .filter(|l| l.repeat != 0 && l.is_ticketed())
        .count() as u64;
    assert_eq!(repeats, u(&v["ticketed_repeat_count"]));
    assert_eq!(v2.ticketed_repeat_count, repeats);
    assert_eq!(v2.distinct_names(), sketch_estimate_capped(&v, ticketed));
    let (sketch, witnesses) = sketch_with_witnesses(&leaves);
    assert_eq!(sketch.registers().to_vec(), bytes(&v["name_sketch"]));
    assert_eq!(v2.name_sketch, sketch);
    assert_eq!(sketch.estimate(), u(&v["name_sketch_estimate"]));
    let mut by_hand = NameSketch::new();
    for l in leaves.iter().filter(|l| l.is_ticketed()) {
        by_hand.insert(&l.name_hash);
    }
    assert_eq!(by_hand, sketch);
    for w in v["sketch_register_witnesses"].as_array().unwrap() {
        let j = u(&w["register"]) as usize;
        let i = u(&w["leaf_index"]);
        assert_eq!(witnesses[j], i);
        assert_eq!(leaves[i as usize].sketch_cell(), (j, u(&w["value"]) as u8));
    }

    // The audit: sample from a later slot, answers with neighbours.
    let a = &v["audit"];
    let seed = AuditSeed {
        slot: u(&a["seed_slot"]),
        hash: arr(&a["seed"]),
    };
    let root = r.body.integrity.merkle_root;
    let n = r.body.integrity.leaf_count;
    let k = u(&a["k"]);
    assert_eq!(sample_size(0.99, 0.10, n), Ok(k));
    let sample = AuditSample::after(&seed, u(&a["receipt_slot"]), &root, n, k).unwrap();
    let draws: Vec<String> = (0..4)
        .map(|c| audit_draw(&seed.hash, &root, c).to_string())
        .collect();
    let file_draws: Vec<String> = a["first_draws"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_str().unwrap().to_string())
        .collect();
    assert_eq!(draws, file_draws);
    let indices: Vec<u64> = a["indices"].as_array().unwrap().iter().map(u).collect();
    assert_eq!(sample.indices(), indices.as_slice());
    let answers = answers_of(&a["answers"]);
    for (i, ans) in indices.iter().zip(&answers) {
        assert_eq!(ans.leaf.proof.leaf_index, *i);
        assert_eq!(ans.leaf.leaf, leaves[*i as usize]);
        assert_eq!(ans.next.is_none(), *i + 1 == n);
    }
    let report = verifier
        .verify_with_audit(&r, env.received_ms, &sample, &answers)
        .unwrap();
    assert_eq!(report.sampled, n);
    assert_eq!(report.neighbours, n - 1);
    assert_eq!(report.ticketed, ticketed);
    assert_eq!(report.repeats, 2);

    // Sketch witnesses.
    let s = &v["sketch_witness"];
    let ws = SketchWitnessSample::new(&arr(&s["seed"]), &root, &v2.name_sketch, u(&s["k"]));
    let registers: Vec<usize> = s["registers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| u(x) as usize)
        .collect();
    assert_eq!(ws.registers(), registers.as_slice());
    let wproofs: Vec<LeafProof> = s["witnesses"]
        .as_array()
        .unwrap()
        .iter()
        .map(leaf_proof)
        .collect();
    for (w, j) in wproofs.iter().zip(&registers) {
        assert_eq!(w.leaf.sketch_cell(), (*j, v2.name_sketch.register(*j)));
    }
    assert_eq!(verifier.check_sketch_witnesses(&r, &ws, &wproofs), Ok(()));

    // Ticket lookup.
    let t = &v["ticket_lookup"];
    let tleaves: Vec<LeafProof> = t["leaves"]
        .as_array()
        .unwrap()
        .iter()
        .map(leaf_proof)
        .collect();
    assert_eq!(
        verify_ticket_leaves(&r, &arr(&t["ticket"]), &tleaves, u(&t["max_leaves"])),
        Ok(2)
    );
}

#[test]
fn negative_vectors_fail_as_documented() {
    let v = file();
    let negatives = v["negative"].as_array().unwrap();
    let mut names = BTreeSet::new();
    let mut stats = BTreeSet::new();
    for n in negatives {
        assert!(!n["comment"].as_str().unwrap().is_empty());
        let expected = n["expected_error"].as_str().unwrap();
        let (got, stat) = evaluate(&v, n);
        assert_eq!(got, expected, "{}", n["comment"]);
        assert_eq!(
            stat.as_deref(),
            n["expected_stat"].as_str(),
            "{}",
            n["comment"]
        );
        names.insert(got);
        stats.extend(stat);
    }
    // Every rule that a v2 receipt can break has a case (DuplicateReceipt is v1's ledger rule).
    let v2_rules = [
        "v1_not_accepted",
        "unregistered_operator",
        "operator_not_staked",
        "signature",
        "wrong_deployment",
        "window_len_not_deployment",
        "unregistered_backend",
        "invalid_policy_version",
        "success_plus_error_exceeds_requests",
        "cache_exceeds_requests",
        "work_class_sum_mismatch",
        "error_class_sum_exceeds_errors",
        "leaf_count_mismatch",
        "per_request_not_single",
        "bytes_exceed_maximum",
        "ticketed_exceeds_leaves",
        "sketch_inconsistent",
        "repeats_exceed_ticketed",
        "too_many_repeats",
        "window_out_of_range",
        "timestamp_outside_window",
        "arrived_too_early",
        "arrived_too_late",
        "overlapping_receipt",
        "sample_not_for_receipt",
        "proof_count_mismatch",
        "proof_for_wrong_leaf",
        "invalid_proof",
        "leaf_outside_window",
        "missing_neighbour",
        "neighbour_for_wrong_leaf",
        "invalid_neighbour_proof",
        "leaves_out_of_order",
        "repeat_mismatch",
        "sketch_understates",
        "ticket_not_checked",
        "ticket_not_redeemed",
        "token_invalid",
        "unticketed_leaf",
        "summary_disagrees",
        "not_v2",
        "witness_mismatch",
        "ticket_leaf_mismatch",
        "ticket_over_quota",
    ];
    for rule in v2_rules {
        assert!(names.contains(rule), "no negative vector for {rule}");
    }
    for stat in [
        "success",
        "error",
        "cache",
        "ticketed",
        "repeat",
        "mean_bytes",
    ] {
        assert!(
            stats.contains(stat),
            "no summary_disagrees vector for {stat}"
        );
    }
    // Decoding, JSON and sampling refusals.
    for e in [
        "ResponseTooLarge { response_bytes: 65536 }",
        "WrongLength { expected: 71, actual: 69 }",
        "UnsupportedVersion { field: \"receipt_version\", version: 3 }",
        "VersionFields { field: \"deployment_id\" }",
        "InvalidField { field: \"name_sketch\" }",
        "SeedNotAfterReceipt",
        "SeedSlotNotFixed",
        "VersionFields { field: \"ticketed_repeat_count\" }",
    ] {
        assert!(names.contains(e), "no negative vector for {e}");
    }
}
