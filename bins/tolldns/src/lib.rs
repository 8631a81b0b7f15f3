//! Library behind the `tolldns` command-line tool.
//!
//! The binary (`src/main.rs`) parses a [`Cli`], calls [`run`] and maps the error to an exit
//! code with [`error::exit_code`]. Each subcommand family is a module that owns its clap
//! argument types and its `run` function(s); [`cli`] only assembles the top-level parser and
//! dispatches, so dependencies point one way: `cli` → command modules → shared helpers
//! (`error`, `json`, `http`, `dns`, [`tokens`], and the input/output helpers of this file).
//! Add new families the same way: a module, a variant of [`cli::Command`], a match arm in
//! [`cli::run`].
//!
//! - [`score`]: `tolldns score epoch --input FILE` computes an epoch's scores and rewards
//!   with `tolldns-score`.
//! - [`keygen`]: `tolldns keygen` writes an operator key file, `tolldns keygen --pubkey FILE`
//!   prints its public key; the key-file format and its permission rule are
//!   `tolldns_service::keyfile`'s (shared with the miner).
//! - [`receipt`]: `tolldns receipt verify` checks a batch receipt (v1 or v2) with
//!   `tolldns-receipts`, optionally with sampled leaves, their proofs and neighbours, and an
//!   audit seed; [`audit`]: `tolldns receipt audit|name-key|ticket` ask a miner's audit API,
//!   signed as an auditor (`tolldns_service::auditor`), and check the answers.
//! - [`merkle`]: `tolldns merkle root|proof|verify` over hex leaves (RFC 6962).
//! - [`ticket`]: `tolldns ticket fetch` buys toll tickets (Privacy Pass tokens) from an
//!   issuer into a tokens file ([`tokens`] holds its format), `tolldns ticket show` lists one.
//! - [`claim`]: `tolldns claim` claims a miner's epoch reward from the score program through
//!   a Solana JSON-RPC node (`tolldns-chain`).
//! - [`query`]: `tolldns query` sends DNS queries over UDP, TCP, DoT or DoH, paying with a
//!   token or a session ticket. Its DNS messages are `dns`'s, its small HTTP client and TLS
//!   set-up `http`'s (the `--ca` roots are loaded by `tolldns_service::tls`).
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod audit;
pub mod claim;
pub mod cli;
mod dns;
pub mod error;
mod http;
mod json;
pub mod keygen;
pub mod merkle;
pub mod query;
pub mod receipt;
pub mod score;
pub mod ticket;
pub mod tokens;

use std::io::{self, Read, Write};

pub use cli::{Cli, run};

/// The single-threaded async runtime the network commands run on.
pub(crate) fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    use anyhow::Context as _;
    tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        .build()
        .context("starting the async runtime")
}

/// `text` with control characters escaped (`\n`, `\u{1b}`, …): safe to print to a terminal
/// whatever a server sent.
pub(crate) fn printable(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// Reads a whole input file, `-` meaning `stdin`.
pub(crate) fn read_input(path: &std::path::Path, stdin: &mut dyn Read) -> anyhow::Result<String> {
    use anyhow::Context as _;
    let mut text = String::new();
    if path.as_os_str() == "-" {
        stdin
            .read_to_string(&mut text)
            .context("reading the input from stdin")?;
    } else {
        text = std::fs::read_to_string(path)
            .with_context(|| format!("reading the input file {}", path.display()))?;
    }
    Ok(text)
}

/// The longest input file read as bytes (a receipt, a proofs file): 64 MiB.
pub(crate) const MAX_INPUT_LEN: u64 = 64 << 20;

/// Reads a whole input file as bytes, `-` meaning `stdin`, refusing more than
/// [`MAX_INPUT_LEN`] bytes.
pub(crate) fn read_input_bytes(
    path: &std::path::Path,
    stdin: &mut dyn Read,
) -> anyhow::Result<Vec<u8>> {
    use anyhow::Context as _;
    let mut bytes = Vec::new();
    let name = if path.as_os_str() == "-" {
        stdin
            .take(MAX_INPUT_LEN + 1)
            .read_to_end(&mut bytes)
            .context("reading the input from stdin")?;
        "stdin".to_owned()
    } else {
        let file = std::fs::File::open(path)
            .with_context(|| format!("reading the input file {}", path.display()))?;
        file.take(MAX_INPUT_LEN + 1)
            .read_to_end(&mut bytes)
            .with_context(|| format!("reading the input file {}", path.display()))?;
        path.display().to_string()
    };
    if bytes.len() as u64 > MAX_INPUT_LEN {
        anyhow::bail!("{name}: larger than {MAX_INPUT_LEN} bytes");
    }
    Ok(bytes)
}

/// Decodes hex text (either case); `what` names the value in the error.
pub(crate) fn parse_hex(what: &str, text: &str) -> Result<Vec<u8>, error::CliError> {
    hex::decode(text).map_err(|e| error::CliError::field(what, format!("{text:?} is not hex: {e}")))
}

/// Decodes exactly 32 bytes of hex (64 characters, either case); `what` names the value.
pub(crate) fn parse_hash(what: &str, text: &str) -> Result<[u8; 32], error::CliError> {
    let mut out = [0u8; 32];
    hex::decode_to_slice(text, &mut out)
        .map_err(|_| error::CliError::field(what, format!("{text:?} is not 64 hex characters")))?;
    Ok(out)
}

/// Writes `value` as pretty JSON followed by a newline, and flushes.
pub(crate) fn write_json(out: &mut dyn Write, value: &impl serde::Serialize) -> anyhow::Result<()> {
    serde_json::to_writer_pretty(&mut *out, value).map_err(io::Error::from)?;
    out.write_all(b"\n")?;
    out.flush()?;
    Ok(())
}
