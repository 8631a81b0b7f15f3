//! The program-test environment: the score program and the registry as native builtins, the
//! SPL token program (program-test's bundled BPF build), a mint, a funded vault, the registry
//! with a treasury and the score program's slasher PDA, watchers, a dispute authority and three
//! miners whose stake is deposited in the registry during epoch 0.

use crate::common::Bank;
use anchor_lang::prelude::Pubkey;
use anchor_lang::{InstructionData, ToAccountMetas};
use anchor_spl::token::spl_token;
use solana_instruction::error::InstructionError;
use solana_instruction::{AccountMeta, Instruction};
use solana_keypair::Keypair;
use solana_program_test::BanksClientError;
use solana_signer::Signer;
use solana_transaction_error::TransactionError;
use tolldns_miner_score::constants::{
    CLAIM_SEED, CONFIG_SEED, EPOCH_TOTALS_SEED, MINER_EPOCH_SEED, REWARD_VAULT_SEED, SLASHER_SEED,
    VAULT_AUTHORITY_SEED,
};
use tolldns_miner_score::error::MinerScoreError;
use tolldns_miner_score::state::{
    EpochTotals, MinerClaimReceipt, MinerEpochStats, MinerScoreConfig,
};
use tolldns_miner_score::{
    accounts, instruction, InitArgs, MinerEpochReport, Params, ScoreParams, Timing,
};
use tolldns_registry::constants::{
    REGISTRY_CONFIG_SEED, STAKE_SEED, STAKE_VAULT_AUTHORITY_SEED, STAKE_VAULT_SEED,
};
use tolldns_registry::state::Stake;

/// The upstream test's scoring parameters (digest §2.6) with the given cap.
pub fn upstream_score_params(per_miner_epoch_cap: u64) -> ScoreParams {
    ScoreParams {
        epoch_len_slots: 100,
        per_miner_epoch_cap,
        min_miner_stake_weight: 1,
        alpha_correctness_bps: 5000,
        alpha_diversity_bps: 2000,
        alpha_timeliness_bps: 2000,
        alpha_uptime_bps: 1000,
        centralization_penalty_bps: 2000,
        dominance_threshold_bps: 2500,
        diversity_target: 100,
    }
}

/// The upstream test's stake weights (digest §2.6), deposited in the registry for A, B, C.
pub const UPSTREAM_STAKES: [u64; 3] = [1000, 1000, 500];

/// The upstream test's three reports for epoch 1 (digest §2.6), in the order A, B, C (their
/// stake weights are [`UPSTREAM_STAKES`], read from the registry).
pub fn upstream_reports() -> [MinerEpochReport; 3] {
    let r = |_stake: u64, names, first, uptime, dom| MinerEpochReport {
        aggregates_submitted: 1,
        unique_name_count: names,
        unique_receipt_count: names,
        first_submit_slot: first,
        last_submit_slot: 190,
        uptime_score: uptime,
        correctness_score: 10_000,
        dominance_share_bps: dom,
    };
    [
        r(1000, 10, 101, 9000, 4000),
        r(1000, 40, 105, 9500, 2000),
        r(500, 90, 102, 9800, 1000),
    ]
}

/// The test timing: first epoch 1, reports until 50 slots after the epoch's end, a 10-slot
/// challenge window, two epochs to claim, a two-epoch time lock.
pub fn test_timing() -> Timing {
    Timing {
        first_epoch: 1,
        reporting_deadline_slots: 50,
        challenge_window_slots: 10,
        claim_window_epochs: 2,
        timelock_epochs: 2,
    }
}

