"""Reference state dicts of oar's frame-based video classifiers, built independently in PyTorch.

Writes tests/video/golden/frame_models_state_dicts.txt (format of tests/vision/data/
torchvision_state_dicts.txt: `model #params N`, then `model name dtype d0,d1,...` per entry),
which tests/video/models/frame_models_test.cpp compares oar's models against, and
frame_models_tiny_logits.txt: float64 logits of tiny versions with formula weights, which
tests/video/models/golden_logits_test.cpp compares oar's float32 forward passes against.

The reference configurations are PaddleVideo's 2019 ones (Kinetics-400, ResNet-50):
  tsn, tsm       torchvision resnet50 with fc 2048 -> 400 (the shift has no parameters)
  stnet          seglen 5: conv1 takes 15 channels; temporal blocks (Conv3d (3,1,1) with bias +
                 BN3d) after layer2 and layer3; temporal Xception (2048 -> 1024); fc 1024 -> 400
  nonlocal_c2d   Paddle's resnet_video.py (video_arc_choice 1) with non-local blocks after
  nonlocal_i3d   blocks 1, 3 of res3 and 1, 3, 5 of res4; fc 2048 -> 400 (arc 2: I3D kernels)

Run:  /work/main/bench/.venv/bin/python tests/video/golden/frame_models_golden.py
(torch 2.15, torchvision 0.29 recorded the current file).
"""
import os

import torch
import torch.nn as nn
import torchvision

CLASSES = 400


def tsn():
    m = torchvision.models.resnet50()
    m.dropout = nn.Dropout(0.5)  # no parameters; oar keeps the module as `dropout`
    m.fc = nn.Linear(2048, CLASSES)
    return m


