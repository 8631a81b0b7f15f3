//! Toll tickets at the edge with real sockets: a token redeemed over each transport opens a
//! session whose queries all carry the token's ticket id in their leaves; every bad ticket is
//! refused with its own reason, told to the client and counted.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::{URL_SAFE, URL_SAFE_NO_PAD};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use tokio_rustls::TlsConnector;
use tolldns_ingress::wire::{TICKET_OPTION_CODE, TOKEN_OPTION_CODE, scan_response};
use tolldns_ingress::{EdgeConfig, TicketPolicy};
use tolldns_receipts::{RcodeClass, Transport};
use tolldns_testkit::{TEST_SERVER_NAME, issue_token, rfc9578_issuer_key};
use tolldns_tickets::{IssuerSecretKey, TokenChallenge, ticket_id};

use crate::bad_input::req;
use crate::common::{Harness, harness, query, rcode, udp_exchange};

const ISSUER: &str = "issuer.test";
const DEPLOYMENT: &str = "tolldns-test";
const REFUSED: u8 = 5;

/// Issuer keys: A (the RFC 9578 vector key, accepted), B (never configured), C (retired).
fn keys() -> &'static [IssuerSecretKey; 3] {
    static KEYS: OnceLock<[IssuerSecretKey; 3]> = OnceLock::new();
    KEYS.get_or_init(|| {
        [
            rfc9578_issuer_key(),
            IssuerSecretKey::generate(2048).unwrap(),
            IssuerSecretKey::generate(2048).unwrap(),
        ]
    })
}

fn token_from(issuer: &IssuerSecretKey, deployment: &str) -> Vec<u8> {
    issue_token(issuer, ISSUER, deployment).expect("a token")
}

fn token() -> Vec<u8> {
    token_from(&keys()[0], DEPLOYMENT)
}

fn tickets_on(c: &mut EdgeConfig) {
    let k = keys();
    c.tickets.issuer_name = ISSUER.to_owned();
    c.tickets.deployment = DEPLOYMENT.to_owned();
    c.tickets.issuer_keys = vec![URL_SAFE.encode(k[0].public().spki())];
    c.tickets.retired_issuer_keys = vec![URL_SAFE_NO_PAD.encode(k[2].public().spki())];
}

/// `q` with an OPT record carrying `options`.
fn with_options(mut q: Vec<u8>, options: &[(u16, &[u8])]) -> Vec<u8> {
    let mut rdata = Vec::new();
    for (code, data) in options {
        rdata.extend_from_slice(&code.to_be_bytes());
        rdata.extend_from_slice(&u16::try_from(data.len()).unwrap().to_be_bytes());
        rdata.extend_from_slice(data);
    }
    q[11] = 1;
    q.extend_from_slice(&[0, 0, 41, 0x04, 0xD0, 0, 0, 0, 0]);
    q.extend_from_slice(&u16::try_from(rdata.len()).unwrap().to_be_bytes());
    q.extend_from_slice(&rdata);
    q
}

/// The EDNS options of a response.
fn options(resp: &[u8]) -> Vec<(u16, Vec<u8>)> {
    let mut m = resp.to_vec();
    let info = scan_response(&mut m, None).expect("a well-formed response");
    let Some(opt) = info.opt else {
        return Vec::new();
    };
    let rdata = &resp[opt.start + 11..opt.end];
    let mut out = Vec::new();
    let mut i = 0;
    while i + 4 <= rdata.len() {
        let code = u16::from_be_bytes([rdata[i], rdata[i + 1]]);
        let len = usize::from(u16::from_be_bytes([rdata[i + 2], rdata[i + 3]]));
        out.push((code, rdata[i + 4..i + 4 + len].to_vec()));
        i += 4 + len;
    }
    out
}

fn session_of(resp: &[u8]) -> Option<[u8; 16]> {
    options(resp)
        .into_iter()
        .find(|(c, _)| *c == TICKET_OPTION_CODE)
        .map(|(_, d)| d.try_into().expect("16-byte session ticket"))
}

/// The extended error text of a response (`info code 18`, then the text).
fn ede(resp: &[u8]) -> Option<String> {
    options(resp)
        .into_iter()
        .find(|(c, _)| *c == 15)
        .map(|(_, d)| {
            assert_eq!(&d[..2], &[0, 18], "EDE info code Prohibited");
            String::from_utf8(d[2..].to_vec()).unwrap()
        })
}

