//! Runs the built `tolldns` binary: `score epoch` on the upstream three-miner example against
//! `test-vectors/score.json`, and bad inputs (exit code 2, field named on stderr); `keygen`
//! (file mode, public key, refusals); `receipt verify --accept-v1` on the v1 vectors of
//! `test-vectors/receipts.json` in every input format, its negative cases and sampled proofs;
//! v2 receipts, audits and the audit-API commands (in `cli/receipts_v2.rs`); `merkle` on
//! Certificate Transparency's RFC 6962 test leaves; `ticket fetch|show` and `query` (in
//! `cli/tickets.rs`).

use std::io::Write;
use std::process::{Command, Output, Stdio};

use serde_json::Value;

#[path = "cli/receipts_v2.rs"]
mod receipts_v2;
#[path = "cli/tickets.rs"]
mod tickets;

const EXAMPLE_INPUT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../test-vectors/score-epoch-input.json"
);
const VECTORS: &str = include_str!("../../../test-vectors/score.json");

fn tolldns(args: &[&str], stdin: &str) -> Output {
    tolldns_bytes(args, stdin.as_bytes())
}

fn tolldns_bytes(args: &[&str], stdin: &[u8]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_tolldns"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary runs");
    // The binary may exit (e.g. on a usage error) before reading its input.
    match child.stdin.take().unwrap().write_all(stdin) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {}
        other => other.unwrap(),
    }
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

// ---------------------------------------------------------------------------------------------
// Shared helpers for the keygen, receipt and merkle tests.

const RECEIPT_VECTORS: &str = include_str!("../../../test-vectors/receipts.json");

fn receipt_vectors() -> Value {
    serde_json::from_str(RECEIPT_VECTORS).unwrap()
}

fn stdout_of(out: &Output) -> String {
    String::from_utf8(out.stdout.clone()).unwrap()
}

