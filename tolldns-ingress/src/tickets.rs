//! Toll-ticket redemption at the edge: the per-listener policy, the accepted issuer keys and
//! the shared [`Redeemer`] (redeemed tokens, sessions, quotas). See `docs/TICKETS.md`.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde::Deserialize;
use tolldns_receipts::Transport;
use tolldns_tickets::{
    AcceptedKey, IssuerDirectory, IssuerPublicKey, RedeemConfig, Redeemer, Refusal, TokenChallenge,
    TokenVerifier,
};

use crate::clock::{Clock, SystemClock};
use crate::error::EdgeError;

/// What a listener does with tickets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TicketPolicy {
    /// Tickets are ignored: every leaf has a zero ticket.
    Off,
    /// Ticketed queries are charged to their session and earn; unticketed ones are answered
    /// per admission and earn nothing. A presented ticket that fails is refused.
    #[default]
    Optional,
    /// Unticketed queries are refused (`REFUSED` with an extended error, or DoH `401`).
    Required,
}

/// Ticket settings of [`EdgeConfig`](crate::EdgeConfig).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TicketsConfig {
    /// Policy of the UDP listeners.
    pub udp: TicketPolicy,
    /// Policy of the TCP listeners.
    pub tcp: TicketPolicy,
    /// Policy of the DoT listeners.
    pub dot: TicketPolicy,
    /// Policy of the DoH listeners.
    pub doh: TicketPolicy,
    /// Policy of the DoQ listeners (tickets in EDNS options, as over DoT).
    pub doq: TicketPolicy,
    /// Issuer name of the deployment's token challenge.
    pub issuer_name: String,
    /// Deployment name (`origin_info` of the token challenge).
    pub deployment: String,
    /// Accepted issuer keys: base64url of their SPKI (the directory's `token-key`).
    pub issuer_keys: Vec<String>,
    /// An issuer directory JSON file (RFC 9578 §4) whose keys are accepted too.
    pub issuer_directory: Option<std::path::PathBuf>,
    /// Retired issuer keys (base64url SPKI): their tokens are refused as expired, with a
    /// reason of their own, rather than as from an unknown issuer.
    pub retired_issuer_keys: Vec<String>,
    /// Queries one token pays for (deployment parameter).
    pub queries_per_token: u32,
    /// Most tokens remembered as redeemed.
    pub max_redeemed: usize,
    /// Most open sessions.
    pub max_sessions: usize,
    /// Sustained queries per second of one session.
    pub session_rate: u32,
    /// Burst of one session.
    pub session_burst: u32,
    /// Seconds between session-key rotations (sessions idle for a whole period expire).
    pub session_key_rotation_secs: u64,
}

impl Default for TicketsConfig {
    fn default() -> Self {
        let d = RedeemConfig::default();
        Self {
            udp: TicketPolicy::Optional,
            tcp: TicketPolicy::Optional,
            dot: TicketPolicy::Optional,
            doh: TicketPolicy::Optional,
            doq: TicketPolicy::Optional,
            issuer_name: "issuer.tolldns.invalid".to_owned(),
            deployment: "tolldns-local".to_owned(),
            issuer_keys: Vec::new(),
            issuer_directory: None,
            retired_issuer_keys: Vec::new(),
            queries_per_token: d.queries_per_token,
            max_redeemed: d.max_redeemed,
            max_sessions: d.max_sessions,
            session_rate: d.session_rate,
            session_burst: d.session_burst,
            session_key_rotation_secs: 3_600,
        }
    }
}

impl TicketsConfig {
    /// The deployment's token challenge.
    pub fn challenge(&self) -> TokenChallenge {
        TokenChallenge::deployment(&self.issuer_name, &self.deployment)
    }

    /// Whether any listener looks at tickets.
    pub fn enabled(&self) -> bool {
        [self.udp, self.tcp, self.dot, self.doh, self.doq]
            .iter()
            .any(|p| *p != TicketPolicy::Off)
    }

