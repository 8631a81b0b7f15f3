//! Integration tests: the known-answer vectors of `test-vectors/score.json` (read as the C and
//! program tests read them), a drift check of that file, and property tests against simple
//! references.

#[path = "common/vectors.rs"]
mod vectors;

use proptest::prelude::*;
use serde_json::Value;
use tolldns_score::{
    allocate, apply_centralization_penalty, diversity_component, epoch_end_slot, epoch_has_ended,
    epoch_start_slot, isqrt, penalize, raw_score, reward_share, score_miner, timeliness_component,
    weighted_component, MinerScore, MinerStats, ScoreConfig, ScoreError,
};

const VECTORS: &str = include_str!("../../test-vectors/score.json");

fn vectors() -> Value {
    serde_json::from_str(VECTORS).expect("test-vectors/score.json is valid JSON")
}

// ---- Decoding helpers (the file's encoding: u64/u128 as decimal strings, u16/u32 numbers). ----

fn dec<T: std::str::FromStr>(v: &Value) -> T
where
    T::Err: std::fmt::Debug,
{
    v.as_str()
        .expect("a decimal string")
        .parse()
        .expect("a decimal integer")
}

fn num<T: TryFrom<u64>>(v: &Value) -> T
where
    T::Error: std::fmt::Debug,
{
    T::try_from(v.as_u64().expect("a JSON integer")).expect("in range")
}

fn config(v: &Value) -> ScoreConfig {
    ScoreConfig {
        epoch_len_slots: dec(&v["epoch_len_slots"]),
        alpha_correctness_bps: num(&v["alpha_correctness_bps"]),
        alpha_diversity_bps: num(&v["alpha_diversity_bps"]),
        alpha_timeliness_bps: num(&v["alpha_timeliness_bps"]),
        alpha_uptime_bps: num(&v["alpha_uptime_bps"]),
        centralization_penalty_bps: num(&v["centralization_penalty_bps"]),
        dominance_threshold_bps: num(&v["dominance_threshold_bps"]),
        diversity_target: num(&v["diversity_target"]),
        per_miner_epoch_cap: dec(&v["per_miner_epoch_cap"]),
        min_miner_stake_weight: dec(&v["min_miner_stake_weight"]),
    }
}

fn stats(v: &Value) -> MinerStats {
    MinerStats {
        stake_weight: dec(&v["stake_weight"]),
        unique_name_count: num(&v["unique_name_count"]),
        first_submit_slot: dec(&v["first_submit_slot"]),
        uptime_score: num(&v["uptime_score"]),
        correctness_score: num(&v["correctness_score"]),
        dominance_share_bps: num(&v["dominance_share_bps"]),
    }
}

fn score(v: &Value) -> MinerScore {
    MinerScore {
        timeliness_component: num(&v["timeliness_component"]),
        diversity_component: num(&v["diversity_component"]),
        component: num(&v["component"]),
        raw_score: dec(&v["raw_score"]),
        normalized_score: dec(&v["normalized_score"]),
    }
}

/// Checks one case's result: `expected` decoded with `decode`, or `error` by variant name.
#[track_caller]
fn check<T: PartialEq + std::fmt::Debug>(
    case: &Value,
    got: Result<T, ScoreError>,
    decode: impl FnOnce(&Value) -> T,
) {
    let comment = case["comment"].as_str().expect("every case has a comment");
    match (case.get("expected"), case.get("error")) {
        (Some(expected), None) => assert_eq!(got, Ok(decode(expected)), "{comment}"),
        (None, Some(error)) => assert_eq!(
            got.map_err(|e| e.name()),
            Err(error.as_str().expect("an error name")),
            "{comment}"
        ),
        _ => panic!("case needs exactly one of expected/error: {comment}"),
    }
}

fn cases<'a>(v: &'a Value, function: &str) -> &'a [Value] {
    let cases = v[function].as_array().expect("an array per function");
    assert!(!cases.is_empty(), "{function} has cases");
    cases
}

#[test]
fn vector_file_matches_the_code() {
    let built = vectors::build();
    let file = vectors();
    assert!(
        built == file,
        "test-vectors/score.json drifted from the code; regenerate it with \
         `cargo run -p tolldns-score --example gen_vectors` and review the diff"
    );
}

