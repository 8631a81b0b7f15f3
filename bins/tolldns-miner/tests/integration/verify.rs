//! Verifying what the audit API serves: in process with tolldns-receipts, and with the
//! `tolldns receipt verify` command when that binary is built next to the miner.

use std::path::{Path, PathBuf};
use std::process::Command;

use tolldns_core::{BackendId, DeploymentId, OperatorId, Role, WindowId, WindowLen};
use tolldns_receipts::{
    AuditAnswer, AuditReport, AuditSample, Deployment, Leaf, LeafProof, MerkleProof,
    OperatorRegistry, OperatorStatus, PolicyRegistry, Receipt, ReceiptLedger, TicketCheck,
    TicketStatus, Verifier,
};

struct AssumeValid;

impl OperatorRegistry for AssumeValid {
    fn operator_status(&self, _: &OperatorId, _: Role, _: WindowId) -> OperatorStatus {
        OperatorStatus::Active
    }
    fn backend_registered(&self, _: &OperatorId, b: &BackendId) -> bool {
        b.as_str() == "edge-ingress"
    }
}
impl PolicyRegistry for AssumeValid {
    fn is_valid_policy(&self, v: u32, _: WindowId, _: WindowLen) -> bool {
        v == 1
    }
}
impl ReceiptLedger for AssumeValid {
    fn contains(&self, _: &OperatorId, _: &BackendId, _: WindowId) -> bool {
        false
    }
    fn overlaps(&self, _: &OperatorId, _: u64, _: u64) -> bool {
        false
    }
}

/// A test double for token lookups: every ticket in `valid` has a verified token.
pub(crate) struct KnownTickets(pub(crate) Vec<[u8; 16]>);

impl TicketCheck for KnownTickets {
    fn ticket_status(&self, ticket: &[u8; 16]) -> TicketStatus {
        if self.0.contains(ticket) {
            TicketStatus::Valid
        } else {
            TicketStatus::Unknown
        }
    }
}

fn leaf_proof(p: &serde_json::Value) -> LeafProof {
    LeafProof {
        leaf: Leaf::from_bytes_any(&hex::decode(p["leaf_hex"].as_str().unwrap()).unwrap()).unwrap(),
        proof: MerkleProof {
            leaf_index: p["leaf_index"].as_u64().unwrap(),
            tree_size: p["tree_size"].as_u64().unwrap(),
            path: p["path"]
                .as_array()
                .unwrap()
                .iter()
                .map(|h| {
                    let mut a = [0u8; 32];
                    hex::decode_to_slice(h.as_str().unwrap(), &mut a).unwrap();
                    a
                })
                .collect(),
        },
    }
}

/// Parses a list of proofs (`{"proofs":[…]}`, as the ticket lookup serves them).
pub(crate) fn parse_proofs(json: &str) -> Vec<LeafProof> {
    let v: serde_json::Value = serde_json::from_str(json).unwrap();
    v["proofs"]
        .as_array()
        .unwrap()
        .iter()
        .map(leaf_proof)
        .collect()
}

/// Parses the audit API's answers JSON (each proof with its right neighbour).
pub(crate) fn parse_answers(json: &str) -> Vec<AuditAnswer> {
    let v: serde_json::Value = serde_json::from_str(json).unwrap();
    v["proofs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| AuditAnswer {
            leaf: leaf_proof(p),
            next: (!p["next"].is_null()).then(|| leaf_proof(&p["next"])),
        })
        .collect()
}

/// Verifies a receipt and its audit answer with tolldns-receipts (v2 rules for the local
/// deployment with 2-second windows, arrival now, ticketed leaves' tokens as `tickets`
/// says); returns the receipt and what the audit saw.
pub(crate) fn in_process_with(
    receipt_json: &str,
    answers_json: &str,
    seed: &[u8; 32],
    k: u64,
    tickets: &dyn TicketCheck,
) -> (Receipt, AuditReport) {
    in_process_windows(
        receipt_json,
        answers_json,
        seed,
        k,
        tickets,
        WindowLen::new(2).unwrap(),
    )
}

/// [`in_process_with`] on a deployment with windows of `window_len` (the test configurations
/// use 2 s).
pub(crate) fn in_process_windows(
    receipt_json: &str,
    answers_json: &str,
    seed: &[u8; 32],
    k: u64,
    tickets: &dyn TicketCheck,
    window_len: WindowLen,
) -> (Receipt, AuditReport) {
    let receipt = Receipt::from_json(receipt_json).unwrap();
    receipt.verify_signature().unwrap();
    assert_eq!(receipt.body.version(), 2);
    let answers = parse_answers(answers_json);
    let n = receipt.body.integrity.leaf_count;
    let sample = AuditSample::new(seed, &receipt.body.integrity.merkle_root, n, k);
    assert_eq!(answers.len() as u64, k.min(n));
    let deployment = Deployment::new(DeploymentId::local(), window_len);
    let report = Verifier::new(deployment, &AssumeValid, &AssumeValid, &AssumeValid)
        .with_tickets(tickets)
        .verify_with_audit(&receipt, tolldns_miner::now_ms(), &sample, &answers)
        .unwrap();
    (receipt, report)
}

/// [`in_process_with`] for receipts without ticketed leaves.
pub(crate) fn in_process(
    receipt_json: &str,
    answers_json: &str,
    seed: &[u8; 32],
    k: u64,
) -> Receipt {
    in_process_with(
        receipt_json,
        answers_json,
        seed,
        k,
        &KnownTickets(Vec::new()),
    )
    .0
}

/// The `tolldns` binary built next to the miner, if it has `receipt verify`.
pub(crate) fn tolldns_cli() -> Option<PathBuf> {
    let dir = Path::new(super::support::MINER).parent()?;
    let bin = dir.join("tolldns");
    let ok = Command::new(&bin)
        .args(["receipt", "verify", "--help"])
        .output()
        .is_ok_and(|o| o.status.success());
    if ok {
        Some(bin)
    } else {
        eprintln!(
            "NOTICE: {} with `receipt verify` not built; verified in process only",
            bin.display()
        );
        None
    }
}

/// Verifies with `tolldns receipt verify FILE --proofs FILE --seed HEX --sample-size K`.
pub(crate) fn with_cli(
    bin: &Path,
    dir: &Path,
    receipt_json: &str,
    proofs_json: &str,
    seed: &[u8; 32],
    k: u64,
) {
    let r = dir.join("receipt.json");
    let p = dir.join("proofs.json");
    std::fs::write(&r, receipt_json).unwrap();
    std::fs::write(&p, proofs_json).unwrap();
    let out = Command::new(bin)
        .arg("receipt")
        .arg("verify")
        .arg(&r)
        .arg("--proofs")
        .arg(&p)
        .arg("--seed")
        .arg(hex::encode(seed))
        .arg("--sample-size")
        .arg(k.to_string())
        .arg("--window-secs")
        .arg("2")
        .arg("--unchecked-tickets")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "tolldns receipt verify failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
