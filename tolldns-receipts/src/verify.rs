//! Receipt verification: every rule of the receipt format is its own [`VerifyError`].
//!
//! The lookups a verifier needs from the outside world (is the operator registered and
//! staked, is a backend registered to it, is a policy version valid, which receipts were
//! already accepted, do ticketed leaves' tokens verify) are traits the caller implements.
//! The receipt rules are checked in the order of [`VerifyError`]'s variants (up to
//! `OverlappingReceipt`), the audit rules answer by answer in sample order; the first that
//! fails is returned (docs/RECEIPTS.md §11 gives the exact order). v1 receipts are checked by the v1 rules (`docs/RECEIPTS.md`, appendix), v2
//! receipts by the v2 rules.

use core::fmt;

use tolldns_core::{BackendId, DeploymentId, OperatorId, Role, WindowId, WindowLen};

use crate::audit::{AuditSample, SketchWitnessSample};
use crate::leaf::{Leaf, MAX_RESPONSE_BYTES};
use crate::merkle::{MerkleProof, ProofError};
use crate::receipt::{Receipt, SignatureError};
use crate::stats;
use crate::tags::ReceiptType;

/// An operator's standing for a window, as the caller's registry sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OperatorStatus {
    /// Not registered (or the key is not a registered receipt-signing delegate).
    Unregistered,
    /// Registered, but without the required stake for the window's epoch.
    NotStaked,
    /// Registered and staked: receipts may count.
    Active,
}

/// The operator registry (on-chain accounts, or a watcher's cache of them).
pub trait OperatorRegistry {
    /// The standing of the receipt-signing key `operator` in `role` for `window`.
    fn operator_status(
        &self,
        operator: &OperatorId,
        role: Role,
        window: WindowId,
    ) -> OperatorStatus;

    /// Whether `backend` is registered to the operator whose receipt-signing key is
    /// `operator` (checked for v2 receipts).
    fn backend_registered(&self, operator: &OperatorId, backend: &BackendId) -> bool;
}

/// The policy registry.
pub trait PolicyRegistry {
    /// Whether `policy_version` was valid during `window`.
    fn is_valid_policy(&self, policy_version: u32, window: WindowId, window_len: WindowLen)
    -> bool;
}

/// The receipts already accepted. Verification only reads it; the caller records a receipt
/// after accepting it.
pub trait ReceiptLedger {
    /// v1: whether a receipt for this `(operator, backend, window)` was already accepted.
    fn contains(&self, operator: &OperatorId, backend: &BackendId, window: WindowId) -> bool;

    /// v2: whether an accepted receipt of `operator`, on any backend, covers any instant of
    /// `[start_ms, end_ms)`.
    fn overlaps(&self, operator: &OperatorId, start_ms: u64, end_ms: u64) -> bool;
}

/// What a verifier knows about a ticketed leaf's token (the miner's `GET /v1/tokens/{id}`,
/// checked against the issuer's keys).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TicketStatus {
    /// The token behind the ticket id was found and verifies under an accepted issuer key.
    Valid,
    /// No token could be obtained for the ticket id.
    Unknown,
    /// A token was obtained but does not verify (or does not hash to the ticket id).
    Invalid,
}

/// Token lookups for ticketed leaves.
pub trait TicketCheck {
    /// The status of the token behind `ticket`.
    fn ticket_status(&self, ticket: &[u8; 16]) -> TicketStatus;
}

/// A sampled leaf and its inclusion proof, as an operator returns them to an auditor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeafProof {
    /// The leaf.
    pub leaf: Leaf,
    /// Its audit path.
    pub proof: MerkleProof,
}

/// The answer for one sampled index: the leaf with its proof and, for a v2 receipt, its right
/// neighbour (the leaf at `index + 1`) with its proof; `None` for the last leaf and in v1.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditAnswer {
    /// The sampled leaf.
    pub leaf: LeafProof,
    /// Its right neighbour.
    pub next: Option<LeafProof>,
}

/// The constants of a network that a v2 receipt must match.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Deployment {
    /// The deployment id every v2 receipt must carry.
    pub id: DeploymentId,
    /// The only window length of the deployment.
    pub window_len: WindowLen,
    /// How long after its window ends a receipt may arrive.
    pub max_delay_ms: u64,
    /// Whether every leaf must carry a toll ticket (a sampled unticketed leaf is refused).
    pub require_tickets: bool,
    /// Whether v1 receipts are still accepted (under the v1 rules). Off by default: a v1
    /// receipt carries no deployment, no arrival bound and no order, so a network that
    /// switched to v2 refuses it ([`VerifyError::V1NotAccepted`]).
    pub accept_v1: bool,
    /// The largest share, in thousandths of the ticketed leaves, that may be repeats (the same
    /// answer under the same ticket in the same millisecond, `repeat > 0`); above it a receipt
    /// is refused ([`VerifyError::TooManyRepeats`]). Default 100: honest repeats need one
    /// client to send the same query twice within a millisecond, and a window padded with
    /// copies of its ticketed leaves shows them as repeats. (Unticketed leaves prove nothing
    /// about a client and are not bounded here: an operator could as well invent them.)
    pub max_repeat_permille: u32,
    /// Ticketed repeats every receipt may have whatever its size, so that a small window with
    /// one honest repeat is not refused (default 16). [`VerifyError::TooManyRepeats`] needs
    /// both bounds exceeded.
    pub repeat_allowance: u64,
}

impl Deployment {
    /// The default arrival bound: 10 minutes after the window ends.
    pub const DEFAULT_MAX_DELAY_MS: u64 = 600_000;

    /// The default repeat bound: a tenth of the ticketed leaves.
    pub const DEFAULT_MAX_REPEAT_PERMILLE: u32 = 100;
    /// The default repeat allowance: 16 per receipt.
    pub const DEFAULT_REPEAT_ALLOWANCE: u64 = 16;

