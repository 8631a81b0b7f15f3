//! The chain sync: credits buyers with the tickets they bought on chain from this issuer.
//!
//! The registry program (`programs/tolldns-registry`, `buy_tickets`) moves the buyer's TOLL to
//! the treasury and adds the tickets to the buyer's `TicketQuota` account **at one issuer**,
//! the PDA `["ticket_quota", buyer, issuer_wallet]` of the program, where `issuer_wallet` is the
//! wallet of a registered operator with the issuer role (`chain.issuer_wallet` names this
//! issuer's). Every `chain.sync_interval_secs` the issuer reads its own quotas with one Solana
//! JSON-RPC call,
//!
//! ```text
//! getProgramAccounts(<registry program>, {"encoding": "base64", "commitment": "finalized",
//!     "filters": [{"dataSize": 105},
//!                 {"memcmp": {"offset": 0, "bytes": "<base58 discriminator>"}},
//!                 {"memcmp": {"offset": 40, "bytes": "<base58 issuer wallet>"}}]})
//! ```
//!
//! over HTTP/1.1 (hyper; rustls with the ring provider for `https://`, trusting the
//! certificate authorities of `chain.ca_file`: the issuer ships no system trust store), and
//! hands each quota's cumulative `tickets_bought` to
//! [`PrepaidLedger::apply_chain_quota`], which credits the part not credited before. A
//! purchase is therefore credited exactly once, whatever the number of syncs, and by exactly
//! one issuer: the quota it went to names that issuer, and every other issuer's sync skips
//! it. A lagging RPC node that reports less credits nothing. Only finalized purchases count,
//! so a rolled-back fork never credits tokens.
//!
//! # The account
//!
//! [`TicketQuota`], Borsh after Anchor's 8-byte discriminator
//! (`SHA-256("account:TicketQuota")[..8]`, [`TICKET_QUOTA_DISCRIMINATOR`]), 105 bytes:
//!
//! | offset | field | type |
//! |---|---|---|
//! | 0 | discriminator | `[u8; 8]` |
//! | 8 | `buyer` | `[u8; 32]` (the wallet that signs purchase headers) |
//! | 40 | `issuer` | `[u8; 32]` (the issuer operator's wallet the tickets were bought from) |
//! | 72 | `tickets_bought` | `u64` LE, cumulative |
//! | 80 | `total_paid` | `u64` LE, cumulative, TOLL base units |
//! | 88 | `purchases` | `u64` LE |
//! | 96 | `last_purchase_slot` | `u64` LE |
//! | 104 | `bump` | `u8` |
//!
//! An account of the answer that is not owned by the configured program, has another size or
//! discriminator, does not decode (base64, JSON shape), names a buyer that is not a usable
//! ed25519 key, names another issuer, or does not sit at its PDA
//! ([`ticket_quota_address`]) is skipped and counted
//! (`tolldns_issuer_chain_accounts_skipped_total`); it never stops the sync. The node is asked
//! to filter on the issuer already; the issuer checks again because the answer is only as good
//! as the node. `test-vectors/ticket-quota.json` is one such account, byte for byte.
//!
//! # Where credits are written
//!
//! The running issuer owns the ledger ([`crate::ledger`]): its sync task
//! ([`run`]) writes through that one handle. `tolldns-issuer chain-sync` does one sync by
//! hand: it reads the accounts itself, then sends one `chain-quota` request per quota through
//! the admin socket of a running issuer ([`crate::admin`]), or opens the ledger when none runs.
//!
//! # Failures
//!
//! A sync that fails (connection, timeout, HTTP status, JSON-RPC error: `rpc_error`; an answer
//! that is not a JSON-RPC result list: `bad_response`; a ledger write: `ledger_error`) is
//! logged at warn and counted in `tolldns_issuer_chain_syncs_total{outcome}`; issuance goes on
//! with the balances already credited and the next sync tries again. Logs name the RPC
//! endpoint by its origin only: the path and query of `rpc_url` often carry an API key.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use bytes::Bytes;
use http_body_util::{BodyExt as _, Full, Limited};
use hyper_util::rt::TokioIo;
use serde::Deserialize;
use tokio::net::TcpStream;
use tokio::sync::watch;

use crate::config::{ChainConfig, ConfigError};
use crate::ledger::{LedgerError, PrepaidLedger};
use crate::metrics::{Metrics, SyncOutcome};

/// Anchor's account discriminator of `TicketQuota`: `SHA-256("account:TicketQuota")[..8]`.
pub const TICKET_QUOTA_DISCRIMINATOR: [u8; 8] = [0xed, 0xdf, 0x58, 0x8c, 0x9e, 0xa7, 0x14, 0x83];
/// Size of a `TicketQuota` account: discriminator, buyer, issuer, four `u64`, bump.
pub const TICKET_QUOTA_LEN: usize = 8 + 32 + 32 + 4 * 8 + 1;
/// Offset of the `issuer` field in a `TicketQuota` account (the issuer `memcmp` filter).
pub const TICKET_QUOTA_ISSUER_OFFSET: usize = 40;
/// The first PDA seed of a quota (`["ticket_quota", buyer, issuer_wallet]`).
pub const TICKET_QUOTA_SEED: &[u8] = b"ticket_quota";
/// Largest `getProgramAccounts` answer read, in bytes (about 200 000 quota accounts).
pub const MAX_RESPONSE_BYTES: usize = 64 << 20;

/// Solana's `find_program_address`: for bump 255 down to 0,
/// `SHA-256(seeds… || [bump] || program_id || "ProgramDerivedAddress")`; the first hash that
/// is not an ed25519 point is the address, returned with its bump (`None` when no bump gives
/// one, which practically never happens).
///
/// `VerifyingKey::from_bytes` fails exactly when curve25519-dalek's
/// `CompressedEdwardsY::decompress` does, which is Solana's `is_on_curve`.
pub fn find_program_address(seeds: &[&[u8]], program_id: &[u8; 32]) -> Option<([u8; 32], u8)> {
    use sha2::Digest as _;
    (0..=255u8).rev().find_map(|bump| {
        let mut h = sha2::Sha256::new();
        for seed in seeds {
            h.update(seed);
        }
        h.update([bump]);
        h.update(program_id);
        h.update(b"ProgramDerivedAddress");
        let address: [u8; 32] = h.finalize().into();
        ed25519_dalek::VerifyingKey::from_bytes(&address)
            .is_err()
            .then_some((address, bump))
    })
}

