//! Result codes and their messages.

use core::ffi::c_char;

use tolldns_core::NameError;
use tolldns_receipts::{
    AddError, DecodeError, ProofError, SampleError, SealError, SignatureError, VerifyError,
};
use tolldns_score::ScoreError;
use tolldns_tickets::{KeyError, Refusal};

use crate::boundary::{FfiResult, Out, OutBytes, guard};

/// The result of every fallible function. `TOLLDNS_RESULT_OK` (0) is success.
///
/// The numbers are part of the ABI: they are explicit, append-only and never reused. Ranges:
/// 0–99 calling errors, 100–199 names, 200–299 scores, 300–399 leaf/receipt/proof decoding,
/// 400–499 Merkle proofs, 500–599 receipt verification, 600–699 the batch builder, 700–799
/// audit sampling, 800–899 toll tickets (a token refusal is 800 + its `tolldns-tickets` code).
/// Each range ends with a catch-all (`…_INVALID`, x99) for reasons added to the Rust crates
/// after this header was generated.
///
/// Retired values (none yet) are listed here and stay reserved.
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum tolldns_result {
    /// Success.
    Ok = 0,
    /// A required pointer argument was NULL.
    NullParameter = 1,
    /// The library panicked (a bug); the call had no effect on its outputs. A handle passed to
    /// the call may only be freed afterwards.
    Panic = 2,
    /// An output buffer is too small; nothing was written.
    InsufficientSize = 3,
    /// An argument is malformed: a fixed-size buffer of the wrong length, a misaligned pointer,
    /// or a value out of its range.
    InvalidParameter = 4,

    /// The name is empty or only white space.
    NameEmpty = 100,
    /// The name (or the raw input) is too long.
    NameTooLong = 101,
    /// A label of the name is empty.
    NameEmptyLabel = 102,
    /// A label of the name is longer than 63 octets.
    NameLabelTooLong = 103,
    /// The name contains an octet outside `[a-z0-9_-]` after mapping.
    NameInvalidCharacter = 104,
    /// The name is not UTF-8.
    NameInvalidUtf8 = 105,
    /// The name is not ASCII and this build has no IDNA support.
    NameNonAscii = 106,
    /// UTS #46 processing rejected the name.
    NameIdna = 107,
    /// The name is invalid for a reason this version does not name.
    NameInvalid = 199,

    /// The four `alpha_*_bps` weights do not sum to 10000.
    ScoreInvalidWeights = 201,
    /// `epoch_len_slots` is zero.
    ScoreZeroEpochLength = 202,
    /// `diversity_target` is zero.
    ScoreZeroDiversityTarget = 203,
    /// A sub-score or component is above 10000.
    ScoreOutOfRange = 204,
    /// A basis-point value is above 10000.
    ScoreBpsOutOfRange = 205,
    /// The stake weight is below `min_miner_stake_weight`.
    ScoreInsufficientStake = 206,
    /// A normalized score is larger than the total it is a share of.
    ScoreNormalizedAboveTotal = 207,
    /// The normalized-score and reward arrays differ in length.
    ScoreLengthMismatch = 208,
    /// An intermediate value does not fit its integer type.
    ScoreOverflow = 209,
    /// The score could not be computed for a reason this version does not name.
    ScoreInvalid = 299,

    /// The input ended inside a field.
    ReceiptUnexpectedEnd = 300,
    /// Bytes were left after the value.
    ReceiptTrailingBytes = 301,
    /// A fixed-size value had the wrong length.
    ReceiptWrongLength = 302,
    /// A leaf or receipt version this library does not implement.
    ReceiptUnsupportedVersion = 303,
    /// A tag (transport, rcode class, role, ...) names no value.
    ReceiptUnknownTag = 304,
    /// Reserved leaf flag bits were set.
    ReceiptReservedFlags = 305,
    /// A leaf's size bucket does not match its response size.
    ReceiptInconsistentSizeBucket = 306,
    /// The backend id is not 1 to 32 printable ASCII bytes.
    ReceiptInvalidBackendId = 307,
    /// The window length is zero.
    ReceiptZeroWindowLen = 308,
    /// A class-count list is not in canonical form.
    ReceiptNonCanonicalClassCounts = 309,
    /// An encoded Merkle path is longer than 64 hashes.
    ReceiptPathTooLong = 310,
    /// The bytes were refused for a reason this version does not name.
    ReceiptInvalid = 399,

    /// The leaf index is not below the tree size.
    ProofIndexOutOfRange = 400,
    /// The path has more hashes than the tree's shape allows.
    ProofPathTooLong = 401,
    /// The path has fewer hashes than the tree's shape requires.
    ProofPathTooShort = 402,
    /// The proof is well-formed but leads to another root.
    ProofRootMismatch = 403,
    /// The proof failed for a reason this version does not name.
    ProofInvalid = 499,

    /// The operator is not registered.
    VerifyUnregisteredOperator = 500,
    /// The operator is not staked for the window.
    VerifyOperatorNotStaked = 501,
    /// The operator id is not a usable ed25519 key.
    VerifySignatureInvalidKey = 502,
    /// The signature does not verify strictly.
    VerifySignatureInvalid = 503,

    /// The policy version is not valid for the window.
    VerifyInvalidPolicyVersion = 504,
    /// success_count + error_count > request_count.
    VerifySuccessPlusErrorExceedsRequests = 505,
    /// served_from_cache_count > request_count.
    VerifyCacheExceedsRequests = 506,
    /// The work-class counts do not sum to request_count.
    VerifyWorkClassSumMismatch = 507,
    /// The error-class counts sum past error_count.
    VerifyErrorClassSumExceedsErrors = 508,
    /// A batch receipt's leaf_count differs from request_count.
    VerifyLeafCountMismatch = 509,
    /// A per-request receipt does not cover exactly one request.
    VerifyPerRequestNotSingle = 510,
    /// The window's bounds do not fit 64-bit milliseconds.
    VerifyWindowOutOfRange = 511,
    /// The receipt's timestamp is outside its window and the skew.
    VerifyTimestampOutsideWindow = 512,
    /// A receipt for the same operator, backend and window was already accepted.
    VerifyDuplicateReceipt = 513,
    /// The audit sample was drawn for another root or leaf count.
    VerifySampleNotForReceipt = 514,
    /// The number of proofs differs from the sample size.
    VerifyProofCountMismatch = 515,
    /// A proof is for another leaf index or tree size.
    VerifyProofForWrongLeaf = 516,
    /// A sampled proof does not verify.
    VerifyInvalidProof = 517,
    /// A sampled leaf lies outside the receipt's window.
    VerifyLeafOutsideWindow = 518,
    /// The receipt was refused for a reason this version does not name.
    VerifyInvalid = 599,

    /// The window's leaf buffers are full; the leaf was counted as dropped.
    BatchFull = 600,
    /// The leaf's window was already closed; the leaf was counted as dropped.
    BatchLate = 601,
    /// Too many windows are open at once; the leaf was counted as dropped.
    BatchTooManyWindows = 602,
    /// A leaf's timestamp is not in the batch's window.
    BatchLeafOutsideWindow = 603,
    /// A per-request receipt needs exactly one leaf.
    BatchPerRequestNeedsOneLeaf = 604,
    /// The window's bounds do not fit 64-bit milliseconds.
    BatchWindowOutOfRange = 605,
    /// The response sizes sum past 2^64 - 1.
    BatchTooManyBytes = 606,
    /// Signing the receipt failed.
    BatchSigningFailed = 607,
    /// The batch could not be closed for a reason this version does not name.
    BatchInvalid = 699,

    /// The confidence is not strictly between 0 and 1.
    AuditConfidence = 700,
    /// The fake fraction is not strictly between 0 and 1.
    AuditFakeFraction = 701,
    /// The sample size could not be computed for a reason this version does not name.
    AuditInvalid = 799,

    /// The token does not decode: wrong token type, or a length no supported key gives.
    TicketMalformed = 801,
    /// The token names an issuer key the verifier was not given.
    TicketWrongIssuer = 802,
    /// The token's issuer key is not valid at the given time (retired, or not valid yet).
    TicketExpiredKey = 803,
    /// The token is bound to another challenge (another issuer name or deployment).
    TicketWrongChallenge = 804,
    /// The token's RSA signature does not verify: a forged or corrupted token.
    TicketBadSignature = 805,
    /// The issuer key is not a canonical RSASSA-PSS (SHA-384, 48-byte salt)
    /// SubjectPublicKeyInfo of 2048, 3072 or 4096 bits.
    TicketBadKey = 850,
    /// The token was refused for a reason this version does not name.
    TicketInvalid = 899,
}

