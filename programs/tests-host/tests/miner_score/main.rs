//! Host integration tests of the `tolldns-miner-score` program with the `tolldns-registry`
//! program: every instruction's success path and every error path, and the attacks of the
//! programs' review, on solana-program-test with both programs as native builtins and the real
//! SPL token program.

#![allow(deprecated)] // solana-program-test 3.x marks its API "agave-unstable-api"
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod attacks;
#[path = "../common/mod.rs"]
mod common;
mod flows;
mod harness;
mod vectors;
