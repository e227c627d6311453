"""Training mechanics: warmup + cosine, bf16 vs fp16, gradient accumulation, checkpointing, resume.

    python code/labs/mechanics.py --output_dir runs/mechanics                 # lesson: minutes
    python code/labs/mechanics.py --output_dir runs/mechanics --preset smoke  # seconds
    python code/labs/mechanics.py --output_dir runs/mechanics --preset gpu    # gpt2's shape, GPU

Five small experiments on a GPT-2 built from `GPT2Config`, trained on the world's web text, each
showing one knob doing its job. Writes `metrics.json`, `results.md`, `formats.md`, `schedule.png`
and `precision.png`.

Longer than the 250 lines a lab aims for: five experiments, one per knob, and each one's code is
what its part of the page teaches, so they stay here, side by side, rather than behind a package
call.
"""

import math
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
import transformers
from transformers import get_cosine_schedule_with_warmup, set_seed

from lifecycle import plots, report
from lifecycle.cli import LabArgs, LabError, parse, run, write_metrics
from lifecycle.device import measured_on
from lifecycle.memory import enable_checkpointing, saved_activation_bytes
from lifecycle.models import SIZES, build_model
from lifecycle.tokenizer import load_tokenizer
from lifecycle.training import blocks
from lifecycle.world import web_corpus


# --8<-- [start:args]
@dataclass
class Args(LabArgs):
    positive = (
        "steps",
        "batch_size",
        "block_size",
        "peak_lr",
        "accum_steps",
        "resume_at",
        "loss_tokens",
    )
    model: str | None = field(
        default=None, metadata={"help": "Model size: smoke, lesson or gpt2 (shape only)."}
    )
    steps: int | None = field(
        default=None, metadata={"help": "Optimizer steps per warmup-ablation run."}
    )
    batch_size: int | None = field(default=None, metadata={"help": "Blocks per step."})
    block_size: int | None = field(default=None, metadata={"help": "Tokens per block."})
    peak_lr: float | None = field(
        default=None, metadata={"help": "The aggressive peak learning rate of the ablation."}
    )
    warmup_steps: int | None = field(
        default=None, metadata={"help": "Linear warmup steps of the 'with warmup' run."}
    )
    accum_steps: int | None = field(
        default=None, metadata={"help": "Micro-batches per optimizer step (k)."}
    )
    resume_at: int | None = field(
        default=None, metadata={"help": "Step at which the resume experiment stops and restarts."}
    )
    loss_tokens: int | None = field(
        default=None, metadata={"help": "Tokens in the fp16 underflow demo's loss."}
    )


PRESETS = {
    "smoke": dict(
        model="smoke",
        steps=60,
        batch_size=16,
        block_size=64,
        peak_lr=1e-1,
        warmup_steps=20,
        accum_steps=4,
        resume_at=5,
        loss_tokens=512,
    ),
    "lesson": dict(
        model="lesson",
        steps=60,
        batch_size=16,
        block_size=64,
        peak_lr=3e-2,
        warmup_steps=20,
        accum_steps=4,
        resume_at=10,
        loss_tokens=1024,
    ),
    "gpu": dict(
        model="gpt2",
        steps=200,
        batch_size=8,
        block_size=256,
        peak_lr=3e-3,
        warmup_steps=50,
        accum_steps=4,
        resume_at=20,
        loss_tokens=2048,
    ),
}
# --8<-- [end:args]


def batches(ids: torch.Tensor, steps: int, batch_size: int, seed: int):
    """The data order: a seeded generator, so two runs see the same batches."""
    g = torch.Generator().manual_seed(seed)
    return [
        ids[torch.randint(0, len(ids), (batch_size,), generator=g).to(ids.device)]
        for _ in range(steps)
    ]


# --8<-- [start:schedule]
def make_optimizer(model, lr: float, warmup: int, steps: int):
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.1)
    scheduler = get_cosine_schedule_with_warmup(
        optimizer, num_warmup_steps=warmup, num_training_steps=steps
    )
    return optimizer, scheduler


def train(model, data, lr: float, warmup: int) -> list[float]:
    """Plain AdamW steps on the schedule; returns the loss at every step."""
    optimizer, scheduler = make_optimizer(model, lr, warmup, len(data))
    model.train()
    losses = []
    for x in data:
        loss = model(x, labels=x).loss
        loss.backward()
        optimizer.step()
        scheduler.step()  # (1)!
        optimizer.zero_grad()
        losses.append(loss.item())
    return losses


