"""The question bank: one YAML source, rendered as question pages, flashcards and an Anki export.

The source is `docs/questions/bank.yaml`. This file is also the MkDocs hook (`hooks:` in
mkdocs.yml) that renders it at build time, so no generated page is committed and nothing goes
stale:

    mkdocs build --strict       # renders everything below, validating the bank
    python code/site/qbank.py   # the same checks from the command line

What it renders:
- `questions/<topic>.md`: one page per topic, one heading (stable anchor = question id) per
  question;
- the index tables (by topic, by difficulty, the card's own questions) into `questions/index.md`;
- `assets/flashcards/deck.json` (the deck the flashcards page drills) and
  `assets/flashcards/lifecycle-deck.tsv` (Anki: File > Import, one note per question);
- the failure → fix cards into `failures.md` and the health checklist into `checklist.md`.

It is site code, not part of the `lifecycle` package: MkDocs loads it by file path. It reads the
course card (`code/site/data/card.yaml`) and imports only the standard library, PyYAML, Markdown
and the stage graph (`lifecycle.stages.STAGES`, for the labs' titles).
"""

import csv
import html
import io
import json
import posixpath
import re
import sys
from pathlib import Path

import markdown
import yaml

from lifecycle.stages import STAGES

ROOT = Path(__file__).resolve().parents[2]
DATA = Path(__file__).resolve().parent / "data"
BANK = ROOT / "docs" / "questions" / "bank.yaml"
CARD = DATA / "card.yaml"
RESULTS = ROOT / "snippets" / "results"
DOCS = ROOT / "docs"

DIFFICULTY = {"🟢": "warm-up", "🟡": "core", "🔴": "hard"}
ANKI_DIFFICULTY = {"🟢": "green", "🟡": "yellow", "🔴": "red"}
ICON = {d: d for d in DIFFICULTY}  # plain text: twemoji shortcodes would load SVGs from a CDN
# in running text: "the data curation lab", "the SFT lab"
LAB_TITLES = {
    lab: s.title if s.title[1:2].isupper() else s.title[0].lower() + s.title[1:]
    for lab, s in STAGES.items()
}
SOURCES = {"self-check", "interview"}
QUESTION_FIELDS = {
    "id",
    "question",
    "topic",
    "difficulty",
    "answer_30s",
    "deeper",
    "common_mistake",
    "follow_ups",
    "links",
}
FAILURE_FIELDS = {
    "id",
    "title",
    "symptom",
    "diagnosis",
    "evidence",
    "fix",
    "regression_check",
    "links",
}
LINK_FIELDS = {"section", "lab", "metric"}
SLUG = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")
SECTION = re.compile(r"^§(\d+\.\d+)(?:[-–](\d+\.\d+))?$")
MARKER = "<!-- qbank:{} -->"
DECK_JSON = "assets/flashcards/deck.json"
DECK_TSV = "assets/flashcards/lifecycle-deck.tsv"
FRAGMENTS = ("questions/index.md", "failures.md", "checklist.md")


def load(bank: Path = BANK, card: Path = CARD) -> tuple[dict, dict]:
    return yaml.safe_load(Path(bank).read_text()), yaml.safe_load(Path(card).read_text())


