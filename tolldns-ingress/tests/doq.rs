//! DNS over QUIC (RFC 9250): a real edge on loopback in front of the test kit's authoritative
//! server, asked by a quinn client written here and by dnspython's DoQ client; answers, receipt
//! leaves with transport `DOQ`, metrics, and the `DOQ_*` error codes of protocol errors.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::RData;
use hickory_proto::rr::rdata::opt::{EdnsCode, EdnsOption};
use quinn::crypto::rustls::QuicClientConfig;
use quinn::{Connection, ConnectionError, Endpoint};
use tolldns_ingress::{DOQ_ALPN, DoqErrorCode, EdgeConfig, TicketPolicy};
use tolldns_receipts::Transport;
use tolldns_testkit::{EdgeHarness, framed, issue_token, query, rfc9578_issuer_key};
use tolldns_tickets::ticket_id;

/// An edge with only a DoQ listener, recording receipts; `tweak` changes the configuration first.
async fn start(tweak: impl FnOnce(&mut EdgeConfig)) -> EdgeHarness {
    EdgeHarness::builder()
        .doq()
        .receipts()
        .configure(tweak)
        .start()
        .await
        .expect("edge starts")
}

/// A client endpoint trusting the test CA, offering `doq`, with keep-alives so that only the
/// server's timers end a quiet connection.
fn client(h: &EdgeHarness, early_data: bool) -> Endpoint {
    let mut tls = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_protocol_versions(&[&rustls::version::TLS13])
    .unwrap()
    .with_root_certificates(h.cert.root_store())
    .with_no_client_auth();
    tls.alpn_protocols = vec![DOQ_ALPN.to_vec()];
    tls.enable_early_data = early_data;
    let mut cfg = quinn::ClientConfig::new(Arc::new(QuicClientConfig::try_from(tls).unwrap()));
    let mut transport = quinn::TransportConfig::default();
    transport.keep_alive_interval(Some(Duration::from_millis(200)));
    cfg.transport_config(Arc::new(transport));
    let mut endpoint = Endpoint::client(SocketAddr::from(([127, 0, 0, 1], 0))).unwrap();
    endpoint.set_default_client_config(cfg);
    endpoint
}

async fn connect(h: &EdgeHarness, client: &Endpoint) -> Connection {
    client
        .connect(h.doq(), "localhost")
        .unwrap()
        .await
        .expect("DoQ handshake")
}

/// Send `stream` on a new bidirectional stream, finish it, and read the whole answer stream.
async fn exchange_raw(conn: &Connection, stream: &[u8]) -> Result<Vec<u8>, String> {
    let (mut send, mut recv) = conn.open_bi().await.map_err(|e| e.to_string())?;
    send.write_all(stream).await.map_err(|e| e.to_string())?;
    send.finish().map_err(|e| e.to_string())?;
    recv.read_to_end(65_537).await.map_err(|e| e.to_string())
}

/// One query, one framed answer; returns the message.
async fn exchange(conn: &Connection, msg: &[u8]) -> Message {
    let answer = exchange_raw(conn, &framed(msg)).await.expect("an answer");
    let len = usize::from(u16::from_be_bytes([answer[0], answer[1]]));
    assert_eq!(len, answer.len() - 2, "one framed message, then FIN");
    Message::from_vec(&answer[2..]).expect("a DNS message")
}

fn a_records(m: &Message) -> Vec<std::net::Ipv4Addr> {
    m.answers()
        .iter()
        .filter_map(|r| match r.data() {
            RData::A(a) => Some(a.0),
            _ => None,
        })
        .collect()
}

