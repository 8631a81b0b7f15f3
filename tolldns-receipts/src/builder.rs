//! The thread-safe batch builder (feature `std`).
//!
//! The hot path (one [`BatchBuilder::add`] per answered query) takes no global lock: leaves go
//! to one of several shards, each a small mutex-protected buffer. A thread is pinned to a
//! shard on its first call (round robin), so with at least as many shards as threads every
//! lock is uncontended; when a thread's shard is busy it tries the others before waiting.
//! Each shard keeps one buffer per open window (at most [`BatchBuilder::MAX_OPEN_WINDOWS`]), so
//! leaves of the next window keep flowing while the last one is closed. Closing a window
//! drains its buffers from every shard and seals them into a signed v2 receipt, which puts
//! them in the strict order of v2 ([`crate::order_leaves`]).
//!
//! Nothing is lost silently: every leaf that cannot be recorded is refused with an
//! [`AddError`] *and* counted in [`BatchBuilder::dropped`].

use std::boxed::Box;
use std::cell::Cell;
use std::fmt;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError, TryLockError};
use std::vec::Vec;

use ed25519_dalek::SigningKey;
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
    /// Most leaves kept per window over all shards (split evenly between shards). Leaves past
    /// it are refused and counted.
    pub max_leaves_per_window: usize,
}

impl BuilderConfig {
    /// Receipts on `deployment_id` for `backend_id` with windows of `window_len`; role
    /// [`Role::EdgeIngress`], policy version 1, 4 shards and at most 4 Mi leaves per window.
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
            max_leaves_per_window: 1 << 22,
        }
    }
}

/// Leaves refused so far, by reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DroppedLeaves {
    /// The window's buffers were full.
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
    /// The window's buffers are full.
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
            Self::Full => f.write_str("the window's leaf buffers are full"),
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
    open: Vec<(WindowId, Vec<Leaf>)>,
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
/// config.max_leaves_per_window = 1 << 20;
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
        let per_shard_cap = config.max_leaves_per_window.div_ceil(n);
        Self {
            config,
            shards: (0..n).map(|_| Shard::default()).collect(),
            per_shard_cap,
            full: AtomicU64::new(0),
            late: AtomicU64::new(0),
            too_many_windows: AtomicU64::new(0),
            invalid: AtomicU64::new(0),
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
        if let Some((_, buf)) = state.open.iter_mut().find(|(w, _)| *w == window) {
            if buf.len() >= self.per_shard_cap {
                return Err(AddError::Full);
            }
            buf.push(leaf);
            return Ok(());
        }
        if state.open.len() >= Self::MAX_OPEN_WINDOWS {
            return Err(AddError::TooManyWindows);
        }
        if self.per_shard_cap == 0 {
            return Err(AddError::Full);
        }
        let mut buf = Vec::with_capacity(self.per_shard_cap.min(1024));
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
                if leaves.is_empty() {
                    leaves = buf;
                } else {
                    leaves.extend_from_slice(&buf);
                }
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
        c.max_leaves_per_window = cap;
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
        let b = BatchBuilder::new(config(4, 2));
        let key = SigningKey::from_bytes(&[1; 32]);
        for i in 0..6 {
            let r = b.add(leaf(60_000 + i));
            assert_eq!(r.is_ok(), i < 4, "leaf {i}");
        }
        assert_eq!(b.dropped().full, 2);
        assert_eq!(b.pending(WindowId(1)), 4);
        // Windows 2 and 3 open; window 4 would be the fourth open window.
        b.add(leaf(120_000)).unwrap();
        b.add(leaf(180_000)).unwrap();
        assert_eq!(b.add(leaf(240_000)), Err(AddError::TooManyWindows));
        let batch = b.close(WindowId(1), [0; 32], 120_000, &key).unwrap();
        assert_eq!(batch.receipt().body.integrity.leaf_count, 4);
        assert_eq!(b.add(leaf(60_500)), Err(AddError::Late));
        assert_eq!(
            b.add_bytes(&[0; 3])
                .map_err(|e| matches!(e, AddError::Invalid(_))),
            Err(true)
        );
        assert_eq!(
            b.dropped(),
            DroppedLeaves {
                full: 2,
                late: 1,
                too_many_windows: 1,
                invalid: 1
            }
        );
        assert_eq!(b.dropped().total(), 5);
        // The next windows are still open and closable.
        assert_eq!(
            b.close(WindowId(2), [0; 32], 180_000, &key)
                .unwrap()
                .leaves()
                .len(),
            1
        );
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
