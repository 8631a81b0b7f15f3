//! DNS over QUIC (RFC 9250) with quinn: one query per client-initiated bidirectional stream,
//! each message behind a 2-octet length (§4.2), Message ID 0 (§4.2.1), the connection closed
//! with a `DOQ_*` error code on a protocol error (§4.3.3). 0-RTT is refused (the TLS
//! configuration accepts no early data), so no query is ever replayable (§4.5).
//!
//! Queries take the same path as DoT: admission by source prefix, attack mode, toll tickets in
//! the EDNS options, the cache, upstreams, and one receipt leaf per answer with transport
//! `DOQ`. The transport parameters bound what one connection may cost: at most
//! `streams.max_pipelined` queries open at once, flow-control windows sized for one largest
//! message per stream, and `streams.idle_timeout_ms` of silence before the connection goes.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use quinn::crypto::rustls::QuicServerConfig;
use quinn::{
    Connection, Endpoint, EndpointConfig, IdleTimeout, RecvStream, SendStream, TransportConfig,
    VarInt,
};
use tokio::sync::{OwnedSemaphorePermit, watch};
use tokio::task::JoinSet;
use tolldns_receipts::Transport;

use crate::attack::Mode;
use crate::config::StreamConfig;
use crate::engine::{MAX_MESSAGE, Request, Step};
use crate::error::EdgeError;
use crate::server::Shared;
use crate::tickets::Credential;
use crate::wire;

/// ALPN protocol of DNS over QUIC (RFC 9250 §4.1.1).
pub const DOQ_ALPN: &[u8] = b"doq";

/// Largest stream a query may take: the length prefix and the largest DNS message.
const FRAME_MAX: usize = MAX_MESSAGE + 2;

/// How long the listener lets open connections finish their answers at shutdown.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// EDNS option code of edns-tcp-keepalive (RFC 7828), forbidden in DoQ (RFC 9250 §5.5.2).
const EDNS_TCP_KEEPALIVE: u16 = 11;

/// The DoQ error codes (RFC 9250 §4.3), used in QUIC `CONNECTION_CLOSE`, `RESET_STREAM` and
/// `STOP_SENDING` frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DoqErrorCode {
    /// `DOQ_NO_ERROR`: no error; closing a connection without one.
    NoError,
    /// `DOQ_INTERNAL_ERROR`: the implementation cannot pursue the transaction or connection.
    InternalError,
    /// `DOQ_PROTOCOL_ERROR`: the peer broke the DoQ protocol.
    ProtocolError,
    /// `DOQ_REQUEST_CANCELLED`: a transaction was cancelled.
    RequestCancelled,
    /// `DOQ_EXCESSIVE_LOAD`: closing because of excessive load.
    ExcessiveLoad,
    /// `DOQ_UNSPECIFIED_ERROR`: no error reason given.
    UnspecifiedError,
}

impl DoqErrorCode {
    /// The code on the wire.
    pub const fn code(self) -> u32 {
        match self {
            Self::NoError => 0x0,
            Self::InternalError => 0x1,
            Self::ProtocolError => 0x2,
            Self::RequestCancelled => 0x3,
            Self::ExcessiveLoad => 0x4,
            Self::UnspecifiedError => 0x5,
        }
    }

    /// The code of a wire value, when it is one of RFC 9250's.
    pub const fn from_code(code: u64) -> Option<Self> {
        Some(match code {
            0x0 => Self::NoError,
            0x1 => Self::InternalError,
            0x2 => Self::ProtocolError,
            0x3 => Self::RequestCancelled,
            0x4 => Self::ExcessiveLoad,
            0x5 => Self::UnspecifiedError,
            _ => return None,
        })
    }

    fn varint(self) -> VarInt {
        VarInt::from_u32(self.code())
    }
}

/// The QUIC transport parameters of DoQ connections.
fn transport(streams: &StreamConfig) -> TransportConfig {
    let mut t = TransportConfig::default();
    let open = u32::try_from(streams.max_pipelined.max(1)).unwrap_or(u32::MAX);
    t.max_concurrent_bidi_streams(VarInt::from_u32(open));
    // One unidirectional stream is allowed only so that opening it closes the connection with
    // DOQ_PROTOCOL_ERROR (§4.3.3) rather than with a QUIC stream-limit error.
    t.max_concurrent_uni_streams(VarInt::from_u32(1));
    let idle_ms = u32::try_from(streams.idle_timeout_ms.max(1)).unwrap_or(u32::MAX);
    t.max_idle_timeout(Some(IdleTimeout::from(VarInt::from_u32(idle_ms))));
    // Room for one largest message per stream; a few of them per connection at once.
    let frame = u32::try_from(FRAME_MAX).unwrap_or(u32::MAX);
    t.stream_receive_window(VarInt::from_u32(frame));
    t.receive_window(VarInt::from_u32(frame.saturating_mul(4)));
    t.send_window(u64::from(frame).saturating_mul(16));
    t.keep_alive_interval(None);
    t.datagram_receive_buffer_size(None);
    t
}

