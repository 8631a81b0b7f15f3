#!/usr/bin/env bash
# run.sh - start the local benchmark world (unbound on 127.0.0.1:5301, dnsdist on
# 127.0.0.1:5300 UDP/TCP, :8853 DoT, :8443 DoH), optionally a second server under
# test ("ours") on other ports, measure them side by side, stop only the PIDs
# this script started and print a results table (medians over --runs) plus
# ours/dnsdist ratios computed from measurements taken back to back in the
# same repetition.
#
# Prerequisite: ./setup.sh (installs packages, writes conf/, certs/, data/).
#
# Usage: ./run.sh [options]
#   --runs N             repetitions of the whole matrix (default 3)
#   --duration S         seconds per throughput measurement (default 15)
#   --clients C          dnsperf -c / h2load -c (default 50)
#   --outstanding Q      dnsperf -q, total queries in flight (default 100);
#                        h2load uses -m Q/C streams per connection (default 2)
#   --modes "LIST"       from: udp tcp dot doh (default "udp tcp dot doh")
#   --unbound-modes "L"  modes also measured against unbound directly as a
#                        reference (default "udp"; "" disables)
#   --rate-qps R         after the throughput phase also measure latency at a
#                        fixed offered load of R queries/s (dnsperf -Q R,
#                        h2load --rps R/C); 0 disables (default 10000)
#   --rate-duration S    seconds per fixed-rate measurement (default 10)
#   --server-cpus LIST   taskset CPU list for the servers (default 0)
#   --client-cpus LIST   taskset CPU list for the load generators (default 1)
#   --doh-tool T         h2load (default) or dnsperf (dnsperf 2.10 DoH stalls
#                        against dnsdist 1.7 when >1 stream is in flight)
#   --ours-cmd 'CMD'     start our proxy with CMD (exec'd in the foreground
#                        under taskset --server-cpus; PID recorded; stopped at end)
#   --ours-pid PID       measure an already running proxy (not started/stopped
#                        here); its CPU is read from /proc/PID
#   --ours-standin       start a 2nd dnsdist on the ours ports (self-test of the
#                        side-by-side/ratio path; ratio ~1.0 = noise floor)
#   --ours-name NAME     label for the second server (default "ours"; "twin"
#                        with --ours-standin)
#   --ours-ports "U T H" ours ports: UDP/TCP, DoT, DoH (default "5400 8953 9443")
#   --ours-doh-path P    DoH path of ours (default /dns-query)
#   --no-dnsdist         do not start/measure dnsdist (ours alone)
#   --out DIR            results directory (default results/<UTC timestamp>)
#   --quiet-wait S       before each measurement wait up to S seconds (default
#                        0 = off) until other load on the machine is ...
#   --quiet-max PCT      ... <= PCT % of one core (default 25)
#   --noisy-retries N    repeat a measurement (up to N times, default 0) when
#                        other tenants used > --noisy-max PCT % of a core
#                        (default 20) during it; discarded rows go to
#                        raw-discarded.tsv. other% is always recorded.
#   --no-perf            do not run 'perf stat -e task-clock,context-switches'
#                        on the server during each measurement
#   --boost N            run in a new session (setsid) whose scheduler
#                        autogroup gets nice N (e.g. -10) so that other
#                        sessions' CPU hogs take less of our cores during the
#                        run (default 0 = off; affects only this run's processes)
#   --miss               cache-miss mode: every query asks a name never asked
#                        before (<counter>.<tag>.miss.bench.test A, the tag
#                        unique per run and measurement), which unbound answers
#                        from its miss.bench.test redirect zone, so every
#                        server forwards every query to unbound; no warm-up
#   --miss-names N       names per measurement in --miss mode (default
#                        1000000); a measurement that completes more queries
#                        than that wraps around into cache hits (logged)
set -uo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
CONF="$HERE/conf"; CERTS="$HERE/certs"; DATA="$HERE/data"; PIDDIR="$HERE/run"

RUNS=3; DURATION=15; CLIENTS=50; OUTSTANDING=100
MODES="udp tcp dot doh"; UNBOUND_MODES="udp"
RATE_QPS=10000; RATE_DURATION=10
QUIET_MAX=25; QUIET_WAIT=0; NOISY_MAX=20; NOISY_RETRIES=0
USE_PERF=auto; BOOST=0
SERVER_CPUS=0; CLIENT_CPUS=1
DOH_TOOL=h2load
OURS_CMD=""; OURS_PID_EXT=""; OURS_STANDIN=0; OURS_NAME=ours
OURS_PORTS="5400 8953 9443"; OURS_DOH_PATH=/dns-query; OURS_NAME_GIVEN=0
WITH_DNSDIST=1
OUT=""
MISS=0; MISS_NAMES=1000000

