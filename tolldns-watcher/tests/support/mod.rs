//! Test support: a chain test double with a static registry whose slots advance with wall
//! time, receipts signed for past windows, and a raw HTTP/1.1 client.

#![allow(dead_code, clippy::unwrap_used, clippy::missing_panics_doc)]

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use ed25519_dalek::SigningKey;
use tolldns_chain::accounts::{
    AllowEntry, Endpoint, OperatorStatus, Params, ScoreParams, SigningKey as ChainKey, Timing,
};
use tolldns_chain::{
    Chain, ChainError, EpochTotals, MinerClaimReceipt, MinerEpochStats, MinerScoreConfig, Operator,
    Pubkey, RegistryConfig, ReportedStats, Signature, Stake,
};
use tolldns_core::hash::NameKey;
use tolldns_core::{BackendId, DeploymentId, WindowId, WindowLen};
use tolldns_receipts::{
    BatchHeader, ClosedBatch, LatencyBucket, Leaf, LeafFlags, RcodeClass, Transport, WorkClass,
};

/// Slots per epoch of the test double.
pub(crate) const EPOCH_LEN_SLOTS: u64 = 40;
/// Milliseconds per slot of the test double.
pub(crate) const SLOT_MS: u64 = 50;
/// Receipt window of the tests, in seconds.
pub(crate) const WINDOW_SECS: u32 = 2;

/// A fresh directory under the system temp dir.
pub(crate) fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("tolldns-watcher-it-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// One registered miner of the test double.
#[derive(Debug, Clone)]
pub(crate) struct TestMiner {
    /// Its wallet.
    pub(crate) wallet: Pubkey,
    /// Its receipt-signing key.
    pub(crate) key: SigningKey,
    /// Its stake weight.
    pub(crate) stake: u64,
    /// Its registered endpoints (transport, address); default: one UDP endpoint.
    pub(crate) endpoints: Vec<(u8, String)>,
    /// The registered signing key when it is not `key`'s (a miner node's own key).
    pub(crate) public: Option<[u8; 32]>,
    /// A key rotation: the previous key (valid from slot 0) and the slot from which `key` is
    /// valid.
    pub(crate) rotated_from: Option<(SigningKey, u64)>,
}

/// A report the test double received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SeenReport {
    /// The reporting watcher.
    pub(crate) watcher: Pubkey,
    /// The epoch.
    pub(crate) epoch: u64,
    /// The miner.
    pub(crate) miner: Pubkey,
    /// The stats.
    pub(crate) stats: ReportedStats,
}

/// A chain test double: a static registry (operators, stakes, the score program's
/// configuration), slots that advance with wall time and slot hashes derived from the slot;
/// reports and finalizations are recorded, never checked.
#[derive(Debug)]
pub(crate) struct StaticChain {
    started: Instant,
    epoch_len: u64,
    miners: Vec<TestMiner>,
    watchers: Vec<Pubkey>,
    /// Reports received.
    pub(crate) reports: Mutex<Vec<SeenReport>>,
    /// Epochs finalized.
    pub(crate) finalized: Mutex<Vec<u64>>,
    /// Pools of epochs the test marks finalized.
    pub(crate) pools: Mutex<std::collections::HashMap<u64, u64>>,
    /// The audit API origin every operator registers (transport 6).
    pub(crate) audit_api: Option<String>,
}

impl StaticChain {
    /// A chain with these miners and watchers, slot 100 at creation.
    pub(crate) fn new(
        miners: Vec<TestMiner>,
        watchers: Vec<Pubkey>,
        audit_api: Option<String>,
    ) -> Self {
        Self {
            started: Instant::now(),
            epoch_len: EPOCH_LEN_SLOTS,
            miners,
            watchers,
            reports: Mutex::new(Vec::new()),
            finalized: Mutex::new(Vec::new()),
            pools: Mutex::new(std::collections::HashMap::new()),
            audit_api,
        }
    }

