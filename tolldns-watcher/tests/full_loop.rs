//! The whole watcher loop against real nodes in process: a miner node (DNS edge over UDP, TCP,
//! DoT and DoH, journal, audit API), a ticket issuer and an authoritative upstream. A client
//! pays for ticketed queries; the miner's batches reach the watcher's ingest; the watcher
//! audits them (tokens included), probes the miner on every transport with probe tokens it
//! buys from the issuer, finds its probe tickets' leaves, closes the epoch and reports the
//! miner with full uptime.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::missing_panics_doc)]

mod audit_probe_support;
mod support;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use audit_probe_support::{DEPLOYMENT, ISSUER_NAME, NAME, Net};
use base64::Engine as _;
use ed25519_dalek::SigningKey;
use tolldns_chain::Pubkey;
use tolldns_core::{WindowId, WindowLen};
use tolldns_watcher::probe::{Credential, ProbeTarget, Prober, transport};
use tolldns_watcher::store::{AuditStatus, ProbeStatus, TicketStatus};

use support::{StaticChain, TestMiner, config, http};

async fn get(addr: std::net::SocketAddr, path: &str) -> (u16, String) {
    let path = path.to_owned();
    tokio::task::spawn_blocking(move || http(addr, "GET", &path, &[], b""))
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_miner_node_is_audited_probed_and_reported() {
    // 40 probe tokens bought into `<dir>/watcher/probe-tokens.json`: 20 for a paying client,
    // the rest for the watcher's probes (its data directory is `<dir>/watcher`).
    let net = Net::start("full-loop", 40).await;
    let mut paid_tokens = Vec::new();
    for _ in 0..20 {
        paid_tokens.push(net.tokens.take().unwrap().unwrap().0);
    }
    let dir = net.dir.clone();
    std::fs::create_dir_all(&dir).unwrap();
    let key_file = dir.join("watcher-key.json");
    tolldns_service::keyfile::write(&key_file, &net.watcher, false).unwrap();
    let wallet_file = dir.join("probe-wallet-key.json");
    tolldns_service::keyfile::write(&wallet_file, &net.wallet, false).unwrap();

    let wallet = Pubkey::new_from_array([61; 32]);
    let miner = TestMiner {
        wallet,
        key: SigningKey::from_bytes(&[0; 32]),
        stake: 5_000,
        endpoints: vec![
            (transport::UDP, net.udp.to_string()),
            (transport::TCP, net.tcp.to_string()),
            (transport::DOT, net.dot.to_string()),
            (transport::DOH, format!("https://{}/dns-query", net.doh)),
            (6, net.api.clone()),
        ],
        rotated_from: None,
        public: Some(net.operator),
    };
    // Epochs of 8 s: long enough for a window's batch, its audit and ticket lookups.
    let chain = Arc::new(
        StaticChain::new(
            vec![miner],
            vec![tolldns_chain::pubkey_of(&net.watcher)],
            None,
        )
        .with_epoch_len(160),
    );
    let mut cfg = config(&dir, &key_file);
    cfg.data_dir = dir.join("watcher");
    cfg.deployment.window_secs = audit_probe_support::WINDOW_SECS;
    cfg.audit.enabled = true;
    cfg.probe.enabled = true;
    cfg.probe.interval_secs = 1;
    cfg.probe.upstreams = vec![net.upstream.udp_addr.to_string()];
    cfg.probe.names = vec![format!("{NAME}.")];
    cfg.probe.issuer_url = net.issuer.clone();
    cfg.probe.wallet_file = Some(wallet_file);
    cfg.probe.ca_file = Some(net.dir.join("miner").join("tls").join("cert.pem"));
    cfg.tickets.issuer_name = ISSUER_NAME.to_owned();
    cfg.tickets.deployment = DEPLOYMENT.to_owned();
    cfg.tickets.issuer_keys = vec![
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(net.token_verifier.keys()[0].key.spki()),
    ];
    cfg.settle.report_after_slots = 60;
    let running = tolldns_watcher::node::start(cfg, Arc::clone(&chain))
        .await
        .unwrap();
    let api = running.api_addr;

    // A paying client: one token, then its session, over UDP, every turn of the loop.
    let client = Prober::new(Vec::new(), None, Duration::from_secs(5));
    let udp = ProbeTarget {
        transport: transport::UDP,
        address: net.udp.to_string(),
        tls_name: None,
    };
    let started_ms = tolldns_watcher::now_ms();

    // The miner's agent is not pointed at this watcher: its batches are forwarded from its
    // public API, as the agent would post them.
    let len = WindowLen::new(audit_probe_support::WINDOW_SECS).unwrap();
    let mut posted = BTreeSet::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(90);
    let (epoch, report) = loop {
        assert!(
            std::time::Instant::now() < deadline,
            "no epoch with the miner reported; stored: {:?}",
            running
                .store
                .epoch_reports(chain.now_slot() / chain.epoch_len())
                .await
        );
        if let Some(token) = paid_tokens.pop() {
            let first = client
                .probe(&udp, NAME, 1, &Credential::Token(token))
                .await
                .unwrap();
            let session = first.session.expect("a session");
            for _ in 0..3 {
                client
                    .probe(&udp, NAME, 1, &Credential::Session(session))
                    .await
                    .unwrap();
            }
        }
        let now = tolldns_watcher::now_ms();
        let from = WindowId::containing(started_ms, len).get();
        let to = WindowId::containing(now, len).get();
        for w in from..=to {
            for (id, receipt) in net.batches(w).await {
                if posted.insert(id) {
                    let body = receipt.to_json().into_bytes();
                    let key = hex::encode(id);
                    let (s, text) = tokio::task::spawn_blocking(move || {
                        http(
                            api,
                            "POST",
                            "/v1/receipts",
                            &[("Idempotency-Key", key.as_str())],
                            &body,
                        )
                    })
                    .await
                    .unwrap();
                    assert!(s == 201 || s == 503, "{s} {text}");
                    if s == 503 {
                        posted.remove(&id);
                    }
                }
            }
        }
        let current = chain.now_slot() / chain.epoch_len();
        let mut found = None;
        for e in current.saturating_sub(3)..current {
            let (s, body) = get(api, &format!("/v1/epochs/{e}/report")).await;
            if s != 200 {
                continue;
            }
            let v: serde_json::Value = serde_json::from_str(&body).unwrap();
            let m = v["miners"]
                .as_array()
                .unwrap()
                .iter()
                .find(|m| m["miner"] == wallet.to_string())
                .cloned();
            if let Some(m) = m {
                if m["verdict"] == "reported" && m["stats"]["uptime_score"].as_u64() > Some(0) {
                    found = Some((e, m));
                }
            }
        }
        if let Some(f) = found {
            break f;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    };

    // What the report stands on: passed audits, correct probes on every transport, probe
    // tickets whose leaves were found.
    let rows = tolldns_watcher::settle::load_rows(&running.store, epoch)
        .await
        .unwrap();
    assert!(
        rows.audits.iter().all(|a| a.status == AuditStatus::Passed),
        "{:?}",
        rows.audits
    );
    assert!(!rows.audits.is_empty());
    let transports: BTreeSet<u8> = rows
        .probes
        .iter()
        .filter(|p| p.status == ProbeStatus::Answered)
        .map(|p| p.transport)
        .collect();
    assert_eq!(
        transports,
        BTreeSet::from([
            transport::UDP,
            transport::TCP,
            transport::DOT,
            transport::DOH
        ]),
        "{:?}",
        rows.probes
    );
    eprintln!(
        "epoch {epoch}: {} audits, {} probes, tickets {:?}",
        rows.audits.len(),
        rows.probes.len(),
        rows.tickets
            .iter()
            .map(|t| (t.status, t.leaves_found))
            .collect::<Vec<_>>()
    );
    assert!(
        rows.probes
            .iter()
            .all(|p| p.status != ProbeStatus::WrongAnswer),
        "{:?}",
        rows.probes
    );
    assert!(
        rows.tickets
            .iter()
            .all(|t| t.status != TicketStatus::Missing),
        "{:?}",
        rows.tickets
    );
    assert!(
        rows.tickets.iter().any(|t| t.status == TicketStatus::Found),
        "{:?}",
        rows.tickets
    );
    assert_eq!(report["reasons"].as_array().unwrap().len(), 0, "{report}");
    let reports = chain.reports();
    assert!(
        reports
            .iter()
            .any(|r| r.epoch == epoch && r.miner == wallet),
        "{reports:?}"
    );
    running.stop().await;
}
