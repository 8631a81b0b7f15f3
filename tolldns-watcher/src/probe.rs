//! Probes of a miner's DNS edge: one query over UDP, TCP, DoT or DoH carrying a toll ticket
//! exactly as `tolldns_tickets::protocol` says (a token once, as EDNS option 65002 or DoH
//! `Authorization: PrivateToken`; then the session ticket, EDNS option 65001 or the DoH
//! `tolldns-ticket` header), timed, and its answer compared with the watcher's own
//! resolution through its own upstreams ([`Prober::reference`]).
//!
//! The DNS messages are built and read with hickory-proto here rather than shared with the
//! `tolldns query` command: the command's message code reports errors as command-line
//! field errors and prints notes for a person, while a probe needs typed outcomes and
//! evidence; the wire rules themselves (option codes, headers) are the shared constants of
//! `tolldns_tickets::protocol`, and the HTTP and TLS plumbing is the shared
//! [`tolldns_service::http`] client.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use base64::Engine as _;
use bytes::Bytes;
use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::rdata::opt::{EdnsCode, EdnsOption};
use hickory_proto::rr::{Name, RecordType};
use http::{Method, Request, header};
use http_body_util::Full;
use serde_json::{Value, json};
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};
use tokio::net::{TcpStream, UdpSocket};
use tolldns_service::http as http_client;
use tolldns_tickets::SESSION_TICKET_LEN;
use tolldns_tickets::protocol::{
    EDE_OPTION_CODE, SESSION_HEADER, SESSION_OPTION_CODE, TICKET_HEADER, TOKEN_OPTION_CODE,
};

/// Registry transport numbers a probe can use.
pub mod transport {
    /// DNS over UDP (`host:port`).
    pub const UDP: u8 = 1;
    /// DNS over TCP (`host:port`).
    pub const TCP: u8 = 2;
    /// DNS over TLS (`host:port`).
    pub const DOT: u8 = 3;
    /// DNS over HTTPS (an `https://host:port/path` URL).
    pub const DOH: u8 = 4;
}

/// The EDNS payload size the probes advertise.
const EDNS_PAYLOAD: u16 = 1232;
/// The largest DNS message read over TCP, DoT or DoH.
const MAX_MESSAGE: usize = 65_535;

/// Where a probe goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeTarget {
    /// [`transport::UDP`], [`transport::TCP`], [`transport::DOT`] or [`transport::DOH`].
    pub transport: u8,
    /// `host:port` (UDP, TCP, DoT) or an `https://host:port/path` URL (DoH), as registered.
    pub address: String,
    /// The name the DoT/DoH certificate must carry; default: the address's host.
    pub tls_name: Option<String>,
}

/// What a probe query carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credential {
    /// Nothing (an unticketed query).
    None,
    /// A whole token (the first query of a probe session).
    Token(Vec<u8>),
    /// The session ticket the edge returned.
    Session([u8; SESSION_TICKET_LEN]),
}

/// The watcher's own errors: the probe could not be attempted (never the miner's fault).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProbeError {
    /// The registered address is not usable for the transport.
    #[error("address {address:?}: {reason}")]
    Address {
        /// The address.
        address: String,
        /// Why.
        reason: String,
    },
    /// An unknown transport number.
    #[error("transport {0} cannot be probed")]
    Transport(u8),
    /// The query name is not a domain name.
    #[error("{0:?} is not a domain name")]
    Name(String),
    /// DoT or DoH and no TLS roots configured.
    #[error("DoT and DoH probes need TLS roots")]
    NoTlsRoots,
    /// No reference upstream answered.
    #[error("no reference upstream answered: {0}")]
    Reference(String),
}

