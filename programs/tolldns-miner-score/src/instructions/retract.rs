//! `retract_miner_epoch_stats`: withdraws a report before finalization, subtracting it from the
//! epoch totals and closing the stats account (rent back to the submitter that paid it). The
//! miner may then be reported again.

use anchor_lang::prelude::*;

use crate::constants::{EPOCH_TOTALS_SEED, MINER_EPOCH_SEED};
use crate::error::MinerScoreError;
use crate::events::MinerStatsRetracted;
use crate::state::{EpochTotals, MinerEpochStats};

// Glob: Anchor needs the nested struct's generated `__client_accounts_*` module and `*Bumps`.
use crate::instructions::auth::*;

/// Accounts of `retract_miner_epoch_stats`.
#[derive(Accounts)]
#[instruction(epoch_id: u64, miner: Pubkey)]
pub struct RetractMinerEpochStats<'info> {
    /// An allowlisted submitter (any of them, not only the one that reported) and the config.
    pub auth: SubmitterAuth<'info>,
    /// The epoch's totals.
    #[account(
        mut,
        seeds = [EPOCH_TOTALS_SEED, &epoch_id.to_le_bytes()],
        bump = epoch_totals.bump
    )]
    pub epoch_totals: Account<'info, EpochTotals>,
    /// The report to retract; closed into `rent_receiver`.
    #[account(
        mut,
        seeds = [MINER_EPOCH_SEED, &epoch_id.to_le_bytes(), miner.as_ref()],
        bump = miner_epoch_stats.bump,
        close = rent_receiver
    )]
    pub miner_epoch_stats: Account<'info, MinerEpochStats>,
    /// The submitter that paid the report's rent.
    #[account(
        mut,
        address = miner_epoch_stats.submitted_by @ MinerScoreError::InvalidRentReceiver
    )]
    pub rent_receiver: SystemAccount<'info>,
}

impl RetractMinerEpochStats<'_> {
    /// Subtracts the report from the totals (the account is closed by Anchor on success).
    ///
    /// # Errors
    ///
    /// [`MinerScoreError::EpochFinalized`],
    /// [`MinerScoreError::ReportPenalized`] (retracting would undo the penalty) and
    /// [`MinerScoreError::MathOverflow`] (totals inconsistent; never expected).
    pub fn handle(&mut self, epoch_id: u64, miner: Pubkey) -> Result<()> {
        let totals = &mut self.epoch_totals;
        require!(!totals.finalized, MinerScoreError::EpochFinalized);
        let stats = &self.miner_epoch_stats;
        require!(stats.penalty_count == 0, MinerScoreError::ReportPenalized);

        totals.total_raw_score = totals
            .total_raw_score
            .checked_sub(stats.raw_score)
            .ok_or(MinerScoreError::MathOverflow)?;
        totals.total_normalized_score = totals
            .total_normalized_score
            .checked_sub(stats.normalized_score)
            .ok_or(MinerScoreError::MathOverflow)?;
        totals.miner_count = totals
            .miner_count
            .checked_sub(1)
            .ok_or(MinerScoreError::MathOverflow)?;
        emit!(MinerStatsRetracted { epoch_id, miner });
        Ok(())
    }
}
