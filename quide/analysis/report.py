"""Small helpers for the book's summary pages (tables and provenance lines that render the same on
every run, since nbval compares the pages' outputs with the committed ones)."""
from __future__ import annotations

import html
import numbers

import numpy as np
import pandas as pd

MISSING = "—"


def _escape_cell(value):
    """A string, or a container shown as its str() (a list of bit-widths), as escaped text."""
    if isinstance(value, (str, list, tuple, dict, set)):
        return html.escape(str(value), quote=False)
    return value


def escaped(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with the text of every text cell HTML-escaped (&, <, >): text read from a file
    (a data set's label, a note) is shown as text, never run as markup."""
    out = frame.copy()
    for i in range(out.shape[1]):
        column = out.iloc[:, i]
        if column.dtype == object or pd.api.types.is_string_dtype(column.dtype):
            # element by element into an object column: None stays None (map would make it NaN)
            out.isetitem(i, pd.Series([_escape_cell(v) for v in column], index=column.index, dtype=object))
    return out


def cell_text(value, digits: int = 4) -> str:
    """One table cell as a reader reads it: a missing value (None, NaN) as a dash, a truth value as
    "yes"/"no", a float to ``digits`` significant digits (99.2, not 99.200000), anything else as is."""
    if value is None or (isinstance(value, float) and value != value) or value is pd.NA or value is pd.NaT:
        return MISSING
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "no"
    if isinstance(value, numbers.Integral):
        return str(int(value))
    if isinstance(value, numbers.Real):
        return f"{float(value):.{digits}g}"
    return value


def readable(frame: pd.DataFrame, digits: int = 4) -> pd.DataFrame:
    """``frame`` with every cell as :func:`cell_text` shows it (object columns)."""
    return frame.apply(lambda column: pd.Series([cell_text(v, digits) for v in column], index=column.index,
                                                 dtype=object))


# Below this window width a table given ``narrow`` columns shows those only (a phone in portrait).
NARROW_PX = 700


def html_table(table, key: str, caption: str | None = None, digits: int = 4, narrow=None):
    """A DataFrame or Styler as HTML with a fixed element id (a Styler's default id is random),
    index hidden, cell text HTML-escaped (:func:`escaped`). A DataFrame's cells are shown as
    :func:`readable` makes them (no ``nan``, ``True`` or ``99.200000``); a Styler keeps its own
    formats. ``caption``: what holds for every row (a constant moved out of the columns).
    ``narrow``: the key columns, which alone are shown in a window narrower than ``NARROW_PX``."""
    from IPython.display import HTML
    if isinstance(table, pd.DataFrame):
        styler = readable(escaped(table), digits).style
    else:   # a Styler keeps its formats: its data is escaped in place
        styler = table
        styler.data = escaped(styler.data)
    if caption:
        styler = styler.set_caption(html.escape(caption, quote=False))
    page = styler.hide(axis="index").set_uuid(key).to_html()
    if narrow:
        columns = list(styler.data.columns)
        unknown = [c for c in narrow if c not in columns]
        if unknown:
            raise ValueError(f"html_table {key!r}: narrow names columns {unknown} that the table lacks; "
                             f"its columns: {columns}")
        # the Styler gives every header and data cell of column i the class col{i}
        hidden = ", ".join(f"#T_{key} .col{i}" for i, c in enumerate(columns) if c not in narrow)
        if hidden:
            page += f"<style>@media (max-width: {NARROW_PX}px) {{ {hidden} {{ display: none; }} }}</style>"
    return HTML(page)


def constants_to_caption(frame: pd.DataFrame, columns) -> tuple[pd.DataFrame, str]:
    """``frame`` without those of ``columns`` that hold one value on every row, and a caption
    naming them ("model: X; questions: 14042"): a constant is said once, not on every row."""
    constant = [c for c in columns if c in frame and frame[c].nunique(dropna=False) == 1]
    caption = "; ".join(f"{c}: {cell_text(frame[c].iloc[0])}" for c in constant)
    return frame.drop(columns=constant), caption


def markdown(text: str):
    """A conclusion computed on a page, rendered as Markdown (wrapped text, not a ``<pre>`` block)."""
    from IPython.display import Markdown
    return Markdown(text)


def provenance_line(records: pd.DataFrame) -> str:
    """Where a page's numbers come from: record count and files, GPUs, torch versions, run dates (the
    commits and machines of each run are in the runs manifest, data/reruns/RUNS.toml)."""
    def values(col, cut=None):
        column = records[col] if col in records else pd.Series([None] * len(records))
        vals = sorted({str(v)[:cut] if cut else str(v) for v in column.dropna()})
        if column.isna().any():
            vals.append("not recorded")
        return ", ".join(vals)
    return (f"{len(records)} records from {records['source_file'].nunique()} files | GPU {values('prov_device')} "
            f"| torch {values('prov_torch')} | run {values('prov_created_utc', 10)}")