    /// A deployment with [`Self::DEFAULT_MAX_DELAY_MS`] and
    /// [`Self::DEFAULT_MAX_REPEAT_PERMILLE`] that accepts unticketed leaves and refuses v1
    /// receipts.
    pub const fn new(id: DeploymentId, window_len: WindowLen) -> Self {
        Self {
            id,
            window_len,
            max_delay_ms: Self::DEFAULT_MAX_DELAY_MS,
            require_tickets: false,
            accept_v1: false,
            max_repeat_permille: Self::DEFAULT_MAX_REPEAT_PERMILLE,
            repeat_allowance: Self::DEFAULT_REPEAT_ALLOWANCE,
        }
    }

    /// Change the repeats every receipt may have whatever its size.
    #[must_use]
    pub const fn with_repeat_allowance(mut self, repeats: u64) -> Self {
        self.repeat_allowance = repeats;
        self
    }

    /// Accept (or refuse) v1 receipts.
    #[must_use]
    pub const fn with_v1(mut self, accept: bool) -> Self {
        self.accept_v1 = accept;
        self
    }

    /// Change the repeat bound (thousandths of the leaves).
    #[must_use]
    pub const fn with_max_repeat_permille(mut self, permille: u32) -> Self {
        self.max_repeat_permille = permille;
        self
    }

    /// Change the arrival bound.
    #[must_use]
    pub const fn with_max_delay_ms(mut self, max_delay_ms: u64) -> Self {
        self.max_delay_ms = max_delay_ms;
        self
    }

    /// Require a toll ticket on every leaf.
    #[must_use]
    pub const fn with_require_tickets(mut self, require: bool) -> Self {
        self.require_tickets = require;
        self
    }
}

/// What an accepted audit saw, for the caller's records (the watcher stores it as evidence).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct AuditReport {
    /// Sampled leaves.
    pub sampled: u64,
    /// Sampled leaves with a ticket (every one verified).
    pub ticketed: u64,
    /// Sampled leaves with a non-zero `repeat`.
    pub repeats: u64,
    /// Neighbours checked for order.
    pub neighbours: u64,
}

/// Checks receipts against the format's rules and the caller's registries.
pub struct Verifier<'a, R, P, L> {
    deployment: Deployment,
    registry: &'a R,
    policy: &'a P,
    ledger: &'a L,
    tickets: Option<&'a dyn TicketCheck>,
    skew_ms: u64,
}

impl<R, P, L> fmt::Debug for Verifier<'_, R, P, L> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Verifier")
            .field("deployment", &self.deployment)
            .field("tickets", &self.tickets.is_some())
            .field("skew_ms", &self.skew_ms)
            .finish_non_exhaustive()
    }
}

impl<'a, R: OperatorRegistry, P: PolicyRegistry, L: ReceiptLedger> Verifier<'a, R, P, L> {
    /// The default tolerance on `timestamp_ms` around the window: 30 seconds.
    pub const DEFAULT_SKEW_MS: u64 = 30_000;

    /// A verifier for `deployment` over the caller's registries, with
    /// [`Self::DEFAULT_SKEW_MS`] and no token lookups (ticketed leaves are then refused by
    /// audits with [`VerifyError::TicketNotChecked`]).
    pub const fn new(
        deployment: Deployment,
        registry: &'a R,
        policy: &'a P,
        ledger: &'a L,
    ) -> Self {
        Self {
            deployment,
            registry,
            policy,
            ledger,
            tickets: None,
            skew_ms: Self::DEFAULT_SKEW_MS,
        }
    }

    /// Change the tolerated clock skew of `timestamp_ms` on both sides of the window.
    #[must_use]
    pub const fn with_skew_ms(mut self, skew_ms: u64) -> Self {
        self.skew_ms = skew_ms;
        self
    }

    /// Check ticketed leaves' tokens through `tickets` during audits.
    #[must_use]
    pub fn with_tickets(mut self, tickets: &'a dyn TicketCheck) -> Self {
        self.tickets = Some(tickets);
        self
    }

    /// The deployment.
    pub const fn deployment(&self) -> &Deployment {
        &self.deployment
    }

    /// Check every rule that needs only the receipt (no leaves). `received_ms` is when the
    /// receipt reached the verifier (a watcher records it at ingest; a third party re-checking
    /// uses the recorded arrival); v2 receipts arriving more than the deployment's
    /// `max_delay_ms` after their window are refused. v1 receipts are checked by the v1 rules
    /// and `received_ms` is not used.
    ///
    /// # Errors
    ///
    /// The first rule that fails, as a [`VerifyError`].
    pub fn verify(&self, receipt: &Receipt, received_ms: u64) -> Result<(), VerifyError> {
        let b = &receipt.body;
        if b.v2.is_none() && !self.deployment.accept_v1 {
            return Err(VerifyError::V1NotAccepted);
        }
        match self
            .registry
            .operator_status(&b.operator_id, b.operator_role, b.window_id)
        {
            OperatorStatus::Active => {}
            OperatorStatus::Unregistered => return Err(VerifyError::UnregisteredOperator),
            OperatorStatus::NotStaked => return Err(VerifyError::OperatorNotStaked),
        }
        receipt.verify_signature().map_err(VerifyError::Signature)?;
        if let Some(v2) = &b.v2 {
            if v2.deployment_id != self.deployment.id {
                return Err(VerifyError::WrongDeployment);
            }
            if b.window_len != self.deployment.window_len {
                return Err(VerifyError::WindowLenNotDeployment {
                    window_len_s: b.window_len.secs(),
                });
            }
            if !self
                .registry
                .backend_registered(&b.operator_id, &b.backend_id)
            {
                return Err(VerifyError::UnregisteredBackend);
            }
        }
        if !self
            .policy
            .is_valid_policy(b.policy_version, b.window_id, b.window_len)
        {
            return Err(VerifyError::InvalidPolicyVersion {
                policy_version: b.policy_version,
            });
        }
        check_counts(receipt, &self.deployment)?;
        let start = b
            .window_id
            .start_ms(b.window_len)
            .map_err(|_| VerifyError::WindowOutOfRange)?;
        let end = b
            .window_id
            .end_ms(b.window_len)
            .map_err(|_| VerifyError::WindowOutOfRange)?;
        let in_window = b
            .window_id
            .contains_with_skew(b.window_len, b.timestamp_ms, self.skew_ms)
            .map_err(|_| VerifyError::WindowOutOfRange)?;
        if !in_window {
            return Err(VerifyError::TimestampOutsideWindow {
                timestamp_ms: b.timestamp_ms,
            });
        }
        if b.v2.is_some() {
            if received_ms.saturating_add(self.skew_ms) < end {
                return Err(VerifyError::ArrivedTooEarly { received_ms });
            }
            if received_ms > end.saturating_add(self.deployment.max_delay_ms) {
                return Err(VerifyError::ArrivedTooLate { received_ms });
            }
            if self.ledger.overlaps(&b.operator_id, start, end) {
                return Err(VerifyError::OverlappingReceipt);
            }
        } else if self
            .ledger
            .contains(&b.operator_id, &b.backend_id, b.window_id)
        {
            return Err(VerifyError::DuplicateReceipt);
        }
        Ok(())
    }

