//! Sealing a window whose leaves arrive in chunks, in constant memory.
//!
//! [`WindowStream`] takes a window's leaves already in the strict order of v2
//! ([`crate::order_leaves`]), chunk after chunk, and keeps only running totals: the
//! RFC 6962 root under construction ([`RootBuilder`], at most 64 subtree roots), the service
//! summary counts, the ticketed counts, the name sketch with its witnesses, and the last leaf
//! (to check the order of the next one). Nothing else of the leaves is kept: the caller
//! stores them where it serves proofs from. Its [`WindowStream::seal`] signs the receipt that
//! [`ClosedBatch::seal`](crate::ClosedBatch::seal) would sign for the same leaves, byte for
//! byte.
//!
//! Each leaf is hashed once. On the way to the root the stream computes the root of every
//! aligned chunk of [`CHUNK_LEAVES`] leaves (a perfect subtree of the window's tree), and
//! [`WindowStream::append_streamed`] hands those roots out with the leaves
//! ([`StreamedLeaves`]): a store that keeps a window's leaves in such chunks, and serves a
//! proof as the path inside the chunk followed by the chunk's path among the chunk roots,
//! stores them without hashing a leaf again.

use alloc::vec::Vec;
use core::cmp::Ordering;

use ed25519_dalek::SigningKey;

use crate::batch::{
    BatchHeader, SealError, Sealed, SketchWitnesses, SummaryAcc, TicketAcc, window_bounds,
};
use crate::leaf::{Leaf, MAX_RESPONSE_BYTES};
use crate::merkle::{Hash, RootBuilder};
use crate::receipt::Receipt;
use crate::tags::ReceiptType;

/// `log2` of [`CHUNK_LEAVES`].
pub const CHUNK_LEVEL: u32 = 8;

/// Leaves per chunk whose root [`WindowStream::append_streamed`] reports: chunk `k` holds
/// the leaves of Merkle indices `k * CHUNK_LEAVES .. (k + 1) * CHUNK_LEAVES`. A power of two,
/// so a window's tree is the RFC 6962 tree over its chunk roots (the last chunk may be
/// shorter).
pub const CHUNK_LEAVES: usize = 1 << CHUNK_LEVEL;

/// Leaves just appended to a [`WindowStream`], with the roots of the chunks of
/// [`CHUNK_LEAVES`] leaves they complete (what [`WindowStream::append_streamed`] returns and
/// a store of the window's leaves takes).
///
/// The chunk roots are those of chunks `first_index / CHUNK_LEAVES` up to (not including)
/// `(first_index + leaves.len()) / CHUNK_LEAVES`: every chunk whose last leaf is among
/// `leaves`, in order. A chunk started by earlier appends and completed here is among them;
/// the chunk the last leaves start and do not complete is not (its root comes with the
/// append that completes it, or is computed from its leaves when the window is sealed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamedLeaves<'a> {
    /// The Merkle index of the first leaf.
    pub first_index: u64,
    /// The leaves, in Merkle order (the strict order of v2).
    pub leaves: &'a [Leaf],
    /// The RFC 6962 root of every chunk completed by `leaves`, in chunk order.
    pub chunk_roots: &'a [Hash],
}

impl StreamedLeaves<'_> {
    /// The Merkle index after the last leaf (the stream's length after this append).
    pub fn end_index(&self) -> u64 {
        self.first_index
            .saturating_add(u64::try_from(self.leaves.len()).unwrap_or(u64::MAX))
    }

    /// The chunk of the first root in `chunk_roots` (`first_index / CHUNK_LEAVES`).
    pub const fn first_chunk(&self) -> u64 {
        self.first_index >> CHUNK_LEVEL
    }

    /// How many chunks `leaves` complete: the length `chunk_roots` must have.
    pub fn completed_chunks(&self) -> u64 {
        (self.end_index() >> CHUNK_LEVEL).saturating_sub(self.first_chunk())
    }
}

/// A v2 receipt window sealed from a stream: the signed receipt and the witness leaf index of
/// every sketch register (what [`ClosedBatch::sketch_witnesses`](crate::ClosedBatch::sketch_witnesses)
/// gives for a batch sealed at once).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedWindow {
    /// The signed receipt.
    pub receipt: Receipt,
    /// For every sketch register, the Merkle index of its witness leaf (`u64::MAX` when the
    /// register is empty).
    pub witnesses: SketchWitnesses,
}

