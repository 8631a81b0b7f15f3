//! Regenerates `test-vectors/receipts.json` (format v1, byte-identical to the file of the v1
//! release) and `test-vectors/receipts-v2.json` (format v2):
//! `cargo run -p tolldns-receipts --example gen_vectors`.

#[path = "../tests/integration/common.rs"]
#[allow(dead_code)]
mod common;
#[path = "../tests/integration/vectors_gen.rs"]
#[allow(dead_code)]
mod vectors_gen;
#[path = "../tests/integration/vectors_v2_gen.rs"]
#[allow(dead_code)]
mod vectors_v2_gen;

fn main() -> std::io::Result<()> {
    std::fs::write(vectors_gen::VECTORS_PATH, vectors_gen::render())?;
    println!("wrote {}", vectors_gen::VECTORS_PATH);
    std::fs::write(vectors_v2_gen::V2_VECTORS_PATH, vectors_v2_gen::render())?;
    println!("wrote {}", vectors_v2_gen::V2_VECTORS_PATH);
    Ok(())
}
