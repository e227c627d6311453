"""Shared test setup: offline, one CPU thread per process, a session cache of lab runs, and the
helpers every lab test uses (run a lab, its one-line error, its module, its metrics without the
timings)."""

import contextlib
import fcntl
import importlib.util
import io
import json
import os
import resource
import subprocess
import sys
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ["TOKENIZERS_PARALLELISM"] = "false"
os.environ["NO_MKDOCS_2_WARNING"] = "1"

ROOT = Path(__file__).resolve().parent.parent
LABS = ROOT / "code" / "labs"


def run_lab(
    lab: str, *args: str, check: bool = True, here: bool = False
) -> subprocess.CompletedProcess:
    """Run `code/labs/<lab>.py` in a fresh process, as a reader would.

    `here=True` runs it in this process instead (`run(main)` on these arguments, stderr captured):
    for bad input that stops before any training, it saves the ~5 CPU s a fresh interpreter spends
    importing torch and transformers. It cannot see what only a new process prints (an import-time
    warning), so each lab keeps one bad-input case in a fresh process."""
    if here:
        return _run_here(lab, args)
    cmd = [sys.executable, str(LABS / f"{lab}.py"), *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    if check and proc.returncode != 0:
        raise AssertionError(f"{lab} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return proc


def _run_here(lab: str, args) -> subprocess.CompletedProcess:
    from lifecycle.cli import run

    module, argv, cwd, err = load_lab(lab), sys.argv, os.getcwd(), io.StringIO()
    sys.argv, code = [str(LABS / f"{lab}.py"), *args], 0
    os.chdir(ROOT)
    try:
        with contextlib.redirect_stderr(err):
            run(module.main)
    except SystemExit as e:
        code = e.code
    finally:
        sys.argv = argv
        os.chdir(cwd)
    return subprocess.CompletedProcess(sys.argv, code, "", err.getvalue())


def error_line(proc: subprocess.CompletedProcess) -> str:
    """Bad input's contract: exit code 2 and exactly one line on stderr, which is returned."""
    assert proc.returncode == 2, proc.stderr[-2000:]
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr[-2000:]
    return lines[0]


def load_lab(lab: str):
    """`code/labs/<lab>.py` as a module (its `main` does not run), to test its helpers directly."""
    spec = importlib.util.spec_from_file_location(f"{lab}_lab", LABS / f"{lab}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def comparable(metrics: dict, noisy: tuple[str, ...] = ()) -> dict:
    """Metrics two same-seed runs must agree on: all but the timings (keys ending `_seconds` or
    `_per_second`), the fixture's own `_dir`, and the `noisy` keys a lab derives from timings."""
    from lifecycle.cli import TIMING_SUFFIXES

    return {
        k: v
        for k, v in metrics.items()
        if not k.endswith(TIMING_SUFFIXES) and not k.startswith("_") and k not in noisy
    }


_runs: dict[tuple[str, str], dict] = {}


@pytest.fixture(scope="session")
def lab_metrics():
    """`lab_metrics(lab)`: the lab's metrics at the smoke preset, run once per session (cached)."""
    from lifecycle.stages import ensure_stage

    def get(lab: str, preset: str = "smoke") -> dict:
        if (lab, preset) not in _runs:
            out = ensure_stage(lab, preset)
            _runs[lab, preset] = json.loads((out / "metrics.json").read_text()) | {
                "_dir": str(out)
            }
        return _runs[lab, preset]

    return get


@pytest.fixture(scope="session")
def built_site(tmp_path_factory) -> Path:
    """The site, built once per test session by `mkdocs build --strict` (timed) and shared by every
    test that reads it, across the xdist workers too: the first worker builds it under a lock, the
    others wait and reuse it. Cost: one build, about 5 CPU seconds (each of four test files used to
    build its own). `.build-seconds` in the folder holds the build's CPU seconds (user + system):
    on the shared 2-core machine its wall time mostly measures the neighbours."""
    shared = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        shared = shared.parent  # the session's folder, above each worker's own
    out = shared / "built-site" / "site"
    with open(shared / "built-site.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (out / ".build-seconds").exists():
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            proc = subprocess.run(
                [sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(out)],
                cwd=ROOT,
                capture_output=True,
                text=True,
            )
            assert proc.returncode == 0, proc.stderr[-4000:]
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
            (out / ".build-seconds").write_text(f"{cpu}")
    return out
