//! The running watcher: wires the key, the store, the chain, the API and the worker loops.
//!
//! Worker loops (each stops when the watcher stops):
//!
//! - chain: reads the slot every `chain.slot_poll_ms` and the registry snapshot every
//!   `chain.registry_refresh_secs`;
//! - audits: every accepted batch without an audit is audited once the hash of the slot
//!   `arrival_slot + audit.seed_delay_slots` exists (the sample's seed post-dates the
//!   receipt); a miner that cannot be reached is retried a few times before the audit is
//!   recorded as failed;
//! - probes: every `probe.interval_secs`, every Active miner on every registered transport
//!   (UDP, TCP, DoT, DoH), one probe token per probe; after the probe's window closed and its
//!   receipt arrived, the probe ticket's leaves are looked up in the miner's batch;
//! - peers: once an epoch ended, the probe tickets of the other watchers (the score
//!   program's allowlisted watchers with an API origin in the registry) are fetched from
//!   their `GET /v1/epochs/{e}/probe-tickets`, and each one is looked up at the probed miner
//!   like the watcher's own: the leaves found are probes, not client work
//!   ([`crate::stats`]). An unreachable watcher is retried for `settle.peer_wait_slots`
//!   after the epoch's end, then given up (its probes are not discounted);
//! - epochs: an epoch is closed `settle.report_after_slots` after its end (once its audits
//!   and ticket lookups are done and the peers' lists fetched or given up, or at the latest
//!   when its reporting deadline nears): stats from the stored rows, publication, then a
//!   report per miner to the score program and finalization when due ([`crate::settle`]).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use ed25519_dalek::SigningKey;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tolldns_chain::{Chain, Pubkey, RpcChain, RpcConfig};
use tolldns_receipts::{AuditSample, AuditSeed, Receipt, Verifier};

use crate::audit::Auditor;
use crate::config::Config;
use crate::ingest::{ChainClock, Ingest, StoredWindows};
use crate::metrics::{Metrics, set_gauge};
use crate::registry::{SharedRegistry, Snapshot};
use crate::server::ApiState;
use crate::store::{
    AuditRecord, AuditStatus, BatchRecord, PeerTicketRecord, ProbeRecord, ProbeStatus,
    ProbeTicketRecord, Store, TicketStatus,
};

pub use tolldns_service::cli::LogControl;

/// The reason of a probe ticket written before its probe was sent: while it stays, the
/// probe's outcome was never recorded (the watcher stopped), and `updated_ms` is its send
/// time.
pub const INTERRUPTED: &str = "interrupted";

/// Audit attempts on a miner that cannot be reached before the audit fails.
pub const AUDIT_ATTEMPTS: u32 = 5;

/// Runs the watcher with the JSON-RPC chain of `config.chain` until SIGTERM or SIGINT.
///
/// # Errors
///
/// Startup failures (key, store, ports, chain client), with context.
pub async fn run_with_rpc(
    config: Config,
    log: Option<LogControl>,
    args: Option<tolldns_service::cli::ConfigArgs>,
) -> anyhow::Result<()> {
    let mut rpc = RpcConfig::new(config.chain.rpc_url.clone());
    rpc.ca_file.clone_from(&config.chain.ca_file);
    rpc.commitment = match config.chain.commitment.as_str() {
        "processed" => tolldns_chain::Commitment::Processed,
        "finalized" => tolldns_chain::Commitment::Finalized,
        _ => tolldns_chain::Commitment::Confirmed,
    };
    let chain = RpcChain::new(rpc).context("chain.rpc_url")?;
    run(config, Arc::new(chain), log, args).await
}

/// Runs the watcher over `chain` until SIGTERM or SIGINT. On SIGHUP the configuration is
/// read again from `args` (the `--config` file) and its `log_level` applied; other changes
/// need a restart.
///
/// # Errors
///
/// Startup failures, with context.
pub async fn run<C: Chain + 'static>(
    config: Config,
    chain: Arc<C>,
    log: Option<LogControl>,
    args: Option<tolldns_service::cli::ConfigArgs>,
) -> anyhow::Result<()> {
    let mut signals =
        tolldns_service::signals::Signals::new().context("installing signal handlers")?;
    let running = start(config.clone(), chain).await?;
    println!(
        "listening api http://{} (GET /v1/epochs/{{e}}/inputs, /v1/epochs/{{e}}/report, /v1/epochs/{{e}}/probe-tickets, /v1/objects/{{sha256}}, /v1/status)",
        running.api_addr
    );
    println!(
        "receipts http://{}/v1/receipts (the miners' agent.watchers URL)",
        running.api_addr
    );
    println!("listening metrics http://{}/metrics", running.metrics_addr);
    println!("watcher {}", running.watcher);
    println!("store {}", redact(&config.store_url()));
    loop {
        match signals.next().await {
            tolldns_service::signals::Signal::Stop(name) => {
                tracing::info!(signal = name, "stopping");
                break;
            }
            tolldns_service::signals::Signal::Reload => {
                match args
                    .as_ref()
                    .map(tolldns_service::cli::ConfigArgs::load::<Config>)
                {
                    None => tracing::info!("SIGHUP: no configuration to read again"),
                    Some(Err(e)) => tracing::error!(error = %e, "SIGHUP: config not reloaded"),
                    Some(Ok(new)) => {
                        if let Some(log) = &log {
                            log(new.log_level.filter());
                        }
                        let level = new.log_level;
                        let unchanged = Config {
                            log_level: config.log_level,
                            ..new
                        } == config;
                        if !unchanged {
                            tracing::warn!(
                                "SIGHUP: only log_level was applied; other changes need a restart"
                            );
                        }
                        tracing::info!(log_level = ?level, "SIGHUP: log level reloaded");
                    }
                }
            }
        }
    }
    running.stop().await;
    Ok(())
}

/// A store URL without its password.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            match creds.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..s + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

/// A started watcher.
#[derive(Debug)]
pub struct Running {
    /// The API's address.
    pub api_addr: SocketAddr,
    /// The metrics endpoint's address.
    pub metrics_addr: SocketAddr,
    /// The watcher's public key, base58.
    pub watcher: String,
    /// The store.
    pub store: Store,
    /// The metrics registry.
    pub registry: Arc<Registry>,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl Running {
    /// Stops every loop and listener, waits for them, and closes the store.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        for t in self.tasks {
            let _ = t.await;
        }
        self.store.close().await;
    }
}

