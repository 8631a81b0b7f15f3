//! A local Solana cluster for tests: the `solana-program-test` bank with both TollDNS programs
//! and SPL token, served as a Solana JSON-RPC subset over HTTP on `127.0.0.1`.
//!
//! Slots advance with wall time: a background task warps the bank forward every
//! `ms_per_slot` milliseconds (to the slot that wall time calls for, so a slow machine skips
//! slots rather than falling behind). Every warp creates a new bank, so the `Clock` and
//! `SlotHashes` sysvars follow: after a warp from slot `s` to `w`, `SlotHashes` gains the
//! entries of `s` and `w − 1` (the intermediate bank a warp freezes), newest first, so every
//! entry is a slot that really had a bank; slots skipped by a warp have no entry.
//!
//! # Methods
//!
//! `getSlot`, `getBlockHeight`, `getAccountInfo`, `getMultipleAccounts`, `getProgramAccounts`
//! (filters `memcmp {offset, bytes}` with base58 or base64 bytes and `dataSize`; `dataSlice`;
//! `withContext`), `getLatestBlockhash`, `sendTransaction` (base64 or base58 wire transaction;
//! a failed preflight is answered like a real node: code `-32002`, message
//! `Transaction simulation failed: …`, `data {err, logs}`), `getSignatureStatuses` (every
//! processed transaction is reported `finalized`), `getBalance`, `getTokenAccountBalance`,
//! `getMinimumBalanceForRentExemption`, `getGenesisHash`, `getEpochInfo`, `getHealth`,
//! `getVersion`. Account data is answered in `base64` (`base58` on request). The commitment is
//! accepted and ignored: there is one bank, and what it processed is final.
//!
//! # Account index
//!
//! The program-test bank cannot list accounts by owner, so `getProgramAccounts` scans the
//! accounts this localnet has seen: every account key of every transaction sent through it
//! (over RPC or [`LocalBank::send`]) and every account stored with
//! [`LocalBank::set_account`]. Every account a transaction creates or changes is one of its
//! account keys, so the scan sees every program account created after the start.

use std::collections::{BTreeSet, HashMap};
use std::net::SocketAddr;
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anchor_lang::prelude::Pubkey;
use anchor_lang::solana_program::program_pack::Pack;
use anchor_lang::solana_program::system_instruction;
use anchor_spl::token::spl_token;
use base64::Engine as _;
use bytes::Bytes;
use http_body_util::{BodyExt as _, Full, Limited};
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use serde_json::{json, Value};
use solana_account::{Account, AccountSharedData};
use solana_commitment_config::CommitmentLevel;
use solana_instruction::Instruction;
use solana_keypair::Keypair;
use solana_program_test::{BanksClientError, ProgramTestContext};
use solana_signature::Signature;
use solana_signer::Signer;
use solana_transaction::versioned::VersionedTransaction;
use solana_transaction::Transaction;
use solana_transaction_error::TransactionError;
use tokio::net::TcpListener;
use tokio::sync::{Mutex, MutexGuard};
use tokio::task::JoinHandle;

/// Program id of the compute-budget builtin (a `SetComputeUnitLimit` with a fresh value makes
/// otherwise identical transactions distinct).
const COMPUTE_BUDGET_ID: Pubkey =
    anchor_lang::prelude::pubkey!("ComputeBudget111111111111111111111111111111");

/// Largest JSON-RPC request body accepted, in bytes.
const MAX_BODY: usize = 4 << 20;

/// The version reported by `getVersion`.
const VERSION: &str = "3.1.12";

