//! The edge's redemption state: which tokens were redeemed here, the sessions they opened,
//! and the session tickets that name those sessions.
//!
//! A client presents a token once; [`Redeemer::redeem`] verifies it (one RSA verification),
//! records it as redeemed and opens a session with the deployment's query quota. The edge
//! answers with a 16-byte **session ticket**:
//!
//! ```text
//! session_ticket = generation (1 byte) || HMAC-SHA256(session_key[generation], "TOLLDNS-SESSION-V1\0" || ticket_id)[..15]
//! ```
//!
//! Later queries carry the session ticket; [`Redeemer::charge`] finds the session, checks its
//! rate and quota and takes one query from it. Session keys rotate
//! ([`Redeemer::rotate`]): a ticket of the previous generation still works and is answered
//! with the session's ticket under the current key; older generations are refused as expired
//! and their sessions dropped. Everything is bounded: the redeemed set and the session table
//! refuse new entries when full (counted as [`Refusal::Capacity`]) rather than forget a
//! redeemed token, which would let it be redeemed twice.
//!
//! Sans-IO: the caller passes `now` (unix milliseconds) and fresh key material.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError, RwLock};

use hmac::{Hmac, Mac};
use sha2::Sha256;
use zeroize::Zeroizing;

use crate::verify::{Refusal, TokenVerifier, VerifiedToken};

/// Bytes of a session ticket.
pub const SESSION_TICKET_LEN: usize = 16;
/// Domain-separation tag of session tickets.
pub const SESSION_TICKET_TAG: &[u8] = b"TOLLDNS-SESSION-V1\0";
const SHARDS: usize = 16;

/// A 16-byte session ticket.
pub type SessionTicket = [u8; SESSION_TICKET_LEN];

/// Redemption limits (deployment and edge parameters).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RedeemConfig {
    /// Queries one token pays for (a deployment parameter: every edge and watcher uses the
    /// same value). The redeeming query counts as the first.
    pub queries_per_token: u32,
    /// Most tokens remembered as redeemed. When full, further redemptions are refused
    /// ([`Refusal::Capacity`]) until expired issuer keys free room.
    pub max_redeemed: usize,
    /// Most open sessions.
    pub max_sessions: usize,
    /// Sustained queries per second one session may send (its own admission budget).
    pub session_rate: u32,
    /// Burst of one session.
    pub session_burst: u32,
}

impl Default for RedeemConfig {
    fn default() -> Self {
        Self {
            queries_per_token: 1_000,
            max_redeemed: 1_000_000,
            max_sessions: 262_144,
            session_rate: 200,
            session_burst: 400,
        }
    }
}

/// A token redeemed: the session it opened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Redemption {
    /// The session ticket to return to the client.
    pub session: SessionTicket,
    /// The verified token (its ticket id goes into leaves; its bytes into storage).
    pub token: VerifiedToken,
    /// Queries left after the redeeming one.
    pub remaining: u32,
}

/// One query charged to a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Charge {
    /// The ticket id of the token that opened the session.
    pub ticket_id: [u8; 16],
    /// Queries left.
    pub remaining: u32,
    /// The session's ticket under the current key, when the client's was of the previous
    /// generation: return it to the client.
    pub renewed: Option<SessionTicket>,
}

#[derive(Debug, Clone)]
struct Session {
    ticket_id: [u8; 16],
    remaining: u32,
    /// Rate bucket, in thousandths of a query.
    bucket_milli: u64,
    last_ms: u64,
}

#[derive(Debug)]
struct Keys {
    generation: u8,
    current: Zeroizing<[u8; 32]>,
    previous: Option<Zeroizing<[u8; 32]>>,
}

impl Keys {
    fn ticket(key: &[u8; 32], generation: u8, ticket_id: &[u8; 16]) -> SessionTicket {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key)
            .expect("HMAC-SHA256 takes keys of any length");
        mac.update(SESSION_TICKET_TAG);
        mac.update(ticket_id);
        let tag = mac.finalize().into_bytes();
        let mut out = [0u8; SESSION_TICKET_LEN];
        out[0] = generation;
        out[1..].copy_from_slice(&tag[..SESSION_TICKET_LEN - 1]);
        out
    }
}

