//! Audit sampling: which leaves a verifier asks proofs for.
//!
//! The verifier picks a 32-byte seed *after* the receipt is submitted (for example a later
//! block hash). Draw `i` is the first 8 bytes, little-endian, of
//! `SHA256("TOLLDNS-AUDIT-V1" || seed || merkle_root || u64_le(i))`, for `i = 0, 1, 2, …`.
//! A draw `v` is rejected when `v > u64::MAX - (2^64 mod n)` (so every index is equally
//! likely: no modulo bias); otherwise its index is `v mod n`, skipped if already drawn. The
//! sample is the first `k` distinct indices, in draw order.
//!
//! **Seeds must post-date the receipt.** A seed known before the receipt was signed lets the
//! operator put honest leaves exactly where the draw will look. A verifier therefore uses the
//! hash of a chain slot later than the slot at which it recorded the receipt (a watcher stores
//! the slot of arrival; anyone re-checking reads the same slot hashes from the chain), and
//! [`AuditSample::after`] refuses a seed whose slot is not later. Sketch witnesses
//! ([`SketchWitnessSample`]) are drawn the same way with their own tag.

use alloc::collections::BTreeSet;
use alloc::vec::Vec;
use core::fmt;

use tolldns_core::hash::{AUDIT_SAMPLING_TAG, SKETCH_WITNESS_TAG, tagged_sha256};

use crate::merkle::Hash;
use crate::sketch::NameSketch;

/// `k = ceil(ln(1 - confidence) / ln(1 - fake_fraction))`: the number of distinct leaves to
/// sample so that a batch where `fake_fraction` of the leaves are fake shows at least one fake
/// with probability `confidence` (sampling with replacement; sampling without replacement, as
/// [`AuditSample`] does, only does better). Clamped to `leaf_count`, and at least 1 when the
/// batch has a leaf: `k` is 0 only for an empty batch. `ln(1 - f)` is computed as
/// `log1p(-f)`, so a fake fraction as small as `1e-300` still gives a finite, correct `k`
/// (it then exceeds any real batch and the whole batch is sampled). Computed in IEEE 754
/// double precision with `libm`, the same on every target.
///
/// ```
/// # use tolldns_receipts::sample_size;
/// assert_eq!(sample_size(0.99, 0.10, 1_000_000), Ok(44));
/// assert_eq!(sample_size(0.99, 0.05, 1_000_000), Ok(90));
/// assert_eq!(sample_size(0.99, 0.10, 10), Ok(10));
/// ```
///
/// # Errors
///
/// [`SampleError::Confidence`] unless `0 < confidence < 1`, [`SampleError::FakeFraction`]
/// unless `0 < fake_fraction < 1`.
pub fn sample_size(
    confidence: f64,
    fake_fraction: f64,
    leaf_count: u64,
) -> Result<u64, SampleError> {
    if !(confidence > 0.0 && confidence < 1.0) {
        return Err(SampleError::Confidence);
    }
    if !(fake_fraction > 0.0 && fake_fraction < 1.0) {
        return Err(SampleError::FakeFraction);
    }
    let k = libm::ceil(libm::log1p(-confidence) / libm::log1p(-fake_fraction));
    // Both logarithms are negative and finite, so `k` is positive; `as` saturates for huge k.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let k = k as u64;
    Ok(k.clamp(1, u64::MAX).min(leaf_count))
}

/// The chain slot and hash a verifier takes an audit seed from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AuditSeed {
    /// The slot whose hash is the seed.
    pub slot: u64,
    /// The slot's hash: the 32-byte seed.
    pub hash: [u8; 32],
}

/// Draw `counter`: the first 8 bytes (little-endian) of
/// `SHA256("TOLLDNS-AUDIT-V1" || seed || root || u64_le(counter))`.
pub fn draw(seed: &[u8; 32], root: &Hash, counter: u64) -> u64 {
    let h = tagged_sha256(AUDIT_SAMPLING_TAG, &[seed, root, &counter.to_le_bytes()]);
    let mut v = [0u8; 8];
    for (d, s) in v.iter_mut().zip(h) {
        *d = s;
    }
    u64::from_le_bytes(v)
}

