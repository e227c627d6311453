"""Memory arithmetic: why models are large, why training needs much more than inference, and what
one training step of an HF GPT-2 holds at its peak, on a CPU or on a CUDA GPU.

    python -m lifecycle.memory estimate --params 7.5e9 --gpus 64 --zero-stage 1 --json
    python -m lifecycle.memory estimate --model gpt2 --batch 4 --seq-len 1024       # GPU defaults
    python -m lifecycle.memory estimate --model gpt2 --batch 4 --seq-len 1024 --dtype fp32 \
        --checkpointing

Bytes are bytes (1 GB = 1e9 bytes, 1 GiB = 2**30). Model states follow the mixed-precision AdamW
accounting of the ZeRO paper (Rajbhandari et al. 2020, §3.1): 2-byte weights and gradients, plus K
= 12 bytes of optimizer state (fp32 master weights, Adam's momentum m and second moment v), so 16
bytes per parameter before activations. v is the running average of g², the uncentered second
moment (Kingma and Ba 2015, Algorithm 1); the ZeRO paper calls it "variance".
"""

import argparse
import json
import math
import sys
from dataclasses import asdict, dataclass, replace

import torch

DTYPE_BYTES = {"fp32": 4, "fp16": 2, "bf16": 2, "int8": 1, "int4": 0.5}

# --8<-- [start:gpt2]
GPT2_FAMILY = {  # (n_layer, n_embd, n_head) from the released GPT2Config sizes
    "gpt2": (12, 768, 12),
    "gpt2-medium": (24, 1024, 16),
    "gpt2-large": (36, 1280, 20),
    "gpt2-xl": (48, 1600, 25),
}


def gpt2_params(
    n_layer: int, n_embd: int, vocab_size: int = 50257, n_positions: int = 1024
) -> int:
    """Exact parameter count of a GPT-2 with tied input/output embeddings.

    Per block: attention qkv (d×3d + 3d) and output (d×d + d), MLP up (d×4d + 4d) and down (4d×d +
    d), two LayerNorms (2d each): 12d² + 13d. Plus token and position embeddings and the final
    LayerNorm.
    """
    d = n_embd
    return vocab_size * d + n_positions * d + n_layer * (12 * d * d + 13 * d) + 2 * d


# --8<-- [end:gpt2]


@dataclass(frozen=True)
class ModelStates:
    """Bytes per device for weights, gradients and optimizer states (with the fp32 master copy)."""

    weights: float
    grads: float
    optimizer: float

    @property
    def total(self) -> float:
        return self.weights + self.grads + self.optimizer


# --8<-- [start:states]
def model_states(
    params: float, gpus: int = 1, zero_stage: int = 0, mixed_precision: bool = True
) -> ModelStates:
    """Training state per device under AdamW, ZeRO stage 0-3 sharding over `gpus` ranks.

    Mixed precision: 2 B weights + 2 B grads + 12 B optimizer (4 B master copy, 4 B momentum m, 4 B
    second moment v). Pure fp32: 4 + 4 + 8. ZeRO-1 shards the optimizer, ZeRO-2 also the gradients,
    ZeRO-3 also the weights (Rajbhandari et al. 2020, §5 and Figure 1).
    """
    w, g, k = (2, 2, 12) if mixed_precision else (4, 4, 8)
    n = max(1, gpus)
    return ModelStates(
        weights=params * w / (n if zero_stage >= 3 else 1),
        grads=params * g / (n if zero_stage >= 2 else 1),
        optimizer=params * k / (n if zero_stage >= 1 else 1),
    )


# --8<-- [end:states]


