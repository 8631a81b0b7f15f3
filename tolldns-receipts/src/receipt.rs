//! Receipt bodies, signed receipts, their canonical Borsh encoding and ed25519 signatures.

use alloc::vec::Vec;
use core::fmt;

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use tolldns_core::hash::{RECEIPT_SIGNING_TAG, RECEIPT_SIGNING_TAG_V2};
use tolldns_core::{
    BackendId, BackendIdError, DeploymentId, OperatorId, Role, WindowId, WindowLen,
};

use crate::codec::{DecodeError, Reader, Writer};
use crate::leaf::decode_tag;
use crate::merkle::Hash;
use crate::sketch::{NameSketch, SKETCH_REGISTERS};
use crate::tags::{ErrorClass, LatencyBucket, ReceiptType, SizeBucket, WireTag, WorkClass};

/// The receipt format this crate writes.
pub const RECEIPT_VERSION: u8 = 2;
/// The first receipt format: still decoded and verified, no longer written.
pub const RECEIPT_VERSION_V1: u8 = 1;
/// Length of an ed25519 signature.
pub const SIGNATURE_LEN: usize = 64;

/// Counts per class (error classes or work classes), kept canonical: classes in ascending tag
/// order, each at most once, no zero count. Borsh: `Vec<(u8, u64)>`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ClassCounts<C> {
    entries: Vec<(C, u64)>,
}

impl<C: WireTag> Default for ClassCounts<C> {
    fn default() -> Self {
        Self::new()
    }
}

impl<C: WireTag> ClassCounts<C> {
    /// No counts.
    pub const fn new() -> Self {
        Self {
            entries: Vec::new(),
        }
    }

    /// Counts from `(class, count)` pairs in any order; zero counts are dropped.
    ///
    /// # Errors
    ///
    /// [`DecodeError::NonCanonicalClassCounts`] when a class appears twice.
    pub fn from_pairs(pairs: impl IntoIterator<Item = (C, u64)>) -> Result<Self, DecodeError> {
        let mut entries: Vec<(C, u64)> = pairs.into_iter().filter(|(_, n)| *n != 0).collect();
        entries.sort_unstable_by_key(|(c, _)| *c);
        if entries
            .windows(2)
            .any(|w| matches!(w, [a, b] if a.0 == b.0))
        {
            return Err(DecodeError::NonCanonicalClassCounts { field: C::FIELD });
        }
        Ok(Self { entries })
    }

    /// The count of one class (zero when absent).
    pub fn get(&self, class: C) -> u64 {
        self.entries
            .iter()
            .find(|(c, _)| *c == class)
            .map_or(0, |(_, n)| *n)
    }

    /// The non-zero counts, in tag order.
    pub fn entries(&self) -> &[(C, u64)] {
        &self.entries
    }

    /// Whether no class has a count.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The sum of all counts (cannot overflow a `u128`).
    pub fn total(&self) -> u128 {
        self.entries
            .iter()
            .fold(0u128, |acc, (_, n)| acc.saturating_add(u128::from(*n)))
    }

    fn encode(&self, w: &mut Writer) {
        w.len_prefix(self.entries.len());
        for (c, n) in &self.entries {
            w.u8(c.tag());
            w.u64(*n);
        }
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let field = C::FIELD;
        let len = r.u32(field)?;
        let n = usize::try_from(len).unwrap_or(usize::MAX);
        if n > C::ALL.len() {
            return Err(DecodeError::NonCanonicalClassCounts { field });
        }
        let mut entries: Vec<(C, u64)> = Vec::with_capacity(n);
        for _ in 0..n {
            let class = decode_tag::<C>(r.u8(field)?)?;
            let count = r.u64(field)?;
            let ascending = entries.last().is_none_or(|(prev, _)| *prev < class);
            if count == 0 || !ascending {
                return Err(DecodeError::NonCanonicalClassCounts { field });
            }
            entries.push((class, count));
        }
        Ok(Self { entries })
    }
}

