//! A real edge on loopback in front of test upstreams.
//!
//! [`EdgeHarness::builder`] starts [`TestServer`]s, a [`TestCert`] and a
//! [`tolldns_ingress::Edge`] with the listeners asked for on `127.0.0.1` (OS-assigned ports),
//! forwarding over UDP to the test servers and, optionally, recording receipts into a channel.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use prometheus_client::registry::Registry;
use tokio::sync::mpsc;
use tolldns_core::NameKey;
use tolldns_ingress::{
    ChannelSink, Clock, Edge, EdgeConfig, EdgeError, EdgeHandle, EdgeInputs, ReceiptsSetup,
    SignedBatch, StaticNameKey,
};

use crate::server::{TestCert, TestServer, TestZone};

/// The name key every epoch has in an [`EdgeHarness`] that records receipts.
pub const HARNESS_NAME_KEY: [u8; 32] = [0x5A; 32];
/// The seed of an [`EdgeHarness`]'s receipt-signing key.
pub const HARNESS_SIGNING_SEED: [u8; 32] = [0x11; 32];
/// Batches that can wait in an [`EdgeHarness`]'s receipt channel.
const BATCH_CAPACITY: usize = 16;

/// Why an [`EdgeHarness`] did not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HarnessError {
    /// A test upstream could not bind its sockets.
    #[error("test upstream: {0}")]
    Upstream(#[source] io::Error),
    /// The test certificate could not be generated.
    #[error("test certificate: {0}")]
    Cert(#[from] rcgen::Error),
    /// rustls rejected the test certificate.
    #[error("TLS configuration: {0}")]
    Tls(#[from] rustls::Error),
    /// The edge did not start.
    #[error("edge: {0}")]
    Edge(#[from] EdgeError),
}

/// What an [`EdgeHarness`] will start; see [`EdgeHarness::builder`].
#[derive(Debug)]
#[must_use = "a builder does nothing until `start` is awaited"]
pub struct EdgeHarnessBuilder {
    config: EdgeConfig,
    zones: Vec<TestZone>,
    receipts: bool,
    inputs: EdgeInputs,
}

impl EdgeHarnessBuilder {
    fn listen(mut self, pick: fn(&mut EdgeConfig) -> &mut Vec<SocketAddr>) -> Self {
        pick(&mut self.config).push(SocketAddr::from(([127, 0, 0, 1], 0)));
        self
    }

    /// Adds a UDP listener.
    pub fn udp(self) -> Self {
        self.listen(|c| &mut c.listen.udp)
    }

    /// Adds a TCP listener.
    pub fn tcp(self) -> Self {
        self.listen(|c| &mut c.listen.tcp)
    }

    /// Adds a DoT listener presenting the harness's [`TestCert`].
    pub fn dot(self) -> Self {
        self.listen(|c| &mut c.listen.dot)
    }

    /// Adds a DoH listener presenting the harness's [`TestCert`].
    pub fn doh(self) -> Self {
        self.listen(|c| &mut c.listen.doh)
    }

    /// Adds a DoQ listener presenting the harness's [`TestCert`].
    pub fn doq(self) -> Self {
        self.listen(|c| &mut c.listen.doq)
    }

    /// Adds a test upstream answering `zone`. Without any, the harness starts one with
    /// [`TestZone::default`].
    pub fn upstream(mut self, zone: TestZone) -> Self {
        self.zones.push(zone);
        self
    }

    /// Records receipts: signed with [`HARNESS_SIGNING_SEED`], names keyed with
    /// [`HARNESS_NAME_KEY`], batches delivered to [`EdgeHarness::batches`].
    pub fn receipts(mut self) -> Self {
        self.receipts = true;
        self
    }

    /// Runs the edge on `clock` (e.g. a [`tolldns_ingress::ManualClock`] the test advances)
    /// instead of the system clock.
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.inputs.clock = clock;
        self
    }

    /// Seeds the upstream selector's RNG with `seed` instead of from the operating system.
    pub fn rng_seed(mut self, seed: u64) -> Self {
        self.inputs.rng_seed = Some(seed);
        self
    }

    /// Changes the configuration. The edge's upstreams are set to the test servers when it
    /// starts, whatever `upstream.servers` holds.
    pub fn configure(mut self, change: impl FnOnce(&mut EdgeConfig)) -> Self {
        change(&mut self.config);
        self
    }

    /// Starts the test upstreams and the edge.
    ///
    /// # Errors
    ///
    /// [`HarnessError`] if a socket cannot be bound, the certificate cannot be made or the edge
    /// rejects its configuration.
    pub async fn start(self) -> Result<EdgeHarness, HarnessError> {
        let Self {
            mut config,
            mut zones,
            receipts,
            inputs,
        } = self;
        if zones.is_empty() {
            zones.push(TestZone::default());
        }
        let mut upstreams = Vec::with_capacity(zones.len());
        for zone in zones {
            upstreams.push(
                TestServer::start(zone)
                    .await
                    .map_err(HarnessError::Upstream)?,
            );
        }
        config.upstream.servers = upstreams
            .iter()
            .map(|u| u.udp_upstream().to_string())
            .collect();
        let cert = TestCert::generate()?;
        let tls = cert.server_config(&[])?;
        let (sink, batches) = ChannelSink::new(BATCH_CAPACITY);
        let receipts = receipts.then(|| ReceiptsSetup {
            signing_key: ed25519_dalek::SigningKey::from_bytes(&HARNESS_SIGNING_SEED),
            name_keys: Arc::new(StaticNameKey(NameKey(HARNESS_NAME_KEY))),
            sink: Arc::new(sink),
        });
        let mut registry = Registry::default();
        let edge = Edge::start_with(config, Some(tls), receipts, &mut registry, inputs).await?;
        Ok(EdgeHarness {
            edge,
            cert,
            batches,
            registry,
            upstreams,
        })
    }
}

/// A running edge on loopback, its test upstreams, certificate, receipts and metrics.
///
/// The upstreams stop when the harness is dropped; the edge stops with
/// [`EdgeHandle::shutdown`].
#[derive(Debug)]
#[non_exhaustive]
pub struct EdgeHarness {
    /// The edge.
    pub edge: EdgeHandle,
    /// The certificate its DoT, DoH and DoQ listeners present (trust [`TestCert::ca_der`]).
    pub cert: TestCert,
    /// Signed receipt batches, when [`EdgeHarnessBuilder::receipts`] was asked for (otherwise
    /// the channel is closed and yields nothing).
    pub batches: mpsc::Receiver<SignedBatch>,
    /// The registry the edge's metrics are registered in.
    pub registry: Registry,
    upstreams: Vec<TestServer>,
}

impl EdgeHarness {
    /// A harness with no listeners yet, one receipt window for the whole test (3600 s: batches
    /// arrive at shutdown), and a 1 s idle timeout on streams.
    pub fn builder() -> EdgeHarnessBuilder {
        let mut config = EdgeConfig::default();
        config.listen.udp.clear();
        config.listen.tcp.clear();
        config.receipts.window_secs = 3600;
        config.streams.idle_timeout_ms = 1_000;
        EdgeHarnessBuilder {
            config,
            zones: Vec::new(),
            receipts: false,
            inputs: EdgeInputs::default(),
        }
    }

    /// The first test upstream.
    pub fn upstream(&self) -> &TestServer {
        // `start` always starts at least one.
        &self.upstreams[0]
    }

    /// The test upstreams, in the order they were added.
    pub fn upstreams(&self) -> &[TestServer] {
        &self.upstreams
    }

    fn first(addrs: &[SocketAddr], what: &str) -> SocketAddr {
        match addrs.first() {
            Some(addr) => *addr,
            None => panic!("the harness was built without a {what} listener"),
        }
    }

    /// The UDP listener's address.
    ///
    /// # Panics
    ///
    /// If the harness was built without [`EdgeHarnessBuilder::udp`].
    pub fn udp(&self) -> SocketAddr {
        Self::first(&self.edge.local_addrs().udp, "UDP")
    }

    /// The TCP listener's address.
    ///
    /// # Panics
    ///
    /// If the harness was built without [`EdgeHarnessBuilder::tcp`].
    pub fn tcp(&self) -> SocketAddr {
        Self::first(&self.edge.local_addrs().tcp, "TCP")
    }

    /// The DoT listener's address.
    ///
    /// # Panics
    ///
    /// If the harness was built without [`EdgeHarnessBuilder::dot`].
    pub fn dot(&self) -> SocketAddr {
        Self::first(&self.edge.local_addrs().dot, "DoT")
    }

    /// The DoH listener's address.
    ///
    /// # Panics
    ///
    /// If the harness was built without [`EdgeHarnessBuilder::doh`].
    pub fn doh(&self) -> SocketAddr {
        Self::first(&self.edge.local_addrs().doh, "DoH")
    }

    /// The DoQ listener's address.
    ///
    /// # Panics
    ///
    /// If the harness was built without [`EdgeHarnessBuilder::doq`].
    pub fn doq(&self) -> SocketAddr {
        Self::first(&self.edge.local_addrs().doq, "DoQ")
    }

    /// The metrics in the Prometheus text exposition.
    pub fn metrics_text(&self) -> String {
        let mut text = String::new();
        // Writing into a String cannot fail.
        let _written = prometheus_client::encoding::text::encode(&mut text, &self.registry);
        text
    }

    /// The value of the sample `name{labels}` (exactly as exposed), 0 if absent.
    pub fn metric(&self, sample: &str) -> u64 {
        self.metrics_text()
            .lines()
            .find_map(|l| l.strip_prefix(sample).and_then(|v| v.trim().parse().ok()))
            .unwrap_or(0)
    }
}

/// A minimal wire query (RD set, no EDNS) for `name`/`qtype` with message ID `id`.
///
/// # Panics
///
/// If `name` is not a valid domain name.
pub fn query(id: u16, name: &str, qtype: u16) -> Vec<u8> {
    let mut buf = [0u8; 512];
    match tolldns_ingress::wire::build_query(&mut buf, id, name, qtype) {
        Some(n) => buf[..n].to_vec(),
        None => panic!("invalid query name literal {name:?}"),
    }
}

/// `msg` with the two-octet length prefix of DNS over TCP, DoT and DoQ.
///
/// # Panics
///
/// If `msg` is longer than 65,535 octets.
pub fn framed(msg: &[u8]) -> Vec<u8> {
    let Ok(len) = u16::try_from(msg.len()) else {
        panic!("a DNS message is at most 65,535 octets, not {}", msg.len())
    };
    let mut out = Vec::with_capacity(msg.len() + 2);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(msg);
    out
}
