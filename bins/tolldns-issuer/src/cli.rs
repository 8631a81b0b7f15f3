//! Command-line interface: `run`, `init`, `credit`, `balance`, `chain-sync`, `key show`,
//! `key rotate`.
//!
//! Exit codes: 0 on success (and on a broken pipe), 1 when the command fails, 2 for usage
//! errors (including a `--buyer` that is not a base58 ed25519 public key).

use std::io::Write as _;
use std::net::SocketAddr;
use std::process::ExitCode;

use anyhow::Context as _;
use base64::Engine as _;
use clap::{Parser, Subcommand};
use tolldns_service::cli::InitArgs;

use crate::admin::{AdminReply, AdminRequest};
use crate::chain::ChainClient;
use crate::config::{Config, TEMPLATE};
use crate::keys::KeyStore;
use crate::ledger::{Buyer, LedgerError, PrepaidLedger, parse_buyer};
use crate::node::now_unix_s;

/// The TollDNS toll-ticket issuer (Privacy Pass, RFC 9578 token type 0x0002).
#[derive(Debug, Parser)]
#[command(name = "tolldns-issuer", version, about)]
pub struct Cli {
    /// What to do (default: `run`).
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the issuer directory and token issuance over HTTP.
    Run(RunArgs),
    /// Write a commented config.toml with every default.
    Init(InitArgs),
    /// Add prepaid tokens to a buyer's balance in the ledger (works while `run` serves).
    Credit {
        #[command(flatten)]
        common: CommonArgs,
        /// The buyer's wallet public key (base58 ed25519, as in its purchase header).
        #[arg(long, value_parser = parse_buyer)]
        buyer: Buyer,
        /// How many tokens.
        #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
        tokens: u64,
    },
    /// Print a buyer's remaining prepaid tokens.
    Balance {
        #[command(flatten)]
        common: CommonArgs,
        /// The buyer's wallet public key (base58 ed25519).
        #[arg(long, value_parser = parse_buyer)]
        buyer: Buyer,
    },
    /// Credit buyers with their on-chain ticket purchases once, now (needs `[chain]`; works
    /// while `run` serves).
    ChainSync(CommonArgs),
    /// Show or rotate the issuer keys.
    Key {
        /// What to do with the keys.
        #[command(subcommand)]
        command: KeyCommand,
    },
}

/// `key` subcommands.
#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    /// Print every published key: its key id (hex) and its base64url SPKI (the directory's
    /// `token-key`), the current key first.
    Show(CommonArgs),
    /// Generate a new current key; the previous one stays published from `issuer-keys/`.
    /// A running issuer picks it up on SIGHUP or restart.
    Rotate(CommonArgs),
}

/// Where the configuration and the data are: `--config` and `--data-dir`.
pub use tolldns_service::cli::ConfigArgs as CommonArgs;

/// Options of `run`.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct RunArgs {
    #[command(flatten)]
    common: CommonArgs,
    /// Listening address (overrides `listen`); port 0 picks a free port.
    #[arg(long)]
    pub listen: Option<SocketAddr>,
}

/// Entry point of the binary: maps errors to exit codes (a broken pipe exits 0).
pub fn main() -> ExitCode {
    tolldns_service::cli::exit_code(dispatch(Cli::parse()))
}

fn dispatch(cli: Cli) -> anyhow::Result<()> {
    match cli.command.unwrap_or(Command::Run(RunArgs::default())) {
        Command::Run(args) => run(&args),
        Command::Init(init) => init.write(TEMPLATE),
        Command::Credit {
            common,
            buyer,
            tokens,
        } => credit(&common, buyer, tokens),
        Command::Balance { common, buyer } => balance(&common, buyer),
        Command::ChainSync(common) => chain_sync(&common),
        Command::Key {
            command: KeyCommand::Show(common),
        } => key_show(&common),
        Command::Key {
            command: KeyCommand::Rotate(common),
        } => key_rotate(&common),
    }
}

