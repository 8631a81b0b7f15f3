//! Host integration tests of the `tolldns-miner-score` program: every instruction's success
//! path and every error path, on solana-program-test with the program as a native builtin and
//! the real SPL token program.
#![allow(deprecated)] // solana-program-test 3.x marks its API "agave-unstable-api"
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod harness;
mod vectors;

use harness::{assert_program_error, upstream_reports, upstream_score_params, Env, Options};
use solana_keypair::Keypair;
use solana_signer::Signer;
use tolldns_miner_score::error::MinerScoreError as E;
use tolldns_miner_score::ConfigArgs;
use tolldns_score::{allocate, isqrt, score_miner, MinerStats};

/// The upstream vectors' raw scores (digest §2.6).
const UPSTREAM_RAW: [u128; 3] = [6_464_000, 8_650_000, 4_870_000];

fn stats_of(r: &tolldns_miner_score::MinerEpochReport) -> MinerStats {
    MinerStats {
        stake_weight: r.stake_weight,
        unique_name_count: r.unique_name_count,
        first_submit_slot: r.first_submit_slot,
        uptime_score: r.uptime_score,
        correctness_score: r.correctness_score,
        dominance_share_bps: r.dominance_share_bps,
    }
}

/// The rewards of the three upstream miners for `pool`, computed with tolldns-score.
fn expected_rewards(pool: u64, cap: u64) -> [u64; 3] {
    let cfg = upstream_score_params(cap).to_score_config();
    let normalized: Vec<u128> = upstream_reports()
        .iter()
        .map(|r| score_miner(&cfg, 1, &stats_of(r)).unwrap().normalized_score)
        .collect();
    let mut out = [0u64; 3];
    let alloc = allocate(pool, &normalized, cap, &mut out).unwrap();
    assert_eq!(alloc.allocated + alloc.unallocated, pool);
    out
}

// ---------------------------------------------------------------------------------------------
// Config, update, authority transfer

#[tokio::test]
async fn init_config_success() {
    let mut env = Env::start(Options::default()).await;
    let cfg = env.config_account().await;
    assert_eq!(cfg.authority, env.payer());
    assert_eq!(cfg.pending_authority, None);
    assert_eq!(cfg.toll_mint, env.mint);
    assert_eq!(cfg.reward_vault, env.vault);
    assert_eq!(cfg.committed_rewards, 0);
    assert_eq!(cfg.base_reward_per_epoch, 60_000_000_000);
    assert_eq!(cfg.score, upstream_score_params(50_000_000_000));
    assert_eq!(cfg.allowlisted_submitters, vec![env.submitter.pubkey()]);
    assert_eq!(cfg.allowlisted_miners.len(), 3);

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
    assert_eq!(env.balance(&vault_key).await, 1_000_000_000_000);

    // The config PDA is `init`: a second initialization fails.
    let args = env.config_args(&Options::default());
    assert!(env.init_config(args).await.is_err());
}

