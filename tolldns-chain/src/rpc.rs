//! [`RpcChain`]: the [`Chain`] over Solana JSON-RPC 2.0, HTTP/1.1 (plain or TLS).
//!
//! Every call is one `POST` of a JSON-RPC request on a fresh connection, bounded by
//! [`RpcConfig::request_timeout`] (connect, TLS, request and response together) and by
//! [`RpcConfig::max_response_bytes`]. `https://` trusts only the certificate authorities of
//! [`RpcConfig::ca_file`] (`tolldns_service::tls::client_config`); plain `http://` is meant
//! for a node on the same host or a private network.
//!
//! Methods used: `getSlot`, `getAccountInfo`, `getMultipleAccounts`, `getProgramAccounts`
//! (memcmp filter on the discriminator, base64), `getLatestBlockhash`, `sendTransaction`
//! (base64, with preflight), `getSignatureStatuses` (polled until the commitment, bounded by
//! [`RpcConfig::confirm_timeout`]) and `getTokenAccountBalance`.
//!
//! A program's refusal, at preflight (`-32002` with `data.err` and `data.logs`) or in the
//! confirmed status, becomes [`ChainError::Program`] named from [`crate::program_errors`].

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use base64::Engine as _;
use bytes::Bytes;
use http_body_util::{BodyExt as _, Full, Limited};
use hyper_util::rt::TokioIo;
use portable_atomic::AtomicU64;
use serde_json::{Value, json};
use solana_instruction::Instruction;
use solana_transaction::Transaction;
use tokio::net::TcpStream;

use crate::accounts::{
    AnchorAccount, EpochTotals, MinerClaimReceipt, MinerEpochStats, MinerScoreConfig, Operator,
    RegistryConfig, SlotHashes, Stake,
};
use crate::{
    Chain, ChainError, Pubkey, ReportedStats, Signature, SigningKey, ids, instructions, pda,
    program_errors, pubkey_of, tx,
};

/// The commitment level of reads and confirmations.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub enum Commitment {
    /// Processed by the node (may be rolled back).
    Processed,
    /// Voted on by a supermajority.
    #[default]
    Confirmed,
    /// Rooted (cannot be rolled back).
    Finalized,
}

impl Commitment {
    /// The JSON-RPC name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Processed => "processed",
            Self::Confirmed => "confirmed",
            Self::Finalized => "finalized",
        }
    }

    /// Parses a JSON-RPC name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "processed" => Some(Self::Processed),
            "confirmed" => Some(Self::Confirmed),
            "finalized" => Some(Self::Finalized),
            _ => None,
        }
    }
}

impl std::fmt::Display for Commitment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How to reach the node.
#[derive(Clone, Debug)]
pub struct RpcConfig {
    /// `http://…` or `https://…` JSON-RPC endpoint.
    pub url: String,
    /// PEM file of the certificate authorities trusted for `https://` (required for TLS).
    pub ca_file: Option<PathBuf>,
    /// Commitment of reads and of transaction confirmation.
    pub commitment: Commitment,
    /// Bound of one HTTP exchange (connect, TLS, request, response).
    pub request_timeout: Duration,
    /// Bound of waiting for a sent transaction to reach `commitment`.
    pub confirm_timeout: Duration,
    /// Interval between two `getSignatureStatuses` while confirming.
    pub poll_interval: Duration,
    /// Largest response body read, in bytes.
    pub max_response_bytes: usize,
}

impl RpcConfig {
    /// A configuration for `url` with the defaults: `confirmed`, 10 s per request, 60 s to
    /// confirm (polled every 250 ms), responses up to 64 MiB.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            ca_file: None,
            commitment: Commitment::default(),
            request_timeout: Duration::from_secs(10),
            confirm_timeout: Duration::from_secs(60),
            poll_interval: Duration::from_millis(250),
            max_response_bytes: 64 << 20,
        }
    }
}

