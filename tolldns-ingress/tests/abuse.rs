//! Abuse, read as an attacker would: floods from many spoofed prefixes, reflection, one
//! prefix's flood against its neighbours, the attack-mode check against the cache, and quorum
//! disagreement. Real UDP and TCP sockets on loopback against a real edge; "spoofed" sources
//! are client sockets bound across 127.0.0.0/8 (Linux routes all of it to `lo`).
//!
//! Every assertion is on counts (queries sent, answers received, bytes, metrics), never on
//! timing: the pacing comes from waiting for answers, not from clocks.

use std::net::{Ipv4Addr, SocketAddr, UdpSocket as StdUdpSocket};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tolldns_ingress::testkit::{TestServer, TestZone};
use tolldns_ingress::{Edge, EdgeConfig, EdgeHandle, Mode};

struct Setup {
    edge: EdgeHandle,
    registry: prometheus_client::registry::Registry,
}

impl Setup {
    async fn start(upstreams: &[&TestServer], tweak: impl FnOnce(&mut EdgeConfig)) -> Self {
        let mut cfg = EdgeConfig::default();
        cfg.listen.udp = vec!["127.0.0.1:0".parse().unwrap()];
        cfg.listen.tcp = vec!["127.0.0.1:0".parse().unwrap()];
        // One socket: datagrams are served in arrival order, so an answer to one client proves
        // every datagram sent before it was handled.
        cfg.listen.udp_workers = 1;
        cfg.upstream.servers = upstreams
            .iter()
            .map(|u| u.udp_upstream().to_string())
            .collect();
        tweak(&mut cfg);
        let mut registry = prometheus_client::registry::Registry::default();
        let edge = Edge::start(cfg, None, None, &mut registry)
            .await
            .expect("edge starts");
        Self { edge, registry }
    }

    fn udp(&self) -> SocketAddr {
        self.edge.local_addrs().udp[0]
    }

    fn tcp(&self) -> SocketAddr {
        self.edge.local_addrs().tcp[0]
    }

    /// The value of the sample `name{labels}` in the text exposition, 0 if absent.
    fn metric(&self, sample: &str) -> u64 {
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &self.registry).unwrap();
        text.lines()
            .find_map(|l| l.strip_prefix(sample).and_then(|v| v.trim().parse().ok()))
            .unwrap_or(0)
    }
}

/// A wire query for `name`/`qtype` with `id`, with an OPT record advertising `edns` bytes.
fn query(id: u16, name: &str, qtype: u16, edns: Option<u16>) -> Vec<u8> {
    let mut b = [0u8; 512];
    let n = tolldns_ingress::wire::build_query(&mut b, id, name, qtype).unwrap();
    let mut q = b[..n].to_vec();
    if let Some(size) = edns {
        q[11] = 1;
        q.extend_from_slice(&[0, 0, 41]);
        q.extend_from_slice(&size.to_be_bytes());
        q.extend_from_slice(&[0, 0, 0, 0, 0, 0]);
    }
    q
}

fn id_of(m: &[u8]) -> u16 {
    u16::from_be_bytes([m[0], m[1]])
}
fn truncated(m: &[u8]) -> bool {
    m[2] & 0x02 != 0
}
fn rcode(m: &[u8]) -> u8 {
    m[3] & 0x0F
}
fn ancount(m: &[u8]) -> u16 {
    u16::from_be_bytes([m[6], m[7]])
}

/// A full answer (no TC, NOERROR, records) to query `id`.
fn is_answer(m: &[u8], id: u16) -> bool {
    m.len() >= 12 && id_of(m) == id && !truncated(m) && rcode(m) == 0 && ancount(m) > 0
}

/// Send `q` from `sock` and wait for the response with its ID (None after `wait`).
fn exchange(sock: &StdUdpSocket, to: SocketAddr, q: &[u8], wait: Duration) -> Option<Vec<u8>> {
    sock.set_read_timeout(Some(wait)).unwrap();
    sock.send_to(q, to).unwrap();
    let id = id_of(q);
    let mut buf = vec![0u8; 65_535];
    loop {
        match sock.recv_from(&mut buf) {
            Ok((n, _)) if n >= 12 && id_of(&buf[..n]) == id => return Some(buf[..n].to_vec()),
            Ok(_) => {}
            Err(_) => return None,
        }
    }
}

async fn tcp_exchange(to: SocketAddr, q: &[u8]) -> Vec<u8> {
    tcp_exchange_from(Ipv4Addr::LOCALHOST, to, q).await
}

