//! v2 receipts: `receipt verify` on batches sealed in the test with `tolldns-receipts` (audits
//! in sample order, each failure by its stable name and code, neighbour rules, toll-ticket
//! tokens checked for real with `--tokens`), and `receipt audit|name-key|ticket` against
//! [`MinerDouble`], an in-test stand-in for the miner's audit API that checks the signed
//! `Authorization: TollDNS-Auditor …` header with `tolldns_service::auditor` and serves
//! answers from a `ClosedBatch` (the real miner is exercised by its own tests, which run this
//! binary's `receipt verify` on its answers).

use std::collections::{HashMap, HashSet};
use std::convert::Infallible;
use std::path::Path;
use std::sync::{Arc, Mutex, OnceLock};

use base64::Engine as _;
use bytes::Bytes;
use ed25519_dalek::SigningKey;
use http_body_util::Full;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tolldns_core::{BackendId, DeploymentId, NameKey, WindowId, WindowLen};
use tolldns_receipts::{
    AuditAnswer, AuditSample, BatchHeader, ClosedBatch, LatencyBucket, Leaf, LeafFlags, LeafProof,
    MerkleTree, RcodeClass, Receipt, Transport, WorkClass,
};
use tolldns_service::auditor;
use tolldns_tickets::{IssuerSecretKey, TokenChallenge, client};

use super::{assert_exit, scratch_dir, stderr_of, stdout_of, tolldns, tolldns_bytes, write_file};

const ISSUER_NAME: &str = "issuer.test";
const TOKEN_DEPLOYMENT: &str = "tolldns-test";
/// Window 29333335 of 60 s: [1_760_000_100_000, 1_760_000_160_000).
const WINDOW_START: u64 = 1_760_000_100_000;
const WINDOW_END: u64 = WINDOW_START + 60_000;
/// One second after the window: well inside the default 10-minute arrival bound.
const RECEIVED: u64 = WINDOW_END + 1_000;
const EPOCH: u64 = 7;

fn deployment() -> DeploymentId {
    DeploymentId::derive(&[1; 32], &[2; 32])
}

fn operator_key() -> SigningKey {
    SigningKey::from_bytes(&[7; 32])
}

fn name_key() -> NameKey {
    NameKey([0x5a; 32])
}

/// The issuer key and three tokens bound to the test challenge (generated once: RSA).
fn issued() -> &'static (IssuerSecretKey, Vec<Vec<u8>>) {
    static ISSUED: OnceLock<(IssuerSecretKey, Vec<Vec<u8>>)> = OnceLock::new();
    ISSUED.get_or_init(|| {
        let key = IssuerSecretKey::generate(2048).unwrap();
        let challenge = TokenChallenge::deployment(ISSUER_NAME, TOKEN_DEPLOYMENT);
        let tokens = (0..3)
            .map(|_| {
                let (request, pending) = client::request(key.public(), &challenge).unwrap();
                let response = key.issue(&request).unwrap();
                pending
                    .finalize(key.public(), &response)
                    .unwrap()
                    .to_bytes()
            })
            .collect();
        (key, tokens)
    })
}