impl tolldns_result {
    /// Every defined code, in numeric order.
    pub const ALL: &'static [Self] = &[
        Self::Ok,
        Self::NullParameter,
        Self::Panic,
        Self::InsufficientSize,
        Self::InvalidParameter,
        Self::NameEmpty,
        Self::NameTooLong,
        Self::NameEmptyLabel,
        Self::NameLabelTooLong,
        Self::NameInvalidCharacter,
        Self::NameInvalidUtf8,
        Self::NameNonAscii,
        Self::NameIdna,
        Self::NameInvalid,
        Self::ScoreInvalidWeights,
        Self::ScoreZeroEpochLength,
        Self::ScoreZeroDiversityTarget,
        Self::ScoreOutOfRange,
        Self::ScoreBpsOutOfRange,
        Self::ScoreInsufficientStake,
        Self::ScoreNormalizedAboveTotal,
        Self::ScoreLengthMismatch,
        Self::ScoreOverflow,
        Self::ScoreInvalid,
        Self::ReceiptUnexpectedEnd,
        Self::ReceiptTrailingBytes,
        Self::ReceiptWrongLength,
        Self::ReceiptUnsupportedVersion,
        Self::ReceiptUnknownTag,
        Self::ReceiptReservedFlags,
        Self::ReceiptInconsistentSizeBucket,
        Self::ReceiptInvalidBackendId,
        Self::ReceiptZeroWindowLen,
        Self::ReceiptNonCanonicalClassCounts,
        Self::ReceiptPathTooLong,
        Self::ReceiptInvalid,
        Self::ProofIndexOutOfRange,
        Self::ProofPathTooLong,
        Self::ProofPathTooShort,
        Self::ProofRootMismatch,
        Self::ProofInvalid,
        Self::VerifyUnregisteredOperator,
        Self::VerifyOperatorNotStaked,
        Self::VerifySignatureInvalidKey,
        Self::VerifySignatureInvalid,
        Self::VerifyInvalidPolicyVersion,
        Self::VerifySuccessPlusErrorExceedsRequests,
        Self::VerifyCacheExceedsRequests,
        Self::VerifyWorkClassSumMismatch,
        Self::VerifyErrorClassSumExceedsErrors,
        Self::VerifyLeafCountMismatch,
        Self::VerifyPerRequestNotSingle,
        Self::VerifyWindowOutOfRange,
        Self::VerifyTimestampOutsideWindow,
        Self::VerifyDuplicateReceipt,
        Self::VerifySampleNotForReceipt,
        Self::VerifyProofCountMismatch,
        Self::VerifyProofForWrongLeaf,
        Self::VerifyInvalidProof,
        Self::VerifyLeafOutsideWindow,
        Self::VerifyInvalid,
        Self::BatchFull,
        Self::BatchLate,
        Self::BatchTooManyWindows,
        Self::BatchLeafOutsideWindow,
        Self::BatchPerRequestNeedsOneLeaf,
        Self::BatchWindowOutOfRange,
        Self::BatchTooManyBytes,
        Self::BatchSigningFailed,
        Self::BatchInvalid,
        Self::AuditConfidence,
        Self::AuditFakeFraction,
        Self::AuditInvalid,
        Self::TicketMalformed,
        Self::TicketWrongIssuer,
        Self::TicketExpiredKey,
        Self::TicketWrongChallenge,
        Self::TicketBadSignature,
        Self::TicketBadKey,
        Self::TicketInvalid,
    ];

    /// The code for a number, if it is defined.
    pub fn from_u32(code: u32) -> Option<Self> {
        Self::ALL.iter().copied().find(|r| *r as u32 == code)
    }

    /// A one-line English description, without a trailing period.
    pub const fn message(self) -> &'static str {
        match self {
            Self::Ok => "success",
            Self::NullParameter => "a required pointer argument was NULL",
            Self::Panic => "the library panicked (a bug); the call had no effect",
            Self::InsufficientSize => "an output buffer is too small; nothing was written",
            Self::InvalidParameter => {
                "an argument is malformed (wrong fixed length, misaligned pointer or out-of-range value)"
            }
            Self::NameEmpty => "name is empty",
            Self::NameTooLong => "name is longer than 253 octets",
            Self::NameEmptyLabel => "a label of the name is empty",
            Self::NameLabelTooLong => "a label of the name is longer than 63 octets",
            Self::NameInvalidCharacter => {
                "a name octet is outside a-z, 0-9, '-' and '_' after mapping"
            }
            Self::NameInvalidUtf8 => "name is not valid UTF-8",
            Self::NameNonAscii => "name is not ASCII and this build has no IDNA support",
            Self::NameIdna => "name is not a valid internationalized domain name (UTS #46)",
            Self::NameInvalid => "name is invalid",
            Self::ScoreInvalidWeights => "alpha_*_bps weights must sum to exactly 10000",
            Self::ScoreZeroEpochLength => "epoch_len_slots must not be zero",
            Self::ScoreZeroDiversityTarget => "diversity_target must not be zero",
            Self::ScoreOutOfRange => "a sub-score or component is above 10000",
            Self::ScoreBpsOutOfRange => "a basis-point value is above 10000",
            Self::ScoreInsufficientStake => "stake_weight is below min_miner_stake_weight",
            Self::ScoreNormalizedAboveTotal => {
                "a normalized score is above the total normalized score"
            }
            Self::ScoreLengthMismatch => "the normalized-score and reward arrays differ in length",
            Self::ScoreOverflow => "arithmetic overflow in score computation",
            Self::ScoreInvalid => "the score could not be computed",
            Self::ReceiptUnexpectedEnd => "the input ended inside a field",
            Self::ReceiptTrailingBytes => "bytes were left after the value",
            Self::ReceiptWrongLength => "a fixed-size value has the wrong length",
            Self::ReceiptUnsupportedVersion => "unsupported leaf or receipt version",
            Self::ReceiptUnknownTag => "a tag names no value of its enum",
            Self::ReceiptReservedFlags => "reserved leaf flag bits are set",
            Self::ReceiptInconsistentSizeBucket => {
                "leaf size bucket does not match its response_bytes"
            }
            Self::ReceiptInvalidBackendId => "backend id is not 1 to 32 printable ASCII bytes",
            Self::ReceiptZeroWindowLen => "window_len_s is zero",
            Self::ReceiptNonCanonicalClassCounts => "a class-count list is not canonical",
            Self::ReceiptPathTooLong => "encoded Merkle path is longer than 64 hashes",
            Self::ReceiptInvalid => "the bytes are not a valid leaf, receipt or proof",
            Self::ProofIndexOutOfRange => "leaf index is outside the tree",
            Self::ProofPathTooLong => "audit path is too long for the tree size",
            Self::ProofPathTooShort => "audit path is too short for the tree size",
            Self::ProofRootMismatch => "audit path does not lead to the root",
            Self::ProofInvalid => "the inclusion proof is invalid",
            Self::VerifyUnregisteredOperator => "operator is not registered",
            Self::VerifyOperatorNotStaked => "operator is not staked for the window",
            Self::VerifySignatureInvalidKey => {
                "operator_id is not a valid ed25519 key of large order"
            }
            Self::VerifySignatureInvalid => "receipt signature does not verify",
            Self::VerifyInvalidPolicyVersion => "policy version is not valid for the window",
            Self::VerifySuccessPlusErrorExceedsRequests => {
                "success_count + error_count exceeds request_count"
            }
            Self::VerifyCacheExceedsRequests => "served_from_cache_count exceeds request_count",
            Self::VerifyWorkClassSumMismatch => "work-class counts do not sum to request_count",
            Self::VerifyErrorClassSumExceedsErrors => "error-class counts exceed error_count",
            Self::VerifyLeafCountMismatch => "leaf_count differs from request_count",
            Self::VerifyPerRequestNotSingle => {
                "a per-request receipt must cover exactly one request"
            }
            Self::VerifyWindowOutOfRange => "window bounds do not fit in 64 bits",
            Self::VerifyTimestampOutsideWindow => "receipt timestamp is outside its window",
            Self::VerifyDuplicateReceipt => {
                "duplicate receipt for this operator, backend and window"
            }
            Self::VerifySampleNotForReceipt => "audit sample was drawn for another receipt",
            Self::VerifyProofCountMismatch => "number of proofs differs from the sample size",
            Self::VerifyProofForWrongLeaf => "a proof is for another leaf",
            Self::VerifyInvalidProof => "a sampled proof does not verify",
            Self::VerifyLeafOutsideWindow => "a sampled leaf lies outside the window",
            Self::VerifyInvalid => "the receipt is invalid",
            Self::BatchFull => "the window's leaf buffers are full",
            Self::BatchLate => "the leaf's window is already closed",
            Self::BatchTooManyWindows => "too many receipt windows are open",
            Self::BatchLeafOutsideWindow => "a leaf lies outside the batch window",
            Self::BatchPerRequestNeedsOneLeaf => "a per-request receipt needs exactly one leaf",
            Self::BatchWindowOutOfRange => "window bounds do not fit in 64 bits",
            Self::BatchTooManyBytes => "response sizes overflow 64 bits",
            Self::BatchSigningFailed => "signing the receipt failed",
            Self::BatchInvalid => "the batch could not be closed",
            Self::AuditConfidence => "confidence must be strictly between 0 and 1",
            Self::AuditFakeFraction => "fake_fraction must be strictly between 0 and 1",
            Self::AuditInvalid => "the audit sample size could not be computed",
            Self::TicketMalformed => "token does not decode (wrong token type or length)",
            Self::TicketWrongIssuer => "token is from an issuer key the verifier does not accept",
            Self::TicketExpiredKey => "token's issuer key is not valid at this time",
            Self::TicketWrongChallenge => "token is bound to another issuer or deployment",
            Self::TicketBadSignature => "token signature does not verify",
            Self::TicketBadKey => {
                "issuer key is not a canonical RSASSA-PSS SHA-384 SPKI of 2048, 3072 or 4096 bits"
            }
            Self::TicketInvalid => "the token was refused",
        }
    }
}

