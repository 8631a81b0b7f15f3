//! Result codes and their messages.

use core::ffi::{CStr, c_char};

use tolldns_core::NameError;
use tolldns_receipts::{
    AddError, DecodeError, ProofError, SampleError, SealError, SignatureError, SummaryStat,
    VerifyError,
};
use tolldns_score::ScoreError;
use tolldns_tickets::{KeyError, Refusal};

use crate::boundary::{FfiResult, Out, OutBytes, guard};

/// The result of every fallible function. `TOLLDNS_RESULT_OK` (0) is success.
///
/// The numbers are part of the ABI: they are explicit, append-only and never reused. Ranges:
/// 0–99 calling errors, 100–199 names, 200–299 scores, 300–399 leaf/receipt/proof decoding,
/// 400–499 Merkle proofs (399 + the `ProofError` code), 500–599 receipt verification by
/// `tolldns_receipt_verify` (the first API; frozen), 600–699 the batch builder, 700–799 audit
/// sampling, 800–899 toll tickets (a token refusal is 800 + its `tolldns-tickets` code),
/// 900–999 receipt verification rules of the v2 API (`tolldns_receipt_verify_v2`,
/// `tolldns_receipt_audit_v2`): 900 + the rule's stable `VerifyError` code (1–45 today), whose
/// stable name `tolldns_verify_error_name` returns.
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
    /// A v2 leaf's response size is above 65535 bytes (no DNS message is larger).
    ReceiptResponseTooLarge = 311,
    /// A v2 receipt's name sketch has a register above the largest possible rank.
    ReceiptSketchRegisterOutOfRange = 312,
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
    /// A leaf's response size is above 65535 bytes (refused by v2 receipts).
    BatchResponseTooLarge = 608,
    /// More than 65536 identical leaves in one millisecond (a v2 leaf's `repeat` is 16 bits).
    BatchRepeatOverflow = 609,
    /// The batch could not be closed for a reason this version does not name.
    BatchInvalid = 699,

    /// The confidence is not strictly between 0 and 1.
    AuditConfidence = 700,
    /// The fake fraction is not strictly between 0 and 1.
    AuditFakeFraction = 701,
    /// The audit seed's slot is not later than the slot at which the receipt was recorded.
    AuditSeedNotAfterReceipt = 702,
    /// The audit seed's slot is not the receipt's slot plus the verifier's fixed delay.
    AuditSeedSlotNotFixed = 703,
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

    /// The signing key is not a registered operator (or delegate) for the role.
    RuleUnregisteredOperator = 901,
    /// The operator is registered but not staked for the window's epoch.
    RuleOperatorNotStaked = 902,
    /// The signature does not verify strictly under `operator_id` (or the key is unusable).
    RuleSignature = 903,
    /// v2: the receipt's deployment id is not the verifier's.
    RuleWrongDeployment = 904,
    /// v2: `window_len_s` is not the deployment's window length.
    RuleWindowLenNotDeployment = 905,
    /// v2: `backend_id` is not registered to the operator.
    RuleUnregisteredBackend = 906,
    /// The policy version was not valid for the window.
    RuleInvalidPolicyVersion = 907,
    /// success_count + error_count > request_count.
    RuleSuccessPlusErrorExceedsRequests = 908,
    /// served_from_cache_count > request_count.
    RuleCacheExceedsRequests = 909,
    /// The work-class counts are present and do not sum to request_count.
    RuleWorkClassSumMismatch = 910,
    /// The error-class counts sum past error_count.
    RuleErrorClassSumExceedsErrors = 911,
    /// A batch receipt's leaf_count differs from request_count.
    RuleLeafCountMismatch = 912,
    /// A per-request receipt does not cover exactly one request.
    RulePerRequestNotSingle = 913,
    /// v2: bytes_served_total > 65535 x request_count.
    RuleBytesExceedMaximum = 914,
    /// v2: ticketed_leaf_count > leaf_count.
    RuleTicketedExceedsLeaves = 915,
    /// v2: the name sketch is empty exactly when ticketed_leaf_count is not zero.
    RuleSketchInconsistent = 916,
    /// The window's bounds do not fit 64-bit milliseconds.
    RuleWindowOutOfRange = 917,
    /// The receipt's timestamp is outside its window and the skew.
    RuleTimestampOutsideWindow = 918,
    /// v2: the receipt arrived more than the deployment's `max_delay_ms` after its window.
    RuleArrivedTooLate = 919,
    /// v1: a receipt for the same operator, backend and window was already accepted.
    RuleDuplicateReceipt = 920,
    /// v2: an accepted receipt of the operator (any backend) overlaps the window.
    RuleOverlappingReceipt = 921,
    /// The audit sample was drawn for another root or leaf count.
    RuleSampleNotForReceipt = 922,
    /// Not one answer per sampled index.
    RuleProofCountMismatch = 923,
    /// An answer's proof is for another leaf index or tree size.
    RuleProofForWrongLeaf = 924,
    /// A sampled leaf's proof does not verify against the root.
    RuleInvalidProof = 925,
    /// A sampled leaf lies outside the receipt's window.
    RuleLeafOutsideWindow = 926,
    /// v2: a sampled leaf that is not the last comes without its right neighbour.
    RuleMissingNeighbour = 927,
    /// v2: the neighbour is not leaf `index + 1` (or the last leaf has one).
    RuleNeighbourForWrongLeaf = 928,
    /// v2: the neighbour's proof does not verify.
    RuleInvalidNeighbourProof = 929,
    /// v2: a sampled leaf is not strictly before its neighbour.
    RuleLeavesOutOfOrder = 930,
    /// v2: the neighbour's `repeat` is inconsistent with the sampled leaf's.
    RuleRepeatMismatch = 931,
    /// v2: a sampled ticketed leaf's cell is above its name-sketch register.
    RuleSketchUnderstates = 932,
    /// v2: a ticketed leaf was sampled and no ticket lookup was given.
    RuleTicketNotChecked = 933,
    /// v2: no token could be obtained for a sampled leaf's ticket.
    RuleTicketNotRedeemed = 934,
    /// v2: a sampled leaf's token does not verify.
    RuleTokenInvalid = 935,
    /// v2: the deployment requires tickets and a sampled leaf has none.
    RuleUnticketedLeaf = 936,
    /// v2: the sample disagrees with the service summary beyond the audit bound.
    RuleSummaryDisagrees = 937,
    /// The check exists only for v2 receipts.
    RuleNotV2 = 938,
    /// v2: a sketch witness does not match its register.
    RuleWitnessMismatch = 939,
    /// A ticket-lookup leaf carries another ticket.
    RuleTicketLeafMismatch = 940,
    /// More leaves under one ticket than its token's quota.
    RuleTicketOverQuota = 941,
    /// A v1 receipt, and the deployment no longer accepts v1 (`accept_v1` is false).
    RuleV1NotAccepted = 942,
    /// v2: ticketed_repeat_count > ticketed_leaf_count.
    RuleRepeatsExceedTicketed = 943,
    /// v2: more repeated ticketed leaves than the deployment's `max_repeat_permille` allows.
    RuleTooManyRepeats = 944,
    /// v2: the receipt arrived before its window ended (less the skew).
    RuleArrivedTooEarly = 945,
    /// The receipt breaks a rule this version does not name.
    RuleInvalid = 999,
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
        Self::ReceiptResponseTooLarge,
        Self::ReceiptSketchRegisterOutOfRange,
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
        Self::BatchResponseTooLarge,
        Self::BatchRepeatOverflow,
        Self::BatchInvalid,
        Self::AuditConfidence,
        Self::AuditFakeFraction,
        Self::AuditSeedNotAfterReceipt,
        Self::AuditSeedSlotNotFixed,
        Self::AuditInvalid,
        Self::TicketMalformed,
        Self::TicketWrongIssuer,
        Self::TicketExpiredKey,
        Self::TicketWrongChallenge,
        Self::TicketBadSignature,
        Self::TicketBadKey,
        Self::TicketInvalid,
        Self::RuleUnregisteredOperator,
        Self::RuleOperatorNotStaked,
        Self::RuleSignature,
        Self::RuleWrongDeployment,
        Self::RuleWindowLenNotDeployment,
        Self::RuleUnregisteredBackend,
        Self::RuleInvalidPolicyVersion,
        Self::RuleSuccessPlusErrorExceedsRequests,
        Self::RuleCacheExceedsRequests,
        Self::RuleWorkClassSumMismatch,
        Self::RuleErrorClassSumExceedsErrors,
        Self::RuleLeafCountMismatch,
        Self::RulePerRequestNotSingle,
        Self::RuleBytesExceedMaximum,
        Self::RuleTicketedExceedsLeaves,
        Self::RuleSketchInconsistent,
        Self::RuleWindowOutOfRange,
        Self::RuleTimestampOutsideWindow,
        Self::RuleArrivedTooLate,
        Self::RuleDuplicateReceipt,
        Self::RuleOverlappingReceipt,
        Self::RuleSampleNotForReceipt,
        Self::RuleProofCountMismatch,
        Self::RuleProofForWrongLeaf,
        Self::RuleInvalidProof,
        Self::RuleLeafOutsideWindow,
        Self::RuleMissingNeighbour,
        Self::RuleNeighbourForWrongLeaf,
        Self::RuleInvalidNeighbourProof,
        Self::RuleLeavesOutOfOrder,
        Self::RuleRepeatMismatch,
        Self::RuleSketchUnderstates,
        Self::RuleTicketNotChecked,
        Self::RuleTicketNotRedeemed,
        Self::RuleTokenInvalid,
        Self::RuleUnticketedLeaf,
        Self::RuleSummaryDisagrees,
        Self::RuleNotV2,
        Self::RuleWitnessMismatch,
        Self::RuleTicketLeafMismatch,
        Self::RuleTicketOverQuota,
        Self::RuleV1NotAccepted,
        Self::RuleRepeatsExceedTicketed,
        Self::RuleTooManyRepeats,
        Self::RuleArrivedTooEarly,
        Self::RuleInvalid,
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
            Self::ReceiptResponseTooLarge => "leaf response size is above 65535 bytes",
            Self::ReceiptSketchRegisterOutOfRange => {
                "a name sketch register is above the largest rank"
            }
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
            Self::BatchResponseTooLarge => "a leaf's response size is above 65535 bytes",
            Self::BatchRepeatOverflow => "more than 65536 identical leaves in one millisecond",
            Self::BatchInvalid => "the batch could not be closed",
            Self::AuditConfidence => "confidence must be strictly between 0 and 1",
            Self::AuditFakeFraction => "fake_fraction must be strictly between 0 and 1",
            Self::AuditSeedNotAfterReceipt => {
                "audit seed must come from a slot after the receipt was recorded"
            }
            Self::AuditSeedSlotNotFixed => {
                "audit seed must come from the slot at the fixed delay after the receipt"
            }
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
            Self::RuleUnregisteredOperator => "operator is not registered",
            Self::RuleOperatorNotStaked => "operator is not staked for the window",
            Self::RuleSignature => "receipt signature does not verify",
            Self::RuleWrongDeployment => "receipt is for another deployment",
            Self::RuleWindowLenNotDeployment => "window length is not the deployment's",
            Self::RuleUnregisteredBackend => "backend_id is not registered to the operator",
            Self::RuleInvalidPolicyVersion => "policy version is not valid for the window",
            Self::RuleSuccessPlusErrorExceedsRequests => {
                "success_count + error_count exceeds request_count"
            }
            Self::RuleCacheExceedsRequests => "served_from_cache_count exceeds request_count",
            Self::RuleWorkClassSumMismatch => "work-class counts do not sum to request_count",
            Self::RuleErrorClassSumExceedsErrors => "error-class counts exceed error_count",
            Self::RuleLeafCountMismatch => "leaf_count differs from request_count",
            Self::RulePerRequestNotSingle => "a per-request receipt must cover exactly one request",
            Self::RuleBytesExceedMaximum => "bytes_served_total exceeds 65535 bytes per request",
            Self::RuleTicketedExceedsLeaves => "ticketed_leaf_count exceeds leaf_count",
            Self::RuleSketchInconsistent => "name sketch is inconsistent with ticketed_leaf_count",
            Self::RuleWindowOutOfRange => "window bounds do not fit in 64 bits",
            Self::RuleTimestampOutsideWindow => "receipt timestamp is outside its window",
            Self::RuleArrivedTooLate => "receipt arrived after the deployment's delay bound",
            Self::RuleDuplicateReceipt => "duplicate receipt for this operator, backend and window",
            Self::RuleOverlappingReceipt => {
                "an accepted receipt of this operator overlaps the window"
            }
            Self::RuleSampleNotForReceipt => "audit sample was drawn for another receipt",
            Self::RuleProofCountMismatch => "number of answers differs from the sample size",
            Self::RuleProofForWrongLeaf => "a proof is for another leaf",
            Self::RuleInvalidProof => "a sampled proof does not verify",
            Self::RuleLeafOutsideWindow => "a sampled leaf lies outside the window",
            Self::RuleMissingNeighbour => "a sampled leaf comes without its right neighbour",
            Self::RuleNeighbourForWrongLeaf => "the neighbour is not the next leaf of the tree",
            Self::RuleInvalidNeighbourProof => "the neighbour's proof does not verify",
            Self::RuleLeavesOutOfOrder => "a leaf is not strictly before the next leaf",
            Self::RuleRepeatMismatch => "the neighbour has an inconsistent repeat",
            Self::RuleSketchUnderstates => "a sampled leaf lies above its name sketch register",
            Self::RuleTicketNotChecked => "a ticketed leaf was sampled without a ticket lookup",
            Self::RuleTicketNotRedeemed => "no token was found for a sampled leaf's ticket",
            Self::RuleTokenInvalid => "a sampled leaf's token does not verify",
            Self::RuleUnticketedLeaf => {
                "a sampled leaf has no toll ticket and the deployment requires one"
            }
            Self::RuleSummaryDisagrees => "sampled leaves disagree with the service summary",
            Self::RuleNotV2 => "the check needs a v2 receipt",
            Self::RuleWitnessMismatch => "a sketch witness does not match its register",
            Self::RuleTicketLeafMismatch => "a ticket-lookup leaf carries another ticket",
            Self::RuleTicketOverQuota => "more leaves under one ticket than its quota",
            Self::RuleV1NotAccepted => "the deployment no longer accepts v1 receipts",
            Self::RuleRepeatsExceedTicketed => "ticketed_repeat_count exceeds ticketed_leaf_count",
            Self::RuleTooManyRepeats => "more repeated ticketed leaves than the deployment allows",
            Self::RuleArrivedTooEarly => "the receipt arrived before its window ended",
            Self::RuleInvalid => "the receipt breaks a verification rule",
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
            DecodeError::ResponseTooLarge { .. } => Self::ReceiptResponseTooLarge,
            DecodeError::SketchRegisterOutOfRange { .. } => Self::ReceiptSketchRegisterOutOfRange,
            _ => Self::ReceiptInvalid,
        }
    }
}

