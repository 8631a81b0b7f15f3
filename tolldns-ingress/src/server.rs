//! The async shell: UDP, TCP/DoT (RFC 7766 framing) and DoH listeners around the [`Engine`].

use std::convert::Infallible;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use bytes::Bytes;
use http::{Method, StatusCode, header};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, WriteHalf};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::{Mutex, Semaphore, mpsc, watch};
use tokio_rustls::TlsAcceptor;
use tolldns_receipts::Transport;

use crate::config::StreamConfig;
use crate::engine::{Engine, MAX_MESSAGE, Reply, Request, Step};
use crate::tickets::Credential;
use crate::udp::{self, RecvBatch, SendBatch};
use crate::upstream::UpstreamPool;

/// Name of the DoH request header carrying a client's session ticket (16 bytes, hex or
/// base64).
pub const TICKET_HEADER: &str = tolldns_tickets::protocol::TICKET_HEADER;

/// State shared by every listener task.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) engine: Engine,
    pub(crate) pool: UpstreamPool,
    pub(crate) streams: StreamConfig,
    pub(crate) doh_path: String,
    pub(crate) connections: Arc<Semaphore>,
    /// Held by every task that may still answer a query; shutdown waits for all clones to go.
    pub(crate) drain: mpsc::Sender<()>,
    /// Answer buffers of the misses answered from their own task.
    pub(crate) buffers: AnswerBuffers,
}

/// Answer buffers for misses, which are answered from their own task: zeroed once and reused.
/// Allocating and zeroing 64 KiB per miss cost more CPU than the rest of the miss path. At
/// most [`AnswerBuffers::KEEP`] idle buffers are kept (16 MiB); more misses in flight
/// allocate.
#[derive(Debug, Default)]
pub(crate) struct AnswerBuffers(std::sync::Mutex<Vec<Vec<u8>>>);

impl AnswerBuffers {
    /// Idle buffers kept.
    const KEEP: usize = 256;

    /// A buffer of `MAX_MESSAGE + 2` bytes (its content is whatever the last user left).
    pub(crate) fn take(&self) -> Vec<u8> {
        self.0
            .lock()
            .ok()
            .and_then(|mut free| free.pop())
            .unwrap_or_else(|| vec![0u8; MAX_MESSAGE.saturating_add(2)])
    }

    /// Hands `buf` back for the next miss.
    pub(crate) fn give(&self, buf: Vec<u8>) {
        if let Ok(mut free) = self.0.lock()
            && free.len() < Self::KEEP
            && buf.len() == MAX_MESSAGE.saturating_add(2)
        {
            free.push(buf);
        }
    }
}

/// After answering from a hit that reported prefetch due: refresh the entry in the background
/// (bounded by the engine's prefetch slots).
pub(crate) fn spawn_prefetch(shared: &Arc<Shared>, query: &[u8], reply: &Reply) {
    if !reply.prefetch {
        return;
    }
    let Some(slot) = shared.engine.prefetch_slot() else {
        return;
    };
    let shared = Arc::clone(shared);
    let query = query.to_vec();
    tokio::spawn(async move {
        shared.engine.prefetch(&shared.pool, &query, slot).await;
    });
}

/// Datagrams served in a row before the worker yields to other tasks.
const UDP_BURST: usize = 64;

