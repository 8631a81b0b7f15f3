//! Command-line arguments (clap derive).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// TollDNS command-line tool for integrators and watchers.
///
/// Exit codes: 0 success, 1 verification failure, 2 bad input.
#[derive(Debug, Parser)]
#[command(name = "tolldns", version, about, long_about = None)]
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
