//! `slash`: a configured slasher (the dispute authority, or the score program's slasher PDA
//! through CPI) takes stake and moves it to the treasury.

use anchor_lang::prelude::*;
use anchor_spl::token::{self, Token, TokenAccount, Transfer};

use crate::constants::{REGISTRY_CONFIG_SEED, STAKE_SEED, STAKE_VAULT_AUTHORITY_SEED};
use crate::error::RegistryError;
use crate::events::StakeSlashed;
use crate::state::{RegistryConfig, Stake};

/// Accounts of `slash`.
#[derive(Accounts)]
#[instruction(wallet: Pubkey)]
pub struct Slash<'info> {
    /// A configured slasher.
    pub slasher: Signer<'info>,
    /// The registry config, holding the slashers.
    #[account(
        seeds = [REGISTRY_CONFIG_SEED],
        bump = config.bump,
    )]
    pub config: Box<Account<'info, RegistryConfig>>,
    /// The wallet's stake.
    #[account(mut, seeds = [STAKE_SEED, wallet.as_ref()], bump = stake.bump)]
    pub stake: Box<Account<'info, Stake>>,
    /// The stake vault.
    #[account(mut, address = config.stake_vault @ RegistryError::InvalidVault)]
    pub stake_vault: Box<Account<'info, TokenAccount>>,
    /// CHECK: the data-less stake-vault authority PDA (checked by its seeds); signs the transfer.
    #[account(seeds = [STAKE_VAULT_AUTHORITY_SEED], bump = config.stake_vault_authority_bump)]
    pub stake_vault_authority: UncheckedAccount<'info>,
    /// The treasury, which receives the slashed tokens.
    #[account(mut, address = config.treasury @ RegistryError::InvalidTreasury)]
    pub treasury: Box<Account<'info, TokenAccount>>,
    /// The SPL token program.
    pub token_program: Program<'info, Token>,
}

impl Slash<'_> {
    /// Takes up to `amount` from the stake (active, pending, then exits newest first) during
    /// the current epoch and transfers what was taken to the treasury.
    ///
    /// # Errors
    ///
    /// [`RegistryError::ZeroAmount`], [`RegistryError::NothingToSlash`],
    /// [`RegistryError::MathOverflow`] and the token program's errors.
    pub fn handle(&mut self, wallet: Pubkey, amount: u64, reason_hash: [u8; 32]) -> Result<()> {
        let slot = Clock::get()?.slot;
        require!(
            self.config.is_slasher(self.slasher.key, slot),
            RegistryError::Unauthorized
        );
        let epoch = self.config.epoch_of(slot)?;
        let taken = self.stake.slash(amount, epoch)?;
        let bump = [self.config.stake_vault_authority_bump];
        let seeds: &[&[u8]] = &[STAKE_VAULT_AUTHORITY_SEED, &bump];
        token::transfer(
            CpiContext::new_with_signer(
                self.token_program.key(),
                Transfer {
                    from: self.stake_vault.to_account_info(),
                    to: self.treasury.to_account_info(),
                    authority: self.stake_vault_authority.to_account_info(),
                },
                &[seeds],
            ),
            taken,
        )?;
        emit!(StakeSlashed {
            wallet,
            slasher: self.slasher.key(),
            requested: amount,
            amount: taken,
            reason_hash,
        });
        Ok(())
    }
}
