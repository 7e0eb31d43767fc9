#!/usr/bin/env bash
# `oar text normalize | tokenize | build-vocab | split | stats` on small generated files: outputs,
# order with several threads, invalid UTF-8 replaced/skipped/fatal with file:line, atomic
# output, and the error paths (missing file, bad column, bad options).
# Usage: text_tools_test.sh OAR_BINARY SOURCE_DIR
set -u
oar=$1
src=$2
vocab=$src/tests/nlp/data/minilm_vocab.txt
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
passed=0
failed=0
fail() { echo "FAIL: $*"; failed=$((failed + 1)); }
ok() { passed=$((passed + 1)); }

# 3000 varied lines (English, Chinese, full-width, accents) in a fixed order, each numbered.
python3 - "$tmp" <<'PY'
import random, sys
d = sys.argv[1]
r = random.Random(5)
words = ["Hello", "world", "tokenization", "北京", "天气", "ＡＢＣ", "café", "e\u0301t\u00e9",
         "naïve", "２０２６", "the", "quick", "fox", "unbelievable", "!", ","]
with open(d + "/many.txt", "w", encoding="utf8") as f:
    for i in range(3000):
        f.write("%d %s\n" % (i, " ".join(r.choice(words) for _ in range(r.randint(0, 12)))))
with open(d + "/data.tsv", "w", encoding="utf8") as f:
    f.write("text_a\ttext_b\tlabel\n")
    for i in range(200):
        lab = "pos" if i % 4 else "neg"   # 150 pos, 50 neg
        f.write("%d Hello world\tquick fox %d\t%s\n" % (i, i, lab))
PY
printf 'ＡＢＣ\tx\n\xe4\xb8 bad\xff\ne\xcc\x81\x01t\xc3\xa9\n' > "$tmp/bad.txt"

# ---- normalize ----
"$oar" text normalize "$tmp/bad.txt" > "$tmp/n.out" 2> "$tmp/n.err" \
  && [ "$(sed -n 1p "$tmp/n.out")" = "$(printf 'ABC\tx')" ] \
  && [ "$(sed -n 3p "$tmp/n.out")" = "été" ] \
  && grep -q "bad.txt:2: invalid UTF-8 at byte 1 (replaced" "$tmp/n.err" \
  && [ "$(sed -n 2p "$tmp/n.out")" = "$(printf '\xef\xbf\xbd\xef\xbf\xbd bad\xef\xbf\xbd')" ] && ok \
  || fail "normalize replace: $(cat "$tmp/n.out" "$tmp/n.err")"
"$oar" text normalize --invalid-utf8 skip --form nfkc --collapse-whitespace "$tmp/bad.txt" \
  > "$tmp/n2.out" 2> "$tmp/n2.err" && [ "$(wc -l < "$tmp/n2.out")" -eq 2 ] \
  && grep -q "bad.txt:2: .*line skipped" "$tmp/n2.err" && ok || fail "normalize skip"
"$oar" text normalize --invalid-utf8 error "$tmp/bad.txt" > "$tmp/n3.out" 2> "$tmp/n3.err"
rc=$?
[ $rc -eq 2 ] && grep -q "^error: .*bad.txt:2: invalid UTF-8 at byte 1" "$tmp/n3.err" \
  && [ "$(cat "$tmp/n3.out")" = "$(printf 'ABC\tx')" ] && ok \
  || fail "normalize error: rc=$rc $(cat "$tmp/n3.err")"
# With -o, a fatal line publishes exactly the lines before it (as on stdout), atomically: no
# temporary file is left; a tool that fails before its first line leaves the old file as it was.
echo old > "$tmp/keep.txt"
"$oar" text normalize --invalid-utf8 error "$tmp/bad.txt" -o "$tmp/keep.txt" 2> /dev/null
[ $? -eq 2 ] && [ "$(cat "$tmp/keep.txt")" = "$(printf 'ABC\tx')" ] && [ "$(ls "$tmp" | grep -c keep)" -eq 1 ] \
  && ok || fail "output on a fatal line: $(ls "$tmp"; cat "$tmp/keep.txt")"
echo old > "$tmp/keep2.txt"
"$oar" text tokenize --vocab "$vocab" --columns nope "$tmp/data.tsv" -o "$tmp/keep2.txt" 2> /dev/null
[ $? -eq 2 ] && [ "$(cat "$tmp/keep2.txt")" = old ] && [ "$(ls "$tmp" | grep -c keep2)" -eq 1 ] && ok \
  || fail "old output kept on an early error"
