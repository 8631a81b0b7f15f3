//! Anchor instruction builders.
//!
//! Data: `SHA-256("global:<instruction>")[..8]` followed by the Borsh-encoded arguments.
//! Accounts: in the order of the program's `#[derive(Accounts)]` struct, nested structs
//! flattened in field order, with the same signer and writable flags.

use borsh::BorshSerialize;
use solana_instruction::{AccountMeta, Instruction};
use solana_pubkey::Pubkey;

use crate::accounts::{Endpoint, MinerEpochReport, discriminator};
use crate::{ids, pda};

/// `SHA-256("global:<name>")[..8]`.
pub fn instruction_discriminator(name: &str) -> [u8; 8] {
    discriminator("global", name)
}

/// The discriminator followed by the Borsh encoding of `args`.
fn data(name: &str, args: &impl BorshSerialize) -> Vec<u8> {
    let mut out = instruction_discriminator(name).to_vec();
    // Writing into a Vec cannot fail.
    let _ = args.serialize(&mut out);
    out
}

/// A writable account.
fn w(key: Pubkey) -> AccountMeta {
    AccountMeta::new(key, false)
}

/// A read-only account.
fn r(key: Pubkey) -> AccountMeta {
    AccountMeta::new_readonly(key, false)
}

/// A writable signer.
fn ws(key: Pubkey) -> AccountMeta {
    AccountMeta::new(key, true)
}

/// A read-only signer.
fn rs(key: Pubkey) -> AccountMeta {
    AccountMeta::new_readonly(key, true)
}

/// `report_miner_epoch_stats(epoch_id, miner, report)` signed by `watcher`.
///
/// Accounts (`ReportMinerEpochStats`): watcher (signer, writable), config, epoch totals
/// (writable), miner epoch stats (writable), registry config, the miner's stake account,
/// system program.
pub fn report_miner_epoch_stats(
    watcher: &Pubkey,
    epoch_id: u64,
    miner: &Pubkey,
    report: &MinerEpochReport,
) -> Instruction {
    Instruction {
        program_id: ids::MINER_SCORE,
        accounts: vec![
            ws(*watcher),
            r(pda::score_config().0),
            w(pda::epoch_totals(epoch_id).0),
            w(pda::miner_epoch(epoch_id, miner).0),
            r(pda::registry_config().0),
            r(pda::stake(miner).0),
            r(ids::SYSTEM_PROGRAM),
        ],
        data: data("report_miner_epoch_stats", &(epoch_id, miner, report)),
    }
}

/// `retract_miner_epoch_stats(epoch_id, miner)` signed by `watcher`.
///
/// Accounts (`RetractMinerEpochStats`): watcher (signer, writable), config, epoch totals
/// (writable), miner epoch stats (writable).
pub fn retract_miner_epoch_stats(watcher: &Pubkey, epoch_id: u64, miner: &Pubkey) -> Instruction {
    Instruction {
        program_id: ids::MINER_SCORE,
        accounts: vec![
            ws(*watcher),
            r(pda::score_config().0),
            w(pda::epoch_totals(epoch_id).0),
            w(pda::miner_epoch(epoch_id, miner).0),
        ],
        data: data("retract_miner_epoch_stats", &(epoch_id, miner)),
    }
}

/// `finalize_epoch(epoch_id)` paid by `payer`.
///
/// Accounts (`FinalizeEpoch`): payer (signer, writable), config (writable), epoch totals
/// (writable), reward vault, system program.
pub fn finalize_epoch(payer: &Pubkey, epoch_id: u64, reward_vault: &Pubkey) -> Instruction {
    Instruction {
        program_id: ids::MINER_SCORE,
        accounts: vec![
            ws(*payer),
            w(pda::score_config().0),
            w(pda::epoch_totals(epoch_id).0),
            r(*reward_vault),
            r(ids::SYSTEM_PROGRAM),
        ],
        data: data("finalize_epoch", &epoch_id),
    }
}

/// `claim_miner_reward(epoch_id)` signed by `miner`, paid into `miner_token_account` (a token
/// account of the reward mint owned by the miner).
///
/// Accounts (`ClaimMinerReward`): miner (signer, writable), config (writable), epoch totals
/// (writable), miner epoch stats (writable), claim receipt (writable), vault authority, reward
/// vault (writable), miner token account (writable), token program, system program.
pub fn claim_miner_reward(
    miner: &Pubkey,
    epoch_id: u64,
    miner_token_account: &Pubkey,
    reward_vault: &Pubkey,
) -> Instruction {
    Instruction {
        program_id: ids::MINER_SCORE,
        accounts: vec![
            ws(*miner),
            w(pda::score_config().0),
            w(pda::epoch_totals(epoch_id).0),
            w(pda::miner_epoch(epoch_id, miner).0),
            w(pda::claim_receipt(epoch_id, miner).0),
            r(pda::vault_authority().0),
            w(*reward_vault),
            w(*miner_token_account),
            r(ids::TOKEN_PROGRAM),
            r(ids::SYSTEM_PROGRAM),
        ],
        data: data("claim_miner_reward", &epoch_id),
    }
}

