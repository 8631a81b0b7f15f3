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
    after_help = "Exit codes: 0 success, 1 verification failure, 2 bad input (including usage errors). \
`ticket fetch`, `query` and `receipt audit|name-key|ticket` also exit 1 when the issuer, the edge \
or the miner refuses, and 2 when it cannot be reached."
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
    /// Batch receipts: verification, and audits at a miner's audit API.
    Receipt(ReceiptArgs),
    /// RFC 6962 Merkle trees: roots, audit paths and their verification.
    #[command(
        long_about = "RFC 6962 Merkle trees (SHA-256), as receipts use them. Leaves are arbitrary \
    byte strings given in hex (upper or lower case); each is hashed as SHA256(0x00 || leaf), nodes as \
    SHA256(0x01 || left || right), the left subtree holding the largest power of two strictly below \
    the leaf count, no duplication of odd nodes. A receipt leaf is its canonical encoding: 71 bytes (142 hex \
    characters) in format v2, 69 bytes (138 hex characters) in v1. The root of no leaves is SHA256(\"\") = \
    e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855."
    )]
    Merkle(MerkleArgs),
    /// Toll tickets (Privacy Pass tokens): fetching them from an issuer, listing a tokens file.
    #[command(long_about = crate::ticket::TICKET_HELP)]
    Ticket(TicketArgs),
    /// Sends one DNS query (UDP, TCP, DoT or DoH) to an edge, optionally paying with a toll
    /// ticket.
    #[command(long_about = crate::query::QUERY_HELP)]
    Query(QueryArgs),
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
    /// Verifies a signed batch receipt (v1 or v2) and, optionally, sampled leaves and their
    /// proofs.
    #[command(long_about = crate::receipt::VERIFY_HELP)]
    Verify(ReceiptVerifyArgs),
    /// Audits a batch at a miner's audit API: fetches the receipt and the audit answer for a
    /// seed (signed as an auditor) and verifies both.
    #[command(long_about = crate::audit::AUDIT_HELP)]
    Audit(ReceiptAuditArgs),
    /// Fetches an epoch's name key from a miner, encrypted to the auditor key (HPKE), and
    /// checks it against its commitment.
    #[command(long_about = crate::audit::NAME_KEY_HELP)]
    NameKey(ReceiptNameKeyArgs),
    /// Fetches every leaf of a batch that carries one ticket, with proofs, and checks them.
    #[command(long_about = crate::audit::TICKET_LOOKUP_HELP)]
    Ticket(ReceiptTicketArgs),
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

/// Arguments of `tolldns ticket`.
#[derive(Debug, Args)]
pub struct TicketArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: TicketCommand,
}

/// Subcommands of `tolldns ticket`.
#[derive(Debug, Subcommand)]
pub enum TicketCommand {
    /// Buys tokens from an issuer (RFC 9578 issuance) and adds them to a tokens file.
    #[command(long_about = crate::ticket::FETCH_HELP)]
    Fetch(TicketFetchArgs),
    /// Lists a tokens file: issuer, deployment, key id, and the ticket id of every token.
    #[command(long_about = crate::ticket::SHOW_HELP)]
    Show(TicketShowArgs),
}

/// Arguments of `tolldns ticket fetch`.
#[derive(Debug, Args)]
pub struct TicketFetchArgs {
    /// The issuer's origin: `http://HOST:PORT` or `https://HOST:PORT` (no path).
    #[arg(long, value_name = "URL")]
    pub issuer: String,
    /// The wallet key file (ed25519, solana-keygen JSON, mode 0600) whose prepaid quota pays.
    #[arg(long, value_name = "FILE")]
    pub wallet: PathBuf,
    /// How many tokens to fetch.
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub count: u32,
    /// Issuer name of the deployment's token challenge (as the edges are configured).
    #[arg(long, value_name = "NAME")]
    pub issuer_name: String,
    /// Deployment name (`origin_info` of the token challenge).
    #[arg(long, value_name = "NAME")]
    pub deployment: String,
    /// The tokens file to add to; created (mode 0600) if missing.
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
    /// PEM file of the root certificate(s) an `https://` issuer's chain ends in.
    #[arg(long, value_name = "FILE")]
    pub ca: Option<PathBuf>,
    /// Seconds allowed for each HTTP exchange (connect, request, response).
    #[arg(long, value_name = "SECS", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub timeout: u64,
}

/// Arguments of `tolldns ticket show`.
#[derive(Debug, Args)]
pub struct TicketShowArgs {
    /// The tokens file.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// Print JSON: {"issuer", "issuer_name", "deployment", "key_id", "count", "unused",
    /// "tokens": [{"ticket_id", "used"}]} (never the tokens themselves).
    #[arg(long)]
    pub json: bool,
}

/// How `tolldns query` reaches the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Transport {
    /// DNS over UDP (default port 53).
    Udp,
    /// DNS over TCP (default port 53).
    Tcp,
    /// DNS over TLS, RFC 7858 (default port 853).
    Dot,
    /// DNS over HTTPS, RFC 8484: POST over HTTP/2 or HTTP/1.1 (default port 443).
    Doh,
}

/// Arguments of `tolldns query`.
#[derive(Debug, Args)]
pub struct QueryArgs {
    /// The server: `IP`, `IP:PORT`, `[IPv6]:PORT` or `HOST:PORT`; the port defaults to the
    /// transport's (53, 853, 443).
    #[arg(long, value_name = "ADDR")]
    pub server: String,
    /// Transport.
    #[arg(long, value_enum, default_value_t = Transport::Udp)]
    pub transport: Transport,
    /// DoT/DoH: the name the server's certificate must carry [default: localhost].
    #[arg(long, value_name = "NAME")]
    pub tls_name: Option<String>,
    /// DoT/DoH: PEM file of the root certificate(s) the server's chain ends in (required: no
    /// system roots are built in).
    #[arg(long, value_name = "FILE")]
    pub ca: Option<PathBuf>,
    /// DoH: the URL path of the DNS endpoint [default: /dns-query].
    #[arg(long, value_name = "PATH")]
    pub doh_path: Option<String>,
    /// Pay with a token from this tokens file (`tolldns ticket fetch`); the first unused one
    /// unless --index is given. It is marked used once the edge accepted it.
    #[arg(long, value_name = "FILE", conflicts_with = "session")]
    pub tokens: Option<PathBuf>,
    /// The index (from 0) of the token to present, even if it is marked used.
    #[arg(long, value_name = "I", requires = "tokens")]
    pub index: Option<usize>,
    /// Present this session ticket (32 hex characters, as printed after `session:`).
    #[arg(long, value_name = "HEX")]
    pub session: Option<String>,
    /// Send N queries, each after the first carrying the last session ticket received.
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub repeat: u32,
    /// Seconds to wait for each answer (including connection set-up).
    #[arg(long, value_name = "SECS", default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub timeout: u64,
    /// The name to query.
    #[arg(value_name = "NAME")]
    pub name: String,
    /// The record type: a mnemonic (A, AAAA, TXT, …) or a number.
    #[arg(value_name = "TYPE", default_value = "A")]
    pub rtype: String,
}
