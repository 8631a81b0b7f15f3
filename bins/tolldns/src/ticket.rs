//! `tolldns ticket fetch|show`: buying toll tickets (Privacy Pass tokens, RFC 9578 type
//! 0x0002) from an issuer and listing a tokens file ([`crate::tokens`] has the format).
//!
//! `fetch` GETs the issuer directory (`/.well-known/private-token-issuer-directory`), takes
//! its first type-2 key, and for each token blinds a request bound to
//! `TokenChallenge::deployment(issuer_name, deployment)`, POSTs it to `/token-request` with
//! the `tolldns-purchase` header signed by the wallet, finalizes the blind signature and adds
//! the token to the file, which is rewritten after every token: tokens paid for are never lost
//! to a later failure.

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use clap::{Args, Subcommand};
use serde::Serialize;
use tolldns_service::issuer_client::{IssuerClient, IssuerRefused};
use tolldns_tickets::IssuerPublicKey;

use crate::error::CliError;
use crate::http as http_client;
use crate::tokens::{StoredToken, Tokens};

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
    #[command(long_about = FETCH_HELP)]
    Fetch(TicketFetchArgs),
    /// Lists a tokens file: issuer, deployment, key id, and the ticket id of every token.
    #[command(long_about = SHOW_HELP)]
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

/// The long help of `tolldns ticket`.
pub const TICKET_HELP: &str = "\
Toll tickets are Privacy Pass tokens (RFC 9578, token type 0x0002: blind RSA) that pay for DNS \
queries at TollDNS edges. `ticket fetch` buys tokens from an issuer with a wallet's prepaid \
quota; the issuer signs them blindly, so it cannot link a token it issued to the queries it pays \
for. `ticket show` lists a tokens file. `tolldns query --tokens FILE` spends them: the edge \
redeems a token once and answers with a session ticket that later queries carry.

See `tolldns ticket fetch --help` for the tokens file format and `tolldns query --help` for how \
tickets travel with queries (and kdig/curl recipes).";

/// The long help of `tolldns ticket fetch`.
pub const FETCH_HELP: &str = "\
Buys --count tokens from the issuer at --issuer (an origin, http://HOST:PORT; https:// needs \
--ca FILE) and adds them to the tokens file --out, which is created if missing.

GETs the issuer directory (/.well-known/private-token-issuer-directory) and uses its first \
token-type 2 key. For each token: blinds a token request bound to the deployment challenge \
(issuer name --issuer-name, origin info --deployment: the values the edges are configured with), \
POSTs it to /token-request as application/private-token-request with a tolldns-purchase header \
signed by the wallet key (--wallet, a solana-keygen JSON file of mode 0600), finalizes the \
issuer's blind signature and checks it under the key. The file is rewritten after every token.

