#!/usr/bin/env bash
# Multi-process tests of distributed mode on 127.0.0.1.
#
# Usage: cluster.sh DML_NODE CASE
#
# Every process is started by this script, bound to 127.0.0.1, and stopped by
# its pid on every way out (trap); each case has a watchdog. Fashion-MNIST
# (Debian's dataset-fashion-mnist) is the data.
set -euo pipefail
node="$1"
case_name="$2"
data=/usr/share/datasets/fashion-mnist
train="$data/train-images-idx3-ubyte.gz"
test_set="$data/t10k-images-idx3-ubyte.gz"
dir="$(mktemp -d)"
pids=()
watchdog=""

cleanup() {
  kill -TERM "$watchdog" 2>/dev/null || true
  for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$dir"
}
trap cleanup EXIT
trap 'exit 1' TERM INT
# Watchdog: the whole case must end within 150 s.
( trap 'kill "$sleeper" 2>/dev/null; exit 0' TERM
  sleep 150 &
  sleeper=$!
  wait "$sleeper"
  echo "cluster.sh: watchdog fired in $case_name; logs:" >&2
  for f in "$dir"/*.log; do echo "== $f" >&2; tail -n 5 "$f" >&2; done
  kill -TERM $$ ) &
watchdog=$!

fail() { echo "FAIL ($case_name): $*" >&2; exit 1; }

# start NAME ARGS...: starts dml-node in the background, logs to NAME.log,
# records its pid in the variable NAME_pid.
start() {
  local name="$1"; shift
  "$node" "$@" > "$dir/$name.log" 2>&1 &
  local pid=$!
  pids+=("$pid")
  printf -v "${name}_pid" '%s' "$pid"
}

# finish NAME [EXPECTED]: waits for NAME's process (bounded by the watchdog)
# and checks its exit code (default 0).
finish() {
  local name="$1" expected="${2:-0}" pid_var="${1}_pid" rc=0
  wait "${!pid_var}" || rc=$?
  [ "$rc" -eq "$expected" ] || {
    cat "$dir"/*.log >&2
    fail "$name exited $rc, expected $expected"
  }
}

# wait_port: waits for the master's port file and prints the port.
wait_port() {
  for _ in $(seq 300); do
    if [ -s "$dir/port" ]; then cat "$dir/port"; return; fi
    sleep 0.1
  done
  cat "$dir"/*.log >&2
  fail "the master wrote no port file"
}

# A port nobody listens on now (for members started before their master).
free_port() {
  local p
  for _ in $(seq 50); do
    p=$((20000 + RANDOM % 30000))
    if ! grep -qi ":$(printf '%04X' "$p") " /proc/net/tcp 2>/dev/null; then
      echo "$p"; return
    fi
  done
  fail "no free port found"
}

sha_of() { grep -o '"params_sha256":"[0-9a-f]*"' "$1" | tail -n 1; }

flags=(--train "$train" --test "$test_set" --model softmax --lr 0.1
       --batch-size 128 --epochs 1 --seed 3 --quiet)

# The same without --quiet (to read the master's notes).
loud_flags=()
for f in "${flags[@]}"; do [ "$f" = --quiet ] || loud_flags+=("$f"); done

# A job long enough to disturb after its first epoch (about 1 s each).
slow_flags=(--train "$train" --test "$test_set" --model mlp --hidden 64
            --optimizer adam --lr 0.001 --batch-size 128 --epochs 3 --seed 3)
flags3=(--train "$train" --test "$test_set" --model softmax --lr 0.1
        --batch-size 128 --epochs 3 --seed 3 --quiet)

# wait_record FILE: waits until FILE holds a metrics record (an epoch ended).
wait_record() {
  for _ in $(seq 1200); do
    [ -s "$1" ] && return
    sleep 0.05
  done
  cat "$dir"/*.log >&2
  fail "no epoch record in $1"
}

# slow_job WORKERS [WORKER FLAGS...]: starts a master of the slow job and
# WORKERS worker processes (w0, w1, ...), sets `port`, and waits until the
# first epoch ended.
slow_job() {
  local n="$1" r
  shift
  start master --role master --listen 127.0.0.1:0 --port-file "$dir/port" \
    --workers "$n" "${slow_flags[@]}" --metrics-out "$dir/dist.jsonl"
  port=$(wait_port)
  for ((r = 0; r < n; ++r)); do
    start "w$r" --role worker --master "127.0.0.1:$port" --quiet "$@"
  done
  wait_record "$dir/dist.jsonl"
}

# check_faulted FILE SAMPLES WORKERS: the final record counts every row once
# per epoch, saw a fault, ended with WORKERS workers, and kept the accuracy
# of a fault-free run (0.85 for this job) within 0.02.
check_faulted() {
  grep -q "\"samples\":$2," "$1" || fail "samples != $2: $(tail -n 1 "$1")"
  grep -q '"faults":[1-9]' "$1" || fail "no fault counted: $(tail -n 1 "$1")"
  grep -Eq "\"workers\":$3[,}]" "$1" || fail "workers != $3: $(tail -n 1 "$1")"
  local acc
  acc=$(grep -o '"test_accuracy":[0-9.]*' "$1" | tail -n 1 | cut -d: -f2)
  awk -v a="$acc" 'BEGIN { exit !(a >= 0.83) }' \
    || fail "accuracy $acc below 0.83"
}

# local_reference WORKERS AGGREGATORS [FLAGS...]: the same job in one process.
local_reference() {
  "$node" --role local --workers "$1" --aggregators "$2" "${flags[@]}" \
    --model-out "$dir/local.dml" --metrics-out "$dir/local.jsonl" "${@:3}"
}

case "$case_name" in
  bit_identity_2w|bit_identity_2w_tcp|bit_identity_2w_caf)
    # Master first; one worker gets shipped rows, one loads its own copy.
    # Steps travel on tensor links through shared memory, through their
    # sockets (_tcp), or (_caf) in CAF messages.
    # Over shared memory an MLP of 50,890 parameters with Adam: in one
    # process with two threads its updates run split on both, in the master
    # process (one thread) in one piece; the bits must not differ.
    link=on
    how="shared memory"
    [ "$case_name" = bit_identity_2w_tcp ] && link=tcp && how=TCP
    [ "$case_name" = bit_identity_2w_caf ] && link=off
    if [ "$link" = on ]; then
      flags=(--train "$train" --test "$test_set" --model mlp --hidden 64
             --optimizer adam --lr 0.001 --batch-size 128 --epochs 1 --seed 3
             --quiet)
      loud_flags=("${flags[@]:0:${#flags[@]}-1}")
    fi
    start master --role master --listen 127.0.0.1:0 --port-file "$dir/port" \
      --workers 2 "${loud_flags[@]}" --model-out "$dir/dist.dml" \
      --metrics-out "$dir/dist.jsonl" --tensor-link "$link"
    port=$(wait_port)
    start w0 --role worker --master "127.0.0.1:$port" --quiet
    start w1 --role worker --master "127.0.0.1:$port" --data "$train" --quiet
    finish master; finish w0; finish w1
    links=$(grep -c "tensor link from 127.0.0.1:[0-9]* ($how)" \
      "$dir/master.log" || true)
    if [ "$link" != off ]; then
      [ "$links" -eq 2 ] || fail "$links tensor links ($how), expected 2: $(cat "$dir/master.log")"
    else
      [ "$links" -eq 0 ] || fail "tensor links despite --tensor-link off"
    fi
    local_reference 2 0 --threads 2
    [ -n "$(sha_of "$dir/dist.jsonl")" ] || fail "no final record"
    [ "$(sha_of "$dir/dist.jsonl")" = "$(sha_of "$dir/local.jsonl")" ] \
      || fail "params differ: $(sha_of "$dir/dist.jsonl") vs $(sha_of "$dir/local.jsonl")"
    cmp -s "$dir/dist.dml" "$dir/local.dml" || fail "model files differ"
    grep -q '"samples":60000' "$dir/dist.jsonl" || fail "samples != 60000"
    ;;
  bit_identity_4w2a)
    # Members first (they wait for the master), the master last.
    port=$(free_port)
    for r in 0 1 2 3; do
      start "w$r" --role worker --master "127.0.0.1:$port" --quiet
    done
    start a0 --role aggregator --master "127.0.0.1:$port" --quiet
    start a1 --role aggregator --master "127.0.0.1:$port" --quiet
    sleep 0.5
    start master --role master --listen "127.0.0.1:$port" --workers 4 \
      --aggregators 2 "${flags[@]}" --model-out "$dir/dist.dml" \
      --metrics-out "$dir/dist.jsonl"
    finish master
    for m in w0 w1 w2 w3 a0 a1; do finish "$m"; done
    local_reference 4 2
    [ "$(sha_of "$dir/dist.jsonl")" = "$(sha_of "$dir/local.jsonl")" ] \
      || fail "params differ: $(sha_of "$dir/dist.jsonl") vs $(sha_of "$dir/local.jsonl")"
    cmp -s "$dir/dist.dml" "$dir/local.dml" || fail "model files differ"
    ;;
  link_port_taken)
    # The tensor link's port is the master's own CAF port: refused at once.
    start m1 --role master --listen 127.0.0.1:0 --port-file "$dir/port" \
      --workers 1 "${flags[@]}"
    port=$(wait_port)
    rc=0
    "$node" --role master --listen 127.0.0.1:0 --link-port "$port" \
      --workers 1 "${flags[@]}" > "$dir/m2.log" 2>&1 || rc=$?
    [ "$rc" -ne 0 ] || fail "a master started on a taken --link-port"
    grep -q "tensor link: cannot listen on 127.0.0.1:$port: Address already in use" \
      "$dir/m2.log" || fail "unclear error: $(cat "$dir/m2.log")"
    [ "$(wc -l < "$dir/m2.log")" -eq 1 ] || fail "more than one line: $(cat "$dir/m2.log")"
    kill -TERM "$m1_pid"
    wait "$m1_pid" || true
    ;;
  fingerprint_mismatch)
    start master --role master --listen 127.0.0.1:0 --port-file "$dir/port" \
      --workers 1 "${flags[@]}" --metrics-out "$dir/dist.jsonl"
    port=$(wait_port)
    # The test set is not the training set: refused on both sides.
    start bad --role worker --master "127.0.0.1:$port" --data "$test_set"
    finish bad 1
    grep -q "data fingerprint mismatch" "$dir/bad.log" \
      || fail "worker did not name the mismatch: $(cat "$dir/bad.log")"
    grep -q "refused worker rank 0: data fingerprint mismatch" \
      "$dir/master.log" || fail "master did not log the refusal"
    # The rank is free again: a worker with the right copy completes the job.
    start good --role worker --master "127.0.0.1:$port" --data "$train"
    finish master; finish good
    grep -q '"event":"final"' "$dir/dist.jsonl" || fail "no final record"
    ;;
  protocol_mismatch)
    start master --role master --listen 127.0.0.1:0 --port-file "$dir/port" \
      --workers 1 "${flags[@]}" --model-out "$dir/never.dml"
    port=$(wait_port)
    start old --role worker --master "127.0.0.1:$port" --app-id dml-protocol-0
    finish old 1
    grep -q "another dml protocol version" "$dir/old.log" \
      || fail "no version error: $(cat "$dir/old.log")"
    kill -TERM "$master_pid"
    finish master 1
    # Stopped before training: it says so, and writes no model.
    grep -q "interrupted before training; no model to save" "$dir/master.log" \
      || fail "master: $(cat "$dir/master.log")"
    [ ! -e "$dir/never.dml" ] || fail "a model was written before training"
    ;;
  no_master)
    port=$(free_port)
    start lonely --role worker --master "127.0.0.1:$port" \
      --connect-timeout 1500
    finish lonely 1
    grep -q "no master answered within 1500 ms" "$dir/lonely.log" \
      || fail "no timeout error: $(cat "$dir/lonely.log")"
    ;;
  sigterm_master)
    # A longer job, stopped by SIGTERM after its first epoch: the members
    # exit, the master saves the model and exits non-zero.
    start master --role master --listen 127.0.0.1:0 --port-file "$dir/port" \
      --workers 2 --train "$train" --model mlp --hidden 64 --epochs 50 \
      --model-out "$dir/stopped.dml" --metrics-out "$dir/dist.jsonl" --quiet
    port=$(wait_port)
    start w0 --role worker --master "127.0.0.1:$port" --quiet
    start w1 --role worker --master "127.0.0.1:$port" --quiet
    for _ in $(seq 600); do
      [ -s "$dir/dist.jsonl" ] && break
      sleep 0.1
    done
    kill -TERM "$master_pid"
    finish master 1
    grep -q "interrupted; model saved to $dir/stopped.dml" "$dir/master.log" \
      || fail "master: $(cat "$dir/master.log")"
    "$node" --role eval --model-in "$dir/stopped.dml" --test "$test_set" \
      --quiet || fail "the saved model does not load"
    # Members end on their own; none is left behind.
    finish w0 0; finish w1 0
    ;;
  kill9_worker)
    # kill -9 a worker process after the first epoch: its shards move to
    # the other two (rows shipped again), the job completes with every row
    # counted once per epoch.
    slow_job 3
    kill -KILL "$w1_pid"
    finish master
    finish w0; finish w2
    check_faulted "$dir/dist.jsonl" 180000 2
    grep -q "lost: down" "$dir/master.log" || fail "no loss logged"
    ;;
  sigstop_worker)
    # A frozen worker (SIGSTOP) misses the step deadline and is dropped;
    # woken up after the job, it finds itself fenced and exits.
    slow_job 3 --reconnect-timeout 2000
    kill -STOP "$w1_pid"
    finish master
    kill -CONT "$w1_pid"
    finish w0; finish w2
    wait "$w1_pid" || true # fenced or master gone: either way it ends
    check_faulted "$dir/dist.jsonl" 180000 2
    grep -q "no answer to step" "$dir/master.log" \
      || fail "no deadline miss logged: $(cat "$dir/master.log")"
    ;;
  late_joiner)
    # A third worker joins after the first epoch: it gets shards (rows
    # shipped) at a step boundary; then it dies and the job ends with two.
    slow_job 2
    start w2 --role worker --master "127.0.0.1:$port" --quiet
    # Once the joiner has its rows, kill it: its shards move back to the
    # workers that held them first, which must not be sent them again.
    for _ in $(seq 600); do
      grep -q "rows of adopted shards arrived at rank 2" "$dir/master.log" \
        && break
      sleep 0.05
    done
    grep -q "worker rank 2 joined the running job" "$dir/master.log" \
      || fail "no join logged: $(cat "$dir/master.log")"
    kill -KILL "$w2_pid"
    finish master
    finish w0; finish w1
    grep -q '"samples":180000,' "$dir/dist.jsonl" || fail "samples != 180000"
    grep -Eq '"workers":2[,}]' "$dir/dist.jsonl" || fail "not 2 workers at the end"
    grep -q '"faults":1,' "$dir/dist.jsonl" || fail "not one fault: $(tail -n 1 "$dir/dist.jsonl")"
    ;;
  link_cut)
    # A worker's tensor link is cut (its socket aborted with ss -K) while
    # both processes live on: the master loses the rank at once and its
    # shards move; the job completes with every row counted once per epoch.
    slow_job 2
    peer=$(grep -o 'worker rank 1: tensor link from 127.0.0.1:[0-9]*' \
             "$dir/master.log" | head -n 1 | sed 's/.*://')
    [ -n "$peer" ] || fail "no tensor link of rank 1 logged"
    if ! ss -K dst 127.0.0.1 dport = ":$peer" > "$dir/ss.log" 2>&1 \
        || ! grep -q ":$peer" "$dir/ss.log"; then
      echo "SKIP (link_cut): ss -K cannot abort sockets here" >&2
      exit 77
    fi
    finish master
    finish w0
    wait "$w1_pid" || true # stopped by the master, or left and rejoined
    grep -q '"samples":180000,' "$dir/dist.jsonl" \
      || fail "samples != 180000: $(tail -n 1 "$dir/dist.jsonl")"
    grep -q '"faults":[1-9]' "$dir/dist.jsonl" \
      || fail "no fault counted: $(tail -n 1 "$dir/dist.jsonl")"
    grep -q "worker rank 1 lost: down (tensor link to 127.0.0.1:$peer" \
      "$dir/master.log" || fail "no link loss logged: $(cat "$dir/master.log")"
    acc=$(grep -o '"test_accuracy":[0-9.]*' "$dir/dist.jsonl" | tail -n 1 | cut -d: -f2)
    awk -v a="$acc" 'BEGIN { exit !(a >= 0.83) }' || fail "accuracy $acc below 0.83"
    ;;
  kill_aggregator)
    # kill -9 the only aggregator: its workers report to the master.
    start master --role master --listen 127.0.0.1:0 --port-file "$dir/port" \
      --workers 2 --aggregators 1 "${slow_flags[@]}" \
      --metrics-out "$dir/dist.jsonl"
    port=$(wait_port)
    start a0 --role aggregator --master "127.0.0.1:$port" --quiet
    for r in 0 1; do
      start "w$r" --role worker --master "127.0.0.1:$port" --quiet
    done
    wait_record "$dir/dist.jsonl"
    kill -KILL "$a0_pid"
    finish master
    finish w0; finish w1
    check_faulted "$dir/dist.jsonl" 180000 2
    grep -q "aggregator 0 lost" "$dir/master.log" || fail "no loss logged"
    ;;
  kill9_master_resume)
    # kill -9 the master mid-job; a new master resumes from the newest
    # checkpoint on the same port; the workers rejoin by themselves. The
    # result is bit-identical to an uninterrupted run.
    port=$(free_port)
    start master --role master --listen "127.0.0.1:$port" --workers 2 \
      "${flags3[@]}" --checkpoint-dir "$dir/ck" --checkpoint-every 100 \
      --metrics-out "$dir/first.jsonl"
    for r in 0 1; do
      start "w$r" --role worker --master "127.0.0.1:$port" --quiet
    done
    wait_record "$dir/first.jsonl"
    for _ in $(seq 200); do
      ls "$dir/ck"/ckpt-*.dmlc > /dev/null 2>&1 && break
      sleep 0.05
    done
    kill -KILL "$master_pid"
    wait "$master_pid" || true
    start again --role master --listen "127.0.0.1:$port" --workers 2 \
      --resume "$dir/ck" --quiet --metrics-out "$dir/dist.jsonl" \
      --model-out "$dir/dist.dml"
    finish again
    finish w0; finish w1
    "$node" --role local --workers 2 "${flags3[@]}" \
      --metrics-out "$dir/local.jsonl" --model-out "$dir/local.dml"
    grep -q '"samples":180000' "$dir/dist.jsonl" || fail "samples != 180000"
    [ "$(sha_of "$dir/dist.jsonl")" = "$(sha_of "$dir/local.jsonl")" ] \
      || fail "params differ: $(sha_of "$dir/dist.jsonl") vs $(sha_of "$dir/local.jsonl")"
    cmp -s "$dir/dist.dml" "$dir/local.dml" || fail "model files differ"
    ;;
  *)
    fail "unknown case"
    ;;
esac
# No process of this case is left behind.
for p in "${pids[@]}"; do
  if kill -0 "$p" 2>/dev/null; then fail "process $p left behind"; fi
done
echo "cluster $case_name: ok"