/// The redemption state of one edge. Shared by every listener (`&self` methods, internally
/// locked, sessions sharded).
#[derive(Debug)]
pub struct Redeemer {
    config: RedeemConfig,
    verifier: RwLock<TokenVerifier>,
    /// Redeemed ticket ids → expiry of their issuer key (unix s; `u64::MAX`: none).
    redeemed: Mutex<HashMap<[u8; 16], u64>>,
    sessions: [Mutex<HashMap<SessionTicket, Session>>; SHARDS],
    keys: RwLock<Keys>,
}

fn shard_of(ticket: &SessionTicket) -> usize {
    usize::from(ticket[1]) % SHARDS
}

impl Redeemer {
    /// A redeemer verifying with `verifier`, whose first session key is `session_key` (fresh
    /// random bytes).
    pub fn new(config: RedeemConfig, verifier: TokenVerifier, session_key: [u8; 32]) -> Self {
        Self {
            config,
            verifier: RwLock::new(verifier),
            redeemed: Mutex::new(HashMap::new()),
            sessions: std::array::from_fn(|_| Mutex::new(HashMap::new())),
            keys: RwLock::new(Keys {
                generation: 0,
                current: Zeroizing::new(session_key),
                previous: None,
            }),
        }
    }

    /// The limits.
    pub const fn config(&self) -> &RedeemConfig {
        &self.config
    }

    /// Replace the accepted issuer keys and challenge (a reload).
    pub fn set_verifier(&self, verifier: TokenVerifier) {
        *self
            .verifier
            .write()
            .unwrap_or_else(PoisonError::into_inner) = verifier;
    }