    /// The same with epochs of `slots` slots (and a reporting deadline of one epoch).
    pub(crate) fn with_epoch_len(mut self, slots: u64) -> Self {
        self.epoch_len = slots;
        self
    }

    /// Slots per epoch.
    pub(crate) fn epoch_len(&self) -> u64 {
        self.epoch_len
    }

    /// The current slot.
    pub(crate) fn now_slot(&self) -> u64 {
        100 + u64::try_from(self.started.elapsed().as_millis()).unwrap() / SLOT_MS
    }

    /// The reports received so far.
    pub(crate) fn reports(&self) -> Vec<SeenReport> {
        self.reports.lock().unwrap().clone()
    }

    fn operator(&self, m: &TestMiner) -> Operator {
        let mut endpoints: Vec<Endpoint> = m
            .endpoints
            .iter()
            .map(|(t, a)| Endpoint {
                transport: *t,
                address: a.clone(),
            })
            .collect();
        if let Some(a) = &self.audit_api {
            endpoints.push(Endpoint {
                transport: 6,
                address: a.clone(),
            });
        }
        Operator {
            wallet: m.wallet,
            signing_key: ChainKey {
                key: m.public.unwrap_or_else(|| m.key.verifying_key().to_bytes()),
                valid_from_slot: m.rotated_from.as_ref().map_or(0, |(_, from)| *from),
            },
            previous_signing_key: m.rotated_from.as_ref().map(|(old, _)| ChainKey {
                key: old.verifying_key().to_bytes(),
                valid_from_slot: 0,
            }),
            roles: 1 << 1,
            backend_ids: vec!["edge-ingress".to_owned()],
            endpoints,
            status: OperatorStatus::Active,
            registered_at_slot: 0,
            updated_at_slot: 0,
            bump: 255,
        }
    }
}

/// The score parameters of the test double.
pub(crate) fn score_params(epoch_len_slots: u64) -> ScoreParams {
    ScoreParams {
        epoch_len_slots,
        per_miner_epoch_cap: 1_000_000,
        min_miner_stake_weight: 1,
        alpha_correctness_bps: 4_000,
        alpha_diversity_bps: 2_000,
        alpha_timeliness_bps: 2_000,
        alpha_uptime_bps: 2_000,
        centralization_penalty_bps: 5_000,
        dominance_threshold_bps: 9_000,
        diversity_target: 10,
    }
}

impl Chain for StaticChain {
    async fn slot(&self) -> Result<u64, ChainError> {
        Ok(self.now_slot())
    }

    async fn slot_hashes(&self) -> Result<Vec<(u64, [u8; 32])>, ChainError> {
        let now = self.now_slot();
        Ok((now.saturating_sub(511)..=now)
            .rev()
            .map(|s| {
                (
                    s,
                    tolldns_core::hash::tagged_sha256(b"slot", &[&s.to_le_bytes()]),
                )
            })
            .collect())
    }

    async fn registry_config(&self) -> Result<RegistryConfig, ChainError> {
        Ok(RegistryConfig {
            authority: Pubkey::new_from_array([9; 32]),
            pending_authority: None,
            toll_mint: Pubkey::new_from_array([8; 32]),
            stake_vault: Pubkey::new_from_array([7; 32]),
            treasury: Pubkey::new_from_array([6; 32]),
            epoch_len_slots: self.epoch_len,
            exit_delay_slots: 2 * self.epoch_len,
            ticket_price: 1,
            slashers: Vec::new(),
            bump: 255,
            stake_vault_bump: 255,
            stake_vault_authority_bump: 255,
            slasher_floor_slot: 0,
        })
    }

    async fn operators(&self) -> Result<Vec<Operator>, ChainError> {
        Ok(self.miners.iter().map(|m| self.operator(m)).collect())
    }

    async fn operator(&self, wallet: &Pubkey) -> Result<Option<Operator>, ChainError> {
        Ok(self
            .miners
            .iter()
            .find(|m| m.wallet == *wallet)
            .map(|m| self.operator(m)))
    }