/// What the worker loops share.
struct Shared<C> {
    config: Config,
    chain: Arc<C>,
    store: Store,
    key: SigningKey,
    watcher: String,
    registry: Arc<SharedRegistry>,
    clock: Arc<ChainClock>,
    metrics: Arc<Metrics>,
    ingest_lock: Arc<tokio::sync::Mutex<()>>,
    /// Fetches of other watchers' probe tickets, by outcome.
    peer_fetches: Family<crate::metrics::Labels, Counter>,
    /// TLS roots for `https://` peers (`audit.ca_file`).
    peer_tls: Option<Arc<rustls::ClientConfig>>,
}

/// Starts the watcher: key, store, listeners and worker loops. The first chain reads happen
/// in the background (until they succeed, ingest answers 503).
///
/// # Errors
///
/// Startup failures (key, store, ports, TLS files), with context.
pub async fn start<C: Chain + 'static>(config: Config, chain: Arc<C>) -> anyhow::Result<Running> {
    tolldns_service::files::create_private_dir(&config.data_dir)
        .with_context(|| format!("creating data directory {}", config.data_dir.display()))?;
    let key_path = config.key_path();
    let (key, created) =
        crate::keys::load_or_create(&key_path).context("loading the watcher key")?;
    let watcher = crate::keys::public_key_string(&key.verifying_key());
    if created {
        tracing::info!(path = %key_path.display(), "generated a new watcher key");
    }
    let mut registry = Registry::default();
    let metrics = Arc::new(Metrics::register(&mut registry));
    let peer_fetches = Family::<crate::metrics::Labels, Counter>::default();
    registry.register(
        "tolldns_watcher_peer_fetches",
        "Fetches of other watchers' probe tickets by outcome (fetched, not_ready, unreachable, refused, malformed, gave_up)",
        peer_fetches.clone(),
    );
    let m = Arc::clone(&metrics);
    let store = Store::open(&config.store_url())
        .await
        .with_context(|| format!("opening the store {}", redact(&config.store_url())))?
        .with_observer(Arc::new(move |op, d| m.store_op(op, d, true)));
    let api_listener = tokio::net::TcpListener::bind(config.api.listen)
        .await
        .with_context(|| format!("binding the API to {} (api.listen)", config.api.listen))?;
    let metrics_listener = tokio::net::TcpListener::bind(config.metrics.listen)
        .await
        .with_context(|| {
            format!(
                "binding metrics to {} (metrics.listen)",
                config.metrics.listen
            )
        })?;
    let api_addr = api_listener.local_addr()?;
    let metrics_addr = metrics_listener.local_addr()?;

    let audit_tls = match &config.audit.ca_file {
        Some(f) => Some(Arc::new(
            tolldns_service::tls::client_config(f, &[])
                .with_context(|| format!("loading audit.ca_file {}", f.display()))?,
        )),
        None => None,
    };
    let probe_tls = match &config.probe.ca_file {
        Some(f) => Some(Arc::new(
            tolldns_service::tls::client_config(f, &[])
                .with_context(|| format!("loading probe.ca_file {}", f.display()))?,
        )),
        None => None,
    };
    let token_verifier = config
        .tickets
        .verifier()
        .map_err(|e| anyhow::anyhow!("tickets.issuer_keys: {e}"))?;
    let auditor = Arc::new(Auditor::new(
        key.clone(),
        audit_tls.clone(),
        Duration::from_millis(config.audit.timeout_ms),
        token_verifier,
    ));

    let shared = Arc::new(Shared {
        config: config.clone(),
        chain,
        store: store.clone(),
        key,
        watcher: watcher.clone(),
        registry: Arc::new(SharedRegistry::new()),
        clock: Arc::new(ChainClock::new()),
        metrics: Arc::clone(&metrics),
        ingest_lock: Arc::new(tokio::sync::Mutex::new(())),
        peer_fetches,
        peer_tls: audit_tls,
    });
    let ingest = Arc::new(Ingest {
        store: store.clone(),
        registry: Arc::clone(&shared.registry),
        clock: Arc::clone(&shared.clock),
        deployment: config.deployment(),
        skew_ms: config.deployment.skew_ms,
        max_slot_age_ms: config.chain.slot_poll_ms.saturating_mul(25).max(10_000),
        lock: Arc::clone(&shared.ingest_lock),
        metrics: Arc::clone(&metrics),
    });
    let registry = Arc::new(registry);
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut tasks = Vec::new();
    tasks.push(tokio::spawn(crate::server::serve_api(
        api_listener,
        Arc::new(ApiState {
            ingest,
            store: store.clone(),
            metrics: Arc::clone(&metrics),
            max_body_bytes: config.api.max_body_bytes,
            timeout: Duration::from_secs(config.api.request_timeout_secs),
            watcher: watcher.clone(),
        }),
        stop_rx.clone(),
    )));
    tasks.push(tokio::spawn(crate::server::serve_metrics(
        metrics_listener,
        Arc::clone(&registry),
        stop_rx.clone(),
    )));
    tasks.push(tokio::spawn(chain_loop(
        Arc::clone(&shared),
        stop_rx.clone(),
    )));
    if config.audit.enabled {
        tasks.push(tokio::spawn(audit_loop(
            Arc::clone(&shared),
            Arc::clone(&auditor),
            stop_rx.clone(),
        )));
    }
    if config.probe.enabled {
        let prober = crate::probe::Prober::new(
            config.probe_upstreams(),
            probe_tls.clone(),
            Duration::from_millis(config.probe.timeout_ms),
        );
        let tokens = if config.probe.issuer_url.is_empty() {
            None
        } else {
            let wallet = match &config.probe.wallet_file {
                Some(p) => Some(
                    tolldns_service::keyfile::load(p)
                        .with_context(|| format!("loading probe.wallet_file {}", p.display()))?,
                ),
                None => None,
            };
            let t = crate::tokens::ProbeTokens::open(
                &config.data_dir.join("probe-tokens.json"),
                &config.tickets.issuer_name,
                &config.tickets.deployment,
                probe_tls,
                Duration::from_millis(config.probe.timeout_ms),
            )
            .context("opening the probe token file")?;
            wallet.map(|w| (Arc::new(t), w))
        };
        tasks.push(tokio::spawn(probe_loop(
            Arc::clone(&shared),
            Arc::new(prober),
            tokens,
            stop_rx.clone(),
        )));
        tasks.push(tokio::spawn(ticket_loop(
            Arc::clone(&shared),
            Arc::clone(&auditor),
            stop_rx.clone(),
        )));
    }
    tasks.push(tokio::spawn(peer_loop(
        Arc::clone(&shared),
        Arc::clone(&auditor),
        stop_rx.clone(),
    )));
    tasks.push(tokio::spawn(epoch_loop(Arc::clone(&shared), stop_rx)));
    tracing::info!(api = %api_addr, metrics = %metrics_addr, watcher = %watcher, "watcher started");
    Ok(Running {
        api_addr,
        metrics_addr,
        watcher,
        store,
        registry,
        stop: stop_tx,
        tasks,
    })
}

