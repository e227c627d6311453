"""Parallelism on two CPU processes: what data, tensor, pipeline and sharded parallelism split.

    python code/labs/parallelism.py --output_dir runs/parallelism                 # lesson: 1 min
    python code/labs/parallelism.py --output_dir runs/parallelism --preset smoke  # seconds
    python code/labs/parallelism.py --output_dir runs/parallelism --preset gpu    # gpt2 weights

`main` spawns 2 processes (torch.multiprocessing, gloo backend, CPU) that form ONE process group
and run four demos on a GPT-2 with random weights: DDP, tensor parallel (`parallelize_module`),
pipeline parallel (`torch.distributed.pipelining`, GPipe) and FSDP2 (`fully_shard`). Each demo
compares its result with one process doing the same work alone, and records every rank's tensor
shapes. The `gpu` preset loads the real `gpt2` and still runs on 2 CPU processes: for real
multi-GPU training use `accelerate launch` with the configs in `code/configs/` (see the page).
Writes `metrics.json`, `results.md`, `shapes.md`, `bubble.md` and `bubble.png`.

Longer than the 250 lines a lab aims for: four demos (DDP, TP, PP, FSDP), each the code its part of
the page teaches, plus the process group they share. The plumbing (the same model in every process,
shapes, differences) lives in `lifecycle/parallel.py`.
"""

import copy
import json
import os
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn.functional as F
from torch import nn
from transformers import GPT2LMHeadModel

from lifecycle import plots, report
from lifecycle.cli import LabArgs, LabError, comma_list, parse, run, write_metrics
from lifecycle.device import measured_on
from lifecycle.parallel import (
    TP_PLAN,
    Record,
    bubble_theory,
    build,
    config_for,
    gpipe_timeline,
    max_diff,
    prepare_block,
    shapes_table,
)

WORLD = 2  # processes; one CPU core each


# --8<-- [start:args]
@dataclass
class Args(LabArgs):
    positive = ("batch_size", "seq_len", "micro_batch", "repeats", "timeout")  # checked by parse()
    model: str | None = field(
        default=None,
        metadata={"help": "A model size (smoke, lesson) or a Hub id / folder (gpt2)."},
    )
    batch_size: int | None = field(
        default=None, metadata={"help": "Sequences in the full batch (DDP, FSDP, pipeline check)."}
    )
    seq_len: int | None = field(default=None, metadata={"help": "Tokens per sequence."})
    micro_batch: int | None = field(
        default=None, metadata={"help": "Sequences per pipeline micro-batch."}
    )
    microbatches: str | None = field(
        default=None, metadata={"help": "Micro-batch counts m for the bubble sweep, e.g. 1,2,4,8."}
    )
    repeats: int | None = field(
        default=None, metadata={"help": "Timed tries of each stage (the fastest counts)."}
    )
    timeout: int | None = field(
        default=None, metadata={"help": "Seconds a collective may wait before failing."}
    )


PRESETS = {
    "smoke": dict(
        model="smoke",
        batch_size=4,
        seq_len=32,
        micro_batch=2,
        microbatches="1,2,4,8",
        repeats=3,
        timeout=60,
    ),
    "lesson": dict(
        model="lesson",
        batch_size=8,
        seq_len=64,
        micro_batch=4,
        microbatches="1,2,4,8,16",
        repeats=5,
        timeout=120,
    ),
    "gpu": dict(
        model="gpt2",
        batch_size=8,
        seq_len=128,
        micro_batch=2,
        microbatches="1,2,4,8",
        repeats=3,
        timeout=300,
    ),
}
# --8<-- [end:args]


# --8<-- [start:ddp]
def data_parallel(model, ids, ref_grads, rank, record) -> dict:
    """DDP: each rank holds the whole model and half the batch; backward averages the gradients."""
    ddp = nn.parallel.DistributedDataParallel(model)
    local = ids.chunk(WORLD)[rank]  # (1)!
    ddp(local, labels=local).loss.backward()  # (2)!
    record("DDP", "input_ids (batch)", local, ids)
    record(
        "DDP",
        "wte.weight (whole copy)",
        model.transformer.wte.weight,
        model.transformer.wte.weight,
    )
    pairs = [(p.grad, ref_grads[n]) for n, p in model.named_parameters()]
    return {"ddp_max_abs_diff": max_diff(pairs)}


