//! Receipt recording: one fixed-size leaf per answered query, streamed out of memory while
//! its window is open, one signed receipt per window.
//!
//! The hot path calls [`Recorder::record`], which hashes the name with the epoch's name key
//! and appends a [`Leaf`] to the thread-sharded [`BatchBuilder`]. A background task, the
//! *pump*, runs [`Recorder::pump`] every `flush_interval_ms` on a blocking thread: it drains
//! each open window's leaves older than `watermark_ms` in the strict order of v2, feeds them
//! to the window's [`WindowStream`] (the RFC 6962 root, summary and sketch, computed as they
//! come) and to [`ReceiptSink::append`], and once a window ended `close_grace_ms` before the
//! watermark, signs the root already computed and hands the receipt to [`ReceiptSink::seal`].
//! Memory is the leaves of the last `watermark_ms + flush_interval_ms` (at most
//! `max_pending_leaves`), whatever the window length and the query rate.
//!
//! A leaf that arrives after the drain that passed its timestamp (a thread stalled longer
//! than the watermark) is recorded at the drain's watermark instead, and counted
//! ([`Recorder::clamped`]). Nothing is lost silently: refused leaves and leaves of windows
//! whose stream the sink could not take are counted by reason ([`Recorder::losses`]).

use std::collections::BTreeMap;
use std::fmt;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{SystemTime, UNIX_EPOCH};

use ed25519_dalek::SigningKey;
use portable_atomic::AtomicU64;
use serde::Deserialize;
use tokio::sync::mpsc;
use tolldns_core::{
    BackendId, DeploymentId, NameKey, NormalizedName, PreparedNameKey, Role, WindowId, WindowLen,
};
use tolldns_receipts::{
    BatchBuilder, BatchHeader, BuilderConfig, ClosedBatch, Hash, LatencyBucket, Leaf, LeafFlags,
    MAX_RESPONSE_BYTES, RcodeClass, SealError, SealedWindow, StreamedLeaves, Transport,
    WindowStream, WorkClass,
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

/// Why a [`ReceiptSink`] could not take a window's leaves or its receipt.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct SinkError {
    message: String,
}

impl SinkError {
    /// An error with `message`.
    pub fn new(message: impl fmt::Display) -> Self {
        Self {
            message: message.to_string(),
        }
    }
}

/// Where each window's leaves stream, its signed receipt and the redeemed tokens go (a
/// journal, a queue to a submitter, …).
///
/// For one window the recorder calls [`append`](Self::append) zero or more times with
/// consecutive Merkle indices, then either [`seal`](Self::seal) or
/// [`abandon`](Self::abandon), never both. Windows are handled in order, from one blocking
/// thread at a time. A window with no leaf is sealed (without any append) only when the
/// edge shuts down, for the window then current.
pub trait ReceiptSink: Send + Sync + 'static {
    /// Leaves of `header.window_id`, in Merkle order, the first at Merkle index
    /// `leaves.first_index` (0 opens the window's stream), with the RFC 6962 root of every
    /// chunk of [`CHUNK_LEAVES`](tolldns_receipts::CHUNK_LEAVES) leaves they complete, as the
    /// window's [`WindowStream`] computed them (see [`StreamedLeaves`]): a sink that stores
    /// the leaves in such chunks to serve proofs keeps those roots instead of hashing the
    /// leaves again. The roots are what the receipt's root is built from, so a sink that
    /// keeps them checks at [`seal`](Self::seal) that the root over them is the receipt's
    /// `merkle_root`. Called from a blocking thread, windows in order.
    ///
    /// # Errors
    ///
    /// [`SinkError`] when the leaves cannot be kept: the window's stream is then given up
    /// ([`abandon`](Self::abandon)) and its leaves counted as lost.
    fn append(&self, header: &BatchHeader, leaves: StreamedLeaves<'_>) -> Result<(), SinkError>;

    /// Every leaf of the window was appended; this is its signed receipt (whose root and
    /// count are those of the appended leaves).
    ///
    /// # Errors
    ///
    /// [`SinkError`] when the receipt cannot be kept: the window is then abandoned.
    fn seal(&self, window: WindowId, sealed: SealedWindow) -> Result<(), SinkError>;

    /// The window's stream is given up (an append or the seal failed): the `leaves` appended
    /// so far are lost (and counted by the recorder); the sink may discard them.
    fn abandon(&self, window: WindowId, leaves: u64);

    /// Take a redeemed token. Called on the serving path, once per token: must not block
    /// (queue it). Returns `false` when the token could not be taken (counted as lost).
    fn redeemed(&self, token: RedeemedToken) -> bool;

    /// Tokens this sink already holds as redeemed (ticket id, issuer key expiry), read once
    /// when the edge starts so that a restart does not make them redeemable again.
    fn redeemed_before(&self) -> Vec<([u8; 16], Option<u64>)> {
        Vec::new()
    }
}

