//! The authoritative test server and the self-signed test certificates.
//!
//! [`TestServer`] answers a small [`TestZone`] on `127.0.0.1` over UDP and TCP (and, with
//! [`TestServer::start_with_tls`], DoT and DoH), counts every query it receives and can be
//! switched into failure modes ([`Mode`]) or slowed down to exercise failover, health checks and
//! response validation.

use std::convert::Infallible;
use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use hickory_proto::op::{Edns, Message, MessageType, OpCode, ResponseCode};
use hickory_proto::rr::rdata::{A, AAAA, CNAME, NS, SOA, TXT};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use portable_atomic::AtomicU64;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, UdpSocket};
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;

use tolldns_ingress::upstream::{DEFAULT_DOH_PATH, UpstreamSpec};

/// TTL of the default zone's records, in seconds.
pub const TEST_TTL: u32 = 300;
/// Negative-caching TTL (SOA minimum and SOA TTL) of the default zone, in seconds.
pub const TEST_NEGATIVE_TTL: u32 = 60;
/// Server name in the default [`TestCert`].
pub const TEST_SERVER_NAME: &str = "dns.test";
/// Size of the `big.test.` TXT answer's strings (20 strings of this length, well over 1232 bytes).
const BIG_TXT_CHUNK: usize = 200;

fn name(s: &str) -> Name {
    let mut n = Name::from_ascii(s).expect("testkit: invalid domain name literal");
    n.set_fqdn(true);
    n
}

/// A zone served by a [`TestServer`].
///
/// The default zone `test.` holds:
/// `a.test.` A 192.0.2.1 and AAAA 2001:db8::1; `www.test.` CNAME `a.test.`; `txt.test.` TXT
/// "hello"; `big.test.` a TXT RRset too large for UDP (forces TC); the SOA and NS at `test.`; and
/// `.` NS `ns.test.` so the default health probe gets an answer. Unknown names under `test.` get
/// NXDOMAIN with the SOA in the authority section, known names with another type NODATA with the
/// SOA, and names outside the zone REFUSED.
#[derive(Debug, Clone)]
pub struct TestZone {
    origin: Name,
    records: Vec<Record>,
}

impl Default for TestZone {
    fn default() -> Self {
        let big: Vec<String> = (0..20u8)
            .map(|i| char::from(b'a' + i).to_string().repeat(BIG_TXT_CHUNK))
            .collect();
        Self::empty("test.")
            .with_record(Record::from_rdata(
                Name::root(),
                TEST_TTL,
                RData::NS(NS(name("ns.test."))),
            ))
            .with_a("a.test.", Ipv4Addr::new(192, 0, 2, 1))
            .with_aaaa("a.test.", Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1))
            .with_cname("www.test.", "a.test.")
            .with_txt("txt.test.", "hello")
            .with_record(Record::from_rdata(
                name("big.test."),
                TEST_TTL,
                RData::TXT(TXT::new(big)),
            ))
    }
}

impl TestZone {
    /// A zone with only its SOA and NS records.
    ///
    /// # Panics
    ///
    /// If `origin` is not a valid domain name.
    pub fn empty(origin: &str) -> Self {
        let origin = name(origin);
        let ns = origin
            .prepend_label("ns")
            .expect("testkit: origin too long");
        let soa = SOA::new(
            ns.clone(),
            origin
                .prepend_label("hostmaster")
                .expect("testkit: origin too long"),
            1,
            3600,
            600,
            86_400,
            TEST_NEGATIVE_TTL,
        );
        let records = vec![
            Record::from_rdata(origin.clone(), TEST_NEGATIVE_TTL, RData::SOA(soa)),
            Record::from_rdata(origin.clone(), TEST_TTL, RData::NS(NS(ns))),
        ];
        Self { origin, records }
    }

    /// Adds a record.
    pub fn with_record(mut self, record: Record) -> Self {
        self.records.push(record);
        self
    }

    /// Adds an A record with [`TEST_TTL`].
    ///
    /// # Panics
    ///
    /// If `owner` is not a valid domain name.
    pub fn with_a(self, owner: &str, ip: Ipv4Addr) -> Self {
        self.with_record(Record::from_rdata(name(owner), TEST_TTL, RData::A(A(ip))))
    }

