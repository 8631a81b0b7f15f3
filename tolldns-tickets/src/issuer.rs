//! The issuer's side of RFC 9578 over HTTP, as framework-free handlers: the issuer directory
//! (§4, `GET /.well-known/private-token-issuer-directory`) and issuance (§5–6,
//! `POST` of an `application/private-token-request`), gated by a [`PaymentCheck`].
//!
//! A buyer proves which prepaid quota an issuance draws on with the
//! [`PURCHASE_HEADER`]: its ed25519 wallet key and a signature over
//! `"TOLLDNS-ISSUE-V1\0" || SHA256(request body)`. The issuer learns that this buyer asked for
//! one more token; blinding keeps it from learning which token it signed.

use std::fmt;
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE;
use ed25519_dalek::{Signature, VerifyingKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::codec::{TOKEN_TYPE_BLIND_RSA, TokenRequest};
use crate::key::{IssueError, IssuerPublicKey, IssuerSecretKey};

/// Path of the issuer directory (RFC 9578 §4).
pub const DIRECTORY_PATH: &str = "/.well-known/private-token-issuer-directory";
/// Media type of the issuer directory.
pub const DIRECTORY_MEDIA_TYPE: &str = "application/private-token-issuer-directory";
/// Media type of token requests.
pub const REQUEST_MEDIA_TYPE: &str = "application/private-token-request";
/// Media type of token responses.
pub const RESPONSE_MEDIA_TYPE: &str = "application/private-token-response";
/// Path of the issuance endpoint the TollDNS issuer serves.
pub const ISSUE_PATH: &str = "/token-request";
/// Header naming the buyer and signing the request: `key="<base58 wallet key>", sig="<base58
/// ed25519 signature>"`.
pub const PURCHASE_HEADER: &str = "tolldns-purchase";
/// Domain-separation tag of purchase signatures.
pub const PURCHASE_SIGNING_TAG: &[u8] = b"TOLLDNS-ISSUE-V1\0";

/// Why a payment check refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PaymentError {
    /// The buyer bought no tickets.
    #[error("no ticket purchase for this buyer")]
    NoPurchase,
    /// The buyer's quota is used up.
    #[error("the buyer's ticket quota is used up")]
    Exhausted,
    /// The payment record could not be read or written (retry later).
    #[error("payment records unavailable: {0}")]
    Unavailable(String),
}

/// Decides whether a buyer may have more tokens. The real implementation reads the ticket
/// purchases recorded on chain; the issuer binary also ships a prepaid ledger for operators
/// who sell tickets off chain.
pub trait PaymentCheck: Send + Sync + 'static {
    /// Take `tokens` from `buyer`'s remaining quota.
    ///
    /// # Errors
    ///
    /// A [`PaymentError`]; nothing is taken then.
    fn debit(&self, buyer: &[u8; 32], tokens: u32) -> Result<(), PaymentError>;

    /// Give back `tokens` taken by a [`PaymentCheck::debit`] whose issuance then failed.
    fn refund(&self, buyer: &[u8; 32], tokens: u32);
}

/// One key of the directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DirectoryKey {
    /// Token type (2).
    #[serde(rename = "token-type")]
    pub token_type: u16,
    /// base64url of the key's SPKI.
    #[serde(rename = "token-key")]
    pub token_key: String,
    /// Unix second from which the key is used.
    #[serde(
        rename = "not-before",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub not_before: Option<u64>,
}

/// The issuer directory (RFC 9578 §4).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IssuerDirectory {
    /// Where token requests are POSTed.
    #[serde(rename = "issuer-request-uri")]
    pub issuer_request_uri: String,
    /// The keys, newest first.
    #[serde(rename = "token-keys")]
    pub token_keys: Vec<DirectoryKey>,
}

impl IssuerDirectory {
    /// Parse a directory.
    ///
    /// # Errors
    ///
    /// When the JSON does not parse.
    pub fn from_json(bytes: &[u8]) -> Result<Self, serde_json::Error> {
        serde_json::from_slice(bytes)
    }

