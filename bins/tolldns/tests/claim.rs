//! Runs the built `tolldns claim` against a test double of a Solana JSON-RPC node (a small
//! HTTP/1.1 server on 127.0.0.1 written here) that serves the score program's accounts,
//! checks the transaction's signature and instructions, and answers with a confirmation or a
//! program's refusal.

#![allow(clippy::unwrap_used)] // tests panic on failure by design

use std::process::{Command, Output};
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use ed25519_dalek::{SigningKey, Verifier as _};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpListener;
use tolldns_chain::accounts::{
    AnchorAccount as _, MinerClaimReceipt, MinerScoreConfig, Params, ScoreParams, Timing,
};
use tolldns_chain::{Pubkey, ids, pda, pubkey_of};

/// How the double answers `sendTransaction`.
#[derive(Clone, Copy)]
enum Send {
    /// Accepts and confirms.
    Confirm,
    /// Refuses at preflight with the score program's error `code`.
    Refuse(u32),
}

/// The JSON-RPC test double. Returns its URL and the transactions sent to it (decoded
/// instruction program ids per transaction).
async fn start_double(
    wallet: Pubkey,
    mode: Send,
    ata_exists: bool,
) -> (String, Arc<Mutex<Vec<Vec<Pubkey>>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let sent = Arc::new(Mutex::new(Vec::new()));
    let recorded = Arc::clone(&sent);
    let config = score_config();
    let receipt = MinerClaimReceipt {
        epoch_id: 3,
        miner: wallet,
        amount: 333,
        claimed_at_slot: 77,
        bump: pda::claim_receipt(3, &wallet).1,
    };
    let ata = pda::associated_token_account(&wallet, &config.toll_mint);
    let claimed = Arc::new(Mutex::new(false));
    tokio::spawn(async move {
        loop {
            let (mut stream, _) = listener.accept().await.unwrap();
            let request = read_request(&mut stream).await;
            let params = &request["params"];
            let result = match request["method"].as_str().unwrap() {
                "getAccountInfo" => {
                    let address = params[0].as_str().unwrap();
                    let value = if address == pda::score_config().0.to_string() {
                        account(&ids::MINER_SCORE, &config.encode())
                    } else if address == ata.to_string() && ata_exists {
                        account(&ids::TOKEN_PROGRAM, &[0; 165])
                    } else if address == pda::claim_receipt(3, &wallet).0.to_string()
                        && *claimed.lock().unwrap()
                    {
                        account(&ids::MINER_SCORE, &receipt.encode())
                    } else {
                        Value::Null
                    };
                    Ok(json!({"context": {"slot": 80}, "value": value}))
                }
                "getLatestBlockhash" => Ok(json!({"context": {"slot": 80}, "value": {
                    "blockhash": bs58::encode([7u8; 32]).into_string(),
                    "lastValidBlockHeight": 200}})),
                "sendTransaction" => {
                    let (signature, programs) = check_transaction(params[0].as_str().unwrap());
                    recorded.lock().unwrap().push(programs);
                    match mode {
                        Send::Confirm => {
                            *claimed.lock().unwrap() = true;
                            Ok(json!(signature))
                        }
                        Send::Refuse(code) => Err(json!({
                            "code": -32002,
                            "message": "Transaction simulation failed: Error processing Instruction 0",
                            "data": {"err": {"InstructionError": [0, {"Custom": code}]},
                                     "logs": ["Program log: AnchorError"]},
                        })),
                    }
                }
                "getSignatureStatuses" => Ok(json!({"context": {"slot": 81}, "value": [
                    {"slot": 81, "confirmations": 1, "err": null, "confirmationStatus": "confirmed"}
                ]})),
                "getTokenAccountBalance" => {
                    assert_eq!(params[0], ata.to_string());
                    Ok(json!({"context": {"slot": 81}, "value": {"amount": "1333", "decimals": 6}}))
                }
                other => panic!("unexpected {other}"),
            };
            let body = match result {
                Ok(r) => json!({"jsonrpc": "2.0", "id": request["id"], "result": r}),
                Err(e) => json!({"jsonrpc": "2.0", "id": request["id"], "error": e}),
            }
            .to_string();
            let response = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            stream.write_all(response.as_bytes()).await.unwrap();
        }
    });
    (url, sent)
}

