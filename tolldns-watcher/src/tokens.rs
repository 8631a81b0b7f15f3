//! Probe tokens: toll tickets (Privacy Pass tokens, RFC 9578 type 0x0002) the watcher buys
//! from the probe issuer with its wallet, keeps in a file of its data directory, and spends
//! one per probe session.
//!
//! Buying is the issuance `tolldns ticket fetch` runs, through the same client
//! ([`tolldns_service::issuer_client`]): GET the issuer directory, take its first type-2 key,
//! and for each token blind a request bound to `TokenChallenge::deployment(issuer_name,
//! deployment)`, POST it to `/token-request` with the wallet-signed `tolldns-purchase` header,
//! and finalize the blind signature (checked under the key).
//!
//! # File
//!
//! JSON, owner-only (mode 0600), rewritten atomically (a temporary file renamed over the old
//! one, [`tolldns_service::files::replace_private_file`]) after every token bought and every
//! token taken, so a token paid for is never lost and a token handed out is never handed out
//! again:
//!
//! ```json
//! {"issuer_name": "issuer.example", "deployment": "tolldns-local",
//!  "tokens": [{"token": "<base64url, no padding>", "ticket_id": "<32 hex>"}]}
//! ```
//!
//! `ticket_id` is `SHA256("TOLLDNS-TICKET-V1\0" || token)[..16]` ([`tolldns_tickets::ticket_id`]),
//! what receipt leaves carry.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::{URL_SAFE, URL_SAFE_NO_PAD};
use ed25519_dalek::SigningKey;
use serde::{Deserialize, Serialize};
use tolldns_service::files::{FileError, read_private_file, replace_private_file};
use tolldns_service::http::Origin;
use tolldns_service::issuer_client::{IssuerClient, IssuerRefused};
use tolldns_tickets::{TokenChallenge, ticket_id};

/// Longest tokens file read.
const MAX_FILE_LEN: u64 = 64 << 20;

/// Errors of the probe tokens.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TokensError {
    /// The file could not be read or written, or its mode is too open.
    #[error(transparent)]
    File(#[from] FileError),
    /// The file is not a tokens file of this issuer name and deployment.
    #[error("{path}: {reason}")]
    Malformed {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The issuer origin is not `http(s)://host:port`.
    #[error("issuer origin: {0}")]
    Origin(#[from] tolldns_service::http::OriginError),
    /// An `https://` issuer and no TLS roots.
    #[error("{0} is https:// but no TLS roots are configured")]
    NoTlsRoots(String),
    /// The issuer could not be reached or answered nonsense.
    #[error("issuer {origin}: {message}")]
    Issuer {
        /// The issuer.
        origin: String,
        /// What happened.
        message: String,
    },
    /// The issuer answered with a refusal (402: the wallet's quota is used up).
    #[error("issuer {origin}: {message}")]
    Refused {
        /// The issuer.
        origin: String,
        /// The request, the status and the body.
        message: String,
    },
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileForm {
    issuer_name: String,
    deployment: String,
    tokens: Vec<EntryForm>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct EntryForm {
    token: String,
    ticket_id: String,
}

/// A token handed out for a probe session: its bytes and its ticket id.
pub type TakenToken = (Vec<u8>, [u8; 16]);

/// One unspent token.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Entry {
    token: Vec<u8>,
    ticket_id: [u8; 16],
}

/// The watcher's probe tokens (see the module docs).
pub struct ProbeTokens {
    path: PathBuf,
    issuer_name: String,
    deployment: String,
    tls: Option<Arc<rustls::ClientConfig>>,
    timeout: Duration,
    tokens: Mutex<Vec<Entry>>,
}

impl std::fmt::Debug for ProbeTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProbeTokens")
            .field("path", &self.path)
            .field("issuer_name", &self.issuer_name)
            .field("deployment", &self.deployment)
            .field("remaining", &self.remaining())
            .finish_non_exhaustive()
    }
}

fn decode_base64url(text: &str) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD
        .decode(text)
        .or_else(|_| URL_SAFE.decode(text))
        .ok()
}

