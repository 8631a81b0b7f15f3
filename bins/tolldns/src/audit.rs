//! `tolldns receipt audit|name-key|ticket`: an auditor's requests to a miner's audit API
//! (`bins/tolldns-miner/src/audit_api.rs`), checked with `tolldns-receipts`.
//!
//! Every auditor endpoint is signed with `tolldns_service::auditor::authorization`:
//! `Authorization: TollDNS-Auditor key=…, ts=…, nonce=…, sig=…`, an ed25519 signature by the
//! auditor key (`--auditor-key`, a `tolldns keygen` file) over the miner's receipt-signing key
//! (the receipt's `operator_id`), the time, a fresh random nonce, the method and the path with
//! its query. A miner refuses stale timestamps and replayed nonces, so every request (and every
//! retry after `429`/`503`) is signed anew.
//!
//! - `receipt audit` GETs `/v1/batches/{id}` (public), checks that the receipt's SHA-256 is
//!   the batch id, GETs `/v1/batches/{id}/audit?seed=…&k=…` and verifies receipt and answers
//!   as `receipt verify --seed` does ([`crate::receipt`]).
//! - `receipt name-key` GETs `/v1/name-key/{epoch}` and opens the HPKE envelope with
//!   `tolldns_service::auditor::open_name_key` (bound to the operator, the epoch and the
//!   request's nonce), then checks the key against the commitment.
//! - `receipt ticket` GETs the receipt and `/v1/batches/{id}/ticket/{ticket}` and checks the
//!   leaves with `tolldns_receipts::verify_ticket_leaves`.

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use clap::Args;
use ed25519_dalek::SigningKey;
use http::StatusCode;
use rand_core::RngCore as _;
use serde::Serialize;
use serde_json::{Value, json};
use tolldns_core::NameKey;
use tolldns_receipts::{
    Receipt, TicketCheck as _, TicketStatus, VerifyError, verify_ticket_leaves,
};
use tolldns_service::http::AuditClient;
use tolldns_service::{auditor, keyfile};

use crate::error::CliError;
use crate::http::{self as http_client, Origin, Reply};
use crate::json::Fields;
use crate::receipt::{
    self, FailureReport, ReceiptFormat, SampleArgs, Tickets, VerifierArgs, VerifyReport,
};

/// Where a miner's audit API is and who asks.
#[derive(Debug, Clone, Args)]
pub struct ApiArgs {
    /// The miner's API origin: `http://HOST:PORT` or `https://HOST:PORT` (no path).
    #[arg(long, value_name = "URL")]
    pub api: String,
    /// The auditor's key file (ed25519, solana-keygen JSON, mode 0600) whose public key is in
    /// the miner's api.auditor_keys.
    #[arg(long, value_name = "FILE")]
    pub auditor_key: PathBuf,
    /// PEM file of the root certificate(s) an `https://` API's chain ends in.
    #[arg(long, value_name = "FILE")]
    pub ca: Option<PathBuf>,
    /// Seconds allowed for each HTTP exchange (connect, request, response).
    #[arg(long, value_name = "SECS", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub timeout: u64,
}

/// Arguments of `tolldns receipt audit`.
#[derive(Debug, Args)]
pub struct ReceiptAuditArgs {
    /// The miner's API.
    #[command(flatten)]
    pub api: ApiArgs,
    /// The batch id: 64 hex characters (SHA-256 of the receipt's canonical bytes).
    #[arg(long, value_name = "ID")]
    pub batch: String,
    /// The audit seed (64 hex characters) [default: 32 random bytes, printed on stderr].
    #[arg(long, value_name = "HEX")]
    pub seed: Option<String>,
    /// The sample size.
    #[command(flatten)]
    pub sample: SampleArgs,
    /// Also fetch the token of every ticketed sampled leaf from the miner (GET
    /// /v1/tokens/{ticket_id}) and verify it under --issuer-key (needs --issuer-key,
    /// --issuer-name and --token-deployment).
    #[arg(long, conflicts_with_all = ["unchecked_tickets", "tokens"])]
    pub fetch_tokens: bool,
    /// Write the evidence (the receipt, the audit answer as served, the seed, k and the
    /// arrival time) to this JSON file before verifying.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// The verifier's settings.
    #[command(flatten)]
    pub verifier: VerifierArgs,
    /// Print the result as JSON (also on verification failure) instead of one line.
    #[arg(long)]
    pub json: bool,
}

