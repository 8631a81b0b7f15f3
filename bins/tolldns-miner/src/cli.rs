//! Command-line interface: `run`, `init`, `register`.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use tolldns_service::cli::InitArgs;

use crate::config::{Config, TEMPLATE};

/// The TollDNS reference miner.
#[derive(Debug, Parser)]
#[command(name = "tolldns-miner", version, about)]
pub struct Cli {
    /// What to do (default: `run`).
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve DNS, sign and journal receipts, deliver them to watchers, answer audits.
    Run(RunArgs),
    /// Write a commented config.toml with every default.
    Init(InitArgs),
    /// Print what to register on chain: the receipt-signing key (the wallet's delegate), the
    /// endpoints and, with `--wallet`, the wallet's public key.
    Register {
        #[command(flatten)]
        run: RunArgs,
        /// The wallet keypair file (solana-keygen JSON), only to print its public key.
        #[arg(long)]
        wallet: Option<PathBuf>,
    },
}

/// Options shared by `run` and `register`: `--config` and `--data-dir`.
pub use tolldns_service::cli::ConfigArgs as RunArgs;

/// Entry point of the binary: maps errors to exit codes (a broken pipe exits 0).
pub fn main() -> ExitCode {
    tolldns_service::cli::exit_code(dispatch(Cli::parse()))
}

fn dispatch(cli: Cli) -> anyhow::Result<()> {
    match cli.command.unwrap_or(Command::Run(RunArgs::default())) {
        Command::Run(args) => run(&args),
        Command::Init(init) => init.write(TEMPLATE),
        Command::Register { run, wallet } => register(&run, wallet.as_deref()),
    }
}

fn register(args: &RunArgs, wallet: Option<&Path>) -> anyhow::Result<()> {
    let config: Config = args.load()?;
    let key_path = config.signing_key_path();
    crate::keys::create_private_dir(&config.data_dir)
        .with_context(|| format!("creating data directory {}", config.data_dir.display()))?;
    let (key, created) = crate::keys::load_or_create_keypair(&key_path)
        .context("loading the receipt-signing key")?;
    let mut out = std::io::stdout().lock();
    let identity = crate::keys::public_key_string(&key.verifying_key());
    writeln!(out, "delegate (receipt-signing key): {identity}")?;
    writeln!(
        out,
        "  key file: {}{}",
        key_path.display(),
        if created { " (generated now)" } else { "" }
    )?;
    match wallet {
        Some(path) => {
            let w = crate::keys::load_keypair(path).context("reading the wallet key file")?;
            let pubkey = crate::keys::public_key_string(&w.verifying_key());
            drop(w);
            writeln!(out, "wallet (stake and payouts): {pubkey}")?;
        }
        None => writeln!(out, "wallet: pass --wallet FILE to print its public key")?,
    }
    writeln!(out, "role: EDGE_INGRESS (1)")?;
    writeln!(out, "backend_id: {}", config.receipts.backend_id)?;
    writeln!(out, "endpoints:")?;
    let l = &config.listen;
    writeln!(out, "  udp {}", l.udp)?;
    writeln!(out, "  tcp {}", l.tcp)?;
    writeln!(out, "  dot tls://{}", l.dot)?;
    if let Some(doh) = l.doh {
        writeln!(out, "  doh https://{doh}{}", l.doh_path)?;
    }
    writeln!(out, "  audit http://{}/v1/batches", config.api.listen)?;
    if [l.udp, l.tcp, l.dot]
        .into_iter()
        .chain(l.doh)
        .any(|a| a.ip().is_loopback())
    {
        writeln!(
            out,
            "note: loopback endpoints are not reachable by clients; set [listen] and register public addresses"
        )?;
    }
    writeln!(
        out,
        "The wallet signs the on-chain registration naming the delegate key above; the miner never loads the wallet key."
    )?;
    Ok(())
}

fn run(args: &RunArgs) -> anyhow::Result<()> {
    let config: Config = args.load()?;
    let log = tolldns_service::cli::init_logging(config.log_level.filter());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let options = crate::node::RunOptions {
        config,
        config_path: args.config.clone(),
        data_dir_override: args.data_dir.clone(),
        log: Some(log),
    };
    runtime.block_on(crate::node::run(options, &crate::ingress::IngressStarter))
}
