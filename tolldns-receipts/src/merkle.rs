//! RFC 6962 §2.1 Merkle trees: leaf and node hashing, roots, audit paths and their
//! verification (RFC 9162 §2.1.3.2).
//!
//! The tree over `n` leaves is the RFC's: the left subtree holds the largest power of two
//! strictly below `n`, the right subtree the rest, recursively. Built bottom-up, this is the
//! same as pairing each level left to right and carrying an unpaired last node up unchanged,
//! never duplicated. The root of the empty tree is `SHA256("")`.

use alloc::vec::Vec;
use core::fmt;

use sha2::{Digest, Sha256};
use tolldns_core::hash::{MERKLE_LEAF_PREFIX, MERKLE_NODE_PREFIX};

use crate::codec::{DecodeError, Reader, Writer};

/// A SHA-256 digest.
pub type Hash = [u8; 32];

/// The root of the empty tree: `SHA256("")`.
pub const EMPTY_ROOT: Hash = [
    0xe3, 0xb0, 0xc4, 0x42, 0x98, 0xfc, 0x1c, 0x14, 0x9a, 0xfb, 0xf4, 0xc8, 0x99, 0x6f, 0xb9, 0x24,
    0x27, 0xae, 0x41, 0xe4, 0x64, 0x9b, 0x93, 0x4c, 0xa4, 0x95, 0x99, 0x1b, 0x78, 0x52, 0xb8, 0x55,
];

/// The longest audit path: a tree of at most `2^64 - 1` leaves has depth at most 64.
pub const MAX_PATH_LEN: usize = 64;

/// `SHA256(0x00 || leaf)`.
pub fn leaf_hash(leaf: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update([MERKLE_LEAF_PREFIX]);
    h.update(leaf);
    h.finalize().into()
}

/// `SHA256(0x01 || left || right)`.
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut h = Sha256::new();
    h.update([MERKLE_NODE_PREFIX]);
    h.update(left);
    h.update(right);
    h.finalize().into()
}

/// The root over leaf hashes, in `O(log n)` memory (see [`RootBuilder`]).
pub fn root(leaf_hashes: &[Hash]) -> Hash {
    let mut b = RootBuilder::new();
    for h in leaf_hashes {
        b.push(*h);
    }
    b.finish()
}

/// Computes an RFC 6962 root from a stream of leaf hashes without storing them: it keeps the
/// roots of the perfect subtrees seen so far (at most 64), merging two equal-sized ones as
/// soon as they exist, and folds them right to left at the end.
#[derive(Debug, Clone)]
pub struct RootBuilder {
    stack: [Hash; MAX_PATH_LEN],
    depth: usize,
    count: u64,
}

impl Default for RootBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl RootBuilder {
    /// An empty builder.
    pub const fn new() -> Self {
        Self {
            stack: [[0; 32]; MAX_PATH_LEN],
            depth: 0,
            count: 0,
        }
    }

    /// Leaves pushed so far.
    pub const fn len(&self) -> u64 {
        self.count
    }

    /// Whether no leaf was pushed.
    pub const fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Append a leaf hash. After `2^64 - 1` leaves further pushes are ignored (a count that
    /// no machine reaches).
    pub fn push(&mut self, leaf_hash: Hash) {
        self.push_completing(leaf_hash, u32::MAX);
    }

    /// Append a leaf hash, as [`push`](Self::push), and return the root of the perfect
    /// subtree of `2^level` leaves that this leaf completes, if it completes one: when the
    /// new leaf count is a multiple of `2^level`, the root over the last `2^level` leaves
    /// (an aligned subtree of the RFC 6962 tree, computed on the way at no extra cost).
    pub fn push_completing(&mut self, leaf_hash: Hash, level: u32) -> Option<Hash> {
        let next = self.count.checked_add(1)?;
        let mut h = leaf_hash;
        let mut completed = (level == 0).then_some(h);
        // Each trailing one bit of the old count is a perfect subtree of the same size as the
        // one being carried: merge them. After `k` merges `h` is the root of the last `2^k`
        // leaves.
        let mut c = self.count;
        let mut merged = 0u32;
        while c & 1 == 1 {
            let Some(d) = self.depth.checked_sub(1) else {
                break;
            };
            let Some(left) = self.stack.get(d) else {
                break;
            };
            h = node_hash(left, &h);
            merged = merged.saturating_add(1);
            if merged == level {
                completed = Some(h);
            }
            self.depth = d;
            c >>= 1;
        }
        if let Some(slot) = self.stack.get_mut(self.depth) {
            *slot = h;
            self.depth = self.depth.saturating_add(1);
        }
        self.count = next;
        completed
    }

    /// The root of the leaves pushed so far.
    pub fn finish(&self) -> Hash {
        let mut subtrees = self.stack.iter().take(self.depth).rev();
        let Some(mut acc) = subtrees.next().copied() else {
            return EMPTY_ROOT;
        };
        for left in subtrees {
            acc = node_hash(left, &acc);
        }
        acc
    }
}

/// A Merkle tree kept in memory level by level, to serve audit paths.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MerkleTree {
    /// `levels[0]` are the leaf hashes; the last level holds the root (absent when empty).
    levels: Vec<Vec<Hash>>,
}

