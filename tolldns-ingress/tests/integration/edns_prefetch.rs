//! EDNS in answers (RFC 6891 §7: no OPT for a client that sent none; the UDP size limit is the
//! smaller of the client's payload size and the configured cap) and background prefetch.

use std::sync::Arc;
use std::time::Duration;

use tokio::net::UdpSocket;
use tolldns_ingress::{Clock, ManualClock};

use crate::common::{Harness, harness, harness_with, query, rcode, udp_exchange, wait_for};

const WAIT: Duration = Duration::from_secs(3);

/// `query(...)` with an OPT record advertising `udp_size`.
fn edns_query(id: u16, name: &str, qtype: u16, udp_size: u16) -> Vec<u8> {
    let mut q = query(id, name, qtype);
    q[11] = 1;
    q.extend_from_slice(&[0, 0, 41]);
    q.extend_from_slice(&udp_size.to_be_bytes());
    q.extend_from_slice(&[0, 0, 0, 0, 0, 0]);
    q
}

fn arcount(msg: &[u8]) -> u16 {
    u16::from_be_bytes([msg[10], msg[11]])
}

/// The OPT record's UDP payload size, when the message has an OPT (parsed with hickory).
fn opt_size(msg: &[u8]) -> Option<u16> {
    let m = hickory_proto::op::Message::from_vec(msg).expect("a valid message");
    m.extensions().as_ref().map(|e| e.max_payload())
}

/// Queries for txt.test the upstream received (health probes excluded).
fn txt_queries(h: &Harness) -> usize {
    h.upstream()
        .received()
        .iter()
        .filter(|r| {
            r.question
                .as_ref()
                .is_some_and(|(n, _)| n.to_ascii().eq_ignore_ascii_case("txt.test."))
        })
        .count()
}

