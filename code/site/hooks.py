"""MkDocs hooks that make the site a product: lab notebooks, source links, dates, lean pages.

- Every `code/labs/<lab>.py` becomes a notebook page `notebooks/<lab>.ipynb` (rendered by
  mkdocs-jupyter, downloadable as .ipynb), generated at build time from the script itself: a first
  "GPU session" cell that installs the pinned packages and selects `--preset gpu`, then the
  script's own code, cell by cell. `tests/browser/test_site.py` checks that the code cells equal
  the script.
- The script is also published next to its notebook (`notebooks/<lab>.py`), and each lab page gets
  "view source" and "download notebook" buttons (see code/site/partials/actions.html).
- The labs come from the stage graph (`lifecycle.stages.STAGES`): their nav entries and titles, in
  lifecycle order, and the labs index's diagram and table (the `<!-- stages:index -->` marker in
  docs/labs/index.md).
- Every page gets a last-updated date (`page.meta.revision_date`, shown by the theme) from git, or
  the build date for files git does not know.
- Pages without a diagram do not load the 3 MB mermaid script.
"""

import ast
import datetime
import hashlib
import re
import subprocess
import tomllib
from pathlib import Path

import jinja2
import nbformat
from mkdocs.plugins import event_priority
from mkdocs.structure.files import File
from mkdocs.utils import get_relative_url

from lifecycle.stages import STAGES

ROOT = Path(__file__).resolve().parents[2]
LABS = ROOT / "code" / "labs"
NOTEBOOKS = ROOT / ".cache" / "site-notebooks"  # generated, git-ignored: never a hand-kept copy
TODAY = datetime.date.today().isoformat()
_dates: dict[str, str] = {}


class _CompiledTemplates(jinja2.BytecodeCache):
    """mkdocs-jupyter builds a fresh nbconvert exporter for every notebook, and each recompiles the
    same ~30 Jinja templates (about 0.5 s a notebook). Shared compiled templates make that once per
    build."""

    def __init__(self):
        self.store = {}

    def load_bytecode(self, bucket):
        checksum, code = self.store.get(bucket.key, (None, None))
        if checksum == bucket.checksum:  # same template source: reuse its compiled code
            bucket.code = code

    def dump_bytecode(self, bucket):
        self.store[bucket.key] = (bucket.checksum, bucket.code)


def _share_compiled_templates():
    from nbconvert.exporters.templateexporter import TemplateExporter

    if getattr(TemplateExporter._create_environment, "shared", False):
        return
    create, cache = TemplateExporter._create_environment, _CompiledTemplates()

    def create_environment(self):
        env = create(self)
        env.bytecode_cache = cache
        return env

    create_environment.shared = True
    TemplateExporter._create_environment = create_environment


INDEX_MARKER = "<!-- stages:index -->"


def labs() -> list[Path]:
    """Every lab script, in lifecycle order."""
    return [LABS / f"{lab}.py" for lab in STAGES]


def stage_graph() -> str:
    """The labs index's diagram and table, drawn from STAGES: an arrow means the later lab runs (or
    reuses from the cache) the earlier lab's output."""
    nodes = [f'    {lab}["{s.title}"]' for lab, s in STAGES.items()]
    edges = [f"    {up} --> {lab}" for lab, s in STAGES.items() for up in s.needs]

    def link(lab):
        return f"[{STAGES[lab].title}]({lab}.md)"

    rows = [
        f"| {link(lab)} | {', '.join(map(link, s.needs)) or '—'} | {s.shows} |"
        for lab, s in STAGES.items()
    ]
    return "\n".join(
        [
            "```mermaid",
            "flowchart LR",
            *nodes,
            *edges,
            "```",
            "",
            "| lab | builds on | what it shows |",
            "| --- | --- | --- |",
            *rows,
        ]
    )


def pinned_packages() -> list[str]:
    """The runtime pins from pyproject.toml, exactly as `make install` uses them."""
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]


def script_cells(source: str) -> list[str]:
    """Split a script into cells at top-level statements after a blank line (with their comments).

    Joining the cells with blank lines gives back the script, except for the number of blank lines.
    """
    lines = source.splitlines()
    starts = set()
    for node in ast.parse(source).body:
        first = min([node.lineno, *(d.lineno for d in getattr(node, "decorator_list", []))]) - 1
        while first > 0 and lines[first - 1].lstrip().startswith("#"):
            first -= 1  # a comment block directly above belongs to the statement
        if first == 0 or not lines[first - 1].strip():
            starts.add(first)
    cells, current = [], []
    for i, line in enumerate(lines):
        if i in starts and any(s.strip() for s in current):
            cells.append("\n".join(current).strip("\n"))
            current = []
        current.append(line)
    if any(s.strip() for s in current):
        cells.append("\n".join(current).strip("\n"))
    return cells


