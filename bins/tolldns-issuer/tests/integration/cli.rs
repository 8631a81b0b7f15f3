//! The operator commands: `init`, config errors, key-file modes, buyer keys.

use crate::support::{Issuer, cli, cli_ok, temp_dir};

#[test]
fn init_writes_commented_defaults_and_unknown_keys_are_named() {
    let dir = temp_dir("init");
    let out = cli_ok(&["init"], &dir);
    assert!(out.contains("wrote config.toml"), "{out}");
    let text = std::fs::read_to_string(dir.join("config.toml")).unwrap();
    assert_eq!(text, tolldns_issuer::config::TEMPLATE);
    // Not overwritten without --force.
    assert!(!cli(&["init"], &dir).status.success());
    assert!(cli(&["init", "--force"], &dir).status.success());
    assert!(
        cli(&["init", "--config", "other.toml"], &dir)
            .status
            .success()
    );
    assert!(dir.join("other.toml").exists());

    // The written config runs (on another port and data dir).
    let runnable = text
        .replace("\"127.0.0.1:8480\"", "\"127.0.0.1:0\"")
        .replace("./tolldns-issuer-data", "./from-config")
        .replace(
            "directory_max_age_secs = 3600",
            "directory_max_age_secs = 60",
        );
    std::fs::write(dir.join("run.toml"), runnable).unwrap();
    let mut issuer = Issuer::spawn(&dir, &["--config", "run.toml"]);
    let r = crate::support::http(
        issuer.addr,
        "GET",
        tolldns_tickets::DIRECTORY_PATH,
        &[],
        b"",
    );
    assert_eq!(r.header("cache-control"), Some("max-age=60"));
    assert!(dir.join("from-config/issuer-key.pem").exists());
    assert!(issuer.terminate().success());

    let bad = text.replace("key_bits = 2048", "key_bits = 2048\nkey_bitz = 4096");
    std::fs::write(dir.join("bad.toml"), bad).unwrap();
    let out = cli(&["run", "--config", "bad.toml"], &dir);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("key `key_bitz`"), "{err}");
    let bad = text.replace("\n[tls]\n", "\n[tls]\nkey_file = \"k.pem\"\n");
    std::fs::write(dir.join("bad2.toml"), bad).unwrap();
    let out = cli(&["run", "--config", "bad2.toml"], &dir);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("key `tls.key_file`"), "{err}");
    let _ = std::fs::remove_dir_all(dir);
}

#[cfg(unix)]
#[test]
fn group_readable_key_is_refused_naming_the_file() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = temp_dir("keymode");
    // `key rotate` without a key creates the first one.
    let out = cli_ok(&["key", "rotate", "--data-dir", "d"], &dir);
    assert!(out.starts_with("new current key id "), "{out}");
    let key = dir.join("d").join("issuer-key.pem");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o640)).unwrap();
    let out = cli(&["run", "--data-dir", "d", "--listen", "127.0.0.1:0"], &dir);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!(
            "{} is readable by group or others",
            key.strip_prefix(&dir).unwrap().display()
        )) && err.contains("chmod 600"),
        "{err}"
    );
    // `key show` refuses it too.
    let out = cli(&["key", "show", "--data-dir", "d"], &dir);
    assert!(!out.status.success());
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn bad_buyer_keys_exit_2() {
    let dir = temp_dir("buyer");
    for bad in ["0OIl", "3yZe7d", "not a key"] {
        for cmd in [
            vec!["credit", "--data-dir", "d", "--buyer", bad, "--tokens", "1"],
            vec!["balance", "--data-dir", "d", "--buyer", bad],
        ] {
            let out = cli(&cmd, &dir);
            assert_eq!(out.status.code(), Some(2), "{cmd:?}");
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(err.contains("not a base58 ed25519 public key"), "{err}");
        }
    }
    let out = cli(
        &[
            "credit",
            "--data-dir",
            "d",
            "--buyer",
            "11111111111111111111111111111111",
            "--tokens",
            "0",
        ],
        &dir,
    );
    assert_eq!(out.status.code(), Some(2));
    // Nothing was created.
    assert!(!dir.join("d").exists());
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn key_show_without_a_key_says_how_to_make_one() {
    let dir = temp_dir("nokey");
    let out = cli(&["key", "show", "--data-dir", "d"], &dir);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("issuer-key.pem") && err.contains("key rotate"),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(dir);
}