    /// The accepted keys: `issuer_keys`, then the directory's.
    ///
    /// # Errors
    ///
    /// [`EdgeError::Tickets`] naming the key or file that does not read.
    pub fn accepted_keys(&self) -> Result<Vec<AcceptedKey>, EdgeError> {
        let mut keys = Vec::new();
        let lists = [
            ("issuer_keys", &self.issuer_keys, None),
            ("retired_issuer_keys", &self.retired_issuer_keys, Some(0)),
        ];
        for (name, list, not_after) in lists {
            for (i, k) in list.iter().enumerate() {
                let spki = base64::engine::general_purpose::URL_SAFE_NO_PAD
                    .decode(k.trim().trim_end_matches('='))
                    .map_err(|_| {
                        EdgeError::Tickets(format!("tickets.{name}[{i}] is not base64url"))
                    })?;
                let key = IssuerPublicKey::from_spki(&spki)
                    .map_err(|e| EdgeError::Tickets(format!("tickets.{name}[{i}]: {e}")))?;
                keys.push(AcceptedKey {
                    key,
                    not_before: 0,
                    not_after,
                });
            }
        }
        if let Some(path) = &self.issuer_directory {
            let bytes = std::fs::read(path).map_err(|source| EdgeError::File {
                path: path.clone(),
                source,
            })?;
            let dir = IssuerDirectory::from_json(&bytes).map_err(|e| {
                EdgeError::Tickets(format!("{}: not an issuer directory: {e}", path.display()))
            })?;
            let found = dir.keys();
            if found.is_empty() {
                return Err(EdgeError::Tickets(format!(
                    "{}: no type-2 key in the issuer directory",
                    path.display()
                )));
            }
            for (key, not_before) in found {
                keys.push(AcceptedKey {
                    key,
                    not_before: not_before.unwrap_or(0),
                    not_after: None,
                });
            }
        }
        Ok(keys)
    }

    fn redeem_config(&self) -> RedeemConfig {
        RedeemConfig {
            queries_per_token: self.queries_per_token.max(1),
            max_redeemed: self.max_redeemed,
            max_sessions: self.max_sessions,
            session_rate: self.session_rate.max(1),
            session_burst: self.session_burst.max(1),
        }
    }
}

/// The edge's ticket state, shared by every listener.
#[derive(Debug)]
pub struct TicketGate {
    redeemer: Redeemer,
    policies: [TicketPolicy; 5],
    challenge_header: String,
    rotation: Duration,
    last_rotation: Mutex<Instant>,
    clock: Arc<dyn Clock>,
}

fn fresh_key() -> [u8; 32] {
    rand::random()
}

impl TicketGate {
    /// Build from the configuration, on the system clock, with the session-key period starting
    /// at `now`.
    ///
    /// # Errors
    ///
    /// [`EdgeError::Tickets`] for unreadable keys, or a `required` listener with no
    /// accepted key.
    pub fn new(config: &TicketsConfig, now: Instant) -> Result<Self, EdgeError> {
        let keys = config.accepted_keys()?;
        let policies = [config.udp, config.tcp, config.dot, config.doh, config.doq];
        if !keys.iter().any(|k| k.not_after.is_none()) && policies.contains(&TicketPolicy::Required)
        {
            return Err(EdgeError::Tickets(
                "a listener requires tickets but no issuer key is configured \
                 (tickets.issuer_keys or tickets.issuer_directory)"
                    .to_owned(),
            ));
        }
        let challenge = config.challenge();
        let digest = challenge
            .digest()
            .map_err(|e| EdgeError::Tickets(format!("token challenge: {e}")))?;
        let challenge_header = match keys.iter().find(|k| k.not_after.is_none()) {
            Some(k) => tolldns_tickets::auth::www_authenticate(&challenge, &k.key, None)
                .map_err(|e| EdgeError::Tickets(format!("token challenge: {e}")))?,
            None => format!(
                "{} challenge=\"{}\"",
                tolldns_tickets::auth::SCHEME,
                base64::engine::general_purpose::URL_SAFE.encode(
                    challenge
                        .to_bytes()
                        .map_err(|e| EdgeError::Tickets(format!("token challenge: {e}")))?
                )
            ),
        };
        Ok(Self {
            redeemer: Redeemer::new(
                config.redeem_config(),
                TokenVerifier::new(keys, digest),
                fresh_key(),
            ),
            policies,
            challenge_header,
            rotation: Duration::from_secs(config.session_key_rotation_secs.max(1)),
            last_rotation: Mutex::new(now),
            clock: Arc::new(SystemClock),
        })
    }

