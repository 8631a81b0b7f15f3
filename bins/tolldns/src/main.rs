//! `tolldns`: the TollDNS command-line tool for integrators and watchers.
//!
//! This file only parses arguments, dispatches and maps errors to exit codes; the logic lives
//! in the library (`src/lib.rs`). Exit codes: 0 success (also when stdout is a closed pipe),
//! 1 verification failure, 2 bad input (including usage errors).

use std::process::ExitCode;

use clap::Parser;
use tolldns::{Cli, error::exit_code};

fn main() -> ExitCode {
    let cli = Cli::parse();
    match tolldns::run(&cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            let code = exit_code(&err);
            if code != 0 {
                eprintln!("error: {err:#}");
            }
            ExitCode::from(code)
        }
    }
}
