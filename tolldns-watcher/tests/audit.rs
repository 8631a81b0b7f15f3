//! The watcher's audits against a real miner node: ticketed queries over the edge, a closed
//! window, then audits (passing, and failing with the rule that broke), ticket lookups and
//! the re-check of stored evidence.

mod audit_probe_support;

use std::time::Duration;

use audit_probe_support::{NAME, Net, Open, now_ms};
use tolldns_core::{WindowId, WindowLen};
use tolldns_receipts::{Deployment, Verifier};
use tolldns_tickets::{AcceptedKey, IssuerSecretKey, TokenChallenge, TokenVerifier};
use tolldns_watcher::audit::{Auditor, batch_id, check_evidence};
use tolldns_watcher::probe::{Credential, ProbeTarget, Prober, transport};

fn deployment() -> Deployment {
    Deployment::new(
        tolldns_core::DeploymentId::local(),
        WindowLen::new(audit_probe_support::WINDOW_SECS).unwrap(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audits_of_a_real_miner_pass_and_fail_with_reasons() {
    let net = Net::start("audit", 2).await;
    let prober = Prober::new(
        vec![net.upstream.udp_addr],
        Some(net.tls.clone()),
        Duration::from_secs(5),
    );
    let udp = ProbeTarget {
        transport: transport::UDP,
        address: net.udp.to_string(),
        tls_name: None,
    };

    // Wait for the start of a window, so that the queries below land in one.
    let len = WindowLen::new(audit_probe_support::WINDOW_SECS).unwrap();
    let start = WindowId::containing(now_ms(), len).get();
    audit_probe_support::until("a fresh window", || async move {
        WindowId::containing(now_ms(), len).get() > start
    })
    .await;
    let sent_at = now_ms();

    // One probe session: a token, then its session ticket, six queries in all.
    let (token, ticket) = net.tokens.take().unwrap().unwrap();
    let first = prober
        .probe(&udp, NAME, 1, &Credential::Token(token))
        .await
        .unwrap();
    assert!(first.answered, "{}", first.evidence);
    let session = first.session.expect("the edge returns a session ticket");
    for _ in 0..5 {
        let o = prober
            .probe(&udp, NAME, 1, &Credential::Session(session))
            .await
            .unwrap();
        assert_eq!(o.rcode.as_deref(), Some("NOERROR"), "{}", o.evidence);
    }
    // And unticketed traffic.
    for _ in 0..4 {
        prober
            .probe(&udp, NAME, 1, &Credential::None)
            .await
            .unwrap();
    }
    assert_eq!(
        WindowId::containing(now_ms(), len),
        WindowId::containing(sent_at, len),
        "the queries took longer than a window"
    );

    let (id, receipt) = net.batch_at(sent_at).await;
    assert_eq!(batch_id(&receipt), id);
    assert_eq!(receipt.body.integrity.leaf_count, 10);
    let arrival = now_ms();
    let verifier = Verifier::new(deployment(), &Open, &Open, &Open);
    let auditor = Auditor::new(
        net.watcher.clone(),
        None,
        Duration::from_secs(10),
        net.token_verifier.clone(),
    );
    let seed: [u8; 32] = rand::random();

    // Every leaf sampled: the ticketed ones' token is fetched and verified.
    let passed = auditor
        .audit_batch(&net.api, &receipt, &id, arrival, seed, 10, &verifier)
        .await
        .unwrap();
    assert!(passed.passed, "{:?} {}", passed.reason, passed.evidence);
    assert_eq!((passed.sampled, passed.ticketed), (10, 6));
    assert_eq!(passed.evidence["seed"], hex::encode(seed));
    assert_eq!(
        passed.evidence["proofs"]["proofs"]
            .as_array()
            .unwrap()
            .len(),
        10
    );
    let tokens = passed.evidence["tokens"].as_array().unwrap();
    assert_eq!(tokens.len(), 1);
    assert_eq!(tokens[0]["ticket_id"], hex::encode(ticket));
    assert_eq!(tokens[0]["status"], "valid");

    // The evidence re-checks; with another seed or another receipt it does not.
    let again = check_evidence(&passed.evidence, &deployment(), &net.token_verifier).unwrap();
    assert!(again.passed, "{:?}", again.reason);
    let mut wrong_seed = passed.evidence.clone();
    wrong_seed["seed"] = serde_json::json!(hex::encode([7u8; 32]));
    let failed = check_evidence(&wrong_seed, &deployment(), &net.token_verifier).unwrap();
    assert!(!failed.passed);
    assert_eq!(failed.reason.as_deref(), Some("proof_for_wrong_leaf"));

    // A tampered receipt fails on its signature, before anything is asked.
    let mut tampered = receipt.clone();
    tampered.body.service_summary.request_count += 1;
    let failed = auditor
        .audit_batch(&net.api, &tampered, &id, arrival, seed, 10, &verifier)
        .await
        .unwrap();
    assert_eq!(
        failed.reason.as_deref(),
        Some("signature"),
        "{}",
        failed.evidence
    );
    assert!(!failed.passed);

    // A receipt re-signed by the operator with another root: the miner's proofs do not
    // verify against it.
    let key = tolldns_service::keyfile::load(
        &net.dir
            .join("miner")
            .join("keys")
            .join("receipt-signing.json"),
    )
    .unwrap();
    let mut forged = receipt.clone();
    forged.body.integrity.merkle_root = [9; 32];
    let forged = forged.body.sign(&key).unwrap();
    let failed = auditor
        .audit_batch(&net.api, &forged, &id, arrival, seed, 10, &verifier)
        .await
        .unwrap();
    assert_eq!(
        failed.reason.as_deref(),
        Some("batch_id_mismatch"),
        "{}",
        failed.evidence
    );
    let failed = auditor
        .audit_batch(
            &net.api,
            &forged,
            &batch_id(&forged),
            arrival,
            seed,
            10,
            &verifier,
        )
        .await
        .unwrap();
    assert_eq!(
        failed.reason.as_deref(),
        Some("batch_not_found"),
        "{}",
        failed.evidence
    );
    assert_eq!(failed.evidence["requests"][0]["status"], 404);

    // Tokens under another issuer key do not verify: the audit fails on them.
    let other = IssuerSecretKey::generate(2048).unwrap();
    let strict = Auditor::new(
        net.watcher.clone(),
        None,
        Duration::from_secs(10),
        TokenVerifier::new(
            vec![AcceptedKey {
                key: other.public().clone(),
                not_before: 0,
                not_after: None,
            }],
            TokenChallenge::deployment(
                audit_probe_support::ISSUER_NAME,
                audit_probe_support::DEPLOYMENT,
            )
            .digest()
            .unwrap(),
        ),
    );
    let failed = strict
        .audit_batch(&net.api, &receipt, &id, arrival, seed, 10, &verifier)
        .await
        .unwrap();
    assert_eq!(
        failed.reason.as_deref(),
        Some("token_invalid"),
        "{}",
        failed.evidence
    );
    assert_eq!(failed.evidence["tokens"][0]["status"], "invalid");

    // An arrival long after the window: the receipt rules refuse it.
    let failed = auditor
        .audit_batch(
            &net.api,
            &receipt,
            &id,
            arrival + 3_600_000,
            seed,
            10,
            &verifier,
        )
        .await
        .unwrap();
    assert_eq!(failed.reason.as_deref(), Some("arrived_too_late"));

    // An auditor key the miner does not know is refused, a closed port is unreachable.
    let stranger = Auditor::new(
        ed25519_dalek::SigningKey::from_bytes(&[5; 32]),
        None,
        Duration::from_secs(10),
        net.token_verifier.clone(),
    );
    let failed = stranger
        .audit_batch(&net.api, &receipt, &id, arrival, seed, 10, &verifier)
        .await
        .unwrap();
    assert_eq!(failed.reason.as_deref(), Some("auditor_refused"));
    let closed = format!("http://127.0.0.1:{}", audit_probe_support::free_port());
    let failed = auditor
        .audit_batch(&closed, &receipt, &id, arrival, seed, 10, &verifier)
        .await
        .unwrap();
    assert_eq!(failed.reason.as_deref(), Some("miner_unreachable"));
    assert!(
        failed.evidence["error"]
            .as_str()
            .unwrap()
            .contains("connect")
    );
    // The watcher's own error: an https API without TLS roots.
    assert!(
        auditor
            .audit_batch(
                "https://127.0.0.1:1",
                &receipt,
                &id,
                arrival,
                seed,
                10,
                &verifier
            )
            .await
            .is_err()
    );

    // The probe ticket's six leaves are found; asking for seven fails.
    let lookup = auditor
        .lookup_ticket(&net.api, &receipt, &id, ticket, 6, 1000)
        .await
        .unwrap();
    assert!(lookup.passed, "{:?} {}", lookup.reason, lookup.evidence);
    assert_eq!(lookup.found, 6);
    let lookup = auditor
        .lookup_ticket(&net.api, &receipt, &id, ticket, 7, 1000)
        .await
        .unwrap();
    assert_eq!(
        (lookup.passed, lookup.found, lookup.reason.as_deref()),
        (false, 6, Some("ticket_leaves_missing"))
    );
    let lookup = auditor
        .lookup_ticket(&net.api, &receipt, &id, ticket, 1, 5)
        .await
        .unwrap();
    assert_eq!(lookup.reason.as_deref(), Some("ticket_over_quota"));
    let lookup = auditor
        .lookup_ticket(&net.api, &receipt, &id, [0xee; 16], 1, 1000)
        .await
        .unwrap();
    assert_eq!(
        (lookup.found, lookup.reason.as_deref()),
        (0, Some("ticket_leaves_missing"))
    );
}
