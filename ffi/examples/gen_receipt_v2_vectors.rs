//! Regenerates `test-vectors/ffi-receipts-v2.json` from fixed inputs:
//! `cargo run -p tolldns-ffi --example gen_receipt_v2_vectors`. Then regenerate
//! `tests/vectors.h` (`TOLLDNS_BLESS=1 cargo test -p tolldns-ffi --test integration vectors`).

#[path = "../tests/integration/receipts_v2_gen.rs"]
#[allow(dead_code)]
mod receipts_v2_gen;

fn main() -> std::io::Result<()> {
    let text = receipts_v2_gen::render();
    std::fs::write(receipts_v2_gen::VECTORS_PATH, text)?;
    println!("wrote {}", receipts_v2_gen::VECTORS_PATH);
    Ok(())
}
