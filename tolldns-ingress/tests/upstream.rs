//! The upstream pool against in-process test servers on 127.0.0.1 (real sockets, loopback only).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::{Name, RData, RecordType};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rand::SeedableRng;
use rand::rngs::StdRng;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use tokio::task::{JoinHandle, JoinSet};
use tokio_rustls::TlsAcceptor;
use tolldns_cache::{Cache, CacheConfig};
use tolldns_ingress::clock::{Clock, ManualClock};
use tolldns_ingress::upstream::{
    AttemptError, Confidence, Mismatch, Question, UpstreamConfig, UpstreamError, UpstreamPool,
    UpstreamSpec,
};
use tolldns_ingress::{
    Credential, Engine, EngineConfig, MAX_MESSAGE, Metrics, Reply, Request, Step,
};
use tolldns_testkit::{
    Mode, TEST_SERVER_NAME, TEST_TTL, TestCert, TestServer, TestZone, Transport,
};

/// Upper bound for any single test step.
const LIMIT: Duration = Duration::from_secs(10);

async fn bounded<F: Future>(f: F) -> F::Output {
    tokio::time::timeout(LIMIT, f)
        .await
        .expect("test step exceeded its time limit")
}

fn question(name: &str, qtype: RecordType) -> Question {
    Question::new(Name::from_ascii(name).unwrap(), qtype)
}

fn config(upstreams: Vec<UpstreamSpec>) -> UpstreamConfig {
    UpstreamConfig {
        upstreams,
        timeout: Duration::from_millis(300),
        exploration: 0.0,
        ..UpstreamConfig::default()
    }
}

fn addresses(wire: &[u8]) -> BTreeSet<Ipv4Addr> {
    Message::from_vec(wire)
        .unwrap()
        .answers()
        .iter()
        .filter_map(|r| match r.data() {
            RData::A(a) => Some(a.0),
            _ => None,
        })
        .collect()
}

fn ip(last: u8) -> Ipv4Addr {
    Ipv4Addr::new(192, 0, 2, last)
}

#[tokio::test]
async fn resolves_over_every_transport() {
    let cert = TestCert::generate().unwrap();
    let server = TestServer::start_with_tls(TestZone::default(), &cert)
        .await
        .unwrap();
    let cases = [
        (server.udp_upstream(), Transport::Udp),
        (server.tcp_upstream(), Transport::Tcp),
        (server.tls_upstream().unwrap(), Transport::Tls),
        (server.https_upstream().unwrap(), Transport::Https),
    ];
    for (spec, transport) in cases {
        let mut cfg = config(vec![spec.clone()]);
        cfg.timeout = Duration::from_secs(2);
        cfg.add_ca_pem(cert.ca_pem.as_bytes()).unwrap();
        let pool = UpstreamPool::new(cfg).unwrap();
        let before = server.queries_over(transport);

        let mut q = question("WWW.Test", RecordType::A);
        q.dnssec_ok = true;
        q.checking_disabled = true;
        let answer = bounded(pool.resolve(&q))
            .await
            .unwrap_or_else(|e| panic!("{spec}: {e}"));
        assert_eq!(
            addresses(&answer.message),
            BTreeSet::from([ip(1)]),
            "{spec}"
        );
        assert_eq!(answer.upstream, 0);
        assert_eq!(answer.ttl_cap, None);
        assert_eq!(server.queries_over(transport), before + 1, "{spec}");
        let seen = server.received().pop().unwrap();
        assert!(seen.recursion_desired && seen.dnssec_ok && seen.checking_disabled && seen.edns);
        if transport == Transport::Https {
            assert_eq!(seen.id, 0, "DoH queries use ID 0");
        }

        let nx = bounded(pool.resolve(&question("nope.test.", RecordType::A)))
            .await
            .unwrap();
        let nx = Message::from_vec(&nx.message).unwrap();
        assert_eq!(nx.response_code(), ResponseCode::NXDomain);
        assert_eq!(
            nx.name_servers().first().unwrap().record_type(),
            RecordType::SOA
        );

        let nodata = bounded(pool.resolve(&question("a.test.", RecordType::MX)))
            .await
            .unwrap();
        let nodata = Message::from_vec(&nodata.message).unwrap();
        assert_eq!(nodata.response_code(), ResponseCode::NoError);
        assert!(nodata.answers().is_empty());

        let stats = pool.stats();
        assert_eq!(stats[0].queries, 3);
        assert_eq!(stats[0].failures, 0);
        assert!(stats[0].srtt.is_some());
    }
}

#[tokio::test]
async fn truncated_udp_answer_is_retried_over_tcp() {
    let server = TestServer::start(TestZone::default()).await.unwrap();
    let pool = UpstreamPool::new(config(vec![server.udp_upstream()])).unwrap();
    let answer = bounded(pool.resolve(&question("big.test.", RecordType::TXT)))
        .await
        .unwrap();
    let msg = Message::from_vec(&answer.message).unwrap();
    assert!(!msg.truncated());
    assert_eq!(msg.answers().len(), 1);
    assert!(answer.message.len() > 1232);
    assert_eq!(server.queries_over(Transport::Udp), 1);
    assert_eq!(server.queries_over(Transport::Tcp), 1);
    assert_eq!(pool.stats()[0].tcp_retries, 1);
}