fn stderr_of(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Asserts the exit code, showing stderr when it differs.
#[track_caller]
fn assert_exit(out: &Output, code: i32) {
    assert_eq!(
        out.status.code(),
        Some(code),
        "stdout: {}\nstderr: {}",
        String::from_utf8_lossy(&out.stdout),
        stderr_of(out)
    );
}

/// A fresh empty directory for one test.
fn scratch_dir(name: &str) -> std::path::PathBuf {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("cli-{name}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn write_file(dir: &std::path::Path, name: &str, contents: &[u8]) -> String {
    let path = dir.join(name);
    std::fs::write(&path, contents).unwrap();
    path.to_str().unwrap().to_owned()
}

// ---------------------------------------------------------------------------------------------
// keygen

#[cfg(unix)]
fn mode_of(path: &str) -> u32 {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[cfg(unix)]
fn chmod(path: &str, mode: u32) {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// The 64 numbers of a key file: seed, then public key.
fn key_file_bytes(path: &str) -> Vec<u8> {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[cfg(unix)]
#[test]
fn keygen_creates_an_owner_only_key_file_and_prints_its_public_key() {
    let dir = scratch_dir("keygen");
    let path = dir.join("op.json").to_str().unwrap().to_owned();
    let out = tolldns(&["keygen", "--out", &path], "");
    assert_exit(&out, 0);
    let printed = stdout_of(&out);
    let pubkey = printed.trim_end();
    assert_eq!(mode_of(&path), 0o600);
    let bytes = key_file_bytes(&path);
    assert_eq!(bytes.len(), 64);
    // The public key printed is the one stored and the one the seed derives.
    assert_eq!(pubkey, bs58::encode(&bytes[32..]).into_string());
    let seed: [u8; 32] = bytes[..32].try_into().unwrap();
    let derived = ed25519_dalek::SigningKey::from_bytes(&seed).verifying_key();
    assert_eq!(derived.as_bytes(), &bytes[32..]);
    assert!(!printed.contains(&format!("{:?}", &bytes[..4])));

    // --pubkey reads it back.
    let out = tolldns(&["keygen", "--pubkey", &path], "");
    assert_exit(&out, 0);
    assert_eq!(stdout_of(&out), format!("{pubkey}\n"));

    // No overwrite without --force; the file is untouched.
    let out = tolldns(&["keygen", "--out", &path], "");
    assert_exit(&out, 2);
    assert!(
        stderr_of(&out).contains("already exists"),
        "{}",
        stderr_of(&out)
    );
    assert!(out.stdout.is_empty());
    assert_eq!(key_file_bytes(&path), bytes);

    // --force replaces it with a new key, and a loose mode does not survive.
    chmod(&path, 0o644);
    let out = tolldns(&["keygen", "--out", &path, "--force"], "");
    assert_exit(&out, 0);
    let new_pubkey = stdout_of(&out).trim_end().to_owned();
    assert_ne!(new_pubkey, pubkey);
    assert_eq!(mode_of(&path), 0o600);
    assert_eq!(
        bs58::encode(&key_file_bytes(&path)[32..]).into_string(),
        new_pubkey
    );
    // No temporary file is left behind.
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 1);

    // --pubkey and --out are exclusive.
    let out = tolldns(&["keygen", "--pubkey", &path, "--out", &path], "");
    assert_exit(&out, 2);
}

#[cfg(unix)]
#[test]
fn keygen_pubkey_of_a_known_key_and_refusals() {
    let dir = scratch_dir("keygen-pubkey");
    // The receipts test-vector key: seed 0x00..=0x1f.
    let v = receipt_vectors();
    let seed: [u8; 32] = hex::decode(v["signing_key_seed"].as_str().unwrap())
        .unwrap()
        .try_into()
        .unwrap();
    let key = ed25519_dalek::SigningKey::from_bytes(&seed);
    let mut numbers = seed.to_vec();
    numbers.extend_from_slice(key.verifying_key().as_bytes());
    let path = write_file(
        &dir,
        "known.json",
        serde_json::to_string(&numbers).unwrap().as_bytes(),
    );
    chmod(&path, 0o600);
    let out = tolldns(&["keygen", "--pubkey", &path], "");
    assert_exit(&out, 0);
    assert_eq!(
        stdout_of(&out),
        "FAe4sisG95oZ42w7buUn5qEE4TAnfTTFPiguZUHmhiF\n"
    );
    assert_eq!(
        v["operator_id"],
        "FAe4sisG95oZ42w7buUn5qEE4TAnfTTFPiguZUHmhiF"
    );

    // Group- or world-accessible key files are refused.
    for mode in [0o644, 0o640, 0o604, 0o660, 0o610] {
        chmod(&path, mode);
        let out = tolldns(&["keygen", "--pubkey", &path], "");
        assert_exit(&out, 2);
        let err = stderr_of(&out);
        // "readable" when a read bit is set, "accessible" otherwise (0610).
        let word = if mode & 0o044 != 0 {
            "readable"
        } else {
            "accessible"
        };
        assert!(err.contains(&format!("{word} by group or others")), "{err}");
        assert!(err.contains(&format!("mode {mode:04o}")), "{err}");
        assert!(err.contains("chmod 600"), "{err}");
        assert!(out.stdout.is_empty());
    }
    chmod(&path, 0o400);
    assert_exit(&tolldns(&["keygen", "--pubkey", &path], ""), 0);

    // A stored public key that does not match the seed.
    numbers[63] ^= 1;
    let bad = write_file(
        &dir,
        "bad.json",
        serde_json::to_string(&numbers).unwrap().as_bytes(),
    );
    chmod(&bad, 0o600);
    let out = tolldns(&["keygen", "--pubkey", &bad], "");
    assert_exit(&out, 2);
    assert!(stderr_of(&out).contains("public key does not match"));
    // Not a key file at all, a missing file, a directory.
    let junk = write_file(&dir, "junk.json", b"{\"key\": 1}");
    chmod(&junk, 0o600);
    let out = tolldns(&["keygen", "--pubkey", &junk], "");
    assert_exit(&out, 2);
    assert!(stderr_of(&out).contains("not a JSON array"));
    let missing = dir.join("missing.json");
    assert_exit(
        &tolldns(&["keygen", "--pubkey", missing.to_str().unwrap()], ""),
        2,
    );
    let sub = dir.join("subdir");
    std::fs::create_dir(&sub).unwrap();
    chmod(sub.to_str().unwrap(), 0o700);
    let out = tolldns(&["keygen", "--pubkey", sub.to_str().unwrap()], "");
    assert_exit(&out, 2);
    assert!(stderr_of(&out).contains("not a regular file"));
}

// ---------------------------------------------------------------------------------------------
// receipt verify

#[test]
fn receipt_verify_accepts_the_vector_receipt_in_every_format() {
    let v = receipt_vectors();
    let hex_text = v["receipt_borsh_hex"].as_str().unwrap();
    let raw = hex::decode(hex_text).unwrap();
    let json = v["receipt_json"].as_str().unwrap();
    let dir = scratch_dir("receipt-formats");
    let raw_file = write_file(&dir, "r.bin", &raw);
    let expected = "valid: v1 BATCH receipt of operator FAe4sisG95oZ42w7buUn5qEE4TAnfTTFPiguZUHmhiF \
                    (EDGE_INGRESS, backend edge-ingress) for window 29333335 (60 s), 7 leaves, \
                    root 6384aff6b8fc636d41f8ccc2f89eb38ae23006ec922764c929e74ccc97ebd79f; \
                    registry checks not performed\n";
    let hex_line = format!("{hex_text}\n");
    let hex_upper = hex_text.to_uppercase();
    let cases: [(&[&str], &[u8]); 8] = [
        (&[], &raw),
        (&["-", "--format", "borsh"], &raw),
        (&[], hex_line.as_bytes()),
        (&["--format", "hex"], hex_upper.as_bytes()),
        (&[], json.as_bytes()),
        (&["--format", "json"], json.as_bytes()),
        (&[&raw_file], b""),
        (&[&raw_file, "--format", "borsh"], b""),
    ];
    for (extra, stdin) in cases {
        let mut args = vec!["receipt", "verify", "--accept-v1"];
        args.extend_from_slice(extra);
        let out = tolldns_bytes(&args, stdin);
        assert_exit(&out, 0);
        assert_eq!(stdout_of(&out), expected, "{args:?}");
    }

    let out = tolldns(&["receipt", "verify", "--accept-v1", "--json"], json);
    assert_exit(&out, 0);
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["valid"], true);
    assert_eq!(report["receipt_version"], 1);
    assert_eq!(report["deployment_id"], Value::Null);
    assert_eq!(report["ticketed_leaf_count"], Value::Null);
    assert_eq!(report["tickets"], "none");
    assert_eq!(report["operator_id"], v["operator_id"]);
    assert_eq!(report["backend_id"], "edge-ingress");
    assert_eq!(report["policy_version"], 7);
    assert_eq!(report["window_id"], 29_333_335);
    assert_eq!(report["timestamp_ms"], 1_760_000_160_000u64);
    assert_eq!(report["leaf_count"], 7);
    assert_eq!(report["merkle_root"], v["merkle_root"]);
    assert_eq!(report["proofs_verified"], 0);
    assert_eq!(report["audit"], Value::Null);
    assert_eq!(report["registry_checked"], false);

    // Without --accept-v1 a v1 receipt is refused, as a v2 deployment does.
    let out = tolldns(&["receipt", "verify", "--json"], json);
    assert_exit(&out, 1);
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        report,
        serde_json::json!({"valid": false, "rule": "v1_not_accepted", "code": 42,
                           "message": "v1 receipts are no longer accepted"})
    );
    assert!(stderr_of(&out).contains("verification failed: v1_not_accepted: "));
}

/// The stable rule name of a v1 vector's `expected_error` (written as the `Debug` form).
fn v1_rule_name(expected: &str) -> &'static str {
    match expected {
        "Signature(Invalid)" => "signature",
        "SuccessPlusErrorExceedsRequests" => "success_plus_error_exceeds_requests",
        "CacheExceedsRequests" => "cache_exceeds_requests",
        "LeafCountMismatch" => "leaf_count_mismatch",
        "WorkClassSumMismatch" => "work_class_sum_mismatch",
        other => panic!("no rule name for the vector error {other}"),
    }
}

#[test]
fn receipt_verify_negative_vectors_fail_naming_the_rule() {
    let v = receipt_vectors();
    let mut seen = 0;
    for case in v["negative"].as_array().unwrap() {
        if case["kind"] != "receipt" {
            continue;
        }
        seen += 1;
        let rule = v1_rule_name(case["expected_error"].as_str().unwrap());
        let hex_text = case["receipt_hex"].as_str().unwrap();
        let out = tolldns(&["receipt", "verify", "--accept-v1"], hex_text);
        assert_exit(&out, 1);
        let err = stderr_of(&out);
        assert!(
            err.contains(&format!("verification failed: {rule}: ")),
            "{rule}: {err}"
        );
        assert!(out.stdout.is_empty());
        // The same receipt as raw Borsh, and as JSON with --json output.
        let raw = hex::decode(hex_text).unwrap();
        let out = tolldns_bytes(
            &[
                "receipt",
                "verify",
                "--accept-v1",
                "--format",
                "borsh",
                "--json",
            ],
            &raw,
        );
        assert_exit(&out, 1);
        let report: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(report["valid"], false);
        assert_eq!(report["rule"], rule);
        assert!(report["code"].as_u64().unwrap() > 0);
        assert_eq!(report.as_object().unwrap().len(), 4, "{report}");
    }
    assert_eq!(seen, 5);

    // The receipt's timestamp is the window's end: inside only with some skew.
    let json = v["receipt_json"].as_str().unwrap();
    let out = tolldns(
        &["receipt", "verify", "--accept-v1", "--skew-ms", "0"],
        json,
    );
    assert_exit(&out, 1);
    assert!(
        stderr_of(&out)
            .contains("timestamp_outside_window: timestamp 1760000160000 ms is outside the window")
    );
    assert_exit(
        &tolldns(
            &["receipt", "verify", "--accept-v1", "--skew-ms", "1"],
            json,
        ),
        0,
    );
}

#[test]
fn receipt_verify_bad_input_exits_2() {
    let v = receipt_vectors();
    let hex_text = v["receipt_borsh_hex"].as_str().unwrap();
    let json = v["receipt_json"].as_str().unwrap();
    let cases: Vec<(Vec<&str>, Vec<u8>, &str)> = vec![
        (vec![], b"garbage".to_vec(), "decoding the receipt (Borsh)"),
        (vec![], Vec::new(), "decoding the receipt (Borsh)"),
        (
            vec![],
            hex_text.as_bytes()[..100].to_vec(),
            "decoding the receipt (hex of Borsh)",
        ),
        (
            vec![],
            b"abc".to_vec(),
            "decoding the receipt (hex of Borsh)",
        ),
        (
            vec![],
            format!("{hex_text}00").into_bytes(),
            "1 bytes left after the value",
        ),
        (
            vec![],
            b"{\"receipt_version\": 1}".to_vec(),
            "decoding the receipt (JSON form)",
        ),
        (
            vec![],
            json.replace("\"policy_version\"", "\"extra\":1,\"policy_version\"")
                .into_bytes(),
            "unknown field",
        ),
        (
            vec!["--format", "json"],
            hex_text.as_bytes().to_vec(),
            "JSON form",
        ),
        (
            vec!["--format", "borsh"],
            hex_text.as_bytes().to_vec(),
            "(Borsh)",
        ),
        (
            vec!["--format", "hex"],
            json.as_bytes().to_vec(),
            "hex of Borsh",
        ),
        (vec!["--seed", "00"], json.as_bytes().to_vec(), "--proofs"),
        (
            vec!["--sample-size", "3"],
            json.as_bytes().to_vec(),
            "--sample-size: only used with --seed",
        ),
        (
            vec!["--deployment", "abcd"],
            json.as_bytes().to_vec(),
            "--deployment",
        ),
        (
            vec!["--window-secs", "0"],
            json.as_bytes().to_vec(),
            "--window-secs",
        ),
        (
            vec!["--issuer-name", "x"],
            json.as_bytes().to_vec(),
            "--issuer-name: only used to check tokens",
        ),
        (vec!["--format", "yaml"], json.as_bytes().to_vec(), "yaml"),
    ];
    for (extra, stdin, message) in cases {
        let mut args = vec!["receipt", "verify", "--accept-v1"];
        args.extend(extra);
        let out = tolldns_bytes(&args, &stdin);
        assert_exit(&out, 2);
        let err = stderr_of(&out);
        assert!(
            err.to_lowercase().contains(&message.to_lowercase()),
            "{args:?}: {message:?} not in {err}"
        );
        assert!(out.stdout.is_empty());
    }
    let out = tolldns(
        &[
            "receipt",
            "verify",
            "--accept-v1",
            "/nonexistent/receipt.bin",
        ],
        "",
    );
    assert_exit(&out, 2);
    assert!(stderr_of(&out).contains("/nonexistent/receipt.bin"));
}

/// `tolldns merkle proof --json` for leaf `index` of the vector leaves.
fn vector_proof(index: usize) -> Value {
    let v = receipt_vectors();
    let leaves: Vec<&str> = v["leaves"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["leaf_hex"].as_str().unwrap())
        .collect();
    let index = index.to_string();
    let mut args = vec!["merkle", "proof", "--json", "--index", &index];
    args.extend(leaves);
    let out = tolldns(&args, "");
    assert_exit(&out, 0);
    serde_json::from_slice(&out.stdout).unwrap()
}

/// A proofs-file entry for vector leaf `index` (leaf, index, size, path).
fn proof_entry(index: usize) -> Value {
    let v = receipt_vectors();
    let p = vector_proof(index);
    serde_json::json!({
        "leaf_hex": v["leaves"][index]["leaf_hex"],
        "leaf_index": p["index"],
        "tree_size": p["tree_size"],
        "path": p["path"],
    })
}

fn proofs_file(dir: &std::path::Path, name: &str, entries: Vec<Value>) -> String {
    let doc = serde_json::json!({ "proofs": entries });
    write_file(dir, name, doc.to_string().as_bytes())
}

#[test]
fn merkle_proofs_of_the_vector_leaves_match_the_vectors() {
    let v = receipt_vectors();
    for i in 0..7 {
        let p = vector_proof(i);
        assert_eq!(p["root"], v["merkle_root"]);
        assert_eq!(p["leaf_hash"], v["leaves"][i]["leaf_hash"]);
        assert_eq!(p["tree_size"], 7);
    }
    for vp in v["proofs"].as_array().unwrap() {
        let p = vector_proof(vp["leaf_index"].as_u64().unwrap() as usize);
        assert_eq!(p["path"], vp["path"]);
    }
}

#[test]
fn receipt_verify_checks_sampled_proofs() {
    let v = receipt_vectors();
    let json = v["receipt_json"].as_str().unwrap();
    let dir = scratch_dir("receipt-proofs");
    let receipt = write_file(&dir, "receipt.json", json.as_bytes());
    let verify = |extra: &[&str]| {
        let mut args = vec!["receipt", "verify", "--accept-v1", receipt.as_str()];
        args.extend_from_slice(extra);
        tolldns(&args, "")
    };

    // The vector proofs' leaves (0, 3, 6), without a seed; one entry in proof_hex form.
    let mut entries: Vec<Value> = [0, 3].into_iter().map(proof_entry).collect();
    let vp6 = &v["proofs"][2];
    assert_eq!(vp6["leaf_index"], 6);
    entries.push(serde_json::json!({
        "leaf_hex": v["leaves"][6]["leaf_hex"],
        "proof_hex": vp6["proof_hex"],
    }));
    let three = proofs_file(&dir, "three.json", entries.clone());
    let out = verify(&["--proofs", &three]);
    assert_exit(&out, 0);
    assert!(
        stdout_of(&out)
            .contains("; 3 proofs verified, 0 neighbours; registry checks not performed")
    );

    // The audit sample of the vector seed with k = 3 is [4, 2, 1]: answers in draw order.
    let seed = v["audit"]["seed"].as_str().unwrap();
    assert_eq!(v["audit"]["indices"], serde_json::json!([4, 2, 1]));
    let sample = proofs_file(
        &dir,
        "sample.json",
        [4, 2, 1].into_iter().map(proof_entry).collect(),
    );
    let out = verify(&[
        "--proofs",
        &sample,
        "--seed",
        seed,
        "--sample-size",
        "3",
        "--json",
    ]);
    assert_exit(&out, 0);
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["proofs_verified"], 3);
    assert_eq!(report["audit"]["k"], 3);
    assert_eq!(report["audit"]["indices"], serde_json::json!([4, 2, 1]));
    assert_eq!(report["audit"]["seed"], seed);
    assert_eq!(report["audit"]["sampled"], 3);
    assert_eq!(report["audit"]["neighbours"], 0);
    // The same proofs in another order: refused, the sample's order is the spec's.
    let sorted = proofs_file(
        &dir,
        "sorted.json",
        [1, 2, 4].into_iter().map(proof_entry).collect(),
    );
    let out = verify(&["--proofs", &sorted, "--seed", seed, "--sample-size", "3"]);
    assert_exit(&out, 1);
    let err = stderr_of(&out);
    assert!(
        err.contains("verification failed: proof_for_wrong_leaf: proof for sampled leaf 4"),
        "{err}"
    );
    assert!(
        err.contains("(audit sample, in draw order: [4, 2, 1]; the proofs answer [1, 2, 4])"),
        "{err}"
    );

    // The default k (0.99 at 10 % fakes = 44) clamps to all 7 leaves, in draw order.
    let mut root = [0u8; 32];
    hex::decode_to_slice(v["merkle_root"].as_str().unwrap(), &mut root).unwrap();
    let mut seed_bytes = [0u8; 32];
    hex::decode_to_slice(seed, &mut seed_bytes).unwrap();
    let order = tolldns_receipts::AuditSample::new(&seed_bytes, &root, 7, 7);
    let all = proofs_file(
        &dir,
        "all.json",
        order
            .indices()
            .iter()
            .map(|i| proof_entry(*i as usize))
            .collect(),
    );
    let out = verify(&["--proofs", &all, "--seed", seed]);
    assert_exit(&out, 0);
    assert!(
        stdout_of(&out).contains(&format!(
            "; audit of seed {seed} (k = 7): 7 sampled leaves in draw order, 0 ticketed, 0 repeats, 0 neighbours"
        )),
        "{}",
        stdout_of(&out)
    );
    let out = verify(&["--proofs", &sample, "--seed", seed]);
    assert_exit(&out, 1);
    assert!(stderr_of(&out).contains("proof_count_mismatch: 3 answers for 7 sampled items"));
    // --confidence / --fake-fraction change k: 0.5 at 0.5 → 1 leaf (index 4).
    let four = proofs_file(&dir, "four.json", vec![proof_entry(4)]);
    let out = verify(&[
        "--proofs",
        &four,
        "--seed",
        seed,
        "--confidence",
        "0.5",
        "--fake-fraction",
        "0.5",
    ]);
    assert_exit(&out, 0);

    // Valid proofs, but not the sample.
    let out = verify(&["--proofs", &three, "--seed", seed, "--sample-size", "3"]);
    assert_exit(&out, 1);
    let err = stderr_of(&out);
    assert!(err.contains("proof_for_wrong_leaf"), "{err}");
    assert!(
        err.contains("(audit sample, in draw order: [4, 2, 1]"),
        "{err}"
    );

    // The tampered-leaf vector: leaf 3 with a flipped bit and its genuine proof.
    let tampered = &v["negative"][0];
    assert_eq!(tampered["expected_error"], "RootMismatch");
    let mut bad = proof_entry(3);
    bad["leaf_hex"] = tampered["leaf_hex"].clone();
    let bad_file = proofs_file(&dir, "tampered.json", vec![proof_entry(0), bad]);
    let out = verify(&["--proofs", &bad_file]);
    assert_exit(&out, 1);
    assert!(stderr_of(&out).contains(
        "invalid_proof: proof for leaf 3 does not verify: \
         audit path does not lead to the root"
    ));
    // A proof for another tree size.
    let mut resized = proof_entry(0);
    resized["tree_size"] = 8.into();
    let out = verify(&[
        "--proofs",
        &proofs_file(&dir, "resized.json", vec![resized]),
    ]);
    assert_exit(&out, 1);
    assert!(stderr_of(&out).contains("proof_for_wrong_leaf"));
    // A path one hash short.
    let mut short = proof_entry(0);
    short["path"].as_array_mut().unwrap().pop();
    let out = verify(&["--proofs", &proofs_file(&dir, "short.json", vec![short])]);
    assert_exit(&out, 1);
    let err = stderr_of(&out);
    assert!(
        err.contains("invalid_proof: proof for leaf 0 does not verify: "),
        "{err}"
    );

    // Malformed proofs files exit 2 naming the field.
    let malformed: [(Value, &str); 8] = [
        (
            serde_json::json!({"proofs": [{"leaf_hex": "00"}]}),
            "proofs[0].leaf_hex: not a leaf",
        ),
        (
            serde_json::json!({"proofs": [{"leaf_hex": v["leaves"][0]["leaf_hex"], "leaf_index": 0, "tree_size": 7, "path": ["zz"]}]}),
            "proofs[0].path[0]: \"zz\" is not 64 hex characters",
        ),
        (
            serde_json::json!({"proofs": [{"leaf_hex": v["leaves"][0]["leaf_hex"], "tree_size": 7, "path": []}]}),
            "proofs[0].leaf_index: missing",
        ),
        (
            serde_json::json!({"proofs": [], "seed": 1}),
            "seed: unknown field",
        ),
        (
            serde_json::json!({"proofs": [{"leaf_hex": v["leaves"][6]["leaf_hex"], "proof_hex": vp6["proof_hex"], "tree_size": 7}]}),
            "not both",
        ),
        (
            serde_json::json!({"version": 2, "proofs": []}),
            "version: proofs for a v2 receipt, but the receipt is v1",
        ),
        (
            serde_json::json!({"proofs": [{"leaf_hex": format!("{}0000", v["leaves"][0]["leaf_hex"].as_str().unwrap()), "leaf_index": 0, "tree_size": 7, "path": []}]}),
            "proofs[0].leaf_hex: a 71-byte leaf, but a v1 receipt's leaves are 69 bytes",
        ),
        (
            {
                let mut e = proof_entry(0);
                e["next"] = proof_entry(1);
                serde_json::json!({ "proofs": [e] })
            },
            "proofs[0].next: a v1 receipt's leaves have no neighbours",
        ),
    ];
    for (i, (doc, message)) in malformed.into_iter().enumerate() {
        let path = write_file(&dir, &format!("bad{i}.json"), doc.to_string().as_bytes());
        let out = verify(&["--proofs", &path]);
        assert_exit(&out, 2);
        assert!(
            stderr_of(&out).contains(message),
            "{message:?} not in {}",
            stderr_of(&out)
        );
    }
    // `next: null` is the v1 answer's neighbour after the last leaf: accepted.
    let mut last = proof_entry(6);
    last["next"] = Value::Null;
    let out = verify(&[
        "--proofs",
        &write_file(
            &dir,
            "null-next.json",
            serde_json::json!({"version": 1, "proofs": [last]})
                .to_string()
                .as_bytes(),
        ),
    ]);
    assert_exit(&out, 0);
    let out = verify(&["--proofs", &three, "--seed", "abcd"]);
    assert_exit(&out, 2);
    assert!(stderr_of(&out).contains("--seed"));
    let out = verify(&["--proofs", &three, "--seed", seed, "--confidence", "1.5"]);
    assert_exit(&out, 2);
    assert!(stderr_of(&out).contains("--confidence: confidence must be strictly between 0 and 1"));
}

