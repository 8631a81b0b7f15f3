#!/bin/bash
# miss-switches.sh - context switches of tolldns-miner per UDP cache miss.
#
# usage: miss-switches.sh [SECONDS]
# env:   MINER   the miner binary (default: target/release/tolldns-miner of this repository)
#        CONFIG  the miss bench config (default /work/bench-peers/miner/bench-miss.toml,
#                docs/BENCHMARKS.md)
#
# The miner and unbound share CPU 0 (as in the harness's miss mode), dnsperf runs on CPU 1 with
# 2,000,000 fresh names under miss.bench.test. Prints the answers and, per thread name, the
# voluntary and involuntary context switches during the run (/proc/PID/task/*/status).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
secs=${1:-10}
miner=${MINER:-$here/../../target/release/tolldns-miner}
config=${CONFIG:-/work/bench-peers/miner/bench-miss.toml}
out=$(mktemp -d)
trap 'kill "$m" "$ub" 2>/dev/null || true; rm -rf "$out"' EXIT
taskset -c 0 unbound -d -c "$here/conf/unbound.conf" > "$out/unbound.log" 2>&1 &
ub=$!
taskset -c 0 "$miner" run --config "$config" > "$out/miner.log" 2>&1 &
m=$!
sleep 2
tag=s$(date +%H%M%S)
awk -v n=2000000 -v tag="$tag" \
  'BEGIN { for (i = 0; i < n; i++) printf "%08d.%s.miss.bench.test A\n", i, tag }' > "$out/q.txt"
switches() {
  for t in /proc/"$m"/task/*; do
    printf '%s %s\n' "$(cat "$t/comm")" "$(awk '/voluntary_ctxt/ {printf "%s ", $2}' "$t/status")"
  done | awk '{ v[$1] += $2; n[$1] += $3 } END { for (k in v) print k, v[k], n[k] }' | sort
}
switches > "$out/before"
taskset -c 1 dnsperf -s 127.0.0.1 -p 5400 -d "$out/q.txt" -l "$secs" -c 50 -q 100 > "$out/dnsperf.txt" 2>&1
switches > "$out/after"
grep -E "Queries completed" "$out/dnsperf.txt"
echo "thread voluntary involuntary (during the run)"
join "$out/before" "$out/after" | awk '{ print $1, $4 - $2, $5 - $3 }'
