//! Malformed and hostile input: the right DNS error, HTTP status or a clean close.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use tokio_rustls::TlsConnector;
use tolldns_testkit::TEST_SERVER_NAME;

use crate::common::{Harness, harness, query, rcode, udp_exchange};

const WAIT: Duration = Duration::from_millis(1500);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn udp_garbage_truncated_and_oversize() {
    let h = harness(|_| {}).await;
    let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let to = h.udp();
    // Shorter than a header: silently dropped.
    assert!(
        udp_exchange(&sock, to, &[1, 2, 3, 4, 5], Duration::from_millis(300))
            .await
            .is_none()
    );
    // A response (QR set): dropped (no reflection).
    let mut resp = query(7, "a.test", 1);
    resp[2] |= 0x80;
    assert!(
        udp_exchange(&sock, to, &resp, Duration::from_millis(300))
            .await
            .is_none()
    );
    // Truncated question: FORMERR echoing the ID.
    let q = query(0x4242, "a.test", 1);
    let r = udp_exchange(&sock, to, &q[..q.len() - 3], WAIT)
        .await
        .expect("FORMERR");
    assert_eq!(&r[..2], &[0x42, 0x42]);
    assert_eq!(rcode(&r), 1);
    // Random garbage with a parsable header: FORMERR or nothing, never a crash.
    let mut seed = 0x1234_5678u32;
    for i in 0..200u16 {
        let len = 12 + usize::from(i % 300);
        let pkt: Vec<u8> = (0..len)
            .map(|_| {
                seed ^= seed << 13;
                seed ^= seed >> 17;
                seed ^= seed << 5;
                (seed & 0xFF) as u8
            })
            .collect();
        sock.send_to(&pkt, to).await.unwrap();
    }
    // Oversize: a 60 000-byte datagram with two questions.
    let mut big = query(0x0909, "a.test", 1);
    big[5] = 2;
    big.resize(60_000, 0xAB);
    let r = loop {
        let r = udp_exchange(&sock, to, &big, WAIT)
            .await
            .expect("answer to the oversize query");
        if r[..2] == [0x09, 0x09] {
            break r;
        }
    };
    assert_eq!(rcode(&r), 1);
    // Unknown opcode: NOTIMP.
    let mut op = query(0x0A0A, "a.test", 1);
    op[2] = 0x20; // opcode 4 (NOTIFY)
    let r = loop {
        let r = udp_exchange(&sock, to, &op, WAIT).await.expect("NOTIMP");
        if r[..2] == [0x0A, 0x0A] {
            break r;
        }
    };
    assert_eq!(rcode(&r), 4);
    // ANY: RFC 8482 HINFO.
    let r = loop {
        let r = udp_exchange(&sock, to, &query(0x0B0B, "a.test", 255), WAIT)
            .await
            .expect("ANY");
        if r[..2] == [0x0B, 0x0B] {
            break r;
        }
    };
    assert_eq!(rcode(&r), 0);
    assert_eq!(u16::from_be_bytes([r[6], r[7]]), 1);
    assert!(r.windows(7).any(|w| w == b"RFC8482"));
    // Still serving.
    let r = loop {
        let r = udp_exchange(&sock, to, &query(0x0C0C, "a.test", 1), WAIT)
            .await
            .expect("answer");
        if r[..2] == [0x0C, 0x0C] {
            break r;
        }
    };
    assert_eq!(rcode(&r), 0);
    // A large answer over UDP without EDNS: TC=1.
    let r = loop {
        let r = udp_exchange(
            &sock,
            to,
            &query(0x0D0D, "big.test", 16),
            Duration::from_secs(3),
        )
        .await
        .expect("TC");
        if r[..2] == [0x0D, 0x0D] {
            break r;
        }
    };
    assert_ne!(r[2] & 0x02, 0, "TC bit set");
    h.edge.shutdown().await;
}

