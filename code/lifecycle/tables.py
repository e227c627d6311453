"""Tables the explainer shows, generated from the project's own code: no number is typed by hand.

Regenerate them with `python -m lifecycle.tables` (writes `snippets/explainer/*.md` and the GPU
memory table, `snippets/results/memory-gpu.md`); tests check that the committed files match what
this module computes now.
"""

import json
from itertools import product
from pathlib import Path

from lifecycle.memory import (
    GPT2_FAMILY,
    Step,
    activation_bytes,
    gpt2_params,
    inference_bytes,
    kv_cache_bytes,
    model_states,
    step_peak,
)

GB, GiB = 1e9, 2**30
OUT = Path(__file__).resolve().parents[2] / "snippets" / "explainer"
RESULTS = OUT.parent / "results"


def _row(cells) -> str:
    return "| " + " | ".join(str(c) for c in cells) + " |"


# --8<-- [start:memory]
# a LLaMA-7B-like shape, rounded to 7e9 parameters
SEVEN_B = ("7B (32 layers, 4096 wide)", 7e9, 32, 4096)


def memory_rows(batch: int = 1, seq_len: int = 1024) -> list[tuple]:
    """(model, params, inference GB, training GB before activations): the GPT-2 family and a 7B.

    Inference: fp16 weights + an fp16 KV cache for `batch` sequences of `seq_len` tokens.
    Training: mixed-precision AdamW model states (16 bytes per parameter), one GPU, no ZeRO.
    """
    shapes = [
        (name, gpt2_params(n_layer, d), n_layer, d)
        for name, (n_layer, d, _heads) in GPT2_FAMILY.items()
    ]
    rows = []
    for name, params, n_layer, d in [*shapes, SEVEN_B]:
        kv = kv_cache_bytes(n_layer, d, batch, seq_len, "fp16")
        rows.append(
            (name, params, inference_bytes(params, "fp16", kv), model_states(params).total)
        )
    return rows