"$oar" text normalize "$tmp/many.txt" > "$tmp/n1.txt" && \
"$oar" text normalize --threads 3 --batch-size 17 "$tmp/many.txt" -o "$tmp/n3.txt" && \
  cmp -s "$tmp/n1.txt" "$tmp/n3.txt" && [ "$(wc -l < "$tmp/n3.txt")" -eq 3000 ] \
  && [ "$(cut -d' ' -f1 "$tmp/n3.txt" | tr '\n' ' ')" = "$(seq 0 2999 | tr '\n' ' ')" ] && ok \
  || fail "normalize threads change the output or its order"
python3 - "$tmp/many.txt" "$tmp/n1.txt" <<'PY' && ok || fail "normalize differs from Python's NFC + full-width mapping"
import sys, unicodedata
src = open(sys.argv[1], encoding="utf8").read().splitlines()
got = open(sys.argv[2], encoding="utf8").read().splitlines()
def want(s):
    s = "".join(chr(ord(c) - 0xFEE0) if 0xFF01 <= ord(c) <= 0xFF5E else (" " if c == "\u3000" else c) for c in s)
    return unicodedata.normalize("NFC", s)
assert [want(s) for s in src] == got
PY

# ---- tokenize ----
printf 'Hello, tokenization!\n北京\n' | "$oar" text tokenize --vocab "$vocab" > "$tmp/t.out" \
  && [ "$(cat "$tmp/t.out")" = "$(printf 'hello , token ##ization !\n北 京')" ] && ok \
  || fail "tokenize tokens: $(cat "$tmp/t.out")"
printf 'Hello\n' | "$oar" text tokenize --vocab "$vocab" --ids --special > "$tmp/t2.out" \
  && [ "$(cat "$tmp/t2.out")" = "101 7592 102" ] && ok || fail "tokenize ids: $(cat "$tmp/t2.out")"
"$oar" text tokenize --vocab "$vocab" --ids "$tmp/many.txt" > "$tmp/t1.txt" && \
"$oar" text tokenize --vocab "$vocab" --ids --threads 4 --batch-size 9 "$tmp/many.txt" > "$tmp/t4.txt" && \
  cmp -s "$tmp/t1.txt" "$tmp/t4.txt" && [ "$(wc -l < "$tmp/t4.txt")" -eq 3000 ] && ok \
  || fail "tokenize threads change the output or its order"
"$oar" text tokenize --vocab "$vocab" --columns text_b,text_a "$tmp/data.tsv" > "$tmp/tc.out" \
  && [ "$(sed -n 1p "$tmp/tc.out")" = "$(printf 'text_b\ttext_a')" ] \
  && [ "$(sed -n 2p "$tmp/tc.out")" = "$(printf 'quick fox 0\t0 hello world')" ] \
  && [ "$(wc -l < "$tmp/tc.out")" -eq 201 ] && ok || fail "tokenize columns: $(head -2 "$tmp/tc.out")"
# Several TSV inputs: one header out, each input's header checked against the first.
"$oar" text tokenize --vocab "$vocab" --columns text_a "$tmp/data.tsv" "$tmp/data.tsv" > "$tmp/tc2.out" \
  && [ "$(wc -l < "$tmp/tc2.out")" -eq 401 ] && [ "$(grep -c '^text_a$' "$tmp/tc2.out")" -eq 1 ] && ok \
  || fail "tokenize columns over two inputs: $(wc -l < "$tmp/tc2.out")"
printf 'text\tlabel\nx\ty\n' > "$tmp/other.tsv"
"$oar" text tokenize --vocab "$vocab" --columns 1 "$tmp/data.tsv" "$tmp/other.tsv" > /dev/null 2> "$tmp/th.err"
[ $? -eq 2 ] && grep -q "other.tsv:1: header differs from .*data.tsv's" "$tmp/th.err" && ok \
  || fail "tokenize header mismatch: $(cat "$tmp/th.err")"
"$oar" text tokenize --vocab "$vocab" --columns text_c "$tmp/data.tsv" > /dev/null 2> "$tmp/tc.err"
rc=$?
[ $rc -eq 2 ] && grep -q "data.tsv:1: no column 'text_c' in the header (columns: 'text_a', 'text_b', 'label')" "$tmp/tc.err" \
  && ok || fail "tokenize bad column: rc=$rc $(cat "$tmp/tc.err")"
printf 'a\tb\nonly-one\n' > "$tmp/short.tsv"
"$oar" text tokenize --vocab "$vocab" --columns b "$tmp/short.tsv" > /dev/null 2> "$tmp/ts.err"
rc=$?
[ $rc -eq 2 ] && grep -q "short.tsv:2: has 1 column, column 'b' is number 2" "$tmp/ts.err" && ok \
  || fail "tokenize short row: rc=$rc $(cat "$tmp/ts.err")"