/// Bind a DoQ endpoint on `addr` with the certificate of `tls` (its ALPN list is replaced by
/// `doq`, early data turned off).
pub(crate) fn bind(
    addr: SocketAddr,
    tls: &rustls::ServerConfig,
    streams: &StreamConfig,
) -> Result<Endpoint, EdgeError> {
    let mut tls = tls.clone();
    tls.alpn_protocols = vec![DOQ_ALPN.to_vec()];
    // No 0-RTT: early data could be replayed (RFC 9250 §4.5).
    tls.max_early_data_size = 0;
    tls.send_half_rtt_data = false;
    let crypto = QuicServerConfig::try_from(tls).map_err(|_| {
        EdgeError::Tls("DoQ needs a TLS configuration with TLS 1.3 and TLS_AES_128_GCM_SHA256")
    })?;
    let mut server = quinn::ServerConfig::with_crypto(Arc::new(crypto));
    server.transport_config(Arc::new(transport(streams)));
    let bind_err = |source| EdgeError::Bind { addr, source };
    let socket = bind_socket(addr).map_err(bind_err)?;
    Endpoint::new(
        EndpointConfig::default(),
        Some(server),
        socket,
        Arc::new(quinn::TokioRuntime),
    )
    .map_err(bind_err)
}

fn bind_socket(addr: SocketAddr) -> std::io::Result<std::net::UdpSocket> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    // Larger buffers absorb bursts; the kernel caps them to its limits.
    let _ = socket.set_recv_buffer_size(4 << 20);
    let _ = socket.set_send_buffer_size(4 << 20);
    socket.bind(&addr.into())?;
    Ok(socket.into())
}

/// Accept DoQ connections until shutdown; then stop accepting, let the open connections
/// finish the queries they read (at most [`SHUTDOWN_GRACE`]) and close the endpoint.
pub(crate) async fn doq_listener(
    shared: Arc<Shared>,
    endpoint: Endpoint,
    stop: watch::Receiver<bool>,
) {
    let mut stop_accept = stop.clone();
    let mut connections = JoinSet::new();
    loop {
        let incoming = tokio::select! {
            _ = stop_accept.changed() => break,
            Some(_) = connections.join_next(), if !connections.is_empty() => continue,
            i = endpoint.accept() => match i {
                Some(i) => i,
                None => break,
            },
        };
        let Ok(permit) = Arc::clone(&shared.connections).try_acquire_owned() else {
            // Over the connection limit (shared with TCP, DoT and DoH).
            incoming.refuse();
            continue;
        };
        // Under attack, a handshake from an address not yet validated costs a round trip
        // first (a QUIC Retry), so spoofed sources cannot open connections.
        if shared.engine.mode() == Mode::UnderAttack
            && !incoming.remote_address_validated()
            && incoming.may_retry()
        {
            let _ = incoming.retry();
            continue;
        }
        let Ok(connecting) = incoming.accept() else {
            continue;
        };
        connections.spawn(serve_connection(
            Arc::clone(&shared),
            connecting,
            permit,
            stop.clone(),
        ));
    }
    endpoint.set_server_config(None);
    let _ = tokio::time::timeout(SHUTDOWN_GRACE, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    connections.abort_all();
    endpoint.close(DoqErrorCode::NoError.varint(), b"shutting down");
    let _ = tokio::time::timeout(Duration::from_secs(1), endpoint.wait_idle()).await;
}

/// Close `conn` with `DOQ_PROTOCOL_ERROR` and the reason as the close frame's phrase.
fn protocol_error(conn: &Connection, reason: &'static str) {
    tracing::debug!(reason, "DoQ protocol error: closing the connection");
    conn.close(DoqErrorCode::ProtocolError.varint(), reason.as_bytes());
}

async fn serve_connection(
    shared: Arc<Shared>,
    connecting: quinn::Connecting,
    permit: OwnedSemaphorePermit,
    mut stop: watch::Receiver<bool>,
) {
    let limit = Duration::from_millis(shared.streams.tls_handshake_timeout_ms.max(1));
    let Ok(Ok(conn)) = tokio::time::timeout(limit, connecting).await else {
        return;
    };
    shared.engine.metrics().connection(true);
    let source = conn.remote_address().ip();
    let mut queries = JoinSet::new();
    loop {
        tokio::select! {
            _ = stop.changed() => break,
            Some(_) = queries.join_next(), if !queries.is_empty() => {}
            bi = conn.accept_bi() => match bi {
                Ok((send, recv)) => {
                    queries.spawn(serve_query(
                        Arc::clone(&shared),
                        conn.clone(),
                        send,
                        recv,
                        source,
                        stop.clone(),
                    ));
                }
                // Closed by the client, by the idle timeout, or after a protocol error.
                Err(_) => break,
            },
            uni = conn.accept_uni() => {
                if uni.is_ok() {
                    protocol_error(&conn, "unidirectional stream");
                }
                break;
            }
        }
    }
    // Queries already read are answered (each bounded by the upstream time limits).
    while queries.join_next().await.is_some() {}
    conn.close(DoqErrorCode::NoError.varint(), b"");
    shared.engine.metrics().connection(false);
    drop(permit);
}

/// Why a stream's content is not a DoQ query (each is `DOQ_PROTOCOL_ERROR`, RFC 9250 §4.3.3).
fn check_query(stream: &[u8]) -> Result<&[u8], &'static str> {
    let (Some(&[hi, lo]), Some(message)) = (stream.get(..2), stream.get(2..)) else {
        return Err("stream ended before the length prefix");
    };
    let len = usize::from(u16::from_be_bytes([hi, lo]));
    if message.len() < len {
        return Err("stream ended before the whole message");
    }
    if message.len() > len {
        return Err("more than one message on a stream");
    }
    let Some((id, _)) = wire::header(message) else {
        return Err("message shorter than a DNS header");
    };
    if id != 0 {
        return Err("message ID is not 0");
    }
    if has_tcp_keepalive(message) {
        return Err("edns-tcp-keepalive option in a query");
    }
    Ok(message)
}

