//! The watcher over real sockets: a miner's outbox and agent deliver receipts to its HTTP
//! API; idempotency, refusals, stats from stored rows, the published score input read by
//! `tolldns score epoch`, reports to a chain test double, metrics, and a restart that keeps
//! everything.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::missing_panics_doc)]

mod support;

use std::sync::{Arc, RwLock};
use std::time::Duration;

use ed25519_dalek::SigningKey;
use tokio::sync::{Notify, watch};
use tolldns_chain::Pubkey;
use tolldns_core::DeploymentId;
use tolldns_watcher::store::{ReportStatus, Verdict};

use support::{StaticChain, TestMiner, batch, config, http, past_window, temp_dir, wait_for};

fn miner(seed: u8, stake: u64) -> TestMiner {
    TestMiner {
        wallet: Pubkey::new_from_array([seed; 32]),
        key: SigningKey::from_bytes(&[seed.wrapping_add(100); 32]),
        stake,
        endpoints: vec![(1, "127.0.0.1:9".to_owned())],
        public: None,
        rotated_from: None,
    }
}

type Journal = Arc<tolldns_miner::journal::Journal>;

/// A miner journal in `dir`.
fn journal(dir: &std::path::Path) -> Journal {
    std::fs::create_dir_all(dir).unwrap();
    Arc::new(
        tolldns_miner::journal::Journal::open(&dir.join("journal.redb"))
            .unwrap()
            .0,
    )
}

/// Delivers `receipts` to `url` through a real miner journal (outbox) and agent; returns
/// when the outbox is empty.
async fn deliver(dir: &std::path::Path, url: &str, batches: &[tolldns_receipts::ClosedBatch]) {
    deliver_with(journal(dir), url, batches).await;
}