/// Environment options.
#[derive(Clone, Debug)]
pub struct Options {
    /// `base_reward_per_epoch`.
    pub base_reward: u64,
    /// Scoring parameters (including `per_miner_epoch_cap`).
    pub score: ScoreParams,
    /// Tokens minted into the vault at start.
    pub vault_funding: u64,
    /// Whether to run `init_miner_score_config`.
    pub init: bool,
    /// Number of watchers (all registered at init).
    pub watchers: usize,
    /// K.
    pub quorum: u8,
    /// The clock rules.
    pub timing: Timing,
    /// Stake deposited by each miner during epoch 0 (0: none).
    pub stakes: [u64; 3],
    /// The registry's exit delay (between deadline + challenge window and
    /// `(timelock_epochs − 1)` epochs).
    pub exit_delay: u64,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            base_reward: 60_000_000_000,
            score: upstream_score_params(50_000_000_000),
            vault_funding: 1_000_000_000_000,
            init: true,
            watchers: 1,
            quorum: 1,
            timing: test_timing(),
            stakes: UPSTREAM_STAKES,
            exit_delay: 100,
        }
    }
}

/// One miner: its key and its token account for the reward mint.
pub struct Miner {
    pub key: Keypair,
    pub token_account: Pubkey,
}

/// The test environment.
pub struct Env {
    /// The program-test context and the shared helpers (`Env` dereferences to it).
    pub bank: Bank,
    /// The registered watchers; `watchers[0]` is the default reporter.
    pub watchers: Vec<Keypair>,
    /// The dispute authority.
    pub dispute: Keypair,
    pub mint: Pubkey,
    pub miners: Vec<Miner>,
    pub config: Pubkey,
    pub vault: Pubkey,
    pub vault_authority: Pubkey,
    pub slasher: Pubkey,
    pub registry_config: Pubkey,
    pub stake_vault: Pubkey,
    pub stake_vault_authority: Pubkey,
    /// The registry's treasury (receives slashed stake).
    pub treasury: Pubkey,
}

/// The custom error code of a program error.
pub fn code(e: MinerScoreError) -> u32 {
    u32::from(e)
}

/// Asserts that `res` failed in one of the program's instructions with exactly `expected`.
#[track_caller]
pub fn assert_program_error(res: Result<(), BanksClientError>, expected: MinerScoreError) {
    let err = res.expect_err("the transaction should have failed");
    match err.unwrap() {
        TransactionError::InstructionError(_, InstructionError::Custom(c)) => assert_eq!(
            c,
            code(expected),
            "expected {expected:?} ({}), got custom error {c}",
            code(expected)
        ),
        other => panic!("expected {expected:?}, got {other:?}"),
    }
}

/// Asserts that `res` failed with exactly the custom error `expected` (an Anchor framework code
/// such as 2006 `ConstraintSeeds`, or a registry code).
#[track_caller]
pub fn assert_custom(res: Result<(), BanksClientError>, expected: u32) {
    let err = res.expect_err("the transaction should have failed");
    match err.unwrap() {
        TransactionError::InstructionError(_, InstructionError::Custom(c)) => {
            assert_eq!(c, expected, "expected custom error {expected}, got {c}")
        }
        other => panic!("expected custom error {expected}, got {other:?}"),
    }
}

crate::bank_env!(Env);

