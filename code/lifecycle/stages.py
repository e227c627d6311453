"""Earlier stages on demand: a lab that needs the base model finds it in the cache or pretrains it.

So any lab runs alone on a fresh clone; the first one pays for pretraining, the rest reuse it.
"""

import json
import os
import re
import shutil
import subprocess
import sys
from functools import cache
from pathlib import Path

from .cache import PACKAGE, ROOT, cache_dir, fingerprint
from .cli import LabError

LABS = ROOT / "code" / "labs"


IMPORT = re.compile(r"lifecycle\.([a-z_]+)|from lifecycle import ([a-z_, ]+)|from \.([a-z_]+) import")
UPSTREAM = re.compile(r"""(?:ensure_stage|stage_model)\(\s*["'](\w+)["']|(base_model)\(""")


def _module_files(path: Path) -> set[Path]:
    files = set()
    for dotted, listed, relative in IMPORT.findall(path.read_text()):
        base = path.parent if relative else PACKAGE
        for n in [dotted or relative] if (dotted or relative) else [n.strip() for n in listed.split(",")]:
            files |= {base / f"{n}.py"} if (base / f"{n}.py").exists() else set((base / n).glob("*.py"))
    return files


@cache
def sources(lab: str) -> frozenset[Path]:
    """The files a lab's results depend on: the script, the package modules it imports (transitively),
    and the sources of the earlier stages it runs."""
    todo, seen = [LABS / f"{lab}.py"], set()
    while todo:
        f = todo.pop()
        if f not in seen:
            seen.add(f)
            todo += _module_files(f)
    for stage, base in UPSTREAM.findall((LABS / f"{lab}.py").read_text()):
        up = "pretrain" if base else stage
        if up != lab:
            seen |= sources(up)
    return frozenset(seen)


def stage_path(lab: str, preset: str, seed: int = 0) -> Path:
    """The cached output folder of a lab run; its name changes whenever the code behind it changes."""
    return cache_dir() / f"{lab}-{preset}-s{seed}-{fingerprint(*sources(lab))}"


def ensure_stage(lab: str, preset: str, seed: int = 0) -> Path:
    """Run `code/labs/<lab>.py` once for this preset and seed, and return its output folder."""
    path = stage_path(lab, preset, seed)
    if not (path / "metrics.json").exists():
        tmp = path.with_name(f"{path.name}.tmp{os.getpid()}")
        shutil.rmtree(tmp, ignore_errors=True)
        cmd = [sys.executable, str(LABS / f"{lab}.py"), "--output_dir", str(tmp), "--preset", preset, "--seed", str(seed)]
        subprocess.run(cmd, check=True)
        try:
            tmp.rename(path)
        except OSError:  # another process finished the same stage first: keep theirs
            shutil.rmtree(tmp, ignore_errors=True)
    return path


def stage_model(lab: str, preset: str, seed: int = 0, name: str = "model") -> str:
    """The folder `<name>` of an earlier stage's output, running that stage first if needed.

    A stage that fails is one line (exit 2) naming the script to run on its own to see why."""
    try:
        return str(ensure_stage(lab, preset, seed) / name)
    except subprocess.CalledProcessError:
        raise LabError(f"the {lab} stage failed at --preset {preset}; run code/labs/{lab}.py --preset {preset} to see why") from None


def base_model(preset: str, seed: int = 0) -> Path:
    """The pretrained base model (a `save_pretrained` folder) for an offline preset."""
    return ensure_stage("pretrain", preset, seed) / "model"


def cached_results(lab: str, preset: str, seed: int = 0) -> dict | None:
    """An earlier run's `metrics.json` and `memory.json`, when that run is already in the cache for this
    preset and seed; else None. It never runs the lab: a table that compares labs shows what exists."""
    path = stage_path(lab, preset, seed)
    if not (path / "metrics.json").exists():
        return None
    extra = path / "memory.json"
    return json.loads((path / "metrics.json").read_text()) | (json.loads(extra.read_text()) if extra.exists() else {})
