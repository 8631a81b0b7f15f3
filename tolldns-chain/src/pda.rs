//! Program-derived addresses: every seed of `programs/*/src/constants.rs`.
//!
//! Each function returns the address and its bump (`find_program_address`).

use solana_pubkey::Pubkey;

use crate::ids;

/// Registry seed of the config: `["registry_config"]`.
pub const REGISTRY_CONFIG_SEED: &[u8] = b"registry_config";
/// Registry seed prefix of an operator: `["operator", wallet]`.
pub const OPERATOR_SEED: &[u8] = b"operator";
/// Registry seed prefix of a stake account: `["stake", wallet]`.
pub const STAKE_SEED: &[u8] = b"stake";
/// Registry seed of the stake vault: `["stake_vault"]`.
pub const STAKE_VAULT_SEED: &[u8] = b"stake_vault";
/// Registry seed of the stake-vault authority: `["stake_vault_authority"]`.
pub const STAKE_VAULT_AUTHORITY_SEED: &[u8] = b"stake_vault_authority";
/// Registry seed prefix of a ticket quota: `["ticket_quota", buyer, issuer wallet]`.
pub const TICKET_QUOTA_SEED: &[u8] = b"ticket_quota";

/// Score seed of the config: `["miner_score_config"]`.
pub const SCORE_CONFIG_SEED: &[u8] = b"miner_score_config";
/// Score seed of the vault authority: `["miner_score_vault_authority"]`.
pub const VAULT_AUTHORITY_SEED: &[u8] = b"miner_score_vault_authority";
/// Score seed of the reward vault: `["reward_vault"]`.
pub const REWARD_VAULT_SEED: &[u8] = b"reward_vault";
/// Score seed prefix of a miner's epoch stats: `["miner_epoch", epoch LE, miner]`.
pub const MINER_EPOCH_SEED: &[u8] = b"miner_epoch";
/// Score seed prefix of an epoch's totals: `["epoch_totals", epoch LE]`.
pub const EPOCH_TOTALS_SEED: &[u8] = b"epoch_totals";
/// Score seed prefix of a claim receipt: `["claim", epoch LE, miner]`.
pub const CLAIM_SEED: &[u8] = b"claim";
/// Score seed of the slasher PDA: `["slasher"]`.
pub const SLASHER_SEED: &[u8] = b"slasher";

/// The registry's config.
pub fn registry_config() -> (Pubkey, u8) {
    Pubkey::find_program_address(&[REGISTRY_CONFIG_SEED], &ids::REGISTRY)
}

/// `wallet`'s operator.
pub fn operator(wallet: &Pubkey) -> (Pubkey, u8) {
    Pubkey::find_program_address(&[OPERATOR_SEED, wallet.as_ref()], &ids::REGISTRY)
}

/// `wallet`'s stake account.
pub fn stake(wallet: &Pubkey) -> (Pubkey, u8) {
    Pubkey::find_program_address(&[STAKE_SEED, wallet.as_ref()], &ids::REGISTRY)
}

/// The registry's stake vault (an SPL token account).
pub fn stake_vault() -> (Pubkey, u8) {
    Pubkey::find_program_address(&[STAKE_VAULT_SEED], &ids::REGISTRY)
}

/// The data-less authority of the stake vault.
pub fn stake_vault_authority() -> (Pubkey, u8) {
    Pubkey::find_program_address(&[STAKE_VAULT_AUTHORITY_SEED], &ids::REGISTRY)
}

/// `buyer`'s ticket quota at the issuer whose wallet is `issuer_wallet`.
pub fn ticket_quota(buyer: &Pubkey, issuer_wallet: &Pubkey) -> (Pubkey, u8) {
    Pubkey::find_program_address(
        &[TICKET_QUOTA_SEED, buyer.as_ref(), issuer_wallet.as_ref()],
        &ids::REGISTRY,
    )
}

/// The score program's config.
pub fn score_config() -> (Pubkey, u8) {
    Pubkey::find_program_address(&[SCORE_CONFIG_SEED], &ids::MINER_SCORE)
}

/// The data-less authority of the reward vault.
pub fn vault_authority() -> (Pubkey, u8) {
    Pubkey::find_program_address(&[VAULT_AUTHORITY_SEED], &ids::MINER_SCORE)
}

/// The reward vault (an SPL token account).
pub fn reward_vault() -> (Pubkey, u8) {
    Pubkey::find_program_address(&[REWARD_VAULT_SEED], &ids::MINER_SCORE)
}

/// `miner`'s stats for `epoch`.
pub fn miner_epoch(epoch: u64, miner: &Pubkey) -> (Pubkey, u8) {
    Pubkey::find_program_address(
        &[MINER_EPOCH_SEED, &epoch.to_le_bytes(), miner.as_ref()],
        &ids::MINER_SCORE,
    )
}

/// `epoch`'s totals.
pub fn epoch_totals(epoch: u64) -> (Pubkey, u8) {
    Pubkey::find_program_address(
        &[EPOCH_TOTALS_SEED, &epoch.to_le_bytes()],
        &ids::MINER_SCORE,
    )
}

/// `miner`'s claim receipt for `epoch`.
pub fn claim_receipt(epoch: u64, miner: &Pubkey) -> (Pubkey, u8) {
    Pubkey::find_program_address(
        &[CLAIM_SEED, &epoch.to_le_bytes(), miner.as_ref()],
        &ids::MINER_SCORE,
    )
}

/// The score program's slasher PDA (signs the registry's `slash`).
pub fn slasher() -> (Pubkey, u8) {
    Pubkey::find_program_address(&[SLASHER_SEED], &ids::MINER_SCORE)
}