impl Env {
    /// Starts program-test, creates the mint, the watchers, the dispute authority, three
    /// funded miners with token accounts, the registry (slasher: this program's PDA) and the
    /// miners' stake deposits (epoch 0, so active from epoch 1), and (unless `opts.init` is
    /// false) initializes the config and funds the vault.
    pub async fn start(opts: Options) -> Self {
        let ctx = tolldns_programs_tests::program_test()
            .start_with_context()
            .await;
        let pda = |seed: &[u8], program: &Pubkey| Pubkey::find_program_address(&[seed], program).0;
        let score = tolldns_miner_score::ID;
        let registry = tolldns_registry::ID;
        let mut env = Self {
            bank: Bank::new(ctx),
            watchers: (0..opts.watchers).map(|_| Keypair::new()).collect(),
            dispute: Keypair::new(),
            mint: Pubkey::default(),
            miners: Vec::new(),
            config: pda(CONFIG_SEED, &score),
            vault: pda(REWARD_VAULT_SEED, &score),
            vault_authority: pda(VAULT_AUTHORITY_SEED, &score),
            slasher: pda(SLASHER_SEED, &score),
            registry_config: pda(REGISTRY_CONFIG_SEED, &registry),
            stake_vault: pda(STAKE_VAULT_SEED, &registry),
            stake_vault_authority: pda(STAKE_VAULT_AUTHORITY_SEED, &registry),
            treasury: Pubkey::default(),
        };
        for w in env.watchers.iter().map(|w| w.pubkey()).collect::<Vec<_>>() {
            env.airdrop(&w, 10_000_000_000).await;
        }
        let dispute = env.dispute.pubkey();
        env.airdrop(&dispute, 1_000_000_000).await;
        env.mint = env.create_mint().await;
        let mint = env.mint;
        let payer = env.payer();
        env.treasury = env.create_token_account(&mint, &payer).await;
        for _ in 0..3 {
            let key = Keypair::new();
            env.airdrop(&key.pubkey(), 1_000_000_000).await;
            let token_account = env.create_token_account(&mint, &key.pubkey()).await;
            env.miners.push(Miner { key, token_account });
        }
        env.init_registry(opts.score.epoch_len_slots, opts.exit_delay)
            .await;
        for (i, &stake) in opts.stakes.iter().enumerate() {
            if stake > 0 {
                env.deposit(i, stake).await.expect("deposit stake");
            }
        }
        if opts.init {
            let args = env.init_args(&opts);
            env.init_config(args).await.expect("init config");
            env.mint_to(&env.vault.clone(), opts.vault_funding).await;
        }
        env
    }

    /// The parameters of `opts` with this environment's dispute authority.
    pub fn params(&self, opts: &Options) -> Params {
        Params {
            base_reward_per_epoch: opts.base_reward,
            score: opts.score,
            quorum: opts.quorum,
            dispute_authority: self.dispute.pubkey(),
        }
    }

    /// The init arguments: the watchers and the three miners from the first epoch.
    pub fn init_args(&self, opts: &Options) -> InitArgs {
        InitArgs {
            params: self.params(opts),
            timing: opts.timing,
            watchers: self.watchers.iter().map(|w| w.pubkey()).collect(),
            miners: self.miners.iter().map(|m| m.key.pubkey()).collect(),
        }
    }

    /// The default reporting watcher.
    pub fn submitter(&self) -> Keypair {
        self.watchers[0].insecure_clone()
    }

    /// A miner's public key.
    pub fn miner(&self, i: usize) -> Pubkey {
        self.miners[i].key.pubkey()
    }

    /// Creates a second mint (for wrong-mint tests).
    pub async fn create_other_mint(&mut self) -> Pubkey {
        self.create_mint().await
    }

    /// Mints `amount` of the reward mint to `to`.
    pub async fn mint_to(&mut self, to: &Pubkey, amount: u64) {
        let ix = spl_token::instruction::mint_to(
            &spl_token::ID,
            &self.mint,
            to,
            &self.payer(),
            &[],
            amount,
        )
        .expect("mint_to");
        self.send(&[ix], &[]).await.expect("mint to");
    }

    /// The config account.
    pub async fn config_account(&mut self) -> MinerScoreConfig {
        let key = self.config;
        self.anchor_account(key).await.expect("config exists")
    }

    /// The epoch totals, if they exist.
    pub async fn totals(&mut self, epoch_id: u64) -> Option<EpochTotals> {
        let key = totals_pda(epoch_id);
        self.anchor_account(key).await
    }

    /// The stats of miner `miner` for `epoch_id`, if they exist.
    pub async fn stats(&mut self, epoch_id: u64, miner: &Pubkey) -> Option<MinerEpochStats> {
        let key = stats_pda(epoch_id, miner);
        self.anchor_account(key).await
    }

