"""GRPO with a verifiable reward: held-out gold rises where the SFT model has the skill (subject
lines) and not where it lacks the facts, the group statistics match TRL's own, β > 0 stays closer
to the SFT model than β = 0, a format-only reward is gamed, and GRPO's column of the machinery
table comes from its run.

Cost: the smoke run (three GRPO runs of 24 steps, about 30 s of one core) is shared with
tests/test_labs.py through the session cache; two short runs for the same-seed check (about 16
s); the rest are unit checks (about 3 s)."""

import json

import pytest
import torch

from conftest import ROOT, comparable, error_line, load_lab, run_lab
from lifecycle.rewards import correct, final_answer

RESULTS = ROOT / "snippets" / "results"


def values(curve: list[dict]) -> list[float]:
    return [p["value"] for p in curve]


def check_machinery(m: dict) -> None:
    """What holds at any preset: the format of held-out replies stays; β > 0 holds a second model,
    twice the parameters, and drifts less from the SFT model than β = 0; the policy holds weights,
    gradients and two AdamW moments (plus a step counter per tensor), the reference its weights."""
    main, kl_run, format_only = m["runs"]
    assert m["format_rate_after"] >= m["format_rate_before"] - 0.05
    assert (main["beta"], kl_run["beta"], format_only["beta"]) == (0.0, m["beta"], 0.0)
    assert m["beta"] > 0
    kl = {p["beta"]: p["kl"] for p in m["kl_to_reference"]}
    assert 0 < kl[m["beta"]] < kl[0.0]  # the KL term keeps the policy closer to the SFT model
    assert (main["models_held"], kl_run["models_held"]) == (1, 2)  # β > 0 loads a reference model
    assert kl_run["param_bytes_held"] == 2 * main["param_bytes_held"]
    assert main["train_memory_bytes"] == pytest.approx(4 * main["param_bytes_held"], rel=1e-3)
    assert kl_run["train_memory_bytes"] == pytest.approx(5 * main["param_bytes_held"], rel=1e-3)


def check_rise(m: dict, overall: float, subject: float):
    """Held-out gold (new emails, entities and sums) rises by at least `overall`, and the rise is
    the subject lines' (at least `subject`), a skill the SFT model half has; facts and sums,
    knowledge it lacks, move by less than 0.1. On GRPO's own questions greedy gold rises, pass@1
    (sampled) more. The format-only run maxes out its reward (format ≥ 98.5% on every set).
    Returns `change(key, run)`: a run's change over the SFT model (default: the main run)."""
    main, _, format_only = m["runs"]
    before = m["before"][0]

    def change(key, run=main):
        return run[key] - before[key]

    assert m["gold_score_after"] - m["gold_score_before"] >= overall
    assert m["gold_score_after"] == main["gold_heldout"]
    assert change("gold_subject_heldout") >= subject
    assert abs(change("gold_facts_heldout")) < 0.1
    assert change("sampled_trained") > change("gold_trained") > 0
    assert format_only["answer_weight"] == 0
    assert min(format_only[f"format_{s}"] for s in ("trained", "sft_only", "heldout")) >= 0.985
    return change


def check_gold(m: dict) -> None:
    """The page's claims about gold, each set and kind of question apart: `check_rise` at issue
    15's bar (0.15 overall, 0.2 on subject lines); the other half (SFT's questions GRPO never
    asked): the subject lines rise, the facts and sums fall. The β > 0 run's held-out subject lines
    gain less than the β = 0 run's. The format-only run's facts and sums on its own questions fall
    while the main run's do not, and its held-out subject lines gain at least 0.1 less than the
    main run's. The lenient check passes more replies than the final-answer check."""
    change = check_rise(m, overall=0.15, subject=0.2)
    _, kl_run, format_only = m["runs"]
    assert change("gold_subject_sft_only") >= 0.15
    assert change("gold_facts_sft_only") <= -0.05
    assert change("gold_subject_heldout", kl_run) < change("gold_subject_heldout")  # the leash
    assert change("gold_facts_trained", format_only) < 0 <= change("gold_facts_trained")
    gained = change("gold_subject_heldout") - change("gold_subject_heldout", format_only)
    # what paying for the answer adds to mending the format: 0.16 to 0.89 over seeds 0 to 2 and an
    # SFT model with twice the flattery share, whose emails miss the format more often
    assert gained >= 0.1
    assert m["before"][0]["anywhere_trained"] > m["before"][0]["gold_trained"]