#[tokio::test]
async fn fails_over_on_drop_servfail_and_refused() {
    for mode in [Mode::Drop, Mode::ServFail, Mode::Refused] {
        let bad = TestServer::start(TestZone::default()).await.unwrap();
        let good = TestServer::start(TestZone::default()).await.unwrap();
        bad.set_mode(mode);
        let pool =
            UpstreamPool::new(config(vec![bad.udp_upstream(), good.udp_upstream()])).unwrap();
        let answer = bounded(pool.resolve(&question("a.test.", RecordType::A)))
            .await
            .unwrap();
        assert_eq!(answer.upstream, 1, "{mode:?}");
        assert_eq!(bad.queries(), 1);
        assert_eq!(good.queries(), 1);
        assert_eq!(pool.stats()[0].failures, 1);
        // The failed upstream is now slower in the SRTT order (timeout) or equal; either way the
        // good one keeps answering.
        let again = bounded(pool.resolve(&question("a.test.", RecordType::AAAA)))
            .await
            .unwrap();
        assert_eq!(again.upstream, 1, "{mode:?}");
    }

    let dead = TestServer::start(TestZone::default()).await.unwrap();
    dead.set_mode(Mode::Drop);
    let pool = UpstreamPool::new(config(vec![dead.udp_upstream(), dead.tcp_upstream()])).unwrap();
    let err = bounded(pool.resolve(&question("a.test.", RecordType::A)))
        .await
        .unwrap_err();
    assert!(matches!(err, UpstreamError::Timeout), "{err}");

    dead.set_mode(Mode::ServFail);
    let err = bounded(pool.resolve(&question("a.test.", RecordType::A)))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            UpstreamError::AllFailed {
                attempts: 2,
                last: AttemptError::Rcode(2),
                ..
            }
        ),
        "{err}"
    );
}

/// A pool on a manual clock with a seeded exploration RNG.
fn manual_pool(cfg: UpstreamConfig, seed: u64) -> (UpstreamPool, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::starting_now());
    let pool = UpstreamPool::with_clock_and_rng(
        cfg,
        Arc::clone(&clock) as Arc<dyn Clock>,
        StdRng::seed_from_u64(seed),
    )
    .unwrap();
    (pool, clock)
}

#[tokio::test]
async fn health_checks_mark_down_and_up() {
    let server = TestServer::start(TestZone::default()).await.unwrap();
    let cfg = UpstreamConfig {
        health_interval: Duration::from_millis(50),
        health_max_backoff: Duration::from_millis(200),
        unhealthy_after: 2,
        ..config(vec![server.udp_upstream()])
    };
    let (pool, clock) = manual_pool(cfg, 1);
    let probe = || bounded(pool.probe_due());
    let status = || (pool.stats()[0].healthy, pool.stats()[0].probes);

    // A healthy upstream is probed on every round, whatever the time.
    assert_eq!(probe().await, 1);
    assert_eq!(probe().await, 1);
    assert_eq!(status(), (true, 2));

    // Two failed probes in a row take it down.
    server.set_mode(Mode::Drop);
    assert_eq!(probe().await, 1);
    assert_eq!(status(), (true, 3));
    assert_eq!(probe().await, 1);
    assert_eq!(status(), (false, 4));

    // Down: probed again after the interval, then after twice the interval, then at most
    // every `health_max_backoff`; never before.
    for wait in [50, 100, 200, 200] {
        let wait = Duration::from_millis(wait);
        clock.advance(wait - Duration::from_millis(1));
        assert_eq!(
            probe().await,
            0,
            "probed before its backoff of {wait:?} ran out"
        );
        clock.advance(Duration::from_millis(1));
        assert_eq!(probe().await, 1, "not probed after its backoff of {wait:?}");
        assert!(!pool.stats()[0].healthy);
    }
    assert_eq!(status(), (false, 8));

    // One successful probe brings it back, and resets the backoff.
    server.set_mode(Mode::Normal);
    clock.advance(Duration::from_millis(200));
    assert_eq!(probe().await, 1);
    assert_eq!(status(), (true, 9));
    assert_eq!(probe().await, 1);
    let stats = &pool.stats()[0];
    assert_eq!(stats.probes, 10);
    assert_eq!(stats.queries, 0, "probes are not counted as client queries");
    assert_eq!(server.queries(), 10);
}

#[tokio::test]
async fn health_check_task_probes_on_its_own() {
    let server = TestServer::start(TestZone::default()).await.unwrap();
    let cfg = UpstreamConfig {
        health_interval: Duration::from_millis(50),
        ..config(vec![server.udp_upstream()])
    };
    let pool = UpstreamPool::new(cfg).unwrap();
    let task = pool.spawn_health_checks();
    // The first round starts at once; its probe is answered and measured.
    bounded(async {
        while pool.stats()[0].srtt.is_none() {
            tokio::task::yield_now().await;
        }
    })
    .await;
    let stats = &pool.stats()[0];
    assert!(stats.healthy && stats.probes >= 1 && stats.queries == 0);
    assert!(server.queries() >= 1);
    task.abort();
}

// ----- The engine and the pool on one manual clock: lifetimes without waiting ----------------

/// Asks `engine` as a stream listener would (handle, resolve a forward, complete), at the
/// clock's current time; returns the reply and the response bytes.
async fn ask_engine(
    engine: &Engine,
    pool: &UpstreamPool,
    clock: &ManualClock,
    query: &[u8],
) -> (Reply, Vec<u8>) {
    let req = Request {
        transport: tolldns_receipts::Transport::Tcp,
        source: IpAddr::V4(Ipv4Addr::LOCALHOST),
        query,
        credential: Credential::None,
        received: clock.now(),
    };
    let mut out = vec![0u8; MAX_MESSAGE];
    let reply = match engine.handle(&req, clock.now(), &mut out) {
        Step::Respond(reply) => reply,
        Step::Forward(fwd) => bounded(engine.resolve(pool, &req, fwd, &mut out)).await,
        Step::Drop => panic!("query dropped"),
    };
    let response = out[..reply.len].to_vec();
    engine.complete(&req, &reply, &response);
    (reply, response)
}

fn first_ttl(response: &[u8]) -> u32 {
    Message::from_vec(response).unwrap().answers()[0].ttl()
}