/// The leaves a verifier audits in one batch: `k` distinct indices drawn from its seed and
/// the batch's root.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AuditSample {
    seed: [u8; 32],
    root: Hash,
    leaf_count: u64,
    indices: Vec<u64>,
}

/// `min(k, n)` distinct values below `n` from `draw(counter)`, without modulo bias.
fn distinct_draws(n: u64, k: u64, mut draw: impl FnMut(u64) -> u64) -> Vec<u64> {
    let k = k.min(n);
    let mut out = Vec::new();
    if k == 0 {
        return out;
    }
    // 2^64 mod n; draws above `u64::MAX - rem` are rejected.
    let rem = (u64::MAX.checked_rem(n).unwrap_or(0))
        .wrapping_add(1)
        .checked_rem(n)
        .unwrap_or(0);
    let limit = u64::MAX.wrapping_sub(rem);
    let mut seen = BTreeSet::new();
    let mut counter = 0u64;
    while u64::try_from(out.len()).unwrap_or(u64::MAX) < k {
        let v = draw(counter);
        counter = counter.wrapping_add(1);
        if v > limit {
            continue;
        }
        let index = v.checked_rem(n).unwrap_or(0);
        if seen.insert(index) {
            out.push(index);
        }
    }
    out
}

impl AuditSample {
    /// Draw `min(k, leaf_count)` distinct indices below `leaf_count`. This is the raw draw:
    /// the caller is responsible for a seed the operator could not know when it signed
    /// (see [`AuditSample::after`]).
    pub fn new(seed: &[u8; 32], root: &Hash, leaf_count: u64, k: u64) -> Self {
        Self {
            seed: *seed,
            root: *root,
            leaf_count,
            indices: distinct_draws(leaf_count, k, |c| draw(seed, root, c)),
        }
    }

    /// [`AuditSample::new`] from the hash of chain slot `seed.slot`, which must be later than
    /// `receipt_slot`, the slot at which the verifier recorded the receipt.
    ///
    /// # Errors
    ///
    /// [`SampleError::SeedNotAfterReceipt`] when `seed.slot <= receipt_slot`.
    pub fn after(
        seed: &AuditSeed,
        receipt_slot: u64,
        root: &Hash,
        leaf_count: u64,
        k: u64,
    ) -> Result<Self, SampleError> {
        if seed.slot <= receipt_slot {
            return Err(SampleError::SeedNotAfterReceipt);
        }
        Ok(Self::new(&seed.hash, root, leaf_count, k))
    }

    /// [`AuditSample::new`] from the hash of exactly slot `receipt_slot + delay_slots`: a
    /// verifier that may pick any later slot could try many and keep the one that raises a
    /// false alarm against an honest operator; a fixed slot leaves it no choice.
    ///
    /// # Errors
    ///
    /// [`SampleError::SeedNotAfterReceipt`] for `delay_slots = 0`,
    /// [`SampleError::SeedSlotNotFixed`] when `seed.slot` is not `receipt_slot + delay_slots`.
    pub fn at_fixed_slot(
        seed: &AuditSeed,
        receipt_slot: u64,
        delay_slots: u64,
        root: &Hash,
        leaf_count: u64,
        k: u64,
    ) -> Result<Self, SampleError> {
        if delay_slots == 0 {
            return Err(SampleError::SeedNotAfterReceipt);
        }
        if Some(seed.slot) != receipt_slot.checked_add(delay_slots) {
            return Err(SampleError::SeedSlotNotFixed);
        }
        Ok(Self::new(&seed.hash, root, leaf_count, k))
    }

    /// The sampled indices, in draw order.
    pub fn indices(&self) -> &[u64] {
        &self.indices
    }

    /// The verifier's seed.
    pub const fn seed(&self) -> &[u8; 32] {
        &self.seed
    }

    /// The root the sample was drawn for.
    pub const fn root(&self) -> &Hash {
        &self.root
    }

    /// The leaf count the sample was drawn for.
    pub const fn leaf_count(&self) -> u64 {
        self.leaf_count
    }
}