/// The ledger of `config.data_dir` for one command: reached through the admin socket of the
/// issuer serving it, or opened (once, then kept for the command's further requests) when no
/// issuer runs.
struct LedgerClient<'a> {
    config: &'a Config,
    opened: Option<PrepaidLedger>,
}

impl<'a> LedgerClient<'a> {
    fn new(config: &'a Config) -> anyhow::Result<Self> {
        crate::keys::create_private_dir(&config.data_dir)
            .with_context(|| format!("creating data directory {}", config.data_dir.display()))?;
        Ok(Self {
            config,
            opened: None,
        })
    }

    /// Carries out `request`; an error reply is an error.
    fn request(&mut self, request: AdminRequest) -> anyhow::Result<AdminReply> {
        let reply = match &self.opened {
            Some(ledger) => request.apply(ledger),
            None => self.first_request(request)?,
        };
        match reply {
            AdminReply::Error(message) => anyhow::bail!("{message}"),
            reply => Ok(reply),
        }
    }

    fn first_request(&mut self, request: AdminRequest) -> anyhow::Result<AdminReply> {
        let path = self.config.ledger_path();
        // An issuer that is starting owns the ledger a moment before its admin socket listens.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            #[cfg(unix)]
            {
                let socket = self.config.data_dir.join(crate::admin::ADMIN_SOCKET);
                if let Some(reply) = crate::admin::request(&socket, &request)
                    .with_context(|| format!("asking the running issuer at {}", socket.display()))?
                {
                    return Ok(reply);
                }
            }
            match PrepaidLedger::open(&path) {
                Ok(ledger) => {
                    let reply = request.apply(&ledger);
                    self.opened = Some(ledger);
                    return Ok(reply);
                }
                Err(LedgerError::InUse { .. }) if std::time::Instant::now() < deadline => {
                    std::thread::sleep(std::time::Duration::from_millis(100));
                }
                Err(e) => {
                    return Err(e)
                        .with_context(|| format!("opening the prepaid ledger {}", path.display()));
                }
            }
        }
    }
}

/// Carries out `request` through the admin socket of the issuer serving `config.data_dir`,
/// or on the ledger file when no issuer runs. Returns the balance after it.
fn ledger_request(config: &Config, request: AdminRequest) -> anyhow::Result<Option<u64>> {
    match LedgerClient::new(config)?.request(request)? {
        AdminReply::Balance(b) => Ok(b),
        other => anyhow::bail!("unexpected reply {other:?}"),
    }
}

fn credit(common: &CommonArgs, buyer: Buyer, tokens: u64) -> anyhow::Result<()> {
    let config: Config = common.load()?;
    let balance = ledger_request(&config, AdminRequest::Credit { buyer, tokens })
        .context("crediting the buyer")?
        .unwrap_or(tokens);
    writeln!(
        std::io::stdout(),
        "credited {tokens} tokens to {buyer}; balance {balance}"
    )?;
    Ok(())
}

fn balance(common: &CommonArgs, buyer: Buyer) -> anyhow::Result<()> {
    let config: Config = common.load()?;
    let line = match ledger_request(&config, AdminRequest::Balance { buyer })
        .context("reading the balance")?
    {
        Some(n) => format!("{buyer} {n} tokens"),
        None => format!("{buyer} 0 tokens (never credited)"),
    };
    writeln!(std::io::stdout(), "{line}")?;
    Ok(())
}

