//! Library behind the `tolldns` command-line tool.
//!
//! The binary (`src/main.rs`) parses a [`Cli`], calls [`run`] and maps the error to an exit
//! code with [`error::exit_code`]. Each subcommand family is a module with its argument
//! types and a `run` function; add new families (`keygen`, `receipt`, `merkle`, …) the same
//! way: a variant of [`cli::Command`], a module, a match arm in [`run`].
//!
//! - [`score`]: `tolldns score epoch --input FILE` computes an epoch's scores and rewards
//!   with `tolldns-score`.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod cli;
pub mod error;
mod json;
pub mod score;

use std::io::{self, Read, Write};

pub use cli::Cli;

/// Runs a parsed command line, reading stdin and writing stdout as the command requires.
///
/// # Errors
///
/// Any error of the command; [`error::exit_code`] says which exit code it maps to.
pub fn run(cli: &Cli) -> anyhow::Result<()> {
    match &cli.command {
        cli::Command::Score(args) => {
            score::run(args, &mut io::stdin().lock(), &mut io::stdout().lock())
        }
    }
}

/// Reads a whole input file, `-` meaning `stdin`.
pub(crate) fn read_input(path: &std::path::Path, stdin: &mut dyn Read) -> anyhow::Result<String> {
    use anyhow::Context as _;
    let mut text = String::new();
    if path.as_os_str() == "-" {
        stdin
            .read_to_string(&mut text)
            .context("reading the input from stdin")?;
    } else {
        text = std::fs::read_to_string(path)
            .with_context(|| format!("reading the input file {}", path.display()))?;
    }
    Ok(text)
}

/// Writes `value` as pretty JSON followed by a newline, and flushes.
pub(crate) fn write_json(out: &mut dyn Write, value: &impl serde::Serialize) -> anyhow::Result<()> {
    serde_json::to_writer_pretty(&mut *out, value).map_err(io::Error::from)?;
    out.write_all(b"\n")?;
    out.flush()?;
    Ok(())
}
