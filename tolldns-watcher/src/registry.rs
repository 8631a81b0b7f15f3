//! A snapshot of the chain registry (operators, their signing keys, roles, backends and
//! endpoints, stakes) and of the score program's configuration, refreshed periodically from a
//! [`Chain`]. A [`RegistryView`] of it at a slot is the receipts verifier's
//! [`OperatorRegistry`] and [`PolicyRegistry`].
//!
//! Receipts carry the operator's delegate signing key; the score program knows miners by their
//! wallet. The snapshot maps one to the other with the registry's rotation rule: the current
//! key counts from its `valid_from_slot`, the previous key until then.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use tolldns_chain::accounts::OperatorStatus as ChainOperatorStatus;
use tolldns_chain::{Chain, ChainError, MinerScoreConfig, Operator, Pubkey, RegistryConfig, Stake};
use tolldns_core::{BackendId, OperatorId, Role, WindowId, WindowLen};
use tolldns_receipts::{OperatorRegistry, OperatorStatus, PolicyRegistry};

/// Endpoint transport numbers of the registry (as receipts number transports), plus the
/// audit API.
pub mod transport {
    /// DNS over UDP, `host:port`.
    pub const UDP: u8 = 1;
    /// DNS over TCP, `host:port`.
    pub const TCP: u8 = 2;
    /// DNS over TLS, `host:port`.
    pub const DOT: u8 = 3;
    /// DNS over HTTPS, an `https://` URL.
    pub const DOH: u8 = 4;
    /// DNS over QUIC (not probed).
    pub const DOQ: u8 = 5;
    /// The operator's audit API origin (`http://host:port` or `https://…`).
    pub const AUDIT_API: u8 = 6;

    /// The metric label of a transport.
    pub const fn name(t: u8) -> &'static str {
        match t {
            UDP => "udp",
            TCP => "tcp",
            DOT => "dot",
            DOH => "doh",
            DOQ => "doq",
            AUDIT_API => "audit_api",
            _ => "other",
        }
    }
}

/// The registry and score program state the watcher works from.
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// The slot at which it was read.
    pub slot: u64,
    /// When it was read (wall-clock ms; 0 for a snapshot built by hand).
    pub read_ms: u64,
    /// The registry's configuration.
    pub registry: RegistryConfig,
    /// The score program's configuration, when initialized.
    pub score: Option<MinerScoreConfig>,
    /// Every operator.
    pub operators: Vec<Operator>,
    /// Stake accounts by wallet.
    pub stakes: HashMap<Pubkey, Stake>,
    /// Index into `operators` by current and previous signing key.
    by_key: HashMap<[u8; 32], usize>,
}

impl Snapshot {
    /// Builds a snapshot from its parts.
    pub fn new(
        slot: u64,
        registry: RegistryConfig,
        score: Option<MinerScoreConfig>,
        operators: Vec<Operator>,
        stakes: HashMap<Pubkey, Stake>,
    ) -> Self {
        let mut by_key = HashMap::new();
        for (i, op) in operators.iter().enumerate() {
            if let Some(prev) = &op.previous_signing_key {
                by_key.insert(prev.key, i);
            }
            by_key.insert(op.signing_key.key, i);
        }
        Self {
            slot,
            read_ms: 0,
            registry,
            score,
            operators,
            stakes,
            by_key,
        }
    }

    /// Reads a snapshot from the chain.
    ///
    /// # Errors
    ///
    /// The first failing read ([`ChainError::NotFound`] before the registry's init).
    pub async fn load<C: Chain>(chain: &C) -> Result<Self, ChainError> {
        let slot = chain.slot().await?;
        let registry = chain.registry_config().await?;
        let score = match chain.score_config().await {
            Ok(s) => Some(s),
            Err(ChainError::NotFound(_)) => None,
            Err(e) => return Err(e),
        };
        let operators = chain.operators().await?;
        let mut stakes = HashMap::new();
        for op in &operators {
            if let Some(s) = chain.stake(&op.wallet).await? {
                stakes.insert(op.wallet, s);
            }
        }
        let mut snap = Self::new(slot, registry, score, operators, stakes);
        snap.read_ms = crate::now_ms();
        Ok(snap)
    }

    /// The epoch of `slot` (the registry's epoch length).
    pub fn epoch_of(&self, slot: u64) -> u64 {
        slot.checked_div(self.registry.epoch_len_slots).unwrap_or(0)
    }

    /// The epoch length in slots.
    pub const fn epoch_len_slots(&self) -> u64 {
        self.registry.epoch_len_slots
    }

    /// The operator whose signing key is `key`, if any (current or previous key).
    pub fn operator_by_key(&self, key: &[u8; 32]) -> Option<&Operator> {
        self.by_key.get(key).and_then(|i| self.operators.get(*i))
    }

    /// The operator registered by `wallet`.
    pub fn operator_by_wallet(&self, wallet: &Pubkey) -> Option<&Operator> {
        self.operators.iter().find(|o| &o.wallet == wallet)
    }

    /// The wallet whose operator signs with `key` at `slot`: the current key from its
    /// `valid_from_slot` on, the previous key before that.
    pub fn wallet_at(&self, key: &[u8; 32], slot: u64) -> Option<Pubkey> {
        let op = self.operator_by_key(key)?;
        key_counts(op, key, slot).then_some(op.wallet)
    }

    /// The wallet of the operator that registered `key` at any time (current or previous).
    pub fn wallet_of(&self, key: &[u8; 32]) -> Option<Pubkey> {
        self.operator_by_key(key).map(|o| o.wallet)
    }

