//! `init_miner_score_config`: creates the config, and the reward vault owned by the
//! vault-authority PDA.

use anchor_lang::prelude::*;
use anchor_spl::token::{Mint, Token, TokenAccount};

use crate::constants::{CONFIG_SEED, REWARD_VAULT_SEED, SLASHER_SEED, VAULT_AUTHORITY_SEED};
use crate::error::MinerScoreError;
use crate::state::{AllowEntry, InitArgs, MinerScoreConfig};

/// Accounts of `init_miner_score_config`. The config PDA is `init`, so this runs once.
#[derive(Accounts)]
pub struct InitMinerScoreConfig<'info> {
    /// Becomes the config authority; pays for the accounts.
    #[account(mut)]
    pub authority: Signer<'info>,
    /// The config PDA.
    #[account(
        init,
        payer = authority,
        space = 8 + MinerScoreConfig::INIT_SPACE,
        seeds = [CONFIG_SEED],
        bump
    )]
    pub config: Box<Account<'info, MinerScoreConfig>>,
    /// The reward token's mint.
    pub toll_mint: Account<'info, Mint>,
    /// CHECK: a data-less PDA that only signs transfers out of the vault; its address is
    /// checked by the seeds constraint.
    #[account(seeds = [VAULT_AUTHORITY_SEED], bump)]
    pub vault_authority: UncheckedAccount<'info>,
    /// CHECK: a data-less PDA that signs the registry's `slash` for penalties; its address is
    /// checked by the seeds constraint.
    #[account(seeds = [SLASHER_SEED], bump)]
    pub slasher: UncheckedAccount<'info>,
    /// The reward vault, an SPL token account PDA owned by `vault_authority`.
    #[account(
        init,
        payer = authority,
        seeds = [REWARD_VAULT_SEED],
        bump,
        token::mint = toll_mint,
        token::authority = vault_authority
    )]
    pub reward_vault: Box<Account<'info, TokenAccount>>,
    /// The SPL token program.
    pub token_program: Program<'info, Token>,
    /// The system program.
    pub system_program: Program<'info, System>,
}

impl InitMinerScoreConfig<'_> {
    /// Validates `args` and writes the config. The listed watchers and miners count from the
    /// first epoch.
    ///
    /// # Errors
    ///
    /// [`MinerScoreError::FirstEpochInPast`] and [`InitArgs::validate`]'s errors.
    pub fn handle(&mut self, args: InitArgs, bumps: &InitMinerScoreConfigBumps) -> Result<()> {
        args.validate()?;
        let slot = Clock::get()?.slot;
        let now_epoch = slot
            .checked_div(args.params.score.epoch_len_slots)
            .ok_or(MinerScoreError::ZeroEpochLength)?;
        require!(
            args.timing.first_epoch >= now_epoch,
            MinerScoreError::FirstEpochInPast
        );
        let first = args.timing.first_epoch;
        let entries = |keys: Vec<Pubkey>| -> Vec<AllowEntry> {
            keys.into_iter()
                .map(|key| AllowEntry {
                    key,
                    active_from_epoch: first,
                })
                .collect()
        };
        self.config.set_inner(MinerScoreConfig {
            authority: self.authority.key(),
            pending_authority: None,
            toll_mint: self.toll_mint.key(),
            reward_vault: self.reward_vault.key(),
            vault_authority_bump: bumps.vault_authority,
            reward_vault_bump: bumps.reward_vault,
            slasher_bump: bumps.slasher,
            bump: bumps.config,
            params: args.params,
            pending_params: None,
            timing: args.timing,
            next_epoch_to_finalize: first,
            committed_rewards: 0,
            watchers: entries(args.watchers),
            miners: entries(args.miners),
        });
        Ok(())
    }
}
