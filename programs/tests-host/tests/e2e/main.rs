//! End to end, with real processes on loopback: the programs in the in-process bank served by
//! the localnet JSON-RPC, a local authoritative upstream, `tolldns-issuer` crediting on-chain
//! ticket purchases, four `tolldns-miner`s registered as operators (three honest, one cheating
//! with forged receipts, a lying upstream and only unticketed traffic), three
//! `tolldns-watcher`s (K = 2) and a lying watcher key, a load client (`tolldns ticket fetch` +
//! `tolldns query`) over UDP, TCP, DoT and DoH for two epochs, then `tolldns claim` per miner
//! checked against `tolldns score epoch` on the published inputs. The main workspace's
//! binaries come from `$TOLLDNS_BIN_DIR` (default `<repository>/target/debug`).
#![allow(deprecated)] // solana-program-test 3.x marks its API "agave-unstable-api"
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod chain;
mod forge;
mod procs;
mod upstream;
mod watchers;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anchor_lang::prelude::Pubkey;
use solana_keypair::Keypair;
use solana_signer::Signer;
use tolldns_miner_score::{InitArgs, Params, ScoreParams, Timing};
use tolldns_programs_tests::localnet::{Localnet, LocalnetOptions};
use tolldns_registry::constants::{
    ROLE_ISSUER, ROLE_WATCHER, TRANSPORT_AUDIT_API, TRANSPORT_DOH, TRANSPORT_DOT, TRANSPORT_TCP,
    TRANSPORT_UDP,
};

use procs::{bin, run, try_run, Proc};

/// Wall-clock milliseconds per slot.
const MS_PER_SLOT: u64 = 50;
/// Epoch length in slots (10 s at 50 ms per slot).
const EPOCH_LEN: u64 = 200;
/// The first scored epoch.
const FIRST_EPOCH: u64 = 2;
/// Base units per TOLL.
const TOLL: u64 = 1_000_000_000;
/// The token challenge of the deployment.
const ISSUER_NAME: &str = "issuer.e2e.test";
const DEPLOYMENT: &str = "tolldns-e2e";
/// The name the cheating miner's upstream answers wrongly.
const LIE_NAME: &str = "lie.e2e.test";
/// Role bit of an edge ingress (role code 1).
const ROLE_EDGE: u16 = 1 << 1;