/// Waits `d` or until the stop signal; returns whether to stop.
async fn pause(stop: &mut watch::Receiver<bool>, d: Duration) -> bool {
    if *stop.borrow() {
        return true;
    }
    tokio::select! {
        () = tokio::time::sleep(d) => *stop.borrow(),
        _ = stop.changed() => true,
    }
}

/// Reads the slot and refreshes the registry snapshot.
async fn chain_loop<C: Chain>(s: Arc<Shared<C>>, mut stop: watch::Receiver<bool>) {
    let refresh = Duration::from_secs(s.config.chain.registry_refresh_secs);
    let mut last_refresh: Option<std::time::Instant> = None;
    // Failures are logged when they start and when they end, not on every attempt.
    let mut slot_failing = false;
    let mut registry_failing = false;
    loop {
        match s.chain.slot().await {
            Ok(slot) => {
                s.clock.observe(slot, crate::now_ms());
                set_gauge(&s.metrics.chain_slot, slot);
                if std::mem::take(&mut slot_failing) {
                    tracing::info!(slot, "reading the slot works again");
                }
            }
            Err(e) => {
                s.metrics.chain_error("slot");
                if !std::mem::replace(&mut slot_failing, true) {
                    tracing::warn!(error = %e, "reading the slot failed; ingest answers 503 until it works");
                } else {
                    tracing::debug!(error = %e, "reading the slot failed");
                }
            }
        }
        if last_refresh.is_none_or(|t| t.elapsed() >= refresh) {
            match Snapshot::load(&*s.chain).await {
                Ok(snap) => {
                    set_gauge(&s.metrics.registry_operators, snap.operators.len() as u64);
                    if std::mem::take(&mut registry_failing) || last_refresh.is_none() {
                        tracing::info!(
                            operators = snap.operators.len(),
                            score_program = snap.score.is_some(),
                            "registry read"
                        );
                    }
                    s.registry.set(snap);
                    last_refresh = Some(std::time::Instant::now());
                }
                Err(e) => {
                    s.metrics.chain_error("registry");
                    if !std::mem::replace(&mut registry_failing, true) {
                        tracing::warn!(error = %e, "reading the registry failed");
                    } else {
                        tracing::debug!(error = %e, "reading the registry failed");
                    }
                }
            }
        }
        if pause(
            &mut stop,
            Duration::from_millis(s.config.chain.slot_poll_ms),
        )
        .await
        {
            return;
        }
    }
}

/// The slot hash that seeds the audit of a batch that arrived at `arrival_slot`: the first
/// slot at or after `arrival_slot + delay` whose hash is in `hashes` (skipped slots have
/// none), provided it is after the arrival slot.
pub fn seed_for(hashes: &[(u64, [u8; 32])], arrival_slot: u64, delay: u64) -> Option<AuditSeed> {
    let want = arrival_slot.saturating_add(delay.max(1));
    hashes
        .iter()
        .filter(|(slot, _)| *slot >= want && *slot > arrival_slot)
        .min_by_key(|(slot, _)| *slot)
        .map(|(slot, hash)| AuditSeed {
            slot: *slot,
            hash: *hash,
        })
}

/// Audits accepted batches once their seed slot exists.
async fn audit_loop<C: Chain + 'static>(
    s: Arc<Shared<C>>,
    auditor: Arc<Auditor>,
    mut stop: watch::Receiver<bool>,
) {
    let mut attempts: HashMap<[u8; 32], (u32, u64)> = HashMap::new();
    loop {
        if pause(&mut stop, Duration::from_millis(s.config.audit.interval_ms)).await {
            return;
        }
        let Some(snap) = s.registry.get() else {
            continue;
        };
        let pending = match s.store.batches_awaiting_audit(64).await {
            Ok(p) => p,
            Err(e) => {
                s.metrics.store_error("batches_awaiting_audit");
                tracing::warn!(error = %e, "reading batches awaiting audit failed");
                continue;
            }
        };
        if pending.is_empty() {
            continue;
        }
        let hashes = match s.chain.slot_hashes().await {
            Ok(h) => h,
            Err(e) => {
                s.metrics.chain_error("slot_hashes");
                tracing::warn!(error = %e, "reading slot hashes failed");
                continue;
            }
        };
        let now = crate::now_ms();
        for batch in pending {
            if *stop.borrow() {
                return;
            }
            if attempts
                .get(&batch.batch_id)
                .is_some_and(|(_, next)| *next > now)
            {
                continue;
            }
            let Some(seed) = seed_for(&hashes, batch.arrival_slot, s.config.audit.seed_delay_slots)
            else {
                continue;
            };
            let record = {
                // The verifier the auditor takes is not `Send` (it may hold a `dyn
                // TicketCheck`), so the audit runs to completion on a blocking thread.
                let (s2, snap2, auditor2, batch2) = (
                    Arc::clone(&s),
                    Arc::clone(&snap),
                    Arc::clone(&auditor),
                    batch.clone(),
                );
                let handle = tokio::runtime::Handle::current();
                tokio::task::spawn_blocking(move || {
                    handle.block_on(audit_one(&s2, &snap2, &auditor2, &batch2, seed))
                })
                .await
                .ok()
                .flatten()
            };
            let Some(record) = record else {
                let entry = attempts.entry(batch.batch_id).or_insert((0, 0));
                entry.0 += 1;
                entry.1 = now + 1_000 * u64::from(1u32 << entry.0.min(6));
                continue;
            };
            let transient = matches!(
                record.reason.as_deref(),
                Some("miner_unreachable" | "miner_busy")
            );
            let tries = attempts.get(&batch.batch_id).map_or(0, |a| a.0) + 1;
            if !record_is_final(&record) || (transient && tries < AUDIT_ATTEMPTS) {
                s.metrics.audit("error");
                attempts.insert(
                    batch.batch_id,
                    (tries, now + 1_000 * u64::from(1u32 << tries.min(6))),
                );
                tracing::info!(batch = %hex::encode(batch.batch_id), reason = ?record.reason, tries, "audit to be retried");
                continue;
            }
            attempts.remove(&batch.batch_id);
            let outcome = if record.status == AuditStatus::Passed {
                "passed"
            } else {
                "failed"
            };
            match s.store.record_audit(&record).await {
                Ok(_) => {
                    s.metrics.audit(outcome);
                    if record.status == AuditStatus::Passed {
                        tracing::info!(batch = %hex::encode(batch.batch_id), k = record.k, "audit passed");
                    } else {
                        tracing::warn!(batch = %hex::encode(batch.batch_id), reason = ?record.reason, "audit failed");
                    }
                }
                Err(e) => {
                    s.metrics.store_error("record_audit");
                    tracing::error!(error = %e, "recording an audit failed");
                }
            }
        }
    }
}