    /// Adds an AAAA record with [`TEST_TTL`].
    ///
    /// # Panics
    ///
    /// If `owner` is not a valid domain name.
    pub fn with_aaaa(self, owner: &str, ip: Ipv6Addr) -> Self {
        self.with_record(Record::from_rdata(
            name(owner),
            TEST_TTL,
            RData::AAAA(AAAA(ip)),
        ))
    }

    /// Adds a TXT record (one string) with [`TEST_TTL`].
    ///
    /// # Panics
    ///
    /// If `owner` is not a valid domain name.
    pub fn with_txt(self, owner: &str, text: &str) -> Self {
        let rdata = RData::TXT(TXT::new(vec![text.to_owned()]));
        self.with_record(Record::from_rdata(name(owner), TEST_TTL, rdata))
    }

    /// Adds a CNAME record with [`TEST_TTL`].
    ///
    /// # Panics
    ///
    /// If a name is not a valid domain name.
    pub fn with_cname(self, owner: &str, target: &str) -> Self {
        let rdata = RData::CNAME(CNAME(name(target)));
        self.with_record(Record::from_rdata(name(owner), TEST_TTL, rdata))
    }

    /// Removes every record of `rtype` at `owner`.
    ///
    /// # Panics
    ///
    /// If `owner` is not a valid domain name.
    pub fn without(mut self, owner: &str, rtype: RecordType) -> Self {
        let owner = name(owner);
        self.records
            .retain(|r| !(r.name() == &owner && r.record_type() == rtype));
        self
    }

    /// The zone's origin.
    pub fn origin(&self) -> &Name {
        &self.origin
    }

    /// The zone's records.
    pub fn records(&self) -> &[Record] {
        &self.records
    }

    fn soa(&self) -> Option<Record> {
        self.records
            .iter()
            .find(|r| r.record_type() == RecordType::SOA && r.name() == &self.origin)
            .cloned()
    }

    /// Authoritative lookup: (rcode, answers, authority).
    fn lookup(&self, qname: &Name, qtype: RecordType) -> (ResponseCode, Vec<Record>, Vec<Record>) {
        let mut answers = Vec::new();
        let mut current = qname.clone();
        for _ in 0..8 {
            let at: Vec<&Record> = self
                .records
                .iter()
                .filter(|r| r.name() == &current)
                .collect();
            if at.is_empty() {
                if !answers.is_empty() {
                    // A CNAME pointing outside the data: return the chain so far.
                    return (ResponseCode::NoError, answers, Vec::new());
                }
                if !self.origin.zone_of(&current) {
                    return (ResponseCode::Refused, Vec::new(), Vec::new());
                }
                let soa: Vec<Record> = self.soa().into_iter().collect();
                let empty_non_terminal = self.records.iter().any(|r| current.zone_of(r.name()));
                let rcode = if empty_non_terminal {
                    ResponseCode::NoError
                } else {
                    ResponseCode::NXDomain
                };
                return (rcode, Vec::new(), soa);
            }
            let matching: Vec<Record> = at
                .iter()
                .filter(|r| r.record_type() == qtype || qtype == RecordType::ANY)
                .map(|r| (*r).clone())
                .collect();
            if !matching.is_empty() {
                answers.extend(matching);
                return (ResponseCode::NoError, answers, Vec::new());
            }
            let Some(alias) = at
                .iter()
                .find_map(|r| r.data().as_cname().map(|c| (*r, c.0.clone())))
            else {
                let authority = if answers.is_empty() {
                    self.soa().into_iter().collect()
                } else {
                    Vec::new()
                };
                return (ResponseCode::NoError, answers, authority);
            };
            answers.push(alias.0.clone());
            current = alias.1;
        }
        (ResponseCode::NoError, answers, Vec::new())
    }
}

/// How a [`TestServer`] treats queries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Mode {
    /// Answer from the zone.
    #[default]
    Normal,
    /// Count the query and never answer.
    Drop,
    /// Answer SERVFAIL.
    ServFail,
    /// Answer REFUSED.
    Refused,
    /// Answer from the zone with the message ID off by one.
    WrongId,
    /// Answer from the zone for a different question name (`wrong.` prepended).
    WrongQuestion,
}

/// Transport a query arrived on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transport {
    /// Plain UDP.
    Udp,
    /// Plain TCP.
    Tcp,
    /// DNS over TLS.
    Tls,
    /// DNS over HTTPS.
    Https,
}

