//! The registry program's error codes.
//!
//! Anchor numbers `#[error_code]` variants from 6000 in declaration order. The numbers are part
//! of the program's interface, so this enum is **append-only**: never reorder, never remove.

#![warn(missing_docs)]

use anchor_lang::prelude::*;

/// Every way an instruction of the registry can fail (codes from 6000, append-only).
#[error_code]
pub enum RegistryError {
    /// 6000: the signer may not run this instruction (not the authority, the pending
    /// authority, the operator's wallet or a configured slasher).
    #[msg("signer is not authorized for this instruction")]
    Unauthorized,
    /// 6001: a configuration value is invalid (zero epoch length or exit delay, duplicate
    /// slasher).
    #[msg("invalid registry configuration")]
    InvalidConfig,
    /// 6002: more slashers than [`MAX_SLASHERS`](crate::constants::MAX_SLASHERS).
    #[msg("too many slashers")]
    TooManySlashers,
    /// 6003: a role bit outside [`ROLE_MASK`](crate::constants::ROLE_MASK), or no role.
    #[msg("invalid role bits")]
    InvalidRoles,
    /// 6004: more backend ids than [`MAX_BACKENDS`](crate::constants::MAX_BACKENDS).
    #[msg("too many backend ids")]
    TooManyBackends,
    /// 6005: a backend id is empty, too long, not printable ASCII, or listed twice.
    #[msg("invalid backend id")]
    InvalidBackendId,
    /// 6006: more endpoints than [`MAX_ENDPOINTS`](crate::constants::MAX_ENDPOINTS).
    #[msg("too many endpoints")]
    TooManyEndpoints,
    /// 6007: an endpoint is empty, longer than
    /// [`MAX_ENDPOINT_LEN`](crate::constants::MAX_ENDPOINT_LEN), has an unknown transport, or
    /// is an audit API endpoint whose address is not an `http(s)://host:port` origin.
    #[msg("invalid endpoint")]
    InvalidEndpoint,
    /// 6008: a new signing key's first valid slot is in the past.
    #[msg("a new signing key cannot be valid before the current slot")]
    KeyValidFromInPast,
    /// 6009: the operator is retired; nothing about it can change but closing it.
    #[msg("operator is retired")]
    OperatorRetired,
    /// 6010: an amount (stake, exit, slash, tickets) is zero.
    #[msg("amount must not be zero")]
    ZeroAmount,
    /// 6011: an exit asks for more than the active stake.
    #[msg("exit exceeds the active stake")]
    InsufficientActiveStake,
    /// 6012: the stake account already holds [`MAX_EXITS`](crate::constants::MAX_EXITS)
    /// exit tickets; withdraw one first.
    #[msg("too many pending exits")]
    TooManyExits,
    /// 6013: the exit ticket is still locked (`slot < unlock_slot`).
    #[msg("exit ticket is still locked")]
    ExitLocked,
    /// 6014: no exit ticket at that index.
    #[msg("no such exit ticket")]
    NoSuchExit,
    /// 6015: the stake account no longer holds the checkpoint of the asked epoch.
    #[msg("stake history of that epoch is no longer available")]
    StakeHistoryUnavailable,
    /// 6016: an update for an epoch older than the account's newest checkpoint (an invariant is
    /// broken).
    #[msg("stake update for an epoch older than the newest checkpoint")]
    ClockWentBackwards,
    /// 6017: checked arithmetic failed.
    #[msg("arithmetic overflow")]
    MathOverflow,
    /// 6018: a token account has the wrong mint.
    #[msg("token account has the wrong mint")]
    InvalidMint,
    /// 6019: a token account is not owned by the signer.
    #[msg("token account is not owned by the signer")]
    InvalidTokenOwner,
    /// 6020: the treasury passed is not the configured treasury.
    #[msg("treasury is not the configured treasury")]
    InvalidTreasury,
    /// 6021: the ticket price is above the buyer's limit.
    #[msg("ticket price is above the buyer's limit")]
    PriceAboveLimit,
    /// 6022: `accept_authority` with no transfer pending.
    #[msg("no authority transfer is pending")]
    NoPendingAuthority,
    /// 6023: the stake account still holds tokens (close needs active, pending and exits at 0).
    #[msg("stake account is not empty")]
    StakeNotEmpty,
    /// 6024: a status change that is not allowed (e.g. leaving `Retired`, or an unknown
    /// status).
    #[msg("invalid operator status change")]
    InvalidStatus,
    /// 6025: a config update tries to change `epoch_len_slots`.
    #[msg("epoch_len_slots cannot be changed")]
    EpochLengthImmutable,
    /// 6026: a slash found nothing to take (no active, pending or exiting stake).
    #[msg("nothing to slash")]
    NothingToSlash,
    /// 6027: the stake vault passed is not the configured vault.
    #[msg("stake vault is not the configured vault")]
    InvalidVault,
    /// 6028: the operator still has stake or is not retired, so it cannot be closed.
    #[msg("operator cannot be closed yet")]
    OperatorNotClosable,
    /// 6029: tickets can only be bought from an active operator with the issuer role.
    #[msg("operator is not an active ticket issuer")]
    NotAnIssuer,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The codes are part of the interface: this pins them (append-only).
    #[test]
    fn codes_are_stable() {
        let pinned = [
            (RegistryError::Unauthorized, 6000),
            (RegistryError::InvalidConfig, 6001),
            (RegistryError::TooManySlashers, 6002),
            (RegistryError::InvalidRoles, 6003),
            (RegistryError::TooManyBackends, 6004),
            (RegistryError::InvalidBackendId, 6005),
            (RegistryError::TooManyEndpoints, 6006),
            (RegistryError::InvalidEndpoint, 6007),
            (RegistryError::KeyValidFromInPast, 6008),
            (RegistryError::OperatorRetired, 6009),
            (RegistryError::ZeroAmount, 6010),
            (RegistryError::InsufficientActiveStake, 6011),
            (RegistryError::TooManyExits, 6012),
            (RegistryError::ExitLocked, 6013),
            (RegistryError::NoSuchExit, 6014),
            (RegistryError::StakeHistoryUnavailable, 6015),
            (RegistryError::ClockWentBackwards, 6016),
            (RegistryError::MathOverflow, 6017),
            (RegistryError::InvalidMint, 6018),
            (RegistryError::InvalidTokenOwner, 6019),
            (RegistryError::InvalidTreasury, 6020),
            (RegistryError::PriceAboveLimit, 6021),
            (RegistryError::NoPendingAuthority, 6022),
            (RegistryError::StakeNotEmpty, 6023),
            (RegistryError::InvalidStatus, 6024),
            (RegistryError::EpochLengthImmutable, 6025),
            (RegistryError::NothingToSlash, 6026),
            (RegistryError::InvalidVault, 6027),
            (RegistryError::OperatorNotClosable, 6028),
            (RegistryError::NotAnIssuer, 6029),
        ];
        for (e, code) in pinned {
            assert_eq!(u32::from(e), code, "{e:?}");
        }
    }
}