usage() { sed -n '2,/^set -uo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; }
ORIG_ARGS=("$@")
while [ $# -gt 0 ]; do
  case "$1" in
    --runs) RUNS="$2"; shift ;;
    --duration) DURATION="$2"; shift ;;
    --clients) CLIENTS="$2"; shift ;;
    --outstanding) OUTSTANDING="$2"; shift ;;
    --modes) MODES="$2"; shift ;;
    --unbound-modes) UNBOUND_MODES="$2"; shift ;;
    --rate-qps) RATE_QPS="$2"; shift ;;
    --rate-duration) RATE_DURATION="$2"; shift ;;
    --server-cpus) SERVER_CPUS="$2"; shift ;;
    --client-cpus) CLIENT_CPUS="$2"; shift ;;
    --doh-tool) DOH_TOOL="$2"; shift ;;
    --ours-cmd) OURS_CMD="$2"; shift ;;
    --ours-pid) OURS_PID_EXT="$2"; shift ;;
    --ours-standin) OURS_STANDIN=1 ;;
    --ours-name) OURS_NAME="$2"; OURS_NAME_GIVEN=1; shift ;;
    --ours-ports) OURS_PORTS="$2"; shift ;;
    --ours-doh-path) OURS_DOH_PATH="$2"; shift ;;
    --no-dnsdist) WITH_DNSDIST=0 ;;
    --out) OUT="$2"; shift ;;
    --quiet-max) QUIET_MAX="$2"; shift ;;
    --quiet-wait) QUIET_WAIT="$2"; shift ;;
    --noisy-max) NOISY_MAX="$2"; shift ;;
    --noisy-retries) NOISY_RETRIES="$2"; shift ;;
    --no-perf) USE_PERF=0 ;;
    --boost) BOOST="$2"; shift ;;
    --miss) MISS=1 ;;
    --miss-names) MISS_NAMES="$2"; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "unknown option: $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done

# --boost: re-run this script as the leader of a new session, so that it gets
# its own CFS autogroup, and give that autogroup a lower nice value.
if [ "$BOOST" != 0 ] && [ "${RUNSH_BOOSTED:-0}" != 1 ]; then
  command -v setsid >/dev/null && [ -w /proc/self/autogroup ] || { echo "--boost needs setsid and /proc/self/autogroup" >&2; exit 1; }
  mkdir -p "$PIDDIR"; rm -f "$PIDDIR/run.sh.pid"
  RUNSH_BOOSTED=1 setsid -w "$0" "${ORIG_ARGS[@]}" &
  child=$!
  fwd() { local p; p=$(cat "$PIDDIR/run.sh.pid" 2>/dev/null); [ -n "$p" ] && kill -TERM "$p" 2>/dev/null; }
  trap 'fwd' INT TERM
  while :; do wait "$child"; rc=$?; [ -d "/proc/$child" ] || break; done
  exit "$rc"
fi
if [ "${RUNSH_BOOSTED:-0}" = 1 ]; then
  echo $$ > "$PIDDIR/run.sh.pid"
  echo "$BOOST" > /proc/self/autogroup || { echo "could not set autogroup nice $BOOST" >&2; exit 1; }
fi

for f in "$CONF/unbound.conf" "$CONF/dnsdist.conf" "$DATA/queries.txt" "$DATA/doh-get-paths.txt" "$CERTS/cert.pem"; do
  [ -s "$f" ] || { echo "missing $f - run ./setup.sh first" >&2; exit 1; }
done
if [ "$MISS" = 1 ]; then
  [ -s "$CONF/doh-get.awk" ] && grep -q '"miss.bench.test."' "$CONF/bench.test.unbound.conf" 2>/dev/null \
    || { echo "--miss needs the miss.bench.test zone: run ./setup.sh --no-install again" >&2; exit 1; }
  case "$MISS_NAMES" in ''|*[!0-9]*) echo "--miss-names takes a number" >&2; exit 2 ;; esac
  [ "$MISS_NAMES" -ge 1 ] && [ "$MISS_NAMES" -le 99999999 ] || { echo "--miss-names must be 1..99999999" >&2; exit 2; }
fi
for b in unbound unbound-control dnsdist dnsperf kdig h2load taskset ss; do
  command -v "$b" >/dev/null || { echo "missing binary $b - run ./setup.sh" >&2; exit 1; }
