//! SIGTERM and SIGINT stop the miner (after closing the current window into a signed batch);
//! SIGHUP reloads what can change safely (see [`crate::node`]). The handlers are
//! [`tolldns_service::signals`].

pub use tolldns_service::signals::{Signal, Signals};
