"""Reader-facing text speaks of results and methods, not of how runs were made: no commit hash, host
name, run letter or "device call" in the book's pages (sources, and the markdown and outputs of the
executed summary notebooks) or the README. The run log appendix and the CHANGELOG are where that
history lives, and are exempt."""
import html
import re
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
EXEMPT = {"book/run_log.md", "book/src/run_log.md", "book/run_log.ipynb", "CHANGELOG.md"}

# 7-40 hex digits standing alone, with a letter and a digit among them: a commit's (abbreviated) hash.
# Not a content hash that the text names as one (sha256 ...), nor part of a file or element name.
COMMIT = re.compile(r"(?<![\w./#-])(?<!sha256 )(?<!sha256: )(?=[0-9a-f]*[a-f])(?=[0-9a-f]*[0-9])[0-9a-f]{7,40}(?![\w/-])")
HOST = re.compile(r"\bvm-[0-9a-f]{6,}\b")
# a run named by a letter: "run g", "Run l's", "runs d and e", "runs a-h"; not "run a grid"
RUN_LETTER = re.compile(r"\b[Rr]uns? [a-m](?:'s\b|-[a-m]\b|(?=\s*[),.;:]|\s+(?:and|or|to|of|on|in|with)\s))")
DEVICE_CALL = re.compile(r"\bdevice[ -]calls?\b", re.IGNORECASE)
PATTERNS = {"commit hash": COMMIT, "host name": HOST, "run letter": RUN_LETTER, "'device call'": DEVICE_CALL}


def notebook_text(path: Path) -> str:
    """What a reader sees of an executed notebook: its markdown cells and its outputs' text."""
    parts = []
    for cell in nbformat.read(path, 4).cells:
        if cell.cell_type == "markdown":
            parts.append(cell.source)
        for out in cell.get("outputs", []):
            if out.get("output_type") == "stream":
                parts.append(out.get("text", ""))
            for mime in ("text/markdown", "text/plain", "text/html"):
                value = out.get("data", {}).get(mime)
                if value:
                    text = "".join(value) if isinstance(value, list) else value
                    parts.append(html.unescape(re.sub(r"<[^>]+>", " ", text)) if mime == "text/html" else text)
    return "\n".join(parts)


def reader_pages() -> list[Path]:
    pages = [ROOT / "README.md", *sorted((ROOT / "book").glob("*.md")), *sorted((ROOT / "book" / "src").glob("*.md")),
             *sorted((ROOT / "book").glob("*.ipynb"))]
    return [p for p in pages if str(p.relative_to(ROOT)) not in EXEMPT]


def findings(text: str) -> list[str]:
    found = []
    for line_no, line in enumerate(text.splitlines(), 1):
        for what, pattern in PATTERNS.items():
            for match in pattern.finditer(line):
                found.append(f"line {line_no}: {what} {match.group(0)!r} in: {line.strip()[:120]}")
    return found


@pytest.mark.parametrize("page", reader_pages(), ids=lambda p: str(p.relative_to(ROOT)))
def test_a_reader_facing_page_names_no_commit_host_run_letter_or_device_call(page):
    text = notebook_text(page) if page.suffix == ".ipynb" else page.read_text(encoding="utf-8")
    found = findings(text)
    assert not found, (f"{page.relative_to(ROOT)} speaks of how runs were made (that belongs in the run log "
                       f"appendix or the CHANGELOG):\n" + "\n".join(found))


@pytest.mark.parametrize("text", ["at commit 40eaa8c on one H200", "commit a272380", "on vm-c1f066cc",
                                  "run l's 512 s", "(run g)", "runs a-h", "runs d and e", "run a of three runs",
                                  "in one device call", "Device calls"])
def test_the_patterns_find_run_history(text):
    assert findings(text), text


@pytest.mark.parametrize("text", ["run a grid of notebooks", "data sha256 3f2c9a0b1d4e5f60", "run it on a GPU",
                                  "simplecnn-mnist-seed0-graph-smoke-ea617de8.json", "#1f77b4", "12345678 images",
                                  "deadbeef", "to run a notebook", "run the rerun"])
def test_the_patterns_leave_ordinary_text_alone(text):
    assert not findings(text), findings(text)
