//! The localnet's JSON-RPC subset, spoken over raw HTTP/1.1 on a real loopback socket: slots
//! that advance with wall time and the sysvars that follow them, transactions sent as base64
//! wire bytes (success, preflight failure, bad signature), statuses, account reads and the
//! `getProgramAccounts` filters.
#![allow(deprecated)] // solana-program-test 3.x marks its API "agave-unstable-api"
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anchor_lang::prelude::Pubkey;
use anchor_lang::solana_program::program_pack::Pack;
use anchor_lang::solana_program::system_instruction;
use anchor_lang::{Discriminator, InstructionData, ToAccountMetas};
use anchor_spl::token::spl_token;
use base64::Engine as _;
use serde_json::{json, Value};
use solana_instruction::Instruction;
use solana_keypair::Keypair;
use solana_signer::Signer;
use solana_transaction::Transaction;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tolldns_programs_tests::localnet::{Localnet, LocalnetOptions};
use tolldns_registry::constants::{OPERATOR_SEED, TRANSPORT_AUDIT_API};
use tolldns_registry::state::Operator;
use tolldns_registry::{Endpoint, OperatorArgs};

/// Sysvar addresses.
const CLOCK: &str = "SysvarC1ock11111111111111111111111111111111";
const SLOT_HASHES: &str = "SysvarS1otHashes111111111111111111111111111";

/// One JSON-RPC call over a fresh HTTP/1.1 connection; returns the whole response object.
async fn call(addr: SocketAddr, method: &str, params: Value) -> Value {
    let body = json!({"jsonrpc": "2.0", "id": 7, "method": method, "params": params}).to_string();
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "POST / HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(body.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.unwrap();
    let text = String::from_utf8(raw).unwrap();
    let (status, rest) = text.split_once("\r\n").unwrap();
    assert_eq!(status, "HTTP/1.1 200 OK", "{text}");
    let (_, body) = rest.split_once("\r\n\r\n").unwrap();
    let answer: Value = serde_json::from_str(body).unwrap();
    assert_eq!(answer["jsonrpc"], "2.0");
    assert_eq!(answer["id"], 7);
    answer
}

/// The `result` of a call that must succeed.
async fn result(addr: SocketAddr, method: &str, params: Value) -> Value {
    let answer = call(addr, method, params).await;
    assert!(answer.get("error").is_none(), "{method}: {answer}");
    answer["result"].clone()
}

/// The base64 data of an account answer.
fn data(account: &Value) -> Vec<u8> {
    assert_eq!(account["data"][1], "base64");
    base64::engine::general_purpose::STANDARD
        .decode(account["data"][0].as_str().unwrap())
        .unwrap()
}

/// `SlotHashes` entries (slot, hash), in account order.
fn slot_hashes(bytes: &[u8]) -> Vec<(u64, [u8; 32])> {
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    (0..n)
        .map(|i| {
            let at = 8 + i * 40;
            let slot = u64::from_le_bytes(bytes[at..at + 8].try_into().unwrap());
            (slot, bytes[at + 8..at + 40].try_into().unwrap())
        })
        .collect()
}