# --8<-- [end:ddp]


# --8<-- [start:tp]
def tensor_parallel(model, x, mesh, record) -> dict:
    """Megatron-style tensor parallel on one GPT-2 block: every rank sees the whole batch and holds
    half of each weight matrix; attention splits by heads, the MLP by hidden units."""
    from torch.distributed.tensor.parallel import (
        ColwiseParallel,
        RowwiseParallel,
        parallelize_module,
    )

    block = model.transformer.h[0].eval()
    want = block(x)  # the unsplit block, in this process
    styles = {"colwise": ColwiseParallel, "rowwise": RowwiseParallel}
    plan = {name: styles[s]() for name, s in TP_PLAN.items()}

    tp = parallelize_module(prepare_block(copy.deepcopy(block), WORLD), mesh, plan)  # (1)!
    hidden = {}
    tp.mlp.act.register_forward_hook(lambda m, i, out: hidden.setdefault("h", out))
    got = tp(x)  # (2)!

    trap = parallelize_module(
        prepare_block(copy.deepcopy(block), WORLD, reorder=False), mesh, plan
    )
    wrong = trap(x)  # (3)!

    full = prepare_block(copy.deepcopy(block), WORLD)
    for name in TP_PLAN:
        record(
            "TP", f"{name}.weight", tp.get_submodule(name).weight, full.get_submodule(name).weight
        )
    record("TP", "mlp hidden activation", hidden["h"], torch.empty(*x.shape[:-1], 4 * x.shape[-1]))
    record("TP", "block output (all-reduced)", got, want)
    return {
        "tp_max_abs_diff": max_diff([(got, want)]),
        "tp_no_reorder_max_abs_diff": max_diff([(wrong, want)]),
    }


# --8<-- [end:tp]


# --8<-- [start:stages]
class FirstStage(nn.Module):
    """Rank 0: token and position embeddings, then the first half of the blocks."""

    def __init__(self, model: GPT2LMHeadModel, split: int):
        super().__init__()
        t = model.transformer
        self.wte, self.wpe, self.h = t.wte, t.wpe, t.h[:split]

    def forward(self, ids):
        x = self.wte(ids) + self.wpe(torch.arange(ids.shape[1]))
        for block in self.h:
            x = block(x)  # no mask passed: sdpa applies the causal mask itself (is_causal)
        return x


class LastStage(nn.Module):
    """Rank 1: the other blocks, the final norm, and the LM head (its own copy of the tied wte)."""

    def __init__(self, model: GPT2LMHeadModel, split: int):
        super().__init__()
        t = model.transformer
        self.h, self.ln_f = t.h[split:], t.ln_f
        self.lm_head = nn.Linear(t.wte.weight.shape[1], t.wte.weight.shape[0], bias=False)
        self.lm_head.weight = nn.Parameter(t.wte.weight.detach().clone())  # (1)!

    def forward(self, x):
        for block in self.h:
            x = block(x)
        return self.lm_head(self.ln_f(x))


def next_token_loss(logits, ids):
    """The same loss as HF's `labels=ids`: position t predicts token t + 1, mean over tokens."""
    return F.cross_entropy(logits[:, :-1].flatten(0, 1), ids[:, 1:].flatten())


# --8<-- [end:stages]


def make_pipe(stage_module, m: int, rank: int):
    """This rank's part of a 2-stage pipeline with m micro-batches: `step(ids)` runs forward and
    backward and returns the logits on the last stage."""
    from torch.distributed.pipelining import PipelineStage, ScheduleGPipe

    # --8<-- [start:pipeline]
    stage = PipelineStage(
        stage_module, stage_index=rank, num_stages=WORLD, device=torch.device("cpu")
    )
    pipe = ScheduleGPipe(stage, n_microbatches=m, loss_fn=next_token_loss)  # (1)!
    if rank == 0:
        return lambda ids: pipe.step(ids)  # (2)!
    return lambda ids: pipe.step(target=ids)  # (3)!
    # --8<-- [end:pipeline]


