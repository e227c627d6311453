"""Memory: the calculator's bytes against the bytes a training step really holds.

    python code/labs/memory.py --output_dir runs/memory                        # lesson: a minute
    python code/labs/memory.py --output_dir runs/memory --preset smoke         # the tests' run
    python code/labs/memory.py --output_dir runs/memory --preset gpu           # GPT-2-124M, CUDA
    python -m lifecycle.memory estimate --model gpt2 --batch 4 --seq-len 1024  # the calculator

For each model size the lab builds a real HF GPT-2 (random weights) and compares the calculator in
`lifecycle.memory` with what the program holds: the weights, gradients and AdamW state after a
step; the bytes autograd saves for backward; and the peak of a whole training step (the profiler's
memory timeline on a CPU, `torch.cuda.max_memory_allocated` on a GPU). At `--grid_size` it checks
every attention path (eager, SDPA, SDPA's math backend), dtype (fp32, bf16 autocast), dropout and
checkpointing setting. Writes `metrics.json`, `results.md`, `activations.md`, `peaks.md`,
`family.md`, `zero.md`, `breakdown.png`.

Longer than the 250 lines a lab aims for: three checks (the static state, the bytes saved for
backward in every setting, the peak of a step), each on a CPU or a GPU, and six tables in its
report. The calculator they check lives in `lifecycle/memory.py`.
"""

import gc
import itertools
from contextlib import nullcontext
from dataclasses import dataclass, field

import torch
import transformers
from torch.nn.attention import SDPBackend, sdpa_kernel
from transformers import GPT2Config, GPT2LMHeadModel, set_seed

from lifecycle import plots, report
from lifecycle.cli import LabArgs, LabError, parse, run, write_metrics
from lifecycle.device import measured_on
from lifecycle.memory import (
    Step,
    activation_bytes,
    cpu_peak_bytes,
    enable_checkpointing,
    exact_adamw_state_bytes,
    family_rows,
    gpt2_param_tensors,
    korthikanti_activation_bytes,
    model_states,
    params_from_config,
    saved_activation_bytes,
    state_bytes,
    step_peak,
)


# --8<-- [start:args]
@dataclass
class Args(LabArgs):
    positive = ("batch_size", "seq_len", "vocab_size")
    sizes: str | None = field(
        default=None, metadata={"help": "Model shapes LAYERSxWIDTHxHEADS, comma-separated."}
    )
    grid_size: str | None = field(
        default=None, metadata={"help": "The shape that runs every option and the peaks."}
    )
    batch_size: int | None = field(default=None, metadata={"help": "Sequences per forward pass."})
    seq_len: int | None = field(default=None, metadata={"help": "Tokens per sequence."})
    vocab_size: int | None = field(
        default=None, metadata={"help": "Vocabulary of the models built."}
    )


PRESETS = {
    "smoke": dict(
        sizes="1x32x2,2x64x2,3x96x4", grid_size="2x64x2", batch_size=2, seq_len=32, vocab_size=512
    ),
    "lesson": dict(
        sizes="2x64x2,4x128x4,6x256x8,8x384x6",
        grid_size="4x128x4",
        batch_size=4,
        seq_len=128,
        vocab_size=1024,
    ),
    # GPT-2-124M
    "gpu": dict(
        sizes="12x768x12", grid_size="12x768x12", batch_size=4, seq_len=1024, vocab_size=50257
    ),
}
# --8<-- [end:args]


def shapes(spec: str, flag: str = "--sizes") -> list[tuple[int, int, int]]:
    try:
        out = [tuple(int(x) for x in s.split("x")) for s in spec.split(",")]
    except ValueError:
        raise LabError(f"{flag} {spec!r}: expected LAYERSxWIDTHxHEADS, comma-separated") from None
    for size in out:
        if len(size) != 3 or min(size) <= 0 or size[1] % size[2]:
            raise LabError(
                f"{flag} {spec!r}: each size needs positive numbers, width divisible by heads"
            )
    return out


