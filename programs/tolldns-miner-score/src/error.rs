//! The program's error codes.
//!
//! Anchor numbers `#[error_code]` variants from 6000 in declaration order. The numbers are part
//! of the program's interface (clients and tests match on them), so this enum is **append-only**:
//! never reorder, never remove; a retired variant stays in place with a `Retired` doc comment.

#![warn(missing_docs)]

use anchor_lang::prelude::*;
use tolldns_score::ScoreError;

/// Every way an instruction of this program can fail (codes from 6000, append-only).
#[error_code]
pub enum MinerScoreError {
    /// 6000: the signer is not an allowlisted submitter (or not the authority, or not the
    /// pending authority, for the admin instructions).
    #[msg("signer is not authorized for this instruction")]
    Unauthorized,
    /// 6001: a configuration value is invalid outside the scoring parameters (a duplicate key
    /// in an allowlist).
    #[msg("invalid configuration")]
    InvalidConfig,
    /// 6002: an allowlist is longer than its bound (16 watchers, 64 miners).
    #[msg("allowlist too large")]
    AllowlistTooLarge,
    /// 6003: the scoring weights do not sum to exactly 10,000 bps.
    #[msg("alpha weights must sum to exactly 10000 bps")]
    InvalidWeights,
    /// 6004: `epoch_len_slots` is zero.
    #[msg("epoch_len_slots must not be zero")]
    ZeroEpochLength,
    /// 6005: `diversity_target` is zero.
    #[msg("diversity_target must not be zero")]
    ZeroDiversityTarget,
    /// 6006: a basis-point value (penalty, threshold, dominance share) is above 10,000.
    #[msg("basis-point value above 10000")]
    BpsOutOfRange,
    /// 6007: the miner is not allowlisted.
    #[msg("miner is not allowlisted")]
    MinerNotAllowlisted,
    /// 6008: the reported stake weight is below `min_miner_stake_weight`.
    #[msg("stake weight below the configured minimum")]
    InsufficientStakeWeight,
    /// 6009: `uptime_score` or `correctness_score` is above 10,000.
    #[msg("sub-score above 10000")]
    InvalidScore,
    /// 6010: `first_submit_slot` is after `last_submit_slot`.
    #[msg("first_submit_slot is after last_submit_slot")]
    InvalidSubmitSlots,
    /// 6011: the epoch has not ended yet (reports and finalization need a past epoch).
    #[msg("epoch has not ended")]
    EpochNotEnded,
    /// 6012: the epoch is already finalized.
    #[msg("epoch already finalized")]
    EpochFinalized,
    /// 6013: the epoch is not finalized yet (claims need a finalized epoch).
    #[msg("epoch not finalized")]
    EpochNotFinalized,
    /// 6014: retired (reports are replaceable since K-of-N); kept for its code.
    #[msg("stats already reported for this miner and epoch")]
    AlreadyReported,
    /// 6015: retired (penalties live on the stats, not on a report); kept for its code.
    #[msg("a penalized report cannot be retracted")]
    ReportPenalized,
    /// 6016: the reward for this miner and epoch was already claimed.
    #[msg("reward already claimed")]
    AlreadyClaimed,
    /// 6017: `penalty_bps` is zero or above 10,000.
    #[msg("penalty_bps must be in 1..=10000")]
    InvalidPenalty,
    /// 6018: the vault holds nothing beyond the rewards already committed to earlier epochs.
    #[msg("reward vault exhausted: nothing uncommitted to fund the epoch")]
    RewardPoolExhausted,
    /// 6019: the reward vault account is not the configured one.
    #[msg("wrong reward vault")]
    InvalidVault,
    /// 6020: a token account has the wrong mint.
    #[msg("token account has the wrong mint")]
    InvalidMint,
    /// 6021: the miner's token account is not owned by the miner.
    #[msg("token account not owned by the miner")]
    InvalidTokenOwner,
    /// 6022: the rent receiver is not the account that paid for the report.
    #[msg("rent receiver is not the original submitter")]
    InvalidRentReceiver,
    /// 6023: there is no pending authority to accept.
    #[msg("no pending authority transfer")]
    NoPendingAuthority,
    /// 6024: `epoch_len_slots` cannot change after initialization (epoch ids derive from it).
    #[msg("epoch_len_slots is immutable")]
    EpochLengthImmutable,
    /// 6025: the vault holds less than the committed rewards (an invariant is broken).
    #[msg("vault balance below committed rewards")]
    VaultUnderfunded,
    /// 6026: checked arithmetic overflowed.
    #[msg("arithmetic overflow")]
    MathOverflow,
    /// 6027: a miner's normalized score exceeds the epoch total (an invariant is broken).
    #[msg("normalized score above the epoch total")]
    NormalizedAboveTotal,
    /// 6028: a report or finalize for an epoch before `first_epoch`.
    #[msg("the epoch precedes the first epoch recorded at init")]
    BeforeFirstEpoch,
    /// 6029: a report or retraction after `epoch end + reporting_deadline_slots`.
    #[msg("the reporting deadline of this epoch has passed")]
    ReportingClosed,
    /// 6030: a finalize before `epoch end + reporting_deadline_slots`.
    #[msg("the reporting deadline of this epoch has not passed yet")]
    ReportingOpen,
    /// 6031: a finalize of an epoch other than `next_epoch_to_finalize`.
    #[msg("epochs are finalized in order")]
    EpochOutOfOrder,
    /// 6032: a claim before `finalized_at_slot + challenge_window_slots`.
    #[msg("the challenge window is still open")]
    ChallengeWindowOpen,
    /// 6033: a penalty after the challenge window.
    #[msg("the challenge window has closed")]
    ChallengeWindowClosed,
    /// 6034: a claim after the claim deadline, or after `expire_epoch`.
    #[msg("the claim window of this epoch has closed")]
    RewardExpired,
    /// 6035: an `expire_epoch` before the claim deadline.
    #[msg("the claim window of this epoch is still open")]
    ClaimWindowOpen,
    /// 6036: a claim for a miner whose stats never reached the quorum.
    #[msg("fewer than K watchers reported this miner")]
    NotAccepted,
    /// 6037: closing totals before every reward is claimed or expired and every stats account is closed, or closing stats whose reward is still claimable.
    #[msg("the epoch still has unclaimed rewards or open stats accounts")]
    EpochNotSettled,
    /// 6038: a time-locked change while the previous one already applies to an unfinalized epoch.
    #[msg("a parameter change is already in force and not yet promoted")]
    ParamsChangeInFlight,
    /// 6039: adding a watcher or miner that is already listed.
    #[msg("key already allowlisted")]
    AlreadyAllowlisted,
    /// 6040: removing a watcher or miner that is not listed.
    #[msg("key not allowlisted")]
    NotAllowlisted,
    /// 6041: a zero reporting deadline, challenge window, claim window or time lock, or a reporting deadline above four epochs.
    #[msg("invalid timing parameters")]
    InvalidTiming,
    /// 6042: a quorum K of 0 or above `MAX_WATCHERS`.
    #[msg("quorum must be between 1 and 16")]
    InvalidQuorum,
    /// 6043: the registry's `epoch_len_slots` is not the score program's.
    #[msg("registry and score program epoch lengths differ")]
    EpochLengthMismatch,
    /// 6044: the stake account dropped the checkpoints of the epoch.
    #[msg("the stake account no longer answers this epoch")]
    StakeHistoryUnavailable,
    /// 6045: a retraction by a watcher that did not report.
    #[msg("this watcher has no report for this miner and epoch")]
    NoReport,
    /// 6046: init with a `first_epoch` that has already started or ended.
    #[msg("first_epoch is before the current epoch")]
    FirstEpochInPast,
    /// 6047: the registry's exit delay is shorter than the reporting deadline plus the
    /// challenge window: stake could leave before a penalty for the epoch can slash it.
    #[msg("registry exit delay shorter than reporting deadline plus challenge window")]
    ExitDelayTooShort,
    /// 6048: the registry's exit delay is longer than `(timelock_epochs − 1)` epochs: a new
    /// dispute authority could slash stake before its stakers could leave.
    #[msg("registry exit delay longer than the parameter time lock allows")]
    ExitDelayTooLong,
}

