//! The running miner: wires keys, TLS, the journal, the edge, the agent, the API and signals.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use anyhow::Context as _;
use prometheus_client::registry::Registry;
use tokio::sync::{Notify, mpsc, watch};
use tolldns_core::{WindowId, WindowLen};
use tolldns_ingress::{NameKeyProvider, ReceiptSink, ReceiptsSetup, RedeemedToken, SinkError};
use tolldns_receipts::{BatchHeader, SealedWindow, StreamedLeaves};

use crate::agent::{Agent, AgentSettings};
use crate::audit_api::{ApiState, AuthSettings};
use crate::config::{Config, ConfigFile as _, RECEIPTS_OFF, RESOLV_CONF};
use crate::edge::{EdgeSetup, EdgeStarter, JournalNameKeys, RunningEdge};
use crate::journal::{Journal, Redeemed, TokenRecord};
use crate::metrics::Metrics;
use crate::signals::{Signal, Signals};

pub use tolldns_service::cli::LogControl;

/// How the node was started.
#[derive(Clone)]
pub struct RunOptions {
    /// The configuration.
    pub config: Config,
    /// The file it came from, re-read on SIGHUP.
    pub config_path: Option<PathBuf>,
    /// A `--data-dir` that overrides the file (kept across reloads).
    pub data_dir_override: Option<PathBuf>,
    /// Changes the log level on reload.
    pub log: Option<LogControl>,
}

impl std::fmt::Debug for RunOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunOptions")
            .field("config", &self.config)
            .field("config_path", &self.config_path)
            .finish_non_exhaustive()
    }
}

/// Redeemed tokens that can wait for the journal writer. When the queue is full the token is
/// refused (the edge counts it in `tolldns_ingress_tickets_tokens_lost`): at about 400 bytes a
/// token, the queue holds at most a few MiB.
pub const TOKEN_QUEUE_CAPACITY: usize = 8_192;
/// Most tokens written in one journal transaction.
const TOKEN_WRITE_BATCH: usize = 512;
/// Rows of pruned windows deleted per journal transaction (1,024 chunks are 262,144 leaves).
const GARBAGE_ROWS_PER_TRANSACTION: usize = 1_024;

/// Streams every window's leaves into the journal and journals its receipt before reporting it
/// as signed, and queues every redeemed token for the token writer ([`token_writer`]).
struct JournalSink {
    journal: Arc<Journal>,
    agent: Arc<RwLock<AgentSettings>>,
    metrics: Arc<Metrics>,
    wake: Arc<Notify>,
    /// The backend id of the receipts (the journal keys open streams by window and backend).
    backend: String,
    /// The token queue; `None` once closed at shutdown.
    tokens: RwLock<Option<mpsc::Sender<TokenRecord>>>,
    /// The redeemed set read from the journal before the edge started; taken by the edge.
    restored: Mutex<Vec<Redeemed>>,
}

impl JournalSink {
    /// Closes the token queue: the writer journals what is queued, then ends.
    fn close_tokens(&self) {
        self.tokens
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
    }
}

impl ReceiptSink for JournalSink {
    /// Stores the complete chunks with the roots the window's stream computed (no leaf is
    /// hashed again); the seal checks the root over them against the receipt.
    fn append(&self, header: &BatchHeader, leaves: StreamedLeaves<'_>) -> Result<(), SinkError> {
        self.journal.stream_append(header, leaves).map_err(|e| {
            self.metrics.journal_errors.inc();
            SinkError::new(e)
        })
    }

    fn seal(&self, window: WindowId, sealed: SealedWindow) -> Result<(), SinkError> {
        let receipt = &sealed.receipt;
        let window = window.get();
        let leaves = receipt.body.integrity.leaf_count;
        let watchers = self
            .agent
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .watchers
            .clone();
        match self
            .journal
            .stream_seal(receipt, &sealed.witnesses, &watchers, crate::now_ms())
        {
            Ok((id, true)) => {
                // The batch is on disk (synced): only now is it reported as signed.
                self.metrics.batches_signed.inc();
                #[allow(clippy::cast_precision_loss)]
                self.metrics.batch_leaves.observe(leaves as f64);
                tracing::info!(
                    id = %hex::encode(id),
                    window,
                    leaves,
                    root = %hex::encode(receipt.body.integrity.merkle_root),
                    "batch signed"
                );
                if let Ok(s) = self.journal.stats() {
                    self.metrics.observe_journal(&s);
                }
                self.wake.notify_one();
                Ok(())
            }
            Ok((id, false)) => {
                tracing::warn!(id = %hex::encode(id), window, "batch already journaled");
                Ok(())
            }
            Err(e) => {
                self.metrics.journal_errors.inc();
                Err(SinkError::new(e))
            }
        }
    }

