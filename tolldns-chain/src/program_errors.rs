//! The programs' error codes and names, to turn a transaction's `Custom(code)` into a
//! [`ChainError::Program`](crate::ChainError::Program).
//!
//! Both TollDNS programs number their errors from 6000 in declaration order
//! (`programs/*/src/error.rs`, append-only); codes below 6000 raised by them are Anchor's own
//! ([`ANCHOR_ERRORS`]). SPL token errors are numbered from 0.

use solana_pubkey::Pubkey;

use crate::ids;

/// First custom error code of an Anchor `#[error_code]` enum.
pub const CUSTOM_ERROR_OFFSET: u32 = 6000;

/// The registry's errors, code `6000 + index`: (name, message).
pub const REGISTRY_ERRORS: &[(&str, &str)] = &[
    // 6000
    (
        "Unauthorized",
        "signer is not authorized for this instruction",
    ),
    // 6001
    ("InvalidConfig", "invalid registry configuration"),
    // 6002
    ("TooManySlashers", "too many slashers"),
    // 6003
    ("InvalidRoles", "invalid role bits"),
    // 6004
    ("TooManyBackends", "too many backend ids"),
    // 6005
    ("InvalidBackendId", "invalid backend id"),
    // 6006
    ("TooManyEndpoints", "too many endpoints"),
    // 6007
    ("InvalidEndpoint", "invalid endpoint"),
    // 6008
    (
        "KeyValidFromInPast",
        "a new signing key cannot be valid before the current slot",
    ),
    // 6009
    ("OperatorRetired", "operator is retired"),
    // 6010
    ("ZeroAmount", "amount must not be zero"),
    // 6011
    ("InsufficientActiveStake", "exit exceeds the active stake"),
    // 6012
    ("TooManyExits", "too many pending exits"),
    // 6013
    ("ExitLocked", "exit ticket is still locked"),
    // 6014
    ("NoSuchExit", "no such exit ticket"),
    // 6015
    (
        "StakeHistoryUnavailable",
        "stake history of that epoch is no longer available",
    ),
    // 6016
    (
        "ClockWentBackwards",
        "stake update for an epoch older than the newest checkpoint",
    ),
    // 6017
    ("MathOverflow", "arithmetic overflow"),
    // 6018
    ("InvalidMint", "token account has the wrong mint"),
    // 6019
    (
        "InvalidTokenOwner",
        "token account is not owned by the signer",
    ),
    // 6020
    ("InvalidTreasury", "treasury is not the configured treasury"),
    // 6021
    ("PriceAboveLimit", "ticket price is above the buyer's limit"),
    // 6022
    ("NoPendingAuthority", "no authority transfer is pending"),
    // 6023
    ("StakeNotEmpty", "stake account is not empty"),
    // 6024
    ("InvalidStatus", "invalid operator status change"),
    // 6025
    ("EpochLengthImmutable", "epoch_len_slots cannot be changed"),
    // 6026
    ("NothingToSlash", "nothing to slash"),
    // 6027
    ("InvalidVault", "stake vault is not the configured vault"),
    // 6028
    ("OperatorNotClosable", "operator cannot be closed yet"),
    // 6029
    ("NotAnIssuer", "operator is not an active ticket issuer"),
];

