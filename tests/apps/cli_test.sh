#!/usr/bin/env bash
# The oar command line, end to end: a short train/eval/predict run, resume, stops on a signal
# and on a diverging loss, config editing, and every class of bad input the shell promises to
# report as one `error: FILE:LINE: KEY: ...` line with exit code 2 and nothing lost.
# Usage: cli_test.sh OAR_BINARY SOURCE_DIR
set -u
oar=$1
src=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
passed=0
failed=0
fail() { echo "FAIL: $*"; failed=$((failed + 1)); }
ok() { passed=$((passed + 1)); }

# expect_error NAME EXPECTED_EXIT REGEX -- command...: the command fails with that exit code,
# prints exactly one line on stderr, and the line matches REGEX (extended).
expect_error() {
  local name=$1 code=$2 regex=$3
  shift 4
  "$@" > "$tmp/out" 2> "$tmp/err"
  local rc=$?
  local lines
  lines=$(grep -c . "$tmp/err")
  if [ "$rc" -ne "$code" ]; then fail "$name: exit $rc, expected $code; stderr: $(cat "$tmp/err")"; return; fi
  if [ "$lines" -ne 1 ]; then fail "$name: $lines stderr lines, expected 1: $(cat "$tmp/err")"; return; fi
  if ! grep -Eq "$regex" "$tmp/err"; then fail "$name: '$(cat "$tmp/err")' does not match /$regex/"; return; fi
  ok
}

fm=/usr/share/datasets/fashion-mnist
if [ ! -f "$fm/train-images-idx3-ubyte.gz" ]; then
  echo "SKIP: dataset-fashion-mnist is not installed"
  exit 0
fi

# A small, fast config: 512 training images, a narrow network, a few steps.
cat > "$tmp/small.yaml" <<YAML
# a comment that must survive edits
_base_: $src/configs/vision/quickstart.yaml
model:
  width: 8      # narrow
data:
  batch_size: 64
  num_workers: 1
  train: {limit: 512}
  valid: {limit: 256}
  test: {limit: 256}
trainer:
  epochs: 2
  log_every: 4
  output_dir: $tmp/run
YAML

# --- a whole run
"$oar" train -c "$tmp/small.yaml" --plain > "$tmp/train.out" 2> "$tmp/train.err" || fail "train: $(tail -3 "$tmp/train.err")"
for f in config.yaml metrics.jsonl best/model.safetensors best/config.yaml best/state.json ckpt/step-16/state.json; do
  [ -f "$tmp/run/$f" ] && ok || fail "train did not write $f"
done
ls "$tmp/run" | grep -q '^events.out.tfevents' && ok || fail "no TensorBoard event file"
"$oar" eval -c "$tmp/run" --plain > "$tmp/eval.out" 2>&1 && ok || fail "eval: $(tail -3 "$tmp/eval.out")"
grep -q '^top1 ' "$tmp/eval.out" && ok || fail "eval printed no metrics table"
[ -f "$tmp/run/eval-test/metrics.json" ] && ok || fail "eval wrote no metrics.json"
"$oar" predict -c "$tmp/run" --plain > "$tmp/pred.out" 2>&1 && ok || fail "predict: $(tail -3 "$tmp/pred.out")"
[ "$(wc -l < "$tmp/run/predictions.jsonl")" -eq 16 ] && ok || fail "predictions.jsonl should hold 16 records"
"$oar" predict -c "$tmp/run" --input "$fm/t10k-images-idx3-ubyte.gz" -o data.infer.limit=3 --plain > /dev/null 2>&1 \
  && [ "$(wc -l < "$tmp/run/predictions.jsonl")" -eq 3 ] && ok || fail "predict --input"

# --- resume continues from the newest checkpoint to more epochs
"$oar" train -c "$tmp/small.yaml" -o trainer.epochs=3 --resume auto --plain > /dev/null 2> "$tmp/resume.err" \
  && grep -q "resuming from .*step-16" "$tmp/resume.err" && [ -f "$tmp/run/ckpt/step-24/state.json" ] \
  && ok || fail "resume: $(tail -3 "$tmp/resume.err")"

# --- SIGTERM writes a checkpoint and exits with 128+15
"$oar" train -c "$tmp/small.yaml" -o trainer.epochs=1000 --output "$tmp/sig" --plain > /dev/null 2> "$tmp/sig.err" &
pid=$!
for _ in $(seq 1 100); do grep -q "step 4/" "$tmp/sig.err" 2>/dev/null && break; sleep 0.1; done
kill -TERM $pid
wait $pid
rc=$?
[ $rc -eq 143 ] && ok || fail "SIGTERM: exit $rc, expected 143"
ls "$tmp/sig/ckpt" 2>/dev/null | grep -q '^step-' && ok || fail "SIGTERM left no checkpoint"
ls -a "$tmp/sig/ckpt" | grep -q '^\.tmp' && fail "SIGTERM left a temporary checkpoint" || ok

# --- a diverging loss stops naming the step, exit 3, keeps what was written
"$oar" train -c "$tmp/small.yaml" -o optimizer.lr=1e30 --output "$tmp/nan" --plain > /dev/null 2> "$tmp/nan.err"
rc=$?
[ $rc -eq 3 ] && grep -q "loss is .* at step" "$tmp/nan.err" && ok || fail "NaN: exit $rc: $(tail -2 "$tmp/nan.err")"

