//! `RpcChain` against a test double: a small JSON-RPC server on 127.0.0.1 written here, which
//! answers each method from a handler and checks what the client sends (request shape,
//! transaction signatures).

#![allow(clippy::unwrap_used)] // tests panic on failure by design

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use ed25519_dalek::Verifier as _;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpListener;
use tolldns_chain::accounts::{
    AllowEntry, AnchorAccount as _, EpochTotals, MinerScoreConfig, Operator, OperatorStatus,
    Params, ScoreParams, SigningKey as OperatorKey, SlotHashes, Timing,
};
use tolldns_chain::{
    Chain, ChainError, Commitment, Pubkey, RpcChain, RpcConfig, SigningKey, ids, pda, pubkey_of,
};

/// What the double answers to one request.
enum Answer {
    /// `{"result": …}`.
    Result(Value),
    /// `{"error": …}`.
    Error(Value),
    /// A raw HTTP response (status line onwards).
    Raw(String),
    /// Never answers (keeps the connection open).
    Hang,
}

type Handler = dyn Fn(&str, &Value) -> Answer + Send + Sync;

/// The JSON-RPC test double: every request is recorded, then answered by the handler.
struct Double {
    url: String,
    requests: Arc<Mutex<Vec<Value>>>,
}

impl Double {
    async fn start(handler: impl Fn(&str, &Value) -> Answer + Send + Sync + 'static) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!(
            "http://{}/rpc?api-key=secret",
            listener.local_addr().unwrap()
        );
        let requests = Arc::new(Mutex::new(Vec::new()));
        let handler: Arc<Handler> = Arc::new(handler);
        let recorded = Arc::clone(&requests);
        tokio::spawn(async move {
            loop {
                let (mut stream, _) = listener.accept().await.unwrap();
                let handler = Arc::clone(&handler);
                let recorded = Arc::clone(&recorded);
                tokio::spawn(async move {
                    let Some(request) = read_request(&mut stream).await else {
                        return;
                    };
                    recorded.lock().unwrap().push(request.clone());
                    let method = request["method"].as_str().unwrap_or("").to_owned();
                    let id = request["id"].clone();
                    let body = match handler(&method, &request["params"]) {
                        Answer::Result(r) => json!({"jsonrpc": "2.0", "id": id, "result": r}),
                        Answer::Error(e) => json!({"jsonrpc": "2.0", "id": id, "error": e}),
                        Answer::Raw(raw) => {
                            let _ = stream.write_all(raw.as_bytes()).await;
                            return;
                        }
                        Answer::Hang => {
                            tokio::time::sleep(Duration::from_secs(3600)).await;
                            return;
                        }
                    }
                    .to_string();
                    let response = format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = stream.write_all(response.as_bytes()).await;
                });
            }
        });
        Self { url, requests }
    }

    fn chain(&self) -> RpcChain {
        let mut config = RpcConfig::new(self.url.clone());
        config.request_timeout = Duration::from_secs(5);
        config.confirm_timeout = Duration::from_secs(5);
        config.poll_interval = Duration::from_millis(10);
        RpcChain::new(config).unwrap()
    }

    fn methods(&self) -> Vec<String> {
        self.requests
            .lock()
            .unwrap()
            .iter()
            .map(|r| r["method"].as_str().unwrap().to_owned())
            .collect()
    }
}

/// Reads one HTTP/1.1 request (headers, then `content-length` bytes) and parses its JSON body.
async fn read_request(stream: &mut (impl tokio::io::AsyncRead + Unpin)) -> Option<Value> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let header_end = loop {
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
    };
    let head = String::from_utf8_lossy(&buf[..header_end]).to_ascii_lowercase();
    assert!(
        head.starts_with("post /rpc?api-key=secret http/1.1"),
        "{head}"
    );
    assert!(head.contains("content-type: application/json"), "{head}");
    let len: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length: "))?
        .trim()
        .parse()
        .ok()?;
    while buf.len() < header_end + len {
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let request: Value = serde_json::from_slice(&buf[header_end..header_end + len]).ok()?;
    assert_eq!(request["jsonrpc"], "2.0");
    Some(request)
}

fn account_json(owner: &Pubkey, data: &[u8]) -> Value {
    json!({
        "owner": owner.to_string(),
        "lamports": 1_000_000,
        "executable": false,
        "rentEpoch": 0,
        "data": [base64::engine::general_purpose::STANDARD.encode(data), "base64"],
    })
}

