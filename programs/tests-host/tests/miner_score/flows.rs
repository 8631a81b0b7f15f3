//! The flows of the score program: every instruction's success path and every error path that
//! is not an attack, on the test timing (epochs of 100 slots, first epoch 1, reports for epoch
//! `e` in `[(e + 1) × 100, (e + 1) × 100 + 50)`, finalization from the end of that window, a
//! 10-slot challenge window, claims for two epochs, a two-epoch time lock).

use anchor_lang::prelude::Pubkey;
use anchor_lang::solana_program::system_instruction;
use solana_instruction::error::InstructionError;
use solana_keypair::Keypair;
use solana_signer::Signer;
use solana_transaction_error::TransactionError;
use tolldns_miner_score::error::MinerScoreError as E;
use tolldns_miner_score::scoring::miner_stats;
use tolldns_miner_score::state::AllowEntry;
use tolldns_miner_score::{MinerEpochReport, Params, ScoreParams};
use tolldns_score::{allocate, isqrt, reward_share, score_miner};

use crate::harness::{
    assert_custom, assert_program_error, receipt_pda, stats_pda, test_timing, totals_pda,
    upstream_reports, upstream_score_params, Env, Options, UPSTREAM_STAKES,
};
use crate::vectors;

/// The upstream vectors' raw scores (digest §2.6).
const UPSTREAM_RAW: [u128; 3] = [6_464_000, 8_650_000, 4_870_000];

/// Anchor's `AccountNotInitialized` (an account the instruction reads does not exist).
const ACCOUNT_NOT_INITIALIZED: u32 = anchor_lang::error::ErrorCode::AccountNotInitialized as u32;

/// The base reward and vault funding of `Options::default()`.
const BASE: u64 = 60_000_000_000;
const FUNDING: u64 = 1_000_000_000_000;
const CAP: u64 = 50_000_000_000;

/// The normalized scores of the three upstream miners (their stakes from the registry).
fn upstream_normalized() -> Vec<u128> {
    let cfg = upstream_score_params(CAP).to_score_config();
    upstream_reports()
        .iter()
        .zip(UPSTREAM_STAKES)
        .map(|(r, s)| {
            score_miner(&cfg, 1, &miner_stats(r, s))
                .unwrap()
                .normalized_score
        })
        .collect()
}

/// The rewards of the three upstream miners for `pool`, computed with tolldns-score.
fn expected_rewards(pool: u64, cap: u64) -> [u64; 3] {
    let mut out = [0u64; 3];
    let alloc = allocate(pool, &upstream_normalized(), cap, &mut out).unwrap();
    assert_eq!(alloc.allocated + alloc.unallocated, pool);
    out
}

/// `r` with its submit slots moved from epoch 1 into `epoch`.
fn shifted(mut r: MinerEpochReport, epoch: u64) -> MinerEpochReport {
    r.first_submit_slot += (epoch - 1) * 100;
    r.last_submit_slot += (epoch - 1) * 100;
    r
}

/// Sends `lamports` from the payer to `to`.
async fn fund(env: &mut Env, to: &Pubkey, lamports: u64) {
    let ix = system_instruction::transfer(&env.payer(), to, lamports);
    env.send(&[ix], &[]).await.unwrap();
}

/// Claims miner `i`'s reward and returns what its token account received.
async fn claim_delta(env: &mut Env, i: usize, epoch: u64) -> u64 {
    let dest = env.miners[i].token_account;
    let before = env.balance(&dest).await;
    env.claim(i, epoch).await.unwrap();
    env.balance(&dest).await - before
}

fn entry(key: Pubkey, active_from_epoch: u64) -> AllowEntry {
    AllowEntry {
        key,
        active_from_epoch,
    }
}

// ---------------------------------------------------------------------------------------------
// init, authority

#[tokio::test]
async fn init_config_success() {
    let opts = Options {
        watchers: 2,
        quorum: 2,
        ..Options::default()
    };
    let mut env = Env::start(opts.clone()).await;
    let cfg = env.config_account().await;
    let pda = |seed: &[u8]| Pubkey::find_program_address(&[seed], &tolldns_miner_score::ID);
    use tolldns_miner_score::constants::{
        CONFIG_SEED, REWARD_VAULT_SEED, SLASHER_SEED, VAULT_AUTHORITY_SEED,
    };
    assert_eq!(cfg.authority, env.payer());
    assert_eq!(cfg.pending_authority, None);
    assert_eq!(cfg.toll_mint, env.mint);
    assert_eq!(cfg.reward_vault, env.vault);
    assert_eq!(cfg.vault_authority_bump, pda(VAULT_AUTHORITY_SEED).1);
    assert_eq!(cfg.reward_vault_bump, pda(REWARD_VAULT_SEED).1);
    assert_eq!(cfg.slasher_bump, pda(SLASHER_SEED).1);
    assert_eq!(cfg.bump, pda(CONFIG_SEED).1);
    assert_eq!(
        cfg.params,
        Params {
            base_reward_per_epoch: BASE,
            score: upstream_score_params(CAP),
            quorum: 2,
            dispute_authority: env.dispute.pubkey(),
        }
    );
    assert_eq!(cfg.pending_params, None);
    assert_eq!(cfg.timing, test_timing());
    assert_eq!(cfg.next_epoch_to_finalize, test_timing().first_epoch);
    assert_eq!(cfg.committed_rewards, 0);
    let first = test_timing().first_epoch;
    assert_eq!(
        cfg.watchers,
        env.watchers
            .iter()
            .map(|w| entry(w.pubkey(), first))
            .collect::<Vec<_>>()
    );
    assert_eq!(
        cfg.miners,
        (0..3)
            .map(|i| entry(env.miner(i), first))
            .collect::<Vec<_>>()
    );

    // The vault is a token account of the mint owned by the vault-authority PDA.
    let vault = env
        .ctx
        .banks_client
        .get_account(env.vault)
        .await
        .unwrap()
        .unwrap();
    let vault = <anchor_spl::token::spl_token::state::Account as anchor_lang::solana_program::program_pack::Pack>::unpack(&vault.data).unwrap();
    assert_eq!(vault.mint, env.mint);
    assert_eq!(vault.owner, env.vault_authority);
    let vault_key = env.vault;
    assert_eq!(env.balance(&vault_key).await, FUNDING);

    // The config PDA is `init`: a second initialization fails and changes nothing. Anchor
    // 1.x creates accounts with the system program's `CreateAccountAllowPrefund`, which the
    // program-test runtime does not know: it refuses the instruction data (index 1: after
    // the compute-budget instruction) before it could report the account as in use.
    let args = env.init_args(&opts);
    let err = env
        .init_config(args)
        .await
        .expect_err("second init")
        .unwrap();
    assert_eq!(
        err,
        TransactionError::InstructionError(1, InstructionError::InvalidInstructionData)
    );
    assert_eq!(env.config_account().await.params.quorum, 2);
}

