#!/usr/bin/env python3
"""Sentence polarity TSVs for text classification, from Debian's python3-pattern corpora.

Reads /usr/share/doc/python3-pattern/test/corpora/polarity-en-pang&lee2.csv (short movie-review
sentences of Pang & Lee's sentence polarity data; rows "label","text" with label 1 or -1),
shuffles with a fixed seed and writes OUT/{train,dev,test}.tsv (80/10/10) with the header
`text_a<TAB>label` (label 1 = positive, 0 = negative). Tabs and newlines inside a text become
spaces. Idempotent: does nothing when the three files exist (use --force to rewrite).
"""
import argparse
import csv
import os
import random
import sys

CORPUS = "/usr/share/doc/python3-pattern/test/corpora/polarity-en-pang&lee2.csv"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--corpus", default=CORPUS)
    ap.add_argument("--out", default="data/polarity")
    ap.add_argument("--seed", type=int, default=13)
    ap.add_argument("--force", action="store_true")
    a = ap.parse_args()
    names = ["train.tsv", "dev.tsv", "test.tsv"]
    if not a.force and all(os.path.exists(os.path.join(a.out, n)) for n in names):
        return
    if not os.path.exists(a.corpus):
        sys.exit(f"make_polarity_tsv: {a.corpus} is missing; apt-get install python3-pattern")
    rows = []
    with open(a.corpus, encoding="utf-8-sig", newline="") as f:
        for rec in csv.reader(f):
            if len(rec) < 2:
                continue
            text = " ".join(rec[1].split())
            if not text:
                continue
            rows.append((text, 1 if float(rec[0]) > 0 else 0))
    random.Random(a.seed).shuffle(rows)
    n = len(rows)
    cut1, cut2 = int(n * 0.8), int(n * 0.9)
    os.makedirs(a.out, exist_ok=True)
    for name, part in zip(names, (rows[:cut1], rows[cut1:cut2], rows[cut2:])):
        tmp = os.path.join(a.out, name + ".tmp")
        with open(tmp, "w", encoding="utf-8") as f:
            f.write("text_a\tlabel\n")
            for text, label in part:
                f.write(f"{text}\t{label}\n")
        os.replace(tmp, os.path.join(a.out, name))
    pos = sum(l for _, l in rows)
    print(f"make_polarity_tsv: {n} sentences ({pos} positive) -> {a.out}/{{train,dev,test}}.tsv")


if __name__ == "__main__":
    main()
