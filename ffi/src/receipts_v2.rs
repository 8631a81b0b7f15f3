//! Receipt format v2 (`tolldns-receipts`): deployment ids, leaves with `repeat`, v2 batch
//! builders, receipt verification with a deployment and an arrival time, and audits whose
//! answers carry each sampled leaf's right neighbour.
//!
//! The first API ([`crate::receipts`]) keeps reading and writing format v1 with its own
//! structures and result codes; nothing there changed meaning. This module adds the v2
//! versions under new names (`_v2`), as the C ABI versions things: a structure never grows,
//! a function never changes its arguments; a new one is added instead.
//!
//! Verification results of this module are `900 + VerifyError::code()`
//! (`TOLLDNS_RESULT_RULE_*`); `tolldns_verify_error_name` gives the rule's stable name.

use core::ffi::c_void;

use tolldns_core::{BackendId, DeploymentId, OperatorId, Role, WindowId, WindowLen};
use tolldns_receipts::{
    AuditAnswer, AuditReport, AuditSample, AuditSeed, Deployment, Leaf, LeafProof,
    MAX_RESPONSE_BYTES, MerkleProof, OperatorRegistry, OperatorStatus, PolicyRegistry, Receipt,
    ReceiptLedger, SKETCH_REGISTERS, TicketCheck, TicketStatus, Verifier,
};

use crate::boundary::{FfiResult, Out, OutBytes, guard, input_array, input_ref, input_slice};
use crate::name::TOLLDNS_HASH_LEN;
use crate::receipts::{
    TOLLDNS_OPERATOR_ACTIVE, TOLLDNS_OPERATOR_NOT_STAKED, new_builder, tolldns_batch_builder,
    tolldns_leaf, tolldns_receipt_info,
};
use crate::tolldns_result;

/// Length of an encoded receipt leaf in bytes, format v2: the v1 layout with version byte 2,
/// followed by `repeat` (`u16` little-endian).
pub const TOLLDNS_LEAF_V2_LEN: usize = 71;
/// Length of a deployment id in bytes.
pub const TOLLDNS_DEPLOYMENT_ID_LEN: usize = 32;
/// Number of registers (bytes) of a v2 receipt's name sketch.
pub const TOLLDNS_SKETCH_REGISTERS: usize = 256;
/// The largest response size a v2 leaf may carry (a DNS message is at most 65535 bytes).
pub const TOLLDNS_MAX_RESPONSE_BYTES: u32 = 65_535;
/// The reference arrival bound of a deployment: 10 minutes after the window ends.
pub const TOLLDNS_DEFAULT_MAX_DELAY_MS: u64 = 600_000;
/// The reference repeat bound of a deployment: at most a tenth of the ticketed leaves may be
/// repeats.
pub const TOLLDNS_DEFAULT_MAX_REPEAT_PERMILLE: u32 = 100;
/// The reference tolerance on a receipt's timestamp around its window: 30 seconds.
pub const TOLLDNS_DEFAULT_SKEW_MS: u64 = 30_000;
/// `tolldns_receipt_info_v2.version` of a format v1 receipt.
pub const TOLLDNS_RECEIPT_VERSION_V1: u8 = 1;
/// `tolldns_receipt_info_v2.version` of a format v2 receipt.
pub const TOLLDNS_RECEIPT_VERSION_V2: u8 = 2;

/// A ticket lookup's answer (`tolldns_ticket_status_fn`): no token could be obtained for the
/// ticket id.
pub const TOLLDNS_TICKET_STATUS_UNKNOWN: u8 = 0;
/// The token behind the ticket id was found and verifies under an accepted issuer key.
pub const TOLLDNS_TICKET_STATUS_VALID: u8 = 1;
/// A token was found but does not verify (or does not hash to the ticket id). Any value other
/// than the three `TOLLDNS_TICKET_STATUS_*` counts as this one.
pub const TOLLDNS_TICKET_STATUS_INVALID: u8 = 2;

/// A receipt leaf in structured form, format v2: `tolldns_leaf` and `repeat`. Its canonical
/// encoding is `TOLLDNS_LEAF_V2_LEN` bytes ([`tolldns_leaf_v2_encode`] /
/// [`tolldns_leaf_v2_decode`]).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct tolldns_leaf_v2 {
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
    /// Response size in bytes, at most `TOLLDNS_MAX_RESPONSE_BYTES`.
    pub response_bytes: u32,
    /// `HMAC-SHA256(name_key, canonical_name)[..16]` ([`crate::name::tolldns_name_hash`]).
    pub name_hash: [u8; 16],
    /// The client's toll-ticket id or a watcher probe nonce; zero when absent.
    pub ticket: [u8; 16],
    /// A hash of the response summary ([`crate::receipts::tolldns_response_summary_hash`]).
    pub response_summary_hash: [u8; 16],
    /// How many leaves of the window before this one agree with it in every other field (0 for
    /// the first). Set by the batch builder when it closes a window; 0 in a v1 leaf.
    pub repeat: u16,
}

impl tolldns_leaf_v2 {
    /// The fields shared with the v1 structure.
    const fn base(&self) -> tolldns_leaf {
        tolldns_leaf {
            timestamp_ms: self.timestamp_ms,
            transport: self.transport,
            qtype: self.qtype,
            rcode_class: self.rcode_class,
            work_class: self.work_class,
            flags: self.flags,
            latency_bucket: self.latency_bucket,
            response_bytes: self.response_bytes,
            name_hash: self.name_hash,
            ticket: self.ticket,
            response_summary_hash: self.response_summary_hash,
        }
    }
}

impl TryFrom<&tolldns_leaf_v2> for Leaf {
    type Error = tolldns_result;

