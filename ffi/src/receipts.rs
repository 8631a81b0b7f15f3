//! Receipt leaves, the batch builder, signed batch receipts, Merkle roots and proofs, audit
//! sampling and receipt verification (`tolldns-receipts`).
//!
//! Byte formats are the canonical ones of `docs/RECEIPTS.md`: a leaf is `TOLLDNS_LEAF_LEN`
//! bytes (format v1; `TOLLDNS_LEAF_V2_LEN` in format v2), a receipt is
//! `borsh(body) || signature`, a Merkle proof is Borsh
//! (`leaf_index: u64, tree_size: u64, path: u32 count || 32-byte hashes`).
//!
//! This module is the first API, which reads and writes receipt format v1 (its functions keep
//! their behaviour and result codes) and reads v2 receipts where that is lossless. Format v2
//! (deployment ids, strict leaf order with `repeat`, ticketed counts and name sketches, audits
//! with neighbours) is in [`crate::receipts_v2`]: `tolldns_batch_builder_new_v2`,
//! `tolldns_receipt_verify_v2`, `tolldns_receipt_audit_v2` and the `_v2` structures.

use core::ffi::c_void;

use ed25519_dalek::SigningKey;
use tolldns_core::{BackendId, DeploymentId, OperatorId, Role, WindowId, WindowLen};
use tolldns_receipts::{
    AuditSample, BatchBuilder, BatchHeader, BuilderConfig, ClosedBatch, Deployment, LEAF_LEN_V1,
    LatencyBucket, Leaf, LeafFlags, MerkleProof, MerkleTree, OperatorRegistry, OperatorStatus,
    PolicyRegistry, RcodeClass, Receipt, ReceiptLedger, Transport, Verifier, WireTag, WorkClass,
    merkle, sample_size,
};

use crate::boundary::{
    FfiResult, Out, OutBytes, guard, guard_void, input_array, input_ref, input_slice,
};
use crate::error::legacy_verify_result;
use crate::name::TOLLDNS_HASH_LEN;
use crate::tolldns_result;

/// Length of an encoded receipt leaf in bytes, format v1 (`tolldns_leaf_encode`). Format v2
/// leaves are `TOLLDNS_LEAF_V2_LEN` bytes.
pub const TOLLDNS_LEAF_LEN: usize = 69;
/// Length of an ed25519 signing-key seed, public key (operator id) or audit seed in bytes.
pub const TOLLDNS_KEY_LEN: usize = 32;
/// Length of an ed25519 signature in bytes.
pub const TOLLDNS_SIGNATURE_LEN: usize = 64;
/// Longest backend id in bytes.
pub const TOLLDNS_MAX_BACKEND_ID_LEN: usize = 32;
/// Longest encoded Merkle proof in bytes (a path of 64 hashes); a buffer of this size always
/// holds a proof.
pub const TOLLDNS_MERKLE_PROOF_MAX_LEN: usize = 8 + 8 + 4 + 64 * 32;

/// Leaf flag: answered from the cache.
pub const TOLLDNS_LEAF_FLAG_CACHE_HIT: u8 = 0x01;
/// Leaf flag: a stale answer was served.
pub const TOLLDNS_LEAF_FLAG_STALE: u8 = 0x02;
/// Leaf flag: the answer was truncated.
pub const TOLLDNS_LEAF_FLAG_TRUNCATED: u8 = 0x04;

/// Operator role tag: edge ingress.
pub const TOLLDNS_ROLE_EDGE_INGRESS: u8 = 1;
/// Operator role tag: gateway.
pub const TOLLDNS_ROLE_GATEWAY: u8 = 2;
/// Operator role tag: cache.
pub const TOLLDNS_ROLE_CACHE: u8 = 3;
/// Operator role tag: core resolver.
pub const TOLLDNS_ROLE_CORE_RESOLVER: u8 = 4;
/// Operator role tag: anycast.
pub const TOLLDNS_ROLE_ANYCAST: u8 = 5;
/// Operator role tag: scrubbing.
pub const TOLLDNS_ROLE_SCRUBBING: u8 = 6;

/// Transport tag: DNS over UDP.
pub const TOLLDNS_TRANSPORT_UDP: u8 = 1;
/// Transport tag: DNS over TCP.
pub const TOLLDNS_TRANSPORT_TCP: u8 = 2;
/// Transport tag: DNS over TLS.
pub const TOLLDNS_TRANSPORT_DOT: u8 = 3;
/// Transport tag: DNS over HTTPS.
pub const TOLLDNS_TRANSPORT_DOH: u8 = 4;
/// Transport tag: DNS over QUIC.
pub const TOLLDNS_TRANSPORT_DOQ: u8 = 5;

/// Rcode class tag: NOERROR with data. Tags 2 to 10 are SERVFAIL, REFUSED, NXDOMAIN, NODATA,
/// INVALID_SIG, MALFORMED, UPSTREAM_FAIL, POLICY_BLOCKED and OTHER (`docs/RECEIPTS.md`).
pub const TOLLDNS_RCODE_NOERROR: u8 = 1;
/// Rcode class tag: SERVFAIL.
pub const TOLLDNS_RCODE_SERVFAIL: u8 = 2;
/// Rcode class tag: NXDOMAIN.
pub const TOLLDNS_RCODE_NXDOMAIN: u8 = 4;

/// Work class tag: light recursion. Tags 2 to 8 are DNS_RECURSION_HEAVY, GATEWAY_LOOKUP,
/// CONTENT_RETRIEVAL_SMALL, CONTENT_RETRIEVAL_LARGE, CACHE_HIT, CACHE_MISS and OTHER.
pub const TOLLDNS_WORK_DNS_RECURSION_LIGHT: u8 = 1;
/// Work class tag: answered from the cache.
pub const TOLLDNS_WORK_CACHE_HIT: u8 = 6;
/// Work class tag: a cache miss.
pub const TOLLDNS_WORK_CACHE_MISS: u8 = 7;

/// A receipt leaf (one answered request) in structured form. Its canonical encoding is
/// `TOLLDNS_LEAF_LEN` bytes in format v1 ([`tolldns_leaf_encode`] / [`tolldns_leaf_decode`]).
/// `tolldns_leaf_v2` adds the v2 field `repeat`, which only the batch builder sets: an edge
/// can keep filling this structure for either builder.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct tolldns_leaf {
    /// When the answer was sent, in Unix milliseconds.
    pub timestamp_ms: u64,
    /// Transport tag (`TOLLDNS_TRANSPORT_*`).
    pub transport: u8,
    /// The query type (1 = A, 28 = AAAA, ...).
    pub qtype: u16,
    /// Rcode class tag (`TOLLDNS_RCODE_*`).
    pub rcode_class: u8,
    /// Work class tag (`TOLLDNS_WORK_*`).
    pub work_class: u8,
    /// `TOLLDNS_LEAF_FLAG_*` bits; the others must be zero.
    pub flags: u8,
    /// Latency bucket tag: 1 `<25` ms, 2 `<50`, 3 `<100`, 4 `<200`, 5 `<500`, 6 `<1000`,
    /// 7 `>=1000`.
    pub latency_bucket: u8,
    /// Response size in bytes (its size bucket is derived from it).
    pub response_bytes: u32,
    /// `HMAC-SHA256(name_key, canonical_name)[..16]` ([`crate::name::tolldns_name_hash`]).
    pub name_hash: [u8; 16],
    /// The client's toll-ticket id or a watcher probe nonce; zero when absent.
    pub ticket: [u8; 16],
    /// A hash of the response summary ([`tolldns_response_summary_hash`]).
    pub response_summary_hash: [u8; 16],
}

