"""Builds the book's summary notebooks: book/src/<page>.md (MyST, the source) -> book/<page>.ipynb,
executed, outputs kept. Commit both; nbval (strict) re-runs the notebooks in CI and compares them
with these outputs, so a result record that changes without a rebuild fails CI.

    python tools/build_pages.py            # every page
    python tools/build_pages.py --check    # exit 1 if a notebook's cells differ from its source
"""
from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
SRC, OUT = ROOT / "book" / "src", ROOT / "book"
CELL = re.compile(r"```\{code-cell\}[^\n]*\n(.*?)```", re.S)


def parse(text: str) -> nbformat.NotebookNode:
    """MyST text with ```{code-cell} blocks (optional `:tags: [...]` first line) -> a notebook."""
    text = re.sub(r"\A---\n.*?\n---\n", "", text, flags=re.S)   # front matter: the kernel is set below
    cells, pos = [], 0
    for m in CELL.finditer(text):
        if text[pos:m.start()].strip():
            cells.append(nbformat.v4.new_markdown_cell(text[pos:m.start()].strip()))
        body, tags = m.group(1), []
        first, _, rest = body.partition("\n")
        if first.startswith(":tags:"):
            tags = [t.strip() for t in first.split("[", 1)[1].rstrip("]").split(",") if t.strip()]
            body = rest
        cells.append(nbformat.v4.new_code_cell(body.rstrip("\n"), metadata={"tags": tags} if tags else {}))
        pos = m.end()
    if text[pos:].strip():
        cells.append(nbformat.v4.new_markdown_cell(text[pos:].strip()))
    nb = nbformat.v4.new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    return nb


def sources(nb) -> list:
    return [(c.cell_type, c.source, c.get("metadata", {}).get("tags", [])) for c in nb.cells]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true")
    ap.add_argument("pages", nargs="*", help="page names (default: every book/src/*.md)")
    args = ap.parse_args()
    names = args.pages or sorted(p.stem for p in SRC.glob("*.md"))
    stale = []
    for name in names:
        nb = parse((SRC / f"{name}.md").read_text())
        target = OUT / f"{name}.ipynb"
        if args.check:
            if not target.exists() or sources(nbformat.read(target, 4)) != sources(nb):
                stale.append(name)
            continue
        NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(ROOT)}}).execute()
        nbformat.write(nb, target)
        print(f"wrote {target.relative_to(ROOT)}")
    if stale:
        print(f"stale (run tools/build_pages.py): {', '.join(stale)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