/// Where requests go, parsed once.
#[derive(Debug)]
struct Endpoint {
    /// Host name or IP address (without IPv6 brackets).
    host: String,
    /// TCP port.
    port: u16,
    /// `Host` header value.
    authority: String,
    /// Request path and query.
    path: String,
    /// `scheme://authority` for messages (paths often carry API keys).
    origin: String,
    /// TLS configuration for `https://`.
    tls: Option<Arc<rustls::ClientConfig>>,
}

impl Endpoint {
    fn parse(url: &str, ca_file: Option<&std::path::Path>) -> Result<Self, ChainError> {
        let bad = |why: &str| ChainError::Config(format!("RPC URL: {why}"));
        let uri: http::Uri = url.parse().map_err(|e| bad(&format!("{e}")))?;
        let tls = match uri.scheme_str() {
            Some("http") => false,
            Some("https") => true,
            _ => return Err(bad("the scheme must be http:// or https://")),
        };
        let authority = uri.authority().ok_or_else(|| bad("no host"))?;
        let host = authority
            .host()
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        if host.is_empty() {
            return Err(bad("no host"));
        }
        let port = authority.port_u16().unwrap_or(if tls { 443 } else { 80 });
        let tls = if tls {
            let ca = ca_file.ok_or_else(|| {
                ChainError::Config(
                    "https:// RPC needs a CA file (the certificate authorities to trust)".into(),
                )
            })?;
            let config = tolldns_service::tls::client_config(ca, &[b"http/1.1"])
                .map_err(|e| ChainError::Config(e.to_string()))?;
            Some(Arc::new(config))
        } else {
            None
        };
        Ok(Self {
            origin: format!(
                "{}://{}",
                if tls.is_some() { "https" } else { "http" },
                authority
            ),
            authority: authority.as_str().to_owned(),
            path: uri.path_and_query().map_or("/", |p| p.as_str()).to_owned(),
            host,
            port,
            tls,
        })
    }
}

/// Aborts a spawned task when dropped (also when the future owning it is cancelled).
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The [`Chain`] over Solana JSON-RPC.
#[derive(Debug)]
pub struct RpcChain {
    config: RpcConfig,
    endpoint: Endpoint,
    next_id: AtomicU64,
}

/// An account as `getAccountInfo` returns it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RawAccount {
    /// The owning program.
    pub owner: Pubkey,
    /// Lamports held.
    pub lamports: u64,
    /// The data.
    pub data: Vec<u8>,
}

