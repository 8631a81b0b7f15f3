//! Integration tests of the C ABI: header drift, the ticket and receipt-v2 vectors, the C
//! vector table, and the C programs.

mod c_programs;
mod header;
mod receipts_v2;
mod receipts_v2_gen;
mod tickets;
mod tickets_gen;
mod vectors;

use std::path::{Path, PathBuf};

/// The crate's directory (`ffi/`).
fn crate_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Compares `generated` with the committed file at `path`; with `TOLLDNS_BLESS=1` in the
/// environment, writes it instead.
fn check_committed(path: &Path, generated: &str, regenerate: &str) {
    if std::env::var_os("TOLLDNS_BLESS").is_some_and(|v| v == "1") {
        std::fs::write(path, generated)
            .unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
        return;
    }
    let committed = std::fs::read_to_string(path).unwrap_or_default();
    if committed != generated {
        let line = committed
            .lines()
            .zip(generated.lines())
            .position(|(a, b)| a != b)
            .unwrap_or_else(|| committed.lines().count().min(generated.lines().count()))
            .saturating_add(1);
        panic!(
            "{} does not match the code (first difference at line {line}).\n\
             Regenerate it with:\n    {regenerate}\nand commit the result.",
            path.display()
        );
    }
}