def gpu_cell(lab: str) -> str:
    pins = ",\n    ".join(f'"{p}"' for p in pinned_packages())
    return f'''# GPU session: run all cells. This one installs the pinned packages and selects
# `--preset gpu`; the last cell runs the lab. Open the notebook inside a clone of the course
# repository.
import os
import subprocess
import sys
from pathlib import Path

here = Path.cwd()
root = next((p for p in [here, *here.parents] if (p / "code" / "lifecycle").is_dir()), None)
if root is None:
    raise RuntimeError("open this notebook inside the course repository: it needs code/lifecycle/")
subprocess.check_call([sys.executable, "-m", "pip", "install", "-q",
    {pins},
])
os.chdir(root)
sys.path.insert(0, str(root / "code"))
sys.argv = ["{lab}.py", "--output_dir", "runs/{lab}-gpu", "--preset", "gpu"]'''


def notebook(script: Path, title: str) -> str:
    lab = script.stem
    intro = (
        f"# {title} (notebook)\n\n"
        f"This notebook is `code/labs/{lab}.py`, cell for cell: the site generates it from the "
        "script, and a test checks that its code equals the script's. The "
        f"[lab page](../labs/{lab}.html) explains it. "
        f"Download [this notebook]({lab}.ipynb) or [the script]({lab}.py).\n\n"
        "**GPU session:** open it in Jupyter inside a clone of the course repository, on a "
        "machine with a GPU and the Hugging Face Hub in reach, and choose *Run all*. The first "
        "cell installs the pinned packages and selects `--preset gpu` (the real `gpt2`); the last "
        "cell runs the lab. For a CPU run, change `gpu` to `smoke` or `lesson` in the first cell."
    )
    cells = [
        nbformat.v4.new_markdown_cell(intro),
        nbformat.v4.new_code_cell(gpu_cell(lab), metadata={"tags": ["gpu-session"]}),
        nbformat.v4.new_markdown_cell(
            f"## The script, cell by cell\n\nEverything below is `code/labs/{lab}.py`, unchanged."
        ),
        *(nbformat.v4.new_code_cell(c) for c in script_cells(script.read_text())),
    ]
    nb = nbformat.v4.new_notebook(
        cells=cells,
        metadata={
            "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
            "language_info": {"name": "python"},
        },
    )
    for i, cell in enumerate(nb.cells):
        cell.id = (
            f"{lab}-{i}"  # stable ids: the same script gives the same bytes, so caches stay warm
        )
    return nbformat.writes(nb) + "\n"


