#!/bin/bash
# receipts-ab.sh - CPU per cache hit of tolldns-miner with receipts on and off, alternately.
#
# usage: receipts-ab.sh PAIRS SECONDS
# env:   MINER    the miner binary (default: target/release/tolldns-miner of this repository)
#        ON, OFF  the two configs (default: the bench configs of docs/BENCHMARKS.md,
#                 /work/bench-peers/miner/bench.toml and bench-off.toml = the same plus
#                 "[receipts] enabled = false")
#        QUERIES  dnsperf input (default: the harness's 1,500 cache-hit questions)
#
# The miner runs on CPU 0, unbound (its upstream) and dnsperf on CPU 1. Each run warms the cache
# for 3 s, then dnsperf -c 50 -q 100 for SECONDS; CPU per query is utime+stime of the miner
# (/proc/PID/stat) over the answers dnsperf counted. Prints one line per run and the median of
# the per-pair on/off ratios. Each run starts on an empty data directory (the config's
# `data_dir`, deleted first): use bench configs only.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=benches/peers/miner/common.sh
source "$here/miner/common.sh"
pairs=${1:?pairs}
secs=${2:?seconds}
miner=${MINER:-$here/../../target/release/tolldns-miner}
on=${ON:-/work/bench-peers/miner/bench.toml}
off=${OFF:-/work/bench-peers/miner/bench-off.toml}
queries=${QUERIES:-$here/data/queries.txt}
out=$(mktemp -d)
trap 'kill "$ub" 2>/dev/null || true; rm -rf "$out"' EXIT
taskset -c 1 unbound -d -c "$here/conf/unbound.conf" > "$out/unbound.log" 2>&1 &
ub=$!
sleep 1
tck=$(getconf CLK_TCK)
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
run() {
  local cfg=$1 label=$2 m t0 t1 q
  empty_data_dir "$cfg"
  taskset -c 0 "$miner" run --config "$cfg" > "$out/miner.log" 2>&1 &
  m=$!
  sleep 2
  taskset -c 1 dnsperf -s 127.0.0.1 -p 5400 -d "$queries" -l 3 -c 50 -q 100 > /dev/null 2>&1
  t0=$(cpu_ticks "$m")
  taskset -c 1 dnsperf -s 127.0.0.1 -p 5400 -d "$queries" -l "$secs" -c 50 -q 100 > "$out/dnsperf.txt" 2>&1
  t1=$(cpu_ticks "$m")
  q=$(awk '/Queries completed/ {print $3}' "$out/dnsperf.txt")
  kill "$m"
  wait "$m" 2>/dev/null || true
  awk -v c=$((t1 - t0)) -v q="$q" -v t="$tck" -v s="$secs" -v n="$label" \
    'BEGIN { printf "%s\t%d q/s\t%.3f us/q\n", n, q / s, c / t / q * 1e6 }' | tee -a "$out/runs.tsv"
}
for _ in $(seq 1 "$pairs"); do
  run "$on" on
  run "$off" off
done
# Median of the per-pair ratios (lines alternate on, off).
awk -F'\t' '{ split($3, a, " "); v[NR] = a[1] }
  END { for (i = 1; i < NR; i += 2) printf "%.6f\n", v[i] / v[i + 1] }' "$out/runs.tsv" |
  sort -n | awk '{ r[NR] = $1 }
    END { m = (NR % 2) ? r[(NR + 1) / 2] : (r[NR / 2] + r[NR / 2 + 1]) / 2;
          printf "on/off CPU per query, median of %d pairs: %.3f\n", NR, m }'
