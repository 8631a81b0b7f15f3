//! Builds `test-vectors/score.json`: shared by the drift test in `tests/score.rs` and by
//! `examples/gen_vectors.rs`, which rewrites the file.
//!
//! Every case is written with its inputs and the expected result worked out by hand (the
//! arithmetic is in its comment); [`build`] computes the same case with the crate and panics if
//! the two disagree, so the file is both hand-derived and what the code computes.

use serde_json::{json, Map, Value};
use tolldns_score::{
    allocate, apply_centralization_penalty, diversity_component, epoch_end_slot, epoch_has_ended,
    epoch_start_slot, isqrt, penalize, raw_score, reward_share, score_miner, timeliness_component,
    weighted_component, Allocation, MinerScore, MinerStats, ScoreConfig, ScoreError,
};

/// Path of the vector file, relative to this crate's manifest directory.
#[allow(dead_code)] // Used by the example, not by the tests.
pub(crate) const VECTORS_PATH: &str = "../test-vectors/score.json";

/// The configuration of the upstream worked example (digest §2.6).
pub(crate) const EXAMPLE_CONFIG: ScoreConfig = ScoreConfig {
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

/// Miners A, B and C of the worked example, epoch 1.
pub(crate) const EXAMPLE_MINERS: [(&str, MinerStats); 3] = [
    (
        "A",
        MinerStats {
            stake_weight: 1_000,
            unique_name_count: 10,
            first_submit_slot: 101,
            uptime_score: 9_000,
            correctness_score: 10_000,
            dominance_share_bps: 4_000,
        },
    ),
    (
        "B",
        MinerStats {
            stake_weight: 1_000,
            unique_name_count: 40,
            first_submit_slot: 105,
            uptime_score: 9_500,
            correctness_score: 10_000,
            dominance_share_bps: 2_000,
        },
    ),
    (
        "C",
        MinerStats {
            stake_weight: 500,
            unique_name_count: 90,
            first_submit_slot: 102,
            uptime_score: 9_800,
            correctness_score: 10_000,
            dominance_share_bps: 1_000,
        },
    ),
];

/// A decimal string, the encoding of every `u64` and `u128` in the file.
pub(crate) fn dec(v: impl Into<u128>) -> Value {
    Value::String(v.into().to_string())
}

/// JSON form of a configuration.
pub(crate) fn config_json(c: &ScoreConfig) -> Value {
    json!({
        "epoch_len_slots": dec(c.epoch_len_slots),
        "alpha_correctness_bps": c.alpha_correctness_bps,
        "alpha_diversity_bps": c.alpha_diversity_bps,
        "alpha_timeliness_bps": c.alpha_timeliness_bps,
        "alpha_uptime_bps": c.alpha_uptime_bps,
        "centralization_penalty_bps": c.centralization_penalty_bps,
        "dominance_threshold_bps": c.dominance_threshold_bps,
        "diversity_target": c.diversity_target,
        "per_miner_epoch_cap": dec(c.per_miner_epoch_cap),
        "min_miner_stake_weight": dec(c.min_miner_stake_weight),
    })
}

/// JSON form of reported statistics.
pub(crate) fn stats_json(s: &MinerStats) -> Value {
    json!({
        "stake_weight": dec(s.stake_weight),
        "unique_name_count": s.unique_name_count,
        "first_submit_slot": dec(s.first_submit_slot),
        "uptime_score": s.uptime_score,
        "correctness_score": s.correctness_score,
        "dominance_share_bps": s.dominance_share_bps,
    })
}

/// JSON form of a score.
pub(crate) fn score_json(s: &MinerScore) -> Value {
    json!({
        "timeliness_component": s.timeliness_component,
        "diversity_component": s.diversity_component,
        "component": s.component,
        "raw_score": dec(s.raw_score),
        "normalized_score": dec(s.normalized_score),
    })
}

fn allocation_json(rewards: &[u64], a: &Allocation) -> Value {
    json!({
        "rewards": rewards.iter().map(|&r| dec(r)).collect::<Vec<_>>(),
        "total_normalized": dec(a.total_normalized),
        "allocated": dec(a.allocated),
        "unallocated": dec(a.unallocated),
    })
}

/// `{"expected": ..}` or `{"error": "<ScoreError::name>"}`.
fn outcome<T>(r: Result<T, ScoreError>, f: impl FnOnce(T) -> Value) -> (&'static str, Value) {
    match r {
        Ok(v) => ("expected", f(v)),
        Err(e) => ("error", Value::String(e.name().to_owned())),
    }
}

/// Expected outcome written by hand: a value, or an error name.
enum Hand {
    Ok(Value),
    Err(&'static str),
}

use Hand::{Err as E, Ok as V};

/// (comment, pool, normalized, cap, out_len, expected).
type AllocCase = (&'static str, u64, Vec<u128>, u64, usize, Hand);

/// One case: `inputs` (an object), the computed outcome, checked against the hand value.
fn case(
    function: &str,
    comment: &str,
    inputs: Value,
    computed: (&'static str, Value),
    hand: Hand,
) -> Value {
    let hand = match hand {
        Hand::Ok(v) => ("expected", v),
        Hand::Err(name) => ("error", Value::String(name.to_owned())),
    };
    assert_eq!(
        computed, hand,
        "{function}: the code disagrees with the hand-derived value for case {comment:?}"
    );
    let mut obj = Map::new();
    obj.insert("comment".to_owned(), Value::String(comment.to_owned()));
    if let Value::Object(inputs) = inputs {
        obj.extend(inputs);
    }
    obj.insert(computed.0.to_owned(), computed.1);
    Value::Object(obj)
}

const TOP_COMMENT: &str = "Known-answer vectors for tolldns-score (docs/SCORING.md). One array per \
public function, named after it; each case has a \"comment\" (what it checks and how the expected \
value was derived by hand), its inputs under the function's parameter names, and either \
\"expected\" (the result) or \"error\" (the ScoreError variant name, see ScoreError::name and \
ScoreError::code). Encoding: every u64 and u128 value is a decimal string; u16 and u32 values are \
JSON numbers; booleans are JSON booleans. \"config\" objects carry the ScoreConfig fields, \"stats\" \
the MinerStats fields, scores the MinerScore fields. \"epoch\" holds complete epochs (the upstream \
three-miner example, digest §2.6): per-miner stats, score and reward, and the totals. All divisions \
floor. Regenerate with `cargo run -p tolldns-score --example gen_vectors`; the tests fail if this \
file drifts from what the code computes.";

/// Builds the whole vector file.
#[allow(clippy::too_many_lines)]
pub(crate) fn build() -> Value {
    let cfg = EXAMPLE_CONFIG;
    let [(_, a), (_, b), (_, c)] = EXAMPLE_MINERS;
    let mut root = Map::new();
    root.insert("comment".to_owned(), Value::String(TOP_COMMENT.to_owned()));
    root.insert("version".to_owned(), json!(1));

    // Epoch helpers.
    let slots = |id: u64, len: u64| json!({"epoch_id": dec(id), "epoch_len_slots": dec(len)});
    let start_cases: [(&str, u64, u64, Hand); 4] = [
        (
            "Epoch 1 of 100 slots starts at 1 × 100 = 100 (the worked example).",
            1,
            100,
            V(dec(100u64)),
        ),
        ("Epoch 0 starts at slot 0.", 0, 432_000, V(dec(0u64))),
        (
            "A zero epoch length is rejected.",
            5,
            0,
            E("ZeroEpochLength"),
        ),
        (
            "(2^64 − 1) × 2 does not fit a u64.",
            u64::MAX,
            2,
            E("Overflow"),
        ),
    ];
    root.insert(
        "epoch_start_slot".to_owned(),
        Value::Array(
            start_cases
                .into_iter()
                .map(|(cm, id, len, hand)| {
                    case(
                        "epoch_start_slot",
                        cm,
                        slots(id, len),
                        outcome(epoch_start_slot(id, len), dec),
                        hand,
                    )
                })
                .collect(),
        ),
    );
    let end_cases: [(&str, u64, u64, Hand); 4] = [
        (
            "Epoch 1 of 100 slots ends (exclusive) at 2 × 100 = 200.",
            1,
            100,
            V(dec(200u64)),
        ),
        (
            "The last epoch whose end fits: (2^64 − 2) + 1 = 2^64 − 1.",
            u64::MAX - 1,
            1,
            V(dec(u64::MAX)),
        ),
        (
            "The end (2^64 − 1) + 1 does not fit a u64: an error, not saturation.",
            u64::MAX,
            1,
            E("Overflow"),
        ),
        (
            "A zero epoch length is rejected.",
            1,
            0,
            E("ZeroEpochLength"),
        ),
    ];
    root.insert(
        "epoch_end_slot".to_owned(),
        Value::Array(
            end_cases
                .into_iter()
                .map(|(cm, id, len, hand)| {
                    case(
                        "epoch_end_slot",
                        cm,
                        slots(id, len),
                        outcome(epoch_end_slot(id, len), dec),
                        hand,
                    )
                })
                .collect(),
        ),
    );
    let ended_cases: [(&str, u64, u64, u64, Hand); 4] = [
        (
            "Slot 199 is the last slot of epoch 1 (100..200): not ended.",
            1,
            100,
            199,
            V(json!(false)),
        ),
        (
            "Slot 200 = end of epoch 1: ended.",
            1,
            100,
            200,
            V(json!(true)),
        ),
        (
            "An epoch whose end does not fit a u64 never ends.",
            u64::MAX,
            1,
            u64::MAX,
            E("Overflow"),
        ),
        (
            "A zero epoch length is rejected.",
            1,
            0,
            5,
            E("ZeroEpochLength"),
        ),
    ];
    root.insert(
        "epoch_has_ended".to_owned(),
        Value::Array(
            ended_cases
                .into_iter()
                .map(|(cm, id, len, now, hand)| {
                    let mut inputs = slots(id, len);
                    inputs["current_slot"] = dec(now);
                    case(
                        "epoch_has_ended",
                        cm,
                        inputs,
                        outcome(epoch_has_ended(id, len, now), |v| json!(v)),
                        hand,
                    )
                })
                .collect(),
        ),
    );

    // Timeliness.
    let t_cases: [(&str, u64, u64, u64, Hand); 8] = [
        (
            "Miner A: d = 101 − 100 = 1, floor((100 − 1) × 10000 / 100) = 9900.",
            100,
            100,
            101,
            V(json!(9_900)),
        ),
        (
            "Miner B: d = 5, floor(95 × 10000 / 100) = 9500.",
            100,
            100,
            105,
            V(json!(9_500)),
        ),
        (
            "Miner C: d = 2, floor(98 × 10000 / 100) = 9800.",
            100,
            100,
            102,
            V(json!(9_800)),
        ),
        (
            "A first submission before the epoch start clamps to the start: 10000.",
            100,
            100,
            3,
            V(json!(10_000)),
        ),
        (
            "A first submission at the epoch end (slot 200) leaves nothing: 0.",
            100,
            100,
            200,
            V(json!(0)),
        ),
        (
            "Far after the end, d is clamped to the epoch length: 0.",
            100,
            100,
            u64::MAX,
            V(json!(0)),
        ),
        (
            "Floor: d = 1 of 3 slots, floor(2 × 10000 / 3) = 6666.",
            0,
            3,
            1,
            V(json!(6_666)),
        ),
        (
            "A zero epoch length is rejected (the seed divided by max(len, 1)).",
            0,
            0,
            0,
            E("ZeroEpochLength"),
        ),
    ];
    root.insert(
        "timeliness_component".to_owned(),
        Value::Array(
            t_cases
                .into_iter()
                .map(|(cm, start, len, first, hand)| {
                    let inputs = json!({
                        "epoch_start_slot": dec(start),
                        "epoch_len_slots": dec(len),
                        "first_submit_slot": dec(first),
                    });
                    case(
                        "timeliness_component",
                        cm,
                        inputs,
                        outcome(timeliness_component(start, len, first), |v| json!(v)),
                        hand,
                    )
                })
                .collect(),
        ),
    );

    // Diversity.
    let d_cases: [(&str, u32, u32, Hand); 7] = [
        (
            "Miner A: floor(10 × 10000 / 100) = 1000.",
            10,
            100,
            V(json!(1_000)),
        ),
        (
            "Miner B: floor(40 × 10000 / 100) = 4000.",
            40,
            100,
            V(json!(4_000)),
        ),
        (
            "Miner C: floor(90 × 10000 / 100) = 9000.",
            90,
            100,
            V(json!(9_000)),
        ),
        ("Exactly the target: 10000.", 100, 100, V(json!(10_000))),
        (
            "Above the target is capped at 10000 (no u32 overflow: computed in u128).",
            u32::MAX,
            1,
            V(json!(10_000)),
        ),
        ("Floor: floor(1 × 10000 / 3) = 3333.", 1, 3, V(json!(3_333))),
        (
            "A zero diversity target is rejected.",
            1,
            0,
            E("ZeroDiversityTarget"),
        ),
    ];
    root.insert(
        "diversity_component".to_owned(),
        Value::Array(
            d_cases
                .into_iter()
                .map(|(cm, names, target, hand)| {
                    let inputs = json!({"unique_name_count": names, "diversity_target": target});
                    case(
                        "diversity_component",
                        cm,
                        inputs,
                        outcome(diversity_component(names, target), |v| json!(v)),
                        hand,
                    )
                })
                .collect(),
        ),
    );

    // Weighted component.
    let bad_weights = ScoreConfig {
        alpha_uptime_bps: 999,
        ..cfg
    };
    let w_cases: [(&str, ScoreConfig, [u16; 4], Hand); 6] = [
        (
            "Miner A: (5000×10000 + 1000×9000 + 2000×1000 + 2000×9900) / 10000 = 80800000 / 10000 = 8080.",
            cfg,
            [10_000, 9_000, 1_000, 9_900],
            V(json!(8_080)),
        ),
        (
            "Miner B: (50000000 + 9500000 + 8000000 + 19000000) / 10000 = 8650.",
            cfg,
            [10_000, 9_500, 4_000, 9_500],
            V(json!(8_650)),
        ),
        (
            "Miner C: (50000000 + 9800000 + 18000000 + 19600000) / 10000 = 9740.",
            cfg,
            [10_000, 9_800, 9_000, 9_800],
            V(json!(9_740)),
        ),
        (
            "Floor: (5000×1) / 10000 = 0.",
            cfg,
            [1, 0, 0, 0],
            V(json!(0)),
        ),
        (
            "Weights summing to 9999 are rejected.",
            bad_weights,
            [0, 0, 0, 0],
            E("InvalidWeights"),
        ),
        (
            "A timeliness component of 10001 is rejected.",
            cfg,
            [0, 0, 0, 10_001],
            E("ScoreOutOfRange"),
        ),
    ];
    root.insert(
        "weighted_component".to_owned(),
        Value::Array(
            w_cases
                .into_iter()
                .map(|(cm, conf, [corr, up, div, time], hand)| {
                    let inputs = json!({
                        "config": config_json(&conf),
                        "correctness_score": corr,
                        "uptime_score": up,
                        "diversity_component": div,
                        "timeliness_component": time,
                    });
                    let r = weighted_component(&conf, corr, up, div, time);
                    case(
                        "weighted_component",
                        cm,
                        inputs,
                        outcome(r, |v| json!(v)),
                        hand,
                    )
                })
                .collect(),
        ),
    );

    // Raw score.
    let r_cases: [(&str, u64, u16, Hand); 5] = [
        (
            "Miner A before its penalty: 1000 × 8080 = 8080000.",
            1_000,
            8_080,
            V(dec(8_080_000u64)),
        ),
        (
            "Miner B: 1000 × 8650 = 8650000.",
            1_000,
            8_650,
            V(dec(8_650_000u64)),
        ),
        (
            "Miner C: 500 × 9740 = 4870000.",
            500,
            9_740,
            V(dec(4_870_000u64)),
        ),
        (
            "The largest raw score: (2^64 − 1) × 10000, computed in u128.",
            u64::MAX,
            10_000,
            V(dec(u128::from(u64::MAX) * 10_000)),
        ),
        (
            "A component of 10001 is rejected.",
            1,
            10_001,
            E("ScoreOutOfRange"),
        ),
    ];
    root.insert(
        "raw_score".to_owned(),
        Value::Array(
            r_cases
                .into_iter()
                .map(|(cm, stake, comp, hand)| {
                    let inputs = json!({"stake_weight": dec(stake), "component": comp});
                    case(
                        "raw_score",
                        cm,
                        inputs,
                        outcome(raw_score(stake, comp), dec),
                        hand,
                    )
                })
                .collect(),
        ),
    );

    // Centralization penalty.
    let p_cases: [(&str, u128, u16, u16, u16, Hand); 6] = [
        (
            "Miner A: dominance 4000 > threshold 2500, so 8080000 × (10000 − 2000) / 10000 = 6464000.",
            8_080_000,
            4_000,
            2_500,
            2_000,
            V(dec(6_464_000u64)),
        ),
        (
            "Miner B: dominance 2000 ≤ 2500, unchanged.",
            8_650_000,
            2_000,
            2_500,
            2_000,
            V(dec(8_650_000u64)),
        ),
        (
            "Strictly greater: dominance equal to the threshold is not penalized.",
            1_000,
            2_500,
            2_500,
            2_000,
            V(dec(1_000u64)),
        ),
        (
            "One bps above the threshold is penalized: floor(999 × 8000 / 10000) = 799.",
            999,
            2_501,
            2_500,
            2_000,
            V(dec(799u64)),
        ),
        (
            "A 100 % penalty gives 0.",
            8_080_000,
            10_000,
            0,
            10_000,
            V(dec(0u64)),
        ),
        (
            "A dominance share of 10001 bps is rejected.",
            1,
            10_001,
            2_500,
            2_000,
            E("BpsOutOfRange"),
        ),
    ];
    root.insert(
        "apply_centralization_penalty".to_owned(),
        Value::Array(
            p_cases
                .into_iter()
                .map(|(cm, raw, dom, thr, pen, hand)| {
                    let inputs = json!({
                        "raw_score": dec(raw),
                        "dominance_share_bps": dom,
                        "dominance_threshold_bps": thr,
                        "centralization_penalty_bps": pen,
                    });
                    let r = apply_centralization_penalty(raw, dom, thr, pen);
                    case(
                        "apply_centralization_penalty",
                        cm,
                        inputs,
                        outcome(r, dec),
                        hand,
                    )
                })
                .collect(),
        ),
    );

    // penalize.
    let pz_cases: [(&str, u128, u16, Hand); 7] = [
        (
            "Miner A's raw score after a 50 % penalty: 6464000 × 5000 / 10000 = 3232000.",
            6_464_000,
            5_000,
            V(dec(3_232_000u64)),
        ),
        (
            "Miner A's correctness after a 50 % penalty: 10000 × 5000 / 10000 = 5000.",
            10_000,
            5_000,
            V(dec(5_000u64)),
        ),
        (
            "A reward of 10e9 after a 50 % penalty: 5e9 (the upstream test).",
            10_000_000_000,
            5_000,
            V(dec(5_000_000_000u64)),
        ),
        ("Floor: 7 × 5000 / 10000 = 3.", 7, 5_000, V(dec(3u64))),
        ("No penalty leaves the value unchanged.", 7, 0, V(dec(7u64))),
        (
            "A penalty of 10001 bps is rejected.",
            7,
            10_001,
            E("BpsOutOfRange"),
        ),
        (
            "(2^128 − 1) × 9999 does not fit a u128.",
            u128::MAX,
            1,
            E("Overflow"),
        ),
    ];
    root.insert(
        "penalize".to_owned(),
        Value::Array(
            pz_cases
                .into_iter()
                .map(|(cm, v, bps, hand)| {
                    let inputs = json!({"value": dec(v), "penalty_bps": bps});
                    case("penalize", cm, inputs, outcome(penalize(v, bps), dec), hand)
                })
                .collect(),
        ),
    );

    // isqrt.
    let max64 = u128::from(u64::MAX);
    let s_cases: [(&str, u128, u128); 10] = [
        ("isqrt(0) = 0.", 0, 0),
        ("isqrt(3) = 1 (floor).", 3, 1),
        ("isqrt(4) = 2 (exact square).", 4, 2),
        (
            "Miner A: 2542² = 6461764 ≤ 6464000 < 2543² = 6466849.",
            6_464_000,
            2_542,
        ),
        (
            "Miner B: 2941² = 8649481 ≤ 8650000 < 2942² = 8655364.",
            8_650_000,
            2_941,
        ),
        (
            "Miner C: 2206² = 4866436 ≤ 4870000 < 2207² = 4870849.",
            4_870_000,
            2_206,
        ),
        (
            "Miner A after a 50 % penalty: 1797² = 3229209 ≤ 3232000 < 1798² = 3232804.",
            3_232_000,
            1_797,
        ),
        (
            "One below a square: 2^64 − 1 = (2^32)² − 1 has root 2^32 − 1.",
            (1u128 << 64) - 1,
            (1u128 << 32) - 1,
        ),
        ("A large exact square: (2^64 − 1)².", max64 * max64, max64),
        (
            "The largest input, 2^128 − 1: its root is 2^64 − 1.",
            u128::MAX,
            max64,
        ),
    ];
    root.insert(
        "isqrt".to_owned(),
        Value::Array(
            s_cases
                .into_iter()
                .map(|(cm, n, r)| {
                    let inputs = json!({"n": dec(n)});
                    case("isqrt", cm, inputs, ("expected", dec(isqrt(n))), V(dec(r)))
                })
                .collect(),
        ),
    );

    // reward_share.
    let rs_cases: [(&str, u64, u128, u128, u64, Hand); 7] = [
        (
            "Miner A, pool 1e12: floor(1e12 × 2542 / 7689) = 330602158928, capped at 50e9.",
            1_000_000_000_000,
            2_542,
            7_689,
            50_000_000_000,
            V(dec(50_000_000_000u64)),
        ),
        (
            "Miner A, pool 1e10: floor(1e10 × 2542 / 7689) = 3306021589, under the cap.",
            10_000_000_000,
            2_542,
            7_689,
            50_000_000_000,
            V(dec(3_306_021_589u64)),
        ),
        (
            "Floor: floor(100 × 1 / 3) = 33.",
            100,
            1,
            3,
            1_000,
            V(dec(33u64)),
        ),
        (
            "A total of zero (nobody scored) pays zero.",
            100,
            0,
            0,
            1_000,
            V(dec(0u64)),
        ),
        (
            "The whole pool, when the cap allows it.",
            u64::MAX,
            5,
            5,
            u64::MAX,
            V(dec(u64::MAX)),
        ),
        (
            "A normalized score above the total is rejected.",
            100,
            4,
            3,
            1_000,
            E("NormalizedAboveTotal"),
        ),
        (
            "pool × normalized above 2^128 is an error (never for isqrt results, which are < 2^64).",
            2,
            u128::MAX,
            u128::MAX,
            1_000,
            E("Overflow"),
        ),
    ];
    root.insert(
        "reward_share".to_owned(),
        Value::Array(
            rs_cases
                .into_iter()
                .map(|(cm, pool, n, total, cap, hand)| {
                    let inputs = json!({
                        "pool": dec(pool),
                        "normalized": dec(n),
                        "total_normalized": dec(total),
                        "cap": dec(cap),
                    });
                    case(
                        "reward_share",
                        cm,
                        inputs,
                        outcome(reward_share(pool, n, total, cap), dec),
                        hand,
                    )
                })
                .collect(),
        ),
    );

    // allocate.
    let alloc_hand = |rewards: &[u64], total: u128, allocated: u64, unallocated: u64| {
        V(json!({
            "rewards": rewards.iter().map(|&r| dec(r)).collect::<Vec<_>>(),
            "total_normalized": dec(total),
            "allocated": dec(allocated),
            "unallocated": dec(unallocated),
        }))
    };
    let al_cases: [AllocCase; 7] = [
        (
            "The worked example, pool 1e12, cap 50e9: every share (330.6e9, 382.5e9, 286.9e9) is capped; 150e9 allocated, 850e9 stays in the vault.",
            1_000_000_000_000,
            vec![2_542, 2_941, 2_206],
            50_000_000_000,
            3,
            alloc_hand(
                &[50_000_000_000; 3],
                7_689,
                150_000_000_000,
                850_000_000_000,
            ),
        ),
        (
            "The worked example, pool 1e10: floor(1e10 × n / 7689) for n = 2542, 2941, 2206; rounding leaves 1.",
            10_000_000_000,
            vec![2_542, 2_941, 2_206],
            50_000_000_000,
            3,
            alloc_hand(
                &[3_306_021_589, 3_824_944_726, 2_869_033_684],
                7_689,
                9_999_999_999,
                1,
            ),
        ),
        (
            "Pool 90 over 1, 2, 6 (total 9): 10, 20 and 60 capped to 40; 20 unallocated.",
            90,
            vec![1, 2, 6],
            40,
            3,
            alloc_hand(&[10, 20, 40], 9, 70, 20),
        ),
        (
            "No miners: the whole pool is unallocated.",
            1_000,
            vec![],
            40,
            0,
            alloc_hand(&[], 0, 0, 1_000),
        ),
        (
            "Only zero scores: nothing is allocated.",
            1_000,
            vec![0, 0],
            1_000,
            2,
            alloc_hand(&[0, 0], 0, 0, 1_000),
        ),
        (
            "The output slice must have one slot per miner.",
            1_000,
            vec![1, 2, 3],
            1_000,
            2,
            E("LengthMismatch"),
        ),
        (
            "The total normalized score overflows a u128.",
            1_000,
            vec![u128::MAX, 1],
            1_000,
            2,
            E("Overflow"),
        ),
    ];
    root.insert(
        "allocate".to_owned(),
        Value::Array(
            al_cases
                .into_iter()
                .map(|(cm, pool, normalized, cap, out_len, hand)| {
                    let inputs = json!({
                        "pool": dec(pool),
                        "normalized": normalized.iter().map(|&n| dec(n)).collect::<Vec<_>>(),
                        "cap": dec(cap),
                        "out_len": out_len,
                    });
                    let mut out = vec![0u64; out_len];
                    let r = allocate(pool, &normalized, cap, &mut out);
                    case(
                        "allocate",
                        cm,
                        inputs,
                        outcome(r, |a| allocation_json(&out, &a)),
                        hand,
                    )
                })
                .collect(),
        ),
    );

    // Config validation.
    let cv_cases: [(&str, ScoreConfig, Hand); 6] = [
        (
            "The worked example's configuration is valid.",
            cfg,
            V(Value::Null),
        ),
        (
            "epoch_len_slots = 0 is rejected.",
            ScoreConfig {
                epoch_len_slots: 0,
                ..cfg
            },
            E("ZeroEpochLength"),
        ),
        (
            "diversity_target = 0 is rejected.",
            ScoreConfig {
                diversity_target: 0,
                ..cfg
            },
            E("ZeroDiversityTarget"),
        ),
        (
            "Weights summing to 10001 are rejected (they must sum to exactly 10000).",
            ScoreConfig {
                alpha_uptime_bps: 1_001,
                ..cfg
            },
            E("InvalidWeights"),
        ),
        (
            "A centralization penalty of 10001 bps is rejected.",
            ScoreConfig {
                centralization_penalty_bps: 10_001,
                ..cfg
            },
            E("BpsOutOfRange"),
        ),
        (
            "A dominance threshold of 10001 bps is rejected.",
            ScoreConfig {
                dominance_threshold_bps: 10_001,
                ..cfg
            },
            E("BpsOutOfRange"),
        ),
    ];
    root.insert(
        "config_validate".to_owned(),
        Value::Array(
            cv_cases
                .into_iter()
                .map(|(cm, conf, hand)| {
                    let inputs = json!({"config": config_json(&conf)});
                    case(
                        "config_validate",
                        cm,
                        inputs,
                        outcome(conf.validate(), |()| Value::Null),
                        hand,
                    )
                })
                .collect(),
        ),
    );

    // Stats validation.
    let sv_cases: [(&str, MinerStats, Hand); 6] = [
        ("Miner A's stats are valid.", a, V(Value::Null)),
        (
            "uptime_score 12000 is above 10000.",
            MinerStats {
                uptime_score: 12_000,
                ..a
            },
            E("ScoreOutOfRange"),
        ),
        (
            "correctness_score 10001 is above 10000.",
            MinerStats {
                correctness_score: 10_001,
                ..a
            },
            E("ScoreOutOfRange"),
        ),
        (
            "dominance_share_bps 10001 is above 10000.",
            MinerStats {
                dominance_share_bps: 10_001,
                ..a
            },
            E("BpsOutOfRange"),
        ),
        (
            "stake_weight 0 is below min_miner_stake_weight 1.",
            MinerStats {
                stake_weight: 0,
                ..a
            },
            E("InsufficientStake"),
        ),
        (
            "stake_weight equal to the minimum is accepted; 10000 is in range.",
            MinerStats {
                stake_weight: 1,
                uptime_score: 10_000,
                dominance_share_bps: 10_000,
                ..a
            },
            V(Value::Null),
        ),
    ];
    root.insert(
        "stats_validate".to_owned(),
        Value::Array(
            sv_cases
                .into_iter()
                .map(|(cm, s, hand)| {
                    let inputs = json!({"config": config_json(&cfg), "stats": stats_json(&s)});
                    case(
                        "stats_validate",
                        cm,
                        inputs,
                        outcome(s.validate(&cfg), |()| Value::Null),
                        hand,
                    )
                })
                .collect(),
        ),
    );

    // score_miner.
    let sc = |t: u16, d: u16, comp: u16, raw: u128, norm: u128| {
        V(score_json(&MinerScore {
            timeliness_component: t,
            diversity_component: d,
            component: comp,
            raw_score: raw,
            normalized_score: norm,
        }))
    };
    let sm_cases: [(&str, ScoreConfig, u64, MinerStats, Hand); 7] = [
        (
            "Miner A, epoch 1: timeliness 9900, diversity 1000, component 8080, raw 8080000 penalized (dominance 4000 > 2500) to 6464000, isqrt 2542.",
            cfg,
            1,
            a,
            sc(9_900, 1_000, 8_080, 6_464_000, 2_542),
        ),
        (
            "Miner B, epoch 1: 9500, 4000, 8650, raw 1000 × 8650 = 8650000 (no penalty), isqrt 2941.",
            cfg,
            1,
            b,
            sc(9_500, 4_000, 8_650, 8_650_000, 2_941),
        ),
        (
            "Miner C, epoch 1: 9800, 9000, 9740, raw 500 × 9740 = 4870000 (no penalty), isqrt 2206.",
            cfg,
            1,
            c,
            sc(9_800, 9_000, 9_740, 4_870_000, 2_206),
        ),
        (
            "Miner B scored for epoch 2 (slots 200..300): submitting at slot 105 is before the start, timeliness 10000, component (50000000 + 9500000 + 8000000 + 20000000) / 10000 = 8750.",
            cfg,
            2,
            b,
            sc(10_000, 4_000, 8_750, 8_750_000, 2_958),
        ),
        (
            "An invalid configuration is rejected before scoring.",
            ScoreConfig {
                alpha_uptime_bps: 0,
                ..cfg
            },
            1,
            a,
            E("InvalidWeights"),
        ),
        (
            "Invalid stats are rejected before scoring.",
            cfg,
            1,
            MinerStats {
                uptime_score: 12_000,
                ..a
            },
            E("ScoreOutOfRange"),
        ),
        (
            "The epoch's start slot (2^64 − 1) × 100 does not fit a u64.",
            cfg,
            u64::MAX,
            a,
            E("Overflow"),
        ),
    ];
    root.insert(
        "score_miner".to_owned(),
        Value::Array(
            sm_cases
                .into_iter()
                .map(|(cm, conf, epoch_id, s, hand)| {
                    let inputs = json!({
                        "config": config_json(&conf),
                        "epoch_id": dec(epoch_id),
                        "stats": stats_json(&s),
                    });
                    let r = score_miner(&conf, epoch_id, &s);
                    case(
                        "score_miner",
                        cm,
                        inputs,
                        outcome(r, |v| score_json(&v)),
                        hand,
                    )
                })
                .collect(),
        ),
    );

    // MinerStats::penalize and MinerScore::penalize together (the seed's penalize_miner).
    let score_a = score_miner(&cfg, 1, &a).expect("miner A scores");
    let pm_cases: [(&str, u16, Hand); 3] = [
        (
            "Miner A, 50 % penalty (upstream test): correctness 10000 → 5000, raw 6464000 → 3232000, normalized 2542 → 1271; components unchanged.",
            5_000,
            V(
                json!({"stats": stats_json(&MinerStats { correctness_score: 5_000, ..a }), "score": score_json(&MinerScore { raw_score: 3_232_000, normalized_score: 1_271, ..score_a })}),
            ),
        ),
        (
            "Miner A, 100 % penalty: everything that pays goes to 0.",
            10_000,
            V(
                json!({"stats": stats_json(&MinerStats { correctness_score: 0, ..a }), "score": score_json(&MinerScore { raw_score: 0, normalized_score: 0, ..score_a })}),
            ),
        ),
        (
            "A penalty above 10000 bps is rejected.",
            10_001,
            E("BpsOutOfRange"),
        ),
    ];
    root.insert(
        "penalize_miner".to_owned(),
        Value::Array(
            pm_cases
                .into_iter()
                .map(|(cm, bps, hand)| {
                    let inputs = json!({
                        "stats": stats_json(&a),
                        "score": score_json(&score_a),
                        "penalty_bps": bps,
                    });
                    let r = a
                        .penalize(bps)
                        .and_then(|s| Ok((s, score_a.penalize(bps)?)));
                    let computed = outcome(
                        r,
                        |(s, p)| json!({"stats": stats_json(&s), "score": score_json(&p)}),
                    );
                    case("penalize_miner", cm, inputs, computed, hand)
                })
                .collect(),
        ),
    );

    // Complete epochs.
    root.insert(
        "epoch".to_owned(),
        Value::Array(vec![
            epoch_case(
                "The upstream three-miner example (digest §2.6), epoch 1 = slots 100..200, pool 1e12 (the vault funding of the upstream test), cap 50e9. Raw scores 6464000 (A, penalized), 8650000, 4870000; normalized isqrt = 2542, 2941, 2206 (Σ 7689); uncapped shares 330602158928, 382494472623, 286903368448 are all capped at 50e9, so 150e9 is allocated and 850e9 stays unallocated.",
                1_000_000_000_000,
                [50_000_000_000; 3],
            ),
            epoch_case(
                "The same epoch with a pool of 1e10: no share reaches the cap; floor(1e10 × n / 7689) = 3306021589, 3824944726, 2869033684, allocated 9999999999, unallocated 1.",
                10_000_000_000,
                [3_306_021_589, 3_824_944_726, 2_869_033_684],
            ),
        ]),
    );

    Value::Object(root)
}

fn epoch_case(comment: &str, pool: u64, hand_rewards: [u64; 3]) -> Value {
    let cfg = EXAMPLE_CONFIG;
    let epoch_id = 1u64;
    let scores: Vec<MinerScore> = EXAMPLE_MINERS
        .iter()
        .map(|(_, s)| score_miner(&cfg, epoch_id, s).expect("example miners score"))
        .collect();
    let normalized: Vec<u128> = scores.iter().map(|s| s.normalized_score).collect();
    let mut rewards = vec![0u64; scores.len()];
    let totals =
        allocate(pool, &normalized, cfg.per_miner_epoch_cap, &mut rewards).expect("allocates");
    assert_eq!(
        rewards, hand_rewards,
        "epoch rewards disagree with the hand values: {comment}"
    );
    let total_raw: u128 = scores.iter().map(|s| s.raw_score).sum();
    assert_eq!(total_raw, 6_464_000 + 8_650_000 + 4_870_000);
    let miners: Vec<Value> = EXAMPLE_MINERS
        .iter()
        .zip(&scores)
        .zip(&rewards)
        .map(|(((name, stats), score), &reward)| {
            json!({
                "miner": name,
                "stats": stats_json(stats),
                "score": score_json(score),
                "reward": dec(reward),
            })
        })
        .collect();
    json!({
        "comment": comment,
        "config": config_json(&cfg),
        "epoch_id": dec(epoch_id),
        "pool": dec(pool),
        "miners": miners,
        "totals": {
            "total_raw_score": dec(total_raw),
            "total_normalized_score": dec(totals.total_normalized),
            "allocated": dec(totals.allocated),
            "unallocated": dec(totals.unallocated),
        },
    })
}