# --8<-- [start:check]
def check(
    bank: dict,
    card: dict,
    docs: Path = DOCS,
    results: Path | None = None,
    lab_keys: dict | None = None,
) -> list[str]:
    """Every problem in the bank, one line each; [] means valid.

    A § must be one of the card's `sections:`, a lab must have a page, and (when `lab_keys` is
    given) a metric must be a key of the lab's published `results/<lab>.json`, or, before that file
    exists, of the lab's contract key list. `runs.kl_final` names a field of the list `runs`.
    """
    problems, seen = [], set()
    topics = {t["id"] for t in bank.get("topics", [])}
    items = [("question", q, QUESTION_FIELDS) for q in bank.get("questions", [])]
    items += [("failure", f, FAILURE_FIELDS) for f in bank.get("failures", [])]
    for kind, item, required in items:
        where = f"{kind} {item.get('id', '?')!r}"
        missing = required - {k for k, v in item.items() if v not in (None, "", [])}
        extra = set(item) - required - {"source", "note"}
        problems += [f"{where}: missing {k}" for k in sorted(missing)]
        problems += [f"{where}: unknown field {k}" for k in sorted(extra)]
        if not SLUG.match(str(item.get("id", ""))):
            problems.append(f"{where}: id must be a lowercase slug")
        if item.get("id") in seen:
            problems.append(f"{where}: duplicate id")
        seen.add(item.get("id"))
        if kind == "question":
            if item.get("difficulty") not in DIFFICULTY:
                problems.append(
                    f"{where}: difficulty {item.get('difficulty')!r} not in {' '.join(DIFFICULTY)}"
                )
            if item.get("topic") not in topics:
                problems.append(f"{where}: unknown topic {item.get('topic')!r}")
            if "source" in item and item["source"] not in SOURCES:
                problems.append(f"{where}: source must be one of {sorted(SOURCES)}")
            if not isinstance(item.get("follow_ups", []), list):
                problems.append(f"{where}: follow_ups must be a list")
        problems += [
            f"{where}: {p}"
            for p in check_links(item.get("links") or {}, card, docs, results, lab_keys)
        ]
    if sum(bool(f.get("note")) for f in bank.get("failures", [])) != 1:
        problems.append(
            "exactly one failure card must be the worked failure → fix note (note: true)"
        )
    return problems


# --8<-- [end:check]


def check_links(
    links: dict, card: dict, docs: Path, results: Path | None, lab_keys: dict | None
) -> list[str]:
    problems = [f"unknown link field {k}" for k in sorted(set(links) - LINK_FIELDS)]
    try:
        section_targets(links.get("section", ""), card)
    except KeyError as e:
        problems.append(str(e.args[0]))
    lab, metric = links.get("lab"), links.get("metric")
    if lab and not (Path(docs) / "labs" / f"{lab}.md").exists():
        problems.append(f"lab {lab!r} has no page docs/labs/{lab}.md")
    if metric and not lab:
        problems.append(f"metric {metric!r} needs a lab")
    if lab and metric and lab_keys is not None:
        keys = published_keys(results, lab)
        keys = keys if keys is not None else set(lab_keys.get(lab, []))
        if metric not in keys:
            problems.append(f"metric {metric!r} is not a key of lab {lab!r}")
    return problems


def published_keys(results: Path | None, lab: str) -> set[str] | None:
    """Keys of `results/<lab>.json` (`list.field` for lists of dicts); None if not published."""
    path = Path(results or RESULTS) / f"{lab}.json"
    if not path.exists():
        return None
    keys = set()
    for key, value in json.loads(path.read_text()).items():
        keys.add(key)
        if isinstance(value, list) and value and isinstance(value[0], dict):
            keys |= {f"{key}.{field}" for field in value[0]}
    return keys


def section_targets(ref: str, card: dict) -> list[tuple[str, str]]:
    """'§4.1-4.2' -> [('4.1', 'explainer/4-preferences.md#s4-1'), ('4.2', ...)], by the card."""
    m = SECTION.match(str(ref))
    if not m:
        raise KeyError(f"section {ref!r} is not written like §2.3 or §4.1-4.2")
    numbers = [n for n in m.groups() if n]
    missing = [n for n in numbers if n not in card["sections"]]
    if missing:
        raise KeyError(f"section {ref!r}: §{missing[0]} is not in the card's sections")
    return [(n, card["sections"][n]) for n in numbers]


# ----------------------------------------------------------------------------------------------
# rendering


def rel(target: str, page: str) -> str:
    """A docs-relative path ('labs/sft.md#x') as a Markdown link on `page` ('questions/sft.md')."""
    path, _, anchor = target.partition("#")
    out = posixpath.relpath(path, posixpath.dirname(page) or ".")
    return out + (f"#{anchor}" if anchor else "")


def md_html(text: str) -> str:
    return markdown.markdown(str(text).strip(), extensions=["tables"])


def indent(text: str, spaces: int = 4) -> str:
    pad = " " * spaces
    return "\n".join(pad + line if line.strip() else "" for line in str(text).strip().splitlines())


def fmt(value) -> str:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    return str(value) if isinstance(value, int) else f"{value:.4g}"