fn record_is_final(r: &AuditRecord) -> bool {
    matches!(r.status, AuditStatus::Passed | AuditStatus::Failed)
}

/// One audit; `None` when the watcher itself could not attempt it (retried).
async fn audit_one<C: Chain>(
    s: &Shared<C>,
    snap: &Snapshot,
    auditor: &Auditor,
    batch: &BatchRecord,
    seed: AuditSeed,
) -> Option<AuditRecord> {
    let failed = |reason: &str, evidence: serde_json::Value| AuditRecord {
        batch_id: batch.batch_id,
        seed_slot: seed.slot,
        seed_hash: seed.hash,
        k: 0,
        status: AuditStatus::Failed,
        reason: Some(reason.to_owned()),
        evidence_json: evidence.to_string(),
        audited_ms: crate::now_ms(),
    };
    let Ok(receipt) = Receipt::from_json(&batch.receipt_json) else {
        return Some(failed("malformed_receipt", serde_json::Value::Null));
    };
    let leaf_count = receipt.body.integrity.leaf_count;
    let k = match s.config.audit.k {
        Some(k) => k.min(leaf_count),
        None => tolldns_receipts::sample_size(
            s.config.audit.confidence,
            s.config.audit.fake_fraction,
            leaf_count,
        )
        .unwrap_or(leaf_count),
    };
    // The sample is drawn from a seed after the arrival slot (checked here, drawn again by
    // the auditor from the same seed).
    if AuditSample::after(
        &seed,
        batch.arrival_slot,
        &receipt.body.integrity.merkle_root,
        leaf_count,
        k,
    )
    .is_err()
    {
        return None;
    }
    let wallet = batch.wallet.map(Pubkey::new_from_array);
    let Some(origin) = wallet.and_then(|w| snap.audit_api(&w)) else {
        return Some(failed(
            "no_audit_api",
            serde_json::json!({ "error": "the operator registered no audit API endpoint (transport 6)" }),
        ));
    };
    let view = snap.at(batch.arrival_slot);
    let ledger = StoredWindows {
        operator: receipt.body.operator_id,
        window_len: receipt.body.window_len,
        windows: Vec::new(),
    };
    let verifier = Verifier::new(s.config.deployment(), &view, &view, &ledger)
        .with_skew_ms(s.config.deployment.skew_ms);
    match auditor
        .audit_batch(
            &origin,
            &receipt,
            &batch.batch_id,
            batch.arrival_ms,
            seed.hash,
            k,
            &verifier,
        )
        .await
    {
        Ok(o) => Some(AuditRecord {
            batch_id: batch.batch_id,
            seed_slot: seed.slot,
            seed_hash: seed.hash,
            k: u32::try_from(o.sampled.max(k.min(leaf_count))).unwrap_or(u32::MAX),
            status: if o.passed {
                AuditStatus::Passed
            } else {
                AuditStatus::Failed
            },
            reason: o.reason,
            evidence_json: o.evidence.to_string(),
            audited_ms: crate::now_ms(),
        }),
        Err(e) => {
            tracing::warn!(error = %e, batch = %hex::encode(batch.batch_id), "audit could not be attempted");
            None
        }
    }
}

/// The transports probed.
const PROBED: [u8; 4] = [
    crate::registry::transport::UDP,
    crate::registry::transport::TCP,
    crate::registry::transport::DOT,
    crate::registry::transport::DOH,
];

/// Probes every Active miner on every registered transport, once per round.
async fn probe_loop<C: Chain>(
    s: Arc<Shared<C>>,
    prober: Arc<crate::probe::Prober>,
    tokens: Option<(Arc<crate::tokens::ProbeTokens>, SigningKey)>,
    mut stop: watch::Receiver<bool>,
) {
    let mut round: usize = 0;
    loop {
        if pause(&mut stop, Duration::from_secs(s.config.probe.interval_secs)).await {
            return;
        }
        let Some(snap) = s.registry.get() else {
            continue;
        };
        let names = &s.config.probe.names;
        if names.is_empty() {
            continue;
        }
        // The names rotate over a miner's transports as well as over rounds, so that every
        // round asks every miner more than one name (a restart, which starts the rounds
        // again, does not keep asking the same name).
        let mut references: HashMap<usize, Result<Vec<String>, crate::probe::ProbeError>> =
            HashMap::new();
        for op in snap.active_miners() {
            for (i, e) in op
                .endpoints
                .iter()
                .filter(|e| PROBED.contains(&e.transport))
                .enumerate()
            {
                if *stop.borrow() {
                    return;
                }
                let n = round.wrapping_add(i) % names.len();
                let qname = &names[n];
                let reference = match references.entry(n) {
                    std::collections::hash_map::Entry::Occupied(o) => o.into_mut(),
                    std::collections::hash_map::Entry::Vacant(v) => {
                        v.insert(prober.reference(qname, 1).await)
                    }
                };
                let credential = match &tokens {
                    Some((t, wallet)) => take_token(&s, t, wallet).await,
                    None => None,
                };
                probe_one(
                    &s,
                    &snap,
                    &prober,
                    op.wallet,
                    e,
                    qname,
                    &*reference,
                    credential,
                )
                .await;
            }
        }
        round = round.wrapping_add(1);
    }
}

