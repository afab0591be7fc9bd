"""The paper's figures, redrawn across all conditions from a :func:`quide.aggregate.table1` frame
(seed means, std as error bars) or from raw records. Each function returns a matplotlib Figure;
the book's captions say which records feed each one."""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from . import plots
from .index import pareto_front

METRIC_LABELS = {"I": "I", "I_gated": "I'", "ACP": "ACP", "ALS": "ALS"}


def _conditions(table):
    return list(table.groupby(["model", "data_source"], sort=False))


def _grid(n, width=4.8, height=3.4):
    cols = min(n, 2)
    rows = int(np.ceil(n / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(width * cols, height * rows), squeeze=False)
    for ax in axes.flat[n:]:
        ax.set_visible(False)
    return fig, list(axes.flat)


def _title(model, source):
    return f"{model}\n{source}"


def index_vs_gated_all(table):
    """I and I' across bit-widths, one panel per condition."""
    conds = _conditions(table)
    fig, axes = _grid(len(conds))
    for ax, ((model, source), g) in zip(axes, conds):
        plots.draw_index_vs_gated(ax, g)
        ax.set_title(_title(model, source), fontsize=9)
    axes[0].legend()
    fig.tight_layout()
    return fig


def accuracy_latency_all(table):
    """P (percent, left axis) and simulated T (ms, right axis) across bit-widths per condition."""
    conds = _conditions(table)
    fig, axes = _grid(len(conds))
    for ax, ((model, source), g) in zip(axes, conds):
        plots.draw_accuracy_latency(ax, g, "T (ms, simulated)")
        ax.set_title(_title(model, source), fontsize=9)
    fig.tight_layout()
    return fig


def pareto_frontier(points: pd.DataFrame, title: str = ""):
    """Compression vs accuracy of configurations (columns C_paper, P, bits_label, kind); the
    non-dominated ones in (C up, P up) joined by a line."""
    fig, ax = plt.subplots(figsize=(6, 3.8))
    for kind, g in points.groupby("kind", sort=False):
        ax.scatter(g["C_paper"], 100 * g["P"], s=18 if kind != "uniform" else 50, alpha=0.6 if kind != "uniform" else 1,
                   label=kind, zorder=3 if kind == "uniform" else 2)
    mask = pareto_front(points["C_paper"].to_numpy(float), points["P"].to_numpy(float), np.ones(len(points)))
    front = points[mask].sort_values("C_paper")
    ax.step(front["C_paper"], 100 * front["P"], where="post", color="k", lw=1, label="Pareto frontier")
    for _, r in front.iterrows():
        ax.annotate(r["bits_label"], (r["C_paper"], 100 * r["P"]), fontsize=7, xytext=(3, 3), textcoords="offset points")
    ax.set_xscale("log", base=2)
    ax.set_xlabel("C (32 / mean bits)")
    ax.set_ylabel("P (%)")
    ax.set_title(title or "Pareto frontier")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def metric_benchmark(table):
    """I, I', ACP and ALS across bit-widths, each scaled to its maximum within the condition."""
    conds = _conditions(table)
    fig, axes = _grid(len(conds))
    for ax, ((model, source), g) in zip(axes, conds):
        x = np.arange(len(g))
        for k, (col, label) in enumerate(METRIC_LABELS.items()):
            v = g[f"{col}_mean"].to_numpy(float)
            ax.bar(x + (k - 1.5) * 0.2, v / v.max() if v.max() > 0 else v, width=0.2, label=label)
        ax.set_xticks(x, g["bits"].astype(str))
        ax.set_xlabel("bits")
        ax.set_ylabel("metric / its max")
        ax.set_title(_title(model, source), fontsize=9)
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    return fig


def delta_ablation(knees: pd.DataFrame):
    """Knee bit-width as delta varies (``aggregate.knee_vs_delta``), one line per condition."""
    fig, ax = plt.subplots(figsize=(6.5, 3.6))
    order = [32, 16, 8, 4, 2]
    for k, ((model, source), g) in enumerate(knees.groupby(["model", "data_source"], sort=False)):
        y = [order.index(b) if b is not None and not pd.isna(b) else np.nan for b in g["knee"]]
        ax.step(g["delta"], np.array(y, float) + 0.06 * k, where="post", label=f"{model}, {source}")
    ax.set_yticks(range(len(order)), [str(b) for b in order])
    ax.set_xlabel("delta (tolerated accuracy drop, fraction)")
    ax.set_ylabel("Knee (bits)")
    ax.set_title("Where the Knee lies as delta varies")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def accuracy_compression_boundary(table):
    """P against C per condition with the accuracy gate Pthresh: configurations below the line get
    I' = 0 whatever their compression."""
    conds = _conditions(table)
    fig, axes = _grid(len(conds))
    for ax, ((model, source), g) in zip(axes, conds):
        ax.errorbar(g["C_paper"], 100 * g["P_mean"], yerr=100 * g["P_std"].fillna(0), marker="o", capsize=3)
        for c, p, b in zip(g["C_paper"], g["P_mean"], g["bits"]):
            ax.annotate(str(b), (c, 100 * p), fontsize=7, xytext=(3, 3), textcoords="offset points")
        ax.axhline(100 * g["p_thresh"].mean(), color="C3", ls="--", label="Pthresh")
        ax.set_xscale("log", base=2)
        ax.set_xlabel("C")
        ax.set_ylabel("P (%)")
        ax.set_title(_title(model, source), fontsize=9)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    return fig


def radar(table):
    """Per condition, each bit-width's profile over P, C, speed (1/T), I and I', each axis scaled
    to its maximum within the condition."""
    axes_names = [("P_mean", "P"), ("C_paper", "C"), ("speed", "1/T"), ("I_mean", "I"), ("I_gated_mean", "I'")]
    conds = _conditions(table)
    cols = min(len(conds), 2)
    rows = int(np.ceil(len(conds) / cols))
    fig = plt.figure(figsize=(3.6 * cols, 3.4 * rows))
    angles = np.linspace(0, 2 * np.pi, len(axes_names), endpoint=False)
    for i, ((model, source), g) in enumerate(conds):
        ax = fig.add_subplot(rows, cols, i + 1, projection="polar")
        g = g.assign(speed=1.0 / g["T_ms_mean"])
        for _, r in g.iterrows():
            v = np.array([r[c] / g[c].max() if g[c].max() > 0 else 0 for c, _ in axes_names])
            ax.plot(np.r_[angles, angles[0]], np.r_[v, v[0]], label=str(r["bits"]))
        ax.set_xticks(angles, [n for _, n in axes_names], fontsize=8)
        ax.set_yticklabels([])
        ax.set_title(_title(model, source), fontsize=8)
    fig.axes[0].legend(fontsize=7, loc="lower left", bbox_to_anchor=(-0.35, -0.25), title="bits")
    fig.tight_layout()
    return fig


def correlation_heatmap(records: pd.DataFrame):
    """Spearman rank correlation between P, C, T and the four metrics over all given records."""
    cols = {"P": "P", "C_paper": "C", "T_ms": "T", "I": "I", "I_gated": "I'", "ACP": "ACP", "ALS": "ALS"}
    corr = records[list(cols)].rename(columns=cols).corr(method="spearman")
    fig, ax = plt.subplots(figsize=(5, 4.2))
    im = ax.imshow(corr.to_numpy(), vmin=-1, vmax=1, cmap="RdBu_r")
    ax.set_xticks(range(len(cols)), corr.columns)
    ax.set_yticks(range(len(cols)), corr.index)
    for i in range(len(cols)):
        for j in range(len(cols)):
            ax.text(j, i, f"{corr.iat[i, j]:.2f}", ha="center", va="center", fontsize=7)
    fig.colorbar(im, ax=ax, shrink=0.8)
    ax.set_title("Spearman correlation between metrics")
    fig.tight_layout()
    return fig