/// The associated token account of `wallet` for `mint` (SPL token program).
pub fn associated_token_account(wallet: &Pubkey, mint: &Pubkey) -> Pubkey {
    Pubkey::find_program_address(
        &[wallet.as_ref(), ids::TOKEN_PROGRAM.as_ref(), mint.as_ref()],
        &ids::ASSOCIATED_TOKEN_PROGRAM,
    )
    .0
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests panic on failure by design
mod tests {
    use sha2::{Digest as _, Sha256};

    use super::*;
    use crate::accounts::{AnchorAccount as _, TicketQuota};

    /// Solana's derivation written out: for bump 255 down to 0,
    /// `SHA-256(seeds || [bump] || program || "ProgramDerivedAddress")`, the first hash that is
    /// not an ed25519 point.
    fn reference(seeds: &[&[u8]], program: &Pubkey) -> (Pubkey, u8) {
        (0..=255u8)
            .rev()
            .find_map(|bump| {
                let mut h = Sha256::new();
                for seed in seeds {
                    h.update(seed);
                }
                h.update([bump]);
                h.update(program.as_ref());
                h.update(b"ProgramDerivedAddress");
                let address: [u8; 32] = h.finalize().into();
                ed25519_dalek::VerifyingKey::from_bytes(&address)
                    .is_err()
                    .then(|| (Pubkey::new_from_array(address), bump))
            })
            .unwrap()
    }

    #[test]
    fn every_seed_derives_as_solana_does() {
        let w = Pubkey::new_from_array([7; 32]);
        let m = Pubkey::new_from_array([8; 32]);
        let e = 42u64.to_le_bytes();
        let reg = ids::REGISTRY;
        let score = ids::MINER_SCORE;
        let cases: Vec<((Pubkey, u8), (Pubkey, u8))> = vec![
            (registry_config(), reference(&[b"registry_config"], &reg)),
            (operator(&w), reference(&[b"operator", w.as_ref()], &reg)),
            (stake(&w), reference(&[b"stake", w.as_ref()], &reg)),
            (stake_vault(), reference(&[b"stake_vault"], &reg)),
            (
                stake_vault_authority(),
                reference(&[b"stake_vault_authority"], &reg),
            ),
            (
                ticket_quota(&w, &m),
                reference(&[b"ticket_quota", w.as_ref(), m.as_ref()], &reg),
            ),
            (score_config(), reference(&[b"miner_score_config"], &score)),
            (
                vault_authority(),
                reference(&[b"miner_score_vault_authority"], &score),
            ),
            (reward_vault(), reference(&[b"reward_vault"], &score)),
            (
                miner_epoch(42, &m),
                reference(&[b"miner_epoch", &e, m.as_ref()], &score),
            ),
            (epoch_totals(42), reference(&[b"epoch_totals", &e], &score)),
            (
                claim_receipt(42, &m),
                reference(&[b"claim", &e, m.as_ref()], &score),
            ),
            (slasher(), reference(&[b"slasher"], &score)),
        ];
        for (i, (got, want)) in cases.into_iter().enumerate() {
            assert_eq!(got, want, "case {i}");
        }
        assert_eq!(
            associated_token_account(&w, &m),
            reference(
                &[w.as_ref(), ids::TOKEN_PROGRAM.as_ref(), m.as_ref()],
                &ids::ASSOCIATED_TOKEN_PROGRAM
            )
            .0
        );
        // Different epochs and miners give different addresses.
        assert_ne!(miner_epoch(42, &m).0, miner_epoch(43, &m).0);
        assert_ne!(miner_epoch(42, &m).0, miner_epoch(42, &w).0);
    }

    #[test]
    fn the_ticket_quota_vector_sits_at_its_pda_and_decodes() {
        use base64::Engine as _;
        let v: serde_json::Value =
            serde_json::from_str(include_str!("../../test-vectors/ticket-quota.json")).unwrap();
        let s = |k: &str| v[k].as_str().unwrap();
        let pk = |k: &str| s(k).parse::<Pubkey>().unwrap();
        assert_eq!(pk("program_id"), ids::REGISTRY);
        let (address, bump) = ticket_quota(&pk("buyer"), &pk("issuer"));
        assert_eq!(address, pk("address"));
        assert_eq!(u64::from(bump), v["bump"].as_u64().unwrap());
        let data = base64::engine::general_purpose::STANDARD
            .decode(s("data_base64"))
            .unwrap();
        let q = TicketQuota::decode(&data).unwrap();
        assert_eq!(q.buyer, pk("buyer"));
        assert_eq!(q.issuer, pk("issuer"));
        assert_eq!(q.tickets_bought, v["tickets_bought"].as_u64().unwrap());
        assert_eq!(q.total_paid, v["total_paid"].as_u64().unwrap());
        assert_eq!(q.encode(), data);
    }

    #[test]
    fn program_ids_are_the_declared_ones() {
        assert_eq!(
            ids::REGISTRY.to_string(),
            "AL2GUFuDigxfttMgEH82cTR8CKwvY6MSxaSEj5umaZTg"
        );
        assert_eq!(
            ids::MINER_SCORE.to_string(),
            "5nnFdiGZBshPs7Cisvqqhu1hHz3xcBbFJ9297A4cSmZh"
        );
        assert_eq!(ids::program_name(&ids::MINER_SCORE), "tolldns-miner-score");
        let other = Pubkey::new_from_array([9; 32]);
        assert_eq!(ids::program_name(&other), other.to_string());
    }
}