/// An open v2 window fed leaves in strict order, in constant memory (see the module docs).
///
/// ```
/// use ed25519_dalek::SigningKey;
/// use tolldns_core::{BackendId, DeploymentId, WindowId, WindowLen};
/// use tolldns_receipts::*;
///
/// let header = BatchHeader::new(
///     DeploymentId([1; 32]),
///     BackendId::new("edge-ingress")?,
///     WindowLen::new(60)?,
///     WindowId(1),
/// );
/// let mut leaves: Vec<Leaf> = (0..10u64)
///     .map(|i| Leaf {
///         timestamp_ms: 60_000 + i / 3,
///         transport: Transport::Udp,
///         qtype: 1,
///         rcode_class: RcodeClass::NoError,
///         work_class: WorkClass::CacheHit,
///         flags: LeafFlags::default(),
///         latency: LatencyBucket::from_millis(1),
///         response_bytes: 100,
///         name_hash: [7; 16],
///         ticket: [0; 16],
///         response_summary_hash: [0; 16],
///         repeat: 0,
///     })
///     .collect();
/// order_leaves(&mut leaves)?;
/// let mut stream = WindowStream::new(header);
/// stream.append(&leaves[..4])?;
/// stream.append(&leaves[4..])?;
/// let key = SigningKey::from_bytes(&[3; 32]);
/// let sealed = stream.seal([0; 32], 120_000, &key)?;
/// let batch = ClosedBatch::seal(&header, leaves, [0; 32], 120_000, &key)?;
/// assert_eq!(sealed.receipt, *batch.receipt());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct WindowStream {
    header: BatchHeader,
    bounds: Result<(u64, u64), SealError>,
    root: RootBuilder,
    summary: SummaryAcc,
    tickets: TicketAcc,
    last: Option<Leaf>,
}

impl WindowStream {
    /// An empty stream for the window of `header`.
    pub fn new(header: BatchHeader) -> Self {
        Self {
            bounds: window_bounds(&header),
            header,
            root: RootBuilder::new(),
            summary: SummaryAcc::new(),
            tickets: TicketAcc::new(),
            last: None,
        }
    }

    /// The header the receipt is sealed with.
    pub const fn header(&self) -> &BatchHeader {
        &self.header
    }

    /// Leaves appended so far (the Merkle index of the next one).
    pub const fn len(&self) -> u64 {
        self.root.len()
    }

    /// Whether no leaf was appended.
    pub const fn is_empty(&self) -> bool {
        self.root.is_empty()
    }

    /// Append leaves in the strict order of v2, all after every leaf appended before: each
    /// must lie in the window, claim at most 65,535 response bytes, come strictly after the
    /// previous leaf ([`Leaf::order`]) and carry the `repeat` that numbers it among the
    /// identical leaves before it (what [`crate::order_leaves`] sets). The chunk is checked
    /// first and counted only when every leaf of it passes.
    ///
    /// # Errors
    ///
    /// [`SealError::LeafOutsideWindow`] and [`SealError::ResponseTooLarge`] (the index is the
    /// position in `leaves`), [`SealError::OutOfOrder`] and [`SealError::RepeatMismatch`] (the
    /// index is the Merkle index), [`SealError::WindowOutOfRange`], [`SealError::TooManyBytes`].
    /// The stream is unchanged after an error.
    pub fn append(&mut self, leaves: &[Leaf]) -> Result<(), SealError> {
        self.append_inner(leaves, None)
    }