/// What can fail when starting or driving the localnet.
#[derive(Debug, thiserror::Error)]
pub enum LocalnetError {
    /// The RPC listener could not be bound.
    #[error("cannot bind the RPC listener: {0}")]
    Bind(#[source] std::io::Error),
    /// A warp was refused (the slot is not ahead of the bank).
    #[error("cannot warp from slot {from} to slot {to}")]
    Warp {
        /// The bank's slot.
        from: u64,
        /// The requested slot.
        to: u64,
    },
    /// The banks client failed.
    #[error("bank: {0}")]
    Bank(#[from] BanksClientError),
}

/// Options of [`Localnet::start`].
#[derive(Clone, Copy, Debug)]
pub struct LocalnetOptions {
    /// Wall-clock milliseconds per slot (at least 1).
    pub ms_per_slot: u64,
    /// Whether slots start advancing at once; otherwise call [`Localnet::set_clock_running`].
    pub clock_running: bool,
}

impl Default for LocalnetOptions {
    fn default() -> Self {
        Self {
            ms_per_slot: 50,
            clock_running: true,
        }
    }
}

/// Error of a signature or transaction processed by the bank (for `getSignatureStatuses`).
type Status = (u64, Option<TransactionError>);

/// The bank and what the localnet knows about it; locked by every RPC call and by the clock.
pub struct LocalBank {
    ctx: ProgramTestContext,
    known: BTreeSet<Pubkey>,
    statuses: HashMap<Signature, Status>,
    nonce: u32,
    slot: u64,
    ms_per_slot: u64,
    clock_running: bool,
    /// Wall time at which the bank was at `anchor_slot`.
    anchor: Instant,
    anchor_slot: u64,
}

impl std::fmt::Debug for LocalBank {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalBank")
            .field("slot", &self.slot)
            .field("known_accounts", &self.known.len())
            .field("ms_per_slot", &self.ms_per_slot)
            .field("clock_running", &self.clock_running)
            .finish_non_exhaustive()
    }
}

impl LocalBank {
    /// The payer of the bank (funded at genesis; the programs' authority in tests).
    pub fn payer(&self) -> Pubkey {
        self.ctx.payer.pubkey()
    }

    /// The payer's keypair.
    pub fn payer_keypair(&self) -> Keypair {
        self.ctx.payer.insecure_clone()
    }

    /// The program-test context (for what this API does not cover). Accounts changed through
    /// it directly are not indexed for `getProgramAccounts`: use [`Self::index`].
    pub fn context(&mut self) -> &mut ProgramTestContext {
        &mut self.ctx
    }

    /// Adds `key` to the account index scanned by `getProgramAccounts`.
    pub fn index(&mut self, key: Pubkey) {
        self.known.insert(key);
    }

    /// The bank's current slot.
    pub fn slot(&self) -> u64 {
        self.slot
    }

    /// Sends `ixs` paid by the payer and signed by `signers`, and returns its signature. A
    /// compute-budget instruction with a fresh value makes every transaction distinct.
    ///
    /// # Errors
    ///
    /// The transaction's error, with the simulation logs when preflight failed.
    pub async fn send(
        &mut self,
        ixs: &[Instruction],
        signers: &[&Keypair],
    ) -> Result<Signature, BanksClientError> {
        self.nonce = self.nonce.wrapping_add(1);
        let mut data = vec![2u8]; // SetComputeUnitLimit
        data.extend_from_slice(&1_400_000u32.saturating_sub(self.nonce).to_le_bytes());
        let mut all = vec![Instruction {
            program_id: COMPUTE_BUDGET_ID,
            accounts: vec![],
            data,
        }];
        all.extend_from_slice(ixs);
        let blockhash = self.ctx.banks_client.get_latest_blockhash().await?;
        let mut keys: Vec<&Keypair> = vec![&self.ctx.payer];
        keys.extend_from_slice(signers);
        let tx = Transaction::new_signed_with_payer(
            &all,
            Some(&self.ctx.payer.pubkey()),
            &keys,
            blockhash,
        );
        self.process(VersionedTransaction::from(tx)).await
    }

