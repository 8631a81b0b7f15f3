//! Stake instructions: `deposit_stake`, `request_exit`, `withdraw_stake` and `close_stake`.
//! Every one is signed by the staking wallet, and the stake PDA's seeds contain the signer's
//! key, so a wallet only ever reaches its own stake (anything else fails Anchor's seeds
//! constraint). Tokens leave the vault only to the wallet's own token account (an unlocked
//! exit) or to the treasury (a slash).

use anchor_lang::prelude::*;
use anchor_spl::token::{self, Token, TokenAccount, Transfer};

use crate::constants::{REGISTRY_CONFIG_SEED, STAKE_SEED, STAKE_VAULT_AUTHORITY_SEED};
use crate::error::RegistryError;
use crate::events::{ExitRequested, StakeClosed, StakeDeposited, StakeWithdrawn};
use crate::state::{RegistryConfig, Stake};

/// Accounts of `deposit_stake`.
#[derive(Accounts)]
pub struct DepositStake<'info> {
    /// The staking wallet; pays the stake account's rent on the first deposit.
    #[account(mut)]
    pub wallet: Signer<'info>,
    /// The registry config.
    #[account(seeds = [REGISTRY_CONFIG_SEED], bump = config.bump)]
    pub config: Box<Account<'info, RegistryConfig>>,
    /// The signer's stake account (created by the first deposit).
    #[account(
        init_if_needed,
        payer = wallet,
        space = 8 + Stake::INIT_SPACE,
        seeds = [STAKE_SEED, wallet.key().as_ref()],
        bump
    )]
    pub stake: Box<Account<'info, Stake>>,
    /// The wallet's TOLL token account, the source of the deposit.
    #[account(
        mut,
        constraint = wallet_token_account.mint == config.toll_mint @ RegistryError::InvalidMint,
        constraint = wallet_token_account.owner == wallet.key() @ RegistryError::InvalidTokenOwner
    )]
    pub wallet_token_account: Box<Account<'info, TokenAccount>>,
    /// The stake vault.
    #[account(mut, address = config.stake_vault @ RegistryError::InvalidVault)]
    pub stake_vault: Box<Account<'info, TokenAccount>>,
    /// The SPL token program.
    pub token_program: Program<'info, Token>,
    /// The system program.
    pub system_program: Program<'info, System>,
}

impl DepositStake<'_> {
    /// Moves `amount` from the wallet to the vault; it is pending during the current epoch and
    /// counts from the next one ([`Stake::deposit`]).
    ///
    /// # Errors
    ///
    /// [`RegistryError::ZeroAmount`], [`RegistryError::MathOverflow`],
    /// [`RegistryError::ClockWentBackwards`] and the token program's errors.
    pub fn handle(&mut self, amount: u64, bumps: &DepositStakeBumps) -> Result<()> {
        require!(amount > 0, RegistryError::ZeroAmount);
        let slot = Clock::get()?.slot;
        let epoch = self.config.epoch_of(slot)?;
        if self.stake.wallet == Pubkey::default() {
            self.stake
                .set_inner(Stake::new(self.wallet.key(), epoch, bumps.stake));
        }
        self.stake.deposit(amount, epoch)?;
        token::transfer(
            CpiContext::new(
                self.token_program.key(),
                Transfer {
                    from: self.wallet_token_account.to_account_info(),
                    to: self.stake_vault.to_account_info(),
                    authority: self.wallet.to_account_info(),
                },
            ),
            amount,
        )?;
        emit!(StakeDeposited {
            wallet: self.wallet.key(),
            amount,
            epoch,
            active_from_epoch: self.stake.pending_epoch,
            total: self.stake.total()?,
        });
        Ok(())
    }
}

/// Accounts of `request_exit`.
#[derive(Accounts)]
pub struct RequestExit<'info> {
    /// The staking wallet.
    pub wallet: Signer<'info>,
    /// The registry config.
    #[account(seeds = [REGISTRY_CONFIG_SEED], bump = config.bump)]
    pub config: Box<Account<'info, RegistryConfig>>,
    /// The signer's stake account.
    #[account(mut, seeds = [STAKE_SEED, wallet.key().as_ref()], bump = stake.bump)]
    pub stake: Box<Account<'info, Stake>>,
}