fn tag<T: WireTag>(value: u8) -> Result<T, tolldns_result> {
    T::from_tag(value).ok_or(tolldns_result::ReceiptUnknownTag)
}

impl TryFrom<&tolldns_leaf> for Leaf {
    type Error = tolldns_result;

    fn try_from(l: &tolldns_leaf) -> Result<Self, tolldns_result> {
        Ok(Self {
            timestamp_ms: l.timestamp_ms,
            transport: tag::<Transport>(l.transport)?,
            qtype: l.qtype,
            rcode_class: tag::<RcodeClass>(l.rcode_class)?,
            work_class: tag::<WorkClass>(l.work_class)?,
            flags: LeafFlags::from_bits(l.flags)?,
            latency: tag::<LatencyBucket>(l.latency_bucket)?,
            response_bytes: l.response_bytes,
            name_hash: l.name_hash,
            ticket: l.ticket,
            response_summary_hash: l.response_summary_hash,
            repeat: 0,
        })
    }
}

impl From<&Leaf> for tolldns_leaf {
    fn from(l: &Leaf) -> Self {
        Self {
            timestamp_ms: l.timestamp_ms,
            transport: l.transport.tag(),
            qtype: l.qtype,
            rcode_class: l.rcode_class.tag(),
            work_class: l.work_class.tag(),
            flags: l.flags.bits(),
            latency_bucket: l.latency.tag(),
            response_bytes: l.response_bytes,
            name_hash: l.name_hash,
            ticket: l.ticket,
            response_summary_hash: l.response_summary_hash,
        }
    }
}

/// Encodes a leaf to its canonical `TOLLDNS_LEAF_LEN` bytes (format v1; a v2 leaf is
/// `tolldns_leaf_v2_encode`). Either builder takes the result.
///
/// # Errors
///
/// `TOLLDNS_RESULT_NULL_PARAMETER`; `TOLLDNS_RESULT_RECEIPT_UNKNOWN_TAG` or
/// `TOLLDNS_RESULT_RECEIPT_RESERVED_FLAGS` for a field out of its range;
/// `TOLLDNS_RESULT_INSUFFICIENT_SIZE` if `out_len` is below `TOLLDNS_LEAF_LEN`.
///
/// # Safety
///
/// `leaf` must point to a valid structure and `out` be writable for `out_len` bytes.
/// Thread-safe.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tolldns_leaf_encode(
    leaf: *const tolldns_leaf,
    out: *mut u8,
    out_len: usize,
) -> tolldns_result {
    guard(|| -> FfiResult {
        // SAFETY: the caller guarantees `leaf` points to a valid structure.
        let leaf = Leaf::try_from(unsafe { input_ref(leaf) }?)?;
        let out = OutBytes::new(out, out_len)?;
        // SAFETY: the caller guarantees `out` is writable for `out_len` bytes.
        unsafe { out.write(&leaf.to_bytes_v1()) }
    })
}

/// Decodes a canonical v1 leaf (exactly `TOLLDNS_LEAF_LEN` bytes) into `*out`
/// (`tolldns_leaf_v2_decode` reads both formats).
///
/// # Errors
///
/// `TOLLDNS_RESULT_NULL_PARAMETER`; a `TOLLDNS_RESULT_RECEIPT_*` decode error.
///
/// # Safety
///
/// `leaf` must be readable for `leaf_len` bytes and `out` writable. Thread-safe.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tolldns_leaf_decode(
    leaf: *const u8,
    leaf_len: usize,
    out: *mut tolldns_leaf,
) -> tolldns_result {
    guard(|| -> FfiResult {
        // SAFETY: the caller guarantees `leaf` is readable for `leaf_len` bytes.
        let bytes = unsafe { input_slice(leaf, leaf_len) }?;
        let out = Out::new(out)?;
        let leaf = Leaf::from_bytes_v1(bytes)?;
        // SAFETY: the caller guarantees `out` is writable.
        unsafe { out.write(tolldns_leaf::from(&leaf)) };
        Ok(())
    })
}

/// The RFC 6962 leaf hash of an encoded leaf, `SHA256(0x00 || leaf)`, after checking that the
/// bytes are a valid leaf: a v1 leaf of `TOLLDNS_LEAF_LEN` bytes or a v2 leaf of
/// `TOLLDNS_LEAF_V2_LEN` bytes, told apart by their length. Writes `TOLLDNS_HASH_LEN` bytes.
///
/// # Errors
///
/// `TOLLDNS_RESULT_NULL_PARAMETER`; a `TOLLDNS_RESULT_RECEIPT_*` decode error;
/// `TOLLDNS_RESULT_INSUFFICIENT_SIZE`.
///
/// # Safety
///
/// `leaf` must be readable for `leaf_len` bytes and `out` writable for `out_len` bytes.
/// Thread-safe.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tolldns_leaf_hash(
    leaf: *const u8,
    leaf_len: usize,
    out: *mut u8,
    out_len: usize,
) -> tolldns_result {
    guard(|| -> FfiResult {
        // SAFETY: the caller guarantees `leaf` is readable for `leaf_len` bytes.
        let bytes = unsafe { input_slice(leaf, leaf_len) }?;
        let out = OutBytes::new(out, out_len)?;
        let leaf = Leaf::from_bytes_any(bytes)?;
        let hash = if bytes.len() == LEAF_LEN_V1 {
            leaf.hash_v1()
        } else {
            leaf.hash()
        };
        // SAFETY: the caller guarantees `out` is writable for `out_len` bytes.
        unsafe { out.write(&hash) }
    })
}

/// The recommended response-summary hash, `SHA256("TOLLDNS-RESPONSE-V1\0" || summary)[..16]`.
/// Writes 16 bytes.
///
/// # Errors
///
/// `TOLLDNS_RESULT_NULL_PARAMETER`; `TOLLDNS_RESULT_INSUFFICIENT_SIZE`.
///
/// # Safety
///
/// `summary` must be readable for `summary_len` bytes and `out` writable for `out_len` bytes.
/// Thread-safe.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tolldns_response_summary_hash(
    summary: *const u8,
    summary_len: usize,
    out: *mut u8,
    out_len: usize,
) -> tolldns_result {
    guard(|| -> FfiResult {
        // SAFETY: the caller guarantees `summary` is readable for `summary_len` bytes.
        let summary = unsafe { input_slice(summary, summary_len) }?;
        let out = OutBytes::new(out, out_len)?;
        // SAFETY: the caller guarantees `out` is writable for `out_len` bytes.
        unsafe { out.write(&Leaf::response_summary_hash(summary)) }
    })
}

/// The operator id (ed25519 public key) of a receipt-signing key seed. Writes
/// `TOLLDNS_KEY_LEN` bytes.
///
/// # Errors
///
/// `TOLLDNS_RESULT_NULL_PARAMETER`; `TOLLDNS_RESULT_INVALID_PARAMETER` if `signing_key_len` is
/// not 32; `TOLLDNS_RESULT_INSUFFICIENT_SIZE`.
///
/// # Safety
///
/// `signing_key` must be readable for `signing_key_len` bytes and `out` writable for `out_len`
/// bytes. Thread-safe.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tolldns_operator_id(
    signing_key: *const u8,
    signing_key_len: usize,
    out: *mut u8,
    out_len: usize,
) -> tolldns_result {
    guard(|| -> FfiResult {
        // SAFETY: the caller guarantees `signing_key` is readable for `signing_key_len` bytes.
        let seed = unsafe { input_array::<TOLLDNS_KEY_LEN>(signing_key, signing_key_len) }?;
        let out = OutBytes::new(out, out_len)?;
        let public = SigningKey::from_bytes(&seed).verifying_key().to_bytes();
        // SAFETY: the caller guarantees `out` is writable for `out_len` bytes.
        unsafe { out.write(&public) }
    })
}

