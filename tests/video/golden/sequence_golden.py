"""Golden logits of the three feature-sequence models on tiny configurations, from independent
PyTorch implementations written from the papers / PaddleVideo's layer lists (padded tensors with
masks and torch's packed LSTM, where oar packs frames itself). Every parameter and BN statistic
is set by a formula of its state name and index (golden_value, mirrored in
tests/video/models/sequence_checks.h), the models run in eval mode, and the logits go to
sequence_golden.json, which the C++ tests compare against.
    /work/main/bench/.venv/bin/python tests/video/golden/sequence_golden.py
"""
import json
import math
import os

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

DIMS = {"rgb": 6, "audio": 4}
CLASSES = 5
N, T = 3, 6
LENGTHS = [6, 2, 4]


def golden_value(name, j):
    k = sum(name.encode()) % 97
    s = math.sin(0.731 * j + k)
    if name.endswith("running_var"):
        return 0.75 + 0.5 * abs(s)
    if name.endswith("running_mean"):
        return 0.1 * s
    return 0.5 * s


def fill(model):
    with torch.no_grad():
        for name, t in model.state_dict().items():
            if t.is_floating_point():
                t.copy_(torch.tensor([golden_value(name, j) for j in range(t.numel())],
                                     dtype=t.dtype).reshape(t.shape))


def inputs():
    def seq(d, f, phase):
        x = torch.tensor([f(0.37 * i + phase) for i in range(N * T * d)], dtype=torch.float64)
        x = x.reshape(N, T, d).float()
        for n, l in enumerate(LENGTHS):
            x[n, l:] = 0  # padding (oar ignores whatever is there)
        return x
    return seq(6, math.sin, 0.1), seq(4, math.cos, 0.2), torch.tensor(LENGTHS)


def mask(lengths):
    return torch.arange(T)[None, :] < lengths[:, None]  # [N, T]


class LstmPool(nn.Module):
    def __init__(self, d, e, h):
        super().__init__()
        self.embedding = nn.Linear(d, e)
        self.lstm = nn.LSTM(e, h, batch_first=True, bidirectional=True)
        self.attention = nn.Linear(2 * h, 1)

    def forward(self, x, lengths):
        e = torch.tanh(self.embedding(x))
        packed = pack_padded_sequence(e, lengths, batch_first=True, enforce_sorted=False)
        h, _ = pad_packed_sequence(self.lstm(packed)[0], batch_first=True, total_length=T)
        scores = self.attention(h).squeeze(-1).masked_fill(~mask(lengths), float("-inf"))
        return (h * torch.softmax(scores, 1)[..., None]).sum(1)


class AttentionLstm(nn.Module):
    def __init__(self, e=4, h=3, fcs=(8, 6)):
        super().__init__()
        for name, d in DIMS.items():
            setattr(self, name, LstmPool(d, e, h))
        self.fc1 = nn.Linear(2 * h * len(DIMS), fcs[0])
        self.fc2 = nn.Linear(fcs[0], fcs[1])
        self.logits = nn.Linear(fcs[1], CLASSES)

    def forward(self, rgb, audio, lengths):
        h = torch.cat([self.rgb(rgb, lengths), self.audio(audio, lengths)], 1)
        return self.logits(torch.tanh(self.fc2(torch.relu(self.fc1(h)))))


class ShiftingAttention(nn.Module):
    def __init__(self, d, units):
        super().__init__()
        self.scores = nn.Linear(d, units)
        self.shift_w = nn.Parameter(torch.zeros(units))
        self.shift_b = nn.Parameter(torch.zeros(units))

    def forward(self, x, lengths):
        s = self.scores(x).masked_fill(~mask(lengths)[..., None], float("-inf"))
        a = torch.softmax(s, 1)                                   # [N, T, K]
        v = torch.einsum("ntk,ntd->nkd", a, x)
        v = v * self.shift_w[:, None] + self.shift_b[:, None]
        v = F.normalize(v, dim=2) / math.sqrt(v.shape[1])
        return v.flatten(1)


