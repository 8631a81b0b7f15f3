//! SIGTERM and SIGINT stop the issuer; SIGHUP reloads its keys (see [`crate::node`]). The
//! handlers are [`tolldns_service::signals`].

pub use tolldns_service::signals::{Signal, Signals};
