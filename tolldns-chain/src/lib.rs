//! The TollDNS chain client: the registry and score programs' accounts, their instructions, and
//! a Solana JSON-RPC backend.
//!
//! - [`ids`]: the program ids (the programs' `declare_id!`) and the system, token and
//!   associated-token program ids.
//! - [`accounts`]: Borsh decoders mirroring `programs/tolldns-registry/src/state.rs` and
//!   `programs/tolldns-miner-score/src/state.rs` byte for byte, Anchor discriminators checked,
//!   and the `SlotHashes` sysvar.
//! - [`pda`]: every program-derived address the programs use.
//! - [`instructions`]: Anchor instruction builders (discriminator, Borsh arguments, account
//!   metas in the order of the programs' `#[derive(Accounts)]` structs).
//! - [`tx`]: legacy transactions signed with ed25519 keys.
//! - [`program_errors`]: the programs' error codes and names.
//! - [`Chain`]: what the watcher and the CLI need from a chain, and [`RpcChain`], its
//!   JSON-RPC implementation over HTTP/1.1 (plain or TLS).
//!
//! `docs/CHAIN.md` lists the accounts read, the instructions sent, the RPC methods used and the
//! error mapping.

#![warn(missing_docs)]

use std::future::Future;
use std::time::Duration;

pub use ed25519_dalek::SigningKey;
pub use solana_pubkey::Pubkey;
pub use solana_signature::Signature;

pub mod accounts;
pub mod ids;
pub mod instructions;
pub mod pda;
pub mod program_errors;
pub mod rpc;
pub mod tx;

pub use accounts::{
    EpochTotals, MinerClaimReceipt, MinerEpochReport, MinerEpochStats, MinerScoreConfig, Operator,
    RegistryConfig, SlotHashes, Stake,
};
pub use rpc::{Commitment, RpcChain, RpcConfig};

/// What a watcher reports for one miner and one epoch (the score program's
/// `MinerEpochReport`).
pub type ReportedStats = MinerEpochReport;

/// Why a chain operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ChainError {
    /// The node answered with a JSON-RPC error (other than a program error).
    #[error("RPC error {code}: {message}{}", logs_suffix(logs))]
    Rpc {
        /// The JSON-RPC error code.
        code: i64,
        /// The node's message.
        message: String,
        /// Program logs the node attached (simulation failures), possibly empty.
        logs: Vec<String>,
    },
    /// A program refused the transaction with one of its errors.
    #[error(
        "{program} refused the transaction: {name} (error {code}){}",
        logs_suffix(logs)
    )]
    Program {
        /// The program that failed ("tolldns-registry", "tolldns-miner-score", "spl-token",
        /// "system" or the program id).
        program: String,
        /// The custom error code.
        code: u32,
        /// The error's name (`ChallengeWindowOpen`, `AccountNotInitialized`, …), or
        /// `Custom(<code>)` when unknown.
        name: String,
        /// The program logs the node attached, possibly empty.
        logs: Vec<String>,
    },
    /// The transaction failed for a reason that is not a program's custom error
    /// (`InsufficientFundsForFee`, `AccountNotFound`, an instruction error without a code, …).
    #[error("transaction failed: {reason}{}", logs_suffix(logs))]
    Transaction {
        /// The node's description of the error (its JSON).
        reason: String,
        /// The program logs the node attached, possibly empty.
        logs: Vec<String>,
    },
    /// The node could not be reached or the HTTP exchange failed.
    #[error("RPC transport to {endpoint}: {reason}")]
    Transport {
        /// The endpoint (origin only: paths often carry API keys).
        endpoint: String,
        /// What failed.
        reason: String,
    },
    /// The operation did not complete in time.
    #[error("timed out after {after:?} waiting for {what}")]
    Timeout {
        /// What was awaited.
        what: String,
        /// The bound.
        after: Duration,
    },
    /// An answer or an account could not be decoded.
    #[error("cannot decode {what}: {reason}")]
    Decode {
        /// What was decoded.
        what: String,
        /// Why it failed.
        reason: String,
    },
    /// An account that must exist does not.
    #[error("{0} not found")]
    NotFound(String),
    /// The client is misconfigured (bad URL, TLS setup).
    #[error("chain client configuration: {0}")]
    Config(String),
}

/// Formats attached program logs as a suffix of an error message.
fn logs_suffix(logs: &[String]) -> String {
    if logs.is_empty() {
        String::new()
    } else {
        format!(" [logs: {}]", logs.join(" | "))
    }
}

