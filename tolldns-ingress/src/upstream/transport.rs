//! The thin async shell: exchanges with one upstream over UDP, TCP, DoT or DoH.
//!
//! UDP keeps a small set of connected sockets per upstream ([`UdpSockets`]) shared by the
//! queries in flight, each matched to its response by a random message ID unique on its socket,
//! and each socket is replaced by a fresh one (a new random ephemeral source port) after a
//! bounded number of queries: an off-path spoofer must guess the port among the set's current
//! ones and the ID, while a query costs two system calls instead of a socket's whole life
//! (socket, bind, connect, epoll registration, close), which was most of the miss path's CPU.
//! The sockets are connected, so datagrams from other addresses never reach them.
//!
//! TCP and DoT keep a small pool of persistent connections per upstream ([`StreamPool`]) and
//! pipeline queries on them (RFC 7766 §6.2.1.1): several queries are in flight on one
//! connection, each with a random message ID unique on that connection, and responses are matched
//! to queries by ID, in whatever order they come. A response whose ID matches no outstanding
//! query is dropped and counted; one whose ID matches is still checked against its question
//! before it is used. A connection that fails (closed by the upstream, reset, garbage framing)
//! fails its outstanding queries, which are retried once on a connection opened after the
//! failure. Idle connections are closed after the idle timeout, and each connection carries at
//! most a bounded number of queries at once. A new connection is opened (one at a time) only when
//! every open one is full; when the pool is at its size, a query waits for room (within its
//! timeout).
//!
//! DoH keeps one HTTP/2 connection per upstream and multiplexes requests on it; only one new
//! connection is opened at a time, and a request that fails on a reused connection is retried
//! once on a fresh one.

use std::collections::HashMap;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::pin::pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use http_body_util::{BodyExt, Full, Limited};
use hyper::client::conn::http2::SendRequest;
use hyper_util::rt::{TokioExecutor, TokioIo};
use portable_atomic::AtomicU64;
use rand::Rng;
use rustls::ClientConfig;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use tokio::sync::{Notify, mpsc, oneshot};
use tokio::time::Instant;
use tokio_rustls::TlsConnector;

use super::Question;
use super::wire::{AttemptError, Checked, build_query, check_response};
use crate::metrics::Metrics;

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

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Connection counters of one upstream, and the edge's metrics once attached.
#[derive(Debug, Default)]
pub(crate) struct ConnCounters {
    /// Connections opened (TCP, DoT, DoH).
    pub(crate) opened: AtomicU64,
    /// Queries sent on a connection that was already open.
    pub(crate) reused: AtomicU64,
    /// Stream responses whose ID matched no outstanding query.
    pub(crate) dropped: AtomicU64,
    /// The edge's metrics, when the pool reports to them.
    pub(crate) metrics: Arc<OnceLock<Metrics>>,
}

impl ConnCounters {
    pub(crate) fn new(metrics: Arc<OnceLock<Metrics>>) -> Self {
        Self {
            metrics,
            ..Self::default()
        }
    }

    fn opened(&self) {
        self.opened.fetch_add(1, Ordering::Relaxed);
        if let Some(m) = self.metrics.get() {
            m.upstream_connection(false);
        }
    }

    fn reused(&self) {
        self.reused.fetch_add(1, Ordering::Relaxed);
        if let Some(m) = self.metrics.get() {
            m.upstream_connection(true);
        }
    }
}

/// Sockets in a [`UdpSockets`] set.
pub(crate) const UDP_SOCKETS: usize = 16;
/// Queries one UDP socket carries before it is replaced by a fresh one (a new source port).
pub(crate) const UDP_SOCKET_QUERIES: u64 = 1_000;

/// Message ID → the query waiting for it (aHash: SipHash cost more than the rest of the
/// lookup).
type Pending = HashMap<u16, oneshot::Sender<Vec<u8>>, ahash::RandomState>;

/// One connected UDP socket and the queries waiting for their response on it.
#[derive(Debug)]
struct UdpChannel {
    sock: UdpSocket,
    /// Message ID → the waiting query.
    pending: Mutex<Pending>,
    /// Queries sent on it so far.
    uses: AtomicU64,
    /// Set when its reader stopped (a receive error): no new query is sent on it.
    dead: AtomicBool,
}