/// The sketch registers a verifier asks witnesses for: `min(k, filled)` distinct registers
/// among the non-zero registers of the receipt's name sketch (in register order), drawn like
/// [`AuditSample`] with draw `i` = the first 8 bytes (LE) of
/// `SHA256("TOLLDNS-SKETCH-V1" || seed || merkle_root || u64_le(i))`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SketchWitnessSample {
    root: Hash,
    sketch: NameSketch,
    registers: Vec<usize>,
}

impl SketchWitnessSample {
    /// Draw the registers for `sketch` under `root` from `seed`.
    pub fn new(seed: &[u8; 32], root: &Hash, sketch: &NameSketch, k: u64) -> Self {
        let filled: Vec<usize> = sketch
            .registers()
            .iter()
            .enumerate()
            .filter(|(_, r)| **r != 0)
            .map(|(j, _)| j)
            .collect();
        let n = u64::try_from(filled.len()).unwrap_or(0);
        let registers = distinct_draws(n, k, |c| {
            let h = tagged_sha256(SKETCH_WITNESS_TAG, &[seed, root, &c.to_le_bytes()]);
            let mut v = [0u8; 8];
            for (d, s) in v.iter_mut().zip(h) {
                *d = s;
            }
            u64::from_le_bytes(v)
        })
        .into_iter()
        .filter_map(|i| filled.get(usize::try_from(i).ok()?).copied())
        .collect();
        Self {
            root: *root,
            sketch: sketch.clone(),
            registers,
        }
    }

    /// The registers, in draw order.
    pub fn registers(&self) -> &[usize] {
        &self.registers
    }

    /// The root the registers were drawn for.
    pub const fn root(&self) -> &Hash {
        &self.root
    }

    /// The sketch the registers were drawn from.
    pub const fn sketch(&self) -> &NameSketch {
        &self.sketch
    }
}

/// Why a sample size could not be computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SampleError {
    /// The confidence is not strictly between 0 and 1.
    Confidence,
    /// The fake fraction is not strictly between 0 and 1.
    FakeFraction,
    /// The seed's slot is not later than the slot the receipt was recorded at.
    SeedNotAfterReceipt,
    /// The seed's slot is not the fixed delay after the receipt's slot.
    SeedSlotNotFixed,
}

impl fmt::Display for SampleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Confidence => "confidence must be strictly between 0 and 1",
            Self::FakeFraction => "fake fraction must be strictly between 0 and 1",
            Self::SeedNotAfterReceipt => {
                "audit seed must come from a slot after the receipt was recorded"
            }
            Self::SeedSlotNotFixed => {
                "audit seed must come from the slot at the fixed delay after the receipt"
            }
        })
    }
}