    /// [`Verifier::verify`], then the audit: `answers` must answer `sample` (drawn for this
    /// receipt's root and leaf count) index by index, in the sample's order; every proof must
    /// verify against the receipt's root and every leaf must lie in the receipt's window
    /// (without skew). For a v2 receipt also: every sampled leaf's right neighbour is present
    /// (except after the last leaf), proved, and strictly after it with a consistent `repeat`;
    /// sampled ticketed leaves' tokens verify and lie under the name sketch; unticketed leaves
    /// are refused when the deployment requires tickets; and the sample agrees with the
    /// service summary within the bound of [`crate::stats`].
    ///
    /// # Errors
    ///
    /// The first rule that fails, as a [`VerifyError`].
    pub fn verify_with_audit(
        &self,
        receipt: &Receipt,
        received_ms: u64,
        sample: &AuditSample,
        answers: &[AuditAnswer],
    ) -> Result<AuditReport, VerifyError> {
        self.verify(receipt, received_ms)?;
        self.check_audit(receipt, sample, answers)
    }

    /// The audit rules alone, for a receipt that already passed [`Verifier::verify`].
    ///
    /// # Errors
    ///
    /// The first audit rule that fails, as a [`VerifyError`].
    pub fn check_audit(
        &self,
        receipt: &Receipt,
        sample: &AuditSample,
        answers: &[AuditAnswer],
    ) -> Result<AuditReport, VerifyError> {
        let b = &receipt.body;
        let root = &b.integrity.merkle_root;
        if sample.root() != root || sample.leaf_count() != b.integrity.leaf_count {
            return Err(VerifyError::SampleNotForReceipt);
        }
        if answers.len() != sample.indices().len() {
            return Err(VerifyError::ProofCountMismatch {
                expected: sample.indices().len(),
                actual: answers.len(),
            });
        }
        let mut report = AuditReport::default();
        for (index, a) in sample.indices().iter().copied().zip(answers) {
            if a.leaf.proof.leaf_index != index {
                return Err(VerifyError::ProofForWrongLeaf { index });
            }
            verify_leaf_proof(receipt, &a.leaf)?;
        }
        let Some(v2) = &b.v2 else {
            report.sampled = u64::try_from(answers.len()).unwrap_or(u64::MAX);
            return Ok(report);
        };
        for (index, a) in sample.indices().iter().copied().zip(answers) {
            verify_neighbour(receipt, index, a)?;
            if a.next.is_some() {
                report.neighbours = report.neighbours.saturating_add(1);
            }
            let leaf = &a.leaf.leaf;
            if leaf.repeat > 0 {
                report.repeats = report.repeats.saturating_add(1);
            }
            if leaf.is_ticketed() {
                let (j, rank) = leaf.sketch_cell();
                if v2.name_sketch.register(j) < rank {
                    return Err(VerifyError::SketchUnderstates { index });
                }
                self.check_ticket(&leaf.ticket, index)?;
                report.ticketed = report.ticketed.saturating_add(1);
            } else if self.deployment.require_tickets {
                return Err(VerifyError::UnticketedLeaf { index });
            }
        }
        check_summary(receipt, answers)?;
        report.sampled = u64::try_from(answers.len()).unwrap_or(u64::MAX);
        Ok(report)
    }

    /// The token behind `ticket` (of the leaf at `index`) through the caller's lookup.
    fn check_ticket(&self, ticket: &[u8; 16], index: u64) -> Result<(), VerifyError> {
        match self.tickets.map(|t| t.ticket_status(ticket)) {
            None => Err(VerifyError::TicketNotChecked { index }),
            Some(TicketStatus::Valid) => Ok(()),
            Some(TicketStatus::Unknown) => Err(VerifyError::TicketNotRedeemed { index }),
            Some(TicketStatus::Invalid) => Err(VerifyError::TokenInvalid { index }),
        }
    }