async fn take_token<C: Chain>(
    s: &Shared<C>,
    tokens: &crate::tokens::ProbeTokens,
    wallet: &SigningKey,
) -> Option<(Vec<u8>, [u8; 16])> {
    if tokens.remaining() == 0 {
        if let Err(e) = tokens.fetch(&s.config.probe.issuer_url, wallet, 16).await {
            tracing::warn!(error = %e, "buying probe tokens failed");
        }
    }
    match tokens.take() {
        Ok(t) => t,
        Err(e) => {
            tracing::warn!(error = %e, "taking a probe token failed");
            None
        }
    }
}

#[allow(clippy::too_many_arguments)]
async fn probe_one<C: Chain>(
    s: &Shared<C>,
    snap: &Snapshot,
    prober: &crate::probe::Prober,
    wallet: Pubkey,
    endpoint: &tolldns_chain::accounts::Endpoint,
    qname: &str,
    reference: &Result<Vec<String>, crate::probe::ProbeError>,
    credential: Option<(Vec<u8>, [u8; 16])>,
) {
    let transport = crate::registry::transport::name(endpoint.transport);
    let target = crate::probe::ProbeTarget {
        transport: endpoint.transport,
        address: endpoint.address.clone(),
        tls_name: None,
    };
    let (cred, ticket) = match credential {
        Some((token, ticket)) => (crate::probe::Credential::Token(token), ticket),
        None => (crate::probe::Credential::None, [0u8; 16]),
    };
    let sent_ms = crate::now_ms();
    let send_slot = s.clock.latest();
    let epoch = snap.epoch_of(send_slot);
    let ticket_record = |status, reason: Option<&str>| ProbeTicketRecord {
        ticket,
        wallet: wallet.to_bytes(),
        epoch,
        probes_sent: 1,
        leaves_found: None,
        status,
        reason: reason.map(str::to_owned),
        updated_ms: sent_ms,
    };
    if ticket != [0u8; 16] {
        // Written ahead: if the watcher stops before the outcome is recorded, the ticket is
        // still known (served to the other watchers, looked up as an interrupted probe).
        if let Err(e) = s
            .store
            .upsert_probe_ticket(&ticket_record(TicketStatus::Open, Some(INTERRUPTED)))
            .await
        {
            s.metrics.store_error("upsert_probe_ticket");
            tracing::error!(error = %e, "recording a probe ticket failed");
        }
    }
    let outcome = prober.probe(&target, qname, 1, &cred).await;
    let (status, latency, evidence, label) = match (&outcome, reference) {
        (Err(e), _) => (
            ProbeStatus::Error,
            None,
            serde_json::json!({ "error": e.to_string() }),
            "error",
        ),
        (Ok(o), _) if !o.answered => (ProbeStatus::Timeout, None, o.evidence.clone(), "unanswered"),
        (Ok(o), _) if o.rcode.as_deref() == Some("REFUSED") => (
            ProbeStatus::Refused,
            Some(o.latency_us),
            o.evidence.clone(),
            "refused",
        ),
        (Ok(o), Err(e)) => {
            let mut ev = o.evidence.clone();
            ev["reference_error"] = serde_json::Value::String(e.to_string());
            (ProbeStatus::Error, Some(o.latency_us), ev, "unchecked")
        }
        (Ok(o), Ok(r)) => {
            let mut ev = o.evidence.clone();
            ev["reference"] = serde_json::json!(r);
            if crate::probe::compare(&o.answers, r) {
                (ProbeStatus::Answered, Some(o.latency_us), ev, "correct")
            } else {
                (ProbeStatus::WrongAnswer, Some(o.latency_us), ev, "wrong")
            }
        }
    };
    s.metrics.probe(label, transport);
    let mut id_input = Vec::with_capacity(64);
    id_input.extend_from_slice(wallet.as_ref());
    id_input.push(endpoint.transport);
    id_input.extend_from_slice(&sent_ms.to_le_bytes());
    id_input.extend_from_slice(&rand::random::<[u8; 16]>());
    let record = ProbeRecord {
        probe_id: crate::store::object_hash(&id_input),
        wallet: wallet.to_bytes(),
        transport: endpoint.transport,
        epoch,
        sent_ms,
        send_slot,
        latency_us: latency,
        status,
        ticket,
        qname: qname.to_owned(),
        evidence_json: evidence.to_string(),
    };
    let mut writes = vec![crate::store::Write::Probe(record)];
    if ticket != [0u8; 16] {
        // An answered probe's leaves are looked up (and must be there); an unanswered one's
        // neither gate nor count.
        writes.push(crate::store::Write::ProbeTicket(
            if matches!(status, ProbeStatus::Answered | ProbeStatus::WrongAnswer) {
                ticket_record(TicketStatus::Open, None)
            } else {
                ticket_record(TicketStatus::Error, Some("unanswered"))
            },
        ));
    }
    if let Err(e) = s.store.write_all(&writes).await {
        s.metrics.store_error("write_all");
        tracing::error!(error = %e, "recording a probe failed");
    }
}

/// Looks up the leaves of the watcher's own probe tickets in the miners' batches, once the
/// batch covering the probe arrived (or its arrival bound passed).
async fn ticket_loop<C: Chain>(
    s: Arc<Shared<C>>,
    auditor: Arc<Auditor>,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        if pause(
            &mut stop,
            Duration::from_millis(s.config.audit.interval_ms.max(1_000)),
        )
        .await
        {
            return;
        }
        let Some(snap) = s.registry.get() else {
            continue;
        };
        let epoch = snap.epoch_of(s.clock.latest());
        for e in [epoch.saturating_sub(1), epoch] {
            if let Err(err) = check_tickets(&s, &snap, &auditor, e).await {
                s.metrics.store_error("probe_tickets");
                tracing::warn!(error = %err, epoch = e, "probe ticket lookups failed");
            }
            if *stop.borrow() {
                return;
            }
        }
    }
}

