//! 64-bit Prometheus counters and gauges on every target.
//!
//! prometheus-client's default [`Counter`](prometheus_client::metrics::counter::Counter) and
//! [`Gauge`](prometheus_client::metrics::gauge::Gauge) store their value in the standard
//! library's `AtomicU64`/`AtomicI64`. Targets without 64-bit atomic instructions (32-bit MIPS,
//! for OpenWrt routers) have neither, and there the crate's defaults switch to 32-bit values,
//! which would wrap after 4.3 billion queries. The [`Counter`] and [`Gauge`] here keep 64-bit
//! values everywhere: their storage is `portable_atomic`'s, which is the native atomic where
//! the target has one (x86-64, aarch64, armv7) and a lock-based fallback where it has not.
//! Updates use `Ordering::Relaxed`, as prometheus-client's own atomics do.
//!
//! ```
//! use prometheus_client::registry::Registry;
//! use tolldns_ingress::metric_types::Counter;
//!
//! let mut registry = Registry::default();
//! let answers = Counter::default();
//! registry.register("answers", "Answers sent", answers.clone());
//! answers.inc_by(5_000_000_000);
//! assert_eq!(answers.get(), 5_000_000_000);
//! ```

use portable_atomic::{AtomicI64, AtomicU64, Ordering};
use prometheus_client::metrics::{counter, gauge};

/// A monotonically increasing 64-bit counter, on every target.
pub type Counter = counter::Counter<u64, CounterCell>;

/// A signed 64-bit gauge, on every target.
pub type Gauge = gauge::Gauge<i64, GaugeCell>;

/// The storage of a [`Counter`]: a 64-bit atomic (native or, without 64-bit atomics, a
/// lock-based fallback).
#[derive(Debug, Default)]
pub struct CounterCell(AtomicU64);

impl counter::Atomic<u64> for CounterCell {
    fn inc(&self) -> u64 {
        self.0.fetch_add(1, Ordering::Relaxed)
    }

    fn inc_by(&self, v: u64) -> u64 {
        self.0.fetch_add(v, Ordering::Relaxed)
    }

    fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// The storage of a [`Gauge`]: a signed 64-bit atomic (native or, without 64-bit atomics, a
/// lock-based fallback).
#[derive(Debug, Default)]
pub struct GaugeCell(AtomicI64);

impl gauge::Atomic<i64> for GaugeCell {
    fn inc(&self) -> i64 {
        self.0.fetch_add(1, Ordering::Relaxed)
    }

    fn inc_by(&self, v: i64) -> i64 {
        self.0.fetch_add(v, Ordering::Relaxed)
    }

    fn dec(&self) -> i64 {
        self.0.fetch_sub(1, Ordering::Relaxed)
    }

    fn dec_by(&self, v: i64) -> i64 {
        self.0.fetch_sub(v, Ordering::Relaxed)
    }

    fn set(&self, v: i64) -> i64 {
        self.0.swap(v, Ordering::Relaxed)
    }

    fn get(&self) -> i64 {
        self.0.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use prometheus_client::encoding::text::encode;
    use prometheus_client::metrics::family::Family;
    use prometheus_client::registry::Registry;

    use super::*;

    fn text(registry: &Registry) -> String {
        let mut out = String::new();
        encode(&mut out, registry).expect("encoding into a String cannot fail");
        out
    }

    #[test]
    fn counter_holds_values_past_32_bits() {
        let c = Counter::default();
        assert_eq!(c.inc(), 0);
        assert_eq!(c.inc_by(u64::from(u32::MAX)), 1);
        assert_eq!(c.get(), 1 << 32);
        let clone = c.clone();
        clone.inc_by(1 << 40);
        assert_eq!(c.get(), (1 << 32) + (1 << 40));
    }

    #[test]
    fn gauge_is_signed_64_bit() {
        let g = Gauge::default();
        assert_eq!(g.set(i64::MAX), 0);
        assert_eq!(g.dec(), i64::MAX);
        assert_eq!(g.dec_by(i64::MAX), i64::MAX - 1);
        assert_eq!(g.get(), -1);
        assert_eq!(g.inc_by(1 << 33), -1);
        assert_eq!(g.inc(), (1 << 33) - 1);
        assert_eq!(g.get(), 1 << 33);
    }

    #[test]
    fn encodes_as_counter_and_gauge() {
        #[derive(
            Debug, Clone, PartialEq, Eq, Hash, prometheus_client::encoding::EncodeLabelSet,
        )]
        struct Labels {
            kind: &'static str,
        }
        let mut registry = Registry::default();
        let answers = Counter::default();
        registry.register("answers", "Answers", answers.clone());
        let depth = Gauge::default();
        registry.register("depth", "Depth", depth.clone());
        let by_kind = Family::<Labels, Counter>::default();
        registry.register("by_kind", "By kind", by_kind.clone());

        answers.inc_by(5_000_000_000);
        depth.set(-7);
        by_kind
            .get_or_create(&Labels { kind: "udp" })
            .inc_by(1 << 33);

        let out = text(&registry);
        assert!(out.contains("# TYPE answers counter\n"), "{out}");
        assert!(out.contains("\nanswers_total 5000000000\n"), "{out}");
        assert!(out.contains("# TYPE depth gauge\n"), "{out}");
        assert!(out.contains("\ndepth -7\n"), "{out}");
        assert!(
            out.contains("\nby_kind_total{kind=\"udp\"} 8589934592\n"),
            "{out}"
        );
    }
}
