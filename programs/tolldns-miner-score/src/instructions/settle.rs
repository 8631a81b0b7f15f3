//! The end of an epoch's life: `expire_epoch` returns what was not claimed in time to the
//! uncommitted vault balance; `close_miner_epoch`, `close_claim_receipt` and
//! `close_epoch_totals` return the rent of finished accounts to whoever paid it.

use anchor_lang::prelude::*;

use crate::constants::{CLAIM_SEED, CONFIG_SEED, EPOCH_TOTALS_SEED, MINER_EPOCH_SEED};
use crate::error::MinerScoreError;
use crate::events::EpochExpired;
use crate::state::{EpochTotals, MinerClaimReceipt, MinerEpochStats, MinerScoreConfig};

/// Accounts of `expire_epoch` (anyone may send it).
#[derive(Accounts)]
#[instruction(epoch_id: u64)]
pub struct ExpireEpoch<'info> {
    /// The config (its committed rewards shrink by the unclaimed rest).
    #[account(mut, seeds = [CONFIG_SEED], bump = config.bump)]
    pub config: Box<Account<'info, MinerScoreConfig>>,
    /// The epoch's totals.
    #[account(
        mut,
        seeds = [EPOCH_TOTALS_SEED, &epoch_id.to_le_bytes()],
        bump = epoch_totals.bump
    )]
    pub epoch_totals: Box<Account<'info, EpochTotals>>,
}

impl ExpireEpoch<'_> {
    /// Releases `reward_pool − released` from the committed rewards and marks the epoch
    /// expired: later claims are refused.
    ///
    /// # Errors
    ///
    /// [`MinerScoreError::EpochNotFinalized`], [`MinerScoreError::ClaimWindowOpen`],
    /// [`MinerScoreError::RewardExpired`] (already expired), [`MinerScoreError::MathOverflow`].
    pub fn handle(&mut self, epoch_id: u64) -> Result<()> {
        let slot = Clock::get()?.slot;
        let totals = &mut self.epoch_totals;
        require!(totals.finalized, MinerScoreError::EpochNotFinalized);
        require!(!totals.expired, MinerScoreError::RewardExpired);
        require!(
            slot >= totals.claim_deadline_slot,
            MinerScoreError::ClaimWindowOpen
        );
        let rest = totals
            .reward_pool
            .checked_sub(totals.released)
            .ok_or(MinerScoreError::MathOverflow)?;
        self.config.committed_rewards = self
            .config
            .committed_rewards
            .checked_sub(rest)
            .ok_or(MinerScoreError::MathOverflow)?;
        totals.released = totals.reward_pool;
        totals.expired = true;
        emit!(EpochExpired {
            epoch_id,
            released: rest,
        });
        Ok(())
    }
}

/// Accounts of `close_miner_epoch` (anyone may send it; the rent goes to the payer of record).
#[derive(Accounts)]
#[instruction(epoch_id: u64, miner: Pubkey)]
pub struct CloseMinerEpoch<'info> {
    /// The epoch's totals.
    #[account(
        mut,
        seeds = [EPOCH_TOTALS_SEED, &epoch_id.to_le_bytes()],
        bump = epoch_totals.bump
    )]
    pub epoch_totals: Box<Account<'info, EpochTotals>>,
    /// The stats to close.
    #[account(
        mut,
        seeds = [MINER_EPOCH_SEED, &epoch_id.to_le_bytes(), miner.as_ref()],
        bump = miner_epoch_stats.bump,
        close = rent_receiver
    )]
    pub miner_epoch_stats: Box<Account<'info, MinerEpochStats>>,
    /// The watcher that paid the rent.
    #[account(
        mut,
        address = miner_epoch_stats.rent_payer @ MinerScoreError::InvalidRentReceiver
    )]
    pub rent_receiver: SystemAccount<'info>,
}

impl CloseMinerEpoch<'_> {
    /// Closes the stats of a finalized epoch once nothing can be claimed from them: claimed,
    /// expired, or never accepted.
    ///
    /// # Errors
    ///
    /// [`MinerScoreError::EpochNotFinalized`], [`MinerScoreError::EpochNotSettled`],
    /// [`MinerScoreError::MathOverflow`].
    pub fn handle(&mut self) -> Result<()> {
        let totals = &mut self.epoch_totals;
        let stats = &self.miner_epoch_stats;
        require!(totals.finalized, MinerScoreError::EpochNotFinalized);
        require!(
            stats.claimed || totals.expired || !stats.accepted,
            MinerScoreError::EpochNotSettled
        );
        totals.open_stats = totals
            .open_stats
            .checked_sub(1)
            .ok_or(MinerScoreError::MathOverflow)?;
        Ok(())
    }
}

/// Accounts of `close_claim_receipt`.
#[derive(Accounts)]
#[instruction(epoch_id: u64)]
pub struct CloseClaimReceipt<'info> {
    /// The miner that claimed (and paid the receipt's rent).
    #[account(mut)]
    pub miner: Signer<'info>,
    /// The receipt to close.
    #[account(
        mut,
        seeds = [CLAIM_SEED, &epoch_id.to_le_bytes(), miner.key().as_ref()],
        bump = claim_receipt.bump,
        close = miner
    )]
    pub claim_receipt: Box<Account<'info, MinerClaimReceipt>>,
}

/// Accounts of `close_epoch_totals` (anyone may send it; the rent goes to the payer of
/// record).
#[derive(Accounts)]
#[instruction(epoch_id: u64)]
pub struct CloseEpochTotals<'info> {
    /// The totals to close.
    #[account(
        mut,
        seeds = [EPOCH_TOTALS_SEED, &epoch_id.to_le_bytes()],
        bump = epoch_totals.bump,
        close = rent_receiver
    )]
    pub epoch_totals: Box<Account<'info, EpochTotals>>,
    /// Whoever paid the totals' rent.
    #[account(
        mut,
        address = epoch_totals.rent_payer @ MinerScoreError::InvalidRentReceiver
    )]
    pub rent_receiver: SystemAccount<'info>,
}

impl CloseEpochTotals<'_> {
    /// Closes the totals of a settled epoch: finalized, every reward claimed or expired, and
    /// every stats account closed.
    ///
    /// # Errors
    ///
    /// [`MinerScoreError::EpochNotFinalized`], [`MinerScoreError::EpochNotSettled`].
    pub fn handle(&mut self) -> Result<()> {
        let totals = &self.epoch_totals;
        require!(totals.finalized, MinerScoreError::EpochNotFinalized);
        require!(
            totals.open_stats == 0
                && (totals.expired || totals.claimed_count == totals.miner_count),
            MinerScoreError::EpochNotSettled
        );
        Ok(())
    }
}
