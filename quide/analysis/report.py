"""Small helpers for the book's summary pages (tables and provenance lines that render the same on
every run, since nbval compares the pages' outputs with the committed ones)."""
from __future__ import annotations

import pandas as pd


def html_table(table, key: str):
    """A DataFrame or Styler as HTML with a fixed element id (a Styler's default id is random),
    index hidden."""
    from IPython.display import HTML
    styler = table.style if isinstance(table, pd.DataFrame) else table
    return HTML(styler.hide(axis="index").set_uuid(key).to_html())


def provenance_line(records: pd.DataFrame) -> str:
    """Where a page's numbers come from: record count, commits, GPUs, torch versions, run dates."""
    def values(col, cut=None):
        column = records[col] if col in records else pd.Series([None] * len(records))
        vals = sorted({str(v)[:cut] if cut else str(v) for v in column.dropna()})
        if column.isna().any():
            vals.append("not recorded")
        return ", ".join(vals)
    return (f"{len(records)} records from {records['source_file'].nunique()} files | commit {values('prov_git_commit', 7)} "
            f"| GPU {values('prov_device')} | torch {values('prov_torch')} | run {values('prov_created_utc', 10)}")
