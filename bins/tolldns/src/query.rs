//! `tolldns query`: one DNS query (or `--repeat N`) to an edge over UDP, TCP, DoT or DoH,
//! carrying a toll ticket the way [`tolldns_tickets::protocol`] says: a token once (EDNS
//! option 65002, or DoH `Authorization: PrivateToken token="…"`), then the session ticket
//! the edge answered with (EDNS option 65001, or the DoH `tolldns-ticket` header; the edge
//! sends it in option 65001 or the `tolldns-session` response header).
//!
//! Output, one block per query: `rcode: NAME`, one `answer: RECORD` line per answer record,
//! `ede: CODE TEXT` per RFC 8914 extended error, `session: <32 hex>` when the edge handed out a
//! session ticket; a refused DoH request prints `http: STATUS REASON: TEXT` and its
//! `www-authenticate:` challenge. With `--repeat`, each block starts with `query: I/N
//! (CREDENTIAL)`.

use std::io::Write;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use base64::Engine as _;
use bytes::Bytes;
use clap::{Args, ValueEnum};
use hickory_proto::rr::{Name, RecordType};
use http::{Method, Request, header};
use http_body_util::Full;
use rand_core::RngCore as _;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::UdpSocket;
use tolldns_tickets::protocol::{SESSION_HEADER, TICKET_HEADER};
use tolldns_tickets::{Refusal, SESSION_TICKET_LEN};

use crate::dns::{self, Answer, Credential};
use crate::error::CliError;
use crate::http as http_client;
use crate::tokens::Tokens;

/// How `tolldns query` reaches the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Transport {
    /// DNS over UDP (default port 53).
    Udp,
    /// DNS over TCP (default port 53).
    Tcp,
    /// DNS over TLS, RFC 7858 (default port 853).
    Dot,
    /// DNS over HTTPS, RFC 8484: POST over HTTP/2 or HTTP/1.1 (default port 443).
    Doh,
}

/// Arguments of `tolldns query`.
#[derive(Debug, Args)]
pub struct QueryArgs {
    /// The server: `IP`, `IP:PORT`, `[IPv6]:PORT` or `HOST:PORT`; the port defaults to the
    /// transport's (53, 853, 443).
    #[arg(long, value_name = "ADDR")]
    pub server: String,
    /// Transport.
    #[arg(long, value_enum, default_value_t = Transport::Udp)]
    pub transport: Transport,
    /// DoT/DoH: the name the server's certificate must carry [default: localhost].
    #[arg(long, value_name = "NAME")]
    pub tls_name: Option<String>,
    /// DoT/DoH: PEM file of the root certificate(s) the server's chain ends in (required: no
    /// system roots are built in).
    #[arg(long, value_name = "FILE")]
    pub ca: Option<PathBuf>,
    /// DoH: the URL path of the DNS endpoint [default: /dns-query].
    #[arg(long, value_name = "PATH")]
    pub doh_path: Option<String>,
    /// Pay with a token from this tokens file (`tolldns ticket fetch`); the first unused one
    /// unless --index is given. It is marked used once the edge accepted it.
    #[arg(long, value_name = "FILE", conflicts_with = "session")]
    pub tokens: Option<PathBuf>,
    /// The index (from 0) of the token to present, even if it is marked used.
    #[arg(long, value_name = "I", requires = "tokens")]
    pub index: Option<usize>,
    /// Present this session ticket (32 hex characters, as printed after `session:`).
    #[arg(long, value_name = "HEX")]
    pub session: Option<String>,
    /// Send N queries, each after the first carrying the last session ticket received.
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub repeat: u32,
    /// Seconds to wait for each answer (including connection set-up).
    #[arg(long, value_name = "SECS", default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub timeout: u64,
    /// The name to query.
    #[arg(value_name = "NAME")]
    pub name: String,
    /// The record type: a mnemonic (A, AAAA, TXT, …) or a number.
    #[arg(value_name = "TYPE", default_value = "A")]
    pub rtype: String,
}

/// The long help of `tolldns query`.
pub const QUERY_HELP: &str = "\
Sends one DNS query for NAME (type TYPE, default A) to --server over --transport (udp, tcp, dot, \
doh) and prints the response: `rcode: NOERROR`, an `answer: ...` line per answer record, an \
`ede: CODE TEXT` line per RFC 8914 extended error, and `session: <32 hex>` when the edge handed \
out a session ticket.

