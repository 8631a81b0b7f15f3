//! Registries for the verifier, configurable per test.

use std::cell::RefCell;
use std::collections::BTreeSet;

use tolldns_core::{BackendId, OperatorId, Role, WindowId, WindowLen};
use tolldns_receipts::{OperatorRegistry, OperatorStatus, PolicyRegistry, ReceiptLedger};

pub(crate) struct Registry {
    pub(crate) status: OperatorStatus,
}

impl OperatorRegistry for Registry {
    fn operator_status(&self, _: &OperatorId, _: Role, _: WindowId) -> OperatorStatus {
        self.status
    }
}

pub(crate) struct Policies {
    pub(crate) valid: Vec<u32>,
}

impl PolicyRegistry for Policies {
    fn is_valid_policy(&self, v: u32, _: WindowId, _: WindowLen) -> bool {
        self.valid.contains(&v)
    }
}

#[derive(Default)]
pub(crate) struct Ledger {
    pub(crate) seen: RefCell<BTreeSet<([u8; 32], String, u64)>>,
}

impl Ledger {
    pub(crate) fn record(&self, op: &OperatorId, backend: &BackendId, window: WindowId) {
        self.seen
            .borrow_mut()
            .insert((op.to_bytes(), backend.as_str().to_string(), window.get()));
    }
}

impl ReceiptLedger for Ledger {
    fn contains(&self, op: &OperatorId, backend: &BackendId, window: WindowId) -> bool {
        self.seen
            .borrow()
            .contains(&(op.to_bytes(), backend.as_str().to_string(), window.get()))
    }
}

pub(crate) fn active() -> Registry {
    Registry {
        status: OperatorStatus::Active,
    }
}

pub(crate) fn policy7() -> Policies {
    Policies { valid: vec![7] }
}