impl UdpChannel {
    /// Reads responses and hands each to the query waiting for its ID: every response queued
    /// at a wake-up is read before waiting again (no timer while responses keep coming). Ends
    /// on a receive error, or once the channel was replaced (`retired`) and nothing waits on
    /// it any more (looked at least once a second).
    async fn read(self: Arc<Self>, retired: Arc<AtomicBool>, counters: Arc<ConnCounters>) {
        // One receive buffer for the reader's life; each response leaves as an exact-size
        // copy (allocating a 64 KiB buffer per response cost more than the copy).
        let mut buf = vec![0u8; MAX_MESSAGE];
        'wait: loop {
            match tokio::time::timeout(Duration::from_secs(1), self.sock.readable()).await {
                Ok(Ok(())) => loop {
                    match self.sock.try_recv(&mut buf) {
                        Ok(n) => self.deliver(buf.get(..n).unwrap_or_default(), &counters),
                        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                        Err(_) => break 'wait,
                    }
                },
                Ok(Err(_)) => break,
                Err(_) => {}
            }
            if retired.load(Ordering::Relaxed) && lock(&self.pending).is_empty() {
                return;
            }
        }
        self.dead.store(true, Ordering::Relaxed);
        // Dropping the senders fails every waiting query at once (retried by the pool).
        lock(&self.pending).clear();
    }

    /// Hands `response` to the query waiting for its ID, or counts it as dropped.
    fn deliver(&self, response: &[u8], counters: &ConnCounters) {
        let Some(id) = response.get(..2).map(|b| u16::from_be_bytes([b[0], b[1]])) else {
            return;
        };
        let waiting = lock(&self.pending).remove(&id);
        if let Some(tx) = waiting {
            let _ = tx.send(response.to_vec());
        } else {
            // No query waits for this ID (forged, or answered after its timeout).
            counters.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// One slot of a [`UdpSockets`] set: its current channel and the flag that retires it.
#[derive(Debug, Default)]
struct UdpSlot(Mutex<Option<(Arc<UdpChannel>, Arc<AtomicBool>)>>);

/// The persistent UDP sockets to one upstream (see the module docs).
#[derive(Debug)]
pub(crate) struct UdpSockets {
    addr: SocketAddr,
    slots: Vec<UdpSlot>,
    next: AtomicUsize,
    counters: Arc<ConnCounters>,
}

impl Drop for UdpSockets {
    /// Retires every socket: its reader ends once nothing waits on it (within a second).
    fn drop(&mut self) {
        for slot in &self.slots {
            if let Some((_, retired)) = lock(&slot.0).as_ref() {
                retired.store(true, Ordering::Relaxed);
            }
        }
    }
}

impl UdpSockets {
    /// A set of [`UDP_SOCKETS`] sockets to `addr`, opened when first used; responses whose
    /// ID no query waits for are counted in `counters.dropped`.
    pub(crate) fn new(addr: SocketAddr, counters: Arc<ConnCounters>) -> Self {
        Self {
            addr,
            slots: (0..UDP_SOCKETS).map(|_| UdpSlot::default()).collect(),
            next: AtomicUsize::new(0),
            counters,
        }
    }

    /// A channel of the next slot, opening (or replacing a used-up or dead) socket if needed.
    async fn channel(&self) -> Result<Arc<UdpChannel>, AttemptError> {
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.slots.len().max(1);
        let slot = self.slots.get(i).ok_or(AttemptError::Timeout)?;
        {
            let current = lock(&slot.0);
            if let Some((ch, _)) = current.as_ref()
                && !ch.dead.load(Ordering::Relaxed)
                && ch.uses.fetch_add(1, Ordering::Relaxed) < UDP_SOCKET_QUERIES
            {
                return Ok(Arc::clone(ch));
            }
        }
        let local: SocketAddr = if self.addr.is_ipv4() {
            (Ipv4Addr::UNSPECIFIED, 0).into()
        } else {
            (Ipv6Addr::UNSPECIFIED, 0).into()
        };
        let sock = UdpSocket::bind(local).await?;
        sock.connect(self.addr).await?;
        let ch = Arc::new(UdpChannel {
            sock,
            pending: Mutex::new(Pending::default()),
            uses: AtomicU64::new(1),
            dead: AtomicBool::new(false),
        });
        let retired = Arc::new(AtomicBool::new(false));
        tokio::spawn(Arc::clone(&ch).read(Arc::clone(&retired), Arc::clone(&self.counters)));
        let old = lock(&slot.0).replace((Arc::clone(&ch), retired));
        if let Some((_, flag)) = old {
            flag.store(true, Ordering::Relaxed);
        }
        Ok(ch)
    }

    /// One UDP exchange on a shared socket. Responses that fail the checks in a way an
    /// off-path sender could cause (wrong question, garbage) are dropped, counted in `dropped`,
    /// and the query keeps waiting until the timeout. A truncated answer is returned as is:
    /// the caller retries over TCP.
    pub(crate) async fn exchange(
        &self,
        q: &Question,
        edns_payload: u16,
        timeout: Duration,
        dropped: &AtomicU64,
    ) -> Result<Response, AttemptError> {
        let ch = self.channel().await?;
        // A random ID not in use on this socket.
        let mut id: u16 = rand::random();
        let mut rx = {
            let mut pending = lock(&ch.pending);
            let mut tries = 0;
            while pending.contains_key(&id) {
                id = rand::random();
                tries += 1;
                if tries > 64 {
                    return Err(AttemptError::Timeout);
                }
            }
            let (tx, rx) = oneshot::channel();
            pending.insert(id, tx);
            rx
        };
        let query = build_query(q, id, edns_payload);
        let result = bounded(timeout, async {
            ch.sock.send(&query).await?;
            loop {
                let wire = (&mut rx).await.map_err(|_| AttemptError::Timeout)?;
                match check_response(&wire, id, q, false) {
                    Ok(checked) => return Ok(Response { wire, checked }),
                    Err(e) if e.is_spoofable() => {
                        dropped.fetch_add(1, Ordering::Relaxed);
                        tracing::debug!(upstream = %self.addr, error = %e, "dropped non-matching UDP response");
                        let (tx, again) = oneshot::channel();
                        lock(&ch.pending).insert(id, tx);
                        rx = again;
                    }
                    Err(e) => return Err(e),
                }
            }
        })
        .await;
        if result.is_err() {
            lock(&ch.pending).remove(&id);
        }
        result
    }
}

/// Limits of the persistent TCP and DoT connections to one upstream.
#[derive(Debug, Clone, Copy)]
pub(crate) struct StreamLimits {
    /// Most connections open at once.
    pub(crate) pool_size: usize,
    /// Most queries in flight on one connection.
    pub(crate) max_in_flight: usize,
    /// A connection without a query in flight for this long is closed.
    pub(crate) idle_timeout: Duration,
}

/// How a stream connection is set up.
#[derive(Debug)]
pub(crate) enum Connector {
    /// Plain TCP.
    Tcp,
    /// TLS over TCP, the certificate checked against `name`.
    Tls {
        name: ServerName<'static>,
        tls: Arc<ClientConfig>,
    },
}

/// Why a query on a stream connection got no response from it.
#[derive(Debug)]
enum SlotError {
    /// The connection ended before the response came: retry elsewhere.
    Lost,
    /// The query could not be sent.
    Attempt(AttemptError),
}

#[derive(Debug, Default)]
struct ConnState {
    pending: Pending,
    closed: bool,
}

/// One persistent connection: a task owns the socket; queries reach it through `tx`.
#[derive(Debug)]
struct Conn {
    /// Order in which the pool opened it (a retry uses only connections opened later).
    seq: u64,
    tx: mpsc::UnboundedSender<Vec<u8>>,
    state: Mutex<ConnState>,
    in_flight: AtomicUsize,
    closed: AtomicBool,
    room: Arc<Notify>,
    /// Signalled when the pool is dropped: the connection closes at once.
    stop: Notify,
}

impl Conn {
    fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Relaxed)
    }

    /// Takes a random ID that is not outstanding on this connection. `None` if it closed.
    fn reserve(self: &Arc<Self>) -> Option<Slot> {
        let mut st = lock(&self.state);
        if st.closed {
            return None;
        }
        let mut rng = rand::thread_rng();
        let id = loop {
            let id: u16 = rng.r#gen();
            if !st.pending.contains_key(&id) {
                break id;
            }
        };
        let (tx, rx) = oneshot::channel();
        st.pending.insert(id, tx);
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        Some(Slot {
            conn: Arc::clone(self),
            id,
            rx: Some(rx),
        })
    }

    /// Closes the connection if nothing is in flight; true if it is now closed.
    fn close_if_idle(&self) -> bool {
        let mut st = lock(&self.state);
        if st.pending.is_empty() && self.in_flight.load(Ordering::Relaxed) == 0 {
            st.closed = true;
            self.closed.store(true, Ordering::Relaxed);
        }
        st.closed
    }

    /// Marks the connection closed and fails every outstanding query (their senders drop).
    fn close(&self) {
        let pending = {
            let mut st = lock(&self.state);
            st.closed = true;
            self.closed.store(true, Ordering::Relaxed);
            std::mem::take(&mut st.pending)
        };
        drop(pending);
        self.room.notify_waiters();
    }

    /// Hands a response to the query waiting for its ID. False if none waits.
    fn deliver(&self, id: u16, wire: Vec<u8>) -> bool {
        let waiter = lock(&self.state).pending.remove(&id);
        waiter.is_some_and(|w| w.send(wire).is_ok())
    }
}