/// What an operator served in a window (the seed's `service_summary`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ServiceSummary {
    /// Requests answered.
    pub request_count: u64,
    /// Requests answered successfully (`NOERROR` with data).
    pub success_count: u64,
    /// Requests answered with an error class.
    pub error_count: u64,
    /// Sum of response sizes in bytes.
    pub bytes_served_total: u64,
    /// Requests answered from cache.
    pub served_from_cache_count: u64,
    /// The smallest latency bucket holding at least 95 % of the requests.
    pub latency_p95_bucket: LatencyBucket,
    /// The smallest size bucket holding at least 95 % of the responses.
    pub response_size_p95_bucket: SizeBucket,
    /// Requests per error class.
    pub error_class_counts: ClassCounts<ErrorClass>,
    /// Requests per work class (empty when not reported).
    pub work_class_counts: ClassCounts<WorkClass>,
}

/// What a receipt commits to (the seed's `integrity`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Integrity {
    /// Number of leaves under `merkle_root`.
    pub leaf_count: u64,
    /// RFC 6962 root over the leaves.
    pub merkle_root: Hash,
    /// `SHA256("TOLLDNS-NAMEKEY-V1" || name_key)` of the epoch's name key.
    pub name_key_commitment: Hash,
}

/// What a v2 receipt commits to beyond v1.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct V2Commitments {
    /// The network the receipt is for ([`DeploymentId::derive`]); first in the signed bytes.
    pub deployment_id: DeploymentId,
    /// Leaves with a non-zero ticket.
    pub ticketed_leaf_count: u64,
    /// Ticketed leaves with a non-zero `repeat` (identical to the leaf before them but for
    /// `repeat`: the same answer under the same ticket in the same millisecond).
    pub ticketed_repeat_count: u64,
    /// Distinct-name sketch over the ticketed leaves' name hashes.
    pub name_sketch: NameSketch,
}

impl V2Commitments {
    /// The distinct ticketed names the score may count: the sketch's estimate, capped at
    /// `ticketed_leaf_count` (an operator chooses its leaves' name hashes, so registers can
    /// be set high with few leaves; a window cannot have more distinct ticketed names than
    /// ticketed leaves).
    pub fn distinct_names(&self) -> u64 {
        self.name_sketch.estimate().min(self.ticketed_leaf_count)
    }
}

/// The signed part of a receipt. Its Borsh encoding ([`ReceiptBody::to_bytes`]) is canonical.
///
/// `v2` is `Some` for a v2 receipt (what this crate writes) and `None` for a v1 receipt.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ReceiptBody {
    /// Batch or per-request.
    pub receipt_type: ReceiptType,
    /// The operator's receipt-signing key; the signature must verify under it.
    pub operator_id: OperatorId,
    /// The operator's role.
    pub operator_role: Role,
    /// The adapter context (`edge-ingress` for pure edge ingress).
    pub backend_id: BackendId,
    /// The policy version the operator served under.
    pub policy_version: u32,
    /// Length of the receipt window.
    pub window_len: WindowLen,
    /// The receipt window: `floor(unix_s / window_len_s)`.
    pub window_id: WindowId,
    /// When the receipt was made, in Unix milliseconds; inside the window ± the verifier's skew.
    pub timestamp_ms: u64,
    /// The counts.
    pub service_summary: ServiceSummary,
    /// Root, leaf count and name-key commitment.
    pub integrity: Integrity,
    /// The v2 commitments; `None` for a v1 receipt.
    pub v2: Option<V2Commitments>,
}

impl ReceiptBody {
    /// The format version: 2 when [`ReceiptBody::v2`] is set, else 1.
    pub const fn version(&self) -> u8 {
        if self.v2.is_some() {
            RECEIPT_VERSION
        } else {
            RECEIPT_VERSION_V1
        }
    }