impl From<ProofError> for tolldns_result {
    /// `399 + ProofError::code()` (400–403), or `TOLLDNS_RESULT_PROOF_INVALID` for a code this
    /// version does not define.
    fn from(e: ProofError) -> Self {
        Self::from_u32(399 + u32::from(e.code()))
            .filter(|r| (400..499).contains(&(*r as u32)))
            .unwrap_or(Self::ProofInvalid)
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

/// The offset of the v2 verification codes: a rule is `900 + VerifyError::code()`.
pub(crate) const RULE_BASE: u32 = 900;

impl From<VerifyError> for tolldns_result {
    /// `900 + VerifyError::code()` (the v2 API), or `TOLLDNS_RESULT_RULE_INVALID` for a code
    /// this version does not define.
    fn from(e: VerifyError) -> Self {
        Self::from_u32(RULE_BASE + u32::from(e.code()))
            .filter(|r| (RULE_BASE + 1..RULE_BASE + 99).contains(&(*r as u32)))
            .unwrap_or(Self::RuleInvalid)
    }
}

/// The frozen codes of the first verification API (`tolldns_receipt_verify`, 500–518), by
/// `VerifyError::code()`. Rules added with format v2 never reach that function (it refuses v2
/// receipts first) and fall to `TOLLDNS_RESULT_VERIFY_INVALID`.
pub(crate) fn legacy_verify_result(e: VerifyError) -> tolldns_result {
    use tolldns_result as R;
    match (e, e.code()) {
        (VerifyError::Signature(s), _) => s.into(),
        (_, 1) => R::VerifyUnregisteredOperator,
        (_, 2) => R::VerifyOperatorNotStaked,
        (_, 7) => R::VerifyInvalidPolicyVersion,
        (_, 8) => R::VerifySuccessPlusErrorExceedsRequests,
        (_, 9) => R::VerifyCacheExceedsRequests,
        (_, 10) => R::VerifyWorkClassSumMismatch,
        (_, 11) => R::VerifyErrorClassSumExceedsErrors,
        (_, 12) => R::VerifyLeafCountMismatch,
        (_, 13) => R::VerifyPerRequestNotSingle,
        (_, 17) => R::VerifyWindowOutOfRange,
        (_, 18) => R::VerifyTimestampOutsideWindow,
        (_, 20) => R::VerifyDuplicateReceipt,
        (_, 22) => R::VerifySampleNotForReceipt,
        (_, 23) => R::VerifyProofCountMismatch,
        (_, 24) => R::VerifyProofForWrongLeaf,
        (_, 25) => R::VerifyInvalidProof,
        (_, 26) => R::VerifyLeafOutsideWindow,
        _ => R::VerifyInvalid,
    }
}

/// One `VerifyError` per code, in code order (`RULES[i].code() == i + 1`), with its stable
/// name as a C string. `tests::rules_cover_the_library_codes` keeps it in step with
/// `tolldns-receipts`.
const RULES: &[(VerifyError, &CStr)] = &[
    (VerifyError::UnregisteredOperator, c"unregistered_operator"),
    (VerifyError::OperatorNotStaked, c"operator_not_staked"),
    (
        VerifyError::Signature(SignatureError::Invalid),
        c"signature",
    ),
    (VerifyError::WrongDeployment, c"wrong_deployment"),
    (
        VerifyError::WindowLenNotDeployment { window_len_s: 0 },
        c"window_len_not_deployment",
    ),
    (VerifyError::UnregisteredBackend, c"unregistered_backend"),
    (
        VerifyError::InvalidPolicyVersion { policy_version: 0 },
        c"invalid_policy_version",
    ),
    (
        VerifyError::SuccessPlusErrorExceedsRequests,
        c"success_plus_error_exceeds_requests",
    ),
    (VerifyError::CacheExceedsRequests, c"cache_exceeds_requests"),
    (
        VerifyError::WorkClassSumMismatch,
        c"work_class_sum_mismatch",
    ),
    (
        VerifyError::ErrorClassSumExceedsErrors,
        c"error_class_sum_exceeds_errors",
    ),
    (VerifyError::LeafCountMismatch, c"leaf_count_mismatch"),
    (VerifyError::PerRequestNotSingle, c"per_request_not_single"),
    (VerifyError::BytesExceedMaximum, c"bytes_exceed_maximum"),
    (
        VerifyError::TicketedExceedsLeaves,
        c"ticketed_exceeds_leaves",
    ),
    (VerifyError::SketchInconsistent, c"sketch_inconsistent"),
    (VerifyError::WindowOutOfRange, c"window_out_of_range"),
    (
        VerifyError::TimestampOutsideWindow { timestamp_ms: 0 },
        c"timestamp_outside_window",
    ),
    (
        VerifyError::ArrivedTooLate { received_ms: 0 },
        c"arrived_too_late",
    ),
    (VerifyError::DuplicateReceipt, c"duplicate_receipt"),
    (VerifyError::OverlappingReceipt, c"overlapping_receipt"),
    (VerifyError::SampleNotForReceipt, c"sample_not_for_receipt"),
    (
        VerifyError::ProofCountMismatch {
            expected: 0,
            actual: 0,
        },
        c"proof_count_mismatch",
    ),
    (
        VerifyError::ProofForWrongLeaf { index: 0 },
        c"proof_for_wrong_leaf",
    ),
    (
        VerifyError::InvalidProof {
            index: 0,
            error: ProofError::RootMismatch,
        },
        c"invalid_proof",
    ),
    (
        VerifyError::LeafOutsideWindow { index: 0 },
        c"leaf_outside_window",
    ),
    (
        VerifyError::MissingNeighbour { index: 0 },
        c"missing_neighbour",
    ),
    (
        VerifyError::NeighbourForWrongLeaf { index: 0 },
        c"neighbour_for_wrong_leaf",
    ),
    (
        VerifyError::InvalidNeighbourProof {
            index: 0,
            error: ProofError::RootMismatch,
        },
        c"invalid_neighbour_proof",
    ),
    (
        VerifyError::LeavesOutOfOrder { index: 0 },
        c"leaves_out_of_order",
    ),
    (VerifyError::RepeatMismatch { index: 0 }, c"repeat_mismatch"),
    (
        VerifyError::SketchUnderstates { index: 0 },
        c"sketch_understates",
    ),
    (
        VerifyError::TicketNotChecked { index: 0 },
        c"ticket_not_checked",
    ),
    (
        VerifyError::TicketNotRedeemed { index: 0 },
        c"ticket_not_redeemed",
    ),
    (VerifyError::TokenInvalid { index: 0 }, c"token_invalid"),
    (VerifyError::UnticketedLeaf { index: 0 }, c"unticketed_leaf"),
    (
        VerifyError::SummaryDisagrees {
            stat: SummaryStat::Success,
        },
        c"summary_disagrees",
    ),
    (VerifyError::NotV2, c"not_v2"),
    (
        VerifyError::WitnessMismatch { register: 0 },
        c"witness_mismatch",
    ),
    (
        VerifyError::TicketLeafMismatch { index: 0 },
        c"ticket_leaf_mismatch",
    ),
    (
        VerifyError::TicketOverQuota { leaves: 0 },
        c"ticket_over_quota",
    ),
    (VerifyError::V1NotAccepted, c"v1_not_accepted"),
    (
        VerifyError::RepeatsExceedTicketed,
        c"repeats_exceed_ticketed",
    ),
    (VerifyError::TooManyRepeats, c"too_many_repeats"),
    (
        VerifyError::ArrivedTooEarly { received_ms: 0 },
        c"arrived_too_early",
    ),
];

/// The rule behind a verification result code: a v2 code (901–998) or a code of the first
/// API (500–518).
fn rule_of(code: u32) -> Option<&'static (VerifyError, &'static CStr)> {
    let r = tolldns_result::from_u32(code)?;
    if let Some(i) = code.checked_sub(RULE_BASE + 1) {
        return RULES
            .get(usize::try_from(i).ok()?)
            .filter(|(e, _)| RULE_BASE + u32::from(e.code()) == code);
    }
    // 502 (an unusable key) and 503 (a bad signature) are both the `signature` rule.
    if r == tolldns_result::VerifySignatureInvalidKey {
        return RULES.get(2);
    }
    RULES
        .iter()
        .find(|(e, _)| r != tolldns_result::VerifyInvalid && legacy_verify_result(*e) == r)
}

/// The stable snake_case name of the receipt-verification rule behind `code` (the same name
/// the `tolldns` CLI and the JSON APIs print: `VerifyError::name()` in Rust), such as
/// `"wrong_deployment"` for `TOLLDNS_RESULT_RULE_WRONG_DEPLOYMENT` (904) or `"signature"` for
/// `TOLLDNS_RESULT_VERIFY_SIGNATURE_INVALID` (503).
///
/// Accepts the v2 codes (`TOLLDNS_RESULT_RULE_*`, 901–998) and the codes of the first API
/// (`TOLLDNS_RESULT_VERIFY_*`, 500–518). Returns NULL for any other code, including the
/// catch-alls 599 and 999 and codes from a newer library. The string is static and
/// NUL-terminated: do not free or modify it. Thread-safe.
#[unsafe(no_mangle)]
pub extern "C" fn tolldns_verify_error_name(code: u32) -> *const c_char {
    rule_of(code).map_or(core::ptr::null(), |(_, name)| name.as_ptr())
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
            SealError::ResponseTooLarge { .. } => Self::BatchResponseTooLarge,
            SealError::RepeatOverflow => Self::BatchRepeatOverflow,
            _ => Self::BatchInvalid,
        }
    }
}