def memory_table() -> str:
    lines = [
        _row(
            [
                "model",
                "parameters",
                "inference: fp16 weights + KV cache (GB)",
                "training: weights + grads + AdamW states (GB)",
                "training / inference",
            ]
        ),
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for name, params, infer, train in memory_rows():
        lines.append(
            _row(
                [
                    f"`{name}`" if name.startswith("gpt2") else name,
                    f"{params:,.0f}",
                    f"{infer / GB:.2f}",
                    f"{train / GB:.2f}",
                    f"{train / infer:.1f}×",
                ]
            )
        )
    return "\n".join(lines) + "\n"


# --8<-- [end:memory]


# --8<-- [start:zero]
def zero_table(params: float = 7.5e9, gpus: int = 64) -> str:
    """Per-GPU model states under ZeRO stages 0-3: the ZeRO paper's example (7.5B, 64 GPUs)."""
    what = [
        "nothing (plain data parallel)",
        "optimizer states",
        "+ gradients",
        "+ weights (FSDP full shard)",
    ]
    lines = [
        _row(["ZeRO stage", "sharded", "weights", "grads", "optimizer", "total per GPU (GB)"]),
        "| ---: | --- | ---: | ---: | ---: | ---: |",
    ]
    for stage in range(4):
        s = model_states(params, gpus=gpus, zero_stage=stage)
        lines.append(
            _row(
                [
                    stage,
                    what[stage],
                    f"{s.weights / GB:.2f}",
                    f"{s.grads / GB:.2f}",
                    f"{s.optimizer / GB:.2f}",
                    f"{s.total / GB:.2f}",
                ]
            )
        )
    return "\n".join(lines) + "\n"


# --8<-- [end:zero]


# --8<-- [start:precision]
def precision_rows() -> list[tuple]:
    """(dtype, exponent bits, mantissa bits, max, smallest normal, epsilon) from `torch.finfo`."""
    import torch

    rows = []
    for name, dtype in [
        ("fp32", torch.float32),
        ("fp16", torch.float16),
        ("bf16", torch.bfloat16),
    ]:
        f = torch.finfo(dtype)
        # eps = 2^-mantissa
        mantissa = round(-torch.log2(torch.tensor(f.eps, dtype=torch.float64)).item())
        exponent = f.bits - 1 - mantissa  # the rest, after one sign bit
        rows.append((name, f.bits, exponent, mantissa, f.max, f.smallest_normal, f.eps))
    return rows


def precision_table() -> str:
    lines = [
        _row(
            [
                "dtype",
                "bits",
                "exponent bits",
                "mantissa bits",
                "largest value",
                "smallest normal",
                "epsilon (gap above 1.0)",
            ]
        ),
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name, bits, exp, man, big, tiny, eps in precision_rows():
        lines.append(_row([name, bits, exp, man, f"{big:.6g}", f"{tiny:.4g}", f"{eps:.4g}"]))
    return "\n".join(lines) + "\n"


# --8<-- [end:precision]


# --8<-- [start:chinchilla]
# Hoffmann et al. (2022): compute-optimal data grows in step with parameters, ~20 tokens each
TOKENS_PER_PARAM = 20


def chinchilla_table() -> str:
    """Compute-optimal training tokens for the GPT-2 family: the ~20 tokens per parameter rule."""
    lines = [
        _row(["model", "parameters", "compute-optimal tokens (billions)"]),
        "| --- | ---: | ---: |",
    ]
    for name, (n_layer, d, _heads) in GPT2_FAMILY.items():
        p = gpt2_params(n_layer, d)
        lines.append(_row([f"`{name}`", f"{p:,.0f}", f"{TOKENS_PER_PARAM * p / 1e9:.1f}"]))
    return "\n".join(lines) + "\n"


# --8<-- [end:chinchilla]


# --8<-- [start:gpu]
# the memory lab's gpu preset: GPT-2-124M
PRESET = dict(shape=(12, 768, 12, 50257), batch=4, seq_len=1024)
THROUGHPUT = dict(shape=(12, 768, 12, 50304), batch=16, seq_len=1024)  # code/gpu/throughput.py


def gpu_measurements(results: Path = RESULTS) -> tuple[dict, dict, dict]:
    """The last GPU measurements the repo holds: saved bytes by (dtype, dropout, checkpointing),
    step peaks by (dtype, checkpointing, first step), and the throughput script's run.

    `memory-gpu.json` is the memory lab's `--preset gpu` output (the tables show its SDPA rows; a
    test checks its eager and math rows too). An older run that holds one
    fp32 first-step peak (`gpu_peak_bytes`) is read too."""
    run = json.loads((results / "memory-gpu.json").read_text())
    saved = {
        (r.get("dtype", "fp32"), r["dropout"], r["checkpointing"]): r["measured_bytes"]
        for r in run["activations"]
        if r.get("attn", "sdpa") == "sdpa"
    }
    peaks = {
        (r["dtype"], r["checkpointing"], r["first_step"]): r["measured_peak_bytes"]
        for r in run.get("peaks", [])
    }
    if "gpu_peak_bytes" in run:
        peaks[("fp32", 0, 1)] = run["gpu_peak_bytes"]
    return saved, peaks, json.loads((results / "gpu-throughput.json").read_text())


def _gap(predicted: float, measured: float | None) -> str:
    if measured is None:
        return "awaits a GPU run"
    return "0 bytes" if predicted == measured else f"{(predicted - measured) / measured:+.1%}"


def gpu_table(results: Path = RESULTS) -> str:
    """Bytes saved for backward on a GPU: the calculator's prediction (SDPA, GPU rules) for the gpu
    preset's shape next to the last measured figures, each row with its gap or the note that it
    awaits a GPU run."""
    saved, _, _ = gpu_measurements(results)
    run = json.loads((results / "memory-gpu.json").read_text())
    shape, b, s = PRESET["shape"], PRESET["batch"], PRESET["seq_len"]
    lines = [
        "| the memory lab's `--preset gpu` run on record | value |",
        "| --- | ---: |",
        _row(
            [
                "weights + gradients + AdamW state: calculator against the tensors, "
                "relative error",
                f"{run['static_bytes_rel_error']:g}",
            ]
        ),
    ]
    # the run on record measured its peak from the process's start
    if "gpu_weights_bytes_allocated" in run:
        extra = run["gpu_weights_bytes_allocated"] - run["static"][0]["weights_bytes_real"]
        label = "allocated before the step, beyond the weights: the run's earlier checks (GiB)"
        lines.append(_row([label, f"{extra / GiB:.2f}"]))
    lines += [
        "",
        "| autocast | dropout | checkpointing | saved for backward, calculator (GB) "
        "| measured (GB) | gap |",
        "| --- | ---: | --- | ---: | ---: | --- |",
    ]
    for dtype, dropout, ckpt in product(("fp32", "bf16"), (0.0, 0.1), (0, 1)):
        pred = activation_bytes(
            *shape, b, s, Step(dtype=dtype, dropout=dropout, checkpointing=bool(ckpt))
        )
        got = saved.get((dtype, dropout, ckpt))
        lines.append(
            _row(
                [
                    dtype,
                    dropout,
                    "on" if ckpt else "off",
                    f"{pred / GB:.3f}",
                    "" if got is None else f"{got / GB:.3f}",
                    _gap(pred, got),
                ]
            )
        )
    return "\n".join(lines) + "\n"


def gpu_peak_table(results: Path = RESULTS) -> str:
    """The peak of one AdamW step on a GPU (`max_memory_allocated`), predicted at the GPU defaults
    (SDPA, dropout 0.1), next to the last measured figures: the memory lab's gpu preset and the
    throughput run."""
    _, peaks, tput = gpu_measurements(results)
    shape, b, s = PRESET["shape"], PRESET["batch"], PRESET["seq_len"]
    lines = [
        "| run | autocast | checkpointing | step | peak, calculator (GiB) "
        "| measured (GiB) | gap |",
        "| --- | --- | --- | --- | ---: | ---: | --- |",
    ]
    for dtype, ckpt, first in product(("fp32", "bf16"), (0, 1), (1, 0)):
        pred = step_peak(
            *shape, b, s, Step(dtype=dtype, checkpointing=bool(ckpt)), first_step=bool(first)
        )["peak"]
        got = peaks.get((dtype, ckpt, first))
        lines.append(
            _row(
                [
                    f"memory lab, batch {b} × {s:,}",
                    dtype,
                    "on" if ckpt else "off",
                    "first" if first else "later",
                    f"{pred / GiB:.2f}",
                    "" if got is None else f"{got / GiB:.2f}",
                    _gap(pred, got),
                ]
            )
        )
    t = THROUGHPUT
    pred = step_peak(*t["shape"], t["batch"], t["seq_len"], Step(), optimizer="fused")["peak"]
    got = tput["eager"]["peak_mem_gib"] * GiB
    run = (
        f"throughput script, batch {t['batch']} × {t['seq_len']:,}, vocab {t['shape'][3]:,}, "
        "fused AdamW"
    )
    lines.append(
        _row(
            [run, "bf16", "off", "later", f"{pred / GiB:.2f}", f"{got / GiB:.2f}", _gap(pred, got)]
        )
    )
    return "\n".join(lines) + "\n"


def gpu_throughput_table(results: Path = RESULTS) -> str:
    """Tokens per second and MFU of the throughput script's run (GPT-2-124M, bf16 autocast)."""
    tput = json.loads((results / "gpu-throughput.json").read_text())
    lines = [
        "| bf16 autocast, batch 16 × 1,024 | tokens/s | s/step | MFU (of 989 TFLOP/s) |",
        "| --- | ---: | ---: | ---: |",
    ]
    for name in ("eager", "compiled"):
        r = tput[name]
        lines.append(
            _row(
                [
                    name,
                    f"{r['tokens_per_second']:,.0f}",
                    f"{r['step_seconds']:.3f}",
                    f"{r['mfu']:.0%}",
                ]
            )
        )
    return "\n".join(lines) + "\n"


# --8<-- [end:gpu]


TABLES = {
    "memory": memory_table,
    "zero": zero_table,
    "precision": precision_table,
    "chinchilla": chinchilla_table,
}
# written to snippets/results/, next to the measurements they read
RESULT_TABLES = {
    "memory-gpu": gpu_table,
    "memory-gpu-peaks": gpu_peak_table,
    "memory-gpu-throughput": gpu_throughput_table,
}


def write_all(out: Path = OUT, results: Path = RESULTS) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for folder, tables in ((out, TABLES), (results, RESULT_TABLES)):
        for name, make in tables.items():
            path = folder / f"{name}.md"
            path.write_text(make())
            paths.append(path)
    return paths


if __name__ == "__main__":
    for p in write_all():
        print(p)
