#!/bin/sh
# Builds the TollDNS miner container image offline and answers one DNS query from it.
#
#   bins/tolldns-miner/packaging/build-image.sh
#
# 1. builds the static binary (x86_64-unknown-linux-gnu, -C target-feature=+crt-static);
# 2. builds the FROM-scratch image `localhost/tolldns-miner:latest` with podman (or buildah)
#    from Debian's packages: no base layer is pulled, nothing is downloaded;
# 3. runs it (host network, test ports 127.0.0.1:25353/28853/28443/29153), asks one DNS query
#    with kdig, checks /healthz, stops it with SIGTERM and checks that the last window was
#    signed.
#
# Environment: ENGINE=podman|buildah (default: whichever is installed, podman first),
# SKIP_BUILD=1 (reuse the binary), STORAGE_DRIVER (e.g. vfs where overlay is unavailable),
# RUNTIME (OCI runtime for the smoke run, e.g. runc or crun),
# CARGO_TARGET_DIR (default: target).
set -eu

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../.." && pwd)
target_dir=${CARGO_TARGET_DIR:-$root/target}
triple=x86_64-unknown-linux-gnu
bin=$target_dir/$triple/release/tolldns-miner
image=localhost/tolldns-miner:latest

say() { printf 'build-image: %s\n' "$*" >&2; }
die() { say "FAILED: $*"; exit 1; }

if [ "${SKIP_BUILD:-0}" != 1 ]; then
    say "building the static binary"
    (cd "$root" && RUSTFLAGS="-C target-feature=+crt-static" \
        cargo build --release --locked --target "$triple" -p tolldns-miner)
fi
[ -x "$bin" ] || die "no binary at $bin"
if ldd "$bin" 2>/dev/null | grep -q '=>'; then
    die "$bin is dynamically linked"
fi
say "static binary: $bin ($(wc -c < "$bin") bytes)"

engine=${ENGINE:-}
if [ -z "$engine" ]; then
    if command -v podman >/dev/null 2>&1; then engine=podman
    elif command -v buildah >/dev/null 2>&1; then engine=buildah
    else die "neither podman nor buildah is installed (apt-get install podman)"
    fi
fi
storage=""
[ -n "${STORAGE_DRIVER:-}" ] && storage="--storage-driver=$STORAGE_DRIVER"

ctx=$(mktemp -d)
trap 'rm -rf "$ctx"' EXIT
cp "$bin" "$ctx/tolldns-miner"
cp "$here/container.toml" "$ctx/config.toml"
mkdir "$ctx/data"
say "building $image with $engine"
case $engine in
    podman) podman $storage build --network=none --pull=never -t "$image" -f "$here/Containerfile" "$ctx" ;;
    buildah) buildah $storage bud --network=none --pull-never -t "$image" -f "$here/Containerfile" "$ctx" ;;
    *) die "unknown ENGINE=$engine" ;;
esac

[ "$engine" = podman ] || { say "image built; running it needs podman"; exit 0; }

# The smoke run stays on loopback: its upstream is a closed loopback port, and its query (ANY)
# is answered by the edge itself (RFC 8482), so nothing leaves the host.
cat > "$ctx/smoke.toml" <<'TOML'
data_dir = "/var/lib/tolldns"
upstreams = ["127.0.0.1:25399"]
[listen]
udp = "127.0.0.1:25353"
tcp = "127.0.0.1:25353"
dot = "127.0.0.1:28853"
doh = "127.0.0.1:28443"
[receipts]
window_secs = 2
close_grace_ms = 200
[api]
listen = "127.0.0.1:29153"
TOML
name=tolldns-miner-smoke-$$
# The smoke run asks for rlimits the calling shell already has (a runtime that raises them
# needs CAP_SYS_RESOURCE), and uses RUNTIME (default: runc when installed; crun refuses hosts
# with hybrid cgroup v1/v2 mounts).
runtime=${RUNTIME:-}
if [ -z "$runtime" ] && command -v runc >/dev/null 2>&1; then runtime=runc; fi
# shellcheck disable=SC3045 # ulimit -H is in dash, bash and busybox sh
limits="--ulimit nofile=$(ulimit -Hn):$(ulimit -Hn) --ulimit nproc=4096:4096"
say "running $image${runtime:+ (runtime $runtime)}"
podman $storage ${runtime:+--runtime "$runtime"} run -d --name "$name" --network=host $limits \
    -v "$ctx/smoke.toml:/etc/tolldns/smoke.toml:ro,Z" \
    "$image" run --config /etc/tolldns/smoke.toml >/dev/null
cleanup() { podman $storage rm -f -v -t 20 "$name" >/dev/null 2>&1 || true; rm -rf "$ctx"; }
trap cleanup EXIT
sleep 2
answer=$(kdig @127.0.0.1 -p 25353 example.test ANY +timeout=5 +retry=1 || true)
printf '%s\n' "$answer" | grep -q 'status: NOERROR' || { printf '%s\n' "$answer" >&2; podman logs "$name" >&2 || true; die "no DNS answer from the container"; }
printf '%s\n' "$answer" | grep -q 'HINFO' || { printf '%s\n' "$answer" >&2; die "the ANY answer is not the RFC 8482 HINFO"; }
say "DNS answer: $(printf '%s\n' "$answer" | grep 'status: ')"
health=$(curl -fsS http://127.0.0.1:29153/healthz) || die "/healthz failed"
say "healthz: $health"
podman $storage ${runtime:+--runtime "$runtime"} kill --signal TERM "$name" >/dev/null
podman $storage ${runtime:+--runtime "$runtime"} wait "$name" >/dev/null 2>&1 || true
logs=$(podman $storage logs "$name" 2>&1 || true)
printf '%s\n' "$logs" | grep -q 'batch signed' && say "last window signed on SIGTERM"
say "OK"
