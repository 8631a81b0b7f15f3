//! The TollDNS watcher: the loop from a served query to a paid reward.
//!
//! Miners post every signed batch receipt to watchers; a watcher verifies each against the
//! registry read from the chain and stores it with its verdict and arrival time ([`ingest`],
//! [`server`]), audits accepted batches with a seed that post-dates them ([`audit`]), probes
//! every registered miner on every registered transport with probe tokens ([`probe`],
//! [`tokens`]), derives each miner's epoch stats from what it stored ([`stats`]), publishes
//! every input behind them as content-addressed JSON together with the `tolldns score epoch`
//! input ([`publish`]), and reports the stats to the score program, finalizing epochs when due
//! ([`settle`]).
//!
//! The binary (`tolldns-watcher`) only calls [`cli::main`]; everything else is here:
//!
//! - [`config`]: `config.toml`, its defaults and validation; [`keys`]: the watcher key;
//! - [`store`]: SQLite or PostgreSQL storage of every row the stats come from;
//! - [`registry`]: the chain registry snapshot (the verifier's registries);
//! - [`metrics`]: Prometheus metrics; [`node`]: the wiring and the worker loops.
//!
//! Operator documentation: `docs/WATCHER.md`.
#![forbid(unsafe_code)]

pub mod audit;
pub mod cli;
pub mod config;
pub mod ingest;
pub mod keys;
pub mod metrics;
pub mod node;
pub mod probe;
pub mod publish;
pub mod registry;
pub mod server;
pub mod settle;
pub mod stats;
pub mod store;
pub mod tokens;

/// Wall-clock milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}
