"""The stand-in Hub for the `gpu` presets' tests, and the check that runs the labs against it.

`standin_hub` builds the tiny stand-in once (cached per code fingerprint in the build cache, so the
two test workers and later sessions share it). Only the lab subprocesses see it: their environment
gets `HF_HOME` and the offline variables (`hub_env`), while this process's environment is left
alone, so the rest of the suite stays offline and its "no Hub" tests still see no Hub.
"""

import importlib.util
import sys

import pytest

from conftest import ROOT
from lifecycle.cache import cache_dir, fingerprint

GPU = ROOT / "code" / "gpu"
# check.py imports standin_hub as a sibling, as it does when run as a script
sys.path.insert(0, str(GPU))

import standin_hub  # noqa: E402


def load_check():
    """code/gpu/check.py as a module (`check` alone is too common a name to import by)."""
    spec = importlib.util.spec_from_file_location("gpu_check", GPU / "check.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["gpu_check"] = module  # dataclasses resolve their module by name
    spec.loader.exec_module(module)
    return module


check = load_check()


@pytest.fixture(scope="session")
def standin_hub_home():
    """The tiny stand-in `HF_HOME`: gpt2 (2 layers, the real 50,257-token vocabulary), datasets."""
    return standin_hub.build("tiny")


@pytest.fixture(scope="session")
def hub_env(standin_hub_home) -> dict:
    """The environment for a lab subprocess that should see the stand-in Hub, offline."""
    return standin_hub.hub_env(standin_hub_home)


@pytest.fixture(scope="session")
def gpu_check(standin_hub_home):
    """Runs labs at `--preset gpu` on the CPU (small steps and sizes), each once per code
    fingerprint: the stage folders carry their lab's fingerprint, the folder above carries
    code/gpu's."""
    key = fingerprint(*GPU.glob("*.py"))
    return check.Check(
        cache_dir() / f"gpu-check-tiny-{key}", standin_hub_home, cpu=True, timeout=300
    )