fn issuer_key_b64() -> String {
    base64::engine::general_purpose::URL_SAFE.encode(issued().0.public().spki())
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn leaf(i: u64, ticket: [u8; 16]) -> Leaf {
    Leaf {
        timestamp_ms: WINDOW_START + 500 + i * 1_000,
        transport: Transport::Udp,
        qtype: if i % 3 == 0 { 28 } else { 1 },
        rcode_class: if i % 7 == 0 {
            RcodeClass::Nxdomain
        } else {
            RcodeClass::NoError
        },
        work_class: WorkClass::CacheHit,
        flags: LeafFlags {
            cache_hit: true,
            ..LeafFlags::default()
        },
        latency: LatencyBucket::from_millis(3),
        response_bytes: 100 + u32::try_from(i).unwrap(),
        name_hash: [u8::try_from(i).unwrap(); 16],
        ticket,
        response_summary_hash: Leaf::response_summary_hash(b"NOERROR A 1"),
        repeat: 0,
    }
}

/// A v2 batch of 41 leaves: 40 distinct answers and a second copy of leaf 10 (repeat 1).
/// Leaves carry the tickets of `tickets` in turn (none when empty).
fn batch(tickets: &[[u8; 16]]) -> ClosedBatch {
    let ticket = |i: u64| {
        if tickets.is_empty() {
            [0; 16]
        } else {
            tickets[usize::try_from(i).unwrap() % tickets.len()]
        }
    };
    let mut leaves: Vec<Leaf> = (0..40).map(|i| leaf(i, ticket(i))).collect();
    leaves.push(leaf(10, ticket(10)));
    let len = WindowLen::new(60).unwrap();
    let header = BatchHeader::new(
        deployment(),
        BackendId::new("edge-ingress").unwrap(),
        len,
        WindowId::containing(WINDOW_START, len),
    );
    ClosedBatch::seal(
        &header,
        leaves,
        name_key().commitment(),
        WINDOW_END - 1,
        &operator_key(),
    )
    .unwrap()
}

/// The three tokens' ticket ids.
fn ticket_ids() -> Vec<[u8; 16]> {
    issued()
        .1
        .iter()
        .map(|t| tolldns_tickets::ticket_id(t))
        .collect()
}

/// A proved leaf as the miner's audit API writes it.
fn proof_json(p: &LeafProof) -> Value {
    json!({
        "leaf_hex": hex::encode(p.leaf.to_bytes()),
        "leaf_index": p.proof.leaf_index,
        "tree_size": p.proof.tree_size,
        "path": p.proof.path.iter().map(hex::encode).collect::<Vec<_>>(),
    })
}

/// The miner's audit answer: `{"version":2,"proofs":[{…,"next":{…}|null}]}`.
fn answers_json(answers: &[AuditAnswer]) -> Value {
    let proofs: Vec<Value> = answers
        .iter()
        .map(|a| {
            let mut v = proof_json(&a.leaf);
            v["next"] = a.next.as_ref().map_or(Value::Null, proof_json);
            v
        })
        .collect();
    json!({ "version": 2, "proofs": proofs })
}

fn batch_id(r: &Receipt) -> [u8; 32] {
    tolldns_core::hash::tagged_sha256(&[], &[&r.to_bytes()])
}

/// Files and the base arguments of `receipt verify` for one batch.
struct Case {
    dir: std::path::PathBuf,
    receipt: String,
}

impl Case {
    fn new(name: &str, receipt: &Receipt) -> Self {
        let dir = scratch_dir(name);
        let receipt = write_file(&dir, "receipt.json", receipt.to_json().as_bytes());
        Self { dir, receipt }
    }

    fn proofs(&self, name: &str, doc: &Value) -> String {
        write_file(&self.dir, name, doc.to_string().as_bytes())
    }

    /// `receipt verify RECEIPT --deployment D --received-ms R` plus `extra`.
    fn verify(&self, extra: &[&str]) -> std::process::Output {
        let dep = deployment().to_string();
        let received = RECEIVED.to_string();
        let mut args = vec![
            "receipt",
            "verify",
            self.receipt.as_str(),
            "--deployment",
            dep.as_str(),
            "--received-ms",
            received.as_str(),
        ];
        args.extend_from_slice(extra);
        tolldns(&args, "")
    }
}

/// Asserts a `--json` failure: exit 1, exactly `{"valid","rule","code","message"}`, and the
/// same rule and message on stderr.
#[track_caller]
fn assert_fails(out: &std::process::Output, rule: &str, code: u64) -> Value {
    assert_exit(out, 1);
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let keys: Vec<&str> = report
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(keys, ["code", "message", "rule", "valid"], "{report}");
    assert_eq!(report["valid"], false);
    assert_eq!(report["rule"], rule, "{report}");
    assert_eq!(report["code"], code, "{report}");
    let message = report["message"].as_str().unwrap();
    assert!(!message.is_empty());
    let err = stderr_of(out);
    assert!(
        err.contains(&format!("verification failed: {rule}: {message}")),
        "{err}"
    );
    report
}

#[test]
fn receipt_verify_v2_audit_in_sample_order() {
    let batch = batch(&[]);
    let receipt = batch.receipt();
    let case = Case::new("v2-audit", receipt);
    let root = receipt.body.integrity.merkle_root;
    let n = receipt.body.integrity.leaf_count;
    assert_eq!(n, 41);
    let seed = [0x42u8; 32];
    let seed_hex = hex::encode(seed);
    let sample = AuditSample::new(&seed, &root, n, 10);
    let answers = batch.answer(&sample).unwrap();
    let neighbours = answers.iter().filter(|a| a.next.is_some()).count();
    let repeats = answers.iter().filter(|a| a.leaf.leaf.repeat > 0).count();
    let proofs = case.proofs("proofs.json", &answers_json(&answers));

    // The receipt alone, then with the audit, as one line.
    let out = case.verify(&[]);
    assert_exit(&out, 0);
    let line = stdout_of(&out);
    assert!(
        line.starts_with(&format!(
            "valid: v2 BATCH receipt of operator {} (EDGE_INGRESS, backend edge-ingress) for window 29333335 (60 s), 41 leaves, root {}",
            bs58::encode(operator_key().verifying_key().as_bytes()).into_string(),
            hex::encode(root)
        )),
        "{line}"
    );
    assert!(
        line.ends_with("; registry checks not performed\n"),
        "{line}"
    );
    let out = case.verify(&[
        "--proofs",
        &proofs,
        "--seed",
        &seed_hex,
        "--sample-size",
        "10",
    ]);
    assert_exit(&out, 0);
    assert!(
        stdout_of(&out).contains(&format!(
            "; audit of seed {seed_hex} (k = 10): 10 sampled leaves in draw order, 0 ticketed, {repeats} repeats, {neighbours} neighbours; registry checks not performed"
        )),
        "{}",
        stdout_of(&out)
    );
    // `--k` is the same option.
    let out = case.verify(&[
        "--proofs", &proofs, "--seed", &seed_hex, "--k", "10", "--json",
    ]);
    assert_exit(&out, 0);
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["valid"], true);
    assert_eq!(r["receipt_version"], 2);
    assert_eq!(r["deployment_id"], deployment().to_string());
    assert_eq!(r["ticketed_leaf_count"], 0);
    assert_eq!(r["received_ms"], RECEIVED);
    assert_eq!(r["leaf_count"], 41);
    assert_eq!(r["proofs_verified"], 10);
    assert_eq!(r["neighbours_verified"], neighbours);
    assert_eq!(r["tickets"], "none");
    assert_eq!(r["registry_checked"], false);
    assert_eq!(
        r["audit"],
        json!({
            "seed": seed_hex, "k": 10, "indices": sample.indices(), "sampled": 10,
            "ticketed": 0, "repeats": repeats, "neighbours": neighbours,
        })
    );

    // Without a seed every proof and neighbour is checked on its own.
    let out = case.verify(&["--proofs", &proofs]);
    assert_exit(&out, 0);
    assert!(
        stdout_of(&out).contains(&format!("; 10 proofs verified, {neighbours} neighbours;")),
        "{}",
        stdout_of(&out)
    );
    // The default k (44 at 0.99 against 10 % fakes) covers all 41 leaves; the repeat (leaf
    // 10's copy) is among them.
    let all = AuditSample::new(&seed, &root, n, n);
    let all_answers = batch.answer(&all).unwrap();
    let all_file = case.proofs("all.json", &answers_json(&all_answers));
    let out = case.verify(&["--proofs", &all_file, "--seed", &seed_hex, "--json"]);
    assert_exit(&out, 0);
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["audit"]["sampled"], 41);
    assert_eq!(r["audit"]["repeats"], 1);
    assert_eq!(r["audit"]["neighbours"], 40);

    // The receipt as hex of Borsh on stdin; the proofs file in `proof_hex` form.
    let hex_proofs: Vec<Value> = answers
        .iter()
        .map(|a| {
            let p = |lp: &LeafProof| {
                json!({"leaf_hex": hex::encode(lp.leaf.to_bytes()), "proof_hex": hex::encode(lp.proof.to_bytes())})
            };
            json!({
                "leaf_hex": hex::encode(a.leaf.leaf.to_bytes()),
                "proof_hex": hex::encode(a.leaf.proof.to_bytes()),
                "next": a.next.as_ref().map_or(Value::Null, p),
            })
        })
        .collect();
    let hex_file = case.proofs("hex.json", &json!({ "proofs": hex_proofs }));
    let dep = deployment().to_string();
    let received = RECEIVED.to_string();
    let out = tolldns_bytes(
        &[
            "receipt",
            "verify",
            "-",
            "--deployment",
            &dep,
            "--received-ms",
            &received,
            "--proofs",
            &hex_file,
            "--seed",
            &seed_hex,
            "--sample-size",
            "10",
        ],
        hex::encode(receipt.to_bytes()).as_bytes(),
    );
    assert_exit(&out, 0);
}