/// One query as a [`TestServer`] received it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ReceivedQuery {
    /// Transport it came over.
    pub transport: Transport,
    /// Sender address (the source port shows the client's port choice).
    pub peer: SocketAddr,
    /// Message ID.
    pub id: u16,
    /// First question's name and type, if any.
    pub question: Option<(Name, RecordType)>,
    /// RD bit.
    pub recursion_desired: bool,
    /// CD bit.
    pub checking_disabled: bool,
    /// EDNS DO bit (false without EDNS).
    pub dnssec_ok: bool,
    /// Whether the query had EDNS.
    pub edns: bool,
}

/// Most queries kept in [`TestServer::received`].
const LOG_LIMIT: usize = 4096;

#[derive(Debug)]
struct State {
    zone: TestZone,
    mode: Mode,
    delay: Duration,
    log: Vec<ReceivedQuery>,
}

#[derive(Debug)]
struct Shared {
    state: Mutex<State>,
    queries: [AtomicU64; 4],
}

impl Shared {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn counter(&self, t: Transport) -> &AtomicU64 {
        let [udp, tcp, tls, https] = &self.queries;
        match t {
            Transport::Udp => udp,
            Transport::Tcp => tcp,
            Transport::Tls => tls,
            Transport::Https => https,
        }
    }

    /// Counts and logs the query, then builds the reply per mode. `None`: do not answer.
    /// Returns the delay to apply before sending.
    fn handle(
        &self,
        wire: &[u8],
        transport: Transport,
        peer: SocketAddr,
    ) -> (Option<Vec<u8>>, Duration) {
        self.counter(transport).fetch_add(1, Ordering::Relaxed);
        let parsed = Message::from_vec(wire);
        let mut st = self.state();
        let delay = st.delay;
        let Ok(request) = parsed else {
            // FORMERR with the ID if there is one.
            let reply = wire.get(..2).and_then(|id| {
                let id = u16::from_be_bytes([*id.first()?, *id.get(1)?]);
                Message::error_msg(id, OpCode::Query, ResponseCode::FormErr)
                    .to_vec()
                    .ok()
            });
            return (reply, delay);
        };
        if st.log.len() < LOG_LIMIT {
            st.log.push(ReceivedQuery {
                transport,
                peer,
                id: request.id(),
                question: request.query().map(|q| (q.name().clone(), q.query_type())),
                recursion_desired: request.recursion_desired(),
                checking_disabled: request.checking_disabled(),
                dnssec_ok: request
                    .extensions()
                    .as_ref()
                    .is_some_and(|e| e.flags().dnssec_ok),
                edns: request.extensions().as_ref().is_some(),
            });
        }
        let mut reply = Message::new();
        reply
            .set_id(request.id())
            .set_message_type(MessageType::Response)
            .set_op_code(request.op_code())
            .set_recursion_desired(request.recursion_desired())
            .set_checking_disabled(request.checking_disabled());
        reply.add_queries(request.queries().iter().cloned());
        if request.extensions().as_ref().is_some() {
            let mut edns = Edns::new();
            edns.set_max_payload(1232);
            reply.set_edns(edns);
        }
        match st.mode {
            Mode::Drop => return (None, delay),
            Mode::ServFail => {
                reply.set_response_code(ResponseCode::ServFail);
            }
            Mode::Refused => {
                reply.set_response_code(ResponseCode::Refused);
            }
            Mode::Normal | Mode::WrongId | Mode::WrongQuestion => {
                match (request.op_code(), request.queries()) {
                    (OpCode::Query, [q]) => {
                        let (rcode, answers, authority) = st.zone.lookup(q.name(), q.query_type());
                        reply
                            .set_response_code(rcode)
                            .set_authoritative(rcode != ResponseCode::Refused);
                        reply.add_answers(answers).add_name_servers(authority);
                    }
                    (OpCode::Query, _) => {
                        reply.set_response_code(ResponseCode::FormErr);
                    }
                    _ => {
                        reply.set_response_code(ResponseCode::NotImp);
                    }
                }
            }
        }
        if st.mode == Mode::WrongId {
            reply.set_id(request.id().wrapping_add(1));
        }
        if st.mode == Mode::WrongQuestion {
            for q in reply.queries_mut() {
                if let Ok(wrong) = q.name().prepend_label("wrong") {
                    q.set_name(wrong);
                }
            }
        }
        drop(st);
        let Ok(mut out) = reply.to_vec() else {
            return (None, delay);
        };
        if transport == Transport::Udp {
            let limit = usize::from(request.max_payload().max(512));
            if out.len() > limit {
                reply.take_answers();
                reply.take_name_servers();
                reply.take_additionals();
                reply.set_truncated(true);
                match reply.to_vec() {
                    Ok(short) => out = short,
                    Err(_) => return (None, delay),
                }
            }
        }
        (Some(out), delay)
    }
}

