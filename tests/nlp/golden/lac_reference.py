#!/usr/bin/env python3
"""A numpy reference of Baidu's LAC (jieba/lac_small) for tests/nlp/lac/lac_test.cpp.

Independent of oar: it parses Paddle's LoDTensor files itself and runs the network that
jieba/lac_small/nets.py builds, with the semantics of Paddle Fluid's ops:
  fluid.embedding             -> word_emb[ids]
  fc(x, size)                 -> x @ w_0 + b_0            (w_0 stored [in, out])
  dynamic_gru(x, H)           -> gate input g = x + b_0 (x is the 3H fc output, order
                                 [update u, reset r, candidate c]); w_0's memory holds the
                                 [H, 2H] gate weights then the [H, H] candidate weights;
                                 u, r = sigmoid(g[:2H] + h @ W_g); c = tanh(g[2H:] + (r*h) @ W_c);
                                 h = h - u*h + u*c (origin_mode=False); is_reverse runs the
                                 sequence backwards; h0 = 0
  concat([fwd, bwd])          -> feature axis
  crf_decoding(emission, crfw)-> Viterbi with crfw rows 0 = start, 1 = stop, 2.. = from->to,
                                 strict '>' (lowest index wins ties), float32 like Paddle
Input preparation and word assembly follow jieba/lac_small/reader_small.py and utils.py.

Run by hand with numpy:  python3 tests/nlp/golden/lac_reference.py [LAC_DIR] [OUT_JSON]
"""
import json
import struct
import sys

import numpy as np

LAC_DIR = "/usr/lib/python3/dist-packages/jieba/lac_small"

SENTENCES = [
    "我来到北京清华大学",
    "李小福是创新办主任也是云计算方面的专家",
    "2019年3月18日，百度在北京发布了ERNIE模型。",
    "上海浦东开发与法制建设同步",
    "中华人民共和国国务院总理李克强今天上午在人民大会堂会见了美国国务卿",
    "他说：“这个苹果很好吃！”",
    "我爱Python和C++编程，版本3.11",
    "小明硕士毕业于中国科学院计算所，后在日本京都大学深造",
    "今天天气不错",
    "好",
    "🙂表情符号和罕见字𠀀也要处理　全角空格",
    "  前后有空格的句子  ",
]


def read_lod_tensor(path):
    with open(path, "rb") as f:
        b = f.read()
    pos = 0
    (version,) = struct.unpack_from("<I", b, pos); pos += 4
    assert version == 0
    (levels,) = struct.unpack_from("<Q", b, pos); pos += 8
    for _ in range(levels):
        (size,) = struct.unpack_from("<Q", b, pos); pos += 8 + size
    (tversion,) = struct.unpack_from("<I", b, pos); pos += 4
    assert tversion == 0
    (dsize,) = struct.unpack_from("<i", b, pos); pos += 4
    desc = b[pos:pos + dsize]; pos += dsize
    # TensorDesc: field 1 varint data_type, field 2 varint dims (unpacked)
    i, dtype, dims = 0, None, []
    while i < len(desc):
        key = desc[i]; i += 1
        val, shift = 0, 0
        while True:
            c = desc[i]; i += 1
            val |= (c & 0x7F) << shift; shift += 7
            if not c & 0x80:
                break
        if key == 0x08:
            dtype = val
        elif key == 0x10:
            dims.append(val)
        else:
            raise ValueError("unexpected TensorDesc field %d" % key)
    assert dtype == 5, "LAC parameters are FP32"
    n = int(np.prod(dims)) if dims else 1
    arr = np.frombuffer(b, dtype="<f4", count=n, offset=pos).reshape(dims)
    assert pos + 4 * n == len(b)
    return arr


def load_kv(path, reverse):
    d = {}
    for line in open(path, encoding="utf8"):
        terms = line.strip("\n").split("\t")
        if len(terms) != 2:
            continue
        k, v = (terms[1], terms[0]) if reverse else terms
        d[k] = v
    return d


def sigmoid(x):
    return (1.0 / (1.0 + np.exp(-x))).astype(np.float32)


def fc(x, p, name):
    return (x @ p[name + ".w_0"] + p[name + ".b_0"]).astype(np.float32)