/// The address and bump of `buyer`'s quota at the issuer `issuer_wallet`: the PDA
/// `["ticket_quota", buyer, issuer_wallet]` of `program_id`.
pub fn ticket_quota_address(
    program_id: &[u8; 32],
    buyer: &[u8; 32],
    issuer_wallet: &[u8; 32],
) -> Option<([u8; 32], u8)> {
    find_program_address(&[TICKET_QUOTA_SEED, buyer, issuer_wallet], program_id)
}

/// A buyer's on-chain ticket quota at one issuer (the registry program's `TicketQuota`
/// account).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TicketQuota {
    /// The buyer's wallet: the key its purchase headers are signed with.
    pub buyer: [u8; 32],
    /// The wallet of the issuer operator the tickets were bought from.
    pub issuer: [u8; 32],
    /// Tickets bought so far (cumulative).
    pub tickets_bought: u64,
    /// TOLL base units paid so far (cumulative).
    pub total_paid: u64,
    /// Number of purchases.
    pub purchases: u64,
    /// Slot of the last purchase.
    pub last_purchase_slot: u64,
    /// Bump of the PDA.
    pub bump: u8,
}

/// Why an account of the answer was skipped. Each is counted in
/// `tolldns_issuer_chain_accounts_skipped_total` and logged at debug.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SkipReason {
    /// The entry is not `{"pubkey", "account": {"owner", "data": [<data>, "base64"]}}` with
    /// base58 32-byte `pubkey` and `owner`.
    #[error("not a keyed account")]
    Shape,
    /// The data is not base64 (or not in base64 encoding).
    #[error("data is not base64")]
    Base64,
    /// The account is owned by another program than the registry.
    #[error("not owned by the registry program")]
    Owner,
    /// The data is not 105 bytes.
    #[error("data is not {TICKET_QUOTA_LEN} bytes")]
    Size,
    /// The data does not start with the `TicketQuota` discriminator.
    #[error("not a TicketQuota account (discriminator)")]
    Discriminator,
    /// The buyer is not a valid, non-weak ed25519 public key: no purchase header could name it.
    #[error("buyer is not an ed25519 public key")]
    Buyer,
    /// The quota names another issuer than `chain.issuer_wallet`: its tickets are that
    /// issuer's to credit.
    #[error("a quota of another issuer")]
    Issuer,
    /// The account is not at the PDA `["ticket_quota", buyer, issuer]` of the registry.
    #[error("not at the quota's address (PDA)")]
    Address,
}

impl SkipReason {
    /// A short stable name (for logs).
    pub const fn name(self) -> &'static str {
        match self {
            Self::Shape => "shape",
            Self::Base64 => "base64",
            Self::Owner => "owner",
            Self::Size => "size",
            Self::Discriminator => "discriminator",
            Self::Buyer => "buyer",
            Self::Issuer => "issuer",
            Self::Address => "address",
        }
    }
}

fn u64_at(data: &[u8], offset: usize) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&data[offset..offset + 8]);
    u64::from_le_bytes(b)
}

impl TicketQuota {
    /// Decodes the account data (discriminator included). The issuer and the address are
    /// checked by [`decode_keyed_account`].
    ///
    /// # Errors
    ///
    /// [`SkipReason::Size`], [`SkipReason::Discriminator`] or [`SkipReason::Buyer`].
    pub fn decode(data: &[u8]) -> Result<Self, SkipReason> {
        if data.len() != TICKET_QUOTA_LEN {
            return Err(SkipReason::Size);
        }
        if data[..8] != TICKET_QUOTA_DISCRIMINATOR {
            return Err(SkipReason::Discriminator);
        }
        let mut buyer = [0u8; 32];
        buyer.copy_from_slice(&data[8..40]);
        if !crate::ledger::is_valid_buyer(&buyer) {
            return Err(SkipReason::Buyer);
        }
        let mut issuer = [0u8; 32];
        issuer.copy_from_slice(&data[40..72]);
        Ok(Self {
            buyer,
            issuer,
            tickets_bought: u64_at(data, 72),
            total_paid: u64_at(data, 80),
            purchases: u64_at(data, 88),
            last_purchase_slot: u64_at(data, 96),
            bump: data[104],
        })
    }

    /// The account data (discriminator included), as the registry program writes it.
    pub fn encode(&self) -> [u8; TICKET_QUOTA_LEN] {
        let mut out = [0u8; TICKET_QUOTA_LEN];
        out[..8].copy_from_slice(&TICKET_QUOTA_DISCRIMINATOR);
        out[8..40].copy_from_slice(&self.buyer);
        out[40..72].copy_from_slice(&self.issuer);
        out[72..80].copy_from_slice(&self.tickets_bought.to_le_bytes());
        out[80..88].copy_from_slice(&self.total_paid.to_le_bytes());
        out[88..96].copy_from_slice(&self.purchases.to_le_bytes());
        out[96..104].copy_from_slice(&self.last_purchase_slot.to_le_bytes());
        out[104] = self.bump;
        out
    }
}

/// What the sync reads: the registry program's quotas at one issuer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuotaSource {
    /// The registry program id.
    pub program: [u8; 32],
    /// This issuer's operator wallet (`chain.issuer_wallet`).
    pub issuer_wallet: [u8; 32],
}

/// One element of the `getProgramAccounts` result.
#[derive(Debug, Deserialize)]
struct KeyedAccount {
    pubkey: String,
    account: AccountJson,
}

#[derive(Debug, Deserialize)]
struct AccountJson {
    owner: String,
    data: (String, String),
}

