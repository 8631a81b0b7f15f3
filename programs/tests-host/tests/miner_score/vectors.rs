//! The `epoch` cases of `test-vectors/score.json` (written by tolldns-score's engineer; see the
//! file's own `comment`). Integers wider than 32 bits are JSON strings there; both forms are
//! accepted here.

use std::path::PathBuf;

use serde_json::Value;
use tolldns_miner_score::{MinerEpochReport, ScoreParams};

/// One miner of an epoch case.
#[derive(Debug, Clone)]
pub struct MinerCase {
    pub stake_weight: u64,
    /// Its reported stats (`aggregates_submitted`, `unique_receipt_count` and
    /// `last_submit_slot` are not in the vectors and are filled in).
    pub report: MinerEpochReport,
    pub timeliness_component: u16,
    pub diversity_component: u16,
    pub component: u16,
    pub raw_score: u128,
    pub normalized_score: u128,
    pub reward: u64,
}

/// One whole-epoch case.
#[derive(Debug, Clone)]
pub struct EpochCase {
    pub comment: String,
    pub score: ScoreParams,
    pub epoch_id: u64,
    pub pool: u64,
    pub miners: Vec<MinerCase>,
    pub total_raw_score: u128,
    pub total_normalized_score: u128,
    pub allocated: u64,
    pub unallocated: u64,
}

fn path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../test-vectors/score.json")
}

fn int<T: TryFrom<u128>>(v: &Value, key: &str) -> T
where
    T::Error: std::fmt::Debug,
{
    let field = &v[key];
    let n: u128 = match field {
        Value::String(s) => s.parse().unwrap_or_else(|e| panic!("{key}: {e}")),
        Value::Number(n) => u128::from(n.as_u64().unwrap_or_else(|| panic!("{key}: not a u64"))),
        other => panic!("{key}: expected an integer, got {other}"),
    };
    T::try_from(n).unwrap_or_else(|e| panic!("{key}: {e:?}"))
}

/// The `epoch` cases, or `None` if `score.json` does not exist (yet).
pub fn epoch_cases() -> Option<Vec<EpochCase>> {
    let text = std::fs::read_to_string(path()).ok()?;
    let json: Value = serde_json::from_str(&text).expect("score.json is valid JSON");
    let cases = json["epoch"]
        .as_array()
        .expect("score.json has an `epoch` array");
    Some(cases.iter().map(parse_case).collect())
}

fn parse_case(c: &Value) -> EpochCase {
    let cfg = &c["config"];
    let score = ScoreParams {
        epoch_len_slots: int(cfg, "epoch_len_slots"),
        per_miner_epoch_cap: int(cfg, "per_miner_epoch_cap"),
        min_miner_stake_weight: int(cfg, "min_miner_stake_weight"),
        alpha_correctness_bps: int(cfg, "alpha_correctness_bps"),
        alpha_diversity_bps: int(cfg, "alpha_diversity_bps"),
        alpha_timeliness_bps: int(cfg, "alpha_timeliness_bps"),
        alpha_uptime_bps: int(cfg, "alpha_uptime_bps"),
        centralization_penalty_bps: int(cfg, "centralization_penalty_bps"),
        dominance_threshold_bps: int(cfg, "dominance_threshold_bps"),
        diversity_target: int(cfg, "diversity_target"),
    };
    let miners = c["miners"]
        .as_array()
        .expect("miners")
        .iter()
        .map(|m| {
            let st = &m["stats"];
            let sc = &m["score"];
            let first: u64 = int(st, "first_submit_slot");
            MinerCase {
                stake_weight: int(st, "stake_weight"),
                report: MinerEpochReport {
                    aggregates_submitted: 1,
                    unique_name_count: int(st, "unique_name_count"),
                    unique_receipt_count: int(st, "unique_name_count"),
                    first_submit_slot: first,
                    last_submit_slot: first,
                    uptime_score: int(st, "uptime_score"),
                    correctness_score: int(st, "correctness_score"),
                    dominance_share_bps: int(st, "dominance_share_bps"),
                },
                timeliness_component: int(sc, "timeliness_component"),
                diversity_component: int(sc, "diversity_component"),
                component: int(sc, "component"),
                raw_score: int(sc, "raw_score"),
                normalized_score: int(sc, "normalized_score"),
                reward: int(m, "reward"),
            }
        })
        .collect();
    let totals = &c["totals"];
    EpochCase {
        comment: c["comment"].as_str().unwrap_or_default().to_owned(),
        score,
        epoch_id: int(c, "epoch_id"),
        pool: int(c, "pool"),
        miners,
        total_raw_score: int(totals, "total_raw_score"),
        total_normalized_score: int(totals, "total_normalized_score"),
        allocated: int(totals, "allocated"),
        unallocated: int(totals, "unallocated"),
    }
}