/// A fresh directory for this run.
fn temp_dir() -> PathBuf {
    let d = std::env::temp_dir().join(format!("tolldns-e2e-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Writes `key` as a Solana keypair file (JSON array of the 64 secret+public bytes), mode 0600.
fn write_keypair(path: &Path, key: &Keypair) {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(
        path,
        serde_json::to_string(&key.to_bytes().to_vec()).unwrap(),
    )
    .unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
}

/// A minimal HTTP/1.1 GET: (status, body).
async fn http_get(addr: SocketAddr, path: &str) -> (u16, String) {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).await.unwrap();
    let raw = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((&raw, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, body.to_string())
}

/// A minimal HTTP/1.1 POST of a JSON body with extra headers: (status, body).
async fn http_post(
    addr: SocketAddr,
    path: &str,
    body: &str,
    headers: &[(&str, &str)],
) -> (u16, String) {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let extra: String = headers
        .iter()
        .map(|(k, v)| format!("{k}: {v}\r\n"))
        .collect();
    let req = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n{extra}\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).await.unwrap();
    let raw = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((&raw, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, body.to_string())
}

/// The issuer process and its address.
struct Issuer {
    proc: Proc,
    addr: SocketAddr,
    /// The directory's current token key (base64url SPKI).
    token_key: String,
}

async fn start_issuer(dir: &Path, rpc: &str, wallet: &Pubkey) -> Issuer {
    let config = dir.join("issuer.toml");
    std::fs::write(
        &config,
        format!(
            "data_dir = \"{}\"\nlisten = \"127.0.0.1:0\"\n\n[chain]\nrpc_url = \"{rpc}\"\n\
             issuer_wallet = \"{wallet}\"\nregistry_program = \"{}\"\nsync_interval_secs = 1\n",
            dir.join("issuer").display(),
            tolldns_registry::ID
        ),
    )
    .unwrap();
    let mut proc = Proc::spawn(
        "issuer",
        Command::new(bin("tolldns-issuer"))
            .args(["run", "--config"])
            .arg(&config),
    );
    let rest = proc
        .wait_prefix(Duration::from_secs(60), "listening http://")
        .await;
    let addr: SocketAddr = rest.split_whitespace().next().unwrap().parse().unwrap();
    let (status, directory) = http_get(addr, "/.well-known/private-token-issuer-directory").await;
    assert_eq!(status, 200, "{directory}");
    let directory: serde_json::Value = serde_json::from_str(&directory).unwrap();
    let token_key = directory["token-keys"][0]["token-key"]
        .as_str()
        .unwrap_or_else(|| panic!("no token key in {directory}"))
        .to_string();
    Issuer {
        proc,
        addr,
        token_key,
    }
}

/// One miner process and what the test knows about it.
struct Miner {
    proc: Proc,
    dir: PathBuf,
    /// The operator's wallet (the stake PDA seed; what the score program pays).
    wallet: Keypair,
    /// The receipt-signing key (registered as the operator's signing key).
    signing: Keypair,
    backend: String,
    udp: SocketAddr,
    tcp: SocketAddr,
    dot: SocketAddr,
    doh: SocketAddr,
    api: SocketAddr,
}

impl Miner {
    fn cert(&self) -> PathBuf {
        self.dir.join("data/tls/cert.pem")
    }

    /// Batches reported as signed: (id, leaves).
    fn signed(&self) -> Vec<(String, u64)> {
        self.proc
            .lines()
            .iter()
            .filter(|l| l.contains("batch signed "))
            .map(|l| {
                let field = |name: &str| {
                    l.split_whitespace()
                        .find_map(|w| w.strip_prefix(name))
                        .unwrap()
                        .to_owned()
                };
                (field("id="), field("leaves=").parse().unwrap())
            })
            .collect()
    }
}

#[allow(clippy::too_many_arguments)]
async fn start_miner(
    dir: &Path,
    index: usize,
    upstream: SocketAddr,
    watchers: &[String],
    auditors: &[Pubkey],
    token_key: &str,
) -> Miner {
    let dir = dir.join(format!("miner{index}"));
    std::fs::create_dir_all(&dir).unwrap();
    let signing = Keypair::new();
    let key_file = dir.join("signing.json");
    write_keypair(&key_file, &signing);
    let backend = format!("e2e-gw-{index}");
    let quote = |v: &[String]| {
        v.iter()
            .map(|s| format!("\"{s}\""))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let auditors: Vec<String> = auditors.iter().map(ToString::to_string).collect();
    let config = dir.join("config.toml");
    std::fs::write(
        &config,
        format!(
            r#"data_dir = "{data}"
upstreams = ["{upstream}"]
log_level = "info"

[listen]
udp = "127.0.0.1:0"
tcp = "127.0.0.1:0"
dot = "127.0.0.1:0"
doh = "127.0.0.1:0"

[identity]
signing_key_file = "{key}"

[receipts]
window_secs = 2
close_grace_ms = 300
# 2 s windows: stream leaves to the journal at once so that a window's receipt reaches the
# watchers `close_grace_ms` after it ends, as the test's epoch timing expects (the defaults,
# 1 s and 250 ms, suit 60 s windows).
watermark_ms = 10
flush_interval_ms = 10
name_key_epoch_secs = 60
backend_id = "{backend}"

[journal]
checkpoint_interval_ms = 100

[edge.attack]
enabled = false

[agent]
watchers = [{watchers}]
retry_initial_ms = 200
retry_max_ms = 1000

[api]
listen = "127.0.0.1:0"
auditor_keys = [{auditors}]
audit_rate_per_sec = 1000
audit_burst = 1000

[tickets]
issuer_name = "{ISSUER_NAME}"
deployment = "{DEPLOYMENT}"
issuer_keys = ["{token_key}"]
queries_per_token = 10
"#,
            data = dir.join("data").display(),
            key = key_file.display(),
            watchers = quote(watchers),
            auditors = quote(&auditors),
        ),
    )
    .unwrap();
    let mut proc = Proc::spawn(
        &format!("miner{index}"),
        Command::new(bin("tolldns-miner"))
            .args(["run", "--config"])
            .arg(&config),
    );
    let t = Duration::from_secs(60);
    let api = proc.wait_prefix(t, "listening api http://").await;
    let api: SocketAddr = api.split_whitespace().next().unwrap().parse().unwrap();
    let addr = |prefix: &'static str| {
        let line = proc
            .lines()
            .into_iter()
            .find_map(|l| l.strip_prefix(prefix).map(str::to_string))
            .unwrap_or_else(|| panic!("no `{prefix}` line"));
        line.split_whitespace().next().unwrap().parse().unwrap()
    };
    let (udp, tcp, dot, doh) = (
        addr("listening udp "),
        addr("listening tcp "),
        addr("listening dot "),
        addr("listening doh "),
    );
    let operator = proc.wait_prefix(t, "operator ").await;
    assert_eq!(
        operator.split_whitespace().next().unwrap(),
        signing.pubkey().to_string(),
        "the miner signs with the configured key"
    );
    Miner {
        proc,
        dir,
        wallet: Keypair::new(),
        signing,
        backend,
        udp,
        tcp,
        dot,
        doh,
        api,
    }
}

/// `tolldns query` of `name` at `miner` over `transport` (`udp`, `tcp`, `dot`, `doh`), paid
/// with the next token of `tokens` if given, `repeat` times (the session after the first).
fn query(miner: &Miner, transport: &str, name: &str, tokens: Option<&Path>, repeat: u32) -> String {
    let server = match transport {
        "udp" => miner.udp,
        "tcp" => miner.tcp,
        "dot" => miner.dot,
        _ => miner.doh,
    };
    let mut cmd = Command::new(bin("tolldns"));
    cmd.args(["query", "--server"])
        .arg(server.to_string())
        .args(["--transport", transport, "--repeat", &repeat.to_string()]);
    if let Some(tokens) = tokens {
        cmd.arg("--tokens").arg(tokens);
    }
    if matches!(transport, "dot" | "doh") {
        cmd.arg("--ca")
            .arg(miner.cert())
            .args(["--tls-name", "localhost"]);
    }
    cmd.args([name, "A"]);
    let out = run(&mut cmd);
    assert_eq!(
        out.matches("rcode: NOERROR").count(),
        repeat as usize,
        "{transport} at {}: {out}",
        miner.proc.name
    );
    out
}

/// `tolldns ticket fetch` of `count` tokens into `out`, retried until the issuer has credited
/// the on-chain purchase (deadline 30 s).
async fn fetch_tokens(issuer: &Issuer, wallet: &Path, count: u32, out: &Path) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (ok, stdout, stderr) = try_run(
            Command::new(bin("tolldns"))
                .args(["ticket", "fetch", "--issuer"])
                .arg(format!("http://{}", issuer.addr))
                .arg("--wallet")
                .arg(wallet)
                .args(["--count", &count.to_string(), "--issuer-name", ISSUER_NAME])
                .args(["--deployment", DEPLOYMENT, "--out"])
                .arg(out),
        );
        if ok {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "ticket fetch failed: {stdout}{stderr}\nissuer:\n{}",
            issuer.proc.output()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// The score parameters of the test deployment.
fn score_params() -> ScoreParams {
    ScoreParams {
        epoch_len_slots: EPOCH_LEN,
        per_miner_epoch_cap: 400 * TOLL,
        min_miner_stake_weight: 1,
        alpha_correctness_bps: 5000,
        alpha_diversity_bps: 2000,
        alpha_timeliness_bps: 2000,
        alpha_uptime_bps: 1000,
        centralization_penalty_bps: 2000,
        dominance_threshold_bps: 5000,
        diversity_target: 10,
    }
}

/// Field-wise lower median of the watchers' published entries for one miner (what the score
/// program computes from their reports).
fn lower_median(entries: &[&serde_json::Value]) -> serde_json::Value {
    let mut out = serde_json::Map::new();
    out.insert("miner".into(), entries[0]["miner"].clone());
    for field in [
        "stake_weight",
        "unique_name_count",
        "first_submit_slot",
        "uptime_score",
        "correctness_score",
        "dominance_share_bps",
    ] {
        let mut v: Vec<u64> = entries.iter().map(|e| e[field].as_u64().unwrap()).collect();
        v.sort_unstable();
        out.insert(field.into(), serde_json::json!(v[(v.len() - 1) / 2]));
    }
    serde_json::Value::Object(out)
}

/// An Anchor account of the score program, read from the bank.
async fn score_account<T: anchor_lang::AccountDeserialize>(
    net: &Localnet,
    key: &Pubkey,
) -> Option<T> {
    let acc = net.bank().await.account(key).await.unwrap()?;
    Some(T::try_deserialize(&mut acc.data.as_slice()).unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn served_queries_become_paid_rewards_and_cheats_earn_nothing() {
    let started = Instant::now();
    let dir = temp_dir();
    let net = Localnet::start(LocalnetOptions {
        ms_per_slot: MS_PER_SLOT,
        clock_running: false,
    })
    .await
    .unwrap();
    let rpc = net.url();
    let honest_upstream = upstream::Upstream::start().await;
    let lying_upstream = upstream::Upstream::start_lying(LIE_NAME).await;

    // ----- Set-up in epoch 1, with the clock stopped: the registry, the issuer and the
    // watchers as operators, ticket purchases (the load client's and the watchers' probe
    // tokens).
    let issuer_wallet = Keypair::new();
    let buyer = Keypair::new();
    let buyer_file = dir.join("buyer.json");
    write_keypair(&buyer_file, &buyer);
    let watcher_keys: Vec<Keypair> = (0..3).map(|_| Keypair::new()).collect();
    let liar = Keypair::new();
    let dispute = Keypair::new();
    let programs = {
        let mut bank = net.bank().await;
        bank.warp(EPOCH_LEN).unwrap();
        let p = chain::init_registry(&mut bank, EPOCH_LEN, 400, 1).await;
        for key in [&issuer_wallet, &buyer, &liar, &dispute]
            .into_iter()
            .chain(watcher_keys.iter())
        {
            bank.airdrop(&key.pubkey(), 10_000_000_000).await.unwrap();
        }
        chain::register_operator(
            &mut bank,
            &issuer_wallet,
            issuer_wallet.pubkey().to_bytes(),
            ROLE_ISSUER,
            vec![],
            vec![],
        )
        .await;
        for (key, tickets) in
            std::iter::once((&buyer, 60)).chain(watcher_keys.iter().map(|w| (w, 300)))
        {
            let account = chain::create_token_account(&mut bank, &p.mint, &key.pubkey()).await;
            chain::mint_to(&mut bank, &p, &account, 1_000 * TOLL).await;
            chain::buy_tickets(
                &mut bank,
                &p,
                key,
                &account,
                &issuer_wallet.pubkey(),
                tickets,
                1,
            )
            .await;
        }
        p
    };

    // The issuer credits the purchases from the chain; the load client fetches its tokens.
    let issuer = start_issuer(&dir, &rpc, &issuer_wallet.pubkey()).await;
    let tokens_file = dir.join("tokens.json");
    fetch_tokens(&issuer, &buyer_file, 60, &tokens_file).await;

    // Four miners; the fourth cheats (its upstream lies about one name). The watchers are
    // their auditors.
    let auditors: Vec<Pubkey> = watcher_keys.iter().map(|w| w.pubkey()).collect();
    let mut miners = Vec::new();
    for i in 0..4 {
        let up = if i == 3 {
            lying_upstream.addr
        } else {
            honest_upstream.addr
        };
        miners.push(start_miner(&dir, i, up, &[], &auditors, &issuer.token_key).await);
    }
    let ca_bundle = dir.join("miners-ca.pem");
    let certs: String = miners
        .iter()
        .map(|m| std::fs::read_to_string(m.cert()).unwrap())
        .collect();
    std::fs::write(&ca_bundle, certs).unwrap();

    // Three watchers (K = 2); the miners deliver to them from now on (SIGHUP reload).
    let setup = watchers::WatcherSetup {
        rpc: &rpc,
        upstream: honest_upstream.addr,
        probe_names: &["www.e2e.test", LIE_NAME],
        issuer: issuer.addr,
        issuer_name: ISSUER_NAME,
        deployment: DEPLOYMENT,
        token_key: &issuer.token_key,
        ca_file: &ca_bundle,
        window_secs: 2,
    };
    let mut watchers = Vec::new();
    for (i, key) in watcher_keys.iter().enumerate() {
        watchers.push(watchers::Watcher::start(&dir, i, key, &setup).await);
    }
    let urls: Vec<String> = watchers
        .iter()
        .map(|w| format!("\"{}\"", w.receipts_url()))
        .collect();
    for m in &miners {
        let config = m.dir.join("config.toml");
        let text = std::fs::read_to_string(&config).unwrap();
        std::fs::write(
            &config,
            text.replace(
                "watchers = []",
                &format!("watchers = [{}]", urls.join(", ")),
            ),
        )
        .unwrap();
        m.proc.signal("HUP");
    }
    for m in &mut miners {
        m.proc
            .wait_prefix_containing(Duration::from_secs(10), "SIGHUP: reloaded")
            .await;
    }

    // Operators (signing key = the miner's receipt key; every transport and the audit API),
    // stake, the watchers as operators (their API origin as endpoint transport 6: where the
    // other watchers fetch their probe tickets), the score config; then the clock runs.
    let mut miner_accounts = Vec::new();
    {
        let mut bank = net.bank().await;
        for (w, process) in watcher_keys.iter().zip(&watchers) {
            chain::register_operator(
                &mut bank,
                w,
                w.pubkey().to_bytes(),
                ROLE_WATCHER,
                vec![],
                vec![(TRANSPORT_AUDIT_API, format!("http://{}", process.api))],
            )
            .await;
        }
        for m in &miners {
            bank.airdrop(&m.wallet.pubkey(), 10_000_000_000)
                .await
                .unwrap();
            write_keypair(&m.dir.join("wallet.json"), &m.wallet);
            chain::register_operator(
                &mut bank,
                &m.wallet,
                m.signing.pubkey().to_bytes(),
                ROLE_EDGE,
                vec![m.backend.clone()],
                vec![
                    (TRANSPORT_UDP, m.udp.to_string()),
                    (TRANSPORT_TCP, m.tcp.to_string()),
                    (TRANSPORT_DOT, m.dot.to_string()),
                    (
                        TRANSPORT_DOH,
                        format!("https://localhost:{}/dns-query", m.doh.port()),
                    ),
                    (TRANSPORT_AUDIT_API, format!("http://{}", m.api)),
                ],
            )
            .await;
            let account =
                chain::create_token_account(&mut bank, &programs.mint, &m.wallet.pubkey()).await;
            chain::mint_to(&mut bank, &programs, &account, 1_000 * TOLL).await;
            chain::deposit_stake(&mut bank, &programs, &m.wallet, &account, 1_000 * TOLL).await;
            miner_accounts.push(account);
        }
        let mut allowlisted = auditors.clone();
        allowlisted.push(liar.pubkey());
        chain::init_score(
            &mut bank,
            &programs,
            InitArgs {
                params: Params {
                    base_reward_per_epoch: 1_000 * TOLL,
                    score: score_params(),
                    quorum: 2,
                    dispute_authority: dispute.pubkey(),
                },
                timing: Timing {
                    first_epoch: FIRST_EPOCH,
                    // 18 s after the epoch: each watcher sends one report per miner after
                    // `report_after_slots` (5 s), one confirmed transaction at a time, on a
                    // 2-core machine that also runs 4 miners, 3 watchers and the issuer.
                    // (Deadline + challenge window ≤ the registry's exit delay (400) ≤
                    // (timelock epochs − 1) × epoch length.)
                    reporting_deadline_slots: 360,
                    challenge_window_slots: 20,
                    claim_window_epochs: 4,
                    timelock_epochs: 3,
                },
                watchers: allowlisted,
                miners: miners.iter().map(|m| m.wallet.pubkey()).collect(),
            },
        )
        .await;
        chain::mint_to(&mut bank, &programs, &programs.reward_vault, 10_000 * TOLL).await;
        bank.warp(FIRST_EPOCH * EPOCH_LEN - 10).unwrap();
        bank.set_clock_running(true);
    }

    // ----- Two epochs of load: ticketed queries over every transport at the honest miners,
    // only unticketed ones at the cheater. Meanwhile the cheater forges receipts (epoch 2),
    // the liar reports (once epoch 2 is over), and watcher 2 is killed and restarted (epoch 3).
    let cheater = &miners[3];
    let forger = forge::ForgedReceipts::new(cheater.signing.secret_bytes().to_owned());
    let mut forged: Vec<(String, &'static str)> = Vec::new();
    let mut lied = false;
    for round in 0..4u64 {
        net.wait_for_slot(
            FIRST_EPOCH * EPOCH_LEN + round * EPOCH_LEN / 2,
            Instant::now() + Duration::from_secs(60),
        )
        .await;
        // Watcher 2 is killed and restarted in the middle of epoch 3, before that round's
        // load: its stored receipts and probes must survive, and the deliveries the miners
        // retry while it restarts still land inside the epoch.
        if round == 3 {
            watchers[2].kill9_and_restart().await;
        }
        for m in &miners[..3] {
            for transport in ["udp", "tcp", "dot", "doh"] {
                query(
                    m,
                    transport,
                    &format!("r{round}-{transport}.e2e.test"),
                    Some(&tokens_file),
                    2,
                );
            }
        }
        for transport in ["udp", "tcp", "dot", "doh"] {
            query(
                cheater,
                transport,
                &format!("self{round}.e2e.test"),
                None,
                1,
            );
        }
        if round == 0 {
            forged = forge_and_post(cheater, &forger, &watchers, &miners[0].backend).await;
        }
        if round == 2 && !lied {
            // Epoch 2 is over: the liar's inflated report for miner 0 (every field at or
            // above what any honest watcher can report).
            let report = tolldns_miner_score::MinerEpochReport {
                aggregates_submitted: 1_000,
                unique_name_count: 1_000_000,
                unique_receipt_count: 1_000_000,
                first_submit_slot: (FIRST_EPOCH + 1) * EPOCH_LEN - 1,
                last_submit_slot: (FIRST_EPOCH + 1) * EPOCH_LEN - 1,
                uptime_score: 10_000,
                correctness_score: 10_000,
                dominance_share_bps: 10_000,
            };
            let mut bank = net.bank().await;
            chain::report(
                &mut bank,
                &programs,
                &liar,
                FIRST_EPOCH,
                miners[0].wallet.pubkey(),
                report,
            )
            .await
            .expect("the liar is an allowlisted watcher");
            lied = true;
        }
    }
    assert!(lied && !forged.is_empty());

    // ----- Settlement: the watchers report and finalize both epochs.
    let epochs = [FIRST_EPOCH, FIRST_EPOCH + 1];
    let deadline = Instant::now() + Duration::from_secs(90);
    for &e in &epochs {
        loop {
            let totals: Option<tolldns_miner_score::state::EpochTotals> =
                score_account(&net, &chain::totals_pda(e)).await;
            if let Some(t) = totals.filter(|t| t.finalized) {
                net.wait_for_slot(t.claims_open_slot, deadline).await;
                break;
            }
            assert!(
                Instant::now() < deadline,
                "epoch {e} not finalized:\n{}",
                watchers
                    .iter()
                    .map(|w| w.proc.output())
                    .collect::<Vec<_>>()
                    .join("\n----\n")
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    // ----- Claims, and the checks.
    let score_bin = bin("tolldns");
    for &e in &epochs {
        let mut inputs = Vec::new();
        let mut reports = Vec::new();
        for w in &watchers {
            inputs.push(
                w.get_ok(&format!("/v1/epochs/{e}/inputs"), Duration::from_secs(30))
                    .await,
            );
            reports.push(
                w.get_ok(&format!("/v1/epochs/{e}/report"), Duration::from_secs(30))
                    .await,
            );
        }
        // What every watcher published (printed; shown when the test fails).
        for (w, r) in watchers.iter().zip(&reports) {
            for m in r["miners"].as_array().unwrap() {
                eprintln!(
                    "watcher{} epoch {e}: {} {} {} {}",
                    w.index, m["miner"], m["verdict"], m["reasons"], m["stats"]
                );
            }
            eprintln!(
                "watcher{} epoch {e} settlement: {}",
                w.index, r["settlement"]
            );
        }
        let totals: tolldns_miner_score::state::EpochTotals =
            score_account(&net, &chain::totals_pda(e)).await.unwrap();
        // The score input: each reported miner's field-wise lower median over the watchers.
        let mut median_miners = Vec::new();
        for m in &miners {
            let wallet = m.wallet.pubkey().to_string();
            let entries: Vec<&serde_json::Value> = inputs
                .iter()
                .filter_map(|i| {
                    i["miners"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .find(|x| x["miner"] == wallet.as_str())
                })
                .collect();
            if entries.len() >= 2 {
                median_miners.push(lower_median(&entries));
            }
        }
        let input = serde_json::json!({
            "config": inputs[0]["config"],
            "epoch_id": e,
            "pool": totals.reward_pool,
            "miners": median_miners,
        });
        let input_file = dir.join(format!("score-input-{e}.json"));
        std::fs::write(&input_file, input.to_string()).unwrap();
        let scored: serde_json::Value = serde_json::from_str(&run(Command::new(&score_bin)
            .args(["score", "epoch", "--input"])
            .arg(&input_file)))
        .unwrap();
        let mut paid_total = 0u64;
        for (i, m) in miners.iter().enumerate() {
            let wallet = m.wallet.pubkey().to_string();
            let expected: u64 = scored["miners"]
                .as_array()
                .unwrap()
                .iter()
                .find(|x| x["miner"] == wallet.as_str())
                .map_or(0, |x| x["reward"].as_str().unwrap().parse().unwrap());
            let before = net
                .bank()
                .await
                .token_balance(&miner_accounts[i])
                .await
                .unwrap();
            let (ok, out, err) = try_run(
                Command::new(&score_bin)
                    .args(["claim", "--rpc", &rpc, "--wallet"])
                    .arg(m.dir.join("wallet.json"))
                    .args(["--epoch", &e.to_string(), "--destination"])
                    .arg(miner_accounts[i].to_string())
                    .arg("--json"),
            );
            if ok {
                let printed: serde_json::Value = serde_json::from_str(&out).unwrap();
                assert_eq!(
                    printed["epoch"].to_string().trim_matches('"'),
                    e.to_string()
                );
                assert_eq!(printed["miner"], m.wallet.pubkey().to_string().as_str());
                assert_eq!(
                    printed["amount"].as_str().unwrap(),
                    expected.to_string(),
                    "{out}"
                );
            }
            let after = net
                .bank()
                .await
                .token_balance(&miner_accounts[i])
                .await
                .unwrap();
            let paid = after - before;
            if i < 3 {
                assert!(ok, "claim {i} epoch {e}: {out}{err}");
                assert!(paid > 0, "miner {i} earned in epoch {e}");
            } else {
                assert!(!ok, "the cheater's claim is refused: {out}{err}");
            }
            assert_eq!(
                paid, expected,
                "miner {i} epoch {e}: paid {paid}, score epoch says {expected}"
            );
            eprintln!("e2e: epoch {e} miner {i}: paid {paid}, tolldns score epoch {expected}");
            paid_total += paid;
        }
        let unallocated: u64 = scored["unallocated"].as_str().unwrap().parse().unwrap();
        eprintln!(
            "e2e: epoch {e}: pool {}, paid {paid_total}, unallocated {unallocated}",
            totals.reward_pool
        );
        assert_eq!(paid_total + unallocated, totals.reward_pool, "epoch {e}");
        let totals: tolldns_miner_score::state::EpochTotals =
            score_account(&net, &chain::totals_pda(e)).await.unwrap();
        assert_eq!(totals.total_claimed, paid_total);

        // Every watcher reported the honest miners and withheld the cheater, with evidence.
        let cheater_wallet = cheater.wallet.pubkey().to_string();
        for (w, report) in watchers.iter().zip(&reports) {
            for m in &miners {
                let entry = report["miners"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .find(|x| x["miner"] == m.wallet.pubkey().to_string().as_str())
                    .unwrap_or_else(|| {
                        panic!(
                            "watcher{} epoch {e}: no entry for {}: {report}",
                            w.index, m.proc.name
                        )
                    });
                let want = if m.wallet.pubkey().to_string() == cheater_wallet {
                    "withheld"
                } else {
                    "reported"
                };
                assert_eq!(
                    entry["verdict"], want,
                    "watcher{} epoch {e} {}: {entry}",
                    w.index, m.proc.name
                );
            }
            let entry = report["miners"]
                .as_array()
                .unwrap()
                .iter()
                .find(|x| x["miner"] == cheater_wallet.as_str())
                .unwrap();
            let reasons: Vec<&str> = entry["reasons"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r.as_str().unwrap())
                .collect();
            // (c) the wrong answer, every epoch.
            assert!(
                reasons.contains(&"probe_wrong_answer"),
                "watcher{} epoch {e}: {reasons:?}",
                w.index
            );
            let evidence = w.object(entry["object"].as_str().unwrap()).await;
            let probes = w.object(evidence["probes"].as_str().unwrap()).await;
            assert!(
                probes["probes"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|p| p["qname"]
                        .as_str()
                        .is_some_and(|q| q.trim_end_matches('.') == LIE_NAME)
                        && !p["evidence"].is_null()),
                "watcher{} epoch {e}: the wrong answer's evidence: {probes}",
                w.index
            );
            if e == FIRST_EPOCH + 1 {
                // (d) serving only its own unticketed traffic: the only ticketed leaves of its
                // receipts are the three watchers' probes, and every watcher discounts its
                // own probes and (by its own lookups at the miner) the other two's, so none
                // is client work. Every gate reason is listed, so this holds even though (c)
                // withholds the cheater too. Checked in the second epoch only: in the first,
                // the forged batch of (a) may have been accepted at ingest (its audit then
                // fails) and it claims invented ticketed leaves.
                assert!(
                    reasons.contains(&"no_ticketed_work"),
                    "watcher{} epoch {e}: {reasons:?}: {}",
                    w.index,
                    evidence["counts"]
                );
                assert_eq!(
                    evidence["counts"]["client_ticketed_leaves"], 0,
                    "watcher{} epoch {e}",
                    w.index
                );
                // The other two watchers' probes were found by this watcher's lookups.
                let mut peers: Vec<&str> = probes["peer_tickets"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .chain(probes["previous_epoch_peer_tickets"].as_array().unwrap())
                    .filter(|t| t["status"] == "found")
                    .map(|t| t["watcher"].as_str().unwrap())
                    .collect();
                peers.sort_unstable();
                peers.dedup();
                let mut others: Vec<String> = watcher_keys
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| *i != w.index)
                    .map(|(_, k)| k.pubkey().to_string())
                    .collect();
                others.sort_unstable();
                assert_eq!(peers, others, "watcher{} epoch {e}: {probes}", w.index);
                assert!(
                    evidence["counts"]["peer_probe_leaves"].as_u64().unwrap() > 0,
                    "watcher{} epoch {e}: {}",
                    w.index,
                    evidence["counts"]
                );
            }
            if e == FIRST_EPOCH {
                // (a) and (b): the forged batches are stored with their verdicts and evidence.
                for (id, kind) in &forged {
                    let r = evidence["receipts"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .find(|r| r["batch_id"] == id.as_str())
                        .unwrap_or_else(|| panic!("watcher{}: forged ({kind}) batch {id} not in the evidence: {evidence}", w.index));
                    let caught = r["verdict"] == "refused"
                        || match r["audit"].as_str() {
                            Some(h) => w.object(h).await["outcome"] == "failed",
                            None => false,
                        };
                    assert!(
                        caught,
                        "watcher{}: forged ({kind}) batch {id}: {r}",
                        w.index
                    );
                }
                assert!(
                    reasons.contains(&"receipt_refused") || reasons.contains(&"audit_failed"),
                    "{reasons:?}"
                );
            }
        }

        // The liar's report is held for miner 0 in epoch 2 but changed nothing (the check
        // above compares miner 0's payment with the honest watchers' median).
        if e == FIRST_EPOCH {
            let stats: tolldns_miner_score::state::MinerEpochStats =
                score_account(&net, &chain::stats_pda(e, &miners[0].wallet.pubkey()))
                    .await
                    .unwrap();
            assert!(
                stats.reports.iter().any(|r| r.watcher == liar.pubkey()),
                "the liar reported"
            );
        }

        // Killed and restarted in epoch 3, watcher 2 holds every receipt watcher 0 holds, once.
        if e == FIRST_EPOCH + 1 {
            for m in &miners[..3] {
                let wallet = m.wallet.pubkey().to_string();
                let batches = |report: &serde_json::Value| {
                    report["miners"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .find(|x| x["miner"] == wallet.as_str())
                        .unwrap()["object"]
                        .as_str()
                        .unwrap()
                        .to_string()
                };
                let o0 = watchers[0].object(&batches(&reports[0])).await;
                let o2 = watchers[2].object(&batches(&reports[2])).await;
                // Receipts that arrived clear of the epoch's edges (an edge receipt may land
                // in a neighbouring epoch at another watcher: the miner delivers to the
                // watchers one after another, and a busy machine spreads the deliveries over
                // several slots).
                let (lo, hi) = (e * EPOCH_LEN + 20, (e + 1) * EPOCH_LEN - 20);
                let ids = |o: &serde_json::Value, inner: bool| {
                    let mut v: Vec<String> = o["receipts"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .filter(|r| {
                            let slot = r["arrival_slot"].as_u64().unwrap_or(0);
                            !inner || (lo..=hi).contains(&slot)
                        })
                        .map(|r| r["batch_id"].as_str().unwrap().to_string())
                        .collect();
                    v.sort();
                    v
                };
                let all2 = ids(&o2, false);
                let mut dedup = all2.clone();
                dedup.dedup();
                assert_eq!(
                    dedup.len(),
                    all2.len(),
                    "{}: no receipt stored twice",
                    m.proc.name
                );
                for id in ids(&o0, true) {
                    assert!(
                        all2.contains(&id),
                        "{}: watcher 2 lost receipt {id}:\n{o2}",
                        m.proc.name
                    );
                }
                // Each stored receipt counted once, and the same distinct names.
                let accepted = o2["receipts"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .filter(|r| r["verdict"] == "accepted")
                    .count() as u64;
                assert_eq!(
                    o2["stats"]["aggregates_submitted"], accepted,
                    "{}",
                    m.proc.name
                );
                // The same distinct names when both hold the same receipts; otherwise they
                // differ only by receipts that arrived at an epoch edge.
                let accepted_ids = |o: &serde_json::Value| {
                    let mut v: Vec<(String, u64)> = o["receipts"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .filter(|r| r["verdict"] == "accepted")
                        .map(|r| {
                            (
                                r["batch_id"].as_str().unwrap().to_string(),
                                r["arrival_slot"].as_u64().unwrap_or(0),
                            )
                        })
                        .collect();
                    v.sort();
                    v
                };
                let (a0, a2) = (accepted_ids(&o0), accepted_ids(&o2));
                let ids0: Vec<&String> = a0.iter().map(|x| &x.0).collect();
                let ids2: Vec<&String> = a2.iter().map(|x| &x.0).collect();
                if ids0 == ids2 {
                    assert_eq!(
                        o0["stats"]["unique_name_count"], o2["stats"]["unique_name_count"],
                        "{}",
                        m.proc.name
                    );
                } else {
                    for (id, slot) in a0
                        .iter()
                        .filter(|x| !ids2.contains(&&x.0))
                        .chain(a2.iter().filter(|x| !ids0.contains(&&x.0)))
                    {
                        assert!(
                            !(lo..=hi).contains(slot),
                            "{}: receipt {id} (slot {slot}) at one watcher only",
                            m.proc.name
                        );
                    }
                }
            }
        }
    }
    eprintln!("e2e: slot {}, {:?}", net.slot().await, started.elapsed());
    drop(watchers);
    drop(issuer);
    drop(miners);
    let _ = std::fs::remove_dir_all(&dir);
}

/// The cheater's forgeries, POSTed to every watcher: (a) invented leaves in a fresh window,
/// (b) one of its real receipts re-signed under another operator's backend. Returns the forged
/// batch ids with their kind.
async fn forge_and_post(
    cheater: &Miner,
    forger: &forge::ForgedReceipts,
    watchers: &[watchers::Watcher],
    other_backend: &str,
) -> Vec<(String, &'static str)> {
    // A real receipt of the cheater, from its audit API.
    let deadline = Instant::now() + Duration::from_secs(30);
    let real = loop {
        if let Some((id, _)) = cheater.signed().into_iter().find(|(_, leaves)| *leaves > 0) {
            let (status, body) = http_get(cheater.api, &format!("/v1/batches/{id}")).await;
            assert_eq!(status, 200, "{body}");
            break tolldns_receipts::Receipt::from_json(&body).unwrap();
        }
        assert!(
            Instant::now() < deadline,
            "the cheater signed nothing:\n{}",
            cheater.proc.output()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let a = forger.invented_leaves(&real, 64);
    let b = forger.other_backend(&real, other_backend);
    let mut out = Vec::new();
    for (receipt, kind) in [(a, "invented leaves"), (b, "another backend")] {
        let id = forge::batch_id(&receipt);
        let json = receipt.to_json();
        for w in watchers {
            let (status, body) = w.post_receipt(&json, &id).await;
            assert!(
                matches!(status, 201 | 422),
                "watcher{} ({kind}): {status} {body}",
                w.index
            );
            if kind == "another backend" {
                assert_eq!(
                    status, 422,
                    "watcher{} refuses a window under another backend: {body}",
                    w.index
                );
            }
        }
        out.push((id, kind));
    }
    out
}