    /// The claim receipt, if it exists.
    pub async fn receipt(&mut self, epoch_id: u64, miner: &Pubkey) -> Option<MinerClaimReceipt> {
        let key = receipt_pda(epoch_id, miner);
        self.anchor_account(key).await
    }

    // ----- registry -----

    async fn init_registry(&mut self, epoch_len_slots: u64, exit_delay_slots: u64) {
        let ix = Instruction {
            program_id: tolldns_registry::ID,
            accounts: tolldns_registry::accounts::InitRegistryConfig {
                authority: self.payer(),
                config: self.registry_config,
                toll_mint: self.mint,
                stake_vault_authority: self.stake_vault_authority,
                stake_vault: self.stake_vault,
                treasury: self.treasury,
                token_program: spl_token::ID,
                system_program: anchor_lang::system_program::ID,
            }
            .to_account_metas(None),
            data: tolldns_registry::instruction::InitRegistryConfig {
                args: tolldns_registry::RegistryArgs {
                    epoch_len_slots,
                    exit_delay_slots,
                    ticket_price: 1,
                    slashers: vec![self.slasher],
                },
            }
            .data(),
        };
        self.send(&[ix], &[]).await.expect("init registry");
    }

    /// Mints `amount` to miner `i` and deposits it as stake (active from the next epoch).
    pub async fn deposit(&mut self, i: usize, amount: u64) -> Result<(), BanksClientError> {
        let wallet = self.miners[i].key.insecure_clone();
        let token_account = self.miners[i].token_account;
        self.mint_to(&token_account, amount).await;
        let ix = Instruction {
            program_id: tolldns_registry::ID,
            accounts: tolldns_registry::accounts::DepositStake {
                wallet: wallet.pubkey(),
                config: self.registry_config,
                stake: stake_pda(&wallet.pubkey()),
                wallet_token_account: token_account,
                stake_vault: self.stake_vault,
                token_program: spl_token::ID,
                system_program: anchor_lang::system_program::ID,
            }
            .to_account_metas(None),
            data: tolldns_registry::instruction::DepositStake { amount }.data(),
        };
        self.send(&[ix], &[&wallet]).await
    }

    /// Miner `i` requests the exit of `amount` of its active stake.
    pub async fn request_exit(&mut self, i: usize, amount: u64) -> Result<(), BanksClientError> {
        let wallet = self.miners[i].key.insecure_clone();
        let ix = Instruction {
            program_id: tolldns_registry::ID,
            accounts: tolldns_registry::accounts::RequestExit {
                wallet: wallet.pubkey(),
                config: self.registry_config,
                stake: stake_pda(&wallet.pubkey()),
            }
            .to_account_metas(None),
            data: tolldns_registry::instruction::RequestExit { amount }.data(),
        };
        self.send(&[ix], &[&wallet]).await
    }

    /// Miner `i` withdraws exit ticket `index` into its token account.
    pub async fn withdraw(&mut self, i: usize, index: u8) -> Result<(), BanksClientError> {
        let wallet = self.miners[i].key.insecure_clone();
        let ix = Instruction {
            program_id: tolldns_registry::ID,
            accounts: tolldns_registry::accounts::WithdrawStake {
                wallet: wallet.pubkey(),
                config: self.registry_config,
                stake: stake_pda(&wallet.pubkey()),
                stake_vault: self.stake_vault,
                stake_vault_authority: self.stake_vault_authority,
                wallet_token_account: self.miners[i].token_account,
                token_program: spl_token::ID,
            }
            .to_account_metas(None),
            data: tolldns_registry::instruction::WithdrawStake { index }.data(),
        };
        self.send(&[ix], &[&wallet]).await
    }

    /// The registry authority (the payer) lowers the exit delay.
    pub async fn decrease_exit_delay(&mut self, slots: u64) -> Result<(), BanksClientError> {
        let ix = Instruction {
            program_id: tolldns_registry::ID,
            accounts: tolldns_registry::accounts::RegistryAuthority {
                authority: self.payer(),
                config: self.registry_config,
            }
            .to_account_metas(None),
            data: tolldns_registry::instruction::DecreaseExitDelay { slots }.data(),
        };
        self.send(&[ix], &[]).await
    }

