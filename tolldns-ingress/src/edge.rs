//! [`Edge`]: binds the listeners, wires cache, upstreams, admission and receipts together, and
//! runs until [`EdgeHandle::shutdown`].

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use prometheus_client::registry::Registry;
use rand::SeedableRng;
use rand::rngs::StdRng;
use rustls::ServerConfig;
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::{Semaphore, mpsc, watch};
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;
use tolldns_cache::Cache;

use crate::clock::{Clock, SystemClock};
use crate::config::EdgeConfig;
#[cfg(feature = "doq")]
use crate::doq;
use crate::engine::{Engine, EngineConfig};
use crate::error::EdgeError;
use crate::metrics::Metrics;
use crate::receipts::{ReceiptsSetup, Recorder};
#[cfg(feature = "doh")]
use crate::server::doh_listener;
use crate::server::{Shared, stream_listener, udp_worker};
use crate::tickets::TicketGate;
use crate::tls;
use crate::upstream::UpstreamPool;

/// The addresses an edge actually listens on (port 0 resolved).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LocalAddrs {
    /// UDP.
    pub udp: Vec<SocketAddr>,
    /// TCP.
    pub tcp: Vec<SocketAddr>,
    /// DoT.
    pub dot: Vec<SocketAddr>,
    /// DoH.
    pub doh: Vec<SocketAddr>,
    /// DoQ (UDP).
    pub doq: Vec<SocketAddr>,
}

/// The edge server. See the [crate documentation](crate) for an example.
#[derive(Debug)]
pub struct Edge;

/// The time and randomness an edge reads, given to [`Edge::start_with`]: every value of time
/// its logic uses (cache expiry, admission refills, attack mode, upstream round-trip times and
/// backoff, ticket session-key rotation, receipt windows) comes from `clock`. Timers that only
/// pace loops (the attack-mode tick, the receipt pump, upstream timeouts) stay on Tokio's.
#[derive(Debug, Clone)]
pub struct EdgeInputs {
    /// The clock (the system clock by default).
    pub clock: Arc<dyn Clock>,
    /// The seed of the upstream selector's RNG (its exploration share); `None` (the default)
    /// seeds it from the operating system.
    pub rng_seed: Option<u64>,
}

impl Default for EdgeInputs {
    fn default() -> Self {
        Self {
            clock: Arc::new(SystemClock),
            rng_seed: None,
        }
    }
}

impl EdgeInputs {
    /// `clock`, with an RNG seeded from the operating system.
    pub fn with_clock(clock: Arc<dyn Clock>) -> Self {
        Self {
            clock,
            rng_seed: None,
        }
    }

    fn rng(&self) -> StdRng {
        self.rng_seed
            .map_or_else(StdRng::from_entropy, StdRng::seed_from_u64)
    }
}

/// A running edge.
#[derive(Debug)]
pub struct EdgeHandle {
    addrs: LocalAddrs,
    shared: Arc<Shared>,
    stop: watch::Sender<bool>,
    listeners: Vec<JoinHandle<()>>,
    background: Vec<JoinHandle<()>>,
    drain_rx: mpsc::Receiver<()>,
    closer: Option<Arc<Recorder>>,
}

fn bind_udp(addr: SocketAddr, reuse_port: bool) -> std::io::Result<UdpSocket> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    #[cfg(unix)]
    if reuse_port {
        socket.set_reuse_port(true)?;
    }
    #[cfg(not(unix))]
    let _ = reuse_port;
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    // Larger buffers absorb bursts; the kernel caps them to its limits.
    let _ = socket.set_recv_buffer_size(4 << 20);
    let _ = socket.set_send_buffer_size(4 << 20);
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    UdpSocket::from_std(socket.into())
}

