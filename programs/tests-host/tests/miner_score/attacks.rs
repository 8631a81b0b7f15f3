//! The attacks of the programs' review, each refused: the old-epoch drain, the authority drain,
//! a claim inside the challenge window, stake-weight spoofing, and a lying watcher among K-of-N.
//! Plus K-of-N acceptance and the penalty path that slashes stake through the registry.

use anchor_lang::{AccountSerialize, Discriminator};
use solana_account::AccountSharedData;
use solana_keypair::Keypair;
use solana_signer::Signer;
use tolldns_miner_score::error::MinerScoreError as E;
use tolldns_miner_score::scoring::miner_stats;
use tolldns_miner_score::MinerEpochReport;
use tolldns_registry::state::Stake;
use tolldns_score::{allocate, score_miner};

use crate::harness::{
    assert_custom, assert_program_error, stake_pda, upstream_reports, Env, Options, UPSTREAM_STAKES,
};

/// Anchor's `ConstraintSeeds`.
const CONSTRAINT_SEEDS: u32 = 2006;
/// Anchor's `AccountOwnedByWrongProgram`.
const ACCOUNT_OWNED_BY_WRONG_PROGRAM: u32 = 3007;

/// Old epochs cannot be paid: reports close at the deadline, nothing before the first epoch
/// exists, epochs finalize only in order, and catching up pays nothing.
#[tokio::test]
async fn old_epoch_drain_is_refused() {
    let mut env = Env::start(Options::default()).await;
    let vault_before = env.balance(&env.vault.clone()).await;
    env.warp(2_000); // epoch 20 starts; epochs 1..=19 have ended.
    let r = upstream_reports()[0];
    let m = env.miner(0);
    assert_program_error(env.report(1, m, r).await, E::ReportingClosed);
    assert_program_error(env.report(18, m, r).await, E::ReportingClosed);
    assert_program_error(env.report(0, m, r).await, E::BeforeFirstEpoch);
    assert_program_error(env.finalize(0).await, E::BeforeFirstEpoch);
    assert_program_error(env.finalize(5).await, E::EpochOutOfOrder);

    // Catching up: every old epoch finalizes with a zero pool.
    for epoch in 1..=18 {
        env.finalize(epoch).await.expect("finalize old epoch");
        let totals = env.totals(epoch).await.unwrap();
        assert_eq!((totals.reward_pool, totals.miner_count), (0, 0));
    }
    assert_program_error(env.finalize(18).await, E::EpochOutOfOrder);
    assert_program_error(env.report(18, m, r).await, E::EpochFinalized);
    // Only the epoch that just ended can still be reported, and it pays at most its base
    // reward.
    let mut late = r;
    late.first_submit_slot = 1_901;
    late.last_submit_slot = 1_990;
    env.report(19, m, late).await.expect("report epoch 19");
    env.finalize_and_open_claims(19).await;
    let totals = env.totals(19).await.unwrap();
    assert_eq!(totals.reward_pool, 60_000_000_000);
    env.claim(0, 19).await.expect("claim");
    let paid = vault_before - env.balance(&env.vault.clone()).await;
    assert_eq!(
        paid, 50_000_000_000,
        "one miner, capped at the per-miner cap"
    );
    assert_eq!(env.config_account().await.next_epoch_to_finalize, 20);
}

