#!/usr/bin/env python3
"""Small synthetic data for the NER, QA and pairwise-matching configs (configs/nlp/tiny_*.yaml).

  python3 scripts/data/make_nlp_task_data.py data/nlp_tasks [--scale 1.0]

Writes, seeded (the same files every run):
  vocab.txt                      WordPiece vocabulary covering every text below (< 512 tokens)
  ner/{train,dev,test}.tsv       MSRA-NER format: characters and tags joined by \\x02, a tab between
  ner/{train,dev,test}.conll     CoNLL columns (English sentences): word, tag
  qa/{train,dev}.json            SQuAD v1.1 JSON, a person's three facts amid filler; contexts
                                 longer than one window of the QA config
  matching/train.tsv             text_a, text_pos, text_neg triplets
  matching/{dev,test}.tsv        qid, text_a, text_b, label groups (1 relevant of 4)
The sentences come from templates over small name/place/organisation lists; entities of the dev and
test splits are drawn from the same lists, so the tasks are learnable by a small model in minutes.
"""
import argparse
import json
import os
import random

SURNAMES = "张李王刘陈杨赵黄周吴"
GIVEN = "伟芳娜敏静丽强磊军洋"
CN_PLACES = ["北京", "上海", "广州", "深圳", "杭州", "南京", "成都", "武汉", "西安", "重庆"]
CN_ORGS = ["百度", "腾讯", "华为", "小米", "新华社", "人民银行", "北京大学", "清华大学"]
CN_TEMPLATES = [
    "{PER}住在{LOC}。", "{PER}在{ORG}工作。", "{PER}和{PER}去了{LOC}。", "{LOC}的{PER}是{ORG}的人。",
    "今天{LOC}天气很好。", "{ORG}在{LOC}有一个新的办公室。", "我们明天去{LOC}看{PER}。",
]
NAMES = ["john", "mary", "alice", "bob", "carol", "david", "emma", "frank", "grace", "henry"]
CITIES = ["paris", "berlin", "london", "tokyo", "madrid", "rome", "vienna", "oslo", "cairo", "lima"]
ORGS = ["acme", "google", "siemens", "nokia", "toyota", "unesco", "fifa", "nasa"]
COLORS = ["red", "blue", "green", "black", "white", "yellow"]
EN_TEMPLATES = [
    "{PER} lives in {LOC} .", "{PER} works at {ORG} .", "{PER} and {PER} visited {LOC} .",
    "{ORG} opened an office in {LOC} .", "the weather in {LOC} is nice today .",
    "we will meet {PER} in {LOC} tomorrow .",
]
FILLER = ["the", "weather", "is", "nice", "today", "and", "people", "like", "to", "walk", "in",
          "park", "every", "morning", "before", "work", "."]


def cap(w):
    return w[0].upper() + w[1:]


def cn_sentence(rng):
    chars, tags = [], []
    for piece in _split(rng.choice(CN_TEMPLATES)):
        if piece in ("{PER}", "{LOC}", "{ORG}"):
            kind = piece[1:4]
            word = (rng.choice(SURNAMES) + rng.choice(GIVEN) if kind == "PER" else
                    rng.choice(CN_PLACES) if kind == "LOC" else rng.choice(CN_ORGS))
            for i, ch in enumerate(word):
                chars.append(ch)
                tags.append(("B-" if i == 0 else "I-") + kind)
        else:
            for ch in piece:
                chars.append(ch)
                tags.append("O")
    return chars, tags


def en_sentence(rng):
    words, tags = [], []
    for piece in _split(rng.choice(EN_TEMPLATES)):
        if piece in ("{PER}", "{LOC}", "{ORG}"):
            kind = piece[1:4]
            pool = NAMES if kind == "PER" else CITIES if kind == "LOC" else ORGS
            words.append(cap(rng.choice(pool)))
            tags.append("B-" + kind)
        else:
            for w in piece.split():
                words.append(w)
                tags.append("O")
    return words, tags


def _split(template):
    out, i = [], 0
    while i < len(template):
        if template[i] == "{":
            j = template.index("}", i)
            out.append(template[i:j + 1])
            i = j + 1
        else:
            j = template.find("{", i)
            j = len(template) if j < 0 else j
            out.append(template[i:j])
            i = j
    return out


