//! Epoch bookkeeping shared by the instructions: the clock checks and the creation of an
//! epoch's totals. The slot arithmetic itself is `tolldns-score`'s.

#![warn(missing_docs)]

use anchor_lang::prelude::*;
use tolldns_score::{epoch_end_slot, epoch_has_ended, epoch_start_slot};

use crate::error::MinerScoreError;
use crate::state::{EpochTotals, MinerScoreConfig};

/// Initializes freshly created `totals` (no-op if already initialized): records the epoch,
/// its bump, who paid its rent, and the snapshot of the parameters it will be scored and paid
/// under (`config.params_for(epoch_id)`).
pub fn open_totals(
    totals: &mut EpochTotals,
    config: &MinerScoreConfig,
    epoch_id: u64,
    payer: Pubkey,
    bump: u8,
) {
    if !totals.initialized {
        totals.initialized = true;
        totals.epoch_id = epoch_id;
        totals.params = config.params_for(epoch_id);
        totals.rent_payer = payer;
        totals.bump = bump;
    }
}

/// Fails unless epoch `epoch_id` has ended at `slot` (`slot ≥ (epoch_id + 1) × len`); returns
/// the epoch's `(start, end)` slots.
///
/// # Errors
///
/// [`MinerScoreError::EpochNotEnded`], also for an epoch whose end does not fit a `u64`.
pub fn require_ended(epoch_id: u64, epoch_len_slots: u64, slot: u64) -> Result<(u64, u64)> {
    // An epoch whose end does not fit a u64 never ends.
    let ended = epoch_has_ended(epoch_id, epoch_len_slots, slot)
        .map_err(|_| MinerScoreError::EpochNotEnded)?;
    require!(ended, MinerScoreError::EpochNotEnded);
    let start = epoch_start_slot(epoch_id, epoch_len_slots).map_err(MinerScoreError::from)?;
    let end = epoch_end_slot(epoch_id, epoch_len_slots).map_err(MinerScoreError::from)?;
    Ok((start, end))
}

/// The first slot at which reports for an epoch ending at `end` are refused (and it can be
/// finalized): `end + reporting_deadline_slots`.
///
/// # Errors
///
/// [`MinerScoreError::MathOverflow`].
pub fn reporting_deadline(config: &MinerScoreConfig, end: u64) -> Result<u64> {
    Ok(end
        .checked_add(config.timing.reporting_deadline_slots)
        .ok_or(MinerScoreError::MathOverflow)?)
}

/// Fails unless reports for `epoch_id` are open at `slot`: the epoch is not before the first
/// epoch, not finalized, has ended, and its reporting deadline has not passed. Returns the
/// epoch's `(start, end)` slots.
///
/// # Errors
///
/// [`MinerScoreError::BeforeFirstEpoch`], [`MinerScoreError::EpochFinalized`],
/// [`MinerScoreError::EpochNotEnded`], [`MinerScoreError::ReportingClosed`].
pub fn require_reporting_open(
    config: &MinerScoreConfig,
    epoch_id: u64,
    slot: u64,
) -> Result<(u64, u64)> {
    require!(
        epoch_id >= config.timing.first_epoch,
        MinerScoreError::BeforeFirstEpoch
    );
    require!(
        epoch_id >= config.next_epoch_to_finalize,
        MinerScoreError::EpochFinalized
    );
    let (start, end) = require_ended(epoch_id, config.params.score.epoch_len_slots, slot)?;
    require!(
        slot < reporting_deadline(config, end)?,
        MinerScoreError::ReportingClosed
    );
    Ok((start, end))
}