/// The DoQ error code the server closed `conn` with.
async fn close_code(conn: &Connection) -> Option<DoqErrorCode> {
    let closed = tokio::time::timeout(Duration::from_secs(5), conn.closed())
        .await
        .expect("the server closes the connection");
    match closed {
        ConnectionError::ApplicationClosed(c) => DoqErrorCode::from_code(c.error_code.into_inner()),
        other => panic!("closed otherwise: {other}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quinn_client_is_answered_and_doq_leaves_are_recorded() {
    let mut h = start(|_| {}).await;
    let client = client(&h, false);
    let conn = connect(&h, &client).await;

    let first = exchange(&conn, &query(0, "a.test", 1)).await;
    assert_eq!(first.id(), 0);
    assert_eq!(first.response_code(), ResponseCode::NoError);
    assert_eq!(
        a_records(&first),
        vec![std::net::Ipv4Addr::new(192, 0, 2, 1)]
    );
    // Again, from the cache, on another stream of the same connection.
    let again = exchange(&conn, &query(0, "A.TEST", 1)).await;
    assert_eq!(
        a_records(&again),
        vec![std::net::Ipv4Addr::new(192, 0, 2, 1)]
    );
    // Several streams at once.
    let names = ["txt.test", "www.test", "nope.test"];
    let answers = futures_join(&conn, &names).await;
    assert_eq!(answers[0].response_code(), ResponseCode::NoError);
    assert!(!answers[0].answers().is_empty());
    assert_eq!(answers[1].response_code(), ResponseCode::NoError);
    assert_eq!(answers[2].response_code(), ResponseCode::NXDomain);
    let answered = 5u64;
    assert_eq!(
        h.metric("tolldns_ingress_queries_total{transport=\"doq\"}"),
        answered
    );
    conn.close(DoqErrorCode::NoError.code().into(), b"");

    let leaves = h.edge.shutdown().await;
    assert_eq!(leaves, answered);
    let batch = h.batches.recv().await.expect("batch delivered at shutdown");
    batch
        .receipt()
        .verify_signature()
        .expect("signature verifies");
    let leaves = batch.leaves();
    assert_eq!(leaves.len() as u64, answered);
    assert!(leaves.iter().all(|l| l.transport == Transport::Doq));
    assert_eq!(leaves.iter().filter(|l| l.flags.cache_hit).count(), 1);
}

async fn futures_join(conn: &Connection, names: &[&str]) -> Vec<Message> {
    let mut tasks = Vec::new();
    for name in names {
        let conn = conn.clone();
        let q = query(0, name, 16);
        tasks.push(tokio::spawn(async move { exchange(&conn, &q).await }));
    }
    let mut out = Vec::new();
    for t in tasks {
        out.push(t.await.unwrap());
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn protocol_errors_close_the_connection_with_doq_protocol_error() {
    let h = start(|_| {}).await;
    let client = client(&h, false);

    // A Message ID other than 0 (§4.2.1).
    let conn = connect(&h, &client).await;
    assert!(
        exchange_raw(&conn, &framed(&query(7, "a.test", 1)))
            .await
            .is_err()
    );
    assert_eq!(close_code(&conn).await, Some(DoqErrorCode::ProtocolError));

    // Two queries on one stream.
    let conn = connect(&h, &client).await;
    let q = framed(&query(0, "a.test", 1));
    let two = [q.clone(), q.clone()].concat();
    assert!(exchange_raw(&conn, &two).await.is_err());
    assert_eq!(close_code(&conn).await, Some(DoqErrorCode::ProtocolError));

    // FIN before the whole message.
    let conn = connect(&h, &client).await;
    assert!(exchange_raw(&conn, &q[..q.len() - 3]).await.is_err());
    assert_eq!(close_code(&conn).await, Some(DoqErrorCode::ProtocolError));

    // The edns-tcp-keepalive option (§5.5.2).
    let conn = connect(&h, &client).await;
    let mut keepalive = query(0, "a.test", 1);
    keepalive[10..12].copy_from_slice(&1u16.to_be_bytes());
    keepalive.extend_from_slice(&[0, 0, 41, 0x04, 0xD0, 0, 0, 0, 0, 0, 4, 0, 11, 0, 0]);
    assert!(exchange_raw(&conn, &framed(&keepalive)).await.is_err());
    assert_eq!(close_code(&conn).await, Some(DoqErrorCode::ProtocolError));

    // A unidirectional stream from the client.
    let conn = connect(&h, &client).await;
    let mut uni = conn.open_uni().await.unwrap();
    uni.write_all(&q).await.unwrap();
    uni.finish().unwrap();
    assert_eq!(close_code(&conn).await, Some(DoqErrorCode::ProtocolError));

    // The same query, well formed, is answered.
    let conn = connect(&h, &client).await;
    let ok = exchange(&conn, &query(0, "a.test", 1)).await;
    assert_eq!(a_records(&ok), vec![std::net::Ipv4Addr::new(192, 0, 2, 1)]);
    h.edge.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_query_without_fin_is_cancelled_after_the_idle_time() {
    let h = start(|_| {}).await;
    let client = client(&h, false);
    let conn = connect(&h, &client).await;
    let (mut send, mut recv) = conn.open_bi().await.unwrap();
    send.write_all(&framed(&query(0, "a.test", 1)))
        .await
        .unwrap();
    // No finish: the server waits for the FIN for the idle time, then resets the stream.
    let err = tokio::time::timeout(Duration::from_secs(5), recv.read_to_end(65_537))
        .await
        .expect("the server gives up on the stream")
        .expect_err("no answer without FIN");
    match err {
        quinn::ReadToEndError::Read(quinn::ReadError::Reset(code)) => assert_eq!(
            DoqErrorCode::from_code(code.into_inner()),
            Some(DoqErrorCode::RequestCancelled)
        ),
        other => panic!("unexpected {other}"),
    }
    // The connection itself is still usable.
    let ok = exchange(&conn, &query(0, "a.test", 1)).await;
    assert_eq!(ok.response_code(), ResponseCode::NoError);
    h.edge.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zero_rtt_is_refused() {
    let h = start(|_| {}).await;
    let client = client(&h, true);
    // A first connection leaves a session ticket with the client.
    let conn = connect(&h, &client).await;
    exchange(&conn, &query(0, "a.test", 1)).await;
    conn.close(DoqErrorCode::NoError.code().into(), b"");
    // The next one may resume, but never with early data.
    let connecting = client.connect(h.doq(), "localhost").unwrap();
    match connecting.into_0rtt() {
        Ok((conn, accepted)) => {
            assert!(!accepted.await, "the server accepted 0-RTT data");
            exchange(&conn, &query(0, "a.test", 1)).await;
        }
        Err(connecting) => {
            let conn = connecting.await.expect("handshake");
            exchange(&conn, &query(0, "a.test", 1)).await;
        }
    }
    h.edge.shutdown().await;
}

/// dnspython's DoQ client (`pip install 'dnspython[doq]'`). Outside CI a machine without it
/// skips with a message; in CI (`CI` set) the client must be there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dnspython_doq_client_is_answered() {
    let have = std::process::Command::new("python3")
        .args(["-c", "import dns.quic, aioquic"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !have {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI needs dnspython's DoQ client: pip install 'dnspython[doq]'"
        );
        println!("skipped: python3 with dnspython[doq] is not installed");
        return;
    }
    let mut h = start(|_| {}).await;
    let ca = std::env::temp_dir().join(format!("tolldns-doq-ca-{}.pem", std::process::id()));
    std::fs::write(&ca, &h.cert.ca_pem).unwrap();
    let script = r#"
import sys, dns.message, dns.query, dns.rcode
port, ca = int(sys.argv[1]), sys.argv[2]
for use_edns in (False, 0):
    q = dns.message.make_query("a.test.", "A", use_edns=use_edns)
    r = dns.query.quic(q, "127.0.0.1", port=port, timeout=5, verify=ca, hostname="localhost")
    addrs = sorted(rr.to_text() for rrset in r.answer for rr in rrset)
    print(dns.rcode.to_text(r.rcode()), r.id, " ".join(addrs))
"#;
    let port = h.doq().port().to_string();
    let ca_arg = ca.to_string_lossy().into_owned();
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new("python3")
            .args(["-c", script, &port, &ca_arg])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let _ = std::fs::remove_file(&ca);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "dnspython failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        stdout.lines().collect::<Vec<_>>(),
        ["NOERROR 0 192.0.2.1", "NOERROR 0 192.0.2.1"]
    );
    let leaves = h.edge.shutdown().await;
    assert_eq!(leaves, 2);
    let batch = h.batches.recv().await.expect("batch delivered at shutdown");
    assert_eq!(batch.leaves().len(), 2);
    assert!(batch.leaves().iter().all(|l| l.transport == Transport::Doq));
}

/// `q` with an OPT record carrying one option.
fn with_option(mut q: Vec<u8>, code: u16, data: &[u8]) -> Vec<u8> {
    q[10..12].copy_from_slice(&1u16.to_be_bytes());
    q.extend_from_slice(&[0, 0, 41, 0x04, 0xD0, 0, 0, 0, 0]);
    q.extend_from_slice(&u16::try_from(data.len() + 4).unwrap().to_be_bytes());
    q.extend_from_slice(&code.to_be_bytes());
    q.extend_from_slice(&u16::try_from(data.len()).unwrap().to_be_bytes());
    q.extend_from_slice(data);
    q
}

/// The session ticket option of an answer.
fn session_of(m: &Message) -> Option<Vec<u8>> {
    let code = EdnsCode::from(tolldns_ingress::wire::TICKET_OPTION_CODE);
    match m.extensions().as_ref()?.option(code)? {
        EdnsOption::Unknown(_, data) => Some(data.clone()),
        _ => None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tickets_ride_in_edns_options_under_the_doq_policy() {
    let issuer = rfc9578_issuer_key();
    let token = issue_token(&issuer, "issuer.test", "tolldns-test").expect("a token");
    let spki = base64::engine::general_purpose::URL_SAFE.encode(issuer.public().spki());

    let mut h = start(|c| {
        c.tickets.issuer_name = "issuer.test".to_owned();
        c.tickets.deployment = "tolldns-test".to_owned();
        c.tickets.issuer_keys = vec![spki];
        // DoQ has a policy of its own: DoT's stays optional.
        c.tickets.doq = TicketPolicy::Required;
    })
    .await;
    let client = client(&h, false);
    let conn = connect(&h, &client).await;
    // Unticketed: refused.
    let refused = exchange(&conn, &query(0, "a.test", 1)).await;
    assert_eq!(refused.response_code(), ResponseCode::Refused);
    // The token once, in its EDNS option: answered, with a session ticket.
    let q = with_option(
        query(0, "a.test", 1),
        tolldns_ingress::wire::TOKEN_OPTION_CODE,
        &token,
    );
    let first = exchange(&conn, &q).await;
    assert_eq!(first.response_code(), ResponseCode::NoError);
    let session = session_of(&first).expect("a session ticket");
    assert_eq!(session.len(), 16);
    // Then the session ticket.
    let q = with_option(
        query(0, "txt.test", 16),
        tolldns_ingress::wire::TICKET_OPTION_CODE,
        &session,
    );
    let second = exchange(&conn, &q).await;
    assert_eq!(second.response_code(), ResponseCode::NoError);
    assert_eq!(h.metric("tolldns_ingress_tickets_redeemed_total"), 1);

    h.edge.shutdown().await;
    let batch = h.batches.recv().await.expect("batch delivered at shutdown");
    let leaves = batch.leaves();
    assert_eq!(leaves.len(), 3);
    assert!(leaves.iter().all(|l| l.transport == Transport::Doq));
    let id = ticket_id(&token);
    assert_eq!(leaves.iter().filter(|l| l.ticket == id).count(), 2);
    assert_eq!(leaves.iter().filter(|l| l.ticket == [0; 16]).count(), 1);
}