async fn udp(h: &Harness, msg: &[u8]) -> Vec<u8> {
    let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    udp_exchange(&sock, h.udp(), msg, Duration::from_secs(5))
        .await
        .expect("an answer")
}

async fn stream_exchange<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>(
    s: &mut S,
    msg: &[u8],
) -> Vec<u8> {
    let mut framed = u16::try_from(msg.len()).unwrap().to_be_bytes().to_vec();
    framed.extend_from_slice(msg);
    s.write_all(&framed).await.unwrap();
    let mut len = [0u8; 2];
    tokio::time::timeout(Duration::from_secs(5), s.read_exact(&mut len))
        .await
        .unwrap()
        .unwrap();
    let mut buf = vec![0u8; usize::from(u16::from_be_bytes(len))];
    s.read_exact(&mut buf).await.unwrap();
    buf
}

/// Status, header block and body of a DoH GET (HTTP/1.1 over TLS).
async fn doh_get(h: &Harness, q: &[u8], headers: &str) -> (u16, String, Vec<u8>) {
    let dns = URL_SAFE_NO_PAD.encode(q);
    let request = req("GET", &format!("/dns-query?dns={dns}"), headers, b"");
    let cfg = h.cert.client_config(&[b"http/1.1"]).unwrap();
    let name = rustls::pki_types::ServerName::try_from(TEST_SERVER_NAME).unwrap();
    let mut tls = TlsConnector::from(cfg)
        .connect(name, TcpStream::connect(h.doh()).await.unwrap())
        .await
        .unwrap();
    tls.write_all(&request).await.unwrap();
    let mut raw = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), tls.read_to_end(&mut raw)).await;
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a header block");
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, head, raw[split + 4..].to_vec())
}

fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines().find_map(|l| {
        let (n, v) = l.split_once(':')?;
        n.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_redeemed_over_every_transport_bind_their_leaves() {
    let mut h = harness(tickets_on).await;
    let mut expected = Vec::new();

    // UDP: the token once, then its session.
    let t = token();
    let r = udp(
        &h,
        &with_options(query(1, "a.test", 1), &[(TOKEN_OPTION_CODE, &t)]),
    )
    .await;
    assert_eq!(rcode(&r), 0);
    let session = session_of(&r).expect("the edge returns a session ticket");
    let r = udp(
        &h,
        &with_options(query(2, "a.test", 1), &[(TICKET_OPTION_CODE, &session)]),
    )
    .await;
    assert_eq!(rcode(&r), 0);
    assert_eq!(
        session_of(&r),
        None,
        "the session ticket is sent only when it changes"
    );
    expected.push((Transport::Udp, ticket_id(&t), 2));

    // TCP: one connection, redeem and two more queries.
    let t = token();
    let mut tcp = TcpStream::connect(h.tcp()).await.unwrap();
    let r = stream_exchange(
        &mut tcp,
        &with_options(query(3, "a.test", 1), &[(TOKEN_OPTION_CODE, &t)]),
    )
    .await;
    let session = session_of(&r).expect("session over TCP");
    for id in 4..6 {
        let r = stream_exchange(
            &mut tcp,
            &with_options(query(id, "nope.test", 1), &[(TICKET_OPTION_CODE, &session)]),
        )
        .await;
        assert_eq!(rcode(&r), 3, "NXDOMAIN, served and charged");
    }
    expected.push((Transport::Tcp, ticket_id(&t), 3));

    // DoT.
    let t = token();
    let cfg = h.cert.client_config(&[b"dot"]).unwrap();
    let name = rustls::pki_types::ServerName::try_from(TEST_SERVER_NAME).unwrap();
    let mut dot = TlsConnector::from(Arc::clone(&cfg))
        .connect(name, TcpStream::connect(h.dot()).await.unwrap())
        .await
        .unwrap();
    let r = stream_exchange(
        &mut dot,
        &with_options(query(6, "a.test", 1), &[(TOKEN_OPTION_CODE, &t)]),
    )
    .await;
    let session = session_of(&r).expect("session over DoT");
    let r = stream_exchange(
        &mut dot,
        &with_options(query(7, "a.test", 28), &[(TICKET_OPTION_CODE, &session)]),
    )
    .await;
    assert_eq!(rcode(&r), 0);
    expected.push((Transport::Dot, ticket_id(&t), 2));

    // DoH: RFC 9577 Authorization header, then the session header.
    let t = token();
    let auth = tolldns_tickets::auth::authorization(&t);
    let (status, head, body) = doh_get(
        &h,
        &query(0, "a.test", 1),
        &format!("Authorization: {auth}\r\n"),
    )
    .await;
    assert_eq!(status, 200, "{head}");
    assert!(
        header(&head, "cache-control")
            .unwrap()
            .starts_with("private"),
        "{head}"
    );
    let session = header(&head, "tolldns-session")
        .expect("session header")
        .to_owned();
    assert_eq!(rcode(&body), 0);
    let (status, head, _) = doh_get(
        &h,
        &query(0, "a.test", 16),
        &format!("TollDNS-Ticket: {session}\r\n"),
    )
    .await;
    assert_eq!(status, 200, "{head}");
    expected.push((Transport::Doh, ticket_id(&t), 2));

    // An unticketed query is answered and earns nothing.
    let r = udp(&h, &query(9, "a.test", 1)).await;
    assert_eq!(rcode(&r), 0);

    assert_eq!(h.metric("tolldns_ingress_tickets_redeemed_total"), 4);
    assert_eq!(h.metric("tolldns_ingress_ticketed_queries_total"), 9);
    h.edge.shutdown().await;
    let batch = h.batches.recv().await.expect("batch");
    let leaves = batch.leaves();
    for (transport, id, n) in expected {
        let mine: Vec<_> = leaves.iter().filter(|l| l.ticket == id).collect();
        assert_eq!(mine.len(), n, "{transport:?}: leaves bound to the token");
        assert!(mine.iter().all(|l| l.transport == transport));
    }
    assert_eq!(leaves.iter().filter(|l| l.ticket == [0; 16]).count(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_tickets_are_refused_told_and_counted() {
    let h = harness(|c| {
        tickets_on(c);
        c.tickets.queries_per_token = 2;
        c.tickets.tcp = TicketPolicy::Required;
    })
    .await;
    let k = keys();
    let good = token();
    let mut forged = good.clone();
    *forged.last_mut().unwrap() ^= 1;
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("bad_signature", forged),
        ("wrong_issuer", token_from(&k[1], DEPLOYMENT)),
        ("expired_key", token_from(&k[2], DEPLOYMENT)),
        ("wrong_challenge", token_from(&k[0], "another-network")),
        ("malformed", good[..50].to_vec()),
    ];
    for (i, (reason, t)) in cases.iter().enumerate() {
        let id = u16::try_from(i).unwrap();
        let r = udp(
            &h,
            &with_options(query(id, "a.test", 1), &[(TOKEN_OPTION_CODE, t)]),
        )
        .await;
        assert_eq!(rcode(&r), REFUSED, "{reason}");
        assert_eq!(
            ede(&r).as_deref(),
            Some(format!("toll ticket refused: {reason}").as_str())
        );
        assert_eq!(session_of(&r), None);
        assert_eq!(
            h.metric(&format!(
                "tolldns_ingress_ticket_refusals_total{{reason=\"{reason}\"}}"
            )),
            1,
            "{reason} counted"
        );
    }
    // Replayed: the good token works once.
    let first = udp(
        &h,
        &with_options(query(20, "a.test", 1), &[(TOKEN_OPTION_CODE, &good)]),
    )
    .await;
    let session = session_of(&first).unwrap();
    let again = udp(
        &h,
        &with_options(query(21, "a.test", 1), &[(TOKEN_OPTION_CODE, &good)]),
    )
    .await;
    assert_eq!(rcode(&again), REFUSED);
    assert_eq!(
        ede(&again).as_deref(),
        Some("toll ticket refused: replayed")
    );
    // Over quota (2 per token): the redemption was the first, one more, then refused.
    let q = |id| with_options(query(id, "a.test", 1), &[(TICKET_OPTION_CODE, &session)]);
    assert_eq!(rcode(&udp(&h, &q(22)).await), 0);
    let over = udp(&h, &q(23)).await;
    assert_eq!(rcode(&over), REFUSED);
    assert_eq!(
        ede(&over).as_deref(),
        Some("toll ticket refused: quota_exhausted")
    );
    // A session ticket the edge never issued: of the current key generation (0), unknown;
    // of another generation, expired.
    let mut forged_session = [7u8; 16];
    forged_session[0] = 0;
    let r = udp(
        &h,
        &with_options(
            query(24, "a.test", 1),
            &[(TICKET_OPTION_CODE, &forged_session)],
        ),
    )
    .await;
    assert_eq!(
        ede(&r).as_deref(),
        Some("toll ticket refused: unknown_session")
    );
    let r = udp(
        &h,
        &with_options(query(27, "a.test", 1), &[(TICKET_OPTION_CODE, &[7u8; 16])]),
    )
    .await;
    assert_eq!(
        ede(&r).as_deref(),
        Some("toll ticket refused: session_expired")
    );
    // TCP requires tickets: an unticketed query is refused; UDP (optional) answers it.
    let mut tcp = TcpStream::connect(h.tcp()).await.unwrap();
    let r = stream_exchange(&mut tcp, &with_options(query(25, "a.test", 1), &[])).await;
    assert_eq!(rcode(&r), REFUSED);
    assert_eq!(
        ede(&r).as_deref(),
        Some("toll ticket refused: ticket_required")
    );
    assert_eq!(rcode(&udp(&h, &query(26, "a.test", 1)).await), 0);
    // DoH: a replayed token and a garbage credential get 401 with the challenge.
    let auth = tolldns_tickets::auth::authorization(&good);
    let (status, head, body) = doh_get(
        &h,
        &query(0, "a.test", 1),
        &format!("Authorization: {auth}\r\n"),
    )
    .await;
    assert_eq!(status, 401);
    let challenge = header(&head, "www-authenticate").expect("challenge");
    let parsed = tolldns_tickets::auth::parse_www_authenticate(challenge).unwrap();
    assert_eq!(parsed[0].token_key, k[0].public().spki());
    let expect = TokenChallenge::deployment(ISSUER, DEPLOYMENT)
        .to_bytes()
        .unwrap();
    assert_eq!(parsed[0].challenge, expect);
    assert_eq!(
        String::from_utf8_lossy(&body).trim(),
        "toll ticket refused: replayed"
    );
    let (status, _, _) = doh_get(
        &h,
        &query(0, "a.test", 1),
        "Authorization: PrivateToken token=\"!!\"\r\n",
    )
    .await;
    assert_eq!(status, 401);
    for (reason, n) in [
        ("replayed", 2),
        ("quota_exhausted", 1),
        ("unknown_session", 1),
        ("ticket_required", 1),
        ("malformed", 2),
    ] {
        assert_eq!(
            h.metric(&format!(
                "tolldns_ingress_ticket_refusals_total{{reason=\"{reason}\"}}"
            )),
            n,
            "{reason}"
        );
    }
    // Refused queries are answered: their leaves say so, with no ticket.
    let mut h = h;
    h.edge.shutdown().await;
    let batch = h.batches.recv().await.unwrap();
    let refused = batch
        .leaves()
        .iter()
        .filter(|l| l.rcode_class == RcodeClass::PolicyBlocked)
        .collect::<Vec<_>>();
    assert!(refused.len() >= 9, "{} refused leaves", refused.len());
    assert!(refused.iter().all(|l| l.ticket == [0; 16]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unticketed_flood_does_not_starve_sessions() {
    // A tiny per-prefix budget: the whole loopback /24 gets 20 queries a second.
    let h = harness(|c| {
        tickets_on(c);
        c.admission.rate_per_prefix = 20;
        c.admission.burst_per_prefix = 20;
    })
    .await;
    let t = token();
    let r = udp(
        &h,
        &with_options(query(1, "a.test", 1), &[(TOKEN_OPTION_CODE, &t)]),
    )
    .await;
    let session = session_of(&r).expect("session");

    // 300 unticketed queries at once from the same prefix: most are over its budget.
    let flood = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    for i in 0..300u16 {
        flood
            .send_to(&query(i, "a.test", 1), h.udp())
            .await
            .unwrap();
    }
    let mut answered = 0;
    let mut buf = vec![0u8; 4096];
    while let Ok(Ok(_)) =
        tokio::time::timeout(Duration::from_millis(300), flood.recv_from(&mut buf)).await
    {
        answered += 1;
    }
    assert!(
        answered < 100,
        "{answered} unticketed answers: the budget held"
    );
    assert!(h.metric("tolldns_ingress_admission_total{decision=\"rate_limited\"}") >= 200);

    // The session's queries, from the same exhausted prefix, are all answered.
    let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    for i in 0..100u16 {
        let q = with_options(
            query(1000 + i, "a.test", 1),
            &[(TICKET_OPTION_CODE, &session)],
        );
        let r = udp_exchange(&sock, h.udp(), &q, Duration::from_secs(3))
            .await
            .expect("a ticketed query is answered while the prefix is over its budget");
        assert_eq!(rcode(&r), 0);
    }
    assert_eq!(h.metric("tolldns_ingress_ticketed_queries_total"), 101);
}
