"""GRPO with a verifiable reward: gold rises on held-out questions, the group statistics match TRL's own,
β > 0 stays closer to the SFT model than β = 0, a lenient checker is gamed, and the three-way machinery
table is the one the published results give.

Cost: the smoke run (three short GRPO runs, about 30 s of one core) is shared with tests/test_labs.py
through the session cache; the rest are unit checks (about 2 s)."""

import json

import pytest
import torch

from conftest import ROOT, comparable, error_line, load_lab, run_lab
from lifecycle import machinery
from lifecycle.rewards import correct, final_answer


def values(curve: list[dict]) -> list[float]:
    return [p["value"] for p in curve]


def check_lesson(m: dict, gain: float) -> None:
    """The page's claims, at any preset: gold (the final answer) rises by `gain` and the format stays; β > 0
    holds a second model and drifts less; the run paid by the lenient checker games it: its replies pass
    that check more often than their final answers are right, by more than the main run's do."""
    main, kl_run, lenient = m["runs"]
    assert m["gold_score_after"] >= m["gold_score_before"] + gain, (m["gold_score_before"], m["gold_score_after"])
    assert m["format_rate_after"] >= m["format_rate_before"] - 0.05
    assert (main["beta"], kl_run["beta"], lenient["beta"]) == (0.0, m["beta"], 0.0) and m["beta"] > 0
    kl = {p["beta"]: p["kl"] for p in m["kl_to_reference"]}
    assert 0 < kl[m["beta"]] < kl[0.0]  # the KL term keeps the policy closer to the SFT model
    assert (main["models_held"], kl_run["models_held"]) == (1, 2)  # β > 0 loads a reference model
    assert kl_run["param_bytes_held"] == 2 * main["param_bytes_held"]
    gap = {r["checker"]: r["gold_anywhere_after"] - r["gold_score_after"] for r in (main, lenient)}
    assert gap["anywhere"] > gap["final answer"], gap
    assert lenient["gold_score_after"] <= main["gold_score_after"]


def test_gold_rises_and_the_leash_and_the_hack_show(lab_metrics):
    check_lesson(lab_metrics("grpo"), gain=0.0001)  # smoke: the direction


def test_committed_lesson_results_meet_the_targets():
    check_lesson(json.loads((ROOT / "snippets" / "results" / "grpo.json").read_text()), gain=0.15)


def test_zero_variance_share_is_trls_frac_reward_zero_std(lab_metrics):
    """Our reward function's count of groups whose G rewards are all equal is TRL's `frac_reward_zero_std`,
    step by step; and it is a real curve, neither all 0 nor all 1."""
    m = lab_metrics("grpo")
    ours, trl = m["zero_variance_group_share"], m["frac_reward_zero_std"]
    assert [p["step"] for p in ours] == [p["step"] for p in trl] == list(range(1, len(ours) + 1))
    assert values(ours) == pytest.approx(values(trl), abs=1e-6)
    assert 0 < sum(values(ours)) < len(ours)


def test_reward_scores_groups_and_logs_their_statistics():
    grpo = load_lab("grpo")
    from lifecycle.tokenizer import load_tokenizer

    tok = load_tokenizer()
    replies = ["The capital of Aa is Bb.<|end|>", "The capital of Bb is Cc.<|end|>",  # group 1: one right
               "Bb<|end|>", "Bb<|end|>",  # group 2: both right, in format: zero variance
               "The capital of Aa is Bb.", "x<|end|>"]  # group 3: right but never ended, and wrong
    ids = [tok(r, add_special_tokens=False)["input_ids"] for r in replies]
    logged = {}
    reward = grpo.verifiable_reward(tok, G=2, format_weight=0.1)
    r = reward(completion_ids=ids, gold=["Bb"] * 6, task=["capital"] * 6, log_metric=logged.__setitem__)
    assert r == pytest.approx([1.1, 0.1, 1.1, 1.1, 0.0, 0.1])
    assert logged["zero_variance_group_share"] == pytest.approx(1 / 3)
    assert logged["group_std"] == pytest.approx(torch.tensor([[1.1, 0.1], [0.0, 0.1]]).std(1).sum().item() / 3)
    lenient = grpo.verifiable_reward(tok, G=2, format_weight=0.1, anywhere=True)
    assert lenient(completion_ids=ids, gold=["Bb"] * 6, task=["capital"] * 6, log_metric=logged.__setitem__)[1] == pytest.approx(1.1)


