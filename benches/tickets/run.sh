#!/usr/bin/env bash
# benches/tickets/run.sh - server CPU per query of tolldns-miner with every query ticketed
# (16-byte session ticket in EDNS option 65001) against the same load unticketed, with the
# shared peer harness (bench/peers/run.sh). See docs/BENCHMARKS.md, "Toll tickets: CPU per
# ticketed query".
#
# Prerequisites:
#   - the peer harness copied and set up:
#       cp -r /work/shared/bench/peers/. /work/bench-peers/ && (cd /work/bench-peers && ./setup.sh)
#     with a local change to /work/bench-peers/run.sh: the environment variable DNSPERF_EXTRA
#     is appended to every dnsperf command line (measurement and warm-up);
#   - release binaries:
#       CARGO_TARGET_DIR=/work/targets/bench cargo build --release --locked \
#         -p tolldns-miner -p tolldns-issuer -p tolldns
#
# What it does (all on 127.0.0.1; stops every process it started, by PID):
#   1. starts tolldns-issuer on 127.0.0.1:18480 (data in $WORK/issuer), makes a wallet,
#      credits it 10 tokens, fetches 2 tokens for issuer "bench-issuer" / deployment
#      "tolldns-bench", reads the directory's token-key, stops the issuer;
#   2. writes $WORK/bench.toml from benches/tickets/bench.toml;
#   3. starts tolldns-miner on CPU 0 (in its own session whose autogroup gets nice $BOOST,
#      like the harness's --boost does for the processes it starts);
#   4. with a temporary unbound (the harness's config) redeems one token:
#      `tolldns query --tokens ...` and reads the printed `session: <hex>`;
#   5. runs the harness once per letter of --order against that same miner process
#      (--ours-pid): t = ticketed, DNSPERF_EXTRA="-E 65001:<session hex>" (dnsperf -E also
#      turns EDNS0 on); u = unticketed plain queries (no EDNS, the harness's load);
#      e = unticketed with EDNS0 and no option (DNSPERF_EXTRA="-e"), to separate the ticket's
#      cost from the OPT record's;
#      snapshotting the miner's /metrics before and after each run;
#   6. prints the summary (summarize.py) and the metric deltas, stops the miner.
#
# Usage: benches/tickets/run.sh [--runs N] [--duration S] [--modes "udp tcp dot"]
#                               [--order "t u e e u t"] [--boost N]
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
BIN="${BIN:-/work/targets/bench/release}"
PEERS="${PEERS:-/work/bench-peers}"
WORK="${WORK:-/tmp/bench-tickets}"
RUNS=3; DURATION=10; MODES="udp tcp dot"; ORDER="t u e e u t"; BOOST=-10
ISSUER_ADDR=127.0.0.1:18480; METRICS=http://127.0.0.1:9153/metrics
while [ $# -gt 0 ]; do
  case "$1" in
    --runs) RUNS="$2"; shift ;;
    --duration) DURATION="$2"; shift ;;
    --modes) MODES="$2"; shift ;;
    --order) ORDER="$2"; shift ;;
    --boost) BOOST="$2"; shift ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
  shift
done
grep -q DNSPERF_EXTRA "$PEERS/run.sh" || { echo "$PEERS/run.sh lacks the DNSPERF_EXTRA change" >&2; exit 1; }

if [ -e "$WORK" ]; then   # only a directory left by an earlier run of this script
  [ -f "$WORK/bench.log" ] || { echo "$WORK exists and is not from this script; not touching it" >&2; exit 1; }
  rm -rf "$WORK"
fi
mkdir -p "$WORK"
LOG="$WORK/bench.log"
log() { echo "[$(date -u +%H:%M:%S)] $*" | tee -a "$LOG" >&2; }