impl ProbeTokens {
    /// Opens the tokens file `path` (created on the first purchase) for tokens bound to the
    /// challenge of `issuer_name` and `deployment` (as the edges are configured). Issuers are
    /// reached with `tls` roots for `https://`, each exchange bounded by `timeout`.
    ///
    /// # Errors
    ///
    /// [`TokensError::File`] when the file exists but cannot be read or is readable by
    /// others; [`TokensError::Malformed`] when it does not parse, is for another challenge,
    /// or a token's ticket id is wrong.
    pub fn open(
        path: &Path,
        issuer_name: &str,
        deployment: &str,
        tls: Option<Arc<rustls::ClientConfig>>,
        timeout: Duration,
    ) -> Result<Self, TokensError> {
        let malformed = |reason: String| TokensError::Malformed {
            path: path.to_owned(),
            reason,
        };
        let tokens = if path.exists() {
            let bytes = read_private_file(path, MAX_FILE_LEN)?;
            let form: FileForm =
                serde_json::from_slice(&bytes).map_err(|e| malformed(e.to_string()))?;
            if form.issuer_name != issuer_name || form.deployment != deployment {
                return Err(malformed(format!(
                    "tokens for issuer name {:?} and deployment {:?}, not {issuer_name:?} and {deployment:?}",
                    form.issuer_name, form.deployment
                )));
            }
            form.tokens
                .iter()
                .enumerate()
                .map(|(i, e)| {
                    let token = decode_base64url(&e.token)
                        .ok_or_else(|| malformed(format!("tokens[{i}].token: not base64url")))?;
                    let id = ticket_id(&token);
                    if !e.ticket_id.eq_ignore_ascii_case(&hex::encode(id)) {
                        return Err(malformed(format!(
                            "tokens[{i}].ticket_id is not the token's ticket id"
                        )));
                    }
                    Ok(Entry {
                        token,
                        ticket_id: id,
                    })
                })
                .collect::<Result<Vec<_>, _>>()?
        } else {
            Vec::new()
        };
        Ok(Self {
            path: path.to_owned(),
            issuer_name: issuer_name.to_owned(),
            deployment: deployment.to_owned(),
            tls,
            timeout,
            tokens: Mutex::new(tokens),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Entry>> {
        self.tokens
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn save(&self, tokens: &[Entry]) -> Result<(), TokensError> {
        let form = FileForm {
            issuer_name: self.issuer_name.clone(),
            deployment: self.deployment.clone(),
            tokens: tokens
                .iter()
                .map(|e| EntryForm {
                    token: URL_SAFE_NO_PAD.encode(&e.token),
                    ticket_id: hex::encode(e.ticket_id),
                })
                .collect(),
        };
        let mut text = serde_json::to_vec_pretty(&form).unwrap_or_default();
        text.push(b'\n');
        replace_private_file(&self.path, &text)?;
        Ok(())
    }

    /// Unspent tokens.
    pub fn remaining(&self) -> usize {
        self.lock().len()
    }

    /// The token challenge the tokens are bound to.
    pub fn challenge(&self) -> TokenChallenge {
        TokenChallenge::deployment(&self.issuer_name, &self.deployment)
    }

    /// Hands out the oldest unspent token and its ticket id, removing it from the file first
    /// (a token is never handed out twice, across restarts too). `None` when none is left.
    ///
    /// # Errors
    ///
    /// [`TokensError::File`] when the file cannot be rewritten (the token is then kept).
    pub fn take(&self) -> Result<Option<TakenToken>, TokensError> {
        let mut tokens = self.lock();
        if tokens.is_empty() {
            return Ok(None);
        }
        let entry = tokens.remove(0);
        if let Err(e) = self.save(&tokens) {
            tokens.insert(0, entry);
            return Err(e);
        }
        Ok(Some((entry.token, entry.ticket_id)))
    }

    /// Buys `n` tokens from the issuer at `issuer` (an origin), paid by `wallet`'s prepaid
    /// quota, adding each to the file as soon as it is finalized. Returns how many were
    /// bought (all `n` on success).
    ///
    /// # Errors
    ///
    /// [`TokensError::Refused`] when the issuer refuses (tokens bought before are kept),
    /// [`TokensError::Issuer`] when it cannot be reached or answers nonsense,
    /// [`TokensError::File`] when the file cannot be written.
    pub async fn fetch(
        &self,
        issuer: &str,
        wallet: &SigningKey,
        n: u32,
    ) -> Result<u32, TokensError> {
        let origin = Origin::parse(issuer)?;
        if origin.https && self.tls.is_none() {
            return Err(TokensError::NoTlsRoots(origin.to_string()));
        }
        let client = IssuerClient::new(origin, self.tls.clone(), self.timeout);
        let failed = |e: anyhow::Error| match e.downcast::<IssuerRefused>() {
            Ok(r) => TokensError::Refused {
                origin: client.origin().to_string(),
                message: r.to_string(),
            },
            Err(e) => TokensError::Issuer {
                origin: client.origin().to_string(),
                message: format!("{e:#}"),
            },
        };
        let key = client.first_key().await.map_err(failed)?;
        let challenge = self.challenge();
        let mut bought = 0;
        for _ in 0..n {
            let token = client.buy(&key, &challenge, wallet).await.map_err(failed)?;
            let bytes = token.to_bytes();
            let mut tokens = self.lock();
            tokens.push(Entry {
                ticket_id: ticket_id(&bytes),
                token: bytes,
            });
            if let Err(e) = self.save(&tokens) {
                tokens.pop();
                return Err(e);
            }
            bought += 1;
        }
        Ok(bought)
    }
}
