#!/usr/bin/env bash
# `oar video extract` and `oar video-tag` end to end: synth clips, train a tiny TSN for a few
# steps, tag a folder, a glob and a list (class names, top-k, windows), a corrupt file gives an
# error record while the run goes on (exit 2), re-runs skip what is done and repair a partial
# last line, and the two-stage mode (extract -> Attention LSTM trained on the features -> tag).
# Usage: video_tag_cli_test.sh OAR_BINARY SOURCE_DIR
set -u
oar=$1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
passed=0
failed=0
fail() { echo "FAIL: $*"; failed=$((failed + 1)); }
ok() { passed=$((passed + 1)); }
# jcheck FILE PYTHON_EXPR: the expression over `recs` (the file's JSON records) is true.
jcheck() {
  python3 - "$1" "$2" <<'PY'
import json, sys
recs = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
ok = eval(sys.argv[2])
if not ok:
    print(json.dumps(recs)[:800])
sys.exit(0 if ok else 1)
PY
}

"$oar" video synth "$tmp/clips" --train 6 --valid 3 --test 0 --frames 16 --size 32x32 --shapes 3 \
  --labels appearance --quiet > "$tmp/synth.out" 2>&1 && ok || { fail "synth: $(cat "$tmp/synth.out")"; echo "video tag cli: $passed passed, $failed failed"; exit 1; }

cat > "$tmp/tsn.yaml" <<YAML
model: {name: tsn, num_classes: 3, depth: 50, blocks: [1, 1, 1, 1], width: 4}
task: {name: video_classification, num_classes: 3, class_names_file: $tmp/clips/classes_appearance.txt}
optimizer: {name: sgd, lr: 0.01}
data:
  name: video
  batch_size: 3
  num_workers: 0
  seg_num: 3
  transforms:
    - {name: group_center_crop, size: 32}
    - {name: group_normalize, mean: [0.5, 0.5, 0.5], std: [0.25, 0.25, 0.25]}
  train: {list: $tmp/clips/train_appearance.list}
  valid: {list: $tmp/clips/valid_appearance.list}
  infer: {list: $tmp/clips/valid_appearance.list}
trainer: {max_steps: 3, log_every: 1, output_dir: $tmp/tsn_run, seed: 1}
YAML
"$oar" train -c "$tmp/tsn.yaml" --plain > "$tmp/train.out" 2>&1 && ok \
  || { fail "train tsn: $(tail -5 "$tmp/train.out")"; echo "video tag cli: $passed passed, $failed failed"; exit 1; }

# A folder: one record per clip, sorted, with names from the task's class_names_file.
"$oar" video-tag "$tmp/clips/train" -c "$tmp/tsn_run" --output "$tmp/tags.jsonl" --topk 2 --plain --device cpu \
  > "$tmp/tag.out" 2>&1 && ok || fail "video-tag a folder: $(tail -3 "$tmp/tag.out")"
jcheck "$tmp/tags.jsonl" 'len(recs) == 6 and [r["path"] for r in recs] == sorted(r["path"] for r in recs)' \
  && ok || fail "folder records"
jcheck "$tmp/tags.jsonl" 'all(len(r["labels"]) == 2 and r["labels"][0]["name"] in ("circle", "square", "triangle") and r["labels"][0]["score"] >= r["labels"][1]["score"] and abs(r["duration"] - 2.0) < 1e-6 for r in recs)' \
  && ok || fail "labels, names, scores, duration"
grep -q "videos/s" "$tmp/tag.out" && ok || fail "no videos/s in the progress: $(cat "$tmp/tag.out")"
grep -q "one model on cpu" "$tmp/tag.out" && ok || fail "device not reported: $(cat "$tmp/tag.out")"

# Re-running skips all six and leaves the file as it was.
cp "$tmp/tags.jsonl" "$tmp/tags.before"
"$oar" video-tag "$tmp/clips/train" -c "$tmp/tsn_run" --output "$tmp/tags.jsonl" --topk 2 --plain \
  > "$tmp/again.out" 2>&1 && grep -q "tagged 0, failed 0, skipped 6" "$tmp/again.out" \
  && cmp -s "$tmp/tags.jsonl" "$tmp/tags.before" && ok || fail "re-run: $(tail -2 "$tmp/again.out")"