    /// Processes a signed transaction with preflight (as `sendTransaction` does), indexing its
    /// account keys and recording its status.
    ///
    /// # Errors
    ///
    /// The transaction's error, with the simulation logs when preflight failed.
    pub async fn process(
        &mut self,
        tx: VersionedTransaction,
    ) -> Result<Signature, BanksClientError> {
        let signature = tx.signatures.first().copied().unwrap_or_default();
        self.known
            .extend(tx.message.static_account_keys().iter().copied());
        let result = self
            .ctx
            .banks_client
            .process_transaction_with_preflight_and_commitment(tx, CommitmentLevel::Processed)
            .await;
        match result {
            Ok(()) => {
                self.statuses.insert(signature, (self.slot, None));
                Ok(signature)
            }
            Err(e) => {
                // A transaction that failed after preflight is on the ledger with its error.
                if let BanksClientError::TransactionError(err) = &e {
                    self.statuses
                        .insert(signature, (self.slot, Some(err.clone())));
                }
                Err(e)
            }
        }
    }

    /// Moves the bank to `slot` (and re-anchors the wall clock there).
    ///
    /// # Errors
    ///
    /// [`LocalnetError::Warp`] if `slot` is not ahead of the bank.
    pub fn warp(&mut self, slot: u64) -> Result<(), LocalnetError> {
        self.ctx
            .warp_to_slot(slot)
            .map_err(|_| LocalnetError::Warp {
                from: self.slot,
                to: slot,
            })?;
        self.slot = slot;
        self.anchor = Instant::now();
        self.anchor_slot = slot;
        Ok(())
    }

    /// Sends `lamports` from the payer to `to`.
    ///
    /// # Errors
    ///
    /// The transfer's error.
    pub async fn airdrop(&mut self, to: &Pubkey, lamports: u64) -> Result<(), BanksClientError> {
        let ix = system_instruction::transfer(&self.payer(), to, lamports);
        self.send(&[ix], &[]).await.map(|_| ())
    }

    /// An account, if it exists.
    ///
    /// # Errors
    ///
    /// The banks client's error.
    pub async fn account(&self, key: &Pubkey) -> Result<Option<Account>, BanksClientError> {
        self.ctx.banks_client.get_account(*key).await
    }

    /// Stores an account as is (bypassing the runtime) and indexes it.
    pub fn set_account(&mut self, key: &Pubkey, account: &AccountSharedData) {
        self.ctx.set_account(key, account);
        self.known.insert(*key);
    }

    /// Token balance of an SPL token account (0 if it is absent or not a token account).
    ///
    /// # Errors
    ///
    /// The banks client's error.
    pub async fn token_balance(&self, account: &Pubkey) -> Result<u64, BanksClientError> {
        Ok(self
            .account(account)
            .await?
            .and_then(|a| spl_token::state::Account::unpack(&a.data).ok())
            .map_or(0, |a| a.amount))
    }

    /// Whether the clock advances slots with wall time. Starting it re-anchors it at the
    /// current slot.
    pub fn set_clock_running(&mut self, running: bool) {
        if running && !self.clock_running {
            self.anchor = Instant::now();
            self.anchor_slot = self.slot;
        }
        self.clock_running = running;
    }

    /// One clock tick: warps to the slot wall time calls for, if it is ahead.
    fn tick(&mut self) {
        if !self.clock_running {
            return;
        }
        let elapsed = u64::try_from(self.anchor.elapsed().as_millis()).unwrap_or(u64::MAX);
        let due = self
            .anchor_slot
            .saturating_add(elapsed / self.ms_per_slot.max(1));
        if due > self.slot && self.ctx.warp_to_slot(due).is_ok() {
            self.slot = due;
        }
    }
}

/// The bank plus its RPC server and clock task.
#[derive(Debug)]
pub struct Localnet {
    bank: Arc<Mutex<LocalBank>>,
    addr: SocketAddr,
    server: JoinHandle<()>,
    clock: JoinHandle<()>,
}

impl Drop for Localnet {
    fn drop(&mut self) {
        self.server.abort();
        self.clock.abort();
    }
}

impl Localnet {
    /// Starts a bank with both programs ([`crate::program_test`]) and serves it.
    ///
    /// # Errors
    ///
    /// [`LocalnetError::Bind`].
    pub async fn start(options: LocalnetOptions) -> Result<Self, LocalnetError> {
        let ctx = crate::program_test().start_with_context().await;
        Self::serve(ctx, options).await
    }

