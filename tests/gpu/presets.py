"""What every lab's `--preset gpu` run must show, and how the labs split over the test files.

A run passes when it exits 0 and its `metrics.json` has the keys of the lab's lesson run (the
published `snippets/results/<lab>.json`), apart from the keys declared below with the reason they
differ.

The labs are split over two test files so that `make test`'s two workers (`--dist loadfile`) can
share them: labs in lifecycle order (fewest earlier stages first), every other one to each file. A
lab that needs a stage the other file builds waits for it on a file lock rather than building it
twice.
"""

import json

from conftest import ROOT
from gpu.conftest import check
from lifecycle.stages import depth

RESULTS = ROOT / "snippets" / "results"

# Keys only the lesson preset has, and why. The test also checks they really are missing at
# --preset gpu. (No lab has keys of its own on a GPU: the memory lab measures the same peaks on a
# CPU and on CUDA.)
LESSON_ONLY = {
    "sft": (
        {
            "task_accuracy_clean_small",
            "task_accuracy_noisy_large",
            "format_rate_noisy_large",
            "noisy_rows",
        },
        "the quality-versus-quantity run trains on the world's deliberately noisy rows; "
        "a Hub dataset has none",
    ),
    "curation": (
        {
            "near_dup_precision",
            "near_dup_recall",
            "spam_filter_precision",
            "spam_filter_recall",
            "leak_docs_reaching_decontamination",
            "leak_docs_found",
            "val_perplexity_annealed",
            "val_fact_perplexity_raw",
            "val_fact_perplexity_curated",
            "val_fact_perplexity_annealed",
            "eval_score_leaked_on_leaked_items",
            "eval_score_leaked_on_fresh_items",
            "eval_score_clean_on_leaked_items",
            "eval_score_clean_on_fresh_items",
            "pipeline_cpu_seconds",
            "throughput_docs",
        },
        "scoring each stage, annealing on a source and the planted quiz leaks need the "
        "world's labels",
    ),
    "reward": (
        {"heldout_accuracy_style", "heldout_accuracy_near_miss"},
        "the world's pairs say which kind of reply was rejected (rude, rambling, near miss); "
        "a Hub dataset does not",
    ),
    "grpo": (
        {"gold_score_sft_only_before", "gold_score_sft_only_after"},
        "GSM8K has no questions the SFT stage trained on (its gpu preset trains on Capybara), "
        "so there is no set that SFT saw and GRPO did not",
    ),
}


def lab_order() -> list[str]:
    """Every lab (found by glob), those with fewer earlier stages first."""
    return sorted(check.lab_names(), key=lambda lab: (depth(lab), lab))


def half(i: int) -> list[str]:
    return lab_order()[i::2]


def lesson_keys(lab: str, lab_metrics) -> set[str]:
    """The lesson run's keys: the published results, or (not published yet) its smoke run's."""
    path = RESULTS / f"{lab}.json"
    return set(json.loads(path.read_text()) if path.exists() else lab_metrics(lab)) - {"_dir"}


def assert_gpu_preset_runs(gpu_check, lab: str, lab_metrics) -> dict:
    result = gpu_check.ensure(lab)
    assert result.exit_code == 0, (
        f"{lab} --preset gpu: exit {result.exit_code}: {result.note} (log: {result.output_dir})"
    )
    metrics = json.loads((gpu_check.stage(lab) / "metrics.json").read_text())
    lesson_only, _ = LESSON_ONLY.get(lab, (set(), ""))
    assert not metrics.keys() & lesson_only, (
        f"{lab}: declared lesson-only keys appear at --preset gpu"
    )
    expected = lesson_keys(lab, lab_metrics) - lesson_only
    assert set(metrics) == expected, (
        f"{lab}: gpu keys differ from the lesson's: missing "
        f"{sorted(expected - set(metrics))}, extra {sorted(set(metrics) - expected)}"
    )
    return metrics
