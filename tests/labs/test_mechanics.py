"""Mechanics lab: every knob shows its lesson's direction, and the run is reproducible."""

import json

import pytest

from conftest import ROOT, comparable, error_line, run_lab

NOISY = ("checkpointing_time_ratio",)  # a ratio of two timings: it varies with machine load


def test_warmup_prevents_the_spike(lab_metrics):
    m = lab_metrics("mechanics")
    assert m["loss_spike_no_warmup"] > 2 * m["loss_spike_warmup"]
    assert m["loss_spike_no_warmup"] > 1.0  # nats: a real spike, not noise


def test_fp16_overflows_and_underflows_where_bf16_does_not(lab_metrics):
    m = lab_metrics("mechanics")
    assert m["fp16_overflow"] == 1 and m["bf16_overflow"] == 0 and m["fp32_overflow"] == 0
    assert m["fp16_underflow_fraction"] > 0.3
    assert m["bf16_underflow_fraction"] == 0
    assert m["fp16_scaled_underflow_fraction"] == 0  # GradScaler's loss scaling fixes it
    assert m["fp16_scaled_weight_grad_rel_error"] < 0.1 * m["fp16_weight_grad_rel_error"]


def test_formats_table_is_torch_finfo(lab_metrics):
    rows = {r["format"]: r for r in lab_metrics("mechanics")["formats"]}
    assert rows["bf16"]["exponent_bits"] == rows["fp32"]["exponent_bits"] == 8
    assert rows["fp16"]["mantissa_bits"] == 10 and rows["bf16"]["mantissa_bits"] == 7
    assert rows["fp16"]["max"] == 65504


def test_accumulation_equals_one_big_batch(lab_metrics):
    m = lab_metrics("mechanics")
    assert m["accumulation_max_abs_grad_diff"] <= 1e-6 * max(1.0, m["accumulation_grad_max_abs"])
    # mean of micro-batch means weights short sequences up
    assert m["accumulation_naive_rel_error"] > 0.01


def test_checkpointing_trades_time_for_memory(lab_metrics):
    m = lab_metrics("mechanics")
    assert m["checkpointing_activation_ratio"] < 0.5
    assert m["checkpointing_forward_ratio"] == 2  # every block runs forward twice: the recompute
    assert m["checkpointing_time_ratio"] > 1.0  # direction only: timings are noisy on a shared CPU


def test_resume_is_exact(lab_metrics):
    m = lab_metrics("mechanics")
    assert m["resume_max_abs_diff"] == 0
    assert m["resume_without_rng_max_abs_diff"] > 0  # forget the RNG and dropout draws other masks


def test_same_seed_same_metrics(lab_metrics, tmp_path):
    run_lab("mechanics", "--output_dir", str(tmp_path), "--preset", "smoke")
    again = json.loads((tmp_path / "metrics.json").read_text())
    assert comparable(again, NOISY) == comparable(lab_metrics("mechanics"), NOISY)


def test_committed_lesson_results_show_the_lessons():
    m = json.loads((ROOT / "snippets" / "results" / "mechanics.json").read_text())
    assert m["loss_spike_no_warmup"] > 2 * m["loss_spike_warmup"]
    assert (
        m["fp16_overflow"] == 1
        and m["bf16_underflow_fraction"] == 0 < m["fp16_underflow_fraction"]
    )
    assert m["accumulation_max_abs_grad_diff"] < 1e-5 < m["accumulation_naive_rel_error"]
    assert m["checkpointing_activation_ratio"] < 1 < m["checkpointing_time_ratio"]
    assert m["resume_max_abs_diff"] == 0


@pytest.mark.parametrize(
    "args, message",
    [
        (["--preset", "smoke", "--model", "huge"], "--model 'huge'"),
        (["--preset", "smoke", "--resume_at", "100"], "--resume_at 100 must be below --steps"),
        (["--preset", "smoke", "--peak_lr", "0"], "--peak_lr must be a positive number"),
    ],
    ids=["unknown-model", "resume-after-end", "zero-lr"],
)
def test_bad_input_is_one_line_exit_2(args, message, tmp_path, request):
    """The first case in a fresh process, as a reader meets it; the others in this process
    (`run_lab(here=True)`), about 5 CPU s cheaper each."""
    here = request.node.callspec.id != "unknown-model"
    proc = run_lab("mechanics", "--output_dir", str(tmp_path), *args, check=False, here=here)
    line = error_line(proc)
    assert line.startswith("mechanics: error:"), proc.stderr[-2000:]
    assert message in line
