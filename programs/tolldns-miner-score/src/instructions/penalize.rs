//! `penalize_miner`: an allowlisted submitter lowers a miner's unclaimed reward for an epoch.

use anchor_lang::prelude::*;
use tolldns_score::{penalize, BPS_DENOM};

use crate::constants::{EPOCH_TOTALS_SEED, MINER_EPOCH_SEED};
use crate::error::MinerScoreError;
use crate::events::MinerPenalized;
use crate::reward::miner_payout;
use crate::state::{EpochTotals, MinerEpochStats};

// Glob: Anchor needs the nested struct's generated `__client_accounts_*` module and `*Bumps`.
use crate::instructions::auth::*;

/// Accounts of `penalize_miner`.
#[derive(Accounts)]
#[instruction(epoch_id: u64, miner: Pubkey)]
pub struct PenalizeMiner<'info> {
    /// An allowlisted submitter and the config.
    pub auth: SubmitterAuth<'info>,
    /// The epoch's totals (read for the new reward, once finalized).
    #[account(seeds = [EPOCH_TOTALS_SEED, &epoch_id.to_le_bytes()], bump = epoch_totals.bump)]
    pub epoch_totals: Account<'info, EpochTotals>,
    /// The miner's stats for the epoch.
    #[account(
        mut,
        seeds = [MINER_EPOCH_SEED, &epoch_id.to_le_bytes(), miner.as_ref()],
        bump = miner_epoch_stats.bump
    )]
    pub miner_epoch_stats: Account<'info, MinerEpochStats>,
}

impl PenalizeMiner<'_> {
    /// Lowers the share of the reward the miner keeps:
    /// `reward_keep_bps ← penalize(reward_keep_bps, penalty_bps)`. Penalties compound and are
    /// never undone (a penalized report cannot be retracted, nothing raises the keep share).
    /// The epoch totals are not changed: what a penalty takes stays in the vault, it is not
    /// redistributed to the other miners.
    ///
    /// # Errors
    ///
    /// [`MinerScoreError::InvalidPenalty`] (zero or above
    /// 10,000), [`MinerScoreError::AlreadyClaimed`] and [`MinerScoreError::MathOverflow`].
    pub fn handle(
        &mut self,
        epoch_id: u64,
        miner: Pubkey,
        penalty_bps: u16,
        reason_hash: [u8; 32],
    ) -> Result<()> {
        require!(
            penalty_bps > 0 && penalty_bps <= BPS_DENOM,
            MinerScoreError::InvalidPenalty
        );
        let stats = &mut self.miner_epoch_stats;
        require!(!stats.claimed, MinerScoreError::AlreadyClaimed);

        let keep = penalize(u128::from(stats.reward_keep_bps), penalty_bps)
            .map_err(MinerScoreError::from)?;
        stats.reward_keep_bps = u16::try_from(keep).map_err(|_| MinerScoreError::MathOverflow)?;
        stats.penalty_count = stats
            .penalty_count
            .checked_add(1)
            .ok_or(MinerScoreError::MathOverflow)?;

        let new_reward_amount = if self.epoch_totals.finalized {
            Some(miner_payout(&self.epoch_totals, stats)?.reward)
        } else {
            None
        };
        emit!(MinerPenalized {
            epoch_id,
            miner,
            penalty_bps,
            reason_hash,
            reward_keep_bps: stats.reward_keep_bps,
            new_reward_amount,
        });
        Ok(())
    }
}
