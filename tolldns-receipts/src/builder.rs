//! The thread-safe batch builder (feature `std`).
//!
//! The hot path (one [`BatchBuilder::add`] per answered query) takes no global lock: leaves go
//! to one of several shards, each a small mutex-protected buffer. A thread is pinned to a
//! shard on its first call (round robin), so with at least as many shards as threads every
//! lock is uncontended; when a thread's shard is busy it tries the others before waiting.
//! Each shard keeps one buffer per open window (at most [`BatchBuilder::MAX_OPEN_WINDOWS`]), so
//! leaves of the next window keep flowing while the last one is closed.
//!
//! A window leaves the builder in one of two ways:
//!
//! - streamed: [`BatchBuilder::drain`] takes, every so often, the window's leaves older than a
//!   watermark from every shard, in the strict order of v2 ([`crate::order_leaves`]), for a
//!   [`crate::WindowStream`] and a store; [`BatchBuilder::finish`] forgets the window. Memory
//!   is bounded by the leaves *held* between two drains ([`BuilderConfig::max_pending_leaves`]),
//!   whatever the window's length or the query rate;
//! - at once: [`BatchBuilder::close`] takes all its leaves and seals them into a
//!   [`ClosedBatch`] (the window is held in memory until then).
//!
//! Nothing is lost silently: every leaf that cannot be recorded is refused with an
//! [`AddError`] *and* counted in [`BatchBuilder::dropped`].

use std::boxed::Box;
use std::cell::Cell;
use std::collections::VecDeque;
use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError, TryLockError};
use std::vec::Vec;

use ed25519_dalek::SigningKey;
// 64-bit atomics also where the target has none (32-bit MIPS): a lock-based fallback there.
use portable_atomic::AtomicU64;
use tolldns_core::{BackendId, DeploymentId, Role, WindowId, WindowLen};

use crate::batch::{BatchHeader, ClosedBatch, SealError};
use crate::leaf::Leaf;
use crate::merkle::Hash;

/// How a [`BatchBuilder`] is set up. Build it with [`BuilderConfig::new`] and change the
/// public fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct BuilderConfig {
    /// The network the receipts are for.
    pub deployment_id: DeploymentId,
    /// The operator's role.
    pub operator_role: Role,
    /// The adapter context.
    pub backend_id: BackendId,
    /// The policy version served under.
    pub policy_version: u32,
    /// Length of a receipt window.
    pub window_len: WindowLen,
    /// Number of shards; at least the number of threads that add leaves. Zero means one.
    pub shards: usize,
    /// Most leaves held at once, not yet drained or closed, over all shards and open windows
    /// (split evenly between shards). Leaves past it are refused and counted as
    /// [`DroppedLeaves::full`]. With windows streamed ([`BatchBuilder::drain`]) this bounds
    /// the leaves held between two drains, not the leaves of a window.
    pub max_pending_leaves: usize,
}

impl BuilderConfig {
    /// Receipts on `deployment_id` for `backend_id` with windows of `window_len`; role
    /// [`Role::EdgeIngress`], policy version 1, 4 shards and at most 1 Mi leaves held.
    pub const fn new(
        deployment_id: DeploymentId,
        backend_id: BackendId,
        window_len: WindowLen,
    ) -> Self {
        Self {
            deployment_id,
            operator_role: Role::EdgeIngress,
            backend_id,
            policy_version: 1,
            window_len,
            shards: 4,
            max_pending_leaves: 1 << 20,
        }
    }
}

/// Leaves refused so far, by reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DroppedLeaves {
    /// The builder held [`BuilderConfig::max_pending_leaves`] leaves already.
    pub full: u64,
    /// The leaf's window was already closed.
    pub late: u64,
    /// The leaf's window would exceed the open-window limit (a clock far ahead).
    pub too_many_windows: u64,
    /// Bytes given to [`BatchBuilder::add_bytes`] did not decode as a leaf, or a leaf claimed
    /// more than 65,535 response bytes.
    pub invalid: u64,
}

