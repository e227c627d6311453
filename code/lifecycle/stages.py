"""The lifecycle as a declared graph, and earlier stages on demand.

`STAGES` names every lab in lifecycle order, with its title and the earlier labs whose outputs it
runs (`needs`). The site draws the labs index, its diagram and the nav from it; the cache
fingerprints a lab's outputs by the files it depends on. A lab that needs the base model finds it
in the cache or pretrains it, so any lab runs alone on a fresh clone: the first one pays for
pretraining, the rest reuse it.

This module imports only the standard library at load time, so the site build can read `STAGES`
cheaply.
"""

import ast
import json
import os
import shutil
import subprocess
import sys
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from pathlib import Path

try:
    import fcntl
except ImportError:  # Windows: no lock, a stage may be built twice
    fcntl = None

from .cache import PACKAGE, ROOT, cache_dir, fingerprint

LABS = ROOT / "code" / "labs"


# --8<-- [start:graph]
@dataclass(frozen=True)
class Stage:
    title: str  # the nav title
    shows: str  # one line for the labs index
    needs: tuple[
        str, ...
    ] = ()  # earlier labs whose outputs this lab runs (via ensure_stage / stage_model)


STAGES = {  # lifecycle order: the nav and the labs index follow it
    "pretrain": Stage(
        "GPT-2 from scratch", "next-token pretraining: validation perplexity before and after"
    ),
    "curation": Stage(
        "Data curation", "dedup, filters, mixing and contamination, and what each costs the model"
    ),
    "sft": Stage(
        "SFT",
        "the opening failure, fixed: a base model continues text, an SFT model answers",
        ("pretrain",),
    ),
    "chat_template": Stage(
        "Chat templates", "the same model with the right, missing and wrong template", ("sft",)
    ),
    "forgetting": Stage(
        "Forgetting", "narrow fine-tuning erases broad skill; replay brings it back", ("sft",)
    ),
    "reward": Stage("Reward model", "Bradley–Terry on chosen / rejected pairs", ("sft",)),
    "ppo": Stage(
        "PPO", "reward on a leash: a KL sweep against a flawed reward model", ("sft", "reward")
    ),
    "grpo": Stage(
        "GRPO",
        "a program as the reward, the group as the baseline: RL as TRL does it now",
        ("sft",),
    ),
    "dpo": Stage("DPO", "preferences without a judge, and β's real direction", ("sft",)),
    "memory": Stage("Memory", "the memory calculator, proven against measured bytes"),
    "parallelism": Stage(
        "Parallelism", "data, tensor, pipeline and sharded parallelism on two CPU processes"
    ),
    "mechanics": Stage("Mechanics", "warmup, precision, accumulation, checkpointing and resume"),
}
# --8<-- [end:graph]


def depth(lab: str) -> int:
    """How many earlier stages a lab's run waits for along its longest chain (pretrain: 0, sft: 1,
    ppo: 3, as ppo needs reward, which needs sft)."""
    return max((1 + depth(up) for up in STAGES[lab].needs), default=0)


def _module_file(dotted: str) -> Path | None:
    """`lifecycle.world.tasks` -> code/lifecycle/world/tasks.py (a package: its __init__.py)."""
    parts = dotted.split(".")
    if parts[0] != PACKAGE.name:
        return None
    base = PACKAGE.joinpath(*parts[1:])
    for f in (base.with_suffix(".py"), base / "__init__.py"):
        if f.exists():
            return f
    return None


def _imports(path: Path) -> set[Path]:
    """The package files that `path` imports (absolute and relative), read from its syntax tree."""
    here = (
        path.relative_to(PACKAGE.parent).with_suffix("").parts[:-1]
        if PACKAGE in path.parents
        else ()
    )
    files = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            modules = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module.split(".") if node.module else []
            if node.level:  # `from .x import y`: relative to this file's package
                base = [*here[: len(here) - node.level + 1], *base]
            dotted = ".".join(base)
            # `from pkg import module` names a file
            modules = [dotted, *(f"{dotted}.{a.name}" for a in node.names)]
        else:
            continue
        files |= {f for f in map(_module_file, modules) if f is not None}
    return files


