//! K-of-N acceptance: a miner's stats count in its epoch's totals once `quorum` watchers have
//! reported; they are the field-by-field median of the reports, scored with `tolldns-score`.

#![warn(missing_docs)]

use anchor_lang::prelude::*;
use tolldns_score::{score_miner, MinerStats, ScoreConfig};

use crate::error::MinerScoreError;
use crate::state::{EpochTotals, MinerEpochReport, MinerEpochStats};

/// `report` with `stake_weight` as [`tolldns_score::MinerStats`].
pub fn miner_stats(report: &MinerEpochReport, stake_weight: u64) -> MinerStats {
    MinerStats {
        stake_weight,
        unique_name_count: report.unique_name_count,
        first_submit_slot: report.first_submit_slot,
        uptime_score: report.uptime_score,
        correctness_score: report.correctness_score,
        dominance_share_bps: report.dominance_share_bps,
    }
}

/// Checks one report on its own: slots in order, sub-scores and shares in range, stake weight
/// at least the minimum.
///
/// # Errors
///
/// [`MinerScoreError::InvalidSubmitSlots`] and the mapped `tolldns-score` errors.
pub fn check_report(
    score: &ScoreConfig,
    epoch_id: u64,
    report: &MinerEpochReport,
    stake_weight: u64,
) -> Result<()> {
    require!(
        report.first_submit_slot <= report.last_submit_slot,
        MinerScoreError::InvalidSubmitSlots
    );
    score_miner(score, epoch_id, &miner_stats(report, stake_weight))
        .map_err(MinerScoreError::from)?;
    Ok(())
}

/// Removes the stats' contribution from the totals (if they were accepted).
///
/// # Errors
///
/// [`MinerScoreError::MathOverflow`] (totals inconsistent; never expected).
pub fn withdraw(stats: &mut MinerEpochStats, totals: &mut EpochTotals) -> Result<()> {
    if !stats.accepted {
        return Ok(());
    }
    totals.total_raw_score = totals
        .total_raw_score
        .checked_sub(stats.raw_score)
        .ok_or(MinerScoreError::MathOverflow)?;
    totals.total_normalized_score = totals
        .total_normalized_score
        .checked_sub(stats.normalized_score)
        .ok_or(MinerScoreError::MathOverflow)?;
    totals.miner_count = totals
        .miner_count
        .checked_sub(1)
        .ok_or(MinerScoreError::MathOverflow)?;
    stats.accepted = false;
    Ok(())
}

/// Recomputes the accepted stats from the reports held and adds them to the totals when the
/// quorum is reached (call [`withdraw`] first). Below the quorum the stats are zeroed.
///
/// # Errors
///
/// The mapped `tolldns-score` errors and [`MinerScoreError::MathOverflow`].
pub fn accept(stats: &mut MinerEpochStats, totals: &mut EpochTotals) -> Result<()> {
    if stats.reports.len() < usize::from(totals.params.quorum) {
        stats.stats = MinerEpochReport::default();
        stats.diversity_component = 0;
        stats.timeliness_component = 0;
        stats.component = 0;
        stats.raw_score = 0;
        stats.normalized_score = 0;
        return Ok(());
    }
    let median = MinerEpochReport::median(&stats.reports);
    let score = score_miner(
        &totals.params.score.to_score_config(),
        stats.epoch_id,
        &miner_stats(&median, stats.stake_weight),
    )
    .map_err(MinerScoreError::from)?;
    stats.stats = median;
    stats.diversity_component = score.diversity_component;
    stats.timeliness_component = score.timeliness_component;
    stats.component = score.component;
    stats.raw_score = score.raw_score;
    stats.normalized_score = score.normalized_score;
    stats.accepted = true;
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
    Ok(())
}
