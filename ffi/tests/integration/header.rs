//! `include/tolldns.h` must be exactly what cbindgen generates from the code.

use crate::{check_committed, crate_dir};

#[test]
fn committed_header_matches_the_code() {
    let dir = crate_dir();
    let config =
        cbindgen::Config::from_file(dir.join("cbindgen.toml")).expect("cbindgen.toml parses");
    // Parsing from `src/lib.rs` (following `mod` declarations) needs no `cargo metadata`.
    let bindings = cbindgen::Builder::new()
        .with_config(config)
        .with_src(dir.join("src/lib.rs"))
        .generate()
        .expect("cbindgen generates the header");
    let mut out = Vec::new();
    bindings.write(&mut out);
    let generated = String::from_utf8(out).expect("the header is UTF-8");
    check_committed(
        &dir.join("include/tolldns.h"),
        &generated,
        "TOLLDNS_BLESS=1 cargo test -p tolldns-ffi --test integration header",
    );
}
