//! Receipt recording: one fixed-size leaf per answered query, one signed batch per window.
//!
//! The hot path calls [`Recorder::record`], which hashes the name with the epoch's name key
//! and appends a [`Leaf`] to the thread-sharded [`BatchBuilder`]. A background task closes each
//! window shortly after it ends (Merkle hashing and signing run on a blocking thread) and hands
//! the signed [`ClosedBatch`] to the [`ReceiptSink`].

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{SystemTime, UNIX_EPOCH};

use ed25519_dalek::SigningKey;
use serde::Deserialize;
use tokio::sync::mpsc;
use tolldns_core::{
    BackendId, DeploymentId, NameKey, NormalizedName, PreparedNameKey, Role, WindowId, WindowLen,
};
use tolldns_receipts::{
    BatchBuilder, BuilderConfig, ClosedBatch, LatencyBucket, Leaf, LeafFlags, MAX_RESPONSE_BYTES,
    RcodeClass, SealError, Transport, WorkClass,
};

/// A signed batch receipt with its leaves (what a window closes into).
pub type SignedBatch = ClosedBatch;

/// A toll-ticket token redeemed at the edge: kept with the window's leaves for the audit
/// window, so that an auditor can fetch the token behind a leaf's ticket id and verify it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedeemedToken {
    /// The ticket id (what the leaves carry).
    pub ticket_id: [u8; 16],
    /// The token's bytes.
    pub token: Vec<u8>,
    /// The window it was redeemed in.
    pub window: WindowId,
    /// When (unix milliseconds).
    pub redeemed_ms: u64,
    /// When its issuer key expires (unix seconds), if it does: until then it must stay
    /// remembered as redeemed.
    pub key_not_after: Option<u64>,
}

/// Where closed, signed batches and redeemed tokens go (a queue to a submitter, a disk
/// store, …).
pub trait ReceiptSink: Send + Sync + 'static {
    /// Take ownership of one signed batch. Called from a blocking thread, once per closed
    /// window, in window order.
    fn deliver(&self, batch: SignedBatch);

    /// Take a redeemed token. Called on the serving path, once per token: must not block
    /// (queue it). Returns `false` when the token could not be taken (counted as lost).
    fn redeemed(&self, token: RedeemedToken) -> bool;

    /// Tokens this sink already holds as redeemed (ticket id, issuer key expiry), read once
    /// when the edge starts so that a restart does not make them redeemable again.
    fn redeemed_before(&self) -> Vec<([u8; 16], Option<u64>)> {
        Vec::new()
    }
}

/// A [`ReceiptSink`] that forwards batches into a bounded channel.
///
/// A batch that does not fit (the receiver is gone or the channel is full) is logged and
/// counted in [`ChannelSink::lost`], never dropped silently.
#[derive(Debug, Clone)]
pub struct ChannelSink {
    tx: mpsc::Sender<SignedBatch>,
    lost: Arc<AtomicU64>,
}

impl ChannelSink {
    /// A sink and the receiver of its batches; `capacity` batches can wait.
    pub fn new(capacity: usize) -> (Self, mpsc::Receiver<SignedBatch>) {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        (
            Self {
                tx,
                lost: Arc::new(AtomicU64::new(0)),
            },
            rx,
        )
    }

    /// Batches that could not be queued.
    pub fn lost(&self) -> u64 {
        self.lost.load(Ordering::Relaxed)
    }
}

impl ReceiptSink for ChannelSink {
    fn deliver(&self, batch: SignedBatch) {
        let window = batch.receipt().body.window_id;
        if self.tx.try_send(batch).is_err() {
            self.lost.fetch_add(1, Ordering::Relaxed);
            tracing::error!(%window, "receipt channel full or closed: batch lost");
        }
    }

    /// A channel of batches keeps no tokens: an edge that needs them (audits of ticketed
    /// leaves) uses a sink that stores them. Counted as not taken.
    fn redeemed(&self, _token: RedeemedToken) -> bool {
        false
    }
}