/// The score program's errors, code `6000 + index`: (name, message).
pub const MINER_SCORE_ERRORS: &[(&str, &str)] = &[
    // 6000
    (
        "Unauthorized",
        "signer is not authorized for this instruction",
    ),
    // 6001
    ("InvalidConfig", "invalid configuration"),
    // 6002
    ("AllowlistTooLarge", "allowlist too large"),
    // 6003
    (
        "InvalidWeights",
        "alpha weights must sum to exactly 10000 bps",
    ),
    // 6004
    ("ZeroEpochLength", "epoch_len_slots must not be zero"),
    // 6005
    ("ZeroDiversityTarget", "diversity_target must not be zero"),
    // 6006
    ("BpsOutOfRange", "basis-point value above 10000"),
    // 6007
    ("MinerNotAllowlisted", "miner is not allowlisted"),
    // 6008
    (
        "InsufficientStakeWeight",
        "stake weight below the configured minimum",
    ),
    // 6009
    ("InvalidScore", "sub-score above 10000"),
    // 6010
    (
        "InvalidSubmitSlots",
        "first_submit_slot is after last_submit_slot",
    ),
    // 6011
    ("EpochNotEnded", "epoch has not ended"),
    // 6012
    ("EpochFinalized", "epoch already finalized"),
    // 6013
    ("EpochNotFinalized", "epoch not finalized"),
    // 6014
    (
        "AlreadyReported",
        "stats already reported for this miner and epoch",
    ),
    // 6015
    ("ReportPenalized", "a penalized report cannot be retracted"),
    // 6016
    ("AlreadyClaimed", "reward already claimed"),
    // 6017
    ("InvalidPenalty", "penalty_bps must be in 1..=10000"),
    // 6018
    (
        "RewardPoolExhausted",
        "reward vault exhausted: nothing uncommitted to fund the epoch",
    ),
    // 6019
    ("InvalidVault", "wrong reward vault"),
    // 6020
    ("InvalidMint", "token account has the wrong mint"),
    // 6021
    ("InvalidTokenOwner", "token account not owned by the miner"),
    // 6022
    (
        "InvalidRentReceiver",
        "rent receiver is not the original submitter",
    ),
    // 6023
    ("NoPendingAuthority", "no pending authority transfer"),
    // 6024
    ("EpochLengthImmutable", "epoch_len_slots is immutable"),
    // 6025
    ("VaultUnderfunded", "vault balance below committed rewards"),
    // 6026
    ("MathOverflow", "arithmetic overflow"),
    // 6027
    (
        "NormalizedAboveTotal",
        "normalized score above the epoch total",
    ),
    // 6028
    (
        "BeforeFirstEpoch",
        "the epoch precedes the first epoch recorded at init",
    ),
    // 6029
    (
        "ReportingClosed",
        "the reporting deadline of this epoch has passed",
    ),
    // 6030
    (
        "ReportingOpen",
        "the reporting deadline of this epoch has not passed yet",
    ),
    // 6031
    ("EpochOutOfOrder", "epochs are finalized in order"),
    // 6032
    ("ChallengeWindowOpen", "the challenge window is still open"),
    // 6033
    ("ChallengeWindowClosed", "the challenge window has closed"),
    // 6034
    ("RewardExpired", "the claim window of this epoch has closed"),
    // 6035
    (
        "ClaimWindowOpen",
        "the claim window of this epoch is still open",
    ),
    // 6036
    ("NotAccepted", "fewer than K watchers reported this miner"),
    // 6037
    (
        "EpochNotSettled",
        "the epoch still has unclaimed rewards or open stats accounts",
    ),
    // 6038
    (
        "ParamsChangeInFlight",
        "a parameter change is already in force and not yet promoted",
    ),
    // 6039
    ("AlreadyAllowlisted", "key already allowlisted"),
    // 6040
    ("NotAllowlisted", "key not allowlisted"),
    // 6041
    ("InvalidTiming", "invalid timing parameters"),
    // 6042
    ("InvalidQuorum", "quorum must be between 1 and 16"),
    // 6043
    (
        "EpochLengthMismatch",
        "registry and score program epoch lengths differ",
    ),
    // 6044
    (
        "StakeHistoryUnavailable",
        "the stake account no longer answers this epoch",
    ),
    // 6045
    (
        "NoReport",
        "this watcher has no report for this miner and epoch",
    ),
    // 6046
    (
        "FirstEpochInPast",
        "first_epoch is before the current epoch",
    ),
    // 6047
    (
        "ExitDelayTooShort",
        "registry exit delay shorter than reporting deadline plus challenge window",
    ),
    // 6048
    (
        "ExitDelayTooLong",
        "registry exit delay longer than the parameter time lock allows",
    ),
];

