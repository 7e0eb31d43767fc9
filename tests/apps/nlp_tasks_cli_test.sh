#!/usr/bin/env bash
# The NLP tasks from the command line: train / eval / predict for token classification (MSRA-NER
# and CoNLL readers), span extraction (SQuAD JSON) and pairwise matching (query groups), each on
# tiny data from scripts/data/make_nlp_task_data.py, through the shipped configs; and bad input
# reported as one error line.
# Usage: nlp_tasks_cli_test.sh OAR_BINARY SOURCE_DIR
set -u
oar=$1
src=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
passed=0
failed=0
fail() { echo "FAIL: $*"; failed=$((failed + 1)); }
ok() { passed=$((passed + 1)); }

python3 "$src/scripts/data/make_nlp_task_data.py" "$tmp/data" --scale 0.02 || { echo "FAIL: data"; exit 1; }
d=$tmp/data

# run_task NAME CONFIG DATA_YAML METRIC: train a few steps, evaluate, predict.
run_task() {
  local name=$1 config=$2 data=$3 metric=$4
  cat > "$tmp/$name.yaml" <<YAML
_base_: $src/configs/nlp/$config.yaml
data:
  vocab: $d/vocab.txt
  batch_size: 4
$data
trainer: {epochs: 1, max_steps: 4, log_every: 1, output_dir: $tmp/run_$name}
YAML
  "$oar" train -c "$tmp/$name.yaml" --plain > "$tmp/$name.train" 2>&1 \
    && [ -f "$tmp/run_$name/best/model.safetensors" ] && ok || fail "$name train: $(tail -3 "$tmp/$name.train")"
  grep -q "$metric" "$tmp/run_$name/metrics.jsonl" && ok || fail "$name: no $metric in metrics.jsonl"
  "$oar" eval -c "$tmp/run_$name" --plain > "$tmp/$name.eval" 2>&1 \
    && grep -q "$metric" "$tmp/$name.eval" && ok || fail "$name eval: $(tail -3 "$tmp/$name.eval")"
  "$oar" predict -c "$tmp/run_$name" --plain > "$tmp/$name.predict" 2>&1 \
    && [ -s "$tmp/run_$name/predictions.jsonl" ] && ok || fail "$name predict: $(tail -3 "$tmp/$name.predict")"
}

# check NAME PYTHON: runs PYTHON with the predictions as a list `recs`; prints nothing when fine.
check() {
  local out
  out=$(python3 - "$tmp/run_$1/predictions.jsonl" <<PY 2>&1
import json, sys
recs = [json.loads(l) for l in open(sys.argv[1], encoding="utf-8")]
$2
PY
)
  [ -z "$out" ] && ok || fail "$1 predictions: $out"
}

run_task ner tiny_ner_msra "  train: {file: $d/ner/train.tsv}
  valid: {file: $d/ner/dev.tsv}
  test: {file: $d/ner/test.tsv}
  infer: {file: $d/ner/test.tsv}" chunk_f1
# every entity's span is the substring of the text it names; tags cover every character
check ner '
assert len(recs) == 4, len(recs)
for r in recs:
    assert len(r["tags"]) == len(r["text"]), r
    for e in r["entities"] + r["gold_entities"]:
        assert r["text"][e["start"]:e["end"]] == e["text"], e
assert sum(len(r["gold_entities"]) for r in recs) > 0'

# the CRF head: train, evaluate, and its transitions are in the checkpoint
"$oar" train -c "$tmp/ner.yaml" -o task.head=crf -o trainer.output_dir="$tmp/run_crf" --plain > "$tmp/crf.train" 2>&1 \
  && "$oar" eval -c "$tmp/run_crf" --plain > "$tmp/crf.eval" 2>&1 && grep -q chunk_f1 "$tmp/crf.eval" \
  && ok || fail "crf head: $(tail -3 "$tmp/crf.train" "$tmp/crf.eval")"
python3 - "$tmp/run_crf/best/model.safetensors" <<'PY' && ok || fail "crf: no head.crf.transitions in the checkpoint"
import json, struct, sys
b = open(sys.argv[1], "rb").read()
n = struct.unpack("<Q", b[:8])[0]
assert json.loads(b[8:8 + n])["head.crf.transitions"]["shape"] == [9, 7]
PY