#[tokio::test]
async fn init_config_rejects_invalid_parameters() {
    let mut env = Env::start(Options {
        init: false,
        ..Options::default()
    })
    .await;
    let good = env.config_args(&Options::default());

    let mut bad = good.clone();
    bad.score.alpha_uptime_bps = 999;
    assert_program_error(env.init_config(bad).await, E::InvalidWeights);

    let mut bad = good.clone();
    bad.score.epoch_len_slots = 0;
    assert_program_error(env.init_config(bad).await, E::ZeroEpochLength);

    let mut bad = good.clone();
    bad.score.diversity_target = 0;
    assert_program_error(env.init_config(bad).await, E::ZeroDiversityTarget);

    let mut bad = good.clone();
    bad.score.centralization_penalty_bps = 10_001;
    assert_program_error(env.init_config(bad).await, E::BpsOutOfRange);

    let mut bad = good.clone();
    bad.score.dominance_threshold_bps = 10_001;
    assert_program_error(env.init_config(bad).await, E::BpsOutOfRange);

    let mut bad = good.clone();
    bad.allowlisted_submitters = (0..17).map(|_| Keypair::new().pubkey()).collect();
    assert_program_error(env.init_config(bad).await, E::AllowlistTooLarge);

    let mut bad = good.clone();
    bad.allowlisted_miners = (0..65).map(|_| Keypair::new().pubkey()).collect();
    assert_program_error(env.init_config(bad).await, E::AllowlistTooLarge);

    let mut bad = good.clone();
    let dup = bad.allowlisted_miners[0];
    bad.allowlisted_miners.push(dup);
    assert_program_error(env.init_config(bad).await, E::InvalidConfig);

    let mut bad = good.clone();
    bad.allowlisted_submitters
        .push(bad.allowlisted_submitters[0]);
    assert_program_error(env.init_config(bad).await, E::InvalidConfig);

    // At the bounds it is accepted.
    let mut ok = good;
    ok.allowlisted_submitters = (0..16).map(|_| Keypair::new().pubkey()).collect();
    ok.allowlisted_miners = (0..64).map(|_| Keypair::new().pubkey()).collect();
    env.init_config(ok).await.unwrap();
    assert_eq!(env.config_account().await.allowlisted_miners.len(), 64);
}

#[tokio::test]
async fn update_config_and_two_step_authority_transfer() {
    let mut env = Env::start(Options::default()).await;
    let authority = env.ctx.payer.insecure_clone();
    let stranger = Keypair::new();
    let new_authority = Keypair::new();

    // Update by the authority.
    let mut args: ConfigArgs = env.config_args(&Options::default());
    args.base_reward_per_epoch = 5;
    args.score.per_miner_epoch_cap = 7;
    args.allowlisted_miners.pop();
    env.update_config(&authority, args.clone()).await.unwrap();
    let cfg = env.config_account().await;
    assert_eq!(cfg.base_reward_per_epoch, 5);
    assert_eq!(cfg.score.per_miner_epoch_cap, 7);
    assert_eq!(cfg.allowlisted_miners.len(), 2);

    // Not by anyone else; epoch length immutable; parameters validated.
    assert_program_error(
        env.update_config(&stranger, args.clone()).await,
        E::Unauthorized,
    );
    let mut bad = args.clone();
    bad.score.epoch_len_slots = 50;
    assert_program_error(
        env.update_config(&authority, bad).await,
        E::EpochLengthImmutable,
    );
    let mut bad = args.clone();
    bad.score.alpha_correctness_bps = 0;
    assert_program_error(env.update_config(&authority, bad).await, E::InvalidWeights);
    let mut bad = args.clone();
    bad.allowlisted_submitters = (0..17).map(|_| Keypair::new().pubkey()).collect();
    assert_program_error(
        env.update_config(&authority, bad).await,
        E::AllowlistTooLarge,
    );

    // Two-step transfer.
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
    assert_program_error(
        env.accept_authority(&new_authority).await,
        E::NoPendingAuthority,
    );
    env.transfer_authority(&authority, Some(new_authority.pubkey()))
        .await
        .unwrap();
    // Still the old authority until accepted.
    env.update_config(&authority, args.clone()).await.unwrap();
    env.accept_authority(&new_authority).await.unwrap();
    let cfg = env.config_account().await;
    assert_eq!(cfg.authority, new_authority.pubkey());
    assert_eq!(cfg.pending_authority, None);
    assert_program_error(
        env.update_config(&authority, args.clone()).await,
        E::Unauthorized,
    );
    env.update_config(&new_authority, args).await.unwrap();
}

// ---------------------------------------------------------------------------------------------
// A whole epoch with the upstream miners

