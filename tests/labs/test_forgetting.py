"""Forgetting: narrow tuning lowers domain, raises general perplexity; replay brings most back."""

import json

import pytest

from conftest import ROOT, comparable, error_line, run_lab


def test_narrow_tuning_forgets_and_replay_recovers(lab_metrics):
    m = lab_metrics("forgetting")
    assert m["domain_perplexity_narrow"] < m["domain_perplexity_base"]  # the domain gets learned
    # general text gets forgotten
    assert m["general_perplexity_narrow"] >= 1.2 * m["general_perplexity_base"]
    assert m["general_perplexity_replay"] < m["general_perplexity_narrow"]
    assert m["replay_recovered_share"] >= 0.5
    steps = {p["step"] for p in m["curves"]}
    assert min(steps) == 0 and len(steps) >= 3  # measured during training, not just at the ends


def test_committed_lesson_results_meet_the_targets():
    m = json.loads((ROOT / "snippets" / "results" / "forgetting.json").read_text())
    assert m["general_perplexity_narrow"] >= 1.2 * m["general_perplexity_base"]
    assert m["general_perplexity_narrow"] - m["general_perplexity_replay"] >= 0.5 * (
        m["general_perplexity_narrow"] - m["general_perplexity_base"]
    )
    assert m["domain_perplexity_narrow"] < m["domain_perplexity_base"]
    assert m["domain_perplexity_replay"] < m["domain_perplexity_base"]
    assert m["other_task_accuracy_narrow"] < m["other_task_accuracy_base"]
    assert m["other_task_accuracy_replay"] > m["other_task_accuracy_narrow"]


def test_same_seed_same_metrics(tmp_path, lab_metrics):
    """A second same-seed smoke run reproduces the session's run exactly (timings aside)."""
    first = lab_metrics("forgetting")
    run_lab("forgetting", "--output_dir", str(tmp_path / "again"), "--preset", "smoke")
    again = json.loads((tmp_path / "again" / "metrics.json").read_text())
    assert comparable(again) == comparable(first)


@pytest.mark.parametrize(
    "args, message",
    [
        (["--domain", "poetry"], "--domain must be one of"),
        (["--replay_share", "1"], "--replay_share must lie"),
    ],
    ids=["unknown-domain", "replay-share-1"],
)
def test_bad_flags_are_one_line_exit_2(args, message, tmp_path):
    proc = run_lab(
        "forgetting",
        "--output_dir",
        str(tmp_path / "out"),
        "--preset",
        "smoke",
        *args,
        check=False,
    )
    line = error_line(proc)
    assert line.startswith("forgetting: error:") and message in line, proc.stderr[-2000:]