#[tokio::test]
async fn init_config_rejects_invalid_parameters() {
    let mut env = Env::start(Options {
        init: false,
        ..Options::default()
    })
    .await;
    let good = env.init_args(&Options::default());

    let mut bad = good.clone();
    bad.params.score.alpha_uptime_bps = 999;
    assert_program_error(env.init_config(bad).await, E::InvalidWeights);

    let mut bad = good.clone();
    bad.params.score.epoch_len_slots = 0;
    assert_program_error(env.init_config(bad).await, E::ZeroEpochLength);

    let mut bad = good.clone();
    bad.params.score.diversity_target = 0;
    assert_program_error(env.init_config(bad).await, E::ZeroDiversityTarget);

    let mut bad = good.clone();
    bad.params.score.centralization_penalty_bps = 10_001;
    assert_program_error(env.init_config(bad).await, E::BpsOutOfRange);

    let mut bad = good.clone();
    bad.params.score.dominance_threshold_bps = 10_001;
    assert_program_error(env.init_config(bad).await, E::BpsOutOfRange);

    // 17 watchers (65 miners would not fit a transaction; the miner bound is tested through
    // `add_miner`).
    let mut bad = good.clone();
    bad.watchers = (0..17).map(|_| Pubkey::new_unique()).collect();
    assert_program_error(env.init_config(bad).await, E::AllowlistTooLarge);

    let mut bad = good.clone();
    let dup = bad.miners[0];
    bad.miners.push(dup);
    assert_program_error(env.init_config(bad).await, E::InvalidConfig);

    let mut bad = good.clone();
    bad.watchers.push(bad.watchers[0]);
    assert_program_error(env.init_config(bad).await, E::InvalidConfig);

    // Timing: every window non-zero, the reporting deadline at most four epochs.
    let timing_cases: [fn(&mut tolldns_miner_score::Timing); 5] = [
        |t| t.reporting_deadline_slots = 0,
        |t| t.challenge_window_slots = 0,
        |t| t.claim_window_epochs = 0,
        |t| t.timelock_epochs = 0,
        |t| t.reporting_deadline_slots = 4 * 100 + 1,
    ];
    for change in timing_cases {
        let mut bad = good.clone();
        change(&mut bad.timing);
        assert_program_error(env.init_config(bad).await, E::InvalidTiming);
    }

    for quorum in [0, 17] {
        let mut bad = good.clone();
        bad.params.quorum = quorum;
        assert_program_error(env.init_config(bad).await, E::InvalidQuorum);
    }

    // Epoch 3 has started: first_epoch 2 is in the past.
    env.warp(300);
    let mut bad = good.clone();
    bad.timing.first_epoch = 2;
    assert_program_error(env.init_config(bad).await, E::FirstEpochInPast);

    // At the bounds it is accepted: 16 watchers, a four-epoch deadline, quorum 16, the current
    // epoch as the first one.
    let mut ok = good;
    ok.watchers = (0..16).map(|_| Pubkey::new_unique()).collect();
    ok.timing.reporting_deadline_slots = 400;
    ok.timing.first_epoch = 3;
    ok.params.quorum = 16;
    env.init_config(ok.clone()).await.unwrap();
    let cfg = env.config_account().await;
    assert_eq!(cfg.watchers.len(), 16);
    assert_eq!(cfg.watchers[15], entry(ok.watchers[15], 3));
    assert_eq!(cfg.timing, ok.timing);
    assert_eq!(cfg.next_epoch_to_finalize, 3);
    assert_eq!(cfg.params.quorum, 16);
}

#[tokio::test]
async fn two_step_authority_transfer() {
    let mut env = Env::start(Options::default()).await;
    let authority = env.authority();
    let stranger = Keypair::new();
    let new_authority = Keypair::new();
    let params = env.config_account().await.params;

    assert_program_error(env.update_params(&stranger, params).await, E::Unauthorized);
    assert_program_error(
        env.accept_authority(&new_authority).await,
        E::NoPendingAuthority,
    );
    assert_program_error(
        env.transfer_authority(&stranger, Some(stranger.pubkey()))
            .await,
        E::Unauthorized,
    );
    env.transfer_authority(&authority, Some(new_authority.pubkey()))
        .await
        .unwrap();
    assert_eq!(
        env.config_account().await.pending_authority,
        Some(new_authority.pubkey())
    );
    assert_program_error(env.accept_authority(&stranger).await, E::Unauthorized);
    // Cancel, then propose again.
    env.transfer_authority(&authority, None).await.unwrap();
    assert_eq!(env.config_account().await.pending_authority, None);
    assert_program_error(
        env.accept_authority(&new_authority).await,
        E::NoPendingAuthority,
    );
    env.transfer_authority(&authority, Some(new_authority.pubkey()))
        .await
        .unwrap();
    // Still the old authority until accepted.
    env.update_params(&authority, params).await.unwrap();
    assert_program_error(
        env.update_params(&new_authority, params).await,
        E::Unauthorized,
    );
    env.accept_authority(&new_authority).await.unwrap();
    let cfg = env.config_account().await;
    assert_eq!(cfg.authority, new_authority.pubkey());
    assert_eq!(cfg.pending_authority, None);
    // A second accept: nothing pending any more.
    assert_program_error(
        env.accept_authority(&new_authority).await,
        E::NoPendingAuthority,
    );
    assert_program_error(env.update_params(&authority, params).await, E::Unauthorized);
    let key = Pubkey::new_unique();
    assert_program_error(
        env.allowlist(&authority, false, true, key).await,
        E::Unauthorized,
    );
    env.update_params(&new_authority, params).await.unwrap();
    env.allowlist(&new_authority, false, true, key)
        .await
        .unwrap();
}

// ---------------------------------------------------------------------------------------------
// A whole epoch

#[tokio::test]
async fn whole_epoch_with_upstream_miners() {
    let mut env = Env::start(Options::default()).await;
    env.warp(200); // epoch 1 = slots [100, 200) has just ended
    env.report_upstream(1).await;
    let watcher = env.submitter().pubkey();

    let mut normalized = Vec::new();
    let mut comps = Vec::new();
    for (i, raw) in UPSTREAM_RAW.iter().enumerate() {
        let miner = env.miner(i);
        let s = env.stats(1, &miner).await.unwrap();
        assert_eq!((s.epoch_id, s.miner), (1, miner));
        assert!(s.accepted);
        assert_eq!(
            s.stake_weight, UPSTREAM_STAKES[i],
            "stake read from the registry"
        );
        assert_eq!(s.stats, upstream_reports()[i], "quorum 1: the one report");
        assert_eq!(s.reports.len(), 1);
        assert_eq!(s.reports[0].watcher, watcher);
        assert_eq!(s.reports[0].slot, 200);
        assert_eq!(s.raw_score, *raw, "raw score of miner {i}");
        assert_eq!(s.normalized_score, isqrt(*raw));
        assert_eq!((s.epoch_start_slot, s.epoch_end_slot), (100, 200));
        assert_eq!(s.updated_at_slot, 200);
        assert_eq!(s.rent_payer, watcher);
        assert_eq!(s.reward_keep_bps, 10_000);
        assert!(!s.claimed);
        normalized.push(s.normalized_score);
        comps.push((s.timeliness_component, s.diversity_component, s.component));
    }
    assert_eq!(normalized, upstream_normalized());
    // Upstream components: timeliness 9900/9500/9800, diversity 1000/4000/9000.
    assert_eq!(
        comps,
        vec![(9900, 1000, 8080), (9500, 4000, 8650), (9800, 9000, 9740)]
    );

    let totals = env.totals(1).await.unwrap();
    assert_eq!(totals.epoch_id, 1);
    assert_eq!(totals.total_raw_score, UPSTREAM_RAW.iter().sum::<u128>());
    assert_eq!(
        totals.total_normalized_score,
        normalized.iter().sum::<u128>()
    );
    assert_eq!((totals.miner_count, totals.open_stats), (3, 3));
    assert_eq!(totals.rent_payer, watcher);
    assert_eq!(totals.params, env.params(&Options::default()));
    assert!(!totals.finalized);

    env.finalize_and_open_claims(1).await;
    let totals = env.totals(1).await.unwrap();
    assert!(totals.finalized);
    assert_eq!(totals.finalized_at_slot, 250);
    assert_eq!(totals.claims_open_slot, 260);
    assert_eq!(totals.claim_deadline_slot, 460);
    assert_eq!(totals.reward_pool, BASE);
    let cfg = env.config_account().await;
    assert_eq!(cfg.committed_rewards, BASE);
    assert_eq!(cfg.next_epoch_to_finalize, 2);

    let expected = expected_rewards(BASE, CAP);
    let total_normalized: u128 = normalized.iter().sum();
    let vault = env.vault;
    let vault_before = env.balance(&vault).await;
    let mut paid = 0u64;
    let mut released = 0u64;
    for (i, want) in expected.iter().enumerate() {
        let delta = claim_delta(&mut env, i, 1).await;
        assert_eq!(delta, *want, "miner {i} paid exactly its allocated reward");
        let miner = env.miner(i);
        let s = env.stats(1, &miner).await.unwrap();
        assert!(s.claimed);
        assert_eq!(s.reward_amount, *want);
        let r = env.receipt(1, &miner).await.unwrap();
        assert_eq!(
            (r.epoch_id, r.miner, r.amount, r.claimed_at_slot),
            (1, miner, *want, 260)
        );
        paid += delta;
        released += reward_share(BASE, normalized[i], total_normalized, u64::MAX).unwrap();
        if i < 2 {
            assert_eq!(
                env.config_account().await.committed_rewards,
                BASE - released,
                "a claim releases the miner's share"
            );
        }
    }
    let mut out = [0u64; 3];
    let alloc = allocate(BASE, &normalized, CAP, &mut out).unwrap();
    assert_eq!(paid, alloc.allocated);
    assert_eq!(paid + alloc.unallocated, BASE);
    assert_eq!(env.balance(&vault).await, vault_before - paid);
    let totals = env.totals(1).await.unwrap();
    assert_eq!(totals.total_claimed, paid);
    assert_eq!(totals.claimed_count, 3);
    assert_eq!(totals.released, BASE);
    // Every claim done: nothing stays committed, the rounding remainder is free again.
    assert_eq!(env.config_account().await.committed_rewards, 0);
}

