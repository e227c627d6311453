"""pytest plugin (`-p fences` in pyproject.toml), so it also applies when only docs/ is collected.

A fence that includes a file (`--8<--`) is not Python: the included file runs whole elsewhere
(tests/test_labs.py runs every lab), so pytest-codeblocks must not exec the include line.
"""

import re

import pytest

INCLUDE = re.compile(r"--8<--")


def pytest_collection_modifyitems(items):
    for item in items:
        block = getattr(item, "obj", None)
        if type(block).__name__ == "CodeBlock" and INCLUDE.search(block.code):
            item.add_marker(
                pytest.mark.skip(reason="includes a file that its own test runs whole")
            )
