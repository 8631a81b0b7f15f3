//! Miner scoring and reward allocation (`tolldns-score`), over caller-owned structures and
//! arrays. Every function here is pure and thread-safe.

use tolldns_score as score;

use crate::boundary::{FfiResult, Out, guard, input_ref, input_slice};
use crate::tolldns_result;

/// The denominator of every basis-point value (10000 = 100 %).
pub const TOLLDNS_BPS_DENOM: u16 = 10_000;
/// The largest sub-score, component or basis-point value.
pub const TOLLDNS_SCORE_MAX: u16 = 10_000;

/// An unsigned 128-bit integer as two 64-bit halves, `value = hi × 2^64 + lo`, because C99
/// has no portable 128-bit type (and 32-bit ARM compilers have none at all).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct tolldns_u128 {
    /// The low 64 bits.
    pub lo: u64,
    /// The high 64 bits.
    pub hi: u64,
}

impl From<u128> for tolldns_u128 {
    fn from(v: u128) -> Self {
        Self {
            // Truncation is the point: the low and the high half.
            lo: v as u64,
            hi: (v >> 64) as u64,
        }
    }
}

impl From<tolldns_u128> for u128 {
    fn from(v: tolldns_u128) -> Self {
        (Self::from(v.hi) << 64) | Self::from(v.lo)
    }
}

/// Scoring parameters of the reward program (the program's configuration account).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct tolldns_score_config {
    /// Length of a settlement epoch in slots; must be non-zero.
    pub epoch_len_slots: u64,
    /// Weight of `correctness_score`, in basis points.
    pub alpha_correctness_bps: u16,
    /// Weight of the diversity component, in basis points.
    pub alpha_diversity_bps: u16,
    /// Weight of the timeliness component, in basis points.
    pub alpha_timeliness_bps: u16,
    /// Weight of `uptime_score`, in basis points. The four weights sum to 10000.
    pub alpha_uptime_bps: u16,
    /// Share of the raw score removed above the dominance threshold, in basis points.
    pub centralization_penalty_bps: u16,
    /// Dominance share above which (strictly) the penalty applies, in basis points.
    pub dominance_threshold_bps: u16,
    /// Number of unique names that earns the full diversity component; must be non-zero.
    pub diversity_target: u32,
    /// Largest reward one miner can receive for one epoch, in base units.
    pub per_miner_epoch_cap: u64,
    /// Smallest stake weight a miner must report to be scored.
    pub min_miner_stake_weight: u64,
}

impl From<&tolldns_score_config> for score::ScoreConfig {
    fn from(c: &tolldns_score_config) -> Self {
        Self {
            epoch_len_slots: c.epoch_len_slots,
            alpha_correctness_bps: c.alpha_correctness_bps,
            alpha_diversity_bps: c.alpha_diversity_bps,
            alpha_timeliness_bps: c.alpha_timeliness_bps,
            alpha_uptime_bps: c.alpha_uptime_bps,
            centralization_penalty_bps: c.centralization_penalty_bps,
            dominance_threshold_bps: c.dominance_threshold_bps,
            diversity_target: c.diversity_target,
            per_miner_epoch_cap: c.per_miner_epoch_cap,
            min_miner_stake_weight: c.min_miner_stake_weight,
        }
    }
}

/// A miner's reported statistics for one epoch.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct tolldns_miner_stats {
    /// The miner's stake weight.
    pub stake_weight: u64,
    /// Number of unique names served in the epoch.
    pub unique_name_count: u32,
    /// Slot of the miner's first submission in the epoch.
    pub first_submit_slot: u64,
    /// Uptime sub-score, 0..=10000.
    pub uptime_score: u16,
    /// Correctness sub-score, 0..=10000.
    pub correctness_score: u16,
    /// The miner's share of the epoch's submissions, in basis points.
    pub dominance_share_bps: u16,
}

impl From<&tolldns_miner_stats> for score::MinerStats {
    fn from(s: &tolldns_miner_stats) -> Self {
        Self {
            stake_weight: s.stake_weight,
            unique_name_count: s.unique_name_count,
            first_submit_slot: s.first_submit_slot,
            uptime_score: s.uptime_score,
            correctness_score: s.correctness_score,
            dominance_share_bps: s.dominance_share_bps,
        }
    }
}