    fn try_from(l: &tolldns_leaf_v2) -> Result<Self, tolldns_result> {
        let mut leaf = Self::try_from(&l.base())?;
        leaf.repeat = l.repeat;
        Ok(leaf)
    }
}

impl From<&Leaf> for tolldns_leaf_v2 {
    fn from(l: &Leaf) -> Self {
        let b = tolldns_leaf::from(l);
        Self {
            timestamp_ms: b.timestamp_ms,
            transport: b.transport,
            qtype: b.qtype,
            rcode_class: b.rcode_class,
            work_class: b.work_class,
            flags: b.flags,
            latency_bucket: b.latency_bucket,
            response_bytes: b.response_bytes,
            name_hash: b.name_hash,
            ticket: b.ticket,
            response_summary_hash: b.response_summary_hash,
            repeat: l.repeat,
        }
    }
}

/// Encodes a leaf to its canonical v2 bytes (`TOLLDNS_LEAF_V2_LEN`).
///
/// # Errors
///
/// `TOLLDNS_RESULT_NULL_PARAMETER`; `TOLLDNS_RESULT_RECEIPT_UNKNOWN_TAG` or
/// `TOLLDNS_RESULT_RECEIPT_RESERVED_FLAGS` for a field out of its range;
/// `TOLLDNS_RESULT_RECEIPT_RESPONSE_TOO_LARGE` if `response_bytes` is above 65535;
/// `TOLLDNS_RESULT_INSUFFICIENT_SIZE` if `out_len` is below `TOLLDNS_LEAF_V2_LEN`.
///
/// # Safety
///
/// `leaf` must point to a valid structure and `out` be writable for `out_len` bytes.
/// Thread-safe.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tolldns_leaf_v2_encode(
    leaf: *const tolldns_leaf_v2,
    out: *mut u8,
    out_len: usize,
) -> tolldns_result {
    guard(|| -> FfiResult {
        // SAFETY: the caller guarantees `leaf` points to a valid structure.
        let leaf = Leaf::try_from(unsafe { input_ref(leaf) }?)?;
        let out = OutBytes::new(out, out_len)?;
        if leaf.response_bytes > MAX_RESPONSE_BYTES {
            return Err(tolldns_result::ReceiptResponseTooLarge);
        }
        // SAFETY: the caller guarantees `out` is writable for `out_len` bytes.
        unsafe { out.write(&leaf.to_bytes()) }
    })
}

/// Decodes a canonical leaf of either format into `*out`: `TOLLDNS_LEAF_V2_LEN` bytes (v2) or
/// `TOLLDNS_LEAF_LEN` bytes (v1, whose `repeat` is 0), told apart by the length.
///
/// # Errors
///
/// `TOLLDNS_RESULT_NULL_PARAMETER`; a `TOLLDNS_RESULT_RECEIPT_*` decode error
/// (`TOLLDNS_RESULT_RECEIPT_WRONG_LENGTH` for any other length).
///
/// # Safety
///
/// `leaf` must be readable for `leaf_len` bytes and `out` writable. Thread-safe.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tolldns_leaf_v2_decode(
    leaf: *const u8,
    leaf_len: usize,
    out: *mut tolldns_leaf_v2,
) -> tolldns_result {
    guard(|| -> FfiResult {
        // SAFETY: the caller guarantees `leaf` is readable for `leaf_len` bytes.
        let bytes = unsafe { input_slice(leaf, leaf_len) }?;
        let out = Out::new(out)?;
        let leaf = Leaf::from_bytes_any(bytes)?;
        // SAFETY: the caller guarantees `out` is writable.
        unsafe { out.write(tolldns_leaf_v2::from(&leaf)) };
        Ok(())
    })
}

/// The deployment id of the score program `program_id` on the cluster whose genesis hash is
/// `genesis_hash`: `SHA256("TOLLDNS-DEPLOYMENT-V1\0" || program_id || genesis_hash)`. Every v2
/// receipt carries it in its signed bytes, so that it verifies on this network only. Writes
/// `TOLLDNS_DEPLOYMENT_ID_LEN` bytes.
///
/// # Errors
///
/// `TOLLDNS_RESULT_NULL_PARAMETER`; `TOLLDNS_RESULT_INVALID_PARAMETER` unless both inputs are
/// 32 bytes; `TOLLDNS_RESULT_INSUFFICIENT_SIZE`.
///
/// # Safety
///
/// `program_id` and `genesis_hash` must be readable for their lengths and `out` writable for
/// `out_len` bytes. Thread-safe.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tolldns_deployment_id(
    program_id: *const u8,
    program_id_len: usize,
    genesis_hash: *const u8,
    genesis_hash_len: usize,
    out: *mut u8,
    out_len: usize,
) -> tolldns_result {
    guard(|| -> FfiResult {
        // SAFETY: the caller guarantees both buffers are readable for their lengths.
        let (program_id, genesis_hash) = unsafe {
            (
                input_array::<32>(program_id, program_id_len)?,
                input_array::<32>(genesis_hash, genesis_hash_len)?,
            )
        };
        let out = OutBytes::new(out, out_len)?;
        let id = DeploymentId::derive(&program_id, &genesis_hash);
        // SAFETY: the caller guarantees `out` is writable for `out_len` bytes.
        unsafe { out.write(id.as_bytes()) }
    })
}

