//! The test kit against real sockets: the authoritative server's answers, failure modes and
//! counters, and a harness edge answering through it.

use std::net::SocketAddr;
use std::time::Duration;

use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::RecordType;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use tolldns_testkit::{EdgeHarness, Mode, TestServer, TestZone, Transport, framed, query};

/// Upper bound for one exchange; the answers come at once on loopback.
const WAIT: Duration = Duration::from_secs(5);

async fn udp(to: SocketAddr, q: &[u8]) -> Option<Message> {
    udp_within(to, q, WAIT).await
}

/// A UDP exchange; None if no answer came within `wait`.
async fn udp_within(to: SocketAddr, q: &[u8], wait: Duration) -> Option<Message> {
    let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    sock.send_to(q, to).await.unwrap();
    let mut buf = vec![0u8; 65_535];
    let n = tokio::time::timeout(wait, sock.recv(&mut buf))
        .await
        .ok()?
        .unwrap();
    Some(Message::from_vec(&buf[..n]).unwrap())
}

async fn tcp(to: SocketAddr, q: &[u8]) -> Message {
    let mut s = TcpStream::connect(to).await.unwrap();
    s.write_all(&framed(q)).await.unwrap();
    let mut len = [0u8; 2];
    s.read_exact(&mut len).await.unwrap();
    let mut body = vec![0u8; usize::from(u16::from_be_bytes(len))];
    s.read_exact(&mut body).await.unwrap();
    Message::from_vec(&body).unwrap()
}

#[tokio::test]
async fn the_default_zone_answers_like_an_authoritative() {
    let server = TestServer::start(TestZone::default()).await.unwrap();
    let to = server.udp_addr;

    let a = udp(to, &query(1, "a.test", 1)).await.expect("answered");
    assert_eq!((a.id(), a.response_code()), (1, ResponseCode::NoError));
    assert!(a.authoritative());
    assert_eq!(a.answers().len(), 1);

    // CNAME chased inside the zone.
    let www = udp(to, &query(2, "www.test", 1)).await.expect("answered");
    let types: Vec<RecordType> = www.answers().iter().map(|r| r.record_type()).collect();
    assert_eq!(types, [RecordType::CNAME, RecordType::A]);

    // NXDOMAIN and NODATA carry the SOA; outside the zone is REFUSED.
    let nx = udp(to, &query(3, "nope.test", 1)).await.expect("answered");
    assert_eq!(nx.response_code(), ResponseCode::NXDomain);
    assert_eq!(nx.name_servers().len(), 1);
    let nodata = udp(to, &query(4, "txt.test", 1)).await.expect("answered");
    assert_eq!(nodata.response_code(), ResponseCode::NoError);
    assert!(nodata.answers().is_empty());
    assert_eq!(nodata.name_servers().len(), 1);
    let out = udp(to, &query(5, "example.com", 1))
        .await
        .expect("answered");
    assert_eq!(out.response_code(), ResponseCode::Refused);

    // Too large for UDP: TC=1 there, whole over TCP on the same port.
    let big = udp(to, &query(6, "big.test", 16)).await.expect("answered");
    assert!(big.truncated());
    assert!(big.answers().is_empty());
    assert_eq!(server.tcp_addr.port(), to.port());
    let whole = tcp(server.tcp_addr, &query(7, "big.test", 16)).await;
    assert!(!whole.truncated());
    assert_eq!(whole.answers().len(), 1);

    assert_eq!(server.queries_over(Transport::Udp), 6);
    assert_eq!(server.queries_over(Transport::Tcp), 1);
    assert_eq!(server.queries(), 7);
    let log = server.received();
    assert_eq!(log.len(), 7);
    assert_eq!(log[0].transport, Transport::Udp);
    assert!(log[0].recursion_desired);
    assert!(!log[0].edns);
}

#[tokio::test]
async fn failure_modes_change_the_answers() {
    let server = TestServer::start(TestZone::default()).await.unwrap();
    let to = server.udp_addr;
    server.set_mode(Mode::ServFail);
    let r = udp(to, &query(1, "a.test", 1)).await.expect("answered");
    assert_eq!(r.response_code(), ResponseCode::ServFail);
    server.set_mode(Mode::WrongId);
    let r = udp(to, &query(2, "a.test", 1)).await.expect("answered");
    assert_eq!(r.id(), 3);
    server.set_mode(Mode::Drop);
    assert!(
        udp_within(to, &query(3, "a.test", 1), Duration::from_millis(300))
            .await
            .is_none(),
        "a dropped query is never answered"
    );
    assert_eq!(server.mode(), Mode::Drop);
    assert_eq!(server.queries(), 3);
}

#[tokio::test]
async fn a_harness_edge_answers_through_its_test_upstream() {
    let h = EdgeHarness::builder()
        .udp()
        .tcp()
        .configure(|c| c.listen.udp_workers = 1)
        .start()
        .await
        .expect("edge starts");
    let a = udp(h.udp(), &query(9, "a.test", 1))
        .await
        .expect("answered");
    assert_eq!(a.response_code(), ResponseCode::NoError);
    assert_eq!(a.answers().len(), 1);
    let again = tcp(h.tcp(), &query(10, "a.test", 1)).await;
    assert_eq!(again.answers(), a.answers());
    // The second came from the cache.
    assert_eq!(
        h.metric("tolldns_ingress_cache_lookups_total{result=\"hit\"}"),
        1
    );
    assert_eq!(h.upstreams().len(), 1);
    let asked = h
        .upstream()
        .received()
        .iter()
        .filter(|q| {
            q.question
                .as_ref()
                .is_some_and(|(n, _)| n.to_ascii() == "a.test.")
        })
        .count();
    assert_eq!(asked, 1);
    h.edge.shutdown().await;
}

#[test]
#[should_panic(expected = "without a DoQ listener")]
fn an_address_the_harness_has_no_listener_for_panics_with_a_message() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let h = EdgeHarness::builder().udp().start().await.unwrap();
        let _ = h.doq();
    });
}

#[test]
fn framing_prefixes_the_length() {
    assert_eq!(framed(&[1, 2, 3]), [0, 3, 1, 2, 3]);
    let q = query(0x1234, "a.test", 28);
    assert_eq!(&q[..2], [0x12, 0x34]);
    assert_eq!(&q[q.len() - 4..], [0, 28, 0, 1]);
}