    /// Serves an already started program-test context.
    ///
    /// # Errors
    ///
    /// [`LocalnetError::Bind`], or the banks client's error reading the clock.
    pub async fn serve(
        ctx: ProgramTestContext,
        options: LocalnetOptions,
    ) -> Result<Self, LocalnetError> {
        let slot = ctx
            .banks_client
            .get_sysvar::<anchor_lang::prelude::Clock>()
            .await?
            .slot;
        let ms_per_slot = options.ms_per_slot.max(1);
        let bank = Arc::new(Mutex::new(LocalBank {
            ctx,
            known: BTreeSet::new(),
            statuses: HashMap::new(),
            nonce: 0,
            slot,
            ms_per_slot,
            clock_running: options.clock_running,
            anchor: Instant::now(),
            anchor_slot: slot,
        }));
        let listener = TcpListener::bind(("127.0.0.1", 0))
            .await
            .map_err(LocalnetError::Bind)?;
        let addr = listener.local_addr().map_err(LocalnetError::Bind)?;
        let server = tokio::spawn(serve_http(listener, bank.clone()));
        let clock_bank = bank.clone();
        let clock = tokio::spawn(async move {
            let mut interval = tokio::time::interval(Duration::from_millis(ms_per_slot));
            interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
            loop {
                interval.tick().await;
                clock_bank.lock().await.tick();
            }
        });
        Ok(Self {
            bank,
            addr,
            server,
            clock,
        })
    }

    /// The RPC listener's address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The RPC URL, `http://127.0.0.1:port`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Locks the bank (RPC calls and the clock wait meanwhile).
    pub async fn bank(&self) -> MutexGuard<'_, LocalBank> {
        self.bank.lock().await
    }

    /// Starts or stops the wall-time clock.
    pub async fn set_clock_running(&self, running: bool) {
        self.bank.lock().await.set_clock_running(running);
    }

    /// The bank's current slot.
    pub async fn slot(&self) -> u64 {
        self.bank.lock().await.slot
    }

    /// Waits until the bank reaches `slot` or `deadline` passes; returns the slot reached.
    pub async fn wait_for_slot(&self, slot: u64, deadline: Instant) -> u64 {
        loop {
            let now = self.slot().await;
            if now >= slot || Instant::now() >= deadline {
                return now;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

// ---------------------------------------------------------------------------------------------
// HTTP

/// Accepts connections and serves JSON-RPC over HTTP/1.1 on each.
async fn serve_http(listener: TcpListener, bank: Arc<Mutex<LocalBank>>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let bank = bank.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| {
                let bank = bank.clone();
                async move { Ok::<_, std::convert::Infallible>(handle_http(req, bank).await) }
            });
            // A connection error only ends that connection.
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                .await;
        });
    }
}

/// One HTTP request: a POSTed JSON-RPC request or batch.
async fn handle_http(req: Request<Incoming>, bank: Arc<Mutex<LocalBank>>) -> Response<Full<Bytes>> {
    if req.method() != Method::POST {
        return http_response(StatusCode::METHOD_NOT_ALLOWED, Value::Null);
    }
    let body = match Limited::new(req.into_body(), MAX_BODY).collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => return http_response(StatusCode::PAYLOAD_TOO_LARGE, Value::Null),
    };
    let request: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => {
            let err = rpc_error(Value::Null, -32700, &format!("Parse error: {e}"), None);
            return http_response(StatusCode::OK, err);
        }
    };
    let answer = match request {
        Value::Array(calls) => {
            let mut out = Vec::with_capacity(calls.len());
            for call in calls {
                out.push(handle_call(call, &bank).await);
            }
            Value::Array(out)
        }
        call => handle_call(call, &bank).await,
    };
    http_response(StatusCode::OK, answer)
}

