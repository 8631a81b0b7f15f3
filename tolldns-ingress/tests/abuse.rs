//! Abuse, read as an attacker would: floods from many spoofed prefixes, reflection, one
//! prefix's flood against its neighbours, the attack-mode check against the cache, and quorum
//! disagreement. Real UDP and TCP sockets on loopback against a real edge; "spoofed" sources
//! are client sockets bound across 127.0.0.0/8 (Linux routes all of it to `lo`).
//!
//! Every assertion is on counts (queries sent, answers received, bytes, metrics), never on
//! timing: the pacing comes from waiting for answers, not from clocks.

use std::net::{Ipv4Addr, SocketAddr, UdpSocket as StdUdpSocket};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tolldns_ingress::{Clock, EdgeConfig, Mode, SystemClock};
use tolldns_testkit::{EdgeHarness, TestServer, TestZone, framed};

/// The system clock plus an offset the test moves forward: time flows as usual (the flood's
/// pacing, sweeps and attack-mode ticks see real durations) and jumps where the test would
/// otherwise wait for it.
#[derive(Debug, Default)]
struct JumpClock {
    ahead: Mutex<Duration>,
}

impl JumpClock {
    fn jump(&self, by: Duration) {
        *self.ahead.lock().unwrap() += by;
    }

    fn ahead(&self) -> Duration {
        *self.ahead.lock().unwrap()
    }
}

impl Clock for JumpClock {
    fn now(&self) -> Instant {
        SystemClock.now() + self.ahead()
    }

    fn unix_ms(&self) -> u64 {
        SystemClock.unix_ms() + u64::try_from(self.ahead().as_millis()).unwrap()
    }
}

/// An edge with UDP and TCP listeners in front of test upstreams answering `zones`; `tweak`
/// changes the configuration first.
async fn start(
    zones: impl IntoIterator<Item = TestZone>,
    tweak: impl FnOnce(&mut EdgeConfig),
) -> EdgeHarness {
    start_on(Arc::new(SystemClock), zones, tweak).await
}

/// [`start`] with the edge reading `clock`.
async fn start_on(
    clock: Arc<dyn Clock>,
    zones: impl IntoIterator<Item = TestZone>,
    tweak: impl FnOnce(&mut EdgeConfig),
) -> EdgeHarness {
    let mut builder = EdgeHarness::builder()
        .clock(clock)
        .udp()
        .tcp()
        // One socket: datagrams are served in arrival order, so an answer to one client proves
        // every datagram sent before it was handled.
        .configure(|c| c.listen.udp_workers = 1);
    for zone in zones {
        builder = builder.upstream(zone);
    }
    builder.configure(tweak).start().await.expect("edge starts")
}