impl Edge {
    /// Start an edge: bind every listener of `config.listen`, start the upstream health checks,
    /// the attack-mode ticker and (with `receipts`) the receipt pump, and register the
    /// metrics into `registry`. It reads the system clock; see [`Edge::start_with`].
    ///
    /// `tls` is the rustls configuration for DoT, DoH and DoQ; without it, `config.tls` files
    /// are loaded when DoT, DoH or DoQ listeners are configured. ALPN is set per listener (`h2`,
    /// `http/1.1` for DoH, `doq` for DoQ, which also needs TLS 1.3 and gets no early data).
    ///
    /// # Errors
    ///
    /// [`EdgeError`] for an invalid configuration, unusable TLS material or an address that
    /// cannot be bound.
    pub async fn start(
        config: EdgeConfig,
        tls: Option<Arc<ServerConfig>>,
        receipts: Option<ReceiptsSetup>,
        registry: &mut Registry,
    ) -> Result<EdgeHandle, EdgeError> {
        Self::start_with(config, tls, receipts, registry, EdgeInputs::default()).await
    }

    /// [`start`](Self::start) an edge reading time from `inputs.clock` and drawing the upstream
    /// selector's randomness from `inputs.rng_seed`, so that tests drive time instead of
    /// sleeping.
    ///
    /// # Errors
    ///
    /// As [`start`](Self::start).
    pub async fn start_with(
        config: EdgeConfig,
        tls: Option<Arc<ServerConfig>>,
        receipts: Option<ReceiptsSetup>,
        registry: &mut Registry,
        inputs: EdgeInputs,
    ) -> Result<EdgeHandle, EdgeError> {
        let clock = Arc::clone(&inputs.clock);
        let metrics = Metrics::register(registry);
        if !config.listen.doh_path.starts_with('/') {
            return Err(EdgeError::DohPath);
        }
        if !cfg!(feature = "doh") && !config.listen.doh.is_empty() {
            return Err(EdgeError::Unsupported {
                protocol: "DoH",
                feature: "doh",
            });
        }
        if !cfg!(feature = "doq") && !config.listen.doq.is_empty() {
            return Err(EdgeError::Unsupported {
                protocol: "DoQ",
                feature: "doq",
            });
        }
        let pool = UpstreamPool::with_clock_and_rng(
            config.upstream.to_upstream_config()?,
            Arc::clone(&clock),
            inputs.rng(),
        )
        .map_err(EdgeError::Upstream)?;
        pool.attach_metrics(metrics.clone());
        let workers = match config.listen.udp_workers {
            0 => std::thread::available_parallelism().map_or(1, usize::from),
            n => n,
        }
        .clamp(1, 64);
        let recorder = match receipts {
            Some(setup) if config.receipts.enabled => Some(Arc::new(Recorder::new(
                &config.receipts,
                setup,
                workers.saturating_mul(2).max(4),
            )?)),
            _ => None,
        };
        let needs_tls = !config.listen.dot.is_empty()
            || !config.listen.doh.is_empty()
            || !config.listen.doq.is_empty();
        let tls = match (tls, needs_tls) {
            (Some(t), _) => Some(t),
            (None, true) => match (&config.tls.cert, &config.tls.key) {
                (Some(c), Some(k)) => Some(tls::server_config_from_files(c, k)?),
                _ => {
                    return Err(EdgeError::Tls(
                        "DoT/DoH/DoQ listeners need a certificate and key",
                    ));
                }
            },
            (None, false) => None,
        };
        let cache = Arc::new(Cache::new(config.cache.to_cache_config()));
        let now = clock.now();
        let mut engine = Engine::new(
            EngineConfig {
                admission: config.admission.clone(),
                attack: config.attack.clone(),
                max_prefetches: config.cache.max_prefetches,
            },
            Arc::clone(&cache),
            metrics,
            recorder.clone(),
            now,
        )
        .with_clock(Arc::clone(&clock));
        if config.tickets.enabled() {
            let gate = TicketGate::new(&config.tickets, now)?.with_clock(Arc::clone(&clock));
            if let Some(r) = &recorder {
                for (id, not_after) in r.redeemed_before() {
                    gate.redeemer().restore_redeemed(id, not_after);
                }
            }
            engine = engine.with_tickets(Arc::new(gate));
        }
        let (drain_tx, drain_rx) = mpsc::channel(1);
        let shared = Arc::new(Shared {
            engine,
            pool: pool.clone(),
            streams: config.streams.clone(),
            doh_path: config.listen.doh_path.clone(),
            connections: Arc::new(Semaphore::new(config.streams.max_connections.max(1))),
            drain: drain_tx,
            buffers: crate::server::AnswerBuffers::default(),
        });
        let (stop, stop_rx) = watch::channel(false);
        let mut addrs = LocalAddrs::default();
        let mut listeners = Vec::new();

        for &addr in &config.listen.udp {
            let first =
                bind_udp(addr, workers > 1).map_err(|source| EdgeError::Bind { addr, source })?;
            let local = first
                .local_addr()
                .map_err(|source| EdgeError::Bind { addr, source })?;
            addrs.udp.push(local);
            let mut sockets = vec![Arc::new(first)];
            for _ in 1..workers {
                match bind_udp(local, true) {
                    Ok(s) => sockets.push(Arc::new(s)),
                    Err(_) => {
                        // No SO_REUSEPORT: more tasks share the first socket.
                        let s0 = Arc::clone(&sockets[0]);
                        sockets.push(s0);
                    }
                }
            }
            for s in sockets {
                listeners.push(tokio::spawn(udp_worker(
                    Arc::clone(&shared),
                    s,
                    stop_rx.clone(),
                )));
            }
        }
        for &addr in &config.listen.tcp {
            let l = TcpListener::bind(addr)
                .await
                .map_err(|source| EdgeError::Bind { addr, source })?;
            addrs.tcp.push(
                l.local_addr()
                    .map_err(|source| EdgeError::Bind { addr, source })?,
            );
            listeners.push(tokio::spawn(stream_listener(
                Arc::clone(&shared),
                l,
                None,
                stop_rx.clone(),
            )));
        }
        if let Some(base) = &tls {
            #[cfg_attr(not(feature = "doh"), allow(unused_variables))]
            let (dot_cfg, doh_cfg) = tls::per_protocol(base);
            for &addr in &config.listen.dot {
                let l = TcpListener::bind(addr)
                    .await
                    .map_err(|source| EdgeError::Bind { addr, source })?;
                addrs.dot.push(
                    l.local_addr()
                        .map_err(|source| EdgeError::Bind { addr, source })?,
                );
                let acc = TlsAcceptor::from(Arc::clone(&dot_cfg));
                listeners.push(tokio::spawn(stream_listener(
                    Arc::clone(&shared),
                    l,
                    Some(acc),
                    stop_rx.clone(),
                )));
            }
            #[cfg(feature = "doh")]
            for &addr in &config.listen.doh {
                let l = TcpListener::bind(addr)
                    .await
                    .map_err(|source| EdgeError::Bind { addr, source })?;
                addrs.doh.push(
                    l.local_addr()
                        .map_err(|source| EdgeError::Bind { addr, source })?,
                );
                let acc = TlsAcceptor::from(Arc::clone(&doh_cfg));
                listeners.push(tokio::spawn(doh_listener(
                    Arc::clone(&shared),
                    l,
                    acc,
                    stop_rx.clone(),
                )));
            }
            #[cfg(feature = "doq")]
            for &addr in &config.listen.doq {
                let endpoint = doq::bind(addr, base, &config.streams)?;
                addrs.doq.push(
                    endpoint
                        .local_addr()
                        .map_err(|source| EdgeError::Bind { addr, source })?,
                );
                listeners.push(tokio::spawn(doq::doq_listener(
                    Arc::clone(&shared),
                    endpoint,
                    stop_rx.clone(),
                )));
            }
        }

        let mut background = vec![pool.spawn_health_checks()];
        // Attack-mode ticker.
        {
            let shared = Arc::clone(&shared);
            let period = Duration::from_millis(config.attack.tick_ms.max(10));
            let mut stop = stop_rx.clone();
            background.push(tokio::spawn(async move {
                let mut tick = tokio::time::interval(period);
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                loop {
                    tokio::select! {
                        _ = stop.changed() => break,
                        _ = tick.tick() => { shared.engine.tick(shared.engine.clock().now()); }
                    }
                }
            }));
        }
        // Receipt pump: streams each window's leaves past the watermark to the sink and seals
        // the windows that ended (hashing, signing and the sink run on a blocking thread).
        let closer = recorder.inspect(|rec| {
            let period = Duration::from_millis(config.receipts.flush_interval_ms.max(10));
            let rec = Arc::clone(rec);
            let shared = Arc::clone(&shared);
            let clock = Arc::clone(&clock);
            let mut stop = stop_rx.clone();
            background.push(tokio::spawn(async move {
                let mut tick = tokio::time::interval(period);
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                loop {
                    tokio::select! {
                        _ = stop.changed() => break,
                        _ = tick.tick() => {}
                    }
                    let task_rec = Arc::clone(&rec);
                    let now_ms = clock.unix_ms();
                    let Ok(report) =
                        tokio::task::spawn_blocking(move || task_rec.pump(now_ms)).await
                    else {
                        continue;
                    };
                    let metrics = shared.engine.metrics();
                    for _ in 0..report.sealed {
                        metrics.batch();
                    }
                    metrics.receipt_totals(&rec.losses(), rec.clamped());
                }
            }));
        });

        tracing::info!(?addrs, "edge started");
        Ok(EdgeHandle {
            addrs,
            shared,
            stop,
            listeners,
            background,
            drain_rx,
            closer,
        })
    }
}