/// A reserved ID on a connection; dropping it frees the room.
#[derive(Debug)]
struct Slot {
    conn: Arc<Conn>,
    id: u16,
    rx: Option<oneshot::Receiver<Vec<u8>>>,
}

impl Slot {
    async fn exchange(mut self, query: Vec<u8>) -> Result<Vec<u8>, SlotError> {
        let len =
            u16::try_from(query.len()).map_err(|_| SlotError::Attempt(AttemptError::TooLarge))?;
        let mut framed = Vec::with_capacity(query.len() + 2);
        framed.extend_from_slice(&len.to_be_bytes());
        framed.extend_from_slice(&query);
        self.conn.tx.send(framed).map_err(|_| SlotError::Lost)?;
        let rx = self.rx.take().ok_or(SlotError::Lost)?;
        rx.await.map_err(|_| SlotError::Lost)
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        {
            let mut st = lock(&self.conn.state);
            st.pending.remove(&self.id);
            self.conn.in_flight.fetch_sub(1, Ordering::Relaxed);
        }
        self.conn.room.notify_waiters();
    }
}

#[derive(Debug, Default)]
struct PoolState {
    conns: Vec<Arc<Conn>>,
    opening: usize,
    next_seq: u64,
}

/// The persistent TCP or DoT connections to one upstream.
#[derive(Debug)]
pub(crate) struct StreamPool {
    addr: SocketAddr,
    connector: Connector,
    limits: StreamLimits,
    state: Mutex<PoolState>,
    room: Arc<Notify>,
    counters: Arc<ConnCounters>,
}