    /// Check the operator's witnesses for the sketch registers drawn by `sample`: for each
    /// drawn register, in order, a ticketed leaf whose cell is exactly `(register, value)`,
    /// proved against the receipt's root and inside its window, with a verified token.
    ///
    /// # Errors
    ///
    /// [`VerifyError::NotV2`] for a v1 receipt, [`VerifyError::SampleNotForReceipt`],
    /// [`VerifyError::ProofCountMismatch`], [`VerifyError::WitnessMismatch`], or the proof
    /// and ticket errors of [`Verifier::check_audit`].
    pub fn check_sketch_witnesses(
        &self,
        receipt: &Receipt,
        sample: &SketchWitnessSample,
        witnesses: &[LeafProof],
    ) -> Result<(), VerifyError> {
        let b = &receipt.body;
        let v2 = b.v2.as_ref().ok_or(VerifyError::NotV2)?;
        if sample.root() != &b.integrity.merkle_root || sample.sketch() != &v2.name_sketch {
            return Err(VerifyError::SampleNotForReceipt);
        }
        if witnesses.len() != sample.registers().len() {
            return Err(VerifyError::ProofCountMismatch {
                expected: sample.registers().len(),
                actual: witnesses.len(),
            });
        }
        for (register, w) in sample.registers().iter().copied().zip(witnesses) {
            let index = w.proof.leaf_index;
            verify_leaf_proof(receipt, w)?;
            let register_u16 = u16::try_from(register).unwrap_or(u16::MAX);
            if !w.leaf.is_ticketed()
                || w.leaf.sketch_cell() != (register, v2.name_sketch.register(register))
            {
                return Err(VerifyError::WitnessMismatch {
                    register: register_u16,
                });
            }
            self.check_ticket(&w.leaf.ticket, index)?;
        }
        Ok(())
    }
}

/// The v2 neighbour rules for the answer `a` to sampled index `index`: the leaf at `index + 1`
/// is given unless `index` is the last leaf, its proof verifies for this receipt, it lies
/// strictly after the sampled leaf ([`Leaf::order`]) and its `repeat` is the sampled leaf's
/// plus one (the same answer) or zero (another answer). [`Verifier::check_audit`] applies it
/// to every answer of a v2 audit; a caller checking answers without a sample uses it directly.
///
/// # Errors
///
/// [`VerifyError::MissingNeighbour`], [`VerifyError::NeighbourForWrongLeaf`],
/// [`VerifyError::InvalidNeighbourProof`], [`VerifyError::LeafOutsideWindow`],
/// [`VerifyError::LeavesOutOfOrder`] or [`VerifyError::RepeatMismatch`].
pub fn verify_neighbour(receipt: &Receipt, index: u64, a: &AuditAnswer) -> Result<(), VerifyError> {
    let last = index.saturating_add(1) >= receipt.body.integrity.leaf_count;
    let next = match (&a.next, last) {
        (None, true) => return Ok(()),
        (Some(_), true) => return Err(VerifyError::NeighbourForWrongLeaf { index }),
        (None, false) => return Err(VerifyError::MissingNeighbour { index }),
        (Some(next), false) => next,
    };
    if next.proof.leaf_index != index.saturating_add(1) {
        return Err(VerifyError::NeighbourForWrongLeaf { index });
    }
    verify_leaf_proof(receipt, next).map_err(|e| match e {
        VerifyError::InvalidProof { error, .. } => {
            VerifyError::InvalidNeighbourProof { index, error }
        }
        VerifyError::ProofForWrongLeaf { .. } => VerifyError::NeighbourForWrongLeaf { index },
        other => other,
    })?;
    let leaf = &a.leaf.leaf;
    if leaf.order(&next.leaf) != core::cmp::Ordering::Less {
        return Err(VerifyError::LeavesOutOfOrder { index });
    }
    let expected = if leaf.same_answer(&next.leaf) {
        leaf.repeat.checked_add(1)
    } else {
        Some(0)
    };
    if expected != Some(next.leaf.repeat) {
        return Err(VerifyError::RepeatMismatch { index });
    }
    Ok(())
}

fn check_counts(receipt: &Receipt, deployment: &Deployment) -> Result<(), VerifyError> {
    let b = &receipt.body;
    let s = &b.service_summary;
    let request = u128::from(s.request_count);
    let answered = u128::from(s.success_count).saturating_add(u128::from(s.error_count));
    if answered > request {
        return Err(VerifyError::SuccessPlusErrorExceedsRequests);
    }
    if s.served_from_cache_count > s.request_count {
        return Err(VerifyError::CacheExceedsRequests);
    }
    if !s.work_class_counts.is_empty() && s.work_class_counts.total() != request {
        return Err(VerifyError::WorkClassSumMismatch);
    }
    if s.error_class_counts.total() > u128::from(s.error_count) {
        return Err(VerifyError::ErrorClassSumExceedsErrors);
    }
    let leaves = b.integrity.leaf_count;
    match b.receipt_type {
        ReceiptType::Batch => {
            if leaves != s.request_count {
                return Err(VerifyError::LeafCountMismatch);
            }
        }
        ReceiptType::PerRequest => {
            if leaves != 1 || s.request_count != 1 {
                return Err(VerifyError::PerRequestNotSingle);
            }
        }
    }
    if let Some(v2) = &b.v2 {
        let most = request.saturating_mul(u128::from(MAX_RESPONSE_BYTES));
        if u128::from(s.bytes_served_total) > most {
            return Err(VerifyError::BytesExceedMaximum);
        }
        if v2.ticketed_leaf_count > leaves {
            return Err(VerifyError::TicketedExceedsLeaves);
        }
        if (v2.ticketed_leaf_count == 0) != v2.name_sketch.is_empty() {
            return Err(VerifyError::SketchInconsistent);
        }
        if v2.ticketed_repeat_count > v2.ticketed_leaf_count {
            return Err(VerifyError::RepeatsExceedTicketed);
        }
        let repeats = u128::from(v2.ticketed_repeat_count).saturating_mul(1_000);
        let ticketed = u128::from(v2.ticketed_leaf_count);
        if repeats > ticketed.saturating_mul(u128::from(deployment.max_repeat_permille))
            && v2.ticketed_repeat_count > deployment.repeat_allowance
        {
            return Err(VerifyError::TooManyRepeats);
        }
    }
    Ok(())
}

/// The summary statistics an audit compares with the sample.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SummaryStat {
    /// `success_count / request_count`.
    Success,
    /// `error_count / request_count`.
    Error,
    /// `served_from_cache_count / request_count`.
    Cache,
    /// `ticketed_leaf_count / leaf_count`.
    Ticketed,
    /// `ticketed_repeat_count / leaf_count` (ticketed leaves with `repeat > 0`).
    Repeat,
    /// `bytes_served_total / request_count`.
    MeanBytes,
}

