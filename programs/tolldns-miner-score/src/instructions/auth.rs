//! The allowlisted-submitter check, as nested account structs.
//!
//! Anchor deserializes and checks a nested `Accounts` struct while it reads the accounts, before
//! it creates any `init`/`init_if_needed` account of the outer struct. Putting the submitter
//! check here means an unauthorized signer is refused with
//! `MinerScoreError::Unauthorized` before it could
//! fail in (or pay for) an account creation.

use anchor_lang::prelude::*;

use crate::constants::CONFIG_SEED;
use crate::error::MinerScoreError;
use crate::state::MinerScoreConfig;

/// An allowlisted submitter and the (read-only) config.
#[derive(Accounts)]
pub struct SubmitterAuth<'info> {
    /// An allowlisted submitter; writable because it pays rent for accounts it creates.
    #[account(mut)]
    pub submitter: Signer<'info>,
    /// The config, holding the allowlist.
    #[account(
        seeds = [CONFIG_SEED],
        bump = config.bump,
        constraint = config.is_submitter(submitter.key) @ MinerScoreError::Unauthorized
    )]
    pub config: Account<'info, MinerScoreConfig>,
}

/// An allowlisted submitter and the writable config.
#[derive(Accounts)]
pub struct SubmitterAuthMut<'info> {
    /// An allowlisted submitter; writable because it pays rent for accounts it creates.
    #[account(mut)]
    pub submitter: Signer<'info>,
    /// The config, holding the allowlist.
    #[account(
        mut,
        seeds = [CONFIG_SEED],
        bump = config.bump,
        constraint = config.is_submitter(submitter.key) @ MinerScoreError::Unauthorized
    )]
    pub config: Account<'info, MinerScoreConfig>,
}
