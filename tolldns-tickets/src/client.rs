//! The client side of issuance (RFC 9578 §6.1 and §6.3): blind a token input into a
//! [`TokenRequest`], then finalize the issuer's [`TokenResponse`] into a [`Token`].

use blind_rsa_signatures::{BlindSignature, BlindingResult};
use rand_core_010::CryptoRng;

use crate::codec::{
    CHALLENGE_DIGEST_LEN, DecodeError, NONCE_LEN, Token, TokenChallenge, TokenRequest,
    TokenResponse, token_input,
};
use crate::key::IssuerPublicKey;

/// Issuance failed on the client side.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The challenge could not be encoded.
    #[error("bad token challenge: {0}")]
    Challenge(#[from] DecodeError),
    /// Blinding failed (the RSA library refused the key or message).
    #[error("blinding failed: {0}")]
    Blind(String),
    /// The issuer's response is not a valid signature of the request under its key: a wrong
    /// or malicious issuer.
    #[error("the issuer's response does not finalize into a valid token")]
    BadResponse,
}

/// What the client keeps between sending a [`TokenRequest`] and finalizing its response.
#[derive(Debug)]
pub struct PendingToken {
    nonce: [u8; NONCE_LEN],
    challenge_digest: [u8; CHALLENGE_DIGEST_LEN],
    blinding: BlindingResult,
}

/// Start issuance of one token bound to `challenge` from the issuer key `key`, with fresh
/// randomness from the operating system.
///
/// # Errors
///
/// [`ClientError`] when the challenge or the blinding fails.
pub fn request(
    key: &IssuerPublicKey,
    challenge: &TokenChallenge,
) -> Result<(TokenRequest, PendingToken), ClientError> {
    let mut nonce = [0u8; NONCE_LEN];
    let mut rng = blind_rsa_signatures::DefaultRng;
    rand_core_010::Rng::fill_bytes(&mut rng, &mut nonce);
    request_with(key, &challenge.digest()?, nonce, &mut rng)
}

/// [`request`] with the caller's nonce and RNG (the RNG supplies the PSS salt, then the
/// blinding factor). For known-answer tests; real clients use [`request`].
///
/// # Errors
///
/// [`ClientError::Blind`].
pub fn request_with<R: CryptoRng + ?Sized>(
    key: &IssuerPublicKey,
    challenge_digest: &[u8; CHALLENGE_DIGEST_LEN],
    nonce: [u8; NONCE_LEN],
    rng: &mut R,
) -> Result<(TokenRequest, PendingToken), ClientError> {
    let input = token_input(&nonce, challenge_digest, &key.key_id());
    let blinding = key
        .rsa()
        .blind(rng, input)
        .map_err(|e| ClientError::Blind(e.to_string()))?;
    let request = TokenRequest {
        truncated_token_key_id: key.truncated_key_id(),
        blinded_msg: blinding.blind_message.0.clone(),
    };
    Ok((
        request,
        PendingToken {
            nonce,
            challenge_digest: *challenge_digest,
            blinding,
        },
    ))
}

impl PendingToken {
    /// Unblind the issuer's response into a token, and check it under `key`.
    ///
    /// # Errors
    ///
    /// [`ClientError::BadResponse`] when the response is not a signature of this request.
    pub fn finalize(
        self,
        key: &IssuerPublicKey,
        response: &TokenResponse,
    ) -> Result<Token, ClientError> {
        let input = token_input(&self.nonce, &self.challenge_digest, &key.key_id());
        let sig = key
            .rsa()
            .finalize(
                &BlindSignature(response.blind_sig.clone()),
                &self.blinding,
                input,
            )
            .map_err(|_| ClientError::BadResponse)?;
        Ok(Token {
            nonce: self.nonce,
            challenge_digest: self.challenge_digest,
            token_key_id: key.key_id(),
            authenticator: sig.0,
        })
    }
}
