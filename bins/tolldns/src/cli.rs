//! Command-line arguments (clap derive).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// TollDNS command-line tool for integrators and watchers.
///
/// Exit codes: 0 success, 1 verification failure, 2 bad input.
#[derive(Debug, Parser)]
#[command(
    name = "tolldns",
    version,
    about,
    long_about = None,
    after_help = "Exit codes: 0 success, 1 verification failure, 2 bad input (including usage errors)."
)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Top-level subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Miner scores and epoch rewards (tolldns-score).
    Score(ScoreArgs),
    /// Generates an operator key file, or prints the public key of one.
    #[command(
        long_about = "Generates an ed25519 key from OS randomness and writes it in the Solana keypair \
    JSON format (as written by solana-keygen): a JSON array of 64 numbers, the 32-byte secret seed \
    followed by the 32-byte public key. The file is created with mode 0600 and an existing file is \
    never replaced without --force. Prints the base58 public key; the secret is never printed.\n\n\
    With --pubkey FILE, prints the base58 public key of an existing key file instead. A key file \
    that group or others can access (any of the mode bits 0077) is refused; fix it with \
    `chmod 600 FILE`.\n\n\
    Exit codes: 0 success, 2 bad input (unreadable, malformed or unprotected key file; existing \
    output file)."
    )]
    Keygen(KeygenArgs),
    /// Batch receipts: verification.
    Receipt(ReceiptArgs),
    /// RFC 6962 Merkle trees: roots, audit paths and their verification.
    #[command(
        long_about = "RFC 6962 Merkle trees (SHA-256), as receipts use them. Leaves are arbitrary \
    byte strings given in hex (upper or lower case); each is hashed as SHA256(0x00 || leaf), nodes as \
    SHA256(0x01 || left || right), the left subtree holding the largest power of two strictly below \
    the leaf count, no duplication of odd nodes. A receipt leaf is its 69-byte encoding (138 hex \
    characters). The root of no leaves is SHA256(\"\") = \
    e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855."
    )]
    Merkle(MerkleArgs),
}

/// Arguments of `tolldns score`.
#[derive(Debug, Args)]
pub struct ScoreArgs {
    /// What to compute.
    #[command(subcommand)]
    pub command: ScoreCommand,
}

/// Subcommands of `tolldns score`.
#[derive(Debug, Subcommand)]
pub enum ScoreCommand {
    /// Scores every miner of an epoch and allocates the pool; prints JSON.
    ///
    /// The input is JSON: {"config": {...}, "epoch_id", "pool", "miners": [{"miner", ...}]}
    /// (docs/SCORING.md). Integers may be JSON numbers or decimal strings.
    Epoch {
        /// Input JSON file, or `-` for stdin.
        #[arg(long, value_name = "FILE")]
        input: PathBuf,
    },
}

/// Arguments of `tolldns keygen`.
#[derive(Debug, Args)]
pub struct KeygenArgs {
    /// Where to write the new key file.
    #[arg(
        long,
        value_name = "FILE",
        default_value = "./tolldns-key.json",
        conflicts_with = "pubkey"
    )]
    pub out: PathBuf,
    /// Replace an existing key file (the old key is lost).
    #[arg(long, conflicts_with = "pubkey")]
    pub force: bool,
    /// Print the public key of this existing key file instead of generating one.
    #[arg(long, value_name = "FILE")]
    pub pubkey: Option<PathBuf>,
}

/// Arguments of `tolldns receipt`.
#[derive(Debug, Args)]
pub struct ReceiptArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: ReceiptCommand,
}

/// Subcommands of `tolldns receipt`.
#[derive(Debug, Subcommand)]
pub enum ReceiptCommand {
    /// Verifies a signed batch receipt and, optionally, sampled leaves and their proofs.
    #[command(long_about = crate::receipt::VERIFY_HELP)]
    Verify(ReceiptVerifyArgs),
}