/// Every `epoch` case of `test-vectors/score.json`, run through the program: the scores, the
/// totals, the pool, the token movements and what stays in the vault match the vectors.
#[tokio::test]
async fn whole_epoch_matches_score_json_vectors() {
    let cases = vectors::epoch_cases().expect("test-vectors/score.json exists");
    assert!(!cases.is_empty());
    for case in cases {
        let msg = case.comment.as_str();
        assert!(
            case.miners.len() <= 3,
            "{msg}: the harness has three miners"
        );
        // The stake weights come from the registry: the vectors' must be the harness's.
        let stakes: Vec<u64> = case.miners.iter().map(|m| m.stake_weight).collect();
        assert_eq!(stakes, UPSTREAM_STAKES[..case.miners.len()], "{msg}");
        assert_eq!(case.score.epoch_len_slots, 100, "{msg}: the test timing");
        let mut env = Env::start(Options {
            base_reward: case.pool,
            score: case.score,
            // Exactly the pool: afterwards the vault must hold exactly the unallocated part.
            vault_funding: case.pool,
            ..Options::default()
        })
        .await;
        let end = tolldns_score::epoch_end_slot(case.epoch_id, case.score.epoch_len_slots).unwrap();
        env.warp(end);
        for (i, m) in case.miners.iter().enumerate() {
            let miner = env.miner(i);
            env.report(case.epoch_id, miner, m.report).await.unwrap();
            let s = env.stats(case.epoch_id, &miner).await.unwrap();
            assert_eq!(s.stake_weight, m.stake_weight, "{msg}: miner {i}");
            assert_eq!(
                s.timeliness_component, m.timeliness_component,
                "{msg}: miner {i}"
            );
            assert_eq!(
                s.diversity_component, m.diversity_component,
                "{msg}: miner {i}"
            );
            assert_eq!(s.component, m.component, "{msg}: miner {i}");
            assert_eq!(s.raw_score, m.raw_score, "{msg}: miner {i}");
            assert_eq!(s.normalized_score, m.normalized_score, "{msg}: miner {i}");
        }
        let totals = env.totals(case.epoch_id).await.unwrap();
        assert_eq!(totals.total_raw_score, case.total_raw_score, "{msg}");
        assert_eq!(
            totals.total_normalized_score, case.total_normalized_score,
            "{msg}"
        );
        assert_eq!(totals.miner_count as usize, case.miners.len(), "{msg}");

        env.finalize_and_open_claims(case.epoch_id).await;
        assert_eq!(
            env.totals(case.epoch_id).await.unwrap().reward_pool,
            case.pool,
            "{msg}"
        );

        let mut paid = 0u64;
        for (i, m) in case.miners.iter().enumerate() {
            let delta = claim_delta(&mut env, i, case.epoch_id).await;
            assert_eq!(delta, m.reward, "{msg}: miner {i} paid exactly its reward");
            paid += delta;
        }
        assert_eq!(paid, case.allocated, "{msg}");
        assert_eq!(paid + case.unallocated, case.pool, "{msg}");
        let vault = env.vault;
        assert_eq!(
            env.balance(&vault).await,
            case.unallocated,
            "{msg}: unallocated stays"
        );
        assert_eq!(env.config_account().await.committed_rewards, 0, "{msg}");
    }
}

// ---------------------------------------------------------------------------------------------
// report_miner_epoch_stats, retract_miner_epoch_stats

#[tokio::test]
async fn report_error_paths() {
    // Miner 2's stake (500) is below this minimum; miners 0 and 1 (1000) are above it.
    let mut env = Env::start(Options {
        score: ScoreParams {
            min_miner_stake_weight: 501,
            ..upstream_score_params(CAP)
        },
        ..Options::default()
    })
    .await;
    let [a, b, c] = upstream_reports();
    let (m0, m1, m2) = (env.miner(0), env.miner(1), env.miner(2));
    let stranger = Keypair::new();

    // Epoch 0 (slot 1): no watcher is active before the first epoch.
    assert_program_error(env.report(1, m0, a).await, E::Unauthorized);

    // Epoch 1 is still open at slot 150; epoch 2 has not even started.
    env.warp(150);
    assert_program_error(env.report(1, m0, a).await, E::EpochNotEnded);
    assert_program_error(env.report(2, m0, a).await, E::EpochNotEnded);
    // An epoch whose end overflows a u64 never ends.
    assert_program_error(env.report(u64::MAX, m0, a).await, E::EpochNotEnded);
    // Epoch 0 precedes the first epoch.
    assert_program_error(env.report(0, m0, a).await, E::BeforeFirstEpoch);

    env.warp(200);
    assert_program_error(env.report_as(&stranger, 1, m0, a).await, E::Unauthorized);
    // A miner without a stake account in the registry cannot be read at all.
    let outsider = Pubkey::new_unique();
    assert_custom(env.report(1, outsider, a).await, ACCOUNT_NOT_INITIALIZED);

    let mut r = a;
    r.first_submit_slot = r.last_submit_slot + 1;
    assert_program_error(env.report(1, m0, r).await, E::InvalidSubmitSlots);
    let mut r = a;
    r.uptime_score = 10_001;
    assert_program_error(env.report(1, m0, r).await, E::InvalidScore);
    let mut r = a;
    r.correctness_score = 10_001;
    assert_program_error(env.report(1, m0, r).await, E::InvalidScore);
    let mut r = a;
    r.dominance_share_bps = 10_001;
    assert_program_error(env.report(1, m0, r).await, E::BpsOutOfRange);
    assert_program_error(env.report(1, m2, c).await, E::InsufficientStakeWeight);
    // Nothing was created by the failed reports.
    assert!(env.totals(1).await.is_none());
    assert!(env.stats(1, &m2).await.is_none());

    // Success; a second report by the same watcher replaces the first one.
    env.report(1, m0, a).await.unwrap();
    let s = env.stats(1, &m0).await.unwrap();
    assert_eq!((s.raw_score, s.stake_weight), (UPSTREAM_RAW[0], 1000));
    env.report(1, m0, b).await.unwrap();
    let s = env.stats(1, &m0).await.unwrap();
    assert_eq!(s.reports.len(), 1);
    assert_eq!(s.stats, b);
    // b was scored with stake 1000, so its raw score is upstream miner B's.
    assert_eq!(s.raw_score, UPSTREAM_RAW[1]);
    let totals = env.totals(1).await.unwrap();
    assert_eq!((totals.miner_count, totals.open_stats), (1, 1));
    assert_eq!(totals.total_raw_score, UPSTREAM_RAW[1]);
    assert_eq!(totals.total_normalized_score, isqrt(UPSTREAM_RAW[1]));

    // A removed miner cannot be reported.
    let authority = env.authority();
    env.allowlist(&authority, false, false, m1).await.unwrap();
    assert_program_error(env.report(1, m1, b).await, E::MinerNotAllowlisted);

    // At the reporting deadline the epoch is closed to reports.
    env.warp(249);
    env.report(1, m0, a).await.unwrap();
    env.warp(250);
    assert_program_error(env.report(1, m0, a).await, E::ReportingClosed);

    // Once finalized, the finalized check comes first (before the clock checks).
    env.finalize(1).await.unwrap();
    assert_program_error(env.report(1, m0, a).await, E::EpochFinalized);
    assert_eq!(
        env.totals(1).await.unwrap().total_raw_score,
        UPSTREAM_RAW[0]
    );
}

