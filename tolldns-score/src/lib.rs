//! Integer scoring and epoch reward allocation for TollDNS miners.
//!
//! `tolldns-score` is the one implementation of the miner score and reward maths. Watchers and
//! settlement agents, the on-chain program and the C FFI all call it verbatim, so every party
//! computes the same reward to the base unit. It is `#![no_std]`, never allocates, uses integers
//! only (floor division, checked arithmetic) and reports every failure as a typed
//! [`ScoreError`]; no input can make it panic.
//!
//! The entry points are [`score_miner`], which turns a [`ScoreConfig`] and a miner's reported
//! [`MinerStats`] into a [`MinerScore`], and [`allocate`], which splits an epoch's reward pool
//! over the miners' normalized scores. Each formula is also a free function
//! ([`timeliness_component`], [`diversity_component`], [`weighted_component`], [`raw_score`],
//! [`apply_centralization_penalty`], [`penalize`], [`isqrt`], [`reward_share`]), and
//! [`epoch_start_slot`], [`epoch_end_slot`] and [`epoch_has_ended`] map epochs to slots.
//! `docs/SCORING.md` states the formulas, the rounding and the trust model.
//!
//! ```
//! use tolldns_score::{allocate, score_miner, MinerStats, ScoreConfig};
//!
//! let cfg = ScoreConfig {
//!     epoch_len_slots: 100,
//!     alpha_correctness_bps: 5_000,
//!     alpha_diversity_bps: 2_000,
//!     alpha_timeliness_bps: 2_000,
//!     alpha_uptime_bps: 1_000,
//!     centralization_penalty_bps: 2_000,
//!     dominance_threshold_bps: 2_500,
//!     diversity_target: 100,
//!     per_miner_epoch_cap: 50_000_000_000,
//!     min_miner_stake_weight: 1,
//! };
//! // Miner B of the upstream worked example, epoch 1 (slots 100..200).
//! let stats = MinerStats {
//!     stake_weight: 1_000,
//!     unique_name_count: 40,
//!     first_submit_slot: 105,
//!     uptime_score: 9_500,
//!     correctness_score: 10_000,
//!     dominance_share_bps: 2_000,
//! };
//! let score = score_miner(&cfg, 1, &stats)?;
//! assert_eq!(score.timeliness_component, 9_500);
//! assert_eq!(score.diversity_component, 4_000);
//! assert_eq!(score.component, 8_650);
//! assert_eq!(score.raw_score, 8_650_000);
//! assert_eq!(score.normalized_score, 2_941); // floor(sqrt(8_650_000))
//!
//! // Split a pool of 90 base units over three normalized scores, at most 40 each.
//! let mut rewards = [0u64; 3];
//! let totals = allocate(90, &[1, 2, 6], 40, &mut rewards)?;
//! assert_eq!(rewards, [10, 20, 40]); // the third share (60) is capped at 40
//! assert_eq!((totals.allocated, totals.unallocated), (70, 20));
//! # Ok::<(), tolldns_score::ScoreError>(())
//! ```
//!
//! # Cargo features
//!
//! None. The crate is always `no_std`, never uses `alloc`, and has no dependencies, so the
//! on-chain program and the C FFI link exactly the code that watchers test.
#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs)]
#![cfg_attr(
    not(test),
    deny(
        clippy::arithmetic_side_effects,
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::indexing_slicing,
        clippy::panic
    )
)]

use core::fmt;

/// The denominator of every basis-point value (`10_000` = 100 %).
pub const BPS_DENOM: u16 = 10_000;

/// The largest sub-score, component or basis-point value (`10_000`).
pub const SCORE_MAX: u16 = 10_000;

/// Scoring parameters of the reward program, as stored in its configuration account.
///
/// The weights (`alpha_*_bps`) must sum to exactly [`BPS_DENOM`]; see [`ScoreConfig::validate`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ScoreConfig {
    /// Length of a settlement epoch in slots; epoch `e` covers slots
    /// `[e × epoch_len_slots, (e + 1) × epoch_len_slots)`. Must be non-zero.
    pub epoch_len_slots: u64,
    /// Weight of `correctness_score` in the component, in basis points.
    pub alpha_correctness_bps: u16,
    /// Weight of the diversity component, in basis points.
    pub alpha_diversity_bps: u16,
    /// Weight of the timeliness component, in basis points.
    pub alpha_timeliness_bps: u16,
    /// Weight of `uptime_score` in the component, in basis points.
    pub alpha_uptime_bps: u16,
    /// Share of the raw score removed when a miner's dominance is above the threshold
    /// (basis points, at most [`BPS_DENOM`]).
    pub centralization_penalty_bps: u16,
    /// Dominance share above which (strictly) the centralization penalty applies
    /// (basis points, at most [`BPS_DENOM`]).
    pub dominance_threshold_bps: u16,
    /// Number of unique names that earns the full diversity component. Must be non-zero.
    pub diversity_target: u32,
    /// Largest reward one miner can receive for one epoch, in base units.
    pub per_miner_epoch_cap: u64,
    /// Smallest stake weight a miner must report to be scored.
    pub min_miner_stake_weight: u64,
}

impl ScoreConfig {
    /// Checks the configuration: non-zero epoch length and diversity target, weights summing
    /// to exactly [`BPS_DENOM`], penalty and threshold at most [`BPS_DENOM`].
    ///
    /// # Errors
    ///
    /// [`ScoreError::ZeroEpochLength`], [`ScoreError::ZeroDiversityTarget`],
    /// [`ScoreError::InvalidWeights`] or [`ScoreError::BpsOutOfRange`] (naming the field).
    pub const fn validate(&self) -> Result<(), ScoreError> {
        if self.epoch_len_slots == 0 {
            return Err(ScoreError::ZeroEpochLength);
        }
        if self.diversity_target == 0 {
            return Err(ScoreError::ZeroDiversityTarget);
        }
        let sum = weight_sum(self);
        if sum != BPS_DENOM as u32 {
            return Err(ScoreError::InvalidWeights { sum });
        }
        if let Err(e) = check_bps(
            Field::CentralizationPenaltyBps,
            self.centralization_penalty_bps,
        ) {
            return Err(e);
        }
        check_bps(Field::DominanceThresholdBps, self.dominance_threshold_bps)
    }
}