#[test]
fn receipt_verify_v2_failures_by_name() {
    let batch = batch(&[]);
    let receipt = batch.receipt();
    let case = Case::new("v2-failures", receipt);
    let n = receipt.body.integrity.leaf_count;
    let seed = [0x42u8; 32];
    let seed_hex = hex::encode(seed);
    let sample = AuditSample::new(&seed, &receipt.body.integrity.merkle_root, n, 10);
    let answers = batch.answer(&sample).unwrap();
    let proofs = case.proofs("proofs.json", &answers_json(&answers));
    let audit = [
        "--proofs",
        proofs.as_str(),
        "--seed",
        seed_hex.as_str(),
        "--sample-size",
        "10",
    ];

    // The receipt rules: another deployment (the default one), another window length, late.
    let out = tolldns(&["receipt", "verify", &case.receipt, "--json"], "");
    assert_fails(&out, "wrong_deployment", 4);
    let out = case.verify(&["--window-secs", "2", "--json"]);
    let r = assert_fails(&out, "window_len_not_deployment", 5);
    assert_eq!(r["message"], "window length 60 s is not the deployment's");
    let late = (WINDOW_END + 600_001).to_string();
    let dep = deployment().to_string();
    let run_late = |extra: &[&str]| {
        let mut args = vec![
            "receipt",
            "verify",
            case.receipt.as_str(),
            "--deployment",
            dep.as_str(),
            "--received-ms",
            late.as_str(),
        ];
        args.extend_from_slice(extra);
        tolldns(&args, "")
    };
    assert_fails(&run_late(&["--json"]), "arrived_too_late", 19);
    assert_exit(&run_late(&["--max-delay-ms", "600001"]), 0);
    // Unticketed repeats are not bounded (unticketed leaves prove nothing about a client);
    // a zero bound refuses the one repeat of a ticketed batch.
    assert_exit(&case.verify(&["--max-repeat-permille", "0"]), 0);
    let ticketed = self::batch(&[[7; 16]]);
    let ticketed_case = Case::new("v2-failures-ticketed", ticketed.receipt());
    let out = ticketed_case.verify(&["--max-repeat-permille", "0", "--json"]);
    assert_exit(&out, 0); // within the per-receipt allowance (16)
    let out = ticketed_case.verify(&[
        "--max-repeat-permille",
        "0",
        "--repeat-allowance",
        "0",
        "--json",
    ]);
    assert_fails(&out, "too_many_repeats", 44);

    // Answers in another order than the sample's.
    let mut reordered = answers.clone();
    reordered.reverse();
    let file = case.proofs("reordered.json", &answers_json(&reordered));
    let out = case.verify(&[
        "--proofs",
        &file,
        "--seed",
        &seed_hex,
        "--sample-size",
        "10",
        "--json",
    ]);
    let r = assert_fails(&out, "proof_for_wrong_leaf", 24);
    assert_eq!(
        r["message"],
        format!(
            "proof for sampled leaf {} names another leaf or tree size",
            sample.indices()[0]
        )
    );
    assert!(stderr_of(&out).contains("(audit sample, in draw order: "));
    // One answer short.
    let file = case.proofs("short.json", &answers_json(&answers[..9]));
    let out = case.verify(&[
        "--proofs",
        &file,
        "--seed",
        &seed_hex,
        "--sample-size",
        "10",
        "--json",
    ]);
    assert_fails(&out, "proof_count_mismatch", 23);

    // Neighbours: dropped, for another leaf, tampered.
    let pos = answers
        .iter()
        .position(|a| a.next.is_some())
        .expect("a sampled leaf that is not the last");
    let index = answers[pos].leaf.proof.leaf_index;
    let mut doc = answers_json(&answers);
    doc["proofs"][pos]["next"] = Value::Null;
    let out = case.verify(&[
        "--proofs",
        &case.proofs("no-next.json", &doc),
        "--seed",
        &seed_hex,
        "--sample-size",
        "10",
        "--json",
    ]);
    let r = assert_fails(&out, "missing_neighbour", 27);
    assert_eq!(
        r["message"],
        format!("sampled leaf {index} comes without its right neighbour")
    );
    let mut doc = answers_json(&answers);
    let other = batch.leaf_proof((index + 2) % n).unwrap();
    doc["proofs"][pos]["next"] = proof_json(&other);
    let out = case.verify(&[
        "--proofs",
        &case.proofs("wrong-next.json", &doc),
        "--seed",
        &seed_hex,
        "--sample-size",
        "10",
        "--json",
    ]);
    assert_fails(&out, "neighbour_for_wrong_leaf", 28);
    let mut doc = answers_json(&answers);
    let mut tampered = answers[pos].next.clone().unwrap();
    tampered.leaf.response_bytes += 1;
    doc["proofs"][pos]["next"] = proof_json(&tampered);
    let file = case.proofs("tampered-next.json", &doc);
    let out = case.verify(&[
        "--proofs",
        &file,
        "--seed",
        &seed_hex,
        "--sample-size",
        "10",
        "--json",
    ]);
    assert_fails(&out, "invalid_neighbour_proof", 29);
    // The same neighbour rules without a seed.
    let out = case.verify(&["--proofs", &file, "--json"]);
    assert_fails(&out, "invalid_neighbour_proof", 29);

    // A sampled leaf whose proof does not verify.
    let mut doc = answers_json(&answers);
    let mut bad = answers[0].leaf.clone();
    bad.leaf.qtype = 99;
    doc["proofs"][0]["leaf_hex"] = json!(hex::encode(bad.leaf.to_bytes()));
    let out = case.verify(&[
        "--proofs",
        &case.proofs("bad-leaf.json", &doc),
        "--seed",
        &seed_hex,
        "--sample-size",
        "10",
        "--json",
    ]);
    assert_fails(&out, "invalid_proof", 25);

    // A v1 (69-byte) leaf in a v2 answer is malformed input.
    let mut doc = answers_json(&answers);
    doc["proofs"][0]["leaf_hex"] = json!(hex::encode(answers[0].leaf.leaf.to_bytes_v1()));
    let out = case.verify(&["--proofs", &case.proofs("v1-leaf.json", &doc)]);
    assert_exit(&out, 2);
    assert!(
        stderr_of(&out)
            .contains("proofs[0].leaf_hex: a 69-byte leaf, but a v2 receipt's leaves are 71 bytes")
    );
    let out = case.verify(&[audit.as_slice(), &["--json"]].concat());
    assert_exit(&out, 0);
}

