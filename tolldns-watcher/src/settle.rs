//! Epoch close and settlement.
//!
//! Epoch `e` (the score program's epoch length) is closed once the slot is
//! `settle.report_after_slots` past its end and every accepted batch of it has a final audit
//! and every probe ticket a final lookup, or at the latest `settle.deadline_margin_slots`
//! before its reporting deadline: its stats are computed from the stored rows
//! ([`crate::stats`]) and published ([`crate::publish`]) in one store transaction, which also
//! moves the closed-epoch cursor, so a restart never closes an epoch twice.
//!
//! Then each reported miner's stats are sent to the score program (`report`) while the
//! reporting window is open (K-of-N: the program scores the median of the watchers'
//! reports); a program refusal is stored as `failed` with its reason, a transport error is
//! retried. Finalization (permissionless) is sent once an epoch's reporting deadline passed,
//! and once the program fixed an epoch's pool the published score input is republished with
//! that pool.

use std::collections::BTreeSet;

use ed25519_dalek::SigningKey;
use tolldns_chain::{Chain, ChainError, MinerScoreConfig, Pubkey, ReportedStats};

use crate::config::Config;
use crate::metrics::{Metrics, set_gauge};
use crate::publish::CLOSED_CURSOR;
use crate::registry::Snapshot;
use crate::stats::{ChainFacts, EpochRows};
use crate::store::{AuditStatus, EpochReport, ReportStatus, Store, StoreError, TicketStatus};

/// How many closed epochs back reports and pools are looked after.
pub const SETTLE_LOOKBACK: u64 = 4;

/// Why a settlement step failed (retried on the next tick).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SettleError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A chain read failed.
    #[error(transparent)]
    Chain(#[from] ChainError),
}

/// What one settlement tick works with.
#[derive(Debug)]
pub struct Context<'a, C> {
    /// The configuration.
    pub config: &'a Config,
    /// The chain.
    pub chain: &'a C,
    /// The store.
    pub store: &'a Store,
    /// The watcher key (reports and finalization).
    pub key: &'a SigningKey,
    /// The watcher's public key, base58.
    pub watcher: &'a str,
    /// The registry snapshot.
    pub snap: &'a Snapshot,
    /// The current slot.
    pub slot: u64,
    /// Metrics.
    pub metrics: &'a Metrics,
    /// The ingest lock, held while an epoch's rows are read and its close written.
    pub ingest_lock: &'a tokio::sync::Mutex<()>,
}

/// The settlement loop's memory (what it already did in this run).
#[derive(Debug, Default)]
pub struct Settler {
    finalized: Option<u64>,
    pools: BTreeSet<u64>,
    not_a_watcher_warned: bool,
}

/// Reads a report's stats back from its stored JSON.
pub fn reported_stats(stats_json: &str) -> Option<ReportedStats> {
    let v: serde_json::Value = serde_json::from_str(stats_json).ok()?;
    let u = |k: &str| v.get(k).and_then(serde_json::Value::as_u64);
    Some(ReportedStats {
        aggregates_submitted: u32::try_from(u("aggregates_submitted")?).ok()?,
        unique_name_count: u32::try_from(u("unique_name_count")?).ok()?,
        unique_receipt_count: u32::try_from(u("unique_receipt_count")?).ok()?,
        first_submit_slot: u("first_submit_slot")?,
        last_submit_slot: u("last_submit_slot")?,
        uptime_score: u16::try_from(u("uptime_score")?).ok()?,
        correctness_score: u16::try_from(u("correctness_score")?).ok()?,
        dominance_share_bps: u16::try_from(u("dominance_share_bps")?).ok()?,
    })
}

/// Closes epoch `epoch` now: reads its rows, computes and publishes. Returns the address of
/// the score input.
///
/// # Errors
///
/// Store or chain errors (nothing is written then).
pub async fn close_epoch<C: Chain>(
    ctx: &Context<'_, C>,
    score: &MinerScoreConfig,
    epoch: u64,
) -> Result<[u8; 32], SettleError> {
    let params = score.params_for(epoch);
    let pool = match ctx.chain.epoch_totals(epoch).await? {
        Some(t) if t.finalized => t.reward_pool,
        _ => params.base_reward_per_epoch,
    };
    // No batch of the epoch is stored between this read and the close's write: every later
    // batch arrives at a later slot, in a later epoch.
    let _serial = ctx.ingest_lock.lock().await;
    let rows = load_rows(ctx.store, epoch).await?;
    let config = params.score.to_score_config();
    let mut miners: Vec<Pubkey> = ctx.snap.active_miners().map(|o| o.wallet).collect();
    miners.extend(score.miners.iter().map(|m| m.key));
    miners.sort();
    miners.dedup();
    let results = crate::stats::compute(&rows, &miners, ctx.config.audit.enabled, |w| ChainFacts {
        stake_weight: ctx.snap.stake_weight(w, epoch),
        min_stake_weight: params.score.min_miner_stake_weight,
        allowlisted: score.is_miner_for(w, epoch),
    });
    let p = crate::publish::build(
        epoch,
        ctx.watcher,
        &config,
        pool,
        &rows,
        &results,
        crate::now_ms(),
    );
    ctx.store.write_all(&p.writes).await?;
    for k in &p.kinds {
        ctx.metrics.object(k);
    }
    for r in &results {
        for g in &r.gate {
            ctx.metrics.gate(g.name());
        }
    }
    set_gauge(&ctx.metrics.epoch_closed, epoch);
    tracing::info!(
        epoch,
        miners = results.len(),
        reported = results.iter().filter(|r| r.reported()).count(),
        inputs = %hex::encode(p.inputs),
        "epoch closed and published"
    );
    Ok(p.inputs)
}