/// Sum of the four weights; four `u16` values cannot overflow a `u32`.
const fn weight_sum(cfg: &ScoreConfig) -> u32 {
    let a = cfg.alpha_correctness_bps as u32;
    let b = cfg.alpha_diversity_bps as u32;
    let c = cfg.alpha_timeliness_bps as u32;
    let d = cfg.alpha_uptime_bps as u32;
    // Each term is below 2^16, so the sum is below 2^18: wrapping never happens.
    a.wrapping_add(b).wrapping_add(c).wrapping_add(d)
}

/// A miner's reported statistics for one epoch (what the submitter reports on-chain).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MinerStats {
    /// The miner's stake weight; must be at least [`ScoreConfig::min_miner_stake_weight`].
    pub stake_weight: u64,
    /// Number of unique names the miner served in the epoch.
    pub unique_name_count: u32,
    /// Slot of the miner's first submission in the epoch (earlier is better).
    pub first_submit_slot: u64,
    /// Uptime sub-score, `0..=10_000`.
    pub uptime_score: u16,
    /// Correctness sub-score, `0..=10_000`.
    pub correctness_score: u16,
    /// The miner's share of the epoch's submissions, in basis points (`0..=10_000`).
    pub dominance_share_bps: u16,
}

impl MinerStats {
    /// Checks reported statistics against the configuration: `uptime_score`,
    /// `correctness_score` and `dominance_share_bps` at most `10_000`, and `stake_weight` at
    /// least `cfg.min_miner_stake_weight`. The configuration itself is not checked (see
    /// [`ScoreConfig::validate`]).
    ///
    /// # Errors
    ///
    /// [`ScoreError::ScoreOutOfRange`], [`ScoreError::BpsOutOfRange`] (naming the field) or
    /// [`ScoreError::InsufficientStake`].
    pub const fn validate(&self, cfg: &ScoreConfig) -> Result<(), ScoreError> {
        if let Err(e) = check_score(Field::UptimeScore, self.uptime_score) {
            return Err(e);
        }
        if let Err(e) = check_score(Field::CorrectnessScore, self.correctness_score) {
            return Err(e);
        }
        if let Err(e) = check_bps(Field::DominanceShareBps, self.dominance_share_bps) {
            return Err(e);
        }
        if self.stake_weight < cfg.min_miner_stake_weight {
            return Err(ScoreError::InsufficientStake {
                stake_weight: self.stake_weight,
                min_miner_stake_weight: cfg.min_miner_stake_weight,
            });
        }
        Ok(())
    }

    /// Returns these statistics with `correctness_score` lowered by `penalty_bps`, as the
    /// seed's `penalize_miner` does: `correctness × (10_000 − penalty_bps) / 10_000`, floored.
    ///
    /// # Errors
    ///
    /// [`ScoreError::BpsOutOfRange`] if `penalty_bps` is above `10_000`.
    pub fn penalize(&self, penalty_bps: u16) -> Result<Self, ScoreError> {
        let scaled = penalize(u128::from(self.correctness_score), penalty_bps)?;
        Ok(Self {
            correctness_score: u16::try_from(scaled).map_err(|_| ScoreError::Overflow)?,
            ..*self
        })
    }
}

/// A miner's score for one epoch, as computed by [`score_miner`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MinerScore {
    /// [`timeliness_component`], `0..=10_000`.
    pub timeliness_component: u16,
    /// [`diversity_component`], `0..=10_000`.
    pub diversity_component: u16,
    /// [`weighted_component`], `0..=10_000`.
    pub component: u16,
    /// `stake_weight × component`, after the centralization penalty.
    pub raw_score: u128,
    /// `isqrt(raw_score)`: the weight of the miner in the reward allocation.
    pub normalized_score: u128,
}

impl MinerScore {
    /// Returns this score with `raw_score` and `normalized_score` each lowered by
    /// `penalty_bps` (`x × (10_000 − penalty_bps) / 10_000`, floored), as the seed's
    /// `penalize_miner` does. The components are left as computed. Lowering
    /// `normalized_score` lowers the miner's reward in proportion.
    ///
    /// # Errors
    ///
    /// [`ScoreError::BpsOutOfRange`] if `penalty_bps` is above `10_000`;
    /// [`ScoreError::Overflow`] if a score is too large to scale (never for a score returned
    /// by [`score_miner`]).
    pub fn penalize(&self, penalty_bps: u16) -> Result<Self, ScoreError> {
        Ok(Self {
            raw_score: penalize(self.raw_score, penalty_bps)?,
            normalized_score: penalize(self.normalized_score, penalty_bps)?,
            ..*self
        })
    }
}

/// Totals of an [`allocate`] call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Allocation {
    /// `Σ normalized_i` over the miners.
    pub total_normalized: u128,
    /// `Σ reward_i`: what the miners receive.
    pub allocated: u64,
    /// `pool − allocated`: what caps and rounding leave in the vault.
    pub unallocated: u64,
}

/// A named input or output field, carried by range errors.
///
/// The names ([`Field::as_str`]) are the snake_case field names used by the account layouts,
/// the JSON vectors and the CLI.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Field {
    /// [`ScoreConfig::centralization_penalty_bps`].
    CentralizationPenaltyBps,
    /// [`ScoreConfig::dominance_threshold_bps`].
    DominanceThresholdBps,
    /// [`MinerStats::uptime_score`].
    UptimeScore,
    /// [`MinerStats::correctness_score`].
    CorrectnessScore,
    /// [`MinerStats::dominance_share_bps`].
    DominanceShareBps,
    /// A timeliness component passed to [`weighted_component`].
    TimelinessComponent,
    /// A diversity component passed to [`weighted_component`].
    DiversityComponent,
    /// A component passed to [`raw_score`].
    Component,
    /// The `penalty_bps` argument of [`penalize`].
    PenaltyBps,
}

