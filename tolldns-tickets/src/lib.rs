//! Toll tickets for TollDNS: Privacy Pass tokens (RFC 9578 token type 0x0002, publicly
//! verifiable, blind RSA per RFC 9474 with SHA-384 and PSS) that pay for DNS queries at the
//! edge, and the session tickets an edge hands out after redeeming one.
//!
//! - Issuer: [`IssuerSecretKey`] (`generate`, PEM), [`IssuerService`] (the RFC 9578 §4
//!   directory and the issuance handler, gated by a [`PaymentCheck`]).
//! - Client: [`client::request`] blinds a token input into a [`TokenRequest`];
//!   [`client::PendingToken::finalize`] turns the issuer's [`TokenResponse`] into a [`Token`].
//! - Edge and watcher: [`TokenVerifier`] verifies a token from the issuer's public key alone;
//!   [`Redeemer`] keeps the redeemed set, the sessions and their quotas;
//!   [`ticket_id`] is what receipt leaves carry.
//! - HTTP: [`auth`] reads and writes the `PrivateToken` scheme of RFC 9577.
//!
//! The verification part ([`TokenVerifier`], [`Redeemer`], [`ticket_id`]) is synchronous
//! and needs no async runtime.
//!
//! Blind RSA comes from the maintained `blind-rsa-signatures` crate (RFC 9474, its own KATs);
//! this crate adds the RFC 9578 framing (token challenge, request, response and token
//! encodings, key ids from the RSASSA-PSS SPKI). The `privacypass` crate was not used: it is
//! a pre-release that pulls in an async runtime and the VOPRF stack for token types TollDNS
//! does not use. Wire formats are specified byte for byte in `docs/TICKETS.md`.
//!
//! ```
//! use tolldns_tickets::*;
//!
//! // Issuer: a key (RSA-2048 for interoperable type-0x0002 tokens).
//! let issuer = IssuerSecretKey::generate(2048)?;
//! let challenge = TokenChallenge::deployment("issuer.example", "tolldns-example");
//!
//! // Client: blind, send the request, finalize the response.
//! let (request, pending) = client::request(issuer.public(), &challenge)?;
//! let response = issuer.issue(&request)?;
//! let token = pending.finalize(issuer.public(), &response)?;
//!
//! // Edge: verify once, open a session, charge queries to it.
//! let verifier = TokenVerifier::new(
//!     vec![AcceptedKey { key: issuer.public().clone(), not_before: 0, not_after: None }],
//!     challenge.digest()?,
//! );
//! let redeemer = Redeemer::new(RedeemConfig::default(), verifier, [7; 32]);
//! let now_ms = 1_760_000_000_000;
//! let redemption = redeemer.redeem(&token.to_bytes(), now_ms)?;
//! assert_eq!(redemption.token.ticket_id, ticket_id(&token.to_bytes()));
//! let charge = redeemer.charge(&redemption.session, now_ms + 1)?;
//! assert_eq!(charge.ticket_id, redemption.token.ticket_id);
//! assert_eq!(redeemer.redeem(&token.to_bytes(), now_ms + 2), Err(Refusal::Replayed));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Cargo features
//!
//! None: everything is always built.

#![forbid(unsafe_code)]

pub mod auth;
pub mod client;
mod codec;
mod issuer;
mod key;
pub mod protocol;
mod session;
mod verify;

pub use codec::{
    CHALLENGE_DIGEST_LEN, DecodeError, MAX_TOKEN_LEN, MIN_TOKEN_LEN, NK_2048, NONCE_LEN,
    SUPPORTED_NK, TICKET_ID_TAG, TOKEN_INPUT_LEN, TOKEN_KEY_ID_LEN, TOKEN_TYPE_BLIND_RSA, Token,
    TokenChallenge, TokenRequest, TokenResponse, ticket_id, token_input,
};
pub use issuer::{
    DIRECTORY_MEDIA_TYPE, DIRECTORY_PATH, DirectoryKey, HttpAnswer, ISSUE_PATH, IssuanceError,
    IssuerDirectory, IssuerService, IssuingKey, PURCHASE_HEADER, PURCHASE_SIGNING_TAG,
    PaymentCheck, PaymentError, REQUEST_MEDIA_TYPE, RESPONSE_MEDIA_TYPE, purchase_header,
};
pub use key::{IssueError, IssuerPublicKey, IssuerSecretKey, KeyError};
pub use session::{
    Charge, RedeemConfig, Redeemer, Redemption, SESSION_TICKET_LEN, SESSION_TICKET_TAG,
    SessionTicket,
};
pub use verify::{AcceptedKey, Refusal, TokenVerifier, VerifiedToken};
