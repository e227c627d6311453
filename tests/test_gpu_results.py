"""The GPU figures on the memory page: the calculator's CUDA predictions against H200 measurements.

They were measured in a GPU session (`code/labs/memory.py --preset gpu`, `code/gpu/throughput.py`);
CI has no GPU, so this test checks what it can: every measured figure the repo holds against the
calculator's prediction for the same run, and the published table rendered from them
(`python -m lifecycle.tables`).
"""

import json

import pytest

from conftest import ROOT
from lifecycle import tables
from lifecycle.memory import Step, activation_bytes, gpt2_params, step_peak

RESULTS = ROOT / "snippets" / "results"
# fp32, SDPA, GPT-2-124M's shape, batch 4 × 1,024
RUN = json.loads((RESULTS / "memory-gpu.json").read_text())


@pytest.mark.parametrize(
    "row",
    RUN["activations"],
    ids=lambda r: f"{r['attn']}-{r['dtype']}-dropout{r['dropout']}-ckpt{r['checkpointing']}",
)
def test_cuda_saved_bytes_are_predicted_to_the_byte(row):
    """The CUDA rules (fused attention with dropout, 1-byte dropout masks, the memory-efficient
    kernel's RNG scalars, autocast's casts) give what the H200 saved, for every attention path,
    dtype, dropout and checkpointing setting."""
    step = Step("cuda", row["attn"], row["dtype"], row["dropout"], bool(row["checkpointing"]))
    assert activation_bytes(12, 768, 12, 50257, 4, 1024, step) == row["measured_bytes"]
    if row["attn"] == "sdpa" and row["dropout"] and not row["checkpointing"]:
        # the CPU falls back to the math path and keeps fp32 masks
        cpu = Step("cpu", "sdpa", row["dtype"], row["dropout"], False)
        assert activation_bytes(12, 768, 12, 50257, 4, 1024, cpu) > 2 * row["measured_bytes"]


def test_every_setting_was_measured():
    settings = {
        (r["attn"], r["dtype"], r["dropout"], r["checkpointing"]) for r in RUN["activations"]
    }
    assert len(settings) == 3 * 2 * 2 * 2


@pytest.mark.parametrize(
    "row",
    RUN["peaks"],
    ids=lambda r: f"{r['dtype']}-ckpt{r['checkpointing']}-first{r['first_step']}",
)
def test_step_peaks_are_predicted_within_1_percent(row):
    """Every peak on record (fp32 and bf16 autocast, checkpointing off and on, the first step and a
    later one, SDPA, dropout 0.1), predicted from the calculator alone, within 1%; a later step
    holds AdamW's m and v (8 B per parameter) more than the first."""
    step = Step(dtype=row["dtype"], checkpointing=bool(row["checkpointing"]))
    predicted = step_peak(12, 768, 12, 50257, 4, 1024, step, first_step=bool(row["first_step"]))
    assert predicted["peak"] == row["predicted_peak_bytes"]
    assert predicted["peak"] == pytest.approx(row["measured_peak_bytes"], rel=0.01)
    assert RUN["static_bytes_rel_error"] == 0
    assert len(RUN["peaks"]) == 8


def test_a_later_step_adds_the_adamw_moments():
    peaks = {(r["dtype"], r["checkpointing"], r["first_step"]): r for r in RUN["peaks"]}
    moments = 8 * gpt2_params(12, 768)
    for (dtype, ckpt, first), row in peaks.items():
        if first:
            later = peaks[(dtype, ckpt, 0)]["measured_peak_bytes"]
            assert later - row["measured_peak_bytes"] == pytest.approx(moments, rel=0.05)


def test_bf16_peak_of_the_throughput_run():
    """bf16 autocast, batch 16 × 1,024, vocab 50,304, fused AdamW, later steps: within 1%."""
    measured = (
        json.loads((RESULTS / "gpu-throughput.json").read_text())["eager"]["peak_mem_gib"] * 2**30
    )
    predicted = step_peak(12, 768, 12, 50304, 16, 1024, Step(), optimizer="fused")
    assert predicted["peak"] == pytest.approx(measured, rel=0.01)


def test_gpu_tables_are_generated_from_the_measurements():
    for name, make in tables.RESULT_TABLES.items():
        assert (RESULTS / f"{name}.md").read_text() == make(), (
            f"{name}.md is stale: run `python -m lifecycle.tables`"
        )
    assert tables.gpu_table().count("0 bytes") == 8
    assert "awaits a GPU run" not in tables.gpu_table() + tables.gpu_peak_table()
