"""Memory: the calculator's bytes against the bytes the program really holds.

    python code/labs/memory.py --output_dir runs/memory                  # lesson preset, CPU seconds
    python code/labs/memory.py --output_dir runs/memory --preset smoke   # the tests' run
    python code/labs/memory.py --output_dir runs/memory --preset gpu     # GPT-2-124M shape on a GPU
    python code/labs/memory.py estimate --params 7.5e9 --gpus 64 --zero-stage 1 --json
    python code/labs/memory.py estimate --model gpt2-medium --batch 8 --seq-len 1024 --json

A normal run builds real HF GPT-2 models at several sizes (random weights), takes one AdamW step, and
compares the calculator in `lifecycle.memory` with the tensors' real bytes (weights, gradients, optimizer
state) and with the bytes autograd saves for backward, with and without activation checkpointing.
`estimate` is the calculator on its own. Writes `metrics.json`, `results.md`, `activations.md`,
`family.md`, `zero.md` and `breakdown.png`.
"""

import argparse
import json
import sys
from dataclasses import dataclass, field

import torch
import transformers
from transformers import GPT2Config, GPT2LMHeadModel, set_seed

from lifecycle import plots, report
from lifecycle.cli import LabArgs, LabError, parse, run, write_metrics
from lifecycle.device import measured_on
from lifecycle.memory import (
    DTYPE_BYTES, GPT2_FAMILY, LLAMA2_7B, activation_bytes, enable_checkpointing, estimate, exact_adamw_state_bytes,
    gpt2_param_tensors, gpt2_params, korthikanti_activation_bytes, llama_params, params_from_config,
    saved_activation_bytes, state_bytes,
)


# --8<-- [start:args]
@dataclass
class Args(LabArgs):
    positive = ("batch_size", "seq_len", "vocab_size")
    sizes: str | None = field(default=None, metadata={"help": "Model shapes LAYERSxWIDTHxHEADS, comma-separated."})
    batch_size: int | None = field(default=None, metadata={"help": "Sequences per forward pass."})
    seq_len: int | None = field(default=None, metadata={"help": "Tokens per sequence."})
    vocab_size: int | None = field(default=None, metadata={"help": "Vocabulary of the models built."})


PRESETS = {
    "smoke": dict(sizes="1x32x2,2x64x2,3x96x4", batch_size=2, seq_len=32, vocab_size=512),
    "lesson": dict(sizes="2x64x2,4x128x4,6x256x8,8x384x6", batch_size=4, seq_len=128, vocab_size=1024),
    "gpu": dict(sizes="12x768x12", batch_size=4, seq_len=1024, vocab_size=50257),  # GPT-2-124M's shape
}
# --8<-- [end:args]


def shapes(spec: str) -> list[tuple[int, int, int]]:
    try:
        out = [tuple(int(x) for x in s.split("x")) for s in spec.split(",")]
    except ValueError:
        raise LabError(f"--sizes {spec!r}: expected LAYERSxWIDTHxHEADS, comma-separated") from None
    for size in out:
        if len(size) != 3 or min(size) <= 0 or size[1] % size[2]:
            raise LabError(f"--sizes {spec!r}: each size needs positive numbers, width divisible by heads")
    return out


def config(n_layer, n_embd, n_head, args, dropout: float) -> GPT2Config:
    return GPT2Config(
        n_layer=n_layer, n_embd=n_embd, n_head=n_head, vocab_size=args.vocab_size, n_positions=args.seq_len,
        resid_pdrop=dropout, embd_pdrop=dropout, attn_pdrop=dropout, bos_token_id=0, eos_token_id=0,
        attn_implementation="sdpa",
    )


