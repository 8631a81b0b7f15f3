//! Account decoders: Borsh after Anchor's 8-byte discriminator, mirroring
//! `programs/tolldns-registry/src/state.rs` and `programs/tolldns-miner-score/src/state.rs`
//! field for field, and the `SlotHashes` sysvar.
//!
//! The programs allocate every account at its largest size (`8 + INIT_SPACE`), so a decoded
//! account is usually followed by zero padding: decoding reads the fields in order and ignores
//! what follows. The discriminator is `SHA-256("account:<Name>")[..8]`; an account with another
//! one is refused.

use borsh::{BorshDeserialize, BorshSerialize};
use sha2::{Digest as _, Sha256};
use solana_pubkey::Pubkey;

use crate::ChainError;

/// Anchor's discriminator: `SHA-256("<namespace>:<name>")[..8]` (`account` for accounts,
/// `global` for instructions).
pub fn discriminator(namespace: &str, name: &str) -> [u8; 8] {
    let digest = Sha256::new()
        .chain_update(namespace.as_bytes())
        .chain_update(b":")
        .chain_update(name.as_bytes())
        .finalize();
    let mut out = [0u8; 8];
    out.copy_from_slice(&digest[..8]);
    out
}

/// An Anchor account of one of the programs.
pub trait AnchorAccount: BorshDeserialize + BorshSerialize + Sized {
    /// The account type's name in the program (`Operator`, `EpochTotals`, …).
    const NAME: &'static str;

    /// The program that owns accounts of this type.
    fn owner() -> Pubkey;

    /// `SHA-256("account:<NAME>")[..8]`.
    fn discriminator() -> [u8; 8] {
        discriminator("account", Self::NAME)
    }

    /// Decodes account data: checks the discriminator and reads the fields, ignoring trailing
    /// padding.
    ///
    /// # Errors
    ///
    /// [`ChainError::Decode`] for short data, another discriminator or a malformed field.
    fn decode(data: &[u8]) -> Result<Self, ChainError> {
        let Some((disc, mut rest)) = data.split_first_chunk::<8>() else {
            return Err(ChainError::decode(
                Self::NAME,
                format!("{} bytes, shorter than a discriminator", data.len()),
            ));
        };
        if *disc != Self::discriminator() {
            return Err(ChainError::decode(
                Self::NAME,
                format!(
                    "discriminator {} is not {}'s",
                    hex::encode(disc),
                    Self::NAME
                ),
            ));
        }
        Self::deserialize(&mut rest).map_err(|e| ChainError::decode(Self::NAME, e))
    }

    /// Encodes the account: discriminator then fields (no padding).
    fn encode(&self) -> Vec<u8> {
        let mut out = Self::discriminator().to_vec();
        // Writing into a Vec cannot fail.
        let _ = self.serialize(&mut out);
        out
    }
}

// ---------------------------------------------------------------------------------------------
// Registry
// ---------------------------------------------------------------------------------------------

/// The registry's configuration, PDA `["registry_config"]`.
#[derive(BorshSerialize, BorshDeserialize, Clone, Debug, PartialEq, Eq)]
pub struct RegistryConfig {
    /// May update the config and start an authority transfer.
    pub authority: Pubkey,
    /// The authority proposed by a transfer, until it accepts.
    pub pending_authority: Option<Pubkey>,
    /// Mint of the TOLL token (stake and ticket payments).
    pub toll_mint: Pubkey,
    /// The stake vault.
    pub stake_vault: Pubkey,
    /// Token account receiving ticket payments and slashed stake.
    pub treasury: Pubkey,
    /// Epoch length in slots (epoch `e` is `[e × len, (e + 1) × len)`).
    pub epoch_len_slots: u64,
    /// Slots between an exit request and its withdrawal.
    pub exit_delay_slots: u64,
    /// Price of one ticket, in base units of `toll_mint`.
    pub ticket_price: u64,
    /// Keys allowed to slash, each from a slot on.
    pub slashers: Vec<Slasher>,
    /// Bump of this PDA.
    pub bump: u8,
    /// Bump of the stake vault.
    pub stake_vault_bump: u8,
    /// Bump of the stake-vault authority.
    pub stake_vault_authority_bump: u8,
    /// No slasher added from now on may act before this slot.
    pub slasher_floor_slot: u64,
}

impl AnchorAccount for RegistryConfig {
    const NAME: &'static str = "RegistryConfig";
    fn owner() -> Pubkey {
        crate::ids::REGISTRY
    }
}

impl RegistryConfig {
    /// The epoch containing `slot` (`None` for a zero epoch length, which the program never
    /// stores).
    pub fn epoch_of(&self, slot: u64) -> Option<u64> {
        slot.checked_div(self.epoch_len_slots)
    }
}

/// A key allowed to slash, from a slot on.
#[derive(BorshSerialize, BorshDeserialize, Clone, Debug, PartialEq, Eq)]
pub struct Slasher {
    /// The key.
    pub key: Pubkey,
    /// First slot at which it may slash.
    pub active_from_slot: u64,
}

/// Lifecycle of an operator.
#[derive(BorshSerialize, BorshDeserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum OperatorStatus {
    /// Serving; its receipts may count.
    Active,
    /// Temporarily not serving.
    Paused,
    /// Gone for good.
    Retired,
}

/// A public endpoint of an operator.
#[derive(BorshSerialize, BorshDeserialize, Clone, Debug, PartialEq, Eq)]
pub struct Endpoint {
    /// The transport, as receipts number it: 1 UDP, 2 TCP, 3 DoT, 4 DoH, 5 DoQ; 6 is the
    /// operator's audit API origin.
    pub transport: u8,
    /// `host:port`, or a URL (DoH, audit API).
    pub address: String,
}

/// A receipt-signing key and the first slot from which it signs.
#[derive(BorshSerialize, BorshDeserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub struct SigningKey {
    /// The ed25519 public key (the receipts' operator id).
    pub key: [u8; 32],
    /// First slot from which receipts signed by this key count.
    pub valid_from_slot: u64,
}