impl Drop for StreamPool {
    fn drop(&mut self) {
        for conn in &lock(&self.state).conns {
            conn.stop.notify_one();
        }
    }
}

/// Decrements the pool's count of connections being opened, however the opening ends.
struct Opening<'a>(&'a StreamPool);

impl Drop for Opening<'_> {
    fn drop(&mut self) {
        lock(&self.0.state).opening -= 1;
        self.0.room.notify_waiters();
    }
}

enum Pick {
    Slot(Slot),
    Open,
    Wait,
}

impl StreamPool {
    pub(crate) fn new(
        addr: SocketAddr,
        connector: Connector,
        limits: StreamLimits,
        counters: Arc<ConnCounters>,
    ) -> Self {
        Self {
            addr,
            connector,
            limits: StreamLimits {
                pool_size: limits.pool_size.max(1),
                max_in_flight: limits.max_in_flight.clamp(1, 32_768),
                idle_timeout: limits.idle_timeout.max(Duration::from_millis(1)),
            },
            state: Mutex::new(PoolState::default()),
            room: Arc::new(Notify::new()),
            counters,
        }
    }

    /// Open connections (for tests and status).
    pub(crate) fn open_connections(&self) -> usize {
        lock(&self.state)
            .conns
            .iter()
            .filter(|c| !c.is_closed())
            .count()
    }