done
n_ours=0; [ -n "$OURS_CMD" ] && n_ours=$((n_ours+1)); [ -n "$OURS_PID_EXT" ] && n_ours=$((n_ours+1)); [ "$OURS_STANDIN" = 1 ] && n_ours=$((n_ours+1))
[ "$n_ours" -le 1 ] || { echo "use only one of --ours-cmd / --ours-pid / --ours-standin" >&2; exit 2; }
WITH_OURS=0; [ "$n_ours" = 1 ] && WITH_OURS=1
[ "$OURS_STANDIN" = 1 ] && [ "$OURS_NAME_GIVEN" = 0 ] && OURS_NAME=twin
read -r OURS_UDP OURS_DOT OURS_DOH <<<"$OURS_PORTS"
HMAX=$(( OUTSTANDING / CLIENTS )); [ "$HMAX" -ge 1 ] || HMAX=1

[ -n "$OUT" ] || OUT="$HERE/results/$(date -u +%Y%m%dT%H%M%SZ)"
mkdir -p "$OUT" "$PIDDIR"
RAW="$OUT/raw.tsv"
CLK_TCK=$(getconf CLK_TCK)
if [ "$USE_PERF" = auto ]; then
  USE_PERF=0; command -v perf >/dev/null && perf stat -e task-clock,context-switches -- true >/dev/null 2>&1 && USE_PERF=1
fi
LOG="$OUT/run.log"
log() { echo "[$(date -u +%H:%M:%S)] $*" | tee -a "$LOG" >&2; }

# ------------------------------------------------------------ processes ----
declare -A PID COMM        # name -> pid / expected comm (only what we started)
STARTED=()                 # start order
start_server() { # name pidfile-name cmd...
  local name="$1"; shift
  taskset -c "$SERVER_CPUS" "$@" >"$OUT/$name.log" 2>&1 &
  local p=$!
  PID[$name]=$p; STARTED+=("$name")
  echo "$p" > "$PIDDIR/$name.pid"
  sleep 0.3
  COMM[$name]="$(cat /proc/$p/comm 2>/dev/null || echo '?')"
  log "started $name pid=$p comm=${COMM[$name]} cpus=$SERVER_CPUS: $*"
}
stop_all() {
  local i name p
  if [ -n "${CLIENT_PID:-}" ] && [ -d "/proc/$CLIENT_PID" ]; then kill -TERM "$CLIENT_PID" 2>/dev/null; wait "$CLIENT_PID" 2>/dev/null; fi
  for (( i=${#STARTED[@]}-1; i>=0; i-- )); do
    name="${STARTED[$i]}"; p="${PID[$name]}"
    if [ -d "/proc/$p" ] && [ "$(cat /proc/$p/comm 2>/dev/null)" = "${COMM[$name]}" ]; then
      kill -TERM "$p" 2>/dev/null
      for _ in $(seq 1 50); do [ -d "/proc/$p" ] || break; sleep 0.1; done
      if [ -d "/proc/$p" ]; then kill -KILL "$p" 2>/dev/null; fi
      wait "$p" 2>/dev/null
      log "stopped $name pid=$p"
    fi
    rm -f "$PIDDIR/$name.pid"
    [ "$name" = unbound ] && rm -f "$PIDDIR/unbound-control.sock" "$PIDDIR/unbound.pidfile"
  done
  STARTED=()
}
trap 'stop_all; [ "${RUNSH_BOOSTED:-0}" = 1 ] && rm -f "$PIDDIR/run.sh.pid"' EXIT
trap 'log "interrupted"; exit 130' INT TERM

port_busy() { ss -Hlnut 2>/dev/null | awk '{print $5}' | grep -qE "^127\.0\.0\.1:$1\$|^\*:$1\$|^0\.0\.0\.0:$1\$|^\[::\]:$1\$"; }
need_ports="5301"
[ "$WITH_DNSDIST" = 1 ] && need_ports="$need_ports 5300 8853 8443"
[ "$OURS_STANDIN" = 1 ] || [ -n "$OURS_CMD" ] && need_ports="$need_ports $OURS_UDP $OURS_DOT $OURS_DOH"
for p in $need_ports; do
  if port_busy "$p"; then echo "port 127.0.0.1:$p is already in use; not starting anything" >&2; trap - EXIT; exit 1; fi
done

# kdig probes -------------------------------------------------------------
probe() { # port proto name type [dohpath] -> "RCODE rdata..." (sorted), empty on failure
  local port="$1" proto="$2" name="$3" type="$4" path="${5:-/dns-query}" o=""
  case "$proto" in
    udp) o="+notcp" ;; tcp) o="+tcp" ;; dot) o="+tls" ;; doh) o="+https=$path" ;;
  esac
  kdig @127.0.0.1 -p "$port" $o +time=2 +retry=0 "$name" "$type" 2>/dev/null | awk '
    /->>HEADER<<-/ { for (i = 1; i <= NF; i++) if ($i == "status:") { rc = $(i + 1); sub(/;$/, "", rc) } }
    /^;; ANSWER SECTION:/ { ans = 1; next }
    ans && /^$/ { ans = 0 }
    ans && !/^;/ { r = ""; for (i = 5; i <= NF; i++) r = r (i > 5 ? " " : "") $i; rr[++n] = $4 " " r }
    END { if (rc == "") exit; printf "%s", rc
          for (i = 2; i <= n; i++) { x = rr[i]; for (j = i - 1; j >= 1 && rr[j] > x; j--) rr[j + 1] = rr[j]; rr[j + 1] = x }
          for (i = 1; i <= n; i++) printf " | %s", rr[i]; printf "\n" }'
}
wait_ready() { # label port proto [path]
  local i
  for i in $(seq 1 50); do
    case "$(probe "$2" "$3" health.bench.test A "${4:-}")" in "NOERROR | A 192.0.2.1") return 0 ;; esac
    sleep 0.2
  done
  log "ERROR: $1 did not answer on 127.0.0.1:$2 ($3)"; return 1
}

