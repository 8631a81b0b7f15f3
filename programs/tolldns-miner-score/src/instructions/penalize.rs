//! `penalize_miner`: the dispute authority lowers a miner's unclaimed reward for an epoch and,
//! optionally, slashes its stake in the registry (CPI signed by the `["slasher"]` PDA), until
//! the epoch's challenge window closes.

use anchor_lang::prelude::*;
use anchor_spl::token::Token;
use tolldns_registry::program::TolldnsRegistry;
use tolldns_score::{penalize, BPS_DENOM};

use crate::constants::{CONFIG_SEED, EPOCH_TOTALS_SEED, MINER_EPOCH_SEED, SLASHER_SEED};
use crate::error::MinerScoreError;
use crate::events::MinerPenalized;
use crate::reward::miner_payout;
use crate::state::{EpochTotals, MinerEpochStats, MinerScoreConfig};

/// Accounts of `penalize_miner`. The registry accounts are passed through to the registry's
/// `slash`, which checks them (config, the miner's stake PDA, its vault and treasury); they are
/// not used when `slash_amount` is zero, but must still be given.
#[derive(Accounts)]
#[instruction(epoch_id: u64, miner: Pubkey)]
pub struct PenalizeMiner<'info> {
    /// The dispute authority of the parameters in force.
    pub dispute_authority: Signer<'info>,
    /// The config.
    #[account(
        seeds = [CONFIG_SEED],
        bump = config.bump,
        constraint = config.params_for(config.epoch_of(Clock::get()?.slot)).dispute_authority
            == dispute_authority.key() @ MinerScoreError::Unauthorized
    )]
    pub config: Box<Account<'info, MinerScoreConfig>>,
    /// The epoch's totals (read for the challenge window and the new reward).
    #[account(seeds = [EPOCH_TOTALS_SEED, &epoch_id.to_le_bytes()], bump = epoch_totals.bump)]
    pub epoch_totals: Box<Account<'info, EpochTotals>>,
    /// The miner's stats for the epoch.
    #[account(
        mut,
        seeds = [MINER_EPOCH_SEED, &epoch_id.to_le_bytes(), miner.as_ref()],
        bump = miner_epoch_stats.bump
    )]
    pub miner_epoch_stats: Box<Account<'info, MinerEpochStats>>,
    /// CHECK: the data-less slasher PDA (checked by its seeds); signs the registry's `slash`.
    #[account(seeds = [SLASHER_SEED], bump = config.slasher_bump)]
    pub slasher: UncheckedAccount<'info>,
    /// CHECK: the registry's config; checked by the registry's `slash`.
    pub registry_config: UncheckedAccount<'info>,
    /// CHECK: the miner's stake account; checked (PDA of `miner`) by the registry's `slash`.
    #[account(mut)]
    pub stake: UncheckedAccount<'info>,
    /// CHECK: the registry's stake vault; checked by the registry's `slash`.
    #[account(mut)]
    pub stake_vault: UncheckedAccount<'info>,
    /// CHECK: the registry's stake-vault authority; checked by the registry's `slash`.
    pub stake_vault_authority: UncheckedAccount<'info>,
    /// CHECK: the registry's treasury; checked by the registry's `slash`.
    #[account(mut)]
    pub treasury: UncheckedAccount<'info>,
    /// The registry program.
    pub registry_program: Program<'info, TolldnsRegistry>,
    /// The SPL token program.
    pub token_program: Program<'info, Token>,
}

impl PenalizeMiner<'_> {
    /// Lowers the share of the reward the miner keeps:
    /// `reward_keep_bps ← penalize(reward_keep_bps, penalty_bps)`. Penalties compound and are
    /// never undone. The epoch totals are not changed: what a penalty takes stays in the vault,
    /// it is not redistributed to the other miners. With `slash_amount > 0`, up to that much of
    /// the miner's stake is slashed to the registry's treasury (the registry's config must
    /// list this program's slasher PDA).
    ///
    /// # Errors
    ///
    /// [`MinerScoreError::Unauthorized`], [`MinerScoreError::InvalidPenalty`] (zero or above
    /// 10,000), [`MinerScoreError::AlreadyClaimed`], [`MinerScoreError::ChallengeWindowClosed`],
    /// [`MinerScoreError::MathOverflow`], and the registry's errors for the slash.
    pub fn handle(
        &mut self,
        epoch_id: u64,
        miner: Pubkey,
        penalty_bps: u16,
        slash_amount: u64,
        reason_hash: [u8; 32],
    ) -> Result<()> {
        require!(
            penalty_bps > 0 && penalty_bps <= BPS_DENOM,
            MinerScoreError::InvalidPenalty
        );
        let slot = Clock::get()?.slot;
        let totals = &self.epoch_totals;
        require!(
            !totals.finalized || slot < totals.claims_open_slot,
            MinerScoreError::ChallengeWindowClosed
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

        let new_reward_amount = if totals.finalized {
            Some(miner_payout(totals, stats)?.reward)
        } else {
            None
        };

        let slashed = if slash_amount > 0 {
            let before = self.stake_vault_balance()?;
            let bump = [self.config.slasher_bump];
            let seeds: &[&[u8]] = &[SLASHER_SEED, &bump];
            tolldns_registry::cpi::slash(
                CpiContext::new_with_signer(
                    self.registry_program.key(),
                    tolldns_registry::cpi::accounts::Slash {
                        slasher: self.slasher.to_account_info(),
                        config: self.registry_config.to_account_info(),
                        stake: self.stake.to_account_info(),
                        stake_vault: self.stake_vault.to_account_info(),
                        stake_vault_authority: self.stake_vault_authority.to_account_info(),
                        treasury: self.treasury.to_account_info(),
                        token_program: self.token_program.to_account_info(),
                    },
                    &[seeds],
                ),
                miner,
                slash_amount,
                reason_hash,
            )?;
            before
                .checked_sub(self.stake_vault_balance()?)
                .ok_or(MinerScoreError::MathOverflow)?
        } else {
            0
        };

        emit!(MinerPenalized {
            epoch_id,
            miner,
            penalty_bps,
            reason_hash,
            slashed,
            reward_keep_bps: self.miner_epoch_stats.reward_keep_bps,
            new_reward_amount,
        });
        Ok(())
    }

    /// The stake vault's token balance (the registry checked the account in the CPI). The
    /// amount slashed is the balance's drop across the CPI rather than the registry's return
    /// data, which the host test runtime does not carry between native builtins.
    fn stake_vault_balance(&self) -> Result<u64> {
        let data = self.stake_vault.try_borrow_data()?;
        let account = anchor_spl::token::TokenAccount::try_deserialize_unchecked(&mut &data[..])?;
        Ok(account.amount)
    }
}
