#!/usr/bin/env python3
"""Golden vocabulary for tests/nlp/text/wordpiece_trainer_test.cpp from Hugging Face `tokenizers`'
WordPieceTrainer (run by hand: python3 make_wordpiece_trainer_golden.py, with `tokenizers`
installed, e.g. bench/.venv). Writes zipf_words.tsv (word<TAB>count: 400 random words over a-j
with Zipf counts) and zipf_vocab100.txt (the trained vocabulary, vocab_size 100).

Hugging Face reads words in hash order, so the ids of the "##x" characters change between runs;
the script trains three times and checks that the set of tokens and the order of the merges
(everything after the specials, the alphabet and the "##x" characters) agree, which is what the
test compares."""
import os
import random
import tempfile

from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, trainers

here = os.path.dirname(os.path.abspath(__file__))
r = random.Random(11)
letters = "abcdefghij"
words = ["".join(r.choice(letters) for _ in range(r.randint(2, 9))) for _ in range(400)]
counts = {}
for i, w in enumerate(words):
    counts[w] = counts.get(w, 0) + int(5000 / (i + 1) ** 1.1) + r.randint(0, 3)
with open(os.path.join(here, "zipf_words.tsv"), "w") as f:
    for w, c in sorted(counts.items()):
        f.write("%s\t%d\n" % (w, c))

specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
runs = []
with tempfile.TemporaryDirectory() as d:
    corpus = os.path.join(d, "corpus.txt")
    with open(corpus, "w") as f:
        for w, c in counts.items():
            f.write((w + "\n") * c)
    for _ in range(3):
        tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
        tok.normalizer = normalizers.BertNormalizer(lowercase=True)
        tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
        tok.train([corpus], trainers.WordPieceTrainer(vocab_size=100, special_tokens=specials,
                                                      show_progress=False))
        v = tok.get_vocab()
        runs.append([t for t, _ in sorted(v.items(), key=lambda x: x[1])])
merges_from = len(specials) + 2 * len(letters)
for other in runs[1:]:
    assert set(other) == set(runs[0]) and other[merges_from:] == runs[0][merges_from:]
with open(os.path.join(here, "zipf_vocab100.txt"), "w") as f:
    f.write("".join(t + "\n" for t in runs[0]))
