//! Crash consistency: kill -9 the miner under load, restart on the same data directory; every
//! batch it reported as signed is still there and verifies, and the leaves lost in the open
//! window are counted.

use std::net::UdpSocket;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use crate::support::{Miner, Upstream, http, metric, temp_dir, udp_ask, write_config};
use crate::verify;

#[test]
fn kill9_under_load_keeps_signed_batches_and_counts_lost_leaves() {
    let dir = temp_dir("crash");
    let upstream = Upstream::start();
    let config = write_config(&dir, upstream.addr(), "[api]\nlisten = \"127.0.0.1:0\"\n");
    let mut miner = Miner::spawn(&config);
    let target = miner.addr("udp");

    // Load: two clients asking as fast as answers come back. Every leaf stands for one query
    // sent; a loaded machine may answer (and record) a query after its client stopped waiting,
    // so queries sent, not answers received, bound the leaves.
    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicU64::new(0));
    let answered = Arc::new(AtomicU64::new(0));
    let clients: Vec<_> = (0..2u16)
        .map(|c| {
            let stop = Arc::clone(&stop);
            let sent = Arc::clone(&sent);
            let answered = Arc::clone(&answered);
            std::thread::spawn(move || {
                let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
                socket
                    .set_read_timeout(Some(Duration::from_millis(500)))
                    .unwrap();
                let mut id = c.wrapping_mul(30_000);
                while !stop.load(Ordering::Relaxed) {
                    id = id.wrapping_add(1);
                    sent.fetch_add(1, Ordering::Relaxed);
                    if udp_ask(&socket, target, id, "www.example.test") {
                        answered.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
        })
        .collect();

    // Let at least two windows close with leaves, then kill in the middle of the next one.
    assert!(
        miner.wait_signed(Duration::from_secs(30), |b| b
            .iter()
            .filter(|x| x.2 > 0)
            .count()
            >= 2),
        "{}",
        miner.output()
    );
    std::thread::sleep(Duration::from_millis(700));
    miner.kill9();
    stop.store(true, Ordering::Relaxed);
    for c in clients {
        c.join().unwrap();
    }
    let reported = miner.signed();
    let sent = sent.load(Ordering::Relaxed);
    let answered = answered.load(Ordering::Relaxed);
    let reported_leaves: u64 = reported.iter().map(|b| b.2).sum();
    assert!(answered > 0, "no query was answered before the kill");
    assert!(
        sent > reported_leaves,
        "sent {sent}, journaled {reported_leaves}: the open window's queries are missing"
    );

    let mut miner = Miner::spawn(&config);
    let api = miner.api();
    let seed = [3u8; 32];
    for (id, window, leaves) in &reported {
        let (status, receipt_json) = http(api, "GET", &format!("/v1/batches/{id}"), None);
        assert_eq!(status, 200, "batch {id} reported as signed is missing");
        let k = (*leaves).min(8);
        let (status, proofs) = miner.audited(&format!(
            "/v1/batches/{id}/audit?seed={}&k={k}",
            hex::encode(seed)
        ));
        assert_eq!(status, 200, "{proofs}");
        let receipt = verify::in_process(&receipt_json, &proofs, &seed, k);
        assert_eq!(receipt.body.window_id.get(), *window);
        assert_eq!(receipt.body.integrity.leaf_count, *leaves);
    }

    // The open window's leaves were accepted but never journaled: counted, not silent.
    let (_, metrics) = http(api, "GET", "/metrics", None);
    let lost = metric(&metrics, "tolldns_receipt_leaves_lost_total").unwrap();
    let journaled = metric(&metrics, "tolldns_receipt_leaves_journaled_total").unwrap();
    eprintln!(
        "crash: sent {sent}, answered {answered}, batches reported signed {}, journaled {journaled}, lost {lost}",
        reported.len()
    );
    assert!(
        lost > 0,
        "no lost leaves counted after kill -9 under load\n{metrics}"
    );
    assert!(journaled >= reported_leaves);
    // Every leaf, journaled or lost, is a query that was sent.
    assert!(
        lost + journaled <= sent,
        "lost {lost} + journaled {journaled} > sent {sent}"
    );
    assert!(
        miner.output().contains("leaves_lost="),
        "{}",
        miner.output()
    );

    // A clean stop afterwards loses nothing more.
    let status = miner.terminate();
    assert!(status.success());
    let mut miner = Miner::spawn(&config);
    let (_, metrics) = http(miner.api(), "GET", "/metrics", None);
    assert_eq!(
        metric(&metrics, "tolldns_receipt_leaves_lost_total"),
        Some(lost)
    );
    assert!(miner.terminate().success());
    let _ = std::fs::remove_dir_all(dir);
}
