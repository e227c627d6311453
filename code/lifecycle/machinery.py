"""PPO | GRPO | DPO: the machinery each method holds while it trains, from the labs' published results.

    python -m lifecycle.machinery     # rewrites snippets/results/machinery.md from snippets/results/*.json

No lab runs another lab to fill this table: it reads whatever `python -m lifecycle.publish` has written
(`snippets/results/{ppo,grpo,dpo}.json`), and a lab not published yet shows as such. `publish` rewrites it
whenever it publishes one of the three.
"""

import json
from pathlib import Path

from .cache import ROOT

RESULTS = ROOT / "snippets" / "results"
METHODS = {"ppo": "PPO", "grpo": "GRPO", "dpo": "DPO"}

MODELS = {"ppo": "policy, reference, reward, value", "grpo": "policy (+ reference when β > 0)",
          "dpo": "policy, reference"}
REWARD = {"ppo": "a reward model, trained first, scores every sampled reply",
          "grpo": "a program (checker) scores every sampled reply",
          "dpo": "none: the reward is implicit in the pairs"}
VALUE = {"ppo": "trained alongside the policy (GAE advantages)", "grpo": "none: the group's mean reward is the baseline",
         "dpo": "none"}


def _mib(n: float) -> str:
    return f"{n / 2**20:.1f} MiB"


def _models(lab: str, m: dict) -> str:
    if lab == "grpo":  # the main run is TRL's default β = 0; the second run adds the reference
        with_ref = max(r["models_held"] for r in m["runs"])
        return f"{m['models_held']} at β = 0, {with_ref} at β > 0: {MODELS[lab]}"
    return f"{m['models_held']}: {MODELS[lab]}"


def _params(lab: str, m: dict) -> str:
    if lab == "grpo":
        return " / ".join(_mib(r["param_bytes_held"]) for r in m["runs"][:2]) + " (β = 0 / β > 0)"
    return _mib(m["param_bytes_held"])


def _memory(lab: str, m: dict) -> str:
    return _mib(m["train_memory_bytes"]) if "train_memory_bytes" in m else "—"


ROWS = [
    ("models in memory while training", _models),
    ("parameter memory of those models", _params),
    ("weights, gradients and optimizer state", _memory),
    ("replies sampled during training (per run)", lambda lab, m: f"{m['replies_sampled_per_run']:,}"),
    ("where the reward comes from", lambda lab, m: REWARD[lab]),
    ("value model (critic)", lambda lab, m: VALUE[lab]),
]


def machinery_table(results: Path = RESULTS) -> str:
    """The three-way table, one column per method, from `<results>/<lab>.json` where it exists."""
    found = {lab: json.loads((results / f"{lab}.json").read_text()) for lab in METHODS
             if (results / f"{lab}.json").exists()}
    head = "| | " + " | ".join(METHODS.values()) + " |"
    lines = [head, "| --- |" + " --- |" * len(METHODS)]
    for label, cell in ROWS:
        cells = [cell(lab, found[lab]) if lab in found else "not published" for lab in METHODS]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def write(results: Path = RESULTS) -> Path:
    path = results / "machinery.md"
    path.write_text(machinery_table(results))
    return path


if __name__ == "__main__":
    print(write())
