#!/usr/bin/env bash
# Video classification through the oar command line, on real decoded files: `oar video synth`
# writes 16 tiny clips, a tiny TSM (configs/video/synth/tsm.yaml) trains a few steps, eval writes
# top-1 (also with three-crop multi-view testing, [N, V, T, C, H, W] batches averaged per video),
# predict writes JSON lines with the path and top-k class names; the Kinetics recipes train and
# evaluate as written on the same clips (tiny trunks); a corrupt file in the list
# stops the run naming it (corrupt: fatal) or is skipped with a warning (corrupt: skip); and
# every shipped video config passes `oar config validate`.
# Usage: video_cli_test.sh OAR_BINARY SOURCE_DIR
set -u
oar=$1
src=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
passed=0
failed=0
fail() { echo "FAIL: $*"; failed=$((failed + 1)); }
ok() { passed=$((passed + 1)); }

"$oar" video synth "$tmp/clips" --train 12 --valid 0 --test 4 --frames 8 --size 32x32 \
  --labels appearance,order --quiet > "$tmp/synth.out" 2>&1 \
  && [ -f "$tmp/clips/train_appearance.list" ] && ok || fail "synth: $(tail -3 "$tmp/synth.out")"
d=$tmp/clips
common=(-o data.train.list="$d/train_appearance.list" -o data.valid.list="$d/test_appearance.list"
        -o data.test.list="$d/test_appearance.list" -o data.infer.list="$d/test_appearance.list"
        -o task.class_names_file="$d/classes_appearance.txt"
        -o data.num_workers=1 -o data.batch_size=4 -o trainer.threads=2)

"$oar" train -c "$src/configs/video/synth/tsm.yaml" --plain "${common[@]}" \
  -o trainer.epochs=1 -o trainer.max_steps=3 -o trainer.output_dir="$tmp/run" \
  > "$tmp/train.out" 2>&1 && ls "$tmp"/run/ckpt/step-3/model.safetensors > /dev/null 2>&1 \
  && ok || fail "train: $(tail -5 "$tmp/train.out")"
grep -q "loss" "$tmp/run/metrics.jsonl" 2>/dev/null && ok || fail "no loss in metrics.jsonl"

"$oar" eval -c "$tmp/run" --plain > "$tmp/eval.out" 2>&1 && ok || fail "eval: $(tail -5 "$tmp/eval.out")"
python3 - "$tmp/run/eval-test/metrics.json" <<'PY' && ok || fail "eval metrics: $(cat "$tmp/run/eval-test/metrics.json" 2>&1)"
import json, sys
j = json.load(open(sys.argv[1]))
assert j["samples"] == 4, j
assert 0.0 <= j["metrics"]["top1"] <= 1.0, j
PY

# Multi-view testing: three crops per clip, the scores of the 3 views averaged per video.
"$oar" eval -c "$tmp/run" --plain --output "$tmp/mv" \
  -o 'data.test.transforms=[{name: group_three_crop, size: 24}, {name: group_normalize, mean: [0.3, 0.3, 0.3], std: [0.3, 0.3, 0.3]}]' \
  > "$tmp/mv.out" 2>&1 && grep -q '"top1"' "$tmp/mv/eval-test/metrics.json" && ok \
  || fail "multi-view eval: $(tail -5 "$tmp/mv.out")"

# predict: the test list, then one file; records carry the path and top-k class names.
"$oar" predict -c "$tmp/run" --plain > "$tmp/p1.out" 2>&1 \
  && [ "$(wc -l < "$tmp/run/predictions.jsonl")" -eq 4 ] && ok || fail "predict: $(tail -5 "$tmp/p1.out")"
python3 - "$tmp/run/predictions.jsonl" "$d/classes_appearance.txt" <<'PY' && ok || fail "predictions: $(head -2 "$tmp/run/predictions.jsonl")"
import json, sys
names = open(sys.argv[2]).read().split()
for line in open(sys.argv[1]):
    r = json.loads(line)
    assert r["path"].endswith(".mp4"), r
    assert len(r["topk"]) == 2, r
    assert r["topk"][0]["score"] >= r["topk"][1]["score"], r
    assert all(t["label"] == names[t["class"]] for t in r["topk"]), r
    assert r["truth_label"] == names[r["truth"]], r
