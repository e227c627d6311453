"""Forgetting: narrow tuning raises general perplexity and breaks the other tasks; replay brings
most back. At the lesson preset the narrow run also overfits its small domain slice; replay does
not."""

import json

import pytest

from conftest import ROOT, comparable, error_line, run_lab


def test_narrow_tuning_forgets_and_replay_recovers(lab_metrics):
    m = lab_metrics("forgetting")
    # the smoke SFT model is far from its domain's floor, so even the narrow run ends lower there
    assert m["domain_perplexity_narrow"] < m["domain_perplexity_base"]
    # general text gets forgotten
    assert m["general_perplexity_narrow"] >= 1.2 * m["general_perplexity_base"]
    assert m["general_perplexity_replay"] < m["general_perplexity_narrow"]
    assert m["replay_recovered_share"] >= 0.5
    steps = {p["step"] for p in m["curves"]}
    assert min(steps) == 0 and len(steps) >= 3  # measured during training, not just at the ends


def test_committed_lesson_results_meet_the_targets():
    """What the pages say of the published lesson numbers, claim by claim."""
    m = json.loads((ROOT / "snippets" / "results" / "forgetting.json").read_text())
    narrow = [p for p in m["curves"] if p["run"] == "narrow"]
    # general perplexity climbs several-fold; the other tasks fall apart
    assert m["general_perplexity_narrow"] >= 3 * m["general_perplexity_base"]
    assert m["other_task_accuracy_narrow"] <= 0.25 * m["other_task_accuracy_base"]
    # held-out domain perplexity falls at first, is best at the first measurement after step 0,
    # then ends above the start and above that best point; general perplexity has risen by then
    best = min(narrow, key=lambda p: p["domain_perplexity"])
    assert best["step"] == narrow[1]["step"] > 0
    assert best["domain_perplexity"] < m["domain_perplexity_base"] < m["domain_perplexity_narrow"]
    assert best["general_perplexity"] > m["general_perplexity_base"]
    assert m["general_perplexity_narrow"] > best["general_perplexity"]
    # replay keeps most of what the model knew, and ends with the lowest domain perplexity
    assert m["replay_recovered_share"] >= 0.5
    assert m["other_task_accuracy_replay"] >= m["other_task_accuracy_base"] - 0.1
    assert m["domain_perplexity_replay"] < m["domain_perplexity_base"]
    replay = [p for p in m["curves"] if p["run"] == "replay"]
    assert replay[1]["domain_perplexity"] < m["domain_perplexity_base"]  # falls at first in both


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