impl From<score::MinerStats> for tolldns_miner_stats {
    fn from(s: score::MinerStats) -> Self {
        Self {
            stake_weight: s.stake_weight,
            unique_name_count: s.unique_name_count,
            first_submit_slot: s.first_submit_slot,
            uptime_score: s.uptime_score,
            correctness_score: s.correctness_score,
            dominance_share_bps: s.dominance_share_bps,
        }
    }
}

/// A miner's score for one epoch.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct tolldns_miner_score {
    /// Timeliness component, 0..=10000.
    pub timeliness_component: u16,
    /// Diversity component, 0..=10000.
    pub diversity_component: u16,
    /// Weighted component, 0..=10000.
    pub component: u16,
    /// `stake_weight × component`, after the centralization penalty.
    pub raw_score: tolldns_u128,
    /// `isqrt(raw_score)`: the miner's weight in the reward allocation.
    pub normalized_score: tolldns_u128,
}

impl From<&tolldns_miner_score> for score::MinerScore {
    fn from(s: &tolldns_miner_score) -> Self {
        Self {
            timeliness_component: s.timeliness_component,
            diversity_component: s.diversity_component,
            component: s.component,
            raw_score: s.raw_score.into(),
            normalized_score: s.normalized_score.into(),
        }
    }
}

impl From<score::MinerScore> for tolldns_miner_score {
    fn from(s: score::MinerScore) -> Self {
        Self {
            timeliness_component: s.timeliness_component,
            diversity_component: s.diversity_component,
            component: s.component,
            raw_score: s.raw_score.into(),
            normalized_score: s.normalized_score.into(),
        }
    }
}

/// Totals of a [`tolldns_allocate`] call.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct tolldns_allocation {
    /// Sum of the normalized scores.
    pub total_normalized: tolldns_u128,
    /// Sum of the rewards: what the miners receive.
    pub allocated: u64,
    /// `pool − allocated`: what caps and rounding leave in the vault.
    pub unallocated: u64,
}

/// Checks a scoring configuration: non-zero epoch length and diversity target, weights summing
/// to exactly 10000, penalty and threshold at most 10000.
///
/// # Errors
///
/// `TOLLDNS_RESULT_NULL_PARAMETER` or a `TOLLDNS_RESULT_SCORE_*` code.
///
/// # Safety
///
/// `cfg` must point to a valid `tolldns_score_config`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tolldns_score_config_validate(
    cfg: *const tolldns_score_config,
) -> tolldns_result {
    guard(|| -> FfiResult {
        // SAFETY: the caller guarantees `cfg` points to a valid configuration.
        let cfg = score::ScoreConfig::from(unsafe { input_ref(cfg) }?);
        cfg.validate()?;
        Ok(())
    })
}

/// Checks reported statistics against a configuration (sub-scores and dominance at most
/// 10000, stake at least `min_miner_stake_weight`). The configuration itself is not checked.
///
/// # Errors
///
/// `TOLLDNS_RESULT_NULL_PARAMETER` or a `TOLLDNS_RESULT_SCORE_*` code.
///
/// # Safety
///
/// `stats` and `cfg` must point to valid structures.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tolldns_miner_stats_validate(
    stats: *const tolldns_miner_stats,
    cfg: *const tolldns_score_config,
) -> tolldns_result {
    guard(|| -> FfiResult {
        // SAFETY: the caller guarantees both pointers point to valid structures.
        let (stats, cfg) = unsafe { (input_ref(stats)?, input_ref(cfg)?) };
        score::MinerStats::from(stats).validate(&cfg.into())?;
        Ok(())
    })
}

/// Writes to `*out` the statistics with `correctness_score` lowered by `penalty_bps`
/// (`correctness × (10000 − penalty_bps) / 10000`, floored). `out` may equal `stats`.
///
/// # Errors
///
/// `TOLLDNS_RESULT_NULL_PARAMETER`; `TOLLDNS_RESULT_SCORE_BPS_OUT_OF_RANGE`.
///
/// # Safety
///
/// `stats` must point to a valid structure and `out` must be writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tolldns_miner_stats_penalize(
    stats: *const tolldns_miner_stats,
    penalty_bps: u16,
    out: *mut tolldns_miner_stats,
) -> tolldns_result {
    guard(|| -> FfiResult {
        // SAFETY: the caller guarantees `stats` points to a valid structure; it is copied
        // before `out` (which may alias it) is written.
        let stats = score::MinerStats::from(unsafe { input_ref(stats) }?);
        let out = Out::new(out)?;
        let penalized = stats.penalize(penalty_bps)?;
        // SAFETY: the caller guarantees `out` is writable.
        unsafe { out.write(penalized.into()) };
        Ok(())
    })
}

