//! Regenerates `test-vectors/score.json` from the hand-derived cases in
//! `tests/common/vectors.rs`, checking each against the crate first.
//!
//! ```text
//! cargo run -p tolldns-score --example gen_vectors
//! ```

#[path = "../tests/common/vectors.rs"]
mod vectors;

use std::path::Path;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(vectors::VECTORS_PATH);
    let mut text = serde_json::to_string_pretty(&vectors::build())?;
    text.push('\n');
    std::fs::write(&path, text)?;
    println!("wrote {}", path.display());
    Ok(())
}
