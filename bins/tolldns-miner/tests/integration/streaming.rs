//! Streaming receipts: a window's leaves go to the journal while the window is open, so a
//! window holds many more answers than `receipts.max_pending_leaves` and loses none of them.

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tolldns_core::WindowLen;

use crate::support::{Miner, Upstream, http, metric, query, temp_dir, write_config};
use crate::verify::{self, KnownTickets};

/// Window length of this test (longer than the 2 s of the other tests, to serve more).
const WINDOW_SECS: u64 = 8;
/// The bound on leaves held in memory (a fifth of the window's answers).
const MAX_PENDING: u64 = 2048;
/// Queries per second per client connection (paced, so that the held leaves stay under the
/// bound on a loaded machine: at about 1,500 q/s, 2,048 leaves are 1.4 s, while a pump run
/// every 10 ms streams the leaves older than 20 ms; a 1,024 bound lost leaves when the pump
/// thread was starved for over 0.7 s on a 2-core machine running other tests).
const PER_CLIENT_QPS: u64 = 500;
const CLIENTS: u64 = 3;

/// One DNS exchange over TCP (RFC 1035 length prefix): whether an answer with `id` came back.
fn tcp_ask(s: &mut TcpStream, id: u16) -> bool {
    let q = query(id, "www.example.test");
    let mut msg = Vec::with_capacity(q.len() + 2);
    msg.extend_from_slice(&u16::try_from(q.len()).unwrap().to_be_bytes());
    msg.extend_from_slice(&q);
    if s.write_all(&msg).is_err() {
        return false;
    }
    let mut len = [0u8; 2];
    if s.read_exact(&mut len).is_err() {
        return false;
    }
    let mut answer = vec![0u8; usize::from(u16::from_be_bytes(len))];
    s.read_exact(&mut answer).is_ok() && answer.len() >= 12 && answer[..2] == id.to_be_bytes()
}

/// Sends paced queries over one connection from `from_ms` until `until_ms` (wall clock);
/// returns (sent, answered).
fn client(addr: SocketAddr, c: u64, from_ms: u64, until_ms: u64) -> (u64, u64) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.set_nodelay(true).unwrap();
    let start = Instant::now();
    let (mut sent, mut answered) = (0u64, 0u64);
    let wait = from_ms.saturating_sub(tolldns_miner::now_ms());
    std::thread::sleep(Duration::from_millis(wait));
    while tolldns_miner::now_ms() < until_ms {
        // Pacing: query i goes at its slot, not earlier.
        let slot = start + Duration::from_millis(wait + sent * 1000 / PER_CLIENT_QPS);
        if let Some(d) = slot.checked_duration_since(Instant::now()) {
            std::thread::sleep(d);
        }
        let id = u16::try_from((c * 20_000 + sent) % 60_000).unwrap();
        sent += 1;
        if tcp_ask(&mut s, id) {
            answered += 1;
        } else {
            break;
        }
    }
    (sent, answered)
}

/// The sum of every sample of a labelled counter family (Prometheus text).
fn family_sum(text: &str, name: &str) -> u64 {
    text.lines()
        .filter(|l| l.starts_with(name) && l[name.len()..].starts_with('{'))
        .filter_map(|l| l.rsplit_once(' ')?.1.trim().parse::<f64>().ok())
        .map(|v| v as u64)
        .sum()
}

