//! A tiny authoritative DNS server on loopback (UDP and TCP on one port): every `A` question
//! under the zone is answered with [`ANSWER`], authoritatively; other types get an empty
//! NOERROR answer. A server made with [`Upstream::start_lying`] answers one name with
//! [`LIE`] instead (the cheating miner's upstream).

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, UdpSocket};
use tokio::task::JoinHandle;

/// The address every honest answer carries.
pub const ANSWER: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 53);
/// The address of the lying answer.
pub const LIE: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 66);

/// A running server.
pub struct Upstream {
    pub addr: SocketAddr,
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for Upstream {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

impl Upstream {
    /// An honest server.
    pub async fn start() -> Self {
        Self::start_with(HashMap::new()).await
    }

    /// A server that answers `name` (lower case, no trailing dot) with [`LIE`].
    pub async fn start_lying(name: &str) -> Self {
        Self::start_with(HashMap::from([(name.to_ascii_lowercase(), LIE)])).await
    }

    async fn start_with(overrides: HashMap<String, Ipv4Addr>) -> Self {
        let overrides = Arc::new(overrides);
        // UDP first on an ephemeral port, then TCP on the same port (retried on a clash).
        let (udp, tcp) = loop {
            let udp = UdpSocket::bind("127.0.0.1:0").await.expect("bind udp");
            let port = udp.local_addr().expect("udp addr").port();
            if let Ok(tcp) = TcpListener::bind(("127.0.0.1", port)).await {
                break (udp, tcp);
            }
        };
        let addr = udp.local_addr().expect("udp addr");
        let o = overrides.clone();
        let udp_task = tokio::spawn(async move {
            let mut buf = [0u8; 4096];
            loop {
                let Ok((n, from)) = udp.recv_from(&mut buf).await else {
                    continue;
                };
                if let Some(resp) = answer(&buf[..n], &o) {
                    let _ = udp.send_to(&resp, from).await;
                }
            }
        });
        let tcp_task = tokio::spawn(async move {
            loop {
                let Ok((mut stream, _)) = tcp.accept().await else {
                    continue;
                };
                let o = overrides.clone();
                tokio::spawn(async move {
                    loop {
                        let mut len = [0u8; 2];
                        if stream.read_exact(&mut len).await.is_err() {
                            return;
                        }
                        let mut msg = vec![0u8; usize::from(u16::from_be_bytes(len))];
                        if stream.read_exact(&mut msg).await.is_err() {
                            return;
                        }
                        let Some(resp) = answer(&msg, &o) else { return };
                        let mut out = (resp.len() as u16).to_be_bytes().to_vec();
                        out.extend_from_slice(&resp);
                        if stream.write_all(&out).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        Self {
            addr,
            tasks: vec![udp_task, tcp_task],
        }
    }
}

/// The answer to one query message, or `None` if it is not a well-formed one-question query.
fn answer(query: &[u8], overrides: &HashMap<String, Ipv4Addr>) -> Option<Vec<u8>> {
    if query.len() < 12 || query[2] & 0x80 != 0 || query[4..6] != [0, 1] {
        return None;
    }
    // The question: labels, then type and class.
    let mut at = 12;
    let mut labels = Vec::new();
    loop {
        let len = usize::from(*query.get(at)?);
        at += 1;
        if len == 0 {
            break;
        }
        if len > 63 {
            return None;
        }
        labels.push(String::from_utf8_lossy(query.get(at..at + len)?).to_ascii_lowercase());
        at += len;
    }
    let qtype = u16::from_be_bytes(query.get(at..at + 2)?.try_into().ok()?);
    let question_end = at + 4;
    let question = query.get(12..question_end)?;
    let name = labels.join(".");
    let mut resp = Vec::with_capacity(question_end + 16);
    resp.extend_from_slice(&query[..2]);
    // QR, AA, the query's RD; RCODE 0.
    resp.push(0x84 | (query[2] & 0x01));
    resp.push(0x00);
    let answers: u16 = u16::from(qtype == 1);
    resp.extend_from_slice(&[0, 1, 0, answers as u8, 0, 0, 0, 0]);
    resp.extend_from_slice(question);
    if qtype == 1 {
        let ip = overrides.get(&name).copied().unwrap_or(ANSWER);
        resp.extend_from_slice(&[0xC0, 0x0C, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4]);
        resp.extend_from_slice(&ip.octets());
    }
    Some(resp)
}
