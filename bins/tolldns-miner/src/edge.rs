//! The boundary between the node and the DNS edge that serves queries and signs batches.
//!
//! The node gives the edge its keys, its name keys (a [`NameKeyProvider`]) and a
//! [`ReceiptSink`](tolldns_ingress::ReceiptSink) (none of them when `receipts.enabled = false`: the edge then only answers
//! and caches); the edge answers queries, records one leaf per answer, streams each
//! window's leaves to the sink while the window is open (from a blocking thread), seals the
//! window into a signed receipt handed to the sink, and hands every toll-ticket token it
//! redeems to the sink (from the serving path). It reads the sink's redeemed set once when it
//! starts. [`crate::ingress`] implements it with `tolldns-ingress`.

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use tolldns_core::{NameKey, WindowId, WindowLen};
use tolldns_ingress::{NameKeyProvider, ReceiptsSetup};

use crate::journal::Journal;

/// A boxed future.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A running edge.
pub trait RunningEdge: Send + Sync {
    /// What it listens on: (transport, address).
    fn local_addrs(&self) -> Vec<(&'static str, SocketAddr)>;
    /// Leaves recorded since start (the journal counts the ones that never reach a batch).
    fn leaves_recorded(&self) -> u64;
    /// Leaves refused when they were to be recorded since start (never streamed to the sink:
    /// the journal counts them as lost).
    fn leaves_refused(&self) -> u64;
    /// Stops serving, streams the leaves still held and seals every open window into a signed
    /// receipt handed to the sink, and returns once that is done.
    /// Later calls return at once.
    fn shutdown(&self) -> BoxFuture<'_, ()>;
}

/// Everything an edge needs from the node.
pub struct EdgeSetup {
    /// The miner configuration.
    pub config: crate::config::Config,
    /// Upstream resolvers.
    pub upstreams: Vec<SocketAddr>,
    /// TLS for DoT and DoH.
    pub tls: Arc<rustls::ServerConfig>,
    /// The hot receipt-signing key, the name keys per epoch and the sink of the windows'
    /// leaves, their receipts and the redeemed tokens; `None` when receipts are off
    /// (`receipts.enabled = false`): no leaf is recorded and toll tickets are not looked at.
    pub receipts: Option<ReceiptsSetup>,
}

impl std::fmt::Debug for EdgeSetup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EdgeSetup")
            .field("upstreams", &self.upstreams)
            .field("receipts", &self.receipts)
            .finish_non_exhaustive()
    }
}

/// Starts an edge.
pub trait EdgeStarter: Send {
    /// Starts serving; metrics go into `registry`.
    fn start<'a>(
        &'a self,
        setup: EdgeSetup,
        registry: &'a mut prometheus_client::registry::Registry,
    ) -> BoxFuture<'a, anyhow::Result<Box<dyn RunningEdge>>>;
}

/// Name keys stored in the journal: epoch = window start (s) / `epoch_secs`; a key is created
/// and stored durably the first time its epoch is used, so that it can be revealed to auditors
/// later.
#[derive(Debug)]
pub struct JournalNameKeys {
    journal: Arc<Journal>,
    window_len: WindowLen,
    epoch_secs: u64,
    cache: Mutex<HashMap<u64, NameKey>>,
}

impl JournalNameKeys {
    /// A source over `journal`.
    pub fn new(journal: Arc<Journal>, window_len: WindowLen, epoch_secs: u64) -> Self {
        Self {
            journal,
            window_len,
            epoch_secs: epoch_secs.max(1),
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// The epoch of a window.
    pub fn epoch_of(&self, window: WindowId) -> u64 {
        window.start_ms(self.window_len).unwrap_or(u64::MAX) / 1000 / self.epoch_secs
    }

    /// The epoch containing a wall-clock time.
    pub fn epoch_at(&self, unix_ms: u64) -> u64 {
        unix_ms / 1000 / self.epoch_secs
    }

    /// The key of an epoch, creating it if needed.
    ///
    /// # Errors
    ///
    /// The journal's error.
    pub fn key_for_epoch(&self, epoch: u64) -> Result<NameKey, crate::journal::JournalError> {
        let mut cache = self
            .cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(k) = cache.get(&epoch) {
            return Ok(k.clone());
        }
        let k = self.journal.name_key(epoch)?;
        cache.retain(|e, _| e.saturating_add(2) >= epoch);
        cache.insert(epoch, k.clone());
        Ok(k)
    }
}

impl NameKeyProvider for JournalNameKeys {
    fn name_key(&self, window: WindowId) -> NameKey {
        let epoch = self.epoch_of(window);
        match self.key_for_epoch(epoch) {
            Ok(k) => k,
            Err(e) => {
                // Serving goes on; this epoch's key cannot be revealed later, so auditors
                // cannot check names for it. Logged loudly.
                tracing::error!(epoch, error = %e, "name key could not be stored; using an unstored key");
                let mut k = [0u8; 32];
                rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut k);
                let key = NameKey(k);
                self.cache
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .insert(epoch, key.clone());
                key
            }
        }
    }
}
