//! `report_miner_epoch_stats`: a registered watcher reports (or replaces its report of) one
//! miner's stats for an epoch that has ended and whose reporting deadline has not passed. The
//! stake weight is read from the miner's stake account in the registry, never from the
//! watcher. Once K watchers have reported, the field-by-field median is scored with
//! `tolldns-score` and counts in the epoch totals.

use anchor_lang::prelude::*;
use tolldns_registry::constants::{REGISTRY_CONFIG_SEED, STAKE_SEED};
use tolldns_registry::state::{RegistryConfig, Stake};

use crate::constants::{EPOCH_TOTALS_SEED, MAX_WATCHERS, MINER_EPOCH_SEED};
use crate::epoch::{open_totals, require_reporting_open};
use crate::error::MinerScoreError;
use crate::events::MinerStatsReported;
use crate::scoring::{accept, check_report, withdraw};
use crate::state::{EpochTotals, MinerEpochReport, MinerEpochStats, WatcherReport};

// Glob: Anchor needs the nested struct's generated `__client_accounts_*` module and `*Bumps`.
use crate::instructions::auth::*;

/// Accounts of `report_miner_epoch_stats`.
#[derive(Accounts)]
#[instruction(epoch_id: u64, miner: Pubkey)]
pub struct ReportMinerEpochStats<'info> {
    /// A registered watcher (pays rent for the stats, and the totals if first) and the config;
    /// checked before any account is created.
    pub auth: WatcherAuth<'info>,
    /// The epoch's totals, created by the epoch's first report.
    #[account(
        init_if_needed,
        payer = auth.watcher,
        space = 8 + EpochTotals::INIT_SPACE,
        seeds = [EPOCH_TOTALS_SEED, &epoch_id.to_le_bytes()],
        bump
    )]
    pub epoch_totals: Box<Account<'info, EpochTotals>>,
    /// The miner's reports and stats for the epoch.
    #[account(
        init_if_needed,
        payer = auth.watcher,
        space = 8 + MinerEpochStats::INIT_SPACE,
        seeds = [MINER_EPOCH_SEED, &epoch_id.to_le_bytes(), miner.as_ref()],
        bump
    )]
    pub miner_epoch_stats: Box<Account<'info, MinerEpochStats>>,
    /// The registry's config (owner and PDA checked), for its epoch length.
    #[account(
        seeds = [REGISTRY_CONFIG_SEED],
        bump = registry_config.bump,
        seeds::program = tolldns_registry::ID
    )]
    pub registry_config: Box<Account<'info, RegistryConfig>>,
    /// The miner's stake account (owner, PDA of the miner's wallet, and epoch checked): the
    /// stake weight comes from here.
    #[account(
        seeds = [STAKE_SEED, miner.as_ref()],
        bump = stake.bump,
        seeds::program = tolldns_registry::ID
    )]
    pub stake: Box<Account<'info, Stake>>,
    /// The system program.
    pub system_program: Program<'info, System>,
}

impl ReportMinerEpochStats<'_> {
    /// Checks and records the watcher's report (replacing its earlier one), then recomputes
    /// the accepted stats and the epoch totals.
    ///
    /// # Errors
    ///
    /// [`MinerScoreError::Unauthorized`], [`MinerScoreError::BeforeFirstEpoch`],
    /// [`MinerScoreError::EpochFinalized`], [`MinerScoreError::EpochNotEnded`],
    /// [`MinerScoreError::ReportingClosed`], [`MinerScoreError::MinerNotAllowlisted`],
    /// [`MinerScoreError::EpochLengthMismatch`], [`MinerScoreError::ExitDelayTooShort`],
    /// [`MinerScoreError::ExitDelayTooLong`],
    /// [`MinerScoreError::StakeHistoryUnavailable`],
    /// [`MinerScoreError::InvalidSubmitSlots`], the mapped `tolldns-score` errors
    /// ([`MinerScoreError::InsufficientStakeWeight`], [`MinerScoreError::InvalidScore`],
    /// [`MinerScoreError::BpsOutOfRange`], …) and [`MinerScoreError::MathOverflow`].
    pub fn handle(
        &mut self,
        epoch_id: u64,
        miner: Pubkey,
        report: MinerEpochReport,
        bumps: &ReportMinerEpochStatsBumps,
    ) -> Result<()> {
        let config = &self.auth.config;
        let watcher = self.auth.watcher.key();
        let slot = Clock::get()?.slot;
        let (start, end) = require_reporting_open(config, epoch_id, slot)?;
        require!(
            config.is_miner_for(&miner, epoch_id),
            MinerScoreError::MinerNotAllowlisted
        );
        require!(
            self.registry_config.epoch_len_slots == config.params.score.epoch_len_slots,
            MinerScoreError::EpochLengthMismatch
        );
        // Stake that counted for the epoch must still be slashable while penalties for it can
        // land: an exit requested right after the epoch unlocks only after the reporting
        // deadline and the challenge window.
        let penalty_horizon = config
            .timing
            .reporting_deadline_slots
            .checked_add(config.timing.challenge_window_slots)
            .ok_or(MinerScoreError::MathOverflow)?;
        require!(
            self.registry_config.exit_delay_slots >= penalty_horizon,
            MinerScoreError::ExitDelayTooShort
        );
        // A new dispute authority (time-locked like every parameter) must not be able to slash
        // stake that could not leave after its announcement: an exit requested in the epoch
        // after the announcement must unlock before the change is in force.
        let escape = config
            .timing
            .timelock_epochs
            .saturating_sub(1)
            .checked_mul(config.params.score.epoch_len_slots)
            .ok_or(MinerScoreError::MathOverflow)?;
        require!(
            self.registry_config.exit_delay_slots <= escape,
            MinerScoreError::ExitDelayTooLong
        );
        let stake_weight = self
            .stake
            .weight_for_epoch(epoch_id)
            .map_err(|_| MinerScoreError::StakeHistoryUnavailable)?;

        let totals = &mut self.epoch_totals;
        open_totals(totals, config, epoch_id, watcher, bumps.epoch_totals);
        check_report(
            &totals.params.score.to_score_config(),
            epoch_id,
            &report,
            stake_weight,
        )?;

        let stats = &mut self.miner_epoch_stats;
        if stats.rent_payer == Pubkey::default() {
            stats.epoch_id = epoch_id;
            stats.miner = miner;
            stats.epoch_start_slot = start;
            stats.epoch_end_slot = end;
            stats.reward_keep_bps = tolldns_score::BPS_DENOM;
            stats.rent_payer = watcher;
            stats.bump = bumps.miner_epoch_stats;
            totals.open_stats = totals
                .open_stats
                .checked_add(1)
                .ok_or(MinerScoreError::MathOverflow)?;
        }
        withdraw(stats, totals)?;
        stats.stake_weight = stake_weight;
        let entry = WatcherReport {
            watcher,
            report,
            slot,
        };
        match stats.reports.iter_mut().find(|r| r.watcher == watcher) {
            Some(existing) => *existing = entry,
            None => {
                require!(
                    stats.reports.len() < MAX_WATCHERS,
                    MinerScoreError::AllowlistTooLarge
                );
                stats.reports.push(entry);
            }
        }
        stats.updated_at_slot = slot;
        accept(stats, totals)?;

        emit!(MinerStatsReported {
            epoch_id,
            miner,
            watcher,
            report_count: u8::try_from(stats.reports.len()).unwrap_or(u8::MAX),
            accepted: stats.accepted,
            raw_score: stats.raw_score,
            normalized_score: stats.normalized_score,
        });
        Ok(())
    }
}