def learn_see(links: dict, card: dict, page: str, results: Path | None) -> str:
    """'Learn it: §2.3 · See it: the memory lab, metric `x` (measured: 1.2)' as Markdown."""
    targets = section_targets(links["section"], card)
    label = links["section"].replace("-", "–")
    parts = [f"**Learn it:** [{label}]({rel(targets[0][1], page)})"]
    lab, metric = links.get("lab"), links.get("metric")
    if lab:
        see = f"**See it:** [the {LAB_TITLES.get(lab, lab)} lab]({rel(f'labs/{lab}.md', page)})"
        if metric:
            see += f", metric `{metric}`"
            value = published_value(results, lab, metric)
            if value is not None:
                see += f" (measured at the lesson preset: {value})"
        parts.append(see)
    return " · ".join(parts)


def published_value(results: Path | None, lab: str, metric: str) -> str | None:
    path = Path(results or RESULTS) / f"{lab}.json"
    if not path.exists():
        return None
    data = json.loads(path.read_text())
    key, _, field = metric.partition(".")
    value = data.get(key)
    # label each row by its first other key: "kl_coef 0: 3.1; ..."
    if field and isinstance(value, list):
        rows = [row for row in value if isinstance(row, dict) and field in row]
        labels = [
            next((f"{k} {fmt(v)}: " for k, v in row.items() if k != field), "") for row in rows
        ]
        return "; ".join(label + fmt(row[field]) for label, row in zip(labels, rows)) or None
    return fmt(value) if isinstance(value, (int, float)) else None


def topic_page(topic: dict, questions: list[dict], card: dict, results: Path | None) -> str:
    page = f"questions/{topic['id']}.md"
    counts = " · ".join(
        f"{ICON[d]} {sum(q['difficulty'] == d for q in questions)}" for d in DIFFICULTY
    )
    out = [
        f"# {topic['title']}",
        "",
        f"{len(questions)} questions ({counts}). Say your answer out loud, then open the "
        "30-second answer. [All topics and difficulties](index.md) · "
        "[Drill them as flashcards](../flashcards.md)",
        "",
    ]
    origin = {
        "self-check": " · from the card's self-check",
        "interview": " · an interview phrasing from the card",
    }
    for q in questions:
        out += [
            f"## {q['question']} {{#{q['id']}}}",
            "",
            f"{ICON[q['difficulty']]} {DIFFICULTY[q['difficulty']]}"
            f"{origin.get(q.get('source'), '')}",
            "",
            '??? success "30-second answer"',
            "",
            indent(q["answer_30s"]),
            "",
            '??? note "Deeper"',
            "",
            indent(q["deeper"]),
            "",
            '??? warning "Common mistake"',
            "",
            indent(q["common_mistake"]),
            "",
            "**Follow-ups:**",
            "",
            *[f"- {f}" for f in q["follow_ups"]],
            "",
            learn_see(q["links"], card, page, results),
            "",
        ]
    return "\n".join(out)


def question_link(q: dict, page: str) -> str:
    target = "questions/{}.md#{}".format(q["topic"], q["id"])
    return f"[{q['question']}]({rel(target, page)})"


def index_fragment(bank: dict, card: dict) -> str:
    page, qs = "questions/index.md", bank["questions"]
    titles = {t["id"]: t["title"] for t in bank["topics"]}
    levels = " | ".join(f"{ICON[d]} {name}" for d, name in DIFFICULTY.items())
    out = [
        "## By topic",
        "",
        f"| Topic | Questions | {levels} |",
        "|---|--:|" + "--:|" * len(DIFFICULTY),
    ]
    for t in bank["topics"]:
        mine = [q for q in qs if q["topic"] == t["id"]]
        out.append(
            f"| [{t['title']}]({t['id']}.md) | {len(mine)} | "
            + " | ".join(str(sum(q["difficulty"] == d for q in mine)) for d in DIFFICULTY)
            + " |"
        )
    out += ["", "## By difficulty", ""]
    for d, name in DIFFICULTY.items():
        mine = [q for q in qs if q["difficulty"] == d]
        out += [
            f"### {ICON[d]} {name.capitalize()} ({len(mine)}) {{#difficulty-{name}}}",
            "",
            "| Question | Topic | Learn it |",
            "|---|---|---|",
        ]
        out += [
            f"| {question_link(q, page)} | {titles[q['topic']]} "
            f"| {q['links']['section'].replace('-', '–')} |"
            for q in mine
        ]
        out.append("")
    for source, heading in (
        ("self-check", "The card's self-check questions"),
        ("interview", "The card's interview phrasings"),
    ):
        mine = [q for q in qs if q.get("source") == source]
        out += [f"## {heading}", "", "| # | Question | Difficulty |", "|--:|---|:-:|"]
        out += [
            f"| {i} | {question_link(q, page)} | {ICON[q['difficulty']]} |"
            for i, q in enumerate(mine, 1)
        ]
        out.append("")
    return "\n".join(out)