fn key(n: u8) -> Pubkey {
    Pubkey::new_from_array([n; 32])
}

fn params() -> Params {
    Params {
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
        dispute_authority: key(8),
    }
}

fn score_config() -> MinerScoreConfig {
    MinerScoreConfig {
        authority: key(1),
        pending_authority: None,
        toll_mint: key(2),
        reward_vault: pda::reward_vault().0,
        vault_authority_bump: pda::vault_authority().1,
        reward_vault_bump: pda::reward_vault().1,
        slasher_bump: pda::slasher().1,
        bump: pda::score_config().1,
        params: params(),
        pending_params: None,
        timing: Timing {
            first_epoch: 1,
            reporting_deadline_slots: 5,
            challenge_window_slots: 5,
            claim_window_epochs: 10,
            timelock_epochs: 2,
        },
        next_epoch_to_finalize: 1,
        committed_rewards: 0,
        watchers: vec![AllowEntry {
            key: key(10),
            active_from_epoch: 0,
        }],
        miners: vec![],
    }
}

fn operator(wallet: Pubkey) -> Operator {
    Operator {
        wallet,
        signing_key: OperatorKey {
            key: [5; 32],
            valid_from_slot: 3,
        },
        previous_signing_key: None,
        roles: 0b100,
        backend_ids: vec!["pdns".into()],
        endpoints: vec![],
        status: OperatorStatus::Active,
        registered_at_slot: 3,
        updated_at_slot: 3,
        bump: pda::operator(&wallet).1,
    }
}

#[tokio::test]
async fn reads_accounts_slots_and_balances() {
    let config = score_config();
    let config_bytes = {
        let mut b = config.encode();
        b.resize(3576, 0);
        b
    };
    let op = operator(key(30));
    let double = Double::start(move |method, params| {
        let commitment = params
            .as_array()
            .and_then(|p| p.last())
            .and_then(|c| c["commitment"].as_str())
            .map(str::to_owned);
        assert_eq!(commitment.as_deref(), Some("confirmed"), "{method}");
        match method {
            "getSlot" => Answer::Result(json!(1234)),
            "getAccountInfo" => {
                assert_eq!(params[1]["encoding"], "base64");
                let address = params[0].as_str().unwrap();
                let value = if address == pda::score_config().0.to_string() {
                    account_json(&ids::MINER_SCORE, &config_bytes)
                } else if address == ids::SLOT_HASHES_SYSVAR.to_string() {
                    let mut data = SlotHashes(vec![(1233, [3; 32]), (1232, [2; 32])]).encode();
                    data.resize(8 + 512 * 40, 0);
                    account_json(&ids::SLOT_HASHES_SYSVAR, &data)
                } else if address == pda::operator(&key(40)).0.to_string() {
                    // An account at the PDA but owned by another program.
                    account_json(&ids::SYSTEM_PROGRAM, &operator(key(40)).encode())
                } else {
                    Value::Null
                };
                Answer::Result(json!({"context": {"slot": 1234}, "value": value}))
            }
            "getProgramAccounts" => {
                assert_eq!(params[0], ids::REGISTRY.to_string());
                let filter = &params[1]["filters"][0]["memcmp"];
                assert_eq!(filter["offset"], 0);
                assert_eq!(
                    filter["bytes"],
                    bs58::encode(Operator::discriminator()).into_string()
                );
                Answer::Result(json!([
                    {"pubkey": pda::operator(&key(30)).0.to_string(),
                     "account": account_json(&ids::REGISTRY, &operator(key(30)).encode())},
                    // Garbage after the discriminator: skipped, not fatal.
                    {"pubkey": pda::operator(&key(31)).0.to_string(),
                     "account": account_json(&ids::REGISTRY, &Operator::discriminator())},
                ]))
            }
            "getMultipleAccounts" => Answer::Result(json!({
                "context": {"slot": 1},
                "value": [Value::Null, account_json(&ids::REGISTRY, &[1, 2, 3])],
            })),
            "getTokenAccountBalance" => {
                if params[0] == key(50).to_string() {
                    Answer::Error(json!({"code": -32602, "message": "Invalid param: could not find account"}))
                } else {
                    Answer::Result(json!({"context": {"slot": 1},
                        "value": {"amount": "987654321", "decimals": 6, "uiAmountString": "987.654321"}}))
                }
            }
            other => panic!("unexpected {other}"),
        }
    })
    .await;
    let chain = double.chain();
    assert_eq!(chain.slot().await.unwrap(), 1234);
    assert_eq!(
        chain.slot_hashes().await.unwrap(),
        vec![(1233, [3; 32]), (1232, [2; 32])]
    );
    assert_eq!(chain.score_config().await.unwrap(), config);
    assert_eq!(chain.epoch_totals(3).await.unwrap(), None::<EpochTotals>);
    assert_eq!(chain.miner_epoch(3, &key(1)).await.unwrap(), None);
    assert_eq!(chain.operators().await.unwrap(), vec![op]);
    assert!(matches!(
        chain.registry_config().await,
        Err(ChainError::NotFound(_))
    ));
    let e = chain.operator(&key(40)).await.unwrap_err();
    assert!(
        matches!(&e, ChainError::Decode { reason, .. } if reason.contains("owned by")),
        "{e}"
    );
    assert_eq!(chain.token_balance(&key(51)).await.unwrap(), 987_654_321);
    assert!(matches!(
        chain.token_balance(&key(50)).await,
        Err(ChainError::NotFound(_))
    ));
    let accounts = chain.accounts(&[key(1), key(2)]).await.unwrap();
    assert_eq!(accounts[0], None);
    assert_eq!(accounts[1].as_ref().unwrap().data, vec![1, 2, 3]);
    assert!(chain.accounts(&vec![key(1); 101]).await.is_err());
    assert_eq!(double.methods().len(), 11);
}

