//! The watcher's probes against a real miner node over UDP, TCP, DoT and DoH, ticketed with
//! probe tokens bought from a real issuer, compared with the watcher's own resolution.

mod audit_probe_support;

use std::time::Duration;

use audit_probe_support::{ANSWER, NAME, Net, OTHER_ANSWER, upstream};
use tolldns_watcher::probe::{Credential, ProbeError, ProbeTarget, Prober, compare, transport};
use tolldns_watcher::tokens::{ProbeTokens, TokensError};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probes_over_every_transport_are_ticketed_timed_and_compared() {
    let net = Net::start("probe", 6).await;
    assert_eq!(net.tokens.remaining(), 6);
    let prober = Prober::new(
        vec![net.upstream.udp_addr],
        Some(net.tls.clone()),
        Duration::from_secs(5),
    );
    let reference = prober.reference(NAME, 1).await.unwrap();
    assert_eq!(reference, vec![format!("{NAME}. IN A {ANSWER}")]);

    let targets = [
        (transport::UDP, net.udp.to_string()),
        (transport::TCP, net.tcp.to_string()),
        (transport::DOT, net.dot.to_string()),
        (transport::DOH, format!("https://{}/dns-query", net.doh)),
    ];
    for (t, address) in targets {
        let target = ProbeTarget {
            transport: t,
            address,
            tls_name: None,
        };
        let (token, ticket) = net.tokens.take().unwrap().unwrap();
        assert_eq!(ticket, tolldns_tickets::ticket_id(&token));
        let first = prober
            .probe(&target, NAME, 1, &Credential::Token(token))
            .await
            .unwrap();
        assert!(first.answered, "transport {t}: {}", first.evidence);
        assert_eq!(first.rcode.as_deref(), Some("NOERROR"));
        assert!(compare(&first.answers, &reference), "{}", first.evidence);
        assert!(first.latency_us > 0);
        assert_eq!(first.evidence["ticket_id"], hex::encode(ticket));
        let session = first.session.expect("a session ticket");
        let next = prober
            .probe(&target, NAME, 1, &Credential::Session(session))
            .await
            .unwrap();
        assert!(next.answered, "transport {t}: {}", next.evidence);
        assert!(compare(&next.answers, &reference));
        assert_eq!(next.evidence["credential"], "session");
    }
    assert_eq!(net.tokens.remaining(), 2);

    // A watcher whose own resolution differs finds the edge's answer incorrect.
    let other = upstream(OTHER_ANSWER).await;
    let strict = Prober::new(vec![other.udp_addr], None, Duration::from_secs(5));
    let other_reference = strict.reference(NAME, 1).await.unwrap();
    let udp = ProbeTarget {
        transport: transport::UDP,
        address: net.udp.to_string(),
        tls_name: None,
    };
    let o = strict
        .probe(&udp, NAME, 1, &Credential::None)
        .await
        .unwrap();
    assert!(o.answered);
    assert!(!compare(&o.answers, &other_reference));
    // TTL and order do not matter, data does.
    assert!(compare(
        &[
            format!("{NAME}. IN A {ANSWER}"),
            format!("{NAME}. IN A {OTHER_ANSWER}")
        ],
        &[
            format!("{NAME}. IN A {OTHER_ANSWER}"),
            format!("{NAME}. IN A {ANSWER}")
        ],
    ));

    // A token that does not verify is refused with an extended error; over DoH with 401.
    let refused = prober
        .probe(&udp, NAME, 1, &Credential::Token(vec![0; 400]))
        .await
        .unwrap();
    assert_eq!(
        refused.rcode.as_deref(),
        Some("REFUSED"),
        "{}",
        refused.evidence
    );
    assert!(
        refused.evidence["ede"][0][1]
            .as_str()
            .unwrap()
            .contains("toll ticket refused")
    );
    let doh = ProbeTarget {
        transport: transport::DOH,
        address: format!("https://{}/dns-query", net.doh),
        tls_name: Some("localhost".to_owned()),
    };
    let o = prober
        .probe(&doh, NAME, 1, &Credential::Token(vec![0; 400]))
        .await
        .unwrap();
    assert!(!o.answered);
    assert_eq!(o.evidence["http_status"], 401, "{}", o.evidence);

    // An edge that is not there does not answer; the watcher's own mistakes are errors.
    let quick = Prober::new(
        vec![net.upstream.udp_addr],
        Some(net.tls.clone()),
        Duration::from_millis(300),
    );
    let port = audit_probe_support::free_port();
    for t in [transport::UDP, transport::TCP, transport::DOT] {
        let gone = ProbeTarget {
            transport: t,
            address: format!("127.0.0.1:{port}"),
            tls_name: None,
        };
        let o = quick
            .probe(&gone, NAME, 1, &Credential::None)
            .await
            .unwrap();
        assert!(!o.answered, "{}", o.evidence);
        assert!(o.evidence["error"].is_string());
    }
    let bad = ProbeTarget {
        transport: 9,
        address: net.udp.to_string(),
        tls_name: None,
    };
    assert!(matches!(
        prober.probe(&bad, NAME, 1, &Credential::None).await,
        Err(ProbeError::Transport(9))
    ));
    let dot = ProbeTarget {
        transport: transport::DOT,
        address: net.dot.to_string(),
        tls_name: None,
    };
    assert!(matches!(
        strict.probe(&dot, NAME, 1, &Credential::None).await,
        Err(ProbeError::NoTlsRoots)
    ));

    // The tokens file: owner-only, what is left survives a restart, and a wallet whose quota
    // is used up is refused (tokens bought before the refusal are kept).
    let path = net.dir.join("watcher").join("probe-tokens.json");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
    let reopened = ProbeTokens::open(
        &path,
        audit_probe_support::ISSUER_NAME,
        audit_probe_support::DEPLOYMENT,
        None,
        Duration::from_secs(10),
    )
    .unwrap();
    assert_eq!(reopened.remaining(), 2);
    let err = reopened
        .fetch(&net.issuer, &net.wallet, 3)
        .await
        .unwrap_err();
    assert!(matches!(err, TokensError::Refused { .. }), "{err}");
    assert!(err.to_string().contains("402"), "{err}");
    assert_eq!(reopened.remaining(), 4);
    let mut seen = std::collections::HashSet::new();
    while let Some((token, ticket)) = reopened.take().unwrap() {
        assert_eq!(tolldns_tickets::ticket_id(&token), ticket);
        assert!(seen.insert(ticket));
    }
    assert_eq!(seen.len(), 4);
    assert!(ProbeTokens::open(&path, "another.issuer", "d", None, Duration::from_secs(1)).is_err());
}