// ---------------------------------------------------------------------------------------------
// merkle

/// Certificate Transparency's RFC 6962 test leaves (hex).
const CT_LEAVES: [&str; 8] = [
    "",
    "00",
    "10",
    "2021",
    "3031",
    "40414243",
    "5051525354555657",
    "606162636465666768696a6b6c6d6e6f",
];
const CT_ROOT_8: &str = "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328";
const EMPTY_ROOT: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

fn merkle(sub: &str, extra: &[&str], leaves: &[&str]) -> Output {
    let mut args = vec!["merkle", sub];
    args.extend_from_slice(extra);
    args.extend_from_slice(leaves);
    tolldns(&args, "")
}

#[test]
fn merkle_root_of_the_ct_leaves_and_of_stdin() {
    let out = merkle("root", &[], &CT_LEAVES);
    assert_exit(&out, 0);
    assert_eq!(stdout_of(&out), format!("{CT_ROOT_8}\n"));
    let out = merkle("root", &[], &CT_LEAVES[..3]);
    assert_eq!(
        stdout_of(&out),
        "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77\n"
    );
    let out = merkle("root", &["--json"], &CT_LEAVES);
    assert_exit(&out, 0);
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        report,
        serde_json::json!({"tree_size": 8, "root": CT_ROOT_8})
    );

    // No leaves at all: the empty tree.
    let out = tolldns(&["merkle", "root"], "");
    assert_exit(&out, 0);
    assert_eq!(stdout_of(&out), format!("{EMPTY_ROOT}\n"));
    let out = tolldns(&["merkle", "root"], "\n  \n");
    assert_eq!(stdout_of(&out), format!("{EMPTY_ROOT}\n"));

    // The receipt vector's leaves, one per line on stdin (blank lines and spaces ignored,
    // upper case accepted): the receipt's root.
    let v = receipt_vectors();
    let mut lines = String::from("\n");
    for (i, l) in v["leaves"].as_array().unwrap().iter().enumerate() {
        let hex = l["leaf_hex"].as_str().unwrap();
        let hex = if i % 2 == 0 {
            hex.to_uppercase()
        } else {
            hex.to_owned()
        };
        lines.push_str(&format!("  {hex}\n\n"));
    }
    let out = tolldns(&["merkle", "root"], &lines);
    assert_exit(&out, 0);
    assert_eq!(
        stdout_of(&out),
        format!("{}\n", v["merkle_root"].as_str().unwrap())
    );

    // Bad hex exits 2 naming the leaf.
    let out = merkle("root", &[], &["00", "0g"]);
    assert_exit(&out, 2);
    assert!(stderr_of(&out).contains("HEX_LEAF[1]: \"0g\" is not hex"));
    let out = tolldns(&["merkle", "root"], "00\n\nabc\n");
    assert_exit(&out, 2);
    assert!(stderr_of(&out).contains("stdin line 3"));
}

