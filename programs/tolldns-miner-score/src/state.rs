//! Account layouts and instruction argument types.
//!
//! All accounts are Borsh after Anchor's 8-byte discriminator, with a fixed size
//! (`8 + INIT_SPACE`); the allowlists are allocated at their bound so the config never needs a
//! realloc.

#![warn(missing_docs)]

use anchor_lang::prelude::*;
use tolldns_score::ScoreConfig;

use crate::constants::{MAX_MINERS, MAX_REPORTING_DEADLINE_EPOCHS, MAX_WATCHERS};
use crate::error::MinerScoreError;

/// Scoring parameters, part of [`Params`].
///
/// The fields are those of [`tolldns_score::ScoreConfig`]; see that type for their meaning.
#[derive(AnchorSerialize, AnchorDeserialize, InitSpace, Clone, Copy, Debug, PartialEq, Eq)]
pub struct ScoreParams {
    /// Epoch length in slots; epoch `e` is `[e × len, (e + 1) × len)`. Fixed at init.
    pub epoch_len_slots: u64,
    /// Largest reward one miner can receive for one epoch, in base units of the mint.
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
    /// Dominance share above which (strictly) the penalty applies (bps).
    pub dominance_threshold_bps: u16,
    /// Unique names that earn the full diversity component.
    pub diversity_target: u32,
}

