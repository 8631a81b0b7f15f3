//! Audits of a miner's batches through its audit API (`GET /v1/batches/{id}/audit`,
//! `/v1/tokens/{ticket}`, `/v1/batches/{id}/ticket/{ticket}`), signed with the watcher's key
//! as auditor ([`tolldns_service::http::AuditClient`]).
//!
//! [`Auditor::audit_batch`] asks for the `k` leaves the seed draws (with their proofs and
//! right neighbours), fetches the token of every ticketed sampled leaf and verifies it under
//! the accepted issuer keys, then checks receipt and answers with
//! [`tolldns_receipts::Verifier`]. [`Auditor::lookup_ticket`] asks for the leaves of one
//! ticket (the watcher's own probes) and checks them with
//! [`tolldns_receipts::verify_ticket_leaves`].
//!
//! A miner that cannot answer (connection refused, timeout, `404`, `410`, a refusal, an
//! answer that does not parse) fails the audit with a reason; only the watcher's own errors
//! (bad input) are [`AuditError`]s. Every outcome carries its evidence: what was asked and
//! what came back, as served, so that anyone can re-check it ([`check_evidence`]).
//!
//! Failure reasons are [`VerifyError::name`]s (`invalid_proof`, `ticket_not_redeemed`,
//! `token_invalid`, `signature`, …) or one of the transport reasons: `miner_unreachable`,
//! `batch_not_found` (404), `leaves_gone` (410), `auditor_refused` (401/403), `miner_busy`
//! (429/503 after retries), `miner_error` (another status), `malformed_answer`,
//! `batch_id_mismatch` (the receipt is not the batch asked for), `ticket_leaves_missing`
//! (fewer leaves under a probe ticket than probes sent).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::{URL_SAFE, URL_SAFE_NO_PAD};
use ed25519_dalek::SigningKey;
use http::StatusCode;
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};
use tolldns_core::{BackendId, OperatorId, Role, WindowId, WindowLen};
use tolldns_receipts::{
    AuditAnswer, AuditSample, Deployment, Leaf, LeafProof, MerkleProof, OperatorRegistry,
    OperatorStatus, PolicyRegistry, Receipt, ReceiptLedger, TicketCheck, TicketStatus, Verifier,
    VerifyError, verify_ticket_leaves,
};
use tolldns_service::http::{AuditClient, Origin, Reply};
use tolldns_tickets::TokenVerifier;

/// The largest token or receipt answer read.
const MAX_SMALL_ANSWER: usize = 1 << 20;
/// The largest audit or ticket answer read.
const MAX_ANSWER: usize = 64 << 20;
/// The longest body quoted in evidence when it is not JSON.
const MAX_QUOTED: usize = 4096;

/// The watcher's own errors: the audit could not be attempted. A miner's failure is never
/// one of these (it is an [`AuditOutcome`] with `passed: false`).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuditError {
    /// The audit API origin is not `http://host:port` or `https://host:port`.
    #[error("audit API origin: {0}")]
    Origin(#[from] tolldns_service::http::OriginError),
    /// An `https://` audit API and no TLS roots to check its certificate.
    #[error("{0} is https:// but the watcher has no TLS roots configured")]
    NoTlsRoots(String),
    /// Evidence given to [`check_evidence`] lacks a field or has a malformed one.
    #[error("evidence: {0}")]
    Evidence(String),
}

/// The result of one batch audit.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditOutcome {
    /// Whether the receipt and every answer verified.
    pub passed: bool,
    /// Why not: a [`VerifyError::name`] or a transport reason (module docs).
    pub reason: Option<String>,
    /// Leaves sampled.
    pub sampled: u64,
    /// Sampled leaves carrying a ticket (each token fetched and verified when passed).
    pub ticketed: u64,
    /// What was asked and what came back: `{"api", "batch", "seed", "k", "arrival_ms",
    /// "receipt", "requests": [{"path", "status", "bytes", "body" (unless 200) | "error"}],
    /// "proofs", "tokens": [{"ticket_id", "token", "status"}], "error"}` (`proofs` the audit
    /// answer as served).
    pub evidence: Value,
}

