"""Small helpers for the book's summary pages (tables and provenance lines that render the same on
every run, since nbval compares the pages' outputs with the committed ones)."""
from __future__ import annotations

import html

import pandas as pd


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


def html_table(table, key: str):
    """A DataFrame or Styler as HTML with a fixed element id (a Styler's default id is random),
    index hidden, cell text HTML-escaped (:func:`escaped`)."""
    from IPython.display import HTML
    if isinstance(table, pd.DataFrame):
        styler = escaped(table).style
    else:   # a Styler keeps its formats: its data is escaped in place
        styler = table
        styler.data = escaped(styler.data)
    return HTML(styler.hide(axis="index").set_uuid(key).to_html())


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
