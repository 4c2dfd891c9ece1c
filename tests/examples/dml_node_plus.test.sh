#!/bin/sh
# End-to-end test of dml-node-plus: trains the example model "svm" on a tiny
# synthetic CSV with 2 workers, logs the epochs with the example observer
# "csv-logger", and checks the CSV and the final metrics record. Then checks
# that a bad csv-logger path fails with one line naming it.
# The same across processes: a master with the observer, 2 worker processes
# and an aggregator process spawned through the registry by
# --aggregator-type; an unknown aggregator type fails with one line.
# Usage: dml_node_plus.test.sh PATH/TO/dml-node-plus
set -eu

node=$1
dir=$(mktemp -d)
pids=""
# Every process started here is stopped by its pid on every way out.
cleanup() {
  for p in $pids; do kill -KILL "$p" 2>/dev/null || true; done
  rm -rf "$dir"
}
trap cleanup EXIT
trap 'exit 1' TERM INT

fail() {
  echo "FAIL: $*" >&2
  exit 1
}

# Three well separated classes in 4 features: class c sits at 3 on feature c,
# plus uniform noise in [-1, 1] on every feature.
make_csv() { # rows seed file
  awk -v rows="$1" -v seed="$2" 'BEGIN {
    srand(seed)
    print "f0,f1,f2,f3,label"
    for (r = 0; r < rows; ++r) {
      c = r % 3
      line = ""
      for (f = 0; f < 4; ++f)
        line = line sprintf("%.4f,", (f == c ? 3 : 0) + 2 * rand() - 1)
      print line c
    }
  }' >"$3"
}
make_csv 300 1 "$dir/train.csv"
make_csv 150 2 "$dir/test.csv"

epochs=3
"$node" --role local --model svm --workers 2 --epochs $epochs \
  --batch-size 32 --lr 0.05 --l2 0.001 \
  --train "$dir/train.csv" --test "$dir/test.csv" \
  --observer "csv-logger:$dir/log.csv" --metrics-out "$dir/m.jsonl" \
  --quiet >"$dir/out.txt" 2>&1 || {
  cat "$dir/out.txt" >&2
  fail "dml-node-plus exited with $?"
}
[ ! -s "$dir/out.txt" ] || fail "--quiet printed: $(cat "$dir/out.txt")"

# The CSV: the header, then one row per epoch, numbered 1..epochs.
header="epoch,steps,samples,train_loss,test_loss,test_accuracy,test_mse,wall_s"
[ "$(head -n 1 "$dir/log.csv")" = "$header" ] ||
  fail "bad CSV header: $(head -n 1 "$dir/log.csv")"
rows=$(($(wc -l <"$dir/log.csv") - 1))
[ "$rows" -eq "$epochs" ] || fail "expected $epochs CSV rows, found $rows"
awk -F, -v epochs=$epochs 'NR > 1 {
  if ($1 != NR - 1 || $3 != 300 * (NR - 1) || NF != 8 || $6 == "" || $7 != "")
    bad = 1
} END { exit bad }' "$dir/log.csv" || fail "bad CSV rows: $(cat "$dir/log.csv")"

# The final metrics record: accuracy on the test set.
final=$(tail -n 1 "$dir/m.jsonl")
case $final in
  *'"event":"final"'*) ;;
  *) fail "last metrics record is not final: $final" ;;
esac
acc=$(printf '%s\n' "$final" |
  sed -n 's/.*"test_accuracy":\([-0-9.eE+]*\).*/\1/p')
[ -n "$acc" ] || fail "no test_accuracy in: $final"
awk -v a="$acc" 'BEGIN { exit !(a >= 0.95) }' ||
  fail "test_accuracy $acc below 0.95"
# The CSV agrees with the metrics file on the last epoch's accuracy.
last=$(tail -n 1 "$dir/log.csv" | cut -d, -f6)
awk -v a="$acc" -v b="$last" 'BEGIN { exit !(a == b) }' ||
  fail "CSV accuracy $last differs from the final record's $acc"

# A path that cannot be created: one line naming it, exit code 1.
status=0
"$node" --role local --model svm --train "$dir/train.csv" --quiet \
  --observer "csv-logger:$dir/missing/log.csv" >"$dir/err.txt" 2>&1 ||
  status=$?
[ "$status" -eq 1 ] || fail "bad observer path: exit $status, expected 1"
[ "$(wc -l <"$dir/err.txt")" -eq 1 ] ||
  fail "bad observer path: expected one line, got: $(cat "$dir/err.txt")"
grep -q "$dir/missing/log.csv: cannot create" "$dir/err.txt" ||
  fail "bad observer path: $(cat "$dir/err.txt")"

# Distributed: the observer runs in the master process, the aggregator
# process spawns its aggregator by registered name. Each process has a
# deadline of its own.
"$node" --role master --listen 127.0.0.1:0 --port-file "$dir/port" \
  --model svm --workers 2 --aggregators 1 --epochs $epochs --batch-size 32 \
  --lr 0.05 --l2 0.001 --train "$dir/train.csv" --test "$dir/test.csv" \
  --observer "csv-logger:$dir/dist.csv" --metrics-out "$dir/dist.jsonl" \
  --quiet >"$dir/master.txt" 2>&1 &
master=$!
pids="$master"
for _ in $(seq 300); do [ -s "$dir/port" ] && break; sleep 0.1; done
[ -s "$dir/port" ] || fail "the master wrote no port file: $(cat "$dir/master.txt")"
at="127.0.0.1:$(cat "$dir/port")"
status=0
timeout 30 "$node" --role aggregator --master "$at" --aggregator-type nope \
  --quiet >"$dir/bad-agg.txt" 2>&1 || status=$?
[ "$status" -eq 1 ] || fail "unknown --aggregator-type: exit $status, expected 1"
[ "$(wc -l <"$dir/bad-agg.txt")" -eq 1 ] &&
  grep -q "nope" "$dir/bad-agg.txt" ||
  fail "unknown --aggregator-type: $(cat "$dir/bad-agg.txt")"
timeout 60 "$node" --role aggregator --master "$at" \
  --aggregator-type aggregator --quiet >"$dir/agg.txt" 2>&1 &
pids="$pids $!"
for r in 0 1; do
  timeout 60 "$node" --role worker --master "$at" --quiet \
    >"$dir/worker$r.txt" 2>&1 &
  pids="$pids $!"
done
for p in $pids; do
  wait "$p" || fail "process $p exited $?: $(cat "$dir"/*.txt)"
done
pids=""
[ -f "$dir/dist.csv" ] || fail "the master's observer wrote no CSV"
rows=$(($(wc -l <"$dir/dist.csv") - 1))
[ "$rows" -eq "$epochs" ] ||
  fail "master's observer: expected $epochs CSV rows, found $rows"
# Same flags, seed and layout: the same model as local mode would train.
want=$("$node" --role local --model svm --workers 2 --aggregators 1 \
  --epochs $epochs --batch-size 32 --lr 0.05 --l2 0.001 \
  --train "$dir/train.csv" --quiet --metrics-out "$dir/same.jsonl" &&
  sed -n 's/.*"params_sha256":"\([0-9a-f]*\)".*/\1/p' "$dir/same.jsonl")
got=$(sed -n 's/.*"params_sha256":"\([0-9a-f]*\)".*/\1/p' "$dir/dist.jsonl" |
  tail -n 1)
[ -n "$got" ] && [ "$got" = "$want" ] ||
  fail "distributed params_sha256 '$got' differs from local '$want'"

echo "ok: $rows epoch rows, test_accuracy $acc"
