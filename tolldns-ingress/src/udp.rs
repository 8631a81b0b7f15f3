//! Batched UDP I/O for the listener: many datagrams per system call, driven by tokio's
//! readiness.
//!
//! On Linux and Android a [`RecvBatch`] reads up to its capacity of queued datagrams with one
//! `recvmmsg(2)` and a [`SendBatch`] sends its answers, each to its own address, with one
//! `sendmmsg(2)` (the safe wrappers of the `nix` crate). Elsewhere, and on a kernel or sandbox
//! that refuses those calls (`ENOSYS`), the same types fall back to one `recvfrom`/`sendto` per
//! datagram; callers see no difference.
//!
//! Both calls are made non-blocking inside [`UdpSocket::try_io`], so a drained socket clears
//! tokio's readiness and the listener goes back to `readable().await`; a `recvmmsg` that comes
//! back short of the batch's capacity counts as drained (see [`RecvBatch::try_recv`]).

use std::io;
use std::net::SocketAddr;
use std::ops::Range;

#[cfg(any(target_os = "linux", target_os = "android"))]
use tokio::io::Interest;
use tokio::net::UdpSocket;

/// Datagrams read (and answers sent) per system call by the listener.
pub(crate) const BATCH: usize = 32;

/// One received datagram: its length in its slot and its source.
#[derive(Debug, Clone, Copy)]
struct Received {
    len: usize,
    peer: Option<SocketAddr>,
}

/// Received datagrams of one batch, each in its own slot of one buffer.
///
/// The buffer is allocated zeroed and untouched: the kernel writes only the bytes of the
/// datagrams, so slots large enough for any datagram cost only the pages actually filled.
#[derive(Debug)]
pub(crate) struct RecvBatch {
    buf: Vec<u8>,
    slot: usize,
    capacity: usize,
    received: Vec<Received>,
    /// recvmmsg in use (false off Linux, or after the kernel refused it).
    #[cfg_attr(not(any(target_os = "linux", target_os = "android")), allow(dead_code))]
    batched: bool,
}

impl RecvBatch {
    /// Room for `capacity` datagrams of up to `slot` bytes each (both at least 1).
    pub(crate) fn new(capacity: usize, slot: usize) -> Self {
        let capacity = capacity.max(1);
        let slot = slot.max(1);
        Self {
            buf: vec![0u8; capacity.saturating_mul(slot)],
            slot,
            capacity,
            received: Vec::with_capacity(capacity),
            batched: cfg!(any(target_os = "linux", target_os = "android")),
        }
    }

    /// The same, reading one datagram per system call (the path of systems without
    /// `recvmmsg`).
    #[cfg(test)]
    fn single(capacity: usize, slot: usize) -> Self {
        Self {
            batched: false,
            ..Self::new(capacity, slot)
        }
    }

    /// Datagrams held from the last [`try_recv`](Self::try_recv).
    #[cfg(test)]
    fn len(&self) -> usize {
        self.received.len()
    }

    /// Datagram `i` of the last read and its source; `None` past the end, or when the kernel
    /// reported no usable source address (never for UDP over IPv4 or IPv6).
    pub(crate) fn get(&self, i: usize) -> Option<(&[u8], SocketAddr)> {
        let r = self.received.get(i)?;
        let start = i.checked_mul(self.slot)?;
        let data = self.buf.get(start..start.checked_add(r.len)?)?;
        Some((data, r.peer?))
    }

