//! `tolldns receipt verify`: checks a signed batch receipt (format v1 or v2) with the
//! `tolldns_receipts::Verifier`, and optionally sampled leaves with their inclusion proofs,
//! right neighbours and the audit sample of a seed. `receipt audit|name-key|ticket`, which
//! fetch what they check from a miner's audit API, are in [`crate::audit`] and share the
//! verifier settings and the output of this module.
//!
//! # Rules
//!
//! Every failure is one `tolldns_receipts::VerifyError`, reported by its stable
//! [`VerifyError::name`] and [`VerifyError::code`] (the CLI never parses `Debug` output).
//! Receipt rules, in the order they are checked (the first that fails is reported):
//! `v1_not_accepted` (42, unless `--accept-v1`), `unregistered_operator` (1),
//! `operator_not_staked` (2), `signature` (3), `wrong_deployment` (4, v2),
//! `window_len_not_deployment` (5, v2), `unregistered_backend` (6, v2),
//! `invalid_policy_version` (7), `success_plus_error_exceeds_requests` (8),
//! `cache_exceeds_requests` (9), `work_class_sum_mismatch` (10),
//! `error_class_sum_exceeds_errors` (11), `leaf_count_mismatch` (12), `per_request_not_single`
//! (13), `bytes_exceed_maximum` (14, v2), `ticketed_exceeds_leaves` (15, v2),
//! `sketch_inconsistent` (16, v2), `repeats_exceed_ticketed` (43, v2), `too_many_repeats` (44,
//! v2), `window_out_of_range` (17), `timestamp_outside_window` (18), `arrived_too_early` (45,
//! v2), `arrived_too_late` (19, v2), `duplicate_receipt` (20, v1), `overlapping_receipt` (21, v2). Audit rules:
//! `sample_not_for_receipt` (22), `proof_count_mismatch` (23), then for every answer in
//! sample order `proof_for_wrong_leaf` (24), `invalid_proof` (25), `leaf_outside_window`
//! (26); then (v2) for every answer in sample order `missing_neighbour` (27),
//! `neighbour_for_wrong_leaf` (28), `invalid_neighbour_proof` (29), `leaves_out_of_order`
//! (30), `repeat_mismatch` (31), `sketch_understates` (32), `ticket_not_checked` (33),
//! `ticket_not_redeemed` (34), `token_invalid` (35), `unticketed_leaf` (36); last
//! `summary_disagrees` (37). Ticket lookups (`receipt ticket`) add `ticket_leaf_mismatch`
//! (40) and `ticket_over_quota` (41). A few checks are the CLI's own and have no code:
//! `batch_id_mismatch`, `ticket_leaves_missing`, `envelope_does_not_open`,
//! `commitment_mismatch`.
//!
//! What the CLI cannot know is the caller's: the operator registry and staking (rules 1, 2),
//! backend registration (6), the policy registry (7) and the ledger of accepted receipts
//! (20, 21) are assumed to pass, and the output says `registry_checked: false`.
//!
//! # Proofs file
//!
//! `--proofs FILE` is what a miner's `GET /v1/batches/{id}/audit` serves:
//!
//! ```json
//! {"version": 2,
//!  "proofs": [
//!   {"leaf_hex": "<142 hex chars: the 71-byte v2 leaf>",
//!    "leaf_index": 4, "tree_size": 7, "path": ["<64 hex chars>", "..."],
//!    "next": {"leaf_hex": "...", "leaf_index": 5, "tree_size": 7, "path": ["..."]}},
//!   {"leaf_hex": "...", "leaf_index": 6, "tree_size": 7, "path": ["..."], "next": null}
//! ]}
//! ```
//!
//! `version` (optional) must be the receipt's format; `leaf_hex` is the leaf's canonical bytes
//! in that format (71 bytes in v2, 69 in v1); the proof is either `leaf_index`, `tree_size`
//! and `path` (sibling hashes from the leaf level up, RFC 6962 `PATH`) or `proof_hex` (Borsh:
//! `u64 leaf_index || u64 tree_size || u32 path_len || path`), not both; `next` is the right
//! neighbour in the same form (v2 only; `null` or absent after the last leaf). The v1 form (no
//! `version`, no `next`) is still read. Integers are JSON numbers or decimal strings; hex is
//! either case; unknown fields are refused.
//!
//! With `--seed`, the answers must be in sample (draw) order, exactly as the spec requires: a
//! reordered file fails with `proof_for_wrong_leaf`.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use clap::{Args, ValueEnum};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tolldns_core::{BackendId, DeploymentId, OperatorId, Role, WindowId, WindowLen};
use tolldns_receipts::{
    AuditAnswer, AuditSample, Deployment, LEAF_LEN, LEAF_LEN_V1, Leaf, LeafProof, MerkleProof,
    OperatorRegistry, OperatorStatus, PolicyRegistry, Receipt, ReceiptLedger, TicketCheck,
    TicketStatus, Verifier, VerifyError, sample_size, verify_leaf_proof, verify_neighbour,
};
use tolldns_tickets::{AcceptedKey, IssuerPublicKey, TokenChallenge, TokenVerifier};

use crate::error::CliError;
use crate::json::Fields;

/// How a receipt is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ReceiptFormat {
    /// JSON if the input starts with `{`, hex if it is only hex digits, raw Borsh otherwise.
    Auto,
    /// The canonical Borsh bytes, raw.
    Borsh,
    /// The canonical Borsh bytes as hex text (surrounding whitespace ignored).
    Hex,
    /// The JSON form (docs/RECEIPTS.md).
    Json,
}