/// Serve one UDP socket until shutdown: wait for readability, then read datagrams in batches
/// ([`RecvBatch`]: one `recvmmsg` per batch on Linux), decide each, and send the batch's answers
/// together ([`SendBatch`]: one `sendmmsg`), until the socket is drained. No future or timer
/// per datagram; misses are resolved in their own tasks and answered from there.
pub(crate) async fn udp_worker(
    shared: Arc<Shared>,
    socket: Arc<UdpSocket>,
    mut stop: watch::Receiver<bool>,
) {
    let drain = shared.drain.clone();
    let mut inbox = RecvBatch::new(udp::BATCH, MAX_MESSAGE);
    let mut outbox = SendBatch::new();
    // For each queued answer: the datagram it answers (index in `inbox`) and its reply.
    let mut answered: Vec<(usize, Reply)> = Vec::with_capacity(udp::BATCH);
    let mut out = vec![0u8; MAX_MESSAGE];
    loop {
        tokio::select! {
            biased;
            _ = stop.changed() => break,
            r = socket.readable() => {
                if let Err(e) = r {
                    tracing::debug!(error = %e, "udp socket error");
                    continue;
                }
            }
        }
        let mut served = 0usize;
        loop {
            if served >= UDP_BURST {
                if stop.has_changed().unwrap_or(true) {
                    break;
                }
                served = 0;
                tokio::task::yield_now().await;
            }
            let n = match inbox.try_recv(&socket) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => {
                    tracing::debug!(error = %e, "udp receive error");
                    served = served.saturating_add(1);
                    continue;
                }
            };
            served = served.saturating_add(n.max(1));
            // Every datagram of the batch was read by the same call.
            let received = shared.engine.clock().now();
            for i in 0..n {
                let Some((query, peer)) = inbox.get(i) else {
                    continue;
                };
                let req = Request {
                    transport: Transport::Udp,
                    source: peer.ip(),
                    query,
                    credential: Credential::None,
                    received,
                };
                match shared.engine.handle(&req, received, &mut out) {
                    Step::Drop => {}
                    Step::Respond(reply) => {
                        if let Some(resp) = out.get(..reply.len) {
                            outbox.push(resp, peer);
                            answered.push((i, reply));
                        }
                    }
                    Step::Forward(fwd) => {
                        let shared = Arc::clone(&shared);
                        let socket = Arc::clone(&socket);
                        let query = query.to_vec();
                        let guard = drain.clone();
                        tokio::spawn(async move {
                            let req = Request {
                                query: &query,
                                ..req_owned(peer.ip(), Transport::Udp, received)
                            };
                            let mut out = shared.buffers.take();
                            let reply = shared
                                .engine
                                .resolve(&shared.pool, &req, fwd, &mut out)
                                .await;
                            if let Some(resp) = out.get(..reply.len).filter(|r| !r.is_empty()) {
                                if socket.send_to(resp, peer).await.is_ok() {
                                    shared.engine.complete(&req, &reply, resp);
                                }
                            }
                            shared.buffers.give(out);
                            drop(guard);
                        });
                    }
                }
            }
            if outbox.len() == 0 {
                continue;
            }
            outbox.flush(&socket).await;
            // Metrics and receipts for the answers that left; prefetch for every hit due.
            for (k, resp) in outbox.sent() {
                let Some(&(i, reply)) = answered.get(k) else {
                    continue;
                };
                if let Some((query, peer)) = inbox.get(i) {
                    let req = Request {
                        transport: Transport::Udp,
                        source: peer.ip(),
                        query,
                        credential: Credential::None,
                        received,
                    };
                    shared.engine.complete(&req, &reply, resp);
                }
            }
            for &(i, reply) in &answered {
                if let Some((query, _)) = inbox.get(i) {
                    spawn_prefetch(&shared, query, &reply);
                }
            }
            answered.clear();
            outbox.clear();
        }
    }
}

fn req_owned(source: IpAddr, transport: Transport, received: Instant) -> Request<'static> {
    Request {
        transport,
        source,
        query: &[],
        credential: Credential::None,
        received,
    }
}

