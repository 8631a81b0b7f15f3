//! Epoch stats per miner wallet, derived only from stored rows (batches with their verdicts,
//! audits, probes, probe tickets), so that recomputing them after a restart gives the same
//! numbers and nothing is counted twice.
//!
//! The gate: a miner is not reported for an epoch (and so earns nothing) when in that epoch
//! any receipt it signed was refused at ingest by a rule that shows misbehaviour (not one of
//! [`HARMLESS_REFUSALS`]), any audit of its batches failed, an accepted
//! batch was never audited, any probe got a wrong answer, a probe ticket's leaves were
//! missing from its receipts, its accepted receipts carry no client ticketed leaf (below), or
//! it is not staked or not on the score program's miner list.
//!
//! Client ticketed leaves: the ticketed leaves of its accepted receipts, less the leaves this
//! watcher found under its own probe tickets, less the leaves this watcher found (by its own
//! lookups at the miner) under the other watchers' published probe tickets. Probes are not
//! client demand: with several watchers, each one's probes would otherwise pass for the
//! others' clients. A ticket listed by several sources is discounted once, and a peer's
//! ticket at most [`PEER_TICKET_MAX_LEAVES`] leaves. A ticket is discounted in the epoch of
//! the batch that holds its leaves: the epoch's accepted batches are the ones that arrived in
//! it, so the probes sent at the end of the previous epoch (their window's batch arrives after
//! the boundary) are discounted here, and a probe whose batch arrives in the next epoch is
//! discounted there. A probe's leaves are looked for in the batch whose window holds the send
//! time (or, for the watcher's own probes, the answer time).
//!
//! Reported stats:
//!
//! - `uptime_score = 10000 × probes answered / probes sent`;
//! - `correctness_score = 10000 × correct / checked` over probe answers and audited leaves;
//! - `unique_name_count` = the estimate of the merged distinct-name sketches of its accepted
//!   receipts, capped at their ticketed leaves;
//! - `first_submit_slot` / `last_submit_slot` = arrival slots of its first / last accepted
//!   receipt of the epoch;
//! - `dominance_share_bps = 10000 × its client ticketed leaves / all miners' client
//!   ticketed leaves` (accepted receipts, probes discounted as above);
//! - `stake_weight` is the chain's (the program reads it itself).

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;
use tolldns_chain::{Pubkey, ReportedStats};
use tolldns_receipts::{NameSketch, Receipt};
use tolldns_score::MinerStats;

use crate::store::{
    AuditRecord, AuditStatus, BatchRecord, PeerTicketRecord, ProbeRecord, ProbeStatus,
    ProbeTicketRecord, TicketStatus, Verdict,
};

/// How long after the watcher saw a probe's answer the miner's leaf may be stamped (the miner
/// records the leaf once the exchange is over): a probe's leaf is looked for, and its ticket
/// counted, up to this much after the answer.
pub const LEAF_SLACK_MS: u64 = 1_000;

/// The most leaves one peer's probe ticket discounts (a probe is one query; a peer listing
/// another client's ticket as its probe removes at most this much of that client's work).
pub const PEER_TICKET_MAX_LEAVES: u64 = 2;

/// Refusal rules that do not withhold a miner: they do not show misbehaviour, or a third
/// party can cause them with receipts the miner signed honestly (a receipt of another
/// deployment replayed here, a genuine receipt posted after its arrival bound, a receipt from
/// before the operator was staked). Such receipts simply do not count.
pub const HARMLESS_REFUSALS: &[&str] = &[
    "v1_not_accepted",
    "unregistered_operator",
    "operator_not_staked",
    "signature",
    "wrong_deployment",
    "window_len_not_deployment",
    "arrived_too_early",
    "arrived_too_late",
];

/// Whether a stored refusal reason (`rule: message`) withholds the miner.
pub fn refusal_gates(reason: &str) -> bool {
    let rule = reason.split(':').next().unwrap_or("").trim();
    !HARMLESS_REFUSALS.contains(&rule)
}

/// Why a miner is not reported for an epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum GateReason {
    /// One of its receipts was refused at ingest.
    ReceiptRefused,
    /// An audit of one of its batches failed.
    AuditFailed,
    /// One of its accepted batches has no completed audit.
    AuditIncomplete,
    /// A probe got a wrong answer.
    ProbeWrongAnswer,
    /// A probe ticket's leaves were missing from its receipts.
    ProbeTicketMissing,
    /// Its accepted receipts carry no client ticketed leaf (the watchers' probes
    /// discounted).
    NoTicketedWork,
    /// No accepted receipt in the epoch.
    NoReceipts,
    /// Its stake weight for the epoch is below the program's minimum.
    NotStaked,
    /// Not on the score program's miner list for the epoch.
    NotAllowlisted,
}