/// The verifier's settings: the deployment a v2 receipt must match, the arrival time, and how
/// ticketed leaves' tokens are checked (shared by `receipt verify`, `audit` and `ticket`).
#[derive(Debug, Clone, Args)]
pub struct VerifierArgs {
    /// The deployment id v2 receipts must carry (64 hex characters) [default: the local
    /// development deployment, tolldns_core::DeploymentId::local()].
    #[arg(long, value_name = "HEX")]
    pub deployment: Option<String>,
    /// The deployment's window length in seconds: v2 receipts must use exactly this one.
    #[arg(long, value_name = "N", default_value_t = 60)]
    pub window_secs: u32,
    /// When the receipt reached you, in Unix milliseconds [default: now]. A third party
    /// re-checking a receipt passes the arrival time the watcher recorded.
    #[arg(long, value_name = "MS")]
    pub received_ms: Option<u64>,
    /// How long after its window ends a v2 receipt may arrive, in milliseconds.
    #[arg(long, value_name = "MS", default_value_t = tolldns_receipts::Deployment::DEFAULT_MAX_DELAY_MS)]
    pub max_delay_ms: u64,
    /// Tolerated clock skew of the receipt's timestamp_ms around its window, in milliseconds.
    #[arg(long, value_name = "N", default_value_t = 30_000)]
    pub skew_ms: u64,
    /// Accept v1 receipts (checked by the v1 rules: no deployment, arrival bound or order).
    /// Off by default, as for a deployment that switched to v2: a v1 receipt fails with
    /// v1_not_accepted.
    #[arg(long)]
    pub accept_v1: bool,
    /// The largest share of a v2 receipt's ticketed leaves, in thousandths, that may be
    /// repeats (too_many_repeats above it and above --repeat-allowance).
    #[arg(long, value_name = "N", default_value_t = tolldns_receipts::Deployment::DEFAULT_MAX_REPEAT_PERMILLE)]
    pub max_repeat_permille: u32,
    /// Ticketed repeats every v2 receipt may have whatever its size.
    #[arg(long, value_name = "N", default_value_t = tolldns_receipts::Deployment::DEFAULT_REPEAT_ALLOWANCE)]
    pub repeat_allowance: u64,
    /// The deployment requires a toll ticket on every leaf: a sampled unticketed leaf fails
    /// (unticketed_leaf).
    #[arg(long)]
    pub require_tickets: bool,
    /// TEST/OFFLINE MODE: treat the token of every ticketed sampled leaf as valid without
    /// checking it (a warning is printed on stderr).
    #[arg(long, conflicts_with = "tokens")]
    pub unchecked_tickets: bool,
    /// A JSON file of tokens to check ticketed sampled leaves against:
    /// {"tokens": [{"ticket_id": HEX, "token": BASE64URL}]} (a `tolldns ticket fetch` tokens
    /// file works as is).
    #[arg(long, value_name = "FILE")]
    pub tokens: Option<PathBuf>,
    /// An accepted issuer key for --tokens: base64url of its SPKI (the directory's
    /// `token-key`, as `tolldns-issuer key show` prints it). Repeatable; a tokens file's
    /// `token_key` is accepted too.
    #[arg(long, value_name = "B64URL")]
    pub issuer_key: Vec<String>,
    /// Issuer name of the deployment's token challenge (the edges' tickets.issuer_name)
    /// [default: the tokens file's issuer_name].
    #[arg(long, value_name = "NAME")]
    pub issuer_name: Option<String>,
    /// Deployment name of the token challenge (the edges' tickets.deployment) [default: the
    /// tokens file's deployment].
    #[arg(long, value_name = "NAME")]
    pub token_deployment: Option<String>,
}

/// How many leaves an audit samples.
#[derive(Debug, Clone, Args)]
pub struct SampleArgs {
    /// Sample size parameter: probability of catching a batch with --fake-fraction fake leaves
    /// [default: 0.99].
    #[arg(long, value_name = "P", conflicts_with = "sample_size")]
    pub confidence: Option<f64>,
    /// Sample size parameter: fraction of fake leaves to detect [default: 0.10].
    #[arg(long, value_name = "F", conflicts_with = "sample_size")]
    pub fake_fraction: Option<f64>,
    /// Use this sample size k instead of computing it from --confidence and --fake-fraction
    /// (clamped to the leaf count).
    #[arg(long, visible_alias = "k", value_name = "K")]
    pub sample_size: Option<u64>,
}

/// Arguments of `tolldns receipt verify`.
#[derive(Debug, Args)]
pub struct ReceiptVerifyArgs {
    /// The receipt file, or `-` for stdin.
    #[arg(value_name = "FILE", default_value = "-")]
    pub input: PathBuf,
    /// The receipt's encoding.
    #[arg(long, value_enum, default_value_t = ReceiptFormat::Auto)]
    pub format: ReceiptFormat,
    /// A JSON file of sampled leaves and their proofs (format above), or `-` for stdin.
    #[arg(long, value_name = "FILE")]
    pub proofs: Option<PathBuf>,
    /// The verifier's 32-byte audit seed (64 hex characters): the proofs must answer exactly
    /// the audit sample this seed draws, in draw order.
    #[arg(long, value_name = "HEX", requires = "proofs")]
    pub seed: Option<String>,
    /// The sample size.
    #[command(flatten)]
    pub sample: SampleArgs,
    /// The verifier's settings.
    #[command(flatten)]
    pub verifier: VerifierArgs,
    /// Print the result as JSON (also on verification failure) instead of one line.
    #[arg(long)]
    pub json: bool,
}