    fn abandon(&self, window: WindowId, leaves: u64) {
        match self
            .journal
            .stream_abandon(window.get(), &self.backend, leaves)
        {
            Ok(lost) => {
                tracing::error!(
                    window = window.get(),
                    leaves_lost = lost,
                    "receipt window given up: its leaves are counted in tolldns_receipt_leaves_lost_total"
                );
            }
            Err(e) => {
                self.metrics.journal_errors.inc();
                tracing::error!(window = window.get(), error = %e, "receipt window given up; its stream is removed and counted at the next prune");
            }
        }
        if let Ok(s) = self.journal.stats() {
            self.metrics.observe_journal(&s);
        }
    }

    fn redeemed(&self, token: RedeemedToken) -> bool {
        let token = TokenRecord {
            ticket_id: token.ticket_id,
            token: token.token,
            window_id: token.window.get(),
            redeemed_ms: token.redeemed_ms,
            key_not_after: token.key_not_after,
        };
        let guard = self
            .tokens
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let Some(tx) = guard.as_ref() else {
            return false;
        };
        match tx.try_send(token) {
            Ok(()) => true,
            Err(e) => {
                let window = match &e {
                    mpsc::error::TrySendError::Full(t) | mpsc::error::TrySendError::Closed(t) => {
                        t.window_id
                    }
                };
                tracing::error!(
                    window,
                    "token queue full or closed: redeemed token not journaled"
                );
                false
            }
        }
    }

    fn redeemed_before(&self) -> Vec<Redeemed> {
        std::mem::take(
            &mut *self
                .restored
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        )
    }
}

/// Journals queued redeemed tokens, many per transaction, until the queue is closed and
/// drained.
async fn token_writer(
    journal: Arc<Journal>,
    metrics: Arc<Metrics>,
    mut rx: mpsc::Receiver<TokenRecord>,
) {
    let mut buf = Vec::with_capacity(TOKEN_WRITE_BATCH);
    while rx.recv_many(&mut buf, TOKEN_WRITE_BATCH).await > 0 {
        let records = std::mem::take(&mut buf);
        let n = records.len();
        let j = Arc::clone(&journal);
        match tokio::task::spawn_blocking(move || j.record_tokens(&records)).await {
            Ok(Ok(new)) => tracing::debug!(tokens = n, new, "redeemed tokens journaled"),
            Ok(Err(e)) => {
                metrics.journal_errors.inc();
                tracing::error!(
                    tokens = n,
                    error = %e,
                    "redeemed tokens could not be journaled: they cannot be audited and a restart forgets that they were redeemed"
                );
            }
            Err(_) => {}
        }
    }
}