# A run killed mid-line: the partial line is cut off and only that video is tagged again.
truncate -s -7 "$tmp/tags.jsonl"
"$oar" video-tag "$tmp/clips/train" -c "$tmp/tsn_run" --output "$tmp/tags.jsonl" --topk 2 --plain \
  > "$tmp/resume.out" 2>&1 && grep -q "partial last line" "$tmp/resume.out" \
  && grep -q "tagged 1, failed 0, skipped 5" "$tmp/resume.out" && cmp -s "$tmp/tags.jsonl" "$tmp/tags.before" \
  && ok || fail "resume after a partial line: $(cat "$tmp/resume.out")"

# A corrupt file among good ones: an error record naming it, the others tagged, exit 2.
mkdir -p "$tmp/mixed"
cp "$tmp/clips/train/clip_000000.mp4" "$tmp/clips/train/clip_000001.mp4" "$tmp/mixed/"
head -c 900 "$tmp/clips/train/clip_000002.mp4" > "$tmp/mixed/clip_000000b_broken.mp4"
"$oar" video-tag "$tmp/mixed" -c "$tmp/tsn_run" --output "$tmp/mixed.jsonl" --plain > "$tmp/mixed.out" 2>&1
rc=$?
[ "$rc" -eq 2 ] && ok || fail "corrupt file: exit $rc, expected 2"
jcheck "$tmp/mixed.jsonl" 'len(recs) == 3 and "broken" in recs[1]["error"] and recs[1]["path"].endswith("broken.mp4") and "labels" in recs[0] and "labels" in recs[2]' \
  && ok || fail "error record in order, others tagged"
# Error records count as done unless --retry_errors.
"$oar" video-tag "$tmp/mixed" -c "$tmp/tsn_run" --output "$tmp/mixed.jsonl" --plain > /dev/null 2>&1 \
  && jcheck "$tmp/mixed.jsonl" 'len(recs) == 3' && ok || fail "error records are skipped on a re-run"
"$oar" video-tag "$tmp/mixed" -c "$tmp/tsn_run" --output "$tmp/mixed.jsonl" --retry_errors --plain > /dev/null 2>&1
jcheck "$tmp/mixed.jsonl" 'len(recs) == 4 and "error" in recs[3]' && ok || fail "--retry_errors retries"

# A glob and fixed windows: 2 s clips, 1 s windows every 0.5 s -> [0,1) [0.5,1.5) [1,2).
"$oar" video-tag "$tmp/clips/valid/*.mp4" -c "$tmp/tsn_run" --output - --window_s 1 --stride_s 0.5 \
  --class_names "$tmp/clips/classes_appearance.txt" --plain > "$tmp/win.jsonl" 2> "$tmp/win.err" && ok \
  || fail "glob + windows: $(cat "$tmp/win.err")"
jcheck "$tmp/win.jsonl" 'len(recs) == 3 and all([(w["start"], w["end"]) for w in r["windows"]] == [(0, 1), (0.5, 1.5), (1, 2)] and len(w["labels"]) == 3 for r in recs for w in [r["windows"][0]])' \
  && ok || fail "windows"

# Two stages: extract TSN features of the train/valid lists (labels kept), train an Attention
# LSTM on them, then tag with extractor -> sequence model.
for split in train valid; do
  "$oar" video extract "$tmp/clips/${split}_appearance.list" -c "$tmp/tsn_run" --output "$tmp/feat" \
    --plain > "$tmp/extract_$split.out" 2>&1 && ok || fail "extract $split: $(tail -3 "$tmp/extract_$split.out")"
done
grep -q "tsn on cpu" "$tmp/extract_train.out" && ok || fail "extract: model and device not reported"
[ "$(grep -c . "$tmp/feat/train_appearance.list")" -eq 6 ] && [ -f "$tmp/feat/train/clip_000000.safetensors" ] \
  && ok || fail "feature list: $(ls -R "$tmp/feat" | head)"
cat > "$tmp/lstm.yaml" <<YAML
model: {name: attention_lstm, feature_names: [rgb], feature_dims: [128], num_classes: 3,
        embedding_size: 8, lstm_size: 6, fc_sizes: [8], drop_rate: 0.0}
task: {name: video_classification, num_classes: 3, multi_label: true,
       class_names_file: $tmp/clips/classes_appearance.txt}
optimizer: {name: adamw, lr: 0.01}
data:
  name: video_features
  num_classes: 3
  feature_names: [rgb]
  feature_dims: [128]
  batch_size: 3
  num_workers: 0
  train: {list: $tmp/feat/train_appearance.list}
  valid: {list: $tmp/feat/valid_appearance.list}
