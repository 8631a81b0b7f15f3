//! Account layouts and instruction argument types.
//!
//! All accounts are Borsh after Anchor's 8-byte discriminator, with a fixed size
//! (`8 + INIT_SPACE`); the allowlists are allocated at their bound so the config never needs a
//! realloc.

#![warn(missing_docs)]

use anchor_lang::prelude::*;
use tolldns_score::ScoreConfig;

use crate::constants::{MAX_MINERS, MAX_SUBMITTERS};
use crate::error::MinerScoreError;

/// Scoring parameters, stored in the config and snapshotted into each epoch's
/// [`EpochTotals`] at its first report, so that every miner of an epoch is scored and paid
/// under the same parameters even if the authority updates the config meanwhile.
///
/// The fields are those of [`tolldns_score::ScoreConfig`]; see that type for their meaning.
#[derive(AnchorSerialize, AnchorDeserialize, InitSpace, Clone, Copy, Debug, PartialEq, Eq)]
pub struct ScoreParams {
    /// Epoch length in slots; epoch `e` is `[e × len, (e + 1) × len)`. Fixed at init.
    pub epoch_len_slots: u64,
    /// Largest reward one miner can receive for one epoch, in base units of the mint.
    pub per_miner_epoch_cap: u64,
    /// Smallest stake weight a report may carry.
    pub min_miner_stake_weight: u64,
    /// Weight of the correctness sub-score (bps).
    pub alpha_correctness_bps: u16,
    /// Weight of the diversity component (bps).
    pub alpha_diversity_bps: u16,
    /// Weight of the timeliness component (bps).
    pub alpha_timeliness_bps: u16,
    /// Weight of the uptime sub-score (bps).
    pub alpha_uptime_bps: u16,
    /// Share of the raw score removed above the dominance threshold (bps).
    pub centralization_penalty_bps: u16,
    /// Dominance share above which (strictly) the penalty applies (bps).
    pub dominance_threshold_bps: u16,
    /// Unique names that earn the full diversity component.
    pub diversity_target: u32,
}

impl ScoreParams {
    /// The same parameters as a [`tolldns_score::ScoreConfig`].
    pub fn to_score_config(&self) -> ScoreConfig {
        ScoreConfig {
            epoch_len_slots: self.epoch_len_slots,
            alpha_correctness_bps: self.alpha_correctness_bps,
            alpha_diversity_bps: self.alpha_diversity_bps,
            alpha_timeliness_bps: self.alpha_timeliness_bps,
            alpha_uptime_bps: self.alpha_uptime_bps,
            centralization_penalty_bps: self.centralization_penalty_bps,
            dominance_threshold_bps: self.dominance_threshold_bps,
            diversity_target: self.diversity_target,
            per_miner_epoch_cap: self.per_miner_epoch_cap,
            min_miner_stake_weight: self.min_miner_stake_weight,
        }
    }

    /// Validates the parameters with [`ScoreConfig::validate`].
    ///
    /// # Errors
    ///
    /// The [`MinerScoreError`] mapped from the [`tolldns_score::ScoreError`].
    pub fn validate(&self) -> Result<()> {
        self.to_score_config()
            .validate()
            .map_err(MinerScoreError::from)?;
        Ok(())
    }
}

/// Arguments of `init_miner_score_config` and `update_miner_score_config`: the whole mutable
/// configuration (an update replaces it; `score.epoch_len_slots` must stay unchanged).
#[derive(AnchorSerialize, AnchorDeserialize, Clone, Debug, PartialEq, Eq)]
pub struct ConfigArgs {
    /// Upper bound of each epoch's reward pool, in base units.
    pub base_reward_per_epoch: u64,
    /// Scoring parameters.
    pub score: ScoreParams,
    /// Keys allowed to report, retract, finalize and penalize (at most 16).
    pub allowlisted_submitters: Vec<Pubkey>,
    /// Miners that may be reported (at most 64).
    pub allowlisted_miners: Vec<Pubkey>,
}