def build(size, args, step: Step, device: str) -> GPT2LMHeadModel:
    """A random-weight HF GPT-2 of `size`, with `step`'s attention, dropout and checkpointing."""
    p = step.dropout
    cfg = GPT2Config(
        n_layer=size[0],
        n_embd=size[1],
        n_head=size[2],
        vocab_size=args.vocab_size,
        n_positions=args.seq_len,
        resid_pdrop=p,
        embd_pdrop=p,
        attn_pdrop=p,
        bos_token_id=0,
        eos_token_id=0,
        attn_implementation="eager" if step.attn == "eager" else "sdpa",
    )
    model = GPT2LMHeadModel(cfg).to(device).train()
    if step.checkpointing:
        enable_checkpointing(model)
    return model


# --8<-- [start:step]
def forward_backward(model, ids, step: Step) -> None:
    """One forward with the loss, then backward, under `step`'s autocast dtype and attention."""
    backend = sdpa_kernel(SDPBackend.MATH) if step.attn == "math" else nullcontext()
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(step.dtype)
    autocast = torch.autocast(ids.device.type, dtype=dtype) if dtype else nullcontext()
    with backend:  # around backward too: checkpointing runs the forward again there
        with autocast:
            loss = model(ids, labels=ids).loss
        loss.backward()


# --8<-- [end:step]


# --8<-- [start:static]
def static_check(size, args, ids) -> dict:
    """One AdamW step on a real model, then the calculator against the real tensors' bytes."""
    model = build(
        size, args, Step(device=ids.device.type, dtype="fp32", dropout=0.0), ids.device.type
    )
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    model(ids, labels=ids).loss.backward()
    # AdamW creates exp_avg (m), exp_avg_sq (v) and step lazily, at the first step
    optimizer.step()
    real = state_bytes(model, optimizer)
    params = params_from_config(model.config)  # from the config alone
    calc = exact_adamw_state_bytes(params, gpt2_param_tensors(size[0]))
    assert params == sum(p.numel() for p in model.parameters())  # the tied wte/lm_head counts once
    total_real, total_calc = sum(real.values()), sum(calc.values())
    return {
        "params": params,
        "static_bytes_real": total_real,
        "static_bytes_calc": total_calc,
        "static_rel_error": abs(total_calc - total_real) / total_real,
        **{f"{k}_bytes_real": v for k, v in real.items()},
    }


# --8<-- [end:static]


# --8<-- [start:activations]
def activation_check(size, args, ids, step: Step) -> dict:
    """Bytes autograd saves for backward (measured) against our formula and Korthikanti's."""
    model = build(size, args, step, ids.device.type)
    measured = saved_activation_bytes(model, lambda: forward_backward(model, ids, step))
    b, s = ids.shape
    formula = activation_bytes(*size, args.vocab_size, b, s, step)
    # embeddings, LM head, loss
    outside = activation_bytes(0, *size[1:], args.vocab_size, b, s, step)
    row = {
        "size": "x".join(map(str, size)),
        "attn": step.attn,
        "dtype": step.dtype,
        "dropout": step.dropout,
        "checkpointing": int(step.checkpointing),
        "measured_bytes": measured,
        "formula_bytes": formula,
        "rel_error": abs(formula - measured) / measured,
        "outside_share": outside / measured,
    }
    # 16-bit bytes: ×2 for fp32
    if step.dtype == "fp32" and not step.checkpointing and step.kernel != "math":
        k = 2 * korthikanti_activation_bytes(*size, b, s, scores=step.kernel != "fused")
        row["korthikanti_blocks_rel_error"] = (k - (measured - outside)) / (measured - outside)
    return row


# --8<-- [end:activations]


# --8<-- [start:peak]
def peak_check(size, args, ids, step: Step, first_step: bool) -> dict:
    """The peak bytes of one AdamW training step, measured, against `step_peak`."""
    cuda = ids.device.type == "cuda"
    if cuda:
        gc.collect()  # earlier checks' models, freed now rather than during this step
        torch.cuda.synchronize()
        base = torch.cuda.memory_allocated()  # what is still allocated is not this step's
    model = build(size, args, step, ids.device.type)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)

    def train_step():
        forward_backward(model, ids, step)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    if not first_step:
        train_step()  # AdamW's m and v now exist, as in every later step
    if cuda:
        torch.cuda.reset_peak_memory_stats()
        train_step()
        measured = torch.cuda.max_memory_allocated() - base
    else:
        measured = cpu_peak_bytes(train_step) - ids.untyped_storage().nbytes()
    b, s = ids.shape
    predicted = step_peak(*size, args.vocab_size, b, s, step, n_positions=s, first_step=first_step)
    return {
        "size": "x".join(map(str, size)),
        "dtype": step.dtype,
        "checkpointing": int(step.checkpointing),
        "first_step": int(first_step),
        "measured_peak_bytes": measured,
        "predicted_peak_bytes": predicted["peak"],
        "phase": predicted["phase"],
        "peak_rel_error": (predicted["peak"] - measured) / measured,
    }


