"""Memory lab: the calculator equals the real bytes for every option, predicts a step's peak, and
bad input is one line. The calculator's own CLI (`python -m lifecycle.memory estimate`) is tested
in tests/test_memory.py."""

import json

import pytest

from conftest import ROOT, comparable, error_line, load_lab, run_lab
from lifecycle.cli import LabError

lab = load_lab("memory")


def test_calculator_matches_real_tensors(lab_metrics):
    m = lab_metrics("memory")
    assert m["sizes"] >= 3
    assert m["static_bytes_rel_error"] == 0  # weights + grads + AdamW state, byte for byte
    assert all(r["static_bytes_real"] == r["static_bytes_calc"] for r in m["static"])


def test_activation_formula_matches_autograd_for_every_option(lab_metrics):
    m = lab_metrics("memory")
    rows = m["activations"]
    assert {(r["attn"], r["dtype"], r["dropout"], r["checkpointing"]) for r in rows} >= {
        (a, d, p, c)
        for a in ("sdpa", "eager", "math")
        for d in ("fp32", "bf16")
        for p in (0.0, 0.1)
        for c in (0, 1)
    }
    assert len({r["size"] for r in rows}) >= 3
    assert m["activation_bytes_rel_error_max"] == 0  # exact on the CPU, every row
    # Korthikanti's formula, made for fused 16-bit kernels, undercounts HF's unfused fp32 blocks
    assert (
        -0.5
        < m["korthikanti_blocks_rel_error_min"]
        <= m["korthikanti_blocks_rel_error_max"]
        < -0.1
    )
    assert m["checkpointing_activation_ratio_max"] < 0.5


def test_step_peak_matches_the_measured_peak(lab_metrics):
    m = lab_metrics("memory")
    assert {(r["dtype"], r["checkpointing"], r["first_step"]) for r in m["peaks"]} == {
        (d, c, f) for d in ("fp32", "bf16") for c in (0, 1) for f in (0, 1)
    }
    assert m["peak_rel_error_max"] <= 0.06
    assert all(
        abs(r["peak_rel_error"]) <= 0.01 for r in m["peaks"] if r["phase"] == "backward start"
    )
    # the state held between steps (m and v) shows: a later step peaks above the first
    later = {
        (r["dtype"], r["checkpointing"]): r["measured_peak_bytes"]
        for r in m["peaks"]
        if not r["first_step"]
    }
    first = {
        (r["dtype"], r["checkpointing"]): r["measured_peak_bytes"]
        for r in m["peaks"]
        if r["first_step"]
    }
    assert all(later[k] > first[k] for k in later)


def test_optimizer_and_activations_dominate(lab_metrics):
    m = lab_metrics("memory")
    assert m["gpt2_optimizer_over_weights"] == 6  # 12 B of AdamW state per 2 B of bf16 weights
    gpt2 = m["family"][0]
    assert gpt2["activations_gb"] > gpt2["weights_gb"]
    assert all(r["training_over_inference"] > 5 for r in m["family"])


def test_zero_table_is_the_zero_papers_example(lab_metrics):
    """Rajbhandari et al. (2020), Figure 1: 7.5B parameters on 64 GPUs."""
    gb = [round(r["gb_per_gpu"], 1) for r in lab_metrics("memory")["zero"]]
    assert gb == [120.0, 31.4, 16.6, 1.9]


def test_lesson_results_reproduce(lab_metrics):
    """The committed tables come from this code: the lesson preset reruns to the same numbers."""
    committed = json.loads((ROOT / "snippets" / "results" / "memory.json").read_text())
    fresh = lab_metrics("memory", "lesson")
    assert comparable(fresh) == comparable(committed)
    assert committed["sizes"] >= 3 and committed["static_bytes_rel_error"] == 0
    assert committed["activation_bytes_rel_error_max"] == 0


@pytest.mark.parametrize(
    "args, message",
    [(["--output_dir", "{tmp}", "--preset", "smoke", "--sizes", "2x64x3"], "divisible")],
    ids=["sizes-heads"],
)
def test_bad_input_is_one_line_exit_2(args, message, tmp_path):
    proc = run_lab("memory", *[a.replace("{tmp}", str(tmp_path)) for a in args], check=False)
    line = error_line(proc)
    assert line.startswith("memory: error:"), proc.stderr[-2000:]
    assert message in line


@pytest.mark.parametrize(
    "args, message",
    [
        (["--output_dir", "{tmp}", "--preset", "smoke", "--sizes", "2x64"], "--sizes"),
        (["--output_dir", "{tmp}", "--preset", "smoke", "--grid_size", "2x64x3"], "divisible"),
        (["--output_dir", "{tmp}", "--preset", "smoke", "--batch_size", "0"], "--batch_size"),
    ],
    ids=["sizes-short", "grid-heads", "batch-zero"],
)
def test_bad_input_raises_lab_error(args, message, tmp_path):
    """The same errors in-process (cheaper than subprocesses); `run` makes LabError one line."""
    with pytest.raises(LabError, match=message):
        lab.main([a.replace("{tmp}", str(tmp_path)) for a in args])
