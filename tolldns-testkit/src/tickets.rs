//! Toll tickets for edge tests: the RFC 9578 test vector's issuer key and tokens it issues.

use tolldns_tickets::client::{self, ClientError};
use tolldns_tickets::{IssueError, IssuerSecretKey, TokenChallenge};

/// RFC 9578 Appendix A.2's type-2 (blind RSA) test vectors.
const RFC9578_TYPE2: &str = include_str!("../../test-vectors/rfc9578-type2.json");

/// Why a test token was not issued.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TokenError {
    /// The client side (challenge, blinding, finalization) failed.
    #[error("token client: {0}")]
    Client(#[from] ClientError),
    /// The issuer did not sign the request.
    #[error("token issuance: {0}")]
    Issue(#[from] IssueError),
}

/// The issuer key of RFC 9578's first type-2 test vector (`test-vectors/rfc9578-type2.json`).
///
/// # Panics
///
/// If the vector file, built into this crate, does not hold a PEM key as `vectors[0].skS`.
pub fn rfc9578_issuer_key() -> IssuerSecretKey {
    let vectors: serde_json::Value =
        serde_json::from_str(RFC9578_TYPE2).expect("test-vectors/rfc9578-type2.json is JSON");
    let pem_hex = vectors["vectors"][0]["skS"]
        .as_str()
        .expect("the first vector has skS");
    let pem = hex::decode(pem_hex).expect("skS is hex");
    let pem = std::str::from_utf8(&pem).expect("skS is PEM text");
    IssuerSecretKey::from_pem(pem).expect("skS is an RSA private key")
}

/// A token `issuer` signs for the challenge of `issuer_name` and `deployment`, as a client
/// presents it to an edge.
///
/// # Errors
///
/// [`TokenError`] if the client or the issuer side fails.
pub fn issue_token(
    issuer: &IssuerSecretKey,
    issuer_name: &str,
    deployment: &str,
) -> Result<Vec<u8>, TokenError> {
    let challenge = TokenChallenge::deployment(issuer_name, deployment);
    let (request, pending) = client::request(issuer.public(), &challenge)?;
    let response = issuer.issue(&request)?;
    Ok(pending.finalize(issuer.public(), &response)?.to_bytes())
}