# --8<-- [start:traffic]
def zero_collectives(zero_stage: int) -> list[tuple[str, str, str, float]]:
    """The collectives of one data-parallel step: (operation, what it moves, when, volume per rank
    in units of the model size Ψ). Rajbhandari et al. (2020), §7: a ring all-reduce is a
    reduce-scatter then an all-gather, 2Ψ. Stages 1 and 2 reduce-scatter the gradients and
    all-gather the updated weights after the step: still 2Ψ. Stage 3 keeps no whole weights: it
    all-gathers each layer's weights just in time for its forward and again for its backward, then
    reduce-scatters the gradients: 3Ψ, and nothing after the step."""
    if zero_stage == 0:
        return [("all-reduce", "gradients", "during backward, bucket by bucket", 2.0)]
    if zero_stage in (1, 2):
        return [
            ("reduce-scatter", "gradients", "during backward", 1.0),
            ("all-gather", "updated weights", "after the optimizer step", 1.0),
        ]
    if zero_stage == 3:
        return [
            ("all-gather", "each layer's weights", "just before its forward", 1.0),
            ("all-gather", "each layer's weights", "again, just before its backward", 1.0),
            ("reduce-scatter", "gradients", "during backward", 1.0),
        ]
    raise ValueError(f"ZeRO stage {zero_stage}: expected 0, 1, 2 or 3")


def zero_traffic(zero_stage: int) -> float:
    """Bytes each rank moves per step, in units of the model size Ψ."""
    return sum(volume for *_, volume in zero_collectives(zero_stage))


# --8<-- [end:traffic]


# --8<-- [start:inference]
def kv_cache_bytes(
    n_layer: int, n_embd: int, batch: int, seq_len: int, dtype: str = "fp16"
) -> float:
    """Keys and values of every layer for every cached token: 2 × layers × d × tokens."""
    return 2 * n_layer * n_embd * batch * seq_len * DTYPE_BYTES[dtype]


def inference_bytes(params: float, dtype: str = "fp16", kv_cache: float = 0.0) -> float:
    """Inference carries the weights in one dtype and the KV cache; no gradients, no optimizer."""
    return params * DTYPE_BYTES[dtype] + kv_cache


# --8<-- [end:inference]


# --8<-- [start:config]
def params_from_config(config) -> int:
    """Exact parameter count of an HF `GPT2Config` (tied embeddings): no model needed."""
    return gpt2_params(config.n_layer, config.n_embd, config.vocab_size, config.n_positions)


def gpt2_param_tensors(n_layer: int) -> int:
    """Parameter tensors of a GPT-2: 12 per block (6 weights, 6 biases), plus wte, wpe, ln_f's two.

    AdamW keeps a 4-byte `step` counter per tensor, so this count enters the exact state bytes."""
    return 12 * n_layer + 4


def llama_params(
    n_layer: int, n_embd: int, intermediate: int, vocab_size: int, tied: bool = False
) -> int:
    """Exact parameter count of a Llama-style model (no biases, RMSNorm, SwiGLU MLP).

    Per layer: q, k, v, o (4d²), gate, up and down (3·d·ff), two RMSNorm weights (2d). Llama-2-7B
    (32, 4096, 11008, 32000, untied) gives 6,738,415,616."""
    d = n_embd
    layer = 4 * d * d + 3 * d * intermediate + 2 * d
    return n_layer * layer + vocab_size * d * (1 if tied else 2) + d


LLAMA2_7B = dict(n_layer=32, n_embd=4096, n_head=32, intermediate=11008, vocab_size=32000)
# --8<-- [end:config]


def exact_adamw_state_bytes(params: int, n_tensors: int, dtype_bytes: int = 4) -> dict[str, int]:
    """What `torch.optim.AdamW` really holds after one step with weights in one dtype (fp32 on the
    CPU): the weights, one gradient per weight, `exp_avg` (m) and `exp_avg_sq` (v) per weight, and
    one fp32 scalar `step` per tensor."""
    return {
        "weights": params * dtype_bytes,
        "grads": params * dtype_bytes,
        "optimizer": 2 * params * dtype_bytes + 4 * n_tensors,
    }


# --8<-- [start:step]
# transformers' attn_implementation; "math": SDPA's math backend forced
ATTENTION = ("sdpa", "eager", "math")
COMPUTE_BYTES = {"fp32": 4, "bf16": 2, "fp16": 2}  # an activation's bytes; bf16/fp16 mean autocast