    /// The canonical Borsh encoding.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut w = Writer::with_capacity(256);
        self.encode(&mut w);
        w.buf
    }

    fn encode(&self, w: &mut Writer) {
        let s = &self.service_summary;
        w.u8(self.version());
        if let Some(v2) = &self.v2 {
            w.bytes(v2.deployment_id.as_bytes());
        }
        w.u8(self.receipt_type.tag());
        w.bytes(self.operator_id.as_bytes());
        w.u8(self.operator_role.tag());
        w.len_prefix(self.backend_id.as_bytes().len());
        w.bytes(self.backend_id.as_bytes());
        w.u32(self.policy_version);
        w.u32(self.window_len.secs());
        w.u64(self.window_id.get());
        w.u64(self.timestamp_ms);
        w.u64(s.request_count);
        w.u64(s.success_count);
        w.u64(s.error_count);
        w.u64(s.bytes_served_total);
        w.u64(s.served_from_cache_count);
        w.u8(s.latency_p95_bucket.tag());
        w.u8(s.response_size_p95_bucket.tag());
        s.error_class_counts.encode(w);
        s.work_class_counts.encode(w);
        w.u64(self.integrity.leaf_count);
        w.bytes(&self.integrity.merkle_root);
        w.bytes(&self.integrity.name_key_commitment);
        if let Some(v2) = &self.v2 {
            w.u64(v2.ticketed_leaf_count);
            w.u64(v2.ticketed_repeat_count);
            w.bytes(v2.name_sketch.registers());
        }
    }

    /// Decode the canonical Borsh encoding.
    ///
    /// # Errors
    ///
    /// The [`DecodeError`] of the first field that is not valid, or
    /// [`DecodeError::TrailingBytes`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes);
        let body = Self::decode(&mut r)?;
        r.finish()?;
        Ok(body)
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let version = r.u8("receipt_version")?;
        if version != RECEIPT_VERSION && version != RECEIPT_VERSION_V1 {
            return Err(DecodeError::UnsupportedVersion {
                field: "receipt_version",
                version,
            });
        }
        let deployment_id = if version == RECEIPT_VERSION {
            Some(DeploymentId(r.array("deployment_id")?))
        } else {
            None
        };
        let receipt_type = decode_tag::<ReceiptType>(r.u8("receipt_type")?)?;
        let operator_id = OperatorId(r.array("operator_id")?);
        let role_tag = r.u8("operator_role")?;
        let operator_role = Role::from_tag(role_tag).map_err(|_| DecodeError::UnknownTag {
            field: "operator_role",
            tag: role_tag,
        })?;
        let backend_len = usize::try_from(r.u32("backend_id")?).unwrap_or(usize::MAX);
        if backend_len > BackendId::MAX_LEN {
            return Err(DecodeError::InvalidBackendId(BackendIdError::TooLong {
                len: backend_len,
            }));
        }
        let backend_id = BackendId::from_bytes(r.slice(backend_len, "backend_id")?)
            .map_err(DecodeError::InvalidBackendId)?;
        let policy_version = r.u32("policy_version")?;
        let window_len =
            WindowLen::new(r.u32("window_len_s")?).map_err(|_| DecodeError::ZeroWindowLen)?;
        let window_id = WindowId(r.u64("window_id")?);
        let timestamp_ms = r.u64("timestamp_ms")?;
        let service_summary = ServiceSummary {
            request_count: r.u64("request_count")?,
            success_count: r.u64("success_count")?,
            error_count: r.u64("error_count")?,
            bytes_served_total: r.u64("bytes_served_total")?,
            served_from_cache_count: r.u64("served_from_cache_count")?,
            latency_p95_bucket: decode_tag::<LatencyBucket>(r.u8("latency_p95_bucket_ms")?)?,
            response_size_p95_bucket: decode_tag::<SizeBucket>(
                r.u8("response_size_p95_bucket_bytes")?,
            )?,
            error_class_counts: ClassCounts::decode(r)?,
            work_class_counts: ClassCounts::decode(r)?,
        };
        let integrity = Integrity {
            leaf_count: r.u64("leaf_count")?,
            merkle_root: r.array("merkle_root")?,
            name_key_commitment: r.array("name_key_commitment")?,
        };
        let v2 = match deployment_id {
            Some(deployment_id) => Some(V2Commitments {
                deployment_id,
                ticketed_leaf_count: r.u64("ticketed_leaf_count")?,
                ticketed_repeat_count: r.u64("ticketed_repeat_count")?,
                name_sketch: NameSketch::from_bytes(r.array::<SKETCH_REGISTERS>("name_sketch")?)?,
            }),
            None => None,
        };
        Ok(Self {
            receipt_type,
            operator_id,
            operator_role,
            backend_id,
            policy_version,
            window_len,
            window_id,
            timestamp_ms,
            service_summary,
            integrity,
            v2,
        })
    }

    /// The message an operator signs: `"TOLLDNS-RECEIPT-V2\0" || to_bytes()` for v2,
    /// `"TOLLDNS-RECEIPT-V1\0" || to_bytes()` for v1.
    pub fn signing_message(&self) -> Vec<u8> {
        let mut w = Writer::with_capacity(600);
        w.bytes(if self.v2.is_some() {
            RECEIPT_SIGNING_TAG_V2
        } else {
            RECEIPT_SIGNING_TAG
        });
        self.encode(&mut w);
        w.buf
    }

    /// Sign the body with the operator's receipt-signing key.
    ///
    /// # Errors
    ///
    /// [`SignatureError::KeyMismatch`] when the key's public half is not `operator_id`.
    pub fn sign(self, key: &SigningKey) -> Result<Receipt, SignatureError> {
        if key.verifying_key().to_bytes() != self.operator_id.to_bytes() {
            return Err(SignatureError::KeyMismatch);
        }
        let signature = key.sign(&self.signing_message()).to_bytes();
        Ok(Receipt {
            body: self,
            signature,
        })
    }
}