# --8<-- [end:peak]


def write_report(args, m, where: str) -> None:
    out, cols = args.output_dir, report.records
    (out / "results.md").write_text(
        report.table(
            [
                ("model sizes built (real HF GPT-2, random weights)", m["sizes"], ""),
                (
                    "weights + grads + AdamW state: calculator vs real tensors, relative error",
                    m["static_bytes_rel_error"],
                    ".3g",
                ),
                (
                    "saved activations: formula vs measured, worst relative error",
                    m["activation_bytes_rel_error_max"],
                    ".3g",
                ),
                (
                    "configurations checked (size × attention × dtype × dropout × checkpointing)",
                    m["activation_checks"],
                    "",
                ),
                (
                    "Korthikanti formula on HF blocks, relative error (most negative)",
                    m["korthikanti_blocks_rel_error_min"],
                    ".0%",
                ),
                (
                    "Korthikanti formula on HF blocks, relative error (least negative)",
                    m["korthikanti_blocks_rel_error_max"],
                    ".0%",
                ),
                (
                    "largest share of saved bytes outside the blocks (LM head, loss)",
                    m["lm_head_share_max"],
                    ".0%",
                ),
                (
                    "checkpointing: saved bytes with / without (worst size)",
                    m["checkpointing_activation_ratio_max"],
                    ".2f",
                ),
                (
                    "peak of a training step: calculator vs measured, worst relative error",
                    m["peak_rel_error_max"],
                    ".1%",
                ),
                ("measured on", where, ""),
            ]
        )
    )
    (out / "activations.md").write_text(
        cols(
            m["activations"],
            [
                ("size", "layers×width×heads", ""),
                ("attn", "attention", ""),
                ("dtype", "dtype", ""),
                ("dropout", "dropout", ".1f"),
                ("checkpointing", "checkpointing", ""),
                ("measured_bytes", "measured (B)", ","),
                ("formula_bytes", "formula (B)", ","),
                ("rel_error", "error", ".3g"),
                ("outside_share", "outside blocks", ".0%"),
            ],
        )
    )
    (out / "peaks.md").write_text(
        cols(
            m["peaks"],
            [
                ("size", "layers×width×heads", ""),
                ("dtype", "dtype", ""),
                ("checkpointing", "checkpointing", ""),
                ("first_step", "first step", ""),
                ("measured_peak_bytes", "measured peak (B)", ","),
                ("predicted_peak_bytes", "calculator (B)", ","),
                ("phase", "at", ""),
                ("peak_rel_error", "error", "+.1%"),
            ],
        )
    )
    (out / "family.md").write_text(
        cols(
            m["family"],
            [
                ("model", "model", ""),
                ("params", "parameters", ","),
                ("weights_gb", "bf16 weights (GB)", ".2f"),
                ("model_states_gb", "weights+grads+AdamW (GB)", ".1f"),
                ("activations_gb", "activations (GB)", ".1f"),
                ("activations_ckpt_gb", "activations, checkpointed (GB)", ".2f"),
                ("training_gb", "states + activations (GB)", ".1f"),
                ("peak_gb", "step peak (GB)", ".1f"),
                ("kv_cache_gb", "KV cache (GB)", ".3f"),
                ("inference_gb", "inference total (GB)", ".2f"),
                ("training_over_inference", "training ÷ inference", ".1f"),
            ],
        )
    )
    (out / "zero.md").write_text(
        cols(m["zero"], [("zero_stage", "ZeRO stage", ""), ("gb_per_gpu", "GB per GPU", ".1f")])
    )
    # each model's training memory as shares of its total: the weights are the smallest part
    f = m["family"]
    plots.shares(
        [r["model"] for r in f],
        [
            ("weights (bf16)", [r["weights_gb"] for r in f]),
            ("gradients (bf16)", [r["weights_gb"] for r in f]),
            (
                "AdamW: fp32 master + m + v",
                [r["model_states_gb"] - 2 * r["weights_gb"] for r in f],
            ),
            ("activations (1×1024 tokens, GPU)", [r["activations_gb"] for r in f]),
        ],
        [r["training_gb"] for r in f],
        out / "breakdown.png",
        "Optimizer states and activations dominate the weights",
        "share of training memory per device (%)",
    )


