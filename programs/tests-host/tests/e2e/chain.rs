//! The programs' set-up for the end-to-end test, through the localnet's bank: the TOLL mint,
//! the registry (treasury, the score program's slasher), operators with their endpoints and
//! roles, stake, ticket purchases, the score config with its allowlists and the funded reward
//! vault.

use anchor_lang::prelude::Pubkey;
use anchor_lang::solana_program::program_pack::Pack;
use anchor_lang::solana_program::system_instruction;
use anchor_lang::{InstructionData, ToAccountMetas};
use anchor_spl::token::spl_token;
use solana_instruction::Instruction;
use solana_keypair::Keypair;
use solana_signer::Signer;
use tolldns_miner_score::constants::{
    CONFIG_SEED, EPOCH_TOTALS_SEED, MINER_EPOCH_SEED, REWARD_VAULT_SEED, SLASHER_SEED,
    VAULT_AUTHORITY_SEED,
};
use tolldns_miner_score::{InitArgs, MinerEpochReport};
use tolldns_programs_tests::localnet::LocalBank;
use tolldns_registry::constants::{
    OPERATOR_SEED, REGISTRY_CONFIG_SEED, STAKE_SEED, STAKE_VAULT_AUTHORITY_SEED, STAKE_VAULT_SEED,
    TICKET_QUOTA_SEED,
};
use tolldns_registry::{Endpoint, OperatorArgs};

fn pda(seeds: &[&[u8]], program: &Pubkey) -> Pubkey {
    Pubkey::find_program_address(seeds, program).0
}

/// PDA of a wallet's operator.
pub fn operator_pda(wallet: &Pubkey) -> Pubkey {
    pda(&[OPERATOR_SEED, wallet.as_ref()], &tolldns_registry::ID)
}

/// PDA of a wallet's stake.
pub fn stake_pda(wallet: &Pubkey) -> Pubkey {
    pda(&[STAKE_SEED, wallet.as_ref()], &tolldns_registry::ID)
}

/// PDA of a miner's epoch stats.
pub fn stats_pda(epoch: u64, miner: &Pubkey) -> Pubkey {
    pda(
        &[MINER_EPOCH_SEED, &epoch.to_le_bytes(), miner.as_ref()],
        &tolldns_miner_score::ID,
    )
}

/// PDA of an epoch's totals.
pub fn totals_pda(epoch: u64) -> Pubkey {
    pda(
        &[EPOCH_TOTALS_SEED, &epoch.to_le_bytes()],
        &tolldns_miner_score::ID,
    )
}

/// The accounts of both programs' configs.
#[derive(Debug, Clone, Copy)]
pub struct Programs {
    pub mint: Pubkey,
    pub treasury: Pubkey,
    pub registry_config: Pubkey,
    pub stake_vault: Pubkey,
    pub stake_vault_authority: Pubkey,
    pub score_config: Pubkey,
    pub reward_vault: Pubkey,
    pub vault_authority: Pubkey,
    pub slasher: Pubkey,
}

impl Programs {
    /// The PDAs, with the mint and treasury still unset.
    pub fn new() -> Self {
        let r = tolldns_registry::ID;
        let s = tolldns_miner_score::ID;
        Self {
            mint: Pubkey::default(),
            treasury: Pubkey::default(),
            registry_config: pda(&[REGISTRY_CONFIG_SEED], &r),
            stake_vault: pda(&[STAKE_VAULT_SEED], &r),
            stake_vault_authority: pda(&[STAKE_VAULT_AUTHORITY_SEED], &r),
            score_config: pda(&[CONFIG_SEED], &s),
            reward_vault: pda(&[REWARD_VAULT_SEED], &s),
            vault_authority: pda(&[VAULT_AUTHORITY_SEED], &s),
            slasher: pda(&[SLASHER_SEED], &s),
        }
    }
}