impl Field {
    /// The field's snake_case name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::CentralizationPenaltyBps => "centralization_penalty_bps",
            Self::DominanceThresholdBps => "dominance_threshold_bps",
            Self::UptimeScore => "uptime_score",
            Self::CorrectnessScore => "correctness_score",
            Self::DominanceShareBps => "dominance_share_bps",
            Self::TimelinessComponent => "timeliness_component",
            Self::DiversityComponent => "diversity_component",
            Self::Component => "component",
            Self::PenaltyBps => "penalty_bps",
        }
    }
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a score or an allocation could not be computed.
///
/// [`ScoreError::code`] gives each variant a stable number for the FFI and the program;
/// codes are append-only and never reused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ScoreError {
    /// The four weights do not sum to exactly `10_000` (code 1).
    InvalidWeights {
        /// The sum of the four `alpha_*_bps` weights.
        sum: u32,
    },
    /// `epoch_len_slots` is zero (code 2).
    ZeroEpochLength,
    /// `diversity_target` is zero (code 3).
    ZeroDiversityTarget,
    /// A sub-score or component is above `10_000` (code 4).
    ScoreOutOfRange {
        /// Which field.
        field: Field,
        /// Its value.
        value: u16,
    },
    /// A basis-point value is above `10_000` (code 5).
    BpsOutOfRange {
        /// Which field.
        field: Field,
        /// Its value.
        value: u16,
    },
    /// The reported stake weight is below `min_miner_stake_weight` (code 6).
    InsufficientStake {
        /// The reported stake weight.
        stake_weight: u64,
        /// The configured minimum.
        min_miner_stake_weight: u64,
    },
    /// A miner's normalized score is larger than the total it is a share of (code 7).
    NormalizedAboveTotal {
        /// The miner's normalized score.
        normalized: u128,
        /// The total normalized score.
        total: u128,
    },
    /// The input and output slices of [`allocate`] differ in length (code 8).
    LengthMismatch {
        /// Length of the normalized-score slice.
        normalized: usize,
        /// Length of the output slice.
        out: usize,
    },
    /// An intermediate value does not fit its integer type (code 9).
    Overflow,
}

impl ScoreError {
    /// The stable numeric code of this error (`1..`), for the FFI and the program.
    /// Append-only: a retired code is never reused.
    pub const fn code(&self) -> u32 {
        match self {
            Self::InvalidWeights { .. } => 1,
            Self::ZeroEpochLength => 2,
            Self::ZeroDiversityTarget => 3,
            Self::ScoreOutOfRange { .. } => 4,
            Self::BpsOutOfRange { .. } => 5,
            Self::InsufficientStake { .. } => 6,
            Self::NormalizedAboveTotal { .. } => 7,
            Self::LengthMismatch { .. } => 8,
            Self::Overflow => 9,
        }
    }

    /// The variant's name (`"InvalidWeights"`, …), as used by `test-vectors/score.json`.
    pub const fn name(&self) -> &'static str {
        match self {
            Self::InvalidWeights { .. } => "InvalidWeights",
            Self::ZeroEpochLength => "ZeroEpochLength",
            Self::ZeroDiversityTarget => "ZeroDiversityTarget",
            Self::ScoreOutOfRange { .. } => "ScoreOutOfRange",
            Self::BpsOutOfRange { .. } => "BpsOutOfRange",
            Self::InsufficientStake { .. } => "InsufficientStake",
            Self::NormalizedAboveTotal { .. } => "NormalizedAboveTotal",
            Self::LengthMismatch { .. } => "LengthMismatch",
            Self::Overflow => "Overflow",
        }
    }

    /// The name of the input field at fault, when the error concerns one field.
    pub const fn field(&self) -> Option<&'static str> {
        match self {
            Self::ScoreOutOfRange { field, .. } | Self::BpsOutOfRange { field, .. } => {
                Some(field.as_str())
            }
            Self::ZeroEpochLength => Some("epoch_len_slots"),
            Self::ZeroDiversityTarget => Some("diversity_target"),
            Self::InsufficientStake { .. } => Some("stake_weight"),
            Self::InvalidWeights { .. }
            | Self::NormalizedAboveTotal { .. }
            | Self::LengthMismatch { .. }
            | Self::Overflow => None,
        }
    }
}

impl fmt::Display for ScoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InvalidWeights { sum } => write!(
                f,
                "alpha_*_bps weights sum to {sum}, they must sum to exactly {BPS_DENOM}"
            ),
            Self::ZeroEpochLength => f.write_str("epoch_len_slots: must not be zero"),
            Self::ZeroDiversityTarget => f.write_str("diversity_target: must not be zero"),
            Self::ScoreOutOfRange { field, value } | Self::BpsOutOfRange { field, value } => {
                write!(f, "{field}: {value} is above {SCORE_MAX}")
            }
            Self::InsufficientStake {
                stake_weight,
                min_miner_stake_weight,
            } => write!(
                f,
                "stake_weight: {stake_weight} is below min_miner_stake_weight {min_miner_stake_weight}"
            ),
            Self::NormalizedAboveTotal { normalized, total } => write!(
                f,
                "normalized score {normalized} is above the total normalized score {total}"
            ),
            Self::LengthMismatch { normalized, out } => write!(
                f,
                "{normalized} normalized scores but an output slice of length {out}"
            ),
            Self::Overflow => f.write_str("arithmetic overflow"),
        }
    }
}

impl core::error::Error for ScoreError {}

const fn check_score(field: Field, value: u16) -> Result<(), ScoreError> {
    if value > SCORE_MAX {
        Err(ScoreError::ScoreOutOfRange { field, value })
    } else {
        Ok(())
    }
}

