//! Issuer keys: RSA (2048 bits for interoperable type-0x0002 tokens; 3072 and 4096 accepted),
//! RSASSA-PSS with SHA-384 and a 48-byte salt, deterministic message preparation (RFC 9474
//! `RSABSSA-SHA384-PSS-Deterministic`, as RFC 9578 §6 requires).

use std::fmt;

use blind_rsa_signatures::{Deterministic, PSS, Sha384};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::codec::{SUPPORTED_NK, TOKEN_KEY_ID_LEN, Token, TokenRequest, TokenResponse};

pub(crate) type RsaPublic = blind_rsa_signatures::PublicKey<Sha384, PSS, Deterministic>;
pub(crate) type RsaSecret = blind_rsa_signatures::SecretKey<Sha384, PSS, Deterministic>;
type RsaKeyPair = blind_rsa_signatures::KeyPair<Sha384, PSS, Deterministic>;

/// A key could not be made, read or used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// A modulus size this crate does not use.
    #[error("unsupported RSA modulus of {0} bits (use 2048, 3072 or 4096)")]
    UnsupportedSize(usize),
    /// The public key is not an RSASSA-PSS SPKI with SHA-384, MGF1-SHA-384 and a 48-byte salt
    /// (RFC 9578 §6.5), or not in its canonical encoding.
    #[error("public key is not a canonical RSASSA-PSS (SHA-384, salt 48) SubjectPublicKeyInfo")]
    BadPublicKey,
    /// The secret key PEM could not be read.
    #[error("secret key is not a PKCS#8 or PKCS#1 RSA private key in PEM")]
    BadSecretKey,
    /// The RSA library failed.
    #[error("RSA operation failed: {0}")]
    Rsa(String),
}

/// A token request could not be signed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IssueError {
    /// The request names another key (its truncated key id differs).
    #[error("token request is for key id byte {got:#04x}, this issuer's key has {want:#04x}")]
    WrongKey {
        /// The request's truncated key id.
        got: u8,
        /// This key's.
        want: u8,
    },
    /// The blinded message is not `Nk` bytes or not below the modulus.
    #[error("blinded message is malformed for this key")]
    BadBlindedMessage,
}

/// An issuer's public key, with its id (`SHA256` of its SPKI encoding, RFC 9578 §6.5).
#[derive(Clone, PartialEq, Eq)]
pub struct IssuerPublicKey {
    rsa: RsaPublic,
    spki: Vec<u8>,
    key_id: [u8; TOKEN_KEY_ID_LEN],
    nk: usize,
}

impl fmt::Debug for IssuerPublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IssuerPublicKey")
            .field("key_id", &hex::encode(self.key_id))
            .field("bits", &(self.nk * 8))
            .finish()
    }
}

impl IssuerPublicKey {
    fn from_rsa(rsa: RsaPublic) -> Result<Self, KeyError> {
        let spki = rsa.to_spki().map_err(|e| KeyError::Rsa(e.to_string()))?;
        let nk = rsa.components().n().len();
        if !SUPPORTED_NK.contains(&nk) {
            return Err(KeyError::UnsupportedSize(nk * 8));
        }
        let key_id = Sha256::digest(&spki).into();
        Ok(Self {
            rsa,
            spki,
            key_id,
            nk,
        })
    }

    /// Read the DER `SubjectPublicKeyInfo` with the `id-RSASSA-PSS` algorithm (the
    /// `token-key` of an issuer directory). Only the canonical encoding is accepted, so that
    /// one key has one id.
    ///
    /// # Errors
    ///
    /// [`KeyError::BadPublicKey`] or [`KeyError::UnsupportedSize`].
    pub fn from_spki(spki: &[u8]) -> Result<Self, KeyError> {
        let rsa = RsaPublic::from_spki(spki).map_err(|_| KeyError::BadPublicKey)?;
        let key = Self::from_rsa(rsa)?;
        if key.spki != spki {
            return Err(KeyError::BadPublicKey);
        }
        Ok(key)
    }

    /// The DER SPKI encoding.
    pub fn spki(&self) -> &[u8] {
        &self.spki
    }

    /// `SHA256(spki)`.
    pub const fn key_id(&self) -> [u8; TOKEN_KEY_ID_LEN] {
        self.key_id
    }