# untagged input (prediction only): one tag per character, entity spans index the text
printf '\xe5\xbc\xa0\x02\xe4\xb8\x89\x02 \x02\xe5\x9c\xa8\x02\xe5\x8c\x97\x02\xe4\xba\xac\n' > "$tmp/plain.tsv"  # 张三 在北京
"$oar" predict -c "$tmp/run_ner" --input "$tmp/plain.tsv" --plain > "$tmp/plain.out" 2>&1 \
  && ok || fail "predict untagged: $(tail -3 "$tmp/plain.out")"
check ner '
assert len(recs) == 1 and recs[0]["text"] == "张三 在北京" and len(recs[0]["tags"]) == 6, recs
assert recs[0]["tags"][2] == "O" and "gold_entities" not in recs[0], recs'

run_task conll tiny_ner_msra "  name: conll
  train: {file: $d/ner/train.conll}
  valid: {file: $d/ner/dev.conll}
  test: {file: $d/ner/test.conll}
  infer: {file: $d/ner/test.conll}" chunk_f1
check conll '
for r in recs:
    assert len(r["tags"]) == len(r["text"].split(" ")), r
    for e in r["gold_entities"]:
        assert r["text"][e["start"]:e["end"]] == e["text"] and e["text"][0].isupper(), e'

run_task qa tiny_squad "  train: {file: $d/qa/train.json}
  valid: {file: $d/qa/dev.json}
  test: {file: $d/qa/dev.json}
  infer: {file: $d/qa/dev.json}" em
check qa '
import json as j
ctx = {q["id"]: p["context"] for p in j.load(open(sys.argv[1].replace("run_qa/predictions.jsonl", "data/qa/dev.json")))["data"][0]["paragraphs"] for q in p["qas"]}
assert len(recs) == 12, len(recs)  # 4 paragraphs x 3 questions
for r in recs:
    c = ctx[r["id"]]
    assert r["answer"] and c[r["start"]:r["start"] + len(r["answer"])] == r["answer"], r
    assert r["nbest"][0]["text"] == r["answer"] and r["gold"], r'

run_task match tiny_pairwise_matching "  train: {file: $d/matching/train.tsv}
  valid: {file: $d/matching/dev.tsv}
  test: {file: $d/matching/test.tsv}
  infer: {file: $d/matching/test.tsv}" mrr
check match '
assert len(recs) == 4, len(recs)
for r in recs:
    s = [c["score"] for c in r["ranking"]]
    assert len(s) == 4 and s == sorted(s, reverse=True) and sum(c["label"] for c in r["ranking"]) == 1, r'

# pointwise matching trains on the grouped layout
cat > "$tmp/point.yaml" <<YAML
_base_: $tmp/match.yaml
task: {mode: pointwise}
data: {train: {file: $d/matching/dev.tsv}}
trainer: {output_dir: $tmp/run_point}
YAML
"$oar" train -c "$tmp/point.yaml" --plain > "$tmp/point.train" 2>&1 \
  && grep -q mrr "$tmp/run_point/metrics.jsonl" && ok || fail "pointwise train: $(tail -3 "$tmp/point.train")"

# Masked-LM further training, then fine-tuning from its checkpoint through model.pretrained
# (an oar checkpoint directory: the architecture comes from its config.yaml). With lr 0 the
# fine-tuned encoder must hold the MLM run's weights exactly.
cat > "$tmp/mlm.yaml" <<YAML
model: {name: bert, vocab_size: 512, hidden_size: 64, num_hidden_layers: 2, num_attention_heads: 4,
        intermediate_size: 128, max_position_embeddings: 128}
task: {name: masked_lm}
data:
  name: masked_text
  vocab: $d/vocab.txt
  tsv_column: text_a
  masking: whole_word
  max_seq_len: 32
  batch_size: 8
  train: {file: $d/matching/dev.tsv, shuffle: true}
  valid: {file: $d/matching/test.tsv}
