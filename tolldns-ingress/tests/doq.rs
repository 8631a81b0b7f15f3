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
use tokio::sync::mpsc;
use tolldns_core::NameKey;
use tolldns_ingress::testkit::{TestCert, TestServer, TestZone};
use tolldns_ingress::{
    ChannelSink, DOQ_ALPN, DoqErrorCode, Edge, EdgeConfig, EdgeHandle, ReceiptsSetup, SignedBatch,
    StaticNameKey, TicketPolicy,
};
use tolldns_receipts::Transport;
use tolldns_tickets::{IssuerSecretKey, TokenChallenge, client, ticket_id};

struct DoqEdge {
    // Kept alive: the edge forwards to it.
    _upstream: TestServer,
    edge: EdgeHandle,
    cert: TestCert,
    batches: mpsc::Receiver<SignedBatch>,
    registry: prometheus_client::registry::Registry,
}

impl DoqEdge {
    async fn start(tweak: impl FnOnce(&mut EdgeConfig)) -> Self {
        let upstream = TestServer::start(TestZone::default())
            .await
            .expect("testkit server");
        let cert = TestCert::generate().expect("test certificate");
        let mut cfg = EdgeConfig::default();
        cfg.listen.udp = Vec::new();
        cfg.listen.tcp = Vec::new();
        cfg.listen.doq = vec![SocketAddr::from(([127, 0, 0, 1], 0))];
        cfg.upstream.servers = vec![upstream.udp_upstream().to_string()];
        cfg.receipts.window_secs = 3600;
        cfg.streams.idle_timeout_ms = 1_000;
        tweak(&mut cfg);
        let tls = cert.server_config(&[]).expect("server config");
        let (sink, batches) = ChannelSink::new(16);
        let receipts = ReceiptsSetup {
            signing_key: ed25519_dalek::SigningKey::from_bytes(&[0x11; 32]),
            name_keys: Arc::new(StaticNameKey(NameKey([0x5A; 32]))),
            sink: Arc::new(sink),
        };
        let mut registry = prometheus_client::registry::Registry::default();
        let edge = Edge::start(cfg, Some(tls), Some(receipts), &mut registry)
            .await
            .expect("edge starts");
        Self {
            _upstream: upstream,
            edge,
            cert,
            batches,
            registry,
        }
    }

    fn addr(&self) -> SocketAddr {
        self.edge.local_addrs().doq[0]
    }

    fn metric(&self, sample: &str) -> u64 {
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &self.registry).unwrap();
        text.lines()
            .find_map(|l| l.strip_prefix(sample).and_then(|v| v.trim().parse().ok()))
            .unwrap_or(0)
    }

    /// A client endpoint trusting the test CA, offering `doq`, with keep-alives so that only
    /// the server's timers end a quiet connection.
    fn client(&self, early_data: bool) -> Endpoint {
        let mut tls = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .with_root_certificates(self.cert.root_store())
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

    async fn connect(&self, client: &Endpoint) -> Connection {
        client
            .connect(self.addr(), "localhost")
            .unwrap()
            .await
            .expect("DoQ handshake")
    }
}

fn query(id: u16, name: &str, qtype: u16) -> Vec<u8> {
    let mut b = [0u8; 512];
    let n = tolldns_ingress::wire::build_query(&mut b, id, name, qtype).unwrap();
    b[..n].to_vec()
}