/// The result of a ticket lookup.
#[derive(Debug, Clone, PartialEq)]
pub struct TicketLookup {
    /// Leaves found under the ticket (0 when the lookup failed).
    pub found: u64,
    /// Whether the answer verified and held between `min_leaves` and `max_leaves` leaves.
    pub passed: bool,
    /// Why not (module docs).
    pub reason: Option<String>,
    /// `{"api", "batch", "ticket", "min_leaves", "max_leaves", "requests", "answer" (as
    /// served), "indices", "error"}`.
    pub evidence: Value,
}

/// Tokens fetched from a miner, verified under the accepted issuer keys: the
/// [`TicketCheck`] of an audit.
#[derive(Debug, Clone, Default)]
pub struct FetchedTokens {
    status: HashMap<[u8; 16], TicketStatus>,
}

impl FetchedTokens {
    /// Records `token` (or its absence, `None`) for `ticket`: valid when it verifies under
    /// `verifier` at `at_unix_s` and hashes to `ticket`.
    pub fn insert(
        &mut self,
        verifier: &TokenVerifier,
        ticket: [u8; 16],
        token: Option<&[u8]>,
        at_unix_s: u64,
    ) -> TicketStatus {
        let status = match token {
            None => TicketStatus::Unknown,
            Some(bytes) => match verifier.verify(bytes, at_unix_s) {
                Ok(v) if v.ticket_id == ticket => TicketStatus::Valid,
                _ => TicketStatus::Invalid,
            },
        };
        self.status.insert(ticket, status);
        status
    }
}

impl TicketCheck for FetchedTokens {
    fn ticket_status(&self, ticket: &[u8; 16]) -> TicketStatus {
        self.status
            .get(ticket)
            .copied()
            .unwrap_or(TicketStatus::Unknown)
    }
}

/// The registries [`Verifier::check_audit`] does not read.
#[derive(Debug)]
struct Unused;

impl OperatorRegistry for Unused {
    fn operator_status(&self, _: &OperatorId, _: Role, _: WindowId) -> OperatorStatus {
        OperatorStatus::Unregistered
    }
    fn backend_registered(&self, _: &OperatorId, _: &BackendId) -> bool {
        false
    }
}
impl PolicyRegistry for Unused {
    fn is_valid_policy(&self, _: u32, _: WindowId, _: WindowLen) -> bool {
        false
    }
}
impl ReceiptLedger for Unused {
    fn contains(&self, _: &OperatorId, _: &BackendId, _: WindowId) -> bool {
        true
    }
    fn overlaps(&self, _: &OperatorId, _: u64, _: u64) -> bool {
        true
    }
}

/// A miner's failure to answer: (reason, message).
type MinerFailure = (&'static str, String);

/// The watcher as auditor of miners' audit APIs.
pub struct Auditor {
    key: SigningKey,
    tls: Option<Arc<rustls::ClientConfig>>,
    timeout: Duration,
    tokens: TokenVerifier,
}

impl std::fmt::Debug for Auditor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Auditor")
            .field(
                "key",
                &bs58::encode(self.key.verifying_key().as_bytes()).into_string(),
            )
            .field("tls", &self.tls.is_some())
            .field("timeout", &self.timeout)
            .field("issuer_keys", &self.tokens.keys().len())
            .finish()
    }
}

/// The receipt's batch id: SHA-256 of its canonical bytes.
pub fn batch_id(receipt: &Receipt) -> [u8; 32] {
    Sha256::digest(receipt.to_bytes()).into()
}

fn receipt_json(receipt: &Receipt) -> Value {
    serde_json::from_str(&receipt.to_json()).unwrap_or(Value::Null)
}

/// A reply body as evidence: its JSON, or its text (truncated).
fn body_value(reply: &Reply) -> Value {
    serde_json::from_slice(&reply.body).unwrap_or_else(|_| {
        let text = tolldns_service::http::printable(&String::from_utf8_lossy(&reply.body));
        Value::String(text.chars().take(MAX_QUOTED).collect())
    })
}