def test_final_answer_is_what_the_checker_reads():
    """The final answer is the reply's last number (GSM8K's convention) or its last words; the world's
    `check_gold` (`anywhere=True`) accepts the gold anywhere, which echoing the question's numbers games."""
    assert final_answer("6 plus 12 is 18.<|end|>", "6") == "18"
    assert correct("6 plus 12 is 18.<|end|>", "18", "arithmetic")
    assert not correct("6 plus 12 is 18.<|end|>", "6", "arithmetic")
    assert correct("6 plus 12 is 18.<|end|>", "6", "arithmetic", anywhere=True)
    assert final_answer("Design review on Tuesday.<|end|>", "Design review on Tuesday") == "Design review on Tuesday"
    assert correct("Pia Fair is a tailor.<|end|>", "tailor", "job")
    assert correct("5 bags a day for 3 days is 15, minus 2 is 13.<|end|>", "13", "gsm8k")
    assert not correct("13 bags, then 12.<|end|>", "13", "gsm8k")
    assert correct("It is 1,250.<|end|>", "1250", "gsm8k")
    assert correct("5 a day for 3 days is 15.\nShe gives 2 away.\n#### 13<|end|>", "13", "gsm8k")  # lines: fine
    assert not correct("5 a day for 3 days is 15.\n#### 13", "13", "gsm8k")  # never ended


def test_machinery_table_is_built_from_the_published_results():
    """The committed table is what `lifecycle.machinery` makes of the committed results; no lab ran another."""
    assert (ROOT / "snippets" / "results" / "machinery.md").read_text() == machinery.machinery_table()
    table = machinery.machinery_table()
    for name in ("PPO", "GRPO", "DPO"):
        assert f"| {name} " in table.splitlines()[0] + " "


def test_machinery_table_shows_unpublished_labs(tmp_path):
    (tmp_path / "dpo.json").write_text(json.dumps({"models_held": 2, "param_bytes_held": 2**21,
                                                    "replies_sampled_per_run": 0}))
    table = machinery.machinery_table(tmp_path)
    assert "2.0 MiB" in table and table.count("not published") == 2 * len(machinery.ROWS)


@pytest.mark.parametrize(
    "args, message",
    [
        (["--num_generations", "1"], "--num_generations must be at least 2"),
        (["--tasks", "capital,poetry"], "--tasks: unknown poetry; choose from"),
        (["--beta", "0"], "--beta must be a positive number"),
        (["--max_steps", "0"], "--max_steps must be a positive number"),
    ],
    ids=["one-generation", "unknown-task", "beta-0", "no-steps"],
)
def test_bad_flags_are_one_line_exit_2(args, message, tmp_path):
    proc = run_lab("grpo", "--output_dir", str(tmp_path), "--preset", "smoke", *args, check=False)
    line = error_line(proc)
    assert line.startswith("grpo: error:") and message in line, line


def test_gpu_preset_offline_is_one_line_exit_2(tmp_path):
    proc = run_lab("grpo", "--output_dir", str(tmp_path), "--preset", "gpu", check=False)
    assert "cannot load openai/gsm8k from the Hub (offline?)" in error_line(proc)


def test_same_seed_same_metrics(tmp_path, lab_metrics):
    """A second smoke run with the same seed reproduces the session's run (timings aside). Cost: one more
    smoke run, about 15 s of one core."""
    first = lab_metrics("grpo")
    run_lab("grpo", "--output_dir", str(tmp_path / "again"), "--preset", "smoke")
    assert comparable(json.loads((tmp_path / "again" / "metrics.json").read_text())) == comparable(first)
