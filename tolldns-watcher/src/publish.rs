//! Publication: every input behind an epoch's numbers as content-addressed JSON objects
//! (the sha256 of the bytes names them), and the epoch's score input document.
//!
//! At the close of epoch `e` the watcher publishes, in one store transaction:
//!
//! - every receipt of the epoch, as received (`receipt`);
//! - every audit of those receipts: seed slot and hash, k, outcome, reason, evidence
//!   (`audit`);
//! - per miner, its probes and probe tickets (`probes`), and its epoch record: gate reasons,
//!   counts, stats, and the addresses of its receipts, audits and probes (`miner_epoch`);
//! - the input of `tolldns score epoch --input` (`inputs`): `{"config", "epoch_id", "pool",
//!   "miners": [{"miner", MinerStats fields}]}` with the reported miners only;
//! - the epoch report (`epoch_report`): per miner, reported or withheld with the reasons, and
//!   the addresses above.
//!
//! JSON objects are written with sorted keys, so the same content gives the same address.
//!
//! Once an epoch ended, the watcher also serves its probe tickets of the epoch
//! (`GET /v1/epochs/{e}/probe-tickets`, [`probe_tickets_json`]) so that the other watchers
//! look them up at the miners and do not count them as client work; the lookups it makes of
//! the other watchers' tickets are published with each miner's probes (`peer_tickets`).

use serde_json::{Value, json};
use tolldns_score::ScoreConfig;

use crate::stats::{EpochRows, MinerResult};
use crate::store::{EpochReport, ReportStatus, Store, StoreError, Write, object_hash};

/// The most probe tickets one list (served or fetched) holds.
pub const MAX_PEER_TICKETS: usize = 100_000;

/// The largest probe-ticket list fetched from another watcher, in bytes.
pub const MAX_PEER_TICKETS_BYTES: usize = 16 << 20;

/// The watcher's probe tickets of `epoch` (the tickets of every probe it sent in the epoch,
/// answered or not), as served to the other watchers:
/// `{"watcher", "epoch", "tickets": [{"miner", "ticket", "sent_ms"}]}` (at most
/// [`MAX_PEER_TICKETS`]; `sent_ms` is the first probe sent under the ticket).
///
/// # Errors
///
/// The store's error.
pub async fn probe_tickets_json(
    store: &Store,
    watcher: &str,
    epoch: u64,
) -> Result<Value, StoreError> {
    // Every probe sent under a ticket, answered or not (a miner may have recorded the leaf
    // of a probe the watcher gave up on): the first send per (miner, ticket).
    let probes = store.probes_in_epoch(epoch).await?;
    let mut sent: std::collections::BTreeMap<([u8; 32], [u8; 16]), u64> =
        std::collections::BTreeMap::new();
    for p in probes.iter().filter(|p| p.ticket != [0u8; 16]) {
        let e = sent.entry((p.wallet, p.ticket)).or_insert(p.sent_ms);
        *e = (*e).min(p.sent_ms);
    }
    // Probes whose outcome was never recorded (the watcher stopped while they were in
    // flight): their ticket was written ahead, with the send time.
    for t in store.probe_tickets_in_epoch(epoch).await? {
        if t.reason.as_deref() == Some(crate::node::INTERRUPTED) {
            sent.entry((t.wallet, t.ticket)).or_insert(t.updated_ms);
        }
    }
    let list: Vec<Value> = sent
        .iter()
        .take(MAX_PEER_TICKETS)
        .map(|((wallet, ticket), ms)| {
            json!({
                "miner": bs58::encode(wallet).into_string(),
                "ticket": hex::encode(ticket),
                "sent_ms": ms,
            })
        })
        .collect();
    Ok(json!({ "watcher": watcher, "epoch": epoch, "tickets": list }))
}

/// One entry of another watcher's probe-ticket list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerTicket {
    /// The probed miner's wallet.
    pub miner: [u8; 32],
    /// The ticket id.
    pub ticket: [u8; 16],
    /// When the peer says it sent the probe, Unix ms.
    pub sent_ms: u64,
}

/// Why another watcher's probe-ticket list is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("probe-ticket list refused: {0}")]
pub struct PeerListError(pub String);

