"""Reward model: it ranks unseen pairs right, the proxy loves the keyword, same seed gives same metrics, and
one tie rule. (Your own `--data` pairs: tests/test_data.py and tests/test_reader_data.py.)"""

import json

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


def test_one_tie_rule_for_reward_and_dpo_accuracy():
    """A tie counts one half (a coin flip), for the reward model's scores and for DPO's implicit rewards:
    both labs score held-out pairs with this one function."""
    import torch

    from lifecycle.rlhf import preference_accuracy

    chosen, rejected = torch.tensor([1.0, 0.0, 2.0, 0.5]), torch.tensor([0.0, 0.0, 3.0, 0.5])
    assert preference_accuracy(chosen, rejected) == 0.5  # right, tie, wrong, tie
    for lab in ("reward", "dpo"):
        source = (ROOT / "code" / "labs" / f"{lab}.py").read_text()
        assert "preference_accuracy(" in source and "> 0).float()" not in source


def test_gpu_preset_offline_is_one_line_exit_2(tmp_path):
    proc = run_lab("reward", "--output_dir", str(tmp_path), "--preset", "gpu", check=False)
    assert "(offline?)" in error_line(proc)
