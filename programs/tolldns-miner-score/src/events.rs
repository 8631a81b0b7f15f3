//! Events emitted by the program (Anchor `emit!`, i.e. `sol_log_data`).

#![warn(missing_docs)]

use anchor_lang::prelude::*;

/// A miner's stats were reported and scored.
#[event]
pub struct MinerStatsReported {
    /// The epoch.
    pub epoch_id: u64,
    /// The miner.
    pub miner: Pubkey,
    /// The computed raw score.
    pub raw_score: u128,
    /// The computed normalized score.
    pub normalized_score: u128,
}

/// A report was retracted before finalization.
#[event]
pub struct MinerStatsRetracted {
    /// The epoch.
    pub epoch_id: u64,
    /// The miner.
    pub miner: Pubkey,
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
    /// The share of the reward the miner now keeps (bps).
    pub reward_keep_bps: u16,
    /// The reward the miner would now receive, if the epoch is finalized.
    pub new_reward_amount: Option<u64>,
}

/// The config was updated.
#[event]
pub struct ConfigUpdated {
    /// The authority that updated it.
    pub authority: Pubkey,
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