# --8<-- [start:static]
def static_check(cfg: GPT2Config, ids: torch.Tensor) -> dict:
    """One AdamW step on a real model, then the calculator against the real tensors' bytes."""
    model = GPT2LMHeadModel(cfg).to(ids.device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    model(ids, labels=ids).loss.backward()
    optimizer.step()  # AdamW creates exp_avg, exp_avg_sq and step lazily, at the first step
    real = state_bytes(model, optimizer)
    params = params_from_config(cfg)  # from the config alone
    calc = exact_adamw_state_bytes(params, gpt2_param_tensors(cfg.n_layer))
    assert params == sum(p.numel() for p in model.parameters())  # the tied wte/lm_head counts once
    total_real, total_calc = sum(real.values()), sum(calc.values())
    return {"params": params, "static_bytes_real": total_real, "static_bytes_calc": total_calc,
            "static_rel_error": abs(total_calc - total_real) / total_real,
            **{f"{k}_bytes_real": v for k, v in real.items()}}
# --8<-- [end:static]


# --8<-- [start:activations]
def activation_check(cfg: GPT2Config, ids: torch.Tensor, checkpointing: bool) -> dict:
    """Bytes autograd saves for backward (measured) against the formula, and against Korthikanti's."""
    model = GPT2LMHeadModel(cfg).to(ids.device).train()
    if checkpointing:
        enable_checkpointing(model)
    measured = saved_activation_bytes(model, lambda: model(ids, labels=ids).loss.backward())
    b, s = ids.shape
    shape = (cfg.n_layer, cfg.n_embd, cfg.n_head, cfg.vocab_size)
    formula = activation_bytes(*shape, b, s, checkpointing, dropout=cfg.resid_pdrop > 0)
    outside = activation_bytes(0, *shape[1:], b, s, checkpointing, dropout=cfg.resid_pdrop > 0)
    korthikanti = 2 * korthikanti_activation_bytes(*shape[:3], b, s, checkpointing)  # ×2: 16-bit -> fp32
    return {
        "size": f"{cfg.n_layer}x{cfg.n_embd}x{cfg.n_head}", "checkpointing": int(checkpointing),
        "dropout": cfg.resid_pdrop, "measured_bytes": measured, "formula_bytes": formula,
        "rel_error": abs(formula - measured) / measured,
        "lm_head_share": outside / measured,  # log-softmax over the vocabulary and the rest outside the blocks
        "korthikanti_blocks_rel_error": (korthikanti - (measured - outside)) / (measured - outside),
    }
# --8<-- [end:activations]


def family_rows(batch: int = 1, seq_len: int = 1024) -> list[dict]:
    """The GPT-2 family and a 7B model: mixed-precision AdamW training on one device against fp16 inference."""
    rows = []
    models = {name: (l, d, h, 50257) for name, (l, d, h) in GPT2_FAMILY.items()}
    seven = LLAMA2_7B
    models["7B (Llama-2 shape)"] = (seven["n_layer"], seven["n_embd"], seven["n_head"], seven["vocab_size"])
    for name, shape in models.items():
        params = llama_params(**{k: v for k, v in seven.items() if k != "n_head"}) if name.startswith("7B") else None
        e = estimate(params or _gpt2(shape), shape=shape, batch=batch, seq_len=seq_len)
        ck = estimate(params or _gpt2(shape), shape=shape, batch=batch, seq_len=seq_len, checkpointing=True)
        rows.append({
            "model": name, "params": e["params"], "weights_gb": e["weights_bytes"] / 1e9,
            "model_states_gb": e["model_state_bytes_per_gpu"] / 1e9, "activations_gb": e["activation_bytes"] / 1e9,
            "activations_ckpt_gb": ck["activation_bytes"] / 1e9, "training_gb": e["training_bytes_per_gpu"] / 1e9,
            "kv_cache_gb": e["kv_cache_bytes"] / 1e9, "inference_gb": e["inference_bytes"] / 1e9,
            "training_over_inference": e["training_bytes_per_gpu"] / e["inference_bytes"],
        })
    return rows


def _gpt2(shape) -> int:
    return gpt2_params(shape[0], shape[1], shape[3])


def zero_rows() -> list[dict]:
    """The ZeRO paper's example (Rajbhandari et al. 2020, Fig. 1): Ψ = 7.5B on 64 devices, K = 12."""
    return [{"zero_stage": z, "gb_per_gpu": estimate(7.5e9, gpus=64, zero_stage=z)["model_state_bytes_per_gpu"] / 1e9}
            for z in range(4)]


def breakdown_plot(rows: list[dict], path) -> None:
    """Each model's training memory as shares of its total: the weights are the smallest part."""
    fig, ax = plots.plt.subplots(figsize=(6.4, 3.6))
    names = [r["model"] for r in rows]
    parts = [("weights (bf16)", [r["weights_gb"] for r in rows]),
             ("gradients (bf16)", [r["weights_gb"] for r in rows]),
             ("AdamW: fp32 master + 2 moments", [r["model_states_gb"] - 2 * r["weights_gb"] for r in rows]),
             ("activations (1×1024 tokens)", [r["activations_gb"] for r in rows])]
    totals = [r["training_gb"] for r in rows]
    left = [0.0] * len(rows)
    for label, values in parts:
        shares = [100 * v / t for v, t in zip(values, totals)]
        ax.barh(names, shares, left=left, label=label)
        left = [a + b for a, b in zip(left, shares)]
    for i, t in enumerate(totals):
        ax.text(101, i, f"{t:.0f} GB" if t >= 10 else f"{t:.1f} GB", va="center", fontsize=8)
    ax.set_xlim(0, 115)
    ax.set_xlabel("share of training memory per device (%)")
    ax.set_title("Optimizer states and activations dominate the weights")
    ax.invert_yaxis()
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.45, -0.2), ncol=2)
    plots.save(fig, path)