#[test]
fn vectors_have_comments_and_one_array_per_function() {
    let v = vectors();
    assert!(v["comment"].as_str().is_some_and(|c| c.len() > 100));
    let expected_keys = [
        "allocate",
        "apply_centralization_penalty",
        "comment",
        "config_validate",
        "diversity_component",
        "epoch",
        "epoch_end_slot",
        "epoch_has_ended",
        "epoch_start_slot",
        "isqrt",
        "penalize",
        "penalize_miner",
        "raw_score",
        "reward_share",
        "score_miner",
        "stats_validate",
        "timeliness_component",
        "version",
        "weighted_component",
    ];
    let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(keys, expected_keys);
    for key in expected_keys {
        if let Some(cases) = v[key].as_array() {
            for case in cases {
                assert!(
                    case["comment"].as_str().is_some_and(|c| !c.is_empty()),
                    "{key}: a case without comment"
                );
            }
        }
    }
}

#[test]
fn vectors_epoch_helpers() {
    let v = vectors();
    for c in cases(&v, "epoch_start_slot") {
        let got = epoch_start_slot(dec(&c["epoch_id"]), dec(&c["epoch_len_slots"]));
        check(c, got, dec);
    }
    for c in cases(&v, "epoch_end_slot") {
        let got = epoch_end_slot(dec(&c["epoch_id"]), dec(&c["epoch_len_slots"]));
        check(c, got, dec);
    }
    for c in cases(&v, "epoch_has_ended") {
        let got = epoch_has_ended(
            dec(&c["epoch_id"]),
            dec(&c["epoch_len_slots"]),
            dec(&c["current_slot"]),
        );
        check(c, got, |e| e.as_bool().unwrap());
    }
}

#[test]
fn vectors_components() {
    let v = vectors();
    for c in cases(&v, "timeliness_component") {
        let got = timeliness_component(
            dec(&c["epoch_start_slot"]),
            dec(&c["epoch_len_slots"]),
            dec(&c["first_submit_slot"]),
        );
        check(c, got, num);
    }
    for c in cases(&v, "diversity_component") {
        let got = diversity_component(num(&c["unique_name_count"]), num(&c["diversity_target"]));
        check(c, got, num);
    }
    for c in cases(&v, "weighted_component") {
        let got = weighted_component(
            &config(&c["config"]),
            num(&c["correctness_score"]),
            num(&c["uptime_score"]),
            num(&c["diversity_component"]),
            num(&c["timeliness_component"]),
        );
        check(c, got, num);
    }
    for c in cases(&v, "raw_score") {
        let got = raw_score(dec(&c["stake_weight"]), num(&c["component"]));
        check(c, got, dec);
    }
    for c in cases(&v, "apply_centralization_penalty") {
        let got = apply_centralization_penalty(
            dec(&c["raw_score"]),
            num(&c["dominance_share_bps"]),
            num(&c["dominance_threshold_bps"]),
            num(&c["centralization_penalty_bps"]),
        );
        check(c, got, dec);
    }
    for c in cases(&v, "penalize") {
        let got = penalize(dec(&c["value"]), num(&c["penalty_bps"]));
        check(c, got, dec);
    }
    for c in cases(&v, "isqrt") {
        let got: Result<u128, ScoreError> = Ok(isqrt(dec(&c["n"])));
        check(c, got, dec);
    }
}

#[test]
fn vectors_validation_and_scoring() {
    let v = vectors();
    for c in cases(&v, "config_validate") {
        check(c, config(&c["config"]).validate(), |_| ());
    }
    for c in cases(&v, "stats_validate") {
        check(
            c,
            stats(&c["stats"]).validate(&config(&c["config"])),
            |_| (),
        );
    }
    for c in cases(&v, "score_miner") {
        let got = score_miner(
            &config(&c["config"]),
            dec(&c["epoch_id"]),
            &stats(&c["stats"]),
        );
        check(c, got, score);
    }
    for c in cases(&v, "penalize_miner") {
        let bps: u16 = num(&c["penalty_bps"]);
        let got = stats(&c["stats"])
            .penalize(bps)
            .and_then(|s| Ok((s, score(&c["score"]).penalize(bps)?)));
        check(c, got, |e| (stats(&e["stats"]), score(&e["score"])));
    }
}

