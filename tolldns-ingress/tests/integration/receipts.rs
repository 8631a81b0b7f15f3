//! Receipts: leaves per answered query, a signed batch per window, name hashes, dropped leaves.

use std::time::Duration;

use tokio::net::UdpSocket;
use tolldns_core::{NameKey, NormalizedName};
use tolldns_receipts::{RcodeClass, Transport, merkle};

use crate::common::{Harness, NAME_KEY, query, udp_exchange};

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
    let mut h = Harness::start(|_| {}).await;
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
async fn leaves_past_the_window_limit_are_counted() {
    let mut h = Harness::start(|c| c.receipts.max_leaves_per_window = 4).await;
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
    let (recorded, dropped) = h.edge.leaf_counts();
    assert_eq!(recorded + dropped, 10);
    assert!((1..=4).contains(&recorded), "recorded {recorded}");
    assert!(dropped >= 6);
    h.edge.shutdown().await;
    let batch = h.batches.recv().await.unwrap();
    assert_eq!(batch.receipt().body.integrity.leaf_count, recorded);
    batch.receipt().verify_signature().unwrap();
}