/// Collects the leaves of receipt windows and closes each window into a signed batch receipt.
///
/// Thread-safe: `tolldns_batch_builder_add_leaf`, `_close` and `_dropped` may be called on the
/// same builder from many threads at once (leaves go to per-thread shards). Only `_free` needs
/// exclusive access.
///
/// A builder from `tolldns_batch_builder_new` writes format v1 receipts; one from
/// `tolldns_batch_builder_new_v2` writes format v2 receipts for its deployment.
#[derive(Debug)]
pub struct tolldns_batch_builder {
    pub(crate) inner: BatchBuilder,
    /// Whether `_close` writes a v1 receipt.
    pub(crate) v1: bool,
}

/// A closed window: the signed receipt, its leaves and their Merkle tree, kept to serve
/// inclusion proofs to auditors. Immutable, so thread-safe; free with `tolldns_batch_free`.
#[derive(Debug)]
pub struct tolldns_batch {
    pub(crate) inner: ClosedBatch,
}

impl tolldns_batch {
    /// A leaf in the encoding of this batch's receipt version.
    fn leaf_bytes(&self, leaf: &Leaf) -> Vec<u8> {
        if self.inner.receipt().body.v2.is_some() {
            leaf.to_bytes().to_vec()
        } else {
            leaf.to_bytes_v1().to_vec()
        }
    }
}

/// Leaves a builder refused so far, by reason (never reset).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct tolldns_dropped_leaves {
    /// The window's buffers were full.
    pub full: u64,
    /// The leaf's window was already closed.
    pub late: u64,
    /// The leaf's window would exceed the open-window limit (a clock far ahead).
    pub too_many_windows: u64,
    /// The bytes did not decode as a leaf.
    pub invalid: u64,
}

/// Creates a batch builder for one operator role and backend that writes format **v1**
/// receipts (`tolldns_batch_builder_new_v2` writes v2 receipts for a deployment).
///
/// `shards` is the number of threads expected to add leaves concurrently (0 means 1);
/// `max_leaves_per_window` bounds the memory used per open window (at most three windows are
/// open at once); leaves past it are refused with `TOLLDNS_RESULT_BATCH_FULL` and counted.
///
/// # Errors
///
/// `TOLLDNS_RESULT_NULL_PARAMETER`; `TOLLDNS_RESULT_INVALID_PARAMETER` for an unknown role;
/// `TOLLDNS_RESULT_RECEIPT_INVALID_BACKEND_ID` unless the backend id is 1 to 32 printable ASCII
/// bytes; `TOLLDNS_RESULT_RECEIPT_ZERO_WINDOW_LEN` if `window_len_s` is 0.
///
/// # Safety
///
/// `backend_id` must be readable for `backend_id_len` bytes and `out` writable. The handle
/// written to `*out` must be freed with `tolldns_batch_builder_free`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tolldns_batch_builder_new(
    operator_role: u8,
    backend_id: *const u8,
    backend_id_len: usize,
    policy_version: u32,
    window_len_s: u32,
    shards: usize,
    max_leaves_per_window: usize,
    out: *mut *mut tolldns_batch_builder,
) -> tolldns_result {
    guard(|| -> FfiResult {
        // SAFETY: the caller guarantees `backend_id` is readable for `backend_id_len` bytes.
        let backend_id = unsafe { input_slice(backend_id, backend_id_len) }?;
        let out = Out::new(out)?;
        let operator_role =
            Role::from_tag(operator_role).map_err(|_| tolldns_result::InvalidParameter)?;
        let backend_id = BackendId::from_bytes(backend_id)
            .map_err(|_| tolldns_result::ReceiptInvalidBackendId)?;
        let window_len =
            WindowLen::new(window_len_s).map_err(|_| tolldns_result::ReceiptZeroWindowLen)?;
        // The deployment id is not part of a v1 receipt.
        let inner = new_builder(
            DeploymentId::default(),
            operator_role,
            backend_id,
            policy_version,
            window_len,
            shards,
            max_leaves_per_window,
        );
        let handle = Box::into_raw(Box::new(tolldns_batch_builder { inner, v1: true }));
        // SAFETY: the caller guarantees `out` is writable; ownership of the box passes to it.
        unsafe { out.write(handle) };
        Ok(())
    })
}

/// Records one encoded leaf in the buffer of its window (taken from its timestamp).
///
/// Either encoding is accepted by either builder: a v1 leaf (`TOLLDNS_LEAF_LEN` bytes,
/// `tolldns_leaf_encode`) or a v2 leaf (`TOLLDNS_LEAF_V2_LEN` bytes,
/// `tolldns_leaf_v2_encode`), told apart by the length. The builder orders the window's leaves
/// when it closes it and sets their `repeat` itself; a leaf's own `repeat` is ignored. A leaf
/// whose response size is above 65535 bytes is refused with
/// `TOLLDNS_RESULT_RECEIPT_RESPONSE_TOO_LARGE` (format v2 has no room for it; refusing it here
/// keeps one bad leaf from failing the whole window at `_close`).
///
/// # Errors
///
/// `TOLLDNS_RESULT_NULL_PARAMETER`; a `TOLLDNS_RESULT_RECEIPT_*` decode error;
/// `TOLLDNS_RESULT_BATCH_FULL`, `TOLLDNS_RESULT_BATCH_LATE` (window already closed) or
/// `TOLLDNS_RESULT_BATCH_TOO_MANY_WINDOWS`. Every refused leaf is also counted
/// (`tolldns_batch_builder_dropped`).
///
/// # Safety
///
/// `builder` must be a live handle from `tolldns_batch_builder_new` or `_new_v2`; `leaf` must
/// be readable for `leaf_len` bytes. Thread-safe.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tolldns_batch_builder_add_leaf(
    builder: *const tolldns_batch_builder,
    leaf: *const u8,
    leaf_len: usize,
) -> tolldns_result {
    guard(|| -> FfiResult {
        // SAFETY: the caller guarantees `builder` is a live handle (shared access suffices:
        // the builder synchronizes internally) and `leaf` is readable for `leaf_len` bytes.
        let (builder, leaf) = unsafe { (input_ref(builder)?, input_slice(leaf, leaf_len)?) };
        add_leaf_bytes(&builder.inner, leaf)
    })
}

/// A builder over `tolldns-receipts`' `BatchBuilder`.
pub(crate) fn new_builder(
    deployment_id: DeploymentId,
    operator_role: Role,
    backend_id: BackendId,
    policy_version: u32,
    window_len: WindowLen,
    shards: usize,
    max_leaves_per_window: usize,
) -> BatchBuilder {
    let mut config = BuilderConfig::new(deployment_id, backend_id, window_len);
    config.operator_role = operator_role;
    config.policy_version = policy_version;
    config.shards = shards;
    // The builder bounds the leaves held over all its open windows together; the C API keeps
    // its per-window bound, so the total is that bound times the open windows it allows.
    config.max_pending_leaves =
        max_leaves_per_window.saturating_mul(BatchBuilder::MAX_OPEN_WINDOWS);
    BatchBuilder::new(config)
}

