//! The watcher's Prometheus metrics.
//!
//! Labels are small fixed sets (a verdict or rule name, an outcome, a transport, a store
//! operation); no label carries a key, a name, an address or a batch id. The text exposition
//! is [`tolldns_service::metrics`] (re-exported here), which `promtool check metrics` accepts.

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

pub use tolldns_service::metrics::{encode, encode_openmetrics, exposition};

/// A label set.
pub type Labels = Vec<(&'static str, String)>;

fn store_histogram() -> Histogram {
    Histogram::new([
        0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0,
    ])
}

/// Handles to every watcher metric.
#[derive(Debug)]
pub struct Metrics {
    /// Receipts posted, by verdict: `accepted`, `duplicate`, or the refusing rule's name;
    /// `malformed`, `too_large`, `unavailable` for requests that never reached a verdict.
    pub receipts: Family<Labels, Counter>,
    /// Audits by outcome: `passed`, `failed`, `error` (the audit could not be done; retried).
    pub audits: Family<Labels, Counter>,
    /// Probes by outcome (`correct`, `wrong`, `unanswered`, `unchecked`, `error`) and
    /// transport (`udp`, `tcp`, `dot`, `doh`).
    pub probes: Family<Labels, Counter>,
    /// Store operation latency in seconds, by operation.
    pub store_latency: Family<Labels, Histogram>,
    /// Store operations that failed, by operation.
    pub store_errors: Family<Labels, Counter>,
    /// Report transactions by result: `submitted`, `refused` (the program said no), `error`.
    pub reports: Family<Labels, Counter>,
    /// Finalize transactions by result.
    pub finalizes: Family<Labels, Counter>,
    /// Miners not reported for an epoch, by the gate's reason.
    pub gated: Family<Labels, Counter>,
    /// Chain calls that failed, by call.
    pub chain_errors: Family<Labels, Counter>,
    /// Objects published (content-addressed JSON), by kind.
    pub objects: Family<Labels, Counter>,
    /// HTTP API requests by endpoint and status code class.
    pub api_requests: Family<Labels, Counter>,
    /// The latest chain slot seen.
    pub chain_slot: Gauge,
    /// Operators in the registry snapshot.
    pub registry_operators: Gauge,
    /// The last epoch closed (stats computed and published).
    pub epoch_closed: Gauge,
}

impl Metrics {
    /// Creates the metrics and registers them in `registry`.
    pub fn register(registry: &mut Registry) -> Self {
        let m = Self {
            receipts: Family::default(),
            audits: Family::default(),
            probes: Family::default(),
            store_latency: Family::new_with_constructor(store_histogram),
            store_errors: Family::default(),
            reports: Family::default(),
            finalizes: Family::default(),
            gated: Family::default(),
            chain_errors: Family::default(),
            objects: Family::default(),
            api_requests: Family::default(),
            chain_slot: Gauge::default(),
            registry_operators: Gauge::default(),
            epoch_closed: Gauge::default(),
        };
        tolldns_service::metrics::register_build_info(
            registry,
            "tolldns_watcher_build_info",
            "Watcher version (always 1)",
            env!("CARGO_PKG_VERSION"),
        );
        registry.register(
            "tolldns_watcher_receipts",
            "Receipts posted to the watcher, by verdict (accepted, duplicate, a refusing rule, malformed, too_large, unavailable)",
            m.receipts.clone(),
        );
        registry.register(
            "tolldns_watcher_audits",
            "Batch audits by outcome (passed, failed, error)",
            m.audits.clone(),
        );
        registry.register(
            "tolldns_watcher_probes",
            "Probes by outcome (correct, wrong, unanswered, unchecked, error) and transport",
            m.probes.clone(),
        );
        registry.register_with_unit(
            "tolldns_watcher_store_latency",
            "Store operation latency by operation",
            prometheus_client::registry::Unit::Seconds,
            m.store_latency.clone(),
        );
        registry.register(
            "tolldns_watcher_store_errors",
            "Store operations that failed, by operation",
            m.store_errors.clone(),
        );
        registry.register(
            "tolldns_watcher_reports",
            "Report transactions to the score program by result (submitted, refused, error)",
            m.reports.clone(),
        );
        registry.register(
            "tolldns_watcher_finalizes",
            "Finalize transactions by result (submitted, refused, error)",
            m.finalizes.clone(),
        );
        registry.register(
            "tolldns_watcher_miners_gated",
            "Miners not reported for an epoch, by reason",
            m.gated.clone(),
        );
        registry.register(
            "tolldns_watcher_chain_errors",
            "Chain RPC calls that failed, by call",
            m.chain_errors.clone(),
        );
        registry.register(
            "tolldns_watcher_objects_published",
            "Content-addressed objects published, by kind",
            m.objects.clone(),
        );
        registry.register(
            "tolldns_watcher_api_requests",
            "HTTP API requests by endpoint and status code class",
            m.api_requests.clone(),
        );
        registry.register(
            "tolldns_watcher_chain_slot",
            "The latest chain slot seen",
            m.chain_slot.clone(),
        );
        registry.register(
            "tolldns_watcher_registry_operators",
            "Operators in the registry snapshot",
            m.registry_operators.clone(),
        );
        registry.register(
            "tolldns_watcher_epoch_closed",
            "The last epoch whose stats were computed and published",
            m.epoch_closed.clone(),
        );
        m
    }

    /// Counts one posted receipt under `verdict`.
    pub fn receipt(&self, verdict: &str) {
        self.receipts
            .get_or_create(&vec![("verdict", verdict.to_owned())])
            .inc();
    }

    /// Counts one audit under `outcome`.
    pub fn audit(&self, outcome: &str) {
        self.audits
            .get_or_create(&vec![("outcome", outcome.to_owned())])
            .inc();
    }

    /// Counts one probe.
    pub fn probe(&self, outcome: &str, transport: &str) {
        self.probes
            .get_or_create(&vec![
                ("outcome", outcome.to_owned()),
                ("transport", transport.to_owned()),
            ])
            .inc();
    }

    /// Records one store operation's latency and result.
    pub fn store_op(&self, op: &'static str, elapsed: std::time::Duration, ok: bool) {
        let labels = vec![("op", op.to_owned())];
        self.store_latency
            .get_or_create(&labels)
            .observe(elapsed.as_secs_f64());
        if !ok {
            self.store_errors.get_or_create(&labels).inc();
        }
    }

    /// Counts a failed store operation (its latency was already observed).
    pub fn store_error(&self, op: &'static str) {
        self.store_errors
            .get_or_create(&vec![("op", op.to_owned())])
            .inc();
    }

    /// Counts one report transaction.
    pub fn report(&self, result: &str) {
        self.reports
            .get_or_create(&vec![("result", result.to_owned())])
            .inc();
    }

    /// Counts one finalize transaction.
    pub fn finalize(&self, result: &str) {
        self.finalizes
            .get_or_create(&vec![("result", result.to_owned())])
            .inc();
    }

    /// Counts a miner not reported for an epoch.
    pub fn gate(&self, reason: &str) {
        self.gated
            .get_or_create(&vec![("reason", reason.to_owned())])
            .inc();
    }

    /// Counts a failed chain call.
    pub fn chain_error(&self, call: &'static str) {
        self.chain_errors
            .get_or_create(&vec![("call", call.to_owned())])
            .inc();
    }

    /// Counts a published object.
    pub fn object(&self, kind: &str) {
        self.objects
            .get_or_create(&vec![("kind", kind.to_owned())])
            .inc();
    }

    /// Counts an API request.
    pub fn api_request(&self, endpoint: &'static str, status: u16) {
        let class = match status {
            200..=299 => "2xx",
            300..=399 => "3xx",
            400..=499 => "4xx",
            _ => "5xx",
        };
        self.api_requests
            .get_or_create(&vec![
                ("endpoint", endpoint.to_owned()),
                ("code", class.to_owned()),
            ])
            .inc();
    }
}

/// Sets a gauge from a `u64`, saturating.
pub fn set_gauge(g: &Gauge, v: u64) {
    g.set(i64::try_from(v).unwrap_or(i64::MAX));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposition_names_counters_and_histograms() {
        let mut registry = Registry::default();
        let m = Metrics::register(&mut registry);
        m.receipt("accepted");
        m.receipt("signature");
        m.audit("passed");
        m.probe("correct", "udp");
        m.store_op("insert_batch", std::time::Duration::from_micros(300), true);
        m.report("submitted");
        m.chain_error("slot");
        let text = encode(&registry);
        assert!(
            text.contains("tolldns_watcher_receipts_total{verdict=\"accepted\"} 1"),
            "{text}"
        );
        assert!(text.contains("tolldns_watcher_receipts_total{verdict=\"signature\"} 1"));
        assert!(
            text.contains("tolldns_watcher_probes_total{outcome=\"correct\",transport=\"udp\"} 1")
        );
        assert!(text.contains("# TYPE tolldns_watcher_store_latency_seconds histogram"));
        assert!(
            text.contains("tolldns_watcher_store_latency_seconds_count{op=\"insert_batch\"} 1")
        );
        assert!(text.contains("tolldns_watcher_reports_total{result=\"submitted\"} 1"));
        assert!(!text.contains("# EOF"));
    }
}