/// An HTTP response with a JSON body (empty for `Value::Null`).
fn http_response(status: StatusCode, body: Value) -> Response<Full<Bytes>> {
    let bytes = if body.is_null() {
        Bytes::new()
    } else {
        Bytes::from(body.to_string())
    };
    let mut resp = Response::new(Full::new(bytes));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    resp
}

// ---------------------------------------------------------------------------------------------
// JSON-RPC

/// A JSON-RPC error: code, message, optional data.
#[derive(Debug)]
struct RpcError {
    code: i64,
    message: String,
    data: Option<Value>,
}

impl RpcError {
    fn invalid_params(message: impl Into<String>) -> Self {
        Self {
            code: -32602,
            message: message.into(),
            data: None,
        }
    }

    fn internal(message: impl std::fmt::Display) -> Self {
        Self {
            code: -32603,
            message: format!("Internal error: {message}"),
            data: None,
        }
    }
}

impl From<BanksClientError> for RpcError {
    fn from(e: BanksClientError) -> Self {
        Self::internal(e)
    }
}

fn rpc_error(id: Value, code: i64, message: &str, data: Option<Value>) -> Value {
    let mut error = json!({"code": code, "message": message});
    if let Some(data) = data {
        error["data"] = data;
    }
    json!({"jsonrpc": "2.0", "id": id, "error": error})
}

/// One JSON-RPC call.
async fn handle_call(call: Value, bank: &Mutex<LocalBank>) -> Value {
    let id = call.get("id").cloned().unwrap_or(Value::Null);
    let Some(method) = call.get("method").and_then(Value::as_str) else {
        return rpc_error(id, -32600, "Invalid request", None);
    };
    let params = match call.get("params") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(a)) => a.clone(),
        Some(_) => return rpc_error(id, -32602, "Invalid params: expected an array", None),
    };
    let mut bank = bank.lock().await;
    match dispatch(method, &params, &mut bank).await {
        Ok(result) => json!({"jsonrpc": "2.0", "id": id, "result": result}),
        Err(e) => rpc_error(id, e.code, &e.message, e.data),
    }
}

/// The config object (`params[i]`), or an empty one.
fn config(params: &[Value], i: usize) -> &serde_json::Map<String, Value> {
    static EMPTY: std::sync::OnceLock<serde_json::Map<String, Value>> = std::sync::OnceLock::new();
    params
        .get(i)
        .and_then(Value::as_object)
        .unwrap_or_else(|| EMPTY.get_or_init(serde_json::Map::new))
}

fn pubkey_param(params: &[Value], i: usize) -> Result<Pubkey, RpcError> {
    let s = params.get(i).and_then(Value::as_str).ok_or_else(|| {
        RpcError::invalid_params(format!("Invalid params: missing pubkey at {i}"))
    })?;
    Pubkey::from_str(s).map_err(|_| RpcError::invalid_params(format!("Invalid param: {s}")))
}

fn context(bank: &LocalBank) -> Value {
    json!({"slot": bank.slot, "apiVersion": VERSION})
}