/// A wire query for `name`/`qtype` with `id`, with an OPT record advertising `edns` bytes.
fn query(id: u16, name: &str, qtype: u16, edns: Option<u16>) -> Vec<u8> {
    let mut q = tolldns_testkit::query(id, name, qtype);
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
    s.write_all(&framed(q)).await.unwrap();
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
    let clock = Arc::new(JumpClock::default());
    let edge_clock: Arc<dyn Clock> = Arc::clone(&clock) as Arc<dyn Clock>;
    let s = start_on(edge_clock, [TestZone::default()], |c| {
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
        // Become known: answered TC until the prefix has been seen for a second. The edge's
        // clock jumps a quarter second between queries (the prefix is never idle long enough
        // for a sweep to forget it), so the fifth query is answered in full at the latest.
        let mut id = 1u16;
        loop {
            let r = exchange(&legit, to, &query(id, "a.test", 1, None), WAIT).expect("answered");
            id += 1;
            if is_answer(&r, id - 1) {
                break;
            }
            assert!(truncated(&r), "an unknown source gets TC=1");
            assert!(
                id <= 5,
                "the client is still unknown a second after it was first seen"
            );
            clock.jump(Duration::from_millis(250));
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
    let s = start([reflection_zone()], |_| {}).await;
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
    let s = start([TestZone::default()], |c| {
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
    let s = start([TestZone::default()], |c| {
        c.attack.normal.tc_udp_unknown = true;
        c.admission.known_prefix_after_secs = 3_600;
    })
    .await;
    // Over TCP (the address is proven): answered, and cached.
    let r = tcp_exchange(s.tcp(), &query(1, "a.test", 1, None)).await;
    assert!(is_answer(&r, 1));
    assert_eq!(upstream_count(s.upstream(), "a.test."), 1);
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
    assert_eq!(upstream_count(s.upstream(), "a.test."), 1);
    s.edge.shutdown().await;
}

/// (6) Quorum mode: answers the upstreams disagree on are served but not cached (counted);
/// answers they agree on are cached.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quorum_disagreement_is_answered_not_cached() {
    let zone = |split: u8| {
        TestZone::empty("test.")
            .with_a("split.test.", Ipv4Addr::new(192, 0, 2, split))
            .with_a("same.test.", Ipv4Addr::new(192, 0, 2, 7))
    };
    let s = start([zone(1), zone(99)], |c| c.upstream.quorum = Some(2)).await;
    let [one, two] = s.upstreams() else {
        panic!("two upstreams");
    };
    for id in [1u16, 2] {
        let r = tcp_exchange(s.tcp(), &query(id, "split.test", 1, None)).await;
        assert!(is_answer(&r, id), "a disagreement is still answered");
    }
    let asked = upstream_count(one, "split.test.") + upstream_count(two, "split.test.");
    assert_eq!(asked, 4, "not cached: both queries went to both upstreams");
    assert_eq!(
        s.metric("tolldns_ingress_quorum_answers_total{result=\"disagreed\"}"),
        2
    );
    for id in [3u16, 4] {
        let r = tcp_exchange(s.tcp(), &query(id, "same.test", 1, None)).await;
        assert!(is_answer(&r, id));
    }
    let asked = upstream_count(one, "same.test.") + upstream_count(two, "same.test.");
    assert_eq!(asked, 2, "agreed: cached after the first query");
    assert_eq!(
        s.metric("tolldns_ingress_quorum_answers_total{result=\"agreed\"}"),
        1
    );
    s.edge.shutdown().await;
}

/// A query like [`query`] with EDNS (1,232 bytes) carrying a COOKIE option with `cookie`
/// (client cookie, optionally followed by a server cookie).
fn query_with_cookie(id: u16, name: &str, qtype: u16, cookie: &[u8]) -> Vec<u8> {
    let mut q = tolldns_testkit::query(id, name, qtype);
    q[11] = 1;
    q.extend_from_slice(&[0, 0, 41, 0x04, 0xD0, 0, 0, 0, 0]);
    let rdlen = u16::try_from(4 + cookie.len()).unwrap();
    q.extend_from_slice(&rdlen.to_be_bytes());
    q.extend_from_slice(&[0, 10]);
    q.extend_from_slice(&u16::try_from(cookie.len()).unwrap().to_be_bytes());
    q.extend_from_slice(cookie);
    q
}

/// The COOKIE option data (client + server cookie) of a response for `client`, if any.
fn returned_cookie(m: &[u8], client: &[u8; 8]) -> Option<Vec<u8>> {
    m.windows(4 + 24)
        .find(|w| w[..4] == [0, 10, 0, 24] && w[4..12] == client[..])
        .map(|w| w[4..].to_vec())
}

/// (7) DNS cookies: a client that returns the server cookie it was given proves its address and
/// gets full UDP answers past the amplification bound; the same cookie replayed from another
/// address (a spoofer who saw it), or altered, proves nothing and is limited as before.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_returned_server_cookie_lifts_the_udp_limits_and_a_replayed_one_does_not() {
    let s = start([reflection_zone()], |_| {}).await;
    let to = s.udp();
    let (first_tc, verified_full, verified_bytes, verified_sent, replayed, tampered) =
        tokio::task::spawn_blocking(move || {
            let client = StdUdpSocket::bind("127.202.0.1:0").unwrap();
            let mine = *b"cookie01";
            // First contact: a client cookie only. The large answer does not fit the credit of
            // one small query: TC=1, but it carries the server cookie.
            let first = exchange(
                &client,
                to,
                &query_with_cookie(1, "refl.test", 16, &mine),
                WAIT,
            )
            .expect("first answer");
            let pair = returned_cookie(&first, &mine).expect("a server cookie is returned");
            // Verified: 50 full answers of ~1.1 kB each for ~70-byte queries.
            let (mut full, mut bytes, mut sent) = (0u32, 0u64, 0u64);
            for id in 2..52u16 {
                let q = query_with_cookie(id, "refl.test", 16, &pair);
                sent += q.len() as u64;
                let m = exchange(&client, to, &q, WAIT).expect("answer");
                bytes += m.len() as u64;
                if is_answer(&m, id) && m.len() > 1000 {
                    full += 1;
                }
                assert!(
                    returned_cookie(&m, &mine).is_some(),
                    "every answer renews the cookie"
                );
            }
            // The same pair from another address (another /24), then an altered server cookie
            // from a third: neither proves its address, so both are held to 3x.
            let limited = |from: &str, cookie: &[u8], first_id: u16| {
                let sock = StdUdpSocket::bind(from).unwrap();
                let (mut sent, mut got, mut tcs) = (0u64, 0u64, 0u32);
                for id in first_id..first_id + 10 {
                    let q = query_with_cookie(id, "refl.test", 16, cookie);
                    sent += q.len() as u64;
                    let m = exchange(&sock, to, &q, WAIT).expect("answer");
                    got += m.len() as u64;
                    tcs += u32::from(truncated(&m));
                }
                (sent, got, tcs)
            };
            let replayed = limited("127.203.0.1:0", &pair, 100);
            let mut bad = pair;
            *bad.last_mut().unwrap() ^= 1;
            let tampered = limited("127.204.0.1:0", &bad, 200);
            (truncated(&first), full, bytes, sent, replayed, tampered)
        })
        .await
        .unwrap();
    assert!(
        first_tc,
        "the first large answer is TC=1 (amplification bound)"
    );
    assert_eq!(
        verified_full, 50,
        "a verified client gets every full answer"
    );
    assert!(
        verified_bytes > 3 * verified_sent,
        "verified answers are not held to 3x ({verified_bytes} B / {verified_sent} B)"
    );
    for (what, (sent, got, tcs)) in [("replayed", replayed), ("altered", tampered)] {
        assert!(tcs >= 5, "{what} cookie: answers go TC=1 ({tcs} of 10)");
        assert!(
            got <= 3 * sent,
            "{what} cookie: {got} B for {sent} B is over 3x"
        );
    }
    let valid = s.metric("tolldns_ingress_udp_cookies_total{result=\"valid\"}");
    let invalid = s.metric("tolldns_ingress_udp_cookies_total{result=\"invalid\"}");
    let client_only = s.metric("tolldns_ingress_udp_cookies_total{result=\"client_only\"}");
    assert_eq!((client_only, valid, invalid), (1, 50, 20));
    s.edge.shutdown().await;
}
