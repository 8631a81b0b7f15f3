//! Closing a window's leaves into a signed receipt, and serving proofs afterwards.

use alloc::vec::Vec;
use core::fmt;

use ed25519_dalek::SigningKey;
use tolldns_core::{BackendId, DeploymentId, OperatorId, Role, WindowId, WindowLen};

use crate::audit::AuditSample;
use crate::leaf::Leaf;
use crate::merkle::{Hash, MerkleProof, MerkleTree, ProofError};
use crate::receipt::{
    ClassCounts, Integrity, Receipt, ReceiptBody, ServiceSummary, SignatureError, V2Commitments,
};
use crate::sketch::{NameSketch, SKETCH_REGISTERS};
use crate::tags::{ErrorClass, LatencyBucket, ReceiptType, SizeBucket, WireTag, WorkClass};
use crate::verify::{AuditAnswer, LeafProof};

/// What a batch is about: everything in the receipt body that does not come from the leaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct BatchHeader {
    /// The network the receipt is for (first in the signed bytes of a v2 receipt).
    pub deployment_id: DeploymentId,
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

impl BatchHeader {
    /// A batch receipt header for `backend_id` in `window` of `window_len`, on deployment
    /// `deployment_id`, with policy version 1 and role [`Role::EdgeIngress`]; change the
    /// public fields for anything else.
    pub const fn new(
        deployment_id: DeploymentId,
        backend_id: BackendId,
        window_len: WindowLen,
        window_id: WindowId,
    ) -> Self {
        Self {
            deployment_id,
            receipt_type: ReceiptType::Batch,
            operator_role: Role::EdgeIngress,
            backend_id,
            policy_version: 1,
            window_len,
            window_id,
        }
    }
}

/// Put `leaves` in the strict order of v2 windows ([`Leaf::order`]): sort them, and number
/// the leaves that agree in every other field with `repeat` = 0, 1, 2, … (whatever `repeat`
/// they had is replaced). No leaf is dropped.
///
/// # Errors
///
/// [`SealError::RepeatOverflow`] when more than 65,536 leaves agree in every field (the same
/// answer in the same millisecond).
pub fn order_leaves(leaves: &mut [Leaf]) -> Result<(), SealError> {
    for l in leaves.iter_mut() {
        l.repeat = 0;
    }
    // By timestamp first: a stable sort on the key alone finds the ascending runs that
    // leaves recorded in arrival order form (one per buffer merged), then each millisecond
    // by the rest of the strict order. Leaves that compare equal are identical, so the
    // result is the one of a single sort by `Leaf::order`.
    leaves.sort_by_key(|l| l.timestamp_ms);
    for same_ms in leaves.chunk_by_mut(|a, b| a.timestamp_ms == b.timestamp_ms) {
        same_ms.sort_unstable_by(Leaf::order);
    }
    let mut prev: Option<Leaf> = None;
    for l in leaves.iter_mut() {
        if let Some(p) = prev
            && p.same_answer(l)
        {
            l.repeat = p.repeat.checked_add(1).ok_or(SealError::RepeatOverflow)?;
        }
        prev = Some(*l);
    }
    Ok(())
}

/// The service summary of a set of leaves: counts by outcome and work class, bytes, cache
/// hits, and the p95 buckets (the smallest bucket `b` with at least `ceil(0.95 × n)` leaves in
/// buckets `≤ b`; the lowest bucket when there is no leaf).
///
/// # Errors
///
/// [`SealError::TooManyBytes`] when the response sizes sum past `u64::MAX`.
pub fn summarize(leaves: &[Leaf]) -> Result<ServiceSummary, SealError> {
    let mut acc = SummaryAcc::new();
    for leaf in leaves {
        acc.add(leaf)?;
    }
    Ok(acc.finish())
}

/// The running totals behind a [`ServiceSummary`], one leaf at a time (what [`summarize`]
/// and the streaming window share, so both give the same summary).
#[derive(Debug, Clone)]
pub(crate) struct SummaryAcc {
    n: u64,
    success: u64,
    cache: u64,
    bytes: u64,
    errors: [u64; 16],
    work: [u64; 16],
    latency: [u64; 16],
    size: [u64; 16],
}