optimizer: {name: adamw, lr: 0.001}
trainer: {epochs: 1, max_steps: 4, log_every: 1, output_dir: $tmp/run_mlm}
YAML
"$oar" train -c "$tmp/mlm.yaml" --plain > "$tmp/mlm.train" 2>&1 \
  && grep -q perplexity "$tmp/run_mlm/metrics.jsonl" && ok || fail "mlm train: $(tail -3 "$tmp/mlm.train")"
cat > "$tmp/from_mlm.yaml" <<YAML
model: {name: bert, pretrained: $tmp/run_mlm/best}
task: {name: text_matching, mode: pointwise}
data:
  name: query_groups
  vocab: $d/vocab.txt
  max_seq_len: 32
  batch_size: 4
  train: {file: $d/matching/dev.tsv, shuffle: true}
  valid: {file: $d/matching/test.tsv}
optimizer: {name: adamw, lr: 0}
trainer: {epochs: 1, max_steps: 2, log_every: 1, best_metric: mrr, output_dir: $tmp/run_from_mlm}
YAML
"$oar" train -c "$tmp/from_mlm.yaml" --plain > "$tmp/from_mlm.train" 2>&1 \
  && ok || fail "fine-tune from the mlm checkpoint: $(tail -3 "$tmp/from_mlm.train")"
python3 - "$tmp/run_mlm/best/model.safetensors" "$tmp/run_from_mlm/best/model.safetensors" <<'PY' \
  && ok || fail "the fine-tuned encoder does not hold the mlm weights"
import json, struct, sys
def tensors(path):
    b = open(path, "rb").read()
    n = struct.unpack("<Q", b[:8])[0]
    h = json.loads(b[8:8 + n])
    return {k: b[8 + n + v["data_offsets"][0]:8 + n + v["data_offsets"][1]]
            for k, v in h.items() if k != "__metadata__"}
a, b = tensors(sys.argv[1]), tensors(sys.argv[2])
suffix = "encoder.layer.1.output.dense.weight"
ka = [k for k in a if k.endswith(suffix)]
kb = [k for k in b if k.endswith(suffix)]
assert len(ka) == 1 and len(kb) == 1, (ka, kb)
assert a[ka[0]] == b[kb[0]]
PY
"$oar" train -c "$tmp/from_mlm.yaml" -o model.pretrained="$d" --plain > "$tmp/notbert.out" 2> "$tmp/notbert.err"
[ $? -eq 2 ] && grep -q "model.pretrained" "$tmp/notbert.err" && ok \
  || fail "a directory without weights as pretrained: $(cat "$tmp/notbert.err")"

# Bad input: an unknown tag names the file and line; a malformed SQuAD file names the entry.
printf 'text_a\tlabel\n张\x02三\tB-PER\x02B-XYZ\n' > "$tmp/bad.tsv"
"$oar" eval -c "$tmp/run_ner" -o data.test.file="$tmp/bad.tsv" --plain > "$tmp/bad.out" 2> "$tmp/bad.err"
rc=$?
[ $rc -eq 2 ] && [ "$(grep -c . "$tmp/bad.err")" -eq 1 ] && grep -q "bad.tsv:2: unknown tag 'B-XYZ'" "$tmp/bad.err" \
  && ok || fail "unknown tag: exit $rc: $(cat "$tmp/bad.err")"
echo '{"data": [{"paragraphs": [{"context": "a b", "qas": [{"id": "x"}]}]}]}' > "$tmp/bad.json"
"$oar" eval -c "$tmp/run_qa" -o data.test.file="$tmp/bad.json" --plain > "$tmp/badq.out" 2> "$tmp/badq.err"
rc=$?
[ $rc -eq 2 ] && [ "$(grep -c . "$tmp/badq.err")" -eq 1 ] && grep -q "qas\[0\]: no 'question'" "$tmp/badq.err" \
  && ok || fail "bad squad: exit $rc: $(cat "$tmp/badq.err")"
"$oar" train -c "$tmp/ner.yaml" -o task.head=crf2 --plain > "$tmp/head.out" 2> "$tmp/head.err"
[ $? -eq 2 ] && grep -q "task.head" "$tmp/head.err" && ok || fail "unknown head: $(cat "$tmp/head.err")"

echo "nlp tasks cli: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
