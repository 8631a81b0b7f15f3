//! Auditor requests to a miner's audit API: the signed `Authorization` header every audit
//! endpoint requires, and the HPKE (RFC 9180) envelope a name key travels in.
//!
//! # Request signature
//!
//! ```text
//! Authorization: TollDNS-Auditor key=<base58 ed25519>, ts=<unix ms>, nonce=<32 hex>, sig=<base58>
//! ```
//!
//! `sig` is ed25519 (strict) by the auditor over
//! `"TOLLDNS-AUDIT-REQUEST-V1\0" || operator_pubkey (32) || u64_le(ts) || nonce (16) ||
//! method || 0x00 || path_and_query`. The operator key binds the request to one miner, the
//! path and query to one question, the timestamp and nonce make it single-use: a miner refuses
//! a timestamp further than its `api.max_request_age_secs` from its clock and a nonce it has
//! seen within that time.
//!
//! # Name key envelope
//!
//! `DHKEM(X25519, HKDF-SHA256)`, `HKDF-SHA256`, `ChaCha20Poly1305`, base mode. The recipient
//! key is the auditor's ed25519 key in Montgomery form (its X25519 secret is the signing key's
//! scalar, [`ed25519_dalek::SigningKey::to_scalar_bytes`]); `info =
//! "TOLLDNS-NAMEKEY-HPKE-V1\0" || operator_pubkey || u64_le(epoch)`; `aad` = the request's
//! nonce; the plaintext is the 32-byte name key.

use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};
use hpke::aead::ChaCha20Poly1305;
use hpke::kdf::HkdfSha256;
use hpke::kem::X25519HkdfSha256;
use hpke::{Deserializable as _, OpModeR, OpModeS, Serializable as _};

/// Domain-separation tag of an audit request signature.
pub const AUDIT_REQUEST_TAG: &[u8] = b"TOLLDNS-AUDIT-REQUEST-V1\0";
/// Domain-separation tag of the HPKE `info` for name keys.
pub const NAME_KEY_HPKE_TAG: &[u8] = b"TOLLDNS-NAMEKEY-HPKE-V1\0";
/// The HPKE suite, as the API names it.
pub const NAME_KEY_HPKE_SUITE: &str = "DHKEM(X25519,HKDF-SHA256)/HKDF-SHA256/ChaCha20Poly1305";
/// The `Authorization` scheme.
pub const SCHEME: &str = "TollDNS-Auditor";

/// A parsed `Authorization: TollDNS-Auditor …` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditorAuth {
    /// The auditor's key.
    pub key: VerifyingKey,
    /// Its clock when signing (unix ms).
    pub timestamp_ms: u64,
    /// A fresh random value.
    pub nonce: [u8; 16],
    /// The signature.
    pub signature: Signature,
}

/// Why an `Authorization` header was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    /// No header, another scheme, or a malformed parameter list.
    #[error("expected `Authorization: TollDNS-Auditor key=…, ts=…, nonce=…, sig=…`")]
    Malformed,
    /// The key is not an ed25519 public key.
    #[error("auditor key is not a valid ed25519 public key")]
    BadKey,
    /// The signature does not verify.
    #[error("auditor signature does not verify")]
    BadSignature,
}

/// The bytes an auditor signs for one request.
pub fn request_message(
    operator: &[u8; 32],
    timestamp_ms: u64,
    nonce: &[u8; 16],
    method: &str,
    path_and_query: &str,
) -> Vec<u8> {
    let mut m = Vec::with_capacity(
        AUDIT_REQUEST_TAG
            .len()
            .saturating_add(58)
            .saturating_add(method.len())
            .saturating_add(path_and_query.len()),
    );
    m.extend_from_slice(AUDIT_REQUEST_TAG);
    m.extend_from_slice(operator);
    m.extend_from_slice(&timestamp_ms.to_le_bytes());
    m.extend_from_slice(nonce);
    m.extend_from_slice(method.as_bytes());
    m.push(0);
    m.extend_from_slice(path_and_query.as_bytes());
    m
}

