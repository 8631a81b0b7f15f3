//! RFC 9578 Appendix A.2 (token type 0x0002) and RFC 9474 Appendix A vectors, from
//! `test-vectors/rfc9578-type2.json` and `test-vectors/rfc9474.json`.

use blind_rsa_signatures::reexports::crypto_bigint::BoxedUint;
use blind_rsa_signatures::reexports::rsa;
use blind_rsa_signatures::{
    Deterministic, MessagePrepare, PSS, PSSZero, Randomized, SaltMode, SecretKey, Sha384,
};
use rand_core_010::{TryCryptoRng, TryRng};
use serde_json::Value;
use tolldns_tickets::{
    AcceptedKey, IssuerPublicKey, IssuerSecretKey, Token, TokenChallenge, TokenRequest,
    TokenVerifier, client,
};

fn load(name: &str) -> Value {
    let path = format!("{}/../test-vectors/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn hx(v: &Value, field: &str) -> Vec<u8> {
    let s = v[field]
        .as_str()
        .unwrap_or_else(|| panic!("{field} missing"));
    hex::decode(s.trim_start_matches("0x")).unwrap()
}

/// Hands out recorded byte strings, one per `fill_bytes`, in order (the test vectors'
/// salt and blind).
struct Replay(Vec<Vec<u8>>);

impl TryCryptoRng for Replay {}

impl TryRng for Replay {
    type Error = core::convert::Infallible;
    fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
        unreachable!("the vectors feed whole byte strings")
    }
    fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
        unreachable!("the vectors feed whole byte strings")
    }
    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Self::Error> {
        let next = self.0.remove(0);
        assert_eq!(
            next.len(),
            dst.len(),
            "recorded randomness has the asked length"
        );
        dst.copy_from_slice(&next);
        Ok(())
    }
}

#[test]
fn rfc9578_type2_vectors() {
    let file = load("rfc9578-type2.json");
    let vectors = file["vectors"].as_array().unwrap();
    assert_eq!(vectors.len(), 5);
    for (i, v) in vectors.iter().enumerate() {
        let pem = String::from_utf8(hx(v, "skS")).unwrap();
        let sk = IssuerSecretKey::from_pem(&pem).unwrap();
        let pks = hx(v, "pkS");
        assert_eq!(sk.public().spki(), &pks[..], "vector {i}: SPKI");
        let pk = IssuerPublicKey::from_spki(&pks).unwrap();
        assert_eq!(&pk, sk.public());
        let challenge_bytes = hx(v, "token_challenge");
        let challenge = TokenChallenge::from_bytes(&challenge_bytes).unwrap();
        assert_eq!(challenge.to_bytes().unwrap(), challenge_bytes);
        let nonce: [u8; 32] = hx(v, "nonce").try_into().unwrap();
        // The RNG gives the PSS salt, then the blind r (little-endian).
        let blind_le: Vec<u8> = hx(v, "blind").into_iter().rev().collect();
        let mut rng = Replay(vec![hx(v, "salt"), blind_le]);
        let (request, pending) =
            client::request_with(&pk, &challenge.digest().unwrap(), nonce, &mut rng).unwrap();
        assert_eq!(
            request.to_bytes(),
            hx(v, "token_request"),
            "vector {i}: request"
        );
        assert_eq!(
            TokenRequest::from_bytes(&request.to_bytes()).unwrap(),
            request
        );
        let response = sk.issue(&request).unwrap();
        assert_eq!(response.to_bytes(), hx(v, "token_response"), "vector {i}");
        let token = pending.finalize(&pk, &response).unwrap();
        let expected = hx(v, "token");
        assert_eq!(token.to_bytes(), expected, "vector {i}: token");
        assert_eq!(Token::from_bytes(&expected).unwrap(), token);
        // Redemption verification from the public key alone.
        let verifier = TokenVerifier::new(
            vec![AcceptedKey {
                key: pk.clone(),
                not_before: 0,
                not_after: None,
            }],
            challenge.digest().unwrap(),
        );
        let verified = verifier.verify(&expected, 1_700_000_000).unwrap();
        assert_eq!(verified.ticket_id, tolldns_tickets::ticket_id(&expected));
        assert_eq!(verified.key_id, pk.key_id());
    }
}

fn uint(v: &Value, field: &str) -> BoxedUint {
    let s = v[field].as_str().unwrap().trim_start_matches("0x");
    BoxedUint::from_str_radix_vartime(s, 16).unwrap()
}

fn run_9474<S: SaltMode, M: MessagePrepare>(v: &Value) {
    let n = uint(v, "n");
    let inner = rsa::RsaPrivateKey::from_components(
        n.clone(),
        uint(v, "e"),
        uint(v, "d"),
        vec![uint(v, "p"), uint(v, "q")],
    )
    .unwrap();
    let sk = SecretKey::<Sha384, S, M>::new(inner);
    let pk = sk.public_key().unwrap();
    // The vectors give inv = r^-1; the library draws r (little-endian) after the salt (and,
    // randomized, after the 32-byte message prefix).
    let r = uint(v, "inv")
        .invert_mod(&n.to_nz().unwrap())
        .into_option()
        .unwrap();
    let mut feed = Vec::new();
    if M::RANDOMIZE {
        feed.push(hx(v, "msg_prefix"));
    }
    feed.push(hx(v, "salt"));
    feed.push(r.to_le_bytes().to_vec());
    let msg = hx(v, "msg");
    let blinded = pk.blind(&mut Replay(feed), &msg).unwrap();
    assert_eq!(
        blinded.blind_message.0,
        hx(v, "blinded_msg"),
        "{}",
        v["name"]
    );
    let blind_sig = sk.blind_sign(&blinded.blind_message).unwrap();
    assert_eq!(blind_sig.0, hx(v, "blind_sig"), "{}", v["name"]);
    let sig = pk.finalize(&blind_sig, &blinded, &msg).unwrap();
    assert_eq!(sig.0, hx(v, "sig"), "{}", v["name"]);
    pk.verify(&sig, blinded.msg_randomizer, &msg).unwrap();
}

#[test]
fn rfc9474_vectors() {
    let file = load("rfc9474.json");
    let vectors = file["vectors"].as_array().unwrap();
    assert_eq!(vectors.len(), 4);
    for v in vectors {
        match v["name"].as_str().unwrap() {
            "RSABSSA-SHA384-PSS-Randomized" => run_9474::<PSS, Randomized>(v),
            "RSABSSA-SHA384-PSSZERO-Randomized" => run_9474::<PSSZero, Randomized>(v),
            "RSABSSA-SHA384-PSS-Deterministic" => run_9474::<PSS, Deterministic>(v),
            "RSABSSA-SHA384-PSSZERO-Deterministic" => run_9474::<PSSZero, Deterministic>(v),
            other => panic!("unexpected vector {other}"),
        }
    }
}