/// Supplies the name key of the epoch a window belongs to.
pub trait NameKeyProvider: Send + Sync + 'static {
    /// The name key for leaves of `window`.
    fn name_key(&self, window: WindowId) -> NameKey;
}

/// One name key for every window (an ephemeral edge, tests).
#[derive(Clone)]
pub struct StaticNameKey(pub NameKey);

impl fmt::Debug for StaticNameKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("StaticNameKey(..)")
    }
}

impl NameKeyProvider for StaticNameKey {
    fn name_key(&self, _: WindowId) -> NameKey {
        self.0.clone()
    }
}

/// Everything receipt recording needs from the caller.
pub struct ReceiptsSetup {
    /// The hot receipt-signing key.
    pub signing_key: SigningKey,
    /// The per-epoch name keys.
    pub name_keys: Arc<dyn NameKeyProvider>,
    /// Where signed batches go.
    pub sink: Arc<dyn ReceiptSink>,
}

impl fmt::Debug for ReceiptsSetup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReceiptsSetup")
            .field("verifying_key", &self.signing_key.verifying_key())
            .finish_non_exhaustive()
    }
}

/// Receipt settings of [`EdgeConfig`](crate::EdgeConfig).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ReceiptsConfig {
    /// Record receipts at all. Without it no leaf is recorded and no batch is signed.
    pub enabled: bool,
    /// Window length in seconds (at least 1).
    pub window_secs: u32,
    /// Adapter context written in every receipt (at most 32 ASCII bytes).
    pub backend_id: String,
    /// Policy version served under.
    pub policy_version: u32,
    /// Most leaves kept per window; further answered queries are counted as dropped leaves.
    pub max_leaves_per_window: usize,
    /// Milliseconds after a window's end before it is closed (late in-flight answers).
    pub close_grace_millis: u64,
    /// The network the receipts are signed for: 64 hex digits, [`DeploymentId::derive`] of
    /// the score program's id and the cluster's genesis hash. Empty means the local
    /// development deployment ([`DeploymentId::local`]).
    pub deployment_id: String,
}

impl Default for ReceiptsConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            window_secs: 60,
            backend_id: "edge-ingress".to_owned(),
            policy_version: 1,
            max_leaves_per_window: 4_000_000,
            close_grace_millis: 2_000,
            deployment_id: String::new(),
        }
    }
}

impl ReceiptsConfig {
    /// The configured deployment id ([`DeploymentId::local`] when empty).
    ///
    /// # Errors
    ///
    /// [`ReceiptsError::DeploymentId`] unless it is empty or 64 hex digits.
    pub fn deployment(&self) -> Result<DeploymentId, ReceiptsError> {
        if self.deployment_id.is_empty() {
            return Ok(DeploymentId::local());
        }
        self.deployment_id
            .parse()
            .map_err(ReceiptsError::DeploymentId)
    }
}

/// What the serving path knows about an answered query.
#[derive(Debug, Clone, Copy)]
pub struct Answered<'a> {
    /// Transport.
    pub transport: Transport,
    /// Question type.
    pub qtype: u16,
    /// Question name, dotted text (`None` when the query had no readable question).
    pub name: Option<&'a [u8]>,
    /// Outcome class.
    pub rcode_class: RcodeClass,
    /// Served from the cache.
    pub cache_hit: bool,
    /// Served stale.
    pub stale: bool,
    /// Sent with TC=1.
    pub truncated: bool,
    /// Milliseconds from receipt to answer.
    pub latency_ms: u64,
    /// Response bytes.
    pub response: &'a [u8],
    /// Client ticket (zero when absent).
    pub ticket: [u8; 16],
}

/// Wall-clock milliseconds since the Unix epoch.
/// A window's name key with its HMAC state keyed once: a name hash then costs the two
/// compressions of the name and the outer hash instead of four.
struct WindowKey {
    key: NameKey,
    prepared: PreparedNameKey,
}

impl WindowKey {
    fn new(key: NameKey) -> Self {
        let prepared = key.prepare();
        Self { key, prepared }
    }

