#!/usr/bin/env bash
# Runs dml-node as a user would: trains a tiny CSV job in local mode, saves
# and evaluates the model, and checks that bad input ends in one-line errors
# with non-zero exit codes.
set -euo pipefail
node="$1"
dir="$(mktemp -d)"
trap 'rm -rf "$dir"' EXIT

fail() { echo "FAIL: $*" >&2; exit 1; }

# Two separable classes.
{
  echo "x1,x2,label"
  for i in $(seq 0 199); do
    if [ $((i % 2)) -eq 0 ]; then echo "$((i % 7)).5,-$((i % 5)),0"
    else echo "-$((i % 7)).5,$((i % 5)).25,1"; fi
  done
} > "$dir/train.csv"
cp "$dir/train.csv" "$dir/test.csv"

"$node" --role local --train "$dir/train.csv" --test "$dir/test.csv" \
  --model logistic --epochs 5 --batch-size 16 --workers 2 --aggregators 1 \
  --model-out "$dir/m.dml" --metrics-out "$dir/m.jsonl" 2> "$dir/stderr"
[ "$(wc -l < "$dir/m.jsonl")" -eq 6 ] || fail "expected 6 metrics lines"
grep -q '"event":"final"' "$dir/m.jsonl" || fail "no final record"
grep -q '"samples":1000' "$dir/m.jsonl" || fail "samples != 5 x 200"
grep -q '^epoch 5/5' "$dir/stderr" || fail "no plain epoch line when piped"
acc=$(tail -n 1 "$dir/m.jsonl" | sed 's/.*"test_accuracy":\([0-9.]*\).*/\1/')
awk -v a="$acc" 'BEGIN { exit !(a >= 0.95) }' || fail "accuracy $acc < 0.95"

"$node" --role eval --model-in "$dir/m.dml" --test "$dir/test.csv" \
  --predictions-out "$dir/p.txt" --quiet
[ "$(wc -l < "$dir/p.txt")" -eq 200 ] || fail "expected 200 predictions"

"$node" --role=local --train="$dir/train.csv" --model=logistic --epochs=1 \
  --quiet 2> "$dir/quiet"
[ ! -s "$dir/quiet" ] || fail "--quiet printed something"

expect_error() { # expected-exit pattern args...
  local code="$1" pattern="$2"; shift 2
  set +e
  "$node" "$@" > "$dir/out" 2> "$dir/err"
  local rc=$?
  set -e
  [ "$rc" -eq "$code" ] || fail "exit $rc, expected $code for: $*"
  [ "$(wc -l < "$dir/err")" -eq 1 ] || fail "not one line for: $* ($(cat "$dir/err"))"
  grep -q -- "$pattern" "$dir/err" || fail "'$pattern' not in: $(cat "$dir/err")"
}
expect_error 2 "--epochs" --role local --train "$dir/train.csv" --epochs x
expect_error 2 "--bogus" --role local --train "$dir/train.csv" --bogus 1
expect_error 1 "nope.csv: cannot open" --role local --train "$dir/nope.csv"
expect_error 1 "unknown model 'tree'" --role local --train "$dir/train.csv" --model tree
printf 'x1,x2,label\n1,2,0\n3,4\n' > "$dir/ragged.csv"
expect_error 1 "ragged.csv:3" --role local --train "$dir/ragged.csv"
head -c 100 "$dir/m.dml" > "$dir/cut.dml"
expect_error 1 "cut.dml: truncated" --role eval --model-in "$dir/cut.dml" --test "$dir/test.csv"
expect_error 1 "--resume $dir/none: no such folder" --role local --resume "$dir/none"
mkdir -p "$dir/empty"
expect_error 1 "no valid checkpoint (the folder holds none)" --role local --resume "$dir/empty"
expect_error 2 "--inject 'crash:rank=1': unknown fault 'crash'" --role local --train "$dir/train.csv" --inject crash:rank=1
# Outputs are checked before training, so that nothing trained is lost.
expect_error 1 "^dml-node: --model-out $dir/none/m.dml: folder $dir/none: No such file or directory$" \
  --role local --train "$dir/train.csv" --model-out "$dir/none/m.dml"
mkfifo "$dir/fifo"
expect_error 1 "^dml-node: --model-out $dir/fifo: exists and is not a regular file$" \
  --role local --train "$dir/train.csv" --model-out "$dir/fifo"
expect_error 1 "^dml-node: --checkpoint-dir $dir/train.csv/ck: cannot create" \
  --role local --train "$dir/train.csv" --checkpoint-dir "$dir/train.csv/ck"
expect_error 1 "^dml-node: $dir: is a folder, not a file$" \
  --role eval --model-in "$dir" --test "$dir/test.csv"
expect_error 1 "^dml-node: --resume $dir/train.csv: is a file, not a folder of checkpoints$" \
  --role local --resume "$dir/train.csv"
expect_error 1 "^dml-node: --data $dir/none.csv: cannot read it (missing, unreadable or not a file)$" \
  --role worker --master 127.0.0.1:1 --data "$dir/none.csv" --connect-timeout 600000
# Unknown actor names are found before any data is read or any connection
# is tried (nothing listens on port 1).
expect_error 1 "^dml-node: unknown aggregator 'nope' (known: aggregator)$" \
  --role aggregator --master 127.0.0.1:1 --aggregator-type nope \
  --connect-timeout 600000