/// Creates a batch builder that writes format **v2** receipts on deployment `deployment_id`
/// (`TOLLDNS_DEPLOYMENT_ID_LEN` bytes, `tolldns_deployment_id`) for one operator role and
/// backend. Otherwise as `tolldns_batch_builder_new`; the handle is used and freed with the
/// same `tolldns_batch_builder_*` functions.
///
/// # Errors
///
/// `TOLLDNS_RESULT_NULL_PARAMETER`; `TOLLDNS_RESULT_INVALID_PARAMETER` for an unknown role or a
/// deployment id that is not 32 bytes; `TOLLDNS_RESULT_RECEIPT_INVALID_BACKEND_ID` unless the
/// backend id is 1 to 32 printable ASCII bytes; `TOLLDNS_RESULT_RECEIPT_ZERO_WINDOW_LEN` if
/// `window_len_s` is 0.
///
/// # Safety
///
/// `deployment_id` and `backend_id` must be readable for their lengths and `out` writable.
/// The handle written to `*out` must be freed with `tolldns_batch_builder_free`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tolldns_batch_builder_new_v2(
    deployment_id: *const u8,
    deployment_id_len: usize,
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
        // SAFETY: the caller guarantees both buffers are readable for their lengths.
        let (deployment_id, backend_id) = unsafe {
            (
                input_array::<TOLLDNS_DEPLOYMENT_ID_LEN>(deployment_id, deployment_id_len)?,
                input_slice(backend_id, backend_id_len)?,
            )
        };
        let out = Out::new(out)?;
        let operator_role =
            Role::from_tag(operator_role).map_err(|_| tolldns_result::InvalidParameter)?;
        let backend_id = BackendId::from_bytes(backend_id)
            .map_err(|_| tolldns_result::ReceiptInvalidBackendId)?;
        let window_len =
            WindowLen::new(window_len_s).map_err(|_| tolldns_result::ReceiptZeroWindowLen)?;
        let inner = new_builder(
            DeploymentId(deployment_id),
            operator_role,
            backend_id,
            policy_version,
            window_len,
            shards,
            max_leaves_per_window,
        );
        let handle = Box::into_raw(Box::new(tolldns_batch_builder { inner, v1: false }));
        // SAFETY: the caller guarantees `out` is writable; ownership of the box passes to it.
        unsafe { out.write(handle) };
        Ok(())
    })
}

/// A decoded receipt of either format, flattened for C: the fields of `tolldns_receipt_info`
/// and those of format v2.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct tolldns_receipt_info_v2 {
    /// The fields both formats have.
    pub info: tolldns_receipt_info,
    /// `TOLLDNS_RECEIPT_VERSION_V1` or `TOLLDNS_RECEIPT_VERSION_V2`.
    pub version: u8,
    /// v2: the deployment the receipt is signed for (zero for v1).
    pub deployment_id: [u8; 32],
    /// v2: leaves with a non-zero ticket (0 for v1).
    pub ticketed_leaf_count: u64,
    /// v2: ticketed leaves with a non-zero `repeat` (the same answer under the same ticket in
    /// the same millisecond; 0 for v1).
    pub ticketed_repeat_count: u64,
    /// v2: the distinct ticketed names a score may count: the name sketch's estimate
    /// (HyperLogLog, relative standard error about 6.5 %) capped at `ticketed_leaf_count`
    /// (0 for v1).
    pub distinct_names: u64,
    /// v2: the name sketch's registers (zero for v1).
    pub name_sketch: [u8; 256],
}

impl From<&Receipt> for tolldns_receipt_info_v2 {
    fn from(r: &Receipt) -> Self {
        let v2 = r.body.v2.as_ref();
        Self {
            info: tolldns_receipt_info::from(r),
            version: r.body.version(),
            deployment_id: v2.map_or([0; 32], |v| v.deployment_id.0),
            ticketed_leaf_count: v2.map_or(0, |v| v.ticketed_leaf_count),
            ticketed_repeat_count: v2.map_or(0, |v| v.ticketed_repeat_count),
            distinct_names: v2.map_or(0, |v| v.distinct_names()),
            name_sketch: v2.map_or([0; SKETCH_REGISTERS], |v| v.name_sketch.to_bytes()),
        }
    }
}

/// Decodes a receipt of either format (strictly: exactly one encoding per receipt) into
/// `*out`. The signature is not checked; see `tolldns_receipt_verify_v2`.
///
/// # Errors
///
/// `TOLLDNS_RESULT_NULL_PARAMETER`; a `TOLLDNS_RESULT_RECEIPT_*` decode error.
///
/// # Safety
///
/// `receipt` must be readable for `receipt_len` bytes and `out` writable. Thread-safe.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tolldns_receipt_decode_v2(
    receipt: *const u8,
    receipt_len: usize,
    out: *mut tolldns_receipt_info_v2,
) -> tolldns_result {
    guard(|| -> FfiResult {
        // SAFETY: the caller guarantees `receipt` is readable for `receipt_len` bytes.
        let bytes = unsafe { input_slice(receipt, receipt_len) }?;
        let out = Out::new(out)?;
        let receipt = Receipt::from_bytes(bytes)?;
        // SAFETY: the caller guarantees `out` is writable.
        unsafe { out.write(tolldns_receipt_info_v2::from(&receipt)) };
        Ok(())
    })
}

/// The constants of a network that receipts must match. Fill it with
/// [`tolldns_deployment_new`] (the reference values), then change what the network changes.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct tolldns_deployment {
    /// The deployment id every v2 receipt must carry (`tolldns_deployment_id`).
    pub id: [u8; 32],
    /// How long after its window ends a v2 receipt may arrive, in milliseconds
    /// (`TOLLDNS_DEFAULT_MAX_DELAY_MS`).
    pub max_delay_ms: u64,
    /// The deployment's only window length, in seconds (not zero).
    pub window_len_s: u32,
    /// The largest share of a v2 receipt's ticketed leaves, in thousandths, that may be
    /// repeats (`TOLLDNS_DEFAULT_MAX_REPEAT_PERMILLE`): a window padded with copies of its
    /// ticketed leaves shows them as repeats.
    pub max_repeat_permille: u32,
    /// Whether every leaf must carry a toll ticket: an audit then refuses a sampled leaf
    /// without one (default false).
    pub require_tickets: bool,
    /// Whether v1 receipts are still accepted, under the v1 rules (default false: they are
    /// refused with `TOLLDNS_RESULT_RULE_V1_NOT_ACCEPTED`).
    pub accept_v1: bool,
}

