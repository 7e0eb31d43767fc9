#!/usr/bin/env bash
# Image readers through the oar command line: train on a class-per-folder tree with transforms
# and mixup, eval writes confusion_matrix.json and .png, and `oar predict --input` takes an image
# file, a folder and a list file, printing and writing top-k labels with class names.
# Usage: image_cli_test.sh OAR_BINARY SOURCE_DIR
set -u
oar=$1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
passed=0
failed=0
fail() { echo "FAIL: $*"; failed=$((failed + 1)); }
ok() { passed=$((passed + 1)); }

# 24-bit BMPs (no image library needed): reddish images in red/, bluish in blue/, one corrupt.
python3 - "$tmp/data" <<'PY'
import os, struct, sys
root = sys.argv[1]
def bmp(path, w, h, rgb):
    row = bytes(rgb[::-1]) * w
    row += b"\0" * ((4 - len(row) % 4) % 4)
    pixels = row * h
    hdr = struct.pack("<2sIHHI", b"BM", 54 + len(pixels), 0, 0, 54)
    info = struct.pack("<IiiHHIIiiII", 40, w, h, 1, 24, 0, len(pixels), 2835, 2835, 0, 0)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    open(path, "wb").write(hdr + info + pixels)
for i in range(12):
    bmp(f"{root}/red/{i:02d}.bmp", 20, 16, (200 + i * 4, 10 * i, 20))
    bmp(f"{root}/blue/{i:02d}.bmp", 16, 20, (20, 10 * i, 200 + i * 4))
bmp(f"{root}/loose/a.bmp", 18, 18, (250, 0, 0))
bmp(f"{root}/loose/b.bmp", 18, 18, (0, 0, 250))
open(f"{root}/loose/list.txt", "w").write("a.bmp\nb.bmp\na.bmp\n")
os.makedirs(f"{root}/bad/red", exist_ok=True)
open(f"{root}/bad/red/broken.bmp", "wb").write(b"BM not really")
bmp(f"{root}/bad/red/fine.bmp", 16, 16, (250, 0, 0))
PY
printf 'blue\nred\n' > "$tmp/names.txt"

cat > "$tmp/img.yaml" <<YAML
model: {name: simple_cnn, in_channels: 3, num_classes: 2, width: 4, stages: 1, dropout: 0.0}
task: {name: image_classification, num_classes: 2, topk: 2, class_names_file: $tmp/names.txt}
optimizer: {name: adamw, lr: 0.01}
data:
  name: image_folder
  batch_size: 8
  num_workers: 2
  transforms:
    - {name: resize, size: [16, 16]}
    - {name: normalize, mean: [0.5], std: [0.5]}
  train:
    root: $tmp/data
    transforms:
      - {name: random_resized_crop, size: 16, scale: [0.5, 1.0]}
      - {name: horizontal_flip}
      - {name: color_jitter, brightness: 0.1}
      - {name: normalize, mean: [0.5], std: [0.5]}
      - {name: random_erasing, p: 0.2}
      - {name: to_chw}
    batch_transforms: [{name: mixup, alpha: 0.4, prob: 0.5}, {name: cutmix, prob: 0.5}]
  valid: {root: $tmp/data}
  test: {root: $tmp/data}
  infer: {root: $tmp/data/loose}
trainer: {epochs: 3, log_every: 1, output_dir: $tmp/run, seed: 3}
YAML
# The folder holds loose/ and bad/ too: train on red/ and blue/ only.
mkdir -p "$tmp/classes" && mv "$tmp/data/red" "$tmp/data/blue" "$tmp/classes/"
sed -i "s|root: $tmp/data\$|root: $tmp/classes|; s|root: $tmp/data}|root: $tmp/classes}|g" "$tmp/img.yaml"

"$oar" list transforms > "$tmp/list.out" 2>&1
for t in resize random_resized_crop center_crop random_crop horizontal_flip color_jitter normalize \
         to_chw random_erasing mixup cutmix; do
  grep -q "^  $t " "$tmp/list.out" && ok || fail "oar list transforms lacks $t"
done

"$oar" train -c "$tmp/img.yaml" --plain > "$tmp/train.out" 2> "$tmp/train.err" \
  && [ -f "$tmp/run/best/model.safetensors" ] && ok || fail "train: $(tail -3 "$tmp/train.err")"
"$oar" eval -c "$tmp/run" --plain > "$tmp/eval.out" 2>&1 && ok || fail "eval: $(tail -3 "$tmp/eval.out")"
[ -f "$tmp/run/eval-test/confusion_matrix.json" ] && ok || fail "eval wrote no confusion_matrix.json"
if [ -f "$tmp/run/eval-test/confusion_matrix.png" ] && head -c 8 "$tmp/run/eval-test/confusion_matrix.png" | grep -q PNG; then
  ok
else
  fail "eval wrote no confusion_matrix.png: $(ls "$tmp/run/eval-test")"
fi

# predict --input: one image, a folder (sorted), a list file; labels are class names.
"$oar" predict -c "$tmp/run" --input "$tmp/data/loose/a.bmp" --plain > "$tmp/p1.out" 2>&1 \
  && [ "$(wc -l < "$tmp/run/predictions.jsonl")" -eq 1 ] && ok || fail "predict a file: $(tail -3 "$tmp/p1.out")"
grep -q '"label":"red"\|"label": "red"' "$tmp/run/predictions.jsonl" && ok || fail "no class name in $(cat "$tmp/run/predictions.jsonl")"
grep -q 'a.bmp.*-> red' "$tmp/p1.out" && ok || fail "predict printed: $(cat "$tmp/p1.out")"
"$oar" predict -c "$tmp/run" --input "$tmp/data/loose" --plain > "$tmp/p2.out" 2>&1 \
  && [ "$(wc -l < "$tmp/run/predictions.jsonl")" -eq 2 ] && ok || fail "predict a folder: $(tail -3 "$tmp/p2.out")"
head -1 "$tmp/run/predictions.jsonl" | grep -q 'loose/a.bmp' && ok || fail "folder order: $(head -1 "$tmp/run/predictions.jsonl")"
"$oar" predict -c "$tmp/run" --input "$tmp/data/loose/list.txt" --plain > "$tmp/p3.out" 2>&1 \
  && [ "$(wc -l < "$tmp/run/predictions.jsonl")" -eq 3 ] && ok || fail "predict a list: $(tail -3 "$tmp/p3.out")"

# A corrupt image: fatal by default (naming the path), skipped with on_error: skip.
"$oar" predict -c "$tmp/run" --input "$tmp/data/bad" --plain > "$tmp/bad.out" 2>&1 \
  && fail "a corrupt image did not fail" || { grep -q "broken.bmp" "$tmp/bad.out" && ok || fail "error does not name the file: $(cat "$tmp/bad.out")"; }
"$oar" predict -c "$tmp/run" --input "$tmp/data/bad" -o data.on_error=skip --plain > "$tmp/skip.out" 2>&1 \
  && grep -q "warning: .*broken.bmp" "$tmp/skip.out" && ok || fail "on_error=skip: $(cat "$tmp/skip.out")"

echo "image cli: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