const fn check_bps(field: Field, value: u16) -> Result<(), ScoreError> {
    if value > BPS_DENOM {
        Err(ScoreError::BpsOutOfRange { field, value })
    } else {
        Ok(())
    }
}

/// First slot of epoch `epoch_id`: `epoch_id × epoch_len_slots`.
///
/// # Errors
///
/// [`ScoreError::ZeroEpochLength`] if `epoch_len_slots` is zero; [`ScoreError::Overflow`] if
/// the product does not fit a `u64`.
pub const fn epoch_start_slot(epoch_id: u64, epoch_len_slots: u64) -> Result<u64, ScoreError> {
    if epoch_len_slots == 0 {
        return Err(ScoreError::ZeroEpochLength);
    }
    match epoch_id.checked_mul(epoch_len_slots) {
        Some(start) => Ok(start),
        None => Err(ScoreError::Overflow),
    }
}

/// End of epoch `epoch_id`, exclusive: `(epoch_id + 1) × epoch_len_slots`, the first slot of
/// the next epoch. The epoch covers `[epoch_start_slot, epoch_end_slot)`.
///
/// # Errors
///
/// [`ScoreError::ZeroEpochLength`] if `epoch_len_slots` is zero; [`ScoreError::Overflow`] if
/// the end does not fit a `u64` (the seed's program saturated here instead).
pub const fn epoch_end_slot(epoch_id: u64, epoch_len_slots: u64) -> Result<u64, ScoreError> {
    let start = match epoch_start_slot(epoch_id, epoch_len_slots) {
        Ok(start) => start,
        Err(e) => return Err(e),
    };
    match start.checked_add(epoch_len_slots) {
        Some(end) => Ok(end),
        None => Err(ScoreError::Overflow),
    }
}

/// Whether epoch `epoch_id` is over at `current_slot`, i.e.
/// `current_slot ≥ epoch_end_slot(epoch_id, epoch_len_slots)`. Reports and finalization are
/// accepted only for epochs that are over.
///
/// # Errors
///
/// As [`epoch_end_slot`]: an epoch whose end does not fit a `u64` never ends.
pub const fn epoch_has_ended(
    epoch_id: u64,
    epoch_len_slots: u64,
    current_slot: u64,
) -> Result<bool, ScoreError> {
    match epoch_end_slot(epoch_id, epoch_len_slots) {
        Ok(end) => Ok(current_slot >= end),
        Err(e) => Err(e),
    }
}

/// Timeliness component, `0..=10_000`: the share of the epoch that remained when the miner
/// first submitted.
///
/// `first = max(first_submit_slot, epoch_start_slot)`, `d = first − epoch_start_slot`,
/// `remaining = epoch_len_slots − min(d, epoch_len_slots)`,
/// result `= floor(remaining × 10_000 / epoch_len_slots)`. A first submission at or before the
/// epoch start scores `10_000`; one at or after the epoch end scores `0`.
///
/// # Errors
///
/// [`ScoreError::ZeroEpochLength`] if `epoch_len_slots` is zero.
pub fn timeliness_component(
    epoch_start_slot: u64,
    epoch_len_slots: u64,
    first_submit_slot: u64,
) -> Result<u16, ScoreError> {
    if epoch_len_slots == 0 {
        return Err(ScoreError::ZeroEpochLength);
    }
    let first = first_submit_slot.max(epoch_start_slot);
    let d = first
        .checked_sub(epoch_start_slot)
        .ok_or(ScoreError::Overflow)?;
    let remaining = epoch_len_slots
        .checked_sub(d.min(epoch_len_slots))
        .ok_or(ScoreError::Overflow)?;
    let scaled = u128::from(remaining)
        .checked_mul(u128::from(SCORE_MAX))
        .ok_or(ScoreError::Overflow)?
        .checked_div(u128::from(epoch_len_slots))
        .ok_or(ScoreError::Overflow)?;
    u16::try_from(scaled).map_err(|_| ScoreError::Overflow)
}

/// Diversity component, `0..=10_000`:
/// `min(10_000, floor(unique_name_count × 10_000 / diversity_target))`.
///
/// # Errors
///
/// [`ScoreError::ZeroDiversityTarget`] if `diversity_target` is zero.
pub fn diversity_component(
    unique_name_count: u32,
    diversity_target: u32,
) -> Result<u16, ScoreError> {
    if diversity_target == 0 {
        return Err(ScoreError::ZeroDiversityTarget);
    }
    let scaled = u128::from(unique_name_count)
        .checked_mul(u128::from(SCORE_MAX))
        .ok_or(ScoreError::Overflow)?
        .checked_div(u128::from(diversity_target))
        .ok_or(ScoreError::Overflow)?;
    let capped = scaled.min(u128::from(SCORE_MAX));
    u16::try_from(capped).map_err(|_| ScoreError::Overflow)
}

/// Weighted component, `0..=10_000`:
/// `floor((αc × correctness + αu × uptime + αd × diversity + αt × timeliness) / 10_000)`
/// with the weights of `cfg` (only the four `alpha_*_bps` fields are read).
///
/// # Errors
///
/// [`ScoreError::InvalidWeights`] if the weights do not sum to `10_000`;
/// [`ScoreError::ScoreOutOfRange`] if an input is above `10_000`.
pub fn weighted_component(
    cfg: &ScoreConfig,
    correctness_score: u16,
    uptime_score: u16,
    diversity_component: u16,
    timeliness_component: u16,
) -> Result<u16, ScoreError> {
    let sum = weight_sum(cfg);
    if sum != u32::from(BPS_DENOM) {
        return Err(ScoreError::InvalidWeights { sum });
    }
    check_score(Field::CorrectnessScore, correctness_score)?;
    check_score(Field::UptimeScore, uptime_score)?;
    check_score(Field::DiversityComponent, diversity_component)?;
    check_score(Field::TimelinessComponent, timeliness_component)?;
    let terms = [
        (cfg.alpha_correctness_bps, correctness_score),
        (cfg.alpha_uptime_bps, uptime_score),
        (cfg.alpha_diversity_bps, diversity_component),
        (cfg.alpha_timeliness_bps, timeliness_component),
    ];
    let mut acc: u128 = 0;
    for (weight, value) in terms {
        let term = u128::from(weight)
            .checked_mul(u128::from(value))
            .ok_or(ScoreError::Overflow)?;
        acc = acc.checked_add(term).ok_or(ScoreError::Overflow)?;
    }
    let component = acc
        .checked_div(u128::from(BPS_DENOM))
        .ok_or(ScoreError::Overflow)?;
    u16::try_from(component).map_err(|_| ScoreError::Overflow)
}