#[tokio::test]
async fn report_refuses_a_registry_with_another_epoch_length() {
    // The registry counts epochs of 100 slots; the score program is set up with 50.
    let mut env = Env::start(Options {
        init: false,
        ..Options::default()
    })
    .await;
    let mut args = env.init_args(&Options::default());
    args.params.score.epoch_len_slots = 50;
    env.init_config(args).await.unwrap();
    env.warp(100); // epoch 1 of 50 slots = [50, 100) has ended
    let [a, _, _] = upstream_reports();
    let m0 = env.miner(0);
    assert_program_error(env.report(1, m0, a).await, E::EpochLengthMismatch);
}

/// A removed watcher's report keeps counting, and its replacement waits for the time lock, by
/// which time the epoch's reporting has closed: a miner never holds more than 16 reports (the
/// report instruction still refuses a seventeenth).
#[tokio::test]
async fn a_removed_watchers_report_counts_and_its_replacement_waits() {
    let mut env = Env::start(Options {
        watchers: 16,
        ..Options::default()
    })
    .await;
    let authority = env.authority();
    let [a, _, _] = upstream_reports();
    let m0 = env.miner(0);
    env.warp(200); // epoch 2
    for i in 0..16 {
        let w = env.watchers[i].insecure_clone();
        env.report_as(&w, 1, m0, a).await.unwrap();
    }
    let gone = env.watchers[15].pubkey();
    env.allowlist(&authority, true, false, gone).await.unwrap();
    let late = Keypair::new();
    fund(&mut env, &late.pubkey(), 1_000_000_000).await;
    env.allowlist(&authority, true, true, late.pubkey())
        .await
        .unwrap();
    assert_program_error(env.report_as(&late, 1, m0, a).await, E::Unauthorized);
    let stats = env.stats(1, &m0).await.unwrap();
    assert_eq!(stats.reports.len(), 16);
    assert!(stats.reports.iter().any(|r| r.watcher == gone));
    env.warp(400); // epoch 4: the new watcher is active, epoch 1's reporting long closed
    assert_program_error(env.report_as(&late, 1, m0, a).await, E::ReportingClosed);
    let mut r3 = a;
    r3.first_submit_slot += 200;
    r3.last_submit_slot += 200;
    env.report_as(&late, 3, m0, r3).await.unwrap();
}

#[tokio::test]
async fn first_submit_slot_is_clamped_into_the_epoch() {
    let mut env = Env::start(Options::default()).await;
    env.warp(200);
    let [mut a, mut b, _] = upstream_reports();
    // Before the epoch start: full timeliness. After its end: none.
    a.first_submit_slot = 3;
    b.first_submit_slot = 10_000;
    b.last_submit_slot = 10_000;
    let (ma, mb) = (env.miner(0), env.miner(1));
    env.report(1, ma, a).await.unwrap();
    env.report(1, mb, b).await.unwrap();
    assert_eq!(
        env.stats(1, &ma).await.unwrap().timeliness_component,
        10_000
    );
    assert_eq!(env.stats(1, &mb).await.unwrap().timeliness_component, 0);
}

#[tokio::test]
async fn scoring_parameters_are_snapshotted_per_epoch() {
    let mut env = Env::start(Options::default()).await;
    let authority = env.authority();
    let [a, b, _] = upstream_reports();
    let (ma, mb) = (env.miner(0), env.miner(1));
    let old = env.config_account().await.params;

    env.warp(200); // epoch 2
    env.report(1, ma, a).await.unwrap(); // epoch 1's totals snapshot `old`

    // A decrease of the base reward applies at once, but not to epoch 1 (snapshotted).
    let mut lower = old;
    lower.base_reward_per_epoch = 1_000_000_000;
    env.update_params(&authority, lower).await.unwrap();
    assert_eq!(env.config_account().await.params, lower);

    // New weights are time-locked: from epoch 2 + 2 = 4.
    let mut weights = lower;
    weights.score.alpha_correctness_bps = 10_000;
    weights.score.alpha_diversity_bps = 0;
    weights.score.alpha_timeliness_bps = 0;
    weights.score.alpha_uptime_bps = 0;
    env.update_params(&authority, weights).await.unwrap();
    let cfg = env.config_account().await;
    assert_eq!(cfg.params, lower);
    let pending = cfg.pending_params.unwrap();
    assert_eq!((pending.params, pending.effective_epoch), (weights, 4));

    // Epoch 1 keeps its parameters.
    env.report(1, mb, b).await.unwrap();
    assert_eq!(env.stats(1, &mb).await.unwrap().raw_score, UPSTREAM_RAW[1]);
    assert_eq!(env.totals(1).await.unwrap().params, old);

    // Epochs 2 and 3: the lowered base reward, the old weights.
    env.warp(300);
    env.report(2, mb, shifted(b, 2)).await.unwrap();
    assert_eq!(env.stats(2, &mb).await.unwrap().raw_score, UPSTREAM_RAW[1]);
    assert_eq!(env.totals(2).await.unwrap().params, lower);
    env.warp(400);
    env.report(3, mb, shifted(b, 3)).await.unwrap();
    assert_eq!(env.stats(3, &mb).await.unwrap().raw_score, UPSTREAM_RAW[1]);
    assert_eq!(env.totals(3).await.unwrap().params, lower);

    // Epoch 4: the new weights (correctness only: stake × 10,000).
    env.warp(500);
    env.report(4, mb, shifted(b, 4)).await.unwrap();
    assert_eq!(env.stats(4, &mb).await.unwrap().raw_score, 1000 * 10_000);
    assert_eq!(env.totals(4).await.unwrap().params, weights);

    // Each epoch pays its own snapshot's base reward.
    env.finalize(1).await.unwrap();
    env.finalize(2).await.unwrap();
    assert_eq!(env.totals(1).await.unwrap().reward_pool, BASE);
    assert_eq!(env.totals(2).await.unwrap().reward_pool, 1_000_000_000);
    // The pending change stays pending until the epochs before it are finalized.
    assert!(env.config_account().await.pending_params.is_some());
    env.finalize(3).await.unwrap();
    let cfg = env.config_account().await;
    assert_eq!(cfg.params, weights);
    assert_eq!(cfg.pending_params, None);
}