/// Runs the miner until SIGTERM or SIGINT.
///
/// # Errors
///
/// Startup failures (keys, TLS, journal, ports), with context.
pub async fn run(options: RunOptions, starter: &dyn EdgeStarter) -> anyhow::Result<()> {
    let mut signals = Signals::new().context("installing signal handlers")?;
    let config = options.config.clone();
    if let Some(v) = config.receipts.deprecated_max_leaves_per_window {
        tracing::warn!(
            max_pending_leaves = v,
            "receipts.max_leaves_per_window is deprecated (windows have no leaf cap any more): the bound on leaves held in memory is receipts.max_pending_leaves, lowered to this value when it is smaller; rename it"
        );
    }
    crate::keys::create_private_dir(&config.data_dir)
        .with_context(|| format!("creating data directory {}", config.data_dir.display()))?;

    let key_path = config.signing_key_path();
    let (signing_key, created) = crate::keys::load_or_create_keypair(&key_path)
        .context("loading the receipt-signing key")?;
    let operator = signing_key.verifying_key();
    if created {
        tracing::info!(path = %key_path.display(), "generated a new receipt-signing key");
    }
    tracing::info!(identity = %crate::keys::public_key_string(&operator), "receipt-signing key");

    let tls_files = crate::tls::ensure_files(
        &config.data_dir,
        config.tls.cert_file.as_deref(),
        config.tls.key_file.as_deref(),
        &config.tls.self_signed_names,
    )
    .context("preparing the TLS certificate")?;
    if tls_files.generated {
        tracing::info!(cert = %tls_files.cert.display(), "generated a self-signed TLS certificate");
    }
    let tls = crate::tls::server_config(&tls_files).context("loading the TLS certificate")?;
    let upstreams = config
        .resolve_upstreams(std::path::Path::new(RESOLV_CONF))
        .context("choosing upstream resolvers")?;
    if !config.receipts.enabled {
        let setup = EdgeSetup {
            config,
            upstreams,
            tls,
            receipts: None,
        };
        return run_without_receipts(&options, signals, setup, operator, starter).await;
    }

    let journal_path = config.journal_path();
    let (journal, lost) = Journal::open_with_cache(&journal_path, config.journal.cache_bytes)
        .with_context(|| format!("opening the receipt journal {}", journal_path.display()))?;
    let journal = Arc::new(journal);
    if lost > 0 {
        tracing::warn!(
            leaves_lost = lost,
            "the previous run stopped without closing its window: leaves accepted but never journaled are counted in tolldns_receipt_leaves_lost_total"
        );
    }

    let mut registry = Registry::default();
    let metrics = Arc::new(Metrics::register(&mut registry));
    metrics
        .journal_max_leaf_bytes
        .set(i64::try_from(config.journal.max_leaf_bytes).unwrap_or(i64::MAX));
    metrics.observe_journal(&journal.stats()?);

    let api_listener = tokio::net::TcpListener::bind(config.api.listen)
        .await
        .with_context(|| format!("binding the API to {} (api.listen)", config.api.listen))?;

    let window_len = WindowLen::new(config.receipts.window_secs)
        .map_err(|_| anyhow::anyhow!("invalid receipts.window_secs"))?;
    let agent_settings = Arc::new(RwLock::new(agent_settings(&config)));
    let auth = Arc::new(RwLock::new(auth_settings(&config)?));

    // One batch per (operator, backend, window): after a clean stop and a quick restart, wait
    // for the next window instead of signing a second batch for the same window. SIGTERM and
    // SIGINT end the wait (nothing was started yet), SIGHUP reloads as it does later.
    if let Some(last) = journal.last_window()? {
        let now = WindowId::containing(crate::now_ms(), window_len);
        if last >= now.get() {
            let resume = WindowId(last.saturating_add(1))
                .start_ms(window_len)
                .unwrap_or(u64::MAX);
            let wait = resume.saturating_sub(crate::now_ms());
            tracing::info!(
                window = last,
                wait_ms = wait,
                "a batch for this window is already signed; waiting for the next window"
            );
            let next_window = tokio::time::sleep(Duration::from_millis(wait));
            tokio::pin!(next_window);
            loop {
                tokio::select! {
                    () = &mut next_window => break,
                    signal = signals.next() => match signal {
                        Signal::Stop(name) => {
                            tracing::info!(signal = name, "stopping before the next window began");
                            return Ok(());
                        }
                        Signal::Reload => reload(&options, &agent_settings, &auth, Some(&journal)),
                    },
                }
            }
        }
    }

    let wake = Arc::new(Notify::new());
    let name_keys = Arc::new(JournalNameKeys::new(
        Arc::clone(&journal),
        window_len,
        config.receipts.name_key_epoch_secs,
    ));
    name_keys
        .key_for_epoch(name_keys.epoch_at(crate::now_ms()))
        .context("creating this epoch's name key")?;
    let restored = journal
        .redeemed_tickets(crate::now_ms())
        .context("reading the redeemed toll tickets from the journal")?;
    if !restored.is_empty() {
        tracing::info!(
            redeemed = restored.len(),
            "toll tickets redeemed before this start stay refused"
        );
    }
    let (tokens_tx, tokens_rx) = mpsc::channel(TOKEN_QUEUE_CAPACITY);
    let sink = Arc::new(JournalSink {
        journal: Arc::clone(&journal),
        agent: Arc::clone(&agent_settings),
        metrics: Arc::clone(&metrics),
        wake: Arc::clone(&wake),
        backend: config.receipts.backend_id.clone(),
        tokens: RwLock::new(Some(tokens_tx)),
        restored: Mutex::new(restored),
    });
    let token_writer = tokio::spawn(token_writer(
        Arc::clone(&journal),
        Arc::clone(&metrics),
        tokens_rx,
    ));

    journal.begin_run()?;
    let edge = starter
        .start(
            EdgeSetup {
                config: config.clone(),
                upstreams: upstreams.clone(),
                tls,
                receipts: Some(ReceiptsSetup {
                    signing_key,
                    name_keys: Arc::clone(&name_keys) as Arc<dyn NameKeyProvider>,
                    sink: Arc::clone(&sink) as Arc<dyn ReceiptSink>,
                }),
            },
            &mut registry,
        )
        .await
        .context("starting the DNS edge")?;
    let edge: Arc<dyn RunningEdge> = Arc::from(edge);

    let registry = Arc::new(registry);
    let healthy = Arc::new(AtomicBool::new(true));
    let (stop_tx, stop_rx) = watch::channel(false);

    let api_addr = api_listener.local_addr()?;
    for (transport, addr) in edge.local_addrs() {
        println!("listening {transport} {addr}");
    }
    println!(
        "listening api http://{api_addr} (/metrics /healthz /v1/batches; audits need an auditor key)"
    );
    println!(
        "operator {} deployment {}",
        bs58::encode(operator.as_bytes()).into_string(),
        config
            .receipts
            .deployment_id
            .parse::<tolldns_core::DeploymentId>()
            .unwrap_or_else(|_| tolldns_core::DeploymentId::local())
    );
    tracing::info!(upstreams = ?upstreams, "forwarding to upstream resolvers");

    let api = tokio::spawn(crate::audit_api::serve(
        api_listener,
        Arc::new(ApiState {
            journal: Arc::clone(&journal),
            registry: Arc::clone(&registry),
            metrics: Arc::clone(&metrics),
            auth: Arc::clone(&auth),
            operator,
            max_audit_k: config.api.max_audit_k,
            healthy: Arc::clone(&healthy),
            guard: crate::audit_api::AuditGuard::new(crate::audit_api::AuditLimits {
                rate_per_sec: config.api.audit_rate_per_sec,
                burst: config.api.audit_burst,
                concurrency: config.api.audit_concurrency,
                concurrency_per_auditor: config.api.audit_concurrency_per_auditor,
                timeout: Duration::from_secs(config.api.request_timeout_secs.max(1)),
            }),
        }),
        stop_rx.clone(),
    ));
    let tls_client = match &config.agent.ca_file {
        Some(f) => Some(
            crate::agent::client_tls(f)
                .with_context(|| format!("loading agent.ca_file {}", f.display()))?,
        ),
        None => None,
    };
    let agent = tokio::spawn(
        Agent {
            journal: Arc::clone(&journal),
            settings: Arc::clone(&agent_settings),
            tls: tls_client,
            metrics: Arc::clone(&metrics),
            wake: Arc::clone(&wake),
        }
        .run(stop_rx.clone()),
    );
    let housekeeping = tokio::spawn(housekeeping(
        Arc::clone(&journal),
        Arc::clone(&edge),
        Arc::clone(&metrics),
        Arc::clone(&name_keys),
        config.clone(),
        stop_rx.clone(),
    ));

    loop {
        match signals.next().await {
            Signal::Stop(name) => {
                tracing::info!(signal = name, "stopping: closing the current window");
                break;
            }
            Signal::Reload => reload(&options, &agent_settings, &auth, Some(&journal)),
        }
    }

    healthy.store(false, Ordering::Relaxed);
    let _ = stop_tx.send(true);
    let _ = housekeeping.await;
    edge.shutdown().await;
    // No redemption after the edge stopped: journal the queued tokens.
    sink.close_tokens();
    let _ = token_writer.await;
    let accepted = edge.leaves_recorded().saturating_add(edge.leaves_refused());
    let lost = journal.end_run(accepted)?;
    let _ = agent.await;
    let _ = api.await;
    let stats = journal.stats()?;
    tracing::info!(
        batches = stats.batches,
        outbox_pending = stats.outbox_pending,
        leaves_lost = lost,
        "stopped"
    );
    Ok(())
}

