"""Every lab in code/labs runs at the smoke preset and writes metrics.json; each has a lesson test.

Labs are found by glob, never by a hand list: a new lab is tested the moment it exists.
"""

import pytest

from conftest import LABS, ROOT
from lifecycle.stages import depth

LAB_NAMES = sorted(p.stem for p in LABS.glob("*.py") if not p.stem.startswith("_"))
# the longest stage chain first, so the other test worker can build the shorter ones meanwhile
BY_CHAIN = sorted(LAB_NAMES, key=lambda lab: (-depth(lab), lab))


def test_labs_exist():
    assert "pretrain" in LAB_NAMES


@pytest.mark.parametrize("lab", BY_CHAIN)
def test_lab_runs_at_smoke(lab, lab_metrics):
    metrics = lab_metrics(lab)
    assert len(metrics) > 1
    for key, value in metrics.items():
        assert isinstance(value, (int, float, str, list, bool)), f"{lab}: {key} is not flat"


@pytest.mark.parametrize("lab", LAB_NAMES)
def test_lab_has_lesson_test_and_page(lab):
    """Each lab's lesson direction is asserted in tests/labs/test_<lab>.py, and a page shows it."""
    assert (ROOT / "tests" / "labs" / f"test_{lab}.py").exists()
    assert (ROOT / "docs" / "labs" / f"{lab}.md").exists()


@pytest.mark.parametrize("lab", LAB_NAMES)
def test_lab_has_docstring_command(lab):
    source = (LABS / f"{lab}.py").read_text()
    assert f"python code/labs/{lab}.py" in source.split('"""')[1], (
        "docstring must show the exact command"
    )
    assert 'if __name__ == "__main__":' in source