PY
"$oar" predict -c "$tmp/run" --input "$d/test/clip_000001.mp4" --plain > "$tmp/p2.out" 2>&1 \
  && [ "$(wc -l < "$tmp/run/predictions.jsonl")" -eq 1 ] && grep -q 'clip_000001.mp4' "$tmp/run/predictions.jsonl" \
  && ok || fail "predict one file: $(tail -5 "$tmp/p2.out")"

# A corrupt file in the training list.
head -c 300 "$d/train/clip_000000.mp4" > "$d/train/broken.mp4"
{ echo "train/broken.mp4 0"; cat "$d/train_appearance.list"; } > "$d/bad.list"
"$oar" train -c "$src/configs/video/synth/tsm.yaml" --plain "${common[@]}" -o data.train.list="$d/bad.list" \
  -o trainer.max_steps=1 -o trainer.output_dir="$tmp/bad" > "$tmp/bad.out" 2>&1 \
  && fail "a corrupt video did not stop training" \
  || { grep -q "broken.mp4" "$tmp/bad.out" && ok || fail "the error does not name the file: $(tail -3 "$tmp/bad.out")"; }
"$oar" train -c "$src/configs/video/synth/tsm.yaml" --plain "${common[@]}" -o data.train.list="$d/bad.list" \
  -o data.train.corrupt=skip -o trainer.max_steps=4 -o trainer.output_dir="$tmp/skip" > "$tmp/skip.out" 2>&1 \
  && grep -q "warning: .*broken.mp4.*skipped" "$tmp/skip.out" && ok || fail "corrupt: skip: $(tail -5 "$tmp/skip.out")"
[ "$(grep -c "broken.mp4" "$tmp/skip.out")" -eq 1 ] && ok || fail "the corrupt file was reported more than once"

# The shipped Kinetics-400 recipes run as written (short side 256, 224 crops, multi-scale crop,
# 7/25 test segments, Non-local's 10 clips x 3 crops averaged per video) on the synth clips, with
# a tiny trunk: 2 training steps and an evaluation each.
for m in tsn tsm stnet nonlocal_c2d nonlocal_i3d; do
  "$oar" train -c "$src/configs/video/$m.yaml" --plain "${common[@]}" -o model.num_classes=3 \
    -o task.num_classes=3 -o 'model.blocks=[1, 1, 1, 1]' -o model.width=4 -o data.batch_size=2 \
    -o data.train.limit=4 -o data.valid.limit=2 -o data.test.limit=2 -o data.test.batch_size=2 \
    -o trainer.max_steps=2 -o trainer.output_dir="$tmp/k-$m" > "$tmp/k.out" 2>&1 \
    && "$oar" eval -c "$tmp/k-$m" --plain > "$tmp/ke.out" 2>&1 \
    && grep -q '"top1"' "$tmp/k-$m/eval-test/metrics.json" && ok \
    || fail "configs/video/$m.yaml on synth clips: $(tail -3 "$tmp/k.out" "$tmp/ke.out")"
done

# Every shipped video config validates (its data lists pointed at existing files).
echo "a.mp4 0" > "$tmp/videos.list"
echo "a.safetensors" > "$tmp/features.list"
n=0
for f in "$src"/configs/video/*.yaml "$src"/configs/video/synth/*.yaml; do
  list=$tmp/videos.list
  grep -q "name: video_features" "$f" && list=$tmp/features.list
  ov=()
  for m in train valid test infer; do
    grep -q "^  $m:" "$f" "$(dirname "$f")"/_base_/*.yaml 2>/dev/null && ov+=(-o "data.$m.list=$list")
  done
  "$oar" config validate -c "$f" "${ov[@]}" > "$tmp/v.out" 2>&1 && ok || fail "config validate $f: $(tail -2 "$tmp/v.out")"
  n=$((n + 1))
done
[ "$n" -ge 16 ] && ok || fail "only $n video configs found"

echo "video cli: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