/// Creates the TOLL mint (decimals 9, mint authority the payer) and the treasury (a token
/// account of the payer), then `init_registry_config`.
pub async fn init_registry(
    bank: &mut LocalBank,
    epoch_len_slots: u64,
    exit_delay_slots: u64,
    ticket_price: u64,
) -> Programs {
    let mut p = Programs::new();
    let payer = bank.payer();
    let mint = Keypair::new();
    let rent = bank.context().banks_client.get_rent().await.expect("rent");
    let ixs = [
        system_instruction::create_account(
            &payer,
            &mint.pubkey(),
            rent.minimum_balance(spl_token::state::Mint::LEN),
            spl_token::state::Mint::LEN as u64,
            &spl_token::ID,
        ),
        spl_token::instruction::initialize_mint2(&spl_token::ID, &mint.pubkey(), &payer, None, 9)
            .expect("initialize_mint2"),
    ];
    bank.send(&ixs, &[&mint]).await.expect("create mint");
    p.mint = mint.pubkey();
    p.treasury = create_token_account(bank, &p.mint, &payer).await;
    let ix = Instruction {
        program_id: tolldns_registry::ID,
        accounts: tolldns_registry::accounts::InitRegistryConfig {
            authority: payer,
            config: p.registry_config,
            toll_mint: p.mint,
            stake_vault_authority: p.stake_vault_authority,
            stake_vault: p.stake_vault,
            treasury: p.treasury,
            token_program: spl_token::ID,
            system_program: anchor_lang::system_program::ID,
        }
        .to_account_metas(None),
        data: tolldns_registry::instruction::InitRegistryConfig {
            args: tolldns_registry::RegistryArgs {
                epoch_len_slots,
                exit_delay_slots,
                ticket_price,
                slashers: vec![p.slasher],
            },
        }
        .data(),
    };
    bank.send(&[ix], &[]).await.expect("init registry");
    p
}

/// Creates a token account for `mint` owned by `owner`.
pub async fn create_token_account(bank: &mut LocalBank, mint: &Pubkey, owner: &Pubkey) -> Pubkey {
    let account = Keypair::new();
    let payer = bank.payer();
    let rent = bank.context().banks_client.get_rent().await.expect("rent");
    let ixs = [
        system_instruction::create_account(
            &payer,
            &account.pubkey(),
            rent.minimum_balance(spl_token::state::Account::LEN),
            spl_token::state::Account::LEN as u64,
            &spl_token::ID,
        ),
        spl_token::instruction::initialize_account3(&spl_token::ID, &account.pubkey(), mint, owner)
            .expect("initialize_account3"),
    ];
    bank.send(&ixs, &[&account])
        .await
        .expect("create token account");
    account.pubkey()
}

/// Mints `amount` TOLL to `to`.
pub async fn mint_to(bank: &mut LocalBank, p: &Programs, to: &Pubkey, amount: u64) {
    let payer = bank.payer();
    let ix = spl_token::instruction::mint_to(&spl_token::ID, &p.mint, to, &payer, &[], amount)
        .expect("mint_to");
    bank.send(&[ix], &[]).await.expect("mint to");
}

/// `register_operator` by `wallet`.
pub async fn register_operator(
    bank: &mut LocalBank,
    wallet: &Keypair,
    signing_key: [u8; 32],
    roles: u16,
    backend_ids: Vec<String>,
    endpoints: Vec<(u8, String)>,
) {
    let ix = Instruction {
        program_id: tolldns_registry::ID,
        accounts: tolldns_registry::accounts::RegisterOperator {
            wallet: wallet.pubkey(),
            operator: operator_pda(&wallet.pubkey()),
            system_program: anchor_lang::system_program::ID,
        }
        .to_account_metas(None),
        data: tolldns_registry::instruction::RegisterOperator {
            args: OperatorArgs {
                signing_key,
                roles,
                backend_ids,
                endpoints: endpoints
                    .into_iter()
                    .map(|(transport, address)| Endpoint { transport, address })
                    .collect(),
            },
        }
        .data(),
    };
    bank.send(&[ix], &[wallet])
        .await
        .unwrap_or_else(|e| panic!("register operator {}: {e:?}", wallet.pubkey()));
}