"$oar" text tokenize --vocab "$vocab" "$tmp/absent.txt" > /dev/null 2> "$tmp/ta.err"
rc=$?
[ $rc -eq 2 ] && grep -q "absent.txt: no such input file" "$tmp/ta.err" && ok || fail "tokenize missing input: rc=$rc"
"$oar" text tokenize "$tmp/many.txt" > /dev/null 2> "$tmp/tn.err"
rc=$?
[ $rc -eq 2 ] && grep -q "exactly one of --vocab" "$tmp/tn.err" && ok || fail "tokenize without a model: rc=$rc"

# ---- build-vocab (WordPiece) ----
"$oar" text build-vocab --vocab-size 150 --threads 2 "$tmp/many.txt" -o "$tmp/v.txt" 2> "$tmp/v.err" \
  && [ "$(wc -l < "$tmp/v.txt")" -eq 150 ] \
  && [ "$(head -5 "$tmp/v.txt" | tr '\n' ' ')" = "[PAD] [UNK] [CLS] [SEP] [MASK] " ] \
  && grep -qx "hello" "$tmp/v.txt" && grep -qx "北" "$tmp/v.txt" && ok \
  || fail "build-vocab: $(head -20 "$tmp/v.txt" | tr '\n' ' ') $(cat "$tmp/v.err")"
"$oar" text build-vocab --vocab-size 150 "$tmp/many.txt" -o "$tmp/v1.txt" 2> /dev/null \
  && cmp -s "$tmp/v.txt" "$tmp/v1.txt" && ok || fail "build-vocab depends on threads"
# The trained vocabulary tokenizes its corpus without [UNK].
"$oar" text tokenize --vocab "$tmp/v.txt" "$tmp/many.txt" > "$tmp/vt.txt" \
  && ! grep -q "\[UNK\]" "$tmp/vt.txt" && ok || fail "trained vocab gives [UNK]"
"$oar" text build-vocab --vocab-size 3 "$tmp/many.txt" -o "$tmp/v3.txt" 2> "$tmp/v3.err"
[ $? -eq 2 ] && grep -q "vocab-size 3 is smaller than the 5 special tokens" "$tmp/v3.err" && [ ! -e "$tmp/v3.txt" ] \
  && ok || fail "build-vocab too small: $(cat "$tmp/v3.err")"

# ---- SentencePiece (when this build has it) ----
if "$oar" text tokenize --help | grep -q "this build has no libsentencepiece"; then
  echo "SKIP: SentencePiece checks (no libsentencepiece in this build)"
else
  "$oar" text build-vocab --spm --spm-type bpe --vocab-size 80 --character-coverage 1.0 \
    "$tmp/many.txt" -o "$tmp/spm" 2> "$tmp/spm.err" && [ -s "$tmp/spm.model" ] && [ -s "$tmp/spm.vocab" ] \
    && [ "$(wc -l < "$tmp/spm.vocab")" -eq 80 ] && [ -z "$(ls "$tmp" | grep tmp-)" ] && ok \
    || fail "spm train: $(tail -3 "$tmp/spm.err")"
  "$oar" text tokenize --spm "$tmp/spm.model" "$tmp/many.txt" > "$tmp/s1.txt" && \
  "$oar" text tokenize --spm "$tmp/spm.model" --threads 3 "$tmp/many.txt" > "$tmp/s3.txt" && \
    cmp -s "$tmp/s1.txt" "$tmp/s3.txt" && [ "$(wc -l < "$tmp/s3.txt")" -eq 3000 ] \
    && grep -q "▁quick" "$tmp/s1.txt" && ok || fail "spm tokenize: $(head -2 "$tmp/s1.txt")"
  printf 'quick fox\n' | "$oar" text tokenize --spm "$tmp/spm.model" --ids | grep -Eq '^[0-9]+( [0-9]+)*$' \
    && ok || fail "spm ids"
  "$oar" text tokenize --spm "$tmp/absent.model" "$tmp/many.txt" > /dev/null 2> "$tmp/sa.err"
  [ $? -eq 2 ] && grep -q "absent.model: no such SentencePiece model" "$tmp/sa.err" && ok || fail "spm missing model"
fi

# ---- split ----
"$oar" text split --header --stratify label --seed 7 --out-dir "$tmp/sp" "$tmp/data.tsv" 2> /dev/null \
  && python3 - "$tmp" <<'PY' && ok || fail "split stratified"