/// Answers one method.
async fn dispatch(method: &str, params: &[Value], bank: &mut LocalBank) -> Result<Value, RpcError> {
    match method {
        "getSlot" | "getBlockHeight" => Ok(json!(bank.slot)),
        "getHealth" => Ok(json!("ok")),
        "getVersion" => Ok(json!({"solana-core": VERSION, "feature-set": 0})),
        "getGenesisHash" => Ok(json!(bank.ctx.genesis_config().hash().to_string())),
        "getEpochInfo" => {
            let schedule = &bank.ctx.genesis_config().epoch_schedule;
            let (epoch, index) = schedule.get_epoch_and_slot_index(bank.slot);
            Ok(json!({
                "absoluteSlot": bank.slot,
                "blockHeight": bank.slot,
                "epoch": epoch,
                "slotIndex": index,
                "slotsInEpoch": schedule.get_slots_in_epoch(epoch),
                "transactionCount": null,
            }))
        }
        "getMinimumBalanceForRentExemption" => {
            let len = params
                .first()
                .and_then(Value::as_u64)
                .and_then(|n| usize::try_from(n).ok())
                .ok_or_else(|| RpcError::invalid_params("Invalid params: expected a length"))?;
            let rent = bank.ctx.banks_client.get_rent().await?;
            Ok(json!(rent.minimum_balance(len)))
        }
        "getLatestBlockhash" => {
            let (hash, last_valid) = bank
                .ctx
                .banks_client
                .get_latest_blockhash_with_commitment(CommitmentLevel::Processed)
                .await?
                .ok_or_else(|| RpcError::internal("no blockhash"))?;
            Ok(json!({"context": context(bank), "value": {
                "blockhash": hash.to_string(), "lastValidBlockHeight": last_valid}}))
        }
        "getBalance" => {
            let key = pubkey_param(params, 0)?;
            let lamports = bank.ctx.banks_client.get_balance(key).await?;
            Ok(json!({"context": context(bank), "value": lamports}))
        }
        "getAccountInfo" => {
            let key = pubkey_param(params, 0)?;
            let opts = AccountOptions::parse(config(params, 1))?;
            let account = bank.account(&key).await?;
            Ok(json!({"context": context(bank),
                "value": account.map(|a| account_json(&a, &opts))}))
        }
        "getMultipleAccounts" => {
            let keys = params
                .first()
                .and_then(Value::as_array)
                .ok_or_else(|| RpcError::invalid_params("Invalid params: expected an array"))?;
            let opts = AccountOptions::parse(config(params, 1))?;
            let mut out = Vec::with_capacity(keys.len());
            for (i, _) in keys.iter().enumerate() {
                let key = pubkey_param(keys, i)?;
                let account = bank.account(&key).await?;
                out.push(account.map_or(Value::Null, |a| account_json(&a, &opts)));
            }
            Ok(json!({"context": context(bank), "value": out}))
        }
        "getProgramAccounts" => get_program_accounts(params, bank).await,
        "getTokenAccountBalance" => {
            let key = pubkey_param(params, 0)?;
            let account = bank
                .account(&key)
                .await?
                .ok_or_else(|| RpcError::invalid_params("Invalid param: could not find account"))?;
            let token = spl_token::state::Account::unpack(&account.data)
                .map_err(|_| RpcError::invalid_params("Invalid param: not a Token account"))?;
            let decimals = match bank.account(&token.mint).await? {
                Some(mint) => spl_token::state::Mint::unpack(&mint.data).map_or(0, |m| m.decimals),
                None => 0,
            };
            Ok(json!({"context": context(bank), "value": token_amount(token.amount, decimals)}))
        }
        "getSignatureStatuses" => {
            let sigs = params
                .first()
                .and_then(Value::as_array)
                .ok_or_else(|| RpcError::invalid_params("Invalid params: expected an array"))?;
            let mut out = Vec::with_capacity(sigs.len());
            for sig in sigs {
                let sig = sig
                    .as_str()
                    .and_then(|s| Signature::from_str(s).ok())
                    .ok_or_else(|| RpcError::invalid_params("Invalid param: signature"))?;
                out.push(match bank.statuses.get(&sig) {
                    None => Value::Null,
                    Some((slot, err)) => {
                        let err = err.as_ref().map_or(Value::Null, |e| json!(e));
                        let status = if err.is_null() {
                            json!({"Ok": null})
                        } else {
                            json!({"Err": err})
                        };
                        json!({"slot": slot, "confirmations": null, "err": err,
                            "status": status, "confirmationStatus": "finalized"})
                    }
                });
            }
            Ok(json!({"context": context(bank), "value": out}))
        }
        "sendTransaction" => send_transaction(params, bank).await,
        _ => Err(RpcError {
            code: -32601,
            message: "Method not found".to_string(),
            data: None,
        }),
    }
}

