//! The TollDNS toll-ticket issuer: serves the RFC 9578 issuer directory and Privacy Pass
//! issuance (token type 0x0002, blind RSA) over HTTP, and charges each token to a buyer's
//! prepaid balance.
//!
//! The binary (`tolldns-issuer`) only parses arguments and calls [`cli::main`]; everything
//! else is here:
//!
//! - [`config`]: the optional `config.toml`, its defaults and validation;
//! - [`keys`]: the issuer keys on disk (`issuer-key.pem`, retired keys in `issuer-keys/`),
//!   rotation, and owner-only files;
//! - [`ledger`]: [`PrepaidLedger`], the payment check; [`admin`]: the socket through which
//!   `credit`, `balance` and `chain-sync` reach the ledger of a running issuer;
//! - [`chain`]: the chain sync, which credits buyers with the tickets they bought on chain
//!   (the registry program's `TicketQuota` accounts, read over Solana JSON-RPC);
//! - [`server`]: the HTTP routes (directory, issuance, `/healthz`, `/metrics`);
//! - [`metrics`]: tokens issued, refusals by reason, chain syncs;
//! - [`tls`]: the optional TLS listener; [`node`]: the wiring; [`signals`]: SIGTERM, SIGINT,
//!   SIGHUP.
//!
//! # Payment
//!
//! Issuance is gated by a [`tolldns_tickets::PaymentCheck`]: [`PrepaidLedger`], a local
//! balance per buyer. Each issuance debits one token from the buyer named and authenticated
//! by the `tolldns-purchase` header. Buyers are credited two ways:
//!
//! - on chain: with `[chain]` the issuer checks the quota each buyer bought from it through
//!   the registry program (`buy_tickets`, recorded in the buyer's `TicketQuota` account at
//!   this issuer's `issuer_wallet`) every `sync_interval_secs` and credits what it has not
//!   credited before ([`chain`]); a purchase is credited by the one issuer it names;
//! - off chain: the operator sells tokens however it likes and credits buyers
//!   (`tolldns-issuer credit`).
//!
//! The HTTP layer does not know where a balance came from.
//!
//! ```
//! use std::sync::Arc;
//! use tolldns_issuer::ledger::PrepaidLedger;
//! use tolldns_tickets::{IssuerSecretKey, IssuerService, IssuingKey, PaymentCheck};
//!
//! let dir = std::env::temp_dir().join(format!("tolldns-issuer-doc-{}", std::process::id()));
//! std::fs::create_dir_all(&dir)?;
//! let ledger = PrepaidLedger::open(&dir.join("ledger.redb"))?;
//! let buyer = [7u8; 32];
//! ledger.credit(&buyer, 10)?;
//! let service = IssuerService::new(
//!     vec![IssuingKey { key: IssuerSecretKey::generate(2048)?, not_before: 0 }],
//!     "https://issuer.example/token-request".to_owned(),
//!     Arc::new(ledger) as Arc<dyn PaymentCheck>,
//! );
//! assert_eq!(service.directory().token_keys.len(), 1);
//! # std::fs::remove_dir_all(dir)?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Operator documentation: `bins/tolldns-issuer/README.md`.
//!
//! # Cargo features
//!
//! None.
#![forbid(unsafe_code)]

pub mod admin;
pub mod chain;
pub mod cli;
pub mod config;
pub mod keys;
pub mod ledger;
pub mod metrics;
pub mod node;
pub mod server;
pub mod signals;
pub mod tls;

pub use ledger::PrepaidLedger;