@dataclass(frozen=True)
class Step:
    """How one training step of an HF GPT-2 runs, which decides what autograd saves.

    The defaults are what transformers and TRL pick on a bf16-capable GPU: SDPA attention
    (transformers' default `attn_implementation` when torch has it), bf16 autocast over fp32
    weights (`bf16=True`), GPT2Config's dropout of 0.1, no activation checkpointing, and
    `use_cache` on (GPT2Config's default: HF then builds a KV cache even in a training forward,
    which copies k and v)."""

    device: str = "cuda"
    attn: str = "sdpa"
    dtype: str = "bf16"
    dropout: float = 0.1
    checkpointing: bool = False
    use_cache: bool = True

    def __post_init__(self):
        if (
            self.device not in ("cpu", "cuda")
            or self.attn not in ATTENTION
            or self.dtype not in COMPUTE_BYTES
        ):
            raise ValueError(
                f"{self}: device cpu|cuda, attn {'|'.join(ATTENTION)}, "
                f"dtype {'|'.join(COMPUTE_BYTES)}"
            )
        if not 0 <= self.dropout < 1:
            raise ValueError(f"dropout {self.dropout}: expected 0 <= p < 1")

    @property
    def kernel(self) -> str:
        """The attention kernel that runs: "fused" keeps a log-sum-exp per head and token; "math"
        and "eager" keep the s × s attention probabilities.

        SDPA on CUDA runs flash attention (16-bit) or the memory-efficient kernel (fp32); both take
        dropout. The CPU's flash kernel takes no dropout, so SDPA falls back to its math path
        there."""
        if self.attn != "sdpa":
            return self.attn
        return "math" if self.device == "cpu" and self.dropout > 0 else "fused"


# --8<-- [end:step]


# --8<-- [start:activations]
def block_terms(n_embd: int, n_head: int, seq_len: int, step: Step) -> dict[str, float]:
    """Bytes one HF GPT-2 block saves for backward, per token, named by what saves them.

    Counted tensor by tensor with `saved_tensors_hooks` on the CPU, where the result is exact. What
    CUDA does differently (see `Step.kernel` for the attention kernel):
    - dropout keeps a 1-byte mask (`native_dropout`); the CPU keeps a mask in the input's dtype;
    - autocast runs `pow` in fp32 (PyTorch's AT_FORALL_FP32 list), so gelu_new's intermediates are
      fp32;
    - the fused kernels take attention dropout without keeping a mask (they replay the RNG).
    """
    h, a, s, c = n_embd, n_head, seq_len, COMPUTE_BYTES[step.dtype]
    autocast, cuda, dropout = step.dtype != "fp32", step.device == "cuda", step.dropout > 0
    mask = (lambda input_bytes: 1) if cuda else (lambda input_bytes: input_bytes)
    t = {
        "layernorm inputs (the fp32 residual stream), mean, rstd": 2 * (4 * h + 8),
        "c_attn and c_fc inputs": 2 * c * h,
    }
    if step.kernel == "fused":
        t["q|k|v"] = 3 * c * h  # q, k and v are views of c_attn's output
        if step.use_cache:
            t["k, v copied into the KV cache"] = 2 * c * h
        t["log-sum-exp per head (fp32)"] = 4 * a
    else:
        # the math backend computes 16-bit attention in fp32
        up = 4 if step.kernel == "math" else c
        t["q, k, v (copies)"] = 3 * up * h
        # the fp32 causal mask (eager) makes them fp32
        t["attention probabilities, a×s (fp32)"] = 4 * a * s
        if dropout:
            t["attention dropout mask, a×s"] = a * s * mask(up)
            t["dropped probabilities, a×s"] = up * a * s
        elif step.kernel == "eager" and autocast:
            t["probabilities cast to 16-bit, a×s"] = c * a * s
    t["attention output (c_proj input)"] = c * h
    # x, tanh(.) and 1 + tanh(.) in fp32; 0.5x and the c_proj input in 16-bit
    if cuda and autocast:
        t["MLP: gelu_new, 4h wide"] = 3 * 4 * 4 * h + 2 * 4 * c * h
    else:  # x, tanh(.), 1 + tanh(.), 0.5x and the output, 4h wide each
        t["MLP: gelu_new, 4h wide"] = 5 * 4 * c * h
    if dropout:
        t["residual dropout masks"] = 2 * h * mask(c)
    return t