/// Decodes a wire transaction sent to the double and checks every signature over the message.
fn check_transaction(encoded: &str) -> (String, Vec<Pubkey>) {
    let wire = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .unwrap();
    let count = usize::from(wire[0]);
    assert!(count < 0x80);
    let message = &wire[1 + 64 * count..];
    // Message: header (3 bytes), compact-u16 key count, keys.
    let num_keys = usize::from(message[3]);
    let keys: Vec<Pubkey> = (0..num_keys)
        .map(|i| {
            let mut k = [0u8; 32];
            k.copy_from_slice(&message[4 + 32 * i..4 + 32 * (i + 1)]);
            Pubkey::new_from_array(k)
        })
        .collect();
    assert_eq!(usize::from(message[0]), count);
    for i in 0..count {
        let sig: [u8; 64] = wire[1 + 64 * i..1 + 64 * (i + 1)].try_into().unwrap();
        ed25519_dalek::VerifyingKey::from_bytes(&keys[i].to_bytes())
            .unwrap()
            .verify(message, &ed25519_dalek::Signature::from_bytes(&sig))
            .unwrap();
    }
    (bs58::encode(&wire[1..65]).into_string(), keys)
}

/// A double for transactions: the score config, a blockhash, and `send` / `status` decide the
/// answers to `sendTransaction` and `getSignatureStatuses`.
async fn tx_double(
    send: impl Fn(&str) -> Answer + Send + Sync + 'static,
    status: impl Fn(usize) -> Value + Send + Sync + 'static,
) -> Double {
    let config_bytes = score_config().encode();
    let polls = AtomicUsize::new(0);
    Double::start(move |method, params| match method {
        "getAccountInfo" => Answer::Result(
            json!({"context": {"slot": 1}, "value": account_json(&ids::MINER_SCORE, &config_bytes)}),
        ),
        "getLatestBlockhash" => Answer::Result(json!({"context": {"slot": 1}, "value": {
            "blockhash": bs58::encode([7u8; 32]).into_string(), "lastValidBlockHeight": 100}})),
        "sendTransaction" => {
            assert_eq!(params[1]["encoding"], "base64");
            let preflight = params[1]["preflightCommitment"].as_str().unwrap();
            assert!(Commitment::parse(preflight).is_some(), "{preflight}");
            send(params[0].as_str().unwrap())
        }
        "getSignatureStatuses" => match status(polls.fetch_add(1, Ordering::SeqCst)) {
            // A node hiccup in the middle of the polling.
            Value::String(s) if s == "http 502" => Answer::Raw(
                "HTTP/1.1 502 Bad Gateway\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                    .into(),
            ),
            status => Answer::Result(json!({"context": {"slot": 1}, "value": [status]})),
        },
        other => panic!("unexpected {other}"),
    })
    .await
}

