//! The receipt journal: one redb database (`<data_dir>/journal.redb`) holding every signed batch
//! receipt (forever), the leaves of each batch (for the audit window, bounded in bytes), the
//! toll-ticket tokens redeemed in each window (as long as that window's leaves), the set of
//! redeemed ticket ids (until their issuer key expires), the outbox of pending watcher
//! deliveries, the per-epoch name keys, and the counters that make lost leaves visible.
//!
//! Every write is one transaction committed with redb's default `Durability::Immediate` (the
//! file is synced before `commit` returns), so a batch is on disk, with its outbox entries,
//! before it is reported as signed. The one exception is an append to an open stream, which
//! is not synced on its own: an open stream is removed after a crash anyway, and the next
//! durable commit (checkpoint, seal, prune) persists every append made before it.
//!
//! # Lost leaves
//!
//! While the edge runs, an *open-run marker* holds three numbers: the leaves the edge had
//! accepted at the last checkpoint, the leaves appended to streams since the start, and the
//! leaves *accounted for* since the start (journaled in signed batches, or already counted as
//! lost with an abandoned stream). A clean stop closes the last window, journals it, removes
//! what is left of open streams and removes the marker. After a crash the marker is still
//! there at the next start: the open streams are removed, and `max(accepted, appended) -
//! accounted` leaves were accepted but never made it into a journaled batch; they are added to
//! the persistent `leaves_lost_total` counter (exported as
//! `tolldns_receipt_leaves_lost_total`). Leaves accepted after the last checkpoint and not yet
//! appended are not seen; the count is a lower bound.
//!
//! # Retention and the disk bound
//!
//! Signed receipts are never deleted. The leaves of a batch are deleted when its audit window
//! (`journal.audit_window_secs` after it was journaled) has passed. When the stored leaf bytes
//! exceed `journal.max_leaf_bytes`, the leaves of the oldest batches are deleted first, even
//! inside their audit window (counted as `evicted`); audits of those batches then answer
//! `410 Gone`.
//!
//! # Streams
//!
//! The edge hands a window's leaves to the journal while the window is still open, in Merkle
//! order, a few at a time ([`Journal::stream_append`]): the journal stores them in an *open
//! stream* keyed by (window, backend), before the batch (and so its id) exists. Every append
//! is one transaction: the complete chunks of [`CHUNK_LEAVES`] leaves it fills are written with
//! their RFC 6962 roots (as the edge's window stream computed them on the way to the window's
//! root: the journal does not hash a leaf again) and their ticket-index rows; at most one
//! partial chunk per open stream waits in memory. [`Journal::stream_seal`] then writes the partial chunk, checks that the
//! root over the stored chunk roots is the receipt's `merkle_root` and that the leaf count is
//! its `leaf_count`, and stores the receipt, the sketch witnesses, the link from the batch id
//! to the stream and the outbox entries, in one transaction. Memory therefore does not grow
//! with the window.
//!
//! A stream that is never sealed (the edge gave it up, or the process stopped before the
//! window closed) is removed with its leaves, which are counted as lost: at
//! [`Journal::stream_abandon`], at the next [`Journal::prune`] when that failed, and at
//! [`Journal::open`] after a crash (see *Lost leaves*).
//!
//! # Stored leaves and proofs
//!
//! The leaves of a v2 batch are stored in chunks of [`CHUNK_LEAVES`] leaves with the RFC 6962
//! root of every chunk, the indices of the ticketed leaves of each chunk by ticket, and the
//! witness leaf of every name-sketch register (`sketch_witnesses`). A chunk is a power of two,
//! so the batch's tree is exactly the RFC 6962 tree over the chunk roots: a proof is the proof
//! inside the leaf's chunk followed by the chunk's proof among the chunk roots. An audit
//! therefore reads the chunk roots and the chunks it samples, never the whole window, and
//! refuses to answer from a chunk whose leaves do not hash to its stored root.
//! Streamed batches keep their rows under the stream (`stream_chunks`, `stream_roots`,
//! `stream_tickets`, linked by `batch_streams`); batches journaled by earlier versions keep
//! theirs under the batch id (`leaf_chunks`, `chunk_roots`, `ticket_index`) and are served as
//! before. (`leaves` keeps an empty marker for a v2 batch, and the whole leaf blob of a v1
//! batch journaled by an earlier version, which is still served.)
//!
//! # Redeemed tokens
//!
//! Every token the edge redeems is stored once (deduplicated by ticket id) with the window it
//! was redeemed in, so that an auditor of a ticketed leaf can fetch the token behind its
//! ticket id and verify the issuer's signature. A window's tokens are deleted when the leaves
//! of that window are (audit window over, or evicted by the disk bound: `journal.max_leaf_bytes`
//! counts leaf and token bytes together). Tokens of a window that never got a batch (its
//! leaves were lost, or none were recorded in it) are deleted once `audit_window` has passed
//! since their redemption.
//!
//! The *redeemed set* outlives the tokens: a ticket id stays in it, with its issuer key's
//! expiry, until that key expires (a key without expiry: forever). The edge reads it once at
//! start ([`Journal::redeemed_tickets`]) so that a restart never makes a token redeemable
//! again. Its size is bounded by the edge's `tickets.max_redeemed` (the edge refuses further
//! redemptions when its set is full) and exported as `tolldns_journal_redeemed_tickets`.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, PoisonError};

use redb::{ReadableTable as _, ReadableTableMetadata as _, TableDefinition};
use tolldns_core::NameKey;
use tolldns_receipts::{
    AuditAnswer, BatchHeader, Hash, LEAF_LEN, LEAF_LEN_V1, Leaf, LeafProof, MerkleProof,
    MerkleTree, Receipt, SKETCH_REGISTERS, SketchWitnesses, StreamedLeaves, sketch_with_witnesses,
};

/// A batch id: SHA-256 of the receipt's canonical (Borsh) bytes, signature included.
pub type BatchId = [u8; 32];

const BATCHES: TableDefinition<'_, BatchId, &[u8]> = TableDefinition::new("batches");
const BY_WINDOW: TableDefinition<'_, (u64, BatchId), ()> = TableDefinition::new("by_window");
/// id -> (journaled_at_ms, leaf_count, stored leaf bytes; 0 once deleted).
const META: TableDefinition<'_, BatchId, (u64, u64, u64)> = TableDefinition::new("batch_meta");
const LEAVES: TableDefinition<'_, BatchId, &[u8]> = TableDefinition::new("leaves");
/// (id, chunk) -> up to `CHUNK_LEAVES` v2 leaves.
const LEAF_CHUNKS: TableDefinition<'_, (BatchId, u32), &[u8]> = TableDefinition::new("leaf_chunks");
/// id -> the RFC 6962 root of every chunk, 32 bytes each.
const CHUNK_ROOTS: TableDefinition<'_, BatchId, &[u8]> = TableDefinition::new("chunk_roots");
/// (id, ticket) -> the indices (u64 LE) of the leaves with that ticket, ascending.
const TICKET_INDEX: TableDefinition<'_, (BatchId, [u8; 16]), &[u8]> =
    TableDefinition::new("ticket_index");
/// id -> the witness leaf index (u64 LE; `u64::MAX` for none) of each sketch register.
const WITNESSES: TableDefinition<'_, BatchId, &[u8]> = TableDefinition::new("sketch_witnesses");

/// Leaves per stored chunk (a power of two): the chunks whose roots the edge's window stream
/// hands over with the leaves ([`StreamedLeaves`]).
pub const CHUNK_LEAVES: usize = 256;
const _: () = assert!(CHUNK_LEAVES == tolldns_receipts::CHUNK_LEAVES);

/// A stream id (allocated from the `next_stream` counter).
type StreamId = u64;
/// stream -> (window id, backend id, leaves stored in its chunks, bytes stored): a stream
/// without a receipt yet. The row goes when the stream is sealed or removed.
const STREAMS: TableDefinition<'_, StreamId, (u64, &str, u64, u64)> =
    TableDefinition::new("streams");
/// (stream, chunk) -> `CHUNK_LEAVES` v2 leaves (fewer in the last chunk of a sealed stream).
const STREAM_CHUNKS: TableDefinition<'_, (StreamId, u32), &[u8]> =
    TableDefinition::new("stream_chunks");
/// (stream, chunk) -> the chunk's RFC 6962 root.
const STREAM_ROOTS: TableDefinition<'_, (StreamId, u32), [u8; 32]> =
    TableDefinition::new("stream_roots");
/// (stream, ticket, chunk) -> the indices (u64 LE, in the batch) of the chunk's leaves with
/// that ticket, ascending.
const STREAM_TICKETS: TableDefinition<'_, (StreamId, [u8; 16], u32), &[u8]> =
    TableDefinition::new("stream_tickets");
/// id -> the stream holding the batch's leaves.
const BATCH_STREAMS: TableDefinition<'_, BatchId, StreamId> = TableDefinition::new("batch_streams");
/// Streams whose leaves were pruned but whose rows are still to be deleted: a window of
/// millions of leaves is deleted a bounded number of rows per transaction
/// ([`Journal::collect_garbage`]), so that appends to the open stream never wait for a whole
/// window's deletion.
const STREAM_GARBAGE: TableDefinition<'_, StreamId, ()> = TableDefinition::new("stream_garbage");
/// (id, watcher url) -> (attempts, next_attempt_ms).
const OUTBOX: TableDefinition<'_, (BatchId, &str), (u32, u64)> = TableDefinition::new("outbox");
const NAME_KEYS: TableDefinition<'_, u64, [u8; 32]> = TableDefinition::new("name_keys");
const COUNTERS: TableDefinition<'_, &str, u64> = TableDefinition::new("counters");
/// A ticket id: `SHA256("TOLLDNS-TICKET-V1\0" || token)[..16]`.
pub type TicketId = [u8; 16];
/// A ticket id in the redeemed set, with its issuer key's expiry (unix seconds, exclusive).
pub type Redeemed = (TicketId, Option<u64>);
/// A stored token: (window id, redeemed_ms, issuer key not_after, token bytes).
type TokenRow<'a> = (u64, u64, Option<u64>, &'a [u8]);

/// ticket id -> (window id, redeemed_ms, issuer key not_after (unix s), token bytes).
const TOKENS: TableDefinition<'_, TicketId, TokenRow<'_>> = TableDefinition::new("tokens");
/// (window id, ticket id) -> stored bytes of the token.
const TOKENS_BY_WINDOW: TableDefinition<'_, (u64, TicketId), u64> =
    TableDefinition::new("tokens_by_window");
/// ticket id -> issuer key not_after (unix s; `None`: the key does not expire).
const REDEEMED: TableDefinition<'_, TicketId, Option<u64>> = TableDefinition::new("redeemed");
/// (issuer key not_after, ticket id) -> (), for the redeemed ids whose key expires.
const REDEEMED_EXPIRY: TableDefinition<'_, (u64, TicketId), ()> =
    TableDefinition::new("redeemed_expiry");
/// "open" -> (accepted at last checkpoint, accounted for this run: journaled or counted lost);
/// "appended" -> (leaves appended to streams this run, 0).
const RUN: TableDefinition<'_, &str, (u64, u64)> = TableDefinition::new("run");

const C_LOST: &str = "leaves_lost_total";
const C_JOURNALED: &str = "leaves_journaled_total";
const C_EXPIRED: &str = "leaves_expired_total";
const C_EVICTED: &str = "leaves_evicted_total";
const C_LEAF_BYTES: &str = "leaf_bytes";
const C_RECEIPT_BYTES: &str = "receipt_bytes";
const C_TOKEN_BYTES: &str = "token_bytes";
const C_TOKENS_EXPIRED: &str = "tokens_expired_total";
const C_TOKENS_EVICTED: &str = "tokens_evicted_total";
const C_NEXT_STREAM: &str = "next_stream";
const OPEN: &str = "open";
const APPENDED: &str = "appended";
/// Bytes of the sketch witnesses of a batch.
const WITNESS_BYTES: u64 = SKETCH_REGISTERS as u64 * 8;

/// Why a journal operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum JournalError {
    /// The database failed.
    #[error("receipt journal: {0}")]
    Db(Box<redb::Error>),
    /// Stored bytes do not decode (the file was damaged).
    #[error("receipt journal: stored {what} is damaged")]
    Corrupt {
        /// What failed to decode.
        what: &'static str,
    },
    /// An append that does not continue its window's stream: the first leaf of an append
    /// must be the stream's next Merkle index (0 opens the stream).
    #[error(
        "receipt journal: window {window} stream holds {expected} leaves; an append at index {got} does not continue it"
    )]
    StreamGap {
        /// The window.
        window: u64,
        /// Leaves the stream holds (the index the next append must start at).
        expected: u64,
        /// The index the append started at.
        got: u64,
    },
    /// An append whose chunk roots are not one per chunk its leaves complete: nothing is
    /// stored.
    #[error(
        "receipt journal: window {window} append completes {expected} chunks but carries {got} chunk roots"
    )]
    ChunkRoots {
        /// The window.
        window: u64,
        /// Chunks the append completes.
        expected: u64,
        /// Chunk roots it carries.
        got: u64,
    },
    /// A seal for a window without an open stream.
    #[error("receipt journal: no open stream for window {window}")]
    NoStream {
        /// The window.
        window: u64,
    },
    /// The receipt does not commit to the stored leaves (count or Merkle root): nothing is
    /// stored and the stream stays open (to be abandoned).
    #[error("receipt journal: {what} of the window {window} receipt does not match its stream")]
    StreamMismatch {
        /// The window.
        window: u64,
        /// What differs: `leaf_count`, `merkle_root`, `sketch witness`, `version`.
        what: &'static str,
    },
}

macro_rules! db_error {
    ($($t:ty),*) => {$(
        impl From<$t> for JournalError {
            fn from(e: $t) -> Self {
                Self::Db(Box::new(e.into()))
            }
        }
    )*};
}
db_error!(
    redb::Error,
    redb::DatabaseError,
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError
);

/// Why an audit request cannot be answered.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuditError {
    /// No batch with this id.
    #[error("no such batch")]
    NotFound,
    /// Its leaves were deleted (audit window over, or the disk bound).
    #[error("the leaves of this batch are no longer kept")]
    Pruned,
    /// More leaves than one answer may carry.
    #[error("{leaves} leaves, more than one answer may carry")]
    TooMany {
        /// Leaves asked for.
        leaves: usize,
    },
    /// The journal failed.
    #[error(transparent)]
    Journal(#[from] JournalError),
}

/// Counters and sizes, for metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct JournalStats {
    /// Signed batch receipts stored.
    pub batches: u64,
    /// Bytes of stored receipts.
    pub receipt_bytes: u64,
    /// Bytes of stored leaves.
    pub leaf_bytes: u64,
    /// Leaves accepted by the edge that never reached a journaled batch (all runs).
    pub leaves_lost_total: u64,
    /// Leaves journaled in signed batches (all runs).
    pub leaves_journaled_total: u64,
    /// Leaves deleted because their audit window passed.
    pub leaves_expired_total: u64,
    /// Leaves deleted early because of the disk bound.
    pub leaves_evicted_total: u64,
    /// Pending watcher deliveries.
    pub outbox_pending: u64,
    /// Size of the database file.
    pub file_bytes: u64,
    /// Redeemed tokens stored (for audits).
    pub tokens: u64,
    /// Bytes of stored tokens.
    pub token_bytes: u64,
    /// Tokens deleted with the leaves of their window (audit window over).
    pub tokens_expired_total: u64,
    /// Tokens deleted early because of the disk bound.
    pub tokens_evicted_total: u64,
    /// Ticket ids in the redeemed set (kept until their issuer key expires).
    pub redeemed_tickets: u64,
}

/// A redeemed toll-ticket token as the journal stores and serves it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRecord {
    /// The ticket id: `SHA256("TOLLDNS-TICKET-V1\0" || token)[..16]`, what leaves carry.
    pub ticket_id: TicketId,
    /// The token's bytes (RFC 9578 `Token` encoding).
    pub token: Vec<u8>,
    /// The window it was redeemed in.
    pub window_id: u64,
    /// When it was redeemed (unix milliseconds).
    pub redeemed_ms: u64,
    /// When its issuer key expires (unix seconds, exclusive), if it does.
    pub key_not_after: Option<u64>,
}

/// What one [`Journal::prune`] deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pruned {
    /// Leaves deleted because their audit window passed.
    pub leaves_expired: u64,
    /// Leaves deleted early because of the disk bound.
    pub leaves_evicted: u64,
    /// Tokens deleted with their window's leaves, or past the audit window without a batch.
    pub tokens_expired: u64,
    /// Tokens deleted early because of the disk bound.
    pub tokens_evicted: u64,
    /// Ticket ids dropped from the redeemed set because their issuer key expired.
    pub redeemed_expired: u64,
}

/// One pending delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxEntry {
    /// The batch.
    pub id: BatchId,
    /// The watcher URL.
    pub url: String,
    /// Failed attempts so far.
    pub attempts: u32,
    /// Not before this time.
    pub next_attempt_ms: u64,
}

/// Where the chunks of a v2 batch are stored.
#[derive(Clone, Copy)]
enum Chunks {
    /// Under the batch id (journaled whole by an earlier version).
    Batch(BatchId),
    /// Under the stream it was appended to.
    Stream(StreamId),
}

enum Layout {
    /// v2: chunks of `CHUNK_LEAVES` and the tree over their roots.
    Chunked { outer: MerkleTree, chunks: Chunks },
    /// v1 (legacy): every leaf and the whole tree.
    Whole { leaves: Vec<Leaf>, tree: MerkleTree },
}

/// Serves proofs of one batch from its stored chunks, reading each chunk at most once.
struct ProofReader {
    db: redb::ReadTransaction,
    id: BatchId,
    receipt: Receipt,
    layout: Layout,
    chunks: HashMap<u32, (Vec<Leaf>, MerkleTree)>,
}

fn decode_leaves(bytes: &[u8]) -> Result<Vec<Leaf>, JournalError> {
    bytes
        .chunks(LEAF_LEN)
        .map(Leaf::from_bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| JournalError::Corrupt { what: "leaves" })
}

impl ProofReader {
    /// The stored bytes of chunk `chunk`.
    fn chunk_bytes(&self, source: Chunks, chunk: u32) -> Result<Vec<Leaf>, AuditError> {
        let corrupt = || AuditError::from(JournalError::Corrupt { what: "leaves" });
        let bytes = match source {
            Chunks::Batch(id) => self
                .db
                .open_table(LEAF_CHUNKS)
                .map_err(JournalError::from)?
                .get((id, chunk))
                .map_err(JournalError::from)?
                .map(|g| decode_leaves(g.value())),
            Chunks::Stream(stream) => self
                .db
                .open_table(STREAM_CHUNKS)
                .map_err(JournalError::from)?
                .get((stream, chunk))
                .map_err(JournalError::from)?
                .map(|g| decode_leaves(g.value())),
        };
        Ok(bytes.ok_or_else(corrupt)??)
    }

    fn leaf_proof(&mut self, index: u64) -> Result<LeafProof, AuditError> {
        let corrupt = || AuditError::from(JournalError::Corrupt { what: "leaves" });
        let n = self.receipt.body.integrity.leaf_count;
        let (outer, source) = match &self.layout {
            Layout::Whole { leaves, tree } => {
                let leaf = usize::try_from(index)
                    .ok()
                    .and_then(|i| leaves.get(i))
                    .copied()
                    .ok_or_else(corrupt)?;
                let proof = tree.proof(index).map_err(|_| corrupt())?;
                return Ok(LeafProof { leaf, proof });
            }
            Layout::Chunked { outer, chunks } => (outer, *chunks),
        };
        if index >= n {
            return Err(corrupt());
        }
        let chunk_leaves = CHUNK_LEAVES as u64;
        let chunk = u32::try_from(index / chunk_leaves).map_err(|_| corrupt())?;
        let within = index % chunk_leaves;
        let outer_proof = outer.proof(u64::from(chunk)).map_err(|_| corrupt())?;
        if !self.chunks.contains_key(&chunk) {
            let leaves = self.chunk_bytes(source, chunk)?;
            let tree = MerkleTree::from_leaf_hashes(leaves.iter().map(Leaf::hash).collect());
            // The stored root (checked against the receipt at the seal) must be the root of
            // the stored leaves: a proof is never served from leaves it does not lead from.
            if outer.leaf_hash(u64::from(chunk)) != Some(tree.root()) {
                return Err(corrupt());
            }
            self.chunks.insert(chunk, (leaves, tree));
        }
        let (leaves, tree) = self.chunks.get(&chunk).ok_or_else(corrupt)?;
        let leaf = usize::try_from(within)
            .ok()
            .and_then(|i| leaves.get(i))
            .copied()
            .ok_or_else(corrupt)?;
        let inner = tree.proof(within).map_err(|_| corrupt())?;
        let mut path = inner.path;
        path.extend(outer_proof.path);
        Ok(LeafProof {
            leaf,
            proof: MerkleProof {
                leaf_index: index,
                tree_size: n,
                path,
            },
        })
    }

    /// The indices of the batch's leaves with `ticket`, ascending (none for a v1 batch).
    fn ticket_indices(&self, ticket: &TicketId) -> Result<Vec<u64>, JournalError> {
        match &self.layout {
            Layout::Whole { .. } => Ok(Vec::new()),
            Layout::Chunked {
                chunks: Chunks::Batch(id),
                ..
            } => Ok(self
                .db
                .open_table(TICKET_INDEX)?
                .get((*id, *ticket))?
                .map(|g| decode_u64s(g.value()))
                .unwrap_or_default()),
            Layout::Chunked {
                chunks: Chunks::Stream(stream),
                ..
            } => {
                let table = self.db.open_table(STREAM_TICKETS)?;
                let mut out = Vec::new();
                for entry in table.range((*stream, *ticket, 0u32)..=(*stream, *ticket, u32::MAX))? {
                    out.extend(decode_u64s(entry?.1.value()));
                }
                Ok(out)
            }
        }
    }

    /// The witness leaf index of every sketch register (`u64::MAX`: none).
    fn witnesses(&self) -> Result<Vec<u64>, JournalError> {
        Ok(self
            .db
            .open_table(WITNESSES)?
            .get(self.id)?
            .map(|g| decode_u64s(g.value()))
            .unwrap_or_default())
    }
}

fn decode_u64s(bytes: &[u8]) -> Vec<u64> {
    bytes
        .chunks_exact(8)
        .filter_map(|c| c.try_into().ok().map(u64::from_le_bytes))
        .collect()
}

fn usize_u64(n: usize) -> u64 {
    u64::try_from(n).unwrap_or(u64::MAX)
}

/// The tables the chunks of a stream are written to, opened once per transaction.
struct ChunkTables<'t> {
    chunks: redb::Table<'t, (StreamId, u32), &'static [u8]>,
    roots: redb::Table<'t, (StreamId, u32), [u8; 32]>,
    tickets: redb::Table<'t, (StreamId, [u8; 16], u32), &'static [u8]>,
    /// The encoded leaves of the chunk being written (reused from chunk to chunk).
    buf: Vec<u8>,
    /// The ticket-index rows of the chunk being written.
    by_ticket: HashMap<[u8; 16], Vec<u8>>,
}

impl<'t> ChunkTables<'t> {
    fn open(tx: &'t redb::WriteTransaction) -> Result<Self, JournalError> {
        Ok(Self {
            chunks: tx.open_table(STREAM_CHUNKS)?,
            roots: tx.open_table(STREAM_ROOTS)?,
            tickets: tx.open_table(STREAM_TICKETS)?,
            buf: Vec::with_capacity(CHUNK_LEAVES.saturating_mul(LEAF_LEN)),
            by_ticket: HashMap::new(),
        })
    }

    /// Writes chunk `chunk` of stream `stream`: `leaves` (at most `CHUNK_LEAVES`), their RFC
    /// 6962 `root` (as the stream computed it, or [`chunk_root`] of them) and the chunk's
    /// ticket-index rows. Returns the bytes stored.
    fn write(
        &mut self,
        stream: StreamId,
        chunk: u32,
        leaves: &[Leaf],
        root: &Hash,
    ) -> Result<u64, JournalError> {
        self.buf.clear();
        self.by_ticket.clear();
        let first = u64::from(chunk).saturating_mul(CHUNK_LEAVES as u64);
        for (i, leaf) in leaves.iter().enumerate() {
            self.buf.extend_from_slice(&leaf.to_bytes());
            if leaf.is_ticketed() {
                self.by_ticket
                    .entry(leaf.ticket)
                    .or_default()
                    .extend_from_slice(&first.saturating_add(usize_u64(i)).to_le_bytes());
            }
        }
        self.chunks.insert((stream, chunk), self.buf.as_slice())?;
        self.roots.insert((stream, chunk), root)?;
        let mut stored = usize_u64(self.buf.len()).saturating_add(32);
        for (ticket, list) in &self.by_ticket {
            self.tickets
                .insert((stream, *ticket, chunk), list.as_slice())?;
            stored = stored.saturating_add(usize_u64(list.len()).saturating_add(16));
        }
        Ok(stored)
    }

    /// Writes `leaves`, which start at Merkle index `first` (a multiple of `CHUNK_LEAVES`), as
    /// chunks of stream `stream` (all complete but possibly the last), hashing them for their
    /// roots. Returns the bytes stored.
    fn write_hashing(
        &mut self,
        stream: StreamId,
        first: u64,
        leaves: &[Leaf],
    ) -> Result<u64, JournalError> {
        let mut stored = 0u64;
        let first_chunk = first / CHUNK_LEAVES as u64;
        for (c, chunk) in leaves.chunks(CHUNK_LEAVES).enumerate() {
            let c = chunk_number(first_chunk.saturating_add(usize_u64(c)))?;
            stored = stored.saturating_add(self.write(stream, c, chunk, &chunk_root(chunk))?);
        }
        Ok(stored)
    }
}

/// The RFC 6962 root of a chunk's leaves.
fn chunk_root(leaves: &[Leaf]) -> Hash {
    let mut b = tolldns_receipts::merkle::RootBuilder::new();
    for leaf in leaves {
        b.push(leaf.hash());
    }
    b.finish()
}

/// Chunk `c` as stored (a `u32`: 2^40 leaves per window at most).
fn chunk_number(c: u64) -> Result<u32, JournalError> {
    u32::try_from(c).map_err(|_| JournalError::Corrupt { what: "leaves" })
}

/// Allocates a stream id.
fn next_stream(tx: &redb::WriteTransaction) -> Result<StreamId, JournalError> {
    let mut counters = tx.open_table(COUNTERS)?;
    let id = counters.get(C_NEXT_STREAM)?.map_or(0, |g| g.value());
    counters.insert(C_NEXT_STREAM, id.saturating_add(1))?;
    Ok(id)
}

/// Deletes every row of stream `stream`.
fn remove_stream_rows(tx: &redb::WriteTransaction, stream: StreamId) -> Result<(), JournalError> {
    tx.open_table(STREAM_CHUNKS)?
        .retain_in((stream, 0u32)..=(stream, u32::MAX), |_, _| false)?;
    tx.open_table(STREAM_ROOTS)?
        .retain_in((stream, 0u32)..=(stream, u32::MAX), |_, _| false)?;
    tx.open_table(STREAM_TICKETS)?.retain_in(
        (stream, [0u8; 16], 0u32)..=(stream, [0xff; 16], u32::MAX),
        |_, _| false,
    )?;
    tx.open_table(STREAMS)?.remove(stream)?;
    Ok(())
}

/// Deletes at most `max_rows` rows of garbage stream `stream` (chunks first, then roots and
/// ticket rows); the stream leaves the garbage list once none is left (one more row). Returns
/// the rows deleted.
fn collect_one_stream(
    tx: &redb::WriteTransaction,
    stream: StreamId,
    max_rows: usize,
) -> Result<usize, JournalError> {
    let mut deleted = 0usize;
    // Only the first rows are visited (a range reads the pages it yields), then removed.
    {
        let mut chunks = tx.open_table(STREAM_CHUNKS)?;
        let keys: Vec<u32> = chunks
            .range((stream, 0u32)..=(stream, u32::MAX))?
            .take(max_rows)
            .map(|e| e.map(|(k, _)| k.value().1))
            .collect::<Result<_, _>>()?;
        for c in keys {
            chunks.remove((stream, c))?;
            deleted = deleted.saturating_add(1);
        }
    }
    {
        let mut roots = tx.open_table(STREAM_ROOTS)?;
        let keys: Vec<u32> = roots
            .range((stream, 0u32)..=(stream, u32::MAX))?
            .take(max_rows.saturating_sub(deleted))
            .map(|e| e.map(|(k, _)| k.value().1))
            .collect::<Result<_, _>>()?;
        for c in keys {
            roots.remove((stream, c))?;
            deleted = deleted.saturating_add(1);
        }
    }
    {
        let mut tickets = tx.open_table(STREAM_TICKETS)?;
        let keys: Vec<([u8; 16], u32)> = tickets
            .range((stream, [0u8; 16], 0u32)..=(stream, [0xff; 16], u32::MAX))?
            .take(max_rows.saturating_sub(deleted))
            .map(|e| {
                e.map(|(k, _)| {
                    let (_, t, c) = k.value();
                    (t, c)
                })
            })
            .collect::<Result<_, _>>()?;
        for (t, c) in keys {
            tickets.remove((stream, t, c))?;
            deleted = deleted.saturating_add(1);
        }
    }
    let left = tx
        .open_table(STREAM_CHUNKS)?
        .range((stream, 0u32)..=(stream, u32::MAX))?
        .next()
        .is_some()
        || tx
            .open_table(STREAM_ROOTS)?
            .range((stream, 0u32)..=(stream, u32::MAX))?
            .next()
            .is_some()
        || tx
            .open_table(STREAM_TICKETS)?
            .range((stream, [0u8; 16], 0u32)..=(stream, [0xff; 16], u32::MAX))?
            .next()
            .is_some();
    if !left {
        tx.open_table(STREAM_GARBAGE)?.remove(stream)?;
        deleted = deleted.saturating_add(1);
    }
    Ok(deleted)
}

/// Deletes at most about `max_rows` rows of the streams in [`STREAM_GARBAGE`], oldest first
/// (a stream leaves the list, counted as one row, once nothing of it is left). Returns the
/// rows deleted: 0 when the list is empty.
fn collect_stream_garbage(
    tx: &redb::WriteTransaction,
    max_rows: usize,
) -> Result<usize, JournalError> {
    let mut deleted = 0usize;
    while deleted < max_rows {
        let Some(stream) = tx
            .open_table(STREAM_GARBAGE)?
            .first()?
            .map(|(k, _)| k.value())
        else {
            break;
        };
        deleted = deleted.saturating_add(collect_one_stream(
            tx,
            stream,
            max_rows.saturating_sub(deleted),
        )?);
    }
    Ok(deleted)
}

/// Counts `n` leaves as lost; with a run open they are also accounted for (see the module
/// docs), so that the run's settlement does not count them again.
fn count_lost(tx: &redb::WriteTransaction, n: u64) -> Result<(), JournalError> {
    if n == 0 {
        return Ok(());
    }
    add(&mut tx.open_table(COUNTERS)?, C_LOST, n)?;
    let mut run = tx.open_table(RUN)?;
    let marker = run.get(OPEN)?.map(|g| g.value());
    if let Some((accepted, accounted)) = marker {
        run.insert(OPEN, (accepted, accounted.saturating_add(n)))?;
    }
    Ok(())
}

/// Removes the streams without a receipt that are not in `keep`, counting their stored leaves
/// as lost. Returns the leaves counted.
fn remove_streams_except(
    tx: &redb::WriteTransaction,
    keep: &HashSet<StreamId>,
) -> Result<u64, JournalError> {
    let mut gone = Vec::new();
    for entry in tx.open_table(STREAMS)?.iter()? {
        let (k, v) = entry?;
        let (window, _, leaves, _) = v.value();
        if !keep.contains(&k.value()) {
            gone.push((k.value(), window, leaves));
        }
    }
    let mut lost = 0u64;
    for (stream, window, leaves) in gone {
        remove_stream_rows(tx, stream)?;
        tracing::warn!(
            window,
            leaves,
            "receipt stream without a receipt removed: its leaves are counted as lost"
        );
        lost = lost.saturating_add(leaves);
    }
    count_lost(tx, lost)?;
    Ok(lost)
}

/// Adds `n` to the leaves appended this run (when a run is open).
fn add_appended(tx: &redb::WriteTransaction, n: u64) -> Result<(), JournalError> {
    let mut run = tx.open_table(RUN)?;
    if run.get(OPEN)?.is_none() {
        return Ok(());
    }
    let appended = run.get(APPENDED)?.map_or(0, |g| g.value().0);
    run.insert(APPENDED, (appended.saturating_add(n), 0))?;
    Ok(())
}

/// Stores a v2 batch's leaves in chunks keyed by its id, as earlier versions did; returns the
/// bytes stored. Only tests write this layout now (the journal still reads it).
#[cfg(test)]
fn store_chunked(
    tx: &redb::WriteTransaction,
    id: &BatchId,
    leaves: &[Leaf],
) -> Result<u64, JournalError> {
    let mut stored = 0usize;
    let mut roots = Vec::with_capacity(leaves.len().div_ceil(CHUNK_LEAVES).saturating_mul(32));
    {
        let mut chunks = tx.open_table(LEAF_CHUNKS)?;
        let mut buf = Vec::with_capacity(CHUNK_LEAVES.saturating_mul(LEAF_LEN));
        for (c, chunk) in leaves.chunks(CHUNK_LEAVES).enumerate() {
            buf.clear();
            for leaf in chunk {
                buf.extend_from_slice(&leaf.to_bytes());
            }
            let c = u32::try_from(c).map_err(|_| JournalError::Corrupt { what: "leaves" })?;
            chunks.insert((*id, c), buf.as_slice())?;
            roots.extend_from_slice(&tolldns_receipts::merkle::root(
                &chunk.iter().map(Leaf::hash).collect::<Vec<_>>(),
            ));
            stored = stored.saturating_add(buf.len());
        }
    }
    tx.open_table(CHUNK_ROOTS)?.insert(*id, roots.as_slice())?;
    stored = stored.saturating_add(roots.len());
    let mut by_ticket: HashMap<[u8; 16], Vec<u8>> = HashMap::new();
    for (i, leaf) in leaves.iter().enumerate() {
        if leaf.is_ticketed() {
            by_ticket
                .entry(leaf.ticket)
                .or_default()
                .extend_from_slice(&usize_u64(i).to_le_bytes());
        }
    }
    {
        let mut index = tx.open_table(TICKET_INDEX)?;
        for (ticket, list) in &by_ticket {
            index.insert((*id, *ticket), list.as_slice())?;
            stored = stored.saturating_add(list.len()).saturating_add(16);
        }
    }
    let (_, witnesses) = sketch_with_witnesses(leaves);
    let mut w = Vec::with_capacity(SKETCH_REGISTERS.saturating_mul(8));
    for i in witnesses {
        w.extend_from_slice(&i.to_le_bytes());
    }
    tx.open_table(WITNESSES)?.insert(*id, w.as_slice())?;
    stored = stored.saturating_add(w.len());
    tx.open_table(LEAVES)?.insert(*id, [].as_slice())?;
    Ok(usize_u64(stored))
}

/// Deletes everything stored for the leaves of batch `id` but the `leaves` marker.
fn remove_leaf_rows(tx: &redb::WriteTransaction, id: &BatchId) -> Result<(), JournalError> {
    let stream = tx
        .open_table(BATCH_STREAMS)?
        .remove(*id)?
        .map(|g| g.value());
    if let Some(stream) = stream {
        // Deleted later, a bounded number of rows at a time (the leaves marker is already
        // gone, so no audit reads them any more).
        tx.open_table(STREAM_GARBAGE)?.insert(stream, ())?;
    } else {
        tx.open_table(LEAF_CHUNKS)?
            .retain_in((*id, 0u32)..=(*id, u32::MAX), |_, _| false)?;
        tx.open_table(TICKET_INDEX)?
            .retain_in((*id, [0u8; 16])..=(*id, [0xff; 16]), |_, _| false)?;
        tx.open_table(CHUNK_ROOTS)?.remove(*id)?;
    }
    tx.open_table(WITNESSES)?.remove(*id)?;
    Ok(())
}

/// Settles the run marker (if any): `max(accepted, appended) - accounted` leaves are counted as
/// lost, `accepted` being the larger of the checkpointed count and `accepted_now`. Returns them.
fn settle_run(tx: &redb::WriteTransaction, accepted_now: u64) -> Result<u64, JournalError> {
    let (marker, appended) = {
        let mut run = tx.open_table(RUN)?;
        let marker = run.remove(OPEN)?.map(|g| g.value());
        let appended = run.remove(APPENDED)?.map_or(0, |g| g.value().0);
        (marker, appended)
    };
    let lost = marker.map_or(0, |(accepted, accounted)| {
        accepted
            .max(accepted_now)
            .max(appended)
            .saturating_sub(accounted)
    });
    add(&mut tx.open_table(COUNTERS)?, C_LOST, lost)?;
    Ok(lost)
}

/// Checks that the `n` leaves stored in `stream` are what `receipt` commits to, then makes
/// them batch `id`'s: its witnesses, the link to the stream and the `leaves` marker; the
/// stream is no longer open. Returns the batch's stored bytes (`stored` so far and the
/// witnesses) and the tickets its leaves carry.
fn seal_stream_rows(
    tx: &redb::WriteTransaction,
    id: &BatchId,
    receipt: &Receipt,
    stream: StreamId,
    n: u64,
    stored: u64,
    witnesses: &SketchWitnesses,
) -> Result<(u64, Vec<TicketId>), JournalError> {
    let window = receipt.body.window_id.get();
    let mismatch = |what| JournalError::StreamMismatch { window, what };
    if receipt.body.v2.is_none() {
        return Err(mismatch("version"));
    }
    if n != receipt.body.integrity.leaf_count {
        return Err(mismatch("leaf_count"));
    }
    let mut roots = Vec::new();
    for entry in tx
        .open_table(STREAM_ROOTS)?
        .range((stream, 0u32)..=(stream, u32::MAX))?
    {
        roots.push(entry?.1.value());
    }
    if usize_u64(roots.len()) != n.div_ceil(CHUNK_LEAVES as u64) {
        return Err(mismatch("leaf_count"));
    }
    if tolldns_receipts::merkle::root(&roots) != receipt.body.integrity.merkle_root {
        return Err(mismatch("merkle_root"));
    }
    if witnesses.iter().any(|w| *w != u64::MAX && *w >= n) {
        return Err(mismatch("sketch witness"));
    }
    let mut w = Vec::with_capacity(SKETCH_REGISTERS.saturating_mul(8));
    for i in witnesses {
        w.extend_from_slice(&i.to_le_bytes());
    }
    tx.open_table(WITNESSES)?.insert(*id, w.as_slice())?;
    tx.open_table(BATCH_STREAMS)?.insert(*id, stream)?;
    tx.open_table(LEAVES)?.insert(*id, [].as_slice())?;
    tx.open_table(STREAMS)?.remove(stream)?;
    let mut used = Vec::new();
    for entry in tx
        .open_table(STREAM_TICKETS)?
        .range((stream, [0u8; 16], 0u32)..=(stream, [0xff; 16], u32::MAX))?
    {
        let ticket = entry?.0.value().1;
        if used.last() != Some(&ticket) {
            used.push(ticket);
        }
    }
    Ok((stored.saturating_add(WITNESS_BYTES), used))
}

/// Stores receipt `receipt` (`bytes`, id `id`) whose leaves are already stored (`stored`
/// bytes; `used` the tickets they carry): the receipt, its window and metadata, its tokens
/// moved to its window, one outbox entry per watcher, the counters and the run marker.
#[allow(clippy::too_many_arguments)]
fn journal_batch(
    tx: &redb::WriteTransaction,
    id: &BatchId,
    bytes: &[u8],
    receipt: &Receipt,
    stored: u64,
    used: &[TicketId],
    watchers: &[String],
    now_ms: u64,
) -> Result<(), JournalError> {
    let n = receipt.body.integrity.leaf_count;
    let window = receipt.body.window_id.get();
    tx.open_table(BATCHES)?.insert(*id, bytes)?;
    tx.open_table(BY_WINDOW)?.insert((window, *id), ())?;
    tx.open_table(META)?.insert(*id, (now_ms, n, stored))?;
    // A session spans windows: a token is kept as long as the leaves of the latest window
    // that used it, so move it to this window when it was filed earlier.
    {
        let mut tokens = tx.open_table(TOKENS)?;
        let mut tokens_by_window = tx.open_table(TOKENS_BY_WINDOW)?;
        for ticket in used {
            let row = tokens.get(ticket)?.map(|g| {
                let (w, at, not_after, token) = g.value();
                (w, at, not_after, token.to_vec())
            });
            let Some((filed, at, not_after, token)) = row else {
                continue;
            };
            if filed >= window {
                continue;
            }
            let moved = tokens_by_window
                .remove((filed, *ticket))?
                .map_or(usize_u64(token.len()), |g| g.value());
            tokens_by_window.insert((window, *ticket), moved)?;
            tokens.insert(ticket, (window, at, not_after, token.as_slice()))?;
        }
    }
    {
        let mut outbox = tx.open_table(OUTBOX)?;
        for url in watchers {
            outbox.insert((*id, url.as_str()), (0, now_ms))?;
        }
    }
    {
        let mut counters = tx.open_table(COUNTERS)?;
        add(&mut counters, C_JOURNALED, n)?;
        add(&mut counters, C_LEAF_BYTES, stored)?;
        add(&mut counters, C_RECEIPT_BYTES, usize_u64(bytes.len()))?;
    }
    let mut run = tx.open_table(RUN)?;
    let marker = run.get(OPEN)?.map(|g| g.value());
    if let Some((accepted, accounted)) = marker {
        run.insert(OPEN, (accepted, accounted.saturating_add(n)))?;
    }
    Ok(())
}

/// The distinct tickets of `leaves`.
fn tickets_of(leaves: &[Leaf]) -> Vec<TicketId> {
    let mut used: Vec<TicketId> = leaves
        .iter()
        .map(|l| l.ticket)
        .filter(|t| *t != [0; 16])
        .collect();
    used.sort_unstable();
    used.dedup();
    used
}

/// The receipt journal.
#[derive(Debug)]
pub struct Journal {
    db: redb::Database,
    path: PathBuf,
    /// The open streams of this process, by (window, backend id).
    open: Mutex<HashMap<(u64, String), OpenStream>>,
}

/// An open stream as this process holds it: what is on disk and the partial chunk that is not.
struct OpenStream {
    id: StreamId,
    /// Leaves appended (stored ones and the partial chunk).
    leaves: u64,
    /// Bytes stored so far.
    bytes: u64,
    /// The last chunk's leaves while it is not complete (fewer than `CHUNK_LEAVES`).
    partial: Vec<Leaf>,
}

impl std::fmt::Debug for OpenStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenStream")
            .field("id", &self.id)
            .field("leaves", &self.leaves)
            .field("bytes", &self.bytes)
            .field("partial", &self.partial.len())
            .finish()
    }
}

/// The id of a receipt.
pub fn batch_id(receipt: &Receipt) -> BatchId {
    tolldns_core::hash::tagged_sha256(&[], &[&receipt.to_bytes()])
}

fn add(table: &mut redb::Table<'_, &str, u64>, key: &str, n: u64) -> Result<(), JournalError> {
    let v = table.get(key)?.map_or(0, |g| g.value());
    table.insert(key, v.saturating_add(n))?;
    Ok(())
}

/// Whether some batch of `window` still has its leaves.
fn window_has_leaves(
    by_window: &redb::Table<'_, (u64, BatchId), ()>,
    leaves: &redb::Table<'_, BatchId, &[u8]>,
    window: u64,
) -> Result<bool, JournalError> {
    for entry in by_window.range((window, [0u8; 32])..=(window, [0xff; 32]))? {
        let (key, _) = entry?;
        if leaves.get(key.value().1)?.is_some() {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Deletes the tokens of `window` whose `redeemed_ms` satisfies `delete`; returns (count,
/// bytes).
fn remove_window_tokens(
    tokens: &mut redb::Table<'_, TicketId, TokenRow<'_>>,
    by_window: &mut redb::Table<'_, (u64, TicketId), u64>,
    window: u64,
    delete: impl Fn(u64) -> bool,
) -> Result<(u64, u64), JournalError> {
    let mut gone = Vec::new();
    for entry in by_window.range((window, [0u8; 16])..=(window, [0xff; 16]))? {
        let (key, stored) = entry?;
        let id = key.value().1;
        let redeemed_ms = tokens.get(id)?.map_or(0, |g| g.value().1);
        if delete(redeemed_ms) {
            gone.push((id, stored.value()));
        }
    }
    let (mut count, mut bytes) = (0u64, 0u64);
    for (id, stored) in gone {
        by_window.remove((window, id))?;
        tokens.remove(id)?;
        count = count.saturating_add(1);
        bytes = bytes.saturating_add(stored);
    }
    Ok((count, bytes))
}

impl Journal {
    /// Opens (or creates) the journal and settles a previous run that did not stop cleanly:
    /// the streams it left without a receipt are removed. Returns the journal and the number
    /// of leaves found lost by that settlement.
    ///
    /// # Errors
    ///
    /// [`JournalError::Db`].
    pub fn open(path: &Path) -> Result<(Self, u64), JournalError> {
        Self::open_with_cache(path, 64 << 20)
    }

    /// [`Journal::open`] with a page cache of `cache_bytes` (`journal.cache_bytes`).
    ///
    /// # Errors
    ///
    /// [`JournalError::Db`].
    pub fn open_with_cache(path: &Path, cache_bytes: u64) -> Result<(Self, u64), JournalError> {
        let db = redb::Builder::new()
            .set_cache_size(usize::try_from(cache_bytes).unwrap_or(usize::MAX))
            .create(path)?;
        // The journal holds the name keys: owner-only, like the key files.
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600));
        }
        let journal = Self {
            db,
            path: path.to_owned(),
            open: Mutex::new(HashMap::new()),
        };
        let tx = journal.db.begin_write()?;
        // Create every table so that readers never meet a missing one.
        tx.open_table(BATCHES)?;
        tx.open_table(BY_WINDOW)?;
        tx.open_table(META)?;
        tx.open_table(LEAVES)?;
        tx.open_table(LEAF_CHUNKS)?;
        tx.open_table(CHUNK_ROOTS)?;
        tx.open_table(TICKET_INDEX)?;
        tx.open_table(WITNESSES)?;
        tx.open_table(STREAMS)?;
        tx.open_table(STREAM_CHUNKS)?;
        tx.open_table(STREAM_ROOTS)?;
        tx.open_table(STREAM_TICKETS)?;
        tx.open_table(BATCH_STREAMS)?;
        tx.open_table(STREAM_GARBAGE)?;
        tx.open_table(OUTBOX)?;
        tx.open_table(NAME_KEYS)?;
        tx.open_table(TOKENS)?;
        tx.open_table(TOKENS_BY_WINDOW)?;
        tx.open_table(REDEEMED)?;
        tx.open_table(REDEEMED_EXPIRY)?;
        tx.open_table(COUNTERS)?;
        // No stream is open in a process that just started.
        let streams = remove_streams_except(&tx, &HashSet::new())?;
        let settled = settle_run(&tx, 0)?;
        tx.commit()?;
        Ok((journal, streams.saturating_add(settled)))
    }

    fn lock_open(&self) -> MutexGuard<'_, HashMap<(u64, String), OpenStream>> {
        self.open.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Marks the start of a run (see the module docs).
    ///
    /// # Errors
    ///
    /// [`JournalError::Db`].
    pub fn begin_run(&self) -> Result<(), JournalError> {
        let tx = self.db.begin_write()?;
        {
            let mut run = tx.open_table(RUN)?;
            run.insert(OPEN, (0, 0))?;
            run.insert(APPENDED, (0, 0))?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Persists how many leaves the edge has accepted since the run began.
    ///
    /// # Errors
    ///
    /// [`JournalError::Db`].
    pub fn checkpoint(&self, accepted: u64) -> Result<(), JournalError> {
        let tx = self.db.begin_write()?;
        {
            let mut run = tx.open_table(RUN)?;
            let journaled = run.get(OPEN)?.map_or(0, |g| g.value().1);
            run.insert(OPEN, (accepted, journaled))?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Ends a run cleanly: the streams still without a receipt are removed, and their
    /// leaves, with every other leaf accepted (`accepted`) but neither journaled nor already
    /// counted, are counted as lost; the marker is removed. Returns the leaves counted.
    ///
    /// # Errors
    ///
    /// [`JournalError::Db`].
    pub fn end_run(&self, accepted: u64) -> Result<u64, JournalError> {
        let mut open = self.lock_open();
        let tx = self.db.begin_write()?;
        let mut lost = 0u64;
        for ((window, _), s) in open.iter() {
            remove_stream_rows(&tx, s.id)?;
            tracing::warn!(
                window,
                leaves = s.leaves,
                "receipt stream still open at the end of the run: its leaves are counted as lost"
            );
            count_lost(&tx, s.leaves)?;
            lost = lost.saturating_add(s.leaves);
        }
        lost = lost.saturating_add(remove_streams_except(&tx, &HashSet::new())?);
        lost = lost.saturating_add(settle_run(&tx, accepted)?);
        tx.commit()?;
        open.clear();
        Ok(lost)
    }

    /// Adds to the lost-leaves counter (leaves the edge could not record).
    ///
    /// # Errors
    ///
    /// [`JournalError::Db`].
    pub fn add_lost(&self, n: u64) -> Result<(), JournalError> {
        if n == 0 {
            return Ok(());
        }
        let tx = self.db.begin_write()?;
        count_lost(&tx, n)?;
        tx.commit()?;
        Ok(())
    }

    /// Appends `run.leaves` to the open stream of `header`'s (window, backend): they are
    /// Merkle leaves `run.first_index ..`, in the window's strict order. Index 0 opens the
    /// stream. The complete chunks are stored with the roots the window's stream computed
    /// (`run.chunk_roots`; no leaf is hashed here), in one transaction; the rest of the last
    /// chunk waits in memory for the next append or the seal. The roots are checked at
    /// [`Journal::stream_seal`]: the root over them must be the receipt's.
    ///
    /// # Errors
    ///
    /// [`JournalError::StreamGap`] when `run.first_index` is not the number of leaves the
    /// stream holds, [`JournalError::ChunkRoots`] when `run` does not carry one root per chunk
    /// it completes (nothing is stored), [`JournalError::Db`].
    pub fn stream_append(
        &self,
        header: &BatchHeader,
        run: StreamedLeaves<'_>,
    ) -> Result<(), JournalError> {
        let window = header.window_id.get();
        let backend = header.backend_id.as_str();
        let key = (window, backend.to_owned());
        let mut open = self.lock_open();
        let expected = open.get(&key).map_or(0, |s| s.leaves);
        if run.first_index != expected {
            return Err(JournalError::StreamGap {
                window,
                expected,
                got: run.first_index,
            });
        }
        if usize_u64(run.chunk_roots.len()) != run.completed_chunks() {
            return Err(JournalError::ChunkRoots {
                window,
                expected: run.completed_chunks(),
                got: usize_u64(run.chunk_roots.len()),
            });
        }
        let leaves = run.leaves;
        let n = usize_u64(leaves.len());
        if let Some(s) = open.get_mut(&key)
            && s.partial.len().saturating_add(leaves.len()) < CHUNK_LEAVES
        {
            // Nothing completes a chunk: it waits in memory.
            s.partial.extend_from_slice(leaves);
            s.leaves = s.leaves.saturating_add(n);
            return Ok(());
        }
        let (existing, stored_leaves, mut bytes, partial) = match open.get(&key) {
            Some(s) => (
                Some(s.id),
                s.leaves.saturating_sub(usize_u64(s.partial.len())),
                s.bytes,
                s.partial.as_slice(),
            ),
            None => (None, 0, 0, [].as_slice()),
        };
        let mut tx = self.db.begin_write()?;
        // No fsync per append: an open stream is worth nothing after a crash (it is removed
        // and its leaves counted lost on the next start), and the next durable commit (the
        // checkpoint, the seal, a prune) persists every append before it.
        tx.set_durability(redb::Durability::None);
        let id = match existing {
            Some(id) => id,
            None => next_stream(&tx)?,
        };
        // Complete the partial chunk first, then whole chunks; the rest waits. The roots are
        // those of the chunks completed, in order (checked above: one per chunk).
        let mut rest = leaves;
        let mut next_index = stored_leaves;
        let mut roots = run.chunk_roots.iter();
        let mut next_root = || {
            roots.next().ok_or(JournalError::ChunkRoots {
                window,
                expected: run.completed_chunks(),
                got: usize_u64(run.chunk_roots.len()),
            })
        };
        {
            let mut tables = ChunkTables::open(&tx)?;
            // A partial chunk is here only when these leaves complete it (see above).
            if !partial.is_empty() {
                let fill = CHUNK_LEAVES.saturating_sub(partial.len()).min(rest.len());
                let (head, tail) = rest.split_at(fill);
                let mut chunk = Vec::with_capacity(CHUNK_LEAVES);
                chunk.extend_from_slice(partial);
                chunk.extend_from_slice(head);
                let c = chunk_number(next_index / CHUNK_LEAVES as u64)?;
                bytes = bytes.saturating_add(tables.write(id, c, &chunk, next_root()?)?);
                next_index = next_index.saturating_add(CHUNK_LEAVES as u64);
                rest = tail;
            }
            while rest.len() >= CHUNK_LEAVES {
                let (chunk, tail) = rest.split_at(CHUNK_LEAVES);
                let c = chunk_number(next_index / CHUNK_LEAVES as u64)?;
                bytes = bytes.saturating_add(tables.write(id, c, chunk, next_root()?)?);
                next_index = next_index.saturating_add(CHUNK_LEAVES as u64);
                rest = tail;
            }
        }
        let remainder = rest;
        let stored_now = next_index;
        tx.open_table(STREAMS)?
            .insert(id, (window, backend, stored_now, bytes))?;
        add_appended(&tx, stored_now.saturating_sub(stored_leaves))?;
        tx.commit()?;
        open.insert(
            key,
            OpenStream {
                id,
                leaves: expected.saturating_add(n),
                bytes,
                partial: remainder.to_vec(),
            },
        );
        Ok(())
    }

    /// Seals the open stream of the receipt's (window, backend) with its signed receipt: the
    /// partial chunk is written, the leaf count and the root over the stored chunk roots are
    /// checked against the receipt, and the receipt, `witnesses` (the sketch witness leaf
    /// index of every register) and one outbox entry per watcher are stored, in one durable
    /// transaction. Returns the batch id and whether it was new (for a batch already stored
    /// the stream is dropped as a duplicate). A receipt without leaves needs no stream.
    ///
    /// # Errors
    ///
    /// [`JournalError::NoStream`] (a receipt with leaves but no open stream), [`JournalError::StreamMismatch`] (nothing is stored; the
    /// stream stays open), [`JournalError::Db`].
    pub fn stream_seal(
        &self,
        receipt: &Receipt,
        witnesses: &SketchWitnesses,
        watchers: &[String],
        now_ms: u64,
    ) -> Result<(BatchId, bool), JournalError> {
        let window = receipt.body.window_id.get();
        let key = (window, receipt.body.backend_id.as_str().to_owned());
        let mut open = self.lock_open();
        let empty = OpenStream {
            id: 0,
            leaves: 0,
            bytes: 0,
            partial: Vec::new(),
        };
        // A window without a leaf has no stream: an empty one is sealed.
        let (s, opened) = match open.get(&key) {
            Some(s) => (s, true),
            None if receipt.body.integrity.leaf_count == 0 => (&empty, false),
            None => return Err(JournalError::NoStream { window }),
        };
        let bytes = receipt.to_bytes();
        let id = tolldns_core::hash::tagged_sha256(&[], &[&bytes]);
        let tx = self.db.begin_write()?;
        if tx.open_table(BATCHES)?.get(id)?.is_some() {
            if opened {
                remove_stream_rows(&tx, s.id)?;
            }
            tx.commit()?;
            open.remove(&key);
            return Ok((id, false));
        }
        let stream = if opened { s.id } else { next_stream(&tx)? };
        let stored_leaves = s.leaves.saturating_sub(usize_u64(s.partial.len()));
        let mut stored = s.bytes;
        if !s.partial.is_empty() {
            // The last chunk, shorter than the others: the stream completed no chunk with it,
            // so its root is computed here (at most `CHUNK_LEAVES - 1` leaves a window).
            let written =
                ChunkTables::open(&tx)?.write_hashing(stream, stored_leaves, &s.partial)?;
            stored = stored.saturating_add(written);
            add_appended(&tx, usize_u64(s.partial.len()))?;
        }
        let (stored, used) =
            seal_stream_rows(&tx, &id, receipt, stream, s.leaves, stored, witnesses)?;
        journal_batch(&tx, &id, &bytes, receipt, stored, &used, watchers, now_ms)?;
        tx.commit()?;
        open.remove(&key);
        Ok((id, true))
    }

    /// Gives up the open stream of (`window`, `backend`): its rows are removed and its
    /// leaves counted as lost (`leaves`, what the edge appended, or what the journal holds if
    /// that is more). Returns the leaves counted.
    ///
    /// # Errors
    ///
    /// [`JournalError::Db`]; the stream is then removed by the next [`Journal::prune`].
    pub fn stream_abandon(
        &self,
        window: u64,
        backend: &str,
        leaves: u64,
    ) -> Result<u64, JournalError> {
        let mut open = self.lock_open();
        let s = open.remove(&(window, backend.to_owned()));
        let tx = self.db.begin_write()?;
        let lost = match &s {
            Some(s) => {
                remove_stream_rows(&tx, s.id)?;
                leaves.max(s.leaves)
            }
            None => leaves,
        };
        count_lost(&tx, lost)?;
        tx.commit()?;
        Ok(lost)
    }

    /// The open streams of this process: (window, backend, leaves appended).
    pub fn open_streams(&self) -> Vec<(u64, String, u64)> {
        let mut out: Vec<_> = self
            .lock_open()
            .iter()
            .map(|((w, b), s)| (*w, b.clone(), s.leaves))
            .collect();
        out.sort_unstable();
        out
    }

    /// Removes the streams without a receipt that this process does not hold open (left by
    /// an abandon whose removal failed), counting their stored leaves as lost. Returns the
    /// leaves counted.
    ///
    /// # Errors
    ///
    /// [`JournalError::Db`].
    pub fn remove_stale_streams(&self) -> Result<u64, JournalError> {
        let open = self.lock_open();
        let keep: HashSet<StreamId> = open.values().map(|s| s.id).collect();
        let tx = self.db.begin_write()?;
        let lost = remove_streams_except(&tx, &keep)?;
        tx.commit()?;
        drop(open);
        Ok(lost)
    }

    /// Stores a signed batch with all its leaves and one outbox entry per watcher in one
    /// durable transaction (a v2 batch as one stream appended and sealed at once). Returns the
    /// batch id and whether it was new (a batch already stored is left as it is).
    ///
    /// # Errors
    ///
    /// [`JournalError::StreamMismatch`] when the receipt does not commit to `leaves`,
    /// [`JournalError::Db`].
    pub fn commit_batch(
        &self,
        receipt: &Receipt,
        leaves: &[Leaf],
        watchers: &[String],
        now_ms: u64,
    ) -> Result<(BatchId, bool), JournalError> {
        let bytes = receipt.to_bytes();
        let id = tolldns_core::hash::tagged_sha256(&[], &[&bytes]);
        let tx = self.db.begin_write()?;
        if tx.open_table(BATCHES)?.get(id)?.is_some() {
            return Ok((id, false));
        }
        let n = usize_u64(leaves.len());
        let (stored, used) = if receipt.body.v2.is_some() {
            let stream = next_stream(&tx)?;
            let stored = ChunkTables::open(&tx)?.write_hashing(stream, 0, leaves)?;
            add_appended(&tx, n)?;
            let (_, witnesses) = sketch_with_witnesses(leaves);
            seal_stream_rows(&tx, &id, receipt, stream, n, stored, &witnesses)?
        } else {
            if n != receipt.body.integrity.leaf_count {
                return Err(JournalError::StreamMismatch {
                    window: receipt.body.window_id.get(),
                    what: "leaf_count",
                });
            }
            let mut leaf_bytes = Vec::with_capacity(leaves.len().saturating_mul(LEAF_LEN_V1));
            for leaf in leaves {
                leaf_bytes.extend_from_slice(&leaf.to_bytes_v1());
            }
            tx.open_table(LEAVES)?.insert(id, leaf_bytes.as_slice())?;
            (usize_u64(leaf_bytes.len()), tickets_of(leaves))
        };
        journal_batch(&tx, &id, &bytes, receipt, stored, &used, watchers, now_ms)?;
        tx.commit()?;
        Ok((id, true))
    }

    /// Stores a v2 batch in the layout of earlier versions (chunks keyed by the batch id).
    #[cfg(test)]
    fn commit_batch_keyed_by_id(
        &self,
        receipt: &Receipt,
        leaves: &[Leaf],
        now_ms: u64,
    ) -> Result<BatchId, JournalError> {
        let bytes = receipt.to_bytes();
        let id = tolldns_core::hash::tagged_sha256(&[], &[&bytes]);
        let tx = self.db.begin_write()?;
        let stored = store_chunked(&tx, &id, leaves)?;
        journal_batch(
            &tx,
            &id,
            &bytes,
            receipt,
            stored,
            &tickets_of(leaves),
            &[],
            now_ms,
        )?;
        tx.commit()?;
        Ok(id)
    }

    /// A stored receipt.
    ///
    /// # Errors
    ///
    /// [`JournalError`].
    pub fn batch(&self, id: &BatchId) -> Result<Option<Receipt>, JournalError> {
        let tx = self.db.begin_read()?;
        let table = tx.open_table(BATCHES)?;
        let Some(bytes) = table.get(id)? else {
            return Ok(None);
        };
        Receipt::from_bytes(bytes.value())
            .map(Some)
            .map_err(|_| JournalError::Corrupt { what: "receipt" })
    }

    /// The receipts of one window, with their ids.
    ///
    /// # Errors
    ///
    /// [`JournalError`].
    pub fn batches_in_window(&self, window: u64) -> Result<Vec<(BatchId, Receipt)>, JournalError> {
        let tx = self.db.begin_read()?;
        let by_window = tx.open_table(BY_WINDOW)?;
        let batches = tx.open_table(BATCHES)?;
        let mut out = Vec::new();
        for entry in by_window.range((window, [0u8; 32])..=(window, [0xff; 32]))? {
            let (key, _) = entry?;
            let id = key.value().1;
            if let Some(bytes) = batches.get(id)? {
                let r = Receipt::from_bytes(bytes.value())
                    .map_err(|_| JournalError::Corrupt { what: "receipt" })?;
                out.push((id, r));
            }
        }
        Ok(out)
    }

    /// The latest window that has a stored batch.
    ///
    /// # Errors
    ///
    /// [`JournalError`].
    pub fn last_window(&self) -> Result<Option<u64>, JournalError> {
        let tx = self.db.begin_read()?;
        let by_window = tx.open_table(BY_WINDOW)?;
        Ok(by_window.last()?.map(|(k, _)| k.value().0))
    }

    /// The answers for an audit: `indices` are leaf indices (from
    /// `tolldns_receipts::AuditSample`), answered in that order, each with its right
    /// neighbour for a v2 batch. Reads only the chunks the indices fall in.
    ///
    /// # Errors
    ///
    /// [`AuditError`].
    pub fn audit(
        &self,
        id: &BatchId,
        indices: &[u64],
    ) -> Result<(Receipt, Vec<AuditAnswer>), AuditError> {
        let mut reader = self.proof_reader(id)?;
        let n = reader.receipt.body.integrity.leaf_count;
        let v2 = reader.receipt.body.v2.is_some();
        let mut out = Vec::with_capacity(indices.len());
        for &i in indices {
            let leaf = reader.leaf_proof(i)?;
            let next_index = i.saturating_add(1);
            let next = if v2 && next_index < n {
                Some(reader.leaf_proof(next_index)?)
            } else {
                None
            };
            out.push(AuditAnswer { leaf, next });
        }
        Ok((reader.receipt, out))
    }

    /// Every leaf of the batch whose ticket is `ticket`, with its proof (v2 batches; a v1
    /// batch has no ticket index and answers an empty list).
    ///
    /// # Errors
    ///
    /// [`AuditError`].
    pub fn ticket_leaves(
        &self,
        id: &BatchId,
        ticket: &TicketId,
        max: usize,
    ) -> Result<(Receipt, Vec<LeafProof>), AuditError> {
        let mut reader = self.proof_reader(id)?;
        let indices = reader.ticket_indices(ticket)?;
        if indices.len() > max {
            return Err(AuditError::TooMany {
                leaves: indices.len(),
            });
        }
        let mut out = Vec::with_capacity(indices.len());
        for i in indices {
            out.push(reader.leaf_proof(i)?);
        }
        Ok((reader.receipt, out))
    }

    /// The witness leaves of sketch registers `registers`, in that order (`None` for a
    /// register without one).
    ///
    /// # Errors
    ///
    /// [`AuditError`].
    pub fn sketch_witnesses(
        &self,
        id: &BatchId,
        registers: &[usize],
    ) -> Result<(Receipt, Vec<Option<LeafProof>>), AuditError> {
        let mut reader = self.proof_reader(id)?;
        let witnesses = reader.witnesses()?;
        let mut out = Vec::with_capacity(registers.len());
        for r in registers {
            match witnesses.get(*r).copied().filter(|i| *i != u64::MAX) {
                Some(i) => out.push(Some(reader.leaf_proof(i)?)),
                None => out.push(None),
            }
        }
        Ok((reader.receipt, out))
    }

    fn proof_reader(&self, id: &BatchId) -> Result<ProofReader, AuditError> {
        let tx = self.db.begin_read().map_err(JournalError::from)?;
        let batches = tx.open_table(BATCHES).map_err(JournalError::from)?;
        let Some(bytes) = batches.get(id).map_err(JournalError::from)? else {
            return Err(AuditError::NotFound);
        };
        let receipt = Receipt::from_bytes(bytes.value())
            .map_err(|_| JournalError::Corrupt { what: "receipt" })?;
        drop(bytes);
        let leaves = tx.open_table(LEAVES).map_err(JournalError::from)?;
        let Some(marker) = leaves.get(id).map_err(JournalError::from)? else {
            return Err(AuditError::Pruned);
        };
        let n = receipt.body.integrity.leaf_count;
        let corrupt = || AuditError::from(JournalError::Corrupt { what: "leaves" });
        let layout = if receipt.body.v2.is_some() {
            let stream = tx
                .open_table(BATCH_STREAMS)
                .map_err(JournalError::from)?
                .get(id)
                .map_err(JournalError::from)?
                .map(|g| g.value());
            let (roots, chunks) = match stream {
                Some(stream) => {
                    let table = tx.open_table(STREAM_ROOTS).map_err(JournalError::from)?;
                    let mut roots = Vec::new();
                    for entry in table
                        .range((stream, 0u32)..=(stream, u32::MAX))
                        .map_err(JournalError::from)?
                    {
                        roots.push(entry.map_err(JournalError::from)?.1.value());
                    }
                    (roots, Chunks::Stream(stream))
                }
                None => {
                    // Journaled by an earlier version: chunks keyed by the batch id.
                    let table = tx.open_table(CHUNK_ROOTS).map_err(JournalError::from)?;
                    let roots: Vec<[u8; 32]> = table
                        .get(id)
                        .map_err(JournalError::from)?
                        .ok_or_else(corrupt)?
                        .value()
                        .chunks_exact(32)
                        .filter_map(|c| c.try_into().ok())
                        .collect();
                    (roots, Chunks::Batch(*id))
                }
            };
            let outer = MerkleTree::from_leaf_hashes(roots);
            if outer.root() != receipt.body.integrity.merkle_root {
                return Err(corrupt());
            }
            Layout::Chunked { outer, chunks }
        } else {
            // A v1 batch journaled by an earlier version: the whole blob, v1 leaf hashes.
            let leaves = marker
                .value()
                .chunks(LEAF_LEN_V1)
                .map(Leaf::from_bytes_v1)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|_| corrupt())?;
            let tree = MerkleTree::from_leaf_hashes(leaves.iter().map(Leaf::hash_v1).collect());
            if tree.root() != receipt.body.integrity.merkle_root || tree.len() != n {
                return Err(corrupt());
            }
            Layout::Whole { leaves, tree }
        };
        drop(marker);
        drop(leaves);
        drop(batches);
        // The same read transaction: the chunks read later belong to this receipt even if a
        // prune deletes them meanwhile.
        Ok(ProofReader {
            db: tx,
            id: *id,
            receipt,
            layout,
            chunks: HashMap::new(),
        })
    }

    /// The name key of an epoch, created (random) and stored durably on first use.
    ///
    /// # Errors
    ///
    /// [`JournalError::Db`].
    pub fn name_key(&self, epoch: u64) -> Result<NameKey, JournalError> {
        if let Some(k) = self.existing_name_key(epoch)? {
            return Ok(k);
        }
        let tx = self.db.begin_write()?;
        let key = {
            let mut table = tx.open_table(NAME_KEYS)?;
            let existing = table.get(epoch)?.map(|g| g.value());
            match existing {
                Some(k) => k,
                None => {
                    let mut k = [0u8; 32];
                    rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut k);
                    table.insert(epoch, k)?;
                    k
                }
            }
        };
        tx.commit()?;
        Ok(NameKey(key))
    }

    /// The name key of an epoch if one was ever created.
    ///
    /// # Errors
    ///
    /// [`JournalError::Db`].
    pub fn existing_name_key(&self, epoch: u64) -> Result<Option<NameKey>, JournalError> {
        let tx = self.db.begin_read()?;
        let table = tx.open_table(NAME_KEYS)?;
        Ok(table.get(epoch)?.map(|g| NameKey(g.value())))
    }

    /// Stores redeemed tokens in one durable transaction: each token once (a ticket id already
    /// stored is left as it is), and its ticket id in the redeemed set. Returns how many were
    /// new.
    ///
    /// # Errors
    ///
    /// [`JournalError::Db`].
    pub fn record_tokens(&self, records: &[TokenRecord]) -> Result<u64, JournalError> {
        if records.is_empty() {
            return Ok(0);
        }
        let tx = self.db.begin_write()?;
        let mut new = 0u64;
        {
            let mut tokens = tx.open_table(TOKENS)?;
            let mut by_window = tx.open_table(TOKENS_BY_WINDOW)?;
            let mut redeemed = tx.open_table(REDEEMED)?;
            let mut expiry = tx.open_table(REDEEMED_EXPIRY)?;
            let mut bytes = 0u64;
            for r in records {
                if redeemed.get(r.ticket_id)?.is_none() {
                    redeemed.insert(r.ticket_id, r.key_not_after)?;
                    if let Some(t) = r.key_not_after {
                        expiry.insert((t, r.ticket_id), ())?;
                    }
                }
                if tokens.get(r.ticket_id)?.is_some() {
                    continue;
                }
                tokens.insert(
                    r.ticket_id,
                    (
                        r.window_id,
                        r.redeemed_ms,
                        r.key_not_after,
                        r.token.as_slice(),
                    ),
                )?;
                let stored = u64::try_from(r.token.len()).unwrap_or(u64::MAX);
                by_window.insert((r.window_id, r.ticket_id), stored)?;
                bytes = bytes.saturating_add(stored);
                new = new.saturating_add(1);
            }
            add(&mut tx.open_table(COUNTERS)?, C_TOKEN_BYTES, bytes)?;
        }
        tx.commit()?;
        Ok(new)
    }

    /// A stored token.
    ///
    /// # Errors
    ///
    /// [`JournalError::Db`].
    pub fn token(&self, ticket_id: &TicketId) -> Result<Option<TokenRecord>, JournalError> {
        let tx = self.db.begin_read()?;
        let tokens = tx.open_table(TOKENS)?;
        Ok(tokens.get(ticket_id)?.map(|g| {
            let (window_id, redeemed_ms, key_not_after, token) = g.value();
            TokenRecord {
                ticket_id: *ticket_id,
                token: token.to_vec(),
                window_id,
                redeemed_ms,
                key_not_after,
            }
        }))
    }

    /// The redeemed set at `now_ms`: every ticket id whose issuer key has not expired, with
    /// that key's expiry (unix seconds).
    ///
    /// # Errors
    ///
    /// [`JournalError::Db`].
    pub fn redeemed_tickets(&self, now_ms: u64) -> Result<Vec<Redeemed>, JournalError> {
        let now_s = now_ms / 1000;
        let tx = self.db.begin_read()?;
        let redeemed = tx.open_table(REDEEMED)?;
        let mut out = Vec::new();
        for entry in redeemed.iter()? {
            let (k, v) = entry?;
            let not_after = v.value();
            if not_after.is_none_or(|t| t > now_s) {
                out.push((k.value(), not_after));
            }
        }
        Ok(out)
    }

    /// Deletes at most `max_rows` rows of pruned streams in one transaction (a pruned window's
    /// rows are deleted this way after [`Journal::prune`], so that no transaction deletes a
    /// whole window of millions of leaves while appends wait). Returns the rows deleted: 0
    /// when nothing is left to delete.
    ///
    /// # Errors
    ///
    /// [`JournalError::Db`].
    pub fn collect_garbage(&self, max_rows: usize) -> Result<usize, JournalError> {
        let tx = self.db.begin_write()?;
        let deleted = collect_stream_garbage(&tx, max_rows.max(1))?;
        tx.commit()?;
        Ok(deleted)
    }

    /// Streams whose rows are still to be deleted by [`Journal::collect_garbage`].
    ///
    /// # Errors
    ///
    /// [`JournalError::Db`].
    pub fn garbage_streams(&self) -> Result<u64, JournalError> {
        Ok(self.db.begin_read()?.open_table(STREAM_GARBAGE)?.len()?)
    }

    /// Deletes the leaves whose audit window has passed, then the oldest leaves until at most
    /// `max_bytes` of leaves and tokens remain; the tokens of a window go with the last of
    /// its leaves (see the module docs). Drops the ticket ids whose issuer key has expired
    /// from the redeemed set. First removes the streams left without a receipt
    /// ([`Journal::remove_stale_streams`]).
    ///
    /// # Errors
    ///
    /// [`JournalError::Db`].
    pub fn prune(
        &self,
        now_ms: u64,
        audit_window_ms: u64,
        max_bytes: u64,
    ) -> Result<Pruned, JournalError> {
        self.remove_stale_streams()?;
        let tx = self.db.begin_write()?;
        let mut p = Pruned::default();
        {
            let by_window = tx.open_table(BY_WINDOW)?;
            let mut meta = tx.open_table(META)?;
            let mut leaves = tx.open_table(LEAVES)?;
            let mut tokens = tx.open_table(TOKENS)?;
            let mut tokens_by_window = tx.open_table(TOKENS_BY_WINDOW)?;
            let mut counters = tx.open_table(COUNTERS)?;
            let mut leaf_total = counters.get(C_LEAF_BYTES)?.map_or(0, |g| g.value());
            let mut token_total = counters.get(C_TOKEN_BYTES)?.map_or(0, |g| g.value());
            // Oldest windows first.
            for entry in by_window.iter()? {
                let (key, _) = entry?;
                let (window, id) = key.value();
                let Some((at, n, stored)) = meta.get(id)?.map(|g| g.value()) else {
                    continue;
                };
                if stored == 0 && n != 0 {
                    continue;
                }
                let is_expired = at.saturating_add(audit_window_ms) <= now_ms;
                if !is_expired && leaf_total.saturating_add(token_total) <= max_bytes {
                    continue;
                }
                if leaves.remove(id)?.is_none() {
                    continue;
                }
                remove_leaf_rows(&tx, &id)?;
                meta.insert(id, (at, n, 0))?;
                leaf_total = leaf_total.saturating_sub(stored);
                if is_expired {
                    p.leaves_expired = p.leaves_expired.saturating_add(n);
                } else {
                    p.leaves_evicted = p.leaves_evicted.saturating_add(n);
                }
                // The window's tokens go with the last of its leaves.
                if !window_has_leaves(&by_window, &leaves, window)? {
                    let (count, bytes) =
                        remove_window_tokens(&mut tokens, &mut tokens_by_window, window, |_| true)?;
                    token_total = token_total.saturating_sub(bytes);
                    if is_expired {
                        p.tokens_expired = p.tokens_expired.saturating_add(count);
                    } else {
                        p.tokens_evicted = p.tokens_evicted.saturating_add(count);
                    }
                }
            }
            // Windows whose tokens are still here though their leaves are gone (a batch
            // journaled after an earlier prune), or that never got a batch.
            let mut next = tokens_by_window.first()?.map(|(k, _)| k.value().0);
            while let Some(window) = next {
                let has_batch = by_window
                    .range((window, [0u8; 32])..=(window, [0xff; 32]))?
                    .next()
                    .is_some();
                let (count, bytes, evicted) = if has_batch {
                    if window_has_leaves(&by_window, &leaves, window)? {
                        (0, 0, false)
                    } else {
                        let (c, b) = remove_window_tokens(
                            &mut tokens,
                            &mut tokens_by_window,
                            window,
                            |_| true,
                        )?;
                        (c, b, false)
                    }
                } else if leaf_total.saturating_add(token_total) > max_bytes {
                    let (c, b) =
                        remove_window_tokens(&mut tokens, &mut tokens_by_window, window, |_| true)?;
                    (c, b, true)
                } else {
                    let (c, b) = remove_window_tokens(
                        &mut tokens,
                        &mut tokens_by_window,
                        window,
                        |redeemed_ms| redeemed_ms.saturating_add(audit_window_ms) <= now_ms,
                    )?;
                    (c, b, false)
                };
                token_total = token_total.saturating_sub(bytes);
                if evicted {
                    p.tokens_evicted = p.tokens_evicted.saturating_add(count);
                } else {
                    p.tokens_expired = p.tokens_expired.saturating_add(count);
                }
                next = match window.checked_add(1) {
                    Some(w) => tokens_by_window
                        .range((w, [0u8; 16])..)?
                        .next()
                        .transpose()?
                        .map(|(k, _)| k.value().0),
                    None => None,
                };
            }
            counters.insert(C_LEAF_BYTES, leaf_total)?;
            counters.insert(C_TOKEN_BYTES, token_total)?;
            add(&mut counters, C_EXPIRED, p.leaves_expired)?;
            add(&mut counters, C_EVICTED, p.leaves_evicted)?;
            add(&mut counters, C_TOKENS_EXPIRED, p.tokens_expired)?;
            add(&mut counters, C_TOKENS_EVICTED, p.tokens_evicted)?;

            // The redeemed set: a ticket id is kept until its issuer key expires.
            let now_s = now_ms / 1000;
            let mut redeemed = tx.open_table(REDEEMED)?;
            let mut expiry = tx.open_table(REDEEMED_EXPIRY)?;
            let mut gone = Vec::new();
            for entry in expiry.range(..=(now_s, [0xff; 16]))? {
                gone.push(entry?.0.value());
            }
            for (t, id) in gone {
                expiry.remove((t, id))?;
                redeemed.remove(id)?;
                p.redeemed_expired = p.redeemed_expired.saturating_add(1);
            }
        }
        tx.commit()?;
        Ok(p)
    }

    /// Outbox entries due at `now_ms`, at most `limit`.
    ///
    /// # Errors
    ///
    /// [`JournalError::Db`].
    pub fn outbox_due(&self, now_ms: u64, limit: usize) -> Result<Vec<OutboxEntry>, JournalError> {
        let tx = self.db.begin_read()?;
        let outbox = tx.open_table(OUTBOX)?;
        let mut out = Vec::new();
        for entry in outbox.iter()? {
            let (k, v) = entry?;
            let (id, url) = k.value();
            let (attempts, next_attempt_ms) = v.value();
            if next_attempt_ms <= now_ms {
                out.push(OutboxEntry {
                    id,
                    url: url.to_owned(),
                    attempts,
                    next_attempt_ms,
                });
                if out.len() >= limit {
                    break;
                }
            }
        }
        Ok(out)
    }

    /// The earliest `next_attempt_ms` in the outbox.
    ///
    /// # Errors
    ///
    /// [`JournalError::Db`].
    pub fn outbox_next_due(&self) -> Result<Option<u64>, JournalError> {
        let tx = self.db.begin_read()?;
        let outbox = tx.open_table(OUTBOX)?;
        let mut next: Option<u64> = None;
        for entry in outbox.iter()? {
            let (_, v) = entry?;
            let t = v.value().1;
            next = Some(next.map_or(t, |n| n.min(t)));
        }
        Ok(next)
    }

    /// Removes a delivered entry.
    ///
    /// # Errors
    ///
    /// [`JournalError::Db`].
    pub fn outbox_delivered(&self, id: &BatchId, url: &str) -> Result<(), JournalError> {
        let tx = self.db.begin_write()?;
        tx.open_table(OUTBOX)?.remove((*id, url))?;
        tx.commit()?;
        Ok(())
    }

    /// Records a failed attempt and when to try again (only if the entry still exists).
    ///
    /// # Errors
    ///
    /// [`JournalError::Db`].
    pub fn outbox_retry(
        &self,
        id: &BatchId,
        url: &str,
        attempts: u32,
        next_attempt_ms: u64,
    ) -> Result<(), JournalError> {
        let tx = self.db.begin_write()?;
        {
            let mut outbox = tx.open_table(OUTBOX)?;
            let exists = outbox.get((*id, url))?.is_some();
            if exists {
                outbox.insert((*id, url), (attempts, next_attempt_ms))?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// Drops pending deliveries to watchers not in `keep` (after a reload removed them).
    /// Returns how many were dropped.
    ///
    /// # Errors
    ///
    /// [`JournalError::Db`].
    pub fn outbox_retain(&self, keep: &[String]) -> Result<u64, JournalError> {
        let tx = self.db.begin_write()?;
        let mut dropped = 0u64;
        {
            let mut outbox = tx.open_table(OUTBOX)?;
            let mut gone = Vec::new();
            for entry in outbox.iter()? {
                let (k, _) = entry?;
                let (id, url) = k.value();
                if !keep.iter().any(|w| w == url) {
                    gone.push((id, url.to_owned()));
                }
            }
            for (id, url) in gone {
                outbox.remove((id, url.as_str()))?;
                dropped = dropped.saturating_add(1);
            }
        }
        tx.commit()?;
        Ok(dropped)
    }

    /// Counters and sizes.
    ///
    /// # Errors
    ///
    /// [`JournalError::Db`].
    pub fn stats(&self) -> Result<JournalStats, JournalError> {
        let tx = self.db.begin_read()?;
        let counters = tx.open_table(COUNTERS)?;
        let c = |k| -> Result<u64, JournalError> { Ok(counters.get(k)?.map_or(0, |g| g.value())) };
        Ok(JournalStats {
            batches: tx.open_table(BATCHES)?.len()?,
            receipt_bytes: c(C_RECEIPT_BYTES)?,
            leaf_bytes: c(C_LEAF_BYTES)?,
            leaves_lost_total: c(C_LOST)?,
            leaves_journaled_total: c(C_JOURNALED)?,
            leaves_expired_total: c(C_EXPIRED)?,
            leaves_evicted_total: c(C_EVICTED)?,
            outbox_pending: tx.open_table(OUTBOX)?.len()?,
            file_bytes: std::fs::metadata(&self.path).map_or(0, |m| m.len()),
            tokens: tx.open_table(TOKENS)?.len()?,
            token_bytes: c(C_TOKEN_BYTES)?,
            tokens_expired_total: c(C_TOKENS_EXPIRED)?,
            tokens_evicted_total: c(C_TOKENS_EVICTED)?,
            redeemed_tickets: tx.open_table(REDEEMED)?.len()?,
        })
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use ed25519_dalek::SigningKey;
    use tolldns_core::{BackendId, DeploymentId, WindowId, WindowLen};
    use tolldns_receipts::{
        AuditSample, BatchHeader, ClosedBatch, LatencyBucket, LeafFlags, RcodeClass, Transport,
        WindowStream, WorkClass,
    };

    pub(crate) fn sample_batch(window: u64, n: u64, key: &SigningKey) -> ClosedBatch {
        sample_batch_version(window, n, key, true)
    }

    fn header(w: WindowId, len: WindowLen) -> BatchHeader {
        BatchHeader::new(
            DeploymentId::local(),
            BackendId::new("edge-ingress").unwrap(),
            len,
            w,
        )
    }

    fn sample_batch_version(window: u64, n: u64, key: &SigningKey, v2: bool) -> ClosedBatch {
        let len = WindowLen::new(2).unwrap();
        let w = WindowId(window);
        let start = w.start_ms(len).unwrap();
        let leaves = (0..n)
            .map(|i| Leaf {
                timestamp_ms: start + i % 2000,
                transport: Transport::Udp,
                qtype: 1,
                rcode_class: RcodeClass::NoError,
                work_class: WorkClass::CacheHit,
                flags: LeafFlags {
                    cache_hit: true,
                    ..LeafFlags::default()
                },
                latency: LatencyBucket::from_millis(3),
                response_bytes: 100,
                name_hash: [(i * 37) as u8; 16],
                // Every third leaf is ticketed, three tickets in turn.
                ticket: if i % 3 == 0 {
                    [0xa0 | (i % 9) as u8; 16]
                } else {
                    [0; 16]
                },
                response_summary_hash: [1; 16],
                repeat: 0,
            })
            .collect();
        let seal = if v2 {
            ClosedBatch::seal
        } else {
            ClosedBatch::seal_v1
        };
        seal(
            &header(w, len),
            leaves,
            NameKey([9; 32]).commitment(),
            start + 2000,
            key,
        )
        .unwrap()
    }

    /// Leaves `at..end` of a window with the roots of the chunks they complete, computed
    /// from the leaves (what a window stream hands over).
    fn run<'a>(
        all: &'a [Leaf],
        at: usize,
        end: usize,
        roots: &'a mut Vec<Hash>,
    ) -> StreamedLeaves<'a> {
        roots.clear();
        for c in at / CHUNK_LEAVES..end / CHUNK_LEAVES {
            roots.push(chunk_root(&all[c * CHUNK_LEAVES..(c + 1) * CHUNK_LEAVES]));
        }
        StreamedLeaves {
            first_index: at as u64,
            leaves: &all[at..end],
            chunk_roots: roots,
        }
    }

    /// Appends `leaves` to their window's stream in pieces of the given sizes (cycled), as the
    /// edge's pump does (through a `WindowStream`, which hashes each leaf once and hands the
    /// chunk roots over), checking the memory bound after every append.
    fn stream(j: &Journal, header: &BatchHeader, leaves: &[Leaf], sizes: &[usize]) {
        let mut at = 0usize;
        let mut window = WindowStream::new(*header);
        let mut roots = Vec::new();
        for size in sizes.iter().cycle() {
            if at >= leaves.len() {
                break;
            }
            let end = (at + size).min(leaves.len());
            let run = window
                .append_streamed(&leaves[at..end], &mut roots)
                .unwrap();
            j.stream_append(header, run).unwrap();
            at = end;
            let key = (
                header.window_id.get(),
                header.backend_id.as_str().to_owned(),
            );
            let open = j.lock_open();
            let s = open.get(&key).unwrap();
            assert!(s.partial.len() < CHUNK_LEAVES, "one partial chunk at most");
            assert_eq!(s.leaves, at as u64);
            assert_eq!(
                s.leaves - s.partial.len() as u64,
                (at / CHUNK_LEAVES * CHUNK_LEAVES) as u64,
                "every complete chunk is stored"
            );
        }
    }

    fn header_of(b: &ClosedBatch) -> BatchHeader {
        let body = &b.receipt().body;
        header(body.window_id, body.window_len)
    }

    fn stream_rows(j: &Journal) -> (u64, u64, u64) {
        let tx = j.db.begin_read().unwrap();
        (
            tx.open_table(STREAMS).unwrap().len().unwrap(),
            tx.open_table(STREAM_CHUNKS).unwrap().len().unwrap(),
            tx.open_table(STREAM_TICKETS).unwrap().len().unwrap(),
        )
    }

    #[test]
    fn a_streamed_batch_serves_the_proofs_of_the_sealed_batch() {
        let dir = tmp("stream");
        let key = SigningKey::from_bytes(&[5; 32]);
        let (j, _) = Journal::open(&dir.join("j.redb")).unwrap();
        let sizes: [&[usize]; 4] = [&[1], &[7, 300, 0, 256, 1], &[256], &[1000, 3, 255]];
        for (w, n) in [
            (30u64, 0u64),
            (31, 1),
            (32, 255),
            (33, 256),
            (34, 257),
            (35, 1_000),
            (36, 513),
            (37, 3_001),
        ] {
            let b = sample_batch(w, n, &key);
            let h = header_of(&b);
            stream(&j, &h, b.leaves(), sizes[(w % 4) as usize]);
            let (_, witnesses) = sketch_with_witnesses(b.leaves());
            let watchers = vec!["http://127.0.0.1:1/v1/receipts".to_owned()];
            let (id, new) = j
                .stream_seal(b.receipt(), &witnesses, &watchers, 5)
                .unwrap();
            assert!(new);
            assert_eq!(id, batch_id(b.receipt()));
            assert!(j.open_streams().is_empty());
            assert_eq!(j.batch(&id).unwrap().as_ref(), Some(b.receipt()));
            let root = b.receipt().body.integrity.merkle_root;
            let all: Vec<u64> = (0..n).collect();
            let (r, answers) = j.audit(&id, &all).unwrap();
            assert_eq!(&r, b.receipt());
            for (i, a) in all.iter().zip(&answers) {
                assert_eq!(a, &b.audit_answer(*i).unwrap(), "n={n} i={i}");
                a.leaf.proof.verify(&a.leaf.leaf.hash(), &root).unwrap();
                tolldns_receipts::verify_leaf_proof(&r, &a.leaf).unwrap();
            }
            // A sampled audit as an auditor draws it.
            if n > 0 {
                let sample = AuditSample::new(&[w as u8; 32], &root, n, 16);
                let (_, proofs) = j.audit(&id, sample.indices()).unwrap();
                assert_eq!(b.answer(&sample).unwrap(), proofs);
            }
            for t in 0..9u8 {
                let ticket = [0xa0 | t; 16];
                let (r, proofs) = j.ticket_leaves(&id, &ticket, usize::MAX).unwrap();
                assert_eq!(proofs, b.ticket_leaves(&ticket), "n={n} ticket {t}");
                let want = b.leaves().iter().filter(|l| l.ticket == ticket).count() as u64;
                assert_eq!(
                    tolldns_receipts::verify_ticket_leaves(&r, &ticket, &proofs, u64::MAX),
                    Ok(want)
                );
            }
            let regs: Vec<usize> = (0..SKETCH_REGISTERS).collect();
            let (_, ws) = j.sketch_witnesses(&id, &regs).unwrap();
            for (reg, w) in regs.iter().zip(&ws) {
                assert_eq!(w, &b.sketch_witness(*reg), "register {reg}");
            }
            // Sealing the same receipt again stores nothing new.
            let mut roots = Vec::new();
            j.stream_append(&h, run(b.leaves(), 0, n as usize, &mut roots))
                .unwrap();
            assert!(!j.stream_seal(b.receipt(), &witnesses, &[], 6).unwrap().1);
        }
        // An empty window opened by an empty append seals the same way.
        let e = sample_batch(38, 0, &key);
        j.stream_append(&header_of(&e), run(&[], 0, 0, &mut Vec::new()))
            .unwrap();
        let (id, _) = j
            .stream_seal(e.receipt(), &[u64::MAX; SKETCH_REGISTERS], &[], 7)
            .unwrap();
        assert_eq!(j.batch(&id).unwrap().as_ref(), Some(e.receipt()));
        let s = j.stats().unwrap();
        assert_eq!(s.batches, 9);
        assert_eq!(s.outbox_pending, 8);
        assert_eq!(
            s.leaves_journaled_total,
            1 + 255 + 256 + 257 + 1_000 + 513 + 3_001
        );
        assert_eq!(s.leaves_lost_total, 0);
        assert_eq!(stream_rows(&j).0, 0, "no stream is left open");
        // The leaves expire with the batch: audits see them gone at once, and the rows are
        // deleted afterwards, a bounded number per transaction.
        j.prune(u64::MAX, 0, u64::MAX).unwrap();
        assert!(matches!(j.audit(&id, &[0]), Err(AuditError::Pruned)));
        assert_eq!(j.stats().unwrap().leaf_bytes, 0);
        let (open, chunks, tickets) = stream_rows(&j);
        assert_eq!((open, chunks), (0, 24));
        assert_eq!(tickets, 64);
        assert_eq!(j.garbage_streams().unwrap(), 9, "one per batch");
        let mut rounds = 0;
        loop {
            let n = j.collect_garbage(5).unwrap();
            assert!(n <= 6, "{n}");
            if n == 0 {
                break;
            }
            rounds += 1;
        }
        // 24 chunk rows, 24 root rows, 64 ticket rows and 9 garbage entries, at most about 5
        // per transaction.
        assert!(rounds >= (24 + 24 + 64 + 9) / 6, "{rounds}");
        assert_eq!(stream_rows(&j), (0, 0, 0));
        assert_eq!(j.garbage_streams().unwrap(), 0);
        let tx = j.db.begin_read().unwrap();
        assert_eq!(tx.open_table(STREAM_ROOTS).unwrap().len().unwrap(), 0);
        drop(tx);
        let _ = std::fs::remove_dir_all(dir);
    }

    /// The journal stores the chunk roots the window stream hands over without hashing the
    /// leaves: roots that are not the leaves' are refused at the seal (the root over them is
    /// not the receipt's), and leaves that are not the roots' are never served as proven.
    #[test]
    fn chunk_roots_that_are_not_the_leaves_are_refused() {
        let dir = tmp("stream-roots");
        let key = SigningKey::from_bytes(&[6; 32]);
        let (j, _) = Journal::open(&dir.join("j.redb")).unwrap();
        let b = sample_batch(43, 600, &key);
        let h = header_of(&b);
        let (_, witnesses) = sketch_with_witnesses(b.leaves());
        let mut roots = Vec::new();
        let mut wrong = run(b.leaves(), 0, 600, &mut roots).chunk_roots.to_vec();
        wrong[1][0] ^= 1;
        j.stream_append(
            &h,
            StreamedLeaves {
                first_index: 0,
                leaves: b.leaves(),
                chunk_roots: &wrong,
            },
        )
        .unwrap();
        assert!(matches!(
            j.stream_seal(b.receipt(), &witnesses, &[], 1),
            Err(JournalError::StreamMismatch {
                what: "merkle_root",
                ..
            })
        ));
        assert_eq!(j.stats().unwrap().batches, 0);
        j.stream_abandon(43, "edge-ingress", 600).unwrap();
        // The receipt's roots with a leaf of chunk 1 changed: the seal cannot tell (it does
        // not hash the leaves), an audit of that chunk can and refuses to answer.
        let mut other = b.leaves().to_vec();
        other[300].response_bytes += 1;
        let good = run(b.leaves(), 0, 600, &mut roots).chunk_roots.to_vec();
        j.stream_append(
            &h,
            StreamedLeaves {
                first_index: 0,
                leaves: &other,
                chunk_roots: &good,
            },
        )
        .unwrap();
        let (id, _) = j.stream_seal(b.receipt(), &witnesses, &[], 1).unwrap();
        let (_, answers) = j.audit(&id, &[5, 599]).unwrap();
        assert_eq!(answers[0], b.audit_answer(5).unwrap());
        assert_eq!(answers[1], b.audit_answer(599).unwrap());
        assert!(matches!(
            j.audit(&id, &[300]),
            Err(AuditError::Journal(JournalError::Corrupt {
                what: "leaves"
            }))
        ));
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn a_stream_refuses_gaps_and_receipts_of_other_leaves() {
        let dir = tmp("stream-refuse");
        let key = SigningKey::from_bytes(&[6; 32]);
        let (j, _) = Journal::open(&dir.join("j.redb")).unwrap();
        let b = sample_batch(40, 600, &key);
        let h = header_of(&b);
        let l = b.leaves();
        let mut roots = Vec::new();
        // The first append must open the stream at 0, and each continue it.
        assert!(matches!(
            j.stream_append(&h, run(l, 5, 10, &mut roots)),
            Err(JournalError::StreamGap {
                expected: 0,
                got: 5,
                ..
            })
        ));
        // One root per completed chunk, no more, no less.
        let mut one_short = run(l, 0, 300, &mut roots);
        one_short.chunk_roots = &[];
        assert!(matches!(
            j.stream_append(&h, one_short),
            Err(JournalError::ChunkRoots {
                expected: 1,
                got: 0,
                ..
            })
        ));
        j.stream_append(&h, run(l, 0, 300, &mut roots)).unwrap();
        assert!(matches!(
            j.stream_append(&h, run(l, 299, 600, &mut roots)),
            Err(JournalError::StreamGap {
                expected: 300,
                got: 299,
                ..
            })
        ));
        // A seal before the last leaves: wrong count, nothing stored, the stream stays.
        let (_, witnesses) = sketch_with_witnesses(b.leaves());
        assert!(matches!(
            j.stream_seal(b.receipt(), &witnesses, &[], 1),
            Err(JournalError::StreamMismatch {
                what: "leaf_count",
                ..
            })
        ));
        // The right count of other leaves: wrong root.
        let mut other = b.leaves().to_vec();
        other[310].response_bytes += 1;
        j.stream_append(&h, run(&other, 300, 600, &mut roots))
            .unwrap();
        assert!(matches!(
            j.stream_seal(b.receipt(), &witnesses, &[], 1),
            Err(JournalError::StreamMismatch {
                what: "merkle_root",
                ..
            })
        ));
        // No seal without a stream.
        let b2 = sample_batch(41, 3, &key);
        assert!(matches!(
            j.stream_seal(b2.receipt(), &witnesses, &[], 1),
            Err(JournalError::NoStream { window: 41 })
        ));
        assert_eq!(j.stats().unwrap().batches, 0);
        assert_eq!(j.open_streams(), vec![(40, "edge-ingress".to_owned(), 600)]);
        // Given up: removed, its leaves counted as lost.
        assert_eq!(j.stream_abandon(40, "edge-ingress", 590).unwrap(), 600);
        assert!(j.open_streams().is_empty());
        assert_eq!(stream_rows(&j), (0, 0, 0));
        assert_eq!(j.stats().unwrap().leaves_lost_total, 600);
        // A window abandoned before the journal saw it: the edge's count.
        assert_eq!(j.stream_abandon(42, "edge-ingress", 7).unwrap(), 7);
        assert_eq!(j.stats().unwrap().leaves_lost_total, 607);
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn a_crash_between_appends_counts_the_stream_as_lost_on_reopen() {
        let dir = tmp("stream-crash");
        let path = dir.join("j.redb");
        let key = SigningKey::from_bytes(&[7; 32]);
        let (j, _) = Journal::open(&path).unwrap();
        j.begin_run().unwrap();
        // Window 50 is sealed; window 51 is open, 600 leaves appended (512 stored, 88 in
        // memory) when the process dies; the edge had accepted 700 at the last checkpoint.
        let a = sample_batch(50, 50, &key);
        stream(&j, &header_of(&a), a.leaves(), &[20]);
        let (_, wa) = sketch_with_witnesses(a.leaves());
        let (id_a, _) = j.stream_seal(a.receipt(), &wa, &[], 1).unwrap();
        let b = sample_batch(51, 600, &key);
        stream(&j, &header_of(&b), b.leaves(), &[300]);
        j.checkpoint(700).unwrap();
        assert_eq!(stream_rows(&j).0, 1);
        drop(j);
        let (j, lost) = Journal::open(&path).unwrap();
        assert_eq!(lost, 700 - 50);
        assert_eq!(j.stats().unwrap().leaves_lost_total, 650);
        assert_eq!(stream_rows(&j).0, 0, "the open stream is removed");
        assert_eq!(
            stream_rows(&j).1,
            1,
            "only the sealed batch's chunk is left"
        );
        j.audit(&id_a, &[0, 49]).unwrap();

        // Appended past the last checkpoint: the stored leaves count.
        j.begin_run().unwrap();
        j.checkpoint(10).unwrap();
        stream(&j, &header_of(&b), b.leaves(), &[300]);
        drop(j);
        let (j, lost) = Journal::open(&path).unwrap();
        assert_eq!(lost, 512);

        // Without a run (no marker), the stored leaves of the stream.
        stream(&j, &header_of(&b), &b.leaves()[..CHUNK_LEAVES + 1], &[1]);
        drop(j);
        let (j, lost) = Journal::open(&path).unwrap();
        assert_eq!(lost, CHUNK_LEAVES as u64);
        assert_eq!(j.stats().unwrap().leaves_lost_total, 650 + 512 + 256);
        assert_eq!(stream_rows(&j), (0, 1, 3));
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn abandoned_and_unfinished_streams_are_counted_once() {
        let dir = tmp("stream-once");
        let path = dir.join("j.redb");
        let key = SigningKey::from_bytes(&[8; 32]);
        let (j, _) = Journal::open(&path).unwrap();
        j.begin_run().unwrap();
        let a = sample_batch(60, 300, &key);
        stream(&j, &header_of(&a), a.leaves(), &[100]);
        assert_eq!(j.stream_abandon(60, "edge-ingress", 300).unwrap(), 300);
        // A stream this process no longer holds (its abandon failed) goes at the next prune.
        let b = sample_batch(61, 600, &key);
        stream(&j, &header_of(&b), b.leaves(), &[600]);
        j.lock_open().clear();
        j.prune(1, 1_000, u64::MAX).unwrap();
        assert_eq!(stream_rows(&j), (0, 0, 0));
        assert_eq!(j.stats().unwrap().leaves_lost_total, 300 + 512);
        // Still open at the clean end of the run.
        let c = sample_batch(62, 40, &key);
        stream(&j, &header_of(&c), c.leaves(), &[40]);
        // 300 + 600 + 40 accepted; all counted: the end adds only the open stream's 40.
        assert_eq!(j.end_run(940).unwrap(), 40 + 88);
        assert_eq!(j.stats().unwrap().leaves_lost_total, 940);
        assert_eq!(stream_rows(&j), (0, 0, 0));
        drop(j);
        assert_eq!(Journal::open(&path).unwrap().1, 0);
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn batches_keyed_by_id_by_earlier_versions_still_audit_and_prune() {
        let dir = tmp("old-layout");
        let key = SigningKey::from_bytes(&[9; 32]);
        let (j, _) = Journal::open(&dir.join("j.redb")).unwrap();
        let b = sample_batch(70, 700, &key);
        let id = j
            .commit_batch_keyed_by_id(b.receipt(), b.leaves(), 1)
            .unwrap();
        // A streamed batch next to it.
        let c = sample_batch(71, 300, &key);
        stream(&j, &header_of(&c), c.leaves(), &[299]);
        let (_, wc) = sketch_with_witnesses(c.leaves());
        let (id_c, _) = j.stream_seal(c.receipt(), &wc, &[], 2).unwrap();
        assert_eq!(stream_rows(&j).0, 0);
        let all: Vec<u64> = (0..700).collect();
        let (_, answers) = j.audit(&id, &all).unwrap();
        for (i, a) in all.iter().zip(&answers) {
            assert_eq!(a, &b.audit_answer(*i).unwrap());
        }
        let ticket = [0xa3; 16];
        let (_, proofs) = j.ticket_leaves(&id, &ticket, usize::MAX).unwrap();
        assert!(!proofs.is_empty());
        assert_eq!(proofs, b.ticket_leaves(&ticket));
        let regs: Vec<usize> = (0..SKETCH_REGISTERS).collect();
        let (_, ws) = j.sketch_witnesses(&id, &regs).unwrap();
        for (reg, w) in regs.iter().zip(&ws) {
            assert_eq!(w, &b.sketch_witness(*reg));
        }
        // Both go with their audit window, every row of the old layout too.
        let p = j.prune(1_001, 1_000, u64::MAX).unwrap();
        assert_eq!(p.leaves_expired, 700);
        assert!(matches!(j.audit(&id, &[0]), Err(AuditError::Pruned)));
        j.audit(&id_c, &[0]).unwrap();
        let p = j.prune(10_000, 1_000, u64::MAX).unwrap();
        assert_eq!(p.leaves_expired, 300);
        let tx = j.db.begin_read().unwrap();
        assert_eq!(tx.open_table(LEAF_CHUNKS).unwrap().len().unwrap(), 0);
        assert_eq!(tx.open_table(TICKET_INDEX).unwrap().len().unwrap(), 0);
        assert_eq!(tx.open_table(CHUNK_ROOTS).unwrap().len().unwrap(), 0);
        assert_eq!(tx.open_table(WITNESSES).unwrap().len().unwrap(), 0);
        drop(tx);
        assert_eq!(j.stats().unwrap().leaf_bytes, 0);
        let _ = std::fs::remove_dir_all(dir);
    }

    pub(crate) fn tmp(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!(
            "tolldns-miner-journal-{}-{name}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn chunked_proofs_are_the_full_tree_proofs_and_lookups_verify() {
        let dir = tmp("chunks");
        let key = SigningKey::from_bytes(&[3; 32]);
        let (j, _) = Journal::open(&dir.join("j.redb")).unwrap();
        for (w, n) in [
            (10u64, 1u64),
            (11, 255),
            (12, 256),
            (13, 257),
            (14, 1_000),
            (15, 513),
        ] {
            let b = sample_batch(w, n, &key);
            let (id, _) = j.commit_batch(b.receipt(), b.leaves(), &[], 1).unwrap();
            let all: Vec<u64> = (0..n).collect();
            let (_, answers) = j.audit(&id, &all).unwrap();
            for (i, a) in all.iter().zip(&answers) {
                assert_eq!(a, &b.audit_answer(*i).unwrap(), "n={n} i={i}");
            }
            // Ticket lookups: every leaf of the ticket, each proved.
            let ticket = [0xa0; 16];
            let (r, proofs) = j.ticket_leaves(&id, &ticket, usize::MAX).unwrap();
            assert!(
                matches!(
                    j.ticket_leaves(&id, &ticket, proofs.len().saturating_sub(1)),
                    Err(AuditError::TooMany { .. })
                ) || proofs.is_empty()
            );
            assert_eq!(proofs, b.ticket_leaves(&ticket));
            let want = b.leaves().iter().filter(|l| l.ticket == ticket).count() as u64;
            assert_eq!(
                tolldns_receipts::verify_ticket_leaves(&r, &ticket, &proofs, u64::MAX),
                Ok(want)
            );
            // Sketch witnesses match the batch's.
            let regs: Vec<usize> = (0..256).collect();
            let (_, witnesses) = j.sketch_witnesses(&id, &regs).unwrap();
            for (reg, w) in regs.iter().zip(&witnesses) {
                assert_eq!(w, &b.sketch_witness(*reg), "register {reg}");
            }
        }
        // A v1 batch (as journaled by an earlier version) is still served, with v1 hashes
        // and no neighbours.
        let v1 = sample_batch_version(20, 300, &key, false);
        let (id, _) = j.commit_batch(v1.receipt(), v1.leaves(), &[], 1).unwrap();
        let (_, answers) = j.audit(&id, &[0, 150, 299]).unwrap();
        for a in &answers {
            assert!(a.next.is_none());
            a.leaf
                .proof
                .verify(
                    &a.leaf.leaf.hash_v1(),
                    &v1.receipt().body.integrity.merkle_root,
                )
                .unwrap();
        }
    }

    #[test]
    fn batches_audits_retention_and_lost_leaves() {
        let dir = tmp("a");
        let path = dir.join("j.redb");
        let key = SigningKey::from_bytes(&[1; 32]);
        let (j, lost) = Journal::open(&path).unwrap();
        assert_eq!(lost, 0);
        j.begin_run().unwrap();
        let b1 = sample_batch(100, 50, &key);
        let b2 = sample_batch(101, 30, &key);
        let w = vec!["http://127.0.0.1:1/v1/receipts".to_owned()];
        let (id1, new) = j
            .commit_batch(b1.receipt(), b1.leaves(), &w, 1_000)
            .unwrap();
        assert!(new);
        assert!(
            !j.commit_batch(b1.receipt(), b1.leaves(), &w, 1_000)
                .unwrap()
                .1
        );
        let (id2, _) = j
            .commit_batch(b2.receipt(), b2.leaves(), &w, 2_000)
            .unwrap();
        assert_eq!(id1, batch_id(b1.receipt()));
        assert_eq!(
            j.batches_in_window(100).unwrap(),
            vec![(id1, b1.receipt().clone())]
        );
        assert!(j.batches_in_window(99).unwrap().is_empty());
        assert_eq!(j.last_window().unwrap(), Some(101));

        // Audit answers verify against the receipt.
        let r = b1.receipt();
        let sample = AuditSample::new(&[7; 32], &r.body.integrity.merkle_root, 50, 10);
        let (got, proofs) = j.audit(&id1, sample.indices()).unwrap();
        assert_eq!(&got, r);
        assert_eq!(proofs.len(), 10);
        for (p, i) in proofs.iter().zip(sample.indices()) {
            assert_eq!(p.leaf.proof.leaf_index, *i);
            p.leaf
                .proof
                .verify(&p.leaf.leaf.hash(), &r.body.integrity.merkle_root)
                .unwrap();
        }
        assert_eq!(b1.answer(&sample).unwrap(), proofs);

        // 45 leaves accepted at the last checkpoint, 80 journaled: nothing lost; a crash (no
        // end_run) with 95 accepted loses 15.
        j.checkpoint(95).unwrap();
        let s = j.stats().unwrap();
        assert_eq!(s.batches, 2);
        // Leaves, chunk roots (32 B per chunk), sketch witnesses (256 × 8 B), ticket index.
        let index = |n: u64| (n.div_ceil(3) * 8) + 3 * 16;
        assert_eq!(
            s.leaf_bytes,
            80 * LEAF_LEN as u64 + 2 * (32 + 2048) + index(50) + index(30)
        );
        assert_eq!(s.outbox_pending, 2);
        assert_eq!(s.leaves_journaled_total, 80);
        drop(j);
        let (j, lost) = Journal::open(&path).unwrap();
        assert_eq!(lost, 15);
        assert_eq!(j.stats().unwrap().leaves_lost_total, 15);

        // Disk bound: keep at most 40 leaves' bytes -> the oldest batch goes first.
        let p = j
            .prune(3_000, 10_000, 40 * LEAF_LEN as u64 + 3_000)
            .unwrap();
        assert_eq!((p.leaves_expired, p.leaves_evicted), (0, 50));
        assert!(matches!(j.audit(&id1, &[0]), Err(AuditError::Pruned)));
        j.audit(&id2, &[0]).unwrap();
        // Audit window over for the second.
        let p = j.prune(12_001, 10_000, u64::MAX).unwrap();
        assert_eq!((p.leaves_expired, p.leaves_evicted), (30, 0));
        let s = j.stats().unwrap();
        assert_eq!(s.leaf_bytes, 0);
        assert_eq!((s.leaves_expired_total, s.leaves_evicted_total), (30, 50));
        // Receipts stay.
        assert_eq!(j.batch(&id1).unwrap().as_ref(), Some(b1.receipt()));
        assert!(matches!(j.audit(&[0; 32], &[0]), Err(AuditError::NotFound)));

        // Outbox.
        let due = j.outbox_due(2_000, 10).unwrap();
        assert_eq!(due.len(), 2);
        j.outbox_retry(&id1, &w[0], 1, 5_000).unwrap();
        assert_eq!(j.outbox_due(2_000, 10).unwrap().len(), 1);
        assert_eq!(j.outbox_next_due().unwrap(), Some(2_000));
        j.outbox_delivered(&id2, &w[0]).unwrap();
        assert_eq!(j.outbox_next_due().unwrap(), Some(5_000));
        assert_eq!(j.outbox_retain(&[]).unwrap(), 1);
        assert_eq!(j.stats().unwrap().outbox_pending, 0);

        // Name keys are stable once created.
        let k = j.name_key(7).unwrap();
        assert_eq!(j.name_key(7).unwrap(), k);
        assert_eq!(j.existing_name_key(7).unwrap(), Some(k));
        assert_eq!(j.existing_name_key(8).unwrap(), None);

        // A clean end with everything journaled loses nothing.
        j.begin_run().unwrap();
        assert_eq!(j.end_run(0).unwrap(), 0);
        drop(j);
        assert_eq!(Journal::open(&path).unwrap().1, 0);
        std::fs::remove_dir_all(dir).unwrap();
    }

    fn token(id: u8, window: u64, redeemed_ms: u64, not_after: Option<u64>) -> TokenRecord {
        TokenRecord {
            ticket_id: [id; 16],
            token: vec![id; 100],
            window_id: window,
            redeemed_ms,
            key_not_after: not_after,
        }
    }

    #[test]
    fn a_token_is_kept_as_long_as_the_latest_window_that_used_it() {
        let dir = tmp("tokens-span");
        let key = SigningKey::from_bytes(&[3; 32]);
        let (j, _) = Journal::open(&dir.join("j.redb")).unwrap();
        // Redeemed in window 200; its session is still used in window 205.
        let t = token(7, 200, 400_000, None);
        j.record_tokens(std::slice::from_ref(&t)).unwrap();
        let b200 = sample_batch(200, 4, &key);
        let b205 = sample_batch(205, 4, &key);
        let mut used: Vec<Leaf> = b205.leaves().to_vec();
        used[1].ticket = t.ticket_id;
        let b205 = ClosedBatch::seal(
            &header_of(&b205),
            used,
            NameKey([9; 32]).commitment(),
            1,
            &key,
        )
        .unwrap();
        j.commit_batch(b200.receipt(), b200.leaves(), &[], 1_000)
            .unwrap();
        j.commit_batch(b205.receipt(), b205.leaves(), &[], 9_000)
            .unwrap();
        assert_eq!(
            j.token(&t.ticket_id).unwrap().map(|r| r.window_id),
            Some(205)
        );
        // Window 200's leaves expire; the token stays with window 205's.
        let p = j.prune(11_500, 10_000, u64::MAX).unwrap();
        assert_eq!((p.leaves_expired, p.tokens_expired), (4, 0));
        assert!(j.token(&t.ticket_id).unwrap().is_some());
        // And goes with them.
        let p = j.prune(19_500, 10_000, u64::MAX).unwrap();
        assert_eq!((p.leaves_expired, p.tokens_expired), (4, 1));
        assert_eq!(j.stats().unwrap().token_bytes, 0);
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn tokens_dedupe_prune_with_their_window_and_the_redeemed_set_outlives_them() {
        let dir = tmp("tokens");
        let path = dir.join("j.redb");
        let key = SigningKey::from_bytes(&[2; 32]);
        let (j, _) = Journal::open(&path).unwrap();
        let w = [];
        // Window 100 (journaled at 1 s), window 101 (at 2 s), window 102 never gets a batch.
        let b100 = sample_batch(100, 10, &key);
        let b101 = sample_batch(101, 10, &key);
        let (t1, t2, t3, t4) = (
            token(1, 100, 500, None),
            token(2, 101, 1_500, Some(50)),
            token(3, 102, 2_500, Some(5_000)),
            token(4, 101, 1_600, None),
        );
        assert_eq!(j.record_tokens(&[t1.clone(), t2.clone()]).unwrap(), 2);
        // A ticket id already stored is kept as it was.
        let mut again = t1.clone();
        again.token = vec![9; 100];
        again.window_id = 101;
        assert_eq!(
            j.record_tokens(&[again, t3.clone(), t4.clone()]).unwrap(),
            2
        );
        assert_eq!(j.token(&t1.ticket_id).unwrap(), Some(t1.clone()));
        assert_eq!(j.token(&t3.ticket_id).unwrap(), Some(t3.clone()));
        assert_eq!(j.token(&[0; 16]).unwrap(), None);
        let s = j.stats().unwrap();
        assert_eq!((s.tokens, s.token_bytes, s.redeemed_tickets), (4, 400, 4));
        j.commit_batch(b100.receipt(), b100.leaves(), &w, 1_000)
            .unwrap();
        j.commit_batch(b101.receipt(), b101.leaves(), &w, 2_000)
            .unwrap();

        // Nothing is due yet; the key of token 2 expires at 50 s.
        assert_eq!(j.prune(3_000, 10_000, u64::MAX).unwrap(), Pruned::default());
        // At 11.5 s window 100's leaves expire, and its token with them; window 102 has no
        // batch and its token was redeemed at 2.5 s: still inside the audit window.
        let p = j.prune(11_500, 10_000, u64::MAX).unwrap();
        assert_eq!((p.leaves_expired, p.tokens_expired), (10, 1));
        assert_eq!(j.token(&t1.ticket_id).unwrap(), None);
        assert!(j.token(&t2.ticket_id).unwrap().is_some());
        assert!(j.token(&t3.ticket_id).unwrap().is_some());
        // The disk bound: 10 leaves and 3 tokens = 690 + 300 bytes; a bound of 500 evicts
        // window 101's leaves and its two tokens; the token of the window without a batch
        // stays (100 bytes left, under the bound).
        let p = j.prune(11_600, 10_000, 500).unwrap();
        assert_eq!((p.leaves_evicted, p.tokens_evicted), (10, 2));
        assert!(j.token(&t2.ticket_id).unwrap().is_none());
        assert!(j.token(&t3.ticket_id).unwrap().is_some());
        // The token of the window without a batch goes once its audit window has passed.
        let p = j.prune(12_500, 10_000, u64::MAX).unwrap();
        assert_eq!(p.tokens_expired, 1);
        let s = j.stats().unwrap();
        assert_eq!((s.tokens, s.token_bytes), (0, 0));
        assert_eq!((s.tokens_expired_total, s.tokens_evicted_total), (2, 2));

        // The redeemed set outlives the tokens, until each issuer key expires, and survives a
        // reopen.
        let mut ids = j.redeemed_tickets(12_500).unwrap();
        ids.sort_unstable();
        assert_eq!(
            ids,
            vec![
                ([1; 16], None),
                ([2; 16], Some(50)),
                ([3; 16], Some(5_000)),
                ([4; 16], None)
            ]
        );
        drop(j);
        let (j, _) = Journal::open(&path).unwrap();
        // Read at 60 s, key 2 (not_after 50 s, exclusive) is already over.
        let mut ids = j.redeemed_tickets(60_000).unwrap();
        ids.sort_unstable();
        assert_eq!(
            ids,
            vec![([1; 16], None), ([3; 16], Some(5_000)), ([4; 16], None)]
        );
        let p = j.prune(60_000, 10_000, u64::MAX).unwrap();
        assert_eq!(p.redeemed_expired, 1);
        assert_eq!(j.stats().unwrap().redeemed_tickets, 3);
        // Recording an id again (after its token was pruned) stores the token again but
        // keeps one entry in the redeemed set.
        assert_eq!(j.record_tokens(std::slice::from_ref(&t4)).unwrap(), 1);
        let s = j.stats().unwrap();
        assert_eq!((s.tokens, s.redeemed_tickets), (1, 3));
        let p = j.prune(5_000_000, 10_000, u64::MAX).unwrap();
        assert_eq!(p.redeemed_expired, 1);
        assert_eq!(
            j.redeemed_tickets(5_000_000).unwrap().len(),
            2,
            "ids without key expiry stay"
        );
        drop(j);
        std::fs::remove_dir_all(dir).unwrap();
    }
}