#[tokio::test]
async fn cached_answers_age_refresh_and_go_stale_on_the_engine_clock() {
    let server = TestServer::start(TestZone::default()).await.unwrap();
    let clock = Arc::new(ManualClock::starting_now());
    let shared: Arc<dyn Clock> = Arc::clone(&clock) as Arc<dyn Clock>;
    let pool = UpstreamPool::with_clock_and_rng(
        config(vec![server.udp_upstream()]),
        Arc::clone(&shared),
        StdRng::seed_from_u64(3),
    )
    .unwrap();
    let mut registry = prometheus_client::registry::Registry::default();
    // Defaults: prefetch due from the 5th hit with at most 10 % of the TTL left; one hour of
    // serve-stale at 30 s.
    let engine = Engine::new(
        EngineConfig::default(),
        Arc::new(Cache::new(CacheConfig::default())),
        Metrics::register(&mut registry),
        None,
        clock.now(),
    )
    .with_clock(shared);
    let mut buf = [0u8; 512];
    let n = tolldns_ingress::wire::build_query(&mut buf, 0x1234, "a.test", 1).unwrap();
    let query = &buf[..n];
    let secs = Duration::from_secs;

    // A miss goes upstream and is answered with the zone's TTL.
    let (r, bytes) = ask_engine(&engine, &pool, &clock, query).await;
    assert!(!r.cache_hit);
    assert_eq!((r.min_ttl, first_ttl(&bytes)), (Some(TEST_TTL), TEST_TTL));
    assert_eq!(server.queries(), 1);

    // Hits count the TTL down by the clock, without asking the upstream.
    clock.advance(secs(100));
    let (r, bytes) = ask_engine(&engine, &pool, &clock, query).await;
    assert!(r.cache_hit && !r.prefetch);
    assert_eq!((r.min_ttl, first_ttl(&bytes)), (Some(200), 200));

    // 25 s left (under 10 %): the fifth hit asks for a refresh, once.
    clock.advance(secs(175));
    for hit in 2..=5 {
        let (r, _) = ask_engine(&engine, &pool, &clock, query).await;
        assert!(r.cache_hit);
        assert_eq!(r.min_ttl, Some(25));
        assert_eq!(r.prefetch, hit == 5, "hit {hit}");
    }
    assert_eq!(server.queries(), 1);
    let slot = engine.prefetch_slot().unwrap();
    assert!(bounded(engine.prefetch(&pool, query, slot)).await);
    assert_eq!(server.queries(), 2);

    // Past the first answer's expiry the refreshed one is served, aged from the refresh.
    clock.advance(secs(50));
    let (r, bytes) = ask_engine(&engine, &pool, &clock, query).await;
    assert!(r.cache_hit);
    assert_eq!((r.min_ttl, first_ttl(&bytes)), (Some(250), 250));
    assert_eq!(server.queries(), 2);

    // Expired, and the upstream is gone: served stale with the stale TTL.
    server.set_mode(Mode::Drop);
    clock.advance(secs(300));
    let (r, bytes) = ask_engine(&engine, &pool, &clock, query).await;
    assert!(r.stale && r.cache_hit);
    assert_eq!((r.min_ttl, first_ttl(&bytes)), (Some(30), 30));
    assert_eq!(server.queries(), 3);

    // Past the stale window: SERVFAIL.
    clock.advance(secs(3_600));
    let (r, bytes) = ask_engine(&engine, &pool, &clock, query).await;
    assert!(!r.stale && !r.cache_hit);
    assert_eq!(r.rcode, tolldns_receipts::RcodeClass::UpstreamFail);
    assert_eq!(
        Message::from_vec(&bytes).unwrap().response_code(),
        ResponseCode::ServFail
    );
    let stats = engine.cache().stats();
    assert_eq!((stats.inserts, stats.inserts_refused), (2, 0));
}

#[tokio::test]
async fn down_upstreams_are_tried_last() {
    let slow = TestServer::start(TestZone::default()).await.unwrap();
    let fast = TestServer::start(TestZone::default()).await.unwrap();
    let cfg = UpstreamConfig {
        unhealthy_after: 1,
        ..config(vec![slow.udp_upstream(), fast.udp_upstream()])
    };
    let pool = UpstreamPool::new(cfg).unwrap();
    slow.set_mode(Mode::Drop);
    let first = bounded(pool.resolve(&question("a.test.", RecordType::A)))
        .await
        .unwrap();
    assert_eq!(first.upstream, 1);
    assert!(!pool.stats()[0].healthy);
    slow.set_mode(Mode::Normal);
    for _ in 0..5 {
        let answer = bounded(pool.resolve(&question("a.test.", RecordType::A)))
            .await
            .unwrap();
        assert_eq!(answer.upstream, 1);
    }
    assert_eq!(
        slow.queries(),
        1,
        "a down upstream gets no traffic while another is up"
    );
}

#[tokio::test]
async fn mismatching_responses_are_rejected() {
    for (mode, mismatch) in [
        (Mode::WrongId, Mismatch::Id),
        (Mode::WrongQuestion, Mismatch::Question),
    ] {
        let liar = TestServer::start(TestZone::default()).await.unwrap();
        liar.set_mode(mode);

        // UDP: the forged datagram is dropped and counted; the query times out.
        let pool = UpstreamPool::new(config(vec![liar.udp_upstream()])).unwrap();
        let err = bounded(pool.resolve(&question("a.test.", RecordType::A)))
            .await
            .unwrap_err();
        assert!(matches!(err, UpstreamError::Timeout), "{mode:?}: {err}");
        assert_eq!(pool.stats()[0].dropped_responses, 1, "{mode:?}");

        // TCP: an answer with the query's ID but another question fails the attempt at once; an
        // answer whose ID is not outstanding on the connection is dropped and counted, and the
        // query times out.
        let pool = UpstreamPool::new(config(vec![liar.tcp_upstream()])).unwrap();
        let err = bounded(pool.resolve(&question("a.test.", RecordType::A)))
            .await
            .unwrap_err();
        match mismatch {
            Mismatch::Id => {
                assert!(matches!(err, UpstreamError::Timeout), "{mode:?}: {err}");
                assert_eq!(pool.stats()[0].dropped_responses, 1, "{mode:?}");
            }
            _ => assert!(
                matches!(&err, UpstreamError::AllFailed { last: AttemptError::Mismatch(m), .. } if *m == mismatch),
                "{mode:?}: {err}"
            ),
        }

        // With an honest upstream behind it, the client still gets the right answer.
        let honest = TestServer::start(TestZone::default()).await.unwrap();
        let pool =
            UpstreamPool::new(config(vec![liar.tcp_upstream(), honest.udp_upstream()])).unwrap();
        let answer = bounded(pool.resolve(&question("a.test.", RecordType::A)))
            .await
            .unwrap();
        assert_eq!(answer.upstream, 1);
        assert_eq!(addresses(&answer.message), BTreeSet::from([ip(1)]));
    }
}

