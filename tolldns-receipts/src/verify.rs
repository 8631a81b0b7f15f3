//! Receipt verification: every rule of the receipt format is its own [`VerifyError`].
//!
//! The lookups a verifier needs from the outside world (is the operator registered and
//! staked, is a policy version valid, was this receipt already accepted) are traits the caller
//! implements. Rules are checked in the order of [`VerifyError`]'s variants; the first that
//! fails is returned.

use core::fmt;

use tolldns_core::{BackendId, OperatorId, Role, WindowId, WindowLen};

use crate::audit::AuditSample;
use crate::leaf::Leaf;
use crate::merkle::{MerkleProof, ProofError};
use crate::receipt::{Receipt, SignatureError};
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
}

/// The policy registry.
pub trait PolicyRegistry {
    /// Whether `policy_version` was valid during `window`.
    fn is_valid_policy(&self, policy_version: u32, window: WindowId, window_len: WindowLen)
    -> bool;
}

/// The set of receipts already accepted, to refuse a second receipt for the same
/// `(operator, backend, window)`. Verification only reads it; the caller records a receipt
/// after accepting it.
pub trait ReceiptLedger {
    /// Whether a receipt for this key was already accepted.
    fn contains(&self, operator: &OperatorId, backend: &BackendId, window: WindowId) -> bool;
}

/// A sampled leaf and its inclusion proof, as an operator returns them to an auditor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeafProof {
    /// The leaf.
    pub leaf: Leaf,
    /// Its audit path.
    pub proof: MerkleProof,
}

/// Checks receipts against the format's rules and the caller's registries.
#[derive(Debug)]
pub struct Verifier<'a, R, P, L> {
    registry: &'a R,
    policy: &'a P,
    ledger: &'a L,
    skew_ms: u64,
}

impl<'a, R: OperatorRegistry, P: PolicyRegistry, L: ReceiptLedger> Verifier<'a, R, P, L> {
    /// The default tolerance on `timestamp_ms` around the window: 30 seconds.
    pub const DEFAULT_SKEW_MS: u64 = 30_000;

    /// A verifier over the caller's registries, with [`Self::DEFAULT_SKEW_MS`].
    pub const fn new(registry: &'a R, policy: &'a P, ledger: &'a L) -> Self {
        Self {
            registry,
            policy,
            ledger,
            skew_ms: Self::DEFAULT_SKEW_MS,
        }
    }

    /// Change the tolerated clock skew of `timestamp_ms` on both sides of the window.
    #[must_use]
    pub const fn with_skew_ms(mut self, skew_ms: u64) -> Self {
        self.skew_ms = skew_ms;
        self
    }

    /// Check every rule that needs only the receipt (no leaves).
    ///
    /// # Errors
    ///
    /// The first rule that fails, as a [`VerifyError`].
    pub fn verify(&self, receipt: &Receipt) -> Result<(), VerifyError> {
        let b = &receipt.body;
        match self
            .registry
            .operator_status(&b.operator_id, b.operator_role, b.window_id)
        {
            OperatorStatus::Active => {}
            OperatorStatus::Unregistered => return Err(VerifyError::UnregisteredOperator),
            OperatorStatus::NotStaked => return Err(VerifyError::OperatorNotStaked),
        }
        receipt.verify_signature().map_err(VerifyError::Signature)?;
        if !self
            .policy
            .is_valid_policy(b.policy_version, b.window_id, b.window_len)
        {
            return Err(VerifyError::InvalidPolicyVersion {
                policy_version: b.policy_version,
            });
        }
        check_counts(receipt)?;
        let in_window = b
            .window_id
            .contains_with_skew(b.window_len, b.timestamp_ms, self.skew_ms)
            .map_err(|_| VerifyError::WindowOutOfRange)?;
        if !in_window {
            return Err(VerifyError::TimestampOutsideWindow {
                timestamp_ms: b.timestamp_ms,
            });
        }
        if self
            .ledger
            .contains(&b.operator_id, &b.backend_id, b.window_id)
        {
            return Err(VerifyError::DuplicateReceipt);
        }
        Ok(())
    }

    /// [`Verifier::verify`], then the audit: `proofs` must answer `sample` (drawn for this
    /// receipt's root and leaf count) index by index, in the sample's order; every proof must
    /// verify against the receipt's root and every leaf must lie in the receipt's window
    /// (without skew).
    ///
    /// # Errors
    ///
    /// The first rule that fails, as a [`VerifyError`].
    pub fn verify_with_audit(
        &self,
        receipt: &Receipt,
        sample: &AuditSample,
        proofs: &[LeafProof],
    ) -> Result<(), VerifyError> {
        self.verify(receipt)?;
        check_audit(receipt, sample, proofs)
    }
}

