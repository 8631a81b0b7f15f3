//! Command-line interface: `run` (the default), `init`, `key`.

use std::io::Write as _;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use tolldns_service::cli::InitArgs;

use crate::config::{Config, TEMPLATE};

/// The TollDNS watcher.
#[derive(Debug, Parser)]
#[command(name = "tolldns-watcher", version, about)]
pub struct Cli {
    /// What to do (default: `run`).
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Ingest receipts, audit, probe, publish epoch stats and report them to the chain.
    Run(RunArgs),
    /// Write a commented config.toml with every default.
    Init(InitArgs),
    /// Print the watcher's public key (generating the key file on first use): the key the
    /// score program's watcher list and the miners' `api.auditor_keys` must name.
    Key(RunArgs),
}

/// Options of `run` and `key`: `--config` and `--data-dir`.
pub use tolldns_service::cli::ConfigArgs as RunArgs;

/// Entry point of the binary: maps errors to exit codes (a broken pipe exits 0).
pub fn main() -> ExitCode {
    tolldns_service::cli::exit_code(dispatch(Cli::parse()))
}

fn dispatch(cli: Cli) -> anyhow::Result<()> {
    match cli.command.unwrap_or(Command::Run(RunArgs::default())) {
        Command::Run(args) => run(&args),
        Command::Init(init) => init.write(TEMPLATE),
        Command::Key(args) => key(&args),
    }
}

fn key(args: &RunArgs) -> anyhow::Result<()> {
    let config: Config = args.load()?;
    let path = config.key_path();
    let (key, created) = crate::keys::load_or_create(&path).context("loading the watcher key")?;
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "{}",
        crate::keys::public_key_string(&key.verifying_key())
    )?;
    if created {
        writeln!(out, "(generated {})", path.display())?;
    }
    Ok(())
}

fn run(args: &RunArgs) -> anyhow::Result<()> {
    let config: Config = args.load()?;
    let log = tolldns_service::cli::init_logging(config.log_level.filter());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(crate::node::run_with_rpc(
        config,
        Some(log),
        Some(args.clone()),
    ))
}