/// An operator, PDA `["operator", wallet]`.
#[derive(BorshSerialize, BorshDeserialize, Clone, Debug, PartialEq, Eq)]
pub struct Operator {
    /// The wallet that registered (and controls) this operator; stake is keyed by it too.
    pub wallet: Pubkey,
    /// The current delegate receipt-signing key (possibly scheduled).
    pub signing_key: SigningKey,
    /// The key before the last rotation, valid until `signing_key` takes over.
    pub previous_signing_key: Option<SigningKey>,
    /// Role bits.
    pub roles: u16,
    /// Registered backend ids.
    pub backend_ids: Vec<String>,
    /// Public endpoints.
    pub endpoints: Vec<Endpoint>,
    /// Lifecycle status.
    pub status: OperatorStatus,
    /// Slot of registration.
    pub registered_at_slot: u64,
    /// Slot of the last change.
    pub updated_at_slot: u64,
    /// Bump of this PDA.
    pub bump: u8,
}

impl AnchorAccount for Operator {
    const NAME: &'static str = "Operator";
    fn owner() -> Pubkey {
        crate::ids::REGISTRY
    }
}

/// Largest number of backend ids of an operator (registry `MAX_BACKENDS`).
pub const MAX_BACKENDS: usize = 8;
/// Longest backend id (registry `MAX_BACKEND_ID_LEN`).
pub const MAX_BACKEND_ID_LEN: usize = 32;
/// Largest number of endpoints of an operator (registry `MAX_ENDPOINTS`).
pub const MAX_ENDPOINTS: usize = 6;
/// Longest endpoint address (registry `MAX_ENDPOINT_LEN`).
pub const MAX_ENDPOINT_LEN: usize = 96;
/// Largest number of watchers of the score program (`MAX_WATCHERS`).
pub const MAX_WATCHERS: usize = 16;
/// Largest number of miners of the score program (`MAX_MINERS`).
pub const MAX_MINERS: usize = 64;

/// Endpoint transport 1: DNS over UDP, `host:port`.
pub const TRANSPORT_UDP: u8 = 1;
/// Endpoint transport 2: DNS over TCP, `host:port`.
pub const TRANSPORT_TCP: u8 = 2;
/// Endpoint transport 3: DNS over TLS, `host:port`.
pub const TRANSPORT_DOT: u8 = 3;
/// Endpoint transport 4: DNS over HTTPS, an `https://` URL.
pub const TRANSPORT_DOH: u8 = 4;
/// Endpoint transport 5: DNS over QUIC, `host:port`.
pub const TRANSPORT_DOQ: u8 = 5;

/// Role bit: the operator runs a watcher.
pub const ROLE_WATCHER: u16 = 1 << 8;
/// Role bit: the operator runs a ticket issuer.
pub const ROLE_ISSUER: u16 = 1 << 9;
/// Endpoint transport 6: the operator's audit API origin (`http(s)://host:port`).
pub const TRANSPORT_AUDIT_API: u8 = 6;

impl Operator {
    /// The signing key whose receipts count at `slot`, if any (as the program's
    /// `Operator::signing_key_at`).
    pub fn signing_key_at(&self, slot: u64) -> Option<[u8; 32]> {
        if slot >= self.signing_key.valid_from_slot {
            return Some(self.signing_key.key);
        }
        match self.previous_signing_key {
            Some(prev) if slot >= prev.valid_from_slot => Some(prev.key),
            _ => None,
        }
    }

    /// Whether the operator has every bit of `role` (a serving role `1 << code`,
    /// [`ROLE_WATCHER`] or [`ROLE_ISSUER`]).
    pub fn has_role(&self, role: u16) -> bool {
        role != 0 && self.roles & role == role
    }

    /// Whether the operator has the serving role of `tolldns_core` role code `code` (bit
    /// `code`, 1..=6).
    pub fn has_role_code(&self, code: u8) -> bool {
        (1..=6).contains(&code) && self.has_role(1u16 << code)
    }

    /// Whether the operator is [`OperatorStatus::Active`].
    pub fn is_active(&self) -> bool {
        self.status == OperatorStatus::Active
    }

    /// The endpoints of transport `transport`.
    pub fn endpoints_of(&self, transport: u8) -> impl Iterator<Item = &Endpoint> {
        self.endpoints
            .iter()
            .filter(move |e| e.transport == transport)
    }

    /// The operator's audit API origin (the first endpoint of transport
    /// [`TRANSPORT_AUDIT_API`]), if registered.
    pub fn audit_api(&self) -> Option<&str> {
        self.endpoints_of(TRANSPORT_AUDIT_API)
            .next()
            .map(|e| e.address.as_str())
    }
}

/// A pending exit.
#[derive(BorshSerialize, BorshDeserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExitTicket {
    /// Tokens to withdraw.
    pub amount: u64,
    /// First slot of the withdrawal.
    pub unlock_slot: u64,
}

/// The stake of one epoch in which the account changed.
#[derive(BorshSerialize, BorshDeserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub struct Checkpoint {
    /// The epoch.
    pub epoch: u64,
    /// The epoch's weight: the lowest active stake during it.
    pub weight: u64,
    /// Active plus pending stake after the epoch's last change.
    pub weight_after: u64,
}

/// A wallet's stake, PDA `["stake", wallet]`.
#[derive(BorshSerialize, BorshDeserialize, Clone, Debug, PartialEq, Eq)]
pub struct Stake {
    /// The staking wallet.
    pub wallet: Pubkey,
    /// Stake that counts for the current epoch and later ones.
    pub active: u64,
    /// Deposits that become active at `pending_epoch`.
    pub pending: u64,
    /// The epoch from which `pending` is active.
    pub pending_epoch: u64,
    /// Exit tickets, oldest first.
    pub exits: Vec<ExitTicket>,
    /// Everything slashed so far.
    pub slashed_total: u64,
    /// Epoch of the first deposit.
    pub created_epoch: u64,
    /// Per-epoch checkpoints, oldest first.
    pub checkpoints: Vec<Checkpoint>,
    /// Bump of this PDA.
    pub bump: u8,
}

impl AnchorAccount for Stake {
    const NAME: &'static str = "Stake";
    fn owner() -> Pubkey {
        crate::ids::REGISTRY
    }
}

impl Stake {
    /// The stake weight of `epoch`, exactly as the registry's `Stake::weight_for_epoch`: zero
    /// before the account existed, the epoch's checkpoint weight, else the `weight_after` of
    /// the newest earlier checkpoint; `None` when the checkpoints that answer it were dropped
    /// (the program's `StakeHistoryUnavailable`).
    pub fn weight_for_epoch(&self, epoch: u64) -> Option<u64> {
        if epoch < self.created_epoch {
            return Some(0);
        }
        let mut answer = None;
        for cp in &self.checkpoints {
            if cp.epoch == epoch {
                return Some(cp.weight);
            }
            if cp.epoch < epoch {
                answer = Some(cp.weight_after);
            }
        }
        answer
    }
}

