"""Tables the explainer shows, generated from the project's own code so that no number is typed by hand.

Regenerate them with `python -m lifecycle.tables` (writes `snippets/explainer/*.md`); a test checks that
the committed files match what this module computes now.
"""

from pathlib import Path

from lifecycle.memory import GPT2_FAMILY, inference_bytes, kv_cache_bytes, gpt2_params, model_states

GB = 1e9
OUT = Path(__file__).resolve().parents[2] / "snippets" / "explainer"


def _row(cells) -> str:
    return "| " + " | ".join(str(c) for c in cells) + " |"


# --8<-- [start:memory]
SEVEN_B = ("7B (32 layers, 4096 wide)", 7e9, 32, 4096)  # a LLaMA-7B-like shape, rounded to 7e9 parameters


def memory_rows(batch: int = 1, seq_len: int = 1024) -> list[tuple]:
    """(model, params, inference GB, training GB before activations) for the GPT-2 family and a 7B model.

    Inference: fp16 weights + an fp16 KV cache for `batch` sequences of `seq_len` tokens.
    Training: mixed-precision AdamW model states (16 bytes per parameter), one GPU, no ZeRO.
    """
    shapes = [(name, gpt2_params(n_layer, d), n_layer, d) for name, (n_layer, d, _heads) in GPT2_FAMILY.items()]
    rows = []
    for name, params, n_layer, d in [*shapes, SEVEN_B]:
        kv = kv_cache_bytes(n_layer, d, batch, seq_len, "fp16")
        rows.append((name, params, inference_bytes(params, "fp16", kv), model_states(params).total))
    return rows


def memory_table() -> str:
    lines = [
        _row(["model", "parameters", "inference: fp16 weights + KV cache (GB)",
              "training: weights + grads + AdamW states (GB)", "training / inference"]),
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for name, params, infer, train in memory_rows():
        lines.append(_row([f"`{name}`" if name.startswith("gpt2") else name, f"{params:,.0f}",
                           f"{infer / GB:.2f}", f"{train / GB:.2f}", f"{train / infer:.1f}×"]))
    return "\n".join(lines) + "\n"
# --8<-- [end:memory]


# --8<-- [start:zero]
def zero_table(params: float = 7.5e9, gpus: int = 64) -> str:
    """Per-GPU model states under ZeRO stages 0-3: the ZeRO paper's own example (7.5B parameters, 64 GPUs)."""
    what = ["nothing (plain data parallel)", "optimizer states", "+ gradients", "+ weights (FSDP full shard)"]
    lines = [_row(["ZeRO stage", "sharded", "weights", "grads", "optimizer", "total per GPU (GB)"]),
             "| ---: | --- | ---: | ---: | ---: | ---: |"]
    for stage in range(4):
        s = model_states(params, gpus=gpus, zero_stage=stage)
        lines.append(_row([stage, what[stage], f"{s.weights / GB:.2f}", f"{s.grads / GB:.2f}",
                           f"{s.optimizer / GB:.2f}", f"{s.total / GB:.2f}"]))
    return "\n".join(lines) + "\n"
# --8<-- [end:zero]


# --8<-- [start:precision]
def precision_rows() -> list[tuple]:
    """(dtype, exponent bits, mantissa bits, max, smallest normal, epsilon) straight from `torch.finfo`."""
    import torch

    rows = []
    for name, dtype in [("fp32", torch.float32), ("fp16", torch.float16), ("bf16", torch.bfloat16)]:
        f = torch.finfo(dtype)
        mantissa = round(-torch.log2(torch.tensor(f.eps, dtype=torch.float64)).item())  # eps = 2^-mantissa
        exponent = f.bits - 1 - mantissa  # the rest, after one sign bit
        rows.append((name, f.bits, exponent, mantissa, f.max, f.smallest_normal, f.eps))
    return rows


def precision_table() -> str:
    lines = [_row(["dtype", "bits", "exponent bits", "mantissa bits", "largest value", "smallest normal",
                   "epsilon (gap above 1.0)"]),
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for name, bits, exp, man, big, tiny, eps in precision_rows():
        lines.append(_row([name, bits, exp, man, f"{big:.6g}", f"{tiny:.4g}", f"{eps:.4g}"]))
    return "\n".join(lines) + "\n"
# --8<-- [end:precision]


# --8<-- [start:chinchilla]
TOKENS_PER_PARAM = 20  # Hoffmann et al. (2022): compute-optimal data grows in step with parameters, ~20 tokens each


def chinchilla_table() -> str:
    """Compute-optimal training tokens for the GPT-2 family, by the ~20 tokens per parameter rule."""
    lines = [_row(["model", "parameters", "compute-optimal tokens (billions)"]), "| --- | ---: | ---: |"]
    for name, (n_layer, d, _heads) in GPT2_FAMILY.items():
        p = gpt2_params(n_layer, d)
        lines.append(_row([f"`{name}`", f"{p:,.0f}", f"{TOKENS_PER_PARAM * p / 1e9:.1f}"]))
    return "\n".join(lines) + "\n"
# --8<-- [end:chinchilla]


TABLES = {"memory": memory_table, "zero": zero_table, "precision": precision_table, "chinchilla": chinchilla_table}


def write_all(out: Path = OUT) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, make in TABLES.items():
        path = out / f"{name}.md"
        path.write_text(make())
        paths.append(path)
    return paths


if __name__ == "__main__":
    for p in write_all():
        print(p)
