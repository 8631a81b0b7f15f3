//! Integration tests of the edge with real clients on loopback and the `tolldns-testkit`
//! authoritative server as the upstream.

mod bad_input;
mod clients;
mod common;
mod edns_prefetch;
mod flood;
mod receipts;
mod tickets;
mod tools;
mod udp_batches;