class TemporalBlock(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.conv = nn.Conv3d(c, c, (3, 1, 1), padding=(1, 0, 0), bias=True)
        self.bn = nn.BatchNorm3d(c)


class Xception(nn.Module):
    def __init__(self, cin, cout):
        super().__init__()
        self.bn = nn.BatchNorm2d(cin)
        self.att_conv = nn.Conv2d(cin, cin, (3, 1), padding=(1, 0), groups=cin)
        self.att_2 = nn.Conv2d(cin, cout, 1)
        self.bndw = nn.BatchNorm2d(cout)
        self.att1 = nn.Conv2d(cout, cout, (3, 1), padding=(1, 0), groups=cout)
        self.att1_2 = nn.Conv2d(cout, cout, 1)
        self.dw = nn.Conv2d(cin, cout, 1)
        self.bn2 = nn.BatchNorm2d(cout)


def stnet(seglen=5):
    m = torchvision.models.resnet50()
    m.conv1 = nn.Conv2d(3 * seglen, 64, 7, 2, 3, bias=False)
    del m.fc
    m.temporal2 = TemporalBlock(512)
    m.temporal3 = TemporalBlock(1024)
    m.xception = Xception(2048, 1024)
    m.fc = nn.Linear(1024, CLASSES)
    return m


class NonLocal(nn.Module):
    def __init__(self, c):
        super().__init__()
        d = c // 2
        self.theta = nn.Conv3d(c, d, 1)
        self.phi = nn.Conv3d(c, d, 1)
        self.g = nn.Conv3d(c, d, 1)
        self.out = nn.Conv3d(d, c, 1)
        self.bn = nn.BatchNorm3d(c)


class Bottleneck3d(nn.Module):
    def __init__(self, cin, planes, stride, kt):
        super().__init__()
        self.conv1 = nn.Conv3d(cin, planes, (kt, 1, 1), padding=(kt // 2, 0, 0), bias=False)
        self.bn1 = nn.BatchNorm3d(planes)
        self.conv2 = nn.Conv3d(planes, planes, (1, 3, 3), (1, stride, stride), (0, 1, 1), bias=False)
        self.bn2 = nn.BatchNorm3d(planes)
        self.conv3 = nn.Conv3d(planes, planes * 4, 1, bias=False)
        self.bn3 = nn.BatchNorm3d(planes * 4)
        if stride != 1 or cin != planes * 4:
            self.downsample = nn.Sequential(
                nn.Conv3d(cin, planes * 4, 1, (1, stride, stride), bias=False),
                nn.BatchNorm3d(planes * 4))


# Paddle's obtain_arc for ResNet-50: use_temp_convs per stage (1 -> temporal kernel 3).
I3D_TEMP = [[1, 1, 1], [1, 0, 1, 0], [1, 0, 1, 0, 1, 0], [0, 1, 0]]


def nonlocal_net(i3d):
    m = nn.Module()
    kt = 5 if i3d else 1
    m.conv1 = nn.Conv3d(3, 64, (kt, 7, 7), (1, 2, 2), (kt // 2, 3, 3), bias=False)
    m.bn1 = nn.BatchNorm3d(64)
    cin = 64
    for s, blocks in enumerate([3, 4, 6, 3]):
        planes = 64 << s
        layer = nn.Sequential()
        for b in range(blocks):
            blk = Bottleneck3d(cin, planes, 2 if b == 0 and s > 0 else 1,
                               3 if i3d and I3D_TEMP[s][b] else 1)
            if s in (1, 2) and b % 2 == 1:  # layer_mod 2 in res3 and res4
                blk.nonlocal_ = NonLocal(planes * 4)
            layer.append(blk)
            cin = planes * 4
        setattr(m, "layer%d" % (s + 1), layer)
    m.fc = nn.Linear(2048, CLASSES)
    return m


def main():
    models = {
        "tsn": tsn(),
        "tsm": tsn(),
        "stnet": stnet(),
        "nonlocal_c2d": nonlocal_net(False),
        "nonlocal_i3d": nonlocal_net(True),
    }
    here = os.path.dirname(os.path.abspath(__file__))
    with open(os.path.join(here, "frame_models_state_dicts.txt"), "w") as f:
        for name, m in models.items():
            n = sum(p.numel() for p in m.parameters())
            print(name, n)
            f.write("%s #params %d\n" % (name, n))
            for k, v in m.state_dict().items():
                k = k.replace("nonlocal_", "nonlocal")  # `nonlocal` is a Python keyword
                dtype = {torch.float32: "f32", torch.int64: "i64"}[v.dtype]
                f.write("%s %s %s %s\n" % (name, k, dtype, ",".join(str(d) for d in v.shape)))


# ---------------------------------------------------------------------------------------------
# Tiny configurations run forward in float64, with weights and inputs from closed formulas that
# tests/video/models/golden_logits_test.cpp reproduces; the logits go to
# frame_models_tiny_logits.txt (`model name dtype shape` lines for the state dict, then
# `model #logits v0 v1 ...`).
import math

import torch.nn.functional as F

TINY_BLOCKS = [1, 1, 1, 1]
TINY_WIDTH = 4
TINY_CLASSES = 5


class Bottleneck2d(nn.Module):
    def __init__(self, cin, planes, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * 4, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * 4)
        if stride != 1 or cin != planes * 4:
            self.downsample = nn.Sequential(nn.Conv2d(cin, planes * 4, 1, stride, bias=False),
                                            nn.BatchNorm2d(planes * 4))


def trunk2d(in_channels, blocks=TINY_BLOCKS, width=TINY_WIDTH):
    m = nn.Module()
    m.conv1 = nn.Conv2d(in_channels, width, 7, 2, 3, bias=False)
    m.bn1 = nn.BatchNorm2d(width)
    cin = width
    for s, n in enumerate(blocks):
        layer = nn.Sequential()
        for b in range(n):
            layer.append(Bottleneck2d(cin, width << s, 2 if b == 0 and s > 0 else 1))
            cin = (width << s) * 4
        setattr(m, "layer%d" % (s + 1), layer)
    return m


def shift(x, seg, fold_div=8):
    nt, c, h, w = x.shape
    v = x.view(nt // seg, seg, c, h, w)
    fold = c // fold_div
    out = torch.zeros_like(v)
    out[:, :-1, :fold] = v[:, 1:, :fold]
    out[:, 1:, fold:2 * fold] = v[:, :-1, fold:2 * fold]
    out[:, :, 2 * fold:] = v[:, :, 2 * fold:]
    return out.view(nt, c, h, w)


def bottleneck(blk, x, seg=None):
    branch = shift(x, seg) if seg else x
    out = F.relu(blk.bn1(blk.conv1(branch)))
    out = F.relu(blk.bn2(blk.conv2(out)))
    out = blk.bn3(blk.conv3(out))
    sc = blk.downsample(x) if hasattr(blk, "downsample") else x
    out = F.relu(out + sc)
    if hasattr(blk, "nonlocal_"):
        out = nonlocal_forward(blk.nonlocal_, out)
    return out


def stem2d(m, x):
    return F.max_pool2d(F.relu(m.bn1(m.conv1(x))), 3, 2, 1)


def tsn_forward(m, x, shifted):
    n, t = x.shape[:2]
    h = stem2d(m, x.reshape(n * t, *x.shape[2:]))
    for s in range(4):
        for blk in getattr(m, "layer%d" % (s + 1)):
            h = bottleneck(blk, h, t if shifted else None)
    f = h.mean(dim=(2, 3)).view(n, t, -1).mean(1)
    return m.fc(f)


def temporal_block(tb, x, seg):
    nt, c, h, w = x.shape
    v = x.view(nt // seg, seg, c, h, w).permute(0, 2, 1, 3, 4)
    y = tb.bn(F.relu(tb.conv(v))) + v
    return y.permute(0, 2, 1, 3, 4).reshape(nt, c, h, w)


def xception_forward(xc, x):
    b = xc.bn(x)
    a = F.relu(xc.bndw(xc.att_2(xc.att_conv(b))))
    a = xc.att1_2(xc.att1(a))
    return F.relu(xc.bn2(xc.dw(b) + a))


def stnet_forward(m, x, seglen):
    n, t = x.shape[:2]
    seg = t // seglen
    h = stem2d(m, x.reshape(n * seg, 3 * seglen, *x.shape[3:]))
    for s in range(4):
        for blk in getattr(m, "layer%d" % (s + 1)):
            h = bottleneck(blk, h)
        if s == 1:
            h = temporal_block(m.temporal2, h, seg)
        if s == 2:
            h = temporal_block(m.temporal3, h, seg)
    f = h.mean(dim=(2, 3)).view(n, seg, -1).permute(0, 2, 1).unsqueeze(3)
    f = xception_forward(m.xception, f).amax(dim=(2, 3))
    return m.fc(f)


def nonlocal_forward(nl, x):
    n, c, t, h, w = x.shape
    d = nl.theta.out_channels
    p = F.max_pool3d(x, (1, 2, 2), (1, 2, 2)) if h >= 2 and w >= 2 else x
    q = nl.theta(x).view(n, d, -1).transpose(1, 2)
    k = nl.phi(p).view(n, d, -1)
    v = nl.g(p).view(n, d, -1)
    att = torch.softmax(q @ k / math.sqrt(d), dim=2)
    y = (v @ att.transpose(1, 2)).view(n, d, t, h, w)
    return nl.bn(nl.out(y)) + x


def nonlocal_tiny(i3d, blocks=(1, 2, 2, 1), width=TINY_WIDTH):
    m = nn.Module()
    kt = 5 if i3d else 1
    m.conv1 = nn.Conv3d(3, width, (kt, 7, 7), (1, 2, 2), (kt // 2, 3, 3), bias=False)
    m.bn1 = nn.BatchNorm3d(width)
    cin = width
    for s, nb in enumerate(blocks):
        layer = nn.Sequential()
        for b in range(nb):
            temporal = s == 0 or (s == 3 and b % 2 == 1) or (s in (1, 2) and b % 2 == 0)
            blk = Bottleneck3d(cin, width << s, 2 if b == 0 and s > 0 else 1,
                               3 if i3d and temporal else 1)
            if s in (1, 2) and b % 2 == 1:
                blk.nonlocal_ = NonLocal((width << s) * 4)
            layer.append(blk)
            cin = (width << s) * 4
        setattr(m, "layer%d" % (s + 1), layer)
    m.fc = nn.Linear(cin, TINY_CLASSES)
    return m


def nonlocal_net_forward(m, x):
    h = x.permute(0, 2, 1, 3, 4)
    h = F.max_pool3d(F.relu(m.bn1(m.conv1(h))), (1, 3, 3), (1, 2, 2))
    for s in range(4):
        for blk in getattr(m, "layer%d" % (s + 1)):
            h = bottleneck(blk, h)
        if s == 0:
            h = F.max_pool3d(h, (2, 1, 1), (2, 1, 1))
    return m.fc(h.mean(dim=(2, 3, 4)))


def uniform(k, n):
    """n values in [-1, 1): a multiplicative hash of (k, index), exact in integer arithmetic."""
    i = torch.arange(n, dtype=torch.int64)
    h = (i * 2654435761 + k * 40503 + 12345) % 4294967296
    return h.to(torch.float64) / 2147483648.0 - 1.0


def fill(m):
    """Deterministic weights by state-dict position k and flat element index (float64)."""
    with torch.no_grad():
        for k, (name, t) in enumerate(m.state_dict().items()):
            if name.endswith("num_batches_tracked"):
                continue
            s = uniform(k, t.numel())
            if name.endswith("running_var"):
                v = 1.0 + 0.25 * (1.0 + s)
            elif name.endswith("running_mean") or name.endswith("bias"):
                v = 0.1 * s
            elif t.dim() == 1:  # BN gamma
                v = 1.0 + 0.2 * s
            else:
                v = math.sqrt(6.0 / (t.numel() / t.shape[0])) * s
            t.copy_(v.view(t.shape))


def clip(n, t, size):
    """x[a,b,c,h,w] = sin(0.9 i + 0.1) + (a + 1) cos(0.7 b + c) h / size, i the flat index: a
    texture plus a ramp whose strength depends on the clip, the frame and the channel."""
    i = torch.arange(n * t * 3 * size * size, dtype=torch.float64).view(n, t, 3, size, size)
    a = torch.arange(n, dtype=torch.float64).view(n, 1, 1, 1, 1)
    b = torch.arange(t, dtype=torch.float64).view(1, t, 1, 1, 1)
    c = torch.arange(3, dtype=torch.float64).view(1, 1, 3, 1, 1)
    h = torch.arange(size, dtype=torch.float64).view(1, 1, 1, size, 1)
    return torch.sin(0.9 * i + 0.1) + (a + 1) * torch.cos(0.7 * b + c) * h / size


def tiny_models():
    tsn_m = trunk2d(3)
    tsn_m.dropout = nn.Dropout(0.5)
    tsn_m.fc = nn.Linear(TINY_WIDTH * 32, TINY_CLASSES)
    tsm_m = trunk2d(3)
    tsm_m.dropout = nn.Dropout(0.5)
    tsm_m.fc = nn.Linear(TINY_WIDTH * 32, TINY_CLASSES)
    st = trunk2d(6)
    st.temporal2 = TemporalBlock(TINY_WIDTH * 8)
    st.temporal3 = TemporalBlock(TINY_WIDTH * 16)
    st.xception = Xception(TINY_WIDTH * 32, TINY_WIDTH * 16)
    st.fc = nn.Linear(TINY_WIDTH * 16, TINY_CLASSES)
    return {
        "tsn": (tsn_m, lambda m: tsn_forward(m, clip(2, 3, 32), False)),
        "tsm": (tsm_m, lambda m: tsn_forward(m, clip(2, 4, 32), True)),
        "stnet": (st, lambda m: stnet_forward(m, clip(2, 6, 32), 2)),
        "nonlocal_c2d": (nonlocal_tiny(False), lambda m: nonlocal_net_forward(m, clip(2, 8, 32))),
        "nonlocal_i3d": (nonlocal_tiny(True), lambda m: nonlocal_net_forward(m, clip(2, 8, 32))),
    }


def write_tiny_logits():
    here = os.path.dirname(os.path.abspath(__file__))
    with open(os.path.join(here, "frame_models_tiny_logits.txt"), "w") as f:
        for name, (m, run) in tiny_models().items():
            m = m.double().eval()
            fill(m)
            with torch.no_grad():
                y = run(m)
            for k, v in m.state_dict().items():
                k = k.replace("nonlocal_", "nonlocal")
                dtype = {torch.float64: "f32", torch.int64: "i64"}[v.dtype]
                f.write("%s %s %s %s\n" % (name, k, dtype, ",".join(str(d) for d in v.shape)))
            f.write("%s #logits %s\n" % (name, " ".join("%.9g" % v for v in y.flatten().tolist())))
            print(name, "logits", y.flatten()[:3].tolist())


if __name__ == "__main__":
    main()
    write_tiny_logits()