fn key32(s: &str) -> Option<[u8; 32]> {
    bs58::decode(s)
        .into_vec()
        .ok()
        .and_then(|v| <[u8; 32]>::try_from(v).ok())
}

/// Decodes one element of the `getProgramAccounts` result
/// (`{"pubkey": …, "account": {"owner": …, "data": ["<base64>", "base64"], …}}`) and checks
/// that it is a `TicketQuota` of `source.program`, of the issuer `source.issuer_wallet`, at
/// its PDA `["ticket_quota", buyer, issuer_wallet]`.
///
/// # Errors
///
/// The [`SkipReason`].
pub fn decode_keyed_account(
    entry: &serde_json::Value,
    source: &QuotaSource,
) -> Result<TicketQuota, SkipReason> {
    let keyed = KeyedAccount::deserialize(entry).map_err(|_| SkipReason::Shape)?;
    let address = key32(&keyed.pubkey).ok_or(SkipReason::Shape)?;
    let owner = key32(&keyed.account.owner).ok_or(SkipReason::Shape)?;
    if owner != source.program {
        return Err(SkipReason::Owner);
    }
    let (data, encoding) = &keyed.account.data;
    if encoding != "base64" {
        return Err(SkipReason::Base64);
    }
    let data = base64::engine::general_purpose::STANDARD
        .decode(data)
        .map_err(|_| SkipReason::Base64)?;
    let quota = TicketQuota::decode(&data)?;
    if quota.issuer != source.issuer_wallet {
        return Err(SkipReason::Issuer);
    }
    match ticket_quota_address(&source.program, &quota.buyer, &quota.issuer) {
        Some((pda, _)) if pda == address => Ok(quota),
        _ => Err(SkipReason::Address),
    }
}

/// The JSON-RPC request body of one sync: this issuer's quotas, finalized.
pub fn request_body(source: &QuotaSource) -> String {
    serde_json::json!({
        "jsonrpc": "2.0",
        "id": 1,
        "method": "getProgramAccounts",
        "params": [
            bs58::encode(source.program).into_string(),
            {
                "encoding": "base64",
                "commitment": "finalized",
                "filters": [
                    {"dataSize": TICKET_QUOTA_LEN},
                    {"memcmp": {
                        "offset": 0,
                        "bytes": bs58::encode(TICKET_QUOTA_DISCRIMINATOR).into_string(),
                    }},
                    {"memcmp": {
                        "offset": TICKET_QUOTA_ISSUER_OFFSET,
                        "bytes": bs58::encode(source.issuer_wallet).into_string(),
                    }},
                ],
            },
        ],
    })
    .to_string()
}

/// What one `getProgramAccounts` answer held.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Fetched {
    /// The quotas that decoded.
    pub quotas: Vec<TicketQuota>,
    /// The accounts skipped, with why.
    pub skipped: Vec<SkipReason>,
}

/// Decodes a whole JSON-RPC answer.
///
/// # Errors
///
/// [`FetchError::Rpc`] for a JSON-RPC error object, [`FetchError::BadResponse`] when the body
/// is not a JSON-RPC answer with a list of accounts.
pub fn parse_response(body: &[u8], source: &QuotaSource) -> Result<Fetched, FetchError> {
    let value: serde_json::Value = serde_json::from_slice(body)
        .map_err(|e| FetchError::BadResponse(format!("not JSON: {e}")))?;
    if let Some(error) = value.get("error") {
        let code = error.get("code").and_then(serde_json::Value::as_i64);
        let message = error
            .get("message")
            .and_then(serde_json::Value::as_str)
            .unwrap_or("");
        return Err(FetchError::Rpc(match code {
            Some(code) => format!("JSON-RPC error {code}: {}", printable(message)),
            None => format!("JSON-RPC error: {}", printable(message)),
        }));
    }
    let result = value
        .get("result")
        .ok_or_else(|| FetchError::BadResponse("no `result`".to_owned()))?;
    // `withContext` answers wrap the list in `{"context", "value"}`.
    let list = result
        .as_array()
        .or_else(|| result.get("value").and_then(serde_json::Value::as_array))
        .ok_or_else(|| FetchError::BadResponse("`result` is not a list of accounts".to_owned()))?;
    let mut fetched = Fetched::default();
    for entry in list {
        match decode_keyed_account(entry, source) {
            Ok(q) => fetched.quotas.push(q),
            Err(reason) => fetched.skipped.push(reason),
        }
    }
    Ok(fetched)
}

/// At most 200 characters, control characters replaced: remote text for a log line.
fn printable(s: &str) -> String {
    s.chars()
        .take(200)
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// Why a sync could not read the accounts.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FetchError {
    /// The RPC node could not be reached or refused: connection, TLS, timeout, an HTTP status
    /// other than 2xx, or a JSON-RPC error object (`outcome="rpc_error"`).
    #[error("RPC {0}")]
    Rpc(String),
    /// The answer is not a JSON-RPC result list (`outcome="bad_response"`).
    #[error("bad RPC response: {0}")]
    BadResponse(String),
}

/// `scheme://host:port` of a URL, without user information, path or query: how logs and
/// errors name the RPC endpoint (its path or query may hold an API key).
pub fn redact(url: &str) -> String {
    let origin = crate::config::origin(url);
    match origin.split_once("://") {
        Some((scheme, rest)) => match rest.rsplit_once('@') {
            Some((_, host)) => format!("{scheme}://{host}"),
            None => origin.to_owned(),
        },
        None => "<not a URL>".to_owned(),
    }
}

/// Why a `chain.rpc_url` cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}")]
pub struct BadEndpoint {
    /// The configuration key to fix: `chain.rpc_url` or `chain.ca_file`.
    pub key: &'static str,
    /// What is wrong.
    pub reason: String,
}

impl BadEndpoint {
    /// The configuration error, naming the URL by its origin only.
    pub fn for_url(self, url: &str) -> ConfigError {
        ConfigError::Invalid {
            key: self.key,
            reason: format!("`{}`: {}", redact(url), self.reason),
        }
    }
}

