"""The built site without a browser: build time, links and anchors, reachability, notebooks.

These run wherever the site builds (no Chromium needed).
"""

import json
import re
import subprocess
import sys
import textwrap
import tomllib
from html.parser import HTMLParser
from urllib.parse import unquote, urljoin, urlsplit

import nbformat
import pytest

from .conftest import BUDGETS, ROOT, html_pages

LABS = sorted(p for p in (ROOT / "code" / "labs").glob("*.py") if not p.name.startswith("_"))
SITE_URL = "http://127.0.0.1:8000/"  # mkdocs.yml site_url: canonical links point here


class Links(HTMLParser):
    """Every id on a page and every URL it links to or loads."""

    def __init__(self):
        super().__init__()
        self.ids, self.links = set(), []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        for key in ("id", "name"):
            if attrs.get(key) and (key == "id" or tag == "a"):
                self.ids.add(attrs[key])
        for key in ("href", "src"):
            if attrs.get(key) is not None and tag in (
                "a",
                "link",
                "script",
                "img",
                "source",
                "iframe",
            ):
                self.links.append((tag, attrs[key]))


@pytest.fixture(scope="session")
def parsed(site) -> dict[str, Links]:
    out = {}
    for rel in html_pages(site):
        p = Links()
        p.feed((site / rel).read_text())
        out[rel] = p
    return out


def classify(page: str, url: str):
    """('external', url) | ('internal', site path, fragment) | ('skip',)."""
    if url.startswith(SITE_URL):
        url = url[len(SITE_URL) :] or "index.html"
        page = "index.html"
    parts = urlsplit(url)
    if parts.scheme in ("data", "javascript", "blob", "about"):
        return ("skip",)
    if parts.scheme or parts.netloc:
        return ("external", url)
    target = urlsplit(urljoin("http://site/" + page, url))
    path = unquote(target.path.lstrip("/")) or "index.html"
    return ("internal", path, unquote(target.fragment))


def test_mkdocs_yml_has_no_duplicate_keys():
    """YAML keeps the last of two equal keys: two branches that add `hooks:` would lose one."""
    import yaml

    class Strict(yaml.SafeLoader):
        def construct_mapping(self, node, deep=False):
            keys = [self.construct_object(k, deep=deep) for k, _ in node.value]
            dupes = sorted({k for k in keys if keys.count(k) > 1})
            assert not dupes, f"mkdocs.yml line {node.start_mark.line + 1}: duplicate keys {dupes}"
            return super().construct_mapping(node, deep=deep)

    Strict.add_multi_constructor("tag:yaml.org,2002:python/", lambda loader, suffix, node: None)
    yaml.load((ROOT / "mkdocs.yml").read_text(), Loader=Strict)


def test_no_broken_internal_links_or_anchors(site, parsed):
    broken, checked = [], 0
    for page, links in parsed.items():
        for tag, url in links.links:
            kind = classify(page, url)
            if kind[0] != "internal":
                continue
            checked += 1
            _, path, fragment = kind
            target = site / path
            if path.endswith("/"):
                target = target / "index.html"
            if not target.is_file():
                broken.append(f"{page}: <{tag}> {url} -> missing {path}")
            elif fragment and target.suffix == ".html":
                ids = (
                    parsed[str(target.relative_to(site))].ids
                    if str(target.relative_to(site)) in parsed
                    else set()
                )
                if fragment not in ids:
                    broken.append(f"{page}: <{tag}> {url} -> no #{fragment} in {path}")
    BUDGETS["internal links checked"] = f"{checked}, broken: {len(broken)}"
    assert checked > 100
    assert not broken, "\n".join(broken)


EXTERNAL_FORM = re.compile(
    r"^(https?://[a-z0-9-]+(\.[a-z0-9-]+)+(:\d+)?(/\S*)?|mailto:[^@\s]+@[^@\s]+\.[a-z]+)$", re.I
)


def test_external_links_are_listed_and_well_formed(parsed):
    """No network here: external links are listed in the output and checked for form only."""
    external = sorted(
        {
            (kind[1], page)
            for page, links in parsed.items()
            for tag, url in links.links
            if tag == "a" and (kind := classify(page, url))[0] == "external"
        }
    )
    urls = sorted({u for u, _ in external})
    print(f"{len(urls)} external link(s):")
    for url in urls:
        print(f"  {url}  (first on {next(p for u, p in external if u == url)})")
    bad = [f"{page}: {url}" for url, page in external if not EXTERNAL_FORM.match(url)]
    assert not bad, "malformed external links:\n" + "\n".join(bad)
    loads = sorted(
        {
            f"{page}: <{tag}> {url}"
            for page, links in parsed.items()
            for tag, url in links.links
            if tag != "a" and classify(page, url)[0] == "external"
        }
    )
    assert not loads, "pages load assets from outside the site:\n" + "\n".join(loads)


