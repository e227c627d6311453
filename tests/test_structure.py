"""The package's shape: `code/lifecycle` holds only what runs a lab, and imports nothing from the site or the tests."""

import ast

from conftest import ROOT

PACKAGE = ROOT / "code" / "lifecycle"
OUTSIDE = {p.stem for p in (ROOT / "code" / "site").glob("*.py")} | {p.stem for p in (ROOT / "tests").rglob("*.py")}


def imported_modules(path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            names.add(node.module)
    return names


def test_lifecycle_imports_nothing_from_site_or_tests():
    """Cost: parses about 20 files, well under a second."""
    problems = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(ROOT)
        for name in imported_modules(path):
            if name.split(".")[0] in OUTSIDE | {"tests", "site", "conftest"}:
                problems.append(f"{rel} imports {name}")
        text = path.read_text()
        for folder in ('"tests"', '"site"', "tests/", "code/site"):
            if folder in text:
                problems.append(f"{rel} names {folder}: the package must not read the site's or the tests' files")
    assert not problems, "\n".join(problems)
