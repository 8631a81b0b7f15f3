//! Program ids: the TollDNS programs' `declare_id!` and the Solana programs they use.

use solana_pubkey::Pubkey;

/// The registry program (`programs/tolldns-registry`, `declare_id!`).
pub const REGISTRY: Pubkey = Pubkey::from_str_const("AL2GUFuDigxfttMgEH82cTR8CKwvY6MSxaSEj5umaZTg");

/// The miner score program (`programs/tolldns-miner-score`, `declare_id!`).
pub const MINER_SCORE: Pubkey =
    Pubkey::from_str_const("5nnFdiGZBshPs7Cisvqqhu1hHz3xcBbFJ9297A4cSmZh");

/// The system program.
pub const SYSTEM_PROGRAM: Pubkey = Pubkey::from_str_const("11111111111111111111111111111111");

/// The SPL token program.
pub const TOKEN_PROGRAM: Pubkey =
    Pubkey::from_str_const("TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA");

/// The SPL associated-token-account program.
pub const ASSOCIATED_TOKEN_PROGRAM: Pubkey =
    Pubkey::from_str_const("ATokenGPvbdGVxZ1b2hvZbsiqW5xWH25efTNsLJA8knL");

/// The `SlotHashes` sysvar.
pub const SLOT_HASHES_SYSVAR: Pubkey =
    Pubkey::from_str_const("SysvarS1otHashes111111111111111111111111111");

/// A short, stable name for a program id in messages: `tolldns-registry`,
/// `tolldns-miner-score`, `spl-token`, `system`, `associated-token`, else the id in base58.
pub fn program_name(id: &Pubkey) -> String {
    let known = [
        (REGISTRY, "tolldns-registry"),
        (MINER_SCORE, "tolldns-miner-score"),
        (TOKEN_PROGRAM, "spl-token"),
        (SYSTEM_PROGRAM, "system"),
        (ASSOCIATED_TOKEN_PROGRAM, "associated-token"),
    ];
    known
        .iter()
        .find(|(k, _)| k == id)
        .map_or_else(|| id.to_string(), |(_, name)| (*name).to_owned())
}
