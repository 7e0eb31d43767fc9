#!/usr/bin/env python3
"""Golden values of Paddle's own linear_chain_crf and crf_decoding operators, for
tests/nlp/layers/crf_test.cpp (Paddle's [T + 2, T] transition layout: start row, stop row, then
from -> to).

Run by hand in a venv with `pip install paddlepaddle==2.6.2`:
    python tests/nlp/golden/crf_paddle_golden.py tests/nlp/layers/data/crf_paddle_golden.json
"""
import json
import sys

import numpy as np
import paddle
from paddle.base import core
from paddle.base.layer_helper import LayerHelper


def main(out):
    paddle.enable_static()
    rng = np.random.default_rng(11)
    t = 5
    lengths = [4, 1, 6, 3]
    total = sum(lengths)
    emission = rng.uniform(-2, 2, size=(total, t)).astype(np.float32)
    transition = rng.uniform(-1, 1, size=(t + 2, t)).astype(np.float32)
    label = rng.integers(0, t, size=(total, 1)).astype(np.int64)

    prog, startup = paddle.static.Program(), paddle.static.Program()
    with paddle.static.program_guard(prog, startup):
        e = paddle.static.data("e", [-1, t], "float32", lod_level=1)
        w = paddle.static.data("w", [t + 2, t], "float32")
        y = paddle.static.data("y", [-1, 1], "int64", lod_level=1)
        helper = LayerHelper("linear_chain_crf")
        outs = {k: helper.create_variable_for_type_inference("float32")
                for k in ("Alpha", "EmissionExps", "TransitionExps", "LogLikelihood")}
        helper.append_op(type="linear_chain_crf",
                         inputs={"Emission": e, "Transition": w, "Label": y}, outputs=outs)
        path = helper.create_variable_for_type_inference("int64")
        helper.append_op(type="crf_decoding", inputs={"Emission": e, "Transition": w},
                         outputs={"ViterbiPath": path})
    exe = paddle.static.Executor(paddle.CPUPlace())

    def lod(a):
        x = core.LoDTensor()
        x.set(a, paddle.CPUPlace())
        x.set_recursive_sequence_lengths([lengths])
        return x

    nll, vp = exe.run(prog, feed={"e": lod(emission), "w": transition, "y": lod(label)},
                      fetch_list=[outs["LogLikelihood"], path], return_numpy=False)
    nll = np.array(nll).reshape(-1)
    vp = np.array(vp).reshape(-1)
    with open(out, "w") as f:
        json.dump({"paddle_version": paddle.__version__, "num_tags": t, "lengths": lengths,
                   "emission": emission.ravel().tolist(), "transition": transition.ravel().tolist(),
                   "label": label.ravel().tolist(), "nll": nll.tolist(), "viterbi": vp.tolist()},
                  f)
        f.write("\n")
    print("nll", nll, "viterbi", vp)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "tests/nlp/layers/data/crf_paddle_golden.json")