/// The stored rows of an epoch.
///
/// # Errors
///
/// The store's error.
pub async fn load_rows(store: &Store, epoch: u64) -> Result<EpochRows, StoreError> {
    Ok(EpochRows {
        batches: store.batches_in_epoch(epoch).await?,
        audits: store.audits_in_epoch(epoch).await?,
        probes: store.probes_in_epoch(epoch).await?,
        tickets: store.probe_tickets_in_epoch(epoch).await?,
        peer_tickets: store.peer_tickets_in_epoch(epoch).await?,
        previous_tickets: match epoch.checked_sub(1) {
            Some(p) => store.probe_tickets_in_epoch(p).await?,
            None => Vec::new(),
        },
        previous_probes: match epoch.checked_sub(1) {
            Some(p) => store.probes_in_epoch(p).await?,
            None => Vec::new(),
        },
        previous_peer_tickets: match epoch.checked_sub(1) {
            Some(p) => store.peer_tickets_in_epoch(p).await?,
            None => Vec::new(),
        },
    })
}

/// Whether every accepted batch of the epoch has a final audit and every probe ticket (own
/// and peers') a final lookup.
fn settled(rows: &EpochRows, audits_enabled: bool) -> bool {
    let audited = !audits_enabled
        || rows
            .batches
            .iter()
            .filter(|b| b.verdict.is_accepted())
            .all(|b| {
                rows.audits
                    .iter()
                    .any(|a| a.batch_id == b.batch_id && a.status != AuditStatus::Error)
            });
    audited
        && rows.tickets.iter().all(|t| t.status != TicketStatus::Open)
        && rows
            .peer_tickets
            .iter()
            .all(|t| t.status != TicketStatus::Open)
}

/// The cursor that records that peer `watcher`'s probe tickets of `epoch` were fetched
/// (1) or given up on (2).
pub fn peer_cursor(epoch: u64, watcher: &Pubkey) -> String {
    format!("peers.{epoch}.{watcher}")
}

/// Whether every peer's list of `epoch` was fetched or given up on
/// ([`crate::node`]'s peer loop gives up `settle.peer_wait_slots` after the epoch's end).
async fn peers_done<C>(ctx: &Context<'_, C>, epoch: u64) -> Result<bool, StoreError> {
    let me = tolldns_chain::pubkey_of(ctx.key);
    for (peer, _) in ctx.snap.peer_watchers(&me, epoch) {
        if ctx
            .store
            .get_cursor(&peer_cursor(epoch, &peer))
            .await?
            .is_none()
        {
            return Ok(false);
        }
    }
    Ok(true)
}

impl Settler {
    /// One tick: close what can be closed, report, finalize, republish pools.
    ///
    /// # Errors
    ///
    /// The first failing store or chain step (the rest waits for the next tick).
    pub async fn tick<C: Chain>(&mut self, ctx: &Context<'_, C>) -> Result<(), SettleError> {
        let Some(score) = ctx.snap.score.as_ref() else {
            return Ok(());
        };
        let current = score.epoch_of(ctx.slot);
        let next = match ctx.store.get_cursor(CLOSED_CURSOR).await? {
            Some(n) => n,
            None => {
                ctx.store.set_cursor(CLOSED_CURSOR, current).await?;
                current
            }
        };
        let mut next = next;
        while next < current {
            let end = score.epoch_end_slot(next).unwrap_or(u64::MAX);
            let deadline = score.reporting_deadline_slot(next).unwrap_or(u64::MAX);
            if ctx.slot < end.saturating_add(ctx.config.settle.report_after_slots) {
                break;
            }
            let late = ctx
                .slot
                .saturating_add(ctx.config.settle.deadline_margin_slots.saturating_mul(2))
                >= deadline;
            if !late {
                let rows = load_rows(ctx.store, next).await?;
                if !settled(&rows, ctx.config.audit.enabled) || !peers_done(ctx, next).await? {
                    break;
                }
            }
            close_epoch(ctx, score, next).await?;
            next += 1;
        }
        if ctx.config.settle.enabled {
            self.report(ctx, score, next).await?;
        }
        if ctx.config.settle.finalize {
            self.finalize(ctx, score).await;
        }
        self.pools(ctx, next).await?;
        Ok(())
    }