    /// The stake account of `wallet`.
    pub async fn stake(&mut self, wallet: &Pubkey) -> Option<Stake> {
        self.anchor_account(stake_pda(wallet)).await
    }

    // ----- instructions -----

    /// `init_miner_score_config`, signed by the payer.
    pub async fn init_config(&mut self, args: InitArgs) -> Result<(), BanksClientError> {
        let ix = Instruction {
            program_id: tolldns_miner_score::ID,
            accounts: accounts::InitMinerScoreConfig {
                authority: self.payer(),
                config: self.config,
                toll_mint: self.mint,
                vault_authority: self.vault_authority,
                slasher: self.slasher,
                reward_vault: self.vault,
                token_program: spl_token::ID,
                system_program: anchor_lang::system_program::ID,
            }
            .to_account_metas(None),
            data: instruction::InitMinerScoreConfig { args }.data(),
        };
        self.send(&[ix], &[]).await
    }

    fn auth(&self, watcher: &Keypair) -> accounts::WatcherAuth {
        accounts::WatcherAuth {
            watcher: watcher.pubkey(),
            config: self.config,
        }
    }

    fn authority_metas(&self, authority: Pubkey) -> Vec<AccountMeta> {
        accounts::AuthorityOnly {
            authority,
            config: self.config,
        }
        .to_account_metas(None)
    }

    async fn authority_ix(
        &mut self,
        authority: &Keypair,
        data: Vec<u8>,
    ) -> Result<(), BanksClientError> {
        let ix = Instruction {
            program_id: tolldns_miner_score::ID,
            accounts: self.authority_metas(authority.pubkey()),
            data,
        };
        self.send(&[ix], &[authority]).await
    }

    /// `update_params`, signed by `authority`.
    pub async fn update_params(
        &mut self,
        authority: &Keypair,
        params: Params,
    ) -> Result<(), BanksClientError> {
        let data = instruction::UpdateParams { params }.data();
        self.authority_ix(authority, data).await
    }

    /// `add_watcher` / `remove_watcher` / `add_miner` / `remove_miner`, signed by `authority`.
    pub async fn allowlist(
        &mut self,
        authority: &Keypair,
        watchers: bool,
        add: bool,
        key: Pubkey,
    ) -> Result<(), BanksClientError> {
        let data = match (watchers, add) {
            (true, true) => instruction::AddWatcher { key }.data(),
            (true, false) => instruction::RemoveWatcher { key }.data(),
            (false, true) => instruction::AddMiner { key }.data(),
            (false, false) => instruction::RemoveMiner { key }.data(),
        };
        self.authority_ix(authority, data).await
    }

    /// The payer as a keypair (it is the config authority).
    pub fn authority(&self) -> Keypair {
        self.ctx.payer.insecure_clone()
    }

    /// `transfer_authority`, signed by `authority`.
    pub async fn transfer_authority(
        &mut self,
        authority: &Keypair,
        new_authority: Option<Pubkey>,
    ) -> Result<(), BanksClientError> {
        let data = instruction::TransferAuthority { new_authority }.data();
        self.authority_ix(authority, data).await
    }

    /// `accept_authority`, signed by `new_authority`.
    pub async fn accept_authority(
        &mut self,
        new_authority: &Keypair,
    ) -> Result<(), BanksClientError> {
        let ix = Instruction {
            program_id: tolldns_miner_score::ID,
            accounts: accounts::AcceptAuthority {
                new_authority: new_authority.pubkey(),
                config: self.config,
            }
            .to_account_metas(None),
            data: instruction::AcceptAuthority {}.data(),
        };
        self.send(&[ix], &[new_authority]).await
    }

