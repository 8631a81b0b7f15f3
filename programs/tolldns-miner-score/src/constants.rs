//! PDA seeds and bounds. The seeds are the prototype's (`ddns_miner_score`), kept so that
//! clients deriving these addresses need no change.

#![warn(missing_docs)]

/// Seed of the [`MinerScoreConfig`](crate::state::MinerScoreConfig) PDA: `["miner_score_config"]`.
pub const CONFIG_SEED: &[u8] = b"miner_score_config";

/// Seed of the vault-authority PDA (no data; it only signs token transfers out of the vault):
/// `["miner_score_vault_authority"]`.
pub const VAULT_AUTHORITY_SEED: &[u8] = b"miner_score_vault_authority";

/// Seed of the reward vault, an SPL token account PDA owned by the vault authority:
/// `["reward_vault"]`.
pub const REWARD_VAULT_SEED: &[u8] = b"reward_vault";

/// Seed prefix of [`MinerEpochStats`](crate::state::MinerEpochStats):
/// `["miner_epoch", epoch_id (u64 LE), miner]`.
pub const MINER_EPOCH_SEED: &[u8] = b"miner_epoch";

/// Seed prefix of [`EpochTotals`](crate::state::EpochTotals): `["epoch_totals", epoch_id (u64 LE)]`.
pub const EPOCH_TOTALS_SEED: &[u8] = b"epoch_totals";

/// Seed prefix of [`MinerClaimReceipt`](crate::state::MinerClaimReceipt):
/// `["claim", epoch_id (u64 LE), miner]`.
pub const CLAIM_SEED: &[u8] = b"claim";

/// Seed of the data-less PDA that signs the registry's `slash` when a penalty slashes stake:
/// `["slasher"]`. The registry's config must list it as a slasher.
pub const SLASHER_SEED: &[u8] = b"slasher";

/// Largest number of registered watchers (`N` of K-of-N; as the prototype's submitters).
pub const MAX_WATCHERS: usize = 16;

/// Largest number of allowlisted miners (as in the prototype; entries are added one by one).
pub const MAX_MINERS: usize = 64;

/// Longest reporting deadline, in epochs after the epoch's end. The stake weight of an epoch is
/// read from the registry's stake account, which keeps eight epochs of checkpoints.
pub const MAX_REPORTING_DEADLINE_EPOCHS: u64 = 4;
