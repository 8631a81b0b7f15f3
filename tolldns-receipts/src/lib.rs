//! Proof-of-serving receipts for TollDNS edge operators.
//!
//! An operator records one fixed-size, hash-only [`Leaf`] per answered DNS query, closes each
//! receipt window into one signed [`Receipt`] (the *batch receipt*) that commits to the
//! window's leaves under an RFC 6962 Merkle root, and keeps the leaves ([`ClosedBatch`]) to
//! answer audits. A verifier checks the receipt against every rule of the format
//! ([`Verifier`]), draws an [`AuditSample`] of leaf indices from a seed it picks after
//! submission, and checks the operator's [`MerkleProof`]s for them.
//!
//! Entry points:
//!
//! - [`Leaf`]: `to_bytes` / `from_bytes` (71 bytes in v2; `_v1` for the 69-byte v1 leaf),
//!   `hash`, `order`;
//! - [`BatchBuilder`] (feature `std`): `add` from many threads, then either `drain` leaves in
//!   strict order while the window is open into a [`WindowStream`] (constant memory; its
//!   `seal` signs the receipt) or `close` the whole window into a [`ClosedBatch`];
//!   [`ClosedBatch::seal`] does the same from a `Vec<Leaf>` without `std`, and
//!   [`ClosedBatch::from_parts`] rebuilds a batch from a receipt and its stored leaves;
//! - [`Receipt`] and [`ReceiptBody`]: canonical Borsh `to_bytes` / `from_bytes`, JSON
//!   `to_json` / `from_json` (feature `json`), `sign`, `verify_signature` (strict ed25519);
//! - [`merkle`]: [`merkle::root`], [`MerkleTree`], [`MerkleProof::verify`];
//! - [`AuditSample`] and [`sample_size`];
//! - [`Verifier`] with the caller's [`OperatorRegistry`], [`PolicyRegistry`] and
//!   [`ReceiptLedger`].
//!
//! The byte-exact format is specified in `docs/RECEIPTS.md`.
//!
//! The whole flow (the example needs the default `std` feature for [`BatchBuilder`]):
//!
#![cfg_attr(feature = "std", doc = "```")]
#![cfg_attr(not(feature = "std"), doc = "```ignore")]
//! use ed25519_dalek::SigningKey;
//! use tolldns_core::{BackendId, DeploymentId, NameKey, NormalizedName, OperatorId, Role, WindowId, WindowLen};
//! use tolldns_receipts::*;
//!
//! // The network: the score program's deployment id and its window length.
//! let deployment = Deployment::new(DeploymentId::derive(&[1; 32], &[2; 32]), WindowLen::DEFAULT);
//! // The operator's receipt-signing key and this epoch's name key.
//! let key = SigningKey::from_bytes(&[7; 32]);
//! let name_key = NameKey([9; 32]);
//! let window = WindowId::containing(1_760_000_100_000, deployment.window_len);
//!
//! // The edge records one leaf per answered query.
//! let builder = BatchBuilder::new(BuilderConfig::new(
//!     deployment.id,
//!     BackendId::new("edge-ingress")?,
//!     deployment.window_len,
//! ));
//! let name = NormalizedName::new("example.com")?;
//! for i in 0..100u64 {
//!     builder.add(Leaf {
//!         timestamp_ms: 1_760_000_100_000 + i,
//!         transport: Transport::Doh,
//!         qtype: 1,
//!         rcode_class: RcodeClass::NoError,
//!         work_class: WorkClass::CacheHit,
//!         flags: LeafFlags { cache_hit: true, ..LeafFlags::default() },
//!         latency: LatencyBucket::from_millis(3),
//!         response_bytes: 120,
//!         name_hash: name_key.name_hash(&name),
//!         ticket: [0; 16],
//!         response_summary_hash: Leaf::response_summary_hash(b"NOERROR A 1"),
//!         repeat: 0,
//!     })?;
//! }
//! assert_eq!(builder.dropped().total(), 0);
//!
//! // The window closes into a signed v2 batch receipt.
//! let batch = builder.close(window, name_key.commitment(), 1_760_000_160_000, &key)?;
//! let receipt = batch.receipt();
//! assert_eq!(receipt.body.service_summary.request_count, 100);
//! let bytes = receipt.to_bytes();
//! assert_eq!(Receipt::from_bytes(&bytes)?, *receipt);
//!
//! // A verifier supplies its registries...
//! struct Everyone;
//! impl OperatorRegistry for Everyone {
//!     fn operator_status(&self, _: &OperatorId, _: Role, _: WindowId) -> OperatorStatus {
//!         OperatorStatus::Active
//!     }
//!     fn backend_registered(&self, _: &OperatorId, b: &BackendId) -> bool {
//!         b.as_str() == "edge-ingress"
//!     }
//! }
//! impl PolicyRegistry for Everyone {
//!     fn is_valid_policy(&self, v: u32, _: WindowId, _: WindowLen) -> bool { v == 1 }
//! }
//! impl ReceiptLedger for Everyone {
//!     fn contains(&self, _: &OperatorId, _: &BackendId, _: WindowId) -> bool { false }
//!     fn overlaps(&self, _: &OperatorId, _: u64, _: u64) -> bool { false }
//! }
//! let verifier = Verifier::new(deployment, &Everyone, &Everyone, &Everyone);
//! let received_ms = 1_760_000_161_000;
//!
//! // ...draws a sample from a slot hash later than the receipt's arrival, and checks the
//! // proofs, each sampled leaf's right neighbour, and the summary against the sample.
//! let k = sample_size(0.99, 0.10, receipt.body.integrity.leaf_count)?;
//! let seed = AuditSeed { slot: 1_001, hash: [42; 32] };
//! let sample = AuditSample::after(&seed, 1_000, &receipt.body.integrity.merkle_root, receipt.body.integrity.leaf_count, k)?;
//! let answers = batch.answer(&sample)?;
//! let report = verifier.verify_with_audit(receipt, received_ms, &sample, &answers)?;
//! assert_eq!(report.sampled, 44);
//!
//! // An auditor given the name key checks what a leaf was for.
//! answers[0].leaf.leaf.audit_name(&name, &name_key, &receipt.body.integrity.name_key_commitment)?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Cargo features
//!
//! - `std` (default): `std` in the dependencies and the thread-safe [`BatchBuilder`]. Without
//!   it the crate is `no_std` + `alloc`; everything else stays available.
//! - `json` (default): [`Receipt::to_json`] and [`Receipt::from_json`] (serde, serde_json,
//!   bs58, hex; `alloc` only).
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]
#![warn(missing_docs)]
#![cfg_attr(
    not(test),
    deny(
        clippy::arithmetic_side_effects,
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::indexing_slicing,
        clippy::panic
    )
)]