# --- config tools
"$oar" config show -c "$tmp/small.yaml" --origins > "$tmp/show" 2>&1 && grep -q "width: 8" "$tmp/show" && ok || fail "config show"
"$oar" config validate -c "$tmp/small.yaml" > /dev/null 2>&1 && ok || fail "config validate"
"$oar" config doc simple_cnn | grep -q "width" && ok || fail "config doc"
"$oar" config diff "$src/configs/vision/quickstart.yaml" "$tmp/small.yaml" | grep -q "model.width: 32 -> 8" && ok || fail "config diff"
"$oar" list models | grep -q simple_cnn && ok || fail "list models"
"$oar" version | grep -q "^oneDNN" && ok || fail "version"
"$oar" model summary -c "$tmp/small.yaml" | grep -q "^parameters:" && ok || fail "model summary"
cp "$tmp/small.yaml" "$tmp/edit.yaml"
"$oar" config set "$tmp/edit.yaml" trainer.epochs=5 > /dev/null 2>&1 && ok || fail "config set"
[ "$(diff "$tmp/small.yaml" "$tmp/edit.yaml" | grep -c '^[<>]')" -eq 2 ] && grep -q "# a comment that must survive" "$tmp/edit.yaml" \
  && ok || fail "config set changed more than one line: $(diff "$tmp/small.yaml" "$tmp/edit.yaml")"
cp "$tmp/edit.yaml" "$tmp/edit.before"
expect_error "config set out of range" 2 "^error: .*trainer.epochs" -- "$oar" config set "$tmp/edit.yaml" trainer.epochs=-1
cmp -s "$tmp/edit.yaml" "$tmp/edit.before" && ok || fail "a refused config set changed the file"

# --- bad input: one line, exit 2
printf 'model:\n  name: simple_cnn\n  width: [1, 2\n' > "$tmp/malformed.yaml"
expect_error "malformed YAML" 2 "^error: .*malformed.yaml:[0-9]+:[0-9]+: " -- "$oar" train -c "$tmp/malformed.yaml"
expect_error "unknown key from -o" 2 "^error: -o: model.widht: .*did you mean 'width'" -- "$oar" train -c "$tmp/small.yaml" -o model.widht=3
printf '_base_: %s\nmodel:\n  widht: 8\n' "$tmp/small.yaml" > "$tmp/typo.yaml"
expect_error "unknown key in file" 2 "^error: .*typo.yaml:3: model.widht: .*width" -- "$oar" config validate -c "$tmp/typo.yaml"
printf '_base_: %s\nmodel:\n  width: eight\n' "$tmp/small.yaml" > "$tmp/type.yaml"
expect_error "wrong type" 2 "^error: .*type.yaml:3: model.width: " -- "$oar" config validate -c "$tmp/type.yaml"
printf '_base_: %s\nmodel:\n  width: 0\n' "$tmp/small.yaml" > "$tmp/range.yaml"
expect_error "out of range" 2 "^error: .*range.yaml:3: model.width: " -- "$oar" config validate -c "$tmp/range.yaml"
printf 'model: {name: simple_cnn}\ndata:\n  name: idx\n  train: {labels: %s/train-labels-idx1-ubyte.gz}\n' "$fm" > "$tmp/required.yaml"
printf 'task: {name: image_classification}\n' >> "$tmp/required.yaml"
expect_error "missing required key" 2 "^error: .*required.yaml:[0-9]+: data.*images: missing" -- "$oar" config validate -c "$tmp/required.yaml"
printf '_base_: %s\nmodel:\n  name: simple_cn\n' "$tmp/small.yaml" > "$tmp/unknown.yaml"
expect_error "unknown registry name" 2 "^error: .*unknown.yaml:3: model.name: .*simple_cnn" -- "$oar" config validate -c "$tmp/unknown.yaml"
printf '_base_: %s/nope.yaml\n' "$tmp" > "$tmp/nobase.yaml"
expect_error "missing _base_" 2 "^error: .*nobase.yaml:1: _base_: .*nope.yaml" -- "$oar" config validate -c "$tmp/nobase.yaml"
printf '_base_: b.yaml\n' > "$tmp/a.yaml"
printf '_base_: a.yaml\n' > "$tmp/b.yaml"
expect_error "cyclic _base_" 2 "^error: .*_base_: .*(cycle|cyclic)" -- "$oar" config validate -c "$tmp/a.yaml"
expect_error "bad -o syntax" 2 "^error: .*model.width" -- "$oar" config validate -c "$tmp/small.yaml" -o model.width
printf '_base_: %s\ndata:\n  train:\n    images: /nonexistent/train.gz\n' "$tmp/small.yaml" > "$tmp/nodata.yaml"
expect_error "missing data file" 2 "^error: .*nodata.yaml:4: data.train.images: no such file" -- "$oar" train -c "$tmp/nodata.yaml"
expect_error "unwritable output directory" 2 "^error: .*(/proc/oar-run|output)" -- "$oar" train -c "$tmp/small.yaml" --output /proc/oar-run --plain
mkdir -p "$tmp/corrupt"
cp -r "$tmp/run/best/." "$tmp/corrupt/"
printf 'garbage' > "$tmp/corrupt/model.safetensors"
expect_error "corrupt checkpoint" 2 "^error: .*corrupt/model.safetensors" -- "$oar" eval -c "$tmp/corrupt" --plain
expect_error "unknown device" 2 "^error: .*cuda" -- "$oar" train -c "$tmp/small.yaml" --device cuda:0
expect_error "unknown list kind" 2 "^error: .*model" -- "$oar" list modles

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