/// Whether the query's OPT record carries edns-tcp-keepalive. Only messages with additional
/// records are parsed; one that does not parse is left to the engine to answer.
fn has_tcp_keepalive(message: &[u8]) -> bool {
    let arcount = message
        .get(10..12)
        .map_or(0, |b| u16::from_be_bytes([b[0], b[1]]));
    if arcount == 0 {
        return false;
    }
    hickory_proto::op::Message::from_vec(message).is_ok_and(|m| {
        m.extensions().as_ref().is_some_and(|e| {
            e.option(hickory_proto::rr::rdata::opt::EdnsCode::from(
                EDNS_TCP_KEEPALIVE,
            ))
            .is_some()
        })
    })
}

thread_local! {
    /// Per-thread response buffer for answers decided without I/O.
    static DOQ_SCRATCH: std::cell::RefCell<Vec<u8>> = std::cell::RefCell::new(vec![0u8; MAX_MESSAGE]);
}

/// A framed answer: the length prefix, then the message.
fn framed(message: &[u8]) -> Option<Vec<u8>> {
    let n = u16::try_from(message.len()).ok().filter(|n| *n > 0)?;
    let mut frame = Vec::with_capacity(message.len().saturating_add(2));
    frame.extend_from_slice(&n.to_be_bytes());
    frame.extend_from_slice(message);
    Some(frame)
}

fn cancel(send: &mut SendStream, recv: &mut RecvStream, code: DoqErrorCode) {
    let _ = send.reset(code.varint());
    let _ = recv.stop(code.varint());
}

