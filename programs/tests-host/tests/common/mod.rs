//! What both program test binaries share: [`Bank`], the program-test context with transaction
//! sending, clock moves, SPL token set-up and account reads (the adapter that runs an Anchor
//! program as a builtin is the library's `anchor_builtin!`). Each binary's `Env` holds a `Bank`
//! and dereferences to it.

#![allow(dead_code)] // each test binary uses its own subset

use anchor_lang::prelude::Pubkey;
use anchor_lang::solana_program::program_pack::Pack;
use anchor_lang::solana_program::system_instruction;
use anchor_lang::AccountDeserialize;
use anchor_spl::token::spl_token;
use solana_instruction::Instruction;
use solana_keypair::Keypair;
use solana_program_test::{BanksClientError, ProgramTestContext};
use solana_signer::Signer;
use solana_transaction::Transaction;

/// Program id of the compute-budget builtin (used to make otherwise identical transactions
/// distinct).
const COMPUTE_BUDGET_ID: Pubkey =
    anchor_lang::prelude::pubkey!("ComputeBudget111111111111111111111111111111");

/// Makes `$env` (a struct with a `bank: Bank` field) dereference to its [`Bank`], and gives it
/// an inherent `balance` so that `env.balance(&env.x)` borrows `env` once.
#[macro_export]
macro_rules! bank_env {
    ($env:ident) => {
        impl std::ops::Deref for $env {
            type Target = $crate::common::Bank;

            fn deref(&self) -> &$crate::common::Bank {
                &self.bank
            }
        }

        impl std::ops::DerefMut for $env {
            fn deref_mut(&mut self) -> &mut $crate::common::Bank {
                &mut self.bank
            }
        }

        impl $env {
            /// Token balance of a token account.
            pub async fn balance(&mut self, account: &anchor_lang::prelude::Pubkey) -> u64 {
                self.bank.balance(account).await
            }
        }
    };
}

/// The program-test context and what every test does with it.
pub struct Bank {
    pub ctx: ProgramTestContext,
    nonce: u32,
}

impl Bank {
    /// Wraps a started context.
    pub fn new(ctx: ProgramTestContext) -> Self {
        Self { ctx, nonce: 0 }
    }

    /// The payer (also the programs' authority in the tests).
    pub fn payer(&self) -> Pubkey {
        self.ctx.payer.pubkey()
    }

    /// Sends `ixs` paid by the payer and signed by `signers`. A compute-budget instruction with
    /// a fresh value makes every transaction distinct, so a repeated call is not deduplicated.
    pub async fn send(
        &mut self,
        ixs: &[Instruction],
        signers: &[&Keypair],
    ) -> Result<(), BanksClientError> {
        self.nonce += 1;
        let mut data = vec![2u8]; // SetComputeUnitLimit
        data.extend_from_slice(&(1_400_000 - self.nonce).to_le_bytes());
        let mut all = vec![Instruction {
            program_id: COMPUTE_BUDGET_ID,
            accounts: vec![],
            data,
        }];
        all.extend_from_slice(ixs);
        let blockhash = self.ctx.banks_client.get_latest_blockhash().await?;
        let mut keys: Vec<&Keypair> = vec![&self.ctx.payer];
        keys.extend_from_slice(signers);
        let tx = Transaction::new_signed_with_payer(
            &all,
            Some(&self.ctx.payer.pubkey()),
            &keys,
            blockhash,
        );
        self.ctx.banks_client.process_transaction(tx).await
    }

    /// Moves the clock to `slot`.
    pub fn warp(&mut self, slot: u64) {
        self.ctx.warp_to_slot(slot).expect("warp forward");
    }

    /// The clock's current slot.
    pub async fn slot(&mut self) -> u64 {
        self.ctx
            .banks_client
            .get_sysvar::<anchor_lang::prelude::Clock>()
            .await
            .expect("clock")
            .slot
    }

    /// Sends `lamports` from the payer to `to`.
    pub async fn airdrop(&mut self, to: &Pubkey, lamports: u64) {
        let ix = system_instruction::transfer(&self.payer(), to, lamports);
        self.send(&[ix], &[]).await.expect("airdrop");
    }

    /// Creates a new mint (decimals 9, mint authority the payer).
    pub async fn create_mint(&mut self) -> Pubkey {
        let mint = Keypair::new();
        let rent = self.ctx.banks_client.get_rent().await.expect("rent");
        let ixs = [
            system_instruction::create_account(
                &self.payer(),
                &mint.pubkey(),
                rent.minimum_balance(spl_token::state::Mint::LEN),
                spl_token::state::Mint::LEN as u64,
                &spl_token::ID,
            ),
            spl_token::instruction::initialize_mint2(
                &spl_token::ID,
                &mint.pubkey(),
                &self.payer(),
                None,
                9,
            )
            .expect("initialize_mint2"),
        ];
        self.send(&ixs, &[&mint]).await.expect("create mint");
        mint.pubkey()
    }

    /// Creates a token account for `mint` owned by `owner`.
    pub async fn create_token_account(&mut self, mint: &Pubkey, owner: &Pubkey) -> Pubkey {
        let account = Keypair::new();
        let rent = self.ctx.banks_client.get_rent().await.expect("rent");
        let ixs = [
            system_instruction::create_account(
                &self.payer(),
                &account.pubkey(),
                rent.minimum_balance(spl_token::state::Account::LEN),
                spl_token::state::Account::LEN as u64,
                &spl_token::ID,
            ),
            spl_token::instruction::initialize_account3(
                &spl_token::ID,
                &account.pubkey(),
                mint,
                owner,
            )
            .expect("initialize_account3"),
        ];
        self.send(&ixs, &[&account])
            .await
            .expect("create token account");
        account.pubkey()
    }

    /// Mints `amount` of `mint` (the payer is its mint authority) to `to`.
    pub async fn mint_of_to(&mut self, mint: &Pubkey, to: &Pubkey, amount: u64) {
        let ix =
            spl_token::instruction::mint_to(&spl_token::ID, mint, to, &self.payer(), &[], amount)
                .expect("mint_to");
        self.send(&[ix], &[]).await.expect("mint to");
    }

    /// Token balance of a token account.
    pub async fn balance(&mut self, account: &Pubkey) -> u64 {
        let acc = self
            .ctx
            .banks_client
            .get_account(*account)
            .await
            .expect("get account")
            .expect("token account exists");
        spl_token::state::Account::unpack(&acc.data)
            .expect("token account")
            .amount
    }

    /// Lamports of an account (0 if absent).
    pub async fn lamports(&mut self, key: &Pubkey) -> u64 {
        self.ctx
            .banks_client
            .get_account(*key)
            .await
            .expect("get account")
            .map_or(0, |a| a.lamports)
    }

    /// Whether an account exists.
    pub async fn exists(&mut self, key: &Pubkey) -> bool {
        self.ctx
            .banks_client
            .get_account(*key)
            .await
            .expect("get account")
            .is_some()
    }

    /// An Anchor account, if it exists.
    pub async fn anchor_account<T: AccountDeserialize>(&mut self, key: Pubkey) -> Option<T> {
        let acc = self
            .ctx
            .banks_client
            .get_account(key)
            .await
            .expect("get account")?;
        Some(T::try_deserialize(&mut acc.data.as_slice()).expect("deserialize account"))
    }
}