impl From<ScoreError> for MinerScoreError {
    fn from(e: ScoreError) -> Self {
        match e {
            ScoreError::InvalidWeights { .. } => Self::InvalidWeights,
            ScoreError::ZeroEpochLength => Self::ZeroEpochLength,
            ScoreError::ZeroDiversityTarget => Self::ZeroDiversityTarget,
            ScoreError::ScoreOutOfRange { .. } => Self::InvalidScore,
            ScoreError::BpsOutOfRange { .. } => Self::BpsOutOfRange,
            ScoreError::InsufficientStake { .. } => Self::InsufficientStakeWeight,
            ScoreError::NormalizedAboveTotal { .. } => Self::NormalizedAboveTotal,
            // `LengthMismatch` (allocate) is never reached by the program; `Overflow` and any
            // future variant are arithmetic failures.
            _ => Self::MathOverflow,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The codes are part of the interface: this pins them (append-only).
    #[test]
    fn codes_are_stable() {
        let pinned = [
            (MinerScoreError::Unauthorized, 6000),
            (MinerScoreError::InvalidConfig, 6001),
            (MinerScoreError::AllowlistTooLarge, 6002),
            (MinerScoreError::InvalidWeights, 6003),
            (MinerScoreError::ZeroEpochLength, 6004),
            (MinerScoreError::ZeroDiversityTarget, 6005),
            (MinerScoreError::BpsOutOfRange, 6006),
            (MinerScoreError::MinerNotAllowlisted, 6007),
            (MinerScoreError::InsufficientStakeWeight, 6008),
            (MinerScoreError::InvalidScore, 6009),
            (MinerScoreError::InvalidSubmitSlots, 6010),
            (MinerScoreError::EpochNotEnded, 6011),
            (MinerScoreError::EpochFinalized, 6012),
            (MinerScoreError::EpochNotFinalized, 6013),
            (MinerScoreError::AlreadyReported, 6014),
            (MinerScoreError::ReportPenalized, 6015),
            (MinerScoreError::AlreadyClaimed, 6016),
            (MinerScoreError::InvalidPenalty, 6017),
            (MinerScoreError::RewardPoolExhausted, 6018),
            (MinerScoreError::InvalidVault, 6019),
            (MinerScoreError::InvalidMint, 6020),
            (MinerScoreError::InvalidTokenOwner, 6021),
            (MinerScoreError::InvalidRentReceiver, 6022),
            (MinerScoreError::NoPendingAuthority, 6023),
            (MinerScoreError::EpochLengthImmutable, 6024),
            (MinerScoreError::VaultUnderfunded, 6025),
            (MinerScoreError::MathOverflow, 6026),
            (MinerScoreError::NormalizedAboveTotal, 6027),
            (MinerScoreError::BeforeFirstEpoch, 6028),
            (MinerScoreError::ReportingClosed, 6029),
            (MinerScoreError::ReportingOpen, 6030),
            (MinerScoreError::EpochOutOfOrder, 6031),
            (MinerScoreError::ChallengeWindowOpen, 6032),
            (MinerScoreError::ChallengeWindowClosed, 6033),
            (MinerScoreError::RewardExpired, 6034),
            (MinerScoreError::ClaimWindowOpen, 6035),
            (MinerScoreError::NotAccepted, 6036),
            (MinerScoreError::EpochNotSettled, 6037),
            (MinerScoreError::ParamsChangeInFlight, 6038),
            (MinerScoreError::AlreadyAllowlisted, 6039),
            (MinerScoreError::NotAllowlisted, 6040),
            (MinerScoreError::InvalidTiming, 6041),
            (MinerScoreError::InvalidQuorum, 6042),
            (MinerScoreError::EpochLengthMismatch, 6043),
            (MinerScoreError::StakeHistoryUnavailable, 6044),
            (MinerScoreError::NoReport, 6045),
            (MinerScoreError::FirstEpochInPast, 6046),
            (MinerScoreError::ExitDelayTooShort, 6047),
            (MinerScoreError::ExitDelayTooLong, 6048),
        ];
        for (e, code) in pinned {
            assert_eq!(u32::from(e), code, "{e:?}");
        }
    }

    #[test]
    fn score_errors_map_to_named_program_errors() {
        use tolldns_score::Field;
        let cases = [
            (
                ScoreError::InvalidWeights { sum: 1 },
                MinerScoreError::InvalidWeights,
            ),
            (
                ScoreError::ZeroEpochLength,
                MinerScoreError::ZeroEpochLength,
            ),
            (
                ScoreError::ZeroDiversityTarget,
                MinerScoreError::ZeroDiversityTarget,
            ),
            (
                ScoreError::ScoreOutOfRange {
                    field: Field::UptimeScore,
                    value: 10_001,
                },
                MinerScoreError::InvalidScore,
            ),
            (
                ScoreError::BpsOutOfRange {
                    field: Field::DominanceShareBps,
                    value: 10_001,
                },
                MinerScoreError::BpsOutOfRange,
            ),
            (
                ScoreError::InsufficientStake {
                    stake_weight: 0,
                    min_miner_stake_weight: 1,
                },
                MinerScoreError::InsufficientStakeWeight,
            ),
            (
                ScoreError::NormalizedAboveTotal {
                    normalized: 2,
                    total: 1,
                },
                MinerScoreError::NormalizedAboveTotal,
            ),
            (ScoreError::Overflow, MinerScoreError::MathOverflow),
        ];
        for (score_error, want) in cases {
            assert_eq!(
                u32::from(MinerScoreError::from(score_error)),
                u32::from(want),
                "{score_error:?}"
            );
        }
    }
}