/// Arguments of `tolldns receipt name-key`.
#[derive(Debug, Args)]
pub struct ReceiptNameKeyArgs {
    /// The miner's API.
    #[command(flatten)]
    pub api: ApiArgs,
    /// The epoch.
    #[arg(long, value_name = "E")]
    pub epoch: u64,
    /// The miner's receipt-signing public key (base58, a receipt's operator_id): the request
    /// is signed for it and the envelope is bound to it.
    #[arg(long, value_name = "B58")]
    pub operator: String,
    /// Also require this commitment (64 hex characters: a receipt's name_key_commitment).
    #[arg(long, value_name = "HEX")]
    pub commitment: Option<String>,
    /// Print {"epoch", "name_key", "commitment"} as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Arguments of `tolldns receipt ticket`.
#[derive(Debug, Args)]
pub struct ReceiptTicketArgs {
    /// The miner's API.
    #[command(flatten)]
    pub api: ApiArgs,
    /// The batch id: 64 hex characters.
    #[arg(long, value_name = "ID")]
    pub batch: String,
    /// The ticket id (32 hex characters): a toll ticket's, or a watcher probe's nonce.
    #[arg(long, value_name = "HEX")]
    pub ticket: String,
    /// Most leaves one ticket may have (the token's query quota) [default: no bound].
    #[arg(long, value_name = "N")]
    pub max_leaves: Option<u64>,
    /// Fewest leaves expected (the probes sent under the ticket in this window).
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub min_leaves: u64,
    /// The verifier's settings.
    #[command(flatten)]
    pub verifier: VerifierArgs,
    /// Print the result as JSON (also on verification failure) instead of one line.
    #[arg(long)]
    pub json: bool,
}

/// The long help of `tolldns receipt audit`.
pub const AUDIT_HELP: &str = "\
Audits one batch at a miner's audit API (--api, the miner's api.listen origin): GETs the receipt \
(GET /v1/batches/{id}, public) and checks that its SHA-256 is --batch, then GETs the audit answer \
for a seed (GET /v1/batches/{id}/audit?seed=HEX&k=K) signed as an auditor, and verifies receipt \
and answer exactly as `tolldns receipt verify --proofs --seed` does (see its --help for the rules, \
their order, and what is left to the caller).

The request is signed with the auditor key --auditor-key (a `tolldns keygen` file, mode 0600, \
whose public key is in the miner's api.auditor_keys): Authorization: TollDNS-Auditor key=..., \
ts=..., nonce=..., sig=..., an ed25519 signature over the receipt's operator_id, the time, a fresh \
random nonce, the method and the path with its query. A seed must be one the operator could not \
know when it signed (a chain slot hash after the receipt was recorded); without --seed a random \
one is drawn and printed on stderr. k is --sample-size/--k, or computed from --confidence and \
--fake-fraction (0.99 against 10 % fakes: 44) and sent to the miner (at most its \
api.max_audit_k).

The arrival time (--received-ms) defaults to when the receipt was fetched: a watcher auditing a \
receipt it ingested earlier passes the arrival it recorded, or old receipts fail with \
arrived_too_late. Ticketed sampled leaves need their tokens: --fetch-tokens GETs each one's \
token from the miner (GET /v1/tokens/{ticket_id}, signed) and verifies it under --issuer-key \
with the challenge of --issuer-name and --token-deployment; --tokens FILE and \
--unchecked-tickets work as for `receipt verify`.

--out FILE writes the evidence before verifying: {\"api\", \"batch\", \"seed\", \"k\", \
\"received_ms\", \"receipt\": <JSON form>, \"proofs\": <the answer as served>, \"tokens\": [...]}. \
Anyone can re-check it: jq .receipt FILE > r.json; jq .proofs FILE > p.json; tolldns receipt \
verify r.json --proofs p.json --seed SEED --sample-size K --received-ms MS.

Output as `receipt verify`. Exit codes: 0 valid, 1 verification failure or a refusal by the \
miner (its status and reason are printed: 401 bad or stale signature, 403 auditor key not \
authorized, 404 no such batch, 410 leaves no longer kept, 429/503 still busy after retries), 2 \
bad input or a miner that cannot be reached or answers nonsense.";

/// The long help of `tolldns receipt name-key`.
pub const NAME_KEY_HELP: &str = "\
Fetches the name key of --epoch from a miner (GET /v1/name-key/{epoch}, signed with \
--auditor-key for the miner's receipt-signing key --operator, base58). The miner answers the key \
encrypted to the auditor key (HPKE, RFC 9180: DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, \
ChaCha20Poly1305, base mode; the X25519 key is the auditor's ed25519 key in Montgomery form) with \
info = \"TOLLDNS-NAMEKEY-HPKE-V1\\0\" || operator || u64_le(epoch) and aad = the request's nonce: \
{\"epoch\", \"suite\", \"enc\", \"ciphertext\", \"commitment\"}. The envelope is opened, and the key \
must match the commitment SHA256(\"TOLLDNS-NAMEKEY-V1\" || key) the miner sent and, with \
--commitment HEX, the one of a receipt (its name_key_commitment).

Prints the 32-byte name key in hex (it lets its holder test which names leaves are for: keep \
it private), or with --json {\"epoch\", \"operator\", \"name_key\", \"commitment\"}.

Exit codes: 0 the key opened and matches, 1 it does not (envelope_does_not_open, \
commitment_mismatch) or the miner refused (404: no key for the epoch), 2 bad input or a miner \
that cannot be reached or answers nonsense.";

/// The long help of `tolldns receipt ticket`.
pub const TICKET_LOOKUP_HELP: &str = "\
Asks a miner for every leaf of batch --batch that carries ticket --ticket (a toll ticket's id, \
or a watcher probe's nonce): GETs the receipt (GET /v1/batches/{id}) and checks that its SHA-256 \
is the batch id and that it verifies (as `receipt verify` without proofs; --received-ms defaults \
to now), then GET /v1/batches/{id}/ticket/{ticket} (signed with --auditor-key) and checks the \
answer with tolldns_receipts::verify_ticket_leaves: every proof verifies against the receipt's \
root, every leaf carries the ticket and lies in the window, the indices strictly ascend \
(leaves_out_of_order), and there are at most --max-leaves (ticket_over_quota; the token's query \
quota). A watcher that sent N probes under the ticket in the window passes --min-leaves N \
(ticket_leaves_missing when fewer are found).

The miner also returns the token behind the ticket while it keeps it. With --issuer-key (and \
--issuer-name, --token-deployment) it is verified (token_invalid when it does not verify or \
does not hash to the ticket id); otherwise it is reported as not checked.

Prints one line, or JSON with --json: {\"valid\": true, \"batch\", \"ticket\", \"leaves\", \
\"indices\", \"token\": \"valid\"|\"absent\"|\"not_checked\", \"receipt\": {...}} or the failure \
object of `receipt verify`. Exit codes as `receipt audit`.";

/// The largest receipt answer read.
const MAX_RECEIPT_LEN: usize = 1 << 20;
/// The largest audit or ticket answer read.
const MAX_ANSWER_LEN: usize = 64 << 20;
/// A miner's audit API, as one auditor ([`tolldns_service::http::AuditClient`]: signed
/// requests, retries after `429` and `503`).
struct Api {
    origin: Origin,
    auditor: SigningKey,
    client: AuditClient,
}

impl Api {
    fn new(args: &ApiArgs) -> anyhow::Result<Self> {
        let origin = http_client::parse_origin("--api", &args.api)?;
        let tls = match &args.ca {
            Some(_) if !origin.https => {
                return Err(CliError::field("--ca", "only for an https:// API").into());
            }
            Some(ca) => Some(http_client::client_config(ca, &[b"http/1.1"])?),
            None if origin.https => {
                return Err(CliError::field(
                    "--ca",
                    "an https:// API needs --ca FILE (the PEM root its certificate chains to)",
                )
                .into());
            }
            None => None,
        };
        if origin.https {
            http_client::server_name(&origin.host)?;
        }
        let auditor = keyfile::load(&args.auditor_key)?;
        let client = AuditClient::new(
            origin.clone(),
            tls,
            Duration::from_secs(args.timeout),
            auditor.clone(),
        );
        Ok(Self {
            origin,
            auditor,
            client,
        })
    }

    /// GETs `path` (with its query), signed for `operator` when given; retries after `429`
    /// and `503` (a fresh signature each time). Returns the reply and the nonce signed.
    ///
    /// `Ok` only for `200` and, with `allow_404`, `404`; any other status is
    /// [`CliError::Refused`].
    async fn get(
        &self,
        path: &str,
        operator: Option<&[u8; 32]>,
        max: usize,
        allow_404: bool,
    ) -> anyhow::Result<(Reply, [u8; 16])> {
        let (reply, nonce) = self.client.get(path, operator, max).await?;
        if reply.status == StatusCode::OK || (allow_404 && reply.status == StatusCode::NOT_FOUND) {
            return Ok((reply, nonce));
        }
        Err(CliError::Refused(format!(
            "the miner answered GET {path} with {}",
            reply.describe()
        ))
        .into())
    }

    /// GETs and checks the receipt of batch `id`. `Err(Ok(failure))` when the miner served
    /// another receipt than the id names.
    async fn receipt(&self, id: &[u8; 32]) -> anyhow::Result<Result<Receipt, FailureReport>> {
        let path = format!("/v1/batches/{}", hex::encode(id));
        let (reply, _) = self.get(&path, None, MAX_RECEIPT_LEN, false).await?;
        let receipt = receipt::decode_receipt(&reply.body, ReceiptFormat::Json)
            .with_context(|| format!("the miner's answer to GET {path}"))?;
        let actual = tolldns_core::hash::tagged_sha256(&[], &[&receipt.to_bytes()]);
        if actual != *id {
            return Ok(Err(FailureReport::cli(
                "batch_id_mismatch",
                format!(
                    "the miner served a receipt whose id is {}, not the batch asked for",
                    hex::encode(actual)
                ),
            )));
        }
        Ok(Ok(receipt))
    }
}

/// The JSON of a reply body.
fn json_body(reply: &Reply, what: &str) -> anyhow::Result<Value> {
    serde_json::from_slice(&reply.body)
        .map_err(CliError::from)
        .with_context(|| format!("the miner's answer to {what}"))
}

/// The 32 bytes of a hex field of the miner's answer.
fn hex32(f: &mut Fields<'_>, key: &'static str) -> Result<[u8; 32], CliError> {
    let path = f.path_of(key);
    crate::parse_hash(&path, f.string(key)?)
}

/// `tolldns receipt audit`.
///
/// # Errors
///
/// [`CliError::VerificationFailed`] when a rule fails, [`CliError::Refused`] when the miner
/// refuses, bad input and network errors.
pub fn audit(args: &ReceiptAuditArgs, stdout: &mut dyn Write) -> anyhow::Result<()> {
    let id = crate::parse_hash("--batch", args.batch.trim())?;
    let seed = match &args.seed {
        Some(s) => crate::parse_hash("--seed", s.trim())?,
        None => {
            let mut seed = [0u8; 32];
            rand_core::OsRng
                .try_fill_bytes(&mut seed)
                .context("reading OS randomness")?;
            eprintln!(
                "audit seed: {} (random; pass --seed to use a chain slot hash)",
                hex::encode(seed)
            );
            seed
        }
    };
    let mut settings = receipt::settings(&args.verifier, args.fetch_tokens)?;
    let api = Api::new(&args.api)?;
    let runtime = crate::runtime()?;
    runtime.block_on(async {
        let receipt = match api.receipt(&id).await? {
            Ok(r) => r,
            Err(failure) => return receipt::print_outcome(Err(failure), args.json, stdout),
        };
        if args.verifier.received_ms.is_none() {
            settings.received_ms = receipt::now_ms();
        }
        let b = &receipt.body;
        let k = receipt::audit_size(&args.sample, b.integrity.leaf_count)?;
        let path = format!(
            "/v1/batches/{}/audit?seed={}&k={k}",
            hex::encode(id),
            hex::encode(seed)
        );
        let operator = b.operator_id.as_bytes();
        let (reply, _) = api
            .get(&path, Some(operator), MAX_ANSWER_LEN, false)
            .await?;
        let proofs = json_body(&reply, &format!("GET {path}"))?;
        let answers = receipt::parse_proofs_value(&proofs, b.version())
            .with_context(|| format!("the miner's answer to GET {path}"))?;
        let mut fetched = Vec::new();
        if let Tickets::Tokens(check) = &mut settings.tickets
            && args.fetch_tokens
        {
            let mut tickets: Vec<[u8; 16]> = answers
                .iter()
                .map(|a| a.leaf.leaf)
                .filter(tolldns_receipts::Leaf::is_ticketed)
                .map(|l| l.ticket)
                .collect();
            tickets.sort_unstable();
            tickets.dedup();
            for ticket in tickets {
                let path = format!("/v1/tokens/{}", hex::encode(ticket));
                let (reply, _) = api
                    .get(&path, Some(operator), MAX_RECEIPT_LEN, true)
                    .await?;
                if reply.status == StatusCode::NOT_FOUND {
                    continue;
                }
                let v = json_body(&reply, &format!("GET {path}"))?;
                let mut f = Fields::new("", &v)?;
                let text = f.string("token")?;
                let token = crate::tokens::decode_base64url(text).ok_or_else(|| {
                    CliError::field("token", format!("GET {path}: not base64url"))
                })?;
                fetched.push(json!({ "ticket_id": hex::encode(ticket), "token": text }));
                check.insert(ticket, token);
            }
        }
        if let Some(out) = &args.out {
            let receipt_json: Value = serde_json::from_str(&receipt.to_json())?;
            let evidence = json!({
                "api": api.origin.to_string(),
                "batch": hex::encode(id),
                "seed": hex::encode(seed),
                "k": k,
                "received_ms": settings.received_ms,
                "receipt": receipt_json,
                "proofs": proofs,
                "tokens": fetched,
            });
            let mut text = serde_json::to_vec_pretty(&evidence)?;
            text.push(b'\n');
            std::fs::write(out, text)
                .with_context(|| format!("writing the evidence file {}", out.display()))?;
        }
        let outcome = receipt::verify(&receipt, Some(&answers), Some((seed, k)), &settings);
        receipt::print_outcome(outcome, args.json, stdout)
    })
}

/// What `receipt name-key --json` prints.
#[derive(Debug, Serialize)]
struct NameKeyReport {
    epoch: u64,
    operator: String,
    name_key: String,
    commitment: String,
}

/// `tolldns receipt name-key`.
///
/// # Errors
///
/// [`CliError::VerificationFailed`] when the envelope does not open or the key does not match,
/// [`CliError::Refused`] when the miner refuses, bad input and network errors.
pub fn name_key(args: &ReceiptNameKeyArgs, stdout: &mut dyn Write) -> anyhow::Result<()> {
    let operator: [u8; 32] = keyfile::parse_public_key(&args.operator)
        .map_err(|e| CliError::field("--operator", e.to_string()))?
        .to_bytes();
    let expected = args
        .commitment
        .as_deref()
        .map(|c| crate::parse_hash("--commitment", c.trim()))
        .transpose()?;
    let api = Api::new(&args.api)?;
    let runtime = crate::runtime()?;
    let path = format!("/v1/name-key/{}", args.epoch);
    let (reply, nonce) =
        runtime.block_on(api.get(&path, Some(&operator), MAX_RECEIPT_LEN, false))?;
    let what = format!("the miner's answer to GET {path}");
    let v = json_body(&reply, &format!("GET {path}"))?;
    let (enc, ciphertext, commitment) = (|| {
        let mut f = Fields::new("", &v)?;
        let epoch: u64 = f.uint("epoch")?;
        if epoch != args.epoch {
            return Err(CliError::field(
                "epoch",
                format!("{epoch}, not {}", args.epoch),
            ));
        }
        let suite = f.string("suite")?;
        if suite != auditor::NAME_KEY_HPKE_SUITE {
            return Err(CliError::field(
                "suite",
                format!("{suite:?}, not {:?}", auditor::NAME_KEY_HPKE_SUITE),
            ));
        }
        let enc = hex32(&mut f, "enc")?;
        let ciphertext = crate::parse_hex("ciphertext", f.string("ciphertext")?)?;
        let commitment = hex32(&mut f, "commitment")?;
        Ok((enc, ciphertext, commitment))
    })()
    .context(what)?;
    let fail = |rule: &str, message: String| FailureReport::cli(rule, message).into_error();
    let key = auditor::open_name_key(
        &api.auditor,
        &operator,
        args.epoch,
        &nonce,
        &enc,
        &ciphertext,
    )
    .map_err(|e| fail("envelope_does_not_open", e.to_string()))?;
    let key = zeroize::Zeroizing::new(key);
    let actual = NameKey(*key).commitment();
    if actual != commitment {
        return Err(fail(
            "commitment_mismatch",
            format!(
                "the name key's commitment is {}, the miner announced {}",
                hex::encode(actual),
                hex::encode(commitment)
            ),
        ));
    }
    if let Some(expected) = expected
        && expected != actual
    {
        return Err(fail(
            "commitment_mismatch",
            format!(
                "the name key's commitment is {}, not --commitment {}",
                hex::encode(actual),
                hex::encode(expected)
            ),
        ));
    }
    if args.json {
        crate::write_json(
            stdout,
            &NameKeyReport {
                epoch: args.epoch,
                operator: bs58::encode(operator).into_string(),
                name_key: hex::encode(*key),
                commitment: hex::encode(actual),
            },
        )
    } else {
        writeln!(stdout, "{}", hex::encode(*key))?;
        stdout.flush()?;
        Ok(())
    }
}

/// What `receipt ticket --json` prints on success.
#[derive(Debug, Serialize)]
struct TicketReport {
    valid: bool,
    batch: String,
    ticket: String,
    leaves: u64,
    indices: Vec<u64>,
    token: &'static str,
    receipt: VerifyReport,
}

/// `tolldns receipt ticket`.
///
/// # Errors
///
/// [`CliError::VerificationFailed`] when a rule fails, [`CliError::Refused`] when the miner
/// refuses, bad input and network errors.
pub fn ticket(args: &ReceiptTicketArgs, stdout: &mut dyn Write) -> anyhow::Result<()> {
    let id = crate::parse_hash("--batch", args.batch.trim())?;
    let mut ticket = [0u8; 16];
    hex::decode_to_slice(args.ticket.trim(), &mut ticket)
        .map_err(|_| CliError::field("--ticket", "not 32 hex characters"))?;
    let check_token = !args.verifier.issuer_key.is_empty() && args.verifier.tokens.is_none();
    let mut settings = receipt::settings(&args.verifier, check_token)?;
    let api = Api::new(&args.api)?;
    let runtime = crate::runtime()?;
    let fetched = runtime.block_on(async {
        let receipt = match api.receipt(&id).await? {
            Ok(r) => r,
            Err(failure) => return Ok(Err(failure)),
        };
        let path = format!(
            "/v1/batches/{}/ticket/{}",
            hex::encode(id),
            hex::encode(ticket)
        );
        let (reply, _) = api
            .get(
                &path,
                Some(receipt.body.operator_id.as_bytes()),
                MAX_ANSWER_LEN,
                false,
            )
            .await?;
        let v = json_body(&reply, &format!("GET {path}"))?;
        Ok::<_, anyhow::Error>(Ok((receipt, v, path)))
    })?;
    let (receipt, v, path) = match fetched {
        Ok(x) => x,
        Err(failure) => return receipt::print_outcome(Err(failure), args.json, stdout),
    };
    if args.verifier.received_ms.is_none() {
        settings.received_ms = receipt::now_ms();
    }
    let what = format!("the miner's answer to GET {path}");
    let (leaves, token) = (|| {
        let mut f = Fields::new("", &v)?;
        let echoed = f.string("ticket")?;
        if !echoed.eq_ignore_ascii_case(&hex::encode(ticket)) {
            return Err(CliError::field(
                "ticket",
                format!("{echoed:?} is not the ticket asked for"),
            ));
        }
        let entries = f.array("proofs")?;
        let leaves = receipt::parse_leaf_proofs(entries, "proofs", receipt.body.version())?;
        let token = match f.optional("token") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(
                crate::tokens::decode_base64url(s)
                    .ok_or_else(|| CliError::field("token", "not base64url"))?,
            ),
            Some(_) => return Err(CliError::field("token", "expected a string or null")),
        };
        Ok((leaves, token))
    })()
    .context(what)?;
    let report = match receipt::verify(&receipt, None, None, &settings) {
        Ok(r) => r,
        Err(f) => return receipt::print_outcome(Err(f), args.json, stdout),
    };
    let max = args.max_leaves.unwrap_or(u64::MAX);
    let n = match verify_ticket_leaves(&receipt, &ticket, &leaves, max) {
        Ok(n) => n,
        Err(e) => return receipt::print_outcome(Err(FailureReport::of(&e)), args.json, stdout),
    };
    if n < args.min_leaves {
        let f = FailureReport::cli(
            "ticket_leaves_missing",
            format!(
                "{n} leaves carry the ticket, fewer than the {} expected (--min-leaves)",
                args.min_leaves
            ),
        );
        return receipt::print_outcome(Err(f), args.json, stdout);
    }
    let first = leaves.first().map_or(0, |l| l.proof.leaf_index);
    let token_status = match (&mut settings.tickets, token) {
        (_, None) => "absent",
        (Tickets::Tokens(check), Some(bytes)) => {
            check.insert(ticket, bytes);
            match check.ticket_status(&ticket) {
                TicketStatus::Valid => "valid",
                _ => {
                    let f = FailureReport::of(&VerifyError::TokenInvalid { index: first });
                    return receipt::print_outcome(Err(f), args.json, stdout);
                }
            }
        }
        (_, Some(_)) => "not_checked",
    };
    let indices: Vec<u64> = leaves.iter().map(|l| l.proof.leaf_index).collect();
    if args.json {
        crate::write_json(
            stdout,
            &TicketReport {
                valid: true,
                batch: hex::encode(id),
                ticket: hex::encode(ticket),
                leaves: n,
                indices,
                token: token_status,
                receipt: report,
            },
        )
    } else {
        writeln!(
            stdout,
            "valid: {n} leaves with ticket {} in batch {} (indices {indices:?}) of a v{} receipt of operator {} for window {}; token: {token_status}; registry checks not performed",
            hex::encode(ticket),
            hex::encode(id),
            report.receipt_version,
            report.operator_id,
            report.window_id,
        )?;
        stdout.flush()?;
        Ok(())
    }
}
