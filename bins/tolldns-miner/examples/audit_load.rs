//! Load test of the miner's audit API (issue 10): concurrent auditors against a window of at
//! least 1M leaves while dnsperf queries the edge, with the miner's RSS sampled throughout.
//!
//! Everything runs as real processes on 127.0.0.1: an in-process authoritative upstream
//! (`tolldns_testkit`), the release `tolldns-miner` binary, `dnsperf`, and the auditors
//! (tokio tasks in this process, each with a signed `Authorization: TollDNS-Auditor` header).
//!
//! 1. fill: dnsperf at `--fill-qps` (25k) for one whole receipt window (plus a few toll-ticketed
//!    queries, so that ticket lookups have leaves to prove); wait for that window's batch to be
//!    signed with at least `--min-leaves` leaves;
//! 2. phases (each `--phase-secs`, dnsperf at a fixed `--rate` throughout):
//!    `baseline` (no auditors), `keys64` (64 auditors, one key each, honouring `Retry-After`),
//!    `key1` (64 tasks sharing one key, honouring `Retry-After`), `flood1` (64 tasks sharing one
//!    key that retry at once, plus a polite probe auditor with its own key), `probe` (the
//!    probe auditor alone: is it served again after a flood?), `flood64` (64 keys, retrying at
//!    once; not run by default);
//! 3. a summary: leaves, dnsperf sent/completed/lost per phase, audit answers by status with
//!    latencies, the miner's RSS (VmRSS/VmHWM every 100 ms) per phase, CPU per process, and a
//!    verification of sampled `200` answers with `tolldns_receipts::Verifier`.
//!
//! Build and run (see `benches/audit-load/README.md`):
//!
//! ```text
//! CARGO_TARGET_DIR=/work/targets/bench cargo build --release --locked -p tolldns-miner \
//!     --bin tolldns-miner --example audit_load
//! /work/targets/bench/release/examples/audit_load
//! ```

use std::collections::BTreeMap;
use std::io::{BufRead as _, Read as _};
use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context as _, anyhow, bail};
use base64::Engine as _;
use clap::Parser;
use ed25519_dalek::SigningKey;
use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query};
use hickory_proto::rr::rdata::A;
use hickory_proto::rr::rdata::opt::{EdnsCode, EdnsOption};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _};
use tolldns_core::{BackendId, DeploymentId, NameKey, OperatorId, Role, WindowId, WindowLen};
use tolldns_miner::now_ms;
use tolldns_receipts::{
    AuditAnswer, AuditSample, Deployment, Leaf, LeafProof, MerkleProof, OperatorRegistry,
    OperatorStatus, PolicyRegistry, Receipt, ReceiptLedger, TicketCheck, TicketStatus, Verifier,
};
use tolldns_testkit::{TestServer, TestZone};
use tolldns_tickets::protocol::{SESSION_OPTION_CODE, TOKEN_OPTION_CODE};
use tolldns_tickets::{IssuerSecretKey, TokenChallenge};

const ISSUER_NAME: &str = "issuer.audit-load.test";
const DEPLOYMENT: &str = "tolldns-audit-load";
const ZONE: &str = "example.test";
/// `receipts.name_key_epoch_secs` (the default).
const NAME_KEY_EPOCH_SECS: u64 = 86_400;

#[derive(Debug, Parser)]
#[command(
    about = "Audit API load test: auditors vs. a >= 1M-leaf window while dnsperf queries the edge"
)]
struct Args {
    /// The tolldns-miner binary; default: `../tolldns-miner` next to this example's binary.
    #[arg(long)]
    miner: Option<PathBuf>,
    /// The dnsperf binary.
    #[arg(long, default_value = "dnsperf")]
    dnsperf: String,
    /// `receipts.window_secs`.
    #[arg(long, default_value_t = 60)]
    window_secs: u32,
    /// Fail unless the filled window's batch has at least this many leaves.
    #[arg(long, default_value_t = 1_000_000)]
    min_leaves: u64,
    /// dnsperf `-Q` while filling the window (0: as fast as it goes; leaves past
    /// `receipts.max_pending_leaves` held at once are lost if the journal falls behind).
    #[arg(long, default_value_t = 25_000)]
    fill_qps: u32,
    /// Distinct names in the zone and in dnsperf's query file (`n0.example.test` ...), cycled
    /// in order (few names at a high rate make many leaves honest repeats: same query, answer
    /// and millisecond).
    #[arg(long, default_value_t = 1024)]
    names: u32,
    /// TTL of the upstream's records: longer than the run, so that no cache expiry (and
    /// refresh storm against the single-threaded test upstream) falls inside a phase.
    #[arg(long, default_value_t = 86_400)]
    ttl: u32,
    /// dnsperf `-c` (clients).
    #[arg(long, default_value_t = 20)]
    dnsperf_clients: u32,
    /// dnsperf `-q` (outstanding queries).
    #[arg(long, default_value_t = 1000)]
    dnsperf_outstanding: u32,
    /// dnsperf `-Q` during the phases.
    #[arg(long, default_value_t = 20_000)]
    rate: u32,
    /// Length of every phase (dnsperf `-l`); default: the window length, so that every phase
    /// contains exactly one window close.
    #[arg(long)]
    phase_secs: Option<u64>,
    /// Seconds between phases (RSS "after" is read at the end of it).
    #[arg(long, default_value_t = 5)]
    settle_secs: u64,
    /// Comma-separated phases: baseline, keys64, key1, flood1, flood64, probe (repeatable).
    #[arg(long, default_value = "baseline,keys64,key1,flood1,probe")]
    phases: String,
    /// Concurrent audit tasks (`GET .../audit`).
    #[arg(long, default_value_t = 64)]
    clients: usize,
    /// Extra auditor tasks: half ticket lookups, half name-key requests.
    #[arg(long, default_value_t = 8)]
    extra_clients: usize,
    /// `k` of every audit.
    #[arg(long, default_value_t = 44)]
    k: u64,
    /// Worker threads of the auditors' tokio runtime.
    #[arg(long, default_value_t = 1)]
    client_threads: usize,
    /// Toll-ticket tokens redeemed in the filled window (0: none).
    #[arg(long, default_value_t = 4)]
    tokens: usize,
    /// Ticketed queries per token (the redeeming one included).
    #[arg(long, default_value_t = 300)]
    ticket_queries: usize,
    /// Send every ticketed query for `www.example.test` (back to back, so many land in the
    /// same millisecond as honest repeats) instead of cycling through the names.
    #[arg(long)]
    ticket_one_name: bool,
    /// `taskset -c` CPU list for the miner.
    #[arg(long)]
    miner_cpus: Option<String>,
    /// `taskset -c` CPU list for dnsperf.
    #[arg(long)]
    dnsperf_cpus: Option<String>,
    /// `taskset -c` CPU list for this process (auditors and upstream).
    #[arg(long)]
    client_cpus: Option<String>,
    /// Extra lines for the miner's `[api]` section (e.g. other limits).
    #[arg(long, default_value = "")]
    api_extra: String,
    /// 200 answers verified per endpoint and phase.
    #[arg(long, default_value_t = 8)]
    verify: usize,
    /// Working directory (config, data); default: a fresh one under the temp dir.
    #[arg(long)]
    work_dir: Option<PathBuf>,
    /// Keep the working directory.
    #[arg(long)]
    keep: bool,
}

// ---------------------------------------------------------------------------------------------
// Processes: the miner, its output, its RSS and CPU.

/// Output lines of a child, each with the wall-clock ms it was read at.
type Lines = Arc<Mutex<Vec<(u64, String)>>>;

fn collect_lines(child: &mut Child) -> Lines {
    let lines: Lines = Arc::new(Mutex::new(Vec::new()));
    let readers: Vec<Box<dyn std::io::Read + Send>> = vec![
        Box::new(child.stdout.take().expect("piped")),
        Box::new(child.stderr.take().expect("piped")),
    ];
    for reader in readers {
        let lines = Arc::clone(&lines);
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(reader)
                .lines()
                .map_while(Result::ok)
            {
                lines.lock().unwrap().push((now_ms(), line));
            }
        });
    }
    lines
}