def dynamic_gru(x, w, b, reverse):
    hsz = w.shape[0]
    flat = w.reshape(-1)
    w_gate = flat[: 2 * hsz * hsz].reshape(hsz, 2 * hsz)
    w_cand = flat[2 * hsz * hsz:].reshape(hsz, hsz)
    g_all = (x + b.reshape(1, -1)).astype(np.float32)
    h = np.zeros(hsz, dtype=np.float32)
    out = np.zeros((x.shape[0], hsz), dtype=np.float32)
    steps = range(x.shape[0] - 1, -1, -1) if reverse else range(x.shape[0])
    for t in steps:
        g = g_all[t]
        ur = sigmoid(g[: 2 * hsz] + h @ w_gate)
        u, r = ur[:hsz], ur[hsz:]
        c = np.tanh(g[2 * hsz:] + (r * h) @ w_cand).astype(np.float32)
        h = (h - u * h + u * c).astype(np.float32)
        out[t] = h
    return out


def emissions(ids, p):
    x = p["word_emb"][ids]
    k = 0
    for _layer in range(2):
        fwd = dynamic_gru(fc(x, p, "fc_%d" % k), p["gru_%d.w_0" % k], p["gru_%d.b_0" % k], False)
        bwd = dynamic_gru(fc(x, p, "fc_%d" % (k + 1)), p["gru_%d.w_0" % (k + 1)],
                          p["gru_%d.b_0" % (k + 1)], True)
        x = np.concatenate([fwd, bwd], axis=1)
        k += 2
    return fc(x, p, "fc_4")


def viterbi(e, w):
    t = e.shape[1]
    start, stop, trans = w[0], w[1], w[2:]
    alpha = (start + e[0]).astype(np.float32)
    track = []
    for k in range(1, e.shape[0]):
        scores = (alpha[:, None] + trans).astype(np.float32)  # [from, to]
        best = np.argmax(scores, axis=0)  # first maximum, like Paddle's strict '>'
        track.append(best)
        alpha = (scores[best, np.arange(t)] + e[k]).astype(np.float32)
    last = int(np.argmax(alpha + stop))
    path = [last]
    for best in reversed(track):
        last = int(best[last])
        path.append(last)
    return path[::-1]


def assemble(chars, tags):
    """jieba/lac_small/utils.py parse_result (OOV characters kept as themselves)."""
    words, word_tags, part = [], [], ""
    for i, tag in enumerate(tags):
        if part == "":
            part = chars[i]
            word_tags.append(tag.split("-")[0])
            continue
        if tag.endswith("-B") or (tag == "O" and tags[i - 1] != "O"):
            words.append(part)
            word_tags.append(tag.split("-")[0])
            part = chars[i]
            continue
        part += chars[i]
    if len(words) < len(word_tags):
        words.append(part)
    return words, word_tags


def main(lac_dir, out_path):
    names = ["word_emb", "crfw"] + ["fc_%d.%s" % (i, s) for i in range(5) for s in ("w_0", "b_0")] \
        + ["gru_%d.%s" % (i, s) for i in range(4) for s in ("w_0", "b_0")]
    p = {n: read_lod_tensor(lac_dir + "/model_baseline/" + n) for n in names}
    word2id = {k: int(v) for k, v in load_kv(lac_dir + "/word.dic", reverse=True).items()}
    id2tag = {int(k): v for k, v in load_kv(lac_dir + "/tag.dic", reverse=False).items()}
    cases = []
    for s in SENTENCES:
        chars = list(s.strip())
        ids = [word2id.get(c, word2id["OOV"]) for c in chars]
        e = emissions(np.array(ids), p)
        path = viterbi(e, p["crfw"])
        tags = [id2tag[i] for i in path]
        words, word_tags = assemble(chars, tags)
        keep = sorted(set([0, 1, 2, len(ids) - 1]) & set(range(len(ids))))
        cases.append({"text": s, "ids": ids, "tags": path,
                      "words": words, "word_tags": word_tags,
                      "logit_positions": keep,
                      "logits": [[float(v) for v in e[k]] for k in keep]})
    with open(out_path, "w", encoding="utf8") as f:
        json.dump({"model": "jieba lac_small", "cases": cases}, f, ensure_ascii=False)
        f.write("\n")
    for c in cases:
        print(" ".join("%s/%s" % wt for wt in zip(c["words"], c["word_tags"])))


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else LAC_DIR,
         sys.argv[2] if len(sys.argv) > 2 else "tests/nlp/lac/data/lac_golden.json")
