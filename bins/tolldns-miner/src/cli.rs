//! Command-line interface: `run`, `init`, `register`.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;
use clap::{Parser, Subcommand};

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
    Init {
        /// Where to write it.
        #[arg(long, default_value = "config.toml")]
        config: PathBuf,
        /// Overwrite an existing file.
        #[arg(long)]
        force: bool,
    },
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

/// Options shared by `run` and `register`.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct RunArgs {
    /// Configuration file (default: built-in defaults).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Data directory (overrides `data_dir`).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
}

impl RunArgs {
    /// The configuration these options describe.
    ///
    /// # Errors
    ///
    /// The configuration error.
    pub fn load(&self) -> anyhow::Result<Config> {
        let mut config = match &self.config {
            Some(path) => Config::load(path)?,
            None => Config::default(),
        };
        if let Some(d) = &self.data_dir {
            config.data_dir.clone_from(d);
        }
        Ok(config)
    }
}

/// Entry point of the binary: maps errors to exit codes (a broken pipe exits 0).
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match dispatch(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

fn dispatch(cli: Cli) -> anyhow::Result<()> {
    match cli.command.unwrap_or(Command::Run(RunArgs::default())) {
        Command::Run(args) => run(&args),
        Command::Init { config, force } => init(&config, force),
        Command::Register { run, wallet } => register(&run, wallet.as_deref()),
    }
}

fn init(path: &Path, force: bool) -> anyhow::Result<()> {
    if path.exists() && !force {
        anyhow::bail!("{} exists; use --force to overwrite it", path.display());
    }
    std::fs::write(path, TEMPLATE).with_context(|| format!("writing {}", path.display()))?;
    writeln!(std::io::stdout(), "wrote {}", path.display())?;
    Ok(())
}

fn register(args: &RunArgs, wallet: Option<&Path>) -> anyhow::Result<()> {
    let config = args.load()?;
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
    writeln!(out, "  doh https://{}{}", l.doh, l.doh_path)?;
    writeln!(out, "  audit http://{}/v1/batches", config.api.listen)?;
    if [l.udp, l.tcp, l.dot, l.doh]
        .iter()
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
    let config = args.load()?;
    let log = init_logging(config.log_level);
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

fn init_logging(level: crate::config::LogLevel) -> crate::node::LogControl {
    use std::io::IsTerminal as _;
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;
    let (filter, handle) = tracing_subscriber::reload::Layer::new(level.filter());
    let _ = tracing_subscriber::registry()
        .with(filter)
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stdout)
                .with_ansi(std::io::stdout().is_terminal()),
        )
        .try_init();
    Arc::new(move |level| {
        let _ = handle.modify(|f| *f = level);
    })
}