/// The `uiTokenAmount` object of an amount.
fn token_amount(amount: u64, decimals: u8) -> Value {
    let ui = if decimals == 0 {
        amount.to_string()
    } else {
        let s = format!("{amount:0>width$}", width = usize::from(decimals) + 1);
        let (int, frac) = s.split_at(s.len() - usize::from(decimals));
        let frac = frac.trim_end_matches('0');
        if frac.is_empty() {
            int.to_string()
        } else {
            format!("{int}.{frac}")
        }
    };
    #[allow(clippy::cast_precision_loss)] // `uiAmount` is a float in the RPC API
    let ui_amount = amount as f64 / 10f64.powi(i32::from(decimals));
    json!({"amount": amount.to_string(), "decimals": decimals,
        "uiAmount": ui_amount, "uiAmountString": ui})
}

/// Encoding and data slice of account answers.
#[derive(Debug)]
struct AccountOptions {
    base58: bool,
    slice: Option<(usize, usize)>,
}

impl AccountOptions {
    fn parse(cfg: &serde_json::Map<String, Value>) -> Result<Self, RpcError> {
        let base58 = match cfg.get("encoding").and_then(Value::as_str) {
            None | Some("base64" | "jsonParsed") => false,
            Some("base58") => true,
            Some(other) => {
                return Err(RpcError::invalid_params(format!(
                    "Invalid params: unsupported encoding {other}"
                )))
            }
        };
        let slice = match cfg.get("dataSlice") {
            None | Some(Value::Null) => None,
            Some(s) => {
                let field = |k: &str| {
                    s.get(k)
                        .and_then(Value::as_u64)
                        .and_then(|n| usize::try_from(n).ok())
                        .ok_or_else(|| RpcError::invalid_params("Invalid params: dataSlice"))
                };
                Some((field("offset")?, field("length")?))
            }
        };
        Ok(Self { base58, slice })
    }
}

fn account_json(account: &Account, opts: &AccountOptions) -> Value {
    let data = match opts.slice {
        None => &account.data[..],
        Some((offset, length)) => {
            let start = offset.min(account.data.len());
            let end = start.saturating_add(length).min(account.data.len());
            &account.data[start..end]
        }
    };
    let (encoded, encoding) = if opts.base58 {
        (bs58::encode(data).into_string(), "base58")
    } else {
        (
            base64::engine::general_purpose::STANDARD.encode(data),
            "base64",
        )
    };
    json!({
        "data": [encoded, encoding],
        "executable": account.executable,
        "lamports": account.lamports,
        "owner": account.owner.to_string(),
        "rentEpoch": account.rent_epoch,
        "space": account.data.len(),
    })
}

/// A `getProgramAccounts` filter.
#[derive(Debug)]
enum Filter {
    DataSize(usize),
    Memcmp { offset: usize, bytes: Vec<u8> },
}

impl Filter {
    fn parse(v: &Value) -> Result<Self, RpcError> {
        let bad = || RpcError::invalid_params(format!("Invalid params: filter {v}"));
        if let Some(n) = v.get("dataSize") {
            let n = n
                .as_u64()
                .and_then(|n| usize::try_from(n).ok())
                .ok_or_else(bad)?;
            return Ok(Self::DataSize(n));
        }
        let m = v.get("memcmp").ok_or_else(bad)?;
        let offset = m
            .get("offset")
            .and_then(Value::as_u64)
            .and_then(|n| usize::try_from(n).ok())
            .ok_or_else(bad)?;
        let text = m.get("bytes").and_then(Value::as_str).ok_or_else(bad)?;
        let bytes = match m.get("encoding").and_then(Value::as_str) {
            None | Some("base58") => bs58::decode(text).into_vec().map_err(|_| bad())?,
            Some("base64") => base64::engine::general_purpose::STANDARD
                .decode(text)
                .map_err(|_| bad())?,
            Some(_) => return Err(bad()),
        };
        Ok(Self::Memcmp { offset, bytes })
    }