    /// Read the datagrams queued on `socket`, up to the capacity, without waiting; replaces
    /// the previous batch. Returns how many were read.
    ///
    /// A `recvmmsg` that comes back short of the capacity found the queue empty (the kernel
    /// stops a non-blocking batch at `EAGAIN`, or keeps any other error for the next call and
    /// signals it as a new event): tokio's readiness is then cleared as for `WouldBlock`, so the
    /// caller's next `try_recv` returns `WouldBlock` without a system call and
    /// `readable().await` waits for the next datagram. A datagram that arrives meanwhile is a
    /// new readiness event, which the clearing does not lose.
    ///
    /// # Errors
    ///
    /// [`io::ErrorKind::WouldBlock`] when nothing is queued (tokio's readiness is cleared, so
    /// `socket.readable().await` waits for the next datagram); any other receive error.
    pub(crate) fn try_recv(&mut self, socket: &UdpSocket) -> io::Result<usize> {
        self.received.clear();
        #[cfg(any(target_os = "linux", target_os = "android"))]
        if self.batched {
            let Self {
                buf,
                slot,
                capacity,
                received,
                ..
            } = self;
            let r = socket.try_io(Interest::READABLE, || {
                let n = mmsg::recv(socket, buf, *slot, *capacity, received)?;
                if n < *capacity {
                    // Drained: clear the readiness (the datagrams stay in `received`).
                    return Err(io::ErrorKind::WouldBlock.into());
                }
                Ok(n)
            });
            match r {
                Err(e) if e.raw_os_error() == Some(mmsg::ENOSYS) => {
                    tracing::debug!("recvmmsg is not available: reading one datagram per call");
                    self.batched = false;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock && !self.received.is_empty() => {
                    return Ok(self.received.len());
                }
                r => return r,
            }
        }
        self.try_recv_each(socket)
    }

    /// One `recvfrom` per datagram until the capacity is reached or nothing is queued.
    fn try_recv_each(&mut self, socket: &UdpSocket) -> io::Result<usize> {
        for chunk in self.buf.chunks_mut(self.slot).take(self.capacity) {
            match socket.try_recv_from(chunk) {
                Ok((len, peer)) => self.received.push(Received {
                    len,
                    peer: Some(peer),
                }),
                Err(e) if self.received.is_empty() => return Err(e),
                // Nothing more queued (readiness is cleared) or an error that the next
                // read reports again: deliver what was read.
                Err(_) => break,
            }
        }
        Ok(self.received.len())
    }
}

/// Answers queued for one socket: datagrams in one buffer, each with its destination.
#[derive(Debug, Default)]
pub(crate) struct SendBatch {
    data: Vec<u8>,
    items: Vec<(Range<usize>, SocketAddr)>,
    sent: Vec<bool>,
    /// sendmmsg in use (false off Linux, or after the kernel refused it).
    #[cfg_attr(not(any(target_os = "linux", target_os = "android")), allow(dead_code))]
    batched: bool,
}

impl SendBatch {
    /// An empty batch.
    pub(crate) fn new() -> Self {
        Self {
            data: Vec::with_capacity(BATCH * 512),
            items: Vec::with_capacity(BATCH),
            sent: Vec::with_capacity(BATCH),
            batched: cfg!(any(target_os = "linux", target_os = "android")),
        }
    }

    /// The same, sending one datagram per system call.
    #[cfg(test)]
    fn single() -> Self {
        Self {
            batched: false,
            ..Self::new()
        }
    }

    /// Answers queued.
    pub(crate) fn len(&self) -> usize {
        self.items.len()
    }

    /// Queue `datagram` for `peer`; returns its index in the batch.
    pub(crate) fn push(&mut self, datagram: &[u8], peer: SocketAddr) -> usize {
        let start = self.data.len();
        self.data.extend_from_slice(datagram);
        self.items.push((start..self.data.len(), peer));
        self.items.len() - 1
    }

    /// Send every queued answer, waiting for the socket to become writable when its buffer is
    /// full. An answer the kernel refuses (say, a destination the firewall rejects) is skipped
    /// and the rest are still sent. Returns how many were sent; [`sent`](Self::sent) tells
    /// which.
    pub(crate) async fn flush(&mut self, socket: &UdpSocket) -> usize {
        self.sent.clear();
        self.sent.resize(self.items.len(), false);
        let mut next = 0usize;
        let mut count = 0usize;
        while next < self.items.len() {
            match self.try_send_from(socket, next) {
                Ok(n) => {
                    // sendmmsg never reports 0 for a non-empty batch; step on regardless.
                    let n = n.max(1);
                    let end = next.saturating_add(n).min(self.items.len());
                    for s in self.sent.get_mut(next..end).unwrap_or_default() {
                        *s = true;
                    }
                    count = count.saturating_add(end - next);
                    next = end;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    if let Err(e) = socket.writable().await {
                        tracing::debug!(error = %e, "udp socket error");
                        break;
                    }
                }
                Err(e) => {
                    // The kernel reports the first answer it could not send.
                    tracing::debug!(error = %e, "udp send error");
                    next = next.saturating_add(1);
                }
            }
        }
        count
    }