def activation_terms(
    n_layer: int,
    n_embd: int,
    n_head: int,
    vocab_size: int,
    batch: int,
    seq_len: int,
    step: Step = Step(),
) -> dict[str, int]:
    """Bytes autograd saves for a forward of `GPT2LMHeadModel(ids, labels=ids)`, by term.

    Exact on the CPU for fp32 and bf16 autocast, eager/SDPA/math attention, dropout on or off,
    checkpointing on or off (the memory lab and the package tests check it against measured bytes).
    With activation checkpointing each block keeps only its input (fp32, h per token) and
    recomputes the rest in backward. Outside the blocks: int64 token ids, targets and positions,
    the final LayerNorm, the LM head's input, and the log-softmax over the vocabulary, which HF
    computes in fp32 (`logits.float()`).
    """
    h, tokens, c = n_embd, batch * seq_len, COMPUTE_BYTES[step.dtype]
    autocast, cuda = step.dtype != "fp32", step.device == "cuda"
    if step.checkpointing:
        out = {"block inputs (checkpointing)": n_layer * tokens * 4 * h}
    else:
        out = {k: n_layer * tokens * v for k, v in block_terms(h, n_head, seq_len, step).items()}
        # the log-sum-exp of CUDA's memory-efficient kernel pads s to 32
        if step.kernel == "fused":
            padded = 32 * math.ceil(seq_len / 32) if cuda and not autocast else seq_len
            out["log-sum-exp per head (fp32)"] = n_layer * batch * n_head * padded * 4
            if cuda:
                out["RNG seed and offset (CPU scalars)"] = n_layer * 16
        if autocast:
            out["weights cast to 16-bit (autocast cache)"] = n_layer * 12 * h * h * c
    out |= {
        "token ids, targets, positions (int64)": 8 * (2 * tokens + seq_len),
        "final layernorm input, mean, rstd": tokens * (4 * h + 8),
        "LM head input": tokens * c * h,
        "log-softmax over the vocabulary (fp32)": tokens * 4 * vocab_size,
        "loss": 4,
    }
    if autocast:
        out["LM head weight cast to 16-bit"] = vocab_size * h * c
    if step.dropout > 0:
        out["embedding dropout mask"] = tokens * h * (1 if cuda else 4)
    if step.checkpointing and step.kernel == "eager":
        out["causal mask, b×s×s (fp32), every block's input"] = 4 * batch * seq_len * seq_len
    return {k: int(v) for k, v in out.items()}


def activation_bytes(
    n_layer: int,
    n_embd: int,
    n_head: int,
    vocab_size: int,
    batch: int,
    seq_len: int,
    step: Step = Step(),
) -> int:
    """Bytes autograd saves for a forward of an HF GPT-2 with labels: sum of `activation_terms`."""
    return sum(
        activation_terms(n_layer, n_embd, n_head, vocab_size, batch, seq_len, step).values()
    )


# --8<-- [end:activations]