/// The long help of `tolldns receipt verify`.
pub const VERIFY_HELP: &str = "\
Verifies a signed batch receipt (docs/RECEIPTS.md), format v2 or, with --accept-v1, v1, with the \
tolldns-receipts Verifier: its encoding, the strict ed25519 signature, and every rule of the format. A v2 receipt \
must carry the deployment id --deployment (default: the local development deployment) and the \
deployment's window length --window-secs (default 60), and must have arrived (--received-ms, \
default now) at most --max-delay-ms after its window ended. A third party re-checking a receipt \
passes the arrival time the watcher recorded, not its own clock. The receipt is read from FILE or \
stdin as raw Borsh bytes, hex of the Borsh bytes, or the JSON form; --format auto (the default) \
picks JSON if the input starts with '{', hex if it is only hex digits, raw Borsh otherwise.

Rules, in the order they are checked (name and stable code; the first that fails is reported): \
v1_not_accepted 42 (unless --accept-v1), unregistered_operator 1, operator_not_staked 2, \
signature 3, wrong_deployment 4, window_len_not_deployment 5, unregistered_backend 6, \
invalid_policy_version 7, success_plus_error_exceeds_requests 8, cache_exceeds_requests 9, \
work_class_sum_mismatch 10, error_class_sum_exceeds_errors 11, leaf_count_mismatch 12, \
per_request_not_single 13, bytes_exceed_maximum 14, ticketed_exceeds_leaves 15, \
sketch_inconsistent 16, repeats_exceed_ticketed 43, too_many_repeats 44 (--max-repeat-permille, --repeat-allowance), \
window_out_of_range 17, timestamp_outside_window 18 (+/- --skew-ms), arrived_too_early 45, \
arrived_too_late 19, \
duplicate_receipt 20, overlapping_receipt 21; with an audit: sample_not_for_receipt 22, \
proof_count_mismatch 23, then for every answer in sample order proof_for_wrong_leaf 24, \
invalid_proof 25, leaf_outside_window 26; then (v2) for every answer in sample order \
missing_neighbour 27, neighbour_for_wrong_leaf 28, invalid_neighbour_proof 29, \
leaves_out_of_order 30, repeat_mismatch 31, sketch_understates 32, ticket_not_checked 33, \
ticket_not_redeemed 34, token_invalid 35, unticketed_leaf 36 (with --require-tickets); last \
summary_disagrees 37. Rules 4-6, 14-16, 19, 21, 27-37, 43 and 44 are v2 only, 20 is v1 only.

The caller's: this command treats the operator as registered and staked (1, 2), the backend as \
registered to it (6), the policy version as valid (7), and the ledger of accepted receipts as \
empty (20, 21): operator registry and staking, backend registration, policy and ledger are not \
checked, and the output says so (registry_checked: false).

With --proofs FILE it also checks sampled leaves. With --seed HEX the answers must be exactly \
the audit sample that seed draws, in draw order (a reordered file fails with \
proof_for_wrong_leaf), with k = ceil(ln(1 - confidence) / ln(1 - fake_fraction)) clamped to the \
leaf count, or --sample-size K. Without --seed every proof is checked on its own: it is for this \
receipt's tree (tree_size = leaf_count), verifies against merkle_root, its leaf lies in the \
window, and a neighbour given with it is leaf index + 1, proved, strictly after it, with a \
consistent repeat.

