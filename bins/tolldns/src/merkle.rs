//! `tolldns merkle …`: RFC 6962 roots, audit paths and their verification over hex leaves,
//! with `tolldns_receipts::merkle`.
//!
//! Leaves are arbitrary byte strings (hex-decoded), each hashed as `SHA256(0x00 || leaf)`.
//! Given no leaf arguments, the commands read one hex leaf per line from stdin, ignoring blank
//! lines (an empty leaf can only be an empty argument).

use std::io::{BufRead, BufReader, Read, Write};

use clap::{Args, Subcommand};
use serde::Serialize;
use tolldns_receipts::merkle::{self, Hash, MerkleProof, MerkleTree, ProofError};

use crate::error::CliError;

/// Arguments of `tolldns merkle`.
#[derive(Debug, Args)]
pub struct MerkleArgs {
    /// What to compute.
    #[command(subcommand)]
    pub command: MerkleCommand,
}

/// Subcommands of `tolldns merkle`.
#[derive(Debug, Subcommand)]
pub enum MerkleCommand {
    /// Prints the root (64 hex characters) of the tree over the leaves.
    #[command(
        long_about = "Prints the RFC 6962 root (64 hex characters) of the tree over the \
leaves, in order. Leaves are hex arguments or, when none are given, lines on stdin (blank lines \
ignored; an empty leaf can only be given as an empty argument, \"\"). No leaves: the root of the \
empty tree, SHA256(\"\").\n\nExit codes: 0 success, 2 bad input."
    )]
    Root {
        /// Print {"tree_size", "root"} as JSON.
        #[arg(long)]
        json: bool,
        /// Leaves, in hex; read from stdin when none are given.
        #[arg(value_name = "HEX_LEAF")]
        leaves: Vec<String>,
    },
    /// Prints the audit path of one leaf: one sibling hash per line, from the leaf level up.
    #[command(
        long_about = "Prints RFC 6962's audit path PATH(index, leaves) of one leaf: one \
sibling hash (64 hex characters) per line, from the leaf level up to the root's children (no \
lines for a one-leaf tree). With --json prints {\"index\", \"tree_size\", \"leaf_hash\", \"path\": \
[...], \"root\"}. Leaves are hex arguments or, when none are given, lines on stdin (blank lines \
ignored).\n\nExit codes: 0 success, 2 bad input (including an index outside the tree)."
    )]
    Proof {
        /// The leaf's zero-based index.
        #[arg(long, value_name = "N")]
        index: u64,
        /// Print the proof as JSON.
        #[arg(long)]
        json: bool,
        /// Leaves, in hex; read from stdin when none are given.
        #[arg(value_name = "HEX_LEAF")]
        leaves: Vec<String>,
    },
    /// Checks that a leaf is leaf N of a tree of M leaves with the given root.
    #[command(
        long_about = "Checks an RFC 6962 audit path (RFC 9162 §2.1.3.2): that the leaf \
(hex bytes, hashed as SHA256(0x00 || leaf)) is leaf --index of a tree of --size leaves whose root \
is --root, given the path's sibling hashes from the leaf level up.\n\nExit codes: 0 the proof \
verifies, 1 it does not (index outside the tree, path too long or too short, or another root), 2 \
bad input."
    )]
    Verify {
        /// The leaf's zero-based index.
        #[arg(long, value_name = "N")]
        index: u64,
        /// The tree's leaf count.
        #[arg(long, value_name = "M")]
        size: u64,
        /// The expected root (64 hex characters).
        #[arg(long, value_name = "HEX")]
        root: String,
        /// The leaf, in hex.
        #[arg(long, value_name = "HEX")]
        leaf: String,
        /// The audit path: sibling hashes (64 hex characters each), from the leaf level up.
        #[arg(value_name = "PATH")]
        path: Vec<String>,
    },
}

/// An audit path as `tolldns merkle proof --json` prints it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProofReport {
    /// The leaf's index.
    pub index: u64,
    /// The number of leaves.
    pub tree_size: u64,
    /// `SHA256(0x00 || leaf)`, hex.
    pub leaf_hash: String,
    /// Sibling hashes from the leaf level up, hex.
    pub path: Vec<String>,
    /// The tree's root, hex.
    pub root: String,
}

/// The output of `tolldns merkle root --json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RootReport {
    /// The number of leaves.
    pub tree_size: u64,
    /// The root, hex.
    pub root: String,
}

/// Runs `tolldns merkle …`.
///
/// # Errors
///
/// [`CliError::BadField`] for malformed hex or an index outside the tree,
/// [`CliError::VerificationFailed`] when `verify` fails, I/O errors.
pub fn run(args: &MerkleArgs, stdin: &mut dyn Read, stdout: &mut dyn Write) -> anyhow::Result<()> {
    match &args.command {
        MerkleCommand::Root { json, leaves } => {
            let hashes = leaf_hashes(leaves, stdin)?;
            let root = merkle::root(&hashes);
            if *json {
                let report = RootReport {
                    tree_size: hashes.len() as u64,
                    root: hex::encode(root),
                };
                crate::write_json(stdout, &report)
            } else {
                writeln!(stdout, "{}", hex::encode(root))?;
                stdout.flush()?;
                Ok(())
            }
        }
        MerkleCommand::Proof {
            index,
            json,
            leaves,
        } => {
            let report = proof(leaf_hashes(leaves, stdin)?, *index)?;
            if *json {
                crate::write_json(stdout, &report)
            } else {
                for h in &report.path {
                    writeln!(stdout, "{h}")?;
                }
                stdout.flush()?;
                Ok(())
            }
        }
        MerkleCommand::Verify {
            index,
            size,
            root,
            leaf,
            path,
        } => {
            let leaf = crate::parse_hex("--leaf", leaf)?;
            let root = crate::parse_hash("--root", root)?;
            let path = path
                .iter()
                .enumerate()
                .map(|(i, h)| crate::parse_hash(&format!("PATH[{i}]"), h))
                .collect::<Result<Vec<_>, _>>()?;
            verify(&leaf, *index, *size, path, &root)?;
            writeln!(
                stdout,
                "valid: leaf {index} of {size} is under root {}",
                hex::encode(root)
            )?;
            stdout.flush()?;
            Ok(())
        }
    }
}

