"""Helpers for the parallelism lab: the same GPT-2 in every process, each rank's shapes and the
largest difference from one process, GPT-2 blocks made ready for torch's tensor-parallel API, and
the pipeline-bubble formula.

HF's GPT-2 computes its projections with `Conv1D` (`y = x @ W + b`, weight stored as [in, out]),
which `ColwiseParallel`/`RowwiseParallel` do not know: they shard `nn.Linear` (weight [out, in]).
So we swap each `Conv1D` for an `nn.Linear` with the transposed weight, then make the fused q|k|v
projection shard by whole heads.
"""

import torch
import torch.distributed as dist
from torch import nn
from transformers import GPT2Config, GPT2LMHeadModel
from transformers.pytorch_utils import Conv1D

from .models import SIZES


def conv1d_to_linear(module: nn.Module) -> nn.Module:
    """Replace each `Conv1D` inside `module` by the `nn.Linear` that computes the same function."""
    for name, child in list(module.named_children()):
        if isinstance(child, Conv1D):
            n_in, n_out = child.weight.shape
            linear = nn.Linear(n_in, n_out, dtype=child.weight.dtype)
            with torch.no_grad():
                linear.weight.copy_(child.weight.T)  # Conv1D stores [in, out]; Linear [out, in]
                linear.bias.copy_(child.bias)
            setattr(module, name, linear)
        else:
            conv1d_to_linear(child)
    return module


# --8<-- [start:heads]
def qkv_by_rank(c_attn: nn.Linear, n_head: int, world: int) -> None:
    """Reorder the fused projection's rows from [q | k | v] to [q0 k0 v0 | q1 k1 v1 | ...].

    `ColwiseParallel` gives rank r the r-th contiguous block of rows. In HF's order rank 0 would
    get all of q and half of k; after the reorder it gets q, k and v of its own heads, which is
    what attention needs to run without talking to the other ranks.
    """
    width = c_attn.in_features
    per_rank = width // world  # n_head // world whole heads, each head_dim wide
    assert n_head % world == 0, f"{n_head} heads do not split over {world} ranks"
    # (q|k|v, rank, row within the rank's heads)
    rows = torch.arange(3 * width).view(3, world, per_rank)
    order = rows.transpose(0, 1).reshape(-1)  # rank-major: each rank's q, k, v rows side by side
    with torch.no_grad():
        c_attn.weight.copy_(c_attn.weight[order])
        c_attn.bias.copy_(c_attn.bias[order])


def prepare_block(block: nn.Module, world: int, reorder: bool = True) -> nn.Module:
    """Make an HF `GPT2Block` shardable: Linear layers, heads grouped by rank, a local width."""
    conv1d_to_linear(block)
    if reorder:
        qkv_by_rank(block.attn.c_attn, block.attn.num_heads, world)
    block.attn.split_size = block.attn.embed_dim // world  # each rank splits its local q|k|v
    return block


TP_PLAN = {  # Megatron's pairing: column-split the first matmul, row-split the second
    "attn.c_attn": "colwise",  # each rank: q, k, v of its heads
    "attn.c_proj": "rowwise",  # each rank: partial sum over its heads, then one all-reduce
    "mlp.c_fc": "colwise",  # each rank: half of the 4h hidden units
    "mlp.c_proj": "rowwise",  # partial sums, one all-reduce
}
# --8<-- [end:heads]


# --8<-- [start:bubble]
def bubble_theory(stages: int, microbatches: int) -> float:
    """GPipe's idle fraction with equal stages: (p - 1) / (m + p - 1) (Huang et al., 2019)."""
    return (stages - 1) / (microbatches + stages - 1)


def gpipe_timeline(forward: list[float], backward: list[float], microbatches: int) -> dict:
    """Play GPipe's schedule with per-micro-batch stage times: the step time and idle fraction.

    GPipe (torch's `ScheduleGPipe`) runs all m forwards, then all m backwards. A stage starts a
    micro-batch when it is free AND the neighbour has handed over that micro-batch's activation
    (forward) or gradient (backward). Communication is taken as free.
    """
    p, m = len(forward), microbatches
    free = [0.0] * p  # when each stage finishes its current work
    done = [[0.0] * m for _ in range(p)]
    for i in range(m):  # forwards flow down the stages
        for s in range(p):
            start = max(free[s], done[s - 1][i] if s else 0.0)
            free[s] = done[s][i] = start + forward[s]
    for i in range(m):  # backwards flow up, after each stage's last forward
        for s in reversed(range(p)):
            start = max(free[s], done[s + 1][i] if s < p - 1 else 0.0)
            free[s] = done[s][i] = start + backward[s]
    step = max(free)
    busy = [m * (f + b) for f, b in zip(forward, backward)]
    return {"step": step, "bubble": 1 - sum(busy) / (p * step)}


# --8<-- [end:bubble]


def shape(t) -> str:
    """A tensor's shape as `4×64`, the local shard's for a DTensor."""
    t = t.to_local() if hasattr(t, "to_local") else t
    return "×".join(str(n) for n in t.shape)


def config_for(name: str) -> GPT2Config | str:
    """A GPT2Config for an offline size, else a Hub id or folder. No dropout: exact comparisons."""
    exact = dict(resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0, attn_implementation="sdpa")
    if name in ("smoke", "lesson"):
        return GPT2Config(vocab_size=1024, bos_token_id=0, eos_token_id=0, **SIZES[name], **exact)
    return name


def build(config, seed: int) -> GPT2LMHeadModel:
    """The same GPT-2 in every process: a seeded random init, or the same checkpoint."""
    torch.manual_seed(seed)
    if isinstance(config, GPT2Config):
        return GPT2LMHeadModel(config)
    exact = dict(resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0)
    return GPT2LMHeadModel.from_pretrained(
        config, attn_implementation="sdpa", use_safetensors=True, **exact
    )


class Record:
    """Each rank's tensor shapes, printed and kept for the shapes table."""

    def __init__(self, rank: int):
        self.rank, self.rows = rank, []

    def __call__(self, kind: str, tensor: str, local, full) -> None:
        def text(t):
            return t if isinstance(t, str) else shape(t)

        row = dict(
            parallelism=kind, tensor=tensor, rank=self.rank, shape=text(local), full=text(full)
        )
        print(
            f"[rank {self.rank}] {kind:8s} {tensor:34s} {row['shape']:>10s}  "
            f"(unsplit {row['full']})",
            flush=True,
        )
        self.rows.append(row)


def max_diff(pairs) -> float:
    """Largest |a - b| over (a, b) pairs, then the largest over all ranks."""
    d = torch.tensor(max((a - b).abs().max().item() for a, b in pairs), dtype=torch.float64)
    dist.all_reduce(d, op=dist.ReduceOp.MAX)
    return d.item()


def shapes_table(shapes: list[dict]) -> str:
    """One row per (parallelism, tensor): the unsplit shape, then what each rank holds."""
    keyed = {}
    for r in shapes:
        keyed.setdefault((r["parallelism"], r["tensor"]), {"full": r["full"]})[r["rank"]] = r[
            "shape"
        ]
    lines = [
        "| parallelism | tensor | unsplit | rank 0 | rank 1 |",
        "| --- | --- | ---: | ---: | ---: |",
    ]
    lines += [
        f"| {k[0]} | `{k[1]}` | {v['full']} | {v.get(0, '')} | {v.get(1, '')} |"
        for k, v in keyed.items()
    ]
    return "\n".join(lines) + "\n"
