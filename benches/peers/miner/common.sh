# shellcheck shell=bash
# common.sh - helpers shared by the scripts of benches/peers/miner (sourced, not run).

# data_dir CONFIG: the `data_dir` of a miner config.
data_dir() { sed -n 's/^data_dir *= *"\(.*\)"/\1/p' "$1" | head -1; }

# empty_data_dir CONFIG: deletes the config's data directory, so that the miner starts afresh (a
# miner restarted within a window it signed waits for the next window).
empty_data_dir() {
  local d
  d=$(data_dir "$1")
  [ -z "$d" ] || rm -rf "$d"
}

# start_servers ours|dnsdist MINER CONFIG CONF OUT: starts unbound ($CONF/unbound.conf) and the
# server under test on CPU 0, logs in OUT; sets `ub` and `srv` to their PIDs. For ours, the
# config's data directory is emptied first (empty_data_dir); dnsdist uses $CONF/dnsdist.conf.
start_servers() {
  local target=$1 miner=$2 config=$3 conf=$4 out=$5
  taskset -c 0 unbound -d -c "$conf/unbound.conf" > "$out/unbound.log" 2>&1 &
  # shellcheck disable=SC2034 # read by the sourcing script
  ub=$!
  if [ "$target" = ours ]; then
    empty_data_dir "$config"
    taskset -c 0 "$miner" run --config "$config" > "$out/server.log" 2>&1 &
  else
    taskset -c 0 dnsdist --supervised --disable-syslog -C "$conf/dnsdist.conf" > "$out/server.log" 2>&1 &
  fi
  # shellcheck disable=SC2034 # read by the sourcing script
  srv=$!
}
