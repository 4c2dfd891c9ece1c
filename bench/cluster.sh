#!/usr/bin/env bash
# Local mode against master + 2 worker processes on 127.0.0.1, for softmax
# and MLP 784-128-10 on Fashion-MNIST, plus the raw TCP ceiling for the bytes
# a step moves. Usage: bench/cluster.sh [BUILD_DIR] [EPOCHS] [BATCH ...]
set -euo pipefail
build="${1:-build}"
epochs="${2:-2}"
shift $(( $# > 2 ? 2 : $# ))
batches=("${@:-128}")
node="$build/apps/dml-node"
tcp="$build/bench/dml-bench-tcp-copy"
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

echo "| model | batch | params | local 2w samples/s | 2 worker processes samples/s | ratio | bytes/step | exchange MB/s | raw TCP MB/s (same message size) |"
echo "|---|---|---|---|---|---|---|---|---|"
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
  "$node" --role local --workers 2 "${flags[@]}" --metrics-out "$dir/local.jsonl"
  rm -f "$dir/port"
  "$node" --role master --listen 127.0.0.1:0 --port-file "$dir/port" \
    --workers 2 "${flags[@]}" --metrics-out "$dir/dist.jsonl" &
  pids+=($!)
  master=$!
  for _ in $(seq 300); do [ -s "$dir/port" ] && break; sleep 0.1; done
  port=$(cat "$dir/port")
  "$node" --role worker --master "127.0.0.1:$port" --quiet & pids+=($!)
  "$node" --role worker --master "127.0.0.1:$port" --quiet & pids+=($!)
  wait "$master"
  wait
  local_rate=$(rate "$dir/local.jsonl")
  dist_rate=$(rate "$dir/dist.jsonl")
  # Per step: parameters down to and a gradient up from each worker.
  bytes=$((2 * 2 * params * 4))
  n_steps=$(steps "$dir/dist.jsonl")
  secs=$(train_s "$dir/dist.jsonl")
  xfer=$(awk -v b="$bytes" -v n="$n_steps" -v s="$secs" 'BEGIN { printf "%.0f", b * n / s / 1e6 }')
  raw=$("$tcp" $((params * 4)) 2000 | awk '{ print $8 }')
  ratio=$(awk -v a="$dist_rate" -v b="$local_rate" 'BEGIN { printf "%.2f", a / b }')
  printf '| %s | %d | %d | %.0f | %.0f | %s | %d | %s | %s |\n' "$model" "$batch" "$params" \
    "$local_rate" "$dist_rate" "$ratio" "$bytes" "$xfer" "$raw"
done
done