@cache
def sources(lab: str) -> frozenset[Path]:
    """The files a lab's results depend on: the script, the package modules it imports
    (transitively), and the sources of the earlier stages it needs (`STAGES[lab].needs`)."""
    todo, seen = [LABS / f"{lab}.py"], set()
    while todo:
        f = todo.pop()
        if f not in seen:
            seen.add(f)
            todo += _imports(f)
    for up in STAGES[lab].needs:
        seen |= sources(up)
    return frozenset(seen)


def stage_path(lab: str, preset: str, seed: int = 0) -> Path:
    """The cached output folder of a lab run; its name changes when the code behind it changes."""
    return cache_dir() / f"{lab}-{preset}-s{seed}-{fingerprint(*sources(lab))}"


def ensure_stage(lab: str, preset: str, seed: int = 0) -> Path:
    """Run `code/labs/<lab>.py` once for this preset and seed, and return its output folder.

    Processes that need the same missing stage at once (two test workers, two labs started side by
    side) build it once: the first builds, the others wait for it."""
    path = stage_path(lab, preset, seed)
    if (path / "metrics.json").exists():
        return path
    with _locked(cache_dir() / "locks" / f"{path.name}.lock"):
        if (path / "metrics.json").exists():  # built while this process waited
            return path
        tmp = path.with_name(f"{path.name}.tmp{os.getpid()}")
        shutil.rmtree(tmp, ignore_errors=True)
        cmd = [
            sys.executable,
            str(LABS / f"{lab}.py"),
            "--output_dir",
            str(tmp),
            "--preset",
            preset,
            "--seed",
            str(seed),
        ]
        subprocess.run(cmd, check=True)
        try:
            tmp.rename(path)
        except OSError:  # without a lock, another process may have finished it first: keep theirs
            shutil.rmtree(tmp, ignore_errors=True)
    return path


@contextmanager
def _locked(path: Path):
    """An exclusive lock on `path` for the duration (none where fcntl is missing: Windows)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as f:
        if fcntl:
            fcntl.flock(f, fcntl.LOCK_EX)
        yield


def stage_model(lab: str, preset: str, seed: int = 0, name: str = "model") -> str:
    """The folder `<name>` of an earlier stage's output, running that stage first if needed.

    A stage that fails is one line (exit 2) naming the script to run on its own to see why."""
    from .cli import LabError  # here, not at the top: importing the CLI loads transformers

    try:
        return str(ensure_stage(lab, preset, seed) / name)
    except subprocess.CalledProcessError:
        raise LabError(
            f"the {lab} stage failed at --preset {preset}; "
            f"run code/labs/{lab}.py --preset {preset} to see why"
        ) from None


def check_model(preset: str, seed: int = 0) -> str:
    """A model with the tokenizer and context length the SFT stage's model will have, to check a
    reader's file against before that stage runs: at an offline preset the pretraining stage's
    model (SFT keeps its base's tokenizer and context; that stage is seconds at smoke, where the
    SFT stage is a minute), at the gpu preset the SFT stage's own."""
    if preset in ("smoke", "lesson"):
        return str(base_model(preset, seed))
    return stage_model("sft", preset, seed)


def base_model(preset: str, seed: int = 0) -> Path:
    """The pretrained base model (a `save_pretrained` folder) for an offline preset."""
    return ensure_stage("pretrain", preset, seed) / "model"


def cached_results(lab: str, preset: str, seed: int = 0) -> dict | None:
    """An earlier run's `metrics.json` and `memory.json`, when that run is already in the cache for
    this preset and seed; else None. It never runs the lab: a table that compares labs shows what
    exists."""
    path = stage_path(lab, preset, seed)
    if not (path / "metrics.json").exists():
        return None
    extra = path / "memory.json"
    return json.loads((path / "metrics.json").read_text()) | (
        json.loads(extra.read_text()) if extra.exists() else {}
    )
