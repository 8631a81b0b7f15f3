//! The miner's own Prometheus metrics (the edge registers its query metrics in the same
//! registry).
//!
//! Privacy (DESIGN §8): no label carries a name, a client address, a ticket, a key or a URL.
//! Labels are fixed small enums (`reason`, `result`, `endpoint`, `code`). The miner's own metrics
//! describe batches and the journal, never individual queries, so the minimum-count threshold
//! for small buckets applies to the edge's query histograms, not to these.
//!
//! The text exposition is [`tolldns_service::metrics`] (re-exported here).

use std::sync::Mutex;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric as _};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
// 64-bit counters and gauges also on targets without 64-bit atomics (mipsel).
use tolldns_ingress::metric_types::{Counter, Gauge};

use crate::journal::JournalStats;

pub use tolldns_service::metrics::{encode, encode_openmetrics, to_prometheus_text};

type Labels = Vec<(&'static str, &'static str)>;

/// Handles to every miner metric.
#[derive(Debug)]
pub struct Metrics {
    /// Batches journaled and reported as signed.
    pub batches_signed: Counter,
    /// Leaves per signed batch.
    pub batch_leaves: Histogram,
    leaves_journaled: Counter,
    leaves_lost: Counter,
    leaves_pruned: Family<Labels, Counter>,
    journal_batches: Gauge,
    journal_leaf_bytes: Gauge,
    journal_receipt_bytes: Gauge,
    journal_file_bytes: Gauge,
    /// The configured leaf-byte bound.
    pub journal_max_leaf_bytes: Gauge,
    /// Journal writes that failed.
    pub journal_errors: Counter,
    outbox_pending: Gauge,
    journal_tokens: Gauge,
    journal_token_bytes: Gauge,
    tokens_pruned: Family<Labels, Counter>,
    journal_redeemed_tickets: Gauge,
    /// Delivery attempts by result (`delivered`, `failed`, `refused`: refused for good by the
    /// watcher and dropped from the outbox).
    pub deliveries: Family<Labels, Counter>,
    /// API requests by endpoint and status class.
    pub api_requests: Family<Labels, Counter>,
    last: Mutex<JournalStats>,
}