impl RpcChain {
    /// A client of `config.url`.
    ///
    /// # Errors
    ///
    /// [`ChainError::Config`] for a URL that is not `http://` or `https://`, an `https://`
    /// URL without a CA file, or a CA file that does not load.
    pub fn new(config: RpcConfig) -> Result<Self, ChainError> {
        let endpoint = Endpoint::parse(&config.url, config.ca_file.as_deref())?;
        Ok(Self {
            config,
            endpoint,
            next_id: AtomicU64::new(1),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &RpcConfig {
        &self.config
    }

    /// The endpoint's origin (`scheme://host:port`), for messages.
    pub fn origin(&self) -> &str {
        &self.endpoint.origin
    }

    fn transport(&self, reason: impl std::fmt::Display) -> ChainError {
        ChainError::Transport {
            endpoint: self.endpoint.origin.clone(),
            reason: reason.to_string(),
        }
    }

    /// One HTTP exchange: `POST` of `body`, the response body.
    async fn post(&self, body: Vec<u8>) -> Result<Bytes, ChainError> {
        let limit = self.config.request_timeout;
        tokio::time::timeout(limit, self.exchange(body))
            .await
            .map_err(|_| ChainError::Timeout {
                what: format!("the RPC node {}", self.endpoint.origin),
                after: limit,
            })?
    }

    async fn exchange(&self, body: Vec<u8>) -> Result<Bytes, ChainError> {
        let ep = &self.endpoint;
        let tcp = TcpStream::connect((ep.host.as_str(), ep.port))
            .await
            .map_err(|e| self.transport(format!("connecting: {e}")))?;
        let _ = tcp.set_nodelay(true);
        let request = http::Request::post(ep.path.as_str())
            .header(http::header::HOST, ep.authority.as_str())
            .header(http::header::CONTENT_TYPE, "application/json")
            .header(http::header::ACCEPT, "application/json")
            .header(
                http::header::USER_AGENT,
                concat!("tolldns-chain/", env!("CARGO_PKG_VERSION")),
            )
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| self.transport(format!("request: {e}")))?;
        match &ep.tls {
            Some(config) => {
                let name = rustls::pki_types::ServerName::try_from(ep.host.clone())
                    .map_err(|e| self.transport(format!("TLS server name: {e}")))?;
                let stream = tokio_rustls::TlsConnector::from(Arc::clone(config))
                    .connect(name, tcp)
                    .await
                    .map_err(|e| self.transport(format!("TLS: {e}")))?;
                self.send_http(TokioIo::new(stream), request).await
            }
            None => self.send_http(TokioIo::new(tcp), request).await,
        }
    }

    async fn send_http<T>(
        &self,
        io: T,
        request: http::Request<Full<Bytes>>,
    ) -> Result<Bytes, ChainError>
    where
        T: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
    {
        let (mut sender, conn) = hyper::client::conn::http1::handshake(io)
            .await
            .map_err(|e| self.transport(format!("HTTP: {e}")))?;
        let _driver = AbortOnDrop(tokio::spawn(async move {
            let _ = conn.await;
        }));
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| self.transport(format!("HTTP: {e}")))?;
        let status = response.status();
        let body = Limited::new(response.into_body(), self.config.max_response_bytes)
            .collect()
            .await
            .map(http_body_util::Collected::to_bytes)
            .map_err(|e| self.transport(format!("reading the answer: {e}")))?;
        // Nodes answer JSON-RPC errors with 200; some proxies use 4xx/5xx with a JSON-RPC
        // body. Anything else is a transport failure.
        if !status.is_success() && serde_json::from_slice::<Value>(&body).is_err() {
            let text = String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned();
            return Err(self.transport(format!("HTTP {}: {}", status.as_u16(), text.trim())));
        }
        Ok(body)
    }

    /// Calls JSON-RPC `method` with `params` and returns its `result`.
    ///
    /// # Errors
    ///
    /// [`ChainError::Rpc`] for a JSON-RPC error, [`ChainError::Transport`],
    /// [`ChainError::Timeout`], [`ChainError::Decode`] for an answer that is not JSON-RPC.
    pub async fn call(&self, method: &str, params: Value) -> Result<Value, ChainError> {
        self.call_raw(method, params)
            .await?
            .map_err(|e| ChainError::Rpc {
                code: e.code,
                message: e.message,
                logs: logs_of(&e.data),
            })
    }

    /// Calls JSON-RPC `method`: `Ok(Err(..))` is the node's JSON-RPC error object.
    async fn call_raw(
        &self,
        method: &str,
        params: Value,
    ) -> Result<Result<Value, RpcErrorObject>, ChainError> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let request = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
        let body = self.post(request.to_string().into_bytes()).await?;
        let mut answer: Value = serde_json::from_slice(&body)
            .map_err(|e| ChainError::decode(format!("{method} answer"), e))?;
        if let Some(error) = answer.get_mut("error").map(Value::take) {
            return Ok(Err(RpcErrorObject {
                code: error.get("code").and_then(Value::as_i64).unwrap_or(0),
                message: error
                    .get("message")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_owned(),
                data: error.get("data").cloned().unwrap_or(Value::Null),
            }));
        }
        answer
            .get_mut("result")
            .map(Value::take)
            .map(Ok)
            .ok_or_else(|| ChainError::decode(format!("{method} answer"), "no result"))
    }

    fn commitment_param(&self) -> Value {
        json!({"commitment": self.config.commitment.as_str()})
    }

    fn account_param(&self) -> Value {
        json!({"commitment": self.config.commitment.as_str(), "encoding": "base64"})
    }

    /// The account at `address` (`getAccountInfo`), if it exists.
    ///
    /// # Errors
    ///
    /// The errors of [`RpcChain::call`]; [`ChainError::Decode`] for a malformed account.
    pub async fn account(&self, address: &Pubkey) -> Result<Option<RawAccount>, ChainError> {
        let result = self
            .call(
                "getAccountInfo",
                json!([address.to_string(), self.account_param()]),
            )
            .await?;
        let value = result.get("value").unwrap_or(&Value::Null);
        raw_account(value, &address.to_string())
    }

