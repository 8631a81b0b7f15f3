//! The thin async shell: one exchange with one upstream over UDP, TCP, DoT or DoH.
//!
//! UDP uses a fresh socket per query, so the OS picks a random ephemeral source port each time,
//! and the socket is connected, so datagrams from other addresses never reach it. TCP and DoT
//! open one connection per query for now (no RFC 7766 pipelining yet); DoH keeps one HTTP/2
//! connection per upstream and multiplexes requests on it.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::client::conn::http2::SendRequest;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::ClientConfig;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use tokio_rustls::TlsConnector;

use super::Question;
use super::wire::{AttemptError, Checked, check_response};

/// Largest DNS message (TCP framing limit).
const MAX_MESSAGE: usize = 65_535;
/// DoH media type (RFC 8484 §6).
const DNS_MESSAGE: &str = "application/dns-message";

/// A validated response and its wire bytes.
#[derive(Debug)]
pub(crate) struct Response {
    pub(crate) wire: Vec<u8>,
    pub(crate) checked: Checked,
}

async fn bounded<T>(
    limit: Duration,
    fut: impl Future<Output = Result<T, AttemptError>>,
) -> Result<T, AttemptError> {
    tokio::time::timeout(limit, fut)
        .await
        .unwrap_or(Err(AttemptError::Timeout))
}

/// One UDP exchange. Responses that fail the checks in a way an off-path sender could cause
/// (wrong ID, wrong question, garbage) are dropped, counted in `dropped`, and the socket keeps
/// waiting until the timeout. A truncated answer is returned as is: the caller retries over TCP.
pub(crate) async fn udp(
    addr: SocketAddr,
    query: &[u8],
    id: u16,
    q: &Question,
    timeout: Duration,
    dropped: &AtomicU64,
) -> Result<Response, AttemptError> {
    bounded(timeout, async {
        let local: SocketAddr = if addr.is_ipv4() {
            (Ipv4Addr::UNSPECIFIED, 0).into()
        } else {
            (Ipv6Addr::UNSPECIFIED, 0).into()
        };
        let sock = UdpSocket::bind(local).await?;
        sock.connect(addr).await?;
        sock.send(query).await?;
        let mut buf = vec![0u8; MAX_MESSAGE];
        loop {
            let n = sock.recv(&mut buf).await?;
            let wire = buf.get(..n).ok_or(AttemptError::Malformed)?;
            match check_response(wire, id, q, false) {
                Ok(checked) => return Ok(Response { wire: wire.to_vec(), checked }),
                Err(e) if e.is_spoofable() => {
                    dropped.fetch_add(1, Ordering::Relaxed);
                    tracing::debug!(upstream = %addr, error = %e, "dropped non-matching UDP response");
                }
                Err(e) => return Err(e),
            }
        }
    })
    .await
}

/// Writes one length-prefixed query and reads one length-prefixed response.
async fn stream_exchange<S>(stream: &mut S, query: &[u8]) -> Result<Vec<u8>, AttemptError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let len = u16::try_from(query.len()).map_err(|_| AttemptError::TooLarge)?;
    let mut framed = Vec::with_capacity(query.len() + 2);
    framed.extend_from_slice(&len.to_be_bytes());
    framed.extend_from_slice(query);
    stream.write_all(&framed).await?;
    stream.flush().await?;
    let mut len = [0u8; 2];
    stream.read_exact(&mut len).await?;
    let mut buf = vec![0u8; usize::from(u16::from_be_bytes(len))];
    stream.read_exact(&mut buf).await?;
    Ok(buf)
}

/// One TCP exchange on a fresh connection.
pub(crate) async fn tcp(
    addr: SocketAddr,
    query: &[u8],
    id: u16,
    q: &Question,
    timeout: Duration,
) -> Result<Response, AttemptError> {
    bounded(timeout, async {
        let mut stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        let wire = stream_exchange(&mut stream, query).await?;
        let checked = check_response(&wire, id, q, true)?;
        Ok(Response { wire, checked })
    })
    .await
}

