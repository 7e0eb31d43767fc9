#!/usr/bin/env python3
"""Cross-checks tests/nlp/lac/data/lac_golden.json against PaddlePaddle's own operators.

jieba's paddle mode needs Paddle Fluid 1.x (paddle.fluid), which no longer installs on current
Pythons. Paddle 2.6 still ships the operators jieba's nets.py emits (lookup_table_v2, mul, gru,
concat, crf_decoding), so this script builds the same inference program from them with
LayerHelper, loads model_baseline/ with Paddle's own reader (core.load_lod_tensor), and checks that the tags equal the numpy reference's, and the
emissions agree within 1e-4.

Run by hand:  pip install paddlepaddle==2.6.2 (in a venv), then
    python tests/nlp/golden/lac_paddle_check.py [LAC_DIR] [GOLDEN_JSON]
"""
import json
import sys

import numpy as np
import paddle
from paddle.base import core
from paddle.base.layer_helper import LayerHelper

LAC_DIR = "/usr/lib/python3/dist-packages/jieba/lac_small"


def op(type_, inputs, attrs=None, outputs=("Out",), dtype="float32"):
    helper = LayerHelper(type_)
    outs = {k: helper.create_variable_for_type_inference(dtype) for k in outputs}
    helper.append_op(type=type_, inputs=inputs, outputs=outs, attrs=attrs or {})
    return outs


def main(lac_dir, golden_path):
    paddle.enable_static()
    names = ["word_emb", "crfw"] + ["fc_%d.%s" % (i, s) for i in range(5) for s in ("w_0", "b_0")] \
        + ["gru_%d.%s" % (i, s) for i in range(4) for s in ("w_0", "b_0")]
    params = {}
    for n in names:
        t = core.LoDTensor()
        core.load_lod_tensor(t, lac_dir + "/model_baseline/" + n)
        params[n] = np.array(t)
    main_prog, startup = paddle.static.Program(), paddle.static.Program()
    with paddle.static.program_guard(main_prog, startup):
        v = {n: paddle.static.data(n, list(a.shape), "float32") for n, a in params.items()}
        words = paddle.static.data("words", [-1, 1], "int64", lod_level=1)
        x = op("lookup_table", {"W": v["word_emb"], "Ids": words},
               {"is_sparse": True, "padding_idx": -1})["Out"]

        def fc(inp, k):
            y = op("mul", {"X": inp, "Y": v["fc_%d.w_0" % k]},
                   {"x_num_col_dims": 1, "y_num_col_dims": 1})["Out"]
            return op("elementwise_add", {"X": y, "Y": v["fc_%d.b_0" % k]}, {"axis": 1})["Out"]

        def gru(inp, k, rev):
            return op("gru", {"Input": inp, "Weight": v["gru_%d.w_0" % k], "Bias": v["gru_%d.b_0" % k]},
                      {"is_reverse": rev, "gate_activation": "sigmoid", "activation": "tanh",
                       "origin_mode": False},
                      ("Hidden", "BatchGate", "BatchResetHiddenPrev", "BatchHidden"))["Hidden"]

        k = 0
        for _ in range(2):
            fwd = gru(fc(x, k), k, False)
            bwd = gru(fc(x, k + 1), k + 1, True)
            x = op("concat", {"X": [fwd, bwd]}, {"axis": 1})["Out"]
            k += 2
        emission = fc(x, 4)
        path = op("crf_decoding", {"Emission": emission, "Transition": v["crfw"]}, {},
                  ("ViterbiPath",), "int64")["ViterbiPath"]
    exe = paddle.static.Executor(paddle.CPUPlace())
    golden = json.load(open(golden_path, encoding="utf8"))
    worst = 0.0
    for case in golden["cases"]:
        ids = np.array(case["ids"], dtype=np.int64).reshape(-1, 1)
        t = core.LoDTensor()
        t.set(ids, paddle.CPUPlace())
        t.set_recursive_sequence_lengths([[len(ids)]])
        feed = dict(params)
        feed["words"] = t
        em, p = exe.run(main_prog, feed=feed, fetch_list=[emission, path], return_numpy=False)
        em, p = np.array(em), np.array(p).reshape(-1).tolist()
        assert p == case["tags"], (case["text"], p, case["tags"])
        for pos, logits in zip(case["logit_positions"], case["logits"]):
            worst = max(worst, float(np.abs(em[pos] - np.array(logits)).max()))
    assert worst < 1e-4, worst
    print("paddle %s agrees on %d sentences: identical tags, max |emission diff| %.2e"
          % (paddle.__version__, len(golden["cases"]), worst))


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else LAC_DIR,
         sys.argv[2] if len(sys.argv) > 2 else "tests/nlp/lac/data/lac_golden.json")