trainer: {max_steps: 4, log_every: 1, output_dir: $tmp/lstm_run, seed: 1}
YAML
"$oar" train -c "$tmp/lstm.yaml" --plain > "$tmp/lstm.out" 2>&1 && ok || fail "train lstm on features: $(tail -5 "$tmp/lstm.out")"
"$oar" video-tag "$tmp/clips/valid_appearance.list" --extractor "$tmp/tsn_run" --sequence "$tmp/lstm_run" \
  --output "$tmp/two.jsonl" --window_s 1 --plain > "$tmp/two.out" 2>&1 && grep -q "two stages on cpu, sigmoid" "$tmp/two.out" \
  && ok || fail "two-stage tag: $(tail -3 "$tmp/two.out")"
jcheck "$tmp/two.jsonl" 'len(recs) == 3 and all(len(r["labels"]) == 3 and r["labels"][0]["name"] in ("circle", "square", "triangle") and len(r["windows"]) == 2 and abs(sum(l["score"] for l in r["labels"]) - 1) > 1e-4 for r in recs)' \
  && ok || fail "two-stage records"

# Bad usage: one line naming the problem, exit 2.
"$oar" video-tag "$tmp/mixed" -c "$tmp/tsn_run" --extractor "$tmp/tsn_run" --output "$tmp/x.jsonl" > "$tmp/err.out" 2>&1
[ $? -eq 2 ] && grep -q "not both" "$tmp/err.out" && ok || fail "one model and two stages: $(cat "$tmp/err.out")"
"$oar" video-tag "$tmp/mixed" -c "$tmp/lstm_run" --output "$tmp/x.jsonl" > "$tmp/err.out" 2>&1
[ $? -eq 2 ] && grep -q "two-stage" "$tmp/err.out" && ok || fail "sequence model alone: $(cat "$tmp/err.out")"
"$oar" video-tag "$tmp/nowhere" -c "$tmp/tsn_run" --output "$tmp/x.jsonl" > "$tmp/err.out" 2>&1
[ $? -eq 2 ] && grep -q "nowhere" "$tmp/err.out" && ok || fail "missing input: $(cat "$tmp/err.out")"
"$oar" video extract "$tmp/clips/train_appearance.list" -c "$tmp/lstm_run" --output "$tmp/f2" > "$tmp/err.out" 2>&1
[ $? -eq 2 ] && grep -q "tsn, tsm" "$tmp/err.out" && ok || fail "extract from a sequence model: $(cat "$tmp/err.out")"

# TSM features from the TSN's weights (the shift has no parameters): windows of seg_num frames.
"$oar" video extract "$tmp/clips/valid_appearance.list" -c "$tmp/tsn_run" -o model.name=tsm \
  --output "$tmp/feat_tsm" --device cpu --plain > "$tmp/tsm.out" 2>&1 && grep -q "tsm on cpu" "$tmp/tsm.out" \
  && [ -f "$tmp/feat_tsm/valid/clip_000000.safetensors" ] && ok || fail "extract with TSM: $(tail -3 "$tmp/tsm.out")"
cmp -s "$tmp/feat_tsm/valid/clip_000000.safetensors" "$tmp/feat/valid/clip_000000.safetensors" \
  && fail "TSM features equal TSN's" || ok

# --device: a bad name, and a GPU that is not there (a CPU build: no CUDA at all).
for cmd in "video-tag $tmp/mixed -c $tmp/tsn_run --output $tmp/x.jsonl" \
           "video extract $tmp/clips/train_appearance.list -c $tmp/tsn_run --output $tmp/f3"; do
  "$oar" $cmd --device gpu > "$tmp/err.out" 2>&1
  [ $? -eq 2 ] && grep -q "bad device 'gpu'" "$tmp/err.out" && ok || fail "$cmd --device gpu: $(cat "$tmp/err.out")"
  "$oar" $cmd --device cuda:99 > "$tmp/err.out" 2>&1
  [ $? -eq 2 ] && grep -q -- "--device cuda:99: " "$tmp/err.out" && ok || fail "$cmd --device cuda:99: $(cat "$tmp/err.out")"
  if "$oar" version 2>/dev/null | grep -q "cuda backend: not built"; then
    "$oar" $cmd --device cuda:0 > "$tmp/err.out" 2>&1
    [ $? -eq 2 ] && grep -q "no CUDA device is available to this build" "$tmp/err.out" && ok \
      || fail "$cmd --device cuda:0 in a CPU build: $(cat "$tmp/err.out")"
  fi
done
[ ! -e "$tmp/x.jsonl" ] && [ ! -e "$tmp/f3" ] && ok || fail "a device error left output behind"

echo "video tag cli: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