impl ChainError {
    /// The program error's name, when this is [`ChainError::Program`].
    pub fn program_error_name(&self) -> Option<&str> {
        match self {
            Self::Program { name, .. } => Some(name),
            _ => None,
        }
    }

    /// Builds a [`ChainError::Decode`].
    pub fn decode(what: impl Into<String>, reason: impl std::fmt::Display) -> Self {
        Self::Decode {
            what: what.into(),
            reason: reason.to_string(),
        }
    }
}

/// What the watcher and the CLI need from a chain: reads of the programs' accounts and the
/// settlement transactions. [`RpcChain`] implements it over Solana JSON-RPC.
///
/// Every read is at the implementation's commitment; every transaction is confirmed at that
/// commitment before its signature is returned.
pub trait Chain: Send + Sync {
    /// The current slot.
    fn slot(&self) -> impl Future<Output = Result<u64, ChainError>> + Send;

    /// The `SlotHashes` sysvar: `(slot, hash)` pairs, newest first.
    fn slot_hashes(&self) -> impl Future<Output = Result<Vec<(u64, [u8; 32])>, ChainError>> + Send;

    /// The registry's configuration ([`ChainError::NotFound`] before its init).
    fn registry_config(&self) -> impl Future<Output = Result<RegistryConfig, ChainError>> + Send;

    /// Every registered operator (accounts that do not decode are skipped and logged).
    fn operators(&self) -> impl Future<Output = Result<Vec<Operator>, ChainError>> + Send;

    /// The operator registered by `wallet`, if any.
    fn operator(
        &self,
        wallet: &Pubkey,
    ) -> impl Future<Output = Result<Option<Operator>, ChainError>> + Send;

    /// `wallet`'s stake account, if any.
    fn stake(
        &self,
        wallet: &Pubkey,
    ) -> impl Future<Output = Result<Option<Stake>, ChainError>> + Send;

    /// The score program's configuration ([`ChainError::NotFound`] before its init).
    fn score_config(&self) -> impl Future<Output = Result<MinerScoreConfig, ChainError>> + Send;

    /// The totals of `epoch`, once its first report or its finalization created them.
    fn epoch_totals(
        &self,
        epoch: u64,
    ) -> impl Future<Output = Result<Option<EpochTotals>, ChainError>> + Send;

    /// `miner`'s (wallet) reports and stats for `epoch`, if reported.
    fn miner_epoch(
        &self,
        epoch: u64,
        miner: &Pubkey,
    ) -> impl Future<Output = Result<Option<MinerEpochStats>, ChainError>> + Send;

    /// `miner`'s claim receipt for `epoch`, once claimed.
    fn claim_receipt(
        &self,
        epoch: u64,
        miner: &Pubkey,
    ) -> impl Future<Output = Result<Option<MinerClaimReceipt>, ChainError>> + Send;

    /// Reports (or replaces) `watcher`'s stats of `miner` (wallet) for `epoch`; the watcher
    /// pays the fees and rent.
    fn report(
        &self,
        watcher: &SigningKey,
        epoch: u64,
        miner: &Pubkey,
        stats: &ReportedStats,
    ) -> impl Future<Output = Result<Signature, ChainError>> + Send;

    /// Withdraws `watcher`'s report of `miner` for `epoch`.
    fn retract(
        &self,
        watcher: &SigningKey,
        epoch: u64,
        miner: &Pubkey,
    ) -> impl Future<Output = Result<Signature, ChainError>> + Send;

    /// Finalizes `epoch` (permissionless; `payer` pays the fee, and the totals' rent if the
    /// epoch had no report).
    fn finalize(
        &self,
        payer: &SigningKey,
        epoch: u64,
    ) -> impl Future<Output = Result<Signature, ChainError>> + Send;

    /// Claims `miner`'s reward for `epoch` into `destination` (a token account of the reward
    /// mint owned by the miner).
    fn claim(
        &self,
        miner: &SigningKey,
        epoch: u64,
        destination: &Pubkey,
    ) -> impl Future<Output = Result<Signature, ChainError>> + Send;

    /// The balance of a token account, in base units.
    fn token_balance(
        &self,
        account: &Pubkey,
    ) -> impl Future<Output = Result<u64, ChainError>> + Send;
}

/// The public key of an ed25519 signing key, as a [`Pubkey`].
pub fn pubkey_of(key: &SigningKey) -> Pubkey {
    Pubkey::new_from_array(key.verifying_key().to_bytes())
}
