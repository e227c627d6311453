"""Reward model: it ranks unseen pairs right, the proxy loves the keyword, same seed gives same metrics,
and a bad pairs file is one line and exit 2."""

import json

import pytest

from conftest import ROOT, comparable, error_line, run_lab


def test_correct_rm_ranks_unseen_pairs(lab_metrics):
    m = lab_metrics("reward")
    assert m["heldout_accuracy"] >= 0.9
    assert m["mean_margin"] > 0


def test_proxy_rm_prefers_keyword_even_when_wrong(lab_metrics):
    m = lab_metrics("reward")
    assert m["proxy_heldout_accuracy"] >= 0.9
    assert m["proxy_prefers_wrong_keyword_reply"] >= 0.8


def test_committed_lesson_results_meet_the_targets():
    m = json.loads((ROOT / "snippets" / "results" / "reward.json").read_text())
    assert m["heldout_accuracy"] >= 0.9 and m["mean_margin"] > 0
    assert m["proxy_prefers_wrong_keyword_reply"] >= 0.8


def test_same_seed_same_metrics(tmp_path):
    runs = []
    for name in ("a", "b"):
        run_lab("reward", "--output_dir", str(tmp_path / name), "--preset", "smoke", "--epochs", "0.5")
        runs.append(json.loads((tmp_path / name / "metrics.json").read_text()))
    assert comparable(runs[0]) == comparable(runs[1])


BAD_PAIRS = {
    "missing-chosen": ('{"chosen": "Paris.", "rejected": "Rome."}\n{"prompt": "Capital?", "rejected": "Rome."}\n',
                       "row 2: missing 'chosen'"),
    "empty": ("", "no pairs (the file is empty)"),
    "malformed-json": ('{"chosen": "a", "rejected": "b"}\n{"chosen": "a", \n', "row 2: malformed JSON"),
}


def bad_input(lab: str, case: str, tmp_path):
    """Run `lab` on a bad pairs file; it must fail with one line naming the file and the row, exit 2."""
    text, message = BAD_PAIRS[case]
    path = tmp_path / "pairs.jsonl"
    path.write_text(text)
    proc = run_lab(lab, "--output_dir", str(tmp_path / "out"), "--preset", "smoke", "--data", str(path), check=False)
    line = error_line(proc)
    assert line.startswith(f"{lab}: error: {path}"), proc.stderr[-2000:]
    assert message in line


@pytest.mark.parametrize("case", BAD_PAIRS)
def test_bad_pairs_file_is_one_line_exit_2(case, tmp_path):
    bad_input("reward", case, tmp_path)


def test_gpu_preset_offline_is_one_line_exit_2(tmp_path):
    proc = run_lab("reward", "--output_dir", str(tmp_path), "--preset", "gpu", check=False)
    assert "(offline?)" in error_line(proc)