/// Parses another watcher's probe-ticket list, checking that it is `watcher`'s list of
/// `epoch` and holds at most [`MAX_PEER_TICKETS`] entries.
///
/// # Errors
///
/// [`PeerListError`] naming what is wrong.
pub fn parse_probe_tickets(
    bytes: &[u8],
    watcher: &str,
    epoch: u64,
) -> Result<Vec<PeerTicket>, PeerListError> {
    let bad = |m: String| PeerListError(m);
    let v: Value = serde_json::from_slice(bytes).map_err(|e| bad(format!("not JSON: {e}")))?;
    if v.get("watcher").and_then(Value::as_str) != Some(watcher) {
        return Err(bad(format!("\"watcher\" is not {watcher}")));
    }
    if v.get("epoch").and_then(Value::as_u64) != Some(epoch) {
        return Err(bad(format!("\"epoch\" is not {epoch}")));
    }
    let list = v
        .get("tickets")
        .and_then(Value::as_array)
        .ok_or_else(|| bad("no \"tickets\" array".to_owned()))?;
    if list.len() > MAX_PEER_TICKETS {
        return Err(bad(format!(
            "{} tickets, more than {MAX_PEER_TICKETS}",
            list.len()
        )));
    }
    list.iter()
        .enumerate()
        .map(|(i, t)| {
            let miner = t
                .get("miner")
                .and_then(Value::as_str)
                .and_then(|m| bs58::decode(m).into_vec().ok())
                .and_then(|m| <[u8; 32]>::try_from(m).ok())
                .ok_or_else(|| bad(format!("tickets[{i}].miner is not a base58 key")))?;
            let mut ticket = [0u8; 16];
            t.get("ticket")
                .and_then(Value::as_str)
                .and_then(|h| hex::decode_to_slice(h, &mut ticket).ok())
                .ok_or_else(|| bad(format!("tickets[{i}].ticket is not 32 hex digits")))?;
            let sent_ms = t
                .get("sent_ms")
                .and_then(Value::as_u64)
                .ok_or_else(|| bad(format!("tickets[{i}].sent_ms is not a number")))?;
            Ok(PeerTicket {
                miner,
                ticket,
                sent_ms,
            })
        })
        .collect()
}

/// The cursor holding the next epoch to close.
pub const CLOSED_CURSOR: &str = "epoch.next_to_close";

/// The bytes of a JSON object (keys sorted).
pub fn to_bytes(v: &Value) -> Vec<u8> {
    serde_json::to_vec(v).unwrap_or_default()
}

/// Cursor names holding the address of an epoch's `which` object (`inputs` or `report`),
/// 32 bits per cursor (cursors hold integers).
fn hash_cursors(epoch: u64, which: &str) -> Vec<String> {
    (0..8)
        .map(|i| format!("epoch.{epoch}.{which}.{i}"))
        .collect()
}

fn hash_writes(epoch: u64, which: &str, hash: &[u8; 32]) -> Vec<Write> {
    hash_cursors(epoch, which)
        .into_iter()
        .zip(hash.chunks(4))
        .map(|(name, c)| Write::Cursor {
            name,
            value: u64::from(u32::from_be_bytes([c[0], c[1], c[2], c[3]])),
        })
        .collect()
}

async fn read_hash(store: &Store, epoch: u64, which: &str) -> Result<Option<[u8; 32]>, StoreError> {
    let mut hash = [0u8; 32];
    for (i, name) in hash_cursors(epoch, which).iter().enumerate() {
        let Some(v) = store.get_cursor(name).await? else {
            return Ok(None);
        };
        let part = u32::try_from(v).unwrap_or(0).to_be_bytes();
        hash[i * 4..i * 4 + 4].copy_from_slice(&part);
    }
    Ok(Some(hash))
}

async fn read_object(
    store: &Store,
    epoch: u64,
    which: &str,
) -> Result<Option<Vec<u8>>, StoreError> {
    let Some(hash) = read_hash(store, epoch, which).await? else {
        return Ok(None);
    };
    Ok(store.object(&hash).await?.map(|o| o.bytes))
}

/// The published score input of `epoch`, if closed.
///
/// # Errors
///
/// The store's error.
pub async fn epoch_inputs(store: &Store, epoch: u64) -> Result<Option<Vec<u8>>, StoreError> {
    read_object(store, epoch, "inputs").await
}

