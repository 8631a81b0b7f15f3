//! A runnable edge for benchmarks and manual tests.
//!
//! ```text
//! cargo run --release -p tolldns-ingress --example edge -- \
//!     --udp 127.0.0.1:5400 --tcp 127.0.0.1:5400 --dot 127.0.0.1:8953 --doh 127.0.0.1:9443 \
//!     --cert certs/cert.pem --key certs/key.pem --upstream 127.0.0.1:5301 [--no-receipts]
//! ```
//!
//! It generates an ephemeral receipt-signing key and name key, logs every closed batch, and
//! stops on Ctrl-C (closing the current window first).

use std::process::ExitCode;
use std::sync::Arc;

use rand::RngCore;
use tolldns_core::NameKey;
use tolldns_ingress::{ChannelSink, Edge, EdgeConfig, ReceiptsSetup, StaticNameKey};

fn usage() -> ExitCode {
    eprintln!(
        "usage: edge [--udp ADDR]... [--tcp ADDR]... [--dot ADDR]... [--doh ADDR]... \
         [--doh-path PATH] [--cert PEM --key PEM] --upstream SPEC... [--window-secs N] \
         [--rate N] [--no-receipts] [--no-attack-mode]"
    );
    ExitCode::from(2)
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let mut cfg = EdgeConfig::default();
    cfg.listen.udp.clear();
    cfg.listen.tcp.clear();
    let mut receipts = true;
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = || args.next();
        let ok = match flag.as_str() {
            "--udp" => value()
                .and_then(|v| v.parse().ok())
                .map(|a| cfg.listen.udp.push(a)),
            "--tcp" => value()
                .and_then(|v| v.parse().ok())
                .map(|a| cfg.listen.tcp.push(a)),
            "--dot" => value()
                .and_then(|v| v.parse().ok())
                .map(|a| cfg.listen.dot.push(a)),
            "--doh" => value()
                .and_then(|v| v.parse().ok())
                .map(|a| cfg.listen.doh.push(a)),
            "--doh-path" => value().map(|v| cfg.listen.doh_path = v),
            "--cert" => value().map(|v| cfg.tls.cert = Some(v.into())),
            "--key" => value().map(|v| cfg.tls.key = Some(v.into())),
            "--upstream" => value().map(|v| cfg.upstream.servers.push(v)),
            "--window-secs" => value()
                .and_then(|v| v.parse().ok())
                .map(|n| cfg.receipts.window_secs = n),
            "--rate" => value().and_then(|v| v.parse().ok()).map(|n: u32| {
                cfg.admission.rate_per_prefix = n;
                cfg.admission.burst_per_prefix = n.saturating_mul(2);
            }),
            "--no-receipts" => {
                receipts = false;
                Some(())
            }
            "--no-attack-mode" => {
                cfg.attack.enabled = false;
                Some(())
            }
            "-h" | "--help" => None,
            _ => None,
        };
        if ok.is_none() {
            return usage();
        }
    }
    if cfg.upstream.servers.is_empty() {
        return usage();
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cfg, receipts)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cfg: EdgeConfig, receipts: bool) -> Result<(), Box<dyn std::error::Error>> {
    let mut registry = prometheus_client::registry::Registry::default();
    let setup = if receipts {
        let mut seed = [0u8; 32];
        rand::thread_rng().fill_bytes(&mut seed);
        let signing_key = ed25519_dalek::SigningKey::from_bytes(&seed);
        rand::thread_rng().fill_bytes(&mut seed);
        let (sink, mut rx) = ChannelSink::new(64);
        tokio::spawn(async move {
            while let Some(batch) = rx.recv().await {
                let body = &batch.receipt().body;
                tracing::info!(
                    window = body.window_id.get(),
                    leaves = body.integrity.leaf_count,
                    requests = body.service_summary.request_count,
                    "signed batch receipt"
                );
            }
        });
        let operator: String = signing_key
            .verifying_key()
            .to_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        tracing::info!(%operator, "ephemeral receipt-signing key");
        Some(ReceiptsSetup {
            signing_key,
            name_keys: Arc::new(StaticNameKey(NameKey(seed))),
            sink: Arc::new(sink),
        })
    } else {
        None
    };
    let edge = Edge::start(cfg, None, setup, &mut registry).await?;
    tracing::info!(addrs = ?edge.local_addrs(), "serving; Ctrl-C to stop");
    tokio::signal::ctrl_c().await?;
    let leaves = edge.shutdown().await;
    tracing::info!(leaves, "stopped");
    // Let the logger task print the last batch.
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    Ok(())
}