    /// The accounts at `addresses` (`getMultipleAccounts`, at most 100 per call), in order.
    ///
    /// # Errors
    ///
    /// As [`RpcChain::account`]; [`ChainError::Config`] for more than 100 addresses.
    pub async fn accounts(
        &self,
        addresses: &[Pubkey],
    ) -> Result<Vec<Option<RawAccount>>, ChainError> {
        if addresses.len() > 100 {
            return Err(ChainError::Config(
                "getMultipleAccounts takes at most 100 addresses".into(),
            ));
        }
        let keys: Vec<String> = addresses.iter().map(ToString::to_string).collect();
        let result = self
            .call("getMultipleAccounts", json!([keys, self.account_param()]))
            .await?;
        let values = result
            .get("value")
            .and_then(Value::as_array)
            .ok_or_else(|| ChainError::decode("getMultipleAccounts answer", "no value list"))?;
        if values.len() != addresses.len() {
            return Err(ChainError::decode(
                "getMultipleAccounts answer",
                format!(
                    "{} accounts for {} addresses",
                    values.len(),
                    addresses.len()
                ),
            ));
        }
        values
            .iter()
            .zip(&keys)
            .map(|(v, k)| raw_account(v, k))
            .collect()
    }

    /// The accounts of `program` whose data starts with `prefix` (`getProgramAccounts` with a
    /// memcmp filter at offset 0), as `(address, account)`.
    ///
    /// # Errors
    ///
    /// As [`RpcChain::account`].
    pub async fn program_accounts(
        &self,
        program: &Pubkey,
        prefix: &[u8],
    ) -> Result<Vec<(Pubkey, RawAccount)>, ChainError> {
        let mut config = self.account_param();
        config["filters"] =
            json!([{"memcmp": {"offset": 0, "bytes": bs58::encode(prefix).into_string()}}]);
        let mut result = self
            .call("getProgramAccounts", json!([program.to_string(), config]))
            .await?;
        // Some nodes wrap the list in a context object.
        if let Some(value) = result.get_mut("value") {
            result = value.take();
        }
        let list = result
            .as_array()
            .ok_or_else(|| ChainError::decode("getProgramAccounts answer", "not a list"))?;
        let mut out = Vec::with_capacity(list.len());
        for entry in list {
            let key = entry
                .get("pubkey")
                .and_then(Value::as_str)
                .ok_or_else(|| ChainError::decode("getProgramAccounts entry", "no pubkey"))?;
            let address = parse_pubkey(key, "getProgramAccounts entry")?;
            let account = raw_account(entry.get("account").unwrap_or(&Value::Null), key)?
                .ok_or_else(|| ChainError::decode("getProgramAccounts entry", "no account"))?;
            out.push((address, account));
        }
        Ok(out)
    }

    /// Reads and decodes the Anchor account `T` at `address`; `None` when it does not exist.
    ///
    /// # Errors
    ///
    /// As [`RpcChain::account`]; [`ChainError::Decode`] when the account is not owned by
    /// `T`'s program or does not decode as `T`.
    pub async fn anchor_account<T: AnchorAccount>(
        &self,
        address: &Pubkey,
    ) -> Result<Option<T>, ChainError> {
        match self.account(address).await? {
            None => Ok(None),
            Some(account) => decode_owned::<T>(address, &account).map(Some),
        }
    }

    /// The latest blockhash (`getLatestBlockhash`).
    ///
    /// # Errors
    ///
    /// As [`RpcChain::call`].
    pub async fn latest_blockhash(&self) -> Result<[u8; 32], ChainError> {
        let result = self
            .call("getLatestBlockhash", json!([self.commitment_param()]))
            .await?;
        let hash = result
            .pointer("/value/blockhash")
            .and_then(Value::as_str)
            .ok_or_else(|| ChainError::decode("getLatestBlockhash answer", "no blockhash"))?;
        decode_32(hash, "blockhash")
    }

