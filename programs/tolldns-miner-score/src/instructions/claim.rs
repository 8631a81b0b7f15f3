//! `claim_miner_reward`: the miner claims its reward for a finalized epoch. The reward is
//! computed here, on-chain, from the epoch's fixed pool and totals (see [`miner_payout`]).

use anchor_lang::prelude::*;
use anchor_spl::token::{self, Token, TokenAccount, Transfer};

use crate::constants::{
    CLAIM_SEED, CONFIG_SEED, EPOCH_TOTALS_SEED, MINER_EPOCH_SEED, VAULT_AUTHORITY_SEED,
};
use crate::error::MinerScoreError;
use crate::events::MinerRewardClaimed;
use crate::reward::miner_payout;
use crate::state::{EpochTotals, MinerClaimReceipt, MinerEpochStats, MinerScoreConfig};

/// Accounts of `claim_miner_reward`.
#[derive(Accounts)]
#[instruction(epoch_id: u64)]
pub struct ClaimMinerReward<'info> {
    /// The miner; pays rent for the claim receipt.
    #[account(mut)]
    pub miner: Signer<'info>,
    /// The config (its committed rewards shrink by the released share).
    #[account(mut, seeds = [CONFIG_SEED], bump = config.bump)]
    pub config: Box<Account<'info, MinerScoreConfig>>,
    /// The epoch's totals.
    #[account(
        mut,
        seeds = [EPOCH_TOTALS_SEED, &epoch_id.to_le_bytes()],
        bump = epoch_totals.bump
    )]
    pub epoch_totals: Box<Account<'info, EpochTotals>>,
    /// The miner's stats for the epoch.
    #[account(
        mut,
        seeds = [MINER_EPOCH_SEED, &epoch_id.to_le_bytes(), miner.key().as_ref()],
        bump = miner_epoch_stats.bump
    )]
    pub miner_epoch_stats: Box<Account<'info, MinerEpochStats>>,
    /// The claim receipt (a second replay guard and an audit record).
    #[account(
        init_if_needed,
        payer = miner,
        space = 8 + MinerClaimReceipt::INIT_SPACE,
        seeds = [CLAIM_SEED, &epoch_id.to_le_bytes(), miner.key().as_ref()],
        bump
    )]
    pub claim_receipt: Box<Account<'info, MinerClaimReceipt>>,
    /// CHECK: the data-less vault-authority PDA (checked by its seeds); signs the transfer.
    #[account(seeds = [VAULT_AUTHORITY_SEED], bump = config.vault_authority_bump)]
    pub vault_authority: UncheckedAccount<'info>,
    /// The reward vault.
    #[account(mut, address = config.reward_vault @ MinerScoreError::InvalidVault)]
    pub reward_vault: Box<Account<'info, TokenAccount>>,
    /// The miner's token account for the reward mint.
    #[account(
        mut,
        constraint = miner_token_account.mint == config.toll_mint @ MinerScoreError::InvalidMint,
        constraint = miner_token_account.owner == miner.key() @ MinerScoreError::InvalidTokenOwner
    )]
    pub miner_token_account: Box<Account<'info, TokenAccount>>,
    /// The SPL token program.
    pub token_program: Program<'info, Token>,
    /// The system program.
    pub system_program: Program<'info, System>,
}

impl ClaimMinerReward<'_> {
    /// Pays the reward (possibly zero), releases the miner's share of the pool from the
    /// committed rewards, and records the claim. The last claim of an epoch also releases
    /// what rounding left in the pool. Claims open when the challenge window closes and end
    /// at the claim deadline.
    ///
    /// # Errors
    ///
    /// [`MinerScoreError::EpochNotFinalized`], [`MinerScoreError::ChallengeWindowOpen`],
    /// [`MinerScoreError::RewardExpired`], [`MinerScoreError::NotAccepted`] (fewer than K
    /// watchers reported the miner), [`MinerScoreError::AlreadyClaimed`],
    /// [`MinerScoreError::MathOverflow`], and the token program's errors.
    pub fn handle(&mut self, epoch_id: u64, bumps: &ClaimMinerRewardBumps) -> Result<()> {
        let slot = Clock::get()?.slot;
        let totals = &self.epoch_totals;
        require!(totals.finalized, MinerScoreError::EpochNotFinalized);
        require!(
            slot >= totals.claims_open_slot,
            MinerScoreError::ChallengeWindowOpen
        );
        require!(
            !totals.expired && slot < totals.claim_deadline_slot,
            MinerScoreError::RewardExpired
        );
        require!(
            !self.miner_epoch_stats.claimed,
            MinerScoreError::AlreadyClaimed
        );
        require!(
            self.miner_epoch_stats.accepted,
            MinerScoreError::NotAccepted
        );
        let payout = miner_payout(&self.epoch_totals, &self.miner_epoch_stats)?;

        if payout.reward > 0 {
            let bump = [self.config.vault_authority_bump];
            let seeds: &[&[u8]] = &[VAULT_AUTHORITY_SEED, &bump];
            let signer = &[seeds];
            token::transfer(
                CpiContext::new_with_signer(
                    self.token_program.key(),
                    Transfer {
                        from: self.reward_vault.to_account_info(),
                        to: self.miner_token_account.to_account_info(),
                        authority: self.vault_authority.to_account_info(),
                    },
                    signer,
                ),
                payout.reward,
            )?;
        }

        let totals = &mut self.epoch_totals;
        let config = &mut self.config;
        let mut release = payout.share;
        totals.claimed_count = totals
            .claimed_count
            .checked_add(1)
            .ok_or(MinerScoreError::MathOverflow)?;
        totals.total_claimed = totals
            .total_claimed
            .checked_add(payout.reward)
            .ok_or(MinerScoreError::MathOverflow)?;
        totals.released = totals
            .released
            .checked_add(payout.share)
            .ok_or(MinerScoreError::MathOverflow)?;
        if totals.claimed_count == totals.miner_count {
            // Last claim: release what rounding left over.
            let rest = totals
                .reward_pool
                .checked_sub(totals.released)
                .ok_or(MinerScoreError::MathOverflow)?;
            release = release
                .checked_add(rest)
                .ok_or(MinerScoreError::MathOverflow)?;
            totals.released = totals.reward_pool;
        }
        config.committed_rewards = config
            .committed_rewards
            .checked_sub(release)
            .ok_or(MinerScoreError::MathOverflow)?;

        let stats = &mut self.miner_epoch_stats;
        stats.claimed = true;
        stats.reward_amount = payout.reward;

        self.claim_receipt.set_inner(MinerClaimReceipt {
            epoch_id,
            miner: self.miner.key(),
            amount: payout.reward,
            claimed_at_slot: slot,
            bump: bumps.claim_receipt,
        });
        emit!(MinerRewardClaimed {
            epoch_id,
            miner: self.miner.key(),
            amount: payout.reward,
        });
        Ok(())
    }
}
