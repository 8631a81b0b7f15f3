//! Errors of the edge.

use std::path::PathBuf;

use crate::receipts::ReceiptsError;
use crate::upstream::{ParseUpstreamError, UpstreamConfigError};

/// Why an edge could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EdgeError {
    /// An upstream string is malformed.
    #[error("bad upstream: {0}")]
    UpstreamSpec(#[source] ParseUpstreamError),
    /// The upstream pool refused its configuration.
    #[error("upstream configuration: {0}")]
    Upstream(#[source] UpstreamConfigError),
    /// A file could not be read.
    #[error("cannot read {path}: {source}")]
    File {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// TLS material is missing or unusable.
    #[error("TLS: {0}")]
    Tls(&'static str),
    /// The toll-ticket settings are unusable (the message names the setting).
    #[error("tickets: {0}")]
    Tickets(String),
    /// rustls refused the certificate or key.
    #[error(transparent)]
    Rustls(#[from] rustls::Error),
    /// A listener could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: std::net::SocketAddr,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A listener is configured for a protocol this build leaves out (a cargo feature is off).
    #[error("this build has no {protocol} support (feature {feature})")]
    Unsupported {
        /// The protocol, e.g. `DoH`.
        protocol: &'static str,
        /// The cargo feature of `tolldns-ingress` that adds it, e.g. `doh`.
        feature: &'static str,
    },
    /// The DoH path does not start with `/`.
    #[error("the DoH path must start with '/'")]
    DohPath,
    /// Receipt recording could not be set up.
    #[error(transparent)]
    Receipts(#[from] ReceiptsError),
}