#[test]
fn receipt_verify_v2_refuses_leaves_out_of_order() {
    // An operator re-signs the window with two leaves swapped: every proof verifies, but the
    // swapped leaf is not before its right neighbour.
    let honest = batch(&[]);
    let mut leaves = honest.leaves().to_vec();
    leaves.swap(4, 5);
    let tree = MerkleTree::from_leaf_hashes(leaves.iter().map(Leaf::hash).collect());
    let mut body = honest.receipt().body.clone();
    body.integrity.merkle_root = tree.root();
    let receipt = body.sign(&operator_key()).unwrap();
    let case = Case::new("v2-order", &receipt);
    let proved = |i: usize| LeafProof {
        leaf: leaves[i],
        proof: tree.proof(i as u64).unwrap(),
    };
    let answer = AuditAnswer {
        leaf: proved(4),
        next: Some(proved(5)),
    };
    let file = case.proofs("swapped.json", &answers_json(&[answer]));
    let out = case.verify(&["--proofs", &file, "--json"]);
    let r = assert_fails(&out, "leaves_out_of_order", 30);
    assert_eq!(r["message"], "leaf 4 is not strictly before the next leaf");

    // And in an audit that samples every leaf.
    let n = receipt.body.integrity.leaf_count;
    let seed = [9u8; 32];
    let sample = AuditSample::new(&seed, &tree.root(), n, n);
    let answers: Vec<AuditAnswer> = sample
        .indices()
        .iter()
        .map(|i| {
            let i = usize::try_from(*i).unwrap();
            AuditAnswer {
                leaf: proved(i),
                next: (i + 1 < leaves.len()).then(|| proved(i + 1)),
            }
        })
        .collect();
    let file = case.proofs("swapped-audit.json", &answers_json(&answers));
    let out = case.verify(&["--proofs", &file, "--seed", &hex::encode(seed), "--json"]);
    assert_fails(&out, "leaves_out_of_order", 30);
}

/// A tokens file in the minimal form: `{"tokens":[{"ticket_id","token"}]}`.
fn minimal_tokens(dir: &Path, name: &str, tokens: &[&Vec<u8>]) -> String {
    let entries: Vec<Value> = tokens
        .iter()
        .map(|t| json!({"ticket_id": hex::encode(tolldns_tickets::ticket_id(t)), "token": b64(t)}))
        .collect();
    write_file(
        dir,
        name,
        json!({ "tokens": entries }).to_string().as_bytes(),
    )
}