#[tokio::test]
async fn retract() {
    let mut env = Env::start(Options {
        watchers: 2,
        ..Options::default()
    })
    .await;
    env.warp(200);
    env.report_upstream(1).await;
    let [_, b, _] = upstream_reports();
    let (ma, mb, mc) = (env.miner(0), env.miner(1), env.miner(2));
    let w0 = env.submitter();
    let w1 = env.watchers[1].insecure_clone();
    let stranger = Keypair::new();

    assert_program_error(env.retract_as(&stranger, 1, mb).await, E::Unauthorized);
    // Watcher 1 did not report miner 0.
    assert_program_error(env.retract_as(&w1, 1, ma).await, E::NoReport);

    env.retract_as(&w0, 1, mb).await.unwrap();
    let s = env.stats(1, &mb).await.unwrap();
    assert!(!s.accepted, "quorum 1, no report left");
    assert!(s.reports.is_empty());
    assert_eq!((s.raw_score, s.normalized_score), (0, 0));
    assert_eq!(s.stats, MinerEpochReport::default());
    let totals = env.totals(1).await.unwrap();
    assert_eq!((totals.miner_count, totals.open_stats), (2, 3));
    assert_eq!(totals.total_raw_score, UPSTREAM_RAW[0] + UPSTREAM_RAW[2]);
    assert_eq!(
        totals.total_normalized_score,
        isqrt(UPSTREAM_RAW[0]) + isqrt(UPSTREAM_RAW[2])
    );
    // Nothing left to retract.
    assert_program_error(env.retract_as(&w0, 1, mb).await, E::NoReport);

    // A corrected report for the same miner is accepted and counted once.
    let mut corrected = b;
    corrected.uptime_score = 10_000;
    env.report(1, mb, corrected).await.unwrap();
    let s = env.stats(1, &mb).await.unwrap();
    assert!(s.accepted);
    let totals = env.totals(1).await.unwrap();
    assert_eq!(totals.miner_count, 3);
    assert_eq!(
        totals.total_raw_score,
        UPSTREAM_RAW[0] + UPSTREAM_RAW[2] + s.raw_score
    );

    // Miner C stays retracted.
    env.retract_as(&w0, 1, mc).await.unwrap();

    // After the deadline nothing can be retracted; after finalization neither.
    env.warp(250);
    assert_program_error(env.retract_as(&w0, 1, ma).await, E::ReportingClosed);
    env.finalize_and_open_claims(1).await;
    assert_program_error(env.retract_as(&w0, 1, ma).await, E::EpochFinalized);
    let totals = env.totals(1).await.unwrap();
    assert_eq!(totals.miner_count, 2);

    // The retracted miner has nothing to claim; its stats can be closed at once.
    assert_program_error(env.claim(2, 1).await, E::NotAccepted);
    let payer = w0.pubkey();
    env.close_stats(1, mc, payer).await.unwrap();
    assert!(env.stats(1, &mc).await.is_none());
    env.claim(0, 1).await.unwrap();
    env.claim(1, 1).await.unwrap();
    // The two accepted miners were the last claims: everything is released.
    assert_eq!(env.config_account().await.committed_rewards, 0);
}

// ---------------------------------------------------------------------------------------------
// finalize_epoch

#[tokio::test]
async fn finalize_error_paths() {
    let mut env = Env::start(Options {
        vault_funding: 0,
        ..Options::default()
    })
    .await;
    let [a, _, _] = upstream_reports();
    let ma = env.miner(0);
    let vault = env.vault;

    env.warp(150);
    assert_program_error(env.finalize(0).await, E::BeforeFirstEpoch);
    assert_program_error(env.finalize(2).await, E::EpochOutOfOrder);
    // Epoch 1 ends at slot 200.
    assert_program_error(env.finalize(1).await, E::EpochNotEnded);
    env.warp(200);
    env.report(1, ma, a).await.unwrap();
    env.warp(220);
    assert_program_error(env.finalize(1).await, E::ReportingOpen);
    env.warp(249);
    assert_program_error(env.finalize(1).await, E::ReportingOpen);
    env.warp(250);
    // Epoch 2 after the deadline of epoch 1: still out of order.
    assert_program_error(env.finalize(2).await, E::EpochOutOfOrder);

    // A token account of the right mint that is not the configured vault.
    let fake_vault = {
        let mint = env.mint;
        let owner = env.payer();
        env.create_token_account(&mint, &owner).await
    };
    env.mint_to(&fake_vault, 1_000).await;
    let submitter = env.submitter();
    assert_program_error(
        env.finalize_with(&submitter, 1, fake_vault).await,
        E::InvalidVault,
    );

    // A scored epoch and an empty vault: nothing to pay with.
    assert_program_error(env.finalize(1).await, E::RewardPoolExhausted);
    assert!(!env.totals(1).await.unwrap().finalized);
    env.mint_to(&vault, 7_000).await;

    // Anyone may finalize (here an unfunded key that is not a watcher: the totals exist).
    let stranger = Keypair::new();
    env.finalize_with(&stranger, 1, vault).await.unwrap();
    let totals = env.totals(1).await.unwrap();
    assert!(totals.finalized);
    assert_eq!(totals.reward_pool, 7_000, "bounded by the vault");
    assert_eq!(totals.rent_payer, submitter.pubkey(), "the reporter paid");
    let cfg = env.config_account().await;
    assert_eq!(cfg.committed_rewards, 7_000);
    assert_eq!(cfg.next_epoch_to_finalize, 2);
    // Finalizing again: epoch 1 is no longer the next one.
    assert_program_error(env.finalize(1).await, E::EpochOutOfOrder);
    // Epoch 2 has ended but its reporting deadline (350) has not passed.
    env.warp(300);
    assert_program_error(env.finalize(2).await, E::ReportingOpen);
}

#[tokio::test]
async fn empty_epoch_finalizes_with_a_zero_pool() {
    let mut env = Env::start(Options::default()).await;
    env.warp(250);
    env.finalize(1).await.unwrap();
    let totals = env.totals(1).await.unwrap();
    assert!(totals.finalized);
    assert_eq!((totals.miner_count, totals.reward_pool), (0, 0));
    assert_eq!(totals.rent_payer, env.submitter().pubkey());
    assert_eq!(totals.params, env.params(&Options::default()));
    assert_eq!(env.config_account().await.committed_rewards, 0);
    // And the epoch is closed to reports.
    let [a, _, _] = upstream_reports();
    let ma = env.miner(0);
    assert_program_error(env.report(1, ma, a).await, E::EpochFinalized);

    // An empty epoch needs no funds: with the vault fully committed it still finalizes.
    env.warp(300);
    env.report(2, ma, shifted(a, 2)).await.unwrap();
    env.retract_as(&env.submitter(), 2, ma).await.unwrap();
    env.warp(350);
    env.finalize(2).await.unwrap();
    let totals = env.totals(2).await.unwrap();
    assert_eq!((totals.miner_count, totals.reward_pool), (0, 0));
    assert_eq!(env.config_account().await.committed_rewards, 0);
}

// ---------------------------------------------------------------------------------------------
// claim_miner_reward

#[tokio::test]
async fn claim_error_paths() {
    let mut env = Env::start(Options::default()).await;
    env.warp(200);
    env.report_upstream(1).await;
    assert_program_error(env.claim(0, 1).await, E::EpochNotFinalized);
    env.warp(250);
    env.finalize(1).await.unwrap();
    // The challenge window: slots [250, 260).
    assert_program_error(env.claim(0, 1).await, E::ChallengeWindowOpen);
    env.warp(259);
    assert_program_error(env.claim(0, 1).await, E::ChallengeWindowOpen);
    env.warp(260);

    // Wrong vault: a token account of the right mint that is not the vault.
    let mint = env.mint;
    let owner0 = env.miner(0);
    let fake_vault = env.create_token_account(&mint, &owner0).await;
    env.mint_to(&fake_vault, FUNDING).await;
    let dest0 = env.miners[0].token_account;
    assert_program_error(
        env.claim_with(0, 1, fake_vault, dest0).await,
        E::InvalidVault,
    );

    // Wrong mint: the miner's account of another mint.
    let other_mint = env.create_other_mint().await;
    let wrong_mint_dest = env.create_token_account(&other_mint, &owner0).await;
    let vault = env.vault;
    assert_program_error(
        env.claim_with(0, 1, vault, wrong_mint_dest).await,
        E::InvalidMint,
    );

    // Wrong owner: miner 1's token account as miner 0's destination.
    let dest1 = env.miners[1].token_account;
    assert_program_error(
        env.claim_with(0, 1, vault, dest1).await,
        E::InvalidTokenOwner,
    );
    assert!(env.receipt(1, &owner0).await.is_none());

    // Success, then a replay is refused.
    let expected = expected_rewards(BASE, CAP);
    assert_eq!(claim_delta(&mut env, 0, 1).await, expected[0]);
    let paid_once = env.balance(&dest0).await;
    assert_program_error(env.claim(0, 1).await, E::AlreadyClaimed);
    assert_eq!(env.balance(&dest0).await, paid_once);

    // The claim window: until slot 260 + 2 × 100 = 460 (exclusive).
    env.warp(459);
    assert_eq!(claim_delta(&mut env, 1, 1).await, expected[1]);
    env.warp(460);
    assert_program_error(env.claim(2, 1).await, E::RewardExpired);
    let mc = env.miner(2);
    assert!(!env.stats(1, &mc).await.unwrap().claimed);
}

