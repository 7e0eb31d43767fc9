"""PyTorch side of the engine benchmark: the same cases as bench/engine_ops.cpp, same output.

Run through bench/run_engine, which installs PyTorch into bench/.venv (never a dependency of oar).
"""
import json
import os
import sys
import time

import torch
import torch.nn.functional as F


# OAR_BENCH_CLOCK=cpu: process CPU time instead of the wall clock (as bench/engine_ops.cpp).
CLOCK = time.process_time if os.environ.get("OAR_BENCH_CLOCK") == "cpu" else time.perf_counter


def median_ms(fn, warmup, iters):
    for _ in range(warmup):
        fn()
    t = []
    for _ in range(iters):
        a = CLOCK()
        fn()
        t.append((CLOCK() - a) * 1e3)
    t.sort()
    return t[len(t) // 2]


def peak_rss_mb():
    import resource
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


ONLY = sys.argv[2] if len(sys.argv) > 2 else None  # optional case filter (substring)


def report(name, fn, warmup=3, iters=10):
    if ONLY and ONLY not in name:
        return
    fn()
    ms = median_ms(fn, warmup, iters)
    print(json.dumps({"case": name, "ms": round(ms, 4), "peak_rss_mb": round(peak_rss_mb(), 1)}),
          flush=True)


def param(shape, seed, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(shape, generator=g) * 0.05).to(dtype).requires_grad_()


def clear(*ts):
    for t in ts:
        t.grad = None


def main():
    torch.set_num_threads(int(sys.argv[1]) if len(sys.argv) > 1 else 1)
    g = torch.Generator().manual_seed(1)
    a, b = torch.randn(1024, 1024, generator=g), torch.randn(1024, 1024, generator=g)
    with torch.no_grad():
        report("matmul_1024_f32_fwd", lambda: a @ b)
        ab, bb = a.bfloat16(), b.bfloat16()
        report("matmul_1024_bf16_fwd", lambda: ab @ bb)

    x, w, bias = param((2048, 384), 2), param((1536, 384), 3), param((1536,), 4)
    def lin():
        clear(x, w, bias)
        F.linear(x, w, bias).sum().backward()
    report("linear_2048x384x1536_fwd_bwd", lin)

    # Batch-1 BERT inference linears (128 tokens), cycling through `copies` weights so that, as in
    # a model's forward pass, the weight is not in cache (as bench/engine_ops.cpp).
    for n_in, n_out, copies in ((384, 1536, 32), (768, 3072, 16)):
        xi = torch.randn(128, n_in, generator=g)
        ws = [param((n_out, n_in), 100 + i) for i in range(copies)]
        bs = [param((n_out,), 200 + i) for i in range(copies)]
        def cold(xi=xi, ws=ws, bs=bs):
            with torch.no_grad():
                for wi, bi in zip(ws, bs):
                    F.linear(xi, wi, bi)
        report(f"linear_infer_128x{n_in}x{n_out}_cold", cold)

    x = param((8, 64, 56, 56), 5)
    w = param((64, 64, 3, 3), 6)
    def c3():
        clear(x, w)
        F.conv2d(x, w, padding=1).sum().backward()
    report("conv3x3_8x64x56x56_fwd_bwd", c3, 2, 5)
    w1 = param((256, 64, 1, 1), 7)
    def c1():
        clear(x, w1)
        F.conv2d(x, w1).sum().backward()
    report("conv1x1_8x64to256x56x56_fwd_bwd", c1, 2, 5)
    wd = param((64, 1, 3, 3), 8)
    def dw():
        clear(x, wd)
        F.conv2d(x, wd, padding=1, groups=64).sum().backward()
    report("depthwise3x3_8x64x56x56_fwd_bwd", dw, 2, 5)
    rm, rv, gamma, beta = torch.zeros(64), torch.ones(64), param((64,), 9), param((64,), 10)
    def bn():
        clear(x, gamma, beta)
        F.batch_norm(x, rm, rv, gamma, beta, training=True).sum().backward()
    report("batchnorm_8x64x56x56_fwd_bwd", bn)

    x, gamma, beta = param((32 * 128, 768), 11), param((768,), 12), param((768,), 13)
    def ln():
        clear(x, gamma, beta)
        F.layer_norm(x, (768,), gamma, beta).sum().backward()
    report("layernorm_4096x768_fwd_bwd", ln)
    s = param((32, 12, 128, 128), 14)
    ws = torch.randn(32, 12, 128, 128, generator=g)
    def sm():
        clear(s)
        (F.softmax(s, -1) * ws).sum().backward()
    report("softmax_32x12x128x128_fwd_bwd", sm)

    x = param((50, 32, 256), 15)
    lstm = torch.nn.LSTM(256, 512)
    def ls():
        clear(x)
        lstm.zero_grad(set_to_none=True)
        lstm(x)[0].sum().backward()
    report("lstm_50x32x256h512_fwd_bwd", ls, 2, 5)

    lstm2 = torch.nn.LSTM(256, 256, num_layers=2, bidirectional=True)
    def ls2():
        clear(x)
        lstm2.zero_grad(set_to_none=True)
        lstm2(x)[0].sum().backward()
    report("lstm_2layer_bidir_50x32x256h256_fwd_bwd", ls2, 2, 5)

    gru = torch.nn.GRU(256, 512)
    def gr():
        clear(x)
        gru.zero_grad(set_to_none=True)
        gru(x)[0].sum().backward()
    report("gru_50x32x256h512_fwd_bwd", gr, 2, 5)

    x = torch.randn(64, 2, generator=g)
    y = torch.randint(0, 3, (64,), generator=g)
    mlp = [param((32, 2), 30), param((32,), 31), param((32, 32), 32), param((32,), 33),
           param((3, 32), 34), param((3,), 35)]
    def mlp_step():
        for p in mlp:
            p.grad = None
        w1, b1, w2, b2, w3, b3 = mlp
        h = F.relu(F.linear(F.relu(F.linear(x, w1, b1)), w2, b2))
        F.cross_entropy(F.linear(h, w3, b3), y).backward()
        with torch.no_grad():
            for p in mlp:
                p.add_(p.grad, alpha=-0.01)
    report("tiny_mlp_train_step_b64", mlp_step, 50, 200)

    x = torch.randn(64, 1, 28, 28, generator=g)
    y = torch.randint(0, 10, (64,), generator=g)
    c1w, c1b, c2w, c2b = param((32, 1, 3, 3), 20), param((32,), 21), param((64, 32, 3, 3), 22), param((64,), 23)
    fw, fb = param((10, 64 * 7 * 7), 24), param((10,), 25)
    g1, h1, g2, h2 = param((32,), 26), param((32,), 27), param((64,), 28), param((64,), 29)
    rm1, rv1, rm2, rv2 = torch.zeros(32), torch.ones(32), torch.zeros(64), torch.ones(64)
    ps = [c1w, c1b, c2w, c2b, fw, fb, g1, h1, g2, h2]
    def step():
        for p in ps:
            p.grad = None
        h = F.max_pool2d(F.relu(F.batch_norm(F.conv2d(x, c1w, c1b, padding=1), rm1, rv1, g1, h1, training=True)), 2)
        h = F.max_pool2d(F.relu(F.batch_norm(F.conv2d(h, c2w, c2b, padding=1), rm2, rv2, g2, h2, training=True)), 2)
        loss = F.cross_entropy(F.linear(h.flatten(1), fw, fb), y)
        loss.backward()
        with torch.no_grad():
            for p in ps:
                p.add_(p.grad, alpha=-0.01)
    report("small_cnn_train_step_b64", step, 3, 20)


if __name__ == "__main__":
    main()