    /// Signs `instructions` with `signers` (the first pays), sends them with preflight and
    /// waits until the transaction reaches the configured commitment.
    ///
    /// # Errors
    ///
    /// [`ChainError::Program`] when a program refuses it (preflight or execution),
    /// [`ChainError::Transaction`] for other transaction errors, [`ChainError::Timeout`] when
    /// it is not confirmed within [`RpcConfig::confirm_timeout`], and the errors of
    /// [`RpcChain::call`].
    pub async fn send(
        &self,
        signers: &[&SigningKey],
        instructions: &[Instruction],
    ) -> Result<Signature, ChainError> {
        let blockhash = self.latest_blockhash().await?;
        let transaction = tx::sign(instructions, signers, blockhash)?;
        let wire = tx::serialize(&transaction);
        if wire.len() > tx::MAX_TRANSACTION_LEN {
            return Err(ChainError::Config(format!(
                "transaction of {} bytes exceeds {}",
                wire.len(),
                tx::MAX_TRANSACTION_LEN
            )));
        }
        let encoded = base64::engine::general_purpose::STANDARD.encode(&wire);
        let params = json!([encoded, {
            "encoding": "base64",
            "skipPreflight": false,
            "preflightCommitment": self.config.commitment.as_str(),
        }]);
        let signature = match self.call_raw("sendTransaction", params).await? {
            Ok(v) => v
                .as_str()
                .ok_or_else(|| ChainError::decode("sendTransaction answer", "not a signature"))?
                .to_owned(),
            Err(e) => {
                let logs = logs_of(&e.data);
                return Err(match e.data.get("err").filter(|err| !err.is_null()) {
                    Some(err) => transaction_error(&transaction, err, logs),
                    None => ChainError::Rpc {
                        code: e.code,
                        message: e.message,
                        logs,
                    },
                });
            }
        };
        let expected = tx::transaction_id(&transaction);
        if signature != expected.to_string() {
            return Err(ChainError::decode(
                "sendTransaction answer",
                format!("signature {signature} is not the transaction's {expected}"),
            ));
        }
        self.confirm(&transaction, expected).await?;
        Ok(expected)
    }

    /// Polls `getSignatureStatuses` until `signature` reaches the configured commitment.
    async fn confirm(
        &self,
        transaction: &Transaction,
        signature: Signature,
    ) -> Result<(), ChainError> {
        let limit = self.config.confirm_timeout;
        let wanted = self.config.commitment;
        let poll = async {
            let mut interval = tokio::time::interval(self.config.poll_interval);
            interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                interval.tick().await;
                let result = match self
                    .call(
                        "getSignatureStatuses",
                        json!([[signature.to_string()], {"searchTransactionHistory": false}]),
                    )
                    .await
                {
                    Ok(result) => result,
                    // The transaction is in flight: a lost poll is retried until the bound.
                    Err(e @ (ChainError::Transport { .. } | ChainError::Timeout { .. })) => {
                        tracing::debug!(%signature, error = %e, "signature status poll failed");
                        continue;
                    }
                    Err(e) => return Err(e),
                };
                let status = result.pointer("/value/0").unwrap_or(&Value::Null);
                if status.is_null() {
                    continue;
                }
                if let Some(err) = status.get("err").filter(|e| !e.is_null()) {
                    return Err(transaction_error(transaction, err, Vec::new()));
                }
                let reached = status
                    .get("confirmationStatus")
                    .and_then(Value::as_str)
                    .and_then(Commitment::parse);
                if reached.is_some_and(|r| r >= wanted) {
                    return Ok(());
                }
            }
        };
        tokio::time::timeout(limit, poll)
            .await
            .map_err(|_| ChainError::Timeout {
                what: format!("transaction {signature} to be {wanted}"),
                after: limit,
            })?
    }
}

/// A JSON-RPC error object.
#[derive(Debug)]
struct RpcErrorObject {
    code: i64,
    message: String,
    data: Value,
}

