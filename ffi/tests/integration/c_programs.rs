//! Compiles each `tests/*.c` with `-std=c99 -Wall -Wextra -Werror -pedantic` against the
//! committed `include/tolldns.h`, links it statically with `libtolldns_ffi.a`, runs it and checks
//! that it exits 0 and prints its `PASS` line.
//!
//! `cargo test` builds the library with every crate type of `[lib]` into `<target>/<profile>/deps/`
//! (without copying it up to `<target>/<profile>/`, as `cargo build` does), so the static library
//! next to this test binary is the one built from the same sources. Two more runs are opt-in
//! (`--ignored`, see `tests/run-sanitized.sh`): under AddressSanitizer (with LeakSanitizer) and
//! under valgrind with `--leak-check=full`.
//!
//! The C compiler is `$CC`, or `cc`.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::crate_dir;

/// How a C program is built and run.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Mode {
    Plain,
    AddressSanitizer,
    Valgrind,
}

/// System libraries the Rust standard library needs in a static link on Linux
/// (`rustc --print native-static-libs`).
const NATIVE_LIBS: &[&str] = &["-lpthread", "-ldl", "-lm", "-lrt", "-lutil"];

/// The static library built with this test binary: `<target>/<profile>/deps/libtolldns_ffi.a`.
fn static_lib() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    let deps = exe
        .parent()
        .expect("test binary lives in <target>/<profile>/deps");
    let lib = deps.join("libtolldns_ffi.a");
    assert!(
        lib.exists(),
        "{} not found: cargo did not build the `staticlib` crate type of tolldns-ffi",
        lib.display()
    );
    lib
}

fn c_sources() -> Vec<PathBuf> {
    let mut sources: Vec<PathBuf> = std::fs::read_dir(crate_dir().join("tests"))
        .expect("tests/ is readable")
        .map(|e| e.expect("directory entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "c"))
        .collect();
    sources.sort();
    assert!(!sources.is_empty(), "no C tests found in tests/");
    sources
}

fn compile(source: &Path, mode: Mode) -> PathBuf {
    let dir = crate_dir();
    let stem = source
        .file_stem()
        .and_then(|s| s.to_str())
        .expect("UTF-8 file name");
    let out_dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("c-tests");
    std::fs::create_dir_all(&out_dir).expect("create the C build directory");
    let exe = out_dir.join(format!("{stem}-{mode:?}"));
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".to_owned());
    let mut cmd = Command::new(&cc);
    cmd.args([
        "-std=c99",
        "-Wall",
        "-Wextra",
        "-Werror",
        "-pedantic",
        "-g",
        "-O1",
    ])
    .arg("-I")
    .arg(dir.join("include"))
    .arg("-I")
    .arg(dir.join("tests"));
    if mode == Mode::AddressSanitizer {
        cmd.args(["-fsanitize=address", "-fno-omit-frame-pointer"]);
    }
    cmd.arg(source)
        .arg(static_lib())
        .args(NATIVE_LIBS)
        .arg("-o")
        .arg(&exe);
    let output = cmd
        .output()
        .unwrap_or_else(|e| panic!("running the C compiler `{cc}`: {e}"));
    assert!(
        output.status.success(),
        "compiling {} failed:\n{}",
        source.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    exe
}

fn run(exe: &Path, stem: &str, mode: Mode) {
    let mut cmd = match mode {
        Mode::Valgrind => {
            let mut c = Command::new("valgrind");
            c.args([
                "--error-exitcode=1",
                "--leak-check=full",
                "--show-leak-kinds=definite,indirect,possible",
                "--errors-for-leak-kinds=definite,indirect,possible",
                "--quiet",
            ])
            .arg(exe);
            c
        }
        Mode::Plain | Mode::AddressSanitizer => Command::new(exe),
    };
    if mode == Mode::AddressSanitizer {
        cmd.env("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=0:exitcode=1");
    }
    let output = cmd
        .output()
        .unwrap_or_else(|e| panic!("running {}: {e}", exe.display()));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "{stem} ({mode:?}) failed with {}:\n--- stdout\n{stdout}\n--- stderr\n{stderr}",
        output.status
    );
    assert!(
        stdout.contains(&format!("PASS {stem}: ")),
        "{stem} ({mode:?}) did not report success:\n{stdout}\n{stderr}"
    );
    assert!(
        stderr.trim().is_empty(),
        "{stem} ({mode:?}) wrote to stderr:\n{stderr}"
    );
    print!("{stdout}");
}

fn run_all(mode: Mode) {
    for source in c_sources() {
        let stem = source
            .file_stem()
            .and_then(|s| s.to_str())
            .expect("UTF-8 file name")
            .to_owned();
        let exe = compile(&source, mode);
        run(&exe, &stem, mode);
    }
}

#[test]
fn c_programs_pass() {
    run_all(Mode::Plain);
}

/// Opt-in: `cargo test -p tolldns-ffi --test integration -- --ignored c_programs_under_asan`.
#[test]
#[ignore = "needs a compiler with AddressSanitizer; run by tests/run-sanitized.sh"]
fn c_programs_under_asan() {
    run_all(Mode::AddressSanitizer);
    sanitizer_catches_a_leaked_handle();
}

/// Proves that the sanitizer is active and sees the library's heap: a program that never frees
/// its builder must fail with a LeakSanitizer report.
fn sanitizer_catches_a_leaked_handle() {
    let source = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("leak.c");
    std::fs::write(
        &source,
        "#include \"tolldns.h\"\n\
         int main(void) {\n\
             tolldns_batch_builder *b = 0;\n\
             int i, rc = 0;\n\
             /* Each new handle overwrites the last: the first three are unreachable. */\n\
             for (i = 0; i < 4; i++) {\n\
                 rc |= (int)tolldns_batch_builder_new(TOLLDNS_ROLE_CACHE, (const uint8_t *)\"x\", 1, 1, 60, 1, 10, &b);\n\
             }\n\
             return rc == 0 ? 0 : 2;\n\
         }\n",
    )
    .expect("write leak.c");
    let exe = compile(&source, Mode::AddressSanitizer);
    let output = Command::new(&exe)
        .env("ASAN_OPTIONS", "detect_leaks=1:exitcode=1")
        .output()
        .expect("run the leaking program");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !output.status.success() && stderr.contains("LeakSanitizer"),
        "a leaked handle went unnoticed: AddressSanitizer is not active ({})\n{stderr}",
        output.status
    );
}

/// Opt-in: `cargo test -p tolldns-ffi --test integration -- --ignored c_programs_under_valgrind`.
#[test]
#[ignore = "needs valgrind; run by tests/run-sanitized.sh"]
fn c_programs_under_valgrind() {
    run_all(Mode::Valgrind);
}