/// What a buyer has paid one issuer for, PDA `["ticket_quota", buyer, issuer wallet]`.
#[derive(BorshSerialize, BorshDeserialize, Clone, Debug, PartialEq, Eq)]
pub struct TicketQuota {
    /// The buyer's wallet.
    pub buyer: Pubkey,
    /// The issuer operator's wallet.
    pub issuer: Pubkey,
    /// Tickets bought so far (cumulative).
    pub tickets_bought: u64,
    /// Base units paid so far (cumulative).
    pub total_paid: u64,
    /// Number of purchases.
    pub purchases: u64,
    /// Slot of the last purchase.
    pub last_purchase_slot: u64,
    /// Bump of this PDA.
    pub bump: u8,
}

impl AnchorAccount for TicketQuota {
    const NAME: &'static str = "TicketQuota";
    fn owner() -> Pubkey {
        crate::ids::REGISTRY
    }
}

// ---------------------------------------------------------------------------------------------
// Miner score
// ---------------------------------------------------------------------------------------------

/// Scoring parameters (the fields of [`tolldns_score::ScoreConfig`]).
#[derive(BorshSerialize, BorshDeserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub struct ScoreParams {
    /// Epoch length in slots.
    pub epoch_len_slots: u64,
    /// Largest reward of one miner for one epoch.
    pub per_miner_epoch_cap: u64,
    /// Smallest stake weight a report may carry.
    pub min_miner_stake_weight: u64,
    /// Weight of the correctness sub-score (bps).
    pub alpha_correctness_bps: u16,
    /// Weight of the diversity component (bps).
    pub alpha_diversity_bps: u16,
    /// Weight of the timeliness component (bps).
    pub alpha_timeliness_bps: u16,
    /// Weight of the uptime sub-score (bps).
    pub alpha_uptime_bps: u16,
    /// Share of the raw score removed above the dominance threshold (bps).
    pub centralization_penalty_bps: u16,
    /// Dominance share above which the penalty applies (bps).
    pub dominance_threshold_bps: u16,
    /// Unique names that earn the full diversity component.
    pub diversity_target: u32,
}

impl ScoreParams {
    /// The same parameters as a [`tolldns_score::ScoreConfig`].
    pub fn to_score_config(&self) -> tolldns_score::ScoreConfig {
        tolldns_score::ScoreConfig {
            epoch_len_slots: self.epoch_len_slots,
            alpha_correctness_bps: self.alpha_correctness_bps,
            alpha_diversity_bps: self.alpha_diversity_bps,
            alpha_timeliness_bps: self.alpha_timeliness_bps,
            alpha_uptime_bps: self.alpha_uptime_bps,
            centralization_penalty_bps: self.centralization_penalty_bps,
            dominance_threshold_bps: self.dominance_threshold_bps,
            diversity_target: self.diversity_target,
            per_miner_epoch_cap: self.per_miner_epoch_cap,
            min_miner_stake_weight: self.min_miner_stake_weight,
        }
    }
}

/// The economic parameters an epoch is scored and paid under.
#[derive(BorshSerialize, BorshDeserialize, Clone, Debug, PartialEq, Eq)]
pub struct Params {
    /// Upper bound of each epoch's reward pool.
    pub base_reward_per_epoch: u64,
    /// Scoring parameters.
    pub score: ScoreParams,
    /// K of K-of-N.
    pub quorum: u8,
    /// The key that may penalize miners.
    pub dispute_authority: Pubkey,
}

/// A time-locked parameter change.
#[derive(BorshSerialize, BorshDeserialize, Clone, Debug, PartialEq, Eq)]
pub struct PendingParams {
    /// The new parameters.
    pub params: Params,
    /// First epoch scored and paid under them.
    pub effective_epoch: u64,
}

/// The score program's clock rules.
#[derive(BorshSerialize, BorshDeserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timing {
    /// The first epoch that can be reported, finalized and paid.
    pub first_epoch: u64,
    /// Reports for `e` are accepted while `slot < end(e) + reporting_deadline_slots`.
    pub reporting_deadline_slots: u64,
    /// After finalization, slots during which penalties land and claims wait.
    pub challenge_window_slots: u64,
    /// Epochs (of slots) after the challenge window during which rewards can be claimed.
    pub claim_window_epochs: u64,
    /// Epochs between a parameter increase (or an allowlist addition) and its first epoch.
    pub timelock_epochs: u64,
}

/// An allowlist entry.
#[derive(BorshSerialize, BorshDeserialize, Clone, Debug, PartialEq, Eq)]
pub struct AllowEntry {
    /// The key.
    pub key: Pubkey,
    /// First epoch it counts for.
    pub active_from_epoch: u64,
}

/// The score program's configuration, PDA `["miner_score_config"]`.
#[derive(BorshSerialize, BorshDeserialize, Clone, Debug, PartialEq, Eq)]
pub struct MinerScoreConfig {
    /// May change parameters and allowlists.
    pub authority: Pubkey,
    /// The authority proposed by a transfer, until it accepts.
    pub pending_authority: Option<Pubkey>,
    /// Mint of the reward token.
    pub toll_mint: Pubkey,
    /// The reward vault.
    pub reward_vault: Pubkey,
    /// Bump of the vault-authority PDA.
    pub vault_authority_bump: u8,
    /// Bump of the reward-vault PDA.
    pub reward_vault_bump: u8,
    /// Bump of the slasher PDA.
    pub slasher_bump: u8,
    /// Bump of this PDA.
    pub bump: u8,
    /// The parameters in force.
    pub params: Params,
    /// A time-locked change, in force from its epoch.
    pub pending_params: Option<PendingParams>,
    /// The clock rules.
    pub timing: Timing,
    /// The only epoch `finalize_epoch` accepts next.
    pub next_epoch_to_finalize: u64,
    /// Rewards fixed by finalized epochs and not yet released.
    pub committed_rewards: u64,
    /// The registered watchers.
    pub watchers: Vec<AllowEntry>,
    /// The miners that may be reported.
    pub miners: Vec<AllowEntry>,
}

impl AnchorAccount for MinerScoreConfig {
    const NAME: &'static str = "MinerScoreConfig";
    fn owner() -> Pubkey {
        crate::ids::MINER_SCORE
    }
}

impl MinerScoreConfig {
    /// The epoch containing `slot` (`u64::MAX` for a zero epoch length, as the program).
    pub fn epoch_of(&self, slot: u64) -> u64 {
        slot.checked_div(self.params.score.epoch_len_slots)
            .unwrap_or(u64::MAX)
    }