/// Anchor's framework errors (`anchor_lang::error::ErrorCode`): (code, name).
pub const ANCHOR_ERRORS: &[(u32, &str)] = &[
    (100, "InstructionMissing"),
    (101, "InstructionFallbackNotFound"),
    (102, "InstructionDidNotDeserialize"),
    (103, "InstructionDidNotSerialize"),
    (1000, "IdlInstructionStub"),
    (1001, "IdlInstructionInvalidProgram"),
    (1002, "IdlAccountNotEmpty"),
    (1500, "EventInstructionStub"),
    (2000, "ConstraintMut"),
    (2001, "ConstraintHasOne"),
    (2002, "ConstraintSigner"),
    (2003, "ConstraintRaw"),
    (2004, "ConstraintOwner"),
    (2005, "ConstraintRentExempt"),
    (2006, "ConstraintSeeds"),
    (2007, "ConstraintExecutable"),
    (2008, "ConstraintState"),
    (2009, "ConstraintAssociated"),
    (2010, "ConstraintAssociatedInit"),
    (2011, "ConstraintClose"),
    (2012, "ConstraintAddress"),
    (2013, "ConstraintZero"),
    (2014, "ConstraintTokenMint"),
    (2015, "ConstraintTokenOwner"),
    (2016, "ConstraintMintMintAuthority"),
    (2017, "ConstraintMintFreezeAuthority"),
    (2018, "ConstraintMintDecimals"),
    (2019, "ConstraintSpace"),
    (2020, "ConstraintAccountIsNone"),
    (2021, "ConstraintTokenTokenProgram"),
    (2022, "ConstraintMintTokenProgram"),
    (2023, "ConstraintAssociatedTokenTokenProgram"),
    (2024, "ConstraintMintGroupPointerExtension"),
    (2025, "ConstraintMintGroupPointerExtensionAuthority"),
    (2026, "ConstraintMintGroupPointerExtensionGroupAddress"),
    (2027, "ConstraintMintGroupMemberPointerExtension"),
    (2028, "ConstraintMintGroupMemberPointerExtensionAuthority"),
    (
        2029,
        "ConstraintMintGroupMemberPointerExtensionMemberAddress",
    ),
    (2030, "ConstraintMintMetadataPointerExtension"),
    (2031, "ConstraintMintMetadataPointerExtensionAuthority"),
    (
        2032,
        "ConstraintMintMetadataPointerExtensionMetadataAddress",
    ),
    (2033, "ConstraintMintCloseAuthorityExtension"),
    (2034, "ConstraintMintCloseAuthorityExtensionAuthority"),
    (2035, "ConstraintMintPermanentDelegateExtension"),
    (2036, "ConstraintMintPermanentDelegateExtensionDelegate"),
    (2037, "ConstraintMintTransferHookExtension"),
    (2038, "ConstraintMintTransferHookExtensionAuthority"),
    (2039, "ConstraintMintTransferHookExtensionProgramId"),
    (2040, "ConstraintDuplicateMutableAccount"),
    (2041, "AccountAlreadyMigrated"),
    (2042, "AccountNotMigrated"),
    (2043, "ConstraintMintPausableExtension"),
    (2044, "ConstraintMintPausableAuthority"),
    (2500, "RequireViolated"),
    (2501, "RequireEqViolated"),
    (2502, "RequireKeysEqViolated"),
    (2503, "RequireNeqViolated"),
    (2504, "RequireKeysNeqViolated"),
    (2505, "RequireGtViolated"),
    (2506, "RequireGteViolated"),
    (3000, "AccountDiscriminatorAlreadySet"),
    (3001, "AccountDiscriminatorNotFound"),
    (3002, "AccountDiscriminatorMismatch"),
    (3003, "AccountDidNotDeserialize"),
    (3004, "AccountDidNotSerialize"),
    (3005, "AccountNotEnoughKeys"),
    (3006, "AccountNotMutable"),
    (3007, "AccountOwnedByWrongProgram"),
    (3008, "InvalidProgramId"),
    (3009, "InvalidProgramExecutable"),
    (3010, "AccountNotSigner"),
    (3011, "AccountNotSystemOwned"),
    (3012, "AccountNotInitialized"),
    (3013, "AccountNotProgramData"),
    (3014, "AccountNotAssociatedTokenAccount"),
    (3015, "AccountSysvarMismatch"),
    (3016, "AccountReallocExceedsLimit"),
    (3017, "AccountDuplicateReallocs"),
    (4100, "DeclaredProgramIdMismatch"),
    (4101, "TryingToInitPayerAsProgramAccount"),
    (4102, "InvalidNumericConversion"),
    (5000, "Deprecated"),
];

/// The SPL token program's errors (`TokenError`), code = index.
pub const TOKEN_ERRORS: &[&str] = &[
    "NotRentExempt",
    "InsufficientFunds",
    "InvalidMint",
    "MintMismatch",
    "OwnerMismatch",
    "FixedSupply",
    "AlreadyInUse",
    "InvalidNumberOfProvidedSigners",
    "InvalidNumberOfRequiredSigners",
    "UninitializedState",
    "NativeNotSupported",
    "NonNativeHasBalance",
    "InvalidInstruction",
    "InvalidState",
    "Overflow",
    "AuthorityTypeNotSupported",
    "MintCannotFreeze",
    "AccountFrozen",
    "MintDecimalsMismatch",
    "NonNativeNotSupported",
];

/// The name of error `code` raised by `program`, or `Custom(<code>)` when unknown.
pub fn error_name(program: &Pubkey, code: u32) -> String {
    let known = if *program == ids::REGISTRY || *program == ids::MINER_SCORE {
        let table = if *program == ids::REGISTRY {
            REGISTRY_ERRORS
        } else {
            MINER_SCORE_ERRORS
        };
        match code.checked_sub(CUSTOM_ERROR_OFFSET) {
            Some(index) => usize::try_from(index)
                .ok()
                .and_then(|i| table.get(i))
                .map(|(name, _)| *name),
            None => ANCHOR_ERRORS
                .iter()
                .find(|(c, _)| *c == code)
                .map(|(_, name)| *name),
        }
    } else if *program == ids::TOKEN_PROGRAM {
        usize::try_from(code)
            .ok()
            .and_then(|i| TOKEN_ERRORS.get(i))
            .copied()
    } else {
        None
    };
    known.map_or_else(|| format!("Custom({code})"), str::to_owned)
}

