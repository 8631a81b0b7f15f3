//! `init_miner_score_config`: creates the config, and the reward vault owned by the
//! vault-authority PDA.

use anchor_lang::prelude::*;
use anchor_spl::token::{Mint, Token, TokenAccount};

use crate::constants::{CONFIG_SEED, REWARD_VAULT_SEED, VAULT_AUTHORITY_SEED};
use crate::state::{ConfigArgs, MinerScoreConfig};

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
    pub config: Account<'info, MinerScoreConfig>,
    /// The reward token's mint.
    pub toll_mint: Account<'info, Mint>,
    /// CHECK: a data-less PDA that only signs transfers out of the vault; its address is
    /// checked by the seeds constraint.
    #[account(seeds = [VAULT_AUTHORITY_SEED], bump)]
    pub vault_authority: UncheckedAccount<'info>,
    /// The reward vault, an SPL token account PDA owned by `vault_authority`.
    #[account(
        init,
        payer = authority,
        seeds = [REWARD_VAULT_SEED],
        bump,
        token::mint = toll_mint,
        token::authority = vault_authority
    )]
    pub reward_vault: Account<'info, TokenAccount>,
    /// The SPL token program.
    pub token_program: Program<'info, Token>,
    /// The system program.
    pub system_program: Program<'info, System>,
}

impl InitMinerScoreConfig<'_> {
    /// Validates `args` and writes the config.
    ///
    /// # Errors
    ///
    /// [`ConfigArgs::validate`]'s errors.
    pub fn handle(&mut self, args: ConfigArgs, bumps: &InitMinerScoreConfigBumps) -> Result<()> {
        args.validate()?;
        let config = &mut self.config;
        config.authority = self.authority.key();
        config.pending_authority = None;
        config.toll_mint = self.toll_mint.key();
        config.reward_vault = self.reward_vault.key();
        config.vault_authority_bump = bumps.vault_authority;
        config.reward_vault_bump = bumps.reward_vault;
        config.bump = bumps.config;
        config.base_reward_per_epoch = args.base_reward_per_epoch;
        config.committed_rewards = 0;
        config.score = args.score;
        config.allowlisted_submitters = args.allowlisted_submitters;
        config.allowlisted_miners = args.allowlisted_miners;
        Ok(())
    }
}
