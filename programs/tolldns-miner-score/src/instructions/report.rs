//! `report_miner_epoch_stats`: an allowlisted submitter reports one miner's stats for an
//! epoch that has ended and is not finalized; the program scores them with `tolldns-score` and
//! adds them to the epoch totals.

use anchor_lang::prelude::*;
use tolldns_score::{score_miner, MinerStats};

use crate::constants::{EPOCH_TOTALS_SEED, MINER_EPOCH_SEED};
use crate::epoch::{open_totals, require_ended};
use crate::error::MinerScoreError;
use crate::events::MinerStatsReported;
use crate::state::{EpochTotals, MinerEpochReport, MinerEpochStats};

// Glob: Anchor needs the nested struct's generated `__client_accounts_*` module and `*Bumps`.
use crate::instructions::auth::*;

/// Accounts of `report_miner_epoch_stats`.
#[derive(Accounts)]
#[instruction(epoch_id: u64, miner: Pubkey)]
pub struct ReportMinerEpochStats<'info> {
    /// An allowlisted submitter (pays rent for the stats, and the totals if first) and the
    /// config; checked before any account is created.
    pub auth: SubmitterAuth<'info>,
    /// The epoch's totals, created by the epoch's first report.
    #[account(
        init_if_needed,
        payer = auth.submitter,
        space = 8 + EpochTotals::INIT_SPACE,
        seeds = [EPOCH_TOTALS_SEED, &epoch_id.to_le_bytes()],
        bump
    )]
    pub epoch_totals: Account<'info, EpochTotals>,
    /// The miner's stats for the epoch (one report per miner and epoch).
    #[account(
        init_if_needed,
        payer = auth.submitter,
        space = 8 + MinerEpochStats::INIT_SPACE,
        seeds = [MINER_EPOCH_SEED, &epoch_id.to_le_bytes(), miner.as_ref()],
        bump
    )]
    pub miner_epoch_stats: Account<'info, MinerEpochStats>,
    /// The system program.
    pub system_program: Program<'info, System>,
}

impl ReportMinerEpochStats<'_> {
    /// Checks, scores and records the report, and adds it to the epoch totals.
    ///
    /// # Errors
    ///
    /// [`MinerScoreError::Unauthorized`], [`MinerScoreError::MinerNotAllowlisted`],
    /// [`MinerScoreError::EpochNotEnded`], [`MinerScoreError::EpochFinalized`],
    /// [`MinerScoreError::AlreadyReported`], [`MinerScoreError::InvalidSubmitSlots`], the
    /// mapped `tolldns-score` errors ([`MinerScoreError::InsufficientStakeWeight`],
    /// [`MinerScoreError::InvalidScore`], [`MinerScoreError::BpsOutOfRange`], …) and
    /// [`MinerScoreError::MathOverflow`].
    pub fn handle(
        &mut self,
        epoch_id: u64,
        miner: Pubkey,
        report: MinerEpochReport,
        bumps: &ReportMinerEpochStatsBumps,
    ) -> Result<()> {
        let config = &self.auth.config;
        require!(
            config.is_miner(&miner),
            MinerScoreError::MinerNotAllowlisted
        );

        let slot = Clock::get()?.slot;
        let totals = &mut self.epoch_totals;
        open_totals(totals, epoch_id, &config.score, bumps.epoch_totals);
        require!(!totals.finalized, MinerScoreError::EpochFinalized);
        let (start, end) = require_ended(epoch_id, totals.score.epoch_len_slots, slot)?;

        let stats = &mut self.miner_epoch_stats;
        require!(!stats.reported, MinerScoreError::AlreadyReported);
        require!(
            report.first_submit_slot <= report.last_submit_slot,
            MinerScoreError::InvalidSubmitSlots
        );

        // All of the score maths is tolldns-score's; the program only moves the numbers.
        let score = score_miner(
            &totals.score.to_score_config(),
            epoch_id,
            &MinerStats {
                stake_weight: report.stake_weight,
                unique_name_count: report.unique_name_count,
                first_submit_slot: report.first_submit_slot,
                uptime_score: report.uptime_score,
                correctness_score: report.correctness_score,
                dominance_share_bps: report.dominance_share_bps,
            },
        )
        .map_err(MinerScoreError::from)?;

        totals.total_raw_score = totals
            .total_raw_score
            .checked_add(score.raw_score)
            .ok_or(MinerScoreError::MathOverflow)?;
        totals.total_normalized_score = totals
            .total_normalized_score
            .checked_add(score.normalized_score)
            .ok_or(MinerScoreError::MathOverflow)?;
        totals.miner_count = totals
            .miner_count
            .checked_add(1)
            .ok_or(MinerScoreError::MathOverflow)?;

        stats.set_inner(MinerEpochStats {
            epoch_id,
            miner,
            reported: true,
            stake_weight: report.stake_weight,
            aggregates_submitted: report.aggregates_submitted,
            unique_name_count: report.unique_name_count,
            unique_receipt_count: report.unique_receipt_count,
            first_submit_slot: report.first_submit_slot,
            last_submit_slot: report.last_submit_slot,
            epoch_start_slot: start,
            epoch_end_slot: end,
            uptime_score: report.uptime_score,
            correctness_score: report.correctness_score,
            dominance_share_bps: report.dominance_share_bps,
            diversity_component: score.diversity_component,
            timeliness_component: score.timeliness_component,
            component: score.component,
            raw_score: score.raw_score,
            normalized_score: score.normalized_score,
            reward_keep_bps: tolldns_score::BPS_DENOM,
            penalty_count: 0,
            reward_amount: 0,
            claimed: false,
            submitted_by: self.auth.submitter.key(),
            submitted_at_slot: slot,
            bump: bumps.miner_epoch_stats,
        });

        emit!(MinerStatsReported {
            epoch_id,
            miner,
            raw_score: score.raw_score,
            normalized_score: score.normalized_score,
        });
        Ok(())
    }
}
