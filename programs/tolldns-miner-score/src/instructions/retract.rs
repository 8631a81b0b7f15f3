//! `retract_miner_epoch_stats`: a watcher withdraws its own report before the reporting
//! deadline; the accepted stats and the totals are recomputed from the reports left.

use anchor_lang::prelude::*;

use crate::constants::{EPOCH_TOTALS_SEED, MINER_EPOCH_SEED};
use crate::epoch::require_reporting_open;
use crate::error::MinerScoreError;
use crate::events::MinerStatsRetracted;
use crate::scoring::{accept, withdraw};
use crate::state::{EpochTotals, MinerEpochStats};

// Glob: Anchor needs the nested struct's generated `__client_accounts_*` module and `*Bumps`.
use crate::instructions::auth::*;

/// Accounts of `retract_miner_epoch_stats`.
#[derive(Accounts)]
#[instruction(epoch_id: u64, miner: Pubkey)]
pub struct RetractMinerEpochStats<'info> {
    /// A registered watcher (the one whose report is withdrawn) and the config.
    pub auth: WatcherAuth<'info>,
    /// The epoch's totals.
    #[account(
        mut,
        seeds = [EPOCH_TOTALS_SEED, &epoch_id.to_le_bytes()],
        bump = epoch_totals.bump
    )]
    pub epoch_totals: Box<Account<'info, EpochTotals>>,
    /// The miner's reports and stats.
    #[account(
        mut,
        seeds = [MINER_EPOCH_SEED, &epoch_id.to_le_bytes(), miner.as_ref()],
        bump = miner_epoch_stats.bump
    )]
    pub miner_epoch_stats: Box<Account<'info, MinerEpochStats>>,
}

impl RetractMinerEpochStats<'_> {
    /// Removes the signer's report and recomputes the stats (the account stays; it is closed
    /// after finalization by `close_miner_epoch`).
    ///
    /// # Errors
    ///
    /// The reporting-window errors of `report_miner_epoch_stats`,
    /// [`MinerScoreError::NoReport`] and [`MinerScoreError::MathOverflow`].
    pub fn handle(&mut self, epoch_id: u64, miner: Pubkey) -> Result<()> {
        let watcher = self.auth.watcher.key();
        let slot = Clock::get()?.slot;
        require_reporting_open(&self.auth.config, epoch_id, slot)?;
        let stats = &mut self.miner_epoch_stats;
        let totals = &mut self.epoch_totals;
        let index = stats
            .reports
            .iter()
            .position(|r| r.watcher == watcher)
            .ok_or(MinerScoreError::NoReport)?;
        withdraw(stats, totals)?;
        stats.reports.remove(index);
        stats.updated_at_slot = slot;
        accept(stats, totals)?;
        emit!(MinerStatsRetracted {
            epoch_id,
            miner,
            watcher,
            report_count: u8::try_from(stats.reports.len()).unwrap_or(u8::MAX),
            accepted: stats.accepted,
        });
        Ok(())
    }
}