def test_every_page_is_reachable_from_home(site, parsed):
    seen, todo = {"index.html"}, ["index.html"]
    while todo:
        page = todo.pop()
        for tag, url in parsed[page].links:
            kind = classify(page, url)
            if tag == "a" and kind[0] == "internal" and kind[1] in parsed and kind[1] not in seen:
                seen.add(kind[1])
                todo.append(kind[1])
    orphans = sorted(set(parsed) - seen - {"404.html"})
    assert not orphans, f"pages no link leads to: {orphans}"


def test_pages_have_a_preview_description_and_date(site, parsed):
    problems = []
    for rel in parsed:
        if rel == "404.html":
            continue
        html = (site / rel).read_text()
        if not re.search(r'<meta property="og:description" content="[^"]{40,}"', html):
            problems.append(f"{rel}: no og:description")
        if not re.search(r'<meta name="description" content="[^"]{40,}"', html):
            problems.append(f"{rel}: no meta description")
        if "md-source-file__fact" not in html or not re.search(
            r"\d{4}-\d{2}-\d{2}", html.split("md-source-file", 1)[-1]
        ):
            problems.append(f"{rel}: no last-updated date")
    assert not problems, "\n".join(problems)


# --- notebooks -----------------------------------------------------------------------------------


def code_lines(text: str) -> list[str]:
    return [line.rstrip() for line in text.splitlines() if line.strip()]


def load_notebook(site, lab: str):
    path = site / "notebooks" / f"{lab}.ipynb"
    assert path.is_file(), f"no notebook download for {lab}"
    return nbformat.read(path, as_version=4)


@pytest.mark.parametrize("lab", [p.stem for p in LABS])
def test_notebook_code_equals_script(site, lab):
    nb = load_notebook(site, lab)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert "gpu-session" in code[0].metadata.get("tags", []), (
        "the first code cell must be the GPU session"
    )
    script = (ROOT / "code" / "labs" / f"{lab}.py").read_text()
    assert code_lines("\n".join(c.source for c in code[1:])) == code_lines(script)
    assert (site / "notebooks" / f"{lab}.html").is_file(), "no notebook page"
    assert (site / "notebooks" / f"{lab}.py").read_text() == script, "the published script differs"
    page = (
        (site / "labs" / f"{lab}.html").read_text()
        if (site / "labs" / f"{lab}.html").exists()
        else ""
    )
    for href in (f"../notebooks/{lab}.html", f"../notebooks/{lab}.ipynb"):
        assert f'href="{href}"' in page, f"labs/{lab}.html has no link to {href}"


@pytest.mark.parametrize("lab", [p.stem for p in LABS])
def test_gpu_session_cell_installs_the_pins_and_selects_gpu(site, lab):
    cell = next(c for c in load_notebook(site, lab).cells if c.cell_type == "code").source
    compile(cell, "gpu-session", "exec")
    pins = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    for pin in pins:
        assert f'"{pin}"' in cell, f"the GPU cell does not install {pin}"
    assert '"--preset", "gpu"' in cell


NOTEBOOK_RUNNER = textwrap.dedent("""
    import json, subprocess, sys
    cells = ["".join(c["source"]) for c in json.load(open(sys.argv[1]))["cells"]
             if c["cell_type"] == "code"]
    flags = json.loads(sys.argv[2])
    calls = []
    subprocess.check_call = lambda cmd, *a, **k: calls.append(cmd) or 0  # no installs in the test
    ns = {"__name__": "__main__"}
    exec(cells[0], ns)  # the GPU session cell
    assert calls and "pip" in calls[0], calls
    assert sys.argv[-2:] == ["--preset", "gpu"], sys.argv
    sys.argv = [sys.argv[0], *flags]  # a tiny CPU run instead of the gpu preset
    for source in cells[1:]:
        exec(source, ns)
""")


def test_pretrain_notebook_runs_all_cells(site, tmp_path):
    """Run all, as Jupyter would (one namespace, __name__ == '__main__'), with a tiny CPU run."""
    flags = [
        "--output_dir",
        str(tmp_path / "run"),
        "--preset",
        "smoke",
        "--max_steps",
        "3",
        "--train_docs",
        "100",
    ]
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            NOTEBOOK_RUNNER,
            str(site / "notebooks" / "pretrain.ipynb"),
            json.dumps(flags),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["val_perplexity_after"] > 0
