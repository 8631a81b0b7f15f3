//! Issuance and redemption through the public API: every refusal reason of the redeemer,
//! session-key rotation, quotas, rates and bounds.

use std::sync::OnceLock;

use tolldns_tickets::{
    AcceptedKey, IssuerSecretKey, RedeemConfig, Redeemer, Refusal, Token, TokenChallenge,
    TokenVerifier, client,
};

const NOW_MS: u64 = 1_760_000_000_000;

/// The RFC 9578 vector key (issuer A) and one generated key (issuer B), made once.
fn keys() -> &'static (IssuerSecretKey, IssuerSecretKey) {
    static KEYS: OnceLock<(IssuerSecretKey, IssuerSecretKey)> = OnceLock::new();
    KEYS.get_or_init(|| {
        let path = format!(
            "{}/../test-vectors/rfc9578-type2.json",
            env!("CARGO_MANIFEST_DIR")
        );
        let v: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        let pem = hex::decode(v["vectors"][0]["skS"].as_str().unwrap()).unwrap();
        let a = IssuerSecretKey::from_pem(std::str::from_utf8(&pem).unwrap()).unwrap();
        let b = IssuerSecretKey::generate(2048).unwrap();
        (a, b)
    })
}

fn challenge() -> TokenChallenge {
    TokenChallenge::deployment("issuer.test", "tolldns-test")
}

fn token(issuer: &IssuerSecretKey, challenge: &TokenChallenge) -> Vec<u8> {
    let (request, pending) = client::request(issuer.public(), challenge).unwrap();
    let response = issuer.issue(&request).unwrap();
    pending
        .finalize(issuer.public(), &response)
        .unwrap()
        .to_bytes()
}

fn redeemer(config: RedeemConfig, retired_b: bool) -> Redeemer {
    let (a, b) = keys();
    let mut accepted = vec![AcceptedKey {
        key: a.public().clone(),
        not_before: 0,
        not_after: None,
    }];
    if retired_b {
        accepted.push(AcceptedKey {
            key: b.public().clone(),
            not_before: 0,
            not_after: Some(NOW_MS / 1000 - 1),
        });
    }
    Redeemer::new(
        config,
        TokenVerifier::new(accepted, challenge().digest().unwrap()),
        [1; 32],
    )
}

#[test]
fn each_bad_token_is_refused_with_its_own_reason() {
    let (a, b) = keys();
    let r = redeemer(RedeemConfig::default(), false);
    let good = token(a, &challenge());

    // Forged: one bit of the signature flipped.
    let mut forged = good.clone();
    *forged.last_mut().unwrap() ^= 1;
    assert_eq!(r.redeem(&forged, NOW_MS), Err(Refusal::BadSignature));
    // A well-formed token whose signature is of another message (nonce changed).
    let mut moved = good.clone();
    moved[2] ^= 0x80;
    assert_eq!(r.redeem(&moved, NOW_MS), Err(Refusal::BadSignature));
    // Wrong issuer: a key this edge does not accept.
    assert_eq!(
        r.redeem(&token(b, &challenge()), NOW_MS),
        Err(Refusal::WrongIssuer)
    );
    // Bound to another deployment.
    let other = TokenChallenge::deployment("issuer.test", "another-network");
    assert_eq!(
        r.redeem(&token(a, &other), NOW_MS),
        Err(Refusal::WrongChallenge)
    );
    // Malformed: truncated, wrong type.
    assert_eq!(r.redeem(&good[..100], NOW_MS), Err(Refusal::Malformed));
    let mut typed = good.clone();
    typed[1] = 1;
    assert_eq!(r.redeem(&typed, NOW_MS), Err(Refusal::Malformed));
    // None of the failures used the token up; the good one redeems once.
    let first = r.redeem(&good, NOW_MS).unwrap();
    assert_eq!(first.token.ticket_id, tolldns_tickets::ticket_id(&good));
    assert_eq!(r.redeem(&good, NOW_MS + 1), Err(Refusal::Replayed));
    assert_eq!(r.redeemed(), 1);
    // Expired key.
    let r2 = redeemer(RedeemConfig::default(), true);
    assert_eq!(
        r2.redeem(&token(b, &challenge()), NOW_MS),
        Err(Refusal::ExpiredKey)
    );
    // The token decodes to the same ticket id it was redeemed under.
    assert_eq!(
        Token::from_bytes(&good).unwrap().ticket_id(),
        first.token.ticket_id
    );
}