impl DroppedLeaves {
    /// All refused leaves.
    pub const fn total(&self) -> u64 {
        self.full
            .saturating_add(self.late)
            .saturating_add(self.too_many_windows)
            .saturating_add(self.invalid)
    }
}

/// Why a leaf was not recorded. Every refusal is also counted in [`BatchBuilder::dropped`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum AddError {
    /// The builder holds [`BuilderConfig::max_pending_leaves`] leaves already.
    Full,
    /// The leaf's window was already closed.
    Late,
    /// Too many windows are open at once.
    TooManyWindows,
    /// The bytes are not a valid leaf.
    Invalid(crate::DecodeError),
}

impl fmt::Display for AddError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Full => f.write_str("the receipt leaf buffers are full"),
            Self::Late => f.write_str("the leaf's window is already closed"),
            Self::TooManyWindows => f.write_str("too many receipt windows are open"),
            Self::Invalid(e) => write!(f, "invalid leaf: {e}"),
        }
    }
}

impl std::error::Error for AddError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Invalid(e) => Some(e),
            _ => None,
        }
    }
}

#[derive(Debug, Default)]
struct ShardState {
    /// Windows below this one are closed in this shard.
    closed_below: u64,
    open: Vec<(WindowId, Held)>,
}

/// One window's leaves held in a shard, in arrival order.
#[derive(Debug)]
struct Held {
    leaves: VecDeque<Leaf>,
    /// The leaves are in timestamp order (arrival order nearly always is): a drain then takes
    /// a prefix, without looking at or moving the leaves it keeps.
    ordered: bool,
}

impl Held {
    fn with_capacity(capacity: usize) -> Self {
        Self {
            leaves: VecDeque::with_capacity(capacity),
            ordered: true,
        }
    }

    fn len(&self) -> usize {
        self.leaves.len()
    }

    fn is_empty(&self) -> bool {
        self.leaves.is_empty()
    }

    fn push(&mut self, leaf: Leaf) {
        if self
            .leaves
            .back()
            .is_some_and(|last| last.timestamp_ms > leaf.timestamp_ms)
        {
            self.ordered = false;
        }
        self.leaves.push_back(leaf);
    }

    /// Moves the leaves with a timestamp before `before_ms` to `out`.
    fn take_before(&mut self, before_ms: u64, out: &mut Vec<Leaf>) {
        if self.ordered {
            let n = self.leaves.partition_point(|l| l.timestamp_ms < before_ms);
            out.extend(self.leaves.drain(..n));
            return;
        }
        let mut ordered = true;
        let mut last = 0u64;
        self.leaves.retain(|l| {
            if l.timestamp_ms < before_ms {
                out.push(*l);
                false
            } else {
                ordered &= last <= l.timestamp_ms;
                last = l.timestamp_ms;
                true
            }
        });
        self.ordered = ordered;
    }

    /// Moves every leaf to `out`.
    fn take_all(self, out: &mut Vec<Leaf>) {
        if out.is_empty() {
            *out = Vec::from(self.leaves);
        } else {
            out.extend(self.leaves);
        }
    }
}

/// A shard on its own cache lines, so that two shards never share one.
#[derive(Debug, Default)]
#[repr(align(128))]
struct Shard {
    state: Mutex<ShardState>,
}

/// Collects leaves from many threads and closes each window into a signed receipt.
///
/// ```
/// use ed25519_dalek::SigningKey;
/// use tolldns_core::{BackendId, DeploymentId, WindowId, WindowLen};
/// use tolldns_receipts::{BatchBuilder, BuilderConfig};
///
/// let mut config = BuilderConfig::new(
///     DeploymentId([1; 32]),
///     BackendId::new("edge-ingress")?,
///     WindowLen::DEFAULT,
/// );
/// config.max_pending_leaves = 1 << 20;
/// let builder = BatchBuilder::new(config);
/// // ... `builder.add(leaf)` from the serving threads ...
/// let batch = builder.close(WindowId(29_333_335), [0; 32], 1_760_000_160_000, &SigningKey::from_bytes(&[1; 32]))?;
/// assert_eq!(batch.receipt().body.integrity.leaf_count, 0);
/// assert_eq!(builder.dropped().total(), 0);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct BatchBuilder {
    config: BuilderConfig,
    shards: Box<[Shard]>,
    per_shard_cap: usize,
    full: AtomicU64,
    late: AtomicU64,
    too_many_windows: AtomicU64,
    invalid: AtomicU64,
    clamped: AtomicU64,
}

