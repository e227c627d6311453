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
    "row", RUN["activations"], ids=lambda r: f"dropout{r['dropout']}-ckpt{r['checkpointing']}"
)
def test_cuda_saved_bytes_are_predicted_to_the_byte(row):
    """The CUDA rules (fused attention with dropout, 1-byte dropout masks, the memory-efficient
    kernel's RNG scalars) give what the H200 saved, for every measured row."""
    step = Step(
        "cuda", "sdpa", row.get("dtype", "fp32"), row["dropout"], bool(row["checkpointing"])
    )
    assert activation_bytes(12, 768, 12, 50257, 4, 1024, step) == row["measured_bytes"]
    cpu = activation_bytes(
        12,
        768,
        12,
        50257,
        4,
        1024,
        Step("cpu", "sdpa", "fp32", row["dropout"], bool(row["checkpointing"])),
    )
    if row["dropout"] and not row["checkpointing"]:
        # the CPU falls back to the math path and keeps fp32 masks
        assert cpu > 2 * row["measured_bytes"]


def test_fp32_peak_of_the_first_step():
    """The one peak on record: fp32, dropout 0.1, the first step (no AdamW m, v yet), within 2%."""
    predicted = step_peak(12, 768, 12, 50257, 4, 1024, Step(dtype="fp32"), first_step=True)
    assert predicted["phase"] == "backward start"
    assert predicted["peak"] == pytest.approx(RUN["gpu_peak_bytes"], rel=0.02)
    assert RUN["static_bytes_rel_error"] == 0
    assert RUN["gpu_weights_bytes_allocated"] >= 4 * gpt2_params(12, 768)


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
    assert (
        tables.gpu_table().count("0 bytes") == 4
        and tables.gpu_table().count("awaits a GPU run") == 4
    )
    assert tables.gpu_peak_table().count("awaits a GPU run") == 7
