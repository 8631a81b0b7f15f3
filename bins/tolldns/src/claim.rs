//! `tolldns claim`: a miner claims its reward for a finalized epoch from the score program
//! (`claim_miner_reward`), through a Solana JSON-RPC node ([`tolldns_chain::RpcChain`]).
//!
//! The reward goes to `--destination` (a token account of the reward mint owned by the
//! wallet), by default the wallet's associated token account, created in the same transaction
//! when missing. The amount paid is read back from the claim receipt the program writes
//! (`["claim", epoch, miner]`), so it is what the program paid, to the base unit.

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use clap::Args;
use serde::Serialize;
use tolldns_chain::{
    Chain, ChainError, Commitment, Pubkey, RpcChain, RpcConfig, ids, instructions, pda,
    program_errors, pubkey_of,
};

use crate::error::CliError;

/// Arguments of `tolldns claim`.
#[derive(Debug, Args)]
pub struct ClaimArgs {
    /// The Solana JSON-RPC endpoint: `http://HOST:PORT[/PATH]` or `https://…` (with --ca).
    #[arg(long, value_name = "URL")]
    pub rpc: String,
    /// The miner's wallet key file (ed25519, solana-keygen JSON, mode 0600): the wallet the
    /// watchers report and the stake account is keyed by. It signs and pays the fee.
    #[arg(long, value_name = "FILE")]
    pub wallet: PathBuf,
    /// The epoch to claim.
    #[arg(long, value_name = "E")]
    pub epoch: u64,
    /// Token account (base58) of the reward mint, owned by the wallet, that receives the
    /// reward. Default: the wallet's associated token account, created if missing.
    #[arg(long, value_name = "TOKEN_ACCOUNT")]
    pub destination: Option<String>,
    /// PEM file of the root certificate(s) an `https://` RPC endpoint's chain ends in.
    #[arg(long, value_name = "FILE")]
    pub ca: Option<PathBuf>,
    /// Commitment of the reads and of the confirmation: processed, confirmed or finalized.
    #[arg(long, value_name = "LEVEL", default_value = "confirmed", value_parser = parse_commitment)]
    pub commitment: Commitment,
    /// Seconds allowed for each RPC exchange; confirmation waits up to six times as long.
    #[arg(long, value_name = "SECS", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub timeout: u64,
    /// Print JSON: {"epoch", "miner", "destination", "amount", "balance", "signature"}
    /// (`u64` values as decimal strings).
    #[arg(long)]
    pub json: bool,
}

fn parse_commitment(s: &str) -> Result<Commitment, String> {
    Commitment::parse(s).ok_or_else(|| format!("{s:?} is not processed, confirmed or finalized"))
}

/// The long help of `tolldns claim`.
pub const CLAIM_HELP: &str = "\
Claims the wallet's reward for a finalized epoch from the TollDNS score program \
(claim_miner_reward), through the Solana JSON-RPC node at --rpc, and prints the amount paid.

The wallet (--wallet, a solana-keygen JSON file of mode 0600) is the miner's wallet: the key the \
watchers report stats for and the registry's stake account is keyed by. It signs the transaction \
and pays its fee and the claim receipt's rent. The reward goes to --destination, a token account \
of the reward mint owned by the wallet; by default the wallet's associated token account, which \
is created in the same transaction when missing.

A claim is accepted once the epoch is finalized and its challenge window has closed, until the \
claim deadline, for a miner at least K watchers reported. Otherwise the program refuses and the \
command prints the program's error name, for instance ChallengeWindowOpen (wait and retry), \
EpochNotFinalized, NotAccepted (fewer than K reports: nothing to claim), AlreadyClaimed or \
RewardExpired. An epoch nobody reported has no accounts: AccountNotInitialized.

The amount printed is read from the claim receipt the program writes (zero is a valid reward). \
--json prints {\"epoch\", \"miner\", \"destination\", \"amount\", \"balance\", \"signature\"}, \
numbers as decimal strings.

Exit codes: 0 claimed, 1 the program refused (its error name is printed), 2 bad input (arguments, \
wallet file) or a node that cannot be reached or answers nonsense.";

/// What `tolldns claim` prints.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ClaimReport {
    /// The epoch claimed.
    pub epoch: String,
    /// The miner's wallet (base58).
    pub miner: String,
    /// The token account paid (base58).
    pub destination: String,
    /// The amount paid, in base units of the reward mint.
    pub amount: String,
    /// The destination's balance after the claim.
    pub balance: String,
    /// The transaction signature (base58).
    pub signature: String,
}