#[test]
fn vectors_allocation() {
    let v = vectors();
    for c in cases(&v, "reward_share") {
        let got = reward_share(
            dec(&c["pool"]),
            dec(&c["normalized"]),
            dec(&c["total_normalized"]),
            dec(&c["cap"]),
        );
        check(c, got, dec);
    }
    for c in cases(&v, "allocate") {
        let normalized: Vec<u128> = c["normalized"]
            .as_array()
            .unwrap()
            .iter()
            .map(dec)
            .collect();
        let mut out = vec![0u64; num(&c["out_len"])];
        let got = allocate(dec(&c["pool"]), &normalized, dec(&c["cap"]), &mut out)
            .map(|a| (out.clone(), a.total_normalized, a.allocated, a.unallocated));
        check(c, got, |e| {
            (
                e["rewards"].as_array().unwrap().iter().map(dec).collect(),
                dec(&e["total_normalized"]),
                dec(&e["allocated"]),
                dec(&e["unallocated"]),
            )
        });
    }
}

#[test]
fn vectors_full_epochs() {
    let v = vectors();
    for e in cases(&v, "epoch") {
        let cfg = config(&e["config"]);
        let epoch_id: u64 = dec(&e["epoch_id"]);
        let pool: u64 = dec(&e["pool"]);
        let miners = e["miners"].as_array().unwrap();
        let mut normalized = Vec::new();
        let mut total_raw = 0u128;
        for m in miners {
            let s = score_miner(&cfg, epoch_id, &stats(&m["stats"])).unwrap();
            assert_eq!(s, score(&m["score"]), "{}", m["miner"]);
            normalized.push(s.normalized_score);
            total_raw += s.raw_score;
        }
        let mut rewards = vec![0; miners.len()];
        let a = allocate(pool, &normalized, cfg.per_miner_epoch_cap, &mut rewards).unwrap();
        for (m, r) in miners.iter().zip(&rewards) {
            assert_eq!(*r, dec::<u64>(&m["reward"]), "{}", m["miner"]);
        }
        let totals = &e["totals"];
        assert_eq!(total_raw, dec::<u128>(&totals["total_raw_score"]));
        assert_eq!(
            a.total_normalized,
            dec::<u128>(&totals["total_normalized_score"])
        );
        assert_eq!(a.allocated, dec::<u64>(&totals["allocated"]));
        assert_eq!(a.unallocated, dec::<u64>(&totals["unallocated"]));
    }
    // The headline numbers of the upstream example, independent of the file's encoding.
    let first = &v["epoch"][0];
    let raws: Vec<u128> = first["miners"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| dec(&m["score"]["raw_score"]))
        .collect();
    assert_eq!(raws, [6_464_000, 8_650_000, 4_870_000]);
    assert_eq!(first["totals"]["unallocated"], "850000000000");
}

// ---- Property tests. ----

/// Obviously-correct floor square root: binary search for the largest `r` with `r² ≤ n`.
fn isqrt_reference(n: u128) -> u128 {
    let (mut lo, mut hi) = (0u128, u128::from(u64::MAX));
    while lo < hi {
        let mid = lo + (hi - lo).div_ceil(2);
        if mid.checked_mul(mid).is_some_and(|sq| sq <= n) {
            lo = mid;
        } else {
            hi = mid - 1;
        }
    }
    lo
}

/// Any u128, biased towards perfect squares and their neighbours.
fn any_n() -> impl Strategy<Value = u128> {
    prop_oneof![
        any::<u128>(),
        any::<u64>().prop_map(u128::from),
        (any::<u64>(), -1i8..=1).prop_map(|(r, d)| {
            let sq = u128::from(r) * u128::from(r);
            sq.saturating_add_signed(i128::from(d))
        }),
    ]
}

/// A valid configuration: weights summing to 10 000, bps in range, non-zero len and target.
fn valid_config() -> impl Strategy<Value = ScoreConfig> {
    (
        (0u16..=10_000, 0u16..=10_000, 0u16..=10_000),
        1u64..=1_000_000,
        (0u16..=10_000, 0u16..=10_000),
        1u32..=100_000,
        any::<u64>(),
        0u64..=1_000,
    )
        .prop_map(|((x, y, z), len, (pen, thr), target, cap, min_stake)| {
            let a = x;
            let b = y % (10_001 - a);
            let c = z % (10_001 - a - b);
            ScoreConfig {
                epoch_len_slots: len,
                alpha_correctness_bps: a,
                alpha_diversity_bps: b,
                alpha_timeliness_bps: c,
                alpha_uptime_bps: 10_000 - a - b - c,
                centralization_penalty_bps: pen,
                dominance_threshold_bps: thr,
                diversity_target: target,
                per_miner_epoch_cap: cap,
                min_miner_stake_weight: min_stake,
            }
        })
}