Tickets (see `tolldns ticket --help`): with --tokens FILE the query presents a token, the first \
unused one of the file or --index I: in EDNS option 65002 over udp, tcp and dot, in an \
`Authorization: PrivateToken token=\"<base64url>\"` header over doh. An edge that accepts it \
answers with a 16-byte session ticket (EDNS option 65001, or the `tolldns-session` response \
header, base64url) that later queries carry instead (--session HEX: option 65001, or the \
`tolldns-ticket` request header). Once the edge accepted a token (or refused it as already \
redeemed), it is marked \"used\": true in the file. --repeat N sends N queries, the ones after \
the first carrying the last session ticket received, so one run shows redeem-then-session. A \
refusal is REFUSED with the extended error `toll ticket refused: <reason>`, or over doh a 401 \
with a `WWW-Authenticate: PrivateToken challenge=..., token-key=...` header and the same text.

dot and doh use TLS with the roots of --ca FILE (PEM; no system roots are built in) and check \
the certificate for --tls-name (default localhost); doh POSTs application/dns-message to \
--doh-path (default /dns-query) over HTTP/2 or HTTP/1.1, as ALPN settles.

The same by hand (kdig's +ednsopt takes CODE:HEX; the token is the file's base64url):
  TOKEN=$(jq -r '[.tokens[] | select(.used | not)][0].token' tokens.json)
  kdig @127.0.0.1 -p 5353 +ednsopt=65002:$(printf %s \"$TOKEN\" | basenc -d --base64url | od -An -v -tx1 | tr -d ' \\n') example.com
    (the answer's OPT section shows 65001 with the session ticket in hex; send it back with
    +ednsopt=65001:<32 hex>)
  curl --http2 -k -H \"Authorization: PrivateToken token=\\\"$TOKEN\\\"\" \\
    -H 'accept: application/dns-message' \\
    'https://127.0.0.1:8443/dns-query?dns=AAABAAABAAAAAAAAB2V4YW1wbGUDY29tAAABAAE' -D - -o answer.bin
    (-D - prints the headers: `tolldns-session: <base64url>` is the session ticket; send it back
    with -H 'tolldns-ticket: <that value>'; dns= is the base64url query, here example.com A)
Such tokens are not marked used in the file: mark them yourself, or use this command.

Exit codes: 0 the server answered (any rcode but REFUSED), 1 the server refused (REFUSED, or a \
DoH status other than 200), 2 bad input (arguments, tokens file) or a server that cannot be \
reached, answers nothing in --timeout, or answers nonsense.";

/// Longest DNS message (TCP length prefix, DoH body).
const MAX_MESSAGE: usize = 65_535;

/// What one exchange brought back.
#[derive(Debug)]
enum Outcome {
    /// A DNS response (over DoH: a `200` whose session header, if any, is in `session`).
    Dns(Answer),
    /// A DoH answer other than `200`.
    Http {
        /// Status and body text.
        text: String,
        /// The `WWW-Authenticate` challenge.
        challenge: Option<String>,
    },
}

impl Outcome {
    /// The refusal text when the server refused; `None` for an answer.
    fn refusal(&self) -> Option<String> {
        match self {
            Self::Dns(a) if a.refused() => Some(
                a.ede
                    .iter()
                    .map(|(_, text)| text.as_str())
                    .find(|t| !t.is_empty())
                    .map_or_else(|| "REFUSED".to_owned(), |t| format!("REFUSED ({t})")),
            ),
            Self::Dns(_) => None,
            Self::Http { text, .. } => Some(format!("HTTP {text}")),
        }
    }

    fn session(&self) -> Option<[u8; SESSION_TICKET_LEN]> {
        match self {
            Self::Dns(a) => a.session,
            Self::Http { .. } => None,
        }
    }

    fn print(&self, out: &mut dyn Write) -> std::io::Result<()> {
        match self {
            Self::Dns(a) => {
                writeln!(out, "rcode: {}", dns::rcode_name(a.rcode))?;
                if a.truncated {
                    writeln!(
                        out,
                        "truncated: the answer did not fit; retry with --transport tcp"
                    )?;
                }
                for record in &a.records {
                    writeln!(out, "answer: {record}")?;
                }
                for (code, text) in &a.ede {
                    writeln!(out, "ede: {code} {text}")?;
                }
                if let Some(s) = a.session {
                    writeln!(out, "session: {}", hex::encode(s))?;
                }
            }
            Self::Http { text, challenge } => {
                writeln!(out, "http: {text}")?;
                if let Some(c) = challenge {
                    writeln!(out, "www-authenticate: {}", crate::printable(c))?;
                }
            }
        }
        Ok(())
    }
}

/// Where and how queries go.
struct Target {
    transport: Transport,
    addr: SocketAddr,
    tls: Option<(Arc<rustls::ClientConfig>, String)>,
    doh_path: String,
    timeout: Duration,
}

/// Runs `tolldns query`.
///
/// # Errors
///
/// [`CliError::Refused`] after printing a refusal; [`CliError::BadField`] for bad arguments;
/// tokens file, network and protocol errors.
pub fn run(args: &QueryArgs, stdout: &mut dyn Write) -> anyhow::Result<()> {
    let name = dns::parse_name(&args.name)?;
    let rtype = dns::parse_type(&args.rtype)?;
    let tls_transport = matches!(args.transport, Transport::Dot | Transport::Doh);
    if !tls_transport {
        for (set, flag) in [
            (args.ca.is_some(), "--ca"),
            (args.tls_name.is_some(), "--tls-name"),
        ] {
            if set {
                return Err(CliError::field(flag, "only for --transport dot or doh").into());
            }
        }
    }
    if args.doh_path.is_some() && args.transport != Transport::Doh {
        return Err(CliError::field("--doh-path", "only for --transport doh").into());
    }
    let doh_path = args
        .doh_path
        .clone()
        .unwrap_or_else(|| "/dns-query".to_owned());
    if !doh_path.starts_with('/')
        || doh_path.contains(['?', '#'])
        || doh_path.parse::<http::uri::PathAndQuery>().is_err()
    {
        return Err(CliError::field(
            "--doh-path",
            format!("{doh_path:?} is not a URL path starting with /"),
        )
        .into());
    }
    let tls = if tls_transport {
        let ca = args.ca.as_deref().ok_or_else(|| {
            CliError::field(
                "--ca",
                "--transport dot and doh need --ca FILE (the PEM root the server's certificate chains to)",
            )
        })?;
        let alpn: &[&[u8]] = if args.transport == Transport::Doh {
            &[b"h2", b"http/1.1"]
        } else {
            &[b"dot"]
        };
        let tls_name = args
            .tls_name
            .clone()
            .unwrap_or_else(|| "localhost".to_owned());
        http_client::server_name(&tls_name)?;
        Some((http_client::client_config(ca, alpn)?, tls_name))
    } else {
        None
    };
    let mut credential = match &args.session {
        Some(text) => Credential::Session(parse_session(text)?),
        None => Credential::None,
    };
    let mut tokens = None;
    if let Some(path) = &args.tokens {
        let file = Tokens::load(path)?;
        let index = match args.index {
            Some(i) => {
                let t = file.tokens.get(i).ok_or_else(|| {
                    CliError::field(
                        "--index",
                        format!("{i}: {} holds {} tokens", path.display(), file.tokens.len()),
                    )
                })?;
                if t.used {
                    eprintln!(
                        "note: token {i} is marked used; the edge will likely refuse it as replayed"
                    );
                }
                i
            }
            None => file.next_unused().ok_or_else(|| {
                CliError::field(
                    "--tokens",
                    format!(
                        "{}: every token is used; fetch more with `tolldns ticket fetch`",
                        path.display()
                    ),
                )
            })?,
        };
        credential = Credential::Token(file.tokens[index].bytes.clone());
        tokens = Some((path, file, index));
    }

    let runtime = crate::runtime()?;
    runtime.block_on(async {
        let default_port = match args.transport {
            Transport::Udp | Transport::Tcp => 53,
            Transport::Dot => 853,
            Transport::Doh => 443,
        };
        let addr = resolve(&args.server, default_port).await?;
        let target = Target {
            transport: args.transport,
            addr,
            tls,
            doh_path,
            timeout: Duration::from_secs(args.timeout),
        };
        let mut session = None;
        for i in 0..args.repeat {
            if args.repeat > 1 {
                let what = match &credential {
                    Credential::None => "no ticket".to_owned(),
                    Credential::Token(_) => match &tokens {
                        Some((_, _, index)) => format!("token {index}"),
                        None => "token".to_owned(),
                    },
                    Credential::Session(_) => "session".to_owned(),
                };
                writeln!(stdout, "query: {}/{} ({what})", i + 1, args.repeat)?;
            }
            let outcome = exchange(&target, &name, rtype, &credential).await?;
            outcome.print(stdout)?;
            stdout.flush()?;
            let refusal = outcome.refusal();
            if let (Credential::Token(_), Some((path, file, index))) = (&credential, &mut tokens) {
                let replayed = Refusal::Replayed.client_text();
                let spent = refusal.as_ref().is_none_or(|r| r.contains(&replayed));
                if spent && !file.tokens[*index].used {
                    file.tokens[*index].used = true;
                    file.save(path)?;
                }
            }
            if let Some(text) = refusal {
                return Err(CliError::Refused(format!("the server answered {text}")).into());
            }
            if let Some(s) = outcome.session() {
                session = Some(s);
            }
            credential = match session {
                Some(s) => Credential::Session(s),
                None => {
                    if i + 1 < args.repeat && credential != Credential::None {
                        eprintln!(
                            "note: no session ticket received; later queries carry no ticket"
                        );
                    }
                    Credential::None
                }
            };
        }
        Ok(())
    })
}

/// A session ticket: 32 hex characters.
fn parse_session(text: &str) -> Result<[u8; SESSION_TICKET_LEN], CliError> {
    let mut out = [0u8; SESSION_TICKET_LEN];
    hex::decode_to_slice(text.trim(), &mut out)
        .map_err(|_| CliError::field("--session", format!("{text:?} is not 32 hex characters")))?;
    Ok(out)
}

/// `IP`, `IP:PORT`, `[IPv6]:PORT`, `HOST` or `HOST:PORT`.
async fn resolve(server: &str, default_port: u16) -> anyhow::Result<SocketAddr> {
    if let Ok(addr) = server.parse::<SocketAddr>() {
        return Ok(addr);
    }
    let bare = server.trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = bare.parse::<IpAddr>() {
        return Ok(SocketAddr::new(ip, default_port));
    }
    let (host, port) = match server.rsplit_once(':') {
        Some((host, port)) => (
            host,
            port.parse::<u16>()
                .map_err(|_| CliError::field("--server", format!("{server:?}: bad port")))?,
        ),
        None => (server, default_port),
    };
    if host.is_empty() || host.contains(':') {
        return Err(CliError::field("--server", format!("{server:?} is not an address")).into());
    }
    tokio::net::lookup_host((host, port))
        .await
        .with_context(|| format!("resolving {host}"))?
        .next()
        .with_context(|| format!("{host} has no address"))
}

/// One query and its response, within the target's timeout.
async fn exchange(
    target: &Target,
    name: &Name,
    rtype: RecordType,
    credential: &Credential,
) -> anyhow::Result<Outcome> {
    let go = async {
        match target.transport {
            Transport::Udp => {
                let id = random_id();
                let query = dns::query_bytes(id, name, rtype, credential)?;
                Ok(Outcome::Dns(udp(target.addr, &query, id).await?))
            }
            Transport::Tcp | Transport::Dot => {
                let id = random_id();
                let query = dns::query_bytes(id, name, rtype, credential)?;
                let tcp =
                    http_client::connect_tcp(&target.addr.ip().to_string(), target.addr.port())
                        .await?;
                let answer = match &target.tls {
                    Some((config, tls_name)) => {
                        let server_name = http_client::server_name(tls_name)?;
                        let (tls, _) =
                            http_client::connect_tls(tcp, Arc::clone(config), server_name).await?;
                        stream(tls, &query, id).await?
                    }
                    None => stream(tcp, &query, id).await?,
                };
                Ok(Outcome::Dns(answer))
            }
            Transport::Doh => doh(target, name, rtype, credential).await,
        }
    };
    let transport = format!("{:?}", target.transport).to_ascii_lowercase();
    tokio::time::timeout(target.timeout, go)
        .await
        .map_err(|_| anyhow::anyhow!("no answer within {} s", target.timeout.as_secs()))
        .and_then(|r| r)
        .with_context(|| format!("querying {} over {transport}", target.addr))
}

fn random_id() -> u16 {
    let mut b = [0u8; 2];
    rand_core::OsRng.fill_bytes(&mut b);
    u16::from_be_bytes(b)
}

/// Over UDP: send, then wait for the response with our id from the server.
async fn udp(addr: SocketAddr, query: &[u8], id: u16) -> anyhow::Result<Answer> {
    let local: SocketAddr = if addr.is_ipv4() {
        (std::net::Ipv4Addr::UNSPECIFIED, 0).into()
    } else {
        (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
    };
    let socket = UdpSocket::bind(local)
        .await
        .context("binding a UDP socket")?;
    socket
        .connect(addr)
        .await
        .context("connecting the UDP socket")?;
    socket.send(query).await.context("sending the query")?;
    let mut buf = vec![0u8; MAX_MESSAGE];
    loop {
        let n = socket
            .recv(&mut buf)
            .await
            .context("receiving the response")?;
        let bytes = buf.get(..n).unwrap_or(&[]);
        // Stray datagrams (another id, garbage) are not our answer: keep waiting.
        match dns::parse_response(bytes, Some(id)) {
            Ok(answer) => return Ok(answer),
            Err(e) => eprintln!("note: ignoring a datagram: {e}"),
        }
    }
}

/// Over a stream (TCP, TLS): RFC 1035 §4.2.2 two-byte length prefix.
async fn stream<S>(mut s: S, query: &[u8], id: u16) -> anyhow::Result<Answer>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let len = u16::try_from(query.len()).context("the query is too long")?;
    let mut framed = Vec::with_capacity(query.len() + 2);
    framed.extend_from_slice(&len.to_be_bytes());
    framed.extend_from_slice(query);
    s.write_all(&framed).await.context("sending the query")?;
    s.flush().await.context("sending the query")?;
    let mut prefix = [0u8; 2];
    s.read_exact(&mut prefix)
        .await
        .context("reading the response length (the server closed the connection?)")?;
    let mut buf = vec![0u8; usize::from(u16::from_be_bytes(prefix))];
    s.read_exact(&mut buf)
        .await
        .context("reading the response")?;
    dns::parse_response(&buf, Some(id))
}

/// Over DoH (RFC 8484 POST, id 0), with the credential in a header.
async fn doh(
    target: &Target,
    name: &Name,
    rtype: RecordType,
    credential: &Credential,
) -> anyhow::Result<Outcome> {
    let Some((config, tls_name)) = &target.tls else {
        anyhow::bail!("DoH needs TLS settings");
    };
    let query = dns::query_bytes(0, name, rtype, &Credential::None)?;
    let tcp = http_client::connect_tcp(&target.addr.ip().to_string(), target.addr.port()).await?;
    let server_name = http_client::server_name(tls_name)?;
    let (tls, h2) = http_client::connect_tls(tcp, Arc::clone(config), server_name).await?;
    let host = if tls_name.contains(':') {
        format!("[{tls_name}]")
    } else {
        tls_name.clone()
    };
    let authority = if target.addr.port() == 443 {
        host
    } else {
        format!("{host}:{}", target.addr.port())
    };
    let uri = if h2 {
        format!("https://{authority}{}", target.doh_path)
    } else {
        target.doh_path.clone()
    };
    let mut request = Request::builder()
        .method(Method::POST)
        .uri(uri)
        .header(header::CONTENT_TYPE, "application/dns-message")
        .header(header::ACCEPT, "application/dns-message");
    if !h2 {
        request = request.header(header::HOST, authority);
    }
    match credential {
        Credential::None => {}
        Credential::Token(bytes) => {
            request = request.header(
                header::AUTHORIZATION,
                tolldns_tickets::auth::authorization(bytes),
            );
        }
        Credential::Session(ticket) => request = request.header(TICKET_HEADER, hex::encode(ticket)),
    }
    let request = request
        .body(Full::new(Bytes::from(query)))
        .context("building the DoH request")?;
    let reply = http_client::send(Box::new(tls), h2, request, MAX_MESSAGE).await?;
    if reply.status != http::StatusCode::OK {
        return Ok(Outcome::Http {
            text: reply.describe(),
            challenge: reply
                .header(header::WWW_AUTHENTICATE.as_str())
                .map(str::to_owned),
        });
    }
    let mut answer = dns::parse_response(&reply.body, None)?;
    if let Some(value) = reply.header(SESSION_HEADER) {
        let decoded = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(value.trim().trim_end_matches('='))
            .ok()
            .and_then(|b| <[u8; SESSION_TICKET_LEN]>::try_from(b.as_slice()).ok());
        match decoded {
            Some(s) => answer.session = Some(s),
            None => eprintln!(
                "note: ignoring a malformed {SESSION_HEADER} header {:?}",
                crate::printable(value)
            ),
        }
    }
    Ok(Outcome::Dns(answer))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_parse_from_32_hex() {
        assert_eq!(parse_session("ab".repeat(16).as_str()).unwrap(), [0xab; 16]);
        assert!(parse_session("abab").is_err());
        assert!(parse_session(&"zz".repeat(16)).is_err());
    }

    #[test]
    fn servers_resolve_with_default_ports() {
        let rt = crate::runtime().unwrap();
        let r = |s: &str| rt.block_on(resolve(s, 53));
        assert_eq!(r("127.0.0.1").unwrap(), "127.0.0.1:53".parse().unwrap());
        assert_eq!(
            r("127.0.0.1:5353").unwrap(),
            "127.0.0.1:5353".parse().unwrap()
        );
        assert_eq!(r("[::1]:853").unwrap(), "[::1]:853".parse().unwrap());
        assert_eq!(r("::1").unwrap(), "[::1]:53".parse().unwrap());
        assert!(r("localhost:x").is_err());
        assert!(r(":53").is_err());
    }
}
