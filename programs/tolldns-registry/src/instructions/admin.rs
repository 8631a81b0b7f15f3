//! Authority instructions: `set_ticket_price`, `decrease_exit_delay`, `add_slasher`,
//! `remove_slasher`, `transfer_registry_authority` (step one) and `accept_registry_authority`
//! (step two).
//!
//! The authority cannot move stake: only a slasher can, and a slasher it adds waits until
//! every staker could have exited and withdrawn
//! ([`RegistryConfig::new_slasher_active_from`]). The exit delay can only shrink, and the
//! treasury, mint, vault and epoch length never change.

use anchor_lang::prelude::*;

use crate::constants::{MAX_SLASHERS, REGISTRY_CONFIG_SEED};
use crate::error::RegistryError;
use crate::events::{
    ExitDelayDecreased, RegistryAuthorityTransferProposed, RegistryAuthorityTransferred,
    SlasherAdded, SlasherRemoved, TicketPriceSet,
};
use crate::state::{RegistryConfig, Slasher};

/// Accounts of the instructions signed by the current registry authority.
#[derive(Accounts)]
pub struct RegistryAuthority<'info> {
    /// The current authority.
    pub authority: Signer<'info>,
    /// The config.
    #[account(
        mut,
        seeds = [REGISTRY_CONFIG_SEED],
        bump = config.bump,
        has_one = authority @ RegistryError::Unauthorized
    )]
    pub config: Box<Account<'info, RegistryConfig>>,
}

impl RegistryAuthority<'_> {
    /// Sets the ticket price, effective at once (a buyer's `max_price` protects it from a
    /// change between quote and purchase).
    ///
    /// # Errors
    ///
    /// None beyond the account constraints.
    pub fn set_ticket_price(&mut self, price: u64) -> Result<()> {
        let old_price = self.config.ticket_price;
        self.config.ticket_price = price;
        emit!(TicketPriceSet {
            old_price,
            new_price: price,
        });
        Ok(())
    }

    /// Lowers the exit delay. It can never be raised: that would trap stakers who staked
    /// under the shorter delay.
    ///
    /// # Errors
    ///
    /// [`RegistryError::InvalidConfig`] unless `0 < slots < exit_delay_slots`.
    pub fn decrease_exit_delay(&mut self, slots: u64) -> Result<()> {
        let now = Clock::get()?.slot;
        let old_delay_slots = self.config.exit_delay_slots;
        self.config.decrease_exit_delay(slots, now)?;
        emit!(ExitDelayDecreased {
            old_delay_slots,
            new_delay_slots: slots,
            slasher_floor_slot: self.config.slasher_floor_slot,
        });
        Ok(())
    }

    /// Adds a slasher, active from [`RegistryConfig::new_slasher_active_from`] (the time
    /// lock: every staker can exit and withdraw before it can act).
    ///
    /// # Errors
    ///
    /// [`RegistryError::InvalidConfig`] if `key` is already a slasher (active or not);
    /// [`RegistryError::TooManySlashers`] if [`MAX_SLASHERS`] are configured;
    /// [`RegistryError::MathOverflow`].
    pub fn add_slasher(&mut self, key: Pubkey) -> Result<()> {
        require!(
            !self.config.slashers.iter().any(|s| s.key == key),
            RegistryError::InvalidConfig
        );
        require!(
            self.config.slashers.len() < MAX_SLASHERS,
            RegistryError::TooManySlashers
        );
        let now = Clock::get()?.slot;
        let active_from_slot = self.config.new_slasher_active_from(now)?;
        self.config.slashers.push(Slasher {
            key,
            active_from_slot,
        });
        emit!(SlasherAdded {
            slasher: key,
            active_from_slot,
        });
        Ok(())
    }

    /// Removes a slasher, effective at once.
    ///
    /// # Errors
    ///
    /// [`RegistryError::InvalidConfig`] if `key` is not a slasher.
    pub fn remove_slasher(&mut self, key: Pubkey) -> Result<()> {
        let index = self
            .config
            .slashers
            .iter()
            .position(|s| s.key == key)
            .ok_or_else(|| error!(RegistryError::InvalidConfig))?;
        self.config.slashers.remove(index);
        emit!(SlasherRemoved { slasher: key });
        Ok(())
    }

    /// Proposes `new_authority` (step one of two); `None` cancels a pending proposal.
    ///
    /// # Errors
    ///
    /// None beyond the account constraints.
    pub fn transfer_authority(&mut self, new_authority: Option<Pubkey>) -> Result<()> {
        self.config.pending_authority = new_authority;
        emit!(RegistryAuthorityTransferProposed {
            authority: self.authority.key(),
            pending_authority: new_authority,
        });
        Ok(())
    }
}

/// Accounts of `accept_registry_authority`.
#[derive(Accounts)]
pub struct AcceptRegistryAuthority<'info> {
    /// The pending authority.
    pub new_authority: Signer<'info>,
    /// The config.
    #[account(mut, seeds = [REGISTRY_CONFIG_SEED], bump = config.bump)]
    pub config: Box<Account<'info, RegistryConfig>>,
}

impl AcceptRegistryAuthority<'_> {
    /// Makes the pending authority the authority (step two of two).
    ///
    /// # Errors
    ///
    /// [`RegistryError::NoPendingAuthority`] if no transfer is pending;
    /// [`RegistryError::Unauthorized`] if the signer is not the pending authority.
    pub fn handle(&mut self) -> Result<()> {
        let pending = self
            .config
            .pending_authority
            .ok_or(RegistryError::NoPendingAuthority)?;
        require_keys_eq!(
            pending,
            self.new_authority.key(),
            RegistryError::Unauthorized
        );
        let previous = self.config.authority;
        self.config.authority = pending;
        self.config.pending_authority = None;
        emit!(RegistryAuthorityTransferred {
            previous_authority: previous,
            new_authority: pending,
        });
        Ok(())
    }
}