def pipeline_parallel(model, ids, ref, ref_grads, args, rank, record) -> dict:
    """2 stages of blocks, micro-batches; logits, loss and grads compared with one process's."""
    split = model.config.n_layer // 2
    stage_module = (FirstStage if rank == 0 else LastStage)(model, split)
    m = args.batch_size // args.micro_batch
    logits = make_pipe(stage_module, m, rank)(ids)

    # --8<-- [start:tied]
    tied = stage_module.wte.weight if rank == 0 else stage_module.lm_head.weight
    dist.all_reduce(tied.grad)  # (1)!
    # --8<-- [end:tied]
    pairs = [(tied.grad, ref_grads["transformer.wte.weight"])]
    pairs += [
        (p.grad, ref_grads[n])
        for n, p in model.named_parameters()
        if p.grad is not None and p is not model.transformer.wte.weight
    ]
    if rank == 1:
        with torch.no_grad():
            want = ref(ids).logits
        pairs.append((logits, want))
    record(
        "PP",
        "GPT-2 blocks held",
        f"{len(stage_module.h)} blocks",
        f"{model.config.n_layer} blocks",
    )
    record("PP", "wte.weight / lm_head.weight (tied copy)", tied, ref.transformer.wte.weight)
    record("PP", f"micro-batch ({m} per step)", ids.chunk(m)[0], ids)
    record(
        "PP",
        "activation sent rank 0 -> rank 1",
        torch.empty(*ids.chunk(m)[0].shape, model.config.n_embd),
        torch.empty(*ids.shape, model.config.n_embd),
    )
    return {"pp_max_abs_diff": max_diff(pairs), "pp_check_microbatches": m}


