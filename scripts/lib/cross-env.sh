# shellcheck shell=bash
# The cross toolchain shared by scripts/cross-build and scripts/cross-ffi (sourced, not run).
# See docs/DEVICES.md ("The toolchain").
#
# Everything comes from the Debian archive, PyPI and crates.io and is unpacked into a tools
# directory (nothing is installed system-wide, rustup stays untouched):
#   - rustc from Debian's `rustc-web` with the matching standard library sources
#     (`rust-web-src`), so the standard library is built for the target (-Zbuild-std);
#   - zig (PyPI `ziglang`) as C compiler and linker, through cargo-zigbuild (PyPI); zig brings
#     musl, its crt files and libunwind for every target;
#   - qemu-user-static (Debian), to run the results on this machine.
#
# The sourcing script defines `die MESSAGE` (print and exit) and `log MESSAGE` first.
#
# Provides:
#   cross_tools                 the tools directory (TOLLDNS_CROSS_HOME)
#   cross_target TARGET         sets the per-target variables below; returns 1 for an
#                               unsupported TARGET
#     cross_qemu                the qemu-user binary name (qemu-aarch64-static, ...)
#     cross_exe_rustflags       extra code generation flags for executables of TARGET
#     cross_zig_cc_args         (array) the target arguments of `zig cc` for C code of TARGET,
#                               the same that cargo-zigbuild uses for the Rust link
#   cross_setup                 sets up the tools directory (once) and exports RUSTC, RUSTDOC,
#                               LD_LIBRARY_PATH, PATH and RUSTC_BOOTSTRAP for the build
#   cross_rustflags TARGET FLAGS...  exports CARGO_TARGET_<TRIPLE>_RUSTFLAGS: the flags every
#                               target needs, then FLAGS
#   cross_zig_cc ARGS...        runs zig's C compiler (through cargo-zigbuild) with ARGS
#   cross_qemu_path             the full path of cross_qemu

cross_tools=${TOLLDNS_CROSS_HOME:-$HOME/.cache/tolldns-cross}
cross_deb_root=$cross_tools/deb-root
cross_venv=$cross_tools/venv
cross_qemu_root=$cross_tools/qemu

# Read by the sourcing scripts.
# shellcheck disable=SC2034
cross_qemu=""
# shellcheck disable=SC2034
cross_exe_rustflags=""
# shellcheck disable=SC2034
cross_zig_cc_args=()
# The release-small opt-level of the target's binaries (empty: the profile's "s").
# shellcheck disable=SC2034
cross_opt_level=""

# Per-target settings.
# mipsel: qemu-mipsel 7.2 crashes at start in static-PIE binaries; a non-PIE static executable
# runs (and is what OpenWrt ships anyway). Libraries stay position-independent. Its binaries
# are built with opt-level "z": routers of that class have 16 MB of flash, and "z" keeps the
# router miner under 6,000,000 bytes (5.67 MB against 6.11 MB with "s").
# The zig targets and CPU flags are cargo-zigbuild's for the same Rust target.
# shellcheck disable=SC2034
cross_target() {
  case "$1" in
    aarch64-unknown-linux-musl)
      cross_qemu=qemu-aarch64-static
      cross_exe_rustflags=""
      cross_zig_cc_args=(-target aarch64-linux-musl)
      ;;
    armv7-unknown-linux-musleabihf)
      cross_qemu=qemu-arm-static
      cross_exe_rustflags=""
      cross_zig_cc_args=(-mcpu=generic+v7a+vfp3-d32+thumb2-neon -target arm-linux-musleabihf)
      ;;
    mipsel-unknown-linux-musl)
      cross_qemu=qemu-mipsel-static
      cross_exe_rustflags="-C relocation-model=static"
      cross_zig_cc_args=(-target mipsel-linux-musleabi)
      cross_opt_level=z
      ;;
    *) return 1 ;;
  esac
}

cross_qemu_path() {
  echo "$cross_qemu_root/usr/bin/$cross_qemu"
}

# `link-self-contained=no`: rustc would otherwise pass its own crt1.o/crti.o, which a toolchain
# without rustup's target packages does not have; zig supplies musl's.
cross_rustflags() {
  local target=$1
  shift
  local target_env
  target_env=$(echo "$target" | tr 'a-z-' 'A-Z_')
  export "CARGO_TARGET_${target_env}_RUSTFLAGS=-C link-self-contained=no${*:+ $*}"
}

cross_zig_cc() {
  CARGO_ZIGBUILD_ZIG_COMMAND=$cross_venv/bin/python3 CARGO_ZIGBUILD_ZIG_COMMAND_ARGS='-m ziglang' \
    "$cross_venv/bin/cargo-zigbuild" zig cc -- "$@"
}

_cross_apt_download() {
  # apt-get download writes into the current directory; the sandbox warning is noise.
  apt-get download "$@" 2>&1 | grep -v '^W: Download is performed unsandboxed' || true
}