/// How a receipt is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ReceiptFormat {
    /// JSON if the input starts with `{`, hex if it is only hex digits, raw Borsh otherwise.
    Auto,
    /// The canonical Borsh bytes, raw.
    Borsh,
    /// The canonical Borsh bytes as hex text (surrounding whitespace ignored).
    Hex,
    /// The JSON form (docs/RECEIPTS.md §9).
    Json,
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
    /// The verifier's 32-byte audit seed (64 hex characters): the proved indices must be
    /// exactly the audit sample this seed draws.
    #[arg(long, value_name = "HEX", requires = "proofs")]
    pub seed: Option<String>,
    /// Sample size parameter: probability of catching a batch with --fake-fraction fake leaves
    /// [default: 0.99].
    #[arg(
        long,
        value_name = "P",
        requires = "seed",
        conflicts_with = "sample_size"
    )]
    pub confidence: Option<f64>,
    /// Sample size parameter: fraction of fake leaves to detect [default: 0.10].
    #[arg(
        long,
        value_name = "F",
        requires = "seed",
        conflicts_with = "sample_size"
    )]
    pub fake_fraction: Option<f64>,
    /// Use this sample size k instead of computing it from --confidence and --fake-fraction
    /// (clamped to the leaf count).
    #[arg(long, value_name = "K", requires = "seed")]
    pub sample_size: Option<u64>,
    /// Tolerated clock skew of the receipt's timestamp_ms around its window, in milliseconds.
    #[arg(long, value_name = "N", default_value_t = 30_000)]
    pub skew_ms: u64,
    /// Print the result as JSON (also on verification failure) instead of one line.
    #[arg(long)]
    pub json: bool,
}

/// Arguments of `tolldns merkle`.
#[derive(Debug, Args)]
pub struct MerkleArgs {
    /// What to compute.
    #[command(subcommand)]
    pub command: MerkleCommand,
}

/// Subcommands of `tolldns merkle`.
#[derive(Debug, Subcommand)]
pub enum MerkleCommand {
    /// Prints the root (64 hex characters) of the tree over the leaves.
    #[command(
        long_about = "Prints the RFC 6962 root (64 hex characters) of the tree over the \
leaves, in order. Leaves are hex arguments or, when none are given, lines on stdin (blank lines \
ignored; an empty leaf can only be given as an empty argument, \"\"). No leaves: the root of the \
empty tree, SHA256(\"\").\n\nExit codes: 0 success, 2 bad input."
    )]
    Root {
        /// Print {"tree_size", "root"} as JSON.
        #[arg(long)]
        json: bool,
        /// Leaves, in hex; read from stdin when none are given.
        #[arg(value_name = "HEX_LEAF")]
        leaves: Vec<String>,
    },
    /// Prints the audit path of one leaf: one sibling hash per line, from the leaf level up.
    #[command(
        long_about = "Prints RFC 6962's audit path PATH(index, leaves) of one leaf: one \
sibling hash (64 hex characters) per line, from the leaf level up to the root's children (no \
lines for a one-leaf tree). With --json prints {\"index\", \"tree_size\", \"leaf_hash\", \"path\": \
[...], \"root\"}. Leaves are hex arguments or, when none are given, lines on stdin (blank lines \
ignored).\n\nExit codes: 0 success, 2 bad input (including an index outside the tree)."
    )]
    Proof {
        /// The leaf's zero-based index.
        #[arg(long, value_name = "N")]
        index: u64,
        /// Print the proof as JSON.
        #[arg(long)]
        json: bool,
        /// Leaves, in hex; read from stdin when none are given.
        #[arg(value_name = "HEX_LEAF")]
        leaves: Vec<String>,
    },
    /// Checks that a leaf is leaf N of a tree of M leaves with the given root.
    #[command(
        long_about = "Checks an RFC 6962 audit path (RFC 9162 §2.1.3.2): that the leaf \
(hex bytes, hashed as SHA256(0x00 || leaf)) is leaf --index of a tree of --size leaves whose root \
is --root, given the path's sibling hashes from the leaf level up.\n\nExit codes: 0 the proof \
verifies, 1 it does not (index outside the tree, path too long or too short, or another root), 2 \
bad input."
    )]
    Verify {
        /// The leaf's zero-based index.
        #[arg(long, value_name = "N")]
        index: u64,
        /// The tree's leaf count.
        #[arg(long, value_name = "M")]
        size: u64,
        /// The expected root (64 hex characters).
        #[arg(long, value_name = "HEX")]
        root: String,
        /// The leaf, in hex.
        #[arg(long, value_name = "HEX")]
        leaf: String,
        /// The audit path: sibling hashes (64 hex characters each), from the leaf level up.
        #[arg(value_name = "PATH")]
        path: Vec<String>,
    },
}