impl ScoreParams {
    /// The same parameters as a [`tolldns_score::ScoreConfig`].
    pub fn to_score_config(&self) -> ScoreConfig {
        ScoreConfig {
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

    /// Validates the parameters with [`ScoreConfig::validate`].
    ///
    /// # Errors
    ///
    /// The [`MinerScoreError`] mapped from the [`tolldns_score::ScoreError`].
    pub fn validate(&self) -> Result<()> {
        self.to_score_config()
            .validate()
            .map_err(MinerScoreError::from)?;
        Ok(())
    }
}

/// The economic parameters: what an epoch is scored and paid under. Stored in the config and
/// snapshotted into each epoch's [`EpochTotals`] when the epoch's totals are opened (its first
/// report, or its finalization). Changes other than lowering `base_reward_per_epoch` or
/// `per_miner_epoch_cap` are time-locked (see [`MinerScoreConfig::params_for`]).
#[derive(AnchorSerialize, AnchorDeserialize, InitSpace, Clone, Copy, Debug, PartialEq, Eq)]
pub struct Params {
    /// Upper bound of each epoch's reward pool, in base units.
    pub base_reward_per_epoch: u64,
    /// Scoring parameters.
    pub score: ScoreParams,
    /// K of K-of-N: the number of watcher reports a miner's stats need to be accepted.
    pub quorum: u8,
    /// The key that may penalize miners (and slash their stake) during the challenge window.
    pub dispute_authority: Pubkey,
}

impl Params {
    /// Validates the scoring parameters and the quorum.
    ///
    /// # Errors
    ///
    /// [`MinerScoreError::InvalidQuorum`] or the scoring parameters' error.
    pub fn validate(&self) -> Result<()> {
        require!(
            self.quorum >= 1 && usize::from(self.quorum) <= MAX_WATCHERS,
            MinerScoreError::InvalidQuorum
        );
        self.score.validate()
    }

    /// Whether `self` differs from `base` only by a lower (or equal) base reward and a lower
    /// (or equal) per-miner cap: the only changes that apply at once.
    pub fn only_lowers(&self, base: &Self) -> bool {
        let mut same = *self;
        same.base_reward_per_epoch = base.base_reward_per_epoch;
        same.score.per_miner_epoch_cap = base.score.per_miner_epoch_cap;
        same == *base
            && self.base_reward_per_epoch <= base.base_reward_per_epoch
            && self.score.per_miner_epoch_cap <= base.score.per_miner_epoch_cap
    }
}

/// A time-locked parameter change.
#[derive(AnchorSerialize, AnchorDeserialize, InitSpace, Clone, Copy, Debug, PartialEq, Eq)]
pub struct PendingParams {
    /// The new parameters.
    pub params: Params,
    /// First epoch scored and paid under them.
    pub effective_epoch: u64,
}

/// The program's clock rules, fixed at init.
#[derive(AnchorSerialize, AnchorDeserialize, InitSpace, Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timing {
    /// The first epoch that can be reported, finalized and paid (at or after the epoch of
    /// init).
    pub first_epoch: u64,
    /// Reports for epoch `e` are accepted while `slot < end(e) + reporting_deadline_slots`;
    /// `e` can be finalized from that slot on.
    pub reporting_deadline_slots: u64,
    /// After finalization, slots during which penalties land and claims wait.
    pub challenge_window_slots: u64,
    /// Epochs (of slots) after the challenge window during which rewards can be claimed;
    /// afterwards `expire_epoch` returns the unclaimed rest to the uncommitted vault balance.
    pub claim_window_epochs: u64,
    /// Epochs between a parameter increase (or an allowlist addition) and the first epoch it
    /// applies to.
    pub timelock_epochs: u64,
}

impl Timing {
    /// Checks that every window is non-zero and the reporting deadline is at most
    /// [`MAX_REPORTING_DEADLINE_EPOCHS`] epochs.
    ///
    /// # Errors
    ///
    /// [`MinerScoreError::InvalidTiming`].
    pub fn validate(&self, epoch_len_slots: u64) -> Result<()> {
        let max_deadline = epoch_len_slots
            .checked_mul(MAX_REPORTING_DEADLINE_EPOCHS)
            .ok_or(MinerScoreError::InvalidTiming)?;
        require!(
            self.reporting_deadline_slots > 0
                && self.reporting_deadline_slots <= max_deadline
                && self.challenge_window_slots > 0
                && self.claim_window_epochs > 0
                && self.timelock_epochs > 0,
            MinerScoreError::InvalidTiming
        );
        Ok(())
    }
}

/// Arguments of `init_miner_score_config`.
#[derive(AnchorSerialize, AnchorDeserialize, Clone, Debug, PartialEq, Eq)]
pub struct InitArgs {
    /// The economic parameters in force from `timing.first_epoch`.
    pub params: Params,
    /// The clock rules (immutable).
    pub timing: Timing,
    /// Watchers active from the first epoch (at most 16; more are added one by one).
    pub watchers: Vec<Pubkey>,
    /// Miners eligible from the first epoch (as many as fit the transaction; more are added one
    /// by one).
    pub miners: Vec<Pubkey>,
}

impl InitArgs {
    /// Checks the lists (bounds, no duplicates), the parameters and the timing.
    ///
    /// # Errors
    ///
    /// [`MinerScoreError::AllowlistTooLarge`], [`MinerScoreError::InvalidConfig`] (a duplicate
    /// key), and the errors of [`Params::validate`] and [`Timing::validate`].
    pub fn validate(&self) -> Result<()> {
        require!(
            self.watchers.len() <= MAX_WATCHERS && self.miners.len() <= MAX_MINERS,
            MinerScoreError::AllowlistTooLarge
        );
        require!(
            !has_duplicates(&self.watchers) && !has_duplicates(&self.miners),
            MinerScoreError::InvalidConfig
        );
        self.params.validate()?;
        self.timing.validate(self.params.score.epoch_len_slots)
    }
}

/// Whether `keys` holds a key twice (quadratic; the lists are at most 64 long).
fn has_duplicates(keys: &[Pubkey]) -> bool {
    keys.iter().enumerate().any(|(i, k)| {
        keys.iter()
            .skip(i.saturating_add(1))
            .any(|other| other == k)
    })
}

/// An allowlist entry: a key and the first epoch from which it counts.
#[derive(AnchorSerialize, AnchorDeserialize, InitSpace, Clone, Copy, Debug, PartialEq, Eq)]
pub struct AllowEntry {
    /// The key.
    pub key: Pubkey,
    /// First epoch it counts for (a watcher acts from then; a miner is paid for it and later).
    pub active_from_epoch: u64,
}

/// The global configuration, PDA `["miner_score_config"]`.
#[account]
#[derive(InitSpace, Debug)]
pub struct MinerScoreConfig {
    /// May change parameters and allowlists and start an authority transfer.
    pub authority: Pubkey,
    /// The authority proposed by `transfer_authority`, until it accepts.
    pub pending_authority: Option<Pubkey>,
    /// Mint of the reward token.
    pub toll_mint: Pubkey,
    /// The reward vault (PDA `["reward_vault"]`).
    pub reward_vault: Pubkey,
    /// Bump of the vault-authority PDA.
    pub vault_authority_bump: u8,
    /// Bump of the reward-vault PDA.
    pub reward_vault_bump: u8,
    /// Bump of the slasher PDA.
    pub slasher_bump: u8,
    /// Bump of this PDA.
    pub bump: u8,
    /// The parameters in force (for every epoch before `pending_params.effective_epoch`).
    pub params: Params,
    /// A time-locked change, in force from its epoch.
    pub pending_params: Option<PendingParams>,
    /// The clock rules (immutable).
    pub timing: Timing,
    /// The only epoch that `finalize_epoch` accepts next (starts at `timing.first_epoch`);
    /// every earlier epoch is finalized.
    pub next_epoch_to_finalize: u64,
    /// Rewards fixed by finalized epochs and not yet released by claims or expiry: the part of
    /// the vault balance that is spoken for. `vault.amount ≥ committed_rewards` always holds.
    pub committed_rewards: u64,
    /// The N registered watchers (K-of-N reporters).
    #[max_len(MAX_WATCHERS)]
    pub watchers: Vec<AllowEntry>,
    /// Miners that may be reported.
    #[max_len(MAX_MINERS)]
    pub miners: Vec<AllowEntry>,
}

impl MinerScoreConfig {
    /// The epoch containing `slot`.
    pub fn epoch_of(&self, slot: u64) -> u64 {
        // `epoch_len_slots` is validated non-zero at init and immutable.
        slot.checked_div(self.params.score.epoch_len_slots)
            .unwrap_or(u64::MAX)
    }