def _write_if_changed(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists() or path.read_text() != text:
        path.write_text(text)


def labs_nav(listed: list) -> list:
    """The Labs section of the nav from what mkdocs.yml lists there: the index page (listed first),
    each lab in lifecycle order, the other listed pages (not labs: "Bring your own data"), then the
    notebooks."""
    pages = [{s.title: f"labs/{lab}.md"} for lab, s in STAGES.items()]
    notebooks = [{s.title: f"notebooks/{lab}.ipynb"} for lab, s in STAGES.items()]
    index, *others = listed
    return [index, *pages, *others, {"Notebooks": notebooks}]


def on_config(config):
    _share_compiled_templates()
    for item in config.nav or []:
        if isinstance(item, dict) and "Labs" in item:
            item["Labs"] = labs_nav(item["Labs"])
    config.extra["lab_titles"] = {lab: s.title for lab, s in STAGES.items()}
    _dates.clear()
    _dates.update(_git_dates())
    return config


def _git_dates() -> dict[str, str]:
    """Repository path -> date (YYYY-MM-DD) of the last commit to touch it; empty outside git."""
    try:
        log = subprocess.run(
            ["git", "log", "--format=%x00%cs", "--name-only", "--no-renames"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=20,
            check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return {}
    dates, date = {}, TODAY
    for line in log.splitlines():
        if line.startswith("\0"):
            date = line[1:]
        elif line.strip():
            dates.setdefault(line.strip(), date)
    dirty = subprocess.run(
        ["git", "status", "--porcelain"], cwd=ROOT, capture_output=True, text=True
    ).stdout
    for line in dirty.splitlines():  # changed since the last commit: updated today
        dates[line[3:].strip()] = TODAY
    return dates


@event_priority(100)  # before mkdocs-jupyter wraps .ipynb files as pages
def on_files(files, config):
    for script in labs():
        lab = script.stem
        nb_path = NOTEBOOKS / "notebooks" / f"{lab}.ipynb"
        _write_if_changed(nb_path, notebook(script, config.extra["lab_titles"][lab]))
        # Real files (not File.generated): mkdocs-jupyter reads a notebook from src_dir + src_uri.
        files.append(
            File(
                f"notebooks/{lab}.ipynb",
                str(NOTEBOOKS),
                config.site_dir,
                config.use_directory_urls,
            )
        )
        files.append(
            File(
                f"labs/{lab}.py",
                str(ROOT / "code"),
                config.site_dir,
                config.use_directory_urls,
                dest_uri=f"notebooks/{lab}.py",
            )
        )
    return files


def on_page_markdown(markdown, page, config, files):
    if page.file.src_uri == "labs/index.md":
        if INDEX_MARKER not in markdown:
            from mkdocs.exceptions import PluginError

            raise PluginError(f"docs/labs/index.md lost its marker {INDEX_MARKER}")
        markdown = markdown.replace(INDEX_MARKER, stage_graph())
    return markdown


def on_page_context(context, page, config, nav):
    src = page.file.src_uri
    lab = None
    if m := re.fullmatch(r"labs/(\w+)\.md", src):
        lab = m.group(1) if (LABS / f"{m.group(1)}.py").exists() else None
        repo_path = f"docs/{src}"
    elif m := re.fullmatch(r"notebooks/(\w+)\.ipynb", src):
        repo_path = f"code/labs/{m.group(1)}.py"
    else:
        repo_path = f"docs/{src}"
    page.meta["revision_date"] = _dates.get(repo_path, TODAY)
    if lab:  # buttons beside the title (code/site/partials/actions.html)
        page.meta["source_links"] = [
            {
                "href": f"../notebooks/{lab}.ipynb",
                "icon": "download",
                "download": True,
                "title": f"Download the notebook (code/labs/{lab}.py as .ipynb)",
            },
            {
                "href": f"../notebooks/{lab}.html",
                "icon": "file-code-outline",
                "title": f"View source: code/labs/{lab}.py (notebook page)",
            },
        ]
    elif m := re.fullmatch(r"notebooks/(\w+)\.ipynb", src):
        lab = m.group(1)
        page.meta["source_links"] = [
            {
                "href": f"{lab}.ipynb",
                "icon": "download",
                "download": True,
                "title": "Download this notebook (.ipynb)",
            },
            {
                "href": f"{lab}.py",
                "icon": "language-python",
                "download": True,
                "title": f"Download the script (code/labs/{lab}.py)",
            },
            {
                "href": f"../labs/{lab}.html",
                "icon": "book-open-variant",
                "title": "Back to the lab page",
            },
        ]
    return context


_MERMAID_TAG = re.compile(
    r'<script src="[^"]*assets/vendor/mermaid/mermaid\.min\.js"></script>\s*'
)


_STYLE = re.compile(r'<style type="text/css">(.*?)</style>\s*', re.S)


def on_post_page(output, page, config):
    if '<pre class="mermaid">' not in output:
        output = _MERMAID_TAG.sub("", output)  # 3 MB saved on every page without a diagram
    if page.file.src_uri.startswith("notebooks/"):
        output = _shared_notebook_css(output, page, config)
    return output


def _shared_notebook_css(output: str, page, config) -> str:
    """mkdocs-jupyter inlines ~650 kB of Jupyter CSS in each notebook page: serve it once."""
    css = "\n".join(m.group(1) for m in _STYLE.finditer(output))
    if not css:
        return output
    name = f"assets/stylesheets/notebook-{hashlib.sha256(css.encode()).hexdigest()[:12]}.css"
    path = Path(config.site_dir) / name
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(css)
    link = f'<link rel="stylesheet" href="{get_relative_url(name, page.url)}">\n'
    first = True

    def swap(match):
        nonlocal first
        keep, first = (link if first else ""), False
        return keep

    return _STYLE.sub(swap, output)
