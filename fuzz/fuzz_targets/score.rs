//! Fuzzes every public function of `tolldns-score` with arbitrary inputs: nothing may panic,
//! successful results must satisfy the documented invariants, and `score_miner` must agree
//! with the free functions it is made of.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use tolldns_score::{
    MinerStats, ScoreConfig, ScoreError, allocate, apply_centralization_penalty,
    diversity_component, epoch_end_slot, epoch_has_ended, epoch_start_slot, isqrt, penalize,
    raw_score, reward_share, score_miner, timeliness_component, weighted_component,
};

#[derive(Debug, Arbitrary)]
struct Input {
    cfg: Cfg,
    epoch_id: u64,
    current_slot: u64,
    miners: Vec<Stats>,
    extra_normalized: Vec<u128>,
    pool: u64,
    cap: u64,
    penalty_bps: u16,
    wild: u128,
    out_len_delta: u8,
}

#[derive(Debug, Arbitrary)]
struct Cfg {
    epoch_len_slots: u64,
    alpha_correctness_bps: u16,
    alpha_diversity_bps: u16,
    alpha_timeliness_bps: u16,
    alpha_uptime_bps: u16,
    centralization_penalty_bps: u16,
    dominance_threshold_bps: u16,
    diversity_target: u32,
    per_miner_epoch_cap: u64,
    min_miner_stake_weight: u64,
    /// When set, force the weights to sum to 10 000 so scoring gets past validation often.
    fix_weights: bool,
}

#[derive(Debug, Arbitrary)]
struct Stats {
    stake_weight: u64,
    unique_name_count: u32,
    first_submit_slot: u64,
    uptime_score: u16,
    correctness_score: u16,
    dominance_share_bps: u16,
}

fn config(c: &Cfg) -> ScoreConfig {
    let mut cfg = ScoreConfig {
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
    };
    if c.fix_weights {
        let a = cfg.alpha_correctness_bps % 10_001;
        let b = cfg.alpha_diversity_bps % (10_001 - a);
        let t = cfg.alpha_timeliness_bps % (10_001 - a - b);
        cfg.alpha_correctness_bps = a;
        cfg.alpha_diversity_bps = b;
        cfg.alpha_timeliness_bps = t;
        cfg.alpha_uptime_bps = 10_000 - a - b - t;
        cfg.centralization_penalty_bps %= 10_001;
        cfg.dominance_threshold_bps %= 10_001;
    }
    cfg
}

fn check_allocation(pool: u64, normalized: &[u128], cap: u64, out_len: usize) {
    let mut out = vec![u64::MAX; out_len];
    match allocate(pool, normalized, cap, &mut out) {
        Ok(a) => {
            assert_eq!(out_len, normalized.len());
            let sum: u128 = out.iter().map(|&r| u128::from(r)).sum();
            assert_eq!(sum, u128::from(a.allocated));
            assert_eq!(sum + u128::from(a.unallocated), u128::from(pool));
            assert_eq!(a.total_normalized, normalized.iter().sum::<u128>());
            for (i, (&r, &n)) in out.iter().zip(normalized).enumerate() {
                assert!(r <= cap);
                assert_eq!(Ok(r), reward_share(pool, n, a.total_normalized, cap));
                // Monotone: a larger normalized score never receives less.
                for (&r2, &n2) in out.iter().zip(normalized).skip(i + 1) {
                    if n < n2 {
                        assert!(r <= r2);
                    }
                    if n == n2 {
                        assert_eq!(r, r2);
                    }
                }
            }
        }
        Err(ScoreError::LengthMismatch { .. }) => {
            assert_ne!(out_len, normalized.len());
            assert!(out.iter().all(|&r| r == u64::MAX), "out written on error");
        }
        Err(ScoreError::Overflow) => {
            assert!(out.iter().all(|&r| r == u64::MAX), "out written on error");
        }
        Err(e) => panic!("unexpected allocate error {e:?}"),
    }
}