/// Raw score before the centralization penalty: `stake_weight × component`.
///
/// # Errors
///
/// [`ScoreError::ScoreOutOfRange`] if `component` is above `10_000`.
pub fn raw_score(stake_weight: u64, component: u16) -> Result<u128, ScoreError> {
    check_score(Field::Component, component)?;
    u128::from(stake_weight)
        .checked_mul(u128::from(component))
        .ok_or(ScoreError::Overflow)
}

/// The step centralization penalty: if `dominance_share_bps > dominance_threshold_bps`
/// (strictly), returns `floor(raw_score × (10_000 − centralization_penalty_bps) / 10_000)`,
/// otherwise `raw_score` unchanged.
///
/// # Errors
///
/// [`ScoreError::BpsOutOfRange`] if one of the three basis-point values is above `10_000`;
/// [`ScoreError::Overflow`] if `raw_score × 10_000` does not fit a `u128` (never for a raw
/// score from [`raw_score`]).
pub fn apply_centralization_penalty(
    raw_score: u128,
    dominance_share_bps: u16,
    dominance_threshold_bps: u16,
    centralization_penalty_bps: u16,
) -> Result<u128, ScoreError> {
    check_bps(Field::DominanceShareBps, dominance_share_bps)?;
    check_bps(Field::DominanceThresholdBps, dominance_threshold_bps)?;
    check_bps(Field::CentralizationPenaltyBps, centralization_penalty_bps)?;
    if dominance_share_bps > dominance_threshold_bps {
        scale_down(raw_score, centralization_penalty_bps)
    } else {
        Ok(raw_score)
    }
}

/// Lowers `value` by `penalty_bps`: `floor(value × (10_000 − penalty_bps) / 10_000)`.
///
/// This is the seed's `penalize_miner` arithmetic, applied to each of `correctness_score`,
/// `raw_score`, `normalized_score` (see [`MinerStats::penalize`] and [`MinerScore::penalize`])
/// and a reward. The result is never above `value`, so narrowing it back to the type `value`
/// came from cannot fail.
///
/// # Errors
///
/// [`ScoreError::BpsOutOfRange`] if `penalty_bps` is above `10_000`;
/// [`ScoreError::Overflow`] if `value × 10_000` does not fit a `u128`.
pub fn penalize(value: u128, penalty_bps: u16) -> Result<u128, ScoreError> {
    check_bps(Field::PenaltyBps, penalty_bps)?;
    scale_down(value, penalty_bps)
}

/// `floor(value × (10_000 − bps) / 10_000)`; `bps` already checked to be at most `10_000`.
fn scale_down(value: u128, bps: u16) -> Result<u128, ScoreError> {
    let keep = BPS_DENOM.checked_sub(bps).ok_or(ScoreError::Overflow)?;
    value
        .checked_mul(u128::from(keep))
        .ok_or(ScoreError::Overflow)?
        .checked_div(u128::from(BPS_DENOM))
        .ok_or(ScoreError::Overflow)
}

/// Exact floor square root: the largest `r` with `r × r ≤ n`. Always below `2^64`.
///
/// Used as `normalized_score = isqrt(raw_score)` (the seed's "reward ∝ sqrt(score)").
/// Computed digit by digit in base 4 with shifts and additions only (no division, no
/// floating point), in at most 64 steps.
pub const fn isqrt(n: u128) -> u128 {
    // Invariants, with `bit` a power of four and `root` the root of the part of `n` already
    // consumed, shifted: `root < 2 * bit` whenever `root + bit` is computed, so that sum stays
    // below 2^128, and `rem ≥ root + bit` is checked before subtracting.
    let mut rem = n;
    let mut root: u128 = 0;
    let mut bit: u128 = 1 << 126;
    while bit > rem {
        bit >>= 2;
    }
    while bit != 0 {
        let trial = root.wrapping_add(bit);
        if rem >= trial {
            rem = rem.wrapping_sub(trial);
            root = (root >> 1).wrapping_add(bit);
        } else {
            root >>= 1;
        }
        bit >>= 2;
    }
    root
}

/// Scores one miner for epoch `epoch_id`: validates `cfg` and `stats`, then computes
/// [`timeliness_component`] (from the epoch's start slot), [`diversity_component`],
/// [`weighted_component`], [`raw_score`], [`apply_centralization_penalty`] and
/// `normalized_score = `[`isqrt`]`(raw_score)`.
///
/// # Errors
///
/// Any error of [`ScoreConfig::validate`] or [`MinerStats::validate`];
/// [`ScoreError::Overflow`] if the epoch's start slot does not fit a `u64`.
pub fn score_miner(
    cfg: &ScoreConfig,
    epoch_id: u64,
    stats: &MinerStats,
) -> Result<MinerScore, ScoreError> {
    cfg.validate()?;
    stats.validate(cfg)?;
    let start = epoch_start_slot(epoch_id, cfg.epoch_len_slots)?;
    let timeliness = timeliness_component(start, cfg.epoch_len_slots, stats.first_submit_slot)?;
    let diversity = diversity_component(stats.unique_name_count, cfg.diversity_target)?;
    let component = weighted_component(
        cfg,
        stats.correctness_score,
        stats.uptime_score,
        diversity,
        timeliness,
    )?;
    let raw = raw_score(stats.stake_weight, component)?;
    let raw = apply_centralization_penalty(
        raw,
        stats.dominance_share_bps,
        cfg.dominance_threshold_bps,
        cfg.centralization_penalty_bps,
    )?;
    Ok(MinerScore {
        timeliness_component: timeliness,
        diversity_component: diversity,
        component,
        raw_score: raw,
        normalized_score: isqrt(raw),
    })
}