# ------------------------------------------------------------- targets -----
declare -A TPORT TPID   # "target:mode" -> port ; target -> pid for CPU accounting
TARGETS=()
ub_ctl() { unbound-control -c "$CONF/unbound.conf" "$@"; }
backend_queries() { ub_ctl stats_noreset 2>/dev/null | awk -F= '$1=="total.num.queries"{print $2}'; }

log "output: $OUT"
RUN_ID=$(date -u +%H%M%S)   # part of every --miss name, so names differ between runs too
{
  echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "host: $(uname -r), $(nproc) cpus, $(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //')"
  echo "loadavg at start: $(cat /proc/loadavg)"
  echo "scheduler autogroup of this run: $(cat /proc/self/autogroup 2>/dev/null) (boost=$BOOST)"
  echo "args: runs=$RUNS duration=$DURATION clients=$CLIENTS outstanding=$OUTSTANDING h2load_m=$HMAX modes='$MODES' unbound_modes='$UNBOUND_MODES' rate_qps=$RATE_QPS rate_duration=$RATE_DURATION server_cpus=$SERVER_CPUS client_cpus=$CLIENT_CPUS doh_tool=$DOH_TOOL ours=${OURS_CMD:-}${OURS_PID_EXT:+pid $OURS_PID_EXT}$([ $OURS_STANDIN = 1 ] && echo standin-dnsdist) ours_ports='$OURS_PORTS' quiet_max=$QUIET_MAX quiet_wait=$QUIET_WAIT noisy_max=$NOISY_MAX noisy_retries=$NOISY_RETRIES perf=$USE_PERF miss=$MISS miss_names=$MISS_NAMES"
  [ -s "$HERE/versions.txt" ] && cat "$HERE/versions.txt"
} > "$OUT/env.txt"

start_server unbound unbound -d -c "$CONF/unbound.conf"
wait_ready unbound 5301 udp || exit 1
TARGETS+=(unbound); TPID[unbound]=${PID[unbound]}; TPORT[unbound:udp]=5301; TPORT[unbound:tcp]=5301

if [ "$WITH_DNSDIST" = 1 ]; then
  start_server dnsdist dnsdist --supervised --disable-syslog -C "$CONF/dnsdist.conf"
  wait_ready dnsdist 5300 udp && wait_ready dnsdist 5300 tcp && wait_ready dnsdist 8853 dot && wait_ready dnsdist 8443 doh || exit 1
  TARGETS+=(dnsdist); TPID[dnsdist]=${PID[dnsdist]}
  TPORT[dnsdist:udp]=5300; TPORT[dnsdist:tcp]=5300; TPORT[dnsdist:dot]=8853; TPORT[dnsdist:doh]=8443
fi
declare -A DOHPATH; DOHPATH[dnsdist]=/dns-query; DOHPATH[unbound]=/dns-query; DOHPATH[$OURS_NAME]="$OURS_DOH_PATH"
if [ "$WITH_OURS" = 1 ]; then
  if [ "$OURS_STANDIN" = 1 ]; then
    start_server "$OURS_NAME" dnsdist --supervised --disable-syslog -C "$CONF/dnsdist-standin-ours.conf"
    TPID[$OURS_NAME]=${PID[$OURS_NAME]}
  elif [ -n "$OURS_CMD" ]; then
    start_server "$OURS_NAME" bash -c "exec $OURS_CMD"
    TPID[$OURS_NAME]=${PID[$OURS_NAME]}
  else
    [ -d "/proc/$OURS_PID_EXT" ] || { log "ERROR: --ours-pid $OURS_PID_EXT not running"; exit 1; }
    TPID[$OURS_NAME]=$OURS_PID_EXT
    log "measuring external $OURS_NAME pid=$OURS_PID_EXT (not started/stopped here)"
  fi
  for m in $MODES; do
    case $m in udp|tcp) p=$OURS_UDP ;; dot) p=$OURS_DOT ;; doh) p=$OURS_DOH ;; esac
    wait_ready "$OURS_NAME" "$p" "$m" "$OURS_DOH_PATH" || exit 1
    TPORT[$OURS_NAME:$m]=$p
  done
  TARGETS+=("$OURS_NAME")
