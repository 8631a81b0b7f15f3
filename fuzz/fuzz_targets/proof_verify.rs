//! Arbitrary proofs, leaves and roots: verification never panics. A proof generated for a
//! tree built from the input always verifies; the same proof with one bit of its path, its
//! leaf or its root flipped never does.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use tolldns_receipts::merkle::{self, MerkleTree};
use tolldns_receipts::{MerkleProof, ProofError};

#[derive(Arbitrary, Debug)]
struct Input {
    leaf_index: u64,
    tree_size: u64,
    path: Vec<[u8; 32]>,
    leaf: [u8; 32],
    root: [u8; 32],
    leaves: Vec<u16>,
    pick: u16,
    flip: u16,
    target: u8,
}

fuzz_target!(|input: Input| {
    // Arbitrary proofs: any outcome but a panic.
    let arbitrary = MerkleProof {
        leaf_index: input.leaf_index,
        tree_size: input.tree_size,
        path: input.path,
    };
    let _ = arbitrary.verify(&input.leaf, &input.root);
    let _ = MerkleProof::from_bytes(&arbitrary.to_bytes());

    // Generated proofs of a real tree (up to 2^16 leaves derived from the input).
    let n = input.leaves.len();
    if n == 0 {
        return;
    }
    let hashes: Vec<[u8; 32]> = input
        .leaves
        .iter()
        .enumerate()
        .map(|(i, v)| {
            merkle::leaf_hash(&[(i as u32).to_le_bytes().as_slice(), &v.to_le_bytes()].concat())
        })
        .collect();
    let tree = MerkleTree::from_leaf_hashes(hashes.clone());
    let root = tree.root();
    assert_eq!(merkle::root(&hashes), root);
    let m = usize::from(input.pick) % n;
    let proof = tree.proof(m as u64).expect("index in range");
    assert_eq!(proof.verify(&hashes[m], &root), Ok(()));
    assert_eq!(
        MerkleProof::from_bytes(&proof.to_bytes()).as_ref(),
        Ok(&proof)
    );

    let bit = usize::from(input.flip);
    let mut proof2 = proof.clone();
    let mut leaf = hashes[m];
    let mut root2 = root;
    match input.target % 3 {
        0 if !proof2.path.is_empty() => {
            let b = bit % (proof2.path.len() * 256);
            proof2.path[b / 256][(b % 256) / 8] ^= 1 << (b % 8);
        }
        1 => leaf[(bit % 256) / 8] ^= 1 << (bit % 8),
        _ => root2[(bit % 256) / 8] ^= 1 << (bit % 8),
    }
    assert_eq!(proof2.verify(&leaf, &root2), Err(ProofError::RootMismatch));
});