def largest_jump(losses: list[float]) -> float:
    """The loss spike: the largest rise of the loss above the best loss seen so far."""
    best, jump = math.inf, 0.0
    for loss in losses:
        best = min(best, loss)
        jump = max(jump, loss - best)
    return jump


# --8<-- [end:schedule]


# --8<-- [start:precision]
def formats() -> list[dict]:
    """Bits, range and precision of the three training formats, from torch.finfo."""
    rows = []
    for name, dtype in [
        ("fp32", torch.float32),
        ("bf16", torch.bfloat16),
        ("fp16", torch.float16),
    ]:
        f = torch.finfo(dtype)
        mantissa = round(-math.log2(f.eps))
        rows.append(
            {
                "format": name,
                "bits": f.bits,
                "exponent_bits": f.bits - 1 - mantissa,
                "mantissa_bits": mantissa,
                "max": f.max,
                "smallest_normal": f.smallest_normal,
                "smallest_subnormal": f.smallest_normal * f.eps,
                "eps": f.eps,
            }
        )
    return rows


def overflows(dtype) -> bool:
    """An activation that overflows: the sum of squares an RMSNorm/LayerNorm takes over 1,024
    features, when one feature is an outlier of 300 (LLMs grow such outlier features)."""
    x = torch.randn(1024, generator=torch.Generator().manual_seed(0))
    x[7] = 300.0
    x = x.to(dtype)
    return bool(torch.isinf((x * x).sum()))  # 300² = 90,000 > fp16's max of 65,504


def logits_grad(tokens: int, vocab: int, dtype, scaler=None):
    """The gradient of the mean cross-entropy with respect to the logits, stored in `dtype`.

    Each entry is p/N (N tokens in the loss, p ≈ 1/vocab): at GPT-2's vocabulary it sits below
    fp16's smallest subnormal, so fp16 stores 0. Returns the stored gradient and the weight's fp32
    gradient."""
    g = torch.Generator().manual_seed(0)
    h = torch.randn(tokens, 64, generator=g)
    w = torch.nn.Parameter(torch.randn(64, vocab, generator=g) / 8)  # fp32 master weight
    targets = torch.randint(0, vocab, (tokens,), generator=g)
    logits = (h @ w).to(dtype)  # the activation, kept in low precision
    stored = {}
    # the gradient as stored in dtype
    logits.register_hook(lambda grad: stored.setdefault("grad", grad))
    loss = F.cross_entropy(logits.float(), targets)  # the loss itself in fp32, as autocast does
    if scaler is None:
        loss.backward()
    else:
        optimizer = torch.optim.SGD([w], lr=0.0)
        scaler.scale(loss).backward()  # (1)!
        scaler.unscale_(optimizer)  # divides the fp32 weight gradient by the scale again
    return stored["grad"], w.grad


def underflow(tokens: int, vocab: int = 50257) -> dict:
    ref, ref_w = logits_grad(tokens, vocab, torch.float32)
    nonzero = ref != 0
    out = {}
    for name, dtype, scaler in [
        ("fp16", torch.float16, None),
        ("bf16", torch.bfloat16, None),
        ("fp16_scaled", torch.float16, torch.amp.GradScaler("cpu", init_scale=2.0**16)),
    ]:
        grad, grad_w = logits_grad(tokens, vocab, dtype, scaler)
        out[f"{name}_underflow_fraction"] = (
            (grad == 0) & nonzero
        ).sum().item() / nonzero.sum().item()
        out[f"{name}_weight_grad_rel_error"] = ((grad_w - ref_w).norm() / ref_w.norm()).item()
    return out


# --8<-- [end:precision]


# --8<-- [start:accumulation]
def uneven_batch(ids: torch.Tensor, n: int, pad_id: int, seed: int):
    """n sequences of random lengths, right-padded; padding is masked, with labels of -100."""
    g = torch.Generator().manual_seed(seed)
    lengths = torch.randint(4, ids.shape[1] + 1, (n,), generator=g)
    x = ids[:n].clone()
    mask = (torch.arange(ids.shape[1]) < lengths[:, None]).to(ids.device)
    return x.masked_fill(~mask, pad_id), mask.long(), x.masked_fill(~mask, -100)


def grads(model) -> torch.Tensor:
    g = torch.cat([p.grad.flatten() for p in model.parameters()])
    model.zero_grad()
    return g


