//! Byte-exact codecs of the Privacy Pass structures (RFC 9577 §2.1–2.2, RFC 9578 §6), in TLS
//! presentation language: big-endian integers, `opaque x<a..b>` with a length prefix as wide as
//! `b` needs.

use sha2::{Digest, Sha256};

/// Token type of publicly verifiable tokens (RFC 9578 §6: blind RSA, SHA-384, PSS).
pub const TOKEN_TYPE_BLIND_RSA: u16 = 0x0002;
/// Bytes of a nonce, a challenge digest and a token key id.
pub const NONCE_LEN: usize = 32;
/// Bytes of `SHA256(TokenChallenge)`.
pub const CHALLENGE_DIGEST_LEN: usize = 32;
/// Bytes of a token key id (`SHA256` of the issuer key's SPKI).
pub const TOKEN_KEY_ID_LEN: usize = 32;
/// `Nk` of RFC 9578 type 0x0002: RSA-2048 signatures are 256 bytes. Larger moduli (3072 and
/// 4096 bits, `Nk` 384 and 512) work between TollDNS components, which learn `Nk` from the
/// issuer key; they are not interoperable with other type-0x0002 implementations.
pub const NK_2048: usize = 256;
/// Moduli this crate accepts, in bytes.
pub const SUPPORTED_NK: [usize; 3] = [256, 384, 512];
/// Bytes of a token before its authenticator.
pub const TOKEN_INPUT_LEN: usize = 2 + NONCE_LEN + CHALLENGE_DIGEST_LEN + TOKEN_KEY_ID_LEN;
/// Longest token this crate parses (RSA-4096).
pub const MAX_TOKEN_LEN: usize = TOKEN_INPUT_LEN + 512;
/// Shortest token this crate parses (RSA-2048).
pub const MIN_TOKEN_LEN: usize = TOKEN_INPUT_LEN + NK_2048;

/// A structure could not be decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// Fewer bytes than the structure needs.
    #[error("truncated {0}")]
    Truncated(&'static str),
    /// Bytes left over after the structure.
    #[error("{0} has trailing bytes")]
    TrailingBytes(&'static str),
    /// A token type other than 0x0002.
    #[error("unsupported token type {0:#06x} (only 0x0002, blind RSA, is accepted)")]
    UnsupportedTokenType(u16),
    /// A field with a length the format does not allow.
    #[error("{field} has length {len}, which the format does not allow")]
    BadLength {
        /// The field.
        field: &'static str,
        /// Its length.
        len: usize,
    },
}

struct Reader<'a> {
    buf: &'a [u8],
    what: &'static str,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if self.buf.len() < n {
            return Err(DecodeError::Truncated(self.what));
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Ok(head)
    }

    fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.take(1)?.first().copied().unwrap_or(0))
    }

    fn u16(&mut self) -> Result<u16, DecodeError> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    fn finish(self) -> Result<(), DecodeError> {
        if self.buf.is_empty() {
            Ok(())
        } else {
            Err(DecodeError::TrailingBytes(self.what))
        }
    }
}

/// RFC 9577 §2.1.1 `TokenChallenge`: what a token is bound to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenChallenge {
    /// Token type (0x0002).
    pub token_type: u16,
    /// Issuer name (1..65535 bytes; TollDNS uses the issuer's host name).
    pub issuer_name: Vec<u8>,
    /// Empty (tokens fetched ahead of time) or 32 bytes.
    pub redemption_context: Vec<u8>,
    /// Origins the token may be redeemed at (0..65535 bytes; comma-separated names).
    pub origin_info: Vec<u8>,
}

impl TokenChallenge {
    /// The TollDNS deployment challenge: type 0x0002, `issuer_name`, no redemption context,
    /// `origin_info` = the deployment name. Tokens bound to it are redeemable at every edge of
    /// the deployment (see `docs/TICKETS.md`, "Redemption context").
    pub fn deployment(issuer_name: &str, deployment: &str) -> Self {
        Self {
            token_type: TOKEN_TYPE_BLIND_RSA,
            issuer_name: issuer_name.as_bytes().to_vec(),
            redemption_context: Vec::new(),
            origin_info: deployment.as_bytes().to_vec(),
        }
    }

    /// Encoded bytes.
    ///
    /// # Errors
    ///
    /// [`DecodeError::BadLength`] when a field is out of its bounds.
    pub fn to_bytes(&self) -> Result<Vec<u8>, DecodeError> {
        let issuer_len = u16::try_from(self.issuer_name.len())
            .ok()
            .filter(|n| *n > 0)
            .ok_or(DecodeError::BadLength {
                field: "issuer_name",
                len: self.issuer_name.len(),
            })?;
        let ctx_len = match self.redemption_context.len() {
            0 => 0u8,
            32 => 32u8,
            len => {
                return Err(DecodeError::BadLength {
                    field: "redemption_context",
                    len,
                });
            }
        };
        let origin_len =
            u16::try_from(self.origin_info.len()).map_err(|_| DecodeError::BadLength {
                field: "origin_info",
                len: self.origin_info.len(),
            })?;
        let mut out = Vec::with_capacity(7 + self.issuer_name.len() + self.origin_info.len() + 32);
        out.extend_from_slice(&self.token_type.to_be_bytes());
        out.extend_from_slice(&issuer_len.to_be_bytes());
        out.extend_from_slice(&self.issuer_name);
        out.push(ctx_len);
        out.extend_from_slice(&self.redemption_context);
        out.extend_from_slice(&origin_len.to_be_bytes());
        out.extend_from_slice(&self.origin_info);
        Ok(out)
    }

