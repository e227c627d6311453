"""PPO against the proxy reward model, at the smoke preset (the session's smoke chain; the PPO
stage itself about 55 s of CPU): every direction the page claims, with the same `CLAIMS` that check
the published lesson run (tests/test_rlhf_claims.py) and seeds 0, 1 and 2 (`make robustness`), and
the over-optimization curve recorded at every checkpoint."""

import pytest

from conftest import error_line, run_lab
from lifecycle.robustness import failures


def test_smoke_run_keeps_every_claim_of_the_page(lab_metrics):
    """The smoke SFT model writes most held-out subject lines right (sampled at temperature 1.3,
    about 60% word for word), so there is gold to keep: on its leash PPO raises the proxy clearly
    and gold with it; unleashed, it takes up the flattery, the proxy rises furthest, gold
    collapses after an early peak and KL is many times the leashed run's."""
    assert failures("ppo", lab_metrics("ppo")) == []


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