def main(argv=None):
    args = parse(Args, PRESETS, argv)
    transformers.logging.set_verbosity_error()
    # gpu preset: a CPU too
    device = "cuda" if args.preset == "gpu" and torch.cuda.is_available() else "cpu"
    if device == "cpu":
        torch.set_num_threads(1)
    sizes, grid = shapes(args.sizes), shapes(args.grid_size, "--grid_size")[0]
    if grid not in sizes:
        raise LabError(f"--grid_size {args.grid_size}: must be one of --sizes {args.sizes}")

    # --8<-- [start:run]
    static, acts, peaks = [], [], []
    for size in sizes:
        set_seed(args.seed)
        ids = torch.randint(0, args.vocab_size, (args.batch_size, args.seq_len), device=device)
        static.append(static_check(size, args, ids))
        attns, dtypes = (
            (("sdpa", "eager", "math"), ("fp32", "bf16"))
            if size == grid
            else (("sdpa",), ("fp32",))
        )
        for attn, dtype, dropout, ckpt in itertools.product(
            attns, dtypes, (0.0, 0.1), (False, True)
        ):
            acts.append(
                activation_check(size, args, ids, Step(device, attn, dtype, dropout, ckpt))
            )
        if size == grid:  # the peak of a whole step, at transformers' defaults: SDPA, dropout 0.1
            for dtype, ckpt, first in itertools.product(
                ("fp32", "bf16"), (False, True), (True, False)
            ):
                peaks.append(
                    peak_check(size, args, ids, Step(device, "sdpa", dtype, 0.1, ckpt), first)
                )
    # --8<-- [end:run]

    plain = {
        (r["size"], r["checkpointing"]): r["measured_bytes"]
        for r in acts  # sdpa, fp32, no dropout
        if (r["attn"], r["dtype"], r["dropout"]) == ("sdpa", "fp32", 0.0)
    }
    korthikanti = [
        r["korthikanti_blocks_rel_error"] for r in acts if "korthikanti_blocks_rel_error" in r
    ]
    family = family_rows()  # the calculator alone: GPT-2 family and a 7B model on one GPU
    metrics = {
        "sizes": len(static),
        "static": static,
        "activations": acts,
        "peaks": peaks,
        "family": family,
        "static_bytes_rel_error": max(r["static_rel_error"] for r in static),
        "activation_bytes_rel_error_max": max(r["rel_error"] for r in acts),
        "activation_checks": len(acts),
        "korthikanti_blocks_rel_error_min": min(korthikanti),
        "korthikanti_blocks_rel_error_max": max(korthikanti),
        "checkpointing_activation_ratio_max": max(
            plain[s, 1] / plain[s, 0] for s, c in plain if c == 0
        ),
        "lm_head_share_max": max(r["outside_share"] for r in acts),
        "peak_rel_error_max": max(abs(r["peak_rel_error"]) for r in peaks),
        "zero": [
            {"zero_stage": z, "gb_per_gpu": model_states(7.5e9, 64, z).total / 1e9}
            for z in range(4)
        ],
        "gpt2_training_over_inference": family[0]["training_over_inference"],
        "gpt2_optimizer_over_weights": (family[0]["model_states_gb"] - 2 * family[0]["weights_gb"])
        / family[0]["weights_gb"],
    }
    write_metrics(args.output_dir, metrics)
    write_report(
        args,
        metrics,
        measured_on("fp32 and bf16 autocast (the dtype column)", cpu=device == "cpu"),
    )
    return metrics


if __name__ == "__main__":
    run(main)
