//! `tolldns score …`: epoch scores and rewards with `tolldns-score`.
//!
//! `tolldns score epoch --input FILE` reads
//! `{"config": {ScoreConfig fields}, "epoch_id", "pool", "miners": [{"miner", MinerStats
//! fields}]}` (integers as JSON numbers or decimal strings, unknown fields rejected), scores
//! every miner with [`tolldns_score::score_miner`], allocates the pool with
//! [`tolldns_score::allocate`] and `per_miner_epoch_cap`, and prints an [`EpochReport`].

use std::collections::HashMap;
use std::io::{Read, Write};
use std::path::PathBuf;

use clap::{Args, Subcommand};
use serde::Serialize;
use serde_json::Value;
use tolldns_score::{MinerStats, ScoreConfig, ScoreError, allocate, score_miner};

use crate::error::CliError;
use crate::json::Fields;

/// Arguments of `tolldns score`.
#[derive(Debug, Args)]
pub struct ScoreArgs {
    /// What to compute.
    #[command(subcommand)]
    pub command: ScoreCommand,
}

/// Subcommands of `tolldns score`.
#[derive(Debug, Subcommand)]
pub enum ScoreCommand {
    /// Scores every miner of an epoch and allocates the pool; prints JSON.
    ///
    /// The input is JSON: {"config": {...}, "epoch_id", "pool", "miners": [{"miner", ...}]}
    /// (docs/SCORING.md). Integers may be JSON numbers or decimal strings.
    Epoch {
        /// Input JSON file, or `-` for stdin.
        #[arg(long, value_name = "FILE")]
        input: PathBuf,
    },
}

/// An epoch to score, as read from the input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EpochInput {
    /// The scoring parameters.
    pub config: ScoreConfig,
    /// The epoch scored.
    pub epoch_id: u64,
    /// The reward pool of the epoch, in base units.
    pub pool: u64,
    /// Each miner's identifier (e.g. its base58 public key) and reported statistics.
    pub miners: Vec<(String, MinerStats)>,
}

/// One miner's line of an [`EpochReport`]. `u64`/`u128` values are decimal strings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MinerReport {
    /// The miner, as given in the input.
    pub miner: String,
    /// Timeliness component, `0..=10000`.
    pub timeliness_component: u16,
    /// Diversity component, `0..=10000`.
    pub diversity_component: u16,
    /// Weighted component, `0..=10000`.
    pub component: u16,
    /// Raw score after the centralization penalty.
    pub raw_score: String,
    /// `isqrt(raw_score)`.
    pub normalized_score: String,
    /// The miner's reward, in base units.
    pub reward: String,
}

/// The output of `tolldns score epoch`. `u64`/`u128` values are decimal strings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EpochReport {
    /// The epoch scored.
    pub epoch_id: String,
    /// The pool allocated.
    pub pool: String,
    /// One entry per input miner, in input order.
    pub miners: Vec<MinerReport>,
    /// `Σ raw_score`.
    pub total_raw_score: String,
    /// `Σ normalized_score`.
    pub total_normalized_score: String,
    /// `Σ reward`.
    pub allocated: String,
    /// `pool − allocated`: left in the vault by caps and rounding.
    pub unallocated: String,
}

/// Runs `tolldns score …`.
///
/// # Errors
///
/// Unreadable input, [`CliError`] for malformed or invalid input, I/O errors on output.
pub fn run(args: &ScoreArgs, stdin: &mut dyn Read, stdout: &mut dyn Write) -> anyhow::Result<()> {
    match &args.command {
        ScoreCommand::Epoch { input } => {
            let text = crate::read_input(input, stdin)?;
            let report = epoch_report(&parse_epoch_input(&text)?)?;
            crate::write_json(stdout, &report)
        }
    }
}

