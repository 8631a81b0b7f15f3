//! Toll-ticket benchmarks: what an issuer pays per token, what an edge pays per redemption
//! (one RSA verification) and per ticketed query (a session charge). Run:
//! `cargo bench -p tolldns-tickets -- --warm-up-time 1 --measurement-time 3`

use std::hint::black_box;

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use tolldns_tickets::*;

const NOW_MS: u64 = 1_760_000_000_000;

fn setup() -> (IssuerSecretKey, TokenChallenge, TokenVerifier) {
    let issuer = IssuerSecretKey::generate(2048).expect("RSA-2048 key generation");
    let challenge = TokenChallenge::deployment("issuer.bench", "tolldns-bench");
    let verifier = TokenVerifier::new(
        vec![AcceptedKey {
            key: issuer.public().clone(),
            not_before: 0,
            not_after: None,
        }],
        challenge.digest().expect("challenge encodes"),
    );
    (issuer, challenge, verifier)
}

fn token(issuer: &IssuerSecretKey, challenge: &TokenChallenge) -> Vec<u8> {
    let (request, pending) = client::request(issuer.public(), challenge).expect("blind");
    let response = issuer.issue(&request).expect("issue");
    pending
        .finalize(issuer.public(), &response)
        .expect("finalize")
        .to_bytes()
}

fn benches(c: &mut Criterion) {
    let (issuer, challenge, verifier) = setup();
    let t = token(&issuer, &challenge);

    c.bench_function("client request (blind)", |b| {
        b.iter(|| client::request(issuer.public(), black_box(&challenge)))
    });
    let (request, _) = client::request(issuer.public(), &challenge).expect("blind");
    c.bench_function("issuer issue (blind sign, RSA-2048)", |b| {
        b.iter(|| issuer.issue(black_box(&request)))
    });
    c.bench_function("token verify (RSA-2048)", |b| {
        b.iter(|| verifier.verify(black_box(&t), NOW_MS / 1000))
    });
    c.bench_function("ticket id", |b| b.iter(|| ticket_id(black_box(&t))));

    // A redemption: replay check, verification, redeemed set, session. Fresh tokens each
    // time (issued outside the measurement).
    let redeemer = Redeemer::new(
        RedeemConfig {
            max_redeemed: usize::MAX,
            max_sessions: usize::MAX,
            ..RedeemConfig::default()
        },
        verifier.clone(),
        [1; 32],
    );
    c.bench_function("redeem (verify + open session)", |b| {
        b.iter_batched(
            || token(&issuer, &challenge),
            |t| redeemer.redeem(&t, NOW_MS).expect("fresh token redeems"),
            BatchSize::SmallInput,
        )
    });

    // The per-query cost of a ticketed query: one session charge.
    let charging = Redeemer::new(
        RedeemConfig {
            queries_per_token: u32::MAX,
            session_rate: u32::MAX,
            session_burst: u32::MAX,
            ..RedeemConfig::default()
        },
        verifier,
        [2; 32],
    );
    let session = charging.redeem(&t, NOW_MS).expect("redeems").session;
    c.bench_function("session charge (per ticketed query)", |b| {
        b.iter(|| charging.charge(black_box(&session), NOW_MS + 1))
    });
}

criterion_group!(tickets, benches);
criterion_main!(tickets);