import sys
d = sys.argv[1]
src = open(d + "/data.tsv").read().splitlines()
parts = {n: open("%s/sp/%s.tsv" % (d, n)).read().splitlines() for n in ("train", "dev", "test")}
for n, p in parts.items():
    assert p[0] == src[0], n
labels = {n: [l.split("\t")[2] for l in p[1:]] for n, p in parts.items()}
assert (labels["train"].count("pos"), labels["train"].count("neg")) == (120, 40), labels["train"]
assert (labels["dev"].count("pos"), labels["dev"].count("neg")) == (15, 5)
assert (labels["test"].count("pos"), labels["test"].count("neg")) == (15, 5)
rows = sorted(l for p in parts.values() for l in p[1:])
assert rows == sorted(src[1:])  # a partition: every row once
for p in parts.values():   # each part keeps input order
    assert [int(l.split()[0]) for l in p[1:]] == sorted(int(l.split()[0]) for l in p[1:])
PY
"$oar" text split --header --stratify label --seed 7 --out-dir "$tmp/sp2" "$tmp/data.tsv" 2> /dev/null \
  && diff -r "$tmp/sp" "$tmp/sp2" > /dev/null && \
"$oar" text split --header --stratify label --seed 8 --out-dir "$tmp/sp3" "$tmp/data.tsv" 2> /dev/null \
  && ! cmp -s "$tmp/sp/train.tsv" "$tmp/sp3/train.tsv" && ok || fail "split seeding"
"$oar" text split --ratios 0.5,0.5 --names a,b --out-dir "$tmp/sp4" "$tmp/many.txt" 2> /dev/null \
  && [ "$(wc -l < "$tmp/sp4/a.txt")" -eq 1500 ] && [ "$(wc -l < "$tmp/sp4/b.txt")" -eq 1500 ] && ok \
  || fail "split unstratified"
"$oar" text split --header --stratify lable --out-dir "$tmp/sp5" "$tmp/data.tsv" 2> "$tmp/sp5.err"
[ $? -eq 2 ] && grep -q "no column 'lable'" "$tmp/sp5.err" && ok || fail "split bad column"
"$oar" text split --out-dir "$tmp/sp6" - < "$tmp/many.txt" 2> "$tmp/sp6.err"
[ $? -eq 2 ] && grep -q "cannot read stdin" "$tmp/sp6.err" && ok || fail "split stdin: $(cat "$tmp/sp6.err")"

# ---- stats ----
"$oar" text stats --header --text-column text_a --label-column label --vocab "$vocab" \
  --threads 3 "$tmp/data.tsv" > "$tmp/st.json" && python3 - "$tmp/st.json" <<'PY' && ok || fail "stats: $(cat "$tmp/st.json")"
import json, sys
s = json.load(open(sys.argv[1]))
assert s["lines"] == 200 and s["labels"] == {"neg": 50, "pos": 150}, s
# "N Hello world": 3 WordPiece tokens each; chars 13 (N < 10), 14, 15.
assert s["tokens"] == 600 and s["tokens_per_line"]["p50"] == 3, s
assert s["chars"] == 10 * 13 + 90 * 14 + 100 * 15, s["chars"]
assert s["chars_per_line"]["min"] == 13 and s["chars_per_line"]["max"] == 15
assert s["vocab"]["unk_pieces"] == 0 and s["vocab"]["oov_words"] == 0, s["vocab"]
PY
printf 'hello zzqxv\n\xff\n' | "$oar" text stats --vocab "$vocab" > "$tmp/st2.json" 2> /dev/null \
  && python3 - "$tmp/st2.json" <<'PY' && ok || fail "stats oov: $(cat "$tmp/st2.json")"
import json, sys
s = json.load(open(sys.argv[1]))
assert s["lines"] == 2 and s["invalid_utf8_lines"] == 1, s
assert s["vocab"]["words"] == 2 and s["vocab"]["oov_words"] == 1 and s["vocab"]["oov_word_rate"] == 0.5, s
PY
"$oar" text stats --header --label-column nope "$tmp/data.tsv" > /dev/null 2> "$tmp/st3.err"
[ $? -eq 2 ] && grep -q "data.tsv:1: no column 'nope'" "$tmp/st3.err" && ok || fail "stats bad column"
"$oar" text stats "$tmp/absent.txt" > /dev/null 2> "$tmp/st4.err"
[ $? -eq 2 ] && grep -q "absent.txt: no such input file" "$tmp/st4.err" && ok || fail "stats missing input"

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
