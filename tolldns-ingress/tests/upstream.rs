//! The upstream pool against in-process test servers on 127.0.0.1 (real sockets, loopback only).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::net::Ipv4Addr;
use std::time::Duration;

use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::{Name, RData, RecordType};
use tolldns_ingress::testkit::{Mode, TestCert, TestServer, TestZone, Transport};
use tolldns_ingress::upstream::{
    AttemptError, Confidence, Mismatch, Question, UpstreamConfig, UpstreamError, UpstreamPool,
    UpstreamSpec,
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

#[tokio::test]
async fn health_checks_mark_down_and_up() {
    let server = TestServer::start(TestZone::default()).await.unwrap();
    let cfg = UpstreamConfig {
        health_interval: Duration::from_millis(50),
        health_max_backoff: Duration::from_millis(200),
        unhealthy_after: 2,
        timeout: Duration::from_millis(100),
        ..config(vec![server.udp_upstream()])
    };
    let pool = UpstreamPool::new(cfg).unwrap();
    let task = pool.spawn_health_checks();
    let wait_for = |healthy: bool| {
        let pool = pool.clone();
        async move {
            while pool.stats()[0].healthy != healthy {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    };
    bounded(async {
        while pool.stats()[0].probes == 0 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert!(pool.stats()[0].healthy);
    server.set_mode(Mode::Drop);
    bounded(wait_for(false)).await;
    server.set_mode(Mode::Normal);
    bounded(wait_for(true)).await;
    let stats = &pool.stats()[0];
    assert!(stats.probes >= 3);
    assert_eq!(stats.queries, 0, "probes are not counted as client queries");
    task.abort();
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

        // TCP: the connection's answer is wrong; the attempt fails at once.
        let pool = UpstreamPool::new(config(vec![liar.tcp_upstream()])).unwrap();
        let err = bounded(pool.resolve(&question("a.test.", RecordType::A)))
            .await
            .unwrap_err();
        assert!(
            matches!(&err, UpstreamError::AllFailed { last: AttemptError::Mismatch(m), .. } if *m == mismatch),
            "{mode:?}: {err}"
        );

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
        health_interval: Duration::from_millis(20),
        exploration: 0.5,
        ..config(vec![a.udp_upstream(), b.tcp_upstream()])
    };
    let pool = UpstreamPool::new(cfg).unwrap();
    let health = pool.spawn_health_checks();
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
    }
    a.set_mode(Mode::Drop);
    for _ in 0..4 {
        let _ = bounded(pool.resolve(&question("a.test.", RecordType::A))).await;
    }
    health.abort();
    // Let datagrams already on their way land before counting.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(outsider.queries(), 0);
    let stats = pool.stats();
    let sent: u64 = stats.iter().map(|s| s.queries + s.probes).sum();
    let received = a.queries() + b.queries();
    // Aborting the health task can cut one probe between the pool's count and the send.
    assert!(
        received.abs_diff(sent) <= 1,
        "servers received {received}, pool counted {sent}"
    );
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
    assert!(
        ports.len() > udp.len() / 2,
        "source ports should vary: {ports:?}"
    );
    assert!(ids.len() > udp.len() / 2, "IDs should vary: {ids:?}");
}
