//! Test support: an issuer child process, the CLI, a raw HTTP/1.1 client, a token client.

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ed25519_dalek::SigningKey;
use tolldns_tickets::{
    IssuerDirectory, IssuerPublicKey, REQUEST_MEDIA_TYPE, TokenChallenge, client, purchase_header,
};

pub(crate) const ISSUER: &str = env!("CARGO_BIN_EXE_tolldns-issuer");

/// A fresh directory under the system temp dir.
pub(crate) fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("tolldns-issuer-it-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Runs a CLI command in `cwd`.
pub(crate) fn cli(args: &[&str], cwd: &Path) -> Output {
    Command::new(ISSUER)
        .args(args)
        .current_dir(cwd)
        .output()
        .unwrap()
}

/// Runs a CLI command that must succeed; its stdout.
pub(crate) fn cli_ok(args: &[&str], cwd: &Path) -> String {
    let out = cli(args, cwd);
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The base58 wallet public key of `wallet`.
pub(crate) fn buyer(wallet: &SigningKey) -> String {
    bs58::encode(wallet.verifying_key().as_bytes()).into_string()
}

/// An issuer child process whose output lines are collected.
pub(crate) struct Issuer {
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
    pub(crate) addr: SocketAddr,
}

impl Issuer {
    /// `tolldns-issuer run --listen 127.0.0.1:0 <extra>` in `cwd`, once it serves.
    pub(crate) fn spawn(cwd: &Path, extra: &[&str]) -> Self {
        let mut child = Command::new(ISSUER)
            .arg("run")
            .args(["--listen", "127.0.0.1:0"])
            .args(extra)
            .current_dir(cwd)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let lines = Arc::new(Mutex::new(Vec::new()));
        let out = child.stdout.take().unwrap();
        let err = child.stderr.take().unwrap();
        for reader in [
            Box::new(out) as Box<dyn std::io::Read + Send>,
            Box::new(err),
        ] {
            let lines = Arc::clone(&lines);
            std::thread::spawn(move || {
                for line in BufReader::new(reader).lines() {
                    let Ok(line) = line else { break };
                    lines.lock().unwrap().push(line);
                }
            });
        }
        let mut issuer = Self {
            child,
            lines,
            addr: SocketAddr::from(([0, 0, 0, 0], 0)),
        };
        let line = issuer
            .wait_for(Duration::from_secs(60), |l| l.starts_with("listening "))
            .unwrap_or_else(|| panic!("issuer did not start:\n{}", issuer.output()));
        let url = line.trim_start_matches("listening ");
        issuer.addr = url.split("://").nth(1).unwrap().parse().unwrap();
        issuer
    }

    pub(crate) fn output(&self) -> String {
        self.lines.lock().unwrap().join("\n")
    }

    /// The first output line satisfying `f`, waiting up to `timeout` for it.
    pub(crate) fn wait_for(&self, timeout: Duration, f: impl Fn(&str) -> bool) -> Option<String> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(l) = self.lines.lock().unwrap().iter().find(|l| f(l)) {
                return Some(l.clone());
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The value after `prefix` on the banner line starting with it.
    pub(crate) fn banner(&self, prefix: &str) -> String {
        self.wait_for(Duration::ZERO, |l| l.starts_with(prefix))
            .unwrap_or_else(|| panic!("no `{prefix}` line:\n{}", self.output()))[prefix.len()..]
            .to_owned()
    }

    pub(crate) fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.child.id().to_string())
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// SIGTERM, then the exit status.
    pub(crate) fn terminate(&mut self) -> ExitStatus {
        self.signal("TERM");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                return s;
            }
            assert!(
                Instant::now() < deadline,
                "issuer did not stop:\n{}",
                self.output()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// GET the directory.
    pub(crate) fn directory(&self) -> IssuerDirectory {
        let r = http(self.addr, "GET", tolldns_tickets::DIRECTORY_PATH, &[], b"");
        assert_eq!(r.status, 200, "{}", r.text());
        IssuerDirectory::from_json(&r.body).unwrap()
    }

    /// Waits up to `timeout` for the sample `name` of `/metrics` to satisfy `f`; its value.
    pub(crate) fn wait_metric(
        &self,
        name: &str,
        timeout: Duration,
        f: impl Fn(u64) -> bool,
    ) -> u64 {
        let deadline = Instant::now() + timeout;
        loop {
            let v = self.metric(name);
            if let Some(v) = v.filter(|v| f(*v)) {
                return v;
            }
            assert!(
                Instant::now() < deadline,
                "{name} is {v:?} after {timeout:?}:\n{}",
                self.output()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The unlabelled sample `name` (or `name{labels}`) of `/metrics`.
    pub(crate) fn metric(&self, name: &str) -> Option<u64> {
        let text = http(self.addr, "GET", "/metrics", &[], b"").text();
        text.lines().filter(|l| !l.starts_with('#')).find_map(|l| {
            let (n, v) = l.rsplit_once(' ')?;
            (n == name).then(|| v.trim().parse::<u64>().ok())?
        })
    }
}

impl Drop for Issuer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An HTTP response.
#[derive(Debug)]
pub(crate) struct HttpResponse {
    pub(crate) status: u16,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: Vec<u8>,
}

impl HttpResponse {
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub(crate) fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Parses a whole `Connection: close` HTTP/1.1 response.
pub(crate) fn parse_response(raw: &[u8]) -> HttpResponse {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no response head in {:?}", String::from_utf8_lossy(raw)));
    let head = std::str::from_utf8(&raw[..split]).unwrap();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .unwrap()
        .split_whitespace()
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect();
    HttpResponse {
        status,
        headers,
        body: raw[split + 4..].to_vec(),
    }
}

/// The request bytes of a minimal HTTP/1.1 exchange (`Connection: close`).
pub(crate) fn request_bytes(
    host: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Vec<u8> {
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n");
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    if !body.is_empty() || method == "POST" {
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    head.push_str("\r\n");
    let mut out = head.into_bytes();
    out.extend_from_slice(body);
    out
}

/// One HTTP/1.1 exchange over a fresh connection.
pub(crate) fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> HttpResponse {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    s.write_all(&request_bytes(
        &addr.to_string(),
        method,
        path,
        headers,
        body,
    ))
    .unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    parse_response(&raw)
}

/// The challenge tokens in these tests are bound to.
pub(crate) fn challenge() -> TokenChallenge {
    TokenChallenge::deployment("issuer.test", "tolldns-issuer-it")
}

/// A token request for `key` and its purchase header signed by `wallet`; the pending token.
pub(crate) fn token_request(
    key: &IssuerPublicKey,
    wallet: &SigningKey,
) -> (Vec<u8>, String, client::PendingToken) {
    let (request, pending) = client::request(key, &challenge()).unwrap();
    let body = request.to_bytes();
    let purchase = purchase_header(wallet, &body);
    (body, purchase, pending)
}

/// POSTs a token request.
pub(crate) fn post_request(addr: SocketAddr, body: &[u8], purchase: Option<&str>) -> HttpResponse {
    let mut headers = vec![("Content-Type", REQUEST_MEDIA_TYPE)];
    if let Some(p) = purchase {
        headers.push((tolldns_tickets::PURCHASE_HEADER, p));
    }
    http(addr, "POST", tolldns_tickets::ISSUE_PATH, &headers, body)
}