    /// The parameters epoch `epoch` is scored and paid under.
    pub fn params_for(&self, epoch: u64) -> Params {
        match self.pending_params {
            Some(p) if epoch >= p.effective_epoch => p.params,
            _ => self.params,
        }
    }

    /// Whether `key` is a watcher active in epoch `now_epoch`.
    pub fn is_watcher(&self, key: &Pubkey, now_epoch: u64) -> bool {
        self.watchers
            .iter()
            .any(|w| w.key == *key && w.active_from_epoch <= now_epoch)
    }

    /// Whether `key` is an active watcher at the current slot (`false` if the clock is
    /// unavailable).
    pub fn is_watcher_now(&self, key: &Pubkey) -> bool {
        Clock::get().is_ok_and(|clock| self.is_watcher(key, self.epoch_of(clock.slot)))
    }

    /// Whether `key` is a miner that may be reported for epoch `epoch`.
    pub fn is_miner_for(&self, key: &Pubkey, epoch: u64) -> bool {
        self.miners
            .iter()
            .any(|m| m.key == *key && m.active_from_epoch <= epoch)
    }

    /// The first epoch a change made during `now_epoch` may apply to: the first epoch while
    /// it has not started (nothing is in force yet), else `now_epoch + timelock_epochs`.
    ///
    /// # Errors
    ///
    /// [`MinerScoreError::MathOverflow`].
    pub fn locked_until(&self, now_epoch: u64) -> Result<u64> {
        if now_epoch < self.timing.first_epoch {
            return Ok(self.timing.first_epoch);
        }
        Ok(now_epoch
            .checked_add(self.timing.timelock_epochs)
            .ok_or(MinerScoreError::MathOverflow)?)
    }

    /// Makes a pending change the parameters in force once every epoch before it is
    /// finalized (nothing can be scored under the old parameters any more).
    pub fn promote_params(&mut self) {
        if let Some(p) = self.pending_params {
            if self.next_epoch_to_finalize >= p.effective_epoch {
                self.params = p.params;
                self.pending_params = None;
            }
        }
    }
}

/// What a watcher reports for one miner and one epoch (argument of
/// `report_miner_epoch_stats`). The stake weight is not reported: the program reads it from the
/// miner's stake account in the registry. `aggregates_submitted`, `unique_receipt_count` and
/// `last_submit_slot` are kept for audit (their medians too).
#[derive(
    AnchorSerialize, AnchorDeserialize, InitSpace, Clone, Copy, Debug, Default, PartialEq, Eq,
)]
pub struct MinerEpochReport {
    /// Number of receipt batches the miner submitted (audit only).
    pub aggregates_submitted: u32,
    /// Unique names served (drives the diversity component).
    pub unique_name_count: u32,
    /// Unique receipts (audit only).
    pub unique_receipt_count: u32,
    /// Slot of the miner's first submission; clamped into the epoch by the timeliness formula.
    pub first_submit_slot: u64,
    /// Slot of the miner's last submission (audit only; must not precede the first).
    pub last_submit_slot: u64,
    /// Uptime sub-score, `0..=10_000`.
    pub uptime_score: u16,
    /// Correctness sub-score, `0..=10_000`.
    pub correctness_score: u16,
    /// The miner's share of the epoch's ticketed requests, in bps.
    pub dominance_share_bps: u16,
}