impl core::error::Error for SampleError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sample_sizes() {
        assert_eq!(sample_size(0.99, 0.10, u64::MAX), Ok(44));
        assert_eq!(sample_size(0.99, 0.05, u64::MAX), Ok(90));
        assert_eq!(sample_size(0.95, 0.10, u64::MAX), Ok(29));
        assert_eq!(sample_size(0.99, 0.10, 7), Ok(7));
        assert_eq!(sample_size(0.99, 0.10, 0), Ok(0));
        assert_eq!(sample_size(1.0, 0.10, 5), Err(SampleError::Confidence));
        assert_eq!(sample_size(f64::NAN, 0.10, 5), Err(SampleError::Confidence));
        assert_eq!(sample_size(0.5, 0.0, 5), Err(SampleError::FakeFraction));
        assert_eq!(sample_size(0.5, 1.0, 5), Err(SampleError::FakeFraction));
        let huge = sample_size(0.999_999, 1e-12, u64::MAX).unwrap();
        assert!(
            (13_815_000_000_000..13_816_000_000_000).contains(&huge),
            "{huge}"
        );
        // ln(1 - 1e-17) rounds to 0 in double precision; log1p does not.
        assert_eq!(sample_size(0.99, 1e-17, 1_000), Ok(1_000));
        assert_eq!(sample_size(0.99, 1e-300, 5), Ok(5));
        assert_eq!(sample_size(0.01, 0.999_999, 5), Ok(1));
    }

    #[test]
    fn indices_are_distinct_in_range_and_deterministic() {
        let seed = [1u8; 32];
        let root = [2u8; 32];
        for n in [1u64, 2, 3, 7, 44, 45, 1000] {
            let s = AuditSample::new(&seed, &root, n, 44);
            assert_eq!(s.indices().len() as u64, n.min(44));
            let set: BTreeSet<u64> = s.indices().iter().copied().collect();
            assert_eq!(set.len(), s.indices().len());
            assert!(s.indices().iter().all(|i| *i < n));
            assert_eq!(s, AuditSample::new(&seed, &root, n, 44));
        }
        assert!(AuditSample::new(&seed, &root, 0, 44).indices().is_empty());
        // A different seed or root gives a different sample.
        let a = AuditSample::new(&seed, &root, 1_000_000, 10);
        assert_ne!(
            a.indices(),
            AuditSample::new(&[9; 32], &root, 1_000_000, 10).indices()
        );
        assert_ne!(
            a.indices(),
            AuditSample::new(&seed, &[9; 32], 1_000_000, 10).indices()
        );
    }

    #[test]
    fn first_index_follows_the_definition() {
        let seed = [5u8; 32];
        let root = [6u8; 32];
        let n = 1000u64;
        let s = AuditSample::new(&seed, &root, n, 1);
        let mut msg = b"TOLLDNS-AUDIT-V1".to_vec();
        msg.extend_from_slice(&seed);
        msg.extend_from_slice(&root);
        msg.extend_from_slice(&0u64.to_le_bytes());
        let h = tagged_sha256(&[], &[&msg]);
        let v = u64::from_le_bytes(h[..8].try_into().unwrap());
        // 2^64 mod 1000 = 616: draws above u64::MAX - 616 would be rejected.
        assert_eq!((u64::MAX % n + 1) % n, 616);
        if v <= u64::MAX - 616 {
            assert_eq!(s.indices(), &[v % n]);
        }
    }
}

#[cfg(test)]
mod seed_tests {
    use super::*;

    #[test]
    fn seeds_must_post_date_the_receipt() {
        let seed = AuditSeed {
            slot: 100,
            hash: [1; 32],
        };
        assert_eq!(
            AuditSample::after(&seed, 100, &[2; 32], 10, 3),
            Err(SampleError::SeedNotAfterReceipt)
        );
        assert_eq!(
            AuditSample::after(&seed, 99, &[2; 32], 10, 3),
            Ok(AuditSample::new(&[1; 32], &[2; 32], 10, 3))
        );
        assert_eq!(
            AuditSample::at_fixed_slot(&seed, 68, 32, &[2; 32], 10, 3),
            Ok(AuditSample::new(&[1; 32], &[2; 32], 10, 3))
        );
        assert_eq!(
            AuditSample::at_fixed_slot(&seed, 60, 32, &[2; 32], 10, 3),
            Err(SampleError::SeedSlotNotFixed)
        );
        assert_eq!(
            AuditSample::at_fixed_slot(&seed, 100, 0, &[2; 32], 10, 3),
            Err(SampleError::SeedNotAfterReceipt)
        );
    }

    #[test]
    fn witness_registers_are_distinct_filled_registers() {
        let mut sketch = NameSketch::new();
        for i in 0u8..40 {
            let mut h = [0u8; 16];
            h[0] = i.wrapping_mul(5);
            h[1] = 0x40;
            sketch.insert(&h);
        }
        let s = SketchWitnessSample::new(&[3; 32], &[4; 32], &sketch, 16);
        assert_eq!(s.registers().len(), 16);
        let set: BTreeSet<usize> = s.registers().iter().copied().collect();
        assert_eq!(set.len(), 16);
        assert!(s.registers().iter().all(|j| sketch.register(*j) != 0));
        let all = SketchWitnessSample::new(&[3; 32], &[4; 32], &sketch, 100);
        assert_eq!(all.registers().len(), 40);
    }
}
