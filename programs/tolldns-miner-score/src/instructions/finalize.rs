//! `finalize_epoch`: after the epoch's end, closes its reporting and fixes its reward pool,
//! bounded by `base_reward_per_epoch` and by the vault balance not already committed to
//! earlier epochs. The pool is then committed until claims release it.

use anchor_lang::prelude::*;
use anchor_spl::token::TokenAccount;

use crate::constants::EPOCH_TOTALS_SEED;
use crate::epoch::{open_totals, require_ended};
use crate::error::MinerScoreError;
use crate::events::EpochFinalized;
use crate::state::EpochTotals;

// Glob: Anchor needs the nested struct's generated `__client_accounts_*` module and `*Bumps`.
use crate::instructions::auth::*;

/// Accounts of `finalize_epoch`.
#[derive(Accounts)]
#[instruction(epoch_id: u64)]
pub struct FinalizeEpoch<'info> {
    /// An allowlisted submitter (pays rent for the totals if the epoch had no report) and the
    /// config (its committed rewards grow by the pool); checked before any account is created.
    pub auth: SubmitterAuthMut<'info>,
    /// The epoch's totals (created here if nobody was reported).
    #[account(
        init_if_needed,
        payer = auth.submitter,
        space = 8 + EpochTotals::INIT_SPACE,
        seeds = [EPOCH_TOTALS_SEED, &epoch_id.to_le_bytes()],
        bump
    )]
    pub epoch_totals: Account<'info, EpochTotals>,
    /// The reward vault, read for its balance.
    #[account(address = auth.config.reward_vault @ MinerScoreError::InvalidVault)]
    pub reward_vault: Account<'info, TokenAccount>,
    /// The system program.
    pub system_program: Program<'info, System>,
}

impl FinalizeEpoch<'_> {
    /// Finalizes the epoch and fixes its pool:
    /// `pool = min(base_reward_per_epoch, vault.amount − committed_rewards)`, or zero if no
    /// miner has a non-zero normalized score.
    ///
    /// # Errors
    ///
    /// [`MinerScoreError::EpochNotEnded`],
    /// [`MinerScoreError::EpochFinalized`], [`MinerScoreError::RewardPoolExhausted`] (scored
    /// miners, a non-zero base reward, and nothing uncommitted in the vault: fund it and
    /// finalize again), [`MinerScoreError::VaultUnderfunded`] and
    /// [`MinerScoreError::MathOverflow`].
    pub fn handle(&mut self, epoch_id: u64, bumps: &FinalizeEpochBumps) -> Result<()> {
        let config = &mut self.auth.config;
        let slot = Clock::get()?.slot;
        let totals = &mut self.epoch_totals;
        open_totals(totals, epoch_id, &config.score, bumps.epoch_totals);
        require!(!totals.finalized, MinerScoreError::EpochFinalized);
        require_ended(epoch_id, totals.score.epoch_len_slots, slot)?;

        let available = self
            .reward_vault
            .amount
            .checked_sub(config.committed_rewards)
            .ok_or(MinerScoreError::VaultUnderfunded)?;
        let pool = if totals.total_normalized_score == 0 {
            0
        } else {
            require!(
                available > 0 || config.base_reward_per_epoch == 0,
                MinerScoreError::RewardPoolExhausted
            );
            config.base_reward_per_epoch.min(available)
        };
        config.committed_rewards = config
            .committed_rewards
            .checked_add(pool)
            .ok_or(MinerScoreError::MathOverflow)?;

        totals.finalized = true;
        totals.finalized_at_slot = slot;
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
