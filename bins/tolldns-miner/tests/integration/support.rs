//! Test support: a miner child process, a loopback upstream, raw DNS and HTTP clients.

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::{Ipv4Addr, SocketAddr, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tolldns_testkit::{TestServer, TestZone};

pub(crate) const MINER: &str = env!("CARGO_BIN_EXE_tolldns-miner");

/// A fresh directory under the system temp dir.
pub(crate) fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("tolldns-miner-it-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Whether a tool exists; in CI (`CI` set) a missing tool fails the test.
pub(crate) fn tool(path: &str) -> bool {
    if Path::new(path).exists() {
        return true;
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "{path} is required when CI is set"
    );
    eprintln!("NOTICE: {path} not found; skipping the part of this test that needs it");
    false
}

/// An authoritative upstream for `example.test` on loopback, with its runtime.
pub(crate) struct Upstream {
    pub(crate) server: TestServer,
    _runtime: tokio::runtime::Runtime,
}

pub(crate) const ANSWER: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 53);

impl Upstream {
    pub(crate) fn start() -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let zone = TestZone::empty("example.test").with_a("www.example.test", ANSWER);
        let server = runtime.block_on(TestServer::start(zone)).unwrap();
        Self {
            server,
            _runtime: runtime,
        }
    }

    pub(crate) fn addr(&self) -> SocketAddr {
        self.server.udp_addr
    }
}

/// A miner configuration for tests: loopback, ephemeral ports, 2 s windows.
pub(crate) fn write_config(dir: &Path, upstream: SocketAddr, extra: &str) -> PathBuf {
    let path = dir.join("config.toml");
    // Every test configuration authorizes the test auditor, unless it names its own.
    let auditor_line = format!(
        "auditor_keys = [\"{}\"]\naudit_rate_per_sec = 1000\naudit_burst = 1000\n",
        bs58::encode(auditor().verifying_key().as_bytes()).into_string()
    );
    let extra = if extra.contains("auditor_keys") {
        extra.to_owned()
    } else if extra.contains("[api]\n") {
        extra.replacen("[api]\n", &format!("[api]\n{auditor_line}"), 1)
    } else {
        format!("{extra}\n[api]\n{auditor_line}")
    };
    let text = format!(
        r#"data_dir = "{data}"
upstreams = ["{upstream}"]
log_level = "info"

[listen]
udp = "127.0.0.1:0"
tcp = "127.0.0.1:0"
dot = "127.0.0.1:0"
doh = "127.0.0.1:0"

[receipts]
window_secs = 2
close_grace_ms = 300
name_key_epoch_secs = 60

[journal]
checkpoint_interval_ms = 100

[edge.attack]
enabled = false

{extra}
"#,
        data = dir.join("data").display(),
    );
    std::fs::write(&path, text).unwrap();
    path
}

/// Collect a child's stdout and stderr lines (piped) as they come.
pub(crate) fn collect_lines(child: &mut Child) -> Arc<Mutex<Vec<String>>> {
    let lines = Arc::new(Mutex::new(Vec::new()));
    let out = child.stdout.take().expect("stdout is piped");
    let err = child.stderr.take().expect("stderr is piped");
    for reader in [
        Box::new(out) as Box<dyn std::io::Read + Send>,
        Box::new(err),
    ] {
        let lines = Arc::clone(&lines);
        std::thread::spawn(move || {
            for line in BufReader::new(reader).lines().map_while(Result::ok) {
                lines.lock().unwrap().push(line);
            }
        });
    }
    lines
}

/// A miner child process whose output lines are collected.
pub(crate) struct Miner {
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
}

impl Miner {
    pub(crate) fn spawn(config: &Path) -> Self {
        Self::spawn_until(config, |l| l.starts_with("listening api "))
    }

    /// Starts the miner and waits (30 s at most) for the first output line that `ready`
    /// accepts.
    pub(crate) fn spawn_until(config: &Path, ready: impl Fn(&str) -> bool) -> Self {
        let mut child = Command::new(MINER)
            .arg("run")
            .arg("--config")
            .arg(config)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let lines = collect_lines(&mut child);
        let m = Self { child, lines };
        m.wait_for(Duration::from_secs(30), ready)
            .unwrap_or_else(|| panic!("miner did not start:\n{}", m.output()));
        m
    }

    pub(crate) fn output(&self) -> String {
        self.lines.lock().unwrap().join("\n")
    }