#[test]
fn merkle_proofs_match_ct_and_round_trip_through_verify() {
    // Known audit paths of the CT test tree.
    let out = merkle("proof", &["--index", "0"], &CT_LEAVES);
    assert_exit(&out, 0);
    assert_eq!(
        stdout_of(&out),
        "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7\n\
         5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e\n\
         6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4\n"
    );
    let out = merkle("proof", &["--index", "5", "--json"], &CT_LEAVES);
    assert_exit(&out, 0);
    let p: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        p,
        serde_json::json!({
            "index": 5,
            "tree_size": 8,
            "leaf_hash": "4271a26be0d8a84f0bd54c8c302e7cb3a3b5d1fa6780a40bcce2873477dab658",
            "path": [
                "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
                "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
                "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"
            ],
            "root": CT_ROOT_8,
        })
    );

    for n in 1..=CT_LEAVES.len() {
        let leaves = &CT_LEAVES[..n];
        let root_out = merkle("root", &[], leaves);
        let root = stdout_of(&root_out).trim_end().to_owned();
        let size = n.to_string();
        for (i, leaf) in leaves.iter().enumerate() {
            let index = i.to_string();
            let out = merkle("proof", &["--index", &index], leaves);
            assert_exit(&out, 0);
            let path_text = stdout_of(&out);
            let path: Vec<&str> = path_text.lines().collect();
            let verify = |leaf: &str, size: &str, root: &str, path: &[&str]| {
                let mut args = vec![
                    "merkle", "verify", "--index", &index, "--size", size, "--root", root,
                    "--leaf", leaf,
                ];
                args.extend_from_slice(path);
                tolldns(&args, "")
            };
            let out = verify(leaf, &size, &root, &path);
            assert_exit(&out, 0);
            assert_eq!(
                stdout_of(&out),
                format!("valid: leaf {i} of {n} is under root {root}\n")
            );
            // Another leaf, another root, another size: exit 1 naming the rule.
            let out = verify("ff", &size, &root, &path);
            assert_exit(&out, 1);
            assert!(stderr_of(&out).contains("RootMismatch"));
            let out = verify(leaf, &size, EMPTY_ROOT, &path);
            assert_exit(&out, 1);
            let mut longer = path.clone();
            longer.push(EMPTY_ROOT);
            let out = verify(leaf, &size, &root, &longer);
            assert_exit(&out, 1);
            assert!(stderr_of(&out).contains("PathTooLong"));
        }
        // Index outside the tree: bad input for `proof`, a failed proof for `verify`.
        let out = merkle("proof", &["--index", &size], leaves);
        assert_exit(&out, 2);
        assert!(stderr_of(&out).contains(&format!(
            "--index: leaf index {n} is outside a tree of {n} leaves"
        )));
        let out = tolldns(
            &[
                "merkle", "verify", "--index", &size, "--size", &size, "--root", &root, "--leaf",
                "00",
            ],
            "",
        );
        assert_exit(&out, 1);
        assert!(stderr_of(&out).contains("IndexOutOfRange"));
    }
    let out = tolldns(&["merkle", "proof", "--index", "0"], "");
    assert_exit(&out, 2);
    assert!(stderr_of(&out).contains("outside a tree of 0 leaves"));
    // Malformed arguments of verify.
    let out = tolldns(
        &[
            "merkle", "verify", "--index", "0", "--size", "1", "--root", "00", "--leaf", "00",
        ],
        "",
    );
    assert_exit(&out, 2);
    assert!(stderr_of(&out).contains("--root"));
}