class AttentionCluster(nn.Module):
    def __init__(self, units=(3, 2), fcs=(8, 7)):
        super().__init__()
        width = 0
        for (name, d), u in zip(DIMS.items(), units):
            setattr(self, name, ShiftingAttention(d, u))
            width += d * u
        self.fc1 = nn.Linear(width, fcs[0])
        self.fc2 = nn.Linear(fcs[0], fcs[1])
        self.logits = nn.Linear(fcs[1], CLASSES)

    def forward(self, rgb, audio, lengths):
        h = torch.cat([self.rgb(rgb, lengths), self.audio(audio, lengths)], 1)
        return self.logits(torch.tanh(self.fc2(torch.tanh(self.fc1(h)))))


class NeXtVladPool(nn.Module):
    def __init__(self, d, k, g, lam):
        super().__init__()
        self.k, self.g, self.f = k, g, lam * d // g
        self.expand = nn.Linear(d, lam * d)
        self.group_attention = nn.Linear(lam * d, g)
        self.cluster_weights = nn.Parameter(torch.zeros(g * k, lam * d))
        self.cluster_bn = nn.BatchNorm1d(g * k)
        self.centers = nn.Parameter(torch.zeros(self.f, k))
        self.vlad_bn = nn.BatchNorm1d(self.f * k)

    def forward(self, x, lengths):
        n, t, _ = x.shape
        x = self.expand(x)                                          # [N, T, lam D]
        att = torch.sigmoid(self.group_attention(x)) * mask(lengths)[..., None]
        act = self.cluster_bn((x @ self.cluster_weights.t()).reshape(n * t, -1))
        act = torch.softmax(act.reshape(n, t * self.g, self.k), -1)
        act = act * att.reshape(n, t * self.g, 1)
        a = act.sum(1, keepdim=True) * self.centers[None]           # [N, F, K]
        vlad = (act.transpose(1, 2) @ x.reshape(n, t * self.g, self.f)).transpose(1, 2) - a
        return self.vlad_bn(F.normalize(vlad, dim=1).reshape(n, -1))


class NeXtVlad(nn.Module):
    def __init__(self, k=3, g=2, lam=2, hidden=8, reduction=4):
        super().__init__()
        width = 0
        for name, d in DIMS.items():
            setattr(self, name, NeXtVladPool(d, k, g, lam))
            width += lam * d // g * k
        self.hidden = nn.Linear(width, hidden, bias=False)
        self.hidden_bn = nn.BatchNorm1d(hidden)
        self.gate1 = nn.Linear(hidden, hidden // reduction, bias=False)
        self.gate_bn = nn.BatchNorm1d(hidden // reduction)
        self.gate2 = nn.Linear(hidden // reduction, hidden, bias=False)
        self.logits = nn.Linear(hidden, CLASSES)

    def forward(self, rgb, audio, lengths):
        v = torch.cat([self.rgb(rgb, lengths), self.audio(audio, lengths)], 1)
        h = self.hidden_bn(self.hidden(v))
        gates = torch.sigmoid(self.gate2(torch.relu(self.gate_bn(self.gate1(h)))))
        return self.logits(h * gates)


if __name__ == "__main__":
    out = {}
    rgb, audio, lengths = inputs()
    for name, cls in [("attention_lstm", AttentionLstm), ("attention_cluster", AttentionCluster),
                      ("nextvlad", NeXtVlad)]:
        model = cls()
        fill(model)
        model.eval()
        with torch.no_grad():
            out[name] = [round(v, 7) for v in model(rgb, audio, lengths).flatten().tolist()]
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "sequence_golden.json")
    with open(path, "w") as f:
        json.dump(out, f, indent=1)
        f.write("\n")
    print(json.dumps(out))