    /// One exchange: the query goes out on a pooled connection with an ID unique on it. If the
    /// connection ends before the response comes, the query is sent once more on a connection
    /// opened after that.
    pub(crate) async fn exchange(
        &self,
        q: &Question,
        edns_payload: u16,
        timeout: Duration,
    ) -> Result<Response, AttemptError> {
        bounded(timeout, async {
            let mut min_seq = 0;
            let mut retried = false;
            loop {
                let slot = self.acquire(min_seq).await?;
                let (id, seq) = (slot.id, slot.conn.seq);
                let query = build_query(q, id, edns_payload);
                match slot.exchange(query).await {
                    Ok(wire) => {
                        let checked = check_response(&wire, id, q, true)?;
                        return Ok(Response { wire, checked });
                    }
                    Err(SlotError::Attempt(e)) => return Err(e),
                    Err(SlotError::Lost) if !retried => {
                        tracing::debug!(upstream = %self.addr, "upstream connection lost; retrying on a new one");
                        retried = true;
                        min_seq = seq + 1;
                    }
                    Err(SlotError::Lost) => {
                        return Err(AttemptError::Io(std::io::Error::new(
                            std::io::ErrorKind::ConnectionAborted,
                            "upstream closed the connection before answering",
                        )));
                    }
                }
            }
        })
        .await
    }

    fn pick(&self, min_seq: u64) -> Pick {
        let mut st = lock(&self.state);
        st.conns.retain(|c| !c.is_closed());
        let best = st
            .conns
            .iter()
            .filter(|c| c.seq >= min_seq)
            .map(|c| (c.in_flight.load(Ordering::Relaxed), c))
            .filter(|(n, _)| *n < self.limits.max_in_flight)
            .min_by_key(|(n, _)| *n)
            .map(|(_, c)| Arc::clone(c));
        if let Some(slot) = best.and_then(|c| c.reserve()) {
            return Pick::Slot(slot);
        }
        // One connection is opened at a time: queries that find no room meanwhile wait for it.
        if st.opening == 0 && st.conns.len() < self.limits.pool_size {
            st.opening += 1;
            return Pick::Open;
        }
        // A retry must not wait behind connections opened before the failure: one of them is
        // replaced by a fresh connection.
        if min_seq > 0
            && st.opening == 0
            && !st.conns.iter().any(|c| c.seq >= min_seq)
            && let Some(oldest) = st.conns.first().map(Arc::clone)
        {
            st.conns.retain(|c| !Arc::ptr_eq(c, &oldest));
            st.opening += 1;
            return Pick::Open;
        }
        Pick::Wait
    }

    async fn acquire(&self, min_seq: u64) -> Result<Slot, AttemptError> {
        loop {
            let mut notified = pin!(self.room.notified());
            notified.as_mut().enable();
            match self.pick(min_seq) {
                Pick::Slot(slot) => {
                    self.counters.reused();
                    return Ok(slot);
                }
                Pick::Open => {
                    let opening = Opening(self);
                    let conn = self.open().await?;
                    let slot = {
                        let mut st = lock(&self.state);
                        st.conns.push(Arc::clone(&conn));
                        conn.reserve()
                    };
                    drop(opening);
                    if let Some(slot) = slot {
                        return Ok(slot);
                    }
                }
                Pick::Wait => notified.await,
            }
        }
    }

