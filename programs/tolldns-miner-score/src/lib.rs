//! # tolldns-miner-score
//!
//! The TollDNS miner scoring and epoch reward program (Anchor). It is the prototype's
//! `ddns_miner_score` rebuilt on [`tolldns_score`]: every score and reward number is computed by
//! that crate, the program only checks who may do what and when, and moves the numbers.
//!
//! ## Flow of an epoch
//!
//! 1. `init_miner_score_config` (once): config, reward vault (SPL token account PDA owned by
//!    the vault-authority PDA), allowlists, scoring parameters.
//! 2. After epoch `e` has ended (`slot ≥ (e + 1) × epoch_len_slots`), allowlisted submitters
//!    call `report_miner_epoch_stats` once per miner; the program scores each report and adds
//!    it to the epoch's [`EpochTotals`](state::EpochTotals). `retract_miner_epoch_stats` undoes
//!    an unpenalized report before finalization.
//! 3. `finalize_epoch` closes reporting and fixes the pool:
//!    `min(base_reward_per_epoch, vault balance − committed rewards)`.
//! 4. Each miner calls `claim_miner_reward`; the reward
//!    `min(cap, floor(pool × normalized / Σ normalized))`, lowered by any penalties, is computed
//!    on-chain and transferred from the vault.
//! 5. `penalize_miner` lowers an unclaimed reward at any time before the claim.
//!
//! Administration: `update_miner_score_config`, and the two-step `transfer_authority` /
//! `accept_authority`.
//!
//! Errors are [`MinerScoreError`](error::MinerScoreError) (codes from 6000, append-only).
//! See `programs/README.md` for the account, instruction and error tables and the trust model.

// Missing docs are checked per module (`#![warn(missing_docs)]` in every hand-written
// module): Anchor's macros generate items that cannot carry docs (`*Bumps` structs, the fields
// of `instruction::*`), so the lint cannot be crate-wide.
// Anchor's generated code uses `AccountInfo` APIs that the Solana 3 crates mark deprecated.
#![allow(deprecated)]

use anchor_lang::prelude::*;

pub mod constants;
pub mod epoch;
pub mod error;
pub mod events;
pub mod instructions;
pub mod reward;
pub mod state;

pub use instructions::*;
pub use state::{ConfigArgs, MinerEpochReport, ScoreParams};

declare_id!("5nnFdiGZBshPs7Cisvqqhu1hHz3xcBbFJ9297A4cSmZh");

/// The program's instructions. Each delegates to the handler on its accounts struct.
#[program]
pub mod tolldns_miner_score {
    use super::*;

    /// Creates the config and the reward vault. Runs once (the config PDA is `init`).
    pub fn init_miner_score_config(
        ctx: Context<InitMinerScoreConfig>,
        args: ConfigArgs,
    ) -> Result<()> {
        ctx.accounts.handle(args, &ctx.bumps)
    }

    /// Replaces the mutable configuration (authority only; `epoch_len_slots` is immutable).
    pub fn update_miner_score_config(ctx: Context<AuthorityOnly>, args: ConfigArgs) -> Result<()> {
        ctx.accounts.update_config(args)
    }

    /// Proposes a new authority (authority only); `None` cancels the proposal.
    pub fn transfer_authority(
        ctx: Context<AuthorityOnly>,
        new_authority: Option<Pubkey>,
    ) -> Result<()> {
        ctx.accounts.transfer_authority(new_authority)
    }

    /// Accepts a proposed authority transfer (signed by the proposed authority).
    pub fn accept_authority(ctx: Context<AcceptAuthority>) -> Result<()> {
        ctx.accounts.handle()
    }

    /// Reports and scores one miner's stats for an ended, unfinalized epoch.
    pub fn report_miner_epoch_stats(
        ctx: Context<ReportMinerEpochStats>,
        epoch_id: u64,
        miner: Pubkey,
        report: MinerEpochReport,
    ) -> Result<()> {
        ctx.accounts.handle(epoch_id, miner, report, &ctx.bumps)
    }

    /// Retracts an unpenalized report before finalization, correcting the totals.
    pub fn retract_miner_epoch_stats(
        ctx: Context<RetractMinerEpochStats>,
        epoch_id: u64,
        miner: Pubkey,
    ) -> Result<()> {
        ctx.accounts.handle(epoch_id, miner)
    }

    /// Finalizes an ended epoch and fixes its reward pool.
    pub fn finalize_epoch(ctx: Context<FinalizeEpoch>, epoch_id: u64) -> Result<()> {
        ctx.accounts.handle(epoch_id, &ctx.bumps)
    }

    /// Claims the signer's reward for a finalized epoch.
    pub fn claim_miner_reward(ctx: Context<ClaimMinerReward>, epoch_id: u64) -> Result<()> {
        ctx.accounts.handle(epoch_id, &ctx.bumps)
    }

    /// Lowers a miner's unclaimed reward for an epoch by `penalty_bps` (compounding).
    pub fn penalize_miner(
        ctx: Context<PenalizeMiner>,
        epoch_id: u64,
        miner: Pubkey,
        penalty_bps: u16,
        reason_hash: [u8; 32],
    ) -> Result<()> {
        ctx.accounts
            .handle(epoch_id, miner, penalty_bps, reason_hash)
    }
}
