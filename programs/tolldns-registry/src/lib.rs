//! # tolldns-registry
//!
//! The TollDNS operator registry, time-locked stake and ticket purchases (Anchor).
//!
//! - **Operators** (`["operator", wallet]`): the delegate receipt-signing key (rotatable, with
//!   the slot from which the new key is valid), roles, backend ids, endpoints and status. This is
//!   the on-chain `OperatorRegistry` that watchers verify receipts against.
//! - **Stake** (`["stake", wallet]`, tokens in the `["stake_vault"]` PDA): deposits are active
//!   from the next epoch, exits wait `exit_delay_slots`, slashes reach active stake, pending
//!   deposits and pending exits. Each account answers the stake weight of an epoch by itself
//!   ([`state::Stake::weight_for_epoch`]); the score program reads it from there.
//! - **Ticket purchases** (`["ticket_quota", buyer]`): TOLL moves from the buyer to the
//!   treasury and the quota bought is recorded for issuers to check.
//!
//! Errors are [`RegistryError`](error::RegistryError) (codes from 6000, append-only). See
//! `programs/README.md` for the account, instruction and error tables and the trust model.

// Anchor's generated code uses `AccountInfo` APIs that the Solana 3 crates mark deprecated.
#![allow(deprecated)]

use anchor_lang::prelude::*;

pub mod args;
pub mod constants;
pub mod error;
pub mod events;
pub mod instructions;
pub mod state;

pub use args::{OperatorArgs, OperatorUpdate, RegistryArgs};
pub use instructions::*;
pub use state::{Endpoint, OperatorStatus};

declare_id!("AL2GUFuDigxfttMgEH82cTR8CKwvY6MSxaSEj5umaZTg");

/// The program's instructions. Each delegates to the handler on its accounts struct.
#[program]
pub mod tolldns_registry {
    use super::*;

    /// Creates the config and the stake vault. Runs once (the config PDA is `init`).
    pub fn init_registry_config(
        ctx: Context<InitRegistryConfig>,
        args: RegistryArgs,
    ) -> Result<()> {
        ctx.accounts.handle(args, &ctx.bumps)
    }

    /// Sets the ticket price, effective at once (authority only).
    pub fn set_ticket_price(ctx: Context<RegistryAuthority>, price: u64) -> Result<()> {
        ctx.accounts.set_ticket_price(price)
    }

    /// Lowers the exit delay (authority only); it can never be raised.
    pub fn decrease_exit_delay(ctx: Context<RegistryAuthority>, slots: u64) -> Result<()> {
        ctx.accounts.decrease_exit_delay(slots)
    }

    /// Adds a slasher, time-locked until every staker could have exited (authority only).
    pub fn add_slasher(ctx: Context<RegistryAuthority>, key: Pubkey) -> Result<()> {
        ctx.accounts.add_slasher(key)
    }

    /// Removes a slasher, effective at once (authority only).
    pub fn remove_slasher(ctx: Context<RegistryAuthority>, key: Pubkey) -> Result<()> {
        ctx.accounts.remove_slasher(key)
    }

    /// Proposes a new authority (authority only); `None` cancels the proposal.
    pub fn transfer_registry_authority(
        ctx: Context<RegistryAuthority>,
        new_authority: Option<Pubkey>,
    ) -> Result<()> {
        ctx.accounts.transfer_authority(new_authority)
    }

    /// Accepts a proposed authority transfer (signed by the proposed authority).
    pub fn accept_registry_authority(ctx: Context<AcceptRegistryAuthority>) -> Result<()> {
        ctx.accounts.handle()
    }

    /// Registers the signer's operator (`["operator", wallet]`), active, key valid from now.
    pub fn register_operator(ctx: Context<RegisterOperator>, args: OperatorArgs) -> Result<()> {
        ctx.accounts.handle(args, &ctx.bumps)
    }

    /// Replaces the signer's operator's roles, backend ids and endpoints.
    pub fn update_operator(ctx: Context<OperatorWallet>, args: OperatorUpdate) -> Result<()> {
        ctx.accounts.update(args)
    }

    /// Schedules a new receipt-signing key for the signer's operator.
    pub fn rotate_signing_key(
        ctx: Context<OperatorWallet>,
        key: [u8; 32],
        valid_from_slot: u64,
    ) -> Result<()> {
        ctx.accounts.rotate(key, valid_from_slot)
    }

    /// Changes the signer's operator's status (`Retired` is final).
    pub fn set_operator_status(ctx: Context<OperatorWallet>, status: OperatorStatus) -> Result<()> {
        ctx.accounts.set_status(status)
    }

    /// Closes the signer's retired operator, returning the rent to the wallet.
    pub fn close_operator(ctx: Context<CloseOperator>) -> Result<()> {
        ctx.accounts.handle()
    }

    /// Deposits stake from the signer's token account; it counts from the next epoch.
    pub fn deposit_stake(ctx: Context<DepositStake>, amount: u64) -> Result<()> {
        ctx.accounts.handle(amount, &ctx.bumps)
    }

    /// Moves active stake into an exit ticket unlocking after the exit delay.
    pub fn request_exit(ctx: Context<RequestExit>, amount: u64) -> Result<()> {
        ctx.accounts.handle(amount)
    }

    /// Withdraws an unlocked exit ticket to the signer's token account.
    pub fn withdraw_stake(ctx: Context<WithdrawStake>, index: u8) -> Result<()> {
        ctx.accounts.handle(index)
    }

    /// Closes the signer's empty stake account, returning the rent to the wallet.
    pub fn close_stake(ctx: Context<CloseStake>) -> Result<()> {
        ctx.accounts.handle()
    }

    /// Buys `tickets` at the current price (at most `max_price` each), paid to the treasury.
    pub fn buy_tickets(ctx: Context<BuyTickets>, tickets: u64, max_price: u64) -> Result<()> {
        ctx.accounts.handle(tickets, max_price, &ctx.bumps)
    }

    /// Takes up to `amount` of `wallet`'s stake (active, then pending, then exits) and moves
    /// it to the treasury. Signed by a configured slasher.
    pub fn slash(
        ctx: Context<Slash>,
        wallet: Pubkey,
        amount: u64,
        reason_hash: [u8; 32],
    ) -> Result<()> {
        ctx.accounts.handle(wallet, amount, reason_hash)
    }
}