fn check_counts(receipt: &Receipt) -> Result<(), VerifyError> {
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
    Ok(())
}

fn check_audit(
    receipt: &Receipt,
    sample: &AuditSample,
    proofs: &[LeafProof],
) -> Result<(), VerifyError> {
    let b = &receipt.body;
    let root = &b.integrity.merkle_root;
    if sample.root() != root || sample.leaf_count() != b.integrity.leaf_count {
        return Err(VerifyError::SampleNotForReceipt);
    }
    if proofs.len() != sample.indices().len() {
        return Err(VerifyError::ProofCountMismatch {
            expected: sample.indices().len(),
            actual: proofs.len(),
        });
    }
    for (index, lp) in sample.indices().iter().copied().zip(proofs) {
        if lp.proof.leaf_index != index {
            return Err(VerifyError::ProofForWrongLeaf { index });
        }
        verify_leaf_proof(receipt, lp)?;
    }
    Ok(())
}

/// The audit rules for one proved leaf that need no sample: the proof is for this receipt's
/// tree (its `tree_size` is the signed `leaf_count`), it verifies against the receipt's root,
/// and the leaf's timestamp lies in the receipt's window. [`Verifier::verify_with_audit`]
/// applies this to every sampled proof after checking that the indices are the sample's.
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
    lp.proof
        .verify(&lp.leaf.hash(), &b.integrity.merkle_root)
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

/// A rule a receipt breaks. Variants are in the order rules are checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum VerifyError {
    /// The signing key is not a registered operator (or delegate) for the role.
    UnregisteredOperator,
    /// The operator is registered but not staked for the window's epoch.
    OperatorNotStaked,
    /// The signature does not verify strictly under `operator_id`.
    Signature(SignatureError),
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
    /// The window's bounds do not fit in 64-bit milliseconds.
    WindowOutOfRange,
    /// `timestamp_ms` lies outside the window widened by the skew.
    TimestampOutsideWindow {
        /// The receipt's timestamp.
        timestamp_ms: u64,
    },
    /// A receipt for this `(operator, backend, window)` was already accepted.
    DuplicateReceipt,
    /// The audit sample was drawn for another root or leaf count.
    SampleNotForReceipt,
    /// Not one proof per sampled index.
    ProofCountMismatch {
        /// Sampled indices.
        expected: usize,
        /// Proofs given.
        actual: usize,
    },
    /// The proof at a sampled position is for another leaf index or tree size.
    ProofForWrongLeaf {
        /// The sampled index.
        index: u64,
    },
    /// A sampled leaf's proof does not verify against the receipt's root.
    InvalidProof {
        /// The sampled index.
        index: u64,
        /// Why.
        error: ProofError,
    },
    /// A sampled leaf's timestamp lies outside the receipt's window.
    LeafOutsideWindow {
        /// The sampled index.
        index: u64,
    },
}

impl fmt::Display for VerifyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::UnregisteredOperator => f.write_str("operator is not registered"),
            Self::OperatorNotStaked => f.write_str("operator is not staked for the epoch"),
            Self::Signature(e) => write!(f, "bad signature: {e}"),
            Self::InvalidPolicyVersion { policy_version } => {
                write!(
                    f,
                    "policy version {policy_version} is not valid for the window"
                )
            }
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
            Self::WindowOutOfRange => f.write_str("window bounds do not fit in 64 bits"),
            Self::TimestampOutsideWindow { timestamp_ms } => {
                write!(f, "timestamp {timestamp_ms} ms is outside the window")
            }
            Self::DuplicateReceipt => {
                f.write_str("a receipt for this operator, backend and window was already accepted")
            }
            Self::SampleNotForReceipt => {
                f.write_str("audit sample was drawn for another root or leaf count")
            }
            Self::ProofCountMismatch { expected, actual } => {
                write!(f, "{actual} proofs for {expected} sampled leaves")
            }
            Self::ProofForWrongLeaf { index } => {
                write!(
                    f,
                    "proof for sampled leaf {index} names another leaf or tree size"
                )
            }
            Self::InvalidProof { index, error } => {
                write!(f, "proof for sampled leaf {index} does not verify: {error}")
            }
            Self::LeafOutsideWindow { index } => {
                write!(f, "sampled leaf {index} lies outside the window")
            }
        }
    }
}

impl core::error::Error for VerifyError {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        match self {
            Self::Signature(e) => Some(e),
            Self::InvalidProof { error, .. } => Some(error),
            _ => None,
        }
    }
}
