//! `ForgedReceipts`, a test double of a cheating operator's receipt tooling: it re-signs
//! receipts with the cheater's own registered key after (a) replacing the committed leaves by
//! invented ones, or (b) moving a real window under another backend.

use sha2::{Digest as _, Sha256};
use tolldns_receipts::ed25519_dalek::SigningKey;
use tolldns_receipts::tolldns_core::BackendId;
use tolldns_receipts::Receipt;

/// The batch id of a receipt: hex SHA-256 of its canonical bytes.
pub fn batch_id(receipt: &Receipt) -> String {
    Sha256::digest(receipt.to_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The cheater's signing tool.
pub struct ForgedReceipts {
    key: SigningKey,
}

impl ForgedReceipts {
    /// A tool signing with `secret` (the cheater's receipt-signing key).
    pub fn new(secret: [u8; 32]) -> Self {
        Self {
            key: SigningKey::from_bytes(&secret),
        }
    }

    /// (a) `real`'s window with the leaves replaced by `leaves` invented ones, every one
    /// claimed ticketed, under a root nobody can open.
    pub fn invented_leaves(&self, real: &Receipt, leaves: u64) -> Receipt {
        let mut body = real.body.clone();
        let mut root = [0u8; 32];
        root.copy_from_slice(&Sha256::digest(b"invented leaves"));
        body.integrity.merkle_root = root;
        body.integrity.leaf_count = leaves;
        body.service_summary.request_count = leaves;
        body.service_summary.success_count = leaves;
        if let Some(v2) = body.v2.as_mut() {
            v2.ticketed_leaf_count = leaves;
        }
        body.sign(&self.key).expect("the cheater's own key")
    }

    /// (b) `real` re-signed as served under `backend` (another operator's backend id).
    pub fn other_backend(&self, real: &Receipt, backend: &str) -> Receipt {
        let mut body = real.body.clone();
        body.backend_id = BackendId::new(backend).expect("backend id");
        body.sign(&self.key).expect("the cheater's own key")
    }
}