async fn read_request(stream: &mut tokio::net::TcpStream) -> Value {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = stream.read(&mut chunk).await.unwrap();
        assert!(n > 0, "connection closed mid-request");
        buf.extend_from_slice(&chunk[..n]);
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
            let len: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length: "))
                .unwrap()
                .trim()
                .parse()
                .unwrap();
            if buf.len() >= end + 4 + len {
                return serde_json::from_slice(&buf[end + 4..end + 4 + len]).unwrap();
            }
        }
    }
}

fn account(owner: &Pubkey, data: &[u8]) -> Value {
    json!({"owner": owner.to_string(), "lamports": 1, "executable": false, "rentEpoch": 0,
        "data": [base64::engine::general_purpose::STANDARD.encode(data), "base64"]})
}

/// Checks every signature of a wire transaction over its message; returns the first signature
/// (base58) and the program id of each instruction.
fn check_transaction(encoded: &str) -> (String, Vec<Pubkey>) {
    let wire = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .unwrap();
    let count = usize::from(wire[0]);
    let message = &wire[1 + 64 * count..];
    let num_keys = usize::from(message[3]);
    let keys: Vec<Pubkey> = (0..num_keys)
        .map(|i| Pubkey::new_from_array(message[4 + 32 * i..36 + 32 * i].try_into().unwrap()))
        .collect();
    for (i, key) in keys.iter().enumerate().take(count) {
        let sig: [u8; 64] = wire[1 + 64 * i..65 + 64 * i].try_into().unwrap();
        ed25519_dalek::VerifyingKey::from_bytes(&key.to_bytes())
            .unwrap()
            .verify(message, &ed25519_dalek::Signature::from_bytes(&sig))
            .unwrap();
    }
    // After the keys: the blockhash, the instruction count, then each instruction starting
    // with its program id index.
    let mut at = 4 + 32 * num_keys + 32;
    let ix_count = usize::from(message[at]);
    at += 1;
    let mut programs = Vec::new();
    for _ in 0..ix_count {
        programs.push(keys[usize::from(message[at])]);
        let accounts = usize::from(message[at + 1]);
        at += 2 + accounts;
        let data_len = usize::from(message[at]);
        at += 1 + data_len;
    }
    (bs58::encode(&wire[1..65]).into_string(), programs)
}

fn score_config() -> MinerScoreConfig {
    MinerScoreConfig {
        authority: Pubkey::new_from_array([1; 32]),
        pending_authority: None,
        toll_mint: Pubkey::new_from_array([2; 32]),
        reward_vault: pda::reward_vault().0,
        vault_authority_bump: pda::vault_authority().1,
        reward_vault_bump: pda::reward_vault().1,
        slasher_bump: pda::slasher().1,
        bump: pda::score_config().1,
        params: Params {
            base_reward_per_epoch: 1000,
            score: ScoreParams {
                epoch_len_slots: 10,
                per_miner_epoch_cap: 500,
                min_miner_stake_weight: 1,
                alpha_correctness_bps: 5000,
                alpha_diversity_bps: 2000,
                alpha_timeliness_bps: 2000,
                alpha_uptime_bps: 1000,
                centralization_penalty_bps: 2000,
                dominance_threshold_bps: 2500,
                diversity_target: 100,
            },
            quorum: 2,
            dispute_authority: Pubkey::new_from_array([8; 32]),
        },
        pending_params: None,
        timing: Timing {
            first_epoch: 1,
            reporting_deadline_slots: 5,
            challenge_window_slots: 5,
            claim_window_epochs: 10,
            timelock_epochs: 2,
        },
        next_epoch_to_finalize: 4,
        committed_rewards: 0,
        watchers: vec![],
        miners: vec![],
    }
}

