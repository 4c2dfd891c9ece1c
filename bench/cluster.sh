#!/usr/bin/env bash
# Local mode against master + 2 worker processes on 127.0.0.1, for softmax
# and MLP 784-128-10 on Fashion-MNIST: steps on tensor links through shared
# memory (the default on one host), on tensor links through their sockets
# (--tensor-link tcp, as between hosts) and in CAF messages (--tensor-link
# off), plus the raw TCP ceiling for the bytes a step moves. Each rate is the
# median of REPEAT runs (default 3), local and distributed runs alternating.
# The "bare processes" column is the same step in three processes with no
# runtime (`dml-bench-throughput --run 2p`): what the machine gives any
# implementation of it, and so the bound for the processes' ratio.
#
# Usage: [REPEAT=N] bench/cluster.sh [BUILD_DIR] [EPOCHS] [BATCH ...]
set -euo pipefail
usage="usage: [REPEAT=N] bench/cluster.sh [BUILD_DIR] [EPOCHS] [BATCH ...]"
. "$(dirname "$0")/args.sh"
help_if_asked "$@"
build="${1:-build}"
epochs="${2:-2}"
shift $(( $# > 2 ? 2 : $# ))
batches=("${@:-128}")
repeat="${REPEAT:-3}"
node="$build/apps/dml-node"
tcp="$build/bench/dml-bench-tcp-copy"
bare="$build/bench/dml-bench-throughput"
need_program "$node"
need_program "$tcp"
need_program "$bare"
need_count EPOCHS "$epochs"
need_count REPEAT "$repeat"
for b in "${batches[@]}"; do need_count BATCH "$b"; done
data=/usr/share/datasets/fashion-mnist
dir="$(mktemp -d)"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
  rm -rf "$dir"
}
trap cleanup EXIT

rate() { grep -o '"samples_per_s":[0-9.e+]*' "$1" | tail -n 1 | cut -d: -f2; }
steps() { grep -o '"steps":[0-9]*' "$1" | tail -n 1 | cut -d: -f2; }
train_s() { grep -o '"train_s":[0-9.e+]*' "$1" | tail -n 1 | cut -d: -f2; }
median() { sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { print a / b }'; }

# dist OUT LINK FLAGS...: master + 2 worker processes; metrics to OUT.
dist() {
  local out="$1" link="$2"
  shift 2
  rm -f "$dir/port"
  "$node" --role master --listen 127.0.0.1:0 --port-file "$dir/port" \
    --workers 2 --tensor-link "$link" "$@" --metrics-out "$out" &
  local master=$!
  pids+=("$master")
  for _ in $(seq 300); do [ -s "$dir/port" ] && break; sleep 0.1; done
  local port
  port=$(cat "$dir/port")
  "$node" --role worker --master "127.0.0.1:$port" --quiet & pids+=($!)
  "$node" --role worker --master "127.0.0.1:$port" --quiet & pids+=($!)
  wait "$master"
  wait
}

echo "| model | batch | local 2w samples/s | 2 worker processes, links, shared memory | ratio | links, TCP | ratio | CAF messages | ratio | 2 bare processes | ratio | bytes/step | exchange MB/s (links, TCP) | raw TCP MB/s (same message size) |"
echo "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
for batch in "${batches[@]}"; do
  for model in softmax mlp; do
    extra=(--model softmax --lr 0.1)
    params=7850
    if [ "$model" = mlp ]; then
      extra=(--model mlp --hidden 128 --optimizer adam --lr 0.001)
      params=101770
    fi
    flags=(--train "$data/train-images-idx3-ubyte.gz" --batch-size "$batch"
           --epochs "$epochs" --quiet "${extra[@]}")
    : > "$dir/local.rates"; : > "$dir/shm.rates"; : > "$dir/link.rates"
    : > "$dir/caf.rates"; : > "$dir/bare.rates"
    : > "$dir/xfer"
    # Per step: parameters down to and a gradient up from each worker.
    bytes=$((2 * 2 * params * 4))
    for _ in $(seq "$repeat"); do
      "$node" --role local --workers 2 "${flags[@]}" \
        --metrics-out "$dir/local.jsonl"
      rate "$dir/local.jsonl" >> "$dir/local.rates"
      dist "$dir/shm.jsonl" on "${flags[@]}"
      rate "$dir/shm.jsonl" >> "$dir/shm.rates"
      dist "$dir/link.jsonl" tcp "${flags[@]}"
      rate "$dir/link.jsonl" >> "$dir/link.rates"
      awk -v b="$bytes" -v n="$(steps "$dir/link.jsonl")" \
        -v s="$(train_s "$dir/link.jsonl")" \
        'BEGIN { printf "%.0f\n", b * n / s / 1e6 }' >> "$dir/xfer"
      dist "$dir/caf.jsonl" off "${flags[@]}"
      rate "$dir/caf.jsonl" >> "$dir/caf.rates"
      "$bare" --run 2p --models "$model" --batches "$batch" --epochs "$epochs" \
        | cut -d' ' -f1 >> "$dir/bare.rates"
    done
    local_rate=$(median < "$dir/local.rates")
    shm_rate=$(median < "$dir/shm.rates")
    link_rate=$(median < "$dir/link.rates")
    caf_rate=$(median < "$dir/caf.rates")
    bare_rate=$(median < "$dir/bare.rates")
    xfer=$(median < "$dir/xfer")
    raw=$("$tcp" $((params * 4)) 2000 | awk '{ print $8 }')
    printf '| %s | %d | %.0f | %.0f | %.2f | %.0f | %.2f | %.0f | %.2f | %.0f | %.2f | %d | %s | %s |\n' \
      "$model" "$batch" "$local_rate" \
      "$shm_rate" "$(ratio "$shm_rate" "$local_rate")" \
      "$link_rate" "$(ratio "$link_rate" "$local_rate")" \
      "$caf_rate" "$(ratio "$caf_rate" "$local_rate")" \
      "$bare_rate" "$(ratio "$bare_rate" "$local_rate")" \
      "$bytes" "$xfer" "$raw"
  done
done