impl EdgeHandle {
    /// Where the edge listens.
    pub fn local_addrs(&self) -> &LocalAddrs {
        &self.addrs
    }

    /// Current attack mode.
    pub fn mode(&self) -> crate::attack::Mode {
        self.shared.engine.mode()
    }

    /// The clock the edge reads (the system clock unless given to [`Edge::start_with`]).
    pub fn clock(&self) -> &Arc<dyn Clock> {
        self.shared.engine.clock()
    }

    /// Background cache refreshes running now (a refresh ends once its answer is cached).
    pub fn prefetches_running(&self) -> usize {
        self.shared.engine.prefetches_running()
    }

    /// Leaves recorded, and leaves lost (refused when recorded, or recorded into a window
    /// whose stream the sink gave up: those count in both), so far.
    pub fn leaf_counts(&self) -> (u64, u64) {
        self.shared
            .engine
            .recorder()
            .map_or((0, 0), |r| (r.recorded(), r.dropped()))
    }

    /// Leaves lost so far, by reason (`None` when receipts are off).
    pub fn leaf_losses(&self) -> Option<crate::receipts::LeafLosses> {
        self.shared.engine.recorder().map(|r| r.losses())
    }

    /// Receipt leaves held in memory, not yet streamed to the sink (0 when receipts are off).
    pub fn receipt_leaves_held(&self) -> usize {
        self.shared.engine.recorder().map_or(0, |r| r.held())
    }

