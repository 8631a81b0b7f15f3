//! Authority instructions: `update_params`, the allowlist entries (`add_watcher`,
//! `remove_watcher`, `add_miner`, `remove_miner`), `transfer_authority` (step one) and
//! `accept_authority` (step two).
//!
//! Increases are time-locked: a parameter change other than lowering the base reward or the
//! per-miner cap applies from `now + timelock_epochs` on, and so does an allowlist addition.
//! Decreases and removals apply at once. Before the first epoch starts nothing is in force, so
//! every change applies from the first epoch.

use anchor_lang::prelude::*;

use crate::constants::{CONFIG_SEED, MAX_MINERS, MAX_WATCHERS};
use crate::error::MinerScoreError;
use crate::events::{
    AllowlistChanged, AuthorityTransferProposed, AuthorityTransferred, ParamsUpdated,
};
use crate::state::{AllowEntry, MinerScoreConfig, Params, PendingParams};

/// Accounts of the instructions signed by the current authority.
#[derive(Accounts)]
pub struct AuthorityOnly<'info> {
    /// The current authority.
    pub authority: Signer<'info>,
    /// The config.
    #[account(
        mut,
        seeds = [CONFIG_SEED],
        bump = config.bump,
        has_one = authority @ MinerScoreError::Unauthorized
    )]
    pub config: Box<Account<'info, MinerScoreConfig>>,
}

/// Adds `key` to `list` (bounded by `max`), counting from `active_from_epoch`.
fn add_entry(
    list: &mut Vec<AllowEntry>,
    max: usize,
    key: Pubkey,
    active_from_epoch: u64,
) -> Result<()> {
    require!(
        !list.iter().any(|e| e.key == key),
        MinerScoreError::AlreadyAllowlisted
    );
    require!(list.len() < max, MinerScoreError::AllowlistTooLarge);
    list.push(AllowEntry {
        key,
        active_from_epoch,
    });
    Ok(())
}

/// Removes `key` from `list`.
fn remove_entry(list: &mut Vec<AllowEntry>, key: Pubkey) -> Result<()> {
    let index = list
        .iter()
        .position(|e| e.key == key)
        .ok_or(MinerScoreError::NotAllowlisted)?;
    list.remove(index);
    Ok(())
}