/// The audit path of leaf `index` of the tree over `hashes`.
///
/// # Errors
///
/// [`CliError::BadField`] (`--index`) when `index` is not below the leaf count.
pub fn proof(hashes: Vec<Hash>, index: u64) -> Result<ProofReport, CliError> {
    let tree = MerkleTree::from_leaf_hashes(hashes);
    let p = tree
        .proof(index)
        .map_err(|e| CliError::field("--index", e.to_string()))?;
    let leaf_hash = tree
        .leaf_hash(index)
        .ok_or_else(|| CliError::field("--index", "outside the tree"))?;
    Ok(ProofReport {
        index,
        tree_size: p.tree_size,
        leaf_hash: hex::encode(leaf_hash),
        path: p.path.iter().map(hex::encode).collect(),
        root: hex::encode(tree.root()),
    })
}

/// Checks that `leaf` (raw bytes) is leaf `index` of a `size`-leaf tree with `root`.
///
/// # Errors
///
/// [`CliError::VerificationFailed`] naming the [`ProofError`].
pub fn verify(
    leaf: &[u8],
    index: u64,
    size: u64,
    path: Vec<Hash>,
    root: &Hash,
) -> Result<(), CliError> {
    let proof = MerkleProof {
        leaf_index: index,
        tree_size: size,
        path,
    };
    proof
        .verify(&merkle::leaf_hash(leaf), root)
        .map_err(|e| CliError::VerificationFailed(format!("{}: {e}", proof_error_name(e))))
}

/// The rule name of a [`ProofError`] (its variant name).
pub(crate) fn proof_error_name(e: ProofError) -> &'static str {
    match e {
        ProofError::IndexOutOfRange { .. } => "IndexOutOfRange",
        ProofError::PathTooLong => "PathTooLong",
        ProofError::PathTooShort => "PathTooShort",
        ProofError::RootMismatch => "RootMismatch",
        _ => "InvalidProof",
    }
}

/// The leaf hashes of hex `leaves`, or of the non-blank lines of `stdin` when there are none.
fn leaf_hashes(leaves: &[String], stdin: &mut dyn Read) -> anyhow::Result<Vec<Hash>> {
    use anyhow::Context as _;
    let mut hashes = Vec::new();
    if leaves.is_empty() {
        for (n, line) in BufReader::new(stdin).lines().enumerate() {
            let line = line.context("reading leaves from stdin")?;
            let text = line.trim();
            if text.is_empty() {
                continue;
            }
            let leaf = crate::parse_hex(&format!("stdin line {}", n + 1), text)?;
            hashes.push(merkle::leaf_hash(&leaf));
        }
    } else {
        for (i, text) in leaves.iter().enumerate() {
            let leaf = crate::parse_hex(&format!("HEX_LEAF[{i}]"), text.trim())?;
            hashes.push(merkle::leaf_hash(&leaf));
        }
    }
    Ok(hashes)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The Certificate Transparency reference leaves (RFC 6962 test data).
    const CT_LEAVES: [&str; 8] = [
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    ];

    fn ct_hashes(n: usize) -> Vec<Hash> {
        CT_LEAVES[..n]
            .iter()
            .map(|l| merkle::leaf_hash(&hex::decode(l).unwrap()))
            .collect()
    }

    #[test]
    fn ct_roots() {
        let expect = [
            (
                1,
                "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            ),
            (
                2,
                "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
            ),
            (
                3,
                "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
            ),
            (
                7,
                "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
            ),
            (
                8,
                "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
            ),
        ];
        for (n, root) in expect {
            assert_eq!(hex::encode(merkle::root(&ct_hashes(n))), root, "n = {n}");
        }
    }

    #[test]
    fn proofs_round_trip_and_tampering_fails() {
        for n in 1..=8 {
            for i in 0..n as u64 {
                let report = proof(ct_hashes(n), i).unwrap();
                let path: Vec<Hash> = report
                    .path
                    .iter()
                    .map(|h| crate::parse_hash("p", h).unwrap())
                    .collect();
                let root = crate::parse_hash("r", &report.root).unwrap();
                let leaf = hex::decode(CT_LEAVES[i as usize]).unwrap();
                verify(&leaf, i, n as u64, path.clone(), &root).unwrap();
                let mut other = leaf.clone();
                other.push(0);
                let err = verify(&other, i, n as u64, path, &root).unwrap_err();
                assert_eq!(
                    err.to_string(),
                    "verification failed: RootMismatch: audit path does not lead to the root"
                );
            }
        }
        assert_eq!(
            proof(ct_hashes(3), 3).unwrap_err().to_string(),
            "--index: leaf index 3 is outside a tree of 3 leaves"
        );
    }
}