/// A parsed `chain.rpc_url`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RpcEndpoint {
    uri: http::Uri,
    host: String,
    port: u16,
    tls: bool,
}

impl RpcEndpoint {
    /// Parses `url`: `https://` (only with a CA file, `have_ca`) or `http://` to a loopback
    /// host (`localhost`, `127.0.0.0/8`, `::1`).
    ///
    /// # Errors
    ///
    /// [`BadEndpoint`]: the configuration key to fix and what is wrong, in words.
    pub fn parse(url: &str, have_ca: bool) -> Result<Self, BadEndpoint> {
        let bad = |reason: &str| BadEndpoint {
            key: "chain.rpc_url",
            reason: reason.to_owned(),
        };
        let uri: http::Uri = url.parse().map_err(|_| bad("is not a URL"))?;
        let tls = match uri.scheme_str() {
            Some("https") => true,
            Some("http") => false,
            _ => return Err(bad("must start with https:// (or http:// on loopback)")),
        };
        let authority = uri.authority().ok_or_else(|| bad("has no host"))?;
        let host = authority
            .host()
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        if host.is_empty() {
            return Err(bad("has no host"));
        }
        let port = authority.port_u16().unwrap_or(if tls { 443 } else { 80 });
        if tls && !have_ca {
            return Err(BadEndpoint {
                key: "chain.ca_file",
                reason: "an https rpc_url needs chain.ca_file (a PEM file of the certificate \
                         authorities to trust)"
                    .to_owned(),
            });
        }
        if !tls && !is_loopback(&host) {
            return Err(bad(
                "plain http is allowed to a loopback address only: use https:// with chain.ca_file",
            ));
        }
        Ok(Self {
            uri,
            host,
            port,
            tls,
        })
    }

    /// Whether the endpoint speaks TLS.
    pub const fn tls(&self) -> bool {
        self.tls
    }
}

fn is_loopback(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Builds a TLS client configuration (ring, TLS 1.3 and 1.2) trusting the certificates of a
/// PEM file.
///
/// # Errors
///
/// A message naming the file.
pub fn client_tls(ca_file: &std::path::Path) -> Result<Arc<rustls::ClientConfig>, String> {
    tolldns_service::tls::client_config(ca_file, &[b"http/1.1"])
        .map(Arc::new)
        .map_err(|e| e.to_string())
}

/// Reads this issuer's `TicketQuota` accounts from a Solana JSON-RPC node.
#[derive(Debug, Clone)]
pub struct ChainClient {
    endpoint: RpcEndpoint,
    origin: String,
    source: QuotaSource,
    tls: Option<Arc<rustls::ClientConfig>>,
    timeout: Duration,
    interval: Duration,
}

impl ChainClient {
    /// The client of `[chain]`; loads `ca_file`.
    ///
    /// # Errors
    ///
    /// [`ConfigError::Invalid`] naming the key (a bad `rpc_url`, program id or issuer
    /// wallet, an unreadable or empty `ca_file`).
    pub fn new(config: &ChainConfig) -> Result<Self, ConfigError> {
        let source = QuotaSource {
            program: config.registry_program_id()?,
            issuer_wallet: config.issuer_wallet_key()?,
        };
        let endpoint = RpcEndpoint::parse(&config.rpc_url, config.ca_file.is_some())
            .map_err(|e| e.for_url(&config.rpc_url))?;
        let tls = match (&config.ca_file, endpoint.tls) {
            (Some(ca), true) => Some(client_tls(ca).map_err(|reason| ConfigError::Invalid {
                key: "chain.ca_file",
                reason,
            })?),
            _ => None,
        };
        Ok(Self {
            endpoint,
            origin: redact(&config.rpc_url),
            source,
            tls,
            timeout: Duration::from_secs(config.request_timeout_secs.max(1)),
            interval: Duration::from_secs(config.sync_interval_secs.max(1)),
        })
    }

    /// The endpoint's origin (for logs).
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// The time between two syncs.
    pub const fn interval(&self) -> Duration {
        self.interval
    }

    /// The program and issuer wallet whose quotas the client reads.
    pub const fn source(&self) -> &QuotaSource {
        &self.source
    }

    /// One `getProgramAccounts` exchange, decoded (off the async workers: checking the
    /// address of every account hashes and decompresses curve points).
    ///
    /// # Errors
    ///
    /// [`FetchError`].
    pub async fn fetch(&self) -> Result<Fetched, FetchError> {
        let body = tokio::time::timeout(self.timeout, self.exchange())
            .await
            .map_err(|_| FetchError::Rpc(format!("timed out after {:?}", self.timeout)))??;
        let source = self.source;
        tokio::task::spawn_blocking(move || parse_response(&body, &source))
            .await
            .map_err(|e| FetchError::BadResponse(format!("decoding the answer failed: {e}")))?
    }

    async fn exchange(&self) -> Result<Bytes, FetchError> {
        let rpc = |what: &str, e: &dyn std::fmt::Display| FetchError::Rpc(format!("{what}: {e}"));
        let tcp = TcpStream::connect((self.endpoint.host.as_str(), self.endpoint.port))
            .await
            .map_err(|e| rpc("connecting", &e))?;
        let path = self
            .endpoint
            .uri
            .path_and_query()
            .map_or("/", |p| p.as_str());
        let authority = self
            .endpoint
            .uri
            .authority()
            .map_or(self.endpoint.host.as_str(), |a| a.as_str());
        let request = http::Request::post(path)
            .header(http::header::HOST, authority)
            .header(http::header::CONTENT_TYPE, "application/json")
            .header(http::header::ACCEPT, "application/json")
            .header(
                http::header::USER_AGENT,
                concat!("tolldns-issuer/", env!("CARGO_PKG_VERSION")),
            )
            .body(Full::new(Bytes::from(request_body(&self.source))))
            .map_err(|e| rpc("request", &e))?;
        if self.endpoint.tls {
            let config = self
                .tls
                .as_ref()
                .ok_or_else(|| FetchError::Rpc("https without chain.ca_file".to_owned()))?;
            let name = rustls::pki_types::ServerName::try_from(self.endpoint.host.clone())
                .map_err(|e| rpc("TLS server name", &e))?;
            let stream = tokio_rustls::TlsConnector::from(Arc::clone(config))
                .connect(name, tcp)
                .await
                .map_err(|e| rpc("TLS", &e))?;
            send(TokioIo::new(stream), request).await
        } else {
            send(TokioIo::new(tcp), request).await
        }
    }
}

async fn send<T>(io: T, request: http::Request<Full<Bytes>>) -> Result<Bytes, FetchError>
where
    T: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let rpc = |what: &str, e: &dyn std::fmt::Display| FetchError::Rpc(format!("{what}: {e}"));
    let (mut sender, conn) = hyper::client::conn::http1::handshake(io)
        .await
        .map_err(|e| rpc("HTTP", &e))?;
    let driver = tokio::spawn(conn);
    let result = async {
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| rpc("HTTP", &e))?;
        let status = response.status();
        if !status.is_success() {
            return Err(FetchError::Rpc(format!(
                "answered HTTP {}",
                status.as_u16()
            )));
        }
        Limited::new(response.into_body(), MAX_RESPONSE_BYTES)
            .collect()
            .await
            .map(http_body_util::Collected::to_bytes)
            .map_err(|e| rpc("reading the answer", &e))
    }
    .await;
    driver.abort();
    result
}