fn zone_with(ips: &[u8]) -> TestZone {
    ips.iter().fold(TestZone::default(), |z, &last| {
        z.with_a("q.test.", ip(last))
    })
}

#[tokio::test]
async fn quorum_grades_agreement() {
    let servers = [
        TestServer::start(TestZone::default()).await.unwrap(),
        TestServer::start(TestZone::default()).await.unwrap(),
        TestServer::start(TestZone::default()).await.unwrap(),
    ];
    let cfg = UpstreamConfig {
        quorum: Some(2),
        ..config(servers.iter().map(TestServer::udp_upstream).collect())
    };
    let pool = UpstreamPool::new(cfg).unwrap();
    let q = question("q.test.", RecordType::A);
    let set = |zones: [&[u8]; 3]| {
        for (server, ips) in servers.iter().zip(zones) {
            server.set_zone(zone_with(ips));
        }
    };

    set([&[10, 11], &[11, 10], &[99]]);
    let high = bounded(pool.resolve(&q)).await.unwrap();
    assert_eq!(high.confidence, Confidence::High);
    assert_eq!(high.ttl_cap, Some(300));
    assert_eq!(addresses(&high.message), BTreeSet::from([ip(10), ip(11)]));
    assert!(high.upstream < 2);

    set([&[10, 11], &[11, 12], &[99]]);
    let medium = bounded(pool.resolve(&q)).await.unwrap();
    assert_eq!(medium.confidence, Confidence::Medium);
    assert_eq!(medium.ttl_cap, Some(120));
    assert!(medium.upstream < 2);

    set([&[10], &[11], &[12]]);
    let low = bounded(pool.resolve(&q)).await.unwrap();
    assert_eq!(low.confidence, Confidence::Low);
    assert_eq!(low.ttl_cap, Some(30));

    let nx = bounded(pool.resolve(&question("nope.test.", RecordType::A)))
        .await
        .unwrap();
    assert_eq!(nx.confidence, Confidence::Medium);
    assert_eq!(nx.ttl_cap, Some(30));

    // One upstream failing does not prevent High when the other two agree.
    set([&[10], &[10], &[10]]);
    servers[0].set_mode(Mode::ServFail);
    let high = bounded(pool.resolve(&q)).await.unwrap();
    assert_eq!(high.confidence, Confidence::High);
    assert_ne!(high.upstream, 0);

    for s in &servers {
        s.set_mode(Mode::Drop);
    }
    let err = bounded(pool.resolve(&q)).await.unwrap_err();
    assert!(matches!(err, UpstreamError::NoQuorum { asked: 3 }), "{err}");
}

#[tokio::test]
async fn sends_only_to_the_allow_list_with_random_ids_and_ports() {
    let a = TestServer::start(TestZone::default()).await.unwrap();
    let b = TestServer::start(TestZone::default()).await.unwrap();
    let outsider = TestServer::start(TestZone::default()).await.unwrap();
    let cfg = UpstreamConfig {
        exploration: 0.5,
        ..config(vec![a.udp_upstream(), b.tcp_upstream()])
    };
    // Health probes go out between the queries, as the health task would send them.
    let (pool, clock) = manual_pool(cfg, 7);
    // Names that mention the outsider's address must not make it a destination.
    let lure = format!("{}.in-addr.test.", outsider.udp_addr.port());
    for name in [
        "a.test.",
        "www.test.",
        "nope.test.",
        "example.com.",
        lure.as_str(),
    ] {
        for _ in 0..4 {
            let _ = bounded(pool.resolve(&question(name, RecordType::A))).await;
        }
        clock.advance(Duration::from_secs(1));
        bounded(pool.probe_due()).await;
    }
    a.set_mode(Mode::Drop);
    for _ in 0..4 {
        let _ = bounded(pool.resolve(&question("a.test.", RecordType::A))).await;
        clock.advance(Duration::from_secs(1));
        bounded(pool.probe_due()).await;
    }
    // Every exchange has finished (answered or timed out): each query sent was received.
    assert_eq!(outsider.queries(), 0);
    let stats = pool.stats();
    let sent: u64 = stats.iter().map(|s| s.queries + s.probes).sum();
    assert!(stats.iter().all(|s| s.probes > 0));
    assert_eq!(a.queries() + b.queries(), sent);
    assert!(a.queries() > 0 && b.queries() > 0);

    let udp: Vec<_> = a
        .received()
        .into_iter()
        .filter(|r| r.transport == Transport::Udp)
        .collect();
    assert!(udp.iter().all(|r| r.peer.ip().is_loopback()));
    let ports: BTreeSet<u16> = udp.iter().map(|r| r.peer.port()).collect();
    let ids: BTreeSet<u16> = udp.iter().map(|r| r.id).collect();
    assert!(udp.len() >= 4);
    // Queries are spread over the set's sockets (16), each bound to its own random port.
    assert!(
        ports.len() >= udp.len().min(16) * 3 / 4,
        "source ports should vary: {ports:?}"
    );
    assert!(ids.len() > udp.len() / 2, "IDs should vary: {ids:?}");
}

