//! Operator instructions: `register_operator`, `update_operator`, `rotate_signing_key`,
//! `set_operator_status` and `close_operator`. Every one is signed by the operator's wallet,
//! and the operator PDA's seeds contain the signer's key, so a wallet only ever reaches its
//! own operator.

use anchor_lang::prelude::*;

use crate::args::{validate_profile, OperatorArgs, OperatorUpdate};
use crate::constants::OPERATOR_SEED;
use crate::error::RegistryError;
use crate::events::{
    OperatorClosed, OperatorRegistered, OperatorStatusChanged, OperatorUpdated, SigningKeyRotated,
};
use crate::state::{Operator, OperatorStatus, SigningKey};

/// Accounts of `register_operator`.
#[derive(Accounts)]
pub struct RegisterOperator<'info> {
    /// The operator's wallet; pays the rent and alone controls the operator.
    #[account(mut)]
    pub wallet: Signer<'info>,
    /// The new operator PDA.
    #[account(
        init,
        payer = wallet,
        space = 8 + Operator::INIT_SPACE,
        seeds = [OPERATOR_SEED, wallet.key().as_ref()],
        bump
    )]
    pub operator: Box<Account<'info, Operator>>,
    /// The system program.
    pub system_program: Program<'info, System>,
}

impl RegisterOperator<'_> {
    /// Validates the profile and writes the operator: status `Active`, signing key valid from
    /// the current slot.
    ///
    /// # Errors
    ///
    /// [`validate_profile`]'s errors.
    pub fn handle(&mut self, args: OperatorArgs, bumps: &RegisterOperatorBumps) -> Result<()> {
        validate_profile(args.roles, &args.backend_ids, &args.endpoints)?;
        let slot = Clock::get()?.slot;
        self.operator.set_inner(Operator {
            wallet: self.wallet.key(),
            signing_key: SigningKey {
                key: args.signing_key,
                valid_from_slot: slot,
            },
            previous_signing_key: None,
            roles: args.roles,
            backend_ids: args.backend_ids,
            endpoints: args.endpoints,
            status: OperatorStatus::Active,
            registered_at_slot: slot,
            updated_at_slot: slot,
            bump: bumps.operator,
        });
        emit!(OperatorRegistered {
            wallet: self.wallet.key(),
            signing_key: args.signing_key,
            roles: args.roles,
            slot,
        });
        Ok(())
    }
}

/// Accounts of `update_operator`, `rotate_signing_key` and `set_operator_status`.
#[derive(Accounts)]
pub struct OperatorWallet<'info> {
    /// The operator's wallet.
    pub wallet: Signer<'info>,
    /// The signer's operator.
    #[account(
        mut,
        seeds = [OPERATOR_SEED, wallet.key().as_ref()],
        bump = operator.bump
    )]
    pub operator: Box<Account<'info, Operator>>,
}

impl OperatorWallet<'_> {
    /// Replaces the roles, backend ids and endpoints.
    ///
    /// # Errors
    ///
    /// [`RegistryError::OperatorRetired`]; [`validate_profile`]'s errors.
    pub fn update(&mut self, args: OperatorUpdate) -> Result<()> {
        require!(
            self.operator.status != OperatorStatus::Retired,
            RegistryError::OperatorRetired
        );
        validate_profile(args.roles, &args.backend_ids, &args.endpoints)?;
        let slot = Clock::get()?.slot;
        let backend_count = u8::try_from(args.backend_ids.len())
            .map_err(|_| error!(RegistryError::TooManyBackends))?;
        let endpoint_count = u8::try_from(args.endpoints.len())
            .map_err(|_| error!(RegistryError::TooManyEndpoints))?;
        let operator = &mut self.operator;
        operator.roles = args.roles;
        operator.backend_ids = args.backend_ids;
        operator.endpoints = args.endpoints;
        operator.updated_at_slot = slot;
        emit!(OperatorUpdated {
            wallet: self.wallet.key(),
            roles: args.roles,
            backend_count,
            endpoint_count,
        });
        Ok(())
    }

    /// Schedules a new signing key from `valid_from_slot` ([`Operator::rotate`]): the current
    /// key, if already valid, stays valid until then.
    ///
    /// # Errors
    ///
    /// [`RegistryError::OperatorRetired`], [`RegistryError::KeyValidFromInPast`].
    pub fn rotate(&mut self, key: [u8; 32], valid_from_slot: u64) -> Result<()> {
        require!(
            self.operator.status != OperatorStatus::Retired,
            RegistryError::OperatorRetired
        );
        let slot = Clock::get()?.slot;
        self.operator.rotate(key, valid_from_slot, slot)?;
        self.operator.updated_at_slot = slot;
        emit!(SigningKeyRotated {
            wallet: self.wallet.key(),
            new_key: key,
            valid_from_slot,
            previous_key: self.operator.previous_signing_key.map(|k| k.key),
        });
        Ok(())
    }

    /// Changes the status: `Active` and `Paused` freely into each other (or themselves), either
    /// into `Retired`, which is final.
    ///
    /// # Errors
    ///
    /// [`RegistryError::InvalidStatus`] for any change out of `Retired`.
    pub fn set_status(&mut self, status: OperatorStatus) -> Result<()> {
        let old_status = self.operator.status;
        require!(
            old_status != OperatorStatus::Retired,
            RegistryError::InvalidStatus
        );
        let slot = Clock::get()?.slot;
        self.operator.status = status;
        self.operator.updated_at_slot = slot;
        emit!(OperatorStatusChanged {
            wallet: self.wallet.key(),
            old_status,
            new_status: status,
        });
        Ok(())
    }
}

/// Accounts of `close_operator`.
#[derive(Accounts)]
pub struct CloseOperator<'info> {
    /// The operator's wallet; receives the rent.
    #[account(mut)]
    pub wallet: Signer<'info>,
    /// The signer's retired operator; closed into `wallet`.
    #[account(
        mut,
        seeds = [OPERATOR_SEED, wallet.key().as_ref()],
        bump = operator.bump,
        close = wallet
    )]
    pub operator: Box<Account<'info, Operator>>,
}

impl CloseOperator<'_> {
    /// Checks that the operator is retired (Anchor closes the account on success).
    ///
    /// # Errors
    ///
    /// [`RegistryError::OperatorNotClosable`] unless the operator is `Retired`.
    pub fn handle(&mut self) -> Result<()> {
        require!(
            self.operator.status == OperatorStatus::Retired,
            RegistryError::OperatorNotClosable
        );
        emit!(OperatorClosed {
            wallet: self.wallet.key(),
        });
        Ok(())
    }
}