extern crate alloc;
#[cfg(feature = "std")]
extern crate std;

#[macro_use]
mod tags;
mod audit;
mod batch;
#[cfg(feature = "std")]
mod builder;
mod codec;
#[cfg(feature = "json")]
mod json;
mod leaf;
mod ledger;
pub mod merkle;
mod receipt;
mod sketch;
pub mod stats;
mod stream;
mod verify;

pub use audit::{
    AuditSample, AuditSeed, SampleError, SketchWitnessSample, draw as audit_draw, sample_size,
};
pub use batch::{
    BatchHeader, ClosedBatch, SealError, SketchWitnesses, order_leaves, sketch_with_witnesses,
    summarize,
};
#[cfg(feature = "std")]
pub use builder::{AddError, BatchBuilder, BuilderConfig, DroppedLeaves};
pub use codec::DecodeError;
#[cfg(feature = "json")]
pub use json::{
    JsonError, LEAF_HASH_SCHEME, LEAF_HASH_SCHEME_V1, MERKLE_SCHEME, NAME_HASH_SCHEME,
    NAME_SKETCH_SCHEME, SIGNATURE_SCHEME,
};
pub use leaf::{
    LEAF_LEN, LEAF_LEN_V1, LEAF_VERSION, LEAF_VERSION_V1, Leaf, LeafFlags, MAX_RESPONSE_BYTES,
    NameAuditError, RESPONSE_SUMMARY_TAG,
};
pub use ledger::AcceptedWindows;
pub use merkle::{Hash, MerkleProof, MerkleTree, ProofError};
pub use receipt::{
    ClassCounts, Integrity, RECEIPT_VERSION, RECEIPT_VERSION_V1, Receipt, ReceiptBody,
    SIGNATURE_LEN, ServiceSummary, SignatureError, V2Commitments,
};
pub use sketch::{MAX_RANK, NameSketch, SKETCH_REGISTERS};
pub use stream::{CHUNK_LEAVES, CHUNK_LEVEL, SealedWindow, StreamedLeaves, WindowStream};
pub use tags::{
    ErrorClass, LatencyBucket, RcodeClass, ReceiptType, SizeBucket, Transport, WireTag, WorkClass,
};
pub use verify::{
    AuditAnswer, AuditReport, Deployment, LeafProof, OperatorRegistry, OperatorStatus,
    PolicyRegistry, ReceiptLedger, SummaryStat, TicketCheck, TicketStatus, Verifier, VerifyError,
    verify_leaf_proof, verify_neighbour, verify_ticket_leaves,
};

/// The crates whose types appear in this crate's public API, re-exported so that callers
/// use the same versions.
pub use ed25519_dalek;
pub use tolldns_core;