    /// `report_miner_epoch_stats`, signed by `watcher`, reading `stake` as the miner's stake
    /// account.
    pub async fn report_with_stake(
        &mut self,
        watcher: &Keypair,
        epoch_id: u64,
        miner: Pubkey,
        report: MinerEpochReport,
        stake: Pubkey,
    ) -> Result<(), BanksClientError> {
        let ix = Instruction {
            program_id: tolldns_miner_score::ID,
            accounts: accounts::ReportMinerEpochStats {
                auth: self.auth(watcher),
                epoch_totals: totals_pda(epoch_id),
                miner_epoch_stats: stats_pda(epoch_id, &miner),
                registry_config: self.registry_config,
                stake,
                system_program: anchor_lang::system_program::ID,
            }
            .to_account_metas(None),
            data: instruction::ReportMinerEpochStats {
                epoch_id,
                miner,
                report,
            }
            .data(),
        };
        self.send(&[ix], &[watcher]).await
    }

    /// `report_miner_epoch_stats`, signed by `watcher`.
    pub async fn report_as(
        &mut self,
        watcher: &Keypair,
        epoch_id: u64,
        miner: Pubkey,
        report: MinerEpochReport,
    ) -> Result<(), BanksClientError> {
        self.report_with_stake(watcher, epoch_id, miner, report, stake_pda(&miner))
            .await
    }

    /// `report_miner_epoch_stats`, signed by the default watcher.
    pub async fn report(
        &mut self,
        epoch_id: u64,
        miner: Pubkey,
        report: MinerEpochReport,
    ) -> Result<(), BanksClientError> {
        let watcher = self.submitter();
        self.report_as(&watcher, epoch_id, miner, report).await
    }

    /// `retract_miner_epoch_stats`, signed by `watcher`.
    pub async fn retract_as(
        &mut self,
        watcher: &Keypair,
        epoch_id: u64,
        miner: Pubkey,
    ) -> Result<(), BanksClientError> {
        let ix = Instruction {
            program_id: tolldns_miner_score::ID,
            accounts: accounts::RetractMinerEpochStats {
                auth: self.auth(watcher),
                epoch_totals: totals_pda(epoch_id),
                miner_epoch_stats: stats_pda(epoch_id, &miner),
            }
            .to_account_metas(None),
            data: instruction::RetractMinerEpochStats { epoch_id, miner }.data(),
        };
        self.send(&[ix], &[watcher]).await
    }

    /// `finalize_epoch`, signed by `payer`, with `vault` as the reward vault.
    pub async fn finalize_with(
        &mut self,
        payer: &Keypair,
        epoch_id: u64,
        vault: Pubkey,
    ) -> Result<(), BanksClientError> {
        let ix = Instruction {
            program_id: tolldns_miner_score::ID,
            accounts: accounts::FinalizeEpoch {
                payer: payer.pubkey(),
                config: self.config,
                epoch_totals: totals_pda(epoch_id),
                reward_vault: vault,
                system_program: anchor_lang::system_program::ID,
            }
            .to_account_metas(None),
            data: instruction::FinalizeEpoch { epoch_id }.data(),
        };
        self.send(&[ix], &[payer]).await
    }

    /// `finalize_epoch` by the default watcher with the right vault.
    pub async fn finalize(&mut self, epoch_id: u64) -> Result<(), BanksClientError> {
        let payer = self.submitter();
        let vault = self.vault;
        self.finalize_with(&payer, epoch_id, vault).await
    }

    /// Warps past the reporting deadline of `epoch_id` (read from the config), finalizes it,
    /// and warps past the challenge window.
    pub async fn finalize_and_open_claims(&mut self, epoch_id: u64) {
        let config = self.config_account().await;
        let end = (epoch_id + 1) * config.params.score.epoch_len_slots;
        let deadline = end + config.timing.reporting_deadline_slots;
        if self.slot().await < deadline {
            self.warp(deadline);
        }
        self.finalize(epoch_id).await.expect("finalize");
        let open = self.totals(epoch_id).await.unwrap().claims_open_slot;
        self.warp(open);
    }