fi

# ---------------------------------------------------- correctness probes ---
# Same answers through every target/protocol as from unbound directly.
{
  printf '%-10s %-4s %-28s %-5s %s\n' target mode name type result
  probes=("host0001.bench.test A" "host0002.bench.test AAAA" "host0003.bench.test TXT" "nonexistent.bench.test A")
  [ "$MISS" = 1 ] && probes+=("probe-$RUN_ID.miss.bench.test A")
  for q in "${probes[@]}"; do
    set -- $q
    ref="$(probe 5301 udp "$1" "$2")"
    for t in "${TARGETS[@]}"; do
      for m in udp tcp dot doh; do
        p="${TPORT[$t:$m]:-}"; [ -n "$p" ] || continue
        got="$(probe "$p" "$m" "$1" "$2" "${DOHPATH[$t]}")"
        st=OK; [ "$got" = "$ref" ] || st="MISMATCH got='$got' want='$ref'"
        printf '%-10s %-4s %-28s %-5s %s\n' "$t" "$m" "$1" "$2" "$st"
      done
    done
  done
} > "$OUT/correctness.txt"
cat "$OUT/correctness.txt" >> "$LOG"
if grep -q MISMATCH "$OUT/correctness.txt"; then log "WARNING: answer mismatches, see $OUT/correctness.txt"; else log "correctness probes: all OK"; fi
for t in "${TARGETS[@]}"; do   # negotiated TLS parameters, for the record
  for m in dot doh; do
    p="${TPORT[$t:$m]:-}"; [ -n "$p" ] || continue
    a=""; [ $m = doh ] && a="-alpn h2"
    echo "$t $m: $(timeout 5 openssl s_client -connect 127.0.0.1:$p $a -brief </dev/null 2>&1 | grep -E 'Protocol version|Ciphersuite|ALPN|Peer Temp' | tr '\n' ';')" >> "$OUT/env.txt"
  done
done

# -------------------------------------------------------------- clients ----
cpu_s() { # pid -> utime+stime seconds of the whole process (all threads)
  [ -r "/proc/$1/stat" ] || { echo 0; return; }
  sed 's/^.*) //' "/proc/$1/stat" | awk -v hz="$CLK_TCK" '{printf "%.2f", ($12+$13)/hz}'
}
now() { date +%s.%N; }

# h2load URI list for a port: first line must carry scheme://host:port
uri_file() { # port path -> file
  local f="$OUT/.uris-$1"
  if [ ! -s "$f" ]; then
    { echo "https://127.0.0.1:$1$(head -1 "$DATA/doh-get-paths.txt" | sed "s#^/dns-query#$2#")"
      tail -n +2 "$DATA/doh-get-paths.txt" | sed "s#^/dns-query#$2#"; } > "$f"
  fi
  echo "$f"
}

# --miss: MISS_NAMES fresh names for one measurement, "<8 digits>.<tag>.miss.bench.test A"
miss_queries() { # tag file
  awk -v n="$MISS_NAMES" -v tag="$1" 'BEGIN { for (i = 0; i < n; i++) printf "%08d.%s.miss.bench.test A\n", i, tag }' > "$2"
}
# The same names as h2load URIs. The 12-byte header and the 9-byte first label
# (length 8 + 8 digits) are multiples of 3 bytes, so the base64url of every
# message is: encoded header, encoded first label (looked up in tables of its
# 3-digit groups), encoded rest, which is the same for all names of the tag.
miss_uris() { # tag port path file
  local enc
  enc=$(echo "00000000.$1.miss.bench.test A" | awk -f "$CONF/doh-get.awk") || return 1
  awk -v n="$MISS_NAMES" -v enc="${enc#/dns-query?dns=}" -v first="https://127.0.0.1:$2$3?dns=" -v path="$3?dns=" '
    function q(a, b, c,   x) { x = a * 65536 + b * 256 + c
      return substr(B, int(x / 262144) % 64 + 1, 1) substr(B, int(x / 4096) % 64 + 1, 1) substr(B, int(x / 64) % 64 + 1, 1) substr(B, x % 64 + 1, 1) }
    BEGIN {
      B = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
      head = substr(enc, 1, 16); rest = substr(enc, 29)
      for (i = 0; i < 100; i++) g1[i] = q(8, 48 + int(i / 10), 48 + i % 10)
      for (i = 0; i < 1000; i++) g3[i] = q(48 + int(i / 100), 48 + int(i / 10) % 10, 48 + i % 10)
      for (i = 0; i < n; i++)
        print (i == 0 ? first : path) head g1[int(i / 1000000) % 100] g3[int(i / 1000) % 1000] g3[i % 1000] rest
    }' > "$4"
}

