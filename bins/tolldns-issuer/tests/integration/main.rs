//! Integration tests of the `tolldns-issuer` binary (one test binary, several modules): the
//! real binary on an ephemeral loopback port, in a temporary data directory.

mod chain;
mod cli;
mod issuance;
mod rpc_double;
mod support;
mod ticket_quota_vector;
mod tls;