# What is fine stays fine: a link to a regular file as --model-out, a
# checkpoint folder that holds --model-out, switches set to false.
: > "$dir/real.dml"
ln -s "$dir/real.dml" "$dir/link.dml"
"$node" --role local --train "$dir/train.csv" --model logistic --epochs 1 \
  --nesterov=false --checkpoint-dir "$dir/ck2" --model-out "$dir/ck2/m.dml" \
  --quiet
[ -s "$dir/ck2/m.dml" ] || fail "no model in the checkpoint folder"
"$node" --role local --train "$dir/train.csv" --model logistic --epochs 1 \
  --model-out "$dir/link.dml" --quiet || fail "a link as --model-out"
[ -L "$dir/link.dml" ] && [ -s "$dir/real.dml" ] ||
  fail "--model-out replaced the link instead of writing its target"
printf 'standardize = false\nquiet = true\n' > "$dir/shared.ini"
"$node" --role eval --model-in "$dir/m.dml" --test "$dir/test.csv" \
  --config "$dir/shared.ini" || fail "standardize = false refused for eval"
# A metrics record that cannot be written: one line, exit 1.
if [ -c /dev/full ]; then
  expect_error 1 "^dml-node: error: --metrics-out /dev/full: write failed: No space left on device$" \
    --role local --train "$dir/train.csv" --model logistic --epochs 1 \
    --quiet --metrics-out /dev/full
fi
# A step too large for this machine's memory is refused before training:
# a hidden layer of memory/1000 units has few parameters for its size, but
# 200 rows of its activations need about 2.4 times the memory.
units=$(awk '/^MemTotal:/ { printf "%d", $2 * 1024 / 1000 }' /proc/meminfo)
expect_error 1 "^dml-node: --batch-size 200: a step of this model needs .* GiB of activations, more than fit in this machine's memory$" \
  --role local --train "$dir/train.csv" --model mlp --hidden "$units" \
  --batch-size 200
# Outputs that are inputs or each other.
expect_error 1 "^dml-node: --model-out $dir/train.csv: is also --train$" \
  --role local --train "$dir/train.csv" --model-out "$dir/train.csv"
expect_error 1 "^dml-node: --predictions-out $dir/m.dml: is also --model-in$" \
  --role eval --model-in "$dir/m.dml" --test "$dir/test.csv" \
  --predictions-out "$dir/m.dml"
# Settings the data or the model cannot have.
printf '1 1:0.5\n0 2:1.5\n' > "$dir/t.svm"
expect_error 1 "^dml-node: --label-column: only for CSV data, and $dir/t.svm is LIBSVM$" \
  --role local --train "$dir/t.svm" --label-column y
printf 'x,label\n1,0\n2,1\n3,2\n' > "$dir/three.csv"
expect_error 1 "^dml-node: $dir/three.csv: has 3 classes; 'logistic' is binary (labels 0 and 1), use 'softmax'$" \
  --role local --train "$dir/three.csv" --model logistic
printf 'epochs = one\n' > "$dir/bad.ini"
expect_error 2 "^dml-node: --config $dir/bad.ini: --epochs: 'one' is no whole number from 0 to 1000000$" \
  --role local --train "$dir/train.csv" --config "$dir/bad.ini"

# Checkpoints, then resuming from one: the same parameters as the whole run.
# The data by a relative path: the checkpoint still resumes from another
# folder.
(cd "$dir" && "$node" --role local --train train.csv --model logistic \
  --epochs 3 --batch-size 16 --workers 2 --checkpoint-dir ck \
  --checkpoint-every 7 --metrics-out whole.jsonl --quiet)
n=$(ls "$dir/ck" | wc -l) # written in the background: fewer if steps outrun it
[ "$n" -ge 1 ] && [ "$n" -le 3 ] || fail "expected 1 to 3 checkpoints: $(ls "$dir/ck")"
# A job flag that differs from the checkpoint's job is refused, not ignored.
expect_error 1 "--epochs: 9 differs from the job of $dir/ck/ckpt-.*(3); a resumed job keeps its settings" \
  --role local --resume "$dir/ck" --epochs 9
# Other rows under the same name: the checkpoint's cursors would point into
# other data, so resuming is refused.
cp "$dir/train.csv" "$dir/train.bak"
{ head -n 1 "$dir/train.bak"; tail -n +2 "$dir/train.bak" | tac; } > "$dir/train.csv"
expect_error 1 "^dml-node: --resume: $dir/train.csv is not the data the checkpoint was trained on (fingerprint [0-9a-f]*, the checkpoint's [0-9a-f]*)$" \
  --role local --resume "$dir/ck" --quiet
mv "$dir/train.bak" "$dir/train.csv"
mkdir "$dir/elsewhere"
(cd "$dir/elsewhere" && "$node" --role local --resume ../ck \
  --metrics-out ../resumed.jsonl --epochs 3 --train ../train.csv \
  2> ../resume.err)
grep -q "resuming from ../ck/ckpt-" "$dir/resume.err" || fail "no resume line: $(cat "$dir/resume.err")"
sha() { grep -o '"params_sha256":"[0-9a-f]*"' "$1"; }
[ "$(sha "$dir/whole.jsonl")" = "$(sha "$dir/resumed.jsonl")" ] || fail "resumed params differ"
grep -q '"samples":600,' "$dir/resumed.jsonl" || fail "resumed samples: $(tail -n 1 "$dir/resumed.jsonl")"
echo "dml-node smoke: ok"