async fn check_tickets<C: Chain>(
    s: &Shared<C>,
    snap: &Snapshot,
    auditor: &Auditor,
    epoch: u64,
) -> Result<(), crate::store::StoreError> {
    let tickets = s.store.probe_tickets_in_epoch(epoch).await?;
    let open: Vec<_> = tickets
        .into_iter()
        .filter(|t| t.status == TicketStatus::Open)
        .collect();
    if open.is_empty() {
        return Ok(());
    }
    let probes = s.store.probes_in_epoch(epoch).await?;
    let mut batches = s.store.batches_in_epoch(epoch).await?;
    batches.extend(s.store.batches_in_epoch(epoch.saturating_add(1)).await?);
    let now = crate::now_ms();
    for mut t in open {
        let Some(probe) = probes.iter().find(|p| p.ticket == t.ticket) else {
            // A probe whose outcome was never recorded (the watcher stopped): its leaf, if
            // the miner recorded one, is a probe, not client work; a missing one is no
            // failure. In flight for at most the probe timeout.
            let timeout = s.config.probe.timeout_ms;
            if t.reason.as_deref() == Some(INTERRUPTED)
                && t.updated_ms.saturating_add(timeout.saturating_mul(2)) < now
            {
                let l = lookup_leaves(
                    s,
                    snap,
                    auditor,
                    &batches,
                    (t.wallet, t.ticket),
                    (t.updated_ms, t.updated_ms.saturating_add(timeout)),
                    1,
                    now,
                )
                .await;
                if l.pending && l.found == 0 {
                    continue;
                }
                // `updated_ms` keeps the send time (where the other watchers look).
                t.leaves_found = Some(l.found);
                t.status = if l.found > 0 {
                    TicketStatus::Found
                } else {
                    TicketStatus::Error
                };
                s.store.upsert_probe_ticket(&t).await?;
            }
            continue;
        };
        // The leaf's timestamp is when the miner answered: between the send and the answer,
        // so in the window of either end (both are looked in).
        let answered = probe
            .sent_ms
            .saturating_add(probe.latency_us.unwrap_or(0).div_ceil(1000));
        let Lookup {
            found,
            pending,
            failure,
            evidence,
        } = lookup_leaves(
            s,
            snap,
            auditor,
            &batches,
            (t.wallet, t.ticket),
            (
                probe.sent_ms,
                answered.saturating_add(crate::stats::LEAF_SLACK_MS),
            ),
            t.probes_sent,
            now,
        )
        .await;
        if pending && failure.is_none() && found < t.probes_sent {
            continue;
        }
        t.leaves_found = Some(found);
        if failure.is_none() && found >= t.probes_sent.max(1) {
            t.status = TicketStatus::Found;
            t.reason = None;
        } else {
            t.status = TicketStatus::Missing;
            t.reason = Some(format!(
                "{}: {} leaves carry the ticket, {} probes sent; {}",
                failure.as_deref().unwrap_or("ticket_leaves_missing"),
                found,
                t.probes_sent,
                serde_json::Value::Array(evidence)
            ));
        }
        t.updated_ms = now;
        s.store.upsert_probe_ticket(&t).await?;
    }
    Ok(())
}

/// What looking up one ticket's leaves in a miner's batches found.
struct Lookup {
    /// Leaves found (verified against the receipts).
    found: u64,
    /// Whether a covering batch may still arrive or the miner could not be asked.
    pending: bool,
    /// Why a lookup failed (the miner's answer did not verify, no audit API, ...).
    failure: Option<String>,
    /// The lookups' evidence.
    evidence: Vec<serde_json::Value>,
}

/// Looks up the leaves of `ticket` in `wallet`'s accepted batches among `batches` whose
/// windows cover `from_ms ..= to_ms` (each window's batch asked once, in window order, until
/// `enough` leaves were found).
#[allow(clippy::too_many_arguments)]
async fn lookup_leaves<C: Chain>(
    s: &Shared<C>,
    snap: &Snapshot,
    auditor: &Auditor,
    batches: &[BatchRecord],
    (wallet, ticket): ([u8; 32], [u8; 16]),
    (from_ms, to_ms): (u64, u64),
    enough: u64,
    now: u64,
) -> Lookup {
    let len = s.config.deployment().window_len;
    let first = tolldns_core::WindowId::containing(from_ms, len);
    let last = tolldns_core::WindowId::containing(to_ms.max(from_ms), len);
    let mut out = Lookup {
        found: 0,
        pending: false,
        failure: None,
        evidence: Vec::new(),
    };
    let mut asked: Vec<[u8; 32]> = Vec::new();
    for w in first.get()..=last.get() {
        if out.found >= enough.max(1) {
            // The rest is not needed (and a window without a batch yet is not waited for).
            out.pending = false;
            break;
        }
        let start = tolldns_core::WindowId(w).start_ms(len).unwrap_or(0);
        let end = tolldns_core::WindowId(w).end_ms(len).unwrap_or(u64::MAX);
        let batch = batches.iter().find(|b| {
            b.wallet == Some(wallet)
                && b.verdict.is_accepted()
                && b.window_start_ms <= start
                && end <= b.window_end_ms
        });
        let Some(batch) = batch else {
            let bound = end
                .saturating_add(s.config.deployment.max_delay_ms)
                .saturating_add(s.config.deployment.skew_ms);
            if now <= bound {
                out.pending = true;
            }
            continue;
        };
        if asked.contains(&batch.batch_id) {
            continue;
        }
        asked.push(batch.batch_id);
        let Ok(receipt) = Receipt::from_json(&batch.receipt_json) else {
            continue;
        };
        let Some(origin) = snap.audit_api(&Pubkey::new_from_array(wallet)) else {
            out.failure = Some("no_audit_api".to_owned());
            continue;
        };
        match auditor
            .lookup_ticket(&origin, &receipt, &batch.batch_id, ticket, 0, u64::MAX)
            .await
        {
            Ok(l) if l.passed => {
                out.found = out.found.saturating_add(l.found);
                out.evidence.push(l.evidence);
            }
            Ok(l)
                if matches!(
                    l.reason.as_deref(),
                    Some("miner_unreachable" | "miner_busy")
                ) =>
            {
                out.pending = true;
            }
            Ok(l) => {
                out.failure = l.reason.clone().or(Some("ticket_lookup_failed".to_owned()));
                out.evidence.push(l.evidence);
            }
            Err(e) => {
                tracing::warn!(error = %e, "ticket lookup could not be attempted");
                out.pending = true;
            }
        }
    }
    out
}