# run_client target mode phase outfile -> runs the load generator on CLIENT_CPUS
CLIENT_PID=""
# user+sys seconds of reaped children, from the 2nd line of bash's `times`
children_cpu() { sed -n 2p "$1" | awk '{ s = 0; for (i = 1; i <= 2; i++) { split($i, a, /[ms]/); s += a[1] * 60 + a[2] } printf "%.3f", s }'; }
run_client() {
  local t="$1" m="$2" phase="$3" f="$4" port="${TPORT[$1:$2]}" dur rate="" cmd=()
  if [ "$phase" = max ]; then dur=$DURATION; else dur=$RATE_DURATION; fi
  if [ "$m" = doh ] && [ "$DOH_TOOL" = h2load ]; then
    [ "$phase" = rate ] && rate="--rps=$(( (RATE_QPS + CLIENTS - 1) / CLIENTS ))"
    cmd=(h2load -c "$CLIENTS" -m "$HMAX" -t 1 -D "$dur" $rate -i "${MISS_URIS:-$(uri_file "$port" "${DOHPATH[$t]}")}")
  else
    local extra=()
    [ "$phase" = rate ] && extra+=(-Q "$RATE_QPS")
    [ "$m" = doh ] && extra+=(-O "doh-uri=https://127.0.0.1:$port${DOHPATH[$t]}" -O doh-method=GET)
    cmd=(dnsperf -m "$m" -s 127.0.0.1 -p "$port" -d "${MISS_QUERIES:-$DATA/queries.txt}" -c "$CLIENTS" -q "$OUTSTANDING" -l "$dur" "${extra[@]}")
  fi
  echo "taskset -c $CLIENT_CPUS ${cmd[*]}" > "$f.cmd"
  # background + wait so that INT/TERM are handled at once; client CPU = change
  # in the CPU time of reaped children around it (bash builtin `times`)
  times > "$f.t0"
  timeout $((dur + 60)) taskset -c "$CLIENT_CPUS" "${cmd[@]}" >"$f" 2>&1 &
  CLIENT_PID=$!
  wait "$CLIENT_PID"
  CLIENT_PID=""
  times > "$f.t1"
  echo "$(children_cpu "$f.t0") $(children_cpu "$f.t1")" | awk '{printf "%.3f\n", $2 - $1}' > "$f.time"
  rm -f "$f.t0" "$f.t1"
}

# parse -> "qps completed lost lat_avg_ms lat_sd_ms lat_max_ms"
parse_out() {
  local f="$1"
  if grep -q '^finished in' "$f"; then
    awk 'function ms(v) { if (v ~ /us$/) return v/1000; if (v ~ /ms$/) return v+0; if (v ~ /s$/) return v*1000; return v+0 }
      /^finished in/ { gsub(",", ""); qps = $4 }
      /^requests:/ { gsub(",", ""); ok = $8; bad = $10 + $12 + $14 }
      /^time for request:/ { mx = ms($5); mean = ms($6); sd = ms($7) }
      END { printf "%.0f %d %d %.3f %.3f %.3f\n", qps, ok, bad, mean, sd, mx }' "$f"
  else
    awk '/Queries completed:/ { c = $3 } /Queries lost:/ { l = $3 }
      /Queries per second:/ { q = $4 }
      /Average Latency \(s\):/ && !a { a = $4 * 1000; mx = $8; sub(/\)/, "", mx); mx *= 1000 }
      /Latency StdDev \(s\):/ && !s { s = $4 * 1000 }
      END { printf "%.0f %d %d %.3f %.3f %.3f\n", q, c, l, a, s, mx }' "$f"
  fi
}

# aggregate CPU counters of all CPUs from /proc/stat: "busy softirq steal" ticks
sys_ticks() { awk '$1=="cpu"{print $2+$3+$4+$7+$8+$9, $8, $9}' /proc/stat; }
# wait until the machine is quiet (other tenants' load below QUIET_MAX % of one core)
wait_quiet() {
  local t0 waited=0 a b busy
  [ "$QUIET_WAIT" -gt 0 ] || { echo 0; return; }
  t0=$(date +%s)
  while :; do
    a=$(sys_ticks); sleep 1; b=$(sys_ticks)
    busy=$(echo "$a $b" | awk -v hz="$CLK_TCK" '{printf "%.0f", 100 * ($4 - $1) / hz}')
    [ "$busy" -le "$QUIET_MAX" ] && break
    waited=$(( $(date +%s) - t0 ))
    if [ "$waited" -ge "$QUIET_WAIT" ]; then log "machine still busy (${busy}% of a core) after ${waited}s; measuring anyway"; break; fi
    [ $(( waited % 30 )) -lt 2 ] && log "waiting for a quiet machine: background load ${busy}% of a core"
    sleep 1
  done
  echo $(( $(date +%s) - t0 - 1 ))
}

