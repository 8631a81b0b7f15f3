#!/bin/bash
# cpu-split.sh - where a server's CPU per cache hit goes: kernel, the server's own binary, and
# shared libraries, in µs per query, from perf samples.
#
# usage: cpu-split.sh ours|dnsdist udp|tcp|dot|doh [SECONDS]
# env:   MINER    the miner binary (default: target/release/tolldns-miner of this repository)
#        CONFIG   the miner's bench config (default /work/bench-peers/miner/bench.toml,
#                 docs/BENCHMARKS.md; its data directory is emptied first)
#        PEERS    the peer harness copy with conf/, certs/ and data/ (default /work/bench-peers)
#
# The server and unbound run on CPU 0, the load generator on CPU 1 (dnsperf -c 50 -q 100, or
# h2load -c 50 -m 2 for DoH) over the harness's 1,500 questions after one warm-up pass;
# `perf record -F 999` samples the server for SECONDS (default 6). Each sample stands for
# 1/999 s of CPU; µs per query = samples / 999 / (SECONDS × q/s) × 10^6. Our binary links
# rustls, hyper and h2 statically, so for us they count as the server's own code; dnsdist's
# OpenSSL, nghttp2 and h2o count as libraries.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=benches/peers/miner/common.sh
source "$here/miner/common.sh"
target=${1:?ours or dnsdist}
mode=${2:?udp, tcp, dot or doh}
secs=${3:-6}
miner=${MINER:-$here/../../target/release/tolldns-miner}
config=${CONFIG:-/work/bench-peers/miner/bench.toml}
peers=${PEERS:-/work/bench-peers}
out=$(mktemp -d)
srv=
ub=
trap 'kill $srv $ub 2>/dev/null || true; rm -rf "$out"' EXIT
start_servers "$target" "$miner" "$config" "$peers/conf" "$out"
if [ "$target" = ours ]; then
  udp=5400 dot=8953 doh=9443 own=$(basename "$miner")
else
  udp=5300 dot=8853 doh=8443 own=dnsdist
fi
sleep 2
taskset -c 1 dnsperf -s 127.0.0.1 -p "$udp" -d "$peers/data/queries.txt" -n 1 -c 10 > /dev/null 2>&1
{ echo "https://127.0.0.1:$doh$(head -1 "$peers/data/doh-get-paths.txt")"
  tail -n +2 "$peers/data/doh-get-paths.txt"; } > "$out/uris"
case $mode in
  doh) cmd=(h2load -c 50 -m 2 -t 1 -D $((secs + 4)) -i "$out/uris") ;;
  dot) cmd=(dnsperf -m dot -s 127.0.0.1 -p "$dot" -d "$peers/data/queries.txt" -c 50 -q 100 -l $((secs + 4))) ;;
  *) cmd=(dnsperf -m "$mode" -s 127.0.0.1 -p "$udp" -d "$peers/data/queries.txt" -c 50 -q 100 -l $((secs + 4))) ;;
esac
taskset -c 1 "${cmd[@]}" > "$out/client.txt" 2>&1 &
cl=$!
sleep 2
perf record -o "$out/perf.data" -F 999 -p "$srv" -- sleep "$secs" 2> "$out/perf.err"
wait "$cl"
qps=$(awk '/Queries per second/ { print $4; exit } /finished in/ { gsub(",", ""); print $4; exit }' "$out/client.txt")
perf report -i "$out/perf.data" --no-children --sort dso --stdio -g none -F overhead,sample,dso 2> /dev/null |
  grep -v '^#' | grep -v '^$' |
  awk -v q="$qps" -v s="$secs" -v t="$target" -v m="$mode" -v o="$own" '
    { n = $2; total += n
      if ($3 ~ /kernel/) k += n; else if ($3 == o) own += n; else lib += n }
    END { f = 1e6 / 999 / (s * q)
          printf "%s %s: %.0f q/s, us per query: total %.2f = kernel %.2f + own binary %.2f + libraries %.2f\n",
                 t, m, q, total * f, k * f, own * f, lib * f }'