#[test]
fn a_window_with_many_more_answers_than_max_pending_leaves_keeps_every_leaf() {
    let dir = temp_dir("streaming");
    let upstream = Upstream::start();
    let config = write_config(
        &dir,
        upstream.addr(),
        "[edge.admission]\nrate_per_prefix = 1000000\nburst_per_prefix = 1000000\n",
    );
    let text = std::fs::read_to_string(&config).unwrap().replace(
        "[receipts]\nwindow_secs = 2\n",
        &format!(
            "[receipts]\nwindow_secs = {WINDOW_SECS}\nmax_pending_leaves = {MAX_PENDING}\nwatermark_ms = 20\nflush_interval_ms = 10\n"
        ),
    );
    assert!(text.contains("max_pending_leaves"), "{text}");
    std::fs::write(&config, text).unwrap();
    let mut miner = Miner::spawn(&config);
    let tcp = miner.addr("tcp");
    // The answer is cached before the measured window.
    assert!(tcp_ask(&mut TcpStream::connect(tcp).unwrap(), 1));

    // Every query of the clients is sent and answered inside one window.
    let len_ms = WINDOW_SECS * 1000;
    let window = tolldns_miner::now_ms() / len_ms + 1;
    let from_ms = window * len_ms + 100;
    let until_ms = (window + 1) * len_ms - 800;
    let sent = Arc::new(AtomicU64::new(0));
    let answered = Arc::new(AtomicU64::new(0));
    let clients: Vec<_> = (0..CLIENTS)
        .map(|c| {
            let (sent, answered) = (Arc::clone(&sent), Arc::clone(&answered));
            std::thread::spawn(move || {
                let (s, a) = client(tcp, c, from_ms, until_ms);
                sent.fetch_add(s, Ordering::Relaxed);
                answered.fetch_add(a, Ordering::Relaxed);
            })
        })
        .collect();
    for c in clients {
        c.join().unwrap();
    }
    let sent = sent.load(Ordering::Relaxed);
    let answered = answered.load(Ordering::Relaxed);
    eprintln!("streaming: window {window}, {sent} queries sent, {answered} answered");
    assert_eq!(sent, answered, "every query is answered");
    assert!(
        answered > 3 * MAX_PENDING,
        "only {answered} answers in the window; the test needs many more than {MAX_PENDING}"
    );

    assert!(
        miner.wait_signed(Duration::from_secs(30), |b| b.iter().any(|x| x.1 == window)),
        "window {window} was not signed\n{}",
        miner.output()
    );
    let (id, _, leaves) = miner.signed().into_iter().find(|b| b.1 == window).unwrap();
    let api = miner.api();
    let losses = || {
        let (_, metrics) = http(api, "GET", "/metrics", None);
        metrics
            .lines()
            .filter(|l| l.contains("leaves_lost") || l.contains("journal_errors"))
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert_eq!(
        leaves,
        answered,
        "the window's batch holds one leaf per answer\n{}",
        losses()
    );

    // The streamed batch is audited like any other, and verifies.
    let (status, receipt_json) = http(api, "GET", &format!("/v1/batches/{id}"), None);
    assert_eq!(status, 200, "{receipt_json}");
    let seed = [9u8; 32];
    let k = 64;
    let (status, proofs) = miner.audited(&format!(
        "/v1/batches/{id}/audit?seed={}&k={k}",
        hex::encode(seed)
    ));
    assert_eq!(status, 200, "{proofs}");
    let (receipt, _) = verify::in_process_windows(
        &receipt_json,
        &proofs,
        &seed,
        k,
        &KnownTickets(Vec::new()),
        WindowLen::new(u32::try_from(WINDOW_SECS).unwrap()).unwrap(),
    );
    assert_eq!(receipt.body.integrity.leaf_count, answered);
    assert_eq!(receipt.body.window_id.get(), window);

    // Nothing was lost: neither refused by the bound nor by the journal.
    let (_, metrics) = http(api, "GET", "/metrics", None);
    assert_eq!(
        metric(&metrics, "tolldns_receipt_leaves_lost_total"),
        Some(0),
        "{metrics}"
    );
    assert_eq!(
        family_sum(&metrics, "tolldns_ingress_receipt_leaves_lost_total"),
        0,
        "{metrics}"
    );
    assert!(miner.terminate().success());
    // A clean stop journals the rest and loses nothing either.
    let mut miner = Miner::spawn(&config);
    let (_, metrics) = http(miner.api(), "GET", "/metrics", None);
    assert_eq!(
        metric(&metrics, "tolldns_receipt_leaves_lost_total"),
        Some(0),
        "{metrics}"
    );
    assert!(miner.terminate().success());
    let _ = std::fs::remove_dir_all(dir);
}