impl SummaryAcc {
    pub(crate) const fn new() -> Self {
        Self {
            n: 0,
            success: 0,
            cache: 0,
            bytes: 0,
            errors: [0; 16],
            work: [0; 16],
            latency: [0; 16],
            size: [0; 16],
        }
    }

    /// Count one leaf.
    ///
    /// # Errors
    ///
    /// [`SealError::TooManyBytes`] when the response sizes sum past `u64::MAX` (nothing is
    /// counted then).
    pub(crate) fn add(&mut self, leaf: &Leaf) -> Result<(), SealError> {
        let bytes = self
            .bytes
            .checked_add(u64::from(leaf.response_bytes))
            .ok_or(SealError::TooManyBytes)?;
        let bump = |table: &mut [u64; 16], tag: u8| {
            if let Some(slot) = table.get_mut(usize::from(tag)) {
                *slot = slot.saturating_add(1);
            }
        };
        match leaf.rcode_class.error_class() {
            None => self.success = self.success.saturating_add(1),
            Some(e) => bump(&mut self.errors, e.tag()),
        }
        bump(&mut self.work, leaf.work_class.tag());
        bump(&mut self.latency, leaf.latency.tag());
        bump(&mut self.size, leaf.size_bucket().tag());
        if leaf.flags.cache_hit {
            self.cache = self.cache.saturating_add(1);
        }
        self.bytes = bytes;
        self.n = self.n.saturating_add(1);
        Ok(())
    }

    pub(crate) fn finish(&self) -> ServiceSummary {
        let n = self.n;
        let counts = |table: &[u64; 16]| -> Vec<(u8, u64)> {
            table
                .iter()
                .enumerate()
                .filter(|(_, c)| **c != 0)
                .map(|(t, c)| (u8::try_from(t).unwrap_or(0), *c))
                .collect()
        };
        ServiceSummary {
            request_count: n,
            success_count: self.success,
            error_count: n.saturating_sub(self.success),
            bytes_served_total: self.bytes,
            served_from_cache_count: self.cache,
            // Every leaf is counted in a bucket, so the p95 bucket always exists.
            latency_p95_bucket: p95(&self.latency, n).unwrap_or(LatencyBucket::Ge1000),
            response_size_p95_bucket: p95(&self.size, n).unwrap_or(SizeBucket::Ge2048),
            error_class_counts: class_counts::<ErrorClass>(&counts(&self.errors)),
            work_class_counts: class_counts::<WorkClass>(&counts(&self.work)),
        }
    }
}

/// The ticketed leaf count, ticketed repeat count, name sketch and sketch witnesses of a v2
/// window, one leaf at a time (shared by [`ClosedBatch::seal`] and the streaming window).
#[derive(Debug, Clone)]
pub(crate) struct TicketAcc {
    pub(crate) ticketed: u64,
    pub(crate) repeats: u64,
    pub(crate) sketch: NameSketch,
    pub(crate) witnesses: SketchWitnesses,
}

impl TicketAcc {
    pub(crate) const fn new() -> Self {
        Self {
            ticketed: 0,
            repeats: 0,
            sketch: NameSketch::new(),
            witnesses: [u64::MAX; SKETCH_REGISTERS],
        }
    }

    /// Count leaf `index` (its Merkle index).
    pub(crate) fn add(&mut self, index: u64, l: &Leaf) {
        if !l.is_ticketed() {
            return;
        }
        self.ticketed = self.ticketed.saturating_add(1);
        if l.repeat != 0 {
            self.repeats = self.repeats.saturating_add(1);
        }
        let (j, rank) = l.sketch_cell();
        if rank > self.sketch.register(j) {
            self.sketch.insert(&l.name_hash);
            if let Some(w) = self.witnesses.get_mut(j) {
                *w = index;
            }
        }
    }
}

/// Everything of a receipt body that a window's leaves determine.
pub(crate) struct Sealed<'a> {
    pub(crate) header: &'a BatchHeader,
    pub(crate) service_summary: ServiceSummary,
    pub(crate) merkle_root: Hash,
    /// `None` for a v1 receipt.
    pub(crate) tickets: Option<&'a TicketAcc>,
}

