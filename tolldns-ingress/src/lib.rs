//! The TollDNS edge ingress: DNS over UDP, TCP (RFC 7766), TLS (RFC 7858), HTTPS (RFC 8484)
//! and QUIC (RFC 9250) in front of a packet cache and a pool of upstream resolvers, with admission
//! control, an attack-mode state machine, Prometheus metrics, and one proof-of-serving receipt
//! leaf per answered query, closed per window into ed25519-signed batch receipts.
//!
//! The entry point is [`Edge::start`] with an [`EdgeConfig`]; it returns an [`EdgeHandle`]
//! whose [`shutdown`](EdgeHandle::shutdown) stops accepting, drains queries in progress and
//! streams the last leaves and the last window's signed receipt to the [`ReceiptSink`].
//!
//! Data path: a listener reads a query, [`Engine::handle`] decides synchronously (sans-IO:
//! admission by source prefix, the minimal parse of header, question and EDNS, RFC 8482 for
//! ANY, a cache lookup that writes the answer with the query's ID and counted-down TTLs into a
//! per-task buffer) and either answers, drops, or forwards; a miss is resolved by the
//! [`upstream::UpstreamPool`] (query written and answer checked on the wire bytes), which
//! sends only to its configured allow-list, so the edge is never an open relay. After the
//! response is sent, [`Engine::complete`] records metrics and appends the fixed-size leaf.
//!
//! Toll tickets ([`TicketsConfig`], `docs/TICKETS.md`): a client presents a Privacy Pass token
//! once (DoH `Authorization: PrivateToken token=…`, or the EDNS option
//! [`wire::TOKEN_OPTION_CODE`] over UDP, TCP, DoT and DoQ); the edge verifies it, opens a session
//! with the deployment's query quota and answers with a 16-byte session ticket (DoH header
//! `TollDNS-Session`, or the EDNS option [`wire::TICKET_OPTION_CODE`]) that later queries carry
//! (DoH header `TollDNS-Ticket`, or the same option). Every leaf of a ticketed query carries
//! the token's ticket id. Each listener's [`TicketPolicy`] is `off`, `optional` or `required`.
//!
//! ```no_run
//! use std::sync::Arc;
//! use tolldns_core::NameKey;
//! use tolldns_ingress::{ChannelSink, Edge, EdgeConfig, ReceiptsSetup, StaticNameKey};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let mut config = EdgeConfig::default();
//! config.listen.udp = vec!["127.0.0.1:5400".parse()?];
//! config.listen.tcp = vec!["127.0.0.1:5400".parse()?];
//! config.upstream.servers = vec!["127.0.0.1:5301".to_owned()];
//!
//! let (sink, mut batches) = ChannelSink::new(16);
//! let receipts = ReceiptsSetup {
//!     signing_key: ed25519_dalek::SigningKey::from_bytes(&[7; 32]),
//!     name_keys: Arc::new(StaticNameKey(NameKey([9; 32]))),
//!     sink: Arc::new(sink),
//! };
//! let mut registry = prometheus_client::registry::Registry::default();
//! let edge = Edge::start(config, None, Some(receipts), &mut registry).await?;
//! println!("serving on {:?}", edge.local_addrs());
//!
//! // ... later:
//! edge.shutdown().await;
//! let last = batches.recv().await.expect("the last window is always delivered");
//! println!("{} leaves", last.receipt().body.integrity.leaf_count);
//! # Ok(()) }
//! ```
//!
//! The in-process authoritative test server, test certificates and the loopback edge harness
//! used by this crate's tests live in the `tolldns-testkit` crate (test support, not published).
//!
//! # Cargo features
//!
//! - `doh` (default): the DNS-over-HTTPS listener.
//! - `doq` (default): the DNS-over-QUIC listener (quinn).
//!
//! Without one, [`Edge::start`] refuses a configuration that lists addresses for it with
//! [`EdgeError::Unsupported`]. Small devices build without both (see `docs/DEVICES.md`).
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod admission;
mod attack;
pub mod clock;
mod config;
pub mod cookies;
#[cfg(feature = "doq")]
mod doq;
mod edge;
mod engine;
mod error;
pub mod metric_types;
mod metrics;
mod receipts;
mod rrl;
mod server;
mod tickets;
mod tls;
mod udp;
pub mod upstream;
pub mod wire;

pub use admission::{
    AdmissionConfig, Level, Limits, Prefix, PrefixLimiter, SweepReport, TokenBucket, Verdict,
};
pub use attack::{
    Assessment, AttackConfig, AttackFsm, Mode, ModeKnobs, Signals, Transition, assess,
};
pub use clock::{Clock, ManualClock, SystemClock};
pub use config::{
    CacheSettings, EdgeConfig, ListenConfig, StreamConfig, TlsFiles, UpstreamSettings,
};
#[cfg(feature = "doq")]
pub use doq::{DOQ_ALPN, DoqErrorCode};
pub use edge::{Edge, EdgeHandle, EdgeInputs, LocalAddrs};
pub use engine::{
    ANY_TTL, EDNS_UDP_SIZE, Engine, EngineConfig, Forward, MAX_MESSAGE, PrefetchSlot, Reply,
    Request, Step,
};
pub use error::EdgeError;
pub use metrics::{Decision, Metrics};
pub use receipts::{
    Answered, ChannelSink, LeafLosses, NameKeyProvider, PumpReport, ReceiptSink, ReceiptsConfig,
    ReceiptsError, ReceiptsSetup, Recorder, RedeemedToken, SignedBatch, SinkError, StaticNameKey,
};
pub use rrl::{LimitReason, ResponseAction, ResponseCategory, ResponseLimiter, UdpResponse};
pub use server::{TICKET_HEADER, parse_ticket};
pub use tickets::{Credential, TicketGate, TicketPolicy, TicketsConfig};
pub use tls::{DOH_ALPN, DOT_ALPN, server_config_from_files, server_config_from_pem};