def gpu_peak(cfg: GPT2Config, ids: torch.Tensor) -> dict:
    """On a GPU: torch.cuda.max_memory_allocated over one training step, against the calculator."""
    torch.cuda.reset_peak_memory_stats()
    model = GPT2LMHeadModel(cfg).cuda().train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    before = torch.cuda.memory_allocated()
    saved = saved_activation_bytes(model, lambda: model(ids, labels=ids).loss.backward())
    optimizer.step()
    peak = torch.cuda.max_memory_allocated()
    static = sum(exact_adamw_state_bytes(params_from_config(cfg), gpt2_param_tensors(cfg.n_layer)).values())
    act = activation_bytes(cfg.n_layer, cfg.n_embd, cfg.n_head, cfg.vocab_size, *ids.shape, dropout=cfg.resid_pdrop > 0)
    return {"gpu_weights_bytes_allocated": before, "gpu_peak_bytes": peak, "gpu_saved_activation_bytes": saved,
            "gpu_predicted_bytes": static + act, "gpu_peak_rel_error": abs(static + act - peak) / peak}


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["estimate"]:
        return estimate_cli(argv[1:])
    args = parse(Args, PRESETS, argv)
    transformers.logging.set_verbosity_error()
    device = "cuda" if args.preset == "gpu" and torch.cuda.is_available() else "cpu"  # gpu preset: CPU too
    if device == "cpu":
        torch.set_num_threads(1)

    # --8<-- [start:run]
    static, acts = [], []
    for n_layer, n_embd, n_head in shapes(args.sizes):
        set_seed(args.seed)
        ids = torch.randint(0, args.vocab_size, (args.batch_size, args.seq_len), device=device)
        static.append(static_check(config(n_layer, n_embd, n_head, args, 0.0), ids))
        for dropout in (0.0, 0.1):  # HF's default is 0.1; dropout saves masks, so it changes the bytes
            for checkpointing in (False, True):
                acts.append(activation_check(config(n_layer, n_embd, n_head, args, dropout), ids, checkpointing))
    # --8<-- [end:run]

    family, zero = family_rows(), zero_rows()
    ratio = {r["size"]: r["measured_bytes"] for r in acts if r["checkpointing"] and r["dropout"] == 0}
    full = {r["size"]: r["measured_bytes"] for r in acts if not r["checkpointing"] and r["dropout"] == 0}
    metrics = {
        "sizes": len(static),
        "static_bytes_rel_error": max(r["static_rel_error"] for r in static),
        "activation_bytes_rel_error_max": max(r["rel_error"] for r in acts),
        "activation_checks": len(acts),
        "korthikanti_blocks_rel_error_min": min(r["korthikanti_blocks_rel_error"] for r in acts if not r["checkpointing"]),
        "korthikanti_blocks_rel_error_max": max(r["korthikanti_blocks_rel_error"] for r in acts if not r["checkpointing"]),
        "checkpointing_activation_ratio_max": max(ratio[k] / full[k] for k in full),
        "lm_head_share_max": max(r["lm_head_share"] for r in acts),
        "static": static, "activations": acts, "family": family, "zero": zero,
        "gpt2_training_over_inference": family[0]["training_over_inference"],
        "gpt2_optimizer_over_weights": (family[0]["model_states_gb"] - 2 * family[0]["weights_gb"]) / family[0]["weights_gb"],
    }
    if device == "cuda":
        n_layer, n_embd, n_head = shapes(args.sizes)[0]
        metrics |= gpu_peak(config(n_layer, n_embd, n_head, args, 0.1), ids)
    elif args.preset == "gpu":
        print("memory: no CUDA device: the GPU peak check (torch.cuda.max_memory_allocated) is skipped", file=sys.stderr)
    write_metrics(args.output_dir, metrics)
    write_tables(args, metrics, measured_on("fp32", cpu=device == "cpu"))
    breakdown_plot(family, args.output_dir / "breakdown.png")
    return metrics


