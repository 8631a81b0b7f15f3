//! Audit sampling: sample size, uniformity, and the detection rate it promises.

use std::collections::BTreeSet;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tolldns_receipts::{AuditSample, sample_size};

#[test]
fn sample_size_examples() {
    assert_eq!(sample_size(0.99, 0.10, 1_000), Ok(44));
    assert_eq!(sample_size(0.99, 0.05, 1_000), Ok(90));
    assert_eq!(sample_size(0.99, 0.10, 30), Ok(30));
}

/// 10,000 batches of 1,000 leaves, 100 of them fake (at random positions), each audited with
/// k = 44 indices from a fresh seed: at least one fake leaf must be sampled in ≥ 99 % of
/// batches (asserted ≥ 98.5 % for statistical noise; the exact rate without replacement is
/// 1 - C(900,44)/C(1000,44) ≈ 99.1 %).
#[test]
fn ten_percent_fakes_are_caught_99_percent_of_the_time() {
    let mut rng = StdRng::seed_from_u64(0x0701_1d05);
    let (batches, leaves, fakes) = (10_000u32, 1_000u64, 100usize);
    let k = sample_size(0.99, 0.10, leaves).unwrap();
    assert_eq!(k, 44);
    let mut caught = 0u32;
    for _ in 0..batches {
        let fake: BTreeSet<u64> = rand::seq::index::sample(&mut rng, leaves as usize, fakes)
            .into_iter()
            .map(|i| i as u64)
            .collect();
        let seed: [u8; 32] = rng.r#gen();
        let root: [u8; 32] = rng.r#gen();
        let sample = AuditSample::new(&seed, &root, leaves, k);
        assert_eq!(sample.indices().len(), 44);
        if sample.indices().iter().any(|i| fake.contains(i)) {
            caught += 1;
        }
    }
    let rate = f64::from(caught) / f64::from(batches);
    println!("detection rate with k = {k}: {rate:.4} ({caught}/{batches})");
    assert!(rate >= 0.985, "detection rate {rate}");
}

/// No modulo bias: with n = 3 (2^64 mod 3 = 1, so one draw value is rejected), each index is
/// first in about a third of 30,000 samples.
#[test]
fn first_index_is_uniform() {
    let mut counts = [0u32; 3];
    for s in 0..30_000u32 {
        let mut seed = [0u8; 32];
        seed[..4].copy_from_slice(&s.to_le_bytes());
        let sample = AuditSample::new(&seed, &[0; 32], 3, 1);
        counts[sample.indices()[0] as usize] += 1;
    }
    for c in counts {
        assert!((9_500..10_500).contains(&c), "{counts:?}");
    }
}