Ticketed sampled leaves (v2) need their tokens checked: without a token source they fail with \
ticket_not_checked. --tokens FILE ({\"tokens\": [{\"ticket_id\": HEX, \"token\": BASE64URL}]}; a \
`tolldns ticket fetch` tokens file works as is) verifies each leaf's token for real with the \
issuer key(s) --issuer-key (base64url SPKI, the directory's token-key; a tokens file's \
token_key counts too) and the challenge of --issuer-name and --token-deployment (default: the \
tokens file's): a ticket without a token fails with ticket_not_redeemed, a token that does not \
verify or does not hash to the ticket id with token_invalid. --unchecked-tickets is a test and \
offline mode that treats every token as valid and prints a warning on stderr.

The proofs file is JSON, as a miner's GET /v1/batches/{id}/audit serves it:
  {\"version\": 2, \"proofs\": [
    {\"leaf_hex\": \"<142 hex chars: the 71-byte v2 leaf; 138 for a 69-byte v1 leaf>\",
     \"leaf_index\": 4, \"tree_size\": 7, \"path\": [\"<64 hex chars>\", ...],
     \"next\": {\"leaf_hex\": ..., \"leaf_index\": 5, \"tree_size\": 7, \"path\": [...]}},
    {\"leaf_hex\": \"...\", \"proof_hex\": \"<hex of the proof's Borsh bytes>\", \"next\": null}
  ]}
version (optional) must be the receipt's format. Each entry gives the leaf and either \
leaf_index, tree_size and path (sibling hashes from the leaf level up) or proof_hex (u64 \
leaf_index || u64 tree_size || u32 path_len || path, little-endian), not both; next is the right \
neighbour (v2 only; null or absent after the last leaf). The v1 form (no version, no next) is \
still read. Integers are JSON numbers or decimal strings; unknown fields are refused.

Prints one line, or a JSON object with --json: {\"valid\": true, ..., \"audit\": {\"seed\", \"k\", \
\"indices\", \"sampled\", \"ticketed\", \"repeats\", \"neighbours\"}} or {\"valid\": false, \"rule\": \
NAME, \"code\": N, \"message\": TEXT}. On stderr a failure reads `verification failed: NAME: TEXT`.

Exit codes: 0 valid, 1 verification failure, 2 bad input (unreadable or malformed receipt, \
proofs or tokens file, bad arguments).";

/// Treats every operator as registered and staked with every backend, every policy as valid
/// and the ledger as empty: registry checks are the caller's.
#[derive(Debug, Clone, Copy)]
struct AssumeValid;

impl OperatorRegistry for AssumeValid {
    fn operator_status(&self, _: &OperatorId, _: Role, _: WindowId) -> OperatorStatus {
        OperatorStatus::Active
    }

    fn backend_registered(&self, _: &OperatorId, _: &BackendId) -> bool {
        true
    }
}

impl PolicyRegistry for AssumeValid {
    fn is_valid_policy(&self, _: u32, _: WindowId, _: WindowLen) -> bool {
        true
    }
}

impl ReceiptLedger for AssumeValid {
    fn contains(&self, _: &OperatorId, _: &BackendId, _: WindowId) -> bool {
        false
    }

    fn overlaps(&self, _: &OperatorId, _: u64, _: u64) -> bool {
        false
    }
}

/// Token lookups backed by known tokens, verified with the issuer's keys.
#[derive(Debug, Clone)]
pub(crate) struct TokenCheck {
    tokens: HashMap<[u8; 16], Vec<u8>>,
    verifier: TokenVerifier,
    now_s: u64,
}

impl TokenCheck {
    /// Record the token given for `ticket`.
    pub(crate) fn insert(&mut self, ticket: [u8; 16], token: Vec<u8>) {
        self.tokens.insert(ticket, token);
    }
}

impl TicketCheck for TokenCheck {
    fn ticket_status(&self, ticket: &[u8; 16]) -> TicketStatus {
        match self.tokens.get(ticket) {
            None => TicketStatus::Unknown,
            Some(bytes) if tolldns_tickets::ticket_id(bytes) != *ticket => TicketStatus::Invalid,
            Some(bytes) => match self.verifier.verify(bytes, self.now_s) {
                Ok(_) => TicketStatus::Valid,
                Err(_) => TicketStatus::Invalid,
            },
        }
    }
}

/// Every token valid: `--unchecked-tickets`.
#[derive(Debug, Clone, Copy)]
struct Unchecked;

impl TicketCheck for Unchecked {
    fn ticket_status(&self, _: &[u8; 16]) -> TicketStatus {
        TicketStatus::Valid
    }
}

/// How ticketed leaves' tokens are checked.
#[derive(Debug, Clone)]
pub(crate) enum Tickets {
    /// Not at all: a sampled ticketed leaf fails with `ticket_not_checked`.
    None,
    /// Every token is taken as valid (`--unchecked-tickets`).
    Unchecked,
    /// Against known tokens and issuer keys.
    Tokens(TokenCheck),
}

impl Tickets {
    /// The name the report gives this mode.
    const fn name(&self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Unchecked => "unchecked",
            Self::Tokens(_) => "tokens",
        }
    }
}

/// The verifier's settings, from [`VerifierArgs`].
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub(crate) deployment: Deployment,
    pub(crate) skew_ms: u64,
    pub(crate) received_ms: u64,
    pub(crate) tickets: Tickets,
}

/// Unix milliseconds now.
pub(crate) fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// The tokens file of `--tokens`: a `tolldns ticket fetch` file or just the tokens.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TokensDoc {
    tokens: Vec<TokenEntry>,
    #[serde(default)]
    #[allow(dead_code)]
    issuer: Option<String>,
    #[serde(default)]
    issuer_name: Option<String>,
    #[serde(default)]
    deployment: Option<String>,
    #[serde(default)]
    token_key: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenEntry {
    ticket_id: String,
    token: String,
    #[serde(default)]
    #[allow(dead_code)]
    used: bool,
}

/// An issuer key given as base64url (padded or not) of its SPKI.
fn issuer_key(what: &str, text: &str) -> Result<IssuerPublicKey, CliError> {
    let spki = crate::tokens::decode_base64url(text.trim())
        .ok_or_else(|| CliError::field(what, "not base64url"))?;
    IssuerPublicKey::from_spki(&spki)
        .map_err(|e| CliError::field(what, format!("not an issuer key: {e}")))
}

/// A token verifier from the arguments, with `file_key`, `file_issuer_name` and
/// `file_deployment` (a tokens file's) as fallbacks.
fn token_verifier(
    args: &VerifierArgs,
    file_key: Option<&str>,
    file_issuer_name: Option<&str>,
    file_deployment: Option<&str>,
    needed_by: &str,
) -> Result<TokenVerifier, CliError> {
    let mut keys = Vec::new();
    for (i, k) in args.issuer_key.iter().enumerate() {
        keys.push(issuer_key(&format!("--issuer-key[{i}]"), k)?);
    }
    if let Some(k) = file_key {
        keys.push(issuer_key("token_key", k)?);
    }
    if keys.is_empty() {
        return Err(CliError::field(
            "--issuer-key",
            format!(
                "{needed_by} needs the issuer's key (base64url SPKI, the directory's token-key)"
            ),
        ));
    }
    let issuer_name = args
        .issuer_name
        .as_deref()
        .or(file_issuer_name)
        .ok_or_else(|| {
            CliError::field(
                "--issuer-name",
                format!("{needed_by} needs the token challenge's issuer name"),
            )
        })?;
    let deployment = args
        .token_deployment
        .as_deref()
        .or(file_deployment)
        .ok_or_else(|| {
            CliError::field(
                "--token-deployment",
                format!("{needed_by} needs the token challenge's deployment name"),
            )
        })?;
    let digest = TokenChallenge::deployment(issuer_name, deployment)
        .digest()
        .map_err(|e| CliError::field("--issuer-name", e.to_string()))?;
    let accepted = keys
        .into_iter()
        .map(|key| AcceptedKey {
            key,
            not_before: 0,
            not_after: None,
        })
        .collect();
    Ok(TokenVerifier::new(accepted, digest))
}

/// Reads a `--tokens` file.
fn load_tokens(args: &VerifierArgs, path: &Path, now_s: u64) -> anyhow::Result<TokenCheck> {
    use anyhow::Context as _;
    let bytes = crate::read_input_bytes(path, &mut std::io::empty())?;
    let what = || format!("tokens file {}", path.display());
    let doc: TokensDoc = serde_json::from_slice(&bytes)
        .map_err(CliError::from)
        .with_context(what)?;
    let verifier = token_verifier(
        args,
        doc.token_key.as_deref(),
        doc.issuer_name.as_deref(),
        doc.deployment.as_deref(),
        "--tokens",
    )
    .with_context(what)?;
    let mut tokens = HashMap::new();
    for (i, e) in doc.tokens.iter().enumerate() {
        let mut ticket = [0u8; 16];
        hex::decode_to_slice(e.ticket_id.trim(), &mut ticket)
            .map_err(|_| CliError::field(format!("tokens[{i}].ticket_id"), "not 32 hex characters"))
            .with_context(what)?;
        let token = crate::tokens::decode_base64url(e.token.trim())
            .ok_or_else(|| CliError::field(format!("tokens[{i}].token"), "not base64url"))
            .with_context(what)?;
        tokens.insert(ticket, token);
    }
    Ok(TokenCheck {
        tokens,
        verifier,
        now_s,
    })
}

/// The verifier's settings from the arguments. `fetch_tokens`: tokens will be fetched from a
/// miner, so the issuer key and challenge are needed without a tokens file.
pub(crate) fn settings(args: &VerifierArgs, fetch_tokens: bool) -> anyhow::Result<Settings> {
    let id = match &args.deployment {
        Some(text) => text
            .trim()
            .parse::<DeploymentId>()
            .map_err(|e| CliError::field("--deployment", format!("{text:?}: {e}")))?,
        None => DeploymentId::local(),
    };
    let window_len = WindowLen::new(args.window_secs)
        .map_err(|e| CliError::field("--window-secs", e.to_string()))?;
    let deployment = Deployment::new(id, window_len)
        .with_max_delay_ms(args.max_delay_ms)
        .with_require_tickets(args.require_tickets)
        .with_v1(args.accept_v1)
        .with_max_repeat_permille(args.max_repeat_permille)
        .with_repeat_allowance(args.repeat_allowance);
    let received_ms = args.received_ms.unwrap_or_else(now_ms);
    let now_s = received_ms / 1000;
    let tickets = if args.unchecked_tickets {
        eprintln!(
            "warning: --unchecked-tickets: the token of every ticketed leaf is treated as valid \
             WITHOUT checking it (test/offline mode; use --tokens to check them)"
        );
        Tickets::Unchecked
    } else if let Some(path) = &args.tokens {
        Tickets::Tokens(load_tokens(args, path, now_s)?)
    } else if fetch_tokens {
        Tickets::Tokens(TokenCheck {
            tokens: HashMap::new(),
            verifier: token_verifier(args, None, None, None, "--fetch-tokens")?,
            now_s,
        })
    } else {
        let stray = [
            ("--issuer-key", !args.issuer_key.is_empty()),
            ("--issuer-name", args.issuer_name.is_some()),
            ("--token-deployment", args.token_deployment.is_some()),
        ];
        if let Some((flag, _)) = stray.iter().find(|(_, given)| *given) {
            return Err(CliError::field(
                *flag,
                "only used to check tokens: give --tokens FILE (or --fetch-tokens with receipt audit)",
            )
            .into());
        }
        Tickets::None
    };
    Ok(Settings {
        deployment,
        skew_ms: args.skew_ms,
        received_ms,
        tickets,
    })
}

/// What an accepted audit saw.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditFigures {
    /// The seed, hex.
    pub seed: String,
    /// The sample size drawn.
    pub k: u64,
    /// The sampled indices, in draw order.
    pub indices: Vec<u64>,
    /// Sampled leaves checked.
    pub sampled: u64,
    /// Sampled leaves with a ticket (every one's token checked, or taken as valid with
    /// `--unchecked-tickets`).
    pub ticketed: u64,
    /// Sampled leaves with a non-zero `repeat`.
    pub repeats: u64,
    /// Right neighbours checked for order.
    pub neighbours: u64,
}

/// The output of a successful `tolldns receipt verify --json` (and `receipt audit --json`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VerifyReport {
    /// Always `true`.
    pub valid: bool,
    /// The receipt's format: 1 or 2.
    pub receipt_version: u8,
    /// `BATCH` or `PER_REQUEST`.
    pub receipt_type: String,
    /// The operator's public key, base58.
    pub operator_id: String,
    /// The operator's role.
    pub operator_role: String,
    /// The backend (its registration is not checked).
    pub backend_id: String,
    /// The policy version (not checked against a registry).
    pub policy_version: u32,
    /// The window.
    pub window_id: u64,
    /// The window length, seconds.
    pub window_len_s: u32,
    /// The receipt's timestamp.
    pub timestamp_ms: u64,
    /// Leaves committed.
    pub leaf_count: u64,
    /// The Merkle root, hex.
    pub merkle_root: String,
    /// v2: the deployment id, hex (`null` for v1).
    pub deployment_id: Option<String>,
    /// v2: leaves with a ticket (`null` for v1).
    pub ticketed_leaf_count: Option<u64>,
    /// The arrival time the arrival bound was checked against.
    pub received_ms: u64,
    /// Proofs checked (0 without `--proofs`).
    pub proofs_verified: usize,
    /// Right neighbours checked (v2).
    pub neighbours_verified: usize,
    /// The audit, with `--seed`.
    pub audit: Option<AuditFigures>,
    /// How ticketed leaves' tokens were checked: `none`, `unchecked` or `tokens`.
    pub tickets: &'static str,
    /// Always `false`: operator, staking, backend, policy and ledger checks are the caller's.
    pub registry_checked: bool,
}

