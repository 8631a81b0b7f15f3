//! Test doubles of the verifier's outside world (registries, ledger, token lookups),
//! configurable per test.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};

use tolldns_core::{BackendId, DeploymentId, OperatorId, Role, WindowId, WindowLen};
use tolldns_receipts::{
    Deployment, OperatorRegistry, OperatorStatus, PolicyRegistry, Receipt, ReceiptLedger,
    TicketCheck, TicketStatus,
};

/// Operator registry double: one status for every operator, and the backends registered to
/// every operator (`None`: any backend is registered).
pub(crate) struct Registry {
    pub(crate) status: OperatorStatus,
    pub(crate) backends: Option<Vec<String>>,
}

impl OperatorRegistry for Registry {
    fn operator_status(&self, _: &OperatorId, _: Role, _: WindowId) -> OperatorStatus {
        self.status
    }

    fn backend_registered(&self, _: &OperatorId, backend: &BackendId) -> bool {
        self.backends
            .as_ref()
            .is_none_or(|b| b.iter().any(|x| x == backend.as_str()))
    }
}

/// Policy registry double: the valid policy versions, for every window.
pub(crate) struct Policies {
    pub(crate) valid: Vec<u32>,
}

impl PolicyRegistry for Policies {
    fn is_valid_policy(&self, v: u32, _: WindowId, _: WindowLen) -> bool {
        self.valid.contains(&v)
    }
}

/// Receipt ledger double with both semantics: v1 keys `(operator, backend, window)`, and v2
/// time ranges `[start_ms, end_ms)` per operator on any backend (two ranges overlap when each
/// starts before the other ends).
#[derive(Default)]
pub(crate) struct Ledger {
    pub(crate) seen: RefCell<BTreeSet<([u8; 32], String, u64)>>,
    pub(crate) ranges: RefCell<Vec<([u8; 32], u64, u64)>>,
}

impl Ledger {
    /// Record a v1 key.
    pub(crate) fn record(&self, op: &OperatorId, backend: &BackendId, window: WindowId) {
        self.seen
            .borrow_mut()
            .insert((op.to_bytes(), backend.as_str().to_string(), window.get()));
    }

    /// Record an accepted time range of `op`.
    pub(crate) fn record_range(&self, op: &OperatorId, start_ms: u64, end_ms: u64) {
        self.ranges
            .borrow_mut()
            .push((op.to_bytes(), start_ms, end_ms));
    }

    /// Record an accepted receipt the way a verifier does after accepting it.
    pub(crate) fn accept(&self, r: &Receipt) {
        let b = &r.body;
        self.record(&b.operator_id, &b.backend_id, b.window_id);
        let start = b.window_id.start_ms(b.window_len).unwrap();
        let end = b.window_id.end_ms(b.window_len).unwrap();
        self.record_range(&b.operator_id, start, end);
    }
}

impl ReceiptLedger for Ledger {
    fn contains(&self, op: &OperatorId, backend: &BackendId, window: WindowId) -> bool {
        self.seen
            .borrow()
            .contains(&(op.to_bytes(), backend.as_str().to_string(), window.get()))
    }

    fn overlaps(&self, op: &OperatorId, start_ms: u64, end_ms: u64) -> bool {
        self.ranges
            .borrow()
            .iter()
            .any(|(o, s, e)| *o == op.to_bytes() && *s < end_ms && start_ms < *e)
    }
}

/// Token-lookup test double standing in for the miner's `GET /v1/tokens/{id}` checked against
/// the issuer's keys: tickets it was told about have that status, every other ticket is
/// [`TicketStatus::Unknown`] (no token could be obtained).
#[derive(Default)]
pub(crate) struct TicketCheckDouble {
    pub(crate) known: BTreeMap<[u8; 16], TicketStatus>,
}

impl TicketCheckDouble {
    /// Every ticket of `tickets` has a valid token.
    pub(crate) fn valid(tickets: impl IntoIterator<Item = [u8; 16]>) -> Self {
        Self {
            known: tickets
                .into_iter()
                .map(|t| (t, TicketStatus::Valid))
                .collect(),
        }
    }
}

impl TicketCheck for TicketCheckDouble {
    fn ticket_status(&self, ticket: &[u8; 16]) -> TicketStatus {
        self.known
            .get(ticket)
            .copied()
            .unwrap_or(TicketStatus::Unknown)
    }
}

/// Token-lookup test double for which every token verifies.
pub(crate) struct AcceptAllTickets;

impl TicketCheck for AcceptAllTickets {
    fn ticket_status(&self, _: &[u8; 16]) -> TicketStatus {
        TicketStatus::Valid
    }
}

pub(crate) fn active() -> Registry {
    Registry {
        status: OperatorStatus::Active,
        backends: Some(vec!["edge-ingress".to_string()]),
    }
}

pub(crate) fn policy7() -> Policies {
    Policies { valid: vec![7] }
}

/// The deployment of the v2 vectors: score program `0xd1…`, cluster genesis `0xd2…`.
pub(crate) fn deployment_id() -> DeploymentId {
    DeploymentId::derive(&[0xd1; 32], &[0xd2; 32])
}

/// The same program on another cluster (another network that may share the operator's key).
pub(crate) fn other_deployment_id() -> DeploymentId {
    DeploymentId::derive(&[0xd1; 32], &[0xd3; 32])
}

/// The vectors' deployment: 60-second windows, the default arrival bound.
pub(crate) fn deployment() -> Deployment {
    Deployment::new(deployment_id(), WindowLen::new(60).unwrap())
}