fn valid_stats() -> impl Strategy<Value = MinerStats> {
    (
        1_000u64..,
        any::<u32>(),
        any::<u64>(),
        0u16..=10_000,
        0u16..=10_000,
        0u16..=10_000,
    )
        .prop_map(|(stake, names, first, up, corr, dom)| MinerStats {
            stake_weight: stake,
            unique_name_count: names,
            first_submit_slot: first,
            uptime_score: up,
            correctness_score: corr,
            dominance_share_bps: dom,
        })
}

/// Normalized scores as `isqrt` produces them (below 2^64), with some zeros and ties.
fn normalized_scores() -> impl Strategy<Value = Vec<u128>> {
    prop::collection::vec(
        prop_oneof![
            Just(0u128),
            0u128..100,
            any::<u64>().prop_map(u128::from),
            any::<u128>().prop_map(isqrt),
        ],
        0..40,
    )
}

fn pool_and_cap() -> impl Strategy<Value = (u64, u64)> {
    (
        prop_oneof![any::<u64>(), 0u64..1_000_000],
        prop_oneof![any::<u64>(), 0u64..1_000_000, Just(u64::MAX)],
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2_000))]

    #[test]
    fn isqrt_is_the_exact_floor_root(n in any_n()) {
        let r = isqrt(n);
        prop_assert_eq!(r, isqrt_reference(n));
        prop_assert_eq!(r, n.isqrt());
    }

    #[test]
    fn allocation_conserves_the_pool_and_respects_the_cap(
        normalized in normalized_scores(),
        (pool, cap) in pool_and_cap(),
    ) {
        let mut out = vec![0u64; normalized.len()];
        let a = allocate(pool, &normalized, cap, &mut out).unwrap();
        let sum: u128 = out.iter().map(|&r| u128::from(r)).sum();
        prop_assert_eq!(sum, u128::from(a.allocated));
        prop_assert_eq!(sum + u128::from(a.unallocated), u128::from(pool));
        prop_assert_eq!(a.total_normalized, normalized.iter().sum::<u128>());
        for (&r, &n) in out.iter().zip(&normalized) {
            prop_assert!(r <= cap);
            // The reference: min(cap, floor(pool × n / total)) in exact arithmetic.
            let expected = (u128::from(pool) * n)
                .checked_div(a.total_normalized)
                .map_or(0, |share| u64::try_from(share).unwrap().min(cap));
            prop_assert_eq!(r, expected);
        }
    }

    #[test]
    fn allocation_is_monotone_in_the_score(
        normalized in normalized_scores(),
        (pool, cap) in pool_and_cap(),
    ) {
        let mut out = vec![0u64; normalized.len()];
        allocate(pool, &normalized, cap, &mut out).unwrap();
        for (i, &ni) in normalized.iter().enumerate() {
            for (j, &nj) in normalized.iter().enumerate() {
                if ni < nj {
                    prop_assert!(out[i] <= out[j]);
                }
            }
        }
    }

    #[test]
    fn allocation_ignores_the_order_of_miners(
        normalized in normalized_scores(),
        (pool, cap) in pool_and_cap(),
        seed in any::<u64>(),
    ) {
        let mut out = vec![0u64; normalized.len()];
        let a = allocate(pool, &normalized, cap, &mut out).unwrap();
        // A deterministic permutation: sort indices by a seeded key.
        let mut order: Vec<usize> = (0..normalized.len()).collect();
        order.sort_by_key(|&i| (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ seed);
        let shuffled: Vec<u128> = order.iter().map(|&i| normalized[i]).collect();
        let mut out2 = vec![0u64; shuffled.len()];
        let b = allocate(pool, &shuffled, cap, &mut out2).unwrap();
        prop_assert_eq!(a, b);
        for (k, &i) in order.iter().enumerate() {
            prop_assert_eq!(out2[k], out[i]);
        }
    }

    #[test]
    fn a_higher_raw_score_never_earns_less(
        raws in prop::collection::vec(any::<u128>(), 1..20),
        (pool, cap) in pool_and_cap(),
    ) {
        let normalized: Vec<u128> = raws.iter().map(|&r| isqrt(r)).collect();
        let mut out = vec![0u64; normalized.len()];
        allocate(pool, &normalized, cap, &mut out).unwrap();
        for (i, &ri) in raws.iter().enumerate() {
            for (j, &rj) in raws.iter().enumerate() {
                if ri < rj {
                    prop_assert!(out[i] <= out[j], "raw {} earned {} > raw {} earned {}", ri, out[i], rj, out[j]);
                }
            }
        }
    }

    #[test]
    fn no_input_panics(
        pool in any::<u64>(),
        cap in any::<u64>(),
        normalized in prop::collection::vec(any::<u128>(), 0..8),
        out_len in 0usize..10,
        n in any::<u128>(),
        total in any::<u128>(),
        bps in any::<u16>(),
        (a, b, c) in (any::<u64>(), any::<u64>(), any::<u64>()),
        (x, y) in (any::<u32>(), any::<u32>()),
    ) {
        let mut out = vec![u64::MAX; out_len];
        match allocate(pool, &normalized, cap, &mut out) {
            Ok(al) => {
                prop_assert_eq!(
                    out.iter().map(|&r| u128::from(r)).sum::<u128>() + u128::from(al.unallocated),
                    u128::from(pool)
                );
            }
            // On error, the output is untouched.
            Err(_) => prop_assert!(out.iter().all(|&r| r == u64::MAX)),
        }
        if let Ok(r) = reward_share(pool, n, total, cap) {
            prop_assert!(r <= cap && r <= pool);
        }
        if let Ok(p) = penalize(n, bps) {
            prop_assert!(p <= n);
        }
        let _ = apply_centralization_penalty(n, bps, bps.rotate_left(3), bps.rotate_left(7));
        let _ = raw_score(a, bps);
        let _ = timeliness_component(a, b, c);
        let _ = diversity_component(x, y);
        let _ = epoch_has_ended(a, b, c);
        if let (Ok(s), Ok(e)) = (epoch_start_slot(a, b), epoch_end_slot(a, b)) {
            prop_assert_eq!(e - s, b);
        }
    }

    #[test]
    fn score_miner_is_its_formulas(cfg in valid_config(), stats in valid_stats(), epoch_id in 0u64..1_000_000) {
        let stats = MinerStats { stake_weight: stats.stake_weight.max(cfg.min_miner_stake_weight), ..stats };
        let s = score_miner(&cfg, epoch_id, &stats).unwrap();
        let start = epoch_id * cfg.epoch_len_slots;
        // The seed's formulas, written out again in plain u128 arithmetic.
        let w = u128::from(cfg.epoch_len_slots);
        let d = u128::from(stats.first_submit_slot.max(start) - start);
        let t = (w - d.min(w)) * 10_000 / w;
        let dv = (u128::from(stats.unique_name_count) * 10_000 / u128::from(cfg.diversity_target)).min(10_000);
        let comp = (u128::from(cfg.alpha_correctness_bps) * u128::from(stats.correctness_score)
            + u128::from(cfg.alpha_uptime_bps) * u128::from(stats.uptime_score)
            + u128::from(cfg.alpha_diversity_bps) * dv
            + u128::from(cfg.alpha_timeliness_bps) * t) / 10_000;
        let mut raw = u128::from(stats.stake_weight) * comp;
        if stats.dominance_share_bps > cfg.dominance_threshold_bps {
            raw = raw * u128::from(10_000 - cfg.centralization_penalty_bps) / 10_000;
        }
        prop_assert_eq!(u128::from(s.timeliness_component), t);
        prop_assert_eq!(u128::from(s.diversity_component), dv);
        prop_assert_eq!(u128::from(s.component), comp);
        prop_assert!(s.component <= 10_000);
        prop_assert_eq!(s.raw_score, raw);
        prop_assert_eq!(s.normalized_score, isqrt_reference(raw));
    }

    #[test]
    fn penalties_only_lower(cfg in valid_config(), stats in valid_stats(), bps in 0u16..=10_000) {
        let stats = MinerStats { stake_weight: stats.stake_weight.max(cfg.min_miner_stake_weight), ..stats };
        let s = score_miner(&cfg, 1, &stats).unwrap();
        let p = s.penalize(bps).unwrap();
        prop_assert!(p.raw_score <= s.raw_score && p.normalized_score <= s.normalized_score);
        prop_assert_eq!(p.raw_score, s.raw_score * u128::from(10_000 - bps) / 10_000);
        let ps = stats.penalize(bps).unwrap();
        prop_assert!(ps.correctness_score <= stats.correctness_score);
    }
}
