//! Test support for the TollDNS crates: never a dependency of a shipped crate or binary, only of
//! tests, examples and benches (`publish = false`).
//!
//! - [`TestServer`]: an in-process authoritative DNS server on loopback answering a small
//!   [`TestZone`] over UDP, TCP, DoT and DoH, with query counters, a query log and failure
//!   [`Mode`]s, to stand in for upstreams and authoritatives.
//! - [`TestCert`]: a throwaway CA and a server certificate it signed, with rustls client and
//!   server configurations.
//! - [`EdgeHarness`]: a real `tolldns-ingress` edge on `127.0.0.1` with the listeners a test
//!   asks for, in front of test servers, with its certificate, receipt batches and metrics; and
//!   the small wire helpers ([`query`], [`framed`]) the edge tests share.
//! - [`rfc9578_issuer_key`] and [`issue_token`]: toll-ticket tokens for edge tests.
//!
//! Everything binds OS-assigned loopback ports, so tests run in parallel. Helpers panic on
//! invalid literal input (a bad name in a zone builder call); nothing they receive from the
//! network can make them panic.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod edge;
mod server;
mod tickets;

pub use edge::{
    EdgeHarness, EdgeHarnessBuilder, HARNESS_NAME_KEY, HARNESS_SIGNING_SEED, HarnessError, framed,
    query,
};
pub use server::{
    Mode, ReceivedQuery, TEST_NEGATIVE_TTL, TEST_SERVER_NAME, TEST_TTL, TestCert, TestServer,
    TestZone, Transport,
};
pub use tickets::{TokenError, issue_token, rfc9578_issuer_key};