/// Accept TCP (and, with an acceptor, DoT) connections until shutdown.
pub(crate) async fn stream_listener(
    shared: Arc<Shared>,
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    stop: watch::Receiver<bool>,
) {
    let mut stop_accept = stop.clone();
    loop {
        let (tcp, peer) = tokio::select! {
            _ = stop_accept.changed() => break,
            r = listener.accept() => match r {
                Ok(v) => v,
                Err(e) => {
                    tracing::debug!(error = %e, "accept error");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            },
        };
        let Ok(permit) = Arc::clone(&shared.connections).try_acquire_owned() else {
            // Over the connection limit: close at once.
            drop(tcp);
            continue;
        };
        let _ = tcp.set_nodelay(true);
        let shared = Arc::clone(&shared);
        let tls = tls.clone();
        let stop = stop.clone();
        tokio::spawn(async move {
            shared.engine.metrics().connection(true);
            match tls {
                None => serve_stream(&shared, tcp, peer, Transport::Tcp, stop).await,
                Some(acceptor) => {
                    let limit =
                        Duration::from_millis(shared.streams.tls_handshake_timeout_ms.max(1));
                    if let Ok(Ok(stream)) = tokio::time::timeout(limit, acceptor.accept(tcp)).await
                    {
                        serve_stream(&shared, stream, peer, Transport::Dot, stop).await;
                    }
                }
            }
            shared.engine.metrics().connection(false);
            drop(permit);
        });
    }
}

async fn write_frame<S: AsyncWrite>(
    writer: &Mutex<WriteHalf<S>>,
    frame: &[u8],
    limit: Duration,
) -> io::Result<()> {
    let mut w = writer.lock().await;
    match tokio::time::timeout(limit, w.write_all(frame)).await {
        Ok(r) => r,
        Err(_) => Err(io::ErrorKind::TimedOut.into()),
    }
}

/// Room for one largest framed message plus a read chunk: a connection's input buffer.
const STREAM_INBUF: usize = MAX_MESSAGE + 2 + 16 * 1024;

/// Batched answers are written as soon as they reach this many bytes.
const STREAM_BATCH_FLUSH: usize = 32 * 1024;

/// An answer written into a connection's output batch, completed once the batch is sent.
struct Batched {
    query: std::ops::Range<usize>,
    received: Instant,
    reply: Reply,
    frame: std::ops::Range<usize>,
}

/// Serve one RFC 7766 connection: pipelined queries, answers written as they complete (out of
/// order), an idle timeout, and a bound on queries in progress per connection.
///
/// Every complete query already read is handled before the next read, and the answers decided
/// at once (cache hits, errors) leave in one write: one segment (one TLS record) per batch of
/// pipelined queries rather than one per answer. A partial message must be completed within
/// the idle timeout of its first byte.
async fn serve_stream<S>(
    shared: &Arc<Shared>,
    stream: S,
    peer: SocketAddr,
    transport: Transport,
    mut stop: watch::Receiver<bool>,
) where
    S: AsyncRead + AsyncWrite + Send + 'static,
{
    let (mut rd, wr) = tokio::io::split(stream);
    let wr = Arc::new(Mutex::new(wr));
    let idle = shared.streams.idle();
    let pipeline = Arc::new(Semaphore::new(shared.streams.max_pipelined.max(1)));
    let mut inbuf = vec![0u8; STREAM_INBUF];
    let (mut start, mut end) = (0usize, 0usize);
    let mut partial_since: Option<tokio::time::Instant> = None;
    let mut out = vec![0u8; MAX_MESSAGE];
    let mut batch: Vec<u8> = Vec::with_capacity(4096);
    let mut done: Vec<Batched> = Vec::new();
    'conn: loop {
        // Handle every complete message in inbuf[start..end].
        let mut close = false;
        let mut consumed = false;
        while let Some(&[hi, lo]) = inbuf
            .get(start..start.saturating_add(2))
            .filter(|_| end >= start + 2)
        {
            let len = usize::from(u16::from_be_bytes([hi, lo]));
            let q_start = start.saturating_add(2);
            let q_end = q_start.saturating_add(len);
            if q_end > end {
                break;
            }
            start = q_end;
            consumed = true;
            let received = shared.engine.clock().now();
            let Some(query) = inbuf.get(q_start..q_end) else {
                close = true;
                break;
            };
            let req = Request {
                transport,
                source: peer.ip(),
                query,
                credential: Credential::None,
                received,
            };
            match shared.engine.handle(&req, received, &mut out) {
                Step::Drop => {
                    // Nothing answerable (not even a header): RFC 7766 lets us close.
                    close = true;
                    break;
                }
                Step::Respond(reply) => {
                    let (Ok(n), Some(body)) = (u16::try_from(reply.len), out.get(..reply.len))
                    else {
                        close = true;
                        break;
                    };
                    let f_start = batch.len();
                    batch.extend_from_slice(&n.to_be_bytes());
                    batch.extend_from_slice(body);
                    done.push(Batched {
                        query: q_start..q_end,
                        received,
                        reply,
                        frame: f_start.saturating_add(2)..batch.len(),
                    });
                    // Bound the memory one connection's pipelined queries can pin.
                    if batch.len() >= STREAM_BATCH_FLUSH
                        && !flush(
                            shared, &wr, &inbuf, &mut batch, &mut done, peer, transport, idle,
                        )
                        .await
                    {
                        break 'conn;
                    }
                }
                Step::Forward(fwd) => {
                    let permit = match Arc::clone(&pipeline).try_acquire_owned() {
                        Ok(p) => p,
                        Err(_) => {
                            // At the bound: send what is ready, then wait for a slot.
                            if !flush(
                                shared, &wr, &inbuf, &mut batch, &mut done, peer, transport, idle,
                            )
                            .await
                            {
                                break 'conn;
                            }
                            let Ok(p) = Arc::clone(&pipeline).acquire_owned().await else {
                                break 'conn;
                            };
                            p
                        }
                    };
                    let shared = Arc::clone(shared);
                    let wr = Arc::clone(&wr);
                    let query = query.to_vec();
                    let guard = shared.drain.clone();
                    tokio::spawn(async move {
                        let req = Request {
                            query: &query,
                            ..req_owned(peer.ip(), transport, received)
                        };
                        let mut out = shared.buffers.take();
                        let Some(body) = out.get_mut(2..) else { return };
                        let reply = shared.engine.resolve(&shared.pool, &req, fwd, body).await;
                        if let (Ok(n), Some(frame)) = (
                            u16::try_from(reply.len),
                            out.get_mut(..reply.len.saturating_add(2)),
                        ) {
                            frame[..2].copy_from_slice(&n.to_be_bytes());
                            if n > 0 && write_frame(&wr, frame, idle).await.is_ok() {
                                if let Some(resp) = frame.get(2..) {
                                    shared.engine.complete(&req, &reply, resp);
                                }
                            }
                        }
                        shared.buffers.give(out);
                        drop(permit);
                        drop(guard);
                    });
                }
            }
        }
        if !flush(
            shared, &wr, &inbuf, &mut batch, &mut done, peer, transport, idle,
        )
        .await
            || close
        {
            break;
        }
        // Keep only the partial message, at the front.
        if start == end {
            (start, end) = (0, 0);
            partial_since = None;
        } else {
            inbuf.copy_within(start..end, 0);
            end -= start;
            start = 0;
            if consumed || partial_since.is_none() {
                partial_since = Some(tokio::time::Instant::now());
            }
        }
        let deadline = partial_since.unwrap_or_else(tokio::time::Instant::now) + idle;
        let Some(room) = inbuf.get_mut(end..) else {
            break;
        };
        let read = tokio::select! {
            _ = stop.changed() => break,
            r = tokio::time::timeout_at(deadline, rd.read(room)) => r,
        };
        match read {
            Ok(Ok(n)) if n > 0 => end = end.saturating_add(n),
            _ => break,
        }
    }
    // Let answers in progress finish before the write half goes away with the last task.
    let mut w = wr.lock().await;
    let _ = tokio::time::timeout(Duration::from_millis(100), w.flush()).await;
}

