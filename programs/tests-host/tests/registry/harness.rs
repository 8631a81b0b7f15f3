//! The program-test environment of the registry: the program as a native builtin, the SPL
//! token program (program-test's bundled BPF build), a mint, a treasury, a slasher and three
//! funded users with token accounts.

use crate::common::Bank;
use anchor_lang::prelude::Pubkey;
use anchor_lang::{InstructionData, ToAccountMetas};
use anchor_spl::token::spl_token;
use solana_instruction::error::InstructionError;
use solana_instruction::{AccountMeta, Instruction};
use solana_keypair::Keypair;
use solana_program_test::{processor, BanksClientError, ProgramTest};
use solana_signer::Signer;
use solana_transaction_error::TransactionError;
use tolldns_registry::constants::{
    OPERATOR_SEED, REGISTRY_CONFIG_SEED, STAKE_SEED, STAKE_VAULT_AUTHORITY_SEED, STAKE_VAULT_SEED,
    TICKET_QUOTA_SEED,
};
use tolldns_registry::error::RegistryError;
use tolldns_registry::state::{Operator, RegistryConfig, Stake, TicketQuota};
use tolldns_registry::{
    accounts, instruction, Endpoint, OperatorArgs, OperatorStatus, OperatorUpdate, RegistryArgs,
};

/// Epoch length of the test registry.
pub const EPOCH_LEN: u64 = 100;
/// Exit delay of the test registry.
pub const EXIT_DELAY: u64 = 50;
/// Initial ticket price.
pub const PRICE: u64 = 1_000;
/// Tokens minted to each user at start.
pub const USER_FUNDS: u64 = 1_000_000;

/// Anchor's `ConstraintSeeds` error code.
pub const CONSTRAINT_SEEDS: u32 = 2006;

tolldns_programs_tests::anchor_builtin!(entry_wrapper, tolldns_registry::entry);

/// One user: its key and its token account for the TOLL mint.
pub struct User {
    pub key: Keypair,
    pub token_account: Pubkey,
}

/// The test environment.
pub struct Env {
    /// The program-test context and the shared helpers (`Env` dereferences to it).
    pub bank: Bank,
    pub mint: Pubkey,
    pub treasury: Pubkey,
    pub treasury_owner: Keypair,
    /// A slasher configured at init (active from slot 0).
    pub slasher: Keypair,
    /// A ticket issuer: an operator with the issuer role, registered at init (its wallet is
    /// the ed25519 key of `[0x43; 32]`, as in `test-vectors/ticket-quota.json`).
    pub issuer: Keypair,
    pub users: Vec<User>,
    pub config: Pubkey,
    pub vault: Pubkey,
    pub vault_authority: Pubkey,
}

/// The custom error code of a program error.
pub fn code(e: RegistryError) -> u32 {
    u32::from(e)
}

/// Asserts that `res` failed in an instruction with exactly `Custom(expected)`.
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