/// A TCP exchange from a client socket bound to `from`.
async fn tcp_exchange_from(from: Ipv4Addr, to: SocketAddr, q: &[u8]) -> Vec<u8> {
    let sock = tokio::net::TcpSocket::new_v4().unwrap();
    sock.bind(SocketAddr::from((from, 0))).unwrap();
    let mut s = sock.connect(to).await.unwrap();
    let mut framed = u16::try_from(q.len()).unwrap().to_be_bytes().to_vec();
    framed.extend_from_slice(q);
    s.write_all(&framed).await.unwrap();
    let mut len = [0u8; 2];
    s.read_exact(&mut len).await.unwrap();
    let mut body = vec![0u8; usize::from(u16::from_be_bytes(len))];
    s.read_exact(&mut body).await.unwrap();
    body
}

/// Queries the upstream `server` received for `name`.
fn upstream_count(server: &TestServer, name: &str) -> usize {
    server
        .received()
        .iter()
        .filter(|r| {
            r.question
                .as_ref()
                .is_some_and(|(n, _)| n.to_ascii().eq_ignore_ascii_case(name))
        })
        .count()
}

const WAIT: Duration = Duration::from_secs(3);

/// (1) A flood of one-shot queries from 10 000 /24s through prefix tables ten times too small
/// does not push an established client out of its bucket or of its *known* status: with every
/// unknown UDP source answered TC=1, the established client keeps ≥ 99 % full answers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_from_10000_prefixes_spares_an_established_client() {
    let upstream = TestServer::start(TestZone::default()).await.unwrap();
    let s = Setup::start(&[&upstream], |c| {
        c.admission.max_prefixes = 1_000;
        c.admission.known_prefix_after_secs = 1;
        // Unknown UDP sources get TC=1 even in NORMAL: being forgotten shows as a TC.
        c.attack.normal.tc_udp_unknown = true;
        // Sweeps (every 30 ticks) run during the flood.
        c.attack.tick_ms = 20;
    })
    .await;
    let to = s.udp();
    let names: [(&str, u16); 4] = [
        ("a.test", 1),
        ("a.test", 28),
        ("www.test", 1),
        ("txt.test", 16),
    ];
    let (answered, total, flood) = tokio::task::spawn_blocking(move || {
        let legit = StdUdpSocket::bind("127.200.0.1:0").unwrap();
        // Become known: answered TC until the prefix has been seen for a second.
        let mut id = 1u16;
        let mut waited = 0;
        loop {
            let r = exchange(&legit, to, &query(id, "a.test", 1, None), WAIT).expect("answered");
            id += 1;
            if is_answer(&r, id - 1) {
                break;
            }
            assert!(truncated(&r), "an unknown source gets TC=1");
            waited += 1;
            assert!(waited < 200, "the client never became known");
            std::thread::sleep(Duration::from_millis(50));
        }
        let (mut answered, mut total, mut flood) = (0u32, 0u32, 0u32);
        let fq = query(0xF00D, "a.test", 1, None);
        for _round in 0..2 {
            for i in 0..10_000u32 {
                let ip = Ipv4Addr::new(127, 1 + (i / 256) as u8, (i % 256) as u8, 1);
                let spoofed = StdUdpSocket::bind((ip, 0)).unwrap();
                spoofed.send_to(&fq, to).unwrap();
                flood += 1;
                drop(spoofed);
                if i % 50 == 49 {
                    let (name, qtype) = names[(total as usize) % names.len()];
                    let q = query(id, name, qtype, None);
                    total += 1;
                    if exchange(&legit, to, &q, WAIT).is_some_and(|r| is_answer(&r, id)) {
                        answered += 1;
                    }
                    id = id.wrapping_add(1);
                }
            }
        }
        (answered, total, flood)
    })
    .await
    .unwrap();
    assert_eq!(flood, 20_000);
    assert_eq!(total, 400);
    assert!(
        answered * 100 >= total * 99,
        "the established client got {answered}/{total} full answers during the flood"
    );
    // The flood itself was seen and answered TC=1 (cheap: at most its own size).
    let tc = s.metric("tolldns_ingress_admission_total{decision=\"truncated\"}");
    assert!(tc >= 18_000, "{tc} TC answers to the flood");
    assert_eq!(s.edge.mode(), Mode::Normal);
    s.edge.shutdown().await;
}

/// A zone whose `refl.test` TXT answer is about 1.1 kB: what a reflector wants.
fn reflection_zone() -> TestZone {
    let mut z = TestZone::default();
    for c in b'k'..b'p' {
        z = z.with_txt("refl.test.", &char::from(c).to_string().repeat(200));
    }
    z
}

