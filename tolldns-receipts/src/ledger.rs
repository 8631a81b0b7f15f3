//! An in-memory [`ReceiptLedger`]: the receipts a verifier has accepted, by operator and time
//! range. A watcher keeps the same facts in its store; this one is for verifiers that hold
//! them in memory (and the reference for what "overlap" means).

use alloc::collections::{BTreeMap, BTreeSet};
use alloc::vec::Vec;

use tolldns_core::{BackendId, OperatorId, WindowId};

use crate::receipt::Receipt;
use crate::verify::ReceiptLedger;

/// Accepted receipts: v1 keys `(operator, backend, window)`, and per operator the half-open
/// millisecond ranges `[start, end)` of its accepted v2 windows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AcceptedWindows {
    v1: BTreeSet<(OperatorId, BackendId, WindowId)>,
    /// v1 receipts' ranges: they may overlap each other, so they are scanned.
    v1_ranges: BTreeMap<OperatorId, Vec<(u64, u64)>>,
    ranges: BTreeMap<OperatorId, BTreeMap<u64, u64>>,
}

impl AcceptedWindows {
    /// No receipt accepted yet.
    pub const fn new() -> Self {
        Self {
            v1: BTreeSet::new(),
            v1_ranges: BTreeMap::new(),
            ranges: BTreeMap::new(),
        }
    }

    /// Record an accepted receipt (call it after verification succeeded). Returns `false`
    /// when the receipt's window bounds do not fit in 64-bit milliseconds (nothing recorded).
    pub fn record(&mut self, receipt: &Receipt) -> bool {
        let b = &receipt.body;
        let (Ok(start), Ok(end)) = (
            b.window_id.start_ms(b.window_len),
            b.window_id.end_ms(b.window_len),
        ) else {
            return false;
        };
        if b.v2.is_none() {
            // A v1 receipt also blocks the time it covers for later v2 receipts.
            self.v1.insert((b.operator_id, b.backend_id, b.window_id));
            self.v1_ranges
                .entry(b.operator_id)
                .or_default()
                .push((start, end));
            return true;
        }
        self.ranges
            .entry(b.operator_id)
            .or_default()
            .insert(start, end);
        true
    }

    /// Accepted v2 windows of `operator`.
    pub fn len_of(&self, operator: &OperatorId) -> usize {
        self.ranges.get(operator).map_or(0, BTreeMap::len)
    }
}

impl ReceiptLedger for AcceptedWindows {
    fn contains(&self, operator: &OperatorId, backend: &BackendId, window: WindowId) -> bool {
        self.v1.contains(&(*operator, *backend, window))
    }

    fn overlaps(&self, operator: &OperatorId, start_ms: u64, end_ms: u64) -> bool {
        if self
            .v1_ranges
            .get(operator)
            .is_some_and(|v| v.iter().any(|(s, e)| *s < end_ms && *e > start_ms))
        {
            return true;
        }
        let Some(ranges) = self.ranges.get(operator) else {
            return false;
        };
        // The last range starting before `end_ms` is the only one that can reach past
        // `start_ms`, as accepted ranges never overlap each other.
        ranges
            .range(..end_ms)
            .next_back()
            .is_some_and(|(_, end)| *end > start_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlap_is_any_shared_instant() {
        let mut l = AcceptedWindows::new();
        let op = OperatorId([1; 32]);
        l.ranges.entry(op).or_default().insert(60_000, 120_000);
        assert!(l.overlaps(&op, 60_000, 120_000));
        assert!(l.overlaps(&op, 0, 60_001));
        assert!(l.overlaps(&op, 119_999, 200_000));
        assert!(l.overlaps(&op, 90_000, 91_000));
        assert!(l.overlaps(&op, 0, 1_000_000));
        assert!(!l.overlaps(&op, 0, 60_000));
        assert!(!l.overlaps(&op, 120_000, 180_000));
        assert!(!l.overlaps(&OperatorId([2; 32]), 60_000, 120_000));
        assert_eq!(l.len_of(&op), 1);
    }

    #[test]
    fn an_accepted_v1_receipt_blocks_its_time_for_v2() {
        use ed25519_dalek::SigningKey;
        use tolldns_core::{DeploymentId, WindowLen};

        use crate::batch::{BatchHeader, ClosedBatch};
        let key = SigningKey::from_bytes(&[5; 32]);
        let op = OperatorId(key.verifying_key().to_bytes());
        // A v1 receipt with a one-hour window over [3_600_000, 7_200_000).
        let hour = WindowLen::new(3_600).unwrap();
        let header = BatchHeader::new(
            DeploymentId::local(),
            BackendId::new("other").unwrap(),
            hour,
            WindowId(1),
        );
        let v1 = ClosedBatch::seal_v1(&header, Vec::new(), [0; 32], 3_600_000, &key).unwrap();
        let mut l = AcceptedWindows::new();
        assert!(l.record(v1.receipt()));
        assert!(l.contains(&op, &BackendId::new("other").unwrap(), WindowId(1)));
        // A one-minute v2 window inside that hour overlaps; one after it does not.
        assert!(l.overlaps(&op, 3_660_000, 3_720_000));
        assert!(!l.overlaps(&op, 7_200_000, 7_260_000));
    }
}