/// Writes to `*out` the score with `raw_score` and `normalized_score` each lowered by
/// `penalty_bps`; the components are unchanged. `out` may equal `score`.
///
/// # Errors
///
/// `TOLLDNS_RESULT_NULL_PARAMETER`; `TOLLDNS_RESULT_SCORE_BPS_OUT_OF_RANGE`;
/// `TOLLDNS_RESULT_SCORE_OVERFLOW`.
///
/// # Safety
///
/// `score` must point to a valid structure and `out` must be writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tolldns_miner_score_penalize(
    score: *const tolldns_miner_score,
    penalty_bps: u16,
    out: *mut tolldns_miner_score,
) -> tolldns_result {
    guard(|| -> FfiResult {
        // SAFETY: the caller guarantees `score` points to a valid structure; it is copied
        // before `out` (which may alias it) is written.
        let s = score::MinerScore::from(unsafe { input_ref(score) }?);
        let out = Out::new(out)?;
        let penalized = s.penalize(penalty_bps)?;
        // SAFETY: the caller guarantees `out` is writable.
        unsafe { out.write(penalized.into()) };
        Ok(())
    })
}

/// Scores one miner for epoch `epoch_id`: validates `cfg` and `stats`, then computes the
/// timeliness, diversity and weighted components, the raw score after the centralization
/// penalty, and `normalized_score = isqrt(raw_score)`.
///
/// # Errors
///
/// `TOLLDNS_RESULT_NULL_PARAMETER` or a `TOLLDNS_RESULT_SCORE_*` code.
///
/// # Safety
///
/// `cfg` and `stats` must point to valid structures and `out` must be writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tolldns_score_miner(
    cfg: *const tolldns_score_config,
    epoch_id: u64,
    stats: *const tolldns_miner_stats,
    out: *mut tolldns_miner_score,
) -> tolldns_result {
    guard(|| -> FfiResult {
        // SAFETY: the caller guarantees both pointers point to valid structures.
        let (cfg, stats) = unsafe { (input_ref(cfg)?, input_ref(stats)?) };
        let out = Out::new(out)?;
        let s = score::score_miner(&cfg.into(), epoch_id, &stats.into())?;
        // SAFETY: the caller guarantees `out` is writable.
        unsafe { out.write(s.into()) };
        Ok(())
    })
}

/// Writes `v` through a checked out-pointer; shared by the scalar functions below.
///
/// # Safety
///
/// `out` must be NULL or writable.
unsafe fn write_out<T>(out: *mut T, v: impl FnOnce() -> Result<T, score::ScoreError>) -> FfiResult {
    let out = Out::new(out)?;
    let value = v()?;
    // SAFETY: forwarded from the caller.
    unsafe { out.write(value) };
    Ok(())
}

/// Timeliness component, 0..=10000: the share of the epoch that remained when the miner first
/// submitted.
///
/// # Errors
///
/// `TOLLDNS_RESULT_NULL_PARAMETER`; `TOLLDNS_RESULT_SCORE_ZERO_EPOCH_LENGTH`.
///
/// # Safety
///
/// `out` must be writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tolldns_timeliness_component(
    epoch_start_slot: u64,
    epoch_len_slots: u64,
    first_submit_slot: u64,
    out: *mut u16,
) -> tolldns_result {
    guard(|| {
        // SAFETY: the caller guarantees `out` is writable.
        unsafe {
            write_out(out, || {
                score::timeliness_component(epoch_start_slot, epoch_len_slots, first_submit_slot)
            })
        }
    })
}