def qa_paragraph(rng, qid):
    # One person per paragraph: answering needs the relation (live / work / color) and the window
    # that holds it, not binding names across sentences (beyond a 2-layer model trained for minutes).
    people = rng.sample(NAMES, 1)
    facts, qas = [], []
    for p in people:
        city, org, color = rng.choice(CITIES), rng.choice(ORGS), rng.choice(COLORS)
        facts.append((f"{cap(p)} lives in {cap(city)}.", f"where does {p} live?", cap(city)))
        facts.append((f"{cap(p)} works at {cap(org)}.", f"where does {p} work?", cap(org)))
        facts.append((f"{cap(p)} likes {color} cars.", f"what color does {p} like?", color))
    rng.shuffle(facts)
    context = ""
    for sentence, question, answer in facts:
        # filler makes contexts longer than one window
        context += " ".join(rng.choice(FILLER) for _ in range(rng.randint(6, 14))) + ". "
        start = len(context) + sentence.index(answer, len(sentence.split()[0]))
        context += sentence + " "
        qas.append({"id": f"q{qid}-{len(qas)}", "question": question,
                    "answers": [{"text": answer, "answer_start": start}]})
    context = context.rstrip()
    for q in qas:
        a = q["answers"][0]
        assert context[a["answer_start"]:a["answer_start"] + len(a["text"])] == a["text"]
    return {"context": context, "qas": qas}


def matching_group(rng):
    p = rng.choice(NAMES)
    city, org = rng.choice(CITIES), rng.choice(ORGS)
    if rng.random() < 0.5:
        query, pos = f"where does {p} live", f"{p} lives in {city}"
        negs = [f"{p} works at {org}", f"{rng.choice([n for n in NAMES if n != p])} lives in {city}"]
    else:
        query, pos = f"where does {p} work", f"{p} works at {org}"
        negs = [f"{p} lives in {city}", f"{rng.choice([n for n in NAMES if n != p])} works at {org}"]
    negs.append(f"the weather in {rng.choice(CITIES)} is nice today")
    return query, pos, negs


def vocab():
    words = set(NAMES + CITIES + ORGS + COLORS + FILLER)
    for t in EN_TEMPLATES + ["where does what color like live work works lives cars"]:
        for w in _split(t):
            if not w.startswith("{"):
                words.update(w.replace("?", " ").replace(".", " ").split())
    chars = set(SURNAMES + GIVEN + "".join(CN_PLACES + CN_ORGS))
    for t in CN_TEMPLATES:
        for piece in _split(t):
            if not piece.startswith("{"):
                chars.update(piece)
    toks = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", ".", ",", "?", "!"]
    toks += sorted(chars - set(toks)) + sorted(words - set(toks))
    assert len(toks) < 512, len(toks)
    return toks


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("out")
    ap.add_argument("--scale", type=float, default=1.0, help="multiplies the number of examples")
    ap.add_argument("--seed", type=int, default=2026)
    a = ap.parse_args()
    rng = random.Random(a.seed)
    n = lambda k: max(4, int(k * a.scale))
    for sub in ("ner", "qa", "matching"):
        os.makedirs(os.path.join(a.out, sub), exist_ok=True)
    with open(os.path.join(a.out, "vocab.txt"), "w", encoding="utf-8") as f:
        f.write("\n".join(vocab()) + "\n")

    for split, k in (("train", n(600)), ("dev", n(100)), ("test", n(100))):
        with open(os.path.join(a.out, "ner", split + ".tsv"), "w", encoding="utf-8") as f:
            f.write("text_a\tlabel\n")
            for _ in range(k):
                chars, tags = cn_sentence(rng)
                f.write("\x02".join(chars) + "\t" + "\x02".join(tags) + "\n")
        with open(os.path.join(a.out, "ner", split + ".conll"), "w", encoding="utf-8") as f:
            f.write("-DOCSTART- O\n\n")
            for _ in range(k):
                words, tags = en_sentence(rng)
                f.write("".join(f"{w} {t}\n" for w, t in zip(words, tags)) + "\n")

    for split, k in (("train", n(400)), ("dev", n(60))):
        data = {"version": "1.1", "data": [{"title": split, "paragraphs": [
            qa_paragraph(rng, f"{split}{i}") for i in range(k)]}]}
        with open(os.path.join(a.out, "qa", split + ".json"), "w", encoding="utf-8") as f:
            json.dump(data, f, ensure_ascii=False, indent=1)

    with open(os.path.join(a.out, "matching", "train.tsv"), "w", encoding="utf-8") as f:
        f.write("text_a\ttext_pos\ttext_neg\n")
        for _ in range(n(800)):
            q, pos, negs = matching_group(rng)
            f.write(f"{q}\t{pos}\t{rng.choice(negs)}\n")
    for split, k in (("dev", n(60)), ("test", n(60))):
        with open(os.path.join(a.out, "matching", split + ".tsv"), "w", encoding="utf-8") as f:
            f.write("qid\ttext_a\ttext_b\tlabel\n")
            for i in range(k):
                q, pos, negs = matching_group(rng)
                rows = [(pos, 1)] + [(x, 0) for x in negs]
                rng.shuffle(rows)
                f.write("".join(f"{split}{i}\t{q}\t{t}\t{l}\n" for t, l in rows))


if __name__ == "__main__":
    main()