impl From<NameError> for tolldns_result {
    fn from(e: NameError) -> Self {
        match e {
            NameError::Empty => Self::NameEmpty,
            NameError::TooLong { .. } => Self::NameTooLong,
            NameError::EmptyLabel { .. } => Self::NameEmptyLabel,
            NameError::LabelTooLong { .. } => Self::NameLabelTooLong,
            NameError::InvalidCharacter { .. } => Self::NameInvalidCharacter,
            NameError::InvalidUtf8 => Self::NameInvalidUtf8,
            NameError::NonAscii => Self::NameNonAscii,
            NameError::Idna => Self::NameIdna,
            _ => Self::NameInvalid,
        }
    }
}

impl From<ScoreError> for tolldns_result {
    fn from(e: ScoreError) -> Self {
        match e {
            ScoreError::InvalidWeights { .. } => Self::ScoreInvalidWeights,
            ScoreError::ZeroEpochLength => Self::ScoreZeroEpochLength,
            ScoreError::ZeroDiversityTarget => Self::ScoreZeroDiversityTarget,
            ScoreError::ScoreOutOfRange { .. } => Self::ScoreOutOfRange,
            ScoreError::BpsOutOfRange { .. } => Self::ScoreBpsOutOfRange,
            ScoreError::InsufficientStake { .. } => Self::ScoreInsufficientStake,
            ScoreError::NormalizedAboveTotal { .. } => Self::ScoreNormalizedAboveTotal,
            ScoreError::LengthMismatch { .. } => Self::ScoreLengthMismatch,
            ScoreError::Overflow => Self::ScoreOverflow,
            _ => Self::ScoreInvalid,
        }
    }
}