def accumulation(model, x, mask, labels, k: int) -> dict:
    """One batch of k·b against k micro-batches of b, with two ways to normalize the loss."""
    model.eval()  # no dropout: the three gradients must see the same function
    model(x, attention_mask=mask, labels=labels).loss.backward()
    full = grads(model)  # the mean over every target token of the whole batch
    targets = (labels[:, 1:] != -100).sum()  # tokens that carry a loss, in the whole batch
    for xs, ms, ls in zip(x.chunk(k), mask.chunk(k), labels.chunk(k)):
        model(xs, attention_mask=ms, labels=ls, num_items_in_batch=targets).loss.backward()  # (1)!
    right = grads(model)
    for xs, ms, ls in zip(x.chunk(k), mask.chunk(k), labels.chunk(k)):
        (model(xs, attention_mask=ms, labels=ls).loss / k).backward()  # (2)!
    naive = grads(model)
    return {
        "accumulation_max_abs_grad_diff": (right - full).abs().max().item(),
        "accumulation_naive_rel_error": ((naive - full).norm() / full.norm()).item(),
        "accumulation_grad_max_abs": full.abs().max().item(),
    }


# --8<-- [end:accumulation]


# --8<-- [start:checkpointing]
def checkpointing(model, x, repeats: int = 3) -> dict:
    """Saved-activation bytes, block forwards and step time, without and with checkpointing."""
    calls = []
    for (
        block
    ) in model.transformer.h:  # count MLP forwards (module hooks do not fire during recomputation)
        block.mlp.forward = lambda *a, f=block.mlp.forward, **k: calls.append(1) or f(*a, **k)
    model.train()
    out = {}
    for name, on in [("off", False), ("on", True)]:
        if on:
            enable_checkpointing(model)

        def step():
            model(x, labels=x).loss.backward()

        calls.clear()
        out[f"saved_{name}"] = saved_activation_bytes(model, step)
        # with checkpointing each block runs again inside backward
        out[f"forwards_{name}"] = len(calls)
        start = time.perf_counter()
        for _ in range(repeats):
            step()
        if x.is_cuda:
            torch.cuda.synchronize()
        out[f"time_{name}"] = (time.perf_counter() - start) / repeats
        model.zero_grad()
    return {
        "checkpointing_activation_ratio": out["saved_on"] / out["saved_off"],
        "checkpointing_forward_ratio": out["forwards_on"] / out["forwards_off"],
        "checkpointing_time_ratio": out["time_on"]
        / out["time_off"],  # noisy: a timing, not a count
        "step_no_checkpointing_seconds": out["time_off"],
        "step_checkpointing_seconds": out["time_on"],
    }


# --8<-- [end:checkpointing]


# --8<-- [start:resume]
def run_steps(model, optimizer, scheduler, data, start: int, stop: int):
    model.train()
    for x in data[start:stop]:
        model(x, labels=x).loss.backward()  # dropout draws from torch's global RNG
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad()


def save(path, model, optimizer, scheduler, step):
    rng = {"cpu": torch.get_rng_state()} | (
        {"cuda": torch.cuda.get_rng_state()} if torch.cuda.is_available() else {}
    )
    torch.save(
        {
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "rng": rng,
            "step": step,
        },
        path,
    )


def resume(new_model, path, lr, warmup, steps, restore_rng=True):
    state = torch.load(path, weights_only=True)
    new_model.load_state_dict(state["model"])
    optimizer, scheduler = make_optimizer(new_model, lr, warmup, steps)
    optimizer.load_state_dict(state["optimizer"])  # Adam's moments and step counts
    scheduler.load_state_dict(state["scheduler"])  # where the learning rate is on its curve
    if restore_rng:
        torch.set_rng_state(state["rng"]["cpu"])  # the next dropout masks
        if "cuda" in state["rng"]:
            torch.cuda.set_rng_state(state["rng"]["cuda"])
    return optimizer, scheduler, state["step"]


# --8<-- [end:resume]


