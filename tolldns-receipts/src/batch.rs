//! Closing a window's leaves into a signed receipt, and serving proofs afterwards.

use alloc::vec::Vec;
use core::fmt;

use ed25519_dalek::SigningKey;
use tolldns_core::{BackendId, OperatorId, Role, WindowId, WindowLen};

use crate::audit::AuditSample;
use crate::leaf::Leaf;
use crate::merkle::{Hash, MerkleProof, MerkleTree, ProofError};
use crate::receipt::{
    ClassCounts, Integrity, Receipt, ReceiptBody, ServiceSummary, SignatureError,
};
use crate::tags::{ErrorClass, LatencyBucket, ReceiptType, SizeBucket, WireTag, WorkClass};
use crate::verify::LeafProof;

/// What a batch is about: everything in the receipt body that does not come from the leaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct BatchHeader {
    /// Batch (the default) or per-request.
    pub receipt_type: ReceiptType,
    /// The operator's role.
    pub operator_role: Role,
    /// The adapter context.
    pub backend_id: BackendId,
    /// The policy version served under.
    pub policy_version: u32,
    /// Length of the window.
    pub window_len: WindowLen,
    /// The window.
    pub window_id: WindowId,
}

/// The service summary of a set of leaves: counts by outcome and work class, bytes, cache
/// hits, and the p95 buckets (the smallest bucket `b` with at least `ceil(0.95 × n)` leaves in
/// buckets `≤ b`; the lowest bucket when there is no leaf).
///
/// # Errors
///
/// [`SealError::TooManyBytes`] when the response sizes sum past `u64::MAX`.
pub fn summarize(leaves: &[Leaf]) -> Result<ServiceSummary, SealError> {
    let mut success = 0u64;
    let mut cache = 0u64;
    let mut bytes = 0u64;
    let mut errors = [0u64; 16];
    let mut work = [0u64; 16];
    let mut latency = [0u64; 16];
    let mut size = [0u64; 16];
    let bump = |table: &mut [u64; 16], tag: u8| {
        if let Some(slot) = table.get_mut(usize::from(tag)) {
            *slot = slot.saturating_add(1);
        }
    };
    for leaf in leaves {
        match leaf.rcode_class.error_class() {
            None => success = success.saturating_add(1),
            Some(e) => bump(&mut errors, e.tag()),
        }
        bump(&mut work, leaf.work_class.tag());
        bump(&mut latency, leaf.latency.tag());
        bump(&mut size, leaf.size_bucket().tag());
        if leaf.flags.cache_hit {
            cache = cache.saturating_add(1);
        }
        bytes = bytes
            .checked_add(u64::from(leaf.response_bytes))
            .ok_or(SealError::TooManyBytes)?;
    }
    let n = u64::try_from(leaves.len()).unwrap_or(u64::MAX);
    let counts = |table: &[u64; 16]| -> Vec<(u8, u64)> {
        table
            .iter()
            .enumerate()
            .filter(|(_, c)| **c != 0)
            .map(|(t, c)| (u8::try_from(t).unwrap_or(0), *c))
            .collect()
    };
    Ok(ServiceSummary {
        request_count: n,
        success_count: success,
        error_count: n.saturating_sub(success),
        bytes_served_total: bytes,
        served_from_cache_count: cache,
        // Every leaf is counted in a bucket, so the p95 bucket always exists.
        latency_p95_bucket: p95(&latency, n).unwrap_or(LatencyBucket::Ge1000),
        response_size_p95_bucket: p95(&size, n).unwrap_or(SizeBucket::Ge2048),
        error_class_counts: class_counts::<ErrorClass>(&counts(&errors)),
        work_class_counts: class_counts::<WorkClass>(&counts(&work)),
    })
}

fn class_counts<C: WireTag>(pairs: &[(u8, u64)]) -> ClassCounts<C> {
    let typed = pairs
        .iter()
        .filter_map(|(t, n)| C::from_tag(*t).map(|c| (c, *n)));
    // Tags come from distinct table slots, so no class repeats.
    ClassCounts::from_pairs(typed).unwrap_or_default()
}

fn p95<B: WireTag>(table: &[u64; 16], n: u64) -> Option<B> {
    // ceil(0.95 n) = ceil(19 n / 20), in u128 so that it cannot overflow.
    let need = u128::from(n).saturating_mul(19).div_ceil(20);
    let mut seen = 0u128;
    for b in B::ALL {
        seen = seen.saturating_add(u128::from(
            table.get(usize::from(b.tag())).copied().unwrap_or(0),
        ));
        if seen >= need {
            return Some(*b);
        }
    }
    None
}

