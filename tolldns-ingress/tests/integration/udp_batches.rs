//! The UDP listener's batched reads and sends.

use std::collections::HashSet;

use hickory_proto::op::{Message, ResponseCode};
use tokio::net::UdpSocket;
use tolldns_testkit::{EdgeHarness, query};

/// A real edge: queries from many client sockets, all queued before the edge reads, are read and
/// answered in batches; every client gets exactly its own answers, and every answer is completed
/// (counted).
#[tokio::test]
async fn udp_batches_answer_each_client_on_its_own_socket() {
    let h = EdgeHarness::builder()
        .udp()
        .configure(|c| c.listen.udp_workers = 1)
        .start()
        .await
        .expect("edge starts");
    let addr = h.udp();

    // A miss first (answered from its own task), so that the rest are cache hits.
    let warm = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    warm.send_to(&query(7, "a.test", 1), addr).await.unwrap();
    let mut buf = vec![0u8; 4096];
    let n = warm.recv(&mut buf).await.unwrap();
    assert_eq!(Message::from_vec(&buf[..n]).unwrap().id(), 7);

    const CLIENTS: u16 = 40;
    let mut clients = Vec::new();
    for c in 0..CLIENTS {
        let s = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        for k in 0..2 {
            s.send_to(&query(c * 2 + k + 100, "a.test", 1), addr)
                .await
                .unwrap();
        }
        clients.push(s);
    }
    for (c, s) in (0..CLIENTS).zip(&clients) {
        let mut ids = HashSet::new();
        for _ in 0..2 {
            let n = s.recv(&mut buf).await.unwrap();
            let m = Message::from_vec(&buf[..n]).unwrap();
            assert_eq!(m.response_code(), ResponseCode::NoError);
            assert_eq!(m.answers().len(), 1);
            ids.insert(m.id());
        }
        assert_eq!(ids, HashSet::from([c * 2 + 100, c * 2 + 101]));
    }

    let sample = "tolldns_ingress_responses_total{transport=\"udp\",rcode=\"noerror\"}";
    assert_eq!(
        h.metric(sample),
        u64::from(CLIENTS) * 2 + 1,
        "{}",
        h.metrics_text()
    );
    h.edge.shutdown().await;
}