impl RequestExit<'_> {
    /// Moves `amount` of active stake into an exit ticket that unlocks `exit_delay_slots`
    /// from now; it stops counting for the current epoch at once ([`Stake::request_exit`]).
    ///
    /// # Errors
    ///
    /// [`RegistryError::ZeroAmount`], [`RegistryError::InsufficientActiveStake`] (pending
    /// deposits cannot exit before they are active), [`RegistryError::TooManyExits`],
    /// [`RegistryError::MathOverflow`].
    pub fn handle(&mut self, amount: u64) -> Result<()> {
        let slot = Clock::get()?.slot;
        let epoch = self.config.epoch_of(slot)?;
        let unlock_slot = slot
            .checked_add(self.config.exit_delay_slots)
            .ok_or_else(|| error!(RegistryError::MathOverflow))?;
        self.stake.request_exit(amount, epoch, unlock_slot)?;
        emit!(ExitRequested {
            wallet: self.wallet.key(),
            amount,
            epoch,
            unlock_slot,
        });
        Ok(())
    }
}

/// Accounts of `withdraw_stake`.
#[derive(Accounts)]
pub struct WithdrawStake<'info> {
    /// The staking wallet.
    pub wallet: Signer<'info>,
    /// The registry config.
    #[account(seeds = [REGISTRY_CONFIG_SEED], bump = config.bump)]
    pub config: Box<Account<'info, RegistryConfig>>,
    /// The signer's stake account.
    #[account(mut, seeds = [STAKE_SEED, wallet.key().as_ref()], bump = stake.bump)]
    pub stake: Box<Account<'info, Stake>>,
    /// The stake vault.
    #[account(mut, address = config.stake_vault @ RegistryError::InvalidVault)]
    pub stake_vault: Box<Account<'info, TokenAccount>>,
    /// CHECK: the data-less stake-vault authority PDA (checked by its seeds); signs the transfer.
    #[account(seeds = [STAKE_VAULT_AUTHORITY_SEED], bump = config.stake_vault_authority_bump)]
    pub stake_vault_authority: UncheckedAccount<'info>,
    /// The wallet's TOLL token account, the destination.
    #[account(
        mut,
        constraint = wallet_token_account.mint == config.toll_mint @ RegistryError::InvalidMint,
        constraint = wallet_token_account.owner == wallet.key() @ RegistryError::InvalidTokenOwner
    )]
    pub wallet_token_account: Box<Account<'info, TokenAccount>>,
    /// The SPL token program.
    pub token_program: Program<'info, Token>,
}

impl WithdrawStake<'_> {
    /// Removes the unlocked exit ticket `index` and transfers its amount (possibly lowered by
    /// slashes) from the vault to the wallet's token account.
    ///
    /// # Errors
    ///
    /// [`RegistryError::NoSuchExit`], [`RegistryError::ExitLocked`] and the token program's
    /// errors.
    pub fn handle(&mut self, index: u8) -> Result<()> {
        let slot = Clock::get()?.slot;
        let amount = self.stake.withdraw(index, slot)?;
        let bump = [self.config.stake_vault_authority_bump];
        let seeds: &[&[u8]] = &[STAKE_VAULT_AUTHORITY_SEED, &bump];
        token::transfer(
            CpiContext::new_with_signer(
                self.token_program.key(),
                Transfer {
                    from: self.stake_vault.to_account_info(),
                    to: self.wallet_token_account.to_account_info(),
                    authority: self.stake_vault_authority.to_account_info(),
                },
                &[seeds],
            ),
            amount,
        )?;
        emit!(StakeWithdrawn {
            wallet: self.wallet.key(),
            amount,
            destination: self.wallet_token_account.key(),
        });
        Ok(())
    }
}

/// Accounts of `close_stake`.
#[derive(Accounts)]
pub struct CloseStake<'info> {
    /// The staking wallet; receives the rent.
    #[account(mut)]
    pub wallet: Signer<'info>,
    /// The signer's empty stake account; closed into `wallet`.
    #[account(
        mut,
        seeds = [STAKE_SEED, wallet.key().as_ref()],
        bump = stake.bump,
        close = wallet
    )]
    pub stake: Box<Account<'info, Stake>>,
}

impl CloseStake<'_> {
    /// Checks that the account holds nothing (Anchor closes it on success). Its weight
    /// history goes with it: a later deposit starts a new account whose earlier epochs weigh 0.
    ///
    /// # Errors
    ///
    /// [`RegistryError::StakeNotEmpty`] while active, pending or exiting stake remains;
    /// [`RegistryError::MathOverflow`].
    pub fn handle(&mut self) -> Result<()> {
        require!(self.stake.total()? == 0, RegistryError::StakeNotEmpty);
        emit!(StakeClosed {
            wallet: self.wallet.key(),
        });
        Ok(())
    }
}