    /// The parameters `epoch` is scored and paid under.
    pub fn params_for(&self, epoch: u64) -> &Params {
        match &self.pending_params {
            Some(p) if epoch >= p.effective_epoch => &p.params,
            _ => &self.params,
        }
    }

    /// Whether `key` is a watcher active in epoch `now_epoch`.
    pub fn is_watcher(&self, key: &Pubkey, now_epoch: u64) -> bool {
        self.watchers
            .iter()
            .any(|w| w.key == *key && w.active_from_epoch <= now_epoch)
    }

    /// Whether `key` is a miner that may be reported for `epoch`.
    pub fn is_miner_for(&self, key: &Pubkey, epoch: u64) -> bool {
        self.miners
            .iter()
            .any(|m| m.key == *key && m.active_from_epoch <= epoch)
    }

    /// First slot of `epoch` (`None` on overflow).
    pub fn epoch_start_slot(&self, epoch: u64) -> Option<u64> {
        epoch.checked_mul(self.params.score.epoch_len_slots)
    }

    /// First slot after `epoch` (`None` on overflow).
    pub fn epoch_end_slot(&self, epoch: u64) -> Option<u64> {
        epoch
            .checked_add(1)?
            .checked_mul(self.params.score.epoch_len_slots)
    }

    /// First slot at which reports for `epoch` are refused and it can be finalized:
    /// `end(epoch) + reporting_deadline_slots`.
    pub fn reporting_deadline_slot(&self, epoch: u64) -> Option<u64> {
        self.epoch_end_slot(epoch)?
            .checked_add(self.timing.reporting_deadline_slots)
    }
}

/// What a watcher reports for one miner and one epoch.
#[derive(BorshSerialize, BorshDeserialize, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MinerEpochReport {
    /// Number of receipt batches the miner submitted (audit only).
    pub aggregates_submitted: u32,
    /// Unique names served.
    pub unique_name_count: u32,
    /// Unique receipts (audit only).
    pub unique_receipt_count: u32,
    /// Slot of the miner's first submission.
    pub first_submit_slot: u64,
    /// Slot of the miner's last submission (must not precede the first).
    pub last_submit_slot: u64,
    /// Uptime sub-score, `0..=10_000`.
    pub uptime_score: u16,
    /// Correctness sub-score, `0..=10_000`.
    pub correctness_score: u16,
    /// The miner's share of the epoch's ticketed requests, in bps.
    pub dominance_share_bps: u16,
}

/// One watcher's report, as stored in [`MinerEpochStats`].
#[derive(BorshSerialize, BorshDeserialize, Clone, Debug, PartialEq, Eq)]
pub struct WatcherReport {
    /// The watcher.
    pub watcher: Pubkey,
    /// What it reported.
    pub report: MinerEpochReport,
    /// Slot of its latest version.
    pub slot: u64,
}

/// One miner's reports, accepted stats and score for one epoch,
/// PDA `["miner_epoch", epoch LE, miner]`.
#[derive(BorshSerialize, BorshDeserialize, Clone, Debug, PartialEq, Eq)]
pub struct MinerEpochStats {
    /// The epoch.
    pub epoch_id: u64,
    /// The miner (wallet).
    pub miner: Pubkey,
    /// Each watcher's latest report.
    pub reports: Vec<WatcherReport>,
    /// Whether at least K reports exist.
    pub accepted: bool,
    /// The stake weight of the epoch.
    pub stake_weight: u64,
    /// The accepted stats (field-by-field median).
    pub stats: MinerEpochReport,
    /// First slot of the epoch.
    pub epoch_start_slot: u64,
    /// End of the epoch (exclusive).
    pub epoch_end_slot: u64,
    /// Computed diversity component.
    pub diversity_component: u16,
    /// Computed timeliness component.
    pub timeliness_component: u16,
    /// Computed weighted component.
    pub component: u16,
    /// Computed raw score.
    pub raw_score: u128,
    /// `isqrt(raw_score)`.
    pub normalized_score: u128,
    /// Share of the reward kept after penalties (bps).
    pub reward_keep_bps: u16,
    /// Number of penalties applied.
    pub penalty_count: u16,
    /// The reward paid at claim.
    pub reward_amount: u64,
    /// Whether the reward was claimed.
    pub claimed: bool,
    /// Who paid the rent.
    pub rent_payer: Pubkey,
    /// Slot of the latest report or retraction.
    pub updated_at_slot: u64,
    /// Bump of this PDA.
    pub bump: u8,
}

impl AnchorAccount for MinerEpochStats {
    const NAME: &'static str = "MinerEpochStats";
    fn owner() -> Pubkey {
        crate::ids::MINER_SCORE
    }
}

impl MinerEpochStats {
    /// The report of `watcher`, if any.
    pub fn report_of(&self, watcher: &Pubkey) -> Option<&WatcherReport> {
        self.reports.iter().find(|r| r.watcher == *watcher)
    }
}

/// Per-epoch totals, PDA `["epoch_totals", epoch LE]`.
#[derive(BorshSerialize, BorshDeserialize, Clone, Debug, PartialEq, Eq)]
pub struct EpochTotals {
    /// The epoch.
    pub epoch_id: u64,
    /// Whether the account was initialized.
    pub initialized: bool,
    /// The parameters the epoch is scored and paid under.
    pub params: Params,
    /// `Σ raw_score` over the accepted miners.
    pub total_raw_score: u128,
    /// `Σ normalized_score` over the accepted miners.
    pub total_normalized_score: u128,
    /// Number of accepted miners.
    pub miner_count: u32,
    /// Number of the epoch's open stats accounts.
    pub open_stats: u32,
    /// Whether the epoch is finalized.
    pub finalized: bool,
    /// Slot of finalization.
    pub finalized_at_slot: u64,
    /// First slot at which claims are accepted.
    pub claims_open_slot: u64,
    /// First slot at which claims are refused.
    pub claim_deadline_slot: u64,
    /// The pool, fixed at finalization.
    pub reward_pool: u64,
    /// Number of miners that claimed.
    pub claimed_count: u32,
    /// `Σ reward` paid out.
    pub total_claimed: u64,
    /// Part of `reward_pool` released from the committed rewards.
    pub released: u64,
    /// Whether `expire_epoch` released the unclaimed rest.
    pub expired: bool,
    /// Who paid the rent.
    pub rent_payer: Pubkey,
    /// Bump of this PDA.
    pub bump: u8,
}