/// An in-process authoritative DNS server on loopback. Its tasks stop when it is dropped.
#[derive(Debug)]
pub struct TestServer {
    /// UDP listening address (same port as TCP).
    pub udp_addr: SocketAddr,
    /// TCP listening address (same port as UDP).
    pub tcp_addr: SocketAddr,
    /// DoT listening address (with [`TestServer::start_with_tls`]).
    pub tls_addr: Option<SocketAddr>,
    /// DoH listening address, path [`DEFAULT_DOH_PATH`] (with
    /// [`TestServer::start_with_tls`]).
    pub https_addr: Option<SocketAddr>,
    shared: Arc<Shared>,
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for TestServer {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

impl TestServer {
    /// Starts UDP and TCP listeners on `127.0.0.1`, on one OS-assigned port.
    ///
    /// # Errors
    ///
    /// If a socket cannot be bound.
    pub async fn start(zone: TestZone) -> io::Result<Self> {
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                zone,
                mode: Mode::Normal,
                delay: Duration::ZERO,
                log: Vec::new(),
            }),
            queries: Default::default(),
        });
        let (udp, tcp) = bind_pair().await?;
        let udp = Arc::new(udp);
        let udp_addr = udp.local_addr()?;
        let tcp_addr = tcp.local_addr()?;
        let tasks = vec![
            tokio::spawn(serve_udp(udp, Arc::clone(&shared))),
            tokio::spawn(serve_stream_listener(tcp, None, Arc::clone(&shared))),
        ];
        Ok(Self {
            udp_addr,
            tcp_addr,
            tls_addr: None,
            https_addr: None,
            shared,
            tasks,
        })
    }

    /// Starts UDP, TCP, DoT and DoH (HTTP/2 and HTTP/1.1) listeners on `127.0.0.1`, the TLS ones
    /// presenting `cert`.
    ///
    /// # Errors
    ///
    /// If a socket cannot be bound or the certificate is unusable.
    pub async fn start_with_tls(zone: TestZone, cert: &TestCert) -> io::Result<Self> {
        let mut server = Self::start(zone).await?;
        let dot = TlsAcceptor::from(cert.server_config(&[]).map_err(io::Error::other)?);
        let doh = TlsAcceptor::from(
            cert.server_config(&[b"h2", b"http/1.1"])
                .map_err(io::Error::other)?,
        );
        let tls = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
        let https = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
        server.tls_addr = Some(tls.local_addr()?);
        server.https_addr = Some(https.local_addr()?);
        server.tasks.push(tokio::spawn(serve_stream_listener(
            tls,
            Some(dot),
            Arc::clone(&server.shared),
        )));
        server.tasks.push(tokio::spawn(serve_https(
            https,
            doh,
            Arc::clone(&server.shared),
        )));
        Ok(server)
    }

    /// Switches the failure mode.
    pub fn set_mode(&self, mode: Mode) {
        self.shared.state().mode = mode;
    }

    /// The current failure mode.
    pub fn mode(&self) -> Mode {
        self.shared.state().mode
    }

    /// Delays every answer by `delay` (zero: answer at once).
    pub fn set_delay(&self, delay: Duration) {
        self.shared.state().delay = delay;
    }

    /// Replaces the zone.
    pub fn set_zone(&self, zone: TestZone) {
        self.shared.state().zone = zone;
    }

    /// Queries received over all transports (including unanswered and unparsable ones).
    pub fn queries(&self) -> u64 {
        self.shared
            .queries
            .iter()
            .map(|c| c.load(Ordering::Relaxed))
            .sum()
    }

    /// Queries received over one transport.
    pub fn queries_over(&self, transport: Transport) -> u64 {
        self.shared.counter(transport).load(Ordering::Relaxed)
    }

    /// The parsable queries received so far (at most the first 4096).
    pub fn received(&self) -> Vec<ReceivedQuery> {
        self.shared.state().log.clone()
    }

    /// This server as a UDP upstream.
    pub fn udp_upstream(&self) -> UpstreamSpec {
        UpstreamSpec::udp(self.udp_addr)
    }

    /// This server as a TCP upstream.
    pub fn tcp_upstream(&self) -> UpstreamSpec {
        UpstreamSpec::tcp(self.tcp_addr)
    }

    /// This server as a DoT upstream (named [`TEST_SERVER_NAME`]), if TLS was started.
    pub fn tls_upstream(&self) -> Option<UpstreamSpec> {
        self.tls_addr
            .map(|a| UpstreamSpec::tls(a, TEST_SERVER_NAME))
    }

    /// This server as a DoH upstream (named [`TEST_SERVER_NAME`]), if TLS was started.
    pub fn https_upstream(&self) -> Option<UpstreamSpec> {
        self.https_addr
            .map(|a| UpstreamSpec::https(a, DEFAULT_DOH_PATH, TEST_SERVER_NAME))
    }
}