static NEXT_THREAD: AtomicUsize = AtomicUsize::new(0);

std::thread_local! {
    static THREAD_SLOT: Cell<Option<usize>> = const { Cell::new(None) };
}

fn thread_slot() -> usize {
    THREAD_SLOT.with(|slot| {
        slot.get().unwrap_or_else(|| {
            let s = NEXT_THREAD.fetch_add(1, Ordering::Relaxed);
            slot.set(Some(s));
            s
        })
    })
}

fn lock(m: &Mutex<ShardState>) -> MutexGuard<'_, ShardState> {
    // A panic while holding a shard lock cannot leave a buffer half-written (pushes are
    // atomic with respect to panics), so the data stays usable.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl BatchBuilder {
    /// Windows open at once per shard: the current one, the one being closed and one ahead.
    pub const MAX_OPEN_WINDOWS: usize = 3;

    /// A builder with no open window.
    pub fn new(config: BuilderConfig) -> Self {
        let n = config.shards.max(1);
        let per_shard_cap = config.max_pending_leaves.div_ceil(n);
        Self {
            config,
            shards: (0..n).map(|_| Shard::default()).collect(),
            per_shard_cap,
            full: AtomicU64::new(0),
            late: AtomicU64::new(0),
            too_many_windows: AtomicU64::new(0),
            invalid: AtomicU64::new(0),
            clamped: AtomicU64::new(0),
        }
    }

    /// The configuration.
    pub const fn config(&self) -> &BuilderConfig {
        &self.config
    }

    /// Record a leaf in the buffer of its window (taken from its timestamp).
    ///
    /// # Errors
    ///
    /// [`AddError::Full`], [`AddError::Late`], [`AddError::TooManyWindows`], or
    /// [`AddError::Invalid`] for a leaf over 65,535 response bytes (which would keep its whole
    /// window from sealing); each refusal is also counted in [`BatchBuilder::dropped`].
    pub fn add(&self, leaf: Leaf) -> Result<(), AddError> {
        if leaf.response_bytes > crate::leaf::MAX_RESPONSE_BYTES {
            return Err(
                self.count(AddError::Invalid(crate::DecodeError::ResponseTooLarge {
                    response_bytes: leaf.response_bytes,
                })),
            );
        }
        let window = WindowId::containing(leaf.timestamp_ms, self.config.window_len);
        let n = self.shards.len();
        let home = thread_slot().checked_rem(n).unwrap_or(0);
        // First pass: our shard, then the others, never waiting. Second pass (only when every
        // shard was busy or full): wait for each in turn. `Full` only when all are full.
        for blocking in [false, true] {
            for step in 0..n {
                let i = home.wrapping_add(step).checked_rem(n).unwrap_or(0);
                let Some(shard) = self.shards.get(i) else {
                    continue;
                };
                let guard = if blocking {
                    lock(&shard.state)
                } else {
                    match shard.state.try_lock() {
                        Ok(g) => g,
                        Err(TryLockError::Poisoned(p)) => p.into_inner(),
                        Err(TryLockError::WouldBlock) => continue,
                    }
                };
                match self.push(guard, window, leaf) {
                    Ok(()) => return Ok(()),
                    // A full shard: another may have room.
                    Err(AddError::Full) => {}
                    Err(e) => return Err(self.count(e)),
                }
            }
        }
        Err(self.count(AddError::Full))
    }

    /// Decode a leaf and [`add`](Self::add) it.
    ///
    /// # Errors
    ///
    /// [`AddError::Invalid`] (counted) or as [`BatchBuilder::add`].
    pub fn add_bytes(&self, bytes: &[u8]) -> Result<(), AddError> {
        match Leaf::from_bytes(bytes) {
            Ok(leaf) => self.add(leaf),
            Err(e) => Err(self.count(AddError::Invalid(e))),
        }
    }

    fn push(
        &self,
        mut state: MutexGuard<'_, ShardState>,
        window: WindowId,
        leaf: Leaf,
    ) -> Result<(), AddError> {
        if window.get() < state.closed_below {
            return Err(AddError::Late);
        }
        let held = state
            .open
            .iter()
            .map(|(_, b)| b.len())
            .fold(0usize, usize::saturating_add);
        let open = state.open.len();
        if let Some((_, buf)) = state.open.iter_mut().find(|(w, _)| *w == window) {
            if held >= self.per_shard_cap {
                return Err(AddError::Full);
            }
            buf.push(leaf);
            return Ok(());
        }
        if open >= Self::MAX_OPEN_WINDOWS {
            return Err(AddError::TooManyWindows);
        }
        if held >= self.per_shard_cap {
            return Err(AddError::Full);
        }
        let mut buf = Held::with_capacity(self.per_shard_cap.min(1024));
        buf.push(leaf);
        state.open.push((window, buf));
        Ok(())
    }

    fn count(&self, e: AddError) -> AddError {
        let counter = match e {
            AddError::Full => &self.full,
            AddError::Late => &self.late,
            AddError::TooManyWindows => &self.too_many_windows,
            AddError::Invalid(_) => &self.invalid,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        e
    }

    /// Leaves refused so far, by reason (never reset).
    pub fn dropped(&self) -> DroppedLeaves {
        DroppedLeaves {
            full: self.full.load(Ordering::Relaxed),
            late: self.late.load(Ordering::Relaxed),
            too_many_windows: self.too_many_windows.load(Ordering::Relaxed),
            invalid: self.invalid.load(Ordering::Relaxed),
        }
    }

    /// Leaves currently buffered for `window`.
    pub fn pending(&self, window: WindowId) -> usize {
        self.shards
            .iter()
            .map(|s| {
                lock(&s.state)
                    .open
                    .iter()
                    .filter(|(w, _)| *w == window)
                    .map(|(_, b)| b.len())
                    .sum::<usize>()
            })
            .fold(0usize, usize::saturating_add)
    }

    /// Leaves currently held over all windows.
    pub fn held(&self) -> usize {
        self.shards
            .iter()
            .map(|s| {
                lock(&s.state)
                    .open
                    .iter()
                    .map(|(_, b)| b.len())
                    .fold(0usize, usize::saturating_add)
            })
            .fold(0usize, usize::saturating_add)
    }

    /// The windows that hold leaves, oldest first.
    pub fn open_windows(&self) -> Vec<WindowId> {
        let mut windows: Vec<WindowId> = Vec::new();
        for shard in self.shards.iter() {
            for (w, b) in &lock(&shard.state).open {
                if !b.is_empty() && !windows.contains(w) {
                    windows.push(*w);
                }
            }
        }
        windows.sort_unstable();
        windows
    }

    /// Leaves whose timestamp was raised by [`BatchBuilder::drain`] so far (never reset).
    pub fn clamped(&self) -> u64 {
        self.clamped.load(Ordering::Relaxed)
    }

    /// Take `window`'s leaves with a timestamp before `before_ms` from every shard, raise
    /// any timestamp below `floor_ms` to `floor_ms` (counted in [`BatchBuilder::clamped`]),
    /// and return them in the strict order of v2 with their `repeat` numbers
    /// ([`crate::order_leaves`]).
    ///
    /// Streaming a window is a sequence of drains whose `floor_ms` is the previous drain's
    /// `before_ms` (the window's start for the first): every leaf returned then comes strictly
    /// after every leaf returned before, so the chunks append to one
    /// [`crate::WindowStream`]. A leaf that arrives after the drain that passed its timestamp
    /// is moved to `floor_ms`, the earliest time the stream can still take. When `before_ms`
    /// reaches the window's end this is its last drain: the window is closed in every shard
    /// under the same lock, and leaves for it arriving later are refused as
    /// [`AddError::Late`].
    ///
    /// # Errors
    ///
    /// [`SealError::RepeatOverflow`] when more than 65,536 drained leaves are identical; they
    /// are then lost and counted as dropped ([`DroppedLeaves::full`]).
    pub fn drain(
        &self,
        window: WindowId,
        before_ms: u64,
        floor_ms: u64,
    ) -> Result<Vec<Leaf>, SealError> {
        let last = window
            .end_ms(self.config.window_len)
            .map_or(true, |end| before_ms >= end);
        let closed_below = window.get().saturating_add(1);
        let mut out: Vec<Leaf> = Vec::new();
        for shard in self.shards.iter() {
            let mut state = lock(&shard.state);
            if last {
                if let Some(pos) = state.open.iter().position(|(w, _)| *w == window) {
                    let (_, buf) = state.open.swap_remove(pos);
                    buf.take_all(&mut out);
                }
                state.closed_below = state.closed_below.max(closed_below);
            } else if let Some((_, buf)) = state.open.iter_mut().find(|(w, _)| *w == window) {
                buf.take_before(before_ms, &mut out);
            }
        }
        let mut clamped = 0u64;
        for l in &mut out {
            if l.timestamp_ms < floor_ms {
                l.timestamp_ms = floor_ms;
                clamped = clamped.saturating_add(1);
            }
        }
        if clamped > 0 {
            self.clamped.fetch_add(clamped, Ordering::Relaxed);
        }
        match crate::order_leaves(&mut out) {
            Ok(()) => Ok(out),
            Err(e) => {
                let n = u64::try_from(out.len()).unwrap_or(u64::MAX);
                self.full.fetch_add(n, Ordering::Relaxed);
                Err(e)
            }
        }
    }

    /// Forget `window` (and every earlier one) in every shard: leaves for it arriving later
    /// are refused as [`AddError::Late`]. Leaves it still held (none after a last
    /// [`drain`](Self::drain)) are discarded, counted as late and returned as a count.
    pub fn finish(&self, window: WindowId) -> u64 {
        let closed_below = window.get().saturating_add(1);
        let mut discarded = 0usize;
        for shard in self.shards.iter() {
            let mut state = lock(&shard.state);
            state.open.retain(|(w, b)| {
                if w.get() < closed_below {
                    discarded = discarded.saturating_add(b.len());
                    false
                } else {
                    true
                }
            });
            state.closed_below = state.closed_below.max(closed_below);
        }
        let n = u64::try_from(discarded).unwrap_or(u64::MAX);
        if n > 0 {
            self.late.fetch_add(n, Ordering::Relaxed);
        }
        n
    }

    /// Close `window`: take its leaves from every shard and seal them into a signed v2 batch
    /// receipt (in strict order, identical answers numbered by `repeat`). Leaves for this window or an
    /// earlier one that arrive afterwards are refused as [`AddError::Late`] and counted.
    ///
    /// # Errors
    ///
    /// As [`ClosedBatch::seal`]. The window is closed even then; its leaves are lost and
    /// counted as dropped (`full`), so they never vanish silently.
    pub fn close(
        &self,
        window: WindowId,
        name_key_commitment: Hash,
        timestamp_ms: u64,
        key: &SigningKey,
    ) -> Result<ClosedBatch, SealError> {
        let mut leaves = Vec::new();
        let closed_below = window.get().saturating_add(1);
        for shard in self.shards.iter() {
            let mut state = lock(&shard.state);
            if let Some(pos) = state.open.iter().position(|(w, _)| *w == window) {
                let (_, buf) = state.open.swap_remove(pos);
                buf.take_all(&mut leaves);
            }
            state.closed_below = state.closed_below.max(closed_below);
        }
        let mut header = BatchHeader::new(
            self.config.deployment_id,
            self.config.backend_id,
            self.config.window_len,
            window,
        );
        header.operator_role = self.config.operator_role;
        header.policy_version = self.config.policy_version;
        let n = u64::try_from(leaves.len()).unwrap_or(u64::MAX);
        ClosedBatch::seal(&header, leaves, name_key_commitment, timestamp_ms, key).inspect_err(
            |_| {
                self.full.fetch_add(n, Ordering::Relaxed);
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::leaf::LeafFlags;
    use crate::tags::*;

    fn config(cap: usize, shards: usize) -> BuilderConfig {
        let mut c = BuilderConfig::new(
            DeploymentId([9; 32]),
            BackendId::new("edge-ingress").unwrap(),
            WindowLen::new(60).unwrap(),
        );
        c.shards = shards;
        c.max_pending_leaves = cap;
        c
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
            response_bytes: 100,
            name_hash: [0; 16],
            ticket: ts.to_le_bytes().repeat(2).try_into().unwrap(),
            response_summary_hash: [0; 16],
            repeat: 0,
        }
    }

    #[test]
    fn capacity_late_and_future_windows_are_counted() {
        let key = SigningKey::from_bytes(&[1; 32]);
        // The cap is on leaves held, whatever their window.
        let b = BatchBuilder::new(config(4, 2));
        for i in 0..6 {
            let r = b.add(leaf(60_000 + i));
            assert_eq!(r.is_ok(), i < 4, "leaf {i}");
        }
        assert_eq!(b.add(leaf(120_000)), Err(AddError::Full));
        assert_eq!(
            (b.dropped().full, b.pending(WindowId(1)), b.held()),
            (3, 4, 4)
        );
        // Draining makes room.
        assert_eq!(b.drain(WindowId(1), 60_002, 60_000).unwrap().len(), 2);
        b.add(leaf(120_000)).unwrap();
        assert_eq!(b.open_windows(), vec![WindowId(1), WindowId(2)]);

        let b = BatchBuilder::new(config(100, 1));
        // Windows 1 to 3 open; window 4 would be the fourth open window.
        for ts in [60_000, 120_000, 180_000] {
            b.add(leaf(ts)).unwrap();
        }
        assert_eq!(b.add(leaf(240_000)), Err(AddError::TooManyWindows));
        let batch = b.close(WindowId(1), [0; 32], 120_000, &key).unwrap();
        assert_eq!(batch.receipt().body.integrity.leaf_count, 1);
        assert_eq!(b.add(leaf(60_500)), Err(AddError::Late));
        assert_eq!(
            b.add_bytes(&[0; 3])
                .map_err(|e| matches!(e, AddError::Invalid(_))),
            Err(true)
        );
        assert_eq!(
            b.dropped(),
            DroppedLeaves {
                full: 0,
                late: 1,
                too_many_windows: 1,
                invalid: 1
            }
        );
        assert_eq!(b.dropped().total(), 3);
        // The next windows are still open and closable.
        assert_eq!(
            b.close(WindowId(2), [0; 32], 180_000, &key)
                .unwrap()
                .leaves()
                .len(),
            1
        );
        // Finishing a window discards what it still holds, counted as late.
        assert_eq!(b.finish(WindowId(3)), 1);
        assert_eq!(b.add(leaf(180_001)), Err(AddError::Late));
        assert_eq!(b.dropped().late, 3);
        assert_eq!(b.held(), 0);
    }

    #[test]
    fn drains_merge_shards_in_strict_order_and_clamp_late_leaves() {
        use std::sync::Arc;
        let key = SigningKey::from_bytes(&[1; 32]);
        let b = Arc::new(BatchBuilder::new(config(1 << 16, 4)));
        let w = WindowId(1);
        // Four threads (four shards) add interleaved timestamps, with identical answers
        // spread over shards.
        let add = |from: u64, to: u64| {
            let hs: Vec<_> = (0..4u64)
                .map(|t| {
                    let b = Arc::clone(&b);
                    std::thread::spawn(move || {
                        for ts in (from..to).filter(|ts| ts % 4 == t) {
                            let mut l = leaf(ts);
                            l.ticket = [u8::try_from(ts % 3).unwrap(); 16];
                            b.add(l).unwrap();
                            let mut same = leaf(from + (ts % 5));
                            same.ticket = [9; 16];
                            b.add(same).unwrap();
                        }
                    })
                })
                .collect();
            for h in hs {
                h.join().unwrap();
            }
        };
        let mut all = Vec::new();
        let mut stream = crate::WindowStream::new(BatchHeader::new(
            DeploymentId([9; 32]),
            BackendId::new("edge-ingress").unwrap(),
            WindowLen::new(60).unwrap(),
            w,
        ));
        add(60_000, 61_000);
        let first = b.drain(w, 60_500, 60_000).unwrap();
        assert!(first.iter().all(|l| l.timestamp_ms < 60_500));
        assert!(first.windows(2).all(|p| p[0].order(&p[1]).is_lt()));
        stream.append(&first).unwrap();
        all.extend_from_slice(&first);
        assert_eq!(b.clamped(), 0);
        // Leaves from before the last drain's watermark arrive late: raised to it.
        add(60_400, 60_410);
        let second = b.drain(w, 61_000, 60_500).unwrap();
        assert_eq!(b.clamped(), 20);
        assert!(
            second
                .iter()
                .all(|l| (60_500..61_000).contains(&l.timestamp_ms))
        );
        stream.append(&second).unwrap();
        all.extend_from_slice(&second);
        // The last drain closes the window in every shard.
        add(61_000, 61_100);
        let last = b.drain(w, 120_000, 61_000).unwrap();
        stream.append(&last).unwrap();
        all.extend_from_slice(&last);
        assert_eq!(b.add(leaf(61_200)), Err(AddError::Late));
        assert_eq!(b.finish(w), 0);
        assert_eq!(all.len(), 2 * (1_000 + 10 + 100));
        let sealed = stream.seal([4; 32], 7, &key).unwrap();
        let batch = ClosedBatch::seal(stream.header(), all.clone(), [4; 32], 7, &key).unwrap();
        assert_eq!(sealed.receipt, *batch.receipt());
        assert_eq!(batch.leaves(), &all[..]);
    }

    #[test]
    fn drains_take_exactly_the_leaves_before_the_watermark_in_or_out_of_arrival_order() {
        let b = BatchBuilder::new(config(1 << 12, 1));
        let w = WindowId(1);
        let ts_of = |leaves: Vec<Leaf>| {
            let mut ts: Vec<u64> = leaves.iter().map(|l| l.timestamp_ms).collect();
            ts.sort_unstable();
            ts
        };
        // In arrival order: a prefix is taken.
        for ts in 60_000..60_100 {
            b.add(leaf(ts)).unwrap();
        }
        assert_eq!(
            ts_of(b.drain(w, 60_050, 60_000).unwrap()),
            (60_000..60_050).collect::<Vec<_>>()
        );
        // A clock step back: one leaf older than some held before it.
        b.add(leaf(60_060)).unwrap();
        b.add(leaf(60_055)).unwrap();
        b.add(leaf(60_120)).unwrap();
        let mut want: Vec<u64> = (60_050..60_070).collect();
        want.extend([60_055, 60_060]);
        want.sort_unstable();
        assert_eq!(ts_of(b.drain(w, 60_070, 60_050).unwrap()), want);
        // What stayed is in order again, and the next drains take the rest exactly.
        assert_eq!(b.pending(w), 31);
        assert_eq!(
            ts_of(b.drain(w, 60_100, 60_070).unwrap()),
            (60_070..60_100).collect::<Vec<_>>()
        );
        assert_eq!(ts_of(b.drain(w, 120_000, 60_100).unwrap()), vec![60_120]);
        assert_eq!((b.held(), b.clamped(), b.dropped().total()), (0, 0, 0));
    }

    #[test]
    fn spills_to_other_shards_and_fills_exactly() {
        // One thread, four shards: all four shards' capacity is usable.
        let b = BatchBuilder::new(config(8, 4));
        let ok = (0..12).filter(|i| b.add(leaf(60_000 + i)).is_ok()).count();
        assert_eq!(ok, 8);
        assert_eq!(b.dropped().full, 4);
        assert_eq!(b.pending(WindowId(1)), 8);
    }
}