struct Miner {
    child: Child,
    lines: Lines,
}

impl Miner {
    fn wait_for(&self, timeout: Duration, f: impl Fn(&str) -> bool) -> Option<String> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Some((_, l)) = self.lines.lock().unwrap().iter().find(|(_, l)| f(l)) {
                return Some(l.clone());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    fn output(&self) -> String {
        let lines = self.lines.lock().unwrap();
        let skip = lines.len().saturating_sub(40);
        lines[skip..]
            .iter()
            .map(|(_, l)| l.as_str())
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// `(wall ms, id, window, leaves)` of every "batch signed" line.
    fn signed(&self) -> Vec<(u64, String, u64, u64)> {
        self.lines
            .lock()
            .unwrap()
            .iter()
            .filter(|(_, l)| l.contains("batch signed"))
            .filter_map(|(t, l)| {
                let field = |name: &str| {
                    l.split_whitespace()
                        .find_map(|w| w.strip_prefix(name))
                        .map(str::to_owned)
                };
                Some((
                    *t,
                    field("id=")?,
                    field("window=")?.parse().ok()?,
                    field("leaves=")?.parse().ok()?,
                ))
            })
            .collect()
    }

    fn errors(&self) -> Vec<String> {
        self.lines
            .lock()
            .unwrap()
            .iter()
            .filter(|(_, l)| l.contains("ERROR") || l.contains("WARN"))
            .map(|(_, l)| l.clone())
            .collect()
    }
}

impl Drop for Miner {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[derive(Debug, Clone, Copy)]
struct Sample {
    /// Seconds since the start of the run.
    t: f64,
    rss_kb: u64,
    hwm_kb: u64,
}

fn proc_status_kb(pid: u32, field: &str) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
}

/// (state, utime + stime in seconds) from `/proc/PID/stat`.
fn proc_cpu(pid: &str) -> Option<(char, f64)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &text[text.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let state = f.first()?.chars().next()?;
    // After the command: state is field 3; utime and stime are fields 14 and 15.
    let utime: f64 = f.get(11)?.parse().ok()?;
    let stime: f64 = f.get(12)?.parse().ok()?;
    Some((state, (utime + stime) / clock_ticks()))
}

fn clock_ticks() -> f64 {
    static TICKS: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    *TICKS.get_or_init(|| {
        Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
            .unwrap_or(100.0)
    })
}

fn spawn_sampler(
    pid: u32,
    start: Instant,
    stop: Arc<AtomicBool>,
) -> (Arc<Mutex<Vec<Sample>>>, std::thread::JoinHandle<()>) {
    let samples = Arc::new(Mutex::new(Vec::new()));
    let out = Arc::clone(&samples);
    let handle = std::thread::spawn(move || {
        while !stop.load(Ordering::Relaxed) {
            if let (Some(rss_kb), Some(hwm_kb)) =
                (proc_status_kb(pid, "VmRSS:"), proc_status_kb(pid, "VmHWM:"))
            {
                out.lock().unwrap().push(Sample {
                    t: start.elapsed().as_secs_f64(),
                    rss_kb,
                    hwm_kb,
                });
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    });
    (samples, handle)
}

// ---------------------------------------------------------------------------------------------
// dnsperf.

#[derive(Debug, Clone, Default)]
struct DnsStats {
    sent: u64,
    completed: u64,
    lost: u64,
    qps: f64,
    avg_latency_ms: f64,
    max_latency_ms: f64,
    rcodes: String,
    cpu_s: f64,
    /// Answered queries per second, every second (`-S 1`).
    series: Vec<f64>,
}

impl DnsStats {
    fn answered_pct(&self) -> f64 {
        if self.sent == 0 {
            return 0.0;
        }
        100.0 * self.completed as f64 / self.sent as f64
    }
}

fn parse_dnsperf(out: &str) -> DnsStats {
    let value = |label: &str| -> Option<&str> {
        out.lines()
            .find_map(|l| l.trim().strip_prefix(label))
            .map(str::trim)
    };
    let first_num = |label: &str| -> f64 {
        value(label)
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0)
    };
    let max_latency_ms = value("Average Latency (s):")
        .and_then(|v| v.split("max ").nth(1))
        .and_then(|v| v.trim_end_matches(')').parse::<f64>().ok())
        .unwrap_or(0.0)
        * 1000.0;
    DnsStats {
        sent: first_num("Queries sent:") as u64,
        completed: first_num("Queries completed:") as u64,
        lost: first_num("Queries lost:") as u64,
        qps: first_num("Queries per second:"),
        avg_latency_ms: first_num("Average Latency (s):") * 1000.0,
        max_latency_ms,
        rcodes: value("Response codes:").unwrap_or("").to_owned(),
        cpu_s: 0.0,
        series: out
            .lines()
            .filter_map(|l| {
                let (t, v) = l.trim().split_once(": ")?;
                t.parse::<f64>().ok()?;
                v.split_whitespace().next()?.parse().ok()
            })
            .collect(),
    }
}

/// Runs dnsperf to completion on another thread; the handle returns its statistics.
fn spawn_dnsperf(
    args: &Args,
    server: SocketAddr,
    data: &Path,
    secs: u64,
    rate: Option<u32>,
    extra: &[&str],
) -> anyhow::Result<std::thread::JoinHandle<anyhow::Result<DnsStats>>> {
    let mut cmd = match &args.dnsperf_cpus {
        Some(cpus) => {
            let mut c = Command::new("taskset");
            c.arg("-c").arg(cpus).arg(&args.dnsperf);
            c
        }
        None => Command::new(&args.dnsperf),
    };
    cmd.arg("-s")
        .arg(server.ip().to_string())
        .arg("-p")
        .arg(server.port().to_string())
        .arg("-d")
        .arg(data)
        .arg("-l")
        .arg(secs.to_string())
        .arg("-c")
        .arg(args.dnsperf_clients.to_string())
        .arg("-q")
        .arg(args.dnsperf_outstanding.to_string())
        .arg("-t")
        .arg("2")
        .arg("-S")
        .arg("1");
    if let Some(q) = rate {
        cmd.arg("-Q").arg(q.to_string());
    }
    cmd.args(extra);
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("starting {}", args.dnsperf))?;
    Ok(std::thread::spawn(move || {
        let mut stdout = child.stdout.take().expect("piped");
        let mut stderr = child.stderr.take().expect("piped");
        let err = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = stderr.read_to_string(&mut s);
            s
        });
        let out = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = stdout.read_to_string(&mut s);
            s
        });
        // Its CPU time, read until it is a zombie (then it is final).
        let pid = child.id().to_string();
        let mut cpu = 0.0;
        while let Some((state, c)) = proc_cpu(&pid) {
            cpu = c;
            if state == 'Z' {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let status = child.wait()?;
        let out = out.join().unwrap_or_default();
        let err = err.join().unwrap_or_default();
        if !status.success() {
            bail!("dnsperf failed ({status}): {out}\n{err}");
        }
        let mut stats = parse_dnsperf(&out);
        stats.cpu_s = cpu;
        if stats.sent == 0 {
            bail!("dnsperf sent nothing: {out}\n{err}");
        }
        Ok(stats)
    }))
}

// ---------------------------------------------------------------------------------------------
// Toll tickets: a few ticketed leaves in the filled window.

fn issue_token(issuer: &IssuerSecretKey) -> anyhow::Result<Vec<u8>> {
    let challenge = TokenChallenge::deployment(ISSUER_NAME, DEPLOYMENT);
    let (request, pending) = tolldns_tickets::client::request(issuer.public(), &challenge)
        .map_err(|e| anyhow!("token request: {e:?}"))?;
    let response = issuer
        .issue(&request)
        .map_err(|e| anyhow!("issue: {e:?}"))?;
    Ok(pending
        .finalize(issuer.public(), &response)
        .map_err(|e| anyhow!("finalize: {e:?}"))?
        .to_bytes())
}