/// The message of a TollDNS program error (`#[msg(...)]`), if `code` is one of `program`'s.
pub fn error_message(program: &Pubkey, code: u32) -> Option<&'static str> {
    let table = if *program == ids::REGISTRY {
        REGISTRY_ERRORS
    } else if *program == ids::MINER_SCORE {
        MINER_SCORE_ERRORS
    } else {
        return None;
    };
    let index = usize::try_from(code.checked_sub(CUSTOM_ERROR_OFFSET)?).ok()?;
    table.get(index).map(|(_, message)| *message)
}

/// The code of the TollDNS program error `name` (`ChallengeWindowOpen`, …) of `program`.
pub fn error_code(program: &Pubkey, name: &str) -> Option<u32> {
    let table = if *program == ids::REGISTRY {
        REGISTRY_ERRORS
    } else if *program == ids::MINER_SCORE {
        MINER_SCORE_ERRORS
    } else {
        return None;
    };
    let index = table.iter().position(|(n, _)| *n == name)?;
    u32::try_from(index).ok()?.checked_add(CUSTOM_ERROR_OFFSET)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_name_the_programs_errors() {
        assert_eq!(error_name(&ids::MINER_SCORE, 6000), "Unauthorized");
        assert_eq!(error_name(&ids::MINER_SCORE, 6032), "ChallengeWindowOpen");
        assert_eq!(error_name(&ids::MINER_SCORE, 6036), "NotAccepted");
        assert_eq!(error_name(&ids::MINER_SCORE, 6048), "ExitDelayTooLong");
        assert_eq!(error_name(&ids::MINER_SCORE, 6049), "Custom(6049)");
        assert_eq!(error_name(&ids::REGISTRY, 6029), "NotAnIssuer");
        assert_eq!(error_name(&ids::REGISTRY, 6015), "StakeHistoryUnavailable");
        assert_eq!(error_name(&ids::REGISTRY, 2006), "ConstraintSeeds");
        assert_eq!(error_name(&ids::MINER_SCORE, 3012), "AccountNotInitialized");
        assert_eq!(error_name(&ids::TOKEN_PROGRAM, 1), "InsufficientFunds");
        assert_eq!(error_name(&ids::SYSTEM_PROGRAM, 1), "Custom(1)");
        assert_eq!(
            error_code(&ids::MINER_SCORE, "ChallengeWindowOpen"),
            Some(6032)
        );
        assert_eq!(error_code(&ids::REGISTRY, "NotAnIssuer"), Some(6029));
        assert_eq!(error_code(&ids::REGISTRY, "Nope"), None);
        assert_eq!(
            error_message(&ids::MINER_SCORE, 6032),
            Some("the challenge window is still open")
        );
        assert_eq!(error_message(&ids::MINER_SCORE, 2006), None);
        assert_eq!(error_message(&ids::TOKEN_PROGRAM, 6032), None);
        assert_eq!(error_code(&ids::TOKEN_PROGRAM, "InsufficientFunds"), None);
    }
}

#[cfg(test)]
mod source_tests {
    use super::*;

    /// The `(Enum::Variant, code)` pairs pinned by a program's own `codes_are_stable` test.
    fn pinned(source: &str, enum_name: &str) -> Vec<(String, u32)> {
        let prefix = format!("({enum_name}::");
        source
            .lines()
            .filter_map(|line| {
                let rest = line.trim().strip_prefix(&prefix)?;
                let (name, code) = rest.split_once(", ")?;
                let code = code.trim_end_matches([')', ',']);
                Some((name.to_owned(), code.parse().ok()?))
            })
            .collect()
    }

    #[test]
    fn tables_match_the_programs_sources() {
        for (source, enum_name, program, table) in [
            (
                include_str!("../../programs/tolldns-registry/src/error.rs"),
                "RegistryError",
                ids::REGISTRY,
                REGISTRY_ERRORS,
            ),
            (
                include_str!("../../programs/tolldns-miner-score/src/error.rs"),
                "MinerScoreError",
                ids::MINER_SCORE,
                MINER_SCORE_ERRORS,
            ),
        ] {
            let pinned = pinned(source, enum_name);
            assert_eq!(pinned.len(), table.len(), "{enum_name}");
            for (name, code) in pinned {
                assert_eq!(error_name(&program, code), name);
                assert!(source.contains(&format!("    {name},")), "{name}");
            }
        }
    }
}
