//! Builds `test-vectors/tickets.json`. Shared by the `gen_ticket_vectors` example (which
//! writes the file) and the integration test (which checks that the file has not drifted).
//!
//! The two RSA-2048 issuer keys are read from the committed file: they were made once with
//! `IssuerSecretKey::generate(2048)` and are never regenerated. Everything else follows from
//! them and fixed inputs: tokens are issued with `client::request_with` (the known-answer
//! variant of `client::request`), `IssuerSecretKey::issue` and `PendingToken::finalize`, drawing
//! the nonce, the PSS salt and the blinding factor from [`VectorRng`], a fixed-seed generator.
//! RSA blind signatures are deterministic, so the same keys give the same tokens.

use core::convert::Infallible;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tolldns_tickets::{
    IssuerSecretKey, NONCE_LEN, Refusal, TOKEN_INPUT_LEN, TokenChallenge, client, ticket_id,
};

/// Where the vectors live.
pub(crate) const VECTORS_PATH: &str =
    concat!(env!("CARGO_MANIFEST_DIR"), "/../test-vectors/tickets.json");

/// How to regenerate the file.
pub(crate) const REGENERATE: &str = "cargo run -p tolldns-ffi --example gen_ticket_vectors";

pub(crate) const ISSUER_NAME: &str = "issuer.tolldns.example";
pub(crate) const DEPLOYMENT: &str = "tolldns-test-vectors";
pub(crate) const OTHER_DEPLOYMENT: &str = "tolldns-other-deployment";
/// The issuer key's validity for redemption: [`KEY_NOT_BEFORE`, `KEY_NOT_AFTER`).
pub(crate) const KEY_NOT_BEFORE: u64 = 1_760_000_000;
pub(crate) const KEY_NOT_AFTER: u64 = 1_790_000_000;
/// When the cases that do not probe the validity bounds are verified.
pub(crate) const NOW: u64 = 1_760_000_100;

/// The file.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct TicketVectors {
    pub(crate) comment: String,
    /// PKCS#8 PEM of the issuer key the verifier accepts.
    pub(crate) issuer_pem: String,
    /// Its DER SPKI (`id-RSASSA-PSS`), what `tolldns_token_verifier_add_key` takes.
    pub(crate) issuer_spki_hex: String,
    /// `SHA256(spki)`, the token key id.
    pub(crate) issuer_key_id_hex: String,
    pub(crate) key_not_before: u64,
    /// Exclusive.
    pub(crate) key_not_after: u64,
    pub(crate) challenge: Challenge,
    /// PKCS#8 PEM of another issuer key: it signs the `wrong_issuer` case only.
    pub(crate) other_issuer_pem: String,
    /// For information only: that key's SPKI, never added to the verifier.
    pub(crate) other_issuer_spki_hex_comment: String,
    pub(crate) cases: Vec<Case>,
}

/// The token challenge the verifier expects.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Challenge {
    pub(crate) issuer_name: String,
    pub(crate) deployment: String,
    /// `SHA256(TokenChallenge::deployment(issuer_name, deployment))`.
    pub(crate) digest_hex: String,
}

/// One token, verified at `now_unix_s` by a verifier with the issuer key and the challenge.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Case {
    pub(crate) comment: String,
    /// `"ok"` or the `Refusal::name()` of the expected refusal.
    pub(crate) expected: String,
    pub(crate) now_unix_s: u64,
    pub(crate) token_hex: String,
    /// `SHA256("TOLLDNS-TICKET-V1\0" || token)[..16]` of the bytes as given (valid or not).
    pub(crate) ticket_id_hex: String,
}

/// The committed keys (the only part of the file the generator reads).
#[derive(Deserialize)]
pub(crate) struct Keys {
    pub(crate) issuer_pem: String,
    pub(crate) other_issuer_pem: String,
}

/// A deterministic byte stream for the test vectors only: `SHA256(label || counter)` blocks.
/// Not a cryptographic RNG for anything else.
pub(crate) struct VectorRng {
    label: Vec<u8>,
    counter: u64,
    block: [u8; 32],
    used: usize,
}

impl VectorRng {
    pub(crate) fn new(label: &str) -> Self {
        Self {
            label: [b"TOLLDNS-TICKET-VECTORS\0", label.as_bytes()].concat(),
            counter: 0,
            block: [0; 32],
            used: 32,
        }
    }

    fn fill(&mut self, dst: &mut [u8]) {
        for b in dst {
            if self.used == self.block.len() {
                let mut h = Sha256::new();
                h.update(&self.label);
                h.update(self.counter.to_be_bytes());
                self.block = h.finalize().into();
                self.counter += 1;
                self.used = 0;
            }
            *b = self.block[self.used];
            self.used += 1;
        }
    }
}

impl rand_core_010::TryRng for VectorRng {
    type Error = Infallible;

    fn try_next_u32(&mut self) -> Result<u32, Infallible> {
        let mut b = [0u8; 4];
        self.fill(&mut b);
        Ok(u32::from_le_bytes(b))
    }

    fn try_next_u64(&mut self) -> Result<u64, Infallible> {
        let mut b = [0u8; 8];
        self.fill(&mut b);
        Ok(u64::from_le_bytes(b))
    }

    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Infallible> {
        self.fill(dst);
        Ok(())
    }
}

impl rand_core_010::TryCryptoRng for VectorRng {}