    /// `claim_miner_reward` for miner `i` with explicit vault and destination accounts.
    pub async fn claim_with(
        &mut self,
        i: usize,
        epoch_id: u64,
        vault: Pubkey,
        destination: Pubkey,
    ) -> Result<(), BanksClientError> {
        let miner = self.miners[i].key.insecure_clone();
        let ix = Instruction {
            program_id: tolldns_miner_score::ID,
            accounts: accounts::ClaimMinerReward {
                miner: miner.pubkey(),
                config: self.config,
                epoch_totals: totals_pda(epoch_id),
                miner_epoch_stats: stats_pda(epoch_id, &miner.pubkey()),
                claim_receipt: receipt_pda(epoch_id, &miner.pubkey()),
                vault_authority: self.vault_authority,
                reward_vault: vault,
                miner_token_account: destination,
                token_program: spl_token::ID,
                system_program: anchor_lang::system_program::ID,
            }
            .to_account_metas(None),
            data: instruction::ClaimMinerReward { epoch_id }.data(),
        };
        self.send(&[ix], &[&miner]).await
    }

    /// `claim_miner_reward` for miner `i` into its own token account.
    pub async fn claim(&mut self, i: usize, epoch_id: u64) -> Result<(), BanksClientError> {
        let vault = self.vault;
        let dest = self.miners[i].token_account;
        self.claim_with(i, epoch_id, vault, dest).await
    }

    /// `penalize_miner`, signed by `signer`, slashing up to `slash` of the miner's stake.
    pub async fn penalize_as(
        &mut self,
        signer: &Keypair,
        epoch_id: u64,
        miner: Pubkey,
        penalty_bps: u16,
        slash: u64,
    ) -> Result<(), BanksClientError> {
        let ix = Instruction {
            program_id: tolldns_miner_score::ID,
            accounts: accounts::PenalizeMiner {
                dispute_authority: signer.pubkey(),
                config: self.config,
                epoch_totals: totals_pda(epoch_id),
                miner_epoch_stats: stats_pda(epoch_id, &miner),
                slasher: self.slasher,
                registry_config: self.registry_config,
                stake: stake_pda(&miner),
                stake_vault: self.stake_vault,
                stake_vault_authority: self.stake_vault_authority,
                treasury: self.treasury,
                registry_program: tolldns_registry::ID,
                token_program: spl_token::ID,
            }
            .to_account_metas(None),
            data: instruction::PenalizeMiner {
                epoch_id,
                miner,
                penalty_bps,
                slash_amount: slash,
                reason_hash: [7u8; 32],
            }
            .data(),
        };
        self.send(&[ix], &[signer]).await
    }

    /// `penalize_miner` by the dispute authority, without a slash.
    pub async fn penalize(
        &mut self,
        epoch_id: u64,
        miner: Pubkey,
        penalty_bps: u16,
    ) -> Result<(), BanksClientError> {
        let dispute = self.dispute.insecure_clone();
        self.penalize_as(&dispute, epoch_id, miner, penalty_bps, 0)
            .await
    }

    /// `expire_epoch`.
    pub async fn expire(&mut self, epoch_id: u64) -> Result<(), BanksClientError> {
        let ix = Instruction {
            program_id: tolldns_miner_score::ID,
            accounts: accounts::ExpireEpoch {
                config: self.config,
                epoch_totals: totals_pda(epoch_id),
            }
            .to_account_metas(None),
            data: instruction::ExpireEpoch { epoch_id }.data(),
        };
        self.send(&[ix], &[]).await
    }