impl ConfigArgs {
    /// Checks the bounds of the allowlists, that they hold no duplicate key, and the scoring
    /// parameters.
    ///
    /// # Errors
    ///
    /// [`MinerScoreError::AllowlistTooLarge`], [`MinerScoreError::InvalidConfig`] (a duplicate
    /// key), or the scoring parameters' error.
    pub fn validate(&self) -> Result<()> {
        require!(
            self.allowlisted_submitters.len() <= MAX_SUBMITTERS
                && self.allowlisted_miners.len() <= MAX_MINERS,
            MinerScoreError::AllowlistTooLarge
        );
        require!(
            !has_duplicates(&self.allowlisted_submitters)
                && !has_duplicates(&self.allowlisted_miners),
            MinerScoreError::InvalidConfig
        );
        self.score.validate()
    }
}

/// Whether `keys` holds a key twice (quadratic; the lists are at most 64 long).
fn has_duplicates(keys: &[Pubkey]) -> bool {
    keys.iter().enumerate().any(|(i, k)| {
        keys.iter()
            .skip(i.saturating_add(1))
            .any(|other| other == k)
    })
}

/// The global configuration, PDA `["miner_score_config"]`.
#[account]
#[derive(InitSpace, Debug)]
pub struct MinerScoreConfig {
    /// May update the config and start an authority transfer.
    pub authority: Pubkey,
    /// The authority proposed by `transfer_authority`, until it accepts.
    pub pending_authority: Option<Pubkey>,
    /// Mint of the reward token.
    pub toll_mint: Pubkey,
    /// The reward vault (PDA `["reward_vault"]`).
    pub reward_vault: Pubkey,
    /// Bump of the vault-authority PDA.
    pub vault_authority_bump: u8,
    /// Bump of the reward-vault PDA.
    pub reward_vault_bump: u8,
    /// Bump of this PDA.
    pub bump: u8,
    /// Upper bound of each epoch's pool, in base units.
    pub base_reward_per_epoch: u64,
    /// Rewards fixed by finalized epochs and not yet released by claims: the part of the vault
    /// balance that is spoken for. `vault.amount ≥ committed_rewards` always holds.
    pub committed_rewards: u64,
    /// Scoring parameters applied to epochs whose first report arrives from now on.
    pub score: ScoreParams,
    /// Keys allowed to report, retract, finalize and penalize.
    #[max_len(MAX_SUBMITTERS)]
    pub allowlisted_submitters: Vec<Pubkey>,
    /// Miners that may be reported.
    #[max_len(MAX_MINERS)]
    pub allowlisted_miners: Vec<Pubkey>,
}

impl MinerScoreConfig {
    /// Whether `key` is an allowlisted submitter.
    pub fn is_submitter(&self, key: &Pubkey) -> bool {
        self.allowlisted_submitters.contains(key)
    }

    /// Whether `key` is an allowlisted miner.
    pub fn is_miner(&self, key: &Pubkey) -> bool {
        self.allowlisted_miners.contains(key)
    }
}

/// What a submitter reports for one miner and one epoch (argument of
/// `report_miner_epoch_stats`). Only the fields used by the score are checked;
/// `aggregates_submitted`, `unique_receipt_count` and `last_submit_slot` are stored for audit.
#[derive(AnchorSerialize, AnchorDeserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub struct MinerEpochReport {
    /// The miner's stake weight (trusted from the submitter; at least the configured minimum).
    pub stake_weight: u64,
    /// Number of receipt aggregates the miner submitted (audit only).
    pub aggregates_submitted: u32,
    /// Unique names served (drives the diversity component).
    pub unique_name_count: u32,
    /// Unique receipts (audit only).
    pub unique_receipt_count: u32,
    /// Slot of the miner's first submission; clamped into the epoch by the timeliness formula.
    pub first_submit_slot: u64,
    /// Slot of the miner's last submission (audit only; must not precede the first).
    pub last_submit_slot: u64,
    /// Uptime sub-score, `0..=10_000`.
    pub uptime_score: u16,
    /// Correctness sub-score, `0..=10_000`.
    pub correctness_score: u16,
    /// The miner's share of the epoch's submissions, in bps.
    pub dominance_share_bps: u16,
}