# --8<-- [start:peak]
def step_peak(
    n_layer: int,
    n_embd: int,
    n_head: int,
    vocab_size: int,
    batch: int,
    seq_len: int,
    step: Step = Step(),
    n_positions: int = 1024,
    first_step: bool = False,
    optimizer: str = "default",
    params: int | None = None,
) -> dict[str, int | str]:
    """Bytes allocated at the peak of one AdamW training step of an HF GPT-2 (on a GPU, what
    `torch.cuda.max_memory_allocated` reports), phase by phase; "peak" is the largest, "phase" its
    name.

    Held between steps: the fp32 weights (under autocast they are the master copy) and AdamW's m
    and v; the gradients are set to None after each step. `first_step`: m and v do not exist yet.
    - forward end: everything saved, plus the logits (and under autocast their fp32 copy for the
      loss);
    - backward start: everything saved, plus the loss's gradient with respect to the
      log-probabilities and then with respect to the logits: two fp32 tensors of b × s × V alive
      together;
    - blocks: backward through the blocks, gradients accumulating while saved tensors are freed;
      with checkpointing, one block's activations are recomputed at a time (taken at the last and
      first block);
    - optimizer: weights, gradients, m and v, and AdamW's temporaries: one 4-byte copy of every
      parameter for `foreach` (torch's default for CUDA tensors), two of the largest tensor for the
      per-tensor loop (the CPU's default), none for `fused`.
    `params` overrides the GPT-2 parameter count (another model's states around GPT-2-shaped
    blocks).
    """
    h, tokens, c = n_embd, batch * seq_len, COMPUTE_BYTES[step.dtype]
    params = params or gpt2_params(n_layer, h, vocab_size, n_positions)
    n_tensors = gpt2_param_tensors(n_layer)
    autocast, cuda = step.dtype != "fp32", step.device == "cuda"
    if optimizer == "default":
        optimizer = "foreach" if cuda else "for-loop"
    # `step` stays on the CPU unless fused
    counters = 0 if cuda and optimizer != "fused" else 4 * n_tensors
    weights, moments, grads = 4 * params, 8 * params + counters, 4 * params
    held = weights + (0 if first_step else moments)
    terms = activation_terms(n_layer, h, n_head, vocab_size, batch, seq_len, step)
    saved = sum(terms.values())
    head = sum(
        v for k, v in terms.items() if k.startswith(("final", "LM head", "log-softmax", "loss"))
    )
    full = replace(step, checkpointing=False)
    casts = 12 * h * h * c if autocast else 0  # the block's weights cast to 16-bit
    block_full = tokens * sum(block_terms(h, n_head, seq_len, full).values()) + casts
    block = 4 * h * tokens if step.checkpointing else block_full
    early = saved - head - n_layer * block  # the embeddings' share, alive to the end
    recompute = block_full if step.checkpointing else 0
    # two 4h-wide gradients inside the MLP
    mlp = 2 * 4 * h * tokens * (4 if cuda or not autocast else c)
    # the tied embedding's gradient arrives with the LM head's
    grad_head = 4 * (vocab_size * h + 2 * h)
    grad_block, grad_mlp = 4 * (12 * h * h + 13 * h), 4 * (8 * h * h + 5 * h)
    largest = max(vocab_size, 4 * h, n_positions) * h
    temporaries = {"foreach": 4 * params, "for-loop": 2 * 4 * largest, "fused": 0}
    phases = {
        "held": held,
        "forward end": held + saved + tokens * vocab_size * (c + (4 if autocast else 0)),
        "backward start": held + saved + 2 * tokens * vocab_size * 4,
        "blocks": held
        + early
        + mlp
        + recompute
        + grad_head
        + grad_mlp
        # in the first block, last in backward
        + max(
            n_layer * block,  # in the last block, first in backward
            block + (n_layer - 1) * grad_block,
        ),
        "optimizer": weights + grads + moments + temporaries[optimizer],
    }
    phase = max((k for k in phases if k != "held"), key=phases.get)
    return {
        **{k: int(v) for k, v in phases.items()},
        "saved": saved,
        "peak": int(phases[phase]),
        "phase": phase,
    }


# --8<-- [end:peak]