/// Runs `tolldns claim`.
///
/// # Errors
///
/// [`CliError::Refused`] when the program refuses the claim (exit code 1), anything else for
/// bad input or an unreachable node (exit code 2).
pub fn run(args: &ClaimArgs, stdout: &mut dyn Write) -> anyhow::Result<()> {
    let wallet = tolldns_service::keyfile::load(&args.wallet)?;
    let destination = args
        .destination
        .as_deref()
        .map(|d| {
            d.parse::<Pubkey>()
                .map_err(|e| CliError::field("--destination", format!("{d:?}: {e}")))
        })
        .transpose()?;
    let mut config = RpcConfig::new(args.rpc.clone());
    config.ca_file.clone_from(&args.ca);
    config.commitment = args.commitment;
    config.request_timeout = Duration::from_secs(args.timeout);
    config.confirm_timeout = Duration::from_secs(args.timeout.saturating_mul(6));
    let chain = RpcChain::new(config)?;
    let report = crate::runtime()?.block_on(claim(&chain, &wallet, args.epoch, destination))?;
    if args.json {
        crate::write_json(stdout, &report)
    } else {
        writeln!(
            stdout,
            "claimed epoch {}: {} base units paid to {} (balance {}), transaction {}",
            report.epoch, report.amount, report.destination, report.balance, report.signature
        )?;
        stdout.flush()?;
        Ok(())
    }
}

/// Claims `epoch` for `wallet` into `destination` (default: its associated token account,
/// created when missing) and reads back what was paid.
///
/// # Errors
///
/// [`CliError::Refused`] for a program's refusal, the [`ChainError`] otherwise.
pub async fn claim(
    chain: &RpcChain,
    wallet: &ed25519_dalek::SigningKey,
    epoch: u64,
    destination: Option<Pubkey>,
) -> anyhow::Result<ClaimReport> {
    let miner = pubkey_of(wallet);
    let config = chain
        .score_config()
        .await
        .context("reading the score program's config")?;
    let mut ixs = Vec::with_capacity(2);
    let destination = match destination {
        Some(d) => d,
        None => {
            let ata = pda::associated_token_account(&miner, &config.toll_mint);
            if chain.account(&ata).await?.is_none() {
                ixs.push(instructions::create_associated_token_account_idempotent(
                    &miner,
                    &miner,
                    &config.toll_mint,
                ));
            }
            ata
        }
    };
    ixs.push(instructions::claim_miner_reward(
        &miner,
        epoch,
        &destination,
        &config.reward_vault,
    ));
    let signature = chain.send(&[wallet], &ixs).await.map_err(refusal)?;
    let receipt = chain
        .claim_receipt(epoch, &miner)
        .await?
        .ok_or_else(|| ChainError::NotFound(format!("the claim receipt of epoch {epoch}")))?;
    let balance = chain.token_balance(&destination).await?;
    Ok(ClaimReport {
        epoch: epoch.to_string(),
        miner: miner.to_string(),
        destination: destination.to_string(),
        amount: receipt.amount.to_string(),
        balance: balance.to_string(),
        signature: signature.to_string(),
    })
}

/// A program's refusal becomes [`CliError::Refused`] naming the error; anything else stays.
fn refusal(e: ChainError) -> anyhow::Error {
    match e {
        ChainError::Program {
            program,
            code,
            name,
            ..
        } => {
            let message = if program == ids::program_name(&ids::MINER_SCORE) {
                program_errors::error_message(&ids::MINER_SCORE, code)
            } else if program == ids::program_name(&ids::REGISTRY) {
                program_errors::error_message(&ids::REGISTRY, code)
            } else {
                None
            };
            let detail = message.map(|m| format!(": {m}")).unwrap_or_default();
            CliError::Refused(format!("{program} refused the claim: {name}{detail}")).into()
        }
        ChainError::Transaction { reason, .. } => {
            CliError::Refused(format!("the node refused the claim transaction: {reason}")).into()
        }
        other => other.into(),
    }
}