/// The authority cannot raise the pay of an epoch that has already started: raises apply
/// `timelock_epochs` later, new miners and watchers likewise, and no instruction withdraws.
#[tokio::test]
async fn authority_drain_is_time_locked() {
    let mut env = Env::start(Options::default()).await;
    let authority = env.authority();
    env.warp(200); // epoch 1 ended, epoch 2 running.
    let mut params = env.config_account().await.params;
    params.base_reward_per_epoch = u64::MAX;
    params.score.per_miner_epoch_cap = u64::MAX;
    params.score.min_miner_stake_weight = 1;
    env.update_params(&authority, params).await.expect("raise");
    let config = env.config_account().await;
    let pending = config.pending_params.expect("time-locked");
    assert_eq!(pending.effective_epoch, 4);
    assert_eq!(config.params.base_reward_per_epoch, 60_000_000_000);

    // The authority's own miner and watcher wait for the same time lock.
    let puppet = Keypair::new();
    let puppet_watcher = Keypair::new();
    env.allowlist(&authority, false, true, puppet.pubkey())
        .await
        .unwrap();
    env.allowlist(&authority, true, true, puppet_watcher.pubkey())
        .await
        .unwrap();
    let r = upstream_reports()[0];
    // A puppet without stake cannot even be reported (Anchor's AccountNotInitialized).
    assert_custom(env.report(1, puppet.pubkey(), r).await, 3012);
    // A staked miner removed and re-added waits for the time lock like any addition.
    let m2 = env.miner(2);
    env.allowlist(&authority, false, false, m2).await.unwrap();
    env.allowlist(&authority, false, true, m2).await.unwrap();
    let entry = env
        .config_account()
        .await
        .miners
        .into_iter()
        .find(|e| e.key == m2);
    assert_eq!(entry.unwrap().active_from_epoch, 4);
    assert_program_error(
        env.report(1, m2, upstream_reports()[2]).await,
        E::MinerNotAllowlisted,
    );
    let payer = env.authority();
    let transfer = anchor_lang::solana_program::system_instruction::transfer(
        &payer.pubkey(),
        &puppet_watcher.pubkey(),
        1_000_000_000,
    );
    env.send(&[transfer], &[]).await.unwrap();
    let m0 = env.miner(0);
    assert_program_error(
        env.report_as(&puppet_watcher, 1, m0, r).await,
        E::Unauthorized,
    );

    // Epoch 1 is scored and paid under the parameters in force when it ran.
    for i in 0..2 {
        let m = env.miner(i);
        env.report(1, m, upstream_reports()[i]).await.unwrap();
    }
    env.finalize_and_open_claims(1).await;
    let totals = env.totals(1).await.unwrap();
    assert_eq!(totals.params.base_reward_per_epoch, 60_000_000_000);
    assert_eq!(totals.reward_pool, 60_000_000_000);
    let vault_before = env.balance(&env.vault.clone()).await;
    for i in 0..2 {
        env.claim(i, 1).await.expect("claim");
    }
    let paid = vault_before - env.balance(&env.vault.clone()).await;
    assert!(paid <= 60_000_000_000, "paid {paid}");
}

/// Claims wait for the challenge window; penalties land inside it and not after.
#[tokio::test]
async fn claim_inside_the_challenge_window_is_refused() {
    let mut env = Env::start(Options::default()).await;
    env.warp(200);
    env.report_upstream(1).await;
    env.warp(250);
    env.finalize(1).await.unwrap();
    let totals = env.totals(1).await.unwrap();
    assert_eq!(totals.claims_open_slot, totals.finalized_at_slot + 10);
    assert_program_error(env.claim(0, 1).await, E::ChallengeWindowOpen);
    env.warp(totals.claims_open_slot - 1);
    assert_program_error(env.claim(0, 1).await, E::ChallengeWindowOpen);
    let m0 = env.miner(0);
    env.penalize(1, m0, 5_000)
        .await
        .expect("penalty in the window");
    env.warp(totals.claims_open_slot);
    let m1 = env.miner(1);
    assert_program_error(env.penalize(1, m1, 5_000).await, E::ChallengeWindowClosed);
    let before = env.balance(&env.miners[0].token_account.clone()).await;
    env.claim(0, 1).await.expect("claim after the window");
    let got = env.balance(&env.miners[0].token_account.clone()).await - before;
    let stats = env.stats(1, &m0).await.unwrap();
    assert_eq!(stats.reward_keep_bps, 5_000);
    assert_eq!(got, stats.reward_amount);
    assert!(got > 0);
}