/// The address of the published score input of `epoch`, if closed.
///
/// # Errors
///
/// The store's error.
pub async fn epoch_inputs_hash(store: &Store, epoch: u64) -> Result<Option<[u8; 32]>, StoreError> {
    read_hash(store, epoch, "inputs").await
}

/// The epoch report of `epoch` (the published object), with the settlement state of each
/// miner's report added under `"settlement"`.
///
/// # Errors
///
/// The store's error.
pub async fn epoch_report(store: &Store, epoch: u64) -> Result<Option<Vec<u8>>, StoreError> {
    let Some(bytes) = read_object(store, epoch, "report").await? else {
        return Ok(None);
    };
    let mut v: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    let hash = read_hash(store, epoch, "report").await?.unwrap_or_default();
    let rows = store.epoch_reports(epoch).await?;
    let settlement: Vec<Value> = rows
        .iter()
        .map(|r| {
            json!({
                "miner": bs58::encode(r.wallet).into_string(),
                "status": report_status_name(r.status),
                "reason": r.reason,
                "tx_signature": r.tx_signature.map(|s| bs58::encode(s).into_string()),
            })
        })
        .collect();
    if let Value::Object(m) = &mut v {
        m.insert("object".to_owned(), Value::String(hex::encode(hash)));
        m.insert("settlement".to_owned(), Value::Array(settlement));
    }
    Ok(Some(to_bytes(&v)))
}

/// The name of a report status.
pub const fn report_status_name(s: ReportStatus) -> &'static str {
    match s {
        ReportStatus::Pending => "pending",
        ReportStatus::Submitted => "submitted",
        ReportStatus::Confirmed => "confirmed",
        ReportStatus::Failed => "failed",
        ReportStatus::Withheld => "withheld",
    }
}

/// The `config` object of a score input.
pub fn config_json(c: &ScoreConfig) -> Value {
    json!({
        "epoch_len_slots": c.epoch_len_slots,
        "alpha_correctness_bps": c.alpha_correctness_bps,
        "alpha_diversity_bps": c.alpha_diversity_bps,
        "alpha_timeliness_bps": c.alpha_timeliness_bps,
        "alpha_uptime_bps": c.alpha_uptime_bps,
        "centralization_penalty_bps": c.centralization_penalty_bps,
        "dominance_threshold_bps": c.dominance_threshold_bps,
        "diversity_target": c.diversity_target,
        "per_miner_epoch_cap": c.per_miner_epoch_cap,
        "min_miner_stake_weight": c.min_miner_stake_weight,
    })
}

/// The score input document (`tolldns score epoch --input`): the reported miners only.
pub fn inputs_json(config: &ScoreConfig, epoch: u64, pool: u64, results: &[MinerResult]) -> Value {
    let miners: Vec<Value> = results
        .iter()
        .filter(|r| r.reported())
        .map(|r| {
            let s = &r.stats;
            json!({
                "miner": r.miner,
                "stake_weight": s.stake_weight,
                "unique_name_count": s.unique_name_count,
                "first_submit_slot": s.first_submit_slot,
                "uptime_score": s.uptime_score,
                "correctness_score": s.correctness_score,
                "dominance_share_bps": s.dominance_share_bps,
            })
        })
        .collect();
    json!({
        "config": config_json(config),
        "epoch_id": epoch,
        "pool": pool,
        "miners": miners,
    })
}

fn stats_value(r: &MinerResult) -> Value {
    let s = &r.stats;
    let p = &r.report;
    json!({
        "stake_weight": s.stake_weight,
        "unique_name_count": s.unique_name_count,
        "first_submit_slot": s.first_submit_slot,
        "last_submit_slot": p.last_submit_slot,
        "uptime_score": s.uptime_score,
        "correctness_score": s.correctness_score,
        "dominance_share_bps": s.dominance_share_bps,
        "aggregates_submitted": p.aggregates_submitted,
        "unique_receipt_count": p.unique_receipt_count,
    })
}

/// Everything one epoch close writes.
#[derive(Debug, Default)]
pub struct Publication {
    /// The writes, for one [`Store::write_all`].
    pub writes: Vec<Write>,
    /// The address of the score input.
    pub inputs: [u8; 32],
    /// The address of the epoch report.
    pub report: [u8; 32],
    /// Objects by kind (for metrics).
    pub kinds: Vec<&'static str>,
}