/// Write the batched answers in one go, then complete them (metrics, receipts, prefetch).
/// Returns false when the write failed (the connection is done).
#[allow(clippy::too_many_arguments)]
async fn flush<W: AsyncWrite>(
    shared: &Arc<Shared>,
    wr: &Mutex<WriteHalf<W>>,
    inbuf: &[u8],
    batch: &mut Vec<u8>,
    done: &mut Vec<Batched>,
    peer: SocketAddr,
    transport: Transport,
    idle: Duration,
) -> bool {
    if batch.is_empty() {
        return true;
    }
    let ok = write_frame(wr, batch, idle).await.is_ok();
    if ok {
        for b in done.iter() {
            let query = inbuf.get(b.query.clone()).unwrap_or(&[]);
            let req = Request {
                transport,
                source: peer.ip(),
                query,
                credential: Credential::None,
                received: b.received,
            };
            if let Some(resp) = batch.get(b.frame.clone()) {
                shared.engine.complete(&req, &b.reply, resp);
            }
            spawn_prefetch(shared, query, &b.reply);
        }
    }
    batch.clear();
    done.clear();
    ok
}

/// Accept DoH connections until shutdown.
// Without the `doh` feature nothing starts it, and the linker drops the DoH server.
#[cfg_attr(not(feature = "doh"), allow(dead_code))]
pub(crate) async fn doh_listener(
    shared: Arc<Shared>,
    listener: TcpListener,
    acceptor: TlsAcceptor,
    stop: watch::Receiver<bool>,
) {
    let mut stop_accept = stop.clone();
    loop {
        let (tcp, peer) = tokio::select! {
            _ = stop_accept.changed() => break,
            r = listener.accept() => match r {
                Ok(v) => v,
                Err(_) => {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            },
        };
        let Ok(permit) = Arc::clone(&shared.connections).try_acquire_owned() else {
            drop(tcp);
            continue;
        };
        let _ = tcp.set_nodelay(true);
        let shared = Arc::clone(&shared);
        let acceptor = acceptor.clone();
        let mut stop = stop.clone();
        tokio::spawn(async move {
            let limit = Duration::from_millis(shared.streams.tls_handshake_timeout_ms.max(1));
            let Ok(Ok(tls)) = tokio::time::timeout(limit, acceptor.accept(tcp)).await else {
                return;
            };
            shared.engine.metrics().connection(true);
            serve_doh(&shared, tls, peer, &mut stop).await;
            shared.engine.metrics().connection(false);
            drop(permit);
        });
    }
}

async fn serve_doh(
    shared: &Arc<Shared>,
    tls: tokio_rustls::server::TlsStream<TcpStream>,
    peer: SocketAddr,
    stop: &mut watch::Receiver<bool>,
) {
    let idle = shared.streams.idle();
    let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(idle)
        .keep_alive(true);
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(Some(idle))
        .keep_alive_timeout(idle)
        .max_concurrent_streams(u32::try_from(shared.streams.max_pipelined.max(1)).unwrap_or(64));
    let svc_shared = Arc::clone(shared);
    let service = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
        let shared = Arc::clone(&svc_shared);
        async move { Ok::<_, Infallible>(doh_request(&shared, peer.ip(), req).await) }
    });
    let conn = builder.serve_connection(TokioIo::new(tls), service);
    tokio::pin!(conn);
    tokio::select! {
        _ = conn.as_mut() => {}
        _ = stop.changed() => {
            conn.as_mut().graceful_shutdown();
            let _ = tokio::time::timeout(Duration::from_secs(5), conn.as_mut()).await;
        }
    }
}