/// One miner's reward: `min(cap, floor(pool × normalized / total_normalized))`.
///
/// A `total_normalized` of zero (no miner earned anything) gives a reward of zero.
///
/// # Errors
///
/// [`ScoreError::NormalizedAboveTotal`] if `normalized > total_normalized`;
/// [`ScoreError::Overflow`] if `pool × normalized` does not fit a `u128`, which needs
/// `normalized ≥ 2^64` and so never happens for an [`isqrt`] result.
pub fn reward_share(
    pool: u64,
    normalized: u128,
    total_normalized: u128,
    cap: u64,
) -> Result<u64, ScoreError> {
    if normalized > total_normalized {
        return Err(ScoreError::NormalizedAboveTotal {
            normalized,
            total: total_normalized,
        });
    }
    if total_normalized == 0 {
        return Ok(0);
    }
    let share = u128::from(pool)
        .checked_mul(normalized)
        .ok_or(ScoreError::Overflow)?
        .checked_div(total_normalized)
        .ok_or(ScoreError::Overflow)?;
    // `normalized ≤ total` makes `share ≤ pool`, so it fits a u64.
    let share = u64::try_from(share).map_err(|_| ScoreError::Overflow)?;
    Ok(share.min(cap))
}

/// Allocates `pool` over the miners: `out[i] = `[`reward_share`]`(pool, normalized[i], Σ
/// normalized, cap)`.
///
/// The result satisfies `Σ out[i] + unallocated = pool` exactly and `out[i] ≤ cap`; a larger
/// normalized score never receives less, and the order of the miners does not matter. What
/// caps and rounding leave over is `unallocated` and stays in the vault.
///
/// # Errors
///
/// [`ScoreError::LengthMismatch`] if `out.len() != normalized.len()`;
/// [`ScoreError::Overflow`] if `Σ normalized` or some `pool × normalized[i]` does not fit a
/// `u128` (never for [`isqrt`] results). On error, `out` has not been written.
pub fn allocate(
    pool: u64,
    normalized: &[u128],
    cap: u64,
    out: &mut [u64],
) -> Result<Allocation, ScoreError> {
    if normalized.len() != out.len() {
        return Err(ScoreError::LengthMismatch {
            normalized: normalized.len(),
            out: out.len(),
        });
    }
    // The first two passes run every check that can fail, so `out` is written only on
    // success; the third repeats the (deterministic) shares of the second.
    let mut total: u128 = 0;
    for &n in normalized {
        total = total.checked_add(n).ok_or(ScoreError::Overflow)?;
    }
    let mut allocated: u64 = 0;
    for &n in normalized {
        let reward = reward_share(pool, n, total, cap)?;
        allocated = allocated.checked_add(reward).ok_or(ScoreError::Overflow)?;
    }
    // Σ floor(pool × nᵢ / total) ≤ pool, so this never fails.
    let unallocated = pool.checked_sub(allocated).ok_or(ScoreError::Overflow)?;
    for (&n, slot) in normalized.iter().zip(out.iter_mut()) {
        *slot = reward_share(pool, n, total, cap)?;
    }
    Ok(Allocation {
        total_normalized: total,
        allocated,
        unallocated,
    })
}

#[cfg(test)]
mod tests {
    extern crate std;

    use super::*;
    use std::string::ToString;

    /// The configuration of the upstream worked example (digest §2.6).
    const CFG: ScoreConfig = ScoreConfig {
        epoch_len_slots: 100,
        alpha_correctness_bps: 5_000,
        alpha_diversity_bps: 2_000,
        alpha_timeliness_bps: 2_000,
        alpha_uptime_bps: 1_000,
        centralization_penalty_bps: 2_000,
        dominance_threshold_bps: 2_500,
        diversity_target: 100,
        per_miner_epoch_cap: 50_000_000_000,
        min_miner_stake_weight: 1,
    };

    const fn stats(stake: u64, names: u32, first: u64, uptime: u16, dom: u16) -> MinerStats {
        MinerStats {
            stake_weight: stake,
            unique_name_count: names,
            first_submit_slot: first,
            uptime_score: uptime,
            correctness_score: 10_000,
            dominance_share_bps: dom,
        }
    }

    const A: MinerStats = stats(1_000, 10, 101, 9_000, 4_000);
    const B: MinerStats = stats(1_000, 40, 105, 9_500, 2_000);
    const C: MinerStats = stats(500, 90, 102, 9_800, 1_000);

    #[test]
    fn worked_example_matches_the_digest() {
        // (timeliness, diversity, component, raw, isqrt(raw)), computed by hand from §2.4.
        let expected = [
            (A, 9_900, 1_000, 8_080, 6_464_000, 2_542),
            (B, 9_500, 4_000, 8_650, 8_650_000, 2_941),
            (C, 9_800, 9_000, 9_740, 4_870_000, 2_206),
        ];
        for (s, t, d, c, raw, norm) in expected {
            let score = score_miner(&CFG, 1, &s).unwrap();
            assert_eq!(
                score,
                MinerScore {
                    timeliness_component: t,
                    diversity_component: d,
                    component: c,
                    raw_score: raw,
                    normalized_score: norm,
                }
            );
        }
        // A is above the dominance threshold: 8_080_000 × 0.8.
        assert_eq!(raw_score(1_000, 8_080).unwrap(), 8_080_000);
        assert_eq!(
            apply_centralization_penalty(8_080_000, 4_000, 2_500, 2_000).unwrap(),
            6_464_000
        );
    }