PIDS=()   # started here, stopped at exit (by PID, newest first)
stop_pid() {
  local p="$1"
  [ -d "/proc/$p" ] || return 0
  kill -TERM "$p" 2>/dev/null || true
  for _ in $(seq 1 50); do [ -d "/proc/$p" ] || break; sleep 0.1; done
  [ -d "/proc/$p" ] && kill -KILL "$p" 2>/dev/null || true
  wait "$p" 2>/dev/null || true
  log "stopped pid $p"
}
# the miner's journal grows to several GB at these rates: removed at the end (results are kept)
cleanup() { local i; for (( i=${#PIDS[@]}-1; i>=0; i-- )); do stop_pid "${PIDS[$i]}"; done; rm -rf "$WORK/miner-data"; }
trap cleanup EXIT
trap 'log interrupted; exit 130' INT TERM

wait_http() { for _ in $(seq 1 100); do curl -fsS "$1" >/dev/null 2>&1 && return 0; sleep 0.2; done; log "no answer from $1"; return 1; }

# ------------------------------------------------------------------ tokens --
"$BIN/tolldns-issuer" run --listen "$ISSUER_ADDR" --data-dir "$WORK/issuer" >"$WORK/issuer.log" 2>&1 &
ISSUER_PID=$!; PIDS+=("$ISSUER_PID")
wait_http "http://$ISSUER_ADDR/.well-known/private-token-issuer-directory"
"$BIN/tolldns" keygen --out "$WORK/wallet.json" >>"$LOG"
BUYER=$("$BIN/tolldns" keygen --pubkey "$WORK/wallet.json")
"$BIN/tolldns-issuer" credit --data-dir "$WORK/issuer" --buyer "$BUYER" --tokens 10 | tee -a "$LOG"
"$BIN/tolldns" ticket fetch --issuer "http://$ISSUER_ADDR" --wallet "$WORK/wallet.json" --count 2 \
  --issuer-name bench-issuer --deployment tolldns-bench --out "$WORK/tokens.json" | tee -a "$LOG"
curl -fsS "http://$ISSUER_ADDR/.well-known/private-token-issuer-directory" > "$WORK/issuer-directory.json"
ISSUER_KEY=$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print([k for k in d["token-keys"] if k["token-type"]==2][0]["token-key"])' "$WORK/issuer-directory.json")
log "issuer token-key: ${ISSUER_KEY:0:24}... (buyer $BUYER)"
stop_pid "$ISSUER_PID"

# ------------------------------------------------------------------ config --
sed -e "s#@DATA_DIR@#$WORK/miner-data#" -e "s#@PEERS@#$PEERS#" -e "s#@ISSUER_KEY@#$ISSUER_KEY#" \
  "$HERE/bench.toml" > "$WORK/bench.toml"

# ------------------------------------------------------------------- miner --
for p in 5400 8953 9443 9153 5301; do
  if ss -Hlnut | awk '{print $5}' | grep -qE "[:.]$p\$"; then log "port $p in use; stopping"; exit 1; fi
done
setsid bash -c 'echo "$1" > /proc/self/autogroup; shift; exec taskset -c 0 "$@"' _ "$BOOST" \
  "$BIN/tolldns-miner" run --config "$WORK/bench.toml" >"$WORK/miner.log" 2>&1 &
MINER_PID=$!; PIDS+=("$MINER_PID")
wait_http "$METRICS"
log "miner pid $MINER_PID comm=$(cat /proc/$MINER_PID/comm) affinity: $(taskset -pc $MINER_PID | sed 's/.*: //') autogroup: $(cat /proc/$MINER_PID/autogroup)"

# redeem one token, with a temporary unbound so the redeeming query gets a real answer
unbound -d -c "$PEERS/conf/unbound.conf" >"$WORK/unbound-redeem.log" 2>&1 &
UB_PID=$!; PIDS+=("$UB_PID")
for _ in $(seq 1 50); do kdig @127.0.0.1 -p 5301 +time=1 +retry=0 health.bench.test A 2>/dev/null | grep -q 192.0.2.1 && break; sleep 0.2; done
"$BIN/tolldns" query --server 127.0.0.1:5400 --transport udp --tokens "$WORK/tokens.json" \
  host0001.bench.test A | tee "$WORK/redeem.txt" | tee -a "$LOG"
stop_pid "$UB_PID"
rm -f "$PEERS/run/unbound-control.sock" "$PEERS/run/unbound.pidfile"
SESSION=$(awk '/^session: / {print $2}' "$WORK/redeem.txt")
[ "${#SESSION}" = 32 ] || { log "no session ticket in the answer"; exit 1; }
log "session ticket: $SESSION"
# the session is charged: one query with it, over UDP
"$BIN/tolldns" query --server 127.0.0.1:5400 --transport udp --session "$SESSION" \
  host0002.bench.test A | tee -a "$LOG"

# ---------------------------------------------------------------- measure --
metric() { # file name -> sum of all series of that metric
  awk -v n="$2" '$1 == n || index($1, n "{") == 1 { s += $NF } END { printf "%.0f\n", s }' "$1"
}
ARGS=()
i=0
for kind in $ORDER; do
  i=$((i + 1))
  out="$WORK/results/$i-$kind"
  curl -fsS "$METRICS" > "$WORK/metrics-$i-before.txt"
  case "$kind" in
    t) extra="-E 65001:$SESSION" ;;   # ticketed (dnsperf -E also enables EDNS0)
    e) extra="-e" ;;                  # unticketed with EDNS0 (no option): isolates the ticket
    u) extra="" ;;                    # unticketed, plain (no EDNS), as the harness sends
    *) log "unknown kind $kind in --order"; exit 2 ;;
  esac
  log "run $i ($kind): DNSPERF_EXTRA='$extra' $PEERS/run.sh --boost $BOOST --no-dnsdist --unbound-modes '' --ours-pid $MINER_PID --modes '$MODES' --runs $RUNS --duration $DURATION --rate-qps 0 --out $out"
  DNSPERF_EXTRA="$extra" "$PEERS/run.sh" --boost "$BOOST" --no-dnsdist --unbound-modes "" \
    --ours-pid "$MINER_PID" --modes "$MODES" --runs "$RUNS" --duration "$DURATION" --rate-qps 0 \
    --out "$out" >"$WORK/harness-$i-$kind.txt" 2>&1 || { log "harness run $i failed"; tail "$WORK/harness-$i-$kind.txt"; exit 1; }
  curl -fsS "$METRICS" > "$WORK/metrics-$i-after.txt"
  sent=$(awk -F'\t' 'NR > 1 { c += $6 + $7 } END { print c + 0 }' "$out/raw.tsv")
  d() { echo $(( $(metric "$WORK/metrics-$i-after.txt" "$1") - $(metric "$WORK/metrics-$i-before.txt" "$1") )); }
  log "run $i ($kind): measured queries completed+lost=$sent (plus warm-up 1500/mode and probes); ticketed_queries +$(d tolldns_ingress_ticketed_queries_total), ticket_refusals +$(d tolldns_ingress_ticket_refusals_total)"
  ARGS+=("$kind=$out")
done

python3 "$HERE/summarize.py" "${ARGS[@]}" | tee "$WORK/summary.txt"
grep -h 'loadavg' "$WORK"/results/*/env.txt | tee -a "$WORK/summary.txt"
log "done; everything in $WORK"