impl Sealed<'_> {
    /// Fill in the body and sign it with `key`, whose public half becomes the operator id.
    pub(crate) fn sign(
        self,
        name_key_commitment: Hash,
        timestamp_ms: u64,
        key: &SigningKey,
    ) -> Result<Receipt, SealError> {
        let header = self.header;
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
                leaf_count: self.service_summary.request_count,
                merkle_root: self.merkle_root,
                name_key_commitment,
            },
            service_summary: self.service_summary,
            v2: self.tickets.map(|t| V2Commitments {
                deployment_id: header.deployment_id,
                ticketed_leaf_count: t.ticketed,
                ticketed_repeat_count: t.repeats,
                name_sketch: t.sketch.clone(),
            }),
        };
        body.sign(key).map_err(SealError::Signature)
    }
}

/// The first and last millisecond bounds of `header`'s window: `[start, end)`.
pub(crate) fn window_bounds(header: &BatchHeader) -> Result<(u64, u64), SealError> {
    let start = header
        .window_id
        .start_ms(header.window_len)
        .map_err(|_| SealError::WindowOutOfRange)?;
    let end = header
        .window_id
        .end_ms(header.window_len)
        .map_err(|_| SealError::WindowOutOfRange)?;
    Ok((start, end))
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
    witnesses: SketchWitnesses,
}

/// For every register of a window's [`NameSketch`], the index of the first ticketed leaf
/// that sets it (`u64::MAX` for an empty register): what an operator shows when a verifier
/// asks for a register's witness.
pub type SketchWitnesses = [u64; SKETCH_REGISTERS];

/// The name sketch of `leaves`' ticketed leaves, and each register's witness leaf index.
pub fn sketch_with_witnesses(leaves: &[Leaf]) -> (NameSketch, SketchWitnesses) {
    let mut acc = TicketAcc::new();
    for (i, l) in leaves.iter().enumerate() {
        acc.add(u64::try_from(i).unwrap_or(u64::MAX), l);
    }
    (acc.sketch, acc.witnesses)
}

impl ClosedBatch {
    /// Close `leaves` into a signed v2 receipt: puts them in strict order
    /// ([`order_leaves`]; leaf `i` of the result is Merkle leaf `i`), computes the service
    /// summary, the ticketed count and name sketch, the RFC 6962 root, and signs with `key`,
    /// whose public half becomes the receipt's `operator_id`.
    ///
    /// # Errors
    ///
    /// [`SealError::LeafOutsideWindow`] for a leaf whose timestamp is not in the window,
    /// [`SealError::ResponseTooLarge`] for a leaf over 65,535 bytes,
    /// [`SealError::PerRequestNeedsOneLeaf`] for a per-request receipt without exactly one
    /// leaf, [`SealError::RepeatOverflow`], [`SealError::TooManyBytes`], or
    /// [`SealError::Signature`].
    pub fn seal(
        header: &BatchHeader,
        mut leaves: Vec<Leaf>,
        name_key_commitment: Hash,
        timestamp_ms: u64,
        key: &SigningKey,
    ) -> Result<Self, SealError> {
        if let Some(index) = leaves
            .iter()
            .position(|l| l.response_bytes > crate::leaf::MAX_RESPONSE_BYTES)
        {
            return Err(SealError::ResponseTooLarge { index });
        }
        order_leaves(&mut leaves)?;
        Self::seal_version(header, leaves, name_key_commitment, timestamp_ms, key, true)
    }

    /// Close `leaves`, in the order given and with `repeat` ignored, into a signed **v1**
    /// receipt (the first format, which this crate no longer writes otherwise). For test
    /// vectors and for verifiers that must keep checking v1 material.
    ///
    /// # Errors
    ///
    /// As [`ClosedBatch::seal`], without the v2 rules.
    pub fn seal_v1(
        header: &BatchHeader,
        mut leaves: Vec<Leaf>,
        name_key_commitment: Hash,
        timestamp_ms: u64,
        key: &SigningKey,
    ) -> Result<Self, SealError> {
        for l in &mut leaves {
            l.repeat = 0;
        }
        Self::seal_version(
            header,
            leaves,
            name_key_commitment,
            timestamp_ms,
            key,
            false,
        )
    }

