//! The TollDNS reference miner: a DNS edge (UDP, TCP, DoT, DoH) that signs one proof-of-serving
//! batch receipt per window, journals it durably, delivers it to watchers, and answers audits.
//!
//! The binary (`tolldns-miner`) only parses arguments and calls [`cli::main`]; everything else
//! is here:
//!
//! - [`config`]: `config.toml`, its defaults and validation;
//! - [`keys`]: key files (solana-keygen JSON, mode 0600);
//! - [`tls`]: the DoT/DoH certificate (self-signed on first start);
//! - [`journal`]: the redb receipt journal, outbox, name keys and redeemed toll tickets;
//! - [`agent`]: delivery of signed batches to watchers;
//! - [`audit_api`]: `/metrics`, `/healthz` and the audit API;
//! - [`metrics`]: the miner's Prometheus metrics;
//! - [`edge`] and [`ingress`]: the DNS edge behind a small trait, implemented with
//!   `tolldns-ingress`;
//! - [`node`]: the wiring; [`signals`]: SIGTERM/SIGINT/SIGHUP.
//!
//! Operator documentation: `docs/OPERATOR.md`.
#![forbid(unsafe_code)]

pub mod agent;
pub mod audit_api;
pub mod cli;
pub mod config;
pub mod edge;
pub mod ingress;
pub mod journal;
pub mod keys;
pub mod metrics;
pub mod node;
pub mod signals;
pub mod tls;

/// Wall-clock milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}