impl SummaryStat {
    /// A stable snake_case name.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::Error => "error",
            Self::Cache => "cache",
            Self::Ticketed => "ticketed",
            Self::Repeat => "repeat",
            Self::MeanBytes => "mean_bytes",
        }
    }
}

fn check_summary(receipt: &Receipt, answers: &[AuditAnswer]) -> Result<(), VerifyError> {
    let b = &receipt.body;
    let s = &b.service_summary;
    let k = u64::try_from(answers.len()).unwrap_or(u64::MAX);
    let count = |f: fn(&Leaf) -> bool| -> u64 {
        answers
            .iter()
            .filter(|a| f(&a.leaf.leaf))
            .count()
            .try_into()
            .unwrap_or(u64::MAX)
    };
    let n = s.request_count;
    let ticketed = b.v2.as_ref().map_or(0, |v| v.ticketed_leaf_count);
    let repeats = b.v2.as_ref().map_or(0, |v| v.ticketed_repeat_count);
    let shares: [(SummaryStat, u64, u64); 5] = [
        (
            SummaryStat::Success,
            count(|l| l.rcode_class.error_class().is_none()),
            s.success_count,
        ),
        (
            SummaryStat::Error,
            count(|l| l.rcode_class.error_class().is_some()),
            s.error_count,
        ),
        (
            SummaryStat::Cache,
            count(|l| l.flags.cache_hit),
            s.served_from_cache_count,
        ),
        (SummaryStat::Ticketed, count(Leaf::is_ticketed), ticketed),
        (
            SummaryStat::Repeat,
            count(|l| l.repeat != 0 && l.is_ticketed()),
            repeats,
        ),
    ];
    for (stat, x, claimed) in shares {
        if stats::share_alarm(x, k, claimed, n) {
            return Err(VerifyError::SummaryDisagrees { stat });
        }
    }
    let bytes = answers.iter().fold(0u64, |acc, a| {
        acc.saturating_add(u64::from(a.leaf.leaf.response_bytes))
    });
    if stats::mean_alarm(bytes, k, s.bytes_served_total, n) {
        return Err(VerifyError::SummaryDisagrees {
            stat: SummaryStat::MeanBytes,
        });
    }
    Ok(())
}

/// The audit rules for one proved leaf that need no sample: the proof is for this receipt's
/// tree (its `tree_size` is the signed `leaf_count`), it verifies against the receipt's root
/// (with the leaf hash of the receipt's version), and the leaf's timestamp lies in the
/// receipt's window. [`Verifier::verify_with_audit`] applies this to every sampled proof
/// after checking that the indices are the sample's.
///
/// # Errors
///
/// [`VerifyError::ProofForWrongLeaf`], [`VerifyError::InvalidProof`],
/// [`VerifyError::LeafOutsideWindow`], or [`VerifyError::WindowOutOfRange`] when the window's
/// bounds do not fit in 64-bit milliseconds.
pub fn verify_leaf_proof(receipt: &Receipt, lp: &LeafProof) -> Result<(), VerifyError> {
    let b = &receipt.body;
    let index = lp.proof.leaf_index;
    if lp.proof.tree_size != b.integrity.leaf_count {
        return Err(VerifyError::ProofForWrongLeaf { index });
    }
    if b.v2.is_none() && lp.leaf.repeat != 0 {
        return Err(VerifyError::InvalidProof {
            index,
            error: ProofError::RootMismatch,
        });
    }
    lp.proof
        .verify(&lp.leaf.hash_for(b.version()), &b.integrity.merkle_root)
        .map_err(|error| VerifyError::InvalidProof { index, error })?;
    let start = b
        .window_id
        .start_ms(b.window_len)
        .map_err(|_| VerifyError::WindowOutOfRange)?;
    let end = b
        .window_id
        .end_ms(b.window_len)
        .map_err(|_| VerifyError::WindowOutOfRange)?;
    if lp.leaf.timestamp_ms < start || lp.leaf.timestamp_ms >= end {
        return Err(VerifyError::LeafOutsideWindow { index });
    }
    Ok(())
}

/// The leaves of one ticket, as `GET /v1/batches/{id}/ticket/{ticket}` returns them: check
/// that every proof verifies, every leaf carries `ticket` and lies in the window, the
/// indices strictly ascend, and that the number of leaves is at most `max_leaves` (the
/// token's query quota). Returns the number of leaves.
///
/// The tree is ordered by time, not by ticket, so a lookup cannot prove it is complete: a
/// verifier cross-checks that every sampled leaf carrying `ticket` (from its audits) is in the
/// lookup's answer.
///
/// A watcher that sent `m` probes under `ticket` in this window expects at least `m` leaves.
///
/// # Errors
///
/// A leaf with another ticket is [`VerifyError::TicketLeafMismatch`], indices out of order or repeated are
/// [`VerifyError::LeavesOutOfOrder`], too many leaves [`VerifyError::TicketOverQuota`], and the
/// proof errors of [`verify_leaf_proof`].
pub fn verify_ticket_leaves(
    receipt: &Receipt,
    ticket: &[u8; 16],
    leaves: &[LeafProof],
    max_leaves: u64,
) -> Result<u64, VerifyError> {
    let mut prev: Option<u64> = None;
    for lp in leaves {
        let index = lp.proof.leaf_index;
        verify_leaf_proof(receipt, lp)?;
        if lp.leaf.ticket != *ticket {
            return Err(VerifyError::TicketLeafMismatch { index });
        }
        if prev.is_some_and(|p| p >= index) {
            return Err(VerifyError::LeavesOutOfOrder { index });
        }
        prev = Some(index);
    }
    let n = u64::try_from(leaves.len()).unwrap_or(u64::MAX);
    if n > max_leaves {
        return Err(VerifyError::TicketOverQuota { leaves: n });
    }
    Ok(n)
}