#[tokio::test]
async fn per_miner_cap_limits_rewards_and_the_rest_stays_in_the_vault() {
    let cap = 15_000_000_000;
    let mut env = Env::start(Options {
        score: upstream_score_params(cap),
        ..Options::default()
    })
    .await;
    env.warp(200);
    env.report_upstream(1).await;
    env.finalize_and_open_claims(1).await;
    let expected = expected_rewards(BASE, cap);
    // The uncapped shares are ≈ 19.6e9 / 22.7e9 / 17.1e9: all three hit the cap.
    assert_eq!(expected, [cap; 3]);
    let vault = env.vault;
    let vault_before = env.balance(&vault).await;
    for i in 0..3 {
        assert_eq!(claim_delta(&mut env, i, 1).await, cap);
    }
    assert_eq!(env.balance(&vault).await, vault_before - 3 * cap);
    // The capped-off part of the pool is uncommitted again.
    assert_eq!(env.config_account().await.committed_rewards, 0);
    assert_eq!(env.totals(1).await.unwrap().total_claimed, 3 * cap);
}

// ---------------------------------------------------------------------------------------------
// penalize_miner

#[tokio::test]
async fn penalties_only_lower_unclaimed_rewards() {
    let mut env = Env::start(Options::default()).await;
    env.warp(200);
    env.report_upstream(1).await;
    let expected = expected_rewards(BASE, CAP);
    let (ma, mb, mc) = (env.miner(0), env.miner(1), env.miner(2));
    let stranger = Keypair::new();
    let watcher = env.submitter();
    let dispute = env.dispute.insecure_clone();

    assert_program_error(
        env.penalize_as(&stranger, 1, ma, 5000, 0).await,
        E::Unauthorized,
    );
    assert_program_error(
        env.penalize_as(&watcher, 1, ma, 5000, 0).await,
        E::Unauthorized,
    );
    assert_program_error(env.penalize(1, ma, 0).await, E::InvalidPenalty);
    assert_program_error(env.penalize(1, ma, 10_001).await, E::InvalidPenalty);

    // Before finalization: A loses half (the seed's upstream check).
    env.penalize(1, ma, 5000).await.unwrap();
    let s = env.stats(1, &ma).await.unwrap();
    assert_eq!((s.reward_keep_bps, s.penalty_count), (5000, 1));
    // The totals are unchanged: a penalty is not redistributed.
    assert_eq!(
        env.totals(1).await.unwrap().total_raw_score,
        UPSTREAM_RAW.iter().sum::<u128>()
    );

    env.warp(250);
    env.finalize(1).await.unwrap();
    // During the challenge window: B loses 50 % twice (compounding to 25 %); C loses
    // everything and 200 of its stake is slashed to the treasury.
    env.penalize(1, mb, 5000).await.unwrap();
    env.penalize(1, mb, 5000).await.unwrap();
    let treasury = env.treasury;
    let treasury_before = env.balance(&treasury).await;
    env.penalize_as(&dispute, 1, mc, 10_000, 200).await.unwrap();
    assert_eq!(env.balance(&treasury).await, treasury_before + 200);
    let stake_c = env.stake(&mc).await.unwrap();
    assert_eq!((stake_c.slashed_total, stake_c.active), (200, 300));
    let s = env.stats(1, &mb).await.unwrap();
    assert_eq!((s.reward_keep_bps, s.penalty_count), (2500, 2));
    assert_eq!(env.stats(1, &mc).await.unwrap().reward_keep_bps, 0);

    // The window closes at slot 260.
    env.warp(260);
    assert_program_error(env.penalize(1, ma, 1000).await, E::ChallengeWindowClosed);

    let keep = |x: u64, keep: u16| {
        u64::try_from(tolldns_score::penalize(u128::from(x), 10_000 - keep).unwrap()).unwrap()
    };
    let want = [keep(expected[0], 5000), keep(expected[1], 2500), 0];
    assert!(want[0] > 0 && want[0] < expected[0]);
    let vault = env.vault;
    let vault_before = env.balance(&vault).await;
    for (i, w) in want.iter().enumerate() {
        assert_eq!(claim_delta(&mut env, i, 1).await, *w, "miner {i}");
    }
    assert_eq!(
        env.balance(&vault).await,
        vault_before - want.iter().sum::<u64>()
    );
    assert_eq!(env.receipt(1, &mc).await.unwrap().amount, 0);
    // What the penalties took stays in the vault, uncommitted.
    assert_eq!(env.config_account().await.committed_rewards, 0);

    // After the claim a penalty is refused by the window check, which comes first: a claim is
    // only possible after the challenge window, so `AlreadyClaimed` cannot be reached here.
    assert_program_error(env.penalize(1, ma, 1000).await, E::ChallengeWindowClosed);
    assert_eq!(env.stats(1, &ma).await.unwrap().reward_amount, want[0]);
}

// ---------------------------------------------------------------------------------------------
// Pool bounds across epochs

#[tokio::test]
async fn pool_is_bounded_by_the_uncommitted_vault_balance_across_epochs() {
    let funding = 100_000_000_000;
    let mut env = Env::start(Options {
        vault_funding: funding,
        ..Options::default()
    })
    .await;
    let vault = env.vault;
    // Epoch 1 takes the full base reward; epoch 2 only what is left uncommitted.
    env.warp(200);
    env.report_upstream(1).await;
    env.warp(250);
    env.finalize(1).await.unwrap();
    env.warp(300);
    env.report_upstream(2).await;
    env.warp(350);
    env.finalize(2).await.unwrap();
    assert_eq!(env.totals(1).await.unwrap().reward_pool, BASE);
    assert_eq!(env.totals(2).await.unwrap().reward_pool, funding - BASE);
    assert_eq!(env.config_account().await.committed_rewards, funding);
    // Epoch 3: the vault is fully committed.
    env.warp(400);
    env.report_upstream(3).await;
    env.warp(450);
    assert_program_error(env.finalize(3).await, E::RewardPoolExhausted);

    // Claims of epoch 1 (open until 460) release its unallocated remainder; epoch 3 can then
    // be finalized with it.
    let mut paid = 0;
    for i in 0..3 {
        paid += claim_delta(&mut env, i, 1).await;
    }
    assert_eq!(paid, expected_rewards(BASE, CAP).iter().sum::<u64>());
    let committed = env.config_account().await.committed_rewards;
    assert_eq!(committed, funding - BASE);
    let leftover = env.balance(&vault).await - committed;
    assert_eq!(leftover, BASE - paid);
    assert!(leftover > 0, "rounding leaves something");
    env.finalize(3).await.unwrap();
    assert_eq!(env.totals(3).await.unwrap().reward_pool, leftover);

    // Epoch 2's claims are bounded by its own (smaller) pool.
    let mut paid2 = 0;
    for i in 0..3 {
        paid2 += claim_delta(&mut env, i, 2).await;
    }
    assert_eq!(
        paid2,
        expected_rewards(funding - BASE, CAP).iter().sum::<u64>()
    );
    assert!(paid + paid2 <= funding);
    // The vault always covers what is still committed (epoch 3's pool).
    let committed = env.config_account().await.committed_rewards;
    assert_eq!(committed, leftover);
    assert!(env.balance(&vault).await >= committed);
}