/// The outcome label of a failed peer fetch, and what happened.
type PeerFetchError = (&'static str, String);

/// `GET {origin}/v1/epochs/{epoch}/probe-tickets`, checked to be `peer`'s list of `epoch`.
async fn fetch_peer_tickets(
    origin: &str,
    tls: Option<&Arc<rustls::ClientConfig>>,
    peer: &Pubkey,
    epoch: u64,
    timeout: Duration,
) -> Result<Vec<crate::publish::PeerTicket>, PeerFetchError> {
    use tolldns_service::http::{Origin, connect_origin, send};
    let o = Origin::parse(origin).map_err(|e| ("refused", e.to_string()))?;
    let path = format!("/v1/epochs/{epoch}/probe-tickets");
    let request = http::Request::get(path.as_str())
        .header(http::header::HOST, o.authority())
        .body(http_body_util::Full::new(bytes::Bytes::new()))
        .map_err(|e| ("refused", e.to_string()))?;
    let reply = tokio::time::timeout(timeout, async {
        let io = connect_origin(&o, tls).await?;
        send(io, false, request, crate::publish::MAX_PEER_TICKETS_BYTES).await
    })
    .await
    .map_err(|_| ("unreachable", format!("GET {o}{path}: timed out")))?
    .map_err(|e| ("unreachable", format!("GET {o}{path}: {e:#}")))?;
    match reply.status.as_u16() {
        200 => crate::publish::parse_probe_tickets(&reply.body, &peer.to_string(), epoch)
            .map_err(|e| ("malformed", format!("GET {o}{path}: {e}"))),
        404 | 425 | 503 => Err(("not_ready", format!("GET {o}{path}: {}", reply.describe()))),
        _ => Err(("refused", format!("GET {o}{path}: {}", reply.describe()))),
    }
}

/// Fetches the other watchers' probe tickets of every ended, unclosed epoch and looks them
/// up at the miners.
async fn peer_loop<C: Chain + 'static>(
    s: Arc<Shared<C>>,
    auditor: Arc<Auditor>,
    mut stop: watch::Receiver<bool>,
) {
    let me = tolldns_chain::pubkey_of(&s.key);
    loop {
        if pause(
            &mut stop,
            Duration::from_millis(s.config.settle.interval_ms),
        )
        .await
        {
            return;
        }
        let Some(snap) = s.registry.get() else {
            continue;
        };
        let slot = s.clock.latest();
        let current = snap.epoch_of(slot);
        let next = match s.store.get_cursor(crate::publish::CLOSED_CURSOR).await {
            Ok(Some(n)) => n,
            Ok(None) => continue,
            Err(e) => {
                s.metrics.store_error("peer_tickets");
                tracing::warn!(error = %e, "reading the closed-epoch cursor failed");
                continue;
            }
        };
        for epoch in next.max(current.saturating_sub(crate::settle::SETTLE_LOOKBACK))..current {
            if let Err(e) = fetch_peers(&s, &snap, &me, epoch, slot).await {
                s.metrics.store_error("peer_tickets");
                tracing::warn!(error = %e, epoch, "storing peer probe tickets failed");
            }
            if let Err(e) = check_peer_tickets(&s, &snap, &auditor, epoch, slot).await {
                s.metrics.store_error("peer_tickets");
                tracing::warn!(error = %e, epoch, "peer probe ticket lookups failed");
            }
            if *stop.borrow() {
                return;
            }
        }
    }
}

/// The slot after which what is missing of `epoch`'s peer tickets is given up.
fn peer_give_up_slot(s: &Shared<impl Chain>, snap: &Snapshot, epoch: u64) -> u64 {
    epoch
        .saturating_add(1)
        .saturating_mul(snap.epoch_len_slots())
        .saturating_add(s.config.settle.peer_wait_slots)
}

async fn fetch_peers<C: Chain>(
    s: &Shared<C>,
    snap: &Snapshot,
    me: &Pubkey,
    epoch: u64,
    slot: u64,
) -> Result<(), crate::store::StoreError> {
    for (peer, origin) in snap.peer_watchers(me, epoch) {
        let cursor = crate::settle::peer_cursor(epoch, &peer);
        if s.store.get_cursor(&cursor).await?.is_some() {
            continue;
        }
        let timeout = Duration::from_millis(s.config.settle.peer_timeout_ms);
        match fetch_peer_tickets(&origin, s.peer_tls.as_ref(), &peer, epoch, timeout).await {
            Ok(list) => {
                let now = crate::now_ms();
                let mut writes: Vec<crate::store::Write> = list
                    .iter()
                    .map(|t| {
                        crate::store::Write::PeerTicket(PeerTicketRecord {
                            watcher: peer.to_bytes(),
                            ticket: t.ticket,
                            wallet: t.miner,
                            epoch,
                            sent_ms: t.sent_ms,
                            leaves_found: None,
                            status: TicketStatus::Open,
                            reason: None,
                            updated_ms: now,
                        })
                    })
                    .collect();
                writes.push(crate::store::Write::Cursor {
                    name: cursor,
                    value: 1,
                });
                s.store.write_all(&writes).await?;
                s.peer_fetches
                    .get_or_create(&vec![("outcome", "fetched".to_owned())])
                    .inc();
                tracing::info!(epoch, watcher = %peer, tickets = list.len(), "peer probe tickets fetched");
            }
            Err((outcome, message)) => {
                s.peer_fetches
                    .get_or_create(&vec![("outcome", outcome.to_owned())])
                    .inc();
                if slot >= peer_give_up_slot(s, snap, epoch) {
                    s.store.set_cursor(&cursor, 2).await?;
                    s.peer_fetches
                        .get_or_create(&vec![("outcome", "gave_up".to_owned())])
                        .inc();
                    tracing::warn!(epoch, watcher = %peer, error = %message, "peer probe tickets given up: its probes are not discounted this epoch");
                } else if outcome == "not_ready" {
                    tracing::debug!(epoch, watcher = %peer, error = %message, "peer probe tickets not ready");
                } else {
                    tracing::info!(epoch, watcher = %peer, error = %message, "peer probe tickets not fetched; retrying");
                }
            }
        }
    }
    Ok(())
}