    pub(crate) fn wait_for(&self, timeout: Duration, f: impl Fn(&str) -> bool) -> Option<String> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Some(l) = self.lines.lock().unwrap().iter().find(|l| f(l)) {
                return Some(l.clone());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    /// The address printed for a transport (`udp`, `tcp`, `dot`, `doh`).
    pub(crate) fn addr(&self, transport: &str) -> SocketAddr {
        let prefix = format!("listening {transport} ");
        let line = self
            .wait_for(Duration::from_secs(1), |l| l.starts_with(&prefix))
            .unwrap();
        line[prefix.len()..].parse().unwrap()
    }

    /// The miner's receipt-signing key, as printed at start.
    pub(crate) fn operator(&self) -> [u8; 32] {
        let line = self
            .wait_for(Duration::from_secs(1), |l| l.starts_with("operator "))
            .unwrap();
        let b58 = line.split_whitespace().nth(1).unwrap();
        bs58::decode(b58).into_vec().unwrap().try_into().unwrap()
    }

    /// An audit-API request signed by the test auditor ([`auditor`]).
    pub(crate) fn audited(&self, path: &str) -> (u16, String) {
        http_signed(self.api(), &auditor(), &self.operator(), "GET", path)
    }

    pub(crate) fn api(&self) -> SocketAddr {
        let line = self
            .wait_for(Duration::from_secs(1), |l| l.starts_with("listening api "))
            .unwrap();
        let rest = line.trim_start_matches("listening api http://");
        rest.split_whitespace().next().unwrap().parse().unwrap()
    }

    /// Batches reported as signed: (id, window, leaves).
    pub(crate) fn signed(&self) -> Vec<(String, u64, u64)> {
        self.lines
            .lock()
            .unwrap()
            .iter()
            .filter(|l| l.contains("batch signed "))
            .map(|l| {
                let field = |name: &str| {
                    l.split_whitespace()
                        .find_map(|w| w.strip_prefix(name))
                        .unwrap()
                        .to_owned()
                };
                (
                    field("id="),
                    field("window=").parse().unwrap(),
                    field("leaves=").parse().unwrap(),
                )
            })
            .collect()
    }

    pub(crate) fn wait_signed(
        &self,
        timeout: Duration,
        f: impl Fn(&[(String, u64, u64)]) -> bool,
    ) -> bool {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if f(&self.signed()) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    }

    pub(crate) fn kill9(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    pub(crate) fn terminate(&mut self) -> std::process::ExitStatus {
        let status = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status()
            .unwrap();
        assert!(status.success());
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                return s;
            }
            assert!(
                Instant::now() < deadline,
                "miner did not stop:\n{}",
                self.output()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub(crate) fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.child.id().to_string())
            .status()
            .unwrap();
        assert!(status.success());
    }
}

impl Drop for Miner {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A DNS query for `name`, type A, with `id`.
pub(crate) fn query(id: u16, name: &str) -> Vec<u8> {
    let mut q = Vec::with_capacity(64);
    q.extend_from_slice(&id.to_be_bytes());
    q.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
    for label in name.split('.').filter(|l| !l.is_empty()) {
        q.push(u8::try_from(label.len()).unwrap());
        q.extend_from_slice(label.as_bytes());
    }
    q.extend_from_slice(&[0, 0, 1, 0, 1]);
    q
}

/// Sends one UDP query and returns whether an answer with the same id came back.
pub(crate) fn udp_ask(socket: &UdpSocket, server: SocketAddr, id: u16, name: &str) -> bool {
    if socket.send_to(&query(id, name), server).is_err() {
        return false;
    }
    let mut buf = [0u8; 1500];
    match socket.recv_from(&mut buf) {
        Ok((n, _)) => n >= 12 && buf[..2] == id.to_be_bytes(),
        Err(_) => false,
    }
}

/// The auditor every test configuration authorizes (`api.auditor_keys`).
pub(crate) fn auditor() -> ed25519_dalek::SigningKey {
    ed25519_dalek::SigningKey::from_bytes(&[42; 32])
}

/// An HTTP/1.1 exchange with an `Authorization: TollDNS-Auditor` header by `auditor` for the
/// miner whose key is `operator`: (status, body).
pub(crate) fn http_signed(
    addr: SocketAddr,
    auditor: &ed25519_dalek::SigningKey,
    operator: &[u8; 32],
    method: &str,
    path: &str,
) -> (u16, String) {
    let nonce: [u8; 16] = rand::random();
    let header = tolldns_service::auditor::authorization(
        auditor,
        operator,
        tolldns_miner::now_ms(),
        &nonce,
        method,
        path,
    );
    http_with(addr, method, path, None, &[("Authorization", &header)])
}

/// A minimal HTTP/1.1 exchange: (status, body).
pub(crate) fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    body: Option<&str>,
) -> (u16, String) {
    http_with(addr, method, path, body, &[])
}

/// [`http`] with extra request headers.
pub(crate) fn http_with(
    addr: SocketAddr,
    method: &str,
    path: &str,
    body: Option<&str>,
    headers: &[(&str, &str)],
) -> (u16, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let body = body.unwrap_or("");
    let extra: String = headers
        .iter()
        .map(|(k, v)| format!("{k}: {v}\r\n"))
        .collect();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n{extra}Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).unwrap();
    let (head, body) = raw.split_once("\r\n\r\n").unwrap();
    let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    (status, body.to_owned())
}

/// The value of an unlabelled sample in Prometheus text.
pub(crate) fn metric(text: &str, name: &str) -> Option<u64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|l| {
            let (n, v) = l.split_once(' ')?;
            (n == name).then(|| v.trim().parse::<f64>().ok())?
        })
        .map(|v| v as u64)
}
