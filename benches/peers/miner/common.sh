# shellcheck shell=bash
# common.sh - helpers shared by the scripts of benches/peers/miner (sourced, not run).

# data_dir CONFIG: the `data_dir` of a miner config.
data_dir() { sed -n 's/^data_dir *= *"\(.*\)"/\1/p' "$1" | head -1; }

# start_servers ours|dnsdist MINER CONFIG CONF OUT: starts unbound ($CONF/unbound.conf) and the
# server under test on CPU 0, logs in OUT; sets `ub` and `srv` to their PIDs. For ours, the
# config's data directory is emptied first (a miner restarted within a window it signed waits
# for the next window); dnsdist uses $CONF/dnsdist.conf.
start_servers() {
  local target=$1 miner=$2 config=$3 conf=$4 out=$5 d
  taskset -c 0 unbound -d -c "$conf/unbound.conf" > "$out/unbound.log" 2>&1 &
  # shellcheck disable=SC2034 # read by the sourcing script
  ub=$!
  if [ "$target" = ours ]; then
    d=$(data_dir "$config")
    [ -n "$d" ] && rm -rf "$d"
    taskset -c 0 "$miner" run --config "$config" > "$out/server.log" 2>&1 &
  else
    taskset -c 0 dnsdist --supervised --disable-syslog -C "$conf/dnsdist.conf" > "$out/server.log" 2>&1 &
  fi
  # shellcheck disable=SC2034 # read by the sourcing script
  srv=$!
}
