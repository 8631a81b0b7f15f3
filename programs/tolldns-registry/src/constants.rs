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

/// Largest number of public endpoints an operator registers (the five DNS transports and the
/// audit API).
pub const MAX_ENDPOINTS: usize = 6;

/// Longest endpoint address, in bytes (`host:port`, an `https://` URL or an `http(s)://`
/// origin).
pub const MAX_ENDPOINT_LEN: usize = 96;

/// Endpoint transport 1: DNS over UDP, address `host:port`.
pub const TRANSPORT_UDP: u8 = 1;

/// Endpoint transport 2: DNS over TCP, address `host:port`.
pub const TRANSPORT_TCP: u8 = 2;

/// Endpoint transport 3: DNS over TLS, address `host:port`.
pub const TRANSPORT_DOT: u8 = 3;

/// Endpoint transport 4: DNS over HTTPS, address an `https://` URL.
pub const TRANSPORT_DOH: u8 = 4;

/// Endpoint transport 5: DNS over QUIC, address `host:port`.
pub const TRANSPORT_DOQ: u8 = 5;

/// Endpoint transport 6: the operator's audit API (the miner's receipt batches, audit proofs
/// and ticket lookups that watchers query), address an origin `http://host:port` or
/// `https://host:port` with no path. Not a DNS transport: receipts never carry it.
pub const TRANSPORT_AUDIT_API: u8 = 6;

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