#[test]
fn every_command_has_help() {
    let cases: [(&[&str], &str); 15] = [
        (
            &["--help"],
            "Exit codes: 0 success, 1 verification failure, 2 bad input",
        ),
        (&["keygen", "--help"], "mode 0600"),
        (&["receipt", "--help"], "name-key"),
        (
            &["receipt", "verify", "--help"],
            "operator registry and staking, backend registration, policy and ledger are not checked",
        ),
        (&["receipt", "audit", "--help"], "TollDNS-Auditor"),
        (&["receipt", "name-key", "--help"], "HPKE"),
        (&["receipt", "ticket", "--help"], "verify_ticket_leaves"),
        (&["merkle", "--help"], "SHA256(0x00 || leaf)"),
        (&["merkle", "root", "--help"], "blank lines"),
        (&["merkle", "proof", "--help"], "\"leaf_hash\""),
        (
            &["merkle", "verify", "--help"],
            "Exit codes: 0 the proof verifies, 1",
        ),
        (&["ticket", "--help"], "Privacy Pass tokens"),
        (
            &["ticket", "fetch", "--help"],
            "\"ticket_id\": \"<32 hex>\"",
        ),
        (&["ticket", "show", "--help"], "never printed"),
        (&["query", "--help"], "+ednsopt=65002:"),
    ];
    for (args, text) in cases {
        let out = tolldns(args, "");
        assert_exit(&out, 0);
        assert!(stdout_of(&out).contains(text), "{args:?}: {text:?}");
    }
    let out = tolldns(&["receipt", "verify", "--help"], "");
    assert!(stdout_of(&out).contains("\"proofs\""));
}
