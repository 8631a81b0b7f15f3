//! The bound an audit uses to compare a receipt's service summary with its sampled leaves.
//!
//! For a share `p` the summary claims (say `success_count / request_count`), the number `x` of
//! sampled leaves with the property in a uniform sample of `k` distinct leaves obeys the
//! Chernoff–Hoeffding bound `P(x ≥ q·k) ≤ exp(−k·KL(q ‖ p))` for `q > p` (and the mirror bound
//! below `p`), which holds for sampling without replacement as well (Hoeffding 1963, §6).
//! An audit raises an alarm when `k·KL(x/k ‖ p) ≥ ln(1/δ)` with [`TAIL_PROBABILITY`] `δ =
//! 8e-8` per tail; `p = 0` with `x > 0`, or `p = 1` with `x < k`, is impossible for an honest
//! summary and always an alarm. For the mean response size, whose values lie in `[0, 65535]`,
//! Hoeffding's inequality gives the alarm `|mean_sample − mean_claimed| ≥ 65535·√(ln(1/δ) /
//! 2k)`. Five shares (success, error, cache, ticketed, repeat) and the mean, two tails each: an
//! honest summary raises a false alarm with probability at most `12 × 8e-8 = 9.6e-7 ≤ 1e-6`
//! per audit.

/// The false-alarm probability allowed per tail and statistic.
pub const TAIL_PROBABILITY: f64 = 8e-8;
/// The largest response size a v2 leaf carries, as a float.
const RANGE: f64 = 65_535.0;

fn threshold() -> f64 {
    -libm::log(TAIL_PROBABILITY)
}

#[allow(clippy::cast_precision_loss)]
fn f(v: u64) -> f64 {
    v as f64
}

/// `q ln(q/p)` with `0 ln 0 = 0`.
fn term(q: f64, p: f64) -> f64 {
    if q == 0.0 { 0.0 } else { q * libm::log(q / p) }
}

/// Whether `x` of `k` sampled leaves is implausible for a claimed share `claimed / total`.
pub fn share_alarm(x: u64, k: u64, claimed: u64, total: u64) -> bool {
    if k == 0 || total == 0 {
        return false;
    }
    if claimed == 0 {
        return x > 0;
    }
    if claimed >= total {
        return x < k;
    }
    let p = f(claimed) / f(total);
    let q = f(x) / f(k);
    let kl = term(q, p) + term(1.0 - q, 1.0 - p);
    f(k) * kl >= threshold()
}

/// Whether a sample of `k` leaves whose sizes sum to `sample_bytes` is implausible for a
/// claimed total of `claimed_bytes` over `total` leaves.
pub fn mean_alarm(sample_bytes: u64, k: u64, claimed_bytes: u64, total: u64) -> bool {
    if k == 0 || total == 0 {
        return false;
    }
    let diff = libm::fabs(f(sample_bytes) / f(k) - f(claimed_bytes) / f(total));
    diff >= RANGE * libm::sqrt(threshold() / (2.0 * f(k)))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `ln C(n, x)` by summing logarithms (exact enough for n ≤ a few thousand).
    fn ln_choose(n: u64, x: u64) -> f64 {
        (0..x)
            .map(|i| ((n - i) as f64).ln() - ((i + 1) as f64).ln())
            .sum()
    }

    /// The exact binomial probability that an honest sample of `k` raises the share alarm.
    fn binomial_alarm_probability(k: u64, claimed: u64, total: u64) -> f64 {
        let p = claimed as f64 / total as f64;
        (0..=k)
            .filter(|x| share_alarm(*x, k, claimed, total))
            .map(|x| (ln_choose(k, x) + x as f64 * p.ln() + (k - x) as f64 * (1.0 - p).ln()).exp())
            .sum()
    }

    #[test]
    fn honest_alarm_probability_is_below_two_tails() {
        for k in [1u64, 2, 10, 44, 90, 200, 1_000] {
            for claimed in [1u64, 10, 100, 500, 900, 990, 999] {
                let pr = binomial_alarm_probability(k, claimed, 1_000);
                assert!(pr <= 2.0 * TAIL_PROBABILITY, "k={k} p={claimed}/1000: {pr}");
            }
        }
    }

    #[test]
    fn a_large_misstatement_is_caught() {
        // 44 leaves, half successes, against a claimed 90 %.
        assert!(share_alarm(22, 44, 900, 1_000));
        // The honest value is not.
        assert!(!share_alarm(22, 44, 500, 1_000));
        // Claimed zero, one seen; claimed all, one missing.
        assert!(share_alarm(1, 44, 0, 1_000));
        assert!(share_alarm(43, 44, 1_000, 1_000));
        // 2^64 - 1 bytes over 1,000 leaves of ~100 bytes.
        assert!(mean_alarm(4_400, 44, u64::MAX, 1_000));
        assert!(!mean_alarm(4_400, 44, 100_000, 1_000));
    }
}
