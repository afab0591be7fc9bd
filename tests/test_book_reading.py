"""The book reads as a report: its summary pages' tables show readable values (no ``nan``, ``True``,
``99.200000`` or code ids), key columns first with constants in the caption, conclusions as
Markdown rather than ``<pre>`` text, and figures with alt text; the per-run pages are titled by
their run with no test markers or stderr (progress bars, warnings) in their outputs. Checked on the
executed notebooks that the book renders as committed (nbval keeps them equal to a fresh run)."""
import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from quide.analysis import report, run_pages

ROOT = Path(__file__).resolve().parents[1]
SUMMARY_PAGES = ["ptq_sweep", "mixed_precision", "llm_case_study", "pthresh", "protocol", "figures",
                 "ablation"]
CELL = re.compile(r"<t[dh][^>]*>(.*?)</t[dh]>", re.S)
RAW = re.compile(r"^(nan|NaN|None|True|False|-?\d+\.\d{6,})$")
CODE_IDS = re.compile(r"\b(knee_[ab]|resnet18_cifar|simplecnn|fashion_mnist|mnist_jpeg|C_paper|I_gated|P_mean)\b")


def _outputs(page):
    nb = json.loads((ROOT / "book" / f"{page}.ipynb").read_text(encoding="utf-8"))
    for cell in nb["cells"]:
        for out in cell.get("outputs", []):
            yield cell, out


def _html_tables(page):
    for _, out in _outputs(page):
        html = "".join(out.get("data", {}).get("text/html", ""))
        if "<table" in html:
            yield html


@pytest.mark.parametrize("page", SUMMARY_PAGES)
def test_summary_tables_show_readable_values(page):
    bad = []
    for html in _html_tables(page):
        for cell in CELL.findall(html):
            text = re.sub(r"<[^>]+>", "", cell).strip()
            if RAW.match(text) or CODE_IDS.search(text) or text == "of":
                bad.append(text)
    assert not bad, f"book/{page}.ipynb: table cells a reader should not see: {sorted(set(bad))[:12]}"


@pytest.mark.parametrize("page", SUMMARY_PAGES)
def test_conclusions_are_markdown_not_printed_text(page):
    printed = ["".join(out.get("text", "")) for _, out in _outputs(page) if out.get("output_type") == "stream"]
    assert not [t for t in printed if t.startswith("Recommendation") or "Knee by delta range" in t], \
        f"book/{page}.ipynb prints a conclusion into a <pre> block; display it as Markdown"


def test_llm_table_says_the_model_once_in_its_caption_and_keeps_i_gated_near_the_front():
    table = next(t for t in _html_tables("llm_case_study") if "T_llm" in t)
    headers = [re.sub(r"<[^>]+>", "", h).strip() for h in re.findall(r"<th[^>]*col_heading[^>]*>(.*?)</th>", table, re.S)]
    assert "model" not in headers and "<caption>" in table and ".gguf" in table.split("</caption>")[0]
    assert headers.index("I'") <= 5, f"the LLM table's I' column is not among its first columns: {headers}"


def test_figures_beside_their_claims_carry_alt_text():
    for page, least in (("ptq_sweep", 2), ("llm_case_study", 1), ("figures", 8)):
        figures = [(cell, out) for cell, out in _outputs(page) if "image/png" in out.get("data", {})]
        assert len(figures) >= least, f"book/{page}.ipynb draws {len(figures)} figures, expected at least {least}"
        for cell, _ in figures:
            alt = cell["metadata"].get("mystnb", {}).get("image", {}).get("alt", "")
            assert len(alt) > 20, f"book/{page}.ipynb: a figure without alt text (cell {cell.get('id')})"


def test_cell_text_rounds_and_names_missing_and_truth_values():
    assert [report.cell_text(v) for v in (99.2, 99.177000001, np.nan, None, True, np.bool_(False), 7, "x")] == \
        ["99.2", "99.18", "—", "—", "yes", "no", "7", "x"]


def test_html_table_hides_all_but_the_key_columns_on_a_narrow_window():
    frame = pd.DataFrame({"condition": ["a"], "bits": [4], "extra": [0.5], "P": [0.25]})
    page = report.html_table(frame, "t1", caption="seed 0", narrow=["condition", "bits", "P"]).data
    assert "<caption>seed 0</caption>" in page
    assert re.search(r"@media \(max-width: \d+px\) \{ #T_t1 \.col2 \{ display: none; \} \}", page)
    with pytest.raises(ValueError, match=r"narrow names columns \['I'\]"):
        report.html_table(frame, "t2", narrow=["I"])


def test_constants_move_to_the_caption():
    frame = pd.DataFrame({"model": ["m", "m"], "bits": [8, 4], "n": [3, 3]})
    rest, caption = report.constants_to_caption(frame, ["model", "n", "bits"])
    assert list(rest.columns) == ["bits"] and caption == "model: m; n: 3"


def test_tidy_titles_the_run_and_drops_markers_and_stderr():
    nb = {"cells": [
        {"cell_type": "markdown", "metadata": {}, "source": ["# PTQ sweep (EXP-1, EXP-2)\n", "\n", "Text.\n"]},
        {"cell_type": "code", "metadata": {}, "source": ["# NBVAL_CHECK_OUTPUT\n", "print(1)"], "outputs": [
            {"output_type": "stream", "name": "stdout", "text": ["1\n"]},
            {"output_type": "stream", "name": "stderr", "text": ["\r 50%|█████     | 1/2 [00:00<00:00, 9.1it/s]"]}]}]}
    once = run_pages.tidy(json.loads(json.dumps(nb)), "SimpleCNN, MNIST, seed 0")
    assert once["cells"][0]["source"][:2] == ["# SimpleCNN, MNIST, seed 0\n", "*One run of: PTQ sweep (EXP-1, EXP-2)*\n"]
    assert once["cells"][1]["source"] == ["print(1)"]
    assert once["cells"][1]["outputs"] == [{"output_type": "stream", "name": "stdout", "text": ["1\n"]}]
    assert run_pages.tidy(json.loads(json.dumps(once)), "SimpleCNN, MNIST, seed 0") == once   # idempotent
    with pytest.raises(ValueError, match="no '# ' heading"):
        run_pages.tidy({"cells": [{"cell_type": "markdown", "source": "text"}]}, "x")


def test_committed_run_pages_are_titled_by_their_run_and_clean():
    titles = {page: title for page, title in run_pages.toc_titles(ROOT / "_toc.yml").items()
              if page.startswith("book/experiments/") and not page.endswith("/index")}
    assert len(titles) == 19
    for page, title in titles.items():
        nb = json.loads((ROOT / f"{page}.ipynb").read_text(encoding="utf-8"))
        first = next("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "markdown")
        assert first.startswith(f"# {title}\n"), f"{page}: not titled by its run ({first[:60]!r})"
        for cell in nb["cells"]:
            assert "NBVAL_" not in "".join(cell["source"]), f"{page}: a test marker in its code"
            for out in cell.get("outputs", []):
                assert out.get("name") != "stderr", f"{page}: stderr (progress bars, warnings) in its outputs"


def test_the_sidebar_lists_one_index_page_per_experiment():
    import yaml
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text(encoding="utf-8"))
    for chapter in toc["chapters"]:
        for section in chapter.get("sections", []):
            if not section["file"].startswith("book/experiments/"):
                continue   # the API reference's per-module pages, the last chapter's own sections
            assert section["file"].endswith("/index"), \
                f"{chapter['file']}: a run page ({section['file']}) sits beside the chapters; list it under an index page"