/// Adds a v1 or v2 encoded leaf. `BatchBuilder::add_bytes` decodes v2 leaves only and counts
/// every refusal; a v1 leaf is decoded here and handed over in its v2 encoding, so that the
/// builder's own checks (and counters) apply to both formats.
fn add_leaf_bytes(builder: &BatchBuilder, bytes: &[u8]) -> FfiResult {
    if bytes.len() != LEAF_LEN_V1 {
        builder.add_bytes(bytes)?;
        return Ok(());
    }
    match Leaf::from_bytes_v1(bytes) {
        Ok(leaf) => builder.add_bytes(&leaf.to_bytes())?,
        Err(e) => {
            // Count the refusal like any other invalid leaf: 69 bytes are never a v2 leaf, so
            // `add_bytes` refuses them and counts them as invalid. Report the v1 reason.
            let _ = builder.add_bytes(bytes);
            return Err(e.into());
        }
    }
    Ok(())
}

/// Closes a window of `builder` into a v1 or v2 batch.
pub(crate) fn close_window(
    builder: &tolldns_batch_builder,
    window: WindowId,
    name_key_commitment: [u8; 32],
    timestamp_ms: u64,
    key: &SigningKey,
) -> Result<ClosedBatch, tolldns_result> {
    let v2 = builder
        .inner
        .close(window, name_key_commitment, timestamp_ms, key)?;
    if !builder.v1 {
        return Ok(v2);
    }
    // `BatchBuilder` only writes v2. Its batch holds the window's leaves in the order a v1
    // builder used (by timestamp, then by encoding; identical leaves are adjacent) and
    // `seal_v1` clears their `repeat`: sealing them again gives the v1 receipt.
    let config = builder.inner.config();
    let mut header = BatchHeader::new(
        config.deployment_id,
        config.backend_id,
        config.window_len,
        window,
    );
    header.operator_role = config.operator_role;
    header.policy_version = config.policy_version;
    let (_, leaves) = v2.into_parts();
    Ok(ClosedBatch::seal_v1(
        &header,
        leaves,
        name_key_commitment,
        timestamp_ms,
        key,
    )?)
}

/// Writes the counts of refused leaves to `*out`.
///
/// # Errors
///
/// `TOLLDNS_RESULT_NULL_PARAMETER`.
///
/// # Safety
///
/// `builder` must be a live handle and `out` writable. Thread-safe.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tolldns_batch_builder_dropped(
    builder: *const tolldns_batch_builder,
    out: *mut tolldns_dropped_leaves,
) -> tolldns_result {
    guard(|| -> FfiResult {
        // SAFETY: the caller guarantees `builder` is a live handle.
        let builder = unsafe { input_ref(builder) }?;
        let out = Out::new(out)?;
        let d = builder.inner.dropped();
        // SAFETY: the caller guarantees `out` is writable.
        unsafe {
            out.write(tolldns_dropped_leaves {
                full: d.full,
                late: d.late,
                too_many_windows: d.too_many_windows,
                invalid: d.invalid,
            });
        }
        Ok(())
    })
}

/// Closes window `window_id`: takes its leaves, sorts them (by timestamp, then by encoding),
/// computes the service summary and the Merkle root, and signs the batch receipt with the
/// 32-byte ed25519 seed `signing_key` (whose public key becomes the receipt's operator id).
/// `timestamp_ms` is the receipt's own timestamp. Leaves for this window arriving later are
/// refused as late.
///
/// The receipt is format v1 for a builder from `tolldns_batch_builder_new` and format v2 for
/// one from `tolldns_batch_builder_new_v2` (then identical leaves are numbered by `repeat`,
/// and the receipt commits to the deployment id, the ticketed-leaf count and the name
/// sketch).
///
/// # Errors
///
/// `TOLLDNS_RESULT_NULL_PARAMETER`; `TOLLDNS_RESULT_INVALID_PARAMETER` if a key or commitment
/// is not 32 bytes; a `TOLLDNS_RESULT_BATCH_*` code. On error the window is still closed and
/// its leaves are counted as dropped, never lost silently.
///
/// # Safety
///
/// `builder` must be a live handle; `name_key_commitment` and `signing_key` readable for their
/// lengths; `out` writable. The handle written to `*out` must be freed with
/// `tolldns_batch_free`. Thread-safe.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tolldns_batch_builder_close(
    builder: *const tolldns_batch_builder,
    window_id: u64,
    name_key_commitment: *const u8,
    name_key_commitment_len: usize,
    timestamp_ms: u64,
    signing_key: *const u8,
    signing_key_len: usize,
    out: *mut *mut tolldns_batch,
) -> tolldns_result {
    guard(|| -> FfiResult {
        // SAFETY: the caller guarantees `builder` is a live handle and the buffers are
        // readable for their lengths.
        let (builder, commitment, seed) = unsafe {
            (
                input_ref(builder)?,
                input_array::<TOLLDNS_HASH_LEN>(name_key_commitment, name_key_commitment_len)?,
                input_array::<TOLLDNS_KEY_LEN>(signing_key, signing_key_len)?,
            )
        };
        let out = Out::new(out)?;
        let key = SigningKey::from_bytes(&seed);
        let inner = close_window(builder, WindowId(window_id), commitment, timestamp_ms, &key)?;
        let handle = Box::into_raw(Box::new(tolldns_batch { inner }));
        // SAFETY: the caller guarantees `out` is writable; ownership of the box passes to it.
        unsafe { out.write(handle) };
        Ok(())
    })
}

/// Frees a batch builder and every leaf still buffered in it. NULL is ignored.
///
/// # Safety
///
/// `builder` must be NULL or a live handle from `tolldns_batch_builder_new` or `_new_v2`, not
/// in use by another thread, and not used again afterwards.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tolldns_batch_builder_free(builder: *mut tolldns_batch_builder) {
    guard_void(|| {
        if !builder.is_null() {
            // SAFETY: the handle came from `Box::into_raw` in `tolldns_batch_builder_new` (or
            // `_new_v2`) and the caller gives up its ownership here.
            drop(unsafe { Box::from_raw(builder) });
        }
    });
}

/// Writes the signed batch receipt's canonical bytes (`borsh(body) || signature`) to `out` and
/// their length to `*out_n`.
///
/// # Errors
///
/// `TOLLDNS_RESULT_NULL_PARAMETER`; `TOLLDNS_RESULT_INSUFFICIENT_SIZE` (nothing is written;
/// `tolldns_batch_receipt_len` gives the size needed).
///
/// # Safety
///
/// `batch` must be a live handle; `out` writable for `out_len` bytes; `out_n` writable.
/// Thread-safe.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tolldns_batch_receipt(
    batch: *const tolldns_batch,
    out: *mut u8,
    out_len: usize,
    out_n: *mut usize,
) -> tolldns_result {
    guard(|| -> FfiResult {
        // SAFETY: the caller guarantees `batch` is a live handle.
        let batch = unsafe { input_ref(batch) }?;
        let out = OutBytes::new(out, out_len)?;
        let out_n = Out::new(out_n)?;
        let bytes = batch.inner.receipt().to_bytes();
        // SAFETY: the caller guarantees `out` is writable for `out_len` bytes.
        unsafe { out.write(&bytes) }?;
        // SAFETY: the caller guarantees `out_n` is writable.
        unsafe { out_n.write(bytes.len()) };
        Ok(())
    })
}