# --8<-- [start:bubble]
def stage_times(model, args, rank) -> tuple[float, float]:
    """Seconds this rank's stage needs for one micro-batch's forward and backward, alone.

    Timed on the real stage modules, the fastest of `repeats` tries (other processes on a shared
    CPU only ever add time). Both ranks time their stage at the same moment, as in the pipelined
    step.
    """
    stage = (FirstStage if rank == 0 else LastStage)(model, model.config.n_layer // 2)
    ids = torch.randint(
        model.config.vocab_size,
        (args.micro_batch, args.seq_len),
        generator=torch.Generator().manual_seed(args.seed),
    )
    fwd, bwd = [], []
    for _ in range(args.repeats + 1):  # the first try warms up: not counted
        dist.barrier()
        x = ids if rank == 0 else torch.randn(*ids.shape, model.config.n_embd, requires_grad=True)
        t0 = time.perf_counter()
        out = stage(x)
        loss = out.sum() if rank == 0 else next_token_loss(out, ids)
        t1 = time.perf_counter()
        loss.backward()
        t2 = time.perf_counter()
        fwd.append(t1 - t0)
        bwd.append(t2 - t1)
    return min(fwd[1:]), min(bwd[1:])


def bubble_sweep(model, args, rank) -> dict:
    """The bubble for each m: GPipe's schedule played with measured stage times, and theory's."""
    mine = torch.tensor(stage_times(model, args, rank), dtype=torch.float64)
    every = [torch.zeros_like(mine) for _ in range(WORLD)]
    dist.all_gather(every, mine)
    forward, backward = [t[0].item() for t in every], [t[1].item() for t in every]
    rows = []
    for m in comma_list("microbatches", args.microbatches, int):
        sim = gpipe_timeline(forward, backward, m)
        rows.append(
            dict(
                microbatches=m,
                bubble_theory=bubble_theory(WORLD, m),
                bubble_measured=sim["bubble"],
                step_ms=1e3 * sim["step"],
            )
        )
    return {"rows": rows, "forward_seconds": forward, "backward_seconds": backward}


# --8<-- [end:bubble]


# --8<-- [start:fsdp]
def sharded_data_parallel(model, ids, ref_grads, mesh, rank, record) -> dict:
    """FSDP2 / ZeRO-3: each rank stores 1/N of every parameter, gathers a block's weights just
    before using them, and keeps only its shard of the gradients (reduce-scatter)."""
    from torch.distributed.fsdp import fully_shard

    full = {n: p.detach().clone() for n, p in model.named_parameters()}
    for block in model.transformer.h:
        fully_shard(block, mesh=mesh)  # (1)!
    fully_shard(model, mesh=mesh)  # the rest: embeddings (tied with the LM head), final norm
    held = sum(p.to_local().numel() * p.element_size() for p in model.parameters())
    # numel() of a DTensor: global
    total = sum(p.numel() * p.element_size() for p in model.parameters())
    local = ids.chunk(WORLD)[rank]
    model(local, labels=local).loss.backward()  # (2)!
    for name in (
        "transformer.wte.weight",
        "transformer.h.0.attn.c_attn.weight",
        "transformer.h.0.mlp.c_fc.weight",
    ):
        record("FSDP", name, model.get_parameter(name), full[name])
    record("FSDP", "input_ids (batch)", local, ids)
    pairs = [(p.grad.full_tensor(), ref_grads[n]) for n, p in model.named_parameters()]  # (3)!
    return {"fsdp_param_bytes_rank_fraction": held / total, "fsdp_max_abs_diff": max_diff(pairs)}


# --8<-- [end:fsdp]


def worker(rank: int, args, out: Path) -> None:
    torch.set_num_threads(1)  # one core per rank; more threads only fight over the same cores
    # --8<-- [start:group]
    dist.init_process_group(
        "gloo",
        init_method=f"file://{out / 'rendezvous'}",
        rank=rank,
        world_size=WORLD,
        timeout=timedelta(seconds=args.timeout),  # (1)!
    )
    from torch.distributed.device_mesh import init_device_mesh

    mesh = init_device_mesh("cpu", (WORLD,))  # the ranks, for the DTensor-based APIs (TP, FSDP2)
    # --8<-- [end:group]
    try:
        config = config_for(args.model)
        gen = torch.Generator().manual_seed(args.seed)
        ref = build(config, args.seed)
        ids = torch.randint(ref.config.vocab_size, (args.batch_size, args.seq_len), generator=gen)
        ref(ids, labels=ids).loss.backward()  # one process, the full batch: the reference
        ref_grads = {n: p.grad for n, p in ref.named_parameters()}
        x = torch.randn(args.batch_size, args.seq_len, ref.config.n_embd, generator=gen)
        record = Record(rank)
        metrics = {}
        metrics |= data_parallel(build(config, args.seed), ids, ref_grads, rank, record)
        metrics |= tensor_parallel(build(config, args.seed), x, mesh, record)
        metrics |= pipeline_parallel(
            build(config, args.seed), ids, ref, ref_grads, args, rank, record
        )
        metrics |= sharded_data_parallel(
            build(config, args.seed), ids, ref_grads, mesh, rank, record
        )
        bubble = bubble_sweep(build(config, args.seed), args, rank)
        rows = [None] * WORLD
        dist.all_gather_object(rows, record.rows)
        if rank == 0:
            (out / "raw.json").write_text(
                json.dumps(dict(metrics=metrics, shapes=sum(rows, []), bubble=bubble))
            )
    finally:
        dist.destroy_process_group()
    # --8<-- [start:exit]
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)  # (1)!
    # --8<-- [end:exit]


def bubble_plot(rows: list[dict], path: Path) -> None:
    fig, ax = plots.plt.subplots(figsize=(6.4, 3.6))
    m = [r["microbatches"] for r in rows]
    ax.plot(m, [r["bubble_theory"] for r in rows], "o--", color="C1", label="theory (p-1)/(m+p-1)")
    ax.plot(
        m,
        [r["bubble_measured"] for r in rows],
        "o-",
        color="C0",
        label="GPipe timeline, measured stage times",
    )
    ax.set_xscale("log", base=2)
    ax.set_xticks(m, [str(x) for x in m])
    ax.set_xlabel("micro-batches per step (m)")
    ax.set_ylabel("pipeline bubble (idle fraction)")
    ax.set_ylim(0, max(0.6, *[r["bubble_measured"] for r in rows]) + 0.05)
    ax.set_title("2-stage pipeline: the bubble shrinks as m grows")
    ax.legend()
    plots.save(fig, path)


