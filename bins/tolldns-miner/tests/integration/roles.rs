//! The ingress + cache role: `[receipts] enabled = false` answers and caches, records no leaf,
//! signs no window, opens no journal, and its API serves `/metrics` and `/healthz` while the
//! audit endpoints answer `404` "receipts are off on this node".

use std::net::UdpSocket;
use std::process::Command;
use std::time::Duration;

use crate::support::{ANSWER, Miner, Upstream, http, metric, temp_dir, tool, udp_ask};

/// The sum of every sample of `name` (labelled or not) in Prometheus text.
fn sum(text: &str, name: &str) -> Option<f64> {
    let values: Vec<f64> = text
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (n, v) = l.rsplit_once(' ')?;
            let n = n.split('{').next()?;
            (n == name).then(|| v.parse::<f64>().ok())?
        })
        .collect();
    (!values.is_empty()).then(|| values.iter().sum())
}

#[test]
fn receipts_off_answers_and_caches_without_leaves_or_batches() {
    let dir = temp_dir("roles-off");
    let upstream = Upstream::start();
    let config = dir.join("config.toml");
    let doh = if cfg!(feature = "doh") {
        "doh = \"127.0.0.1:0\"\n"
    } else {
        ""
    };
    std::fs::write(
        &config,
        format!(
            "data_dir = \"{data}\"\nupstreams = [\"{up}\"]\nlog_level = \"info\"\n\n\
             [listen]\nudp = \"127.0.0.1:0\"\ntcp = \"127.0.0.1:0\"\ndot = \"127.0.0.1:0\"\n{doh}\n\
             [receipts]\nenabled = false\nwindow_secs = 1\nclose_grace_ms = 100\n\n\
             [api]\nlisten = \"127.0.0.1:0\"\n\n[edge.attack]\nenabled = false\n",
            data = dir.join("data").display(),
            up = upstream.addr(),
        ),
    )
    .unwrap();
    let mut miner = Miner::spawn(&config);
    let api = miner.api();
    let udp = miner.addr("udp");

    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    for id in 1..=3 {
        assert!(
            udp_ask(&socket, udp, id, "www.example.test"),
            "{}",
            miner.output()
        );
    }
    let mut asked = 3.0;
    if tool("/usr/bin/kdig") {
        let tcp = miner.addr("tcp");
        for (port, extra) in [(udp.port(), &[][..]), (tcp.port(), &["+tcp"][..])] {
            let out = Command::new("/usr/bin/kdig")
                .arg("@127.0.0.1")
                .arg("-p")
                .arg(port.to_string())
                .args(["www.example.test", "A", "+timeout=5", "+retry=1"])
                .args(extra)
                .output()
                .unwrap();
            let out = String::from_utf8_lossy(&out.stdout);
            assert!(
                out.contains("status: NOERROR") && out.contains(&ANSWER.to_string()),
                "{extra:?}: {out}"
            );
            asked += 1.0;
        }
    }

    // The upstream was asked once; the rest came from the cache.
    let (status, text) = http(api, "GET", "/metrics", None);
    assert_eq!(status, 200);
    assert_eq!(
        sum(&text, "tolldns_ingress_queries_total"),
        Some(asked),
        "{text}"
    );
    assert!(
        sum(&text, "tolldns_ingress_cache_lookups_total").unwrap_or(0.0) >= asked,
        "{text}"
    );
    assert!(
        metric(&text, "process_resident_memory_bytes").is_some_and(|v| v > 0),
        "{text}"
    );

    // Two windows (1 s each, 100 ms grace) pass: nothing is recorded, sealed or journaled.
    std::thread::sleep(Duration::from_millis(2_500));
    let (_, text) = http(api, "GET", "/metrics", None);
    for name in [
        "tolldns_ingress_receipt_leaves_recorded_total",
        "tolldns_ingress_receipt_batches_total",
        "tolldns_receipt_batches_signed_total",
        "tolldns_receipt_leaves_journaled_total",
        "tolldns_outbox_deliveries_total",
    ] {
        assert_eq!(sum(&text, name).unwrap_or(0.0), 0.0, "{name}: {text}");
    }
    assert!(miner.signed().is_empty(), "{}", miner.output());
    assert!(!dir.join("data/journal.redb").exists());

    let (status, body) = http(api, "GET", "/healthz", None);
    assert_eq!((status, body.as_str()), (200, "ok\n"));
    for path in [
        "/v1/batches",
        "/v1/batches/00/audit?seed=00&k=1",
        "/v1/name-key/1",
    ] {
        let (status, body) = http(api, "GET", path, None);
        assert_eq!(status, 404, "{path}");
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["error"], "receipts are off on this node", "{path}");
    }
    let (status, body) = http(api, "GET", "/nothing", None);
    assert_eq!((status, body.as_str()), (404, "{\"error\":\"not found\"}"));

    assert!(miner.terminate().success(), "{}", miner.output());
    assert!(miner.signed().is_empty());
    std::fs::remove_dir_all(&dir).unwrap();
}