/// A [`ReceiptSink`] that collects each window's leaves **in memory** and, at the seal, sends
/// the whole [`ClosedBatch`] into a bounded channel: for tests, examples and ephemeral edges.
/// It holds a whole window until it is sealed, so its memory grows with the query rate; an
/// edge that must stay bounded streams into a store instead.
///
/// A batch that does not fit (the receiver is gone or the channel is full) is logged and
/// counted in [`ChannelSink::lost`], never dropped silently.
#[derive(Debug, Clone)]
pub struct ChannelSink {
    tx: mpsc::Sender<SignedBatch>,
    lost: Arc<AtomicU64>,
    open: Arc<Mutex<BTreeMap<WindowId, Vec<Leaf>>>>,
}

impl ChannelSink {
    /// A sink and the receiver of its batches; `capacity` batches can wait.
    pub fn new(capacity: usize) -> (Self, mpsc::Receiver<SignedBatch>) {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        (
            Self {
                tx,
                lost: Arc::new(AtomicU64::new(0)),
                open: Arc::new(Mutex::new(BTreeMap::new())),
            },
            rx,
        )
    }

    /// Windows that could not be delivered (channel full or closed, or abandoned).
    pub fn lost(&self) -> u64 {
        self.lost.load(Ordering::Relaxed)
    }