impl MinerEpochReport {
    /// The field-by-field lower median of `reports` (`reports[⌊(n − 1) / 2⌋]` of each field
    /// sorted). With `f` lying reports among `n ≥ 2f + 1`, every field lies between the honest
    /// reports' lowest and highest value. Empty input gives the default (all zero).
    pub fn median(reports: &[WatcherReport]) -> Self {
        let n = reports.len().min(MAX_WATCHERS);
        let Some(mid) = n.checked_sub(1).map(|m| m / 2) else {
            return Self::default();
        };
        let pick = |f: &dyn Fn(&Self) -> u64| -> u64 {
            let mut v = [0u64; MAX_WATCHERS];
            for (slot, r) in v.iter_mut().zip(reports.iter().take(n)) {
                *slot = f(&r.report);
            }
            let v = v.get_mut(..n).unwrap_or_default();
            v.sort_unstable();
            v.get(mid).copied().unwrap_or_default()
        };
        // Each median is one of the reported values of its field, so it fits the field's type.
        let narrow32 = |x: u64| u32::try_from(x).unwrap_or(u32::MAX);
        let narrow16 = |x: u64| u16::try_from(x).unwrap_or(u16::MAX);
        Self {
            aggregates_submitted: narrow32(pick(&|r| u64::from(r.aggregates_submitted))),
            unique_name_count: narrow32(pick(&|r| u64::from(r.unique_name_count))),
            unique_receipt_count: narrow32(pick(&|r| u64::from(r.unique_receipt_count))),
            first_submit_slot: pick(&|r| r.first_submit_slot),
            last_submit_slot: pick(&|r| r.last_submit_slot),
            uptime_score: narrow16(pick(&|r| u64::from(r.uptime_score))),
            correctness_score: narrow16(pick(&|r| u64::from(r.correctness_score))),
            dominance_share_bps: narrow16(pick(&|r| u64::from(r.dominance_share_bps))),
        }
    }
}

/// One watcher's report, as stored in [`MinerEpochStats`].
#[derive(AnchorSerialize, AnchorDeserialize, InitSpace, Clone, Copy, Debug, PartialEq, Eq)]
pub struct WatcherReport {
    /// The watcher.
    pub watcher: Pubkey,
    /// What it reported (its latest version).
    pub report: MinerEpochReport,
    /// Slot of its latest version.
    pub slot: u64,
}

/// One miner's reports, accepted stats and score for one epoch,
/// PDA `["miner_epoch", epoch_id LE, miner]`.
#[account]
#[derive(InitSpace, Debug)]
pub struct MinerEpochStats {
    /// The epoch.
    pub epoch_id: u64,
    /// The miner.
    pub miner: Pubkey,
    /// Each watcher's latest report (at most one per watcher).
    #[max_len(MAX_WATCHERS)]
    pub reports: Vec<WatcherReport>,
    /// Whether at least K reports exist: the stats below count in the epoch totals.
    pub accepted: bool,
    /// The stake weight of the epoch, read from the miner's stake account.
    pub stake_weight: u64,
    /// The accepted stats: the field-by-field median of the reports (zero until accepted).
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
    /// Computed raw score (after the centralization penalty); counted in the epoch totals.
    pub raw_score: u128,
    /// `isqrt(raw_score)`; counted in the epoch totals.
    pub normalized_score: u128,
    /// Share of the reward the miner keeps after penalties (bps, starts at 10,000, only
    /// ever decreases).
    pub reward_keep_bps: u16,
    /// Number of penalties applied.
    pub penalty_count: u16,
    /// The reward paid at claim (zero until claimed).
    pub reward_amount: u64,
    /// Whether the reward was claimed.
    pub claimed: bool,
    /// Who paid this account's rent (the first reporting watcher); it gets the rent back.
    pub rent_payer: Pubkey,
    /// Slot of the latest report or retraction.
    pub updated_at_slot: u64,
    /// Bump of this PDA.
    pub bump: u8,
}