/// What one sync did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SyncReport {
    /// Quota accounts read (buyers seen).
    pub buyers: usize,
    /// Accounts skipped.
    pub skipped: usize,
    /// Buyers credited by this sync.
    pub buyers_credited: usize,
    /// Tickets credited by this sync.
    pub tickets_credited: u64,
}

/// Why a sync failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SyncError {
    /// Reading the accounts failed.
    #[error(transparent)]
    Fetch(#[from] FetchError),
    /// Writing a credit failed (the credits before it are kept).
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    /// The task writing the credits died (the credits before it are kept).
    #[error("the chain credit task failed")]
    Task,
}

impl SyncError {
    /// The `outcome` label of the failure.
    pub const fn outcome(&self) -> SyncOutcome {
        match self {
            Self::Fetch(FetchError::Rpc(_)) => SyncOutcome::RpcError,
            Self::Fetch(FetchError::BadResponse(_)) => SyncOutcome::BadResponse,
            Self::Ledger(_) | Self::Task => SyncOutcome::LedgerError,
        }
    }
}

/// One sync of the running issuer: reads the quotas and credits them on `ledger`, counting
/// in `metrics`.
///
/// # Errors
///
/// [`SyncError`] (also counted).
pub async fn sync_once(
    client: &ChainClient,
    ledger: &Arc<PrepaidLedger>,
    metrics: &Arc<Metrics>,
) -> Result<SyncReport, SyncError> {
    let result = async {
        let fetched = client.fetch().await?;
        metrics
            .chain_accounts_skipped
            .inc_by(fetched.skipped.len() as u64);
        for reason in &fetched.skipped {
            tracing::debug!(
                reason = reason.name(),
                "chain sync: account skipped: {reason}"
            );
        }
        let report = SyncReport {
            buyers: fetched.quotas.len(),
            skipped: fetched.skipped.len(),
            ..SyncReport::default()
        };
        let ledger = Arc::clone(ledger);
        let metrics = Arc::clone(metrics);
        // Durable redb writes block: off the async workers.
        tokio::task::spawn_blocking(move || {
            let mut report = report;
            for q in &fetched.quotas {
                let credited = ledger.apply_chain_quota(&q.issuer, &q.buyer, q.tickets_bought)?;
                if credited > 0 {
                    metrics.chain_tickets_credited.inc_by(credited);
                    report.buyers_credited += 1;
                    report.tickets_credited += credited;
                    tracing::debug!(
                        buyer = %bs58::encode(q.buyer).into_string(),
                        tickets_bought = q.tickets_bought,
                        credited,
                        "chain sync: buyer credited"
                    );
                }
            }
            Ok::<_, SyncError>(report)
        })
        .await
        .map_err(|_| SyncError::Task)?
    }
    .await;
    metrics.chain_synced(match &result {
        Ok(_) => SyncOutcome::Ok,
        Err(e) => e.outcome(),
    });
    result
}