/// A closed window: the signed receipt, its leaves and the Merkle tree over them, kept to
/// serve inclusion proofs until the audit window of the batch closes.
#[derive(Debug, Clone)]
pub struct ClosedBatch {
    receipt: Receipt,
    leaves: Vec<Leaf>,
    tree: MerkleTree,
}

impl ClosedBatch {
    /// Close `leaves` (in the order given: leaf `i` is Merkle leaf `i`) into a signed receipt:
    /// computes the service summary, the RFC 6962 root and signs with `key`, whose public half
    /// becomes the receipt's `operator_id`.
    ///
    /// # Errors
    ///
    /// [`SealError::LeafOutsideWindow`] for a leaf whose timestamp is not in the window,
    /// [`SealError::PerRequestNeedsOneLeaf`] for a per-request receipt without exactly one
    /// leaf, [`SealError::TooManyBytes`], or [`SealError::Signature`].
    pub fn seal(
        header: &BatchHeader,
        leaves: Vec<Leaf>,
        name_key_commitment: Hash,
        timestamp_ms: u64,
        key: &SigningKey,
    ) -> Result<Self, SealError> {
        if header.receipt_type == ReceiptType::PerRequest && leaves.len() != 1 {
            return Err(SealError::PerRequestNeedsOneLeaf);
        }
        let start = header
            .window_id
            .start_ms(header.window_len)
            .map_err(|_| SealError::WindowOutOfRange)?;
        let end = header
            .window_id
            .end_ms(header.window_len)
            .map_err(|_| SealError::WindowOutOfRange)?;
        if let Some(index) = leaves
            .iter()
            .position(|l| l.timestamp_ms < start || l.timestamp_ms >= end)
        {
            return Err(SealError::LeafOutsideWindow { index });
        }
        let service_summary = summarize(&leaves)?;
        let tree = MerkleTree::from_leaf_hashes(leaves.iter().map(Leaf::hash).collect());
        let body = ReceiptBody {
            receipt_type: header.receipt_type,
            operator_id: OperatorId(key.verifying_key().to_bytes()),
            operator_role: header.operator_role,
            backend_id: header.backend_id,
            policy_version: header.policy_version,
            window_len: header.window_len,
            window_id: header.window_id,
            timestamp_ms,
            integrity: Integrity {
                leaf_count: service_summary.request_count,
                merkle_root: tree.root(),
                name_key_commitment,
            },
            service_summary,
        };
        let receipt = body.sign(key).map_err(SealError::Signature)?;
        Ok(Self {
            receipt,
            leaves,
            tree,
        })
    }

    /// The signed receipt.
    pub const fn receipt(&self) -> &Receipt {
        &self.receipt
    }

    /// The leaves, in Merkle order.
    pub fn leaves(&self) -> &[Leaf] {
        &self.leaves
    }

    /// The Merkle tree.
    pub const fn tree(&self) -> &MerkleTree {
        &self.tree
    }

    /// The inclusion proof of leaf `index`.
    ///
    /// # Errors
    ///
    /// [`ProofError::IndexOutOfRange`].
    pub fn proof(&self, index: u64) -> Result<MerkleProof, ProofError> {
        self.tree.proof(index)
    }

    /// Leaf `index` with its proof, as an auditor asks for it.
    ///
    /// # Errors
    ///
    /// [`ProofError::IndexOutOfRange`].
    pub fn leaf_proof(&self, index: u64) -> Result<LeafProof, ProofError> {
        let size = self.tree.len();
        let leaf = usize::try_from(index)
            .ok()
            .and_then(|i| self.leaves.get(i))
            .copied()
            .ok_or(ProofError::IndexOutOfRange { index, size })?;
        Ok(LeafProof {
            leaf,
            proof: self.tree.proof(index)?,
        })
    }

    /// The answer to an audit: one [`LeafProof`] per sampled index, in the sample's order.
    ///
    /// # Errors
    ///
    /// [`ProofError::IndexOutOfRange`] when the sample was drawn for a larger batch.
    pub fn answer(&self, sample: &AuditSample) -> Result<Vec<LeafProof>, ProofError> {
        sample
            .indices()
            .iter()
            .map(|i| self.leaf_proof(*i))
            .collect()
    }

    /// Give up the tree, keeping the receipt and the leaves.
    pub fn into_parts(self) -> (Receipt, Vec<Leaf>) {
        (self.receipt, self.leaves)
    }
}

