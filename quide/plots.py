"""Figures shared by the notebooks and the book (matplotlib). Each takes a :func:`table1` frame
(or a :func:`sweep_table` frame for one run) and returns the matplotlib Figure."""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np


def _col(df, name):
    """``name_mean``/``name_std`` of a table1 frame, or the plain column of a sweep table."""
    if f"{name}_mean" in df:
        return df[f"{name}_mean"].to_numpy(float), df[f"{name}_std"].to_numpy(float)
    return df[name].to_numpy(float), np.full(len(df), np.nan)


def draw_index_vs_gated(ax, df) -> None:
    """I and I' across the bit-widths of ``df`` on ``ax`` (error bars: std over seeds, if any)."""
    x = np.arange(len(df))
    for name, label, marker in (("I", "I (raw)", "o"), ("I_gated", "I' (gated)", "s")):
        mean, std = _col(df, name)
        ax.errorbar(x, mean, yerr=np.nan_to_num(std), marker=marker, capsize=3, label=label)
    ax.set_xticks(x, [str(b) for b in df["bits"]])
    ax.set_xlabel("bit-width")
    ax.grid(alpha=0.3)


def draw_accuracy_latency(ax, df, t_label: str = "T (ms per batch of 64)") -> None:
    """P (percent, left axis of ``ax``) and T (a twin right axis) across the bit-widths of ``df``."""
    x = np.arange(len(df))
    p_mean, p_std = _col(df, "P")
    t_mean, t_std = _col(df, "T_ms")
    ax.errorbar(x, 100 * p_mean, yerr=100 * np.nan_to_num(p_std), marker="o", capsize=3, color="C0")
    ax.set_ylabel("P (% top-1)", color="C0")
    ax2 = ax.twinx()
    ax2.errorbar(x, t_mean, yerr=np.nan_to_num(t_std), marker="s", capsize=3, color="C3")
    ax2.set_ylabel(t_label, color="C3")
    ax.set_xticks(x, [str(b) for b in df["bits"]])
    ax.set_xlabel("bit-width")
    ax.grid(alpha=0.3)


def index_vs_gated(df, title: str = ""):
    """I and I' across bit-widths (error bars: std over seeds where there are several)."""
    fig, ax = plt.subplots(figsize=(5.5, 3.5))
    draw_index_vs_gated(ax, df)
    ax.set_ylabel("index")
    ax.set_title(title or "I vs I' across bit-widths")
    ax.legend()
    fig.tight_layout()
    return fig


def accuracy_and_latency(df, title: str = "", t_label: str = "T (ms per batch of 64)"):
    """P (percent) and T across bit-widths on twin axes."""
    fig, ax = plt.subplots(figsize=(5.5, 3.5))
    draw_accuracy_latency(ax, df, t_label)
    ax.set_title(title or "Accuracy and latency across bit-widths")
    fig.tight_layout()
    return fig


def search_landscape(land, picks, title: str = "", ax=None):
    """I' of every configuration, best first (``land``: columns bits, I_gated, as
    ``mixed_precision.landscape``), with the configuration each search returned marked (``picks``:
    columns search, bits, I_gated, as ``mixed_precision.summary``). Draws on ``ax`` if given."""
    fig, ax = plt.subplots(figsize=(6.5, 3.5)) if ax is None else (ax.figure, ax)
    ax.plot(np.arange(1, len(land) + 1), land["I_gated"].to_numpy(float), color="0.5", lw=1,
            label="all configurations")
    rank = {b: i + 1 for i, b in enumerate(land["bits"])}
    for k, (method, group) in enumerate(picks.groupby("search", sort=False)):
        xs = [rank[b] for b in group["bits"]]
        ax.scatter(xs, group["I_gated"], marker="osD^v"[k % 5], s=40, zorder=3, label=method)
    ax.set_xscale("log")
    ax.set_xlabel("rank among all configurations (1 = best)")
    ax.set_ylabel("I' (C = 32/mean bits)")
    ax.set_title(title or "Mixed-precision landscape")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def ga_history(results, title: str = ""):
    """Best fitness per generation of GA runs (``quide.search.SearchResult``)."""
    fig, ax = plt.subplots(figsize=(5.5, 3.2))
    for r in results:
        ax.plot(np.arange(1, len(r.history) + 1), r.history, marker=".", label=f"{r.method}, seed {r.seed}")
    ax.set_xlabel("generation")
    ax.set_ylabel("best fitness so far")
    ax.set_title(title or "GA convergence")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig
