//! The receipt journal: one redb database (`<data_dir>/journal.redb`) holding every signed batch
//! receipt (forever), the leaves of each batch (for the audit window, bounded in bytes), the
//! outbox of pending watcher deliveries, the per-epoch name keys, and the counters that make
//! lost leaves visible.
//!
//! Every write is one transaction committed with redb's default `Durability::Immediate` (the
//! file is synced before `commit` returns), so a batch is on disk, with its outbox entries,
//! before it is reported as signed.
//!
//! # Lost leaves
//!
//! While the edge runs, an *open-run marker* holds two numbers: the leaves the edge had accepted
//! at the last checkpoint, and the leaves journaled in signed batches since the start. A clean
//! stop closes the last window, journals it and removes the marker. After a crash the marker is
//! still there at the next start: `accepted - journaled` leaves were accepted but never made it
//! into a journaled batch; they are added to the persistent `leaves_lost_total` counter
//! (exported as `tolldns_receipt_leaves_lost_total`). Leaves accepted after the last checkpoint
//! (at most one checkpoint interval) are not seen; the count is a lower bound.
//!
//! # Retention and the disk bound
//!
//! Signed receipts are never deleted. The leaves of a batch are deleted when its audit window
//! (`journal.audit_window_secs` after it was journaled) has passed. When the stored leaf bytes
//! exceed `journal.max_leaf_bytes`, the leaves of the oldest batches are deleted first, even
//! inside their audit window (counted as `evicted`); audits of those batches then answer
//! `410 Gone`.

use std::path::{Path, PathBuf};

use redb::{ReadableTable as _, ReadableTableMetadata as _, TableDefinition};
use tolldns_core::NameKey;
use tolldns_receipts::{LEAF_LEN, Leaf, LeafProof, MerkleTree, Receipt};

/// A batch id: SHA-256 of the receipt's canonical (Borsh) bytes, signature included.
pub type BatchId = [u8; 32];

const BATCHES: TableDefinition<'_, BatchId, &[u8]> = TableDefinition::new("batches");
const BY_WINDOW: TableDefinition<'_, (u64, BatchId), ()> = TableDefinition::new("by_window");
/// id -> (journaled_at_ms, leaf_count, stored leaf bytes; 0 once deleted).
const META: TableDefinition<'_, BatchId, (u64, u64, u64)> = TableDefinition::new("batch_meta");
const LEAVES: TableDefinition<'_, BatchId, &[u8]> = TableDefinition::new("leaves");
/// (id, watcher url) -> (attempts, next_attempt_ms).
const OUTBOX: TableDefinition<'_, (BatchId, &str), (u32, u64)> = TableDefinition::new("outbox");
const NAME_KEYS: TableDefinition<'_, u64, [u8; 32]> = TableDefinition::new("name_keys");
const COUNTERS: TableDefinition<'_, &str, u64> = TableDefinition::new("counters");
/// "open" -> (accepted at last checkpoint, journaled this run).
const RUN: TableDefinition<'_, &str, (u64, u64)> = TableDefinition::new("run");

const C_LOST: &str = "leaves_lost_total";
const C_JOURNALED: &str = "leaves_journaled_total";
const C_EXPIRED: &str = "leaves_expired_total";
const C_EVICTED: &str = "leaves_evicted_total";
const C_LEAF_BYTES: &str = "leaf_bytes";
const C_RECEIPT_BYTES: &str = "receipt_bytes";
const OPEN: &str = "open";

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

/// A sampled leaf with its proof, as served by the audit API.
pub type SampledLeaf = LeafProof;

