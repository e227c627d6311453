"""`make results`: rerun labs at the lesson preset and copy what the site shows into the repo.

    python -m lifecycle.publish            # every lab, in lifecycle order (stages.STAGES)
    python -m lifecycle.publish pretrain   # just one (several: still in lifecycle order)
    python -m lifecycle.publish --jobs 2 sft reward ppo   # two labs at a time, as cores allow

For each lab: `results.md` and `metrics.json` go to `snippets/results/<lab>.{md,json}`, and its
plots to `docs/assets/labs/<lab>/`. Pages include those files, so no number on the site is typed by
hand.
"""

import argparse
import shutil
import time
from concurrent.futures import ThreadPoolExecutor

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


# besides the stages it runs (STAGES[lab].needs): DPO's machinery table reads PPO's and GRPO's runs
READS = {"dpo": ("ppo", "grpo")}
SOLO = ("parallelism",)  # runs two processes itself, and times them: after the others, alone


def main(argv: list[str] | None = None) -> None:
    """Each lab runs in its own process, on one CPU thread (`cli.one_cpu_thread`), so `--jobs 2`
    keeps two cores busy. A lab starts once the labs it needs or reads are published; the tasks
    are queued in lifecycle order, so a waiting one only ever waits on labs already started."""
    cli = argparse.ArgumentParser(prog="python -m lifecycle.publish")
    cli.add_argument("labs", nargs="*", metavar="lab", help=f"any of: {', '.join(STAGES)}")
    cli.add_argument("--jobs", type=int, default=1, help="labs run at once (default 1)")
    args = cli.parse_args(argv)
    unknown = [lab for lab in args.labs if lab not in STAGES]
    if unknown:
        cli.error(f"unknown lab(s) {', '.join(unknown)}; choose from {', '.join(STAGES)}")
    labs = sorted(args.labs or STAGES, key=list(STAGES).index)
    start, done = time.perf_counter(), {}

    def task(lab: str) -> None:
        for up in (*STAGES[lab].needs, *READS.get(lab, ())):
            if up in done:
                done[up].result()  # re-raises an upstream failure
        publish(lab)

    with ThreadPoolExecutor(max(1, args.jobs)) as pool:
        for lab in labs:
            if lab not in SOLO:
                done[lab] = pool.submit(task, lab)
    for future in done.values():
        future.result()
    for lab in labs:
        if lab in SOLO:
            publish(lab)
    print(f"published {len(labs)} lab(s) in {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
