//! Tokens files: the toll tickets (Privacy Pass tokens, RFC 9578 type 0x0002) that
//! `tolldns ticket fetch` buys and `tolldns query --tokens` spends.
//!
//! # Format
//!
//! One JSON object:
//!
//! ```json
//! {
//!   "issuer": "http://127.0.0.1:8080",
//!   "issuer_name": "issuer.example",
//!   "deployment": "tolldns-local",
//!   "token_key": "<base64url of the issuer key's DER SPKI>",
//!   "tokens": [
//!     {"token": "<base64url of the encoded token>", "ticket_id": "<32 hex>"},
//!     {"token": "...", "ticket_id": "...", "used": true}
//!   ]
//! }
//! ```
//!
//! - `issuer` is the origin the tokens were fetched from; `issuer_name` and `deployment` make
//!   the token challenge the tokens are bound to (`TokenChallenge::deployment`).
//! - `token_key` is the directory's `token-key`; every token names its key id
//!   (`SHA256(SPKI)`).
//! - `token` is the token's encoding (`token_type || nonce || challenge_digest ||
//!   token_key_id || authenticator`, 354 bytes for RSA-2048), ready for EDNS option 65002 or
//!   `Authorization: PrivateToken token="…"`. `ticket_id` is
//!   `SHA256("TOLLDNS-TICKET-V1\0" || token)[..16]`, what receipt leaves carry.
//! - `used` (absent means `false`) marks a token an edge already accepted: tokens are single
//!   use.
//!
//! base64url is RFC 4648 §5, written padded like RFC 9577's examples and read padded or not.
//! Unknown fields are refused. Reading checks that every token decodes, names `token_key`,
//! is bound to the challenge of `issuer_name` and `deployment`, and has the `ticket_id` it is
//! listed with.
//!
//! Tokens are bearer credentials: the file is written owner-only (mode `0600`), through a
//! temporary file renamed over the old one (`tolldns_service::files::swap_private_file`), so an
//! interrupted write leaves the old file whole.

use std::path::Path;

use anyhow::Context as _;
use base64::Engine as _;
use base64::engine::general_purpose::{URL_SAFE, URL_SAFE_NO_PAD};
use serde::{Deserialize, Serialize};
use tolldns_tickets::{IssuerPublicKey, Token, TokenChallenge, ticket_id};

use crate::error::CliError;

/// The on-disk form (see the module docs).
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileForm {
    issuer: String,
    issuer_name: String,
    deployment: String,
    token_key: String,
    tokens: Vec<EntryForm>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct EntryForm {
    token: String,
    ticket_id: String,
    #[serde(default, skip_serializing_if = "is_false")]
    used: bool,
}

// serde's `skip_serializing_if` passes a reference.
#[allow(clippy::trivially_copy_pass_by_ref)]
fn is_false(b: &bool) -> bool {
    !*b
}

/// One token of a [`Tokens`] file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredToken {
    /// The encoded token.
    pub bytes: Vec<u8>,
    /// Its ticket id.
    pub ticket_id: [u8; 16],
    /// Whether an edge already accepted it.
    pub used: bool,
}

impl StoredToken {
    /// A fresh (unused) token.
    pub fn new(token: &Token) -> Self {
        let bytes = token.to_bytes();
        Self {
            ticket_id: ticket_id(&bytes),
            bytes,
            used: false,
        }
    }
}

/// A tokens file, checked (see the module docs).
#[derive(Debug, Clone)]
pub struct Tokens {
    /// The origin the tokens were fetched from.
    pub issuer: String,
    /// Issuer name of the token challenge.
    pub issuer_name: String,
    /// Deployment name of the token challenge.
    pub deployment: String,
    /// The issuer key that signed every token.
    pub key: IssuerPublicKey,
    /// The tokens, oldest first.
    pub tokens: Vec<StoredToken>,
}

/// Decodes base64url, padded or not.
pub(crate) fn decode_base64url(text: &str) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD.decode(text.trim_end_matches('=')).ok()
}

impl Tokens {
    /// An empty file for tokens of `key` bound to the deployment challenge.
    pub fn new(
        issuer: String,
        issuer_name: String,
        deployment: String,
        key: IssuerPublicKey,
    ) -> Self {
        Self {
            issuer,
            issuer_name,
            deployment,
            key,
            tokens: Vec::new(),
        }
    }

    /// The challenge every token is bound to.
    pub fn challenge(&self) -> TokenChallenge {
        TokenChallenge::deployment(&self.issuer_name, &self.deployment)
    }

    /// The issuer key id, `SHA256(SPKI)`, in hex.
    pub fn key_id_hex(&self) -> String {
        hex::encode(self.key.key_id())
    }

    /// How many tokens are not marked used.
    pub fn unused(&self) -> usize {
        self.tokens.iter().filter(|t| !t.used).count()
    }

    /// The index of the first token not marked used.
    pub fn next_unused(&self) -> Option<usize> {
        self.tokens.iter().position(|t| !t.used)
    }