    async fn report<C: Chain>(
        &mut self,
        ctx: &Context<'_, C>,
        score: &MinerScoreConfig,
        next: u64,
    ) -> Result<(), SettleError> {
        let me = tolldns_chain::pubkey_of(ctx.key);
        if !score.is_watcher(&me, score.epoch_of(ctx.slot)) {
            if !std::mem::replace(&mut self.not_a_watcher_warned, true) {
                tracing::warn!(watcher = %me, "this key is not on the score program's watcher list: stats are published but not reported");
            }
            return Ok(());
        }
        self.not_a_watcher_warned = false;
        for epoch in next.saturating_sub(SETTLE_LOOKBACK)..next {
            let deadline = score.reporting_deadline_slot(epoch).unwrap_or(0);
            if ctx
                .slot
                .saturating_add(ctx.config.settle.deadline_margin_slots)
                >= deadline
            {
                continue;
            }
            for mut row in ctx.store.epoch_reports(epoch).await? {
                if row.status != ReportStatus::Pending {
                    continue;
                }
                let Some(stats) = reported_stats(&row.stats_json) else {
                    continue;
                };
                let miner = Pubkey::new_from_array(row.wallet);
                match ctx.chain.report(ctx.key, epoch, &miner, &stats).await {
                    Ok(sig) => {
                        ctx.metrics.report("submitted");
                        row.status = ReportStatus::Confirmed;
                        row.tx_signature = <[u8; 64]>::try_from(sig.as_ref()).ok();
                        row.reason = None;
                        tracing::info!(epoch, miner = %miner, tx = %sig, "report confirmed");
                    }
                    Err(e @ ChainError::Program { .. }) => {
                        ctx.metrics.report("refused");
                        tracing::warn!(epoch, miner = %miner, error = %e, "report refused by the program");
                        row.status = ReportStatus::Failed;
                        row.reason = Some(e.to_string());
                    }
                    Err(e) => {
                        ctx.metrics.report("error");
                        ctx.metrics.chain_error("report");
                        tracing::warn!(epoch, miner = %miner, error = %e, "report not sent; retrying");
                        continue;
                    }
                }
                row.updated_ms = crate::now_ms();
                store_report(ctx.store, &row).await?;
            }
        }
        Ok(())
    }

    async fn finalize<C: Chain>(&mut self, ctx: &Context<'_, C>, score: &MinerScoreConfig) {
        let f = score.next_epoch_to_finalize.max(score.timing.first_epoch);
        if self.finalized.is_some_and(|done| done >= f) {
            return;
        }
        let Some(deadline) = score.reporting_deadline_slot(f) else {
            return;
        };
        if ctx.slot < deadline {
            return;
        }
        match ctx.chain.finalize(ctx.key, f).await {
            Ok(sig) => {
                ctx.metrics.finalize("submitted");
                tracing::info!(epoch = f, tx = %sig, "epoch finalized");
                self.finalized = Some(f);
            }
            Err(e @ ChainError::Program { .. }) => {
                ctx.metrics.finalize("refused");
                // Another watcher finalized it first (EpochOutOfOrder / EpochFinalized): the
                // next registry refresh shows the new next epoch.
                tracing::info!(epoch = f, error = %e, "finalize refused");
                self.finalized = Some(f);
            }
            Err(e) => {
                ctx.metrics.finalize("error");
                ctx.metrics.chain_error("finalize");
                tracing::warn!(epoch = f, error = %e, "finalize not sent; retrying");
            }
        }
    }

    async fn pools<C: Chain>(
        &mut self,
        ctx: &Context<'_, C>,
        next: u64,
    ) -> Result<(), SettleError> {
        for epoch in next.saturating_sub(SETTLE_LOOKBACK)..next {
            if self.pools.contains(&epoch) {
                continue;
            }
            if let Some(t) = ctx.chain.epoch_totals(epoch).await? {
                if t.finalized {
                    if crate::publish::republish_pool(ctx.store, epoch, t.reward_pool).await? {
                        ctx.metrics.object("inputs");
                        tracing::info!(
                            epoch,
                            pool = t.reward_pool,
                            "score input republished with the finalized pool"
                        );
                    }
                    self.pools.insert(epoch);
                }
            }
        }
        Ok(())
    }
}

async fn store_report(store: &Store, row: &EpochReport) -> Result<(), StoreError> {
    store.upsert_epoch_report(row).await.map(|_| ())
}