impl MerkleTree {
    /// Build the tree over leaf hashes.
    pub fn from_leaf_hashes(leaf_hashes: Vec<Hash>) -> Self {
        let mut levels = Vec::new();
        let mut current = leaf_hashes;
        while current.len() > 1 {
            let next: Vec<Hash> = current
                .chunks(2)
                .map(|pair| match pair {
                    [l, r] => node_hash(l, r),
                    [single] => *single,
                    _ => EMPTY_ROOT, // `chunks(2)` yields one or two items.
                })
                .collect();
            levels.push(current);
            current = next;
        }
        levels.push(current);
        Self { levels }
    }

    /// Number of leaves.
    pub fn len(&self) -> u64 {
        self.levels
            .first()
            .map_or(0, |l| u64::try_from(l.len()).unwrap_or(u64::MAX))
    }

    /// Whether the tree has no leaf.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The root.
    pub fn root(&self) -> Hash {
        self.levels
            .last()
            .and_then(|top| top.first())
            .copied()
            .unwrap_or(EMPTY_ROOT)
    }

    /// The hash of leaf `index`.
    pub fn leaf_hash(&self, index: u64) -> Option<Hash> {
        let i = usize::try_from(index).ok()?;
        self.levels.first()?.get(i).copied()
    }

    /// The audit path of leaf `index` (RFC 6962 §2.1.1 `PATH`): siblings from the leaf up.
    ///
    /// # Errors
    ///
    /// [`ProofError::IndexOutOfRange`] when `index` is not below the leaf count.
    pub fn proof(&self, index: u64) -> Result<MerkleProof, ProofError> {
        let size = self.len();
        if index >= size {
            return Err(ProofError::IndexOutOfRange { index, size });
        }
        let mut path = Vec::new();
        let mut i =
            usize::try_from(index).map_err(|_| ProofError::IndexOutOfRange { index, size })?;
        for level in self.levels.iter().take(self.levels.len().saturating_sub(1)) {
            if let Some(sibling) = level.get(i ^ 1) {
                path.push(*sibling);
            }
            i >>= 1;
        }
        Ok(MerkleProof {
            leaf_index: index,
            tree_size: size,
            path,
        })
    }
}

/// An RFC 6962 inclusion proof: the audit path of leaf `leaf_index` in a tree of `tree_size`
/// leaves, siblings ordered from the leaf up to the root.
///
/// Borsh: `leaf_index: u64`, `tree_size: u64`, `path: Vec<[u8; 32]>` (a `u32` count, then the
/// hashes).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MerkleProof {
    /// Index of the leaf, from 0.
    pub leaf_index: u64,
    /// Number of leaves in the tree.
    pub tree_size: u64,
    /// Sibling hashes, leaf level first.
    pub path: Vec<Hash>,
}