impl From<DecodeError> for tolldns_result {
    fn from(e: DecodeError) -> Self {
        match e {
            DecodeError::UnexpectedEnd { .. } => Self::ReceiptUnexpectedEnd,
            DecodeError::TrailingBytes { .. } => Self::ReceiptTrailingBytes,
            DecodeError::WrongLength { .. } => Self::ReceiptWrongLength,
            DecodeError::UnsupportedVersion { .. } => Self::ReceiptUnsupportedVersion,
            DecodeError::UnknownTag { .. } => Self::ReceiptUnknownTag,
            DecodeError::ReservedFlags { .. } => Self::ReceiptReservedFlags,
            DecodeError::InconsistentSizeBucket => Self::ReceiptInconsistentSizeBucket,
            DecodeError::InvalidBackendId(_) => Self::ReceiptInvalidBackendId,
            DecodeError::ZeroWindowLen => Self::ReceiptZeroWindowLen,
            DecodeError::NonCanonicalClassCounts { .. } => Self::ReceiptNonCanonicalClassCounts,
            DecodeError::PathTooLong { .. } => Self::ReceiptPathTooLong,
            _ => Self::ReceiptInvalid,
        }
    }
}

impl From<ProofError> for tolldns_result {
    fn from(e: ProofError) -> Self {
        match e {
            ProofError::IndexOutOfRange { .. } => Self::ProofIndexOutOfRange,
            ProofError::PathTooLong => Self::ProofPathTooLong,
            ProofError::PathTooShort => Self::ProofPathTooShort,
            ProofError::RootMismatch => Self::ProofRootMismatch,
            _ => Self::ProofInvalid,
        }
    }
}

