"""The built book in a real browser: headless Chromium opens every page; every image a page
references exists and is non-empty; no internal link or anchor is broken; MathJax (served from the
book itself) typesets the formulas. Builds the book from the committed records into a scratch folder
(strict, as `make book` does), the summary pages with their committed outputs, which nbval checks.
A screenshot of the scorecard is left at _build/scorecard.png."""
import os
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest
import yaml

pytestmark = pytest.mark.slow   # one strict book build, shared by the module

ROOT = Path(__file__).resolve().parents[1]
SUMMARY_PAGES = "book/*.ipynb"   # executed by nbval in `make test`, so rendered here as committed


def _chromium():
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None:
        if os.environ.get("QUIDE_REQUIRE_BROWSER") == "1":
            pytest.fail("chromium is required (apt-get install -y chromium)")
        pytest.skip("chromium not installed")
    return exe


def _browser_args(exe, tmp):
    return [exe, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            f"--user-data-dir={tmp}", "--virtual-time-budget=5000"]


def config_rendering_committed_summaries(folder: Path) -> Path:
    """The book's _config.yml, except that the summary pages book/*.ipynb render their committed
    outputs: `make test` executes each of them once, under nbval, which compares those outputs with a
    fresh run. Every other setting (pages that execute at build time included) stays the book's."""
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    execute = config.setdefault("execute", {})
    execute["exclude_patterns"] = [*execute.get("exclude_patterns", []), SUMMARY_PAGES]
    path = folder / "_config.yml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    out = tmp_path_factory.mktemp("book")
    jb = Path(sys.executable).with_name("jupyter-book")
    config = config_rendering_committed_summaries(tmp_path_factory.mktemp("config"))
    # the book reads the committed records, not the scratch results folder the test session uses
    env = {k: v for k, v in os.environ.items() if k not in ("QUIDE_RESULTS", "QUIDE_CHECKPOINTS")}
    proc = subprocess.run([str(jb), "build", str(ROOT), "--config", str(config), "--path-output", str(out),
                           "-W", "-n", "--keep-going"], capture_output=True, text=True, timeout=900, cwd=ROOT, env=env)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    not_executed = (proc.stdout + proc.stderr).count(f"Excluded from execution by pattern: {SUMMARY_PAGES!r}")
    assert not_executed == len(list(ROOT.glob(SUMMARY_PAGES))), "the build executed a summary page (nbval does)"
    return out / "_build" / "html"


class Refs(HTMLParser):
    def __init__(self):
        super().__init__()
        self.images, self.links, self.ids = [], [], set()

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if "id" in a:
            self.ids.add(a["id"])
        if tag == "img" and a.get("src"):
            self.images.append(a["src"])
        if tag == "a" and a.get("href"):
            self.links.append(a["href"])


def _parse(path: Path) -> Refs:
    refs = Refs()
    refs.feed(path.read_text(encoding="utf-8"))
    return refs


def _pages(site):
    toc = [line.split("file:")[-1].strip() for line in (ROOT / "_toc.yml").read_text().splitlines()
           if "file:" in line or line.startswith("root:")]
    toc = [t.replace("root:", "").strip() for t in toc]
    return [site / f"{t}.html" for t in toc]


def test_every_page_loads_in_chromium(at_1400):
    for page, (_, dom) in at_1400.items():
        assert "bd-article" in dom and "<h1" in dom, f"{page.name}: no article in the rendered page"
        if page.stem == "intro":   # formulas typeset by the book's own MathJax, offline
            assert "mjx-container" in dom, "MathJax did not typeset the intro's formulas"


def test_images_exist_and_are_not_empty(site):
    seen = 0
    for page in site.rglob("*.html"):
        for src in _parse(page).images:
            if urlparse(src).scheme in ("http", "https", "data"):
                continue
            target = (page.parent / unquote(urlparse(src).path)).resolve()
            assert target.is_file() and target.stat().st_size > 0, f"{page.name}: image {src} missing or empty"
            seen += 1
    assert seen >= 8   # the figures page alone draws eight figures