impl AnchorAccount for EpochTotals {
    const NAME: &'static str = "EpochTotals";
    fn owner() -> Pubkey {
        crate::ids::MINER_SCORE
    }
}

/// Record of a claim, PDA `["claim", epoch LE, miner]`.
#[derive(BorshSerialize, BorshDeserialize, Clone, Debug, PartialEq, Eq)]
pub struct MinerClaimReceipt {
    /// The epoch.
    pub epoch_id: u64,
    /// The miner.
    pub miner: Pubkey,
    /// Amount paid (base units; may be zero).
    pub amount: u64,
    /// Slot of the claim.
    pub claimed_at_slot: u64,
    /// Bump of this PDA.
    pub bump: u8,
}

impl AnchorAccount for MinerClaimReceipt {
    const NAME: &'static str = "MinerClaimReceipt";
    fn owner() -> Pubkey {
        crate::ids::MINER_SCORE
    }
}

// ---------------------------------------------------------------------------------------------
// Sysvars and SPL token
// ---------------------------------------------------------------------------------------------

/// Largest number of entries of the `SlotHashes` sysvar.
pub const MAX_SLOT_HASHES: usize = 512;

/// The `SlotHashes` sysvar: `(slot, hash)` pairs, newest first (bincode: `u64` count, then
/// `u64` slot and 32-byte hash per entry).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SlotHashes(pub Vec<(u64, [u8; 32])>);

impl SlotHashes {
    /// Decodes the sysvar's data.
    ///
    /// # Errors
    ///
    /// [`ChainError::Decode`] for a count above [`MAX_SLOT_HASHES`] or beyond the data.
    pub fn decode(data: &[u8]) -> Result<Self, ChainError> {
        let what = "SlotHashes sysvar";
        let (count, mut rest) = data
            .split_first_chunk::<8>()
            .ok_or_else(|| ChainError::decode(what, "shorter than its count"))?;
        let count = u64::from_le_bytes(*count);
        let count = usize::try_from(count)
            .ok()
            .filter(|&c| c <= MAX_SLOT_HASHES)
            .ok_or_else(|| ChainError::decode(what, format!("{count} entries")))?;
        let mut out = Vec::with_capacity(count);
        for i in 0..count {
            let (slot, tail) = rest
                .split_first_chunk::<8>()
                .ok_or_else(|| ChainError::decode(what, format!("entry {i} truncated")))?;
            let (hash, tail) = tail
                .split_first_chunk::<32>()
                .ok_or_else(|| ChainError::decode(what, format!("entry {i} truncated")))?;
            out.push((u64::from_le_bytes(*slot), *hash));
            rest = tail;
        }
        Ok(Self(out))
    }

    /// Encodes the sysvar's data (without the padding of the real account).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(8 + self.0.len() * 40);
        out.extend_from_slice(&(self.0.len() as u64).to_le_bytes());
        for (slot, hash) in &self.0 {
            out.extend_from_slice(&slot.to_le_bytes());
            out.extend_from_slice(hash);
        }
        out
    }

    /// The hash of `slot`, if still listed.
    pub fn get(&self, slot: u64) -> Option<[u8; 32]> {
        self.0.iter().find(|(s, _)| *s == slot).map(|(_, h)| *h)
    }
}

/// The fields of an SPL token account that the client reads (the first 72 bytes of its
/// 165-byte layout: mint, owner, amount).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenAccount {
    /// The mint.
    pub mint: Pubkey,
    /// The owner.
    pub owner: Pubkey,
    /// The balance, in base units.
    pub amount: u64,
}

/// Size of an SPL token account.
pub const TOKEN_ACCOUNT_LEN: usize = 165;