/// The result of one probe.
#[derive(Debug, Clone, PartialEq)]
pub struct ProbeOutcome {
    /// Whether a DNS answer came back (any rcode, REFUSED included) within the timeout.
    pub answered: bool,
    /// Microseconds from sending the query to the answer (or to the failure).
    pub latency_us: u64,
    /// The answer's rcode (`NOERROR`, `REFUSED`, …), when answered.
    pub rcode: Option<String>,
    /// The answer section in canonical text ([`canonical_answers`]), sorted.
    pub answers: Vec<String>,
    /// The session ticket the edge returned, if any.
    pub session: Option<[u8; SESSION_TICKET_LEN]>,
    /// `{"transport", "address", "qname", "qtype", "credential": "none"|"token"|"session",
    /// "ticket_id", "rcode", "answers", "ede": [[code, text]], "http_status", "error",
    /// "latency_us"}`.
    pub evidence: Value,
}

/// A DNS answer read from the wire.
#[derive(Debug)]
struct Answer {
    rcode: ResponseCode,
    truncated: bool,
    answers: Vec<String>,
    ede: Vec<(u16, String)>,
    session: Option<[u8; SESSION_TICKET_LEN]>,
}

/// The canonical text of an answer section: `name class type rdata` per record (owner name
/// lowercased, no TTL), sorted and deduplicated: two answers carry the same data exactly
/// when their canonical texts are equal.
pub fn canonical_answers(message: &Message) -> Vec<String> {
    let mut out: Vec<String> = message
        .answers()
        .iter()
        .map(|r| {
            format!(
                "{} {} {} {}",
                r.name().to_lowercase(),
                r.dns_class(),
                r.record_type(),
                r.data()
            )
        })
        .collect();
    out.sort();
    out.dedup();
    out
}

/// Whether a probe's answers carry the same RRset data as the reference (TTL and order
/// ignored: both are [`canonical_answers`]).
pub fn compare(probe: &[String], reference: &[String]) -> bool {
    let norm = |v: &[String]| {
        let mut v = v.to_vec();
        v.sort();
        v.dedup();
        v
    };
    norm(probe) == norm(reference)
}

/// A DNS query with EDNS and the credential's option (none over DoH: there it is a header).
fn query_bytes(id: u16, name: &Name, qtype: RecordType, credential: &Credential) -> Vec<u8> {
    let mut message = Message::new();
    message
        .set_id(id)
        .set_message_type(MessageType::Query)
        .set_op_code(OpCode::Query)
        .set_recursion_desired(true)
        .add_query(Query::query(name.clone(), qtype));
    let mut edns = Edns::new();
    edns.set_max_payload(EDNS_PAYLOAD).set_version(0);
    match credential {
        Credential::None => {}
        Credential::Token(bytes) => edns
            .options_mut()
            .insert(EdnsOption::Unknown(TOKEN_OPTION_CODE, bytes.clone())),
        Credential::Session(ticket) => edns
            .options_mut()
            .insert(EdnsOption::Unknown(SESSION_OPTION_CODE, ticket.to_vec())),
    }
    message.set_edns(edns);
    // A message of one question and one OPT record always encodes.
    message.to_vec().unwrap_or_default()
}

fn parse_response(bytes: &[u8], id: Option<u16>) -> anyhow::Result<Answer> {
    let message = Message::from_vec(bytes).context("the response is not a DNS message")?;
    if message.message_type() != MessageType::Response {
        anyhow::bail!("the server sent a query, not a response");
    }
    if let Some(id) = id
        && message.id() != id
    {
        anyhow::bail!("the response has id {}, the query {id}", message.id());
    }
    let mut ede = Vec::new();
    let mut session = None;
    if let Some(edns) = message.extensions() {
        for option in edns.options().get_all(EdnsCode::from(EDE_OPTION_CODE)) {
            if let EdnsOption::Unknown(_, data) = option {
                let code = data
                    .get(..2)
                    .map_or(0, |b| u16::from_be_bytes([b[0], b[1]]));
                let text = String::from_utf8_lossy(data.get(2..).unwrap_or(&[]));
                ede.push((code, http_client::printable(&text)));
            }
        }
        if let Some(EdnsOption::Unknown(_, data)) =
            edns.options().get(EdnsCode::from(SESSION_OPTION_CODE))
        {
            session = <[u8; SESSION_TICKET_LEN]>::try_from(data.as_slice()).ok();
        }
    }
    Ok(Answer {
        rcode: message.response_code(),
        truncated: message.truncated(),
        answers: canonical_answers(&message),
        ede,
        session,
    })
}