/// Looks up the open peer tickets of `epoch` at the miners (never trusting the peer's
/// counts: only the leaves this watcher finds count).
async fn check_peer_tickets<C: Chain + 'static>(
    s: &Arc<Shared<C>>,
    snap: &Arc<Snapshot>,
    auditor: &Arc<Auditor>,
    epoch: u64,
    slot: u64,
) -> Result<(), crate::store::StoreError> {
    let open: Vec<PeerTicketRecord> = s
        .store
        .peer_tickets_in_epoch(epoch)
        .await?
        .into_iter()
        .filter(|t| t.status == TicketStatus::Open)
        .collect();
    if open.is_empty() {
        return Ok(());
    }
    let mut batches = s.store.batches_in_epoch(epoch).await?;
    batches.extend(s.store.batches_in_epoch(epoch.saturating_add(1)).await?);
    let batches = Arc::new(batches);
    // A lookup whose batch has not arrived (nor its arrival bound passed) is waited for
    // until `report_after_slots` past the fetch's give-up slot.
    let give_up = slot
        >= peer_give_up_slot(s, snap, epoch).saturating_add(s.config.settle.report_after_slots);
    // The answer is bounded by this watcher's own probe timeout (a peer's longer one only
    // leaves some of its probe leaves counted as client work).
    let answer_ms = s.config.probe.timeout_ms;
    // One task per miner, its tickets one after another: a miner bounds the requests one
    // auditor may have in flight (more are answered 503 and retried later).
    let mut by_miner: std::collections::BTreeMap<[u8; 32], Vec<PeerTicketRecord>> =
        std::collections::BTreeMap::new();
    for t in open {
        by_miner.entry(t.wallet).or_default().push(t);
    }
    let mut set = tokio::task::JoinSet::new();
    for (_, tickets) in by_miner {
        let (s, snap, auditor, batches) = (
            Arc::clone(s),
            Arc::clone(snap),
            Arc::clone(auditor),
            Arc::clone(&batches),
        );
        set.spawn(async move {
            for mut t in tickets {
                let now = crate::now_ms();
                let l = lookup_leaves(
                    &s,
                    &snap,
                    &auditor,
                    &batches,
                    (t.wallet, t.ticket),
                    (t.sent_ms, t.sent_ms.saturating_add(answer_ms)),
                    1,
                    now,
                )
                .await;
                // Wait for the covering batches while they may still arrive (or give up).
                if l.pending && l.found == 0 && l.failure.is_none() && !give_up {
                    continue;
                }
                t.leaves_found = Some(l.found);
                (t.status, t.reason) = match (&l.failure, l.found) {
                    (Some(f), 0) => (
                        TicketStatus::Error,
                        Some(format!("{f}: {}", serde_json::Value::Array(l.evidence))),
                    ),
                    (None, 0) => (
                        TicketStatus::Missing,
                        Some(if l.pending {
                            "lookup_incomplete".to_owned()
                        } else {
                            "no_leaves".to_owned()
                        }),
                    ),
                    (_, _) => (TicketStatus::Found, None),
                };
                t.updated_ms = now;
                s.store.upsert_peer_ticket(&t).await?;
            }
            Ok::<(), crate::store::StoreError>(())
        });
    }
    let mut result = Ok(());
    while let Some(done) = set.join_next().await {
        if let Ok(Err(e)) = done {
            result = Err(e);
        }
    }
    result
}

/// Closes epochs, reports them and finalizes them ([`crate::settle`]).
async fn epoch_loop<C: Chain>(s: Arc<Shared<C>>, mut stop: watch::Receiver<bool>) {
    let mut settle = crate::settle::Settler::default();
    loop {
        if pause(
            &mut stop,
            Duration::from_millis(s.config.settle.interval_ms),
        )
        .await
        {
            return;
        }
        let Some(snap) = s.registry.get() else {
            continue;
        };
        let slot = s.clock.latest();
        let ctx = crate::settle::Context {
            config: &s.config,
            chain: &*s.chain,
            store: &s.store,
            key: &s.key,
            watcher: &s.watcher,
            snap: &snap,
            slot,
            metrics: &s.metrics,
            ingest_lock: &s.ingest_lock,
        };
        if let Err(e) = settle.tick(&ctx).await {
            match &e {
                crate::settle::SettleError::Store(_) => {
                    s.metrics.store_error("settle");
                }
                crate::settle::SettleError::Chain(_) => s.metrics.chain_error("settle"),
            }
            tracing::warn!(error = %e, "epoch close or settlement failed; retrying");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeds_post_date_the_arrival() {
        let hashes: Vec<(u64, [u8; 32])> = [107u64, 105, 104, 101, 100]
            .iter()
            .map(|s| (*s, [u8::try_from(*s).unwrap(); 32]))
            .collect();
        // The slot `arrival + delay`, or the first later one with a hash (skipped slots).
        assert_eq!(seed_for(&hashes, 100, 1).unwrap().slot, 101);
        assert_eq!(seed_for(&hashes, 100, 2).unwrap().slot, 104);
        assert_eq!(seed_for(&hashes, 100, 0).unwrap().slot, 101);
        assert_eq!(seed_for(&hashes, 104, 2).unwrap().slot, 107);
        assert!(seed_for(&hashes, 107, 1).is_none());
        let s = seed_for(&hashes, 100, 5).unwrap();
        assert_eq!((s.slot, s.hash), (105, [105; 32]));
    }

    #[test]
    fn store_urls_are_printed_without_passwords() {
        assert_eq!(
            redact("postgres://w:secret@db.example/w"),
            "postgres://w:***@db.example/w"
        );
        assert_eq!(redact("postgres://w@db/w"), "postgres://w@db/w");
        assert_eq!(redact("sqlite://./d/watcher.db"), "sqlite://./d/watcher.db");
    }
}
