//! The running issuer: wires keys, the ledger (and its admin socket), the chain sync (with
//! `[chain]`), TLS, the HTTP server and signals.
//!
//! SIGTERM and SIGINT stop it: the listener closes, requests in flight finish (at most
//! [`crate::server::SHUTDOWN_GRACE`]) and it exits 0. SIGHUP reloads the keys from the data
//! directory (after `tolldns-issuer key rotate`); everything else needs a restart.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context as _;
use prometheus_client::registry::Registry;
use tokio::sync::watch;
use tolldns_tickets::{IssuerService, IssuingKey, PaymentCheck};

use crate::config::Config;
use crate::keys::KeyStore;
use crate::ledger::PrepaidLedger;
use crate::metrics::Metrics;
use crate::server::AppState;

/// Wall-clock seconds since the Unix epoch.
pub fn now_unix_s() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The lines printed once the issuer serves (the directory URL is at the origin of the
/// published request URL).
pub fn banner(config: &Config, bound: std::net::SocketAddr, keys: &[IssuingKey]) -> String {
    let scheme = if config.tls_enabled() {
        "https"
    } else {
        "http"
    };
    let request_uri = config.request_uri(bound);
    let mut out = String::new();
    for (i, k) in keys.iter().enumerate() {
        out.push_str(&format!(
            "key id {} ({}, not-before {})\n",
            hex::encode(k.key.public().key_id()),
            if i == 0 { "current" } else { "retired" },
            k.not_before
        ));
    }
    out.push_str(&format!(
        "directory {}{}\n",
        crate::config::origin(&request_uri),
        tolldns_tickets::DIRECTORY_PATH
    ));
    out.push_str(&format!("issuance {request_uri}\n"));
    if bound.ip().is_unspecified() && config.issuer_request_uri.is_none() {
        out.push_str(
            "note: set issuer_request_uri to the public URL clients reach; the derived one names an unspecified address\n",
        );
    }
    out.push_str(&format!("listening {scheme}://{bound}\n"));
    out
}

fn load_keys(config: &Config) -> anyhow::Result<Vec<IssuingKey>> {
    let store = KeyStore::new(&config.data_dir);
    let (keys, created) = store
        .load_or_create(config.key_bits, now_unix_s())
        .context("loading the issuer keys")?;
    if created {
        tracing::info!(path = %store.current_path().display(), bits = config.key_bits, "generated a new issuer key");
    }
    Ok(keys)
}

/// Runs the issuer until SIGTERM or SIGINT.
///
/// # Errors
///
/// Startup failures (keys, ledger, TLS, port), with context.
pub async fn run(config: Config, config_path: Option<PathBuf>) -> anyhow::Result<()> {
    let mut signals = crate::signals::Signals::new().context("installing signal handlers")?;
    crate::keys::create_private_dir(&config.data_dir)
        .with_context(|| format!("creating data directory {}", config.data_dir.display()))?;
    let keys = load_keys(&config)?;
    let ledger_path = config.ledger_path();
    let ledger = Arc::new(
        PrepaidLedger::open(&ledger_path)
            .with_context(|| format!("opening the prepaid ledger {}", ledger_path.display()))?,
    );
    #[cfg(unix)]
    let admin = {
        let path = config.data_dir.join(crate::admin::ADMIN_SOCKET);
        crate::admin::server::AdminSocket::bind(&path)
            .with_context(|| format!("binding the admin socket {}", path.display()))?
    };
    let chain = config
        .chain
        .as_ref()
        .map(crate::chain::ChainClient::new)
        .transpose()
        .context("setting up the chain sync ([chain])")?;
    let tls = match (&config.tls.cert, &config.tls.key) {
        (Some(cert), Some(key)) => Some(tokio_rustls::TlsAcceptor::from(
            crate::tls::server_config(cert, key).context("loading the TLS certificate")?,
        )),
        _ => None,
    };
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("binding {} (listen)", config.listen))?;
    let bound = listener.local_addr()?;
    let (stop_tx, stop_rx) = watch::channel(false);
    let request_uri = config.request_uri(bound);
    #[cfg(unix)]
    let admin_task = tokio::spawn(admin.serve(Arc::clone(&ledger), stop_rx.clone()));

    let mut registry = Registry::default();
    let metrics = Arc::new(Metrics::register(&mut registry));
    // The sync credits through this process's ledger handle: it is the ledger's one owner.
    let chain_task = chain.map(|client| {
        tokio::spawn(crate::chain::run(
            client,
            Arc::clone(&ledger),
            Arc::clone(&metrics),
            stop_rx.clone(),
        ))
    });
    let payments: Arc<dyn PaymentCheck> = ledger;
    let banner = banner(&config, bound, &keys);
    let state = Arc::new(AppState::new(
        IssuerService::new(keys, request_uri.clone(), Arc::clone(&payments)),
        registry,
        metrics,
        config.directory_max_age_secs,
    ));
    let server = tokio::spawn(crate::server::serve(
        listener,
        tls,
        Arc::clone(&state),
        stop_rx,
    ));
    print!("{banner}");
    tracing::info!(config = ?config_path, "serving");

    loop {
        match signals.next().await {
            crate::signals::Signal::Stop(name) => {
                tracing::info!(signal = name, "stopping");
                break;
            }
            crate::signals::Signal::Reload => match load_keys(&config) {
                Ok(keys) => {
                    let current = keys
                        .first()
                        .map(|k| hex::encode(k.key.public().key_id()))
                        .unwrap_or_default();
                    let published = keys.len();
                    state.replace_service(IssuerService::new(
                        keys,
                        request_uri.clone(),
                        Arc::clone(&payments),
                    ));
                    tracing::info!(current, published, "SIGHUP: issuer keys reloaded");
                }
                Err(e) => tracing::error!(error = format!("{e:#}"), "SIGHUP: keys not reloaded"),
            },
        }
    }
    state.set_stopping();
    let _ = stop_tx.send(true);
    let _ = server.await;
    #[cfg(unix)]
    let _ = admin_task.await;
    if let Some(task) = chain_task {
        let _ = task.await;
    }
    tracing::info!("stopped");
    Ok(())
}
