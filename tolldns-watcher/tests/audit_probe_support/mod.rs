//! A real network on loopback for the audit and probe tests: an authoritative upstream
//! (`tolldns-testkit`), a `tolldns-issuer` node with a credited wallet, and a
//! `tolldns-miner` node (UDP, TCP, DoT, DoH, audit API) accepting the issuer's key and the
//! watcher key as auditor, all in process; probe tokens bought from the issuer.

#![allow(dead_code, unreachable_pub)]

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::SigningKey;
use tolldns_core::{BackendId, OperatorId, Role, WindowId, WindowLen};
use tolldns_receipts::{OperatorRegistry, OperatorStatus, PolicyRegistry, Receipt, ReceiptLedger};
use tolldns_service::config::ConfigFile as _;
use tolldns_service::http::{AuditClient, Origin};
use tolldns_testkit::{TestServer, TestZone};
use tolldns_tickets::{AcceptedKey, IssuerPublicKey, TokenChallenge, TokenVerifier};
use tolldns_watcher::tokens::ProbeTokens;

pub const ISSUER_NAME: &str = "issuer.watcher.test";
pub const DEPLOYMENT: &str = "tolldns-watcher-test";
pub const NAME: &str = "www.example.test";
pub const ANSWER: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 53);
pub const OTHER_ANSWER: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 99);
pub const WINDOW_SECS: u32 = 2;

/// The receipt registries of a test network: every operator active, every backend and
/// policy 1 valid, nothing accepted before.
#[derive(Debug)]
pub struct Open;

impl OperatorRegistry for Open {
    fn operator_status(&self, _: &OperatorId, _: Role, _: WindowId) -> OperatorStatus {
        OperatorStatus::Active
    }
    fn backend_registered(&self, _: &OperatorId, b: &BackendId) -> bool {
        b.as_str() == "edge-ingress"
    }
}
impl PolicyRegistry for Open {
    fn is_valid_policy(&self, v: u32, _: WindowId, _: WindowLen) -> bool {
        v == 1
    }
}
impl ReceiptLedger for Open {
    fn contains(&self, _: &OperatorId, _: &BackendId, _: WindowId) -> bool {
        false
    }
    fn overlaps(&self, _: &OperatorId, _: u64, _: u64) -> bool {
        false
    }
}

/// A port free on loopback right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("tolldns-watcher-e-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// An authoritative upstream for `example.test` answering `NAME A ip`.
pub async fn upstream(ip: Ipv4Addr) -> TestServer {
    TestServer::start(TestZone::empty("example.test").with_a(NAME, ip))
        .await
        .unwrap()
}

/// Waits until `probe` succeeds (every 50 ms, at most 60 s).
pub async fn until<F: Future<Output = bool>>(what: &str, mut probe: impl FnMut() -> F) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while !probe().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The whole test network.
pub struct Net {
    pub dir: PathBuf,
    pub upstream: TestServer,
    pub issuer: String,
    pub wallet: SigningKey,
    pub watcher: SigningKey,
    pub token_verifier: TokenVerifier,
    pub udp: SocketAddr,
    pub tcp: SocketAddr,
    pub dot: SocketAddr,
    pub doh: SocketAddr,
    pub api: String,
    pub operator: [u8; 32],
    pub tls: Arc<rustls::ClientConfig>,
    pub tokens: ProbeTokens,
}

