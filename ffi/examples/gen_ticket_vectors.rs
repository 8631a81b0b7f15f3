//! Regenerates `test-vectors/tickets.json` from the issuer keys committed in it:
//! `cargo run -p tolldns-ffi --example gen_ticket_vectors`. Then regenerate `tests/vectors.h`
//! (`TOLLDNS_BLESS=1 cargo test -p tolldns-ffi --test integration vectors`).

#[path = "../tests/integration/tickets_gen.rs"]
#[allow(dead_code)]
mod tickets_gen;

fn main() -> std::io::Result<()> {
    let text = tickets_gen::render();
    std::fs::write(tickets_gen::VECTORS_PATH, text)?;
    println!("wrote {}", tickets_gen::VECTORS_PATH);
    Ok(())
}
