"""Guards: each fence runs somewhere, each code file and section is on a page, strict builds."""

import re
from pathlib import Path

from conftest import ROOT

DOCS = ROOT / "docs"
CODE = ROOT / "code"
RUNNABLE = {"python", "bash", "sh"}
# diagrams (drawn in the browser) and plain text such as command synopses
NOT_CODE = {"mermaid", "text"}
FENCE = re.compile(r"^(\s*)(`{3,})(.*)$")
SKIP = re.compile(r"<!--\s*pytest\.mark\.skip(if)?\((.*)\)\s*-->")
INCLUDE = re.compile(r'--8<--\s+"([^"]+)"')
SECTION = re.compile(r"#\s*--8<--\s*\[start:([\w-]+)\]")


def markdown_files():
    return sorted([*DOCS.rglob("*.md"), *(ROOT / "snippets").rglob("*.md")])


def fences(path: Path):
    """(line number, label, body, the nearest non-blank line before the fence)."""
    lines = path.read_text().splitlines()
    i, prev = 0, ""
    while i < len(lines):
        m = FENCE.match(lines[i])
        if m:
            ticks, label, start = m.group(2), m.group(3), i
            body = []
            i += 1
            while i < len(lines) and not lines[i].strip().startswith(ticks):
                body.append(lines[i])
                i += 1
            yield start + 1, label, "\n".join(body), prev
            prev = ""
        elif lines[i].strip():
            prev = lines[i].strip()
        i += 1


def test_every_fence_runs_or_says_why_not():
    problems = []
    for path in markdown_files():
        for lineno, label, body, prev in fences(path):
            where = f"{path.relative_to(ROOT)}:{lineno}"
            includes = INCLUDE.search(body)
            if label.strip() != label or (label and label not in RUNNABLE | NOT_CODE):
                if not (includes and label.split()[0] in ("python", "yaml", "toml", "json")):
                    problems.append(
                        f"{where}: fence label {label!r} runs nowhere (use bare python/bash)"
                    )
                continue
            if not label:
                problems.append(f"{where}: unlabelled fence")
            elif label in RUNNABLE and not includes:
                skip = SKIP.search(prev)
                if skip and "reason=" not in skip.group(2):
                    problems.append(f"{where}: skipped without a reason")
    assert not problems, "\n".join(problems)


def test_pip_lines_pin_what_pyproject_pins():
    """A reader in a GPU session installs with the pages' `pip install` lines, not `make install`
    (Python 3.11 only). Each `name==version` they give is pyproject.toml's pin, and the labs
    index's GPU check, which runs every lab, installs every runtime pin (trl 1.12.0 above all: the
    last TRL with PPOTrainer). Costs well under a second."""
    import tomllib

    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    pins = dict(re.match(r"([\w-]+)==([\w.]+)", d).groups() for d in deps)
    problems, gpu_check = [], None
    for path in markdown_files():
        for lineno, label, body, _ in fences(path):
            command = body.replace("\\\n", " ")
            if label != "bash" or "pip install" not in command:
                continue
            given = dict(re.findall(r"([\w-]+)==([\w.]+)", command))
            for name, version in given.items():
                if pins.get(name, version) != version:
                    problems.append(
                        f"{path.relative_to(ROOT)}:{lineno}: {name}=={version}, "
                        f"pyproject.toml pins {pins[name]}"
                    )
            if path == DOCS / "labs" / "index.md":
                gpu_check = given
    assert not problems, "\n".join(problems)
    assert gpu_check == pins, "docs/labs/index.md's GPU check must install every pin"


def included():
    files, sections = set(), set()
    for path in markdown_files():
        for target in INCLUDE.findall(path.read_text()):
            file, _, section = target.partition(":")
            (sections.add((file, section)) if section else files.add(file))
    return files, sections


def code_files():
    """Every file a reader runs or configures; not the data the site build reads (site/data)."""
    return sorted(
        p
        for p in CODE.rglob("*")
        if p.is_file()
        and p.suffix in {".py", ".yaml", ".yml", ".sh", ".json"}
        and p.name != "__init__.py"
        and "__pycache__" not in p.parts
        and ".egg-info" not in str(p)
        and CODE / "site" / "data" not in p.parents
    )


def test_every_code_file_and_section_is_on_a_page():
    files, sections = included()
    shown = files | {f for f, _ in sections}
    problems = []
    for p in code_files():
        rel = str(p.relative_to(CODE))
        if rel not in shown:
            problems.append(f"code/{rel} is included by no page")
        for name in SECTION.findall(p.read_text()):
            if (rel, name) not in sections:
                problems.append(f"code/{rel}: section [{name}] is included by no page")
    assert not problems, "\n".join(problems)


def test_site_builds_strict_and_fast(built_site):
    """`mkdocs build --strict` passes (the session's shared build asserts it) within 15 CPU
    seconds: CPU time, not wall time, so that busy neighbours on the machine do not count."""
    seconds = float((built_site / ".build-seconds").read_text())
    print(f"mkdocs build --strict: {seconds:.1f} CPU s")
    assert seconds <= 15
