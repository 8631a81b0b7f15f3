//! The RFC 6962 §2.1 definitions, written straight from the RFC, compared with the crate's
//! tree for every size 0..=300 and every index.

use std::collections::HashMap;

use proptest::prelude::*;
use sha2::{Digest, Sha256};
use tolldns_receipts::merkle::{self, MerkleTree};
use tolldns_receipts::{MerkleProof, ProofError};

/// Largest power of two strictly smaller than `n` (n > 1).
fn k_for(n: usize) -> usize {
    let mut k = 1;
    while k * 2 < n {
        k *= 2;
    }
    k
}

/// MTH(D[n]).
fn mth(d: &[Vec<u8>]) -> [u8; 32] {
    match d.len() {
        0 => Sha256::digest(b"").into(),
        1 => {
            let mut h = Sha256::new();
            h.update([0x00]);
            h.update(&d[0]);
            h.finalize().into()
        }
        n => {
            let k = k_for(n);
            let mut h = Sha256::new();
            h.update([0x01]);
            h.update(mth(&d[..k]));
            h.update(mth(&d[k..]));
            h.finalize().into()
        }
    }
}

/// MTH(D[start..end]) of the full data set, memoized: the same subtree recurs in the paths of
/// many indices and sizes, and its hash depends only on its range.
fn mth_range(
    data: &[Vec<u8>],
    start: usize,
    end: usize,
    memo: &mut HashMap<(usize, usize), [u8; 32]>,
) -> [u8; 32] {
    if let Some(h) = memo.get(&(start, end)) {
        return *h;
    }
    let h = mth(&data[start..end]);
    memo.insert((start, end), h);
    h
}

/// PATH(m, D[start..end]), with RFC 6962's recursion:
/// PATH(m, D[n]) = PATH(m, D[0:k]) : MTH(D[k:n]) for m < k,
/// PATH(m - k, D[k:n]) : MTH(D[0:k]) otherwise; the path of a single leaf is empty.
fn path(
    m: usize,
    data: &[Vec<u8>],
    start: usize,
    end: usize,
    memo: &mut HashMap<(usize, usize), [u8; 32]>,
) -> Vec<[u8; 32]> {
    let n = end - start;
    if n <= 1 {
        return vec![];
    }
    let k = k_for(n);
    if m < k {
        let mut p = path(m, data, start, start + k, memo);
        p.push(mth_range(data, start + k, end, memo));
        p
    } else {
        let mut p = path(m - k, data, start + k, end, memo);
        p.push(mth_range(data, start, start + k, memo));
        p
    }
}

#[allow(clippy::needless_range_loop)]
fn check_all_sizes(data: &[Vec<u8>]) {
    let mut memo = HashMap::new();
    for n in 0..=data.len() {
        let d = &data[..n];
        let hashes: Vec<[u8; 32]> = d.iter().map(|x| merkle::leaf_hash(x)).collect();
        let expected_root = mth(d);
        assert_eq!(
            merkle::root(&hashes),
            expected_root,
            "streaming root, n = {n}"
        );
        let tree = MerkleTree::from_leaf_hashes(hashes.clone());
        assert_eq!(tree.root(), expected_root, "tree root, n = {n}");
        for m in 0..n {
            let proof = tree.proof(m as u64).unwrap();
            assert_eq!(
                proof.path,
                path(m, data, 0, n, &mut memo),
                "path m = {m}, n = {n}"
            );
            assert_eq!(proof.verify(&hashes[m], &expected_root), Ok(()));
            let next = (m + 1) % n;
            if n > 1 && hashes[next] != hashes[m] {
                // The leaf never verifies at another index whose leaf differs (identical
                // leaves, e.g. two empty ones side by side, rightly verify at either index).
                let other = MerkleProof {
                    leaf_index: next as u64,
                    ..proof.clone()
                };
                assert!(other.verify(&hashes[m], &expected_root).is_err());
            }
        }
        assert_eq!(
            tree.proof(n as u64),
            Err(ProofError::IndexOutOfRange {
                index: n as u64,
                size: n as u64
            })
        );
    }
}

#[test]
fn identical_leaves_match_the_reference() {
    // Every leaf the same: proofs are still exact, and a proof verifies at any index.
    check_all_sizes(&vec![Vec::new(); 40]);
    check_all_sizes(&vec![vec![0xab; 3]; 17]);
}

#[test]
fn empty_tree_root_is_sha256_of_empty_string() {
    assert_eq!(
        hex::encode(merkle::root(&[])),
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 3, ..ProptestConfig::default() })]

    /// Every size 0..=300, every index: root and audit path equal the RFC's.
    #[test]
    fn matches_rfc6962_for_every_size_and_index(
        data in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..80), 300)
    ) {
        check_all_sizes(&data);
    }

    /// A proof with any one bit of its path changed, or a leaf or root with one bit changed,
    /// never verifies. (`leaf_index` and `tree_size` are bound separately: the verifier
    /// requires the sampled index and the receipt's `leaf_count`.)
    #[test]
    fn mutated_proofs_fail(n in 2usize..300, m_seed in any::<usize>(), bit in any::<usize>(), target in 0u8..3) {
        let data: Vec<Vec<u8>> = (0..n).map(|i| (i as u32).to_le_bytes().to_vec()).collect();
        let hashes: Vec<[u8; 32]> = data.iter().map(|x| merkle::leaf_hash(x)).collect();
        let tree = MerkleTree::from_leaf_hashes(hashes.clone());
        let m = m_seed % n;
        let mut proof = tree.proof(m as u64).unwrap();
        let mut leaf = hashes[m];
        let mut root = tree.root();
        prop_assert_eq!(proof.verify(&leaf, &root), Ok(()));
        match target {
            0 => {
                let b = bit % (proof.path.len() * 256);
                proof.path[b / 256][(b % 256) / 8] ^= 1 << (b % 8);
            }
            1 => leaf[(bit % 256) / 8] ^= 1 << (bit % 8),
            _ => root[(bit % 256) / 8] ^= 1 << (bit % 8),
        }
        prop_assert_eq!(proof.verify(&leaf, &root), Err(ProofError::RootMismatch));
    }
}
