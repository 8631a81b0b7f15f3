//! Events emitted by the program (Anchor `emit!`, i.e. `sol_log_data`).

#![warn(missing_docs)]

use anchor_lang::prelude::*;

/// A watcher reported (or replaced its report of) a miner's stats; the accepted stats were
/// recomputed.
#[event]
pub struct MinerStatsReported {
    /// The epoch.
    pub epoch_id: u64,
    /// The miner.
    pub miner: Pubkey,
    /// The reporting watcher.
    pub watcher: Pubkey,
    /// Number of watcher reports now held.
    pub report_count: u8,
    /// Whether the quorum is reached (the stats count in the totals).
    pub accepted: bool,
    /// The raw score of the accepted stats (zero if not accepted).
    pub raw_score: u128,
    /// The normalized score of the accepted stats (zero if not accepted).
    pub normalized_score: u128,
}

/// A watcher withdrew its report before the reporting deadline.
#[event]
pub struct MinerStatsRetracted {
    /// The epoch.
    pub epoch_id: u64,
    /// The miner.
    pub miner: Pubkey,
    /// The watcher.
    pub watcher: Pubkey,
    /// Number of watcher reports left.
    pub report_count: u8,
    /// Whether the quorum is still reached.
    pub accepted: bool,
}

/// An epoch was finalized and its pool fixed.
#[event]
pub struct EpochFinalized {
    /// The epoch.
    pub epoch_id: u64,
    /// The pool fixed for the epoch.
    pub reward_pool: u64,
    /// Number of reported miners.
    pub miner_count: u32,
    /// `Σ normalized_score`.
    pub total_normalized_score: u128,
}

/// A miner claimed its reward.
#[event]
pub struct MinerRewardClaimed {
    /// The epoch.
    pub epoch_id: u64,
    /// The miner.
    pub miner: Pubkey,
    /// Amount paid.
    pub amount: u64,
}

/// A miner was penalized (the prototype's event, with the cumulative keep share added).
#[event]
pub struct MinerPenalized {
    /// The epoch.
    pub epoch_id: u64,
    /// The miner.
    pub miner: Pubkey,
    /// The penalty applied.
    pub penalty_bps: u16,
    /// Hash of the reason (by convention `sha256(utf8(reason))`).
    pub reason_hash: [u8; 32],
    /// Stake slashed with the penalty (base units; 0 if none).
    pub slashed: u64,
    /// The share of the reward the miner now keeps (bps).
    pub reward_keep_bps: u16,
    /// The reward the miner would now receive, if the epoch is finalized.
    pub new_reward_amount: Option<u64>,
}

/// The parameters were changed: at once (only lower base reward / cap) or time-locked.
#[event]
pub struct ParamsUpdated {
    /// The authority that changed them.
    pub authority: Pubkey,
    /// Whether the change applies at once.
    pub immediate: bool,
    /// First epoch scored and paid under the change (for a time-locked one).
    pub effective_epoch: u64,
}

/// A watcher or miner was added to or removed from an allowlist.
#[event]
pub struct AllowlistChanged {
    /// `true` for the watchers, `false` for the miners.
    pub watchers: bool,
    /// The key.
    pub key: Pubkey,
    /// `true` when added, `false` when removed.
    pub added: bool,
    /// First epoch it counts for (when added).
    pub active_from_epoch: u64,
}

/// An epoch's claim window closed and its unclaimed rest returned to the uncommitted vault
/// balance.
#[event]
pub struct EpochExpired {
    /// The epoch.
    pub epoch_id: u64,
    /// What was released from the committed rewards.
    pub released: u64,
}

/// An authority transfer was proposed (or cancelled, with `None`).
#[event]
pub struct AuthorityTransferProposed {
    /// The current authority.
    pub authority: Pubkey,
    /// The proposed authority.
    pub pending_authority: Option<Pubkey>,
}

/// The pending authority accepted the transfer.
#[event]
pub struct AuthorityTransferred {
    /// The previous authority.
    pub previous_authority: Pubkey,
    /// The new authority.
    pub new_authority: Pubkey,
}
