"""Each notebook is paired by jupytext with the text source that is edited (notebooks/<name>.py,
book/src/<page>.md; see the jupytext.toml beside them): the two must hold the same cells and tags."""
from pathlib import Path

import jupytext
import pytest
from jupytext.cli import get_formats_from_notebook_path
from jupytext.paired_paths import paired_paths

ROOT = Path(__file__).resolve().parents[1]
PAIRS = ([(ROOT / "notebooks" / f"{name}.ipynb", ROOT / "notebooks" / f"{name}.py")
          for name in ("ptq_sweep", "mixed_precision", "llm_case_study", "ptq_ablation")]
         + [(ROOT / "book" / f"{src.stem}.ipynb", src) for src in sorted((ROOT / "book" / "src").glob("*.md"))])


def cells(path: Path) -> list:
    return [(c.cell_type, c.source, c.metadata.get("tags", [])) for c in jupytext.read(path).cells]


@pytest.mark.parametrize("notebook, source", PAIRS, ids=[s.name for _, s in PAIRS])
def test_notebook_matches_its_paired_source(notebook, source):
    formats = get_formats_from_notebook_path(str(notebook), "ipynb")
    assert str(source) in [path for path, _ in paired_paths(str(notebook), "ipynb", formats)], \
        f"jupytext does not pair {notebook.name} with {source.name}: see jupytext.toml"
    assert cells(notebook) == cells(source), (
        f"{notebook.relative_to(ROOT)} differs from {source.relative_to(ROOT)}: edit the source, then "
        + ("`make book-pages`" if source.suffix == ".md" else f"`jupytext --sync {source.relative_to(ROOT)}`"))


def test_every_page_source_is_in_the_table_of_contents():
    toc = (ROOT / "_toc.yml").read_text()
    for src in (ROOT / "book" / "src").glob("*.md"):
        assert f"book/{src.stem}" in toc, src.name
