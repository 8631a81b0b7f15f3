//! The `tolldns-watcher` binary: `init`, config errors, `run` on defaults (but for ephemeral
//! ports) until SIGTERM, `key`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead as _, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_tolldns-watcher");

fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("tolldns-watcher-cli-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn init_writes_the_defaults_once() {
    let dir = temp_dir("init");
    let path = dir.join("c.toml");
    let out = Command::new(BIN)
        .args(["init", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let text = std::fs::read_to_string(&path).unwrap();
    for section in [
        "[store]",
        "[chain]",
        "[deployment]",
        "[audit]",
        "[probe]",
        "[settle]",
        "[api]",
        "[metrics]",
    ] {
        assert!(text.contains(section), "{section} missing");
    }
    let again = Command::new(BIN)
        .args(["init", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("--force"));
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn config_errors_name_the_key() {
    let dir = temp_dir("bad");
    let path = dir.join("c.toml");
    for (text, expected) in [
        ("[store]\nuri = \"x\"\n", "key `store.uri`"),
        ("[store]\nurl = \"mysql://x\"\n", "store.url"),
        ("[chain]\ncommitment = \"maybe\"\n", "chain.commitment"),
    ] {
        std::fs::write(&path, text).unwrap();
        let out = Command::new(BIN)
            .args(["run", "--config"])
            .arg(&path)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{text}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.starts_with("error: ") && err.contains(expected),
            "{err}"
        );
    }
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn runs_on_defaults_prints_endpoints_and_stops_on_sigterm() {
    let dir = temp_dir("run");
    let path = dir.join("c.toml");
    std::fs::write(
        &path,
        format!(
            "data_dir = \"{}\"\n[api]\nlisten = \"127.0.0.1:0\"\n[metrics]\nlisten = \"127.0.0.1:0\"\n",
            dir.join("data").display()
        ),
    )
    .unwrap();
    let mut child = Command::new(BIN)
        .args(["run", "--config"])
        .arg(&path)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !seen.iter().any(|l: &String| l.starts_with("store ")) {
        assert!(Instant::now() < deadline, "{seen:?}");
        match lines.next() {
            Some(Ok(l)) => seen.push(l),
            _ => panic!("stdout closed: {seen:?}"),
        }
    }
    assert!(
        seen.iter()
            .any(|l| l.starts_with("listening api http://127.0.0.1:")),
        "{seen:?}"
    );
    assert!(
        seen.iter()
            .any(|l| l.starts_with("listening metrics http://127.0.0.1:")),
        "{seen:?}"
    );
    assert!(
        seen.iter()
            .any(|l| l.starts_with("receipts http://127.0.0.1:") && l.contains("/v1/receipts")),
        "{seen:?}"
    );
    let key = seen
        .iter()
        .find_map(|l| l.strip_prefix("watcher "))
        .expect("the watcher key is printed")
        .to_owned();
    assert!(seen.iter().any(|l| l.contains("watcher.db")), "{seen:?}");
    let key_file = dir.join("data/keys/watcher.json");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&key_file).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
    assert!(dir.join("data/watcher.db").exists());
    // SIGHUP reloads (the log level) and keeps running.
    let status = Command::new("kill")
        .args(["-HUP", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        child.try_wait().unwrap().is_none(),
        "SIGHUP stopped the watcher"
    );
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(30);
    let exit = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "still running after SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(exit.success(), "{exit:?}");
    // `key` prints the same key.
    let out = Command::new(BIN)
        .args(["key", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), key);
    std::fs::remove_dir_all(dir).unwrap();
}