/// The stake weight comes from the miner's own stake account: another wallet's account, a
/// counterfeit account, stake deposited during the epoch, and stake leaving during it do not
/// count.
#[tokio::test]
async fn stake_weight_cannot_be_spoofed() {
    let mut env = Env::start(Options::default()).await;
    let r = upstream_reports();
    let (m0, m1, m2) = (env.miner(0), env.miner(1), env.miner(2));

    // During epoch 1: miner 2 deposits a lot (counts from epoch 2 only); miner 0 exits 600.
    env.warp(150);
    env.deposit(2, 1_000_000).await.unwrap();
    env.request_exit(0, 600).await.unwrap();
    env.warp(200);

    // Another wallet's stake account: the PDA does not match the miner.
    let watcher = env.submitter();
    assert_custom(
        env.report_with_stake(&watcher, 1, m2, r[2], stake_pda(&m1))
            .await,
        CONSTRAINT_SEEDS,
    );

    // A counterfeit stake account with a huge weight, at an address the watcher controls
    // and with the registry's layout, but not owned by the registry.
    let mut fake = Stake::new(m2, 0, 255);
    fake.active = u64::MAX / 2;
    let mut data = Vec::new();
    fake.try_serialize(&mut data).unwrap();
    assert_eq!(&data[..8], Stake::DISCRIMINATOR);
    let fake_key = stake_pda(&Keypair::new().pubkey());
    let mut account = AccountSharedData::new(1_000_000_000, data.len(), &tolldns_miner_score::ID);
    account.set_data_from_slice(&data);
    env.ctx.set_account(&fake_key, &account);
    assert_custom(
        env.report_with_stake(&watcher, 1, m2, r[2], fake_key).await,
        ACCOUNT_OWNED_BY_WRONG_PROGRAM,
    );
    // The same counterfeit at the miner's real stake address.
    let real = stake_pda(&m2);
    let genuine = env
        .ctx
        .banks_client
        .get_account(real)
        .await
        .unwrap()
        .unwrap();
    env.ctx.set_account(&real, &account);
    assert_custom(
        env.report(1, m2, r[2]).await,
        ACCOUNT_OWNED_BY_WRONG_PROGRAM,
    );
    env.ctx.set_account(&real, &genuine.into());

    // The genuine accounts: the epoch's weights, read by the program.
    for (i, m) in [m0, m1, m2].into_iter().enumerate() {
        env.report(1, m, r[i]).await.expect("report");
    }
    let weights = [
        env.stats(1, &m0).await.unwrap().stake_weight,
        env.stats(1, &m1).await.unwrap().stake_weight,
        env.stats(1, &m2).await.unwrap().stake_weight,
    ];
    assert_eq!(
        weights,
        [
            UPSTREAM_STAKES[0] - 600,
            UPSTREAM_STAKES[1],
            UPSTREAM_STAKES[2]
        ]
    );
    let stake2 = env.stake(&m2).await.unwrap();
    assert_eq!(stake2.weight_for_epoch(2).unwrap(), 1_000_500);
    // The score uses the weight read from the chain.
    let cfg = env.totals(1).await.unwrap().params.score.to_score_config();
    let want = score_miner(&cfg, 1, &miner_stats(&r[0], 400)).unwrap();
    assert_eq!(
        env.stats(1, &m0).await.unwrap().normalized_score,
        want.normalized_score
    );
}

/// What a lying watcher reports for the miner under test.
fn lie(high: bool) -> MinerEpochReport {
    if high {
        MinerEpochReport {
            aggregates_submitted: u32::MAX,
            unique_name_count: u32::MAX,
            unique_receipt_count: u32::MAX,
            first_submit_slot: 100,
            last_submit_slot: 100,
            uptime_score: 10_000,
            correctness_score: 10_000,
            dominance_share_bps: 0,
        }
    } else {
        MinerEpochReport {
            aggregates_submitted: 0,
            unique_name_count: 0,
            unique_receipt_count: 0,
            first_submit_slot: 199,
            last_submit_slot: 199,
            uptime_score: 0,
            correctness_score: 0,
            dominance_share_bps: 10_000,
        }
    }
}

/// Honest watcher `i`'s report for miner 0: close to each other, not identical.
fn honest(i: u64) -> MinerEpochReport {
    MinerEpochReport {
        aggregates_submitted: 1,
        unique_name_count: 10 + 2 * i as u32,
        unique_receipt_count: 10 + 2 * i as u32,
        first_submit_slot: 101 + i,
        last_submit_slot: 190,
        uptime_score: 9_000 + 100 * i as u16,
        correctness_score: 9_800 + 50 * i as u16,
        dominance_share_bps: 2_000 + 100 * i as u16,
    }
}

/// Reads one field of a report as a `u64`.
type Field = dyn Fn(&MinerEpochReport) -> u64;