#[test]
fn receipt_verify_checks_toll_ticket_tokens() {
    let (issuer, tokens) = issued();
    let tickets = ticket_ids();
    let batch = batch(&tickets);
    let receipt = batch.receipt();
    let case = Case::new("v2-tokens", receipt);
    let n = receipt.body.integrity.leaf_count;
    let seed = [0x17u8; 32];
    let seed_hex = hex::encode(seed);
    let sample = AuditSample::new(&seed, &receipt.body.integrity.merkle_root, n, n);
    let proofs = case.proofs(
        "proofs.json",
        &answers_json(&batch.answer(&sample).unwrap()),
    );
    let audit = |extra: &[&str]| {
        let mut args = vec![
            "--proofs",
            proofs.as_str(),
            "--seed",
            seed_hex.as_str(),
            "--json",
        ];
        args.extend_from_slice(extra);
        case.verify(&args)
    };

    // No token source: ticketed leaves cannot count.
    assert_fails(&audit(&[]), "ticket_not_checked", 33);

    // The test/offline mode takes every token as valid, and says so.
    let out = audit(&["--unchecked-tickets"]);
    assert_exit(&out, 0);
    assert!(stderr_of(&out).contains("warning: --unchecked-tickets"));
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["tickets"], "unchecked");
    assert_eq!(r["audit"]["ticketed"], 41);
    assert_eq!(r["ticketed_leaf_count"], 41);

    // A `tolldns ticket fetch` tokens file: its key and challenge are used.
    let mut file = tolldns::tokens::Tokens::new(
        "http://127.0.0.1:8080".to_owned(),
        ISSUER_NAME.to_owned(),
        TOKEN_DEPLOYMENT.to_owned(),
        issuer.public().clone(),
    );
    for t in tokens {
        let token = tolldns_tickets::Token::from_bytes(t).unwrap();
        file.tokens.push(tolldns::tokens::StoredToken::new(&token));
    }
    let fetched = case.dir.join("fetched.json");
    file.save(&fetched).unwrap();
    let out = audit(&["--tokens", fetched.to_str().unwrap()]);
    assert_exit(&out, 0);
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["tickets"], "tokens");
    assert_eq!(r["audit"]["ticketed"], 41);

    // The minimal form with the issuer key and challenge as options.
    let key = issuer_key_b64();
    let all = minimal_tokens(&case.dir, "all.json", &tokens.iter().collect::<Vec<_>>());
    let challenge = [
        "--issuer-key",
        key.as_str(),
        "--issuer-name",
        ISSUER_NAME,
        "--token-deployment",
        TOKEN_DEPLOYMENT,
    ];
    assert_exit(
        &audit(&[&["--tokens", all.as_str()][..], &challenge].concat()),
        0,
    );
    // A ticket without a token.
    let two = minimal_tokens(&case.dir, "two.json", &[&tokens[0], &tokens[1]]);
    assert_fails(
        &audit(&[&["--tokens", two.as_str()][..], &challenge].concat()),
        "ticket_not_redeemed",
        34,
    );
    // Tokens bound to another challenge, or listed under another ticket, do not verify.
    let wrong = [
        "--issuer-key",
        key.as_str(),
        "--issuer-name",
        ISSUER_NAME,
        "--token-deployment",
        "elsewhere",
    ];
    assert_fails(
        &audit(&[&["--tokens", all.as_str()][..], &wrong].concat()),
        "token_invalid",
        35,
    );
    let swapped = write_file(
        &case.dir,
        "swapped.json",
        json!({"tokens": [
            {"ticket_id": hex::encode(tickets[0]), "token": b64(&tokens[1])},
            {"ticket_id": hex::encode(tickets[1]), "token": b64(&tokens[0])},
            {"ticket_id": hex::encode(tickets[2]), "token": b64(&tokens[2])},
        ]})
        .to_string()
        .as_bytes(),
    );
    assert_fails(
        &audit(&[&["--tokens", swapped.as_str()][..], &challenge].concat()),
        "token_invalid",
        35,
    );
    // Bad input: no issuer key for a minimal file, a malformed file, both token modes.
    let out = audit(&["--tokens", all.as_str()]);
    assert_exit(&out, 2);
    assert!(stderr_of(&out).contains("--issuer-key: --tokens needs the issuer's key"));
    let junk = write_file(
        &case.dir,
        "junk.json",
        br#"{"tokens": [{"ticket_id": "zz", "token": "AA"}]}"#,
    );
    let out = audit(&[&["--tokens", junk.as_str()][..], &challenge].concat());
    assert_exit(&out, 2);
    assert!(stderr_of(&out).contains("tokens[0].ticket_id: not 32 hex characters"));
    let out = audit(&["--tokens", all.as_str(), "--unchecked-tickets"]);
    assert_exit(&out, 2);

    // A deployment that requires tickets refuses an unticketed leaf.
    let plain = self::batch(&[]);
    let case = Case::new("v2-require", plain.receipt());
    let sample = AuditSample::new(&seed, &plain.receipt().body.integrity.merkle_root, 41, 5);
    let file = case.proofs("p.json", &answers_json(&plain.answer(&sample).unwrap()));
    let out = case.verify(&[
        "--proofs",
        &file,
        "--seed",
        &seed_hex,
        "--k",
        "5",
        "--require-tickets",
        "--json",
    ]);
    assert_fails(&out, "unticketed_leaf", 36);
}

