"""`make robustness`: the post-training lessons hold for every seed, not only the one shown.

    python -m lifecycle.robustness            # seeds 0, 1, 2 at the lesson preset
    python -m lifecycle.robustness --check    # re-check snippets/results/robustness.json only
    python -m lifecycle.robustness --seeds 0  # a subset of the seeds

Runs the sft, reward, ppo and dpo labs (and the stages they need) for each seed through the stage
cache, checks every direction the pages claim (`CLAIMS`) on each seed, and writes
`snippets/results/robustness.json` (each seed's metrics) and `snippets/results/<lab>-seeds.md` (one
line: the three-seed min–max of each headline number), which the pages include under their seed-0
tables. Exits 1 if any claim fails for any seed. The tests check the same `CLAIMS` on the published
seed-0 results. Not part of `make test`: it costs about three lesson chains.
"""

import json
import sys

from .cache import ROOT
from .stages import ensure_stage

SEEDS = (0, 1, 2)
RESULTS = ROOT / "snippets" / "results"
CLEAR = 3  # standard errors: what the PPO page calls a clear rise of the proxy reward


def _run(m: dict, beta: float) -> dict:
    return next(r for r in m["runs"] if r["kl_coef"] == beta)


def _curve(m: dict, beta: float) -> list[dict]:
    return [r for r in m["overoptimization"] if r["kl_coef"] == beta]


def proxy_gain_in_se(run: dict) -> float:
    """A PPO run's proxy-reward gain over the SFT model, in standard errors of the difference of
    the two means (each over the sampled replies to the held-out prompts)."""
    se = (run["proxy_reward_se_before"] ** 2 + run["proxy_reward_se_after"] ** 2) ** 0.5
    return (run["proxy_reward_after"] - run["proxy_reward_before"]) / se


def _accs(m: dict) -> list[float]:
    return [r["preference_accuracy"] for r in m["beta_sweep"]]


def _chosen(m: dict) -> dict:
    """The pick: the main β, with the NLL term when `rpo_alpha` > 0 (the `*_after` keys)."""
    return {
        "gold_score": m["gold_score_after"],
        "kl_to_reference": m["kl_to_reference_after"],
    }


def _alone(m: dict) -> dict:
    return next(r for r in m["beta_sweep"] if r["beta"] == m["beta"])