    /// The type-0x0002 keys that decode, with their `not-before`.
    pub fn keys(&self) -> Vec<(IssuerPublicKey, Option<u64>)> {
        self.token_keys
            .iter()
            .filter(|k| k.token_type == TOKEN_TYPE_BLIND_RSA)
            .filter_map(|k| {
                let spki = URL_SAFE
                    .decode(k.token_key.trim_end_matches('='))
                    .or_else(|_| {
                        base64::engine::general_purpose::URL_SAFE_NO_PAD
                            .decode(k.token_key.trim_end_matches('='))
                    })
                    .ok()?;
                Some((IssuerPublicKey::from_spki(&spki).ok()?, k.not_before))
            })
            .collect()
    }
}

/// An HTTP answer of the handlers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpAnswer {
    /// Status code.
    pub status: u16,
    /// `Content-Type`.
    pub content_type: &'static str,
    /// Body.
    pub body: Vec<u8>,
}

impl HttpAnswer {
    fn error(status: u16, message: impl fmt::Display) -> Self {
        Self {
            status,
            content_type: "text/plain; charset=utf-8",
            body: format!("{message}\n").into_bytes(),
        }
    }
}

/// An issuance refusal (each maps to an HTTP status).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IssuanceError {
    /// Wrong `Content-Type`.
    #[error("Content-Type must be {REQUEST_MEDIA_TYPE}")]
    MediaType,
    /// The body is not a token request.
    #[error("malformed token request: {0}")]
    Malformed(#[from] crate::DecodeError),
    /// No key of this issuer matches the request.
    #[error(transparent)]
    Key(#[from] IssueError),
    /// The purchase header is missing or does not verify.
    #[error("missing or invalid {PURCHASE_HEADER} header: {0}")]
    Purchase(&'static str),
    /// The payment check refused.
    #[error(transparent)]
    Payment(#[from] PaymentError),
}

impl IssuanceError {
    /// The HTTP status: 415, 400, 401, 402 (no purchase or quota used up) or 503 (payment
    /// records unavailable: retry).
    pub const fn status(&self) -> u16 {
        match self {
            Self::MediaType => 415,
            Self::Malformed(_) | Self::Key(_) => 400,
            Self::Purchase(_) => 401,
            Self::Payment(PaymentError::Unavailable(_)) => 503,
            Self::Payment(_) => 402,
        }
    }
}

/// One signing key of the issuer with its directory entry.
#[derive(Debug, Clone)]
pub struct IssuingKey {
    /// The key.
    pub key: IssuerSecretKey,
    /// Unix second from which it is published.
    pub not_before: u64,
}

/// The issuer service: directory and issuance.
pub struct IssuerService {
    keys: Vec<IssuingKey>,
    request_uri: String,
    payments: Arc<dyn PaymentCheck>,
}

impl fmt::Debug for IssuerService {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IssuerService")
            .field("keys", &self.keys)
            .field("request_uri", &self.request_uri)
            .finish_non_exhaustive()
    }
}

/// The `tolldns-purchase` header value for a request `body`, signed by the buyer's wallet key.
pub fn purchase_header(wallet: &ed25519_dalek::SigningKey, body: &[u8]) -> String {
    use ed25519_dalek::Signer as _;
    let sig = wallet.sign(&purchase_message(body));
    format!(
        "key=\"{}\", sig=\"{}\"",
        bs58::encode(wallet.verifying_key().as_bytes()).into_string(),
        bs58::encode(sig.to_bytes()).into_string()
    )
}

fn purchase_message(body: &[u8]) -> Vec<u8> {
    let mut m = PURCHASE_SIGNING_TAG.to_vec();
    m.extend_from_slice(&Sha256::digest(body));
    m
}

fn parse_purchase(value: &str, body: &[u8]) -> Result<[u8; 32], IssuanceError> {
    let mut key = None;
    let mut sig = None;
    for part in value.split(',') {
        let Some((k, v)) = part.trim().split_once('=') else {
            return Err(IssuanceError::Purchase("expected key=\"…\", sig=\"…\""));
        };
        let v = v.trim().trim_matches('"');
        match k.trim() {
            "key" => key = Some(v),
            "sig" => sig = Some(v),
            _ => {}
        }
    }
    let key = key.ok_or(IssuanceError::Purchase("no key"))?;
    let sig = sig.ok_or(IssuanceError::Purchase("no sig"))?;
    let mut key_bytes = [0u8; 32];
    let n = bs58::decode(key)
        .onto(&mut key_bytes)
        .map_err(|_| IssuanceError::Purchase("key is not a base58 ed25519 public key"))?;
    if n != 32 {
        return Err(IssuanceError::Purchase(
            "key is not a base58 ed25519 public key",
        ));
    }
    let mut sig_bytes = [0u8; 64];
    let n = bs58::decode(sig)
        .onto(&mut sig_bytes)
        .map_err(|_| IssuanceError::Purchase("sig is not a base58 ed25519 signature"))?;
    if n != 64 {
        return Err(IssuanceError::Purchase(
            "sig is not a base58 ed25519 signature",
        ));
    }
    let vk = VerifyingKey::from_bytes(&key_bytes)
        .map_err(|_| IssuanceError::Purchase("key is not a valid ed25519 point"))?;
    vk.verify_strict(&purchase_message(body), &Signature::from_bytes(&sig_bytes))
        .map_err(|_| IssuanceError::Purchase("signature does not verify"))?;
    Ok(key_bytes)
}

impl IssuerService {
    /// A service signing with `keys` (the first is the current one; others are still
    /// published so that their tokens verify), publishing `request_uri` as its issuance
    /// endpoint, gated by `payments`.
    ///
    /// # Panics
    ///
    /// When `keys` is empty.
    pub fn new(
        keys: Vec<IssuingKey>,
        request_uri: String,
        payments: Arc<dyn PaymentCheck>,
    ) -> Self {
        assert!(!keys.is_empty(), "an issuer needs at least one key");
        Self {
            keys,
            request_uri,
            payments,
        }
    }

    /// The directory.
    pub fn directory(&self) -> IssuerDirectory {
        IssuerDirectory {
            issuer_request_uri: self.request_uri.clone(),
            token_keys: self
                .keys
                .iter()
                .map(|k| DirectoryKey {
                    token_type: TOKEN_TYPE_BLIND_RSA,
                    token_key: URL_SAFE.encode(k.key.public().spki()),
                    not_before: Some(k.not_before),
                })
                .collect(),
        }
    }

    /// `GET` of the directory.
    pub fn handle_directory(&self) -> HttpAnswer {
        match serde_json::to_vec(&self.directory()) {
            Ok(body) => HttpAnswer {
                status: 200,
                content_type: DIRECTORY_MEDIA_TYPE,
                body,
            },
            Err(e) => HttpAnswer::error(500, e),
        }
    }

    /// Issue one token for a request `body` of `content_type`, paid by the buyer the
    /// `purchase` header names.
    ///
    /// # Errors
    ///
    /// An [`IssuanceError`]; nothing is debited then.
    pub fn issue(
        &self,
        content_type: Option<&str>,
        purchase: Option<&str>,
        body: &[u8],
    ) -> Result<Vec<u8>, IssuanceError> {
        let media = content_type
            .and_then(|c| c.split(';').next())
            .map(str::trim);
        if !media.is_some_and(|m| m.eq_ignore_ascii_case(REQUEST_MEDIA_TYPE)) {
            return Err(IssuanceError::MediaType);
        }
        let request = TokenRequest::from_bytes(body)?;
        let key = self
            .keys
            .iter()
            .find(|k| k.key.public().truncated_key_id() == request.truncated_token_key_id)
            .ok_or(IssueError::WrongKey {
                got: request.truncated_token_key_id,
                want: self.keys[0].key.public().truncated_key_id(),
            })?;
        if request.blinded_msg.len() != key.key.public().nk() {
            return Err(IssueError::BadBlindedMessage.into());
        }
        let buyer = parse_purchase(
            purchase.ok_or(IssuanceError::Purchase("header missing"))?,
            body,
        )?;
        self.payments.debit(&buyer, 1)?;
        match key.key.issue(&request) {
            Ok(response) => Ok(response.to_bytes()),
            Err(e) => {
                self.payments.refund(&buyer, 1);
                Err(e.into())
            }
        }
    }

    /// [`IssuerService::issue`] as an HTTP answer.
    pub fn handle_issue(
        &self,
        content_type: Option<&str>,
        purchase: Option<&str>,
        body: &[u8],
    ) -> HttpAnswer {
        match self.issue(content_type, purchase, body) {
            Ok(body) => HttpAnswer {
                status: 200,
                content_type: RESPONSE_MEDIA_TYPE,
                body,
            },
            Err(e) => HttpAnswer::error(e.status(), e),
        }
    }
}
