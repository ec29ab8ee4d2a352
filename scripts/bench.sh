#!/usr/bin/env bash
# Gateway benchmarks (issue 8): builds the release gateway and the sn-bench load generator, then
# runs the scenarios, one result line each (see BENCHMARKS.md for what the fields mean).
#
#   scripts/bench.sh                 every scenario, 3 runs each (median printed), in both
#                                    upstream modes (MODES="transparent aggregating")
#   scripts/bench.sh throughput --qos 0 --motes 1000 --rate 50000    one scenario, sn-bench args
#   scripts/bench.sh --gateway-bin OTHER/mqtt-sn-gateway --secs 20 connect-flood
#                                    the same harness against another gateway build
#
# Needs mosquitto (scripts/test.sh installs it). Run on an otherwise idle machine.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -q -p gateway --bin mqtt-sn-gateway
cargo build --release -q -p sn-tests --bin sn-bench
bench="${CARGO_TARGET_DIR:-target}/release/sn-bench"
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

if [ $# -gt 0 ]; then
  exec "$bench" "$@"
fi

runs="${RUNS:-3}"
secs="${SECS:-5}"
for mode in ${MODES:-transparent aggregating}; do
  b=("$bench" --upstream-mode "$mode")
  set -x
  "${b[@]}" --runs "$runs" --secs "$secs" throughput --qos -1 --motes 10 --rate 100000
  "${b[@]}" --runs "$runs" --secs "$secs" throughput --qos -1 --motes 1000 --rate 100000
  "${b[@]}" --runs "$runs" --secs "$secs" throughput --qos 0 --motes 10 --rate 100000
  "${b[@]}" --runs "$runs" --secs "$secs" throughput --qos 0 --motes 1000 --rate 100000
  "${b[@]}" --secs 3 sweep --motes 10 --rates 10000,20000,30000,40000,50000,60000,80000,100000
  "${b[@]}" --runs "$runs" --secs "$secs" reliable --qos 1 --motes 100
  "${b[@]}" --runs "$runs" --secs "$secs" reliable --qos 2 --motes 100
  "${b[@]}" --runs "$runs" --secs "$secs" throughput --qos 0 --motes 100 --rate 1000
  "${b[@]}" --runs "$runs" --secs "$secs" throughput --qos 0 --motes 100 --rate 10000
  "${b[@]}" --runs "$runs" connect-storm --motes 1000
  "${b[@]}" --runs "$runs" connect-storm --motes 10000
  "${b[@]}" memory --motes 10000 --buffered 10
  "${b[@]}" --runs "$runs" fan-out --motes 1000
  "${b[@]}" --runs "$runs" --secs 20 connect-flood --flood-rate 50000 --motes 10 --publish-rate 2
  { set +x; } 2>/dev/null
done