/// The output of a failed `tolldns receipt verify --json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FailureReport {
    /// Always `false`.
    pub valid: bool,
    /// The rule that failed: [`VerifyError::name`], e.g. `proof_for_wrong_leaf` (or a
    /// CLI-level check such as `batch_id_mismatch`).
    pub rule: String,
    /// [`VerifyError::code`] (`null` for a CLI-level check).
    pub code: Option<u16>,
    /// What failed, in words ([`VerifyError`]'s `Display`).
    pub message: String,
    /// More context for stderr (e.g. the audit sample), not in the JSON.
    #[serde(skip)]
    pub detail: String,
}

impl FailureReport {
    /// The report of a [`VerifyError`].
    pub fn of(e: &VerifyError) -> Self {
        Self {
            valid: false,
            rule: e.name().to_owned(),
            code: Some(e.code()),
            message: e.to_string(),
            detail: String::new(),
        }
    }

    /// A failed check of the CLI itself (not a [`VerifyError`]).
    pub fn cli(rule: &str, message: String) -> Self {
        Self {
            valid: false,
            rule: rule.to_owned(),
            code: None,
            message,
            detail: String::new(),
        }
    }

    /// The error the command returns: `verification failed: RULE: MESSAGE[ DETAIL]`.
    pub fn into_error(self) -> anyhow::Error {
        CliError::VerificationFailed(format!("{}: {}{}", self.rule, self.message, self.detail))
            .into()
    }
}