    /// `close_miner_epoch`, rent to `rent_receiver`.
    pub async fn close_stats(
        &mut self,
        epoch_id: u64,
        miner: Pubkey,
        rent_receiver: Pubkey,
    ) -> Result<(), BanksClientError> {
        let ix = Instruction {
            program_id: tolldns_miner_score::ID,
            accounts: accounts::CloseMinerEpoch {
                epoch_totals: totals_pda(epoch_id),
                miner_epoch_stats: stats_pda(epoch_id, &miner),
                rent_receiver,
            }
            .to_account_metas(None),
            data: instruction::CloseMinerEpoch {
                _epoch_id: epoch_id,
                _miner: miner,
            }
            .data(),
        };
        self.send(&[ix], &[]).await
    }

    /// `close_claim_receipt`, signed by miner `i`.
    pub async fn close_receipt(&mut self, i: usize, epoch_id: u64) -> Result<(), BanksClientError> {
        let miner = self.miners[i].key.insecure_clone();
        let ix = Instruction {
            program_id: tolldns_miner_score::ID,
            accounts: accounts::CloseClaimReceipt {
                miner: miner.pubkey(),
                claim_receipt: receipt_pda(epoch_id, &miner.pubkey()),
            }
            .to_account_metas(None),
            data: instruction::CloseClaimReceipt {
                _epoch_id: epoch_id,
            }
            .data(),
        };
        self.send(&[ix], &[&miner]).await
    }

    /// `close_epoch_totals`, rent to `rent_receiver`.
    pub async fn close_totals(
        &mut self,
        epoch_id: u64,
        rent_receiver: Pubkey,
    ) -> Result<(), BanksClientError> {
        let ix = Instruction {
            program_id: tolldns_miner_score::ID,
            accounts: accounts::CloseEpochTotals {
                epoch_totals: totals_pda(epoch_id),
                rent_receiver,
            }
            .to_account_metas(None),
            data: instruction::CloseEpochTotals {
                _epoch_id: epoch_id,
            }
            .data(),
        };
        self.send(&[ix], &[]).await
    }

    /// Reports the three upstream miners for `epoch_id` (their `first_submit_slot`s shifted
    /// into that epoch) by `watcher`.
    pub async fn report_upstream_as(&mut self, watcher: &Keypair, epoch_id: u64) {
        for (i, mut r) in upstream_reports().into_iter().enumerate() {
            let shift = (epoch_id - 1) * 100;
            r.first_submit_slot += shift;
            r.last_submit_slot += shift;
            let miner = self.miner(i);
            self.report_as(watcher, epoch_id, miner, r)
                .await
                .expect("report");
        }
    }

    /// Reports the three upstream miners for `epoch_id` by the default watcher.
    pub async fn report_upstream(&mut self, epoch_id: u64) {
        let watcher = self.submitter();
        self.report_upstream_as(&watcher, epoch_id).await;
    }
}

/// PDA of a wallet's stake account in the registry.
pub fn stake_pda(wallet: &Pubkey) -> Pubkey {
    Pubkey::find_program_address(&[STAKE_SEED, wallet.as_ref()], &tolldns_registry::ID).0
}

/// PDA of the epoch totals.
pub fn totals_pda(epoch_id: u64) -> Pubkey {
    Pubkey::find_program_address(
        &[EPOCH_TOTALS_SEED, &epoch_id.to_le_bytes()],
        &tolldns_miner_score::ID,
    )
    .0
}

/// PDA of a miner's epoch stats.
pub fn stats_pda(epoch_id: u64, miner: &Pubkey) -> Pubkey {
    Pubkey::find_program_address(
        &[MINER_EPOCH_SEED, &epoch_id.to_le_bytes(), miner.as_ref()],
        &tolldns_miner_score::ID,
    )
    .0
}

/// PDA of a claim receipt.
pub fn receipt_pda(epoch_id: u64, miner: &Pubkey) -> Pubkey {
    Pubkey::find_program_address(
        &[CLAIM_SEED, &epoch_id.to_le_bytes(), miner.as_ref()],
        &tolldns_miner_score::ID,
    )
    .0
}