measure() { # rep phase target mode
  local rep="$1" phase="$2" t="$3" m="$4" f pid c0 c1 u0 u1 b0 b1 y0 y1 w0 w1 res cli row other attempt waited
  pid="${TPID[$t]}"
  for attempt in $(seq 0 "$NOISY_RETRIES"); do
    waited=$(wait_quiet)
    f="$OUT/$phase-$t-$m-r$rep.a$attempt.out"
    MISS_QUERIES=""; MISS_URIS=""
    if [ "$MISS" = 1 ]; then
      local tag
      tag=$(echo "$RUN_ID-r$rep$phase-$t-$m-a$attempt" | tr 'A-Z' 'a-z' | tr -c 'a-z0-9\n' '-' | cut -c1-63)
      if [ "$m" = doh ] && [ "$DOH_TOOL" = h2load ]; then
        MISS_URIS="$OUT/.miss-uris"; miss_uris "$tag" "${TPORT[$t:$m]}" "${DOHPATH[$t]}" "$MISS_URIS"
      else
        MISS_QUERIES="$OUT/.miss-queries"; miss_queries "$tag" "$MISS_QUERIES"
      fi
    fi
    c0=$(cpu_s "$pid"); u0=$(cpu_s "${PID[unbound]}"); b0=$(backend_queries); y0=$(sys_ticks); w0=$(now)
    local perf_pid="" pf="-1 -1"
    if [ "$USE_PERF" = 1 ]; then
      perf stat -x, -e task-clock,context-switches -p "$pid" -o "$f.perf" >/dev/null 2>&1 &
      perf_pid=$!
    fi
    run_client "$t" "$m" "$phase" "$f"
    w1=$(now); c1=$(cpu_s "$pid"); u1=$(cpu_s "${PID[unbound]}"); b1=$(backend_queries); y1=$(sys_ticks)
    if [ -n "$perf_pid" ]; then
      kill -INT "$perf_pid" 2>/dev/null; wait "$perf_pid" 2>/dev/null
      pf=$(awk -F, '$3 ~ /^task-clock/ {tc = $1} $3 ~ /^context-switches/ {cs = $1} END {printf "%s %s", (tc == "" ? -1 : tc), (cs == "" ? -1 : cs)}' "$f.perf" 2>/dev/null)
    fi
    res=$(parse_out "$f"); cli=$(awk '{printf "%.2f", $1}' "$f.time")
    if [ "$MISS" = 1 ]; then
      rm -f "$OUT/.miss-queries" "$OUT/.miss-uris"
      echo "$res ${b0:-0} ${b1:-0}" | awk -v n="$MISS_NAMES" -v what="r$rep $phase $t $m" '
        $2 > n { printf "WARNING: %s completed %d queries, more than the %d --miss-names: the rest were cache hits\n", what, $2, n }
        $2 > 0 && ($8 - $7) < 0.95 * $2 { printf "WARNING: %s: unbound saw %d queries for %d completed: not every query was forwarded\n", what, $8 - $7, $2 }' \
        | while read -r line; do log "$line"; done
    fi
    row=$(echo "$res $y0 $y1 $pf" | awk -v rep="$rep" -v ph="$phase" -v t="$t" -v m="$m" -v c0="$c0" -v c1="$c1" -v u0="$u0" -v u1="$u1" \
        -v b0="${b0:-0}" -v b1="${b1:-0}" -v w0="$w0" -v w1="$w1" -v cli="$cli" -v hz="$CLK_TCK" -v att="$attempt" -v wq="$waited" '
      { wall = w1 - w0; scpu = c1 - c0; ucpu = u1 - u0; n = $2
        if (t == "unbound") ucpu = 0      # same process: do not count twice
        upq = (n > 0) ? scpu / n * 1e6 : 0
        busy = 100 * ($10 - $7) / hz / wall; si = 100 * ($11 - $8) / hz / wall; st = 100 * ($12 - $9) / hz / wall
        other = busy - si - 100 * (scpu + ucpu + cli) / wall; if (other < 0) other = 0
        tc = $13; cs = $14; csq = (cs >= 0 && n > 0) ? cs / n : -1
        printf "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%.2f\t%.2f\t%.1f\t%.2f\t%.1f\t%.2f\t%d\t%.1f\t%.1f\t%.1f\t%.1f\t%d\t%d\t%.2f\t%.1f\t%d\t%.3f\n",
          rep, ph, t, m, $1, $2, $3, $4, $5, $6, scpu, upq, 100 * scpu / wall, cli, 100 * cli / wall, ucpu, b1 - b0,
          busy, si, other, st, att, wq, wall, tc, cs, csq }')
    other=$(echo "$row" | awk -F'\t' '{printf "%.0f", $20}')
    if [ "$other" -gt "$NOISY_MAX" ] && [ "$attempt" -lt "$NOISY_RETRIES" ]; then
      echo "$row" >> "$OUT/raw-discarded.tsv"
      log "r$rep $phase $t $m: other tenants used ${other}% of a core during the run; discarded, retrying"
      continue
    fi
    echo "$row" >> "$RAW"
    break
  done
  log "$(tail -1 "$RAW" | awk -F'\t' '{printf "r%s %-4s %-8s %-3s qps=%-7s lat=%sms lost=%s srvCPU=%s%% (%sus/q) cli=%s%% backendQ=%s other=%s%% steal=%s%%", $1,$2,$3,$4,$5,$8,$7,$13,$12,$15,$17,$20,$21}')"
}

warm() { # target mode : one pass through the query file (fills the packet cache)
  local t="$1" m="$2" port="${TPORT[$1:$2]}" f="$OUT/warm-$1-$2.out"
  if [ "$m" = doh ] && [ "$DOH_TOOL" = h2load ]; then
    taskset -c "$CLIENT_CPUS" h2load -n "$(wc -l < "$DATA/queries.txt")" -c 1 -m 10 -i "$(uri_file "$port" "${DOHPATH[$t]}")" >"$f" 2>&1
  else
    local extra=(); [ "$m" = doh ] && extra+=(-O "doh-uri=https://127.0.0.1:$port${DOHPATH[$t]}" -O doh-method=GET -q 1)
    taskset -c "$CLIENT_CPUS" dnsperf -m "$m" -s 127.0.0.1 -p "$port" -d "$DATA/queries.txt" -n 1 -c 10 "${extra[@]}" >"$f" 2>&1
  fi
  log "warm $t $m: $(parse_out "$f" | awk '{print "completed=" $2 " lost=" $3}')"
}

HDR='rep\tphase\ttarget\tmode\tqps\tcompleted\tlost\tlat_avg_ms\tlat_sd_ms\tlat_max_ms\tsrv_cpu_s\tsrv_cpu_us_per_q\tsrv_util_pct\tcli_cpu_s\tcli_util_pct\tunbound_cpu_s\tbackend_queries\tbusy_pct\tsoftirq_pct\tother_pct\tsteal_pct\tattempt\tquiet_wait_s\twall_s\tperf_task_clock_ms\tctx_switches\tctx_switches_per_q'
printf "$HDR\n" > "$RAW"; printf "$HDR\n" > "$OUT/raw-discarded.tsv"

# measured (target, mode) pairs
PAIRS=()
for m in $MODES; do
  for t in "${TARGETS[@]}"; do
    [ "$t" = unbound ] && { case " $UNBOUND_MODES " in *" $m "*) ;; *) continue ;; esac; }
    [ -n "${TPORT[$t:$m]:-}" ] && PAIRS+=("$t:$m")
  done