    /// Equal to `NameKey::name_hash`: the first 16 bytes of HMAC-SHA256(key, name).
    fn name_hash(&self, name: &NormalizedName) -> [u8; 16] {
        self.prepared.name_hash(name)
    }
}

/// Names at most this long (dotted) are remembered by the per-thread name-hash memo.
const MEMO_NAME_MAX: usize = 62;
/// Slots of the per-thread memo (a power of two; about 90 KiB per thread).
const MEMO_SLOTS: usize = 1024;

static NEXT_RECORDER_ID: AtomicU64 = AtomicU64::new(1);

/// One remembered name hash: valid for one recorder, one window (hence one key) and one name.
#[derive(Clone, Copy)]
struct MemoSlot {
    owner: u64,
    window: u64,
    len: u8,
    name: [u8; MEMO_NAME_MAX],
    hash: [u8; 16],
}

impl MemoSlot {
    /// Owner 0 is never a recorder's id.
    const EMPTY: Self = Self {
        owner: 0,
        window: 0,
        len: 0,
        name: [0; MEMO_NAME_MAX],
        hash: [0; 16],
    };
}

thread_local! {
    static NAME_MEMO: std::cell::RefCell<Vec<MemoSlot>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Slot of `name` (FNV-1a).
fn memo_index(name: &[u8]) -> usize {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in name {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    // Truncation intended: only the low bits select the slot.
    (h as usize) & (MEMO_SLOTS - 1)
}

pub(crate) fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Records leaves and closes windows.
pub struct Recorder {
    builder: BatchBuilder,
    setup: ReceiptsSetup,
    current_key: RwLock<Option<(WindowId, Arc<WindowKey>)>>,
    window_len: WindowLen,
    recorded: AtomicU64,
    refused: AtomicU64,
    /// Tells this recorder's entries in the per-thread name-hash memo from another's.
    id: u64,
}

impl fmt::Debug for Recorder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Recorder")
            .field("window_len", &self.window_len)
            .finish_non_exhaustive()
    }
}

/// Why receipt recording could not be set up or a window not closed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReceiptsError {
    /// The backend id is not valid.
    #[error("invalid receipts backend id: {0}")]
    BackendId(tolldns_core::BackendIdError),
    /// The window length is zero.
    #[error("receipt window length must be at least one second")]
    WindowLen,
    /// The deployment id is not 64 hex digits.
    #[error("invalid receipts deployment id: {0}")]
    DeploymentId(tolldns_core::DeploymentIdError),
    /// Sealing a window failed.
    #[error("sealing the receipt window failed: {0}")]
    Seal(SealError),
}

impl Recorder {
    /// A recorder with `shards` leaf buffers.
    ///
    /// # Errors
    ///
    /// [`ReceiptsError`] for an invalid backend id or window length.
    pub fn new(
        config: &ReceiptsConfig,
        setup: ReceiptsSetup,
        shards: usize,
    ) -> Result<Self, ReceiptsError> {
        let window_len =
            WindowLen::new(config.window_secs).map_err(|_| ReceiptsError::WindowLen)?;
        let backend_id = BackendId::new(&config.backend_id).map_err(ReceiptsError::BackendId)?;
        let deployment_id = config.deployment()?;
        let mut builder_config = BuilderConfig::new(deployment_id, backend_id, window_len);
        builder_config.operator_role = Role::EdgeIngress;
        builder_config.policy_version = config.policy_version;
        builder_config.shards = shards;
        builder_config.max_leaves_per_window = config.max_leaves_per_window;
        let builder = BatchBuilder::new(builder_config);
        Ok(Self {
            builder,
            setup,
            current_key: RwLock::new(None),
            window_len,
            recorded: AtomicU64::new(0),
            refused: AtomicU64::new(0),
            id: NEXT_RECORDER_ID.fetch_add(1, Ordering::Relaxed),
        })
    }

    /// The tokens the sink already holds as redeemed.
    pub fn redeemed_before(&self) -> Vec<([u8; 16], Option<u64>)> {
        self.setup.sink.redeemed_before()
    }