impl MerkleProof {
    /// The root this proof leads to from `leaf_hash` (RFC 9162 §2.1.3.2).
    ///
    /// # Errors
    ///
    /// [`ProofError::IndexOutOfRange`], [`ProofError::PathTooLong`] or
    /// [`ProofError::PathTooShort`] when the path does not fit the tree's shape.
    pub fn root_from(&self, leaf_hash: &Hash) -> Result<Hash, ProofError> {
        if self.leaf_index >= self.tree_size {
            return Err(ProofError::IndexOutOfRange {
                index: self.leaf_index,
                size: self.tree_size,
            });
        }
        if self.path.len() > MAX_PATH_LEN {
            return Err(ProofError::PathTooLong);
        }
        let mut f_n = self.leaf_index;
        let mut s_n = self.tree_size.saturating_sub(1);
        let mut r = *leaf_hash;
        for p in &self.path {
            if s_n == 0 {
                return Err(ProofError::PathTooLong);
            }
            if f_n & 1 == 1 || f_n == s_n {
                r = node_hash(p, &r);
                // A right edge: climb past the levels where this node has no right sibling.
                while f_n & 1 == 0 && f_n != 0 {
                    f_n >>= 1;
                    s_n >>= 1;
                }
            } else {
                r = node_hash(&r, p);
            }
            f_n >>= 1;
            s_n >>= 1;
        }
        if s_n != 0 {
            return Err(ProofError::PathTooShort);
        }
        Ok(r)
    }

    /// Check that `leaf_hash` is leaf `leaf_index` of the tree with root `root`.
    ///
    /// # Errors
    ///
    /// As [`MerkleProof::root_from`], and [`ProofError::RootMismatch`] when the path leads
    /// elsewhere.
    pub fn verify(&self, leaf_hash: &Hash, root: &Hash) -> Result<(), ProofError> {
        if self.root_from(leaf_hash)? == *root {
            Ok(())
        } else {
            Err(ProofError::RootMismatch)
        }
    }

    /// The Borsh encoding.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut w =
            Writer::with_capacity(20usize.saturating_add(self.path.len().saturating_mul(32)));
        w.u64(self.leaf_index);
        w.u64(self.tree_size);
        w.len_prefix(self.path.len());
        for h in &self.path {
            w.bytes(h);
        }
        w.buf
    }

    /// Decode the Borsh encoding. This checks the encoding only; [`MerkleProof::verify`]
    /// checks the proof.
    ///
    /// # Errors
    ///
    /// [`DecodeError::PathTooLong`] for more than 64 hashes, [`DecodeError::UnexpectedEnd`] or
    /// [`DecodeError::TrailingBytes`] when the length does not match.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes);
        let leaf_index = r.u64("leaf_index")?;
        let tree_size = r.u64("tree_size")?;
        let len = r.u32("path")?;
        let n = usize::try_from(len).unwrap_or(usize::MAX);
        if n > MAX_PATH_LEN {
            return Err(DecodeError::PathTooLong { len });
        }
        let mut path = Vec::with_capacity(n);
        for _ in 0..n {
            path.push(r.array("path")?);
        }
        r.finish()?;
        Ok(Self {
            leaf_index,
            tree_size,
            path,
        })
    }
}

/// Why an inclusion proof failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProofError {
    /// The leaf index is not below the tree size (or the tree is empty).
    IndexOutOfRange {
        /// The index.
        index: u64,
        /// The tree size.
        size: u64,
    },
    /// The path has more hashes than the tree's shape allows.
    PathTooLong,
    /// The path has fewer hashes than the tree's shape requires.
    PathTooShort,
    /// The path is well-formed but leads to another root.
    RootMismatch,
}

impl ProofError {
    /// A stable snake_case name for logs, JSON and the CLI.
    pub const fn name(&self) -> &'static str {
        match self {
            Self::IndexOutOfRange { .. } => "index_out_of_range",
            Self::PathTooLong => "path_too_long",
            Self::PathTooShort => "path_too_short",
            Self::RootMismatch => "root_mismatch",
        }
    }

    /// A stable numeric code (1–4), as the C API reports it.
    pub const fn code(&self) -> u16 {
        match self {
            Self::IndexOutOfRange { .. } => 1,
            Self::PathTooLong => 2,
            Self::PathTooShort => 3,
            Self::RootMismatch => 4,
        }
    }
}

impl fmt::Display for ProofError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::IndexOutOfRange { index, size } => {
                write!(f, "leaf index {index} is outside a tree of {size} leaves")
            }
            Self::PathTooLong => f.write_str("audit path is too long for the tree size"),
            Self::PathTooShort => f.write_str("audit path is too short for the tree size"),
            Self::RootMismatch => f.write_str("audit path does not lead to the root"),
        }
    }
}