/// Writes the length in bytes of the batch's encoded receipt to `*out`.
///
/// # Errors
///
/// `TOLLDNS_RESULT_NULL_PARAMETER`.
///
/// # Safety
///
/// `batch` must be a live handle and `out` writable. Thread-safe.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tolldns_batch_receipt_len(
    batch: *const tolldns_batch,
    out: *mut usize,
) -> tolldns_result {
    guard(|| -> FfiResult {
        // SAFETY: the caller guarantees `batch` is a live handle.
        let batch = unsafe { input_ref(batch) }?;
        let out = Out::new(out)?;
        let n = batch.inner.receipt().to_bytes().len();
        // SAFETY: the caller guarantees `out` is writable.
        unsafe { out.write(n) };
        Ok(())
    })
}

/// Writes leaf `index` of the batch (in Merkle order) in the encoding of the batch's receipt,
/// as an auditor asks for it: `TOLLDNS_LEAF_LEN` bytes for a v1 batch,
/// `TOLLDNS_LEAF_V2_LEN` bytes for a v2 batch (a buffer of `TOLLDNS_LEAF_V2_LEN` bytes always
/// suffices).
///
/// # Errors
///
/// `TOLLDNS_RESULT_NULL_PARAMETER`; `TOLLDNS_RESULT_PROOF_INDEX_OUT_OF_RANGE`;
/// `TOLLDNS_RESULT_INSUFFICIENT_SIZE`.
///
/// # Safety
///
/// `batch` must be a live handle and `out` writable for `out_len` bytes. Thread-safe.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tolldns_batch_leaf(
    batch: *const tolldns_batch,
    index: u64,
    out: *mut u8,
    out_len: usize,
) -> tolldns_result {
    guard(|| -> FfiResult {
        // SAFETY: the caller guarantees `batch` is a live handle.
        let batch = unsafe { input_ref(batch) }?;
        let out = OutBytes::new(out, out_len)?;
        let leaf_proof = batch.inner.leaf_proof(index)?;
        // SAFETY: the caller guarantees `out` is writable for `out_len` bytes.
        unsafe { out.write(&batch.leaf_bytes(&leaf_proof.leaf)) }
    })
}

/// Writes the encoded inclusion proof of leaf `index` of the batch to `out` and its length to
/// `*out_n` (at most `TOLLDNS_MERKLE_PROOF_MAX_LEN`).
///
/// # Errors
///
/// `TOLLDNS_RESULT_NULL_PARAMETER`; `TOLLDNS_RESULT_PROOF_INDEX_OUT_OF_RANGE`;
/// `TOLLDNS_RESULT_INSUFFICIENT_SIZE`.
///
/// # Safety
///
/// `batch` must be a live handle; `out` writable for `out_len` bytes; `out_n` writable.
/// Thread-safe.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tolldns_batch_proof(
    batch: *const tolldns_batch,
    index: u64,
    out: *mut u8,
    out_len: usize,
    out_n: *mut usize,
) -> tolldns_result {
    guard(|| -> FfiResult {
        // SAFETY: the caller guarantees `batch` is a live handle.
        let batch = unsafe { input_ref(batch) }?;
        let out = OutBytes::new(out, out_len)?;
        let out_n = Out::new(out_n)?;
        let proof = batch.inner.proof(index)?.to_bytes();
        // SAFETY: the caller guarantees `out` is writable for `out_len` bytes.
        unsafe { out.write(&proof) }?;
        // SAFETY: the caller guarantees `out_n` is writable.
        unsafe { out_n.write(proof.len()) };
        Ok(())
    })
}

/// Frees a closed batch. NULL is ignored.
///
/// # Safety
///
/// `batch` must be NULL or a live handle from `tolldns_batch_builder_close`, not in use by
/// another thread, and not used again afterwards.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tolldns_batch_free(batch: *mut tolldns_batch) {
    guard_void(|| {
        if !batch.is_null() {
            // SAFETY: the handle came from `Box::into_raw` in `tolldns_batch_builder_close` and
            // the caller gives up its ownership here.
            drop(unsafe { Box::from_raw(batch) });
        }
    });
}

/// Splits `leaf_hashes_len` bytes into 32-byte leaf hashes.
fn hashes(bytes: &[u8]) -> Result<Vec<[u8; 32]>, tolldns_result> {
    let chunks = bytes.chunks_exact(TOLLDNS_HASH_LEN);
    if !chunks.remainder().is_empty() {
        return Err(tolldns_result::InvalidParameter);
    }
    Ok(chunks
        .map(|c| {
            let mut h = [0u8; 32];
            h.copy_from_slice(c);
            h
        })
        .collect())
}

/// The RFC 6962 Merkle root over leaf hashes given back to back (`leaf_hashes_len` is a
/// multiple of 32; 0 gives the empty tree's root, `SHA256("")`). Writes `TOLLDNS_HASH_LEN`
/// bytes.
///
/// # Errors
///
/// `TOLLDNS_RESULT_NULL_PARAMETER`; `TOLLDNS_RESULT_INVALID_PARAMETER` if the length is not a
/// multiple of 32; `TOLLDNS_RESULT_INSUFFICIENT_SIZE`.
///
/// # Safety
///
/// `leaf_hashes` must be readable for `leaf_hashes_len` bytes and `out` writable for `out_len`
/// bytes. Thread-safe.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tolldns_merkle_root(
    leaf_hashes: *const u8,
    leaf_hashes_len: usize,
    out: *mut u8,
    out_len: usize,
) -> tolldns_result {
    guard(|| -> FfiResult {
        // SAFETY: the caller guarantees `leaf_hashes` is readable for `leaf_hashes_len` bytes.
        let hashes = hashes(unsafe { input_slice(leaf_hashes, leaf_hashes_len) }?)?;
        let out = OutBytes::new(out, out_len)?;
        // SAFETY: the caller guarantees `out` is writable for `out_len` bytes.
        unsafe { out.write(&merkle::root(&hashes)) }
    })
}

/// The encoded inclusion proof of leaf `index` in the RFC 6962 tree over the given leaf hashes
/// (back to back, a multiple of 32 bytes). Writes at most `TOLLDNS_MERKLE_PROOF_MAX_LEN` bytes
/// and their number to `*out_n`.
///
/// # Errors
///
/// `TOLLDNS_RESULT_NULL_PARAMETER`; `TOLLDNS_RESULT_INVALID_PARAMETER`;
/// `TOLLDNS_RESULT_PROOF_INDEX_OUT_OF_RANGE`; `TOLLDNS_RESULT_INSUFFICIENT_SIZE`.
///
/// # Safety
///
/// `leaf_hashes` must be readable for `leaf_hashes_len` bytes, `out` writable for `out_len`
/// bytes and `out_n` writable. Thread-safe.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tolldns_merkle_proof(
    leaf_hashes: *const u8,
    leaf_hashes_len: usize,
    index: u64,
    out: *mut u8,
    out_len: usize,
    out_n: *mut usize,
) -> tolldns_result {
    guard(|| -> FfiResult {
        // SAFETY: the caller guarantees `leaf_hashes` is readable for `leaf_hashes_len` bytes.
        let hashes = hashes(unsafe { input_slice(leaf_hashes, leaf_hashes_len) }?)?;
        let out = OutBytes::new(out, out_len)?;
        let out_n = Out::new(out_n)?;
        let proof = MerkleTree::from_leaf_hashes(hashes)
            .proof(index)?
            .to_bytes();
        // SAFETY: the caller guarantees `out` is writable for `out_len` bytes.
        unsafe { out.write(&proof) }?;
        // SAFETY: the caller guarantees `out_n` is writable.
        unsafe { out_n.write(proof.len()) };
        Ok(())
    })
}

