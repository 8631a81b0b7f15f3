//! PDA seeds and bounds of the registry program.

#![warn(missing_docs)]

/// Seed of the [`RegistryConfig`](crate::state::RegistryConfig) PDA: `["registry_config"]`.
pub const REGISTRY_CONFIG_SEED: &[u8] = b"registry_config";

/// Seed prefix of an [`Operator`](crate::state::Operator): `["operator", wallet]`.
pub const OPERATOR_SEED: &[u8] = b"operator";

/// Seed prefix of a [`Stake`](crate::state::Stake) account: `["stake", wallet]`.
pub const STAKE_SEED: &[u8] = b"stake";

/// Seed of the stake vault, an SPL token account PDA owned by the stake-vault authority:
/// `["stake_vault"]`.
pub const STAKE_VAULT_SEED: &[u8] = b"stake_vault";

/// Seed of the data-less PDA that signs transfers out of the stake vault:
/// `["stake_vault_authority"]`.
pub const STAKE_VAULT_AUTHORITY_SEED: &[u8] = b"stake_vault_authority";

/// Seed prefix of a buyer's [`TicketQuota`](crate::state::TicketQuota) at one issuer:
/// `["ticket_quota", buyer, issuer wallet]`.
pub const TICKET_QUOTA_SEED: &[u8] = b"ticket_quota";

/// Largest number of backend ids an operator registers.
pub const MAX_BACKENDS: usize = 8;

/// Longest backend id, in bytes (as `tolldns_core::BackendId`: printable ASCII, no spaces).
pub const MAX_BACKEND_ID_LEN: usize = 32;

/// Largest number of public endpoints an operator registers.
pub const MAX_ENDPOINTS: usize = 4;

/// Longest endpoint address, in bytes (`host:port` or an `https://` URL).
pub const MAX_ENDPOINT_LEN: usize = 96;

/// Largest number of pending exit tickets per stake account.
pub const MAX_EXITS: usize = 4;

/// Number of per-epoch stake checkpoints a stake account keeps (the newest ones).
pub const STAKE_CHECKPOINTS: usize = 8;

/// Largest number of keys allowed to slash (a dispute authority, the score program's slasher
/// PDA, …).
pub const MAX_SLASHERS: usize = 4;

/// Role bit: the operator runs a watcher.
pub const ROLE_WATCHER: u16 = 1 << 8;

/// Role bit: the operator runs a ticket issuer.
pub const ROLE_ISSUER: u16 = 1 << 9;

/// Every role bit that exists: bits 1..=6 are the serving roles of `tolldns_core::Role`
/// (bit `n` for role code `n`: 1 edge ingress, 2 gateway, 3 cache, 4 core resolver,
/// 5 anycast, 6 scrubbing), then [`ROLE_WATCHER`] and [`ROLE_ISSUER`].
pub const ROLE_MASK: u16 = 0b111_1110 | ROLE_WATCHER | ROLE_ISSUER;
