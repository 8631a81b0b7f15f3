//! `test-vectors/tickets.json`: fails when the file drifts from what the generator derives from
//! its committed keys, and checks every case with `tolldns-tickets` directly, so that the
//! vectors stand on their own (each refused token is refused for the stated reason only).

use tolldns_tickets::{
    AcceptedKey, IssuerPublicKey, IssuerSecretKey, TokenChallenge, TokenVerifier, ticket_id,
};

use crate::check_committed;
use crate::tickets_gen::{self, OTHER_DEPLOYMENT, TicketVectors};

fn file() -> TicketVectors {
    let text = std::fs::read_to_string(tickets_gen::VECTORS_PATH).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn bytes(hex_text: &str) -> Vec<u8> {
    hex::decode(hex_text).unwrap()
}

fn verifier(key: &IssuerPublicKey, not_after: Option<u64>, digest: [u8; 32]) -> TokenVerifier {
    TokenVerifier::new(
        vec![AcceptedKey {
            key: key.clone(),
            not_before: 0,
            not_after,
        }],
        digest,
    )
}

#[test]
fn file_matches_the_generator() {
    check_committed(
        std::path::Path::new(tickets_gen::VECTORS_PATH),
        &tickets_gen::render(),
        tickets_gen::REGENERATE,
    );
}

#[test]
fn every_case_checks_out_with_the_tickets_crate() {
    let v = file();
    let issuer = IssuerSecretKey::from_pem(&v.issuer_pem).unwrap();
    let other = IssuerSecretKey::from_pem(&v.other_issuer_pem).unwrap();
    assert_eq!(issuer.public().nk(), 256, "RSA-2048");
    assert_eq!(other.public().nk(), 256, "RSA-2048");
    assert_eq!(bytes(&v.issuer_spki_hex), issuer.public().spki());
    assert_eq!(bytes(&v.issuer_key_id_hex), issuer.public().key_id());
    assert_eq!(
        bytes(&v.other_issuer_spki_hex_comment),
        other.public().spki()
    );
    assert_ne!(issuer.public().key_id(), other.public().key_id());
    let digest = TokenChallenge::deployment(&v.challenge.issuer_name, &v.challenge.deployment)
        .digest()
        .unwrap();
    assert_eq!(bytes(&v.challenge.digest_hex), digest);
    let other_digest = TokenChallenge::deployment(&v.challenge.issuer_name, OTHER_DEPLOYMENT)
        .digest()
        .unwrap();

    let accepted = TokenVerifier::new(
        vec![AcceptedKey {
            key: IssuerPublicKey::from_spki(&bytes(&v.issuer_spki_hex)).unwrap(),
            not_before: v.key_not_before,
            not_after: Some(v.key_not_after),
        }],
        digest,
    );
    // Verifiers that remove one reason each, to prove a case fails for its reason only.
    let timeless = verifier(issuer.public(), None, digest);
    let other_challenge = verifier(issuer.public(), None, other_digest);
    let other_key = verifier(other.public(), None, digest);

    let mut seen = std::collections::BTreeSet::new();
    for case in &v.cases {
        let token = bytes(&case.token_hex);
        assert_eq!(
            hex::encode(ticket_id(&token)),
            case.ticket_id_hex,
            "{}",
            case.comment
        );
        let got = accepted.verify(&token, case.now_unix_s);
        seen.insert(case.expected.clone());
        match case.expected.as_str() {
            "ok" => {
                let t = got.unwrap_or_else(|r| panic!("{}: {r}", case.comment));
                assert_eq!(hex::encode(t.ticket_id), case.ticket_id_hex);
            }
            reason => {
                let refusal = got.expect_err(&case.comment);
                assert_eq!(refusal.name(), reason, "{}", case.comment);
                let genuine = match reason {
                    "expired_key" => timeless.verify(&token, case.now_unix_s).is_ok(),
                    "wrong_challenge" => other_challenge.verify(&token, case.now_unix_s).is_ok(),
                    "wrong_issuer" => other_key.verify(&token, case.now_unix_s).is_ok(),
                    "bad_signature" | "malformed" => true,
                    other => panic!("unexpected reason {other}"),
                };
                assert!(genuine, "{}: not refused for its reason only", case.comment);
            }
        }
    }
    let reasons = [
        "ok",
        "malformed",
        "wrong_issuer",
        "expired_key",
        "wrong_challenge",
        "bad_signature",
    ];
    assert_eq!(seen, reasons.iter().map(|r| r.to_string()).collect());
    assert_eq!(v.cases.iter().filter(|c| c.expected == "ok").count(), 3);
}
