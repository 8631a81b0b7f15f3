//! `init_registry_config`: creates the config, and the stake vault owned by the stake-vault
//! authority PDA.

use anchor_lang::prelude::*;
use anchor_spl::token::{Mint, Token, TokenAccount};

use crate::args::RegistryArgs;
use crate::constants::{REGISTRY_CONFIG_SEED, STAKE_VAULT_AUTHORITY_SEED, STAKE_VAULT_SEED};
use crate::error::RegistryError;
use crate::events::RegistryInitialized;
use crate::state::{RegistryConfig, Slasher};

/// Accounts of `init_registry_config`. The config PDA is `init`, so this runs once.
#[derive(Accounts)]
pub struct InitRegistryConfig<'info> {
    /// Becomes the registry authority; pays for the accounts.
    #[account(mut)]
    pub authority: Signer<'info>,
    /// The config PDA.
    #[account(
        init,
        payer = authority,
        space = 8 + RegistryConfig::INIT_SPACE,
        seeds = [REGISTRY_CONFIG_SEED],
        bump
    )]
    pub config: Box<Account<'info, RegistryConfig>>,
    /// The TOLL mint (stake and ticket payments).
    pub toll_mint: Box<Account<'info, Mint>>,
    /// CHECK: a data-less PDA that only signs transfers out of the stake vault; its address is
    /// checked by the seeds constraint.
    #[account(seeds = [STAKE_VAULT_AUTHORITY_SEED], bump)]
    pub stake_vault_authority: UncheckedAccount<'info>,
    /// The stake vault, an SPL token account PDA owned by `stake_vault_authority`.
    #[account(
        init,
        payer = authority,
        seeds = [STAKE_VAULT_SEED],
        bump,
        token::mint = toll_mint,
        token::authority = stake_vault_authority
    )]
    pub stake_vault: Box<Account<'info, TokenAccount>>,
    /// The treasury (ticket payments and slashed stake); a token account of `toll_mint`.
    /// Immutable afterwards.
    #[account(constraint = treasury.mint == toll_mint.key() @ RegistryError::InvalidMint)]
    pub treasury: Box<Account<'info, TokenAccount>>,
    /// The SPL token program.
    pub token_program: Program<'info, Token>,
    /// The system program.
    pub system_program: Program<'info, System>,
}

impl InitRegistryConfig<'_> {
    /// Validates `args` and writes the config. The initial slashers are active from slot 0.
    ///
    /// # Errors
    ///
    /// [`RegistryArgs::validate`]'s errors.
    pub fn handle(&mut self, args: RegistryArgs, bumps: &InitRegistryConfigBumps) -> Result<()> {
        args.validate()?;
        let slashers = args
            .slashers
            .iter()
            .map(|&key| Slasher {
                key,
                active_from_slot: 0,
            })
            .collect();
        self.config.set_inner(RegistryConfig {
            authority: self.authority.key(),
            pending_authority: None,
            toll_mint: self.toll_mint.key(),
            stake_vault: self.stake_vault.key(),
            treasury: self.treasury.key(),
            epoch_len_slots: args.epoch_len_slots,
            exit_delay_slots: args.exit_delay_slots,
            ticket_price: args.ticket_price,
            slashers,
            bump: bumps.config,
            stake_vault_bump: bumps.stake_vault,
            stake_vault_authority_bump: bumps.stake_vault_authority,
            slasher_floor_slot: 0,
        });
        emit!(RegistryInitialized {
            authority: self.authority.key(),
            toll_mint: self.toll_mint.key(),
            stake_vault: self.stake_vault.key(),
            treasury: self.treasury.key(),
            epoch_len_slots: args.epoch_len_slots,
            exit_delay_slots: args.exit_delay_slots,
            ticket_price: args.ticket_price,
        });
        Ok(())
    }
}