def resume_experiment(make_model, data, lr, warmup, n, seed) -> dict:
    """Uninterrupted run against stop-at-n, save, fresh process state, load, finish."""
    steps = len(data)
    set_seed(seed)
    model = make_model()
    run_steps(model, *make_optimizer(model, lr, warmup, steps), data, 0, steps)
    reference = torch.cat([p.detach().flatten() for p in model.parameters()])
    diffs = {}
    for restore in (True, False):
        set_seed(seed)
        model = make_model()
        optimizer, scheduler = make_optimizer(model, lr, warmup, steps)
        run_steps(model, optimizer, scheduler, data, 0, n)
        with tempfile.TemporaryDirectory() as tmp:
            save(Path(tmp) / "checkpoint.pt", model, optimizer, scheduler, n)
            set_seed(seed + 1)  # the "crash": a new process with other RNG state and a fresh model
            model = make_model()
            optimizer, scheduler, start = resume(
                model, Path(tmp) / "checkpoint.pt", lr, warmup, steps, restore
            )
        run_steps(model, optimizer, scheduler, data, start, steps)
        final = torch.cat([p.detach().flatten() for p in model.parameters()])
        diffs[restore] = (final - reference).abs().max().item()
    return {"resume_max_abs_diff": diffs[True], "resume_without_rng_max_abs_diff": diffs[False]}


def schedule(peak, warmup, steps) -> list[float]:
    """The learning rate at each step, read off the transformers scheduler itself."""
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=peak)
    scheduler = get_cosine_schedule_with_warmup(optimizer, warmup, steps)
    lrs = []
    for _ in range(steps):
        lrs.append(scheduler.get_last_lr()[0])
        optimizer.step()
        scheduler.step()
    return lrs


def schedule_plot(peak, warmup, steps, losses, path):
    fig, (a, b) = plots.plt.subplots(1, 2, figsize=(8.4, 3.4))
    a.plot(schedule(peak, warmup, steps), color="C1", label=f"warmup {warmup} + cosine")
    a.plot(schedule(peak, 0, steps), color="C3", ls="--", label="no warmup")
    a.set(xlabel="step", ylabel="learning rate", title="get_cosine_schedule_with_warmup")
    a.legend(fontsize=8)
    for name, color in [("no warmup", "C3"), ("warmup", "C1")]:
        b.plot(losses[name], color=color, label=name)
    b.set(
        xlabel="step",
        ylabel="training loss (nats/token)",
        title=f"Same peak learning rate {peak:g}",
    )
    b.legend(fontsize=8)
    plots.save(fig, path)


def precision_plot(rows, path):
    fig, ax = plots.plt.subplots(figsize=(6.4, 2.8))
    for i, r in enumerate(rows):
        ax.plot(
            [r["smallest_subnormal"], r["max"]],
            [i, i],
            lw=8,
            solid_capstyle="butt",
            label=r["format"],
        )
        ax.plot([r["smallest_normal"]], [i], "k|", ms=14)
    ax.set_xscale("log")
    ax.set_yticks(range(len(rows)), [r["format"] for r in rows])
    ax.set_xlabel("representable magnitude (log scale); | marks the smallest normal number")
    ax.set_title("fp16 trades range for precision; bf16 keeps fp32's range")
    plots.save(fig, path)