    /// Read the wall clock of session-key rotations (which expire the sessions idle for a whole
    /// period) from `clock` instead of the system clock; the engine's ticks, which decide when
    /// a period has passed, read the same clock.
    #[must_use]
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// The policy of a transport's listeners.
    pub fn policy(&self, transport: Transport) -> TicketPolicy {
        let i = match transport {
            Transport::Udp => 0,
            Transport::Tcp => 1,
            Transport::Dot => 2,
            Transport::Doq => 4,
            _ => 3,
        };
        self.policies.get(i).copied().unwrap_or_default()
    }

    /// The redeemer.
    pub const fn redeemer(&self) -> &Redeemer {
        &self.redeemer
    }

    /// The `WWW-Authenticate` value of DoH `401` answers.
    pub fn challenge_header(&self) -> &str {
        &self.challenge_header
    }

    /// Rotate the session key when a period has passed since the last rotation (`now` and the
    /// gate's clock agree: both come from the engine's clock).
    pub(crate) fn maybe_rotate(&self, now: Instant) -> Option<usize> {
        let mut last = self
            .last_rotation
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if now.saturating_duration_since(*last) < self.rotation {
            return None;
        }
        *last = now;
        drop(last);
        Some(self.redeemer.rotate(fresh_key(), self.clock.unix_ms()))
    }
}

/// How a query presented itself.
#[derive(Debug, Clone, Copy)]
pub enum Credential<'a> {
    /// Nothing.
    None,
    /// A session ticket.
    Session([u8; 16]),
    /// A token (its encoded bytes).
    Token(&'a [u8]),
}

/// What ticketing decided for a query.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TicketOutcome {
    /// Not ticketed: admission as usual; the leaf's ticket is zero.
    Unticketed,
    /// Charged to a session.
    Ticketed {
        ticket_id: [u8; 16],
        /// A session ticket to return to the client.
        session_out: Option<[u8; 16]>,
    },
    /// Refused.
    Refused(Refusal),
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    use super::{TicketGate, TicketsConfig};
    use crate::clock::{Clock, ManualClock};

    /// The session-key period runs on the instants given, and the rotation forgets the tokens
    /// whose issuer key expired by the gate's clock, not by the system's.
    #[test]
    fn rotation_reads_the_injected_clock() {
        let config = TicketsConfig {
            session_key_rotation_secs: 60,
            ..TicketsConfig::default()
        };
        // Long before the system's now: a token whose key expired at second 2,000 still counts.
        let clock = Arc::new(ManualClock::new(Instant::now(), 1_000_000));
        let gate = TicketGate::new(&config, clock.now())
            .expect("gate")
            .with_clock(Arc::clone(&clock) as Arc<dyn Clock>);
        gate.redeemer().restore_redeemed([1; 16], Some(2_000));
        gate.redeemer().restore_redeemed([2; 16], None);
        clock.advance(Duration::from_secs(59));
        assert_eq!(gate.maybe_rotate(clock.now()), None, "within the period");
        clock.advance(Duration::from_secs(1));
        assert_eq!(
            gate.maybe_rotate(clock.now()),
            Some(0),
            "a period has passed"
        );
        assert_eq!(
            gate.redeemer().redeemed(),
            2,
            "second 1,060: the key is still valid"
        );
        assert_eq!(gate.maybe_rotate(clock.now()), None, "the period restarts");
        clock.advance(Duration::from_secs(1_000));
        assert_eq!(gate.maybe_rotate(clock.now()), Some(0));
        assert_eq!(
            gate.redeemer().redeemed(),
            1,
            "second 2,060: the token of the expired key is forgotten"
        );
    }
}