# --8<-- [start:claims]
CLAIMS = {  # lab: [(what the page says, check on that lab's metrics.json)]
    "sft": [
        (
            "SFT teaches the format",
            lambda m: m["format_rate_after"] >= 0.9 and m["format_rate_before"] <= 0.2,
        ),
        (
            "SFT answers more held-out questions",
            lambda m: m["task_accuracy_after"] > m["task_accuracy_before"] + 0.3,
        ),
        (
            "clean data beats the larger noisy set",
            lambda m: m["task_accuracy_clean_small"] > m["task_accuracy_noisy_large"],
        ),
    ],
    "reward": [
        ("held-out accuracy between 65% and 95%", lambda m: 0.65 <= m["heldout_accuracy"] <= 0.95),
        (
            "style pairs easy, near misses hard",
            lambda m: m["heldout_accuracy_style"] > m["heldout_accuracy_near_miss"],
        ),
        (
            "more swapped labels, lower measured accuracy",
            lambda m: all(
                a["heldout_accuracy"] > b["heldout_accuracy"]
                for a, b in zip(m["curve"], m["curve"][1:])
            ),
        ),
        (
            "the curve spans a range",
            lambda m: (
                m["curve"][0]["heldout_accuracy"] - m["curve"][-1]["heldout_accuracy"] >= 0.1
            ),
        ),
        (
            "the measured accuracy falls more than the accuracy on the true labels",
            lambda m: (
                m["curve"][0]["heldout_accuracy"] - m["curve"][-1]["heldout_accuracy"]
                > m["curve"][0]["heldout_accuracy_clean"]
                - m["curve"][-1]["heldout_accuracy_clean"]
            ),
        ),
        (
            "measured accuracy within 6 points of p + (1 − 2p) · accuracy on the true labels",
            lambda m: all(
                abs(
                    c["heldout_accuracy"]
                    - (c["label_noise"] + (1 - 2 * c["label_noise"]) * c["heldout_accuracy_clean"])
                )
                <= 0.06
                for c in m["curve"]
            ),
        ),
        (
            "the proxy prefers a wrong flattering reply",
            lambda m: m["proxy_prefers_wrong_keyword_reply"] >= 0.8,
        ),
        (
            "the proxy still ranks most correct pairs right",
            lambda m: m["proxy_accuracy_on_correct_pairs"] >= 0.65,
        ),
    ],
    "ppo": [
        ("the SFT model starts at gold ≥ 50%", lambda m: m["runs"][0]["gold_score_before"] >= 0.5),
        (
            "tuned: proxy rises clearly",
            lambda m: proxy_gain_in_se(_run(m, m["tuned_kl_coef"])) >= CLEAR,
        ),
        (
            "tuned: gold does not fall",
            lambda m: (
                _run(m, m["tuned_kl_coef"])["gold_score_after"]
                >= _run(m, m["tuned_kl_coef"])["gold_score_before"]
            ),
        ),
        (
            "β = 0: proxy at least the tuned run's",
            lambda m: (
                _run(m, 0)["proxy_reward_after"]
                >= _run(m, m["tuned_kl_coef"])["proxy_reward_after"]
            ),
        ),
        (
            "β = 0: gold at most half of the start",
            lambda m: _run(m, 0)["gold_score_after"] <= 0.5 * _run(m, 0)["gold_score_before"],
        ),
        (
            "β = 0: KL at least 5× the tuned run's",
            lambda m: _run(m, 0)["kl_final"] >= 5 * _run(m, m["tuned_kl_coef"])["kl_final"],
        ),
        (
            "β = 0: gold peaks inside the run, then falls",
            lambda m: (
                0
                < max(range(len(_curve(m, 0))), key=lambda i: _curve(m, 0)[i]["gold_score"])
                < len(_curve(m, 0)) - 1
            ),
        ),
        (
            "β = 0: proxy ends at its highest",
            lambda m: (
                _curve(m, 0)[-1]["proxy_reward"]
                >= max(r["proxy_reward"] for r in _curve(m, 0)) - 0.05
            ),
        ),
    ],
    "dpo": [
        (
            "every β row has gold and format",
            lambda m: all("gold_score" in r and "format_rate" in r for r in m["beta_sweep"]),
        ),
        (
            "KL falls as β rises",
            lambda m: all(
                a["kl_to_reference"] > b["kl_to_reference"]
                for a, b in zip(m["beta_sweep"], m["beta_sweep"][1:])
            ),
        ),
        (
            "the pick (DPO + NLL at the main β) keeps the SFT model's gold",
            lambda m: _chosen(m)["gold_score"] >= m["gold_score_before"],
        ),
        (
            "the NLL term keeps at least the gold of DPO alone at the same β",
            lambda m: _chosen(m)["gold_score"] >= _alone(m)["gold_score"],
        ),
        (
            "the NLL term drifts less than DPO alone at any β of the sweep",
            lambda m: (
                _chosen(m)["kl_to_reference"] < min(r["kl_to_reference"] for r in m["beta_sweep"])
            ),
        ),
        (
            "implicit-reward accuracy about the same at every β",
            lambda m: max(_accs(m)) - min(_accs(m)) <= 0.1,
        ),
    ],
}
# --8<-- [end:claims]

