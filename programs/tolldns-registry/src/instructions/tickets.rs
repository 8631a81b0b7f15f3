//! `buy_tickets`: the buyer pays `tickets × ticket_price` into the treasury and its quota at one
//! issuer (`["ticket_quota", buyer, issuer wallet]`) records the tickets for that issuer to
//! credit. Naming the issuer keeps one purchase from being credited by every issuer.

use anchor_lang::prelude::*;
use anchor_spl::token::{self, Token, TokenAccount, Transfer};

use crate::constants::{OPERATOR_SEED, REGISTRY_CONFIG_SEED, ROLE_ISSUER, TICKET_QUOTA_SEED};
use crate::error::RegistryError;
use crate::events::TicketsBought;
use crate::state::{Operator, OperatorStatus, RegistryConfig, TicketQuota};

/// Accounts of `buy_tickets`.
#[derive(Accounts)]
pub struct BuyTickets<'info> {
    /// The buyer; pays the quota account's rent on the first purchase.
    #[account(mut)]
    pub buyer: Signer<'info>,
    /// The registry config (price and treasury).
    #[account(seeds = [REGISTRY_CONFIG_SEED], bump = config.bump)]
    pub config: Box<Account<'info, RegistryConfig>>,
    /// The issuer the tickets are bought from: a registered operator with the issuer role
    /// (checked in the handler), PDA of its wallet.
    #[account(seeds = [OPERATOR_SEED, issuer.wallet.as_ref()], bump = issuer.bump)]
    pub issuer: Box<Account<'info, Operator>>,
    /// The buyer's quota at that issuer (created by the first purchase).
    #[account(
        init_if_needed,
        payer = buyer,
        space = 8 + TicketQuota::INIT_SPACE,
        seeds = [TICKET_QUOTA_SEED, buyer.key().as_ref(), issuer.wallet.as_ref()],
        bump
    )]
    pub ticket_quota: Box<Account<'info, TicketQuota>>,
    /// The buyer's TOLL token account, the source of the payment.
    #[account(
        mut,
        constraint = buyer_token_account.mint == config.toll_mint @ RegistryError::InvalidMint,
        constraint = buyer_token_account.owner == buyer.key() @ RegistryError::InvalidTokenOwner
    )]
    pub buyer_token_account: Box<Account<'info, TokenAccount>>,
    /// The treasury.
    #[account(mut, address = config.treasury @ RegistryError::InvalidTreasury)]
    pub treasury: Box<Account<'info, TokenAccount>>,
    /// The SPL token program.
    pub token_program: Program<'info, Token>,
    /// The system program.
    pub system_program: Program<'info, System>,
}

impl BuyTickets<'_> {
    /// Charges `tickets × ticket_price` (nothing moves at a price of 0) and adds the purchase
    /// to the quota.
    ///
    /// # Errors
    ///
    /// [`RegistryError::NotAnIssuer`] if the operator lacks the issuer role or is not
    /// active, [`RegistryError::ZeroAmount`] for zero tickets,
    /// [`RegistryError::PriceAboveLimit`] if the price is above `max_price`,
    /// [`RegistryError::MathOverflow`] and the token program's errors.
    pub fn handle(&mut self, tickets: u64, max_price: u64, bumps: &BuyTicketsBumps) -> Result<()> {
        require!(
            self.issuer.roles & ROLE_ISSUER != 0 && self.issuer.status == OperatorStatus::Active,
            RegistryError::NotAnIssuer
        );
        require!(tickets > 0, RegistryError::ZeroAmount);
        let price = self.config.ticket_price;
        require!(price <= max_price, RegistryError::PriceAboveLimit);
        let cost = tickets
            .checked_mul(price)
            .ok_or_else(|| error!(RegistryError::MathOverflow))?;
        if cost > 0 {
            token::transfer(
                CpiContext::new(
                    self.token_program.key(),
                    Transfer {
                        from: self.buyer_token_account.to_account_info(),
                        to: self.treasury.to_account_info(),
                        authority: self.buyer.to_account_info(),
                    },
                ),
                cost,
            )?;
        }
        let slot = Clock::get()?.slot;
        let quota = &mut self.ticket_quota;
        if quota.buyer == Pubkey::default() {
            quota.buyer = self.buyer.key();
            quota.issuer = self.issuer.wallet;
            quota.bump = bumps.ticket_quota;
        }
        quota.tickets_bought = quota
            .tickets_bought
            .checked_add(tickets)
            .ok_or_else(|| error!(RegistryError::MathOverflow))?;
        quota.total_paid = quota
            .total_paid
            .checked_add(cost)
            .ok_or_else(|| error!(RegistryError::MathOverflow))?;
        quota.purchases = quota
            .purchases
            .checked_add(1)
            .ok_or_else(|| error!(RegistryError::MathOverflow))?;
        quota.last_purchase_slot = slot;
        emit!(TicketsBought {
            buyer: self.buyer.key(),
            issuer: self.issuer.wallet,
            tickets,
            price,
            cost,
            tickets_bought_total: quota.tickets_bought,
        });
        Ok(())
    }
}