/// Runs `tolldns receipt verify …`.
///
/// # Errors
///
/// [`CliError::VerificationFailed`] when a rule fails; anything else is bad input or I/O.
pub fn verify_command(
    args: &ReceiptVerifyArgs,
    stdin: &mut dyn Read,
    stdout: &mut dyn Write,
) -> anyhow::Result<()> {
    use anyhow::Context as _;
    if args.input.as_os_str() == "-" && args.proofs.as_ref().is_some_and(|p| p.as_os_str() == "-") {
        anyhow::bail!("the receipt and --proofs cannot both be read from stdin");
    }
    let s = &args.sample;
    if args.seed.is_none()
        && let Some(flag) = [
            ("--confidence", s.confidence.is_some()),
            ("--fake-fraction", s.fake_fraction.is_some()),
            ("--sample-size", s.sample_size.is_some()),
        ]
        .iter()
        .find_map(|(flag, given)| given.then_some(*flag))
    {
        return Err(CliError::field(flag, "only used with --seed").into());
    }
    let seed = args
        .seed
        .as_deref()
        .map(|s| crate::parse_hash("--seed", s.trim()))
        .transpose()?;
    let settings = settings(&args.verifier, false)?;
    let input = crate::read_input_bytes(&args.input, stdin)?;
    let receipt = decode_receipt(&input, args.format)?;
    let answers = match &args.proofs {
        Some(path) => {
            let text = crate::read_input_bytes(path, stdin)?;
            let text = std::str::from_utf8(&text)
                .map_err(|_| CliError::field("--proofs", "not UTF-8 text"))?;
            Some(
                parse_proofs(text, receipt.body.version())
                    .with_context(|| format!("proofs file {}", path.display()))?,
            )
        }
        None => None,
    };
    let audit = match seed {
        Some(seed) => Some((seed, audit_size(s, receipt.body.integrity.leaf_count)?)),
        None => None,
    };
    let outcome = verify(&receipt, answers.as_deref(), audit, &settings);
    print_outcome(outcome, args.json, stdout)
}

/// Prints a report (one line, or JSON) and turns a failure into the command's error.
pub(crate) fn print_outcome(
    outcome: Result<VerifyReport, FailureReport>,
    json: bool,
    stdout: &mut dyn Write,
) -> anyhow::Result<()> {
    match outcome {
        Ok(report) => {
            if json {
                crate::write_json(stdout, &report)
            } else {
                writeln!(stdout, "{}", one_line(&report))?;
                stdout.flush()?;
                Ok(())
            }
        }
        Err(failure) => {
            if json {
                crate::write_json(stdout, &failure)?;
            }
            Err(failure.into_error())
        }
    }
}

/// The sample size: `--sample-size`, or from the confidence and fake fraction.
pub(crate) fn audit_size(args: &SampleArgs, leaf_count: u64) -> Result<u64, CliError> {
    if let Some(k) = args.sample_size {
        return Ok(k.min(leaf_count));
    }
    let confidence = args.confidence.unwrap_or(0.99);
    let fake = args.fake_fraction.unwrap_or(0.10);
    sample_size(confidence, fake, leaf_count).map_err(|e| {
        let flag = match e {
            tolldns_receipts::SampleError::FakeFraction => "--fake-fraction",
            _ => "--confidence",
        };
        CliError::field(flag, e.to_string())
    })
}