/// (2) Small queries from a victim's address drawing large answers: the victim receives at
/// most three times the bytes sent in its name, with the default settings.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reflection_attempt_is_bounded_to_3x() {
    let upstream = TestServer::start(reflection_zone()).await.unwrap();
    let s = Setup::start(&[&upstream], |_| {}).await;
    let to = s.udp();
    let (sent, received, full, tcs) = tokio::task::spawn_blocking(move || {
        // The "victim" address: queries carry it as their source, answers land on it.
        let victim = StdUdpSocket::bind("127.201.0.1:0").unwrap();
        victim
            .set_read_timeout(Some(Duration::from_millis(500)))
            .unwrap();
        let (mut sent, mut received, mut full, mut tcs) = (0u64, 0u64, 0u32, 0u32);
        let mut buf = vec![0u8; 65_535];
        let mut tally = |n: usize, m: &[u8], received: &mut u64| {
            *received += n as u64;
            if truncated(m) {
                tcs += 1;
            } else if n > 1000 {
                full += 1;
            }
        };
        for batch in 0..100u16 {
            for i in 0..20u16 {
                let q = query(batch * 20 + i, "refl.test", 16, Some(1232));
                victim.send_to(&q, to).unwrap();
                sent += q.len() as u64;
            }
            // A probe from the same address: once it is answered (or refused an answer), the
            // batch before it was handled.
            let probe = query(0xFFFF, "a.test", 1, None);
            victim.send_to(&probe, to).unwrap();
            sent += probe.len() as u64;
            while let Ok((n, _)) = victim.recv_from(&mut buf) {
                let m = buf[..n].to_vec();
                tally(n, &m, &mut received);
                if id_of(&m) == 0xFFFF {
                    break;
                }
            }
        }
        // Whatever is still in flight.
        while let Ok((n, _)) = victim.recv_from(&mut buf) {
            let m = buf[..n].to_vec();
            tally(n, &m, &mut received);
        }
        (sent, received, full, tcs)
    })
    .await
    .unwrap();
    assert!(full >= 1, "large answers are served within the bound");
    assert!(tcs >= 100, "the rest went TC=1 ({tcs})");
    assert!(
        received <= 3 * sent,
        "amplification {received} B / {sent} B = {:.2} > 3",
        received as f64 / sent as f64
    );
    let slipped = s.metric(
        "tolldns_ingress_udp_response_limited_total{limit=\"amplification\",action=\"slipped\"}",
    ) + s
        .metric("tolldns_ingress_udp_response_limited_total{limit=\"rrl\",action=\"slipped\"}");
    assert!(
        slipped >= u64::from(tcs) / 2,
        "TC replies are counted ({slipped})"
    );
    s.edge.shutdown().await;
}

/// (3) One prefix flooding far over its rate is treated as an offender on its own: the edge
/// stays in NORMAL and another prefix keeps full answers throughout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_prefix_flood_does_not_change_another_prefix_treatment() {
    let upstream = TestServer::start(TestZone::default()).await.unwrap();
    let s = Setup::start(&[&upstream], |c| {
        c.admission.rate_per_prefix = 100;
        c.admission.burst_per_prefix = 100;
        // An offender's bucket refills at 1/s: what it has after the flood is what it gets.
        c.attack.offender.rate_permille = 1;
        // Evaluate the global mode often: every tick of the flood is a chance to escalate.
        c.attack.tick_ms = 20;
    })
    .await;
    let to = s.udp();
    let (answered, total) = tokio::task::spawn_blocking(move || {
        let flood = StdUdpSocket::bind("127.50.0.1:0").unwrap();
        let other = StdUdpSocket::bind("127.60.0.1:0").unwrap();
        let q = query(0xBAD, "a.test", 1, None);
        let (mut answered, mut total) = (0u32, 0u32);
        for round in 0..60u16 {
            for _ in 0..50 {
                flood.send_to(&q, to).unwrap();
            }
            total += 1;
            let id = 0x100 + round;
            if exchange(&other, to, &query(id, "a.test", 1, None), WAIT)
                .is_some_and(|r| is_answer(&r, id))
            {
                answered += 1;
            }
        }
        (answered, total)
    })
    .await
    .unwrap();
    // Right after the flood, its clients' fallback over TCP (which proves the address) has its
    // own budget: answered.
    let r = tcp_exchange_from(
        Ipv4Addr::new(127, 50, 0, 3),
        s.tcp(),
        &query(9, "a.test", 1, None),
    )
    .await;
    assert!(is_answer(&r, 9), "the flooded prefix lost its TCP fallback");
    // The flooding /24 itself no longer gets full answers over UDP (dropped or TC=1).
    let after = tokio::task::spawn_blocking(move || {
        let same24 = StdUdpSocket::bind("127.50.0.2:0").unwrap();
        exchange(
            &same24,
            to,
            &query(0x7777, "a.test", 1, None),
            Duration::from_secs(1),
        )
    })
    .await
    .unwrap();
    assert_eq!(
        answered, total,
        "the other prefix got {answered}/{total} full answers"
    );
    assert!(
        !after.as_deref().is_some_and(|r| is_answer(r, 0x7777)),
        "the offending prefix is still answered in full"
    );
    let limited = s.metric("tolldns_ingress_rate_limited_total{level=\"prefix\"}");
    assert!(
        limited >= 1_000,
        "the flood was limited ({limited} refusals)"
    );
    assert_eq!(s.edge.mode(), Mode::Normal);
    for mode in ["SUSPICIOUS", "UNDER_ATTACK", "ISOLATED"] {
        assert_eq!(
            s.metric(&format!(
                "tolldns_ingress_attack_mode_transitions_total{{mode=\"{mode}\"}}"
            )),
            0,
            "one prefix's flood switched the edge into {mode}"
        );
    }
    s.edge.shutdown().await;
}

