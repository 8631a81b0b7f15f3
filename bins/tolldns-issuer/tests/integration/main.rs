//! Integration tests of the `tolldns-issuer` binary (one test binary, several modules): the
//! real binary on an ephemeral loopback port, in a temporary data directory.

mod cli;
mod issuance;
mod support;
mod tls;
