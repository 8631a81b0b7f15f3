//! Integration tests of the `tolldns-miner` binary (one test binary, several modules).

mod cli;
mod crash;
mod e2e;
mod roles;
mod streaming;
mod support;
mod tickets;
mod tickets_e2e;
mod verify;