    fn seal_version(
        header: &BatchHeader,
        leaves: Vec<Leaf>,
        name_key_commitment: Hash,
        timestamp_ms: u64,
        key: &SigningKey,
        v2: bool,
    ) -> Result<Self, SealError> {
        if header.receipt_type == ReceiptType::PerRequest && leaves.len() != 1 {
            return Err(SealError::PerRequestNeedsOneLeaf);
        }
        let (start, end) = window_bounds(header)?;
        if let Some(index) = leaves
            .iter()
            .position(|l| l.timestamp_ms < start || l.timestamp_ms >= end)
        {
            return Err(SealError::LeafOutsideWindow { index });
        }
        let service_summary = summarize(&leaves)?;
        let hash = if v2 { Leaf::hash } else { Leaf::hash_v1 };
        let tree = MerkleTree::from_leaf_hashes(leaves.iter().map(hash).collect());
        let mut tickets = TicketAcc::new();
        for (i, l) in leaves.iter().enumerate() {
            tickets.add(u64::try_from(i).unwrap_or(u64::MAX), l);
        }
        let receipt = Sealed {
            header,
            service_summary,
            merkle_root: tree.root(),
            tickets: v2.then_some(&tickets),
        }
        .sign(name_key_commitment, timestamp_ms, key)?;
        Ok(Self {
            receipt,
            leaves,
            tree,
            witnesses: tickets.witnesses,
        })
    }