_cross_apt_ensure_lists() {
  if [ -z "$(apt-cache policy rustc-web 2>/dev/null | awk '/Candidate:/ && $2 != "(none)" {print $2}')" ]; then
    if [ "${TOLLDNS_CROSS_SKIP_APT_UPDATE:-0}" = 1 ]; then
      die "apt knows no rustc-web package; run 'apt-get update' (Debian 12 with bookworm-security)"
    fi
    log "apt knows no rustc-web package: running apt-get update"
    apt-get update -qq || die "apt-get update failed (run it as root, once)"
  fi
}

_cross_setup_rustc() {
  local rustc=$cross_deb_root/usr/bin/rustc
  if [ -x "$rustc" ] && [ -d "$cross_deb_root/usr/lib/rustlib/src/rust/library" ]; then
    return
  fi
  command -v apt-get >/dev/null || die "apt-get not found: a Debian 12 (bookworm) host is needed"
  _cross_apt_ensure_lists
  local version
  version=${RUSTC_WEB_VERSION:-$(apt-cache policy rustc-web | awk '/Candidate:/ {print $2}')}
  if [ -z "$version" ] || [ "$version" = "(none)" ]; then
    die "no rustc-web candidate in apt"
  fi
  local minor llvm
  minor=$(echo "$version" | cut -d. -f2)
  llvm=$(apt-cache show "libstd-rust-web-1.$minor=$version" | awk '/^Depends:/' |
    grep -o 'libllvm[0-9]*' | head -n1)
  [ -n "$llvm" ] || die "cannot find the LLVM runtime that rustc-web $version depends on"
  log "Debian rustc-web $version with $llvm -> $cross_deb_root"
  local debs=$cross_tools/debs/rustc-web-$version
  mkdir -p "$debs" "$cross_deb_root"
  (
    cd "$debs" || exit 1
    _cross_apt_download "rustc-web=$version" "libstd-rust-web-1.$minor=$version" \
      "libstd-rust-web-dev=$version" "rust-web-src=$version" "$llvm"
  )
  local n=0 deb
  for deb in "$debs"/*.deb; do
    [ -e "$deb" ] || continue
    dpkg -x "$deb" "$cross_deb_root"
    n=$((n + 1))
  done
  [ "$n" -ge 5 ] || die "apt-get download fetched $n of 5 packages into $debs"
  [ -x "$rustc" ] || die "no rustc in $cross_deb_root after unpacking"
  [ -d "$cross_deb_root/usr/lib/rustlib/src/rust/library" ] || die "rust-web-src did not unpack"
  rm -rf "$debs"
}

_cross_setup_zig() {
  if [ -x "$cross_venv/bin/cargo-zigbuild" ] && "$cross_venv/bin/python" -m ziglang version >/dev/null 2>&1; then
    return
  fi
  command -v python3 >/dev/null || die "python3 not found"
  log "zig and cargo-zigbuild from PyPI -> $cross_venv"
  python3 -m venv "$cross_venv" || die "python3 -m venv failed (Debian: apt-get install python3-venv)"
  local zig=ziglang zigbuild=cargo-zigbuild
  [ -z "${ZIGLANG_VERSION:-}" ] || zig="ziglang==$ZIGLANG_VERSION"
  [ -z "${CARGO_ZIGBUILD_VERSION:-}" ] || zigbuild="cargo-zigbuild==$CARGO_ZIGBUILD_VERSION"
  "$cross_venv/bin/pip" install --quiet --disable-pip-version-check "$zig" "$zigbuild"
}

_cross_setup_qemu() {
  if [ -x "$cross_qemu_root/usr/bin/qemu-aarch64-static" ]; then
    return
  fi
  command -v apt-get >/dev/null || die "apt-get not found: a Debian 12 (bookworm) host is needed"
  _cross_apt_ensure_lists
  log "qemu-user-static from Debian -> $cross_qemu_root"
  local debs=$cross_tools/debs/qemu
  mkdir -p "$debs" "$cross_qemu_root"
  (
    cd "$debs" || exit 1
    _cross_apt_download qemu-user-static
  )
  local deb found=""
  for deb in "$debs"/qemu-user-static_*.deb; do
    [ -e "$deb" ] || continue
    dpkg -x "$deb" "$cross_qemu_root"
    found=$deb
  done
  [ -n "$found" ] || die "apt-get download qemu-user-static fetched nothing"
  rm -rf "$debs"
}

cross_setup() {
  mkdir -p "$cross_tools"
  _cross_setup_rustc
  _cross_setup_zig
  _cross_setup_qemu

  export RUSTC=$cross_deb_root/usr/bin/rustc
  export RUSTDOC=$cross_deb_root/usr/bin/rustdoc
  export LD_LIBRARY_PATH=$cross_deb_root/usr/lib/x86_64-linux-gnu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
  export PATH=$cross_venv/bin:$PATH
  # -Zbuild-std on a release compiler.
  export RUSTC_BOOTSTRAP=1

  log "$("$RUSTC" --version), zig $("$cross_venv/bin/python" -m ziglang version), $(cargo-zigbuild --version)"
  log "qemu: $cross_qemu_root/usr/bin"
}
