"""The package's shape: `code/lifecycle` holds what runs a lab; it imports no site or test code."""

import ast

from conftest import ROOT

PACKAGE = ROOT / "code" / "lifecycle"
OUTSIDE = {p.stem for p in (ROOT / "code" / "site").glob("*.py")} | {
    p.stem for p in (ROOT / "tests").rglob("*.py")
}


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
                problems.append(
                    f"{rel} names {folder}: "
                    "the package must not read the site's or the tests' files"
                )
    assert not problems, "\n".join(problems)


def stages_run_by(lab: str) -> set[str]:
    """The earlier stages a lab calls for: ensure_stage("x"), stage_model("x"), base_model()."""
    found = set()
    for node in ast.walk(ast.parse((ROOT / "code" / "labs" / f"{lab}.py").read_text())):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            if node.func.id in ("ensure_stage", "stage_model") and isinstance(
                node.args[0], ast.Constant
            ):
                found.add(node.args[0].value)
            elif node.func.id == "base_model":
                found.add("pretrain")
    return found


def test_stage_graph_is_declared_and_true():
    """STAGES lists every lab script once, in an order where each lab comes after what it needs,
    and each lab's `needs` are exactly the stages its script runs (so fingerprints and the diagram
    tell the truth)."""
    from lifecycle.stages import STAGES

    assert set(STAGES) == {
        p.stem for p in (ROOT / "code" / "labs").glob("*.py") if not p.stem.startswith("_")
    }
    order = list(STAGES)
    for lab, stage in STAGES.items():
        assert all(order.index(up) < order.index(lab) for up in stage.needs), lab
        assert set(stage.needs) == stages_run_by(lab), (
            f"{lab}: STAGES says {stage.needs}, the script runs {stages_run_by(lab)}"
        )


def test_fingerprint_covers_the_lab_its_package_modules_and_earlier_stages():
    from lifecycle.stages import sources

    files = {str(p.relative_to(ROOT / "code")) for p in sources("ppo")}
    assert {"labs/ppo.py", "labs/sft.py", "labs/reward.py", "labs/pretrain.py"} <= files
    assert {
        "lifecycle/rlhf.py",
        "lifecycle/evaluation.py",
        "lifecycle/world/tasks.py",
    } <= files  # transitive too
    assert "labs/dpo.py" not in files and "lifecycle/memory.py" not in files


def test_labs_index_draws_the_graph():
    import hooks
    from lifecycle.stages import STAGES

    graph = hooks.stage_graph()
    assert graph.startswith("```mermaid\nflowchart LR")
    for lab, stage in STAGES.items():
        assert f'{lab}["{stage.title}"]' in graph and stage.shows in graph
        assert all(f"{up} --> {lab}" in graph for up in stage.needs)


def test_labs_nav_puts_the_labs_between_the_index_and_other_pages():
    """mkdocs.yml lists the index and the pages that are not labs; the hook puts the labs, in
    STAGES order, right after the index, and the notebooks last."""
    import yaml

    import hooks
    from lifecycle.stages import STAGES

    # tags read as plain text
    config = yaml.load((ROOT / "mkdocs.yml").read_text(), Loader=yaml.BaseLoader)
    (listed,) = [
        item["Labs"] for item in config["nav"] if isinstance(item, dict) and "Labs" in item
    ]
    assert listed[0] == "labs/index.md" and {"Bring your own data": "labs/your-data.md"} in listed
    nav = hooks.labs_nav(listed)
    assert nav[: len(STAGES) + 1] == [
        "labs/index.md",
        *({s.title: f"labs/{lab}.md"} for lab, s in STAGES.items()),
    ]
    assert nav[len(STAGES) + 1 : -1] == listed[1:] and list(nav[-1]) == ["Notebooks"]


def test_code_files_ruff_does_not_read_fit_the_line_length():
    """ruff checks the Python (make lint); the other files the pages include (accelerate configs,
    shell scripts) keep to the same line length, so that they fit a code block too. Cost: ms."""
    import tomllib

    from test_docs import code_files

    width = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["ruff"]["line-length"]
    long = [
        f"{p.relative_to(ROOT)}:{n}: {len(line)} characters"
        for p in code_files()
        if p.suffix != ".py"
        for n, line in enumerate(p.read_text().splitlines(), 1)
        if len(line) > width
    ]
    assert not long, "\n".join(long)


def test_a_lab_over_250_lines_says_why():
    """A lab reads top to bottom in one sitting: at most 250 lines (at ruff's 99 characters), or
    its docstring says why it needs more."""
    long = []
    for path in sorted((ROOT / "code" / "labs").glob("*.py")):
        text = path.read_text()
        doc = ast.get_docstring(ast.parse(text)) or ""
        if len(text.splitlines()) > 250 and "Longer than the 250 lines a lab aims for:" not in doc:
            long.append(f"{path.name}: {len(text.splitlines())} lines, no reason in its docstring")
    assert not long, "\n".join(long)
