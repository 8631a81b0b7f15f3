//! Receipt ingest: what `POST /v1/receipts` does with a body, independent of HTTP.
//!
//! A body is a receipt's JSON form (what the miner's outbox sends). Its batch id is the
//! SHA-256 of the receipt's canonical bytes; an `Idempotency-Key` header, when present, must be
//! that id in hex. A batch already stored is answered from the store (the same verdict, never
//! a second row). A new batch is verified with [`tolldns_receipts::Verifier`] against the
//! registry snapshot at the current slot and the ledger of accepted windows, then stored with
//! its verdict, arrival time and arrival slot; only then does an accepted batch enter the
//! ledger. Verification and storage of one batch happen under one lock, so two receipts that
//! overlap cannot both be accepted.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use portable_atomic::AtomicU64;
use tolldns_core::{BackendId, OperatorId, WindowId, WindowLen};
use tolldns_receipts::{Deployment, Receipt, ReceiptLedger, Verifier, VerifyError};

use crate::metrics::Metrics;
use crate::registry::SharedRegistry;
use crate::store::{BatchRecord, Store, StoreError, Verdict};

/// How old a registry snapshot may be for an unregistered or unstaked operator's receipt to
/// be refused for good (older: the registry is read again and the miner retries).
pub const FRESH_REGISTRY_MS: u64 = 2_000;

/// A batch id: SHA-256 of the receipt's canonical bytes, signature included.
pub type BatchId = [u8; 32];

/// The batch id of a receipt.
pub fn batch_id(receipt: &Receipt) -> BatchId {
    tolldns_core::hash::tagged_sha256(&[], &[&receipt.to_bytes()])
}

/// The latest chain slot the watcher has seen and when (wall-clock ms).
#[derive(Debug, Default)]
pub struct ChainClock {
    slot: AtomicU64,
    seen_ms: AtomicU64,
}

impl ChainClock {
    /// No slot seen yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records a slot read from the chain (slots never go back).
    pub fn observe(&self, slot: u64, now_ms: u64) {
        self.slot.fetch_max(slot, Ordering::Relaxed);
        self.seen_ms.store(now_ms, Ordering::Relaxed);
    }

    /// The latest slot, if one was seen at most `max_age_ms` before `now_ms`.
    pub fn current(&self, now_ms: u64, max_age_ms: u64) -> Option<u64> {
        let seen = self.seen_ms.load(Ordering::Relaxed);
        if seen == 0 || now_ms.saturating_sub(seen) > max_age_ms {
            return None;
        }
        Some(self.slot.load(Ordering::Relaxed))
    }

    /// The latest slot seen (0 before any).
    pub fn latest(&self) -> u64 {
        self.slot.load(Ordering::Relaxed)
    }
}

/// What ingest decided about a body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// New and accepted (HTTP 201).
    Accepted {
        /// The batch id.
        batch_id: BatchId,
    },
    /// New and refused by a receipt rule (HTTP 422; resending it changes nothing).
    Refused {
        /// The batch id.
        batch_id: BatchId,
        /// The rule's stable name ([`VerifyError::name`]).
        rule: &'static str,
        /// The rule's message.
        message: String,
    },
    /// Already stored (HTTP 200 when it was accepted, 409 when refused).
    AlreadyStored {
        /// The batch id.
        batch_id: BatchId,
        /// The stored verdict.
        verdict: Verdict,
    },
}

/// Why a body could not be judged.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IngestError {
    /// Not a receipt's JSON form (HTTP 400).
    #[error("malformed receipt: {0}")]
    Malformed(String),
    /// The `Idempotency-Key` is not the batch id (HTTP 400).
    #[error("Idempotency-Key {given} is not the batch id {expected}")]
    IdempotencyKey {
        /// The header's value.
        given: String,
        /// The batch id, hex.
        expected: String,
    },
    /// The body is larger than the limit (HTTP 413).
    #[error("request body larger than {limit} bytes")]
    TooLarge {
        /// The limit.
        limit: usize,
    },
    /// The receipt arrived before its window ended (HTTP 503 + Retry-After: send it later).
    #[error("the receipt's window has not ended yet (retry after {retry_after_secs} s)")]
    TooEarly {
        /// Seconds until it can be accepted.
        retry_after_secs: u64,
    },
    /// The chain has not been read recently, so the arrival slot and the registry are unknown
    /// (HTTP 503; retry).
    #[error("chain state unavailable: {0}")]
    ChainUnavailable(&'static str),
    /// The operator is unknown (or unstaked) in a registry snapshot that may be out of date;
    /// it is being read again (HTTP 503; retry).
    #[error(
        "the signing key is not registered (or not staked) in the registry as last read; reading it again (retry)"
    )]
    RegistryStale,
    /// The store failed (HTTP 503; retry).
    #[error("store unavailable: {0}")]
    Store(#[from] StoreError),
}

