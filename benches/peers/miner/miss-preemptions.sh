#!/bin/bash
# miss-preemptions.sh - under UDP cache misses, who runs on the server's CPU after whom.
#
# usage: miss-preemptions.sh ours|dnsdist
# env:   MINER   the miner binary (default: target/release/tolldns-miner of this repository)
#        CONFIG  the miss bench config (default /work/bench-peers/miner/bench-miss.toml,
#                docs/BENCHMARKS.md; its data directory is emptied first)
#
# The server and unbound share CPU 0 (as in the harness's miss mode), dnsperf runs on CPU 1
# with 2,000,000 fresh names under miss.bench.test for 8 s. After 3 s, 2 s of sched_switch
# events on CPU 0 are recorded; prints the switches counted as "previous task, its state,
# next task": state R means the previous task was preempted while it could still run, S that
# it went to sleep.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=benches/peers/miner/common.sh
source "$here/miner/common.sh"
target=${1:?ours or dnsdist}
miner=${MINER:-$here/../../target/release/tolldns-miner}
config=${CONFIG:-/work/bench-peers/miner/bench-miss.toml}
out=$(mktemp -d)
srv=
ub=
trap 'kill $srv $ub 2>/dev/null || true; rm -rf "$out"' EXIT
start_servers "$target" "$miner" "$config" "$here/conf" "$out"
port=5400
[ "$target" = ours ] || port=5300
sleep 2
awk -v n=2000000 -v tag="w$(date +%s)" \
  'BEGIN { for (i = 0; i < n; i++) printf "%08d.%s.miss.bench.test A\n", i, tag }' > "$out/q.txt"
taskset -c 1 dnsperf -s 127.0.0.1 -p "$port" -d "$out/q.txt" -l 8 -c 50 -q 100 > "$out/dnsperf.txt" 2>&1 &
dp=$!
sleep 3
perf record -o "$out/sched.data" -e sched:sched_switch -C 0 -- sleep 2 2> /dev/null
wait "$dp"
grep -E "Queries per second" "$out/dnsperf.txt"
perf script -i "$out/sched.data" -F trace 2> /dev/null > "$out/trace.txt"
echo "switches on CPU 0 in 2 s: $(wc -l < "$out/trace.txt")"
echo "count previous state -> next"
awk '{ for (i = 1; i <= NF; i++) {
         if ($i ~ /^prev_comm=/) p = substr($i, 11)
         if ($i ~ /^prev_state=/) s = substr($i, 12)
         if ($i ~ /^next_comm=/) n = substr($i, 11) }
       print p, s, "->", n }' "$out/trace.txt" | sort | uniq -c | sort -rn | head -12