The tokens file is JSON, written owner-only (mode 0600) through a temporary file renamed over \
the old one; tokens are bearer credentials, keep them private:
  {\"issuer\": \"http://127.0.0.1:8080\",
   \"issuer_name\": \"issuer.example\", \"deployment\": \"tolldns-local\",
   \"token_key\": \"<base64url of the issuer key's SPKI>\",
   \"tokens\": [{\"token\": \"<base64url of the token>\", \"ticket_id\": \"<32 hex>\"},
              {\"token\": \"...\", \"ticket_id\": \"...\", \"used\": true}]}
ticket_id is SHA256(\"TOLLDNS-TICKET-V1\\0\" || token)[..16], what receipt leaves carry; used \
marks a token an edge accepted (tokens are single use). base64url is written padded and read \
padded or not. An existing file must hold tokens of the same key, issuer name and deployment.

An issuer that refuses prints its status and reason: 402 means the wallet bought no tickets or \
its quota is used up, 401 a purchase signature it does not accept, 503 payment records it cannot \
read (retry later).

Exit codes: 0 all tokens fetched, 1 the issuer refused (tokens fetched before are kept), 2 bad \
input (arguments, wallet or tokens file) or an issuer that cannot be reached or answers nonsense.";

/// The long help of `tolldns ticket show`.
pub const SHOW_HELP: &str = "\
Prints a tokens file (`tolldns ticket fetch --help` has the format): the issuer, issuer name, \
deployment, the issuer key id (SHA256 of its SPKI, hex), the token count and how many are \
unused, and each token's ticket id (marked `used` once an edge accepted it). The tokens \
themselves are never printed. --json prints {\"issuer\", \"issuer_name\", \"deployment\", \
\"key_id\", \"count\", \"unused\", \"tokens\": [{\"ticket_id\", \"used\"}]}.

Exit codes: 0 success, 2 bad input (unreadable or malformed tokens file).";

/// Runs `tolldns ticket …`.
///
/// # Errors
///
/// See [`fetch`] and [`show`].
pub fn run(args: &TicketArgs, stdout: &mut dyn Write) -> anyhow::Result<()> {
    match &args.command {
        TicketCommand::Fetch(args) => fetch(args, stdout),
        TicketCommand::Show(args) => show(args, stdout),
    }
}

/// `tolldns ticket fetch`.
///
/// # Errors
///
/// [`CliError::Refused`] when the issuer answers other than `200`; bad arguments, key and
/// tokens files; network and protocol errors.
pub fn fetch(args: &TicketFetchArgs, stdout: &mut dyn Write) -> anyhow::Result<()> {
    let origin = http_client::parse_origin("--issuer", &args.issuer)?;
    if args.issuer_name.is_empty() {
        return Err(CliError::field("--issuer-name", "must not be empty").into());
    }
    let wallet = tolldns_service::keyfile::load(&args.wallet)?;
    let existing = if args.out.exists() {
        Some(Tokens::load(&args.out)?)
    } else {
        None
    };
    let tls = match &args.ca {
        Some(_) if !origin.https => {
            return Err(CliError::field("--ca", "only for an https:// issuer").into());
        }
        Some(ca) => Some(http_client::client_config(ca, &[b"http/1.1"])?),
        None => None,
    };
    if origin.https && tls.is_none() {
        return Err(CliError::field(
            "--ca",
            "an https:// issuer needs --ca FILE (the PEM root its certificate chains to)",
        )
        .into());
    }
    if origin.https {
        http_client::server_name(&origin.host)?;
    }
    let runtime = crate::runtime()?;
    let issuer = IssuerClient::new(origin.clone(), tls, Duration::from_secs(args.timeout));
    runtime.block_on(async {
        let key = issuer.first_key().await.map_err(refused)?;
        let mut tokens = match existing {
            Some(t) => {
                check_compatible(&t, args, &key)?;
                t
            }
            None => Tokens::new(
                origin.to_string(),
                args.issuer_name.clone(),
                args.deployment.clone(),
                key.clone(),
            ),
        };
        let challenge = tokens.challenge();
        challenge
            .digest()
            .map_err(|e| CliError::field("--issuer-name", e.to_string()))?;
        let mut fetched = 0u32;
        for _ in 0..args.count {
            let token = issuer
                .buy(&key, &challenge, &wallet)
                .await
                .map_err(refused)
                .with_context(|| progress(fetched, args.count, &args.out))?;
            tokens.tokens.push(StoredToken::new(&token));
            tokens.save(&args.out)?;
            fetched += 1;
        }
        writeln!(
            stdout,
            "fetched {fetched} token{} from {origin} (key id {}) into {}: {} tokens, {} unused",
            if fetched == 1 { "" } else { "s" },
            tokens.key_id_hex(),
            args.out.display(),
            tokens.tokens.len(),
            tokens.unused()
        )?;
        stdout.flush()?;
        Ok(())
    })
}

/// Context for an error after `fetched` of `count` tokens.
fn progress(fetched: u32, count: u32, out: &std::path::Path) -> String {
    if fetched == 0 {
        format!("no token fetched of {count}")
    } else {
        format!(
            "{fetched} of {count} tokens fetched and saved in {}",
            out.display()
        )
    }
}

/// An issuer's refusal as [`CliError::Refused`] (exit code 1); other errors unchanged.
fn refused(e: anyhow::Error) -> anyhow::Error {
    match e.downcast::<IssuerRefused>() {
        Ok(r) => CliError::Refused(r.to_string()).into(),
        Err(e) => e,
    }
}

/// An existing tokens file must be for the same key and challenge.
fn check_compatible(
    tokens: &Tokens,
    args: &TicketFetchArgs,
    key: &IssuerPublicKey,
) -> Result<(), CliError> {
    let out = args.out.display();
    if tokens.issuer_name != args.issuer_name || tokens.deployment != args.deployment {
        return Err(CliError::field(
            "--out",
            format!(
                "{out} holds tokens for issuer name {:?}, deployment {:?}; write these to another file",
                tokens.issuer_name, tokens.deployment
            ),
        ));
    }
    if tokens.key.key_id() != key.key_id() {
        return Err(CliError::field(
            "--out",
            format!(
                "{out} holds tokens of issuer key {}, the issuer now signs with {}; write these to another file",
                tokens.key_id_hex(),
                hex::encode(key.key_id())
            ),
        ));
    }
    Ok(())
}

#[derive(Serialize)]
struct ShowJson<'a> {
    issuer: &'a str,
    issuer_name: &'a str,
    deployment: &'a str,
    key_id: String,
    count: usize,
    unused: usize,
    tokens: Vec<ShowToken>,
}

#[derive(Serialize)]
struct ShowToken {
    ticket_id: String,
    used: bool,
}

/// `tolldns ticket show`.
///
/// # Errors
///
/// When the file cannot be read or does not check; I/O errors on output.
pub fn show(args: &TicketShowArgs, stdout: &mut dyn Write) -> anyhow::Result<()> {
    let tokens = Tokens::load(&args.file)?;
    if args.json {
        let view = ShowJson {
            issuer: &tokens.issuer,
            issuer_name: &tokens.issuer_name,
            deployment: &tokens.deployment,
            key_id: tokens.key_id_hex(),
            count: tokens.tokens.len(),
            unused: tokens.unused(),
            tokens: tokens
                .tokens
                .iter()
                .map(|t| ShowToken {
                    ticket_id: hex::encode(t.ticket_id),
                    used: t.used,
                })
                .collect(),
        };
        return crate::write_json(stdout, &view);
    }
    writeln!(stdout, "issuer: {}", crate::printable(&tokens.issuer))?;
    writeln!(
        stdout,
        "issuer name: {}",
        crate::printable(&tokens.issuer_name)
    )?;
    writeln!(
        stdout,
        "deployment: {}",
        crate::printable(&tokens.deployment)
    )?;
    writeln!(stdout, "key id: {}", tokens.key_id_hex())?;
    writeln!(
        stdout,
        "tokens: {} ({} unused)",
        tokens.tokens.len(),
        tokens.unused()
    )?;
    for (i, t) in tokens.tokens.iter().enumerate() {
        let used = if t.used { " used" } else { "" };
        writeln!(stdout, "{i} {}{used}", hex::encode(t.ticket_id))?;
    }
    stdout.flush()?;
    Ok(())
}