/// `deposit_stake` of `amount` from `wallet`'s token account.
pub async fn deposit_stake(
    bank: &mut LocalBank,
    p: &Programs,
    wallet: &Keypair,
    token_account: &Pubkey,
    amount: u64,
) {
    let ix = Instruction {
        program_id: tolldns_registry::ID,
        accounts: tolldns_registry::accounts::DepositStake {
            wallet: wallet.pubkey(),
            config: p.registry_config,
            stake: stake_pda(&wallet.pubkey()),
            wallet_token_account: *token_account,
            stake_vault: p.stake_vault,
            token_program: spl_token::ID,
            system_program: anchor_lang::system_program::ID,
        }
        .to_account_metas(None),
        data: tolldns_registry::instruction::DepositStake { amount }.data(),
    };
    bank.send(&[ix], &[wallet]).await.expect("deposit stake");
}

/// `buy_tickets` of `tickets` by `buyer` from the issuer whose wallet is `issuer`.
pub async fn buy_tickets(
    bank: &mut LocalBank,
    p: &Programs,
    buyer: &Keypair,
    buyer_token_account: &Pubkey,
    issuer: &Pubkey,
    tickets: u64,
    max_price: u64,
) {
    let ix = Instruction {
        program_id: tolldns_registry::ID,
        accounts: tolldns_registry::accounts::BuyTickets {
            buyer: buyer.pubkey(),
            config: p.registry_config,
            issuer: operator_pda(issuer),
            ticket_quota: pda(
                &[TICKET_QUOTA_SEED, buyer.pubkey().as_ref(), issuer.as_ref()],
                &tolldns_registry::ID,
            ),
            buyer_token_account: *buyer_token_account,
            treasury: p.treasury,
            token_program: spl_token::ID,
            system_program: anchor_lang::system_program::ID,
        }
        .to_account_metas(None),
        data: tolldns_registry::instruction::BuyTickets { tickets, max_price }.data(),
    };
    bank.send(&[ix], &[buyer]).await.expect("buy tickets");
}

/// `init_miner_score_config` by the payer.
pub async fn init_score(bank: &mut LocalBank, p: &Programs, args: InitArgs) {
    let payer = bank.payer();
    let ix = Instruction {
        program_id: tolldns_miner_score::ID,
        accounts: tolldns_miner_score::accounts::InitMinerScoreConfig {
            authority: payer,
            config: p.score_config,
            toll_mint: p.mint,
            vault_authority: p.vault_authority,
            slasher: p.slasher,
            reward_vault: p.reward_vault,
            token_program: spl_token::ID,
            system_program: anchor_lang::system_program::ID,
        }
        .to_account_metas(None),
        data: tolldns_miner_score::instruction::InitMinerScoreConfig { args }.data(),
    };
    bank.send(&[ix], &[]).await.expect("init score config");
}

/// `report_miner_epoch_stats` signed by `watcher`.
///
/// # Errors
///
/// The transaction's error.
pub async fn report(
    bank: &mut LocalBank,
    p: &Programs,
    watcher: &Keypair,
    epoch_id: u64,
    miner: Pubkey,
    report: MinerEpochReport,
) -> Result<(), solana_program_test::BanksClientError> {
    let ix = Instruction {
        program_id: tolldns_miner_score::ID,
        accounts: tolldns_miner_score::accounts::ReportMinerEpochStats {
            auth: tolldns_miner_score::accounts::WatcherAuth {
                watcher: watcher.pubkey(),
                config: p.score_config,
            },
            epoch_totals: totals_pda(epoch_id),
            miner_epoch_stats: stats_pda(epoch_id, &miner),
            registry_config: p.registry_config,
            stake: stake_pda(&miner),
            system_program: anchor_lang::system_program::ID,
        }
        .to_account_metas(None),
        data: tolldns_miner_score::instruction::ReportMinerEpochStats {
            epoch_id,
            miner,
            report,
        }
        .data(),
    };
    bank.send(&[ix], &[watcher]).await.map(|_| ())
}
