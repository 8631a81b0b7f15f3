//! The top-level command line (clap derive) and its dispatch: [`Cli`] assembles the
//! subcommand families, whose argument types live in their modules ([`crate::score`],
//! [`crate::keygen`], [`crate::receipt`] and [`crate::audit`], [`crate::merkle`],
//! [`crate::ticket`], [`crate::query`]), and [`run`] calls them. Dependencies point one way:
//! this module uses the command modules, never the reverse.

use std::io;

use clap::{Args, Parser, Subcommand};

use crate::audit::{ReceiptAuditArgs, ReceiptNameKeyArgs, ReceiptTicketArgs};
use crate::claim::ClaimArgs;
use crate::keygen::KeygenArgs;
use crate::merkle::MerkleArgs;
use crate::query::QueryArgs;
use crate::receipt::ReceiptVerifyArgs;
use crate::score::ScoreArgs;
use crate::ticket::TicketArgs;
use crate::{audit, claim, keygen, merkle, query, receipt, score, ticket};

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
or the miner refuses, and 2 when it cannot be reached; `claim` exits 1 when the program refuses \
the claim."
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
    /// Claims the wallet's reward for a finalized epoch from the score program.
    #[command(long_about = crate::claim::CLAIM_HELP)]
    Claim(ClaimArgs),
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

/// Runs a parsed command line, reading stdin and writing stdout as the command requires.
///
/// # Errors
///
/// Any error of the command; [`crate::error::exit_code`] says which exit code it maps to.
pub fn run(cli: &Cli) -> anyhow::Result<()> {
    match &cli.command {
        Command::Score(args) => score::run(args, &mut io::stdin().lock(), &mut io::stdout().lock()),
        Command::Keygen(args) => keygen::run(args, &mut io::stdout().lock()),
        Command::Receipt(args) => match &args.command {
            ReceiptCommand::Verify(a) => {
                receipt::verify_command(a, &mut io::stdin().lock(), &mut io::stdout().lock())
            }
            ReceiptCommand::Audit(a) => audit::audit(a, &mut io::stdout().lock()),
            ReceiptCommand::NameKey(a) => audit::name_key(a, &mut io::stdout().lock()),
            ReceiptCommand::Ticket(a) => audit::ticket(a, &mut io::stdout().lock()),
        },
        Command::Merkle(args) => {
            merkle::run(args, &mut io::stdin().lock(), &mut io::stdout().lock())
        }
        Command::Ticket(args) => ticket::run(args, &mut io::stdout().lock()),
        Command::Query(args) => query::run(args, &mut io::stdout().lock()),
        Command::Claim(args) => claim::run(args, &mut io::stdout().lock()),
    }
}