    /// A copy of the verifier.
    pub fn verifier(&self) -> TokenVerifier {
        self.verifier
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Redeem a token presented at `now_ms` (unix milliseconds): refuse a replay before any
    /// RSA work, verify, remember it, open its session and charge the redeeming query.
    ///
    /// # Errors
    ///
    /// A [`Refusal`]: the token's own faults, [`Refusal::Replayed`], or
    /// [`Refusal::Capacity`].
    pub fn redeem(&self, token: &[u8], now_ms: u64) -> Result<Redemption, Refusal> {
        let id = crate::codec::ticket_id(token);
        if self.is_redeemed(&id) {
            return Err(Refusal::Replayed);
        }
        let verified = self
            .verifier
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .verify(token, now_ms / 1000)?;
        {
            let mut redeemed = self.redeemed.lock().unwrap_or_else(PoisonError::into_inner);
            if redeemed.contains_key(&id) {
                // A concurrent redemption of the same token won.
                return Err(Refusal::Replayed);
            }
            if redeemed.len() >= self.config.max_redeemed {
                return Err(Refusal::Capacity);
            }
            redeemed.insert(id, verified.key_not_after.unwrap_or(u64::MAX));
        }
        let ticket = {
            let keys = self.keys.read().unwrap_or_else(PoisonError::into_inner);
            Keys::ticket(&keys.current, keys.generation, &id)
        };
        let remaining = self.config.queries_per_token.saturating_sub(1);
        let burst_milli = u64::from(self.config.session_burst.max(1)) * 1000;
        {
            let mut shard = self.sessions[shard_of(&ticket)]
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            if shard.len() >= self.config.max_sessions.div_ceil(SHARDS) {
                // The token stays redeemed (it was verified and is kept for audits), but
                // the client gets no session: counted, and the client is told.
                return Err(Refusal::Capacity);
            }
            shard.insert(
                ticket,
                Session {
                    ticket_id: id,
                    remaining,
                    bucket_milli: burst_milli.saturating_sub(1000),
                    last_ms: now_ms,
                },
            );
        }
        Ok(Redemption {
            session: ticket,
            token: verified,
            remaining,
        })
    }

    /// Whether a ticket id was redeemed here.
    pub fn is_redeemed(&self, ticket_id: &[u8; 16]) -> bool {
        self.redeemed
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .contains_key(ticket_id)
    }

    /// Remember a token redeemed before a restart (from the edge's journal), so that it
    /// cannot be redeemed again. Its session is not restored.
    pub fn restore_redeemed(&self, ticket_id: [u8; 16], key_not_after: Option<u64>) {
        self.redeemed
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(ticket_id, key_not_after.unwrap_or(u64::MAX));
    }

    /// Charge one query at `now_ms` to the session named by `ticket`.
    ///
    /// # Errors
    ///
    /// [`Refusal::SessionExpired`], [`Refusal::UnknownSession`], [`Refusal::SessionRate`] or
    /// [`Refusal::QuotaExhausted`].
    pub fn charge(&self, ticket: &SessionTicket, now_ms: u64) -> Result<Charge, Refusal> {
        let (generation, current_key, is_previous) = {
            let keys = self.keys.read().unwrap_or_else(PoisonError::into_inner);
            if ticket[0] == keys.generation {
                (keys.generation, None, false)
            } else if keys.previous.is_some() && ticket[0] == keys.generation.wrapping_sub(1) {
                (keys.generation, Some(keys.current.clone()), true)
            } else {
                return Err(Refusal::SessionExpired);
            }
        };
        let rate_milli = u64::from(self.config.session_rate.max(1));
        let burst_milli = u64::from(self.config.session_burst.max(1)) * 1000;
        let mut shard = self.sessions[shard_of(ticket)]
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let session = shard.get_mut(ticket).ok_or(Refusal::UnknownSession)?;
        // Refill: `rate` queries per second = `rate` milli-queries per millisecond.
        let elapsed = now_ms.saturating_sub(session.last_ms);
        session.bucket_milli = session
            .bucket_milli
            .saturating_add(elapsed.saturating_mul(rate_milli))
            .min(burst_milli);
        session.last_ms = session.last_ms.max(now_ms);
        if session.remaining == 0 {
            return Err(Refusal::QuotaExhausted);
        }
        if session.bucket_milli < 1000 {
            return Err(Refusal::SessionRate);
        }
        session.bucket_milli -= 1000;
        session.remaining -= 1;
        let charge = Charge {
            ticket_id: session.ticket_id,
            remaining: session.remaining,
            renewed: None,
        };
        if !is_previous {
            return Ok(charge);
        }
        // Move the session under the current key.
        let Some(key) = current_key else {
            return Ok(charge);
        };
        let renewed = Keys::ticket(&key, generation, &charge.ticket_id);
        let session = shard.remove(ticket).ok_or(Refusal::UnknownSession)?;
        drop(shard);
        self.sessions[shard_of(&renewed)]
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(renewed, session);
        Ok(Charge {
            renewed: Some(renewed),
            ..charge
        })
    }

    /// Rotate the session key at `now_ms` to `fresh_key` (random bytes): tickets of the
    /// retiring previous generation expire and their sessions are dropped; tokens whose issuer
    /// key has expired are forgotten (they cannot verify any more). Returns the number of
    /// sessions dropped.
    pub fn rotate(&self, fresh_key: [u8; 32], now_ms: u64) -> usize {
        let retired = {
            let mut keys = self.keys.write().unwrap_or_else(PoisonError::into_inner);
            let retired = keys.generation.wrapping_sub(1);
            let had_previous = keys.previous.is_some();
            keys.previous = Some(std::mem::replace(
                &mut keys.current,
                Zeroizing::new(fresh_key),
            ));
            keys.generation = keys.generation.wrapping_add(1);
            had_previous.then_some(retired)
        };
        let mut dropped = 0;
        if let Some(retired) = retired {
            for shard in &self.sessions {
                let mut shard = shard.lock().unwrap_or_else(PoisonError::into_inner);
                let before = shard.len();
                shard.retain(|t, _| t[0] != retired);
                dropped += before - shard.len();
            }
        }
        let now_s = now_ms / 1000;
        self.redeemed
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .retain(|_, not_after| *not_after > now_s);
        dropped
    }

    /// Open sessions.
    pub fn sessions(&self) -> usize {
        self.sessions
            .iter()
            .map(|s| s.lock().unwrap_or_else(PoisonError::into_inner).len())
            .sum()
    }

    /// Tokens remembered as redeemed.
    pub fn redeemed(&self) -> usize {
        self.redeemed
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }
}