/// Diversity component, 0..=10000: `min(10000, unique_name_count × 10000 / diversity_target)`.
///
/// # Errors
///
/// `TOLLDNS_RESULT_NULL_PARAMETER`; `TOLLDNS_RESULT_SCORE_ZERO_DIVERSITY_TARGET`.
///
/// # Safety
///
/// `out` must be writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tolldns_diversity_component(
    unique_name_count: u32,
    diversity_target: u32,
    out: *mut u16,
) -> tolldns_result {
    guard(|| {
        // SAFETY: the caller guarantees `out` is writable.
        unsafe {
            write_out(out, || {
                score::diversity_component(unique_name_count, diversity_target)
            })
        }
    })
}

/// Weighted component, 0..=10000, with the weights of `cfg` (only the four `alpha_*_bps`
/// fields are read).
///
/// # Errors
///
/// `TOLLDNS_RESULT_NULL_PARAMETER`; `TOLLDNS_RESULT_SCORE_INVALID_WEIGHTS`;
/// `TOLLDNS_RESULT_SCORE_OUT_OF_RANGE`.
///
/// # Safety
///
/// `cfg` must point to a valid structure and `out` must be writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tolldns_weighted_component(
    cfg: *const tolldns_score_config,
    correctness_score: u16,
    uptime_score: u16,
    diversity_component: u16,
    timeliness_component: u16,
    out: *mut u16,
) -> tolldns_result {
    guard(|| {
        // SAFETY: the caller guarantees `cfg` points to a valid structure.
        let cfg = score::ScoreConfig::from(unsafe { input_ref(cfg) }?);
        // SAFETY: the caller guarantees `out` is writable.
        unsafe {
            write_out(out, || {
                score::weighted_component(
                    &cfg,
                    correctness_score,
                    uptime_score,
                    diversity_component,
                    timeliness_component,
                )
            })
        }
    })
}

/// Raw score before the centralization penalty: `stake_weight × component`.
///
/// # Errors
///
/// `TOLLDNS_RESULT_NULL_PARAMETER`; `TOLLDNS_RESULT_SCORE_OUT_OF_RANGE`.
///
/// # Safety
///
/// `out` must be writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tolldns_raw_score(
    stake_weight: u64,
    component: u16,
    out: *mut tolldns_u128,
) -> tolldns_result {
    guard(|| {
        // SAFETY: the caller guarantees `out` is writable.
        unsafe {
            write_out(out, || {
                score::raw_score(stake_weight, component).map(Into::into)
            })
        }
    })
}

/// The step centralization penalty: if `dominance_share_bps > dominance_threshold_bps`,
/// `raw_score × (10000 − centralization_penalty_bps) / 10000` (floored), else `raw_score`.
///
/// # Errors
///
/// `TOLLDNS_RESULT_NULL_PARAMETER`; `TOLLDNS_RESULT_SCORE_BPS_OUT_OF_RANGE`;
/// `TOLLDNS_RESULT_SCORE_OVERFLOW`.
///
/// # Safety
///
/// `out` must be writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tolldns_apply_centralization_penalty(
    raw_score: tolldns_u128,
    dominance_share_bps: u16,
    dominance_threshold_bps: u16,
    centralization_penalty_bps: u16,
    out: *mut tolldns_u128,
) -> tolldns_result {
    guard(|| {
        // SAFETY: the caller guarantees `out` is writable.
        unsafe {
            write_out(out, || {
                score::apply_centralization_penalty(
                    raw_score.into(),
                    dominance_share_bps,
                    dominance_threshold_bps,
                    centralization_penalty_bps,
                )
                .map(Into::into)
            })
        }
    })
}

/// Lowers `value` by `penalty_bps`: `value × (10000 − penalty_bps) / 10000`, floored.
///
/// # Errors
///
/// `TOLLDNS_RESULT_NULL_PARAMETER`; `TOLLDNS_RESULT_SCORE_BPS_OUT_OF_RANGE`;
/// `TOLLDNS_RESULT_SCORE_OVERFLOW`.
///
/// # Safety
///
/// `out` must be writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tolldns_penalize(
    value: tolldns_u128,
    penalty_bps: u16,
    out: *mut tolldns_u128,
) -> tolldns_result {
    guard(|| {
        // SAFETY: the caller guarantees `out` is writable.
        unsafe {
            write_out(out, || {
                score::penalize(value.into(), penalty_bps).map(Into::into)
            })
        }
    })
}