/// Verifies an encoded inclusion proof of `leaf_hash` (32 bytes) against `root` (32 bytes).
/// `TOLLDNS_RESULT_OK` means the leaf is in the tree.
///
/// # Errors
///
/// `TOLLDNS_RESULT_NULL_PARAMETER`; `TOLLDNS_RESULT_INVALID_PARAMETER` if a hash is not 32
/// bytes; a `TOLLDNS_RESULT_RECEIPT_*` decode error for malformed proof bytes; a
/// `TOLLDNS_RESULT_PROOF_*` code when the proof does not lead to the root.
///
/// # Safety
///
/// Each buffer must be readable for its length. Thread-safe.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tolldns_merkle_proof_verify(
    proof: *const u8,
    proof_len: usize,
    leaf_hash: *const u8,
    leaf_hash_len: usize,
    root: *const u8,
    root_len: usize,
) -> tolldns_result {
    guard(|| -> FfiResult {
        // SAFETY: the caller guarantees each buffer is readable for its length.
        let (proof, leaf_hash, root) = unsafe {
            (
                input_slice(proof, proof_len)?,
                input_array::<TOLLDNS_HASH_LEN>(leaf_hash, leaf_hash_len)?,
                input_array::<TOLLDNS_HASH_LEN>(root, root_len)?,
            )
        };
        MerkleProof::from_bytes(proof)?.verify(&leaf_hash, &root)?;
        Ok(())
    })
}

/// The number of leaves to audit so that a batch in which `fake_fraction` of the leaves are
/// fake shows a fake with probability `confidence`:
/// `ceil(ln(1 − confidence) / ln(1 − fake_fraction))`, at most `leaf_count`
/// (0.99 and 0.10 give 44).
///
/// # Errors
///
/// `TOLLDNS_RESULT_NULL_PARAMETER`; `TOLLDNS_RESULT_AUDIT_CONFIDENCE` or
/// `TOLLDNS_RESULT_AUDIT_FAKE_FRACTION` unless the value is strictly between 0 and 1.
///
/// # Safety
///
/// `out` must be writable. Thread-safe.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tolldns_audit_sample_size(
    confidence: f64,
    fake_fraction: f64,
    leaf_count: u64,
    out: *mut u64,
) -> tolldns_result {
    guard(|| -> FfiResult {
        let out = Out::new(out)?;
        let k = sample_size(confidence, fake_fraction, leaf_count)?;
        // SAFETY: the caller guarantees `out` is writable.
        unsafe { out.write(k) };
        Ok(())
    })
}

/// Draws the audit sample of a batch: `min(k, leaf_count)` distinct leaf indices from the
/// verifier's 32-byte `seed` (chosen after the receipt was submitted) and the batch's 32-byte
/// Merkle `root`, in draw order. Writes them to `out` and their number to `*out_n`.
///
/// # Errors
///
/// `TOLLDNS_RESULT_NULL_PARAMETER`; `TOLLDNS_RESULT_INVALID_PARAMETER` if `seed` or `root` is
/// not 32 bytes; `TOLLDNS_RESULT_INSUFFICIENT_SIZE` if `out_len` is below `min(k, leaf_count)`
/// (checked before drawing).
///
/// # Safety
///
/// `seed` and `root` must be readable for their lengths, `out` writable for `out_len`
/// elements and `out_n` writable. Thread-safe.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tolldns_audit_sample(
    seed: *const u8,
    seed_len: usize,
    root: *const u8,
    root_len: usize,
    leaf_count: u64,
    k: u64,
    out: *mut u64,
    out_len: usize,
    out_n: *mut usize,
) -> tolldns_result {
    guard(|| -> FfiResult {
        // SAFETY: the caller guarantees both buffers are readable for their lengths.
        let (seed, root) = unsafe {
            (
                input_array::<TOLLDNS_KEY_LEN>(seed, seed_len)?,
                input_array::<TOLLDNS_HASH_LEN>(root, root_len)?,
            )
        };
        if out.is_null() && out_len != 0 {
            return Err(tolldns_result::NullParameter);
        }
        if !out.is_aligned() {
            return Err(tolldns_result::InvalidParameter);
        }
        let out_n = Out::new(out_n)?;
        let wanted = k.min(leaf_count);
        if usize::try_from(wanted).map_or(true, |w| w > out_len) {
            return Err(tolldns_result::InsufficientSize);
        }
        let sample = AuditSample::new(&seed, &root, leaf_count, wanted);
        let indices = sample.indices();
        if !indices.is_empty() {
            // SAFETY: `out` is non-NULL (its length is at least `wanted > 0`), aligned, and
            // writable for `out_len >= indices.len()` elements by the caller's contract.
            unsafe { core::ptr::copy_nonoverlapping(indices.as_ptr(), out, indices.len()) };
        }
        // SAFETY: the caller guarantees `out_n` is writable.
        unsafe { out_n.write(indices.len()) };
        Ok(())
    })
}

/// A decoded receipt, flattened for C. Class counts are not included.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct tolldns_receipt_info {
    /// 1 batch, 2 per-request.
    pub receipt_type: u8,
    /// Operator role tag (`TOLLDNS_ROLE_*`).
    pub operator_role: u8,
    /// The operator's ed25519 public key.
    pub operator_id: [u8; 32],
    /// The backend id (the first `backend_id_len` bytes; the rest are zero).
    pub backend_id: [u8; 32],
    /// Length of the backend id.
    pub backend_id_len: usize,
    /// The policy version served under.
    pub policy_version: u32,
    /// Window length in seconds.
    pub window_len_s: u32,
    /// The window: `floor(unix_s / window_len_s)`.
    pub window_id: u64,
    /// When the receipt was made, in Unix milliseconds.
    pub timestamp_ms: u64,
    /// Requests answered in the window.
    pub request_count: u64,
    /// Successful answers.
    pub success_count: u64,
    /// Error answers.
    pub error_count: u64,
    /// Response bytes served.
    pub bytes_served_total: u64,
    /// Answers served from the cache.
    pub served_from_cache_count: u64,
    /// p95 latency bucket tag.
    pub latency_p95_bucket: u8,
    /// p95 response-size bucket tag.
    pub response_size_p95_bucket: u8,
    /// Number of leaves under the Merkle root.
    pub leaf_count: u64,
    /// The RFC 6962 root over the leaves.
    pub merkle_root: [u8; 32],
    /// `SHA256("TOLLDNS-NAMEKEY-V1" || name_key)` of the epoch's name key.
    pub name_key_commitment: [u8; 32],
    /// The operator's ed25519 signature.
    pub signature: [u8; 64],
}

