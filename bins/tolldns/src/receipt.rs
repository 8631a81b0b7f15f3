//! `tolldns receipt verify`: checks a signed batch receipt with `tolldns-receipts`, and
//! optionally sampled leaves with their inclusion proofs and the audit sample of a seed.
//!
//! # Proofs file
//!
//! `--proofs FILE` is a JSON object with one array, `proofs`, of sampled leaves:
//!
//! ```json
//! {"proofs": [
//!   {"leaf_hex": "<138 hex chars: the 69-byte leaf>",
//!    "leaf_index": 4, "tree_size": 7,
//!    "path": ["<64 hex chars>", "..."]},
//!   {"leaf_hex": "...", "proof_hex": "<hex of the proof's Borsh bytes>"}
//! ]}
//! ```
//!
//! Each entry gives the leaf's canonical bytes (`leaf_hex`) and its proof, either as
//! `leaf_index`, `tree_size` and `path` (sibling hashes from the leaf level up, RFC 6962
//! `PATH`) or as `proof_hex` (docs/RECEIPTS.md §5.3: `u64 leaf_index || u64 tree_size || u32
//! path_len || path`), not both. Integers are JSON numbers or decimal strings; hex is either
//! case; unknown fields are refused.

use std::io::{Read, Write};

use serde::Serialize;
use serde_json::Value;
use tolldns_core::{BackendId, OperatorId, Role, WindowId, WindowLen};
use tolldns_receipts::{
    AuditSample, Leaf, LeafProof, MerkleProof, OperatorRegistry, OperatorStatus, PolicyRegistry,
    Receipt, ReceiptLedger, Verifier, VerifyError, sample_size,
};

use crate::cli::{ReceiptArgs, ReceiptCommand, ReceiptFormat, ReceiptVerifyArgs};
use crate::error::CliError;
use crate::json::Fields;

/// The long help of `tolldns receipt verify`.
pub const VERIFY_HELP: &str = "\
Verifies a signed batch receipt (docs/RECEIPTS.md): its encoding, the strict ed25519 signature \
(RFC 8032, over \"TOLLDNS-RECEIPT-V1\\0\" || body), the count invariants and the timestamp \
against the window +/- --skew-ms. The receipt is read from FILE or stdin as raw Borsh bytes, hex \
of the Borsh bytes, or the JSON form; --format auto (the default) picks JSON if the input starts \
with '{', hex if it is only hex digits, raw Borsh otherwise.

Registry checks are the caller's: this command treats the operator as registered and staked, \
the policy version as valid for the window and the (operator, backend, window) as not seen \
before (rules 1, 2, 4 and 13 of docs/RECEIPTS.md §8 are not checked).

With --proofs FILE it also checks sampled leaves: every proof must be for a leaf of this \
receipt's tree (tree_size = leaf_count), verify against its merkle_root, and its leaf must lie \
in the receipt's window. With --seed HEX the proved indices must also be exactly the audit \
sample that seed draws (k = ceil(ln(1 - confidence) / ln(1 - fake_fraction)) clamped to the leaf \
count, or --sample-size K); proofs may be listed in any order.

