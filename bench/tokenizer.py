#!/usr/bin/env python3
"""Tokenizer benchmark, Hugging Face side, and the corpus both sides read.

  tokenizer.py corpus GOLDEN.jsonl OUT.txt [MB]   write a deterministic corpus of >= MB megabytes
                                                   (default 100), one text a line, from the golden
                                                   texts, perturbed (case, word order, joins)
  tokenizer.py run CORPUS VOCAB SAMPLE.jsonl       time HF tokenizers (BertNormalizer lowercase,
                                                   BertPreTokenizer, WordPiece) on one thread;
                                                   print one JSON line; write the ids of every
                                                   997th line to SAMPLE.jsonl
"""
import json
import os
import random
import sys
import time


def make_corpus(golden, out, megabytes):
    texts = []
    with open(golden, encoding="utf-8") as f:
        for line in f:
            t = json.loads(line)["text"].replace("\n", " ")
            if t.strip():
                texts.append(t)
    rng = random.Random(12345)
    target = int(megabytes * 1e6)
    size = 0
    with open(out, "w", encoding="utf-8", newline="") as f:
        while size < target:
            t = rng.choice(texts)
            r = rng.random()
            if r < 0.25:
                words = t.split(" ")
                rng.shuffle(words)
                t = " ".join(words)
            elif r < 0.4:
                t = t.upper() if rng.random() < 0.5 else t.title()
            elif r < 0.6:
                t = t + " " + rng.choice(texts)
            line = t + "\n"
            f.write(line)
            size += len(line.encode("utf-8"))


def read_lines(path):
    with open(path, encoding="utf-8", newline="") as f:
        data = f.read()
    lines = data.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return lines, len(data.encode("utf-8"))


def run(corpus, vocab, sample_path):
    from tokenizers import Tokenizer, __version__, models, normalizers, pre_tokenizers

    t = Tokenizer(models.WordPiece.from_file(vocab, unk_token="[UNK]", max_input_chars_per_word=100))
    t.normalizer = normalizers.BertNormalizer(clean_text=True, handle_chinese_chars=True,
                                              strip_accents=None, lowercase=True)
    t.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    lines, nbytes = read_lines(corpus)
    chunk = 4096
    tokens = 0
    sample = {}
    elapsed = 0.0
    for begin in range(0, len(lines), chunk):
        batch = lines[begin:begin + chunk]
        start = time.perf_counter()
        enc = t.encode_batch(batch, add_special_tokens=False)
        elapsed += time.perf_counter() - start
        for i, e in enumerate(enc):
            tokens += len(e.ids)
            if (begin + i) % 997 == 0:
                sample[begin + i] = e.ids
    with open(sample_path, "w") as f:
        for k in sorted(sample):
            f.write(json.dumps({"line": k, "ids": sample[k]}) + "\n")
    print(json.dumps({"name": f"HF tokenizers {__version__}", "threads": 1, "bytes": nbytes,
                      "lines": len(lines), "tokens": tokens, "seconds": elapsed,
                      "mb_per_s": nbytes / 1e6 / elapsed}))


if __name__ == "__main__":
    if len(sys.argv) >= 4 and sys.argv[1] == "corpus":
        make_corpus(sys.argv[2], sys.argv[3], float(sys.argv[4]) if len(sys.argv) > 4 else 100)
    elif len(sys.argv) == 5 and sys.argv[1] == "run":
        run(sys.argv[2], sys.argv[3], sys.argv[4])
    else:
        sys.exit(__doc__)