impl IngestError {
    /// The metric label of the error.
    pub const fn label(&self) -> &'static str {
        match self {
            Self::Malformed(_) | Self::IdempotencyKey { .. } => "malformed",
            Self::TooLarge { .. } => "too_large",
            Self::TooEarly { .. } => "too_early",
            Self::ChainUnavailable(_) | Self::Store(_) => "unavailable",
            Self::RegistryStale => "registry_stale",
        }
    }
}

/// The ingest path's state.
#[derive(Debug)]
pub struct Ingest {
    /// The store.
    pub store: Store,
    /// The registry snapshot.
    pub registry: Arc<SharedRegistry>,
    /// The chain slot.
    pub clock: Arc<ChainClock>,
    /// The receipt rules of the deployment.
    pub deployment: Deployment,
    /// Tolerated clock skew.
    pub skew_ms: u64,
    /// Largest age of the last slot read before ingest answers 503.
    pub max_slot_age_ms: u64,
    /// Serializes verification and storage of new batches, and an epoch's close against
    /// them (a batch stored after its epoch was closed would never count).
    pub lock: Arc<tokio::sync::Mutex<()>>,
    /// Metrics.
    pub metrics: Arc<Metrics>,
}

impl Ingest {
    /// Judges one body received at `arrival_ms` (see the module docs).
    ///
    /// # Errors
    ///
    /// [`IngestError`]: what the client must fix, or that it should retry.
    pub async fn submit(
        &self,
        body: &[u8],
        idempotency_key: Option<&str>,
        arrival_ms: u64,
    ) -> Result<Outcome, IngestError> {
        let result = self.submit_inner(body, idempotency_key, arrival_ms).await;
        match &result {
            Ok(Outcome::Accepted { .. }) => self.metrics.receipt("accepted"),
            Ok(Outcome::Refused { rule, .. }) => self.metrics.receipt(rule),
            Ok(Outcome::AlreadyStored { .. }) => self.metrics.receipt("duplicate"),
            Err(e) => {
                if matches!(e, IngestError::Store(_)) {
                    self.metrics.store_error("ingest");
                }
                self.metrics.receipt(e.label());
            }
        }
        result
    }

