#!/usr/bin/env python3
"""Golden values for metrics/text.cpp from reference implementations.

  python3 -m venv /tmp/venv && /tmp/venv/bin/pip install seqeval==1.2.2 scikit-learn
  /tmp/venv/bin/python scripts/golden/text_metrics_golden.py > tests/metrics/data/text_metrics_golden.json

References:
  chunks, chunk P/R/F1   seqeval (conlleval's rules; default, non-strict mode)
  macro/micro P/R/F1     scikit-learn precision_recall_fscore_support(labels=classes but excluded)
  SQuAD EM/F1            the official SQuAD v2.0 evaluate-v2.0.py functions (v1.1's, plus its
                         empty-answer rule), copied below
  CMRC EM/F1             CMRC 2018's cmrc2018_evaluate.py functions, copied below, with
                         nltk.word_tokenize replaced by str.split (as oar documents)
  MRR / MAP              ERNIE's DBQA definitions, written out below
"""
import collections
import json
import random
import re
import string

from seqeval.metrics import f1_score, precision_score, recall_score
from seqeval.metrics.sequence_labeling import get_entities
from sklearn.metrics import precision_recall_fscore_support

rng = random.Random(20261127)
out = {}

# ---- chunks ---------------------------------------------------------------------------------
def random_tags(prefixes, n):
    tags = []
    for _ in range(n):
        p = rng.choice(prefixes)
        tags.append("O" if p == "O" else p + "-" + rng.choice(["PER", "LOC", "ORG"]))
    return tags

chunk_cases = []
for scheme, prefixes in (("bio", ["B", "I", "O", "O"]), ("bioes", ["B", "I", "E", "S", "O", "O"])):
    for _ in range(40):
        gold = [random_tags(prefixes, rng.randint(0, 12)) for _ in range(rng.randint(1, 4))]
        pred = [[t if rng.random() < 0.7 else random_tags(prefixes, 1)[0] for t in s] for s in gold]
        chunk_cases.append({
            "gold": gold,
            "pred": pred,
            "gold_chunks": [[[t, b, e + 1] for t, b, e in get_entities(s)] for s in gold],
            "precision": precision_score(gold, pred),
            "recall": recall_score(gold, pred),
            "f1": f1_score(gold, pred),
        })
out["chunks"] = chunk_cases

# ---- macro / micro P/R/F1 -------------------------------------------------------------------
prf_cases = []
for _ in range(10):
    k = rng.randint(2, 5)
    n = rng.randint(1, 30)
    y = [rng.randrange(k) for _ in range(n)]
    p = [rng.randrange(k) for _ in range(n)]
    labels = list(range(1, k))  # class 0 excluded, as O in tagging
    case = {"num_classes": k, "label": y, "pred": p, "exclude": [0],
            "accuracy": sum(a == b for a, b in zip(y, p)) / n}
    for avg in ("macro", "micro"):
        pr, rc, f1, _ = precision_recall_fscore_support(y, p, labels=labels, average=avg,
                                                        zero_division=0)
        case[avg] = [float(pr), float(rc), float(f1)]
    prf_cases.append(case)
out["prf"] = prf_cases

# ---- ranking --------------------------------------------------------------------------------
def ranking(scores, labels):
    order = sorted(range(len(scores)), key=lambda i: -scores[i])  # stable: ties keep order
    rr, hits, ap = None, 0, 0.0
    for r, i in enumerate(order):
        if labels[i] > 0:
            hits += 1
            ap += hits / (r + 1)
            if rr is None:
                rr = 1.0 / (r + 1)
    return rr, (ap / hits if hits else None)

rank_cases = []
for _ in range(20):
    n = rng.randint(1, 8)
    scores = [round(rng.random(), 2) for _ in range(n)]  # two decimals: ties happen
    labels = [int(rng.random() < 0.35) for _ in range(n)]
    rr, ap = ranking(scores, labels)
    rank_cases.append({"scores": scores, "labels": labels, "rr": rr, "ap": ap})
out["ranking"] = rank_cases

# ---- SQuAD (evaluate-v2.0.py) ---------------------------------------------------------------
def normalize_answer(s):
    def remove_articles(text):
        regex = re.compile(r"\b(a|an|the)\b", re.UNICODE)
        return re.sub(regex, " ", text)
    def white_space_fix(text):
        return " ".join(text.split())
    def remove_punc(text):
        exclude = set(string.punctuation)
        return "".join(ch for ch in text if ch not in exclude)
    return white_space_fix(remove_articles(remove_punc(s.lower())))

def get_tokens(s):
    return normalize_answer(s).split() if s else []

def compute_exact(a_gold, a_pred):
    return int(normalize_answer(a_gold) == normalize_answer(a_pred))