/// Decodes a receipt in `format` (see [`ReceiptFormat`]).
///
/// # Errors
///
/// The decoder's error, with the format tried as context.
pub fn decode_receipt(input: &[u8], format: ReceiptFormat) -> anyhow::Result<Receipt> {
    use anyhow::Context as _;
    let trimmed = input.trim_ascii();
    let format = match format {
        ReceiptFormat::Auto if trimmed.first() == Some(&b'{') => ReceiptFormat::Json,
        ReceiptFormat::Auto if !trimmed.is_empty() && trimmed.iter().all(u8::is_ascii_hexdigit) => {
            ReceiptFormat::Hex
        }
        ReceiptFormat::Auto => ReceiptFormat::Borsh,
        other => other,
    };
    match format {
        ReceiptFormat::Json => {
            let text = std::str::from_utf8(trimmed).context("the receipt JSON is not UTF-8")?;
            Receipt::from_json(text).context("decoding the receipt (JSON form)")
        }
        ReceiptFormat::Hex => {
            let bytes = hex::decode(trimmed).context("decoding the receipt (hex of Borsh)")?;
            Receipt::from_bytes(&bytes).context("decoding the receipt (hex of Borsh)")
        }
        ReceiptFormat::Borsh | ReceiptFormat::Auto => {
            Receipt::from_bytes(input).context("decoding the receipt (Borsh)")
        }
    }
}

/// One proved leaf of a proofs-file entry; `version` is the receipt's format.
fn parse_leaf_proof(f: &mut Fields<'_>, version: u8) -> Result<LeafProof, CliError> {
    let leaf_path = f.path_of("leaf_hex");
    let leaf_bytes = crate::parse_hex(&leaf_path, f.string("leaf_hex")?)?;
    let expected = if version == 1 { LEAF_LEN_V1 } else { LEAF_LEN };
    if leaf_bytes.len() != expected && matches!(leaf_bytes.len(), LEAF_LEN | LEAF_LEN_V1) {
        return Err(CliError::field(
            &leaf_path,
            format!(
                "a {}-byte leaf, but a v{version} receipt's leaves are {expected} bytes",
                leaf_bytes.len()
            ),
        ));
    }
    let leaf = Leaf::from_bytes_any(&leaf_bytes)
        .map_err(|e| CliError::field(&leaf_path, format!("not a leaf: {e}")))?;
    let proof = if f.has("proof_hex") {
        let path = f.path_of("proof_hex");
        if ["leaf_index", "tree_size", "path"].iter().any(|k| f.has(k)) {
            return Err(CliError::field(
                path,
                "give either proof_hex or leaf_index, tree_size and path, not both",
            ));
        }
        let bytes = crate::parse_hex(&path, f.string("proof_hex")?)?;
        MerkleProof::from_bytes(&bytes)
            .map_err(|e| CliError::field(&path, format!("not a proof: {e}")))?
    } else {
        let leaf_index = f.uint("leaf_index")?;
        let tree_size = f.uint("tree_size")?;
        let base = f.path_of("path");
        let path = f
            .array("path")?
            .iter()
            .enumerate()
            .map(|(j, h)| {
                let p = format!("{base}[{j}]");
                let s = h
                    .as_str()
                    .ok_or_else(|| CliError::field(&p, "expected a string"))?;
                crate::parse_hash(&p, s)
            })
            .collect::<Result<Vec<_>, _>>()?;
        MerkleProof {
            leaf_index,
            tree_size,
            path,
        }
    };
    Ok(LeafProof { leaf, proof })
}

/// Parses a proofs file (module docs) for a receipt of format `version`, keeping the file's
/// order.
///
/// # Errors
///
/// [`CliError`] naming the first bad field.
pub fn parse_proofs(text: &str, version: u8) -> Result<Vec<AuditAnswer>, CliError> {
    let root: Value = serde_json::from_str(text)?;
    parse_proofs_value(&root, version)
}

/// [`parse_proofs`] of a parsed document.
pub(crate) fn parse_proofs_value(root: &Value, version: u8) -> Result<Vec<AuditAnswer>, CliError> {
    let mut top = Fields::new("", root)?;
    if top.has("version") {
        let v: u8 = top.uint("version")?;
        if v != version {
            return Err(CliError::field(
                "version",
                format!("proofs for a v{v} receipt, but the receipt is v{version}"),
            ));
        }
    }
    let entries = top.array("proofs")?;
    top.finish()?;
    let mut out = Vec::with_capacity(entries.len());
    for (i, entry) in entries.iter().enumerate() {
        let mut f = Fields::new(format!("proofs[{i}]"), entry)?;
        let leaf = parse_leaf_proof(&mut f, version)?;
        let next_path = f.path_of("next");
        let next = match f.optional("next") {
            None | Some(Value::Null) => None,
            Some(_) if version == 1 => {
                return Err(CliError::field(
                    next_path,
                    "a v1 receipt's leaves have no neighbours in audits",
                ));
            }
            Some(v) => {
                let mut n = Fields::new(next_path, v)?;
                let next = parse_leaf_proof(&mut n, version)?;
                n.finish()?;
                Some(next)
            }
        };
        f.finish()?;
        out.push(AuditAnswer { leaf, next });
    }
    Ok(out)
}

/// Parses a list of proved leaves without neighbours (`{"proofs": [...]}` entries, as a ticket
/// lookup serves them).
pub(crate) fn parse_leaf_proofs(
    entries: &[Value],
    base: &str,
    version: u8,
) -> Result<Vec<LeafProof>, CliError> {
    entries
        .iter()
        .enumerate()
        .map(|(i, entry)| {
            let mut f = Fields::new(format!("{base}[{i}]"), entry)?;
            let lp = parse_leaf_proof(&mut f, version)?;
            f.finish()?;
            Ok(lp)
        })
        .collect()
}