impl TryFrom<&tolldns_deployment> for Deployment {
    type Error = tolldns_result;

    fn try_from(d: &tolldns_deployment) -> Result<Self, tolldns_result> {
        let window_len =
            WindowLen::new(d.window_len_s).map_err(|_| tolldns_result::ReceiptZeroWindowLen)?;
        Ok(Self::new(DeploymentId(d.id), window_len)
            .with_max_delay_ms(d.max_delay_ms)
            .with_max_repeat_permille(d.max_repeat_permille)
            .with_require_tickets(d.require_tickets)
            .with_v1(d.accept_v1))
    }
}

impl From<&Deployment> for tolldns_deployment {
    fn from(d: &Deployment) -> Self {
        Self {
            id: d.id.0,
            max_delay_ms: d.max_delay_ms,
            window_len_s: d.window_len.secs(),
            max_repeat_permille: d.max_repeat_permille,
            require_tickets: d.require_tickets,
            accept_v1: d.accept_v1,
        }
    }
}

/// Fills `*out` with deployment `deployment_id` (`TOLLDNS_DEPLOYMENT_ID_LEN` bytes) of
/// windows of `window_len_s` seconds and the reference values of everything else:
/// `TOLLDNS_DEFAULT_MAX_DELAY_MS`, `TOLLDNS_DEFAULT_MAX_REPEAT_PERMILLE`, no tickets required,
/// v1 receipts refused.
///
/// # Errors
///
/// `TOLLDNS_RESULT_NULL_PARAMETER`; `TOLLDNS_RESULT_INVALID_PARAMETER` if the id is not 32
/// bytes; `TOLLDNS_RESULT_RECEIPT_ZERO_WINDOW_LEN` if `window_len_s` is 0.
///
/// # Safety
///
/// `deployment_id` must be readable for `deployment_id_len` bytes and `out` writable.
/// Thread-safe.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tolldns_deployment_new(
    deployment_id: *const u8,
    deployment_id_len: usize,
    window_len_s: u32,
    out: *mut tolldns_deployment,
) -> tolldns_result {
    guard(|| -> FfiResult {
        // SAFETY: the caller guarantees `deployment_id` is readable for its length.
        let id =
            unsafe { input_array::<TOLLDNS_DEPLOYMENT_ID_LEN>(deployment_id, deployment_id_len) }?;
        let out = Out::new(out)?;
        let window_len =
            WindowLen::new(window_len_s).map_err(|_| tolldns_result::ReceiptZeroWindowLen)?;
        let d = Deployment::new(DeploymentId(id), window_len);
        // SAFETY: the caller guarantees `out` is writable.
        unsafe { out.write(tolldns_deployment::from(&d)) };
        Ok(())
    })
}

/// The caller's registries and ledger, consulted by `tolldns_receipt_verify_v2`. Each callback
/// receives `userdata` first; all five are required. Callbacks must not unwind (C++
/// exceptions) and must be safe to call from the thread that calls
/// `tolldns_receipt_verify_v2`. Pointers passed to a callback are valid for that call only.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct tolldns_verify_callbacks_v2 {
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
    /// v2: whether `backend_id` (`backend_id_len` bytes) is registered to the operator whose
    /// receipt-signing key is `operator_id` (32 bytes).
    pub backend_registered: Option<
        unsafe extern "C" fn(
            userdata: *mut c_void,
            operator_id: *const u8,
            backend_id: *const u8,
            backend_id_len: usize,
        ) -> bool,
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
    /// v1: whether a receipt for `(operator, backend, window)` was already accepted.
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
    /// v2: whether an accepted receipt of `operator_id` (32 bytes), on any backend, covers any
    /// instant of `[start_ms, end_ms)` (Unix milliseconds).
    pub ledger_overlaps: Option<
        unsafe extern "C" fn(
            userdata: *mut c_void,
            operator_id: *const u8,
            start_ms: u64,
            end_ms: u64,
        ) -> bool,
    >,
}

type OperatorStatusFn = unsafe extern "C" fn(*mut c_void, *const u8, u8, u64) -> u8;
type BackendRegisteredFn = unsafe extern "C" fn(*mut c_void, *const u8, *const u8, usize) -> bool;
type PolicyIsValidFn = unsafe extern "C" fn(*mut c_void, u32, u64, u32) -> bool;
type LedgerContainsFn = unsafe extern "C" fn(*mut c_void, *const u8, *const u8, usize, u64) -> bool;
type LedgerOverlapsFn = unsafe extern "C" fn(*mut c_void, *const u8, u64, u64) -> bool;

/// The five callbacks, checked for NULL, behind the verifier's traits.
struct Callbacks {
    userdata: *mut c_void,
    operator_status: OperatorStatusFn,
    backend_registered: BackendRegisteredFn,
    policy_is_valid: PolicyIsValidFn,
    ledger_contains: LedgerContainsFn,
    ledger_overlaps: LedgerOverlapsFn,
}

impl TryFrom<&tolldns_verify_callbacks_v2> for Callbacks {
    type Error = tolldns_result;