/// The key PEMs committed in the file.
pub(crate) fn committed_keys() -> Keys {
    let text = std::fs::read_to_string(VECTORS_PATH)
        .unwrap_or_else(|e| panic!("{VECTORS_PATH}: {e} (the keys are read from it)"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{VECTORS_PATH}: {e}"))
}

/// One token from `key`, bound to `ISSUER_NAME` / `deployment`, with randomness from `label`.
pub(crate) fn issue(key: &IssuerSecretKey, deployment: &str, label: &str) -> Vec<u8> {
    let challenge = TokenChallenge::deployment(ISSUER_NAME, deployment);
    let mut rng = VectorRng::new(label);
    let mut nonce = [0u8; NONCE_LEN];
    rng.fill(&mut nonce);
    let (request, pending) =
        client::request_with(key.public(), &challenge.digest().unwrap(), nonce, &mut rng)
            .expect("blind");
    let response = key.issue(&request).expect("issue");
    pending
        .finalize(key.public(), &response)
        .expect("finalize")
        .to_bytes()
}

fn case(comment: &str, expected: Option<Refusal>, now_unix_s: u64, token: &[u8]) -> Case {
    Case {
        comment: comment.to_owned(),
        expected: expected.map_or("ok", Refusal::name).to_owned(),
        now_unix_s,
        token_hex: hex::encode(token),
        ticket_id_hex: hex::encode(ticket_id(token)),
    }
}

/// The file's contents.
pub(crate) fn render() -> String {
    let pems = committed_keys();
    let issuer = IssuerSecretKey::from_pem(&pems.issuer_pem).expect("issuer_pem");
    let other = IssuerSecretKey::from_pem(&pems.other_issuer_pem).expect("other_issuer_pem");
    let valid: Vec<Vec<u8>> = (0..3)
        .map(|i| issue(&issuer, DEPLOYMENT, &format!("valid-{i}")))
        .collect();
    let mut flipped = valid[0].clone();
    *flipped.last_mut().unwrap() ^= 0x01;
    let mut wrong_type = valid[0].clone();
    wrong_type[1] = 0x01;
    let truncated = &valid[0][..valid[0].len() - 1];
    let wrong_challenge = issue(&issuer, OTHER_DEPLOYMENT, "wrong-challenge");
    let wrong_issuer = issue(&other, DEPLOYMENT, "wrong-issuer");
    assert_eq!(valid[0].len(), TOKEN_INPUT_LEN + 256);

    let cases = vec![
        case("valid token 0", None, NOW, &valid[0]),
        case(
            "valid token 1, verified at key_not_before (inclusive)",
            None,
            KEY_NOT_BEFORE,
            &valid[1],
        ),
        case(
            "valid token 2, verified at key_not_after - 1 (the last second)",
            None,
            KEY_NOT_AFTER - 1,
            &valid[2],
        ),
        case(
            "token 0 with the lowest bit of its authenticator's last byte flipped",
            Some(Refusal::BadSignature),
            NOW,
            &flipped,
        ),
        case(
            "a genuine token of the issuer key bound to deployment tolldns-other-deployment",
            Some(Refusal::WrongChallenge),
            NOW,
            &wrong_challenge,
        ),
        case(
            "a genuine token of the other issuer key (other_issuer_spki_hex_comment), which the \
             verifier does not have",
            Some(Refusal::WrongIssuer),
            NOW,
            &wrong_issuer,
        ),
        case(
            "token 0 without its last byte (authenticator of 255 bytes)",
            Some(Refusal::Malformed),
            NOW,
            truncated,
        ),
        case(
            "token 0 with token type 0x0001",
            Some(Refusal::Malformed),
            NOW,
            &wrong_type,
        ),
        case(
            "token 0 verified at key_not_after (exclusive): the key has expired",
            Some(Refusal::ExpiredKey),
            KEY_NOT_AFTER,
            &valid[0],
        ),
        case(
            "token 0 verified at key_not_before - 1: the key is not valid yet",
            Some(Refusal::ExpiredKey),
            KEY_NOT_BEFORE - 1,
            &valid[0],
        ),
    ];

    let file = TicketVectors {
        comment: format!(
            "TollDNS toll-ticket vectors: Privacy Pass tokens (RFC 9578 type 0x0002, blind RSA \
             RSA-2048, SHA-384, PSS) for verification at the edge. The two issuer keys were \
             generated once with IssuerSecretKey::generate(2048) and are kept here as PKCS#8 \
             PEM; `{REGENERATE}` re-derives everything else from them: tokens issued through \
             client::request_with, IssuerSecretKey::issue and PendingToken::finalize with a \
             fixed-seed RNG (ffi/tests/integration/tickets_gen.rs). Each case is verified by a \
             verifier holding only issuer_spki_hex, valid from key_not_before (inclusive) to \
             key_not_after (exclusive), for the challenge below, at now_unix_s; expected is \
             \"ok\" or the Refusal name. ticket_id = SHA256(\"TOLLDNS-TICKET-V1\\0\" || token \
             bytes as given)[..16]. The test `tickets` fails when this file and the code \
             disagree."
        ),
        issuer_pem: pems.issuer_pem,
        issuer_spki_hex: hex::encode(issuer.public().spki()),
        issuer_key_id_hex: hex::encode(issuer.public().key_id()),
        key_not_before: KEY_NOT_BEFORE,
        key_not_after: KEY_NOT_AFTER,
        challenge: Challenge {
            issuer_name: ISSUER_NAME.to_owned(),
            deployment: DEPLOYMENT.to_owned(),
            digest_hex: hex::encode(
                TokenChallenge::deployment(ISSUER_NAME, DEPLOYMENT)
                    .digest()
                    .unwrap(),
            ),
        },
        other_issuer_pem: pems.other_issuer_pem,
        other_issuer_spki_hex_comment: hex::encode(other.public().spki()),
        cases,
    };
    let mut text = serde_json::to_string_pretty(&file).expect("serialize");
    text.push('\n');
    text
}