/// A rule a receipt breaks. The receipt rules ([`Verifier::verify`]) are checked in the order
/// of the variants up to [`VerifyError::OverlappingReceipt`]; audit rules are checked answer by
/// answer, in sample order (docs/RECEIPTS.md gives the exact order). [`VerifyError::name`] and
/// [`VerifyError::code`] are stable; new rules get new codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum VerifyError {
    /// A v1 receipt, and the deployment no longer accepts v1.
    V1NotAccepted,
    /// The signing key is not a registered operator (or delegate) for the role.
    UnregisteredOperator,
    /// The operator is registered but not staked for the window's epoch.
    OperatorNotStaked,
    /// The signature does not verify strictly under `operator_id`.
    Signature(SignatureError),
    /// v2: the receipt's `deployment_id` is not the verifier's deployment.
    WrongDeployment,
    /// v2: `window_len_s` is not the deployment's window length.
    WindowLenNotDeployment {
        /// The receipt's window length in seconds.
        window_len_s: u32,
    },
    /// v2: `backend_id` is not registered to the operator.
    UnregisteredBackend,
    /// The policy version was not valid for the window.
    InvalidPolicyVersion {
        /// The receipt's policy version.
        policy_version: u32,
    },
    /// `success_count + error_count > request_count`.
    SuccessPlusErrorExceedsRequests,
    /// `served_from_cache_count > request_count`.
    CacheExceedsRequests,
    /// Work-class counts are present and do not sum to `request_count`.
    WorkClassSumMismatch,
    /// Error-class counts sum to more than `error_count`.
    ErrorClassSumExceedsErrors,
    /// A batch receipt's `leaf_count` differs from its `request_count`.
    LeafCountMismatch,
    /// A per-request receipt does not have exactly one request and one leaf.
    PerRequestNotSingle,
    /// v2: `bytes_served_total > 65535 × request_count`.
    BytesExceedMaximum,
    /// v2: `ticketed_leaf_count > leaf_count`.
    TicketedExceedsLeaves,
    /// v2: the name sketch is empty although leaves are ticketed, or not empty although none is.
    SketchInconsistent,
    /// v2: `ticketed_repeat_count > ticketed_leaf_count`.
    RepeatsExceedTicketed,
    /// v2: more ticketed repeats than the deployment's `max_repeat_permille` of the ticketed
    /// leaves and more than its `repeat_allowance`.
    TooManyRepeats,
    /// The window's bounds do not fit in 64-bit milliseconds.
    WindowOutOfRange,
    /// `timestamp_ms` lies outside the window widened by the skew.
    TimestampOutsideWindow {
        /// The receipt's timestamp.
        timestamp_ms: u64,
    },
    /// v2: the receipt arrived before its window ended (less the skew): it claims work not
    /// yet done.
    ArrivedTooEarly {
        /// When it arrived.
        received_ms: u64,
    },
    /// v2: the receipt arrived more than the deployment's `max_delay_ms` after its window.
    ArrivedTooLate {
        /// When it arrived.
        received_ms: u64,
    },
    /// v1: a receipt for this `(operator, backend, window)` was already accepted.
    DuplicateReceipt,
    /// v2: an accepted receipt of the operator (any backend) overlaps this window.
    OverlappingReceipt,
    /// The audit sample was drawn for another root, leaf count or sketch.
    SampleNotForReceipt,
    /// Not one answer per sampled index (or witness per drawn register).
    ProofCountMismatch {
        /// Sampled indices.
        expected: usize,
        /// Answers given.
        actual: usize,
    },
    /// The proof at a sampled position is for another leaf index or tree size.
    ProofForWrongLeaf {
        /// The leaf index.
        index: u64,
    },
    /// A sampled leaf's proof does not verify against the receipt's root.
    InvalidProof {
        /// The leaf index.
        index: u64,
        /// Why.
        error: ProofError,
    },
    /// A proved leaf's timestamp lies outside the receipt's window.
    LeafOutsideWindow {
        /// The leaf index.
        index: u64,
    },
    /// v2: a sampled leaf that is not the last comes without its right neighbour.
    MissingNeighbour {
        /// The leaf index.
        index: u64,
    },
    /// v2: the neighbour is not leaf `index + 1` of this tree (or the last leaf has one).
    NeighbourForWrongLeaf {
        /// The leaf index.
        index: u64,
    },
    /// v2: the neighbour's proof does not verify.
    InvalidNeighbourProof {
        /// The leaf index.
        index: u64,
        /// Why.
        error: ProofError,
    },
    /// A leaf is not strictly before the next one (v2 order), or ticket-lookup indices do not ascend.
    LeavesOutOfOrder {
        /// The leaf index.
        index: u64,
    },
    /// v2: the neighbour's `repeat` is not the sampled leaf's plus one (same answer) or zero (another answer).
    RepeatMismatch {
        /// The leaf index.
        index: u64,
    },
    /// v2: a sampled ticketed leaf's cell is above its sketch register.
    SketchUnderstates {
        /// The leaf index.
        index: u64,
    },
    /// v2: a ticketed leaf was sampled but the verifier has no token lookup.
    TicketNotChecked {
        /// The leaf index.
        index: u64,
    },
    /// v2: no token could be obtained for a sampled leaf's ticket.
    TicketNotRedeemed {
        /// The leaf index.
        index: u64,
    },
    /// v2: a sampled leaf's token does not verify.
    TokenInvalid {
        /// The leaf index.
        index: u64,
    },
    /// v2: the deployment requires tickets and a sampled leaf has none.
    UnticketedLeaf {
        /// The leaf index.
        index: u64,
    },
    /// v2: the sample disagrees with the service summary beyond the audit bound.
    SummaryDisagrees {
        /// Which statistic.
        stat: SummaryStat,
    },
    /// The check exists only for v2 receipts.
    NotV2,
    /// v2: a sketch witness is not a ticketed leaf with the register's cell.
    WitnessMismatch {
        /// The register.
        register: u16,
    },
    /// A ticket-lookup leaf carries another ticket.
    TicketLeafMismatch {
        /// The leaf index.
        index: u64,
    },
    /// More leaves under one ticket than its token's quota.
    TicketOverQuota {
        /// Leaves found.
        leaves: u64,
    },
}