/// One miner's stats and score for one epoch, PDA `["miner_epoch", epoch_id LE, miner]`.
#[account]
#[derive(InitSpace, Debug)]
pub struct MinerEpochStats {
    /// The epoch.
    pub epoch_id: u64,
    /// The miner.
    pub miner: Pubkey,
    /// Whether this account holds a report (false only while being created).
    pub reported: bool,
    /// Reported stake weight.
    pub stake_weight: u64,
    /// Reported aggregate count (audit only).
    pub aggregates_submitted: u32,
    /// Reported unique names.
    pub unique_name_count: u32,
    /// Reported unique receipts (audit only).
    pub unique_receipt_count: u32,
    /// Reported first submission slot (as reported; the score clamps it into the epoch).
    pub first_submit_slot: u64,
    /// Reported last submission slot (audit only).
    pub last_submit_slot: u64,
    /// First slot of the epoch.
    pub epoch_start_slot: u64,
    /// End of the epoch (exclusive).
    pub epoch_end_slot: u64,
    /// Reported uptime sub-score.
    pub uptime_score: u16,
    /// Reported correctness sub-score.
    pub correctness_score: u16,
    /// Reported dominance share (bps).
    pub dominance_share_bps: u16,
    /// Computed diversity component.
    pub diversity_component: u16,
    /// Computed timeliness component.
    pub timeliness_component: u16,
    /// Computed weighted component.
    pub component: u16,
    /// Computed raw score (after the centralization penalty); counted in the epoch totals.
    pub raw_score: u128,
    /// `isqrt(raw_score)`; counted in the epoch totals.
    pub normalized_score: u128,
    /// Share of the reward the miner keeps after penalties (bps, starts at 10,000, only
    /// ever decreases).
    pub reward_keep_bps: u16,
    /// Number of penalties applied.
    pub penalty_count: u16,
    /// The reward paid at claim (zero until claimed).
    pub reward_amount: u64,
    /// Whether the reward was claimed.
    pub claimed: bool,
    /// The submitter that reported (and paid rent for) this account.
    pub submitted_by: Pubkey,
    /// Slot of the report.
    pub submitted_at_slot: u64,
    /// Bump of this PDA.
    pub bump: u8,
}

/// Per-epoch totals, PDA `["epoch_totals", epoch_id LE]`, accumulated on-chain as stats are
/// reported and retracted; nobody submits them.
#[account]
#[derive(InitSpace, Debug)]
pub struct EpochTotals {
    /// The epoch.
    pub epoch_id: u64,
    /// Whether this account was initialized (it is created by the first report or by
    /// finalization, whichever comes first).
    pub initialized: bool,
    /// The scoring parameters the epoch is scored and paid under (snapshot at creation).
    pub score: ScoreParams,
    /// `Σ raw_score` over the reported miners.
    pub total_raw_score: u128,
    /// `Σ normalized_score` over the reported miners.
    pub total_normalized_score: u128,
    /// Number of reported miners.
    pub miner_count: u32,
    /// Whether the epoch is finalized (no more reports; claims open).
    pub finalized: bool,
    /// Slot of finalization.
    pub finalized_at_slot: u64,
    /// The pool, fixed at finalization: `min(base_reward_per_epoch, uncommitted vault balance)`.
    pub reward_pool: u64,
    /// Number of miners that claimed.
    pub claimed_count: u32,
    /// `Σ reward` paid out.
    pub total_claimed: u64,
    /// Part of `reward_pool` released from the config's committed rewards so far.
    pub released: u64,
    /// Bump of this PDA.
    pub bump: u8,
}

/// Record of a claim, PDA `["claim", epoch_id LE, miner]`.
#[account]
#[derive(InitSpace, Debug)]
pub struct MinerClaimReceipt {
    /// The epoch.
    pub epoch_id: u64,
    /// The miner.
    pub miner: Pubkey,
    /// Amount paid (base units; may be zero).
    pub amount: u64,
    /// Slot of the claim.
    pub claimed_at_slot: u64,
    /// Bump of this PDA.
    pub bump: u8,
}