impl From<SampleError> for tolldns_result {
    fn from(e: SampleError) -> Self {
        match e {
            SampleError::Confidence => Self::AuditConfidence,
            SampleError::FakeFraction => Self::AuditFakeFraction,
            SampleError::SeedNotAfterReceipt => Self::AuditSeedNotAfterReceipt,
            SampleError::SeedSlotNotFixed => Self::AuditSeedSlotNotFixed,
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

    /// `wrong_deployment` -> `RuleWrongDeployment`.
    fn rule_variant_name(name: &str) -> String {
        let mut out = String::from("Rule");
        for word in name.split('_') {
            let mut chars = word.chars();
            if let Some(first) = chars.next() {
                out.push(first.to_ascii_uppercase());
                out.extend(chars);
            }
        }
        out
    }

    #[test]
    fn rules_cover_the_library_codes() {
        for (i, (e, name)) in RULES.iter().enumerate() {
            let code = u32::from(e.code());
            assert_eq!(code as usize, i + 1, "RULES is in code order");
            assert_eq!(name.to_str().unwrap(), e.name());
            let r = tolldns_result::from(*e);
            assert_eq!(r as u32, 900 + code, "{}", e.name());
            assert_eq!(format!("{r:?}"), rule_variant_name(e.name()));
            assert!((901..999).contains(&(r as u32)));
            // SAFETY: a non-NULL result is a static NUL-terminated string.
            let back = unsafe { CStr::from_ptr(tolldns_verify_error_name(r as u32)) };
            assert_eq!(back.to_str().unwrap(), e.name());
        }
        // Every v2 code of the enum is in RULES: nothing between the last rule and 999.
        let rules = tolldns_result::ALL
            .iter()
            .filter(|r| (901..999).contains(&(**r as u32)))
            .count();
        assert_eq!(rules, RULES.len());
        assert_eq!(RULES.len(), 45, "tolldns-receipts defines codes 1-45");
        for code in [0, 4, 499, 599, 600, 900, 946, 999, 1000] {
            assert!(tolldns_verify_error_name(code).is_null(), "{code}");
        }
    }

    #[test]
    fn the_first_api_keeps_its_codes() {
        use tolldns_result as R;
        let cases = [
            (
                VerifyError::UnregisteredOperator,
                R::VerifyUnregisteredOperator,
                500,
            ),
            (
                VerifyError::OperatorNotStaked,
                R::VerifyOperatorNotStaked,
                501,
            ),
            (
                VerifyError::Signature(SignatureError::InvalidKey),
                R::VerifySignatureInvalidKey,
                502,
            ),
            (
                VerifyError::Signature(SignatureError::Invalid),
                R::VerifySignatureInvalid,
                503,
            ),
            (
                VerifyError::InvalidPolicyVersion { policy_version: 3 },
                R::VerifyInvalidPolicyVersion,
                504,
            ),
            (
                VerifyError::LeafCountMismatch,
                R::VerifyLeafCountMismatch,
                509,
            ),
            (
                VerifyError::TimestampOutsideWindow { timestamp_ms: 1 },
                R::VerifyTimestampOutsideWindow,
                512,
            ),
            (
                VerifyError::DuplicateReceipt,
                R::VerifyDuplicateReceipt,
                513,
            ),
            (
                VerifyError::LeafOutsideWindow { index: 4 },
                R::VerifyLeafOutsideWindow,
                518,
            ),
            (VerifyError::WrongDeployment, R::VerifyInvalid, 599),
        ];
        for (e, r, n) in cases {
            assert_eq!(legacy_verify_result(e), r, "{}", e.name());
            assert_eq!(r as u32, n);
        }
        // Every legacy code names its rule; 502 and 503 are both `signature`.
        for code in 500..=518 {
            // SAFETY: a non-NULL result is a static NUL-terminated string.
            let name = unsafe { CStr::from_ptr(tolldns_verify_error_name(code)) };
            let rule = RULES
                .iter()
                .find(|(e, _)| e.name() == name.to_str().unwrap())
                .unwrap();
            if code != 502 {
                assert_eq!(legacy_verify_result(rule.0) as u32, code);
            }
        }
    }

    #[test]
    fn proof_codes_follow_the_proof_error_codes() {
        let errors = [
            ProofError::IndexOutOfRange { index: 1, size: 1 },
            ProofError::PathTooLong,
            ProofError::PathTooShort,
            ProofError::RootMismatch,
        ];
        for e in errors {
            assert_eq!(tolldns_result::from(e) as u32, 399 + u32::from(e.code()));
        }
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
        let s = unsafe { CStr::from_ptr(buf.as_ptr()) };
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