# --8<-- [start:korthikanti]
def korthikanti_activation_bytes(
    n_layer: int,
    n_embd: int,
    n_head: int,
    batch: int,
    seq_len: int,
    checkpointing: bool = False,
    scores: bool = True,
) -> float:
    """Korthikanti et al. (2022), §4.1, eq. 1: s·b·h·(34 + 5·a·s/h) bytes per layer, for a GPT
    block with 16-bit activations, 1-byte dropout masks and no recomputation; 2·s·b·h per layer
    with full recomputation. `scores=False` drops the 5·a·s²·b term of the attention scores,
    softmax and dropout (FlashAttention keeps none of them). Transformer blocks only: no
    embeddings, no LM head."""
    s, b, h, a = seq_len, batch, n_embd, n_head
    per_layer = (
        2 * s * b * h if checkpointing else s * b * h * (34 + (5 * a * s / h if scores else 0))
    )
    return n_layer * per_layer


# --8<-- [end:korthikanti]


# --8<-- [start:measure]
def enable_checkpointing(model) -> None:
    """Activation checkpointing on an HF model (non-reentrant): transformers 5 renamed the call."""
    if hasattr(model, "activation_checkpointing_enable"):
        model.activation_checkpointing_enable(
            activation_checkpointing_kwargs={"use_reentrant": False}
        )
    else:  # transformers 4.x and early 5.x
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})


def saved_activation_bytes(model, step) -> int:
    """Bytes autograd saves for backward while `step()` runs a forward: storages once, no weights.

    Two saved tensors often share one storage (a view, or the same tensor saved by two ops), so
    counting tensors would double-count; parameters are not activations, so their storages are left
    out."""
    weights = {p.untyped_storage().data_ptr() for p in model.parameters()}
    seen: dict[int, int] = {}

    def pack(t):
        storage = t.untyped_storage()
        if storage.data_ptr() not in weights:
            seen.setdefault(storage.data_ptr(), storage.nbytes())
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        step()
    return sum(seen.values())


def state_bytes(model, optimizer) -> dict[str, int]:
    """Bytes of the real weights, gradients and optimizer state; storages once (wte = lm_head)."""

    def unique(tensors):
        return sum(
            {
                t.untyped_storage().data_ptr(): t.untyped_storage().nbytes() for t in tensors
            }.values()
        )

    params = list(model.parameters())  # parameters() already yields a tied weight once
    states = [v for s in optimizer.state.values() for v in s.values() if torch.is_tensor(v)]
    return {
        "weights": unique(params),
        "grads": unique(p.grad for p in params if p.grad is not None),
        "optimizer": unique(states),
    }


# --8<-- [end:measure]


def cpu_peak_bytes(fn) -> int:
    """Peak bytes of CPU tensors alive while `fn()` runs, counted from the allocations and frees
    that `torch.profiler` records (its memory timeline): the CPU's
    `torch.cuda.max_memory_allocated`. Tensors alive before `fn` count from the start."""
    from torch.profiler import ProfilerActivity, profile
    from torch.profiler._memory_profiler import Action

    with profile(
        activities=[ProfilerActivity.CPU], profile_memory=True, record_shapes=True, with_stack=True
    ) as prof:
        fn()
    live: dict = {}
    now = peak = 0
    for _, action, key_version, size in prof._memory_profile().timeline:
        key = key_version[0] if key_version else None
        if action in (Action.PREEXISTING, Action.CREATE):
            live[key] = size
            now += size
        elif action == Action.DESTROY:
            now -= live.pop(key, 0)
        peak = max(peak, now)
    return peak