/// Per-epoch totals, PDA `["epoch_totals", epoch_id LE]`, accumulated on-chain as stats are
/// accepted and changed; nobody submits them.
#[account]
#[derive(InitSpace, Debug)]
pub struct EpochTotals {
    /// The epoch.
    pub epoch_id: u64,
    /// Whether this account was initialized (it is created by the first report or by
    /// finalization, whichever comes first).
    pub initialized: bool,
    /// The parameters the epoch is scored and paid under (snapshot at creation).
    pub params: Params,
    /// `Σ raw_score` over the accepted miners.
    pub total_raw_score: u128,
    /// `Σ normalized_score` over the accepted miners.
    pub total_normalized_score: u128,
    /// Number of accepted miners.
    pub miner_count: u32,
    /// Number of [`MinerEpochStats`] accounts of the epoch that are still open.
    pub open_stats: u32,
    /// Whether the epoch is finalized (no more reports; claims after the challenge window).
    pub finalized: bool,
    /// Slot of finalization.
    pub finalized_at_slot: u64,
    /// First slot at which claims are accepted (end of the challenge window).
    pub claims_open_slot: u64,
    /// First slot at which claims are refused and `expire_epoch` works.
    pub claim_deadline_slot: u64,
    /// The pool, fixed at finalization: `min(base_reward_per_epoch, uncommitted vault balance)`.
    pub reward_pool: u64,
    /// Number of miners that claimed.
    pub claimed_count: u32,
    /// `Σ reward` paid out.
    pub total_claimed: u64,
    /// Part of `reward_pool` released from the config's committed rewards so far.
    pub released: u64,
    /// Whether `expire_epoch` released the unclaimed rest.
    pub expired: bool,
    /// Who paid this account's rent; it gets the rent back at close.
    pub rent_payer: Pubkey,
    /// Bump of this PDA.
    pub bump: u8,
}

/// Record of a claim, PDA `["claim", epoch_id LE, miner]`.
#[account]
#[derive(InitSpace, Debug)]
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

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::cast_possible_truncation)]
mod tests {
    use super::*;

    fn report(v: u64) -> WatcherReport {
        WatcherReport {
            watcher: Pubkey::new_unique(),
            report: MinerEpochReport {
                aggregates_submitted: v as u32,
                unique_name_count: v as u32,
                unique_receipt_count: v as u32,
                first_submit_slot: v,
                last_submit_slot: v,
                uptime_score: v as u16,
                correctness_score: v as u16,
                dominance_share_bps: v as u16,
            },
            slot: 0,
        }
    }

    #[test]
    fn median_is_the_lower_middle_of_each_field() {
        assert_eq!(MinerEpochReport::median(&[]), MinerEpochReport::default());
        let m = MinerEpochReport::median(&[report(9), report(1), report(5)]);
        assert_eq!(m.uptime_score, 5);
        assert_eq!(m.first_submit_slot, 5);
        let m = MinerEpochReport::median(&[report(9), report(1), report(5), report(7)]);
        assert_eq!(m.unique_name_count, 5);
    }

    #[test]
    fn one_liar_among_three_or_more_stays_inside_the_honest_range() {
        for liar in [0u64, 3, 10_000] {
            for honest in [[2u64, 4, 6, 8], [5, 5, 5, 5]] {
                for n in 2..=4 {
                    let mut reports: Vec<_> = honest[..n].iter().map(|&v| report(v)).collect();
                    reports.insert(n / 2, report(liar));
                    let m = MinerEpochReport::median(&reports);
                    let lo = honest[..n].iter().min().unwrap();
                    let hi = honest[..n].iter().max().unwrap();
                    assert!((*lo..=*hi).contains(&m.first_submit_slot), "{liar} {n}");
                }
            }
        }
    }

    #[test]
    fn only_base_reward_and_cap_decreases_apply_at_once() {
        let base = Params {
            base_reward_per_epoch: 100,
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
            quorum: 2,
            dispute_authority: Pubkey::new_unique(),
        };
        let mut lower = base;
        lower.base_reward_per_epoch = 99;
        lower.score.per_miner_epoch_cap = 10;
        assert!(lower.only_lowers(&base));
        assert!(base.only_lowers(&base));
        let mut raise = base;
        raise.base_reward_per_epoch = 101;
        assert!(!raise.only_lowers(&base));
        let mut other = lower;
        other.quorum = 1;
        assert!(!other.only_lowers(&base));
        let mut other = lower;
        other.score.min_miner_stake_weight = 2;
        assert!(!other.only_lowers(&base));
    }
}

#[cfg(test)]
mod size_tests {
    use super::*;

    /// Accounts created by `init` grow through one system-program CPI, which allows at most
    /// 10 KiB; the sizes are also printed for the README's cost notes.
    #[test]
    fn account_sizes_fit_one_cpi_allocation() {
        let sizes = [
            ("MinerScoreConfig", 8 + MinerScoreConfig::INIT_SPACE),
            ("MinerEpochStats", 8 + MinerEpochStats::INIT_SPACE),
            ("EpochTotals", 8 + EpochTotals::INIT_SPACE),
            ("MinerClaimReceipt", 8 + MinerClaimReceipt::INIT_SPACE),
        ];
        for (name, size) in sizes {
            println!("{name}: {size} bytes");
            assert!(size <= 10 * 1024, "{name}: {size} bytes");
        }
    }
}