def write_tables(args, m, where: str) -> None:
    out = args.output_dir
    (out / "results.md").write_text(report.table([
        ("model sizes built (real HF GPT-2, random weights)", m["sizes"], ""),
        ("weights + grads + AdamW state: calculator vs real tensors, relative error", m["static_bytes_rel_error"], ".3g"),
        ("saved activations: formula vs measured, worst relative error", m["activation_bytes_rel_error_max"], ".3g"),
        ("configurations checked (size × dropout × checkpointing)", m["activation_checks"], ""),
        ("Korthikanti formula on HF blocks, relative error (most negative)", m["korthikanti_blocks_rel_error_min"], ".0%"),
        ("Korthikanti formula on HF blocks, relative error (least negative)", m["korthikanti_blocks_rel_error_max"], ".0%"),
        ("largest share of saved bytes outside the blocks (LM head, loss)", m["lm_head_share_max"], ".0%"),
        ("checkpointing: saved bytes with / without (worst size)", m["checkpointing_activation_ratio_max"], ".2f"),
        ("measured on", where, ""),
    ]))
    (out / "activations.md").write_text(report.records(m["activations"], [
        ("size", "layers×width×heads", ""), ("dropout", "dropout", ".1f"), ("checkpointing", "checkpointing", ""),
        ("measured_bytes", "measured (B)", ","), ("formula_bytes", "formula (B)", ","),
        ("rel_error", "error", ".3g"), ("korthikanti_blocks_rel_error", "Korthikanti, blocks", "+.0%"),
        ("lm_head_share", "outside blocks", ".0%"),
    ]))
    (out / "family.md").write_text(report.records(m["family"], [
        ("model", "model", ""), ("params", "parameters", ","), ("weights_gb", "bf16 weights (GB)", ".2f"),
        ("model_states_gb", "weights+grads+AdamW (GB)", ".1f"), ("activations_gb", "activations (GB)", ".1f"),
        ("activations_ckpt_gb", "activations, checkpointed (GB)", ".2f"), ("training_gb", "training total (GB)", ".1f"),
        ("kv_cache_gb", "KV cache (GB)", ".3f"), ("inference_gb", "inference total (GB)", ".2f"),
        ("training_over_inference", "training ÷ inference", ".1f"),
    ]))
    (out / "zero.md").write_text(report.records(m["zero"], [("zero_stage", "ZeRO stage", ""), ("gb_per_gpu", "GB per GPU", ".1f")]))


class EstimateParser(argparse.ArgumentParser):
    def error(self, message):  # one line and exit 2, like every lab
        raise LabError(f"estimate: {message}")


# --8<-- [start:estimate]
def estimate_cli(argv: list[str]) -> dict:
    """`estimate`: the calculator alone, for any size: `--params N` or `--model NAME`."""
    p = EstimateParser(prog="memory.py estimate")
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--params", type=float, help="parameter count, e.g. 7.5e9")
    which.add_argument("--model", choices=[*GPT2_FAMILY, "llama-2-7b"], help="a named shape (gives KV cache, activations)")
    p.add_argument("--gpus", type=int, default=1, help="data-parallel devices that ZeRO shards over")
    p.add_argument("--zero-stage", type=int, default=0, choices=range(4), help="0: none, 1: optimizer, 2: +grads, 3: +weights")
    p.add_argument("--fp32", action="store_true", help="pure fp32 AdamW (16 B/param) instead of mixed precision")
    p.add_argument("--batch", type=int, help="micro-batch per device, for activations")
    p.add_argument("--seq-len", type=int, help="tokens per sequence, for activations and the KV cache")
    p.add_argument("--checkpointing", action="store_true", help="activation checkpointing: keep block inputs only")
    p.add_argument("--inference-dtype", default="fp16", choices=list(DTYPE_BYTES), help="weights and KV cache dtype")
    p.add_argument("--json", action="store_true", help="print JSON")
    a = p.parse_args(argv)
    if a.gpus <= 0 or (a.params is not None and a.params <= 0):
        raise LabError("estimate: --gpus and --params must be positive")
    shape, params = None, a.params
    if a.model == "llama-2-7b":
        s = LLAMA2_7B
        shape, params = (s["n_layer"], s["n_embd"], s["n_head"], s["vocab_size"]), llama_params(
            s["n_layer"], s["n_embd"], s["intermediate"], s["vocab_size"])
    elif a.model:
        shape = (*GPT2_FAMILY[a.model], 50257)
        params = _gpt2(shape)
    result = estimate(params, a.gpus, a.zero_stage, not a.fp32, shape, a.batch, a.seq_len, a.checkpointing,
                      a.inference_dtype)
    if a.json:
        print(json.dumps(result, indent=2))
    else:
        for k, v in result.items():
            print(f"{k:28} {v / 1e9:12.3f} GB" if k.endswith("_bytes") or k.endswith("_per_gpu") else f"{k:28} {v}")
    return result
# --8<-- [end:estimate]


if __name__ == "__main__":
    run(main)