/// Asserts that each field of `m` lies within the honest reports `lo..=hi` of that field.
#[track_caller]
fn assert_within(m: &MinerEpochReport, honest: &[MinerEpochReport]) {
    let range = |f: &Field| {
        let v: Vec<u64> = honest.iter().map(f).collect();
        (*v.iter().min().unwrap(), *v.iter().max().unwrap())
    };
    let fields: [(&str, &Field); 6] = [
        ("names", &|r| u64::from(r.unique_name_count)),
        ("first", &|r| r.first_submit_slot),
        ("uptime", &|r| u64::from(r.uptime_score)),
        ("correctness", &|r| u64::from(r.correctness_score)),
        ("dominance", &|r| u64::from(r.dominance_share_bps)),
        ("receipts", &|r| u64::from(r.unique_receipt_count)),
    ];
    for (name, f) in fields {
        let (lo, hi) = range(f);
        let v = f(m);
        assert!(
            (lo..=hi).contains(&v),
            "{name}: {v} outside the honest {lo}..={hi}"
        );
    }
}

/// One lying watcher among N = 5, K = 3 cannot move a reward outside the honest range,
/// whether it lies high or low and whether it reports first or last.
#[tokio::test]
async fn one_lying_watcher_cannot_move_a_reward_outside_the_honest_range() {
    for (high, liar_first) in [(true, true), (false, true), (true, false)] {
        let opts = Options {
            watchers: 5,
            quorum: 3,
            ..Options::default()
        };
        let mut env = Env::start(opts).await;
        env.warp(200);
        let watchers: Vec<Keypair> = env.watchers.iter().map(|w| w.insecure_clone()).collect();
        let (honest_w, liar) = (&watchers[..4], &watchers[4]);
        let m0 = env.miner(0);
        // Miners 1 and 2: three honest watchers agree.
        for w in &honest_w[..3] {
            for i in 1..3 {
                let m = env.miner(i);
                env.report_as(w, 1, m, upstream_reports()[i]).await.unwrap();
            }
        }
        let honest_reports: Vec<MinerEpochReport> = (0..4).map(honest).collect();
        if liar_first {
            env.report_as(liar, 1, m0, lie(high)).await.unwrap();
            env.report_as(&honest_w[0], 1, m0, honest_reports[0])
                .await
                .unwrap();
            assert!(!env.stats(1, &m0).await.unwrap().accepted, "2 of K = 3");
            env.report_as(&honest_w[1], 1, m0, honest_reports[1])
                .await
                .unwrap();
            let stats = env.stats(1, &m0).await.unwrap();
            assert!(stats.accepted);
            assert_within(&stats.stats, &honest_reports[..2]);
            for (w, r) in honest_w[2..].iter().zip(&honest_reports[2..]) {
                env.report_as(w, 1, m0, *r).await.unwrap();
            }
        } else {
            for (w, r) in honest_w.iter().zip(&honest_reports) {
                env.report_as(w, 1, m0, *r).await.unwrap();
            }
            env.report_as(liar, 1, m0, lie(high)).await.unwrap();
        }
        let stats = env.stats(1, &m0).await.unwrap();
        assert_eq!(stats.reports.len(), 5);
        assert_within(&stats.stats, &honest_reports);

        // The reward lies between what the worst and the best honest report would pay.
        env.finalize_and_open_claims(1).await;
        let totals = env.totals(1).await.unwrap();
        let cfg = totals.params.score.to_score_config();
        let cap = totals.params.score.per_miner_epoch_cap;
        let others: Vec<u128> = (1..3)
            .map(|i| {
                score_miner(
                    &cfg,
                    1,
                    &miner_stats(&upstream_reports()[i], UPSTREAM_STAKES[i]),
                )
                .unwrap()
                .normalized_score
            })
            .collect();
        let reward_for = |r: &MinerEpochReport| {
            let n0 = score_miner(&cfg, 1, &miner_stats(r, UPSTREAM_STAKES[0]))
                .unwrap()
                .normalized_score;
            let mut out = [0u64; 3];
            allocate(
                totals.reward_pool,
                &[n0, others[0], others[1]],
                cap,
                &mut out,
            )
            .unwrap();
            out[0]
        };
        let worst = reward_for(&honest_reports[0]);
        let best = reward_for(&honest_reports[3]);
        assert!(worst < best);
        let before = env.balance(&env.miners[0].token_account.clone()).await;
        env.claim(0, 1).await.unwrap();
        let paid = env.balance(&env.miners[0].token_account.clone()).await - before;
        assert!(
            (worst..=best).contains(&paid),
            "liar high={high} first={liar_first}: paid {paid} outside {worst}..={best}"
        );
        // And what the lie alone would have paid is outside that range.
        let lied = reward_for(&{
            let mut l = lie(high);
            l.first_submit_slot = l.first_submit_slot.clamp(100, 199);
            l
        });
        assert!(
            !(worst..=best).contains(&lied),
            "the lie must matter: {lied}"
        );
    }
}