impl Net {
    /// Starts upstream, issuer and miner, and buys `tokens` probe tokens.
    pub async fn start(name: &str, tokens: u32) -> Self {
        let dir = temp_dir(name);
        let upstream = upstream(ANSWER).await;

        // The issuer, with the wallet credited.
        let wallet = SigningKey::from_bytes(&rand::random());
        let issuer = tolldns_issuer::config::Config {
            data_dir: dir.join("issuer"),
            listen: SocketAddr::from((Ipv4Addr::LOCALHOST, free_port())),
            ..Default::default()
        };
        tolldns_service::files::create_private_dir(&issuer.data_dir).unwrap();
        {
            let ledger =
                tolldns_issuer::ledger::PrepaidLedger::open(&issuer.ledger_path()).unwrap();
            ledger
                .credit(wallet.verifying_key().as_bytes(), u64::from(tokens) + 2)
                .unwrap();
        }
        let issuer_origin = format!("http://{}", issuer.listen);
        tokio::spawn(async move {
            if let Err(e) = tolldns_issuer::node::run(issuer, None).await {
                panic!("issuer: {e:#}");
            }
        });
        let directory_client = AuditClient::new(
            Origin::parse(&issuer_origin).unwrap(),
            None,
            Duration::from_secs(5),
            wallet.clone(),
        );
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        let directory = loop {
            match directory_client
                .get(tolldns_tickets::DIRECTORY_PATH, None, 1 << 20)
                .await
            {
                Ok((r, _)) if r.status == 200 => break r.body,
                _ => {}
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the issuer did not start"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        let directory = tolldns_tickets::IssuerDirectory::from_json(&directory).unwrap();
        let token_key = directory.token_keys[0].token_key.clone();
        let key = IssuerPublicKey::from_spki(
            &URL_SAFE_NO_PAD
                .decode(token_key.trim_end_matches('='))
                .unwrap(),
        )
        .unwrap();
        let token_verifier = TokenVerifier::new(
            vec![AcceptedKey {
                key,
                not_before: 0,
                not_after: None,
            }],
            TokenChallenge::deployment(ISSUER_NAME, DEPLOYMENT)
                .digest()
                .unwrap(),
        );

        // The miner.
        let watcher = SigningKey::from_bytes(&rand::random());
        let port = |_: &str| SocketAddr::from((Ipv4Addr::LOCALHOST, free_port()));
        let (udp, tcp, dot, doh, api) = (
            port("udp"),
            port("tcp"),
            port("dot"),
            port("doh"),
            port("api"),
        );
        let data = dir.join("miner");
        let config_path = dir.join("miner.toml");
        std::fs::write(
            &config_path,
            format!(
                r#"data_dir = "{data}"
upstreams = ["{upstream}"]
log_level = "warn"

[listen]
udp = "{udp}"
tcp = "{tcp}"
dot = "{dot}"
doh = "{doh}"

[receipts]
window_secs = {WINDOW_SECS}
close_grace_ms = 300
name_key_epoch_secs = 60

[journal]
checkpoint_interval_ms = 100

[edge.attack]
enabled = false

[api]
listen = "{api}"
auditor_keys = ["{auditor}"]
audit_rate_per_sec = 1000
audit_burst = 1000

[tickets]
issuer_name = "{ISSUER_NAME}"
deployment = "{DEPLOYMENT}"
issuer_keys = ["{token_key}"]
"#,
                data = data.display(),
                upstream = upstream.udp_addr,
                auditor = bs58::encode(watcher.verifying_key().as_bytes()).into_string(),
            ),
        )
        .unwrap();
        let config = tolldns_miner::config::Config::load(&config_path).unwrap();
        let options = tolldns_miner::node::RunOptions {
            config,
            config_path: None,
            data_dir_override: None,
            log: None,
        };
        // The node's future is not `Send`: it runs on a runtime of its own.
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            let starter = tolldns_miner::ingress::IngressStarter;
            if let Err(e) = runtime.block_on(tolldns_miner::node::run(options, &starter)) {
                panic!("miner: {e:#}");
            }
        });
        let api_origin = format!("http://{api}");
        until("the miner", || async move {
            tokio::net::TcpStream::connect(api).await.is_ok()
                && tokio::net::TcpStream::connect(doh).await.is_ok()
                && tokio::net::TcpStream::connect(dot).await.is_ok()
        })
        .await;
        let key = tolldns_service::keyfile::load(&data.join("keys").join("receipt-signing.json"))
            .unwrap();
        let tls = Arc::new(
            tolldns_service::tls::client_config(
                &data.join("tls").join("cert.pem"),
                &[b"h2", b"http/1.1", b"dot"],
            )
            .unwrap(),
        );

        let tokens_path = dir.join("watcher").join("probe-tokens.json");
        let probe_tokens = ProbeTokens::open(
            &tokens_path,
            ISSUER_NAME,
            DEPLOYMENT,
            None,
            Duration::from_secs(10),
        )
        .unwrap();
        assert_eq!(
            probe_tokens
                .fetch(&issuer_origin, &wallet, tokens)
                .await
                .unwrap(),
            tokens
        );
        Self {
            dir,
            upstream,
            issuer: issuer_origin,
            wallet,
            watcher,
            token_verifier,
            udp,
            tcp,
            dot,
            doh,
            api: api_origin,
            operator: key.verifying_key().to_bytes(),
            tls,
            tokens: probe_tokens,
        }
    }

    /// The signed batches of `window` from the public API: (id, receipt).
    pub async fn batches(&self, window: u64) -> Vec<([u8; 32], Receipt)> {
        let client = AuditClient::new(
            Origin::parse(&self.api).unwrap(),
            None,
            Duration::from_secs(5),
            self.watcher.clone(),
        );
        let (reply, _) = client
            .get(&format!("/v1/batches?window={window}"), None, 16 << 20)
            .await
            .unwrap();
        assert_eq!(reply.status, 200, "{}", reply.describe());
        let v: serde_json::Value = serde_json::from_slice(&reply.body).unwrap();
        v["batches"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| {
                let mut id = [0u8; 32];
                hex::decode_to_slice(b["id"].as_str().unwrap(), &mut id).unwrap();
                let receipt = Receipt::from_json(&b["receipt"].to_string()).unwrap();
                (id, receipt)
            })
            .collect()
    }

    /// Waits for the batch of the window containing `at_ms` and returns it.
    pub async fn batch_at(&self, at_ms: u64) -> ([u8; 32], Receipt) {
        let window = WindowId::containing(at_ms, WindowLen::new(WINDOW_SECS).unwrap()).get();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(b) = self.batches(window).await.into_iter().next() {
                return b;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "no batch for window {window}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        // The nodes run until the test process ends; their files may go.
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Wall-clock milliseconds.
pub fn now_ms() -> u64 {
    tolldns_service::http::now_ms()
}