/// The failure reason of a non-200 status.
fn status_reason(status: StatusCode) -> &'static str {
    match status {
        StatusCode::NOT_FOUND => "batch_not_found",
        StatusCode::GONE => "leaves_gone",
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => "auditor_refused",
        StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE => "miner_busy",
        _ => "miner_error",
    }
}

fn hex_array<const N: usize>(v: &Value, what: &str) -> Result<[u8; N], String> {
    let text = v
        .as_str()
        .ok_or_else(|| format!("{what}: expected a hex string"))?;
    let mut out = [0u8; N];
    hex::decode_to_slice(text, &mut out)
        .map_err(|_| format!("{what}: expected {} hex digits", N * 2))?;
    Ok(out)
}

/// A base64url token (padded or not).
fn decode_token(text: &str) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD
        .decode(text)
        .or_else(|_| URL_SAFE.decode(text))
        .ok()
}

/// One proof of the audit API's JSON: `{"leaf_hex", "leaf_index", "tree_size", "path"}`.
fn leaf_proof(v: &Value, version: u8, what: &str) -> Result<LeafProof, String> {
    let leaf_hex = v["leaf_hex"]
        .as_str()
        .ok_or_else(|| format!("{what}.leaf_hex: expected a hex string"))?;
    let bytes = hex::decode(leaf_hex).map_err(|_| format!("{what}.leaf_hex: not hex"))?;
    let leaf = if version == 1 {
        Leaf::from_bytes_v1(&bytes)
    } else {
        Leaf::from_bytes(&bytes)
    }
    .map_err(|e| format!("{what}.leaf_hex: {e}"))?;
    let uint = |key: &str| {
        v[key]
            .as_u64()
            .ok_or_else(|| format!("{what}.{key}: expected an unsigned integer"))
    };
    let path = v["path"]
        .as_array()
        .ok_or_else(|| format!("{what}.path: expected an array"))?
        .iter()
        .enumerate()
        .map(|(i, h)| hex_array::<32>(h, &format!("{what}.path[{i}]")))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(LeafProof {
        leaf,
        proof: MerkleProof {
            leaf_index: uint("leaf_index")?,
            tree_size: uint("tree_size")?,
            path,
        },
    })
}

/// The answers of an audit answer `{"version", "proofs": [{…, "next": {…}|null}]}`.
pub fn parse_audit_answer(v: &Value, version: u8) -> Result<Vec<AuditAnswer>, String> {
    let proofs = v["proofs"].as_array().ok_or("proofs: expected an array")?;
    proofs
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let what = format!("proofs[{i}]");
            let leaf = leaf_proof(p, version, &what)?;
            let next = match &p["next"] {
                Value::Null => None,
                n => Some(leaf_proof(n, version, &format!("{what}.next"))?),
            };
            Ok(AuditAnswer { leaf, next })
        })
        .collect()
}

/// The leaves of a ticket lookup answer `{"ticket", "proofs": […], "token"}`.
fn parse_ticket_answer(v: &Value, version: u8) -> Result<Vec<LeafProof>, String> {
    v["proofs"]
        .as_array()
        .ok_or("proofs: expected an array")?
        .iter()
        .enumerate()
        .map(|(i, p)| leaf_proof(p, version, &format!("proofs[{i}]")))
        .collect()
}

/// The unix second at which a receipt's tokens are checked: when its window was served.
const fn token_time(receipt: &Receipt) -> u64 {
    receipt.body.timestamp_ms / 1000
}