impl From<&Receipt> for tolldns_receipt_info {
    fn from(r: &Receipt) -> Self {
        let b = &r.body;
        let s = &b.service_summary;
        let id = b.backend_id.as_bytes();
        let mut backend_id = [0u8; 32];
        for (dst, src) in backend_id.iter_mut().zip(id) {
            *dst = *src;
        }
        Self {
            receipt_type: b.receipt_type.tag(),
            operator_role: b.operator_role.tag(),
            operator_id: b.operator_id.to_bytes(),
            backend_id,
            backend_id_len: id.len(),
            policy_version: b.policy_version,
            window_len_s: b.window_len.secs(),
            window_id: b.window_id.get(),
            timestamp_ms: b.timestamp_ms,
            request_count: s.request_count,
            success_count: s.success_count,
            error_count: s.error_count,
            bytes_served_total: s.bytes_served_total,
            served_from_cache_count: s.served_from_cache_count,
            latency_p95_bucket: s.latency_p95_bucket.tag(),
            response_size_p95_bucket: s.response_size_p95_bucket.tag(),
            leaf_count: b.integrity.leaf_count,
            merkle_root: b.integrity.merkle_root,
            name_key_commitment: b.integrity.name_key_commitment,
            signature: r.signature,
        }
    }
}

/// Decodes a receipt's canonical bytes (strictly: exactly one encoding per receipt) into
/// `*out`. The signature is not checked; see `tolldns_receipt_verify`.
///
/// Both formats decode; for a v2 receipt `*out` holds the fields common to both
/// (`tolldns_receipt_decode_v2` also gives the version, the deployment id, the ticketed-leaf
/// count and the name sketch).
///
/// # Errors
///
/// `TOLLDNS_RESULT_NULL_PARAMETER`; a `TOLLDNS_RESULT_RECEIPT_*` decode error.
///
/// # Safety
///
/// `receipt` must be readable for `receipt_len` bytes and `out` writable. Thread-safe.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tolldns_receipt_decode(
    receipt: *const u8,
    receipt_len: usize,
    out: *mut tolldns_receipt_info,
) -> tolldns_result {
    guard(|| -> FfiResult {
        // SAFETY: the caller guarantees `receipt` is readable for `receipt_len` bytes.
        let bytes = unsafe { input_slice(receipt, receipt_len) }?;
        let out = Out::new(out)?;
        let receipt = Receipt::from_bytes(bytes)?;
        // SAFETY: the caller guarantees `out` is writable.
        unsafe { out.write(tolldns_receipt_info::from(&receipt)) };
        Ok(())
    })
}

/// An operator's standing, as returned by `tolldns_verify_callbacks.operator_status`.
pub const TOLLDNS_OPERATOR_UNREGISTERED: u8 = 0;
/// The operator is registered but not staked for the window.
pub const TOLLDNS_OPERATOR_NOT_STAKED: u8 = 1;
/// The operator is registered and staked.
pub const TOLLDNS_OPERATOR_ACTIVE: u8 = 2;

/// The caller's registries, consulted by `tolldns_receipt_verify`. Each callback receives
/// `userdata` first; all three are required. Callbacks must not unwind (C++ exceptions) and must
/// be safe to call from the thread that calls `tolldns_receipt_verify`.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct tolldns_verify_callbacks {
    /// Passed unchanged to every callback.
    pub userdata: *mut c_void,
    /// The operator's standing for a role and window: a `TOLLDNS_OPERATOR_*` value (anything
    /// else counts as unregistered). `operator_id` points to 32 bytes.
    pub operator_status: Option<
        unsafe extern "C" fn(
            userdata: *mut c_void,
            operator_id: *const u8,
            operator_role: u8,
            window_id: u64,
        ) -> u8,
    >,
    /// Whether a policy version is valid for a window.
    pub policy_is_valid: Option<
        unsafe extern "C" fn(
            userdata: *mut c_void,
            policy_version: u32,
            window_id: u64,
            window_len_s: u32,
        ) -> bool,
    >,
    /// Whether a receipt for `(operator, backend, window)` was already accepted.
    /// `operator_id` points to 32 bytes, `backend_id` to `backend_id_len` bytes.
    pub ledger_contains: Option<
        unsafe extern "C" fn(
            userdata: *mut c_void,
            operator_id: *const u8,
            backend_id: *const u8,
            backend_id_len: usize,
            window_id: u64,
        ) -> bool,
    >,
}

/// The three callbacks, checked for NULL, behind the verifier's traits.
struct Callbacks {
    userdata: *mut c_void,
    operator_status: unsafe extern "C" fn(*mut c_void, *const u8, u8, u64) -> u8,
    policy_is_valid: unsafe extern "C" fn(*mut c_void, u32, u64, u32) -> bool,
    ledger_contains: unsafe extern "C" fn(*mut c_void, *const u8, *const u8, usize, u64) -> bool,
}

impl OperatorRegistry for Callbacks {
    /// Never called: `tolldns_receipt_verify` refuses v2 receipts, the only ones whose backend
    /// is checked. Refuses, should that change.
    fn backend_registered(&self, _: &OperatorId, _: &BackendId) -> bool {
        false
    }

    fn operator_status(&self, id: &OperatorId, role: Role, window: WindowId) -> OperatorStatus {
        // SAFETY: the caller of `tolldns_receipt_verify` supplied a valid callback; the
        // operator id points to 32 live bytes for the duration of the call.
        let status = unsafe {
            (self.operator_status)(
                self.userdata,
                id.as_bytes().as_ptr(),
                role.tag(),
                window.get(),
            )
        };
        match status {
            TOLLDNS_OPERATOR_ACTIVE => OperatorStatus::Active,
            TOLLDNS_OPERATOR_NOT_STAKED => OperatorStatus::NotStaked,
            _ => OperatorStatus::Unregistered,
        }
    }
}

impl PolicyRegistry for Callbacks {
    fn is_valid_policy(&self, version: u32, window: WindowId, len: WindowLen) -> bool {
        // SAFETY: the caller of `tolldns_receipt_verify` supplied a valid callback.
        unsafe { (self.policy_is_valid)(self.userdata, version, window.get(), len.secs()) }
    }
}

impl ReceiptLedger for Callbacks {
    /// Never called, as `backend_registered`; reports an overlap (a refusal) should that change.
    fn overlaps(&self, _: &OperatorId, _: u64, _: u64) -> bool {
        true
    }

    fn contains(&self, id: &OperatorId, backend: &BackendId, window: WindowId) -> bool {
        let backend = backend.as_bytes();
        // SAFETY: the caller of `tolldns_receipt_verify` supplied a valid callback; both
        // pointers point to live bytes of the stated lengths for the duration of the call.
        unsafe {
            (self.ledger_contains)(
                self.userdata,
                id.as_bytes().as_ptr(),
                backend.as_ptr(),
                backend.len(),
                window.get(),
            )
        }
    }
}