def write_report(args, m: dict, losses: dict, where: str) -> None:
    """`results.md`, `formats.md`, `schedule.png` and `precision.png`."""
    schedule_plot(
        args.peak_lr, args.warmup_steps, args.steps, losses, args.output_dir / "schedule.png"
    )
    precision_plot(m["formats"], args.output_dir / "precision.png")
    (args.output_dir / "results.md").write_text(
        report.table(
            [
                (
                    f"warmup: largest loss spike, no warmup (peak LR {args.peak_lr:g})",
                    m["loss_spike_no_warmup"],
                    ".2f",
                ),
                (
                    f"warmup: largest loss spike, {args.warmup_steps} warmup steps",
                    m["loss_spike_warmup"],
                    ".2f",
                ),
                (
                    "fp16: sum of squares with a 300 outlier overflows (1 = inf)",
                    m["fp16_overflow"],
                    "",
                ),
                ("bf16: same sum overflows", m["bf16_overflow"], ""),
                (
                    f"fp16: share of logit gradients flushed to 0 ({args.loss_tokens} tokens, "
                    "vocab 50,257)",
                    m["fp16_underflow_fraction"],
                    ".1%",
                ),
                ("bf16: share flushed to 0", m["bf16_underflow_fraction"], ".1%"),
                (
                    "fp16 + GradScaler (scale 2¹⁶): share flushed to 0",
                    m["fp16_scaled_underflow_fraction"],
                    ".1%",
                ),
                (
                    "fp16: weight-gradient relative error, unscaled",
                    m["fp16_weight_grad_rel_error"],
                    ".3f",
                ),
                (
                    "fp16 + GradScaler: weight-gradient relative error",
                    m["fp16_scaled_weight_grad_rel_error"],
                    ".2g",
                ),
                (
                    f"accumulation: {args.accum_steps} micro-batches vs one batch, "
                    "max abs gradient difference",
                    m["accumulation_max_abs_grad_diff"],
                    ".1e",
                ),
                (
                    "accumulation: naive mean-of-means, relative gradient error",
                    m["accumulation_naive_rel_error"],
                    ".1%",
                ),
                (
                    "checkpointing: saved activation bytes, with ÷ without",
                    m["checkpointing_activation_ratio"],
                    ".2f",
                ),
                (
                    "checkpointing: MLP forward passes per step, with ÷ without",
                    m["checkpointing_forward_ratio"],
                    ".1f",
                ),
                (
                    "checkpointing: step time, with ÷ without (timing, noisy)",
                    m["checkpointing_time_ratio"],
                    ".2f",
                ),
                (
                    f"resume at step {args.resume_at}: max abs weight difference",
                    m["resume_max_abs_diff"],
                    ".3g",
                ),
                (
                    "resume without restoring the RNG: max abs weight difference",
                    m["resume_without_rng_max_abs_diff"],
                    ".2g",
                ),
                ("measured on", where, ""),
            ]
        )
    )
    (args.output_dir / "formats.md").write_text(
        report.records(
            m["formats"],
            [
                ("format", "format", ""),
                ("bits", "bits", ""),
                ("exponent_bits", "exponent bits", ""),
                ("mantissa_bits", "mantissa bits", ""),
                ("max", "largest", ".3g"),
                ("smallest_normal", "smallest normal", ".3g"),
                ("smallest_subnormal", "smallest subnormal", ".3g"),
                ("eps", "eps (precision near 1)", ".3g"),
            ],
        )
    )


def main(argv=None):
    args = parse(Args, PRESETS, argv)
    if args.model not in SIZES:
        raise LabError(f"--model {args.model!r}: expected one of {', '.join(SIZES)}")
    if args.resume_at >= args.steps:
        raise LabError(f"--resume_at {args.resume_at} must be below --steps {args.steps}")
    # gpu preset: CPU too, slowly
    device = "cuda" if args.preset == "gpu" and torch.cuda.is_available() else "cpu"
    transformers.logging.set_verbosity_error()
    if device == "cpu":
        # one thread: same numbers on any CPU count, stable timings on a busy machine
        torch.set_num_threads(1)
    tokenizer = load_tokenizer(args.seed)
    ids = blocks(
        tokenizer,
        [d.text for d in web_corpus("train", n_docs=1500, seed=args.seed)],
        args.block_size,
    ).to(device)

    def make_model():
        return build_model(args.model, tokenizer, args.seed).to(device)

    data = batches(ids, args.steps, args.batch_size, args.seed)

    # --8<-- [start:run]
    losses = {
        "no warmup": train(make_model(), data, args.peak_lr, 0),
        "warmup": train(make_model(), data, args.peak_lr, args.warmup_steps),
    }
    rows = formats()
    metrics = {
        "loss_spike_no_warmup": largest_jump(losses["no warmup"]),
        "loss_spike_warmup": largest_jump(losses["warmup"]),
        "final_loss_no_warmup": losses["no warmup"][-1],
        "final_loss_warmup": losses["warmup"][-1],
        "fp16_overflow": int(overflows(torch.float16)),
        "bf16_overflow": int(overflows(torch.bfloat16)),
        "fp32_overflow": int(overflows(torch.float32)),
        **underflow(args.loss_tokens),
        **accumulation(
            make_model(),
            *uneven_batch(ids, args.accum_steps * 4, tokenizer.pad_token_id, args.seed),
            args.accum_steps,
        ),
        **checkpointing(make_model(), data[0]),
        **resume_experiment(
            make_model,
            data[: 2 * args.resume_at],
            args.peak_lr / 10,
            args.warmup_steps,
            args.resume_at,
            args.seed,
        ),
        "formats": rows,
    }
    # --8<-- [end:run]
    write_metrics(args.output_dir, metrics)
    write_report(args, metrics, losses, measured_on("fp32", cpu=device == "cpu"))
    return metrics


if __name__ == "__main__":
    run(main)
