"""Reward model: it ranks unseen style pairs right and near misses only partly, swapped labels
lower the measured accuracy, the proxy loves the keyword, same seed gives same metrics, and one
tie rule. (Your own `--data` pairs: tests/test_data.py and tests/test_reader_data.py; the
published lesson results: tests/test_rlhf_claims.py.)"""

import json

from conftest import ROOT, comparable, error_line, load_lab, run_lab
from lifecycle.robustness import failures


def test_smoke_run_keeps_every_claim_of_the_page(lab_metrics):
    """Every direction the page claims, checked by the same `CLAIMS` as the published lesson run
    and `make robustness` (the smoke curve has two points: 0% and 40% of the labels swapped)."""
    assert failures("reward", lab_metrics("reward")) == []


def test_correct_rm_ranks_style_pairs_and_some_near_misses(lab_metrics):
    """Smoke preset (shares the session's smoke chain: about 20 s for the reward stage)."""
    m = lab_metrics("reward")
    assert m["heldout_accuracy_style"] >= 0.9 > m["heldout_accuracy_near_miss"]
    assert 0.6 <= m["heldout_accuracy"] < 0.95
    assert m["mean_margin"] > 0


def test_swapped_labels_lower_measured_accuracy(lab_metrics):
    """Smoke: clean labels, then 40% of the training and held-out labels swapped. Against labels
    that noisy, the measured accuracy must fall (a model perfect on the truth would score 60%)."""
    m = lab_metrics("reward")
    curve = m["curve"]
    assert [c["label_noise"] for c in curve] == [0.0, 0.4]
    assert (
        curve[0]["heldout_accuracy"] == curve[0]["heldout_accuracy_clean"] == m["heldout_accuracy"]
    )
    assert curve[1]["heldout_accuracy"] < curve[0]["heldout_accuracy"]


def test_swapped_pairs_are_the_stated_share():
    swap = load_lab("reward").flipped(50, 0.2, seed=0)
    assert len(swap) == 10 and swap <= set(range(50))


def test_proxy_rm_prefers_keyword_even_when_wrong(lab_metrics):
    m = lab_metrics("reward")
    assert m["proxy_prefers_keyword_reply"] >= 0.9
    assert m["proxy_prefers_wrong_keyword_reply"] >= 0.8


def test_same_seed_same_metrics_whatever_the_thread_count(tmp_path, monkeypatch):
    """Two same-seed runs, one told to use 1 thread and one 2 (`OMP_NUM_THREADS`), write the same
    metrics: the labs pin torch to one CPU thread (`lifecycle.cli.one_cpu_thread`), because a sum
    split over two threads adds in another order. Two smoke reward runs at half an epoch: about 30
    s."""
    runs = []
    for threads in ("1", "2"):
        monkeypatch.setenv("OMP_NUM_THREADS", threads)
        out = tmp_path / threads
        run_lab(
            "reward",
            "--output_dir",
            str(out),
            "--preset",
            "smoke",
            "--epochs",
            "0.5",
            "--curve",
            "",
        )
        runs.append(json.loads((out / "metrics.json").read_text()))
    assert comparable(runs[0]) == comparable(runs[1])


def test_one_tie_rule_for_reward_and_dpo_accuracy():
    """A tie counts one half (a coin flip), for the reward model's scores and for DPO's implicit
    rewards: both labs score held-out pairs with this one function."""
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