#[test]
fn sessions_charge_their_quota_and_rate() {
    let (a, _) = keys();
    let config = RedeemConfig {
        queries_per_token: 3,
        session_rate: 10,
        session_burst: 2,
        ..RedeemConfig::default()
    };
    let r = redeemer(config, false);
    let t = token(a, &challenge());
    let red = r.redeem(&t, NOW_MS).unwrap();
    assert_eq!(red.remaining, 2);
    // Burst 2: the redemption took one, one more now, then over the rate.
    let c = r.charge(&red.session, NOW_MS).unwrap();
    assert_eq!(
        (c.ticket_id, c.remaining, c.renewed),
        (red.token.ticket_id, 1, None)
    );
    assert_eq!(r.charge(&red.session, NOW_MS), Err(Refusal::SessionRate));
    // 100 ms later at 10 q/s: one more.
    assert_eq!(r.charge(&red.session, NOW_MS + 100).unwrap().remaining, 0);
    assert_eq!(
        r.charge(&red.session, NOW_MS + 10_000),
        Err(Refusal::QuotaExhausted)
    );
    // A session ticket this edge never made.
    let mut forged = red.session;
    forged[5] ^= 1;
    assert_eq!(r.charge(&forged, NOW_MS), Err(Refusal::UnknownSession));
}

#[test]
fn rotation_renews_then_expires_sessions() {
    let (a, _) = keys();
    let r = redeemer(RedeemConfig::default(), false);
    let red = r.redeem(&token(a, &challenge()), NOW_MS).unwrap();
    assert_eq!(r.rotate([2; 32], NOW_MS), 0);
    // The previous generation still works once and is renewed under the new key.
    let c = r.charge(&red.session, NOW_MS + 1).unwrap();
    let renewed = c.renewed.expect("renewed under the current key");
    assert_ne!(renewed, red.session);
    assert_eq!(
        r.charge(&red.session, NOW_MS + 2),
        Err(Refusal::UnknownSession)
    );
    assert_eq!(r.charge(&renewed, NOW_MS + 2).unwrap().renewed, None);
    // A session left idle through two rotations expires.
    let idle = r.redeem(&token(a, &challenge()), NOW_MS).unwrap();
    r.rotate([3; 32], NOW_MS + 3);
    assert_eq!(
        r.rotate([4; 32], NOW_MS + 4),
        2,
        "both sessions of the retired generation are dropped"
    );
    assert_eq!(
        r.charge(&idle.session, NOW_MS + 5),
        Err(Refusal::SessionExpired)
    );
    // The renewed one was of the generation before last too: expired as well.
    assert_eq!(r.charge(&renewed, NOW_MS + 5), Err(Refusal::SessionExpired));
    assert_eq!(r.sessions(), 0);
    // Redeemed tokens stay redeemed through rotations (their key does not expire).
    assert_eq!(r.redeemed(), 2);
}

#[test]
fn full_tables_refuse_rather_than_forget() {
    let (a, _) = keys();
    let r = redeemer(
        RedeemConfig {
            max_redeemed: 2,
            ..RedeemConfig::default()
        },
        false,
    );
    let t1 = token(a, &challenge());
    r.redeem(&t1, NOW_MS).unwrap();
    r.redeem(&token(a, &challenge()), NOW_MS).unwrap();
    assert_eq!(
        r.redeem(&token(a, &challenge()), NOW_MS),
        Err(Refusal::Capacity)
    );
    // The first is still known as redeemed: a full table never lets a replay through.
    assert_eq!(r.redeem(&t1, NOW_MS), Err(Refusal::Replayed));
    // Restored ids (from a journal after a restart) are refused as replays.
    let fresh = token(a, &challenge());
    let r2 = redeemer(RedeemConfig::default(), false);
    r2.restore_redeemed(tolldns_tickets::ticket_id(&fresh), None);
    assert_eq!(r2.redeem(&fresh, NOW_MS), Err(Refusal::Replayed));
}

#[test]
fn refusal_names_and_codes_are_stable() {
    let names: Vec<_> = Refusal::ALL.iter().map(|r| r.name()).collect();
    assert_eq!(
        names,
        [
            "malformed",
            "wrong_issuer",
            "expired_key",
            "wrong_challenge",
            "bad_signature",
            "replayed",
            "quota_exhausted",
            "unknown_session",
            "session_expired",
            "session_rate",
            "capacity",
            "ticket_required"
        ]
    );
    let codes: Vec<_> = Refusal::ALL.iter().map(|r| r.code()).collect();
    assert_eq!(codes, (1..=12).collect::<Vec<u8>>());
}