def write_report(args, m: dict, bubble: list[dict]) -> None:
    """`results.md`, `shapes.md`, `bubble.md` and `bubble.png`."""
    (args.output_dir / "shapes.md").write_text(shapes_table(m["shapes"]))
    (args.output_dir / "bubble.md").write_text(
        report.records(
            bubble,
            [
                ("microbatches", "micro-batches m", ""),
                ("bubble_theory", "theory (p-1)/(m+p-1)", ".3f"),
                ("bubble_measured", "GPipe timeline, measured stage times", ".3f"),
                ("step_ms", "step time (ms)", ".1f"),
            ],
        )
        + "\n"
        + report.records(
            m["pp_stage_seconds"],
            [
                ("stage", "stage (rank)", ""),
                ("forward_ms", "forward, one micro-batch (ms)", ".2f"),
                ("backward_ms", "backward, one micro-batch (ms)", ".2f"),
            ],
        )
    )
    bubble_plot(bubble, args.output_dir / "bubble.png")
    (args.output_dir / "results.md").write_text(
        report.table(
            [
                ("model", args.model, ""),
                ("processes (gloo, CPU)", WORLD, ""),
                ("DDP: max abs grad difference vs one process", m["ddp_max_abs_diff"], ".1e"),
                (
                    "TP: max abs output difference vs the unsplit block",
                    m["tp_max_abs_diff"],
                    ".1e",
                ),
                ("TP without the head reorder (the trap)", m["tp_no_reorder_max_abs_diff"], ".2f"),
                (
                    "PP: max abs logit/grad difference "
                    f"({m['pp_check_microbatches']} micro-batches)",
                    m["pp_max_abs_diff"],
                    ".1e",
                ),
                ("FSDP: max abs grad difference vs one process", m["fsdp_max_abs_diff"], ".1e"),
                (
                    "FSDP: share of parameter bytes on each rank",
                    m["fsdp_param_bytes_rank_fraction"],
                    ".3f",
                ),
                (f"wall time (s, {measured_on('fp32', cpu=True)})", m["wall_seconds"], ".0f"),
            ]
        )
    )


def main(argv=None):
    args = parse(Args, PRESETS, argv)
    ms = comma_list("microbatches", args.microbatches, int)
    if min(ms) < 1:
        raise LabError(f"--microbatches must all be >= 1, got {args.microbatches!r}")
    if args.batch_size % args.micro_batch or args.batch_size % WORLD:
        raise LabError(
            f"--batch_size {args.batch_size} must split into {WORLD} ranks and into micro-batches "
            f"of --micro_batch {args.micro_batch}"
        )
    if args.model not in ("smoke", "lesson"):
        try:  # fetch once here, so both workers read the local cache
            build(args.model, args.seed)
        except (OSError, ValueError) as e:
            raise LabError(
                f"cannot load model {args.model!r} (offline? run with --preset smoke or lesson): "
                f"{str(e).splitlines()[0]}"
            ) from None
    start = time.perf_counter()

    # --8<-- [start:spawn]
    with tempfile.TemporaryDirectory() as tmp:
        mp.spawn(worker, args=(args, Path(tmp)), nprocs=WORLD, join=True)  # (1)!
        raw = json.loads((Path(tmp) / "raw.json").read_text())
    # --8<-- [end:spawn]

    bubble = raw["bubble"]["rows"]
    metrics = raw["metrics"] | {
        "world_size": WORLD,
        "pp_bubble_theory": [
            dict(microbatches=r["microbatches"], bubble=r["bubble_theory"]) for r in bubble
        ],
        "pp_bubble_measured": [
            dict(microbatches=r["microbatches"], bubble=r["bubble_measured"]) for r in bubble
        ],
        "pp_stage_seconds": [
            dict(stage=s, forward_ms=1e3 * f, backward_ms=1e3 * b)
            for s, (f, b) in enumerate(
                zip(raw["bubble"]["forward_seconds"], raw["bubble"]["backward_seconds"])
            )
        ],
        "shapes": raw["shapes"],
        "wall_seconds": time.perf_counter() - start,
    }
    write_metrics(args.output_dir, metrics)
    write_report(args, metrics, bubble)
    return metrics


if __name__ == "__main__":
    run(main)
