//! The issuer's Prometheus metrics.
//!
//! Privacy (DESIGN §8): no label carries a buyer key, a client address, a token or a URL. The
//! only labels are `reason`, from the fixed set [`Refusal::ALL`], and `outcome` of the chain
//! sync, from [`SyncOutcome::ALL`]. The chain metrics stay at 0 without `[chain]`.
//!
//! The text exposition is [`tolldns_service::metrics`] (re-exported here).

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use tolldns_tickets::{IssuanceError, PaymentError};

pub use tolldns_service::metrics::{encode, encode_openmetrics};

type Labels = Vec<(&'static str, &'static str)>;

/// Why an issuance request was refused: the `reason` label of
/// `tolldns_issuer_refusals_total`. The names are stable (dashboards and alerts use them);
/// new reasons are appended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Refusal {
    /// 415: wrong `Content-Type`.
    MediaType,
    /// 400: the body is not a token request.
    Malformed,
    /// 400: the request names no key of this issuer, or its blinded message does not fit it.
    WrongKey,
    /// 401: no purchase header.
    NoPurchaseHeader,
    /// 401: the purchase header does not parse or its signature does not verify.
    BadPurchase,
    /// 402: the buyer bought no tokens.
    NoPurchase,
    /// 402: the buyer's tokens are used up.
    Exhausted,
    /// 503: the payment records could not be read or written.
    Unavailable,
    /// 413: the body is larger than the bound.
    TooLarge,
    /// Anything else (a refusal added to `tolldns-tickets` later).
    Other,
}

impl Refusal {
    /// Every reason, in label order.
    pub const ALL: [Self; 10] = [
        Self::MediaType,
        Self::Malformed,
        Self::WrongKey,
        Self::NoPurchaseHeader,
        Self::BadPurchase,
        Self::NoPurchase,
        Self::Exhausted,
        Self::Unavailable,
        Self::TooLarge,
        Self::Other,
    ];

    /// The label value.
    pub const fn name(self) -> &'static str {
        match self {
            Self::MediaType => "media_type",
            Self::Malformed => "malformed",
            Self::WrongKey => "wrong_key",
            Self::NoPurchaseHeader => "no_purchase_header",
            Self::BadPurchase => "bad_purchase",
            Self::NoPurchase => "no_purchase",
            Self::Exhausted => "exhausted",
            Self::Unavailable => "unavailable",
            Self::TooLarge => "too_large",
            Self::Other => "other",
        }
    }

    /// The reason of an issuance error; `had_purchase_header` tells a missing purchase
    /// header from a bad one.
    pub const fn of(e: &IssuanceError, had_purchase_header: bool) -> Self {
        match e {
            IssuanceError::MediaType => Self::MediaType,
            IssuanceError::Malformed(_) => Self::Malformed,
            IssuanceError::Key(_) => Self::WrongKey,
            IssuanceError::Purchase(_) if had_purchase_header => Self::BadPurchase,
            IssuanceError::Purchase(_) => Self::NoPurchaseHeader,
            IssuanceError::Payment(PaymentError::NoPurchase) => Self::NoPurchase,
            IssuanceError::Payment(PaymentError::Exhausted) => Self::Exhausted,
            IssuanceError::Payment(PaymentError::Unavailable(_)) => Self::Unavailable,
            _ => Self::Other,
        }
    }
}

/// How one chain sync ended: the `outcome` label of `tolldns_issuer_chain_syncs_total`.
/// The names are stable; new outcomes are appended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SyncOutcome {
    /// The accounts were read and credited.
    Ok,
    /// The RPC node could not be reached, timed out, answered a non-2xx status or a JSON-RPC
    /// error.
    RpcError,
    /// The answer was not a JSON-RPC list of accounts.
    BadResponse,
    /// A credit could not be written to the ledger.
    LedgerError,
}

impl SyncOutcome {
    /// Every outcome, in label order.
    pub const ALL: [Self; 4] = [
        Self::Ok,
        Self::RpcError,
        Self::BadResponse,
        Self::LedgerError,
    ];

    /// The label value.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::RpcError => "rpc_error",
            Self::BadResponse => "bad_response",
            Self::LedgerError => "ledger_error",
        }
    }
}

/// Handles to every issuer metric.
#[derive(Debug)]
pub struct Metrics {
    /// Tokens issued.
    pub tokens_issued: Counter,
    refusals: Family<Labels, Counter>,
    /// Keys published in the directory.
    pub published_keys: Gauge,
    chain_syncs: Family<Labels, Counter>,
    /// On-chain quota accounts skipped by the chain sync (foreign, malformed, another
    /// issuer's, misplaced).
    pub chain_accounts_skipped: Counter,
    /// Tickets credited from on-chain purchases.
    pub chain_tickets_credited: Counter,
}

