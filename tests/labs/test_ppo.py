"""PPO against the proxy reward model, at the smoke preset (the session's smoke chain; the PPO
stage itself about 40 s of CPU): without a KL leash the policy drifts further from the reference,
and the over-optimization curve is recorded at every checkpoint. The smoke SFT model (tiny, 120
steps) answers almost no held-out email right, so at this size PPO has nothing to optimize or to
lose: the proxy and gold directions are checked on the published lesson results against every claim
of the page (tests/test_rlhf_claims.py), and on seeds 0, 1 and 2 by `make robustness`."""

import pytest

from conftest import error_line, run_lab


def by_coef(runs: list[dict]) -> dict[float, dict]:
    return {r["kl_coef"]: r for r in runs}


def test_no_kl_drifts_further(lab_metrics):
    m = lab_metrics("ppo")
    runs = by_coef(m["runs"])
    free, tuned = runs[0.0], runs[m["tuned_kl_coef"]]
    assert free["kl_final"] > 2 * tuned["kl_final"]
    assert free["gold_score_after"] <= tuned["gold_score_after"]


def test_overoptimization_curve_has_every_checkpoint(lab_metrics):
    """One row per KL coefficient and checkpoint (step 0: the SFT model), keys as §4.3 plots."""
    m = lab_metrics("ppo")
    for run in m["runs"]:
        rows = [r for r in m["overoptimization"] if r["kl_coef"] == run["kl_coef"]]
        steps = [r["step"] for r in rows]
        assert steps[0] == 0 and steps == sorted(set(steps)) and len(steps) >= 3
        assert rows[0]["gold_score"] == run["gold_score_before"] and rows[0]["sqrt_kl"] == 0
        assert rows[-1]["gold_score"] == run["gold_score_after"]
        assert all({"sqrt_kl", "proxy_reward", "gold_score"} <= r.keys() for r in rows)


@pytest.mark.parametrize(
    "args, message",
    [
        (["--kl_coefs", "0,lots"], "--kl_coefs must be comma-separated numbers"),
        (["--kl_coefs", "0,0.1", "--tuned_kl_coef", "0.5"], "--tuned_kl_coef 0.5 is not one of"),
        (
            ["--batch_size", "6", "--mini_batches", "4"],
            "--mini_batches 4 must divide --batch_size 6",
        ),
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
    """Offline, the gpu preset's first stage (SFT on gpt2) cannot reach the Hub: exit 2, and the
    last line says which stage failed."""
    proc = run_lab("ppo", "--output_dir", str(tmp_path), "--preset", "gpu", check=False)
    assert proc.returncode == 2
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("ppo: error: the sft stage failed at --preset gpu"), proc.stderr[-2000:]