impl Publication {
    fn object(&mut self, kind: &'static str, v: &Value) -> [u8; 32] {
        self.raw(kind, to_bytes(v))
    }

    fn raw(&mut self, kind: &'static str, bytes: Vec<u8>) -> [u8; 32] {
        let hash = object_hash(&bytes);
        self.writes.push(Write::Object {
            kind: kind.to_owned(),
            bytes,
        });
        self.kinds.push(kind);
        hash
    }
}

/// Builds the publication of an epoch close: objects, the epoch report rows (`pending` for
/// reported miners, `withheld` with the reasons for the others), the cursors naming the
/// input and the report, and the closed-epoch cursor.
#[allow(clippy::too_many_arguments)]
pub fn build(
    epoch: u64,
    watcher: &str,
    config: &ScoreConfig,
    pool: u64,
    rows: &EpochRows,
    results: &[MinerResult],
    now_ms: u64,
) -> Publication {
    let mut p = Publication::default();
    let mut audit_hashes = std::collections::BTreeMap::new();
    for a in &rows.audits {
        let evidence: Value = serde_json::from_str(&a.evidence_json).unwrap_or(Value::Null);
        let h = p.object(
            "audit",
            &json!({
                "batch_id": hex::encode(a.batch_id),
                "seed_slot": a.seed_slot,
                "seed_hash": hex::encode(a.seed_hash),
                "k": a.k,
                "outcome": match a.status {
                    crate::store::AuditStatus::Passed => "passed",
                    crate::store::AuditStatus::Failed => "failed",
                    crate::store::AuditStatus::Error => "error",
                },
                "reason": a.reason,
                "evidence": evidence,
                "audited_ms": a.audited_ms,
            }),
        );
        audit_hashes.insert(a.batch_id, h);
    }
    let mut miner_objects = Vec::new();
    for r in results {
        let wallet = bs58::decode(&r.miner).into_vec().unwrap_or_default();
        let mut receipts = Vec::new();
        for b in rows
            .batches
            .iter()
            .filter(|b| b.wallet.is_some_and(|w| w[..] == wallet[..]))
        {
            let h = p.raw("receipt", b.receipt_json.clone().into_bytes());
            receipts.push(json!({
                "batch_id": hex::encode(b.batch_id),
                "object": hex::encode(h),
                "arrival_ms": b.arrival_ms,
                "arrival_slot": b.arrival_slot,
                "verdict": if b.verdict.is_accepted() { "accepted" } else { "refused" },
                "reason": match &b.verdict {
                    crate::store::Verdict::Refused { reason } => Some(reason.clone()),
                    crate::store::Verdict::Accepted => None,
                },
                "audit": audit_hashes.get(&b.batch_id).map(hex::encode),
            }));
        }
        let probes: Vec<Value> = rows
            .probes
            .iter()
            .filter(|x| x.wallet[..] == wallet[..])
            .map(|x| {
                json!({
                    "probe_id": hex::encode(x.probe_id),
                    "transport": crate::registry::transport::name(x.transport),
                    "sent_ms": x.sent_ms,
                    "send_slot": x.send_slot,
                    "latency_us": x.latency_us,
                    "outcome": format!("{:?}", x.status).to_lowercase(),
                    "ticket": hex::encode(x.ticket),
                    "qname": x.qname,
                    "evidence": serde_json::from_str::<Value>(&x.evidence_json).unwrap_or(Value::Null),
                })
            })
            .collect();
        let own_tickets = |list: &[crate::store::ProbeTicketRecord]| -> Vec<Value> {
            list.iter()
                .filter(|t| t.wallet[..] == wallet[..])
                .map(|t| {
                    let times = rows.probe_times(&t.ticket);
                    json!({
                        "ticket": hex::encode(t.ticket),
                        "sent_ms": times.map(|x| x.0),
                        "answered_ms": times.map(|x| x.1),
                        "probes_sent": t.probes_sent,
                        "leaves_found": t.leaves_found,
                        "status": format!("{:?}", t.status).to_lowercase(),
                        "reason": t.reason,
                    })
                })
                .collect()
        };
        let peer_tickets = |list: &[crate::store::PeerTicketRecord]| -> Vec<Value> {
            list.iter()
                .filter(|t| t.wallet[..] == wallet[..])
                .map(|t| {
                    json!({
                        "watcher": bs58::encode(t.watcher).into_string(),
                        "ticket": hex::encode(t.ticket),
                        "sent_ms": t.sent_ms,
                        "leaves_found": t.leaves_found,
                        "status": format!("{:?}", t.status).to_lowercase(),
                        "reason": t.reason,
                    })
                })
                .collect()
        };
        let probes_hash = p.object(
            "probes",
            &json!({
                "miner": r.miner,
                "epoch": epoch,
                "probes": probes,
                "tickets": own_tickets(&rows.tickets),
                "peer_tickets": peer_tickets(&rows.peer_tickets),
                "previous_epoch_tickets": own_tickets(&rows.previous_tickets),
                "previous_epoch_peer_tickets": peer_tickets(&rows.previous_peer_tickets),
            }),
        );
        let gate: Vec<&str> = r.gate.iter().map(|g| g.name()).collect();
        let miner_hash = p.object(
            "miner_epoch",
            &json!({
                "miner": r.miner,
                "epoch": epoch,
                "watcher": watcher,
                "reported": r.reported(),
                "gate": gate,
                "counts": r.counts,
                "stats": stats_value(r),
                "receipts": receipts,
                "probes": hex::encode(probes_hash),
            }),
        );
        miner_objects.push((r, miner_hash));
    }
    let inputs = inputs_json(config, epoch, pool, results);
    let inputs_hash = p.object("inputs", &inputs);
    let miners: Vec<Value> = miner_objects
        .iter()
        .map(|(r, h)| {
            json!({
                "miner": r.miner,
                "verdict": if r.reported() { "reported" } else { "withheld" },
                "reasons": r.gate.iter().map(|g| g.name()).collect::<Vec<_>>(),
                "stats": stats_value(r),
                "object": hex::encode(h),
            })
        })
        .collect();
    let report_hash = p.object(
        "epoch_report",
        &json!({
            "epoch": epoch,
            "watcher": watcher,
            "inputs": hex::encode(inputs_hash),
            "pool": pool,
            "config": config_json(config),
            "miners": miners,
        }),
    );
    for (r, _) in &miner_objects {
        let Ok(wallet) =
            <[u8; 32]>::try_from(bs58::decode(&r.miner).into_vec().unwrap_or_default())
        else {
            continue;
        };
        let reasons: Vec<&str> = r.gate.iter().map(|g| g.name()).collect();
        p.writes.push(Write::EpochReport(EpochReport {
            epoch,
            wallet,
            stats_json: stats_value(r).to_string(),
            inputs_hash: Some(inputs_hash),
            tx_signature: None,
            status: if r.reported() {
                ReportStatus::Pending
            } else {
                ReportStatus::Withheld
            },
            reason: (!reasons.is_empty()).then(|| reasons.join(",")),
            updated_ms: now_ms,
        }));
    }
    p.writes.extend(hash_writes(epoch, "inputs", &inputs_hash));
    p.writes.extend(hash_writes(epoch, "report", &report_hash));
    p.writes.push(Write::Cursor {
        name: CLOSED_CURSOR.to_owned(),
        value: epoch.saturating_add(1),
    });
    p.inputs = inputs_hash;
    p.report = report_hash;
    p
}

/// Republishes the score input of a closed epoch with another pool (once the program
/// finalized the epoch and fixed its pool): a new object, and the cursors now name it.
///
/// # Errors
///
/// The store's error.
pub async fn republish_pool(store: &Store, epoch: u64, pool: u64) -> Result<bool, StoreError> {
    let Some(bytes) = epoch_inputs(store, epoch).await? else {
        return Ok(false);
    };
    let Ok(mut v) = serde_json::from_slice::<Value>(&bytes) else {
        return Ok(false);
    };
    if v.get("pool").and_then(Value::as_u64) == Some(pool) {
        return Ok(false);
    }
    if let Value::Object(m) = &mut v {
        m.insert("pool".to_owned(), json!(pool));
    }
    let bytes = to_bytes(&v);
    let hash = object_hash(&bytes);
    let mut writes = vec![Write::Object {
        kind: "inputs".to_owned(),
        bytes,
    }];
    writes.extend(hash_writes(epoch, "inputs", &hash));
    store.write_all(&writes).await?;
    Ok(true)
}