    /// Send answers from `from` on, without waiting: how many the kernel took.
    fn try_send_from(&mut self, socket: &UdpSocket, from: usize) -> io::Result<usize> {
        let items = self.items.get(from..).unwrap_or_default();
        #[cfg(any(target_os = "linux", target_os = "android"))]
        if self.batched {
            let data = &self.data;
            match socket.try_io(Interest::WRITABLE, || mmsg::send(socket, data, items)) {
                Err(e) if e.raw_os_error() == Some(mmsg::ENOSYS) => {
                    tracing::debug!("sendmmsg is not available: sending one datagram per call");
                    self.batched = false;
                }
                r => return r,
            }
        }
        // One datagram per call; the first failure is reported as sendmmsg would.
        let mut n = 0usize;
        for (range, peer) in items {
            let datagram = self.data.get(range.clone()).unwrap_or_default();
            match socket.try_send_to(datagram, *peer) {
                Ok(_) => n += 1,
                Err(e) if n == 0 => return Err(e),
                Err(_) => break,
            }
        }
        Ok(n)
    }

    /// Answers of the last [`flush`](Self::flush) that were sent: (index, datagram).
    pub(crate) fn sent(&self) -> impl Iterator<Item = (usize, &[u8])> {
        self.items
            .iter()
            .zip(&self.sent)
            .enumerate()
            .filter(|(_, (_, sent))| **sent)
            .map(|(i, ((range, _), _))| (i, self.data.get(range.clone()).unwrap_or_default()))
    }

    /// Forget every answer (after a flush).
    pub(crate) fn clear(&mut self) {
        self.data.clear();
        self.items.clear();
        self.sent.clear();
    }
}

/// The Linux system calls, through `nix`'s safe wrappers.
#[cfg(any(target_os = "linux", target_os = "android"))]
mod mmsg {
    use std::io::{self, IoSlice, IoSliceMut};
    use std::net::SocketAddr;
    use std::ops::Range;
    use std::os::fd::AsRawFd;

    use nix::sys::socket::{
        ControlMessage, MsgFlags, MultiHeaders, SockaddrStorage, recvmmsg, sendmmsg,
    };
    use tokio::net::UdpSocket;

    use super::Received;

    /// `ENOSYS`: the system call does not exist here.
    pub(super) const ENOSYS: i32 = nix::errno::Errno::ENOSYS as i32;

    fn std_addr(a: &SockaddrStorage) -> Option<SocketAddr> {
        if let Some(v4) = a.as_sockaddr_in() {
            return Some(SocketAddr::V4((*v4).into()));
        }
        a.as_sockaddr_in6().map(|v6| SocketAddr::V6((*v6).into()))
    }