/// The ingress + cache role (`receipts.enabled = false`): the edge answers and caches, and
/// records no leaf; no journal is opened, no window is signed, nothing is delivered. The API
/// serves `/metrics` and `/healthz`, and answers every `/v1/...` request `404` with
/// `{"error":"receipts are off on this node"}`.
async fn run_without_receipts(
    options: &RunOptions,
    mut signals: Signals,
    setup: EdgeSetup,
    operator: ed25519_dalek::VerifyingKey,
    starter: &dyn EdgeStarter,
) -> anyhow::Result<()> {
    let config = setup.config.clone();
    let upstreams = setup.upstreams.clone();
    let mut registry = Registry::default();
    let metrics = Arc::new(Metrics::register(&mut registry));
    let api_listener = tokio::net::TcpListener::bind(config.api.listen)
        .await
        .with_context(|| format!("binding the API to {} (api.listen)", config.api.listen))?;
    let edge = starter
        .start(setup, &mut registry)
        .await
        .context("starting the DNS edge")?;
    let api_addr = api_listener.local_addr()?;
    for (transport, addr) in edge.local_addrs() {
        println!("listening {transport} {addr}");
    }
    println!("listening api http://{api_addr} (/metrics /healthz; receipts are off: no /v1/...)");
    println!(
        "operator {} receipts off",
        bs58::encode(operator.as_bytes()).into_string()
    );
    tracing::info!(upstreams = ?upstreams, "receipts are off: serving as ingress + cache only");
    if config.tickets.enabled() {
        tracing::info!("receipts are off: toll tickets are not looked at");
    }

    let healthy = Arc::new(AtomicBool::new(true));
    let (stop_tx, stop_rx) = watch::channel(false);
    let api = tokio::spawn(serve_without_receipts(
        api_listener,
        Arc::new(registry),
        Arc::clone(&metrics),
        Arc::clone(&healthy),
        Duration::from_secs(config.api.request_timeout_secs.max(1)),
        stop_rx,
    ));
    // SIGHUP changes the log level only; nothing else of this role can change while serving.
    let agent = RwLock::new(agent_settings(&config));
    let auth = RwLock::new(auth_settings(&config)?);
    loop {
        match signals.next().await {
            Signal::Stop(name) => {
                tracing::info!(signal = name, "stopping");
                break;
            }
            Signal::Reload => reload(options, &agent, &auth, None),
        }
    }
    healthy.store(false, Ordering::Relaxed);
    let _ = stop_tx.send(true);
    edge.shutdown().await;
    let _ = api.await;
    tracing::info!("stopped");
    Ok(())
}

