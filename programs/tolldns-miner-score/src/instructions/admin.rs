//! Authority instructions: `update_miner_score_config`, `transfer_authority` (step one) and
//! `accept_authority` (step two).

use anchor_lang::prelude::*;

use crate::constants::CONFIG_SEED;
use crate::error::MinerScoreError;
use crate::events::{AuthorityTransferProposed, AuthorityTransferred, ConfigUpdated};
use crate::state::{ConfigArgs, MinerScoreConfig};

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
    pub config: Account<'info, MinerScoreConfig>,
}

impl AuthorityOnly<'_> {
    /// Replaces the mutable configuration. The new scoring parameters apply to epochs whose
    /// first report arrives afterwards (earlier epochs keep their snapshot); the new
    /// `base_reward_per_epoch` applies to the next finalization.
    ///
    /// # Errors
    ///
    /// [`MinerScoreError::EpochLengthImmutable`] if `epoch_len_slots` changes; the errors of
    /// [`ConfigArgs::validate`].
    pub fn update_config(&mut self, args: ConfigArgs) -> Result<()> {
        require!(
            args.score.epoch_len_slots == self.config.score.epoch_len_slots,
            MinerScoreError::EpochLengthImmutable
        );
        args.validate()?;
        let config = &mut self.config;
        config.base_reward_per_epoch = args.base_reward_per_epoch;
        config.score = args.score;
        config.allowlisted_submitters = args.allowlisted_submitters;
        config.allowlisted_miners = args.allowlisted_miners;
        emit!(ConfigUpdated {
            authority: self.authority.key()
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
    pub config: Account<'info, MinerScoreConfig>,
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