#[tokio::test]
async fn sends_signed_transactions_and_waits_for_the_commitment() {
    let double = tx_double(
        |tx| {
            let (signature, keys) = check_transaction(tx);
            assert!(keys.contains(&ids::MINER_SCORE));
            Answer::Result(json!(signature))
        },
        |poll| match poll {
            0 => Value::Null,
            1 => json!("http 502"),
            2 => json!({"slot": 5, "confirmations": 0, "err": null, "confirmationStatus": "processed"}),
            _ => json!({"slot": 5, "confirmations": 1, "err": null, "confirmationStatus": "confirmed"}),
        },
    )
    .await;
    let chain = double.chain();
    let miner = SigningKey::from_bytes(&[4; 32]);
    let signature = chain.claim(&miner, 3, &key(60)).await.unwrap();
    let methods = double.methods();
    assert_eq!(
        methods,
        [
            "getAccountInfo",
            "getLatestBlockhash",
            "sendTransaction",
            "getSignatureStatuses",
            "getSignatureStatuses",
            "getSignatureStatuses",
            "getSignatureStatuses",
        ]
    );
    let requests = double.requests.lock().unwrap();
    assert_eq!(
        requests[3]["params"][0][0].as_str().unwrap(),
        signature.to_string()
    );
    let (_, keys) = check_transaction(requests[2]["params"][0].as_str().unwrap());
    assert_eq!(keys[0], pubkey_of(&miner));
}

#[tokio::test]
async fn program_errors_are_named_at_preflight_and_at_execution() {
    // Preflight: the node's -32002 with data.err and data.logs.
    let double = tx_double(
        |_| {
            Answer::Error(json!({
                "code": -32002,
                "message": "Transaction simulation failed: Error processing Instruction 0: custom program error: 0x17b0",
                "data": {
                    "err": {"InstructionError": [0, {"Custom": 6032}]},
                    "logs": ["Program 5nnF... invoke [1]", "Program log: AnchorError occurred. Error Code: ChallengeWindowOpen."],
                    "accounts": null,
                    "unitsConsumed": 1000,
                },
            }))
        },
        |_| Value::Null,
    )
    .await;
    let chain = double.chain();
    let miner = SigningKey::from_bytes(&[4; 32]);
    let e = chain.claim(&miner, 3, &key(60)).await.unwrap_err();
    match &e {
        ChainError::Program {
            program,
            code,
            name,
            logs,
        } => {
            assert_eq!(program, "tolldns-miner-score");
            assert_eq!(*code, 6032);
            assert_eq!(name, "ChallengeWindowOpen");
            assert_eq!(logs.len(), 2);
        }
        other => panic!("{other}"),
    }
    assert_eq!(e.program_error_name(), Some("ChallengeWindowOpen"));

    // A preflight failure that is not an instruction's custom error.
    let double = tx_double(
        |_| {
            Answer::Error(
                json!({"code": -32002, "message": "Transaction simulation failed",
                "data": {"err": "AccountNotFound", "logs": []}}),
            )
        },
        |_| Value::Null,
    )
    .await;
    let e = double.chain().finalize(&miner, 3).await.unwrap_err();
    assert!(
        matches!(&e, ChainError::Transaction { reason, .. } if reason.contains("AccountNotFound")),
        "{e}"
    );

    // Execution: the status carries the error.
    let double = tx_double(
        |tx| Answer::Result(json!(check_transaction(tx).0)),
        |_| {
            json!({"slot": 5, "confirmations": 0, "confirmationStatus": "confirmed",
                "err": {"InstructionError": [0, {"Custom": 6036}]}})
        },
    )
    .await;
    let watcher = SigningKey::from_bytes(&[10; 32]);
    let e = double
        .chain()
        .report(&watcher, 3, &key(20), &Default::default())
        .await
        .unwrap_err();
    assert_eq!(e.program_error_name(), Some("NotAccepted"), "{e}");

    // A plain JSON-RPC error elsewhere.
    let double = Double::start(|_, _| {
        Answer::Error(json!({"code": -32005, "message": "Node is behind by 42 slots"}))
    })
    .await;
    match double.chain().slot().await.unwrap_err() {
        ChainError::Rpc { code, message, .. } => {
            assert_eq!(code, -32005);
            assert!(message.contains("behind"));
        }
        other => panic!("{other}"),
    }
}