    /// The last byte of the key id (what token requests carry).
    pub const fn truncated_key_id(&self) -> u8 {
        self.key_id[TOKEN_KEY_ID_LEN - 1]
    }

    /// Signature length in bytes (`Nk`).
    pub const fn nk(&self) -> usize {
        self.nk
    }

    pub(crate) const fn rsa(&self) -> &RsaPublic {
        &self.rsa
    }

    /// Whether a token's signature verifies under this key: it names this key, its
    /// authenticator is `Nk` bytes, and RSASSA-PSS verification of [`Token::input`] succeeds.
    /// The challenge digest is the caller's to check (see [`crate::TokenVerifier`], which
    /// also checks the key's validity).
    pub fn verify_signature(&self, token: &Token) -> bool {
        if token.token_key_id != self.key_id || token.authenticator.len() != self.nk {
            return false;
        }
        let sig = blind_rsa_signatures::Signature(token.authenticator.clone());
        self.rsa.verify(&sig, None, token.input()).is_ok()
    }
}

/// An issuer's secret key.
#[derive(Clone)]
pub struct IssuerSecretKey {
    rsa: RsaSecret,
    public: IssuerPublicKey,
}

impl fmt::Debug for IssuerSecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IssuerSecretKey")
            .field("public", &self.public)
            .finish_non_exhaustive()
    }
}

impl IssuerSecretKey {
    /// Generate a key of `bits` (2048 for interoperable type-0x0002 tokens).
    ///
    /// # Errors
    ///
    /// [`KeyError::UnsupportedSize`] for other sizes than 2048, 3072 and 4096.
    pub fn generate(bits: usize) -> Result<Self, KeyError> {
        if !SUPPORTED_NK.contains(&(bits / 8)) || bits % 8 != 0 {
            return Err(KeyError::UnsupportedSize(bits));
        }
        let kp = RsaKeyPair::generate(&mut blind_rsa_signatures::DefaultRng, bits)
            .map_err(|e| KeyError::Rsa(e.to_string()))?;
        Self::from_rsa(kp.sk)
    }

    fn from_rsa(rsa: RsaSecret) -> Result<Self, KeyError> {
        let public =
            IssuerPublicKey::from_rsa(rsa.public_key().map_err(|e| KeyError::Rsa(e.to_string()))?)?;
        Ok(Self { rsa, public })
    }

    /// Read a PKCS#8 (or PKCS#1) PEM private key.
    ///
    /// # Errors
    ///
    /// [`KeyError::BadSecretKey`], or [`KeyError::UnsupportedSize`].
    pub fn from_pem(pem: &str) -> Result<Self, KeyError> {
        let rsa = RsaSecret::from_pem(pem).map_err(|_| KeyError::BadSecretKey)?;
        Self::from_rsa(rsa)
    }

    /// The PKCS#8 PEM text (wiped from memory when dropped).
    ///
    /// # Errors
    ///
    /// [`KeyError::Rsa`] when encoding fails.
    pub fn to_pem(&self) -> Result<Zeroizing<String>, KeyError> {
        self.rsa
            .to_pem()
            .map(Zeroizing::new)
            .map_err(|e| KeyError::Rsa(e.to_string()))
    }

    /// The public key.
    pub const fn public(&self) -> &IssuerPublicKey {
        &self.public
    }

    /// Sign a token request (RFC 9578 §6.2): the blind signature of its blinded message. The
    /// RSA library checks its own result before returning it (no faulty signature leaks the
    /// key).
    ///
    /// # Errors
    ///
    /// [`IssueError`] when the request is for another key or malformed.
    pub fn issue(&self, request: &TokenRequest) -> Result<TokenResponse, IssueError> {
        if request.truncated_token_key_id != self.public.truncated_key_id() {
            return Err(IssueError::WrongKey {
                got: request.truncated_token_key_id,
                want: self.public.truncated_key_id(),
            });
        }
        if request.blinded_msg.len() != self.public.nk {
            return Err(IssueError::BadBlindedMessage);
        }
        let sig = self
            .rsa
            .blind_sign(&request.blinded_msg)
            .map_err(|_| IssueError::BadBlindedMessage)?;
        Ok(TokenResponse { blind_sig: sig.0 })
    }
}
