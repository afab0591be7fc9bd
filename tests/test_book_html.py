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


def test_every_page_loads_in_chromium(site, tmp_path):
    exe = _chromium()
    for page in _pages(site):
        assert page.is_file(), f"{page.name} was not built"
        proc = subprocess.run(_browser_args(exe, tmp_path) + ["--dump-dom", page.as_uri()],
                              capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stderr[-2000:]
        dom = proc.stdout
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