# --8<-- [start:estimate]
def estimate(
    params: float,
    gpus: int = 1,
    zero_stage: int = 0,
    shape: tuple[int, int, int, int] | None = None,
    batch: int | None = None,
    seq_len: int | None = None,
    step: Step = Step(),
    inference_dtype: str = "fp16",
    kv_batch: int | None = None,
    kv_seq_len: int | None = None,
) -> dict[str, float]:
    """Training and inference memory per device.

    Model states: the ZeRO paper's accounting, mixed precision (2 + 2 + 12 B/param) unless
    `step.dtype` is fp32 (4 + 4 + 8), sharded by `zero_stage` over `gpus`. `shape` = (n_layer,
    n_embd, n_head, vocab) adds the KV cache (for the same batch and length, or one 1,024-token
    sequence) and, with `batch` and `seq_len` per device, the bytes saved for backward
    (`activation_bytes`: GPT-2 blocks) and, on one device without ZeRO, the peak of a step
    (`step_peak`)."""
    mixed = step.dtype != "fp32"
    states = model_states(params, gpus, zero_stage, mixed)
    master = params * 4 / (max(1, gpus) if zero_stage >= 1 else 1) if mixed else 0.0
    out = {
        "params": params,
        "gpus": gpus,
        "zero_stage": zero_stage,
        **asdict(step),
        "weights_bytes": states.weights,
        "grads_bytes": states.grads,
        "optimizer_bytes": states.optimizer,
        "master_weights_bytes": master,
        "adam_moments_bytes": states.optimizer - master,
        "model_state_bytes_per_gpu": states.total,
    }
    kv = 0.0
    if shape is not None:
        n_layer, n_embd, n_head, vocab = shape
        if batch and seq_len:
            act = activation_bytes(n_layer, n_embd, n_head, vocab, batch, seq_len, step)
            out |= {"activation_bytes": act, "training_bytes_per_gpu": states.total + act}
            if gpus == 1 and zero_stage == 0:
                peak = step_peak(
                    n_layer, n_embd, n_head, vocab, batch, seq_len, step, params=int(params)
                )
                out |= {"peak_bytes": peak["peak"], "peak_phase": peak["phase"]}
        kv = kv_cache_bytes(
            n_layer, n_embd, kv_batch or batch or 1, kv_seq_len or seq_len or 1024, inference_dtype
        )
        out["kv_cache_bytes"] = kv
    out["inference_bytes"] = inference_bytes(params, inference_dtype, kv)
    return out


# --8<-- [end:estimate]


def family_rows(batch: int = 1, seq_len: int = 1024) -> list[dict]:
    """The GPT-2 family and a 7B model on one GPU, at GPU defaults (`Step()`): mixed-precision
    AdamW training against fp16 inference. The 7B row is Llama-2-7B's parameter count around GPT-2
    blocks of its shape."""
    models = {
        name: ((*shape, 50257), gpt2_params(*shape[:2]), 0.1)
        for name, shape in GPT2_FAMILY.items()
    }
    s = LLAMA2_7B
    models["7B (Llama-2 shape)"] = (
        (s["n_layer"], s["n_embd"], s["n_head"], s["vocab_size"]),
        llama_params(s["n_layer"], s["n_embd"], s["intermediate"], s["vocab_size"]),
        0.0,
    )
    rows = []
    for name, (shape, params, dropout) in models.items():
        e, ck = (
            estimate(
                params,
                shape=shape,
                batch=batch,
                seq_len=seq_len,
                step=Step(dropout=dropout, checkpointing=c),
            )
            for c in (False, True)
        )
        rows.append(
            {
                "model": name,
                "params": params,
                "weights_gb": e["weights_bytes"] / 1e9,
                "model_states_gb": e["model_state_bytes_per_gpu"] / 1e9,
                "activations_gb": e["activation_bytes"] / 1e9,
                "activations_ckpt_gb": ck["activation_bytes"] / 1e9,
                "training_gb": e["training_bytes_per_gpu"] / 1e9,
                "peak_gb": e["peak_bytes"] / 1e9,
                "kv_cache_gb": e["kv_cache_bytes"] / 1e9,
                "inference_gb": e["inference_bytes"] / 1e9,
                "training_over_inference": e["training_bytes_per_gpu"] / e["inference_bytes"],
            }
        )
    return rows


# --8<-- [start:cli]
MODELS = {
    **{name: (*shape, 50257) for name, shape in GPT2_FAMILY.items()},
    "llama-2-7b": tuple(LLAMA2_7B[k] for k in ("n_layer", "n_embd", "n_head", "vocab_size")),
}