fn chain_sync(common: &CommonArgs) -> anyhow::Result<()> {
    let config: Config = common.load()?;
    let chain = config.chain.as_ref().context(
        "chain-sync needs a [chain] section (rpc_url, issuer_wallet) in the configuration (--config)",
    )?;
    let client = ChainClient::new(chain)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let fetched = runtime
        .block_on(client.fetch())
        .with_context(|| format!("reading ticket purchases from {}", client.origin()))?;
    drop(runtime);
    let mut ledger = LedgerClient::new(&config)?;
    let (mut buyers_credited, mut tickets) = (0usize, 0u64);
    for q in &fetched.quotas {
        let buyer = Buyer(q.buyer);
        let request = AdminRequest::ChainQuota {
            issuer_wallet: Buyer(q.issuer),
            buyer,
            tickets_bought: q.tickets_bought,
        };
        match ledger
            .request(request)
            .with_context(|| format!("crediting {buyer} from its on-chain quota"))?
        {
            AdminReply::Credited(0) => {}
            AdminReply::Credited(n) => {
                buyers_credited += 1;
                tickets += n;
            }
            other => anyhow::bail!("unexpected reply {other:?}"),
        }
    }
    let mut out = std::io::stdout().lock();
    for reason in &fetched.skipped {
        writeln!(out, "skipped an account: {reason}")?;
    }
    writeln!(
        out,
        "chain sync: {} quota accounts, {} skipped; credited {tickets} tickets to {buyers_credited} buyers",
        fetched.quotas.len(),
        fetched.skipped.len(),
    )?;
    Ok(())
}

fn key_show(common: &CommonArgs) -> anyhow::Result<()> {
    let config: Config = common.load()?;
    let keys = KeyStore::new(&config.data_dir)
        .load(now_unix_s())
        .context("loading the issuer keys")?;
    let mut out = std::io::stdout().lock();
    for (i, k) in keys.iter().enumerate() {
        writeln!(
            out,
            "key id {} ({}, not-before {})",
            hex::encode(k.key.public().key_id()),
            if i == 0 { "current" } else { "retired" },
            k.not_before
        )?;
        writeln!(
            out,
            "token-key {}",
            base64::engine::general_purpose::URL_SAFE.encode(k.key.public().spki())
        )?;
    }
    Ok(())
}

fn key_rotate(common: &CommonArgs) -> anyhow::Result<()> {
    let config: Config = common.load()?;
    crate::keys::create_private_dir(&config.data_dir)
        .with_context(|| format!("creating data directory {}", config.data_dir.display()))?;
    let store = KeyStore::new(&config.data_dir);
    let rotation = store
        .rotate(config.key_bits, now_unix_s())
        .context("rotating the issuer key")?;
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "new current key id {} (not-before {})",
        hex::encode(rotation.current.key.public().key_id()),
        rotation.current.not_before
    )?;
    if let Some((old, path)) = &rotation.retired {
        writeln!(
            out,
            "retired key id {} stays published from {}",
            hex::encode(old.key.public().key_id()),
            path.display()
        )?;
    }
    writeln!(
        out,
        "a running issuer publishes the new key after SIGHUP or a restart"
    )?;
    Ok(())
}

fn run(args: &RunArgs) -> anyhow::Result<()> {
    let mut config: Config = args.common.load()?;
    if let Some(listen) = args.listen {
        config.listen = listen;
    }
    let _ = tolldns_service::cli::init_logging(config.log_level.filter());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(crate::node::run(config, args.common.config.clone()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments_parse() {
        use clap::CommandFactory as _;
        Cli::command().debug_assert();
        let cli =
            Cli::try_parse_from(["tolldns-issuer", "credit", "--buyer", "x", "--tokens", "1"]);
        assert_eq!(cli.unwrap_err().exit_code(), 2);
        let cli =
            Cli::try_parse_from(["tolldns-issuer", "run", "--listen", "127.0.0.1:0"]).unwrap();
        assert!(matches!(
            cli.command,
            Some(Command::Run(RunArgs {
                listen: Some(_),
                ..
            }))
        ));
        let cli =
            Cli::try_parse_from(["tolldns-issuer", "chain-sync", "--config", "c.toml"]).unwrap();
        assert!(matches!(cli.command, Some(Command::ChainSync(_))));
    }
}
