//! Shared harness: a testkit upstream and an edge with UDP, TCP, DoT and DoH on loopback.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::UdpSocket;
use tolldns_ingress::EdgeConfig;
use tolldns_testkit::EdgeHarnessBuilder;
pub(crate) use tolldns_testkit::{
    EdgeHarness as Harness, HARNESS_NAME_KEY as NAME_KEY, HARNESS_SIGNING_SEED as SIGNING_SEED,
    query,
};

/// How long [`wait_for`] waits for a condition before failing the test.
const CONDITION_WAIT: Duration = Duration::from_secs(10);

/// An edge with UDP (two sockets), TCP, DoT and DoH listeners recording receipts, in front of
/// one test upstream with the default zone; `tweak` changes the configuration first.
pub(crate) async fn harness(tweak: impl FnOnce(&mut EdgeConfig)) -> Harness {
    harness_with(|b| b.configure(tweak)).await
}

/// [`harness`] with `build` changing the harness builder (a clock, the configuration, ...).
pub(crate) async fn harness_with(
    build: impl FnOnce(EdgeHarnessBuilder) -> EdgeHarnessBuilder,
) -> Harness {
    let builder = Harness::builder()
        .udp()
        .tcp()
        .dot()
        .doh()
        .receipts()
        .configure(|c| c.listen.udp_workers = 2);
    build(builder).start().await.expect("edge starts")
}

/// Wait until `cond` holds, yielding to the runtime in between; panics if it does not within
/// a bound far above any expected delay (the test waits for an event, not for time to pass).
pub(crate) async fn wait_for(mut cond: impl FnMut() -> bool) {
    tokio::time::timeout(CONDITION_WAIT, async {
        while !cond() {
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("the condition holds within the bound");
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
