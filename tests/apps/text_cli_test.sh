#!/usr/bin/env bash
# `oar text segment` (Baidu's LAC from python3-jieba): the golden sentences of
# tests/nlp/lac/data/lac_golden.json as text and JSON lines, order kept across threads and
# batches, files and stdin, --output, and invalid UTF-8 replaced, skipped or fatal with the line.
# Usage: text_cli_test.sh OAR_BINARY SOURCE_DIR
set -u
oar=$1
src=$2
lac=${OAR_LAC_DIR:-/usr/lib/python3/dist-packages/jieba/lac_small}
if [ ! -f "$lac/model_baseline/crfw" ]; then
  echo "SKIP: no LAC model at $lac (Debian python3-jieba)"
  exit 0
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
passed=0
failed=0
fail() { echo "FAIL: $*"; failed=$((failed + 1)); }
ok() { passed=$((passed + 1)); }
golden=$src/tests/nlp/lac/data/lac_golden.json

# The golden sentences, and what the numpy reference says for each, as text lines.
python3 - "$golden" "$tmp" <<'PY'
import json, sys
cases = json.load(open(sys.argv[1], encoding="utf8"))["cases"]
d = sys.argv[2]
with open(d + "/in.txt", "w", encoding="utf8") as f:
    for c in cases:
        f.write(c["text"] + "\n")
with open(d + "/want.txt", "w", encoding="utf8") as f:
    for c in cases:
        f.write(" ".join("%s/%s" % wt for wt in zip(c["words"], c["word_tags"])) + "\n")
# 300 lines in a fixed shuffled order (with empty lines) for the ordering check.
import random
r = random.Random(3)
lines = [c["text"] for c in cases] + [""]
with open(d + "/many.txt", "w", encoding="utf8") as f:
    for _ in range(300):
        f.write(r.choice(lines) + "\n")
PY

"$oar" text segment "$tmp/in.txt" > "$tmp/got.txt" 2> "$tmp/err.txt" \
  && cmp -s "$tmp/got.txt" "$tmp/want.txt" && ok \
  || fail "golden sentences: $(diff "$tmp/got.txt" "$tmp/want.txt" | head -5) $(cat "$tmp/err.txt")"

"$oar" text segment --format json < "$tmp/in.txt" > "$tmp/got.jsonl" \
  && python3 - "$golden" "$tmp/got.jsonl" <<'PY' && ok || fail "json lines"
import json, sys
cases = json.load(open(sys.argv[1], encoding="utf8"))["cases"]
got = [json.loads(l) for l in open(sys.argv[2], encoding="utf8")]
assert len(got) == len(cases), (len(got), len(cases))
for c, g in zip(cases, got):
    assert g["words"] == c["words"] and g["tags"] == c["word_tags"], (c["text"], g)
PY

"$oar" text segment "$tmp/many.txt" > "$tmp/one.txt" && \
"$oar" text segment --threads 3 --batch-size 7 "$tmp/many.txt" > "$tmp/three.txt" && \
  [ "$(wc -l < "$tmp/three.txt")" -eq 300 ] && cmp -s "$tmp/one.txt" "$tmp/three.txt" && ok \
  || fail "threads and batches change the output or its order"

# Several inputs, stdin among them, into one atomically written file.
printf '今天天气不错\n' | "$oar" text segment "$tmp/in.txt" - "$tmp/in.txt" -o "$tmp/out.txt" \
  && [ "$(sed -n "$(( $(wc -l < "$tmp/in.txt") + 1 ))p" "$tmp/out.txt")" = "今天/TIME 天气/n 不错/a" ] \
  && [ "$(wc -l < "$tmp/out.txt")" -eq $(( 2 * $(wc -l < "$tmp/in.txt") + 1 )) ] && ok \
  || fail "files, stdin and --output: $(head -3 "$tmp/out.txt")"

# Invalid UTF-8 on line 2: replaced (with a warning naming the line), skipped, or fatal after
# line 1 was written.
printf '北京\n\xe4\xb8 坏\xff字节\n上海\n' > "$tmp/bad.txt"
"$oar" text segment "$tmp/bad.txt" > "$tmp/r.out" 2> "$tmp/r.err" \
  && grep -q "bad.txt:2: invalid UTF-8 at byte 1 (replaced" "$tmp/r.err" \
  && [ "$(wc -l < "$tmp/r.out")" -eq 3 ] && grep -q $'\xef\xbf\xbd' "$tmp/r.out" && ok \
  || fail "replace: $(cat "$tmp/r.out" "$tmp/r.err")"
"$oar" text segment --invalid-utf8 skip "$tmp/bad.txt" > "$tmp/s.out" 2> "$tmp/s.err" \
  && grep -q "bad.txt:2: .*line skipped" "$tmp/s.err" && [ "$(wc -l < "$tmp/s.out")" -eq 2 ] && ok \
  || fail "skip: $(cat "$tmp/s.out" "$tmp/s.err")"
"$oar" text segment --invalid-utf8 error "$tmp/bad.txt" > "$tmp/e.out" 2> "$tmp/e.err"
rc=$?
[ $rc -eq 2 ] && grep -q "^error: .*bad.txt:2: invalid UTF-8 at byte 1" "$tmp/e.err" \
  && [ "$(cat "$tmp/e.out")" = "北京/LOC" ] && ok \
  || fail "error: rc=$rc $(cat "$tmp/e.out" "$tmp/e.err")"

"$oar" text segment --model "$tmp/nowhere" < /dev/null 2> "$tmp/m.err"
rc=$?
[ $rc -eq 2 ] && grep -q "no LAC model at $tmp/nowhere" "$tmp/m.err" && ok || fail "missing model: rc=$rc"
"$oar" text segment "$tmp/absent.txt" > /dev/null 2> "$tmp/a.err"
rc=$?
[ $rc -eq 2 ] && grep -q "absent.txt: no such input file" "$tmp/a.err" && ok || fail "missing input: rc=$rc"

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
