"""Every page of the built site, in a real browser: no errors, nothing fetched from outside, math
typeset, diagrams drawn, no serious accessibility violation, images described and plots captioned,
and code that fits the page.

Each test reads the same session crawl (`visits`), so every page is loaded once.

Code that fits the page: at a 1280-px window, no code block from code/ scrolls sideways. The code
is formatted at 99 characters a line (pyproject.toml, [tool.ruff]) and the stylesheet makes a code
block 101 characters wide at 1280 px (docs/assets/stylesheets/extra.css). The crawl measures every
block (conftest.py, `CODE_BLOCKS`: collapsed boxes opened, every tab shown), so the check costs no
page load of its own, well under a second. A block comes from code/ when it is on a notebook page
(each is a script of code/labs, cell by cell) or when every line of it is a line of one file under
code/ (a section a page includes).
"""

import re

import pytest

from conftest import ROOT
from test_docs import INCLUDE, fences, markdown_files

# measured ~1 MB for a page without diagrams, ~4.5 MB with mermaid; margin for noise
MAX_PAGE_BYTES = 8_000_000


def failures(visits, check) -> list[str]:
    return [f"{page}: {problem}" for page, seen in visits.items() for problem in check(seen)]


def test_every_page_was_visited(visits):
    assert "index.html" in visits and "labs/pretrain.html" in visits
    assert len(visits) >= 10


def test_no_console_errors(visits):
    problems = failures(visits, lambda seen: seen["errors"])
    assert not problems, "\n".join(problems)


def test_no_request_leaves_the_site(visits):
    problems = failures(visits, lambda seen: [f"fetched {url}" for url in seen["outside"]])
    assert not problems, "\n".join(problems)


def test_math_is_typeset(visits):
    def check(seen):
        if seen["math_typeset"] < seen["math"]:
            yield f"{seen['math'] - seen['math_typeset']} of {seen['math']} formulas not typeset"
        for message in seen["math_errors"]:
            yield f"KaTeX error: {message}"

    problems = failures(visits, check)
    assert not problems, "\n".join(problems)
    assert sum(seen["math_typeset"] for seen in visits.values()) > 0, (
        "no page has math: is KaTeX wired up?"
    )


def test_diagrams_are_drawn_as_svg(visits):
    def check(seen):
        if seen["diagrams_drawn"] != seen["expected_diagrams"]:
            yield (
                f"{seen['diagrams_drawn']} of {seen['expected_diagrams']} mermaid diagrams "
                "drawn as SVG"
            )
        if seen["diagram_errors"]:
            yield f"{seen['diagram_errors']} diagrams show a mermaid syntax error"

    problems = failures(visits, check)
    assert not problems, "\n".join(problems)
    assert visits["index.html"]["diagrams_drawn"] >= 1, (
        "the home page's lifecycle diagram is not drawn"
    )


def test_no_serious_accessibility_violations(visits):
    def check(seen):
        for v in seen["violations"]:
            where = ", ".join(v["where"])
            yield f"axe {v['impact']} {v['id']} ({v['help']}) x{v['count']}: {where}"

    problems = failures(visits, check)
    assert not problems, "\n".join(problems)


def test_images_have_alt_text_and_plots_captions(visits):
    def check(seen):
        for src in seen["images_without_alt"]:
            yield f"image without alt text: {src}"
        for src in seen["plots_without_caption"]:
            yield (
                "plot without a caption (an *italic* paragraph or figcaption right after it): "
                f"{src}"
            )

    problems = failures(visits, check)
    assert not problems, "\n".join(problems)


def test_page_weight_budget(visits):
    sizes = {page: seen["bytes"] for page, seen in visits.items()}
    heaviest = max(sizes, key=sizes.get)
    print(f"largest page transfer: {heaviest} {sizes[heaviest] / 1e6:.2f} MB")
    assert sizes[heaviest] <= MAX_PAGE_BYTES, (
        f"{heaviest} transfers {sizes[heaviest] / 1e6:.1f} MB"
    )
    assert all(size > 0 for size in sizes.values()), (
        "a page transferred nothing: is the size measured?"
    )


# Code that fits the page (see the module docstring).
CODE = ROOT / "code"
ANNOTATION = re.compile(r"\s*#\s*\(\d+\)!?\s*$")


def lines_of(text: str) -> list[str]:
    """Non-blank lines, stripped, without a code annotation's marker comment (`# (1)!`)."""
    return [ANNOTATION.sub("", line).strip() for line in text.splitlines() if line.strip()]


def code_files() -> dict[str, set[str]]:
    files = [p for p in CODE.rglob("*") if p.suffix in {".py", ".yaml", ".yml", ".sh"}]
    return {str(p.relative_to(ROOT)): set(lines_of(p.read_text())) for p in files}


def source(page: str, text: str, files: dict[str, set[str]]) -> str | None:
    """The file under code/ a block shows, or None when it is not from code/."""
    if m := re.fullmatch(r"notebooks/(\w+)\.html", page):
        return f"code/labs/{m.group(1)}.py"
    lines = lines_of(text)
    found = [path for path, known in files.items() if lines and all(x in known for x in lines)]
    return found[0] if found else None


@pytest.fixture(scope="module")
def blocks(visits) -> list[dict]:
    """Every code block from code/: page, source file, width and overflow in px, longest line."""
    files = code_files()
    out = []
    for page, seen in visits.items():
        for block in seen["code_blocks"]:
            if path := source(page, block["text"], files):
                longest = max(block["text"].splitlines() or [""], key=len)
                out.append(block | {"page": page, "source": path, "longest": longest})
    return out


def overflowing(blocks) -> list[str]:
    return [
        f"{b['page']}: a block from {b['source']} scrolls {b['overflow']} px "
        f"({len(b['longest'])} characters: {b['longest'].strip()[:60]}...)"
        for b in blocks
        if b["overflow"] > 0
    ]


def test_blocks_from_code_are_found_and_measured(blocks):
    """The check sees what it should: a block per include fence into code/ on the pages (docs/,
    snippets/), a notebook page per lab, and every block laid out (none hidden, width > 0)."""
    into_code = sum(
        1
        for md in markdown_files()
        for _, _, body, _ in fences(md)
        if any((CODE / target.partition(":")[0]).is_file() for target in INCLUDE.findall(body))
    )
    on_pages = [b for b in blocks if not b["page"].startswith("notebooks/")]
    assert len(on_pages) >= into_code > 20, (len(on_pages), into_code)
    labs = {p.stem for p in (CODE / "labs").glob("*.py")}
    assert {b["page"] for b in blocks} >= {f"notebooks/{lab}.html" for lab in labs}
    assert all(b["width"] > 0 for b in blocks), "a block was not laid out (hidden?)"


def test_code_blocks_fit_at_1280_px(blocks):
    problems = overflowing(blocks)
    assert not problems, "\n".join(problems)
