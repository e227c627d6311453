"""Parallelism: every split computes what one process computes, and splits what it claims to.

The lab's smoke run (one 2-process gloo group) is shared through the `lab_metrics` fixture.
"""

import json

import pytest
import torch
import yaml
from transformers import GPT2Config
from transformers.models.gpt2.modeling_gpt2 import GPT2Block

from conftest import ROOT, comparable, error_line, run_lab
from lifecycle.parallel import bubble_theory, conv1d_to_linear, gpipe_timeline, qkv_by_rank

TOL = 1e-5
CONFIGS = ROOT / "code" / "configs"


def shapes(m: dict, kind: str, tensor: str) -> dict:
    """{"full": ..., 0: rank 0's shape, 1: rank 1's shape} for one row of the shapes record."""
    rows = [r for r in m["shapes"] if r["parallelism"] == kind and r["tensor"] == tensor]
    assert len(rows) == 2, f"{kind} {tensor}: {rows}"
    return {"full": rows[0]["full"]} | {r["rank"]: r["shape"] for r in rows}


def dims(text: str) -> list[int]:
    return [int(n) for n in text.split("×")]


def test_ddp_equals_one_process_on_the_full_batch(lab_metrics):
    m = lab_metrics("parallelism")
    assert m["world_size"] == 2
    assert m["ddp_max_abs_diff"] <= TOL
    batch = shapes(m, "DDP", "input_ids (batch)")
    # half the batch each
    assert dims(batch[0])[0] == dims(batch[1])[0] == dims(batch["full"])[0] // 2
    weight = shapes(m, "DDP", "wte.weight (whole copy)")
    assert weight[0] == weight[1] == weight["full"]  # the whole model on every rank


def test_tensor_parallel_equals_the_unsplit_block(lab_metrics):
    m = lab_metrics("parallelism")
    assert m["tp_max_abs_diff"] <= TOL
    # The trap: without grouping q, k, v rows by heads it runs, with no error, and is wrong.
    assert m["tp_no_reorder_max_abs_diff"] > 1000 * max(m["tp_max_abs_diff"], 1e-7)
    for name, split_dim in [
        ("attn.c_attn.weight", 0),
        ("mlp.c_fc.weight", 0),
        ("attn.c_proj.weight", 1),
        ("mlp.c_proj.weight", 1),
    ]:
        s = shapes(m, "TP", name)
        full, local = dims(s["full"]), dims(s[0])
        assert (
            local[split_dim] * 2 == full[split_dim] and local[1 - split_dim] == full[1 - split_dim]
        ), name
    out = shapes(m, "TP", "block output (all-reduced)")
    assert out[0] == out[1] == out["full"]


def test_pipeline_equals_one_process(lab_metrics):
    m = lab_metrics("parallelism")
    assert m["pp_max_abs_diff"] <= TOL
    assert m["pp_check_microbatches"] >= 2
    blocks = shapes(m, "PP", "GPT-2 blocks held")
    assert blocks[0] == blocks[1] == "1 blocks" and blocks["full"] == "2 blocks"


def check_bubble(m: dict) -> None:
    """The measured bubble falls as m grows, never below the theory, and no further above it than
    the measured gap between the two stages' times allows."""
    theory = [r["bubble"] for r in m["pp_bubble_theory"]]
    measured = [r["bubble"] for r in m["pp_bubble_measured"]]
    ms = [r["microbatches"] for r in m["pp_bubble_theory"]]
    assert ms == sorted(ms) and len(ms) >= 3 and ms[0] == 1
    # (p-1)/(m+p-1), p = 2; metrics keep 6 decimals
    assert theory == pytest.approx([1 / (k + 1) for k in ms], abs=1e-6)
    # one micro-batch: each stage idles while the other works
    assert measured[0] == pytest.approx(0.5)
    assert all(a > b for a, b in zip(measured, measured[1:])), measured  # shrinks as m grows
    fwd = [s["forward_ms"] for s in m["pp_stage_seconds"]]
    bwd = [s["backward_ms"] for s in m["pp_stage_seconds"]]
    mean_work = (sum(fwd) + sum(bwd)) / 2
    for k, x, t in zip(ms, measured, theory):
        # The step takes at most (m + p - 1) slots of the slowest forward + slowest backward.
        ceiling = 1 - k * mean_work / ((k + 1) * (max(fwd) + max(bwd)))
        assert t - 1e-6 <= x <= ceiling + 1e-3, (k, x, t, ceiling)


def test_bubble_follows_the_theory(lab_metrics):
    check_bubble(lab_metrics("parallelism"))


def test_fsdp_holds_half_the_parameters(lab_metrics):
    m = lab_metrics("parallelism")
    assert 0.4 <= m["fsdp_param_bytes_rank_fraction"] <= 0.6
    assert m["fsdp_max_abs_diff"] <= TOL
    wte = shapes(m, "FSDP", "transformer.wte.weight")
    assert dims(wte[0])[0] * 2 == dims(wte["full"])[0]  # dim 0 split in two