fn gauge(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

impl Metrics {
    /// Creates the metrics and registers them.
    pub fn register(registry: &mut Registry) -> Self {
        let m = Self {
            batches_signed: Counter::default(),
            batch_leaves: Histogram::new([1.0, 10.0, 100.0, 1e3, 1e4, 1e5, 1e6]),
            leaves_journaled: Counter::default(),
            leaves_lost: Counter::default(),
            leaves_pruned: Family::default(),
            journal_batches: Gauge::default(),
            journal_leaf_bytes: Gauge::default(),
            journal_receipt_bytes: Gauge::default(),
            journal_file_bytes: Gauge::default(),
            journal_max_leaf_bytes: Gauge::default(),
            journal_errors: Counter::default(),
            outbox_pending: Gauge::default(),
            journal_tokens: Gauge::default(),
            journal_token_bytes: Gauge::default(),
            tokens_pruned: Family::default(),
            journal_redeemed_tickets: Gauge::default(),
            deliveries: Family::default(),
            api_requests: Family::default(),
            last: Mutex::new(JournalStats::default()),
        };
        tolldns_service::metrics::register_build_info(
            registry,
            "tolldns_miner_build_info",
            "Miner version (always 1)",
            env!("CARGO_PKG_VERSION"),
        );
        if cfg!(target_os = "linux") {
            registry.register_collector(Box::new(ResidentMemory));
        }
        registry.register(
            "tolldns_receipt_batches_signed",
            "Signed batch receipts journaled durably",
            m.batches_signed.clone(),
        );
        registry.register(
            "tolldns_receipt_batch_leaves",
            "Leaves per signed batch receipt",
            m.batch_leaves.clone(),
        );
        registry.register(
            "tolldns_receipt_leaves_journaled",
            "Leaves journaled in signed batches, across restarts",
            m.leaves_journaled.clone(),
        );
        registry.register(
            "tolldns_receipt_leaves_lost",
            "Leaves accepted by the edge that never reached a journaled batch, across restarts (a lower bound after a crash)",
            m.leaves_lost.clone(),
        );
        registry.register(
            "tolldns_journal_leaves_pruned",
            "Leaves deleted from the journal: reason=expired (audit window over) or evicted (disk bound)",
            m.leaves_pruned.clone(),
        );
        registry.register(
            "tolldns_journal_batches",
            "Signed batch receipts stored (never deleted)",
            m.journal_batches.clone(),
        );
        registry.register(
            "tolldns_journal_leaf_bytes",
            "Bytes of stored leaves",
            m.journal_leaf_bytes.clone(),
        );
        registry.register(
            "tolldns_journal_max_leaf_bytes",
            "Configured bound on stored leaf bytes",
            m.journal_max_leaf_bytes.clone(),
        );
        registry.register(
            "tolldns_journal_receipt_bytes",
            "Bytes of stored signed receipts",
            m.journal_receipt_bytes.clone(),
        );
        registry.register(
            "tolldns_journal_file_bytes",
            "Size of the journal database file",
            m.journal_file_bytes.clone(),
        );
        registry.register(
            "tolldns_journal_tokens",
            "Redeemed toll-ticket tokens stored for audits",
            m.journal_tokens.clone(),
        );
        registry.register(
            "tolldns_journal_token_bytes",
            "Bytes of stored redeemed tokens (counted in journal.max_leaf_bytes with the leaves)",
            m.journal_token_bytes.clone(),
        );
        registry.register(
            "tolldns_journal_tokens_pruned",
            "Tokens deleted from the journal with their window's leaves: reason=expired or evicted (disk bound)",
            m.tokens_pruned.clone(),
        );
        registry.register(
            "tolldns_journal_redeemed_tickets",
            "Ticket ids remembered as redeemed (kept until their issuer key expires; refused if presented again)",
            m.journal_redeemed_tickets.clone(),
        );
        registry.register(
            "tolldns_journal_errors",
            "Journal writes that failed",
            m.journal_errors.clone(),
        );
        registry.register(
            "tolldns_outbox_pending",
            "Batch deliveries to watchers not yet acknowledged",
            m.outbox_pending.clone(),
        );
        registry.register(
            "tolldns_outbox_deliveries",
            "Delivery attempts to watchers by result",
            m.deliveries.clone(),
        );
        registry.register(
            "tolldns_api_requests",
            "HTTP API requests by endpoint and status class",
            m.api_requests.clone(),
        );
        m
    }

    /// Brings the journal-derived metrics up to date.
    pub fn observe_journal(&self, s: &JournalStats) {
        let mut last = self
            .last
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let inc = |c: &Counter, now: u64, before: u64| {
            if now > before {
                c.inc_by(now - before);
            }
        };
        inc(
            &self.leaves_journaled,
            s.leaves_journaled_total,
            last.leaves_journaled_total,
        );
        inc(
            &self.leaves_lost,
            s.leaves_lost_total,
            last.leaves_lost_total,
        );
        inc(
            &self
                .leaves_pruned
                .get_or_create(&vec![("reason", "expired")]),
            s.leaves_expired_total,
            last.leaves_expired_total,
        );
        inc(
            &self
                .leaves_pruned
                .get_or_create(&vec![("reason", "evicted")]),
            s.leaves_evicted_total,
            last.leaves_evicted_total,
        );
        inc(
            &self
                .tokens_pruned
                .get_or_create(&vec![("reason", "expired")]),
            s.tokens_expired_total,
            last.tokens_expired_total,
        );
        inc(
            &self
                .tokens_pruned
                .get_or_create(&vec![("reason", "evicted")]),
            s.tokens_evicted_total,
            last.tokens_evicted_total,
        );
        self.journal_tokens.set(gauge(s.tokens));
        self.journal_token_bytes.set(gauge(s.token_bytes));
        self.journal_redeemed_tickets.set(gauge(s.redeemed_tickets));
        self.journal_batches.set(gauge(s.batches));
        self.journal_leaf_bytes.set(gauge(s.leaf_bytes));
        self.journal_receipt_bytes.set(gauge(s.receipt_bytes));
        self.journal_file_bytes.set(gauge(s.file_bytes));
        self.outbox_pending.set(gauge(s.outbox_pending));
        *last = *s;
    }

    /// Counts one API request.
    pub fn api_request(&self, endpoint: &'static str, status: u16) {
        let class = match status {
            200..=299 => "2xx",
            300..=399 => "3xx",
            400..=499 => "4xx",
            _ => "5xx",
        };
        self.api_requests
            .get_or_create(&vec![("endpoint", endpoint), ("code", class)])
            .inc();
    }

    /// Counts one delivery the watcher refused for good (`400`, `413`, `422`).
    pub fn delivery_refused(&self) {
        self.deliveries
            .get_or_create(&vec![("result", "refused")])
            .inc();
    }

    /// Counts one delivery attempt.
    pub fn delivery(&self, delivered: bool) {
        let result = if delivered { "delivered" } else { "failed" };
        self.deliveries
            .get_or_create(&vec![("result", result)])
            .inc();
    }
}

/// `process_resident_memory_bytes`, Prometheus' standard name for the resident set size: the
/// `VmRSS` line of `/proc/self/status`, read at each scrape (Linux only; absent when the file
/// cannot be read). Under qemu-user the file is the emulator's, so the figure includes qemu.
#[derive(Debug, Clone, Copy, Default)]
pub struct ResidentMemory;

impl ResidentMemory {
    /// The resident set size in bytes, if `/proc/self/status` tells it.
    pub fn read() -> Option<u64> {
        let text = std::fs::read_to_string("/proc/self/status").ok()?;
        vm_rss_bytes(&text)
    }
}

/// The `VmRSS:` value of a `/proc/PID/status` text, in bytes.
pub fn vm_rss_bytes(status: &str) -> Option<u64> {
    let line = status.lines().find_map(|l| l.strip_prefix("VmRSS:"))?;
    let mut words = line.split_whitespace();
    let value: u64 = words.next()?.parse().ok()?;
    match words.next() {
        Some("kB") | None => value.checked_mul(1024),
        Some(_) => None,
    }
}

impl Collector for ResidentMemory {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        let Some(bytes) = Self::read() else {
            return Ok(());
        };
        let gauge = ConstGauge::new(gauge(bytes));
        let metric = encoder.encode_descriptor(
            "process_resident_memory_bytes",
            "Resident memory size in bytes",
            None,
            gauge.metric_type(),
        )?;
        gauge.encode(metric)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prometheus_text_names_counters_by_their_samples() {
        let mut registry = Registry::default();
        let m = Metrics::register(&mut registry);
        m.batches_signed.inc();
        let text = encode(&registry);
        assert!(text.contains("# HELP tolldns_receipt_batches_signed_total Signed"));
        assert!(text.contains("# TYPE tolldns_receipt_batches_signed_total counter"));
        assert!(text.contains("\ntolldns_receipt_batches_signed_total 1\n"));
        assert!(text.contains("tolldns_miner_build_info{version=\""));
        assert!(!text.contains("# EOF"));
        assert!(encode_openmetrics(&registry).ends_with("# EOF\n"));
    }

    #[test]
    fn vm_rss_is_read_in_bytes() {
        let status =
            "Name:\ttolldns-miner\nVmPeak:\t  20000 kB\nVmRSS:\t   12345 kB\nThreads:\t4\n";
        assert_eq!(vm_rss_bytes(status), Some(12_345 * 1024));
        assert_eq!(vm_rss_bytes("Name:\tx\n"), None);
        assert_eq!(vm_rss_bytes("VmRSS:\tlots kB\n"), None);
        assert_eq!(vm_rss_bytes("VmRSS:\t12 MB\n"), None);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn resident_memory_is_exported_and_positive() {
        let mut registry = Registry::default();
        let _m = Metrics::register(&mut registry);
        let text = encode(&registry);
        assert!(
            text.contains("# TYPE process_resident_memory_bytes gauge"),
            "{text}"
        );
        let value: u64 = text
            .lines()
            .find_map(|l| l.strip_prefix("process_resident_memory_bytes "))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| panic!("no sample in {text}"));
        assert!(value > 1 << 20, "{value}");
    }
}