The proofs file is JSON:
  {\"proofs\": [
    {\"leaf_hex\": \"<138 hex chars: the 69-byte leaf>\",
     \"leaf_index\": 4, \"tree_size\": 7, \"path\": [\"<64 hex chars>\", ...]},
    {\"leaf_hex\": \"...\", \"proof_hex\": \"<hex of the proof's Borsh bytes>\"}
  ]}
Each entry gives the leaf and either leaf_index, tree_size and path (sibling hashes from the \
leaf level up) or proof_hex (u64 leaf_index || u64 tree_size || u32 path_len || path, \
little-endian), not both. Integers are JSON numbers or decimal strings; unknown fields are \
refused.

Prints one line, or a JSON object with --json ({\"valid\": true, ...} or {\"valid\": false, \
\"rule\", \"message\"}). A failure names the rule (the VerifyError of tolldns-receipts, e.g. \
Signature(Invalid), SuccessPlusErrorExceedsRequests, InvalidProof(RootMismatch)).

Exit codes: 0 valid, 1 verification failure, 2 bad input (unreadable or malformed receipt or \
proofs file, bad arguments).";

/// Treats every operator as registered and staked, every policy as valid and every window as
/// unseen: registry checks are the caller's.
#[derive(Debug, Clone, Copy)]
struct AssumeValid;

impl OperatorRegistry for AssumeValid {
    fn operator_status(&self, _: &OperatorId, _: Role, _: WindowId) -> OperatorStatus {
        OperatorStatus::Active
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
}

/// The audit part of a [`VerifyReport`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditReport {
    /// The seed, hex.
    pub seed: String,
    /// The sample size drawn.
    pub k: u64,
    /// The sampled indices, in draw order.
    pub indices: Vec<u64>,
}

/// The output of a successful `tolldns receipt verify --json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VerifyReport {
    /// Always `true`.
    pub valid: bool,
    /// `BATCH` or `PER_REQUEST`.
    pub receipt_type: String,
    /// The operator's public key, base58.
    pub operator_id: String,
    /// The operator's role.
    pub operator_role: String,
    /// The backend.
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
    /// Proofs checked (0 without `--proofs`).
    pub proofs_verified: usize,
    /// The audit sample checked, with `--seed`.
    pub audit: Option<AuditReport>,
    /// Always `false`: operator, policy and duplicate checks are the caller's.
    pub registry_checked: bool,
}

/// The output of a failed `tolldns receipt verify --json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FailureReport {
    /// Always `false`.
    pub valid: bool,
    /// The rule that failed, e.g. `Signature(Invalid)`.
    pub rule: String,
    /// What failed, in words.
    pub message: String,
}

/// Runs `tolldns receipt …`.
///
/// # Errors
///
/// [`CliError::VerificationFailed`] when a rule fails; anything else is bad input or I/O.
pub fn run(args: &ReceiptArgs, stdin: &mut dyn Read, stdout: &mut dyn Write) -> anyhow::Result<()> {
    match &args.command {
        ReceiptCommand::Verify(v) => verify_command(v, stdin, stdout),
    }
}

fn verify_command(
    args: &ReceiptVerifyArgs,
    stdin: &mut dyn Read,
    stdout: &mut dyn Write,
) -> anyhow::Result<()> {
    use anyhow::Context as _;
    if args.input.as_os_str() == "-" && args.proofs.as_ref().is_some_and(|p| p.as_os_str() == "-") {
        anyhow::bail!("the receipt and --proofs cannot both be read from stdin");
    }
    let seed = args
        .seed
        .as_deref()
        .map(|s| crate::parse_hash("--seed", s.trim()))
        .transpose()?;
    let input = crate::read_input_bytes(&args.input, stdin)?;
    let receipt = decode_receipt(&input, args.format)?;
    let proofs = match &args.proofs {
        Some(path) => {
            let text = crate::read_input_bytes(path, stdin)?;
            let text = std::str::from_utf8(&text)
                .map_err(|_| CliError::field("--proofs", "not UTF-8 text"))?;
            Some(parse_proofs(text).with_context(|| format!("proofs file {}", path.display()))?)
        }
        None => None,
    };
    let k = match seed {
        Some(_) => Some(audit_size(args, receipt.body.integrity.leaf_count)?),
        None => None,
    };
    let outcome = verify(&receipt, proofs, seed.zip(k), args.skew_ms);
    match outcome {
        Ok(report) => {
            if args.json {
                crate::write_json(stdout, &report)
            } else {
                writeln!(stdout, "{}", one_line(&report))?;
                stdout.flush()?;
                Ok(())
            }
        }
        Err(failure) => {
            if args.json {
                crate::write_json(stdout, &failure)?;
            }
            Err(
                CliError::VerificationFailed(format!("{}: {}", failure.rule, failure.message))
                    .into(),
            )
        }
    }
}

/// The sample size: `--sample-size`, or from the confidence and fake fraction.
fn audit_size(args: &ReceiptVerifyArgs, leaf_count: u64) -> Result<u64, CliError> {
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

/// Parses a proofs file (module docs).
///
/// # Errors
///
/// [`CliError`] naming the first bad field.
pub fn parse_proofs(text: &str) -> Result<Vec<LeafProof>, CliError> {
    let root: Value = serde_json::from_str(text)?;
    let mut top = Fields::new("", &root)?;
    let entries = top.array("proofs")?;
    top.finish()?;
    let mut out = Vec::with_capacity(entries.len());
    for (i, entry) in entries.iter().enumerate() {
        let mut f = Fields::new(format!("proofs[{i}]"), entry)?;
        let leaf_path = f.path_of("leaf_hex");
        let leaf_bytes = crate::parse_hex(&leaf_path, f.string("leaf_hex")?)?;
        let leaf = Leaf::from_bytes(&leaf_bytes)
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
        f.finish()?;
        out.push(LeafProof { leaf, proof });
    }
    Ok(out)
}

/// The rule name of a [`VerifyError`]: its variant, with the inner error for
/// `Signature` and `InvalidProof` (e.g. `Signature(Invalid)`, `InvalidProof(RootMismatch)`).
pub fn rule_name(e: &VerifyError) -> String {
    match e {
        VerifyError::Signature(s) => format!("Signature({s:?})"),
        VerifyError::InvalidProof { error, .. } => {
            format!("InvalidProof({})", crate::merkle::proof_error_name(*error))
        }
        other => {
            let debug = format!("{other:?}");
            let end = debug.find([' ', '{', '(']).unwrap_or(debug.len());
            debug[..end].to_owned()
        }
    }
}

fn failure(e: &VerifyError, extra: &str) -> FailureReport {
    FailureReport {
        valid: false,
        rule: rule_name(e),
        message: format!("{e}{extra}"),
    }
}

/// Verifies `receipt` with every registry check assumed to pass, then the proofs, if any:
/// against the sample of `audit = (seed, k)` when given, else each on its own.
///
/// # Errors
///
/// A [`FailureReport`] naming the first rule that fails.
pub fn verify(
    receipt: &Receipt,
    proofs: Option<Vec<LeafProof>>,
    audit: Option<([u8; 32], u64)>,
    skew_ms: u64,
) -> Result<VerifyReport, FailureReport> {
    let verifier = Verifier::new(&AssumeValid, &AssumeValid, &AssumeValid).with_skew_ms(skew_ms);
    verifier.verify(receipt).map_err(|e| failure(&e, ""))?;
    let b = &receipt.body;
    let root = b.integrity.merkle_root;
    let leaf_count = b.integrity.leaf_count;
    let mut audit_report = None;
    let mut proofs_verified = 0;
    match (proofs, audit) {
        (Some(mut proofs), Some((seed, k))) => {
            let sample = AuditSample::new(&seed, &root, leaf_count, k);
            // Answers may come in any order: put them in the sample's when they cover it.
            let position = |p: &LeafProof| {
                sample
                    .indices()
                    .iter()
                    .position(|i| *i == p.proof.leaf_index)
            };
            let mut covered: Vec<Option<usize>> = proofs.iter().map(position).collect();
            covered.sort_unstable();
            covered.dedup();
            if covered.len() == proofs.len() && covered.iter().all(Option::is_some) {
                proofs.sort_by_key(|p| position(p));
            }
            let extra = format!(" (audit sample: {:?})", sample.indices());
            verifier
                .verify_with_audit(receipt, &sample, &proofs)
                .map_err(|e| match e {
                    VerifyError::ProofCountMismatch { .. }
                    | VerifyError::ProofForWrongLeaf { .. } => failure(&e, &extra),
                    _ => failure(&e, ""),
                })?;
            proofs_verified = proofs.len();
            audit_report = Some(AuditReport {
                seed: hex::encode(seed),
                k: u64::try_from(sample.indices().len()).unwrap_or(u64::MAX),
                indices: sample.indices().to_vec(),
            });
        }
        (Some(proofs), None) => {
            check_proofs(receipt, &proofs).map_err(|e| failure(&e, ""))?;
            proofs_verified = proofs.len();
        }
        (None, _) => {}
    }
    Ok(VerifyReport {
        valid: true,
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
        proofs_verified,
        audit: audit_report,
        registry_checked: false,
    })
}

/// Each proof on its own, with the audit rules of docs/RECEIPTS.md §8 that do not need a
/// sample: the proof is for this receipt's tree, verifies against its root, and its leaf lies
/// in the window.
fn check_proofs(receipt: &Receipt, proofs: &[LeafProof]) -> Result<(), VerifyError> {
    proofs
        .iter()
        .try_for_each(|lp| tolldns_receipts::verify_leaf_proof(receipt, lp))
}

fn receipt_type_name(receipt: &Receipt) -> String {
    use tolldns_receipts::WireTag as _;
    receipt.body.receipt_type.name().to_owned()
}

fn one_line(r: &VerifyReport) -> String {
    let mut line = format!(
        "valid: {} receipt of operator {} ({}, backend {}) for window {} ({} s), {} leaves, root {}",
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
            "; {} proofs verified, exactly the audit sample of seed {} (k = {})",
            r.proofs_verified, a.seed, a.k
        )),
        None if r.proofs_verified > 0 => {
            line.push_str(&format!("; {} proofs verified", r.proofs_verified));
        }
        None => {}
    }
    line.push_str("; registry checks not performed");
    line
}