impl Metrics {
    /// Creates the metrics and registers them (every refusal reason starts at 0).
    pub fn register(registry: &mut Registry) -> Self {
        let m = Self {
            tokens_issued: Counter::default(),
            refusals: Family::default(),
            published_keys: Gauge::default(),
            chain_syncs: Family::default(),
            chain_accounts_skipped: Counter::default(),
            chain_tickets_credited: Counter::default(),
        };
        for r in Refusal::ALL {
            let _ = m.refusals.get_or_create(&vec![("reason", r.name())]);
        }
        for o in SyncOutcome::ALL {
            let _ = m.chain_syncs.get_or_create(&vec![("outcome", o.name())]);
        }
        tolldns_service::metrics::register_build_info(
            registry,
            "tolldns_issuer_build_info",
            "Issuer version (always 1)",
            env!("CARGO_PKG_VERSION"),
        );
        registry.register(
            "tolldns_issuer_tokens_issued",
            "Tokens issued (blind signatures returned)",
            m.tokens_issued.clone(),
        );
        registry.register(
            "tolldns_issuer_refusals",
            "Issuance requests refused, by reason",
            m.refusals.clone(),
        );
        registry.register(
            "tolldns_issuer_published_keys",
            "Issuer keys published in the directory",
            m.published_keys.clone(),
        );
        registry.register(
            "tolldns_issuer_chain_syncs",
            "Chain syncs (getProgramAccounts of the registry's ticket quotas), by outcome",
            m.chain_syncs.clone(),
        );
        registry.register(
            "tolldns_issuer_chain_accounts_skipped",
            "Accounts of chain sync answers skipped: foreign owner, wrong size or discriminator, undecodable, another issuer's quota, not at the quota's address",
            m.chain_accounts_skipped.clone(),
        );
        registry.register(
            "tolldns_issuer_chain_tickets_credited",
            "Tickets credited to buyers from on-chain purchases",
            m.chain_tickets_credited.clone(),
        );
        m
    }

    /// Counts one chain sync.
    pub fn chain_synced(&self, outcome: SyncOutcome) {
        self.chain_syncs
            .get_or_create(&vec![("outcome", outcome.name())])
            .inc();
    }

    /// The count of chain syncs that ended with `outcome`.
    pub fn chain_syncs(&self, outcome: SyncOutcome) -> u64 {
        self.chain_syncs
            .get_or_create(&vec![("outcome", outcome.name())])
            .get()
    }

    /// Counts one refusal.
    pub fn refused(&self, reason: Refusal) {
        self.refusals
            .get_or_create(&vec![("reason", reason.name())])
            .inc();
    }

    /// The count of refusals for `reason`.
    pub fn refusals(&self, reason: Refusal) -> u64 {
        self.refusals
            .get_or_create(&vec![("reason", reason.name())])
            .get()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_has_every_reason_and_no_eof() {
        let mut registry = Registry::default();
        let m = Metrics::register(&mut registry);
        m.tokens_issued.inc();
        m.refused(Refusal::Exhausted);
        let text = encode(&registry);
        assert!(text.contains("# TYPE tolldns_issuer_tokens_issued_total counter"));
        assert!(text.contains("\ntolldns_issuer_tokens_issued_total 1\n"));
        assert!(text.contains("tolldns_issuer_refusals_total{reason=\"exhausted\"} 1\n"));
        for r in Refusal::ALL {
            assert!(
                text.contains(&format!(
                    "tolldns_issuer_refusals_total{{reason=\"{}\"}}",
                    r.name()
                )),
                "{text}"
            );
        }
        for o in SyncOutcome::ALL {
            assert!(
                text.contains(&format!(
                    "tolldns_issuer_chain_syncs_total{{outcome=\"{}\"}} 0\n",
                    o.name()
                )),
                "{text}"
            );
        }
        m.chain_synced(SyncOutcome::RpcError);
        assert_eq!(m.chain_syncs(SyncOutcome::RpcError), 1);
        let text = encode(&registry);
        assert!(text.contains("tolldns_issuer_chain_syncs_total{outcome=\"rpc_error\"} 1\n"));
        assert!(text.contains("\ntolldns_issuer_chain_accounts_skipped_total 0\n"));
        assert!(text.contains("\ntolldns_issuer_chain_tickets_credited_total 0\n"));
        assert!(!text.contains("# EOF"));
        assert!(encode_openmetrics(&registry).ends_with("# EOF\n"));
    }
}