    fn open(&self) -> std::sync::MutexGuard<'_, BTreeMap<WindowId, Vec<Leaf>>> {
        self.open.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl ReceiptSink for ChannelSink {
    /// Keeps the leaves (the chunk roots are not needed: the batch is rebuilt from the
    /// leaves at the seal).
    fn append(&self, header: &BatchHeader, leaves: StreamedLeaves<'_>) -> Result<(), SinkError> {
        let mut open = self.open();
        let held = open.entry(header.window_id).or_default();
        let have = u64::try_from(held.len()).unwrap_or(u64::MAX);
        if leaves.first_index != have {
            return Err(SinkError::new(format_args!(
                "window {}: leaves appended from index {} after {have} leaves",
                header.window_id, leaves.first_index
            )));
        }
        held.extend_from_slice(leaves.leaves);
        Ok(())
    }

    fn seal(&self, window: WindowId, sealed: SealedWindow) -> Result<(), SinkError> {
        let leaves = self.open().remove(&window).unwrap_or_default();
        let lost = || {
            self.lost.fetch_add(1, Ordering::Relaxed);
        };
        let batch = ClosedBatch::from_parts(sealed.receipt, leaves).map_err(|e| {
            lost();
            SinkError::new(format_args!("window {window}: {e}"))
        })?;
        self.tx.try_send(batch).map_err(|_| {
            lost();
            tracing::error!(%window, "receipt channel full or closed: batch lost");
            SinkError::new("receipt channel full or closed")
        })
    }

    fn abandon(&self, window: WindowId, _leaves: u64) {
        if self.open().remove(&window).is_some() {
            self.lost.fetch_add(1, Ordering::Relaxed);
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
    /// Where each window's leaves and signed receipt go.
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
    /// Most leaves held in memory at once, not yet streamed to the sink (over all windows);
    /// answered queries past it are counted as lost leaves (`full`). Leaves are held for
    /// about `watermark_ms + flush_interval_ms`, so the default (1 Mi, about 80 MB) covers
    /// 800k answers per second.
    pub max_pending_leaves: usize,
    /// Milliseconds a leaf waits before it is streamed: leaves older than `now − watermark_ms`
    /// are drained in order; a leaf recorded later than that with an older timestamp is
    /// recorded at the watermark (counted as clamped).
    pub watermark_ms: u64,
    /// Milliseconds between two runs of the pump that streams leaves to the sink (at least 10).
    pub flush_interval_ms: u64,
    /// Milliseconds after a window's end (past the watermark) before it is sealed (late
    /// in-flight answers). The old name `close_grace_millis` is accepted.
    #[serde(alias = "close_grace_millis")]
    pub close_grace_ms: u64,
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
            max_pending_leaves: 1 << 20,
            watermark_ms: 1_000,
            flush_interval_ms: 250,
            close_grace_ms: 2_000,
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

/// A window's name key with its HMAC state keyed once: a name hash then costs the two
/// compressions of the name and the outer hash instead of four.
struct WindowKey {
    prepared: PreparedNameKey,
}

impl WindowKey {
    fn new(key: &NameKey) -> Self {
        Self {
            prepared: key.prepare(),
        }
    }

    /// Equal to `NameKey::name_hash`: the first 16 bytes of HMAC-SHA256(key, name).
    fn name_hash(&self, name: &NormalizedName) -> [u8; 16] {
        self.prepared.name_hash(name)
    }
}

/// Names at most this long (dotted) are remembered by the per-thread name-hash memo.
const MEMO_NAME_MAX: usize = 38;
/// Slots of the per-thread memo (a power of two; one 64-byte cache line each, 256 KiB per
/// thread that records leaves, allocated by its first leaf).
const MEMO_SLOTS: usize = 4096;
/// Slots per set: a name may sit in any of the `MEMO_WAYS` slots of its set.
const MEMO_WAYS: usize = 4;

static NEXT_RECORDER_ID: AtomicU64 = AtomicU64::new(1);

/// One remembered name hash: valid for one recorder and one window (hence one key), whose
/// `tag` it holds, and one name. One cache line.
#[derive(Clone, Copy)]
#[repr(C, align(64))]
struct MemoSlot {
    tag: u64,
    hash: [u8; 16],
    len: u8,
    /// Hits since it was filled, halved each time a slot of its full set is replaced.
    hits: u8,
    name: [u8; MEMO_NAME_MAX],
}

const _: () = assert!(size_of::<MemoSlot>() == 64);

impl MemoSlot {
    /// Tag 0 is never a recorder's (ids start at 1).
    const EMPTY: Self = Self {
        tag: 0,
        hash: [0; 16],
        len: 0,
        hits: 0,
        name: [0; MEMO_NAME_MAX],
    };
}

/// The memo tag of a recorder and a window: the recorder id in the high 32 bits, the window in
/// the low 32 (windows of a second or more stay below 2^32 until 2106); never 0, since ids
/// start at 1. `None` past those bounds: the name hash is then computed every time.
fn memo_tag(recorder: u64, window: u64) -> Option<u64> {
    let recorder = u32::try_from(recorder).ok()?;
    let window = u32::try_from(window).ok()?;
    Some((u64::from(recorder) << 32) | u64::from(window))
}

#[cfg(test)]
thread_local! {
    /// Name hashes computed (not served from the memo) on this thread.
    static MEMO_COMPUTED: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

thread_local! {
    static NAME_MEMO: std::cell::RefCell<Vec<MemoSlot>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// The memo's hash of names (fixed keys: a name only picks which remembered hash it may
/// replace, so nothing is gained by keying it per process).
static MEMO_HASHER: ahash::RandomState = ahash::RandomState::with_seeds(1, 2, 3, 4);

/// First slot of the set of `name` (the set is [`MEMO_WAYS`] slots from there).
fn memo_index(name: &[u8]) -> usize {
    // Truncation intended: only the low bits select the set.
    (MEMO_HASHER.hash_one(name) as usize) & (MEMO_SLOTS - MEMO_WAYS)
}

/// Wall-clock milliseconds since the Unix epoch.
pub(crate) fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Leaves lost so far, by reason (never reset).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct LeafLosses {
    /// Refused: `max_pending_leaves` were held already.
    pub full: u64,
    /// Refused: the leaf's window was already sealed.
    pub late: u64,
    /// Refused: too many windows open at once (a clock far ahead).
    pub too_many_windows: u64,
    /// Refused: not a valid leaf.
    pub invalid: u64,
    /// Streamed, but the window's stream was given up (the sink failed).
    pub abandoned: u64,
}

impl LeafLosses {
    /// All lost leaves.
    pub const fn total(&self) -> u64 {
        self.full
            .saturating_add(self.late)
            .saturating_add(self.too_many_windows)
            .saturating_add(self.invalid)
            .saturating_add(self.abandoned)
    }

    /// Each reason with its stable snake_case name (metric labels).
    pub const fn by_reason(&self) -> [(&'static str, u64); 5] {
        [
            ("full", self.full),
            ("late", self.late),
            ("too_many_windows", self.too_many_windows),
            ("invalid", self.invalid),
            ("abandoned", self.abandoned),
        ]
    }
}

/// What one run of [`Recorder::pump`] or [`Recorder::close_all`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct PumpReport {
    /// Leaves streamed to the sink.
    pub appended: u64,
    /// Windows sealed and handed to the sink.
    pub sealed: u64,
    /// Leaves in the windows sealed.
    pub sealed_leaves: u64,
    /// Leaves lost in this run (windows abandoned, leaves of abandoned windows).
    pub lost: u64,
}

/// A window being streamed.
struct OpenWindow {
    stream: WindowStream,
    /// The chunk roots of the last append (a buffer reused from one append to the next).
    chunk_roots: Vec<Hash>,
    /// The previous drain's watermark: leaves drained next are raised to it at least.
    floor: u64,
    /// The sink gave the stream up: later leaves of the window are counted as lost.
    abandoned: bool,
}

/// Records leaves and streams windows out.
pub struct Recorder {
    builder: BatchBuilder,
    setup: ReceiptsSetup,
    current_key: RwLock<Option<(WindowId, Arc<WindowKey>)>>,
    window_len: WindowLen,
    watermark_ms: u64,
    grace_ms: u64,
    recorded: AtomicU64,
    refused: AtomicU64,
    abandoned: AtomicU64,
    /// Windows being streamed; the lock also keeps two pumps from running at once.
    open: Mutex<BTreeMap<WindowId, OpenWindow>>,
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
    /// The sink could not take a window's leaves or receipt.
    #[error("the receipt sink failed: {0}")]
    Sink(SinkError),
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
        builder_config.max_pending_leaves = config.max_pending_leaves;
        let builder = BatchBuilder::new(builder_config);
        Ok(Self {
            builder,
            setup,
            current_key: RwLock::new(None),
            window_len,
            watermark_ms: config.watermark_ms,
            grace_ms: config.close_grace_ms,
            recorded: AtomicU64::new(0),
            refused: AtomicU64::new(0),
            abandoned: AtomicU64::new(0),
            open: Mutex::new(BTreeMap::new()),
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
        let key = Arc::new(WindowKey::new(&self.setup.name_keys.name_key(window)));
        if let Ok(mut g) = self.current_key.write() {
            *g = Some((window, Arc::clone(&key)));
        }
        key
    }

    /// The leaf name hash of `name` (dotted) under `window`'s key; all zeros for a name that
    /// does not normalize. Remembered per thread: popular names skip normalization, the key
    /// lookup and the HMAC.
    fn name_hash(&self, window: WindowId, name: &[u8]) -> [u8; 16] {
        let compute = || {
            #[cfg(test)]
            MEMO_COMPUTED.with(|c| c.set(c.get() + 1));
            NormalizedName::from_bytes(name)
                .ok()
                .map_or([0u8; 16], |n| self.key_for(window).name_hash(&n))
        };
        let Some(len) = u8::try_from(name.len())
            .ok()
            .filter(|&l| usize::from(l) <= MEMO_NAME_MAX)
        else {
            return compute();
        };
        let Some(tag) = memo_tag(self.id, window.get()) else {
            return compute();
        };
        NAME_MEMO.with(|memo| {
            let Ok(mut memo) = memo.try_borrow_mut() else {
                return compute();
            };
            if memo.is_empty() {
                memo.resize(MEMO_SLOTS, MemoSlot::EMPTY);
            }
            let set = memo_index(name);
            let Some(ways) = memo.get_mut(set..set + MEMO_WAYS) else {
                return compute();
            };
            if let Some(slot) = ways.iter_mut().find(|slot| {
                slot.tag == tag && slot.len == len && slot.name.get(..name.len()) == Some(name)
            }) {
                slot.hits = slot.hits.saturating_add(1);
                return slot.hash;
            }
            // Replace a slot of another window (or recorder), else the one that served the
            // fewest hits, whose rivals' counts are halved: names asked in turn keep the more
            // popular ones of a crowded set remembered.
            let hash = compute();
            let victim = match ways.iter().position(|slot| slot.tag != tag) {
                Some(stale) => stale,
                None => {
                    for slot in ways.iter_mut() {
                        slot.hits /= 2;
                    }
                    (0..MEMO_WAYS)
                        .min_by_key(|&i| ways.get(i).map_or(0, |slot| slot.hits))
                        .unwrap_or(0)
                }
            };
            if let Some(slot) = ways.get_mut(victim)
                && let Some(dst) = slot.name.get_mut(..name.len())
            {
                dst.copy_from_slice(name);
                slot.tag = tag;
                slot.len = len;
                slot.hits = 0;
                slot.hash = hash;
            }
            hash
        })
    }

    /// Record one answered query. Returns whether the leaf was kept; a refused leaf is counted
    /// (here and in the builder's `dropped()`).
    pub fn record(&self, a: &Answered<'_>) -> bool {
        self.record_at(a, unix_ms())
    }

    /// [`record`](Self::record) an answer sent at `now_ms` (Unix milliseconds).
    pub fn record_at(&self, a: &Answered<'_>, now_ms: u64) -> bool {
        let window = WindowId::containing(now_ms, self.window_len);
        let name_hash = a.name.map_or([0u8; 16], |n| self.name_hash(window, n));
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

    /// Leaves lost so far, all reasons: refused when recorded, and streamed into windows the
    /// sink gave up.
    pub fn dropped(&self) -> u64 {
        self.losses().total()
    }

    /// Leaves lost so far, by reason.
    pub fn losses(&self) -> LeafLosses {
        let d = self.builder.dropped();
        LeafLosses {
            full: d.full,
            late: d.late,
            too_many_windows: d.too_many_windows,
            invalid: d.invalid,
            abandoned: self.abandoned.load(Ordering::Relaxed),
        }
    }

    /// Leaves recorded at a drain's watermark instead of their (older) timestamp, so far.
    pub fn clamped(&self) -> u64 {
        self.builder.clamped()
    }

    /// Leaves waiting in `window`.
    pub fn pending(&self, window: WindowId) -> usize {
        self.builder.pending(window)
    }

    /// Leaves held in memory, not yet streamed.
    pub fn held(&self) -> usize {
        self.builder.held()
    }

    /// The header of `window`'s receipt.
    fn header(&self, window: WindowId) -> BatchHeader {
        let c = self.builder.config();
        let mut h = BatchHeader::new(c.deployment_id, c.backend_id, c.window_len, window);
        h.operator_role = c.operator_role;
        h.policy_version = c.policy_version;
        h
    }

    /// Stream what is due at `now_ms` (blocking: hashes leaves and calls the sink): drain each
    /// window's leaves older than `now_ms − watermark_ms` into its stream and the sink, and
    /// seal the windows that ended at least `close_grace_ms` before that watermark.
    pub fn pump(&self, now_ms: u64) -> PumpReport {
        self.run(now_ms, false)
    }

    /// Stream and seal every window now (shutdown, blocking): all leaves held are drained, and
    /// every window with leaves is sealed, as is the window containing `now_ms` even when it
    /// has none. Leaves recorded afterwards for those windows are refused as late.
    pub fn close_all(&self, now_ms: u64) -> PumpReport {
        self.run(now_ms, true)
    }

    fn run(&self, now_ms: u64, all: bool) -> PumpReport {
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        let mark = now_ms.saturating_sub(self.watermark_ms);
        let mut windows = self.builder.open_windows();
        windows.extend(open.keys().copied());
        if all {
            windows.push(WindowId::containing(now_ms, self.window_len));
        }
        windows.sort_unstable();
        windows.dedup();
        let mut report = PumpReport::default();
        for w in windows {
            let (Ok(start), Ok(end)) = (w.start_ms(self.window_len), w.end_ms(self.window_len))
            else {
                continue;
            };
            if !all && start >= mark {
                // Nothing of this window is past the watermark yet.
                continue;
            }
            let last = all || mark >= end.saturating_add(self.grace_ms);
            // Before its last drain a window keeps its final millisecond, so that a drain
            // that reaches its end is the one that closes it.
            let before = if last {
                u64::MAX
            } else {
                mark.min(end.saturating_sub(1))
            };
            let entry = open.entry(w).or_insert_with(|| OpenWindow {
                stream: WindowStream::new(self.header(w)),
                chunk_roots: Vec::new(),
                floor: start,
                abandoned: false,
            });
            match self.builder.drain(w, before, entry.floor) {
                Ok(leaves) => self.append(w, entry, &leaves, &mut report),
                Err(e) => {
                    // The builder counted them (`full`).
                    tracing::error!(window = %w, error = %e, "receipt leaves lost");
                }
            }
            entry.floor = entry.floor.max(before);
            if last {
                self.builder.finish(w);
                let current = all && w == WindowId::containing(now_ms, self.window_len);
                if let Some(entry) = open.remove(&w)
                    && (!entry.stream.is_empty() || current)
                {
                    self.seal(w, &entry, now_ms, &mut report);
                }
            }
        }
        report
    }

    fn append(&self, w: WindowId, entry: &mut OpenWindow, leaves: &[Leaf], r: &mut PumpReport) {
        if leaves.is_empty() {
            return;
        }
        let n = u64::try_from(leaves.len()).unwrap_or(u64::MAX);
        if entry.abandoned {
            self.lose(n, r);
            return;
        }
        let first = entry.stream.len();
        let header = *entry.stream.header();
        // Each leaf is hashed once, by the stream; the sink gets the chunk roots it computed.
        let result = entry
            .stream
            .append_streamed(leaves, &mut entry.chunk_roots)
            .map_err(ReceiptsError::Seal)
            .and_then(|run| {
                self.setup
                    .sink
                    .append(&header, run)
                    .map_err(ReceiptsError::Sink)
            });
        match result {
            Ok(()) => r.appended = r.appended.saturating_add(n),
            Err(e) => {
                tracing::error!(window = %w, error = %e, "receipt window abandoned: its leaves are lost");
                entry.abandoned = true;
                self.setup.sink.abandon(w, first);
                self.lose(first.saturating_add(n), r);
            }
        }
    }

    fn seal(&self, w: WindowId, entry: &OpenWindow, now_ms: u64, r: &mut PumpReport) {
        if entry.abandoned {
            return;
        }
        let n = entry.stream.len();
        let commitment = self.setup.name_keys.name_key(w).commitment();
        let result = entry
            .stream
            .seal(commitment, now_ms, &self.setup.signing_key)
            .map_err(ReceiptsError::Seal)
            .and_then(|sealed| self.setup.sink.seal(w, sealed).map_err(ReceiptsError::Sink));
        match result {
            Ok(()) => {
                tracing::info!(window = %w, leaves = n, "receipt window sealed");
                r.sealed = r.sealed.saturating_add(1);
                r.sealed_leaves = r.sealed_leaves.saturating_add(n);
            }
            Err(e) => {
                tracing::error!(window = %w, error = %e, "receipt window abandoned: its leaves are lost");
                self.setup.sink.abandon(w, n);
                self.lose(n, r);
            }
        }
    }

    fn lose(&self, n: u64, r: &mut PumpReport) {
        self.abandoned.fetch_add(n, Ordering::Relaxed);
        r.lost = r.lost.saturating_add(n);
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
                    for name in names {
                        let want = NormalizedName::from_bytes(name.as_bytes())
                            .ok()
                            .map_or([0u8; 16], |n| NameKey([seed; 32]).name_hash(&n));
                        assert_eq!(rec.name_hash(w, name.as_bytes()), want, "{name}");
                    }
                }
            }
        }
    }

    #[test]
    fn the_memo_keeps_a_few_thousand_names_in_turn() {
        let rec = recorder([7; 32]);
        let w = WindowId::containing(unix_ms(), rec.window_len());
        let names: Vec<String> = (0..1_500).map(|i| format!("host{i}.example")).collect();
        let computed = || MEMO_COMPUTED.with(std::cell::Cell::get);
        for name in &names {
            rec.name_hash(w, name.as_bytes());
        }
        let before = computed();
        for name in &names {
            let want =
                NameKey([7; 32]).name_hash(&NormalizedName::from_bytes(name.as_bytes()).unwrap());
            assert_eq!(rec.name_hash(w, name.as_bytes()), want, "{name}");
        }
        // 1,500 names over 1,024 sets of four slots: a few sets hold five or more, where names
        // in turn miss (a direct-mapped memo of 1,024 slots misses about three quarters).
        let again = computed() - before;
        assert!(again < 75, "{again} of 1,500 names computed again");
        for name in &names {
            rec.name_hash(w, name.as_bytes());
        }
        let third = computed() - before - again;
        assert!(third < 75, "{third} of 1,500 names computed a third time");
    }

    #[test]
    fn prekeyed_name_hash_equals_the_core_definition() {
        for seed in [0u8, 1, 0x5A, 0xFF] {
            let key = NameKey([seed; 32]);
            let wk = WindowKey::new(&key);
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

#[cfg(test)]
mod pump_tests {
    use std::sync::atomic::AtomicBool;

    use tolldns_receipts::merkle;

    use super::*;

    const NAME_KEY: [u8; 32] = [4; 32];
    /// The start of a 60 s window (Unix milliseconds, a multiple of 60,000).
    const START: u64 = 1_760_000_100_000;

    fn config() -> ReceiptsConfig {
        ReceiptsConfig {
            max_pending_leaves: 100,
            watermark_ms: 1_000,
            close_grace_ms: 2_000,
            ..ReceiptsConfig::default()
        }
    }

    fn recorder(config: &ReceiptsConfig, sink: Arc<dyn ReceiptSink>) -> Recorder {
        let setup = ReceiptsSetup {
            signing_key: SigningKey::from_bytes(&[3; 32]),
            name_keys: Arc::new(StaticNameKey(NameKey(NAME_KEY))),
            sink,
        };
        Recorder::new(config, setup, 4).unwrap()
    }

    fn answered(name: &str, qtype: u16) -> Answered<'_> {
        Answered {
            transport: Transport::Udp,
            qtype,
            name: Some(name.as_bytes()),
            rcode_class: RcodeClass::NoError,
            cache_hit: qtype % 2 == 0,
            stale: false,
            truncated: false,
            latency_ms: u64::from(qtype),
            response: b"\x12\x34\x81\x80 response",
            ticket: [0; 16],
        }
    }

    /// 60 s of answers, 15 every 250 ms (3,600 in the window), pumped every 250 ms with at
    /// most 100 leaves held: every one is in the sealed batch.
    #[test]
    fn a_window_larger_than_the_pending_cap_loses_nothing_when_pumped() {
        let (sink, mut rx) = ChannelSink::new(4);
        let rec = recorder(&config(), Arc::new(sink.clone()));
        let mut appended = 0;
        let mut t = START;
        while t < START + 60_000 {
            // Pairs of identical answers in the same millisecond.
            for i in 0..15u16 {
                let j = i / 2;
                let name = format!("n{}.test", j % 7);
                assert!(rec.record_at(&answered(&name, j % 3), t + u64::from(j)));
            }
            t += 250;
            let r = rec.pump(t);
            assert_eq!((r.sealed, r.lost), (0, 0));
            appended += r.appended;
            assert!(rec.held() <= 90, "{} held", rec.held());
        }
        // A leaf recorded after the watermark passed its time: moved to the watermark.
        assert!(rec.record_at(&answered("late.test", 1), START + 58_000));
        // The window stays open until its end plus the grace is past the watermark.
        let before_seal = rec.pump(START + 62_999);
        assert_eq!(before_seal.sealed, 0);
        appended += before_seal.appended;
        assert!(rx.try_recv().is_err());
        let last = rec.pump(START + 63_000);
        assert_eq!((last.sealed, last.sealed_leaves), (1, 3_601));
        assert_eq!(appended + last.appended, 3_601);
        assert_eq!((rec.dropped(), rec.clamped()), (0, 1));
        let batch = rx.try_recv().unwrap();
        let receipt = batch.receipt();
        receipt.verify_signature().unwrap();
        assert_eq!(receipt.body.integrity.leaf_count, 3_601);
        assert_eq!(
            receipt.body.integrity.name_key_commitment,
            NameKey(NAME_KEY).commitment()
        );
        assert_eq!(receipt.body.timestamp_ms, START + 63_000);
        let hashes: Vec<_> = batch.leaves().iter().map(Leaf::hash).collect();
        assert_eq!(merkle::root(&hashes), receipt.body.integrity.merkle_root);
        // Identical answers in one millisecond are all kept, numbered.
        assert!(batch.leaves().iter().any(|l| l.repeat > 0));
        // The same leaves sealed at once give the same receipt.
        let again = ClosedBatch::seal(
            &rec.header(receipt.body.window_id),
            batch.leaves().to_vec(),
            receipt.body.integrity.name_key_commitment,
            receipt.body.timestamp_ms,
            &SigningKey::from_bytes(&[3; 32]),
        )
        .unwrap();
        assert_eq!(again.receipt(), receipt);
        // The window is gone: a leaf for it is refused and counted.
        assert!(!rec.record_at(&answered("a.test", 1), START + 59_999));
        assert_eq!(rec.losses().late, 1);
        assert_eq!(sink.lost(), 0);
    }

    /// A sink that fails on demand and remembers what it was told to give up.
    struct Flaky {
        inner: ChannelSink,
        fail_append: AtomicBool,
        fail_seal: AtomicBool,
        abandoned: Mutex<Vec<(WindowId, u64)>>,
    }

    impl ReceiptSink for Flaky {
        fn append(&self, h: &BatchHeader, leaves: StreamedLeaves<'_>) -> Result<(), SinkError> {
            if self.fail_append.load(Ordering::Relaxed) {
                return Err(SinkError::new("disk full"));
            }
            self.inner.append(h, leaves)
        }

        fn seal(&self, window: WindowId, sealed: SealedWindow) -> Result<(), SinkError> {
            if self.fail_seal.load(Ordering::Relaxed) {
                return Err(SinkError::new("disk full"));
            }
            self.inner.seal(window, sealed)
        }

        fn abandon(&self, window: WindowId, leaves: u64) {
            self.abandoned.lock().unwrap().push((window, leaves));
            self.inner.abandon(window, leaves);
        }

        fn redeemed(&self, _: RedeemedToken) -> bool {
            false
        }
    }

    /// A sink that keeps what it is handed: every leaf and every chunk root.
    struct Keeping {
        inner: ChannelSink,
        leaves: Mutex<Vec<Leaf>>,
        roots: Mutex<Vec<Hash>>,
    }

    impl ReceiptSink for Keeping {
        fn append(&self, h: &BatchHeader, leaves: StreamedLeaves<'_>) -> Result<(), SinkError> {
            let mut kept = self.leaves.lock().unwrap();
            assert_eq!(leaves.first_index, kept.len() as u64);
            assert_eq!(leaves.chunk_roots.len() as u64, leaves.completed_chunks());
            kept.extend_from_slice(leaves.leaves);
            self.roots
                .lock()
                .unwrap()
                .extend_from_slice(leaves.chunk_roots);
            self.inner.append(h, leaves)
        }

        fn seal(&self, window: WindowId, sealed: SealedWindow) -> Result<(), SinkError> {
            self.inner.seal(window, sealed)
        }

        fn abandon(&self, window: WindowId, leaves: u64) {
            self.inner.abandon(window, leaves);
        }

        fn redeemed(&self, _: RedeemedToken) -> bool {
            false
        }
    }

    /// The pump hands the sink, with the leaves, the root of every chunk of
    /// `CHUNK_LEAVES` leaves exactly once: the roots of the sealed batch's chunks.
    #[test]
    fn the_sink_gets_each_chunk_root_once_with_the_leaves() {
        let (inner, mut rx) = ChannelSink::new(4);
        let sink = Arc::new(Keeping {
            inner,
            leaves: Mutex::new(Vec::new()),
            roots: Mutex::new(Vec::new()),
        });
        let c = ReceiptsConfig {
            max_pending_leaves: 1_000,
            ..config()
        };
        let rec = recorder(&c, Arc::clone(&sink) as Arc<dyn ReceiptSink>);
        let mut t = START;
        while t < START + 60_000 {
            for i in 0..40u16 {
                rec.record_at(
                    &answered(&format!("n{}.test", i % 9), i % 3),
                    t + u64::from(i),
                );
            }
            t += 250;
            assert_eq!(rec.pump(t).lost, 0);
        }
        assert_eq!(rec.pump(START + 63_000).sealed, 1);
        assert_eq!(rec.dropped(), 0);
        let batch = rx.try_recv().unwrap();
        assert_eq!(batch.leaves(), sink.leaves.lock().unwrap().as_slice());
        // 9,600 leaves: 37 complete chunks, whose roots the sink got, and 128 more.
        let mut want: Vec<_> = batch
            .leaves()
            .chunks(tolldns_receipts::CHUNK_LEAVES)
            .map(|c| merkle::root(&c.iter().map(Leaf::hash).collect::<Vec<_>>()))
            .collect();
        assert_eq!(
            merkle::root(&want),
            batch.receipt().body.integrity.merkle_root
        );
        want.pop();
        assert_eq!(want.len(), 37);
        assert_eq!(*sink.roots.lock().unwrap(), want);
    }

    #[test]
    fn a_failing_sink_loses_windows_counted_and_the_next_window_streams() {
        let (inner, mut rx) = ChannelSink::new(4);
        let sink = Arc::new(Flaky {
            inner,
            fail_append: AtomicBool::new(false),
            fail_seal: AtomicBool::new(false),
            abandoned: Mutex::new(Vec::new()),
        });
        let rec = recorder(&config(), Arc::clone(&sink) as Arc<dyn ReceiptSink>);
        let w = WindowId::containing(START, rec.window_len());
        for i in 0..10 {
            rec.record_at(&answered("a.test", 1), START + i);
        }
        assert_eq!(rec.pump(START + 2_000).appended, 10);
        // The sink fails: the window is given up with the 10 leaves it took, the 5 refused
        // now and the 5 recorded later are lost too.
        sink.fail_append.store(true, Ordering::Relaxed);
        for i in 0..5 {
            rec.record_at(&answered("a.test", 1), START + 2_000 + i);
        }
        assert_eq!(rec.pump(START + 4_000).lost, 15);
        assert_eq!(*sink.abandoned.lock().unwrap(), vec![(w, 10)]);
        sink.fail_append.store(false, Ordering::Relaxed);
        for i in 0..5 {
            rec.record_at(&answered("a.test", 1), START + 5_000 + i);
        }
        let end = rec.pump(START + 64_000);
        assert_eq!((end.lost, end.sealed), (5, 0));
        assert_eq!(rec.losses().abandoned, 20);
        assert_eq!(rec.dropped(), 20);
        assert!(rx.try_recv().is_err());
        // The next window streams and seals; a failing seal loses it, counted.
        let next = START + 60_000;
        for i in 0..3 {
            rec.record_at(&answered("b.test", 1), next + i);
        }
        sink.fail_seal.store(true, Ordering::Relaxed);
        let r = rec.close_all(next + 1_000);
        assert_eq!((r.appended, r.sealed, r.lost), (3, 0, 3));
        assert_eq!(rec.losses().abandoned, 23);
        // Both windows given up.
        assert_eq!(sink.inner.lost(), 2);
    }

    #[test]
    fn close_all_seals_everything_held_and_the_current_window_even_empty() {
        let (sink, mut rx) = ChannelSink::new(4);
        let mut c = config();
        c.watermark_ms = 3_600_000;
        let rec = recorder(&c, Arc::new(sink));
        // Nothing is past the watermark: the pump streams nothing.
        rec.record_at(&answered("a.test", 1), START + 10);
        assert_eq!(rec.pump(START + 20), PumpReport::default());
        let r = rec.close_all(START + 60_000 + 5);
        assert_eq!((r.appended, r.sealed, r.sealed_leaves), (1, 2, 1));
        let first = rx.try_recv().unwrap();
        assert_eq!(first.receipt().body.integrity.leaf_count, 1);
        let empty = rx.try_recv().unwrap();
        assert_eq!(empty.receipt().body.integrity.leaf_count, 0);
        assert_eq!(
            empty.receipt().body.window_id,
            WindowId::containing(START + 60_000, rec.window_len())
        );
    }

    #[test]
    fn the_old_grace_key_is_accepted() {
        let c: ReceiptsConfig = toml::from_str("close_grace_millis = 5\nwatermark_ms = 7").unwrap();
        assert_eq!((c.close_grace_ms, c.watermark_ms), (5, 7));
        let e = toml::from_str::<ReceiptsConfig>("max_leaves_per_window = 5").unwrap_err();
        assert!(e.to_string().contains("max_pending_leaves"), "{e}");
    }
}