impl From<SignatureError> for tolldns_result {
    fn from(e: SignatureError) -> Self {
        match e {
            SignatureError::InvalidKey => Self::VerifySignatureInvalidKey,
            SignatureError::Invalid => Self::VerifySignatureInvalid,
            // Only signing reports a key mismatch.
            SignatureError::KeyMismatch => Self::BatchSigningFailed,
            _ => Self::VerifyInvalid,
        }
    }
}

impl From<VerifyError> for tolldns_result {
    fn from(e: VerifyError) -> Self {
        match e {
            VerifyError::UnregisteredOperator => Self::VerifyUnregisteredOperator,
            VerifyError::OperatorNotStaked => Self::VerifyOperatorNotStaked,
            VerifyError::Signature(e) => e.into(),
            VerifyError::InvalidPolicyVersion { .. } => Self::VerifyInvalidPolicyVersion,
            VerifyError::SuccessPlusErrorExceedsRequests => {
                Self::VerifySuccessPlusErrorExceedsRequests
            }
            VerifyError::CacheExceedsRequests => Self::VerifyCacheExceedsRequests,
            VerifyError::WorkClassSumMismatch => Self::VerifyWorkClassSumMismatch,
            VerifyError::ErrorClassSumExceedsErrors => Self::VerifyErrorClassSumExceedsErrors,
            VerifyError::LeafCountMismatch => Self::VerifyLeafCountMismatch,
            VerifyError::PerRequestNotSingle => Self::VerifyPerRequestNotSingle,
            VerifyError::WindowOutOfRange => Self::VerifyWindowOutOfRange,
            VerifyError::TimestampOutsideWindow { .. } => Self::VerifyTimestampOutsideWindow,
            VerifyError::DuplicateReceipt => Self::VerifyDuplicateReceipt,
            VerifyError::SampleNotForReceipt => Self::VerifySampleNotForReceipt,
            VerifyError::ProofCountMismatch { .. } => Self::VerifyProofCountMismatch,
            VerifyError::ProofForWrongLeaf { .. } => Self::VerifyProofForWrongLeaf,
            VerifyError::InvalidProof { .. } => Self::VerifyInvalidProof,
            VerifyError::LeafOutsideWindow { .. } => Self::VerifyLeafOutsideWindow,
            _ => Self::VerifyInvalid,
        }
    }
}

