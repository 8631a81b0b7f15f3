#!/bin/sh
# Audit API load test (issue 10): build the release miner and the `audit_load` example, then run
# it unpinned, with the miner alone on CPU 0, and a control run without auditors. Each run takes
# about 9 minutes; summaries go to $OUT (default ./audit-load-results).
# Extra arguments are passed to every run (e.g. --rate 30000).
set -eu

TARGET=${CARGO_TARGET_DIR:-/work/targets/bench}
OUT=${OUT:-./audit-load-results}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)

command -v dnsperf >/dev/null || { echo "dnsperf is required (apt-get install -y dnsperf)" >&2; exit 1; }

(cd "$ROOT" && CARGO_TARGET_DIR=$TARGET cargo build --release --locked -p tolldns-miner \
    --bin tolldns-miner --example audit_load)

mkdir -p "$OUT"
BIN=$TARGET/release/examples/audit_load
{ date -u; nproc; lscpu | head -20; git -C "$ROOT" log --oneline -1; } > "$OUT/machine.txt"

"$BIN" "$@" 2>&1 | tee "$OUT/unpinned.txt"
"$BIN" --miner-cpus 0 --dnsperf-cpus 1 --client-cpus 1 "$@" 2>&1 | tee "$OUT/pinned.txt"
"$BIN" --phases baseline,baseline,baseline,baseline,baseline "$@" 2>&1 | tee "$OUT/control.txt"