def failures_fragment(bank: dict, card: dict, results: Path | None) -> str:
    page, out = "failures.md", []
    fails = sorted(bank["failures"], key=lambda f: not f.get("note"))
    for i, f in enumerate(fails):
        if f.get("note"):
            out += [
                "## The worked failure → fix note {#worked-note}",
                "",
                "This is the note the card's health check asks you to write, in the §6.1 "
                "vocabulary. Write yours in the same five parts.",
                "",
            ]
        if i == 0 or fails[i - 1].get("note"):
            out += ["## The cards {#cards}", ""] if not f.get("note") else []
        out += [f"### {f['title']} {{#{f['id']}}}", ""]
        for key, label in (
            ("symptom", "Symptom"),
            ("diagnosis", "Diagnosis"),
            ("evidence", "Evidence"),
            ("fix", "Fix"),
            ("regression_check", "Regression check"),
        ):
            out += [f"**{label}.** {str(f[key]).strip()}", ""]
        out += [learn_see(f["links"], card, page, results), ""]
    return "\n".join(out)


def checklist_fragment(bank: dict, card: dict) -> str:
    """The card's nine health-check items as task-list checkboxes; checklist.js keeps them."""
    items = bank["checklist"]
    ids = " ".join(item["id"] for item in items)
    out = [f'<div class="lc-checklist" id="health-checklist" data-ids="{ids}" markdown>', ""]
    for text, item in zip(card["health_check"], items):
        links = " · ".join(
            f"[{label}]({rel(target, 'checklist.md')})" for label, target in item["where"].items()
        )
        out.append(f"- [ ] {text} — {links}")
    out += ["", "</div>", ""]
    return "\n".join(out)


def deck(bank: dict) -> dict:
    titles = {t["id"]: t["title"] for t in bank["topics"]}
    cards = [
        {
            "id": q["id"],
            "question": q["question"],
            "topic": q["topic"],
            "topic_title": titles[q["topic"]],
            "difficulty": q["difficulty"],
            "level": DIFFICULTY[q["difficulty"]],
            "answer_html": md_html(q["answer_30s"]),
            "deeper_html": md_html(q["deeper"]),
            "mistake_html": md_html(q["common_mistake"]),
            "page": f"questions/{q['topic']}.md",
            "anchor": q["id"],
        }
        for q in bank["questions"]
    ]
    return {
        "version": 1,
        "topics": [{"id": t["id"], "title": t["title"]} for t in bank["topics"]],
        "difficulties": [{"id": d, "title": f"{d} {name}"} for d, name in DIFFICULTY.items()],
        "cards": cards,
    }


def anki_tsv(bank: dict) -> str:
    """Anki's text import: a header, then GUID, Front, Back, Tags, tab-separated, HTML fields."""
    buf = io.StringIO()
    buf.write(
        "#separator:tab\n#html:true\n#notetype:Basic\n#deck:LLM Training Lifecycle\n"
        "#guid column:1\n#tags column:4\n#columns:GUID\tFront\tBack\tTags\n"
    )
    writer = csv.writer(buf, delimiter="\t", quoting=csv.QUOTE_MINIMAL, lineterminator="\n")
    for q in bank["questions"]:
        front = f"{html.escape(q['question'])} {q['difficulty']}"
        back = (
            md_html(q["answer_30s"])
            + "<hr><b>Common mistake:</b> "
            + md_html(q["common_mistake"])
            + f"<p><small>Learn it: {q['links']['section']}</small></p>"
        )
        tags = f"lifecycle topic::{q['topic']} difficulty::{ANKI_DIFFICULTY[q['difficulty']]}"
        writer.writerow(
            [f"lifecycle-{q['id']}", front, back.replace("\n", " ").replace("\t", " "), tags]
        )
    return buf.getvalue()