/// A wallet key file (mode 0600) in a fresh directory.
fn wallet_file(name: &str) -> (std::path::PathBuf, SigningKey) {
    let dir = std::env::temp_dir().join(format!("tolldns-claim-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let key = SigningKey::from_bytes(&[42; 32]);
    let path = dir.join("wallet.json");
    tolldns_service::keyfile::write(&path, &key, false).unwrap();
    (path, key)
}

async fn tolldns(args: Vec<String>) -> Output {
    tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_tolldns"))
            .args(&args)
            .output()
            .unwrap()
    })
    .await
    .unwrap()
}

fn args(url: &str, wallet: &std::path::Path, extra: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = [
        "claim",
        "--rpc",
        url,
        "--wallet",
        wallet.to_str().unwrap(),
        "--epoch",
        "3",
        "--timeout",
        "5",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    v.extend(extra.iter().map(|s| (*s).to_owned()));
    v
}

#[tokio::test(flavor = "multi_thread")]
async fn claims_into_a_new_associated_account_and_prints_the_amount() {
    let (path, key) = wallet_file("ok");
    let wallet = pubkey_of(&key);
    let (url, sent) = start_double(wallet, Send::Confirm, false).await;
    let out = tolldns(args(&url, &path, &["--json"])).await;
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let ata = pda::associated_token_account(&wallet, &score_config().toll_mint);
    assert_eq!(report["epoch"], "3");
    assert_eq!(report["miner"], wallet.to_string());
    assert_eq!(report["destination"], ata.to_string());
    assert_eq!(report["amount"], "333");
    assert_eq!(report["balance"], "1333");
    // The associated account was missing: created in the same transaction, before the claim.
    assert_eq!(
        *sent.lock().unwrap(),
        vec![vec![ids::ASSOCIATED_TOKEN_PROGRAM, ids::MINER_SCORE]]
    );

    // Text output, the account now existing: only the claim.
    let (url, sent) = start_double(wallet, Send::Confirm, true).await;
    let out = tolldns(args(&url, &path, &[])).await;
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.starts_with("claimed epoch 3: 333 base units paid to "),
        "{text}"
    );
    assert_eq!(*sent.lock().unwrap(), vec![vec![ids::MINER_SCORE]]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_refusal_names_the_program_error_and_exits_1() {
    let (path, key) = wallet_file("refused");
    let wallet = pubkey_of(&key);
    let destination = Pubkey::new_from_array([9; 32]).to_string();
    for (code, name) in [(6032, "ChallengeWindowOpen"), (6036, "NotAccepted")] {
        let (url, sent) = start_double(wallet, Send::Refuse(code), true).await;
        let out = tolldns(args(&url, &path, &["--destination", &destination])).await;
        assert_eq!(out.status.code(), Some(1));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(name), "{stderr}");
        assert!(stderr.contains("tolldns-miner-score"), "{stderr}");
        assert!(out.stdout.is_empty());
        assert_eq!(sent.lock().unwrap().len(), 1);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_input_and_unreachable_nodes_exit_2() {
    let (path, _) = wallet_file("bad");
    // Nobody listening.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let out = tolldns(args(&format!("http://127.0.0.1:{port}"), &path, &[])).await;
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("connecting"));
    // A bad destination, a bad URL, a missing wallet.
    let out = tolldns(args(
        "http://127.0.0.1:1",
        &path,
        &["--destination", "not-base58!"],
    ))
    .await;
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--destination"));
    let out = tolldns(args("ftp://127.0.0.1:1", &path, &[])).await;
    assert_eq!(out.status.code(), Some(2));
    let out = tolldns(args(
        "http://127.0.0.1:1",
        &path.with_file_name("missing.json"),
        &[],
    ))
    .await;
    assert_eq!(out.status.code(), Some(2));
}
