"""Reference state dicts of oar's frame-based video classifiers, built independently in PyTorch.

Writes tests/video/golden/frame_models_state_dicts.txt (format of tests/vision/data/
torchvision_state_dicts.txt: `model #params N`, then `model name dtype d0,d1,...` per entry),
which tests/video/models/frame_models_test.cpp compares oar's models against.

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


if __name__ == "__main__":
    main()