def test_smoke_run_raises_gold(lab_metrics):
    """The smoke run (24 steps of G = 8, about 30 s of CPU): `check_rise` at lower bars
    (0.05 overall, 0.1 on subject lines). The lesson's bars and the rest of the page's claims: the
    test below, on its results."""
    m = lab_metrics("grpo")
    check_machinery(m)
    check_rise(m, overall=0.05, subject=0.1)


def test_committed_lesson_results_back_the_page():
    """The published lesson run: what the page says of it."""
    m = json.loads((RESULTS / "grpo.json").read_text())
    check_machinery(m)
    check_gold(m)
    assert m["cpu_seconds"] < 180  # the lab's budget: 3 minutes of one core


def test_zero_variance_share_is_trls_frac_reward_zero_std(lab_metrics):
    """Our reward function's count of groups whose G rewards are all equal is TRL's
    `frac_reward_zero_std`, step by step; and it is a real curve, neither all 0 nor all 1."""
    m = lab_metrics("grpo")
    ours, trl = m["zero_variance_group_share"], m["frac_reward_zero_std"]
    assert [p["step"] for p in ours] == [p["step"] for p in trl] == list(range(1, len(ours) + 1))
    assert values(ours) == pytest.approx(values(trl), abs=1e-6)
    assert 0 < sum(values(ours)) < len(ours)


def test_reward_scores_groups_and_logs_their_statistics():
    grpo = load_lab("grpo")
    from lifecycle.tokenizer import load_tokenizer

    tok = load_tokenizer()
    # right but never ended, and wrong
    replies = [
        "The capital of Aa is Bb.<|end|>",
        "The capital of Bb is Cc.<|end|>",  # one right
        "Bb<|end|>",
        "Bb<|end|>",  # both right, in format: zero variance
        "The capital of Aa is Bb.",
        "x<|end|>",
    ]
    ids = [tok(r, add_special_tokens=False)["input_ids"] for r in replies]
    logged = {}
    reward = grpo.verifiable_reward(tok, G=2, format_weight=0.1)
    r = reward(
        completion_ids=ids, gold=["Bb"] * 6, task=["capital"] * 6, log_metric=logged.__setitem__
    )
    assert r == pytest.approx([1.1, 0.1, 1.1, 1.1, 0.0, 0.1])
    assert logged["zero_variance_group_share"] == pytest.approx(1 / 3)
    stds = torch.tensor([[1.1, 0.1], [0.0, 0.1]]).std(1)
    assert logged["group_std"] == pytest.approx(stds.sum().item() / 3)
    format_only = grpo.verifiable_reward(tok, G=2, format_weight=0.1, answer_weight=0.0)
    paid = format_only(
        completion_ids=ids, gold=["Bb"] * 6, task=["capital"] * 6, log_metric=logged.__setitem__
    )
    assert paid == pytest.approx([0.1, 0.1, 0.1, 0.1, 0.0, 0.1])  # a wrong reply in format: paid