/// [`deliver`] through `journal`.
async fn deliver_with(journal: Journal, url: &str, batches: &[tolldns_receipts::ClosedBatch]) {
    for b in batches {
        journal
            .commit_batch(
                b.receipt(),
                b.leaves(),
                &[url.to_owned()],
                tolldns_watcher::now_ms(),
            )
            .unwrap();
    }
    let mut registry = prometheus_client::registry::Registry::default();
    let metrics = Arc::new(tolldns_miner::metrics::Metrics::register(&mut registry));
    let (stop_tx, stop_rx) = watch::channel(false);
    let agent = tolldns_miner::agent::Agent {
        journal: Arc::clone(&journal),
        settings: Arc::new(RwLock::new(tolldns_miner::agent::AgentSettings {
            watchers: vec![url.to_owned()],
            retry_initial_ms: 50,
            retry_max_ms: 200,
            request_timeout_ms: 5_000,
        })),
        tls: None,
        metrics,
        wake: Arc::new(Notify::new()),
    };
    let task = tokio::spawn(agent.run(stop_rx));
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while journal.stats().unwrap().outbox_pending > 0 {
        assert!(std::time::Instant::now() < deadline, "outbox not delivered");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stop_tx.send(true).unwrap();
    task.await.unwrap();
}

async fn get(addr: std::net::SocketAddr, path: &str) -> (u16, String) {
    let path = path.to_owned();
    tokio::task::spawn_blocking(move || http(addr, "GET", &path, &[], b""))
        .await
        .unwrap()
}

async fn post(addr: std::net::SocketAddr, body: Vec<u8>, key: Option<String>) -> (u16, String) {
    tokio::task::spawn_blocking(move || {
        let headers: Vec<(&str, &str)> = key
            .as_deref()
            .map(|k| vec![("Idempotency-Key", k), ("Content-Type", "application/json")])
            .unwrap_or_else(|| vec![("Content-Type", "application/json")]);
        http(addr, "POST", "/v1/receipts", &headers, &body)
    })
    .await
    .unwrap()
}

/// Waits until the watcher's registry snapshot holds `operators` operators (ingest waits for
/// the first chain reads); panics with `what` otherwise.
fn wait_for_registry(api: std::net::SocketAddr, operators: usize, what: &str) {
    let needle = format!("\"operators\":{operators}");
    wait_for(10, || {
        std::thread::spawn(move || http(api, "GET", "/v1/status", &[], b""))
            .join()
            .unwrap()
            .1
            .contains(&needle)
            .then_some(())
    })
    .expect(what);
}

/// Polls an HTTP GET until it answers 200.
async fn get_200(addr: std::net::SocketAddr, path: &str, secs: u64) -> String {
    let deadline = std::time::Instant::now() + Duration::from_secs(secs);
    loop {
        let (status, body) = get(addr, path).await;
        if status == 200 {
            return body;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "GET {path}: {status} {body}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ingest_gate_publish_report_and_restart() {
    ingest_scenario("main", None).await;
}

/// The same on PostgreSQL (a fresh schema), when `TOLLDNS_TEST_POSTGRES_URL` is set (always
/// under CI).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ingest_gate_publish_report_and_restart_on_postgres() {
    use sqlx::Connection as _;
    const ENV: &str = "TOLLDNS_TEST_POSTGRES_URL";
    let Ok(base) = std::env::var(ENV) else {
        assert!(
            std::env::var_os("CI").is_none(),
            "{ENV} is not set but CI is: the PostgreSQL variant must run in CI"
        );
        eprintln!("{ENV} is not set: PostgreSQL variant not run");
        return;
    };
    let schema = format!("w_{}_{}", std::process::id(), tolldns_watcher::now_ms());
    let mut conn = sqlx::PgConnection::connect(&base).await.unwrap();
    sqlx::query(&format!("CREATE SCHEMA \"{schema}\""))
        .execute(&mut conn)
        .await
        .unwrap();
    let sep = if base.contains('?') { '&' } else { '?' };
    let url = format!("{base}{sep}options=-c%20search_path%3D{schema}");
    ingest_scenario("postgres", Some(url)).await;
    sqlx::query(&format!("DROP SCHEMA \"{schema}\" CASCADE"))
        .execute(&mut conn)
        .await
        .unwrap();
    conn.close().await.unwrap();
}

/// Ingest over HTTP from a miner's outbox, idempotency, refusals, the gate, publication,
/// reports, metrics and a restart, with the store at `store_url` (default: SQLite).
async fn ingest_scenario(name: &str, store_url: Option<String>) {
    let dir = temp_dir(name);
    let watcher_key = SigningKey::from_bytes(&[42; 32]);
    let key_file = dir.join("watcher.json");
    tolldns_service::keyfile::write(&key_file, &watcher_key, false).unwrap();
    let honest = miner(1, 1_000);
    let refused = miner(2, 2_000);
    let chain = Arc::new(StaticChain::new(
        vec![honest.clone(), refused.clone()],
        vec![tolldns_chain::pubkey_of(&watcher_key)],
        None,
    ));
    let mut cfg = config(&dir, &key_file);
    if let Some(url) = store_url {
        cfg.store.url = url;
    }
    let running = tolldns_watcher::node::start(cfg.clone(), Arc::clone(&chain))
        .await
        .unwrap();
    let api = running.api_addr;
    assert_eq!(
        running.watcher,
        bs58::encode(watcher_key.verifying_key().as_bytes()).into_string()
    );
    // Ingest waits for the first chain reads.
    let status = get_200(api, "/v1/status", 10).await;
    assert!(status.contains(&running.watcher), "{status}");
    wait_for_registry(api, 2, "registry read");

    // A real miner outbox delivers two batches of the honest miner, one of the other.
    let window = past_window();
    let local = DeploymentId::local();
    let good = batch(&honest.key, window, 30, local);
    let earlier = batch(
        &honest.key,
        tolldns_core::WindowId(window.get() - 1),
        12,
        local,
    );
    let other_good = batch(&refused.key, window, 9, local);
    let url = format!("http://{api}/v1/receipts");
    deliver(
        &dir.join("miner"),
        &url,
        &[good.clone(), earlier.clone(), other_good.clone()],
    )
    .await;
    let id = tolldns_watcher::ingest::batch_id(good.receipt());
    let row = running.store.batch(&id).await.unwrap().expect("stored");
    assert_eq!(row.verdict, Verdict::Accepted);
    assert_eq!(row.wallet, Some(honest.wallet.to_bytes()));
    assert!(row.arrival_slot >= 100, "{row:?}");
    let epoch_of_good = row.epoch;

    // Idempotency: the same batch again is one row, answered 200; a wrong key is 400.
    let json = good.receipt().to_json().into_bytes();
    let (s, body) = post(api, json.clone(), Some(hex::encode(id))).await;
    assert_eq!(s, 200, "{body}");
    assert!(body.contains("\"duplicate\":true"), "{body}");
    let (s, body) = post(api, json.clone(), Some(hex::encode([0u8; 32]))).await;
    assert_eq!(s, 400, "{body}");
    let (s, _) = post(api, b"{not json".to_vec(), None).await;
    assert_eq!(s, 400);
    let (s, _) = post(api, vec![b' '; (1 << 20) + 1], None).await;
    assert_eq!(s, 413);

    // A window that has not ended yet: 503 with Retry-After, nothing stored.
    let len = tolldns_core::WindowLen::new(support::WINDOW_SECS).unwrap();
    // (more than the 30 s skew ahead)
    let current = tolldns_core::WindowId::containing(tolldns_watcher::now_ms() + 40_000, len);
    let early = batch(&honest.key, current, 3, local);
    let (s, body) = post(api, early.receipt().to_json().into_bytes(), None).await;
    assert_eq!(s, 503, "{body}");
    assert!(body.contains("not ended"), "{body}");
    assert!(
        running
            .store
            .batch(&tolldns_watcher::ingest::batch_id(early.receipt()))
            .await
            .unwrap()
            .is_none()
    );

    // Refused by a rule: 422 naming it, stored with its verdict; again: 409.
    let stranger = SigningKey::from_bytes(&[77; 32]);
    let unknown = batch(&stranger, window, 3, local);
    // An unknown key is first answered 503 when the registry snapshot is not fresh (it is
    // read again), then refused for good.
    let (s, body) = loop {
        let (s, body) = post(api, unknown.receipt().to_json().into_bytes(), None).await;
        if s != 503 {
            break (s, body);
        }
        assert!(body.contains("registry"), "{body}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(s, 422, "{body}");
    assert!(body.contains("unregistered_operator"), "{body}");
    let (s, _) = post(api, unknown.receipt().to_json().into_bytes(), None).await;
    assert_eq!(s, 409);
    let wrong = batch(
        &refused.key,
        tolldns_core::WindowId(window.get() - 2),
        5,
        DeploymentId([1; 32]),
    );
    let (s, body) = post(api, wrong.receipt().to_json().into_bytes(), None).await;
    assert_eq!(s, 422, "{body}");
    assert!(body.contains("wrong_deployment"), "{body}");
    let row = running
        .store
        .batch(&tolldns_watcher::ingest::batch_id(wrong.receipt()))
        .await
        .unwrap()
        .unwrap();
    assert!(
        matches!(&row.verdict, Verdict::Refused { reason } if reason.starts_with("wrong_deployment")),
        "{row:?}"
    );
    // A receipt naming the honest miner's key with a forged signature is refused and stored,
    // but attributed to nobody: anyone can post one.
    let mut forged = good.receipt().clone();
    forged.body.timestamp_ms -= 1;
    let (s, body) = post(api, forged.to_json().into_bytes(), None).await;
    assert_eq!(s, 422, "{body}");
    assert!(body.contains("\"rule\":\"signature\""), "{body}");
    let forged_row = running
        .store
        .batch(&tolldns_watcher::ingest::batch_id(&forged))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(forged_row.wallet, None);
    // An overlapping receipt (same window, another batch) is refused too.
    let overlap = batch(&honest.key, window, 4, local);
    let (s, body) = post(api, overlap.receipt().to_json().into_bytes(), None).await;
    assert_eq!(s, 422, "{body}");
    assert!(body.contains("overlapping_receipt"), "{body}");

    // The epoch closes: the published input is what `tolldns score epoch` reads.
    let inputs_path = format!("/v1/epochs/{epoch_of_good}/inputs");
    let inputs = get_200(api, &inputs_path, 20).await;
    let parsed = tolldns::score::parse_epoch_input(&inputs).expect("a valid score input");
    assert_eq!(parsed.epoch_id, epoch_of_good);
    let overlap_row = running
        .store
        .batch(&tolldns_watcher::ingest::batch_id(overlap.receipt()))
        .await
        .unwrap()
        .unwrap();
    let report = get_200(api, &format!("/v1/epochs/{epoch_of_good}/report"), 5).await;
    let report: serde_json::Value = serde_json::from_str(&report).unwrap();
    let entries = report["miners"].as_array().unwrap();
    let entry = |w: &Pubkey| {
        entries
            .iter()
            .find(|m| m["miner"] == w.to_string())
            .unwrap()
            .clone()
    };
    let reasons = |e: &serde_json::Value| -> Vec<String> {
        e["reasons"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r.as_str().unwrap().to_owned())
            .collect()
    };
    let names: Vec<&str> = parsed.miners.iter().map(|(m, _)| m.as_str()).collect();
    let honest_entry = entry(&honest.wallet);
    if overlap_row.epoch == epoch_of_good {
        // Its refused duplicate is in the epoch: withheld, naming why, not in the input.
        assert_eq!(honest_entry["verdict"], "withheld", "{report}");
        assert!(
            reasons(&honest_entry).contains(&"receipt_refused".to_owned()),
            "{report}"
        );
        assert!(
            !names.contains(&honest.wallet.to_string().as_str()),
            "{inputs}"
        );
    } else {
        assert_eq!(honest_entry["verdict"], "reported", "{report}");
        assert!(
            names.contains(&honest.wallet.to_string().as_str()),
            "{inputs}"
        );
    }
    // A receipt of another deployment (which a third party could replay here) does not
    // count but does not withhold its miner either.
    let other_row = running
        .store
        .batch(&tolldns_watcher::ingest::batch_id(other_good.receipt()))
        .await
        .unwrap()
        .unwrap();
    if other_row.epoch == epoch_of_good {
        let e = entry(&refused.wallet);
        assert_eq!(e["verdict"], "reported", "{report}");
        assert!(
            names.contains(&refused.wallet.to_string().as_str()),
            "{inputs}"
        );
    }
    let report_again = get_200(api, &format!("/v1/epochs/{epoch_of_good}/report"), 5).await;
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&report_again).unwrap()["object"],
        report["object"]
    );
    // Content addressing: an object's bytes hash to its name.
    let object = honest_entry["object"].as_str().unwrap().to_owned();
    let bytes = get_200(api, &format!("/v1/objects/{object}"), 5).await;
    assert_eq!(
        hex::encode(tolldns_watcher::store::object_hash(bytes.as_bytes())),
        object
    );
    let miner_epoch: serde_json::Value = serde_json::from_str(&bytes).unwrap();
    assert_eq!(
        miner_epoch["reported"],
        honest_entry["verdict"] == "reported"
    );
    assert!(!miner_epoch["receipts"].as_array().unwrap().is_empty());

    // Metrics count every verdict.
    let (s, metrics) = get(running.metrics_addr, "/metrics").await;
    assert_eq!(s, 200);
    for line in [
        "tolldns_watcher_receipts_total{verdict=\"accepted\"} 3",
        "tolldns_watcher_receipts_total{verdict=\"duplicate\"} 2",
        "tolldns_watcher_receipts_total{verdict=\"unregistered_operator\"} 1",
        "tolldns_watcher_receipts_total{verdict=\"wrong_deployment\"} 1",
        "tolldns_watcher_receipts_total{verdict=\"signature\"} 1",
        "tolldns_watcher_receipts_total{verdict=\"malformed\"} 2",
        "tolldns_watcher_receipts_total{verdict=\"too_large\"} 1",
    ] {
        assert!(metrics.contains(line), "{line}\n{metrics}");
    }
    assert!(
        metrics.contains("tolldns_watcher_store_latency_seconds_bucket"),
        "{metrics}"
    );
    promtool_check(&metrics);

    // Restart: every row and every published object survives; nothing is counted twice.
    let before_inputs = inputs.clone();
    let rows_before = running.store.batches_in_epoch(epoch_of_good).await.unwrap();
    let reports_before = chain.reports().len();
    running.stop().await;
    let running = tolldns_watcher::node::start(cfg, Arc::clone(&chain))
        .await
        .unwrap();
    let api = running.api_addr;
    get_200(api, "/v1/status", 10).await;
    wait_for_registry(api, 2, "registry read after restart");
    let (s, _) = post(api, json, Some(hex::encode(id))).await;
    assert_eq!(s, 200, "the batch is still stored after the restart");
    assert_eq!(get_200(api, &inputs_path, 5).await, before_inputs);
    assert_eq!(
        running.store.batches_in_epoch(epoch_of_good).await.unwrap(),
        rows_before
    );
    // Let the settlement loop run again: epochs already reported are not reported twice.
    tokio::time::sleep(Duration::from_millis(600)).await;
    let reports = chain.reports();
    let mut seen = std::collections::BTreeSet::new();
    for r in &reports {
        assert!(seen.insert((r.epoch, r.miner)), "reported twice: {r:?}");
    }
    assert!(reports.len() >= reports_before);
    for r in running.store.epoch_reports(epoch_of_good).await.unwrap() {
        assert!(
            matches!(r.status, ReportStatus::Confirmed | ReportStatus::Withheld),
            "{r:?}"
        );
    }
    running.stop().await;
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn stats_from_stored_rows_are_reported_and_scored() {
    let dir = temp_dir("stats");
    let watcher_key = SigningKey::from_bytes(&[43; 32]);
    let key_file = dir.join("watcher.json");
    tolldns_service::keyfile::write(&key_file, &watcher_key, false).unwrap();
    let a = miner(11, 1_000);
    let b = miner(12, 4_000);
    let chain = Arc::new(StaticChain::new(
        vec![a.clone(), b.clone()],
        vec![tolldns_chain::pubkey_of(&watcher_key)],
        None,
    ));
    let running = tolldns_watcher::node::start(config(&dir, &key_file), Arc::clone(&chain))
        .await
        .unwrap();
    let api = running.api_addr;
    wait_for_registry(api, 2, "registry read");
    let window = past_window();
    let local = DeploymentId::local();
    let ba = batch(&a.key, window, 30, local);
    let bb = batch(&b.key, window, 60, local);
    let url = format!("http://{api}/v1/receipts");
    deliver(&dir.join("miner"), &url, &[ba.clone(), bb.clone()]).await;
    let ra = running
        .store
        .batch(&tolldns_watcher::ingest::batch_id(ba.receipt()))
        .await
        .unwrap()
        .unwrap();
    let rb = running
        .store
        .batch(&tolldns_watcher::ingest::batch_id(bb.receipt()))
        .await
        .unwrap()
        .unwrap();
    let epoch = ra.epoch;
    let inputs = get_200(api, &format!("/v1/epochs/{epoch}/inputs"), 20).await;
    let parsed = tolldns::score::parse_epoch_input(&inputs).expect("a valid score input");
    let scored = tolldns::score::epoch_report(&parsed).expect("scored");
    let stats_of = |w: &Pubkey| {
        parsed
            .miners
            .iter()
            .find(|(m, _)| *m == w.to_string())
            .map(|(_, s)| *s)
    };
    let ticketed = |r: &tolldns_receipts::Receipt| r.body.v2.as_ref().unwrap().ticketed_leaf_count;
    let (ta, tb) = (ticketed(ba.receipt()), ticketed(bb.receipt()));
    if rb.epoch == epoch {
        let sa = stats_of(&a.wallet).expect("a reported");
        let sb = stats_of(&b.wallet).expect("b reported");
        assert_eq!(u64::from(sa.dominance_share_bps), ta * 10_000 / (ta + tb));
        assert_eq!(u64::from(sb.dominance_share_bps), tb * 10_000 / (ta + tb));
        assert_eq!((sa.stake_weight, sb.stake_weight), (1_000, 4_000));
        assert_eq!(sa.first_submit_slot, ra.arrival_slot);
        assert_eq!(sb.first_submit_slot, rb.arrival_slot);
        let sketch_a = ba.receipt().body.v2.as_ref().unwrap().distinct_names();
        assert_eq!(u64::from(sa.unique_name_count), sketch_a);
        // No probes were sent: uptime 0; no audits: correctness 0.
        assert_eq!((sa.uptime_score, sa.correctness_score), (0, 0));
        assert_eq!(scored.miners.len(), 2);
    } else {
        assert!(stats_of(&a.wallet).is_some());
    }
    // The chain double received exactly these stats for each reported miner.
    let reports = wait_for(10, || {
        let r: Vec<_> = chain
            .reports()
            .into_iter()
            .filter(|r| r.epoch == epoch)
            .collect();
        (r.len() == parsed.miners.len()).then_some(r)
    })
    .expect("reports sent");
    for r in reports {
        let s = stats_of(&r.miner).unwrap();
        assert_eq!(r.stats.uptime_score, s.uptime_score);
        assert_eq!(r.stats.correctness_score, s.correctness_score);
        assert_eq!(r.stats.dominance_share_bps, s.dominance_share_bps);
        assert_eq!(r.stats.first_submit_slot, s.first_submit_slot);
        assert_eq!(r.stats.unique_name_count, s.unique_name_count);
        assert_eq!(r.stats.aggregates_submitted, 1);
    }
    // Once the program fixed the epoch's pool, the published input carries it.
    assert_eq!(parsed.pool, 1_000_000);
    chain.pools.lock().unwrap().insert(epoch, 777_777);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let text = get_200(api, &format!("/v1/epochs/{epoch}/inputs"), 5).await;
        let again = tolldns::score::parse_epoch_input(&text).unwrap();
        if again.pool == 777_777 {
            assert_eq!(again.miners, parsed.miners);
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "pool not republished: {text}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    running.stop().await;
    let _ = std::fs::remove_dir_all(dir);
}

/// A miner's audit API in process over `journal`, answering `auditor`; returns its origin.
async fn miner_api(
    journal: Journal,
    operator: &SigningKey,
    auditor: &SigningKey,
    stop: watch::Receiver<bool>,
) -> String {
    use tolldns_miner::audit_api::{ApiState, AuditGuard, AuditLimits, AuthSettings};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let mut registry = prometheus_client::registry::Registry::default();
    let metrics = Arc::new(tolldns_miner::metrics::Metrics::register(&mut registry));
    let state = ApiState {
        journal,
        registry: Arc::new(registry),
        metrics,
        auth: Arc::new(RwLock::new(AuthSettings {
            auditors: vec![auditor.verifying_key()],
            max_age_ms: 300_000,
        })),
        operator: operator.verifying_key(),
        max_audit_k: 1024,
        healthy: Arc::new(std::sync::atomic::AtomicBool::new(true)),
        guard: AuditGuard::new(AuditLimits {
            rate_per_sec: 1000,
            burst: 1000,
            concurrency: 8,
            concurrency_per_auditor: 4,
            timeout: Duration::from_secs(10),
        }),
    };
    tokio::spawn(tolldns_miner::audit_api::serve(
        listener,
        Arc::new(state),
        stop,
    ));
    format!("http://{addr}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn audits_and_probes_catch_a_cheater() {
    use tolldns_testkit::{TestServer, TestZone};
    use tolldns_watcher::store::{AuditStatus, ProbeStatus};
    let dir = temp_dir("audits");
    let watcher_key = SigningKey::from_bytes(&[44; 32]);
    let key_file = dir.join("watcher.json");
    tolldns_service::keyfile::write(&key_file, &watcher_key, false).unwrap();
    // The watcher's own upstream, an honest edge answering the same, and a lying edge.
    let truth = std::net::Ipv4Addr::new(192, 0, 2, 53);
    let upstream =
        TestServer::start(TestZone::empty("example.test").with_a("www.example.test", truth))
            .await
            .unwrap();
    let liar = TestServer::start(
        TestZone::empty("example.test")
            .with_a("www.example.test", std::net::Ipv4Addr::new(192, 0, 2, 99)),
    )
    .await
    .unwrap();
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut honest = miner(21, 1_000);
    let mut cheater = miner(22, 1_000);
    let honest_journal = journal(&dir.join("honest"));
    let cheater_journal = journal(&dir.join("cheater"));
    let honest_api = miner_api(
        Arc::clone(&honest_journal),
        &honest.key,
        &watcher_key,
        stop_rx.clone(),
    )
    .await;
    let cheater_api = miner_api(
        Arc::clone(&cheater_journal),
        &cheater.key,
        &watcher_key,
        stop_rx.clone(),
    )
    .await;
    honest.endpoints = vec![(1, upstream.udp_addr.to_string()), (6, honest_api)];
    cheater.endpoints = vec![(1, liar.udp_addr.to_string()), (6, cheater_api)];
    let chain = Arc::new(StaticChain::new(
        vec![honest.clone(), cheater.clone()],
        vec![tolldns_chain::pubkey_of(&watcher_key)],
        None,
    ));
    let mut cfg = config(&dir, &key_file);
    cfg.audit.enabled = true;
    cfg.probe.enabled = true;
    cfg.probe.interval_secs = 1;
    cfg.probe.upstreams = vec![upstream.udp_addr.to_string()];
    cfg.probe.names = vec!["www.example.test.".to_owned()];
    let running = tolldns_watcher::node::start(cfg, Arc::clone(&chain))
        .await
        .unwrap();
    let api = running.api_addr;
    wait_for_registry(api, 2, "registry read");
    // The honest batch is what its journal holds (unticketed leaves: nothing to redeem); the
    // cheater's receipt claims ticketed leaves whose tokens were never redeemed.
    let window = past_window();
    let local = DeploymentId::local();
    let good = support::batch_with(&honest.key, window, 40, local, false);
    let bad = batch(&cheater.key, window, 40, local);
    let url = format!("http://{api}/v1/receipts");
    deliver_with(
        Arc::clone(&honest_journal),
        &url,
        std::slice::from_ref(&good),
    )
    .await;
    deliver_with(
        Arc::clone(&cheater_journal),
        &url,
        std::slice::from_ref(&bad),
    )
    .await;
    let store = running.store.clone();
    let audit_of = |b: &tolldns_receipts::ClosedBatch| {
        let id = tolldns_watcher::ingest::batch_id(b.receipt());
        let store = store.clone();
        async move { store.audit(&id).await.unwrap() }
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let (a_good, a_bad) = loop {
        if let (Some(a), Some(b)) = (audit_of(&good).await, audit_of(&bad).await) {
            break (a, b);
        }
        assert!(std::time::Instant::now() < deadline, "audits not done");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(a_good.status, AuditStatus::Passed, "{a_good:?}");
    assert!(a_good.k > 0 && a_good.seed_slot > 0);
    assert_eq!(a_bad.status, AuditStatus::Failed, "{a_bad:?}");
    assert!(
        a_bad.reason.is_some() && a_bad.evidence_json.contains("requests"),
        "{a_bad:?}"
    );
    // Probes: the honest edge answers like the watcher's upstream, the liar does not.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let epoch = loop {
        let slot = chain.now_slot();
        let e = slot / support::EPOCH_LEN_SLOTS;
        let mut probes = running.store.probes_in_epoch(e).await.unwrap();
        probes.extend(
            running
                .store
                .probes_in_epoch(e.saturating_sub(1))
                .await
                .unwrap(),
        );
        let of = |w: &Pubkey, st: ProbeStatus| {
            probes
                .iter()
                .any(|p| p.wallet == w.to_bytes() && p.status == st)
        };
        if of(&honest.wallet, ProbeStatus::Answered)
            && of(&cheater.wallet, ProbeStatus::WrongAnswer)
        {
            break probes
                .iter()
                .find(|p| p.wallet == cheater.wallet.to_bytes())
                .unwrap()
                .epoch;
        }
        assert!(std::time::Instant::now() < deadline, "probes: {probes:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    // The cheater is withheld for the epoch of its wrong answer, naming it.
    let report = get_200(api, &format!("/v1/epochs/{epoch}/report"), 20).await;
    let report: serde_json::Value = serde_json::from_str(&report).unwrap();
    let entry = report["miners"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["miner"] == cheater.wallet.to_string())
        .unwrap()
        .clone();
    assert_eq!(entry["verdict"], "withheld", "{report}");
    assert!(
        entry["reasons"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r == "probe_wrong_answer"),
        "{report}"
    );
    // The watcher's probe tickets, for the other watchers: served once the epoch ended
    // (these probes carried no token, so there is none to list), not before.
    let (status, body) = get(api, &format!("/v1/epochs/{epoch}/probe-tickets")).await;
    assert_eq!(status, 200, "{body}");
    let list: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        list["watcher"],
        tolldns_chain::pubkey_of(&watcher_key).to_string(),
        "{list}"
    );
    assert_eq!(list["epoch"], epoch, "{list}");
    assert_eq!(list["tickets"], serde_json::json!([]), "{list}");
    let later = chain.now_slot() / support::EPOCH_LEN_SLOTS + 1;
    let (status, body) = get(api, &format!("/v1/epochs/{later}/probe-tickets")).await;
    assert_eq!(status, 425, "{body}");
    let (_, metrics) = get(running.metrics_addr, "/metrics").await;
    for line in [
        "tolldns_watcher_audits_total{outcome=\"passed\"}",
        "tolldns_watcher_audits_total{outcome=\"failed\"}",
        "tolldns_watcher_probes_total{outcome=\"correct\",transport=\"udp\"}",
        "tolldns_watcher_probes_total{outcome=\"wrong\",transport=\"udp\"}",
    ] {
        assert!(metrics.contains(line), "{line}\n{metrics}");
    }
    promtool_check(&metrics);
    running.stop().await;
    stop_tx.send(true).unwrap();
    let _ = std::fs::remove_dir_all(dir);
}

/// `promtool check metrics` when promtool is installed.
fn promtool_check(text: &str) {
    let Some(promtool) = ["/usr/bin/promtool", "/usr/local/bin/promtool"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())
    else {
        // Without promtool: every sample line is `name{labels} value` under a # TYPE.
        let mut typed = std::collections::HashSet::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                typed.insert(rest.split(' ').next().unwrap().to_owned());
            } else if !line.starts_with('#') && !line.is_empty() {
                let name = line.split(['{', ' ']).next().unwrap();
                let base = ["_bucket", "_sum", "_count"]
                    .iter()
                    .find_map(|s| name.strip_suffix(s))
                    .unwrap_or(name);
                assert!(
                    typed.contains(name) || typed.contains(base),
                    "sample without a TYPE: {line}"
                );
                let value = line.rsplit(' ').next().unwrap();
                assert!(value.parse::<f64>().is_ok() || value == "+Inf", "{line}");
            }
        }
        return;
    };
    use std::io::Write as _;
    let mut child = std::process::Command::new(promtool)
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Around a key rotation a wallet has two valid signing keys (the previous one until the new
/// one's `valid_from_slot`): a window accepted under the old key and signed again with the new
/// one overlaps, because the ledger is the wallet's (docs/THREAT_MODEL.md R12).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_window_signed_again_after_a_key_rotation_is_refused() {
    let dir = temp_dir("rotation");
    let watcher_key = SigningKey::from_bytes(&[43; 32]);
    let key_file = dir.join("watcher.json");
    tolldns_service::keyfile::write(&key_file, &watcher_key, false).unwrap();
    let probe = StaticChain::new(Vec::new(), Vec::new(), None);
    // The new key becomes valid 30 slots (1.5 s) from now; the old one is valid until then.
    let switch = probe.now_slot() + 30;
    let old_key = SigningKey::from_bytes(&[77; 32]);
    let mut rotating = miner(7, 1_000);
    rotating.rotated_from = Some((old_key.clone(), switch));
    let chain = Arc::new(StaticChain::new(
        vec![rotating.clone()],
        vec![tolldns_chain::pubkey_of(&watcher_key)],
        None,
    ));
    let running = tolldns_watcher::node::start(config(&dir, &key_file), Arc::clone(&chain))
        .await
        .unwrap();
    let api = running.api_addr;
    get_200(api, "/v1/status", 10).await;
    wait_for_registry(api, 1, "registry read");
    assert!(chain.now_slot() < switch, "the test set-up took too long");

    let window = past_window();
    let local = DeploymentId::local();
    let under_old = batch(&old_key, window, 9, local);
    let (s, body) = post(api, under_old.receipt().to_json().into_bytes(), None).await;
    assert_eq!(
        s, 201,
        "the previous key is valid before the switch: {body}"
    );

    wait_for(10, || (chain.now_slot() > switch + 2).then_some(())).expect("the switch slot");
    let under_new = batch(&rotating.key, window, 9, local);
    let (s, body) = post(api, under_new.receipt().to_json().into_bytes(), None).await;
    assert_eq!(s, 422, "{body}");
    assert!(body.contains("overlapping_receipt"), "{body}");
    // A later window under the new key is accepted: the ledger refuses only the overlap.
    let later = batch(
        &rotating.key,
        tolldns_core::WindowId(window.get() + 1),
        9,
        local,
    );
    wait_for(10, || {
        let end = later
            .receipt()
            .body
            .window_id
            .end_ms(later.receipt().body.window_len)
            .unwrap();
        (tolldns_watcher::now_ms() > end + 200).then_some(())
    })
    .expect("the later window ended");
    let (s, body) = post(api, later.receipt().to_json().into_bytes(), None).await;
    assert_eq!(s, 201, "{body}");
    running.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
}
