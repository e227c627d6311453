"""The built site, served on 127.0.0.1, and one headless Chromium that visits every page once.

The site is built once per session (`mkdocs build --strict`, timed). Pages are found by walking the
built site, never from a hand list. Each page is loaded once; what the visit observed (console
errors, requests, math, diagrams, axe violations, bytes transferred) is kept in `visits` for the
tests to judge. Browser tests skip with a reason only when Chromium is missing and the `CI`
variable is unset.
"""

import functools
import http.server
import json
import os
import shutil
import threading
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
AXE = HERE / "vendor" / "axe.min.js"
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
    "--disable-dev-shm-usage",
    # Belt and braces for "no request leaves the site": names other than the local server do not
    # resolve.
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
]
BUDGETS: dict[str, str] = {}  # measured figures, printed at the end of the run


def chromium_path() -> str | None:
    for name in ("chromium", "chromium-browser"):
        if found := shutil.which(name):
            return found
    return "/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None


# when pytest imported this conftest: about the start of the session
_STARTED = time.perf_counter()


def pytest_terminal_summary(terminalreporter):
    BUDGETS["test session so far"] = (
        f"{time.perf_counter() - _STARTED:.0f} s (make test budget 600 s)"
    )
    if BUDGETS:
        terminalreporter.section("site budgets (measured)")
        for name, value in BUDGETS.items():
            terminalreporter.write_line(f"{name}: {value}")


@pytest.fixture(scope="session")
def site(built_site) -> Path:
    """The session's one `mkdocs build --strict` (tests/conftest.py); its time goes to BUDGETS."""
    seconds = float((built_site / ".build-seconds").read_text())
    BUDGETS["mkdocs build --strict"] = f"{seconds:.1f} s (budget 15 s)"
    return built_site


def html_pages(site: Path) -> list[str]:
    """Every page of the built site, as a path relative to its root ('labs/sft.html')."""
    return sorted(
        str(p.relative_to(site))
        for p in site.rglob("*.html")
        if not p.relative_to(site).parts[0] == "assets"
    )


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture(scope="session")
def server(site):
    """The built site over HTTP on 127.0.0.1 (a free port), in a thread."""
    handler = functools.partial(_Quiet, directory=str(site))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(scope="session")
def browser():
    path = chromium_path()
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        sync_playwright = None
    if path is None or sync_playwright is None:
        missing = (
            "chromium (apt-get install chromium)" if path is None else "the playwright package"
        )
        if os.environ.get("CI"):
            pytest.fail(f"CI is set but {missing} is missing: the browser tests must run in CI")
        pytest.skip(
            f"browser tests need {missing}; they always run in CI (.ci/run installs chromium)"
        )
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=path, headless=True, args=CHROMIUM_FLAGS)
        yield b
        b.close()


class Guard:
    """Routes every request: the site's own go through, anything else is recorded and aborted."""

    def __init__(self, base: str):
        self.base = base
        self.reset()

    def reset(self):
        self.outside, self.missing, self.bytes, self.requests = [], [], 0, 0

    def route(self, route):
        url = route.request.url
        if url.startswith(self.base) or url.startswith("file://"):
            self.requests += 1
            route.continue_()
        else:
            self.outside.append(url)
            route.abort()

    def on_response(self, response):
        if response.url.startswith(self.base):
            self.bytes += int(response.headers.get("content-length") or 0)
            if response.status >= 400:  # the console says "404" without the URL: keep it
                self.missing.append(f"HTTP {response.status} {response.url[len(self.base) :]}")


# Material draws each diagram into a closed shadow root; open it so the tests can see the SVG.
OPEN_SHADOWS = """
const attach = Element.prototype.attachShadow;
Element.prototype.attachShadow = function (init) {
  return attach.call(this, { ...init, mode: "open" });
};
"""


@pytest.fixture(scope="session")
def context(browser, server):
    """One browser context for the whole session; routing also disables the HTTP cache, so each
    page's transfer size is what a first-time reader downloads."""
    ctx = browser.new_context(color_scheme="light", viewport={"width": 1280, "height": 900})
    ctx.add_init_script(OPEN_SHADOWS)
    # sent once, evaluated in each page: 15 s faster than per-page injection
    ctx.add_init_script(AXE.read_text())
    guard = Guard(server)
    ctx.route("**/*", guard.route)
    ctx.on("response", guard.on_response)
    ctx.guard = guard
    ctx.set_default_timeout(15_000)
    yield ctx
    ctx.close()


WAIT_RENDERED = """() => {
  const math = [...document.querySelectorAll('.arithmatex')];
  const mathDone = math.every(el => el.querySelector('.katex, .katex-error'));
  const pending = document.querySelectorAll('pre.mermaid').length;
  return mathDone && pending === 0;
}"""