    /// Decode.
    ///
    /// # Errors
    ///
    /// A [`DecodeError`] naming what is wrong.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader {
            buf: bytes,
            what: "TokenChallenge",
        };
        let token_type = r.u16()?;
        if token_type != TOKEN_TYPE_BLIND_RSA {
            return Err(DecodeError::UnsupportedTokenType(token_type));
        }
        let n = usize::from(r.u16()?);
        if n == 0 {
            return Err(DecodeError::BadLength {
                field: "issuer_name",
                len: 0,
            });
        }
        let issuer_name = r.take(n)?.to_vec();
        let n = usize::from(r.u8()?);
        if n != 0 && n != 32 {
            return Err(DecodeError::BadLength {
                field: "redemption_context",
                len: n,
            });
        }
        let redemption_context = r.take(n)?.to_vec();
        let n = usize::from(r.u16()?);
        let origin_info = r.take(n)?.to_vec();
        r.finish()?;
        Ok(Self {
            token_type,
            issuer_name,
            redemption_context,
            origin_info,
        })
    }

    /// `SHA256(TokenChallenge)`, the `challenge_digest` of tokens bound to it.
    ///
    /// # Errors
    ///
    /// As [`TokenChallenge::to_bytes`].
    pub fn digest(&self) -> Result<[u8; CHALLENGE_DIGEST_LEN], DecodeError> {
        Ok(Sha256::digest(self.to_bytes()?).into())
    }
}

/// RFC 9578 §6.1 `TokenRequest` of type 0x0002.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRequest {
    /// Last byte of the issuer's token key id.
    pub truncated_token_key_id: u8,
    /// The blinded message (`Nk` bytes).
    pub blinded_msg: Vec<u8>,
}

impl TokenRequest {
    /// Encoded bytes (`application/private-token-request`).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(3 + self.blinded_msg.len());
        out.extend_from_slice(&TOKEN_TYPE_BLIND_RSA.to_be_bytes());
        out.push(self.truncated_token_key_id);
        out.extend_from_slice(&self.blinded_msg);
        out
    }

    /// Decode.
    ///
    /// # Errors
    ///
    /// A [`DecodeError`]; the blinded message must be a supported `Nk` long.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader {
            buf: bytes,
            what: "TokenRequest",
        };
        let token_type = r.u16()?;
        if token_type != TOKEN_TYPE_BLIND_RSA {
            return Err(DecodeError::UnsupportedTokenType(token_type));
        }
        let truncated_token_key_id = r.u8()?;
        let rest = r.buf;
        if !SUPPORTED_NK.contains(&rest.len()) {
            return Err(DecodeError::BadLength {
                field: "blinded_msg",
                len: rest.len(),
            });
        }
        Ok(Self {
            truncated_token_key_id,
            blinded_msg: rest.to_vec(),
        })
    }
}

/// RFC 9578 §6.2 `TokenResponse`: the blind signature (`Nk` bytes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenResponse {
    /// The blind signature.
    pub blind_sig: Vec<u8>,
}

impl TokenResponse {
    /// Encoded bytes (`application/private-token-response`).
    pub fn to_bytes(&self) -> Vec<u8> {
        self.blind_sig.clone()
    }

    /// Decode a response to a request for a key of `nk` bytes.
    ///
    /// # Errors
    ///
    /// [`DecodeError::BadLength`] when it is not `nk` bytes.
    pub fn from_bytes(bytes: &[u8], nk: usize) -> Result<Self, DecodeError> {
        if bytes.len() != nk {
            return Err(DecodeError::BadLength {
                field: "blind_sig",
                len: bytes.len(),
            });
        }
        Ok(Self {
            blind_sig: bytes.to_vec(),
        })
    }
}

/// RFC 9577 §2.2 `Token` of type 0x0002.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Token {
    /// Client nonce.
    pub nonce: [u8; NONCE_LEN],
    /// `SHA256(TokenChallenge)`.
    pub challenge_digest: [u8; CHALLENGE_DIGEST_LEN],
    /// The issuer key's id.
    pub token_key_id: [u8; TOKEN_KEY_ID_LEN],
    /// The RSA signature over [`Token::input`] (`Nk` bytes).
    pub authenticator: Vec<u8>,
}

impl Token {
    /// Token type (always 0x0002).
    pub const fn token_type(&self) -> u16 {
        TOKEN_TYPE_BLIND_RSA
    }