    /// Stop: stop accepting, let queries in progress finish (at most 10 s), then stream every
    /// leaf still held to the sink and seal every open receipt window (the current one always,
    /// even when empty). Returns the leaves in the windows sealed now.
    pub async fn shutdown(self) -> u64 {
        let Self {
            shared,
            stop,
            listeners,
            background,
            mut drain_rx,
            closer,
            ..
        } = self;
        let _ = stop.send(true);
        for l in listeners {
            let _ = l.await;
        }
        for b in &background {
            b.abort();
        }
        for b in background {
            let _ = b.await;
        }
        // Queries in progress hold clones of the drain sender.
        let engine_metrics = shared.engine.metrics().clone();
        let clock = Arc::clone(shared.engine.clock());
        let engine_shared = shared;
        let drain_done = async {
            // The listener tasks are gone; wait for the last spawned answer.
            while drain_rx.recv().await.is_some() {}
        };
        let weak = Arc::downgrade(&engine_shared);
        drop(engine_shared);
        let _ = tokio::time::timeout(Duration::from_secs(10), async {
            // Connections and answers in progress hold `Shared` (and its drain sender).
            while weak.strong_count() > 0 {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            drain_done.await;
        })
        .await;
        let Some(rec) = closer else { return 0 };
        let metrics = engine_metrics;
        tokio::task::spawn_blocking(move || {
            let report = rec.close_all(clock.unix_ms());
            for _ in 0..report.sealed {
                metrics.batch();
            }
            metrics.receipt_totals(&rec.losses(), rec.clamped());
            report.sealed_leaves
        })
        .await
        .unwrap_or(0)
    }
}
