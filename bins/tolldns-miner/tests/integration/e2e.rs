//! End to end: the miner binary on loopback against a local upstream, queried over UDP, TCP,
//! DoT and DoH; batches fetched and audited through the API and verified; kill -9, restart,
//! verified again; SIGHUP; SIGTERM closes the last window.

use std::net::UdpSocket;
use std::process::Command;
use std::time::Duration;

use ed25519_dalek::SigningKey;

use crate::support::{
    ANSWER, Miner, Upstream, auditor, http, http_signed, http_with, metric, temp_dir, tool,
    udp_ask, write_config,
};
use crate::verify;

fn kdig(port: u16, extra: &[String]) -> String {
    let out = Command::new("/usr/bin/kdig")
        .arg("@127.0.0.1")
        .arg("-p")
        .arg(port.to_string())
        .arg("www.example.test")
        .arg("A")
        .arg("+timeout=5")
        .arg("+retry=1")
        .args(extra)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn all_transports_batches_audits_and_restart() {
    let dir = temp_dir("e2e");
    let upstream = Upstream::start();
    let auditor = auditor();
    let stranger = SigningKey::from_bytes(&[43; 32]);
    let config = write_config(&dir, upstream.addr(), "[api]\nlisten = \"127.0.0.1:0\"\n");
    let mut miner = Miner::spawn(&config);
    let api = miner.api();

    // Always one raw UDP query; the four transports with kdig when it is installed.
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    assert!(udp_ask(&socket, miner.addr("udp"), 7, "www.example.test"));
    let mut asked = 1u64;
    if tool("/usr/bin/kdig") {
        let cert = dir.join("data/tls/cert.pem");
        let tls = vec![
            format!("+tls-ca={}", cert.display()),
            "+tls-hostname=localhost".to_owned(),
        ];
        let cases: Vec<(&str, Vec<String>)> = vec![
            ("udp", vec![]),
            ("tcp", vec!["+tcp".to_owned()]),
            ("dot", [vec!["+tls".to_owned()], tls.clone()].concat()),
            ("doh", [vec!["+https".to_owned()], tls].concat()),
        ];
        for (transport, args) in cases {
            let out = kdig(miner.addr(transport).port(), &args);
            assert!(
                out.contains("status: NOERROR") && out.contains(&ANSWER.to_string()),
                "{transport}: {out}"
            );
            asked += 1;
        }
    }

    // Every answered query becomes a leaf of a signed batch once its window closes.
    assert!(
        miner.wait_signed(Duration::from_secs(20), |b| b
            .iter()
            .map(|x| x.2)
            .sum::<u64>()
            >= asked),
        "batches: {:?}\n{}",
        miner.signed(),
        miner.output()
    );
    let (id, window, leaves) = miner.signed().into_iter().max_by_key(|b| b.2).unwrap();
    assert!(leaves >= 1);

    let (status, list) = http(api, "GET", &format!("/v1/batches?window={window}"), None);
    assert_eq!(status, 200, "{list}");
    let list: serde_json::Value = serde_json::from_str(&list).unwrap();
    assert_eq!(list["window"], window);
    assert!(
        list["batches"]
            .as_array()
            .unwrap()
            .iter()
            .any(|b| b["id"] == id.as_str())
    );

    let (status, receipt_json) = http(api, "GET", &format!("/v1/batches/{id}"), None);
    assert_eq!(status, 200, "{receipt_json}");
    let seed = [7u8; 32];
    let k = leaves.min(3);
    let audit_path = format!("/v1/batches/{id}/audit?seed={}&k={k}", hex::encode(seed));
    // Audits need an auditor signature.
    assert_eq!(http(api, "GET", &audit_path, None).0, 401);
    let operator = miner.operator();
    assert_eq!(
        http_signed(api, &stranger, &operator, "GET", &audit_path).0,
        403
    );
    let (status, proofs) = miner.audited(&audit_path);
    assert_eq!(status, 200, "{proofs}");
    let receipt = verify::in_process(&receipt_json, &proofs, &seed, k);
    assert_eq!(receipt.body.window_id.get(), window);
    assert_eq!(receipt.body.integrity.leaf_count, leaves);
    assert_eq!(receipt.body.window_len.secs(), 2);
    let cli = verify::tolldns_cli();
    if let Some(bin) = &cli {
        verify::with_cli(bin, &dir, &receipt_json, &proofs, &seed, k);
    }
    // Default k: 44 at 99 % / 10 %, clamped to the leaf count.
    let (status, all) = miner.audited(&format!(
        "/v1/batches/{id}/audit?seed={}",
        hex::encode(seed)
    ));
    assert_eq!(status, 200);
    assert_eq!(verify::parse_answers(&all).len() as u64, leaves.min(44));
    // Bad requests.
    assert_eq!(miner.audited(&format!("/v1/batches/{id}/audit?k=1")).0, 400);
    // A signed request is single-use (same nonce), and bound to its path.
    let header = tolldns_service::auditor::authorization(
        &auditor,
        &operator,
        tolldns_miner::now_ms(),
        &[9; 16],
        "GET",
        &audit_path,
    );
    let auth = [("Authorization", header.as_str())];
    assert_eq!(http_with(api, "GET", &audit_path, None, &auth).0, 200);
    assert_eq!(http_with(api, "GET", &audit_path, None, &auth).0, 401);
    let other = format!("/v1/batches/{id}/audit?seed={}&k=1", hex::encode(seed));
    assert_eq!(http_with(api, "GET", &other, None, &auth).0, 401);
    assert_eq!(
        http(
            api,
            "GET",
            &format!("/v1/batches/{}", "00".repeat(32)),
            None
        )
        .0,
        404
    );
    assert_eq!(http(api, "GET", "/v1/batches", None).0, 400);

    // The name key of the batch's epoch, encrypted to the authorized auditor only.
    let epoch = window * 2 / 60;
    let path = format!("/v1/name-key/{epoch}");
    let nonce = [5u8; 16];
    let header = tolldns_service::auditor::authorization(
        &auditor,
        &operator,
        tolldns_miner::now_ms(),
        &nonce,
        "GET",
        &path,
    );
    let (status, body) = http_with(api, "GET", &path, None, &[("Authorization", &header)]);
    assert_eq!(status, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert!(
        v.get("name_key").is_none(),
        "the key is never in clear: {body}"
    );
    assert_eq!(
        v["commitment"],
        hex::encode(receipt.body.integrity.name_key_commitment)
    );
    let mut enc = [0u8; 32];
    hex::decode_to_slice(v["enc"].as_str().unwrap(), &mut enc).unwrap();
    let ct = hex::decode(v["ciphertext"].as_str().unwrap()).unwrap();
    let key =
        tolldns_service::auditor::open_name_key(&auditor, &operator, epoch, &nonce, &enc, &ct)
            .unwrap();
    assert!(tolldns_core::NameKey(key).matches(&receipt.body.integrity.name_key_commitment));
    assert!(
        tolldns_service::auditor::open_name_key(&stranger, &operator, epoch, &nonce, &enc, &ct)
            .is_err()
    );
    assert_eq!(http_signed(api, &stranger, &operator, "GET", &path).0, 403);
    let stale = tolldns_service::auditor::authorization(
        &auditor,
        &operator,
        tolldns_miner::now_ms() - 600_000,
        &[6; 16],
        "GET",
        &path,
    );
    assert_eq!(
        http_with(api, "GET", &path, None, &[("Authorization", &stale)]).0,
        401
    );
    // The old clear-text endpoint is gone.
    assert_eq!(http(api, "POST", "/v1/name-key", Some("{}")).0, 410);

    let (status, metrics) = http(api, "GET", "/metrics", None);
    assert_eq!(status, 200);
    assert!(metric(&metrics, "tolldns_receipt_batches_signed_total").unwrap() >= 1);
    assert!(metric(&metrics, "tolldns_receipt_leaves_journaled_total").unwrap() >= asked);
    assert_eq!(http(api, "GET", "/healthz", None), (200, "ok\n".to_owned()));

    // kill -9 and restart on the same data directory: the batch is still there and verifies.
    miner.kill9();
    let mut miner = Miner::spawn(&config);
    let api = miner.api();
    let (status, again) = http(api, "GET", &format!("/v1/batches/{id}"), None);
    assert_eq!(status, 200);
    assert_eq!(again, receipt_json);
    let (status, proofs2) = miner.audited(&audit_path);
    assert_eq!(status, 200);
    assert_eq!(proofs2, proofs);
    verify::in_process(&again, &proofs2, &seed, k);
    if let Some(bin) = &cli {
        verify::with_cli(bin, &dir, &again, &proofs2, &seed, k);
    }
    // The restarted miner serves and signs again.
    assert!(udp_ask(&socket, miner.addr("udp"), 8, "www.example.test"));
    assert!(miner.wait_signed(Duration::from_secs(20), |b| b.iter().any(|x| x.2 >= 1)));

    // SIGHUP reloads; SIGTERM closes the current window into a signed batch and exits 0.
    miner.signal("HUP");
    assert!(
        miner
            .wait_for(Duration::from_secs(5), |l| l.contains("SIGHUP: reloaded"))
            .is_some()
    );
    assert!(udp_ask(&socket, miner.addr("udp"), 9, "www.example.test"));
    let before = miner.signed().len();
    let status = miner.terminate();
    assert!(status.success(), "{}", miner.output());
    assert!(miner.signed().len() > before, "{}", miner.output());
    assert!(miner.output().contains("stopped"));
    let _ = std::fs::remove_dir_all(dir);
}

/// A miner restarted within the window it signed at its stop waits for the next window before
/// it serves; SIGTERM during that wait stops it at once and cleanly (it used to be ignored
/// until the window ended, up to `window_secs`).
#[test]
fn sigterm_ends_the_wait_for_the_next_window() {
    let dir = temp_dir("wait-stop");
    let upstream = Upstream::start();
    let config = write_config(&dir, upstream.addr(), "");
    let text = std::fs::read_to_string(&config).unwrap();
    let text = text
        .replace("window_secs = 2\n", "window_secs = 3600\n")
        .replace("name_key_epoch_secs = 60\n", "name_key_epoch_secs = 3600\n");
    std::fs::write(&config, text).unwrap();
    let mut miner = Miner::spawn(&config);
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    assert!(udp_ask(&socket, miner.addr("udp"), 1, "www.example.test"));
    // SIGTERM closes this hour's window into a signed batch.
    assert!(miner.terminate().success(), "{}", miner.output());
    assert_eq!(miner.signed().len(), 1, "{}", miner.output());

    let mut again = Miner::spawn_until(&config, |l| l.contains("waiting for the next window"));
    let asked = std::time::Instant::now();
    let status = again.terminate();
    let took = asked.elapsed();
    assert!(status.success(), "{}", again.output());
    assert!(took < Duration::from_secs(10), "stopped after {took:?}");
    let out = again.output();
    assert!(
        out.contains("stopping before the next window began"),
        "{out}"
    );
    assert!(!out.contains("listening udp "), "{out}");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn metrics_pass_promtool() {
    let dir = temp_dir("promtool");
    let upstream = Upstream::start();
    let config = write_config(&dir, upstream.addr(), "[api]\nlisten = \"127.0.0.1:0\"\n");
    let miner = Miner::spawn(&config);
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    assert!(udp_ask(&socket, miner.addr("udp"), 1, "www.example.test"));
    assert!(miner.wait_signed(Duration::from_secs(20), |b| !b.is_empty()));
    let (status, text) = http(miner.api(), "GET", "/metrics", None);
    assert_eq!(status, 200);
    // Privacy: no names or addresses in the exposition.
    assert!(!text.contains("example.test") && !text.contains("127.0.0.1"));
    if tool("/usr/bin/promtool") {
        let path = dir.join("metrics.txt");
        std::fs::write(&path, &text).unwrap();
        let out = Command::new("sh")
            .arg("-c")
            .arg(format!(
                "/usr/bin/promtool check metrics < {}",
                path.display()
            ))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "promtool: {}{}\n{text}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    drop(miner);
    let _ = std::fs::remove_dir_all(dir);
}