fuzz_target!(|input: Input| {
    let cfg = config(&input.cfg);
    let _ = cfg.validate();

    // Epoch helpers.
    let start = epoch_start_slot(input.epoch_id, cfg.epoch_len_slots);
    let end = epoch_end_slot(input.epoch_id, cfg.epoch_len_slots);
    if let (Ok(s), Ok(e)) = (start, end) {
        assert_eq!(e - s, cfg.epoch_len_slots);
        assert_eq!(
            epoch_has_ended(input.epoch_id, cfg.epoch_len_slots, input.current_slot),
            Ok(input.current_slot >= e)
        );
    }

    // isqrt.
    let r = isqrt(input.wild);
    assert!(r < 1u128 << 64);
    assert!(r * r <= input.wild);
    // (r + 1)^2 > n, where (r + 1)^2 overflowing a u128 counts as larger.
    assert!(
        (r + 1)
            .checked_mul(r + 1)
            .is_none_or(|next| next > input.wild)
    );

    // penalize.
    if let Ok(p) = penalize(input.wild, input.penalty_bps) {
        assert!(p <= input.wild);
    }

    // Per-miner scoring, checked against the free functions.
    let mut normalized = Vec::with_capacity(input.miners.len());
    for m in input.miners.iter().take(64) {
        let stats = MinerStats {
            stake_weight: m.stake_weight,
            unique_name_count: m.unique_name_count,
            first_submit_slot: m.first_submit_slot,
            uptime_score: m.uptime_score,
            correctness_score: m.correctness_score,
            dominance_share_bps: m.dominance_share_bps,
        };
        let _ = stats.validate(&cfg);
        if let Ok(s) = start {
            if let Ok(t) = timeliness_component(s, cfg.epoch_len_slots, stats.first_submit_slot) {
                assert!(t <= 10_000);
            }
        }
        if let Ok(d) = diversity_component(stats.unique_name_count, cfg.diversity_target) {
            assert!(d <= 10_000);
        }
        let _ = weighted_component(
            &cfg,
            stats.correctness_score,
            stats.uptime_score,
            (stats.unique_name_count % 10_001) as u16,
            stats.uptime_score,
        );
        let _ = raw_score(stats.stake_weight, stats.uptime_score);
        let _ = apply_centralization_penalty(
            input.wild,
            stats.dominance_share_bps,
            cfg.dominance_threshold_bps,
            cfg.centralization_penalty_bps,
        );
        match score_miner(&cfg, input.epoch_id, &stats) {
            Ok(score) => {
                assert!(cfg.validate().is_ok() && stats.validate(&cfg).is_ok());
                let s = start.expect("scored, so the start slot exists");
                let t = timeliness_component(s, cfg.epoch_len_slots, stats.first_submit_slot)
                    .expect("valid config");
                let d = diversity_component(stats.unique_name_count, cfg.diversity_target)
                    .expect("valid config");
                let c = weighted_component(&cfg, stats.correctness_score, stats.uptime_score, d, t)
                    .expect("valid inputs");
                let raw = raw_score(stats.stake_weight, c).expect("component in range");
                let raw = apply_centralization_penalty(
                    raw,
                    stats.dominance_share_bps,
                    cfg.dominance_threshold_bps,
                    cfg.centralization_penalty_bps,
                )
                .expect("valid bps");
                assert_eq!(
                    (score.timeliness_component, score.diversity_component),
                    (t, d)
                );
                assert_eq!((score.component, score.raw_score), (c, raw));
                assert_eq!(score.normalized_score, isqrt(raw));
                let p = score.penalize(input.penalty_bps);
                if input.penalty_bps <= 10_000 {
                    let p = p.expect("a computed score can always be penalized");
                    assert!(p.raw_score <= score.raw_score);
                    assert!(p.normalized_score <= score.normalized_score);
                    let ps = stats.penalize(input.penalty_bps).expect("bps in range");
                    assert!(ps.correctness_score <= stats.correctness_score);
                }
                normalized.push(score.normalized_score);
            }
            Err(_) => {
                assert!(cfg.validate().is_err() || stats.validate(&cfg).is_err() || start.is_err());
            }
        }
    }

    // Allocation over the scored miners (never overflows), then over arbitrary values.
    let cap = if input.cap == 0 {
        cfg.per_miner_epoch_cap
    } else {
        input.cap
    };
    let mut out = vec![0u64; normalized.len()];
    allocate(input.pool, &normalized, cap, &mut out).expect("isqrt results never overflow");
    check_allocation(input.pool, &normalized, cap, normalized.len());

    let extra: Vec<u128> = input.extra_normalized.iter().take(64).copied().collect();
    let out_len = if input.out_len_delta % 8 == 0 {
        extra.len() + usize::from(input.out_len_delta % 3)
    } else {
        extra.len()
    };
    check_allocation(input.pool, &extra, cap, out_len);
    for &n in &extra {
        let _ = reward_share(input.pool, n, input.wild, cap);
    }
});