/// UDP and TCP on the same OS-assigned port, as a real DNS server (the TCP retry after a
/// truncated UDP answer goes to the same address).
async fn bind_pair() -> io::Result<(UdpSocket, TcpListener)> {
    let mut last = None;
    for _ in 0..32 {
        let udp = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).await?;
        match TcpListener::bind(udp.local_addr()?).await {
            Ok(tcp) => return Ok((udp, tcp)),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| io::Error::other("no free port pair")))
}

async fn serve_udp(sock: Arc<UdpSocket>, shared: Arc<Shared>) {
    let mut buf = vec![0u8; 65_535];
    loop {
        let Ok((n, peer)) = sock.recv_from(&mut buf).await else {
            continue;
        };
        let Some(wire) = buf.get(..n) else { continue };
        let (reply, delay) = shared.handle(wire, Transport::Udp, peer);
        if let Some(reply) = reply {
            let sock = Arc::clone(&sock);
            tokio::spawn(async move {
                tokio::time::sleep(delay).await;
                let _sent = sock.send_to(&reply, peer).await;
            });
        }
    }
}

async fn serve_stream_listener(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    shared: Arc<Shared>,
) {
    loop {
        let Ok((stream, peer)) = listener.accept().await else {
            continue;
        };
        let shared = Arc::clone(&shared);
        let tls = tls.clone();
        tokio::spawn(async move {
            match tls {
                None => serve_stream(stream, peer, Transport::Tcp, shared).await,
                Some(acceptor) => {
                    if let Ok(stream) = acceptor.accept(stream).await {
                        serve_stream(stream, peer, Transport::Tls, shared).await;
                    }
                }
            }
        });
    }
}

/// Length-prefixed messages, answered in order, until the peer closes or 30 s of idleness.
async fn serve_stream<S>(mut stream: S, peer: SocketAddr, transport: Transport, shared: Arc<Shared>)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    loop {
        let mut len = [0u8; 2];
        match tokio::time::timeout(Duration::from_secs(30), stream.read_exact(&mut len)).await {
            Ok(Ok(_)) => {}
            _ => return,
        }
        let mut msg = vec![0u8; usize::from(u16::from_be_bytes(len))];
        if stream.read_exact(&mut msg).await.is_err() {
            return;
        }
        let (reply, delay) = shared.handle(&msg, transport, peer);
        let Some(reply) = reply else { continue };
        tokio::time::sleep(delay).await;
        let Ok(rlen) = u16::try_from(reply.len()) else {
            return;
        };
        let mut framed = Vec::with_capacity(reply.len() + 2);
        framed.extend_from_slice(&rlen.to_be_bytes());
        framed.extend_from_slice(&reply);
        if stream.write_all(&framed).await.is_err() || stream.flush().await.is_err() {
            return;
        }
    }
}