/// Asserts that `res` failed in one of the program's instructions with exactly `expected`.
#[track_caller]
pub fn assert_program_error(res: Result<(), BanksClientError>, expected: RegistryError) {
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

/// A valid operator registration.
pub fn operator_args(key: u8) -> OperatorArgs {
    OperatorArgs {
        signing_key: [key; 32],
        roles: 0b10 | tolldns_registry::constants::ROLE_WATCHER,
        backend_ids: vec!["gw-eu-1".to_string(), "cache.a".to_string()],
        endpoints: vec![Endpoint {
            transport: 4,
            address: "https://edge.example/dns-query".to_string(),
        }],
    }
}

/// PDA of a wallet's operator.
pub fn operator_pda(wallet: &Pubkey) -> Pubkey {
    Pubkey::find_program_address(&[OPERATOR_SEED, wallet.as_ref()], &tolldns_registry::ID).0
}

/// PDA of a wallet's stake.
pub fn stake_pda(wallet: &Pubkey) -> Pubkey {
    Pubkey::find_program_address(&[STAKE_SEED, wallet.as_ref()], &tolldns_registry::ID).0
}

/// PDA of a buyer's ticket quota at an issuer (by the issuer's wallet).
pub fn quota_pda(buyer: &Pubkey, issuer: &Pubkey) -> Pubkey {
    Pubkey::find_program_address(
        &[TICKET_QUOTA_SEED, buyer.as_ref(), issuer.as_ref()],
        &tolldns_registry::ID,
    )
    .0
}

/// An issuer's operator profile: the issuer role only.
pub fn issuer_args() -> OperatorArgs {
    OperatorArgs {
        signing_key: [0x43; 32],
        roles: tolldns_registry::constants::ROLE_ISSUER,
        backend_ids: Vec::new(),
        endpoints: vec![Endpoint {
            transport: 4,
            address: "https://issuer.example/token-request".to_string(),
        }],
    }
}

crate::bank_env!(Env);

impl Env {
    /// Starts program-test, creates the mint, the treasury, three funded users with token
    /// accounts, and (if `init`) initializes the registry with [`Env::registry_args`].
    pub async fn start(init: bool) -> Self {
        let mut pt = ProgramTest::new(
            "tolldns_registry",
            tolldns_registry::ID,
            processor!(entry_wrapper),
        );
        pt.prefer_bpf(false);
        let ctx = pt.start_with_context().await;
        let pda = |seed: &[u8]| Pubkey::find_program_address(&[seed], &tolldns_registry::ID).0;
        let mut env = Self {
            bank: Bank::new(ctx),
            mint: Pubkey::default(),
            treasury: Pubkey::default(),
            treasury_owner: Keypair::new(),
            slasher: Keypair::new(),
            issuer: Keypair::new_from_array([0x43; 32]),
            users: Vec::new(),
            config: pda(REGISTRY_CONFIG_SEED),
            vault: pda(STAKE_VAULT_SEED),
            vault_authority: pda(STAKE_VAULT_AUTHORITY_SEED),
        };
        let slasher = env.slasher.pubkey();
        env.airdrop(&slasher, 1_000_000_000).await;
        env.mint = env.create_mint().await;
        let mint = env.mint;
        let owner = env.treasury_owner.pubkey();
        env.treasury = env.create_token_account(&mint, &owner).await;
        for _ in 0..3 {
            let key = Keypair::new();
            env.airdrop(&key.pubkey(), 1_000_000_000).await;
            let token_account = env.create_token_account(&mint, &key.pubkey()).await;
            env.mint_to(&token_account, USER_FUNDS).await;
            env.users.push(User { key, token_account });
        }
        if init {
            let args = env.registry_args();
            let treasury = env.treasury;
            env.init_registry(args, treasury).await.expect("init");
            let issuer = env.issuer.insecure_clone();
            env.airdrop(&issuer.pubkey(), 1_000_000_000).await;
            env.register_operator(&issuer, issuer_args())
                .await
                .expect("register the issuer");
        }
        env
    }

    /// The default registry arguments: epoch 100, exit delay 50, price 1000, one slasher.
    pub fn registry_args(&self) -> RegistryArgs {
        RegistryArgs {
            epoch_len_slots: EPOCH_LEN,
            exit_delay_slots: EXIT_DELAY,
            ticket_price: PRICE,
            slashers: vec![self.slasher.pubkey()],
        }
    }

    /// A copy of user `i`'s key.
    pub fn user(&self, i: usize) -> Keypair {
        self.users[i].key.insecure_clone()
    }

    /// User `i`'s token account.
    pub fn token_account(&self, i: usize) -> Pubkey {
        self.users[i].token_account
    }

    /// Sends one registry instruction signed by `signer` (besides the payer).
    async fn call(
        &mut self,
        accounts: Vec<AccountMeta>,
        data: Vec<u8>,
        signer: &Keypair,
    ) -> Result<(), BanksClientError> {
        let ix = Instruction {
            program_id: tolldns_registry::ID,
            accounts,
            data,
        };
        self.send(&[ix], &[signer]).await
    }

    /// Mints `amount` of the TOLL mint to `to`.
    pub async fn mint_to(&mut self, to: &Pubkey, amount: u64) {
        let mint = self.mint;
        self.mint_of_to(&mint, to, amount).await;
    }

    /// The stake vault's balance.
    pub async fn vault_balance(&mut self) -> u64 {
        let vault = self.vault;
        self.balance(&vault).await
    }

    /// The treasury's balance.
    pub async fn treasury_balance(&mut self) -> u64 {
        let treasury = self.treasury;
        self.balance(&treasury).await
    }

    /// The config account.
    pub async fn config_account(&mut self) -> RegistryConfig {
        let key = self.config;
        self.anchor_account(key).await.expect("config exists")
    }

    /// A wallet's operator, if it exists.
    pub async fn operator(&mut self, wallet: &Pubkey) -> Option<Operator> {
        self.anchor_account(operator_pda(wallet)).await
    }

    /// A wallet's stake, if it exists.
    pub async fn stake(&mut self, wallet: &Pubkey) -> Option<Stake> {
        self.anchor_account(stake_pda(wallet)).await
    }

    /// A buyer's ticket quota, if it exists.
    pub async fn quota(&mut self, buyer: &Pubkey) -> Option<TicketQuota> {
        let issuer = self.issuer.pubkey();
        self.anchor_account(quota_pda(buyer, &issuer)).await
    }

    // ----- config and authority -----

    /// `init_registry_config`, signed by the payer, with `treasury`.
    pub async fn init_registry(
        &mut self,
        args: RegistryArgs,
        treasury: Pubkey,
    ) -> Result<(), BanksClientError> {
        let metas = accounts::InitRegistryConfig {
            authority: self.payer(),
            config: self.config,
            toll_mint: self.mint,
            stake_vault_authority: self.vault_authority,
            stake_vault: self.vault,
            treasury,
            token_program: spl_token::ID,
            system_program: anchor_lang::system_program::ID,
        }
        .to_account_metas(None);
        let ix = Instruction {
            program_id: tolldns_registry::ID,
            accounts: metas,
            data: instruction::InitRegistryConfig { args }.data(),
        };
        self.send(&[ix], &[]).await
    }

    fn authority_metas(&self, authority: &Keypair) -> Vec<AccountMeta> {
        accounts::RegistryAuthority {
            authority: authority.pubkey(),
            config: self.config,
        }
        .to_account_metas(None)
    }

    /// `set_ticket_price`, signed by `authority`.
    pub async fn set_ticket_price(
        &mut self,
        authority: &Keypair,
        price: u64,
    ) -> Result<(), BanksClientError> {
        let metas = self.authority_metas(authority);
        let data = instruction::SetTicketPrice { price }.data();
        self.call(metas, data, authority).await
    }

    /// `decrease_exit_delay`, signed by `authority`.
    pub async fn decrease_exit_delay(
        &mut self,
        authority: &Keypair,
        slots: u64,
    ) -> Result<(), BanksClientError> {
        let metas = self.authority_metas(authority);
        let data = instruction::DecreaseExitDelay { slots }.data();
        self.call(metas, data, authority).await
    }

    /// `add_slasher`, signed by `authority`.
    pub async fn add_slasher(
        &mut self,
        authority: &Keypair,
        key: Pubkey,
    ) -> Result<(), BanksClientError> {
        let metas = self.authority_metas(authority);
        let data = instruction::AddSlasher { key }.data();
        self.call(metas, data, authority).await
    }

    /// `remove_slasher`, signed by `authority`.
    pub async fn remove_slasher(
        &mut self,
        authority: &Keypair,
        key: Pubkey,
    ) -> Result<(), BanksClientError> {
        let metas = self.authority_metas(authority);
        let data = instruction::RemoveSlasher { key }.data();
        self.call(metas, data, authority).await
    }

    /// `transfer_registry_authority`, signed by `authority`.
    pub async fn transfer_authority(
        &mut self,
        authority: &Keypair,
        new_authority: Option<Pubkey>,
    ) -> Result<(), BanksClientError> {
        let metas = self.authority_metas(authority);
        let data = instruction::TransferRegistryAuthority { new_authority }.data();
        self.call(metas, data, authority).await
    }

    /// `accept_registry_authority`, signed by `new_authority`.
    pub async fn accept_authority(
        &mut self,
        new_authority: &Keypair,
    ) -> Result<(), BanksClientError> {
        let metas = accounts::AcceptRegistryAuthority {
            new_authority: new_authority.pubkey(),
            config: self.config,
        }
        .to_account_metas(None);
        let data = instruction::AcceptRegistryAuthority {}.data();
        self.call(metas, data, new_authority).await
    }

    // ----- operators -----

    /// `register_operator`, signed by `wallet`.
    pub async fn register_operator(
        &mut self,
        wallet: &Keypair,
        args: OperatorArgs,
    ) -> Result<(), BanksClientError> {
        let metas = accounts::RegisterOperator {
            wallet: wallet.pubkey(),
            operator: operator_pda(&wallet.pubkey()),
            system_program: anchor_lang::system_program::ID,
        }
        .to_account_metas(None);
        let data = instruction::RegisterOperator { args }.data();
        self.call(metas, data, wallet).await
    }

    fn operator_metas(wallet: &Keypair, operator: Pubkey) -> Vec<AccountMeta> {
        accounts::OperatorWallet {
            wallet: wallet.pubkey(),
            operator,
        }
        .to_account_metas(None)
    }

    /// `update_operator`, signed by `wallet`, on `operator`.
    pub async fn update_operator_at(
        &mut self,
        wallet: &Keypair,
        operator: Pubkey,
        args: OperatorUpdate,
    ) -> Result<(), BanksClientError> {
        let metas = Self::operator_metas(wallet, operator);
        let data = instruction::UpdateOperator { args }.data();
        self.call(metas, data, wallet).await
    }

    /// `update_operator` on the signer's own operator.
    pub async fn update_operator(
        &mut self,
        wallet: &Keypair,
        args: OperatorUpdate,
    ) -> Result<(), BanksClientError> {
        self.update_operator_at(wallet, operator_pda(&wallet.pubkey()), args)
            .await
    }

    /// `rotate_signing_key`, signed by `wallet`, on `operator`.
    pub async fn rotate_signing_key_at(
        &mut self,
        wallet: &Keypair,
        operator: Pubkey,
        key: [u8; 32],
        valid_from_slot: u64,
    ) -> Result<(), BanksClientError> {
        let metas = Self::operator_metas(wallet, operator);
        let data = instruction::RotateSigningKey {
            key,
            valid_from_slot,
        }
        .data();
        self.call(metas, data, wallet).await
    }

    /// `rotate_signing_key` on the signer's own operator.
    pub async fn rotate_signing_key(
        &mut self,
        wallet: &Keypair,
        key: [u8; 32],
        valid_from_slot: u64,
    ) -> Result<(), BanksClientError> {
        self.rotate_signing_key_at(wallet, operator_pda(&wallet.pubkey()), key, valid_from_slot)
            .await
    }

    /// `set_operator_status`, signed by `wallet`, on `operator`.
    pub async fn set_operator_status_at(
        &mut self,
        wallet: &Keypair,
        operator: Pubkey,
        status: OperatorStatus,
    ) -> Result<(), BanksClientError> {
        let metas = Self::operator_metas(wallet, operator);
        let data = instruction::SetOperatorStatus { status }.data();
        self.call(metas, data, wallet).await
    }

    /// `set_operator_status` on the signer's own operator.
    pub async fn set_operator_status(
        &mut self,
        wallet: &Keypair,
        status: OperatorStatus,
    ) -> Result<(), BanksClientError> {
        self.set_operator_status_at(wallet, operator_pda(&wallet.pubkey()), status)
            .await
    }

    /// `close_operator`, signed by `wallet`, on `operator`.
    pub async fn close_operator_at(
        &mut self,
        wallet: &Keypair,
        operator: Pubkey,
    ) -> Result<(), BanksClientError> {
        let metas = accounts::CloseOperator {
            wallet: wallet.pubkey(),
            operator,
        }
        .to_account_metas(None);
        let data = instruction::CloseOperator {}.data();
        self.call(metas, data, wallet).await
    }

    /// `close_operator` on the signer's own operator.
    pub async fn close_operator(&mut self, wallet: &Keypair) -> Result<(), BanksClientError> {
        self.close_operator_at(wallet, operator_pda(&wallet.pubkey()))
            .await
    }

    // ----- stake -----

    /// `deposit_stake`, signed by `wallet`, from `source`, into `vault`.
    pub async fn deposit_with(
        &mut self,
        wallet: &Keypair,
        source: Pubkey,
        vault: Pubkey,
        amount: u64,
    ) -> Result<(), BanksClientError> {
        let metas = accounts::DepositStake {
            wallet: wallet.pubkey(),
            config: self.config,
            stake: stake_pda(&wallet.pubkey()),
            wallet_token_account: source,
            stake_vault: vault,
            token_program: spl_token::ID,
            system_program: anchor_lang::system_program::ID,
        }
        .to_account_metas(None);
        let data = instruction::DepositStake { amount }.data();
        self.call(metas, data, wallet).await
    }

    /// `deposit_stake` by user `i` from its own token account.
    pub async fn deposit(&mut self, i: usize, amount: u64) -> Result<(), BanksClientError> {
        let (wallet, source, vault) = (self.user(i), self.token_account(i), self.vault);
        self.deposit_with(&wallet, source, vault, amount).await
    }

    /// `request_exit`, signed by `wallet`, on `stake`.
    pub async fn request_exit_at(
        &mut self,
        wallet: &Keypair,
        stake: Pubkey,
        amount: u64,
    ) -> Result<(), BanksClientError> {
        let metas = accounts::RequestExit {
            wallet: wallet.pubkey(),
            config: self.config,
            stake,
        }
        .to_account_metas(None);
        let data = instruction::RequestExit { amount }.data();
        self.call(metas, data, wallet).await
    }

    /// `request_exit` by user `i` on its own stake.
    pub async fn request_exit(&mut self, i: usize, amount: u64) -> Result<(), BanksClientError> {
        let wallet = self.user(i);
        self.request_exit_at(&wallet, stake_pda(&wallet.pubkey()), amount)
            .await
    }

    /// `withdraw_stake`, signed by `wallet`, on `stake`, from `vault` to `destination`.
    pub async fn withdraw_with(
        &mut self,
        wallet: &Keypair,
        stake: Pubkey,
        vault: Pubkey,
        destination: Pubkey,
        index: u8,
    ) -> Result<(), BanksClientError> {
        let metas = accounts::WithdrawStake {
            wallet: wallet.pubkey(),
            config: self.config,
            stake,
            stake_vault: vault,
            stake_vault_authority: self.vault_authority,
            wallet_token_account: destination,
            token_program: spl_token::ID,
        }
        .to_account_metas(None);
        let data = instruction::WithdrawStake { index }.data();
        self.call(metas, data, wallet).await
    }

    /// `withdraw_stake` by user `i` on its own stake into its own token account.
    pub async fn withdraw(&mut self, i: usize, index: u8) -> Result<(), BanksClientError> {
        let wallet = self.user(i);
        let (stake, vault, dest) = (
            stake_pda(&wallet.pubkey()),
            self.vault,
            self.token_account(i),
        );
        self.withdraw_with(&wallet, stake, vault, dest, index).await
    }

    /// `close_stake`, signed by `wallet`, on `stake`.
    pub async fn close_stake_at(
        &mut self,
        wallet: &Keypair,
        stake: Pubkey,
    ) -> Result<(), BanksClientError> {
        let metas = accounts::CloseStake {
            wallet: wallet.pubkey(),
            stake,
        }
        .to_account_metas(None);
        let data = instruction::CloseStake {}.data();
        self.call(metas, data, wallet).await
    }

    /// `close_stake` by user `i` on its own stake.
    pub async fn close_stake(&mut self, i: usize) -> Result<(), BanksClientError> {
        let wallet = self.user(i);
        self.close_stake_at(&wallet, stake_pda(&wallet.pubkey()))
            .await
    }

    // ----- slash -----

    /// `slash` of `wallet`'s stake, signed by `slasher`, with explicit vault and treasury.
    pub async fn slash_with(
        &mut self,
        slasher: &Keypair,
        wallet: Pubkey,
        amount: u64,
        vault: Pubkey,
        treasury: Pubkey,
    ) -> Result<(), BanksClientError> {
        let metas = accounts::Slash {
            slasher: slasher.pubkey(),
            config: self.config,
            stake: stake_pda(&wallet),
            stake_vault: vault,
            stake_vault_authority: self.vault_authority,
            treasury,
            token_program: spl_token::ID,
        }
        .to_account_metas(None);
        let data = instruction::Slash {
            wallet,
            amount,
            reason_hash: [9; 32],
        }
        .data();
        self.call(metas, data, slasher).await
    }

    /// `slash` of user `i`'s stake, signed by `slasher`.
    pub async fn slash_as(
        &mut self,
        slasher: &Keypair,
        i: usize,
        amount: u64,
    ) -> Result<(), BanksClientError> {
        let (wallet, vault, treasury) = (self.users[i].key.pubkey(), self.vault, self.treasury);
        self.slash_with(slasher, wallet, amount, vault, treasury)
            .await
    }

    /// `slash` of user `i`'s stake by the configured slasher.
    pub async fn slash(&mut self, i: usize, amount: u64) -> Result<(), BanksClientError> {
        let slasher = self.slasher.insecure_clone();
        self.slash_as(&slasher, i, amount).await
    }

    // ----- tickets -----

    /// `buy_tickets`, signed by `buyer`, paying from `source` into `treasury`.
    pub async fn buy_with(
        &mut self,
        buyer: &Keypair,
        source: Pubkey,
        treasury: Pubkey,
        tickets: u64,
        max_price: u64,
    ) -> Result<(), BanksClientError> {
        let issuer = self.issuer.pubkey();
        self.buy_from(buyer, source, treasury, issuer, tickets, max_price)
            .await
    }

    /// `buy_tickets` from the issuer whose wallet is `issuer`.
    pub async fn buy_from(
        &mut self,
        buyer: &Keypair,
        source: Pubkey,
        treasury: Pubkey,
        issuer: Pubkey,
        tickets: u64,
        max_price: u64,
    ) -> Result<(), BanksClientError> {
        let metas = accounts::BuyTickets {
            buyer: buyer.pubkey(),
            config: self.config,
            issuer: operator_pda(&issuer),
            ticket_quota: quota_pda(&buyer.pubkey(), &issuer),
            buyer_token_account: source,
            treasury,
            token_program: spl_token::ID,
            system_program: anchor_lang::system_program::ID,
        }
        .to_account_metas(None);
        let data = instruction::BuyTickets { tickets, max_price }.data();
        self.call(metas, data, buyer).await
    }

    /// `buy_tickets` by user `i` from its own token account into the treasury.
    pub async fn buy(
        &mut self,
        i: usize,
        tickets: u64,
        max_price: u64,
    ) -> Result<(), BanksClientError> {
        let (buyer, source, treasury) = (self.user(i), self.token_account(i), self.treasury);
        self.buy_with(&buyer, source, treasury, tickets, max_price)
            .await
    }

    /// Asserts that the vault holds exactly the sum of the given users' stake totals (the
    /// users that never staked count 0).
    pub async fn assert_vault_matches_stakes(&mut self) {
        let mut sum = 0u64;
        for i in 0..self.users.len() {
            let wallet = self.users[i].key.pubkey();
            if let Some(stake) = self.stake(&wallet).await {
                sum += stake.total().expect("total");
            }
        }
        assert_eq!(self.vault_balance().await, sum, "vault = Σ stake totals");
    }
}