impl VerifyError {
    /// A stable snake_case name (the CLI and JSON APIs print it).
    pub const fn name(&self) -> &'static str {
        match self {
            Self::V1NotAccepted => "v1_not_accepted",
            Self::RepeatsExceedTicketed => "repeats_exceed_ticketed",
            Self::TooManyRepeats => "too_many_repeats",
            Self::UnregisteredOperator => "unregistered_operator",
            Self::OperatorNotStaked => "operator_not_staked",
            Self::Signature(_) => "signature",
            Self::WrongDeployment => "wrong_deployment",
            Self::WindowLenNotDeployment { .. } => "window_len_not_deployment",
            Self::UnregisteredBackend => "unregistered_backend",
            Self::InvalidPolicyVersion { .. } => "invalid_policy_version",
            Self::SuccessPlusErrorExceedsRequests => "success_plus_error_exceeds_requests",
            Self::CacheExceedsRequests => "cache_exceeds_requests",
            Self::WorkClassSumMismatch => "work_class_sum_mismatch",
            Self::ErrorClassSumExceedsErrors => "error_class_sum_exceeds_errors",
            Self::LeafCountMismatch => "leaf_count_mismatch",
            Self::PerRequestNotSingle => "per_request_not_single",
            Self::BytesExceedMaximum => "bytes_exceed_maximum",
            Self::TicketedExceedsLeaves => "ticketed_exceeds_leaves",
            Self::SketchInconsistent => "sketch_inconsistent",
            Self::WindowOutOfRange => "window_out_of_range",
            Self::TimestampOutsideWindow { .. } => "timestamp_outside_window",
            Self::ArrivedTooEarly { .. } => "arrived_too_early",
            Self::ArrivedTooLate { .. } => "arrived_too_late",
            Self::DuplicateReceipt => "duplicate_receipt",
            Self::OverlappingReceipt => "overlapping_receipt",
            Self::SampleNotForReceipt => "sample_not_for_receipt",
            Self::ProofCountMismatch { .. } => "proof_count_mismatch",
            Self::ProofForWrongLeaf { .. } => "proof_for_wrong_leaf",
            Self::InvalidProof { .. } => "invalid_proof",
            Self::LeafOutsideWindow { .. } => "leaf_outside_window",
            Self::MissingNeighbour { .. } => "missing_neighbour",
            Self::NeighbourForWrongLeaf { .. } => "neighbour_for_wrong_leaf",
            Self::InvalidNeighbourProof { .. } => "invalid_neighbour_proof",
            Self::LeavesOutOfOrder { .. } => "leaves_out_of_order",
            Self::RepeatMismatch { .. } => "repeat_mismatch",
            Self::SketchUnderstates { .. } => "sketch_understates",
            Self::TicketNotChecked { .. } => "ticket_not_checked",
            Self::TicketNotRedeemed { .. } => "ticket_not_redeemed",
            Self::TokenInvalid { .. } => "token_invalid",
            Self::UnticketedLeaf { .. } => "unticketed_leaf",
            Self::SummaryDisagrees { .. } => "summary_disagrees",
            Self::NotV2 => "not_v2",
            Self::WitnessMismatch { .. } => "witness_mismatch",
            Self::TicketLeafMismatch { .. } => "ticket_leaf_mismatch",
            Self::TicketOverQuota { .. } => "ticket_over_quota",
        }
    }

    /// A stable numeric code (1–45; a code is never reused), as the C API reports it
    /// (after its offset).
    pub const fn code(&self) -> u16 {
        match self {
            Self::V1NotAccepted => 42,
            Self::RepeatsExceedTicketed => 43,
            Self::TooManyRepeats => 44,
            Self::UnregisteredOperator => 1,
            Self::OperatorNotStaked => 2,
            Self::Signature(_) => 3,
            Self::WrongDeployment => 4,
            Self::WindowLenNotDeployment { .. } => 5,
            Self::UnregisteredBackend => 6,
            Self::InvalidPolicyVersion { .. } => 7,
            Self::SuccessPlusErrorExceedsRequests => 8,
            Self::CacheExceedsRequests => 9,
            Self::WorkClassSumMismatch => 10,
            Self::ErrorClassSumExceedsErrors => 11,
            Self::LeafCountMismatch => 12,
            Self::PerRequestNotSingle => 13,
            Self::BytesExceedMaximum => 14,
            Self::TicketedExceedsLeaves => 15,
            Self::SketchInconsistent => 16,
            Self::WindowOutOfRange => 17,
            Self::TimestampOutsideWindow { .. } => 18,
            Self::ArrivedTooEarly { .. } => 45,
            Self::ArrivedTooLate { .. } => 19,
            Self::DuplicateReceipt => 20,
            Self::OverlappingReceipt => 21,
            Self::SampleNotForReceipt => 22,
            Self::ProofCountMismatch { .. } => 23,
            Self::ProofForWrongLeaf { .. } => 24,
            Self::InvalidProof { .. } => 25,
            Self::LeafOutsideWindow { .. } => 26,
            Self::MissingNeighbour { .. } => 27,
            Self::NeighbourForWrongLeaf { .. } => 28,
            Self::InvalidNeighbourProof { .. } => 29,
            Self::LeavesOutOfOrder { .. } => 30,
            Self::RepeatMismatch { .. } => 31,
            Self::SketchUnderstates { .. } => 32,
            Self::TicketNotChecked { .. } => 33,
            Self::TicketNotRedeemed { .. } => 34,
            Self::TokenInvalid { .. } => 35,
            Self::UnticketedLeaf { .. } => 36,
            Self::SummaryDisagrees { .. } => 37,
            Self::NotV2 => 38,
            Self::WitnessMismatch { .. } => 39,
            Self::TicketLeafMismatch { .. } => 40,
            Self::TicketOverQuota { .. } => 41,
        }
    }
}