/// Polls `getSlot` until it reaches `slot` (deadline 10 s).
async fn wait_slot(addr: SocketAddr, slot: u64) -> u64 {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let now = result(addr, "getSlot", json!([])).await.as_u64().unwrap();
        if now >= slot {
            return now;
        }
        assert!(
            Instant::now() < deadline,
            "slot stuck at {now}, waiting for {slot}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slots_follow_wall_time_and_sysvars_follow_slots() {
    let net = Localnet::start(LocalnetOptions {
        ms_per_slot: 20,
        clock_running: true,
    })
    .await
    .unwrap();
    let addr = net.addr();
    let s0 = result(addr, "getSlot", json!([])).await.as_u64().unwrap();
    let started = Instant::now();
    let s1 = wait_slot(addr, s0 + 10).await;
    // 10 slots at 20 ms take at least 200 ms.
    assert!(
        started.elapsed() >= Duration::from_millis(180),
        "{:?}",
        started.elapsed()
    );

    let clock = result(
        addr,
        "getAccountInfo",
        json!([CLOCK, {"encoding": "base64"}]),
    )
    .await;
    let context_slot = clock["context"]["slot"].as_u64().unwrap();
    let clock_slot = u64::from_le_bytes(data(&clock["value"])[..8].try_into().unwrap());
    assert_eq!(clock_slot, context_slot);
    assert!(clock_slot >= s1);

    let hashes = result(
        addr,
        "getAccountInfo",
        json!([SLOT_HASHES, {"encoding": "base64"}]),
    )
    .await;
    let entries = slot_hashes(&data(&hashes["value"]));
    assert!(entries.len() >= 2, "{entries:?}");
    // Newest first, all in the past, distinct hashes, some after the start.
    assert!(entries.windows(2).all(|w| w[0].0 > w[1].0), "{entries:?}");
    assert!(entries[0].0 < clock_slot);
    assert!(entries[0].0 >= s0, "{entries:?}");
    assert_ne!(entries[0].1, entries[1].1);
    assert_ne!(entries[0].1, [0; 32]);

    // The clock can be stopped: the slot then stays.
    net.set_clock_running(false).await;
    let stopped = result(addr, "getSlot", json!([])).await.as_u64().unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(
        result(addr, "getSlot", json!([])).await.as_u64().unwrap(),
        stopped
    );
    // A manual warp moves it, and `getEpochInfo` agrees.
    net.bank().await.warp(stopped + 1000).unwrap();
    let info = result(addr, "getEpochInfo", json!([])).await;
    assert_eq!(info["absoluteSlot"], stopped + 1000);
    let slots_in_epoch = info["slotsInEpoch"].as_u64().unwrap();
    assert!(info["slotIndex"].as_u64().unwrap() < slots_in_epoch);
    assert!(net.bank().await.warp(stopped).is_err());

    let genesis = result(addr, "getGenesisHash", json!([])).await;
    assert!(genesis.as_str().unwrap().len() >= 32);
    assert_eq!(result(addr, "getGenesisHash", json!([])).await, genesis);
    assert_eq!(result(addr, "getHealth", json!([])).await, "ok");
    let rent0 = result(addr, "getMinimumBalanceForRentExemption", json!([0])).await;
    let rent100 = result(addr, "getMinimumBalanceForRentExemption", json!([100])).await;
    assert!(rent100.as_u64().unwrap() > rent0.as_u64().unwrap());
}

fn operator_pda(wallet: &Pubkey) -> Pubkey {
    Pubkey::find_program_address(&[OPERATOR_SEED, wallet.as_ref()], &tolldns_registry::ID).0
}

/// A `register_operator` transaction of `wallet`, signed with `blockhash`.
fn register_tx(wallet: &Keypair, key: u8, audit_api: &str, blockhash: &str) -> Transaction {
    let ix = Instruction {
        program_id: tolldns_registry::ID,
        accounts: tolldns_registry::accounts::RegisterOperator {
            wallet: wallet.pubkey(),
            operator: operator_pda(&wallet.pubkey()),
            system_program: anchor_lang::system_program::ID,
        }
        .to_account_metas(None),
        data: tolldns_registry::instruction::RegisterOperator {
            args: OperatorArgs {
                signing_key: [key; 32],
                roles: 0b10,
                backend_ids: vec!["gw".to_string()],
                endpoints: vec![
                    Endpoint {
                        transport: 1,
                        address: "127.0.0.1:53".to_string(),
                    },
                    Endpoint {
                        transport: TRANSPORT_AUDIT_API,
                        address: audit_api.to_string(),
                    },
                ],
            },
        }
        .data(),
    };
    Transaction::new_signed_with_payer(
        &[ix],
        Some(&wallet.pubkey()),
        &[wallet],
        blockhash.parse().unwrap(),
    )
}

fn wire(tx: &Transaction) -> String {
    base64::engine::general_purpose::STANDARD.encode(bincode::serialize(tx).unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transactions_statuses_and_account_reads() {
    let net = Localnet::start(LocalnetOptions {
        ms_per_slot: 20,
        clock_running: true,
    })
    .await
    .unwrap();
    let addr = net.addr();
    let (a, b) = (Keypair::new(), Keypair::new());
    {
        let mut bank = net.bank().await;
        bank.airdrop(&a.pubkey(), 1_000_000_000).await.unwrap();
        bank.airdrop(&b.pubkey(), 1_000_000_000).await.unwrap();
    }
    let balance = result(addr, "getBalance", json!([a.pubkey().to_string()])).await;
    assert_eq!(balance["value"], 1_000_000_000);

    // Two operators registered over RPC.
    let mut signatures = Vec::new();
    for (wallet, key) in [(&a, 1u8), (&b, 2u8)] {
        let latest = result(
            addr,
            "getLatestBlockhash",
            json!([{"commitment": "finalized"}]),
        )
        .await;
        let hash = latest["value"]["blockhash"].as_str().unwrap().to_string();
        assert!(latest["value"]["lastValidBlockHeight"].as_u64().is_some());
        let tx = register_tx(wallet, key, "http://127.0.0.1:8053", &hash);
        let sig = result(
            addr,
            "sendTransaction",
            json!([wire(&tx), {"encoding": "base64", "preflightCommitment": "confirmed"}]),
        )
        .await;
        assert_eq!(sig, tx.signatures[0].to_string());
        signatures.push(sig);
    }
    let unknown = solana_signature::Signature::from([9u8; 64]).to_string();
    let statuses = result(
        addr,
        "getSignatureStatuses",
        json!([[signatures[0], signatures[1], unknown], {"searchTransactionHistory": true}]),
    )
    .await;
    for s in &statuses["value"].as_array().unwrap()[..2] {
        assert_eq!(s["confirmationStatus"], "finalized");
        assert_eq!(s["err"], Value::Null);
        assert_eq!(s["status"], json!({"Ok": null}));
        assert!(s["slot"].as_u64().unwrap() > 0);
    }
    assert_eq!(statuses["value"][2], Value::Null);

    // getAccountInfo / getMultipleAccounts.
    let pda_a = operator_pda(&a.pubkey());
    let info = result(
        addr,
        "getAccountInfo",
        json!([pda_a.to_string(), {"encoding": "base64"}]),
    )
    .await;
    let account = &info["value"];
    assert_eq!(account["owner"], tolldns_registry::ID.to_string());
    let bytes = data(account);
    assert_eq!(account["space"], bytes.len());
    assert_eq!(&bytes[..8], Operator::DISCRIMINATOR);
    assert_eq!(&bytes[8..40], a.pubkey().as_ref());
    let many = result(
        addr,
        "getMultipleAccounts",
        json!([[pda_a.to_string(), Pubkey::new_unique().to_string()], {"encoding": "base64"}]),
    )
    .await;
    assert_eq!(data(&many["value"][0]), bytes);
    assert_eq!(many["value"][1], Value::Null);
    let sliced = result(
        addr,
        "getAccountInfo",
        json!([pda_a.to_string(), {"encoding": "base64", "dataSlice": {"offset": 8, "length": 32}}]),
    )
    .await;
    assert_eq!(data(&sliced["value"]), a.pubkey().as_ref());

    // getProgramAccounts: by discriminator, by wallet, by size, with and without context.
    let disc = bs58::encode(Operator::DISCRIMINATOR).into_string();
    let all = result(
        addr,
        "getProgramAccounts",
        json!([tolldns_registry::ID.to_string(), {"encoding": "base64",
            "filters": [{"memcmp": {"offset": 0, "bytes": disc}}]}]),
    )
    .await;
    let mut keys: Vec<String> = all
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["pubkey"].as_str().unwrap().to_string())
        .collect();
    keys.sort();
    let mut want = vec![pda_a.to_string(), operator_pda(&b.pubkey()).to_string()];
    want.sort();
    assert_eq!(keys, want);
    let only_b = result(
        addr,
        "getProgramAccounts",
        json!([tolldns_registry::ID.to_string(), {"encoding": "base64", "withContext": true,
            "filters": [{"dataSize": bytes.len()},
                        {"memcmp": {"offset": 8, "bytes": b.pubkey().to_string()}}]}]),
    )
    .await;
    assert!(only_b["context"]["slot"].as_u64().is_some());
    let only_b = only_b["value"].as_array().unwrap();
    assert_eq!(only_b.len(), 1);
    assert_eq!(only_b[0]["pubkey"], operator_pda(&b.pubkey()).to_string());
    let none = result(
        addr,
        "getProgramAccounts",
        json!([tolldns_registry::ID.to_string(), {"encoding": "base64",
            "filters": [{"dataSize": bytes.len() + 1}]}]),
    )
    .await;
    assert_eq!(none, json!([]));
    // Other programs' accounts (the payers, the system program's) are not listed.
    let score = result(
        addr,
        "getProgramAccounts",
        json!([tolldns_miner_score::ID.to_string(), {"encoding": "base64"}]),
    )
    .await;
    assert_eq!(score, json!([]));

    // A program error: answered like a real node's failed preflight, nothing recorded.
    let latest = result(addr, "getLatestBlockhash", json!([])).await;
    let hash = latest["value"]["blockhash"].as_str().unwrap().to_string();
    // An audit API endpoint that is not an origin: the registry's `InvalidEndpoint` (6007).
    let c = Keypair::new();
    net.bank()
        .await
        .airdrop(&c.pubkey(), 1_000_000_000)
        .await
        .unwrap();
    let tx = register_tx(&c, 3, "127.0.0.1:8053", &hash);
    let answer = call(
        addr,
        "sendTransaction",
        json!([wire(&tx), {"encoding": "base64"}]),
    )
    .await;
    let error = &answer["error"];
    assert_eq!(error["code"], -32002, "{answer}");
    assert!(error["message"]
        .as_str()
        .unwrap()
        .starts_with("Transaction simulation failed: "));
    assert_eq!(
        error["data"]["err"],
        json!({"InstructionError": [0, {"Custom": 6007}]}),
        "{answer}"
    );
    let logs = error["data"]["logs"].as_array().unwrap();
    assert!(
        logs.iter().any(|l| l
            .as_str()
            .unwrap()
            .contains(&tolldns_registry::ID.to_string())),
        "{logs:?}"
    );
    let status = result(
        addr,
        "getSignatureStatuses",
        json!([[tx.signatures[0].to_string()]]),
    )
    .await;
    assert_eq!(status["value"][0], Value::Null);

    // A forged signature, an undecodable transaction, a bad key, an unknown method.
    let mut forged = register_tx(&Keypair::new(), 4, "http://a:1", &hash);
    forged.signatures[0] = solana_signature::Signature::from([1u8; 64]);
    let answer = call(
        addr,
        "sendTransaction",
        json!([wire(&forged), {"encoding": "base64"}]),
    )
    .await;
    assert_eq!(answer["error"]["code"], -32003, "{answer}");
    let answer = call(
        addr,
        "sendTransaction",
        json!(["AAAA", {"encoding": "base64"}]),
    )
    .await;
    assert_eq!(answer["error"]["code"], -32602, "{answer}");
    let answer = call(addr, "getAccountInfo", json!(["not-a-key"])).await;
    assert_eq!(answer["error"]["code"], -32602, "{answer}");
    let answer = call(addr, "getBlock", json!([1])).await;
    assert_eq!(answer["error"]["code"], -32601, "{answer}");

    // SPL token: a mint and an account made through the Rust API, read over RPC.
    let mint = Keypair::new();
    let holder = Keypair::new();
    {
        let mut bank = net.bank().await;
        let payer = bank.payer();
        let rent = bank.context().banks_client.get_rent().await.unwrap();
        let ixs = [
            system_instruction::create_account(
                &payer,
                &mint.pubkey(),
                rent.minimum_balance(spl_token::state::Mint::LEN),
                spl_token::state::Mint::LEN as u64,
                &spl_token::ID,
            ),
            spl_token::instruction::initialize_mint2(
                &spl_token::ID,
                &mint.pubkey(),
                &payer,
                None,
                6,
            )
            .unwrap(),
            system_instruction::create_account(
                &payer,
                &holder.pubkey(),
                rent.minimum_balance(spl_token::state::Account::LEN),
                spl_token::state::Account::LEN as u64,
                &spl_token::ID,
            ),
            spl_token::instruction::initialize_account3(
                &spl_token::ID,
                &holder.pubkey(),
                &mint.pubkey(),
                &a.pubkey(),
            )
            .unwrap(),
            spl_token::instruction::mint_to(
                &spl_token::ID,
                &mint.pubkey(),
                &holder.pubkey(),
                &payer,
                &[],
                1_234_500,
            )
            .unwrap(),
        ];
        bank.send(&ixs, &[&mint, &holder]).await.unwrap();
        assert_eq!(
            bank.token_balance(&holder.pubkey()).await.unwrap(),
            1_234_500
        );
    }
    let balance = result(
        addr,
        "getTokenAccountBalance",
        json!([holder.pubkey().to_string()]),
    )
    .await;
    assert_eq!(
        balance["value"],
        json!({"amount": "1234500", "decimals": 6, "uiAmount": 1.2345, "uiAmountString": "1.2345"})
    );
    let tokens = result(
        addr,
        "getProgramAccounts",
        json!([spl_token::ID.to_string(), {"encoding": "base64", "filters": [
            {"dataSize": 165}, {"memcmp": {"offset": 32, "bytes": a.pubkey().to_string()}}]}]),
    )
    .await;
    assert_eq!(tokens.as_array().unwrap().len(), 1);
    assert_eq!(tokens[0]["pubkey"], holder.pubkey().to_string());
}
