//! The edge implemented with `tolldns-ingress`.

use std::sync::{Arc, Mutex};

use tolldns_ingress::{Edge, EdgeConfig, EdgeHandle, TicketPolicy};

use crate::edge::{BoxFuture, EdgeSetup, EdgeStarter, RunningEdge};

/// Starts the `tolldns-ingress` edge.
#[derive(Debug, Clone, Copy, Default)]
pub struct IngressStarter;

/// The ingress configuration for a miner configuration.
pub fn edge_config(setup: &EdgeSetup) -> EdgeConfig {
    let c = &setup.config;
    let mut e = EdgeConfig::default();
    e.listen.udp = vec![c.listen.udp];
    e.listen.tcp = vec![c.listen.tcp];
    e.listen.dot = vec![c.listen.dot];
    e.listen.doh = c.listen.doh.into_iter().collect();
    e.listen.doq = c.listen.doq.into_iter().collect();
    e.listen.doh_path.clone_from(&c.listen.doh_path);
    e.listen.udp_workers = c.edge.udp_workers;
    e.streams = c.edge.streams.clone();
    e.cache = c.edge.cache.clone();
    e.admission = c.edge.admission.clone();
    e.attack = c.edge.attack.clone();
    e.upstream = c.edge.upstream.clone();
    e.upstream.servers = setup.upstreams.iter().map(ToString::to_string).collect();
    e.receipts.enabled = setup.receipts.is_some();
    e.receipts.window_secs = c.receipts.window_secs;
    e.receipts.backend_id.clone_from(&c.receipts.backend_id);
    e.receipts.policy_version = c.receipts.policy_version;
    e.receipts.max_pending_leaves = c.receipts.pending_leaves();
    e.receipts.watermark_ms = c.receipts.watermark_ms;
    e.receipts.flush_interval_ms = c.receipts.flush_interval_ms;
    e.receipts.close_grace_ms = c.receipts.close_grace_ms;
    e.receipts
        .deployment_id
        .clone_from(&c.receipts.deployment_id);
    e.tickets = c.tickets.clone();
    if setup.receipts.is_none() {
        // Tickets pay for receipt leaves: without receipts there is nothing to pay for.
        for policy in [
            &mut e.tickets.udp,
            &mut e.tickets.tcp,
            &mut e.tickets.dot,
            &mut e.tickets.doh,
            &mut e.tickets.doq,
        ] {
            *policy = TicketPolicy::Off;
        }
    }
    e
}

/// A running ingress edge.
#[derive(Debug)]
struct Running {
    addrs: Vec<(&'static str, std::net::SocketAddr)>,
    handle: tokio::sync::Mutex<Option<EdgeHandle>>,
    /// (recorded, refused) as last seen.
    counts: Mutex<(u64, u64)>,
}

/// Leaves recorded and leaves refused when recorded (lost leaves but those of abandoned
/// windows, which were recorded).
fn counts_of(h: &EdgeHandle) -> (u64, u64) {
    let (recorded, _) = h.leaf_counts();
    let refused = h
        .leaf_losses()
        .map_or(0, |l| l.total().saturating_sub(l.abandoned));
    (recorded, refused)
}

impl Running {
    fn counts(&self) -> (u64, u64) {
        if let Ok(guard) = self.handle.try_lock() {
            if let Some(h) = guard.as_ref() {
                let c = counts_of(h);
                *self
                    .counts
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner) = c;
                return c;
            }
        }
        *self
            .counts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl RunningEdge for Running {
    fn local_addrs(&self) -> Vec<(&'static str, std::net::SocketAddr)> {
        self.addrs.clone()
    }

    fn leaves_recorded(&self) -> u64 {
        self.counts().0
    }

    fn leaves_refused(&self) -> u64 {
        self.counts().1
    }

    fn shutdown(&self) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            let handle = self.handle.lock().await.take();
            if let Some(h) = handle {
                *self
                    .counts
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner) = counts_of(&h);
                let leaves = h.shutdown().await;
                tracing::debug!(leaves, "edge stopped; last window closed");
            }
        })
    }
}

impl EdgeStarter for IngressStarter {
    fn start<'a>(
        &'a self,
        setup: EdgeSetup,
        registry: &'a mut prometheus_client::registry::Registry,
    ) -> BoxFuture<'a, anyhow::Result<Box<dyn RunningEdge>>> {
        Box::pin(async move {
            let config = edge_config(&setup);
            let handle = Edge::start(
                config,
                Some(Arc::clone(&setup.tls)),
                setup.receipts,
                registry,
            )
            .await?;
            let a = handle.local_addrs();
            let mut addrs = Vec::new();
            addrs.extend(a.udp.iter().map(|x| ("udp", *x)));
            addrs.extend(a.tcp.iter().map(|x| ("tcp", *x)));
            addrs.extend(a.dot.iter().map(|x| ("dot", *x)));
            addrs.extend(a.doh.iter().map(|x| ("doh", *x)));
            let counts = counts_of(&handle);
            Ok(Box::new(Running {
                addrs,
                handle: tokio::sync::Mutex::new(Some(handle)),
                counts: Mutex::new(counts),
            }) as Box<dyn RunningEdge>)
        })
    }
}
