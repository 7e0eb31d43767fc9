#!/usr/bin/env python3
"""Writes Paddle parameter files with PaddlePaddle itself, for tests/nlp/io/paddle_tensor_test.cpp.

Run by hand (not part of the test suite) in a venv with `pip install paddlepaddle==2.6.2`:
    python tests/nlp/golden/paddle_tensor_fixtures.py tests/nlp/io/data
Writes, into the directory:
  <dtype>.pdtensor   one LoDTensor per dtype Paddle uses for parameters (core.save_lod_tensor)
  lod.pdtensor       an int64 [5, 1] tensor with a 2-level LoD (sequences in sequences)
  scalar.pdtensor    a 0-d FP32 tensor
  combined/__params__  the parameters of a tiny fc network saved by save_vars(filename=...)
                     (Fluid's save_params): records back to back, in sorted-name order
  expected.json      every tensor's dtype, shape, values (as float/int) and LoD
"""
import json
import os
import sys

import numpy as np
import paddle
from paddle.base import core


def values_of(a):
    return [float(v) if a.dtype.kind == "f" else int(v) for v in a.astype(np.float64).ravel()] \
        if a.dtype != np.bool_ else [int(v) for v in a.ravel()]


def save(path, array, paddle_dtype=None, lod=None):
    t = paddle.to_tensor(array)
    if paddle_dtype is not None:
        t = t.astype(paddle_dtype)
    lt = t.value().get_tensor()
    if lod is not None:
        lt.set_lod(lod)
    core.save_lod_tensor(lt, path)
    # What Paddle itself reads back (bf16 and fp16 rounded), as float64 for the JSON.
    back = np.array(t.astype("float32")) if paddle_dtype in ("bfloat16", "float16") else np.array(t)
    return back


def main(out):
    os.makedirs(out, exist_ok=True)
    rng = np.random.default_rng(5)
    expected = {}
    base = rng.uniform(-3, 3, size=(3, 4)).astype(np.float32)
    cases = {
        "FP32": (base, None),
        "FP16": (base, "float16"),
        "BF16": (base, "bfloat16"),
        "FP64": (base.astype(np.float64) * 1.0000001, None),
        "INT64": (np.array([[-(2**40), 0, 7], [2**62, -1, 3]], dtype=np.int64), None),
        "INT32": (np.array([-(2**31), -5, 0, 2**31 - 1], dtype=np.int32), None),
        "UINT8": (np.arange(0, 256, 37, dtype=np.uint8).reshape(7, 1), None),
        "BOOL": (np.array([[True, False, True], [False, False, True]]), None),
    }
    for name, (arr, pdt) in cases.items():
        back = save(os.path.join(out, name + ".pdtensor"), arr, pdt)
        expected[name] = {"shape": list(arr.shape), "values": values_of(back), "lod": []}
    ids = np.arange(5, dtype=np.int64).reshape(5, 1) + 100
    lod = [[0, 2, 3], [0, 1, 3, 5]]
    save(os.path.join(out, "lod.pdtensor"), ids, None, lod)
    expected["lod"] = {"shape": [5, 1], "values": values_of(ids), "lod": lod}
    sc = np.array(2.5, dtype=np.float32)
    save(os.path.join(out, "scalar.pdtensor"), sc)
    expected["scalar"] = {"shape": list(np.array(paddle.to_tensor(sc)).shape), "values": [2.5],
                          "lod": []}

    paddle.enable_static()
    main_prog, startup = paddle.static.Program(), paddle.static.Program()
    with paddle.static.program_guard(main_prog, startup):
        x = paddle.static.data("x", [None, 3], "float32")
        y = paddle.static.nn.fc(x, 2)
    exe = paddle.static.Executor(paddle.CPUPlace())
    exe.run(startup)
    # Fluid's save_params(filename="__params__"): one save_combine op over the sorted names.
    paddle.static.io.save_vars(exe, os.path.join(out, "combined"), main_prog,
                               predicate=lambda v: v.persistable and v.name not in ("feed", "fetch")
                               and v.name != "x", filename="__params__")
    scope = paddle.static.global_scope()
    comb = {}
    for p in sorted(v.name for v in main_prog.list_vars() if v.persistable and v.name != "feed"
                    and v.name != "fetch"):
        a = np.array(scope.find_var(p).get_tensor())
        comb[p] = {"shape": list(a.shape), "values": values_of(a), "lod": []}
    expected["combined"] = comb
    with open(os.path.join(out, "expected.json"), "w") as f:
        json.dump({"paddle_version": paddle.__version__, "tensors": expected}, f, indent=1)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "tests/nlp/io/data")