fn plain(status: StatusCode, msg: impl Into<Bytes>) -> hyper::Response<Full<Bytes>> {
    let mut r = hyper::Response::new(Full::new(msg.into()));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    if status == StatusCode::METHOD_NOT_ALLOWED {
        r.headers_mut()
            .insert(header::ALLOW, header::HeaderValue::from_static("GET, POST"));
    }
    r
}

thread_local! {
    /// Per-thread response buffer for DoH answers decided without I/O.
    static DOH_SCRATCH: std::cell::RefCell<Vec<u8>> = std::cell::RefCell::new(vec![0u8; MAX_MESSAGE]);
}

/// Decode a ticket given as 32 hex digits or base64 (standard or URL-safe, padded or not).
pub fn parse_ticket(value: &str) -> Option<[u8; 16]> {
    let v = value.trim();
    if v.len() == 32 && v.bytes().all(|b| b.is_ascii_hexdigit()) {
        let mut out = [0u8; 16];
        for (i, slot) in out.iter_mut().enumerate() {
            let pair = v.get(i * 2..i * 2 + 2)?;
            *slot = u8::from_str_radix(pair, 16).ok()?;
        }
        return Some(out);
    }
    let trimmed = v.trim_end_matches('=');
    let bytes = base64::engine::general_purpose::STANDARD_NO_PAD
        .decode(trimmed)
        .or_else(|_| base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(trimmed))
        .ok()?;
    <[u8; 16]>::try_from(bytes.as_slice()).ok()
}