def test_final_answer_is_what_the_checker_reads():
    """The final answer is the reply's last number (GSM8K's convention) or its last words; the
    world's `check_gold` (`anywhere=True`) accepts the gold anywhere, which echoing numbers
    games."""
    assert final_answer("6 plus 12 is 18.<|end|>", "6") == "18"
    assert correct("6 plus 12 is 18.<|end|>", "18", "arithmetic")
    assert not correct("6 plus 12 is 18.<|end|>", "6", "arithmetic")
    assert correct("6 plus 12 is 18.<|end|>", "6", "arithmetic", anywhere=True)
    assert final_answer("Design review on Tuesday.<|end|>", "Design review on Tuesday") == (
        "Design review on Tuesday"
    )
    assert correct("Pia Fair is a tailor.<|end|>", "tailor", "job")
    assert not correct("Pia Fair is a tailor. Look it up yourself.<|end|>", "tailor", "job")
    assert correct("5 bags a day for 3 days is 15, minus 2 is 13.<|end|>", "13", "gsm8k")
    assert not correct("13 bags, then 12.<|end|>", "13", "gsm8k")
    assert correct("It is 1,250.<|end|>", "1250", "gsm8k")
    assert correct("5 a day for 3 days is 15.\nShe gives 2 away.\n#### 13<|end|>", "13", "gsm8k")
    assert not correct("5 a day for 3 days is 15.\n#### 13", "13", "gsm8k")  # never ended


def test_the_halves_split_the_sft_questions_and_held_out_is_the_test_split():
    """GRPO trains on one half of the SFT model's training questions and is scored on the other
    half and on the test split: three disjoint sets, the halves together the whole training
    split. The subject-line questions are the world's emails with the subject cut: the gold is
    nowhere in the prompt, so it cannot be copied."""
    grpo = load_lab("grpo")
    from lifecycle.world import examples

    args = grpo.parse(grpo.Args, grpo.PRESETS, ["--output_dir", "unused", "--preset", "lesson"])
    sets = grpo.questions(args)
    prompts = {k: {e.prompt for e in sets[k]} for k in grpo.SETS}
    assert not prompts["trained"] & prompts["sft_only"]
    assert not (prompts["trained"] | prompts["sft_only"]) & prompts["heldout"]
    tasks = args.tasks.split(",")
    assert tasks[0] == "subject"
    world = tuple(t for t in tasks if t != "subject") + ("summary",)
    for split, named in (("train", ("trained", "sft_only")), ("test", ("heldout",))):
        asked = [e for k in named for e in sets[k]]
        source = examples(split, world)
        assert len(asked) == len(source)
        assert {e.prompt for e in asked if e.task != "subject"} == {
            e.prompt for e in source if e.task != "summary"
        }
        emails = {e.gold: e for e in source if e.task == "summary"}
        for e in asked:
            if e.task == "subject":
                assert e.prompt.startswith(grpo.SUBJECT) and "Subject:" not in e.prompt
                assert e.gold.lower() not in e.prompt.lower() and e.gold in emails
    assert min(len(v) for v in sets.values()) > 50
    assert sets["prompts"] == sets["trained"]
    assert {e.task for e in sets["heldout"]} == set(tasks)


def test_grpo_column_of_the_machinery_table():
    """GRPO's column is built from its own metrics, beside whatever PPO and DPO runs exist."""
    from lifecycle.rlhf import machinery_table

    m = json.loads((RESULTS / "grpo.json").read_text()) | {"peak_rss_mib": 300.0}
    table = machinery_table({"PPO": None, "GRPO": m, "DPO": None}, "lesson", 0)
    head, _, models, params = table.splitlines()[:4]
    assert "GRPO (grpo lab)" in head
    assert "1: policy (2 when β > 0: + reference)" in models
    mib = m["param_bytes_held"] / 2**20
    assert any(f"{mib:.{digits}f} MiB" in params for digits in (1, 2)), params
    assert table.count("no run yet") >= 2


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
    """Two same-seed runs in fresh processes write the same metrics (timings aside): short ones,
    2 steps and 30 questions a set (about 8 CPU s each; a third smoke run would be 30)."""
    lab_metrics("sft")  # the stage both runs start from, built once for the session
    short = "--preset", "smoke", "--max_steps", "2", "--eval_questions", "30"
    runs = []
    for name in ("first", "again"):
        run_lab("grpo", "--output_dir", str(tmp_path / name), *short)
        runs.append(comparable(json.loads((tmp_path / name / "metrics.json").read_text())))
    assert runs[0] == runs[1]