    /// [`append`](Self::append) the leaves and return them with the root of every chunk of
    /// [`CHUNK_LEAVES`] leaves they complete, written into `chunk_roots` (cleared first; a
    /// buffer the caller reuses). The chunk roots are intermediate nodes of the root under
    /// construction: nothing is hashed twice.
    ///
    /// # Errors
    ///
    /// As [`append`](Self::append); the stream is unchanged and `chunk_roots` empty after an
    /// error.
    pub fn append_streamed<'a>(
        &mut self,
        leaves: &'a [Leaf],
        chunk_roots: &'a mut Vec<Hash>,
    ) -> Result<StreamedLeaves<'a>, SealError> {
        chunk_roots.clear();
        let first_index = self.len();
        self.append_inner(leaves, Some(&mut *chunk_roots))?;
        Ok(StreamedLeaves {
            first_index,
            leaves,
            chunk_roots,
        })
    }

    fn append_inner(
        &mut self,
        leaves: &[Leaf],
        mut chunk_roots: Option<&mut Vec<Hash>>,
    ) -> Result<(), SealError> {
        let (start, end) = self.bounds?;
        let mut prev = self.last;
        for (i, l) in leaves.iter().enumerate() {
            let index = self
                .root
                .len()
                .saturating_add(u64::try_from(i).unwrap_or(u64::MAX));
            if l.timestamp_ms < start || l.timestamp_ms >= end {
                return Err(SealError::LeafOutsideWindow { index: i });
            }
            if l.response_bytes > MAX_RESPONSE_BYTES {
                return Err(SealError::ResponseTooLarge { index: i });
            }
            let repeat = match prev {
                Some(p) => {
                    if p.order(l) != Ordering::Less {
                        return Err(SealError::OutOfOrder { index });
                    }
                    if p.same_answer(l) {
                        p.repeat.checked_add(1)
                    } else {
                        Some(0)
                    }
                }
                None => Some(0),
            };
            if repeat != Some(l.repeat) {
                return Err(SealError::RepeatMismatch { index });
            }
            prev = Some(*l);
        }
        let mut summary = self.summary.clone();
        for l in leaves {
            summary.add(l)?;
        }
        self.summary = summary;
        for l in leaves {
            self.tickets.add(self.root.len(), l);
            let completed = self.root.push_completing(l.hash(), CHUNK_LEVEL);
            if let (Some(r), Some(out)) = (completed, chunk_roots.as_deref_mut()) {
                out.push(r);
            }
        }
        self.last = prev;
        Ok(())
    }

    /// The RFC 6962 root of the leaves appended so far.
    pub fn root(&self) -> Hash {
        self.root.finish()
    }

    /// Sign the receipt of the leaves appended so far: byte-identical to
    /// [`ClosedBatch::seal`](crate::ClosedBatch::seal) of the same leaves, with the same
    /// sketch witnesses. The stream stays usable (more leaves can be appended and sealed
    /// again).
    ///
    /// # Errors
    ///
    /// [`SealError::PerRequestNeedsOneLeaf`] for a per-request receipt without exactly one
    /// leaf, [`SealError::WindowOutOfRange`], or [`SealError::Signature`].
    pub fn seal(
        &self,
        name_key_commitment: Hash,
        timestamp_ms: u64,
        key: &SigningKey,
    ) -> Result<SealedWindow, SealError> {
        self.bounds?;
        if self.header.receipt_type == ReceiptType::PerRequest && self.len() != 1 {
            return Err(SealError::PerRequestNeedsOneLeaf);
        }
        let receipt = Sealed {
            header: &self.header,
            service_summary: self.summary.finish(),
            merkle_root: self.root.finish(),
            tickets: Some(&self.tickets),
        }
        .sign(name_key_commitment, timestamp_ms, key)?;
        Ok(SealedWindow {
            receipt,
            witnesses: self.tickets.witnesses,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::{ClosedBatch, order_leaves};
    use crate::leaf::LeafFlags;
    use crate::tags::{LatencyBucket, RcodeClass, Transport, WorkClass};
    use tolldns_core::{BackendId, DeploymentId, WindowId, WindowLen};

    fn header() -> BatchHeader {
        BatchHeader::new(
            DeploymentId([3; 32]),
            BackendId::new("edge-ingress").unwrap(),
            WindowLen::new(60).unwrap(),
            WindowId(1),
        )
    }

    fn leaf(ts: u64) -> Leaf {
        Leaf {
            timestamp_ms: ts,
            transport: Transport::Udp,
            qtype: 1,
            rcode_class: RcodeClass::NoError,
            work_class: WorkClass::CacheHit,
            flags: LeafFlags::default(),
            latency: LatencyBucket::Lt25,
            response_bytes: 10,
            name_hash: [1; 16],
            ticket: [2; 16],
            response_summary_hash: [0; 16],
            repeat: 0,
        }
    }

    #[test]
    fn append_refuses_disorder_wrong_repeats_and_foreign_leaves_unchanged() {
        let mut s = WindowStream::new(header());
        s.append(&[leaf(60_001), leaf(60_002)]).unwrap();
        let before = s.root();
        // Earlier than the last leaf.
        assert_eq!(
            s.append(&[leaf(60_003), leaf(60_000)]),
            Err(SealError::OutOfOrder { index: 3 })
        );
        // The same leaf again without its repeat number (not after the last), or with a
        // wrong one.
        assert_eq!(
            s.append(&[leaf(60_002)]),
            Err(SealError::OutOfOrder { index: 2 })
        );
        let mut r = leaf(60_002);
        r.repeat = 2;
        assert_eq!(s.append(&[r]), Err(SealError::RepeatMismatch { index: 2 }));
        let mut first = leaf(60_005);
        first.repeat = 1;
        assert_eq!(
            s.append(&[first]),
            Err(SealError::RepeatMismatch { index: 2 })
        );
        assert_eq!(
            s.append(&[leaf(120_000)]),
            Err(SealError::LeafOutsideWindow { index: 0 })
        );
        let mut big = leaf(60_010);
        big.response_bytes = MAX_RESPONSE_BYTES + 1;
        assert_eq!(
            s.append(&[leaf(60_009), big]),
            Err(SealError::ResponseTooLarge { index: 1 })
        );
        assert_eq!((s.len(), s.root()), (2, before));
        r.repeat = 1;
        s.append(&[r]).unwrap();
        assert_eq!(s.len(), 3);
        let key = SigningKey::from_bytes(&[1; 32]);
        let sealed = s.seal([0; 32], 1, &key).unwrap();
        let batch = ClosedBatch::seal(
            &header(),
            vec![leaf(60_002), leaf(60_001), leaf(60_002)],
            [0; 32],
            1,
            &key,
        )
        .unwrap();
        assert_eq!(sealed.receipt, *batch.receipt());
        assert_eq!(sealed.witnesses, *batch.sketch_witnesses());
    }

    /// Leaves appended in pieces of every size around the chunk size hand out exactly the
    /// roots of the chunks they complete, and the stream seals as at once.
    #[test]
    fn streamed_appends_report_each_completed_chunk_root_once() {
        let mut leaves: Vec<Leaf> = (0..1_300u64)
            .map(|i| {
                let mut l = leaf(60_000 + i / 3);
                l.name_hash = [(i % 251) as u8; 16];
                l
            })
            .collect();
        order_leaves(&mut leaves).unwrap();
        let hashes: Vec<Hash> = leaves.iter().map(Leaf::hash).collect();
        let want: Vec<Hash> = hashes
            .chunks_exact(CHUNK_LEAVES)
            .map(crate::merkle::root)
            .collect();
        let key = SigningKey::from_bytes(&[1; 32]);
        let batch = ClosedBatch::seal(&header(), leaves.clone(), [0; 32], 1, &key).unwrap();
        for sizes in [
            &[1usize][..],
            &[255, 1, 256, 0, 513, 7],
            &[1_300],
            &[300, 3],
        ] {
            let mut s = WindowStream::new(header());
            let mut roots = Vec::new();
            let mut got = Vec::new();
            let mut at = 0;
            for size in sizes.iter().cycle() {
                if at >= leaves.len() {
                    break;
                }
                let end = (at + size).min(leaves.len());
                let run = s.append_streamed(&leaves[at..end], &mut roots).unwrap();
                assert_eq!(run.first_index, at as u64);
                assert_eq!(run.end_index(), end as u64);
                assert_eq!(run.first_chunk(), (at / CHUNK_LEAVES) as u64);
                assert_eq!(run.completed_chunks(), run.chunk_roots.len() as u64);
                got.extend_from_slice(run.chunk_roots);
                at = end;
            }
            assert_eq!(got, want, "{sizes:?}");
            let sealed = s.seal([0; 32], 1, &key).unwrap();
            assert_eq!(sealed.receipt, *batch.receipt());
        }
        // A refused append hands out nothing and leaves the stream as it was.
        let mut s = WindowStream::new(header());
        let mut roots = vec![[9; 32]];
        assert_eq!(
            s.append_streamed(&[leaf(1)], &mut roots),
            Err(SealError::LeafOutsideWindow { index: 0 })
        );
        assert!(roots.is_empty() && s.is_empty());
    }

    #[test]
    fn per_request_and_empty_windows_seal_as_at_once() {
        let key = SigningKey::from_bytes(&[1; 32]);
        let empty = WindowStream::new(header()).seal([5; 32], 9, &key).unwrap();
        let batch = ClosedBatch::seal(&header(), vec![], [5; 32], 9, &key).unwrap();
        assert_eq!(empty.receipt, *batch.receipt());
        let mut h = header();
        h.receipt_type = ReceiptType::PerRequest;
        let mut s = WindowStream::new(h);
        assert_eq!(
            s.seal([0; 32], 0, &key).err(),
            Some(SealError::PerRequestNeedsOneLeaf)
        );
        let mut one = vec![leaf(60_000)];
        order_leaves(&mut one).unwrap();
        s.append(&one).unwrap();
        assert_eq!(
            s.seal([0; 32], 0, &key).unwrap().receipt,
            *ClosedBatch::seal(&h, one, [0; 32], 0, &key)
                .unwrap()
                .receipt()
        );
    }
}