impl From<AddError> for tolldns_result {
    fn from(e: AddError) -> Self {
        match e {
            AddError::Full => Self::BatchFull,
            AddError::Late => Self::BatchLate,
            AddError::TooManyWindows => Self::BatchTooManyWindows,
            AddError::Invalid(e) => e.into(),
            _ => Self::BatchInvalid,
        }
    }
}

impl From<SealError> for tolldns_result {
    fn from(e: SealError) -> Self {
        match e {
            SealError::LeafOutsideWindow { .. } => Self::BatchLeafOutsideWindow,
            SealError::PerRequestNeedsOneLeaf => Self::BatchPerRequestNeedsOneLeaf,
            SealError::WindowOutOfRange => Self::BatchWindowOutOfRange,
            SealError::TooManyBytes => Self::BatchTooManyBytes,
            SealError::Signature(_) => Self::BatchSigningFailed,
            _ => Self::BatchInvalid,
        }
    }
}

impl From<SampleError> for tolldns_result {
    fn from(e: SampleError) -> Self {
        match e {
            SampleError::Confidence => Self::AuditConfidence,
            SampleError::FakeFraction => Self::AuditFakeFraction,
            _ => Self::AuditInvalid,
        }
    }
}

impl From<Refusal> for tolldns_result {
    fn from(r: Refusal) -> Self {
        match r {
            Refusal::Malformed => Self::TicketMalformed,
            Refusal::WrongIssuer => Self::TicketWrongIssuer,
            Refusal::ExpiredKey => Self::TicketExpiredKey,
            Refusal::WrongChallenge => Self::TicketWrongChallenge,
            Refusal::BadSignature => Self::TicketBadSignature,
            // Redemption-side reasons (replay, sessions, quotas) are not produced by token
            // verification; they would get codes of their own if a redeemer crossed the ABI.
            _ => Self::TicketInvalid,
        }
    }
}