impl GateReason {
    /// The stable snake_case name.
    pub const fn name(self) -> &'static str {
        match self {
            Self::ReceiptRefused => "receipt_refused",
            Self::AuditFailed => "audit_failed",
            Self::AuditIncomplete => "audit_incomplete",
            Self::ProbeWrongAnswer => "probe_wrong_answer",
            Self::ProbeTicketMissing => "probe_ticket_missing",
            Self::NoTicketedWork => "no_ticketed_work",
            Self::NoReceipts => "no_receipts",
            Self::NotStaked => "not_staked",
            Self::NotAllowlisted => "not_allowlisted",
        }
    }
}

/// What the chain says about a miner for the epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChainFacts {
    /// Its stake weight for the epoch.
    pub stake_weight: u64,
    /// The smallest weight the program scores.
    pub min_stake_weight: u64,
    /// Whether it may be reported for the epoch.
    pub allowlisted: bool,
}

/// The counts behind one miner's stats.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    /// Accepted batches.
    pub accepted_batches: u64,
    /// Refused batches that withhold the miner.
    pub refused_batches: u64,
    /// Refused batches that only do not count ([`HARMLESS_REFUSALS`]).
    pub refused_not_counted: u64,
    /// Leaves of accepted batches.
    pub leaves: u64,
    /// Ticketed leaves of accepted batches.
    pub ticketed_leaves: u64,
    /// Leaves found under the watcher's own probe tickets.
    pub probe_leaves: u64,
    /// Leaves found (by this watcher's lookups) under other watchers' probe tickets.
    pub peer_probe_leaves: u64,
    /// Ticketed leaves less the probe leaves (own and peers'): the client work that earns
    /// and that dominance compares.
    pub client_ticketed_leaves: u64,
    /// Audits passed / failed; accepted batches without a final audit.
    pub audits_passed: u64,
    /// Audits failed.
    pub audits_failed: u64,
    /// Accepted batches without a passed or failed audit.
    pub audits_missing: u64,
    /// Leaves sampled by passed audits (checked and correct).
    pub audited_leaves_correct: u64,
    /// Leaves sampled by all final audits.
    pub audited_leaves: u64,
    /// Probes sent.
    pub probes_sent: u64,
    /// Probes answered (right or wrong).
    pub probes_answered: u64,
    /// Probe answers that matched the watcher's own resolution.
    pub probes_correct: u64,
    /// Probe answers that did not.
    pub probes_wrong: u64,
    /// Probe tickets whose leaves were missing.
    pub tickets_missing: u64,
}

/// One miner's epoch result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MinerResult {
    /// The miner's wallet (base58).
    pub miner: String,
    /// Why it is not reported (empty: reported).
    pub gate: Vec<GateReason>,
    /// The counts.
    pub counts: Counts,
    /// The stats the score program scores (also computed for withheld miners, for the
    /// record).
    #[serde(skip)]
    pub stats: MinerStats,
    /// The report sent to the program.
    #[serde(skip)]
    pub report: ReportedStats,
}

impl MinerResult {
    /// Whether the miner is reported.
    pub fn reported(&self) -> bool {
        self.gate.is_empty()
    }
}

/// The stored rows of one epoch.
#[derive(Debug, Clone, Default)]
pub struct EpochRows {
    /// Every batch whose arrival slot lies in the epoch (accepted and refused).
    pub batches: Vec<BatchRecord>,
    /// Audits of those batches.
    pub audits: Vec<AuditRecord>,
    /// Probes sent in the epoch.
    pub probes: Vec<ProbeRecord>,
    /// Probe tickets of the epoch.
    pub tickets: Vec<ProbeTicketRecord>,
    /// Other watchers' probe tickets of the epoch, with this watcher's lookups.
    pub peer_tickets: Vec<PeerTicketRecord>,
    /// The previous epoch's own probe tickets, whose leaves may be in this epoch's batches.
    pub previous_tickets: Vec<ProbeTicketRecord>,
    /// The previous epoch's probes (the send times of `previous_tickets`).
    pub previous_probes: Vec<ProbeRecord>,
    /// The previous epoch's peer probe tickets.
    pub previous_peer_tickets: Vec<PeerTicketRecord>,
}

