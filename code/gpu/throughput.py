"""GPU session only: GPT-2-124M's shape, random weights, bf16 autocast steps -> tokens/s and MFU.

    python code/gpu/throughput.py [PEAK_FLOPS]   # default 989e12, the H100/H200 dense bf16 peak

FLOPs per token: 6N for the matmuls plus 12·layers·width·seq for attention (PaLM, appendix B).
"""

import json
import sys
import time

import torch
from transformers import GPT2Config, GPT2LMHeadModel

torch.manual_seed(0)
cfg = GPT2Config(n_layer=12, n_embd=768, n_head=12, n_positions=1024, vocab_size=50304)
model = GPT2LMHeadModel(cfg).cuda()
n = sum(p.numel() for p in model.parameters())
opt = torch.optim.AdamW(model.parameters(), lr=1e-4, fused=True)
B, T = 16, 1024
x = torch.randint(0, 50304, (B, T), device="cuda")
out = {}


def step(m):
    with torch.autocast("cuda", dtype=torch.bfloat16):
        loss = m(input_ids=x, labels=x).loss
    loss.backward()
    opt.step()
    opt.zero_grad(set_to_none=True)


for name, m in (("eager", model), ("compiled", torch.compile(model))):
    # each run its own peak (the weights and AdamW state stay allocated)
    torch.cuda.reset_peak_memory_stats()
    for _ in range(5):
        step(m)
    torch.cuda.synchronize()
    t = time.perf_counter()
    k = 20
    for _ in range(k):
        step(m)
    torch.cuda.synchronize()
    dt = (time.perf_counter() - t) / k
    tok = B * T / dt
    flops_per_tok = 6 * n + 12 * cfg.n_layer * cfg.n_embd * T  # PaLM appendix B accounting
    peak = float(sys.argv[1]) if len(sys.argv) > 1 else 989e12
    out[name] = {
        "params": n,
        "tokens_per_second": tok,
        "step_seconds": dt,
        "mfu": tok * flops_per_tok / peak,
        "peak_mem_gib": torch.cuda.max_memory_allocated() / 2**30,
    }
print(json.dumps(out, indent=1))
