"""The book's per-run pages: the executed notebooks of the GPU runs under book/experiments/, rendered
as committed. :func:`tidy` makes one readable without touching its results: the page is titled by
its run (the title the book's table of contents gives it), test markers (``# NBVAL_...`` lines) leave
the code, and stderr streams (progress bars, library warnings naming machine paths) leave the
outputs; every other output stays as executed.

``python -m quide.analysis.run_pages`` tidies every run page listed in ``_toc.yml`` in place."""
from __future__ import annotations

import json
import sys
from pathlib import Path

from ..config import project_root

MARKER = "# NBVAL_"


def toc_titles(toc_path: Path) -> dict[str, str]:
    """Every entry of a jupyter-book ``_toc.yml`` with a ``title``: file (no suffix) -> title."""
    import yaml
    titles = {}

    def walk(entries):
        for entry in entries or []:
            if "file" in entry and "title" in entry:
                titles[entry["file"]] = entry["title"]
            walk(entry.get("sections"))
    walk(yaml.safe_load(Path(toc_path).read_text(encoding="utf-8")).get("chapters"))
    return titles


def tidy(nb: dict, title: str) -> dict:
    """``nb`` (a notebook as parsed JSON) with its first ``# `` heading replaced by ``# title`` (the
    old heading kept below it as the experiment's name), ``# NBVAL_`` lines removed from code and
    stderr stream outputs removed. Idempotent; ValueError if the notebook has no ``# `` heading."""
    if not title.strip():
        raise ValueError("tidy: a run page needs a non-empty title")
    heading_done = False
    for cell in nb["cells"]:
        as_lines = isinstance(cell["source"], list)
        source = "".join(cell["source"]) if as_lines else cell["source"]
        if cell["cell_type"] == "markdown" and not heading_done and source.startswith("# "):
            first, _, rest = source.partition("\n")
            if first != f"# {title}":
                rest = f"*One run of: {first[2:].strip()}*\n" + rest
            source = f"# {title}\n" + rest
            heading_done = True
        if cell["cell_type"] == "code":
            source = "\n".join(line for line in source.split("\n") if not line.lstrip().startswith(MARKER))
            cell["outputs"] = [o for o in cell.get("outputs", [])
                               if not (o.get("output_type") == "stream" and o.get("name") == "stderr")]
        cell["source"] = source.splitlines(keepends=True) if as_lines else source
    if not heading_done:
        raise ValueError("tidy: the notebook has no '# ' heading to title by its run")
    return nb


def main(root: Path | None = None) -> int:
    """Tidy in place every ``book/experiments/`` page that ``_toc.yml`` lists with a title."""
    root = Path(root or project_root())
    for page, title in toc_titles(root / "_toc.yml").items():
        path = root / f"{page}.ipynb"
        if page.startswith("book/experiments/") and path.is_file():
            nb = tidy(json.loads(path.read_text(encoding="utf-8")), title)
            path.write_text(json.dumps(nb, indent=1, ensure_ascii=False), encoding="utf-8")
            print(f"tidied {path.relative_to(root)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