/// The sync task of the running issuer: a sync at once, then every
/// [`ChainClient::interval`], until `stop` turns true.
pub async fn run(
    client: ChainClient,
    ledger: Arc<PrepaidLedger>,
    metrics: Arc<Metrics>,
    mut stop: watch::Receiver<bool>,
) {
    tracing::info!(
        rpc = client.origin(),
        program = %bs58::encode(client.source.program).into_string(),
        issuer_wallet = %bs58::encode(client.source.issuer_wallet).into_string(),
        interval_secs = client.interval.as_secs(),
        "chain sync started"
    );
    loop {
        let outcome = tokio::select! {
            r = sync_once(&client, &ledger, &metrics) => r,
            _ = stop.changed() => return,
        };
        match outcome {
            Ok(r) if r.tickets_credited > 0 => tracing::info!(
                buyers = r.buyers,
                skipped = r.skipped,
                buyers_credited = r.buyers_credited,
                tickets_credited = r.tickets_credited,
                "chain sync: tickets credited"
            ),
            Ok(r) => tracing::debug!(
                buyers = r.buyers,
                skipped = r.skipped,
                "chain sync: nothing new"
            ),
            Err(e) => tracing::warn!(
                rpc = client.origin(),
                outcome = e.outcome().name(),
                error = %e,
                "chain sync failed; serving with the balances already credited"
            ),
        }
        tokio::select! {
            () = tokio::time::sleep(client.interval) => {}
            _ = stop.changed() => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PROGRAM: [u8; 32] = [0x11; 32];

    fn key(seed: u8) -> [u8; 32] {
        ed25519_dalek::SigningKey::from_bytes(&[seed; 32])
            .verifying_key()
            .to_bytes()
    }

    fn buyer() -> [u8; 32] {
        key(0x42)
    }

    /// This issuer's wallet.
    fn issuer() -> [u8; 32] {
        key(0x43)
    }

    fn source() -> QuotaSource {
        QuotaSource {
            program: PROGRAM,
            issuer_wallet: issuer(),
        }
    }

    /// `buyer`'s quota at `issuer`, with its PDA bump.
    fn quota_at(buyer: [u8; 32], issuer: [u8; 32]) -> TicketQuota {
        TicketQuota {
            buyer,
            issuer,
            tickets_bought: 3,
            total_paid: 3_000,
            purchases: 2,
            last_purchase_slot: 77,
            bump: ticket_quota_address(&PROGRAM, &buyer, &issuer).unwrap().1,
        }
    }

    fn quota() -> TicketQuota {
        quota_at(buyer(), issuer())
    }

    /// The address of a quota: its PDA.
    fn address(q: &TicketQuota) -> [u8; 32] {
        ticket_quota_address(&PROGRAM, &q.buyer, &q.issuer)
            .unwrap()
            .0
    }

    fn entry(address: &[u8; 32], owner: &[u8; 32], data: &[u8]) -> serde_json::Value {
        serde_json::json!({
            "pubkey": bs58::encode(address).into_string(),
            "account": {
                "data": [base64::engine::general_purpose::STANDARD.encode(data), "base64"],
                "executable": false,
                "lamports": 1_621_680u64,
                "owner": bs58::encode(owner).into_string(),
                "rentEpoch": u64::MAX,
                "space": data.len(),
            }
        })
    }

    /// `q` at its PDA, owned by the registry.
    fn good(q: &TicketQuota) -> serde_json::Value {
        entry(&address(q), &PROGRAM, &q.encode())
    }

    #[test]
    fn discriminator_is_anchors() {
        use sha2::Digest as _;
        let h = sha2::Sha256::digest(b"account:TicketQuota");
        assert_eq!(h[..8], TICKET_QUOTA_DISCRIMINATOR);
        assert_eq!(TICKET_QUOTA_LEN, 105);
        assert_eq!(TICKET_QUOTA_ISSUER_OFFSET, 8 + 32);
    }

    #[test]
    fn quota_address_is_a_pda_of_buyer_and_issuer() {
        let (a, bump) = ticket_quota_address(&PROGRAM, &buyer(), &issuer()).unwrap();
        // Off the curve, and the first bump from 255 down that is (the canonical bump, the
        // one Anchor's `init` uses).
        let candidate = |bump: u8| {
            use sha2::Digest as _;
            let mut h = sha2::Sha256::new();
            for seed in [TICKET_QUOTA_SEED, &buyer(), &issuer(), &[bump]] {
                h.update(seed);
            }
            h.update(PROGRAM);
            h.update(b"ProgramDerivedAddress");
            <[u8; 32]>::from(h.finalize())
        };
        assert_eq!(candidate(bump), a);
        assert!(ed25519_dalek::VerifyingKey::from_bytes(&a).is_err());
        for higher in bump.saturating_add(1)..=255 {
            if higher > bump {
                assert!(ed25519_dalek::VerifyingKey::from_bytes(&candidate(higher)).is_ok());
            }
        }
        // One quota per (buyer, issuer): another issuer, another buyer, the seeds swapped or
        // another program give other addresses.
        let others = [
            ticket_quota_address(&PROGRAM, &buyer(), &key(0x44)),
            ticket_quota_address(&PROGRAM, &key(0x44), &issuer()),
            ticket_quota_address(&PROGRAM, &issuer(), &buyer()),
            ticket_quota_address(&[0x22; 32], &buyer(), &issuer()),
            find_program_address(&[TICKET_QUOTA_SEED, &buyer()], &PROGRAM),
        ];
        for other in others {
            assert_ne!(other.unwrap().0, a);
        }
    }

    #[test]
    fn good_account_decodes() {
        let q = quota();
        let data = q.encode();
        assert_eq!(TicketQuota::decode(&data), Ok(q));
        assert_eq!(decode_keyed_account(&good(&q), &source()), Ok(q));
        // The issuer at offset 40 (the memcmp filter), little-endian u64 fields after it.
        assert_eq!(data[8..40], buyer());
        assert_eq!(data[40..72], issuer());
        assert_eq!(data[72..80], 3u64.to_le_bytes());
        assert_eq!(data[80..88], 3_000u64.to_le_bytes());
        assert_eq!(data[88..96], 2u64.to_le_bytes());
        assert_eq!(data[96..104], 77u64.to_le_bytes());
        assert_eq!(data[104], q.bump);
    }

    #[test]
    fn bad_accounts_are_skipped_with_their_reason() {
        let q = quota();
        let at = address(&q);
        let data = q.encode();
        let skip = |v: serde_json::Value| decode_keyed_account(&v, &source()).unwrap_err();
        // Wrong owner.
        assert_eq!(skip(entry(&at, &[0x22; 32], &data)), SkipReason::Owner);
        // Wrong size, both ways (the 73-byte layout without an issuer included).
        assert_eq!(skip(entry(&at, &PROGRAM, &data[..104])), SkipReason::Size);
        assert_eq!(skip(entry(&at, &PROGRAM, &data[..73])), SkipReason::Size);
        let mut long = data.to_vec();
        long.push(0);
        assert_eq!(skip(entry(&at, &PROGRAM, &long)), SkipReason::Size);
        // Wrong discriminator (another account type of the same size).
        let mut other = data;
        other[0] ^= 1;
        assert_eq!(
            skip(entry(&at, &PROGRAM, &other)),
            SkipReason::Discriminator
        );
        // A buyer that is not a curve point, or a weak key.
        let off_curve = (2u8..=255)
            .map(|y| {
                let mut k = [0u8; 32];
                k[0] = y;
                k
            })
            .find(|k| ed25519_dalek::VerifyingKey::from_bytes(k).is_err())
            .unwrap();
        let mut bad_buyer = data;
        bad_buyer[8..40].copy_from_slice(&off_curve);
        assert_eq!(skip(entry(&at, &PROGRAM, &bad_buyer)), SkipReason::Buyer);
        let mut identity = data;
        identity[8..40].fill(0);
        identity[8] = 1;
        assert_eq!(skip(entry(&at, &PROGRAM, &identity)), SkipReason::Buyer);
        // A quota of another issuer, genuine and at its own PDA: that issuer's to credit.
        let theirs = quota_at(buyer(), key(0x44));
        assert_eq!(skip(good(&theirs)), SkipReason::Issuer);
        // This issuer's quota at an address that is not its PDA: the PDA of another issuer,
        // of another buyer, the old `["ticket_quota", buyer]`, or any address.
        let legacy = find_program_address(&[TICKET_QUOTA_SEED, &buyer()], &PROGRAM)
            .unwrap()
            .0;
        for wrong in [
            address(&theirs),
            address(&quota_at(key(0x44), issuer())),
            legacy,
            [9; 32],
        ] {
            assert_eq!(skip(entry(&wrong, &PROGRAM, &data)), SkipReason::Address);
        }
        // The other issuer's data at this issuer's address is still another issuer's.
        assert_eq!(
            skip(entry(&at, &PROGRAM, &theirs.encode())),
            SkipReason::Issuer
        );
        // Base64 garbage, another encoding.
        let mut v = good(&q);
        v["account"]["data"][0] = "%%%not base64%%%".into();
        assert_eq!(skip(v), SkipReason::Base64);
        let mut v = good(&q);
        v["account"]["data"][1] = "base58".into();
        assert_eq!(skip(v), SkipReason::Base64);
        // Not the account shape at all.
        assert_eq!(skip(serde_json::json!(42)), SkipReason::Shape);
        assert_eq!(
            skip(serde_json::json!({"pubkey": "x", "account": {"owner": "y"}})),
            SkipReason::Shape
        );
        let mut v = good(&q);
        v["account"]["owner"] = "0OIl".into();
        assert_eq!(skip(v), SkipReason::Shape);
        for pubkey in [
            serde_json::json!("0OIl"),
            serde_json::json!("3yZe7d"),
            serde_json::json!(7),
        ] {
            let mut v = good(&q);
            v["pubkey"] = pubkey;
            assert_eq!(skip(v), SkipReason::Shape);
        }
        let names: Vec<&str> = [
            SkipReason::Shape,
            SkipReason::Base64,
            SkipReason::Owner,
            SkipReason::Size,
            SkipReason::Discriminator,
            SkipReason::Buyer,
            SkipReason::Issuer,
            SkipReason::Address,
        ]
        .iter()
        .map(|r| r.name())
        .collect();
        assert_eq!(
            names,
            [
                "shape",
                "base64",
                "owner",
                "size",
                "discriminator",
                "buyer",
                "issuer",
                "address"
            ]
        );
    }

    #[test]
    fn responses_are_classified() {
        let good_entry = good(&quota());
        let foreign = entry(&address(&quota()), &[0x22; 32], &quota().encode());
        let theirs = good(&quota_at(buyer(), key(0x44)));
        let body = serde_json::json!({"jsonrpc": "2.0", "id": 1,
            "result": [good_entry, foreign, theirs, 7]});
        let f = parse_response(body.to_string().as_bytes(), &source()).unwrap();
        assert_eq!(f.quotas, vec![quota()]);
        assert_eq!(
            f.skipped,
            vec![SkipReason::Owner, SkipReason::Issuer, SkipReason::Shape],
            "one bad account never fails the sync"
        );
        let ctx = serde_json::json!({"jsonrpc": "2.0", "id": 1,
            "result": {"context": {"slot": 5}, "value": [good_entry]}});
        assert_eq!(
            parse_response(ctx.to_string().as_bytes(), &source())
                .unwrap()
                .quotas
                .len(),
            1
        );
        let empty = br#"{"jsonrpc":"2.0","id":1,"result":[]}"#;
        assert_eq!(
            parse_response(empty, &source()).unwrap(),
            Fetched::default()
        );
        let err = br#"{"jsonrpc":"2.0","id":1,"error":{"code":-32005,"message":"Node is behind\nby 40 slots"}}"#;
        assert_eq!(
            parse_response(err, &source()).unwrap_err(),
            FetchError::Rpc("JSON-RPC error -32005: Node is behind by 40 slots".to_owned())
        );
        for bad in [
            &b"<html>bad gateway</html>"[..],
            br#"{"jsonrpc":"2.0","id":1}"#,
            br#"{"jsonrpc":"2.0","id":1,"result":{"value":3}}"#,
            br#"{"jsonrpc":"2.0","id":1,"result":"accounts"}"#,
        ] {
            assert!(
                matches!(
                    parse_response(bad, &source()),
                    Err(FetchError::BadResponse(_))
                ),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn request_asks_for_this_issuers_finalized_quotas_only() {
        let body: serde_json::Value = serde_json::from_str(&request_body(&source())).unwrap();
        assert_eq!(body["method"], "getProgramAccounts");
        assert_eq!(body["params"][0], bs58::encode(PROGRAM).into_string());
        let opts = &body["params"][1];
        assert_eq!(opts["encoding"], "base64");
        assert_eq!(opts["commitment"], "finalized");
        let filters = opts["filters"].as_array().unwrap();
        assert_eq!(filters.len(), 3);
        assert_eq!(filters[0]["dataSize"], 105);
        assert_eq!(filters[1]["memcmp"]["offset"], 0);
        let bytes = filters[1]["memcmp"]["bytes"].as_str().unwrap();
        assert_eq!(
            bs58::decode(bytes).into_vec().unwrap(),
            TICKET_QUOTA_DISCRIMINATOR
        );
        // The issuer filter: the node returns this issuer's quotas only.
        assert_eq!(filters[2]["memcmp"]["offset"], 40);
        let bytes = filters[2]["memcmp"]["bytes"].as_str().unwrap();
        assert_eq!(bytes, bs58::encode(issuer()).into_string());
        let data = quota().encode();
        assert_eq!(data[40..72], bs58::decode(bytes).into_vec().unwrap());
    }

    #[test]
    fn endpoints_and_redaction() {
        let e = RpcEndpoint::parse("http://127.0.0.1:8899", false).unwrap();
        assert_eq!(
            (e.host.as_str(), e.port, e.tls()),
            ("127.0.0.1", 8899, false)
        );
        let e = RpcEndpoint::parse("http://[::1]/rpc", false).unwrap();
        assert_eq!((e.host.as_str(), e.port), ("::1", 80));
        assert!(RpcEndpoint::parse("http://LOCALHOST:1", false).is_ok());
        let e = RpcEndpoint::parse("https://rpc.example/?api-key=k", true).unwrap();
        assert_eq!(
            (e.host.as_str(), e.port, e.tls()),
            ("rpc.example", 443, true)
        );
        assert_eq!(
            RpcEndpoint::parse("https://rpc.example/", false)
                .unwrap_err()
                .key,
            "chain.ca_file"
        );
        assert_eq!(
            RpcEndpoint::parse("http://rpc.example/", true)
                .unwrap_err()
                .key,
            "chain.rpc_url"
        );
        assert!(RpcEndpoint::parse("http://rpc.example/", true).is_err());
        assert!(RpcEndpoint::parse("http://192.168.1.2:8899/", true).is_err());
        assert!(RpcEndpoint::parse("ws://127.0.0.1/", true).is_err());
        assert!(RpcEndpoint::parse("not a url", true).is_err());
        assert_eq!(
            redact("https://user:pw@rpc.example:8443/v1/s3cret?api-key=k"),
            "https://rpc.example:8443"
        );
        assert_eq!(redact("http://127.0.0.1:8899"), "http://127.0.0.1:8899");
        assert_eq!(redact("nothing"), "<not a URL>");
    }

    /// `https://` with `ca_file`: the answer of an in-process TLS server (a stand-in for an
    /// RPC node) is read through the client configuration built from the file.
    #[tokio::test]
    async fn fetches_over_https_with_the_ca_file() {
        use std::convert::Infallible;
        let dir = std::env::temp_dir().join(format!("tolldns-issuer-chain-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
        let ca = dir.join("ca.pem");
        std::fs::write(&ca, cert.cert.pem()).unwrap();
        let key = rustls::pki_types::PrivateKeyDer::Pkcs8(cert.signing_key.serialize_der().into());
        let server = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert.cert.der().clone()], key)
        .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(server));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let answer = serde_json::json!({"jsonrpc": "2.0", "id": 1,
            "result": [good(&quota())]})
        .to_string();
        tokio::spawn(async move {
            loop {
                let (tcp, _) = listener.accept().await.unwrap();
                let acceptor = acceptor.clone();
                let answer = answer.clone();
                tokio::spawn(async move {
                    let Ok(tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let service = hyper::service::service_fn(
                        move |req: http::Request<hyper::body::Incoming>| {
                            let answer = answer.clone();
                            async move {
                                let body = req.into_body().collect().await.unwrap().to_bytes();
                                let asked: serde_json::Value =
                                    serde_json::from_slice(&body).unwrap();
                                assert_eq!(asked["method"], "getProgramAccounts");
                                assert_eq!(
                                    asked["params"][1]["filters"][2]["memcmp"]["bytes"],
                                    bs58::encode(issuer()).into_string()
                                );
                                Ok::<_, Infallible>(http::Response::new(Full::new(Bytes::from(
                                    answer,
                                ))))
                            }
                        },
                    );
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(tls), service)
                        .await;
                });
            }
        });
        let wallet = bs58::encode(issuer()).into_string();
        let mut config = ChainConfig::new(format!("https://localhost:{port}/?api-key=x"), &wallet);
        config.registry_program = bs58::encode(PROGRAM).into_string();
        config.ca_file = Some(ca.clone());
        let client = ChainClient::new(&config).unwrap();
        assert_eq!(client.origin(), format!("https://localhost:{port}"));
        let fetched = client.fetch().await.unwrap();
        assert_eq!(fetched.quotas, vec![quota()]);

        // A CA that did not sign the server's certificate: an RPC error, not a panic.
        let other = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
        let other_ca = dir.join("other.pem");
        std::fs::write(&other_ca, other.cert.pem()).unwrap();
        config.ca_file = Some(other_ca);
        let e = ChainClient::new(&config)
            .unwrap()
            .fetch()
            .await
            .unwrap_err();
        assert!(
            matches!(&e, FetchError::Rpc(m) if m.starts_with("TLS")),
            "{e}"
        );
        // Nothing listens: an RPC error too.
        let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let closed_port = closed.local_addr().unwrap().port();
        drop(closed);
        let e = ChainClient::new(&ChainConfig::new(
            format!("http://127.0.0.1:{closed_port}"),
            &wallet,
        ))
        .unwrap()
        .fetch()
        .await
        .unwrap_err();
        assert!(
            matches!(&e, FetchError::Rpc(m) if m.starts_with("connecting")),
            "{e}"
        );
        // An empty or missing CA file is a configuration error naming `chain.ca_file`.
        let empty = dir.join("empty.pem");
        std::fs::write(&empty, b"").unwrap();
        config.ca_file = Some(empty);
        let e = ChainClient::new(&config).unwrap_err().to_string();
        assert!(
            e.contains("chain.ca_file") && e.contains("no certificate"),
            "{e}"
        );
        config.ca_file = Some(dir.join("missing.pem"));
        let e = ChainClient::new(&config).unwrap_err().to_string();
        assert!(e.contains("missing.pem"), "{e}");
        std::fs::remove_dir_all(dir).unwrap();
    }
}