def test_gpipe_timeline_matches_the_formula():
    """The hand-written schedule simulator against (p-1)/(m+p-1), for equal stages."""
    for p in (2, 3, 4):
        for k in (1, 2, 3, 8, 32):
            sim = gpipe_timeline([1.0] * p, [2.0] * p, k)
            assert sim["bubble"] == pytest.approx(bubble_theory(p, k))
            assert sim["step"] == pytest.approx((k + p - 1) * 3.0)
    # A slow stage sets the pace: more idle time than the formula, up to a ceiling.
    for k in (1, 2, 4, 16):
        sim = gpipe_timeline([1.0, 2.0], [2.0, 4.0], k)["bubble"]
        ceiling = 1 - k * 4.5 / ((k + 1) * (2.0 + 4.0))
        assert bubble_theory(2, k) - 1e-12 <= sim <= ceiling + 1e-12
    assert gpipe_timeline([1.0, 2.0], [2.0, 4.0], 4)["bubble"] > bubble_theory(2, 4)


def test_conv1d_to_linear_and_head_reorder():
    config = GPT2Config(n_embd=16, n_head=4, n_layer=1, vocab_size=32, attn_implementation="sdpa")
    torch.manual_seed(0)
    block = GPT2Block(config).eval()
    x = torch.randn(2, 5, 16)
    want = block(x)
    conv1d_to_linear(block)
    assert isinstance(block.attn.c_attn, torch.nn.Linear) and block.attn.c_attn.weight.shape == (
        48,
        16,
    )
    assert torch.allclose(block(x), want, atol=1e-6)
    before = block.attn.c_attn.weight.detach().clone()
    qkv_by_rank(block.attn.c_attn, n_head=4, world=2)
    rank0 = block.attn.c_attn.weight[:24]  # what ColwiseParallel gives rank 0
    q, k, v = before[:16], before[16:32], before[32:]
    assert torch.equal(rank0, torch.cat([q[:8], k[:8], v[:8]]))  # heads 0-1 of q, k and v


@pytest.mark.parametrize(
    "name, kind, extra",
    [
        ("ddp", "MULTI_GPU", {}),
        ("fsdp", "FSDP", {"fsdp_version": 2}),
        ("zero2", "DEEPSPEED", {"zero_stage": 2}),
        ("zero3", "DEEPSPEED", {"zero_stage": 3}),
    ],
)
def test_accelerate_configs_parse(name, kind, extra):
    """Each config loads with accelerate's own loader; every key is one `accelerate launch` knows.

    DeepSpeed is not needed to check this; it is needed only to run the ZeRO configs."""
    from accelerate.commands.config.config_args import ClusterConfig
    from accelerate.commands.launch import launch_command_parser

    path = CONFIGS / f"{name}.yaml"
    raw = yaml.safe_load(path.read_text())
    config = ClusterConfig.from_yaml_file(str(path))  # raises on unknown top-level keys
    assert config.distributed_type == kind
    assert (
        raw["num_processes"] >= 2 and raw["mixed_precision"] == "bf16" and raw["use_cpu"] is False
    )
    known = {a.dest for a in launch_command_parser()._actions}
    section = raw.get("fsdp_config") or raw.get("deepspeed_config") or {}
    assert set(section) <= known, set(section) - known
    for key, value in extra.items():
        assert section[key] == value
    if kind == "FSDP":
        assert section["fsdp_transformer_layer_cls_to_wrap"] == "GPT2Block"


# pp_bubble_measured comes from timed stages: it moves a little from run to run (and a lot on a
# busy CPU), like the *_seconds keys. Its direction is asserted above instead.
NOISY = ("pp_bubble_measured",)


def test_same_seed_same_metrics(lab_metrics, tmp_path):
    run_lab("parallelism", "--output_dir", str(tmp_path), "--preset", "smoke")
    again = json.loads((tmp_path / "metrics.json").read_text())
    assert comparable(again, NOISY) == comparable(lab_metrics("parallelism"), NOISY)


def test_committed_lesson_results_show_the_lesson():
    """The published lesson run (make results) holds the same equalities; rerunning it is left to
    `make results`, to keep `make test` short."""
    m = json.loads((ROOT / "snippets" / "results" / "parallelism.json").read_text())
    for key in ("ddp_max_abs_diff", "tp_max_abs_diff", "pp_max_abs_diff", "fsdp_max_abs_diff"):
        assert m[key] <= TOL, key
    assert m["fsdp_param_bytes_rank_fraction"] <= 0.6
    check_bubble(m)
    for name in ("parallelism-shapes.md", "parallelism-bubble.md"):
        assert (ROOT / "snippets" / "results" / name).exists()
    assert (ROOT / "docs" / "assets" / "labs" / "parallelism" / "bubble.png").exists()


@pytest.mark.parametrize(
    "args, message",
    [
        (["--microbatches", "2,x"], "--microbatches must be comma-separated integers"),
        (["--batch_size", "3"], "--batch_size 3 must split"),
    ],
    ids=["not-integers", "odd-batch"],
)
def test_bad_input_is_one_line_exit_2(args, message, tmp_path, request):
    """The first case in a fresh process, as a reader meets it; the other in this process
    (`run_lab(here=True)`), about 5 CPU s cheaper."""
    here = request.node.callspec.id != "not-integers"
    proc = run_lab(
        "parallelism",
        *("--output_dir", str(tmp_path), "--preset", "smoke", *args),
        check=False,
        here=here,
    )
    line = error_line(proc)
    assert line.startswith("parallelism: error:"), proc.stderr[-2000:]
    assert message in line