    fn matches(&self, data: &[u8]) -> bool {
        match self {
            Self::DataSize(n) => data.len() == *n,
            Self::Memcmp { offset, bytes } => offset
                .checked_add(bytes.len())
                .and_then(|end| data.get(*offset..end))
                .is_some_and(|d| d == bytes.as_slice()),
        }
    }
}

async fn get_program_accounts(params: &[Value], bank: &mut LocalBank) -> Result<Value, RpcError> {
    let program = pubkey_param(params, 0)?;
    let cfg = config(params, 1);
    let opts = AccountOptions::parse(cfg)?;
    let filters = match cfg.get("filters") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(f)) => f.iter().map(Filter::parse).collect::<Result<Vec<_>, _>>()?,
        Some(_) => return Err(RpcError::invalid_params("Invalid params: filters")),
    };
    let with_context = cfg
        .get("withContext")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let keys: Vec<Pubkey> = bank.known.iter().copied().collect();
    let mut out = Vec::new();
    for key in keys {
        let Some(account) = bank.account(&key).await? else {
            continue;
        };
        if account.owner == program && filters.iter().all(|f| f.matches(&account.data)) {
            out.push(json!({"pubkey": key.to_string(), "account": account_json(&account, &opts)}));
        }
    }
    if with_context {
        Ok(json!({"context": context(bank), "value": out}))
    } else {
        Ok(Value::Array(out))
    }
}

async fn send_transaction(params: &[Value], bank: &mut LocalBank) -> Result<Value, RpcError> {
    let text = params
        .first()
        .and_then(Value::as_str)
        .ok_or_else(|| RpcError::invalid_params("Invalid params: expected a transaction"))?;
    let wire = match config(params, 1).get("encoding").and_then(Value::as_str) {
        None | Some("base58") => bs58::decode(text)
            .into_vec()
            .map_err(|e| RpcError::invalid_params(format!("invalid base58 encoding: {e}")))?,
        Some("base64") => base64::engine::general_purpose::STANDARD
            .decode(text)
            .map_err(|e| RpcError::invalid_params(format!("invalid base64 encoding: {e}")))?,
        Some(other) => {
            return Err(RpcError::invalid_params(format!(
                "Invalid params: unsupported encoding {other}"
            )))
        }
    };
    let tx: VersionedTransaction = bincode::deserialize(&wire).map_err(|e| {
        RpcError::invalid_params(format!("failed to deserialize VersionedTransaction: {e}"))
    })?;
    if tx.verify_with_results().iter().any(|ok| !ok) {
        return Err(RpcError {
            code: -32003,
            message: "Transaction signature verification failure".to_string(),
            data: None,
        });
    }
    match bank.process(tx).await {
        Ok(signature) => Ok(json!(signature.to_string())),
        Err(e) => {
            let (err, logs) = match e {
                BanksClientError::SimulationError { err, logs, .. } => (err, logs),
                BanksClientError::TransactionError(err) => (err, Vec::new()),
                BanksClientError::ClientError(_) => {
                    (TransactionError::BlockhashNotFound, Vec::new())
                }
                other => return Err(RpcError::internal(other)),
            };
            Err(RpcError {
                code: -32002,
                message: format!("Transaction simulation failed: {err}"),
                data: Some(json!({
                    "err": err,
                    "logs": logs,
                    "accounts": null,
                    "unitsConsumed": 0,
                    "returnData": null,
                })),
            })
        }
    }
}