async fn read_to_close(s: &mut TcpStream, within: Duration) -> bool {
    let mut buf = [0u8; 1024];
    let r = tokio::time::timeout(within, async {
        loop {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await;
    r.is_ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_pipelining_idle_and_slow_clients() {
    let h = harness(|c| c.streams.idle_timeout_ms = 500).await;
    // Pipelined: three queries in one write, three answers (any order).
    let mut s = TcpStream::connect(h.tcp()).await.unwrap();
    let mut batch = Vec::new();
    for (id, name) in [(1u16, "a.test"), (2, "nope.test"), (3, "txt.test")] {
        let q = query(id, name, if id == 3 { 16 } else { 1 });
        batch.extend_from_slice(&(q.len() as u16).to_be_bytes());
        batch.extend_from_slice(&q);
    }
    s.write_all(&batch).await.unwrap();
    let mut ids = Vec::new();
    for _ in 0..3 {
        let mut len = [0u8; 2];
        s.read_exact(&mut len).await.unwrap();
        let mut msg = vec![0u8; usize::from(u16::from_be_bytes(len))];
        s.read_exact(&mut msg).await.unwrap();
        ids.push(u16::from_be_bytes([msg[0], msg[1]]));
    }
    ids.sort_unstable();
    assert_eq!(ids, vec![1, 2, 3]);
    // Garbage with a header: FORMERR over TCP too.
    let bad = [0u8, 14, 0x12, 0x34, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 9, 9];
    s.write_all(&bad).await.unwrap();
    let mut len = [0u8; 2];
    s.read_exact(&mut len).await.unwrap();
    let mut msg = vec![0u8; usize::from(u16::from_be_bytes(len))];
    s.read_exact(&mut msg).await.unwrap();
    assert_eq!(msg[3] & 0x0F, 1);
    // Idle: closed after the idle timeout.
    assert!(
        read_to_close(&mut s, Duration::from_secs(3)).await,
        "idle connection closed"
    );
    // Slow: one byte of the length, then nothing.
    let mut slow = TcpStream::connect(h.tcp()).await.unwrap();
    slow.write_all(&[0]).await.unwrap();
    assert!(
        read_to_close(&mut slow, Duration::from_secs(3)).await,
        "slow client closed"
    );
    // Slow body: a length of 100 and 10 bytes.
    let mut slow = TcpStream::connect(h.tcp()).await.unwrap();
    slow.write_all(&[0, 100, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10])
        .await
        .unwrap();
    assert!(
        read_to_close(&mut slow, Duration::from_secs(3)).await,
        "slow body closed"
    );
    // Less than a header: closed.
    let mut tiny = TcpStream::connect(h.tcp()).await.unwrap();
    tiny.write_all(&[0, 3, 1, 2, 3]).await.unwrap();
    assert!(
        read_to_close(&mut tiny, Duration::from_secs(3)).await,
        "headerless message closes"
    );
    h.edge.shutdown().await;
}

async fn http1(h: &Harness, request: Vec<u8>) -> (u16, String) {
    let cfg = h.cert.client_config(&[b"http/1.1"]).unwrap();
    let connector = TlsConnector::from(Arc::clone(&cfg));
    let tcp = TcpStream::connect(h.doh()).await.unwrap();
    let name = rustls::pki_types::ServerName::try_from(TEST_SERVER_NAME).unwrap();
    let mut tls = connector.connect(name, tcp).await.unwrap();
    // The server may answer (413) and close before reading a whole oversize request.
    let _ = tls.write_all(&request).await;
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(3), tls.read_to_end(&mut out)).await;
    let text = String::from_utf8_lossy(&out).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, text)
}

pub(crate) fn req(method: &str, path: &str, headers: &str, body: &[u8]) -> Vec<u8> {
    let mut r = format!(
        "{method} {path} HTTP/1.1\r\nHost: dns.test\r\nConnection: close\r\nContent-Length: {}\r\n{headers}\r\n",
        body.len()
    )
    .into_bytes();
    r.extend_from_slice(body);
    r
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_doh_requests() {
    let h = harness(|_| {}).await;
    let q = query(0, "a.test", 1);
    let ok = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&q);
    let (st, text) = http1(&h, req("GET", &format!("/dns-query?dns={ok}"), "", b"")).await;
    assert_eq!(st, 200, "{text}");
    assert!(
        text.to_ascii_lowercase()
            .contains("cache-control: max-age="),
        "{text}"
    );
    let (st, _) = http1(
        &h,
        req(
            "PUT",
            "/dns-query",
            "Content-Type: application/dns-message\r\n",
            &q,
        ),
    )
    .await;
    assert_eq!(st, 405);
    let (st, text) = http1(
        &h,
        req("POST", "/dns-query", "Content-Type: text/plain\r\n", &q),
    )
    .await;
    assert_eq!(st, 415);
    assert!(text.contains("application/dns-message"));
    let (st, _) = http1(&h, req("GET", "/dns-query?dns=!!!not-base64!!!", "", b"")).await;
    assert_eq!(st, 400);
    let (st, _) = http1(&h, req("GET", "/dns-query", "", b"")).await;
    assert_eq!(st, 400);
    let big = vec![0u8; 70_000];
    let (st, _) = http1(
        &h,
        req(
            "POST",
            "/dns-query",
            "Content-Type: application/dns-message\r\n",
            &big,
        ),
    )
    .await;
    assert_eq!(st, 413);
    let (st, _) = http1(
        &h,
        req(
            "POST",
            "/other",
            "Content-Type: application/dns-message\r\n",
            &q,
        ),
    )
    .await;
    assert_eq!(st, 404);
    let (st, _) = http1(
        &h,
        req(
            "POST",
            "/dns-query",
            "Content-Type: application/dns-message\r\n",
            &[1, 2, 3],
        ),
    )
    .await;
    assert_eq!(st, 400);
    // A header but a broken question: 200 with FORMERR inside.
    let (st, text) = http1(
        &h,
        req(
            "POST",
            "/dns-query",
            "Content-Type: application/dns-message\r\n",
            &q[..14],
        ),
    )
    .await;
    assert_eq!(st, 200, "{text}");
    h.edge.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_many_pipelined_large_answers_all_arrive() {
    // 60 queries for big.test (≈ 4 kB answers each) in one write: the answers exceed the
    // connection's write batch several times over and must all arrive, each exactly once.
    let h = harness(|_| {}).await;
    let mut s = TcpStream::connect(h.tcp()).await.unwrap();
    let mut batch = Vec::new();
    for id in 1..=60u16 {
        let q = query(id, "big.test", 16);
        batch.extend_from_slice(&u16::try_from(q.len()).unwrap().to_be_bytes());
        batch.extend_from_slice(&q);
    }
    s.write_all(&batch).await.unwrap();
    let mut seen = std::collections::BTreeSet::new();
    for _ in 0..60 {
        let mut len = [0u8; 2];
        tokio::time::timeout(WAIT, s.read_exact(&mut len))
            .await
            .expect("answer in time")
            .unwrap();
        let mut msg = vec![0u8; usize::from(u16::from_be_bytes(len))];
        s.read_exact(&mut msg).await.unwrap();
        assert_eq!(rcode(&msg), 0);
        assert!(msg.len() > 4000);
        assert!(
            seen.insert(u16::from_be_bytes([msg[0], msg[1]])),
            "duplicate answer"
        );
    }
    assert_eq!(seen.len(), 60);
    h.edge.shutdown().await;
}