// ---------------------------------------------------------------------------------------------
// The audit API

/// A stand-in for the miner's audit API over one batch.
struct MinerDouble {
    batch: ClosedBatch,
    id: [u8; 32],
    auditors: Vec<ed25519_dalek::VerifyingKey>,
    tokens: HashMap<[u8; 16], Vec<u8>>,
    nonces: Mutex<HashSet<[u8; 16]>>,
    /// Answer the next audit request with `429` first (to exercise the retry).
    busy_once: Mutex<bool>,
}

/// The batch id that [`MinerDouble`] answers with the batch's receipt although it is not its
/// id (a miner serving another receipt than asked).
const ALIAS_ID: [u8; 32] = [0xee; 32];

fn reply(status: u16, body: String) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body)))
        .unwrap()
}

fn error(status: u16, message: &str) -> Response<Full<Bytes>> {
    reply(status, json!({ "error": message }).to_string())
}

impl MinerDouble {
    fn handle(&self, req: &Request<hyper::body::Incoming>) -> Response<Full<Bytes>> {
        let path = req.uri().path().to_owned();
        let path_and_query = req.uri().path_and_query().unwrap().as_str().to_owned();
        let query = req.uri().query().unwrap_or("").to_owned();
        let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
        let receipt = self.batch.receipt();
        let operator = receipt.body.operator_id.as_bytes();
        let is_batch = |id: &str| id == hex::encode(self.id) || id == hex::encode(ALIAS_ID);
        if let ["v1", "batches", id] = segments.as_slice() {
            return if is_batch(id) {
                reply(200, receipt.to_json())
            } else {
                error(404, "no such batch")
            };
        }
        // Every other endpoint is an auditor's.
        let Some(a) = req
            .headers()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|h| auditor::parse_authorization(h).ok())
        else {
            return error(401, "auditor signature required");
        };
        if !self.auditors.contains(&a.key) {
            return error(403, "unknown auditor key");
        }
        let now = u64::try_from(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_millis(),
        )
        .unwrap();
        if now.abs_diff(a.timestamp_ms) > 300_000 {
            return error(401, "stale or future timestamp");
        }
        if a.verify(operator, "GET", &path_and_query).is_err() {
            return error(401, "bad signature");
        }
        if !self.nonces.lock().unwrap().insert(a.nonce) {
            return error(401, "replayed nonce");
        }
        let param = |name: &str| {
            query
                .split('&')
                .filter_map(|kv| kv.split_once('='))
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_owned())
        };
        match segments.as_slice() {
            ["v1", "batches", id, "audit"] if *id == hex::encode(self.id) => {
                if std::mem::take(&mut *self.busy_once.lock().unwrap()) {
                    let mut r = error(429, "audit rate or concurrency limit for this auditor");
                    r.headers_mut().insert("retry-after", "1".parse().unwrap());
                    return r;
                }
                let mut seed = [0u8; 32];
                hex::decode_to_slice(param("seed").unwrap(), &mut seed).unwrap();
                let k: u64 = param("k").unwrap().parse().unwrap();
                let n = receipt.body.integrity.leaf_count;
                let sample = AuditSample::new(&seed, &receipt.body.integrity.merkle_root, n, k);
                reply(
                    200,
                    answers_json(&self.batch.answer(&sample).unwrap()).to_string(),
                )
            }
            ["v1", "batches", id, "ticket", ticket] if *id == hex::encode(self.id) => {
                let mut t = [0u8; 16];
                hex::decode_to_slice(ticket, &mut t).unwrap();
                let proofs: Vec<Value> = self
                    .batch
                    .ticket_leaves(&t)
                    .iter()
                    .map(proof_json)
                    .collect();
                let token = self.tokens.get(&t).map(|b| b64(b));
                reply(
                    200,
                    json!({"ticket": hex::encode(t), "proofs": proofs, "token": token}).to_string(),
                )
            }
            ["v1", "batches", _, ..] => error(404, "no such batch"),
            ["v1", "name-key", epoch] => {
                if epoch.parse::<u64>() != Ok(EPOCH) {
                    return error(404, "no name key for this epoch");
                }
                let (enc, ciphertext) =
                    auditor::seal_name_key(&a.key, operator, EPOCH, &a.nonce, &name_key().0)
                        .unwrap();
                reply(
                    200,
                    json!({
                        "epoch": EPOCH,
                        "suite": auditor::NAME_KEY_HPKE_SUITE,
                        "enc": hex::encode(enc),
                        "ciphertext": hex::encode(ciphertext),
                        "commitment": hex::encode(name_key().commitment()),
                    })
                    .to_string(),
                )
            }
            ["v1", "tokens", id] => {
                let mut t = [0u8; 16];
                hex::decode_to_slice(id, &mut t).unwrap();
                match self.tokens.get(&t) {
                    Some(token) => reply(
                        200,
                        json!({"ticket_id": id, "token": b64(token), "window_id": 29_333_335, "redeemed_ms": WINDOW_START})
                            .to_string(),
                    ),
                    None => error(404, "no such token"),
                }
            }
            _ => error(404, "not found"),
        }
    }
}