/// The API of a node without receipts: `/metrics`, `/healthz`, and `404` for everything else
/// (with [`RECEIPTS_OFF`] for `/v1/...`), until `shutdown` turns true.
async fn serve_without_receipts(
    listener: tokio::net::TcpListener,
    registry: Arc<Registry>,
    metrics: Arc<Metrics>,
    healthy: Arc<AtomicBool>,
    timeout: Duration,
    shutdown: watch::Receiver<bool>,
) {
    crate::audit_api::accept_loop(listener, timeout, shutdown, move |req| {
        let (endpoint, reply) = answer_without_receipts(
            &registry,
            healthy.load(Ordering::Relaxed),
            req.method(),
            req.uri().path(),
            req.headers(),
        );
        metrics.api_request(endpoint, reply.status().as_u16());
        std::future::ready(reply)
    })
    .await;
}

/// One answer of [`serve_without_receipts`]: (endpoint label, response).
fn answer_without_receipts(
    registry: &Registry,
    healthy: bool,
    method: &http::Method,
    path: &str,
    headers: &http::HeaderMap,
) -> (
    &'static str,
    http::Response<http_body_util::Full<bytes::Bytes>>,
) {
    let reply = |status: http::StatusCode, content_type: &'static str, body: bytes::Bytes| {
        let mut r = http::Response::new(http_body_util::Full::new(body));
        *r.status_mut() = status;
        r.headers_mut().insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static(content_type),
        );
        r
    };
    let json_error = |status, message: &str| {
        let body = serde_json::json!({ "error": message }).to_string();
        reply(status, "application/json", bytes::Bytes::from(body))
    };
    let get = method == http::Method::GET;
    match path.trim_end_matches('/') {
        "/metrics" if get => {
            let m = tolldns_service::metrics::exposition(registry, headers);
            (
                "metrics",
                reply(http::StatusCode::OK, m.content_type, m.body.into()),
            )
        }
        "/healthz" if get => (
            "healthz",
            if healthy {
                reply(http::StatusCode::OK, "text/plain", "ok\n".into())
            } else {
                reply(
                    http::StatusCode::SERVICE_UNAVAILABLE,
                    "text/plain",
                    "stopping\n".into(),
                )
            },
        ),
        p if p == "/v1" || p.starts_with("/v1/") => (
            "receipts_off",
            json_error(http::StatusCode::NOT_FOUND, RECEIPTS_OFF),
        ),
        _ => (
            "other",
            json_error(http::StatusCode::NOT_FOUND, "not found"),
        ),
    }
}