/// Stats count once K reports exist; a watcher replaces or retracts its own report before
/// the deadline and the totals follow; below K a miner cannot claim.
#[tokio::test]
async fn k_of_n_acceptance_replacement_and_retraction() {
    let opts = Options {
        watchers: 3,
        quorum: 2,
        ..Options::default()
    };
    let mut env = Env::start(opts).await;
    env.warp(200);
    let w: Vec<Keypair> = env.watchers.iter().map(|w| w.insecure_clone()).collect();
    let (m0, m1) = (env.miner(0), env.miner(1));
    let r = upstream_reports();
    env.report_as(&w[0], 1, m0, r[0]).await.unwrap();
    let stats = env.stats(1, &m0).await.unwrap();
    assert!(!stats.accepted);
    assert_eq!(env.totals(1).await.unwrap().miner_count, 0);
    env.report_as(&w[1], 1, m0, r[0]).await.unwrap();
    let accepted = env.stats(1, &m0).await.unwrap();
    assert!(accepted.accepted);
    let totals = env.totals(1).await.unwrap();
    assert_eq!(totals.miner_count, 1);
    assert_eq!(totals.total_normalized_score, accepted.normalized_score);

    // Watcher 0 replaces its report with a better one: the lower median is unchanged (the
    // other report is the lower), so the totals do not move.
    let mut better = r[0];
    better.uptime_score = 10_000;
    env.report_as(&w[0], 1, m0, better).await.unwrap();
    let s = env.stats(1, &m0).await.unwrap();
    assert_eq!(s.reports.len(), 2);
    assert_eq!(s.stats.uptime_score, r[0].uptime_score);
    // With a third report the median moves to the better value.
    env.report_as(&w[2], 1, m0, better).await.unwrap();
    let s = env.stats(1, &m0).await.unwrap();
    assert_eq!(s.stats.uptime_score, 10_000);
    assert!(s.normalized_score > accepted.normalized_score);
    assert_eq!(
        env.totals(1).await.unwrap().total_normalized_score,
        s.normalized_score
    );

    // Retractions: down to one report, the miner is no longer accepted.
    env.retract_as(&w[2], 1, m0).await.unwrap();
    env.retract_as(&w[1], 1, m0).await.unwrap();
    assert_program_error(env.retract_as(&w[1], 1, m0).await, E::NoReport);
    let s = env.stats(1, &m0).await.unwrap();
    assert!(!s.accepted);
    let totals = env.totals(1).await.unwrap();
    assert_eq!((totals.miner_count, totals.total_normalized_score), (0, 0));

    // Miner 1 reaches the quorum; miner 0 does not and cannot claim.
    env.report_as(&w[0], 1, m1, r[1]).await.unwrap();
    env.report_as(&w[2], 1, m1, r[1]).await.unwrap();
    env.finalize_and_open_claims(1).await;
    assert_program_error(env.claim(0, 1).await, E::NotAccepted);
    env.claim(1, 1).await.expect("accepted miner claims");
    let totals = env.totals(1).await.unwrap();
    assert_eq!(totals.claimed_count, totals.miner_count);
    assert_eq!(env.config_account().await.committed_rewards, 0);
}

