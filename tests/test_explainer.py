"""The explainer covers the course card: every concept and § reference resolves to a heading on the
built site, every trap sits in its section, every section page has its ELI5, recap and computed
example, and the generated tables are fresh."""

import re
from html.parser import HTMLParser

import pytest
import yaml

from conftest import ROOT

DOCS = ROOT / "docs"
CARD = yaml.safe_load((ROOT / "code/site/data/card.yaml").read_text())
ANCHORS = yaml.safe_load((ROOT / "tests/data/concept_anchors.yaml").read_text())
PAGES = sorted((DOCS / "explainer").glob("[1-6]-*.md"))


def text_of(item) -> str:
    """The card's items as written. An unquoted `- Title: rest` item parses as a one-key dict."""
    return item if isinstance(item, str) else " ".join(f"{k}: {v}" for k, v in item.items())


def targets(value) -> list[str]:
    return value if isinstance(value, list) else [value]


def section_refs(ref: str) -> list[str]:
    """'§4.1-4.2' -> ['4.1', '4.2']; '§2.3' -> ['2.3']."""
    start, _, end = ref.lstrip("§").partition("-")
    return [start] + ([end] if end else [])


class _Ids(HTMLParser):
    def __init__(self):
        super().__init__()
        self.ids: set[str] = set()

    def handle_starttag(self, tag, attrs):
        self.ids.update(v for k, v in attrs if k == "id" and v)


@pytest.fixture(scope="module")
def site_ids(built_site) -> dict[str, set[str]]:
    """Element ids of every built page, by its source path under docs/ (explainer/3-sft.md)."""
    out = built_site
    ids = {}
    for md in DOCS.rglob("*.md"):
        rel = md.relative_to(DOCS)
        # use_directory_urls: false gives explainer/3-sft.html; true would give
        # explainer/3-sft/index.html
        html = out / rel.with_suffix(".html")
        if not html.exists():
            html = out / rel.with_suffix("") / "index.html"
        if html.exists():
            parser = _Ids()
            parser.feed(html.read_text())
            ids[str(rel)] = parser.ids
    return ids


def resolves(target: str, site_ids) -> bool:
    page, _, anchor = target.partition("#")
    return anchor in site_ids.get(page, set())


def test_anchor_data_covers_the_card_exactly():
    assert sorted(ANCHORS["concept_anchors"]) == sorted(map(text_of, CARD["concepts"]))
    assert sorted(ANCHORS["trap_anchors"]) == sorted(map(text_of, CARD["traps"]))
    assert len(CARD["concepts"]) == 19 and len(CARD["traps"]) == 6


def test_every_concept_has_a_heading_on_the_site(site_ids):
    missing = [
        f"{c} -> {t}"
        for c, v in ANCHORS["concept_anchors"].items()
        for t in targets(v)
        if not resolves(t, site_ids)
    ]
    assert not missing, "\n".join(missing)


def test_every_section_ref_of_the_card_resolves(site_ids):
    refs = {n for q in CARD["self_check"] for n in section_refs(q["ref"])}
    assert refs <= set(CARD["sections"]), refs - set(CARD["sections"])
    missing = [f"§{n} -> {t}" for n, t in CARD["sections"].items() if not resolves(t, site_ids)]
    assert not missing, "\n".join(missing)
    assert section_refs("§4.1-4.2") == ["4.1", "4.2"]


def section_text(target: str) -> str:
    """The markdown from the heading with this anchor to the next one of its level or higher."""
    page, _, anchor = target.partition("#")
    lines = (DOCS / page).read_text().splitlines()
    in_fence, level_of = False, {}
    # heading levels, outside code fences (a `# comment` is no heading)
    for i, line in enumerate(lines):
        if line.lstrip().startswith("```"):
            in_fence = not in_fence
        elif not in_fence and line.startswith("#"):
            level_of[i] = len(line) - len(line.lstrip("#"))
    start = next(i for i in level_of if lines[i].endswith(f"{{#{anchor}}}"))
    end = next((i for i in level_of if i > start and level_of[i] <= level_of[start]), len(lines))
    return "\n".join(lines[start:end])


def test_each_trap_has_its_admonition_in_its_section():
    for trap, target in ANCHORS["trap_anchors"].items():
        assert '!!! warning "Trap:' in section_text(target), (
            f"no Trap admonition for {trap!r} in {target}"
        )
    found = sum(p.read_text().count('!!! warning "Trap:') for p in PAGES)
    assert found == len(CARD["traps"])


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.stem)
def test_section_page_has_eli5_recaps_and_computed_code(page):
    text = page.read_text()
    before_first_section = text.split("\n## ", 1)[0]
    assert '!!! tip "ELI5"' in before_first_section, "the ELI5 opening comes first"
    recaps = re.findall(r'!!! abstract "Recap"\n((?:    .*\n?)+)', text)
    assert recaps, "no recap box"
    for box in recaps:
        items = [line for line in box.splitlines() if line.startswith("    - ")]
        assert 3 <= len(items) <= 5 and len(box.splitlines()) <= 6, (
            f"a recap box has {len(items)} lines:\n{box}"
        )
    runnable = [
        body
        for label, body in re.findall(r"^```(\w*)\n(.*?)^```", text, re.S | re.M)
        if label == "python" and "--8<--" not in body
    ]
    assert runnable and all("print(" in body or "assert " in body for body in runnable)
    if not page.stem.startswith("6-"):
        assert "](../labs/" in text, "a section links to the lab that shows it"
    for heading in re.findall(r"^## (\d)\.\d .*$", text, re.M):
        assert heading == page.stem[0]


def test_recap_page_has_models_traps_and_every_concept():
    recap = (DOCS / "recap.md").read_text()
    for model in CARD["mental_models"].values():
        assert model in recap, model
    for trap in map(text_of, CARD["traps"]):
        assert trap in recap, trap
    for concept, value in ANCHORS["concept_anchors"].items():
        for target in targets(value):
            assert f"]({target})" in recap, f"the recap has no line linking {target} ({concept})"
    assert (
        "{#prerequisites-and-connections}" in recap
        and "recap.md#prerequisites-and-connections" in (DOCS / "index.md").read_text()
    )


def test_at_a_glance_has_every_stage_and_column():
    table = (DOCS / "at-a-glance.md").read_text()
    header = next(line for line in table.splitlines() if line.startswith("| stage"))
    for column in ("objective", "data", "loss", "cost", "when to stop"):
        assert column in header
    for stage in ("Curation", "Pretraining", "SFT", "Reward model", "PPO", "DPO", "GRPO"):
        assert re.search(rf"^\| \[[^\]]*{stage}", table, re.M), stage


def test_generated_tables_are_fresh():
    from lifecycle import tables

    for name, make in tables.TABLES.items():
        path = ROOT / "snippets" / "explainer" / f"{name}.md"
        assert path.read_text() == make(), f"{path} is stale: run `python -m lifecycle.tables`"


def test_zero_table_matches_the_paper():
    """ZeRO's Figure 1: 7.5B parameters, 64 GPUs -> 120, 31.4, 16.6 and 1.9 GB per GPU."""
    from lifecycle.memory import model_states

    per_gpu = [round(model_states(7.5e9, gpus=64, zero_stage=s).total / 1e9, 1) for s in range(4)]
    assert per_gpu == [120.0, 31.4, 16.6, 1.9]