def compute_f1(a_gold, a_pred):
    gold_toks, pred_toks = get_tokens(a_gold), get_tokens(a_pred)
    common = collections.Counter(gold_toks) & collections.Counter(pred_toks)
    num_same = sum(common.values())
    if len(gold_toks) == 0 or len(pred_toks) == 0:
        return int(gold_toks == pred_toks)
    if num_same == 0:
        return 0
    precision = 1.0 * num_same / len(pred_toks)
    recall = 1.0 * num_same / len(gold_toks)
    return (2 * precision * recall) / (precision + recall)

squad_pairs = [
    ("the Eiffel Tower", ["Eiffel Tower", "the tower"]),
    ("Denver Broncos", ["Denver Broncos", "The Denver Broncos"]),
    ("Broncos of Denver", ["Denver Broncos"]),
    ("an apple, a pear and the banana!", ["apple pear banana"]),
    ("Theatre anthem", ["the atre an them"]),
    ("  Santa   Clara,  California ", ["Santa Clara"]),
    ("1,000 years", ["1000 years"]),
    ("U.S.A.", ["USA"]),
    ("", []),
    ("something", []),
    ("", ["an answer"]),
    ("the", ["a"]),
    ("cat cat dog", ["cat dog dog"]),
    ("o'clock", ["oclock"]),
    ("Ünïcode words", ["ünïcode words"]),
    ("A_b", ["a_b"]),
    ("ΣΑ Жук Straße Ÿ", ["σα жук straße ÿ"]),
]
out["squad"] = [{
    "prediction": p,
    "golds": g,
    "em": max(compute_exact(a, p) for a in (g or [""])),
    "f1": max(compute_f1(a, p) for a in (g or [""])),
    "normalized": normalize_answer(p),
} for p, g in squad_pairs]

# ---- CMRC 2018 (cmrc2018_evaluate.py) -------------------------------------------------------
SP_CHAR = ['-', ':', '_', '*', '^', '/', '\\', '~', '`', '+', '=',
           '，', '。', '：', '？', '！', '“', '”', '；', '’', '《', '》', '……', '·', '、',
           '「', '」', '（', '）', '－', '～', '『', '』']

def mixed_segmentation(in_str, rm_punc=False):
    in_str = str(in_str).lower().strip()
    segs_out, temp_str = [], ""
    for char in in_str:
        if rm_punc and char in SP_CHAR:
            continue
        if re.search(r'[\u4e00-\u9fa5]', char) or char in SP_CHAR:
            if temp_str != "":
                segs_out.extend(temp_str.split())  # nltk.word_tokenize in the original
                temp_str = ""
            segs_out.append(char)
        else:
            temp_str += char
    if temp_str != "":
        segs_out.extend(temp_str.split())
    return segs_out

def remove_punctuation(in_str):
    in_str = str(in_str).lower().strip()
    return ''.join(c for c in in_str if c not in SP_CHAR)

def find_lcs(s1, s2):
    m = [[0 for _ in range(len(s2) + 1)] for _ in range(len(s1) + 1)]
    mmax, p = 0, 0
    for i in range(len(s1)):
        for j in range(len(s2)):
            if s1[i] == s2[j]:
                m[i + 1][j + 1] = m[i][j] + 1
                if m[i + 1][j + 1] > mmax:
                    mmax, p = m[i + 1][j + 1], i + 1
    return s1[p - mmax:p], mmax

def calc_f1_score(answers, prediction):
    f1_scores = []
    for ans in answers:
        ans_segs = mixed_segmentation(ans, rm_punc=True)
        prediction_segs = mixed_segmentation(prediction, rm_punc=True)
        _, lcs_len = find_lcs(ans_segs, prediction_segs)
        if lcs_len == 0:
            f1_scores.append(0)
            continue
        precision = 1.0 * lcs_len / len(prediction_segs)
        recall = 1.0 * lcs_len / len(ans_segs)
        f1_scores.append((2 * precision * recall) / (precision + recall))
    return max(f1_scores)

def calc_em_score(answers, prediction):
    return int(any(remove_punctuation(a) == remove_punctuation(prediction) for a in answers))

cmrc_pairs = [
    ("北京大学", ["北京大学"]),
    ("北京", ["北京大学", "北大"]),
    ("《红楼梦》", ["红楼梦"]),
    ("1990年", ["1990年5月"]),
    ("Apple公司", ["apple 公司"]),
    ("曹雪芹，清代作家", ["清代作家曹雪芹"]),
    ("上海", ["北京"]),
    ("iPhone X手机", ["iphone x"]),
    ("  第二次世界大战  ", ["第二次世界大战。"]),
    ("中国…", ["中国"]),
    ("A-B型", ["ab型"]),
]
out["cmrc"] = [{
    "prediction": p,
    "golds": g,
    "em": calc_em_score(g, p),
    "f1": calc_f1_score(g, p),
    "segments": mixed_segmentation(p, rm_punc=True),
} for p, g in cmrc_pairs]

print(json.dumps(out, ensure_ascii=False, indent=1))