/// A penalty can slash stake through the registry (CPI signed by the slasher PDA): the
/// tokens move from the stake vault to the treasury, the stake's checkpoint drops; only the
/// dispute authority may do it, and only in the challenge window.
#[tokio::test]
async fn penalty_slashes_stake_through_the_registry() {
    let mut env = Env::start(Options::default()).await;
    env.warp(200);
    env.report_upstream(1).await;
    let m2 = env.miner(2);
    let watcher = env.submitter();
    assert_program_error(
        env.penalize_as(&watcher, 1, m2, 1_000, 100).await,
        E::Unauthorized,
    );
    let vault_before = env.balance(&env.stake_vault.clone()).await;
    let treasury_before = env.balance(&env.treasury.clone()).await;
    let dispute = env.dispute.insecure_clone();
    env.penalize_as(&dispute, 1, m2, 1_000, 300)
        .await
        .expect("penalty with slash");
    assert_eq!(
        vault_before - env.balance(&env.stake_vault.clone()).await,
        300
    );
    assert_eq!(
        env.balance(&env.treasury.clone()).await - treasury_before,
        300
    );
    let stake = env.stake(&m2).await.unwrap();
    assert_eq!((stake.active, stake.slashed_total), (200, 300));
    assert_eq!(stake.weight_for_epoch(2).unwrap(), 200);
    // Epoch 1's weight was read before the slash and stays what it was.
    assert_eq!(stake.weight_for_epoch(1).unwrap(), 500);
    assert_eq!(env.stats(1, &m2).await.unwrap().reward_keep_bps, 9_000);

    // A slash larger than what is left takes the rest.
    env.penalize_as(&dispute, 1, m2, 1, 10_000).await.unwrap();
    assert_eq!(env.stake(&m2).await.unwrap().total().unwrap(), 0);
    // Nothing left: the registry refuses (NothingToSlash, registry code 6026).
    assert_custom(env.penalize_as(&dispute, 1, m2, 1, 1).await, 6026);

    env.finalize_and_open_claims(1).await;
    assert_program_error(
        env.penalize_as(&dispute, 1, m2, 1, 1).await,
        E::ChallengeWindowClosed,
    );
}

/// Stake that counted for an epoch cannot leave before a penalty for that epoch can slash it:
/// an exit requested right after the epoch unlocks only after the challenge window, the
/// slash reaches the pending exit, and a registry whose exit delay is shorter than the
/// reporting deadline plus the challenge window is refused. Conversely, stakers can leave
/// before a newly appointed dispute authority acts: an exit delay longer than the time lock
/// allows is refused too.
#[tokio::test]
async fn stake_cannot_leave_before_penalties_land() {
    let mut env = Env::start(Options::default()).await;
    env.warp(200);
    env.report_upstream(1).await;
    let m0 = env.miner(0);
    // The miner exits everything at the first slot after the epoch (weight of epoch 1 kept).
    env.request_exit(0, UPSTREAM_STAKES[0]).await.unwrap();
    let stake = env.stake(&m0).await.unwrap();
    assert_eq!(stake.weight_for_epoch(1).unwrap(), UPSTREAM_STAKES[0]);
    let unlock = stake.exits[0].unlock_slot;
    env.warp(250);
    env.finalize(1).await.unwrap();
    let claims_open = env.totals(1).await.unwrap().claims_open_slot;
    assert!(
        unlock >= claims_open,
        "unlock {unlock} before the window closes at {claims_open}"
    );
    assert_custom(env.withdraw(0, 0).await, 6013); // ExitLocked
    let dispute = env.dispute.insecure_clone();
    env.penalize_as(&dispute, 1, m0, 10_000, 400).await.unwrap();
    let stake = env.stake(&m0).await.unwrap();
    assert_eq!(stake.exits[0].amount, UPSTREAM_STAKES[0] - 400);
    env.warp(unlock);
    let before = env.balance(&env.miners[0].token_account.clone()).await;
    env.withdraw(0, 0).await.unwrap();
    let got = env.balance(&env.miners[0].token_account.clone()).await - before;
    assert_eq!(got, UPSTREAM_STAKES[0] - 400);

    // A registry whose exit delay undercuts the penalty horizon (50 + 10 slots) is refused.
    let mut env = Env::start(Options::default()).await;
    env.decrease_exit_delay(59).await.unwrap();
    env.warp(200);
    let m1 = env.miner(1);
    assert_program_error(
        env.report(1, m1, upstream_reports()[1]).await,
        E::ExitDelayTooShort,
    );
    env.decrease_exit_delay(60)
        .await
        .expect_err("only decreases");
    let mut env = Env::start(Options::default()).await;
    env.decrease_exit_delay(60).await.unwrap();
    env.warp(200);
    let m1 = env.miner(1);
    env.report(1, m1, upstream_reports()[1])
        .await
        .expect("exactly the horizon is enough");

    // An exit delay longer than (timelock − 1) epochs would let a newly appointed dispute
    // authority slash stake that could not leave after the announcement: refused.
    let mut env = Env::start(Options {
        exit_delay: 101,
        ..Options::default()
    })
    .await;
    env.warp(200);
    let m1 = env.miner(1);
    assert_program_error(
        env.report(1, m1, upstream_reports()[1]).await,
        E::ExitDelayTooLong,
    );
}