fn framed(msg: &[u8]) -> Vec<u8> {
    let mut v = u16::try_from(msg.len()).unwrap().to_be_bytes().to_vec();
    v.extend_from_slice(msg);
    v
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
    let mut h = DoqEdge::start(|_| {}).await;
    let client = h.client(false);
    let conn = h.connect(&client).await;

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
    let h = DoqEdge::start(|_| {}).await;
    let client = h.client(false);

    // A Message ID other than 0 (§4.2.1).
    let conn = h.connect(&client).await;
    assert!(
        exchange_raw(&conn, &framed(&query(7, "a.test", 1)))
            .await
            .is_err()
    );
    assert_eq!(close_code(&conn).await, Some(DoqErrorCode::ProtocolError));

    // Two queries on one stream.
    let conn = h.connect(&client).await;
    let q = framed(&query(0, "a.test", 1));
    let two = [q.clone(), q.clone()].concat();
    assert!(exchange_raw(&conn, &two).await.is_err());
    assert_eq!(close_code(&conn).await, Some(DoqErrorCode::ProtocolError));

    // FIN before the whole message.
    let conn = h.connect(&client).await;
    assert!(exchange_raw(&conn, &q[..q.len() - 3]).await.is_err());
    assert_eq!(close_code(&conn).await, Some(DoqErrorCode::ProtocolError));

    // The edns-tcp-keepalive option (§5.5.2).
    let conn = h.connect(&client).await;
    let mut keepalive = query(0, "a.test", 1);
    keepalive[10..12].copy_from_slice(&1u16.to_be_bytes());
    keepalive.extend_from_slice(&[0, 0, 41, 0x04, 0xD0, 0, 0, 0, 0, 0, 4, 0, 11, 0, 0]);
    assert!(exchange_raw(&conn, &framed(&keepalive)).await.is_err());
    assert_eq!(close_code(&conn).await, Some(DoqErrorCode::ProtocolError));

    // A unidirectional stream from the client.
    let conn = h.connect(&client).await;
    let mut uni = conn.open_uni().await.unwrap();
    uni.write_all(&q).await.unwrap();
    uni.finish().unwrap();
    assert_eq!(close_code(&conn).await, Some(DoqErrorCode::ProtocolError));

    // The same query, well formed, is answered.
    let conn = h.connect(&client).await;
    let ok = exchange(&conn, &query(0, "a.test", 1)).await;
    assert_eq!(a_records(&ok), vec![std::net::Ipv4Addr::new(192, 0, 2, 1)]);
    h.edge.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_query_without_fin_is_cancelled_after_the_idle_time() {
    let h = DoqEdge::start(|_| {}).await;
    let client = h.client(false);
    let conn = h.connect(&client).await;
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
    let h = DoqEdge::start(|_| {}).await;
    let client = h.client(true);
    // A first connection leaves a session ticket with the client.
    let conn = h.connect(&client).await;
    exchange(&conn, &query(0, "a.test", 1)).await;
    conn.close(DoqErrorCode::NoError.code().into(), b"");
    // The next one may resume, but never with early data.
    let connecting = client.connect(h.addr(), "localhost").unwrap();
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
    let mut h = DoqEdge::start(|_| {}).await;
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
    let port = h.addr().port().to_string();
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
    // The RFC 9578 test vector's issuer key.
    let path = format!(
        "{}/../test-vectors/rfc9578-type2.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let pem_hex = v["vectors"][0]["skS"].as_str().unwrap();
    let pem: Vec<u8> = (0..pem_hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&pem_hex[i..i + 2], 16).unwrap())
        .collect();
    let issuer = IssuerSecretKey::from_pem(std::str::from_utf8(&pem).unwrap()).unwrap();
    let challenge = TokenChallenge::deployment("issuer.test", "tolldns-test");
    let (request, pending) = client::request(issuer.public(), &challenge).unwrap();
    let token = pending
        .finalize(issuer.public(), &issuer.issue(&request).unwrap())
        .unwrap()
        .to_bytes();
    let spki = base64::engine::general_purpose::URL_SAFE.encode(issuer.public().spki());

    let mut h = DoqEdge::start(|c| {
        c.tickets.issuer_name = "issuer.test".to_owned();
        c.tickets.deployment = "tolldns-test".to_owned();
        c.tickets.issuer_keys = vec![spki];
        // DoQ has a policy of its own: DoT's stays optional.
        c.tickets.doq = TicketPolicy::Required;
    })
    .await;
    let client = h.client(false);
    let conn = h.connect(&client).await;
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