def test_no_broken_internal_links(site):
    ids = {}
    broken = []
    for page in site.rglob("*.html"):
        for href in _parse(page).links:
            url = urlparse(href)
            if url.scheme or href.startswith("mailto:"):
                continue
            target = page if not url.path else (page.parent / unquote(url.path)).resolve()
            if target.is_dir():
                target = target / "index.html"
            if not target.exists():
                broken.append(f"{page.relative_to(site)} -> {href}")
                continue
            if url.fragment and target.suffix == ".html":
                if target not in ids:
                    ids[target] = _parse(target).ids
                if url.fragment not in ids[target]:
                    broken.append(f"{page.relative_to(site)} -> {href} (no such anchor)")
    assert not broken, "\n".join(broken[:20])


def test_scorecard_screenshot(site, tmp_path):
    exe = _chromium()
    shot = ROOT / "_build" / "scorecard.png"
    shot.parent.mkdir(exist_ok=True)
    proc = subprocess.run(_browser_args(exe, tmp_path) + ["--window-size=1280,2400", f"--screenshot={shot}",
                                                          (site / "book" / "scorecard.html").as_uri()],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and shot.stat().st_size > 10_000


# --- the verdict first: the landing page and the scorecard at a wide and a narrow window ---------

PROBE = """<script>window.addEventListener("load", () => {{
  const el = document.querySelector({selector!r});
  const r = el ? el.getBoundingClientRect() : null;
  document.body.setAttribute("data-probe", JSON.stringify({{found: !!el, win: window.innerWidth,
    scroll: document.documentElement.scrollWidth, left: r && r.left, right: r && r.right,
    top: r && r.top + window.scrollY, bottom: r && r.bottom + window.scrollY}}));
}});</script>"""


def _probe(site, tmp_path, page: str, selector: str, width: int) -> dict:
    """Open ``page`` in Chromium at ``width`` x 900 px with a script that measures ``selector`` (its
    box, in page coordinates) and the document's scroll width; the page is copied beside itself so
    that its relative assets resolve."""
    import html as htmllib
    import json
    import re
    source = site / page
    probe = source.with_name(f"_probe_{source.name}")
    probe.write_text(source.read_text(encoding="utf-8").replace("</body>", PROBE.format(selector=selector) + "</body>"),
                     encoding="utf-8")
    proc = subprocess.run(_browser_args(_chromium(), tmp_path) + [f"--window-size={width},900", "--dump-dom",
                                                                   probe.as_uri()],
                          capture_output=True, text=True, timeout=120)
    probe.unlink()
    assert proc.returncode == 0, proc.stderr[-2000:]
    found = re.search(r'data-probe="([^"]*)"', proc.stdout)
    assert found, f"{page} at {width} px: the measuring script did not run"
    return json.loads(htmllib.unescape(found.group(1)))


@pytest.mark.parametrize("page, selector", [("book/intro.html", "#verdict-summary"),
                                            ("book/scorecard.html", "article img")])
@pytest.mark.parametrize("width", [1400, 420])
def test_the_summary_fits_the_window_without_horizontal_overflow(site, tmp_path, page, selector, width):
    m = _probe(site, tmp_path, page, selector, width)
    assert m["found"], f"{page}: no {selector}"
    assert m["scroll"] <= m["win"] + 1, f"{page} at {width} px: the page scrolls sideways ({m})"
    assert m["left"] >= 0 and m["right"] <= m["win"] + 1, f"{page} at {width} px: the summary overflows ({m})"


@pytest.mark.parametrize("page, selector", [("book/intro.html", "#verdict-summary"),
                                            ("book/scorecard.html", "article img")])
def test_the_summary_is_on_the_first_screen_at_1400_px(site, tmp_path, page, selector):
    m = _probe(site, tmp_path, page, selector, 1400)
    assert m["top"] < 900 and m["bottom"] <= 900, f"{page}: the summary is not within the first 900 px ({m})"


# --- a report, not a lab notebook: every page fits its window; the book follows the records -------

PAGE_PROBE = """<script>window.addEventListener("load", () => {{
  const keys = {keys};
  const shown = {{}};
  for (const th of document.querySelectorAll({table!r} + " th.col_heading")) {{
    const r = th.getBoundingClientRect();
    shown[th.textContent.trim()] = th.offsetWidth > 0 && r.left >= 0 && r.right <= window.innerWidth + 1;
  }}
  // a link inside a closed <details> keeps its offsetParent in Chromium: ask whether it is rendered
  const nav = [...document.querySelectorAll("nav.bd-docs-nav a")].filter(a => a.checkVisibility());
  document.body.setAttribute("data-page-probe", JSON.stringify({{win: window.innerWidth,
    height: document.documentElement.scrollHeight, scroll: document.documentElement.scrollWidth,
    keys: Object.fromEntries(keys.map(k => [k, shown[k] === true])),
    nav: nav.map(a => a.getAttribute("href"))}}));
}});</script>"""


def _measure(site, tmp_path, page: Path, width: int, table: str = "#none", keys=(), with_dom: bool = False):
    """Open ``page`` in Chromium at ``width`` x 900 px and measure the document's height and scroll
    width, whether each of ``keys`` (header texts of the table ``table``) is displayed within the
    window, and the sidebar links a reader sees (with ``with_dom``, also return the rendered DOM).
    The page is copied beside itself (so its relative assets resolve) with the measuring script."""
    import html as htmllib
    import json
    import re
    import tempfile
    assert page.is_file(), f"{page.name} was not built"
    probe = page.with_name(f"_probe_{width}_{page.name}")
    script = PAGE_PROBE.format(keys=json.dumps(list(keys)), table=table)
    probe.write_text(page.read_text(encoding="utf-8").replace("</body>", script + "</body>"), encoding="utf-8")
    # a profile folder per browser: Chromiums that share one refuse to start side by side
    with tempfile.TemporaryDirectory(dir=tmp_path) as profile:
        try:
            proc = subprocess.run(_browser_args(_chromium(), profile) + [f"--window-size={width},900", "--dump-dom",
                                                                          probe.as_uri()],
                                  capture_output=True, text=True, timeout=180)
        finally:
            probe.unlink()
    assert proc.returncode == 0, proc.stderr[-2000:]
    found = re.search(r'data-page-probe="([^"]*)"', proc.stdout)
    assert found, f"{page.name} at {width} px: the measuring script did not run"
    measured = json.loads(htmllib.unescape(found.group(1)))
    return (measured, proc.stdout) if with_dom else measured


@pytest.fixture(scope="module")
def at_1400(site, tmp_path_factory):
    """Every page of the table of contents opened once at 1400 px: {page: (measurements, rendered DOM)}.
    Three browsers at a time (Chromium mostly waits on its own processes)."""
    from concurrent.futures import ThreadPoolExecutor
    tmp = tmp_path_factory.mktemp("chromium")
    pages = _pages(site)
    with ThreadPoolExecutor(max_workers=3) as pool:
        measured = list(pool.map(lambda page: _measure(site, tmp, page, 1400, with_dom=True), pages))
    return dict(zip(pages, measured))


def _run_page(page: Path) -> bool:
    """A per-run page (an executed GPU notebook) or the run log: long by nature, excepted from the
    height limit."""
    return ("experiments" in page.parts and page.stem != "index") or page.stem == "run_log"


def test_every_page_at_1400_px_is_at_most_12000_px_tall_and_never_scrolls_sideways(site, at_1400):
    problems = []
    for page, (m, _) in at_1400.items():
        if m["scroll"] > m["win"] + 1:
            problems.append(f"{page.relative_to(site)}: scrolls sideways ({m['scroll']} > {m['win']} px)")
        if not _run_page(page) and m["height"] > 12_000:
            problems.append(f"{page.relative_to(site)}: {m['height']} px tall (at most 12000)")
    assert not problems, "\n".join(problems)


TABLE1_KEYS = ["bits", "P (%)", "I", "I'", "Knee"]


@pytest.mark.parametrize("page", ["book/intro.html", "book/scorecard.html", "book/ptq_sweep.html"])
def test_key_pages_at_420_px_keep_their_key_columns_without_sideways_scroll(site, tmp_path, page):
    table1 = page.endswith("ptq_sweep.html")
    m = _measure(site, tmp_path, site / page, 420, "#T_table1" if table1 else "#none", TABLE1_KEYS if table1 else ())
    assert m["scroll"] <= m["win"] + 1, f"{page} at 420 px scrolls sideways ({m})"
    hidden = [k for k, shown in m["keys"].items() if not shown]
    assert not hidden, f"{page} at 420 px: Table 1 hides or cuts its key columns {hidden} ({m})"


def test_the_sidebar_shows_the_runs_index_not_every_run(site, at_1400):
    m, _ = at_1400[site / "book" / "ptq_sweep.html"]
    runs = [h for h in m["nav"] if "experiments/" in h and not h.endswith("index.html")]
    assert not runs, f"on the EXP-1/2 page the sidebar lists {len(runs)} run pages: {runs[:3]}"
    assert any(h.endswith("experiments/ptq_sweep/index.html") for h in m["nav"]), m["nav"]


def test_rendered_pages_show_no_markers_progress_bars_or_warnings_and_figures_have_alt_text(site):
    import re
    for page in _pages(site):
        text = page.read_text(encoding="utf-8")
        for pattern in ("NBVAL_", r"it/s\]", "UserWarning", "TqdmWarning", "/site-packages/"):
            assert not re.search(pattern, text), f"{page.relative_to(site)} shows {pattern!r}"
    for name in ("ptq_sweep", "llm_case_study", "figures"):
        images = re.findall(r"<img [^>]*>", (site / "book" / f"{name}.html").read_text(encoding="utf-8"))
        assert images, f"book/{name}.html draws no figure"
        for img in images:
            alt = re.search(r'alt="([^"]*)"', img)
            assert alt and len(alt.group(1)) > 20, f"book/{name}.html: a figure without alt text: {img[:120]}"


def test_run_pages_are_titled_by_their_run(site):
    import re
    titles = [t.split("title:")[-1].strip().strip('"') for t in (ROOT / "_toc.yml").read_text().splitlines()
              if "title:" in t]
    for page in (site / "book" / "experiments").rglob("*.html"):
        if page.stem == "index":
            continue
        h1 = re.sub(r"<[^>]+>|¶|#", "", re.search(r"<h1[^>]*>(.*?)</h1>", page.read_text(encoding="utf-8"), re.S).group(1)).strip()
        assert h1 in titles, f"{page.name}: titled {h1!r}, not by its run"


def test_the_book_follows_the_records_one_record_file_moved_away(site, tmp_path, monkeypatch):
    """`make book` executes every page at every build (no cache, nothing excluded), and the EXP-1/2
    page executed with one PTQ-sweep record file moved away reports one file and its records fewer."""
    import re

    import nbformat
    from nbclient import NotebookClient
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    assert config["execute"]["execute_notebooks"] == "force", "the book must execute its pages at every build"
    skipped = [pattern for pattern in config["execute"].get("exclude_patterns", []) if not pattern.startswith("experiments/")]
    assert not skipped, f"the book's build skips executing {skipped} (only the GPU run pages may be)"
    count = re.compile(r"(\d+) records from (\d+) files")
    before = tuple(map(int, count.search((site / "book" / "ptq_sweep.html").read_text(encoding="utf-8")).groups()))
    results = tmp_path / "results"
    shutil.copytree(ROOT / "data" / "results", results)
    moved = sorted((results / "ptq_sweep").glob("*-graph-paper-*.json"))[0]
    moved.unlink()
    monkeypatch.setenv("QUIDE_RESULTS", str(results))
    monkeypatch.delenv("QUIDE_CHECKPOINTS", raising=False)
    page = nbformat.read(ROOT / "book" / "ptq_sweep.ipynb", as_version=4)
    NotebookClient(page, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(ROOT / "book")}}).execute()
    text = "\n".join(str(out.get("text", "")) + str(out.get("data", {}).get("text/markdown", ""))
                     + str(out.get("data", {}).get("text/html", "")) + str(out.get("data", {}).get("text/plain", ""))
                     for cell in page.cells for out in cell.get("outputs", []))
    after = tuple(map(int, count.search(text).groups()))
    assert after[1] == before[1] - 1 and after[0] < before[0], \
        f"with {moved.name} moved away the EXP-1/2 page still says {after[0]} records from {after[1]} files"
