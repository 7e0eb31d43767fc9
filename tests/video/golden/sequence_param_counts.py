"""Parameter counts of the three feature-sequence models in their reference (YouTube-8M)
configurations, from an independent PyTorch construction of PaddleVideo's layer lists.

The C++ tests (tests/video/models/*_test.cpp) and docs/video/sequence-models.md carry the
figures this prints; rerun after changing a reference size:
    /work/main/bench/.venv/bin/python tests/video/golden/sequence_param_counts.py
"""
import torch
import torch.nn as nn

DIMS = {"rgb": 1024, "audio": 128}
CLASSES = 3862


def count(m):
    return sum(p.numel() for p in m.parameters())


def attention_lstm(embedding=512, lstm=1024, fcs=(8192, 4096)):
    mods = nn.ModuleDict()
    for name, d in DIMS.items():
        mods[name] = nn.ModuleDict({
            "embedding": nn.Linear(d, embedding),
            "lstm": nn.LSTM(embedding, lstm, batch_first=True, bidirectional=True),
            "attention": nn.Linear(2 * lstm, 1),
        })
    layers, width = [], 2 * lstm * len(DIMS)
    for f in fcs:
        layers.append(nn.Linear(width, f))
        width = f
    layers.append(nn.Linear(width, CLASSES))
    return nn.ModuleList([mods, *layers])


def attention_cluster(units=32, fcs=(1024, 4096)):
    parts, width = [], 0
    for d in DIMS.values():
        parts.append(nn.Conv1d(d, units, 1))  # the 1x1 conv scoring the frames
        parts.append(nn.ParameterList([nn.Parameter(torch.zeros(units)) for _ in range(2)]))  # shift_w, b
        width += units * d
    for f in fcs:
        parts.append(nn.Linear(width, f))
        width = f
    parts.append(nn.Linear(width, CLASSES))
    return nn.ModuleList(parts)


def nextvlad(k=128, groups=8, expansion=2, hidden=2048, reduction=8):
    parts, width = [], 0
    for d in DIMS.values():
        wide, f = expansion * d, expansion * d // groups
        parts += [nn.Linear(d, wide), nn.Linear(wide, groups),
                  nn.Linear(wide, groups * k, bias=False), nn.BatchNorm1d(groups * k),
                  nn.Linear(k, f, bias=False),  # centres, a [F, K] matrix
                  nn.BatchNorm1d(f * k)]
        width += f * k
    parts += [nn.Linear(width, hidden, bias=False), nn.BatchNorm1d(hidden),
              nn.Linear(hidden, hidden // reduction, bias=False), nn.BatchNorm1d(hidden // reduction),
              nn.Linear(hidden // reduction, hidden, bias=False), nn.Linear(hidden, CLASSES)]
    return nn.ModuleList(parts)


if __name__ == "__main__":
    for name, build in [("attention_lstm", attention_lstm), ("attention_cluster", attention_cluster),
                        ("nextvlad", nextvlad)]:
        print(f"{name} {count(build())}")