impl fmt::Display for VerifyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::V1NotAccepted => f.write_str("v1 receipts are no longer accepted"),
            Self::RepeatsExceedTicketed => {
                f.write_str("ticketed_repeat_count exceeds ticketed_leaf_count")
            }
            Self::TooManyRepeats => f.write_str("more repeated leaves than the deployment allows"),
            Self::UnregisteredOperator => f.write_str("operator is not registered"),
            Self::OperatorNotStaked => f.write_str("operator is not staked for the epoch"),
            Self::Signature(e) => write!(f, "bad signature: {e}"),
            Self::WrongDeployment => f.write_str("receipt is for another deployment"),
            Self::WindowLenNotDeployment { window_len_s } => {
                write!(f, "window length {window_len_s} s is not the deployment's")
            }
            Self::UnregisteredBackend => {
                f.write_str("backend_id is not registered to the operator")
            }
            Self::InvalidPolicyVersion { policy_version } => write!(
                f,
                "policy version {policy_version} is not valid for the window"
            ),
            Self::SuccessPlusErrorExceedsRequests => {
                f.write_str("success_count + error_count exceeds request_count")
            }
            Self::CacheExceedsRequests => {
                f.write_str("served_from_cache_count exceeds request_count")
            }
            Self::WorkClassSumMismatch => {
                f.write_str("work_class_counts do not sum to request_count")
            }
            Self::ErrorClassSumExceedsErrors => {
                f.write_str("error_class_counts sum to more than error_count")
            }
            Self::LeafCountMismatch => f.write_str("batch leaf_count differs from request_count"),
            Self::PerRequestNotSingle => {
                f.write_str("per-request receipt must have one request and one leaf")
            }
            Self::BytesExceedMaximum => {
                f.write_str("bytes_served_total exceeds 65535 bytes per request")
            }
            Self::TicketedExceedsLeaves => f.write_str("ticketed_leaf_count exceeds leaf_count"),
            Self::SketchInconsistent => {
                f.write_str("name sketch is empty exactly when ticketed_leaf_count is not zero")
            }
            Self::WindowOutOfRange => f.write_str("window bounds do not fit in 64 bits"),
            Self::TimestampOutsideWindow { timestamp_ms } => {
                write!(f, "timestamp {timestamp_ms} ms is outside the window")
            }
            Self::ArrivedTooEarly { received_ms } => write!(
                f,
                "receipt arrived at {received_ms} ms, before its window ended"
            ),
            Self::ArrivedTooLate { received_ms } => write!(
                f,
                "receipt arrived at {received_ms} ms, after the deployment's delay bound"
            ),
            Self::DuplicateReceipt => {
                f.write_str("a receipt for this operator, backend and window was already accepted")
            }
            Self::OverlappingReceipt => f.write_str(
                "an accepted receipt of this operator already covers part of the window",
            ),
            Self::SampleNotForReceipt => {
                f.write_str("audit sample was drawn for another root, leaf count or sketch")
            }
            Self::ProofCountMismatch { expected, actual } => {
                write!(f, "{actual} answers for {expected} sampled items")
            }
            Self::ProofForWrongLeaf { index } => write!(
                f,
                "proof for sampled leaf {index} names another leaf or tree size"
            ),
            Self::InvalidProof { index, error } => {
                write!(f, "proof for leaf {index} does not verify: {error}")
            }
            Self::LeafOutsideWindow { index } => write!(f, "leaf {index} lies outside the window"),
            Self::MissingNeighbour { index } => {
                write!(f, "sampled leaf {index} comes without its right neighbour")
            }
            Self::NeighbourForWrongLeaf { index } => write!(
                f,
                "the neighbour of sampled leaf {index} is not leaf {index} + 1"
            ),
            Self::InvalidNeighbourProof { index, error } => write!(
                f,
                "proof for the neighbour of sampled leaf {index} does not verify: {error}"
            ),
            Self::LeavesOutOfOrder { index } => {
                write!(f, "leaf {index} is not strictly before the next leaf")
            }
            Self::RepeatMismatch { index } => write!(
                f,
                "the neighbour of sampled leaf {index} has an inconsistent repeat"
            ),
            Self::SketchUnderstates { index } => write!(
                f,
                "sampled leaf {index} lies above its name sketch register"
            ),
            Self::TicketNotChecked { index } => write!(
                f,
                "leaf {index} is ticketed and no token lookup was configured"
            ),
            Self::TicketNotRedeemed { index } => {
                write!(f, "no token was found for the ticket of leaf {index}")
            }
            Self::TokenInvalid { index } => {
                write!(f, "the token behind leaf {index} does not verify")
            }
            Self::UnticketedLeaf { index } => write!(
                f,
                "leaf {index} has no toll ticket and the deployment requires one"
            ),
            Self::SummaryDisagrees { stat } => write!(
                f,
                "sampled leaves disagree with the summary's {} beyond the audit bound",
                stat.name()
            ),
            Self::NotV2 => f.write_str("the check needs a v2 receipt"),
            Self::WitnessMismatch { register } => write!(
                f,
                "the witness of sketch register {register} does not match it"
            ),
            Self::TicketLeafMismatch { index } => write!(f, "leaf {index} carries another ticket"),
            Self::TicketOverQuota { leaves } => {
                write!(f, "{leaves} leaves under one ticket exceed its quota")
            }
        }
    }
}

impl core::error::Error for VerifyError {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        match self {
            Self::Signature(e) => Some(e),
            Self::InvalidProof { error, .. } | Self::InvalidNeighbourProof { error, .. } => {
                Some(error)
            }
            _ => None,
        }
    }
}