/// Verifies an audit's evidence (as [`AuditOutcome::evidence`] stores it) again: the
/// receipt's signature, that it is the batch, the answer as served against the sample of the
/// evidence's seed and k, and the tokens as served under `tokens` (issuer keys and
/// challenge). A third party re-deriving an audit runs this; changing the seed or the receipt
/// in the evidence makes it fail.
///
/// # Errors
///
/// [`AuditError::Evidence`] when a field is missing or malformed (a transport failure's
/// evidence has no answer to check).
pub fn check_evidence(
    evidence: &Value,
    deployment: &Deployment,
    tokens: &TokenVerifier,
) -> Result<AuditOutcome, AuditError> {
    let bad = |m: String| AuditError::Evidence(m);
    let receipt_text =
        serde_json::to_string(&evidence["receipt"]).map_err(|e| bad(e.to_string()))?;
    let receipt = Receipt::from_json(&receipt_text).map_err(|e| bad(format!("receipt: {e}")))?;
    let id: [u8; 32] = hex_array(&evidence["batch"], "batch").map_err(bad)?;
    let seed: [u8; 32] = hex_array(&evidence["seed"], "seed").map_err(bad)?;
    let k = evidence["k"]
        .as_u64()
        .ok_or_else(|| bad("k: expected an unsigned integer".into()))?;
    let answer = &evidence["proofs"];
    if answer.is_null() {
        return Err(bad("no audit answer in the evidence".into()));
    }
    let mut fetched = FetchedTokens::default();
    for t in evidence["tokens"].as_array().into_iter().flatten() {
        let ticket: [u8; 16] = hex_array(&t["ticket_id"], "tokens[].ticket_id").map_err(bad)?;
        let token = t["token"].as_str().map(decode_token);
        let token = match token {
            Some(None) => return Err(bad("tokens[].token: not base64url".into())),
            Some(Some(b)) => Some(b),
            None => None,
        };
        fetched.insert(tokens, ticket, token.as_deref(), token_time(&receipt));
    }
    let mut outcome = AuditOutcome {
        passed: false,
        reason: None,
        sampled: 0,
        ticketed: 0,
        evidence: evidence.clone(),
    };
    verify_answer(
        &receipt,
        &id,
        &seed,
        k,
        answer,
        deployment,
        &fetched,
        &mut outcome,
    );
    Ok(outcome)
}

/// The receipt's signature, its id, then the audit rules on `answer`; sets `outcome`.
#[allow(clippy::too_many_arguments)]
fn verify_answer(
    receipt: &Receipt,
    id: &[u8; 32],
    seed: &[u8; 32],
    k: u64,
    answer: &Value,
    deployment: &Deployment,
    tokens: &FetchedTokens,
    outcome: &mut AuditOutcome,
) {
    let fail = |outcome: &mut AuditOutcome, reason: &str, message: String| {
        outcome.passed = false;
        outcome.reason = Some(reason.to_owned());
        outcome.evidence["error"] = Value::String(message);
    };
    if let Err(e) = receipt.verify_signature() {
        let e = VerifyError::Signature(e);
        return fail(outcome, e.name(), e.to_string());
    }
    if batch_id(receipt) != *id {
        return fail(
            outcome,
            "batch_id_mismatch",
            format!(
                "the receipt's id is {}, not the batch {}",
                hex::encode(batch_id(receipt)),
                hex::encode(id)
            ),
        );
    }
    let b = &receipt.body;
    let answers = match parse_audit_answer(answer, b.version()) {
        Ok(a) => a,
        Err(m) => return fail(outcome, "malformed_answer", m),
    };
    let sample = AuditSample::new(seed, &b.integrity.merkle_root, b.integrity.leaf_count, k);
    let verifier = Verifier::new(*deployment, &Unused, &Unused, &Unused).with_tickets(tokens);
    match verifier.check_audit(receipt, &sample, &answers) {
        Ok(report) => {
            outcome.passed = true;
            outcome.reason = None;
            outcome.sampled = report.sampled;
            outcome.ticketed = report.ticketed;
        }
        Err(e) => {
            outcome.sampled = u64::try_from(answers.len()).unwrap_or(u64::MAX);
            outcome.ticketed = answers
                .iter()
                .filter(|a| a.leaf.leaf.is_ticketed())
                .count()
                .try_into()
                .unwrap_or(u64::MAX);
            fail(outcome, e.name(), e.to_string());
        }
    }
}