# --8<-- [start:render]
def render(bank: dict, card: dict, results: Path | None = None) -> dict[str, str]:
    """Every generated text, by its path under docs/. FRAGMENTS replace a marker in a page."""
    out = {
        "questions/index.md": index_fragment(bank, card),
        "failures.md": failures_fragment(bank, card, results),
        "checklist.md": checklist_fragment(bank, card),
        DECK_JSON: json.dumps(deck(bank), ensure_ascii=False, indent=1),
        DECK_TSV: anki_tsv(bank),
    }
    for topic in bank["topics"]:
        mine = [q for q in bank["questions"] if q["topic"] == topic["id"]]
        out[f"questions/{topic['id']}.md"] = topic_page(topic, mine, card, results)
    return out


# --8<-- [end:render]


# ------------------------------------------------------------------------------------------ the
# MkDocs hook

_state: dict = {}
SCRIPTS = {
    "flashcards.md": ["assets/javascripts/srs.js", "assets/javascripts/flashcards.js"],
    "checklist.md": ["assets/javascripts/checklist.js"],
}
STYLE = "assets/stylesheets/interview.css"


def on_files(files, config):
    from mkdocs.exceptions import PluginError
    from mkdocs.structure.files import File

    docs = Path(config["docs_dir"])
    bank, card = load(docs / "questions" / "bank.yaml", CARD)
    problems = check(bank, card, docs)
    if problems:
        raise PluginError("docs/questions/bank.yaml:\n  " + "\n  ".join(problems))
    out = render(bank, card, RESULTS)
    _state.update(bank=bank, out=out, files=files)
    for path, content in out.items():
        if path in FRAGMENTS:
            continue
        if files.get_file_from_path(path):
            files.remove(files.get_file_from_path(path))
        files.append(File.generated(config, path, content=content))
    return files


def on_nav(nav, config, files):
    """List the topic pages under the questions index, in the bank's topic order."""
    from mkdocs.structure.nav import _add_previous_and_next_links

    index = files.get_file_from_path("questions/index.md")
    section = index.page.parent if index and index.page else None
    if section is None:
        return nav
    at = section.children.index(index.page) + 1
    for i, topic in enumerate(_state["bank"]["topics"]):
        page = files.get_file_from_path(f"questions/{topic['id']}.md").page
        page.title, page.parent = topic["title"], section
        section.children.insert(at + i, page)

    def walk(items):
        for item in items:
            yield from walk(item.children) if item.is_section else ([item] if item.is_page else [])

    nav.pages = list(walk(nav.items))
    _add_previous_and_next_links(nav.pages)
    return nav


def on_page_markdown(text, page, config, files):
    src = page.file.src_uri
    if src in FRAGMENTS:
        marker = MARKER.format(src.split("/")[-1].removesuffix(".md"))
        if marker not in text:
            from mkdocs.exceptions import PluginError

            raise PluginError(f"{src} lost its marker {marker}")
        text = text.replace(marker, _state["out"][src])
    return text


def on_post_page(output, page, config):
    """Scripts and the deck go only on the pages that use them, with paths relative to the page."""
    from mkdocs.utils import get_relative_url

    src = page.file.src_uri
    if src not in SCRIPTS and not src.startswith("questions/") and src not in FRAGMENTS:
        return output
    head = f'<link rel="stylesheet" href="{get_relative_url(STYLE, page.url)}">'
    body = ""
    if src == "flashcards.md":
        data = deck(_state["bank"])
        for c in data["cards"]:
            target = _state["files"].get_file_from_path(c.pop("page"))
            c["href"] = get_relative_url(target.url, page.url) + "#" + c.pop("anchor")
        payload = json.dumps(data, ensure_ascii=False).replace("</", "<\\/")
        body += f'<script type="application/json" id="flashcard-deck">{payload}</script>'
    body += "".join(
        f'<script src="{get_relative_url(s, page.url)}"></script>' for s in SCRIPTS.get(src, [])
    )
    return output.replace("</head>", head + "</head>", 1).replace("</body>", body + "</body>", 1)


def main(argv: list[str] | None = None) -> int:
    bank, card = load()
    lab_keys = yaml.safe_load((DATA / "lab_keys.yaml").read_text())
    problems = check(bank, card, results=RESULTS, lab_keys=lab_keys)
    print(
        "\n".join(problems)
        or f"{len(bank['questions'])} questions, {len(bank['failures'])} failure cards: valid"
    )
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