    #[test]
    fn worked_example_penalty_halves_a() {
        let score = score_miner(&CFG, 1, &A).unwrap();
        let penalized = score.penalize(5_000).unwrap();
        assert_eq!(penalized.raw_score, 3_232_000);
        assert_eq!(penalized.normalized_score, 1_271);
        assert_eq!(penalized.component, score.component);
        assert_eq!(A.penalize(5_000).unwrap().correctness_score, 5_000);
        assert_eq!(penalize(10_000_000_000, 5_000).unwrap(), 5_000_000_000);
        assert_eq!(penalize(7, 5_000).unwrap(), 3); // floor
        assert_eq!(penalize(7, 10_000).unwrap(), 0);
        assert_eq!(penalize(7, 0).unwrap(), 7);
        assert_eq!(
            penalize(7, 10_001),
            Err(ScoreError::BpsOutOfRange {
                field: Field::PenaltyBps,
                value: 10_001
            })
        );
        assert_eq!(penalize(u128::MAX, 1), Err(ScoreError::Overflow));
    }

    #[test]
    fn worked_example_allocation() {
        let normalized = [2_542, 2_941, 2_206];
        let mut out = [0; 3];
        let a = allocate(1_000_000_000_000, &normalized, 50_000_000_000, &mut out).unwrap();
        assert_eq!(out, [50_000_000_000; 3]);
        assert_eq!(a.total_normalized, 7_689);
        assert_eq!(a.allocated, 150_000_000_000);
        assert_eq!(a.unallocated, 850_000_000_000);
        // A smaller pool is not capped: floor(10^10 × n / 7689).
        let a = allocate(10_000_000_000, &normalized, 50_000_000_000, &mut out).unwrap();
        assert_eq!(out, [3_306_021_589, 3_824_944_726, 2_869_033_684]);
        assert_eq!(a.unallocated, 1);
    }

    #[test]
    fn dominance_threshold_is_strict() {
        assert_eq!(
            apply_centralization_penalty(1_000, 2_500, 2_500, 2_000),
            Ok(1_000)
        );
        assert_eq!(
            apply_centralization_penalty(1_000, 2_501, 2_500, 2_000),
            Ok(800)
        );
        assert_eq!(
            apply_centralization_penalty(1_000, 10_000, 10_000, 10_000),
            Ok(1_000)
        );
        assert_eq!(
            apply_centralization_penalty(1_000, 10_001, 2_500, 2_000),
            Err(ScoreError::BpsOutOfRange {
                field: Field::DominanceShareBps,
                value: 10_001
            })
        );
    }

    #[test]
    fn timeliness_edges() {
        assert_eq!(timeliness_component(100, 100, 0), Ok(10_000)); // before the start clamps
        assert_eq!(timeliness_component(100, 100, 100), Ok(10_000));
        assert_eq!(timeliness_component(100, 100, 199), Ok(100));
        assert_eq!(timeliness_component(100, 100, 200), Ok(0));
        assert_eq!(timeliness_component(100, 100, u64::MAX), Ok(0));
        assert_eq!(timeliness_component(0, 3, 1), Ok(6_666)); // floor(2 × 10000 / 3)
        assert_eq!(
            timeliness_component(0, 0, 1),
            Err(ScoreError::ZeroEpochLength)
        );
        assert_eq!(timeliness_component(u64::MAX, u64::MAX, 0), Ok(10_000));
    }

    #[test]
    fn diversity_edges() {
        assert_eq!(diversity_component(0, 100), Ok(0));
        assert_eq!(diversity_component(100, 100), Ok(10_000));
        assert_eq!(diversity_component(u32::MAX, 1), Ok(10_000));
        assert_eq!(diversity_component(1, 3), Ok(3_333));
        assert_eq!(
            diversity_component(1, 0),
            Err(ScoreError::ZeroDiversityTarget)
        );
    }

    #[test]
    fn weights_and_component_ranges() {
        let bad = ScoreConfig {
            alpha_uptime_bps: 999,
            ..CFG
        };
        assert_eq!(
            bad.validate(),
            Err(ScoreError::InvalidWeights { sum: 9_999 })
        );
        assert_eq!(
            weighted_component(&bad, 0, 0, 0, 0),
            Err(ScoreError::InvalidWeights { sum: 9_999 })
        );
        let max = ScoreConfig {
            alpha_correctness_bps: u16::MAX,
            alpha_diversity_bps: u16::MAX,
            alpha_timeliness_bps: u16::MAX,
            alpha_uptime_bps: u16::MAX,
            ..CFG
        };
        assert_eq!(
            max.validate(),
            Err(ScoreError::InvalidWeights { sum: 4 * 65_535 })
        );
        assert_eq!(
            weighted_component(&CFG, 10_000, 10_000, 10_000, 10_000),
            Ok(10_000)
        );
        assert_eq!(weighted_component(&CFG, 1, 1, 1, 1), Ok(1));
        assert_eq!(weighted_component(&CFG, 1, 0, 0, 0), Ok(0)); // floor(5000 / 10000)
        assert_eq!(
            weighted_component(&CFG, 10_000, 9_000, 1_000, 9_900),
            Ok(8_080)
        );
        assert_eq!(
            weighted_component(&CFG, 0, 0, 0, 10_001),
            Err(ScoreError::ScoreOutOfRange {
                field: Field::TimelinessComponent,
                value: 10_001
            })
        );
        assert_eq!(
            raw_score(u64::MAX, 10_000),
            Ok(u128::from(u64::MAX) * 10_000)
        );
        assert_eq!(
            raw_score(1, 10_001),
            Err(ScoreError::ScoreOutOfRange {
                field: Field::Component,
                value: 10_001
            })
        );
    }