impl Auditor {
    /// An auditor signing with `key` (the watcher key, listed in miners' `api.auditor_keys`),
    /// trusting `tls` roots for `https://` APIs, bounding each HTTP exchange by `timeout`,
    /// and verifying fetched tokens with `tokens` (the accepted issuer keys and the
    /// deployment's token challenge).
    pub fn new(
        key: SigningKey,
        tls: Option<Arc<rustls::ClientConfig>>,
        timeout: Duration,
        tokens: TokenVerifier,
    ) -> Self {
        Self {
            key,
            tls,
            timeout,
            tokens,
        }
    }

    /// The token verifier (issuer keys and challenge).
    pub const fn tokens(&self) -> &TokenVerifier {
        &self.tokens
    }

    fn client(&self, origin: &str) -> Result<AuditClient, AuditError> {
        let origin = Origin::parse(origin)?;
        if origin.https && self.tls.is_none() {
            return Err(AuditError::NoTlsRoots(origin.to_string()));
        }
        Ok(AuditClient::new(
            origin,
            self.tls.clone(),
            self.timeout,
            self.key.clone(),
        ))
    }

    /// One signed GET; the exchange is appended to `requests`. `Err` is the miner's failure.
    async fn get(
        client: &AuditClient,
        path: &str,
        operator: &[u8; 32],
        max: usize,
        ok_404: bool,
        requests: &mut Vec<Value>,
    ) -> Result<Reply, MinerFailure> {
        match client.get(path, Some(operator), max).await {
            Err(e) => {
                let message = format!("{e:#}");
                requests.push(json!({ "path": path, "error": message }));
                Err(("miner_unreachable", message))
            }
            Ok((reply, _)) => {
                // A 200 body is kept once, where it is used (`proofs`, `tokens`, `answer`).
                let mut exchange = json!({
                    "path": path,
                    "status": reply.status.as_u16(),
                    "bytes": reply.body.len(),
                });
                if reply.status != StatusCode::OK {
                    exchange["body"] = body_value(&reply);
                }
                requests.push(exchange);
                if reply.status == StatusCode::OK
                    || (ok_404 && reply.status == StatusCode::NOT_FOUND)
                {
                    Ok(reply)
                } else {
                    Err((
                        status_reason(reply.status),
                        format!("the miner answered GET {path} with {}", reply.describe()),
                    ))
                }
            }
        }
    }