    async fn stake(&self, wallet: &Pubkey) -> Result<Option<Stake>, ChainError> {
        Ok(self
            .miners
            .iter()
            .find(|m| m.wallet == *wallet)
            .map(|m| Stake {
                wallet: m.wallet,
                active: m.stake,
                pending: 0,
                pending_epoch: 0,
                exits: Vec::new(),
                slashed_total: 0,
                created_epoch: 0,
                checkpoints: vec![tolldns_chain::accounts::Checkpoint {
                    epoch: 0,
                    weight: m.stake,
                    weight_after: m.stake,
                }],
                bump: 255,
            }))
    }

    async fn score_config(&self) -> Result<MinerScoreConfig, ChainError> {
        Ok(MinerScoreConfig {
            authority: Pubkey::new_from_array([9; 32]),
            pending_authority: None,
            toll_mint: Pubkey::new_from_array([8; 32]),
            reward_vault: Pubkey::new_from_array([5; 32]),
            vault_authority_bump: 255,
            reward_vault_bump: 255,
            slasher_bump: 255,
            bump: 255,
            params: Params {
                base_reward_per_epoch: 1_000_000,
                score: score_params(self.epoch_len),
                quorum: 1,
                dispute_authority: Pubkey::new_from_array([4; 32]),
            },
            pending_params: None,
            timing: Timing {
                first_epoch: 0,
                reporting_deadline_slots: self.epoch_len,
                challenge_window_slots: 10,
                claim_window_epochs: 10,
                timelock_epochs: 2,
            },
            next_epoch_to_finalize: 0,
            committed_rewards: 0,
            watchers: self
                .watchers
                .iter()
                .map(|w| AllowEntry {
                    key: *w,
                    active_from_epoch: 0,
                })
                .collect(),
            miners: self
                .miners
                .iter()
                .map(|m| AllowEntry {
                    key: m.wallet,
                    active_from_epoch: 0,
                })
                .collect(),
        })
    }

    async fn epoch_totals(&self, epoch: u64) -> Result<Option<EpochTotals>, ChainError> {
        let Some(pool) = self.pools.lock().unwrap().get(&epoch).copied() else {
            return Ok(None);
        };
        Ok(Some(EpochTotals {
            epoch_id: epoch,
            initialized: true,
            params: self.score_config().await?.params,
            total_raw_score: 1,
            total_normalized_score: 1,
            miner_count: 1,
            open_stats: 0,
            finalized: true,
            finalized_at_slot: self.now_slot(),
            claims_open_slot: self.now_slot(),
            claim_deadline_slot: self.now_slot() + 100,
            reward_pool: pool,
            claimed_count: 0,
            total_claimed: 0,
            released: 0,
            expired: false,
            rent_payer: Pubkey::new_from_array([3; 32]),
            bump: 255,
        }))
    }

    async fn miner_epoch(
        &self,
        _epoch: u64,
        _miner: &Pubkey,
    ) -> Result<Option<MinerEpochStats>, ChainError> {
        Ok(None)
    }

    async fn claim_receipt(
        &self,
        _epoch: u64,
        _miner: &Pubkey,
    ) -> Result<Option<MinerClaimReceipt>, ChainError> {
        Ok(None)
    }

    async fn report(
        &self,
        watcher: &SigningKey,
        epoch: u64,
        miner: &Pubkey,
        stats: &ReportedStats,
    ) -> Result<Signature, ChainError> {
        self.reports.lock().unwrap().push(SeenReport {
            watcher: tolldns_chain::pubkey_of(watcher),
            epoch,
            miner: *miner,
            stats: *stats,
        });
        Ok(Signature::from([1u8; 64]))
    }

    async fn retract(
        &self,
        _watcher: &SigningKey,
        _epoch: u64,
        _miner: &Pubkey,
    ) -> Result<Signature, ChainError> {
        Ok(Signature::from([2u8; 64]))
    }

    async fn finalize(&self, _payer: &SigningKey, epoch: u64) -> Result<Signature, ChainError> {
        self.finalized.lock().unwrap().push(epoch);
        Ok(Signature::from([3u8; 64]))
    }