// ----- Connection reuse, against stream and DoH upstreams written here that count connections ---

/// What a [`StreamUpstream`] does with the queries of a connection.
#[derive(Debug, Clone, Copy, Default)]
struct Script {
    /// Collect this many queries, then answer them in reverse order.
    reverse_batch: usize,
    /// Answer each query this long after reading it (answers overlap).
    delay: Duration,
    /// On the first connection only: answer this many queries, read one more and close the
    /// connection without answering it.
    close_first_after: Option<usize>,
    /// Read one query on every connection and close it without answering.
    close_always: bool,
    /// Before each answer, send a forged one: another ID, another address.
    spoof: bool,
}

/// The address the honest answer to `q<N>.test.` carries: 192.0.2.N (N < 250), else 192.0.2.1.
fn expected_ip(name: &Name) -> Ipv4Addr {
    let label = name.iter().next().unwrap_or_default();
    let n = std::str::from_utf8(label)
        .ok()
        .and_then(|l| l.strip_prefix('q'))
        .and_then(|n| n.parse::<u8>().ok())
        .filter(|n| *n < 250)
        .unwrap_or(1);
    ip(n)
}

const FORGED: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 66);

/// The answer to a query (`forged`: wrong ID and address).
fn reply(query: &[u8], forged: bool) -> Vec<u8> {
    use hickory_proto::op::{MessageType, OpCode};
    use hickory_proto::rr::Record;
    use hickory_proto::rr::rdata::A;
    let q = Message::from_vec(query).unwrap();
    let name = q.queries()[0].name().clone();
    let mut r = Message::new();
    r.set_id(if forged { q.id() ^ 0x5a5a } else { q.id() })
        .set_message_type(MessageType::Response)
        .set_op_code(OpCode::Query)
        .set_recursion_desired(true)
        .set_recursion_available(true);
    r.add_queries(q.queries().iter().cloned());
    let addr = if forged { FORGED } else { expected_ip(&name) };
    r.add_answer(Record::from_rdata(name, 60, RData::A(A(addr))));
    r.to_vec().unwrap()
}

fn framed(msg: &[u8]) -> Vec<u8> {
    let mut out = u16::try_from(msg.len()).unwrap().to_be_bytes().to_vec();
    out.extend_from_slice(msg);
    out
}

async fn read_frame<R: AsyncRead + Unpin>(rd: &mut R) -> Option<Vec<u8>> {
    let mut len = [0u8; 2];
    rd.read_exact(&mut len).await.ok()?;
    let mut msg = vec![0u8; usize::from(u16::from_be_bytes(len))];
    rd.read_exact(&mut msg).await.ok()?;
    Some(msg)
}

#[derive(Debug, Default)]
struct Counts {
    accepted: AtomicUsize,
    queries: AtomicUsize,
    max_outstanding: AtomicUsize,
    ids: std::sync::Mutex<Vec<u16>>,
}

/// A DNS-over-TCP (or TLS) upstream on 127.0.0.1 that pipelines: it reads queries while earlier
/// ones wait for their answers, and counts accepted connections.
struct StreamUpstream {
    addr: SocketAddr,
    counts: Arc<Counts>,
    closed: watch::Receiver<usize>,
    task: JoinHandle<()>,
}

impl Drop for StreamUpstream {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl StreamUpstream {
    async fn start(script: Script, tls: Option<TlsAcceptor>) -> Self {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let counts = Arc::new(Counts::default());
        let (closed_tx, closed) = watch::channel(0usize);
        let closed_tx = Arc::new(closed_tx);
        let c = Arc::clone(&counts);
        let task = tokio::spawn(async move {
            let mut conns = JoinSet::new();
            loop {
                let (tcp, _) = listener.accept().await.unwrap();
                let first = c.accepted.fetch_add(1, Ordering::SeqCst) == 0;
                let (c, closed_tx, tls) = (Arc::clone(&c), Arc::clone(&closed_tx), tls.clone());
                conns.spawn(async move {
                    match tls {
                        None => serve_conn(tcp, first, script, &c).await,
                        Some(acceptor) => {
                            let stream = acceptor.accept(tcp).await.unwrap();
                            serve_conn(stream, first, script, &c).await;
                        }
                    }
                    closed_tx.send_modify(|n| *n += 1);
                });
            }
        });
        Self {
            addr,
            counts,
            closed,
            task,
        }
    }

    fn accepted(&self) -> usize {
        self.counts.accepted.load(Ordering::SeqCst)
    }
}

async fn serve_conn<S>(stream: S, first: bool, script: Script, counts: &Counts)
where
    S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    let (mut rd, mut wr) = tokio::io::split(stream);
    let (tx, mut rx) = mpsc::unbounded_channel::<Vec<u8>>();
    let writer = tokio::spawn(async move {
        while let Some(m) = rx.recv().await {
            if wr.write_all(&m).await.is_err() {
                break;
            }
        }
    });
    let outstanding = Arc::new(AtomicUsize::new(0));
    let answer = {
        let (tx, outstanding) = (tx.clone(), Arc::clone(&outstanding));
        move |query: Vec<u8>| {
            outstanding.fetch_sub(1, Ordering::SeqCst);
            let mut out = Vec::new();
            if script.spoof {
                out.extend(framed(&reply(&query, true)));
            }
            out.extend(framed(&reply(&query, false)));
            let _ = tx.send(out);
        }
    };
    let mut read = 0;
    let mut batch = Vec::new();
    while let Some(query) = read_frame(&mut rd).await {
        counts.queries.fetch_add(1, Ordering::SeqCst);
        counts
            .ids
            .lock()
            .unwrap()
            .push(u16::from_be_bytes([query[0], query[1]]));
        let now = outstanding.fetch_add(1, Ordering::SeqCst) + 1;
        counts.max_outstanding.fetch_max(now, Ordering::SeqCst);
        if script.close_always || (first && script.close_first_after == Some(read)) {
            break;
        }
        read += 1;
        if script.reverse_batch > 0 {
            batch.push(query);
            if batch.len() == script.reverse_batch {
                for q in batch.drain(..).rev() {
                    answer(q);
                }
            }
        } else if script.delay.is_zero() {
            answer(query);
        } else {
            let answer = answer.clone();
            let delay = script.delay;
            tokio::spawn(async move {
                tokio::time::sleep(delay).await;
                answer(query);
            });
        }
    }
    // Closing: the write half goes with the writer task, the read half with this function.
    writer.abort();
    let _ = writer.await;
}