/// (5) The attack-mode TC check comes before the cache: an unknown UDP source gets TC=1 for a
/// name that is cached, and the cache is not even looked up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attack_check_comes_before_a_cache_hit() {
    let upstream = TestServer::start(TestZone::default()).await.unwrap();
    let s = Setup::start(&[&upstream], |c| {
        c.attack.normal.tc_udp_unknown = true;
        c.admission.known_prefix_after_secs = 3_600;
    })
    .await;
    // Over TCP (the address is proven): answered, and cached.
    let r = tcp_exchange(s.tcp(), &query(1, "a.test", 1, None)).await;
    assert!(is_answer(&r, 1));
    assert_eq!(upstream_count(&upstream, "a.test."), 1);
    let hits = "tolldns_ingress_cache_lookups_total{result=\"hit\"}";
    assert_eq!(s.metric(hits), 0);
    let to = s.udp();
    let r = tokio::task::spawn_blocking(move || {
        let sock = StdUdpSocket::bind("127.0.0.1:0").unwrap();
        exchange(&sock, to, &query(2, "a.test", 1, None), WAIT)
    })
    .await
    .unwrap()
    .expect("a TC=1 reply");
    assert!(truncated(&r), "an unknown UDP source got the cached answer");
    assert_eq!(ancount(&r), 0);
    assert_eq!(
        s.metric(hits),
        0,
        "the cache was consulted before the attack check"
    );
    // The entry is cached: TCP gets it from the cache, the upstream is not asked again.
    let r = tcp_exchange(s.tcp(), &query(3, "a.test", 1, None)).await;
    assert!(is_answer(&r, 3));
    assert_eq!(s.metric(hits), 1);
    assert_eq!(upstream_count(&upstream, "a.test."), 1);
    s.edge.shutdown().await;
}

/// (6) Quorum mode: answers the upstreams disagree on are served but not cached (counted);
/// answers they agree on are cached.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quorum_disagreement_is_answered_not_cached() {
    let one = TestServer::start(
        TestZone::empty("test.")
            .with_a("split.test.", Ipv4Addr::new(192, 0, 2, 1))
            .with_a("same.test.", Ipv4Addr::new(192, 0, 2, 7)),
    )
    .await
    .unwrap();
    let two = TestServer::start(
        TestZone::empty("test.")
            .with_a("split.test.", Ipv4Addr::new(192, 0, 2, 99))
            .with_a("same.test.", Ipv4Addr::new(192, 0, 2, 7)),
    )
    .await
    .unwrap();
    let s = Setup::start(&[&one, &two], |c| c.upstream.quorum = Some(2)).await;
    for id in [1u16, 2] {
        let r = tcp_exchange(s.tcp(), &query(id, "split.test", 1, None)).await;
        assert!(is_answer(&r, id), "a disagreement is still answered");
    }
    let asked = upstream_count(&one, "split.test.") + upstream_count(&two, "split.test.");
    assert_eq!(asked, 4, "not cached: both queries went to both upstreams");
    assert_eq!(
        s.metric("tolldns_ingress_quorum_answers_total{result=\"disagreed\"}"),
        2
    );
    for id in [3u16, 4] {
        let r = tcp_exchange(s.tcp(), &query(id, "same.test", 1, None)).await;
        assert!(is_answer(&r, id));
    }
    let asked = upstream_count(&one, "same.test.") + upstream_count(&two, "same.test.");
    assert_eq!(asked, 2, "agreed: cached after the first query");
    assert_eq!(
        s.metric("tolldns_ingress_quorum_answers_total{result=\"agreed\"}"),
        1
    );
    s.edge.shutdown().await;
}