/// The program logs of a JSON-RPC error's `data` (`data.logs`), if any.
fn logs_of(data: &Value) -> Vec<String> {
    data.get("logs")
        .and_then(Value::as_array)
        .map(|logs| {
            logs.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

/// Maps a transaction error (the node's JSON of `TransactionError`) of `transaction`.
///
/// `{"InstructionError": [i, {"Custom": code}]}` becomes [`ChainError::Program`] named after
/// instruction `i`'s program; anything else [`ChainError::Transaction`].
pub fn transaction_error(transaction: &Transaction, err: &Value, logs: Vec<String>) -> ChainError {
    if let Some([index, inner]) = err
        .get("InstructionError")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
    {
        let code = inner
            .get("Custom")
            .and_then(Value::as_u64)
            .and_then(|c| u32::try_from(c).ok());
        let program = index
            .as_u64()
            .and_then(|i| usize::try_from(i).ok())
            .and_then(|i| tx::program_of(transaction, i));
        if let (Some(code), Some(program)) = (code, program) {
            return ChainError::Program {
                program: ids::program_name(&program),
                code,
                name: program_errors::error_name(&program, code),
                logs,
            };
        }
    }
    ChainError::Transaction {
        reason: err.to_string(),
        logs,
    }
}

fn parse_pubkey(s: &str, what: &str) -> Result<Pubkey, ChainError> {
    decode_32(s, what).map(Pubkey::new_from_array)
}

fn decode_32(s: &str, what: &str) -> Result<[u8; 32], ChainError> {
    let mut out = [0u8; 32];
    let n = bs58::decode(s)
        .onto(&mut out)
        .map_err(|e| ChainError::decode(what, e))?;
    if n != 32 {
        return Err(ChainError::decode(what, format!("{n} bytes, not 32")));
    }
    Ok(out)
}

/// Decodes a JSON account (`{"owner", "lamports", "data": [<base64>, "base64"]}`); `null` is
/// `None`.
fn raw_account(value: &Value, address: &str) -> Result<Option<RawAccount>, ChainError> {
    if value.is_null() {
        return Ok(None);
    }
    let what = || format!("account {address}");
    let owner = value
        .get("owner")
        .and_then(Value::as_str)
        .ok_or_else(|| ChainError::decode(what(), "no owner"))?;
    let owner = parse_pubkey(owner, &what())?;
    let lamports = value.get("lamports").and_then(Value::as_u64).unwrap_or(0);
    let data = match value.get("data") {
        Some(Value::Array(parts)) if parts.get(1).and_then(Value::as_str) == Some("base64") => {
            parts.first().and_then(Value::as_str).unwrap_or("")
        }
        _ => {
            return Err(ChainError::decode(
                what(),
                "data is not [<base64>, \"base64\"]",
            ));
        }
    };
    let data = base64::engine::general_purpose::STANDARD
        .decode(data)
        .map_err(|e| ChainError::decode(what(), e))?;
    Ok(Some(RawAccount {
        owner,
        lamports,
        data,
    }))
}

/// Decodes `account` as `T`, checking its owner.
fn decode_owned<T: AnchorAccount>(address: &Pubkey, account: &RawAccount) -> Result<T, ChainError> {
    if account.owner != T::owner() {
        return Err(ChainError::decode(
            format!("{} {address}", T::NAME),
            format!("owned by {}, not {}", account.owner, T::owner()),
        ));
    }
    T::decode(&account.data)
}

impl Chain for RpcChain {
    async fn slot(&self) -> Result<u64, ChainError> {
        self.call("getSlot", json!([self.commitment_param()]))
            .await?
            .as_u64()
            .ok_or_else(|| ChainError::decode("getSlot answer", "not a slot number"))
    }

    async fn slot_hashes(&self) -> Result<Vec<(u64, [u8; 32])>, ChainError> {
        let account = self
            .account(&ids::SLOT_HASHES_SYSVAR)
            .await?
            .ok_or_else(|| ChainError::NotFound("the SlotHashes sysvar".into()))?;
        Ok(SlotHashes::decode(&account.data)?.0)
    }

    async fn registry_config(&self) -> Result<RegistryConfig, ChainError> {
        self.anchor_account(&pda::registry_config().0)
            .await?
            .ok_or_else(|| ChainError::NotFound("the registry config".into()))
    }

    async fn operators(&self) -> Result<Vec<Operator>, ChainError> {
        let accounts = self
            .program_accounts(&ids::REGISTRY, &Operator::discriminator())
            .await?;
        let mut out = Vec::with_capacity(accounts.len());
        for (address, account) in accounts {
            match decode_owned::<Operator>(&address, &account) {
                Ok(op) => out.push(op),
                Err(e) => tracing::warn!(%address, error = %e, "skipping an operator account"),
            }
        }
        Ok(out)
    }

    async fn operator(&self, wallet: &Pubkey) -> Result<Option<Operator>, ChainError> {
        self.anchor_account(&pda::operator(wallet).0).await
    }

    async fn stake(&self, wallet: &Pubkey) -> Result<Option<Stake>, ChainError> {
        self.anchor_account(&pda::stake(wallet).0).await
    }

    async fn score_config(&self) -> Result<MinerScoreConfig, ChainError> {
        self.anchor_account(&pda::score_config().0)
            .await?
            .ok_or_else(|| ChainError::NotFound("the miner score config".into()))
    }

    async fn epoch_totals(&self, epoch: u64) -> Result<Option<EpochTotals>, ChainError> {
        self.anchor_account(&pda::epoch_totals(epoch).0).await
    }

    async fn miner_epoch(
        &self,
        epoch: u64,
        miner: &Pubkey,
    ) -> Result<Option<MinerEpochStats>, ChainError> {
        self.anchor_account(&pda::miner_epoch(epoch, miner).0).await
    }

    async fn claim_receipt(
        &self,
        epoch: u64,
        miner: &Pubkey,
    ) -> Result<Option<MinerClaimReceipt>, ChainError> {
        self.anchor_account(&pda::claim_receipt(epoch, miner).0)
            .await
    }

    async fn report(
        &self,
        watcher: &SigningKey,
        epoch: u64,
        miner: &Pubkey,
        stats: &ReportedStats,
    ) -> Result<Signature, ChainError> {
        let ix = instructions::report_miner_epoch_stats(&pubkey_of(watcher), epoch, miner, stats);
        self.send(&[watcher], &[ix]).await
    }

    async fn retract(
        &self,
        watcher: &SigningKey,
        epoch: u64,
        miner: &Pubkey,
    ) -> Result<Signature, ChainError> {
        let ix = instructions::retract_miner_epoch_stats(&pubkey_of(watcher), epoch, miner);
        self.send(&[watcher], &[ix]).await
    }

    async fn finalize(&self, payer: &SigningKey, epoch: u64) -> Result<Signature, ChainError> {
        let config = self.score_config().await?;
        let ix = instructions::finalize_epoch(&pubkey_of(payer), epoch, &config.reward_vault);
        self.send(&[payer], &[ix]).await
    }

    async fn claim(
        &self,
        miner: &SigningKey,
        epoch: u64,
        destination: &Pubkey,
    ) -> Result<Signature, ChainError> {
        let config = self.score_config().await?;
        let ix = instructions::claim_miner_reward(
            &pubkey_of(miner),
            epoch,
            destination,
            &config.reward_vault,
        );
        self.send(&[miner], &[ix]).await
    }

    async fn token_balance(&self, account: &Pubkey) -> Result<u64, ChainError> {
        let result = match self
            .call(
                "getTokenAccountBalance",
                json!([account.to_string(), self.commitment_param()]),
            )
            .await
        {
            Ok(result) => result,
            // Nodes answer -32602 "could not find account" / "Invalid param".
            Err(ChainError::Rpc { code: -32602, .. }) => {
                return Err(ChainError::NotFound(format!("token account {account}")));
            }
            Err(e) => return Err(e),
        };
        result
            .pointer("/value/amount")
            .and_then(Value::as_str)
            .and_then(|a| a.parse::<u64>().ok())
            .ok_or_else(|| ChainError::decode("getTokenAccountBalance answer", "no amount"))
    }
}