    async fn open(&self) -> Result<Arc<Conn>, AttemptError> {
        let tcp = TcpStream::connect(self.addr).await?;
        tcp.set_nodelay(true)?;
        let stream: Box<dyn StreamBox> = match &self.connector {
            Connector::Tcp => Box::new(tcp),
            Connector::Tls { name, tls } => Box::new(
                TlsConnector::from(Arc::clone(tls))
                    .connect(name.clone(), tcp)
                    .await?,
            ),
        };
        self.counters.opened();
        let (tx, rx) = mpsc::unbounded_channel();
        let seq = {
            let mut st = lock(&self.state);
            st.next_seq += 1;
            st.next_seq
        };
        let conn = Arc::new(Conn {
            seq,
            tx,
            state: Mutex::new(ConnState::default()),
            in_flight: AtomicUsize::new(0),
            closed: AtomicBool::new(false),
            room: Arc::clone(&self.room),
            stop: Notify::new(),
        });
        tokio::spawn(run_conn(
            stream,
            Arc::clone(&conn),
            rx,
            self.limits.idle_timeout,
            Arc::clone(&self.counters),
            self.addr,
        ));
        Ok(conn)
    }
}

/// A boxed TCP or TLS stream.
trait StreamBox: AsyncRead + AsyncWrite + Send + Unpin + 'static {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin + 'static> StreamBox for T {}

/// Why a connection's task ended (for the debug log).
#[derive(Debug)]
enum End {
    Idle,
    ClosedByUpstream,
    Io(std::io::Error),
    BadFrame,
    PoolGone,
}

/// The task owning one connection: writes queries as they come, reads responses and hands each
/// to the query with its ID, closes the connection when idle or broken.
async fn run_conn(
    stream: Box<dyn StreamBox>,
    conn: Arc<Conn>,
    mut rx: mpsc::UnboundedReceiver<Vec<u8>>,
    idle: Duration,
    counters: Arc<ConnCounters>,
    addr: SocketAddr,
) {
    let (mut rd, mut wr) = tokio::io::split(stream);
    let mut buf = BytesMut::with_capacity(4096);
    let mut out = Vec::with_capacity(512);
    // The idle timer fires at most once per idle period; activity only moves `last`.
    let mut last = Instant::now();
    let sleep = tokio::time::sleep(idle);
    let mut sleep = pin!(sleep);
    let end = loop {
        tokio::select! {
            read = rd.read_buf(&mut buf) => match read {
                Ok(0) => break End::ClosedByUpstream,
                Ok(_) => {
                    last = Instant::now();
                    if let Err(end) = deliver_frames(&mut buf, &conn, &counters, addr) {
                        break end;
                    }
                }
                Err(e) => break End::Io(e),
            },
            msg = rx.recv() => {
                let Some(msg) = msg else { break End::PoolGone };
                last = Instant::now();
                out.clear();
                out.extend_from_slice(&msg);
                while out.len() < 16 * 1024 {
                    match rx.try_recv() {
                        Ok(more) => out.extend_from_slice(&more),
                        Err(_) => break,
                    }
                }
                if let Err(e) = async {
                    wr.write_all(&out).await?;
                    wr.flush().await
                }
                .await
                {
                    break End::Io(e);
                }
            }
            () = conn.stop.notified() => break End::PoolGone,
            () = &mut sleep => {
                let now = Instant::now();
                if now.duration_since(last) >= idle && conn.close_if_idle() {
                    break End::Idle;
                }
                let next = (last + idle).max(now + idle / 4);
                sleep.as_mut().reset(next);
            }
        }
    };
    match &end {
        End::Io(e) => tracing::debug!(upstream = %addr, error = %e, "upstream connection failed"),
        other => tracing::debug!(upstream = %addr, reason = ?other, "upstream connection closed"),
    }
    conn.close();
    let mut stream = rd.unsplit(wr);
    let _shutdown = tokio::time::timeout(Duration::from_secs(1), stream.shutdown()).await;
}