    async fn submit_inner(
        &self,
        body: &[u8],
        idempotency_key: Option<&str>,
        arrival_ms: u64,
    ) -> Result<Outcome, IngestError> {
        let text = std::str::from_utf8(body)
            .map_err(|_| IngestError::Malformed("the body is not UTF-8".to_owned()))?;
        let receipt =
            Receipt::from_json(text).map_err(|e| IngestError::Malformed(e.to_string()))?;
        let id = batch_id(&receipt);
        if let Some(key) = idempotency_key {
            let expected = hex::encode(id);
            if !key.trim().eq_ignore_ascii_case(&expected) {
                return Err(IngestError::IdempotencyKey {
                    given: key.chars().take(80).collect(),
                    expected,
                });
            }
        }
        let _serial = self.lock.lock().await;
        if let Some(row) = self.store.batch(&id).await? {
            return Ok(Outcome::AlreadyStored {
                batch_id: id,
                verdict: row.verdict,
            });
        }
        let slot = self.clock.current(arrival_ms, self.max_slot_age_ms).ok_or(
            IngestError::ChainUnavailable("no recent slot from the chain RPC"),
        )?;
        let snap = self.registry.get().ok_or(IngestError::ChainUnavailable(
            "the registry has not been read yet",
        ))?;
        let view = snap.at(slot);
        // One receipt per operator and time (docs/THREAT_MODEL.md R12): the ledger holds the
        // windows of every key of the signing key's wallet, so a window signed again with the
        // key of a rotation overlaps the first.
        let key = receipt.body.operator_id.as_bytes();
        let windows = match snap.wallet_of(key) {
            Some(wallet) => {
                let mut w = self
                    .store
                    .accepted_windows_of_wallet(&wallet.to_bytes())
                    .await?;
                // Receipts accepted before the key was mapped to the wallet (none in normal
                // operation) still count.
                w.extend(self.store.accepted_windows(key).await?);
                w
            }
            None => self.store.accepted_windows(key).await?,
        };
        let ledger = StoredWindows {
            operator: receipt.body.operator_id,
            window_len: receipt.body.window_len,
            windows,
        };
        let verdict = Verifier::new(self.deployment, &view, &view, &ledger)
            .with_skew_ms(self.skew_ms)
            .verify(&receipt, arrival_ms);
        let b = &receipt.body;
        // A key registered (or staked) since the snapshot was read would be refused for good:
        // read the registry again first, and let the miner retry.
        if matches!(
            verdict,
            Err(VerifyError::UnregisteredOperator | VerifyError::OperatorNotStaked)
        ) && arrival_ms.saturating_sub(snap.read_ms) > FRESH_REGISTRY_MS
        {
            self.registry.request_refresh();
            return Err(IngestError::RegistryStale);
        }
        if let Err(VerifyError::ArrivedTooEarly { .. }) = verdict {
            let end = b.window_id.end_ms(b.window_len).unwrap_or(u64::MAX);
            let wait = end
                .saturating_sub(self.skew_ms)
                .saturating_sub(arrival_ms)
                .div_ceil(1000)
                .max(1);
            return Err(IngestError::TooEarly {
                retry_after_secs: wait,
            });
        }
        let record = BatchRecord {
            batch_id: id,
            operator_key: b.operator_id.to_bytes(),
            // Only a receipt its operator really signed is attributed to the operator: anyone
            // can post a receipt naming someone else's key.
            wallet: receipt
                .verify_signature()
                .ok()
                .and_then(|()| snap.wallet_of(b.operator_id.as_bytes()))
                .map(|w| w.to_bytes()),
            version: b.version(),
            epoch: snap.epoch_of(slot),
            window_start_ms: b.window_id.start_ms(b.window_len).unwrap_or(0),
            window_end_ms: b.window_id.end_ms(b.window_len).unwrap_or(0),
            receipt_json: text.to_owned(),
            arrival_ms,
            arrival_slot: slot,
            verdict: match &verdict {
                Ok(()) => Verdict::Accepted,
                Err(e) => Verdict::Refused {
                    reason: format!("{}: {e}", e.name()),
                },
            },
        };
        self.store.insert_batch(&record).await?;
        match verdict {
            Ok(()) => {
                tracing::info!(batch = %hex::encode(id), slot, "receipt accepted");
                Ok(Outcome::Accepted { batch_id: id })
            }
            Err(e) => {
                tracing::warn!(batch = %hex::encode(id), rule = e.name(), "receipt refused");
                Ok(Outcome::Refused {
                    batch_id: id,
                    rule: e.name(),
                    message: e.to_string(),
                })
            }
        }
    }
}

/// The accepted windows of one operator (all keys of its wallet), read from the store: the
/// verifier's [`ReceiptLedger`] for a receipt of that operator (a v1 duplicate is a stored window with
/// the same bounds, whatever its backend).
#[derive(Debug, Clone)]
pub struct StoredWindows {
    /// The operator whose windows these are.
    pub operator: OperatorId,
    /// The window length of the receipt being verified.
    pub window_len: WindowLen,
    /// `[start_ms, end_ms)` of its accepted receipts.
    pub windows: Vec<(u64, u64)>,
}

impl ReceiptLedger for StoredWindows {
    fn contains(&self, operator: &OperatorId, _backend: &BackendId, window: WindowId) -> bool {
        if *operator != self.operator {
            return false;
        }
        let Ok(start) = window.start_ms(self.window_len) else {
            return false;
        };
        self.windows.iter().any(|(s, _)| *s == start)
    }

    fn overlaps(&self, operator: &OperatorId, start_ms: u64, end_ms: u64) -> bool {
        *operator == self.operator
            && self
                .windows
                .iter()
                .any(|(s, e)| *s < end_ms && *e > start_ms)
    }
}