/// The `Authorization` header value for one request.
pub fn authorization(
    auditor: &SigningKey,
    operator: &[u8; 32],
    timestamp_ms: u64,
    nonce: &[u8; 16],
    method: &str,
    path_and_query: &str,
) -> String {
    let sig = auditor.sign(&request_message(
        operator,
        timestamp_ms,
        nonce,
        method,
        path_and_query,
    ));
    format!(
        "{SCHEME} key={}, ts={timestamp_ms}, nonce={}, sig={}",
        bs58::encode(auditor.verifying_key().as_bytes()).into_string(),
        hex::encode(nonce),
        bs58::encode(sig.to_bytes()).into_string()
    )
}

/// Parse an `Authorization` header value (the signature is not checked yet).
///
/// # Errors
///
/// [`AuthError::Malformed`] or [`AuthError::BadKey`].
pub fn parse_authorization(value: &str) -> Result<AuditorAuth, AuthError> {
    let rest = value
        .strip_prefix(SCHEME)
        .and_then(|r| r.strip_prefix(' '))
        .ok_or(AuthError::Malformed)?;
    let (mut key, mut ts, mut nonce, mut sig) = (None, None, None, None);
    for part in rest.split(',') {
        let (k, v) = part.trim().split_once('=').ok_or(AuthError::Malformed)?;
        let slot = match k {
            "key" => &mut key,
            "ts" => &mut ts,
            "nonce" => &mut nonce,
            "sig" => &mut sig,
            _ => return Err(AuthError::Malformed),
        };
        if slot.replace(v).is_some() {
            return Err(AuthError::Malformed);
        }
    }
    let (Some(key), Some(ts), Some(nonce), Some(sig)) = (key, ts, nonce, sig) else {
        return Err(AuthError::Malformed);
    };
    let key_bytes: [u8; 32] = bs58::decode(key)
        .into_vec()
        .ok()
        .and_then(|v| v.try_into().ok())
        .ok_or(AuthError::BadKey)?;
    let key = VerifyingKey::from_bytes(&key_bytes).map_err(|_| AuthError::BadKey)?;
    if key.is_weak() {
        return Err(AuthError::BadKey);
    }
    let timestamp_ms = ts.parse().map_err(|_| AuthError::Malformed)?;
    let mut n = [0u8; 16];
    hex::decode_to_slice(nonce, &mut n).map_err(|_| AuthError::Malformed)?;
    let sig: [u8; 64] = bs58::decode(sig)
        .into_vec()
        .ok()
        .and_then(|v| v.try_into().ok())
        .ok_or(AuthError::Malformed)?;
    Ok(AuditorAuth {
        key,
        timestamp_ms,
        nonce: n,
        signature: Signature::from_bytes(&sig),
    })
}

impl AuditorAuth {
    /// Check the signature for this request.
    ///
    /// # Errors
    ///
    /// [`AuthError::BadSignature`].
    pub fn verify(
        &self,
        operator: &[u8; 32],
        method: &str,
        path_and_query: &str,
    ) -> Result<(), AuthError> {
        let m = request_message(
            operator,
            self.timestamp_ms,
            &self.nonce,
            method,
            path_and_query,
        );
        self.key
            .verify_strict(&m, &self.signature)
            .map_err(|_| AuthError::BadSignature)
    }
}

/// Why a name key could not be sealed or opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EnvelopeError {
    /// The auditor key has no usable X25519 form, or HPKE failed.
    #[error("HPKE failed")]
    Hpke,
    /// The ciphertext does not open (wrong key, nonce, epoch or operator, or tampered).
    #[error("the name key envelope does not open")]
    Open,
    /// The plaintext is not 32 bytes.
    #[error("the name key envelope holds no 32-byte key")]
    Length,
}

fn info(operator: &[u8; 32], epoch: u64) -> Vec<u8> {
    let mut i = NAME_KEY_HPKE_TAG.to_vec();
    i.extend_from_slice(operator);
    i.extend_from_slice(&epoch.to_le_bytes());
    i
}