    /// Audits batch `batch_id` (whose receipt the watcher received at `arrival_ms`) at the
    /// API `origin`: first the receipt rules with `verifier`'s registries at `arrival_ms`
    /// ([`Verifier::verify`]; its ledger must not count this receipt itself), then `k`
    /// leaves drawn from `seed` (a slot hash later than the receipt's arrival) with their
    /// neighbours, the tokens of the ticketed ones (`GET /v1/tokens/{ticket}`, verified
    /// under the issuer keys) and the audit rules with the verifier's deployment.
    ///
    /// # Errors
    ///
    /// Only the watcher's own: a bad origin, or `https://` without TLS roots.
    #[allow(clippy::too_many_arguments)]
    pub async fn audit_batch<R, P, L>(
        &self,
        origin: &str,
        receipt: &Receipt,
        batch_id: &[u8; 32],
        arrival_ms: u64,
        seed: [u8; 32],
        k: u64,
        verifier: &Verifier<'_, R, P, L>,
    ) -> Result<AuditOutcome, AuditError>
    where
        R: OperatorRegistry,
        P: PolicyRegistry,
        L: ReceiptLedger,
    {
        let client = self.client(origin)?;
        let mut outcome = AuditOutcome {
            passed: false,
            reason: None,
            sampled: 0,
            ticketed: 0,
            evidence: json!({
                "api": client.origin().to_string(),
                "batch": hex::encode(batch_id),
                "seed": hex::encode(seed),
                "k": k,
                "arrival_ms": arrival_ms,
                "receipt": receipt_json(receipt),
                "requests": [],
                "proofs": null,
                "tokens": [],
            }),
        };
        if let Err(e) = verifier.verify(receipt, arrival_ms) {
            outcome.reason = Some(e.name().to_owned());
            outcome.evidence["error"] = Value::String(e.to_string());
            return Ok(outcome);
        }
        let operator = receipt.body.operator_id.as_bytes();
        let mut requests = Vec::new();
        let path = format!(
            "/v1/batches/{}/audit?seed={}&k={k}",
            hex::encode(batch_id),
            hex::encode(seed)
        );
        let fetched = async {
            let reply =
                Self::get(&client, &path, operator, MAX_ANSWER, false, &mut requests).await?;
            let answer: Value = serde_json::from_slice(&reply.body)
                .map_err(|e| ("malformed_answer", format!("GET {path}: {e}")))?;
            let answers = parse_audit_answer(&answer, receipt.body.version())
                .map_err(|m| ("malformed_answer", format!("GET {path}: {m}")))?;
            let mut tickets: Vec<[u8; 16]> = answers
                .iter()
                .map(|a| a.leaf.leaf)
                .filter(Leaf::is_ticketed)
                .map(|l| l.ticket)
                .collect();
            tickets.sort_unstable();
            tickets.dedup();
            let mut tokens = FetchedTokens::default();
            let mut served = Vec::new();
            for ticket in tickets {
                let path = format!("/v1/tokens/{}", hex::encode(ticket));
                let reply = Self::get(
                    &client,
                    &path,
                    operator,
                    MAX_SMALL_ANSWER,
                    true,
                    &mut requests,
                )
                .await?;
                let text = if reply.status == StatusCode::OK {
                    let v: Value = serde_json::from_slice(&reply.body)
                        .map_err(|e| ("malformed_answer", format!("GET {path}: {e}")))?;
                    Some(
                        v["token"]
                            .as_str()
                            .ok_or(("malformed_answer", format!("GET {path}: no token")))?
                            .to_owned(),
                    )
                } else {
                    None
                };
                let bytes = match text.as_deref().map(decode_token) {
                    Some(None) => {
                        return Err(("malformed_answer", format!("GET {path}: not base64url")));
                    }
                    Some(b) => b,
                    None => None,
                };
                let status =
                    tokens.insert(&self.tokens, ticket, bytes.as_deref(), token_time(receipt));
                served.push(json!({
                    "ticket_id": hex::encode(ticket),
                    "token": text,
                    "status": match status {
                        TicketStatus::Valid => "valid",
                        TicketStatus::Unknown => "absent",
                        TicketStatus::Invalid => "invalid",
                    },
                }));
            }
            Ok::<_, MinerFailure>((answer, tokens, served))
        }
        .await;
        outcome.evidence["requests"] = Value::Array(requests);
        match fetched {
            Err((reason, message)) => {
                outcome.reason = Some(reason.to_owned());
                outcome.evidence["error"] = Value::String(message);
            }
            Ok((answer, tokens, served)) => {
                outcome.evidence["proofs"] = answer.clone();
                outcome.evidence["tokens"] = Value::Array(served);
                verify_answer(
                    receipt,
                    batch_id,
                    &seed,
                    k,
                    &answer,
                    verifier.deployment(),
                    &tokens,
                    &mut outcome,
                );
            }
        }
        Ok(outcome)
    }