#[tokio::test]
async fn bounded_in_time_and_size() {
    // A node that never answers: the request timeout.
    let double = Double::start(|_, _| Answer::Hang).await;
    let mut config = RpcConfig::new(double.url.clone());
    config.request_timeout = Duration::from_millis(200);
    let e = RpcChain::new(config).unwrap().slot().await.unwrap_err();
    assert!(matches!(e, ChainError::Timeout { .. }), "{e}");

    // A transaction that never confirms: the confirmation timeout.
    let double = tx_double(
        |tx| Answer::Result(json!(check_transaction(tx).0)),
        |_| Value::Null,
    )
    .await;
    let mut config = RpcConfig::new(double.url.clone());
    config.confirm_timeout = Duration::from_millis(300);
    config.poll_interval = Duration::from_millis(20);
    config.commitment = Commitment::Finalized;
    let chain = RpcChain::new(config).unwrap();
    let e = chain
        .finalize(&SigningKey::from_bytes(&[4; 32]), 3)
        .await
        .unwrap_err();
    assert!(
        matches!(&e, ChainError::Timeout { what, .. } if what.contains("finalized")),
        "{e}"
    );

    // An answer larger than the bound.
    let double = Double::start(|_, _| Answer::Result(json!("x".repeat(10_000)))).await;
    let mut config = RpcConfig::new(double.url.clone());
    config.max_response_bytes = 1000;
    let e = RpcChain::new(config).unwrap().slot().await.unwrap_err();
    assert!(matches!(e, ChainError::Transport { .. }), "{e}");

    // An HTTP error page: a transport error naming the status, not the API key.
    let double = Double::start(|_, _| {
        Answer::Raw(
            "HTTP/1.1 502 Bad Gateway\r\ncontent-length: 11\r\nconnection: close\r\n\r\nbad gateway"
                .into(),
        )
    })
    .await;
    let e = double.chain().slot().await.unwrap_err().to_string();
    assert!(e.contains("HTTP 502") && e.contains("bad gateway"), "{e}");
    assert!(!e.contains("secret"), "{e}");

    // Nobody listening.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let e = RpcChain::new(RpcConfig::new(format!("http://127.0.0.1:{port}")))
        .unwrap()
        .slot()
        .await
        .unwrap_err();
    assert!(matches!(e, ChainError::Transport { .. }), "{e}");
}

#[test]
fn urls_are_checked() {
    for bad in [
        "ftp://x",
        "127.0.0.1:8899",
        "http://",
        "https://example.com",
    ] {
        let e = RpcChain::new(RpcConfig::new(bad)).unwrap_err();
        assert!(matches!(e, ChainError::Config(_)), "{bad}: {e}");
    }
    let chain = RpcChain::new(RpcConfig::new("http://[::1]:8899/path?key=1")).unwrap();
    assert_eq!(chain.origin(), "http://[::1]:8899");
}

#[tokio::test]
async fn https_trusts_only_the_ca_file() {
    let dir = std::env::temp_dir().join(format!("tolldns-chain-tls-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    tolldns_service::files::create_private_dir(&dir).unwrap();
    let generated = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert, generated.cert.pem()).unwrap();
    tolldns_service::files::write_private_file(
        &key,
        generated.signing_key.serialize_pem().as_bytes(),
    )
    .unwrap();
    let other = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let other_ca = dir.join("other.pem");
    std::fs::write(&other_ca, other.cert.pem()).unwrap();

    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(
        tolldns_service::tls::server_config(&cert, &key).unwrap(),
    ));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        loop {
            let (tcp, _) = listener.accept().await.unwrap();
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let Some(request) = read_request(&mut tls).await else {
                    return;
                };
                assert_eq!(request["method"], "getSlot");
                let body = json!({"jsonrpc": "2.0", "id": request["id"], "result": 77}).to_string();
                let response = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
                    body.len()
                );
                let _ = tls.write_all(response.as_bytes()).await;
                let _ = tls.shutdown().await;
            });
        }
    });
    let url = format!("https://localhost:{port}/rpc?api-key=secret");
    let mut config = RpcConfig::new(url.clone());
    config.ca_file = Some(cert);
    assert_eq!(RpcChain::new(config).unwrap().slot().await.unwrap(), 77);

    let mut config = RpcConfig::new(url);
    config.ca_file = Some(other_ca);
    let e = RpcChain::new(config).unwrap().slot().await.unwrap_err();
    assert!(
        matches!(&e, ChainError::Transport { reason, .. } if reason.starts_with("TLS")),
        "{e}"
    );
    std::fs::remove_dir_all(dir).unwrap();
}