fn query_with(id: u16, name: &str, option: Option<EdnsOption>) -> anyhow::Result<Vec<u8>> {
    let mut m = Message::new();
    m.set_id(id)
        .set_message_type(MessageType::Query)
        .set_op_code(OpCode::Query)
        .set_recursion_desired(true)
        .add_query(Query::query(Name::from_ascii(name)?, RecordType::A));
    let mut edns = Edns::new();
    edns.set_max_payload(1232);
    if let Some(o) = option {
        edns.options_mut().insert(o);
    }
    m.set_edns(edns);
    Ok(m.to_vec()?)
}

fn ask(socket: &UdpSocket, server: SocketAddr, query: &[u8]) -> Option<Message> {
    socket.send_to(query, server).ok()?;
    let mut buf = [0u8; 4096];
    loop {
        let (n, _) = socket.recv_from(&mut buf).ok()?;
        if let Ok(m) = Message::from_vec(&buf[..n])
            && m.id().to_be_bytes() == query[..2]
        {
            return Some(m);
        }
    }
}

/// Redeems every token and spends `per_token - 1` more queries of its session, cycling
/// through `names`; returns the ticketed queries answered.
fn ticketed_traffic(
    server: SocketAddr,
    tokens: &[Vec<u8>],
    per_token: usize,
    names: &[String],
) -> u64 {
    let www = format!("www.{ZONE}");
    let name = |i: usize| names.get(i % names.len().max(1)).unwrap_or(&www).as_str();
    let Ok(socket) = UdpSocket::bind("127.0.0.1:0") else {
        return 0;
    };
    let _ = socket.set_read_timeout(Some(Duration::from_secs(2)));
    let mut id = 0u16;
    let mut answered = 0;
    for token in tokens {
        id = id.wrapping_add(1);
        let Ok(q) = query_with(
            id,
            name(usize::from(id)),
            Some(EdnsOption::Unknown(TOKEN_OPTION_CODE, token.clone())),
        ) else {
            continue;
        };
        let Some(m) = ask(&socket, server, &q) else {
            eprintln!("audit_load: no answer to a token redemption");
            continue;
        };
        answered += 1;
        let session = m.extensions().as_ref().and_then(|e| {
            match e.option(EdnsCode::from(SESSION_OPTION_CODE))? {
                EdnsOption::Unknown(_, data) => Some(data.clone()),
                _ => None,
            }
        });
        let Some(session) = session else {
            eprintln!("audit_load: token not redeemed: {:?}", m.response_code());
            continue;
        };
        for _ in 1..per_token {
            id = id.wrapping_add(1);
            let Ok(q) = query_with(
                id,
                name(usize::from(id)),
                Some(EdnsOption::Unknown(SESSION_OPTION_CODE, session.clone())),
            ) else {
                continue;
            };
            if ask(&socket, server, &q).is_some() {
                answered += 1;
            }
        }
    }
    answered
}

// ---------------------------------------------------------------------------------------------
// The auditors: a keep-alive HTTP/1.1 client and the request loops.

#[derive(Debug)]
struct HttpReply {
    status: u16,
    retry_after: Option<u64>,
    body: Vec<u8>,
}

struct Conn {
    addr: SocketAddr,
    stream: Option<tokio::io::BufReader<tokio::net::TcpStream>>,
}

async fn exchange(
    s: &mut tokio::io::BufReader<tokio::net::TcpStream>,
    request: &str,
) -> std::io::Result<(HttpReply, bool)> {
    s.get_mut().write_all(request.as_bytes()).await?;
    let mut status = 0u16;
    let mut length = 0usize;
    let mut retry_after = None;
    let mut close = false;
    let mut first = true;
    loop {
        let mut line = String::new();
        if s.read_line(&mut line).await? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        let line = line.trim_end();
        if first {
            status = line
                .split_whitespace()
                .nth(1)
                .and_then(|v| v.parse().ok())
                .ok_or(std::io::ErrorKind::InvalidData)?;
            first = false;
            continue;
        }
        if line.is_empty() {
            break;
        }
        if let Some((k, v)) = line.split_once(':') {
            let v = v.trim();
            match k.to_ascii_lowercase().as_str() {
                "content-length" => length = v.parse().unwrap_or(0),
                "retry-after" => retry_after = v.parse().ok(),
                "connection" => close = v.eq_ignore_ascii_case("close"),
                _ => {}
            }
        }
    }
    let mut body = vec![0u8; length];
    s.read_exact(&mut body).await?;
    Ok((
        HttpReply {
            status,
            retry_after,
            body,
        },
        close,
    ))
}

impl Conn {
    const fn new(addr: SocketAddr) -> Self {
        Self { addr, stream: None }
    }

