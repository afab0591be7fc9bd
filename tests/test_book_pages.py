"""The book's summary notebooks are built from book/src/*.md by tools/build_pages.py."""
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_summary_notebooks_match_their_sources():
    proc = subprocess.run([sys.executable, str(ROOT / "tools" / "build_pages.py"), "--check"],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def test_every_page_source_is_in_the_table_of_contents():
    toc = (ROOT / "_toc.yml").read_text()
    for src in (ROOT / "book" / "src").glob("*.md"):
        assert f"book/{src.stem}" in toc, src.name