/// Arguments of the registry's `register_operator`.
#[derive(BorshSerialize, Clone, Debug, PartialEq, Eq)]
pub struct OperatorArgs {
    /// The ed25519 receipt-signing key, valid from the registration slot.
    pub signing_key: [u8; 32],
    /// Role bits.
    pub roles: u16,
    /// Backend ids.
    pub backend_ids: Vec<String>,
    /// Public endpoints.
    pub endpoints: Vec<Endpoint>,
}

/// `register_operator(args)` signed by `wallet`.
///
/// Accounts (`RegisterOperator`): wallet (signer, writable), operator (writable), system
/// program.
pub fn register_operator(wallet: &Pubkey, args: &OperatorArgs) -> Instruction {
    Instruction {
        program_id: ids::REGISTRY,
        accounts: vec![
            ws(*wallet),
            w(pda::operator(wallet).0),
            r(ids::SYSTEM_PROGRAM),
        ],
        data: data("register_operator", args),
    }
}

/// `update_operator(roles, backend_ids, endpoints)` signed by `wallet`.
///
/// Accounts (`OperatorWallet`): wallet (signer), operator (writable).
pub fn update_operator(
    wallet: &Pubkey,
    roles: u16,
    backend_ids: &[String],
    endpoints: &[Endpoint],
) -> Instruction {
    Instruction {
        program_id: ids::REGISTRY,
        accounts: vec![rs(*wallet), w(pda::operator(wallet).0)],
        data: data(
            "update_operator",
            &(roles, backend_ids.to_vec(), endpoints.to_vec()),
        ),
    }
}

/// `rotate_signing_key(key, valid_from_slot)` signed by `wallet`.
///
/// Accounts (`OperatorWallet`): wallet (signer), operator (writable).
pub fn rotate_signing_key(wallet: &Pubkey, key: [u8; 32], valid_from_slot: u64) -> Instruction {
    Instruction {
        program_id: ids::REGISTRY,
        accounts: vec![rs(*wallet), w(pda::operator(wallet).0)],
        data: data("rotate_signing_key", &(key, valid_from_slot)),
    }
}

/// `deposit_stake(amount)` signed by `wallet`, from `wallet_token_account` into the stake
/// vault.
///
/// Accounts (`DepositStake`): wallet (signer, writable), registry config, stake (writable),
/// wallet token account (writable), stake vault (writable), token program, system program.
pub fn deposit_stake(
    wallet: &Pubkey,
    wallet_token_account: &Pubkey,
    stake_vault: &Pubkey,
    amount: u64,
) -> Instruction {
    Instruction {
        program_id: ids::REGISTRY,
        accounts: vec![
            ws(*wallet),
            r(pda::registry_config().0),
            w(pda::stake(wallet).0),
            w(*wallet_token_account),
            w(*stake_vault),
            r(ids::TOKEN_PROGRAM),
            r(ids::SYSTEM_PROGRAM),
        ],
        data: data("deposit_stake", &amount),
    }
}

/// `buy_tickets(tickets, max_price)` signed by `buyer`, paid from `buyer_token_account` to
/// `treasury`, at the issuer whose operator wallet is `issuer_wallet`.
///
/// Accounts (`BuyTickets`): buyer (signer, writable), registry config, issuer operator, ticket
/// quota (writable), buyer token account (writable), treasury (writable), token program,
/// system program.
pub fn buy_tickets(
    buyer: &Pubkey,
    issuer_wallet: &Pubkey,
    buyer_token_account: &Pubkey,
    treasury: &Pubkey,
    tickets: u64,
    max_price: u64,
) -> Instruction {
    Instruction {
        program_id: ids::REGISTRY,
        accounts: vec![
            ws(*buyer),
            r(pda::registry_config().0),
            r(pda::operator(issuer_wallet).0),
            w(pda::ticket_quota(buyer, issuer_wallet).0),
            w(*buyer_token_account),
            w(*treasury),
            r(ids::TOKEN_PROGRAM),
            r(ids::SYSTEM_PROGRAM),
        ],
        data: data("buy_tickets", &(tickets, max_price)),
    }
}

