"""PyTorch eager peer of bench/gpu_models.cpp: the same three models, shapes, optimizers and
precisions, one JSON line per run. Plain torch only (no torchvision/transformers needed):
ResNet-50 v1.5 (torchvision's layout), TSM-ResNet-50 (shift 1/8 each way on every bottleneck's
residual branch, average consensus) and BERT-base (post-LN, GELU, scaled_dot_product_attention
as Hugging Face's SDPA attention) with a classifier on the pooled [CLS].
  python3 bench/gpu_models.py MODEL PRECISION BATCH STEPS [WARMUP]
As the C++ bench: OAR_BENCH_DEVICE=cpu runs on the CPU (threads: OMP_NUM_THREADS), OAR_BENCH_RES
sets the image side (224), OAR_BENCH_MODE=infer times eval-mode forward passes without gradients.
On the CPU the line gives the peak resident memory of the process (peak_rss_mib) and the resident
memory before the model was built (base_rss_mib), and the CPU time of all its threads per step
(cpu_ms_per_step); PyTorch keeps no CPU allocator statistics."""
import json
import math
import os
import resource
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class Bottleneck(nn.Module):
    def __init__(self, cin, planes, stride, shift_segments=0):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * 4, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * 4)
        self.down = None
        if stride != 1 or cin != planes * 4:
            self.down = nn.Sequential(nn.Conv2d(cin, planes * 4, 1, stride, bias=False),
                                      nn.BatchNorm2d(planes * 4))
        self.t = shift_segments

    def shift(self, x):
        nt, c, h, w = x.shape
        x = x.view(nt // self.t, self.t, c, h, w)
        fold = c // 8
        out = torch.zeros_like(x)
        out[:, :-1, :fold] = x[:, 1:, :fold]
        out[:, 1:, fold:2 * fold] = x[:, :-1, fold:2 * fold]
        out[:, :, 2 * fold:] = x[:, :, 2 * fold:]
        return out.view(nt, c, h, w)

    def forward(self, x):
        y = self.shift(x) if self.t else x
        y = F.relu(self.bn1(self.conv1(y)))
        y = F.relu(self.bn2(self.conv2(y)))
        y = self.bn3(self.conv3(y))
        return F.relu(y + (self.down(x) if self.down is not None else x))


class ResNet50(nn.Module):
    def __init__(self, classes, shift_segments=0):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        layers, cin = [], 64
        for planes, blocks, stride in [(64, 3, 1), (128, 4, 2), (256, 6, 2), (512, 3, 2)]:
            for i in range(blocks):
                layers.append(Bottleneck(cin, planes, stride if i == 0 else 1, shift_segments))
                cin = planes * 4
        self.layers = nn.Sequential(*layers)
        self.fc = nn.Linear(2048, classes)

    def features(self, x):
        x = F.max_pool2d(F.relu(self.bn1(self.conv1(x))), 3, 2, 1)
        return torch.flatten(F.adaptive_avg_pool2d(self.layers(x), 1), 1)

    def forward(self, x):
        return self.fc(self.features(x))


class Tsm(nn.Module):
    def __init__(self, classes, segments):
        super().__init__()
        self.net = ResNet50(classes, segments)
        self.drop = nn.Dropout(0.5)

    def forward(self, x):  # [N, T, C, H, W]
        n, t = x.shape[:2]
        f = self.net.features(x.flatten(0, 1))
        return self.net.fc(self.drop(f)).view(n, t, -1).mean(1)


class BertLayer(nn.Module):
    def __init__(self, h=768, heads=12, inter=3072):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(h, 3 * h)
        self.out = nn.Linear(h, h)
        self.ln1 = nn.LayerNorm(h, eps=1e-12)
        self.fc1 = nn.Linear(h, inter)
        self.fc2 = nn.Linear(inter, h)
        self.ln2 = nn.LayerNorm(h, eps=1e-12)
        self.drop = nn.Dropout(0.1)

    def forward(self, x, mask):
        n, l, h = x.shape
        q, k, v = self.qkv(x).view(n, l, 3, self.heads, h // self.heads).permute(2, 0, 3, 1, 4)
        a = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=0.1)
        x = self.ln1(x + self.drop(self.out(a.transpose(1, 2).reshape(n, l, h))))
        return self.ln2(x + self.drop(self.fc2(F.gelu(self.fc1(x)))))


class Bert(nn.Module):
    def __init__(self, vocab=30522, h=768, layers=12):
        super().__init__()
        self.word = nn.Embedding(vocab, h)
        self.pos = nn.Embedding(512, h)
        self.types = nn.Embedding(2, h)
        self.ln = nn.LayerNorm(h, eps=1e-12)
        self.drop = nn.Dropout(0.1)
        self.layers = nn.ModuleList(BertLayer(h) for _ in range(layers))
        self.pool = nn.Linear(h, h)
        self.cls = nn.Linear(h, 2)

    def forward(self, ids, types, mask):
        l = ids.shape[1]
        x = self.word(ids) + self.pos(torch.arange(l, device=ids.device)) + self.types(types)
        x = self.drop(self.ln(x))
        add = (1.0 - mask[:, None, None, :].to(x.dtype)) * torch.finfo(x.dtype).min
        for layer in self.layers:
            x = layer(x, add)
        return self.cls(torch.tanh(self.pool(x[:, 0])))


def rss_mib():
    """The resident memory of this process now (Linux /proc), MiB."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1048576


def main():
    model_name, precision = sys.argv[1], sys.argv[2]
    batch, steps = int(sys.argv[3]), int(sys.argv[4])
    warmup = int(sys.argv[5]) if len(sys.argv) > 5 else 5
    dev = torch.device(os.environ.get("OAR_BENCH_DEVICE", "cuda:0"))
    res = int(os.environ.get("OAR_BENCH_RES", "224"))
    mode = os.environ.get("OAR_BENCH_MODE", "train")
    if mode not in ("train", "infer"):
        sys.exit(f"OAR_BENCH_MODE must be train or infer, not {mode}")
    infer = mode == "infer"
    cuda = dev.type == "cuda"
    base_rss = rss_mib()
    torch.backends.cuda.matmul.allow_tf32 = precision == "tf32"
    torch.backends.cudnn.allow_tf32 = precision == "tf32"
    torch.manual_seed(0)
    if cuda:
        torch.zeros(1, device=dev)  # initialise CUDA: the memory statistics need a context
        torch.cuda.reset_peak_memory_stats(dev)
    unit = "images/s"
    if model_name == "resnet50":
        model = ResNet50(1000)
        inputs = (torch.randn(batch, 3, res, res),)
        y = torch.randint(0, 1000, (batch,))
    elif model_name == "tsm_r50":
        model = Tsm(400, 8)
        inputs = (torch.randn(batch, 8, 3, res, res),)
        y = torch.randint(0, 400, (batch,))
        unit = "clips/s"
    else:
        model = Bert()
        inputs = (torch.randint(1, 30522, (batch, 128)), torch.zeros(batch, 128, dtype=torch.long),
                  torch.ones(batch, 128, dtype=torch.long))
        y = torch.randint(0, 2, (batch,))
        unit = "sequences/s"
    model = model.to(dev).train(not infer)
    inputs = tuple(t.to(dev) for t in inputs)
    y = y.to(dev)
    if model_name == "bert_base":
        opt = torch.optim.AdamW(model.parameters(), lr=2e-5, weight_decay=0.01)
    else:
        opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=1e-4)

    def step():
        if infer:  # one forward pass, eval mode, no gradients
            with torch.no_grad(), torch.autocast(dev.type, dtype=torch.bfloat16,
                                                 enabled=precision == "bf16"):
                return F.cross_entropy(model(*inputs).float(), y)
        with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=precision == "bf16"):
            loss = F.cross_entropy(model(*inputs).float(), y)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        return loss

    def sync():
        if cuda:
            torch.cuda.synchronize(dev)

    for _ in range(warmup):
        step()
    sync()
    cpu0 = time.process_time()
    t0 = time.perf_counter()
    for _ in range(steps):
        loss = step()
    sync()
    s = time.perf_counter() - t0
    cpu_ms = 1000 * (time.process_time() - cpu0) / steps
    extra = {}
    if not cuda:
        extra = {"device": "cpu", "res": res, "threads": torch.get_num_threads(),
                 "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
                 "base_rss_mib": round(base_rss, 1), "cpu_ms_per_step": round(cpu_ms, 3)}
    if infer:
        extra["mode"] = "infer"
    print(json.dumps({"impl": "torch " + torch.__version__, "model": model_name,
                      "precision": precision, "batch": batch, "steps": steps,
                      "ms_per_step": round(1000 * s / steps, 3),
                      "throughput": round(batch * steps / s, 2), "unit": unit,
                      "peak_mib": round(torch.cuda.max_memory_allocated(dev) / 1048576, 1)
                      if cuda else None,
                      "loss": round(loss.item(), 4), **extra}))


if __name__ == "__main__":
    main()
