#!/bin/sh
# The benchmarks' command lines: --help prints the usage and exits 0; a bad
# argument is one line on stderr naming it, exit 2, before any work starts.
# Usage: bench_cli.test.sh SOURCE_DIR BUILD_DIR
set -eu

src=$1
build=$2
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT

fail() {
  echo "FAIL: $*" >&2
  exit 1
}

# expect CODE LINE COMMAND...: COMMAND exits CODE and prints exactly LINE,
# on stdout for exit 0, else on stderr (and nothing on the other).
expect() {
  want_code=$1
  want=$2
  shift 2
  code=0
  "$@" >"$dir/out" 2>"$dir/err" || code=$?
  [ "$code" -eq "$want_code" ] ||
    fail "$*: exit $code, not $want_code ($(cat "$dir/err"))"
  if [ "$want_code" -eq 0 ]; then said=out other=err; else said=err other=out; fi
  [ "$(cat "$dir/$said")" = "$want" ] ||
    fail "$*: printed '$(cat "$dir/$said")', not '$want'"
  [ ! -s "$dir/$other" ] || fail "$*: also printed '$(cat "$dir/$other")'"
}

tp=$build/bench/dml-bench-throughput
tp_usage="usage: dml-bench-throughput [--epochs N] [--models softmax|mlp] [--batches B,B,...] [--repeat R]"
expect 0 "$tp_usage" "$tp" --help
expect 2 "error: --batches: '128,,256' is no list of batch sizes ($tp_usage)" \
  "$tp" --batches 128,,256
expect 2 "error: --epochs: '0' is no number from 1 to 1000000 ($tp_usage)" \
  "$tp" --epochs 0
expect 2 "error: unknown flag '--batch' ($tp_usage)" "$tp" --batch 128
expect 2 "error: --run: unknown configuration '3w' (loop, 1w, 2w, 4w, 2t or 2p)" \
  "$tp" --run 3w

tcp=$build/bench/dml-bench-tcp-copy
tcp_usage="usage: dml-bench-tcp-copy BYTES [ROUNDS]"
expect 0 "$tcp_usage" "$tcp" -h
expect 2 "error: no BYTES ($tcp_usage)" "$tcp"
expect 2 "error: BYTES: '4k' is no number from 1 to 1073741824 ($tcp_usage)" \
  "$tcp" 4k
expect 2 "error: ROUNDS: '0' is no number from 1 to 1000000 ($tcp_usage)" \
  "$tcp" 4096 0

cl_usage="usage: [REPEAT=N] bench/cluster.sh [BUILD_DIR] [EPOCHS] [BATCH ...]"
expect 0 "$cl_usage" bash "$src/bench/cluster.sh" --help
expect 2 "error: $dir/none/apps/dml-node: no such program; build first (cmake --build BUILD_DIR) or name the build directory ($cl_usage)" \
  bash "$src/bench/cluster.sh" "$dir/none"
expect 2 "error: BATCH: '128,512' is no number from 1 to 1000000 ($cl_usage)" \
  bash "$src/bench/cluster.sh" "$build" 1 128,512
expect 2 "error: REPEAT: '-1' is no number from 1 to 1000000 ($cl_usage)" \
  env REPEAT=-1 bash "$src/bench/cluster.sh" "$build" 1

rc_usage="usage: bench/recovery.sh [BUILD_DIR] [REPEATS]"
expect 0 "$rc_usage" bash "$src/bench/recovery.sh" -h
expect 2 "error: REPEATS: 'three' is no number from 1 to 1000000 ($rc_usage)" \
  bash "$src/bench/recovery.sh" "$build" three
echo "ok"
