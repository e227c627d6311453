"""`make results`: rerun labs at the lesson preset and copy what the site shows into the repo.

    python -m lifecycle.publish            # every lab, in lifecycle order (lifecycle.stages.STAGES)
    python -m lifecycle.publish pretrain   # just one (several: still in lifecycle order)

For each lab: `results.md` and `metrics.json` go to `snippets/results/<lab>.{md,json}`, and its plots to
`docs/assets/labs/<lab>/`. Pages include those files, so no number on the site is typed by hand.
"""

import shutil
import sys

from .cache import ROOT
from .stages import STAGES, ensure_stage

RESULTS = ROOT / "snippets" / "results"
ASSETS = ROOT / "docs" / "assets" / "labs"


def publish(lab: str) -> None:
    out = ensure_stage(lab, "lesson")
    RESULTS.mkdir(parents=True, exist_ok=True)
    shutil.copy(out / "metrics.json", RESULTS / f"{lab}.json")
    for md in out.glob("*.md"):
        name = lab if md.stem == "results" else f"{lab}-{md.stem}"
        shutil.copy(md, RESULTS / f"{name}.md")
    plots = [*out.glob("*.png"), *out.glob("*.svg")]
    if plots:
        (ASSETS / lab).mkdir(parents=True, exist_ok=True)
        for p in plots:
            shutil.copy(p, ASSETS / lab / p.name)
    print(f"published {lab}: {len(plots)} plot(s)")


def main(labs: list[str]) -> None:
    for lab in sorted(labs or STAGES, key=list(STAGES).index):  # lifecycle order: DPO's table reads PPO's run
        publish(lab)


if __name__ == "__main__":
    main(sys.argv[1:])