/// The associated token program's idempotent create (instruction 1): creates `wallet`'s
/// associated token account for `mint` if missing, paid by `payer`.
pub fn create_associated_token_account_idempotent(
    payer: &Pubkey,
    wallet: &Pubkey,
    mint: &Pubkey,
) -> Instruction {
    Instruction {
        program_id: ids::ASSOCIATED_TOKEN_PROGRAM,
        accounts: vec![
            ws(*payer),
            w(pda::associated_token_account(wallet, mint)),
            r(*wallet),
            r(*mint),
            r(ids::SYSTEM_PROGRAM),
            r(ids::TOKEN_PROGRAM),
        ],
        data: vec![1],
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests panic on failure by design
mod tests {
    use super::*;

    fn key(n: u8) -> Pubkey {
        Pubkey::new_from_array([n; 32])
    }

    /// `(address, signer, writable)` of each account.
    fn metas(ix: &Instruction) -> Vec<(Pubkey, bool, bool)> {
        ix.accounts
            .iter()
            .map(|m| (m.pubkey, m.is_signer, m.is_writable))
            .collect()
    }

    #[test]
    fn discriminators_match_anchors_global_namespace() {
        let pinned = [
            ("report_miner_epoch_stats", "d4ce875e191abbf7"),
            ("retract_miner_epoch_stats", "2b9aedae461459d3"),
            ("finalize_epoch", "9f5d75d93f2cf94c"),
            ("claim_miner_reward", "4575a36d60e5f8ed"),
            ("register_operator", "31f2977dd4881f59"),
            ("deposit_stake", "a0a709dc4af3e42b"),
            ("buy_tickets", "30107a8918d6c63a"),
            ("update_operator", "b79e7b957c962de2"),
            ("rotate_signing_key", "e5676b2c54a285aa"),
        ];
        for (name, hex_disc) in pinned {
            assert_eq!(
                hex::encode(instruction_discriminator(name)),
                hex_disc,
                "{name}"
            );
        }
    }

    #[test]
    fn report_lays_out_its_arguments_and_accounts() {
        let (watcher, miner) = (key(1), key(2));
        let report = MinerEpochReport {
            aggregates_submitted: 1,
            unique_name_count: 2,
            unique_receipt_count: 3,
            first_submit_slot: 4,
            last_submit_slot: 5,
            uptime_score: 6,
            correctness_score: 7,
            dominance_share_bps: 8,
        };
        let ix = report_miner_epoch_stats(&watcher, 9, &miner, &report);
        assert_eq!(ix.program_id, ids::MINER_SCORE);
        let mut want = hex::decode("d4ce875e191abbf7").unwrap();
        want.extend_from_slice(&9u64.to_le_bytes());
        want.extend_from_slice(miner.as_ref());
        for v in [1u32, 2, 3] {
            want.extend_from_slice(&v.to_le_bytes());
        }
        for v in [4u64, 5] {
            want.extend_from_slice(&v.to_le_bytes());
        }
        for v in [6u16, 7, 8] {
            want.extend_from_slice(&v.to_le_bytes());
        }
        assert_eq!(ix.data, want);
        assert_eq!(
            metas(&ix),
            vec![
                (watcher, true, true),
                (pda::score_config().0, false, false),
                (pda::epoch_totals(9).0, false, true),
                (pda::miner_epoch(9, &miner).0, false, true),
                (pda::registry_config().0, false, false),
                (pda::stake(&miner).0, false, false),
                (ids::SYSTEM_PROGRAM, false, false),
            ]
        );
    }

    #[test]
    fn retract_finalize_and_claim_lay_out_their_accounts() {
        let ix = retract_miner_epoch_stats(&key(1), 9, &key(2));
        let mut want = hex::decode("2b9aedae461459d3").unwrap();
        want.extend_from_slice(&9u64.to_le_bytes());
        want.extend_from_slice(&[2; 32]);
        assert_eq!(ix.data, want);
        assert_eq!(
            metas(&ix),
            vec![
                (key(1), true, true),
                (pda::score_config().0, false, false),
                (pda::epoch_totals(9).0, false, true),
                (pda::miner_epoch(9, &key(2)).0, false, true),
            ]
        );

        let ix = finalize_epoch(&key(3), 9, &key(4));
        let mut want = hex::decode("9f5d75d93f2cf94c").unwrap();
        want.extend_from_slice(&9u64.to_le_bytes());
        assert_eq!(ix.data, want);
        assert_eq!(
            metas(&ix),
            vec![
                (key(3), true, true),
                (pda::score_config().0, false, true),
                (pda::epoch_totals(9).0, false, true),
                (key(4), false, false),
                (ids::SYSTEM_PROGRAM, false, false),
            ]
        );

        let ix = claim_miner_reward(&key(5), 9, &key(6), &key(4));
        let mut want = hex::decode("4575a36d60e5f8ed").unwrap();
        want.extend_from_slice(&9u64.to_le_bytes());
        assert_eq!(ix.data, want);
        assert_eq!(
            metas(&ix),
            vec![
                (key(5), true, true),
                (pda::score_config().0, false, true),
                (pda::epoch_totals(9).0, false, true),
                (pda::miner_epoch(9, &key(5)).0, false, true),
                (pda::claim_receipt(9, &key(5)).0, false, true),
                (pda::vault_authority().0, false, false),
                (key(4), false, true),
                (key(6), false, true),
                (ids::TOKEN_PROGRAM, false, false),
                (ids::SYSTEM_PROGRAM, false, false),
            ]
        );
    }

    #[test]
    fn registry_setup_instructions_lay_out_their_arguments() {
        let args = OperatorArgs {
            signing_key: [3; 32],
            roles: 0b110,
            backend_ids: vec!["pdns".into()],
            endpoints: vec![Endpoint {
                transport: 1,
                address: "1.2.3.4:53".into(),
            }],
        };
        let ix = register_operator(&key(1), &args);
        let mut want = hex::decode("31f2977dd4881f59").unwrap();
        want.extend_from_slice(&[3; 32]);
        want.extend_from_slice(&0b110u16.to_le_bytes());
        want.extend_from_slice(&1u32.to_le_bytes());
        want.extend_from_slice(&4u32.to_le_bytes());
        want.extend_from_slice(b"pdns");
        want.extend_from_slice(&1u32.to_le_bytes());
        want.push(1);
        want.extend_from_slice(&10u32.to_le_bytes());
        want.extend_from_slice(b"1.2.3.4:53");
        assert_eq!(ix.data, want);
        assert_eq!(ix.program_id, ids::REGISTRY);
        assert_eq!(
            metas(&ix),
            vec![
                (key(1), true, true),
                (pda::operator(&key(1)).0, false, true),
                (ids::SYSTEM_PROGRAM, false, false),
            ]
        );

        let ix = deposit_stake(&key(1), &key(2), &key(3), 500);
        let mut want = hex::decode("a0a709dc4af3e42b").unwrap();
        want.extend_from_slice(&500u64.to_le_bytes());
        assert_eq!(ix.data, want);
        assert_eq!(
            metas(&ix),
            vec![
                (key(1), true, true),
                (pda::registry_config().0, false, false),
                (pda::stake(&key(1)).0, false, true),
                (key(2), false, true),
                (key(3), false, true),
                (ids::TOKEN_PROGRAM, false, false),
                (ids::SYSTEM_PROGRAM, false, false),
            ]
        );

        let ix = buy_tickets(&key(1), &key(9), &key(2), &key(3), 4, 1000);
        let mut want = hex::decode("30107a8918d6c63a").unwrap();
        want.extend_from_slice(&4u64.to_le_bytes());
        want.extend_from_slice(&1000u64.to_le_bytes());
        assert_eq!(ix.data, want);
        assert_eq!(
            metas(&ix),
            vec![
                (key(1), true, true),
                (pda::registry_config().0, false, false),
                (pda::operator(&key(9)).0, false, false),
                (pda::ticket_quota(&key(1), &key(9)).0, false, true),
                (key(2), false, true),
                (key(3), false, true),
                (ids::TOKEN_PROGRAM, false, false),
                (ids::SYSTEM_PROGRAM, false, false),
            ]
        );

        let ix = rotate_signing_key(&key(1), [5; 32], 77);
        let mut want = hex::decode("e5676b2c54a285aa").unwrap();
        want.extend_from_slice(&[5; 32]);
        want.extend_from_slice(&77u64.to_le_bytes());
        assert_eq!(ix.data, want);
        assert_eq!(
            metas(&ix),
            vec![
                (key(1), true, false),
                (pda::operator(&key(1)).0, false, true)
            ]
        );
        let ix = update_operator(&key(1), 2, &[], &[]);
        let mut want = hex::decode("b79e7b957c962de2").unwrap();
        want.extend_from_slice(&2u16.to_le_bytes());
        want.extend_from_slice(&0u32.to_le_bytes());
        want.extend_from_slice(&0u32.to_le_bytes());
        assert_eq!(ix.data, want);

        let ix = create_associated_token_account_idempotent(&key(1), &key(2), &key(3));
        assert_eq!(ix.data, vec![1]);
        assert_eq!(
            ix.accounts[1].pubkey,
            pda::associated_token_account(&key(2), &key(3))
        );
    }
}