/// The receipt journal.
#[derive(Debug)]
pub struct Journal {
    db: redb::Database,
    path: PathBuf,
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

impl Journal {
    /// Opens (or creates) the journal and settles a previous run that did not stop cleanly.
    /// Returns the journal and the number of leaves found lost by that settlement.
    ///
    /// # Errors
    ///
    /// [`JournalError::Db`].
    pub fn open(path: &Path) -> Result<(Self, u64), JournalError> {
        let db = redb::Database::create(path)?;
        // The journal holds the name keys: owner-only, like the key files.
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600));
        }
        let journal = Self {
            db,
            path: path.to_owned(),
        };
        let tx = journal.db.begin_write()?;
        let lost;
        {
            // Create every table so that readers never meet a missing one.
            tx.open_table(BATCHES)?;
            tx.open_table(BY_WINDOW)?;
            tx.open_table(META)?;
            tx.open_table(LEAVES)?;
            tx.open_table(OUTBOX)?;
            tx.open_table(NAME_KEYS)?;
            let mut run = tx.open_table(RUN)?;
            let mut counters = tx.open_table(COUNTERS)?;
            let marker = run.remove(OPEN)?.map(|g| g.value());
            lost = marker.map_or(0, |(accepted, journaled)| {
                accepted.saturating_sub(journaled)
            });
            add(&mut counters, C_LOST, lost)?;
        }
        tx.commit()?;
        Ok((journal, lost))
    }

    /// Marks the start of a run (see the module docs).
    ///
    /// # Errors
    ///
    /// [`JournalError::Db`].
    pub fn begin_run(&self) -> Result<(), JournalError> {
        let tx = self.db.begin_write()?;
        tx.open_table(RUN)?.insert(OPEN, (0, 0))?;
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

    /// Ends a run cleanly: leaves accepted but not journaled (`accepted` minus what was
    /// journaled) are counted as lost, and the marker is removed. Returns that count.
    ///
    /// # Errors
    ///
    /// [`JournalError::Db`].
    pub fn end_run(&self, accepted: u64) -> Result<u64, JournalError> {
        let tx = self.db.begin_write()?;
        let lost;
        {
            let mut run = tx.open_table(RUN)?;
            let journaled = run.remove(OPEN)?.map_or(0, |g| g.value().1);
            lost = accepted.saturating_sub(journaled);
            add(&mut tx.open_table(COUNTERS)?, C_LOST, lost)?;
        }
        tx.commit()?;
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
        add(&mut tx.open_table(COUNTERS)?, C_LOST, n)?;
        tx.commit()?;
        Ok(())
    }

    /// Stores a signed batch, its leaves and one outbox entry per watcher in one durable
    /// transaction. Returns the batch id and whether it was new (a batch already stored is
    /// left as it is).
    ///
    /// # Errors
    ///
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
        {
            let mut batches = tx.open_table(BATCHES)?;
            if batches.get(id)?.is_some() {
                return Ok((id, false));
            }
            batches.insert(id, bytes.as_slice())?;
            tx.open_table(BY_WINDOW)?
                .insert((receipt.body.window_id.get(), id), ())?;
            let mut leaf_bytes = Vec::with_capacity(leaves.len().saturating_mul(LEAF_LEN));
            for leaf in leaves {
                leaf_bytes.extend_from_slice(&leaf.to_bytes());
            }
            let n = u64::try_from(leaves.len()).unwrap_or(u64::MAX);
            let stored = u64::try_from(leaf_bytes.len()).unwrap_or(u64::MAX);
            tx.open_table(LEAVES)?.insert(id, leaf_bytes.as_slice())?;
            tx.open_table(META)?.insert(id, (now_ms, n, stored))?;
            let mut outbox = tx.open_table(OUTBOX)?;
            for url in watchers {
                outbox.insert((id, url.as_str()), (0, now_ms))?;
            }
            let mut counters = tx.open_table(COUNTERS)?;
            add(&mut counters, C_JOURNALED, n)?;
            add(&mut counters, C_LEAF_BYTES, stored)?;
            add(
                &mut counters,
                C_RECEIPT_BYTES,
                u64::try_from(bytes.len()).unwrap_or(u64::MAX),
            )?;
            let mut run = tx.open_table(RUN)?;
            let marker = run.get(OPEN)?.map(|g| g.value());
            if let Some((accepted, journaled)) = marker {
                run.insert(OPEN, (accepted, journaled.saturating_add(n)))?;
            }
        }
        tx.commit()?;
        Ok((id, true))
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

    /// The sampled leaves and proofs for an audit: `indices` are leaf indices (from
    /// `tolldns_receipts::AuditSample`).
    ///
    /// # Errors
    ///
    /// [`AuditError`].
    pub fn audit(
        &self,
        id: &BatchId,
        indices: &[u64],
    ) -> Result<(Receipt, Vec<SampledLeaf>), AuditError> {
        let tx = self.db.begin_read().map_err(JournalError::from)?;
        let (receipt, leaf_bytes) = {
            let batches = tx.open_table(BATCHES).map_err(JournalError::from)?;
            let Some(bytes) = batches.get(id).map_err(JournalError::from)? else {
                return Err(AuditError::NotFound);
            };
            let receipt = Receipt::from_bytes(bytes.value())
                .map_err(|_| JournalError::Corrupt { what: "receipt" })?;
            let leaves = tx.open_table(LEAVES).map_err(JournalError::from)?;
            let Some(l) = leaves.get(id).map_err(JournalError::from)? else {
                return Err(AuditError::Pruned);
            };
            (receipt, l.value().to_vec())
        };
        let leaves = leaf_bytes
            .chunks(LEAF_LEN)
            .map(Leaf::from_bytes)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| JournalError::Corrupt { what: "leaves" })?;
        let tree = MerkleTree::from_leaf_hashes(leaves.iter().map(Leaf::hash).collect());
        if tree.root() != receipt.body.integrity.merkle_root
            || tree.len() != receipt.body.integrity.leaf_count
        {
            return Err(JournalError::Corrupt { what: "leaves" }.into());
        }
        let mut out = Vec::with_capacity(indices.len());
        for &i in indices {
            let leaf = usize::try_from(i)
                .ok()
                .and_then(|i| leaves.get(i))
                .copied()
                .ok_or(JournalError::Corrupt { what: "leaves" })?;
            let proof = tree
                .proof(i)
                .map_err(|_| JournalError::Corrupt { what: "leaves" })?;
            out.push(LeafProof { leaf, proof });
        }
        Ok((receipt, out))
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

    /// Deletes the leaves whose audit window has passed, then the oldest leaves until at most
    /// `max_leaf_bytes` remain. Returns (expired, evicted) leaf counts.
    ///
    /// # Errors
    ///
    /// [`JournalError::Db`].
    pub fn prune(
        &self,
        now_ms: u64,
        audit_window_ms: u64,
        max_leaf_bytes: u64,
    ) -> Result<(u64, u64), JournalError> {
        let tx = self.db.begin_write()?;
        let (mut expired, mut evicted) = (0u64, 0u64);
        {
            let by_window = tx.open_table(BY_WINDOW)?;
            let mut meta = tx.open_table(META)?;
            let mut leaves = tx.open_table(LEAVES)?;
            let mut counters = tx.open_table(COUNTERS)?;
            let mut total = counters.get(C_LEAF_BYTES)?.map_or(0, |g| g.value());
            // Oldest windows first.
            for entry in by_window.iter()? {
                let (key, _) = entry?;
                let id = key.value().1;
                let Some((at, n, stored)) = meta.get(id)?.map(|g| g.value()) else {
                    continue;
                };
                if stored == 0 && n != 0 {
                    continue;
                }
                let is_expired = at.saturating_add(audit_window_ms) <= now_ms;
                if !is_expired && total <= max_leaf_bytes {
                    continue;
                }
                if leaves.remove(id)?.is_none() {
                    continue;
                }
                meta.insert(id, (at, n, 0))?;
                total = total.saturating_sub(stored);
                if is_expired {
                    expired = expired.saturating_add(n);
                } else {
                    evicted = evicted.saturating_add(n);
                }
            }
            counters.insert(C_LEAF_BYTES, total)?;
            add(&mut counters, C_EXPIRED, expired)?;
            add(&mut counters, C_EVICTED, evicted)?;
        }
        tx.commit()?;
        Ok((expired, evicted))
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
        })
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use ed25519_dalek::SigningKey;
    use tolldns_core::{BackendId, Role, WindowId, WindowLen};
    use tolldns_receipts::{
        AuditSample, BatchHeader, ClosedBatch, LatencyBucket, LeafFlags, RcodeClass, ReceiptType,
        Transport, WorkClass,
    };

    pub(crate) fn sample_batch(window: u64, n: u64, key: &SigningKey) -> ClosedBatch {
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
                name_hash: [i as u8; 16],
                ticket: [0; 16],
                response_summary_hash: [1; 16],
            })
            .collect();
        ClosedBatch::seal(
            &BatchHeader {
                receipt_type: ReceiptType::Batch,
                operator_role: Role::EdgeIngress,
                backend_id: BackendId::new("edge-ingress").unwrap(),
                policy_version: 1,
                window_len: len,
                window_id: w,
            },
            leaves,
            NameKey([9; 32]).commitment(),
            start + 2000,
            key,
        )
        .unwrap()
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
            assert_eq!(p.proof.leaf_index, *i);
            p.proof
                .verify(&p.leaf.hash(), &r.body.integrity.merkle_root)
                .unwrap();
        }
        assert_eq!(b1.answer(&sample).unwrap(), proofs);

        // 45 leaves accepted at the last checkpoint, 80 journaled: nothing lost; a crash (no
        // end_run) with 95 accepted loses 15.
        j.checkpoint(95).unwrap();
        let s = j.stats().unwrap();
        assert_eq!(s.batches, 2);
        assert_eq!(s.leaf_bytes, 80 * LEAF_LEN as u64);
        assert_eq!(s.outbox_pending, 2);
        assert_eq!(s.leaves_journaled_total, 80);
        drop(j);
        let (j, lost) = Journal::open(&path).unwrap();
        assert_eq!(lost, 15);
        assert_eq!(j.stats().unwrap().leaves_lost_total, 15);

        // Disk bound: keep at most 40 leaves' bytes -> the oldest batch goes first.
        let (expired, evicted) = j.prune(3_000, 10_000, 40 * LEAF_LEN as u64).unwrap();
        assert_eq!((expired, evicted), (0, 50));
        assert!(matches!(j.audit(&id1, &[0]), Err(AuditError::Pruned)));
        j.audit(&id2, &[0]).unwrap();
        // Audit window over for the second.
        let (expired, evicted) = j.prune(12_001, 10_000, u64::MAX).unwrap();
        assert_eq!((expired, evicted), (30, 0));
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
}
