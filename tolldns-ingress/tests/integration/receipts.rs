//! Receipts: leaves per answered query, a signed batch per window, name hashes, dropped leaves.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::net::UdpSocket;
use tolldns_core::{NameKey, NormalizedName, WindowId};
use tolldns_ingress::{Clock, ManualClock};
use tolldns_receipts::{RcodeClass, Transport, merkle};

use crate::common::{Harness, NAME_KEY, harness, harness_with, query, udp_exchange, wait_for};

fn with_ticket(mut q: Vec<u8>, ticket: [u8; 16]) -> Vec<u8> {
    q[11] = 1;
    q.extend_from_slice(&[0, 0, 41, 0x04, 0xD0, 0, 0, 0, 0, 0, 20]);
    q.extend_from_slice(&tolldns_ingress::wire::TICKET_OPTION_CODE.to_be_bytes());
    q.extend_from_slice(&16u16.to_be_bytes());
    q.extend_from_slice(&ticket);
    q
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn window_closes_into_a_verifiable_batch() {
    let mut h = harness(|_| {}).await;
    let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let to = h.udp();
    let mut answered = 0u64;
    let queries = [
        query(1, "a.test", 1),
        query(2, "A.TEST", 1),
        query(3, "nope.test", 1),
        query(4, "a.test", 255),
        with_ticket(query(5, "txt.test", 16), [0xEE; 16]),
    ];
    for q in &queries {
        let r = udp_exchange(&sock, to, q, Duration::from_secs(3))
            .await
            .expect("answer");
        assert_eq!(r[..2], q[..2]);
        answered += 1;
    }
    // Not answered: no leaf.
    assert!(
        udp_exchange(&sock, to, &[0u8; 4], Duration::from_millis(200))
            .await
            .is_none()
    );
    let leaves = h.edge.shutdown().await;
    assert_eq!(leaves, answered);
    let batch = h.batches.recv().await.expect("batch delivered at shutdown");
    let receipt = batch.receipt();
    receipt.verify_signature().expect("signature verifies");
    let expected_key =
        ed25519_dalek::SigningKey::from_bytes(&crate::common::SIGNING_SEED).verifying_key();
    assert_eq!(receipt.body.operator_id.to_bytes(), expected_key.to_bytes());
    assert_eq!(receipt.body.integrity.leaf_count, answered);
    assert_eq!(receipt.body.service_summary.request_count, answered);
    let key = NameKey(NAME_KEY);
    assert_eq!(receipt.body.integrity.name_key_commitment, key.commitment());
    let hashes: Vec<_> = batch.leaves().iter().map(|l| l.hash()).collect();
    assert_eq!(merkle::root(&hashes), receipt.body.integrity.merkle_root);
    let a = key.name_hash(&NormalizedName::new("a.test").unwrap());
    let leaves = batch.leaves();
    assert_eq!(leaves.iter().filter(|l| l.name_hash == a).count(), 3);
    assert!(leaves.iter().all(|l| l.transport == Transport::Udp));
    assert_eq!(
        leaves.iter().filter(|l| l.flags.cache_hit).count(),
        1,
        "second a.test came from the cache"
    );
    assert_eq!(
        leaves
            .iter()
            .filter(|l| l.rcode_class == RcodeClass::Nxdomain)
            .count(),
        1
    );
    let nope = key.name_hash(&NormalizedName::new("nope.test").unwrap());
    assert!(
        leaves
            .iter()
            .any(|l| l.name_hash == nope && l.rcode_class == RcodeClass::Nxdomain)
    );
    // A session ticket the edge never issued earns nothing: refused, and its leaf carries no
    // ticket (the client's bytes never reach a leaf).
    assert!(leaves.iter().all(|l| l.ticket == [0; 16]));
    let txt: Vec<_> = leaves.iter().filter(|l| l.qtype == 16).collect();
    assert_eq!(txt.len(), 1);
    assert_eq!(txt[0].rcode_class, RcodeClass::PolicyBlocked);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leaves_past_the_pending_limit_are_counted() {
    // Nothing is streamed while the queries run (an hour's watermark): at most 4 are held.
    let h = harness(|c| {
        c.receipts.max_pending_leaves = 4;
        c.receipts.watermark_ms = 3_600_000;
    })
    .await;
    let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    for i in 0..10u16 {
        let r = udp_exchange(
            &sock,
            h.udp(),
            &query(i, "a.test", 1),
            Duration::from_secs(3),
        )
        .await;
        assert!(r.is_some());
    }
    // Each leaf is recorded (or counted as dropped) after its answer is sent.
    wait_for(|| {
        let (recorded, dropped) = h.edge.leaf_counts();
        recorded + dropped == 10
    })
    .await;
    let (recorded, dropped) = h.edge.leaf_counts();
    assert_eq!(recorded + dropped, 10);
    assert!((1..=4).contains(&recorded), "recorded {recorded}");
    assert!(dropped >= 6);
    let Harness {
        edge,
        mut batches,
        registry,
        ..
    } = h;
    edge.shutdown().await;
    let batch = batches.recv().await.unwrap();
    assert_eq!(batch.receipt().body.integrity.leaf_count, recorded);
    batch.receipt().verify_signature().unwrap();
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
    let line = format!("tolldns_ingress_receipt_leaves_lost_total{{reason=\"full\"}} {dropped}");
    assert!(text.lines().any(|l| l == line), "{line} in\n{text}");
}

/// Ten times more answers than the edge may hold: the pump streams them out as they come,
/// so none is lost and the window's receipt has them all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pump_streams_a_window_larger_than_the_pending_limit() {
    let mut h = harness(|c| {
        c.receipts.max_pending_leaves = 4;
        c.receipts.watermark_ms = 0;
        c.receipts.flush_interval_ms = 10;
    })
    .await;
    let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    for i in 0..40u16 {
        let name = format!("n{}.test", i % 3);
        let r = udp_exchange(&sock, h.udp(), &query(i, &name, 1), Duration::from_secs(3)).await;
        assert!(r.is_some());
        // The leaf is recorded after the answer is sent, and leaves memory at the pump's
        // next run.
        wait_for(|| h.edge.leaf_counts().0 > u64::from(i) && h.edge.receipt_leaves_held() == 0)
            .await;
    }
    assert_eq!(h.edge.leaf_counts(), (40, 0));
    let sealed_now = h.edge.shutdown().await;
    assert_eq!(sealed_now, 40);
    let batch = h.batches.recv().await.unwrap();
    assert_eq!(batch.receipt().body.integrity.leaf_count, 40);
    batch.receipt().verify_signature().unwrap();
    let hashes: Vec<_> = batch.leaves().iter().map(|l| l.hash()).collect();
    assert_eq!(
        merkle::root(&hashes),
        batch.receipt().body.integrity.merkle_root
    );
}

/// The receipt pump and the shutdown seal read the edge's clock: on a clock set years before
/// the system's, the one batch is that time's window, made at that time, and no window of the
/// system's present is sealed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn receipt_windows_follow_the_edge_clock() {
    const START_MS: u64 = 1_600_000_000_000;
    let clock = Arc::new(ManualClock::new(Instant::now(), START_MS));
    let mut h = harness_with(|b| {
        b.clock(Arc::clone(&clock) as Arc<dyn Clock>)
            .configure(|c| c.receipts.flush_interval_ms = 10)
    })
    .await;
    let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let r = udp_exchange(
        &sock,
        h.udp(),
        &query(1, "a.test", 1),
        Duration::from_secs(3),
    )
    .await;
    assert!(r.is_some());
    wait_for(|| h.edge.leaf_counts().0 == 1).await;
    clock.advance(Duration::from_secs(5));
    assert_eq!(h.edge.shutdown().await, 1);
    let batch = h.batches.recv().await.unwrap();
    let body = &batch.receipt().body;
    assert_eq!(
        body.window_id,
        WindowId::containing(START_MS, body.window_len)
    );
    assert_eq!(body.timestamp_ms, START_MS + 5_000);
    assert_eq!(body.integrity.leaf_count, 1);
    assert!(h.batches.try_recv().is_err(), "no other window was sealed");
}
