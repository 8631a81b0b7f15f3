//! The main workspace's binaries as child processes: where they are, starting them with their
//! output collected, waiting for a line, killing them.

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The directory of the main workspace's binaries: `$TOLLDNS_BIN_DIR`, else
/// `<repository>/target/debug`. Panics, naming `scripts/test-all`, if `name` is missing.
pub fn bin(name: &str) -> PathBuf {
    let dir = std::env::var_os("TOLLDNS_BIN_DIR").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/debug"),
        PathBuf::from,
    );
    let path = dir.join(name);
    assert!(
        path.is_file(),
        "{} is missing: build the main workspace's binaries first (`scripts/test-all` does, \
         or `cargo build --bins` at the repository root), or point TOLLDNS_BIN_DIR at them",
        path.display()
    );
    path
}

/// Runs a command to completion; panics with its output unless it succeeds.
pub fn run(cmd: &mut Command) -> String {
    let out = cmd.output().expect("spawn");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{cmd:?} failed: {text}");
    text
}

/// Runs a command to completion: (success, stdout, stderr).
pub fn try_run(cmd: &mut Command) -> (bool, String, String) {
    let out = cmd.output().expect("spawn");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A child process whose stdout and stderr lines are collected.
pub struct Proc {
    pub name: String,
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
}

impl Proc {
    /// Spawns `cmd` with piped output.
    pub fn spawn(name: &str, cmd: &mut Command) -> Self {
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {name}: {e}"));
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
                    lines.lock().expect("lines").push(line);
                }
            });
        }
        Self {
            name: name.to_string(),
            child,
            lines,
        }
    }

    /// Everything printed so far.
    pub fn output(&self) -> String {
        self.lines.lock().expect("lines").join("\n")
    }

    /// The lines printed so far.
    pub fn lines(&self) -> Vec<String> {
        self.lines.lock().expect("lines").clone()
    }

    /// The first line for which `f` holds, waiting until `timeout`; panics with the output
    /// (or when the process exits) otherwise.
    pub async fn wait_line<T>(&mut self, timeout: Duration, f: impl Fn(&str) -> Option<T>) -> T {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(v) = self.lines.lock().expect("lines").iter().find_map(|l| f(l)) {
                return v;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                // Let the reader threads drain the pipes.
                tokio::time::sleep(Duration::from_millis(100)).await;
                panic!("{} exited ({status}):\n{}", self.name, self.output());
            }
            assert!(
                Instant::now() < deadline,
                "{}: timed out waiting for a line:\n{}",
                self.name,
                self.output()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The text after `prefix` on the first line that starts with it.
    pub async fn wait_prefix(&mut self, timeout: Duration, prefix: &str) -> String {
        self.wait_line(timeout, |l| l.strip_prefix(prefix).map(str::to_string))
            .await
    }

    /// Waits for a line containing `needle`.
    pub async fn wait_prefix_containing(&mut self, timeout: Duration, needle: &str) {
        self.wait_line(timeout, |l| l.contains(needle).then_some(()))
            .await;
    }

    /// Sends a signal (`HUP`, `TERM`, …) with `kill`.
    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.child.id().to_string())
            .status()
            .expect("kill");
        assert!(status.success(), "kill -{name} {}", self.name);
    }

    /// SIGKILL, and reap.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill9();
        if std::thread::panicking() {
            // Keep the output of a failed run.
            let path = std::env::temp_dir().join(format!(
                "tolldns-e2e-{}-{}.log",
                std::process::id(),
                self.name
            ));
            if std::fs::write(&path, self.output()).is_ok() {
                eprintln!("{}: output in {}", self.name, path.display());
            }
        }
    }
}