async fn doh_request(
    shared: &Arc<Shared>,
    source: IpAddr,
    req: hyper::Request<Incoming>,
) -> hyper::Response<Full<Bytes>> {
    if req.uri().path() != shared.doh_path {
        return plain(StatusCode::NOT_FOUND, "not found\n");
    }
    // Ticket credentials: a token (RFC 9577 `Authorization: PrivateToken`) or a session
    // ticket. One that does not even decode is refused like a bad token.
    let token = match req.headers().get(header::AUTHORIZATION) {
        None => None,
        Some(v) => match v
            .to_str()
            .ok()
            .and_then(|v| tolldns_tickets::auth::parse_authorization(v).ok())
        {
            Some(t) => Some(t),
            None => return ticket_refused(shared, tolldns_tickets::Refusal::Malformed),
        },
    };
    let session = match req.headers().get(TICKET_HEADER) {
        None => None,
        Some(v) => match v.to_str().ok().and_then(parse_ticket) {
            Some(t) => Some(t),
            None => return ticket_refused(shared, tolldns_tickets::Refusal::Malformed),
        },
    };
    let max_body = shared.streams.doh_max_body.min(MAX_MESSAGE);
    let query: Vec<u8> = match *req.method() {
        Method::GET => {
            let Some(param) = req
                .uri()
                .query()
                .and_then(|q| q.split('&').find_map(|kv| kv.strip_prefix("dns=")))
            else {
                return plain(StatusCode::BAD_REQUEST, "missing dns query parameter\n");
            };
            // base64url of at most 65535 bytes.
            if param.len() > max_body.saturating_mul(4) / 3 + 4 {
                return plain(StatusCode::PAYLOAD_TOO_LARGE, "dns parameter too large\n");
            }
            match base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(param.trim_end_matches('='))
            {
                Ok(q) => q,
                Err(_) => {
                    return plain(StatusCode::BAD_REQUEST, "dns parameter is not base64url\n");
                }
            }
        }
        Method::POST => {
            let ct_ok = req
                .headers()
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| {
                    v.split(';')
                        .next()
                        .is_some_and(|t| t.trim().eq_ignore_ascii_case("application/dns-message"))
                });
            if !ct_ok {
                return plain(
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    "content type must be application/dns-message\n",
                );
            }
            let declared = req
                .headers()
                .get(header::CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<usize>().ok());
            if declared.is_some_and(|n| n > max_body) {
                return plain(StatusCode::PAYLOAD_TOO_LARGE, "body too large\n");
            }
            let body = Limited::new(req.into_body(), max_body);
            let idle = shared.streams.idle();
            match tokio::time::timeout(idle, body.collect()).await {
                Ok(Ok(b)) => b.to_bytes().to_vec(),
                Ok(Err(e)) if e.is::<http_body_util::LengthLimitError>() => {
                    return plain(StatusCode::PAYLOAD_TOO_LARGE, "body too large\n");
                }
                _ => return plain(StatusCode::BAD_REQUEST, "could not read the body\n"),
            }
        }
        _ => return plain(StatusCode::METHOD_NOT_ALLOWED, "use GET or POST\n"),
    };
    if query.len() > max_body {
        return plain(StatusCode::PAYLOAD_TOO_LARGE, "query too large\n");
    }
    let received = shared.engine.clock().now();
    let credential = match (&token, session) {
        (Some(t), _) => Credential::Token(t),
        (None, Some(s)) => Credential::Session(s),
        (None, None) => Credential::None,
    };
    let r = Request {
        transport: Transport::Doh,
        source,
        query: &query,
        credential,
        received,
    };
    // Decided at once (hits, errors): written into this thread's scratch buffer and copied out,
    // so that no 64 KiB buffer is allocated and zeroed per request.
    let decided = DOH_SCRATCH.with(|scratch| {
        let mut buf = scratch.borrow_mut();
        match shared.engine.handle(&r, received, &mut buf) {
            Step::Drop => None,
            Step::Respond(reply) => Some(Ok((
                reply,
                Bytes::copy_from_slice(buf.get(..reply.len).unwrap_or(&[])),
            ))),
            Step::Forward(fwd) => Some(Err(fwd)),
        }
    });
    let (reply, body) = match decided {
        None => return plain(StatusCode::BAD_REQUEST, "not a DNS query\n"),
        Some(Ok((reply, body))) => {
            spawn_prefetch(shared, &query, &reply);
            (reply, body)
        }
        Some(Err(fwd)) => {
            let _guard = shared.drain.clone();
            let mut out = shared.buffers.take();
            // Boxed: the upstream exchange's state is some 16 KiB, and hyper spawns (moves)
            // every request's future, hits included; inline, each request would copy it.
            let reply = Box::pin(shared.engine.resolve(&shared.pool, &r, fwd, &mut out)).await;
            let body = Bytes::copy_from_slice(out.get(..reply.len).unwrap_or(&[]));
            shared.buffers.give(out);
            (reply, body)
        }
    };
    shared.engine.complete(&r, &reply, &body);
    if let Some(refusal) = reply.refusal {
        return challenge(shared, refusal);
    }
    let max_age = match reply.rcode {
        tolldns_receipts::RcodeClass::NoError
        | tolldns_receipts::RcodeClass::Nodata
        | tolldns_receipts::RcodeClass::Nxdomain => reply.min_ttl.unwrap_or(0),
        _ => 0,
    };
    let mut resp = hyper::Response::new(Full::new(body));
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/dns-message"),
    );
    // An answer to a ticketed request is the client's own: no shared cache may keep it.
    let private = if reply.ticket.is_some() {
        "private, "
    } else {
        ""
    };
    if let Ok(v) = header::HeaderValue::from_str(&format!("{private}max-age={max_age}")) {
        h.insert(header::CACHE_CONTROL, v);
    }
    if let Some(session) = reply.session {
        let v = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(session);
        if let Ok(v) = header::HeaderValue::from_str(&v) {
            h.insert(tolldns_tickets::protocol::SESSION_HEADER, v);
        }
    }
    resp
}