    /// The signed message: `token_type || nonce || challenge_digest || token_key_id`.
    pub fn input(&self) -> [u8; TOKEN_INPUT_LEN] {
        token_input(&self.nonce, &self.challenge_digest, &self.token_key_id)
    }

    /// Encoded bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(TOKEN_INPUT_LEN + self.authenticator.len());
        out.extend_from_slice(&self.input());
        out.extend_from_slice(&self.authenticator);
        out
    }

    /// Decode; the authenticator's length must be a supported `Nk`.
    ///
    /// # Errors
    ///
    /// A [`DecodeError`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader {
            buf: bytes,
            what: "Token",
        };
        let token_type = r.u16()?;
        if token_type != TOKEN_TYPE_BLIND_RSA {
            return Err(DecodeError::UnsupportedTokenType(token_type));
        }
        let nonce = r.array()?;
        let challenge_digest = r.array()?;
        let token_key_id = r.array()?;
        let rest = r.buf;
        if !SUPPORTED_NK.contains(&rest.len()) {
            return Err(DecodeError::BadLength {
                field: "authenticator",
                len: rest.len(),
            });
        }
        Ok(Self {
            nonce,
            challenge_digest,
            token_key_id,
            authenticator: rest.to_vec(),
        })
    }

    /// The ticket id this token puts into receipt leaves ([`ticket_id`] of its bytes).
    pub fn ticket_id(&self) -> [u8; 16] {
        ticket_id(&self.to_bytes())
    }
}

/// `token_type || nonce || challenge_digest || token_key_id`.
pub fn token_input(
    nonce: &[u8; NONCE_LEN],
    challenge_digest: &[u8; CHALLENGE_DIGEST_LEN],
    token_key_id: &[u8; TOKEN_KEY_ID_LEN],
) -> [u8; TOKEN_INPUT_LEN] {
    let mut out = [0u8; TOKEN_INPUT_LEN];
    out[..2].copy_from_slice(&TOKEN_TYPE_BLIND_RSA.to_be_bytes());
    out[2..34].copy_from_slice(nonce);
    out[34..66].copy_from_slice(challenge_digest);
    out[66..].copy_from_slice(token_key_id);
    out
}

/// Domain-separation tag of ticket ids.
pub const TICKET_ID_TAG: &[u8] = b"TOLLDNS-TICKET-V1\0";

/// The 16-byte ticket id that receipt leaves carry for the queries a token paid for:
/// `SHA256("TOLLDNS-TICKET-V1\0" || token)[..16]`, over the token's encoded bytes.
pub fn ticket_id(token_bytes: &[u8]) -> [u8; 16] {
    let digest = Sha256::new()
        .chain_update(TICKET_ID_TAG)
        .chain_update(token_bytes)
        .finalize();
    let mut out = [0u8; 16];
    out.copy_from_slice(&digest[..16]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenge_round_trips_and_rejects_bad_lengths() {
        let c = TokenChallenge::deployment("issuer.example", "tolldns-test");
        let b = c.to_bytes().unwrap();
        assert_eq!(TokenChallenge::from_bytes(&b).unwrap(), c);
        assert_eq!(
            TokenChallenge::from_bytes(&b[..b.len() - 1]),
            Err(DecodeError::Truncated("TokenChallenge"))
        );
        let mut long = b.clone();
        long.push(0);
        assert_eq!(
            TokenChallenge::from_bytes(&long),
            Err(DecodeError::TrailingBytes("TokenChallenge"))
        );
        let mut bad = c;
        bad.redemption_context = vec![1; 5];
        assert!(matches!(
            bad.to_bytes(),
            Err(DecodeError::BadLength {
                field: "redemption_context",
                len: 5
            })
        ));
        let mut other = b;
        other[1] = 1;
        assert_eq!(
            TokenChallenge::from_bytes(&other),
            Err(DecodeError::UnsupportedTokenType(1))
        );
    }

    #[test]
    fn token_round_trips_and_checks_lengths() {
        let t = Token {
            nonce: [1; 32],
            challenge_digest: [2; 32],
            token_key_id: [3; 32],
            authenticator: vec![4; 256],
        };
        let b = t.to_bytes();
        assert_eq!(b.len(), MIN_TOKEN_LEN);
        assert_eq!(Token::from_bytes(&b).unwrap(), t);
        assert!(matches!(
            Token::from_bytes(&b[..b.len() - 1]),
            Err(DecodeError::BadLength {
                field: "authenticator",
                len: 255
            })
        ));
        assert_eq!(
            Token::from_bytes(&b[..50]),
            Err(DecodeError::Truncated("Token"))
        );
        assert_eq!(t.ticket_id(), ticket_id(&b));
    }

    #[test]
    fn ticket_id_is_the_tagged_prefix() {
        // SHA256("TOLLDNS-TICKET-V1\0" || "abc")[..16], computed independently with Python's
        // hashlib: hashlib.sha256(b"TOLLDNS-TICKET-V1\x00abc").hexdigest()[:32].
        assert_eq!(
            hex::encode(ticket_id(b"abc")),
            "14f57752a0b8dea836c43506d3ac8003"
        );
    }
}
