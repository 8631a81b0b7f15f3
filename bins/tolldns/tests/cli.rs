//! Runs the built `tolldns` binary: `score epoch` on the upstream three-miner example against
//! `test-vectors/score.json`, and bad inputs (exit code 2, field named on stderr).

use std::io::Write;
use std::process::{Command, Output, Stdio};

use serde_json::Value;

const EXAMPLE_INPUT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../test-vectors/score-epoch-input.json"
);
const VECTORS: &str = include_str!("../../../test-vectors/score.json");

fn tolldns(args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_tolldns"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary runs");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

fn example_input() -> Value {
    serde_json::from_str(&std::fs::read_to_string(EXAMPLE_INPUT).unwrap()).unwrap()
}

#[test]
fn epoch_output_equals_the_vectors() {
    let out = tolldns(&["score", "epoch", "--input", EXAMPLE_INPUT], "");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let vectors: Value = serde_json::from_str(VECTORS).unwrap();
    let expected = &vectors["epoch"][0];
    assert_eq!(report["epoch_id"], expected["epoch_id"]);
    assert_eq!(report["pool"], expected["pool"]);
    for key in [
        "total_raw_score",
        "total_normalized_score",
        "allocated",
        "unallocated",
    ] {
        assert_eq!(report[key], expected["totals"][key], "{key}");
    }
    let got = report["miners"].as_array().unwrap();
    let want = expected["miners"].as_array().unwrap();
    assert_eq!(got.len(), want.len());
    for (g, w) in got.iter().zip(want) {
        assert_eq!(g["miner"], w["miner"]);
        assert_eq!(g["reward"], w["reward"]);
        for key in [
            "timeliness_component",
            "diversity_component",
            "component",
            "raw_score",
            "normalized_score",
        ] {
            assert_eq!(g[key], w["score"][key], "{} {key}", w["miner"]);
        }
    }
    // The headline numbers, independent of the vector file.
    assert_eq!(got[0]["raw_score"], "6464000");
    assert_eq!(report["unallocated"], "850000000000");
    // The input file carries the same epoch as the vectors.
    let input = example_input();
    assert_eq!(
        input["config"]["per_miner_epoch_cap"],
        expected["config"]["per_miner_epoch_cap"]
    );
}

#[test]
fn epoch_reads_stdin_and_keeps_input_order() {
    let mut input = example_input();
    input["miners"].as_array_mut().unwrap().reverse();
    let out = tolldns(&["score", "epoch", "--input", "-"], &input.to_string());
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let names: Vec<&str> = report["miners"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["miner"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["C", "B", "A"]);
    assert_eq!(report["miners"][2]["raw_score"], "6464000");
    assert_eq!(report["unallocated"], "850000000000");
}

/// Runs `score epoch` on the example with `edit` applied; expects exit 2 and `message` on stderr.
fn rejects(edit: impl FnOnce(&mut Value), message: &str) {
    let mut input = example_input();
    edit(&mut input);
    let out = tolldns(&["score", "epoch", "--input", "-"], &input.to_string());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "stderr: {stderr}");
    assert!(
        stderr.contains(message),
        "expected {message:?} in stderr: {stderr}"
    );
    assert!(out.stdout.is_empty());
}

#[test]
fn bad_inputs_exit_2_naming_the_field() {
    rejects(
        |v| v["miners"][1]["uptime_score"] = 12_000.into(),
        "miners[1].uptime_score: 12000 is above 10000",
    );
    rejects(
        |v| v["miners"][0]["dominance_share_bps"] = 10_001.into(),
        "miners[0].dominance_share_bps: 10001 is above 10000",
    );
    rejects(
        |v| v["miners"][2]["stake_weight"] = 0.into(),
        "miners[2].stake_weight: 0 is below min_miner_stake_weight 1",
    );
    rejects(
        |v| v["miners"][2]["uptime_score"] = 70_000.into(),
        "miners[2].uptime_score: 70000 does not fit in u16",
    );
    rejects(
        |v| v["miners"][0]["extra"] = 1.into(),
        "miners[0].extra: unknown field",
    );
    rejects(
        |v| {
            v["miners"][1]
                .as_object_mut()
                .unwrap()
                .remove("correctness_score");
        },
        "miners[1].correctness_score: missing",
    );
    rejects(
        |v| v["miners"][1]["miner"] = "A".into(),
        "miners[1].miner: \"A\" is already miners[0]",
    );
    rejects(
        |v| v["pool"] = "-5".into(),
        "pool: \"-5\" is not a decimal integer",
    );
    rejects(
        |v| v["pool"] = (-5).into(),
        "pool: -5 is not a non-negative integer",
    );
    rejects(
        |v| v["config"]["alpha_uptime_bps"] = 999.into(),
        "config: alpha_*_bps weights sum to 9999",
    );
    rejects(
        |v| v["config"]["epoch_len_slots"] = 0.into(),
        "config.epoch_len_slots: must not be zero",
    );
    rejects(
        |v| v["config"]["dominance_threshold_bps"] = 10_001.into(),
        "config.dominance_threshold_bps: 10001 is above 10000",
    );
    rejects(
        |v| v["config"]["bonus"] = 1.into(),
        "config.bonus: unknown field",
    );
    rejects(
        |v| v["epoch_id"] = u64::MAX.into(),
        "miners[0]: arithmetic overflow",
    );
}

#[test]
fn malformed_or_missing_input_exits_2() {
    let out = tolldns(&["score", "epoch", "--input", "-"], "{not json");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("input is not valid JSON"));
    let out = tolldns(
        &["score", "epoch", "--input", "/nonexistent/epoch.json"],
        "",
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/epoch.json"));
    let out = tolldns(&["score", "epoch"], "");
    assert_eq!(out.status.code(), Some(2), "a usage error");
}