impl From<KeyError> for tolldns_result {
    /// The ABI only reads issuer public keys, so every key error (not a canonical PSS SPKI, an
    /// unsupported modulus, or the RSA library refusing it) is a bad key.
    fn from(_: KeyError) -> Self {
        Self::TicketBadKey
    }
}

/// The longest message [`tolldns_result_message`] writes, including its terminating NUL. A
/// buffer of this size is always large enough.
pub const TOLLDNS_RESULT_MESSAGE_MAX_LEN: usize = 128;

/// Writes a NUL-terminated English description of `code` to `buf`.
///
/// `*out_n` receives the length of the message without its NUL. An undefined code gets the
/// message `"unknown result code"` (and `TOLLDNS_RESULT_OK` is still returned), so that callers
/// can log codes from a newer library.
///
/// # Errors
///
/// `TOLLDNS_RESULT_NULL_PARAMETER` if `buf` or `out_n` is NULL;
/// `TOLLDNS_RESULT_INSUFFICIENT_SIZE` if `len` cannot hold the message and its NUL
/// (`TOLLDNS_RESULT_MESSAGE_MAX_LEN` always can).
///
/// # Safety
///
/// `buf` must be valid for writes of `len` bytes; `out_n` must be valid for a write of a
/// `size_t`. Thread-safe.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tolldns_result_message(
    code: u32,
    buf: *mut c_char,
    len: usize,
    out_n: *mut usize,
) -> tolldns_result {
    guard(|| -> FfiResult {
        if buf.is_null() {
            return Err(tolldns_result::NullParameter);
        }
        let out = OutBytes::new(buf.cast(), len)?;
        let out_n = Out::new(out_n)?;
        let message = tolldns_result::from_u32(code).map_or("unknown result code", |r| r.message());
        let n = message.len();
        let mut bytes = Vec::with_capacity(n.saturating_add(1));
        bytes.extend_from_slice(message.as_bytes());
        bytes.push(0);
        // SAFETY: the caller guarantees `buf` is writable for `len` bytes; `bytes` is ours.
        unsafe { out.write(&bytes) }?;
        // SAFETY: the caller guarantees `out_n` is writable.
        unsafe { out_n.write(n) };
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn codes_are_unique_sorted_and_described() {
        let mut seen = HashSet::new();
        let mut last = None;
        for &r in tolldns_result::ALL {
            let n = r as u32;
            assert!(seen.insert(n), "duplicate code {n}");
            assert!(last.is_none_or(|l| l < n), "ALL is not sorted at {n}");
            last = Some(n);
            assert_eq!(tolldns_result::from_u32(n), Some(r));
            assert!(r.message().len() < TOLLDNS_RESULT_MESSAGE_MAX_LEN);
        }
        assert_eq!(tolldns_result::from_u32(98), None);
    }

    #[test]
    fn score_codes_follow_the_score_crate() {
        // tolldns-score numbers its errors 1..; ours are 200 + that number.
        let errors = [
            ScoreError::InvalidWeights { sum: 1 },
            ScoreError::ZeroEpochLength,
            ScoreError::ZeroDiversityTarget,
            ScoreError::Overflow,
            ScoreError::LengthMismatch {
                normalized: 1,
                out: 2,
            },
        ];
        for e in errors {
            assert_eq!(tolldns_result::from(e) as u32, 200 + e.code());
        }
    }

    #[test]
    fn ticket_codes_follow_the_refusal_codes() {
        // Token-verification refusals are 800 + `Refusal::code()`, like the score codes.
        for r in [
            Refusal::Malformed,
            Refusal::WrongIssuer,
            Refusal::ExpiredKey,
            Refusal::WrongChallenge,
            Refusal::BadSignature,
        ] {
            assert_eq!(tolldns_result::from(r) as u32, 800 + u32::from(r.code()));
        }
        assert_eq!(
            tolldns_result::from(Refusal::Replayed),
            tolldns_result::TicketInvalid
        );
        assert_eq!(
            tolldns_result::from(KeyError::BadPublicKey),
            tolldns_result::TicketBadKey
        );
        assert_eq!(
            tolldns_result::from(KeyError::UnsupportedSize(1024)),
            tolldns_result::TicketBadKey
        );
    }

    #[test]
    fn message_is_written_only_when_it_fits() {
        let mut buf = [0x55 as c_char; TOLLDNS_RESULT_MESSAGE_MAX_LEN];
        let mut n = 999usize;
        // SAFETY: live local buffers of the stated sizes.
        let r = unsafe { tolldns_result_message(0, buf.as_mut_ptr(), 3, &mut n) };
        assert_eq!(r, tolldns_result::InsufficientSize);
        assert_eq!((buf[0], n), (0x55, 999));
        // SAFETY: as above.
        let r = unsafe { tolldns_result_message(1, buf.as_mut_ptr(), buf.len(), &mut n) };
        assert_eq!(r, tolldns_result::Ok);
        // SAFETY: the call above wrote a NUL-terminated string.
        let s = unsafe { core::ffi::CStr::from_ptr(buf.as_ptr()) };
        assert_eq!(s.to_str().unwrap(), tolldns_result::NullParameter.message());
        assert_eq!(n, s.to_bytes().len());
        // SAFETY: as above.
        let r = unsafe { tolldns_result_message(12345, buf.as_mut_ptr(), buf.len(), &mut n) };
        assert_eq!(r, tolldns_result::Ok);
        assert_eq!(n, "unknown result code".len());
        // SAFETY: NULL pointers are rejected before any access.
        let r = unsafe { tolldns_result_message(0, core::ptr::null_mut(), 0, &mut n) };
        assert_eq!(r, tolldns_result::NullParameter);
    }
}