/// One DoT exchange on a fresh TLS connection.
pub(crate) async fn dot(
    addr: SocketAddr,
    server_name: ServerName<'static>,
    tls: Arc<ClientConfig>,
    query: &[u8],
    id: u16,
    q: &Question,
    timeout: Duration,
) -> Result<Response, AttemptError> {
    bounded(timeout, async {
        let tcp = TcpStream::connect(addr).await?;
        tcp.set_nodelay(true)?;
        let mut stream = TlsConnector::from(tls).connect(server_name, tcp).await?;
        let wire = stream_exchange(&mut stream, query).await?;
        let checked = check_response(&wire, id, q, true)?;
        Ok(Response { wire, checked })
    })
    .await
}

/// A DoH upstream's reusable HTTP/2 connection.
#[derive(Debug, Default)]
pub(crate) struct DohConn {
    sender: Mutex<Option<SendRequest<Full<Bytes>>>>,
}

impl DohConn {
    fn take_ready(&self) -> Option<SendRequest<Full<Bytes>>> {
        let guard = self.sender.lock().unwrap_or_else(PoisonError::into_inner);
        guard.as_ref().filter(|s| s.is_ready()).cloned()
    }

    fn store(&self, sender: Option<SendRequest<Full<Bytes>>>) {
        *self.sender.lock().unwrap_or_else(PoisonError::into_inner) = sender;
    }
}

/// Where and how to reach a DoH upstream.
#[derive(Debug)]
pub(crate) struct DohTarget<'a> {
    pub(crate) addr: SocketAddr,
    pub(crate) server_name: ServerName<'static>,
    pub(crate) uri: &'a http::Uri,
    pub(crate) tls: Arc<ClientConfig>,
    pub(crate) conn: &'a DohConn,
}

/// One DoH exchange (`POST`, ID 0 as RFC 8484 §4.1 asks), reusing the upstream's HTTP/2
/// connection when it is still open.
pub(crate) async fn doh(
    target: DohTarget<'_>,
    query: &[u8],
    q: &Question,
    timeout: Duration,
) -> Result<Response, AttemptError> {
    bounded(timeout, async {
        let mut sender = match target.conn.take_ready() {
            Some(sender) => sender,
            None => {
                let tcp = TcpStream::connect(target.addr).await?;
                tcp.set_nodelay(true)?;
                let tls = TlsConnector::from(Arc::clone(&target.tls))
                    .connect(target.server_name.clone(), tcp)
                    .await?;
                let (sender, conn) =
                    hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tls))
                        .await?;
                tokio::spawn(async move {
                    if let Err(e) = conn.await {
                        tracing::debug!(error = %e, "DoH upstream connection ended");
                    }
                });
                target.conn.store(Some(sender.clone()));
                sender
            }
        };
        let request = http::Request::post(target.uri.clone())
            .header(http::header::CONTENT_TYPE, DNS_MESSAGE)
            .header(http::header::ACCEPT, DNS_MESSAGE)
            .body(Full::new(Bytes::copy_from_slice(query)))?;
        let response = match sender.send_request(request).await {
            Ok(r) => r,
            Err(e) => {
                target.conn.store(None);
                return Err(e.into());
            }
        };
        let status = response.status();
        let type_ok = response
            .headers()
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.eq_ignore_ascii_case(DNS_MESSAGE));
        if status != http::StatusCode::OK || !type_ok {
            return Err(AttemptError::HttpStatus(status.as_u16()));
        }
        let body = Limited::new(response.into_body(), MAX_MESSAGE)
            .collect()
            .await
            .map_err(|e| {
                if e.is::<http_body_util::LengthLimitError>() {
                    AttemptError::TooLarge
                } else {
                    AttemptError::Io(std::io::Error::other(e))
                }
            })?;
        let wire = body.to_bytes().to_vec();
        let checked = check_response(&wire, 0, q, true)?;
        Ok(Response { wire, checked })
    })
    .await
}