    fn try_from(cb: &tolldns_verify_callbacks_v2) -> Result<Self, tolldns_result> {
        let null = tolldns_result::NullParameter;
        Ok(Self {
            userdata: cb.userdata,
            operator_status: cb.operator_status.ok_or(null)?,
            backend_registered: cb.backend_registered.ok_or(null)?,
            policy_is_valid: cb.policy_is_valid.ok_or(null)?,
            ledger_contains: cb.ledger_contains.ok_or(null)?,
            ledger_overlaps: cb.ledger_overlaps.ok_or(null)?,
        })
    }
}

impl OperatorRegistry for Callbacks {
    fn operator_status(&self, id: &OperatorId, role: Role, window: WindowId) -> OperatorStatus {
        // SAFETY: the caller of `tolldns_receipt_verify_v2` supplied a valid callback; the
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

    fn backend_registered(&self, id: &OperatorId, backend: &BackendId) -> bool {
        let backend = backend.as_bytes();
        // SAFETY: the caller supplied a valid callback; both pointers point to live bytes of
        // the stated lengths for the duration of the call.
        unsafe {
            (self.backend_registered)(
                self.userdata,
                id.as_bytes().as_ptr(),
                backend.as_ptr(),
                backend.len(),
            )
        }
    }
}

impl PolicyRegistry for Callbacks {
    fn is_valid_policy(&self, version: u32, window: WindowId, len: WindowLen) -> bool {
        // SAFETY: the caller supplied a valid callback.
        unsafe { (self.policy_is_valid)(self.userdata, version, window.get(), len.secs()) }
    }
}

impl ReceiptLedger for Callbacks {
    fn contains(&self, id: &OperatorId, backend: &BackendId, window: WindowId) -> bool {
        let backend = backend.as_bytes();
        // SAFETY: the caller supplied a valid callback; both pointers point to live bytes of
        // the stated lengths for the duration of the call.
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

    fn overlaps(&self, id: &OperatorId, start_ms: u64, end_ms: u64) -> bool {
        // SAFETY: the caller supplied a valid callback; the operator id points to 32 live
        // bytes for the duration of the call.
        unsafe { (self.ledger_overlaps)(self.userdata, id.as_bytes().as_ptr(), start_ms, end_ms) }
    }
}

/// Verifies a receipt of either format against every rule that needs no leaves, in order:
/// a v1 receipt is refused unless `deployment->accept_v1`; the operator is registered and
/// staked (callback), the signature verifies strictly; for a v2 receipt, its deployment id
/// and window length are `deployment`'s and its backend is registered to the operator
/// (callback); the policy version is valid (callback); the counts are consistent (v2 also:
/// bytes at most 65535 per request, ticketed leaves at most the leaves, a name sketch exactly
/// when leaves are ticketed, repeated ticketed leaves at most the ticketed leaves and at most
/// `deployment->max_repeat_permille` thousandths of them); the timestamp lies in the window ±
/// `skew_ms` (`TOLLDNS_DEFAULT_SKEW_MS`); for a v2 receipt, it arrived (`received_ms`, Unix
/// milliseconds, as the caller recorded it at ingest) at most `deployment->max_delay_ms`
/// after its window and overlaps no accepted receipt of the operator (callback); for a v1
/// receipt, it is no duplicate (callback). `TOLLDNS_RESULT_OK` means the receipt is
/// acceptable; record it in your ledger.
///
/// An accepted v1 receipt is checked by the v1 rules: the rest of `deployment`,
/// `received_ms`, `backend_registered` and `ledger_overlaps` are not consulted (but the
/// callbacks must still be given).
///
/// # Errors
///
/// `TOLLDNS_RESULT_NULL_PARAMETER` (including a NULL callback);
/// `TOLLDNS_RESULT_RECEIPT_ZERO_WINDOW_LEN` for a deployment window length of 0; a
/// `TOLLDNS_RESULT_RECEIPT_*` decode error; the first failing rule as
/// `TOLLDNS_RESULT_RULE_*` = 900 + the rule's code (`tolldns_verify_error_name` names it).
///
/// # Safety
///
/// `callbacks` and `deployment` must point to valid structures, the callbacks must be safe to
/// call with `userdata`, and `receipt` must be readable for `receipt_len` bytes. Thread-safe if
/// the callbacks are.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tolldns_receipt_verify_v2(
    callbacks: *const tolldns_verify_callbacks_v2,
    deployment: *const tolldns_deployment,
    receipt: *const u8,
    receipt_len: usize,
    received_ms: u64,
    skew_ms: u64,
) -> tolldns_result {
    guard(|| -> FfiResult {
        // SAFETY: the caller guarantees valid structures and a readable receipt buffer.
        let (cb, deployment, bytes) = unsafe {
            (
                input_ref(callbacks)?,
                input_ref(deployment)?,
                input_slice(receipt, receipt_len)?,
            )
        };
        let cb = Callbacks::try_from(cb)?;
        let deployment = Deployment::try_from(deployment)?;
        let receipt = Receipt::from_bytes(bytes)?;
        Verifier::new(deployment, &cb, &cb, &cb)
            .with_skew_ms(skew_ms)
            .verify(&receipt, received_ms)?;
        Ok(())
    })
}

/// The chain slot and hash an auditor takes an audit seed from.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct tolldns_audit_seed {
    /// The slot whose hash is the seed: the slot at which the receipt was recorded plus the
    /// auditor's fixed delay, so that the operator could not know the seed when it signed.
    pub slot: u64,
    /// The slot's hash: the 32-byte seed.
    pub hash: [u8; 32],
}

