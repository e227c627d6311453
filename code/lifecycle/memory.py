"""Memory arithmetic: why models are large, and why training needs so much more than inference.

Bytes are bytes (1 GB = 1e9 bytes, 1 GiB = 2**30). Defaults follow the usual mixed-precision AdamW recipe
of the ZeRO paper: 2-byte weights and gradients, plus fp32 master weights, momentum and variance
(K = 12 bytes per parameter), so 16 bytes per parameter before activations.
"""

from dataclasses import dataclass

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


# --8<-- [start:inference]
def kv_cache_bytes(n_layer: int, n_embd: int, batch: int, seq_len: int, dtype: str = "fp16") -> float:
    """Keys and values of every layer for every cached token: 2 × layers × d × tokens."""
    return 2 * n_layer * n_embd * batch * seq_len * DTYPE_BYTES[dtype]


def inference_bytes(params: float, dtype: str = "fp16", kv_cache: float = 0.0) -> float:
    """Inference carries the weights in one dtype and the KV cache; no gradients, no optimizer."""
    return params * DTYPE_BYTES[dtype] + kv_cache
# --8<-- [end:inference]
