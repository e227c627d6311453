"""PPO against the proxy reward model: without a KL leash the policy drifts far from the reference and
games the proxy; with the tuned coefficient it stays close and keeps its gold score."""

import json

import pytest

from conftest import ROOT, error_line, run_lab


def by_coef(runs: list[dict]) -> dict[float, dict]:
    return {r["kl_coef"]: r for r in runs}


def test_no_kl_drifts_further_and_games_the_proxy(lab_metrics):
    m = lab_metrics("ppo")
    runs = by_coef(m["runs"])
    free, tuned = runs[0.0], runs[m["tuned_kl_coef"]]
    assert free["kl_final"] > 2 * tuned["kl_final"]
    assert free["proxy_reward_after"] >= tuned["proxy_reward_after"]
    assert free["proxy_reward_after"] > free["proxy_reward_before"]  # PPO did optimize the proxy
    assert free["gold_score_after"] <= tuned["gold_score_after"]


def test_committed_lesson_results_meet_the_targets():
    m = json.loads((ROOT / "snippets" / "results" / "ppo.json").read_text())
    runs = by_coef(m["runs"])
    free, tuned = runs[0.0], runs[m["tuned_kl_coef"]]
    assert free["kl_final"] >= 3 * tuned["kl_final"]
    assert free["gold_score_after"] < tuned["gold_score_after"]
    assert free["proxy_reward_after"] >= tuned["proxy_reward_after"]


@pytest.mark.parametrize(
    "args, message",
    [
        (["--kl_coefs", "0,lots"], "--kl_coefs must be comma-separated numbers"),
        (["--kl_coefs", "0,0.1", "--tuned_kl_coef", "0.5"], "--tuned_kl_coef 0.5 is not one of"),
        (["--batch_size", "6", "--mini_batches", "4"], "--mini_batches 4 must divide --batch_size 6"),
        (["--episodes", "0"], "--episodes must be a positive number"),
    ],
    ids=["bad-coefs", "tuned-not-swept", "mini-batches", "no-episodes"],
)
def test_bad_flags_are_one_line_exit_2(args, message, tmp_path):
    proc = run_lab("ppo", "--output_dir", str(tmp_path), "--preset", "smoke", *args, check=False)
    line = error_line(proc)
    assert line.startswith("ppo: error:"), proc.stderr[-2000:]
    assert message in line


def test_gpu_preset_offline_exits_2(tmp_path):
    """Offline, the gpu preset's first stage (SFT on gpt2) cannot reach the Hub: exit 2, and the last line
    says which stage failed."""
    proc = run_lab("ppo", "--output_dir", str(tmp_path), "--preset", "gpu", check=False)
    assert proc.returncode == 2
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("ppo: error: the sft stage failed at --preset gpu"), proc.stderr[-2000:]
