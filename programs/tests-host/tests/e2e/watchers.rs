//! `tolldns-watcher` processes: configuration, start, kill -9 and restart on the same data and
//! port, and their HTTP API.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;
use solana_keypair::Keypair;

use crate::procs::{bin, Proc};

/// One watcher.
pub struct Watcher {
    pub proc: Proc,
    pub index: usize,
    pub config: PathBuf,
    pub api: SocketAddr,
    /// The output of the process before its restart.
    pub earlier: String,
}

impl Drop for Watcher {
    fn drop(&mut self) {
        if std::thread::panicking() && !self.earlier.is_empty() {
            let path = std::env::temp_dir().join(format!(
                "tolldns-e2e-{}-watcher{}-before-restart.log",
                std::process::id(),
                self.index
            ));
            if std::fs::write(&path, &self.earlier).is_ok() {
                eprintln!(
                    "watcher{} before its restart: {}",
                    self.index,
                    path.display()
                );
            }
        }
    }
}

/// What every watcher's configuration shares.
pub struct WatcherSetup<'a> {
    pub rpc: &'a str,
    pub upstream: SocketAddr,
    pub probe_names: &'a [&'a str],
    pub issuer: SocketAddr,
    pub issuer_name: &'a str,
    pub deployment: &'a str,
    pub token_key: &'a str,
    /// PEM bundle of the miners' certificates (DoT and DoH probes).
    pub ca_file: &'a Path,
    pub window_secs: u32,
}

fn config_text(s: &WatcherSetup<'_>, dir: &Path, key_file: &Path, listen: &str) -> String {
    let names = s
        .probe_names
        .iter()
        .map(|n| format!("\"{n}\""))
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        r#"data_dir = "{data}"
log_level = "info"

[identity]
key_file = "{key}"

[chain]
rpc_url = "{rpc}"
slot_poll_ms = 100
registry_refresh_secs = 1

[deployment]
window_secs = {window}

[audit]
enabled = true
k = 2
interval_ms = 200
seed_delay_slots = 2

[probe]
enabled = true
interval_secs = 1
upstreams = ["{upstream}"]
names = [{names}]
issuer_url = "http://{issuer}"
wallet_file = "{key}"
ca_file = "{ca}"
timeout_ms = 3000

[tickets]
issuer_name = "{issuer_name}"
deployment = "{deployment}"
issuer_keys = ["{token_key}"]

[settle]
enabled = true
report_after_slots = 100
finalize = true
interval_ms = 200

[api]
listen = "{listen}"

[metrics]
listen = "127.0.0.1:0"
"#,
        data = dir.join("data").display(),
        key = key_file.display(),
        rpc = s.rpc,
        window = s.window_secs,
        upstream = s.upstream,
        issuer = s.issuer,
        ca = s.ca_file.display(),
        issuer_name = s.issuer_name,
        deployment = s.deployment,
        token_key = s.token_key,
    )
}

impl Watcher {
    /// Writes the configuration (watcher key `key`) and starts the watcher.
    pub async fn start(root: &Path, index: usize, key: &Keypair, setup: &WatcherSetup<'_>) -> Self {
        let dir = root.join(format!("watcher{index}"));
        std::fs::create_dir_all(&dir).unwrap();
        let key_file = dir.join("watcher.json");
        crate::write_keypair(&key_file, key);
        let config = dir.join("config.toml");
        std::fs::write(&config, config_text(setup, &dir, &key_file, "127.0.0.1:0")).unwrap();
        let mut w = Self {
            proc: Self::spawn(index, &config),
            index,
            config,
            api: SocketAddr::from(([127, 0, 0, 1], 0)),
            earlier: String::new(),
        };
        w.api = w.wait_api().await;
        // Restarts keep the port the miners deliver to.
        let text = std::fs::read_to_string(&w.config).unwrap();
        std::fs::write(
            &w.config,
            text.replace(
                "[api]\nlisten = \"127.0.0.1:0\"",
                &format!("[api]\nlisten = \"{}\"", w.api),
            ),
        )
        .unwrap();
        w
    }

    fn spawn(index: usize, config: &Path) -> Proc {
        Proc::spawn(
            &format!("watcher{index}"),
            Command::new(bin("tolldns-watcher"))
                .args(["run", "--config"])
                .arg(config),
        )
    }

    async fn wait_api(&mut self) -> SocketAddr {
        let rest = self
            .proc
            .wait_prefix(Duration::from_secs(60), "listening api http://")
            .await;
        rest.split_whitespace().next().unwrap().parse().unwrap()
    }

    /// The URL miners deliver receipts to.
    pub fn receipts_url(&self) -> String {
        format!("http://{}/v1/receipts", self.api)
    }

    /// SIGKILL, then a restart on the same configuration, data and port.
    pub async fn kill9_and_restart(&mut self) {
        self.proc.kill9();
        self.earlier = self.proc.output();
        self.proc = Self::spawn(self.index, &self.config);
        let api = self.wait_api().await;
        assert_eq!(api, self.api, "restarted on its port");
    }

    /// `GET path` on the API: (status, JSON body or Null).
    pub async fn get(&self, path: &str) -> (u16, Value) {
        let (status, body) = crate::http_get(self.api, path).await;
        (status, serde_json::from_str(&body).unwrap_or(Value::Null))
    }

    /// `GET path` until it answers 200 (deadline `timeout`).
    pub async fn get_ok(&self, path: &str, timeout: Duration) -> Value {
        let deadline = Instant::now() + timeout;
        loop {
            let (status, v) = self.get(path).await;
            if status == 200 {
                return v;
            }
            assert!(
                Instant::now() < deadline,
                "watcher{} {path}: {status} {v}\n{}",
                self.index,
                self.proc.output()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// A published object.
    pub async fn object(&self, hash: &str) -> Value {
        let (status, v) = self.get(&format!("/v1/objects/{hash}")).await;
        assert_eq!(status, 200, "object {hash}: {v}");
        v
    }

    /// `POST /v1/receipts` of a receipt's JSON form: (status, JSON body).
    pub async fn post_receipt(&self, json: &str, batch_id: &str) -> (u16, Value) {
        let (status, body) = crate::http_post(
            self.api,
            "/v1/receipts",
            json,
            &[("Idempotency-Key", batch_id)],
        )
        .await;
        (status, serde_json::from_str(&body).unwrap_or(Value::Null))
    }
}