async fn ask(sock: &UdpSocket, to: std::net::SocketAddr, q: &[u8]) -> Vec<u8> {
    loop {
        let r = udp_exchange(sock, to, q, WAIT).await.expect("an answer");
        if r[..2] == q[..2] {
            return r;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn opt_only_for_clients_that_sent_one() {
    let h = harness(|_| {}).await;
    let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let to = h.udp();
    // The upstream leg always uses EDNS, so the fresh answer and the cached one carry an OPT
    // from the upstream; neither may reach a client that sent none.
    for id in [0x0101u16, 0x0102] {
        let r = ask(&sock, to, &query(id, "a.test", 1)).await;
        assert_eq!(rcode(&r), 0);
        assert_eq!(opt_size(&r), None, "no OPT without EDNS (id {id:#x})");
        assert_eq!(arcount(&r), 0);
    }
    for id in [0x0201u16, 0x0202] {
        let r = ask(&sock, to, &edns_query(id, "a.test", 28, 4096)).await;
        assert_eq!(rcode(&r), 0);
        assert_eq!(opt_size(&r), Some(tolldns_ingress::EDNS_UDP_SIZE));
    }
    // Errors the edge writes itself follow the same rule.
    let mut notimp = query(0x0301, "a.test", 1);
    notimp[2] = 0x20;
    let r = ask(&sock, to, &notimp).await;
    assert_eq!(rcode(&r), 4);
    assert_eq!(arcount(&r), 0);
    h.edge.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn udp_limit_is_min_of_client_size_and_cap() {
    // big.test's TXT answer is about 4.1 kB.
    let h = harness(|c| {
        c.admission.max_udp_response_size = 8192;
        // A 4 kB answer to a 40-byte query is 100x: lift the amplification bound to test the
        // size limits alone.
        c.admission.max_amplification = 0;
    })
    .await;
    let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let to = h.udp();
    // The client's 1400 is below the cap: TC=1, with an OPT because the client sent one.
    let r = ask(&sock, to, &edns_query(0x0401, "big.test", 16, 1400)).await;
    assert_ne!(r[2] & 0x02, 0, "TC set above the client's payload size");
    assert_eq!(opt_size(&r), Some(tolldns_ingress::EDNS_UDP_SIZE));
    // The client's 8192 fits the cap: the whole answer, fresh or cached.
    for id in [0x0402u16, 0x0403] {
        let r = ask(&sock, to, &edns_query(id, "big.test", 16, 8192)).await;
        assert_eq!(r[2] & 0x02, 0, "no TC within both limits");
        assert!(r.len() > 4000);
        assert!(opt_size(&r).is_some());
    }
    h.edge.shutdown().await;

    // The default cap (1232) wins over a client's 4096.
    let h = harness(|_| {}).await;
    let r = ask(&sock, h.udp(), &edns_query(0x0501, "big.test", 16, 4096)).await;
    assert_ne!(r[2] & 0x02, 0, "TC set above the cap");
    assert!(r.len() <= 1232);
    h.edge.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn popular_entries_are_refreshed_before_expiry() {
    // TTLs clamped to 2 s; prefetch due once half of it is left, after 3 hits. The edge runs on
    // a manual clock: the test moves time past the TTL instead of waiting for it.
    let clock = Arc::new(ManualClock::starting_now());
    let h = harness_with(|b| {
        b.clock(Arc::clone(&clock) as Arc<dyn Clock>)
            .configure(|c| {
                c.cache.max_ttl = 2;
                c.cache.prefetch_min_hits = 3;
                c.cache.prefetch_fraction_pct = 50;
            })
    })
    .await;
    let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let to = h.udp();
    for id in 0..4u16 {
        let r = ask(&sock, to, &query(0x0600 + id, "txt.test", 16)).await;
        assert_eq!(rcode(&r), 0);
    }
    assert_eq!(txt_queries(&h), 1, "one miss, then hits");
    // Past half the TTL: the next hit is answered from the cache and triggers one refresh.
    clock.advance(Duration::from_millis(1_100));
    let r = ask(&sock, to, &query(0x0610, "txt.test", 16)).await;
    assert_eq!(rcode(&r), 0);
    wait_for(|| txt_queries(&h) >= 2).await;
    assert_eq!(
        txt_queries(&h),
        2,
        "a background refresh reached the upstream"
    );
    // The refresh holds its slot until its answer is cached.
    wait_for(|| h.edge.prefetches_running() == 0).await;
    // The refreshed entry is fresh again: past the old expiry it is still a hit.
    clock.advance(Duration::from_millis(1_100));
    let r = ask(&sock, to, &query(0x0611, "txt.test", 16)).await;
    assert_eq!(rcode(&r), 0);
    assert_eq!(txt_queries(&h), 2, "served from the refreshed entry");
    // Past the refreshed entry's own expiry, without another refresh, it is a miss again.
    clock.advance(Duration::from_millis(2_000));
    let r = ask(&sock, to, &query(0x0612, "txt.test", 16)).await;
    assert_eq!(rcode(&r), 0);
    assert_eq!(txt_queries(&h), 3, "expired on the edge's clock");
    h.edge.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prefetch_is_bounded_and_counted() {
    use std::sync::Arc;
    use tolldns_cache::{Cache, CacheConfig};
    use tolldns_ingress::{Engine, EngineConfig, Metrics};

    let mut registry = prometheus_client::registry::Registry::default();
    let engine = Engine::new(
        EngineConfig {
            max_prefetches: 1,
            ..EngineConfig::default()
        },
        Arc::new(Cache::new(CacheConfig::default())),
        Metrics::register(&mut registry),
        None,
        std::time::Instant::now(),
    );
    let first = engine.prefetch_slot().expect("one slot");
    assert!(engine.prefetch_slot().is_none(), "bound reached: skipped");
    assert_eq!(engine.prefetches_running(), 1);
    drop(first);
    assert_eq!(engine.prefetches_running(), 0);
    let again = engine.prefetch_slot().expect("slot released");
    drop(again);
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
    assert!(text.contains(r#"tolldns_ingress_cache_prefetches_total{result="started"} 2"#));
    assert!(text.contains(r#"tolldns_ingress_cache_prefetches_total{result="skipped"} 1"#));
}