/// The standard mnemonic of an rcode (`RCODE<n>` for others).
fn rcode_name(rcode: ResponseCode) -> String {
    let n = u16::from(rcode);
    let name = match n {
        0 => "NOERROR",
        1 => "FORMERR",
        2 => "SERVFAIL",
        3 => "NXDOMAIN",
        4 => "NOTIMP",
        5 => "REFUSED",
        _ => return format!("RCODE{n}"),
    };
    name.to_owned()
}

/// A random query id.
fn query_id() -> u16 {
    rand::random()
}

async fn udp_exchange(addr: SocketAddr, query: &[u8], id: u16) -> anyhow::Result<Answer> {
    let bind: SocketAddr = if addr.is_ipv4() {
        (std::net::Ipv4Addr::UNSPECIFIED, 0).into()
    } else {
        (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
    };
    let socket = UdpSocket::bind(bind)
        .await
        .context("binding a UDP socket")?;
    socket
        .connect(addr)
        .await
        .context("connecting the UDP socket")?;
    socket.send(query).await.context("sending the query")?;
    let mut buf = vec![0u8; 65_535];
    loop {
        let n = socket.recv(&mut buf).await.context("reading the answer")?;
        // A datagram that is not the answer (another id, garbage) is ignored: the timeout
        // bounds the wait.
        if let Ok(answer) = parse_response(buf.get(..n).unwrap_or(&[]), Some(id)) {
            return Ok(answer);
        }
    }
}

async fn stream_exchange<S: AsyncRead + AsyncWrite + Unpin>(
    mut s: S,
    query: &[u8],
    id: u16,
) -> anyhow::Result<Answer> {
    let len = u16::try_from(query.len()).context("query too long")?;
    let mut framed = len.to_be_bytes().to_vec();
    framed.extend_from_slice(query);
    s.write_all(&framed).await.context("sending the query")?;
    s.flush().await.context("sending the query")?;
    let mut prefix = [0u8; 2];
    s.read_exact(&mut prefix)
        .await
        .context("reading the answer length (the server closed the connection?)")?;
    let mut buf = vec![0u8; usize::from(u16::from_be_bytes(prefix))];
    s.read_exact(&mut buf).await.context("reading the answer")?;
    parse_response(&buf, Some(id))
}

/// What went wrong in the exchange, for the outcome.
enum Failed {
    /// The server answered over HTTP with another status than 200 (DoH).
    Http(u16, String),
    /// No usable answer.
    Error(String),
}

/// The watcher's prober of miners' edges.
pub struct Prober {
    upstreams: Vec<SocketAddr>,
    tls: Option<Arc<rustls::ClientConfig>>,
    timeout: Duration,
}

impl std::fmt::Debug for Prober {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Prober")
            .field("upstreams", &self.upstreams)
            .field("tls", &self.tls.is_some())
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl Prober {
    /// A prober resolving the reference answers through `upstreams` (the watcher's own
    /// resolvers, asked over UDP, then TCP when truncated), checking DoT/DoH certificates
    /// against `tls` roots, waiting at most `timeout` for each answer. `tls` should offer the
    /// ALPN protocols `h2`, `http/1.1` and `dot` (all are sent; the server picks).
    pub fn new(
        upstreams: Vec<SocketAddr>,
        tls: Option<Arc<rustls::ClientConfig>>,
        timeout: Duration,
    ) -> Self {
        Self {
            upstreams,
            tls,
            timeout,
        }
    }

    fn parse_name(qname: &str) -> Result<Name, ProbeError> {
        let mut name = Name::from_utf8(qname).map_err(|_| ProbeError::Name(qname.to_owned()))?;
        name.set_fqdn(true);
        Ok(name)
    }

    /// The watcher's own answers for `qname`/`qtype` ([`canonical_answers`]): from the first
    /// upstream that answers with NOERROR or NXDOMAIN (over UDP, TCP when truncated).
    ///
    /// # Errors
    ///
    /// [`ProbeError::Name`], or [`ProbeError::Reference`] when no upstream answers.
    pub async fn reference(&self, qname: &str, qtype: u16) -> Result<Vec<String>, ProbeError> {
        let name = Self::parse_name(qname)?;
        let qtype = RecordType::from(qtype);
        let mut last = "no upstream configured".to_owned();
        for upstream in &self.upstreams {
            let id = query_id();
            let query = query_bytes(id, &name, qtype, &Credential::None);
            let asked = async {
                let answer = udp_exchange(*upstream, &query, id).await?;
                if !answer.truncated {
                    return Ok(answer);
                }
                let tcp = TcpStream::connect(upstream).await?;
                stream_exchange(tcp, &query, id).await
            };
            match tokio::time::timeout(self.timeout, asked).await {
                Ok(Ok(a)) if matches!(a.rcode, ResponseCode::NoError | ResponseCode::NXDomain) => {
                    return Ok(a.answers);
                }
                Ok(Ok(a)) => last = format!("{upstream}: {}", rcode_name(a.rcode)),
                Ok(Err(e)) => last = format!("{upstream}: {e:#}"),
                Err(_) => last = format!("{upstream}: no answer in time"),
            }
        }
        Err(ProbeError::Reference(last))
    }

    fn tls_for(
        &self,
        target: &ProbeTarget,
        host: &str,
    ) -> Result<
        (
            Arc<rustls::ClientConfig>,
            rustls::pki_types::ServerName<'static>,
        ),
        ProbeError,
    > {
        let config = self.tls.clone().ok_or(ProbeError::NoTlsRoots)?;
        let name = target.tls_name.as_deref().unwrap_or(host);
        let server_name = http_client::server_name(name).ok_or_else(|| ProbeError::Address {
            address: target.address.clone(),
            reason: format!("TLS name {name:?} is not a DNS name or IP address"),
        })?;
        Ok((config, server_name))
    }

    /// Sends one query for `qname`/`qtype` to `target` with `credential` and reads the
    /// answer. A miner that does not answer (refused connection, timeout, TLS failure,
    /// garbage, an HTTP error) is an outcome with `answered: false`, never an error.
    ///
    /// # Errors
    ///
    /// Only the watcher's own: an unusable address or transport, a bad name, DoT/DoH without
    /// TLS roots.
    pub async fn probe(
        &self,
        target: &ProbeTarget,
        qname: &str,
        qtype: u16,
        credential: &Credential,
    ) -> Result<ProbeOutcome, ProbeError> {
        let name = Self::parse_name(qname)?;
        let rtype = RecordType::from(qtype);
        let bad_address = |reason: &str| ProbeError::Address {
            address: target.address.clone(),
            reason: reason.to_owned(),
        };
        let (kind, ticket_id) = match credential {
            Credential::None => ("none", None),
            Credential::Token(t) => ("token", Some(hex::encode(tolldns_tickets::ticket_id(t)))),
            Credential::Session(_) => ("session", None),
        };
        let mut evidence = json!({
            "transport": target.transport,
            "address": target.address,
            "qname": qname,
            "qtype": qtype,
            "credential": kind,
            "ticket_id": ticket_id,
        });
        let id = query_id();
        let started = Instant::now();
        let exchange: std::pin::Pin<Box<dyn Future<Output = Result<Answer, Failed>> + Send + '_>> =
            match target.transport {
                transport::UDP | transport::TCP | transport::DOT => {
                    let addr: SocketAddr = tokio::net::lookup_host(&target.address)
                        .await
                        .ok()
                        .and_then(|mut a| a.next())
                        .ok_or_else(|| bad_address("not host:port"))?;
                    let query = query_bytes(id, &name, rtype, credential);
                    match target.transport {
                        transport::UDP => Box::pin(async move {
                            udp_exchange(addr, &query, id)
                                .await
                                .map_err(|e| Failed::Error(format!("{e:#}")))
                        }),
                        transport::TCP => Box::pin(async move {
                            let go = async {
                                let tcp = TcpStream::connect(addr).await.context("connecting")?;
                                stream_exchange(tcp, &query, id).await
                            };
                            go.await.map_err(|e| Failed::Error(format!("{e:#}")))
                        }),
                        _ => {
                            let host = addr.ip().to_string();
                            let (config, server_name) = self.tls_for(target, &host)?;
                            Box::pin(async move {
                                let go = async {
                                    let tcp =
                                        TcpStream::connect(addr).await.context("connecting")?;
                                    let (tls, _) =
                                        http_client::connect_tls(tcp, config, server_name).await?;
                                    stream_exchange(tls, &query, id).await
                                };
                                go.await.map_err(|e| Failed::Error(format!("{e:#}")))
                            })
                        }
                    }
                }
                transport::DOH => {
                    let uri: http::Uri = target
                        .address
                        .parse()
                        .map_err(|_| bad_address("not an https:// URL"))?;
                    if uri.scheme_str() != Some("https") {
                        return Err(bad_address("not an https:// URL"));
                    }
                    let authority = uri
                        .authority()
                        .ok_or_else(|| bad_address("no host"))?
                        .clone();
                    let host = authority
                        .host()
                        .trim_start_matches('[')
                        .trim_end_matches(']')
                        .to_owned();
                    let port = authority.port_u16().unwrap_or(443);
                    let path = uri
                        .path_and_query()
                        .map_or_else(|| "/dns-query".to_owned(), |p| p.as_str().to_owned());
                    let (config, server_name) = self.tls_for(target, &host)?;
                    // RFC 8484: id 0 over DoH.
                    let query = query_bytes(0, &name, rtype, &Credential::None);
                    let credential = credential.clone();
                    Box::pin(async move {
                        let go = async {
                            let tcp = http_client::connect_tcp(&host, port).await?;
                            let (tls, h2) =
                                http_client::connect_tls(tcp, config, server_name).await?;
                            let uri = if h2 {
                                format!("https://{authority}{path}")
                            } else {
                                path.clone()
                            };
                            let mut request = Request::builder()
                                .method(Method::POST)
                                .uri(uri)
                                .header(header::CONTENT_TYPE, "application/dns-message")
                                .header(header::ACCEPT, "application/dns-message");
                            if !h2 {
                                request = request.header(header::HOST, authority.as_str());
                            }
                            match &credential {
                                Credential::None => {}
                                Credential::Token(bytes) => {
                                    request = request.header(
                                        header::AUTHORIZATION,
                                        tolldns_tickets::auth::authorization(bytes),
                                    );
                                }
                                Credential::Session(t) => {
                                    request = request.header(TICKET_HEADER, hex::encode(t));
                                }
                            }
                            let request = request
                                .body(Full::new(Bytes::from(query)))
                                .context("building the DoH request")?;
                            http_client::send(Box::new(tls), h2, request, MAX_MESSAGE).await
                        };
                        let reply = go.await.map_err(|e| Failed::Error(format!("{e:#}")))?;
                        if reply.status != http::StatusCode::OK {
                            return Err(Failed::Http(reply.status.as_u16(), reply.describe()));
                        }
                        let mut answer = parse_response(&reply.body, None)
                            .map_err(|e| Failed::Error(format!("{e:#}")))?;
                        if let Some(value) = reply.header(SESSION_HEADER) {
                            answer.session = base64::engine::general_purpose::URL_SAFE_NO_PAD
                                .decode(value.trim().trim_end_matches('='))
                                .ok()
                                .and_then(|b| {
                                    <[u8; SESSION_TICKET_LEN]>::try_from(b.as_slice()).ok()
                                });
                        }
                        Ok(answer)
                    })
                }
                other => return Err(ProbeError::Transport(other)),
            };
        let result = tokio::time::timeout(self.timeout, exchange).await;
        let latency_us = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
        evidence["latency_us"] = json!(latency_us);
        let outcome = match result {
            Ok(Ok(answer)) => {
                let rcode = rcode_name(answer.rcode);
                evidence["rcode"] = json!(rcode);
                evidence["answers"] = json!(answer.answers);
                evidence["ede"] = json!(answer.ede);
                evidence["session_returned"] = json!(answer.session.is_some());
                ProbeOutcome {
                    answered: true,
                    latency_us,
                    rcode: Some(rcode),
                    answers: answer.answers,
                    session: answer.session,
                    evidence,
                }
            }
            Ok(Err(failed)) => {
                match failed {
                    Failed::Http(status, text) => {
                        evidence["http_status"] = json!(status);
                        evidence["error"] = json!(text);
                    }
                    Failed::Error(text) => evidence["error"] = json!(text),
                }
                ProbeOutcome {
                    answered: false,
                    latency_us,
                    rcode: None,
                    answers: Vec::new(),
                    session: None,
                    evidence,
                }
            }
            Err(_) => {
                evidence["error"] =
                    json!(format!("no answer within {} ms", self.timeout.as_millis()));
                ProbeOutcome {
                    answered: false,
                    latency_us,
                    rcode: None,
                    answers: Vec::new(),
                    session: None,
                    evidence,
                }
            }
        };
        Ok(outcome)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_compare_by_data_not_ttl_or_order() {
        let answer = |ttl: u32, ips: &[&str]| {
            let mut m = Message::new();
            for ip in ips {
                m.add_answer(hickory_proto::rr::Record::from_rdata(
                    Name::from_ascii("WWW.Example.test.").unwrap(),
                    ttl,
                    hickory_proto::rr::RData::A(ip.parse().unwrap()),
                ));
            }
            canonical_answers(&m)
        };
        let a = answer(300, &["192.0.2.1", "192.0.2.2"]);
        assert_eq!(
            a,
            vec![
                "www.example.test. IN A 192.0.2.1".to_owned(),
                "www.example.test. IN A 192.0.2.2".to_owned()
            ]
        );
        assert!(compare(&a, &answer(5, &["192.0.2.2", "192.0.2.1"])));
        assert!(!compare(&a, &answer(300, &["192.0.2.1"])));
        assert!(!compare(&a, &answer(300, &["192.0.2.1", "192.0.2.3"])));
        assert!(compare(&[], &[]));
    }

    #[test]
    fn queries_carry_the_credential_option() {
        let name = Name::from_ascii("www.example.test.").unwrap();
        for (credential, code, len) in [
            (Credential::Token(vec![7; 354]), TOKEN_OPTION_CODE, 354),
            (Credential::Session([9; 16]), SESSION_OPTION_CODE, 16),
        ] {
            let bytes = query_bytes(5, &name, RecordType::A, &credential);
            let m = Message::from_vec(&bytes).unwrap();
            let edns = m.extensions().as_ref().unwrap();
            match edns.options().get(EdnsCode::from(code)) {
                Some(EdnsOption::Unknown(_, data)) => assert_eq!(data.len(), len),
                other => panic!("{other:?}"),
            }
        }
        let bytes = query_bytes(5, &name, RecordType::A, &Credential::None);
        let m = Message::from_vec(&bytes).unwrap();
        assert!(
            m.extensions()
                .as_ref()
                .unwrap()
                .options()
                .as_ref()
                .is_empty()
        );
    }
}