#[tokio::test]
async fn whole_epoch_with_upstream_miners() {
    let opts = Options::default();
    let (base, cap) = (opts.base_reward, opts.score.per_miner_epoch_cap);
    let mut env = Env::start(opts).await;
    env.warp(200); // epoch 1 = slots [100, 200) has just ended
    env.report_upstream(1).await;

    let mut normalized = Vec::new();
    for (i, raw) in UPSTREAM_RAW.iter().enumerate() {
        let miner = env.miner(i);
        let s = env.stats(1, &miner).await.unwrap();
        assert_eq!(s.raw_score, *raw, "raw score of miner {i}");
        assert_eq!(s.normalized_score, isqrt(*raw));
        assert_eq!(s.epoch_start_slot, 100);
        assert_eq!(s.epoch_end_slot, 200);
        assert_eq!(s.submitted_at_slot, 200);
        assert_eq!(s.submitted_by, env.submitter.pubkey());
        normalized.push(s.normalized_score);
    }
    // Upstream components: timeliness 9900/9500/9800, diversity 1000/4000/9000.
    let comps: Vec<(u16, u16, u16)> = {
        let mut v = Vec::new();
        for i in 0..3 {
            let miner = env.miner(i);
            let s = env.stats(1, &miner).await.unwrap();
            v.push((s.timeliness_component, s.diversity_component, s.component));
        }
        v
    };
    assert_eq!(
        comps,
        vec![(9900, 1000, 8080), (9500, 4000, 8650), (9800, 9000, 9740)]
    );

    let totals = env.totals(1).await.unwrap();
    assert_eq!(totals.total_raw_score, UPSTREAM_RAW.iter().sum::<u128>());
    assert_eq!(
        totals.total_normalized_score,
        normalized.iter().sum::<u128>()
    );
    assert_eq!(totals.miner_count, 3);
    assert!(!totals.finalized);

    env.finalize(1).await.unwrap();
    let totals = env.totals(1).await.unwrap();
    assert!(totals.finalized);
    assert_eq!(totals.reward_pool, base);
    assert_eq!(env.config_account().await.committed_rewards, base);

    let expected = expected_rewards(base, cap);
    let vault = env.vault;
    let vault_before = env.balance(&vault).await;
    let mut paid = 0u64;
    for (i, want) in expected.iter().enumerate() {
        let dest = env.miners[i].token_account;
        let before = env.balance(&dest).await;
        env.claim(i, 1).await.unwrap();
        let delta = env.balance(&dest).await - before;
        assert_eq!(delta, *want, "miner {i} paid exactly its allocated reward");
        let miner = env.miner(i);
        let s = env.stats(1, &miner).await.unwrap();
        assert!(s.claimed);
        assert_eq!(s.reward_amount, *want);
        let r = env.receipt(1, &miner).await.unwrap();
        assert_eq!((r.epoch_id, r.miner, r.amount), (1, miner, *want));
        paid += delta;
    }
    assert!(paid <= base, "paid {paid} exceeds the pool {base}");
    assert_eq!(env.balance(&vault).await, vault_before - paid);
    let totals = env.totals(1).await.unwrap();
    assert_eq!(totals.total_claimed, paid);
    assert_eq!(totals.claimed_count, 3);
    assert_eq!(totals.released, base);
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
        let mut env = Env::start(Options {
            base_reward: case.pool,
            score: case.score,
            // Exactly the pool: afterwards the vault must hold exactly the unallocated part.
            vault_funding: case.pool,
            init: true,
        })
        .await;
        let end = tolldns_score::epoch_end_slot(case.epoch_id, case.score.epoch_len_slots).unwrap();
        env.warp(end);
        for (i, m) in case.miners.iter().enumerate() {
            let miner = env.miner(i);
            env.report(case.epoch_id, miner, m.report).await.unwrap();
            let s = env.stats(case.epoch_id, &miner).await.unwrap();
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

        env.finalize(case.epoch_id).await.unwrap();
        assert_eq!(
            env.totals(case.epoch_id).await.unwrap().reward_pool,
            case.pool,
            "{msg}"
        );

        let mut paid = 0u64;
        for (i, m) in case.miners.iter().enumerate() {
            let dest = env.miners[i].token_account;
            let before = env.balance(&dest).await;
            env.claim(i, case.epoch_id).await.unwrap();
            let delta = env.balance(&dest).await - before;
            assert_eq!(delta, m.reward, "{msg}: miner {i} paid exactly its reward");
            paid += delta;
        }
        assert_eq!(paid, case.allocated, "{msg}");
        assert!(paid <= case.pool, "{msg}");
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
// report_miner_epoch_stats

#[tokio::test]
async fn report_error_paths() {
    let mut env = Env::start(Options::default()).await;
    let [a, b, _] = upstream_reports();
    let miner = env.miner(0);
    let stranger = Keypair::new();

    // Epoch 1 is still open at slot 150; epoch 2 has not even started.
    env.warp(150);
    assert_program_error(env.report(1, miner, a).await, E::EpochNotEnded);
    assert_program_error(env.report(2, miner, a).await, E::EpochNotEnded);
    // An epoch whose end overflows a u64 never ends.
    assert_program_error(env.report(u64::MAX, miner, a).await, E::EpochNotEnded);

    env.warp(200);
    assert_program_error(env.report_as(&stranger, 1, miner, a).await, E::Unauthorized);
    let outsider = Keypair::new().pubkey();
    assert_program_error(env.report(1, outsider, a).await, E::MinerNotAllowlisted);

    let mut r = a;
    r.stake_weight = 0;
    assert_program_error(env.report(1, miner, r).await, E::InsufficientStakeWeight);
    let mut r = a;
    r.uptime_score = 10_001;
    assert_program_error(env.report(1, miner, r).await, E::InvalidScore);
    let mut r = a;
    r.correctness_score = 10_001;
    assert_program_error(env.report(1, miner, r).await, E::InvalidScore);
    let mut r = a;
    r.dominance_share_bps = 10_001;
    assert_program_error(env.report(1, miner, r).await, E::BpsOutOfRange);
    let mut r = a;
    r.first_submit_slot = r.last_submit_slot + 1;
    assert_program_error(env.report(1, miner, r).await, E::InvalidSubmitSlots);

    // Success, then a second report for the same miner and epoch is refused.
    env.report(1, miner, a).await.unwrap();
    assert_program_error(env.report(1, miner, b).await, E::AlreadyReported);
    let totals = env.totals(1).await.unwrap();
    assert_eq!(totals.miner_count, 1);
    assert_eq!(totals.total_raw_score, UPSTREAM_RAW[0]);

    // Finalized: no more reports.
    env.finalize(1).await.unwrap();
    let other = env.miner(1);
    assert_program_error(env.report(1, other, b).await, E::EpochFinalized);
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
    env.warp(300);
    let [a, b, _] = upstream_reports();
    let (ma, mb) = (env.miner(0), env.miner(1));
    env.report(1, ma, a).await.unwrap();
    // The authority changes the weights while epoch 1 is being reported.
    let authority = env.ctx.payer.insecure_clone();
    let mut args = env.config_args(&Options::default());
    args.score.alpha_correctness_bps = 10_000;
    args.score.alpha_diversity_bps = 0;
    args.score.alpha_timeliness_bps = 0;
    args.score.alpha_uptime_bps = 0;
    env.update_config(&authority, args).await.unwrap();
    // Epoch 1 keeps its parameters; epoch 2 uses the new ones.
    env.report(1, mb, b).await.unwrap();
    assert_eq!(env.stats(1, &mb).await.unwrap().raw_score, UPSTREAM_RAW[1]);
    let mut b2 = b;
    b2.first_submit_slot += 100;
    b2.last_submit_slot += 100;
    env.report(2, mb, b2).await.unwrap();
    assert_eq!(env.stats(2, &mb).await.unwrap().raw_score, 1000 * 10_000);
}

// ---------------------------------------------------------------------------------------------
// retract_miner_epoch_stats

#[tokio::test]
async fn retract_corrects_totals_and_allows_a_new_report() {
    let mut env = Env::start(Options::default()).await;
    env.warp(200);
    env.report_upstream(1).await;
    let [_, b, _] = upstream_reports();
    let mb = env.miner(1);
    let submitter_key = env.submitter.pubkey();
    let submitter = env.submitter.insecure_clone();
    let stranger = Keypair::new();

    assert_program_error(
        env.retract_as(&stranger, 1, mb, submitter_key).await,
        E::Unauthorized,
    );
    let payer = env.payer();
    assert_program_error(
        env.retract_as(&submitter, 1, mb, payer).await,
        E::InvalidRentReceiver,
    );

    let lamports_before = env.lamports(&submitter_key).await;
    env.retract_as(&submitter, 1, mb, submitter_key)
        .await
        .unwrap();
    assert!(env.stats(1, &mb).await.is_none(), "stats account closed");
    assert!(
        env.lamports(&submitter_key).await > lamports_before,
        "rent returned"
    );
    let totals = env.totals(1).await.unwrap();
    assert_eq!(totals.miner_count, 2);
    assert_eq!(totals.total_raw_score, UPSTREAM_RAW[0] + UPSTREAM_RAW[2]);
    assert_eq!(
        totals.total_normalized_score,
        isqrt(UPSTREAM_RAW[0]) + isqrt(UPSTREAM_RAW[2])
    );

    // A corrected report for the same miner is accepted and counted once.
    let mut corrected = b;
    corrected.uptime_score = 10_000;
    env.report(1, mb, corrected).await.unwrap();
    let s = env.stats(1, &mb).await.unwrap();
    let totals = env.totals(1).await.unwrap();
    assert_eq!(totals.miner_count, 3);
    assert_eq!(
        totals.total_raw_score,
        UPSTREAM_RAW[0] + UPSTREAM_RAW[2] + s.raw_score
    );

    // A penalized report cannot be retracted (it would undo the penalty).
    let ma = env.miner(0);
    env.penalize(1, ma, 1000).await.unwrap();
    assert_program_error(
        env.retract_as(&submitter, 1, ma, submitter_key).await,
        E::ReportPenalized,
    );

    // After finalization nothing can be retracted.
    env.finalize(1).await.unwrap();
    let mc = env.miner(2);
    assert_program_error(
        env.retract_as(&submitter, 1, mc, submitter_key).await,
        E::EpochFinalized,
    );
}

// ---------------------------------------------------------------------------------------------
// finalize_epoch

#[tokio::test]
async fn finalize_error_paths() {
    let mut env = Env::start(Options::default()).await;
    env.warp(150);
    let [a, _, _] = upstream_reports();
    let stranger = Keypair::new();
    // An unauthorized (and unfunded) signer is refused before the empty epoch 0's totals
    // account would be created.
    let vault = env.vault;
    assert_program_error(
        env.finalize_with(&stranger, 0, vault).await,
        E::Unauthorized,
    );
    // Too early: epoch 1 ends at slot 200.
    assert_program_error(env.finalize(1).await, E::EpochNotEnded);
    env.warp(199);
    assert_program_error(env.finalize(1).await, E::EpochNotEnded);
    env.warp(200);
    let ma = env.miner(0);
    env.report(1, ma, a).await.unwrap();

    assert_program_error(
        env.finalize_with(&stranger, 1, vault).await,
        E::Unauthorized,
    );
    // A token account of the right mint that is not the configured vault.
    let fake_vault = {
        let mint = env.mint;
        let owner = env.payer();
        env.create_token_account(&mint, &owner).await
    };
    env.mint_to(&fake_vault, 1_000).await;
    let submitter = env.submitter.insecure_clone();
    assert_program_error(
        env.finalize_with(&submitter, 1, fake_vault).await,
        E::InvalidVault,
    );

    env.finalize(1).await.unwrap();
    assert_program_error(env.finalize(1).await, E::EpochFinalized);
}

#[tokio::test]
async fn empty_epoch_finalizes_with_a_zero_pool() {
    let mut env = Env::start(Options::default()).await;
    env.warp(500);
    env.finalize(3).await.unwrap();
    let totals = env.totals(3).await.unwrap();
    assert!(totals.finalized);
    assert_eq!((totals.miner_count, totals.reward_pool), (0, 0));
    assert_eq!(env.config_account().await.committed_rewards, 0);
    // And the epoch is closed to reports.
    let [a, _, _] = upstream_reports();
    let ma = env.miner(0);
    assert_program_error(env.report(3, ma, a).await, E::EpochFinalized);
}

// ---------------------------------------------------------------------------------------------
// claim_miner_reward

#[tokio::test]
async fn claim_error_paths() {
    let mut env = Env::start(Options::default()).await;
    env.warp(200);
    env.report_upstream(1).await;
    assert_program_error(env.claim(0, 1).await, E::EpochNotFinalized);
    env.finalize(1).await.unwrap();

    // Wrong vault: a token account of the right mint that is not the vault.
    let mint = env.mint;
    let owner0 = env.miner(0);
    let fake_vault = env.create_token_account(&mint, &owner0).await;
    env.mint_to(&fake_vault, 1_000_000_000_000).await;
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

    // Success, then a replay is refused.
    env.claim(0, 1).await.unwrap();
    assert_program_error(env.claim(0, 1).await, E::AlreadyClaimed);
    let paid_once = env.balance(&dest0).await;
    assert!(paid_once > 0);
    assert_program_error(env.claim(0, 1).await, E::AlreadyClaimed);
    assert_eq!(env.balance(&dest0).await, paid_once);
}

#[tokio::test]
async fn per_miner_cap_limits_rewards_and_the_rest_stays_in_the_vault() {
    let opts = Options {
        score: upstream_score_params(15_000_000_000),
        ..Options::default()
    };
    let (base, cap) = (opts.base_reward, opts.score.per_miner_epoch_cap);
    let mut env = Env::start(opts).await;
    env.warp(200);
    env.report_upstream(1).await;
    env.finalize(1).await.unwrap();
    let expected = expected_rewards(base, cap);
    // The uncapped shares are ≈ 19.6e9 / 22.7e9 / 17.1e9: all three hit the cap.
    assert_eq!(expected, [cap; 3]);
    let vault = env.vault;
    let vault_before = env.balance(&vault).await;
    for i in 0..3 {
        env.claim(i, 1).await.unwrap();
        let dest = env.miners[i].token_account;
        assert_eq!(env.balance(&dest).await, cap);
    }
    assert_eq!(env.balance(&vault).await, vault_before - 3 * cap);
    // The capped-off part of the pool is uncommitted again.
    assert_eq!(env.config_account().await.committed_rewards, 0);
}

// ---------------------------------------------------------------------------------------------
// penalize_miner

#[tokio::test]
async fn penalties_only_lower_unclaimed_rewards() {
    let opts = Options::default();
    let (base, cap) = (opts.base_reward, opts.score.per_miner_epoch_cap);
    let mut env = Env::start(opts).await;
    env.warp(200);
    env.report_upstream(1).await;
    let expected = expected_rewards(base, cap);
    let (ma, mb, mc) = (env.miner(0), env.miner(1), env.miner(2));
    let stranger = Keypair::new();

    assert_program_error(
        env.penalize_as(&stranger, 1, ma, 5000).await,
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

    env.finalize(1).await.unwrap();
    // After finalization: B loses 50 % twice (compounding to 25 %); C loses everything.
    env.penalize(1, mb, 5000).await.unwrap();
    env.penalize(1, mb, 5000).await.unwrap();
    env.penalize(1, mc, 10_000).await.unwrap();
    assert_eq!(env.stats(1, &mb).await.unwrap().reward_keep_bps, 2500);

    let halve = |x: u64, keep: u128| {
        u64::try_from(
            tolldns_score::penalize(u128::from(x), u16::try_from(10_000 - keep).unwrap()).unwrap(),
        )
        .unwrap()
    };
    let want = [halve(expected[0], 5000), halve(expected[1], 2500), 0];
    let vault = env.vault;
    let vault_before = env.balance(&vault).await;
    for (i, w) in want.iter().enumerate() {
        let dest = env.miners[i].token_account;
        env.claim(i, 1).await.unwrap();
        assert_eq!(env.balance(&dest).await, *w, "miner {i}");
    }
    assert_eq!(
        env.balance(&vault).await,
        vault_before - want.iter().sum::<u64>()
    );
    assert_eq!(env.receipt(1, &mc).await.unwrap().amount, 0);
    assert_eq!(env.config_account().await.committed_rewards, 0);

    // After the claim a penalty is refused, and nothing changes.
    assert_program_error(env.penalize(1, ma, 1000).await, E::AlreadyClaimed);
    assert_eq!(env.stats(1, &ma).await.unwrap().reward_amount, want[0]);
}

// ---------------------------------------------------------------------------------------------
// Pool bounds across epochs

#[tokio::test]
async fn pool_is_bounded_by_the_uncommitted_vault_balance_across_epochs() {
    let opts = Options {
        base_reward: 60_000_000_000,
        score: upstream_score_params(50_000_000_000),
        vault_funding: 100_000_000_000,
        init: true,
    };
    let cap = opts.score.per_miner_epoch_cap;
    let mut env = Env::start(opts).await;
    env.warp(400);
    for e in 1..=3 {
        env.report_upstream(e).await;
    }
    // Epoch 1 takes the full base reward; epoch 2 only what is left uncommitted.
    env.finalize(1).await.unwrap();
    env.finalize(2).await.unwrap();
    assert_eq!(env.totals(1).await.unwrap().reward_pool, 60_000_000_000);
    assert_eq!(env.totals(2).await.unwrap().reward_pool, 40_000_000_000);
    assert_eq!(
        env.config_account().await.committed_rewards,
        100_000_000_000
    );
    // Epoch 3: the vault is fully committed.
    assert_program_error(env.finalize(3).await, E::RewardPoolExhausted);

    // Claims of epoch 1 release its unallocated remainder; epoch 3 can then be finalized with it.
    let vault = env.vault;
    let mut paid = 0;
    for i in 0..3 {
        let dest = env.miners[i].token_account;
        let before = env.balance(&dest).await;
        env.claim(i, 1).await.unwrap();
        paid += env.balance(&dest).await - before;
    }
    assert_eq!(
        paid,
        expected_rewards(60_000_000_000, cap).iter().sum::<u64>()
    );
    let committed = env.config_account().await.committed_rewards;
    assert_eq!(committed, 40_000_000_000);
    let leftover = env.balance(&vault).await - committed;
    assert_eq!(leftover, 60_000_000_000 - paid);
    if leftover > 0 {
        env.finalize(3).await.unwrap();
        assert_eq!(env.totals(3).await.unwrap().reward_pool, leftover);
    }

    // Epoch 2's claims are bounded by its own (smaller) pool.
    let mut paid2 = 0;
    for i in 0..3 {
        let dest = env.miners[i].token_account;
        let before = env.balance(&dest).await;
        env.claim(i, 2).await.unwrap();
        paid2 += env.balance(&dest).await - before;
    }
    assert_eq!(
        paid2,
        expected_rewards(40_000_000_000, cap).iter().sum::<u64>()
    );
    assert!(paid + paid2 <= 100_000_000_000);
    // The vault always covers what is still committed.
    let committed = env.config_account().await.committed_rewards;
    assert!(env.balance(&vault).await >= committed);
}