fn stream_config(spec: UpstreamSpec, cert: &TestCert, pool_size: usize) -> UpstreamConfig {
    let mut cfg = UpstreamConfig {
        timeout: Duration::from_secs(2),
        pool_size,
        // Longer than any test: connections close only when a test makes them.
        idle_timeout: Duration::from_secs(60),
        ..config(vec![spec])
    };
    cfg.add_ca_pem(cert.ca_pem.as_bytes()).unwrap();
    cfg
}

/// Both stream transports against an upstream following `script`.
async fn stream_upstreams(script: Script, cert: &TestCert) -> [(StreamUpstream, UpstreamSpec); 2] {
    let acceptor = TlsAcceptor::from(cert.server_config(&[]).unwrap());
    let tcp = StreamUpstream::start(script, None).await;
    let tls = StreamUpstream::start(script, Some(acceptor)).await;
    let (tcp_spec, tls_spec) = (
        UpstreamSpec::tcp(tcp.addr),
        UpstreamSpec::tls(tls.addr, TEST_SERVER_NAME),
    );
    [(tcp, tcp_spec), (tls, tls_spec)]
}

async fn resolve_checked(pool: &UpstreamPool, n: usize) -> Result<(), String> {
    let name = format!("q{n}.test.");
    let answer = pool
        .resolve(&question(&name, RecordType::A))
        .await
        .map_err(|e| format!("{name}: {e}"))?;
    let want = expected_ip(&Name::from_ascii(&name).unwrap());
    let got = addresses(&answer.message);
    if got == BTreeSet::from([want]) {
        Ok(())
    } else {
        Err(format!("{name}: got {got:?}, want {want}"))
    }
}

async fn resolve_concurrently(pool: &UpstreamPool, names: std::ops::Range<usize>) {
    let mut set = JoinSet::new();
    for n in names {
        let pool = pool.clone();
        set.spawn(async move { resolve_checked(&pool, n).await });
    }
    while let Some(done) = set.join_next().await {
        done.unwrap().unwrap();
    }
}