    /// `wallet`'s stake weight for `epoch` (0 without a stake account).
    pub fn stake_weight(&self, wallet: &Pubkey, epoch: u64) -> u64 {
        self.stakes
            .get(wallet)
            .and_then(|s| s.weight_for_epoch(epoch))
            .unwrap_or(0)
    }

    /// The smallest stake weight the score program scores (1 without a score config: some
    /// stake is always needed).
    pub fn min_stake_weight(&self, epoch: u64) -> u64 {
        self.score
            .as_ref()
            .map_or(1, |s| s.params_for(epoch).score.min_miner_stake_weight)
            .max(1)
    }

    /// Operators that are Active and have the edge-ingress role: the miners the watcher
    /// probes.
    pub fn active_miners(&self) -> impl Iterator<Item = &Operator> {
        self.operators
            .iter()
            .filter(|o| o.status == ChainOperatorStatus::Active && has_role(o, Role::EdgeIngress))
    }

    /// The audit API origin `wallet` registered (endpoint transport 6).
    pub fn audit_api(&self, wallet: &Pubkey) -> Option<String> {
        self.operator_by_wallet(wallet)?
            .endpoints
            .iter()
            .find(|e| e.transport == transport::AUDIT_API)
            .map(|e| e.address.clone())
    }

    /// The other watchers of `epoch` whose probe tickets are fetched: the score program's
    /// allowlisted watchers other than `me`, each with the API origin its registry operator
    /// (wallet = the watcher key) registered as endpoint transport 6. Watchers without one
    /// are left out.
    pub fn peer_watchers(&self, me: &Pubkey, epoch: u64) -> Vec<(Pubkey, String)> {
        let Some(score) = &self.score else {
            return Vec::new();
        };
        let mut peers: Vec<(Pubkey, String)> = score
            .watchers
            .iter()
            .filter(|w| w.key != *me && w.active_from_epoch <= epoch)
            .filter_map(|w| self.audit_api(&w.key).map(|origin| (w.key, origin)))
            .collect();
        peers.sort();
        peers.dedup_by(|a, b| a.0 == b.0);
        peers
    }

    /// A view of the snapshot at `slot` (the receipts verifier's registries).
    pub const fn at(&self, slot: u64) -> RegistryView<'_> {
        RegistryView { snap: self, slot }
    }
}

/// Whether `op` has `role` (registry role bit `1 << tag`).
pub fn has_role(op: &Operator, role: Role) -> bool {
    op.has_role_code(role.tag())
}

/// Whether `key` of `op` counts at `slot`: the current key from its `valid_from_slot`, the
/// previous key from its own `valid_from_slot` until the current one takes over.
fn key_counts(op: &Operator, key: &[u8; 32], slot: u64) -> bool {
    if op.signing_key.key == *key {
        return slot >= op.signing_key.valid_from_slot;
    }
    op.previous_signing_key.as_ref().is_some_and(|p| {
        p.key == *key && slot >= p.valid_from_slot && slot < op.signing_key.valid_from_slot
    })
}

/// The snapshot seen at one slot (a receipt's arrival slot).
#[derive(Debug, Clone, Copy)]
pub struct RegistryView<'a> {
    snap: &'a Snapshot,
    slot: u64,
}

impl OperatorRegistry for RegistryView<'_> {
    fn operator_status(
        &self,
        operator: &OperatorId,
        role: Role,
        _window: WindowId,
    ) -> OperatorStatus {
        let Some(op) = self.snap.operator_by_key(operator.as_bytes()) else {
            return OperatorStatus::Unregistered;
        };
        if op.status != ChainOperatorStatus::Active
            || !has_role(op, role)
            || !key_counts(op, operator.as_bytes(), self.slot)
        {
            return OperatorStatus::Unregistered;
        }
        let epoch = self.snap.epoch_of(self.slot);
        if self.snap.stake_weight(&op.wallet, epoch) < self.snap.min_stake_weight(epoch) {
            return OperatorStatus::NotStaked;
        }
        OperatorStatus::Active
    }

    fn backend_registered(&self, operator: &OperatorId, backend: &BackendId) -> bool {
        self.snap
            .operator_by_key(operator.as_bytes())
            .is_some_and(|op| {
                op.backend_ids
                    .iter()
                    .any(|b| b.as_bytes() == backend.as_bytes())
            })
    }
}

impl PolicyRegistry for RegistryView<'_> {
    /// Routing policy versions are not registered on chain: every version from 1 on is valid.
    fn is_valid_policy(&self, policy_version: u32, _window: WindowId, _len: WindowLen) -> bool {
        policy_version >= 1
    }
}

/// The current snapshot, shared by the ingest path and the workers.
#[derive(Debug, Default)]
pub struct SharedRegistry {
    current: RwLock<Option<Arc<Snapshot>>>,
    refresh: tokio::sync::Notify,
}

impl SharedRegistry {
    /// No snapshot yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// The current snapshot, if one was read.
    pub fn get(&self) -> Option<Arc<Snapshot>> {
        self.current
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Asks the chain loop to read the registry again now.
    pub fn request_refresh(&self) {
        self.refresh.notify_one();
    }

    /// Waits for [`SharedRegistry::request_refresh`].
    pub async fn refresh_requested(&self) {
        self.refresh.notified().await;
    }

    /// Replaces the snapshot.
    pub fn set(&self, snap: Snapshot) {
        *self
            .current
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(Arc::new(snap));
    }
}
