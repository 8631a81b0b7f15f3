//! Verifying what the audit API serves: in process with tolldns-receipts, and with the
//! `tolldns receipt verify` command when that binary is built next to the miner.

use std::path::{Path, PathBuf};
use std::process::Command;

use tolldns_core::{BackendId, OperatorId, Role, WindowId, WindowLen};
use tolldns_receipts::{
    AuditSample, Leaf, LeafProof, MerkleProof, OperatorRegistry, OperatorStatus, PolicyRegistry,
    Receipt, ReceiptLedger, Verifier,
};

struct AssumeValid;

impl OperatorRegistry for AssumeValid {
    fn operator_status(&self, _: &OperatorId, _: Role, _: WindowId) -> OperatorStatus {
        OperatorStatus::Active
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
}

/// Parses the audit API's proofs JSON.
pub(crate) fn parse_proofs(json: &str) -> Vec<LeafProof> {
    let v: serde_json::Value = serde_json::from_str(json).unwrap();
    v["proofs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| LeafProof {
            leaf: Leaf::from_bytes(&hex::decode(p["leaf_hex"].as_str().unwrap()).unwrap()).unwrap(),
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
        })
        .collect()
}

/// Verifies a receipt and its audit answer with tolldns-receipts; returns the receipt.
pub(crate) fn in_process(
    receipt_json: &str,
    proofs_json: &str,
    seed: &[u8; 32],
    k: u64,
) -> Receipt {
    let receipt = Receipt::from_json(receipt_json).unwrap();
    receipt.verify_signature().unwrap();
    let proofs = parse_proofs(proofs_json);
    let n = receipt.body.integrity.leaf_count;
    let sample = AuditSample::new(seed, &receipt.body.integrity.merkle_root, n, k);
    assert_eq!(proofs.len() as u64, k.min(n));
    Verifier::new(&AssumeValid, &AssumeValid, &AssumeValid)
        .verify_with_audit(&receipt, &sample, &proofs)
        .unwrap();
    receipt
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
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "tolldns receipt verify failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