done
if [ "$MISS" = 1 ]; then
  log "miss mode: no cache warm-up; every measurement asks $MISS_NAMES fresh names under miss.bench.test"
else
  for pm in "${PAIRS[@]}"; do warm "${pm%%:*}" "${pm#*:}"; done
fi

PHASES="max"; [ "$RATE_QPS" -gt 0 ] && PHASES="max rate"
for rep in $(seq 1 "$RUNS"); do
  for phase in $PHASES; do
    for m in $MODES; do
      order=()
      for pm in "${PAIRS[@]}"; do [ "${pm#*:}" = "$m" ] && order+=("${pm%%:*}"); done
      # alternate the order between repetitions so neither server always goes first
      if [ $((rep % 2)) = 0 ]; then rev=(); for (( i=${#order[@]}-1; i>=0; i-- )); do rev+=("${order[$i]}"); done; order=("${rev[@]}"); fi
      for t in "${order[@]}"; do measure "$rep" "$phase" "$t" "$m"; sleep 1; done
    done
  done
done
echo "loadavg at end: $(cat /proc/loadavg)" >> "$OUT/env.txt"

stop_all
trap - EXIT

# -------------------------------------------------------------- summary ----
"$HERE/summarize.sh" "$RAW" "$([ "$WITH_OURS" = 1 ] && echo "$OURS_NAME")" | tee "$OUT/summary.txt"
echo
echo "raw per-run data: $RAW"
echo "client commands: $OUT/*.cmd ; outputs: $OUT/*.out ; servers' logs: $OUT/*.log"
[ "${RUNSH_BOOSTED:-0}" = 1 ] && rm -f "$PIDDIR/run.sh.pid"
exit 0
