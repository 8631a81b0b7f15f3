//! A client of a toll-ticket issuer: the RFC 9578 issuance `tolldns ticket fetch` and the
//! watcher's probe tokens both run. [`IssuerClient::first_key`] GETs the issuer directory
//! (`/.well-known/private-token-issuer-directory`) and takes its first token-type 2 key;
//! [`IssuerClient::buy`] blinds a token request bound to a challenge, POSTs it to
//! `/token-request` with the `tolldns-purchase` header signed by the wallet, and finalizes
//! the blind signature (checked under the key). The RFC 9578 framing is `tolldns_tickets`';
//! the exchange is [`crate::http`]'s.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use base64::Engine as _;
use base64::engine::general_purpose::{URL_SAFE, URL_SAFE_NO_PAD};
use bytes::Bytes;
use http::{Method, Request, StatusCode, header};
use http_body_util::Full;
use tolldns_tickets::{
    DIRECTORY_MEDIA_TYPE, DIRECTORY_PATH, ISSUE_PATH, IssuerDirectory, IssuerPublicKey,
    PURCHASE_HEADER, REQUEST_MEDIA_TYPE, RESPONSE_MEDIA_TYPE, TOKEN_TYPE_BLIND_RSA, Token,
    TokenChallenge, TokenResponse, client, purchase_header,
};

use crate::http::{Origin, Reply, connect_origin, send};

/// Longest directory accepted, in bytes.
const MAX_DIRECTORY_LEN: usize = 1 << 20;
/// Longest token response accepted, in bytes (an RSA-4096 signature is 512).
const MAX_RESPONSE_LEN: usize = 64 << 10;

/// The issuer answered, and not with `200` (`402`: the wallet's quota is used up or it
/// bought nothing; `401`: a purchase signature it does not accept; `503`: try later).
#[derive(Debug, Clone, thiserror::Error)]
#[error("the issuer answered {what} with {}", .reply.describe())]
pub struct IssuerRefused {
    /// The request: `the issuer directory` or `the token request`.
    pub what: &'static str,
    /// The answer.
    pub reply: Reply,
}

/// A client of one issuer.
#[derive(Debug, Clone)]
pub struct IssuerClient {
    origin: Origin,
    tls: Option<Arc<rustls::ClientConfig>>,
    timeout: Duration,
}

/// Decodes base64url, padded or not.
fn decode_base64url(text: &str) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD
        .decode(text)
        .or_else(|_| URL_SAFE.decode(text))
        .ok()
}

impl IssuerClient {
    /// A client of the issuer at `origin` (TLS with `tls` for `https`), each exchange
    /// (connect, request, response) bounded by `timeout`.
    pub const fn new(
        origin: Origin,
        tls: Option<Arc<rustls::ClientConfig>>,
        timeout: Duration,
    ) -> Self {
        Self {
            origin,
            tls,
            timeout,
        }
    }

    /// The issuer's origin.
    pub const fn origin(&self) -> &Origin {
        &self.origin
    }

    async fn exchange(
        &self,
        method: Method,
        path: &'static str,
        headers: Vec<(&'static str, String)>,
        body: Vec<u8>,
        max: usize,
    ) -> anyhow::Result<Reply> {
        let what = format!("{method} {}{path}", self.origin);
        let go = async {
            let io = connect_origin(&self.origin, self.tls.as_ref()).await?;
            let mut request = Request::builder()
                .method(method)
                .uri(path)
                .header(header::HOST, self.origin.authority());
            for (name, value) in headers {
                request = request.header(name, value);
            }
            let request = request
                .body(Full::new(Bytes::from(body)))
                .context("building the request")?;
            send(io, false, request, max).await
        };
        tokio::time::timeout(self.timeout, go)
            .await
            .map_err(|_| anyhow::anyhow!("no answer within {} s", self.timeout.as_secs()))
            .and_then(|r| r)
            .with_context(|| what)
    }

    /// The first token-type 2 key of the issuer's directory.
    ///
    /// # Errors
    ///
    /// [`IssuerRefused`] (in the chain) when the issuer answers other than `200`; network
    /// errors; a directory that does not parse or has no usable key.
    pub async fn first_key(&self) -> anyhow::Result<IssuerPublicKey> {
        let reply = self
            .exchange(
                Method::GET,
                DIRECTORY_PATH,
                vec![("accept", DIRECTORY_MEDIA_TYPE.to_owned())],
                Vec::new(),
                MAX_DIRECTORY_LEN,
            )
            .await?;
        if reply.status != StatusCode::OK {
            return Err(IssuerRefused {
                what: "the issuer directory",
                reply,
            }
            .into());
        }
        let directory = IssuerDirectory::from_json(&reply.body)
            .context("the issuer directory is not valid JSON")?;
        let entry = directory
            .token_keys
            .iter()
            .find(|k| k.token_type == TOKEN_TYPE_BLIND_RSA)
            .context("the issuer directory has no token-type 2 key")?;
        let spki = decode_base64url(&entry.token_key)
            .context("the issuer directory's token-key is not base64url")?;
        IssuerPublicKey::from_spki(&spki).context("the issuer directory's token-key")
    }

    /// Buys one token under `key` bound to `challenge`, paid by `wallet`'s prepaid quota.
    ///
    /// # Errors
    ///
    /// [`IssuerRefused`] (in the chain) when the issuer answers other than `200`; network
    /// errors; a response that does not finalize into a token verifying under `key`.
    pub async fn buy(
        &self,
        key: &IssuerPublicKey,
        challenge: &TokenChallenge,
        wallet: &ed25519_dalek::SigningKey,
    ) -> anyhow::Result<Token> {
        let (request, pending) =
            client::request(key, challenge).context("blinding a token request")?;
        let body = request.to_bytes();
        let purchase = purchase_header(wallet, &body);
        let reply = self
            .exchange(
                Method::POST,
                ISSUE_PATH,
                vec![
                    ("content-type", REQUEST_MEDIA_TYPE.to_owned()),
                    ("accept", RESPONSE_MEDIA_TYPE.to_owned()),
                    (PURCHASE_HEADER, purchase),
                ],
                body,
                MAX_RESPONSE_LEN,
            )
            .await?;
        if reply.status != StatusCode::OK {
            return Err(IssuerRefused {
                what: "the token request",
                reply,
            }
            .into());
        }
        TokenResponse::from_bytes(&reply.body, key.nk())
            .map_err(anyhow::Error::from)
            .and_then(|response| Ok(pending.finalize(key, &response)?))
            .context("the issuer's token response")
    }
}
