"""Memory arithmetic: why models are large, and why training needs so much more than inference.

Bytes are bytes (1 GB = 1e9 bytes, 1 GiB = 2**30). Defaults follow the usual mixed-precision AdamW recipe
of the ZeRO paper: 2-byte weights and gradients, plus fp32 master weights, momentum and variance
(K = 12 bytes per parameter), so 16 bytes per parameter before activations.
"""

from dataclasses import dataclass

import torch

DTYPE_BYTES = {"fp32": 4, "fp16": 2, "bf16": 2, "int8": 1, "int4": 0.5}

# --8<-- [start:gpt2]
GPT2_FAMILY = {  # (n_layer, n_embd, n_head) from the released GPT2Config sizes
    "gpt2": (12, 768, 12),
    "gpt2-medium": (24, 1024, 16),
    "gpt2-large": (36, 1280, 20),
    "gpt2-xl": (48, 1600, 25),
}


def gpt2_params(n_layer: int, n_embd: int, vocab_size: int = 50257, n_positions: int = 1024) -> int:
    """Exact parameter count of a GPT-2 with tied input/output embeddings.

    Per block: attention qkv (d×3d + 3d) and output (d×d + d), MLP up (d×4d + 4d) and down (4d×d + d),
    two LayerNorms (2d each): 12d² + 13d. Plus token and position embeddings and the final LayerNorm.
    """
    d = n_embd
    return vocab_size * d + n_positions * d + n_layer * (12 * d * d + 13 * d) + 2 * d
# --8<-- [end:gpt2]


@dataclass(frozen=True)
class ModelStates:
    """Bytes per device for weights, gradients and optimizer states (the fp32 master copy included)."""

    weights: float
    grads: float
    optimizer: float

    @property
    def total(self) -> float:
        return self.weights + self.grads + self.optimizer


