//! The registered-watcher check, as a nested account struct.
//!
//! Anchor deserializes and checks a nested `Accounts` struct while it reads the accounts, before
//! it creates any `init`/`init_if_needed` account of the outer struct. Putting the watcher
//! check here means an unauthorized signer is refused with `MinerScoreError::Unauthorized`
//! before it could fail in (or pay for) an account creation.

use anchor_lang::prelude::*;

use crate::constants::CONFIG_SEED;
use crate::error::MinerScoreError;
use crate::state::MinerScoreConfig;

/// A watcher active in the current epoch, and the (read-only) config.
#[derive(Accounts)]
pub struct WatcherAuth<'info> {
    /// A registered watcher; writable because it pays rent for accounts it creates.
    #[account(mut)]
    pub watcher: Signer<'info>,
    /// The config, holding the watchers.
    #[account(
        seeds = [CONFIG_SEED],
        bump = config.bump,
        constraint = config.is_watcher_now(watcher.key) @ MinerScoreError::Unauthorized
    )]
    pub config: Box<Account<'info, MinerScoreConfig>>,
}