/// Encrypt `name_key` to `auditor` (see the module docs). Returns `(enc, ciphertext)`.
///
/// # Errors
///
/// [`EnvelopeError::Hpke`].
pub fn seal_name_key(
    auditor: &VerifyingKey,
    operator: &[u8; 32],
    epoch: u64,
    nonce: &[u8; 16],
    name_key: &[u8; 32],
) -> Result<([u8; 32], Vec<u8>), EnvelopeError> {
    let montgomery = auditor.to_montgomery().to_bytes();
    let pk = <X25519HkdfSha256 as hpke::Kem>::PublicKey::from_bytes(&montgomery)
        .map_err(|_| EnvelopeError::Hpke)?;
    let mut rng = rand_core_09::UnwrapErr(rand_core_09::OsRng);
    let (enc, ct) = hpke::single_shot_seal::<ChaCha20Poly1305, HkdfSha256, X25519HkdfSha256, _>(
        &OpModeS::Base,
        &pk,
        &info(operator, epoch),
        name_key,
        nonce,
        &mut rng,
    )
    .map_err(|_| EnvelopeError::Hpke)?;
    let enc: [u8; 32] = enc
        .to_bytes()
        .as_slice()
        .try_into()
        .map_err(|_| EnvelopeError::Hpke)?;
    Ok((enc, ct))
}

/// Decrypt a name key sealed to `auditor` by [`seal_name_key`].
///
/// # Errors
///
/// [`EnvelopeError::Open`] or [`EnvelopeError::Length`].
pub fn open_name_key(
    auditor: &SigningKey,
    operator: &[u8; 32],
    epoch: u64,
    nonce: &[u8; 16],
    enc: &[u8; 32],
    ciphertext: &[u8],
) -> Result<[u8; 32], EnvelopeError> {
    let sk = <X25519HkdfSha256 as hpke::Kem>::PrivateKey::from_bytes(&auditor.to_scalar_bytes())
        .map_err(|_| EnvelopeError::Hpke)?;
    let enc = <X25519HkdfSha256 as hpke::Kem>::EncappedKey::from_bytes(enc)
        .map_err(|_| EnvelopeError::Open)?;
    let pt = hpke::single_shot_open::<ChaCha20Poly1305, HkdfSha256, X25519HkdfSha256>(
        &OpModeR::Base,
        &sk,
        &enc,
        &info(operator, epoch),
        ciphertext,
        nonce,
    )
    .map_err(|_| EnvelopeError::Open)?;
    pt.as_slice().try_into().map_err(|_| EnvelopeError::Length)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signed_requests_verify_only_for_their_request() {
        let auditor = SigningKey::from_bytes(&[4; 32]);
        let operator = [7u8; 32];
        let h = authorization(&auditor, &operator, 1_000, &[1; 16], "GET", "/v1/x?a=1");
        let a = parse_authorization(&h).unwrap();
        assert_eq!(a.key, auditor.verifying_key());
        assert_eq!((a.timestamp_ms, a.nonce), (1_000, [1; 16]));
        assert_eq!(a.verify(&operator, "GET", "/v1/x?a=1"), Ok(()));
        assert_eq!(
            a.verify(&operator, "GET", "/v1/x?a=2"),
            Err(AuthError::BadSignature)
        );
        assert_eq!(
            a.verify(&[8; 32], "GET", "/v1/x?a=1"),
            Err(AuthError::BadSignature)
        );
        assert_eq!(parse_authorization("Bearer x"), Err(AuthError::Malformed));
        assert_eq!(
            parse_authorization(&format!("{h}, key=1")),
            Err(AuthError::Malformed)
        );
    }

    #[test]
    fn name_key_envelope_opens_only_for_its_auditor_and_context() {
        let auditor = SigningKey::from_bytes(&[5; 32]);
        let operator = [9u8; 32];
        let key = [0x42u8; 32];
        let (enc, ct) =
            seal_name_key(&auditor.verifying_key(), &operator, 3, &[2; 16], &key).unwrap();
        assert_ne!(ct.as_slice(), key.as_slice());
        assert_eq!(
            open_name_key(&auditor, &operator, 3, &[2; 16], &enc, &ct),
            Ok(key)
        );
        let other = SigningKey::from_bytes(&[6; 32]);
        assert_eq!(
            open_name_key(&other, &operator, 3, &[2; 16], &enc, &ct),
            Err(EnvelopeError::Open)
        );
        assert_eq!(
            open_name_key(&auditor, &operator, 4, &[2; 16], &enc, &ct),
            Err(EnvelopeError::Open)
        );
        assert_eq!(
            open_name_key(&auditor, &operator, 3, &[3; 16], &enc, &ct),
            Err(EnvelopeError::Open)
        );
    }
}