    /// One GET; `Err((error, reused))` says whether the connection had served a request before
    /// (then the server may just have closed it, and the request can be sent again).
    async fn get(
        &mut self,
        path: &str,
        auth: Option<&str>,
    ) -> Result<HttpReply, (std::io::Error, bool)> {
        let reused = self.stream.is_some();
        if self.stream.is_none() {
            let s = tokio::net::TcpStream::connect(self.addr)
                .await
                .map_err(|e| (e, false))?;
            let _ = s.set_nodelay(true);
            self.stream = Some(tokio::io::BufReader::new(s));
        }
        let auth = auth.map_or(String::new(), |a| format!("Authorization: {a}\r\n"));
        let request = format!("GET {path} HTTP/1.1\r\nHost: {}\r\n{auth}\r\n", self.addr);
        let Some(stream) = self.stream.as_mut() else {
            return Err((std::io::ErrorKind::NotConnected.into(), false));
        };
        match exchange(stream, &request).await {
            Ok((reply, close)) => {
                if close {
                    self.stream = None;
                }
                Ok(reply)
            }
            Err(e) => {
                self.stream = None;
                Err((e, reused))
            }
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Endpoint {
    Audit,
    Ticket,
    NameKey,
    /// Audits by the polite probe auditor of a flood phase.
    ProbeAudit,
}

impl Endpoint {
    const fn name(self) -> &'static str {
        match self {
            Self::Audit => "audit",
            Self::Ticket => "ticket",
            Self::NameKey => "name-key",
            Self::ProbeAudit => "audit (probe key)",
        }
    }
}

#[derive(Debug, Default)]
struct EndpointStats {
    /// Status (0: connection error or timeout) -> count.
    by_status: BTreeMap<u16, u64>,
    /// Latency (ms) of 200 answers.
    ok_ms: Vec<f64>,
    /// Latency (ms) of refusals (429, 503).
    refused_ms: Vec<f64>,
    /// Bytes of 200 bodies.
    ok_bytes: u64,
    /// Error texts of non-200/429/503 answers (a few).
    other: Vec<String>,
    /// Status -> (first, last) time it was answered, in seconds since the phase started.
    span: BTreeMap<u16, (f64, f64)>,
}

impl EndpointStats {
    fn merge(&mut self, o: Self) {
        for (s, n) in o.by_status {
            *self.by_status.entry(s).or_default() += n;
        }
        self.ok_ms.extend(o.ok_ms);
        self.refused_ms.extend(o.refused_ms);
        self.ok_bytes += o.ok_bytes;
        for t in o.other {
            if self.other.len() < 4 {
                self.other.push(t);
            }
        }
        for (status, (first, last)) in o.span {
            let e = self.span.entry(status).or_insert((first, last));
            e.0 = e.0.min(first);
            e.1 = e.1.max(last);
        }
    }
}

/// A 200 answer kept for verification.
#[derive(Debug)]
enum Kept {
    Audit {
        seed: [u8; 32],
        body: Vec<u8>,
    },
    Ticket {
        ticket: [u8; 16],
        body: Vec<u8>,
    },
    NameKey {
        key: usize,
        nonce: [u8; 16],
        body: Vec<u8>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Backoff {
    /// Honour `Retry-After` (whole seconds) after 429 and 503.
    RetryAfter,
    /// Retry at once.
    None,
}

/// What every auditor task shares.
struct Target {
    api: SocketAddr,
    operator: [u8; 32],
    batch: String,
    k: u64,
    tickets: Vec<[u8; 16]>,
    epoch: u64,
    keys: Vec<SigningKey>,
    keep: usize,
}

/// When a phase's auditors started, and when they stop.
#[derive(Debug, Clone, Copy)]
struct Clock {
    started: Instant,
    deadline: Instant,
}

#[derive(Default)]
struct Outcome {
    stats: BTreeMap<Endpoint, EndpointStats>,
    kept: Vec<Kept>,
}

async fn auditor_task(
    target: Arc<Target>,
    kept: Arc<Mutex<Vec<Kept>>>,
    endpoint: Endpoint,
    key: usize,
    task: usize,
    backoff: Backoff,
    clock: Clock,
) -> (Endpoint, EndpointStats) {
    let Clock { started, deadline } = clock;
    let mut stats = EndpointStats::default();
    let mut conn = Conn::new(target.api);
    let signer = &target.keys[key];
    let mut n = 0usize;
    while Instant::now() < deadline {
        n += 1;
        let seed: [u8; 32] = rand::random();
        let ticket = if target.tickets.is_empty() {
            rand::random()
        } else {
            target.tickets[(task + n) % target.tickets.len()]
        };
        let path = match endpoint {
            Endpoint::Audit | Endpoint::ProbeAudit => format!(
                "/v1/batches/{}/audit?seed={}&k={}",
                target.batch,
                hex::encode(seed),
                target.k
            ),
            Endpoint::Ticket => {
                format!(
                    "/v1/batches/{}/ticket/{}",
                    target.batch,
                    hex::encode(ticket)
                )
            }
            Endpoint::NameKey => format!("/v1/name-key/{}", target.epoch),
        };
        let nonce: [u8; 16] = rand::random();
        let auth = tolldns_service::auditor::authorization(
            signer,
            &target.operator,
            now_ms(),
            &nonce,
            "GET",
            &path,
        );
        let t0 = Instant::now();
        let result =
            tokio::time::timeout(Duration::from_secs(20), conn.get(&path, Some(&auth))).await;
        let ms = t0.elapsed().as_secs_f64() * 1000.0;
        let reply = match result {
            Ok(Ok(r)) => r,
            Ok(Err((_, true))) => continue, // the server closed a kept-alive connection
            Ok(Err((e, false))) => {
                *stats.by_status.entry(0).or_default() += 1;
                if stats.other.len() < 4 {
                    stats.other.push(format!("connection: {e}"));
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
            Err(_) => {
                conn.stream = None;
                *stats.by_status.entry(0).or_default() += 1;
                if stats.other.len() < 4 {
                    stats.other.push("timeout (20 s)".to_owned());
                }
                continue;
            }
        };
        *stats.by_status.entry(reply.status).or_default() += 1;
        let at = started.elapsed().as_secs_f64();
        let span = stats.span.entry(reply.status).or_insert((at, at));
        span.1 = at;
        match reply.status {
            200 => {
                stats.ok_ms.push(ms);
                stats.ok_bytes += reply.body.len() as u64;
                let mut kept = kept.lock().unwrap();
                let same = kept
                    .iter()
                    .filter(|k| {
                        matches!(
                            (k, endpoint),
                            (Kept::Audit { .. }, Endpoint::Audit | Endpoint::ProbeAudit)
                                | (Kept::Ticket { .. }, Endpoint::Ticket)
                                | (Kept::NameKey { .. }, Endpoint::NameKey)
                        )
                    })
                    .count();
                if same < target.keep {
                    kept.push(match endpoint {
                        Endpoint::Audit | Endpoint::ProbeAudit => Kept::Audit {
                            seed,
                            body: reply.body,
                        },
                        Endpoint::Ticket => Kept::Ticket {
                            ticket,
                            body: reply.body,
                        },
                        Endpoint::NameKey => Kept::NameKey {
                            key,
                            nonce,
                            body: reply.body,
                        },
                    });
                }
            }
            429 | 503 => {
                stats.refused_ms.push(ms);
                if backoff == Backoff::RetryAfter {
                    let secs = reply.retry_after.unwrap_or(1);
                    let wait = Duration::from_secs(secs)
                        .min(deadline.saturating_duration_since(Instant::now()));
                    tokio::time::sleep(wait).await;
                }
            }
            _ => {
                if stats.other.len() < 4 {
                    stats.other.push(format!(
                        "{} {}",
                        reply.status,
                        String::from_utf8_lossy(&reply.body)
                    ));
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
    (endpoint, stats)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Load {
    /// No auditors.
    None,
    /// One key per audit task.
    Keys(Backoff),
    /// One key for every task.
    OneKey(Backoff),
    /// Only the polite probe auditor.
    Probe,
}

/// Runs the auditors of a phase until `deadline`.
async fn run_auditors(
    target: Arc<Target>,
    clients: usize,
    extra: usize,
    load: Load,
    deadline: Instant,
) -> Outcome {
    let kept = Arc::new(Mutex::new(Vec::new()));
    let mut tasks = Vec::new();
    let clock = Clock {
        started: Instant::now(),
        deadline,
    };
    let (backoff, per_key, clients, extra) = match load {
        Load::None => return Outcome::default(),
        Load::Keys(b) => (b, true, clients, extra),
        Load::OneKey(b) => (b, false, clients, extra),
        Load::Probe => (Backoff::RetryAfter, false, 0, 0),
    };
    let key_of = |i: usize| if per_key { i % clients.max(1) } else { 0 };
    for i in 0..clients {
        tasks.push(tokio::spawn(auditor_task(
            Arc::clone(&target),
            Arc::clone(&kept),
            Endpoint::Audit,
            key_of(i),
            i,
            backoff,
            clock,
        )));
    }
    for j in 0..extra {
        let endpoint = if j % 2 == 0 {
            Endpoint::Ticket
        } else {
            Endpoint::NameKey
        };
        tasks.push(tokio::spawn(auditor_task(
            Arc::clone(&target),
            Arc::clone(&kept),
            endpoint,
            key_of(j),
            clients + j,
            backoff,
            clock,
        )));
    }
    if matches!(load, Load::OneKey(Backoff::None) | Load::Probe) {
        // A polite auditor with its own key: is it still served while another key floods?
        tasks.push(tokio::spawn(auditor_task(
            Arc::clone(&target),
            Arc::clone(&kept),
            Endpoint::ProbeAudit,
            target.keys.len() - 1,
            usize::MAX / 2,
            Backoff::RetryAfter,
            clock,
        )));
    }
    let mut out = Outcome::default();
    for t in tasks {
        if let Ok((endpoint, stats)) = t.await {
            out.stats.entry(endpoint).or_default().merge(stats);
        }
    }
    out.kept = std::mem::take(&mut *kept.lock().unwrap());
    out
}

// ---------------------------------------------------------------------------------------------
// Verification of kept answers with tolldns-receipts.

struct AssumeValid;

impl OperatorRegistry for AssumeValid {
    fn operator_status(&self, _: &OperatorId, _: Role, _: WindowId) -> OperatorStatus {
        OperatorStatus::Active
    }
    fn backend_registered(&self, _: &OperatorId, b: &BackendId) -> bool {
        b.as_str() == "edge-ingress"
    }
}
impl PolicyRegistry for AssumeValid {
    fn is_valid_policy(&self, v: u32, _: WindowId, _: WindowLen) -> bool {
        v == 1
    }
}
impl ReceiptLedger for AssumeValid {
    fn contains(&self, _: &OperatorId, _: &BackendId, _: WindowId) -> bool {
        false
    }
    fn overlaps(&self, _: &OperatorId, _: u64, _: u64) -> bool {
        false
    }
}

/// Test double: the tokens of the redeemed tickets were checked (they are ours).
struct KnownTickets(Vec<[u8; 16]>);

impl TicketCheck for KnownTickets {
    fn ticket_status(&self, ticket: &[u8; 16]) -> TicketStatus {
        if self.0.contains(ticket) {
            TicketStatus::Valid
        } else {
            TicketStatus::Unknown
        }
    }
}

fn leaf_proof(p: &serde_json::Value) -> anyhow::Result<LeafProof> {
    let hex_str = |v: &serde_json::Value| {
        v.as_str()
            .map(str::to_owned)
            .ok_or_else(|| anyhow!("not a string"))
    };
    let leaf = Leaf::from_bytes_any(&hex::decode(hex_str(&p["leaf_hex"])?)?)
        .map_err(|e| anyhow!("leaf: {e:?}"))?;
    let mut path = Vec::new();
    for h in p["path"].as_array().ok_or_else(|| anyhow!("no path"))? {
        let mut a = [0u8; 32];
        hex::decode_to_slice(hex_str(h)?, &mut a)?;
        path.push(a);
    }
    Ok(LeafProof {
        leaf,
        proof: MerkleProof {
            leaf_index: p["leaf_index"]
                .as_u64()
                .ok_or_else(|| anyhow!("leaf_index"))?,
            tree_size: p["tree_size"]
                .as_u64()
                .ok_or_else(|| anyhow!("tree_size"))?,
            path,
        },
    })
}

struct Checker<'a> {
    receipt: &'a Receipt,
    received_ms: u64,
    window_secs: u32,
    k: u64,
    tickets: KnownTickets,
    operator: [u8; 32],
    keys: &'a [SigningKey],
    epoch: u64,
}

impl Checker<'_> {
    fn check(&self, kept: &Kept) -> anyhow::Result<String> {
        match kept {
            Kept::Audit { seed, body } => {
                let v: serde_json::Value = serde_json::from_slice(body)?;
                let answers = v["proofs"]
                    .as_array()
                    .ok_or_else(|| anyhow!("no proofs"))?
                    .iter()
                    .map(|p| {
                        Ok(AuditAnswer {
                            leaf: leaf_proof(p)?,
                            next: if p["next"].is_null() {
                                None
                            } else {
                                Some(leaf_proof(&p["next"])?)
                            },
                        })
                    })
                    .collect::<anyhow::Result<Vec<_>>>()?;
                let n = self.receipt.body.integrity.leaf_count;
                let sample =
                    AuditSample::new(seed, &self.receipt.body.integrity.merkle_root, n, self.k);
                let deployment = Deployment::new(
                    DeploymentId::local(),
                    WindowLen::new(self.window_secs).map_err(|e| anyhow!("{e:?}"))?,
                );
                let report = Verifier::new(deployment, &AssumeValid, &AssumeValid, &AssumeValid)
                    .with_tickets(&self.tickets)
                    .verify_with_audit(self.receipt, self.received_ms, &sample, &answers)
                    .map_err(|e| anyhow!("audit refused: {e} ({})", e.name()))?;
                Ok(format!(
                    "audit: {} sampled, {} neighbours, {} ticketed: valid",
                    report.sampled, report.neighbours, report.ticketed
                ))
            }
            Kept::Ticket { ticket, body } => {
                let v: serde_json::Value = serde_json::from_slice(body)?;
                let proofs = v["proofs"]
                    .as_array()
                    .ok_or_else(|| anyhow!("no proofs"))?
                    .iter()
                    .map(leaf_proof)
                    .collect::<anyhow::Result<Vec<_>>>()?;
                let found =
                    tolldns_receipts::verify_ticket_leaves(self.receipt, ticket, &proofs, u64::MAX)
                        .map_err(|e| anyhow!("ticket lookup refused: {e} ({})", e.name()))?;
                let token_ok = match v["token"].as_str() {
                    Some(t) => {
                        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(t)?;
                        tolldns_tickets::ticket_id(&bytes) == *ticket
                    }
                    None => false,
                };
                if !token_ok && !self.tickets.0.is_empty() {
                    bail!("the token served does not hash to the ticket id");
                }
                Ok(format!(
                    "ticket {}: {found} leaves proved, token {}",
                    &hex::encode(ticket)[..8],
                    if token_ok { "matches" } else { "absent" }
                ))
            }
            Kept::NameKey { key, nonce, body } => {
                let v: serde_json::Value = serde_json::from_slice(body)?;
                let mut enc = [0u8; 32];
                hex::decode_to_slice(v["enc"].as_str().unwrap_or(""), &mut enc)?;
                let ct = hex::decode(v["ciphertext"].as_str().unwrap_or(""))?;
                let plain = tolldns_service::auditor::open_name_key(
                    &self.keys[*key],
                    &self.operator,
                    self.epoch,
                    nonce,
                    &enc,
                    &ct,
                )
                .map_err(|e| anyhow!("name key envelope: {e:?}"))?;
                if !NameKey(plain).matches(&self.receipt.body.integrity.name_key_commitment) {
                    bail!("the name key does not match the receipt's commitment");
                }
                Ok(format!(
                    "name key of epoch {}: opened, matches the receipt's commitment",
                    self.epoch
                ))
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Phases and the report.

struct PhaseReport {
    name: String,
    what: String,
    t0: f64,
    t1: f64,
    t2: f64,
    dns: DnsStats,
    auditors: Outcome,
    miner_cpu_s: f64,
    self_cpu_s: f64,
    closes: Vec<(u64, u64, String)>,
    verified: Vec<Result<String, String>>,
}

fn pct(v: &mut [f64], p: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    let i = ((v.len() - 1) as f64 * p / 100.0).round() as usize;
    v[i.min(v.len() - 1)]
}

fn mib(kb: u64) -> f64 {
    kb as f64 / 1024.0
}

/// RSS before `t0`, peak in `[t0, t1]`, at `t2`, and VmHWM at `t2` (KiB).
fn rss_between(samples: &[Sample], t0: f64, t1: f64, t2: f64) -> (u64, u64, u64, u64) {
    let before = samples
        .iter()
        .rev()
        .find(|s| s.t <= t0)
        .or(samples.first())
        .map_or(0, |s| s.rss_kb);
    let peak = samples
        .iter()
        .filter(|s| s.t >= t0 && s.t <= t1)
        .map(|s| s.rss_kb)
        .max()
        .unwrap_or(0);
    let at = samples.iter().rev().find(|s| s.t <= t2).or(samples.last());
    (
        before,
        peak,
        at.map_or(0, |s| s.rss_kb),
        at.map_or(0, |s| s.hwm_kb),
    )
}

fn self_cpu() -> f64 {
    proc_cpu("self").map_or(0.0, |(_, c)| c)
}

fn pin_self(cpus: &str) -> anyhow::Result<()> {
    let status = Command::new("taskset")
        .args(["-a", "-p", "-c", cpus, &std::process::id().to_string()])
        .stdout(Stdio::null())
        .status()?;
    if !status.success() {
        bail!("taskset -a -p -c {cpus} failed");
    }
    Ok(())
}

fn wait_until_ms(t: u64) {
    let now = now_ms();
    if t > now {
        std::thread::sleep(Duration::from_millis(t - now));
    }
}

#[allow(clippy::too_many_lines)]
fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let cpus = std::thread::available_parallelism().map_or(0, std::num::NonZero::get);
    if let Some(cpus) = &args.client_cpus {
        pin_self(cpus)?;
    }
    let start = Instant::now();
    let phase_secs = args.phase_secs.unwrap_or(u64::from(args.window_secs));
    let phases: Vec<String> = args
        .phases
        .split(',')
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .collect();
    for p in &phases {
        if !["baseline", "keys64", "key1", "flood1", "flood64", "probe"].contains(&p.as_str()) {
            bail!("unknown phase `{p}`");
        }
    }
    let miner_bin = match &args.miner {
        Some(p) => p.clone(),
        None => std::env::current_exe()?
            .parent()
            .and_then(Path::parent)
            .ok_or_else(|| anyhow!("no parent directory"))?
            .join("tolldns-miner"),
    };
    if !miner_bin.exists() {
        bail!(
            "{} not found: build it (cargo build --release -p tolldns-miner) or pass --miner",
            miner_bin.display()
        );
    }
    let work = args.work_dir.clone().unwrap_or_else(|| {
        std::env::temp_dir().join(format!("tolldns-audit-load-{}", std::process::id()))
    });
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work)?;

    // 1. The authoritative upstream.
    let upstream_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    let names: Vec<String> = (0..args.names.max(1))
        .map(|i| format!("n{i}.{ZONE}"))
        .collect();
    let mut zone = TestZone::empty(ZONE).with_record(Record::from_rdata(
        Name::from_ascii(format!("www.{ZONE}"))?,
        args.ttl,
        RData::A(A(Ipv4Addr::new(192, 0, 2, 53))),
    ));
    for (i, n) in names.iter().enumerate() {
        let [_, _, hi, lo] = u32::try_from(i)?.to_be_bytes();
        zone = zone.with_record(Record::from_rdata(
            Name::from_ascii(n)?,
            args.ttl,
            RData::A(A(Ipv4Addr::new(10, 53, hi, lo))),
        ));
    }
    let upstream = upstream_rt.block_on(TestServer::start(zone))?;

    // 2. Keys, tokens, the miner's configuration, the miner.
    let n_keys = args.clients.max(1);
    // The last key is the probe auditor of the flood phase.
    let keys: Vec<SigningKey> = (0..=n_keys)
        .map(|_| SigningKey::from_bytes(&rand::random()))
        .collect();
    let (tickets_section, tokens) = if args.tokens > 0 {
        let issuer = IssuerSecretKey::generate(2048).map_err(|e| anyhow!("issuer key: {e:?}"))?;
        let spki = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(issuer.public().spki());
        let tokens = (0..args.tokens)
            .map(|_| issue_token(&issuer))
            .collect::<anyhow::Result<Vec<_>>>()?;
        (
            format!(
                "[tickets]\nudp = \"optional\"\nissuer_name = \"{ISSUER_NAME}\"\n\
                 deployment = \"{DEPLOYMENT}\"\nissuer_keys = [\"{spki}\"]\n"
            ),
            tokens,
        )
    } else {
        (String::new(), Vec::new())
    };
    let ticket_ids: Vec<[u8; 16]> = tokens
        .iter()
        .map(|t| tolldns_tickets::ticket_id(t))
        .collect();
    let auditor_keys = keys
        .iter()
        .map(|k| {
            format!(
                "\"{}\"",
                bs58::encode(k.verifying_key().as_bytes()).into_string()
            )
        })
        .collect::<Vec<_>>()
        .join(", ");
    let config_text = format!(
        r#"data_dir = "{data}"
upstreams = ["{upstream}"]
log_level = "info"

[listen]
udp = "127.0.0.1:0"
tcp = "127.0.0.1:0"
dot = "127.0.0.1:0"
doh = "127.0.0.1:0"

[receipts]
window_secs = {window}
name_key_epoch_secs = {NAME_KEY_EPOCH_SECS}

[api]
listen = "127.0.0.1:0"
auditor_keys = [{auditor_keys}]
{api_extra}

# One source address sends everything: no per-prefix limit, no attack mode.
[edge.admission]
rate_per_prefix = 100000000
burst_per_prefix = 100000000

[edge.attack]
enabled = false

{tickets_section}
"#,
        data = work.join("data").display(),
        upstream = upstream.udp_addr,
        window = args.window_secs,
        api_extra = args.api_extra.replace("\\n", "\n"),
    );
    let config = work.join("config.toml");
    std::fs::write(&config, &config_text)?;

    let mut cmd = match &args.miner_cpus {
        Some(cpus) => {
            let mut c = Command::new("taskset");
            c.arg("-c").arg(cpus).arg(&miner_bin);
            c
        }
        None => Command::new(&miner_bin),
    };
    let mut child = cmd
        .arg("run")
        .arg("--config")
        .arg(&config)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("starting {}", miner_bin.display()))?;
    let lines = collect_lines(&mut child);
    let miner = Miner { child, lines };
    let pid = miner.child.id();
    let api_line = miner
        .wait_for(Duration::from_secs(60), |l| l.starts_with("listening api "))
        .ok_or_else(|| anyhow!("miner did not start:\n{}", miner.output()))?;
    let api: SocketAddr = api_line
        .trim_start_matches("listening api http://")
        .split_whitespace()
        .next()
        .unwrap_or("")
        .parse()?;
    let udp: SocketAddr = miner
        .wait_for(Duration::from_secs(5), |l| l.starts_with("listening udp "))
        .ok_or_else(|| anyhow!("no udp listener"))?
        .trim_start_matches("listening udp ")
        .trim()
        .parse()?;
    let operator_line = miner
        .wait_for(Duration::from_secs(5), |l| l.starts_with("operator "))
        .ok_or_else(|| anyhow!("no operator line"))?;
    let operator: [u8; 32] = bs58::decode(operator_line.split_whitespace().nth(1).unwrap_or(""))
        .into_vec()?
        .try_into()
        .map_err(|_| anyhow!("operator key"))?;

    let stop = Arc::new(AtomicBool::new(false));
    let (samples, sampler) = spawn_sampler(pid, start, Arc::clone(&stop));
    let data = work.join("queries.txt");
    std::fs::write(
        &data,
        names.iter().map(|n| format!("{n} A\n")).collect::<String>(),
    )?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.client_threads.max(1))
        .enable_all()
        .build()?;

    println!(
        "audit_load: miner pid {pid}, udp {udp}, api {api}, work dir {}",
        work.display()
    );
    println!(
        "audit_load: miner config:\n{}",
        config_text.replace(&auditor_keys, "<65 keys>")
    );

    // 3. Warm the cache (one pass over the names at a modest rate), then fill one whole window.
    let warm = spawn_dnsperf(&args, udp, &data, 30, Some(1_000), &["-n", "1"])?
        .join()
        .map_err(|_| anyhow!("dnsperf thread"))??;
    println!(
        "audit_load: cache warm-up: {} of {} queries answered",
        warm.completed, warm.sent
    );
    let wlen = WindowLen::new(args.window_secs).map_err(|e| anyhow!("{e:?}"))?;
    let w_ms = u64::from(args.window_secs) * 1000;
    let window = WindowId::containing(now_ms(), wlen).get() + 1;
    let window_start = window * w_ms;
    println!(
        "audit_load: filling window {window} ({} s from now) for {} s",
        (window_start.saturating_sub(now_ms())) / 1000,
        args.window_secs
    );
    wait_until_ms(window_start + 200);
    let fill_t0 = start.elapsed().as_secs_f64();
    let fill_cpu0 = proc_cpu(&pid.to_string()).map_or(0.0, |c| c.1);
    let fill_secs = u64::from(args.window_secs).saturating_sub(1).max(1);
    let fill = spawn_dnsperf(
        &args,
        udp,
        &data,
        fill_secs,
        (args.fill_qps > 0).then_some(args.fill_qps),
        &[],
    )?;
    let tokens_for_thread = tokens;
    let per_token = args.ticket_queries.max(1);
    let ticket_names = if args.ticket_one_name {
        Vec::new()
    } else {
        names
    };
    let ticketed = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_secs(1));
        ticketed_traffic(udp, &tokens_for_thread, per_token, &ticket_names)
    });
    let fill_dns = fill.join().map_err(|_| anyhow!("dnsperf thread"))??;
    let ticketed = ticketed.join().unwrap_or(0);
    let window_end = window_start + w_ms;
    let signed = {
        let deadline = Instant::now() + Duration::from_secs(180);
        loop {
            if let Some(b) = miner.signed().into_iter().find(|b| b.2 == window) {
                break b;
            }
            if Instant::now() > deadline {
                bail!("window {window} was not signed:\n{}", miner.output());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    let fill_t1 = start.elapsed().as_secs_f64();
    let fill_cpu = proc_cpu(&pid.to_string()).map_or(0.0, |c| c.1) - fill_cpu0;
    let (_, batch, _, leaves) = signed.clone();
    let close_ms = signed.0.saturating_sub(window_end);
    println!(
        "audit_load: window {window} signed {close_ms} ms after its end: {leaves} leaves (dnsperf completed {}, ticketed {ticketed})",
        fill_dns.completed
    );
    let receipt_json = rt
        .block_on(Conn::new(api).get(&format!("/v1/batches/{batch}"), None))
        .map_err(|(e, _)| anyhow!("receipt: {e}"))?;
    let received_ms = now_ms();
    if receipt_json.status != 200 {
        bail!("GET /v1/batches/{batch}: {}", receipt_json.status);
    }
    let receipt = Receipt::from_json(std::str::from_utf8(&receipt_json.body)?)
        .map_err(|e| anyhow!("receipt json: {e:?}"))?;
    let epoch = WindowId(window)
        .start_ms(wlen)
        .map_err(|e| anyhow!("{e:?}"))?
        / 1000
        / NAME_KEY_EPOCH_SECS;
    let fill_after = start.elapsed().as_secs_f64();
    let (repeats, ticketed_leaves, distinct) = receipt.body.v2.as_ref().map_or((0, 0, 0), |v| {
        (
            v.ticketed_repeat_count,
            v.ticketed_leaf_count,
            v.distinct_names(),
        )
    });
    let receipt_verdict = Verifier::new(
        Deployment::new(DeploymentId::local(), wlen),
        &AssumeValid,
        &AssumeValid,
        &AssumeValid,
    )
    .verify(&receipt, received_ms)
    .map_or_else(
        |e| format!("REFUSED: {e} ({})", e.name()),
        |()| "valid".to_owned(),
    );
    if leaves < args.min_leaves {
        eprintln!(
            "audit_load: only {leaves} leaves < --min-leaves {}: raise --window-secs or the fill rate",
            args.min_leaves
        );
    }

    // 4. The phases.
    let target = Arc::new(Target {
        api,
        operator,
        batch: batch.clone(),
        k: args.k,
        tickets: ticket_ids.clone(),
        epoch,
        keys: keys.clone(),
        keep: args.verify,
    });
    let checker = Checker {
        receipt: &receipt,
        received_ms,
        window_secs: args.window_secs,
        k: args.k,
        tickets: KnownTickets(ticket_ids),
        operator,
        keys: &keys,
        epoch,
    };
    let mut reports = Vec::new();
    std::thread::sleep(Duration::from_secs(args.settle_secs));
    for name in &phases {
        let (load, what) = match name.as_str() {
            "baseline" => (Load::None, "dnsperf only".to_owned()),
            "probe" => (
                Load::Probe,
                "1 polite probe auditor (its own key, honouring Retry-After)".to_owned(),
            ),
            "keys64" => (
                Load::Keys(Backoff::RetryAfter),
                format!(
                    "{} audit tasks, one key each (+{} ticket/name-key tasks), honouring Retry-After",
                    args.clients, args.extra_clients
                ),
            ),
            "key1" => (
                Load::OneKey(Backoff::RetryAfter),
                format!(
                    "{} audit tasks sharing one key (+{} ticket/name-key tasks), honouring Retry-After",
                    args.clients, args.extra_clients
                ),
            ),
            "flood1" => (
                Load::OneKey(Backoff::None),
                format!(
                    "{} audit tasks sharing one key (+{}), retrying at once; 1 polite probe auditor with its own key",
                    args.clients, args.extra_clients
                ),
            ),
            _ => (
                Load::Keys(Backoff::None),
                format!(
                    "{} audit tasks, one key each (+{}), retrying at once",
                    args.clients, args.extra_clients
                ),
            ),
        };
        println!(
            "audit_load: phase {name}: {what}, dnsperf -Q {} for {phase_secs} s",
            args.rate
        );
        let signed_before = miner.signed().len();
        let t0 = start.elapsed().as_secs_f64();
        let cpu0 = proc_cpu(&pid.to_string()).map_or(0.0, |c| c.1);
        let self0 = self_cpu();
        let dns = spawn_dnsperf(&args, udp, &data, phase_secs, Some(args.rate), &[])?;
        let deadline = Instant::now() + Duration::from_secs(phase_secs);
        let auditors = rt.block_on(run_auditors(
            Arc::clone(&target),
            args.clients,
            args.extra_clients,
            load,
            deadline,
        ));
        let dns = dns.join().map_err(|_| anyhow!("dnsperf thread"))??;
        let t1 = start.elapsed().as_secs_f64();
        let miner_cpu_s = proc_cpu(&pid.to_string()).map_or(0.0, |c| c.1) - cpu0;
        let self_cpu_s = self_cpu() - self0;
        std::thread::sleep(Duration::from_secs(args.settle_secs));
        let t2 = start.elapsed().as_secs_f64();
        let closes = miner.signed()[signed_before..]
            .iter()
            .map(|(_, id, w, n)| (*w, *n, id.clone()))
            .collect();
        let verified = auditors
            .kept
            .iter()
            .map(|k| checker.check(k).map_err(|e| e.to_string()))
            .collect();
        reports.push(PhaseReport {
            name: name.clone(),
            what,
            t0,
            t1,
            t2,
            dns,
            auditors,
            miner_cpu_s,
            self_cpu_s,
            closes,
            verified,
        });
    }

    // Metrics of interest, then stop the miner.
    let metrics = rt
        .block_on(Conn::new(api).get("/metrics", None))
        .map(|r| String::from_utf8_lossy(&r.body).into_owned())
        .unwrap_or_default();
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(pid.to_string())
        .status();
    let mut miner = miner;
    let stop_deadline = Instant::now() + Duration::from_secs(60);
    while miner.child.try_wait()?.is_none() && Instant::now() < stop_deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    stop.store(true, Ordering::Relaxed);
    let _ = sampler.join();
    let samples = samples.lock().unwrap().clone();

    // 5. The report.
    println!();
    println!("==================== audit_load summary ====================");
    println!(
        "machine: {} CPUs; miner {}; dnsperf {}; auditors {} (runtime threads {})",
        cpus,
        args.miner_cpus
            .as_deref()
            .map_or("unpinned".to_owned(), |c| format!("pinned to CPU {c}")),
        args.dnsperf_cpus
            .as_deref()
            .map_or("unpinned".to_owned(), |c| format!("pinned to CPU {c}")),
        args.client_cpus
            .as_deref()
            .map_or("unpinned".to_owned(), |c| format!("pinned to CPU {c}")),
        args.client_threads
    );
    println!(
        "api limits: defaults unless set here: [{}]; max_audit_k 1024",
        args.api_extra.replace("\\n", "; ")
    );
    println!(
        "window: {} s, window id {window}, batch {batch}\n  leaves {leaves} (v{}), dnsperf completed {} + ticketed queries {ticketed}; signed {close_ms} ms after the window end",
        args.window_secs,
        receipt.body.version(),
        fill_dns.completed,
    );
    println!(
        "  receipt: {ticketed_leaves} ticketed leaves, {repeats} of them repeats ({:.1} %), ~{distinct} distinct ticketed names (sketch); Verifier (v2, local deployment, {} s windows): {receipt_verdict}",
        100.0 * repeats as f64 / ticketed_leaves.max(1) as f64,
        args.window_secs
    );
    println!(
        "  fill dnsperf (-Q {}, -c {} -q {}): sent {} completed {} lost {} ({:.3} % answered), {:.0} q/s, avg latency {:.2} ms, rcodes {}",
        if args.fill_qps == 0 {
            "unlimited".to_owned()
        } else {
            args.fill_qps.to_string()
        },
        args.dnsperf_clients,
        args.dnsperf_outstanding,
        fill_dns.sent,
        fill_dns.completed,
        fill_dns.lost,
        fill_dns.answered_pct(),
        fill_dns.qps,
        fill_dns.avg_latency_ms,
        fill_dns.rcodes
    );
    let (b, p, a, h) = rss_between(&samples, fill_t0, fill_t1, fill_after);
    println!(
        "  fill RSS: before {:.1} MiB, peak {:.1} MiB (incl. closing and journaling the window), after {:.1} MiB, VmHWM {:.1} MiB; miner CPU {:.1} s over {:.0} s; dnsperf CPU {:.1} s",
        mib(b),
        mib(p),
        mib(a),
        mib(h),
        fill_cpu,
        fill_t1 - fill_t0,
        fill_dns.cpu_s
    );
    println!(
        "  in-memory sizes: Leaf {} B; a 256-leaf chunk of an audit ~ {} KiB decoded",
        size_of::<Leaf>(),
        (256 * size_of::<Leaf>() + 511 * 32) / 1024
    );
    let mut audit_peak = 0u64;
    let mut all_ok = true;
    for r in &reports {
        println!("--- phase {} ({:.0} s): {}", r.name, r.t1 - r.t0, r.what);
        println!(
            "  dnsperf -Q {}: sent {} ({:.1} % of the target {}) completed {} lost {} => {:.3} % answered; {:.0} q/s; latency avg {:.2} ms max {:.1} ms; rcodes {}",
            args.rate,
            r.dns.sent,
            100.0 * r.dns.sent as f64 / (f64::from(args.rate) * phase_secs as f64),
            u64::from(args.rate) * phase_secs,
            r.dns.completed,
            r.dns.lost,
            r.dns.answered_pct(),
            r.dns.qps,
            r.dns.avg_latency_ms,
            r.dns.max_latency_ms,
            r.dns.rcodes
        );
        if !r.dns.series.is_empty() {
            let fives: Vec<String> = r
                .dns
                .series
                .chunks(5)
                .map(|c| format!("{:.0}", c.iter().sum::<f64>() / c.len() as f64))
                .collect();
            println!("  answered q/s, 5 s averages: {}", fives.join(" "));
        }
        let (b, p, a, h) = rss_between(&samples, r.t0, r.t1, r.t2);
        if r.name != "baseline" {
            audit_peak = audit_peak.max(p);
        }
        println!(
            "  miner RSS: before {:.1} MiB, peak {:.1} MiB, after {:.1} MiB (+{} s), VmHWM {:.1} MiB",
            mib(b),
            mib(p),
            mib(a),
            args.settle_secs,
            mib(h)
        );
        println!(
            "  CPU: miner {:.1} s, auditors+upstream {:.1} s, dnsperf {:.1} s (of {:.0} s x {} CPUs)",
            r.miner_cpu_s,
            r.self_cpu_s,
            r.dns.cpu_s,
            r.t1 - r.t0,
            cpus
        );
        for (w, n, id) in &r.closes {
            println!(
                "  window {w} closed and signed in this phase: {n} leaves ({})",
                &id[..16]
            );
        }
        for (endpoint, s) in &r.auditors.stats {
            let total: u64 = s.by_status.values().sum();
            let statuses = s
                .by_status
                .iter()
                .map(|(k, v)| {
                    if *k == 0 {
                        format!("error/timeout {v}")
                    } else {
                        format!("{k}: {v}")
                    }
                })
                .collect::<Vec<_>>()
                .join(", ");
            let mut ok = s.ok_ms.clone();
            let mut refused = s.refused_ms.clone();
            println!(
                "  {}: {total} requests ({:.1}/s) [{statuses}]; 200 p50 {:.1} ms p99 {:.1} ms max {:.1} ms ({:.1} KiB avg); refused p50 {:.2} ms p99 {:.2} ms",
                endpoint.name(),
                total as f64 / (r.t1 - r.t0),
                pct(&mut ok, 50.0),
                pct(&mut ok, 99.0),
                pct(&mut ok, 100.0),
                if s.ok_ms.is_empty() {
                    0.0
                } else {
                    s.ok_bytes as f64 / s.ok_ms.len() as f64 / 1024.0
                },
                pct(&mut refused, 50.0),
                pct(&mut refused, 99.0),
            );
            let spans = s
                .span
                .iter()
                .map(|(k, (a, b))| format!("{k} at {a:.1}-{b:.1} s"))
                .collect::<Vec<_>>()
                .join(", ");
            println!("    answered: {spans}");
            for o in &s.other {
                println!("    other: {}", o.chars().take(200).collect::<String>());
            }
        }
        let good = r.verified.iter().filter(|v| v.is_ok()).count();
        if !r.verified.is_empty() {
            println!(
                "  verified with tolldns_receipts: {good}/{} answers valid",
                r.verified.len()
            );
            let mut shown = std::collections::BTreeSet::new();
            for v in &r.verified {
                let line = match v {
                    Ok(s) => format!("ok: {s}"),
                    Err(e) => format!("FAILED: {e}"),
                };
                if shown.insert(line.clone()) {
                    println!("    {line}");
                }
            }
            all_ok &= good == r.verified.len();
        }
    }
    let overall_hwm = samples.iter().map(|s| s.hwm_kb).max().unwrap_or(0);
    println!("---");
    let audited: Vec<&PhaseReport> = reports.iter().filter(|r| r.name != "baseline").collect();
    if audited.is_empty() {
        println!("no audit phase ran");
    } else {
        let min_answered = audited
            .iter()
            .map(|r| r.dns.answered_pct())
            .fold(f64::INFINITY, f64::min);
        println!(
            "DNS answered while auditors ran: min {min_answered:.3} % of the queries sent over the audit phases ({})",
            if min_answered >= 99.0 {
                ">= 99 %: holds"
            } else {
                "< 99 %: DOES NOT HOLD"
            }
        );
        let min_target = audited
            .iter()
            .map(|r| 100.0 * r.dns.completed as f64 / (f64::from(args.rate) * phase_secs as f64))
            .fold(f64::INFINITY, f64::min);
        println!(
            "DNS answered of the target load (-Q x seconds) while auditors ran: min {min_target:.3} %{}",
            if min_target < 99.0 {
                " (dnsperf sent less than -Q: with -q outstanding queries it cannot send more than -q / latency per second)"
            } else {
                ""
            }
        );
        println!(
            "RSS bound observed while auditors ran: {:.1} MiB (max VmRSS in the audit phases)",
            mib(audit_peak)
        );
    }
    println!("VmHWM over the whole run: {:.1} MiB", mib(overall_hwm));
    println!(
        "answers verified: {}",
        if all_ok { "all valid" } else { "SOME FAILED" }
    );
    println!("metrics at the end:");
    for l in metrics.lines().filter(|l| {
        !l.starts_with('#')
            && [
                "admission",
                "leaves_dropped",
                "leaves_lost",
                "api_requests",
                "journal_leaf_bytes",
                "journal_file_bytes",
                "batches_signed",
            ]
            .iter()
            .any(|p| l.contains(p))
    }) {
        println!("  {l}");
    }
    let errors = miner.errors();
    if !errors.is_empty() {
        println!("miner warnings/errors ({}):", errors.len());
        for e in errors.iter().take(10) {
            println!("  {e}");
        }
    }
    drop(miner);
    drop(upstream);
    if !args.keep {
        let _ = std::fs::remove_dir_all(&work);
    }
    if leaves < args.min_leaves {
        bail!(
            "the window had {leaves} leaves, fewer than {}",
            args.min_leaves
        );
    }
    if !all_ok {
        bail!("some answers did not verify");
    }
    Ok(())
}