/// Exact floor square root: the largest `r` with `r × r ≤ n`.
///
/// # Errors
///
/// `TOLLDNS_RESULT_NULL_PARAMETER`.
///
/// # Safety
///
/// `out` must be writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tolldns_isqrt(n: tolldns_u128, out: *mut tolldns_u128) -> tolldns_result {
    guard(|| {
        // SAFETY: the caller guarantees `out` is writable.
        unsafe { write_out(out, || Ok(score::isqrt(n.into()).into())) }
    })
}

/// One miner's reward: `min(cap, pool × normalized / total_normalized)`, floored; 0 when
/// `total_normalized` is 0.
///
/// # Errors
///
/// `TOLLDNS_RESULT_NULL_PARAMETER`; `TOLLDNS_RESULT_SCORE_NORMALIZED_ABOVE_TOTAL`;
/// `TOLLDNS_RESULT_SCORE_OVERFLOW`.
///
/// # Safety
///
/// `out` must be writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tolldns_reward_share(
    pool: u64,
    normalized: tolldns_u128,
    total_normalized: tolldns_u128,
    cap: u64,
    out: *mut u64,
) -> tolldns_result {
    guard(|| {
        // SAFETY: the caller guarantees `out` is writable.
        unsafe {
            write_out(out, || {
                score::reward_share(pool, normalized.into(), total_normalized.into(), cap)
            })
        }
    })
}

/// Allocates `pool` over `normalized_len` miners: `out[i] = reward_share(pool, normalized[i],
/// Σ normalized, cap)`, and the totals to `*out_totals`, with
/// `Σ out[i] + unallocated = pool`.
///
/// `normalized` may be NULL when `normalized_len` is 0 (then `out` may be NULL too). `out` and
/// `*out_totals` are written only on success.
///
/// # Errors
///
/// `TOLLDNS_RESULT_NULL_PARAMETER`; `TOLLDNS_RESULT_SCORE_LENGTH_MISMATCH` if `out_len` differs
/// from `normalized_len`; `TOLLDNS_RESULT_SCORE_OVERFLOW`.
///
/// # Safety
///
/// `normalized` must be readable for `normalized_len` elements, `out` writable for `out_len`
/// elements and not overlapping `normalized`, `out_totals` writable. Thread-safe.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tolldns_allocate(
    pool: u64,
    normalized: *const tolldns_u128,
    normalized_len: usize,
    cap: u64,
    out: *mut u64,
    out_len: usize,
    out_totals: *mut tolldns_allocation,
) -> tolldns_result {
    guard(|| -> FfiResult {
        // SAFETY: the caller guarantees `normalized` is readable for `normalized_len` elements.
        let normalized = unsafe { input_slice(normalized, normalized_len) }?;
        if out.is_null() && out_len != 0 {
            return Err(tolldns_result::NullParameter);
        }
        if !out.is_aligned() {
            return Err(tolldns_result::InvalidParameter);
        }
        let out_totals = Out::new(out_totals)?;
        let normalized: Vec<u128> = normalized.iter().map(|&n| n.into()).collect();
        // Computed into our own buffer, so the caller's array is untouched on error.
        let mut rewards = vec![0u64; out_len];
        let totals = score::allocate(pool, &normalized, cap, &mut rewards)?;
        if !rewards.is_empty() {
            // SAFETY: `out` is non-NULL (its length is non-zero), aligned (checked above), and
            // writable for `out_len == rewards.len()` elements by the caller's contract.
            unsafe { core::ptr::copy_nonoverlapping(rewards.as_ptr(), out, rewards.len()) };
        }
        // SAFETY: the caller guarantees `out_totals` is writable.
        unsafe {
            out_totals.write(tolldns_allocation {
                total_normalized: totals.total_normalized.into(),
                allocated: totals.allocated,
                unallocated: totals.unallocated,
            });
        }
        Ok(())
    })
}