OBSERVE = """() => {
  const content = document.querySelector('.md-content') || document.body;
  const math = [...document.querySelectorAll('.arithmatex')];
  const diagrams = [...document.querySelectorAll('div.mermaid')];
  const images = [...content.querySelectorAll('img')];
  const plots = images.filter(img => /assets\\/labs\\//.test(img.getAttribute('src') || ''));
  const captioned = img => {
    const fig = img.closest('figure');
    const caption = fig && fig.querySelector('figcaption');
    if (caption && caption.textContent.trim()) return true;
    const holder = img.closest('p');
    const next = holder && holder.nextElementSibling;
    return !!(next && next.tagName === 'P' && next.firstElementChild
              && next.firstElementChild.tagName === 'EM' && next.textContent.trim().length > 20);
  };
  return {
    title: document.title,
    math: math.length,
    math_typeset: math.filter(el => el.querySelector('.katex')).length,
    math_errors: [...document.querySelectorAll('.katex-error')]
      .map(e => e.getAttribute('title') || e.textContent).slice(0, 5),
    diagrams: diagrams.length,
    diagrams_drawn: diagrams.filter(d => d.shadowRoot && d.shadowRoot.querySelector('svg')).length,
    diagram_errors: diagrams
      .filter(d => d.shadowRoot && /Syntax error|Parse error/i.test(d.shadowRoot.textContent))
      .length,
    images_without_alt: images.filter(img => !(img.getAttribute('alt') || '').trim())
      .map(img => img.getAttribute('src')),
    plots: plots.length,
    plots_without_caption: plots.filter(img => !captioned(img))
      .map(img => img.getAttribute('src')),
  };
}"""

AXE_RUN = """async () => {
  const result = await axe.run(document, { resultTypes: ['violations'] });
  return result.violations
    .filter(v => v.impact === 'serious' || v.impact === 'critical')
    .map(v => ({ id: v.id, impact: v.impact, help: v.help, count: v.nodes.length,
                 where: v.nodes.slice(0, 3).map(n => n.target.join(' ')) }));
}"""


# Every code block's width, measured at the end of a visit (it opens collapsed boxes and shows
# every tab, so hidden blocks are measured too): does the block scroll sideways, and its text.
CODE_BLOCKS = """() => {
  document.querySelectorAll('.md-content details').forEach(d => { d.open = true; });
  const show = document.createElement('style');
  show.textContent = '.md-typeset .tabbed-block { display: block !important; }';
  document.head.appendChild(show);
  return [...document.querySelectorAll('.md-content pre')].map(pre => {
    const code = pre.querySelector(':scope > code') || pre;
    return {
      text: code.textContent,
      width: Math.max(pre.clientWidth, code.clientWidth),
      overflow: Math.max(pre.scrollWidth - pre.clientWidth, code.scrollWidth - code.clientWidth),
    };
  });
}"""


def visit(page, url: str, guard: Guard, expected_diagrams: int, axe: bool = True) -> dict:
    """Load one page and record what a reader's browser would show and do."""
    errors = []

    def on_console(msg):
        if msg.type == "error":
            errors.append(f"console: {msg.text}")

    def on_error(exc):
        errors.append(f"page error: {exc}")

    page.on("console", on_console)
    page.on("pageerror", on_error)
    guard.reset()
    start = time.perf_counter()
    try:
        page.goto(url, wait_until="load")
        try:
            page.wait_for_function(WAIT_RENDERED, timeout=15_000)
        except Exception:
            errors.append("math or diagrams were still untypeset after 15 s")
        report = page.evaluate(OBSERVE)
        report["expected_diagrams"] = expected_diagrams
        report["load_seconds"] = time.perf_counter() - start
        report["violations"] = []
        if axe:  # axe-core is already in the page (an init script of the context)
            t = time.perf_counter()
            report["violations"] = page.evaluate(AXE_RUN)
            report["axe_seconds"] = time.perf_counter() - t
        report["code_blocks"] = page.evaluate(CODE_BLOCKS)  # last: it changes the page
    finally:
        page.remove_listener("console", on_console)
        page.remove_listener("pageerror", on_error)
    report.update(
        errors=errors + guard.missing,
        outside=list(guard.outside),
        bytes=guard.bytes,
        requests=guard.requests,
    )
    return report


@pytest.fixture(scope="session")
def visits(site, server, context) -> dict[str, dict]:
    """Every page of the built site, visited once: {'labs/sft.html': what the visit observed}."""
    page = context.new_page()
    out = {}
    start = time.perf_counter()
    for rel in html_pages(site):
        expected = (site / rel).read_text().count('<pre class="mermaid">')
        out[rel] = visit(page, server + rel, context.guard, expected)
    seconds = time.perf_counter() - start
    page.close()
    heaviest = max(out, key=lambda r: out[r]["bytes"])
    BUDGETS["browser crawl"] = f"{len(out)} pages in {seconds:.1f} s (load, typeset, axe)"
    BUDGETS["largest page transfer"] = (
        f"{out[heaviest]['bytes'] / 1e6:.2f} MB ({heaviest}, all assets, uncached)"
    )
    (site.parent / "visits.json").write_text(json.dumps(out, indent=1))
    return out