/// Draws the audit sample of a receipt from a seed fixed after it: as `tolldns_audit_sample`
/// with the seed `seed->hash`, after checking that `seed->slot` is exactly
/// `receipt_slot + delay_slots`, where `receipt_slot` is the chain slot at which the auditor
/// recorded the receipt and `delay_slots` (at least 1) the auditor's fixed delay. The seed
/// then post-dates the receipt, and the auditor cannot try many later slots and keep one it
/// likes. Writes `min(k, leaf_count)` distinct leaf indices, in draw order, to `out` and their
/// number to `*out_n`: the indices to ask the operator's audit answers for, in that order.
///
/// # Errors
///
/// `TOLLDNS_RESULT_NULL_PARAMETER`; `TOLLDNS_RESULT_INVALID_PARAMETER` if `root` is not 32
/// bytes; `TOLLDNS_RESULT_INSUFFICIENT_SIZE` if `out_len` is below `min(k, leaf_count)`;
/// `TOLLDNS_RESULT_AUDIT_SEED_NOT_AFTER_RECEIPT` if `delay_slots` is 0;
/// `TOLLDNS_RESULT_AUDIT_SEED_SLOT_NOT_FIXED` if `seed->slot` is not
/// `receipt_slot + delay_slots`.
///
/// # Safety
///
/// `seed` must point to a valid structure, `root` be readable for `root_len` bytes, `out`
/// writable for `out_len` elements and `out_n` writable. Thread-safe.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tolldns_audit_sample_v2(
    seed: *const tolldns_audit_seed,
    receipt_slot: u64,
    delay_slots: u64,
    root: *const u8,
    root_len: usize,
    leaf_count: u64,
    k: u64,
    out: *mut u64,
    out_len: usize,
    out_n: *mut usize,
) -> tolldns_result {
    guard(|| -> FfiResult {
        // SAFETY: the caller guarantees a valid structure and a readable root.
        let (seed, root) = unsafe {
            (
                input_ref(seed)?,
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
        let seed = AuditSeed {
            slot: seed.slot,
            hash: seed.hash,
        };
        let sample =
            AuditSample::at_fixed_slot(&seed, receipt_slot, delay_slots, &root, leaf_count, k)?;
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

/// An operator's answer for one sampled leaf index: the leaf and its inclusion proof and, for
/// a v2 receipt, its right neighbour (the leaf at `index + 1`) and that leaf's proof. The
/// operator serves them with `tolldns_batch_leaf` and `tolldns_batch_proof`.
///
/// Leaves are in the receipt's encoding (`TOLLDNS_LEAF_V2_LEN` bytes for v2,
/// `TOLLDNS_LEAF_LEN` for v1); proofs as `tolldns_batch_proof` writes them. The neighbour is
/// absent (`next_leaf` and `next_proof` NULL with lengths 0) for the last leaf of a tree, and
/// in a v1 audit, where it is not read.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct tolldns_audit_answer {
    /// The sampled leaf.
    pub leaf: *const u8,
    /// Its length.
    pub leaf_len: usize,
    /// Its encoded inclusion proof.
    pub proof: *const u8,
    /// The proof's length.
    pub proof_len: usize,
    /// The right neighbour, or NULL.
    pub next_leaf: *const u8,
    /// Its length (0 when absent).
    pub next_leaf_len: usize,
    /// The neighbour's encoded inclusion proof, or NULL.
    pub next_proof: *const u8,
    /// The proof's length (0 when absent).
    pub next_proof_len: usize,
}

/// What an accepted audit saw (a watcher keeps it as evidence).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct tolldns_audit_report {
    /// Sampled leaves.
    pub sampled: u64,
    /// Sampled leaves with a ticket (every one looked up and valid).
    pub ticketed: u64,
    /// Sampled leaves with a non-zero `repeat`.
    pub repeats: u64,
    /// Neighbours checked for order.
    pub neighbours: u64,
}

impl From<AuditReport> for tolldns_audit_report {
    fn from(r: AuditReport) -> Self {
        Self {
            sampled: r.sampled,
            ticketed: r.ticketed,
            repeats: r.repeats,
            neighbours: r.neighbours,
        }
    }
}

/// Looks up the token behind a ticket id for an audit: `ticket` points to the 16-byte ticket
/// id of a sampled leaf; return a `TOLLDNS_TICKET_STATUS_*` value. Receives the `userdata`
/// given to `tolldns_receipt_audit_v2`; must not unwind.
pub type tolldns_ticket_status_fn =
    Option<unsafe extern "C" fn(userdata: *mut c_void, ticket: *const u8) -> u8>;

/// The ticket callback behind `TicketCheck`.
struct TicketCallback {
    userdata: *mut c_void,
    lookup: unsafe extern "C" fn(*mut c_void, *const u8) -> u8,
}

impl TicketCheck for TicketCallback {
    fn ticket_status(&self, ticket: &[u8; 16]) -> TicketStatus {
        // SAFETY: the caller of `tolldns_receipt_audit_v2` supplied a valid callback; the
        // ticket points to 16 live bytes for the duration of the call.
        match unsafe { (self.lookup)(self.userdata, ticket.as_ptr()) } {
            TOLLDNS_TICKET_STATUS_VALID => TicketStatus::Valid,
            TOLLDNS_TICKET_STATUS_UNKNOWN => TicketStatus::Unknown,
            _ => TicketStatus::Invalid,
        }
    }
}

/// The registries an audit does not consult (`Verifier::check_audit` reads none of them).
struct NoRegistry;

impl OperatorRegistry for NoRegistry {
    fn operator_status(&self, _: &OperatorId, _: Role, _: WindowId) -> OperatorStatus {
        OperatorStatus::Unregistered
    }

    fn backend_registered(&self, _: &OperatorId, _: &BackendId) -> bool {
        false
    }
}

impl PolicyRegistry for NoRegistry {
    fn is_valid_policy(&self, _: u32, _: WindowId, _: WindowLen) -> bool {
        false
    }
}

impl ReceiptLedger for NoRegistry {
    fn contains(&self, _: &OperatorId, _: &BackendId, _: WindowId) -> bool {
        true
    }

    fn overlaps(&self, _: &OperatorId, _: u64, _: u64) -> bool {
        true
    }
}

/// One proved leaf in the receipt's encoding.
///
/// # Safety
///
/// Both buffers must be readable for their lengths.
unsafe fn leaf_proof(
    v2: bool,
    leaf: *const u8,
    leaf_len: usize,
    proof: *const u8,
    proof_len: usize,
) -> Result<LeafProof, tolldns_result> {
    if leaf.is_null() || proof.is_null() {
        return Err(tolldns_result::NullParameter);
    }
    // SAFETY: forwarded from the caller.
    let (leaf, proof) = unsafe { (input_slice(leaf, leaf_len)?, input_slice(proof, proof_len)?) };
    let leaf = if v2 {
        Leaf::from_bytes(leaf)?
    } else {
        Leaf::from_bytes_v1(leaf)?
    };
    Ok(LeafProof {
        leaf,
        proof: MerkleProof::from_bytes(proof)?,
    })
}

/// Decodes one audit answer.
///
/// # Safety
///
/// Every non-NULL pointer of `a` must be readable for its length.
unsafe fn audit_answer(v2: bool, a: &tolldns_audit_answer) -> Result<AuditAnswer, tolldns_result> {
    // The shape first (pointers), then the bytes.
    let has_next = match (a.next_leaf.is_null(), a.next_proof.is_null()) {
        (true, true) if a.next_leaf_len == 0 && a.next_proof_len == 0 => false,
        (false, false) => true,
        // NULL with a length, a neighbour without its proof, or a proof without its leaf.
        _ => return Err(tolldns_result::NullParameter),
    };
    if a.leaf.is_null() || a.proof.is_null() {
        return Err(tolldns_result::NullParameter);
    }
    // SAFETY: forwarded from the caller.
    let leaf = unsafe { leaf_proof(v2, a.leaf, a.leaf_len, a.proof, a.proof_len) }?;
    // A v1 audit does not read neighbours.
    let next = if has_next && v2 {
        // SAFETY: forwarded from the caller.
        Some(unsafe {
            leaf_proof(
                v2,
                a.next_leaf,
                a.next_leaf_len,
                a.next_proof,
                a.next_proof_len,
            )
        }?)
    } else {
        None
    };
    Ok(AuditAnswer { leaf, next })
}

/// Checks an operator's audit answers for a receipt that `tolldns_receipt_verify_v2` accepted:
/// draws the sample from `seed` (from slot `receipt_slot + delay_slots`, as
/// `tolldns_audit_sample_v2` does) and checks `answers`, one per sampled index in draw
/// order: every proof verifies against the receipt's root, names the sampled index and the
/// receipt's leaf count, and every sampled leaf lies in the receipt's window. For a v2 receipt
/// also, per answer in order: the right neighbour is present (except after the last leaf),
/// is leaf `index + 1` with a valid proof, comes strictly after the sampled leaf in the v2
/// order with a consistent `repeat`; a ticketed leaf lies under its name-sketch register and
/// its token is valid (`ticket_status`; with NULL, a sampled ticketed leaf is refused with
/// `TOLLDNS_RESULT_RULE_TICKET_NOT_CHECKED`); an unticketed leaf is refused when
/// `deployment->require_tickets`; and finally the sampled leaves agree with the service
/// summary (success, error, cache, ticketed and repeat shares, mean response size) within the
/// audit's binomial bound (false alarms at most 1e-6 per honest audit). On success `*out`
/// receives what the audit saw.
///
/// `deployment` supplies `require_tickets` only: the deployment's other rules are
/// `tolldns_receipt_verify_v2`'s.
///
/// # Errors
///
/// `TOLLDNS_RESULT_NULL_PARAMETER` (an answer without its leaf or proof, or half a
/// neighbour); `TOLLDNS_RESULT_RECEIPT_ZERO_WINDOW_LEN` for a deployment window length of 0;
/// a `TOLLDNS_RESULT_RECEIPT_*` decode error for the receipt or an answer's bytes;
/// `TOLLDNS_RESULT_AUDIT_SEED_NOT_AFTER_RECEIPT` or `TOLLDNS_RESULT_AUDIT_SEED_SLOT_NOT_FIXED`
/// (as `tolldns_audit_sample_v2`); the first failing rule as
/// `TOLLDNS_RESULT_RULE_*` = 900 + the rule's code (`tolldns_verify_error_name` names it).
///
/// # Safety
///
/// `deployment` and `seed` must point to valid structures; `receipt` must be readable for
/// `receipt_len` bytes; `answers` must point to `answers_len` structures whose non-NULL
/// pointers are readable for their lengths; `ticket_status`, if not NULL, must be safe to call
/// with `userdata`; `out` must be writable. Thread-safe if the callback is.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tolldns_receipt_audit_v2(
    deployment: *const tolldns_deployment,
    ticket_status: tolldns_ticket_status_fn,
    userdata: *mut c_void,
    receipt: *const u8,
    receipt_len: usize,
    seed: *const tolldns_audit_seed,
    receipt_slot: u64,
    delay_slots: u64,
    k: u64,
    answers: *const tolldns_audit_answer,
    answers_len: usize,
    out: *mut tolldns_audit_report,
) -> tolldns_result {
    guard(|| -> FfiResult {
        // SAFETY: the caller guarantees valid structures and readable buffers.
        let (deployment, bytes, seed, answers) = unsafe {
            (
                input_ref(deployment)?,
                input_slice(receipt, receipt_len)?,
                input_ref(seed)?,
                input_slice(answers, answers_len)?,
            )
        };
        let out = Out::new(out)?;
        let deployment = Deployment::try_from(deployment)?;
        let receipt = Receipt::from_bytes(bytes)?;
        let integrity = &receipt.body.integrity;
        let seed = AuditSeed {
            slot: seed.slot,
            hash: seed.hash,
        };
        let sample = AuditSample::at_fixed_slot(
            &seed,
            receipt_slot,
            delay_slots,
            &integrity.merkle_root,
            integrity.leaf_count,
            k,
        )?;
        let v2 = receipt.body.v2.is_some();
        let answers = answers
            .iter()
            // SAFETY: the caller guarantees every answer's pointers are readable.
            .map(|a| unsafe { audit_answer(v2, a) })
            .collect::<Result<Vec<_>, _>>()?;
        let tickets = ticket_status.map(|lookup| TicketCallback { userdata, lookup });
        let mut verifier = Verifier::new(deployment, &NoRegistry, &NoRegistry, &NoRegistry);
        if let Some(t) = &tickets {
            verifier = verifier.with_tickets(t);
        }
        let report = verifier.check_audit(&receipt, &sample, &answers)?;
        // SAFETY: the caller guarantees `out` is writable.
        unsafe { out.write(report.into()) };
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use tolldns_receipts::{LEAF_LEN, LEAF_LEN_V1, RECEIPT_VERSION, RECEIPT_VERSION_V1};

    #[test]
    fn constants_match_the_receipts_crate() {
        assert_eq!(TOLLDNS_LEAF_V2_LEN, LEAF_LEN);
        assert_eq!(crate::receipts::TOLLDNS_LEAF_LEN, LEAF_LEN_V1);
        assert_eq!(TOLLDNS_SKETCH_REGISTERS, SKETCH_REGISTERS);
        assert_eq!(TOLLDNS_MAX_RESPONSE_BYTES, MAX_RESPONSE_BYTES);
        assert_eq!(
            TOLLDNS_DEFAULT_MAX_DELAY_MS,
            Deployment::DEFAULT_MAX_DELAY_MS
        );
        assert_eq!(
            TOLLDNS_DEFAULT_MAX_REPEAT_PERMILLE,
            Deployment::DEFAULT_MAX_REPEAT_PERMILLE
        );
        assert_eq!(TOLLDNS_RECEIPT_VERSION_V2, RECEIPT_VERSION);
        assert_eq!(TOLLDNS_RECEIPT_VERSION_V1, RECEIPT_VERSION_V1);
        assert_eq!(
            TOLLDNS_DEFAULT_SKEW_MS,
            Verifier::<NoRegistry, NoRegistry, NoRegistry>::DEFAULT_SKEW_MS
        );
    }

    #[test]
    fn leaf_struct_round_trips_with_repeat() {
        let leaf = tolldns_leaf_v2 {
            timestamp_ms: 1_760_000_100_000,
            transport: crate::receipts::TOLLDNS_TRANSPORT_DOH,
            qtype: 28,
            rcode_class: crate::receipts::TOLLDNS_RCODE_NOERROR,
            work_class: crate::receipts::TOLLDNS_WORK_CACHE_HIT,
            flags: crate::receipts::TOLLDNS_LEAF_FLAG_CACHE_HIT,
            latency_bucket: 1,
            response_bytes: 300,
            name_hash: [1; 16],
            ticket: [2; 16],
            response_summary_hash: [3; 16],
            repeat: 513,
        };
        let mut bytes = [0u8; TOLLDNS_LEAF_V2_LEN];
        // SAFETY: live locals of the stated sizes.
        let r = unsafe { tolldns_leaf_v2_encode(&leaf, bytes.as_mut_ptr(), bytes.len()) };
        assert_eq!(r, tolldns_result::Ok);
        assert_eq!(Leaf::from_bytes(&bytes).unwrap().repeat, 513);
        let mut back = tolldns_leaf_v2::default();
        // SAFETY: as above.
        let r = unsafe { tolldns_leaf_v2_decode(bytes.as_ptr(), bytes.len(), &mut back) };
        assert_eq!(r, tolldns_result::Ok);
        assert_eq!(back, leaf);
        let big = tolldns_leaf_v2 {
            response_bytes: 65_536,
            ..leaf
        };
        // SAFETY: as above.
        let r = unsafe { tolldns_leaf_v2_encode(&big, bytes.as_mut_ptr(), bytes.len()) };
        assert_eq!(r, tolldns_result::ReceiptResponseTooLarge);
    }

    #[test]
    fn an_answer_needs_both_halves_of_its_neighbour() {
        let leaf = [0u8; TOLLDNS_LEAF_V2_LEN];
        let half = tolldns_audit_answer {
            leaf: leaf.as_ptr(),
            leaf_len: leaf.len(),
            proof: leaf.as_ptr(),
            proof_len: 0,
            next_leaf: leaf.as_ptr(),
            next_leaf_len: leaf.len(),
            next_proof: core::ptr::null(),
            next_proof_len: 0,
        };
        // SAFETY: every non-NULL pointer points to a live local of the stated length.
        let r = unsafe { audit_answer(true, &half) };
        assert_eq!(r.err(), Some(tolldns_result::NullParameter));
        let no_leaf = tolldns_audit_answer {
            leaf: core::ptr::null(),
            leaf_len: 0,
            ..half
        };
        // SAFETY: as above.
        let r = unsafe { audit_answer(true, &no_leaf) };
        assert_eq!(r.err(), Some(tolldns_result::NullParameter));
    }
}
