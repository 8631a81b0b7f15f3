//! Arbitrary bytes as a Privacy Pass token, token challenge, token request and token response
//! (RFC 9577/9578 type 0x0002): decoding never panics, and whatever decodes re-encodes to the
//! same bytes. The same bytes go through token verification under the RFC 9578 Appendix A.2
//! issuer key (refused unless they are one of that appendix's tokens) and through a redeemer:
//! redemption and charging a session ticket made of the first 16 bytes never panic and refuse
//! anything but those tokens and the sessions they open.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use tolldns_tickets::{
    AcceptedKey, IssuerPublicKey, IssuerSecretKey, RedeemConfig, Redeemer, SESSION_TICKET_LEN,
    Token, TokenChallenge, TokenRequest, TokenResponse, TokenVerifier,
};

/// Unix seconds at which tokens are verified (the issuer key has no validity limits).
const NOW_S: u64 = 1_700_000_000;

/// RFC 9578 Appendix A.2: the issuer key, the verifier bound to vector 0's challenge, and
/// the appendix's tokens (the only byte strings that may ever verify).
struct Fixture {
    verifier: TokenVerifier,
    redeemer: Redeemer,
    tokens: Vec<Vec<u8>>,
}

fn hex_field(v: &serde_json::Value, field: &str) -> Vec<u8> {
    let s = v[field]
        .as_str()
        .unwrap_or_else(|| panic!("vector field {field} missing"));
    hex::decode(s).unwrap_or_else(|e| panic!("vector field {field} is not hex: {e}"))
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let file: serde_json::Value =
            serde_json::from_str(include_str!("../../test-vectors/rfc9578-type2.json"))
                .expect("test vector file is JSON");
        let vectors = file["vectors"].as_array().expect("vectors array");
        let v0 = &vectors[0];
        let pem = String::from_utf8(hex_field(v0, "skS")).expect("skS is PEM text");
        let sk = IssuerSecretKey::from_pem(&pem).expect("vector 0 issuer key loads");
        let spki = hex_field(v0, "pkS");
        assert_eq!(sk.public().spki(), &spki[..], "skS and pkS are one key");
        let key = IssuerPublicKey::from_spki(&spki).expect("vector 0 SPKI loads");
        let challenge = TokenChallenge::from_bytes(&hex_field(v0, "token_challenge"))
            .expect("vector 0 challenge decodes");
        let verifier = TokenVerifier::new(
            vec![AcceptedKey {
                key,
                not_before: 0,
                not_after: None,
            }],
            challenge.digest().expect("vector 0 challenge encodes"),
        );
        let tokens: Vec<Vec<u8>> = vectors.iter().map(|v| hex_field(v, "token")).collect();
        // The fixture is not vacuous: vector 0's token does verify.
        verifier
            .verify(&tokens[0], NOW_S)
            .expect("vector 0 token verifies");
        let redeemer = Redeemer::new(RedeemConfig::default(), verifier.clone(), [7; 32]);
        Fixture {
            verifier,
            redeemer,
            tokens,
        }
    })
}

fuzz_target!(|data: &[u8]| {
    if let Ok(t) = Token::from_bytes(data) {
        assert_eq!(t.to_bytes(), data);
        assert_eq!(t.input().as_slice(), &data[..t.input().len()]);
    }
    if let Ok(c) = TokenChallenge::from_bytes(data) {
        assert_eq!(c.to_bytes().expect("a decoded challenge encodes"), data);
        let _ = c.digest();
    }
    if let Ok(r) = TokenRequest::from_bytes(data) {
        assert_eq!(r.to_bytes(), data);
    }
    if let Ok(r) = TokenResponse::from_bytes(data, 256) {
        assert_eq!(r.to_bytes(), data);
    }

    let f = fixture();
    let is_vector_token = f.tokens.iter().any(|t| t.as_slice() == data);
    if let Ok(v) = f.verifier.verify(data, NOW_S) {
        assert!(is_vector_token, "a non-vector token verified");
        assert_eq!(v.bytes, data);
        assert_eq!(v.ticket_id, tolldns_tickets::ticket_id(data));
    }

    let now_ms = NOW_S * 1000;
    if let Ok(r) = f.redeemer.redeem(data, now_ms) {
        assert!(is_vector_token, "a non-vector token was redeemed");
        assert_eq!(r.token.bytes, data);
    }
    if let Some(head) = data.first_chunk::<SESSION_TICKET_LEN>() {
        // Sessions exist only once a vector token was redeemed; without one, every ticket is
        // refused.
        let opened = f.redeemer.sessions() > 0;
        let charged = f.redeemer.charge(head, now_ms);
        assert!(
            charged.is_err() || opened,
            "a ticket was charged with no open session"
        );
    }
});