// ---------------------------------------------------------------------------------------------
// expire_epoch, closing

#[tokio::test]
async fn expiry() {
    let mut env = Env::start(Options::default()).await;
    env.warp(200);
    env.report_upstream(1).await;
    assert_program_error(env.expire(1).await, E::EpochNotFinalized);
    // No totals at all for epoch 5.
    assert_custom(env.expire(5).await, ACCOUNT_NOT_INITIALIZED);
    env.finalize_and_open_claims(1).await; // finalized at 250, claims from 260 until 460
    assert_program_error(env.expire(1).await, E::ClaimWindowOpen);
    env.claim(0, 1).await.unwrap();

    let totals = env.totals(1).await.unwrap();
    let (pool, released) = (totals.reward_pool, totals.released);
    assert!(released > 0 && released < pool);
    let committed = env.config_account().await.committed_rewards;
    assert_eq!(committed, pool - released);
    env.warp(totals.claim_deadline_slot - 1);
    assert_program_error(env.expire(1).await, E::ClaimWindowOpen);
    env.warp(totals.claim_deadline_slot);

    let vault = env.vault;
    let vault_before = env.balance(&vault).await;
    env.expire(1).await.unwrap();
    assert_eq!(
        env.config_account().await.committed_rewards,
        committed - (pool - released)
    );
    let totals = env.totals(1).await.unwrap();
    assert!(totals.expired);
    assert_eq!(totals.released, pool);
    assert_eq!(totals.claimed_count, 1);
    assert_eq!(env.balance(&vault).await, vault_before, "nothing moves");

    assert_program_error(env.expire(1).await, E::RewardExpired);
    assert_program_error(env.claim(1, 1).await, E::RewardExpired);
    assert_eq!(env.config_account().await.committed_rewards, 0);
}

#[tokio::test]
async fn closing() {
    let mut env = Env::start(Options::default()).await;
    let w0 = env.submitter().pubkey();
    let wrong = env.payer();
    let (ma, mb, mc) = (env.miner(0), env.miner(1), env.miner(2));

    // Epoch 1: every reward claimed.
    env.warp(200);
    env.report_upstream(1).await;
    assert_program_error(env.close_stats(1, ma, w0).await, E::EpochNotFinalized);
    assert_program_error(env.close_totals(1, w0).await, E::EpochNotFinalized);
    env.finalize_and_open_claims(1).await;
    assert_program_error(env.close_stats(1, ma, w0).await, E::EpochNotSettled);
    assert_program_error(env.close_totals(1, w0).await, E::EpochNotSettled);
    env.claim(0, 1).await.unwrap();
    assert_program_error(env.close_stats(1, ma, wrong).await, E::InvalidRentReceiver);
    let rent = env.lamports(&stats_pda(1, &ma)).await;
    assert!(rent > 0);
    let before = env.lamports(&w0).await;
    env.close_stats(1, ma, w0).await.unwrap();
    assert_eq!(env.lamports(&w0).await, before + rent);
    assert!(env.stats(1, &ma).await.is_none());
    assert_eq!(env.totals(1).await.unwrap().open_stats, 2);
    // B has not claimed yet.
    assert_program_error(env.close_stats(1, mb, w0).await, E::EpochNotSettled);
    assert_program_error(env.close_totals(1, w0).await, E::EpochNotSettled);
    env.claim(1, 1).await.unwrap();
    env.claim(2, 1).await.unwrap();
    // Everything claimed, but two stats accounts are still open.
    assert_program_error(env.close_totals(1, w0).await, E::EpochNotSettled);
    env.close_stats(1, mb, w0).await.unwrap();
    env.close_stats(1, mc, w0).await.unwrap();
    assert_program_error(env.close_totals(1, wrong).await, E::InvalidRentReceiver);
    let rent = env.lamports(&totals_pda(1)).await;
    let before = env.lamports(&w0).await;
    env.close_totals(1, w0).await.unwrap();
    assert_eq!(env.lamports(&w0).await, before + rent);
    assert!(env.totals(1).await.is_none());

    // The receipt's rent goes back to the miner.
    let rent = env.lamports(&receipt_pda(1, &ma)).await;
    let before = env.lamports(&ma).await;
    env.close_receipt(0, 1).await.unwrap();
    assert_eq!(env.lamports(&ma).await, before + rent);
    assert!(env.receipt(1, &ma).await.is_none());
    assert_custom(env.close_receipt(0, 1).await, ACCOUNT_NOT_INITIALIZED);

    // Epoch 2: one claim, then expiry; the unclaimed stats can be closed once expired.
    env.warp(300);
    env.report_upstream(2).await;
    env.finalize_and_open_claims(2).await; // claims from 360 until 560
    env.claim(0, 2).await.unwrap();
    env.warp(560);
    // The claim deadline has passed, but until `expire_epoch` the stats stay open.
    assert_program_error(env.close_stats(2, mb, w0).await, E::EpochNotSettled);
    env.expire(2).await.unwrap();
    for m in [ma, mb, mc] {
        env.close_stats(2, m, w0).await.unwrap();
    }
    env.close_totals(2, w0).await.unwrap();
    assert!(env.totals(2).await.is_none());

    // Epoch 3: nobody reported; its totals can be closed as soon as it is finalized.
    let finalizer = Keypair::new();
    fund(&mut env, &finalizer.pubkey(), 100_000_000).await;
    let vault = env.vault;
    env.finalize_with(&finalizer, 3, vault).await.unwrap();
    assert_eq!(env.totals(3).await.unwrap().rent_payer, finalizer.pubkey());
    let rent = env.lamports(&totals_pda(3)).await;
    let before = env.lamports(&finalizer.pubkey()).await;
    assert_program_error(env.close_totals(3, w0).await, E::InvalidRentReceiver);
    env.close_totals(3, finalizer.pubkey()).await.unwrap();
    assert_eq!(env.lamports(&finalizer.pubkey()).await, before + rent);
    assert_eq!(env.config_account().await.committed_rewards, 0);
}

// ---------------------------------------------------------------------------------------------
// Allowlists, update_params

