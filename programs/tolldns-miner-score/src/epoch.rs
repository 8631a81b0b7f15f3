//! Epoch bookkeeping shared by the instructions: the clock checks and the creation of an
//! epoch's totals. The slot arithmetic itself is `tolldns-score`'s.

#![warn(missing_docs)]

use anchor_lang::prelude::*;
use tolldns_score::{epoch_end_slot, epoch_has_ended, epoch_start_slot};

use crate::error::MinerScoreError;
use crate::state::{EpochTotals, ScoreParams};

/// Initializes freshly created `totals` (no-op if already initialized): records the epoch,
/// its bump and the snapshot of the scoring parameters it will be scored and paid under.
pub fn open_totals(totals: &mut EpochTotals, epoch_id: u64, score: &ScoreParams, bump: u8) {
    if !totals.initialized {
        totals.initialized = true;
        totals.epoch_id = epoch_id;
        totals.score = *score;
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
