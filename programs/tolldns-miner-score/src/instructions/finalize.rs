//! `finalize_epoch`: after the epoch's reporting deadline, anyone finalizes the next epoch in
//! order. It closes reporting and fixes the reward pool, bounded by the epoch's base reward and
//! by the vault balance not already committed to earlier epochs, then opens the challenge
//! window. The pool is committed until claims or expiry release it.

use anchor_lang::prelude::*;
use anchor_spl::token::TokenAccount;

use crate::constants::{CONFIG_SEED, EPOCH_TOTALS_SEED};
use crate::epoch::{open_totals, reporting_deadline, require_ended};
use crate::error::MinerScoreError;
use crate::events::EpochFinalized;
use crate::state::{EpochTotals, MinerScoreConfig};

/// Accounts of `finalize_epoch`.
#[derive(Accounts)]
#[instruction(epoch_id: u64)]
pub struct FinalizeEpoch<'info> {
    /// Anyone; pays rent for the totals if the epoch had no report.
    #[account(mut)]
    pub payer: Signer<'info>,
    /// The config (its committed rewards grow by the pool; the next epoch to finalize moves).
    #[account(mut, seeds = [CONFIG_SEED], bump = config.bump)]
    pub config: Box<Account<'info, MinerScoreConfig>>,
    /// The epoch's totals (created here if nobody was reported).
    #[account(
        init_if_needed,
        payer = payer,
        space = 8 + EpochTotals::INIT_SPACE,
        seeds = [EPOCH_TOTALS_SEED, &epoch_id.to_le_bytes()],
        bump
    )]
    pub epoch_totals: Box<Account<'info, EpochTotals>>,
    /// The reward vault, read for its balance.
    #[account(address = config.reward_vault @ MinerScoreError::InvalidVault)]
    pub reward_vault: Box<Account<'info, TokenAccount>>,
    /// The system program.
    pub system_program: Program<'info, System>,
}

impl FinalizeEpoch<'_> {
    /// Finalizes the epoch and fixes its pool:
    /// `pool = min(base_reward_per_epoch, vault.amount − committed_rewards)`, or zero if no
    /// miner has a non-zero normalized score. Claims open after the challenge window and close
    /// `claim_window_epochs` epochs later.
    ///
    /// # Errors
    ///
    /// [`MinerScoreError::BeforeFirstEpoch`], [`MinerScoreError::EpochOutOfOrder`] (not the
    /// next epoch to finalize), [`MinerScoreError::EpochNotEnded`],
    /// [`MinerScoreError::ReportingOpen`] (the reporting deadline has not passed),
    /// [`MinerScoreError::RewardPoolExhausted`] (scored miners, a non-zero base reward, and
    /// nothing uncommitted in the vault: fund it and finalize again),
    /// [`MinerScoreError::VaultUnderfunded`] and [`MinerScoreError::MathOverflow`].
    pub fn handle(&mut self, epoch_id: u64, bumps: &FinalizeEpochBumps) -> Result<()> {
        let config = &mut self.config;
        let slot = Clock::get()?.slot;
        require!(
            epoch_id >= config.timing.first_epoch,
            MinerScoreError::BeforeFirstEpoch
        );
        require!(
            epoch_id == config.next_epoch_to_finalize,
            MinerScoreError::EpochOutOfOrder
        );
        let (_, end) = require_ended(epoch_id, config.params.score.epoch_len_slots, slot)?;
        require!(
            slot >= reporting_deadline(config, end)?,
            MinerScoreError::ReportingOpen
        );
        let totals = &mut self.epoch_totals;
        open_totals(
            totals,
            config,
            epoch_id,
            self.payer.key(),
            bumps.epoch_totals,
        );
        require!(!totals.finalized, MinerScoreError::EpochFinalized);

        let available = self
            .reward_vault
            .amount
            .checked_sub(config.committed_rewards)
            .ok_or(MinerScoreError::VaultUnderfunded)?;
        let base_reward = totals.params.base_reward_per_epoch;
        let pool = if totals.total_normalized_score == 0 {
            0
        } else {
            require!(
                available > 0 || base_reward == 0,
                MinerScoreError::RewardPoolExhausted
            );
            base_reward.min(available)
        };
        config.committed_rewards = config
            .committed_rewards
            .checked_add(pool)
            .ok_or(MinerScoreError::MathOverflow)?;
        config.next_epoch_to_finalize = epoch_id
            .checked_add(1)
            .ok_or(MinerScoreError::MathOverflow)?;
        config.promote_params();

        let claims_open = slot
            .checked_add(config.timing.challenge_window_slots)
            .ok_or(MinerScoreError::MathOverflow)?;
        let claim_window = config
            .timing
            .claim_window_epochs
            .checked_mul(config.params.score.epoch_len_slots)
            .ok_or(MinerScoreError::MathOverflow)?;
        totals.finalized = true;
        totals.finalized_at_slot = slot;
        totals.claims_open_slot = claims_open;
        totals.claim_deadline_slot = claims_open
            .checked_add(claim_window)
            .ok_or(MinerScoreError::MathOverflow)?;
        totals.reward_pool = pool;
        emit!(EpochFinalized {
            epoch_id,
            reward_pool: pool,
            miner_count: totals.miner_count,
            total_normalized_score: totals.total_normalized_score,
        });
        Ok(())
    }
}