HEADLINES = {  # lab: [(label, value from metrics.json, format)]
    "sft": [("task accuracy after SFT", lambda m: m["task_accuracy_after"], ".0%")],
    "reward": [
        ("held-out accuracy", lambda m: m["heldout_accuracy"], ".1%"),
        ("on near misses", lambda m: m["heldout_accuracy_near_miss"], ".1%"),
        ("curve, most labels swapped", lambda m: m["curve"][-1]["heldout_accuracy"], ".1%"),
        (
            "… against the true labels",
            lambda m: m["curve"][-1]["heldout_accuracy_clean"],
            ".1%",
        ),
    ],
    "ppo": [
        ("gold before", lambda m: m["runs"][0]["gold_score_before"], ".0%"),
        ("tuned gold after", lambda m: _run(m, m["tuned_kl_coef"])["gold_score_after"], ".0%"),
        (
            "tuned proxy gain",
            lambda m: (
                _run(m, m["tuned_kl_coef"])["proxy_reward_after"]
                - _run(m, m["tuned_kl_coef"])["proxy_reward_before"]
            ),
            "+.2f",
        ),
        ("in standard errors", lambda m: proxy_gain_in_se(_run(m, m["tuned_kl_coef"])), ".1f"),
        ("β = 0 gold after", lambda m: _run(m, 0)["gold_score_after"], ".0%"),
        ("KL ratio β = 0 / tuned", lambda m: m["kl_ratio_free_vs_tuned"], ".0f"),
    ],
    "dpo": [
        ("SFT gold", lambda m: m["gold_score_before"], ".1%"),
        ("DPO + NLL at the main β", lambda m: _chosen(m)["gold_score"], ".1%"),
        ("DPO alone at the main β", lambda m: _alone(m)["gold_score"], ".1%"),
        ("DPO alone at the smallest β", lambda m: m["beta_sweep"][0]["gold_score"], ".1%"),
        ("DPO alone at the largest β", lambda m: m["beta_sweep"][-1]["gold_score"], ".1%"),
        (
            "KL ratio, smallest / largest β",
            lambda m: (
                m["beta_sweep"][0]["kl_to_reference"] / m["beta_sweep"][-1]["kl_to_reference"]
            ),
            ".1f",
        ),
    ],
}


def failures(lab: str, m: dict, skip: tuple[str, ...] = ()) -> list[str]:
    """The claims of `lab` that `m` (its metrics.json) does not meet, but for those named in `skip`
    (claims about a run that `m`'s preset leaves out)."""
    assert set(skip) <= {name for name, _ in CLAIMS[lab]}, skip
    return [name for name, check in CLAIMS[lab] if name not in skip and not check(m)]


def seeds_line(lab: str, per_seed: dict[int, dict]) -> str:
    """One line for a page: each headline number's min–max over the seeds."""
    parts = []
    for label, value, spec in HEADLINES[lab]:
        vals = [value(m) for m in per_seed.values()]
        parts.append(f"{label} {format(min(vals), spec)} – {format(max(vals), spec)}")
    return (
        f"Seeds {', '.join(map(str, per_seed))} (`make robustness`): " + "; ".join(parts) + ".\n"
    )


def main(argv: list[str]) -> int:
    seeds = SEEDS
    if "--seeds" in argv:  # a subset, e.g. while the others are still running
        seeds = tuple(int(x) for x in argv[argv.index("--seeds") + 1].split(","))
    if "--check" in argv:
        runs = json.loads((RESULTS / "robustness.json").read_text())
    else:
        runs = {
            lab: {
                str(s): json.loads((ensure_stage(lab, "lesson", s) / "metrics.json").read_text())
                for s in seeds
            }
            for lab in CLAIMS
        }
        (RESULTS / "robustness.json").write_text(json.dumps(runs, indent=1, sort_keys=True) + "\n")
        for lab, per_seed in runs.items():
            (RESULTS / f"{lab}-seeds.md").write_text(seeds_line(lab, per_seed))
    bad = [
        f"{lab} seed {s}: {c}"
        for lab, per_seed in runs.items()
        for s, m in per_seed.items()
        for c in failures(lab, m)
    ]
    checked = sorted({s for per_seed in runs.values() for s in per_seed})
    print("\n".join(bad) or f"every claim holds for seeds {', '.join(checked)}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