/// Verifies `receipt` with the registry checks assumed to pass, then the answers, if any:
/// against the sample of `audit = (seed, k)` in the sample's order when given, else each on
/// its own.
///
/// # Errors
///
/// A [`FailureReport`] naming the first rule that fails.
pub(crate) fn verify(
    receipt: &Receipt,
    answers: Option<&[AuditAnswer]>,
    audit: Option<([u8; 32], u64)>,
    settings: &Settings,
) -> Result<VerifyReport, FailureReport> {
    let mut verifier = Verifier::new(
        settings.deployment,
        &AssumeValid,
        &AssumeValid,
        &AssumeValid,
    )
    .with_skew_ms(settings.skew_ms);
    match &settings.tickets {
        Tickets::None => {}
        Tickets::Unchecked => verifier = verifier.with_tickets(&Unchecked),
        Tickets::Tokens(t) => verifier = verifier.with_tickets(t),
    }
    let b = &receipt.body;
    let root = b.integrity.merkle_root;
    let leaf_count = b.integrity.leaf_count;
    let mut figures = None;
    let mut proofs_verified = 0;
    let mut neighbours_verified = 0;
    match (answers, audit) {
        (Some(answers), Some((seed, k))) => {
            let sample = AuditSample::new(&seed, &root, leaf_count, k);
            let report = verifier
                .verify_with_audit(receipt, settings.received_ms, &sample, answers)
                .map_err(|e| {
                    let mut f = FailureReport::of(&e);
                    if matches!(
                        e,
                        VerifyError::ProofCountMismatch { .. }
                            | VerifyError::ProofForWrongLeaf { .. }
                    ) {
                        let given: Vec<u64> =
                            answers.iter().map(|a| a.leaf.proof.leaf_index).collect();
                        f.detail = format!(
                            " (audit sample, in draw order: {:?}; the proofs answer {given:?})",
                            sample.indices()
                        );
                    }
                    f
                })?;
            proofs_verified = answers.len();
            neighbours_verified = usize::try_from(report.neighbours).unwrap_or(usize::MAX);
            figures = Some(AuditFigures {
                seed: hex::encode(seed),
                k: u64::try_from(sample.indices().len()).unwrap_or(u64::MAX),
                indices: sample.indices().to_vec(),
                sampled: report.sampled,
                ticketed: report.ticketed,
                repeats: report.repeats,
                neighbours: report.neighbours,
            });
        }
        (Some(answers), None) => {
            verifier
                .verify(receipt, settings.received_ms)
                .map_err(|e| FailureReport::of(&e))?;
            for a in answers {
                verify_leaf_proof(receipt, &a.leaf).map_err(|e| FailureReport::of(&e))?;
                // Without a sample a neighbour is optional; one given must be right.
                if a.next.is_some() {
                    verify_neighbour(receipt, a.leaf.proof.leaf_index, a)
                        .map_err(|e| FailureReport::of(&e))?;
                    neighbours_verified += 1;
                }
            }
            proofs_verified = answers.len();
        }
        (None, _) => {
            verifier
                .verify(receipt, settings.received_ms)
                .map_err(|e| FailureReport::of(&e))?;
        }
    }
    Ok(VerifyReport {
        valid: true,
        receipt_version: b.version(),
        receipt_type: receipt_type_name(receipt),
        operator_id: bs58::encode(b.operator_id.as_bytes()).into_string(),
        operator_role: b.operator_role.as_str().to_owned(),
        backend_id: b.backend_id.as_str().to_owned(),
        policy_version: b.policy_version,
        window_id: b.window_id.get(),
        window_len_s: b.window_len.secs(),
        timestamp_ms: b.timestamp_ms,
        leaf_count,
        merkle_root: hex::encode(root),
        deployment_id: b.v2.as_ref().map(|v| v.deployment_id.to_string()),
        ticketed_leaf_count: b.v2.as_ref().map(|v| v.ticketed_leaf_count),
        received_ms: settings.received_ms,
        proofs_verified,
        neighbours_verified,
        audit: figures,
        tickets: settings.tickets.name(),
        registry_checked: false,
    })
}

fn receipt_type_name(receipt: &Receipt) -> String {
    use tolldns_receipts::WireTag as _;
    receipt.body.receipt_type.name().to_owned()
}

fn one_line(r: &VerifyReport) -> String {
    let mut line = format!(
        "valid: v{} {} receipt of operator {} ({}, backend {}) for window {} ({} s), {} leaves, root {}",
        r.receipt_version,
        r.receipt_type,
        r.operator_id,
        r.operator_role,
        r.backend_id,
        r.window_id,
        r.window_len_s,
        r.leaf_count,
        r.merkle_root
    );
    match &r.audit {
        Some(a) => line.push_str(&format!(
            "; audit of seed {} (k = {}): {} sampled leaves in draw order, {} ticketed, {} repeats, {} neighbours",
            a.seed, a.k, a.sampled, a.ticketed, a.repeats, a.neighbours
        )),
        None if r.proofs_verified > 0 => {
            line.push_str(&format!(
                "; {} proofs verified, {} neighbours",
                r.proofs_verified, r.neighbours_verified
            ));
        }
        None => {}
    }
    if r.tickets == "unchecked" {
        line.push_str("; tokens NOT checked (--unchecked-tickets)");
    }
    line.push_str("; registry checks not performed");
    line
}
