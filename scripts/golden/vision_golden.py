#!/usr/bin/env python3
"""Golden outputs of torchvision classifiers for tests/vision/golden_test.cpp. Run by hand, never by CI:

    bench/.venv/bin/pip install torchvision pillow   # once, if missing
    bench/.venv/bin/python scripts/golden/vision_golden.py

Writes into tests/vision/data/:
  <model>_golden.json            logits of a fixed input, eval and train mode, for models whose
                                 every state_dict entry was filled by fill() below, computed in
                                 float64 (the exact answer), with torch's own float32 error
                                 (max |f32 - f64| / max |f64|) beside them
  torchvision_state_dicts.txt    "<model> <name> <dtype> <shape>" per state_dict entry of every
                                 reference model at 1000 classes, and "<model> #params <count>"

fill(): the k-th state_dict entry (0-based, state_dict order, buffers included), element i
(row-major), with h = (i * 2654435761 + k * 104729) % 2**32 (a multiplicative hash: a plain
(i * 7919 + ...) % 2001 repeats every 2001 elements, which makes every row of a wide weight sum to
about 0 and the net badly conditioned) and v = (h % 2001 - 1000) / 1000 in double:
  running_var: 1 + 0.5 v      running_mean: 0.1 v     num_batches_tracked: left at 0
  weight of rank >= 2 (conv, linear): v * sqrt(6 / fan_in), fan_in = numel / shape[0]
  weight of rank 1 (norm gamma): 1 + 0.1 v            bias: 0.1 v
then cast to float32. The input [2, 3, 64, 64] is v with k = INPUT_K. Eval runs first (train mode
changes the running statistics). Dropout is 0 so that train mode is deterministic.

Train mode is ill-conditioned for deep nets at this size (BN over 2x2x2 values per channel in
ResNet-50's last stage amplifies rounding): torch's own float32 logits differ from float64 by
about 4e-4 of their scale there, which is why the test compares against float64 and allows the
larger of 1e-4 and 5x torch's float32 error.
"""
import json
import math
import os

import torch
import torchvision.models as tvm

INPUT_K = 1000003
NUM_CLASSES = 10
HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "..", "tests", "vision", "data")


def pattern(n, k):
    i = torch.arange(n, dtype=torch.int64)
    h = (i * 2654435761 + k * 104729) % 4294967296
    return ((h % 2001) - 1000).to(torch.float64) / 1000.0


def fill(model):
    with torch.no_grad():
        for k, (name, t) in enumerate(model.state_dict().items()):
            if name.endswith("num_batches_tracked"):
                continue
            v = pattern(t.numel(), k)
            if name.endswith("running_var"):
                v = 1 + 0.5 * v
            elif name.endswith("running_mean"):
                v = 0.1 * v
            elif name.endswith("weight") and t.dim() >= 2:
                v = v * math.sqrt(6.0 / (t.numel() // t.shape[0]))
            elif name.endswith("weight"):
                v = 1 + 0.1 * v
            elif name.endswith("bias"):
                v = 0.1 * v
            else:
                raise ValueError(f"no fill rule for {name}")
            t.copy_(v.to(torch.float32).view(t.shape))


GOLDEN = {
    "resnet50": lambda: tvm.resnet50(num_classes=NUM_CLASSES),
    "mobilenet_v2": lambda: tvm.mobilenet_v2(num_classes=NUM_CLASSES, dropout=0.0),
    "mobilenet_v3_small": lambda: tvm.mobilenet_v3_small(num_classes=NUM_CLASSES, dropout=0.0),
    "vgg11_bn": lambda: tvm.vgg11_bn(num_classes=NUM_CLASSES, dropout=0.0),
}

REFERENCE = ["resnet18", "resnet34", "resnet50", "resnet101", "resnet152", "mobilenet_v2",
             "mobilenet_v3_small", "mobilenet_v3_large", "vgg11", "vgg11_bn", "vgg13", "vgg13_bn",
             "vgg16", "vgg16_bn", "vgg19", "vgg19_bn"]


def main():
    torch.set_num_threads(2)
    torch.backends.mkldnn.enabled = False  # plain float32 reference arithmetic
    x = pattern(2 * 3 * 64 * 64, INPUT_K).to(torch.float32).view(2, 3, 64, 64)
    for name, make in GOLDEN.items():
        model = make()
        fill(model)
        exact = make()
        fill(exact)
        exact = exact.double()
        out = {"model": name, "num_classes": NUM_CLASSES, "input_shape": [2, 3, 64, 64],
               "input_k": INPUT_K, "torch": torch.__version__, "float32_error": {}}
        with torch.no_grad():
            for mode in ["eval", "train"]:
                model.train(mode == "train")
                exact.train(mode == "train")
                want = exact(x.double())
                got = model(x).double()
                out[mode] = want.tolist()
                out["float32_error"][mode] = ((got - want).abs().max() / want.abs().max()).item()
        with open(os.path.join(OUT, f"{name}_golden.json"), "w") as f:
            json.dump(out, f, indent=1)
            f.write("\n")
        print(name, "eval[0][:3]", out["eval"][0][:3], "train[0][:3]", out["train"][0][:3],
              "float32 error", out["float32_error"])
    lines = []
    for name in REFERENCE:
        model = getattr(tvm, name)()
        lines.append(f"{name} #params {sum(p.numel() for p in model.parameters())}")
        for key, t in model.state_dict().items():
            dtype = {torch.float32: "f32", torch.int64: "i64"}[t.dtype]
            lines.append(f"{name} {key} {dtype} {','.join(str(s) for s in t.shape)}")
        print(lines[0 if len(lines) == 1 else -len(model.state_dict()) - 1])
    with open(os.path.join(OUT, "torchvision_state_dicts.txt"), "w") as f:
        f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