async fn serve_https(listener: TcpListener, acceptor: TlsAcceptor, shared: Arc<Shared>) {
    loop {
        let Ok((stream, peer)) = listener.accept().await else {
            continue;
        };
        let shared = Arc::clone(&shared);
        let acceptor = acceptor.clone();
        tokio::spawn(async move {
            let Ok(stream) = acceptor.accept(stream).await else {
                return;
            };
            let service =
                hyper::service::service_fn(move |req| doh_request(req, peer, Arc::clone(&shared)));
            let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
            let _done = builder
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

async fn doh_request(
    req: http::Request<Incoming>,
    peer: SocketAddr,
    shared: Arc<Shared>,
) -> Result<http::Response<Full<Bytes>>, Infallible> {
    let status = |code: http::StatusCode| {
        let mut r = http::Response::new(Full::new(Bytes::new()));
        *r.status_mut() = code;
        Ok(r)
    };
    if req.method() != http::Method::POST || req.uri().path() != DEFAULT_DOH_PATH {
        return status(http::StatusCode::NOT_FOUND);
    }
    let Ok(body) = Limited::new(req.into_body(), 65_535).collect().await else {
        return status(http::StatusCode::PAYLOAD_TOO_LARGE);
    };
    let (reply, delay) = shared.handle(&body.to_bytes(), Transport::Https, peer);
    let Some(reply) = reply else {
        // "Drop" over HTTP: hold the request until the client gives up.
        tokio::time::sleep(Duration::from_secs(60)).await;
        return status(http::StatusCode::GATEWAY_TIMEOUT);
    };
    tokio::time::sleep(delay).await;
    let mut r = http::Response::new(Full::new(Bytes::from(reply)));
    r.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/dns-message"),
    );
    Ok(r)
}

/// A throwaway CA and a server certificate it signed, for DoT and DoH tests.
#[derive(Debug)]
pub struct TestCert {
    /// The CA certificate (the trust anchor).
    pub ca_der: CertificateDer<'static>,
    /// The CA certificate as PEM (for [`UpstreamConfig::add_ca_pem`](tolldns_ingress::upstream::UpstreamConfig::add_ca_pem)).
    pub ca_pem: String,
    /// The server certificate chain (leaf, then CA).
    pub chain: Vec<CertificateDer<'static>>,
    key_pkcs8: Vec<u8>,
}

impl TestCert {
    /// A CA and a leaf valid for [`TEST_SERVER_NAME`], `localhost` and `127.0.0.1`.
    ///
    /// # Errors
    ///
    /// If rcgen fails.
    pub fn generate() -> Result<Self, rcgen::Error> {
        Self::for_names(&[TEST_SERVER_NAME, "localhost", "127.0.0.1"])
    }

    /// A CA and a leaf valid for `names` (DNS names or IP literals).
    ///
    /// # Errors
    ///
    /// If rcgen fails.
    pub fn for_names(names: &[&str]) -> Result<Self, rcgen::Error> {
        let ca_key = rcgen::KeyPair::generate()?;
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new())?;
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "TollDNS test CA");
        ca_params.key_usages = vec![
            rcgen::KeyUsagePurpose::KeyCertSign,
            rcgen::KeyUsagePurpose::CrlSign,
        ];
        let ca = rcgen::CertifiedIssuer::self_signed(ca_params, ca_key)?;
        let leaf_key = rcgen::KeyPair::generate()?;
        let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
        let leaf = rcgen::CertificateParams::new(names)?.signed_by(&leaf_key, &ca)?;
        Ok(Self {
            ca_der: ca.der().clone(),
            ca_pem: ca.pem(),
            chain: vec![leaf.der().clone(), ca.der().clone()],
            key_pkcs8: leaf_key.serialize_der(),
        })
    }

    /// The leaf's private key.
    pub fn key(&self) -> PrivateKeyDer<'static> {
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.key_pkcs8.clone()))
    }

    /// A root store holding only the test CA.
    pub fn root_store(&self) -> RootCertStore {
        let mut roots = RootCertStore::empty();
        // A freshly generated CA certificate always parses; an error would leave the store empty
        // and make the handshake fail visibly.
        let _added = roots.add(self.ca_der.clone());
        roots
    }

    /// A client configuration (ring provider) trusting only the test CA, with `alpn`.
    ///
    /// # Errors
    ///
    /// If rustls rejects the configuration.
    pub fn client_config(&self, alpn: &[&[u8]]) -> Result<Arc<ClientConfig>, rustls::Error> {
        let mut cfg =
            ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
                .with_safe_default_protocol_versions()?
                .with_root_certificates(self.root_store())
                .with_no_client_auth();
        cfg.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        Ok(Arc::new(cfg))
    }

    /// A server configuration (ring provider) presenting the leaf, with `alpn`.
    ///
    /// # Errors
    ///
    /// If rustls rejects the key or the configuration.
    pub fn server_config(&self, alpn: &[&[u8]]) -> Result<Arc<ServerConfig>, rustls::Error> {
        let mut cfg =
            ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
                .with_safe_default_protocol_versions()?
                .with_no_client_auth()
                .with_single_cert(self.chain.clone(), self.key())?;
        cfg.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        Ok(Arc::new(cfg))
    }
}
