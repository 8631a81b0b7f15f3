//! Epoch stats per miner wallet, derived only from stored rows (batches with their verdicts,
//! audits, probes, probe tickets), so that recomputing them after a restart gives the same
//! numbers and nothing is counted twice.
//!
//! The gate: a miner is not reported for an epoch (and so earns nothing) when in that epoch
//! any receipt it signed was refused at ingest by a rule that shows misbehaviour (not one of
//! [`HARMLESS_REFUSALS`]), any audit of its batches failed, an accepted
//! batch was never audited, any probe got a wrong answer, a probe ticket's leaves were
//! missing from its receipts, its accepted receipts carry no ticketed leaf beyond the
//! watcher's own probes, or it is not staked or not on the score program's miner list.
//!
//! Reported stats:
//!
//! - `uptime_score = 10000 × probes answered / probes sent`;
//! - `correctness_score = 10000 × correct / checked` over probe answers and audited leaves;
//! - `unique_name_count` = the estimate of the merged distinct-name sketches of its accepted
//!   receipts, capped at their ticketed leaves;
//! - `first_submit_slot` / `last_submit_slot` = arrival slots of its first / last accepted
//!   receipt of the epoch;
//! - `dominance_share_bps = 10000 × its ticketed leaves / all miners' ticketed leaves`
//!   (accepted receipts);
//! - `stake_weight` is the chain's (the program reads it itself).

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;
use tolldns_chain::{Pubkey, ReportedStats};
use tolldns_receipts::{NameSketch, Receipt};
use tolldns_score::MinerStats;

use crate::store::{
    AuditRecord, AuditStatus, BatchRecord, ProbeRecord, ProbeStatus, ProbeTicketRecord,
    TicketStatus, Verdict,
};

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
    /// Its accepted receipts carry no ticketed leaf beyond the watcher's probes.
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
    for t in &rows.tickets {
        let a = acc.entry(t.wallet).or_default();
        match t.status {
            TicketStatus::Missing => a.counts.tickets_missing += 1,
            TicketStatus::Found => a.counts.probe_leaves += t.leaves_found.unwrap_or(0),
            TicketStatus::Open | TicketStatus::Error => {}
        }
    }
    let all_ticketed: u64 = acc.values().map(|a| a.counts.ticketed_leaves).sum();
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
            } else if c.ticketed_leaves <= c.probe_leaves {
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
                dominance_share_bps: bps(c.ticketed_leaves, all_ticketed),
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
