//! # tolldns-miner-score
//!
//! The TollDNS miner scoring and epoch reward program (Anchor). It is the prototype's
//! `ddns_miner_score` rebuilt on [`tolldns_score`]: every score and reward number is computed by
//! that crate, the program only checks who may do what and when, and moves the numbers.
//!
//! ## Flow of an epoch
//!
//! 1. `init_miner_score_config` (once): config, reward vault (SPL token account PDA owned by
//!    the vault-authority PDA), the parameters, the clock rules ([`Timing`]: first epoch,
//!    reporting deadline, challenge window, claim window, time lock) and the initial watchers
//!    and miners.
//! 2. After epoch `e` has ended and before `end(e) + reporting_deadline_slots`, each registered
//!    watcher calls `report_miner_epoch_stats` per miner (and may replace or retract its
//!    report). The stake weight is read from the miner's stake account in `tolldns-registry`.
//!    Once K watchers reported a miner, the field-by-field median is scored with
//!    `tolldns-score` and added to the epoch's [`EpochTotals`](state::EpochTotals).
//! 3. From the reporting deadline on, anyone calls `finalize_epoch` for the next epoch in
//!    order; it fixes the pool `min(base_reward_per_epoch, vault balance − committed rewards)`.
//! 4. During the challenge window the dispute authority may `penalize_miner` (and slash stake
//!    through the registry); claims wait.
//! 5. Each miner calls `claim_miner_reward` until the claim deadline; then `expire_epoch`
//!    returns the unclaimed rest to the uncommitted vault balance.
//! 6. `close_miner_epoch`, `close_claim_receipt` and `close_epoch_totals` return the rent of
//!    finished accounts.
//!
//! Administration: `update_params` (increases time-locked, decreases at once), `add_watcher`,
//! `remove_watcher`, `add_miner`, `remove_miner` (additions time-locked), and the two-step
//! `transfer_authority` / `accept_authority`.
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
pub mod scoring;
pub mod state;

pub use instructions::*;
pub use state::{InitArgs, MinerEpochReport, Params, ScoreParams, Timing};

declare_id!("5nnFdiGZBshPs7Cisvqqhu1hHz3xcBbFJ9297A4cSmZh");

/// The program's instructions. Each delegates to the handler on its accounts struct.
#[program]
pub mod tolldns_miner_score {
    use super::*;

    /// Creates the config and the reward vault. Runs once (the config PDA is `init`).
    pub fn init_miner_score_config(
        ctx: Context<InitMinerScoreConfig>,
        args: InitArgs,
    ) -> Result<()> {
        ctx.accounts.handle(args, &ctx.bumps)
    }

    /// Changes the parameters (authority only): lowering the base reward or the cap applies at
    /// once, anything else from `now + timelock_epochs`.
    pub fn update_params(ctx: Context<AuthorityOnly>, params: Params) -> Result<()> {
        ctx.accounts.update_params(params)
    }

    /// Adds a watcher (authority only), active after the time lock.
    pub fn add_watcher(ctx: Context<AuthorityOnly>, key: Pubkey) -> Result<()> {
        ctx.accounts.add_watcher(key)
    }

    /// Removes a watcher at once (authority only).
    pub fn remove_watcher(ctx: Context<AuthorityOnly>, key: Pubkey) -> Result<()> {
        ctx.accounts.remove_watcher(key)
    }

    /// Adds a miner (authority only), reportable after the time lock.
    pub fn add_miner(ctx: Context<AuthorityOnly>, key: Pubkey) -> Result<()> {
        ctx.accounts.add_miner(key)
    }

    /// Removes a miner at once (authority only).
    pub fn remove_miner(ctx: Context<AuthorityOnly>, key: Pubkey) -> Result<()> {
        ctx.accounts.remove_miner(key)
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

    /// A watcher reports (or replaces its report of) one miner's stats for an ended epoch
    /// before its reporting deadline.
    pub fn report_miner_epoch_stats(
        ctx: Context<ReportMinerEpochStats>,
        epoch_id: u64,
        miner: Pubkey,
        report: MinerEpochReport,
    ) -> Result<()> {
        ctx.accounts.handle(epoch_id, miner, report, &ctx.bumps)
    }

    /// A watcher withdraws its report before the reporting deadline.
    pub fn retract_miner_epoch_stats(
        ctx: Context<RetractMinerEpochStats>,
        epoch_id: u64,
        miner: Pubkey,
    ) -> Result<()> {
        ctx.accounts.handle(epoch_id, miner)
    }

    /// Finalizes the next epoch in order after its reporting deadline and fixes its pool.
    pub fn finalize_epoch(ctx: Context<FinalizeEpoch>, epoch_id: u64) -> Result<()> {
        ctx.accounts.handle(epoch_id, &ctx.bumps)
    }

    /// Claims the signer's reward for a finalized epoch, after the challenge window and
    /// before the claim deadline.
    pub fn claim_miner_reward(ctx: Context<ClaimMinerReward>, epoch_id: u64) -> Result<()> {
        ctx.accounts.handle(epoch_id, &ctx.bumps)
    }

    /// The dispute authority lowers a miner's unclaimed reward by `penalty_bps` (compounding)
    /// and slashes up to `slash_amount` of its stake, until the challenge window closes.
    pub fn penalize_miner(
        ctx: Context<PenalizeMiner>,
        epoch_id: u64,
        miner: Pubkey,
        penalty_bps: u16,
        slash_amount: u64,
        reason_hash: [u8; 32],
    ) -> Result<()> {
        ctx.accounts
            .handle(epoch_id, miner, penalty_bps, slash_amount, reason_hash)
    }

    /// Returns an epoch's unclaimed rewards to the uncommitted vault balance after its claim
    /// deadline.
    pub fn expire_epoch(ctx: Context<ExpireEpoch>, epoch_id: u64) -> Result<()> {
        ctx.accounts.handle(epoch_id)
    }

    /// Closes a settled miner's stats; the rent goes to the watcher that paid it.
    pub fn close_miner_epoch(
        ctx: Context<CloseMinerEpoch>,
        _epoch_id: u64,
        _miner: Pubkey,
    ) -> Result<()> {
        ctx.accounts.handle()
    }

    /// Closes the signer's claim receipt; the rent goes back to the miner.
    pub fn close_claim_receipt(_ctx: Context<CloseClaimReceipt>, _epoch_id: u64) -> Result<()> {
        Ok(())
    }

    /// Closes a settled epoch's totals; the rent goes to whoever paid it.
    pub fn close_epoch_totals(ctx: Context<CloseEpochTotals>, _epoch_id: u64) -> Result<()> {
        ctx.accounts.handle()
    }
}