/// Read one query from a stream (until the client's FIN), answer it, finish the stream.
async fn serve_query(
    shared: Arc<Shared>,
    conn: Connection,
    mut send: SendStream,
    mut recv: RecvStream,
    source: IpAddr,
    mut stop: watch::Receiver<bool>,
) {
    let idle = shared.streams.idle();
    let read = tokio::select! {
        r = tokio::time::timeout(idle, recv.read_to_end(FRAME_MAX)) => r,
        _ = stop.changed() => {
            cancel(&mut send, &mut recv, DoqErrorCode::RequestCancelled);
            return;
        }
    };
    let stream = match read {
        Ok(Ok(bytes)) => bytes,
        Ok(Err(quinn::ReadToEndError::TooLong)) => {
            protocol_error(&conn, "more than one message on a stream");
            return;
        }
        // Reset by the client, or the connection is gone.
        Ok(Err(quinn::ReadToEndError::Read(_))) => return,
        Err(_) => {
            // No FIN within the idle time.
            cancel(&mut send, &mut recv, DoqErrorCode::RequestCancelled);
            return;
        }
    };
    let query = match check_query(&stream) {
        Ok(q) => q,
        Err(reason) => {
            protocol_error(&conn, reason);
            return;
        }
    };
    let received = shared.engine.clock().now();
    let req = Request {
        transport: Transport::Doq,
        source,
        query,
        credential: Credential::None,
        received,
    };
    let decided = DOQ_SCRATCH.with(|scratch| {
        let mut buf = scratch.borrow_mut();
        match shared.engine.handle(&req, received, &mut buf) {
            Step::Drop => None,
            Step::Respond(reply) => Some(Ok((reply, buf.get(..reply.len).and_then(framed)))),
            Step::Forward(fwd) => Some(Err(fwd)),
        }
    });
    let (reply, frame, from_cache) = match decided {
        None => {
            // Dropped (admission, attack mode, a response sent as a query): no answer.
            cancel(&mut send, &mut recv, DoqErrorCode::RequestCancelled);
            return;
        }
        Some(Ok((reply, frame))) => (reply, frame, true),
        Some(Err(fwd)) => {
            let _guard = shared.drain.clone();
            let mut out = shared.buffers.take();
            let reply = shared
                .engine
                .resolve(&shared.pool, &req, fwd, &mut out)
                .await;
            let frame = out.get(..reply.len).and_then(framed);
            shared.buffers.give(out);
            (reply, frame, false)
        }
    };
    let Some(frame) = frame else {
        cancel(&mut send, &mut recv, DoqErrorCode::InternalError);
        return;
    };
    let written = tokio::time::timeout(idle, send.write_all(&frame)).await;
    if !matches!(written, Ok(Ok(()))) || send.finish().is_err() {
        return;
    }
    if let Some(response) = frame.get(2..) {
        shared.engine.complete(&req, &reply, response);
    }
    if from_cache {
        crate::server::spawn_prefetch(&shared, query, &reply);
    }
    // Keep the stream until the client has the answer, so that closing the connection right
    // after (shutdown) does not discard it.
    let _ = tokio::time::timeout(idle, send.stopped()).await;
}

#[cfg(test)]
mod tests {
    use super::{DoqErrorCode, check_query};

    fn framed(msg: &[u8]) -> Vec<u8> {
        let mut v = u16::try_from(msg.len()).unwrap().to_be_bytes().to_vec();
        v.extend_from_slice(msg);
        v
    }

    fn query(id: u16, edns_option: Option<u16>) -> Vec<u8> {
        let mut b = [0u8; 512];
        let n = crate::wire::build_query(&mut b, id, "example.com", 1).unwrap();
        let mut q = b[..n].to_vec();
        if let Some(code) = edns_option {
            // ARCOUNT 1 and an OPT record with one empty option.
            q[10..12].copy_from_slice(&1u16.to_be_bytes());
            q.extend_from_slice(&[0, 0, 41, 0x04, 0xD0, 0, 0, 0, 0, 0, 4]);
            q.extend_from_slice(&code.to_be_bytes());
            q.extend_from_slice(&[0, 0]);
        }
        q
    }

    #[test]
    fn queries_are_checked_as_rfc_9250_says() {
        let q = query(0, None);
        assert_eq!(check_query(&framed(&q)), Ok(&q[..]));
        let with_opt = query(0, Some(10));
        assert_eq!(check_query(&framed(&with_opt)), Ok(&with_opt[..]));
        assert_eq!(
            check_query(&framed(&query(7, None))),
            Err("message ID is not 0")
        );
        assert_eq!(
            check_query(&framed(&query(0, Some(11)))),
            Err("edns-tcp-keepalive option in a query")
        );
        let mut short = framed(&q);
        short.pop();
        assert_eq!(
            check_query(&short),
            Err("stream ended before the whole message")
        );
        let mut two = framed(&q);
        two.extend_from_slice(&framed(&q));
        assert_eq!(check_query(&two), Err("more than one message on a stream"));
        assert_eq!(
            check_query(&[0]),
            Err("stream ended before the length prefix")
        );
        assert_eq!(
            check_query(&framed(&[0; 5])),
            Err("message shorter than a DNS header")
        );
    }

    #[test]
    fn error_codes_round_trip() {
        for c in [
            DoqErrorCode::NoError,
            DoqErrorCode::InternalError,
            DoqErrorCode::ProtocolError,
            DoqErrorCode::RequestCancelled,
            DoqErrorCode::ExcessiveLoad,
            DoqErrorCode::UnspecifiedError,
        ] {
            assert_eq!(DoqErrorCode::from_code(u64::from(c.code())), Some(c));
        }
        assert_eq!(DoqErrorCode::ProtocolError.code(), 2);
        assert_eq!(DoqErrorCode::from_code(0xd098_ea5e), None);
    }
}