fn agent_settings(config: &Config) -> AgentSettings {
    AgentSettings {
        watchers: config.agent.watchers.clone(),
        retry_initial_ms: config.agent.retry_initial_ms,
        retry_max_ms: config.agent.retry_max_ms,
        request_timeout_ms: config.agent.request_timeout_ms,
    }
}

fn auth_settings(config: &Config) -> anyhow::Result<AuthSettings> {
    Ok(AuthSettings {
        auditors: config
            .api
            .auditor_keys
            .iter()
            .map(|k| crate::keys::parse_public_key(k))
            .collect::<Result<_, _>>()
            .context("api.auditor_keys")?,
        max_age_ms: config.api.max_request_age_secs.saturating_mul(1000),
    })
}

/// SIGHUP: re-reads the config file and applies what can change safely while serving:
/// `log_level`, `agent.watchers` (and the retry/timeout knobs), `api.auditor_keys` and
/// `api.max_request_age_secs`. Everything else needs a restart and is reported when changed.
fn reload(
    options: &RunOptions,
    agent: &RwLock<AgentSettings>,
    auth: &RwLock<AuthSettings>,
    journal: Option<&Journal>,
) {
    let Some(path) = &options.config_path else {
        tracing::info!("SIGHUP: no --config file; nothing to reload");
        return;
    };
    let mut new = match Config::load(path) {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "SIGHUP: config not reloaded");
            return;
        }
    };
    if let Some(d) = &options.data_dir_override {
        new.data_dir.clone_from(d);
    }
    let new_auth = match auth_settings(&new) {
        Ok(a) => a,
        Err(e) => {
            tracing::error!(error = %e, "SIGHUP: config not reloaded");
            return;
        }
    };
    if let Some(log) = &options.log {
        log(new.log_level.filter());
    }
    let settings = agent_settings(&new);
    *agent
        .write()
        .unwrap_or_else(std::sync::PoisonError::into_inner) = settings.clone();
    *auth
        .write()
        .unwrap_or_else(std::sync::PoisonError::into_inner) = new_auth;
    match journal.map(|j| j.outbox_retain(&settings.watchers)) {
        None | Some(Ok(0)) => {}
        Some(Ok(n)) => tracing::warn!(
            dropped = n,
            "SIGHUP: pending deliveries to removed watchers dropped"
        ),
        Some(Err(e)) => tracing::error!(error = %e, "SIGHUP: outbox cleanup failed"),
    }
    let old = &options.config;
    let mut frozen = Vec::new();
    if new.data_dir != old.data_dir {
        frozen.push("data_dir");
    }
    if new.upstreams != old.upstreams {
        frozen.push("upstreams");
    }
    if new.listen != old.listen {
        frozen.push("listen");
    }
    if new.tls != old.tls {
        frozen.push("tls");
    }
    if new.identity != old.identity {
        frozen.push("identity");
    }
    if new.receipts != old.receipts {
        frozen.push("receipts");
    }
    if new.journal != old.journal {
        frozen.push("journal");
    }
    if new.api.listen != old.api.listen || new.api.max_audit_k != old.api.max_audit_k {
        frozen.push("api.listen/api.max_audit_k");
    }
    if new.agent.ca_file != old.agent.ca_file {
        frozen.push("agent.ca_file");
    }
    if new.edge != old.edge {
        frozen.push("edge");
    }
    if new.tickets != old.tickets {
        frozen.push("tickets");
    }
    if !frozen.is_empty() {
        tracing::warn!(keys = ?frozen, "SIGHUP: these changes need a restart and were not applied");
    }
    tracing::info!(
        watchers = settings.watchers.len(),
        log_level = ?new.log_level,
        "SIGHUP: reloaded log_level, agent.watchers, api.auditor_keys"
    );
}