    /// Looks up the leaves of `ticket` (a probe ticket of the watcher) in batch `batch_id`
    /// at `origin` (`GET /v1/batches/{id}/ticket/{ticket}`) and checks them against
    /// `receipt` ([`verify_ticket_leaves`]): passed when they verify and number between
    /// `min_leaves` (the probes sent under the ticket in the window) and `max_leaves`.
    ///
    /// # Errors
    ///
    /// Only the watcher's own: a bad origin, or `https://` without TLS roots.
    pub async fn lookup_ticket(
        &self,
        origin: &str,
        receipt: &Receipt,
        batch_id: &[u8; 32],
        ticket: [u8; 16],
        min_leaves: u64,
        max_leaves: u64,
    ) -> Result<TicketLookup, AuditError> {
        let client = self.client(origin)?;
        let mut requests = Vec::new();
        let path = format!(
            "/v1/batches/{}/ticket/{}",
            hex::encode(batch_id),
            hex::encode(ticket)
        );
        let mut lookup = TicketLookup {
            found: 0,
            passed: false,
            reason: None,
            evidence: json!({
                "api": client.origin().to_string(),
                "batch": hex::encode(batch_id),
                "ticket": hex::encode(ticket),
                "min_leaves": min_leaves,
                "max_leaves": max_leaves,
            }),
        };
        let mut answer = Value::Null;
        let result = async {
            if self::batch_id(receipt) != *batch_id {
                return Err((
                    "batch_id_mismatch",
                    "the receipt is not the batch".to_owned(),
                ));
            }
            let operator = receipt.body.operator_id.as_bytes();
            let reply =
                Self::get(&client, &path, operator, MAX_ANSWER, false, &mut requests).await?;
            let v: Value = serde_json::from_slice(&reply.body)
                .map_err(|e| ("malformed_answer", format!("GET {path}: {e}")))?;
            answer = v.clone();
            let leaves = parse_ticket_answer(&v, receipt.body.version())
                .map_err(|m| ("malformed_answer", format!("GET {path}: {m}")))?;
            let indices: Vec<u64> = leaves.iter().map(|l| l.proof.leaf_index).collect();
            let n = verify_ticket_leaves(receipt, &ticket, &leaves, max_leaves)
                .map_err(|e| (e.name(), e.to_string()))?;
            Ok((n, indices))
        }
        .await;
        lookup.evidence["requests"] = Value::Array(requests);
        lookup.evidence["answer"] = answer;
        match result {
            Ok((n, indices)) => {
                lookup.found = n;
                lookup.evidence["indices"] = json!(indices);
                if n < min_leaves {
                    lookup.reason = Some("ticket_leaves_missing".to_owned());
                    lookup.evidence["error"] = Value::String(format!(
                        "{n} leaves carry the ticket, fewer than the {min_leaves} probes sent"
                    ));
                } else {
                    lookup.passed = true;
                }
            }
            Err((reason, message)) => {
                lookup.reason = Some(reason.to_owned());
                lookup.evidence["error"] = Value::String(message);
            }
        }
        Ok(lookup)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn malformed_answers_name_the_field() {
        let e = parse_audit_answer(&json!({"version": 2}), 2).unwrap_err();
        assert_eq!(e, "proofs: expected an array");
        let e = parse_audit_answer(
            &json!({"proofs": [{"leaf_hex": "zz", "leaf_index": 0, "tree_size": 1, "path": []}]}),
            2,
        )
        .unwrap_err();
        assert_eq!(e, "proofs[0].leaf_hex: not hex");
        let leaf = hex::encode([0u8; 71]);
        let e = parse_audit_answer(
            &json!({"proofs": [{"leaf_hex": leaf, "leaf_index": 0, "tree_size": 1, "path": ["00"]}]}),
            2,
        );
        assert!(e.is_err(), "{e:?}");
        assert_eq!(
            parse_audit_answer(&json!({"proofs": []}), 2),
            Ok(Vec::new())
        );
    }

    #[test]
    fn statuses_map_to_reasons() {
        assert_eq!(status_reason(StatusCode::NOT_FOUND), "batch_not_found");
        assert_eq!(status_reason(StatusCode::GONE), "leaves_gone");
        assert_eq!(status_reason(StatusCode::FORBIDDEN), "auditor_refused");
        assert_eq!(status_reason(StatusCode::SERVICE_UNAVAILABLE), "miner_busy");
        assert_eq!(status_reason(StatusCode::BAD_REQUEST), "miner_error");
    }

    #[test]
    fn tickets_without_a_token_are_unknown() {
        let verifier = TokenVerifier::new(Vec::new(), [0; 32]);
        let mut tokens = FetchedTokens::default();
        assert_eq!(tokens.ticket_status(&[1; 16]), TicketStatus::Unknown);
        assert_eq!(
            tokens.insert(&verifier, [2; 16], None, 0),
            TicketStatus::Unknown
        );
        assert_eq!(
            tokens.insert(&verifier, [3; 16], Some(&[0; 400]), 0),
            TicketStatus::Invalid
        );
        assert_eq!(tokens.ticket_status(&[3; 16]), TicketStatus::Invalid);
    }
}
