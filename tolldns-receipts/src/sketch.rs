//! The distinct-name sketch of a v2 receipt: a HyperLogLog over the name hashes of the
//! window's ticketed leaves.
//!
//! - **Size**: [`SKETCH_REGISTERS`] = 256 one-byte registers (precision p = 8).
//! - **Cell of a leaf**: register `j = name_hash[0]`; rank `ρ` = the number of leading zero
//!   bits of `name_hash[1..9]` read as a big-endian `u64`, plus one (65 when all 64 bits are
//!   zero). The name hash is already a keyed HMAC, so its bits are uniform.
//! - **Register**: the largest rank of any ticketed leaf in the register (0 when none).
//! - **Merge**: register-wise maximum. Sketches merge across the windows of one operator and
//!   name-key epoch (the same name gets the same hash); sketches under different name keys
//!   count the same name once per key.
//! - **Estimate** ([`NameSketch::estimate`]): `E = α·m² / Σ 2^-M[j]` with `m = 256`,
//!   `α = 0.7213 / (1 + 1.079 / m)`; when `E ≤ 2.5·m` and `V > 0` registers are zero, linear
//!   counting `m·ln(m / V)` instead. Relative standard error `1.04 / √m ≈ 6.5 %`. Computed in
//!   IEEE 754 double precision with `libm`, rounded down to an integer, the same on every
//!   target.
//! - **Audit**: every sampled ticketed leaf must satisfy `M[j] ≥ ρ` (otherwise the sketch
//!   understates, which an operator has no reason to do but a broken builder might), and for
//!   every register a verifier draws among the non-zero ones, the operator shows a ticketed
//!   leaf with exactly that `(j, ρ)` and its inclusion proof ([`crate::SketchWitnessSample`],
//!   [`crate::Verifier::check_sketch_witnesses`]): an inflated register has no such leaf.
//!   The operator chooses its leaves' name hashes, so a few ticketed leaves can still set
//!   registers high: the count a score uses is capped at the ticketed leaves
//!   ([`crate::V2Commitments::distinct_names`]).

use core::fmt;

use crate::codec::DecodeError;

/// Number of registers of a [`NameSketch`].
pub const SKETCH_REGISTERS: usize = 256;
/// The largest rank a register can hold.
pub const MAX_RANK: u8 = 65;

/// The cell `(register, rank)` of a name hash.
pub(crate) fn cell(name_hash: &[u8; 16]) -> (usize, u8) {
    let [j, rest @ ..] = *name_hash;
    let mut w = [0u8; 8];
    for (d, s) in w.iter_mut().zip(rest) {
        *d = s;
    }
    let zeros = u64::from_be_bytes(w).leading_zeros();
    // At most 64 leading zeros, so the rank is at most 65.
    let rank = u8::try_from(zeros).unwrap_or(64).saturating_add(1);
    (usize::from(j), rank)
}

/// A mergeable distinct-count sketch of name hashes (see the module docs for the exact
/// definition). Borsh: the 256 registers in order.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct NameSketch {
    registers: [u8; SKETCH_REGISTERS],
}

impl Default for NameSketch {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for NameSketch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let filled = self.registers.iter().filter(|r| **r != 0).count();
        write!(
            f,
            "NameSketch {{ filled: {filled}, estimate: {} }}",
            self.estimate()
        )
    }
}

impl NameSketch {
    /// An empty sketch.
    pub const fn new() -> Self {
        Self {
            registers: [0; SKETCH_REGISTERS],
        }
    }

    /// Record one name hash.
    pub fn insert(&mut self, name_hash: &[u8; 16]) {
        let (j, rank) = cell(name_hash);
        if let Some(r) = self.registers.get_mut(j) {
            *r = (*r).max(rank);
        }
    }

    /// Register `j` (0 for an index past the end).
    pub fn register(&self, j: usize) -> u8 {
        self.registers.get(j).copied().unwrap_or(0)
    }

    /// All registers.
    pub const fn registers(&self) -> &[u8; SKETCH_REGISTERS] {
        &self.registers
    }