/// Verifies a receipt against every rule of the format, in order: the operator is registered
/// and staked (callback), the signature verifies strictly, the policy version is valid
/// (callback), the counts are consistent, the timestamp lies in the window ± `skew_ms`
/// (30000 is the reference default), and the receipt is not a duplicate (callback).
/// `TOLLDNS_RESULT_OK` means the receipt is acceptable; record it in your ledger.
///
/// This is the format v1 verifier, and its result codes (500–518) are frozen. A v2 receipt is
/// refused with `TOLLDNS_RESULT_RECEIPT_UNSUPPORTED_VERSION`: its rules need a deployment, an
/// arrival time and more callbacks (`tolldns_receipt_verify_v2`, which checks v1 receipts as
/// well).
///
/// # Errors
///
/// `TOLLDNS_RESULT_NULL_PARAMETER` (including a NULL callback); a `TOLLDNS_RESULT_RECEIPT_*`
/// decode error; `TOLLDNS_RESULT_RECEIPT_UNSUPPORTED_VERSION` for a v2 receipt; the first
/// failing rule as a `TOLLDNS_RESULT_VERIFY_*` code (`tolldns_verify_error_name` names it).
///
/// # Safety
///
/// `callbacks` must point to a valid structure whose callbacks are safe to call with its
/// `userdata`; `receipt` must be readable for `receipt_len` bytes. Thread-safe if the
/// callbacks are.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tolldns_receipt_verify(
    callbacks: *const tolldns_verify_callbacks,
    receipt: *const u8,
    receipt_len: usize,
    skew_ms: u64,
) -> tolldns_result {
    guard(|| -> FfiResult {
        // SAFETY: the caller guarantees `callbacks` points to a valid structure and `receipt`
        // is readable for `receipt_len` bytes.
        let (cb, bytes) = unsafe { (input_ref(callbacks)?, input_slice(receipt, receipt_len)?) };
        let cb = Callbacks {
            userdata: cb.userdata,
            operator_status: cb.operator_status.ok_or(tolldns_result::NullParameter)?,
            policy_is_valid: cb.policy_is_valid.ok_or(tolldns_result::NullParameter)?,
            ledger_contains: cb.ledger_contains.ok_or(tolldns_result::NullParameter)?,
        };
        let receipt = Receipt::from_bytes(bytes)?;
        if receipt.body.v2.is_some() {
            return Err(tolldns_result::ReceiptUnsupportedVersion);
        }
        // A v1 receipt is checked by the v1 rules alone: the deployment and the arrival time
        // are not consulted.
        let deployment =
            Deployment::new(DeploymentId::default(), receipt.body.window_len).with_v1(true);
        Verifier::new(deployment, &cb, &cb, &cb)
            .with_skew_ms(skew_ms)
            .verify(&receipt, 0)
            .map_err(legacy_verify_result)
    })
}

/// Checks only a receipt's strict ed25519 signature against its own operator id (either
/// format; a v2 receipt's signed message starts with `"TOLLDNS-RECEIPT-V2\0"`).
///
/// # Errors
///
/// `TOLLDNS_RESULT_NULL_PARAMETER`; a `TOLLDNS_RESULT_RECEIPT_*` decode error;
/// `TOLLDNS_RESULT_VERIFY_SIGNATURE_INVALID_KEY` or `TOLLDNS_RESULT_VERIFY_SIGNATURE_INVALID`.
///
/// # Safety
///
/// `receipt` must be readable for `receipt_len` bytes. Thread-safe.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tolldns_receipt_verify_signature(
    receipt: *const u8,
    receipt_len: usize,
) -> tolldns_result {
    guard(|| -> FfiResult {
        // SAFETY: the caller guarantees `receipt` is readable for `receipt_len` bytes.
        let bytes = unsafe { input_slice(receipt, receipt_len) }?;
        Receipt::from_bytes(bytes)?.verify_signature()?;
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use tolldns_receipts::{ErrorClass, SizeBucket};

    #[test]
    fn constants_match_the_receipts_crate() {
        assert_eq!(TOLLDNS_LEAF_LEN, LEAF_LEN_V1);
        assert_eq!(
            crate::receipts_v2::TOLLDNS_LEAF_V2_LEN,
            tolldns_receipts::LEAF_LEN
        );
        assert_eq!(TOLLDNS_SIGNATURE_LEN, tolldns_receipts::SIGNATURE_LEN);
        assert_eq!(
            TOLLDNS_MERKLE_PROOF_MAX_LEN,
            8 + 8 + 4 + merkle::MAX_PATH_LEN * 32
        );
        assert_eq!(TOLLDNS_MAX_BACKEND_ID_LEN, BackendId::MAX_LEN);
        assert_eq!(TOLLDNS_LEAF_FLAG_CACHE_HIT, LeafFlags::CACHE_HIT);
        assert_eq!(TOLLDNS_LEAF_FLAG_STALE, LeafFlags::STALE);
        assert_eq!(TOLLDNS_LEAF_FLAG_TRUNCATED, LeafFlags::TRUNCATED);
        assert_eq!(TOLLDNS_ROLE_EDGE_INGRESS, Role::EdgeIngress.tag());
        assert_eq!(TOLLDNS_ROLE_GATEWAY, Role::Gateway.tag());
        assert_eq!(TOLLDNS_ROLE_CACHE, Role::Cache.tag());
        assert_eq!(TOLLDNS_ROLE_CORE_RESOLVER, Role::CoreResolver.tag());
        assert_eq!(TOLLDNS_ROLE_ANYCAST, Role::Anycast.tag());
        assert_eq!(TOLLDNS_ROLE_SCRUBBING, Role::Scrubbing.tag());
        assert_eq!(TOLLDNS_TRANSPORT_UDP, Transport::Udp.tag());
        assert_eq!(TOLLDNS_TRANSPORT_TCP, Transport::Tcp.tag());
        assert_eq!(TOLLDNS_TRANSPORT_DOT, Transport::Dot.tag());
        assert_eq!(TOLLDNS_TRANSPORT_DOH, Transport::Doh.tag());
        assert_eq!(TOLLDNS_TRANSPORT_DOQ, Transport::Doq.tag());
        assert_eq!(TOLLDNS_RCODE_NOERROR, RcodeClass::NoError.tag());
        assert_eq!(TOLLDNS_RCODE_SERVFAIL, RcodeClass::Servfail.tag());
        assert_eq!(TOLLDNS_RCODE_NXDOMAIN, RcodeClass::Nxdomain.tag());
        assert_eq!(
            TOLLDNS_WORK_DNS_RECURSION_LIGHT,
            WorkClass::DnsRecursionLight.tag()
        );
        assert_eq!(TOLLDNS_WORK_CACHE_HIT, WorkClass::CacheHit.tag());
        assert_eq!(TOLLDNS_WORK_CACHE_MISS, WorkClass::CacheMiss.tag());
        // Tags documented by number on `tolldns_leaf`.
        assert_eq!(LatencyBucket::ALL.len(), 7);
        assert_eq!(SizeBucket::ALL.len(), 5);
        assert_eq!(ErrorClass::ALL.len(), 9);
    }

    #[test]
    fn leaf_struct_round_trips() {
        let leaf = tolldns_leaf {
            timestamp_ms: 1_760_000_100_000,
            transport: TOLLDNS_TRANSPORT_DOH,
            qtype: 28,
            rcode_class: TOLLDNS_RCODE_NOERROR,
            work_class: TOLLDNS_WORK_CACHE_HIT,
            flags: TOLLDNS_LEAF_FLAG_CACHE_HIT,
            latency_bucket: 1,
            response_bytes: 300,
            name_hash: [1; 16],
            ticket: [2; 16],
            response_summary_hash: [3; 16],
        };
        let mut bytes = [0u8; TOLLDNS_LEAF_LEN];
        // SAFETY: live locals of the stated sizes.
        let r = unsafe { tolldns_leaf_encode(&leaf, bytes.as_mut_ptr(), bytes.len()) };
        assert_eq!(r, tolldns_result::Ok);
        let mut back = tolldns_leaf::default();
        // SAFETY: as above.
        let r = unsafe { tolldns_leaf_decode(bytes.as_ptr(), bytes.len(), &mut back) };
        assert_eq!(r, tolldns_result::Ok);
        assert_eq!(back, leaf);
        let bad = tolldns_leaf {
            transport: 0,
            ..leaf
        };
        // SAFETY: as above.
        let r = unsafe { tolldns_leaf_encode(&bad, bytes.as_mut_ptr(), bytes.len()) };
        assert_eq!(r, tolldns_result::ReceiptUnknownTag);
    }
}
