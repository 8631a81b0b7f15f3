//! A miner's payout for a finalized epoch, computed with `tolldns-score` only.

#![warn(missing_docs)]

use anchor_lang::prelude::*;
use tolldns_score::{penalize, reward_share, BPS_DENOM};

use crate::error::MinerScoreError;
use crate::state::{EpochTotals, MinerEpochStats};

/// What a claim pays and releases.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Payout {
    /// What the miner receives:
    /// `penalize(min(cap, floor(pool × normalized / Σ normalized)), 10_000 − reward_keep_bps)`.
    pub reward: u64,
    /// The miner's uncapped, unpenalized share `floor(pool × normalized / Σ normalized)`: the
    /// part of the pool the claim releases from the committed rewards (what the cap and the
    /// penalties keep back returns to the uncommitted vault balance).
    pub share: u64,
}

/// Computes a miner's payout from its epoch's totals and its stats.
///
/// # Errors
///
/// [`MinerScoreError::NormalizedAboveTotal`] or [`MinerScoreError::MathOverflow`] if the
/// accounts are inconsistent (never for accounts written by this program).
pub fn miner_payout(totals: &EpochTotals, stats: &MinerEpochStats) -> Result<Payout> {
    let pool = totals.reward_pool;
    let total = totals.total_normalized_score;
    let share = reward_share(pool, stats.normalized_score, total, u64::MAX)
        .map_err(MinerScoreError::from)?;
    let capped = reward_share(
        pool,
        stats.normalized_score,
        total,
        totals.params.score.per_miner_epoch_cap,
    )
    .map_err(MinerScoreError::from)?;
    let penalty_bps = BPS_DENOM
        .checked_sub(stats.reward_keep_bps)
        .ok_or(MinerScoreError::MathOverflow)?;
    let reward = penalize(u128::from(capped), penalty_bps).map_err(MinerScoreError::from)?;
    let reward = u64::try_from(reward).map_err(|_| MinerScoreError::MathOverflow)?;
    Ok(Payout { reward, share })
}
