//! Redemption-side token verification from issuer public keys alone.

use crate::codec::{CHALLENGE_DIGEST_LEN, DecodeError, TOKEN_KEY_ID_LEN, Token, ticket_id};
use crate::key::IssuerPublicKey;

/// Why a ticket or token was refused. Each reason has a stable [`Refusal::name`] for metrics
/// labels and client-facing errors; numbers ([`Refusal::code`]) are append-only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
#[non_exhaustive]
pub enum Refusal {
    /// The token's bytes do not decode (wrong type, wrong length).
    #[error("malformed token")]
    Malformed,
    /// The token names a key of no issuer this edge accepts.
    #[error("token is from an unknown issuer key")]
    WrongIssuer,
    /// The token's issuer key is retired (or not valid yet).
    #[error("token's issuer key is expired")]
    ExpiredKey,
    /// The token is bound to another challenge (another deployment or origin).
    #[error("token is bound to another challenge")]
    WrongChallenge,
    /// The RSA signature does not verify: a forged token.
    #[error("token signature does not verify")]
    BadSignature,
    /// The token was already redeemed at this edge.
    #[error("token was already redeemed")]
    Replayed,
    /// The session's query quota is used up.
    #[error("ticket quota exhausted")]
    QuotaExhausted,
    /// The session ticket is not one this edge issued (forged, or from another edge).
    #[error("unknown session ticket")]
    UnknownSession,
    /// The session ticket was made under a retired session key.
    #[error("session ticket expired")]
    SessionExpired,
    /// The session is over its rate; retry later.
    #[error("session rate exceeded")]
    SessionRate,
    /// The edge's table of redeemed tokens or of sessions is full.
    #[error("ticket tables are full")]
    Capacity,
    /// The listener requires a ticket and the query carried none.
    #[error("a toll ticket is required")]
    TicketRequired,
}

impl Refusal {
    /// Every reason, in code order.
    pub const ALL: [Self; 12] = [
        Self::Malformed,
        Self::WrongIssuer,
        Self::ExpiredKey,
        Self::WrongChallenge,
        Self::BadSignature,
        Self::Replayed,
        Self::QuotaExhausted,
        Self::UnknownSession,
        Self::SessionExpired,
        Self::SessionRate,
        Self::Capacity,
        Self::TicketRequired,
    ];

    /// Stable snake_case name (metrics label values, error texts).
    pub const fn name(self) -> &'static str {
        match self {
            Self::Malformed => "malformed",
            Self::WrongIssuer => "wrong_issuer",
            Self::ExpiredKey => "expired_key",
            Self::WrongChallenge => "wrong_challenge",
            Self::BadSignature => "bad_signature",
            Self::Replayed => "replayed",
            Self::QuotaExhausted => "quota_exhausted",
            Self::UnknownSession => "unknown_session",
            Self::SessionExpired => "session_expired",
            Self::SessionRate => "session_rate",
            Self::Capacity => "capacity",
            Self::TicketRequired => "ticket_required",
        }
    }

    /// Stable number (FFI result codes, wire errors): 1.. in declaration order, append-only.
    pub const fn code(self) -> u8 {
        match self {
            Self::Malformed => 1,
            Self::WrongIssuer => 2,
            Self::ExpiredKey => 3,
            Self::WrongChallenge => 4,
            Self::BadSignature => 5,
            Self::Replayed => 6,
            Self::QuotaExhausted => 7,
            Self::UnknownSession => 8,
            Self::SessionExpired => 9,
            Self::SessionRate => 10,
            Self::Capacity => 11,
            Self::TicketRequired => 12,
        }
    }

    /// The text sent to clients (EDNS extended error EXTRA-TEXT, DoH response body):
    /// `toll ticket refused: <name>`.
    pub fn client_text(self) -> String {
        format!("toll ticket refused: {}", self.name())
    }
}

impl From<DecodeError> for Refusal {
    fn from(_: DecodeError) -> Self {
        Self::Malformed
    }
}

/// An issuer key with the times it is valid for redemption.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcceptedKey {
    /// The key.
    pub key: IssuerPublicKey,
    /// First unix second (inclusive) at which its tokens are accepted.
    pub not_before: u64,
    /// Unix second (exclusive) from which its tokens are refused as expired; `None`: no end.
    pub not_after: Option<u64>,
}

/// A token that verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedToken {
    /// Its ticket id (what leaves carry).
    pub ticket_id: [u8; 16],
    /// The issuer key that signed it.
    pub key_id: [u8; TOKEN_KEY_ID_LEN],
    /// When that key expires (unix seconds), if it does.
    pub key_not_after: Option<u64>,
    /// The token's bytes (kept for audits).
    pub bytes: Vec<u8>,
}

/// Verifies tokens bound to one challenge against a set of accepted issuer keys.
#[derive(Debug, Clone)]
pub struct TokenVerifier {
    keys: Vec<AcceptedKey>,
    challenge_digest: [u8; CHALLENGE_DIGEST_LEN],
}

impl TokenVerifier {
    /// A verifier for tokens bound to the challenge with `challenge_digest`.
    pub const fn new(keys: Vec<AcceptedKey>, challenge_digest: [u8; CHALLENGE_DIGEST_LEN]) -> Self {
        Self {
            keys,
            challenge_digest,
        }
    }

    /// The accepted keys.
    pub fn keys(&self) -> &[AcceptedKey] {
        &self.keys
    }

    /// The challenge digest tokens must carry.
    pub const fn challenge_digest(&self) -> &[u8; CHALLENGE_DIGEST_LEN] {
        &self.challenge_digest
    }

    /// Verify a token's bytes at `now_unix_s`: decodes, finds the key by id, checks its
    /// validity, the challenge digest and the RSA signature (one RSA verification).
    ///
    /// # Errors
    ///
    /// [`Refusal::Malformed`], [`Refusal::WrongIssuer`], [`Refusal::ExpiredKey`],
    /// [`Refusal::WrongChallenge`] or [`Refusal::BadSignature`].
    pub fn verify(&self, bytes: &[u8], now_unix_s: u64) -> Result<VerifiedToken, Refusal> {
        let token = Token::from_bytes(bytes)?;
        let accepted = self
            .keys
            .iter()
            .find(|k| k.key.key_id() == token.token_key_id)
            .ok_or(Refusal::WrongIssuer)?;
        if now_unix_s < accepted.not_before || accepted.not_after.is_some_and(|t| now_unix_s >= t) {
            return Err(Refusal::ExpiredKey);
        }
        if token.challenge_digest != self.challenge_digest {
            return Err(Refusal::WrongChallenge);
        }
        if !accepted.key.verify_signature(&token) {
            return Err(Refusal::BadSignature);
        }
        Ok(VerifiedToken {
            ticket_id: ticket_id(bytes),
            key_id: token.token_key_id,
            key_not_after: accepted.not_after,
            bytes: bytes.to_vec(),
        })
    }
}