#[tokio::test]
async fn allowlists_one_by_one() {
    let mut env = Env::start(Options::default()).await;
    let authority = env.authority();
    let stranger = Keypair::new();
    let [a, b, c] = upstream_reports();
    let (m0, m1, m2) = (env.miner(0), env.miner(1), env.miner(2));
    let w0 = env.submitter().pubkey();

    // Before the first epoch, an addition counts from the first epoch.
    let early = Keypair::new();
    fund(&mut env, &early.pubkey(), 1_000_000_000).await;
    env.allowlist(&authority, true, true, early.pubkey())
        .await
        .unwrap();
    assert_eq!(
        env.config_account().await.watchers,
        vec![entry(w0, 1), entry(early.pubkey(), 1)]
    );

    env.warp(200); // epoch 2
    assert_program_error(
        env.allowlist(&stranger, false, true, Pubkey::new_unique())
            .await,
        E::Unauthorized,
    );
    assert_program_error(
        env.allowlist(&stranger, true, false, w0).await,
        E::Unauthorized,
    );
    assert_program_error(
        env.allowlist(&authority, false, true, m0).await,
        E::AlreadyAllowlisted,
    );
    assert_program_error(
        env.allowlist(&authority, true, true, w0).await,
        E::AlreadyAllowlisted,
    );
    assert_program_error(
        env.allowlist(&authority, false, false, Pubkey::new_unique())
            .await,
        E::NotAllowlisted,
    );
    assert_program_error(
        env.allowlist(&authority, true, false, Pubkey::new_unique())
            .await,
        E::NotAllowlisted,
    );

    // The early watcher reports; once removed it cannot, but its report keeps counting.
    env.report_as(&early, 1, m0, a).await.unwrap();
    env.allowlist(&authority, true, false, early.pubkey())
        .await
        .unwrap();
    assert_program_error(env.report_as(&early, 1, m1, b).await, E::Unauthorized);
    let s = env.stats(1, &m0).await.unwrap();
    assert!(s.accepted);
    assert_eq!(s.reports[0].watcher, early.pubkey());

    // Removing a miner applies at once; adding it back is time-locked (epoch 2 + 2 = 4).
    env.allowlist(&authority, false, false, m2).await.unwrap();
    assert_program_error(env.report(1, m2, c).await, E::MinerNotAllowlisted);
    env.allowlist(&authority, false, true, m2).await.unwrap();
    assert_eq!(
        env.config_account().await.miners,
        vec![entry(m0, 1), entry(m1, 1), entry(m2, 4)]
    );
    assert_program_error(env.report(1, m2, c).await, E::MinerNotAllowlisted);

    // A new watcher acts from epoch 4 on.
    let late = Keypair::new();
    fund(&mut env, &late.pubkey(), 1_000_000_000).await;
    env.allowlist(&authority, true, true, late.pubkey())
        .await
        .unwrap();
    assert_eq!(
        env.config_account().await.watchers,
        vec![entry(w0, 1), entry(late.pubkey(), 4)]
    );
    assert_program_error(env.report_as(&late, 1, m1, b).await, E::Unauthorized);
    env.warp(300); // epoch 3
    assert_program_error(
        env.report_as(&late, 2, m1, shifted(b, 2)).await,
        E::Unauthorized,
    );
    env.warp(400); // epoch 4
    env.report_as(&late, 3, m1, shifted(b, 3)).await.unwrap();
    assert_program_error(
        env.report(3, m2, shifted(c, 3)).await,
        E::MinerNotAllowlisted,
    );
    env.warp(500); // epoch 5
    env.report(4, m2, shifted(c, 4)).await.unwrap();
    let s = env.stats(4, &m2).await.unwrap();
    assert!(s.accepted);
    assert_eq!(s.stake_weight, 500);

    // The bounds: 64 miners, 16 watchers.
    for _ in 3..64 {
        env.allowlist(&authority, false, true, Pubkey::new_unique())
            .await
            .unwrap();
    }
    assert_eq!(env.config_account().await.miners.len(), 64);
    assert_program_error(
        env.allowlist(&authority, false, true, Pubkey::new_unique())
            .await,
        E::AllowlistTooLarge,
    );
    for _ in 2..16 {
        env.allowlist(&authority, true, true, Pubkey::new_unique())
            .await
            .unwrap();
    }
    assert_eq!(env.config_account().await.watchers.len(), 16);
    assert_program_error(
        env.allowlist(&authority, true, true, Pubkey::new_unique())
            .await,
        E::AllowlistTooLarge,
    );
    // Removing one makes room again.
    env.allowlist(&authority, true, false, late.pubkey())
        .await
        .unwrap();
    env.allowlist(&authority, true, true, Pubkey::new_unique())
        .await
        .unwrap();
}

#[tokio::test]
async fn update_params() {
    let mut env = Env::start(Options::default()).await;
    let authority = env.authority();
    let stranger = Keypair::new();
    let start = env.config_account().await.params;

    // Before the first epoch starts, any change applies at once.
    let mut p = start;
    p.base_reward_per_epoch = 70_000_000_000;
    p.quorum = 1;
    env.update_params(&authority, p).await.unwrap();
    let cfg = env.config_account().await;
    assert_eq!((cfg.params, cfg.pending_params), (p, None));

    let mut bad = p;
    bad.score.epoch_len_slots = 50;
    assert_program_error(
        env.update_params(&authority, bad).await,
        E::EpochLengthImmutable,
    );
    assert_program_error(env.update_params(&stranger, p).await, E::Unauthorized);
    for quorum in [0, 17] {
        let mut bad = p;
        bad.quorum = quorum;
        assert_program_error(env.update_params(&authority, bad).await, E::InvalidQuorum);
    }
    let mut bad = p;
    bad.score.alpha_correctness_bps = 0;
    assert_program_error(env.update_params(&authority, bad).await, E::InvalidWeights);

    env.warp(200); // epoch 2
                   // Lowering the base reward and the cap applies at once.
    let mut lower = p;
    lower.base_reward_per_epoch = 10_000_000_000;
    lower.score.per_miner_epoch_cap = 5_000_000_000;
    env.update_params(&authority, lower).await.unwrap();
    let cfg = env.config_account().await;
    assert_eq!((cfg.params, cfg.pending_params), (lower, None));

    // An increase is pending from epoch 2 + 2 = 4.
    let mut up = lower;
    up.base_reward_per_epoch = 20_000_000_000;
    env.update_params(&authority, up).await.unwrap();
    let cfg = env.config_account().await;
    assert_eq!(cfg.params, lower);
    let pending = cfg.pending_params.unwrap();
    assert_eq!((pending.params, pending.effective_epoch), (up, 4));
    assert_eq!(cfg.params_for(3), lower);
    assert_eq!(cfg.params_for(4), up);

    // Not yet in force: another change replaces it.
    let mut up2 = lower;
    up2.base_reward_per_epoch = 30_000_000_000;
    up2.quorum = 2;
    up2.dispute_authority = Pubkey::new_unique();
    env.update_params(&authority, up2).await.unwrap();
    let pending = env.config_account().await.pending_params.unwrap();
    assert_eq!((pending.params, pending.effective_epoch), (up2, 4));

    // A decrease relative to the pending change lowers both the parameters in force and the
    // pending ones, at once.
    let mut down = up2;
    down.base_reward_per_epoch = 25_000_000_000;
    down.score.per_miner_epoch_cap = 4_000_000_000;
    env.update_params(&authority, down).await.unwrap();
    let cfg = env.config_account().await;
    assert_eq!(cfg.params.base_reward_per_epoch, 10_000_000_000);
    assert_eq!(cfg.params.score.per_miner_epoch_cap, 4_000_000_000);
    let pending = cfg.pending_params.unwrap();
    assert_eq!((pending.params, pending.effective_epoch), (down, 4));
    let in_force = cfg.params;

    // Epoch 4: the change is in force but epochs 1..=3 are not finalized: no new change.
    env.warp(400);
    let mut again = down;
    again.base_reward_per_epoch = 40_000_000_000;
    assert_program_error(
        env.update_params(&authority, again).await,
        E::ParamsChangeInFlight,
    );
    env.finalize(1).await.unwrap();
    env.finalize(2).await.unwrap();
    // The epochs finalized without reports snapshot the parameters in force.
    assert_eq!(env.totals(1).await.unwrap().params, in_force);
    assert!(env.config_account().await.pending_params.is_some());
    assert_program_error(
        env.update_params(&authority, again).await,
        E::ParamsChangeInFlight,
    );
    // Finalizing epoch 3 (the last one before the change) promotes it.
    env.warp(450);
    env.finalize(3).await.unwrap();
    assert_eq!(env.totals(3).await.unwrap().params, in_force);
    let cfg = env.config_account().await;
    assert_eq!((cfg.params, cfg.pending_params), (down, None));

    // Now a new change is accepted, time-locked from epoch 4 + 2 = 6.
    env.update_params(&authority, again).await.unwrap();
    let cfg = env.config_account().await;
    assert_eq!(cfg.params, down);
    let pending = cfg.pending_params.unwrap();
    assert_eq!((pending.params, pending.effective_epoch), (again, 6));
}