impl AuthorityOnly<'_> {
    /// The current epoch.
    fn now_epoch(&self) -> Result<u64> {
        Ok(self.config.epoch_of(Clock::get()?.slot))
    }

    /// Changes the parameters. Lowering only `base_reward_per_epoch` and/or
    /// `per_miner_epoch_cap` applies at once (to every epoch not yet snapshotted, and to a
    /// pending change). Any other change is time-locked: it applies to epochs from
    /// `now + timelock_epochs` on and replaces a pending change that is not yet in force.
    /// An epoch keeps the parameters snapshotted when its totals were opened.
    ///
    /// # Errors
    ///
    /// [`MinerScoreError::EpochLengthImmutable`], [`MinerScoreError::ParamsChangeInFlight`]
    /// (the pending change already applies to the current or an earlier epoch: wait until
    /// the epochs before it are finalized), and [`Params::validate`]'s errors.
    pub fn update_params(&mut self, params: Params) -> Result<()> {
        require!(
            params.score.epoch_len_slots == self.config.params.score.epoch_len_slots,
            MinerScoreError::EpochLengthImmutable
        );
        params.validate()?;
        let now = self.now_epoch()?;
        let config = &mut self.config;
        config.promote_params();
        let (immediate, effective_epoch) = if now < config.timing.first_epoch {
            config.params = params;
            config.pending_params = None;
            (true, config.timing.first_epoch)
        } else {
            let latest = config.pending_params.map_or(config.params, |p| p.params);
            if params.only_lowers(&latest) {
                let current = &mut config.params;
                current.base_reward_per_epoch = current
                    .base_reward_per_epoch
                    .min(params.base_reward_per_epoch);
                current.score.per_miner_epoch_cap = current
                    .score
                    .per_miner_epoch_cap
                    .min(params.score.per_miner_epoch_cap);
                if let Some(pending) = config.pending_params.as_mut() {
                    pending.params = params;
                }
                (true, now)
            } else {
                if let Some(pending) = config.pending_params {
                    require!(
                        pending.effective_epoch > now,
                        MinerScoreError::ParamsChangeInFlight
                    );
                }
                let effective_epoch = config.locked_until(now)?;
                config.pending_params = Some(PendingParams {
                    params,
                    effective_epoch,
                });
                (false, effective_epoch)
            }
        };
        emit!(ParamsUpdated {
            authority: self.authority.key(),
            immediate,
            effective_epoch,
        });
        Ok(())
    }

    /// Adds a watcher, active from `now + timelock_epochs` (from the first epoch if it has
    /// not started).
    ///
    /// # Errors
    ///
    /// [`MinerScoreError::AlreadyAllowlisted`], [`MinerScoreError::AllowlistTooLarge`].
    pub fn add_watcher(&mut self, key: Pubkey) -> Result<()> {
        let from = self.config.locked_until(self.now_epoch()?)?;
        add_entry(&mut self.config.watchers, MAX_WATCHERS, key, from)?;
        emit!(AllowlistChanged {
            watchers: true,
            key,
            added: true,
            active_from_epoch: from,
        });
        Ok(())
    }

    /// Removes a watcher at once. Its reports already held keep counting.
    ///
    /// # Errors
    ///
    /// [`MinerScoreError::NotAllowlisted`].
    pub fn remove_watcher(&mut self, key: Pubkey) -> Result<()> {
        remove_entry(&mut self.config.watchers, key)?;
        emit!(AllowlistChanged {
            watchers: true,
            key,
            added: false,
            active_from_epoch: 0,
        });
        Ok(())
    }

    /// Adds a miner, reportable for epochs from `now + timelock_epochs` on (from the first
    /// epoch if it has not started).
    ///
    /// # Errors
    ///
    /// [`MinerScoreError::AlreadyAllowlisted`], [`MinerScoreError::AllowlistTooLarge`].
    pub fn add_miner(&mut self, key: Pubkey) -> Result<()> {
        let from = self.config.locked_until(self.now_epoch()?)?;
        add_entry(&mut self.config.miners, MAX_MINERS, key, from)?;
        emit!(AllowlistChanged {
            watchers: false,
            key,
            added: true,
            active_from_epoch: from,
        });
        Ok(())
    }

    /// Removes a miner at once: it can no longer be reported (stats already accepted keep
    /// their reward).
    ///
    /// # Errors
    ///
    /// [`MinerScoreError::NotAllowlisted`].
    pub fn remove_miner(&mut self, key: Pubkey) -> Result<()> {
        remove_entry(&mut self.config.miners, key)?;
        emit!(AllowlistChanged {
            watchers: false,
            key,
            added: false,
            active_from_epoch: 0,
        });
        Ok(())
    }

    /// Proposes `new_authority` (step one of two); `None` cancels a pending proposal.
    ///
    /// # Errors
    ///
    /// None beyond the account constraints.
    pub fn transfer_authority(&mut self, new_authority: Option<Pubkey>) -> Result<()> {
        self.config.pending_authority = new_authority;
        emit!(AuthorityTransferProposed {
            authority: self.authority.key(),
            pending_authority: new_authority,
        });
        Ok(())
    }
}

/// Accounts of `accept_authority`.
#[derive(Accounts)]
pub struct AcceptAuthority<'info> {
    /// The pending authority.
    pub new_authority: Signer<'info>,
    /// The config.
    #[account(mut, seeds = [CONFIG_SEED], bump = config.bump)]
    pub config: Box<Account<'info, MinerScoreConfig>>,
}

impl AcceptAuthority<'_> {
    /// Makes the pending authority the authority (step two of two).
    ///
    /// # Errors
    ///
    /// [`MinerScoreError::NoPendingAuthority`] if no transfer is pending;
    /// [`MinerScoreError::Unauthorized`] if the signer is not the pending authority.
    pub fn handle(&mut self) -> Result<()> {
        let pending = self
            .config
            .pending_authority
            .ok_or(MinerScoreError::NoPendingAuthority)?;
        require_keys_eq!(
            pending,
            self.new_authority.key(),
            MinerScoreError::Unauthorized
        );
        let previous = self.config.authority;
        self.config.authority = pending;
        self.config.pending_authority = None;
        emit!(AuthorityTransferred {
            previous_authority: previous,
            new_authority: pending,
        });
        Ok(())
    }
}
