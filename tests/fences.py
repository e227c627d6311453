"""pytest plugin (`-p fences` in pyproject.toml), so it also applies when only docs/ is collected.

A fence that includes a file (`--8<--`) is not Python: the included file runs whole elsewhere
(tests/test_labs.py runs every lab), so pytest-codeblocks must not exec the include line.

A bash fence line that runs a lab at the smoke preset and nothing else,
`python code/labs/<lab>.py --output_dir DIR --preset smoke`, is the command the session's stage
cache runs (`lifecycle.stages.ensure_stage`, seed 0, the default): that line fills DIR with a copy
of the cached run, built once per code fingerprint and shared with every test that needs it, and
the rest of the fence runs as written. It saves a smoke run per such fence (7 to 15 CPU s each).
"""

import re
import shutil

import pytest

INCLUDE = re.compile(r"--8<--")
SMOKE_RUN = re.compile(
    r"^(\s*)python code/labs/(\w+)\.py --output_dir (\S+) --preset smoke( > /dev/null 2>&1)?$",
    re.M,
)
REUSED = pytest.StashKey[list]()


def pytest_collection_modifyitems(items):
    for item in items:
        block = getattr(item, "obj", None)
        if type(block).__name__ != "CodeBlock":
            continue
        if INCLUDE.search(block.code):
            item.add_marker(
                pytest.mark.skip(reason="includes a file that its own test runs whole")
            )
        elif block.syntax in ("bash", "sh") and SMOKE_RUN.search(block.code):
            item.stash[REUSED] = [(m[1], m[2]) for m in SMOKE_RUN.findall(block.code)]
            block.code = SMOKE_RUN.sub(
                lambda m: f"{m[1]}# copied from the session's cached smoke stage: {m[0].strip()}",
                block.code,
            )


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    from lifecycle.stages import ensure_stage

    for lab, out in item.stash.get(REUSED, []):
        shutil.rmtree(out, ignore_errors=True)
        shutil.copytree(ensure_stage(lab, "smoke"), out)
