"""PyTorch CPU peer of bench/bert_cpu.cpp: the same encoder shapes (MiniLM-L6 or BERT-base, post-LN,
erf GELU, scaled_dot_product_attention as Hugging Face's SDPA attention, query/key/value as three
linears as in Hugging Face's BertSelfAttention), a classifier on the pooled [CLS], AdamW.
  python3 bench/bert_cpu.py MODEL PRECISION MODE BATCH SEQ STEPS [WARMUP]
MODEL minilm | bert_base, PRECISION fp32 | bf16 (torch.autocast), MODE infer | train.
Threads: OMP_NUM_THREADS. Peak resident memory of the process in peak_rss_mib."""
import json
import resource
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

SHAPES = {"minilm": (6, 384, 12, 1536), "bert_base": (12, 768, 12, 3072)}


class Layer(nn.Module):
    def __init__(self, h, heads, inter):
        super().__init__()
        self.heads = heads
        self.q, self.k, self.v = nn.Linear(h, h), nn.Linear(h, h), nn.Linear(h, h)
        self.out = nn.Linear(h, h)
        self.ln1 = nn.LayerNorm(h, eps=1e-12)
        self.fc1 = nn.Linear(h, inter)
        self.fc2 = nn.Linear(inter, h)
        self.ln2 = nn.LayerNorm(h, eps=1e-12)
        self.drop = nn.Dropout(0.1)

    def forward(self, x, mask):
        n, l, h = x.shape
        split = lambda t: t.view(n, l, self.heads, h // self.heads).transpose(1, 2)
        a = F.scaled_dot_product_attention(split(self.q(x)), split(self.k(x)), split(self.v(x)),
                                           attn_mask=mask, dropout_p=0.1 if self.training else 0.0)
        x = self.ln1(x + self.drop(self.out(a.transpose(1, 2).reshape(n, l, h))))
        return self.ln2(x + self.drop(self.fc2(F.gelu(self.fc1(x)))))


class Bert(nn.Module):
    def __init__(self, layers, h, heads, inter, vocab=30522):
        super().__init__()
        self.word = nn.Embedding(vocab, h, padding_idx=0)
        self.pos = nn.Embedding(512, h)
        self.types = nn.Embedding(2, h)
        self.ln = nn.LayerNorm(h, eps=1e-12)
        self.drop = nn.Dropout(0.1)
        self.layers = nn.ModuleList(Layer(h, heads, inter) for _ in range(layers))
        self.pool = nn.Linear(h, h)
        self.cls = nn.Linear(h, 2)

    def forward(self, ids, types, mask):
        l = ids.shape[1]
        x = self.word(ids) + self.pos(torch.arange(l)) + self.types(types)
        x = self.drop(self.ln(x))
        add = (1.0 - mask[:, None, None, :].to(x.dtype)) * torch.finfo(x.dtype).min
        for layer in self.layers:
            x = layer(x, add)
        return self.cls(torch.tanh(self.pool(x[:, 0])))


def main():
    model_name, precision, mode = sys.argv[1], sys.argv[2], sys.argv[3]
    batch, seq, steps = int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6])
    warmup = int(sys.argv[7]) if len(sys.argv) > 7 else 2
    if model_name not in SHAPES or precision not in ("fp32", "bf16") or mode not in ("infer", "train"):
        sys.exit("usage: bert_cpu.py minilm|bert_base fp32|bf16 infer|train BATCH SEQ STEPS [WARMUP]")
    infer = mode == "infer"
    torch.manual_seed(0)
    model = Bert(*SHAPES[model_name]).train(not infer)
    ids = torch.randint(1, 30522, (batch, seq))
    types = torch.zeros(batch, seq, dtype=torch.long)
    mask = torch.ones(batch, seq, dtype=torch.long)
    y = torch.randint(0, 2, (batch,))
    opt = torch.optim.AdamW(model.parameters(), lr=2e-5, weight_decay=0.01)
    bf16 = precision == "bf16"

    def step():
        if infer:
            with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                return F.cross_entropy(model(ids, types, mask).float(), y)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss = F.cross_entropy(model(ids, types, mask).float(), y)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        return loss

    for _ in range(warmup):
        step()
    t0, c0 = time.perf_counter(), time.process_time()
    for _ in range(steps):
        loss = step()
    s, cpu = time.perf_counter() - t0, time.process_time() - c0
    print(json.dumps({"impl": "torch " + torch.__version__, "model": model_name,
                      "precision": precision, "mode": mode, "batch": batch, "seq": seq,
                      "steps": steps, "threads": torch.get_num_threads(),
                      "ms_per_step": round(1000 * s / steps, 3),
                      "cpu_ms_per_step": round(1000 * cpu / steps, 3),
                      "throughput": round(batch * steps / s, 2),
                      "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
                      "loss": round(loss.item(), 4)}))


if __name__ == "__main__":
    main()