    /// One `recvmmsg` into the first `capacity` slots of `buf`.
    ///
    /// The message headers are built per call: they hold raw pointers (so they cannot live
    /// in a task that moves between threads) and the kernel shrinks their address lengths,
    /// which must not carry over to the next call.
    pub(super) fn recv(
        socket: &UdpSocket,
        buf: &mut [u8],
        slot: usize,
        capacity: usize,
        received: &mut Vec<Received>,
    ) -> io::Result<usize> {
        let mut iovs: Vec<[IoSliceMut<'_>; 1]> = buf
            .chunks_mut(slot)
            .take(capacity)
            .map(|c| [IoSliceMut::new(c)])
            .collect();
        let mut headers = MultiHeaders::<SockaddrStorage>::preallocate(iovs.len(), None);
        let messages = recvmmsg(
            socket.as_raw_fd(),
            &mut headers,
            iovs.iter_mut(),
            MsgFlags::MSG_DONTWAIT,
            None,
        )?;
        for m in messages {
            received.push(Received {
                len: m.bytes.min(slot),
                peer: m.address.as_ref().and_then(std_addr),
            });
        }
        Ok(received.len())
    }

    /// One `sendmmsg` of `items` (ranges of `data` and their destinations): how many were
    /// sent.
    pub(super) fn send(
        socket: &UdpSocket,
        data: &[u8],
        items: &[(Range<usize>, SocketAddr)],
    ) -> io::Result<usize> {
        let iovs: Vec<[IoSlice<'_>; 1]> = items
            .iter()
            .map(|(r, _)| [IoSlice::new(data.get(r.clone()).unwrap_or_default())])
            .collect();
        let addrs: Vec<Option<SockaddrStorage>> = items
            .iter()
            .map(|(_, a)| Some(SockaddrStorage::from(*a)))
            .collect();
        let mut headers = MultiHeaders::<SockaddrStorage>::preallocate(items.len(), None);
        let no_control: [ControlMessage<'_>; 0] = [];
        let sent = sendmmsg(
            socket.as_raw_fd(),
            &mut headers,
            &iovs,
            &addrs,
            no_control,
            MsgFlags::MSG_DONTWAIT,
        )?;
        Ok(sent.count())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;
    use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
    use std::time::Duration;

    use tokio::net::UdpSocket;

    use super::*;

    async fn server(ip: std::net::IpAddr) -> Option<UdpSocket> {
        UdpSocket::bind(SocketAddr::new(ip, 0)).await.ok()
    }

    /// Read until `want` datagrams arrived; returns them (payload, source) and the number of
    /// reads that returned data.
    async fn read_all(
        socket: &UdpSocket,
        batch: &mut RecvBatch,
        want: usize,
    ) -> (Vec<(Vec<u8>, SocketAddr)>, usize) {
        let mut got = Vec::new();
        let mut reads = 0usize;
        while got.len() < want {
            socket.readable().await.unwrap();
            match batch.try_recv(socket) {
                Ok(n) => {
                    assert!(n >= 1 && n == batch.len());
                    reads += 1;
                    for i in 0..n {
                        let (d, p) = batch.get(i).unwrap();
                        got.push((d.to_vec(), p));
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => panic!("receive failed: {e}"),
            }
        }
        (got, reads)
    }

    /// Whether the batches still use recvmmsg/sendmmsg (they must, on Linux).
    fn assert_path(recv: &RecvBatch, send: &SendBatch, batched: bool) {
        let expected = batched && cfg!(any(target_os = "linux", target_os = "android"));
        assert_eq!(recv.batched, expected);
        assert_eq!(send.batched, expected);
    }

    /// `clients` client sockets each send `per_client` datagrams naming themselves; the server
    /// reads them in batches and answers each to its source in batches; every client gets
    /// exactly its own answers.
    async fn round_trip(
        ip: std::net::IpAddr,
        clients: usize,
        per_client: usize,
        mut recv: RecvBatch,
        mut send: SendBatch,
    ) -> usize {
        let batched = recv.batched;
        let Some(server) = server(ip).await else {
            eprintln!("skipped: cannot bind {ip}");
            return 0;
        };
        let addr = server.local_addr().unwrap();
        let mut socks = Vec::new();
        for c in 0..clients {
            let s = UdpSocket::bind(SocketAddr::new(ip, 0)).await.unwrap();
            for k in 0..per_client {
                s.send_to(format!("q {c} {k}").as_bytes(), addr)
                    .await
                    .unwrap();
            }
            socks.push(s);
        }
        let total = clients * per_client;
        let (got, reads) = read_all(&server, &mut recv, total).await;
        assert_eq!(got.len(), total);
        for chunk in got.chunks(BATCH) {
            for (payload, peer) in chunk {
                let text = String::from_utf8(payload.clone()).unwrap();
                let answer = text.replacen('q', "a", 1);
                send.push(answer.as_bytes(), *peer);
            }
            assert_eq!(send.flush(&server).await, chunk.len());
            let indices: Vec<usize> = send.sent().map(|(i, _)| i).collect();
            assert_eq!(indices, (0..chunk.len()).collect::<Vec<_>>());
            send.clear();
            assert_eq!(send.len(), 0);
        }
        for (c, s) in socks.iter().enumerate() {
            let mut seen = HashSet::new();
            let mut buf = [0u8; 64];
            for _ in 0..per_client {
                let (n, from) = s.recv_from(&mut buf).await.unwrap();
                assert_eq!(from, addr);
                let text = std::str::from_utf8(&buf[..n]).unwrap();
                let mut parts = text.split(' ');
                assert_eq!(parts.next(), Some("a"));
                assert_eq!(parts.next(), Some(c.to_string().as_str()), "{text}");
                assert!(seen.insert(parts.next().unwrap().to_owned()), "{text}");
            }
            assert_eq!(seen.len(), per_client);
        }
        assert_path(&recv, &send, batched);
        reads
    }

    #[tokio::test]
    async fn many_clients_in_one_batch_each_answered_to_its_source() {
        // Loopback normally delivers each datagram before send_to returns: all 48 are queued
        // when the server first reads.
        let reads = round_trip(
            Ipv4Addr::LOCALHOST.into(),
            24,
            2,
            RecvBatch::new(64, 2048),
            SendBatch::new(),
        )
        .await;
        assert!(reads <= 4, "48 queued datagrams took {reads} reads");
    }

    #[tokio::test]
    async fn more_datagrams_than_the_capacity_take_several_batches() {
        let reads = round_trip(
            Ipv4Addr::LOCALHOST.into(),
            50,
            3,
            RecvBatch::new(BATCH, 2048),
            SendBatch::new(),
        )
        .await;
        assert!(reads >= 150 / BATCH, "{reads}");
    }

    #[tokio::test]
    async fn ipv6_sources() {
        round_trip(
            Ipv6Addr::LOCALHOST.into(),
            20,
            2,
            RecvBatch::new(BATCH, 2048),
            SendBatch::new(),
        )
        .await;
    }

    #[tokio::test]
    async fn one_datagram_per_call_path() {
        let reads = round_trip(
            Ipv4Addr::LOCALHOST.into(),
            30,
            2,
            RecvBatch::single(BATCH, 2048),
            SendBatch::single(),
        )
        .await;
        assert!(reads >= 2);
    }

    #[tokio::test]
    async fn largest_datagrams_arrive_whole_in_their_slots() {
        let server = server(Ipv4Addr::LOCALHOST.into()).await.unwrap();
        let addr = server.local_addr().unwrap();
        let client = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let sizes = [65_507usize, 1, 40_000, 512];
        for (i, &n) in sizes.iter().enumerate() {
            let fill = u8::try_from(i + 1).unwrap();
            client.send_to(&vec![fill; n], addr).await.unwrap();
        }
        let mut batch = RecvBatch::new(8, crate::engine::MAX_MESSAGE);
        let (got, _) = read_all(&server, &mut batch, sizes.len()).await;
        for (i, (payload, peer)) in got.iter().enumerate() {
            let fill = u8::try_from(i + 1).unwrap();
            assert_eq!(payload.len(), sizes[i]);
            assert!(payload.iter().all(|&b| b == fill));
            assert_eq!(*peer, client.local_addr().unwrap());
        }
        assert!(batch.get(sizes.len()).is_none());
    }

    #[tokio::test]
    async fn empty_socket_would_block() {
        let server = server(Ipv4Addr::LOCALHOST.into()).await.unwrap();
        for mut batch in [RecvBatch::new(4, 512), RecvBatch::single(4, 512)] {
            let e = batch.try_recv(&server).unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::WouldBlock);
            assert_eq!(batch.len(), 0);
        }
    }

    /// A short batch clears the readiness (the next read would block without asking the
    /// kernel), and a datagram sent after it still wakes `readable()`: no wake-up is lost.
    #[tokio::test]
    async fn a_short_batch_waits_for_the_next_datagram_without_losing_it() {
        let server = server(Ipv4Addr::LOCALHOST.into()).await.unwrap();
        let addr = server.local_addr().unwrap();
        let client = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        for mut batch in [RecvBatch::new(8, 512), RecvBatch::single(8, 512)] {
            for round in 0..50u32 {
                let sent = 1 + round as usize % 7;
                for k in 0..sent {
                    client
                        .send_to(format!("{round} {k}").as_bytes(), addr)
                        .await
                        .unwrap();
                }
                let mut got = Vec::new();
                while got.len() < sent {
                    tokio::time::timeout(Duration::from_secs(5), server.readable())
                        .await
                        .expect("a queued datagram must wake the reader")
                        .unwrap();
                    match batch.try_recv(&server) {
                        Ok(n) => got.extend((0..n).map(|i| batch.get(i).unwrap().0.to_vec())),
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                        Err(e) => panic!("receive failed: {e}"),
                    }
                }
                let want: Vec<Vec<u8>> = (0..sent)
                    .map(|k| format!("{round} {k}").into_bytes())
                    .collect();
                assert_eq!(got, want);
                let e = batch.try_recv(&server).unwrap_err();
                assert_eq!(e.kind(), io::ErrorKind::WouldBlock);
            }
        }
    }

    #[tokio::test]
    async fn a_refused_destination_is_skipped_and_the_rest_sent() {
        let server = server(Ipv4Addr::LOCALHOST.into()).await.unwrap();
        let a = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let b = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        for mut send in [SendBatch::new(), SendBatch::single()] {
            send.push(b"one", a.local_addr().unwrap());
            // Port 0 cannot be a destination: the kernel refuses this one.
            send.push(b"bad", "127.0.0.1:0".parse().unwrap());
            send.push(b"two", b.local_addr().unwrap());
            assert_eq!(send.flush(&server).await, 2);
            let sent: Vec<(usize, Vec<u8>)> = send.sent().map(|(i, d)| (i, d.to_vec())).collect();
            assert_eq!(sent, vec![(0, b"one".to_vec()), (2, b"two".to_vec())]);
            send.clear();
            let mut buf = [0u8; 8];
            let (n, _) = a.recv_from(&mut buf).await.unwrap();
            assert_eq!(&buf[..n], b"one");
            let (n, _) = b.recv_from(&mut buf).await.unwrap();
            assert_eq!(&buf[..n], b"two");
        }
    }
}