/// Serves `miner` over HTTP/1.1 on 127.0.0.1; returns the runtime and the origin.
fn serve(miner: Arc<MinerDouble>) -> (tokio::runtime::Runtime, String) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let listener = rt.block_on(TcpListener::bind("127.0.0.1:0")).unwrap();
    let addr = listener.local_addr().unwrap();
    rt.spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let miner = Arc::clone(&miner);
            tokio::spawn(async move {
                let handler = hyper::service::service_fn(move |req| {
                    let miner = Arc::clone(&miner);
                    async move { Ok::<_, Infallible>(miner.handle(&req)) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(tcp), handler)
                    .await;
            });
        }
    });
    (rt, format!("http://{addr}"))
}

/// An auditor key file (mode 0600).
fn auditor_file(dir: &Path, name: &str, seed: u8) -> (String, SigningKey) {
    let key = SigningKey::from_bytes(&[seed; 32]);
    let path = dir.join(name);
    tolldns_service::keyfile::write(&path, &key, false).unwrap();
    (path.to_str().unwrap().to_owned(), key)
}

#[test]
fn receipt_audit_name_key_and_ticket_against_a_miner_double() {
    let dir = scratch_dir("audit-api");
    let (_, tokens) = issued();
    let tickets = ticket_ids();
    // Two of every three leaves ticketed; the miner keeps the first two tokens only.
    let batch = batch(&[tickets[0], [0; 16], tickets[1]]);
    let receipt = batch.receipt().clone();
    let id = batch_id(&receipt);
    let (auditor_path, auditor) = auditor_file(&dir, "auditor.json", 0x33);
    let (stranger_path, _) = auditor_file(&dir, "stranger.json", 0x44);
    let miner = Arc::new(MinerDouble {
        batch,
        id,
        auditors: vec![auditor.verifying_key()],
        tokens: [
            (tickets[0], tokens[0].clone()),
            (tickets[1], tokens[1].clone()),
        ]
        .into_iter()
        .collect(),
        nonces: Mutex::new(HashSet::new()),
        busy_once: Mutex::new(true),
    });
    let (rt, api) = serve(Arc::clone(&miner));
    let id_hex = hex::encode(id);
    let dep = deployment().to_string();
    let received = RECEIVED.to_string();
    let key = issuer_key_b64();
    let seed_hex = hex::encode([0x61u8; 32]);
    let evidence = dir.join("evidence.json");
    let evidence_path = evidence.to_str().unwrap();
    let base = |auditor: &str| {
        vec![
            "--api".to_owned(),
            api.clone(),
            "--auditor-key".to_owned(),
            auditor.to_owned(),
        ]
    };
    let run = |args: Vec<String>| {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        tolldns(&args, "")
    };
    let audit_args = |auditor: &str, batch: &str, extra: &[&str]| {
        let mut args = vec!["receipt".to_owned(), "audit".to_owned()];
        args.extend(base(auditor));
        for a in [
            "--batch",
            batch,
            "--deployment",
            dep.as_str(),
            "--received-ms",
            received.as_str(),
        ] {
            args.push(a.to_owned());
        }
        args.extend(extra.iter().map(|s| (*s).to_owned()));
        args
    };

    // A full audit: tokens fetched from the miner and verified; the first request is refused
    // as busy (429) and retried with a fresh signature.
    let out = run(audit_args(
        &auditor_path,
        &id_hex,
        &[
            "--seed",
            &seed_hex,
            "--k",
            "41",
            "--fetch-tokens",
            "--issuer-key",
            &key,
            "--issuer-name",
            ISSUER_NAME,
            "--token-deployment",
            TOKEN_DEPLOYMENT,
            "--out",
            evidence_path,
            "--json",
        ],
    ));
    assert_exit(&out, 0);
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["valid"], true);
    assert_eq!(r["tickets"], "tokens");
    assert_eq!(r["audit"]["sampled"], 41);
    let ticketed = receipt.body.v2.as_ref().unwrap().ticketed_leaf_count;
    assert_eq!(r["audit"]["ticketed"], ticketed);
    assert!(!*miner.busy_once.lock().unwrap());

    // The evidence re-checks offline with `receipt verify`.
    let e: Value = serde_json::from_str(&std::fs::read_to_string(&evidence).unwrap()).unwrap();
    assert_eq!(e["batch"], id_hex);
    assert_eq!(e["seed"], seed_hex);
    assert_eq!(e["k"], 41);
    assert_eq!(e["received_ms"], RECEIVED);
    assert_eq!(e["tokens"].as_array().unwrap().len(), 2);
    let r_file = write_file(&dir, "r.json", e["receipt"].to_string().as_bytes());
    let p_file = write_file(&dir, "p.json", e["proofs"].to_string().as_bytes());
    let t_file = write_file(
        &dir,
        "t.json",
        json!({"tokens": e["tokens"]}).to_string().as_bytes(),
    );
    let out = tolldns(
        &[
            "receipt",
            "verify",
            &r_file,
            "--proofs",
            &p_file,
            "--seed",
            &seed_hex,
            "--sample-size",
            "41",
            "--deployment",
            &dep,
            "--received-ms",
            &received,
            "--tokens",
            &t_file,
            "--issuer-key",
            &key,
            "--issuer-name",
            ISSUER_NAME,
            "--token-deployment",
            TOKEN_DEPLOYMENT,
        ],
        "",
    );
    assert_exit(&out, 0);

    // A random seed is printed; without a token source the ticketed leaves fail.
    let out = run(audit_args(&auditor_path, &id_hex, &["--k", "41", "--json"]));
    assert!(
        stderr_of(&out).contains("audit seed: "),
        "{}",
        stderr_of(&out)
    );
    assert_fails(&out, "ticket_not_checked", 33);
    let out = run(audit_args(
        &auditor_path,
        &id_hex,
        &["--k", "5", "--unchecked-tickets"],
    ));
    assert_exit(&out, 0);
    assert!(stdout_of(&out).contains("(k = 5): 5 sampled leaves in draw order"));

    // Refusals: an auditor the miner does not know, a batch it does not have; a receipt that
    // is not the batch asked for.
    let out = run(audit_args(&stranger_path, &id_hex, &["--k", "5"]));
    assert_exit(&out, 1);
    assert!(
        stderr_of(&out).contains("refused: the miner answered GET /v1/batches/")
            && stderr_of(&out).contains("with 403 Forbidden"),
        "{}",
        stderr_of(&out)
    );
    let out = run(audit_args(&auditor_path, &"00".repeat(32), &["--k", "5"]));
    assert_exit(&out, 1);
    assert!(stderr_of(&out).contains("404 Not Found"));
    let out = run(audit_args(
        &auditor_path,
        &hex::encode(ALIAS_ID),
        &["--k", "5", "--json"],
    ));
    assert_exit(&out, 1);
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["rule"], "batch_id_mismatch");
    assert_eq!(r["code"], Value::Null);

    // The name key, opened from its HPKE envelope.
    let operator = bs58::encode(receipt.body.operator_id.as_bytes()).into_string();
    let name_key_args = |auditor: &str, epoch: &str, extra: &[&str]| {
        let mut args = vec!["receipt".to_owned(), "name-key".to_owned()];
        args.extend(base(auditor));
        for a in ["--epoch", epoch, "--operator", operator.as_str()] {
            args.push(a.to_owned());
        }
        args.extend(extra.iter().map(|s| (*s).to_owned()));
        args
    };
    let commitment = hex::encode(receipt.body.integrity.name_key_commitment);
    let out = run(name_key_args(
        &auditor_path,
        "7",
        &["--commitment", &commitment],
    ));
    assert_exit(&out, 0);
    assert_eq!(stdout_of(&out), format!("{}\n", hex::encode(name_key().0)));
    let out = run(name_key_args(&auditor_path, "7", &["--json"]));
    assert_exit(&out, 0);
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        r,
        json!({"epoch": 7, "operator": operator, "name_key": hex::encode(name_key().0), "commitment": commitment})
    );
    let out = run(name_key_args(
        &auditor_path,
        "7",
        &["--commitment", &"00".repeat(32)],
    ));
    assert_exit(&out, 1);
    assert!(stderr_of(&out).contains("verification failed: commitment_mismatch: "));
    let out = run(name_key_args(&auditor_path, "8", &[]));
    assert_exit(&out, 1);
    assert!(stderr_of(&out).contains("404 Not Found"));
    // Signed for another operator, the request does not verify at the miner.
    let mut other = name_key_args(&auditor_path, "7", &[]);
    let pos = other.iter().position(|a| a == "--operator").unwrap();
    other[pos + 1] = bs58::encode([9u8; 32]).into_string();
    let out = run(other);
    assert_exit(&out, 1);
    assert!(stderr_of(&out).contains("401 Unauthorized"));

    // Ticket lookups.
    let ticket_args = |ticket: &[u8; 16], extra: &[&str]| {
        let mut args = vec!["receipt".to_owned(), "ticket".to_owned()];
        args.extend(base(&auditor_path));
        let t = hex::encode(ticket);
        for a in [
            "--batch",
            id_hex.as_str(),
            "--ticket",
            t.as_str(),
            "--deployment",
            dep.as_str(),
            "--received-ms",
            received.as_str(),
        ] {
            args.push(a.to_owned());
        }
        args.extend(extra.iter().map(|s| (*s).to_owned()));
        args
    };
    let expected = miner.batch.ticket_leaves(&tickets[0]);
    let indices: Vec<u64> = expected.iter().map(|l| l.proof.leaf_index).collect();
    let count = indices.len();
    assert!(count >= 2);
    let out = run(ticket_args(&tickets[0], &[]));
    assert_exit(&out, 0);
    assert!(
        stdout_of(&out).starts_with(&format!(
            "valid: {count} leaves with ticket {} in batch {id_hex} (indices {indices:?})",
            hex::encode(tickets[0])
        )),
        "{}",
        stdout_of(&out)
    );
    assert!(stdout_of(&out).contains("token: not_checked"));
    let out = run(ticket_args(
        &tickets[0],
        &[
            "--issuer-key",
            &key,
            "--issuer-name",
            ISSUER_NAME,
            "--token-deployment",
            TOKEN_DEPLOYMENT,
            "--json",
        ],
    ));
    assert_exit(&out, 0);
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["leaves"], count);
    assert_eq!(r["indices"], json!(indices));
    assert_eq!(r["token"], "valid");
    assert_eq!(r["receipt"]["receipt_version"], 2);
    let max = (count - 1).to_string();
    let out = run(ticket_args(&tickets[0], &["--max-leaves", &max, "--json"]));
    assert_fails(&out, "ticket_over_quota", 41);
    let min = (count + 1).to_string();
    let out = run(ticket_args(&tickets[0], &["--min-leaves", &min, "--json"]));
    assert_exit(&out, 1);
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["rule"], "ticket_leaves_missing");
    // A ticket the batch does not carry: no leaves, no token.
    let out = run(ticket_args(&[0x99; 16], &[]));
    assert_exit(&out, 0);
    assert!(stdout_of(&out).starts_with("valid: 0 leaves with ticket"));
    assert!(stdout_of(&out).contains("token: absent"));
    drop(rt);
}