    /// Hand a token just redeemed to the sink; `false` when it was not taken.
    pub fn redeemed(&self, token: &tolldns_tickets::VerifiedToken) -> bool {
        let now_ms = unix_ms();
        self.setup.sink.redeemed(RedeemedToken {
            ticket_id: token.ticket_id,
            token: token.bytes.clone(),
            window: WindowId::containing(now_ms, self.window_len),
            redeemed_ms: now_ms,
            key_not_after: token.key_not_after,
        })
    }

    /// The window length.
    pub const fn window_len(&self) -> WindowLen {
        self.window_len
    }

    fn key_for(&self, window: WindowId) -> Arc<WindowKey> {
        if let Ok(g) = self.current_key.read() {
            if let Some((w, k)) = g.as_ref() {
                if *w == window {
                    return Arc::clone(k);
                }
            }
        }
        let key = Arc::new(WindowKey::new(self.setup.name_keys.name_key(window)));
        if let Ok(mut g) = self.current_key.write() {
            *g = Some((window, Arc::clone(&key)));
        }
        key
    }

    /// The leaf name hash of `name` (dotted) under `window`'s key; all zeros for a name that
    /// does not normalize. Remembered per thread: popular names skip normalization and HMAC.
    fn name_hash(&self, window: WindowId, key: &WindowKey, name: &[u8]) -> [u8; 16] {
        let compute = || {
            NormalizedName::from_bytes(name)
                .ok()
                .map_or([0u8; 16], |n| key.name_hash(&n))
        };
        let Some(len) = u8::try_from(name.len())
            .ok()
            .filter(|&l| usize::from(l) <= MEMO_NAME_MAX)
        else {
            return compute();
        };
        let window = window.get();
        NAME_MEMO.with(|memo| {
            let Ok(mut memo) = memo.try_borrow_mut() else {
                return compute();
            };
            if memo.is_empty() {
                memo.resize(MEMO_SLOTS, MemoSlot::EMPTY);
            }
            let Some(slot) = memo.get_mut(memo_index(name)) else {
                return compute();
            };
            if slot.owner == self.id
                && slot.window == window
                && slot.len == len
                && slot.name.get(..name.len()) == Some(name)
            {
                return slot.hash;
            }
            let hash = compute();
            if let Some(dst) = slot.name.get_mut(..name.len()) {
                dst.copy_from_slice(name);
                slot.owner = self.id;
                slot.window = window;
                slot.len = len;
                slot.hash = hash;
            }
            hash
        })
    }

    /// Record one answered query. Returns whether the leaf was kept; a refused leaf is counted
    /// (here and in the builder's `dropped()`).
    pub fn record(&self, a: &Answered<'_>) -> bool {
        let now_ms = unix_ms();
        let window = WindowId::containing(now_ms, self.window_len);
        let key = self.key_for(window);
        let name_hash = a
            .name
            .map_or([0u8; 16], |n| self.name_hash(window, &key, n));
        // The summary hash commits to the response bytes after the ID (which the client chose).
        let response_summary_hash = Leaf::response_summary_hash(a.response.get(2..).unwrap_or(&[]));
        let work_class = match (a.cache_hit, a.rcode_class) {
            (true, _) => WorkClass::CacheHit,
            (false, RcodeClass::NoError | RcodeClass::Nxdomain | RcodeClass::Nodata) => {
                WorkClass::CacheMiss
            }
            _ => WorkClass::Other,
        };
        let leaf = Leaf {
            timestamp_ms: now_ms,
            transport: a.transport,
            qtype: a.qtype,
            rcode_class: a.rcode_class,
            work_class,
            flags: LeafFlags {
                cache_hit: a.cache_hit,
                stale: a.stale,
                truncated: a.truncated,
            },
            latency: LatencyBucket::from_millis(a.latency_ms),
            // A DNS message is at most 65,535 bytes; v2 leaves cannot claim more.
            response_bytes: u32::try_from(a.response.len())
                .unwrap_or(u32::MAX)
                .min(MAX_RESPONSE_BYTES),
            name_hash,
            ticket: a.ticket,
            response_summary_hash,
            repeat: 0,
        };
        match self.builder.add(leaf) {
            Ok(()) => {
                self.recorded.fetch_add(1, Ordering::Relaxed);
                true
            }
            Err(_) => {
                self.refused.fetch_add(1, Ordering::Relaxed);
                false
            }
        }
    }

