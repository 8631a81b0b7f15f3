//! Shared harness: a testkit upstream and an edge with all four listeners on loopback.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tolldns_core::NameKey;
use tolldns_ingress::testkit::{TestCert, TestServer, TestZone};
use tolldns_ingress::{
    ChannelSink, Edge, EdgeConfig, EdgeHandle, ReceiptsSetup, SignedBatch, StaticNameKey,
};

pub(crate) const NAME_KEY: [u8; 32] = [0x5A; 32];
pub(crate) const SIGNING_SEED: [u8; 32] = [0x11; 32];

pub(crate) struct Harness {
    pub(crate) upstream: TestServer,
    pub(crate) edge: EdgeHandle,
    pub(crate) cert: TestCert,
    pub(crate) batches: mpsc::Receiver<SignedBatch>,
    pub(crate) registry: prometheus_client::registry::Registry,
}

pub(crate) fn loopback0() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

impl Harness {
    pub(crate) async fn start(tweak: impl FnOnce(&mut EdgeConfig)) -> Self {
        let upstream = TestServer::start(TestZone::default())
            .await
            .expect("testkit server");
        let cert = TestCert::generate().expect("test certificate");
        let mut cfg = EdgeConfig::default();
        cfg.listen.udp = vec![loopback0()];
        cfg.listen.tcp = vec![loopback0()];
        cfg.listen.dot = vec![loopback0()];
        cfg.listen.doh = vec![loopback0()];
        cfg.listen.udp_workers = 2;
        cfg.upstream.servers = vec![upstream.udp_upstream().to_string()];
        cfg.receipts.window_secs = 3600;
        cfg.streams.idle_timeout_ms = 1_000;
        tweak(&mut cfg);
        let tls = cert.server_config(&[]).expect("server config");
        let (sink, batches) = ChannelSink::new(16);
        let receipts = ReceiptsSetup {
            signing_key: ed25519_dalek::SigningKey::from_bytes(&SIGNING_SEED),
            name_keys: Arc::new(StaticNameKey(NameKey(NAME_KEY))),
            sink: Arc::new(sink),
        };
        let mut registry = prometheus_client::registry::Registry::default();
        let edge = Edge::start(cfg, Some(tls), Some(receipts), &mut registry)
            .await
            .expect("edge starts");
        Self {
            upstream,
            edge,
            cert,
            batches,
            registry,
        }
    }

    pub(crate) fn udp(&self) -> SocketAddr {
        self.edge.local_addrs().udp[0]
    }
    pub(crate) fn tcp(&self) -> SocketAddr {
        self.edge.local_addrs().tcp[0]
    }
    pub(crate) fn dot(&self) -> SocketAddr {
        self.edge.local_addrs().dot[0]
    }
    pub(crate) fn doh(&self) -> SocketAddr {
        self.edge.local_addrs().doh[0]
    }

    /// The value of a metric sample line `name{labels}` in the text exposition, 0 if absent.
    pub(crate) fn metric(&self, sample: &str) -> u64 {
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &self.registry).unwrap();
        text.lines()
            .find_map(|l| l.strip_prefix(sample).and_then(|v| v.trim().parse().ok()))
            .unwrap_or(0)
    }
}

/// A wire query for `name`/`qtype` with `id`.
pub(crate) fn query(id: u16, name: &str, qtype: u16) -> Vec<u8> {
    let mut b = [0u8; 512];
    let n = tolldns_ingress::wire::build_query(&mut b, id, name, qtype).unwrap();
    b[..n].to_vec()
}

/// Send one datagram from `from` and wait for a response (None on timeout).
pub(crate) async fn udp_exchange(
    sock: &UdpSocket,
    to: SocketAddr,
    msg: &[u8],
    wait: Duration,
) -> Option<Vec<u8>> {
    sock.send_to(msg, to).await.unwrap();
    let mut buf = vec![0u8; 65_535];
    match tokio::time::timeout(wait, sock.recv_from(&mut buf)).await {
        Ok(Ok((n, _))) => Some(buf[..n].to_vec()),
        _ => None,
    }
}

pub(crate) fn rcode(msg: &[u8]) -> u8 {
    msg[3] & 0x0F
}
