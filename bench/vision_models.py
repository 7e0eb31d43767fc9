"""PyTorch eager peer of bench/vision_models.cpp: the same torchvision models, shapes, optimizer
and precision, one JSON line per run (peak_mib is null: PyTorch keeps no CPU allocator statistics).
  python3 bench/vision_models.py MODEL PRECISION MODE BATCH RES STEPS [WARMUP]
Threads: OMP_NUM_THREADS. bf16 is torch.autocast("cpu", torch.bfloat16)."""
import json
import os
import resource
import sys
import time

import torch
import torchvision


def rss_mib():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1048576.0


def main():
    if len(sys.argv) < 7:
        sys.exit(__doc__)
    name, precision, mode = sys.argv[1:4]
    batch, res, steps = (int(v) for v in sys.argv[4:7])
    warmup = int(sys.argv[7]) if len(sys.argv) > 7 else 2
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "2")))
    base = rss_mib()
    torch.manual_seed(0)
    model = getattr(torchvision.models, name)()
    infer = mode == "infer"
    model.train(not infer)
    x = torch.randn(batch, 3, res, res)
    y = torch.randint(0, 1000, (batch,))
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=1e-4)
    bf16 = precision == "bf16"

    def run():
        if infer:
            with torch.no_grad(), torch.autocast("cpu", torch.bfloat16, enabled=bf16):
                return model(x)
        with torch.autocast("cpu", torch.bfloat16, enabled=bf16):
            loss = torch.nn.functional.cross_entropy(model(x).float(), y)
        loss.backward()
        opt.step()
        opt.zero_grad()
        return loss

    for _ in range(warmup):
        run()
    t0 = time.perf_counter()
    for _ in range(steps):
        run()
    s = time.perf_counter() - t0
    print(json.dumps({
        "impl": f"torch {torch.__version__}", "model": name, "precision": precision, "mode": mode,
        "batch": batch, "res": res, "threads": torch.get_num_threads(), "steps": steps,
        "ms_per_step": round(1000 * s / steps, 3), "images_per_s": round(batch * steps / s, 2),
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
        "base_rss_mib": round(base, 1), "peak_mib": None}))


if __name__ == "__main__":
    main()