def estimate_cli(argv: list[str]) -> dict:
    """`python -m lifecycle.memory estimate`: the calculator alone, for `--params N` or `--model`.

    The step's options default to what transformers picks on a GPU (see `Step`); `--dropout`
    defaults to the named model's config (0.1 for GPT-2, 0 for Llama-2)."""
    from lifecycle.cli import LabError

    class Parser(argparse.ArgumentParser):
        def error(self, message):  # one line and exit 2, like every lab
            raise LabError(f"estimate: {message}")

    p = Parser(prog="python -m lifecycle.memory estimate")
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--params", type=float, help="parameter count, e.g. 7.5e9")
    which.add_argument(
        "--model", choices=list(MODELS), help="a named shape (adds KV cache, activations, peak)"
    )
    p.add_argument(
        "--gpus", type=int, default=1, help="data-parallel devices that ZeRO shards over"
    )
    p.add_argument(
        "--zero-stage",
        type=int,
        default=0,
        choices=range(4),
        help="0: none, 1: optimizer, 2: +grads, 3: +weights",
    )
    p.add_argument("--batch", type=int, help="micro-batch per device, for activations")
    p.add_argument(
        "--seq-len", type=int, help="tokens per sequence, for activations and the KV cache"
    )
    p.add_argument(
        "--checkpointing",
        action="store_true",
        help="activation checkpointing: keep block inputs only",
    )
    p.add_argument(
        "--attn",
        default="sdpa",
        choices=ATTENTION,
        help="attn_implementation (math: SDPA's math backend)",
    )
    p.add_argument(
        "--dtype",
        default="bf16",
        choices=list(COMPUTE_BYTES),
        help="autocast dtype; fp32: no autocast",
    )
    p.add_argument(
        "--dropout", type=float, help="resid/embd/attn dropout (default: the model's config)"
    )
    p.add_argument("--device", default="cuda", choices=("cuda", "cpu"), help="where the step runs")
    p.add_argument(
        "--no-cache", action="store_true", help="use_cache=False: no KV-cache copies of k and v"
    )
    p.add_argument(
        "--inference-dtype",
        default="fp16",
        choices=list(DTYPE_BYTES),
        help="weights and KV cache dtype",
    )
    p.add_argument("--json", action="store_true", help="print JSON")
    a = p.parse_args(argv)
    if a.gpus <= 0 or (a.params is not None and a.params <= 0):
        raise LabError("estimate: --gpus and --params must be positive")
    if a.dropout is not None and not 0 <= a.dropout < 1:
        raise LabError(f"estimate: --dropout {a.dropout}: expected 0 <= p < 1")
    shape, params = None, a.params
    if a.model == "llama-2-7b":
        shape, params = (
            MODELS[a.model],
            llama_params(**{k: v for k, v in LLAMA2_7B.items() if k != "n_head"}),
        )
    elif a.model:
        shape, params = MODELS[a.model], gpt2_params(MODELS[a.model][0], MODELS[a.model][1])
    dropout = a.dropout if a.dropout is not None else (0.0 if a.model == "llama-2-7b" else 0.1)
    step = Step(a.device, a.attn, a.dtype, dropout, a.checkpointing, use_cache=not a.no_cache)
    result = estimate(
        params, a.gpus, a.zero_stage, shape, a.batch, a.seq_len, step, a.inference_dtype
    )
    if a.json:
        print(json.dumps(result, indent=2))
    else:
        for k, v in result.items():
            big = k.endswith("_bytes") or k.endswith("_per_gpu")
            print(f"{k:28} {v / 1e9:12.3f} GB" if big else f"{k:28} {v}")
    return result


def main(argv: list[str] | None = None) -> dict:
    from lifecycle.cli import LabError

    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] != ["estimate"]:
        raise LabError(
            "usage: python -m lifecycle.memory estimate (--params N | --model NAME) [options]; "
            "--help lists them"
        )
    return estimate_cli(argv[1:])


# --8<-- [end:cli]


if __name__ == "__main__":
    from lifecycle.cli import run

    run(main)