# --8<-- [start:states]
def model_states(params: float, gpus: int = 1, zero_stage: int = 0, mixed_precision: bool = True) -> ModelStates:
    """Training state per device under AdamW, with ZeRO stage 0-3 sharding over `gpus` data-parallel ranks.

    Mixed precision: 2 B weights + 2 B grads + 12 B optimizer (4 B master copy, 4 B momentum, 4 B
    variance). Pure fp32: 4 + 4 + 8. ZeRO-1 shards the optimizer, ZeRO-2 also the gradients, ZeRO-3 also
    the weights.
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
    """The collectives of one data-parallel step: (operation, what it moves, when, volume per rank in units
    of the model size Ψ). Rajbhandari et al. (2020), §7: a ring all-reduce is a reduce-scatter then an
    all-gather, 2Ψ. Stages 1 and 2 reduce-scatter the gradients and all-gather the updated weights after
    the step: still 2Ψ. Stage 3 keeps no whole weights: it all-gathers each layer's weights just in time
    for its forward and again for its backward, then reduce-scatters the gradients: 3Ψ, and nothing
    after the step."""
    if zero_stage == 0:
        return [("all-reduce", "gradients", "during backward, bucket by bucket", 2.0)]
    if zero_stage in (1, 2):
        return [("reduce-scatter", "gradients", "during backward", 1.0),
                ("all-gather", "updated weights", "after the optimizer step", 1.0)]
    if zero_stage == 3:
        return [("all-gather", "each layer's weights", "just before its forward", 1.0),
                ("all-gather", "each layer's weights", "again, just before its backward", 1.0),
                ("reduce-scatter", "gradients", "during backward", 1.0)]
    raise ValueError(f"ZeRO stage {zero_stage}: expected 0, 1, 2 or 3")


def zero_traffic(zero_stage: int) -> float:
    """Bytes each rank moves per step, in units of the model size Ψ."""
    return sum(volume for *_, volume in zero_collectives(zero_stage))
# --8<-- [end:traffic]


# --8<-- [start:inference]
def kv_cache_bytes(n_layer: int, n_embd: int, batch: int, seq_len: int, dtype: str = "fp16") -> float:
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
    """Parameter tensors of a GPT-2: 12 per block (6 weights, 6 biases), plus wte, wpe and ln_f's two.

    AdamW keeps a 4-byte `step` counter per tensor, so this count enters the exact state bytes."""
    return 12 * n_layer + 4


def llama_params(n_layer: int, n_embd: int, intermediate: int, vocab_size: int, tied: bool = False) -> int:
    """Exact parameter count of a Llama-style model (no biases, RMSNorm, SwiGLU MLP).

    Per layer: q, k, v, o (4d²), gate, up and down (3·d·ff), two RMSNorm weights (2d). Llama-2-7B
    (32, 4096, 11008, 32000, untied) gives 6,738,415,616."""
    d = n_embd
    layer = 4 * d * d + 3 * d * intermediate + 2 * d
    return n_layer * layer + vocab_size * d * (1 if tied else 2) + d


LLAMA2_7B = dict(n_layer=32, n_embd=4096, n_head=32, intermediate=11008, vocab_size=32000)
# --8<-- [end:config]


def exact_adamw_state_bytes(params: int, n_tensors: int, dtype_bytes: int = 4) -> dict[str, int]:
    """What `torch.optim.AdamW` really holds after one step with weights in one dtype (fp32 on the CPU):
    the weights, one gradient per weight, `exp_avg` and `exp_avg_sq` per weight, and one fp32 scalar
    `step` per tensor."""
    return {
        "weights": params * dtype_bytes,
        "grads": params * dtype_bytes,
        "optimizer": 2 * params * dtype_bytes + 4 * n_tensors,
    }


# --8<-- [start:activations]
def activation_floats_per_token_layer(n_embd: int, n_head: int, seq_len: int, attn: str = "sdpa", dropout: bool = False) -> int:
    """Floats one HF GPT-2 block saves for backward, per token (fp32, CPU), counted tensor by tensor.

    LayerNorm ×2: input h + mean and rstd (2)         -> 2h + 4
    c_attn input h; its output q|k|v (3h)             -> 4h (sdpa keeps q as a view of q|k|v)
    attention, sdpa without dropout: copies of k, v (2h), output h (c_proj reads it as a view),
        log-sum-exp per head (a)                      -> 3h + a
    attention, eager or with dropout: softmax probabilities a·s; c_proj input h
    MLP: c_fc input h; gelu_new is unfused: x, tanh(.), 0.5x, 1+tanh(.), and its output, 4h each -> 21h
    dropout (p > 0): an fp32 mask for the attention probabilities (a·s) and both residual branches (2h),
        plus the dropped probabilities the next matmul reads (a·s)
    """
    h, a, s = n_embd, n_head, seq_len
    common = 2 * h + 4 + 4 * h + 21 * h  # the two LayerNorms, c_attn, MLP
    if attn == "sdpa" and not dropout:
        return common + 3 * h + a  # = 30h + a + 4
    eager = common + a * s + h  # = 28h + a·s + 4 (sdpa with dropout falls back to this math path)
    return eager + (2 * h + 2 * a * s if dropout else 0)


def activation_bytes(
    n_layer: int, n_embd: int, n_head: int, vocab_size: int, batch: int, seq_len: int,
    checkpointing: bool = False, attn: str = "sdpa", dropout: bool = False, float_bytes: int = 4,
) -> int:
    """Bytes autograd saves for one forward of `GPT2LMHeadModel(input_ids, labels=input_ids)`.

    Exact for HF GPT-2 in fp32 on the CPU (the memory lab checks it against measured bytes).
    With activation checkpointing each block keeps only its input (h per token) and recomputes the rest.
    Outside the blocks: the embedding's int64 token and position ids, the final LayerNorm (h + 2), the LM
    head's input (h), log-softmax over the vocabulary (V per token: often the largest single term), the
    loss's int64 targets and one fp32 scalar; with dropout, the embedding dropout's mask (h). Eager
    attention under checkpointing also keeps the b×s×s float causal mask that every block takes as input.
    """
    tokens = batch * seq_len
    per_layer = n_embd if checkpointing else activation_floats_per_token_layer(n_embd, n_head, seq_len, attn, dropout)
    floats = tokens * (n_layer * per_layer + 2 * n_embd + 2 + vocab_size + (n_embd if dropout else 0))
    if checkpointing and attn == "eager":
        floats += batch * seq_len * seq_len
    ints = 8 * (2 * tokens + seq_len)  # input ids, shifted targets, position ids
    return floats * float_bytes + ints + 4
# --8<-- [end:activations]


# --8<-- [start:korthikanti]
def korthikanti_activation_bytes(n_layer: int, n_embd: int, n_head: int, batch: int, seq_len: int, checkpointing: bool = False) -> float:
    """Korthikanti et al. (2022), eq. 1: s·b·h·(34 + 5·a·s/h) bytes per layer in 16-bit with 1-byte
    dropout masks; 2·s·b·h per layer with full recomputation. Transformer blocks only, no LM head."""
    s, b, h, a = seq_len, batch, n_embd, n_head
    per_layer = 2 * s * b * h if checkpointing else s * b * h * (34 + 5 * a * s / h)
    return n_layer * per_layer
# --8<-- [end:korthikanti]


# --8<-- [start:measure]
def enable_checkpointing(model) -> None:
    """Activation checkpointing on an HF model (non-reentrant): transformers 5 renamed the switch."""
    if hasattr(model, "activation_checkpointing_enable"):
        model.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
    else:  # transformers 4.x and early 5.x
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})


def saved_activation_bytes(model, step) -> int:
    """Bytes autograd saves for backward while `step()` runs a forward pass: each storage once, weights excluded.

    Two saved tensors often share one storage (a view, or the same tensor saved by two ops), so counting
    tensors would double-count; parameters are not activations, so their storages are left out."""
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
    """Bytes of the real tensors: weights, gradients and optimizer state, each storage once (tied wte/lm_head)."""

    def unique(tensors):
        return sum({t.untyped_storage().data_ptr(): t.untyped_storage().nbytes() for t in tensors}.values())

    params = list(model.parameters())  # parameters() already yields a tied weight once
    states = [v for s in optimizer.state.values() for v in s.values() if torch.is_tensor(v)]
    return {
        "weights": unique(params),
        "grads": unique(p.grad for p in params if p.grad is not None),
        "optimizer": unique(states),
    }
# --8<-- [end:measure]


# --8<-- [start:estimate]
def estimate(
    params: float, gpus: int = 1, zero_stage: int = 0, mixed_precision: bool = True,
    shape: tuple[int, int, int, int] | None = None, batch: int | None = None, seq_len: int | None = None,
    checkpointing: bool = False, inference_dtype: str = "fp16", kv_batch: int | None = None, kv_seq_len: int | None = None,
) -> dict[str, float]:
    """Training and inference memory per device. `shape` = (n_layer, n_embd, n_head, vocab) enables
    activations (needs batch and seq_len, per device) and the KV cache (for the same batch and length, or
    one 1,024-token sequence); otherwise they are left out.

    Activations use the HF GPT-2 formula above with 2-byte floats under mixed precision (4 in fp32)."""
    states = model_states(params, gpus, zero_stage, mixed_precision)
    master = params * 4 / (max(1, gpus) if zero_stage >= 1 else 1) if mixed_precision else 0.0
    out = {
        "params": params, "gpus": gpus, "zero_stage": zero_stage, "mixed_precision": mixed_precision,
        "weights_bytes": states.weights, "grads_bytes": states.grads, "optimizer_bytes": states.optimizer,
        "master_weights_bytes": master, "adam_moments_bytes": states.optimizer - master,
        "model_state_bytes_per_gpu": states.total,
    }
    kv = 0.0
    if shape is not None:
        n_layer, n_embd, n_head, vocab = shape
        if batch and seq_len:
            act = activation_bytes(n_layer, n_embd, n_head, vocab, batch, seq_len, checkpointing,
                                   float_bytes=2 if mixed_precision else 4)
            out |= {"activation_bytes": act, "training_bytes_per_gpu": states.total + act}
        kv = kv_cache_bytes(n_layer, n_embd, kv_batch or batch or 1, kv_seq_len or seq_len or 1024, inference_dtype)
        out["kv_cache_bytes"] = kv
    out["inference_bytes"] = inference_bytes(params, inference_dtype, kv)
    return out
# --8<-- [end:estimate]