/// First slot of epoch `epoch_id`: `epoch_id × epoch_len_slots`.
///
/// # Errors
///
/// `TOLLDNS_RESULT_NULL_PARAMETER`; `TOLLDNS_RESULT_SCORE_ZERO_EPOCH_LENGTH`;
/// `TOLLDNS_RESULT_SCORE_OVERFLOW`.
///
/// # Safety
///
/// `out` must be writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tolldns_epoch_start_slot(
    epoch_id: u64,
    epoch_len_slots: u64,
    out: *mut u64,
) -> tolldns_result {
    guard(|| {
        // SAFETY: the caller guarantees `out` is writable.
        unsafe { write_out(out, || score::epoch_start_slot(epoch_id, epoch_len_slots)) }
    })
}

/// End of epoch `epoch_id`, exclusive: `(epoch_id + 1) × epoch_len_slots`.
///
/// # Errors
///
/// `TOLLDNS_RESULT_NULL_PARAMETER`; `TOLLDNS_RESULT_SCORE_ZERO_EPOCH_LENGTH`;
/// `TOLLDNS_RESULT_SCORE_OVERFLOW`.
///
/// # Safety
///
/// `out` must be writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tolldns_epoch_end_slot(
    epoch_id: u64,
    epoch_len_slots: u64,
    out: *mut u64,
) -> tolldns_result {
    guard(|| {
        // SAFETY: the caller guarantees `out` is writable.
        unsafe { write_out(out, || score::epoch_end_slot(epoch_id, epoch_len_slots)) }
    })
}

/// Whether epoch `epoch_id` is over at `current_slot` (`current_slot ≥` its end slot).
///
/// # Errors
///
/// `TOLLDNS_RESULT_NULL_PARAMETER`; `TOLLDNS_RESULT_SCORE_ZERO_EPOCH_LENGTH`;
/// `TOLLDNS_RESULT_SCORE_OVERFLOW`.
///
/// # Safety
///
/// `out` must be writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tolldns_epoch_has_ended(
    epoch_id: u64,
    epoch_len_slots: u64,
    current_slot: u64,
    out: *mut bool,
) -> tolldns_result {
    guard(|| {
        // SAFETY: the caller guarantees `out` is writable.
        unsafe {
            write_out(out, || {
                score::epoch_has_ended(epoch_id, epoch_len_slots, current_slot)
            })
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn u128_halves_round_trip() {
        for v in [
            0u128,
            1,
            u64::MAX.into(),
            1 << 64,
            u128::MAX,
            0x0123_4567_89ab_cdef_0011,
        ] {
            assert_eq!(u128::from(tolldns_u128::from(v)), v);
        }
        assert_eq!(
            tolldns_u128::from(1u128 << 64),
            tolldns_u128 { lo: 0, hi: 1 }
        );
    }

    #[test]
    fn allocate_leaves_outputs_on_error() {
        let normalized = [tolldns_u128::from(1u128), tolldns_u128::from(2u128)];
        let mut out = [7u64; 3];
        let mut totals = tolldns_allocation::default();
        // SAFETY: live local arrays of the stated lengths.
        let r = unsafe {
            tolldns_allocate(
                90,
                normalized.as_ptr(),
                2,
                40,
                out.as_mut_ptr(),
                3,
                &mut totals,
            )
        };
        assert_eq!(r, tolldns_result::ScoreLengthMismatch);
        assert_eq!(out, [7; 3]);
        assert_eq!(totals, tolldns_allocation::default());
        // SAFETY: as above.
        let r = unsafe {
            tolldns_allocate(
                90,
                normalized.as_ptr(),
                2,
                40,
                out.as_mut_ptr(),
                2,
                &mut totals,
            )
        };
        assert_eq!(r, tolldns_result::Ok);
        assert_eq!(out, [30, 40, 7]);
        assert_eq!((totals.allocated, totals.unallocated), (70, 20));
        // SAFETY: empty arrays may be NULL.
        let r = unsafe {
            tolldns_allocate(
                90,
                core::ptr::null(),
                0,
                40,
                core::ptr::null_mut(),
                0,
                &mut totals,
            )
        };
        assert_eq!(r, tolldns_result::Ok);
        assert_eq!((totals.allocated, totals.unallocated), (0, 90));
    }

    #[test]
    fn constants_match_the_score_crate() {
        assert_eq!(TOLLDNS_BPS_DENOM, score::BPS_DENOM);
        assert_eq!(TOLLDNS_SCORE_MAX, score::SCORE_MAX);
    }
}