    /// Leaves recorded so far.
    pub fn recorded(&self) -> u64 {
        self.recorded.load(Ordering::Relaxed)
    }

    /// Leaves that could not be recorded so far (all reasons).
    pub fn dropped(&self) -> u64 {
        self.builder.dropped().total()
    }

    /// Leaves waiting in `window`.
    pub fn pending(&self, window: WindowId) -> usize {
        self.builder.pending(window)
    }

    /// Close `window` and deliver its signed batch to the sink (blocking: hashes every leaf).
    ///
    /// # Errors
    ///
    /// [`ReceiptsError::Seal`]; the window's leaves are then lost and counted as dropped.
    pub fn close_and_deliver(&self, window: WindowId) -> Result<u64, ReceiptsError> {
        let key = self.key_for(window);
        let batch = self
            .builder
            .close(
                window,
                key.key.commitment(),
                unix_ms(),
                &self.setup.signing_key,
            )
            .map_err(ReceiptsError::Seal)?;
        let leaves = batch.receipt().body.integrity.leaf_count;
        tracing::info!(%window, leaves, "receipt window closed");
        self.setup.sink.deliver(batch);
        Ok(leaves)
    }
}

#[cfg(test)]
mod window_key_tests {
    use super::*;

    fn recorder(key: [u8; 32]) -> Recorder {
        let (sink, _rx) = ChannelSink::new(1);
        let setup = ReceiptsSetup {
            signing_key: SigningKey::from_bytes(&[3; 32]),
            name_keys: Arc::new(StaticNameKey(NameKey(key))),
            sink: Arc::new(sink),
        };
        Recorder::new(&ReceiptsConfig::default(), setup, 2).unwrap()
    }

    #[test]
    fn memoized_name_hashes_match_per_recorder_window_and_name() {
        let (a, b) = (recorder([1; 32]), recorder([2; 32]));
        let long = "x".repeat(70) + ".test";
        let names = [
            "a.test",
            "b.test",
            "A.TEST",
            "xn--bcher-kva.example",
            long.as_str(),
            "bad..name",
        ];
        let w1 = WindowId::containing(unix_ms(), a.window_len());
        let w2 = w1.next().unwrap();
        // Repeat so that the second and third rounds are served from the memo.
        for _ in 0..3 {
            for (rec, seed) in [(&a, 1u8), (&b, 2)] {
                for w in [w1, w2] {
                    let key = rec.key_for(w);
                    for name in names {
                        let want = NormalizedName::from_bytes(name.as_bytes())
                            .ok()
                            .map_or([0u8; 16], |n| NameKey([seed; 32]).name_hash(&n));
                        assert_eq!(rec.name_hash(w, &key, name.as_bytes()), want, "{name}");
                    }
                }
            }
        }
    }

    #[test]
    fn prekeyed_name_hash_equals_the_core_definition() {
        for seed in [0u8, 1, 0x5A, 0xFF] {
            let key = NameKey([seed; 32]);
            let wk = WindowKey::new(key.clone());
            for name in [
                "example.com",
                "a.b.c.d.e.f.g.test",
                ".",
                "xn--bcher-kva.example",
            ] {
                let n = NormalizedName::from_bytes(name.as_bytes()).unwrap();
                assert_eq!(wk.name_hash(&n), key.name_hash(&n), "{name}");
            }
            let long = "a".repeat(63) + "." + &"b".repeat(63) + "." + &"c".repeat(60);
            let n = NormalizedName::from_bytes(long.as_bytes()).unwrap();
            assert_eq!(wk.name_hash(&n), key.name_hash(&n));
        }
    }
}