    #[test]
    fn config_and_stats_validation() {
        assert_eq!(CFG.validate(), Ok(()));
        let zero_len = ScoreConfig {
            epoch_len_slots: 0,
            ..CFG
        };
        assert_eq!(zero_len.validate(), Err(ScoreError::ZeroEpochLength));
        let zero_target = ScoreConfig {
            diversity_target: 0,
            ..CFG
        };
        assert_eq!(zero_target.validate(), Err(ScoreError::ZeroDiversityTarget));
        let bad_threshold = ScoreConfig {
            dominance_threshold_bps: 10_001,
            ..CFG
        };
        assert_eq!(
            bad_threshold.validate().unwrap_err().field(),
            Some("dominance_threshold_bps")
        );
        let high_uptime = MinerStats {
            uptime_score: 12_000,
            ..A
        };
        let err = high_uptime.validate(&CFG).unwrap_err();
        assert_eq!(err.to_string(), "uptime_score: 12000 is above 10000");
        assert_eq!(score_miner(&CFG, 1, &high_uptime), Err(err));
        let poor = MinerStats {
            stake_weight: 0,
            ..A
        };
        assert_eq!(
            poor.validate(&CFG),
            Err(ScoreError::InsufficientStake {
                stake_weight: 0,
                min_miner_stake_weight: 1
            })
        );
        let dominant = MinerStats {
            dominance_share_bps: 10_001,
            ..A
        };
        assert_eq!(dominant.validate(&CFG).unwrap_err().code(), 5);
        assert_eq!(
            score_miner(&CFG, u64::MAX, &A),
            Err(ScoreError::Overflow),
            "the epoch start does not fit a u64"
        );
    }

    #[test]
    fn epoch_slots() {
        assert_eq!(epoch_start_slot(1, 100), Ok(100));
        assert_eq!(epoch_end_slot(1, 100), Ok(200));
        assert_eq!(epoch_has_ended(1, 100, 199), Ok(false));
        assert_eq!(epoch_has_ended(1, 100, 200), Ok(true));
        assert_eq!(epoch_start_slot(1, 0), Err(ScoreError::ZeroEpochLength));
        assert_eq!(epoch_start_slot(u64::MAX, 2), Err(ScoreError::Overflow));
        assert_eq!(epoch_start_slot(u64::MAX, 1), Ok(u64::MAX));
        assert_eq!(epoch_end_slot(u64::MAX, 1), Err(ScoreError::Overflow));
        assert_eq!(
            epoch_has_ended(u64::MAX, 1, u64::MAX),
            Err(ScoreError::Overflow)
        );
    }

    #[test]
    fn isqrt_known_values() {
        let cases: [(u128, u128); 10] = [
            (0, 0),
            (1, 1),
            (2, 1),
            (3, 1),
            (4, 2),
            (15, 3),
            (16, 4),
            (6_464_000, 2_542),
            (
                u128::from(u64::MAX) * u128::from(u64::MAX),
                u128::from(u64::MAX),
            ),
            (u128::MAX, u128::from(u64::MAX)),
        ];
        for (n, r) in cases {
            assert_eq!(isqrt(n), r, "isqrt({n})");
        }
    }

    #[test]
    fn reward_share_edges() {
        assert_eq!(reward_share(100, 0, 0, 1_000), Ok(0));
        assert_eq!(reward_share(100, 1, 3, 1_000), Ok(33));
        assert_eq!(reward_share(100, 3, 3, 50), Ok(50));
        assert_eq!(reward_share(u64::MAX, 1, 1, u64::MAX), Ok(u64::MAX));
        assert_eq!(
            reward_share(100, 4, 3, 1_000),
            Err(ScoreError::NormalizedAboveTotal {
                normalized: 4,
                total: 3
            })
        );
        assert_eq!(
            reward_share(2, u128::MAX, u128::MAX, 1_000),
            Err(ScoreError::Overflow)
        );
    }

    #[test]
    fn allocate_errors_leave_out_untouched() {
        let mut out = [7u64; 2];
        assert_eq!(
            allocate(100, &[1, 2, 3], 10, &mut out),
            Err(ScoreError::LengthMismatch {
                normalized: 3,
                out: 2
            })
        );
        assert_eq!(
            allocate(100, &[u128::MAX, 1], 10, &mut out),
            Err(ScoreError::Overflow)
        );
        assert_eq!(
            allocate(u64::MAX, &[1u128 << 65, 1], 10, &mut out),
            Err(ScoreError::Overflow)
        );
        assert_eq!(out, [7, 7]);
        let a = allocate(100, &[], 10, &mut []).unwrap();
        assert_eq!(
            (a.allocated, a.unallocated, a.total_normalized),
            (0, 100, 0)
        );
        let a = allocate(100, &[0, 0], 10, &mut out).unwrap();
        assert_eq!((out, a.unallocated), ([0, 0], 100));
    }

    #[test]
    fn error_codes_and_messages() {
        let errors = [
            ScoreError::InvalidWeights { sum: 1 },
            ScoreError::ZeroEpochLength,
            ScoreError::ZeroDiversityTarget,
            ScoreError::ScoreOutOfRange {
                field: Field::UptimeScore,
                value: 10_001,
            },
            ScoreError::BpsOutOfRange {
                field: Field::PenaltyBps,
                value: 10_001,
            },
            ScoreError::InsufficientStake {
                stake_weight: 0,
                min_miner_stake_weight: 1,
            },
            ScoreError::NormalizedAboveTotal {
                normalized: 2,
                total: 1,
            },
            ScoreError::LengthMismatch {
                normalized: 1,
                out: 2,
            },
            ScoreError::Overflow,
        ];
        for (i, e) in errors.iter().enumerate() {
            assert_eq!(e.code() as usize, i + 1, "{}", e.name());
        }
        assert_eq!(
            errors[5].to_string(),
            "stake_weight: 0 is below min_miner_stake_weight 1"
        );
        assert_eq!(errors[4].to_string(), "penalty_bps: 10001 is above 10000");
    }
}
