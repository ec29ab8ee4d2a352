#!/usr/bin/env bash
# Runs the whole test suite on a fresh Debian machine with the Rust toolchain: installs what the
# tests need (mosquitto, openssl, python3-venv, chromium; the Python MQTT-SN client in a venv), then
# `cargo test --workspace`. Needs root or sudo for apt-get the first time.
set -euo pipefail
cd "$(dirname "$0")/.."

sudo_if_needed() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

packages=(mosquitto openssl python3 python3-venv socat chromium iproute2)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}"
  sudo_if_needed apt-get update -qq
  sudo_if_needed env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
fi

# The interop tests drive an MQTT-SN client nobody here wrote (PyPI mqtt-sn-12), in a venv
# because Debian's system Python refuses pip installs.
venv=.ci/venv
if ! "$venv/bin/python" -c "import mqttsn12.client.MqttSnClient" 2>/dev/null; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q mqtt-sn-12==1.0.9
fi
export SN_PYTHON="$PWD/$venv/bin/python"
export SN_REQUIRE_PY_INTEROP=1
# The status page is tested in headless Chromium; a missing browser fails instead of skipping.
export SN_REQUIRE_CHROMIUM=1
# PROPTEST_CASES, when set, is every property test's case count (fewer for a quick run, more
# for a soak); unset, each property runs its own default (proptest's 256, or the larger count
# the property asks for).

cargo test --workspace "$@"
