#!/usr/bin/env bash
# Recovery times on 127.0.0.1 with Fashion-MNIST (MLP 784-64-10, Adam):
#  - kill -9 of one of 3 worker processes (rows shipped, and each worker
#    with its own copy): the master's recovery_s, from the loss to the next
#    completed step;
#  - SIGSTOP of a worker: from the stop to the next completed step (the
#    step deadline, then the recovery);
#  - kill -9 of the master, restarted at once with --resume on the same
#    port: from the kill to the resumed job's first completed step;
#  - the cost of a checkpoint, from local mode with and without
#    --checkpoint-every 1.
# Usage: bench/recovery.sh [BUILD_DIR] [REPEATS]
set -euo pipefail
usage="usage: bench/recovery.sh [BUILD_DIR] [REPEATS]"
. "$(dirname "$0")/args.sh"
help_if_asked "$@"
[ $# -le 2 ] || usage_error "too many arguments"
build="${1:-build}"
repeats="${2:-3}"
node="$build/apps/dml-node"
need_program "$node"
need_count REPEATS "$repeats"
data=/usr/share/datasets/fashion-mnist
train="$data/train-images-idx3-ubyte.gz"
dir="$(mktemp -d)"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$dir"
}
trap cleanup EXIT

flags=(--train "$train" --model mlp --hidden 64 --optimizer adam --lr 0.001
       --batch-size 128 --seed 3)
now() { date +%s.%N; }
wait_file() { for _ in $(seq 1200); do [ -s "$1" ] && return; sleep 0.01; done; echo "timeout: $1" >&2; exit 1; }
wait_line() { # FILE PATTERN: polls every 5 ms, prints the time it appeared
  for _ in $(seq 12000); do
    if grep -q "$2" "$1" 2>/dev/null; then now; return; fi
    sleep 0.005
  done
  echo "timeout waiting for '$2' in $1" >&2; exit 1
}

# worker_fault MODE SIGNAL: prints seconds from the signal to the next
# completed step (MODE: shipped or data).
worker_fault() {
  local mode="$1" sig="$2" extra=()
  [ "$mode" = data ] && extra=(--data "$train")
  rm -f "$dir/port" "$dir/m.jsonl" "$dir/master.log"
  "$node" --role master --listen 127.0.0.1:0 --port-file "$dir/port" \
    --workers 3 "${flags[@]}" --epochs 3 --metrics-out "$dir/m.jsonl" \
    2> "$dir/master.log" &
  local master=$!; pids+=("$master")
  wait_file "$dir/port"
  local port w=()
  port=$(cat "$dir/port")
  for r in 0 1 2; do
    "$node" --role worker --master "127.0.0.1:$port" "${extra[@]}" --quiet \
      --reconnect-timeout 1000 2> /dev/null &
    w+=($!); pids+=($!)
  done
  wait_file "$dir/m.jsonl"
  local t0 t1
  t0=$(now)
  kill "-$sig" "${w[1]}"
  t1=$(wait_line "$dir/master.log" "recovered:")
  wait "$master"
  kill -CONT "${w[1]}" 2> /dev/null || true
  for p in "${w[@]}"; do wait "$p" 2> /dev/null || true; done
  local inside
  inside=$(grep -o '"recovery_s":\[[0-9.e+-]*' "$dir/m.jsonl" | cut -d[ -f2)
  echo "$(echo "$t1 - $t0" | bc) $inside"
}

master_restart() {
  local port=$((20000 + RANDOM % 30000))
  rm -rf "$dir/ck" "$dir/m1.jsonl" "$dir/again.log"
  "$node" --role master --listen "127.0.0.1:$port" --workers 2 "${flags[@]}" \
    --epochs 3 --checkpoint-dir "$dir/ck" --checkpoint-every 50 \
    --metrics-out "$dir/m1.jsonl" --quiet &
  local master=$!; pids+=("$master")
  local w=()
  for r in 0 1; do
    "$node" --role worker --master "127.0.0.1:$port" --quiet & w+=($!); pids+=($!)
  done
  wait_file "$dir/m1.jsonl"
  local t0 t1
  t0=$(now)
  kill -KILL "$master"; wait "$master" 2> /dev/null || true
  "$node" --role master --listen "127.0.0.1:$port" --workers 2 \
    --resume "$dir/ck" 2> "$dir/again.log" &
  local again=$!; pids+=("$again")
  t1=$(wait_line "$dir/again.log" "first step after resuming")
  wait "$again"
  for p in "${w[@]}"; do wait "$p" 2> /dev/null || true; done
  echo "$t1 - $t0" | bc
}

echo "| fault | seconds to the next completed step (each run) | recovery_s reported |"
echo "|---|---|---|"
for mode in shipped data; do
  runs=""; inside=""
  for _ in $(seq "$repeats"); do
    read -r total rec < <(worker_fault "$mode" KILL)
    runs="$runs $(printf '%.3f' "$total")"; inside="$inside $(printf '%.3f' "$rec")"
  done
  echo "| kill -9 worker (rows $mode) |$runs |$inside |"
done
runs=""; inside=""
for _ in $(seq "$repeats"); do
  read -r total rec < <(worker_fault shipped STOP)
  runs="$runs $(printf '%.3f' "$total")"; inside="$inside $(printf '%.3f' "$rec")"
done
echo "| SIGSTOP worker (rows shipped; deadline 1 s) |$runs |$inside |"
runs=""
for _ in $(seq "$repeats"); do
  runs="$runs $(printf '%.3f' "$(master_restart)")"
done
echo "| kill -9 master, restart with --resume (2 workers rejoin) |$runs | - |"

# Checkpoint cost: local mode, 1 epoch, without and with a checkpoint after
# every step.
rate() { grep -o '"samples_per_s":[0-9.e+]*' "$1" | tail -n 1 | cut -d: -f2; }
steps() { grep -o '"steps":[0-9]*' "$1" | tail -n 1 | cut -d: -f2; }
"$node" --role local --workers 2 "${flags[@]}" --epochs 1 --quiet \
  --metrics-out "$dir/plain.jsonl"
"$node" --role local --workers 2 "${flags[@]}" --epochs 1 --quiet \
  --checkpoint-dir "$dir/ckc" --checkpoint-every 1 --metrics-out "$dir/ck.jsonl"
plain=$(rate "$dir/plain.jsonl"); with=$(rate "$dir/ck.jsonl"); n=$(steps "$dir/ck.jsonl")
size=$(stat -c %s "$dir"/ckc/ckpt-*.dmlc | head -n 1)
per=$(echo "scale=6; 60000 / $with - 60000 / $plain" | bc)
echo
echo "Checkpoint ($size bytes, MLP 784-64-10 with Adam state): local 2w $(printf '%.0f' "$plain") samples/s without, $(printf '%.0f' "$with") with one after each of $n steps: $(echo "scale=3; 1000 * $per / $n" | bc) ms per checkpoint."