impl EpochRows {
    /// When the probe under `ticket` was sent and answered (Unix ms), from the epoch's and
    /// the previous epoch's probes.
    pub fn probe_times(&self, ticket: &[u8; 16]) -> Option<(u64, u64)> {
        self.probes
            .iter()
            .chain(&self.previous_probes)
            .filter(|p| p.ticket == *ticket)
            .map(|p| {
                let answered = p
                    .sent_ms
                    .saturating_add(p.latency_us.unwrap_or(0).div_ceil(1000));
                (p.sent_ms, answered)
            })
            .min()
    }
}

fn bps(num: u64, den: u64) -> u16 {
    if den == 0 {
        return 0;
    }
    let v = u128::from(num) * 10_000 / u128::from(den);
    u16::try_from(v.min(10_000)).unwrap_or(10_000)
}

fn sat_u32(v: u64) -> u32 {
    u32::try_from(v).unwrap_or(u32::MAX)
}

#[derive(Default)]
struct Acc {
    counts: Counts,
    sketch: NameSketch,
    first_slot: Option<u64>,
    last_slot: u64,
}

/// Computes every miner's result for an epoch from its stored rows. `miners` are the wallets
/// considered (the registry's miners); a wallet seen only in the rows is considered too.
/// Without `audits_required` (audits disabled), unaudited batches do not gate. `facts`
/// answers the chain's view of a wallet.
pub fn compute(
    rows: &EpochRows,
    miners: &[Pubkey],
    audits_required: bool,
    facts: impl Fn(&Pubkey) -> ChainFacts,
) -> Vec<MinerResult> {
    let mut acc: BTreeMap<[u8; 32], Acc> = BTreeMap::new();
    for m in miners {
        acc.entry(m.to_bytes()).or_default();
    }
    let audits: BTreeMap<[u8; 32], &AuditRecord> =
        rows.audits.iter().map(|a| (a.batch_id, a)).collect();
    for b in &rows.batches {
        let Some(wallet) = b.wallet else { continue };
        let a = acc.entry(wallet).or_default();
        if let Verdict::Refused { reason } = &b.verdict {
            if refusal_gates(reason) {
                a.counts.refused_batches += 1;
            } else {
                a.counts.refused_not_counted += 1;
            }
            continue;
        }
        let Ok(receipt) = Receipt::from_json(&b.receipt_json) else {
            continue;
        };
        a.counts.accepted_batches += 1;
        a.counts.leaves += receipt.body.integrity.leaf_count;
        if let Some(v2) = &receipt.body.v2 {
            a.counts.ticketed_leaves += v2.ticketed_leaf_count;
            a.sketch.merge(&v2.name_sketch);
        }
        a.first_slot = Some(
            a.first_slot
                .map_or(b.arrival_slot, |f| f.min(b.arrival_slot)),
        );
        a.last_slot = a.last_slot.max(b.arrival_slot);
        match audits.get(&b.batch_id).map(|r| (r.status, u64::from(r.k))) {
            Some((AuditStatus::Passed, k)) => {
                a.counts.audits_passed += 1;
                a.counts.audited_leaves += k;
                a.counts.audited_leaves_correct += k;
            }
            Some((AuditStatus::Failed, k)) => {
                a.counts.audits_failed += 1;
                a.counts.audited_leaves += k.max(1);
            }
            _ => a.counts.audits_missing += 1,
        }
    }
    for p in &rows.probes {
        let a = acc.entry(p.wallet).or_default();
        // A probe the watcher could not judge (its own error) is not counted.
        if p.status != ProbeStatus::Error {
            a.counts.probes_sent += 1;
        }
        match p.status {
            ProbeStatus::Answered => {
                a.counts.probes_answered += 1;
                a.counts.probes_correct += 1;
            }
            ProbeStatus::WrongAnswer => {
                a.counts.probes_answered += 1;
                a.counts.probes_wrong += 1;
            }
            ProbeStatus::Timeout | ProbeStatus::Refused | ProbeStatus::Error => {}
        }
    }
    // Whether `wallet` has an accepted batch of the epoch whose window holds `a` or `b`.
    let covered = |wallet: &[u8; 32], a: u64, b: u64| {
        rows.batches.iter().any(|x| {
            x.wallet.as_ref() == Some(wallet)
                && x.verdict.is_accepted()
                && [a, b]
                    .iter()
                    .any(|t| x.window_start_ms <= *t && *t < x.window_end_ms)
        })
    };
    for t in &rows.tickets {
        if t.status == TicketStatus::Missing {
            acc.entry(t.wallet).or_default().counts.tickets_missing += 1;
        }
    }
    // Each ticket is discounted once, whoever listed it (own tickets first), in the epoch
    // whose batches hold its leaves.
    let mut discounted: BTreeSet<[u8; 16]> = BTreeSet::new();
    for t in rows.tickets.iter().chain(&rows.previous_tickets) {
        if t.status != TicketStatus::Found {
            continue;
        }
        let here = match rows.probe_times(&t.ticket) {
            Some((sent, answered)) => {
                covered(&t.wallet, sent, answered.saturating_add(LEAF_SLACK_MS))
            }
            // An interrupted probe (no probe row; `updated_ms` is its send time).
            None => covered(
                &t.wallet,
                t.updated_ms,
                t.updated_ms.saturating_add(LEAF_SLACK_MS),
            ),
        };
        if here && discounted.insert(t.ticket) {
            acc.entry(t.wallet).or_default().counts.probe_leaves += t.leaves_found.unwrap_or(0);
        }
    }
    for t in rows.peer_tickets.iter().chain(&rows.previous_peer_tickets) {
        // A peer's ticket never gates: only the leaves found discount.
        if t.status == TicketStatus::Found
            && covered(
                &t.wallet,
                t.sent_ms,
                t.sent_ms.saturating_add(LEAF_SLACK_MS),
            )
            && discounted.insert(t.ticket)
        {
            let a = acc.entry(t.wallet).or_default();
            a.counts.peer_probe_leaves += t.leaves_found.unwrap_or(0).min(PEER_TICKET_MAX_LEAVES);
        }
    }
    for a in acc.values_mut() {
        let c = &mut a.counts;
        c.client_ticketed_leaves = c
            .ticketed_leaves
            .saturating_sub(c.probe_leaves)
            .saturating_sub(c.peer_probe_leaves);
    }
    let all_client: u64 = acc.values().map(|a| a.counts.client_ticketed_leaves).sum();
    acc.into_iter()
        .map(|(wallet, a)| {
            let pubkey = Pubkey::new_from_array(wallet);
            let f = facts(&pubkey);
            let c = &a.counts;
            let mut gate = BTreeSet::new();
            if c.refused_batches > 0 {
                gate.insert(GateReason::ReceiptRefused);
            }
            if c.audits_failed > 0 {
                gate.insert(GateReason::AuditFailed);
            }
            if audits_required && c.audits_missing > 0 {
                gate.insert(GateReason::AuditIncomplete);
            }
            if c.probes_wrong > 0 {
                gate.insert(GateReason::ProbeWrongAnswer);
            }
            if c.tickets_missing > 0 {
                gate.insert(GateReason::ProbeTicketMissing);
            }
            if c.accepted_batches == 0 {
                gate.insert(GateReason::NoReceipts);
            } else if c.client_ticketed_leaves == 0 {
                gate.insert(GateReason::NoTicketedWork);
            }
            if f.stake_weight < f.min_stake_weight.max(1) {
                gate.insert(GateReason::NotStaked);
            }
            if !f.allowlisted {
                gate.insert(GateReason::NotAllowlisted);
            }
            let unique = a.sketch.estimate().min(c.ticketed_leaves);
            let first = a.first_slot.unwrap_or(0);
            let checked = c.probes_answered + c.audited_leaves;
            let correct = c.probes_correct + c.audited_leaves_correct;
            let stats = MinerStats {
                stake_weight: f.stake_weight,
                unique_name_count: sat_u32(unique),
                first_submit_slot: first,
                uptime_score: bps(c.probes_answered, c.probes_sent),
                correctness_score: bps(correct, checked),
                dominance_share_bps: bps(c.client_ticketed_leaves, all_client),
            };
            let report = ReportedStats {
                aggregates_submitted: sat_u32(c.accepted_batches),
                unique_name_count: stats.unique_name_count,
                unique_receipt_count: sat_u32(c.accepted_batches),
                first_submit_slot: first,
                last_submit_slot: a.last_slot.max(first),
                uptime_score: stats.uptime_score,
                correctness_score: stats.correctness_score,
                dominance_share_bps: stats.dominance_share_bps,
            };
            MinerResult {
                miner: pubkey.to_string(),
                gate: gate.into_iter().collect(),
                counts: a.counts,
                stats,
                report,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ratios_saturate_and_handle_zero() {
        assert_eq!(bps(0, 0), 0);
        assert_eq!(bps(1, 2), 5_000);
        assert_eq!(bps(3, 3), 10_000);
        assert_eq!(bps(5, 3), 10_000);
        assert_eq!(sat_u32(u64::MAX), u32::MAX);
    }

    #[test]
    fn only_misbehaviour_refusals_gate() {
        assert!(refusal_gates(
            "overlapping_receipt: an accepted receipt overlaps"
        ));
        assert!(refusal_gates("unregistered_backend: x"));
        assert!(refusal_gates("too_many_repeats: x"));
        assert!(!refusal_gates("arrived_too_late: x"));
        assert!(!refusal_gates("wrong_deployment: x"));
        assert!(!refusal_gates("signature: x"));
    }

    /// An accepted batch of `wallet` with `n` leaves, `ticketed` of them ticketed.
    fn accepted(wallet: [u8; 32], id: u8, n: u64, ticketed: u64) -> BatchRecord {
        use tolldns_core::{BackendId, DeploymentId, WindowId, WindowLen};
        use tolldns_receipts::{
            BatchHeader, ClosedBatch, LatencyBucket, Leaf, LeafFlags, RcodeClass, Transport,
            WorkClass,
        };
        let len = WindowLen::new(2).unwrap();
        let window = WindowId::containing(1_700_000_000_000, len);
        let start = window.start_ms(len).unwrap();
        let leaves = (0..n)
            .map(|i| Leaf {
                timestamp_ms: start + i,
                transport: Transport::Udp,
                qtype: 1,
                rcode_class: RcodeClass::NoError,
                work_class: WorkClass::CacheHit,
                flags: LeafFlags::default(),
                latency: LatencyBucket::from_millis(3),
                response_bytes: 100,
                name_hash: [u8::try_from(i).unwrap(); 16],
                ticket: if i < ticketed {
                    [u8::try_from(i + 1).unwrap(); 16]
                } else {
                    [0; 16]
                },
                response_summary_hash: [1; 16],
                repeat: 0,
            })
            .collect();
        let key = ed25519_dalek::SigningKey::from_bytes(&[id; 32]);
        let batch = ClosedBatch::seal(
            &BatchHeader::new(
                DeploymentId::local(),
                BackendId::new("edge-ingress").unwrap(),
                len,
                window,
            ),
            leaves,
            tolldns_core::hash::NameKey([9; 32]).commitment(),
            window.end_ms(len).unwrap() - 1,
            &key,
        )
        .unwrap();
        BatchRecord {
            batch_id: [id; 32],
            operator_key: key.verifying_key().to_bytes(),
            wallet: Some(wallet),
            version: 2,
            epoch: 1,
            window_start_ms: start,
            window_end_ms: window.end_ms(len).unwrap(),
            receipt_json: batch.receipt().to_json(),
            arrival_ms: start + 3_000,
            arrival_slot: 50,
            verdict: Verdict::Accepted,
        }
    }

    fn passed(batch_id: [u8; 32]) -> AuditRecord {
        AuditRecord {
            batch_id,
            seed_slot: 52,
            seed_hash: [0; 32],
            k: 2,
            status: AuditStatus::Passed,
            reason: None,
            evidence_json: "{}".to_owned(),
            audited_ms: 0,
        }
    }

    fn own(wallet: [u8; 32], ticket: u8, found: u64) -> ProbeTicketRecord {
        ProbeTicketRecord {
            ticket: [ticket; 16],
            wallet,
            epoch: 1,
            probes_sent: 1,
            leaves_found: Some(found),
            status: TicketStatus::Found,
            reason: None,
            updated_ms: 0,
        }
    }

    /// The start of the test batches' window.
    fn window_start() -> u64 {
        let len = tolldns_core::WindowLen::new(2).unwrap();
        tolldns_core::WindowId::containing(1_700_000_000_000, len)
            .start_ms(len)
            .unwrap()
    }

    fn probe(wallet: [u8; 32], ticket: u8, sent_ms: u64) -> ProbeRecord {
        ProbeRecord {
            probe_id: [ticket; 32],
            wallet,
            transport: 1,
            epoch: 1,
            sent_ms,
            send_slot: 40,
            latency_us: Some(2_000),
            status: ProbeStatus::Answered,
            ticket: [ticket; 16],
            qname: "probe.test".to_owned(),
            evidence_json: "{}".to_owned(),
        }
    }

    fn peer(watcher: u8, wallet: [u8; 32], ticket: u8, found: u64) -> PeerTicketRecord {
        PeerTicketRecord {
            watcher: [watcher; 32],
            ticket: [ticket; 16],
            wallet,
            epoch: 1,
            sent_ms: window_start() + 5,
            leaves_found: Some(found),
            status: if found > 0 {
                TicketStatus::Found
            } else {
                TicketStatus::Missing
            },
            reason: None,
            updated_ms: 0,
        }
    }

    #[test]
    fn peers_probes_are_not_client_work() {
        let (cheat, honest) = ([1u8; 32], [2u8; 32]);
        // The cheater's only ticketed leaves are three probes: one of this watcher (ticket 1)
        // and two of two peers (tickets 2 and 3). The honest miner has 8 ticketed leaves,
        // 2 of them probes (this watcher's ticket 1 is another miner's; peers' 4 and 5).
        let at = window_start() + 5;
        let rows = |peer_tickets: Vec<PeerTicketRecord>| EpochRows {
            batches: vec![accepted(cheat, 1, 10, 3), accepted(honest, 2, 20, 8)],
            audits: vec![passed([1; 32]), passed([2; 32])],
            probes: vec![probe(cheat, 1, at), probe(honest, 6, at)],
            tickets: vec![own(cheat, 1, 1), own(honest, 6, 1)],
            peer_tickets,
            ..EpochRows::default()
        };
        let facts = |_: &Pubkey| ChainFacts {
            stake_weight: 10,
            min_stake_weight: 1,
            allowlisted: true,
        };
        let miners = [
            Pubkey::new_from_array(cheat),
            Pubkey::new_from_array(honest),
        ];
        let get = |r: &[MinerResult], w: [u8; 32]| {
            r.iter()
                .find(|m| m.miner == Pubkey::new_from_array(w).to_string())
                .unwrap()
                .clone()
        };

        // Without the peers' lists, their probes pass for client work.
        let r = compute(&rows(Vec::new()), &miners, true, facts);
        let c = get(&r, cheat);
        assert_eq!(c.counts.client_ticketed_leaves, 2);
        assert!(c.reported(), "{:?}", c.gate);

        // With them, the cheater has no client work; the honest miner keeps 5 leaves and
        // the whole dominance share.
        let peers = vec![
            peer(7, cheat, 2, 1),
            // Listed twice (by two peers, and one peer relisting this watcher's own
            // ticket): discounted once.
            peer(8, cheat, 2, 1),
            peer(9, cheat, 1, 1),
            // A peer's ticket discounts at most PEER_TICKET_MAX_LEAVES.
            peer(7, honest, 4, 5),
            // Nothing found under a peer's ticket: no discount, and no gate.
            peer(7, honest, 5, 0),
        ];
        let mut rows = rows(peers);
        // A probe of the previous epoch whose leaf is in this epoch's batch.
        rows.previous_peer_tickets.push(peer(8, cheat, 3, 1));
        // A peer probe whose batch is not one of this epoch's (it is discounted where its
        // batch is counted).
        let mut elsewhere = peer(7, honest, 10, 1);
        elsewhere.sent_ms = window_start() - 10_000;
        rows.peer_tickets.push(elsewhere);
        // The same for an own probe of the previous epoch.
        rows.previous_tickets.push(own(honest, 11, 1));
        rows.previous_probes
            .push(probe(honest, 11, window_start() - 10_000));
        let r = compute(&rows, &miners, true, facts);
        let c = get(&r, cheat);
        assert_eq!(c.counts.probe_leaves, 1);
        assert_eq!(c.counts.peer_probe_leaves, 2);
        assert_eq!(c.counts.client_ticketed_leaves, 0);
        assert_eq!(c.gate, vec![GateReason::NoTicketedWork]);
        let h = get(&r, honest);
        assert_eq!(h.counts.ticketed_leaves, 8);
        assert_eq!(h.counts.peer_probe_leaves, PEER_TICKET_MAX_LEAVES);
        assert_eq!(
            h.counts.client_ticketed_leaves,
            8 - 1 - PEER_TICKET_MAX_LEAVES
        );
        assert!(h.reported(), "{:?}", h.gate);
        assert_eq!(h.stats.dominance_share_bps, 10_000);
        assert_eq!(c.stats.dominance_share_bps, 0);
    }

    #[test]
    fn a_miner_without_rows_is_gated() {
        let w = Pubkey::new_from_array([7; 32]);
        let r = compute(&EpochRows::default(), &[w], true, |_| ChainFacts {
            stake_weight: 10,
            min_stake_weight: 1,
            allowlisted: true,
        });
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].gate, vec![GateReason::NoReceipts]);
        assert!(!r[0].reported());
    }
}