#[tokio::test]
async fn stream_queries_share_a_few_pooled_connections() {
    let cert = TestCert::generate().unwrap();
    let script = Script {
        delay: Duration::from_millis(2),
        ..Script::default()
    };
    for (mut upstream, spec) in stream_upstreams(script, &cert).await {
        let pool = UpstreamPool::new(stream_config(spec.clone(), &cert, 4)).unwrap();
        bounded(resolve_concurrently(&pool, 0..200)).await;
        let accepted = upstream.accepted();
        assert!(
            (1..=4).contains(&accepted),
            "{spec}: 200 queries opened {accepted} connections"
        );
        assert_eq!(upstream.counts.queries.load(Ordering::SeqCst), 200);
        let stats = &pool.stats()[0];
        assert_eq!(stats.connections_opened, accepted as u64, "{spec}");
        assert_eq!(stats.connections_reused, 200 - accepted as u64, "{spec}");
        assert!(upstream.counts.max_outstanding.load(Ordering::SeqCst) > 1);

        // Sequential queries keep using the open connections.
        for n in 0..20 {
            bounded(resolve_checked(&pool, n)).await.unwrap();
        }
        assert_eq!(upstream.accepted(), accepted, "{spec}");
        assert_eq!(pool.stats()[0].failures, 0);

        // Dropping the pool closes its connections.
        drop(pool);
        bounded(upstream.closed.wait_for(|n| *n == accepted))
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn pipelined_answers_out_of_order_are_matched_by_id() {
    let cert = TestCert::generate().unwrap();
    let script = Script {
        reverse_batch: 10,
        ..Script::default()
    };
    for (upstream, spec) in stream_upstreams(script, &cert).await {
        let pool = UpstreamPool::new(stream_config(spec.clone(), &cert, 1)).unwrap();
        // Each name has its own address: an answer handed to the wrong query fails the check.
        bounded(resolve_concurrently(&pool, 1..11)).await;
        assert_eq!(upstream.accepted(), 1, "{spec}");
        assert_eq!(
            upstream.counts.max_outstanding.load(Ordering::SeqCst),
            10,
            "{spec}: all ten queries were in flight on one connection"
        );
        let ids: BTreeSet<u16> = upstream
            .counts
            .ids
            .lock()
            .unwrap()
            .iter()
            .copied()
            .collect();
        assert_eq!(
            ids.len(),
            10,
            "{spec}: IDs in flight on one connection are distinct"
        );
    }
}

#[tokio::test]
async fn queries_in_flight_per_connection_are_bounded() {
    let cert = TestCert::generate().unwrap();
    // The upstream answers only once it holds three queries: a pool that sent more than three
    // at once on the connection would show a higher peak.
    let script = Script {
        reverse_batch: 3,
        ..Script::default()
    };
    for (upstream, spec) in stream_upstreams(script, &cert).await {
        let cfg = UpstreamConfig {
            max_in_flight: 3,
            ..stream_config(spec.clone(), &cert, 1)
        };
        let pool = UpstreamPool::new(cfg).unwrap();
        bounded(resolve_concurrently(&pool, 0..30)).await;
        assert_eq!(upstream.accepted(), 1, "{spec}");
        assert_eq!(
            upstream.counts.max_outstanding.load(Ordering::SeqCst),
            3,
            "{spec}"
        );
    }
}

#[tokio::test]
async fn a_connection_closed_mid_stream_is_reopened_and_the_query_answered() {
    let cert = TestCert::generate().unwrap();
    let script = Script {
        close_first_after: Some(3),
        ..Script::default()
    };
    for (upstream, spec) in stream_upstreams(script, &cert).await {
        let pool = UpstreamPool::new(stream_config(spec.clone(), &cert, 1)).unwrap();
        for n in 0..6 {
            bounded(resolve_checked(&pool, n)).await.unwrap();
        }
        assert_eq!(upstream.accepted(), 2, "{spec}");
        // The fourth query was read twice: once on the connection that closed, once on the new.
        assert_eq!(upstream.counts.queries.load(Ordering::SeqCst), 7, "{spec}");
        let stats = &pool.stats()[0];
        assert_eq!(stats.failures, 0, "{spec}");
        assert_eq!(stats.connections_opened, 2, "{spec}");
    }

    // An upstream that closes every connection: the query is retried once, then fails.
    for (upstream, spec) in stream_upstreams(
        Script {
            close_always: true,
            ..Script::default()
        },
        &cert,
    )
    .await
    {
        let pool = UpstreamPool::new(stream_config(spec.clone(), &cert, 1)).unwrap();
        let err = bounded(pool.resolve(&question("q1.test.", RecordType::A)))
            .await
            .unwrap_err();
        assert!(
            matches!(
                err,
                UpstreamError::AllFailed {
                    attempts: 1,
                    last: AttemptError::Io(_),
                    ..
                }
            ),
            "{spec}: {err}"
        );
        assert_eq!(
            upstream.accepted(),
            2,
            "{spec}: one retry on a new connection"
        );
    }
}

#[tokio::test]
async fn a_forged_stream_answer_with_the_wrong_id_is_ignored() {
    let cert = TestCert::generate().unwrap();
    let script = Script {
        spoof: true,
        delay: Duration::from_millis(1),
        ..Script::default()
    };
    for (upstream, spec) in stream_upstreams(script, &cert).await {
        let pool = UpstreamPool::new(stream_config(spec.clone(), &cert, 2)).unwrap();
        // One query in flight at a time, so the forged ID cannot be another query's.
        for n in 0..20 {
            // resolve_checked fails on the forged address.
            bounded(resolve_checked(&pool, n)).await.unwrap();
        }
        let stats = &pool.stats()[0];
        assert_eq!(stats.dropped_responses, 20, "{spec}");
        assert_eq!(stats.failures, 0, "{spec}");
        assert_eq!(upstream.accepted(), 1, "{spec}");
    }
}

#[tokio::test]
async fn idle_connections_are_closed_and_reopened_on_demand() {
    let cert = TestCert::generate().unwrap();
    for (mut upstream, spec) in stream_upstreams(Script::default(), &cert).await {
        let cfg = UpstreamConfig {
            idle_timeout: Duration::from_millis(100),
            ..stream_config(spec.clone(), &cert, 2)
        };
        let pool = UpstreamPool::new(cfg).unwrap();
        bounded(resolve_checked(&pool, 1)).await.unwrap();
        assert_eq!(pool.stats()[0].connections_opened, 1);
        // The pool closes the idle connection; the upstream sees it end.
        bounded(upstream.closed.wait_for(|n| *n == 1))
            .await
            .unwrap();
        assert_eq!(pool.stats()[0].open_connections, 0, "{spec}");
        bounded(resolve_checked(&pool, 2)).await.unwrap();
        assert_eq!(upstream.accepted(), 2, "{spec}");
        assert_eq!(pool.stats()[0].connections_opened, 2, "{spec}");
    }
}

/// A DoH upstream on 127.0.0.1 (HTTP/2 over TLS) that counts accepted connections.
async fn start_doh(cert: &TestCert) -> (SocketAddr, Arc<Counts>, JoinHandle<()>) {
    let acceptor = TlsAcceptor::from(cert.server_config(&[b"h2"]).unwrap());
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let counts = Arc::new(Counts::default());
    let c = Arc::clone(&counts);
    let task = tokio::spawn(async move {
        let mut conns = JoinSet::new();
        loop {
            let (tcp, _) = listener.accept().await.unwrap();
            c.accepted.fetch_add(1, Ordering::SeqCst);
            let (acceptor, c) = (acceptor.clone(), Arc::clone(&c));
            conns.spawn(async move {
                let stream = acceptor.accept(tcp).await.unwrap();
                let service = hyper::service::service_fn(move |req: http::Request<Incoming>| {
                    let c = Arc::clone(&c);
                    async move {
                        c.queries.fetch_add(1, Ordering::SeqCst);
                        let body = req.into_body().collect().await?.to_bytes();
                        let mut r =
                            http::Response::new(Full::new(Bytes::from(reply(&body, false))));
                        r.headers_mut().insert(
                            http::header::CONTENT_TYPE,
                            http::HeaderValue::from_static("application/dns-message"),
                        );
                        Ok::<_, hyper::Error>(r)
                    }
                });
                let _ = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    (addr, counts, task)
}

#[tokio::test]
async fn doh_multiplexes_queries_on_one_connection() {
    let cert = TestCert::generate().unwrap();
    let (addr, counts, task) = start_doh(&cert).await;
    let spec = UpstreamSpec::https(addr, "/dns-query", TEST_SERVER_NAME);
    let pool = UpstreamPool::new(stream_config(spec, &cert, 1)).unwrap();
    bounded(resolve_concurrently(&pool, 0..100)).await;
    for n in 0..10 {
        bounded(resolve_checked(&pool, n)).await.unwrap();
    }
    assert_eq!(counts.queries.load(Ordering::SeqCst), 110);
    assert_eq!(counts.accepted.load(Ordering::SeqCst), 1);
    let stats = &pool.stats()[0];
    assert_eq!(stats.connections_opened, 1);
    assert_eq!(stats.connections_reused, 109);
    task.abort();
}

/// The sample value of `sample` (`name{labels}`) in the registry's text exposition, 0 if absent.
fn metric(registry: &prometheus_client::registry::Registry, sample: &str) -> u64 {
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, registry).unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(sample).and_then(|v| v.trim().parse().ok()))
        .unwrap_or(0)
}

#[tokio::test]
async fn an_edge_reports_upstream_connection_reuse() {
    use hickory_proto::op::Query;
    let upstream = StreamUpstream::start(Script::default(), None).await;
    let mut cfg = tolldns_ingress::EdgeConfig::default();
    cfg.listen.udp = vec!["127.0.0.1:0".parse().unwrap()];
    cfg.listen.tcp = Vec::new();
    cfg.listen.udp_workers = 1;
    cfg.upstream.servers = vec![UpstreamSpec::tcp(upstream.addr).to_string()];
    let mut registry = prometheus_client::registry::Registry::default();
    let edge = tolldns_ingress::Edge::start(cfg, None, None, &mut registry)
        .await
        .unwrap();
    let client = tokio::net::UdpSocket::bind((Ipv4Addr::LOCALHOST, 0))
        .await
        .unwrap();
    client.connect(edge.local_addrs().udp[0]).await.unwrap();
    let mut buf = vec![0u8; 4096];
    for n in 1..=20u16 {
        let mut q = Message::new();
        q.set_id(n).set_recursion_desired(true);
        q.add_query(Query::query(
            Name::from_ascii(format!("q{n}.test.")).unwrap(),
            RecordType::A,
        ));
        client.send(&q.to_vec().unwrap()).await.unwrap();
        let len = bounded(client.recv(&mut buf)).await.unwrap();
        let answer = Message::from_vec(&buf[..len]).unwrap();
        assert_eq!(answer.id(), n);
        assert_eq!(
            addresses(&buf[..len]),
            BTreeSet::from([ip(u8::try_from(n).unwrap())])
        );
    }
    // Every miss (and any health probe) went over the one upstream connection.
    assert_eq!(upstream.accepted(), 1);
    let exchanges = u64::try_from(upstream.counts.queries.load(Ordering::SeqCst)).unwrap();
    assert!(exchanges >= 20);
    assert_eq!(
        metric(
            &registry,
            "tolldns_ingress_upstream_connections_total{result=\"opened\"}"
        ),
        1
    );
    // A health probe may be between the pool's count and the upstream's.
    let reused = metric(
        &registry,
        "tolldns_ingress_upstream_connections_total{result=\"reused\"}",
    );
    assert!(
        (19..=exchanges).contains(&reused),
        "{reused} reuses for {exchanges} exchanges"
    );
    edge.shutdown().await;
}

#[test]
fn upstream_settings_take_ms_keys_and_the_older_names() {
    let parse = |text: &str| toml::from_str::<tolldns_ingress::EdgeConfig>(text);
    let cfg = parse(
        "[upstream]\nservers = [\"tcp://127.0.0.1:53\"]\ntimeout_ms = 700\npool_size = 2\n\
         max_in_flight = 8\nidle_timeout_ms = 1500\nhealth_interval_ms = 250\n",
    )
    .unwrap();
    let u = &cfg.upstream;
    assert_eq!(
        (
            u.timeout_ms,
            u.pool_size,
            u.max_in_flight,
            u.idle_timeout_ms,
            u.health_interval_ms
        ),
        (700, 2, 8, 1500, 250)
    );
    let old = parse("[upstream]\ntimeout_millis = 900\nhealth_interval_secs = 7\n").unwrap();
    assert_eq!(old.upstream.timeout_ms, 900);
    assert_eq!(old.upstream.health_interval_secs, Some(7));
    let defaults = parse("").unwrap().upstream;
    assert_eq!(
        defaults.pool_size,
        tolldns_ingress::upstream::DEFAULT_POOL_SIZE
    );
    assert_eq!(
        defaults.max_in_flight,
        tolldns_ingress::upstream::DEFAULT_MAX_IN_FLIGHT
    );
    assert_eq!(
        Duration::from_millis(defaults.idle_timeout_ms),
        tolldns_ingress::upstream::DEFAULT_IDLE_TIMEOUT
    );
    assert!(parse("[upstream]\nidle_timeout = 5\n").is_err());
}

#[tokio::test]
async fn udp_queries_share_a_bounded_set_of_sockets() {
    let server = TestServer::start(TestZone::default()).await.unwrap();
    let pool = UpstreamPool::new(config(vec![server.udp_upstream()])).unwrap();
    // Five rounds of 60 queries at once (a larger burst overflows the test server's socket
    // buffer on loopback: datagrams lost before it reads them).
    for _ in 0..5 {
        let mut set = JoinSet::new();
        for _ in 0..60 {
            let pool = pool.clone();
            set.spawn(
                async move { bounded(pool.resolve(&question("a.test.", RecordType::A))).await },
            );
        }
        while let Some(r) = set.join_next().await {
            let answer = r.unwrap().unwrap();
            assert_eq!(addresses(&answer.message), BTreeSet::from([ip(1)]));
        }
    }
    let udp: Vec<_> = server
        .received()
        .into_iter()
        .filter(|r| r.transport == Transport::Udp)
        .collect();
    assert_eq!(udp.len(), 300);
    // 60 queries in flight at once over at most 16 sockets (ports), each query with an ID
    // unique on its socket while it waits.
    let ports: BTreeSet<u16> = udp.iter().map(|r| r.peer.port()).collect();
    assert!(ports.len() <= 16 && ports.len() >= 8, "{ports:?}");
    assert_eq!(pool.stats()[0].dropped_responses, 0);
}
