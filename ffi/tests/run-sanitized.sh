#!/usr/bin/env bash
# Runs the C tests of tolldns-ffi under AddressSanitizer (with LeakSanitizer) and under valgrind
# (--leak-check=full, any leak or memory error fails). For CI; slower than `cargo test`.
#
#   ffi/tests/run-sanitized.sh            # both
#   ffi/tests/run-sanitized.sh asan       # AddressSanitizer only
#   ffi/tests/run-sanitized.sh valgrind   # valgrind only
#
# Needs a C compiler with -fsanitize=address ($CC, default cc) and valgrind. The Rust library
# itself is not instrumented; ASan and valgrind see its heap through malloc/free, so leaks of
# handles and out-of-bounds writes by the C side into library buffers are caught.
set -euo pipefail
cd "$(dirname "$0")/../.."

which="${1:-all}"
run() { cargo test -p tolldns-ffi --test integration --locked -- --ignored --exact "$1"; }

case "$which" in
  asan) run c_programs::c_programs_under_asan ;;
  valgrind) run c_programs::c_programs_under_valgrind ;;
  all)
    run c_programs::c_programs_under_asan
    run c_programs::c_programs_under_valgrind
    ;;
  *) echo "usage: $0 [asan|valgrind|all]" >&2; exit 2 ;;
esac