/// Parses and validates an epoch input document.
///
/// # Errors
///
/// [`CliError::Json`] if it is not JSON; [`CliError::BadField`] naming the first field that is
/// missing, unknown, malformed or out of range (config checks of
/// [`ScoreConfig::validate`], per-miner checks of [`MinerStats::validate`], duplicate miners).
pub fn parse_epoch_input(text: &str) -> Result<EpochInput, CliError> {
    let root: Value = serde_json::from_str(text)?;
    let mut top = Fields::new("", &root)?;

    let mut c = top.object("config")?;
    let config = ScoreConfig {
        epoch_len_slots: c.uint("epoch_len_slots")?,
        alpha_correctness_bps: c.uint("alpha_correctness_bps")?,
        alpha_diversity_bps: c.uint("alpha_diversity_bps")?,
        alpha_timeliness_bps: c.uint("alpha_timeliness_bps")?,
        alpha_uptime_bps: c.uint("alpha_uptime_bps")?,
        centralization_penalty_bps: c.uint("centralization_penalty_bps")?,
        dominance_threshold_bps: c.uint("dominance_threshold_bps")?,
        diversity_target: c.uint("diversity_target")?,
        per_miner_epoch_cap: c.uint("per_miner_epoch_cap")?,
        min_miner_stake_weight: c.uint("min_miner_stake_weight")?,
    };
    c.finish()?;
    config
        .validate()
        .map_err(|e| score_error(&top.path_of("config"), e))?;

    let epoch_id = top.uint("epoch_id")?;
    let pool = top.uint("pool")?;
    let miners_json = top.array("miners")?;
    top.finish()?;

    let mut miners = Vec::with_capacity(miners_json.len());
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for (i, m) in miners_json.iter().enumerate() {
        let mut f = Fields::new(format!("miners[{i}]"), m)?;
        let miner = f.string("miner")?;
        if miner.is_empty() {
            return Err(CliError::field(f.path_of("miner"), "must not be empty"));
        }
        if let Some(first) = seen.insert(miner, i) {
            return Err(CliError::field(
                f.path_of("miner"),
                format!("{miner:?} is already miners[{first}]"),
            ));
        }
        let stats = MinerStats {
            stake_weight: f.uint("stake_weight")?,
            unique_name_count: f.uint("unique_name_count")?,
            first_submit_slot: f.uint("first_submit_slot")?,
            uptime_score: f.uint("uptime_score")?,
            correctness_score: f.uint("correctness_score")?,
            dominance_share_bps: f.uint("dominance_share_bps")?,
        };
        let path = f.path_of("");
        f.finish()?;
        stats
            .validate(&config)
            .map_err(|e| score_error(path.trim_end_matches('.'), e))?;
        miners.push((miner.to_owned(), stats));
    }
    Ok(EpochInput {
        config,
        epoch_id,
        pool,
        miners,
    })
}

/// Scores every miner of `input` and allocates its pool.
///
/// # Errors
///
/// [`CliError::BadField`] if a miner cannot be scored (e.g. the epoch's start slot overflows)
/// or a total overflows.
pub fn epoch_report(input: &EpochInput) -> Result<EpochReport, CliError> {
    let cfg = &input.config;
    let mut scores = Vec::with_capacity(input.miners.len());
    let mut total_raw: u128 = 0;
    for (i, (_, stats)) in input.miners.iter().enumerate() {
        let score = score_miner(cfg, input.epoch_id, stats)
            .map_err(|e| score_error(&format!("miners[{i}]"), e))?;
        total_raw = total_raw
            .checked_add(score.raw_score)
            .ok_or_else(|| CliError::field("miners", "the total raw score overflows a u128"))?;
        scores.push(score);
    }
    let normalized: Vec<u128> = scores.iter().map(|s| s.normalized_score).collect();
    let mut rewards = vec![0u64; normalized.len()];
    let totals = allocate(
        input.pool,
        &normalized,
        cfg.per_miner_epoch_cap,
        &mut rewards,
    )
    .map_err(|e| score_error("miners", e))?;
    let miners = input
        .miners
        .iter()
        .zip(&scores)
        .zip(&rewards)
        .map(|(((miner, _), s), reward)| MinerReport {
            miner: miner.clone(),
            timeliness_component: s.timeliness_component,
            diversity_component: s.diversity_component,
            component: s.component,
            raw_score: s.raw_score.to_string(),
            normalized_score: s.normalized_score.to_string(),
            reward: reward.to_string(),
        })
        .collect();
    Ok(EpochReport {
        epoch_id: input.epoch_id.to_string(),
        pool: input.pool.to_string(),
        miners,
        total_raw_score: total_raw.to_string(),
        total_normalized_score: totals.total_normalized.to_string(),
        allocated: totals.allocated.to_string(),
        unallocated: totals.unallocated.to_string(),
    })
}

/// A [`ScoreError`] about the object at `path`, naming the field when there is one.
fn score_error(path: &str, e: ScoreError) -> CliError {
    let field = e.field();
    // The error's message starts with the field name when it has one; avoid repeating it.
    let message = e.to_string();
    match field {
        Some(name) => {
            let reason = message
                .strip_prefix(name)
                .and_then(|r| r.strip_prefix(": "))
                .unwrap_or(&message)
                .to_owned();
            CliError::field(format!("{path}.{name}"), reason)
        }
        None if e == ScoreError::Overflow => {
            CliError::field(path, "arithmetic overflow (a value is too large)")
        }
        None => CliError::field(path, message),
    }
}