/// Periodic work: checkpoint accepted leaves, count dropped leaves, prune, refresh metrics,
/// create the next epoch's name key ahead of time.
async fn housekeeping(
    journal: Arc<Journal>,
    edge: Arc<dyn RunningEdge>,
    metrics: Arc<Metrics>,
    name_keys: Arc<JournalNameKeys>,
    config: Config,
    mut stop: watch::Receiver<bool>,
) {
    let period = Duration::from_millis(config.journal.checkpoint_interval_ms);
    let mut last_prune = std::time::Instant::now();
    let mut ticker = tokio::time::interval(period);
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = stop.changed() => return,
        }
        let recorded = edge.leaves_recorded().saturating_add(edge.leaves_refused());
        let journal_c = Arc::clone(&journal);
        let prune_now = last_prune.elapsed() >= Duration::from_secs(10);
        if prune_now {
            last_prune = std::time::Instant::now();
        }
        let audit_ms = config.journal.audit_window_secs.saturating_mul(1000);
        let max = config.journal.max_leaf_bytes;
        let next_epoch = name_keys.epoch_at(crate::now_ms()).saturating_add(1);
        let nk = Arc::clone(&name_keys);
        let result =
            tokio::task::spawn_blocking(move || -> Result<_, crate::journal::JournalError> {
                journal_c.checkpoint(recorded)?;
                let pruned = if prune_now {
                    journal_c.prune(crate::now_ms(), audit_ms, max)?
                } else {
                    crate::journal::Pruned::default()
                };
                // The rows of pruned windows go a bounded number per transaction, each a short
                // wait at most for the appends of the open window; about 200 ms a tick.
                let started = std::time::Instant::now();
                while started.elapsed() < Duration::from_millis(200)
                    && journal_c.collect_garbage(GARBAGE_ROWS_PER_TRANSACTION)? > 0
                {
                }
                nk.key_for_epoch(next_epoch)?;
                Ok((pruned, journal_c.stats()?))
            })
            .await;
        match result {
            Ok(Ok((pruned, stats))) => {
                if pruned.leaves_evicted > 0 || pruned.tokens_evicted > 0 {
                    tracing::warn!(
                        evicted = pruned.leaves_evicted,
                        tokens_evicted = pruned.tokens_evicted,
                        "journal over journal.max_leaf_bytes: oldest leaves and tokens deleted before their audit window ended"
                    );
                }
                if pruned.leaves_expired > 0 || pruned.tokens_expired > 0 {
                    tracing::debug!(
                        expired = pruned.leaves_expired,
                        tokens_expired = pruned.tokens_expired,
                        "leaves and tokens past their audit window deleted"
                    );
                }
                if pruned.redeemed_expired > 0 {
                    tracing::debug!(
                        redeemed = pruned.redeemed_expired,
                        "redeemed toll tickets of expired issuer keys forgotten"
                    );
                }
                metrics.observe_journal(&stats);
            }
            Ok(Err(e)) => {
                metrics.journal_errors.inc();
                tracing::error!(error = %e, "journal housekeeping failed");
            }
            Err(_) => {}
        }
    }
}