/// A signed receipt: a [`ReceiptBody`] and the operator's ed25519 signature over
/// [`ReceiptBody::signing_message`] (`"TOLLDNS-RECEIPT-V2\0" || borsh(body)` for v2,
/// `"TOLLDNS-RECEIPT-V1\0" || borsh(body)` for v1). A *batch receipt* is a `Receipt` whose
/// `body.receipt_type` is [`ReceiptType::Batch`].
///
/// Borsh: `borsh(body) || signature[64]`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Receipt {
    /// What is signed.
    pub body: ReceiptBody,
    /// ed25519 signature (`R || S`).
    pub signature: [u8; SIGNATURE_LEN],
}

impl Receipt {
    /// The canonical encoding: `borsh(body) || signature`.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut w = Writer::with_capacity(640);
        self.body.encode(&mut w);
        w.bytes(&self.signature);
        w.buf
    }

    /// Decode the canonical encoding. This does not check the signature.
    ///
    /// # Errors
    ///
    /// As [`ReceiptBody::from_bytes`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes);
        let body = ReceiptBody::decode(&mut r)?;
        let signature = r.array("signature")?;
        r.finish()?;
        Ok(Self { body, signature })
    }

    /// Strict ed25519 verification (RFC 8032 with the stricter checks of
    /// `ed25519-dalek`'s `verify_strict`): the key must be the canonical encoding of a curve
    /// point that is not of small order, `S` must be canonical (`S < L`), `R` must not be of
    /// small order.
    ///
    /// # Errors
    ///
    /// [`SignatureError::InvalidKey`] or [`SignatureError::Invalid`].
    pub fn verify_signature(&self) -> Result<(), SignatureError> {
        let key = VerifyingKey::from_bytes(self.body.operator_id.as_bytes())
            .map_err(|_| SignatureError::InvalidKey)?;
        // Small-order keys, and non-canonical encodings of a point (y >= p), are refused so
        // that one key has exactly one operator id.
        if key.is_weak()
            || key.to_edwards().compress().to_bytes() != self.body.operator_id.to_bytes()
        {
            return Err(SignatureError::InvalidKey);
        }
        let sig = Signature::from_bytes(&self.signature);
        key.verify_strict(&self.body.signing_message(), &sig)
            .map_err(|_| SignatureError::Invalid)
    }
}

/// Why signing or signature verification failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SignatureError {
    /// The signing key does not belong to the body's `operator_id`.
    KeyMismatch,
    /// `operator_id` is not a usable ed25519 key (not a point, a non-canonical encoding, or of
    /// small order).
    InvalidKey,
    /// The signature does not verify strictly.
    Invalid,
}

impl fmt::Display for SignatureError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::KeyMismatch => "signing key does not match the receipt's operator_id",
            Self::InvalidKey => "operator_id is not a valid ed25519 key of large order",
            Self::Invalid => "receipt signature does not verify",
        })
    }
}

impl core::error::Error for SignatureError {}