    /// Whether no name was recorded.
    pub fn is_empty(&self) -> bool {
        self.registers.iter().all(|r| *r == 0)
    }

    /// Merge `other` into this sketch (register-wise maximum).
    pub fn merge(&mut self, other: &Self) {
        for (a, b) in self.registers.iter_mut().zip(other.registers.iter()) {
            *a = (*a).max(*b);
        }
    }

    /// The estimated number of distinct names (see the module docs).
    pub fn estimate(&self) -> u64 {
        #[allow(clippy::cast_precision_loss)]
        let m = SKETCH_REGISTERS as f64;
        let alpha = 0.7213 / (1.0 + 1.079 / m);
        let mut sum = 0.0f64;
        let mut zeros = 0u32;
        for r in &self.registers {
            sum += libm::exp2(-f64::from(*r));
            if *r == 0 {
                zeros = zeros.saturating_add(1);
            }
        }
        let raw = alpha * m * m / sum;
        let e = if raw <= 2.5 * m && zeros > 0 {
            m * libm::log(m / f64::from(zeros))
        } else {
            raw
        };
        // Finite and non-negative; `as` saturates.
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let n = libm::floor(e) as u64;
        n
    }

    /// The registers as bytes.
    pub const fn to_bytes(&self) -> [u8; SKETCH_REGISTERS] {
        self.registers
    }

    /// A sketch from its registers.
    ///
    /// # Errors
    ///
    /// [`DecodeError::SketchRegisterOutOfRange`] for a register above [`MAX_RANK`].
    pub fn from_bytes(registers: [u8; SKETCH_REGISTERS]) -> Result<Self, DecodeError> {
        if let Some((register, value)) = registers.iter().enumerate().find(|(_, v)| **v > MAX_RANK)
        {
            return Err(DecodeError::SketchRegisterOutOfRange {
                register,
                value: *value,
            });
        }
        Ok(Self { registers })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tolldns_core::{NameKey, NormalizedName};

    #[test]
    fn cells_follow_the_definition() {
        let mut h = [0u8; 16];
        h[0] = 7;
        assert_eq!(cell(&h), (7, 65));
        h[1] = 0x80;
        assert_eq!(cell(&h), (7, 1));
        h[1] = 0x01;
        assert_eq!(cell(&h), (7, 8));
        h[1] = 0;
        h[8] = 1;
        assert_eq!(cell(&h), (7, 64));
    }

    #[test]
    fn estimate_error_is_within_four_standard_errors() {
        let key = NameKey([5; 32]);
        for n in [0u64, 1, 10, 100, 1_000, 10_000, 100_000] {
            let mut s = NameSketch::new();
            for i in 0..n {
                let name = NormalizedName::new(&format!("n{i}.example")).unwrap();
                s.insert(&key.name_hash(&name));
                // A repeated name does not count twice.
                s.insert(&key.name_hash(&name));
            }
            let e = s.estimate() as f64;
            let tol = (n as f64 * 4.0 * 0.065).max(2.0);
            assert!((e - n as f64).abs() <= tol, "n={n} estimate={e}");
        }
    }

    #[test]
    fn merge_is_the_sketch_of_the_union() {
        let key = NameKey([6; 32]);
        let (mut a, mut b, mut all) = (NameSketch::new(), NameSketch::new(), NameSketch::new());
        for i in 0..3_000 {
            let h = key.name_hash(&NormalizedName::new(&format!("m{i}.example")).unwrap());
            if i % 3 == 0 {
                a.insert(&h);
            } else {
                b.insert(&h);
            }
            all.insert(&h);
        }
        a.merge(&b);
        assert_eq!(a, all);
        assert_eq!(
            NameSketch::from_bytes([66; 256]),
            Err(DecodeError::SketchRegisterOutOfRange {
                register: 0,
                value: 66
            })
        );
        assert_eq!(NameSketch::from_bytes(all.to_bytes()), Ok(all));
    }
}
