//! A flood from one /24 does not starve a client in another prefix.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use tokio::net::UdpSocket;

use crate::common::{harness, query, udp_exchange, wait_for};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flood_from_one_prefix_spares_another() {
    let h = harness(|c| {
        c.admission.rate_per_prefix = 500;
        c.admission.burst_per_prefix = 500;
    })
    .await;
    let to = h.udp();
    // Warm the cache.
    let warm = UdpSocket::bind("127.0.1.1:0")
        .await
        .expect("127.0.1.1 is loopback");
    assert!(
        udp_exchange(&warm, to, &query(1, "a.test", 1), Duration::from_secs(2))
            .await
            .is_some()
    );

    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicU64::new(0));
    let mut flooders = Vec::new();
    for _ in 0..2 {
        let stop = Arc::clone(&stop);
        let sent = Arc::clone(&sent);
        flooders.push(tokio::spawn(async move {
            let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
            let q = query(0xF00D, "a.test", 1);
            let mut buf = [0u8; 512];
            while !stop.load(Ordering::Relaxed) {
                for _ in 0..50 {
                    let _ = sock.send_to(&q, to).await;
                    sent.fetch_add(1, Ordering::Relaxed);
                }
                // Drain whatever was answered so the socket buffer never fills.
                while let Ok(Ok(_)) =
                    tokio::time::timeout(Duration::from_micros(1), sock.recv_from(&mut buf)).await
                {
                }
                tokio::task::yield_now().await;
            }
        }));
    }
    // The flood is on once its prefix is over its rate.
    wait_for(|| h.metric("tolldns_ingress_admission_total{decision=\"rate_limited\"}") > 0).await;
    let good = UdpSocket::bind("127.0.1.1:0").await.unwrap();
    let total = 300u16;
    let mut answered = 0u32;
    for i in 0..total {
        let id = 0x1000 + i;
        let q = query(id, "a.test", 1);
        if let Some(r) = udp_exchange(&good, to, &q, Duration::from_millis(1000)).await {
            if r[..2] == id.to_be_bytes() {
                answered += 1;
            }
        }
    }
    stop.store(true, Ordering::Relaxed);
    for f in flooders {
        f.await.unwrap();
    }
    let flood = sent.load(Ordering::Relaxed);
    assert!(
        flood > 5_000,
        "the flood actually flooded ({flood} queries)"
    );
    assert!(
        answered * 100 >= u32::from(total) * 99,
        "the other prefix got {answered}/{total} answers during a flood of {flood}"
    );
    h.edge.shutdown().await;
}
