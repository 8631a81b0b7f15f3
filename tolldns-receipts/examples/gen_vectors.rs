//! Regenerates `test-vectors/receipts.json`:
//! `cargo run -p tolldns-receipts --example gen_vectors`.

#[path = "../tests/integration/vectors_gen.rs"]
#[allow(dead_code)]
mod vectors_gen;

fn main() -> std::io::Result<()> {
    std::fs::write(vectors_gen::VECTORS_PATH, vectors_gen::render())?;
    println!("wrote {}", vectors_gen::VECTORS_PATH);
    Ok(())
}