/// Why a batch could not be closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SealError {
    /// A leaf's timestamp is not in the window.
    LeafOutsideWindow {
        /// Its position.
        index: usize,
    },
    /// A per-request receipt needs exactly one leaf.
    PerRequestNeedsOneLeaf,
    /// The window's bounds do not fit in 64-bit milliseconds.
    WindowOutOfRange,
    /// Response sizes sum past `u64::MAX`.
    TooManyBytes,
    /// Signing failed.
    Signature(SignatureError),
}

impl fmt::Display for SealError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::LeafOutsideWindow { index } => {
                write!(f, "leaf {index} lies outside the batch window")
            }
            Self::PerRequestNeedsOneLeaf => {
                f.write_str("a per-request receipt needs exactly one leaf")
            }
            Self::WindowOutOfRange => f.write_str("window bounds do not fit in 64 bits"),
            Self::TooManyBytes => f.write_str("response sizes overflow 64 bits"),
            Self::Signature(e) => write!(f, "signing failed: {e}"),
        }
    }
}

impl core::error::Error for SealError {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        match self {
            Self::Signature(e) => Some(e),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::leaf::LeafFlags;
    use crate::tags::{RcodeClass, Transport};

    fn leaf(latency_ms: u64, bytes: u32, rcode: RcodeClass) -> Leaf {
        Leaf {
            timestamp_ms: 60_000,
            transport: Transport::Udp,
            qtype: 1,
            rcode_class: rcode,
            work_class: WorkClass::CacheMiss,
            flags: LeafFlags::default(),
            latency: LatencyBucket::from_millis(latency_ms),
            response_bytes: bytes,
            name_hash: [0; 16],
            ticket: [0; 16],
            response_summary_hash: [0; 16],
        }
    }

    #[test]
    fn p95_is_the_smallest_bucket_holding_95_percent() {
        let empty = summarize(&[]).unwrap();
        assert_eq!(empty.latency_p95_bucket, LatencyBucket::Lt25);
        assert_eq!(empty.response_size_p95_bucket, SizeBucket::Lt256);
        assert!(empty.error_class_counts.is_empty() && empty.work_class_counts.is_empty());

        // 19 of 20 fast and small: exactly 95 %.
        let mut leaves: Vec<Leaf> = (0..19).map(|_| leaf(1, 10, RcodeClass::NoError)).collect();
        leaves.push(leaf(5_000, 5_000, RcodeClass::Servfail));
        let s = summarize(&leaves).unwrap();
        assert_eq!(s.latency_p95_bucket, LatencyBucket::Lt25);
        assert_eq!(s.response_size_p95_bucket, SizeBucket::Lt256);
        // 19 of 21: below 95 %, so the p95 bucket is the slow one.
        leaves.push(leaf(300, 600, RcodeClass::Nxdomain));
        let s = summarize(&leaves).unwrap();
        assert_eq!(s.latency_p95_bucket, LatencyBucket::Lt500);
        assert_eq!(s.response_size_p95_bucket, SizeBucket::Lt1024);
        assert_eq!(
            (s.request_count, s.success_count, s.error_count),
            (21, 19, 2)
        );
        assert_eq!(s.bytes_served_total, 19 * 10 + 5_000 + 600);
        assert_eq!(s.error_class_counts.get(ErrorClass::Servfail), 1);
        assert_eq!(s.error_class_counts.get(ErrorClass::Nxdomain), 1);
        assert_eq!(s.work_class_counts.get(WorkClass::CacheMiss), 21);
    }

    #[test]
    fn seal_refuses_leaves_outside_the_window() {
        let header = BatchHeader {
            receipt_type: ReceiptType::Batch,
            operator_role: Role::EdgeIngress,
            backend_id: BackendId::new("edge-ingress").unwrap(),
            policy_version: 1,
            window_len: WindowLen::new(60).unwrap(),
            window_id: WindowId(1),
        };
        let key = SigningKey::from_bytes(&[1; 32]);
        let mut late = leaf(1, 1, RcodeClass::NoError);
        late.timestamp_ms = 120_000;
        let ok = leaf(1, 1, RcodeClass::NoError);
        assert_eq!(
            ClosedBatch::seal(&header, vec![ok, late], [0; 32], 0, &key).err(),
            Some(SealError::LeafOutsideWindow { index: 1 })
        );
        let batch = ClosedBatch::seal(&header, vec![ok, ok], [0; 32], 0, &key).unwrap();
        assert_eq!(
            batch.proof(2),
            Err(ProofError::IndexOutOfRange { index: 2, size: 2 })
        );
        assert_eq!(batch.leaf_proof(1).unwrap().leaf, ok);
    }
}