impl core::error::Error for ProofError {}

#[cfg(test)]
mod tests {
    use super::*;

    fn hashes(n: usize) -> Vec<Hash> {
        (0..n as u32).map(|i| leaf_hash(&i.to_le_bytes())).collect()
    }

    #[test]
    fn empty_root_is_sha256_of_nothing() {
        let h: Hash = Sha256::digest([]).into();
        assert_eq!(EMPTY_ROOT, h);
        assert_eq!(root(&[]), EMPTY_ROOT);
        assert_eq!(MerkleTree::from_leaf_hashes(vec![]).root(), EMPTY_ROOT);
    }

    #[test]
    fn small_trees_by_hand() {
        let h = hashes(3);
        assert_eq!(root(&h[..1]), h[0]);
        assert_eq!(root(&h[..2]), node_hash(&h[0], &h[1]));
        // Three leaves: ((0 1) 2), the third carried up, not duplicated.
        let expected = node_hash(&node_hash(&h[0], &h[1]), &h[2]);
        assert_eq!(root(&h), expected);
        let tree = MerkleTree::from_leaf_hashes(h.clone());
        assert_eq!(tree.root(), expected);
        let p = tree.proof(2).unwrap();
        assert_eq!(p.path, vec![node_hash(&h[0], &h[1])]);
        assert_eq!(p.verify(&h[2], &expected), Ok(()));
        assert_eq!(
            tree.proof(3),
            Err(ProofError::IndexOutOfRange { index: 3, size: 3 })
        );
    }

    #[test]
    fn builder_and_tree_agree_and_proofs_verify() {
        for n in 0..70 {
            let h = hashes(n);
            let tree = MerkleTree::from_leaf_hashes(h.clone());
            assert_eq!(tree.root(), root(&h), "n = {n}");
            for i in 0..n as u64 {
                let p = tree.proof(i).unwrap();
                assert_eq!(p.verify(&h[i as usize], &tree.root()), Ok(()));
                assert_eq!(MerkleProof::from_bytes(&p.to_bytes()), Ok(p.clone()));
                let mut extra = p.clone();
                extra.path.push([0; 32]);
                assert_eq!(
                    extra.verify(&h[i as usize], &tree.root()),
                    Err(ProofError::PathTooLong)
                );
                if !p.path.is_empty() {
                    let mut short = p.clone();
                    short.path.pop();
                    assert_eq!(
                        short.verify(&h[i as usize], &tree.root()),
                        Err(ProofError::PathTooShort)
                    );
                }
            }
        }
    }

    #[test]
    fn pushes_report_the_roots_of_the_aligned_subtrees_they_complete() {
        for level in [0u32, 1, 2, 3] {
            let size = 1usize << level;
            for n in 0..40usize {
                let h = hashes(n);
                let mut b = RootBuilder::new();
                let mut got = Vec::new();
                for (i, x) in h.iter().enumerate() {
                    if let Some(r) = b.push_completing(*x, level) {
                        got.push((i, r));
                    }
                }
                let want: Vec<(usize, Hash)> = h
                    .chunks_exact(size)
                    .enumerate()
                    .map(|(c, chunk)| ((c + 1) * size - 1, root(chunk)))
                    .collect();
                assert_eq!(got, want, "level {level}, {n} leaves");
                assert_eq!(b.finish(), root(&h));
            }
        }
    }

    #[test]
    fn proof_decoding_is_strict() {
        let p = MerkleProof {
            leaf_index: 1,
            tree_size: 2,
            path: vec![[7; 32]],
        };
        let b = p.to_bytes();
        assert_eq!(b.len(), 8 + 8 + 4 + 32);
        assert_eq!(
            MerkleProof::from_bytes(&b[..b.len() - 1]),
            Err(DecodeError::UnexpectedEnd { field: "path" })
        );
        let mut long = b.clone();
        long.push(0);
        assert_eq!(
            MerkleProof::from_bytes(&long),
            Err(DecodeError::TrailingBytes { len: 1 })
        );
        let mut huge = b[..16].to_vec();
        huge.extend_from_slice(&65u32.to_le_bytes());
        assert_eq!(
            MerkleProof::from_bytes(&huge),
            Err(DecodeError::PathTooLong { len: 65 })
        );
    }
}