    /// A closed batch from a receipt and its leaves kept elsewhere (a journal, a stream
    /// collected in memory): rebuilds the Merkle tree and the sketch witnesses, and checks
    /// that the leaves are the receipt's.
    ///
    /// # Errors
    ///
    /// [`SealError::LeafCountMismatch`] when the number of leaves is not the receipt's
    /// `leaf_count`, [`SealError::RootMismatch`] when their root is not its `merkle_root`.
    pub fn from_parts(receipt: Receipt, leaves: Vec<Leaf>) -> Result<Self, SealError> {
        let count = u64::try_from(leaves.len()).unwrap_or(u64::MAX);
        if count != receipt.body.integrity.leaf_count {
            return Err(SealError::LeafCountMismatch {
                receipt: receipt.body.integrity.leaf_count,
                leaves: count,
            });
        }
        let hash = if receipt.body.v2.is_some() {
            Leaf::hash
        } else {
            Leaf::hash_v1
        };
        let tree = MerkleTree::from_leaf_hashes(leaves.iter().map(hash).collect());
        if tree.root() != receipt.body.integrity.merkle_root {
            return Err(SealError::RootMismatch);
        }
        let (_, witnesses) = sketch_with_witnesses(&leaves);
        Ok(Self {
            receipt,
            leaves,
            tree,
            witnesses,
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

    /// The answer to an audit: for each sampled index, in the sample's order, the leaf with
    /// its proof and (for a v2 receipt) its right neighbour with its proof (none for the last
    /// leaf).
    ///
    /// # Errors
    ///
    /// [`ProofError::IndexOutOfRange`] when the sample was drawn for a larger batch.
    pub fn answer(&self, sample: &AuditSample) -> Result<Vec<AuditAnswer>, ProofError> {
        sample
            .indices()
            .iter()
            .map(|i| self.audit_answer(*i))
            .collect()
    }

    /// The audit answer for one index: the leaf, its proof and its right neighbour's (v2).
    ///
    /// # Errors
    ///
    /// [`ProofError::IndexOutOfRange`].
    pub fn audit_answer(&self, index: u64) -> Result<AuditAnswer, ProofError> {
        let leaf = self.leaf_proof(index)?;
        let next_index = index.saturating_add(1);
        let next = if self.receipt.body.v2.is_some() && next_index < self.tree.len() {
            Some(self.leaf_proof(next_index)?)
        } else {
            None
        };
        Ok(AuditAnswer { leaf, next })
    }

    /// Every leaf whose ticket is `ticket`, with its proof, in Merkle order (what a watcher
    /// asks to confirm that its probes were served and recorded).
    pub fn ticket_leaves(&self, ticket: &[u8; 16]) -> Vec<LeafProof> {
        self.leaves
            .iter()
            .enumerate()
            .filter(|(_, l)| l.ticket == *ticket)
            .filter_map(|(i, _)| self.leaf_proof(u64::try_from(i).ok()?).ok())
            .collect()
    }

    /// The witness of sketch register `register`: a ticketed leaf whose cell is exactly
    /// `(register, sketch[register])`, with its proof. `None` for an empty register.
    pub fn sketch_witness(&self, register: usize) -> Option<LeafProof> {
        let index = *self.witnesses.get(register)?;
        self.leaf_proof(index).ok()
    }

    /// The witness leaf index of every sketch register (`u64::MAX` when empty).
    pub const fn sketch_witnesses(&self) -> &SketchWitnesses {
        &self.witnesses
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
    /// A leaf's `response_bytes` exceeds 65,535 (v2).
    ResponseTooLarge {
        /// Its position.
        index: usize,
    },
    /// More than 65,536 leaves agree in every field (v2 `repeat` is a `u16`).
    RepeatOverflow,
    /// Signing failed.
    Signature(SignatureError),
    /// A streamed leaf is not strictly after the one before it ([`Leaf::order`]).
    OutOfOrder {
        /// Its Merkle index.
        index: u64,
    },
    /// A streamed leaf's `repeat` does not number it among the identical leaves before it.
    RepeatMismatch {
        /// Its Merkle index.
        index: u64,
    },
    /// The leaves given with a receipt are not as many as it commits to.
    LeafCountMismatch {
        /// The receipt's `leaf_count`.
        receipt: u64,
        /// The leaves given.
        leaves: u64,
    },
    /// The leaves given with a receipt do not hash to its Merkle root.
    RootMismatch,
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
            Self::ResponseTooLarge { index } => {
                write!(f, "leaf {index} claims a response over 65535 bytes")
            }
            Self::RepeatOverflow => {
                f.write_str("more than 65536 identical leaves in one millisecond")
            }
            Self::Signature(e) => write!(f, "signing failed: {e}"),
            Self::OutOfOrder { index } => {
                write!(f, "leaf {index} is not strictly after the leaf before it")
            }
            Self::RepeatMismatch { index } => {
                write!(f, "leaf {index} has the wrong repeat number")
            }
            Self::LeafCountMismatch { receipt, leaves } => write!(
                f,
                "the receipt commits to {receipt} leaves but {leaves} were given"
            ),
            Self::RootMismatch => f.write_str("the leaves do not hash to the receipt's root"),
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
            repeat: 0,
        }
    }

    /// Sorting by timestamp, then each millisecond, gives what one sort by the strict order
    /// gives, for buffers in arrival order, reversed or interleaved, with identical answers.
    #[test]
    fn order_leaves_is_one_sort_by_the_strict_order() {
        let mut x: u64 = 0x1234_5678;
        let mut next = move |m: u64| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x % m
        };
        for n in [0usize, 1, 2, 7, 300, 5_000] {
            let mut arrival: Vec<Leaf> = (0..n as u64)
                .map(|i| {
                    let mut l = leaf(next(3), 10 + next(4) as u32, RcodeClass::NoError);
                    l.timestamp_ms = 60_000 + i / 50 + next(2);
                    l.name_hash[0] = next(5) as u8;
                    l.repeat = next(3) as u16;
                    l
                })
                .collect();
            // Two buffers merged, as a drain merges shards.
            arrival.sort_by_key(|l| l.timestamp_ms % 2);
            for input in [arrival.clone(), arrival.iter().rev().copied().collect()] {
                let mut want = input.clone();
                for l in &mut want {
                    l.repeat = 0;
                }
                want.sort_unstable_by(Leaf::order);
                for i in 1..want.len() {
                    if want[i - 1].same_answer(&want[i]) {
                        want[i].repeat = want[i - 1].repeat + 1;
                    }
                }
                let mut got = input;
                order_leaves(&mut got).unwrap();
                assert_eq!(got, want, "{n} leaves");
                assert!(got.windows(2).all(|w| w[0].order(&w[1]).is_lt()));
            }
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
        let header = BatchHeader::new(
            DeploymentId([3; 32]),
            BackendId::new("edge-ingress").unwrap(),
            WindowLen::new(60).unwrap(),
            WindowId(1),
        );
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
        // Two identical answers are both kept, told apart by `repeat`.
        assert_eq!(batch.leaf_proof(0).unwrap().leaf, ok);
        assert_eq!(batch.leaf_proof(1).unwrap().leaf.repeat, 1);
        assert!(batch.leaf_proof(1).unwrap().leaf.same_answer(&ok));
    }
}