impl TokenAccount {
    /// Decodes an SPL token account.
    ///
    /// # Errors
    ///
    /// [`ChainError::Decode`] unless the data is a 165-byte token account.
    pub fn decode(data: &[u8]) -> Result<Self, ChainError> {
        if data.len() != TOKEN_ACCOUNT_LEN {
            return Err(ChainError::decode(
                "token account",
                format!("{} bytes, not {TOKEN_ACCOUNT_LEN}", data.len()),
            ));
        }
        let key = |at: usize| {
            let mut k = [0u8; 32];
            k.copy_from_slice(&data[at..at + 32]);
            Pubkey::new_from_array(k)
        };
        let mut amount = [0u8; 8];
        amount.copy_from_slice(&data[64..72]);
        Ok(Self {
            mint: key(0),
            owner: key(32),
            amount: u64::from_le_bytes(amount),
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests panic on failure by design
mod tests {
    use super::*;

    /// A little-endian writer that lays out fields one by one, independently of Borsh.
    #[derive(Default)]
    struct W(Vec<u8>);

    impl W {
        fn disc(name: &str) -> Self {
            let mut w = Self::default();
            w.0.extend_from_slice(&Sha256::digest(format!("account:{name}").as_bytes())[..8]);
            w
        }
        fn u8(&mut self, v: u8) -> &mut Self {
            self.0.push(v);
            self
        }
        fn u16(&mut self, v: u16) -> &mut Self {
            self.0.extend_from_slice(&v.to_le_bytes());
            self
        }
        fn u32(&mut self, v: u32) -> &mut Self {
            self.0.extend_from_slice(&v.to_le_bytes());
            self
        }
        fn u64(&mut self, v: u64) -> &mut Self {
            self.0.extend_from_slice(&v.to_le_bytes());
            self
        }
        fn u128(&mut self, v: u128) -> &mut Self {
            self.0.extend_from_slice(&v.to_le_bytes());
            self
        }
        fn key(&mut self, k: &Pubkey) -> &mut Self {
            self.0.extend_from_slice(k.as_ref());
            self
        }
        fn bytes(&mut self, b: &[u8]) -> &mut Self {
            self.0.extend_from_slice(b);
            self
        }
        fn string(&mut self, s: &str) -> &mut Self {
            self.u32(s.len() as u32).bytes(s.as_bytes())
        }
    }

    fn key(n: u8) -> Pubkey {
        Pubkey::new_from_array([n; 32])
    }

    /// Decodes `bytes` (and `bytes` padded with zeros, as the program allocates accounts),
    /// compares with `expected`, and checks that encoding gives `bytes` back.
    fn check<T: AnchorAccount + PartialEq + std::fmt::Debug>(bytes: &[u8], expected: &T) {
        assert_eq!(&T::decode(bytes).unwrap(), expected);
        let mut padded = bytes.to_vec();
        padded.resize(bytes.len() + 300, 0);
        assert_eq!(&T::decode(&padded).unwrap(), expected);
        assert_eq!(expected.encode(), bytes);
        // Truncated data and a wrong discriminator are refused.
        assert!(T::decode(&bytes[..bytes.len() - 1]).is_err());
        let mut wrong = bytes.to_vec();
        wrong[0] ^= 1;
        let e = T::decode(&wrong).unwrap_err().to_string();
        assert!(e.contains("discriminator"), "{e}");
        assert!(T::decode(&bytes[..7]).is_err());
    }

    #[test]
    fn discriminators_are_anchors() {
        // The issuer's pinned `TicketQuota` discriminator.
        assert_eq!(
            TicketQuota::discriminator(),
            [0xed, 0xdf, 0x58, 0x8c, 0x9e, 0xa7, 0x14, 0x83]
        );
        assert_eq!(
            discriminator("account", "Operator"),
            Sha256::digest(b"account:Operator")[..8]
        );
    }

    #[test]
    fn registry_config_decodes_field_by_field() {
        let mut w = W::disc("RegistryConfig");
        w.key(&key(1))
            .u8(1)
            .key(&key(2))
            .key(&key(3))
            .key(&key(4))
            .key(&key(5))
            .u64(100)
            .u64(5000)
            .u64(7)
            .u32(2)
            .key(&key(6))
            .u64(0)
            .key(&key(7))
            .u64(900)
            .u8(254)
            .u8(253)
            .u8(252)
            .u64(1234);
        let expected = RegistryConfig {
            authority: key(1),
            pending_authority: Some(key(2)),
            toll_mint: key(3),
            stake_vault: key(4),
            treasury: key(5),
            epoch_len_slots: 100,
            exit_delay_slots: 5000,
            ticket_price: 7,
            slashers: vec![
                Slasher {
                    key: key(6),
                    active_from_slot: 0,
                },
                Slasher {
                    key: key(7),
                    active_from_slot: 900,
                },
            ],
            bump: 254,
            stake_vault_bump: 253,
            stake_vault_authority_bump: 252,
            slasher_floor_slot: 1234,
        };
        check(&w.0, &expected);
        assert_eq!(expected.epoch_of(250), Some(2));
        // The largest config is the program's `8 + INIT_SPACE`.
        let mut max = expected;
        max.slashers = vec![max.slashers[0].clone(); 4];
        assert_eq!(max.encode().len(), 368);
    }

    fn operator() -> (Vec<u8>, Operator) {
        let mut w = W::disc("Operator");
        w.key(&key(9))
            .bytes(&[3; 32])
            .u64(500)
            .u8(1)
            .bytes(&[2; 32])
            .u64(100)
            .u16(0b100 | ROLE_WATCHER)
            .u32(2)
            .string("pdns")
            .string("unbound-1")
            .u32(2)
            .u8(1)
            .string("127.0.0.1:5353")
            .u8(6)
            .string("http://127.0.0.1:8080")
            .u8(1)
            .u64(90)
            .u64(500)
            .u8(255);
        let op = Operator {
            wallet: key(9),
            signing_key: SigningKey {
                key: [3; 32],
                valid_from_slot: 500,
            },
            previous_signing_key: Some(SigningKey {
                key: [2; 32],
                valid_from_slot: 100,
            }),
            roles: 0b100 | ROLE_WATCHER,
            backend_ids: vec!["pdns".into(), "unbound-1".into()],
            endpoints: vec![
                Endpoint {
                    transport: 1,
                    address: "127.0.0.1:5353".into(),
                },
                Endpoint {
                    transport: 6,
                    address: "http://127.0.0.1:8080".into(),
                },
            ],
            status: OperatorStatus::Paused,
            registered_at_slot: 90,
            updated_at_slot: 500,
            bump: 255,
        };
        (w.0, op)
    }

    #[test]
    fn operator_decodes_and_answers_its_key_roles_and_endpoints() {
        let (bytes, op) = operator();
        check(&bytes, &op);
        assert_eq!(op.signing_key_at(99), None);
        assert_eq!(op.signing_key_at(100), Some([2; 32]));
        assert_eq!(op.signing_key_at(499), Some([2; 32]));
        assert_eq!(op.signing_key_at(500), Some([3; 32]));
        assert!(op.has_role(ROLE_WATCHER));
        assert!(!op.has_role(ROLE_ISSUER));
        assert!(!op.has_role(0));
        assert!(op.has_role_code(2));
        assert!(!op.has_role_code(1));
        assert!(!op.has_role_code(9));
        assert!(!op.is_active());
        assert_eq!(op.audit_api(), Some("http://127.0.0.1:8080"));
        assert_eq!(op.endpoints_of(TRANSPORT_UDP).count(), 1);
        assert_eq!(op.endpoints_of(TRANSPORT_DOH).count(), 0);
        // Status tags: Active 0, Paused 1, Retired 2; an unknown tag is refused.
        let status_at = bytes.len() - 8 - 8 - 1 - 1;
        let mut retired = bytes;
        retired[status_at] = 2;
        assert_eq!(
            Operator::decode(&retired).unwrap().status,
            OperatorStatus::Retired
        );
        retired[status_at] = 3;
        assert!(Operator::decode(&retired).is_err());
        // No previous key: only the current one, from its slot.
        let mut fresh = op.clone();
        fresh.previous_signing_key = None;
        assert_eq!(fresh.signing_key_at(499), None);
        // The largest operator is the program's `8 + INIT_SPACE`.
        let mut max = op;
        max.backend_ids = vec!["x".repeat(MAX_BACKEND_ID_LEN); MAX_BACKENDS];
        max.endpoints = vec![
            Endpoint {
                transport: 4,
                address: "y".repeat(MAX_ENDPOINT_LEN),
            };
            MAX_ENDPOINTS
        ];
        assert_eq!(
            max.encode().len(),
            8 + 32 + 40 + 41 + 2 + 292 + 610 + 1 + 8 + 8 + 1
        );
    }

    fn stake() -> (Vec<u8>, Stake) {
        let mut w = W::disc("Stake");
        w.key(&key(4))
            .u64(100)
            .u64(50)
            .u64(7)
            .u32(1)
            .u64(30)
            .u64(9000)
            .u64(5)
            .u64(3)
            .u32(3)
            .u64(3)
            .u64(0)
            .u64(100)
            .u64(5)
            .u64(70)
            .u64(100)
            .u64(6)
            .u64(100)
            .u64(150)
            .u8(251);
        let s = Stake {
            wallet: key(4),
            active: 100,
            pending: 50,
            pending_epoch: 7,
            exits: vec![ExitTicket {
                amount: 30,
                unlock_slot: 9000,
            }],
            slashed_total: 5,
            created_epoch: 3,
            checkpoints: vec![
                Checkpoint {
                    epoch: 3,
                    weight: 0,
                    weight_after: 100,
                },
                Checkpoint {
                    epoch: 5,
                    weight: 70,
                    weight_after: 100,
                },
                Checkpoint {
                    epoch: 6,
                    weight: 100,
                    weight_after: 150,
                },
            ],
            bump: 251,
        };
        (w.0, s)
    }

    #[test]
    fn stake_decodes_and_weighs_epochs_as_the_program() {
        let (bytes, s) = stake();
        check(&bytes, &s);
        // Before the account: zero. At a checkpoint: its weight. Between: the previous
        // checkpoint's weight_after. After the last: its weight_after.
        assert_eq!(s.weight_for_epoch(2), Some(0));
        assert_eq!(s.weight_for_epoch(3), Some(0));
        assert_eq!(s.weight_for_epoch(4), Some(100));
        assert_eq!(s.weight_for_epoch(5), Some(70));
        assert_eq!(s.weight_for_epoch(6), Some(100));
        assert_eq!(s.weight_for_epoch(7), Some(150));
        assert_eq!(s.weight_for_epoch(u64::MAX), Some(150));
        // Dropped history: an epoch after creation but before the oldest kept checkpoint.
        let mut trimmed = s.clone();
        trimmed.checkpoints.remove(0);
        assert_eq!(trimmed.weight_for_epoch(4), None);
        assert_eq!(trimmed.weight_for_epoch(3), None);
        assert_eq!(trimmed.weight_for_epoch(2), Some(0));
        // The largest stake account is the program's `8 + INIT_SPACE`.
        let mut max = s;
        max.exits = vec![max.exits[0]; 4];
        max.checkpoints = vec![max.checkpoints[0]; 8];
        assert_eq!(max.encode().len(), 345);
    }

    #[test]
    fn ticket_quota_decodes_field_by_field() {
        let mut w = W::disc("TicketQuota");
        w.key(&key(1))
            .key(&key(2))
            .u64(10)
            .u64(70)
            .u64(2)
            .u64(77)
            .u8(250);
        let q = TicketQuota {
            buyer: key(1),
            issuer: key(2),
            tickets_bought: 10,
            total_paid: 70,
            purchases: 2,
            last_purchase_slot: 77,
            bump: 250,
        };
        check(&w.0, &q);
        assert_eq!(w.0.len(), 105);
    }

    fn params_bytes(w: &mut W, base: u64, quorum: u8) {
        w.u64(base)
            .u64(10)
            .u64(50)
            .u64(1)
            .u16(5000)
            .u16(2000)
            .u16(2000)
            .u16(1000)
            .u16(2000)
            .u16(2500)
            .u32(100)
            .u8(quorum)
            .key(&key(8));
    }

    fn params(base: u64, quorum: u8) -> Params {
        Params {
            base_reward_per_epoch: base,
            score: ScoreParams {
                epoch_len_slots: 10,
                per_miner_epoch_cap: 50,
                min_miner_stake_weight: 1,
                alpha_correctness_bps: 5000,
                alpha_diversity_bps: 2000,
                alpha_timeliness_bps: 2000,
                alpha_uptime_bps: 1000,
                centralization_penalty_bps: 2000,
                dominance_threshold_bps: 2500,
                diversity_target: 100,
            },
            quorum,
            dispute_authority: key(8),
        }
    }

    #[test]
    fn score_config_decodes_and_picks_the_params_of_an_epoch() {
        let mut w = W::disc("MinerScoreConfig");
        w.key(&key(1)).u8(0).key(&key(2)).key(&key(3));
        w.u8(250).u8(251).u8(252).u8(253);
        params_bytes(&mut w, 1000, 2);
        w.u8(1);
        params_bytes(&mut w, 2000, 3);
        w.u64(12);
        w.u64(4).u64(20).u64(30).u64(40).u64(2);
        w.u64(5).u64(999);
        w.u32(2).key(&key(10)).u64(0).key(&key(11)).u64(6);
        w.u32(1).key(&key(20)).u64(1);
        let c = MinerScoreConfig {
            authority: key(1),
            pending_authority: None,
            toll_mint: key(2),
            reward_vault: key(3),
            vault_authority_bump: 250,
            reward_vault_bump: 251,
            slasher_bump: 252,
            bump: 253,
            params: params(1000, 2),
            pending_params: Some(PendingParams {
                params: params(2000, 3),
                effective_epoch: 12,
            }),
            timing: Timing {
                first_epoch: 4,
                reporting_deadline_slots: 20,
                challenge_window_slots: 30,
                claim_window_epochs: 40,
                timelock_epochs: 2,
            },
            next_epoch_to_finalize: 5,
            committed_rewards: 999,
            watchers: vec![
                AllowEntry {
                    key: key(10),
                    active_from_epoch: 0,
                },
                AllowEntry {
                    key: key(11),
                    active_from_epoch: 6,
                },
            ],
            miners: vec![AllowEntry {
                key: key(20),
                active_from_epoch: 1,
            }],
        };
        check(&w.0, &c);
        assert_eq!(c.params_for(11).base_reward_per_epoch, 1000);
        assert_eq!(c.params_for(12).base_reward_per_epoch, 2000);
        assert!(c.is_watcher(&key(10), 0));
        assert!(!c.is_watcher(&key(11), 5));
        assert!(c.is_watcher(&key(11), 6));
        assert!(c.is_miner_for(&key(20), 1));
        assert!(!c.is_miner_for(&key(20), 0));
        assert_eq!(c.epoch_of(25), 2);
        assert_eq!(c.epoch_start_slot(3), Some(30));
        assert_eq!(c.epoch_end_slot(3), Some(40));
        assert_eq!(c.reporting_deadline_slot(3), Some(60));
        assert_eq!(c.epoch_end_slot(u64::MAX), None);
        let sc = c.params.score.to_score_config();
        assert_eq!(sc.diversity_target, 100);
        assert_eq!(sc.per_miner_epoch_cap, 50);
        sc.validate().unwrap();
        // The largest config (16 watchers, 64 miners) is 3,576 bytes, as the program's.
        let mut max = c;
        max.pending_authority = Some(key(1));
        max.watchers = vec![max.watchers[0].clone(); MAX_WATCHERS];
        max.miners = vec![max.miners[0].clone(); MAX_MINERS];
        assert_eq!(max.encode().len(), 3576);
    }

    fn report_bytes(w: &mut W, v: u32) {
        w.u32(v)
            .u32(v + 1)
            .u32(v + 2)
            .u64(u64::from(v) + 3)
            .u64(u64::from(v) + 4)
            .u16(9000)
            .u16(9500)
            .u16(3000);
    }

    fn report(v: u32) -> MinerEpochReport {
        MinerEpochReport {
            aggregates_submitted: v,
            unique_name_count: v + 1,
            unique_receipt_count: v + 2,
            first_submit_slot: u64::from(v) + 3,
            last_submit_slot: u64::from(v) + 4,
            uptime_score: 9000,
            correctness_score: 9500,
            dominance_share_bps: 3000,
        }
    }

    #[test]
    fn miner_epoch_stats_decode_field_by_field() {
        let mut w = W::disc("MinerEpochStats");
        w.u64(7).key(&key(20)).u32(2);
        w.key(&key(10));
        report_bytes(&mut w, 1);
        w.u64(71);
        w.key(&key(11));
        report_bytes(&mut w, 5);
        w.u64(72);
        w.u8(1).u64(400);
        report_bytes(&mut w, 1);
        w.u64(70).u64(80).u16(10).u16(20).u16(30);
        w.u128(1 << 70).u128(12345).u16(10_000).u16(0).u64(0).u8(0);
        w.key(&key(10)).u64(72).u8(249);
        let s = MinerEpochStats {
            epoch_id: 7,
            miner: key(20),
            reports: vec![
                WatcherReport {
                    watcher: key(10),
                    report: report(1),
                    slot: 71,
                },
                WatcherReport {
                    watcher: key(11),
                    report: report(5),
                    slot: 72,
                },
            ],
            accepted: true,
            stake_weight: 400,
            stats: report(1),
            epoch_start_slot: 70,
            epoch_end_slot: 80,
            diversity_component: 10,
            timeliness_component: 20,
            component: 30,
            raw_score: 1 << 70,
            normalized_score: 12345,
            reward_keep_bps: 10_000,
            penalty_count: 0,
            reward_amount: 0,
            claimed: false,
            rent_payer: key(10),
            updated_at_slot: 72,
            bump: 249,
        };
        check(&w.0, &s);
        assert_eq!(s.report_of(&key(11)).unwrap().slot, 72);
        assert!(s.report_of(&key(12)).is_none());
        // A bool byte other than 0 or 1 is refused, as Borsh does on chain.
        let mut bad = w.0.clone();
        let accepted_at = 8 + 8 + 32 + 4 + 2 * (32 + 34 + 8);
        assert_eq!(bad[accepted_at], 1);
        bad[accepted_at] = 2;
        assert!(MinerEpochStats::decode(&bad).is_err());
        let mut max = s;
        max.reports = vec![max.reports[0].clone(); MAX_WATCHERS];
        assert_eq!(max.encode().len(), 1387);
    }

    #[test]
    fn epoch_totals_decode_field_by_field() {
        let mut w = W::disc("EpochTotals");
        w.u64(7).u8(1);
        params_bytes(&mut w, 1000, 2);
        w.u128(5000).u128(70).u32(3).u32(4).u8(1);
        w.u64(100).u64(130).u64(530).u64(1000);
        w.u32(1).u64(333).u64(340).u8(0).key(&key(10)).u8(248);
        let t = EpochTotals {
            epoch_id: 7,
            initialized: true,
            params: params(1000, 2),
            total_raw_score: 5000,
            total_normalized_score: 70,
            miner_count: 3,
            open_stats: 4,
            finalized: true,
            finalized_at_slot: 100,
            claims_open_slot: 130,
            claim_deadline_slot: 530,
            reward_pool: 1000,
            claimed_count: 1,
            total_claimed: 333,
            released: 340,
            expired: false,
            rent_payer: key(10),
            bump: 248,
        };
        check(&w.0, &t);
        assert_eq!(w.0.len(), 225);
    }

    #[test]
    fn claim_receipt_decodes_field_by_field() {
        let mut w = W::disc("MinerClaimReceipt");
        w.u64(7).key(&key(20)).u64(333).u64(131).u8(247);
        let r = MinerClaimReceipt {
            epoch_id: 7,
            miner: key(20),
            amount: 333,
            claimed_at_slot: 131,
            bump: 247,
        };
        check(&w.0, &r);
        assert_eq!(w.0.len(), 65);
    }

    #[test]
    fn accounts_of_another_type_are_refused() {
        let (bytes, _) = stake();
        let e = Operator::decode(&bytes).unwrap_err().to_string();
        assert!(e.contains("Operator"), "{e}");
    }

    #[test]
    fn slot_hashes_decode_newest_first_and_refuse_bad_counts() {
        let mut w = W::default();
        w.u64(3)
            .u64(102)
            .bytes(&[2; 32])
            .u64(101)
            .bytes(&[1; 32])
            .u64(100)
            .bytes(&[0; 32]);
        let mut data = w.0.clone();
        // The real sysvar is allocated for 512 entries.
        data.resize(8 + 512 * 40, 0);
        let sh = SlotHashes::decode(&data).unwrap();
        assert_eq!(sh.0, vec![(102, [2; 32]), (101, [1; 32]), (100, [0; 32])]);
        assert_eq!(sh.get(101), Some([1; 32]));
        assert_eq!(sh.get(99), None);
        assert_eq!(sh.encode(), w.0);
        assert!(SlotHashes::decode(&w.0[..w.0.len() - 1]).is_err());
        assert!(SlotHashes::decode(&[0; 7]).is_err());
        let mut too_many = W::default();
        too_many.u64(513);
        assert!(SlotHashes::decode(&too_many.0).is_err());
        assert_eq!(SlotHashes::decode(&[0; 8]).unwrap().0, vec![]);
    }

    #[test]
    fn token_accounts_decode_mint_owner_and_amount() {
        let mut data = vec![0u8; TOKEN_ACCOUNT_LEN];
        data[..32].copy_from_slice(&[1; 32]);
        data[32..64].copy_from_slice(&[2; 32]);
        data[64..72].copy_from_slice(&77u64.to_le_bytes());
        let t = TokenAccount::decode(&data).unwrap();
        assert_eq!((t.mint, t.owner, t.amount), (key(1), key(2), 77));
        assert!(TokenAccount::decode(&data[..164]).is_err());
    }
}
