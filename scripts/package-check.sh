#!/usr/bin/env bash
# Checks that the Debian package of the gateway (gateway/Cargo.toml [package.metadata.deb])
# builds for the host and holds what it must: the binary, the systemd unit, the configuration
# files as conffiles, and maintainer scripts with the user creation and the systemd fragments.
# The packaged binary then validates the packaged configuration.
#
#   scripts/package-check.sh            quick check (seconds): packages the debug binary
#   scripts/package-check.sh --release  the real package: `cargo deb -p gateway` (release
#                                       build, several minutes on 2 cores), left in
#                                       <target>/debian/ with its -dbgsym .ddeb
#
# Why the quick check packages the debug binary: cargo-deb has no metadata-only mode; it
# always packages a built binary, and it refuses `target/debug` asset paths and deprecates
# `--profile dev`. A release build only for this check would cost minutes of CI time while
# proving nothing about the packaging that the debug binary does not (same assets, unit,
# scripts, conffiles and shared-library dependencies). So the check stages the debug binary
# as `release/mqtt-sn-gateway` in a throw-away CARGO_TARGET_DIR and runs
# `cargo deb --no-build` there: the workspace's own target/release is never touched, and a
# stale release binary can never be packaged by accident. The debug binary is used as it is
# when it exists (CI's `cargo test --workspace` has built it; rebuilding it with
# `cargo build -p gateway` alone would recompile crates whose features differ). Stripping
# replaces the dbgsym split there, and compression is --fast.
#
# Needs cargo-deb (installed with `cargo install cargo-deb --locked` when missing, ~4 min on
# 2 cores) and dpkg-dev (dpkg-shlibdeps computes the libc dependency; apt-get installs it when
# missing, with root or sudo).
set -euo pipefail
cd "$(dirname "$0")/.."
start=$SECONDS

mode=quick
case "${1:-}" in
  "") ;;
  --release) mode=release ;;
  -h|--help) sed -n '2,9p' "$0"; exit 0 ;;
  *) echo "usage: $0 [--release]" >&2; exit 2 ;;
esac

CARGO_DEB_VERSION="${CARGO_DEB_VERSION:-3.8.0}"
pkg=mqtt-sn-gateway

sudo_if_needed() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

fail() { echo "package-check: FAIL: $*" >&2; exit 1; }

if ! cargo deb --version >/dev/null 2>&1; then
  echo "installing cargo-deb $CARGO_DEB_VERSION"
  cargo install cargo-deb --locked --version "$CARGO_DEB_VERSION"
fi
if ! command -v dpkg-shlibdeps >/dev/null; then
  echo "installing dpkg-dev (dpkg-shlibdeps)"
  sudo_if_needed apt-get update -qq
  sudo_if_needed env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dpkg-dev
fi
echo "cargo-deb: $(cargo deb --version)"

target_dir=$(cargo metadata --format-version 1 --no-deps \
  | grep -o '"target_directory":"[^"]*"' | cut -d'"' -f4)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

if [ "$mode" = release ]; then
  cargo deb -p gateway
  deb=$(ls -t "$target_dir/debian/${pkg}_"*"_$(dpkg --print-architecture).deb" | head -1)
else
  bin="$target_dir/debug/$pkg"
  if [ ! -x "$bin" ]; then
    echo "no debug binary yet: cargo build -p gateway --bin $pkg"
    cargo build -p gateway --bin "$pkg"
  fi
  mkdir -p "$work/target/release" "$work/out"
  cp "$bin" "$work/target/release/$pkg"
  CARGO_TARGET_DIR="$work/target" cargo deb -p gateway --no-build --fast \
    --no-dbgsym --no-separate-debug-symbols --strip --output "$work/out"
  deb=$(ls "$work/out/${pkg}_"*.deb)
fi
echo "package: $deb"

# --- control data
info=$(dpkg-deb -I "$deb")
echo "$info"
field() { dpkg-deb -f "$deb" "$1"; }
[ "$(field Package)" = "$pkg" ] || fail "Package is '$(field Package)'"
[ "$(field Architecture)" = "$(dpkg --print-architecture)" ] || fail "Architecture is '$(field Architecture)'"
[ "$(field Section)" = net ] || fail "Section is '$(field Section)'"
field Depends | grep -q 'libc6 (>= ' || fail "Depends lacks libc6 (was \$auto resolved?): $(field Depends)"
field Depends | grep -qw adduser || fail "Depends lacks adduser: $(field Depends)"

# --- files
contents=$(dpkg-deb -c "$deb")
echo "$contents"
has() { # MODE-PREFIX PATH
  echo "$contents" | grep -qE "^$1 +0/0 .* \./$2\$" || fail "missing or wrong mode: $2"
}
has '-rwxr-xr-x' "usr/bin/$pkg"
has '-rw-r--r--' "usr/lib/systemd/system/$pkg.service"
has '-rw-r-----' "etc/$pkg/gateway.toml"
has '-rw-r--r--' "usr/share/$pkg/clients.toml"
has '-rw-r--r--' "usr/share/doc/$pkg/README.md"
has '-rw-r--r--' "usr/share/doc/$pkg/copyright"

# --- control scripts and conffiles
ctl="$work/control"
dpkg-deb -e "$deb" "$ctl"
for f in "/etc/$pkg/gateway.toml"; do
  grep -qx "$f" "$ctl/conffiles" || fail "$f is not a conffile"
done
grep -q 'adduser --system' "$ctl/postinst" || fail "postinst does not create the user"
grep -q "deb-systemd-helper enable $pkg.service" "$ctl/postinst" || fail "postinst does not enable the unit"
grep -q "deb-systemd-invoke stop $pkg.service" "$ctl/prerm" || fail "prerm does not stop the unit"
grep -q "deb-systemd-helper purge $pkg.service" "$ctl/postrm" || fail "postrm does not purge the unit"
grep -q 'rm -rf /var/lib/mqtt-sn-gateway' "$ctl/postrm" || fail "postrm purge keeps the state"
if grep -l '#DEBHELPER#' "$ctl"/*; then fail "unreplaced debhelper token"; fi
for s in postinst prerm postrm; do sh -n "$ctl/$s" || fail "$s: shell syntax"; done

# --- payload: the unit is the one in packaging/, the binary accepts the shipped configuration
root="$work/root"
dpkg-deb -x "$deb" "$root"
cmp "$root/usr/lib/systemd/system/$pkg.service" "packaging/systemd/$pkg.service" \
  || fail "packaged unit differs from packaging/systemd/$pkg.service"
"$root/usr/bin/$pkg" check-config --config "$root/etc/$pkg/gateway.toml" >/dev/null \
  || fail "the packaged binary rejects the packaged gateway.toml"

echo "package-check: OK ($mode, $((SECONDS - start)) s): $(basename "$deb")"