/// Hands every complete length-prefixed message in `buf` to its query.
fn deliver_frames(
    buf: &mut BytesMut,
    conn: &Conn,
    counters: &ConnCounters,
    addr: SocketAddr,
) -> Result<(), End> {
    loop {
        let (Some(&hi), Some(&lo)) = (buf.first(), buf.get(1)) else {
            return Ok(());
        };
        let len = usize::from(u16::from_be_bytes([hi, lo]));
        if len < 12 {
            // Not even a DNS header: the framing cannot be trusted any more.
            return Err(End::BadFrame);
        }
        if buf.len() < 2 + len {
            buf.reserve(2 + len - buf.len());
            return Ok(());
        }
        buf.advance(2);
        let wire = buf.split_to(len).to_vec();
        let (Some(&a), Some(&b)) = (wire.first(), wire.get(1)) else {
            return Err(End::BadFrame);
        };
        let id = u16::from_be_bytes([a, b]);
        if !conn.deliver(id, wire) {
            counters.dropped.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(upstream = %addr, id, "dropped stream response matching no outstanding query");
        }
    }
}

/// A DoH upstream's reusable HTTP/2 connection.
#[derive(Debug, Default)]
pub(crate) struct DohConn {
    sender: Mutex<Option<(SendRequest<Full<Bytes>>, Instant)>>,
    opening: tokio::sync::Mutex<()>,
}

impl DohConn {
    /// The open connection, unless it closed or sat idle for longer than `idle`.
    fn take_ready(&self, idle: Duration) -> Option<SendRequest<Full<Bytes>>> {
        let mut guard = lock(&self.sender);
        let now = Instant::now();
        match guard.as_mut() {
            Some((s, last)) if s.is_ready() && now.duration_since(*last) < idle => {
                *last = now;
                Some(s.clone())
            }
            Some(_) => {
                *guard = None;
                None
            }
            None => None,
        }
    }

    fn store(&self, sender: SendRequest<Full<Bytes>>) {
        *lock(&self.sender) = Some((sender, Instant::now()));
    }

    fn forget(&self) {
        *lock(&self.sender) = None;
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
    pub(crate) idle_timeout: Duration,
    pub(crate) counters: &'a ConnCounters,
}

impl DohTarget<'_> {
    /// The shared connection, or a new one (one opener at a time; the others wait for it).
    async fn sender(&self) -> Result<(SendRequest<Full<Bytes>>, bool), AttemptError> {
        if let Some(s) = self.conn.take_ready(self.idle_timeout) {
            self.counters.reused();
            return Ok((s, true));
        }
        let _opening = self.conn.opening.lock().await;
        if let Some(s) = self.conn.take_ready(self.idle_timeout) {
            self.counters.reused();
            return Ok((s, true));
        }
        let sender = self.connect().await?;
        Ok((sender, false))
    }

    async fn connect(&self) -> Result<SendRequest<Full<Bytes>>, AttemptError> {
        let tcp = TcpStream::connect(self.addr).await?;
        tcp.set_nodelay(true)?;
        let tls = TlsConnector::from(Arc::clone(&self.tls))
            .connect(self.server_name.clone(), tcp)
            .await?;
        let (sender, conn) =
            hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tls)).await?;
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "DoH upstream connection ended");
            }
        });
        self.counters.opened();
        self.conn.store(sender.clone());
        Ok(sender)
    }
}

/// One DoH exchange (`POST`, ID 0 as RFC 8484 §4.1 asks), reusing the upstream's HTTP/2
/// connection when it is still open; a request that fails on a reused connection is sent once
/// more on a new one.
pub(crate) async fn doh(
    target: DohTarget<'_>,
    query: &[u8],
    q: &Question,
    timeout: Duration,
) -> Result<Response, AttemptError> {
    bounded(timeout, async {
        let body = Bytes::copy_from_slice(query);
        let request = || {
            http::Request::post(target.uri.clone())
                .header(http::header::CONTENT_TYPE, DNS_MESSAGE)
                .header(http::header::ACCEPT, DNS_MESSAGE)
                .body(Full::new(body.clone()))
        };
        let (mut sender, reused) = target.sender().await?;
        let response = match sender.send_request(request()?).await {
            Ok(r) => r,
            Err(e) if reused => {
                tracing::debug!(upstream = %target.addr, error = %e, "DoH connection failed; retrying on a new one");
                target.conn.forget();
                let (mut sender, _) = target.sender().await?;
                sender.send_request(request()?).await.inspect_err(|_| {
                    target.conn.forget();
                })?
            }
            Err(e) => {
                target.conn.forget();
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
