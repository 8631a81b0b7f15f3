//! The operator commands: `init`, config errors, key-file modes, `register`.

use std::process::Command;

use crate::support::{MINER, temp_dir};

fn miner(args: &[&str], cwd: &std::path::Path) -> std::process::Output {
    Command::new(MINER)
        .args(args)
        .current_dir(cwd)
        .output()
        .unwrap()
}

#[test]
fn init_writes_every_default_and_run_names_a_bad_key() {
    let dir = temp_dir("init");
    let out = miner(&["init"], &dir);
    assert!(out.status.success());
    let text = std::fs::read_to_string(dir.join("config.toml")).unwrap();
    assert_eq!(text, tolldns_miner::config::TEMPLATE);
    // Not overwritten without --force.
    assert!(!miner(&["init"], &dir).status.success());
    assert!(miner(&["init", "--force"], &dir).status.success());

    let bad = text.replace(
        "doh_path = \"/dns-query\"",
        "doh_path = \"/dns-query\"\ndoh_paht = \"/x\"",
    );
    std::fs::write(dir.join("bad.toml"), bad).unwrap();
    let out = miner(&["run", "--config", "bad.toml"], &dir);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("listen.doh_paht"), "{err}");

    let bad = text.replace("\nwindow_secs = 60", "\nwindow_secs = -1");
    std::fs::write(dir.join("bad2.toml"), bad).unwrap();
    let out = miner(&["run", "--config", "bad2.toml"], &dir);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("receipts.window_secs"), "{err}");
    let _ = std::fs::remove_dir_all(dir);
}

#[cfg(unix)]
#[test]
fn group_readable_key_is_refused() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = temp_dir("keymode");
    let key = dir.join("hot.json");
    let sk = ed25519_dalek::SigningKey::from_bytes(&[5; 32]);
    tolldns_miner::keys::write_keypair(&key, &sk).unwrap();
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    std::fs::write(
        dir.join("c.toml"),
        format!(
            "data_dir = \"{}\"\nupstreams = [\"127.0.0.1:9\"]\n[identity]\nsigning_key_file = \"{}\"\n",
            dir.join("data").display(),
            key.display()
        ),
    )
    .unwrap();
    let out = miner(&["run", "--config", "c.toml"], &dir);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("readable by group or others") && err.contains("chmod 600"),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn register_prints_delegate_wallet_and_endpoints() {
    let dir = temp_dir("register");
    let wallet = dir.join("wallet.json");
    let w = ed25519_dalek::SigningKey::from_bytes(&[6; 32]);
    tolldns_miner::keys::write_keypair(&wallet, &w).unwrap();
    let out = miner(
        &["register", "--data-dir", "d", "--wallet", "wallet.json"],
        &dir,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let hot = tolldns_miner::keys::load_keypair(&dir.join("d/keys/receipt-signing.json")).unwrap();
    let hot = tolldns_miner::keys::public_key_string(&hot.verifying_key());
    assert!(
        text.contains(&format!("delegate (receipt-signing key): {hot}")),
        "{text}"
    );
    let wpub = tolldns_miner::keys::public_key_string(&w.verifying_key());
    assert!(
        text.contains(&format!("wallet (stake and payouts): {wpub}")),
        "{text}"
    );
    assert!(
        text.contains("doh https://127.0.0.1:8443/dns-query"),
        "{text}"
    );
    // Broken pipe exits 0.
    let status = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "'{MINER}' register --data-dir d | head -c 1 >/dev/null"
        ))
        .current_dir(&dir)
        .status()
        .unwrap();
    assert!(status.success());
    let _ = std::fs::remove_dir_all(dir);
}