    async fn claim(
        &self,
        _miner: &SigningKey,
        _epoch: u64,
        _destination: &Pubkey,
    ) -> Result<Signature, ChainError> {
        Err(ChainError::NotFound("claims in the test double".to_owned()))
    }

    async fn token_balance(&self, _account: &Pubkey) -> Result<u64, ChainError> {
        Ok(0)
    }
}

/// The window of `WINDOW_SECS` that ended most recently, at least 300 ms ago.
pub(crate) fn past_window() -> WindowId {
    let len = WindowLen::new(WINDOW_SECS).unwrap();
    let now = tolldns_watcher::now_ms();
    WindowId::containing(now.saturating_sub(u64::from(WINDOW_SECS) * 1000 + 300), len)
}

/// A batch of `n` leaves (every third ticketed) signed by `key` for `window`.
pub(crate) fn batch(
    key: &SigningKey,
    window: WindowId,
    n: u64,
    deployment: DeploymentId,
) -> ClosedBatch {
    batch_with(key, window, n, deployment, true)
}

/// A batch of `n` leaves signed by `key` for `window`; every third leaf is ticketed when
/// `ticketed`.
pub(crate) fn batch_with(
    key: &SigningKey,
    window: WindowId,
    n: u64,
    deployment: DeploymentId,
    ticketed: bool,
) -> ClosedBatch {
    let len = WindowLen::new(WINDOW_SECS).unwrap();
    let start = window.start_ms(len).unwrap();
    let leaves = (0..n)
        .map(|i| Leaf {
            timestamp_ms: start + i % 1000,
            transport: Transport::Udp,
            qtype: 1,
            rcode_class: RcodeClass::NoError,
            work_class: WorkClass::CacheHit,
            flags: LeafFlags {
                cache_hit: true,
                ..LeafFlags::default()
            },
            latency: LatencyBucket::from_millis(3),
            response_bytes: 100,
            name_hash: [u8::try_from(i * 37 % 256).unwrap(); 16],
            ticket: if ticketed && i % 3 == 0 {
                [0xa0 | u8::try_from(i % 9).unwrap(); 16]
            } else {
                [0; 16]
            },
            response_summary_hash: [1; 16],
            repeat: 0,
        })
        .collect();
    ClosedBatch::seal(
        &BatchHeader::new(
            deployment,
            BackendId::new("edge-ingress").unwrap(),
            len,
            window,
        ),
        leaves,
        NameKey([9; 32]).commitment(),
        window.end_ms(len).unwrap() - 1,
        key,
    )
    .unwrap()
}

/// One HTTP/1.1 exchange (`Connection: close`): the status and the body.
pub(crate) fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (u16, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).unwrap();
    // The server may answer (413) before reading a large body: a write error is fine then.
    let _ = s.write_all(body);
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    let text = String::from_utf8_lossy(&out).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map_or(String::new(), |(_, b)| b.to_owned());
    (status, body)
}

/// Polls `f` every 50 ms until it returns `Some`, for at most `secs` seconds.
pub(crate) fn wait_for<T>(secs: u64, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A watcher configuration for tests: loopback ephemeral ports, SQLite in `dir`, fast loops,
/// audits and probes off unless the test turns them on.
pub(crate) fn config(dir: &Path, key_file: &Path) -> tolldns_watcher::config::Config {
    let mut c = tolldns_watcher::config::Config {
        data_dir: dir.join("data"),
        ..Default::default()
    };
    c.identity.key_file = Some(key_file.to_owned());
    c.api.listen = "127.0.0.1:0".parse().unwrap();
    c.metrics.listen = "127.0.0.1:0".parse().unwrap();
    c.chain.slot_poll_ms = 50;
    c.chain.registry_refresh_secs = 1;
    c.deployment.window_secs = WINDOW_SECS;
    c.audit.enabled = false;
    c.audit.interval_ms = 100;
    c.probe.enabled = false;
    c.settle.report_after_slots = 2;
    c.settle.interval_ms = 100;
    c
}