/// A ticket refusal before the query was read: counted, then answered like any other.
fn ticket_refused(
    shared: &Arc<Shared>,
    refusal: tolldns_tickets::Refusal,
) -> hyper::Response<Full<Bytes>> {
    shared.engine.count_ticket_refusal(refusal);
    challenge(shared, refusal)
}

/// `401 Unauthorized` with the deployment's `PrivateToken` challenge (RFC 9577 §2.1) and the
/// refusal as text.
fn challenge(
    shared: &Arc<Shared>,
    refusal: tolldns_tickets::Refusal,
) -> hyper::Response<Full<Bytes>> {
    let mut resp = plain(
        StatusCode::UNAUTHORIZED,
        format!("{}\n", refusal.client_text()),
    );
    if let Some(v) = shared
        .engine
        .tickets()
        .and_then(|g| header::HeaderValue::from_str(g.challenge_header()).ok())
    {
        resp.headers_mut().insert(header::WWW_AUTHENTICATE, v);
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::parse_ticket;

    #[test]
    fn tickets_parse_from_hex_and_base64() {
        let t = [0xABu8; 16];
        assert_eq!(parse_ticket("abababababababababababababababab"), Some(t));
        assert_eq!(parse_ticket("q6urq6urq6urq6urq6urqw=="), Some(t));
        assert_eq!(parse_ticket("q6urq6urq6urq6urq6urqw"), Some(t));
        assert_eq!(parse_ticket("nope"), None);
        assert_eq!(parse_ticket("abab"), None);
    }
}