    /// Parses and checks a tokens file's text.
    ///
    /// # Errors
    ///
    /// [`CliError::Json`] when it is not JSON of the format (unknown fields included),
    /// [`CliError::BadField`] naming the first field that does not check.
    pub fn from_json(text: &[u8]) -> Result<Self, CliError> {
        let form: FileForm = serde_json::from_slice(text)?;
        let spki = decode_base64url(&form.token_key)
            .ok_or_else(|| CliError::field("token_key", "not base64url"))?;
        let key = IssuerPublicKey::from_spki(&spki)
            .map_err(|e| CliError::field("token_key", format!("not an issuer key: {e}")))?;
        let challenge = TokenChallenge::deployment(&form.issuer_name, &form.deployment);
        let digest = challenge
            .digest()
            .map_err(|e| CliError::field("issuer_name", e.to_string()))?;
        let mut tokens = Vec::with_capacity(form.tokens.len());
        for (i, entry) in form.tokens.into_iter().enumerate() {
            let path = |field: &str| format!("tokens[{i}].{field}");
            let bytes = decode_base64url(&entry.token)
                .ok_or_else(|| CliError::field(path("token"), "not base64url"))?;
            let token = Token::from_bytes(&bytes)
                .map_err(|e| CliError::field(path("token"), format!("not a token: {e}")))?;
            if token.token_key_id != key.key_id() {
                return Err(CliError::field(
                    path("token"),
                    "issued under another key than token_key",
                ));
            }
            if token.challenge_digest != digest {
                return Err(CliError::field(
                    path("token"),
                    "bound to another challenge than issuer_name and deployment",
                ));
            }
            let id = ticket_id(&bytes);
            let mut listed = [0u8; 16];
            hex::decode_to_slice(&entry.ticket_id, &mut listed)
                .map_err(|_| CliError::field(path("ticket_id"), "not 32 hex characters"))?;
            if listed != id {
                return Err(CliError::field(
                    path("ticket_id"),
                    format!("is not the token's ticket id {}", hex::encode(id)),
                ));
            }
            tokens.push(StoredToken {
                bytes,
                ticket_id: id,
                used: entry.used,
            });
        }
        Ok(Self {
            issuer: form.issuer,
            issuer_name: form.issuer_name,
            deployment: form.deployment,
            key,
            tokens,
        })
    }

    /// The file's text: pretty JSON and a final newline.
    pub fn to_json(&self) -> String {
        let form = FileForm {
            issuer: self.issuer.clone(),
            issuer_name: self.issuer_name.clone(),
            deployment: self.deployment.clone(),
            token_key: URL_SAFE.encode(self.key.spki()),
            tokens: self
                .tokens
                .iter()
                .map(|t| EntryForm {
                    token: URL_SAFE.encode(&t.bytes),
                    ticket_id: hex::encode(t.ticket_id),
                    used: t.used,
                })
                .collect(),
        };
        // Strings, booleans and arrays of them always serialize.
        let mut text = serde_json::to_string_pretty(&form).unwrap_or_default();
        text.push('\n');
        text
    }

    /// Reads and checks the tokens file at `path`.
    ///
    /// # Errors
    ///
    /// I/O errors and the errors of [`Tokens::from_json`], naming the file.
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let bytes = crate::read_input_bytes(path, &mut std::io::empty())?;
        Self::from_json(&bytes).with_context(|| format!("tokens file {}", path.display()))
    }

    /// Writes the tokens file at `path`, owner-only, replacing it atomically.
    ///
    /// # Errors
    ///
    /// The I/O error, naming the file.
    pub fn save(&self, path: &Path) -> anyhow::Result<()> {
        tolldns_service::files::swap_private_file(path, self.to_json().as_bytes())
            .context("writing the tokens file")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tolldns_tickets::{IssuerSecretKey, client};

    fn sample() -> Tokens {
        let issuer = IssuerSecretKey::generate(2048).unwrap();
        let mut tokens = Tokens::new(
            "http://127.0.0.1:8080".into(),
            "issuer.example".into(),
            "tolldns-test".into(),
            issuer.public().clone(),
        );
        for _ in 0..2 {
            let (request, pending) = client::request(issuer.public(), &tokens.challenge()).unwrap();
            let response = issuer.issue(&request).unwrap();
            let token = pending.finalize(issuer.public(), &response).unwrap();
            tokens.tokens.push(StoredToken::new(&token));
        }
        tokens
    }

    #[test]
    fn round_trip_and_used_marks() {
        let mut tokens = sample();
        tokens.tokens[0].used = true;
        let text = tokens.to_json();
        assert_eq!(text.matches("\"used\"").count(), 1, "{text}");
        let back = Tokens::from_json(text.as_bytes()).unwrap();
        assert_eq!(back.tokens, tokens.tokens);
        assert_eq!(back.key, tokens.key);
        assert_eq!(back.next_unused(), Some(1));
        assert_eq!(back.unused(), 1);
        assert_eq!(back.to_json(), text);

        // Unpadded base64url reads too.
        let value: serde_json::Value = serde_json::from_str(&text).unwrap();
        let mut unpadded = value.clone();
        let key = unpadded["token_key"]
            .as_str()
            .unwrap()
            .trim_end_matches('=')
            .to_owned();
        unpadded["token_key"] = key.into();
        assert!(Tokens::from_json(unpadded.to_string().as_bytes()).is_ok());

        let reject = |edit: fn(&mut serde_json::Value), want: &str| {
            let mut v = value.clone();
            edit(&mut v);
            let err = Tokens::from_json(v.to_string().as_bytes())
                .unwrap_err()
                .to_string();
            assert!(err.contains(want), "{err} lacks {want}");
        };
        reject(|v| v["extra"] = 1.into(), "unknown field");
        reject(
            |v| v["deployment"] = "other".into(),
            "tokens[0].token: bound to another challenge",
        );
        reject(
            |v| v["tokens"][1]["ticket_id"] = "00".repeat(16).into(),
            "tokens[1].ticket_id: is not",
        );
        reject(
            |v| v["tokens"][1]["token"] = "AAAA".into(),
            "tokens[1].token: not a token",
        );
        reject(
            |v| v["token_key"] = "***".into(),
            "token_key: not base64url",
        );
    }
}
